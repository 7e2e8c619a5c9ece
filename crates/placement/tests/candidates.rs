//! `GET /allocation_candidates` through the router: traits, aggregates, granular groups,
//! trees, limits and the response shapes by microversion; and a candidate claimed as is.

mod common;

use common::*;
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The sets of providers of each allocation request.
fn sets(r: &Resp) -> BTreeSet<Vec<String>> {
    r.json["allocation_requests"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.raw))
        .iter()
        .map(|a| {
            let mut v: Vec<String> = a["allocations"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            v.sort();
            v
        })
        .collect()
}

fn one(rps: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = rps.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn traits_aggregates_in_tree_and_limit() {
    for s in Stack::all().await {
        let agg = uuid();
        let a = s.rp("a", None).await;
        let b = s.rp("b", None).await;
        let c = s.rp("c", None).await;
        for rp in [&a, &b, &c] {
            s.inventory(
                rp,
                json!({"VCPU": {"total": 8}, "MEMORY_MB": {"total": 4096}}),
            )
            .await;
        }
        s.traits(&a, &["HW_CPU_X86_AVX2", "CUSTOM_FAST"]).await;
        s.traits(&b, &["HW_CPU_X86_AVX2"]).await;
        s.aggregates(&c, &[&agg]).await;
        let q = "/allocation_candidates?resources=VCPU:2,MEMORY_MB:512";
        let r = s.get(q, "latest").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(sets(&r).len(), 3);
        let r = s
            .get(&format!("{q}&required=HW_CPU_X86_AVX2"), "latest")
            .await;
        assert_eq!(sets(&r), [one(&[&a]), one(&[&b])].into());
        let r = s
            .get(
                &format!("{q}&required=HW_CPU_X86_AVX2,!CUSTOM_FAST"),
                "latest",
            )
            .await;
        assert_eq!(sets(&r), [one(&[&b])].into());
        let r = s
            .get(&format!("{q}&required=!HW_CPU_X86_AVX2"), "latest")
            .await;
        assert_eq!(sets(&r), [one(&[&c])].into());
        let r = s
            .get(
                &format!("{q}&required=in:CUSTOM_FAST,CUSTOM_NONE_YET"),
                "latest",
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
        assert!(
            r.detail().contains("No such trait(s): CUSTOM_NONE_YET"),
            "{}",
            r.raw
        );
        let r = s.get(&format!("{q}&member_of={agg}"), "latest").await;
        assert_eq!(sets(&r), [one(&[&c])].into());
        let r = s.get(&format!("{q}&member_of=!{agg}"), "latest").await;
        assert_eq!(sets(&r), [one(&[&a]), one(&[&b])].into());
        let r = s.get(&format!("{q}&in_tree={b}"), "latest").await;
        assert_eq!(sets(&r), [one(&[&b])].into());
        let r = s.get(&format!("{q}&limit=2"), "latest").await;
        assert_eq!(r.json["allocation_requests"].as_array().unwrap().len(), 2);
        assert_eq!(r.json["provider_summaries"].as_object().unwrap().len(), 2);
        // Capacity filters: nobody has 9 VCPUs.
        let r = s
            .get("/allocation_candidates?resources=VCPU:9", "latest")
            .await;
        assert_eq!(
            r.json,
            json!({"allocation_requests": [], "provider_summaries": {}})
        );
        // Bad input.
        for bad in [
            "/allocation_candidates",
            "/allocation_candidates?resources=VCPU",
            "/allocation_candidates?resources=VCPU:0",
            "/allocation_candidates?resources=CUSTOM_NOPE:1",
            "/allocation_candidates?resources=VCPU:1&limit=0",
            "/allocation_candidates?resources=VCPU:1&member_of=nope",
            "/allocation_candidates?resources=VCPU:1&bogus=1",
            "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1",
        ] {
            let r = s.get(bad, "latest").await;
            r.assert_error(StatusCode::BAD_REQUEST, None);
        }
        let r = s.get(q, "1.9").await;
        r.assert_error(StatusCode::NOT_FOUND, None);
    }
}

#[tokio::test]
async fn shapes_by_microversion() {
    for s in Stack::all().await {
        let cn = s.rp("cn", None).await;
        s.inventory(
            &cn,
            json!({"VCPU": {"total": 8, "allocation_ratio": 16.0}, "DISK_GB": {"total": 100}}),
        )
        .await;
        s.traits(&cn, &["COMPUTE_NODE"]).await;
        let q = "/allocation_candidates?resources=VCPU:1";
        let r = s.get(q, "1.10").await;
        assert_eq!(
            r.json["allocation_requests"][0]["allocations"],
            json!([{"resource_provider": {"uuid": cn}, "resources": {"VCPU": 1}}])
        );
        assert_eq!(
            r.json["provider_summaries"][&cn],
            json!({"resources": {"VCPU": {"capacity": 128, "used": 0}}})
        );
        let r = s.get(q, "1.17").await;
        assert_eq!(
            r.json["allocation_requests"][0]["allocations"],
            json!({cn.clone(): {"resources": {"VCPU": 1}}})
        );
        assert_eq!(
            r.json["provider_summaries"][&cn]["traits"],
            json!(["COMPUTE_NODE"])
        );
        let r = s.get(q, "1.27").await;
        assert!(r.json["provider_summaries"][&cn]["resources"]["DISK_GB"].is_object());
        let r = s.get(q, "1.29").await;
        assert_eq!(
            r.json["provider_summaries"][&cn]["root_provider_uuid"],
            cn.as_str()
        );
        assert!(r.json["allocation_requests"][0].get("mappings").is_none());
        let r = s.get(q, "1.34").await;
        assert_eq!(
            r.json["allocation_requests"][0]["mappings"],
            json!({"": [cn]})
        );

        // A candidate goes straight back as a claim (mappings included, from 1.34).
        let mut body = r.json["allocation_requests"][0].clone();
        body["project_id"] = json!("p");
        body["user_id"] = json!("u");
        body["consumer_generation"] = Value::Null;
        body["consumer_type"] = json!("INSTANCE");
        let r = s
            .put(&format!("/allocations/{}", uuid()), "latest", body)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.get(q, "latest").await;
        assert_eq!(
            r.json["provider_summaries"][&cn]["resources"]["VCPU"]["used"],
            1
        );
    }
}

#[tokio::test]
async fn nested_granular_and_subtrees() {
    for s in Stack::all().await {
        // cn (VCPU) → nic0 → pf0 (VF), cn → nic1 → pf1 (VF); a second host without NICs.
        let cn = s.rp("cn", None).await;
        let nic0 = s.rp("nic0", Some(&cn)).await;
        let nic1 = s.rp("nic1", Some(&cn)).await;
        let pf0 = s.rp("pf0", Some(&nic0)).await;
        let pf1 = s.rp("pf1", Some(&nic1)).await;
        let bare = s.rp("bare", None).await;
        s.inventory(&cn, json!({"VCPU": {"total": 8}})).await;
        s.inventory(&bare, json!({"VCPU": {"total": 8}})).await;
        for pf in [&pf0, &pf1] {
            s.inventory(pf, json!({"SRIOV_NET_VF": {"total": 4}})).await;
            s.traits(pf, &["HW_NIC_SRIOV"]).await;
        }
        s.traits(&nic0, &["CUSTOM_PHYSNET_A"]).await;
        s.traits(&nic1, &["CUSTOM_PHYSNET_B"]).await;
        s.traits(&cn, &["COMPUTE_NODE"]).await;

        // Two VFs from different PFs.
        let q = "/allocation_candidates?resources=VCPU:1\
                 &resources1=SRIOV_NET_VF:1&required1=HW_NIC_SRIOV\
                 &resources2=SRIOV_NET_VF:1&required2=HW_NIC_SRIOV";
        let r = s.get(&format!("{q}&group_policy=isolate"), "latest").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let reqs = r.json["allocation_requests"].as_array().unwrap();
        assert_eq!(reqs.len(), 2, "{}", r.raw);
        for a in reqs {
            assert_ne!(a["mappings"]["1"], a["mappings"]["2"], "{}", r.raw);
            assert_eq!(a["mappings"][""], json!([cn]));
        }
        // Provider summaries cover the whole tree from 1.29.
        assert_eq!(r.json["provider_summaries"].as_object().unwrap().len(), 5);
        assert_eq!(
            r.json["provider_summaries"][&pf0]["parent_provider_uuid"],
            nic0.as_str()
        );
        // group_policy=none also allows both VFs from one PF.
        let r = s.get(&format!("{q}&group_policy=none"), "latest").await;
        assert_eq!(
            r.json["allocation_requests"].as_array().unwrap().len(),
            4,
            "{}",
            r.raw
        );
        // Before 1.29 nested providers take no part.
        let r = s.get(&format!("{q}&group_policy=isolate"), "1.28").await;
        assert_eq!(r.json["allocation_requests"], json!([]), "{}", r.raw);
        // in_tree per group; root_required.
        let r = s
            .get(
                &format!("/allocation_candidates?resources=VCPU:1&in_tree={pf1}"),
                "latest",
            )
            .await;
        assert_eq!(sets(&r), [one(&[&cn])].into());
        let r = s
            .get(
                "/allocation_candidates?resources=VCPU:1&root_required=!COMPUTE_NODE",
                "latest",
            )
            .await;
        assert_eq!(sets(&r), [one(&[&bare])].into());
        // A VF on physnet B: a resourceless group for the NIC in the same subtree (1.36).
        let r = s
            .get(
                "/allocation_candidates?resources_VF=SRIOV_NET_VF:1\
                 &required_NIC=CUSTOM_PHYSNET_B&same_subtree=_VF,_NIC&group_policy=none",
                "latest",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(sets(&r), [one(&[&pf1])].into(), "{}", r.raw);
        assert_eq!(
            r.json["allocation_requests"][0]["mappings"],
            json!({"_VF": [pf1], "_NIC": [nic1]})
        );
        // Before 1.36, the resourceless group is an orphan.
        let r = s
            .get(
                "/allocation_candidates?resources_VF=SRIOV_NET_VF:1\
                 &required_NIC=CUSTOM_PHYSNET_B&group_policy=none",
                "1.35",
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, None);
    }
}

#[tokio::test]
async fn sharing_providers() {
    for s in Stack::all().await {
        let agg = uuid();
        let cn1 = s.rp("cn1", None).await;
        let cn2 = s.rp("cn2", None).await;
        let ss = s.rp("shared-storage", None).await;
        s.inventory(&cn1, json!({"VCPU": {"total": 8}})).await;
        s.inventory(
            &cn2,
            json!({"VCPU": {"total": 8}, "DISK_GB": {"total": 10}}),
        )
        .await;
        s.inventory(&ss, json!({"DISK_GB": {"total": 1000}})).await;
        s.traits(&ss, &["MISC_SHARES_VIA_AGGREGATE"]).await;
        s.aggregates(&ss, &[&agg]).await;
        s.aggregates(&cn1, &[&agg]).await;
        let r = s
            .get(
                "/allocation_candidates?resources=VCPU:1,DISK_GB:100",
                "latest",
            )
            .await;
        assert_eq!(sets(&r), [one(&[&cn1, &ss])].into(), "{}", r.raw);
        let r = s
            .get(
                "/allocation_candidates?resources=VCPU:1,DISK_GB:5",
                "latest",
            )
            .await;
        assert_eq!(
            sets(&r),
            [one(&[&cn1, &ss]), one(&[&cn2])].into(),
            "{}",
            r.raw
        );
    }
}
