"""Placement with the real `openstack` CLI and its osc-placement plugin against `strata up`
(issue 5): resource providers in a tree, inventories, traits, aggregates, custom classes,
allocations with capacity enforced, usages and allocation candidates; and Placement's errors."""

from __future__ import annotations

import uuid

import requests

from harness import HTTP_TIMEOUT_S

V = ("--os-placement-api-version", "1.39")


def pl(osc, *args, **kw):
    return osc.json(*V, *args, **kw)


def test_discovery_and_errors(server, osc):
    root = requests.get(f"{server.base_url}/placement/", timeout=HTTP_TIMEOUT_S)
    assert root.status_code == 200, root.text
    v = root.json()["versions"][0]
    assert v["id"] == "v1.0" and v["min_version"] == "1.0", v
    assert tuple(int(x) for x in v["max_version"].split(".")) >= (1, 39), v
    # No token: 401; a member of a project (not admin): 403.
    assert requests.get(f"{server.base_url}/placement/resource_providers",
                        timeout=HTTP_TIMEOUT_S).status_code == 401
    out = osc.fails(*V, "resource", "provider", "list", cloud="strata-demo").output
    assert "403" in out or "forbidden" in out.lower(), out


def test_placement_journey(osc, name):
    root = pl(osc, "resource", "provider", "create", name("cn"))
    child = pl(osc, "resource", "provider", "create", "--parent-provider", root["uuid"],
               name("numa"))
    assert child["root_provider_uuid"] == root["uuid"], child
    assert child["parent_provider_uuid"] == root["uuid"], child
    tree = pl(osc, "resource", "provider", "list", "--in-tree", root["uuid"])
    assert {p["uuid"] for p in tree} == {root["uuid"], child["uuid"]}, tree

    inv = pl(osc, "resource", "provider", "inventory", "set", child["uuid"],
             "--resource", "VCPU=4", "--resource", "VCPU:allocation_ratio=2.0",
             "--resource", "MEMORY_MB=8192", "--resource", "MEMORY_MB:reserved=512")
    by_class = {i["resource_class"]: i for i in inv}
    assert by_class["VCPU"]["total"] == 4 and by_class["VCPU"]["allocation_ratio"] == 2.0, inv
    assert by_class["MEMORY_MB"]["reserved"] == 512, inv

    custom = "CUSTOM_" + uuid.uuid4().hex[:8].upper()
    osc.run(*V, "resource", "class", "create", custom)
    assert custom in {c["name"] for c in pl(osc, "resource", "class", "list")}
    trait = "CUSTOM_T_" + uuid.uuid4().hex[:8].upper()
    osc.run(*V, "trait", "create", trait)
    traits = pl(osc, "resource", "provider", "trait", "set", child["uuid"],
                "--trait", trait, "--trait", "HW_CPU_X86_AVX2")
    assert {t["name"] for t in traits} == {trait, "HW_CPU_X86_AVX2"}, traits
    gen = pl(osc, "resource", "provider", "show", child["uuid"])["generation"]
    agg = str(uuid.uuid4())
    aggs = pl(osc, "resource", "provider", "aggregate", "set", child["uuid"],
              "--aggregate", agg, "--generation", str(gen))
    assert [a["uuid"] for a in aggs] == [agg], aggs

    cands = pl(osc, "allocation", "candidate", "list", "--resource", "VCPU=2",
               "--resource", "MEMORY_MB=1024", "--required", trait, "--member-of", agg)
    assert {c["resource provider"] for c in cands} == {child["uuid"]}, cands
    none = pl(osc, "allocation", "candidate", "list", "--resource", "VCPU=2",
              "--forbidden", trait)
    assert child["uuid"] not in {c["resource provider"] for c in none}, none

    project, user = uuid.uuid4().hex, uuid.uuid4().hex
    consumer = str(uuid.uuid4())
    allocs = pl(osc, "resource", "provider", "allocation", "set", consumer,
                "--allocation", f"rp={child['uuid']},VCPU=6,MEMORY_MB=4096",
                "--project-id", project, "--user-id", user, "--consumer-type", "INSTANCE")
    assert allocs[0]["resources"] == {"VCPU": 6, "MEMORY_MB": 4096}, allocs
    usage = pl(osc, "resource", "provider", "usage", "show", child["uuid"])
    assert {u["resource_class"]: u["usage"] for u in usage} == {"VCPU": 6, "MEMORY_MB": 4096}
    # (4 - 0) * 2.0 = 8 VCPU: 6 used, 3 more do not fit.
    over = osc.fails(*V, "resource", "provider", "allocation", "set", str(uuid.uuid4()),
                     "--allocation", f"rp={child['uuid']},VCPU=3",
                     "--project-id", project, "--user-id", user,
                     "--consumer-type", "INSTANCE").output
    assert "409" in over or "capacity" in over.lower(), over
    # A provider with allocations cannot go; its inventory in use cannot either.
    assert "409" in osc.fails(*V, "resource", "provider", "delete", child["uuid"]).output
    osc.run(*V, "resource", "provider", "allocation", "delete", consumer)
    usage = pl(osc, "resource", "provider", "usage", "show", child["uuid"])
    assert all(u["usage"] == 0 for u in usage), usage
    osc.run(*V, "resource", "provider", "delete", child["uuid"])
    osc.run(*V, "resource", "provider", "delete", root["uuid"])
    gone = osc.fails(*V, "resource", "provider", "show", root["uuid"]).output
    assert "404" in gone or "no resource provider" in gone.lower(), gone
