//! Moves of servers through the API, carried out by the lifecycle controller and in-process
//! node agents on fake hosts: resize with confirm and revert (allocations held by the
//! migration for the source and by the instance for the destination), cold and live
//! migration, `os-migrations` and a server's migrations, shelve / offload / unshelve, Nova's
//! 400/403/404/409s, and a restart of the compute service in the middle of a resize.

mod common;

use common::{Cloud, Resp, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use strata_agent_api::Power;
use strata_compute::ComputeConfig;

type Allocs = BTreeMap<String, BTreeMap<String, i64>>;

async fn act(s: &Stack, id: &str, token: &str, body: Value) -> Resp {
    s.post(&format!("/servers/{id}/action"), token, body).await
}

async fn act_mv(s: &Stack, id: &str, token: &str, mv: &str, body: Value) -> Resp {
    s.post_mv(&format!("/servers/{id}/action"), token, mv, body)
        .await
}

fn accepted(r: &Resp) {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    assert!(r.raw.is_empty(), "{}", r.raw);
}

/// Waits for `status` with no task left.
async fn settle(s: &Stack, id: &str, status: &str) -> Resp {
    s.wait_server(id, status, |r| {
        r.json["server"]["status"] == status && r.json["server"]["OS-EXT-STS:task_state"].is_null()
    })
    .await
}

/// Polls `$body` (an expression giving an `Option`) until it is `Some`, waking on store
/// changes; panics after 30 s.
macro_rules! wait_for {
    ($s:expr, $what:expr, $body:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = $body {
                break v;
            }
            assert!(Instant::now() < deadline, "never {}", $what);
            let rev = $s.db.store.current_revision().await.unwrap();
            $s.db
                .store
                .watch(rev, Duration::from_millis(200))
                .await
                .unwrap();
        }
    }};
}

async fn server(s: &Stack, id: &str) -> Value {
    s.get_mv(&format!("/servers/{id}"), &s.admin, "latest")
        .await
        .json["server"]
        .clone()
}

async fn host_of(s: &Stack, id: &str) -> String {
    server(s, id).await["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The fake hypervisor of `host` (`fake-N`).
fn hv<'a>(cloud: &'a Cloud, host: &str) -> &'a strata_agent::FakeHypervisor {
    let n: usize = host.trim_start_matches("fake-").parse().unwrap();
    &cloud.hosts[n - 1]
}

/// The root provider of `host`.
async fn rp(s: &Stack, host: &str) -> String {
    strata_compute::hosts::nodes(&s.db.store)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.host == host)
        .unwrap()
        .id
}

async fn allocs(s: &Stack, consumer: &str) -> Allocs {
    s.svc
        .placement()
        .unwrap()
        .consumer_allocations(consumer)
        .await
        .unwrap()
}

fn res(vcpu: i64, ram: i64, disk: i64) -> BTreeMap<String, i64> {
    [
        ("VCPU".to_string(), vcpu),
        ("MEMORY_MB".to_string(), ram),
        ("DISK_GB".to_string(), disk),
    ]
    .into()
}

/// m1.tiny ("1") and m1.small ("2").
fn tiny() -> BTreeMap<String, i64> {
    res(1, 512, 1)
}
fn small() -> BTreeMap<String, i64> {
    res(1, 2048, 20)
}

/// The server's last move as its document holds it.
async fn last_move(s: &Stack, id: &str) -> strata_compute::server::Move {
    strata_compute::server_db::get(&s.db.store, id)
        .await
        .unwrap()
        .unwrap()
        .migration
        .expect("a move")
}

