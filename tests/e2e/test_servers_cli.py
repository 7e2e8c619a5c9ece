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
