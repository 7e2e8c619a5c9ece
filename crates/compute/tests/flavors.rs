//! Version discovery, microversion negotiation, bad input, and flavors with their extra specs
//! and access lists, on every backend.

mod common;

use common::Stack;
use http::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn version_documents() {
    for s in Stack::all().await {
        let r = s.raw(Method::GET, "/compute/", None, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let v = r.json["versions"].as_array().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["id"], "v2.0");
        assert_eq!(v[0]["status"], "SUPPORTED");
        assert_eq!(v[0]["links"][0]["href"], "http://test/compute/v2/");
        assert_eq!(v[1]["id"], "v2.1");
        assert_eq!(v[1]["status"], "CURRENT");
        assert_eq!(v[1]["min_version"], "2.1");
        assert_eq!(v[1]["version"], "2.96");
        assert_eq!(v[1]["links"][0]["rel"], "self");
        assert_eq!(v[1]["links"][0]["href"], "http://test/compute/v2.1/");
        for path in ["/compute/v2.1", "/compute/v2.1/"] {
            let r = s.raw(Method::GET, path, None, &[], None).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.raw);
            assert_eq!(r.json["version"]["id"], "v2.1");
            assert_eq!(r.json["version"]["min_version"], "2.1");
            assert_eq!(
                r.json["version"]["version"],
                format!("2.{}", strata_compute::MAX_VERSION)
            );
        }
    }
}

