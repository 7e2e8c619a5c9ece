"""The bare-metal service (Ironic v1 at /baremetal) with the real client: python-ironicclient's
`openstack baremetal` commands against the session's `strata up`, managing hosts of a
`strata sim --hosts 2` fleet through their real BMCs — Redfish for sim-0000, IPMI (lanplus)
for sim-0001 — and checking every effect on the simulator's control API.

The client negotiates its microversion (no OS_BAREMETAL_API_VERSION is set): it asks for the
newest it knows and settles on what the server advertises.

Every process started here is stopped by PID (SIGTERM) and must exit 0. Nothing sleeps to
synchronise: `--wait` and `poll` wait on conditions against deadlines.
"""

from __future__ import annotations

import pytest
import requests

from harness import poll, running
from sim_harness import SIM_PASSWORD, SIM_USER, Sim, split_redfish

WAIT_S = "60"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with running(Sim(tmp_path_factory.mktemp("sim-baremetal") / "data", "--hosts", "2"),
                 "strata sim") as s:
        yield s


@pytest.fixture(scope="module")
def bm(osc):
    """`openstack baremetal …` as the admin. No API version is pinned (the harness passes no
    OS_* variable), so the client negotiates."""
    def run(*args, **kw):
        return osc.run("baremetal", *args, **kw)

    def js(*args, **kw):
        return osc.json("baremetal", *args, **kw)

    run.json = js
    return run


def sim_power(sim, host: str) -> str:
    return sim.host(host)["reported_power"]


def test_redfish_node_lifecycle(sim, bm, name):
    host = sim.host("sim-0000")
    address, system = split_redfish(host["redfish"])
    node_name = name("rf")
    node = bm.json("node", "create", "--driver", "redfish",
                   "--driver-info", f"redfish_address={address}",
                   "--driver-info", f"redfish_system_id={system}",
                   "--driver-info", f"redfish_username={SIM_USER}",
                   "--driver-info", f"redfish_password={SIM_PASSWORD}",
                   "--driver-info", "redfish_verify_ca=False",
                   "--name", node_name)
    uuid = node["uuid"]
    assert node["provision_state"] == "enroll", node
    assert node["driver_info"]["redfish_password"] == "******", node
    assert node["power_interface"] == "redfish", node

    port = bm.json("port", "create", host["boot_mac"], "--node", uuid)
    assert port["address"] == host["boot_mac"] and port["node_uuid"] == uuid, port
    # One MAC, one port.
    dup = bm("port", "create", host["boot_mac"], "--node", uuid, check=False)
    assert dup.returncode != 0 and "already exists" in dup.output, dup.output

    bm("node", "manage", node_name, "--wait", WAIT_S)
    shown = bm.json("node", "show", node_name)
    assert shown["provision_state"] == "manageable", shown
    assert shown["power_state"] == "power off", shown
    assert shown["last_error"] is None, shown

    bm("node", "power", "on", node_name, "--power-timeout", "30")
    poll(lambda: bm.json("node", "show", node_name, "-c", "power_state")["power_state"]
         == "power on", 60, "power on in the node")
    assert sim_power(sim, "sim-0000") == "On"
    boots = len(sim.host("sim-0000")["boot_log"])
    bm("node", "reboot", node_name)
    poll(lambda: len(sim.host("sim-0000")["boot_log"]) == boots + 1, 60, "a reboot")
    bm("node", "power", "off", node_name)
    poll(lambda: bm.json("node", "show", node_name, "-c", "power_state")["power_state"]
         == "power off", 60, "power off in the node")
    assert sim_power(sim, "sim-0000") == "Off"

    bm("node", "boot", "device", "set", node_name, "pxe", "--persistent")
    assert sim.host("sim-0000")["boot"]["target"] == "Pxe"
    assert sim.host("sim-0000")["boot"]["enabled"] == "Continuous"
    dev = bm.json("node", "boot", "device", "show", node_name)
    assert dev == {"boot_device": "pxe", "persistent": True}, dev
    supported = bm.json("node", "boot", "device", "show", node_name, "--supported")
    assert "pxe" in supported["supported_boot_devices"], supported

    bm("node", "maintenance", "set", node_name, "--reason", "e2e")
    shown = bm.json("node", "show", node_name)
    assert shown["maintenance"] is True and shown["maintenance_reason"] == "e2e", shown
    listed = bm.json("node", "list", "--maintenance")
    assert [n["uuid"] for n in listed] == [uuid], listed
    bm("node", "maintenance", "unset", node_name)
    assert bm.json("node", "show", node_name)["maintenance"] is False

    results = {r["Interface"]: r for r in bm.json("node", "validate", node_name)}
    assert results["power"]["Result"] is True, results
    assert results["management"]["Result"] is True, results

    rows = bm.json("node", "list", "--provision-state", "manageable", "--driver", "redfish")
    assert uuid in [n["uuid"] for n in rows], rows
    rows = bm.json("node", "list", "--provision-state", "enroll")
    assert uuid not in [n["uuid"] for n in rows], rows
    ports = bm.json("port", "list", "--node", uuid)
    assert [p["address"] for p in ports] == [host["boot_mac"]], ports

    bm("node", "delete", node_name)
    assert bm("node", "show", node_name, check=False).returncode != 0
    assert bm.json("port", "list", "--address", host["boot_mac"]) == []


