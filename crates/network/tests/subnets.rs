//! Subnets, subnet pools and address allocation, on SQLite and PostgreSQL.

mod common;

use common::{s, Stack};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::IpAddr;
use strata_network::db::{self, Resource};
use strata_network::ipam;

async fn subnet(st: &Stack, token: &str, body: Value) -> Value {
    st.create_in("subnets", "subnet", token, body).await
}

#[tokio::test]
async fn v4_and_v6_defaults() {
    for st in Stack::all().await {
        let net = st.network(&st.u1, "n").await;
        let nid = s(&net, "id");
        let v4 = subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24"}),
        )
        .await;
        assert_eq!(v4["gateway_ip"], "10.0.0.1");
        assert_eq!(
            v4["allocation_pools"],
            json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
        );
        assert_eq!(v4["enable_dhcp"], true);
        assert_eq!(v4["dns_nameservers"], json!([]));
        assert_eq!(v4["host_routes"], json!([]));
        assert_eq!(v4["ipv6_ra_mode"], Value::Null);
        assert_eq!(v4["subnetpool_id"], Value::Null);
        assert_eq!(v4["segment_id"], Value::Null);
        assert_eq!(v4["service_types"], json!([]));
        assert_eq!(v4["revision_number"], 0);
        assert_eq!(v4["tenant_id"], json!(st.p1));
        assert_eq!(v4["project_id"], json!(st.p1));
        let v6 = subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 6, "cidr": "2001:db8::/64",
            "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        )
        .await;
        assert_eq!(v6["gateway_ip"], "2001:db8::1");
        assert_eq!(
            v6["allocation_pools"],
            json!([{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}])
        );
        assert_eq!(v6["ipv6_address_mode"], "slaac");
        // the network lists both
        let n = st.get(&format!("/v2.0/networks/{nid}"), &st.u1).await;
        let subs = n.ok(StatusCode::OK)["network"]["subnets"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(subs, 2, "{}", st.label());
        // show with fields
        let r = st
            .get(
                &format!("/v2.0/subnets/{}?fields=id&fields=cidr", s(&v4, "id")),
                &st.u1,
            )
            .await;
        let keys: Vec<&String> = r.ok(StatusCode::OK)["subnet"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys.len(), 2);
        // not visible to another project
        st.get(&format!("/v2.0/subnets/{}", s(&v4, "id")), &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // versions lists the collections
        let v = st.get("/v2.0", &st.u1).await;
        assert!(v.raw.contains("\"subnetpools\"") && v.raw.contains("\"subnets\""));
    }
}

#[tokio::test]
async fn explicit_gateway_pools_and_none() {
    for st in Stack::all().await {
        let nid = s(&st.network(&st.u1, "n").await, "id");
        let a = subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.1.0.0/24",
            "gateway_ip": "10.1.0.254",
            "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.20"}],
            "dns_nameservers": ["8.8.8.8", "8.8.4.4"],
            "host_routes": [{"destination": "10.20.0.0/32", "nexthop": "10.1.0.1"}]}),
        )
        .await;
        assert_eq!(a["gateway_ip"], "10.1.0.254");
        assert_eq!(
            a["allocation_pools"],
            json!([{"start": "10.1.0.10", "end": "10.1.0.20"}])
        );
        assert_eq!(a["dns_nameservers"], json!(["8.8.8.8", "8.8.4.4"]));
        let b = subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24",
            "gateway_ip": null}),
        )
        .await;
        assert_eq!(b["gateway_ip"], Value::Null);
        assert_eq!(
            b["allocation_pools"],
            json!([{"start": "10.2.0.1", "end": "10.2.0.254"}])
        );
        let g = subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.3.0.0/24",
            "gateway_ip": "10.3.0.100"}),
        )
        .await;
        assert_eq!(
            g["allocation_pools"],
            json!([{"start": "10.3.0.1", "end": "10.3.0.99"},
            {"start": "10.3.0.101", "end": "10.3.0.254"}])
        );
        // update: gateway, dns, routes, dhcp
        let r = st
            .put(
                &format!("/v2.0/subnets/{}", s(&a, "id")),
                &st.u1,
                json!({"subnet": {
            "gateway_ip": "10.1.0.253", "dns_nameservers": ["7.8.8.8"], "enable_dhcp": false,
            "host_routes": [], "name": "renamed"}}),
            )
            .await;
        let u = &r.ok(StatusCode::OK)["subnet"];
        assert_eq!(u["gateway_ip"], "10.1.0.253");
        assert_eq!(u["dns_nameservers"], json!(["7.8.8.8"]));
        assert_eq!(u["enable_dhcp"], false);
        assert_eq!(u["revision_number"], 1);
        // gateway into a pool
        let r = st
            .put(
                &format!("/v2.0/subnets/{}", s(&a, "id")),
                &st.u1,
                json!({"subnet": {"gateway_ip": "10.1.0.15"}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "GatewayConflictWithAllocationPools"
        );
        let r = st
            .put(
                &format!("/v2.0/subnets/{}", s(&a, "id")),
                &st.u1,
                json!({"subnet": {"cidr": "10.9.0.0/24"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // another project cannot add a subnet to u1's network
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u2,
                json!({"subnet": {"network_id": nid,
            "ip_version": 4, "cidr": "10.8.0.0/24"}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // delete
        let r = st
            .delete(&format!("/v2.0/subnets/{}", s(&b, "id")), &st.u1)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        st.get(&format!("/v2.0/subnets/{}", s(&b, "id")), &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn invalid_requests() {
    for st in Stack::all().await {
        let nid = s(&st.network(&st.u1, "n").await, "id");
        subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24"}),
        )
        .await;
        let post = |body: Value| {
            let st = &st;
            async move {
                st.post("/v2.0/subnets", &st.u1, json!({"subnet": body}))
                    .await
            }
        };
        // overlap on the same network
        let r = post(json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.128/25"})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        assert!(
            r.message().contains("overlaps with another subnet"),
            "{}",
            r.raw
        );
        assert_eq!(
            r.message(),
            format!(
                "Invalid input for operation: Requested subnet with cidr: \
            10.0.0.128/25 for network: {nid} overlaps with another subnet."
            )
        );
        // the same CIDR on another network is fine
        let other = s(&st.network(&st.u1, "o").await, "id");
        subnet(
            &st,
            &st.u1,
            json!({"network_id": other, "ip_version": 4, "cidr": "10.0.0.0/24"}),
        )
        .await;
        for (body, status) in [
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/33"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "bogus"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.1/24"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 6, "cidr": "10.5.0.0/24"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 5, "cidr": "10.5.0.0/24"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "cidr": "10.5.0.0/24"}),
                StatusCode::BAD_REQUEST,
            ),
            // gateway outside, or the network / broadcast address
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24", "gateway_ip": "10.6.0.1"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24", "gateway_ip": "10.5.0.255"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24", "gateway_ip": "nope"}),
                StatusCode::BAD_REQUEST,
            ),
            // pools outside, reversed, overlapping, containing the gateway
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24",
                "allocation_pools": [{"start": "10.5.0.10", "end": "10.5.1.10"}]}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24",
                "allocation_pools": [{"start": "10.5.0.20", "end": "10.5.0.10"}]}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24",
                "allocation_pools": [{"start": "10.5.0.10", "end": "10.5.0.20"},
                                     {"start": "10.5.0.15", "end": "10.5.0.30"}]}),
                StatusCode::CONFLICT,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24",
                "allocation_pools": [{"start": "10.5.0.1", "end": "10.5.0.20"}]}),
                StatusCode::CONFLICT,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24", "bogus": 1}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24",
                "dns_nameservers": ["1.1.1.1", "1.1.1.1"]}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"network_id": "missing", "ip_version": 4, "cidr": "10.5.0.0/24"}),
                StatusCode::NOT_FOUND,
            ),
        ] {
            let r = post(body.clone()).await;
            assert_eq!(r.status, status, "{} {body}: {}", st.label(), r.raw);
            r.assert_error(status);
        }
        let r = post(
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24",
            "allocation_pools": [{"start": "10.5.0.1", "end": "10.5.0.20"}]}),
        )
        .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "GatewayConflictWithAllocationPools"
        );
    }
}

