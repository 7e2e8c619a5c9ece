//! `/v2.0/routers` and `/v2.0/floatingips` on every backend: router CRUD, gateways,
//! interfaces by subnet and by port, overlaps, extra routes, routers in use, floating IP
//! association and disassociation, reachability, and the DevStack-like bootstrap.

mod common;

use common::{s, Stack};
use http::StatusCode;
use serde_json::{json, Value};

async fn subnet(st: &Stack, token: &str, net: &str, cidr: &str) -> Value {
    st.create_in(
        "subnets",
        "subnet",
        token,
        json!({"network_id": net, "cidr": cidr, "ip_version": 4}),
    )
    .await
}

/// An external network (made by the admin) with a /24 subnet; returns (network, subnet).
async fn external(st: &Stack, cidr: &str) -> (String, String) {
    let net = s(
        &st.network_with(&st.admin, json!({"name": "ext", "router:external": true}))
            .await,
        "id",
    );
    let sub = s(&subnet(st, &st.admin, &net, cidr).await, "id");
    (net, sub)
}

async fn router(st: &Stack, token: &str, body: Value) -> Value {
    st.create_in("routers", "router", token, body).await
}

async fn add_if(st: &Stack, token: &str, router: &str, body: Value) -> common::Resp {
    st.put(
        &format!("/v2.0/routers/{router}/add_router_interface"),
        token,
        body,
    )
    .await
}

async fn remove_if(st: &Stack, token: &str, router: &str, body: Value) -> common::Resp {
    st.put(
        &format!("/v2.0/routers/{router}/remove_router_interface"),
        token,
        body,
    )
    .await
}

