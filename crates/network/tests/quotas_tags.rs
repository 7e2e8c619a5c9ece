//! `/v2.0/quotas` and the `standard-attr-tag` routes, on every backend.

mod common;

use common::{s, Stack};
use http::StatusCode;
use serde_json::json;

const KEYS: &[&str] = &[
    "network",
    "subnet",
    "subnetpool",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
];

#[tokio::test]
async fn quotas_show_update_reset_and_details() {
    for st in Stack::all().await {
        let cfg = strata_core::config::NetworkConfig::default();
        let p1 = st.p1.clone();
        let r = st.get(&format!("/v2.0/quotas/{p1}"), &st.u1).await;
        let q = r.ok(StatusCode::OK)["quota"].clone();
        for k in KEYS {
            assert!(q[*k].is_i64(), "{k}: {q}");
        }
        assert_eq!(q["network"], cfg.quota_network);
        // Members read only their own project; the admin reads any.
        st.get(&format!("/v2.0/quotas/{}", st.p2), &st.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        st.get(&format!("/v2.0/quotas/{p1}"), &st.reader)
            .await
            .ok(StatusCode::OK);
        st.get(&format!("/v2.0/quotas/{p1}"), &st.admin)
            .await
            .ok(StatusCode::OK);
        // Only admins list and change.
        st.get("/v2.0/quotas", &st.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        st.put(
            &format!("/v2.0/quotas/{p1}"),
            &st.u1,
            json!({"quota": {"network": 1}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        st.delete(&format!("/v2.0/quotas/{p1}"), &st.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = st.get("/v2.0/quotas", &st.admin).await;
        assert_eq!(r.ok(StatusCode::OK)["quotas"], json!([]));
        let r = st
            .put(
                &format!("/v2.0/quotas/{p1}"),
                &st.admin,
                json!({"quota": {"network": 1, "port": "7", "router": -1}}),
            )
            .await;
        let q = &r.ok(StatusCode::OK)["quota"];
        assert_eq!(q["network"], 1);
        assert_eq!(q["port"], 7);
        assert_eq!(q["router"], -1);
        assert_eq!(q["subnet"], cfg.quota_subnet);
        for bad in [
            json!({"quota": {"network": -2}}),
            json!({"quota": {"network": "x"}}),
            json!({"quota": {"bogus": 1}}),
            json!({"nope": {}}),
        ] {
            st.put(&format!("/v2.0/quotas/{p1}"), &st.admin, bad)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        let r = st.get("/v2.0/quotas", &st.admin).await;
        let list = r.ok(StatusCode::OK)["quotas"].as_array().unwrap().clone();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["project_id"], p1.as_str());
        assert_eq!(list[0]["tenant_id"], p1.as_str());
        assert_eq!(list[0]["network"], 1);
        // The override applies.
        st.network(&st.u1, "a").await;
        let r = st
            .post("/v2.0/networks", &st.u1, json!({"network": {"name": "b"}}))
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "OverQuota");
        // Defaults and details.
        let r = st.get(&format!("/v2.0/quotas/{p1}/default"), &st.u1).await;
        assert_eq!(r.ok(StatusCode::OK)["quota"]["network"], cfg.quota_network);
        st.get(&format!("/v2.0/quotas/{}/default", st.p2), &st.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = st.get(&format!("/v2.0/quotas/{p1}/details"), &st.u1).await;
        let d = &r.ok(StatusCode::OK)["quota"];
        assert_eq!(d["network"], json!({"limit": 1, "used": 1, "reserved": 0}));
        for k in KEYS {
            assert!(
                d[*k]["limit"].is_i64() && d[*k]["used"].is_u64(),
                "{k}: {d}"
            );
        }
        st.get(&format!("/v2.0/quotas/{}/details", st.p2), &st.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Reset.
        let r = st.delete(&format!("/v2.0/quotas/{p1}"), &st.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = st.get(&format!("/v2.0/quotas/{p1}"), &st.u1).await;
        assert_eq!(r.ok(StatusCode::OK)["quota"]["network"], cfg.quota_network);
        assert_eq!(
            st.get("/v2.0/quotas", &st.admin).await.json["quotas"],
            json!([])
        );
        st.network(&st.u1, "b").await;
        for alias in ["quotas", "quota_details"] {
            st.get(&format!("/v2.0/extensions/{alias}"), &st.u1)
                .await
                .ok(StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn tags_on_networks() {
    for st in Stack::all().await {
        let n = st.network(&st.u1, "n").await;
        let id = s(&n, "id");
        let base = format!("/v2.0/networks/{id}/tags");
        let r = st.get(&base, &st.u1).await;
        assert_eq!(r.ok(StatusCode::OK)["tags"], json!([]));
        let r = st
            .put(&base, &st.u1, json!({"tags": ["red", "blue"]}))
            .await;
        assert_eq!(r.ok(StatusCode::OK)["tags"], json!(["red", "blue"]));
        let v = st.get(&format!("/v2.0/networks/{id}"), &st.u1).await;
        assert_eq!(v.json["network"]["tags"], json!(["red", "blue"]));
        assert_eq!(v.json["network"]["revision_number"], 1);
        // One tag.
        let r = st.get(&format!("{base}/red"), &st.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = st.get(&format!("{base}/green"), &st.u1).await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "TagNotFound");
        let r = st.put_empty(&format!("{base}/green"), &st.u1).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = st.put_empty(&format!("{base}/green"), &st.u1).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = st.get(&base, &st.u1).await;
        assert_eq!(r.json["tags"], json!(["red", "blue", "green"]));
        // Filters see them.
        assert_eq!(
            st.ids(&st.u1, "networks", "tags=red,green").await,
            vec![id.clone()]
        );
        assert!(st
            .ids(&st.u1, "networks", "not-tags-any=blue")
            .await
            .is_empty());
        let r = st.delete(&format!("{base}/red"), &st.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = st.delete(&format!("{base}/red"), &st.u1).await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "TagNotFound");
        // Invalid bodies.
        for bad in [
            json!({"tags": "x"}),
            json!({"tags": [1]}),
            json!({"tags": ["a", "a"]}),
            json!({"tags": ["x".repeat(256)]}),
            json!({}),
        ] {
            st.put(&base, &st.u1, bad)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        // Others: 404 when invisible, 403 for readers or non-owners of shared networks.
        st.get(&base, &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.put_empty(&format!("{base}/x"), &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.get(&base, &st.reader).await.ok(StatusCode::OK);
        st.put_empty(&format!("{base}/x"), &st.reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        st.delete(&base, &st.reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let shared = st
            .network_with(&st.admin, json!({"name": "sh", "shared": true}))
            .await;
        let sp = format!("/v2.0/networks/{}/tags", s(&shared, "id"));
        st.get(&sp, &st.u2).await.ok(StatusCode::OK);
        st.put_empty(&format!("{sp}/x"), &st.u2)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        st.put_empty(&format!("{sp}/x"), &st.admin)
            .await
            .ok(StatusCode::CREATED);
        // Remove all.
        let r = st.delete(&base, &st.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        assert_eq!(st.get(&base, &st.u1).await.json["tags"], json!([]));
        // Unknown resource.
        st.get("/v2.0/networks/nope/tags", &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.get("/v2.0/extensions/standard-attr-tag", &st.u1)
            .await
            .ok(StatusCode::OK);
    }
}

#[tokio::test]
async fn tags_on_security_groups() {
    for st in Stack::all().await {
        let g = st.security_group(&st.u1, "g").await;
        let id = s(&g, "id");
        let base = format!("/v2.0/security-groups/{id}/tags");
        st.put_empty(&format!("{base}/web"), &st.u1)
            .await
            .ok(StatusCode::CREATED);
        let r = st.get(&format!("/v2.0/security-groups/{id}"), &st.u1).await;
        assert_eq!(r.json["security_group"]["tags"], json!(["web"]));
        assert_eq!(
            st.ids(&st.u1, "security-groups", "tags=web").await,
            vec![id.clone()]
        );
        let r = st.get(&base, &st.u2).await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            "SecurityGroupNotFound"
        );
        let r = st.get("/v2.0/routers/nope/tags", &st.u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
    }
}
