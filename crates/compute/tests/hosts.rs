//! Compute hosts on every backend: node agents register over `/agent/v1` (admin or service
//! role), which makes the service, the node and the host's placement provider with its
//! inventories; heartbeats; the desired-state poll; `os-services` and `os-hypervisors`; and a
//! real `NodeAgent` with the fake hypervisor joining through the in-process contract.

mod common;

use common::Stack;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_agent::{FakeHypervisor, NodeAgent};
use strata_compute::agent::LocalControlPlane;

fn registration(host: &str) -> Value {
    json!({
        "host": host, "agent_version": "1.0", "hypervisor_type": "fake",
        "hypervisor_version": 1000, "hypervisor_hostname": host, "host_ip": "192.0.2.7",
        "vcpus": 8, "memory_mb": 16384, "local_gb": 100,
        "cpu_info": {"arch": "x86_64"},
        "supported_instances": [["x86_64", "qemu", "hvm"]],
        "traits": ["COMPUTE_VOLUME_ATTACH", "NOT_A_TRAIT"],
    })
}

async fn agent_call(
    st: &Stack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> common::Resp {
    st.raw(method, &format!("/agent/v1{path}"), Some(token), &[], body)
        .await
}

#[tokio::test]
async fn registration_makes_service_node_and_provider() {
    for st in Stack::all().await {
        let r = agent_call(
            &st,
            Method::PUT,
            "/hosts/h1",
            &st.admin,
            Some(registration("h1")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", st.label(), r.raw);
        let provider = r.json["provider_uuid"].as_str().unwrap().to_string();
        let service = r.json["service_id"].as_str().unwrap().to_string();
        assert!(r.json["heartbeat_interval_s"].as_u64().unwrap() > 0);
        // Again: same ids, nothing duplicated.
        let again = agent_call(
            &st,
            Method::PUT,
            "/hosts/h1",
            &st.admin,
            Some(registration("h1")),
        )
        .await;
        assert_eq!(again.json["provider_uuid"], provider.as_str());
        assert_eq!(again.json["service_id"], service.as_str());
        // Placement has the provider with Nova's initial ratios and reserved memory.
        let snap = st.svc.placement().unwrap().snapshot().await.unwrap();
        let p = snap.get(&provider).expect("provider");
        assert_eq!(p.provider.name, "h1");
        assert_eq!(p.inventories["VCPU"].total, 8);
        assert_eq!(p.inventories["VCPU"].allocation_ratio, 4.0);
        assert_eq!(p.inventories["MEMORY_MB"].reserved, 512);
        assert_eq!(p.inventories["DISK_GB"].total, 100);
        assert!(p.traits.contains("COMPUTE_VOLUME_ATTACH"));
        assert!(
            !p.traits.contains("NOT_A_TRAIT"),
            "unknown traits are dropped"
        );
        // Refusals.
        agent_call(
            &st,
            Method::PUT,
            "/hosts/h1",
            &st.u1,
            Some(registration("h1")),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        agent_call(
            &st,
            Method::PUT,
            "/hosts/h2",
            &st.admin,
            Some(registration("h1")),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        agent_call(
            &st,
            Method::PUT,
            "/hosts/h1",
            &st.admin,
            Some(json!("{not json")),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        let mut old = registration("h3");
        old["agent_version"] = json!("2.0");
        agent_call(&st, Method::PUT, "/hosts/h3", &st.admin, Some(old))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let mut zero = registration("h3");
        zero["vcpus"] = json!(0);
        agent_call(&st, Method::PUT, "/hosts/h3", &st.admin, Some(zero))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(
            st.raw(
                Method::PUT,
                "/agent/v1/hosts/h1",
                None,
                &[],
                Some(registration("h1"))
            )
            .await
            .status,
            StatusCode::UNAUTHORIZED
        );
        // Heartbeats and the desired-state poll.
        assert_eq!(
            agent_call(&st, Method::POST, "/hosts/h1/heartbeat", &st.admin, None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        agent_call(&st, Method::POST, "/hosts/nope/heartbeat", &st.admin, None)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let d = agent_call(
            &st,
            Method::GET,
            "/hosts/h1/instances?after=0&wait=0",
            &st.admin,
            None,
        )
        .await;
        assert_eq!(d.status, StatusCode::OK, "{}", d.raw);
        // Nothing was ever given to h1: its revision is 1 (so that the next poll, after 1,
        // waits), and the first poll (after 0) is answered at once.
        assert_eq!(d.json["revision"], 1, "{}", d.raw);
        assert_eq!(d.json["instances"], json!([]));
        // What admins see.
        let hv = st.get("/os-hypervisors", &st.admin).await;
        assert_eq!(hv.status, StatusCode::OK, "{}", hv.raw);
        assert_eq!(hv.json["hypervisors"][0]["id"], provider.as_str());
        assert_eq!(hv.json["hypervisors"][0]["hypervisor_hostname"], "h1");
        assert_eq!(hv.json["hypervisors"][0]["state"], "up");
        assert_eq!(hv.json["hypervisors"][0]["status"], "enabled");
        let detail = st.get("/os-hypervisors/detail", &st.admin).await;
        assert_eq!(detail.json["hypervisors"][0]["vcpus"], 8);
        assert_eq!(detail.json["hypervisors"][0]["host_ip"], "192.0.2.7");
        let new = st.get_mv("/os-hypervisors/detail", &st.admin, "2.88").await;
        assert!(
            new.json["hypervisors"][0].get("vcpus").is_none(),
            "{}",
            new.raw
        );
        let one = st
            .get(&format!("/os-hypervisors/{provider}"), &st.admin)
            .await;
        assert_eq!(one.json["hypervisor"]["service"]["host"], "h1");
        st.get("/os-hypervisors/no-such", &st.admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let stats = st.get("/os-hypervisors/statistics", &st.admin).await;
        assert_eq!(stats.json["hypervisor_statistics"]["count"], 1);
        assert_eq!(stats.json["hypervisor_statistics"]["memory_mb"], 16384);
        st.get_mv("/os-hypervisors/statistics", &st.admin, "2.88")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let svcs = st.get_mv("/os-services", &st.admin, "2.11").await;
        assert_eq!(svcs.json["services"][0]["host"], "h1");
        assert_eq!(svcs.json["services"][0]["binary"], "nova-compute");
        assert_eq!(svcs.json["services"][0]["state"], "up");
        assert_eq!(svcs.json["services"][0]["forced_down"], false);
        st.get("/os-hypervisors", &st.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        st.get("/os-services", &st.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_fake_node_agent_joins() {
    for st in Stack::all().await {
        let hv = Arc::new(FakeHypervisor::new(4, 8192, 50));
        let cp = Arc::new(LocalControlPlane(st.svc.clone()));
        let agent = Arc::new(NodeAgent::new("fake-9", "127.0.0.1", cp, hv));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // Woken by every commit (the registration is one), never by a timer.
        let mut commits = st.svc.store().subscribe();
        let task = tokio::spawn(agent.run(stop_rx));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let hv = st.get("/os-hypervisors/detail", &st.admin).await;
            if hv.json["hypervisors"][0]["hypervisor_hostname"] == "fake-9" {
                assert_eq!(hv.json["hypervisors"][0]["vcpus"], 4);
                assert_eq!(hv.json["hypervisors"][0]["state"], "up");
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::timeout(left, commits.changed())
                .await
                .unwrap_or_else(|_| panic!("{}: the agent never registered", st.label()))
                .unwrap();
        }
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the agent stops")
            .unwrap();
    }
}
