//! `/v2.0/ports` on every backend: defaults, fixed IPs by address and by subnet, bulk
//! all-or-none, fixed IP updates, MAC conflicts, visibility, shared networks, list filters
//! and fields, release on delete, and no address or MAC handed out twice under concurrency.

mod common;

use common::{s, Stack};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Creates a v4 subnet on `net` as `token`; returns its view.
async fn subnet(st: &Stack, token: &str, net: &str, cidr: &str, extra: Value) -> Value {
    let mut body = json!({"network_id": net, "cidr": cidr, "ip_version": 4});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    st.create_in("subnets", "subnet", token, body).await
}

async fn port(st: &Stack, token: &str, body: Value) -> Value {
    st.create_in("ports", "port", token, body).await
}

fn ips(p: &Value) -> Vec<(String, String)> {
    p["fixed_ips"]
        .as_array()
        .unwrap_or_else(|| panic!("{p}"))
        .iter()
        .map(|f| (s(f, "subnet_id"), s(f, "ip_address")))
        .collect()
}

#[tokio::test]
async fn create_defaults_and_show() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        let sub = s(
            &subnet(&st, &st.u1, &net, "10.0.0.0/24", json!({})).await,
            "id",
        );
        let p = port(&st, &st.u1, json!({"network_id": net, "name": "p"})).await;
        assert_eq!(p["name"], "p");
        assert_eq!(p["network_id"], net.as_str());
        assert_eq!(p["tenant_id"], st.p1.as_str());
        assert_eq!(p["project_id"], st.p1.as_str());
        assert_eq!(p["admin_state_up"], true);
        assert_eq!(p["status"], "DOWN");
        assert_eq!(p["device_id"], "");
        assert_eq!(p["device_owner"], "");
        assert_eq!(p["port_security_enabled"], true);
        assert_eq!(p["allowed_address_pairs"], json!([]));
        assert_eq!(p["extra_dhcp_opts"], json!([]));
        assert_eq!(p["binding:vnic_type"], "normal");
        assert_eq!(p["ip_allocation"], "immediate");
        assert_eq!(p["revision_number"], 0);
        assert_eq!(p["description"], "");
        assert_eq!(p["tags"], json!([]));
        assert!(p["security_groups"].is_array(), "{p}");
        for k in [
            "binding:host_id",
            "binding:vif_type",
            "binding:profile",
            "binding:vif_details",
        ] {
            assert!(p.get(k).is_none(), "{k} shown to a member: {p}");
        }
        let mac = s(&p, "mac_address");
        assert!(mac.starts_with("fa:16:3e:") && mac.len() == 17, "{mac}");
        assert_eq!(ips(&p), vec![(sub.clone(), "10.0.0.2".to_string())]);
        let id = s(&p, "id");
        let r = st.get(&format!("/v2.0/ports/{id}"), &st.reader).await;
        let mut shown = r.ok(StatusCode::OK)["port"].clone();
        let mut created = p.clone();
        for k in ["created_at", "updated_at"] {
            shown.as_object_mut().unwrap().remove(k);
            created.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(shown, created);
        let r = st
            .get(
                &format!("/v2.0/ports/{id}?fields=id&fields=mac_address"),
                &st.u1,
            )
            .await;
        assert_eq!(
            r.ok(StatusCode::OK)["port"],
            json!({"id": id, "mac_address": mac})
        );
        // admins see the binding
        let r = st.get(&format!("/v2.0/ports/{id}"), &st.admin).await;
        let v = &r.ok(StatusCode::OK)["port"];
        assert_eq!(v["binding:vif_type"], "unbound");
        assert_eq!(v["binding:host_id"], "");
        assert_eq!(v["binding:profile"], json!({}));
        assert_eq!(v["binding:vif_details"], json!({}));
        // a network without subnets gives no addresses
        let bare = s(&st.network(&st.u1, "bare").await, "id");
        let p = port(&st, &st.u1, json!({"network_id": bare})).await;
        assert_eq!(p["fixed_ips"], json!([]));
        // unknown network, missing network, readers, read-only attributes
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": "nope"}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NetworkNotFound");
        let r = st.post("/v2.0/ports", &st.u1, json!({"port": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = st
            .post(
                "/v2.0/ports",
                &st.reader,
                json!({"port": {"network_id": net}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net, "status": "ACTIVE"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = st.get("/v2.0/ports/nope", &st.u1).await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "PortNotFound");
        // the collection is listed
        let r = st.get("/v2.0", &st.u1).await;
        assert!(r.raw.contains("\"ports\""), "{}", r.raw);
    }
}

#[tokio::test]
async fn fixed_ips_by_address_and_by_subnet() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        let s1 = s(
            &subnet(&st, &st.u1, &net, "10.1.0.0/24", json!({})).await,
            "id",
        );
        let s2 = s(
            &subnet(&st, &st.u1, &net, "10.2.0.0/24", json!({})).await,
            "id",
        );
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": net,
            "fixed_ips": [{"ip_address": "10.2.0.50"}]}),
        )
        .await;
        assert_eq!(ips(&p), vec![(s2.clone(), "10.2.0.50".to_string())]);
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": net,
            "fixed_ips": [{"subnet_id": s2}, {"subnet_id": s1, "ip_address": "10.1.0.9"}]}),
        )
        .await;
        assert_eq!(
            ips(&p),
            vec![
                (s2.clone(), "10.2.0.2".to_string()),
                (s1.clone(), "10.1.0.9".to_string())
            ]
        );
        // taken
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "fixed_ips": [{"ip_address": "10.1.0.9"}]}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "IpAddressInUse");
        // not on any subnet of the network, not in the subnet, subnet of another network
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "fixed_ips": [{"ip_address": "192.168.9.9"}]}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "InvalidIpForNetwork"
        );
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "fixed_ips": [{"subnet_id": s1, "ip_address": "10.2.0.77"}]}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "InvalidIpForSubnet"
        );
        let other = s(&st.network(&st.u1, "other").await, "id");
        let s3 = s(
            &subnet(&st, &st.u1, &other, "10.3.0.0/24", json!({})).await,
            "id",
        );
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "fixed_ips": [{"subnet_id": s3}]}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "fixed_ips": [{"ip_address": "not-an-ip"}]}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // the failed creates took nothing: the next default address is still .2 on s1
        let p = port(&st, &st.u1, json!({"network_id": net})).await;
        assert_eq!(ips(&p), vec![(s1.clone(), "10.1.0.2".to_string())]);
    }
}