#[tokio::test]
async fn router_crud_and_gateway() {
    for st in Stack::all().await {
        let (ext, ext_sub) = external(&st, "172.24.4.0/24").await;
        let r = router(
            &st,
            &st.u1,
            json!({"name": "r", "admin_state_up": false,
                   "external_gateway_info": {"network_id": ext}}),
        )
        .await;
        let id = s(&r, "id");
        assert_eq!(r["name"], "r");
        assert_eq!(r["admin_state_up"], false);
        assert_eq!(r["status"], "ACTIVE");
        assert_eq!(r["project_id"], st.p1.as_str());
        assert_eq!(r["routes"], json!([]));
        assert_eq!(r["external_gateway_info"]["network_id"], ext.as_str());
        assert_eq!(r["external_gateway_info"]["enable_snat"], true);
        let gw_ips = r["external_gateway_info"]["external_fixed_ips"].clone();
        assert_eq!(gw_ips[0]["subnet_id"], ext_sub.as_str(), "{r}");
        assert_eq!(gw_ips[0]["ip_address"], "172.24.4.2", "{r}");
        assert!(r.get("distributed").is_none(), "{r}");
        assert!(r.get("_gw_port").is_none(), "{r}");
        // the gateway port
        let gw = st
            .get(&format!("/v2.0/ports?device_id={id}"), &st.admin)
            .await;
        let gw = &gw.ok(StatusCode::OK)["ports"];
        assert_eq!(gw.as_array().unwrap().len(), 1, "{gw}");
        assert_eq!(gw[0]["device_owner"], "network:router_gateway");
        assert_eq!(gw[0]["project_id"], "");
        // show, list, update
        let shown = st.get(&format!("/v2.0/routers/{id}"), &st.reader).await;
        assert_eq!(shown.ok(StatusCode::OK)["router"]["name"], "r");
        assert_eq!(st.ids(&st.u1, "routers", "").await, vec![id.clone()]);
        assert!(st.ids(&st.u2, "routers", "").await.is_empty());
        let admin_view = st.get(&format!("/v2.0/routers/{id}"), &st.admin).await;
        assert_eq!(admin_view.json["router"]["distributed"], false);
        let u = st
            .put(
                &format!("/v2.0/routers/{id}"),
                &st.u1,
                json!({"router": {"name": "r2", "admin_state_up": true}}),
            )
            .await;
        assert_eq!(u.ok(StatusCode::OK)["router"]["name"], "r2");
        assert_eq!(u.json["router"]["revision_number"], 1);
        // other projects see nothing
        st.get(&format!("/v2.0/routers/{id}"), &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // tenants may not set snat, nor distributed
        let e = st
            .post(
                "/v2.0/routers",
                &st.u1,
                json!({"router": {"external_gateway_info": {"network_id": ext,
                       "enable_snat": false}}}),
            )
            .await;
        e.assert_error(StatusCode::FORBIDDEN);
        let e = st
            .post(
                "/v2.0/routers",
                &st.u1,
                json!({"router": {"distributed": true}}),
            )
            .await;
        e.assert_error(StatusCode::FORBIDDEN);
        // admins may set snat and a fixed address
        let a = router(
            &st,
            &st.admin,
            json!({"external_gateway_info": {"network_id": ext, "enable_snat": false,
                   "external_fixed_ips": [{"ip_address": "172.24.4.100"}]}}),
        )
        .await;
        assert_eq!(a["external_gateway_info"]["enable_snat"], false);
        assert_eq!(
            a["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
            "172.24.4.100"
        );
        // invalid gateways
        let e = st
            .put(
                &format!("/v2.0/routers/{id}"),
                &st.u1,
                json!({"router": {"external_gateway_info": {"network_id": "nope"}}}),
            )
            .await;
        assert_eq!(e.assert_error(StatusCode::NOT_FOUND), "NetworkNotFound");
        let private = s(&st.network(&st.u1, "priv").await, "id");
        let e = st
            .put(
                &format!("/v2.0/routers/{id}"),
                &st.u1,
                json!({"router": {"external_gateway_info": {"network_id": private}}}),
            )
            .await;
        assert_eq!(e.assert_error(StatusCode::BAD_REQUEST), "BadRequest");
        assert!(
            e.message().contains("is not a valid external network"),
            "{}",
            e.raw
        );
        // clear the gateway: its port goes
        let u = st
            .put(
                &format!("/v2.0/routers/{id}"),
                &st.u1,
                json!({"router": {"external_gateway_info": {}}}),
            )
            .await;
        assert!(u.ok(StatusCode::OK)["router"]["external_gateway_info"].is_null());
        assert!(st
            .ids(&st.admin, "ports", &format!("device_id={id}"))
            .await
            .is_empty());
        // delete
        let d = st.delete(&format!("/v2.0/routers/{id}"), &st.u1).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.raw);
        st.get(&format!("/v2.0/routers/{id}"), &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let d = st
            .delete(&format!("/v2.0/routers/{}", s(&a, "id")), &st.admin)
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.raw);
        // with the gateways gone, the external network can go
        let d = st.delete(&format!("/v2.0/networks/{ext}"), &st.admin).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.raw);
    }
}

