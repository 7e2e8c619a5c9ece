//! Allocations: capacity, consumer generations, the shapes by microversion, `POST
//! /allocations`, usages, the reshaper — and concurrent claims that must never over-commit,
//! from one process and from two sharing the database.

mod common;

use common::*;
use http::StatusCode;
use serde_json::json;
use strata_placement::{Claim, ConsumerGeneration, PlacementError};

#[tokio::test]
async fn claims_check_capacity_and_units() {
    for s in Stack::all().await {
        let rp = s.rp("cn", None).await;
        s.inventory(
            &rp,
            json!({"VCPU": {"total": 4, "reserved": 1, "allocation_ratio": 2.0},
                   "MEMORY_MB": {"total": 2048, "step_size": 256, "max_unit": 1024}}),
        )
        .await;
        // Capacity (4 - 1) * 2 = 6.
        let c1 = uuid();
        let r = s
            .allocate(&c1, json!({rp.clone(): {"resources": {"VCPU": 5}}}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s
            .allocate(&uuid(), json!({rp.clone(): {"resources": {"VCPU": 2}}}))
            .await;
        r.assert_error(StatusCode::CONFLICT, None);
        assert!(
            r.detail().contains(&format!(
                "Unable to allocate inventory: Unable to create allocation for 'VCPU' on \
                 resource provider '{rp}'. The requested amount would exceed the capacity."
            )),
            "{}",
            r.raw
        );
        let r = s
            .allocate(&uuid(), json!({rp.clone(): {"resources": {"VCPU": 1}}}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        // Step size and max_unit.
        for amount in [100, 2048] {
            let r = s
                .allocate(
                    &uuid(),
                    json!({rp.clone(): {"resources": {"MEMORY_MB": amount}}}),
                )
                .await;
            r.assert_error(StatusCode::CONFLICT, None);
            assert!(
                r.detail().contains("violate inventory constraints"),
                "{}",
                r.raw
            );
        }
        // A class without inventory, an unknown class, an unknown provider.
        let r = s
            .allocate(&uuid(), json!({rp.clone(): {"resources": {"DISK_GB": 1}}}))
            .await;
        r.assert_error(StatusCode::CONFLICT, None);
        let r = s
            .allocate(
                &uuid(),
                json!({rp.clone(): {"resources": {"CUSTOM_NOPE": 1}}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s
            .allocate(&uuid(), json!({uuid(): {"resources": {"VCPU": 1}}}))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        // Nothing of the refused claims was written.
        let r = s
            .get(&format!("/resource_providers/{rp}/usages"), "latest")
            .await;
        assert_eq!(
            r.json["usages"],
            json!({"VCPU": 6, "MEMORY_MB": 0}),
            "{}",
            r.raw
        );
        // Freeing makes room.
        let r = s.delete(&format!("/allocations/{c1}"), "latest").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.delete(&format!("/allocations/{c1}"), "latest").await;
        r.assert_error(StatusCode::NOT_FOUND, None);
        let r = s
            .allocate(&uuid(), json!({rp.clone(): {"resources": {"VCPU": 5}}}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    }
}

#[tokio::test]
async fn consumer_generations_and_shapes() {
    for s in Stack::all().await {
        let rp = s.rp("cn", None).await;
        s.inventory(
            &rp,
            json!({"VCPU": {"total": 8}, "MEMORY_MB": {"total": 4096}}),
        )
        .await;
        let c = uuid();
        let path = format!("/allocations/{c}");
        let body = |gen: serde_json::Value, vcpu: i64| {
            json!({"allocations": {rp.clone(): {"resources": {"VCPU": vcpu, "MEMORY_MB": 512}}},
                   "project_id": "proj", "user_id": "user", "consumer_generation": gen,
                   "consumer_type": "INSTANCE"})
        };
        let r = s.put(&path, "latest", body(json!(null), 1)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get(&path, "latest").await;
        assert_eq!(r.json["consumer_generation"], 1, "{}", r.raw);
        assert_eq!(r.json["project_id"], "proj");
        assert_eq!(r.json["consumer_type"], "INSTANCE");
        assert_eq!(r.json["allocations"][&rp]["resources"]["VCPU"], 1);
        assert!(r.json["allocations"][&rp]["generation"].is_i64());
        // Creating again as new, or with a stale generation: 409.
        let r = s.put(&path, "latest", body(json!(null), 2)).await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.concurrent_update"));
        let r = s.put(&path, "latest", body(json!(0), 2)).await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.concurrent_update"));
        let r = s.put(&path, "latest", body(json!(1), 2)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get(&path, "1.28").await;
        assert_eq!(r.json["consumer_generation"], 2);
        assert!(r.json.get("consumer_type").is_none());
        let r = s.get(&path, "1.11").await;
        assert!(r.json.get("project_id").is_none(), "{}", r.raw);
        // The provider's view.
        let r = s
            .get(&format!("/resource_providers/{rp}/allocations"), "latest")
            .await;
        assert_eq!(
            r.json["allocations"][&c]["resources"]["VCPU"], 2,
            "{}",
            r.raw
        );
        assert_eq!(r.json["allocations"][&c]["consumer_generation"], 2);
        // 1.0 list format, no owner fields; before 1.8 owner fields are unknown keys.
        let c0 = uuid();
        let r = s
            .put(
                &format!("/allocations/{c0}"),
                "1.0",
                json!({"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s
            .put(
                &format!("/allocations/{c0}"),
                "1.7",
                json!({"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}],
                       "project_id": "p", "user_id": "u"}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        // An empty dict is a safe delete from 1.28, refused before.
        let r = s
            .put(
                &path,
                "1.27",
                json!({"allocations": {}, "project_id": "proj", "user_id": "user"}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        let r = s
            .put(
                &path,
                "latest",
                json!({"allocations": {}, "project_id": "proj", "user_id": "user",
                       "consumer_generation": 2, "consumer_type": "INSTANCE"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get(&path, "latest").await;
        assert_eq!(r.json, json!({"allocations": {}}));
        // Changes were recorded for the consumer.
        let changes = s.store.changes_since(0, 10_000).await.unwrap();
        assert!(changes
            .iter()
            .any(|ch| ch.kind == "placement.allocation" && ch.id == c));
    }
}

#[tokio::test]
async fn post_allocations_is_all_or_nothing_and_usages_count() {
    for s in Stack::all().await {
        let rp = s.rp("cn", None).await;
        s.inventory(&rp, json!({"VCPU": {"total": 4}})).await;
        let (a, b) = (uuid(), uuid());
        let one = |n: i64, t: &str| {
            json!({"allocations": {rp.clone(): {"resources": {"VCPU": n}}},
                   "project_id": "proj", "user_id": "user", "consumer_generation": null,
                   "consumer_type": t})
        };
        // 3 + 2 > 4: neither lands.
        let r = s
            .post(
                "/allocations",
                "latest",
                json!({a.clone(): one(3, "INSTANCE"), b.clone(): one(2, "MIGRATION")}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, None);
        let r = s.get(&format!("/allocations/{a}"), "latest").await;
        assert_eq!(r.json["allocations"], json!({}));
        let r = s
            .post(
                "/allocations",
                "latest",
                json!({a.clone(): one(2, "INSTANCE"), b.clone(): one(2, "MIGRATION")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.post("/allocations", "1.12", json!({})).await;
        r.assert_error(StatusCode::NOT_FOUND, None);
        // Usages, before and after 1.38.
        let r = s.get("/usages?project_id=proj", "1.9").await;
        assert_eq!(r.json, json!({"usages": {"VCPU": 4}}), "{}", r.raw);
        let r = s.get("/usages?project_id=proj&user_id=other", "1.9").await;
        assert_eq!(r.json, json!({"usages": {}}));
        let r = s.get("/usages?project_id=proj", "latest").await;
        assert_eq!(
            r.json,
            json!({"usages": {"INSTANCE": {"consumer_count": 1, "VCPU": 2},
                              "MIGRATION": {"consumer_count": 1, "VCPU": 2}}}),
            "{}",
            r.raw
        );
        let r = s
            .get("/usages?project_id=proj&consumer_type=all", "latest")
            .await;
        assert_eq!(
            r.json,
            json!({"usages": {"all": {"consumer_count": 2, "VCPU": 4}}})
        );
        let r = s.get("/usages", "latest").await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
    }
}

#[tokio::test]
async fn reshaper_moves_inventory_and_allocations_together() {
    for s in Stack::all().await {
        let cn = s.rp("cn", None).await;
        s.inventory(&cn, json!({"VCPU": {"total": 8}, "VGPU": {"total": 2}}))
            .await;
        let c = uuid();
        let r = s
            .allocate(
                &c,
                json!({cn.clone(): {"resources": {"VCPU": 1, "VGPU": 1}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let gpu = s.rp("gpu0", Some(&cn)).await;
        let (gc, gg) = (s.generation(&cn).await, s.generation(&gpu).await);
        let r = s
            .post(
                "/reshaper",
                "latest",
                json!({
                    "inventories": {
                        cn.clone(): {"resource_provider_generation": gc,
                                     "inventories": {"VCPU": {"total": 8}}},
                        gpu.clone(): {"resource_provider_generation": gg,
                                      "inventories": {"VGPU": {"total": 2}}}},
                    "allocations": {c.clone(): {
                        "allocations": {cn.clone(): {"resources": {"VCPU": 1}},
                                        gpu.clone(): {"resources": {"VGPU": 1}}},
                        "project_id": "p", "user_id": "u", "consumer_generation": 1,
                        "consumer_type": "INSTANCE"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get(&format!("/allocations/{c}"), "latest").await;
        assert_eq!(
            r.json["allocations"][&gpu]["resources"]["VGPU"], 1,
            "{}",
            r.raw
        );
        // Leaving an allocation on removed inventory is refused.
        let (gc, gg) = (s.generation(&cn).await, s.generation(&gpu).await);
        let r = s
            .post(
                "/reshaper",
                "latest",
                json!({
                    "inventories": {
                        cn.clone(): {"resource_provider_generation": gc, "inventories": {}},
                        gpu.clone(): {"resource_provider_generation": gg,
                                      "inventories": {"VGPU": {"total": 2}}}},
                    "allocations": {}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT, Some("placement.inventory.inuse"));
    }
}

/// 20 claims of 1 VCPU race for a provider with room for 10: exactly 10 win, the rest get
/// Placement's capacity 409, and usage ends at 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_overcommit() {
    for s in Stack::all().await {
        let rp = s.rp("cn", None).await;
        s.inventory(&rp, json!({"VCPU": {"total": 10}})).await;
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let app = s.app.clone();
            let admin = s.admin.clone();
            let rp = rp.clone();
            tasks.push(tokio::spawn(async move {
                call(
                    &app,
                    http::Method::PUT,
                    &format!("/placement/allocations/{}", uuid()),
                    Some(&admin),
                    &[("openstack-api-version", "placement latest")],
                    Some(json!({"allocations": {rp: {"resources": {"VCPU": 1}}},
                                "project_id": "p", "user_id": "u",
                                "consumer_generation": null, "consumer_type": "INSTANCE"})),
                )
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let r = t.await.unwrap();
            match r.status {
                StatusCode::NO_CONTENT => ok += 1,
                StatusCode::CONFLICT => {
                    assert!(r.detail().contains("exceed the capacity"), "{}", r.raw)
                }
                other => panic!("{}: unexpected {other}: {}", s.label, r.raw),
            }
        }
        assert_eq!(ok, 10, "{}", s.label);
        let r = s
            .get(&format!("/resource_providers/{rp}/usages"), "latest")
            .await;
        assert_eq!(r.json["usages"]["VCPU"], 10, "{}", s.label);
    }
}

/// The same race through the in-process API from two services with their own pools on one
/// database — two server processes — with 2 VCPUs per claim on room for 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_racing_in_process_claims() {
    for s in Stack::all().await {
        let rp = s.rp("cn", None).await;
        s.inventory(&rp, json!({"VCPU": {"total": 10}})).await;
        let other = s.second_process().await;
        let mut tasks = Vec::new();
        for i in 0..12 {
            let svc = if i % 2 == 0 {
                s.svc.clone()
            } else {
                other.clone()
            };
            let rp = rp.clone();
            tasks.push(tokio::spawn(async move {
                let claim = Claim {
                    project_id: "p".into(),
                    user_id: "u".into(),
                    consumer_type: Some("INSTANCE".into()),
                    allocations: [(rp, [("VCPU".to_string(), 2)].into())].into(),
                };
                svc.claim(&uuid(), claim, ConsumerGeneration::New).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(gen) => {
                    assert_eq!(gen, Some(1));
                    ok += 1
                }
                Err(PlacementError { status, .. }) => assert_eq!(status, StatusCode::CONFLICT),
            }
        }
        assert_eq!(ok, 5, "{}", s.label);
        let snap = s.svc.snapshot().await.unwrap();
        assert_eq!(snap.providers[&rp].used["VCPU"], 10, "{}", s.label);
    }
}