#[tokio::test]
async fn bulk_create_is_all_or_none() {
    for st in Stack::all().await {
        let n1 = s(&st.network(&st.u1, "n1").await, "id");
        let n2 = s(&st.network(&st.u1, "n2").await, "id");
        subnet(&st, &st.u1, &n1, "10.4.0.0/24", json!({})).await;
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"ports": [{"network_id": n1}, {"network_id": n2}]}),
            )
            .await;
        let created = r.ok(StatusCode::CREATED)["ports"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(created.len(), 2);
        assert_eq!(created[0]["network_id"], n1.as_str());
        assert_eq!(created[1]["network_id"], n2.as_str());
        let before = st.ids(&st.u1, "ports", "").await.len();
        // the second wants the address the first gets: nothing is created
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"ports": [
                {"network_id": n1, "fixed_ips": [{"ip_address": "10.4.0.100"}]},
                {"network_id": n1, "fixed_ips": [{"ip_address": "10.4.0.100"}]}]}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "IpAddressInUse");
        assert_eq!(st.ids(&st.u1, "ports", "").await.len(), before);
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": n1,
            "fixed_ips": [{"ip_address": "10.4.0.100"}]}),
        )
        .await;
        assert_eq!(ips(&p)[0].1, "10.4.0.100");
    }
}

