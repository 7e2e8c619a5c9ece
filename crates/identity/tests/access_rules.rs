//! Application-credential access rules end to end through the router: rules created with
//! credentials (validated, shared per user, linked), `/v3/users/{id}/access_rules` (list with
//! filters, show, delete refused while in use), policy, cleanup with the user, and enforcement:
//! tokens made from a credential with rules carry them, the identity service refuses (401)
//! calls they do not allow, and token validation needs the access-rules header. Runs on SQLite
//! and PostgreSQL.

mod common;

use common::{test_config, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const V3: &str = "/identity/v3";
const PW: &str = "rules-pw-1";

/// A user who is a member of a fresh project, with a token there.
struct Member {
    id: String,
    project: String,
    token: String,
}

async fn member(s: &Stack, admin: &str, name: &str) -> Member {
    let id = s.create_user(admin, name, PW).await;
    let project = s.create_project(admin, &format!("{name}-project")).await;
    s.grant(&id, &project, "member").await;
    let token = s.login(name, PW, &format!("{name}-project")).await;
    Member { id, project, token }
}

/// Creates an application credential for `m`; returns the response.
async fn create_cred(s: &Stack, m: &Member, body: Value) -> common::Resp {
    s.post(
        &format!("{V3}/users/{}/application_credentials", m.id),
        &m.token,
        json!({"application_credential": body}),
    )
    .await
}

/// Creates an application credential that must succeed; returns its view (with the secret).
async fn cred(s: &Stack, m: &Member, body: Value) -> Value {
    let r = create_cred(s, m, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.json["application_credential"].clone()
}

/// A token from an application credential view holding its secret.
async fn cred_token(s: &Stack, c: &Value) -> common::Resp {
    s.call(
        Method::POST,
        &format!("{V3}/auth/tokens"),
        None,
        &[],
        Some(
            json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": c["id"], "secret": c["secret"]}}}}),
        ),
    )
    .await
}

/// The rule views without their ids.
fn without_ids(rules: &Value) -> Vec<Value> {
    rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("id");
            r
        })
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn count(s: &Stack, sql: &str, bind: &str) -> i64 {
    use strata_store::Row;
    strata_store::sqlx::query(sql)
        .bind(bind)
        .fetch_one(s.db.store.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

#[tokio::test]
async fn rules_are_created_shared_listed_and_deleted() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let bob = member(&s, &admin, "bob").await;
        let rules_url = format!("{V3}/users/{}/access_rules", alice.id);

        // Created with a credential: shown with ids, exactly as given otherwise.
        let ips = json!({"service": "compute", "method": "GET", "path": "/v2.1/servers/*/ips"});
        let me = json!({"service": "identity", "method": "GET", "path": "/v3/users/{user_id}"});
        let c1 = cred(&s, &alice, json!({"name": "c1", "access_rules": [ips, me]})).await;
        assert_eq!(
            without_ids(&c1["access_rules"]),
            vec![ips.clone(), me.clone()],
            "{l}"
        );
        for r in c1["access_rules"].as_array().unwrap() {
            assert_eq!(r.as_object().unwrap().len(), 4, "{r}");
            assert_eq!(r["id"].as_str().unwrap().len(), 32);
        }
        let ips_id = c1["access_rules"][0]["id"].as_str().unwrap().to_string();
        let me_id = c1["access_rules"][1]["id"].as_str().unwrap().to_string();
        let shown = s
            .get(
                &format!(
                    "{V3}/users/{}/application_credentials/{}",
                    alice.id,
                    c1["id"].as_str().unwrap()
                ),
                &alice.token,
            )
            .await;
        assert_eq!(
            shown.json["application_credential"]["access_rules"],
            c1["access_rules"]
        );

        // The same rule again is the same rule; a new one is new; one named by id is linked;
        // a rule repeated in one request is linked once.
        let post = json!({"service": "compute", "method": "POST", "path": "/v2.1/servers"});
        let c2 = cred(
            &s,
            &alice,
            json!({"name": "c2", "access_rules": [ips, post, ips]}),
        )
        .await;
        let c2_rules = c2["access_rules"].as_array().unwrap();
        assert_eq!(c2_rules.len(), 2, "{l}: {c2}");
        assert_eq!(c2_rules[0]["id"], ips_id.as_str());
        assert_ne!(c2_rules[1]["id"], ips_id.as_str());
        let post_id = c2_rules[1]["id"].as_str().unwrap().to_string();
        let c3 = cred(
            &s,
            &alice,
            json!({"name": "c3", "access_rules": [{"id": me_id}]}),
        )
        .await;
        assert_eq!(
            c3["access_rules"],
            json!([{"id": me_id, "service": "identity", "method": "GET", "path": "/v3/users/{user_id}"}])
        );
        // A client-chosen id for a new rule is kept (Keystone accepts one).
        let c4 = cred(
            &s,
            &alice,
            json!({"name": "c4", "access_rules": [
            {"id": "my-rule-1", "service": "image", "method": "DELETE", "path": "/v2/images/**"}]}),
        )
        .await;
        assert_eq!(c4["access_rules"][0]["id"], "my-rule-1");
        // Other users' rules are theirs: the same content makes bob a rule of his own.
        let b1 = cred(&s, &bob, json!({"name": "b1", "access_rules": [ips]})).await;
        let bob_rule = b1["access_rules"][0]["id"].as_str().unwrap().to_string();
        assert_ne!(bob_rule, ips_id);

        // List, with Keystone's filters.
        let r = s.get(&rules_url, &alice.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let mut want = vec![
            ips_id.clone(),
            me_id.clone(),
            post_id.clone(),
            "my-rule-1".to_string(),
        ];
        want.sort();
        assert_eq!(ids(&r.json["access_rules"]), want, "{l}");
        assert_eq!(r.json["links"]["self"], format!("http://test{rules_url}"));
        assert_eq!(r.json["links"]["next"], Value::Null);
        let filtered = |q: &'static str| {
            let url = format!("{rules_url}?{q}");
            let s = &s;
            let token = alice.token.clone();
            async move {
                let r = s.get(&url, &token).await;
                assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.raw);
                ids(&r.json["access_rules"])
            }
        };
        assert_eq!(filtered("service=identity").await, vec![me_id.clone()]);
        assert_eq!(filtered("method=POST").await, vec![post_id.clone()]);
        assert_eq!(filtered("path=/v2.1/servers").await, vec![post_id.clone()]);
        assert_eq!(
            filtered("service=compute&method=GET").await,
            vec![ips_id.clone()]
        );
        assert_eq!(filtered("path__startswith=/v2.1").await.len(), 2);
        assert!(filtered("service=network").await.is_empty());

        // Show.
        let r = s.get(&format!("{rules_url}/{ips_id}"), &alice.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["access_rule"],
            json!({"id": ips_id, "service": "compute", "method": "GET", "path": "/v2.1/servers/*/ips",
                "links": {"self": format!("http://test{rules_url}/{ips_id}")}})
        );
        s.get(&format!("{rules_url}/nope"), &alice.token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Alice's rule is not found under bob's path, even by the admin.
        let m = s
            .get(
                &format!("{V3}/users/{}/access_rules/{ips_id}", bob.id),
                &admin,
            )
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Could not find access rule: {ips_id}."));

        // Policy: others may not read or delete; the admin may; a system reader may read only.
        s.get(&rules_url, &bob.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{rules_url}/{ips_id}"), &bob.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{rules_url}/{ips_id}"), &bob.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(s.get(&rules_url, &admin).await.status, StatusCode::OK);
        let auditor = s.create_user(&admin, "auditor", PW).await;
        s.grant_system(&auditor, "reader").await;
        let sys = s.system_login("auditor", PW).await;
        assert_eq!(
            ids(&s.get(&rules_url, &sys).await.json["access_rules"]),
            want
        );
        assert_eq!(
            s.get(&format!("{rules_url}/{ips_id}"), &sys).await.status,
            StatusCode::OK
        );
        s.delete(&format!("{rules_url}/{post_id}"), &sys)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&rules_url, "not-a-token")
            .await
            .assert_error(StatusCode::UNAUTHORIZED);

        // Refused rules.
        for (body, status) in [
            (
                json!([{"service": "compute", "method": "FETCH", "path": "/x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"service": "compute", "method": "get", "path": "/x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"service": "compute", "method": "GET", "path": "x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"service": "compute", "method": "GET", "path": format!("/{}", "a".repeat(225))}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"service": "com pute", "method": "GET", "path": "/x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"service": "", "method": "GET", "path": "/x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"service": "compute", "method": "GET"}]),
                StatusCode::BAD_REQUEST,
            ),
            (json!([{}]), StatusCode::BAD_REQUEST),
            (
                json!([{"service": "compute", "method": "GET", "path": "/x", "extra": 1}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"service": "compute", "method": 1, "path": "/x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"service": "compute"}), StatusCode::BAD_REQUEST),
            (json!([{"id": "has space"}]), StatusCode::BAD_REQUEST),
            (json!([{"id": "no-such-rule"}]), StatusCode::NOT_FOUND),
            (json!([{"id": bob_rule}]), StatusCode::NOT_FOUND),
            (
                json!([{"id": bob_rule, "service": "compute", "method": "GET", "path": "/y"}]),
                StatusCode::NOT_FOUND,
            ),
        ] {
            let r = create_cred(&s, &alice, json!({"name": "refused", "access_rules": body})).await;
            r.assert_error(status);
        }
        // Nothing of the refused requests stayed behind.
        assert!(s
            .get(
                &format!(
                    "{V3}/users/{}/application_credentials?name=refused",
                    alice.id
                ),
                &alice.token
            )
            .await
            .json["application_credentials"]
            .as_array()
            .unwrap()
            .is_empty());
        assert_eq!(
            ids(&s.get(&rules_url, &alice.token).await.json["access_rules"]),
            want
        );
        // No rules at all is fine, and shows as none.
        let c5 = cred(&s, &alice, json!({"name": "c5", "access_rules": []})).await;
        assert_eq!(c5["access_rules"], json!([]));

        // A rule in use may not be deleted (403, as Keystone); it outlives its credentials.
        let rule_url = format!("{rules_url}/{ips_id}");
        let m = s
            .delete(&rule_url, &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert_eq!(m, "May not delete access rule in use");
        let cred_url = |c: &Value| {
            format!(
                "{V3}/users/{}/application_credentials/{}",
                alice.id,
                c["id"].as_str().unwrap()
            )
        };
        assert_eq!(
            s.delete(&cred_url(&c1), &alice.token).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            ids(&s.get(&rules_url, &alice.token).await.json["access_rules"]),
            want
        );
        // Still used by c2.
        s.delete(&rule_url, &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            s.delete(&cred_url(&c2), &alice.token).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            s.delete(&rule_url, &alice.token).await.status,
            StatusCode::NO_CONTENT,
            "{l}"
        );
        s.get(&rule_url, &alice.token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&rule_url, &alice.token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // The admin deletes unused rules of anyone's.
        assert_eq!(
            s.delete(&format!("{rules_url}/{post_id}"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            ids(&s.get(&rules_url, &alice.token).await.json["access_rules"]),
            {
                let mut v = vec![me_id.clone(), "my-rule-1".to_string()];
                v.sort();
                v
            }
        );
        // A deleted rule named by id is gone; its content makes a new one.
        create_cred(
            &s,
            &alice,
            json!({"name": "c6", "access_rules": [{"id": post_id}]}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let c6 = cred(&s, &alice, json!({"name": "c6", "access_rules": [post]})).await;
        assert_ne!(c6["access_rules"][0]["id"], post_id.as_str());

        // Each rule created and deleted is in the change log.
        let changes = s.db.store.changes_since(0, 100_000).await.unwrap();
        assert!(changes
            .iter()
            .any(|c| c.kind == "identity.access_rule" && c.id == ips_id));
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.kind == "identity.access_rule" && c.id == ips_id)
                .count(),
            2,
            "created and deleted"
        );

        // Deleting the user deletes their rules and the credentials' links; bob's stay.
        assert_eq!(
            s.delete(&format!("{V3}/users/{}", alice.id), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let n = count(
            &s,
            "SELECT COUNT(*) FROM identity_access_rule WHERE user_id = $1",
            &alice.id,
        )
        .await;
        assert_eq!(n, 0, "{l}");
        let n = count(
            &s,
            "SELECT COUNT(*) FROM identity_app_cred_access_rule WHERE access_rule_id = $1",
            &me_id,
        )
        .await;
        assert_eq!(n, 0, "{l}");
        assert_eq!(
            ids(&s
                .get(&format!("{V3}/users/{}/access_rules", bob.id), &bob.token)
                .await
                .json["access_rules"]),
            vec![bob_rule.clone()]
        );
        // Deleting a project drops its credentials' links (the rules stay, now unused).
        assert_eq!(
            s.delete(&format!("{V3}/projects/{}", bob.project), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let n = count(
            &s,
            "SELECT COUNT(*) FROM identity_app_cred_access_rule WHERE access_rule_id = $1",
            &bob_rule,
        )
        .await;
        assert_eq!(n, 0, "{l}");
        assert_eq!(
            s.delete(
                &format!("{V3}/users/{}/access_rules/{bob_rule}", bob.id),
                &admin
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
    }
}

#[tokio::test]
async fn tokens_carry_rules_and_identity_enforces_them() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let me = format!("{V3}/users/{}", alice.id);
        let c = cred(
            &s,
            &alice,
            json!({"name": "narrow", "access_rules": [
                {"service": "identity", "method": "GET", "path": "/v3/users/{user_id}"},
                {"service": "identity", "method": "GET", "path": "/v3/projects/*"},
                {"service": "compute", "method": "GET", "path": "/v2.1/servers/*/ips"},
            ]}),
        )
        .await;
        let r = cred_token(&s, &c).await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        // The token shows the rules, as Keystone does.
        assert_eq!(
            r.json["token"]["application_credential"]["access_rules"],
            c["access_rules"]
        );
        assert_eq!(
            r.json["token"]["application_credential"]["restricted"],
            true
        );
        let narrow = r.token();

        // Allowed calls pass (then policy decides); anything else is 401 as an invalid token.
        let r = s.get(&me, &narrow).await;
        assert_eq!(r.status, StatusCode::OK, "{l}: {}", r.raw);
        let r = s.get(&format!("{me}?fields=name"), &narrow).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "the query string is not part of the path"
        );
        let r = s
            .get(&format!("{V3}/projects/{}", alice.project), &narrow)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        for (method, path) in [
            (Method::GET, format!("{V3}/users")),
            (Method::GET, format!("{me}/groups")),
            (Method::GET, format!("{V3}/projects")),
            (
                Method::GET,
                format!("{V3}/projects/{}/users/{}/roles", alice.project, alice.id),
            ),
            (Method::PATCH, me.clone()),
            (Method::DELETE, me.clone()),
            (Method::HEAD, me.clone()),
            (Method::GET, format!("{V3}/auth/projects")),
            (Method::HEAD, format!("{V3}/auth/tokens")),
            (Method::GET, format!("{me}/access_rules")),
        ] {
            let r = s
                .call(
                    method.clone(),
                    &path,
                    Some(&narrow),
                    &[("x-subject-token", &narrow)],
                    None,
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{l}: {method} {path}: {}",
                r.raw
            );
            if method != Method::HEAD {
                r.assert_error(StatusCode::UNAUTHORIZED);
            }
            assert!(r.headers.contains_key("www-authenticate"));
        }

        // Validating tokens is always allowed, but a token with rules validates only for a
        // caller declaring it enforces them.
        let validate = |caller: String, subject: String, header: Option<&'static str>| {
            let s = &s;
            async move {
                let mut h = vec![("x-subject-token", subject.as_str())];
                if let Some(v) = header {
                    h.push(("openstack-identity-access-rules", v));
                }
                s.call(
                    Method::GET,
                    &format!("{V3}/auth/tokens"),
                    Some(&caller),
                    &h,
                    None,
                )
                .await
            }
        };
        let r = validate(narrow.clone(), narrow.clone(), Some("1.0")).await;
        assert_eq!(r.status, StatusCode::OK, "{l}: {}", r.raw);
        assert_eq!(
            r.json["token"]["application_credential"]["access_rules"],
            c["access_rules"]
        );
        validate(narrow.clone(), narrow.clone(), None)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        validate(admin.clone(), narrow.clone(), None)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        validate(admin.clone(), narrow.clone(), Some("0.9"))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        validate(admin.clone(), narrow.clone(), Some("one"))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            validate(admin.clone(), narrow.clone(), Some("1"))
                .await
                .status,
            StatusCode::OK
        );
        // Tokens without rules need no header.
        assert_eq!(
            validate(admin.clone(), admin.clone(), None).await.status,
            StatusCode::OK
        );

        // The hook other services call: the rules come with the request context.
        let ctx = s.identity.authenticate(&narrow).await.unwrap();
        assert_eq!(ctx.access_rules.len(), 3);
        assert!(strata_api::access_rules_allow(
            &ctx.access_rules,
            "compute",
            "GET",
            "/v2.1/servers/s1/ips"
        ));
        assert!(!strata_api::access_rules_allow(
            &ctx.access_rules,
            "compute",
            "GET",
            "/v2.1/servers"
        ));
        assert!(!strata_api::access_rules_allow(
            &ctx.access_rules,
            "image",
            "GET",
            "/v2.1/servers/s1/ips"
        ));
        let own = s.identity.authenticate(&alice.token).await.unwrap();
        assert!(own.access_rules.is_empty());

        // `**` reaches any depth below its prefix.
        let deep = cred(
            &s,
            &alice,
            json!({"name": "deep", "access_rules": [
                {"service": "identity", "method": "GET", "path": "/v3/users/**"}]}),
        )
        .await;
        let deep = cred_token(&s, &deep).await.token();
        assert_eq!(
            s.get(&format!("{me}/projects"), &deep).await.status,
            StatusCode::OK
        );
        assert_eq!(s.get(&me, &deep).await.status, StatusCode::OK);
        s.get(&format!("{V3}/users"), &deep)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        // A rule for another service allows nothing here.
        let other = cred(
            &s,
            &alice,
            json!({"name": "other", "access_rules": [
                {"service": "compute", "method": "GET", "path": "/v3/users/**"}]}),
        )
        .await;
        let other = cred_token(&s, &other).await.token();
        s.get(&me, &other)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);

        // A credential without rules is not restricted by rules: policy answers instead.
        let free = cred(&s, &alice, json!({"name": "free"})).await;
        let r = cred_token(&s, &free).await;
        assert!(r.json["token"]["application_credential"]
            .get("access_rules")
            .is_none());
        let free = r.token();
        assert_eq!(s.get(&me, &free).await.status, StatusCode::OK);
        s.get(&format!("{V3}/users"), &free)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}
