"""Bad input with raw HTTP against /identity/v3: every refusal carries Keystone's error body
`{"error": {"code": N, "message": "...", "title": "..."}}` with code == the HTTP status."""

from __future__ import annotations

import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import Api, StrataServer, assert_keystone_error

MAX_BODY = 114688  # Keystone's default [oslo_middleware] max_request_body_size


@pytest.fixture(scope="module")
def other_server(tmp_path_factory):
    """A second, unrelated Strata: its own data dir, its own keys."""
    s = StrataServer(tmp_path_factory.mktemp("strata-other") / "data")
    try:
        s.start()
        yield s
        assert s.stop() == 0, s.logs()
    finally:
        s.kill()


def make_user(api, admin_token, name, password, project_id=None, role="member"):
    body = {"user": {"name": name, "password": password, "enabled": True}}
    if project_id:
        body["user"]["default_project_id"] = project_id
    r = api.request("POST", "/users", admin_token, json=body)
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    if project_id:
        r = api.request("GET", "/roles", admin_token, params={"name": role})
        assert r.status_code == 200, f"GET /v3/roles?name={role}: {r.status_code} {r.text}"
        roles = r.json()["roles"]
        assert len(roles) == 1, roles
        r = api.request("PUT", f"/projects/{project_id}/users/{user['id']}/roles/{roles[0]['id']}",
                        admin_token)
        assert r.status_code == 204, r.text
    return user


def make_project(api, admin_token, name):
    r = api.request("POST", "/projects", admin_token, json={"project": {"name": name}})
    assert r.status_code == 201, r.text
    return r.json()["project"]


# --- request bodies -----------------------------------------------------------------------


def test_malformed_json_is_400(api, admin_token):
    for path in ("/users", "/projects", "/auth/tokens"):
        r = api.request("POST", path, admin_token, data=b'{"user": {"name": ',
                        headers={"Content-Type": "application/json"})
        assert_keystone_error(r, 400)


def test_missing_required_field_is_400_and_named(api, admin_token):
    r = api.request("POST", "/users", admin_token, json={"user": {}})
    assert_keystone_error(r, 400, mentions="name")


def test_wrong_type_is_400_and_named(api, admin_token):
    r = api.request("POST", "/users", admin_token, json={"user": {"name": 5}})
    assert_keystone_error(r, 400, mentions="name")


@pytest.mark.parametrize("coll,limit", [("users", 255), ("groups", 255), ("projects", 64)])
def test_name_length_limits(api, admin_token, coll, limit):
    """Keystone's schemas: user and group names 1..255 characters, project names 1..64."""
    kind = coll[:-1]
    longest = (uuid.uuid4().hex * 8)[:limit]
    r = api.request("POST", f"/{coll}", admin_token, json={kind: {"name": longest}})
    assert r.status_code == 201, f"{limit}-character {kind} name refused: {r.status_code} {r.text}"
    assert r.json()[kind]["name"] == longest
    assert api.request("DELETE", f"/{coll}/{r.json()[kind]['id']}", admin_token).status_code == 204
    r = api.request("POST", f"/{coll}", admin_token, json={kind: {"name": longest + "x"}})
    assert_keystone_error(r, 400, mentions="name")
    r = api.request("POST", f"/{coll}", admin_token, json={kind: {"name": ""}})
    assert_keystone_error(r, 400, mentions="name")