#[tokio::test]
async fn update_reallocates_fixed_ips() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        let s1 = s(
            &subnet(&st, &st.u1, &net, "10.5.0.0/24", json!({})).await,
            "id",
        );
        let s2 = s(
            &subnet(&st, &st.u1, &net, "10.6.0.0/24", json!({})).await,
            "id",
        );
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": net,
            "fixed_ips": [{"subnet_id": s1}, {"subnet_id": s2}]}),
        )
        .await;
        let id = s(&p, "id");
        let both = ips(&p);
        assert_eq!(both.len(), 2);
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.u1,
                json!({"port": {"fixed_ips": [{"subnet_id": s1}], "name": "x"}}),
            )
            .await;
        let v = r.ok(StatusCode::OK)["port"].clone();
        assert_eq!(ips(&v), vec![both[0].clone()], "the s1 address is kept");
        assert_eq!(v["name"], "x");
        assert_eq!(v["revision_number"], 1);
        // the s2 address is free again
        let other = port(
            &st,
            &st.u1,
            json!({"network_id": net,
            "fixed_ips": [{"ip_address": both[1].1}]}),
        )
        .await;
        assert_eq!(ips(&other)[0], both[1]);
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.u1,
                json!({"port": {"fixed_ips": [{"subnet_id": s1}, {"subnet_id": s2}]}}),
            )
            .await;
        let v = r.ok(StatusCode::OK)["port"].clone();
        assert_eq!(ips(&v).len(), 2);
        assert_eq!(ips(&v)[0], both[0]);
        assert_ne!(ips(&v)[1], both[1]);
        // by address; an address in use is refused and changes nothing
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.u1,
                json!({"port": {"fixed_ips": [{"ip_address": both[1].1}]}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "IpAddressInUse");
        let r = st.get(&format!("/v2.0/ports/{id}"), &st.u1).await;
        assert_eq!(ips(&r.ok(StatusCode::OK)["port"]), ips(&v));
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.u1,
                json!({"port": {"fixed_ips": [{"ip_address": "10.5.0.200"}]}}),
            )
            .await;
        let v = r.ok(StatusCode::OK)["port"].clone();
        assert_eq!(ips(&v), vec![(s1.clone(), "10.5.0.200".to_string())]);
        // read-only attributes
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.u1,
                json!({"port": {"network_id": net}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // binding: admins only; a bound port is DOWN until its host's agent plugs it
        // (tests/dataplane.rs), and DOWN whatever the agent says while administratively down
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.u1,
                json!({"port": {"binding:host_id": "h1"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.admin,
                json!({"port": {"binding:host_id": "h1"}}),
            )
            .await;
        let v = r.ok(StatusCode::OK)["port"].clone();
        assert_eq!(v["status"], "DOWN");
        assert_eq!(v["binding:vif_type"], "ovs");
        let r = st
            .put(
                &format!("/v2.0/ports/{id}"),
                &st.u1,
                json!({"port": {"admin_state_up": false}}),
            )
            .await;
        assert_eq!(r.ok(StatusCode::OK)["port"]["status"], "DOWN");
    }
}

#[tokio::test]
async fn mac_addresses_are_unique_per_network() {
    for st in Stack::all().await {
        let n1 = s(&st.network(&st.u1, "n1").await, "id");
        let n2 = s(&st.network(&st.u1, "n2").await, "id");
        let p = port(&st, &st.u1, json!({"network_id": n1})).await;
        let mac = s(&p, "mac_address");
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": n1, "mac_address": mac}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "MacAddressInUse");
        assert!(r.message().contains(&mac), "{}", r.raw);
        let q = port(
            &st,
            &st.u1,
            json!({"network_id": n2, "mac_address": mac.to_uppercase()}),
        )
        .await;
        assert_eq!(q["mac_address"], mac.as_str());
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": n1, "mac_address": "01:00:5e:00:00:01"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // an admin may change a MAC, not to one in use
        let other = port(&st, &st.u1, json!({"network_id": n1})).await;
        let r = st
            .put(
                &format!("/v2.0/ports/{}", s(&other, "id")),
                &st.admin,
                json!({"port": {"mac_address": mac}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "MacAddressInUse");
        let r = st
            .put(
                &format!("/v2.0/ports/{}", s(&other, "id")),
                &st.u1,
                json!({"port": {"mac_address": "fa:16:3e:11:22:33"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn other_projects_ports_are_not_found() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        let p = port(&st, &st.u1, json!({"network_id": net})).await;
        let id = s(&p, "id");
        let path = format!("/v2.0/ports/{id}");
        assert_eq!(
            st.get(&path, &st.u2)
                .await
                .assert_error(StatusCode::NOT_FOUND),
            "PortNotFound"
        );
        st.put(&path, &st.u2, json!({"port": {"name": "x"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.delete(&path, &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert!(!st.ids(&st.u2, "ports", "").await.contains(&id));
        assert!(st.ids(&st.admin, "ports", "").await.contains(&id));
        // a port on another project's private network
        let r = st
            .post("/v2.0/ports", &st.u2, json!({"port": {"network_id": net}}))
            .await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NetworkNotFound");
        // readers look, never change
        st.get(&path, &st.reader).await.ok(StatusCode::OK);
        st.delete(&path, &st.reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn ports_on_a_shared_network() {
    for st in Stack::all().await {
        let net = s(
            &st.network_with(&st.admin, json!({"name": "pub", "shared": true}))
                .await,
            "id",
        );
        let sub = s(
            &subnet(&st, &st.admin, &net, "10.7.0.0/24", json!({})).await,
            "id",
        );
        let p = port(&st, &st.u2, json!({"network_id": net})).await;
        assert_eq!(p["project_id"], st.p2.as_str());
        assert_eq!(ips(&p)[0].0, sub);
        let p = port(
            &st,
            &st.u2,
            json!({"network_id": net, "fixed_ips": [{"subnet_id": sub}]}),
        )
        .await;
        assert_eq!(ips(&p).len(), 1);
        // addresses and MACs are the network owner's to choose
        let r = st
            .post(
                "/v2.0/ports",
                &st.u2,
                json!({"port": {"network_id": net,
                "fixed_ips": [{"ip_address": "10.7.0.99"}]}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = st
            .post(
                "/v2.0/ports",
                &st.u2,
                json!({"port": {"network_id": net, "mac_address": "fa:16:3e:00:00:01"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        // p1 does not see p2's port
        let id = s(&p, "id");
        st.get(&format!("/v2.0/ports/{id}"), &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn list_filters_and_fields() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        let s1 = s(
            &subnet(&st, &st.u1, &net, "10.8.0.0/24", json!({})).await,
            "id",
        );
        let net2 = s(&st.network(&st.u1, "n2").await, "id");
        let a = port(
            &st,
            &st.u1,
            json!({"network_id": net, "device_id": "vm-1",
            "device_owner": "compute:nova"}),
        )
        .await;
        let b = port(
            &st,
            &st.u1,
            json!({"network_id": net, "device_id": "vm-2",
            "fixed_ips": [{"ip_address": "10.8.0.33"}]}),
        )
        .await;
        let c = port(&st, &st.u1, json!({"network_id": net2})).await;
        let (a, b, c) = (s(&a, "id"), s(&b, "id"), s(&c, "id"));
        assert_eq!(
            st.ids(&st.u1, "ports", "fixed_ips=ip_address%3D10.8.0.33")
                .await,
            vec![b.clone()]
        );
        assert_eq!(
            st.ids(&st.u1, "ports", "fixed_ips=ip_address=10.8.0.33")
                .await,
            vec![b.clone()]
        );
        let mut on_s1 = st
            .ids(&st.u1, "ports", &format!("fixed_ips=subnet_id%3D{s1}"))
            .await;
        on_s1.sort();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(on_s1, want);
        assert_eq!(
            st.ids(&st.u1, "ports", "device_id=vm-1").await,
            vec![a.clone()]
        );
        assert_eq!(
            st.ids(&st.u1, "ports", "device_owner=compute%3Anova").await,
            vec![a.clone()]
        );
        assert_eq!(
            st.ids(&st.u1, "ports", &format!("network_id={net2}")).await,
            vec![c.clone()]
        );
        let mac = s(
            &st.get(&format!("/v2.0/ports/{c}"), &st.u1).await.json["port"],
            "mac_address",
        );
        assert_eq!(
            st.ids(&st.u1, "ports", &format!("mac_address={mac}")).await,
            vec![c.clone()]
        );
        let r = st
            .get("/v2.0/ports?fields=id&fields=mac_address", &st.reader)
            .await;
        let ports = r.ok(StatusCode::OK)["ports"].as_array().unwrap().clone();
        assert_eq!(ports.len(), 3);
        for p in ports {
            let mut keys: Vec<&String> = p.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["id", "mac_address"]);
        }
        let r = st.get("/v2.0/ports?bogus=1", &st.u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = st.get("/v2.0/ports?limit=2&sort_key=name", &st.u1).await;
        let body = r.ok(StatusCode::OK);
        assert_eq!(body["ports"].as_array().unwrap().len(), 2);
        assert!(body["ports_links"].is_array(), "{body}");
    }
}

#[tokio::test]
async fn delete_releases_address_and_mac() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        subnet(&st, &st.u1, &net, "10.9.0.0/24", json!({})).await;
        let body = json!({"network_id": net, "mac_address": "fa:16:3e:aa:bb:cc",
            "fixed_ips": [{"ip_address": "10.9.0.42"}]});
        let p = port(&st, &st.u1, body.clone()).await;
        let path = format!("/v2.0/ports/{}", s(&p, "id"));
        let r = st
            .post("/v2.0/ports", &st.u1, json!({"port": body.clone()}))
            .await;
        r.assert_error(StatusCode::CONFLICT);
        assert_eq!(
            st.delete(&path, &st.u1).await.status,
            StatusCode::NO_CONTENT
        );
        st.get(&path, &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.delete(&path, &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let q = port(&st, &st.u1, body).await;
        assert_eq!(q["mac_address"], "fa:16:3e:aa:bb:cc");
        assert_eq!(ips(&q)[0].1, "10.9.0.42");
    }
}

#[tokio::test]
async fn port_security_and_address_pairs() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        subnet(&st, &st.u1, &net, "10.10.0.0/24", json!({})).await;
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": net, "port_security_enabled": false}),
        )
        .await;
        assert_eq!(p["port_security_enabled"], false);
        assert_eq!(p["security_groups"], json!([]));
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": net, "security_groups": []}),
        )
        .await;
        assert_eq!(p["security_groups"], json!([]));
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "port_security_enabled": false, "security_groups": ["x"]}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "PortSecurityAndIPRequiredForSecurityGroups"
        );
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "security_groups": ["00000000-0000-0000-0000-000000000000"]}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            "SecurityGroupNotFound"
        );
        let p = port(&st, &st.u1, json!({"network_id": net, "allowed_address_pairs": [
            {"ip_address": "10.10.0.0/28"}, {"ip_address": "10.10.0.99", "mac_address": "fa:16:3e:01:02:03"}]}))
        .await;
        let mac = s(&p, "mac_address");
        assert_eq!(
            p["allowed_address_pairs"],
            json!([{"ip_address": "10.10.0.0/28", "mac_address": mac},
                   {"ip_address": "10.10.0.99", "mac_address": "fa:16:3e:01:02:03"}])
        );
        let r = st
            .put(
                &format!("/v2.0/ports/{}", s(&p, "id")),
                &st.u1,
                json!({"port": {"port_security_enabled": false, "security_groups": []}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "AddressPairAndPortSecurityRequired"
        );
        let r = st
            .put(
                &format!("/v2.0/ports/{}", s(&p, "id")),
                &st.u1,
                json!({"port": {"port_security_enabled": false, "security_groups": [],
                    "allowed_address_pairs": []}}),
            )
            .await;
        assert_eq!(r.ok(StatusCode::OK)["port"]["port_security_enabled"], false);
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net,
                "allowed_address_pairs": [{"mac_address": "fa:16:3e:01:02:03"}]}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_share_an_address_or_mac() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        let sub = subnet(
            &st,
            &st.u1,
            &net,
            "10.11.0.0/24",
            json!({"allocation_pools": [{"start": "10.11.0.10", "end": "10.11.0.69"}]}),
        )
        .await;
        assert_eq!(s(&sub, "network_id"), net);
        let reqs = (0..100).map(|i| {
            st.post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net, "name": format!("p{i}")}}),
            )
        });
        let results = futures::future::join_all(reqs).await;
        let mut created = 0;
        let mut refused = 0;
        let mut addrs = HashSet::new();
        let mut macs = HashSet::new();
        for r in &results {
            match r.status {
                StatusCode::CREATED => {
                    created += 1;
                    let p = &r.json["port"];
                    let a = ips(p);
                    assert_eq!(a.len(), 1, "{p}");
                    assert!(addrs.insert(a[0].1.clone()), "{} twice", a[0].1);
                    assert!(macs.insert(s(p, "mac_address")), "mac twice");
                }
                StatusCode::CONFLICT => {
                    refused += 1;
                    assert_eq!(
                        r.assert_error(StatusCode::CONFLICT),
                        "IpAddressGenerationFailure",
                        "{}",
                        r.raw
                    );
                }
                other => panic!("{}: {other}: {}", st.label(), r.raw),
            }
        }
        assert_eq!((created, refused), (60, 40), "{}", st.label());
        assert_eq!(
            st.ids(&st.u1, "ports", &format!("network_id={net}"))
                .await
                .len(),
            60
        );
    }
}

#[tokio::test]
async fn slaac_addresses_and_the_default_security_group() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        let v4 = s(
            &subnet(&st, &st.u1, &net, "10.12.0.0/24", json!({})).await,
            "id",
        );
        let v6 = st
            .create_in(
                "subnets",
                "subnet",
                &st.u1,
                json!({"network_id": net,
                "cidr": "2001:db8:12::/64", "ip_version": 6,
                "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
            )
            .await;
        let v6 = s(&v6, "id");
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": net, "mac_address": "fa:16:3e:12:34:56"}),
        )
        .await;
        assert_eq!(
            ips(&p),
            vec![
                (v4, "10.12.0.2".to_string()),
                (v6, "2001:db8:12:0:f816:3eff:fe12:3456".to_string())
            ]
        );
        // the port got the project's default group, created on first use
        let sgs = p["security_groups"].as_array().unwrap().clone();
        assert_eq!(sgs.len(), 1, "{p}");
        let r = st
            .get(
                &format!("/v2.0/security-groups/{}", sgs[0].as_str().unwrap()),
                &st.u1,
            )
            .await;
        assert_eq!(r.ok(StatusCode::OK)["security_group"]["name"], "default");
        let q = port(&st, &st.u1, json!({"network_id": net})).await;
        assert_eq!(q["security_groups"], json!(sgs));
        // another project's group is not found; one's own is taken
        let mine = s(&st.security_group(&st.u1, "mine").await, "id");
        let theirs = s(&st.security_group(&st.u2, "theirs").await, "id");
        let r = st
            .post(
                "/v2.0/ports",
                &st.u1,
                json!({"port": {"network_id": net, "security_groups": [theirs]}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            "SecurityGroupNotFound"
        );
        let p = port(
            &st,
            &st.u1,
            json!({"network_id": net, "security_groups": [mine]}),
        )
        .await;
        assert_eq!(p["security_groups"], json!([mine]));
        let r = st
            .put(
                &format!("/v2.0/ports/{}", s(&p, "id")),
                &st.u1,
                json!({"port": {"port_security_enabled": false}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "PortSecurityPortHasSecurityGroup"
        );
    }
}

/// Follows `rel` links from `first` (a path with query) as `token`, collecting ids page by
/// page; fails on a page longer than `limit`.
async fn walk(st: &Stack, token: &str, first: &str, rel: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = first.to_string();
    for _ in 0..50 {
        let r = st.get(&path, token).await;
        let body = r.ok(StatusCode::OK).clone();
        let page: Vec<String> = body["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| s(p, "id"))
            .collect();
        assert!(page.len() <= limit, "{body}");
        pages.push(page);
        let next = body["ports_links"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["rel"] == rel).map(|l| s(l, "href")));
        match next {
            Some(href) => path = href[href.find("/v2.0/").unwrap()..].to_string(),
            None => return pages,
        }
    }
    panic!("more than 50 pages");
}

#[tokio::test]
async fn paging_by_marker_and_filters_in_the_database() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        subnet(&st, &st.u1, &net, "10.0.0.0/24", json!({})).await;
        let mut ids = Vec::new();
        let mut named_a = Vec::new();
        for i in 0..7 {
            let name = if i % 2 == 0 { "a" } else { "b" };
            let p = port(
                &st,
                &st.u1,
                json!({"network_id": net, "name": name,
                                             "device_id": format!("vm-{}", i % 3)}),
            )
            .await;
            if name == "a" {
                named_a.push(s(&p, "id"));
            }
            ids.push(s(&p, "id"));
        }
        ids.sort();
        named_a.sort();
        // Forward pages of 3 cover every port once, in id order; the last has no next.
        let pages = walk(&st, &st.u1, "/v2.0/ports?limit=3", "next", 3).await;
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
        assert_eq!(pages.concat(), ids, "{}", st.label());
        // Backwards from the last port: the pages before it, each in ascending order.
        let back = walk(
            &st,
            &st.u1,
            &format!("/v2.0/ports?limit=3&marker={}&page_reverse=True", ids[6]),
            "previous",
            3,
        )
        .await;
        assert_eq!(back[0], ids[3..6].to_vec());
        assert_eq!(back[1], ids[0..3].to_vec());
        // Descending by id.
        let desc = walk(
            &st,
            &st.u1,
            "/v2.0/ports?limit=4&sort_key=id&sort_dir=desc",
            "next",
            4,
        )
        .await
        .concat();
        let mut rev = ids.clone();
        rev.reverse();
        assert_eq!(desc, rev);
        // A filter applied beside the database's paging still fills pages.
        let a = walk(&st, &st.u1, "/v2.0/ports?limit=2&name=a", "next", 2)
            .await
            .concat();
        assert_eq!(a, named_a);
        // Indexed filters, repeated for OR, and with the page.
        let mut vm0 = st.ids(&st.u1, "ports", "device_id=vm-0").await;
        vm0.sort();
        assert_eq!(vm0.len(), 3);
        let both = st
            .ids(
                &st.u1,
                "ports",
                &format!("device_id=vm-0&device_id=vm-1&network_id={net}"),
            )
            .await;
        assert_eq!(both.len(), 5);
        let pages = walk(&st, &st.u1, "/v2.0/ports?device_id=vm-0&limit=2", "next", 2).await;
        assert_eq!(pages.concat(), vm0);
        // Another project sees none of them, and their ids are no markers for it.
        assert!(st
            .ids(&st.u2, "ports", &format!("network_id={net}"))
            .await
            .is_empty());
        st.get(&format!("/v2.0/ports?limit=2&marker={}", ids[0]), &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.get("/v2.0/ports?limit=2&marker=no-such-port", &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.get("/v2.0/ports?limit=-1", &st.u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        st.get("/v2.0/ports?no_such_attr=1&limit=2", &st.u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // The admin sees them all whatever the page size.
        let all = walk(
            &st,
            &st.admin,
            &format!("/v2.0/ports?network_id={net}&limit=5"),
            "next",
            5,
        )
        .await
        .concat();
        assert_eq!(all, ids);
    }
}

#[tokio::test]
async fn released_addresses_come_back_after_the_pool_wraps() {
    for st in Stack::all().await {
        let net = s(&st.network(&st.u1, "n").await, "id");
        // 10.9.0.0/29: gateway .1, pool .2–.6.
        subnet(&st, &st.u1, &net, "10.9.0.0/29", json!({})).await;
        let mut by_ip = std::collections::HashMap::new();
        for _ in 0..5 {
            let p = port(&st, &st.u1, json!({"network_id": net})).await;
            by_ip.insert(ips(&p)[0].1.clone(), s(&p, "id"));
        }
        let mut taken: Vec<&String> = by_ip.keys().collect();
        taken.sort();
        assert_eq!(
            taken,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        let create = || async {
            let p = port(&st, &st.u1, json!({"network_id": net})).await;
            (ips(&p)[0].1.clone(), s(&p, "id"))
        };
        st.delete(&format!("/v2.0/ports/{}", by_ip["10.9.0.3"]), &st.u1)
            .await
            .ok(StatusCode::NO_CONTENT);
        let (ip, _) = create().await;
        assert_eq!(
            ip,
            "10.9.0.3",
            "{}: the only free address, found by wrapping",
            st.label()
        );
        for a in ["10.9.0.2", "10.9.0.5"] {
            st.delete(&format!("/v2.0/ports/{}", by_ip[a]), &st.u1)
                .await
                .ok(StatusCode::NO_CONTENT);
        }
        // The allocator goes on after the last address it handed out (.3), so .5 comes
        // before the lower .2.
        assert_eq!(create().await.0, "10.9.0.5");
        assert_eq!(create().await.0, "10.9.0.2");
        let r = st
            .post("/v2.0/ports", &st.u1, json!({"port": {"network_id": net}}))
            .await;
        assert_eq!(r.json["NeutronError"]["type"], "IpAddressGenerationFailure");
        r.assert_error(StatusCode::CONFLICT);
    }
}
