//! `/v2.0/security-groups` and `/v2.0/security-group-rules`, on every backend.

mod common;

use common::{s, Stack};
use http::StatusCode;
use serde_json::{json, Value};

async fn rule(st: &Stack, token: &str, body: Value) -> common::Resp {
    st.post(
        "/v2.0/security-group-rules",
        token,
        json!({ "security_group_rule": body }),
    )
    .await
}

#[tokio::test]
async fn default_group_is_made_once_with_neutron_rules() {
    for st in Stack::all().await {
        let r = st.get("/v2.0/security-groups", &st.u1).await;
        let groups = r.ok(StatusCode::OK)["security_groups"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(groups.len(), 1, "{}", r.raw);
        let d = &groups[0];
        assert_eq!(d["name"], "default");
        assert_eq!(d["description"], "Default security group");
        assert_eq!(d["tenant_id"], st.p1.as_str());
        assert_eq!(d["project_id"], st.p1.as_str());
        assert_eq!(d["stateful"], true);
        assert_eq!(d["shared"], false);
        assert_eq!(d["tags"], json!([]));
        assert!(d["revision_number"].is_i64());
        assert!(d["created_at"].is_string() && d["updated_at"].is_string());
        let id = s(d, "id");
        let rules = d["security_group_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 4);
        let mut shapes: Vec<(String, String, Value)> = rules
            .iter()
            .map(|r| {
                assert_eq!(r["security_group_id"], id.as_str());
                assert!(r["protocol"].is_null() && r["remote_ip_prefix"].is_null());
                assert!(r["remote_address_group_id"].is_null());
                assert_eq!(r["belongs_to_default_sg"], true);
                (
                    s(r, "direction"),
                    s(r, "ethertype"),
                    r["remote_group_id"].clone(),
                )
            })
            .collect();
        shapes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        assert_eq!(
            shapes,
            vec![
                ("egress".into(), "IPv4".into(), Value::Null),
                ("egress".into(), "IPv6".into(), Value::Null),
                ("ingress".into(), "IPv4".into(), json!(id)),
                ("ingress".into(), "IPv6".into(), json!(id)),
            ]
        );
        // Listing again, or concurrently, makes no second one.
        let (a, b, c) = tokio::join!(
            st.get("/v2.0/security-groups", &st.u1),
            st.get("/v2.0/security-groups", &st.u1),
            st.get("/v2.0/security-groups?name=default", &st.u2),
        );
        assert_eq!(a.json["security_groups"].as_array().unwrap().len(), 1);
        assert_eq!(b.json["security_groups"].as_array().unwrap().len(), 1);
        assert_eq!(c.json["security_groups"].as_array().unwrap().len(), 1);
        let all = st
            .get("/v2.0/security-groups?name=default", &st.admin)
            .await;
        // p1, p2 and admin's own.
        assert_eq!(
            all.json["security_groups"].as_array().unwrap().len(),
            3,
            "{}",
            all.raw
        );
        // The default group cannot be deleted, renamed, or duplicated.
        let r = st
            .delete(&format!("/v2.0/security-groups/{id}"), &st.u1)
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "SecurityGroupCannotRemoveDefault"
        );
        let r = st
            .post(
                "/v2.0/security-groups",
                &st.u1,
                json!({"security_group": {"name": "default"}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "SecurityGroupDefaultAlreadyExists"
        );
        let r = st
            .put(
                &format!("/v2.0/security-groups/{id}"),
                &st.u1,
                json!({"security_group": {"name": "other"}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        // Its description may change.
        let r = st
            .put(
                &format!("/v2.0/security-groups/{id}"),
                &st.u1,
                json!({"security_group": {"description": "mine"}}),
            )
            .await;
        assert_eq!(
            r.ok(StatusCode::OK)["security_group"]["description"],
            "mine"
        );
    }
}

#[tokio::test]
async fn ensure_default_is_idempotent_inside_writes() {
    for st in Stack::all().await {
        let p = st.p2.clone();
        let ids = st
            .db
            .store
            .write(move |tx| {
                let p = p.clone();
                Box::pin(async move {
                    let a = strata_network::api::security_groups::ensure_default(tx, &p).await?;
                    let b = strata_network::api::security_groups::ensure_default(tx, &p).await?;
                    Ok((a, b))
                })
            })
            .await
            .unwrap();
        assert_eq!(ids.0, ids.1);
        let listed = st.ids(&st.u2, "security-groups", "").await;
        assert_eq!(listed, vec![ids.0.clone()]);
    }
}

#[tokio::test]
async fn group_crud_and_visibility() {
    for st in Stack::all().await {
        let g = st.security_group(&st.u1, "web").await;
        let id = s(&g, "id");
        assert_eq!(g["name"], "web");
        assert_eq!(g["description"], "");
        assert_eq!(g["stateful"], true);
        let rules = g["security_group_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|r| r["direction"] == "egress"
            && r["belongs_to_default_sg"] == false
            && r["remote_group_id"].is_null()));
        // The default group came with the first create.
        let names: Vec<String> = st
            .get("/v2.0/security-groups?fields=name", &st.u1)
            .await
            .json["security_groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| s(g, "name"))
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"default".to_string()));
        let path = format!("/v2.0/security-groups/{id}");
        let r = st
            .put(
                &path,
                &st.u1,
                json!({"security_group": {"name": "web2", "description": "d"}}),
            )
            .await;
        let v = &r.ok(StatusCode::OK)["security_group"];
        assert_eq!(v["name"], "web2");
        assert_eq!(v["description"], "d");
        let r = st
            .put(
                &path,
                &st.u1,
                json!({"security_group": {"name": "default"}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "SecurityGroupDefaultAlreadyExists"
        );
        let r = st
            .put(&path, &st.u1, json!({"security_group": {"bogus": 1}}))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Other projects and readers.
        let r = st.get(&path, &st.u2).await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            "SecurityGroupNotFound"
        );
        let r = st.delete(&path, &st.u2).await;
        r.assert_error(StatusCode::NOT_FOUND);
        st.get(&path, &st.reader).await.ok(StatusCode::OK);
        st.get(&path, &st.admin).await.ok(StatusCode::OK);
        let r = st
            .post(
                "/v2.0/security-groups",
                &st.reader,
                json!({"security_group": {"name": "x"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = st.delete(&path, &st.reader).await;
        r.assert_error(StatusCode::FORBIDDEN);
        // Bulk.
        let r = st
            .post(
                "/v2.0/security-groups",
                &st.u2,
                json!({"security_groups": [{"name": "a"}, {"name": "b"}]}),
            )
            .await;
        assert_eq!(
            r.ok(StatusCode::CREATED)["security_groups"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // Delete takes its rules.
        let rule_ids: Vec<String> = g["security_group_rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| s(r, "id"))
            .collect();
        let r = st.delete(&path, &st.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        st.get(&path, &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        for rid in rule_ids {
            let r = st
                .get(&format!("/v2.0/security-group-rules/{rid}"), &st.u1)
                .await;
            assert_eq!(
                r.assert_error(StatusCode::NOT_FOUND),
                "SecurityGroupRuleNotFound"
            );
        }
        let r = st
            .delete(
                "/v2.0/security-groups/00000000-0000-0000-0000-000000000000",
                &st.u1,
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn rules_are_validated_as_neutron() {
    for st in Stack::all().await {
        let g = st.security_group(&st.u1, "g").await;
        let sg = s(&g, "id");
        let other = s(&st.security_group(&st.u1, "o").await, "id");
        // Valid rules.
        let r = rule(
            &st,
            &st.u1,
            json!({"security_group_id": sg, "direction": "ingress", "protocol": "TCP",
                   "port_range_min": 22, "port_range_max": 22,
                   "remote_ip_prefix": "10.0.0.7/24"}),
        )
        .await;
        let v = r.ok(StatusCode::CREATED)["security_group_rule"].clone();
        assert_eq!(v["protocol"], "tcp");
        assert_eq!(v["ethertype"], "IPv4");
        assert_eq!(v["remote_ip_prefix"], "10.0.0.0/24");
        assert_eq!(v["normalized_cidr"], "10.0.0.0/24");
        assert!(v["remote_group_id"].is_null());
        assert!(v["remote_address_group_id"].is_null());
        assert_eq!(v["tenant_id"], st.p1.as_str());
        assert_eq!(v["description"], "");
        let first = s(&v, "id");
        let r = rule(
            &st,
            &st.u1,
            json!({"security_group_id": sg, "direction": "ingress", "protocol": 17,
                   "ethertype": "ipv6", "remote_group_id": other}),
        )
        .await;
        let v = &r.ok(StatusCode::CREATED)["security_group_rule"];
        assert_eq!(v["protocol"], "17");
        assert_eq!(v["ethertype"], "IPv6");
        assert_eq!(v["remote_group_id"], other.as_str());
        for (t, c) in [(3, Some(2)), (8, Some(0)), (11, None)] {
            let r = rule(
                &st,
                &st.u1,
                json!({"security_group_id": sg, "direction": "ingress", "protocol": "icmp",
                       "port_range_min": t, "port_range_max": c}),
            )
            .await;
            r.ok(StatusCode::CREATED);
        }
        let r = rule(
            &st,
            &st.u1,
            json!({"security_group_id": sg, "direction": "egress", "protocol": "ipv6-icmp",
                   "ethertype": "IPv6", "remote_ip_prefix": "2001:db8::1/64"}),
        )
        .await;
        assert_eq!(
            r.ok(StatusCode::CREATED)["security_group_rule"]["remote_ip_prefix"],
            "2001:db8::/64"
        );
        // Duplicates name the existing rule.
        let r = rule(
            &st,
            &st.u1,
            json!({"security_group_id": sg, "direction": "ingress", "protocol": "6",
                   "port_range_min": 22, "port_range_max": 22,
                   "remote_ip_prefix": "10.0.0.0/24"}),
        )
        .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "SecurityGroupRuleExists"
        );
        assert!(r.message().contains(&first), "{}", r.raw);
        // Invalid input.
        let bad: Vec<(Value, &str)> = vec![
            (
                json!({"protocol": "bogus"}),
                "SecurityGroupRuleInvalidProtocol",
            ),
            (json!({"protocol": 256}), "SecurityGroupRuleInvalidProtocol"),
            (
                json!({"ethertype": "bad_ethertype"}),
                "SecurityGroupRuleInvalidEtherType",
            ),
            (json!({"direction": "sideways"}), ""),
            (
                json!({"protocol": "tcp", "remote_ip_prefix": "192.168.1./24"}),
                "",
            ),
            (
                json!({"protocol": "tcp", "remote_ip_prefix": "192.168.1.1/33"}),
                "",
            ),
            (
                json!({"protocol": "tcp", "remote_ip_prefix": "bad_prefix"}),
                "",
            ),
            (json!({"protocol": "tcp", "remote_ip_prefix": "256"}), ""),
            (
                json!({"protocol": "tcp", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}),
                "SecurityGroupRuleParameterConflict",
            ),
            (
                json!({"protocol": "tcp", "ethertype": "IPv4", "remote_ip_prefix": "2001:db8::/64"}),
                "SecurityGroupRuleParameterConflict",
            ),
            (
                json!({"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/8",
                    "remote_group_id": other}),
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            ),
            (
                json!({"port_range_min": 1, "port_range_max": 2}),
                "SecurityGroupProtocolRequiredWithPorts",
            ),
            (
                json!({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}),
                "SecurityGroupInvalidProtoForPortRange",
            ),
            (
                json!({"protocol": "ipv6-icmp", "ethertype": "IPv4"}),
                "SecurityGroupEthertypeConflictWithProtocol",
            ),
            (json!({"bogus": 1}), ""),
        ];
        for (extra, want) in bad {
            let mut body = json!({"security_group_id": sg, "direction": "ingress"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let r = rule(&st, &st.u1, body.clone()).await;
            let t = r.assert_error(StatusCode::BAD_REQUEST);
            if !want.is_empty() {
                assert_eq!(t, want, "{body}");
            }
        }
        // `icmp` on an IPv6 rule is accepted, as Neutron does.
        let r = rule(
            &st,
            &st.u1,
            json!({"security_group_id": sg, "direction": "ingress", "protocol": "icmp",
                   "ethertype": "IPv6"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        // Tempest's port range messages.
        for (min, max, msg) in [
            (json!(-16), json!(80), "Invalid value for port -16"),
            (
                json!(80),
                json!(79),
                "port_range_min must be <= port_range_max",
            ),
            (json!(80), json!(65536), "Invalid value for port 65536"),
            (
                Value::Null,
                json!(6),
                "port_range_min must be <= port_range_max",
            ),
            (json!(-16), json!(65536), "Invalid value for port"),
        ] {
            let r = rule(
                &st,
                &st.u1,
                json!({"security_group_id": sg, "direction": "ingress", "protocol": "tcp",
                       "port_range_min": min, "port_range_max": max}),
            )
            .await;
            r.assert_error(StatusCode::BAD_REQUEST);
            assert!(r.message().contains(msg), "{msg}: {}", r.raw);
        }
        for (min, max, msg) in [
            (json!(1), json!(256), "Invalid value for ICMP code"),
            (json!(-1), json!(25), "Invalid value"),
            (
                Value::Null,
                json!(6),
                "ICMP type (port-range-min) is missing",
            ),
            (json!(300), json!(1), "Invalid value for ICMP type"),
        ] {
            let r = rule(
                &st,
                &st.u1,
                json!({"security_group_id": sg, "direction": "ingress", "protocol": "icmp",
                       "port_range_min": min, "port_range_max": max}),
            )
            .await;
            r.assert_error(StatusCode::BAD_REQUEST);
            assert!(r.message().contains(msg), "{msg}: {}", r.raw);
        }
        // Unknown groups are 404.
        let missing = "00000000-0000-0000-0000-000000000000";
        let r = rule(
            &st,
            &st.u1,
            json!({"security_group_id": missing, "direction": "ingress"}),
        )
        .await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            "SecurityGroupNotFound"
        );
        for rg in ["bad_group_id", missing] {
            let r = rule(
                &st,
                &st.u1,
                json!({"security_group_id": sg, "direction": "ingress", "protocol": "tcp",
                       "remote_group_id": rg}),
            )
            .await;
            r.assert_error(StatusCode::NOT_FOUND);
        }
        // Another project's group is invisible.
        let r = rule(
            &st,
            &st.u2,
            json!({"security_group_id": sg, "direction": "ingress"}),
        )
        .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // The group shows its rules; list/show/delete of rules.
        let gv = st.get(&format!("/v2.0/security-groups/{sg}"), &st.u1).await;
        let n = gv.json["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(n, 2 + 7); // two egress defaults, the seven created above
        let listed = st
            .ids(
                &st.u1,
                "security-group-rules",
                &format!("security_group_id={sg}"),
            )
            .await;
        assert_eq!(listed.len(), n);
        assert!(st
            .ids(
                &st.u2,
                "security-group-rules",
                &format!("security_group_id={sg}")
            )
            .await
            .is_empty());
        let r = st
            .get(&format!("/v2.0/security-group-rules/{first}"), &st.u1)
            .await;
        assert_eq!(
            r.ok(StatusCode::OK)["security_group_rule"]["id"],
            first.as_str()
        );
        st.get(&format!("/v2.0/security-group-rules/{first}"), &st.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        st.delete(&format!("/v2.0/security-group-rules/{first}"), &st.reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = st
            .delete(&format!("/v2.0/security-group-rules/{first}"), &st.u1)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        st.get(&format!("/v2.0/security-group-rules/{first}"), &st.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Deleting the remote group removes the rules naming it.
        let r = st
            .delete(&format!("/v2.0/security-groups/{other}"), &st.u1)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let listed = st
            .ids(
                &st.u1,
                "security-group-rules",
                &format!("security_group_id={sg}"),
            )
            .await;
        assert_eq!(listed.len(), n - 2); // less the deleted one and the one naming `other`
    }
}

#[tokio::test]
async fn quotas_count_groups_and_rules() {
    let cfg = strata_core::config::NetworkConfig {
        quota_security_group: 2,
        quota_security_group_rule: 8,
        ..Default::default()
    };
    for st in Stack::all_with(cfg.clone()).await {
        // default (1 group, 4 rules) + one more group (2 rules) = 2 groups, 6 rules.
        let g = st.security_group(&st.u1, "a").await;
        let r = st
            .post(
                "/v2.0/security-groups",
                &st.u1,
                json!({"security_group": {"name": "b"}}),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "OverQuota");
        let sg = s(&g, "id");
        for p in [80, 443] {
            rule(
                &st,
                &st.u1,
                json!({"security_group_id": sg, "direction": "ingress", "protocol": "tcp",
                       "port_range_min": p, "port_range_max": p}),
            )
            .await
            .ok(StatusCode::CREATED);
        }
        let r = rule(
            &st,
            &st.u1,
            json!({"security_group_id": sg, "direction": "ingress", "protocol": "udp"}),
        )
        .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "OverQuota");
    }
}

#[tokio::test]
async fn group_in_use_by_a_port_cannot_go() {
    for st in Stack::all().await {
        let g = st.security_group(&st.u1, "used").await;
        let sg = s(&g, "id");
        // A port document naming the group, as the port service records it.
        let project = st.p1.clone();
        let sg2 = sg.clone();
        st.db
            .store
            .write(move |tx| {
                let (project, sg) = (project.clone(), sg2.clone());
                Box::pin(async move {
                    let mut doc = serde_json::Map::new();
                    doc.insert("network_id".into(), json!("n"));
                    doc.insert("security_groups".into(), json!([sg]));
                    let r =
                        strata_network::db::Resource::new("port", "port-1".into(), project, doc);
                    strata_network::db::insert(tx, &r).await
                })
            })
            .await
            .unwrap();
        let r = st
            .delete(&format!("/v2.0/security-groups/{sg}"), &st.u1)
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "SecurityGroupInUse");
        assert!(r.message().contains(&sg));
        st.get(&format!("/v2.0/security-groups/{sg}"), &st.u1)
            .await
            .ok(StatusCode::OK);
    }
}

#[tokio::test]
async fn listed_in_versions_and_extensions() {
    for st in Stack::all().await {
        let r = st.get("/v2.0/extensions/security-group", &st.u1).await;
        r.ok(StatusCode::OK);
        let r = st.get("/v2.0/", &st.u1).await;
        let cols: Vec<String> = r.json["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| s(x, "collection"))
            .collect();
        assert!(cols.contains(&"security-groups".to_string()));
        assert!(cols.contains(&"security-group-rules".to_string()));
    }
}
