//! The data plane's reconcilers with the `noop` driver on every backend: a host agent plugs
//! the ports bound to its host, filters them with their groups' rules (remote groups resolved
//! to member addresses) and reports them ACTIVE; moves, admin-down, unbinding and deletes;
//! the router agent wires gateways, interfaces and floating IPs; the agents' watch loops.

mod common;

use common::{s, Stack};
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_network::dataplane::{Call, HostAgent, NoopDataPlane, Remote, RouterAgent, SyncReport};

async fn port_status(st: &Stack, id: &str) -> Value {
    st.get(&format!("/v2.0/ports/{id}"), &st.admin)
        .await
        .ok(StatusCode::OK)["port"]
        .clone()
}

async fn set_port(st: &Stack, id: &str, body: Value) -> Value {
    st.put(
        &format!("/v2.0/ports/{id}"),
        &st.admin,
        json!({ "port": body }),
    )
    .await
    .ok(StatusCode::OK)["port"]
        .clone()
}

fn report(plugged: usize, unplugged: usize, unchanged: usize) -> SyncReport {
    SyncReport {
        plugged,
        unplugged,
        unchanged,
    }
}

#[tokio::test]
async fn host_agent_plugs_filters_and_reports() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        st.create_in(
            "subnets",
            "subnet",
            &st.u1,
            json!({"network_id": net, "cidr": "10.5.0.0/24", "ip_version": 4}),
        )
        .await;
        let p = st
            .create_in(
                "ports",
                "port",
                &st.u1,
                json!({"network_id": net, "device_id": "vm-1"}),
            )
            .await;
        let id = s(&p, "id");
        let ip = s(&p["fixed_ips"][0], "ip_address");
        let plane = Arc::new(NoopDataPlane::new());
        let h1 = HostAgent::new(st.network.clone(), "h1", plane.clone());
        // Nothing is bound to h1 yet.
        assert_eq!(h1.sync().await.unwrap(), report(0, 0, 0));

        let v = set_port(&st, &id, json!({"binding:host_id": "h1"})).await;
        assert_eq!(v["status"], "DOWN", "bound, not yet plugged: {v}");
        assert_eq!(v["binding:vif_type"], "ovs");
        assert_eq!(h1.sync().await.unwrap(), report(1, 0, 0), "{}", st.label());
        let v = port_status(&st, &id).await;
        assert_eq!(v["status"], "ACTIVE", "{v}");
        assert_eq!(v["binding:vif_details"]["port_filter"], true);
        let calls = plane.calls();
        let Call::Bind { host, port } = &calls[0] else {
            panic!("{calls:?}")
        };
        assert_eq!(host, "h1");
        assert_eq!(port.id, id);
        assert_eq!(port.fixed_ips[0].1, ip);
        assert_eq!(port.segment.network_type, "geneve");
        assert!(port.segment.segmentation_id.is_some());
        let Call::Filter { rules, .. } = &calls[1] else {
            panic!("{calls:?}")
        };
        // The default group: ingress from its own members (this port), egress anywhere.
        let ingress: Vec<_> = rules.iter().filter(|r| r.direction == "ingress").collect();
        assert!(ingress
            .iter()
            .any(|r| r.ethertype == "IPv4" && r.remote == Remote::Addresses(vec![ip.clone()])));
        assert!(rules
            .iter()
            .any(|r| r.direction == "egress" && r.ethertype == "IPv4" && r.remote == Remote::Any));

        // A second pass changes nothing and calls nothing.
        let n = plane.calls().len();
        assert_eq!(h1.sync().await.unwrap(), report(0, 0, 1));
        assert_eq!(plane.calls().len(), n);

        // A new rule in the port's group is applied.
        let group = p["security_groups"][0].as_str().unwrap().to_string();
        st.create_in(
            "security-group-rules",
            "security_group_rule",
            &st.u1,
            json!({"security_group_id": group, "direction": "ingress", "protocol": "tcp",
                   "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}),
        )
        .await;
        assert_eq!(h1.sync().await.unwrap(), report(1, 0, 0));
        let Some(Call::Filter { rules, .. }) = plane.calls().last().cloned() else {
            panic!()
        };
        assert!(rules.iter().any(|r| r.protocol.as_deref() == Some("tcp")
            && r.port_range_min == Some(22)
            && r.remote == Remote::Prefix("0.0.0.0/0".into())));

        // Administratively down: DOWN at once, and the agent keeps it down.
        let v = set_port(&st, &id, json!({"admin_state_up": false})).await;
        assert_eq!(v["status"], "DOWN");
        h1.sync().await.unwrap();
        assert_eq!(port_status(&st, &id).await["status"], "DOWN");
        let v = set_port(&st, &id, json!({"admin_state_up": true})).await;
        assert_eq!(
            v["status"], "DOWN",
            "up again only once the agent has plugged it"
        );
        h1.sync().await.unwrap();
        assert_eq!(port_status(&st, &id).await["status"], "ACTIVE");

        // Moved to h2: DOWN; h1 unplugs it, h2 plugs it.
        let v = set_port(&st, &id, json!({"binding:host_id": "h2"})).await;
        assert_eq!(v["status"], "DOWN");
        let h2 = HostAgent::new(st.network.clone(), "h2", plane.clone());
        assert_eq!(h1.sync().await.unwrap(), report(0, 1, 0));
        assert!(
            matches!(plane.calls().last(), Some(Call::Unbind { host, port_id })
            if host == "h1" && *port_id == id)
        );
        assert_eq!(h2.sync().await.unwrap(), report(1, 0, 0));
        assert_eq!(port_status(&st, &id).await["status"], "ACTIVE");
        // A late report from the old host changes nothing.
        let stale = strata_network::dataplane::Bound {
            vif_type: "ovs".into(),
            vif_details: json!({}),
        };
        assert!(!st
            .network
            .report_port(&id, "h1", false, &stale)
            .await
            .unwrap());
        assert_eq!(port_status(&st, &id).await["status"], "ACTIVE");

        // Unbound: DOWN and `unbound`; deleted: unplugged.
        let v = set_port(&st, &id, json!({"binding:host_id": ""})).await;
        assert_eq!(v["status"], "DOWN");
        assert_eq!(v["binding:vif_type"], "unbound");
        assert_eq!(h2.sync().await.unwrap(), report(0, 1, 0));
        set_port(&st, &id, json!({"binding:host_id": "h2"})).await;
        assert_eq!(h2.sync().await.unwrap(), report(1, 0, 0));
        st.delete(&format!("/v2.0/ports/{id}"), &st.u1)
            .await
            .ok(StatusCode::NO_CONTENT);
        assert_eq!(h2.sync().await.unwrap(), report(0, 1, 0));
    }
}

