//! `/v2.0/networks` and the version and extension documents, on every backend.

mod common;

use common::{s, Stack};
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_defaults_and_view() {
    for st in Stack::all().await {
        let n = st.network(&st.u1, "n1").await;
        assert_eq!(n["name"], "n1");
        assert_eq!(n["tenant_id"], st.p1.as_str());
        assert_eq!(n["project_id"], st.p1.as_str());
        assert_eq!(n["admin_state_up"], true);
        assert_eq!(n["shared"], false);
        assert_eq!(n["router:external"], false);
        assert_eq!(n["status"], "ACTIVE");
        assert_eq!(n["subnets"], json!([]));
        assert_eq!(n["tags"], json!([]));
        assert_eq!(n["description"], "");
        assert_eq!(n["revision_number"], 0);
        assert_eq!(n["port_security_enabled"], true);
        assert!(n["mtu"].as_i64().unwrap() > 0);
        assert!(n["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(n.get("provider:network_type").is_none(), "{n}");
        let id = s(&n, "id");
        let r = st.get(&format!("/v2.0/networks/{id}"), &st.admin).await;
        let v = &r.ok(StatusCode::OK)["network"];
        assert_eq!(v["provider:network_type"], "geneve");
        assert!(v["provider:segmentation_id"].as_i64().is_some(), "{v}");
        let r = st.anonymous(Method::GET, "/v2.0/networks").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn bulk_create_is_all_or_nothing() {
    for st in Stack::all().await {
        let r = st
            .post(
                "/v2.0/networks",
                &st.u1,
                json!({"networks": [{"name": "a"}, {"name": "b"}]}),
            )
            .await;
        let body = r.ok(StatusCode::CREATED);
        assert_eq!(body["networks"].as_array().unwrap().len(), 2);
        let r = st
            .post(
                "/v2.0/networks",
                &st.u1,
                json!({"networks": [{"name": "c"}, {"name": "d", "bogus": 1}]}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(
            st.ids(&st.u1, "networks", "").await.len(),
            2,
            "{}",
            st.label()
        );
    }
}

#[tokio::test]
async fn provider_attributes_are_admin_only_and_segments_unique() {
    for st in Stack::all().await {
        let r = st
            .post(
                "/v2.0/networks",
                &st.u1,
                json!({"network": {"name": "x", "provider:network_type": "vxlan"}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "PolicyNotAuthorized");
        let a = st
            .network_with(
                &st.admin,
                json!({"name": "v", "provider:network_type": "vxlan",
                       "provider:segmentation_id": 4242}),
            )
            .await;
        assert_eq!(a["provider:network_type"], "vxlan");
        assert_eq!(a["provider:segmentation_id"], 4242);
        assert!(a["provider:physical_network"].is_null());
        let r = st
            .post(
                "/v2.0/networks",
                &st.admin,
                json!({"network": {"name": "v2", "provider:network_type": "vxlan",
                                   "provider:segmentation_id": 4242}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "TunnelIdInUse");
        // Allocated ids are distinct.
        let b = st.network(&st.u1, "b").await;
        let c = st.network(&st.u1, "c").await;
        let mut segs = Vec::new();
        for n in [&b, &c] {
            let r = st
                .get(&format!("/v2.0/networks/{}", s(n, "id")), &st.admin)
                .await;
            segs.push(r.json["network"]["provider:segmentation_id"].clone());
        }
        let (sb, sc) = (segs[0].clone(), segs[1].clone());
        assert!(sb.is_i64() && sc.is_i64());
        assert_ne!(sb, sc);
        // Deleting frees the claimed id.
        let r = st
            .delete(&format!("/v2.0/networks/{}", s(&a, "id")), &st.admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        st.network_with(
            &st.admin,
            json!({"name": "v3", "provider:network_type": "vxlan",
                   "provider:segmentation_id": 4242}),
        )
        .await;
        // Unknown type.
        let r = st
            .post(
                "/v2.0/networks",
                &st.admin,
                json!({"network": {"provider:network_type": "bogus"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn shared_and_external_networks_are_visible_to_all() {
    for st in Stack::all().await {
        let own = st.network(&st.u1, "own").await;
        let shared = st
            .network_with(&st.admin, json!({"name": "sh", "shared": true}))
            .await;
        let ext = st
            .network_with(&st.admin, json!({"name": "ext", "router:external": true}))
            .await;
        let private = st.network(&st.admin, "private").await;
        let r = st
            .post(
                "/v2.0/networks",
                &st.u1,
                json!({"network": {"name": "x", "shared": true}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "PolicyNotAuthorized");
        let mut seen = st.ids(&st.u2, "networks", "").await;
        seen.sort();
        let mut want = vec![s(&shared, "id"), s(&ext, "id")];
        want.sort();
        assert_eq!(seen, want);
        let seen = st.ids(&st.u1, "networks", "").await;
        assert!(seen.contains(&s(&own, "id")));
        assert!(!seen.contains(&s(&private, "id")));
        assert_eq!(st.ids(&st.admin, "networks", "").await.len(), 4);
        // Another tenant's private network is 404, not 403.
        let r = st
            .get(&format!("/v2.0/networks/{}", s(&own, "id")), &st.u2)
            .await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NetworkNotFound");
        let r = st
            .put(
                &format!("/v2.0/networks/{}", s(&own, "id")),
                &st.u2,
                json!({"network": {"name": "z"}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = st
            .delete(&format!("/v2.0/networks/{}", s(&own, "id")), &st.u2)
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // A shared network can be seen but not changed by others.
        let r = st
            .put(
                &format!("/v2.0/networks/{}", s(&shared, "id")),
                &st.u2,
                json!({"network": {"name": "z"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn filters_fields_sort_and_pagination() {
    for st in Stack::all().await {
        let mut ids = Vec::new();
        for name in ["a", "b", "c", "d", "e"] {
            ids.push(s(&st.network(&st.u1, name).await, "id"));
        }
        let by_name = |names: &[&str]| {
            let mut v: Vec<String> = names
                .iter()
                .map(|n| ids[(n.as_bytes()[0] - b'a') as usize].clone())
                .collect();
            v.sort();
            v
        };
        let mut got = st.ids(&st.u1, "networks", "name=a&name=c").await;
        got.sort();
        assert_eq!(got, by_name(&["a", "c"]));
        assert_eq!(
            st.ids(&st.u1, "networks", "name=a&shared=False")
                .await
                .len(),
            1
        );
        assert!(st
            .ids(&st.u1, "networks", "name=a&shared=true")
            .await
            .is_empty());
        let r = st.get("/v2.0/networks?bogus=1", &st.u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // fields
        let r = st.get("/v2.0/networks?fields=id&fields=name", &st.u1).await;
        for n in r.ok(StatusCode::OK)["networks"].as_array().unwrap() {
            let keys: Vec<&String> = n.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 2, "{n}");
        }
        let r = st
            .get(&format!("/v2.0/networks/{}?fields=name", ids[0]), &st.u1)
            .await;
        assert_eq!(r.ok(StatusCode::OK)["network"], json!({"name": "a"}));
        // sort
        let r = st
            .get(
                "/v2.0/networks?sort_key=name&sort_dir=desc&fields=name",
                &st.u1,
            )
            .await;
        let names: Vec<&str> = r.json["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["e", "d", "c", "b", "a"]);
        let r = st.get("/v2.0/networks?sort_key=bogus", &st.u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // limit / marker / links
        let r = st
            .get("/v2.0/networks?sort_key=name&sort_dir=asc&limit=2", &st.u1)
            .await;
        let page = r.ok(StatusCode::OK)["networks"].as_array().unwrap().clone();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0]["name"], "a");
        let links = r.json["networks_links"].as_array().unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0]["rel"], "next");
        let href = links[0]["href"].as_str().unwrap();
        assert!(
            href.starts_with("http://test/network/v2.0/networks?"),
            "{href}"
        );
        let marker = s(&page[1], "id");
        assert!(href.contains(&format!("marker={marker}")), "{href}");
        let r = st
            .get(
                &format!("/v2.0/networks?sort_key=name&sort_dir=asc&limit=2&marker={marker}"),
                &st.u1,
            )
            .await;
        let page: Vec<&str> = r.json["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(page, ["c", "d"]);
        let rels: Vec<&str> = r.json["networks_links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].as_str().unwrap())
            .collect();
        assert_eq!(rels, ["next", "previous"]);
        let r = st.get("/v2.0/networks?limit=-1", &st.u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn update_and_read_only_attributes() {
    for st in Stack::all().await {
        let n = st.network(&st.u1, "n").await;
        let id = s(&n, "id");
        let path = format!("/v2.0/networks/{id}");
        let r = st
            .put(
                &path,
                &st.u1,
                json!({"network": {"name": "renamed", "description": "d", "admin_state_up": false}}),
            )
            .await;
        let v = &r.ok(StatusCode::OK)["network"];
        assert_eq!(v["name"], "renamed");
        assert_eq!(v["description"], "d");
        assert_eq!(v["admin_state_up"], false);
        assert_eq!(v["revision_number"], 1);
        assert_eq!(v["created_at"], n["created_at"]);
        for body in [
            json!({"network": {"id": "x"}}),
            json!({"network": {"tenant_id": "x"}}),
            json!({"network": {"provider:segmentation_id": 7}}),
            json!({"network": {"bogus": 7}}),
            json!({"network": {"name": 7}}),
            json!({"network": {"admin_state_up": "maybe"}}),
            json!({"netwrk": {"name": "x"}}),
            json!("not json"),
        ] {
            let r = st.put(&path, &st.u1, body.clone()).await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        let r = st
            .put(&path, &st.u1, json!({"network": {"shared": true}}))
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = st
            .post("/v2.0/networks", &st.u1, json!({"network": {"bogus": 1}}))
            .await;
        assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), "HTTPBadRequest");
        let r = st
            .post(
                "/v2.0/networks",
                &st.u1,
                json!({"network": {"project_id": st.p2}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Admins create for another project.
        let n2 = st
            .network_with(&st.admin, json!({"name": "for-p2", "project_id": st.p2}))
            .await;
        assert_eq!(n2["tenant_id"], st.p2.as_str());
        assert!(st.ids(&st.u2, "networks", "").await.contains(&s(&n2, "id")));
    }
}

#[tokio::test]
async fn delete_and_reader() {
    for st in Stack::all().await {
        let n = st.network(&st.u1, "n").await;
        let path = format!("/v2.0/networks/{}", s(&n, "id"));
        // The reader sees but may not change.
        let r = st.get(&path, &st.reader).await;
        r.ok(StatusCode::OK);
        let r = st
            .post(
                "/v2.0/networks",
                &st.reader,
                json!({"network": {"name": "x"}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "PolicyNotAuthorized");
        let r = st
            .put(&path, &st.reader, json!({"network": {"name": "x"}}))
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = st.delete(&path, &st.reader).await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = st.delete(&path, &st.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = st.get(&path, &st.u1).await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NetworkNotFound");
        let r = st.delete(&path, &st.u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn quota_exceeded_is_over_quota() {
    let cfg = strata_core::config::NetworkConfig {
        quota_network: 2,
        ..Default::default()
    };
    for st in Stack::all_with(cfg.clone()).await {
        st.network(&st.u1, "a").await;
        st.network(&st.u1, "b").await;
        let r = st
            .post("/v2.0/networks", &st.u1, json!({"network": {"name": "c"}}))
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "OverQuota");
        assert!(r.message().contains("network"), "{}", r.raw);
        // Bulk over the limit for another project creates nothing.
        let r = st
            .post(
                "/v2.0/networks",
                &st.u2,
                json!({"networks": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "OverQuota");
        assert!(st.ids(&st.u2, "networks", "").await.is_empty());
    }
}

#[tokio::test]
async fn versions_resources_and_extensions() {
    for st in Stack::all().await {
        let r = st.anonymous(Method::GET, "/network").await;
        let r = if r.status == StatusCode::OK {
            r
        } else {
            st.anonymous(Method::GET, "/network/").await
        };
        let v = &r.ok(StatusCode::OK)["versions"][0];
        assert_eq!(v["id"], "v2.0");
        assert_eq!(v["status"], "CURRENT");
        let r = st.get("/v2.0/", &st.u1).await;
        let r = if r.status == StatusCode::OK {
            r
        } else {
            st.get("/v2.0", &st.u1).await
        };
        let res = r.ok(StatusCode::OK)["resources"]
            .as_array()
            .unwrap()
            .clone();
        assert!(res.iter().any(|x| x["collection"] == "networks"));
        let r = st.get("/v2.0/extensions", &st.u1).await;
        let ext = r.ok(StatusCode::OK)["extensions"]
            .as_array()
            .unwrap()
            .clone();
        assert!(ext.iter().any(|e| e["alias"] == "quotas"));
        let r = st.get("/v2.0/extensions/provider", &st.u1).await;
        assert_eq!(r.ok(StatusCode::OK)["extension"]["alias"], "provider");
        let r = st.get("/v2.0/extensions/no-such-thing", &st.u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = st.get("/v2.0/no-such-collection", &st.u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
    }
}
