"""A `member` (the demo user of the strata-demo cloud) is refused admin operations."""

from __future__ import annotations

import re

from harness import assert_keystone_error

DENIED = re.compile(r"403|not authorized", re.IGNORECASE)


def test_member_cannot_create_project(osc, name):
    p = name("proj")
    res = osc.fails("project", "create", p, cloud="strata-demo")
    assert DENIED.search(res.output), res.output
    # The refusal was real: nothing was created.
    assert p not in [r["Name"] for r in osc.json("project", "list")]


def test_member_cannot_create_user(osc, name):
    u = name("user")
    res = osc.fails("user", "create", "--password", "pw-x-123456", u, cloud="strata-demo")
    assert DENIED.search(res.output), res.output
    assert u not in [r["Name"] for r in osc.json("user", "list")]


def test_member_sees_only_own_projects(osc):
    mine = osc.json("project", "list", "--my-projects", cloud="strata-demo")
    assert [r["Name"] for r in mine] == ["demo"], mine
    # Plain `project list` gets 403 from GET /v3/projects and the CLI falls back to the
    # user's own projects: still only demo.
    listed = osc.json("project", "list", cloud="strata-demo")
    assert [r["Name"] for r in listed] == ["demo"], listed


def test_member_raw_http_is_forbidden(api, demo_token, admin_token):
    for path in ("/projects", "/users"):
        assert_keystone_error(api.request("GET", path, demo_token), 403)
    r = api.request("POST", "/projects", demo_token, json={"project": {"name": "nope-by-demo"}})
    assert_keystone_error(r, 403)
    r = api.request("POST", "/users", demo_token, json={"user": {"name": "nope-by-demo"}})
    assert_keystone_error(r, 403)
    # The same requests as admin succeed, so the 403s are policy, not breakage.
    assert api.request("GET", "/projects", admin_token).status_code == 200
    assert api.request("GET", "/users", admin_token).status_code == 200


def test_member_reads_self_but_not_others(api, demo_token, admin_ids):
    r = api.request("GET", "/auth/tokens", demo_token, headers={"X-Subject-Token": demo_token})
    assert r.status_code == 200, r.text
    me = r.json()["token"]["user"]["id"]
    r = api.request("GET", f"/users/{me}", demo_token)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["name"] == "demo"
    assert_keystone_error(api.request("GET", f"/users/{admin_ids['user_id']}", demo_token), 403)
    r = api.request("GET", f"/users/{me}/projects", demo_token)
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()["projects"]] == ["demo"]
