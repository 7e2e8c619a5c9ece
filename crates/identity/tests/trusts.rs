//! OS-TRUST end to end through the router: trust CRUD and policy, trust-scoped tokens with and
//! without impersonation, remaining uses, expiry, revocation when a trust, a role or a user
//! goes, redelegation, and that other tokens are untouched. Runs on SQLite and PostgreSQL.

mod common;

use common::{test_config, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const V3: &str = "/identity/v3";
const TRUSTS: &str = "/identity/v3/OS-TRUST/trusts";

/// A trustor holding `member` and `extra` on a project, a trustee, and a bystander.
struct Setup {
    admin: String,
    project: String,
    trustor: String,
    trustee: String,
    other: String,
    /// The trustor's token on the project.
    trustor_token: String,
    extra_role: String,
}

async fn setup(s: &Stack) -> Setup {
    let admin = s.admin().await;
    let project = s.create_project(&admin, "trusted").await;
    let trustor = s.create_user(&admin, "trustor", "trustor-pw").await;
    let trustee = s.create_user(&admin, "trustee", "trustee-pw").await;
    let other = s.create_user(&admin, "other", "other-pw").await;
    let r = s
        .post(
            &format!("{V3}/roles"),
            &admin,
            json!({"role": {"name": "extra"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let extra_role = r.json["role"]["id"].as_str().unwrap().to_string();
    s.grant(&trustor, &project, "member").await;
    s.grant(&trustor, &project, "extra").await;
    let trustor_token = s.login("trustor", "trustor-pw", "trusted").await;
    Setup {
        admin,
        project,
        trustor,
        trustee,
        other,
        trustor_token,
        extra_role,
    }
}

impl Setup {
    /// A trust body from the trustor to the trustee on the project, delegating `member`.
    fn body(&self, impersonation: bool) -> Value {
        json!({"trust": {
            "trustor_user_id": self.trustor,
            "trustee_user_id": self.trustee,
            "project_id": self.project,
            "impersonation": impersonation,
            "roles": [{"name": "member"}],
        }})
    }

    async fn create(&self, s: &Stack, body: Value) -> Value {
        let r = s.post(TRUSTS, &self.trustor_token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", s.label(), r.raw);
        r.json["trust"].clone()
    }
}

fn trust_scope(trust_id: &str) -> Value {
    json!({"OS-TRUST:trust": {"id": trust_id}})
}

fn role_names(token: &Value) -> Vec<String> {
    let mut names: Vec<String> = token["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// A trust token for the trustee by password.
async fn trust_token(s: &Stack, user: &str, pw: &str, trust_id: &str) -> common::Resp {
    s.password_token(user, "default", pw, Some(trust_scope(trust_id)))
        .await
}

#[tokio::test]
async fn create_show_list_roles_and_delete() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let x = setup(&s).await;
        let t = x.create(&s, x.body(true)).await;
        let tid = t["id"].as_str().unwrap().to_string();
        assert_eq!(t["trustor_user_id"], x.trustor.as_str(), "{l}");
        assert_eq!(t["trustee_user_id"], x.trustee.as_str());
        assert_eq!(t["project_id"], x.project.as_str());
        assert_eq!(t["impersonation"], true);
        assert_eq!(t["expires_at"], Value::Null);
        assert_eq!(t["remaining_uses"], Value::Null);
        assert_eq!(t["redelegation_count"], 0);
        assert_eq!(t["redelegated_trust_id"], Value::Null);
        assert!(t["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/OS-TRUST/trusts/{tid}")));
        assert!(t["roles_links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/OS-TRUST/trusts/{tid}/roles")));
        let roles = t["roles"].as_array().unwrap();
        assert_eq!(roles.len(), 1, "{l}: {t}");
        assert_eq!(roles[0]["name"], "member");
        let member = roles[0]["id"].as_str().unwrap().to_string();
        assert!(roles[0]["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/roles/{member}")));

        // Show: trustor, trustee and admin; not a bystander.
        let trustee_tok = s.login_unscoped("trustee", "trustee-pw").await;
        let other_tok = s.login_unscoped("other", "other-pw").await;
        for tok in [&x.trustor_token, &trustee_tok, &x.admin] {
            let r = s.get(&format!("{TRUSTS}/{tid}"), tok).await;
            assert_eq!(r.status, StatusCode::OK, "{l}: {}", r.raw);
            assert_eq!(r.json["trust"]["roles"][0]["name"], "member");
        }
        s.get(&format!("{TRUSTS}/{tid}"), &other_tok)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{TRUSTS}/nope"), &x.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // List: by trustor or trustee (that user or admin); everything for admins only.
        let by_trustor = format!("{TRUSTS}?trustor_user_id={}", x.trustor);
        let by_trustee = format!("{TRUSTS}?trustee_user_id={}", x.trustee);
        let r = s.get(&by_trustor, &x.trustor_token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let items = r.json["trusts"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], tid.as_str());
        assert!(items[0].get("roles").is_none(), "lists omit roles");
        let r = s.get(&by_trustee, &trustee_tok).await;
        assert_eq!(r.json["trusts"].as_array().unwrap().len(), 1, "{}", r.raw);
        s.get(&by_trustor, &other_tok)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&by_trustee, &x.trustor_token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(TRUSTS, &x.trustor_token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.get(&format!("{TRUSTS}/"), &x.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.json["trusts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == tid.as_str()));
        s.get(&format!("{TRUSTS}?bogus=1"), &x.admin)
            .await
            .assert_error(StatusCode::BAD_REQUEST);

        // Roles: list, show and check the delegated role; the other one is not found.
        let r = s.get(&format!("{TRUSTS}/{tid}/roles"), &trustee_tok).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["roles"].as_array().unwrap().len(), 1);
        assert_eq!(r.json["roles"][0]["id"], member.as_str());
        let r = s
            .get(&format!("{TRUSTS}/{tid}/roles/{member}"), &x.trustor_token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["role"]["name"], "member");
        let head = |path: String, tok: String| {
            let s = &s;
            async move { s.call(Method::HEAD, &path, Some(&tok), &[], None).await }
        };
        let r = head(
            format!("{TRUSTS}/{tid}/roles/{member}"),
            x.trustor_token.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = head(
            format!("{TRUSTS}/{tid}/roles/{}", x.extra_role),
            x.trustor_token.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        s.get(
            &format!("{TRUSTS}/{tid}/roles/{}", x.extra_role),
            &x.trustor_token,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("{TRUSTS}/{tid}/roles"), &other_tok)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Delete: not the trustee; the trustor; then it is gone.
        s.delete(&format!("{TRUSTS}/{tid}"), &trustee_tok)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.delete(&format!("{TRUSTS}/{tid}"), &x.trustor_token).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&format!("{TRUSTS}/{tid}"), &x.trustor_token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("{TRUSTS}/{tid}"), &x.trustor_token)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // An admin may delete anyone's trust.
        let t = x.create(&s, x.body(false)).await;
        let r = s
            .delete(&format!("{TRUSTS}/{}", t["id"].as_str().unwrap()), &x.admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    }
}

#[tokio::test]
async fn create_refusals() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let x = setup(&s).await;
        let with = |f: &dyn Fn(&mut Value)| {
            let mut b = x.body(true);
            f(&mut b["trust"]);
            b
        };
        let cases: Vec<(Value, StatusCode)> = vec![
            // Only the trustor may create its trusts.
            (
                with(&|t| t["trustor_user_id"] = json!(x.other)),
                StatusCode::FORBIDDEN,
            ),
            // Roles the trustor does not hold there, or that do not exist.
            (
                with(&|t| t["roles"] = json!([{"name": "admin"}])),
                StatusCode::NOT_FOUND,
            ),
            (
                with(&|t| t["roles"] = json!([{"name": "no-such-role"}])),
                StatusCode::NOT_FOUND,
            ),
            (
                with(&|t| t["roles"] = json!([{"id": "no-such-role"}])),
                StatusCode::NOT_FOUND,
            ),
            (with(&|t| t["roles"] = json!([])), StatusCode::FORBIDDEN),
            (
                with(&|t| t["trustee_user_id"] = json!("nobody")),
                StatusCode::NOT_FOUND,
            ),
            (
                with(&|t| t["project_id"] = json!("nowhere")),
                StatusCode::NOT_FOUND,
            ),
            // Schema and value errors.
            (
                with(&|t| t["expires_at"] = json!("bad.123Z")),
                StatusCode::BAD_REQUEST,
            ),
            (
                with(&|t| t["expires_at"] = json!("2001-01-01T00:00:00Z")),
                StatusCode::BAD_REQUEST,
            ),
            (
                with(&|t| {
                    t.as_object_mut().unwrap().remove("impersonation");
                }),
                StatusCode::BAD_REQUEST,
            ),
            (
                with(&|t| t["impersonation"] = json!("yes")),
                StatusCode::BAD_REQUEST,
            ),
            (
                with(&|t| t["remaining_uses"] = json!(0)),
                StatusCode::BAD_REQUEST,
            ),
            (
                with(&|t| t["roles"] = json!([{"id": "a", "name": "b"}])),
                StatusCode::BAD_REQUEST,
            ),
            (
                with(&|t| {
                    t["allow_redelegation"] = json!(true);
                    t["redelegation_count"] = json!(4);
                }),
                StatusCode::FORBIDDEN,
            ),
            (
                with(&|t| {
                    t["allow_redelegation"] = json!(true);
                    t["remaining_uses"] = json!(2);
                }),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"trust": {}, "extra": 1}), StatusCode::BAD_REQUEST),
        ];
        for (body, want) in cases {
            let r = s.post(TRUSTS, &x.trustor_token, body.clone()).await;
            assert_eq!(r.status, want, "{l}: {body} -> {}", r.raw);
            r.assert_error(want);
        }
        // A trust needs a token: no token is 401.
        let r = s
            .call(Method::POST, TRUSTS, None, &[], Some(x.body(true)))
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED);
        // Roles by id, an expiry with and without a zone, the same trust twice is a conflict.
        let member = s.role_id("member").await;
        let t = x
            .create(
                &s,
                with(&|t| {
                    t["roles"] = json!([{"id": member}]);
                    t["expires_at"] = json!("2999-01-02T03:04:05Z");
                }),
            )
            .await;
        assert_eq!(t["expires_at"], "2999-01-02T03:04:05.000000Z");
        let again = with(&|t| {
            t["roles"] = json!([{"id": member}]);
            t["expires_at"] = json!("2999-01-02T03:04:05");
        });
        s.post(TRUSTS, &x.trustor_token, again)
            .await
            .assert_error(StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn trust_tokens_with_and_without_impersonation() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let x = setup(&s).await;
        for impersonation in [true, false] {
            let t = x.create(&s, x.body(impersonation)).await;
            let tid = t["id"].as_str().unwrap();
            let r = trust_token(&s, "trustee", "trustee-pw", tid).await;
            assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
            let tok = r.token();
            let body = &r.json["token"];
            let trust = &body["OS-TRUST:trust"];
            assert_eq!(trust["id"], tid);
            assert_eq!(trust["impersonation"], impersonation);
            assert_eq!(trust["trustor_user"]["id"], x.trustor.as_str());
            assert_eq!(trust["trustee_user"]["id"], x.trustee.as_str());
            let want_user = if impersonation {
                &x.trustor
            } else {
                &x.trustee
            };
            assert_eq!(body["user"]["id"], want_user.as_str(), "{l}");
            assert_eq!(body["project"]["id"], x.project.as_str());
            // The delegated role with the roles it implies; not the other role.
            assert_eq!(role_names(body), vec!["member", "reader"], "{l}");
            assert!(body["catalog"].is_array());

            // Validation shows the same, and the token works as the user it shows.
            let v = s.validate(&x.admin, &tok).await;
            assert_eq!(v.status, StatusCode::OK, "{}", v.raw);
            assert_eq!(v.json["token"]["OS-TRUST:trust"], *trust);
            assert_eq!(v.json["token"]["user"]["id"], want_user.as_str());
            let r = s.get(&format!("{TRUSTS}/{tid}"), &tok).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);

            // The token method: from the trustee's own token.
            let own = s.login_unscoped("trustee", "trustee-pw").await;
            let r = s
                .call(
                    Method::POST,
                    &format!("{V3}/auth/tokens"),
                    None,
                    &[],
                    Some(
                        json!({"auth": {"identity": {"methods": ["token"], "token": {"id": own}},
                        "scope": trust_scope(tid)}}),
                    ),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
            assert_eq!(r.json["token"]["methods"], json!(["token", "password"]));

            // A trust-scoped token cannot be rescoped, nor used to get another trust token.
            for scope in [json!({"project": {"id": x.project}}), trust_scope(tid)] {
                let r = s
                    .call(
                        Method::POST,
                        &format!("{V3}/auth/tokens"),
                        None,
                        &[],
                        Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": tok}},
                            "scope": scope}})),
                    )
                    .await;
                r.assert_error(StatusCode::FORBIDDEN);
            }
            // Nor manage application credentials.
            let r = s
                .post(
                    &format!("{V3}/users/{want_user}/application_credentials"),
                    &tok,
                    json!({"application_credential": {"name": "from-trust"}}),
                )
                .await;
            r.assert_error(StatusCode::FORBIDDEN);
        }

        // Only the trustee may use a trust.
        let t = x.create(&s, x.body(true)).await;
        let tid = t["id"].as_str().unwrap();
        trust_token(&s, "other", "other-pw", tid)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        trust_token(&s, "trustor", "trustor-pw", tid)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        trust_token(&s, "trustee", "trustee-pw", "no-such-trust")
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        // Malformed trust scopes.
        for scope in [
            json!({"OS-TRUST:trust": ""}),
            json!({"OS-TRUST:trust": {}}),
            json!({"OS-TRUST:trust": {"id": tid}, "project": {"id": x.project}}),
        ] {
            s.password_token("trustee", "default", "trustee-pw", Some(scope))
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
    }
}

