//! Servers through the API, built by the lifecycle controller on fake hosts run by in-process
//! node agents: the saga's happy path and its unwinding (reschedule, NoValidHost), delete from
//! any state, quotas counted atomically, and the caller's visibility.

mod common;

use common::Stack;
use http::StatusCode;
use serde_json::{json, Value};

async fn ports_of(s: &Stack, server: &str) -> Vec<Value> {
    let r = s
        .raw(
            http::Method::GET,
            &format!("/network/v2.0/ports?device_id={server}"),
            Some(&s.admin),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.json["ports"].as_array().unwrap().clone()
}

async fn allocations_of(s: &Stack, server: &str) -> usize {
    s.svc
        .placement()
        .unwrap()
        .consumer_allocations(server)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_boots_on_a_host_and_is_deleted_without_leftovers() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let id = s
            .boot(&cloud, &s.u1, "vm1", json!({"metadata": {"k": "v"}}))
            .await;
        let r = s.wait_status(&id, "ACTIVE").await;
        let v = &r.json["server"];
        assert_eq!(v["OS-EXT-STS:vm_state"], "active", "{}", s.label());
        assert_eq!(v["OS-EXT-STS:power_state"], 1);
        assert!(v["OS-EXT-STS:task_state"].is_null());
        let host = v["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
        assert!(host.starts_with("fake-"), "{host}");
        assert_eq!(v["metadata"]["k"], "v");
        assert!(v["OS-SRV-USG:launched_at"].is_string());
        let addrs = v["addresses"]["net1"].as_array().unwrap();
        assert_eq!(addrs.len(), 1);
        assert!(addrs[0]["addr"].as_str().unwrap().starts_with("10.1.0."));
        // The guest runs on the chosen host only; its port is bound there; the claim exists.
        let on: Vec<usize> = cloud
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.guests().contains_key(&id))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(
            on,
            vec![host.trim_start_matches("fake-").parse::<usize>().unwrap()]
        );
        let ports = ports_of(&s, &id).await;
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["binding:host_id"], host.as_str());
        assert_eq!(allocations_of(&s, &id).await, 1);
        // Its hypervisor counts it (flavor 1: 1 vCPU, 512 MiB, 1 GiB); the other does not.
        let hv = s.get("/os-hypervisors/detail", &s.admin).await;
        for h in hv.json["hypervisors"].as_array().unwrap() {
            let mine = h["hypervisor_hostname"] == host.as_str();
            assert_eq!(h["running_vms"], if mine { 1 } else { 0 }, "{}", hv.raw);
            assert_eq!(h["vcpus_used"], if mine { 1 } else { 0 }, "{}", hv.raw);
            assert_eq!(h["local_gb_used"], if mine { 1 } else { 0 }, "{}", hv.raw);
            assert_eq!(
                h["free_ram_mb"].as_i64().unwrap() + h["memory_mb_used"].as_i64().unwrap(),
                h["memory_mb"].as_i64().unwrap()
            );
        }
        let st = s.get("/os-hypervisors/statistics", &s.admin).await;
        assert_eq!(
            st.json["hypervisor_statistics"]["running_vms"], 1,
            "{}",
            st.raw
        );
        assert_eq!(
            st.json["hypervisor_statistics"]["vcpus_used"], 1,
            "{}",
            st.raw
        );
        // The owner sees it; another project does not.
        assert_eq!(
            s.get(&format!("/servers/{id}"), &s.u1).await.status,
            StatusCode::OK
        );
        s.get(&format!("/servers/{id}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("/servers/{id}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Delete: 204, then gone with its guest, port and claim.
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.wait_gone(&id).await;
        assert!(cloud.hosts.iter().all(|h| !h.guests().contains_key(&id)));
        assert!(ports_of(&s, &id).await.is_empty());
        assert_eq!(allocations_of(&s, &id).await, 0);
        // Listed as deleted to admins only.
        let r = s
            .get("/servers/detail?deleted=true&all_tenants=1", &s.admin)
            .await;
        assert!(r.json["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == id.as_str()));
        let actions = s
            .get(&format!("/servers/{id}/os-instance-actions"), &s.u1)
            .await;
        let _ = actions;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_spawn_is_rescheduled_then_fails_with_a_fault_and_releases_everything() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        // One host fails once: the build moves to the other host and succeeds.
        cloud.hosts[0].fail_next_spawns(1);
        cloud.hosts[1].fail_next_spawns(1);
        let id = s.boot(&cloud, &s.u1, "flaky", json!({})).await;
        let r = s
            .wait_server(&id, "ACTIVE or ERROR", |r| {
                matches!(
                    r.json["server"]["status"].as_str(),
                    Some("ACTIVE") | Some("ERROR")
                )
            })
            .await;
        // Both hosts failed once: two attempts used, the third (max_attempts 3) has no host
        // left to try, so the build ends in ERROR with NoValidHost.
        assert_eq!(
            r.json["server"]["status"],
            "ERROR",
            "{}: {}",
            s.label(),
            r.raw
        );
        let fault = &r.json["server"]["fault"];
        assert_eq!(fault["code"], 500);
        assert!(
            fault["message"].as_str().unwrap().contains("No valid host"),
            "{fault}"
        );
        // Claims and ports released, no guest anywhere.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while allocations_of(&s, &id).await != 0 || !ports_of(&s, &id).await.is_empty() {
            assert!(std::time::Instant::now() < deadline, "claims or ports kept");
            s.db.store
                .watch(
                    s.db.store.current_revision().await.unwrap(),
                    std::time::Duration::from_millis(100),
                )
                .await
                .unwrap();
        }
        assert!(cloud.hosts.iter().all(|h| !h.guests().contains_key(&id)));
        // A second server boots fine (the fault knobs are spent).
        let ok = s.boot(&cloud, &s.u1, "fine", json!({})).await;
        s.wait_status(&ok, "ACTIVE").await;
        // Delete works from ERROR.
        assert_eq!(
            s.delete(&format!("/servers/{id}"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        s.wait_gone(&id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_servers_beyond_the_limit_even_when_created_concurrently() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let r = s
            .call(
                http::Method::PUT,
                &format!("/os-quota-sets/{}", s.p1),
                &s.admin,
                None,
                Some(json!({"quota_set": {"instances": 3}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let body = json!({"server": {"name": format!("q{i}"), "imageRef": cloud.image,
                "flavorRef": "1", "networks": "none"}});
            let (app, tok) = (s.app.clone(), s.u1.clone());
            tasks.push(tokio::spawn(async move {
                let req = http::Request::builder()
                    .method("POST")
                    .uri("/compute/v2.1/servers")
                    .header("x-auth-token", tok)
                    .header("content-type", "application/json")
                    .header("openstack-api-version", "compute 2.37")
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap();
                use tower::ServiceExt;
                app.oneshot(req).await.unwrap().status()
            }));
        }
        let mut ok = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::ACCEPTED => ok += 1,
                StatusCode::FORBIDDEN => refused += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!((ok, refused), (3, 5), "{}", s.label());
        let r = s
            .post_mv(
                "/servers",
                &s.u1,
                "2.37",
                json!({"server": {"name": "q9", "imageRef": cloud.image, "flavorRef": "1",
                    "networks": "none"}}),
            )
            .await;
        let msg = r.assert_error(StatusCode::FORBIDDEN);
        assert!(
            msg.starts_with(
                "Quota exceeded for instances: Requested 1, but already used 3 of 3 instances"
            ),
            "{msg}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_bad_requests_as_nova_does() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let base = json!({"name": "x", "imageRef": cloud.image, "flavorRef": "1",
            "networks": [{"uuid": cloud.net}]});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            json!({ "server": b })
        };
        let cases: Vec<(Value, StatusCode, &str)> = vec![
            (
                with("flavorRef", json!("nope")),
                StatusCode::BAD_REQUEST,
                "Flavor nope could not be found.",
            ),
            (
                with("imageRef", json!("nope")),
                StatusCode::BAD_REQUEST,
                "Invalid imageRef provided.",
            ),
            (
                with("imageRef", json!("11111111-2222-3333-4444-555555555555")),
                StatusCode::BAD_REQUEST,
                "could not be found",
            ),
            (
                with("name", json!("")),
                StatusCode::BAD_REQUEST,
                "Invalid input for field/attribute name",
            ),
            (
                with("name", json!("a".repeat(256))),
                StatusCode::BAD_REQUEST,
                "is too long",
            ),
            (
                with("networks", json!([{"uuid": "a-b-c-d-e-f-g-h-i-j"}])),
                StatusCode::BAD_REQUEST,
                "Bad networks format",
            ),
            (
                with(
                    "networks",
                    json!([{"uuid": "11111111-2222-3333-4444-555555555555"}]),
                ),
                StatusCode::BAD_REQUEST,
                "Network 11111111-2222-3333-4444-555555555555 could not be found.",
            ),
            (
                with("accessIPv6", json!("notvalid")),
                StatusCode::BAD_REQUEST,
                "accessIPv6",
            ),
            (
                with("key_name", json!("missing")),
                StatusCode::BAD_REQUEST,
                "Invalid key_name provided.",
            ),
            (
                with("availability_zone", json!("nowhere")),
                StatusCode::BAD_REQUEST,
                "availability zone is not available",
            ),
            (
                with("metadata", json!({"a".repeat(260): "v"})),
                StatusCode::BAD_REQUEST,
                "metadata",
            ),
            (
                with("user_data", json!("***")),
                StatusCode::BAD_REQUEST,
                "User data needs to be valid base 64.",
            ),
            (
                with("security_groups", json!([{"name": "nope"}])),
                StatusCode::BAD_REQUEST,
                "Security group nope not found.",
            ),
            (
                with("min_count", json!(3)),
                StatusCode::BAD_REQUEST,
                "min_count must be <= max_count",
            ),
            (
                json!({"server": {"name": "x"}}),
                StatusCode::BAD_REQUEST,
                "'flavorRef' is a required property",
            ),
            (
                with("bogus", json!(1)),
                StatusCode::BAD_REQUEST,
                "Additional properties are not allowed",
            ),
        ];
        for (body, status, needle) in cases {
            let mut body = body;
            if needle == "min_count must be <= max_count" {
                body["server"]["max_count"] = json!(2);
            }
            let r = s.post("/servers", &s.u1, body.clone()).await;
            let msg = r.assert_error(status);
            assert!(msg.contains(needle), "{}: {body} → {msg}", s.label());
        }
        // Another project's port is not found; a port in use is a conflict.
        let vm = s.boot(&cloud, &s.u1, "holder", json!({})).await;
        s.wait_status(&vm, "ACTIVE").await;
        let port = ports_of(&s, &vm).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s
            .post("/servers", &s.u1, with("networks", json!([{"port": port}])))
            .await;
        let msg = r.assert_error(StatusCode::CONFLICT);
        assert!(msg.contains("still in use"), "{msg}");
        // Nothing was created by the refused requests.
        let r = s.get("/servers", &s.u1).await;
        assert_eq!(r.json["servers"].as_array().unwrap().len(), 1, "{}", r.raw);
    }
}

/// Every id of a listing, following its `servers_links` page by page.
async fn ids_paged(s: &Stack, token: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let q = match &marker {
            Some(m) => format!("{query}&marker={m}"),
            None => query.to_string(),
        };
        let r = s.get(&q, token).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.raw);
        let page: Vec<String> = r.json["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        let next = r.json.get("servers_links").is_some();
        out.extend(page);
        if !next {
            return out;
        }
        marker = out.last().cloned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_paged_by_the_database_agree_with_the_general_path() {
    for s in Stack::all().await {
        let cloud = s.cloud(2).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let id = s.boot(&cloud, &s.u1, &format!("vm{i}"), json!({})).await;
            s.wait_status(&id, "ACTIVE").await;
            ids.push(id);
        }
        let other = s.boot(&cloud, &s.admin, "theirs", json!({})).await;
        s.wait_status(&other, "ACTIVE").await;
        // Newest first, two at a time: SQL pages (no filter applied in memory) ...
        let fast = ids_paged(&s, &s.u1, "/servers?limit=2").await;
        // ... as the general path does (a name filter matching everything forces it).
        let general = ids_paged(&s, &s.u1, "/servers?limit=2&name=vm").await;
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(fast, newest_first, "{}", s.label());
        assert_eq!(general, newest_first, "{}", s.label());
        // A status its vm_state decides is paged by SQL too; ACTIVE (a task can make it
        // REBOOT) takes the general path; both agree.
        assert!(ids_paged(&s, &s.u1, "/servers?status=BUILD&limit=2")
            .await
            .is_empty());
        assert_eq!(
            ids_paged(&s, &s.u1, "/servers?status=ACTIVE&limit=2").await,
            newest_first
        );
        // A marker the caller cannot see, or none at all: 400 on both paths.
        for q in [
            format!("/servers?limit=2&marker={other}"),
            format!("/servers?limit=2&name=vm&marker={other}"),
            "/servers?marker=nope".to_string(),
        ] {
            s.get(&q, &s.u1).await.assert_error(StatusCode::BAD_REQUEST);
        }
        // An admin sees everybody's with all_tenants, paged the same way.
        let all = ids_paged(&s, &s.admin, "/servers?all_tenants=1&limit=4").await;
        assert_eq!(all.len(), 6, "{}", s.label());
        assert_eq!(all[0], other);
    }
}