#[tokio::test]
async fn ipv6_mode_combinations() {
    for st in Stack::all().await {
        let nid = s(&st.network(&st.u1, "n").await, "id");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("2001:db8:{n}::/64")
        };
        for (ra, am, ok) in [
            (json!("slaac"), json!("slaac"), true),
            (json!("dhcpv6-stateful"), json!("dhcpv6-stateful"), true),
            (json!("dhcpv6-stateless"), json!("dhcpv6-stateless"), true),
            (Value::Null, json!("slaac"), true),
            (json!("slaac"), Value::Null, true),
            (json!("slaac"), json!("dhcpv6-stateful"), false),
            (json!("dhcpv6-stateless"), json!("slaac"), false),
            (json!("bogus"), json!("slaac"), false),
        ] {
            let mut body = json!({"network_id": nid, "ip_version": 6, "cidr": next()});
            if !ra.is_null() {
                body["ipv6_ra_mode"] = ra.clone();
            }
            if !am.is_null() {
                body["ipv6_address_mode"] = am.clone();
            }
            let r = st
                .post("/v2.0/subnets", &st.u1, json!({"subnet": body}))
                .await;
            if ok {
                assert_eq!(r.status, StatusCode::CREATED, "{ra} {am}: {}", r.raw);
                assert_eq!(r.json["subnet"]["ipv6_ra_mode"], ra);
                assert_eq!(r.json["subnet"]["ipv6_address_mode"], am);
            } else {
                r.assert_error(StatusCode::BAD_REQUEST);
            }
        }
        // modes need DHCP, v6, and a /64 for SLAAC
        for body in [
            json!({"network_id": nid, "ip_version": 6, "cidr": next(), "enable_dhcp": false,
                "ipv6_address_mode": "slaac"}),
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24",
                "ipv6_address_mode": "slaac"}),
            json!({"network_id": nid, "ip_version": 6, "cidr": "2001:db9::/80",
                "ipv6_address_mode": "slaac"}),
        ] {
            let r = st
                .post("/v2.0/subnets", &st.u1, json!({"subnet": body}))
                .await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        // stateful works on other prefix lengths
        subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 6, "cidr": "2001:dba::/80",
            "ipv6_address_mode": "dhcpv6-stateful"}),
        )
        .await;
    }
}