#[tokio::test]
async fn remaining_uses_run_out() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let x = setup(&s).await;
        let mut body = x.body(false);
        body["trust"]["remaining_uses"] = json!(2);
        let t = x.create(&s, body).await;
        assert_eq!(t["remaining_uses"], 2);
        let tid = t["id"].as_str().unwrap();

        let first = trust_token(&s, "trustee", "trustee-pw", tid).await;
        assert_eq!(first.status, StatusCode::CREATED, "{l}: {}", first.raw);
        let r = s.get(&format!("{TRUSTS}/{tid}"), &x.trustor_token).await;
        assert_eq!(r.json["trust"]["remaining_uses"], 1, "{}", r.raw);
        // A refused request costs no use.
        trust_token(&s, "trustee", "wrong-pw", tid)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        let second = trust_token(&s, "trustee", "trustee-pw", tid).await;
        assert_eq!(second.status, StatusCode::CREATED, "{}", second.raw);

        // Used up: no more tokens, and the trust is not found; issued tokens still work.
        trust_token(&s, "trustee", "trustee-pw", tid)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        s.get(&format!("{TRUSTS}/{tid}"), &x.trustor_token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        for tok in [first.token(), second.token()] {
            assert_eq!(s.validate(&x.admin, &tok).await.status, StatusCode::OK);
        }
        // Still listed and deletable, as Keystone lists it.
        let r = s
            .get(
                &format!("{TRUSTS}?trustor_user_id={}", x.trustor),
                &x.trustor_token,
            )
            .await;
        assert_eq!(r.json["trusts"][0]["remaining_uses"], 0, "{}", r.raw);
        let r = s.delete(&format!("{TRUSTS}/{tid}"), &x.trustor_token).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.validate(&x.admin, &first.token()).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn expiry_bounds_tokens_and_ends_the_trust() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let x = setup(&s).await;
        let mut body = x.body(true);
        body["trust"]["expires_at"] = json!("2999-12-31T00:00:00.000000Z");
        let t = x.create(&s, body).await;
        let tid = t["id"].as_str().unwrap().to_string();
        let r = trust_token(&s, "trustee", "trustee-pw", &tid).await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let tok = r.token();

        // A trust ending before the token would: the token ends with it.
        let soon = strata_core::time::now_micros() + 600 * 1_000_000;
        set_expiry(&s, &tid, soon).await;
        let r = trust_token(&s, "trustee", "trustee-pw", &tid).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(
            r.json["token"]["expires_at"],
            strata_core::time::iso_micros_z(soon)
        );

        // Expired (set in the store: tests do not wait): refused, not found, tokens invalid.
        set_expiry(&s, &tid, strata_core::time::now_micros() - 1).await;
        trust_token(&s, "trustee", "trustee-pw", &tid)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        s.get(&format!("{TRUSTS}/{tid}"), &x.trustor_token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            s.validate(&x.admin, &tok).await.status,
            StatusCode::NOT_FOUND,
            "{l}"
        );
    }
}

