//! Version discovery, microversions, policy, bad input, and the provider resources: providers
//! and trees, inventories, traits, aggregates, resource classes.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn root_and_microversions() {
    for s in Stack::all().await {
        let r = s.call(Method::GET, "/placement/", None, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let v = &r.json["versions"][0];
        assert_eq!(v["id"], "v1.0");
        assert_eq!(v["min_version"], "1.0");
        assert_eq!(v["max_version"], "1.39");
        assert_eq!(v["status"], "CURRENT");
        assert_eq!(v["links"], json!([{"rel": "self", "href": ""}]));
        assert_eq!(r.version(), Some("placement 1.0"));
        assert!(r.headers.get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .eq_ignore_ascii_case("openstack-api-version")));

        let r = s.get("/resource_providers", "1.14").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.version(), Some("placement 1.14"));
        assert!(
            r.headers.get("last-modified").is_none(),
            "no last-modified before 1.15"
        );
        let r = s.get("/resource_providers", "latest").await;
        assert_eq!(r.version(), Some("placement 1.39"));
        assert_eq!(r.headers["cache-control"], "no-cache");
        assert!(r.headers.get("last-modified").is_some());

        let r = s.get("/resource_providers", "1.40").await;
        r.assert_error(StatusCode::NOT_ACCEPTABLE, None);
        assert!(r.detail().contains("1.40"), "{}", r.raw);
        let r = s.get("/resource_providers", "2.0").await;
        r.assert_error(StatusCode::NOT_ACCEPTABLE, None);
        let r = s.get("/resource_providers", "1.x").await;
        r.assert_error(StatusCode::BAD_REQUEST, None);

        // Routes newer than the request's version are 404.
        let r = s.get("/traits", "1.5").await;
        r.assert_error(StatusCode::NOT_FOUND, None);
        let r = s.get("/traits", "1.6").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Codes appear from 1.23.
        let r = s
            .get(&format!("/resource_providers/{}", uuid()), "1.22")
            .await;
        assert!(r
            .assert_error(StatusCode::NOT_FOUND, None)
            .get("code")
            .is_none());
        let r = s
            .get(&format!("/resource_providers/{}", uuid()), "1.23")
            .await;
        r.assert_error(
            StatusCode::NOT_FOUND,
            Some("placement.resource_provider.not_found"),
        );
    }
}

