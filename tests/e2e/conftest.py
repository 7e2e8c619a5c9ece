"""Fixtures: one `strata up` for the whole session, plus clients bound to it.

Run: STRATA_BIN=/var/tmp/strata-target/debug/strata pytest tests/e2e -q
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Api, Openstack, StrataServer, running, strata_bin  # noqa: E402


def pytest_sessionstart(session):
    try:
        strata_bin()
    except RuntimeError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared all-in-one. Stopped by PID with SIGTERM at the end; must exit 0 promptly."""
    with running(StrataServer(tmp_path_factory.mktemp("strata") / "data"), "strata up") as s:
        yield s


@pytest.fixture(scope="session")
def osc(server) -> Openstack:
    return Openstack(server)


@pytest.fixture(scope="session")
def api(server) -> Api:
    return Api(server)


@pytest.fixture(scope="session")
def admin_token(api) -> str:
    return api.cloud_token("strata")


@pytest.fixture(scope="session")
def demo_token(api) -> str:
    return api.cloud_token("strata-demo")


@pytest.fixture(scope="session")
def admin_ids(api, admin_token) -> dict:
    """Ids from an admin project-scoped token: user, project, default domain."""
    r = api.request("GET", "/auth/tokens", admin_token, headers={"X-Subject-Token": admin_token})
    assert r.status_code == 200, r.text
    t = r.json()["token"]
    return {"user_id": t["user"]["id"], "project_id": t["project"]["id"],
            "domain_id": t["project"]["domain"]["id"]}


@pytest.fixture
def name():
    """Unique resource names per test: name('proj') -> 'e2e-proj-1a2b3c4d'."""
    return lambda prefix: f"e2e-{prefix}-{uuid.uuid4().hex[:8]}"
