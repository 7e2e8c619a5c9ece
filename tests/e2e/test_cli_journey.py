"""The admin's journey with the real `openstack` CLI against `strata up`."""

from __future__ import annotations

import os
import stat

import requests

from harness import HTTP_TIMEOUT_S, assert_keystone_error, poll


def enabled(d: dict) -> bool:
    """OSC prints `enabled` for some resources and `is_enabled` for others."""
    for k in ("enabled", "is_enabled", "Enabled"):
        if k in d:
            return d[k] in (True, "True", "true")
    raise AssertionError(f"no enabled field in {d}")


def names(rows: list[dict]) -> list[str]:
    return [r["Name"] for r in rows]


# --- what `strata up` printed and wrote ---------------------------------------------------


def test_up_prints_how_to_use_it(server):
    want = [
        f"Strata is up on http://127.0.0.1:{server.port}",
        f"export OS_CLIENT_CONFIG_FILE={server.data_dir}/clouds.yaml",
        "openstack --os-cloud strata token issue",
    ]

    def printed():
        lines = [l.strip() for l in server.stdout().splitlines()]
        pos = [lines.index(w) if w in lines else -1 for w in want]
        return all(p >= 0 for p in pos) and pos == sorted(pos)

    poll(printed, 10, f"stdout to contain, in order, {want}")


def test_clouds_yaml(server):
    mode = stat.S_IMODE(os.stat(server.clouds_yaml).st_mode)
    assert mode == 0o600, f"clouds.yaml mode is {oct(mode)}, want 0o600"
    clouds = server.clouds()
    for cloud, user, project in (("strata", "admin", "admin"), ("strata-demo", "demo", "demo")):
        c = clouds[cloud]
        a = c["auth"]
        assert a["auth_url"].rstrip("/") == server.identity_url, a
        assert a["username"] == user
        assert a["project_name"] == project
        assert a["user_domain_name"] == "Default"
        assert a["project_domain_name"] == "Default"
        assert isinstance(a["password"], str) and len(a["password"]) >= 12, "weak or no password"
        assert c["region_name"] == "RegionOne"
        assert str(c["identity_api_version"]) == "3"
    assert clouds["strata"]["auth"]["password"] != clouds["strata-demo"]["auth"]["password"]


# --- tokens and catalog -------------------------------------------------------------------


