"""The simulator's IPMI BMCs from the outside: the real ipmitool (`-I lanplus`) and sushy (the
Redfish library Ironic uses) against the same simulated host must see one BMC — the same
power state and the same boot override, whichever protocol changed it. And `strata up
--sim-hosts N` embeds such a fleet.

The ipmitool tests are skipped without ipmitool, and fail then if STRATA_REQUIRE_IPMITOOL=1.
Every process started here is stopped by PID (SIGTERM) and must exit 0.
"""

from __future__ import annotations

import json
import signal

import pytest
import requests
import sushy

from harness import StrataServer, poll, running
from sim_harness import (SIM_PASSWORD as PASSWORD, SIM_USER as USER, Ipmitool, Sim,
                         require_ipmitool, split_redfish, sushy_system)

HOST = "sim-0001"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with running(Sim(tmp_path_factory.mktemp("sim-ipmi") / "data", "--hosts", "2"),
                 "strata sim") as s:
        yield s


@pytest.fixture
def host(sim):
    """sim-0001, powered off, no faults, no boot override; ipmitool and sushy aimed at it."""
    require_ipmitool()
    sim.faults(HOST, password=None, fail_power_actions=False, unreachable=False)
    r = requests.post(f"{sim.control}/hosts/{HOST}/power", json={"state": "Off"}, timeout=10)
    assert r.status_code == 200, r.text
    info = sim.host(HOST)
    system = sushy_system(info["redfish"])
    system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_NONE,
                                   enabled=sushy.BOOT_SOURCE_ENABLED_DISABLED)
    system.refresh()
    return {"info": info, "system": system, "ipmi": Ipmitool(info["ipmi_address"])}


def power_status(tool: Ipmitool) -> str:
    out = tool.ok("chassis", "power", "status").strip()
    assert out.startswith("Chassis Power is "), out
    return out.removeprefix("Chassis Power is ")


def last_boot(sim) -> dict:
    return sim.host(HOST)["boot_log"][-1]


def test_hosts_json_and_the_control_api_list_each_ipmi_bmc(sim):
    listing = json.loads((sim.data_dir / "hosts.json").read_text())
    addresses = [h["ipmi_address"] for h in listing["hosts"]]
    assert len(addresses) == 2 and len(set(addresses)) == 2, addresses
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
    assert [h["ipmi_address"] for h in sim.hosts()] == addresses


def test_ipmitool_power_shows_in_redfish_and_back(sim, host):
    tool, system = host["ipmi"], host["system"]
    assert power_status(tool) == "off"
    assert system.power_state == sushy.PowerState.OFF

    tool.ok("chassis", "power", "on")
    system.refresh()
    assert system.power_state == sushy.PowerState.ON
    assert (last_boot(sim)["reason"], last_boot(sim)["source"]) == ("ipmi on", {"kind": "disk"})
    tool.ok("chassis", "power", "cycle")
    assert last_boot(sim)["reason"] == "ipmi cycle"
    tool.ok("chassis", "power", "reset")
    assert last_boot(sim)["reason"] == "ipmi reset"
    system.refresh()
    assert system.power_state == sushy.PowerState.ON

    # sushy turns it off; ipmitool sees it.
    system.reset_system(sushy.ResetType.FORCE_OFF)
    assert power_status(tool) == "off"
    system.reset_system(sushy.ResetType.ON)
    assert power_status(tool) == "on"
    tool.ok("chassis", "power", "off")
    system.refresh()
    assert system.power_state == sushy.PowerState.OFF
    # IPMI's power cycle of a host that is off is refused; it stays off.
    p = tool.run("chassis", "power", "cycle")
    assert p.returncode != 0 and "not supported in present state" in p.stderr, p.stderr
    system.refresh()
    assert system.power_state == sushy.PowerState.OFF