#[tokio::test]
async fn microversions_are_negotiated_and_echoed() {
    for s in Stack::all().await {
        // Absent: 2.1, echoed in both headers with Vary.
        let r = s.get("/flavors", &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.version(), Some("compute 2.1"));
        assert_eq!(r.headers["x-openstack-nova-api-version"], "2.1");
        let vary: Vec<&str> = r
            .headers
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            vary.iter().any(|v| v.contains("OpenStack-API-Version")
                && v.contains("X-OpenStack-Nova-API-Version")),
            "{vary:?}"
        );
        let r = s.get_mv("/flavors", &s.u1, "latest").await;
        assert_eq!(r.version(), Some("compute 2.96"));
        let r = s.get_mv("/flavors", &s.u1, "2.55").await;
        assert_eq!(r.version(), Some("compute 2.55"));
        assert_eq!(r.headers["x-openstack-nova-api-version"], "2.55");
        // The legacy header alone.
        let r = s
            .raw(
                Method::GET,
                "/compute/v2.1/flavors",
                Some(&s.u1),
                &[("x-openstack-nova-api-version", "2.10")],
                None,
            )
            .await;
        assert_eq!(r.version(), Some("compute 2.10"));
        // Out of range: 406 as computeFault; malformed: 400.
        for v in ["2.0", "2.97", "3.1"] {
            let r = s.get_mv("/flavors", &s.u1, v).await;
            let msg = r.assert_error(StatusCode::NOT_ACCEPTABLE);
            assert!(msg.contains("is not supported by the API"), "{msg}");
        }
        let r = s.get_mv("/flavors", &s.u1, "2.x").await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Unauthenticated: Keystone's 401.
        let r = s
            .raw(Method::GET, "/compute/v2.1/flavors", None, &[], None)
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED);
        // Unknown paths: Nova's 404 body.
        let r = s.get("/no-such-thing", &s.u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn project_id_in_urls() {
    for s in Stack::all().await {
        let r = s.get(&format!("/{}/flavors/1", s.p1), &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let self_href = r.json["flavor"]["links"][0]["href"].as_str().unwrap();
        assert_eq!(
            self_href,
            format!("http://test/compute/v2.1/{}/flavors/1", s.p1)
        );
        // Another project's id in the URL: 400.
        let r = s.get(&format!("/{}/flavors", s.p2), &s.u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn seeded_flavors_and_views() {
    for s in Stack::all().await {
        let r = s.get("/flavors", &s.u1).await;
        let names: Vec<&str> = r.json["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for n in [
            "m1.tiny",
            "m1.small",
            "m1.medium",
            "m1.large",
            "m1.xlarge",
            "m1.nano",
            "m1.micro",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        // The basic view: id, name, links only at 2.1.
        let f = &r.json["flavors"][0];
        assert_eq!(f.as_object().unwrap().len(), 3, "{f}");
        assert!(r.json.get("flavors_links").is_none());
        // Init is idempotent and does not resurrect deleted seeds.
        let r = s.delete("/flavors/5", &s.admin).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.svc.init().await.unwrap();
        s.get("/flavors/5", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        let r = s.get("/flavors/42", &s.u1).await;
        let f = &r.json["flavor"];
        assert_eq!(f["name"], "m1.nano");
        assert_eq!(f["ram"], 128);
        assert_eq!(f["vcpus"], 1);
        assert_eq!(f["disk"], 1);
        assert_eq!(f["swap"], "");
        assert_eq!(f["OS-FLV-EXT-DATA:ephemeral"], 0);
        assert_eq!(f["OS-FLV-DISABLED:disabled"], false);
        assert_eq!(f["os-flavor-access:is_public"], true);
        assert_eq!(f["rxtx_factor"], 1.0);
        assert!(f.get("description").is_none());
        assert!(f.get("extra_specs").is_none());
        assert_eq!(f["links"][0]["href"], "http://test/compute/v2.1/flavors/42");
        assert_eq!(f["links"][1]["rel"], "bookmark");
        assert_eq!(f["links"][1]["href"], "http://test/compute/flavors/42");
        let f = s.get_mv("/flavors/42", &s.u1, "2.55").await.json["flavor"].clone();
        assert_eq!(f["description"], Value::Null);
        assert!(f.get("extra_specs").is_none());
        let f = s.get_mv("/flavors/42", &s.u1, "2.61").await.json["flavor"].clone();
        assert_eq!(f["extra_specs"], json!({}));
        assert_eq!(f["swap"], "");
        let f = s.get_mv("/flavors/42", &s.u1, "2.75").await.json["flavor"].clone();
        assert_eq!(f["swap"], 0);
        s.get("/flavors/nope", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let msg = s
            .get("/flavors/nope", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(msg, "Flavor nope could not be found.");
    }
}

#[tokio::test]
async fn flavor_lists_filter_sort_and_page() {
    for s in Stack::all().await {
        let r = s.get("/flavors/detail?minRam=2048&minDisk=40", &s.u1).await;
        let names: Vec<&str> = r.json["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["m1.medium", "m1.large", "m1.xlarge"]);
        let r = s
            .get("/flavors/detail?sort_key=memory_mb&sort_dir=desc", &s.u1)
            .await;
        assert_eq!(r.json["flavors"][0]["name"], "m1.xlarge");
        assert_eq!(r.json["flavors"][6]["name"], "m1.nano");
        let r = s.get("/flavors?sort_key=memory_mb&limit=2", &s.u1).await;
        let page: Vec<&str> = r.json["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert_eq!(page, vec!["42", "84"]);
        let next = r.json["flavors_links"][0]["href"].as_str().unwrap();
        assert!(
            next.starts_with("http://test/compute/v2.1/flavors?"),
            "{next}"
        );
        assert!(
            next.contains("marker=84")
                && next.contains("limit=2")
                && next.contains("sort_key=memory_mb"),
            "{next}"
        );
        let r = s
            .get("/flavors?sort_key=memory_mb&limit=2&marker=84", &s.u1)
            .await;
        assert_eq!(r.json["flavors"][0]["id"], "1");
        for bad in [
            "minRam=x",
            "minDisk=1.5",
            "sort_key=bogus",
            "sort_dir=up",
            "limit=-1",
            "limit=x",
            "marker=nope",
        ] {
            let r = s.get(&format!("/flavors?{bad}"), &s.u1).await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
    }
}

#[tokio::test]
async fn flavor_create_update_delete() {
    for s in Stack::all().await {
        let body = json!({"flavor": {"name": "custom", "ram": 1024, "vcpus": 2, "disk": 10,
            "id": "c1", "swap": 512, "OS-FLV-EXT-DATA:ephemeral": 5, "rxtx_factor": 2.5}});
        // Members may not.
        let r = s.post("/flavors", &s.u1, body.clone()).await;
        let msg = r.assert_error(StatusCode::FORBIDDEN);
        assert!(
            msg.contains("os_compute_api:os-flavor-manage:create"),
            "{msg}"
        );
        let r = s.post("/flavors", &s.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let f = &r.json["flavor"];
        assert_eq!(f["id"], "c1");
        assert_eq!(f["swap"], 512);
        assert_eq!(f["OS-FLV-EXT-DATA:ephemeral"], 5);
        assert_eq!(f["rxtx_factor"], 2.5);
        assert_eq!(
            s.changes("compute.flavor")
                .await
                .iter()
                .filter(|c| c.id == "c1")
                .count(),
            1
        );
        // Duplicate id, then duplicate name: 409.
        let r = s.post("/flavors", &s.admin, body.clone()).await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "Flavor with ID c1 already exists."
        );
        let r = s
            .post(
                "/flavors",
                &s.admin,
                json!({"flavor": {"name": "custom", "ram": 1, "vcpus": 1, "disk": 0}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "Flavor with name custom already exists."
        );
        // Generated and integer ids; string numbers.
        let r = s
            .post(
                "/flavors",
                &s.admin,
                json!({"flavor": {"name": "gen", "ram": "256", "vcpus": "1", "disk": "0"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["flavor"]["id"].as_str().unwrap().len(), 36);
        assert_eq!(r.json["flavor"]["ram"], 256);
        let r = s
            .post(
                "/flavors",
                &s.admin,
                json!({"flavor": {"name": "num", "ram": 1, "vcpus": 1, "disk": 0, "id": 777}}),
            )
            .await;
        assert_eq!(r.json["flavor"]["id"], "777");
        // 2.55: description on create and update; not before.
        let r = s.post("/flavors", &s.admin, json!({"flavor": {"name": "d", "ram": 1, "vcpus": 1, "disk": 0, "description": "x"}})).await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(
            msg.contains("Additional properties are not allowed ('description' was unexpected)"),
            "{msg}"
        );
        let r = s.post_mv("/flavors", &s.admin, "2.55", json!({"flavor": {"name": "d", "ram": 1, "vcpus": 1, "disk": 0, "description": "first"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let id = r.json["flavor"]["id"].as_str().unwrap().to_string();
        assert_eq!(r.json["flavor"]["description"], "first");
        let r = s
            .put_mv(
                &format!("/flavors/{id}"),
                &s.admin,
                "2.55",
                json!({"flavor": {"description": "second"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["flavor"]["description"], "second");
        let r = s
            .put_mv(
                &format!("/flavors/{id}"),
                &s.admin,
                "2.55",
                json!({"flavor": {"name": "n"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .put_mv(
                &format!("/flavors/{id}"),
                &s.u1,
                "2.55",
                json!({"flavor": {"description": "x"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = s
            .call(
                Method::PUT,
                &format!("/flavors/{id}"),
                &s.admin,
                Some("2.54"),
                Some(json!({"flavor": {"description": "x"}})),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s
            .put_mv(
                "/flavors/nope",
                &s.admin,
                "2.55",
                json!({"flavor": {"description": "x"}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // Delete.
        s.delete("/flavors/c1", &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            s.delete("/flavors/c1", &s.admin).await.status,
            StatusCode::ACCEPTED
        );
        s.delete("/flavors/c1", &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get("/flavors/c1", &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn flavor_bodies_are_validated() {
    for s in Stack::all().await {
        let cases: Vec<(Value, &str)> = vec![
            (json!("{not json"), "Malformed request body"),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "extra": 1}}),
                "('extra' was unexpected)",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0}, "other": 1}),
                "('other' was unexpected)",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1}}),
                "'disk' is a required property",
            ),
            (json!({}), "'flavor' is a required property"),
            (json!({"flavor": "x"}), "is not of type 'object'"),
            (
                json!({"flavor": {"name": "x", "ram": "lots", "vcpus": 1, "disk": 0}}),
                "does not match",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 0}}),
                "less than the minimum of 1",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1.5, "vcpus": 1, "disk": 0}}),
                "is not of type",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": true, "disk": 0}}),
                "is not of type",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": -1}}),
                "less than the minimum of 0",
            ),
            (
                json!({"flavor": {"name": " x", "ram": 1, "vcpus": 1, "disk": 0}}),
                "does not match",
            ),
            (
                json!({"flavor": {"name": "", "ram": 1, "vcpus": 1, "disk": 0}}),
                "is too short",
            ),
            (
                json!({"flavor": {"name": "x".repeat(256), "ram": 1, "vcpus": 1, "disk": 0}}),
                "is too long",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "id": "a/b"}}),
                "does not match",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "id": true}}),
                "is not of type",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": 0}}),
                "minimum of 0",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": "maybe"}}),
                "is not one of",
            ),
        ];
        for (body, want) in cases {
            let r = s.post("/flavors", &s.admin, body.clone()).await;
            let msg = r.assert_error(StatusCode::BAD_REQUEST);
            assert!(msg.contains(want), "{body}: {msg}");
        }
        let r = s
            .raw(
                Method::POST,
                "/compute/v2.1/flavors",
                Some(&s.admin),
                &[("content-type", "text/plain")],
                Some(json!("{}")),
            )
            .await;
        r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Nothing was created.
        assert_eq!(
            s.get("/flavors?limit=1000", &s.admin).await.json["flavors"]
                .as_array()
                .unwrap()
                .len(),
            7
        );
    }
}

#[tokio::test]
async fn private_flavors_and_access() {
    for s in Stack::all().await {
        let r = s.post("/flavors", &s.admin, json!({"flavor": {"name": "priv", "ram": 64, "vcpus": 1, "disk": 0, "id": "p", "os-flavor-access:is_public": false}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["flavor"]["os-flavor-access:is_public"], false);
        let ids = |r: &common::Resp| -> Vec<String> {
            r.json["flavors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_string())
                .collect()
        };
        // Hidden from members; admins see it only with is_public=false/None.
        assert!(!ids(&s.get("/flavors", &s.u1).await).contains(&"p".into()));
        s.get("/flavors/p", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get("/flavors/p/os-extra_specs", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert!(!ids(&s.get("/flavors", &s.admin).await).contains(&"p".into()));
        assert_eq!(
            ids(&s.get("/flavors?is_public=false", &s.admin).await),
            vec!["p".to_string()]
        );
        assert_eq!(
            ids(&s.get("/flavors?is_public=None", &s.admin).await).len(),
            8
        );
        s.get("/flavors?is_public=perhaps", &s.admin)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // A member's is_public is ignored.
        assert!(!ids(&s.get("/flavors?is_public=None", &s.u1).await).contains(&"p".into()));
        assert_eq!(s.get("/flavors/p", &s.admin).await.status, StatusCode::OK);

        // Access list: admin only; empty; 404 for public flavors.
        s.get("/flavors/p/os-flavor-access", &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            s.get("/flavors/p/os-flavor-access", &s.admin).await.json,
            json!({"flavor_access": []})
        );
        let msg = s
            .get("/flavors/1/os-flavor-access", &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(msg, "Access list not available for public flavors.");

        let add = json!({"addTenantAccess": {"tenant": s.p1}});
        s.post("/flavors/p/action", &s.u1, add.clone())
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.post("/flavors/p/action", &s.admin, add.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json,
            json!({"flavor_access": [{"flavor_id": "p", "tenant_id": s.p1}]})
        );
        s.post("/flavors/p/action", &s.admin, add.clone())
            .await
            .assert_error(StatusCode::CONFLICT);
        s.post("/flavors/1/action", &s.admin, add.clone())
            .await
            .assert_error(StatusCode::CONFLICT);
        s.post("/flavors/nope/action", &s.admin, add.clone())
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.post(
            "/flavors/p/action",
            &s.admin,
            json!({"addTenantAccess": {}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.post(
            "/flavors/p/action",
            &s.admin,
            json!({"addTenantAccess": {"tenant": s.p1, "x": 1}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.post("/flavors/p/action", &s.admin, json!({"frobnicate": {}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);

        // Now p1 sees it (list, show, detail), p2 does not.
        assert!(ids(&s.get("/flavors", &s.u1).await).contains(&"p".into()));
        assert!(ids(&s.get("/flavors/detail", &s.reader).await).contains(&"p".into()));
        assert_eq!(s.get("/flavors/p", &s.u1).await.status, StatusCode::OK);
        s.get("/flavors/p", &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert!(!ids(&s.get("/flavors", &s.u2).await).contains(&"p".into()));

        let remove = json!({"removeTenantAccess": {"tenant": s.p1}});
        let r = s.post("/flavors/p/action", &s.admin, remove.clone()).await;
        assert_eq!(r.json, json!({"flavor_access": []}));
        s.post("/flavors/p/action", &s.admin, remove)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get("/flavors/p", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn extra_specs_crud() {
    for s in Stack::all().await {
        let base = "/flavors/1/os-extra_specs";
        assert_eq!(
            s.get(base, &s.reader).await.json,
            json!({"extra_specs": {}})
        );
        let body = json!({"extra_specs": {"hw:cpu_policy": "dedicated", "count": 2, "flag": true}});
        s.post(base, &s.u1, body.clone())
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.post(base, &s.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json, body);
        // Stored as strings, as Nova stores them.
        let r = s.get(base, &s.u1).await;
        assert_eq!(
            r.json,
            json!({"extra_specs": {"hw:cpu_policy": "dedicated", "count": "2", "flag": "True"}})
        );
        assert_eq!(
            s.get(&format!("{base}/count"), &s.u1).await.json,
            json!({"count": "2"})
        );
        let msg = s
            .get(&format!("{base}/nope"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(msg, "Flavor 1 has no extra specs with key nope.");
        // 2.61 shows them in the flavor.
        let f = s.get_mv("/flavors/1", &s.u1, "2.61").await.json["flavor"].clone();
        assert_eq!(f["extra_specs"]["hw:cpu_policy"], "dedicated");
        // Update one key.
        let r = s
            .call(
                Method::PUT,
                &format!("{base}/count"),
                &s.admin,
                None,
                Some(json!({"count": "3"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json, json!({"count": "3"}));
        let r = s
            .call(
                Method::PUT,
                &format!("{base}/count"),
                &s.admin,
                None,
                Some(json!({"other": "3"})),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Request body and URI mismatch"
        );
        let r = s
            .call(
                Method::PUT,
                &format!("{base}/count"),
                &s.admin,
                None,
                Some(json!({"count": "3", "b": "1"})),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Bad keys and values.
        for bad in [
            json!({"extra_specs": {"bad/key": "x"}}),
            json!({"extra_specs": {"k": null}}),
            json!({"extra_specs": {"k": "x".repeat(256)}}),
            json!({"extra_specs": "x"}),
            json!({"extra_specs": {}, "more": 1}),
        ] {
            s.post(base, &s.admin, bad.clone())
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        // 2.86 validates known namespaces.
        let r = s
            .post_mv(
                base,
                &s.admin,
                "2.86",
                json!({"extra_specs": {"hw:cpu_policy": "sometimes"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post_mv(
                base,
                &s.admin,
                "2.86",
                json!({"extra_specs": {"hw_rng:bogus": "1"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post_mv(
                base,
                &s.admin,
                "2.85",
                json!({"extra_specs": {"hw_rng:bogus": "1"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = s
            .post_mv(
                base,
                &s.admin,
                "2.86",
                json!({"extra_specs": {"hw_rng:allowed": "True", "custom:thing": "x"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Delete.
        s.delete(&format!("{base}/count"), &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.delete(&format!("{base}/count"), &s.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        s.delete(&format!("{base}/count"), &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get("/flavors/nope/os-extra_specs", &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn every_route_needs_a_token() {
    let s = Stack::new(strata_store::testing::TestDb::sqlite().await).await;
    let routes = [
        (Method::GET, "/flavors"),
        (Method::POST, "/flavors"),
        (Method::GET, "/flavors/detail"),
        (Method::GET, "/flavors/1"),
        (Method::PUT, "/flavors/1"),
        (Method::DELETE, "/flavors/1"),
        (Method::GET, "/flavors/1/os-extra_specs"),
        (Method::POST, "/flavors/1/os-extra_specs"),
        (Method::GET, "/flavors/1/os-extra_specs/k"),
        (Method::PUT, "/flavors/1/os-extra_specs/k"),
        (Method::DELETE, "/flavors/1/os-extra_specs/k"),
        (Method::GET, "/flavors/1/os-flavor-access"),
        (Method::POST, "/flavors/1/action"),
        (Method::GET, "/os-keypairs"),
        (Method::POST, "/os-keypairs"),
        (Method::GET, "/os-keypairs/k"),
        (Method::DELETE, "/os-keypairs/k"),
        (Method::GET, "/limits"),
        (Method::GET, "/os-availability-zone"),
        (Method::GET, "/os-availability-zone/detail"),
        (Method::GET, "/os-quota-sets/p"),
        (Method::PUT, "/os-quota-sets/p"),
        (Method::DELETE, "/os-quota-sets/p"),
        (Method::GET, "/os-quota-sets/p/defaults"),
        (Method::GET, "/os-quota-sets/p/detail"),
        (Method::GET, "/os-quota-class-sets/default"),
        (Method::PUT, "/os-quota-class-sets/default"),
    ];
    for (method, path) in routes {
        let body = (method == Method::POST || method == Method::PUT).then(|| json!({}));
        let r = s
            .raw(
                method.clone(),
                &format!("/compute/v2.1{path}"),
                None,
                &[],
                body.clone(),
            )
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED);
        let r = s
            .raw(
                method.clone(),
                &format!("/compute/v2.1{path}"),
                Some("bogus"),
                &[],
                body,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            r.raw
        );
    }
}

#[tokio::test]
async fn flavor_views_have_exactly_nova_keys() {
    let s = Stack::new(strata_store::testing::TestDb::sqlite().await).await;
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let base = [
        "OS-FLV-DISABLED:disabled",
        "OS-FLV-EXT-DATA:ephemeral",
        "disk",
        "id",
        "links",
        "name",
        "os-flavor-access:is_public",
        "ram",
        "rxtx_factor",
        "swap",
        "vcpus",
    ];
    for (mv, extra) in [
        ("2.1", vec![]),
        ("2.55", vec!["description"]),
        ("2.61", vec!["description", "extra_specs"]),
        ("2.96", vec!["description", "extra_specs"]),
    ] {
        let mut want: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        want.extend(extra.iter().map(|s| s.to_string()));
        want.sort();
        let r = s.get_mv("/flavors/1", &s.u1, mv).await;
        assert_eq!(keys(&r.json["flavor"]), want, "show at {mv}");
        let r = s.get_mv("/flavors/detail", &s.u1, mv).await;
        assert_eq!(keys(&r.json["flavors"][0]), want, "detail at {mv}");
        let r = s.get_mv("/flavors", &s.u1, mv).await;
        let basic = if mv == "2.1" { 3 } else { 4 };
        assert_eq!(
            r.json["flavors"][0].as_object().unwrap().len(),
            basic,
            "list at {mv}"
        );
    }
}
