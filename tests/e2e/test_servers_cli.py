"""Servers (issue 5) with the real `openstack` CLI against `strata up`: a tenant's journey on
the all-in-one's own fake-driver host (flavor, keypair, image, `server create --wait`, list,
show, the power actions, lock, rebuild, delete), quota refusal, and server-group
anti-affinity across two fake hosts ending in NoValidHost."""

from __future__ import annotations

import socket
import subprocess

from harness import Openstack, StrataServer, poll

DEMO = "strata-demo"


def _image(osc, name, tmp_path, cloud=DEMO):
    data = tmp_path / f"{name}.raw"
    data.write_bytes(b"\0" * 65536)
    return osc.json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                    "--file", str(data), name, cloud=cloud)["id"]


def _status(osc, sid, cloud=DEMO):
    return osc.json("server", "show", sid, cloud=cloud)["status"]


def _wait_status(osc, sid, status, cloud=DEMO):
    poll(lambda: _status(osc, sid, cloud) == status, 60, f"server {sid} {status}", interval=0.2)


def test_server_journey(osc, name, tmp_path):
    img = _image(osc, name("img"), tmp_path)
    img2 = _image(osc, name("img2"), tmp_path)
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kname = name("key")
    osc.run("keypair", "create", "--public-key", f"{key}.pub", kname, cloud=DEMO)
    fname = name("flv")
    osc.run("flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "1", fname)
    sname = name("vm")
    s = osc.json("server", "create", "--image", img, "--flavor", fname, "--network", "private",
                 "--key-name", kname, "--property", "role=e2e", "--wait", sname, cloud=DEMO)
    assert s["status"] == "ACTIVE", s
    assert s["key_name"] == kname and s["properties"] == {"role": "e2e"}, s
    addrs = s["addresses"]["private"]
    assert len(addrs) == 1 and addrs[0].startswith("10."), s
    sid = s["id"]
    listed = {x["ID"]: x for x in osc.json("server", "list", cloud=DEMO)}
    assert listed[sid]["Status"] == "ACTIVE" and listed[sid]["Name"] == sname, listed
    # The admin sees where it runs: the all-in-one's own host.
    shown = osc.json("server", "show", sid)
    assert shown["OS-EXT-SRV-ATTR:host"] == socket.gethostname(), shown
    # Power actions.
    osc.run("server", "stop", sid, cloud=DEMO)
    _wait_status(osc, sid, "SHUTOFF")
    osc.run("server", "start", sid, cloud=DEMO)
    _wait_status(osc, sid, "ACTIVE")
    osc.run("server", "reboot", "--hard", "--wait", sid, cloud=DEMO)
    assert _status(osc, sid) == "ACTIVE"
    osc.run("server", "reboot", "--wait", sid, cloud=DEMO)
    osc.run("server", "pause", sid, cloud=DEMO)
    _wait_status(osc, sid, "PAUSED")
    osc.run("server", "unpause", sid, cloud=DEMO)
    _wait_status(osc, sid, "ACTIVE")
    osc.run("server", "suspend", sid, cloud=DEMO)
    _wait_status(osc, sid, "SUSPENDED")
    osc.run("server", "resume", sid, cloud=DEMO)
    _wait_status(osc, sid, "ACTIVE")
    # Locked: the owner can neither stop nor delete it.
    osc.run("server", "lock", sid, cloud=DEMO)
    out = osc.fails("server", "stop", sid, cloud=DEMO).output
    assert "409" in out or "locked" in out.lower(), out
    out = osc.fails("server", "delete", sid, cloud=DEMO).output
    assert "locked" in out.lower() or "409" in out, out
    osc.run("server", "unlock", sid, cloud=DEMO)
    # Rebuild onto another image.
    osc.run("server", "rebuild", "--image", img2, "--wait", sid, cloud=DEMO)
    rebuilt = osc.json("server", "show", sid, cloud=DEMO)
    assert rebuilt["status"] == "ACTIVE" and img2 in rebuilt["image"], rebuilt
    actions = {a["Action"] for a in osc.json("server", "event", "list", sid, cloud=DEMO)}
    assert {"create", "stop", "start", "reboot", "rebuild"} <= actions, actions
    # Delete: gone, and its port with it.
    osc.run("server", "delete", "--wait", sid, cloud=DEMO)
    out = osc.fails("server", "show", sid, cloud=DEMO).output
    assert "No Server found" in out or "404" in out, out
    ports = osc.json("port", "list", "--device-id", sid)
    assert ports == [], ports


def test_quota_refusal(osc, name, tmp_path):
    img = _image(osc, name("img"), tmp_path)
    osc.run("quota", "set", "--instances", "1", "demo")
    try:
        s = osc.json("server", "create", "--image", img, "--flavor", "m1.nano", "--network",
                     "private", "--wait", name("q1"), cloud=DEMO)
        out = osc.fails("server", "create", "--image", img, "--flavor", "m1.nano",
                        "--network", "private", name("q2"), cloud=DEMO).output
        assert "Quota exceeded for instances" in out and "403" in out, out
        osc.run("server", "delete", "--wait", s["id"], cloud=DEMO)
    finally:
        osc.run("quota", "set", "--instances", "10", "demo")


def test_anti_affinity_across_two_fake_hosts(tmp_path):
    """Two fake hosts (the all-in-one's own host disabled): anti-affinity puts the second
    member on the other host and the third ends in ERROR with NoValidHost, its claim
    released."""
    s = StrataServer(tmp_path / "data", extra_args=["--fake-hosts", "2"])
    try:
        s.start()
        osc = Openstack(s)
        poll(lambda: len(osc.json("hypervisor", "list")) == 3, 30, "three hypervisors")
        osc.run("compute", "service", "set", "--disable", socket.gethostname(), "nova-compute")
        img = _image(osc, "img", tmp_path, cloud="strata")
        group = osc.json("server", "group", "create", "--policy", "anti-affinity", "g1")
        hosts = []
        for i in range(2):
            srv = osc.json("server", "create", "--image", img, "--flavor", "m1.nano",
                           "--network", "private", "--hint", f"group={group['id']}", "--wait",
                           f"aa{i}")
            hosts.append(srv["OS-EXT-SRV-ATTR:host"])
        assert sorted(hosts) == ["fake-1", "fake-2"], hosts
        third = osc.json("server", "create", "--image", img, "--flavor", "m1.nano",
                         "--network", "private", "--hint", f"group={group['id']}", "aa3")
        _wait_status(osc, third["id"], "ERROR", cloud="strata")
        shown = osc.json("server", "show", third["id"])
        assert "No valid host" in shown["fault"]["message"], shown
        usages = osc.json("--os-placement-api-version", "1.39", "resource", "provider",
                          "list")
        assert len(usages) == 3, usages
        members = osc.json("server", "group", "show", group["id"])["members"]
        assert len(members) == 3, members
    finally:
        s.stop()


def test_a_standalone_agent_joins_and_runs_a_server(server, osc, tmp_path):
    """`strata agent --server URL --host ext-1` authenticates with the admin password over
    HTTP, registers its host (a hypervisor, a compute service, a placement provider) and
    runs a server forced onto it; SIGTERM stops it cleanly."""
    import signal

    from harness import FAST_ENV, clean_env, strata_bin

    pw = tmp_path / "pw"
    pw.write_text(server.cloud_auth("strata")["password"] + "\n")
    log = open(tmp_path / "agent.log", "wb")
    proc = subprocess.Popen(
        [str(strata_bin()), "agent", "--server", server.base_url, "--host", "ext-1",
         "--password-file", str(pw), "--vcpus", "4"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=clean_env(FAST_ENV))
    try:
        poll(lambda: any(h["Hypervisor Hostname"] == "ext-1" and h["State"] == "up"
                         for h in osc.json("hypervisor", "list")), 30, "ext-1 to register")
        img = _image(osc, "ext-img", tmp_path, cloud="strata")
        s = osc.json("server", "create", "--image", img, "--flavor", "m1.nano", "--network",
                     "private", "--availability-zone", "nova:ext-1", "--wait", "on-ext")
        assert s["OS-EXT-SRV-ATTR:host"] == "ext-1" and s["status"] == "ACTIVE", s
        osc.run("server", "delete", "--wait", s["id"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        log.close()
        # The host is gone for good: remove its service, so nothing is scheduled there.
        for svc in osc.json("compute", "service", "list", "--host", "ext-1"):
            osc.run("compute", "service", "delete", str(svc["ID"]))
    assert rc == 0, (tmp_path / "agent.log").read_text()


def test_an_agent_killed_goes_down_and_adopts_its_guests_when_back(tmp_path):
    """kill -9 of a standalone agent: its service goes down (after `service_down_time_s`), its
    server's power state becomes NOSTATE; restarted on the same fake hypervisor state, it
    reports the guest running again without booting it a second time."""
    import json
    import signal

    from harness import FAST_ENV, clean_env, strata_bin

    s = StrataServer(tmp_path / "data", env={"STRATA_COMPUTE__SERVICE_DOWN_TIME_S": "3"})
    state = tmp_path / "hv.json"
    pw = tmp_path / "pw"
    procs = []

    def start_agent():
        log = open(tmp_path / f"agent{len(procs)}.log", "wb")
        p = subprocess.Popen(
            [str(strata_bin()), "agent", "--server", s.base_url, "--host", "ext-2",
             "--password-file", str(pw), "--state-file", str(state)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=clean_env(FAST_ENV))
        procs.append((p, log))
        return p

    try:
        s.start()
        osc = Openstack(s)
        pw.write_text(s.cloud_auth("strata")["password"])
        start_agent()

        def state_of(host):
            return {x["Host"]: x["State"] for x in osc.json("compute", "service", "list")}.get(host)

        poll(lambda: state_of("ext-2") == "up", 30, "ext-2 up")
        img = _image(osc, "img", tmp_path, cloud="strata")
        srv = osc.json("server", "create", "--image", img, "--flavor", "m1.nano", "--network",
                       "private", "--availability-zone", "nova:ext-2", "--wait", "survivor")
        assert srv["OS-EXT-SRV-ATTR:host"] == "ext-2", srv
        boots = json.loads(state.read_text())[srv["id"]]["boots"]
        procs[0][0].kill()
        procs[0][0].wait(timeout=10)
        poll(lambda: state_of("ext-2") == "down", 30, "ext-2 down")
        poll(lambda: osc.json("server", "show", srv["id"])["OS-EXT-STS:power_state"] in (0, "NOSTATE"),
             30, "power state NOSTATE")
        start_agent()
        poll(lambda: state_of("ext-2") == "up", 30, "ext-2 up again")
        poll(lambda: osc.json("server", "show", srv["id"])["OS-EXT-STS:power_state"] in (1, "Running"),
             30, "power state Running again")
        assert json.loads(state.read_text())[srv["id"]]["boots"] == boots, "booted again"
        assert osc.json("server", "show", srv["id"])["status"] == "ACTIVE"
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
            log.close()
        s.stop()


def _server(osc, img, sname, cloud=DEMO):
    s = osc.json("server", "create", "--image", img, "--flavor", "m1.nano", "--network",
                 "private", "--wait", sname, cloud=cloud)
    assert s["status"] == "ACTIVE", s
    return s


def test_interfaces_and_usage_journey(osc, name, tmp_path):
    """`server add network`/`add port`/`remove port` (os-interface) and `usage show`/`list`."""
    img = _image(osc, name("img"), tmp_path)
    s = _server(osc, img, name("nics"))
    sid = s["id"]
    net = osc.json("network", "create", name("net2"), cloud=DEMO)
    osc.run("subnet", "create", "--network", net["id"], "--subnet-range", "10.77.0.0/24",
            name("sub2"), cloud=DEMO)
    # A NIC on the new network: a port made for the server, shown in its addresses.
    osc.run("server", "add", "network", sid, net["id"], cloud=DEMO)
    poll(lambda: net["name"] in osc.json("server", "show", sid, cloud=DEMO)["addresses"], 30,
         "the new network in the server's addresses", interval=0.2)
    made = osc.json("port", "list", "--server", sid, "--network", net["id"], cloud=DEMO)
    assert len(made) == 1, made
    # The user's own port: attached, then detached and kept (unbound).
    pname = name("port")
    port = osc.json("port", "create", "--network", "private", pname, cloud=DEMO)
    osc.run("server", "add", "port", sid, pname, cloud=DEMO)
    assert osc.json("port", "show", port["id"], cloud=DEMO)["device_id"] == sid
    assert len(osc.json("port", "list", "--server", sid, cloud=DEMO)) == 3
    osc.run("server", "remove", "port", sid, pname, cloud=DEMO)
    kept = osc.json("port", "show", port["id"], cloud=DEMO)
    assert kept["device_id"] == "", kept
    ports = {p["ID"] for p in osc.json("port", "list", "--server", sid, cloud=DEMO)}
    assert port["id"] not in ports and len(ports) == 2, ports
    actions = [a["Action"] for a in osc.json("server", "event", "list", sid, cloud=DEMO)]
    assert actions.count("attach_interface") == 2 and "detach_interface" in actions, actions
    # Usage: the demo project's server counts (the admin asks for every project too).
    def count(servers):
        return len(servers) if isinstance(servers, list) else int(servers)

    shown = osc.json("usage", "show", "--project", "demo")
    assert count(shown["Servers"]) >= 1 and float(shown["CPU Hours"]) >= 0, shown
    # (The SDK asks `detailed=True`, which Nova reads as not detailed: no server list here.)
    listed = osc.json("usage", "list")
    assert any(float(u["CPU Hours"]) > 0 for u in listed), listed
    out = osc.fails("usage", "list", cloud=DEMO).output
    assert "403" in out or "Policy" in out, out
    osc.run("server", "delete", "--wait", sid, cloud=DEMO)
    assert osc.json("port", "list", "--device-id", sid) == []
    osc.run("port", "delete", port["id"], cloud=DEMO)
    osc.run("network", "delete", net["id"], cloud=DEMO)


def test_aggregate_journey(osc, name):
    """`aggregate create/add host/set --property/show/remove host/delete`: the all-in-one's
    host joins the aggregate's zone while it is in it."""
    host = socket.gethostname()
    agg = name("agg")
    zone = name("az")
    created = osc.json("aggregate", "create", "--zone", zone, agg)
    assert created["name"] == agg and created["availability_zone"] == zone, created
    try:
        osc.run("aggregate", "add", "host", agg, host)
        osc.run("aggregate", "set", "--property", "ssd=true", agg)
        shown = osc.json("aggregate", "show", agg)
        assert host in shown["hosts"], shown
        props = shown["properties"]
        assert props.get("ssd") == "true", shown
        zones = {z["Zone Name"] for z in osc.json("availability", "zone", "list", "--compute")}
        assert zone in zones, zones
        services = osc.json("compute", "service", "list", "--host", host)
        assert all(s["Zone"] == zone for s in services), services
        out = osc.fails("aggregate", "delete", agg).output
        assert "not empty" in out, out
        out = osc.fails("aggregate", "create", agg).output
        assert "already exists" in out, out
    finally:
        osc.run("aggregate", "remove", "host", agg, host, check=False)
    osc.run("aggregate", "delete", agg)
    out = osc.fails("aggregate", "show", agg).output
    assert "No Aggregate found" in out or "404" in out or "not found" in out.lower(), out
    services = osc.json("compute", "service", "list", "--host", host)
    assert all(s["Zone"] == "nova" for s in services), services


def test_snapshot_and_volumes_journey(osc, name, tmp_path):
    """Features the journey above lacks: `server image create --wait` (createImage), `server
    add volume`/`remove volume`, and booting from a volume (`server create --volume`)."""
    img = _image(osc, name("img"), tmp_path)
    s = _server(osc, img, name("vols"))
    sid = s["id"]
    # createImage: the snapshot becomes an active image of the project.
    snap = name("snap")
    osc.run("server", "image", "create", "--name", snap, "--wait", sid, cloud=DEMO)
    shown = osc.json("image", "show", snap, cloud=DEMO)
    assert shown["status"] == "active", shown
    # A data volume attached and detached.
    vol = osc.json("volume", "create", "--size", "1", name("data"), cloud=DEMO)["id"]
    poll(lambda: osc.json("volume", "show", vol, cloud=DEMO)["status"] == "available", 60,
         "volume available", interval=0.2)
    osc.run("server", "add", "volume", sid, vol, cloud=DEMO)
    poll(lambda: osc.json("volume", "show", vol, cloud=DEMO)["status"] == "in-use", 60,
         "volume in-use", interval=0.2)
    attached = osc.json("server", "show", sid, cloud=DEMO)["volumes_attached"]
    assert vol in str(attached), attached
    osc.run("server", "remove", "volume", sid, vol, cloud=DEMO)
    poll(lambda: osc.json("volume", "show", vol, cloud=DEMO)["status"] == "available", 60,
         "volume available again", interval=0.2)
    osc.run("server", "delete", "--wait", sid, cloud=DEMO)
    # Boot from a bootable volume made from the image.
    boot = osc.json("volume", "create", "--size", "1", "--image", img, "--bootable",
                    name("boot"), cloud=DEMO)["id"]
    poll(lambda: osc.json("volume", "show", boot, cloud=DEMO)["status"] == "available", 120,
         "boot volume available", interval=0.2)
    bfv = osc.json("server", "create", "--volume", boot, "--flavor", "m1.nano", "--network",
                   "private", "--wait", name("bfv"), cloud=DEMO)
    assert bfv["status"] == "ACTIVE", bfv
    assert boot in str(bfv["volumes_attached"]), bfv
    assert osc.json("volume", "show", boot, cloud=DEMO)["status"] == "in-use"
    osc.run("server", "delete", "--wait", bfv["id"], cloud=DEMO)
    poll(lambda: osc.json("volume", "show", boot, cloud=DEMO)["status"] == "available", 60,
         "boot volume released", interval=0.2)
    for v in (vol, boot):
        osc.run("volume", "delete", v, cloud=DEMO)
    osc.run("image", "delete", snap, cloud=DEMO)


def test_resize_and_shelve_journey(osc, name, tmp_path):
    """`server resize --wait` to VERIFY_RESIZE, `server resize confirm`, a resize undone by
    `server resize revert`, and `server shelve`/`unshelve`, on the all-in-one's single host
    (`strata up` lets a resize stay on its host, as DevStack does)."""
    img = _image(osc, name("img"), tmp_path)
    sname = name("rs")
    sid = _server(osc, img, sname)["id"]
    osc.run("server", "resize", "--flavor", "m1.micro", "--wait", sid, cloud=DEMO)
    shown = osc.json("server", "show", sid, cloud=DEMO)
    assert shown["status"] == "VERIFY_RESIZE", shown
    assert "m1.micro" in str(shown["flavor"]), shown
    osc.run("server", "resize", "confirm", sid, cloud=DEMO)
    _wait_status(osc, sid, "ACTIVE")
    assert "m1.micro" in str(osc.json("server", "show", sid, cloud=DEMO)["flavor"])
    # Resized, then reverted: back to m1.micro, still ACTIVE.
    osc.run("server", "resize", "--flavor", "m1.tiny", "--wait", sid, cloud=DEMO)
    assert _status(osc, sid) == "VERIFY_RESIZE"
    assert "m1.tiny" in str(osc.json("server", "show", sid, cloud=DEMO)["flavor"])
    osc.run("server", "resize", "revert", sid, cloud=DEMO)
    _wait_status(osc, sid, "ACTIVE")
    assert "m1.micro" in str(osc.json("server", "show", sid, cloud=DEMO)["flavor"])
    # The admin sees both moves.
    migs = osc.json("server", "migration", "list", "--server", sid)
    assert sorted(m["Status"] for m in migs) == ["confirmed", "reverted"], migs
    assert {m["Type"] for m in migs} == {"resize"}, migs
    # Shelve: offloaded at once, with its snapshot image; unshelve brings it back.
    osc.run("server", "shelve", "--wait", sid, cloud=DEMO)
    shelved = osc.json("server", "show", sid)
    assert shelved["status"] == "SHELVED_OFFLOADED", shelved
    assert not shelved["OS-EXT-SRV-ATTR:host"], shelved
    images = osc.json("image", "list", "--name", f"{sname}-shelved", cloud=DEMO)
    assert len(images) == 1, images
    osc.run("server", "unshelve", "--wait", sid, cloud=DEMO)
    back = osc.json("server", "show", sid)
    assert back["status"] == "ACTIVE" and back["OS-EXT-SRV-ATTR:host"] == socket.gethostname()
    poll(lambda: osc.json("image", "list", "--name", f"{sname}-shelved", cloud=DEMO) == [],
         30, "the shelved image deleted", interval=0.2)
    actions = [a["Action"] for a in osc.json("server", "event", "list", sid, cloud=DEMO)]
    for a in ("resize", "confirmResize", "revertResize", "shelve", "unshelve"):
        assert a in actions, actions
    # Not resized: nothing to confirm.
    out = osc.fails("server", "resize", "confirm", sid, cloud=DEMO).output
    assert "409" in out, out
    osc.run("server", "delete", "--wait", sid, cloud=DEMO)


def test_migrations_across_two_hosts(tmp_path):
    """`server migrate --wait` (cold, admin) to the other host, `server migrate confirm`, then
    `server migrate --live-migration` back, chosen by the scheduler and named with `--host`;
    `server migration list` shows each."""
    s = StrataServer(tmp_path / "data", extra_args=["--fake-hosts", "1"])
    try:
        s.start()
        osc = Openstack(s)
        poll(lambda: len(osc.json("hypervisor", "list")) == 2, 30, "two hypervisors")
        img = _image(osc, "img", tmp_path, cloud="strata")
        srv = osc.json("server", "create", "--image", img, "--flavor", "m1.nano", "--network",
                       "private", "--wait", "mover")
        sid, first = srv["id"], srv["OS-EXT-SRV-ATTR:host"]
        osc.run("server", "migrate", "--wait", sid)
        moved = osc.json("server", "show", sid)
        assert moved["status"] == "VERIFY_RESIZE", moved
        second = moved["OS-EXT-SRV-ATTR:host"]
        assert second != first, moved
        osc.run("server", "migrate", "confirm", sid)
        _wait_status(osc, sid, "ACTIVE", cloud="strata")
        assert osc.json("server", "show", sid)["OS-EXT-SRV-ATTR:host"] == second
        # Live: the scheduler picks the only other host; then back again by name.
        osc.run("server", "migrate", "--live-migration", "--wait", sid)
        live = osc.json("server", "show", sid)
        assert live["status"] == "ACTIVE" and live["OS-EXT-SRV-ATTR:host"] == first, live
        osc.run("server", "migrate", "--live-migration", "--host", second, "--wait", sid)
        poll(lambda: osc.json("server", "show", sid)["OS-EXT-SRV-ATTR:host"] == second, 30,
             "live-migrated to the named host", interval=0.2)
        _wait_status(osc, sid, "ACTIVE", cloud="strata")
        migs = osc.json("server", "migration", "list", "--server", sid)
        kinds = sorted((m["Type"], m["Status"]) for m in migs)
        assert kinds == [("live-migration", "completed"), ("live-migration", "completed"),
                         ("migration", "confirmed")], migs
        # To the host it is on: refused (the CLI's microversion fails it after the 202).
        out = osc.fails("server", "migrate", "--host", second, sid).output
        assert "Cannot migrate to the host where the server exists" in out, out
        osc.run("server", "delete", "--wait", sid)
        usages = osc.json("--os-placement-api-version", "1.39", "resource", "provider",
                          "list")
        assert len(usages) == 2, usages
    finally:
        s.stop()
