"""Process lifecycle of `strata up`: restart keeps state, one server per data dir, signals."""

from __future__ import annotations

import signal
import subprocess

from harness import Openstack, StrataServer, clean_env, FAST_ENV, free_port, strata_bin


def test_restart_keeps_everything(tmp_path):
    s = StrataServer(tmp_path / "data")
    try:
        s.start()
        osc = Openstack(s)
        password = s.cloud_auth("strata")["password"]
        proj = osc.json("project", "create", "--description", "survives restarts", "keepme")

        assert s.stop(signal.SIGTERM) == 0, s.logs()

        s.start()
        assert s.cloud_auth("strata")["password"] == password, "bootstrap ran again on restart"
        shown = osc.json("project", "show", "keepme")
        assert shown["id"] == proj["id"]
        assert shown["description"] == "survives restarts"
        # The admin password written on first start still works (token issue uses clouds.yaml).
        tok = osc.json("token", "issue")
        assert tok["id"]
        # Bootstrap did not duplicate anything.
        assert sorted(r["Name"] for r in osc.json("role", "list")).count("member") == 1
        projects = [r["Name"] for r in osc.json("project", "list")]
        for p in ("admin", "service", "demo", "keepme"):
            assert projects.count(p) == 1, projects
        assert s.stop(signal.SIGTERM) == 0, s.logs()
    finally:
        s.kill()


def test_second_up_on_same_data_dir_is_refused(tmp_path):
    s = StrataServer(tmp_path / "data")
    try:
        s.start()
        cmd = [str(strata_bin()), "up", "--data-dir", str(s.data_dir),
               "--listen", f"127.0.0.1:{free_port()}"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=20,
                               env=clean_env(FAST_ENV), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError("a second `strata up` on a busy data dir kept running") from None
        assert p.returncode != 0, f"second strata up exited 0\n{p.stdout}\n{p.stderr}"
        assert str(s.data_dir) in p.stdout + p.stderr, \
            f"message does not name the data dir {s.data_dir}:\n{p.stdout}\n{p.stderr}"
        # The first one is unharmed.
        s.wait_healthy(5)
        assert Openstack(s).json("token", "issue")["id"]
        assert s.stop() == 0, s.logs()
    finally:
        s.kill()


def test_sigint_shuts_down_cleanly(tmp_path):
    s = StrataServer(tmp_path / "data")
    try:
        s.start()
        assert s.stop(signal.SIGINT) == 0, s.logs()
        # And the data dir is free again: the next start succeeds.
        s.start()
        assert s.stop(signal.SIGTERM) == 0, s.logs()
    finally:
        s.kill()