async fn set_expiry(s: &Stack, trust_id: &str, at: i64) {
    strata_store::sqlx::query("UPDATE identity_trust SET expires_at = $1 WHERE id = $2")
        .bind(at)
        .bind(trust_id)
        .execute(s.db.store.pool())
        .await
        .unwrap();
    s.identity.changed().await.unwrap();
}

#[tokio::test]
async fn deleting_trusts_roles_users_and_projects_invalidates_trust_tokens() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let mut x = setup(&s).await;

        // Deleting the trust revokes its tokens at once, with a revocation event.
        let t = x.create(&s, x.body(true)).await;
        let tid = t["id"].as_str().unwrap().to_string();
        let tok = trust_token(&s, "trustee", "trustee-pw", &tid).await.token();
        assert_eq!(s.validate(&x.admin, &tok).await.status, StatusCode::OK);
        let r = s.delete(&format!("{TRUSTS}/{tid}"), &x.trustor_token).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.validate(&x.admin, &tok).await.status,
            StatusCode::NOT_FOUND,
            "{l}"
        );
        let n: i64 = strata_store::sqlx::query(
            "SELECT COUNT(*) AS n FROM identity_revocation WHERE trust_id = $1",
        )
        .bind(&tid)
        .fetch_one(s.db.store.pool())
        .await
        .map(|r| strata_store::Row::get(&r, "n"))
        .unwrap();
        assert_eq!(n, 1, "{l}");

        // The trustor losing a delegated role invalidates the trust's tokens.
        let t = x.create(&s, x.body(false)).await;
        let tid = t["id"].as_str().unwrap().to_string();
        let tok = trust_token(&s, "trustee", "trustee-pw", &tid).await.token();
        let member = s.role_id("member").await;
        let r = s
            .delete(
                &format!(
                    "{V3}/projects/{}/users/{}/roles/{member}",
                    x.project, x.trustor
                ),
                &x.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        assert_eq!(
            s.validate(&x.admin, &tok).await.status,
            StatusCode::NOT_FOUND
        );
        trust_token(&s, "trustee", "trustee-pw", &tid)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        // Given back, the trust works again (nothing was deleted). The trustor's own token was
        // revoked with the assignment: log in again.
        s.grant(&x.trustor, &x.project, "member").await;
        x.trustor_token = s.login("trustor", "trustor-pw", "trusted").await;
        let r = trust_token(&s, "trustee", "trustee-pw", &tid).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);

        // Deleting the trustee removes the trusts it is party to.
        let r = s
            .delete(&format!("{V3}/users/{}", x.trustee), &x.admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s
            .get(&format!("{TRUSTS}?trustor_user_id={}", x.trustor), &x.admin)
            .await;
        assert_eq!(r.json["trusts"], json!([]), "{l}: {}", r.raw);

        // Deleting the project removes the trusts on it.
        let other_tok = s.login_unscoped("other", "other-pw").await;
        let mut body = x.body(false);
        body["trust"]["trustee_user_id"] = json!(x.other);
        let t = x.create(&s, body).await;
        let tid = t["id"].as_str().unwrap().to_string();
        let r = s.get(&format!("{TRUSTS}/{tid}"), &other_tok).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = s
            .patch(
                &format!("{V3}/projects/{}", x.project),
                &x.admin,
                json!({"project": {"enabled": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = s
            .delete(&format!("{V3}/projects/{}", x.project), &x.admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&format!("{TRUSTS}/{tid}"), &x.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn redelegation_chains_and_cascading_deletes() {
    for s in Stack::all(test_config()).await {
        let l = s.label();
        let x = setup(&s).await;
        let mut body = x.body(true);
        body["trust"]["allow_redelegation"] = json!(true);
        let parent = x.create(&s, body).await;
        assert_eq!(parent["redelegation_count"], 3, "{l}");
        let pid = parent["id"].as_str().unwrap().to_string();
        let ptok = trust_token(&s, "trustee", "trustee-pw", &pid).await.token();

        // The trustee, impersonating the trustor, passes the trust on to a third user.
        let child_body = json!({"trust": {
            "trustor_user_id": x.trustor,
            "trustee_user_id": x.other,
            "project_id": x.project,
            "impersonation": true,
            "allow_redelegation": true,
            "roles": [{"name": "member"}],
        }});
        let r = s.post(TRUSTS, &ptok, child_body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let child = &r.json["trust"];
        assert_eq!(child["redelegated_trust_id"], pid.as_str());
        assert_eq!(child["redelegation_count"], 2);
        let cid = child["id"].as_str().unwrap().to_string();
        let r = trust_token(&s, "other", "other-pw", &cid).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(role_names(&r.json["token"]), vec!["member", "reader"]);
        let ctok = r.token();

        // More roles than the parent delegates, or a changed depth: refused.
        let mut more = child_body.clone();
        more["trust"]["roles"] = json!([{"name": "member"}, {"name": "extra"}]);
        s.post(TRUSTS, &ptok, more)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let mut depth = child_body.clone();
        depth["trust"]["redelegation_count"] = json!(1);
        s.post(TRUSTS, &ptok, depth)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Deleting the parent deletes the child and revokes both trusts' tokens.
        let r = s.delete(&format!("{TRUSTS}/{pid}"), &x.trustor_token).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.get(&format!("{TRUSTS}/{cid}"), &x.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        for tok in [&ptok, &ctok] {
            assert_eq!(
                s.validate(&x.admin, tok).await.status,
                StatusCode::NOT_FOUND
            );
        }

        // A trust that does not allow redelegation cannot be passed on.
        let t = x.create(&s, x.body(true)).await;
        let tok = trust_token(&s, "trustee", "trustee-pw", t["id"].as_str().unwrap())
            .await
            .token();
        s.post(TRUSTS, &tok, child_body)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn other_tokens_carry_no_trust() {
    for s in Stack::all(test_config()).await {
        let x = setup(&s).await;
        let payload = strata_identity::token::peek(&x.trustor_token).unwrap();
        assert_eq!(payload.t, None);
        let (body, _) = x.trustor_token.split_once('.').unwrap();
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap();
        let raw: Value = serde_json::from_slice(&raw).unwrap();
        assert!(raw.get("t").is_none(), "{raw}");
        let v = s.validate(&x.admin, &x.trustor_token).await;
        assert!(v.json["token"].get("OS-TRUST:trust").is_none());
    }
}

#[tokio::test]
async fn deleting_a_domain_deletes_trusts_naming_its_users() {
    for s in Stack::all(test_config()).await {
        let st = setup(&s).await;
        let r = s
            .post(
                &format!("{V3}/domains"),
                &st.admin,
                json!({"domain": {"name": "doomed"}}),
            )
            .await;
        let dom = r.json["domain"]["id"].as_str().unwrap().to_string();
        let r = s
            .post(
                &format!("{V3}/users"),
                &st.admin,
                json!({"user": {"name": "far-trustee", "domain_id": dom, "password": "pw-far"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let far = r.json["user"]["id"].as_str().unwrap().to_string();
        let mut body = st.body(false);
        body["trust"]["trustee_user_id"] = json!(far);
        let trust = st.create(&s, body).await;
        let tid = trust["id"].as_str().unwrap();
        let path = format!("{TRUSTS}/{tid}");
        assert_eq!(s.get(&path, &st.admin).await.status, StatusCode::OK);
        s.patch(
            &format!("{V3}/domains/{dom}"),
            &st.admin,
            json!({"domain": {"enabled": false}}),
        )
        .await;
        let r = s.delete(&format!("{V3}/domains/{dom}"), &st.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&path, &st.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}
