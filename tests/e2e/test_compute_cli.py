"""Compute (issue 5, first increment) with the real `openstack` CLI against `strata up`:
version discovery, flavors (DevStack's seeded set, create, private access, properties,
delete), keypairs (imported and checked against ssh-keygen's fingerprint), quotas, limits and
availability zones; and Nova's refusals."""

from __future__ import annotations

import subprocess

import requests

from harness import HTTP_TIMEOUT_S


def test_version_discovery(server):
    r = requests.get(f"{server.base_url}/compute/", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    ids = [v["id"] for v in r.json()["versions"]]
    assert ids == ["v2.0", "v2.1"], ids
    v = requests.get(f"{server.base_url}/compute/v2.1", timeout=HTTP_TIMEOUT_S).json()["version"]
    assert v["min_version"] == "2.1" and v["version"] >= "2.90", v
    r = requests.get(f"{server.base_url}/compute/v2.1/flavors", timeout=HTTP_TIMEOUT_S,
                     headers={"OpenStack-API-Version": "compute 9.0"})
    assert r.status_code in (401, 406), r.status_code


def test_flavors(osc, name):
    seeded = {f["Name"] for f in osc.json("flavor", "list")}
    assert {"m1.tiny", "m1.small", "m1.nano", "m1.micro"} <= seeded, seeded
    fname = name("flv")
    f = osc.json("flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "2",
                 "--private", "--property", "hw:cpu_policy=shared", fname)
    assert f["ram"] == 256 and f["os-flavor-access:is_public"] is False, f
    # Private: the demo project cannot see it until given access.
    assert fname not in {x["Name"] for x in osc.json("flavor", "list", "--all",
                                                       cloud="strata-demo")}
    osc.run("flavor", "set", "--project", "demo", f["id"])
    assert fname in {x["Name"] for x in osc.json("flavor", "list", "--all",
                                                   cloud="strata-demo")}
    osc.run("flavor", "set", "--property", "quota:disk_read_bytes_sec=1000", f["id"])
    shown = osc.json("flavor", "show", f["id"])
    assert shown["properties"]["quota:disk_read_bytes_sec"] == "1000", shown
    osc.run("flavor", "unset", "--property", "hw:cpu_policy", f["id"])
    assert "hw:cpu_policy" not in osc.json("flavor", "show", f["id"])["properties"]
    denied = osc.fails("flavor", "create", "--ram", "1", "--vcpus", "1", name("x"),
                       cloud="strata-demo").output
    assert "403" in denied or "forbidden" in denied.lower() or "policy" in denied.lower(), denied
    dup = osc.fails("flavor", "create", "--ram", "1", "--vcpus", "1", fname).output
    assert "409" in dup or "exists" in dup.lower(), dup
    osc.run("flavor", "delete", f["id"])
    gone = osc.fails("flavor", "show", f["id"]).output
    assert "404" in gone or "no flavor" in gone.lower(), gone


def test_keypairs(osc, name, tmp_path):
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    want = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", f"{key}.pub"], check=True,
                          capture_output=True, text=True).stdout.split()[1].removeprefix("MD5:")
    kname = name("key")
    kp = osc.json("keypair", "create", "--public-key", f"{key}.pub", kname, cloud="strata-demo")
    assert kp["fingerprint"] == want, (kp, want)
    assert kname in {k["Name"] for k in osc.json("keypair", "list", cloud="strata-demo")}
    # Keypairs belong to their user: the admin user does not see demo's.
    assert kname not in {k["Name"] for k in osc.json("keypair", "list")}
    bad = osc.fails("keypair", "create", "--public-key", "/dev/null", name("bad"),
                    cloud="strata-demo").output
    assert "400" in bad or "invalid" in bad.lower() or "public key" in bad.lower(), bad
    osc.run("keypair", "delete", kname, cloud="strata-demo")
    gone = osc.fails("keypair", "show", kname, cloud="strata-demo").output
    assert "404" in gone or "no keypair found" in gone.lower(), gone


def test_quotas_limits_and_zones(osc):
    osc.run("quota", "set", "--instances", "7", "--key-pairs", "9", "demo")
    shown = {q["Resource"]: q["Limit"] for q in osc.json("quota", "show", "demo")}
    assert shown["instances"] == 7 and shown["key-pairs"] == 9, shown
    limits = {x["Name"]: x["Value"] for x in osc.json("limits", "show", "--absolute",
                                                        cloud="strata-demo")}
    # openstacksdk's names for maxTotalInstances / maxTotalKeypairs.
    assert limits["instances"] == 7, limits
    assert limits["keypairs"] == 9, limits
    zones = osc.json("availability", "zone", "list", "--compute")
    assert any(z["Zone Name"] == "nova" for z in zones), zones


def test_fake_hosts_join_and_survive_a_crash(tmp_path):
    """`strata up --fake-hosts 2`: two fake compute hosts (beside the all-in-one's own host)
    register through the node-agent contract and show as hypervisors, compute services and
    placement providers; after a `kill -9` and a restart they come back with the same ids,
    nothing duplicated."""
    import socket

    from harness import Openstack, StrataServer, poll

    me = socket.gethostname()

    s = StrataServer(tmp_path / "data", extra_args=["--fake-hosts", "2"])
    try:
        s.start()
        osc = Openstack(s)

        def hosts():
            return {h["Hypervisor Hostname"]: h for h in osc.json("hypervisor", "list")}

        poll(lambda: set(hosts()) == {"fake-1", "fake-2", me}, 30, "three hypervisors")
        before = hosts()
        assert all(h["State"] == "up" and h["Hypervisor Type"] == "fake"
                   for h in before.values()), before
        services = osc.json("compute", "service", "list")
        assert {(x["Host"], x["Binary"], x["State"]) for x in services} == \
            {("fake-1", "nova-compute", "up"), ("fake-2", "nova-compute", "up"),
             (me, "nova-compute", "up")}, services
        rps = osc.json("--os-placement-api-version", "1.39", "resource", "provider", "list")
        assert {r["name"]: r["uuid"] for r in rps} == \
            {n: h["ID"] for n, h in before.items()}, (rps, before)
        inv = {i["resource_class"]: i for i in osc.json(
            "--os-placement-api-version", "1.39", "resource", "provider", "inventory", "list",
            before["fake-1"]["ID"])}
        assert inv["VCPU"]["total"] == 8 and inv["MEMORY_MB"]["total"] == 16384, inv
        s.kill()
        s.start()
        poll(lambda: set(hosts()) == {"fake-1", "fake-2", me}, 30, "the hosts after a restart")
        after = hosts()
        assert {n: h["ID"] for n, h in after.items()} == {n: h["ID"] for n, h in before.items()}
        assert len(osc.json("--os-placement-api-version", "1.39", "resource", "provider",
                            "list")) == 3
    finally:
        s.stop()