def test_body_over_limit_is_413(api, admin_token, name):
    n = name("big")
    body = json.dumps({"user": {"name": n, "description": "x" * (MAX_BODY + 1)}}).encode()
    assert len(body) > MAX_BODY
    r = api.request("POST", "/users", admin_token, data=body,
                    headers={"Content-Type": "application/json"})
    assert_keystone_error(r, 413)
    # Just under the limit is not refused for its size.
    small = json.dumps({"user": {"name": n, "description": "x" * 60000}}).encode()
    r = api.request("POST", "/users", admin_token, data=small,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert api.request("DELETE", f"/users/{r.json()['user']['id']}", admin_token).status_code == 204


# --- authentication -----------------------------------------------------------------------


def test_wrong_password_and_unknown_user_look_the_same(api, admin_token, name):
    u = name("user")
    make_user(api, admin_token, u, "right-pw-1234")
    wrong_pw = api.authenticate(u, "wrong-pw-1234")
    no_user = api.authenticate(name("nobody"), "right-pw-1234")
    no_id = api.request("POST", "/auth/tokens", json=Api.password_auth_body(
        "", "right-pw-1234", user_id=uuid.uuid4().hex))
    for r in (wrong_pw, no_user, no_id):
        assert_keystone_error(r, 401)
        assert "X-Subject-Token" not in r.headers
    assert wrong_pw.content == no_user.content, (wrong_pw.text, no_user.text)
    assert wrong_pw.content == no_id.content, (wrong_pw.text, no_id.text)


def test_disabled_user_is_401(api, admin_token, name):
    p = make_project(api, admin_token, name("proj"))
    u = make_user(api, admin_token, name("user"), "pw-dis-12345", p["id"])
    tok = api.token(u["name"], "pw-dis-12345", p["name"])
    r = api.request("PATCH", f"/users/{u['id']}", admin_token, json={"user": {"enabled": False}})
    assert r.status_code == 200 and r.json()["user"]["enabled"] is False, r.text
    assert_keystone_error(api.authenticate(u["name"], "pw-dis-12345"), 401)
    assert_keystone_error(api.authenticate(u["name"], "pw-dis-12345", p["name"]), 401)
    # Disabling a user revokes the tokens it already holds.
    r = api.request("GET", "/auth/tokens", admin_token, headers={"X-Subject-Token": tok})
    assert_keystone_error(r, 404)


def test_disabled_project_scope_is_401(api, admin_token, name):
    p = make_project(api, admin_token, name("proj"))
    u = make_user(api, admin_token, name("user"), "pw-dp-123456", p["id"])
    tok = api.token(u["name"], "pw-dp-123456", p["name"])
    r = api.request("PATCH", f"/projects/{p['id']}", admin_token,
                    json={"project": {"enabled": False}})
    assert r.status_code == 200 and r.json()["project"]["enabled"] is False, r.text
    assert_keystone_error(api.authenticate(u["name"], "pw-dp-123456", p["name"]), 401)
    r = api.request("POST", "/auth/tokens", json=Api.password_auth_body(
        u["name"], "pw-dp-123456", project_id=p["id"]))
    assert_keystone_error(r, 401)
    # The user itself is fine: an unscoped token still works.
    assert api.authenticate(u["name"], "pw-dp-123456").status_code == 201
    # Tokens scoped to the project stop validating.
    r = api.request("GET", "/auth/tokens", admin_token, headers={"X-Subject-Token": tok})
    assert_keystone_error(r, 404)


# --- conflicts and unknown ids ------------------------------------------------------------


def test_duplicate_user_name_is_409(api, admin_token, name):
    u = name("user")
    make_user(api, admin_token, u, "pw-dup-12345")
    r = api.request("POST", "/users", admin_token, json={"user": {"name": u, "password": "x-1234567"}})
    assert_keystone_error(r, 409)


@pytest.mark.parametrize("coll", ["users", "projects", "groups", "roles", "domains"])
def test_unknown_id_is_404(api, admin_token, coll):
    r = api.request("GET", f"/{coll}/{uuid.uuid4().hex}", admin_token)
    assert_keystone_error(r, 404)


def test_concurrent_creates_of_one_name(api, admin_token, name):
    u = name("race")
    n = 20
    barrier = threading.Barrier(n)

    def create(_):
        barrier.wait(timeout=30)
        return api.request("POST", "/users", admin_token,
                           json={"user": {"name": u, "password": "pw-race-1234"}})

    with ThreadPoolExecutor(max_workers=n) as ex:
        results = list(ex.map(create, range(n)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 1 and codes.count(409) == n - 1, codes
    for r in results:
        if r.status_code == 409:
            assert_keystone_error(r, 409)
    r = api.request("GET", "/users", admin_token, params={"name": u})
    assert r.status_code == 200, r.text
    assert len(r.json()["users"]) == 1, r.text


# --- tokens -------------------------------------------------------------------------------


def _tamper(token: str, i: int) -> str:
    c = token[i]
    repl = next(x for x in "AbC0xYz9" if x != c)
    return token[:i] + repl + token[i + 1:]


def test_tampered_token_is_401(api, admin_token):
    assert api.request("GET", "/projects", admin_token).status_code == 200
    n = len(admin_token)
    assert n >= 8, admin_token
    for i in sorted({4, n // 2, n - 3}):
        bad = _tamper(admin_token, i)
        assert bad != admin_token
        assert_keystone_error(api.request("GET", "/projects", bad), 401)
    assert_keystone_error(api.request("GET", "/projects", admin_token + "A"), 401)
    assert_keystone_error(api.request("GET", "/projects", "not-a-token"), 401)


def test_missing_token_is_401(api):
    assert_keystone_error(api.request("GET", "/projects"), 401)


def test_token_from_another_strata_is_refused(api, admin_token, other_server):
    other = Api(other_server)
    foreign = other.cloud_token("strata")
    # It is a good token where it came from...
    assert other.request("GET", "/projects", foreign).status_code == 200
    # ...and worthless here, as the caller's token (401) or as the token to validate (404).
    assert_keystone_error(api.request("GET", "/projects", foreign), 401)
    r = api.request("GET", "/auth/tokens", admin_token, headers={"X-Subject-Token": foreign})
    assert_keystone_error(r, 404)


def test_every_response_has_a_request_id(api, admin_token):
    for r in (api.request("GET", "/projects", admin_token),
              api.request("GET", f"/users/{uuid.uuid4().hex}", admin_token),
              api.request("GET", "/projects")):
        rid = r.headers.get("x-openstack-request-id", "")
        assert re.fullmatch(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", rid), \
            f"{r.request.method} {r.request.url}: x-openstack-request-id={rid!r}"
