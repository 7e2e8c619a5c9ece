"""Crash safety of compute (issue 5): `kill -9` of `strata up` in the middle of a burst of 200
boots on fake hosts. After the restart every server ends ACTIVE or ERROR (with a fault), the
placement allocations are exactly those of the ACTIVE servers (on their hosts, of their
flavor), every port belongs to a server that exists, the quota usage counts exactly the
servers that exist — and once they are all deleted, nothing is left: no allocation, no port, no
usage."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from harness import Api, Openstack, StrataServer, poll

BURST = 200
KILL_AFTER = 80  # accepted POST /servers before the kill


def test_kill_9_during_a_burst_of_boots_leaks_nothing(tmp_path):
    s = StrataServer(tmp_path / "data", extra_args=["--fake-hosts", "4"])
    try:
        s.start()
        osc = Openstack(s)
        project = osc.json("project", "show", "admin")["id"]
        osc.run("quota", "set", "--instances", "1000", "--cores", "4000", "--ram", "4000000",
                project)
        net = osc.json("network", "create", "burst")["id"]
        osc.run("subnet", "create", "--network", net, "--subnet-range", "10.77.0.0/22", "burst4")
        data = tmp_path / "img.raw"
        data.write_bytes(b"\0" * 4096)
        img = osc.json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                       "--file", str(data), "burst-img")["id"]
        flavor = osc.json("flavor", "show", "m1.nano")
        vcpus, ram = int(flavor["vcpus"]), int(flavor["ram"])
        token = Api(s).cloud_token("strata")
        base = s.base_url
        h = {"X-Auth-Token": token}

        accepted = []
        lock = threading.Lock()
        enough = threading.Event()

        def boot(i):
            body = {"server": {"name": f"burst-{i}", "imageRef": img,
                               "flavorRef": flavor["id"], "networks": [{"uuid": net}]}}
            try:
                r = requests.post(f"{base}/compute/v2.1/servers", json=body, headers=h,
                                  timeout=60)
            except requests.RequestException:
                return  # the server died under this request
            if r.status_code == 202:
                with lock:
                    accepted.append(r.json()["server"]["id"])
                    if len(accepted) >= KILL_AFTER:
                        enough.set()

        pool = ThreadPoolExecutor(16)
        for i in range(BURST):
            pool.submit(boot, i)
        assert enough.wait(300), f"only {len(accepted)} boots accepted"
        s.stop(signal.SIGKILL)
        pool.shutdown(wait=True)
        assert len(accepted) < BURST, "every boot was answered before the kill"

        s.start()
        token = Api(s).cloud_token("strata")
        h = {"X-Auth-Token": token}

        def get(path, **kw):
            r = requests.get(f"{base}{path}", headers={**h, **kw.pop("headers", {})},
                             timeout=60, **kw)
            assert r.status_code == 200, (path, r.status_code, r.text)
            return r.json()

        def servers():
            return get("/compute/v2.1/servers/detail")["servers"]

        def settled():
            ss = servers()
            return all(x["status"] in ("ACTIVE", "ERROR") for x in ss) and ss

        final = poll(settled, 600, "every server ACTIVE or ERROR", interval=1)
        ids = {x["id"] for x in final}
        # Every answered boot is there (the kill did not lose an accepted request).
        assert set(accepted) <= ids, set(accepted) - ids
        active = {x["id"]: x for x in final if x["status"] == "ACTIVE"}
        for x in final:
            if x["status"] == "ERROR":
                assert x.get("fault", {}).get("message"), x
        assert active, "no server became ACTIVE"
        print(f"kill -9 after {len(accepted)} accepted boots: {len(final)} servers, "
              f"{len(active)} ACTIVE, {len(final) - len(active)} ERROR")

        def allocations():
            out = {}
            for rp in get("/placement/resource_providers")["resource_providers"]:
                allocs = get(f"/placement/resource_providers/{rp['uuid']}/allocations")
                for consumer, a in allocs["allocations"].items():
                    assert consumer not in out, f"{consumer} allocated on two providers"
                    out[consumer] = (rp["name"], a["resources"])
            return out

        allocs = allocations()
        assert set(allocs) == set(active), (set(allocs) ^ set(active))
        for sid, (rp, res) in allocs.items():
            assert rp == active[sid]["OS-EXT-SRV-ATTR:hypervisor_hostname"], (sid, rp)
            assert res.get("VCPU") == vcpus and res.get("MEMORY_MB") == ram, (sid, res)

        def server_ports():
            ports = get("/network/v2.0/ports", params={"network_id": net})["ports"]
            return [p for p in ports if p["device_owner"].startswith("compute:")]

        owners = [p["device_id"] for p in server_ports()]
        assert set(owners) <= ids, set(owners) - ids
        for sid in active:
            assert owners.count(sid) == 1, (sid, owners.count(sid))
        assert len(owners) == len(set(owners)), "a server has two ports"

        usage = get(f"/compute/v2.1/os-quota-sets/{project}/detail")["quota_set"]
        assert usage["instances"]["in_use"] == len(ids), (usage["instances"], len(ids))
        assert usage["cores"]["in_use"] == len(ids) * vcpus, usage["cores"]
        assert usage["ram"]["in_use"] == len(ids) * ram, usage["ram"]

        # Delete everything: nothing is left behind.
        def delete(sid):
            r = requests.delete(f"{base}/compute/v2.1/servers/{sid}", headers=h, timeout=60)
            assert r.status_code in (204, 404), (sid, r.status_code, r.text)

        with ThreadPoolExecutor(8) as p:
            list(p.map(delete, ids))
        poll(lambda: servers() == [], 300, "every server deleted", interval=1)
        poll(lambda: allocations() == {}, 120, "no allocation left", interval=1)
        poll(lambda: server_ports() == [], 120, "no server port left", interval=1)
        usage = get(f"/compute/v2.1/os-quota-sets/{project}/detail")["quota_set"]
        assert usage["instances"]["in_use"] == 0 and usage["cores"]["in_use"] == 0, usage
        assert s.stop() == 0, s.logs()
    finally:
        s.kill()
