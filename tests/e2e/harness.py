"""Start the real `strata` binary and talk to it with real clients.

Used by the pytest fixtures in conftest.py. Nothing here sleeps to synchronise: every wait polls
a condition against a deadline and fails with what it saw.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

HEALTH_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
CLI_TIMEOUT_S = 180.0
HTTP_TIMEOUT_S = 30.0

# Bcrypt cost 4 keeps password hashing out of the test run time.
FAST_ENV = {"STRATA_IDENTITY__PASSWORD_HASH_ROUNDS": "4"}


def strata_bin() -> Path:
    """The binary under test: $STRATA_BIN, else the debug build in $CARGO_TARGET_DIR."""
    p = os.environ.get("STRATA_BIN")
    if not p:
        target = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/strata-target")
        p = os.path.join(target, "debug", "strata")
    path = Path(p)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"strata binary not found at {path} (set STRATA_BIN)")
    return path


def openstack_bin() -> str:
    """The `openstack` CLI of the venv running pytest, else the one on PATH."""
    beside = Path(sys.executable).parent / "openstack"
    if beside.exists():
        return str(beside)
    found = shutil.which("openstack")
    if not found:
        raise RuntimeError("the openstack CLI (python-openstackclient) is not installed")
    return found


def free_port() -> int:
    """A port the kernel just handed out for 127.0.0.1 (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without OS_* (so no stray cloud config leaks in) and STRATA_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STRATA_"))}
    env.update(extra or {})
    return env


def poll(cond, deadline_s: float, what: str, interval: float = 0.05):
    """Call cond() until it returns a truthy value or the deadline passes (then fail with what)."""
    end = time.monotonic() + deadline_s
    last = None
    while True:
        try:
            val = cond()
            if val:
                return val
            last = val
        except Exception as e:  # noqa: BLE001 - reported below
            last = e
        if time.monotonic() >= end:
            raise TimeoutError(f"timed out after {deadline_s}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


@contextmanager
def running(proc, what: str = "strata"):
    """Starts `proc` (a StrataServer, a sim_harness.Sim: anything with start, stop, kill and
    logs), yields it, then stops it by PID with SIGTERM: it must exit 0. Killed if starting or
    stopping fails."""
    try:
        proc.start()
    except BaseException:
        proc.kill()
        raise
    try:
        yield proc
    finally:
        try:
            rc = proc.stop()
        finally:
            proc.kill()
    assert rc == 0, f"{what} exited {rc} after SIGTERM\n{proc.logs()}"


@dataclass
class StrataServer:
    """One `strata up` process on a data dir and a port."""

    data_dir: Path
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_dir: Path | None = None
    starts: int = 0
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).resolve()
        if not self.port:
            self.port = free_port()
        if self.log_dir is None:
            self.log_dir = self.data_dir.parent / (self.data_dir.name + "-logs")
        self.log_dir.mkdir(parents=True, exist_ok=True)

    # -- addresses -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def identity_url(self) -> str:
        return f"{self.base_url}/identity"

    @property
    def v3(self) -> str:
        return f"{self.identity_url}/v3"

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"stdout.{self.starts}"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"stderr.{self.starts}"

    def command(self) -> list[str]:
        return [str(strata_bin()), "up", "--data-dir", str(self.data_dir),
                "--listen", f"127.0.0.1:{self.port}", *self.extra_args]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, wait: bool = True) -> "StrataServer":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=clean_env({**FAST_ENV, **self.env}),
            )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, deadline_s: float = HEALTH_DEADLINE_S) -> None:
        def healthy():
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f"strata up exited with {rc} before it was healthy:\n{self.logs()}")
            try:
                r = requests.get(f"{self.base_url}/healthz", timeout=2)
            except requests.ConnectionError:
                return False
            return r.status_code == 200 and r.text.strip() == "ok"

        try:
            poll(healthy, deadline_s, f"{self.base_url}/healthz to answer 200 ok")
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None

    def stop(self, sig: int = signal.SIGTERM, deadline_s: float = STOP_DEADLINE_S) -> int:
        """Signal the server by PID and wait for it; returns its exit status (or fails)."""
        assert self.proc is not None, "not started"
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=deadline_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(
                    f"strata (pid {self.proc.pid}) did not exit within {deadline_s}s of "
                    f"signal {sig}; killed it\n{self.logs()}")
        return self.proc.returncode

    def kill(self) -> None:
        """Last-resort cleanup: SIGKILL by PID if still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def logs(self, tail: int = 60) -> str:
        parts = []
        for name, p in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            try:
                lines = p.read_text(errors="replace").splitlines()[-tail:]
            except FileNotFoundError:
                lines = []
            parts.append(f"--- strata {name} ({p}) ---\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- what `strata up` wrote ------------------------------------------------------------
    def clouds(self) -> dict:
        return yaml.safe_load(self.clouds_yaml.read_text())["clouds"]

    def cloud_auth(self, cloud: str = "strata") -> dict:
        return self.clouds()[cloud]["auth"]


class CliError(AssertionError):
    pass


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self):
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as e:
            raise CliError(f"`{' '.join(self.args)}` did not print JSON ({e}):\n"
                           f"stdout: {self.stdout}\nstderr: {self.stderr}") from None


class Openstack:
    """The real python-openstackclient, one process per command."""

    def __init__(self, server: StrataServer, cloud: str = "strata"):
        self.server = server
        self.cloud = cloud

    def run(self, *args: str, cloud: str | None = None, check: bool = True,
            use_cloud: bool = True, env: dict[str, str] | None = None) -> CliResult:
        cmd = [openstack_bin()]
        if use_cloud:
            cmd += ["--os-cloud", cloud or self.cloud]
        cmd += list(args)
        e = clean_env(env)
        if use_cloud:
            e["OS_CLIENT_CONFIG_FILE"] = str(self.server.clouds_yaml)
        p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=CLI_TIMEOUT_S,
                           stdin=subprocess.DEVNULL)
        res = CliResult(cmd, p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise CliError(f"`{' '.join(cmd)}` exited {p.returncode}\nstdout: {p.stdout}\n"
                           f"stderr: {p.stderr}\n{self.server.logs(20)}")
        return res

    def json(self, *args: str, **kw):
        """Run a command with `-f json` and parse its output."""
        return self.run(*args, "-f", "json", **kw).json()

    def fails(self, *args: str, **kw) -> CliResult:
        res = self.run(*args, check=False, **kw)
        if res.returncode == 0:
            raise CliError(f"`{' '.join(res.args)}` was expected to fail but exited 0\n"
                           f"stdout: {res.stdout}\nstderr: {res.stderr}")
        return res


class Api:
    """Raw HTTP against /identity/v3."""

    def __init__(self, server: StrataServer):
        self.server = server
        self.v3 = server.v3

    def url(self, path: str) -> str:
        return self.v3 + path

    def request(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if token is not None:
            headers["X-Auth-Token"] = token
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return requests.request(method, self.url(path), headers=headers, **kw)

    @staticmethod
    def password_auth_body(user: str, password: str, project: str | None = None,
                           domain: str = "Default", user_id: str | None = None,
                           project_id: str | None = None) -> dict:
        ident = {"id": user_id} if user_id else {"name": user, "domain": {"name": domain}}
        body: dict = {"auth": {"identity": {"methods": ["password"],
                                            "password": {"user": {**ident, "password": password}}}}}
        if project_id:
            body["auth"]["scope"] = {"project": {"id": project_id}}
        elif project:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
        return body

    def authenticate(self, user: str, password: str, project: str | None = None,
                     **kw) -> requests.Response:
        return self.request("POST", "/auth/tokens",
                            json=self.password_auth_body(user, password, project, **kw))

    def token(self, user: str, password: str, project: str | None = None) -> str:
        r = self.authenticate(user, password, project)
        assert r.status_code == 201, f"auth as {user} (project {project}): {r.status_code} {r.text}"
        tok = r.headers.get("X-Subject-Token")
        assert tok, f"no X-Subject-Token in {dict(r.headers)}"
        return tok

    def cloud_token(self, cloud: str = "strata") -> str:
        a = self.server.cloud_auth(cloud)
        return self.token(a["username"], a["password"], a.get("project_name"))


def assert_keystone_error(r: requests.Response, status: int, *, mentions: str | None = None) -> dict:
    """Status is `status` and the body is Keystone's {"error": {"code", "message", "title"}}."""
    desc = f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:500]!r}"
    assert r.status_code == status, f"expected {status}: {desc}"
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {desc}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"not a Keystone error body: {desc}"
    err = body["error"]
    assert err.get("code") == status, f"error.code != {status}: {desc}"
    assert isinstance(err.get("message"), str) and err["message"], f"no error.message: {desc}"
    assert isinstance(err.get("title"), str) and err["title"], f"no error.title: {desc}"
    if mentions is not None:
        assert mentions in err["message"], f"error.message does not mention {mentions!r}: {desc}"
    return err
