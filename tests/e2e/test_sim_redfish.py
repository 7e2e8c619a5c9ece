"""`strata sim` driven by sushy, the Redfish library Ironic uses: an independent client that
knows real BMCs, against the simulator's BMCs.

Each test module run starts its own `strata sim` (sim_harness.Sim: ephemeral BMC ports, the
control API on a free port) and stops it by PID with SIGTERM; it must exit 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import sushy
from sushy import exceptions as sushy_exc
from sushy.resources import settings as sushy_settings

from harness import running
from sim_harness import (SIM_PASSWORD as PASSWORD, SIM_USER as USER, Sim,
                         split_redfish as split, sushy_root)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = Sim(tmp_path_factory.mktemp("sim") / "data", "--hosts", "2", "--cpus", "8",
            "--ram-mib", "16384", "--disk-gib", "20", "--nics", "2")
    with running(s, "strata sim"):
        yield s


@pytest.fixture
def host(sim):
    """Host sim-0001 (sim-0000 is left to the tests that change credentials), powered off,
    without override or media, and sushy's view of it."""
    h = sim.host("sim-0001")
    sim.faults("sim-0001", password=None, fail_power_actions=False)
    requests.post(f"{sim.control}/hosts/sim-0001/power", json={"state": "Off"}, timeout=10)
    base, path = split(h["redfish"])
    with sushy_root(base) as root:
        system = root.get_system(path)
        system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_NONE,
                                       enabled=sushy.BOOT_SOURCE_ENABLED_DISABLED)
        vm = system.virtual_media.get_member(system.virtual_media.members_identities[0])
        if vm.inserted:
            vm.eject_media()
        system.refresh()
        yield {"info": h, "root": root, "system": system, "base": base, "path": path}


def boots(sim, name="sim-0001") -> list[dict]:
    return sim.host(name)["boot_log"]


def test_sushy_reads_the_system_and_its_inventory(sim, host):
    root, system, info = host["root"], host["system"], host["info"]
    inv = info["inventory"]
    assert root.redfish_version.startswith("1.")
    assert [m for m in root.get_system_collection().members_identities] == [host["path"]]
    assert system.uuid == info["uuid"]
    assert system.identity == info["uuid"]
    assert system.manufacturer == inv["system"]["manufacturer"]
    assert system.serial_number == inv["system"]["serial_number"]
    assert system.power_state == sushy.PowerState.OFF
    assert system.status.health == sushy.Health.OK

    procs = system.processors.summary
    assert procs.count == 8
    assert procs.architecture == sushy.ProcessorArchitecture.X86
    assert system.memory_summary.size_gib == 16

    macs = system.ethernet_interfaces.summary
    assert set(macs) == {n["mac"] for n in inv["nics"]}
    assert all(state == sushy.State.ENABLED for state in macs.values())
    assert info["boot_mac"] == inv["nics"][0]["mac"]

    disk_bytes = 20 * 2**30
    assert system.simple_storage.max_size_bytes == disk_bytes
    storage = system.storage.get_members()
    [controller] = storage[0].controllers.get_members()
    assert sushy.Protocol.SATA in controller.device_protocols
    assert storage[0].storage_controllers[0].member_id == "0"
    drive = storage[0].drives[0]
    assert (drive.capacity_bytes, drive.serial_number) == (disk_bytes, inv["disks"][0]["serial_number"])
    assert drive.media_type == "SSD"
    assert system.storage.max_drive_size_bytes == disk_bytes

    [manager] = system.managers
    assert manager.manager_type == sushy.ManagerType.BMC
    [chassis] = system.chassis
    assert chassis.chassis_type == sushy.ChassisType.RACK_MOUNT