#[tokio::test]
async fn list_filters_fields_and_bulk() {
    for st in Stack::all().await {
        let n1 = s(&st.network(&st.u1, "n1").await, "id");
        let n2 = s(&st.network(&st.u1, "n2").await, "id");
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u1,
                json!({"subnets": [
                    {"network_id": n1, "ip_version": 4, "cidr": "10.0.0.0/24", "name": "a"},
                    {"network_id": n2, "ip_version": 4, "cidr": "10.0.1.0/24"},
                ]}),
            )
            .await;
        let created = r.ok(StatusCode::CREATED)["subnets"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(created.len(), 2);
        // a failing bulk creates nothing
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u1,
                json!({"subnets": [
                    {"network_id": n1, "ip_version": 4, "cidr": "10.0.2.0/24"},
                    {"network_id": n1, "ip_version": 4, "cidr": "10.0.2.0/25"},
                ]}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(st.ids(&st.u1, "subnets", "").await.len(), 2);
        assert_eq!(
            st.ids(&st.u1, "subnets", &format!("network_id={n1}")).await,
            vec![s(&created[0], "id")]
        );
        assert_eq!(
            st.ids(&st.u1, "subnets", "cidr=10.0.1.0/24").await,
            vec![s(&created[1], "id")]
        );
        assert_eq!(st.ids(&st.u1, "subnets", "ip_version=6").await.len(), 0);
        assert_eq!(st.ids(&st.u2, "subnets", "").await.len(), 0);
        assert_eq!(st.ids(&st.admin, "subnets", "").await.len(), 2);
        let r = st
            .get(
                "/v2.0/subnets?fields=id&fields=network_id&sort_key=cidr&sort_dir=desc",
                &st.u1,
            )
            .await;
        let items = r.ok(StatusCode::OK)["subnets"].as_array().unwrap().clone();
        assert_eq!(items[0]["id"], created[1]["id"]);
        assert_eq!(items[0].as_object().unwrap().len(), 2);
        st.get("/v2.0/subnets?bogus=1", &st.u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // subnets of shared networks are visible to everyone
        let shared = s(
            &st.network_with(&st.admin, json!({"name": "sh", "shared": true}))
                .await,
            "id",
        );
        let sub = subnet(
            &st,
            &st.admin,
            json!({"network_id": shared, "ip_version": 4, "cidr": "10.9.0.0/24"}),
        )
        .await;
        assert_eq!(st.ids(&st.u2, "subnets", "").await, vec![s(&sub, "id")]);
        // but only the owner adds subnets to it
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u2,
                json!({"subnet": {"network_id": shared,
            "ip_version": 4, "cidr": "10.10.0.0/24"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        // deleting the network takes its subnets
        let r = st.delete(&format!("/v2.0/networks/{n1}"), &st.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        assert_eq!(st.ids(&st.u1, "subnets", "").await.len(), 2); // n2's and the shared network's
    }
}

#[tokio::test]
async fn subnet_pools() {
    for st in Stack::all().await {
        let pool = st
            .create_in(
                "subnetpools",
                "subnetpool",
                &st.u1,
                json!({"name": "p",
            "prefixes": ["10.10.0.0/17", "10.10.128.0/17"], "default_prefixlen": 24}),
            )
            .await;
        assert_eq!(pool["prefixes"], json!(["10.10.0.0/16"]));
        assert_eq!(pool["ip_version"], 4);
        assert_eq!(pool["min_prefixlen"], 8);
        assert_eq!(pool["max_prefixlen"], 32);
        assert_eq!(pool["is_default"], false);
        assert_eq!(pool["shared"], false);
        assert_eq!(pool["address_scope_id"], Value::Null);
        assert_eq!(pool["default_quota"], Value::Null);
        let pid = s(&pool, "id");
        let nid = s(&st.network(&st.u1, "n").await, "id");
        let a = subnet(
            &st,
            &st.u1,
            json!({"network_id": nid, "ip_version": 4, "subnetpool_id": pid}),
        )
        .await;
        assert_eq!(a["cidr"], "10.10.0.0/24");
        assert_eq!(a["subnetpool_id"], json!(pid));
        assert_eq!(a["gateway_ip"], "10.10.0.1");
        let other = s(&st.network(&st.u1, "o").await, "id");
        let b = subnet(
            &st,
            &st.u1,
            json!({"network_id": other, "ip_version": 4, "subnetpool_id": pid,
            "prefixlen": 26}),
        )
        .await;
        assert_eq!(b["cidr"], "10.10.1.0/26");
        let c = subnet(
            &st,
            &st.u1,
            json!({"network_id": other, "ip_version": 4, "subnetpool_id": pid}),
        )
        .await;
        assert_eq!(c["cidr"], "10.10.2.0/24");
        // a pool with prefixlen out of bounds, or the wrong family
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u1,
                json!({"subnet": {"network_id": nid, "ip_version": 4,
            "subnetpool_id": pid, "prefixlen": 4}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u1,
                json!({"subnet": {"network_id": nid, "ip_version": 6,
            "subnetpool_id": pid}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // exhaustion
        let small = st
            .create_in(
                "subnetpools",
                "subnetpool",
                &st.u1,
                json!({"name": "s",
            "prefixes": ["192.168.0.0/24"], "default_prefixlen": 25, "min_prefixlen": 24}),
            )
            .await;
        let sid = s(&small, "id");
        for _ in 0..2 {
            let n = s(&st.network(&st.u1, "x").await, "id");
            subnet(
                &st,
                &st.u1,
                json!({"network_id": n, "ip_version": 4, "subnetpool_id": sid}),
            )
            .await;
        }
        let n = s(&st.network(&st.u1, "x").await, "id");
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u1,
                json!({"subnet": {"network_id": n, "ip_version": 4,
            "subnetpool_id": sid}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "SubnetAllocationError"
        );
        // other projects do not see it
        st.get(&format!("/v2.0/subnetpools/{pid}"), &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u2,
                json!({"subnet": {"network_id":
            s(&st.network(&st.u2, "q").await, "id"), "ip_version": 4, "subnetpool_id": pid}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // update, in-use delete, delete
        let r = st
            .put(
                &format!("/v2.0/subnetpools/{pid}"),
                &st.u1,
                json!({"subnetpool": {"name": "q",
            "prefixes": ["10.10.0.0/16", "10.20.0.0/16"]}}),
            )
            .await;
        let u = &r.ok(StatusCode::OK)["subnetpool"];
        assert_eq!(u["name"], "q");
        assert_eq!(u["prefixes"], json!(["10.10.0.0/16", "10.20.0.0/16"]));
        let r = st
            .put(
                &format!("/v2.0/subnetpools/{pid}"),
                &st.u1,
                json!({"subnetpool": {"prefixes": ["10.20.0.0/16"]}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = st.delete(&format!("/v2.0/subnetpools/{pid}"), &st.u1).await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "SubnetPoolInUse");
        let empty = st
            .create_in(
                "subnetpools",
                "subnetpool",
                &st.u1,
                json!({"name": "e",
            "prefixes": "172.16.0.0/12"}),
            )
            .await;
        let r = st
            .delete(&format!("/v2.0/subnetpools/{}", s(&empty, "id")), &st.u1)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        st.get(&format!("/v2.0/subnetpools/{}", s(&empty, "id")), &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // bad pools
        for body in [
            json!({"prefixes": ["10.0.0.0/8", "2001:db8::/32"]}),
            json!({"prefixes": ["10.0.0.0/8"], "default_prefixlen": 4}),
            json!({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 30, "max_prefixlen": 24}),
            json!({"prefixes": ["bogus"]}),
            json!({"name": "no prefixes"}),
        ] {
            let r = st
                .post("/v2.0/subnetpools", &st.u1, json!({"subnetpool": body}))
                .await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        // is_default and shared are admin's
        let r = st
            .post(
                "/v2.0/subnetpools",
                &st.u1,
                json!({"subnetpool": {"prefixes": ["10.0.0.0/8"],
            "is_default": true}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        // the default pool
        let def6 = st
            .create_in(
                "subnetpools",
                "subnetpool",
                &st.admin,
                json!({"name": "d6",
            "prefixes": ["2001:db8::/48"], "is_default": true, "shared": true}),
            )
            .await;
        assert_eq!(def6["min_prefixlen"], 64);
        assert_eq!(def6["ip_version"], 6);
        let r = st
            .post(
                "/v2.0/subnetpools",
                &st.admin,
                json!({"subnetpool": {"prefixes": ["2001:db9::/48"],
            "is_default": true}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let n = s(&st.network(&st.u2, "d").await, "id");
        let d = subnet(
            &st,
            &st.u2,
            json!({"network_id": n, "ip_version": 6, "use_default_subnetpool": true,
            "ipv6_address_mode": "slaac"}),
        )
        .await;
        assert_eq!(d["cidr"], "2001:db8::/64");
        let r = st
            .post(
                "/v2.0/subnets",
                &st.u2,
                json!({"subnet": {"network_id": n, "ip_version": 4,
            "use_default_subnetpool": true}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let ext = st.get("/v2.0/extensions/subnet_allocation", &st.u1).await;
        ext.ok(StatusCode::OK);
        st.get("/v2.0/extensions/default-subnetpools", &st.u1)
            .await
            .ok(StatusCode::OK);
    }
}

fn subnet_doc(id: &str, cidr: &str, pools: Value, gateway: Value, mode: Option<&str>) -> Resource {
    let mut doc = serde_json::Map::new();
    let c = ipam::Cidr::parse(cidr).unwrap();
    doc.insert("network_id".into(), json!("net"));
    doc.insert("cidr".into(), json!(cidr));
    doc.insert("ip_version".into(), json!(c.version()));
    doc.insert("gateway_ip".into(), gateway);
    doc.insert("allocation_pools".into(), pools);
    doc.insert("ipv6_address_mode".into(), json!(mode));
    Resource::new("subnet", id.to_string(), "p".into(), doc)
}

async fn alloc(
    st: &Stack,
    sub: &Resource,
    port: &str,
    req: Option<IpAddr>,
    mac: Option<&str>,
) -> Result<IpAddr, (StatusCode, String)> {
    let (sub, port, mac) = (sub.clone(), port.to_string(), mac.map(str::to_string));
    st.network
        .store()
        .write(move |tx| {
            let (sub, port, mac) = (sub.clone(), port.clone(), mac.clone());
            Box::pin(
                async move { ipam::allocate(tx, &sub, &port, "net", req, mac.as_deref()).await },
            )
        })
        .await
        .unwrap()
        .map_err(|e| (e.status, e.kind))
}

#[tokio::test]
async fn ipam_allocation_rules() {
    for st in Stack::all().await {
        let sub = subnet_doc(
            "s1",
            "10.0.0.0/24",
            json!([{"start": "10.0.0.1", "end": "10.0.0.3"}]),
            json!("10.0.0.1"),
            None,
        );
        // never the gateway unless asked
        assert_eq!(
            alloc(&st, &sub, "p1", None, None)
                .await
                .unwrap()
                .to_string(),
            "10.0.0.2"
        );
        assert_eq!(
            alloc(&st, &sub, "p2", None, None)
                .await
                .unwrap()
                .to_string(),
            "10.0.0.3"
        );
        let e = alloc(&st, &sub, "p3", None, None).await.unwrap_err();
        assert_eq!(
            e,
            (
                StatusCode::CONFLICT,
                "IpAddressGenerationFailure".to_string()
            )
        );
        // requested addresses
        let want = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            alloc(&st, &sub, "p3", want("10.0.0.1"), None)
                .await
                .unwrap()
                .to_string(),
            "10.0.0.1"
        );
        assert_eq!(
            alloc(&st, &sub, "p4", want("10.0.0.200"), None)
                .await
                .unwrap()
                .to_string(),
            "10.0.0.200"
        );
        let e = alloc(&st, &sub, "p5", want("10.0.0.200"), None)
            .await
            .unwrap_err();
        assert_eq!(e.1, "IpAddressAlreadyAllocated");
        for bad in ["10.0.0.0", "10.0.0.255", "10.0.1.5", "::1"] {
            let e = alloc(&st, &sub, "p5", want(bad), None).await.unwrap_err();
            assert_eq!(
                e,
                (StatusCode::BAD_REQUEST, "InvalidIpForSubnet".to_string()),
                "{bad}"
            );
        }
        // release and reuse
        let store = st.network.store().clone();
        store
            .write(|tx| {
                Box::pin(async move {
                    ipam::release(tx, "p1").await?;
                    ipam::release_address(tx, "s1", "10.0.0.200".parse().unwrap()).await
                })
            })
            .await
            .unwrap();
        assert_eq!(
            alloc(&st, &sub, "p6", None, None)
                .await
                .unwrap()
                .to_string(),
            "10.0.0.2"
        );
        assert_eq!(
            alloc(&st, &sub, "p7", want("10.0.0.200"), None)
                .await
                .unwrap()
                .to_string(),
            "10.0.0.200"
        );
        // SLAAC: EUI-64 from the MAC
        let v6 = subnet_doc(
            "s6",
            "2001:db8::/64",
            json!([{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}]),
            json!("2001:db8::1"),
            Some("slaac"),
        );
        let ip = alloc(&st, &v6, "p8", None, Some("fa:16:3e:12:34:56"))
            .await
            .unwrap();
        assert_eq!(ip.to_string(), "2001:db8::f816:3eff:fe12:3456");
        let stateful = subnet_doc(
            "s7",
            "2001:db8:1::/64",
            json!([{"start": "2001:db8:1::2", "end": "2001:db8:1::ffff:ffff:ffff:ffff"}]),
            json!("2001:db8:1::1"),
            Some("dhcpv6-stateful"),
        );
        let ip = alloc(&st, &stateful, "p9", None, Some("fa:16:3e:12:34:56"))
            .await
            .unwrap();
        assert_eq!(ip.to_string(), "2001:db8:1::2");
    }
}

#[tokio::test]
async fn ipam_concurrent_allocation_is_exact() {
    for st in Stack::all().await {
        // a /26 with a 60-address pool
        let sub = subnet_doc(
            "c1",
            "10.0.0.0/26",
            json!([{"start": "10.0.0.2", "end": "10.0.0.61"}]),
            json!("10.0.0.1"),
            None,
        );
        let mut tasks = Vec::new();
        for i in 0..100 {
            let store = st.network.store().clone();
            let sub = sub.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(move |tx| {
                        let sub = sub.clone();
                        Box::pin(async move {
                            ipam::allocate(tx, &sub, &format!("port-{i}"), "net-x", None, None)
                                .await
                        })
                    })
                    .await
            }));
        }
        let mut ok = HashSet::new();
        let mut failed = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Ok(ip) => assert!(ok.insert(ip), "{ip} handed out twice"),
                Err(e) => {
                    assert_eq!(e.kind, "IpAddressGenerationFailure");
                    assert_eq!(
                        e.message,
                        "No more IP addresses available on network net-x."
                    );
                    failed += 1;
                }
            }
        }
        assert_eq!(ok.len(), 60, "{}", st.label());
        assert_eq!(failed, 40);
        let _ = db::list(st.network.store(), "subnet", None).await.unwrap();
    }
}

#[tokio::test]
async fn ipam_nearly_full_slash16() {
    for st in Stack::all().await {
        let sub = subnet_doc(
            "big",
            "10.1.0.0/16",
            json!([{"start": "10.1.0.2", "end": "10.1.255.254"}]),
            json!("10.1.0.1"),
            None,
        );
        // fill all but the last address in one write
        st.network.store().write(|tx| Box::pin(async move {
            let mut q = String::new();
            let mut n = 0;
            for v in 0x0a01_0002u32..0x0a01_fffe {
                let ip = std::net::Ipv4Addr::from(v);
                if q.is_empty() {
                    q.push_str("INSERT INTO network_ip_allocation (subnet_id, ip_address, network_id, port_id) VALUES ");
                } else {
                    q.push(',');
                }
                q.push_str(&format!("('big', '{ip}', 'net', 'fill')"));
                n += 1;
                if n == 2000 {
                    strata_store::sqlx::query(&q).execute(tx.conn()).await.map_err(strata_store::from_sqlx)?;
                    q.clear();
                    n = 0;
                }
            }
            if !q.is_empty() {
                strata_store::sqlx::query(&q).execute(tx.conn()).await.map_err(strata_store::from_sqlx)?;
            }
            Ok(())
        })).await.unwrap();
        let t = std::time::Instant::now();
        let ip = alloc(&st, &sub, "last", None, None).await.unwrap();
        assert_eq!(ip.to_string(), "10.1.255.254");
        let e = alloc(&st, &sub, "none", None, None).await.unwrap_err();
        assert_eq!(e.1, "IpAddressGenerationFailure");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }
}