#[tokio::test]
async fn policy_is_admin_or_service() {
    for s in Stack::all().await {
        let r = s
            .call(
                Method::GET,
                "/placement/resource_providers",
                None,
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
        for (path, method) in [
            ("/placement/resource_providers", Method::GET),
            ("/placement/resource_providers", Method::POST),
            (
                "/placement/allocation_candidates?resources=VCPU:1",
                Method::GET,
            ),
            ("/placement/traits", Method::GET),
            ("/placement/usages?project_id=x", Method::GET),
        ] {
            let member = s.member.clone();
            let body = (method == Method::POST).then(|| json!({"name": "x"}));
            let r = s
                .call(
                    method.clone(),
                    path,
                    Some(&member),
                    &[("openstack-api-version", "placement latest")],
                    body,
                )
                .await;
            r.assert_error(StatusCode::FORBIDDEN, Some("placement.undefined_code"));
            assert!(r.detail().contains("Policy does not allow"), "{}", r.raw);
        }
        // The service role may.
        let service = s.service.clone();
        let r = s
            .call(
                Method::POST,
                "/placement/resource_providers",
                Some(&service),
                &[("openstack-api-version", "placement latest")],
                Some(json!({"name": "by-nova"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    }
}

#[tokio::test]
async fn bad_bodies_are_400_in_placement_format() {
    for s in Stack::all().await {
        let rp = s.rp("cn1", None).await;
        for (path, body, needle) in [
            ("/resource_providers", json!("{nope"), "Malformed JSON"),
            (
                "/resource_providers",
                json!({"name": "a", "bogus": 1}),
                "'bogus' was unexpected",
            ),
            (
                "/resource_providers",
                json!({"name": 5}),
                "is not of type 'string'",
            ),
            (
                "/resource_providers",
                json!({}),
                "'name' is a required property",
            ),
            (
                "/resource_providers",
                json!({"name": "a", "uuid": "x"}),
                "is not a 'uuid'",
            ),
            ("/resource_providers", json!([1]), "is not of type 'object'"),
            (
                &format!("/resource_providers/{rp}/inventories"),
                json!({"resource_provider_generation": 0,
                       "inventories": {"VCPU": {"total": "8"}}}),
                "is not of type 'integer'",
            ),
            (
                &format!("/resource_providers/{rp}/inventories"),
                json!({"resource_provider_generation": 0,
                       "inventories": {"VCPU": {"total": 8, "colour": "red"}}}),
                "'colour' was unexpected",
            ),
            (
                &format!("/resource_providers/{rp}/inventories"),
                json!({"resource_provider_generation": 0,
                       "inventories": {"VCPU": {"total": 0}}}),
                "less than the minimum",
            ),
            (
                &format!("/resource_providers/{rp}/inventories"),
                json!({"inventories": {}}),
                "'resource_provider_generation' is a required property",
            ),
            (
                &format!("/allocations/{}", uuid()),
                json!({"allocations": {rp.clone(): {"resources": {"VCPU": 0}}},
                       "project_id": "p", "user_id": "u", "consumer_generation": null,
                       "consumer_type": "INSTANCE"}),
                "less than the minimum",
            ),
            (
                &format!("/allocations/{}", uuid()),
                json!({"allocations": {rp.clone(): {"resources": {"VCPU": 1}}},
                       "project_id": "p", "user_id": "u", "consumer_type": "INSTANCE"}),
                "'consumer_generation' is a required property",
            ),
        ] {
            let method = if path.contains("inventories") || path.starts_with("/allocations") {
                Method::PUT
            } else {
                Method::POST
            };
            let r = s.req(method, path, "latest", Some(body.clone())).await;
            r.assert_error(StatusCode::BAD_REQUEST, Some("placement.undefined_code"));
            assert!(r.detail().contains(needle), "{path} {body}: {}", r.raw);
        }
        // JSON is required.
        let admin = s.admin.clone();
        let r = s
            .call(
                Method::POST,
                "/placement/resource_providers",
                Some(&admin),
                &[
                    ("content-type", "text/plain"),
                    ("openstack-api-version", "placement latest"),
                ],
                Some(json!("{}")),
            )
            .await;
        r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
        // Unknown query parameters.
        let r = s.get("/resource_providers?colour=red", "latest").await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        assert!(r.detail().contains("'colour' was unexpected"), "{}", r.raw);
    }
}

#[tokio::test]
async fn provider_crud_and_trees() {
    for s in Stack::all().await {
        // Before 1.20, 201 with a location (absolute, as webob makes it) and no body.
        let r = s
            .post("/resource_providers", "1.19", json!({"name": "old"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert!(r.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("http://test/placement/resource_providers/"));
        let root = s.rp("cn", None).await;
        let r = s
            .get(&format!("/resource_providers/{root}"), "latest")
            .await;
        assert_eq!(r.json["name"], "cn");
        assert_eq!(r.json["generation"], 0);
        assert_eq!(r.json["root_provider_uuid"], root.as_str());
        assert!(r.json["parent_provider_uuid"].is_null());
        let rels: Vec<&str> = r.json["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].as_str().unwrap())
            .collect();
        assert_eq!(
            rels,
            [
                "self",
                "inventories",
                "usages",
                "aggregates",
                "traits",
                "allocations"
            ]
        );
        let r = s.get(&format!("/resource_providers/{root}"), "1.13").await;
        assert!(r.json.get("root_provider_uuid").is_none(), "{}", r.raw);

        // Duplicate names.
        let r = s
            .post("/resource_providers", "latest", json!({"name": "cn"}))
            .await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.duplicate_name"));

        // A tree: cn → numa0 → pf0.
        let numa0 = s.rp("numa0", Some(&root)).await;
        let pf0 = s.rp("pf0", Some(&numa0)).await;
        let other = s.rp("other", None).await;
        let r = s.get(&format!("/resource_providers/{pf0}"), "latest").await;
        assert_eq!(r.json["root_provider_uuid"], root.as_str());
        assert_eq!(r.json["parent_provider_uuid"], numa0.as_str());
        let r = s
            .get(&format!("/resource_providers?in_tree={pf0}"), "latest")
            .await;
        let mut names: Vec<&str> = r.json["resource_providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["cn", "numa0", "pf0"]);
        let r = s.get("/resource_providers?name=other", "latest").await;
        assert_eq!(r.json["resource_providers"][0]["uuid"], other.as_str());
        let r = s
            .get(&format!("/resource_providers?uuid={numa0}"), "latest")
            .await;
        assert_eq!(r.json["resource_providers"].as_array().unwrap().len(), 1);

        // Unknown parent; re-parenting before 1.37 refused, allowed from 1.37.
        let r = s
            .post(
                "/resource_providers",
                "latest",
                json!({"name": "orphan", "parent_provider_uuid": uuid()}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s
            .put(
                &format!("/resource_providers/{pf0}"),
                "1.36",
                json!({"name": "pf0", "parent_provider_uuid": root}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s
            .put(
                &format!("/resource_providers/{pf0}"),
                "1.37",
                json!({"name": "pf0-renamed", "parent_provider_uuid": other}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["root_provider_uuid"], other.as_str());
        assert_eq!(r.json["name"], "pf0-renamed");
        // A loop is refused.
        let r = s
            .put(
                &format!("/resource_providers/{other}"),
                "1.37",
                json!({"name": "other", "parent_provider_uuid": pf0}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);

        // Delete: refused with children, then allowed.
        let r = s
            .delete(&format!("/resource_providers/{other}"), "latest")
            .await;
        r.assert_error(
            StatusCode::CONFLICT,
            Some("placement.resource_provider.cannot_delete_parent"),
        );
        let r = s
            .delete(&format!("/resource_providers/{pf0}"), "latest")
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s
            .delete(&format!("/resource_providers/{other}"), "latest")
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s
            .get(&format!("/resource_providers/{other}"), "latest")
            .await;
        r.assert_error(
            StatusCode::NOT_FOUND,
            Some("placement.resource_provider.not_found"),
        );

        // Every change was recorded.
        let changes = s.store.changes_since(0, 10_000).await.unwrap();
        assert!(changes
            .iter()
            .any(|c| c.kind == "placement.resource_provider" && c.id == other));
    }
}

#[tokio::test]
async fn inventories_generations_and_in_use() {
    for s in Stack::all().await {
        let rp = s.rp("cn", None).await;
        let path = format!("/resource_providers/{rp}/inventories");
        let r = s
            .put(
                &path,
                "latest",
                json!({"resource_provider_generation": 0, "inventories": {
                    "VCPU": {"total": 8, "allocation_ratio": 2.0},
                    "MEMORY_MB": {"total": 1024, "reserved": 512, "max_unit": 512}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["resource_provider_generation"], 1);
        assert_eq!(r.json["inventories"]["VCPU"]["allocation_ratio"], 2.0);
        assert_eq!(r.json["inventories"]["VCPU"]["min_unit"], 1);
        assert_eq!(r.json["inventories"]["MEMORY_MB"]["max_unit"], 512);
        // A stale generation.
        let r = s
            .put(
                &path,
                "latest",
                json!({"resource_provider_generation": 0, "inventories": {}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.concurrent_update"));
        let r = s
            .put(
                &format!("{path}/VCPU"),
                "latest",
                json!({"resource_provider_generation": 0, "total": 4}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.concurrent_update"));
        // One class at a time.
        let r = s
            .put(
                &format!("{path}/VCPU"),
                "latest",
                json!({"resource_provider_generation": 1, "total": 16}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["total"], 16);
        assert_eq!(r.json["resource_provider_generation"], 2);
        let r = s
            .post(
                &path,
                "latest",
                json!({"resource_class": "DISK_GB", "resource_provider_generation": 2,
                       "total": 100}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = s.get(&format!("{path}/DISK_GB"), "latest").await;
        assert_eq!(r.json["total"], 100);
        // Validation: reserved above total, min above max, unknown class.
        for (body, needle) in [
            (json!({"VCPU": {"total": 4, "reserved": 5}}), "reserved"),
            (
                json!({"VCPU": {"total": 4, "min_unit": 3, "max_unit": 2}}),
                "min_unit",
            ),
            (
                json!({"CUSTOM_NOPE": {"total": 4}}),
                "No such resource class",
            ),
        ] {
            let g = s.generation(&rp).await;
            let r = s
                .put(
                    &path,
                    "latest",
                    json!({"resource_provider_generation": g, "inventories": body}),
                )
                .await;
            r.assert_error(StatusCode::BAD_REQUEST, None);
            assert!(r.detail().contains(needle), "{}", r.raw);
        }
        // reserved == total: allowed from 1.26 only.
        let g = s.generation(&rp).await;
        let eq = json!({"resource_provider_generation": g, "total": 4, "reserved": 4});
        let r = s.put(&format!("{path}/DISK_GB"), "1.25", eq.clone()).await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s.put(&format!("{path}/DISK_GB"), "1.26", eq).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);

        // In use: deleting or dropping VCPU is refused.
        let r = s
            .allocate(&uuid(), json!({rp.clone(): {"resources": {"VCPU": 2}}}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.delete(&format!("{path}/VCPU"), "latest").await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.inventory.inuse"));
        let r = s.delete(&path, "latest").await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.inventory.inuse"));
        let g = s.generation(&rp).await;
        let r = s
            .put(
                &path,
                "latest",
                json!({"resource_provider_generation": g,
                       "inventories": {"MEMORY_MB": {"total": 1024}}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.inventory.inuse"));
        // Deleting an unused class works; an absent one is 404.
        let r = s.delete(&format!("{path}/DISK_GB"), "latest").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.delete(&format!("{path}/DISK_GB"), "latest").await;
        r.assert_error(StatusCode::NOT_FOUND, None);
        // A provider with allocations cannot be deleted.
        let r = s
            .delete(&format!("/resource_providers/{rp}"), "latest")
            .await;
        r.assert_error(
            StatusCode::CONFLICT,
            Some("placement.resource_provider.inuse"),
        );
        // Usages show every inventory class.
        let r = s
            .get(&format!("/resource_providers/{rp}/usages"), "latest")
            .await;
        assert_eq!(r.json["usages"], json!({"VCPU": 2, "MEMORY_MB": 0}));
    }
}

#[tokio::test]
async fn traits_aggregates_and_classes() {
    for s in Stack::all().await {
        let rp = s.rp("cn", None).await;
        // Traits API.
        let r = s
            .req(Method::PUT, "/traits/CUSTOM_GOLD", "latest", None)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = s
            .req(Method::PUT, "/traits/CUSTOM_GOLD", "latest", None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.req(Method::PUT, "/traits/gold", "latest", None).await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s.get("/traits?name=startswith:CUSTOM_", "latest").await;
        assert_eq!(r.json["traits"], json!(["CUSTOM_GOLD"]));
        let r = s
            .get(
                "/traits?name=in:CUSTOM_GOLD,STORAGE_DISK_SSD,NOPE",
                "latest",
            )
            .await;
        assert_eq!(r.json["traits"], json!(["STORAGE_DISK_SSD", "CUSTOM_GOLD"]));
        let r = s.get("/traits/HW_CPU_X86_AVX2", "latest").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s.get("/traits/CUSTOM_NOPE", "latest").await;
        r.assert_error(StatusCode::NOT_FOUND, None);
        // Provider traits with generations.
        let tpath = format!("/resource_providers/{rp}/traits");
        let r = s
            .put(
                &tpath,
                "latest",
                json!({"traits": ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"],
                       "resource_provider_generation": 0}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["resource_provider_generation"], 1);
        let r = s
            .put(
                &tpath,
                "latest",
                json!({"traits": [], "resource_provider_generation": 0}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.concurrent_update"));
        let r = s
            .put(
                &tpath,
                "latest",
                json!({"traits": ["CUSTOM_NOPE"], "resource_provider_generation": 1}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        assert!(
            r.detail().contains("No such trait(s): CUSTOM_NOPE"),
            "{}",
            r.raw
        );
        let r = s.get("/traits?associated=true", "latest").await;
        assert_eq!(r.json["traits"], json!(["HW_CPU_X86_AVX2", "CUSTOM_GOLD"]));
        let r = s.delete("/traits/CUSTOM_GOLD", "latest").await;
        r.assert_error(StatusCode::CONFLICT, None);
        let r = s.delete("/traits/HW_CPU_X86_AVX2", "latest").await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s.delete(&tpath, "latest").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s.delete("/traits/CUSTOM_GOLD", "latest").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        // required filter on the provider list.
        s.traits(&rp, &["STORAGE_DISK_SSD"]).await;
        let r = s
            .get("/resource_providers?required=STORAGE_DISK_SSD", "latest")
            .await;
        assert_eq!(r.json["resource_providers"].as_array().unwrap().len(), 1);
        let r = s
            .get("/resource_providers?required=!STORAGE_DISK_SSD", "latest")
            .await;
        assert_eq!(r.json["resource_providers"].as_array().unwrap().len(), 0);
        let r = s
            .get("/resource_providers?required=CUSTOM_NOPE", "latest")
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);

        // Aggregates: a list before 1.19, with generations after.
        let apath = format!("/resource_providers/{rp}/aggregates");
        let (a1, a2) = (uuid(), uuid());
        let r = s.put(&apath, "1.1", json!([a1])).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json, json!({"aggregates": [a1]}));
        let g = s.generation(&rp).await;
        let r = s
            .put(
                &apath,
                "latest",
                json!({"aggregates": [a1, a2], "resource_provider_generation": g - 1}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.concurrent_update"));
        let r = s
            .put(
                &apath,
                "latest",
                json!({"aggregates": [a1, a2], "resource_provider_generation": g}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["resource_provider_generation"], g + 1);
        let r = s
            .get(
                &format!("/resource_providers?member_of=in:{a2},{}", uuid()),
                "latest",
            )
            .await;
        assert_eq!(r.json["resource_providers"].as_array().unwrap().len(), 1);
        let r = s
            .get(&format!("/resource_providers?member_of=!{a2}"), "latest")
            .await;
        assert_eq!(r.json["resource_providers"].as_array().unwrap().len(), 0);

        // Resource classes.
        let r = s.get("/resource_classes", "latest").await;
        let names: Vec<&str> = r.json["resource_classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(names.starts_with(&["VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE"]));
        let r = s
            .post(
                "/resource_classes",
                "latest",
                json!({"name": "CUSTOM_FPGA_X"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = s
            .post(
                "/resource_classes",
                "latest",
                json!({"name": "CUSTOM_FPGA_X"}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, None);
        let r = s
            .post("/resource_classes", "latest", json!({"name": "FPGA_X"}))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s
            .req(Method::PUT, "/resource_classes/CUSTOM_NEW", "1.7", None)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = s
            .req(Method::PUT, "/resource_classes/CUSTOM_NEW", "1.7", None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get("/resource_classes/CUSTOM_NEW", "latest").await;
        assert_eq!(r.json["name"], "CUSTOM_NEW");
        s.inventory(&rp, json!({"CUSTOM_FPGA_X": {"total": 2}}))
            .await;
        let r = s.delete("/resource_classes/CUSTOM_FPGA_X", "latest").await;
        r.assert_error(StatusCode::CONFLICT, None);
        let r = s.delete("/resource_classes/VCPU", "latest").await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s.delete("/resource_classes/CUSTOM_NEW", "latest").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    }
}