def test_sushy_powers_the_host_and_it_boots_the_effective_source(sim, host):
    system = host["system"]
    allowed = system.get_allowed_reset_system_values()
    for kind in (sushy.ResetType.ON, sushy.ResetType.FORCE_OFF, sushy.ResetType.GRACEFUL_SHUTDOWN,
                 sushy.ResetType.FORCE_RESTART, sushy.ResetType.GRACEFUL_RESTART,
                 sushy.ResetType.PUSH_POWER_BUTTON, sushy.ResetType.NMI):
        assert kind in allowed, kind
    before = len(boots(sim))

    system.reset_system(sushy.ResetType.ON)
    system.refresh()
    assert system.power_state == sushy.PowerState.ON
    assert boots(sim)[-1]["source"] == {"kind": "disk"}

    # One PXE boot, as Ironic asks for it before a deploy.
    system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_PXE,
                                   enabled=sushy.BOOT_SOURCE_ENABLED_ONCE,
                                   mode=sushy.BOOT_SOURCE_MODE_UEFI)
    system.refresh()
    assert system.boot.target == sushy.BootSource.PXE
    assert system.boot.enabled == sushy.BootSourceOverrideEnabled.ONCE
    assert system.boot.mode == sushy.BootSourceOverrideMode.UEFI
    system.reset_system(sushy.ResetType.FORCE_RESTART)
    log = boots(sim)
    assert (log[-1]["reason"], log[-1]["target"], log[-1]["source"]) == \
        ("ForceRestart", "Pxe", {"kind": "network"})
    system.refresh()
    assert system.boot.enabled == sushy.BootSourceOverrideEnabled.DISABLED

    system.reset_system(sushy.ResetType.GRACEFUL_SHUTDOWN)
    system.refresh()
    assert system.power_state == sushy.PowerState.OFF
    system.reset_system(sushy.ResetType.GRACEFUL_RESTART)
    system.refresh()
    assert system.power_state == sushy.PowerState.ON
    assert boots(sim)[-1]["source"] == {"kind": "disk"}
    system.reset_system(sushy.ResetType.FORCE_OFF)
    system.refresh()
    assert system.power_state == sushy.PowerState.OFF
    assert len(boots(sim)) == before + 3


def test_a_bad_boot_target_is_a_redfish_400_sushy_understands(host):
    system = host["system"]
    # sushy checks targets against the advertised list before sending...
    with pytest.raises(sushy_exc.InvalidParameterValueError):
        system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_FLOPPY)
    # ...so send it raw through sushy's connector: the BMC refuses it with a Redfish error.
    with pytest.raises(sushy_exc.BadRequestError) as e:
        system._conn.patch(system.path, data={"Boot": {"BootSourceOverrideTarget": "Floppy"}})
    assert e.value.status_code == 400
    assert e.value.code.startswith("Base.1.")
    assert "Floppy" in e.value.detail
    assert "#/Boot/BootSourceOverrideTarget" in e.value.related_properties


def test_bios_settings_are_staged_and_applied_at_reset(host):
    system = host["system"]
    bios = system.bios
    assert bios.attributes["ProcVirtualization"] == "Enabled"
    assert bios.update_status.status == sushy_settings.NO_UPDATES
    bios.set_attributes({"ProcVirtualization": "Disabled", "PxeRetryCount": 7})
    assert bios.pending_attributes == {"ProcVirtualization": "Disabled", "PxeRetryCount": 7}
    bios.refresh()
    assert bios.attributes["ProcVirtualization"] == "Enabled"
    system.reset_system(sushy.ResetType.ON)
    bios.refresh()
    assert bios.attributes["ProcVirtualization"] == "Disabled"
    assert bios.attributes["PxeRetryCount"] == 7
    assert bios.update_status.status == sushy_settings.UPDATE_SUCCESS
    with pytest.raises(sushy_exc.BadRequestError):
        bios.set_attributes({"ProcVirtualization": "Sometimes"})
    bios.reset_bios()
    system.reset_system(sushy.ResetType.FORCE_RESTART)
    bios.refresh()
    assert bios.attributes["ProcVirtualization"] == "Enabled"


def test_virtual_media_insert_boot_and_eject(sim, host):
    system = host["system"]
    [manager] = system.managers
    vm = manager.virtual_media.get_member(manager.virtual_media.members_identities[0])
    assert vm.identity == "Cd"
    assert sushy.VirtualMediaType.CD in vm.media_types
    assert not vm.inserted
    iso = "http://127.0.0.1:9/ironic/deploy.iso"
    vm.insert_media(iso, inserted=True, write_protected=True)
    vm.refresh()
    assert (vm.inserted, vm.image, vm.image_name, vm.write_protected) == \
        (True, iso, "deploy.iso", True)
    # The same drive, seen from the system.
    sys_vm = system.virtual_media.get_member(system.virtual_media.members_identities[0])
    assert sys_vm.image == iso

    system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_CD,
                                   enabled=sushy.BOOT_SOURCE_ENABLED_ONCE)
    system.reset_system(sushy.ResetType.ON)
    assert boots(sim)[-1]["source"] == {"kind": "virtual_media", "url": iso}

    vm.eject_media()
    vm.refresh()
    assert not vm.inserted and vm.image is None
    # Ejecting an empty drive is fine too.
    vm.eject_media()


