"""A real guest (issue 5): `strata agent --driver libvirt` joins the all-in-one as a QEMU host
(TCG: nested KVM hangs on CI machines), and through the API a tenant-visible server boots a
tiny Debian kernel + busybox initramfs (built by tests/e2e/guest/build-guest.sh) as an
AMI-style image (kernel_id/ramdisk_id). The guest proves from its serial console, read with
`openstack console log show`, that it booted and read its config drive (hostname, uuid, a
marker from user_data, its NIC's MAC). Then: stop (a clean ACPI power-off), start, pause,
suspend (libvirt's managed save), hard and soft reboots; a cold resize on its host (reverted,
then confirmed) that the guest sees (vCPUs, memory, root, ephemeral and swap disks); a volume hot-plugged that the guest
sees (by its serial, the volume id) and unplugged; a port hot-plugged (os-interface) that the
guest sees as a NIC with its MAC, and unplugged; and delete, leaving no domain, no disk and no
port behind.

Needs root, libvirt (scripts/libvirt-up.sh) and qemu; skipped without them unless
STRATA_REQUIRE_LIBVIRT=1 (CI), which makes their absence a failure."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from harness import FAST_ENV, clean_env, poll, strata_bin

HERE = Path(__file__).parent
GUEST_DIR = Path(os.environ.get("STRATA_GUEST_DIR", "/var/tmp/strata-guest"))
VIRSH = ["virsh", "-c", "qemu:///system", "-q"]


def _virsh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VIRSH, *args], capture_output=True, text=True, timeout=60)


def _libvirt_problem() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    try:
        r = _virsh("version")
    except FileNotFoundError:
        return "virsh is not installed (scripts/libvirt-up.sh)"
    if r.returncode != 0:
        return f"libvirtd does not answer (scripts/libvirt-up.sh): {r.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def guest():
    problem = _libvirt_problem()
    if problem:
        if os.environ.get("STRATA_REQUIRE_LIBVIRT") == "1":
            pytest.fail(f"libvirt is required (STRATA_REQUIRE_LIBVIRT=1): {problem}")
        pytest.skip(f"no libvirt: {problem}")
    script = HERE / "guest" / "build-guest.sh"
    # One build per version of the script (the guest's behaviour is in it).
    out = GUEST_DIR / hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    subprocess.run(["bash", str(script), str(out)], check=True, timeout=900)
    return out


def _console(osc, sid) -> str:
    return osc.run("console", "log", "show", sid).stdout


def _size(osc, sid) -> dict:
    """What the guest said of its size at its last boot: cpus, mem_kb, disks (sectors)."""
    line = [ln for ln in _console(osc, sid).splitlines()
            if ln.startswith("STRATA-GUEST-SIZE")][-1]
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    disks = dict(d.split(":") for d in f["disks"].split(",") if d)
    return {"cpus": int(f["cpus"]), "mem_kb": int(f["mem_kb"]),
            "disks": {k: int(v) for k, v in disks.items()}}


def _flavor(osc, sid) -> str:
    f = osc.json("server", "show", sid)["flavor"]
    return f["original_name"] if isinstance(f, dict) else f.split(" ")[0]


def _status(osc, sid):
    return osc.json("server", "show", sid)["status"]


def test_a_libvirt_guest_boots_reads_its_config_drive_and_sees_a_volume(server, osc, tmp_path,
                                                                         guest):
    host = f"lv-{uuid.uuid4().hex[:6]}"
    instances = tmp_path / "instances"
    pw = tmp_path / "pw"
    pw.write_text(server.cloud_auth("strata")["password"] + "\n")
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen(
        [str(strata_bin()), "agent", "--server", server.base_url, "--host", host,
         "--password-file", str(pw), "--driver", "libvirt", "--virt-type", "qemu",
         "--instances-path", str(instances), "--shutdown-timeout", "30"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=clean_env(FAST_ENV))
    sid = None
    try:
        def registered():
            hv = [h for h in osc.json("hypervisor", "list", "--long")
                  if h["Hypervisor Hostname"] == host]
            return hv and hv[0]["State"] == "up" and hv[0]
        hv = poll(registered, 60, f"{host} to register")
        assert hv["Hypervisor Type"] == "QEMU", hv

        kernel = osc.json("image", "create", "--disk-format", "aki", "--container-format", "aki",
                          "--file", str(guest / "vmlinuz"), f"{host}-kernel")["id"]
        ramdisk = osc.json("image", "create", "--disk-format", "ari", "--container-format",
                           "ari", "--file", str(guest / "initrd.img"), f"{host}-ramdisk")["id"]
        root = tmp_path / "root.img"
        root.write_bytes(b"\0" * (1 << 20))
        image = osc.json("image", "create", "--disk-format", "ami", "--container-format", "ami",
                         "--file", str(root), "--property", f"kernel_id={kernel}",
                         "--property", f"ramdisk_id={ramdisk}",
                         "--property", "os_command_line=console=ttyS0 quiet",
                         f"{host}-image")["id"]
        flavor = f"{host}-flavor"
        osc.run("flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "1", flavor)
        marker = f"STRATA-MARKER-{uuid.uuid4().hex[:12]}"
        user_data = tmp_path / "user-data"
        user_data.write_text(f"#!/bin/sh\necho {marker}\n")

        t0 = time.monotonic()
        s = osc.json("server", "create", "--image", image, "--flavor", flavor,
                     "--network", "private", "--user-data", str(user_data),
                     "--config-drive", "True", "--availability-zone", f"nova:{host}",
                     f"{host}-vm")
        sid = s["id"]
        log_file = instances / sid / "console.log"
        poll(lambda: log_file.exists() and log_file.stat().st_size > 0, 300,
             "the guest's first console line", interval=0.1)
        first_line = time.monotonic() - t0
        print(f"libvirt/TCG guest: POST /servers -> first console line {first_line:.1f} s")
        poll(lambda: _status(osc, sid) == "ACTIVE", 120, "ACTIVE", interval=0.5)
        shown = osc.json("server", "show", sid)
        assert shown["OS-EXT-SRV-ATTR:host"] == host, shown
        hostname = shown["OS-EXT-SRV-ATTR:hostname"]
        port = osc.json("port", "list", "--server", sid)[0]

        out = poll(lambda: (c := _console(osc, sid)) and "STRATA-GUEST-READY" in c and c, 180,
                   "the guest to be ready (console log)", interval=1)
        assert "STRATA-GUEST-BOOTED" in out, out
        assert "STRATA-GUEST-CONFIG-DRIVE" in out, out
        assert f"STRATA-GUEST-HOSTNAME {hostname}.novalocal" in out, out
        assert f"STRATA-GUEST-UUID {sid}" in out, out
        assert f"STRATA-GUEST-USERDATA echo {marker}" in out, out
        assert port["MAC Address"] in out, (port, out)

        # libvirt has it as the server names it.
        dom = _virsh("domname", sid)
        assert dom.stdout.strip() == shown["OS-EXT-SRV-ATTR:instance_name"], dom
        assert _virsh("domstate", sid).stdout.strip() == "running"

        # Stop: the guest powers off cleanly (ACPI), start: it boots again.
        osc.run("server", "stop", sid)
        poll(lambda: _status(osc, sid) == "SHUTOFF", 90, "SHUTOFF", interval=0.5)
        assert _virsh("domstate", sid).stdout.strip() == "shut off"
        assert "STRATA-GUEST-POWEROFF" in log_file.read_text(errors="replace")
        osc.run("server", "start", sid)
        poll(lambda: _status(osc, sid) == "ACTIVE", 90, "ACTIVE again", interval=0.5)
        poll(lambda: _console(osc, sid).count("STRATA-GUEST-READY") >= 2, 180,
             "the second boot", interval=1)

        # Pause and suspend keep the guest's run (no boot); reboots boot it again.
        osc.run("server", "pause", sid)
        poll(lambda: _status(osc, sid) == "PAUSED", 60, "PAUSED", interval=0.5)
        assert _virsh("domstate", sid).stdout.strip() == "paused"
        osc.run("server", "unpause", sid)
        poll(lambda: _status(osc, sid) == "ACTIVE", 60, "unpaused", interval=0.5)
        osc.run("server", "suspend", sid)
        poll(lambda: _status(osc, sid) == "SUSPENDED", 90, "SUSPENDED", interval=0.5)
        assert "Managed save:   yes" in _virsh("dominfo", sid).stdout
        osc.run("server", "resume", sid)
        poll(lambda: _status(osc, sid) == "ACTIVE", 90, "resumed", interval=0.5)
        assert _virsh("domstate", sid).stdout.strip() == "running"
        osc.run("server", "reboot", "--hard", "--wait", sid)
        poll(lambda: _console(osc, sid).count("STRATA-GUEST-READY") >= 3, 180,
             "the boot after a hard reboot", interval=1)
        assert _console(osc, sid).count("STRATA-GUEST-BOOTED") == 3
        osc.run("server", "reboot", "--wait", sid)
        poll(lambda: _console(osc, sid).count("STRATA-GUEST-READY") >= 4, 180,
             "the boot after a soft reboot", interval=1)
        # A soft reboot is a clean power-off first.
        assert _console(osc, sid).count("STRATA-GUEST-POWEROFF") == 2

        # Resize on its one host (Nova's allow_resize_to_same_host; the all-in-one's fake
        # host is disabled so that it is the only choice): powered off, redefined and booted
        # with 2 vCPUs, more memory, a 2 GiB root disk and the new flavor's ephemeral disk
        # (ext4, labelled ephemeral0) and swap. Reverted: the guest as it was. Resized again
        # and confirmed: the kept disks go.
        before = _size(osc, sid)
        assert before["cpus"] == 1 and before["disks"]["vda"] == 2 * 1024 * 1024, before
        big = f"{host}-big"
        osc.run("flavor", "create", "--ram", "384", "--vcpus", "2", "--disk", "2",
                "--ephemeral", "1", "--swap", "64", big)
        others = [s["Host"] for s in osc.json("compute", "service", "list",
                                              "--service", "nova-compute")
                  if s["Host"] != host and s["Status"] == "enabled"]
        for h in others:
            osc.run("compute", "service", "set", "--disable", h, "nova-compute")
        try:
            kept = instances / sid / "resize-kept"
            for finish in ("revert", "confirm"):
                boots = _console(osc, sid).count("STRATA-GUEST-READY")
                osc.run("server", "resize", "--flavor", big, sid)
                poll(lambda: _status(osc, sid) == "VERIFY_RESIZE", 180, "VERIFY_RESIZE",
                     interval=0.5)
                poll(lambda: _console(osc, sid).count("STRATA-GUEST-READY") > boots, 180,
                     "the boot after the resize", interval=1)
                grown = _size(osc, sid)
                assert grown["cpus"] == 2, grown
                assert grown["mem_kb"] >= before["mem_kb"] + 100 * 1024, (before, grown)
                assert grown["disks"]["vda"] == 4 * 1024 * 1024, grown
                assert grown["disks"]["vdb"] == 2 * 1024 * 1024, grown
                assert grown["disks"]["vdc"] == 64 * 2048, grown
                out = _console(osc, sid)
                assert "STRATA-GUEST-DISKSIG vdb label=ephemeral0" in out, out
                assert "STRATA-GUEST-DISKSIG vdc label= swap=SWAPSPACE2" in out, out
                assert kept.is_dir(), "the old disk is kept until the resize is confirmed"
                boots = _console(osc, sid).count("STRATA-GUEST-READY")
                osc.run("server", "resize", finish, sid)
                poll(lambda: _status(osc, sid) == "ACTIVE", 180, f"ACTIVE after {finish}",
                     interval=0.5)
                if finish == "revert":
                    poll(lambda: _console(osc, sid).count("STRATA-GUEST-READY") > boots, 180,
                         "the boot after the revert", interval=1)
                    assert _size(osc, sid) == before, (before, _size(osc, sid))
                    assert _flavor(osc, sid) == flavor
                poll(lambda: not kept.exists(), 60, f"the kept disks to go after {finish}",
                     interval=0.5)
            assert _flavor(osc, sid) == big
        finally:
            for h in others:
                osc.run("compute", "service", "set", "--enable", h, "nova-compute")

        # A volume, hot-plugged: the guest sees a new disk with the volume's id as serial.
        vol = osc.json("volume", "create", "--size", "1", f"{host}-vol")["id"]
        poll(lambda: osc.json("volume", "show", vol)["status"] == "available", 60, "volume")
        osc.run("server", "add", "volume", sid, vol)
        poll(lambda: osc.json("volume", "show", vol)["status"] == "in-use", 90, "in-use",
             interval=0.5)
        added = poll(lambda: [ln for ln in _console(osc, sid).splitlines()
                              if ln.startswith("STRATA-GUEST-DISK-ADDED")], 90,
                     "the guest to see the volume", interval=1)
        dev, sectors, serial = added[-1].split()[1:4]
        assert serial == vol[:20] and int(sectors) == 2 * 1024 * 1024, added
        osc.run("server", "remove", "volume", sid, vol)
        poll(lambda: osc.json("volume", "show", vol)["status"] == "available", 90,
             "available after detach", interval=0.5)
        poll(lambda: f"STRATA-GUEST-DISK-REMOVED {dev}" in _console(osc, sid), 60,
             "the guest to lose the disk", interval=1)
        osc.run("volume", "delete", vol)

        # A port attached (os-interface) is hot-plugged: the guest sees a NIC with its MAC;
        # detached, the NIC goes away.
        extra = osc.json("port", "create", "--network", "private", f"{host}-port")
        osc.run("server", "add", "port", sid, extra["id"])
        nic = poll(lambda: [ln for ln in _console(osc, sid).splitlines()
                            if ln.startswith("STRATA-GUEST-NIC-ADDED")
                            and extra["mac_address"] in ln], 90,
                   "the guest to see the new NIC", interval=1)
        ifname = nic[-1].split()[1]
        osc.run("server", "remove", "port", sid, extra["id"])
        poll(lambda: f"STRATA-GUEST-NIC-REMOVED {ifname}" in _console(osc, sid), 90,
             "the guest to lose the NIC", interval=1)
        osc.run("port", "delete", extra["id"])

        # Delete: no domain, no disk, no port left.
        # (The API forgets the server at once; its host removes the guest in the background.)
        osc.run("server", "delete", "--wait", sid)
        poll(lambda: _virsh("dominfo", sid).returncode != 0, 60, "the domain to be undefined",
             interval=0.2)
        poll(lambda: not (instances / sid).exists(), 30, "the guest's directory to be removed",
             interval=0.2)
        assert [p.name for p in instances.iterdir()] == ["_base"], list(instances.iterdir())
        assert osc.json("port", "list", "--device-id", sid) == []
        sid = None
    finally:
        # The agent first: running, it would build the guest again.
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
        rc = agent.wait(timeout=60)
        log.close()
        if sid is not None:
            subprocess.run([*VIRSH, "destroy", sid], capture_output=True)
            subprocess.run([*VIRSH, "undefine", sid, "--managed-save"], capture_output=True)
            osc.run("server", "delete", sid, check=False)
        for svc in osc.json("compute", "service", "list", "--host", host):
            osc.run("compute", "service", "delete", str(svc["ID"]))
    assert rc == 0, (tmp_path / "agent.log").read_text()
