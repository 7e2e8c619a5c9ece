//! Bad input on the identity API: each answered with the right status and Keystone's error
//! body, and nothing half-written left behind.

mod common;

use common::{project_scope, test_config, Stack, ADMIN_PW};
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn malformed_missing_and_wrongly_typed_bodies() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let r = s
            .call(
                Method::POST,
                "/identity/v3/users",
                Some(&admin),
                &[],
                Some(json!("{not json")),
            )
            .await;
        let m = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(m.contains("Malformed"), "{m}");
        let r = s
            .post("/identity/v3/users", &admin, json!({"user": {}}))
            .await;
        let m = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(m.contains("'user.name'"), "{m}");
        let r = s
            .post("/identity/v3/users", &admin, json!({"user": {"name": 5}}))
            .await;
        let m = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(m.contains("name"), "{m}");
        let r = s
            .post(
                "/identity/v3/projects",
                &admin,
                json!({"project": {"name": "x", "enabled": "yes"}}),
            )
            .await;
        let m = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(m.contains("enabled"), "{m}");
        let r = s
            .post(
                "/identity/v3/domains",
                &admin,
                json!({"domain": {"name": "d", "bogus": 1}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .call(
                Method::POST,
                "/identity/v3/auth/tokens",
                None,
                &[],
                Some(json!({"auth": {"identity": {}}})),
            )
            .await;
        let m = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(m.contains("methods"), "{m}");
        // Nothing was created by the failed requests.
        let r = s.get("/identity/v3/users", &admin).await;
        let names: Vec<&str> = r.json["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["admin", "demo"], "{}", s.label());
    }
}

#[tokio::test]
async fn wrong_credentials_answer_identically() {
    for s in Stack::all(test_config()).await {
        let wrong_pw = s
            .password_token("admin", "default", "nope", Some(project_scope("admin")))
            .await;
        let wrong_user = s
            .password_token("nobody", "default", ADMIN_PW, Some(project_scope("admin")))
            .await;
        let wrong_domain = s
            .password_token("admin", "nodomain", ADMIN_PW, Some(project_scope("admin")))
            .await;
        wrong_pw.assert_error(StatusCode::UNAUTHORIZED);
        assert_eq!(wrong_pw.json, wrong_user.json);
        assert_eq!(wrong_pw.json, wrong_domain.json);
        assert!(wrong_pw.headers.get("www-authenticate").is_some());
    }
}

#[tokio::test]
async fn disabled_users_and_projects_cannot_authenticate() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let uid = s.create_user(&admin, "bob", "pw-bob").await;
        let pid = s.create_project(&admin, "p-bob").await;
        s.grant(&uid, &pid, "member").await;
        s.patch(
            &format!("/identity/v3/projects/{pid}"),
            &admin,
            json!({"project": {"enabled": false}}),
        )
        .await;
        s.password_token("bob", "default", "pw-bob", Some(project_scope("p-bob")))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        s.patch(
            &format!("/identity/v3/users/{uid}"),
            &admin,
            json!({"user": {"enabled": false}}),
        )
        .await;
        s.password_token("bob", "default", "pw-bob", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn duplicates_conflict_and_unknown_ids_are_404() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        s.create_user(&admin, "carol", "pw").await;
        let r = s
            .post(
                "/identity/v3/users",
                &admin,
                json!({"user": {"name": "carol", "domain_id": "default"}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        s.create_project(&admin, "dup-p").await;
        let r = s
            .post(
                "/identity/v3/projects",
                &admin,
                json!({"project": {"name": "dup-p"}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        let r = s
            .post(
                "/identity/v3/domains",
                &admin,
                json!({"domain": {"name": "Default"}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        for path in ["users", "projects", "domains"] {
            let r = s
                .get(&format!("/identity/v3/{path}/0123456789abcdef"), &admin)
                .await;
            let m = r.assert_error(StatusCode::NOT_FOUND);
            assert!(m.contains("0123456789abcdef"), "{m}");
            let r = s
                .delete(&format!("/identity/v3/{path}/0123456789abcdef"), &admin)
                .await;
            r.assert_error(StatusCode::NOT_FOUND);
        }
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = Stack::new(strata_store::testing::TestDb::sqlite().await, test_config()).await;
    let admin = s.admin().await;
    let big = "x".repeat(120_000);
    let r = s
        .post(
            "/identity/v3/users",
            &admin,
            json!({"user": {"name": "big", "description": big}}),
        )
        .await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn tampered_and_foreign_tokens_are_401() {
    let s = Stack::new(strata_store::testing::TestDb::sqlite().await, test_config()).await;
    let other = Stack::new(strata_store::testing::TestDb::sqlite().await, test_config()).await;
    let good = s.admin().await;
    // One character changed in the body part, and in the signature part.
    for pos in [5, good.len() - 3] {
        let mut b = good.clone().into_bytes();
        b[pos] = if b[pos] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(b).unwrap();
        s.get("/identity/v3/users", &bad)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
    // A well-formed token signed by another deployment's key.
    let foreign = other.admin().await;
    s.get("/identity/v3/users", &foreign)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    s.get("/identity/v3/users", "garbage")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    s.call(Method::GET, "/identity/v3/users", None, &[], None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    // As a subject token it is simply not found.
    s.validate(&good, &foreign)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_name_make_one_row() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let s = std::sync::Arc::new(s);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (s, admin) = (s.clone(), admin.clone());
            tasks.push(tokio::spawn(async move {
                s.post(
                    "/identity/v3/users",
                    &admin,
                    json!({"user": {"name": "racer", "domain_id": "default"}}),
                )
                .await
                .status
            }));
        }
        let mut created = 0;
        let mut conflicts = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => conflicts += 1,
                other => panic!("{}: unexpected {other}", s.label()),
            }
        }
        assert_eq!((created, conflicts), (1, 15), "{}", s.label());
        let r = s.get("/identity/v3/users?name=racer", &admin).await;
        assert_eq!(r.json["users"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn members_are_refused_admin_operations() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let uid = s.create_user(&admin, "mallory", "pw-m").await;
        let pid = s.create_project(&admin, "p-m").await;
        s.grant(&uid, &pid, "member").await;
        let t = s.login("mallory", "pw-m", "p-m").await;
        s.post(
            "/identity/v3/projects",
            &t,
            json!({"project": {"name": "evil"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.post("/identity/v3/users", &t, json!({"user": {"name": "evil"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get("/identity/v3/users", &t)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get("/identity/v3/projects", &t)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("/identity/v3/projects/{pid}"), &t)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Owner rules: one's own user and project are readable.
        assert_eq!(
            s.get(&format!("/identity/v3/users/{uid}"), &t).await.status,
            StatusCode::OK
        );
        assert_eq!(
            s.get(&format!("/identity/v3/projects/{pid}"), &t)
                .await
                .status,
            StatusCode::OK
        );
        let r = s
            .get(&format!("/identity/v3/users/{uid}/projects"), &t)
            .await;
        assert_eq!(
            r.json["projects"].as_array().map(Vec::len),
            Some(1),
            "{}",
            r.raw
        );
        // The default domain is readable by a member of a project in it.
        let r = s.get("/identity/v3/domains/default", &t).await;
        assert_eq!(r.json["domain"]["enabled"], true);
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_keystone_format() {
    let s = Stack::new(strata_store::testing::TestDb::sqlite().await, test_config()).await;
    let admin = s.admin().await;
    s.get("/identity/v3/nonsense", &admin)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let r = s
        .call(Method::PUT, "/identity/v3/users", Some(&admin), &[], None)
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers.get("x-openstack-request-id").is_some());
}