def test_token_issue_then_revoke(osc, api, admin_token, admin_ids):
    tok = osc.json("token", "issue")
    assert tok["project_id"] == admin_ids["project_id"]
    assert tok["user_id"] == admin_ids["user_id"]
    assert tok["id"]

    r = api.request("GET", "/auth/tokens", admin_token, headers={"X-Subject-Token": tok["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["token"]["user"]["id"] == tok["user_id"]
    assert r.json()["token"]["project"]["id"] == tok["project_id"]

    osc.run("token", "revoke", tok["id"])

    r = api.request("GET", "/auth/tokens", admin_token, headers={"X-Subject-Token": tok["id"]})
    assert_keystone_error(r, 404)
    r = api.request("HEAD", "/auth/tokens", admin_token, headers={"X-Subject-Token": tok["id"]})
    assert r.status_code == 404, f"HEAD of a revoked token: {r.status_code}"
    # The revoked token no longer authenticates anything.
    r = api.request("GET", "/auth/tokens", tok["id"], headers={"X-Subject-Token": tok["id"]})
    assert_keystone_error(r, 401)


def test_catalog_lists_identity(osc, server, api, admin_token):
    rows = osc.json("catalog", "list")
    assert "identity" in [r["Type"] for r in rows], rows

    r = api.request("GET", "/auth/catalog", admin_token)
    assert r.status_code == 200, r.text
    catalog = r.json()["catalog"]
    ident = [s for s in catalog if s["type"] == "identity"]
    assert len(ident) == 1, catalog
    public = [e for e in ident[0]["endpoints"] if e["interface"] == "public"]
    assert public, ident
    for e in public:
        assert e["url"].rstrip("/") in (server.identity_url, server.v3), e
        assert e.get("region_id", e.get("region")) == "RegionOne", e
    # Every service the catalog lists really answers at its URL (the catalog lists exactly
    # what is implemented).
    for svc in catalog:
        for e in svc["endpoints"]:
            resp = requests.get(e["url"], timeout=HTTP_TIMEOUT_S, headers={"Accept": "application/json"})
            assert resp.status_code in (200, 300), f"{svc['type']} {e['url']}: {resp.status_code}"


# --- projects, users, groups, roles -------------------------------------------------------


def test_project_lifecycle(osc, name):
    p = name("proj")
    created = osc.json("project", "create", "--description", "first", p)
    assert created["name"] == p
    assert created["description"] == "first"
    assert enabled(created)
    assert created["domain_id"] == "default"

    assert p in names(osc.json("project", "list"))
    shown = osc.json("project", "show", p)
    assert shown["id"] == created["id"]

    osc.run("project", "set", "--description", "second", "--disable", p)
    shown = osc.json("project", "show", created["id"])
    assert shown["description"] == "second"
    assert not enabled(shown)

    osc.run("project", "set", "--enable", p)
    assert enabled(osc.json("project", "show", p))

    osc.run("project", "delete", p)
    assert p not in names(osc.json("project", "list"))
    res = osc.fails("project", "show", created["id"])
    assert "no project" in res.stderr.lower() or "404" in res.stderr, res.stderr


def test_user_lifecycle(osc, api, name):
    p, u = name("proj"), name("user")
    proj = osc.json("project", "create", p)
    user = osc.json("user", "create", "--project", p, "--password", "pw-one-1234",
                    "--email", "u@example.org", "--description", "tester", u)
    assert user["name"] == u
    assert user["default_project_id"] == proj["id"]
    assert user["domain_id"] == "default"
    assert user.get("email") == "u@example.org"
    assert enabled(user)
    assert "password" not in user, "the password must never be echoed"

    assert u in names(osc.json("user", "list"))
    assert osc.json("user", "show", u)["id"] == user["id"]

    # The password was stored: an unscoped password token works, a wrong one does not.
    assert api.authenticate(u, "pw-one-1234").status_code == 201
    assert_keystone_error(api.authenticate(u, "pw-wrong-1234"), 401)

    osc.run("user", "set", "--email", "v@example.org", "--description", "changed", u)
    shown = osc.json("user", "show", u)
    assert shown.get("email") == "v@example.org"
    assert shown.get("description") == "changed"

    osc.run("user", "set", "--password", "pw-two-1234", u)
    assert api.authenticate(u, "pw-two-1234").status_code == 201
    assert_keystone_error(api.authenticate(u, "pw-one-1234"), 401)

    osc.run("user", "set", "--disable", u)
    assert not enabled(osc.json("user", "show", u))
    assert_keystone_error(api.authenticate(u, "pw-two-1234"), 401)
    osc.run("user", "set", "--enable", u)
    assert api.authenticate(u, "pw-two-1234").status_code == 201

    osc.run("user", "delete", u)
    assert u not in names(osc.json("user", "list"))
    osc.fails("user", "show", user["id"])
    assert_keystone_error(api.authenticate(u, "pw-two-1234"), 401)
    osc.run("project", "delete", p)


def test_group_lifecycle_and_membership(osc, name):
    g, u = name("group"), name("user")
    group = osc.json("group", "create", "--description", "team", g)
    assert group["name"] == g and group["description"] == "team"
    assert group["domain_id"] == "default"
    user = osc.json("user", "create", "--password", "pw-g-123456", u)

    assert g in names(osc.json("group", "list"))
    assert osc.json("group", "show", g)["id"] == group["id"]
    osc.run("group", "set", "--description", "renamed team", g)
    assert osc.json("group", "show", g)["description"] == "renamed team"

    # Not a member yet.
    res = osc.run("group", "contains", "user", g, u)
    assert "not in group" in res.stderr, res.output

    osc.run("group", "add", "user", g, u)
    res = osc.run("group", "contains", "user", g, u)
    assert f"{u} in group {g}" in res.stdout and "not in group" not in res.output, res.output
    assert [r["ID"] for r in osc.json("user", "list", "--group", g)] == [user["id"]]

    osc.run("group", "remove", "user", g, u)
    res = osc.run("group", "contains", "user", g, u)
    assert "not in group" in res.stderr, res.output
    assert osc.json("user", "list", "--group", g) == []

    osc.run("group", "delete", g)
    assert g not in names(osc.json("group", "list"))
    osc.fails("group", "show", group["id"])
    osc.run("user", "delete", u)


def test_bootstrap_roles_and_implications(osc):
    listed = names(osc.json("role", "list"))
    for r in ("admin", "member", "reader"):
        assert r in listed, listed
    rows = osc.json("implied", "role", "list")
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in rows}
    assert ("admin", "member") in pairs, rows
    assert ("member", "reader") in pairs, rows


def test_role_lifecycle(osc, name):
    r, r2 = name("role"), name("role")
    role = osc.json("role", "create", "--description", "a role", r)
    assert role["name"] == r
    assert r in names(osc.json("role", "list"))
    assert osc.json("role", "show", r)["id"] == role["id"]

    osc.run("role", "set", "--name", r2, "--description", "renamed", r)
    shown = osc.json("role", "show", role["id"])
    assert shown["name"] == r2
    assert shown.get("description") == "renamed"
    listed = names(osc.json("role", "list"))
    assert r2 in listed and r not in listed

    osc.run("role", "delete", r2)
    assert r2 not in names(osc.json("role", "list"))
    osc.fails("role", "show", role["id"])


def test_role_assignment(osc, api, name):
    p, u = name("proj"), name("user")
    proj = osc.json("project", "create", p)
    osc.json("user", "create", "--password", "pw-ra-12345", u)

    # No role yet: a token scoped to the project is refused.
    assert_keystone_error(api.authenticate(u, "pw-ra-12345", p), 401)

    osc.run("role", "add", "--project", p, "--user", u, "member")
    rows = osc.json("role", "assignment", "list", "--names", "--project", p)
    mine = [x for x in rows if x["User"].split("@")[0] == u]
    assert len(mine) == 1, rows
    assert mine[0]["Role"] == "member"
    assert mine[0]["Project"].split("@")[0] == p

    r = api.authenticate(u, "pw-ra-12345", p)
    assert r.status_code == 201, r.text
    tok = r.json()["token"]
    assert tok["project"]["id"] == proj["id"]
    roles = {x["name"] for x in tok["roles"]}
    assert "member" in roles and "reader" in roles, f"member implies reader: {roles}"
    assert "admin" not in roles

    osc.run("role", "remove", "--project", p, "--user", u, "member")
    rows = osc.json("role", "assignment", "list", "--names", "--project", p)
    assert [x for x in rows if x["User"].split("@")[0] == u] == [], rows
    assert_keystone_error(api.authenticate(u, "pw-ra-12345", p), 401)

    osc.run("user", "delete", u)
    osc.run("project", "delete", p)


def test_application_credential(osc, server, admin_ids, name):
    n = name("appcred")
    # OSC prints application credentials with title-case keys ("ID", "Project ID", "Secret").
    cred = osc.json("application", "credential", "create", "--description", "ci", n)
    assert cred["Name"] == n
    assert cred["Description"] == "ci"
    assert cred["Project ID"] == admin_ids["project_id"]
    assert "admin" in {r["name"] for r in cred["Roles"]}, cred
    secret = cred["Secret"]
    assert isinstance(secret, str) and len(secret) >= 16, cred

    app_auth = ["--os-auth-type", "v3applicationcredential",
                "--os-auth-url", server.identity_url,
                "--os-identity-api-version", "3",
                "--os-application-credential-id", cred["ID"],
                # `=`: a generated secret may start with "-", which argparse would take for an
                # option.
                f"--os-application-credential-secret={secret}"]
    tok = osc.json(*app_auth, "token", "issue", use_cloud=False)
    assert tok["project_id"] == admin_ids["project_id"]
    assert tok["user_id"] == admin_ids["user_id"]

    # A wrong secret is refused. (Changed near the start: like Keystone with bcrypt, Strata
    # only looks at the first 72 bytes of a secret.)
    wrong = list(app_auth)
    wrong[-1] = secret[:10] + ("A" if secret[10] != "A" else "B") + secret[11:]
    osc.fails(*wrong, "token", "issue", use_cloud=False)

    assert n in names(osc.json("application", "credential", "list"))
    shown = osc.json("application", "credential", "show", n)
    assert shown["ID"] == cred["ID"]
    assert not shown.get("Secret"), "the secret is shown only at creation"

    osc.run("application", "credential", "delete", n)
    assert n not in names(osc.json("application", "credential", "list"))
    osc.fails("application", "credential", "show", cred["ID"])
    osc.fails(*app_auth, "token", "issue", use_cloud=False)
