//! One scheduling decision over N hosts, in memory: allocation candidates (Nova's randomised
//! `max_placement_results`), the filters and the weighers — what `PlacementService::schedule`
//! computes before its claim (the claim is one store write, measured end to end by
//! `strata bench compute`).
//!
//!     cargo bench -p strata-placement --bench scheduler [-- HOSTS [DECISIONS]]
//!
//! Defaults: 10,000 hosts (8 VCPU ×16, 16 GiB, 100 GB, a quarter of each in use), 200
//! decisions for a 1 VCPU / 64 MiB / 1 GB flavor. Prints the p50/p95/p99/max of each stage.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use strata_placement::candidates::allocation_candidates;
use strata_placement::scheduler::{
    candidate_request, select, HostState, RequestSpec, Weights, MAX_PLACEMENT_RESULTS,
};
use strata_placement::{Inventory, Provider, ProviderState, Snapshot};

fn inv(total: i64, ratio: f64) -> Inventory {
    Inventory {
        total,
        allocation_ratio: ratio,
        max_unit: total,
        ..Default::default()
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let decisions: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let mut snap = Snapshot::default();
    let mut hosts: Vec<HostState> = Vec::with_capacity(n);
    for i in 0..n {
        let uuid = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
        let name = format!("fake-{i}");
        snap.providers.insert(
            uuid.clone(),
            ProviderState {
                provider: Provider {
                    uuid: uuid.clone(),
                    name: name.clone(),
                    generation: 1,
                    parent_uuid: None,
                    root_uuid: uuid.clone(),
                    created_at: 0,
                    updated_at: 0,
                },
                inventories: BTreeMap::from([
                    ("VCPU".to_string(), inv(8, 16.0)),
                    ("MEMORY_MB".to_string(), inv(16384, 1.5)),
                    ("DISK_GB".to_string(), inv(100, 1.0)),
                ]),
                used: BTreeMap::from([
                    ("VCPU".to_string(), (i % 32) as i64),
                    ("MEMORY_MB".to_string(), ((i % 64) * 64) as i64),
                    ("DISK_GB".to_string(), (i % 25) as i64),
                ]),
                traits: BTreeSet::from(["COMPUTE_VOLUME_ATTACH".to_string()]),
                aggregates: BTreeSet::new(),
            },
        );
        hosts.push(HostState {
            host: name,
            provider: uuid,
            enabled: true,
            up: true,
            availability_zone: "nova".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1000,
            supported_instances: vec![("x86_64".into(), "fake".into(), "hvm".into())],
            ..Default::default()
        });
    }
    // As compute keeps its host states: sorted by provider.
    hosts.sort_by(|a, b| a.provider.cmp(&b.provider));
    let spec = RequestSpec {
        project_id: "p".into(),
        user_id: "u".into(),
        vcpus: 1,
        memory_mb: 64,
        root_gb: 1,
        ..Default::default()
    };
    let weights = Weights::default();
    let (mut cands_us, mut select_us, mut total_us) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..decisions {
        let t0 = Instant::now();
        let mut req = candidate_request(&spec, Some(MAX_PLACEMENT_RESULTS));
        req.randomize = true;
        let cands = allocation_candidates(&snap, &req, true);
        let t1 = Instant::now();
        let chosen = select(&snap, &cands, &hosts, &spec, &weights).expect("a host");
        let t2 = Instant::now();
        assert!(!chosen.is_empty());
        cands_us.push((t1 - t0).as_micros() as u64);
        select_us.push((t2 - t1).as_micros() as u64);
        total_us.push((t2 - t0).as_micros() as u64);
    }
    println!("scheduling decision over {n} hosts, {decisions} decisions (µs):");
    println!("| stage | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|");
    for (what, xs) in [
        ("allocation candidates (1,000 randomised)", &mut cands_us),
        ("filters + weighers + selections", &mut select_us),
        ("decision", &mut total_us),
    ] {
        xs.sort_unstable();
        let at = |q: f64| xs[((xs.len() as f64 * q).ceil() as usize).clamp(1, xs.len()) - 1];
        println!(
            "| {what} | {} | {} | {} | {} |",
            at(0.50),
            at(0.95),
            at(0.99),
            xs[xs.len() - 1]
        );
    }
}