/// The names of the server's actions, oldest first, with their events and results.
async fn actions(s: &Stack, id: &str) -> Vec<(String, Vec<(String, Option<String>)>)> {
    let mut out: Vec<_> = strata_compute::server_db::actions(&s.db.store, id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.action,
                a.events
                    .into_iter()
                    .map(|e| (e.event, e.result))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    out.reverse();
    out
}

/// Every allocation in placement: consumer → provider → resources.
async fn all_allocations(s: &Stack) -> BTreeMap<String, Allocs> {
    let snap = s.svc.placement().unwrap().snapshot().await.unwrap();
    let mut out: BTreeMap<String, Allocs> = BTreeMap::new();
    let mut c = s.db.store.pool().acquire().await.unwrap();
    for rp in snap.providers.keys() {
        let by_consumer = strata_placement::db::provider_allocations(&mut c, rp)
            .await
            .unwrap();
        for (consumer, r) in by_consumer {
            out.entry(consumer).or_default().insert(rp.clone(), r);
        }
    }
    out
}

async fn boot_active(s: &Stack, cloud: &Cloud, name: &str, flavor: &str) -> String {
    let id = s
        .boot(cloud, &s.u1, name, json!({ "flavorRef": flavor }))
        .await;
    settle(s, &id, "ACTIVE").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_lands_on_the_other_host_and_confirm_keeps_the_destination() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let id = boot_active(&s, &cloud, "vm1", "1").await;
        let source = host_of(&s, &id).await;
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, &source).await, tiny())].into()
        );

        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        let r = settle(&s, &id, "VERIFY_RESIZE").await;
        let v = &r.json["server"];
        let dest = v["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
        assert_ne!(dest, source, "{}", s.label());
        assert_eq!(v["OS-EXT-STS:vm_state"], "resized");
        // The view follows the new flavor.
        assert_eq!(v["flavor"]["original_name"], "m1.small", "{}", r.raw);
        assert_eq!(v["flavor"]["ram"], 2048);
        let old = s.get_mv(&format!("/servers/{id}"), &s.u1, "2.46").await;
        assert_eq!(old.json["server"]["flavor"]["id"], "2", "{}", old.raw);
        // The new flavor is the instance's on the destination, the old one the migration's on
        // the source.
        let m = last_move(&s, &id).await;
        assert_eq!(m.status, "finished");
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, &dest).await, small())].into()
        );
        assert_eq!(
            allocs(&s, &m.uuid).await,
            [(rp(&s, &source).await, tiny())].into()
        );
        // Both hosts have a guest: the source's stopped, the destination's running.
        assert_eq!(hv(&cloud, &source).guests()[&id].0, Power::Shutdown);
        assert_eq!(hv(&cloud, &dest).guests()[&id].0, Power::Running);
        // The migration, as os-migrations shows it.
        let l = s
            .get_mv(
                &format!("/os-migrations?instance_uuid={id}"),
                &s.admin,
                "2.80",
            )
            .await;
        assert_eq!(l.status, StatusCode::OK, "{}", l.raw);
        let row = &l.json["migrations"][0];
        assert_eq!(row["status"], "finished", "{}", l.raw);
        assert_eq!(row["migration_type"], "resize");
        assert_eq!(row["source_compute"], source.as_str());
        assert_eq!(row["dest_compute"], dest.as_str());
        assert_eq!(row["old_instance_type_id"], 1);
        assert_eq!(row["new_instance_type_id"], 2);
        assert_eq!(row["uuid"], m.uuid.as_str());
        assert_eq!(row["id"], m.id);
        assert_eq!(row["user_id"], s.u1_id.as_str());
        assert!(row.get("links").is_none(), "{}", l.raw);

        // Confirm: 204, then ACTIVE with only the destination's guest and allocation.
        let c = act(&s, &id, &s.u1, json!({"confirmResize": null})).await;
        assert_eq!(c.status, StatusCode::NO_CONTENT, "{}", c.raw);
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], dest.as_str());
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, &dest).await, small())].into()
        );
        assert!(allocs(&s, &m.uuid).await.is_empty());
        wait_for!(
            s,
            "the source's guest gone",
            (!hv(&cloud, &source).guests().contains_key(&id)).then_some(())
        );
        assert_eq!(last_move(&s, &id).await.status, "confirmed");
        let acts = actions(&s, &id).await;
        let names: Vec<&str> = acts.iter().map(|a| a.0.as_str()).collect();
        assert_eq!(names, ["create", "resize", "confirmResize"], "{acts:?}");
        for (name, events) in &acts {
            assert!(
                events.iter().all(|e| e.1.as_deref() == Some("Success")),
                "{name}: {events:?}"
            );
        }
        let resize_events: Vec<&str> = acts[1].1.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            resize_events,
            [
                "conductor_migrate_server",
                "compute_prep_resize",
                "compute_resize_instance",
                "compute_finish_resize"
            ]
        );
        // Nothing else holds anything.
        let all = all_allocations(&s).await;
        assert_eq!(all.len(), 1, "{all:?}");
        // Not resized any more: confirm and revert are 409s.
        let c = act(&s, &id, &s.u1, json!({"confirmResize": null})).await;
        let msg = c.assert_error(StatusCode::CONFLICT).to_string();
        assert_eq!(
            msg,
            format!("Cannot 'confirmResize' instance {id} while it is in vm_state active")
        );
        let c = act(&s, &id, &s.u1, json!({"revertResize": null})).await;
        c.assert_error(StatusCode::CONFLICT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_returns_to_the_source_with_the_old_flavor_and_power_state() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        // A stopped server stays stopped through resize and revert.
        let id = boot_active(&s, &cloud, "stopped", "1").await;
        let source = host_of(&s, &id).await;
        accepted(&act(&s, &id, &s.u1, json!({"os-stop": null})).await);
        settle(&s, &id, "SHUTOFF").await;
        let before = all_allocations(&s).await;
        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        let r = settle(&s, &id, "VERIFY_RESIZE").await;
        let dest = r.json["server"]["OS-EXT-SRV-ATTR:host"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(r.json["server"]["OS-EXT-STS:power_state"], 4, "{}", r.raw);
        assert_eq!(hv(&cloud, &dest).guests()[&id].0, Power::Shutdown);
        let m = last_move(&s, &id).await;
        accepted(&act(&s, &id, &s.u1, json!({"revertResize": null})).await);
        let r = settle(&s, &id, "SHUTOFF").await;
        let v = &r.json["server"];
        assert_eq!(v["OS-EXT-SRV-ATTR:host"], source.as_str(), "{}", r.raw);
        assert_eq!(v["flavor"]["original_name"], "m1.tiny");
        assert_eq!(v["OS-EXT-STS:vm_state"], "stopped");
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, &source).await, tiny())].into()
        );
        assert!(allocs(&s, &m.uuid).await.is_empty());
        assert_eq!(all_allocations(&s).await, before, "{}", s.label());
        wait_for!(
            s,
            "the destination's guest gone",
            (!hv(&cloud, &dest).guests().contains_key(&id)).then_some(())
        );
        assert_eq!(hv(&cloud, &source).guests()[&id].0, Power::Shutdown);
        assert_eq!(last_move(&s, &id).await.status, "reverted");

        // An active server comes back running.
        let id2 = boot_active(&s, &cloud, "active", "1").await;
        let src2 = host_of(&s, &id2).await;
        accepted(&act(&s, &id2, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        settle(&s, &id2, "VERIFY_RESIZE").await;
        accepted(&act(&s, &id2, &s.u1, json!({"revertResize": null})).await);
        let r = settle(&s, &id2, "ACTIVE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], src2.as_str());
        assert_eq!(r.json["server"]["OS-EXT-STS:power_state"], 1);
        assert_eq!(hv(&cloud, &src2).guests()[&id2].0, Power::Running);
        let names: Vec<String> = actions(&s, &id2).await.into_iter().map(|a| a.0).collect();
        assert_eq!(names, ["create", "resize", "revertResize"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_refusals_are_novas() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let id = boot_active(&s, &cloud, "vm", "2").await;
        let resize = |f: Value| json!({ "resize": { "flavorRef": f } });
        // Body checks.
        let r = act(&s, &id, &s.u1, resize(json!(""))).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &id, &s.u1, json!({"resize": {}})).await;
        assert!(r
            .assert_error(StatusCode::BAD_REQUEST)
            .contains("'flavorRef' is a required property"));
        // Same flavor, unknown flavor, a smaller disk.
        let r = act(&s, &id, &s.u1, resize(json!("2"))).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "When resizing, instances must change flavor!"
        );
        let r = act(&s, &id, &s.u1, resize(json!("999"))).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Flavor 999 could not be found."
        );
        let r = act(&s, &id, &s.u1, resize(json!(1))).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Server disk was unable to be resized because: Unable to resize disk down."
        );
        // Another project's server is not found; a reader may not resize.
        let r = act(&s, &id, &s.u2, resize(json!("3"))).await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = act(&s, &id, &s.reader, resize(json!("3"))).await;
        r.assert_error(StatusCode::FORBIDDEN);
        // Quota: the cores the resize adds.
        let r = s
            .call(
                Method::PUT,
                &format!("/os-quota-sets/{}", s.p1),
                &s.admin,
                None,
                Some(json!({"quota_set": {"cores": 1}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = act(&s, &id, &s.u1, resize(json!("3"))).await;
        assert_eq!(
            r.assert_error(StatusCode::FORBIDDEN),
            "Quota exceeded for cores: Requested 1, but already used 1 of 1 cores"
        );
        let r = s
            .call(
                Method::PUT,
                &format!("/os-quota-sets/{}", s.p1),
                &s.admin,
                None,
                Some(json!({"quota_set": {"cores": 20}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Locked: the owner is refused.
        accepted(&act(&s, &id, &s.u1, json!({"lock": null})).await);
        let r = act(&s, &id, &s.u1, resize(json!("3"))).await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            format!("Instance {id} is locked")
        );
        accepted(&act(&s, &id, &s.u1, json!({"unlock": null})).await);
        // Paused: not in a state that resizes.
        accepted(&act(&s, &id, &s.u1, json!({"pause": null})).await);
        settle(&s, &id, "PAUSED").await;
        let r = act(&s, &id, &s.u1, resize(json!("3"))).await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            format!("Cannot 'resize' instance {id} while it is in vm_state paused")
        );
        // Not resized: confirm and revert are 409s; cold migration is for admins.
        let r = act(&s, &id, &s.u1, json!({"confirmResize": null})).await;
        r.assert_error(StatusCode::CONFLICT);
        let r = act(&s, &id, &s.u1, json!({"revertResize": null})).await;
        r.assert_error(StatusCode::CONFLICT);
        let r = act(&s, &id, &s.u1, json!({"migrate": null})).await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = act(
            &s,
            &id,
            &s.u1,
            json!({"os-migrateLive": {"host": null,
            "block_migration": false, "disk_over_commit": false}}),
        )
        .await;
        r.assert_error(StatusCode::FORBIDDEN);
        // Nothing moved, nothing recorded as a migration.
        assert!(strata_compute::server_db::get(&s.db.store, &id)
            .await
            .unwrap()
            .unwrap()
            .migration
            .is_none());
        let l = s.get("/os-migrations", &s.admin).await;
        assert_eq!(l.json["migrations"], json!([]), "{}", l.raw);
        drop(cloud);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_host_a_resize_finds_no_host_unless_it_may_stay() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "alone", "1").await;
        let before = all_allocations(&s).await;
        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        let m = wait_for!(s, "the migration in error", {
            let m = last_move(&s, &id).await;
            (m.status == "error").then_some(m)
        });
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["flavor"]["original_name"], "m1.tiny");
        assert_eq!(all_allocations(&s).await, before);
        assert!(allocs(&s, &m.uuid).await.is_empty());
        let acts = strata_compute::server_db::actions(&s.db.store, &id)
            .await
            .unwrap();
        let resize = acts.iter().find(|a| a.action == "resize").unwrap();
        assert_eq!(resize.message.as_deref(), Some("Error"));
        let ev = &resize.events[0];
        assert_eq!(ev.event, "conductor_migrate_server");
        assert_eq!(ev.result.as_deref(), Some("Error"));
        assert!(ev
            .traceback
            .as_deref()
            .unwrap()
            .contains("No valid host was found"));
        drop(cloud);
    }
    // With allow_resize_to_same_host, the one host takes both flavors until confirmed.
    for db in strata_store::testing::TestDb::all().await {
        let cfg = ComputeConfig {
            allow_resize_to_same_host: Some(true),
            ..Default::default()
        };
        let s = Stack::with_config(db, cfg).await;
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "alone", "1").await;
        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        let r = settle(&s, &id, "VERIFY_RESIZE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], "fake-1");
        let m = last_move(&s, &id).await;
        let p = rp(&s, "fake-1").await;
        assert_eq!(allocs(&s, &id).await, [(p.clone(), small())].into());
        assert_eq!(allocs(&s, &m.uuid).await, [(p.clone(), tiny())].into());
        assert_eq!(cloud.hosts[0].guests()[&id].0, Power::Running);
        let c = act(&s, &id, &s.u1, json!({"confirmResize": null})).await;
        assert_eq!(c.status, StatusCode::NO_CONTENT, "{}", c.raw);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(allocs(&s, &id).await, [(p.clone(), small())].into());
        assert!(allocs(&s, &m.uuid).await.is_empty());
        // And a revert on the same host.
        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "3"}})).await);
        settle(&s, &id, "VERIFY_RESIZE").await;
        accepted(&act(&s, &id, &s.u1, json!({"revertResize": null})).await);
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["flavor"]["original_name"], "m1.small");
        assert_eq!(allocs(&s, &id).await, [(p, small())].into());
        assert_eq!(all_allocations(&s).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_and_live_migrations_between_two_hosts() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let id = boot_active(&s, &cloud, "mover", "1").await;
        let first = host_of(&s, &id).await;
        let other = if first == "fake-1" {
            "fake-2"
        } else {
            "fake-1"
        };

        // Cold migration, the scheduler choosing: the other host, same flavor; confirmed.
        accepted(&act(&s, &id, &s.admin, json!({"migrate": null})).await);
        let r = settle(&s, &id, "VERIFY_RESIZE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], other);
        assert_eq!(r.json["server"]["flavor"]["original_name"], "m1.tiny");
        let m = last_move(&s, &id).await;
        assert_eq!(m.kind, "migration");
        assert_eq!(
            allocs(&s, &m.uuid).await,
            [(rp(&s, &first).await, tiny())].into()
        );
        let c = act(&s, &id, &s.admin, json!({"confirmResize": null})).await;
        assert_eq!(c.status, StatusCode::NO_CONTENT, "{}", c.raw);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, other).await, tiny())].into()
        );

        // Cold migration to a named host (2.56): the host it is on, an unknown one.
        let r = act_mv(
            &s,
            &id,
            &s.admin,
            "2.56",
            json!({"migrate": {"host": other}}),
        )
        .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Cannot migrate to the host where the server exists."
        );
        let r = act_mv(
            &s,
            &id,
            &s.admin,
            "2.56",
            json!({"migrate": {"host": "nope"}}),
        )
        .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Compute host nope could not be found."
        );
        let r = act_mv(
            &s,
            &id,
            &s.admin,
            "2.56",
            json!({"migrate": {"host": "a b"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Back to the first host by name, then reverted: it stays where it was.
        accepted(
            &act_mv(
                &s,
                &id,
                &s.admin,
                "2.56",
                json!({"migrate": {"host": first}}),
            )
            .await,
        );
        let r = settle(&s, &id, "VERIFY_RESIZE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], first.as_str());
        accepted(&act(&s, &id, &s.admin, json!({"revertResize": null})).await);
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], other);
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, other).await, tiny())].into()
        );
        assert_eq!(all_allocations(&s).await.len(), 1);

        // Live migration, the scheduler choosing: no VERIFY_RESIZE, the guest keeps running.
        let boots = hv(&cloud, other).guests()[&id].1;
        let live =
            |host: Value| json!({"os-migrateLive": {"host": host, "block_migration": "auto"}});
        accepted(&act_mv(&s, &id, &s.admin, "2.25", live(Value::Null)).await);
        let r = s
            .wait_server(&id, "live-migrated", |r| {
                r.json["server"]["OS-EXT-SRV-ATTR:host"] == first.as_str()
                    && r.json["server"]["OS-EXT-STS:task_state"].is_null()
            })
            .await;
        assert_eq!(r.json["server"]["status"], "ACTIVE");
        let m = last_move(&s, &id).await;
        assert_eq!(
            (m.kind.as_str(), m.status.as_str()),
            ("live-migration", "completed")
        );
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, &first).await, tiny())].into()
        );
        assert!(allocs(&s, &m.uuid).await.is_empty());
        assert_eq!(hv(&cloud, &first).guests()[&id], (Power::Running, 1));
        wait_for!(
            s,
            "the source's guest gone",
            (!hv(&cloud, other).guests().contains_key(&id)).then_some(())
        );
        assert!(boots >= 1);
        let names: Vec<String> = actions(&s, &id).await.into_iter().map(|a| a.0).collect();
        assert_eq!(
            names,
            [
                "create",
                "migrate",
                "confirmResize",
                "migrate",
                "revertResize",
                "live-migration"
            ]
        );

        // To a named host; to the host it is on (400 below 2.34, a failed migration after);
        // to an unknown host.
        accepted(&act_mv(&s, &id, &s.admin, "2.30", live(json!(other))).await);
        s.wait_server(&id, "live-migrated back", |r| {
            r.json["server"]["OS-EXT-SRV-ATTR:host"] == other
                && r.json["server"]["OS-EXT-STS:task_state"].is_null()
        })
        .await;
        let r = act_mv(&s, &id, &s.admin, "2.30", live(json!(other))).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            format!("Unable to migrate instance ({id}) to current host ({other}).")
        );
        accepted(&act_mv(&s, &id, &s.admin, "2.68", live(json!(other))).await);
        wait_for!(s, "the migration to itself to fail", {
            let m = last_move(&s, &id).await;
            (m.status == "error").then_some(())
        });
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], other);
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, other).await, tiny())].into()
        );
        let r = act_mv(&s, &id, &s.admin, "2.30", live(json!("nope"))).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Compute host nope could not be found."
        );
        let r = act_mv(
            &s,
            &id,
            &s.admin,
            "2.30",
            json!({"os-migrateLive": {"host": null, "block_migration": "auto", "force": true}}),
        )
        .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Can't force to a non-provided destination"
        );
        // Below 2.25 `disk_over_commit` is required and `auto` is not a boolean.
        let r = act(&s, &id, &s.admin, live(Value::Null)).await;
        r.assert_error(StatusCode::BAD_REQUEST);

        // A paused server moves paused; a suspended one may not move.
        accepted(&act(&s, &id, &s.u1, json!({"pause": null})).await);
        settle(&s, &id, "PAUSED").await;
        accepted(&act_mv(&s, &id, &s.admin, "2.25", live(Value::Null)).await);
        let r = s
            .wait_server(&id, "moved paused", |r| {
                r.json["server"]["OS-EXT-SRV-ATTR:host"] == first.as_str()
                    && r.json["server"]["OS-EXT-STS:task_state"].is_null()
            })
            .await;
        assert_eq!(r.json["server"]["status"], "PAUSED");
        assert_eq!(hv(&cloud, &first).guests()[&id].0, Power::Paused);
        accepted(&act(&s, &id, &s.u1, json!({"unpause": null})).await);
        settle(&s, &id, "ACTIVE").await;
        accepted(&act(&s, &id, &s.u1, json!({"suspend": null})).await);
        settle(&s, &id, "SUSPENDED").await;
        let r = act_mv(&s, &id, &s.admin, "2.25", live(json!(other))).await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            format!("Cannot 'os-migrateLive' instance {id} while it is in vm_state suspended")
        );
        let r = act(&s, &id, &s.admin, json!({"migrate": null})).await;
        r.assert_error(StatusCode::CONFLICT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_migrations_lists_and_filters_moves() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let a = boot_active(&s, &cloud, "a", "1").await;
        let b = boot_active(&s, &cloud, "b", "1").await;
        accepted(&act(&s, &a, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        settle(&s, &a, "VERIFY_RESIZE").await;
        accepted(&act(&s, &b, &s.admin, json!({"migrate": null})).await);
        settle(&s, &b, "VERIFY_RESIZE").await;
        accepted(&act(&s, &b, &s.admin, json!({"revertResize": null})).await);
        settle(&s, &b, "ACTIVE").await;

        let l = s.get("/os-migrations", &s.admin).await;
        assert_eq!(l.status, StatusCode::OK, "{}", l.raw);
        let rows = l.json["migrations"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{}", l.raw);
        // Newest first; below 2.23 no type, below 2.59 no uuid.
        assert_eq!(rows[0]["instance_uuid"], b.as_str());
        assert_eq!(rows[0]["status"], "reverted");
        assert!(rows[0].get("migration_type").is_none() && rows[0].get("uuid").is_none());
        for k in [
            "created_at",
            "updated_at",
            "dest_compute",
            "dest_host",
            "dest_node",
            "source_compute",
            "source_node",
            "old_instance_type_id",
            "new_instance_type_id",
        ] {
            assert!(rows[1].get(k).is_some(), "{k}: {}", l.raw);
        }
        assert_eq!(rows[1]["dest_host"], "127.0.0.1");
        let f = |q: &str| {
            let path = format!("/os-migrations?{q}");
            let s = &s;
            async move { s.get_mv(&path, &s.admin, "2.23").await }
        };
        let l = f("status=finished").await;
        assert_eq!(
            l.json["migrations"].as_array().unwrap().len(),
            1,
            "{}",
            l.raw
        );
        assert_eq!(l.json["migrations"][0]["migration_type"], "resize");
        let l = f("migration_type=migration").await;
        assert_eq!(
            l.json["migrations"][0]["instance_uuid"],
            b.as_str(),
            "{}",
            l.raw
        );
        let l = f(&format!("instance_uuid={a}")).await;
        assert_eq!(l.json["migrations"].as_array().unwrap().len(), 1);
        let l = f("host=nowhere").await;
        assert_eq!(l.json["migrations"], json!([]));
        let host_a = last_move(&s, &a).await.source_host;
        let l = f(&format!("host={host_a}")).await;
        assert!(!l.json["migrations"].as_array().unwrap().is_empty());
        // Paging (2.59).
        let l = s.get_mv("/os-migrations?limit=1", &s.admin, "2.59").await;
        assert_eq!(
            l.json["migrations"].as_array().unwrap().len(),
            1,
            "{}",
            l.raw
        );
        let next = l.json["migrations_links"][0]["href"].as_str().unwrap();
        assert!(next.contains("marker="), "{next}");
        let marker = l.json["migrations"][0]["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        let l = s
            .get_mv(&format!("/os-migrations?marker={marker}"), &s.admin, "2.59")
            .await;
        assert_eq!(
            l.json["migrations"][0]["instance_uuid"],
            a.as_str(),
            "{}",
            l.raw
        );
        let l = s
            .get_mv("/os-migrations?marker=nope", &s.admin, "2.59")
            .await;
        l.assert_error(StatusCode::BAD_REQUEST);
        let l = s.get_mv("/os-migrations?foo=1", &s.admin, "2.59").await;
        l.assert_error(StatusCode::BAD_REQUEST);
        let l = s
            .get_mv(
                "/os-migrations?changes-since=2099-01-01T00:00:00Z",
                &s.admin,
                "2.59",
            )
            .await;
        assert_eq!(l.json["migrations"], json!([]), "{}", l.raw);
        let l = s
            .get_mv(
                &format!("/os-migrations?user_id={}", s.u1_id),
                &s.admin,
                "2.80",
            )
            .await;
        assert_eq!(
            l.json["migrations"].as_array().unwrap().len(),
            1,
            "{}",
            l.raw
        );
        // Admins only.
        s.get("/os-migrations", &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // A server's live migrations in progress (2.23): none; below 2.23 no such resource.
        let l = s
            .get_mv(&format!("/servers/{a}/migrations"), &s.admin, "2.23")
            .await;
        assert_eq!(l.json, json!({"migrations": []}), "{}", l.raw);
        s.get_mv(&format!("/servers/{a}/migrations"), &s.admin, "2.22")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let m = last_move(&s, &a).await;
        s.get_mv(
            &format!("/servers/{a}/migrations/{}", m.id),
            &s.admin,
            "2.23",
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        drop(cloud);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_migration_in_progress_is_listed_forced_and_aborted() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let id = boot_active(&s, &cloud, "lm", "1").await;
        let source = host_of(&s, &id).await;
        let dest = if source == "fake-1" {
            "fake-2"
        } else {
            "fake-1"
        };
        let before = all_allocations(&s).await;
        // The destination cannot finish building the guest while its spawns are held.
        hv(&cloud, dest).hold_spawns(true);
        accepted(
            &act_mv(
                &s,
                &id,
                &s.admin,
                "2.68",
                json!({"os-migrateLive": {"host": dest, "block_migration": false}}),
            )
            .await,
        );
        let m = wait_for!(s, "the live migration running", {
            let m = last_move(&s, &id).await;
            (m.status == "running").then_some(m)
        });
        let r = server(&s, &id).await;
        assert_eq!(r["status"], "MIGRATING");
        assert_eq!(r["OS-EXT-SRV-ATTR:host"], source.as_str());
        // The instance holds the destination, the migration the source.
        assert_eq!(allocs(&s, &id).await, [(rp(&s, dest).await, tiny())].into());
        assert_eq!(
            allocs(&s, &m.uuid).await,
            [(rp(&s, &source).await, tiny())].into()
        );
        let l = s
            .get_mv(&format!("/servers/{id}/migrations"), &s.admin, "2.80")
            .await;
        let row = &l.json["migrations"][0];
        assert_eq!(row["status"], "running", "{}", l.raw);
        assert_eq!(row["server_uuid"], id.as_str());
        assert_eq!(row["dest_compute"], dest);
        assert_eq!(row["memory_total_bytes"], Value::Null);
        let one = s
            .get_mv(
                &format!("/servers/{id}/migrations/{}", m.id),
                &s.admin,
                "2.59",
            )
            .await;
        assert_eq!(
            one.json["migration"]["uuid"],
            m.uuid.as_str(),
            "{}",
            one.raw
        );
        let l = s.get_mv("/os-migrations", &s.admin, "2.23").await;
        assert!(l.json["migrations"][0]["links"].is_array(), "{}", l.raw);
        // force_complete (2.22) is taken and recorded.
        let path = format!("/servers/{id}/migrations/{}/action", m.id);
        let r = s
            .post_mv(&path, &s.admin, "2.22", json!({"force_complete": null}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = s
            .post_mv(&path, &s.admin, "2.22", json!({"force_complete": 1}))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post_mv(
                &format!("/servers/{id}/migrations/999/action"),
                &s.admin,
                "2.22",
                json!({"force_complete": null}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Abort (2.24): the server stays on its source, the allocations as before.
        let del = format!("/servers/{id}/migrations/{}", m.id);
        s.delete_mv(&del, &s.u1, "2.24")
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.delete_mv(&del, &s.admin, "2.24").await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        hv(&cloud, dest).hold_spawns(false);
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], source.as_str());
        assert_eq!(last_move(&s, &id).await.status, "cancelled");
        assert_eq!(all_allocations(&s).await, before);
        wait_for!(
            s,
            "the destination's guest gone",
            (!hv(&cloud, dest).guests().contains_key(&id)).then_some(())
        );
        assert_eq!(hv(&cloud, &source).guests()[&id], (Power::Running, 1));
        // No migration in progress any more: 409 (task), 404 (show).
        s.delete_mv(&del, &s.admin, "2.24")
            .await
            .assert_error(StatusCode::CONFLICT);
        s.get_mv(&del, &s.admin, "2.24")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let names: Vec<String> = actions(&s, &id).await.into_iter().map(|a| a.0).collect();
        assert_eq!(
            names,
            [
                "create",
                "live-migration",
                "live_migration_force_complete",
                "live_migration_cancel"
            ]
        );
        let all = strata_compute::server_db::actions(&s.db.store, &id)
            .await
            .unwrap();
        for a in &all {
            assert!(
                a.events.iter().all(|e| e.finish_time.is_some()),
                "{}: {:?}",
                a.action,
                a.events
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelve_offloads_and_unshelve_schedules_again() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let id = boot_active(&s, &cloud, "shelf", "1").await;
        let host = host_of(&s, &id).await;
        accepted(&act(&s, &id, &s.u1, json!({"shelve": null})).await);
        let r = settle(&s, &id, "SHELVED_OFFLOADED").await;
        let v = &r.json["server"];
        assert_eq!(v["OS-EXT-SRV-ATTR:host"], Value::Null, "{}", r.raw);
        assert_eq!(v["OS-EXT-STS:vm_state"], "shelved_offloaded");
        assert_eq!(v["hostId"], "");
        assert!(allocs(&s, &id).await.is_empty());
        assert!(cloud.hosts.iter().all(|h| !h.guests().contains_key(&id)));
        assert_eq!(all_allocations(&s).await.len(), 0);
        // The snapshot image, named as Nova names it.
        let imgs = s
            .raw(
                Method::GET,
                "/image/v2/images?name=shelf-shelved",
                Some(&s.u1),
                &[],
                None,
            )
            .await;
        let img = imgs.json["images"][0].clone();
        assert_eq!(img["status"], "active", "{}", imgs.raw);
        assert_eq!(img["instance_uuid"], id.as_str());
        let image_id = img["id"].as_str().unwrap().to_string();
        // Shelved servers shelve no further; active ones do not unshelve.
        let r = act(&s, &id, &s.u1, json!({"shelve": null})).await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            format!("Cannot 'shelve' instance {id} while it is in vm_state shelved_offloaded")
        );
        // To a host (2.91, admins only), after a refusal for the owner.
        let other = if host == "fake-1" { "fake-2" } else { "fake-1" };
        let r = act_mv(&s, &id, &s.u1, "2.91", json!({"unshelve": {"host": other}})).await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = act_mv(
            &s,
            &id,
            &s.admin,
            "2.91",
            json!({"unshelve": {"host": "nope"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.77",
            json!({"unshelve": {"availability_zone": "x"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        accepted(
            &act_mv(
                &s,
                &id,
                &s.admin,
                "2.91",
                json!({"unshelve": {"host": other}}),
            )
            .await,
        );
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], other);
        assert_eq!(
            allocs(&s, &id).await,
            [(rp(&s, other).await, tiny())].into()
        );
        assert_eq!(hv(&cloud, other).guests()[&id].0, Power::Running);
        // The shelved image goes once the server is back.
        wait_for!(s, "the shelved image deleted", {
            let r = s
                .raw(
                    Method::GET,
                    &format!("/image/v2/images/{image_id}"),
                    Some(&s.admin),
                    &[],
                    None,
                )
                .await;
            (r.status == StatusCode::NOT_FOUND).then_some(())
        });
        let r = act(&s, &id, &s.u1, json!({"unshelve": null})).await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            format!("Cannot 'unshelve' instance {id} while it is in vm_state active")
        );
        let acts = actions(&s, &id).await;
        let names: Vec<&str> = acts.iter().map(|a| a.0.as_str()).collect();
        assert_eq!(names, ["create", "shelve", "unshelve"], "{acts:?}");
        assert!(acts[1..]
            .iter()
            .all(|a| a.1.iter().all(|e| e.1.as_deref() == Some("Success"))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelved_servers_keep_their_guest_until_offloaded() {
    for db in strata_store::testing::TestDb::all().await {
        let cfg = ComputeConfig {
            shelved_offload_time: -1,
            ..Default::default()
        };
        let s = Stack::with_config(db, cfg).await;
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "keep", "1").await;
        accepted(&act(&s, &id, &s.u1, json!({"shelve": null})).await);
        let r = settle(&s, &id, "SHELVED").await;
        assert_eq!(r.json["server"]["OS-EXT-SRV-ATTR:host"], "fake-1");
        assert_eq!(cloud.hosts[0].guests()[&id].0, Power::Shutdown);
        assert_eq!(allocs(&s, &id).await.len(), 1);
        // Unshelve in place: powered on where it is.
        accepted(&act(&s, &id, &s.u1, json!({"unshelve": null})).await);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(cloud.hosts[0].guests()[&id].0, Power::Running);
        // Shelve, then offload by hand; a zone or host only for offloaded servers.
        accepted(&act(&s, &id, &s.u1, json!({"shelve": null})).await);
        settle(&s, &id, "SHELVED").await;
        let r = act_mv(
            &s,
            &id,
            &s.admin,
            "2.91",
            json!({"unshelve": {"host": "fake-1"}}),
        )
        .await;
        assert!(r
            .assert_error(StatusCode::CONFLICT)
            .contains("The server status must be SHELVED_OFFLOADED"));
        accepted(&act(&s, &id, &s.u1, json!({"shelveOffload": null})).await);
        settle(&s, &id, "SHELVED_OFFLOADED").await;
        assert!(allocs(&s, &id).await.is_empty());
        wait_for!(
            s,
            "the guest gone",
            (!cloud.hosts[0].guests().contains_key(&id)).then_some(())
        );
        accepted(&act(&s, &id, &s.u1, json!({"unshelve": null})).await);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(allocs(&s, &id).await.len(), 1);
        let names: Vec<String> = actions(&s, &id).await.into_iter().map(|a| a.0).collect();
        assert_eq!(
            names,
            [
                "create",
                "shelve",
                "unshelve",
                "shelve",
                "shelveOffload",
                "unshelve"
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_resized_server_releases_both_hosts() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let id = boot_active(&s, &cloud, "gone", "1").await;
        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        settle(&s, &id, "VERIFY_RESIZE").await;
        let m = last_move(&s, &id).await;
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.wait_gone(&id).await;
        assert!(allocs(&s, &id).await.is_empty());
        assert!(allocs(&s, &m.uuid).await.is_empty());
        wait_for!(
            s,
            "both guests gone",
            cloud
                .hosts
                .iter()
                .all(|h| !h.guests().contains_key(&id))
                .then_some(())
        );
        assert_eq!(last_move(&s, &id).await.status, "confirmed");
    }
}

/// Steps the server with `svc`'s controller until `$cond` holds.
macro_rules! drive_until {
    ($s:expr, $svc:expr, $what:expr, $cond:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            $svc.drive_all().await.unwrap();
            if $cond {
                break;
            }
            assert!(Instant::now() < deadline, "never {}", $what);
            let rev = $s.db.store.current_revision().await.unwrap();
            $s.db
                .store
                .watch(rev, Duration::from_millis(100))
                .await
                .unwrap();
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_resize_ends_consistent() {
    for s in Stack::all().await {
        // No controller running: the test steps it, on one service and then on a new one.
        let cloud = s.cloud_with(2, false).await;
        let id = s.boot(&cloud, &s.u1, "crash", json!({})).await;
        drive_until!(
            s,
            s.svc,
            "ACTIVE",
            server(&s, &id).await["status"] == "ACTIVE"
        );
        let source = host_of(&s, &id).await;
        let dest = if source == "fake-1" {
            "fake-2"
        } else {
            "fake-1"
        };
        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "2"}})).await);
        let m = last_move(&s, &id).await;

        // A crash after the scheduling step's placement writes, before its store write: the
        // source's allocation already the migration's, the destination claimed for the
        // instance.
        let p = s.svc.placement().unwrap();
        let claim = |consumer: &str, rp: String, r: BTreeMap<String, i64>, t: &str| {
            strata_placement::ConsumerClaim {
                consumer: consumer.to_string(),
                claim: strata_placement::Claim {
                    project_id: s.p1.clone(),
                    user_id: s.u1_id.clone(),
                    consumer_type: Some(t.into()),
                    allocations: [(rp, r)].into(),
                },
                expected: strata_placement::ConsumerGeneration::Unchecked,
            }
        };
        p.claim_many(vec![
            claim(&m.uuid, rp(&s, &source).await, tiny(), "MIGRATION"),
            claim(&id, rp(&s, dest).await, small(), "INSTANCE"),
        ])
        .await
        .unwrap();
        let expected: BTreeMap<String, Allocs> = [
            (id.clone(), [(rp(&s, dest).await, small())].into()),
            (m.uuid.clone(), [(rp(&s, &source).await, tiny())].into()),
        ]
        .into();

        // The restarted service finds what was done and claims nothing twice; its steps run
        // again change nothing.
        let svc2 = s.restarted_compute(ComputeConfig::default());
        hv(&cloud, dest).hold_spawns(true);
        drive_until!(
            s,
            svc2,
            "resize_finish",
            server(&s, &id).await["OS-EXT-STS:task_state"] == "resize_finish"
        );
        assert_eq!(host_of(&s, &id).await, dest);
        assert_eq!(all_allocations(&s).await, expected, "{}", s.label());
        for _ in 0..3 {
            svc2.drive_all().await.unwrap();
        }
        assert_eq!(all_allocations(&s).await, expected);

        // Another restart while the destination builds the guest.
        let svc3 = s.restarted_compute(ComputeConfig::default());
        hv(&cloud, dest).hold_spawns(false);
        drive_until!(
            s,
            svc3,
            "VERIFY_RESIZE",
            server(&s, &id).await["status"] == "VERIFY_RESIZE"
        );
        assert_eq!(all_allocations(&s).await, expected);
        let c = act(&s, &id, &s.u1, json!({"confirmResize": null})).await;
        assert_eq!(c.status, StatusCode::NO_CONTENT, "{}", c.raw);
        drive_until!(
            s,
            svc3,
            "ACTIVE",
            server(&s, &id).await["status"] == "ACTIVE"
        );
        let done: BTreeMap<String, Allocs> =
            [(id.clone(), [(rp(&s, dest).await, small())].into())].into();
        assert_eq!(all_allocations(&s).await, done);
        assert_eq!(hv(&cloud, dest).guests()[&id], (Power::Running, 1));
        wait_for!(
            s,
            "the source's guest gone",
            (!hv(&cloud, &source).guests().contains_key(&id)).then_some(())
        );

        // A restart in the middle of a revert: the allocations swap back exactly once.
        accepted(&act(&s, &id, &s.u1, json!({"resize": {"flavorRef": "3"}})).await);
        drive_until!(
            s,
            svc3,
            "VERIFY_RESIZE again",
            server(&s, &id).await["status"] == "VERIFY_RESIZE"
        );
        let before_revert = last_move(&s, &id).await;
        accepted(&act(&s, &id, &s.u1, json!({"revertResize": null})).await);
        let svc4 = s.restarted_compute(ComputeConfig::default());
        for _ in 0..2 {
            svc4.drive_all().await.unwrap();
        }
        drive_until!(
            s,
            svc4,
            "ACTIVE after revert",
            server(&s, &id).await["status"] == "ACTIVE"
        );
        assert_eq!(host_of(&s, &id).await, dest);
        assert_eq!(all_allocations(&s).await, done);
        assert!(allocs(&s, &before_revert.uuid).await.is_empty());
    }
}
