//! Deferred delete: with `reclaim_instance_interval` set, `DELETE` soft-deletes (SOFT_DELETED,
//! the guest powered off), `restore` brings the server back to ACTIVE, `forceDelete` deletes
//! it at once, and the controller reclaims soft-deleted servers after the interval. With the
//! interval 0 (the default) `restore` is refused (409) and `forceDelete` is a plain delete.

mod common;

use common::{Cloud, Stack};
use http::StatusCode;
use serde_json::json;
use strata_compute::ComputeConfig;
use strata_store::testing::TestDb;

async fn stacks(reclaim: i64) -> Vec<Stack> {
    let mut out = Vec::new();
    for db in TestDb::all().await {
        let cfg = ComputeConfig {
            reclaim_instance_interval: reclaim,
            ..Default::default()
        };
        out.push(Stack::with_config(db, cfg).await);
    }
    out
}

async fn boot_active(s: &Stack, cloud: &Cloud, name: &str) -> String {
    let id = s.boot(cloud, &s.u1, name, json!({})).await;
    s.wait_server(&id, "ACTIVE", |r| {
        r.json["server"]["status"] == "ACTIVE"
            && r.json["server"]["OS-EXT-STS:task_state"].is_null()
    })
    .await;
    id
}

async fn act(s: &Stack, id: &str, token: &str, body: serde_json::Value) -> common::Resp {
    s.post(&format!("/servers/{id}/action"), token, body).await
}

/// The power the fake hypervisor holds the guest in.
fn guest_power(cloud: &Cloud, id: &str) -> Option<strata_agent_api::Power> {
    cloud
        .hosts
        .iter()
        .find_map(|h| h.guests().get(id).map(|g| g.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_delete_restore_and_force_delete() {
    for s in stacks(3600).await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "soft").await;
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.wait_status(&id, "SOFT_DELETED").await;
        assert_eq!(r.json["server"]["OS-EXT-STS:vm_state"], "soft-delete");
        // The guest is powered off, not removed; the owner still sees the server.
        s.wait_server(&id, "powered off", |r| {
            r.json["server"]["OS-EXT-STS:power_state"] == 4
        })
        .await;
        assert_eq!(
            guest_power(&cloud, &id),
            Some(strata_agent_api::Power::Shutdown)
        );
        assert_eq!(
            s.get(&format!("/servers/{id}"), &s.u1).await.status,
            StatusCode::OK
        );
        // Refusals: a reader, another project, a locked server.
        act(&s, &id, &s.reader, json!({"restore": null}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        act(&s, &id, &s.u2, json!({"restore": null}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Restore: ACTIVE again, the guest running.
        let r = act(&s, &id, &s.u1, json!({"restore": null})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_server(&id, "ACTIVE after restore", |r| {
            r.json["server"]["status"] == "ACTIVE"
                && r.json["server"]["OS-EXT-STS:task_state"].is_null()
                && r.json["server"]["OS-EXT-STS:power_state"] == 1
        })
        .await;
        assert_eq!(
            guest_power(&cloud, &id),
            Some(strata_agent_api::Power::Running)
        );
        let m = act(&s, &id, &s.u1, json!({"restore": null})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            format!("Cannot 'restore' instance {id} while it is in vm_state active")
        );
        let acts: Vec<String> = strata_compute::server_db::actions(&s.db.store, &id)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(acts, ["restore", "delete", "create"]);
        // Soft-deleted again, then force-deleted: gone at once.
        assert_eq!(
            s.delete(&format!("/servers/{id}"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        s.wait_status(&id, "SOFT_DELETED").await;
        let r = act(&s, &id, &s.u1, json!({"lock": null})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        act(&s, &id, &s.u1b, json!({"forceDelete": null}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let r = act(&s, &id, &s.u1, json!({"unlock": null})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = act(&s, &id, &s.u1, json!({"forceDelete": null})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_gone(&id).await;
        assert_eq!(guest_power(&cloud, &id), None);
        drop(cloud);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_deleted_servers_are_reclaimed_after_the_interval() {
    for s in stacks(1).await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "reclaimed").await;
        assert_eq!(
            s.delete(&format!("/servers/{id}"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        s.wait_status(&id, "SOFT_DELETED").await;
        // The controller's sweep deletes it once the interval has passed.
        s.wait_gone(&id).await;
        drop(cloud);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_interval_restore_is_refused_and_force_delete_deletes() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let nope = uuid::Uuid::new_v4().to_string();
        act(&s, &nope, &s.u1, json!({"restore": null}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        act(&s, &nope, &s.u1, json!({"forceDelete": null}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let id = boot_active(&s, &cloud, "plain").await;
        let m = act(&s, &id, &s.admin, json!({"restore": null})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            format!("Cannot 'restore' instance {id} while it is in vm_state active")
        );
        act(&s, &id, &s.reader, json!({"forceDelete": null}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // DELETE is immediate.
        let other = boot_active(&s, &cloud, "plain2").await;
        assert_eq!(
            s.delete(&format!("/servers/{other}"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        s.wait_gone(&other).await;
        let r = act(&s, &id, &s.u1, json!({"forceDelete": null})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_gone(&id).await;
        drop(cloud);
    }
}
