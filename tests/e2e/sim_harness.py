"""The hardware simulator from the outside: `strata sim` as a process (`Sim`), and the real
ipmitool aimed at one of its BMCs (`Ipmitool`). Shared by test_sim_redfish.py and
test_sim_ipmi.py.

Nothing here sleeps to synchronise: waits poll a condition against a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sushy

from harness import STOP_DEADLINE_S, clean_env, free_port, poll, strata_bin

SIM_USER, SIM_PASSWORD = "admin", "password"
START_DEADLINE_S = 60.0
IPMITOOL_TIMEOUT_S = 60.0


class Sim:
    """One `strata sim` process on a data dir."""

    def __init__(self, data_dir: Path, *args: str):
        self.data_dir = Path(data_dir)
        self.args = list(args)
        self.control_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}/sim/v1"

    def log_path(self, stream: str) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-{stream}.{self.starts}"

    def start(self) -> "Sim":
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(strata_bin()), "sim", "--data-dir", str(self.data_dir),
               "--bmc-base-port", "0", "--ipmi-base-port", "0",
               "--control", f"127.0.0.1:{self.control_port}", *self.args]
        with open(self.log_path("stdout"), "wb") as out, open(self.log_path("stderr"), "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=clean_env())

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"strata sim exited {self.proc.returncode}:\n{self.logs()}")
            try:
                return requests.get(f"{self.control}/hosts", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        poll(up, START_DEADLINE_S, "the simulator's control API")
        return self

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(f"strata sim ignored SIGTERM\n{self.logs()}")
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:]
                         for p in (self.log_path("stdout"), self.log_path("stderr")) if p.exists())

    def hosts(self) -> list[dict]:
        return requests.get(f"{self.control}/hosts", timeout=10).json()["hosts"]

    def host(self, name: str) -> dict:
        r = requests.get(f"{self.control}/hosts/{name}", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def faults(self, name: str, **knobs) -> dict:
        r = requests.patch(f"{self.control}/hosts/{name}/faults", json=knobs, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


def split(redfish_url: str) -> tuple[str, str]:
    """`http://127.0.0.1:P/redfish/v1/Systems/U` -> (`http://127.0.0.1:P`, the system path)."""
    i = redfish_url.index("/redfish/")
    return redfish_url[:i], redfish_url[i:]


def split_redfish(redfish_url: str) -> tuple[str, str]:
    """`http://127.0.0.1:P/redfish/v1/Systems/U` -> (`http://127.0.0.1:P`, the system path)."""
    i = redfish_url.index("/redfish/")
    return redfish_url[:i], redfish_url[i:]


@contextmanager
def sushy_root(base: str, user: str = SIM_USER, password: str = SIM_PASSWORD, verify=False):
    """sushy's root on the BMC at `base`, with sushy's default auth (a session, else basic), and
    logged out on exit while the BMC is still there. Left to the garbage collector, a session
    client logs out whenever it is collected; if its BMC is gone by then, sushy retries that
    for half a minute, stalling whichever test happens to be running (or failing one that
    counts sessions)."""
    auth = sushy.auth.SessionOrBasicAuth(user, password)
    root = sushy.Sushy(base, auth=auth, verify=verify)
    try:
        yield root
    finally:
        auth.close()


def sushy_system(redfish_url: str, user: str = SIM_USER, password: str = SIM_PASSWORD):
    """sushy's view of the system at `redfish_url`, with HTTP basic auth: no session to log out
    of (see `sushy_root`)."""
    base, path = split_redfish(redfish_url)
    root = sushy.Sushy(base, auth=sushy.auth.BasicAuth(user, password), verify=False)
    return root.get_system(path)


def require_ipmitool() -> None:
    """Skip the calling test without ipmitool, or fail if STRATA_REQUIRE_IPMITOOL=1 (as the
    Rust tests do, through strata_ipmi::interop)."""
    if shutil.which("ipmitool"):
        return
    if os.environ.get("STRATA_REQUIRE_IPMITOOL") == "1":
        pytest.fail("ipmitool is required (STRATA_REQUIRE_IPMITOOL=1) but not installed")
    pytest.skip("ipmitool is not installed (set STRATA_REQUIRE_IPMITOOL=1 to make this a failure)")


class Ipmitool:
    """`ipmitool -I lanplus -H HOST -p PORT -U USER -P PASSWORD ...` against one BMC, given as
    `HOST:PORT` (hosts.json's `ipmi_address`)."""

    def __init__(self, address: str, user: str = SIM_USER, password: str = SIM_PASSWORD,
                 *extra: str):
        host, port = address.rsplit(":", 1)
        self.base = ["ipmitool", "-I", "lanplus", "-H", host, "-p", port, "-U", user,
                     "-P", password, *extra]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.base, *args], capture_output=True, text=True,
                              timeout=IPMITOOL_TIMEOUT_S, stdin=subprocess.DEVNULL,
                              env=clean_env())

    def ok(self, *args: str) -> str:
        """Runs it, asserts it succeeded, returns its stdout."""
        p = self.run(*args)
        assert p.returncode == 0, \
            f"ipmitool {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p.stdout
