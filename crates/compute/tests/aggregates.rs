//! Host aggregates (`os-aggregates`): the views per microversion against Tempest's schemas,
//! create/show/update/delete and the host and metadata actions with Nova's refusals; an
//! aggregate's zone moving its hosts (zone list, services, servers' zone) and steering the
//! scheduler; the tenant isolation filter; membership mirrored into placement (`member_of`).

mod common;

use common::{Cloud, Resp, Stack};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const CREATE_KEYS: &[&str] = &[
    "availability_zone",
    "created_at",
    "deleted",
    "deleted_at",
    "id",
    "name",
    "updated_at",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn want(extra: &[&str]) -> BTreeSet<String> {
    CREATE_KEYS
        .iter()
        .chain(extra.iter())
        .map(|s| s.to_string())
        .collect()
}

async fn create(s: &Stack, body: Value) -> Resp {
    s.post("/os-aggregates", &s.admin, json!({ "aggregate": body }))
        .await
}

async fn action(s: &Stack, id: i64, body: Value) -> Resp {
    s.post(&format!("/os-aggregates/{id}/action"), &s.admin, body)
        .await
}

/// The aggregates of `host`'s resource provider in placement.
async fn provider_aggregates(s: &Stack, host: &str) -> BTreeSet<String> {
    let snap = s.svc.placement().unwrap().snapshot().await.unwrap();
    snap.providers
        .values()
        .find(|p| p.provider.name == host)
        .map(|p| p.aggregates.clone())
        .unwrap_or_default()
}

/// The providers placement offers `VCPU:1` from with `member_of=<aggregate>`.
async fn member_of(s: &Stack, aggregate: &str) -> BTreeSet<String> {
    let mut g = strata_placement::RequestGroup::default();
    g.resources.insert("VCPU".into(), 1);
    g.aggregates.any_of = vec![vec![aggregate.to_string()]];
    let req = strata_placement::CandidateRequest {
        groups: vec![g],
        ..Default::default()
    };
    let (found, snap) = s
        .svc
        .placement()
        .unwrap()
        .allocation_candidates(&req, strata_placement::Microversion(21))
        .await
        .unwrap();
    found
        .iter()
        .flat_map(|c| c.allocations.keys())
        .filter_map(|rp| snap.get(rp).map(|p| p.provider.name.clone()))
        .collect()
}

fn zones(r: &Resp) -> Vec<(String, bool)> {
    r.json["availabilityZoneInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| {
            (
                z["zoneName"].as_str().unwrap().to_string(),
                z["zoneState"]["available"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn service_zone(s: &Stack, host: &str) -> String {
    let r = s.get("/os-services", &s.admin).await;
    r.json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["host"] == host)
        .map(|x| x["zone"].as_str().unwrap().to_string())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_crud_actions_and_refusals() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        // Admin only.
        s.get("/os-aggregates", &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post("/os-aggregates", &s.u1, json!({"aggregate": {"name": "x"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Create: 200 without hosts and metadata; uuid from 2.41.
        let r = create(&s, json!({"name": "agg1"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let a = r.json["aggregate"].clone();
        assert_eq!(keys(&a), want(&[]), "{a}");
        assert!(a["id"].is_i64());
        assert_eq!(a["availability_zone"], Value::Null);
        assert_eq!(a["deleted"], false);
        let id = a["id"].as_i64().unwrap();
        let r = s
            .post_mv(
                "/os-aggregates",
                &s.admin,
                "2.41",
                json!({"aggregate": {"name": "agg-uuid", "availability_zone": "z41"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(keys(&r.json["aggregate"]), want(&["uuid"]));
        let id41 = r.json["aggregate"]["id"].as_i64().unwrap();
        // Refusals of create.
        let m = create(&s, json!({"name": "agg1"})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            "Aggregate agg1 already exists."
        );
        for bad in [
            json!({"name": ""}),
            json!({"name": "a".repeat(256)}),
            json!({"name": " lead"}),
            json!({"name": "x", "availability_zone": "a:b"}),
            json!({"name": "x", "availability_zone": ""}),
            json!({"name": "x", "other": 1}),
            json!({}),
        ] {
            create(&s, bad).await.assert_error(StatusCode::BAD_REQUEST);
        }
        // Show and list.
        let r = s.get(&format!("/os-aggregates/{id}"), &s.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(keys(&r.json["aggregate"]), want(&["hosts", "metadata"]));
        assert_eq!(r.json["aggregate"]["hosts"], json!([]));
        assert_eq!(r.json["aggregate"]["metadata"], json!({}));
        let r = s
            .get_mv(&format!("/os-aggregates/{id}"), &s.admin, "2.41")
            .await;
        assert!(r.json["aggregate"]["uuid"].is_string());
        let uuid = r.json["aggregate"]["uuid"].as_str().unwrap().to_string();
        s.get("/os-aggregates/-1", &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get("/os-aggregates/abc", &s.admin)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.get(&format!("/os-aggregates/{id}"), &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.get("/os-aggregates", &s.admin).await;
        let listed = r.json["aggregates"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{}", r.raw);
        assert_eq!(listed[1]["availability_zone"], "z41");
        assert_eq!(listed[1]["metadata"], json!({"availability_zone": "z41"}));
        // Update: name (surrounding spaces trimmed) and zone; updated_at set.
        let r = s
            .put_mv(
                &format!("/os-aggregates/{id}"),
                &s.admin,
                "2.1",
                json!({"aggregate": {"name": " agg1-new ", "availability_zone": "az1"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["aggregate"]["name"], "agg1-new");
        assert_eq!(r.json["aggregate"]["availability_zone"], "az1");
        assert!(r.json["aggregate"]["updated_at"].is_string());
        for bad in [
            json!({"aggregate": {}}),
            json!({"aggregate": {"availability_zone": null}}),
        ] {
            s.put_mv(&format!("/os-aggregates/{id}"), &s.admin, "2.1", bad)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        let m = s
            .put_mv(
                &format!("/os-aggregates/{id}"),
                &s.admin,
                "2.1",
                json!({"aggregate": {"name": "agg-uuid"}}),
            )
            .await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            "Aggregate agg-uuid already exists."
        );
        s.put_mv(
            "/os-aggregates/999",
            &s.admin,
            "2.1",
            json!({"aggregate": {"name": "n"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // add_host: the host's zone moves, placement learns the membership.
        let r = action(&s, id, json!({"add_host": {"host": "fake-1"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["aggregate"]["hosts"], json!(["fake-1"]));
        assert_eq!(keys(&r.json["aggregate"]), want(&["hosts", "metadata"]));
        let m = action(&s, id, json!({"add_host": {"host": "fake-1"}})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            format!("The aggregate {id} already has host fake-1.")
        );
        let m = action(&s, id, json!({"add_host": {"host": "nowhere"}})).await;
        assert_eq!(
            m.assert_error(StatusCode::NOT_FOUND),
            "Compute host nowhere could not be found."
        );
        action(&s, 999, json!({"add_host": {"host": "fake-1"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        action(&s, id, json!({"add_host": {"host": "bad/host"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        action(&s, id, json!({"nothing": {}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.post(
            &format!("/os-aggregates/{id}/action"),
            &s.u1,
            json!({"add_host": {"host": "fake-2"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(service_zone(&s, "fake-1").await, "az1");
        assert_eq!(service_zone(&s, "fake-2").await, "nova");
        let r = s.get("/os-availability-zone", &s.reader).await;
        let mut z = zones(&r);
        z.sort();
        assert_eq!(
            z,
            vec![("az1".to_string(), true), ("nova".to_string(), true)]
        );
        let r = s.get("/os-availability-zone/detail", &s.admin).await;
        let az1 = r.json["availabilityZoneInfo"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zoneName"] == "az1")
            .cloned()
            .unwrap();
        assert_eq!(keys(&az1["hosts"]), BTreeSet::from(["fake-1".to_string()]));
        assert_eq!(az1["hosts"]["fake-1"]["nova-compute"]["active"], true);
        assert!(provider_aggregates(&s, "fake-1").await.contains(&uuid));
        assert!(!provider_aggregates(&s, "fake-2").await.contains(&uuid));
        assert_eq!(
            member_of(&s, &uuid).await,
            BTreeSet::from(["fake-1".to_string()])
        );
        // A host in one zone cannot join another zone's aggregate.
        let m = action(&s, id41, json!({"add_host": {"host": "fake-1"}})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            format!(
                "Cannot add host to aggregate {id41}. Reason: One or more hosts already in \
                 availability zone(s) ['az1']."
            )
        );

        // set_metadata: null removes a key; a zone must be named.
        let r = action(
            &s,
            id,
            json!({"set_metadata": {"metadata": {"ssd": "true", "gpu": "no"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["aggregate"]["metadata"],
            json!({"availability_zone": "az1", "ssd": "true", "gpu": "no"})
        );
        let r = action(&s, id, json!({"set_metadata": {"metadata": {"gpu": null}}})).await;
        assert_eq!(
            r.json["aggregate"]["metadata"],
            json!({"availability_zone": "az1", "ssd": "true"})
        );
        let m = action(
            &s,
            id,
            json!({"set_metadata": {"metadata": {"availability_zone": null}}}),
        )
        .await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            format!(
                "Cannot update metadata of aggregate {id}. Reason: Aggregate agg1-new does not \
                 support empty named availability zone."
            )
        );
        for bad in [
            json!({"set_metadata": {"metadata": {"bad/key": "x"}}}),
            json!({"set_metadata": {"metadata": {"k": 1}}}),
            json!({"set_metadata": {}}),
        ] {
            action(&s, id, bad)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        // Moving the zone of a host without servers is fine.
        let r = action(
            &s,
            id,
            json!({"set_metadata": {"metadata": {"availability_zone": "az1b"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(service_zone(&s, "fake-1").await, "az1b");

        // Delete refuses while hosts remain.
        let m = s.delete(&format!("/os-aggregates/{id}"), &s.admin).await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            format!("Cannot remove host from aggregate {id}. Reason: Host aggregate is not empty.")
        );
        // remove_host.
        let r = action(&s, id, json!({"remove_host": {"host": "fake-1"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["aggregate"]["hosts"], json!([]));
        let m = action(&s, id, json!({"remove_host": {"host": "fake-1"}})).await;
        assert_eq!(
            m.assert_error(StatusCode::NOT_FOUND),
            format!("Cannot remove host fake-1 in aggregate {id}")
        );
        action(&s, id, json!({"remove_host": {"host": "nowhere"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(service_zone(&s, "fake-1").await, "nova");
        assert!(!provider_aggregates(&s, "fake-1").await.contains(&uuid));
        assert!(member_of(&s, &uuid).await.is_empty());
        let r = s.get("/os-availability-zone", &s.reader).await;
        assert_eq!(zones(&r), vec![("nova".to_string(), true)]);

        // Image cache (2.81): accepted; checked like Nova.
        let img = json!({"cache": [{"id": cloud.image}]});
        let r = s
            .post_mv(
                &format!("/os-aggregates/{id}/images"),
                &s.admin,
                "2.81",
                img.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.post_mv(
            &format!("/os-aggregates/{id}/images"),
            &s.admin,
            "2.80",
            img.clone(),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        s.post_mv(
            &format!("/os-aggregates/{id}/images"),
            &s.admin,
            "2.81",
            json!({"cache": [{"id": cloud.image}, {"id": cloud.image}]}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.post_mv("/os-aggregates/999/images", &s.admin, "2.81", img)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Delete: 200, then 404; ids are not reused.
        let r = s.delete(&format!("/os-aggregates/{id41}"), &s.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.raw.is_empty());
        s.get(&format!("/os-aggregates/{id41}"), &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("/os-aggregates/{id41}"), &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("/os-aggregates/{id}"), &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = create(&s, json!({"name": "agg3"})).await;
        assert!(
            r.json["aggregate"]["id"].as_i64().unwrap() > id41,
            "{}",
            r.raw
        );
        assert!(!s.changes("compute.aggregate").await.is_empty());
        drop(cloud);
    }
}

async fn boot_in(s: &Stack, cloud: &Cloud, token: &str, name: &str, extra: Value) -> String {
    s.boot(cloud, token, name, extra).await
}

async fn host_of(s: &Stack, id: &str) -> String {
    let r = s
        .wait_server(id, "ACTIVE", |r| r.json["server"]["status"] == "ACTIVE")
        .await;
    r.json["server"]["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_zones_and_isolation_steer_the_scheduler() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let r = create(&s, json!({"name": "fast", "availability_zone": "az-fast"})).await;
        let fast = r.json["aggregate"]["id"].as_i64().unwrap();
        let r = action(&s, fast, json!({"add_host": {"host": "fake-2"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Servers asking for the zone land only on its host; the others on the rest.
        for i in 0..2 {
            let id = boot_in(
                &s,
                &cloud,
                &s.u1,
                &format!("f{i}"),
                json!({"availability_zone": "az-fast"}),
            )
            .await;
            assert_eq!(host_of(&s, &id).await, "fake-2");
            let r = s.get_mv(&format!("/servers/{id}"), &s.u1, "latest").await;
            assert_eq!(r.json["server"]["OS-EXT-AZ:availability_zone"], "az-fast");
        }
        let slow = boot_in(
            &s,
            &cloud,
            &s.u1,
            "n0",
            json!({"availability_zone": "nova"}),
        )
        .await;
        assert_eq!(host_of(&s, &slow).await, "fake-1");
        let r = s
            .post(
                "/servers",
                &s.u1,
                json!({"server": {"name": "x", "imageRef": cloud.image, "flavorRef": "1",
                    "availability_zone": "az-none", "networks": [{"uuid": cloud.net}]}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // A zone change that would move servers is refused.
        let m = s
            .put_mv(
                &format!("/os-aggregates/{fast}"),
                &s.admin,
                "2.1",
                json!({"aggregate": {"availability_zone": "az-other"}}),
            )
            .await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            format!(
                "Cannot update aggregate {fast}. Reason: One or more hosts contain instances \
                 in this zone."
            )
        );
        // A host with servers joining a zone moves its servers' zone with it.
        let r = create(&s, json!({"name": "late", "availability_zone": "az-late"})).await;
        let late = r.json["aggregate"]["id"].as_i64().unwrap();
        let r = action(&s, late, json!({"add_host": {"host": "fake-1"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = s.get_mv(&format!("/servers/{slow}"), &s.u1, "latest").await;
        assert_eq!(r.json["server"]["OS-EXT-AZ:availability_zone"], "az-late");
        // AggregateMultiTenancyIsolation: fake-1 only takes p2's servers now.
        let r = action(
            &s,
            late,
            json!({"set_metadata": {"metadata": {"filter_tenant_id": s.p2}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let refused = boot_in(
            &s,
            &cloud,
            &s.u1,
            "iso-p1",
            json!({"availability_zone": "az-late"}),
        )
        .await;
        let r = s.wait_status(&refused, "ERROR").await;
        assert!(
            r.json["server"]["fault"]["message"]
                .as_str()
                .unwrap()
                .contains("No valid host"),
            "{}",
            r.raw
        );
        let r = s
            .post_mv(
                "/servers",
                &s.u2,
                "2.37",
                json!({"server": {"name": "iso-p2", "imageRef": cloud.image, "flavorRef": "1",
                    "availability_zone": "az-late", "networks": "none"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let p2 = r.json["server"]["id"].as_str().unwrap().to_string();
        assert_eq!(host_of(&s, &p2).await, "fake-1");
        drop(cloud);
    }
}
