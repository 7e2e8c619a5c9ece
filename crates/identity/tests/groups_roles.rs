//! Groups (CRUD, membership) and roles (CRUD, domain-specific roles, implied roles), with
//! Keystone's status codes and messages. Runs on SQLite and PostgreSQL.

mod common;

use common::{test_config, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const V3: &str = "/identity/v3";

/// A user with `member` on `demo`, and its token.
async fn member(s: &Stack, admin: &str, name: &str) -> (String, String) {
    let uid = s.create_user(admin, name, "member-pw").await;
    let demo = s.project_id("demo").await;
    s.grant(&uid, &demo, "member").await;
    let tok = s.login(name, "member-pw", "demo").await;
    (uid, tok)
}

async fn head(s: &Stack, path: &str, token: &str) -> StatusCode {
    s.call(Method::HEAD, path, Some(token), &[], None)
        .await
        .status
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn group_crud_conflicts_and_policy() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let r = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": "ops", "description": "Ops", "email": "ops@x"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", s.label(), r.raw);
        let g = r.json["group"].clone();
        let gid = g["id"].as_str().unwrap().to_string();
        assert_eq!(g["domain_id"], "default", "the caller's project domain");
        assert_eq!(g["description"], "Ops");
        assert_eq!(g["email"], "ops@x", "extra attributes are kept");
        assert!(g["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/groups/{gid}")));

        // Unique per domain.
        let r = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": "ops"}}),
            )
            .await;
        let m = r.assert_error(StatusCode::CONFLICT);
        assert!(
            m.contains("Duplicate entry found with name ops at domain ID default"),
            "{m}"
        );
        // Same name in another domain is fine.
        let r = s
            .post(
                &format!("{V3}/domains"),
                &admin,
                json!({"domain": {"name": "other"}}),
            )
            .await;
        let other = r.json["domain"]["id"].as_str().unwrap().to_string();
        let r = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": "ops", "domain_id": other}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        // Bad bodies.
        s.post(&format!("{V3}/groups"), &admin, json!({"group": {}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let m = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": 5}}),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert!(m.contains("group.name"), "{m}");
        s.post(
            &format!("{V3}/groups"),
            &admin,
            json!({"group": {"name": "x", "domain_id": "nope"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Show, list with filters.
        let r = s.get(&format!("{V3}/groups/{gid}"), &admin).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["group"], g);
        let r = s.get(&format!("{V3}/groups?name=ops"), &admin).await;
        assert_eq!(ids(&r.json, "groups").len(), 2);
        let r = s
            .get(&format!("{V3}/groups?name=ops&domain_id=default"), &admin)
            .await;
        assert_eq!(ids(&r.json, "groups"), vec![gid.clone()]);
        assert!(r.json["links"]["self"]
            .as_str()
            .unwrap()
            .contains("/v3/groups?"));

        // Update.
        let r = s
            .patch(
                &format!("{V3}/groups/{gid}"),
                &admin,
                json!({"group": {"name": "ops2"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["group"]["name"], "ops2");
        assert_eq!(r.json["group"]["description"], "Ops", "untouched");
        s.patch(
            &format!("{V3}/groups/{gid}"),
            &admin,
            json!({"group": {"domain_id": other}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.patch(&format!("{V3}/groups/{gid}"), &admin, json!({"group": {}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);

        // A member may neither read nor write groups.
        let (_, mt) = member(&s, &admin, "gm").await;
        let m = s
            .get(&format!("{V3}/groups"), &mt)
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert!(m.contains("identity:list_groups"), "{m}");
        s.get(&format!("{V3}/groups/{gid}"), &mt)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(
            &format!("{V3}/groups"),
            &mt,
            json!({"group": {"name": "g"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{V3}/groups/{gid}"), &mt)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Delete; then 404 with Keystone's message.
        let r = s.delete(&format!("{V3}/groups/{gid}"), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let m = s
            .get(&format!("{V3}/groups/{gid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Could not find group: {gid}."));
        s.delete(&format!("{V3}/groups/{gid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn membership_add_check_list_remove() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let r = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": "devs"}}),
            )
            .await;
        let gid = r.json["group"]["id"].as_str().unwrap().to_string();
        let (uid, ut) = member(&s, &admin, "dev1").await;
        let path = format!("{V3}/groups/{gid}/users/{uid}");

        assert_eq!(
            head(&s, &path, &admin).await,
            StatusCode::NOT_FOUND,
            "not yet a member"
        );
        let m = s
            .get(&path, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("User '{uid}' not found in group '{gid}'"));
        s.put(&path, &ut).await.assert_error(StatusCode::FORBIDDEN);
        assert_eq!(s.put(&path, &admin).await.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.put(&path, &admin).await.status,
            StatusCode::NO_CONTENT,
            "idempotent"
        );
        assert_eq!(head(&s, &path, &admin).await, StatusCode::NO_CONTENT);
        assert_eq!(s.get(&path, &admin).await.status, StatusCode::NO_CONTENT);

        // Unknown user or group: 404 naming which.
        let m = s
            .put(&format!("{V3}/groups/{gid}/users/nope"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, "Could not find user: nope.");
        let m = s
            .put(&format!("{V3}/groups/nope/users/{uid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, "Could not find group: nope.");

        // Listings both ways; the user may list their own groups.
        let r = s.get(&format!("{V3}/groups/{gid}/users"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(ids(&r.json, "users"), vec![uid.clone()]);
        assert_eq!(r.json["users"][0]["name"], "dev1");
        let r = s
            .get(&format!("{V3}/groups/{gid}/users?name=other"), &admin)
            .await;
        assert!(ids(&r.json, "users").is_empty());
        let r = s.get(&format!("{V3}/users/{uid}/groups"), &ut).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(ids(&r.json, "groups"), vec![gid.clone()]);
        assert!(r.json["groups"][0]["membership_expires_at"].is_null());
        assert!(r.json["groups"][0]
            .as_object()
            .unwrap()
            .contains_key("membership_expires_at"));
        let admin_uid = s.user_id("admin").await;
        s.get(&format!("{V3}/users/{admin_uid}/groups"), &ut)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{V3}/groups/{gid}/users"), &ut)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Remove; removing again is a 404.
        s.delete(&path, &ut)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(s.delete(&path, &admin).await.status, StatusCode::NO_CONTENT);
        s.delete(&path, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.get(&format!("{V3}/users/{uid}/groups"), &admin).await;
        assert!(ids(&r.json, "groups").is_empty());
    }
}

#[tokio::test]
async fn group_roles_reach_members_and_leaving_revokes_tokens() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let p = s.create_project(&admin, "team").await;
        let uid = s.create_user(&admin, "carol", "carol-pw").await;
        let r = s
            .post(
                &format!("{V3}/groups"),
                &admin,
                json!({"group": {"name": "team"}}),
            )
            .await;
        let gid = r.json["group"]["id"].as_str().unwrap().to_string();
        let member_role = s.role_id("member").await;
        let r = s
            .put(
                &format!("{V3}/projects/{p}/groups/{gid}/roles/{member_role}"),
                &admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);

        // Not yet a member: no access.
        let r = s
            .password_token(
                "carol",
                "default",
                "carol-pw",
                Some(common::project_scope("team")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);

        s.put(&format!("{V3}/groups/{gid}/users/{uid}"), &admin)
            .await;
        let tok = s.login("carol", "carol-pw", "team").await;
        let r = s.validate(&admin, &tok).await;
        assert_eq!(r.status, StatusCode::OK);
        let roles: Vec<&str> = r.json["token"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert!(
            roles.contains(&"member") && roles.contains(&"reader"),
            "{roles:?}"
        );

        // Leaving the group revokes the user's tokens at once.
        assert_eq!(
            s.delete(&format!("{V3}/groups/{gid}/users/{uid}"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(s.validate(&admin, &tok).await.status, StatusCode::NOT_FOUND);

        // Deleting a group with assignments revokes its members' tokens too.
        s.put(&format!("{V3}/groups/{gid}/users/{uid}"), &admin)
            .await;
        let tok = s.login("carol", "carol-pw", "team").await;
        assert_eq!(
            s.delete(&format!("{V3}/groups/{gid}"), &admin).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(s.validate(&admin, &tok).await.status, StatusCode::NOT_FOUND);
        let r = s
            .get(&format!("{V3}/role_assignments?group.id={gid}"), &admin)
            .await;
        assert!(
            r.json["role_assignments"].as_array().unwrap().is_empty(),
            "{}",
            r.raw
        );
    }
}

#[tokio::test]
async fn role_crud_domain_roles_and_policy() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let r = s
            .post(
                &format!("{V3}/roles"),
                &admin,
                json!({"role": {"name": "auditor", "description": "Audits"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", s.label(), r.raw);
        let role = r.json["role"].clone();
        let rid = role["id"].as_str().unwrap().to_string();
        assert_eq!(role["domain_id"], Value::Null);
        assert_eq!(role["options"], json!({}));
        assert_eq!(role["description"], "Audits");

        let m = s
            .post(
                &format!("{V3}/roles"),
                &admin,
                json!({"role": {"name": "auditor"}}),
            )
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert!(m.contains("Duplicate entry found with name auditor"), "{m}");
        // A domain-specific role may reuse a global name; not twice in one domain.
        let r = s
            .post(
                &format!("{V3}/roles"),
                &admin,
                json!({"role": {"name": "auditor", "domain_id": "default"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let drole = r.json["role"].clone();
        assert_eq!(drole["domain_id"], "default");
        s.post(
            &format!("{V3}/roles"),
            &admin,
            json!({"role": {"name": "auditor", "domain_id": "default"}}),
        )
        .await
        .assert_error(StatusCode::CONFLICT);
        s.post(
            &format!("{V3}/roles"),
            &admin,
            json!({"role": {"name": "x", "options": {"bogus": true}}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.post(
            &format!("{V3}/roles"),
            &admin,
            json!({"role": {"name": ""}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        // Lists: global roles only, unless a domain is named; entries equal the created views.
        let r = s.get(&format!("{V3}/roles"), &admin).await;
        let listed = r.json["roles"].as_array().unwrap();
        assert!(listed.contains(&role), "{}", r.raw);
        assert!(!listed.contains(&drole));
        let r = s
            .get(&format!("{V3}/roles?domain_id=default"), &admin)
            .await;
        assert_eq!(r.json["roles"], json!([drole]));
        let r = s.get(&format!("{V3}/roles?name=auditor"), &admin).await;
        assert_eq!(ids(&r.json, "roles"), vec![rid.clone()]);

        // Show, update.
        assert_eq!(
            s.get(&format!("{V3}/roles/{rid}"), &admin).await.json["role"],
            role
        );
        let r = s
            .patch(
                &format!("{V3}/roles/{rid}"),
                &admin,
                json!({"role": {"name": "auditor2"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["role"]["name"], "auditor2");
        s.patch(
            &format!("{V3}/roles/{rid}"),
            &admin,
            json!({"role": {"domain_id": "default"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.patch(
            &format!("{V3}/roles/{rid}"),
            &admin,
            json!({"role": {"name": "admin"}}),
        )
        .await
        .assert_error(StatusCode::CONFLICT);

        // Immutable roles refuse changes until the option is unset.
        s.patch(
            &format!("{V3}/roles/{rid}"),
            &admin,
            json!({"role": {"options": {"immutable": true}}}),
        )
        .await;
        s.delete(&format!("{V3}/roles/{rid}"), &admin)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.patch(
            &format!("{V3}/roles/{rid}"),
            &admin,
            json!({"role": {"name": "z"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .patch(
                &format!("{V3}/roles/{rid}"),
                &admin,
                json!({"role": {"options": {"immutable": null}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["role"]["options"], json!({}));

        // A member may not read or write roles.
        let (_, mt) = member(&s, &admin, "rm").await;
        s.get(&format!("{V3}/roles"), &mt)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{V3}/roles/{rid}"), &mt)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(&format!("{V3}/roles"), &mt, json!({"role": {"name": "r"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);

        assert_eq!(
            s.delete(&format!("{V3}/roles/{rid}"), &admin).await.status,
            StatusCode::NO_CONTENT
        );
        let m = s
            .get(&format!("{V3}/roles/{rid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Could not find role: {rid}."));
    }
}

#[tokio::test]
async fn implied_roles_rules_and_listing() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let mut r_ids = Vec::new();
        for n in ["a", "b", "c"] {
            let r = s
                .post(&format!("{V3}/roles"), &admin, json!({"role": {"name": n}}))
                .await;
            r_ids.push(r.json["role"]["id"].as_str().unwrap().to_string());
        }
        let (a, b, c) = (&r_ids[0], &r_ids[1], &r_ids[2]);
        let path = format!("{V3}/roles/{a}/implies/{b}");
        let m = s
            .get(&path, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("{a} does not imply {b}."));
        assert_eq!(head(&s, &path, &admin).await, StatusCode::NOT_FOUND);

        let r = s.put(&path, &admin).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let inf = &r.json["role_inference"];
        assert_eq!(inf["prior_role"]["id"], a.as_str());
        assert_eq!(inf["prior_role"]["name"], "a");
        assert_eq!(inf["implies"]["id"], b.as_str());
        assert!(inf["implies"]["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/roles/{b}")));
        assert!(r.json["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/roles/{a}/implies/{b}")));
        let r2 = s.get(&path, &admin).await;
        assert_eq!(r2.status, StatusCode::OK);
        assert_eq!(r2.json, r.json);
        assert_eq!(head(&s, &path, &admin).await, StatusCode::NO_CONTENT);
        s.put(&format!("{V3}/roles/{a}/implies/{c}"), &admin).await;

        let r = s.get(&format!("{V3}/roles/{a}/implies"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let mut implied: Vec<&str> = r.json["role_inference"]["implies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        implied.sort();
        let mut want = vec![b.as_str(), c.as_str()];
        want.sort();
        assert_eq!(implied, want);
        assert!(r.json["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/roles/{a}/implies")));

        let r = s.get(&format!("{V3}/role_inferences"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let rules = r.json["role_inferences"].as_array().unwrap();
        let mine = rules
            .iter()
            .find(|x| x["prior_role"]["id"] == a.as_str())
            .expect("rule for a");
        assert_eq!(mine["implies"].as_array().unwrap().len(), 2);
        // The bootstrap rules are there too: admin ⇒ member ⇒ reader.
        assert!(rules
            .iter()
            .any(|x| x["prior_role"]["name"] == "admin" && x["implies"][0]["name"] == "member"));

        // Keystone's refusals: implying `admin`, and a global role implying a domain role.
        let admin_role = s.role_id("admin").await;
        s.put(&format!("{V3}/roles/{a}/implies/{admin_role}"), &admin)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .post(
                &format!("{V3}/roles"),
                &admin,
                json!({"role": {"name": "d1", "domain_id": "default"}}),
            )
            .await;
        let d1 = r.json["role"]["id"].as_str().unwrap().to_string();
        let m = s
            .put(&format!("{V3}/roles/{a}/implies/{d1}"), &admin)
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert!(
            m.contains("Global role cannot imply a domain-specific role"),
            "{m}"
        );
        // A domain role may imply a global one.
        assert_eq!(
            s.put(&format!("{V3}/roles/{d1}/implies/{a}"), &admin)
                .await
                .status,
            StatusCode::CREATED
        );
        s.put(&format!("{V3}/roles/{a}/implies/nope"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        let (_, mt) = member(&s, &admin, "im").await;
        s.put(&format!("{V3}/roles/{b}/implies/{c}"), &mt)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{V3}/role_inferences"), &mt)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        assert_eq!(s.delete(&path, &admin).await.status, StatusCode::NO_CONTENT);
        s.delete(&path, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&path, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Deleting a role removes its rules.
        s.delete(&format!("{V3}/roles/{c}"), &admin).await;
        let r = s.get(&format!("{V3}/roles/{a}/implies"), &admin).await;
        assert_eq!(r.json["role_inference"]["implies"], json!([]));
    }
}