def test_session_auth_logs_in_and_out(sim, host):
    base, path = host["base"], host["path"]
    sessions_url = f"{base}/redfish/v1/SessionService/Sessions"

    def open_sessions():
        members = requests.get(sessions_url, auth=(USER, PASSWORD), timeout=10).json()["Members"]
        return {m["@odata.id"] for m in members}

    auth = sushy.auth.SessionAuth(USER, PASSWORD)
    root = sushy.Sushy(base, auth=auth, verify=False)
    assert auth.get_session_key()
    session = auth.get_session_resource_id()
    assert session.startswith("/redfish/v1/SessionService/Sessions/")
    assert root.get_system(path).uuid == host["info"]["uuid"]
    assert session in open_sessions()
    auth.close()
    assert session not in open_sessions()
    with pytest.raises(sushy_exc.AccessError):
        sushy.Sushy(base, auth=sushy.auth.SessionAuth(USER, "wrong"), verify=False)


def test_wrong_and_rotated_passwords_are_access_errors(sim):
    h = sim.host("sim-0000")
    base, path = split(h["redfish"])
    # Session login fails, sushy falls back to basic auth, and the first call is refused.
    root = sushy.Sushy(base, username=USER, password="wrong", verify=False)
    with pytest.raises(sushy_exc.AccessError):
        root.get_system(path)

    sim.faults("sim-0000", password="rotated")
    try:
        with pytest.raises(sushy_exc.AccessError):
            sushy.Sushy(base, username=USER, password=PASSWORD, verify=False).get_system(path)
        with sushy_root(base, password="rotated") as ok:
            assert ok.get_system(path).uuid == h["uuid"]
    finally:
        sim.faults("sim-0000", password=None)


def test_injected_power_failure_is_a_server_side_error(sim, host):
    system = host["system"]
    sim.faults("sim-0001", fail_power_actions=True)
    try:
        with pytest.raises(sushy_exc.ServerSideError):
            system.reset_system(sushy.ResetType.ON)
        system.refresh()
        assert system.power_state == sushy.PowerState.OFF
    finally:
        sim.faults("sim-0001", fail_power_actions=False)


def test_tls_fleet_verifies_with_its_ca_and_keeps_state_across_restart(tmp_path):
    s = Sim(tmp_path / "tls", "--hosts", "1", "--tls")
    try:
        s.start()
        h = s.hosts()[0]
        base, path = split(h["redfish"])
        assert base.startswith("https://127.0.0.1:")
        listing = json.loads((s.data_dir / "hosts.json").read_text())
        ca = listing["ca_file"]
        assert Path(ca).is_file()

        with sushy_root(base, verify=ca) as root:
            system = root.get_system(path)
            system.reset_system(sushy.ResetType.ON)
            system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_PXE,
                                           enabled=sushy.BOOT_SOURCE_ENABLED_CONTINUOUS)
        # Without the CA, the system's trust store refuses the BMC's certificate.
        with pytest.raises(sushy_exc.ConnectionError):
            sushy.Sushy(base, username=USER, password=PASSWORD, verify=True)

        assert s.stop() == 0, s.logs()
        s.start()
        h = s.hosts()[0]
        base, path = split(h["redfish"])
        with sushy_root(base, verify=ca) as root:
            system = root.get_system(path)
            assert system.power_state == sushy.PowerState.ON
            assert system.boot.target == sushy.BootSource.PXE
            assert system.boot.enabled == sushy.BootSourceOverrideEnabled.CONTINUOUS
            assert h["uuid"] == system.uuid
        assert s.stop() == 0, s.logs()
    finally:
        s.kill()
