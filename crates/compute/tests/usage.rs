//! Usage (`os-simple-tenant-usage`): the figures of servers that ran known spans (their
//! `launched_at`/`terminated_at` set through the store), deleted servers counted for the
//! windows they ran in, the views against Tempest's schemas, 2.40 paging with links, policy
//! (listing all projects is admin-only, a project's usage its own) and Nova's 400s.

mod common;

use common::{Resp, Stack};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// 2020-01-01T00:00:00Z in microseconds.
const T0: i64 = 1_577_836_800_000_000;
const HOUR: i64 = 3_600_000_000;

/// Sets when the server was launched and terminated, as if it had run that span.
async fn set_times(s: &Stack, id: &str, launched: i64, terminated: Option<i64>) {
    let id = id.to_string();
    s.db.store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let old = strata_compute::server_db::get_tx(tx, &id)
                    .await?
                    .expect("server");
                let mut n = old.clone();
                n.launched_at = Some(launched);
                n.terminated_at = terminated;
                strata_compute::server_db::save(tx, &old, &mut n).await
            })
        })
        .await
        .unwrap();
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|s| s.to_string()).collect()
}

const SUMMARY: &[&str] = &[
    "server_usages",
    "start",
    "stop",
    "tenant_id",
    "total_hours",
    "total_local_gb_usage",
    "total_memory_mb_usage",
    "total_vcpus_usage",
];
const SERVER: &[&str] = &[
    "ended_at",
    "flavor",
    "hours",
    "instance_id",
    "local_gb",
    "memory_mb",
    "name",
    "started_at",
    "state",
    "tenant_id",
    "uptime",
    "vcpus",
];

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-9
}

