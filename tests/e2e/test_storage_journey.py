"""Images and volumes with the real `openstack` CLI against `strata up`: the tenant's journey of
issue 3 (Glance v2 + Cinder v3 on the local backends), on a server of its own so the data dirs
can be checked for leftovers at the end."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness import Openstack, StrataServer, poll

MIB = 1 << 20
GIB = 1 << 30
WAIT_S = 120


@pytest.fixture
def storage(tmp_path):
    s = StrataServer(tmp_path / "data")
    try:
        s.start()
        yield s
        assert s.stop(signal.SIGTERM) == 0, s.logs()
    finally:
        s.kill()


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def files(d: Path) -> list[str]:
    """Every file under d (recursively), hidden ones included."""
    if not d.exists():
        return []
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def wait_status(osc: Openstack, kind: str, ident: str, want: str, cloud: str | None = None):
    """Poll `openstack <kind> show` until status is `want`; fail early on an error status."""

    def check():
        shown = osc.json(*kind.split(), "show", ident, cloud=cloud)
        status = shown["status"]
        if status.startswith("error") or status == "killed":
            raise AssertionError(f"{kind} {ident} went to {status}: {shown}")
        return shown if status == want else None

    return poll(check, WAIT_S, f"{kind} {ident} to be {want}", interval=0.2)


def test_image_and_volume_journey(storage, tmp_path):
    osc = Openstack(storage)
    demo = "strata-demo"

    # --- images: a few MiB of random bytes and a real qcow2 ------------------------------
    raw = tmp_path / "random.raw"
    raw.write_bytes(os.urandom(3 * MIB + 12345))
    qcow = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "64M"], check=True)

    img = osc.json("image", "create", "--file", str(raw), "--disk-format", "raw",
                   "--container-format", "bare", "journey-raw")
    img = wait_status(osc, "image", img["id"], "active")
    assert img["checksum"] == md5(raw)
    assert int(img["size"]) == raw.stat().st_size
    qimg = osc.json("image", "create", "--file", str(qcow), "--disk-format", "qcow2",
                    "--container-format", "bare", "journey-qcow2")
    qimg = wait_status(osc, "image", qimg["id"], "active")
    assert int(qimg["virtual_size"]) == 64 * MIB, qimg
    assert qimg["checksum"] == md5(qcow)

    listed = {r["Name"]: r for r in osc.json("image", "list")}
    assert {"journey-raw", "journey-qcow2"} <= set(listed), listed
    saved = tmp_path / "saved.raw"
    osc.run("image", "save", "--file", str(saved), img["id"])
    assert md5(saved) == md5(raw)

    osc.run("image", "set", "--property", "os_distro=debian", "--tag", "golden", img["id"])
    shown = osc.json("image", "show", img["id"])
    assert shown["properties"]["os_distro"] == "debian", shown
    assert "golden" in shown["tags"], shown
    osc.run("image", "unset", "--property", "os_distro", "--tag", "golden", img["id"])
    shown = osc.json("image", "show", img["id"])
    assert "os_distro" not in (shown.get("properties") or {}), shown
    assert "golden" not in shown["tags"], shown

    # Share with the demo project: invisible until shared, listed once accepted.
    osc.run("image", "set", "--shared", img["id"])
    assert img["id"] not in [r["ID"] for r in osc.json("image", "list", cloud=demo)]
    demo_project = osc.json("project", "show", "demo")["id"]
    osc.run("image", "add", "project", img["id"], demo_project)
    assert osc.json("image", "show", img["id"], cloud=demo)["id"] == img["id"]
    osc.run("image", "set", "--accept", img["id"], cloud=demo)
    assert img["id"] in [r["ID"] for r in osc.json("image", "list", cloud=demo)]
    members = osc.json("image", "member", "list", img["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(demo_project, "accepted")]

    # --- volumes ------------------------------------------------------------------------
    blank = osc.json("volume", "create", "--size", "1", "journey-blank")
    assert blank["status"] in ("creating", "available"), blank
    blank = wait_status(osc, "volume", blank["id"], "available")
    assert int(blank["size"]) == 1

    from_image = osc.json("volume", "create", "--size", "1", "--image", qimg["id"],
                          "journey-from-image")
    from_image = wait_status(osc, "volume", from_image["id"], "available")
    assert str(from_image["bootable"]).lower() == "true", from_image
    assert from_image["volume_image_metadata"]["image_id"] == qimg["id"], from_image

    snap = osc.json("volume", "snapshot", "create", "--volume", blank["id"], "journey-snap")
    snap = wait_status(osc, "volume snapshot", snap["id"], "available")
    assert int(snap["size"]) == 1

    from_snap = osc.json("volume", "create", "--snapshot", snap["id"], "--size", "1",
                         "journey-from-snap")
    from_snap = wait_status(osc, "volume", from_snap["id"], "available")
    assert from_snap["snapshot_id"] == snap["id"]

    osc.run("volume", "set", "--size", "2", blank["id"])
    poll(lambda: int(osc.json("volume", "show", blank["id"])["size"]) == 2, WAIT_S,
         "the volume to grow to 2 GiB", interval=0.2)
    wait_status(osc, "volume", blank["id"], "available")

    osc.run("volume", "set", "--property", "tier=gold", blank["id"])
    assert osc.json("volume", "show", blank["id"])["properties"] == {"tier": "gold"}

    # Upload a volume to a new image: the image holds the volume's disk.
    uploaded = osc.json("image", "create", "--volume", from_image["id"], "--disk-format",
                        "qcow2", "--container-format", "bare", "journey-from-volume")
    image_id = uploaded.get("image_id") or uploaded.get("id")
    up = wait_status(osc, "image", image_id, "active")
    assert int(up["virtual_size"]) == GIB, up
    assert up["disk_format"] == "qcow2"
    wait_status(osc, "volume", from_image["id"], "available")

    # --- quota refusal --------------------------------------------------------------------
    osc.run("quota", "set", "--volumes", "1", demo_project)
    first = osc.json("volume", "create", "--size", "1", "demo-one", cloud=demo)
    wait_status(osc, "volume", first["id"], "available", cloud=demo)
    refused = osc.fails("volume", "create", "--size", "1", "demo-two", cloud=demo)
    assert "VolumeLimitExceeded" in refused.output or "quota" in refused.output.lower(), \
        refused.output
    assert [r["Name"] for r in osc.json("volume", "list", cloud=demo)] == ["demo-one"]

    # --- delete everything; nothing is left on disk ----------------------------------------
    osc.run("volume", "delete", first["id"], cloud=demo)
    osc.run("volume", "delete", from_snap["id"])
    osc.run("volume", "snapshot", "delete", snap["id"])
    poll(lambda: not osc.json("volume", "snapshot", "list"), WAIT_S, "snapshots to go")
    osc.run("volume", "delete", blank["id"], from_image["id"])
    poll(lambda: not osc.json("volume", "list", "--all-projects"), WAIT_S, "volumes to go")
    for i in (img["id"], qimg["id"], image_id):
        osc.run("image", "delete", i)
    assert not osc.json("image", "list")

    vol_dir = storage.data_dir / "volumes"
    poll(lambda: files(vol_dir) == [], WAIT_S, f"{vol_dir} to be empty (has {files(vol_dir)})")
    img_dir = storage.data_dir / "images"
    assert files(img_dir) == [], files(img_dir)