def test_ipmi_node_lifecycle(sim, bm, name):
    host = sim.host("sim-0001")
    ip, port = host["ipmi_address"].rsplit(":", 1)
    node_name = name("ipmi")
    node = bm.json("node", "create", "--driver", "ipmi",
                   "--driver-info", f"ipmi_address={ip}",
                   "--driver-info", f"ipmi_port={port}",
                   "--driver-info", f"ipmi_username={SIM_USER}",
                   "--driver-info", f"ipmi_password={SIM_PASSWORD}",
                   "--name", node_name)
    assert node["power_interface"] == "ipmitool", node
    assert node["driver_info"]["ipmi_password"] == "******", node
    bm("node", "manage", node_name, "--wait", WAIT_S)
    assert bm.json("node", "show", node_name)["provision_state"] == "manageable"

    bm("node", "power", "on", node_name)
    poll(lambda: sim_power(sim, "sim-0001") == "On", 60, "the host powered on over IPMI")
    poll(lambda: bm.json("node", "show", node_name, "-c", "power_state")["power_state"]
         == "power on", 60, "power on in the node")
    bm("node", "boot", "device", "set", node_name, "disk")
    assert sim.host("sim-0001")["boot"]["target"] == "Hdd"
    assert bm.json("node", "boot", "device", "show", node_name)["boot_device"] == "disk"
    bm("node", "power", "off", node_name)
    poll(lambda: sim_power(sim, "sim-0001") == "Off", 60, "the host powered off over IPMI")

    # Without automated cleaning, provide makes the node available at once.
    bm("node", "set", node_name, "--no-automated-clean")
    bm("node", "provide", node_name, "--wait", WAIT_S)
    assert bm.json("node", "show", node_name)["provision_state"] == "available"
    bm("node", "delete", node_name)


def test_wrong_credentials_fail_verification(sim, bm, name):
    host = sim.host("sim-0000")
    address, system = split_redfish(host["redfish"])
    node_name = name("badpw")
    bm("node", "create", "--driver", "redfish",
       "--driver-info", f"redfish_address={address}",
       "--driver-info", f"redfish_system_id={system}",
       "--driver-info", f"redfish_username={SIM_USER}",
       "--driver-info", "redfish_password=wrong",
       "--name", node_name)
    # --wait fails as the node falls back to enroll with last_error.
    res = bm("node", "manage", node_name, "--wait", WAIT_S, check=False)
    assert res.returncode != 0, res.output
    shown = bm.json("node", "show", node_name)
    assert shown["provision_state"] == "enroll", shown
    assert "wrong credentials" in shown["last_error"], shown
    # Illegal verbs answer Ironic's message.
    res = bm("node", "provide", node_name, check=False)
    assert "can not be performed on node" in res.output, res.output
    bm("node", "delete", node_name)


def test_the_catalog_lists_baremetal(osc, server):
    rows = osc.json("catalog", "list")
    assert "baremetal" in [r["Type"] for r in rows], rows
    r = requests.get(f"{server.base_url}/baremetal", timeout=10)
    assert r.status_code == 200 and r.json()["default_version"]["id"] == "v1", r.text
