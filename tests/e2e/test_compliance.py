"""PCI-DSS options ([security_compliance]): lockout, password history, self-service change.

Runs its own server with the same settings scripts/tempest-identity.sh uses.
"""

from __future__ import annotations

import pytest

from harness import Api, StrataServer, assert_keystone_error, poll

LOCKOUT_ATTEMPTS = 2
LOCKOUT_DURATION = 5
COMPLIANCE_ENV = {
    "STRATA_SECURITY_COMPLIANCE__LOCKOUT_FAILURE_ATTEMPTS": str(LOCKOUT_ATTEMPTS),
    "STRATA_SECURITY_COMPLIANCE__LOCKOUT_DURATION": str(LOCKOUT_DURATION),
    "STRATA_SECURITY_COMPLIANCE__UNIQUE_LAST_PASSWORD_COUNT": "2",
    "STRATA_SECURITY_COMPLIANCE__MINIMUM_PASSWORD_AGE": "0",
}


@pytest.fixture(scope="module")
def pci(tmp_path_factory):
    s = StrataServer(tmp_path_factory.mktemp("strata-pci") / "data", env=COMPLIANCE_ENV)
    try:
        s.start()
        yield s
        assert s.stop() == 0, s.logs()
    finally:
        s.kill()


@pytest.fixture(scope="module")
def papi(pci) -> Api:
    return Api(pci)


@pytest.fixture(scope="module")
def padmin(papi) -> str:
    return papi.cloud_token("strata")


@pytest.fixture
def member(papi, padmin, name):
    """A fresh user with role member on a fresh project: (user, project, password)."""
    r = papi.request("POST", "/projects", padmin, json={"project": {"name": name("proj")}})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    password = "Orig-pw-12345"
    r = papi.request("POST", "/users", padmin, json={"user": {
        "name": name("user"), "password": password, "default_project_id": project["id"]}})
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    r = papi.request("GET", "/roles", padmin, params={"name": "member"})
    assert r.status_code == 200, r.text
    role = r.json()["roles"][0]["id"]
    r = papi.request("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role}", padmin)
    assert r.status_code == 204, r.text
    return user, project, password


def change_password(api, token, user_id, original, new):
    return api.request("POST", f"/users/{user_id}/password", token,
                       json={"user": {"original_password": original, "password": new}})


def test_self_service_change_revokes_tokens(papi, padmin, member):
    user, project, pw = member
    tok = papi.token(user["name"], pw, project["name"])
    r = change_password(papi, tok, user["id"], pw, "New-pw-1-12345")
    assert r.status_code == 204, r.text
    assert papi.authenticate(user["name"], "New-pw-1-12345").status_code == 201
    assert_keystone_error(papi.authenticate(user["name"], pw), 401)
    # The tokens the user held before the change are revoked.
    r = papi.request("GET", "/auth/tokens", padmin, headers={"X-Subject-Token": tok})
    assert_keystone_error(r, 404)
    r = papi.request("POST", "/auth/tokens", json={
        "auth": {"identity": {"methods": ["token"], "token": {"id": tok}}}})
    assert_keystone_error(r, 404)


def test_wrong_original_password_is_401(papi, member):
    user, project, pw = member
    tok = papi.token(user["name"], pw, project["name"])
    r = change_password(papi, tok, user["id"], "not-the-password-1", "New-pw-2-12345")
    assert_keystone_error(r, 401)
    assert papi.authenticate(user["name"], pw).status_code == 201


def test_password_history_is_enforced_on_self_service(papi, member):
    user, project, pw = member
    tok = papi.token(user["name"], pw, project["name"])
    assert change_password(papi, tok, user["id"], pw, "Hist-pw-1-12345").status_code == 204
    tok = papi.token(user["name"], "Hist-pw-1-12345")
    # The current password and the one before it (unique_last_password_count = 2) are refused.
    assert_keystone_error(change_password(papi, tok, user["id"], "Hist-pw-1-12345",
                                          "Hist-pw-1-12345"), 400)
    assert_keystone_error(change_password(papi, tok, user["id"], "Hist-pw-1-12345", pw), 400)
    assert change_password(papi, tok, user["id"], "Hist-pw-1-12345",
                           "Hist-pw-2-12345").status_code == 204


def test_admin_reset_ignores_history(papi, padmin, member):
    user, _, pw = member
    for new in ("Reset-pw-12345", "Reset-pw-12345", pw):
        r = papi.request("PATCH", f"/users/{user['id']}", padmin, json={"user": {"password": new}})
        assert r.status_code == 200, f"admin reset to a recent password: {r.status_code} {r.text}"
    assert papi.authenticate(user["name"], pw).status_code == 201


def test_lockout_after_failed_attempts(papi, member):
    user, _, pw = member
    assert papi.authenticate(user["name"], pw).status_code == 201
    for _ in range(LOCKOUT_ATTEMPTS):
        assert_keystone_error(papi.authenticate(user["name"], "Wrong-pw-12345"), 401)
    # Locked: even the right password is refused now...
    assert_keystone_error(papi.authenticate(user["name"], pw), 401)
    # ...until the lockout duration has passed.
    poll(lambda: papi.authenticate(user["name"], pw).status_code == 201,
         LOCKOUT_DURATION + 15, "the lockout to expire", interval=0.5)


def test_lockout_is_per_user(papi, member):
    user, _, pw = member
    for _ in range(LOCKOUT_ATTEMPTS):
        assert_keystone_error(papi.authenticate(user["name"], "Wrong-pw-12345"), 401)
    # Other users, the admin included, are not affected.
    assert papi.cloud_token("strata")
    assert papi.cloud_token("strata-demo")