def test_ipmitool_bootdev_is_the_redfish_boot_override(sim, host):
    tool, system = host["ipmi"], host["system"]
    for args, target, enabled, mode in [
        (["pxe"], sushy.BootSource.PXE, sushy.BootSourceOverrideEnabled.ONCE,
         sushy.BootSourceOverrideMode.LEGACY),
        (["disk"], sushy.BootSource.HDD, sushy.BootSourceOverrideEnabled.ONCE,
         sushy.BootSourceOverrideMode.LEGACY),
        (["cdrom"], sushy.BootSource.CD, sushy.BootSourceOverrideEnabled.ONCE,
         sushy.BootSourceOverrideMode.LEGACY),
        (["pxe", "options=persistent"], sushy.BootSource.PXE,
         sushy.BootSourceOverrideEnabled.CONTINUOUS, sushy.BootSourceOverrideMode.LEGACY),
        (["disk", "options=efiboot"], sushy.BootSource.HDD,
         sushy.BootSourceOverrideEnabled.ONCE, sushy.BootSourceOverrideMode.UEFI),
    ]:
        tool.ok("chassis", "bootdev", *args)
        system.refresh()
        assert (system.boot.target, system.boot.enabled, system.boot.mode) == \
            (target, enabled, mode), args

    # sushy sets it; ipmitool reads it back.
    system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_CD,
                                   enabled=sushy.BOOT_SOURCE_ENABLED_CONTINUOUS,
                                   mode=sushy.BOOT_SOURCE_MODE_UEFI)
    flags = tool.ok("chassis", "bootparam", "get", "5")
    assert "Force Boot from CD/DVD" in flags, flags
    assert "BIOS EFI boot" in flags, flags
    assert "Options apply to all future boots" in flags, flags

    # `chassis bootdev pxe` then `chassis power on`: a network boot, and the one-time override
    # is used up, as sushy sees.
    tool.ok("chassis", "bootdev", "pxe")
    tool.ok("chassis", "power", "on")
    boot = last_boot(sim)
    assert (boot["reason"], boot["target"], boot["source"]) == \
        ("ipmi on", "Pxe", {"kind": "network"})
    system.refresh()
    assert system.power_state == sushy.PowerState.ON
    assert system.boot.enabled == sushy.BootSourceOverrideEnabled.DISABLED


def test_faults_apply_to_ipmi_too(sim, host):
    tool, system = host["ipmi"], host["system"]
    sim.faults(HOST, fail_power_actions=True)
    p = tool.run("chassis", "power", "on")
    assert p.returncode != 0 and "Unspecified error" in p.stderr, p.stderr
    system.refresh()
    assert system.power_state == sushy.PowerState.OFF
    sim.faults(HOST, fail_power_actions=False)

    sim.faults(HOST, password="rotated")
    p = tool.run("chassis", "power", "status")
    assert p.returncode != 0 and "RMCP+ session" in p.stderr, p.stderr
    assert power_status(Ipmitool(host["info"]["ipmi_address"], USER, "rotated")) == "off"
    sim.faults(HOST, password=None)

    sim.faults(HOST, unreachable=True)
    quick = Ipmitool(host["info"]["ipmi_address"], USER, PASSWORD, "-R", "1", "-N", "1")
    p = quick.run("chassis", "power", "status")
    assert p.returncode != 0, p.stdout
    sim.faults(HOST, unreachable=False)
    assert power_status(tool) == "off"


@pytest.fixture
def up_with_sim_hosts(tmp_path):
    with running(StrataServer(tmp_path / "data", extra_args=["--sim-hosts", "2"]),
                 "strata up") as s:
        yield s


def test_up_with_sim_hosts_serves_their_bmcs(up_with_sim_hosts):
    s = up_with_sim_hosts
    listing_path = s.data_dir / "sim" / "hosts.json"
    assert f"simulated hosts: {listing_path}" in s.stdout(), s.logs()
    listing = json.loads(listing_path.read_text())
    hosts = listing["hosts"]
    assert [h["name"] for h in hosts] == ["sim-0000", "sim-0001"]

    # Redfish answers, on an ephemeral port (not `strata sim`'s default 8100).
    base, _ = split_redfish(hosts[0]["redfish"])
    assert not base.endswith(":8100"), base
    system = sushy_system(hosts[0]["redfish"], hosts[0]["username"], hosts[0]["password"])
    assert system.uuid == hosts[0]["uuid"]
    assert system.power_state == sushy.PowerState.OFF
    # The control API too.
    view = requests.get(f"{listing['control_url']}/sim/v1/hosts/sim-0001", timeout=10).json()
    assert view["ipmi_address"] == hosts[1]["ipmi_address"]

    require_ipmitool()
    tool = Ipmitool(hosts[0]["ipmi_address"], hosts[0]["username"], hosts[0]["password"])
    assert power_status(tool) == "off"
    tool.ok("chassis", "power", "on")
    system.refresh()
    assert system.power_state == sushy.PowerState.ON

    # Stopped with strata up: nothing answers on the Redfish port any more.
    assert s.stop(signal.SIGTERM) == 0, s.logs()

    def refused():
        try:
            requests.get(f"{base}/redfish/v1/", timeout=2)
        except requests.ConnectionError:
            return True
        return False

    poll(refused, 10, "the embedded BMCs to stop")
    # And the host's state was kept in <data-dir>/sim.
    state = json.loads((s.data_dir / "sim" / "state.json").read_text())
    assert state["hosts"]["sim-0000"]["power"] == "On"