#[tokio::test]
async fn interfaces_by_subnet_and_port() {
    for st in Stack::all().await {
        let r = s(&router(&st, &st.u1, json!({"name": "r"})).await, "id");
        let n1 = s(&st.network(&st.u1, "n1").await, "id");
        let s1 = s(&subnet(&st, &st.u1, &n1, "10.1.0.0/24").await, "id");
        let i = add_if(&st, &st.u1, &r, json!({"subnet_id": s1})).await;
        let i = i.ok(StatusCode::OK).clone();
        assert_eq!(i["id"], r.as_str());
        assert_eq!(i["subnet_id"], s1.as_str());
        assert_eq!(i["subnet_ids"], json!([s1]));
        assert_eq!(i["network_id"], n1.as_str());
        assert_eq!(i["project_id"], st.p1.as_str());
        let port = st
            .get(&format!("/v2.0/ports/{}", s(&i, "port_id")), &st.reader)
            .await;
        let port = port.ok(StatusCode::OK)["port"].clone();
        assert_eq!(port["device_id"], r.as_str());
        assert_eq!(port["device_owner"], "network:router_interface");
        assert_eq!(port["fixed_ips"][0]["ip_address"], "10.1.0.1");
        // Plugged into its router, the port is bound: ACTIVE.
        assert_eq!(port["status"], "ACTIVE");
        // the same subnet again, and an overlapping one
        let e = add_if(&st, &st.u1, &r, json!({"subnet_id": s1})).await;
        e.assert_error(StatusCode::BAD_REQUEST);
        let n2 = s(&st.network(&st.u1, "n2").await, "id");
        let s2 = s(&subnet(&st, &st.u1, &n2, "10.1.0.0/16").await, "id");
        let e = add_if(&st, &st.u1, &r, json!({"subnet_id": s2})).await;
        assert_eq!(e.assert_error(StatusCode::BAD_REQUEST), "BadRequest");
        assert!(e.message().contains("overlaps with"), "{}", e.raw);
        // a subnet without a gateway
        let n3 = s(&st.network(&st.u1, "n3").await, "id");
        let s3 = s(
            &st.create_in(
                "subnets",
                "subnet",
                &st.u1,
                json!({"network_id": n3, "cidr": "10.3.0.0/24", "ip_version": 4,
                       "gateway_ip": null}),
            )
            .await,
            "id",
        );
        add_if(&st, &st.u1, &r, json!({"subnet_id": s3}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // neither, both
        add_if(&st, &st.u1, &r, json!({}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // by port
        let n4 = s(&st.network(&st.u1, "n4").await, "id");
        subnet(&st, &st.u1, &n4, "10.4.0.0/24").await;
        let p = st
            .create_in("ports", "port", &st.u1, json!({"network_id": n4}))
            .await;
        let pid = s(&p, "id");
        let i = add_if(&st, &st.u1, &r, json!({"port_id": pid})).await;
        assert_eq!(i.ok(StatusCode::OK)["port_id"], pid.as_str());
        assert_eq!(
            st.ids(&st.u1, "ports", &format!("device_id={r}&id={pid}"))
                .await,
            vec![pid.clone()]
        );
        // a port with a device is in use
        let p2 = st
            .create_in(
                "ports",
                "port",
                &st.u1,
                json!({"network_id": n3, "device_id": "vm"}),
            )
            .await;
        let e = add_if(&st, &st.u1, &r, json!({"port_id": s(&p2, "id")})).await;
        assert_eq!(e.assert_error(StatusCode::CONFLICT), "PortInUse");
        // interface ports belong to the router
        st.delete(&format!("/v2.0/ports/{pid}"), &st.u1)
            .await
            .assert_error(StatusCode::CONFLICT);
        // the router is in use
        let e = st.delete(&format!("/v2.0/routers/{r}"), &st.u1).await;
        assert_eq!(e.assert_error(StatusCode::CONFLICT), "RouterInUse");
        // remove: unknown, by port, by subnet
        let e = remove_if(&st, &st.u1, &r, json!({"subnet_id": s2})).await;
        assert_eq!(
            e.assert_error(StatusCode::NOT_FOUND),
            "RouterInterfaceNotFoundForSubnet"
        );
        let e = remove_if(&st, &st.u1, &r, json!({"port_id": s(&p2, "id")})).await;
        assert_eq!(
            e.assert_error(StatusCode::NOT_FOUND),
            "RouterInterfaceNotFound"
        );
        let ok = remove_if(&st, &st.u1, &r, json!({"port_id": pid})).await;
        assert_eq!(ok.ok(StatusCode::OK)["port_id"], pid.as_str());
        let ok = remove_if(&st, &st.u1, &r, json!({"subnet_id": s1})).await;
        ok.ok(StatusCode::OK);
        assert!(st
            .ids(&st.admin, "ports", &format!("device_id={r}"))
            .await
            .is_empty());
        // the gateway address is free again: subnet and network can go
        let d = st.delete(&format!("/v2.0/subnets/{s1}"), &st.u1).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.raw);
        let d = st.delete(&format!("/v2.0/routers/{r}"), &st.u1).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.raw);
    }
}

#[tokio::test]
async fn extra_routes() {
    for st in Stack::all().await {
        let r = s(&router(&st, &st.u1, json!({})).await, "id");
        let n = s(&st.network(&st.u1, "n").await, "id");
        let sub = s(&subnet(&st, &st.u1, &n, "10.5.0.0/24").await, "id");
        add_if(&st, &st.u1, &r, json!({"subnet_id": sub}))
            .await
            .ok(StatusCode::OK);
        let routes = json!([{"destination": "192.168.0.0/24", "nexthop": "10.5.0.10"}]);
        let u = st
            .put(
                &format!("/v2.0/routers/{r}"),
                &st.u1,
                json!({"router": {"routes": routes}}),
            )
            .await;
        assert_eq!(u.ok(StatusCode::OK)["router"]["routes"], routes);
        let shown = st.get(&format!("/v2.0/routers/{r}"), &st.reader).await;
        assert_eq!(shown.json["router"]["routes"], routes);
        // a next hop off the router's subnets, the router's own address, garbage
        for bad in [
            json!([{"destination": "192.168.0.0/24", "nexthop": "10.6.0.10"}]),
            json!([{"destination": "192.168.0.0/24", "nexthop": "10.5.0.1"}]),
        ] {
            let e = st
                .put(
                    &format!("/v2.0/routers/{r}"),
                    &st.u1,
                    json!({"router": {"routes": bad}}),
                )
                .await;
            assert_eq!(e.assert_error(StatusCode::BAD_REQUEST), "InvalidRoutes");
        }
        st.put(
            &format!("/v2.0/routers/{r}"),
            &st.u1,
            json!({"router": {"routes": [{"destination": "x", "nexthop": "10.5.0.9"}]}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        // the interface a route needs stays
        let e = remove_if(&st, &st.u1, &r, json!({"subnet_id": sub})).await;
        assert_eq!(
            e.assert_error(StatusCode::CONFLICT),
            "RouterInterfaceInUseByRoute"
        );
        let u = st
            .put(
                &format!("/v2.0/routers/{r}"),
                &st.u1,
                json!({"router": {"routes": null}}),
            )
            .await;
        assert_eq!(u.ok(StatusCode::OK)["router"]["routes"], json!([]));
        remove_if(&st, &st.u1, &r, json!({"subnet_id": sub}))
            .await
            .ok(StatusCode::OK);
    }
}

/// A private network with a subnet attached to a router whose gateway is on `ext`, and a
/// port on it: returns (router, subnet, port view).
async fn reachable(st: &Stack, ext: &str, cidr: &str) -> (String, String, Value) {
    let r = s(
        &router(
            st,
            &st.u1,
            json!({"external_gateway_info": {"network_id": ext}}),
        )
        .await,
        "id",
    );
    let n = s(&st.network(&st.u1, "n").await, "id");
    let sub = s(&subnet(st, &st.u1, &n, cidr).await, "id");
    add_if(st, &st.u1, &r, json!({"subnet_id": sub}))
        .await
        .ok(StatusCode::OK);
    let p = st
        .create_in("ports", "port", &st.u1, json!({"network_id": n}))
        .await;
    (r, sub, p)
}

#[tokio::test]
async fn floating_ips() {
    for st in Stack::all().await {
        let (ext, _) = external(&st, "172.24.4.0/24").await;
        let (r1, sub1, p1) = reachable(&st, &ext, "10.10.0.0/24").await;
        let (r2, _, p2) = reachable(&st, &ext, "10.20.0.0/24").await;
        // create unassociated
        let f = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.u1,
                json!({"floating_network_id": ext, "description": "d"}),
            )
            .await;
        let fid = s(&f, "id");
        assert_eq!(f["status"], "DOWN");
        assert!(f["port_id"].is_null() && f["router_id"].is_null(), "{f}");
        assert_eq!(f["project_id"], st.p1.as_str());
        assert_eq!(f["description"], "d");
        assert_eq!(f["port_forwardings"], json!([]));
        assert!(f.get("_port").is_none(), "{f}");
        let addr = s(&f, "floating_ip_address");
        assert!(addr.starts_with("172.24.4."), "{addr}");
        let fport = st
            .get(&format!("/v2.0/ports?device_id={fid}"), &st.admin)
            .await;
        assert_eq!(
            fport.json["ports"][0]["device_owner"], "network:floatingip",
            "{}",
            fport.raw
        );
        // associate
        let u = st
            .put(
                &format!("/v2.0/floatingips/{fid}"),
                &st.u1,
                json!({"floatingip": {"port_id": s(&p1, "id")}}),
            )
            .await;
        let u = u.ok(StatusCode::OK)["floatingip"].clone();
        assert_eq!(u["router_id"], r1.as_str());
        assert_eq!(u["status"], "ACTIVE");
        assert_eq!(u["fixed_ip_address"], p1["fixed_ips"][0]["ip_address"]);
        // the interface the floating IP needs stays
        let e = remove_if(&st, &st.u1, &r1, json!({"subnet_id": sub1})).await;
        assert_eq!(
            e.assert_error(StatusCode::CONFLICT),
            "RouterInterfaceInUseByFloatingIP"
        );
        // to another port behind another router
        let u = st
            .put(
                &format!("/v2.0/floatingips/{fid}"),
                &st.u1,
                json!({"floatingip": {"port_id": s(&p2, "id")}}),
            )
            .await;
        assert_eq!(u.ok(StatusCode::OK)["floatingip"]["router_id"], r2.as_str());
        // disassociate
        let u = st
            .put(
                &format!("/v2.0/floatingips/{fid}"),
                &st.u1,
                json!({"floatingip": {"port_id": null}}),
            )
            .await;
        let u = u.ok(StatusCode::OK)["floatingip"].clone();
        assert!(
            u["port_id"].is_null() && u["router_id"].is_null() && u["fixed_ip_address"].is_null()
        );
        assert_eq!(u["status"], "DOWN");
        // create associated, with the fixed address named
        let f2 = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.u1,
                json!({"floating_network_id": ext, "port_id": s(&p1, "id"),
                       "fixed_ip_address": p1["fixed_ips"][0]["ip_address"]}),
            )
            .await;
        assert_eq!(f2["router_id"], r1.as_str());
        // deleting the port disassociates
        st.delete(&format!("/v2.0/ports/{}", s(&p1, "id")), &st.u1)
            .await
            .status
            .is_success()
            .then_some(())
            .expect("port deleted");
        let shown = st
            .get(&format!("/v2.0/floatingips/{}", s(&f2, "id")), &st.reader)
            .await;
        let shown = shown.ok(StatusCode::OK)["floatingip"].clone();
        assert!(
            shown["port_id"].is_null() && shown["router_id"].is_null(),
            "{shown}"
        );
        // visibility and lists
        assert_eq!(st.ids(&st.u1, "floatingips", "").await.len(), 2);
        assert!(st.ids(&st.u2, "floatingips", "").await.is_empty());
        assert_eq!(
            st.ids(
                &st.u1,
                "floatingips",
                &format!("floating_ip_address={addr}")
            )
            .await,
            vec![fid.clone()]
        );
        // delete frees the address
        for id in [fid.clone(), s(&f2, "id")] {
            let d = st.delete(&format!("/v2.0/floatingips/{id}"), &st.u1).await;
            assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.raw);
        }
        assert!(st
            .ids(&st.admin, "ports", &format!("device_id={fid}"))
            .await
            .is_empty());
        st.get(&format!("/v2.0/floatingips/{fid}"), &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let again = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.admin,
                json!({"floating_network_id": ext, "floating_ip_address": addr}),
            )
            .await;
        assert_eq!(again["floating_ip_address"], addr.as_str());
    }
}

#[tokio::test]
async fn floating_ip_errors() {
    for st in Stack::all().await {
        let (ext, _) = external(&st, "172.24.4.0/24").await;
        // a port whose subnet no router connects to the external network
        let n = s(&st.network(&st.u1, "n").await, "id");
        subnet(&st, &st.u1, &n, "10.30.0.0/24").await;
        let p = st
            .create_in("ports", "port", &st.u1, json!({"network_id": n}))
            .await;
        let e = st
            .post(
                "/v2.0/floatingips",
                &st.u1,
                json!({"floatingip": {"floating_network_id": ext, "port_id": s(&p, "id")}}),
            )
            .await;
        assert_eq!(
            e.assert_error(StatusCode::NOT_FOUND),
            "ExternalGatewayForFloatingIPNotFound"
        );
        assert!(
            e.message().contains("is not reachable from subnet"),
            "{}",
            e.raw
        );
        let f = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.u1,
                json!({"floating_network_id": ext}),
            )
            .await;
        st.put(
            &format!("/v2.0/floatingips/{}", s(&f, "id")),
            &st.u1,
            json!({"floatingip": {"port_id": s(&p, "id")}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        // a private network
        let e = st
            .post(
                "/v2.0/floatingips",
                &st.u1,
                json!({"floatingip": {"floating_network_id": n}}),
            )
            .await;
        assert_eq!(e.assert_error(StatusCode::BAD_REQUEST), "BadRequest");
        assert!(
            e.message().contains("is not a valid external network"),
            "{}",
            e.raw
        );
        // a missing one
        st.post(
            "/v2.0/floatingips",
            &st.u1,
            json!({"floatingip": {"floating_network_id": "nope"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        // a port with two addresses needs one named
        let (_, sub, _) = reachable(&st, &ext, "10.40.0.0/24").await;
        let two = st
            .create_in(
                "ports",
                "port",
                &st.u1,
                json!({"network_id": s(&st.get(&format!("/v2.0/subnets/{sub}"), &st.u1).await.json["subnet"], "network_id"),
                       "fixed_ips": [{"subnet_id": sub}, {"subnet_id": sub}]}),
            )
            .await;
        let e = st
            .post(
                "/v2.0/floatingips",
                &st.u1,
                json!({"floatingip": {"floating_network_id": ext, "port_id": s(&two, "id")}}),
            )
            .await;
        e.assert_error(StatusCode::BAD_REQUEST);
        let second = two["fixed_ips"][1]["ip_address"].clone();
        let ok = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.u1,
                json!({"floating_network_id": ext, "port_id": s(&two, "id"),
                       "fixed_ip_address": second}),
            )
            .await;
        assert_eq!(ok["fixed_ip_address"], second);
        // the gateway a floating IP uses stays
        let r = s(&ok, "router_id");
        let e = st
            .put(
                &format!("/v2.0/routers/{r}"),
                &st.u1,
                json!({"router": {"external_gateway_info": null}}),
            )
            .await;
        e.assert_error(StatusCode::CONFLICT);
        // quota
        st.put(
            &format!("/v2.0/quotas/{}", st.p2),
            &st.admin,
            json!({"quota": {"floatingip": 0, "router": 0}}),
        )
        .await
        .ok(StatusCode::OK);
        let e = st
            .post(
                "/v2.0/floatingips",
                &st.u2,
                json!({"floatingip": {"floating_network_id": ext}}),
            )
            .await;
        assert_eq!(e.assert_error(StatusCode::CONFLICT), "OverQuota");
        let e = st
            .post("/v2.0/routers", &st.u2, json!({"router": {}}))
            .await;
        assert_eq!(e.assert_error(StatusCode::CONFLICT), "OverQuota");
    }
}

#[tokio::test]
async fn bootstrap_is_idempotent() {
    for st in Stack::all().await {
        let demo = st.p1.clone();
        assert!(st
            .network
            .bootstrap(&st.admin_project, &demo)
            .await
            .unwrap());
        assert!(!st
            .network
            .bootstrap(&st.admin_project, &demo)
            .await
            .unwrap());
        let nets = st.get("/v2.0/networks", &st.admin).await;
        let names: Vec<&str> = nets.json["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.iter().filter(|n| **n == "public").count(), 1);
        assert_eq!(names.iter().filter(|n| **n == "private").count(), 1);
        let routers = st.get("/v2.0/routers?name=router1", &st.u1).await;
        let routers = routers.ok(StatusCode::OK)["routers"].clone();
        assert_eq!(routers.as_array().unwrap().len(), 1, "{routers}");
        let r = &routers[0];
        assert_eq!(r["project_id"], demo.as_str());
        assert_eq!(
            r["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
            "172.24.4.2"
        );
        let subs = st.get("/v2.0/subnets?name=public-subnet", &st.admin).await;
        let sub = &subs.json["subnets"][0];
        assert_eq!(sub["cidr"], "172.24.4.0/24");
        assert_eq!(sub["gateway_ip"], "172.24.4.1");
        assert_eq!(
            sub["allocation_pools"],
            json!([{"start": "172.24.4.2", "end": "172.24.4.254"}])
        );
        let subs = st.get("/v2.0/subnets?name=private-subnet", &st.u1).await;
        let private_sub = s(&subs.json["subnets"][0], "id");
        assert_eq!(subs.json["subnets"][0]["cidr"], "10.0.0.0/26");
        let ifs = st
            .get(
                &format!(
                    "/v2.0/ports?device_id={}&device_owner=network:router_interface",
                    s(r, "id")
                ),
                &st.u1,
            )
            .await;
        assert_eq!(
            ifs.json["ports"][0]["fixed_ips"][0]["subnet_id"],
            private_sub.as_str(),
            "{}",
            ifs.raw
        );
        // the demo project can use it: a floating IP for a port on private
        let public = s(
            &st.get("/v2.0/networks?name=public", &st.u1).await.json["networks"][0],
            "id",
        );
        let private = s(
            &st.get("/v2.0/networks?name=private", &st.u1).await.json["networks"][0],
            "id",
        );
        let p = st
            .create_in("ports", "port", &st.u1, json!({"network_id": private}))
            .await;
        let f = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.u1,
                json!({"floating_network_id": public, "port_id": s(&p, "id")}),
            )
            .await;
        assert_eq!(f["router_id"], r["id"]);
    }
}

#[tokio::test]
async fn deleting_an_external_network_takes_its_floating_ips() {
    for st in Stack::all().await {
        let (ext, _) = external(&st, "172.25.0.0/24").await;
        let fip = st
            .create_in(
                "floatingips",
                "floatingip",
                &st.u1,
                json!({"floating_network_id": ext}),
            )
            .await;
        let fid = s(&fip, "id");
        // A router gateway on it still blocks the delete.
        let r = router(
            &st,
            &st.u1,
            json!({"external_gateway_info": {"network_id": ext}}),
        )
        .await;
        let rid = s(&r, "id");
        let e = st.delete(&format!("/v2.0/networks/{ext}"), &st.admin).await;
        assert_eq!(e.assert_error(StatusCode::CONFLICT), "NetworkInUse");
        let r = st.delete(&format!("/v2.0/routers/{rid}"), &st.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = st.delete(&format!("/v2.0/networks/{ext}"), &st.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        st.get(&format!("/v2.0/floatingips/{fid}"), &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // No agents: an empty list for everyone.
        let a = st.get("/v2.0/agents", &st.u1).await;
        assert_eq!(a.ok(StatusCode::OK)["agents"], json!([]));
    }
}