#[tokio::test]
async fn router_agent_wires_gateways_interfaces_and_floating_ips() {
    for st in Stack::all().await {
        let ext = s(
            &st.network_with(&st.admin, json!({"name": "ext", "router:external": true}))
                .await,
            "id",
        );
        st.create_in(
            "subnets",
            "subnet",
            &st.admin,
            json!({"network_id": ext, "cidr": "172.30.0.0/24", "ip_version": 4}),
        )
        .await;
        let net = s(&st.network(&st.u1, "n").await, "id");
        let sub = s(
            &st.create_in(
                "subnets",
                "subnet",
                &st.u1,
                json!({"network_id": net, "cidr": "10.6.0.0/24", "ip_version": 4}),
            )
            .await,
            "id",
        );
        let r = st
            .create_in(
                "routers",
                "router",
                &st.u1,
                json!({"name": "r", "external_gateway_info": {"network_id": ext}}),
            )
            .await;
        let rid = s(&r, "id");
        st.put(
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            &st.u1,
            json!({ "subnet_id": sub }),
        )
        .await
        .ok(StatusCode::OK);
        let plane = Arc::new(NoopDataPlane::new());
        let agent = RouterAgent::new(st.network.clone(), plane.clone());
        assert_eq!(agent.sync().await.unwrap(), (1, 0), "{}", st.label());
        let Some(Call::Wire(w)) = plane.calls().last().cloned() else {
            panic!("{:?}", plane.calls())
        };
        assert_eq!(w.id, rid);
        let gw = w.gateway.clone().expect("gateway");
        assert_eq!(gw.network_id, ext);
        assert!(gw.enable_snat);
        assert_eq!(w.interfaces.len(), 1);
        assert_eq!(
            w.interfaces[0].fixed_ips[0],
            (sub.clone(), "10.6.0.1".to_string())
        );
        assert!(w.floating_ips.is_empty());
        assert_eq!(
            agent.sync().await.unwrap(),
            (0, 0),
            "unchanged: not rewired"
        );

        // A floating IP on a port of the private network rewires the router.
        let p = st
            .create_in("ports", "port", &st.u1, json!({"network_id": net}))
            .await;
        let fip = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.u1,
                json!({"floating_network_id": ext, "port_id": s(&p, "id")}),
            )
            .await;
        assert_eq!(agent.sync().await.unwrap(), (1, 0));
        let Some(Call::Wire(w)) = plane.calls().last().cloned() else {
            panic!()
        };
        assert_eq!(
            w.floating_ips,
            vec![(
                s(&fip, "floating_ip_address"),
                s(&p["fixed_ips"][0], "ip_address"),
                s(&p, "id")
            )]
        );

        // Taken apart and deleted: unwired.
        st.delete(&format!("/v2.0/floatingips/{}", s(&fip, "id")), &st.u1)
            .await
            .ok(StatusCode::NO_CONTENT);
        st.put(
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            &st.u1,
            json!({ "subnet_id": sub }),
        )
        .await
        .ok(StatusCode::OK);
        st.delete(&format!("/v2.0/routers/{rid}"), &st.u1)
            .await
            .ok(StatusCode::NO_CONTENT);
        assert_eq!(agent.sync().await.unwrap(), (0, 1));
        assert_eq!(plane.calls().last(), Some(&Call::Unwire(rid.clone())));
    }
}

#[tokio::test]
async fn agents_follow_the_change_log() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        st.create_in(
            "subnets",
            "subnet",
            &st.u1,
            json!({"network_id": net, "cidr": "10.7.0.0/24", "ip_version": 4}),
        )
        .await;
        let plane = Arc::new(NoopDataPlane::new());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let agent = Arc::new(HostAgent::new(st.network.clone(), "h9", plane.clone()));
        let task = tokio::spawn(agent.clone().run(stop_rx));
        let p = st
            .create_in(
                "ports",
                "port",
                &st.u1,
                json!({"network_id": net, "device_id": "vm-9"}),
            )
            .await;
        let id = s(&p, "id");
        // Woken by every commit (the agent's report is one), never by a timer.
        let mut commits = st.network.store().subscribe();
        set_port(&st, &id, json!({"binding:host_id": "h9"})).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while port_status(&st, &id).await["status"] != "ACTIVE" {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::timeout(left, commits.changed())
                .await
                .unwrap_or_else(|_| panic!("{}: never ACTIVE", st.label()))
                .unwrap();
        }
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the agent stops when told")
            .unwrap();
    }
}
