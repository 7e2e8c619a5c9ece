//! Credentials (`/v3/credentials` and OS-EC2), policies and OAuth1 consumers, end to end through
//! the router: CRUD, views, Keystone's refusals and default policy, the delegation rules for
//! application-credential tokens, and what EC2/S3 authentication will read. Runs on SQLite and
//! PostgreSQL.

mod common;

use common::{test_config, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use strata_identity::db::credentials::{ec2_by_access, ec2_id};

const V3: &str = "/identity/v3";

/// A user who is a member of their own project, with a token there.
struct Member {
    id: String,
    project: String,
    token: String,
}

async fn member(s: &Stack, admin: &str, name: &str) -> Member {
    let pw = format!("{name}-pw-1");
    let id = s.create_user(admin, name, &pw).await;
    let project = s.create_project(admin, &format!("{name}-project")).await;
    s.grant(&id, &project, "member").await;
    let token = s.login(name, &pw, &format!("{name}-project")).await;
    Member { id, project, token }
}

fn ec2_blob(access: &str, secret: &str) -> String {
    json!({"access": access, "secret": secret}).to_string()
}

/// The blob of a credential view, parsed.
fn blob_of(cred: &Value) -> Value {
    serde_json::from_str(cred["blob"].as_str().expect("blob is a string")).unwrap()
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn credentials_crud_views_and_filters() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();
        let alice = member(&s, &admin, "alice").await;

        // A non-ec2 credential: a generated id (a body id is ignored), extra attributes kept.
        let r = s
            .post(
                &format!("{V3}/credentials"),
                &admin,
                json!({"credential": {"id": "mine", "user_id": alice.id, "type": "cert",
                    "blob": "-----BEGIN CERT-----", "tier": "gold"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let cert = r.json["credential"].clone();
        let cert_id = cert["id"].as_str().unwrap().to_string();
        assert_eq!(cert_id.len(), 32, "{}", r.raw);
        assert_eq!(cert["user_id"], alice.id.as_str());
        assert_eq!(cert["project_id"], Value::Null);
        assert_eq!(cert["type"], "cert");
        assert_eq!(cert["blob"], "-----BEGIN CERT-----");
        assert_eq!(cert["tier"], "gold");
        assert!(cert["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/credentials/{cert_id}")));

        // An ec2 credential: the id is the SHA-256 of the access key; the blob is a string.
        let blob = ec2_blob("AK1", "SK1");
        let r = s
            .post(
                &format!("{V3}/credentials"),
                &admin,
                json!({"credential": {"user_id": alice.id, "project_id": alice.project,
                    "type": "ec2", "blob": blob}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let ec2 = r.json["credential"].clone();
        assert_eq!(ec2["id"], ec2_id("AK1").as_str());
        assert_eq!(ec2["project_id"], alice.project.as_str());
        assert_eq!(blob_of(&ec2)["secret"], "SK1");
        let ec2_cid = ec2["id"].as_str().unwrap().to_string();

        // The same access key again is a conflict.
        let r = s
            .post(
                &format!("{V3}/credentials"),
                &admin,
                json!({"credential": {"user_id": alice.id, "project_id": alice.project,
                    "type": "ec2", "blob": ec2_blob("AK1", "other")}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);

        // Show, list, filters.
        let r = s.get(&format!("{V3}/credentials/{cert_id}"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credential"], cert);
        let r = s.get(&format!("{V3}/credentials"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let all = ids(&r.json, "credentials");
        assert!(
            all.contains(&cert_id) && all.contains(&ec2_cid),
            "{}",
            r.raw
        );
        assert!(r.json["links"]["self"].is_string());
        let r = s.get(&format!("{V3}/credentials?type=ec2"), &admin).await;
        assert_eq!(
            ids(&r.json, "credentials"),
            vec![ec2_cid.clone()],
            "{}",
            r.raw
        );
        let r = s
            .get(&format!("{V3}/credentials?user_id={}", alice.id), &admin)
            .await;
        assert_eq!(ids(&r.json, "credentials").len(), 2, "{}", r.raw);
        let r = s
            .get(&format!("{V3}/credentials?user_id=nobody"), &admin)
            .await;
        assert_eq!(ids(&r.json, "credentials").len(), 0, "{}", r.raw);

        // Update: the blob, extra attributes; the id stays; a different id in the body is 400.
        let r = s
            .patch(
                &format!("{V3}/credentials/{cert_id}"),
                &admin,
                json!({"credential": {"blob": "new cert", "tier": "silver"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credential"]["blob"], "new cert");
        assert_eq!(r.json["credential"]["tier"], "silver");
        assert_eq!(r.json["credential"]["id"], cert_id.as_str());
        let r = s
            .patch(
                &format!("{V3}/credentials/{cert_id}"),
                &admin,
                json!({"credential": {"id": "other"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .patch(
                &format!("{V3}/credentials/{cert_id}"),
                &admin,
                json!({"credential": {}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);

        // Delete; then 404 in Keystone's words.
        let r = s
            .delete(&format!("{V3}/credentials/{cert_id}"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get(&format!("{V3}/credentials/{cert_id}"), &admin).await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            format!("Could not find credential: {cert_id}.")
        );
        let r = s
            .delete(&format!("{V3}/credentials/{cert_id}"), &admin)
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s
            .patch(
                &format!("{V3}/credentials/{cert_id}"),
                &admin,
                json!({"credential": {"blob": "x"}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);

        // Writes are in the change log.
        let changes = s.db.store.changes_since(0, 100_000).await.unwrap();
        let ops: Vec<_> = changes
            .iter()
            .filter(|c| c.kind == "identity.credential" && c.id == cert_id)
            .map(|c| c.op.as_str())
            .collect();
        assert_eq!(ops, ["create", "update", "delete"], "{l}");
    }
}

#[tokio::test]
async fn credential_bodies_are_validated() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let create = |cred: Value| {
            let s = &s;
            let admin = admin.clone();
            async move {
                s.post(
                    &format!("{V3}/credentials"),
                    &admin,
                    json!({ "credential": cred }),
                )
                .await
            }
        };

        // Required fields and types, each named.
        for (body, field) in [
            (json!({"type": "cert", "blob": "b"}), "user_id"),
            (json!({"user_id": alice.id, "blob": "b"}), "type"),
            (json!({"user_id": alice.id, "type": "cert"}), "blob"),
            (
                json!({"user_id": alice.id, "type": "cert", "blob": {"a": 1}}),
                "blob",
            ),
            (
                json!({"user_id": 5, "type": "cert", "blob": "b"}),
                "user_id",
            ),
            (
                json!({"user_id": alice.id, "type": "ec2", "blob": ec2_blob("A", "S")}),
                "project_id",
            ),
        ] {
            let r = create(body.clone()).await;
            let msg = r.assert_error(StatusCode::BAD_REQUEST).to_string();
            assert!(msg.contains(field), "{body}: {msg}");
        }
        // ec2 blobs must be JSON objects with an access key.
        for blob in ["not json", "[]", "{}", r#"{"secret": "s"}"#] {
            let r = create(json!({"user_id": alice.id, "project_id": alice.project,
                "type": "ec2", "blob": blob}))
            .await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        // `EC2` is `ec2`.
        let r = create(json!({"user_id": alice.id, "project_id": alice.project,
            "type": "EC2", "blob": ec2_blob("UP", "S")}))
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["credential"]["type"], "ec2");
        assert_eq!(r.json["credential"]["id"], ec2_id("UP").as_str());
        let cid = r.json["credential"]["id"].as_str().unwrap().to_string();

        // An ec2 credential keeps a project and a valid blob; its delegation keys are fixed.
        let path = format!("{V3}/credentials/{cid}");
        for body in [
            json!({"project_id": null}),
            json!({"blob": "not json"}),
            json!({"blob": r#"{"secret": "s"}"#}),
            json!({"blob": json!({"access": "UP", "secret": "S", "trust_id": "t"}).to_string()}),
        ] {
            let r = s.patch(&path, &admin, json!({ "credential": body })).await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        // A cert cannot become ec2 without a project.
        let r = create(json!({"user_id": alice.id, "type": "cert", "blob": "b"})).await;
        let cert = r.json["credential"]["id"].as_str().unwrap().to_string();
        let r = s
            .patch(
                &format!("{V3}/credentials/{cert}"),
                &admin,
                json!({"credential": {"type": "ec2", "blob": ec2_blob("C", "S")}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::BAD_REQUEST)
            .contains("project_id"));
    }
}

#[tokio::test]
async fn ec2_keys_for_authentication() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let store = &s.db.store;

        let r = s
            .post(
                &format!("{V3}/credentials"),
                &admin,
                json!({"credential": {"user_id": alice.id, "project_id": alice.project,
                    "type": "ec2", "blob": ec2_blob("AK", "SK")}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let cid = r.json["credential"]["id"].as_str().unwrap().to_string();
        assert_eq!(
            ec2_by_access(store, "AK").await.unwrap(),
            Some((alice.id.clone(), alice.project.clone(), "SK".to_string()))
        );
        assert_eq!(ec2_by_access(store, "nope").await.unwrap(), None);

        // Changing the access key (as Tempest does) keeps the id; the new key authenticates,
        // the old one no longer does.
        let r = s
            .patch(
                &format!("{V3}/credentials/{cid}"),
                &admin,
                json!({"credential": {"blob": ec2_blob("AK2", "SK2")}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credential"]["id"], cid.as_str());
        assert_eq!(ec2_by_access(store, "AK").await.unwrap(), None);
        assert_eq!(
            ec2_by_access(store, "AK2").await.unwrap(),
            Some((alice.id.clone(), alice.project.clone(), "SK2".to_string()))
        );
        // The OS-EC2 view finds it by its current key.
        let r = s
            .get(
                &format!("{V3}/users/{}/credentials/OS-EC2/AK2", alice.id),
                &alice.token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credential"]["secret"], "SK2");

        // A key another credential holds cannot be taken.
        let r = s
            .post(
                &format!("{V3}/credentials"),
                &admin,
                json!({"credential": {"user_id": alice.id, "project_id": alice.project,
                    "type": "ec2", "blob": ec2_blob("AK3", "SK3")}}),
            )
            .await;
        let other = r.json["credential"]["id"].as_str().unwrap().to_string();
        let r = s
            .patch(
                &format!("{V3}/credentials/{other}"),
                &admin,
                json!({"credential": {"blob": ec2_blob("AK2", "x")}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);

        // A credential that stops being ec2 stops authenticating.
        let r = s
            .patch(
                &format!("{V3}/credentials/{cid}"),
                &admin,
                json!({"credential": {"type": "cert"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(ec2_by_access(store, "AK2").await.unwrap(), None);
    }
}

#[tokio::test]
async fn credential_policy_owners_readers_and_admins() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let bob = member(&s, &admin, "bob").await;
        let mk = |user: &str, blob: &str| json!({"credential": {"user_id": user, "type": "cert", "blob": blob}});

        // Owners create their own, not others'.
        let r = s
            .post(
                &format!("{V3}/credentials"),
                &alice.token,
                mk(&alice.id, "a"),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let a_cred = r.json["credential"]["id"].as_str().unwrap().to_string();
        let r = s
            .post(&format!("{V3}/credentials"), &alice.token, mk(&bob.id, "b"))
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = s
            .post(&format!("{V3}/credentials"), &admin, mk(&bob.id, "b"))
            .await;
        let b_cred = r.json["credential"]["id"].as_str().unwrap().to_string();

        // Each sees only their own, even when asking for another user's.
        let r = s.get(&format!("{V3}/credentials"), &alice.token).await;
        assert_eq!(
            ids(&r.json, "credentials"),
            vec![a_cred.clone()],
            "{}",
            r.raw
        );
        let r = s
            .get(
                &format!("{V3}/credentials?user_id={}", bob.id),
                &alice.token,
            )
            .await;
        assert!(ids(&r.json, "credentials").is_empty(), "{}", r.raw);
        let b_path = format!("{V3}/credentials/{b_cred}");
        s.get(&b_path, &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.patch(&b_path, &alice.token, json!({"credential": {"blob": "x"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&b_path, &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // A missing credential is 403 to a non-admin, as in Keystone (existence is not leaked).
        s.get(&format!("{V3}/credentials/missing"), &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // An owner updates their own but cannot give it away.
        let a_path = format!("{V3}/credentials/{a_cred}");
        let r = s
            .patch(&a_path, &alice.token, json!({"credential": {"blob": "a2"}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        s.patch(
            &a_path,
            &alice.token,
            json!({"credential": {"user_id": bob.id}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // A system reader reads everything, changes nothing.
        let uid = s.create_user(&admin, "auditor", "auditor-pw").await;
        s.grant_system(&uid, "reader").await;
        let reader = s.system_login("auditor", "auditor-pw").await;
        let r = s.get(&format!("{V3}/credentials"), &reader).await;
        let seen = ids(&r.json, "credentials");
        assert!(
            seen.contains(&a_cred) && seen.contains(&b_cred),
            "{}",
            r.raw
        );
        assert_eq!(s.get(&b_path, &reader).await.status, StatusCode::OK);
        s.patch(&b_path, &reader, json!({"credential": {"blob": "x"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&b_path, &reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // The admin manages anyone's, and may reassign.
        let r = s
            .patch(
                &b_path,
                &admin,
                json!({"credential": {"user_id": alice.id}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(s.get(&b_path, &alice.token).await.status, StatusCode::OK);
        assert_eq!(
            s.delete(&a_path, &alice.token).await.status,
            StatusCode::NO_CONTENT
        );

        // Without a token: 401.
        let r = s
            .call(Method::GET, &format!("{V3}/credentials"), None, &[], None)
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn os_ec2_credentials() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();
        let alice = member(&s, &admin, "alice").await;
        let bob = member(&s, &admin, "bob").await;
        let base = format!("{V3}/users/{}/credentials/OS-EC2", alice.id);

        // Create, as the owner with a member role.
        let r = s
            .post(&base, &alice.token, json!({"tenant_id": alice.project}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let c = r.json["credential"].clone();
        let access = c["access"].as_str().unwrap().to_string();
        let secret = c["secret"].as_str().unwrap().to_string();
        assert_eq!(access.len(), 32);
        assert_eq!(secret.len(), 32);
        assert_ne!(access, secret);
        assert_eq!(c["user_id"], alice.id.as_str());
        assert_eq!(c["tenant_id"], alice.project.as_str());
        assert_eq!(c["trust_id"], Value::Null);
        assert_eq!(
            c["links"]["self"],
            format!(
                "http://test/identity/v3/users/{}/credentials/OS-EC2/{access}",
                alice.id
            )
        );

        // Show and list.
        let r = s.get(&format!("{base}/{access}"), &alice.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credential"], c);
        let r = s.get(&base, &alice.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credentials"], json!([c]));

        // The same credential through /v3/credentials, and for authentication.
        let cid = ec2_id(&access);
        let r = s
            .get(&format!("{V3}/credentials/{cid}"), &alice.token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credential"]["type"], "ec2");
        assert_eq!(r.json["credential"]["project_id"], alice.project.as_str());
        assert_eq!(blob_of(&r.json["credential"])["access"], access.as_str());
        assert_eq!(
            ec2_by_access(&s.db.store, &access).await.unwrap(),
            Some((alice.id.clone(), alice.project.clone(), secret.clone()))
        );
        // And one made through /v3/credentials shows in OS-EC2.
        let r = s
            .post(
                &format!("{V3}/credentials"),
                &alice.token,
                json!({"credential": {"user_id": alice.id, "project_id": alice.project,
                    "type": "ec2", "blob": ec2_blob("via-v3", "s")}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = s.get(&format!("{base}/via-v3"), &alice.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["credential"]["secret"], "s");
        assert_eq!(
            s.get(&base, &alice.token).await.json["credentials"]
                .as_array()
                .unwrap()
                .len(),
            2
        );

        // Others: another member may not list, show, create or delete alice's keys, not even
        // by naming the key under their own path.
        s.get(&base, &bob.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(&base, &bob.token, json!({"tenant_id": bob.project}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{base}/{access}"), &bob.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let bobs = format!("{V3}/users/{}/credentials/OS-EC2", bob.id);
        s.get(&format!("{bobs}/{access}"), &bob.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{bobs}/{access}"), &bob.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // The admin sees it, but only under its owner.
        assert_eq!(
            s.get(&format!("{base}/{access}"), &admin).await.status,
            StatusCode::OK
        );
        s.get(&format!("{bobs}/{access}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Refusals: no tenant, an unknown project or user; a reader-only user may not create.
        s.post(&base, &alice.token, json!({}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.post(&base, &alice.token, json!({"tenant_id": "nope"}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.post(
            &format!("{V3}/users/nobody/credentials/OS-EC2"),
            &admin,
            json!({"tenant_id": alice.project}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let rid = s.create_user(&admin, "ro", "ro-pw").await;
        s.grant(&rid, &alice.project, "reader").await;
        let ro = s.login("ro", "ro-pw", "alice-project").await;
        s.post(
            &format!("{V3}/users/{rid}/credentials/OS-EC2"),
            &ro,
            json!({"tenant_id": alice.project}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // Delete, then 404.
        let r = s.delete(&format!("{base}/{access}"), &alice.token).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get(&format!("{base}/{access}"), &alice.token).await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            format!("Could not find credential: {cid}.")
        );
        s.delete(&format!("{base}/{access}"), &alice.token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(ec2_by_access(&s.db.store, &access).await.unwrap(), None);
    }
}

#[tokio::test]
async fn deleting_a_user_deletes_their_credentials() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let bob = member(&s, &admin, "bob").await;
        let r = s
            .post(
                &format!("{V3}/users/{}/credentials/OS-EC2", alice.id),
                &alice.token,
                json!({"tenant_id": alice.project}),
            )
            .await;
        let access = r.json["credential"]["access"].as_str().unwrap().to_string();
        for (user, blob) in [(&alice.id, "a"), (&bob.id, "b")] {
            let r = s
                .post(
                    &format!("{V3}/credentials"),
                    &admin,
                    json!({"credential": {"user_id": user, "type": "cert", "blob": blob}}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        }
        let r = s.delete(&format!("{V3}/users/{}", alice.id), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        assert_eq!(ec2_by_access(&s.db.store, &access).await.unwrap(), None);
        let r = s.get(&format!("{V3}/credentials"), &admin).await;
        let users: Vec<&Value> = r.json["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["user_id"])
            .collect();
        assert_eq!(users, vec![&json!(bob.id)], "{}", r.raw);
    }
}

/// Tokens made from application credentials: only an unrestricted one may mint EC2 keys, which
/// then record it; and such tokens reach only their own project's credentials.
#[tokio::test]
async fn application_credential_tokens_are_bounded() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let other_project = s.create_project(&admin, "alice-other").await;
        s.grant(&alice.id, &other_project, "member").await;
        let mut tokens = Vec::new();
        for (name, unrestricted) in [("restricted", false), ("unrestricted", true)] {
            let r = s
                .post(
                    &format!("{V3}/users/{}/application_credentials", alice.id),
                    &alice.token,
                    json!({"application_credential": {"name": name, "unrestricted": unrestricted}}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
            let ac = &r.json["application_credential"];
            let r = s
                .call(
                    Method::POST,
                    &format!("{V3}/auth/tokens"),
                    None,
                    &[],
                    Some(
                        json!({"auth": {"identity": {"methods": ["application_credential"],
                        "application_credential": {"id": ac["id"], "secret": ac["secret"]}}}}),
                    ),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
            tokens.push((ac["id"].as_str().unwrap().to_string(), r.token()));
        }
        let (_, restricted) = &tokens[0];
        let (ac_id, unrestricted) = &tokens[1];
        let base = format!("{V3}/users/{}/credentials/OS-EC2", alice.id);

        s.post(&base, restricted, json!({"tenant_id": alice.project}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(
            &format!("{V3}/credentials"),
            restricted,
            json!({"credential": {"user_id": alice.id, "project_id": alice.project,
                "type": "ec2", "blob": ec2_blob("R", "S")}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .post(&base, unrestricted, json!({"tenant_id": alice.project}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let access = r.json["credential"]["access"].as_str().unwrap().to_string();
        let r = s
            .get(
                &format!("{V3}/credentials/{}", ec2_id(&access)),
                &alice.token,
            )
            .await;
        assert_eq!(
            blob_of(&r.json["credential"])["app_cred_id"],
            ac_id.as_str()
        );
        // Another project's credentials are out of reach of the delegated token.
        s.post(&base, unrestricted, json!({"tenant_id": other_project}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .post(&base, &alice.token, json!({"tenant_id": other_project}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let other_access = r.json["credential"]["access"].as_str().unwrap().to_string();
        s.get(&format!("{base}/{other_access}"), unrestricted)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.get(&base, unrestricted).await;
        let listed: Vec<&Value> = r.json["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["access"])
            .collect();
        assert_eq!(listed, vec![&json!(access)], "{}", r.raw);
        let r = s.get(&format!("{V3}/credentials"), unrestricted).await;
        assert_eq!(
            ids(&r.json, "credentials"),
            vec![ec2_id(&access)],
            "{}",
            r.raw
        );
    }
}

#[tokio::test]
async fn policies_crud_and_policy() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let r = s
            .post(
                &format!("{V3}/policies"),
                &admin,
                json!({"policy": {"blob": "{\"rule\": \"x\"}", "type": "application/json",
                    "id": "ignored", "owner": "ops"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let p = r.json["policy"].clone();
        let pid = p["id"].as_str().unwrap().to_string();
        assert_eq!(pid.len(), 32);
        assert_eq!(p["blob"], "{\"rule\": \"x\"}");
        assert_eq!(p["type"], "application/json");
        assert_eq!(p["owner"], "ops");
        assert!(p["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/policies/{pid}")));
        let path = format!("{V3}/policies/{pid}");

        for body in [
            json!({"type": "t"}),
            json!({"blob": "b"}),
            json!({"blob": 1, "type": "t"}),
            json!({"blob": "b", "type": "x".repeat(256)}),
        ] {
            s.post(&format!("{V3}/policies"), &admin, json!({ "policy": body }))
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }

        let r = s.get(&path, &admin).await;
        assert_eq!(r.json["policy"], p, "{}", r.raw);
        let r = s.get(&format!("{V3}/policies"), &admin).await;
        assert_eq!(ids(&r.json, "policies"), vec![pid.clone()], "{}", r.raw);
        let r = s
            .get(&format!("{V3}/policies?type=text/plain"), &admin)
            .await;
        assert!(ids(&r.json, "policies").is_empty(), "{}", r.raw);

        let r = s
            .patch(&path, &admin, json!({"policy": {"type": "text/plain"}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["policy"]["type"], "text/plain");
        assert_eq!(r.json["policy"]["blob"], p["blob"]);
        s.patch(&path, &admin, json!({"policy": {}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);

        // Members may do nothing; system readers read.
        s.get(&format!("{V3}/policies"), &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&path, &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(
            &format!("{V3}/policies"),
            &alice.token,
            json!({"policy": {"blob": "b", "type": "t"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let uid = s.create_user(&admin, "auditor", "auditor-pw").await;
        s.grant_system(&uid, "reader").await;
        let reader = s.system_login("auditor", "auditor-pw").await;
        assert_eq!(s.get(&path, &reader).await.status, StatusCode::OK);
        s.delete(&path, &reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        assert_eq!(s.delete(&path, &admin).await.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.get(&path, &admin)
                .await
                .assert_error(StatusCode::NOT_FOUND),
            format!("Could not find policy: {pid}.")
        );
        s.delete(&path, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn oauth1_consumers_crud_and_policy() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let alice = member(&s, &admin, "alice").await;
        let base = format!("{V3}/OS-OAUTH1/consumers");
        let r = s
            .post(
                &base,
                &admin,
                json!({"consumer": {"description": "app", "secret": "mine", "team": "a"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let c = r.json["consumer"].clone();
        let cid = c["id"].as_str().unwrap().to_string();
        let secret = c["secret"].as_str().unwrap();
        assert_eq!(secret.len(), 32, "a body secret is ignored");
        assert_eq!(c["description"], "app");
        assert_eq!(c["team"], "a");
        assert!(c["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/OS-OAUTH1/consumers/{cid}")));
        let path = format!("{base}/{cid}");

        // The secret is shown at creation only.
        let r = s.get(&path, &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.json["consumer"].get("secret").is_none(), "{}", r.raw);
        assert_eq!(r.json["consumer"]["description"], "app");
        let r = s.get(&base, &admin).await;
        assert_eq!(ids(&r.json, "consumers"), vec![cid.clone()], "{}", r.raw);
        assert!(r.json["consumers"][0].get("secret").is_none());

        // A consumer without a description; one created from an empty object.
        let r = s.post(&base, &admin, json!({"consumer": {}})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["consumer"]["description"], Value::Null);

        // Update the description; the secret cannot change.
        let r = s
            .patch(&path, &admin, json!({"consumer": {"description": "app2"}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["consumer"]["description"], "app2");
        assert_eq!(
            s.get(&path, &admin).await.json["consumer"]["description"],
            "app2"
        );
        for body in [
            json!({"secret": "x"}),
            json!({}),
            json!({"description": 5}),
            json!({"id": "other"}),
        ] {
            s.patch(&path, &admin, json!({ "consumer": body }))
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }

        // Admin only for writes.
        s.post(&base, &alice.token, json!({"consumer": {}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&base, &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&path, &alice.token)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        assert_eq!(s.delete(&path, &admin).await.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.get(&path, &admin)
                .await
                .assert_error(StatusCode::NOT_FOUND),
            format!("Could not find consumer: {cid}.")
        );
    }
}