async fn show(s: &Stack, token: &str, project: &str, query: &str) -> Resp {
    s.get(&format!("/os-simple-tenant-usage/{project}?{query}"), token)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_of_servers_that_ran_known_spans() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        // A runs from T0 on; B ran T0..T0+2h and was deleted.
        let a = s.boot(&cloud, &s.u1, "a", json!({})).await;
        s.wait_status(&a, "ACTIVE").await;
        let b = s.boot(&cloud, &s.u1, "b", json!({})).await;
        s.wait_status(&b, "ACTIVE").await;
        assert_eq!(
            s.delete(&format!("/servers/{b}"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        s.wait_gone(&b).await;
        set_times(&s, &a, T0, None).await;
        set_times(&s, &b, T0, Some(T0 + 2 * HOUR)).await;
        // A server of p2 in the same window.
        let c = s
            .post_mv(
                "/servers",
                &s.u2,
                "2.37",
                json!({"server": {"name": "c", "imageRef": cloud.image, "flavorRef": "1",
                    "networks": "none"}}),
            )
            .await;
        assert_eq!(c.status, StatusCode::ACCEPTED, "{}", c.raw);
        let c = c.json["server"]["id"].as_str().unwrap().to_string();
        s.wait_status(&c, "ACTIVE").await;
        set_times(&s, &c, T0 + HOUR, None).await;

        // The window 01:00..05:00: A 4 h, B 1 h; m1.tiny is 1 vCPU, 512 MB, 1 GB.
        let q = "start=2020-01-01T01:00:00&end=2020-01-01T05:00:00";
        let r = show(&s, &s.u1, &s.p1, q).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let u = &r.json["tenant_usage"];
        assert_eq!(keys(u), set(SUMMARY), "{}", r.raw);
        assert_eq!(u["tenant_id"], s.p1);
        assert_eq!(u["start"], "2020-01-01T01:00:00.000000");
        assert_eq!(u["stop"], "2020-01-01T05:00:00.000000");
        assert!(close(&u["total_hours"], 5.0), "{}", r.raw);
        assert!(close(&u["total_vcpus_usage"], 5.0), "{}", r.raw);
        assert!(close(&u["total_memory_mb_usage"], 2560.0), "{}", r.raw);
        assert!(close(&u["total_local_gb_usage"], 5.0), "{}", r.raw);
        let list = u["server_usages"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        for v in list {
            assert_eq!(keys(v), set(SERVER), "{v}");
        }
        let (ua, ub) = (&list[0], &list[1]);
        assert_eq!(ua["instance_id"], a);
        assert_eq!(ua["name"], "a");
        assert_eq!(ua["flavor"], "m1.tiny");
        assert_eq!(ua["state"], "active");
        assert_eq!(ua["ended_at"], Value::Null);
        assert_eq!(ua["started_at"], "2020-01-01T00:00:00.000000");
        assert!(close(&ua["hours"], 4.0));
        assert_eq!(
            (
                ua["vcpus"].clone(),
                ua["memory_mb"].clone(),
                ua["local_gb"].clone()
            ),
            (json!(1), json!(512), json!(1))
        );
        assert!(ua["uptime"].as_i64().unwrap() > 4 * 365 * 24 * 3600);
        assert_eq!(ub["instance_id"], b);
        assert_eq!(ub["state"], "terminated");
        assert_eq!(ub["ended_at"], "2020-01-01T02:00:00.000000");
        assert_eq!(ub["uptime"], 7200);
        assert!(close(&ub["hours"], 1.0));
        // A window after B ended: only A.
        let r = show(
            &s,
            &s.reader,
            &s.p1,
            "start=2020-01-01T03:00:00&end=2020-01-01T04:00:00",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["tenant_usage"]["server_usages"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(close(&r.json["tenant_usage"]["total_hours"], 1.0));
        // A window before anything ran: nothing.
        let r = show(
            &s,
            &s.u1,
            &s.p1,
            "start=2019-01-01T00:00:00&end=2019-06-01T00:00:00",
        )
        .await;
        assert_eq!(r.json, json!({"tenant_usage": {}}));

        // Every project (admin): p1 and p2, detailed or not.
        let r = s
            .get(&format!("/os-simple-tenant-usage?{q}&detailed=1"), &s.admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let all = r.json["tenant_usages"].as_array().unwrap();
        assert_eq!(all.len(), 2, "{}", r.raw);
        for t in all {
            assert_eq!(keys(t), set(SUMMARY));
        }
        let p2 = all.iter().find(|t| t["tenant_id"] == s.p2).unwrap();
        assert!(close(&p2["total_hours"], 4.0));
        let r = s
            .get(&format!("/os-simple-tenant-usage?{q}"), &s.admin)
            .await;
        let t = &r.json["tenant_usages"][0];
        assert!(t.get("server_usages").is_none(), "{}", r.raw);
        assert_eq!(keys(t).len(), 7);

        // 2.40 paging.
        let r = s
            .get_mv(
                &format!("/os-simple-tenant-usage/{}?{q}&limit=1", s.p1),
                &s.u1,
                "2.40",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["tenant_usage"]["server_usages"][0]["instance_id"], a);
        let next = r.json["tenant_usage_links"][0]["href"].as_str().unwrap();
        assert_eq!(r.json["tenant_usage_links"][0]["rel"], "next");
        assert!(next.contains(&format!("marker={a}")), "{next}");
        assert!(
            next.contains(&format!("/os-simple-tenant-usage/{}?", s.p1)),
            "{next}"
        );
        let r = s
            .get_mv(
                &format!("/os-simple-tenant-usage/{}?{q}&limit=1&marker={a}", s.p1),
                &s.u1,
                "2.40",
            )
            .await;
        assert_eq!(r.json["tenant_usage"]["server_usages"][0]["instance_id"], b);
        let r = s
            .get_mv(
                &format!("/os-simple-tenant-usage/{}?{q}&limit=5", s.p1),
                &s.u1,
                "2.40",
            )
            .await;
        assert!(r.json.get("tenant_usage_links").is_none(), "{}", r.raw);
        let r = s
            .get_mv(
                &format!("/os-simple-tenant-usage?{q}&limit=2"),
                &s.admin,
                "2.40",
            )
            .await;
        assert!(
            r.json["tenant_usages_links"][0]["href"].is_string(),
            "{}",
            r.raw
        );
        let m = s
            .get_mv(
                &format!("/os-simple-tenant-usage/{}?{q}&marker=nope", s.p1),
                &s.u1,
                "2.40",
            )
            .await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            "Marker nope could not be found."
        );

        // Policy and refusals.
        s.get(&format!("/os-simple-tenant-usage?{q}"), &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        show(&s, &s.u2, &s.p1, q)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let m = show(
            &s,
            &s.admin,
            &s.p1,
            "start=2020-01-02T00:00:00&end=2020-01-01T00:00:00",
        )
        .await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            "Invalid start time. The start time cannot occur after the end time."
        );
        show(&s, &s.admin, &s.p1, "start=yesterday")
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.get_mv(
            &format!("/os-simple-tenant-usage/{}?{q}&detailed=1", s.p1),
            &s.u1,
            "2.75",
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.get("/os-simple-tenant-usage/", &s.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        drop(cloud);
    }
}
