"""Token validation, revocation and the `token` auth method, as Keystone answers them."""

from __future__ import annotations

from harness import assert_keystone_error


def token_auth(api, token: str, project_id: str | None = None):
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
    if project_id:
        body["auth"]["scope"] = {"project": {"id": project_id}}
    return api.request("POST", "/auth/tokens", json=body)


def test_token_method_rescopes(api, server, admin_ids):
    a = server.cloud_auth("strata")
    unscoped = api.token(a["username"], a["password"])
    r = token_auth(api, unscoped, admin_ids["project_id"])
    assert r.status_code == 201, r.text
    assert r.json()["token"]["project"]["id"] == admin_ids["project_id"]
    assert "token" in r.json()["token"]["methods"], r.json()["token"]["methods"]


def test_token_method_with_revoked_token_is_404(api, server, admin_token):
    a = server.cloud_auth("strata")
    tok = api.token(a["username"], a["password"])
    assert token_auth(api, tok).status_code == 201
    r = api.request("DELETE", "/auth/tokens", admin_token, headers={"X-Subject-Token": tok})
    assert r.status_code == 204, r.text
    # Keystone answers "Could not find token" (404) here, not 401; Tempest's
    # test_user_update_own_password depends on it.
    assert_keystone_error(token_auth(api, tok), 404)


def test_member_validates_and_revokes_own_tokens(api, server, demo_token, admin_token):
    d = server.cloud_auth("strata-demo")
    other = api.token(d["username"], d["password"], d["project_name"])
    hdr = {"X-Subject-Token": other}
    r = api.request("GET", "/auth/tokens", demo_token, headers=hdr)
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Subject-Token") == other
    assert api.request("HEAD", "/auth/tokens", demo_token, headers=hdr).status_code == 200
    assert api.request("DELETE", "/auth/tokens", demo_token, headers=hdr).status_code == 204
    # Gone: 404 for its owner too (not 403), for GET and HEAD.
    assert_keystone_error(api.request("GET", "/auth/tokens", demo_token, headers=hdr), 404)
    r = api.request("HEAD", "/auth/tokens", demo_token, headers=hdr)
    assert r.status_code == 404, f"HEAD revoked own token: {r.status_code}"
    # The caller's own token is unaffected.
    assert api.request("GET", "/auth/tokens", demo_token,
                       headers={"X-Subject-Token": demo_token}).status_code == 200


def test_member_cannot_validate_someone_elses_token(api, demo_token, admin_token):
    r = api.request("GET", "/auth/tokens", demo_token, headers={"X-Subject-Token": admin_token})
    assert_keystone_error(r, 403)


def test_validate_returns_the_issued_body(api, server):
    """Tempest's test_validate_token: GET /v3/auth/tokens returns what POST returned."""
    d = server.cloud_auth("strata-demo")
    r = api.authenticate(d["username"], d["password"], d["project_name"])
    assert r.status_code == 201, r.text
    tok, issued = r.headers["X-Subject-Token"], r.json()["token"]
    r = api.request("GET", "/auth/tokens", tok, headers={"X-Subject-Token": tok})
    assert r.status_code == 200, r.text
    shown = r.json()["token"]
    for t in (issued, shown):
        t["roles"] = sorted(t.get("roles", []), key=lambda x: x["id"])
    assert shown == issued
    assert issued["expires_at"] > issued["issued_at"]
    assert issued["methods"] == ["password"]
