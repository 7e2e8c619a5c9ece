//! The scheduler over real providers on every backend: spreading and packing by free RAM,
//! required traits, anti-affinity across hosts, alternates, and concurrent schedules (in one
//! process and from a second one on the same database) that never over-commit a host.

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use strata_placement::scheduler::{GroupPolicy, HostState, RequestSpec, ServerGroup, Weights};

/// A compute host with `vcpus` and `ram_mb`, its provider made over HTTP.
async fn compute(s: &Stack, name: &str, vcpus: i64, ram_mb: i64) -> HostState {
    let rp = s.rp(name, None).await;
    s.inventory(
        &rp,
        json!({"VCPU": {"total": vcpus}, "MEMORY_MB": {"total": ram_mb},
               "DISK_GB": {"total": 100}}),
    )
    .await;
    HostState {
        host: name.into(),
        provider: rp,
        enabled: true,
        up: true,
        availability_zone: "nova".into(),
        hypervisor_type: "QEMU".into(),
        supported_instances: vec![("x86_64".into(), "qemu".into(), "hvm".into())],
        ..Default::default()
    }
}

fn small() -> RequestSpec {
    RequestSpec {
        project_id: "p1".into(),
        user_id: "u1".into(),
        vcpus: 1,
        memory_mb: 512,
        root_gb: 1,
        ..Default::default()
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn spreads_packs_and_claims() {
    for s in Stack::all().await {
        let big = compute(&s, "big", 8, 8192).await;
        let little = compute(&s, "little", 8, 2048).await;
        let hosts = vec![big.clone(), little.clone()];
        let spread = Weights::default();
        let (first, alternates) = s
            .svc
            .schedule(&uuid(), &small(), &hosts, &spread)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            first.host, "big",
            "{}: spread goes to the most free RAM",
            s.label
        );
        assert_eq!(
            alternates
                .iter()
                .map(|a| a.host.as_str())
                .collect::<Vec<_>>(),
            ["little"]
        );
        let pack = Weights {
            ram: -1.0,
            cpu: 0.0,
            disk: 0.0,
            ..Weights::default()
        };
        let (first, _) = s
            .svc
            .schedule(&uuid(), &small(), &hosts, &pack)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.host, "little", "pack goes to the least free RAM");
        // The claims are real: little has 2048 - 512 left.
        let usage = s
            .get(
                &format!("/resource_providers/{}/usages", little.provider),
                "1.39",
            )
            .await;
        assert_eq!(usage.json["usages"]["MEMORY_MB"], 512, "{}", usage.raw);
        // Too big for either host.
        let mut huge = small();
        huge.memory_mb = 100_000;
        let err = s
            .svc
            .schedule(&uuid(), &huge, &hosts, &spread)
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.0.contains("no host has room"), "{err:?}");
        // Filtered out: a disabled host is never chosen even with room.
        let mut off = big.clone();
        off.enabled = false;
        let (first, _) = s
            .svc
            .schedule(&uuid(), &small(), &[off.clone(), little.clone()], &spread)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.host, "little");
        let err = s
            .svc
            .schedule(&uuid(), &small(), &[off], &spread)
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.0.contains("ComputeFilter"), "{err:?}");
    }
}

#[tokio::test]
async fn traits_and_anti_affinity() {
    for s in Stack::all().await {
        let a = compute(&s, "a", 4, 4096).await;
        let b = compute(&s, "b", 4, 4096).await;
        let gen = s
            .get(&format!("/resource_providers/{}", b.provider), "1.39")
            .await
            .json["generation"]
            .clone();
        s.put(
            &format!("/resource_providers/{}/traits", b.provider),
            "1.39",
            json!({"traits": ["HW_CPU_X86_AVX2"], "resource_provider_generation": gen}),
        )
        .await;
        let hosts = vec![a.clone(), b.clone()];
        let mut avx = small();
        avx.extra_specs = BTreeMap::from([("trait:HW_CPU_X86_AVX2".into(), "required".into())]);
        let (first, alts) = s
            .svc
            .schedule(&uuid(), &avx, &hosts, &Weights::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.host, "b", "{}", s.label);
        assert!(alts.is_empty());
        let mut anti = small();
        anti.group = Some(ServerGroup {
            policy: GroupPolicy::AntiAffinity,
            max_server_per_host: None,
            member_hosts: vec!["b".into()],
        });
        let (first, _) = s
            .svc
            .schedule(&uuid(), &anti, &hosts, &Weights::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.host, "a");
        anti.group.as_mut().unwrap().member_hosts.push("a".into());
        let err = s
            .svc
            .schedule(&uuid(), &anti, &hosts, &Weights::default())
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.0.contains("ServerGroupAntiAffinityFilter"), "{err:?}");
        // Soft anti-affinity prefers the host with fewer members but does not refuse.
        let mut soft = small();
        soft.group = Some(ServerGroup {
            policy: GroupPolicy::SoftAntiAffinity,
            max_server_per_host: None,
            member_hosts: vec!["a".into(), "a".into(), "b".into()],
        });
        let w = Weights {
            ram: 0.0,
            cpu: 0.0,
            disk: 0.0,
            ..Weights::default()
        };
        let (first, _) = s
            .svc
            .schedule(&uuid(), &soft, &hosts, &w)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.host, "b");
    }
}

#[tokio::test]
async fn concurrent_schedules_never_overcommit() {
    for s in Stack::all().await {
        // Room for exactly 6 instances of 1 VCPU / 512 MB: 2 + 4.
        let h1 = compute(&s, "h1", 2, 65536).await;
        let h2 = compute(&s, "h2", 4, 65536).await;
        let hosts = vec![h1.clone(), h2.clone()];
        let other = s.second_process().await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let svc = if i % 2 == 0 {
                s.svc.clone()
            } else {
                other.clone()
            };
            let hosts = hosts.clone();
            tasks.push(tokio::spawn(async move {
                svc.schedule(&uuid(), &small(), &hosts, &Weights::default())
                    .await
                    .unwrap()
                    .map(|(sel, _)| sel.host)
            }));
        }
        let mut placed: BTreeMap<String, usize> = BTreeMap::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(h) => *placed.entry(h).or_default() += 1,
                Err(_) => refused += 1,
            }
        }
        assert_eq!(placed.get("h1"), Some(&2), "{}: {placed:?}", s.label);
        assert_eq!(placed.get("h2"), Some(&4), "{placed:?}");
        assert_eq!(refused, 10);
        for h in [&h1, &h2] {
            let u = s
                .get(
                    &format!("/resource_providers/{}/usages", h.provider),
                    "1.39",
                )
                .await;
            let total = s
                .get(
                    &format!("/resource_providers/{}/inventories", h.provider),
                    "1.39",
                )
                .await
                .json["inventories"]["VCPU"]["total"]
                .clone();
            assert_eq!(u.json["usages"]["VCPU"], total, "{}", u.raw);
        }
    }
}
