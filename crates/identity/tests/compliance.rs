//! Keystone's `[security_compliance]`: lockout, password history, minimum age, complexity,
//! expiry and self-service password change.

mod common;

use common::{project_scope, test_config, Stack};
use http::{Method, StatusCode};
use serde_json::json;

async fn change_password(s: &Stack, uid: &str, old: &str, new: &str) -> common::Resp {
    s.call(
        Method::POST,
        &format!("/identity/v3/users/{uid}/password"),
        None,
        &[],
        Some(json!({"user": {"original_password": old, "password": new}})),
    )
    .await
}

#[tokio::test]
async fn lockout_after_failed_attempts_then_expires() {
    let mut cfg = test_config();
    cfg.security_compliance.lockout_failure_attempts = 2;
    cfg.security_compliance.lockout_duration = 1;
    for s in Stack::all(cfg).await {
        let admin = s.admin().await;
        s.create_user(&admin, "locky", "pw-good").await;
        assert_eq!(
            s.password_token("locky", "default", "pw-good", None)
                .await
                .status,
            StatusCode::CREATED
        );
        for _ in 0..2 {
            s.password_token("locky", "default", "bad", None)
                .await
                .assert_error(StatusCode::UNAUTHORIZED);
        }
        let m = s
            .password_token("locky", "default", "pw-good", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED)
            .to_string();
        assert!(m.contains("locked"), "{}: {m}", s.label());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if s.password_token("locky", "default", "pw-good", None)
                .await
                .status
                == StatusCode::CREATED
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "lockout never expired"
            );
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test]
async fn password_history_and_self_service() {
    let mut cfg = test_config();
    cfg.security_compliance.unique_last_password_count = 2;
    for s in Stack::all(cfg).await {
        let admin = s.admin().await;
        let uid = s.create_user(&admin, "hist", "pw-0").await;
        // Wrong original password: 401.
        change_password(&s, &uid, "wrong", "pw-1")
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        assert_eq!(
            change_password(&s, &uid, "pw-0", "pw-1").await.status,
            StatusCode::NO_CONTENT
        );
        change_password(&s, &uid, "pw-1", "pw-0")
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(
            change_password(&s, &uid, "pw-1", "pw-2").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            change_password(&s, &uid, "pw-2", "pw-0").await.status,
            StatusCode::NO_CONTENT,
            "{}",
            s.label()
        );
        assert_eq!(
            s.password_token("hist", "default", "pw-0", None)
                .await
                .status,
            StatusCode::CREATED
        );
        s.password_token("hist", "default", "pw-2", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn minimum_age_regex_and_expiry() {
    let mut cfg = test_config();
    cfg.security_compliance.minimum_password_age = 1;
    cfg.security_compliance.password_regex = "^.{8,}$".into();
    cfg.security_compliance.password_regex_description = "at least 8 characters".into();
    cfg.security_compliance.password_expires_days = 30;
    let s = Stack::new(strata_store::testing::TestDb::sqlite().await, cfg).await;
    let admin = s.admin().await;
    let r = s
        .post(
            "/identity/v3/users",
            &admin,
            json!({"user": {"name": "short", "password": "abc"}}),
        )
        .await;
    let m = r.assert_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("at least 8 characters"), "{m}");
    let uid = s.create_user(&admin, "aged", "long-enough-1").await;
    let r = s.get(&format!("/identity/v3/users/{uid}"), &admin).await;
    assert!(
        r.json["user"]["password_expires_at"].is_string(),
        "{}",
        r.raw
    );
    // Created by an admin, so the first self-service change is allowed; the next is too soon.
    assert_eq!(
        change_password(&s, &uid, "long-enough-1", "long-enough-2")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let m = change_password(&s, &uid, "long-enough-2", "long-enough-3")
        .await
        .assert_error(StatusCode::BAD_REQUEST)
        .to_string();
    assert!(m.contains("minimum password age"), "{m}");
    let t = s
        .password_token("aged", "default", "long-enough-2", None)
        .await;
    assert!(t.json["token"]["user"]["password_expires_at"].is_string());
}

#[tokio::test]
async fn change_password_upon_first_use() {
    let mut cfg = test_config();
    cfg.security_compliance.change_password_upon_first_use = true;
    let s = Stack::new(strata_store::testing::TestDb::sqlite().await, cfg).await;
    let admin = s.admin().await;
    let uid = s.create_user(&admin, "fresh", "pw-admin-set").await;
    let m = s
        .password_token("fresh", "default", "pw-admin-set", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED)
        .to_string();
    assert!(m.contains("needs to be changed"), "{m}");
    assert_eq!(
        change_password(&s, &uid, "pw-admin-set", "pw-mine")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.password_token("fresh", "default", "pw-mine", Some(json!("unscoped")))
            .await
            .status,
        StatusCode::CREATED
    );
    let _ = project_scope;
}
