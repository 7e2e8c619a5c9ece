//! Role assignments: the grant routes (project, domain, system; users and groups; OS-INHERIT),
//! their effect on tokens, and `GET /v3/role_assignments` (effective, include_names,
//! include_subtree). Runs on SQLite and PostgreSQL.

mod common;

use common::{project_scope, test_config, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const V3: &str = "/identity/v3";

async fn head(s: &Stack, path: &str, token: &str) -> StatusCode {
    s.call(Method::HEAD, path, Some(token), &[], None)
        .await
        .status
}

fn role_names(token_body: &Value) -> Vec<String> {
    let mut v: Vec<String> = token_body["token"]["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("roles in {token_body}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn new_role(s: &Stack, admin: &str, name: &str, domain: Option<&str>) -> String {
    let mut body = json!({"role": {"name": name}});
    if let Some(d) = domain {
        body["role"]["domain_id"] = json!(d);
    }
    let r = s.post(&format!("{V3}/roles"), admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.json["role"]["id"].as_str().unwrap().to_string()
}

async fn assignments(s: &Stack, token: &str, query: &str) -> Vec<Value> {
    let r = s
        .get(&format!("{V3}/role_assignments?{query}"), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.raw);
    r.json["role_assignments"].as_array().unwrap().clone()
}

#[tokio::test]
async fn project_user_grant_lifecycle_and_revocation() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let p = s.create_project(&admin, "alpha").await;
        let u = s.create_user(&admin, "dave", "dave-pw").await;
        let member = s.role_id("member").await;
        let base = format!("{V3}/projects/{p}/users/{u}/roles");
        let one = format!("{base}/{member}");

        let m = s
            .get(&one, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(
            m,
            format!("Could not find role assignment with role: {member}, user or group: {u}, project, domain, or system: {p}.")
        );
        assert_eq!(head(&s, &one, &admin).await, StatusCode::NOT_FOUND);
        assert_eq!(
            s.put(&one, &admin).await.status,
            StatusCode::NO_CONTENT,
            "{}",
            s.label()
        );
        assert_eq!(
            s.put(&one, &admin).await.status,
            StatusCode::NO_CONTENT,
            "idempotent"
        );
        assert_eq!(head(&s, &one, &admin).await, StatusCode::NO_CONTENT);
        assert_eq!(s.get(&one, &admin).await.status, StatusCode::NO_CONTENT);
        let r = s.get(&base, &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let listed = r.json["roles"].as_array().unwrap();
        assert_eq!(
            listed.len(),
            1,
            "direct grants only, not implied roles: {}",
            r.raw
        );
        assert_eq!(listed[0]["id"], member.as_str());
        assert_eq!(listed[0]["name"], "member");
        assert!(r.json["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/projects/{p}/users/{u}/roles")));

        // 404s name the missing entity.
        for (path, want) in [
            (format!("{base}/nope"), "Could not find role: nope."),
            (
                format!("{V3}/projects/{p}/users/nope/roles/{member}"),
                "Could not find user: nope.",
            ),
            (
                format!("{V3}/projects/nope/users/{u}/roles/{member}"),
                "Could not find project: nope.",
            ),
            (
                format!("{V3}/projects/{p}/groups/nope/roles/{member}"),
                "Could not find group: nope.",
            ),
            (
                format!("{V3}/domains/nope/users/{u}/roles/{member}"),
                "Could not find domain: nope.",
            ),
        ] {
            let m = s
                .put(&path, &admin)
                .await
                .assert_error(StatusCode::NOT_FOUND)
                .to_string();
            assert_eq!(m, want);
        }

        // The token carries the role and what it implies; a member may not grant.
        let tok = s.login("dave", "dave-pw", "alpha").await;
        let r = s.validate(&admin, &tok).await;
        assert_eq!(role_names(&r.json), vec!["member", "reader"]);
        s.put(&format!("{base}/{}", s.role_id("admin").await), &tok)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&base, &tok).await.assert_error(StatusCode::FORBIDDEN);

        // Unassigning revokes the user's token on that project at once.
        assert_eq!(s.delete(&one, &admin).await.status, StatusCode::NO_CONTENT);
        assert_eq!(s.validate(&admin, &tok).await.status, StatusCode::NOT_FOUND);
        s.delete(&one, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .password_token("dave", "default", "dave-pw", Some(project_scope("alpha")))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "no role left: {}",
            r.raw
        );
    }
}

#[tokio::test]
async fn domain_system_and_group_grants() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let u = s.create_user(&admin, "erin", "erin-pw").await;
        let reader = s.role_id("reader").await;
        let r = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": "auditors"}}),
            )
            .await;
        let g = r.json["group"]["id"].as_str().unwrap().to_string();

        // Domain, user and group.
        for actor in [format!("users/{u}"), format!("groups/{g}")] {
            let one = format!("{V3}/domains/default/{actor}/roles/{reader}");
            assert_eq!(s.put(&one, &admin).await.status, StatusCode::NO_CONTENT);
            assert_eq!(head(&s, &one, &admin).await, StatusCode::NO_CONTENT);
            let r = s
                .get(&format!("{V3}/domains/default/{actor}/roles"), &admin)
                .await;
            assert_eq!(r.json["roles"][0]["id"], reader.as_str(), "{}", r.raw);
        }
        let r = s
            .password_token(
                "erin",
                "default",
                "erin-pw",
                Some(json!({"domain": {"id": "default"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(role_names(&r.json), vec!["reader"]);
        let dtok = r.token();

        // System, user and group.
        for actor in [format!("users/{u}"), format!("groups/{g}")] {
            let one = format!("{V3}/system/{actor}/roles/{reader}");
            assert_eq!(head(&s, &one, &admin).await, StatusCode::NOT_FOUND);
            assert_eq!(s.put(&one, &admin).await.status, StatusCode::NO_CONTENT);
            assert_eq!(s.get(&one, &admin).await.status, StatusCode::NO_CONTENT);
            let r = s.get(&format!("{V3}/system/{actor}/roles"), &admin).await;
            assert_eq!(r.json["roles"].as_array().unwrap().len(), 1, "{}", r.raw);
        }
        let r = s
            .password_token(
                "erin",
                "default",
                "erin-pw",
                Some(json!({"system": {"all": true}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let stok = r.token();
        // A system reader reads assignments but may not change them.
        let r = s
            .get(&format!("{V3}/role_assignments?scope.system=all"), &stok)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let sys: Vec<&Value> = r.json["role_assignments"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert!(sys
            .iter()
            .all(|a| a["scope"] == json!({"system": {"all": true}})));
        assert!(sys.iter().any(|a| a["group"]["id"] == g.as_str()
            && a["links"]["assignment"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/system/groups/{g}/roles/{reader}"))));
        s.put(
            &format!("{V3}/system/users/{u}/roles/{}", s.role_id("admin").await),
            &stok,
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        // A domain reader sees its domain's assignments only.
        let dom = assignments(&s, &dtok, "").await;
        assert!(!dom.is_empty());
        assert!(
            dom.iter().all(|a| a["scope"].get("system").is_none()),
            "{dom:?}"
        );

        // Domain-specific roles: not on the system, not on another domain's projects.
        let r = s
            .post(
                &format!("{V3}/domains"),
                &admin,
                json!({"domain": {"name": "elsewhere"}}),
            )
            .await;
        let other = r.json["domain"]["id"].as_str().unwrap().to_string();
        let dr = new_role(&s, &admin, "local", Some(&other)).await;
        s.put(&format!("{V3}/system/users/{u}/roles/{dr}"), &admin)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let p = s.project_id("demo").await;
        let m = s
            .put(&format!("{V3}/projects/{p}/users/{u}/roles/{dr}"), &admin)
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert!(m.contains("must be in the same domain as the role"), "{m}");

        // Removing a group's system grant revokes its members' system tokens.
        s.put(&format!("{V3}/groups/{g}/users/{u}"), &admin).await;
        assert_eq!(
            s.delete(&format!("{V3}/system/users/{u}/roles/{reader}"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let r = s
            .password_token(
                "erin",
                "default",
                "erin-pw",
                Some(json!({"system": {"all": true}})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "still a reader through the group: {}",
            r.raw
        );
        let stok = r.token();
        assert_eq!(
            s.delete(&format!("{V3}/system/groups/{g}/roles/{reader}"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            s.validate(&admin, &stok).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn implied_roles_expand_in_tokens_and_effective_assignments() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let p = s.create_project(&admin, "beta").await;
        let u = s.create_user(&admin, "fay", "fay-pw").await;
        let ops = new_role(&s, &admin, "ops", None).await;
        let viewer = new_role(&s, &admin, "viewer", None).await;
        // A domain-specific role implying `ops`: it never shows itself.
        let local = new_role(&s, &admin, "local-ops", Some("default")).await;
        assert_eq!(
            s.put(&format!("{V3}/roles/{ops}/implies/{viewer}"), &admin)
                .await
                .status,
            StatusCode::CREATED
        );
        assert_eq!(
            s.put(&format!("{V3}/roles/{local}/implies/{ops}"), &admin)
                .await
                .status,
            StatusCode::CREATED
        );
        assert_eq!(
            s.put(
                &format!("{V3}/projects/{p}/users/{u}/roles/{local}"),
                &admin
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );

        let tok = s.login("fay", "fay-pw", "beta").await;
        assert_eq!(
            role_names(&s.validate(&admin, &tok).await.json),
            vec!["ops", "viewer"]
        );

        let q = format!("user.id={u}&scope.project.id={p}&effective");
        let eff = assignments(&s, &admin, &q).await;
        let mut roles: Vec<&str> = eff
            .iter()
            .map(|a| a["role"]["id"].as_str().unwrap())
            .collect();
        roles.sort();
        let mut want = vec![ops.as_str(), viewer.as_str()];
        want.sort();
        assert_eq!(roles, want, "{eff:?}");
        let implied = eff
            .iter()
            .find(|a| a["role"]["id"] == viewer.as_str())
            .unwrap();
        assert!(implied["links"]["prior_role"].is_string(), "{implied}");
        assert_eq!(
            implied["links"]["assignment"],
            format!("http://test/identity/v3/projects/{p}/users/{u}/roles/{ops}")
        );
        // The user may list their own effective assignments; not someone else's.
        let own = assignments(&s, &tok, &q).await;
        assert_eq!(own.len(), 2);
        let admin_id = s.user_id("admin").await;
        s.get(
            &format!("{V3}/role_assignments?user.id={admin_id}&effective"),
            &tok,
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{V3}/role_assignments"), &tok)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Without effective: the one direct grant, domain-specific role and all.
        let direct = assignments(&s, &admin, &format!("user.id={u}")).await;
        assert_eq!(direct.len(), 1);
        assert_eq!(direct[0]["role"]["id"], local.as_str());

        // Dropping the rule drops the implied role from the same token.
        assert_eq!(
            s.delete(&format!("{V3}/roles/{ops}/implies/{viewer}"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            role_names(&s.validate(&admin, &tok).await.json),
            vec!["ops"]
        );
    }
}

#[tokio::test]
async fn inherited_domain_assignment_reaches_projects() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let p = s.create_project(&admin, "gamma").await;
        let r = s
            .post(
                &format!("{V3}/projects"),
                &admin,
                json!({"project": {"name": "gamma-child", "parent_id": p}}),
            )
            .await;
        let child = r.json["project"]["id"].as_str().unwrap().to_string();
        let u = s.create_user(&admin, "gus", "gus-pw").await;
        let member = s.role_id("member").await;
        let inh = format!(
            "{V3}/OS-INHERIT/domains/default/users/{u}/roles/{member}/inherited_to_projects"
        );
        assert_eq!(head(&s, &inh, &admin).await, StatusCode::NOT_FOUND);
        assert_eq!(
            s.put(&inh, &admin).await.status,
            StatusCode::NO_CONTENT,
            "{}",
            s.label()
        );
        assert_eq!(head(&s, &inh, &admin).await, StatusCode::NO_CONTENT);
        let r = s
            .get(
                &format!("{V3}/OS-INHERIT/domains/default/users/{u}/roles/inherited_to_projects"),
                &admin,
            )
            .await;
        assert_eq!(r.json["roles"][0]["id"], member.as_str(), "{}", r.raw);
        // Not a domain role: no domain-scoped token; the non-inherited check says 404.
        assert_eq!(
            head(
                &s,
                &format!("{V3}/domains/default/users/{u}/roles/{member}"),
                &admin
            )
            .await,
            StatusCode::NOT_FOUND
        );

        // A role on every project of the domain.
        let tok = s.login("gus", "gus-pw", "gamma").await;
        assert_eq!(
            role_names(&s.validate(&admin, &tok).await.json),
            vec!["member", "reader"]
        );
        s.login("gus", "gus-pw", "gamma-child").await;

        // Listed as inherited, and expanded onto projects when effective.
        let direct = assignments(&s, &admin, &format!("user.id={u}")).await;
        assert_eq!(direct.len(), 1);
        assert_eq!(
            direct[0]["scope"],
            json!({"domain": {"id": "default"}, "OS-INHERIT:inherited_to": "projects"})
        );
        assert_eq!(
            direct[0]["links"]["assignment"],
            format!("http://test{inh}")
        );
        let inherited_only =
            assignments(&s, &admin, "scope.OS-INHERIT:inherited_to=projects").await;
        assert_eq!(inherited_only.len(), 1);
        let eff = assignments(
            &s,
            &admin,
            &format!("user.id={u}&scope.project.id={child}&effective"),
        )
        .await;
        assert_eq!(eff.len(), 2, "member and the implied reader: {eff:?}");
        let m = eff
            .iter()
            .find(|a| a["role"]["id"] == member.as_str())
            .unwrap();
        assert_eq!(m["scope"]["project"]["id"], child.as_str());
        assert_eq!(m["scope"]["OS-INHERIT:inherited_to"], "projects");
        assert_eq!(m["links"]["assignment"], format!("http://test{inh}"));

        // Project-inherited: the subtree below, not the project itself.
        let v = s.create_user(&admin, "hal", "hal-pw").await;
        let pinh =
            format!("{V3}/OS-INHERIT/projects/{p}/users/{v}/roles/{member}/inherited_to_projects");
        assert_eq!(s.put(&pinh, &admin).await.status, StatusCode::NO_CONTENT);
        s.login("hal", "hal-pw", "gamma-child").await;
        let r = s
            .password_token("hal", "default", "hal-pw", Some(project_scope("gamma")))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
        let tree = assignments(
            &s,
            &admin,
            &format!(
                "scope.project.id={p}&include_subtree=true&effective&user.id={v}&role.id={member}"
            ),
        )
        .await;
        assert_eq!(tree.len(), 1, "{tree:?}");
        assert_eq!(tree[0]["scope"]["project"]["id"], child.as_str());

        // Revoking the inherited grant revokes the user's tokens.
        assert_eq!(s.delete(&inh, &admin).await.status, StatusCode::NO_CONTENT);
        assert_eq!(s.validate(&admin, &tok).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn role_assignment_listing_names_groups_and_bad_filters() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let p = s.create_project(&admin, "delta").await;
        let u = s.create_user(&admin, "ivy", "ivy-pw").await;
        let reader = s.role_id("reader").await;
        let r = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": "readers"}}),
            )
            .await;
        let g = r.json["group"]["id"].as_str().unwrap().to_string();
        s.put(&format!("{V3}/groups/{g}/users/{u}"), &admin).await;
        s.put(
            &format!("{V3}/projects/{p}/groups/{g}/roles/{reader}"),
            &admin,
        )
        .await;

        // Direct: the group assignment, with names.
        let all = assignments(&s, &admin, &format!("scope.project.id={p}&include_names")).await;
        assert_eq!(all.len(), 1, "{all:?}");
        let a = &all[0];
        assert_eq!(
            a["group"],
            json!({"id": g, "name": "readers", "domain": {"id": "default", "name": "Default"}})
        );
        assert_eq!(a["role"], json!({"id": reader, "name": "reader"}));
        assert_eq!(
            a["scope"],
            json!({"project": {"id": p, "name": "delta", "domain": {"id": "default", "name": "Default"}}})
        );
        assert_eq!(
            a["links"]["assignment"],
            format!("http://test/identity/v3/projects/{p}/groups/{g}/roles/{reader}")
        );

        // Effective: one per member, with the membership link.
        let eff = assignments(
            &s,
            &admin,
            &format!("scope.project.id={p}&effective&include_names=true"),
        )
        .await;
        assert_eq!(eff.len(), 1, "{eff:?}");
        assert_eq!(eff[0]["user"]["name"], "ivy");
        assert_eq!(eff[0]["user"]["domain"]["name"], "Default");
        assert_eq!(
            eff[0]["links"]["membership"],
            format!("http://test/identity/v3/groups/{g}/users/{u}")
        );
        assert_eq!(
            eff[0]["links"]["assignment"],
            format!("http://test/identity/v3/projects/{p}/groups/{g}/roles/{reader}")
        );
        assert!(eff[0].get("group").is_none());
        let tok = s.login("ivy", "ivy-pw", "delta").await;
        assert_eq!(
            role_names(&s.validate(&admin, &tok).await.json),
            vec!["reader"]
        );

        // Filters that can't be combined are 400s, as in Keystone.
        for (q, msg) in [
            (
                format!("scope.project.id={p}&scope.domain.id=default"),
                "Specify a domain or project, not both",
            ),
            (
                format!("user.id={u}&group.id={g}"),
                "Specify a user or group, not both",
            ),
            (
                format!("group.id={g}&effective"),
                "Combining effective and group filter will always result in an empty list.",
            ),
            (
                "scope.system=all&scope.domain.id=default".to_string(),
                "Specify system or domain, not both",
            ),
            (
                "include_subtree=true".to_string(),
                "scope.project.id must be specified if include_subtree is also specified",
            ),
        ] {
            let r = s.get(&format!("{V3}/role_assignments?{q}"), &admin).await;
            assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), msg, "{q}");
        }
        // Collections carry links.
        let r = s
            .get(&format!("{V3}/role_assignments?role.id={reader}"), &admin)
            .await;
        assert_eq!(
            r.json["links"]["self"],
            format!("http://test/identity/v3/role_assignments?role.id={reader}")
        );
        assert!(r.json["links"]["next"].is_null());
    }
}
