//! The scheduler, as Nova's filter scheduler works: the request's resources become an
//! allocation-candidates query; hosts holding a candidate pass through the filters; the
//! survivors are weighed; the caller claims the best candidate in placement (an atomic write
//! that fails when another claim got there first) and falls back to the next ones, the
//! alternates, as Nova's conductor does on a reschedule.
//!
//! Everything here but [`PlacementService::schedule`] is pure: the caller hands in what
//! compute knows about its hosts ([`HostState`]) and the request ([`RequestSpec`]).
//!
//! Filters (Nova's names): `ComputeFilter` (service enabled and up), `AvailabilityZoneFilter`,
//! `AggregateMultiTenancyIsolation` (`filter_tenant_id*` aggregate keys),
//! `AggregateImagePropertiesIsolation`, `ImagePropertiesFilter` (`hw_architecture`,
//! `img_hv_type`, `hw_vm_mode`, `img_hv_requested_version`), `ComputeCapabilitiesFilter` and
//! `AggregateInstanceExtraSpecsFilter` (extra specs with Nova's operators), the server-group
//! `ServerGroupAffinityFilter`/`ServerGroupAntiAffinityFilter` (with `max_server_per_host`),
//! plus the request's ignored hosts (earlier failed attempts) and forced host. Weighers:
//! RAM, CPU and disk (free capacity, positive multipliers spread, negative pack) and the soft
//! (anti-)affinity weighers, each normalised to 0..1 over the hosts and multiplied, as Nova
//! does.

use crate::candidates::{Candidate, Snapshot};
use crate::model::{Claim, ConsumerGeneration, Resources};
use crate::query::{CandidateRequest, RequestGroup, TraitFilter};
use crate::{PlacementError, PlacementResult, PlacementService};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An aggregate a host belongs to, with its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    pub name: String,
    pub metadata: BTreeMap<String, String>,
}

/// What compute knows about one host (one node).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostState {
    pub host: String,
    /// The host's root resource provider.
    pub provider: String,
    /// The compute service is enabled and reporting.
    pub enabled: bool,
    pub up: bool,
    pub availability_zone: String,
    pub aggregates: Vec<Aggregate>,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    /// `(architecture, hypervisor type, vm mode)` the host runs, e.g. `("x86_64", "qemu",
    /// "hvm")`.
    pub supported_instances: Vec<(String, String, String)>,
    /// Capabilities `ComputeCapabilitiesFilter` compares flavor extra specs with (`cpu_info`,
    /// `hypervisor_type`, …).
    pub capabilities: BTreeMap<String, String>,
}

/// Server-group policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicy {
    Affinity,
    AntiAffinity,
    SoftAffinity,
    SoftAntiAffinity,
}

/// The request's server group: its policy and where its members already are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerGroup {
    pub policy: GroupPolicy,
    /// `max_server_per_host` of anti-affinity (default 1).
    pub max_server_per_host: Option<i64>,
    /// The host of every member already placed (repeated per member).
    pub member_hosts: Vec<String>,
}

/// What to place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestSpec {
    pub project_id: String,
    pub user_id: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    /// Boot from volume: the root disk is not local.
    pub boot_from_volume: bool,
    pub extra_specs: BTreeMap<String, String>,
    pub image_properties: BTreeMap<String, String>,
    /// The requested zone (`None`: any).
    pub availability_zone: Option<String>,
    /// `zone:host` forced by an admin.
    pub force_host: Option<String>,
    pub group: Option<ServerGroup>,
    /// Hosts not to use (earlier attempts, the source of a migration).
    pub ignore_hosts: Vec<String>,
}

/// Weigher multipliers (Nova's `[filter_scheduler] *_weight_multiplier`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub ram: f64,
    pub cpu: f64,
    pub disk: f64,
    pub soft_affinity: f64,
    pub soft_anti_affinity: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            ram: 1.0,
            cpu: 1.0,
            disk: 1.0,
            soft_affinity: 1.0,
            soft_anti_affinity: 1.0,
        }
    }
}

/// One placement option, best first in [`select`]'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub host: String,
    pub provider: String,
    pub allocations: BTreeMap<String, Resources>,
    pub weight: f64,
}

/// Why a request could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoValidHost(pub String);

// ------------------------------------------------------------------ resources

/// The allocation-candidates query for `spec`, as Nova builds it from the flavor: `VCPU`,
/// `MEMORY_MB` and `DISK_GB` (root, ephemeral and swap rounded up to GiB; no root for boot
/// from volume), overridden or extended by `resources[N]:CLASS=amount` extra specs (0
/// drops a class), required/forbidden traits from `trait[N]:NAME=required|forbidden` extra
/// specs and `trait:NAME=required` image properties, in granular groups for numbered keys.
pub fn candidate_request(spec: &RequestSpec, limit: Option<usize>) -> CandidateRequest {
    let mut groups: BTreeMap<String, RequestGroup> = BTreeMap::new();
    let main = groups.entry(String::new()).or_default();
    let disk = if spec.boot_from_volume {
        0
    } else {
        spec.root_gb
    } + spec.ephemeral_gb
        + (spec.swap_mb + 1023) / 1024;
    for (rc, n) in [
        ("VCPU", spec.vcpus),
        ("MEMORY_MB", spec.memory_mb),
        ("DISK_GB", disk),
    ] {
        if n > 0 {
            main.resources.insert(rc.to_string(), n);
        }
    }
    let mut required: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut forbidden: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let props = spec
        .image_properties
        .iter()
        .filter(|(k, _)| k.starts_with("trait:"));
    for (k, v) in spec.extra_specs.iter().chain(props) {
        if let Some((prefix, name)) = k.split_once(':') {
            if let Some(suffix) = prefix.strip_prefix("resources") {
                if let Ok(n) = v.trim().parse::<i64>() {
                    let g = groups.entry(suffix.to_string()).or_default();
                    g.suffix = suffix.to_string();
                    if n > 0 {
                        g.resources.insert(name.to_string(), n);
                    } else {
                        g.resources.remove(name);
                    }
                }
            } else if let Some(suffix) = prefix.strip_prefix("trait") {
                match v.trim() {
                    "required" => required
                        .entry(suffix.to_string())
                        .or_default()
                        .push(name.to_string()),
                    "forbidden" => forbidden
                        .entry(suffix.to_string())
                        .or_default()
                        .push(name.to_string()),
                    _ => {}
                }
            }
        }
    }
    for (suffix, names) in required {
        let g = groups.entry(suffix.clone()).or_default();
        g.suffix = suffix;
        g.traits.all_of.extend(names.into_iter().map(|n| vec![n]));
    }
    for (suffix, names) in forbidden {
        let g = groups.entry(suffix.clone()).or_default();
        g.suffix = suffix;
        g.traits.forbidden.extend(names);
    }
    let groups: Vec<RequestGroup> = groups
        .into_values()
        .filter(|g| g.is_unsuffixed() || !g.resources.is_empty())
        .collect();
    CandidateRequest {
        groups,
        limit,
        root_required: TraitFilter::default(),
        ..Default::default()
    }
}

// ------------------------------------------------------------------ filters

/// Nova's extra-spec operators (`nova.scheduler.filters.extra_specs_ops`): `=` numeric at
/// least, `==` numeric equal, `!=`, `>=`, `<=`, `s==`, `s!=`, `s>=`, `s>`, `s<=`, `s<`,
/// `<in>` substring, `<all-in>` every word, `<or>` any of; otherwise string equality.
pub fn extra_spec_matches(have: &str, req: &str) -> bool {
    let words: Vec<&str> = req.split_whitespace().collect();
    let Some((&op, rest)) = words.split_first() else {
        return have.is_empty();
    };
    let num = |s: &str| s.trim().parse::<f64>().ok();
    let arg = rest.join(" ");
    match op {
        "=" => matches!((num(have), num(&arg)), (Some(h), Some(r)) if h >= r),
        "==" => matches!((num(have), num(&arg)), (Some(h), Some(r)) if h == r),
        "!=" => matches!((num(have), num(&arg)), (Some(h), Some(r)) if h != r),
        ">=" => matches!((num(have), num(&arg)), (Some(h), Some(r)) if h >= r),
        "<=" => matches!((num(have), num(&arg)), (Some(h), Some(r)) if h <= r),
        "s==" => have == arg,
        "s!=" => have != arg,
        "s>=" => have >= arg.as_str(),
        "s>" => have > arg.as_str(),
        "s<=" => have <= arg.as_str(),
        "s<" => have < arg.as_str(),
        "<in>" => have.contains(arg.as_str()),
        "<all-in>" => rest.iter().all(|w| have.contains(w)),
        "<or>" => {
            let alts: Vec<&str> = req
                .split("<or>")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            alts.contains(&have)
        }
        _ => have == req,
    }
}

/// The host's zone: an aggregate's `availability_zone` metadata, else the host's own.
fn zone_of(h: &HostState) -> &str {
    h.aggregates
        .iter()
        .find_map(|a| a.metadata.get("availability_zone"))
        .map(String::as_str)
        .unwrap_or(&h.availability_zone)
}

fn members_on(spec: &RequestSpec, host: &str) -> i64 {
    spec.group
        .as_ref()
        .map(|g| g.member_hosts.iter().filter(|h| *h == host).count() as i64)
        .unwrap_or(0)
}

/// Why `h` cannot take `spec` (the first filter that refuses it), or `None` when it passes
/// every filter.
pub fn refusal(h: &HostState, spec: &RequestSpec) -> Option<&'static str> {
    if spec.ignore_hosts.contains(&h.host) {
        return Some("IgnoredHost");
    }
    if !(h.enabled && h.up) {
        return Some("ComputeFilter");
    }
    if let Some(forced) = &spec.force_host {
        if *forced != h.host {
            return Some("ForcedHost");
        }
    }
    if let Some(az) = &spec.availability_zone {
        if zone_of(h) != az {
            return Some("AvailabilityZoneFilter");
        }
    }
    // AggregateMultiTenancyIsolation: hosts in an aggregate with filter_tenant_id* keys only
    // take those projects.
    let tenants: Vec<&str> = h
        .aggregates
        .iter()
        .flat_map(|a| a.metadata.iter())
        .filter(|(k, _)| k.starts_with("filter_tenant_id"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    if !tenants.is_empty() && !tenants.contains(&spec.project_id.as_str()) {
        return Some("AggregateMultiTenancyIsolation");
    }
    // AggregateImagePropertiesIsolation: an aggregate key the image also has must list the
    // image's value.
    for a in &h.aggregates {
        for (k, v) in &a.metadata {
            if let Some(iv) = spec.image_properties.get(k) {
                if !v.split(',').map(str::trim).any(|x| x == iv) {
                    return Some("AggregateImagePropertiesIsolation");
                }
            }
        }
    }
    if !image_properties_ok(h, &spec.image_properties) {
        return Some("ImagePropertiesFilter");
    }
    for (k, req) in &spec.extra_specs {
        let (scope, key) = match k.split_once(':') {
            Some((s, key)) => (Some(s), key),
            None => (None, k.as_str()),
        };
        match scope {
            Some("capabilities") | None => {
                let have = h.capabilities.get(key).map(String::as_str).or(match key {
                    "hypervisor_type" => Some(h.hypervisor_type.as_str()),
                    _ => None,
                });
                // As Nova: a capability the host does not have refuses it, scoped or not.
                match have {
                    Some(have) if extra_spec_matches(have, req) => {}
                    _ => return Some("ComputeCapabilitiesFilter"),
                }
            }
            Some("aggregate_instance_extra_specs") => {
                let ok = h
                    .aggregates
                    .iter()
                    .filter_map(|a| a.metadata.get(key))
                    .any(|have| extra_spec_matches(have, req));
                if !ok {
                    return Some("AggregateInstanceExtraSpecsFilter");
                }
            }
            _ => {}
        }
    }
    if let Some(g) = &spec.group {
        let here = members_on(spec, &h.host);
        match g.policy {
            GroupPolicy::Affinity => {
                if !g.member_hosts.is_empty() && here == 0 {
                    return Some("ServerGroupAffinityFilter");
                }
            }
            GroupPolicy::AntiAffinity => {
                if here >= g.max_server_per_host.unwrap_or(1).max(1) {
                    return Some("ServerGroupAntiAffinityFilter");
                }
            }
            GroupPolicy::SoftAffinity | GroupPolicy::SoftAntiAffinity => {}
        }
    }
    None
}

fn image_properties_ok(h: &HostState, props: &BTreeMap<String, String>) -> bool {
    let get = |a: &str, b: &str| {
        props
            .get(a)
            .or_else(|| props.get(b))
            .map(|s| s.to_lowercase())
    };
    let arch = get("hw_architecture", "architecture");
    let hv = get("img_hv_type", "hypervisor_type");
    let mode = get("hw_vm_mode", "vm_mode");
    if let Some(want) = props.get("img_hv_requested_version") {
        if !extra_spec_matches(&h.hypervisor_version.to_string(), want) {
            return false;
        }
    }
    if arch.is_none() && hv.is_none() && mode.is_none() {
        return true;
    }
    h.supported_instances.iter().any(|(a, t, m)| {
        arch.as_ref().is_none_or(|x| x == &a.to_lowercase())
            && hv.as_ref().is_none_or(|x| x == &t.to_lowercase())
            && mode.as_ref().is_none_or(|x| x == &m.to_lowercase())
    })
}

// ------------------------------------------------------------------ weighers

/// Free capacity per tree of RAM, VCPU and disk after current usage, for the trees rooted at
/// `roots` (the hosts being weighed, not every provider).
fn free_by_root<'s>(
    snap: &'s Snapshot,
    roots: impl Iterator<Item = &'s str>,
) -> HashMap<&'s str, [f64; 3]> {
    let mut out: HashMap<&str, [f64; 3]> = roots.map(|r| (r, [0.0; 3])).collect();
    let add = |e: &mut [f64; 3], p: &crate::ProviderState| {
        for (i, rc) in ["MEMORY_MB", "VCPU", "DISK_GB"].iter().enumerate() {
            if let Some(inv) = p.inventories.get(*rc) {
                let used = p.used.get(*rc).copied().unwrap_or(0);
                e[i] += ((inv.total - inv.reserved) as f64 * inv.allocation_ratio) - used as f64;
            }
        }
    };
    if snap
        .providers
        .values()
        .any(|p| p.provider.parent_uuid.is_some())
    {
        // Nested trees: every provider adds to its root's total.
        for p in snap.providers.values() {
            if let Some(e) = out.get_mut(p.provider.root_uuid.as_str()) {
                add(e, p);
            }
        }
    } else {
        for (root, e) in out.iter_mut() {
            if let Some(p) = snap.get(root) {
                add(e, p);
            }
        }
    }
    out
}

/// Candidates a scheduling decision asks placement for first (Nova's
/// `[scheduler] max_placement_results`).
pub const MAX_PLACEMENT_RESULTS: usize = 1000;

/// Selections returned at most: the chosen host and its alternates.
pub const MAX_SELECTIONS: usize = 50;

/// Nova's normalisation: `(x - min) / (max - min)`, all 0 when every value is the same.
fn normalise(xs: &[f64]) -> Vec<f64> {
    let (min, max) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    if xs.is_empty() || max <= min {
        return vec![0.0; xs.len()];
    }
    xs.iter().map(|x| (x - min) / (max - min)).collect()
}

/// Filters the hosts holding `candidates`, weighs the survivors and returns one selection
/// per candidate, best first (ties by host name). `Err` names the filter that emptied the
/// list when nothing is left.
pub fn select(
    snap: &Snapshot,
    candidates: &[Candidate],
    hosts: &[HostState],
    spec: &RequestSpec,
    weights: &Weights,
) -> Result<Vec<Selection>, NoValidHost> {
    // Hosts sorted by provider (as compute keeps them) are found by binary search; others
    // through an index built here.
    let sorted = hosts.windows(2).all(|w| w[0].provider <= w[1].provider);
    let index: HashMap<&str, &HostState> = if sorted {
        HashMap::new()
    } else {
        hosts.iter().map(|h| (h.provider.as_str(), h)).collect()
    };
    let host_of = |root: &str| -> Option<&HostState> {
        if sorted {
            hosts
                .binary_search_by(|h| h.provider.as_str().cmp(root))
                .ok()
                .map(|i| &hosts[i])
        } else {
            index.get(root).copied()
        }
    };
    let mut options: Vec<(&HostState, &Candidate)> = Vec::new();
    let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for c in candidates {
        // The candidate's tree: the root of any provider it allocates from.
        let Some(root) = c
            .allocations
            .keys()
            .find_map(|p| snap.get(p).map(|s| s.provider.root_uuid.as_str()))
        else {
            continue;
        };
        let Some(h) = host_of(root) else {
            continue;
        };
        match refusal(h, spec) {
            None => options.push((h, c)),
            Some(f) => {
                if seen.insert(h.host.clone()) {
                    *refused.entry(f).or_default() += 1;
                }
            }
        }
    }
    if options.is_empty() {
        let why = if candidates.is_empty() {
            "no host has room for the request".to_string()
        } else {
            let parts: Vec<String> = refused
                .iter()
                .map(|(f, n)| format!("{f} refused {n} host(s)"))
                .collect();
            parts.join(", ")
        };
        return Err(NoValidHost(why));
    }
    let free = free_by_root(snap, options.iter().map(|(h, _)| h.provider.as_str()));
    let free_of =
        |h: &HostState, i: usize| free.get(h.provider.as_str()).map(|f| f[i]).unwrap_or(0.0);
    let col = |f: &dyn Fn(&HostState) -> f64| -> Vec<f64> {
        normalise(&options.iter().map(|(h, _)| f(h)).collect::<Vec<_>>())
    };
    let ram = col(&|h| free_of(h, 0));
    let cpu = col(&|h| free_of(h, 1));
    let disk = col(&|h| free_of(h, 2));
    let group = col(&|h| members_on(spec, &h.host) as f64);
    let policy = spec.group.as_ref().map(|g| g.policy);
    let mut ranked: Vec<(f64, usize)> = options
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let mut w = weights.ram * ram[i] + weights.cpu * cpu[i] + weights.disk * disk[i];
            match policy {
                Some(GroupPolicy::SoftAffinity) => w += weights.soft_affinity * group[i],
                Some(GroupPolicy::SoftAntiAffinity) => {
                    w += weights.soft_anti_affinity * (1.0 - group[i])
                }
                _ => {}
            }
            (w, i)
        })
        .collect();
    let order = |a: &(f64, usize), b: &(f64, usize)| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| options[a.1].0.host.cmp(&options[b.1].0.host))
    };
    // Only the best few become selections (the chosen host and its alternates).
    if ranked.len() > MAX_SELECTIONS {
        ranked.select_nth_unstable_by(MAX_SELECTIONS - 1, order);
        ranked.truncate(MAX_SELECTIONS);
    }
    ranked.sort_by(order);
    Ok(ranked
        .into_iter()
        .map(|(w, i)| {
            let (h, c) = options[i];
            Selection {
                host: h.host.clone(),
                provider: h.provider.clone(),
                allocations: c.allocations.clone(),
                weight: w,
            }
        })
        .collect())
}

impl PlacementService {
    /// Places `consumer` (an instance): candidates for `spec`, filtered and weighed over
    /// `hosts`, then claimed in order until one claim succeeds (another scheduler or replica
    /// may have taken the room meanwhile: the claim is atomic and refuses, and the next
    /// candidate is tried). Returns the chosen selection and the alternates after it.
    pub async fn schedule(
        &self,
        consumer: &str,
        spec: &RequestSpec,
        hosts: &[HostState],
        weights: &Weights,
    ) -> PlacementResult<Result<(Selection, Vec<Selection>), NoValidHost>> {
        // As Nova's scheduler asks placement for at most `max_placement_results` candidates
        // (randomised), so that a decision among 10,000 hosts weighs 1,000 of them; when the
        // filters leave none of those, every candidate is looked at.
        let mut req = candidate_request(spec, Some(MAX_PLACEMENT_RESULTS));
        req.randomize = true;
        let (cands, snap) = self
            .allocation_candidates(&req, crate::Microversion::LATEST)
            .await?;
        let mut options = match select(&snap, &cands, hosts, spec, weights) {
            Ok(o) => o,
            Err(_) if cands.len() >= MAX_PLACEMENT_RESULTS => {
                let req = candidate_request(spec, None);
                let (cands, snap) = self
                    .allocation_candidates(&req, crate::Microversion::LATEST)
                    .await?;
                match select(&snap, &cands, hosts, spec, weights) {
                    Ok(o) => o,
                    Err(e) => return Ok(Err(e)),
                }
            }
            Err(e) => return Ok(Err(e)),
        };
        let mut last: Option<PlacementError> = None;
        while !options.is_empty() {
            let s = options.remove(0);
            let claim = Claim {
                project_id: spec.project_id.clone(),
                user_id: spec.user_id.clone(),
                consumer_type: Some("INSTANCE".into()),
                allocations: s.allocations.clone(),
            };
            match self.claim(consumer, claim, ConsumerGeneration::New).await {
                Ok(_) => {
                    options.retain(|o| o.host != s.host);
                    return Ok(Ok((s, options)));
                }
                Err(e) if e.status == http::StatusCode::CONFLICT => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Ok(Err(NoValidHost(format!(
            "every candidate was taken while claiming{}",
            last.map(|e| format!(" (last: {})", e.detail))
                .unwrap_or_default()
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> HostState {
        HostState {
            host: name.into(),
            provider: format!("rp-{name}"),
            enabled: true,
            up: true,
            availability_zone: "nova".into(),
            hypervisor_type: "QEMU".into(),
            hypervisor_version: 8_002_000,
            supported_instances: vec![("x86_64".into(), "qemu".into(), "hvm".into())],
            ..Default::default()
        }
    }

    fn spec() -> RequestSpec {
        RequestSpec {
            project_id: "p1".into(),
            vcpus: 2,
            memory_mb: 2048,
            root_gb: 20,
            ephemeral_gb: 0,
            swap_mb: 512,
            ..Default::default()
        }
    }

    #[test]
    fn flavor_becomes_resources_and_traits() {
        let mut s = spec();
        s.extra_specs
            .insert("resources:CUSTOM_GPU".into(), "1".into());
        s.extra_specs.insert("resources:VCPU".into(), "0".into());
        s.extra_specs
            .insert("trait:HW_CPU_X86_AVX2".into(), "required".into());
        s.extra_specs
            .insert("trait:CUSTOM_SLOW".into(), "forbidden".into());
        s.extra_specs
            .insert("resources1:SRIOV_NET_VF".into(), "2".into());
        s.image_properties
            .insert("trait:HW_NIC_SRIOV".into(), "required".into());
        let r = candidate_request(&s, Some(5));
        assert_eq!(r.limit, Some(5));
        let main = &r.groups[0];
        assert!(main.is_unsuffixed());
        assert_eq!(main.resources.get("VCPU"), None);
        assert_eq!(main.resources["MEMORY_MB"], 2048);
        assert_eq!(
            main.resources["DISK_GB"], 21,
            "20 root + 512 MiB swap rounded up"
        );
        assert_eq!(main.resources["CUSTOM_GPU"], 1);
        assert!(main
            .traits
            .all_of
            .contains(&vec!["HW_CPU_X86_AVX2".to_string()]));
        assert!(main
            .traits
            .all_of
            .contains(&vec!["HW_NIC_SRIOV".to_string()]));
        assert_eq!(main.traits.forbidden, vec!["CUSTOM_SLOW".to_string()]);
        assert_eq!(r.groups[1].suffix, "1");
        assert_eq!(r.groups[1].resources["SRIOV_NET_VF"], 2);
        s.boot_from_volume = true;
        let r = candidate_request(&s, None);
        assert_eq!(r.groups[0].resources["DISK_GB"], 1);
    }

    #[test]
    fn extra_spec_operators() {
        assert!(extra_spec_matches("4", "= 2"));
        assert!(!extra_spec_matches("1", "= 2"));
        assert!(extra_spec_matches("2", "== 2"));
        assert!(extra_spec_matches("x86_64", "s== x86_64"));
        assert!(extra_spec_matches("avx avx2 sse", "<in> avx2"));
        assert!(extra_spec_matches("avx avx2 sse", "<all-in> avx sse"));
        assert!(!extra_spec_matches("avx sse", "<all-in> avx avx2"));
        assert!(extra_spec_matches("kvm", "<or> qemu <or> kvm"));
        assert!(!extra_spec_matches("xen", "<or> qemu <or> kvm"));
        assert!(extra_spec_matches("QEMU", "QEMU"));
        assert!(extra_spec_matches("3", "<= 3"));
    }

    #[test]
    fn filters_refuse_as_nova() {
        let s = spec();
        let mut h = host("a");
        assert_eq!(refusal(&h, &s), None);
        h.enabled = false;
        assert_eq!(refusal(&h, &s), Some("ComputeFilter"));
        let mut h = host("a");
        let mut z = s.clone();
        z.availability_zone = Some("az2".into());
        assert_eq!(refusal(&h, &z), Some("AvailabilityZoneFilter"));
        h.aggregates.push(Aggregate {
            name: "ag".into(),
            metadata: [("availability_zone".to_string(), "az2".to_string())].into(),
        });
        assert_eq!(refusal(&h, &z), None);
        // tenancy isolation
        let mut t = host("t");
        t.aggregates.push(Aggregate {
            name: "private".into(),
            metadata: [("filter_tenant_id".to_string(), "p9,p8".to_string())].into(),
        });
        assert_eq!(refusal(&t, &s), Some("AggregateMultiTenancyIsolation"));
        let mut p9 = s.clone();
        p9.project_id = "p9".into();
        assert_eq!(refusal(&t, &p9), None);
        // image properties
        let mut arm = s.clone();
        arm.image_properties
            .insert("hw_architecture".into(), "aarch64".into());
        assert_eq!(refusal(&host("a"), &arm), Some("ImagePropertiesFilter"));
        arm.image_properties
            .insert("hw_architecture".into(), "x86_64".into());
        assert_eq!(refusal(&host("a"), &arm), None);
        // capabilities and aggregate extra specs
        let mut cap = s.clone();
        cap.extra_specs
            .insert("capabilities:hypervisor_type".into(), "s== QEMU".into());
        assert_eq!(refusal(&host("a"), &cap), None);
        cap.extra_specs
            .insert("capabilities:hypervisor_type".into(), "s== xen".into());
        assert_eq!(refusal(&host("a"), &cap), Some("ComputeCapabilitiesFilter"));
        let mut agg = s.clone();
        agg.extra_specs
            .insert("aggregate_instance_extra_specs:ssd".into(), "true".into());
        let mut fast = host("f");
        assert_eq!(
            refusal(&fast, &agg),
            Some("AggregateInstanceExtraSpecsFilter")
        );
        fast.aggregates.push(Aggregate {
            name: "fast".into(),
            metadata: [("ssd".to_string(), "true".to_string())].into(),
        });
        assert_eq!(refusal(&fast, &agg), None);
        // ignored and forced hosts
        let mut ig = s.clone();
        ig.ignore_hosts.push("a".into());
        assert_eq!(refusal(&host("a"), &ig), Some("IgnoredHost"));
        let mut forced = s.clone();
        forced.force_host = Some("b".into());
        assert_eq!(refusal(&host("a"), &forced), Some("ForcedHost"));
    }

    #[test]
    fn server_group_filters() {
        let mut s = spec();
        s.group = Some(ServerGroup {
            policy: GroupPolicy::AntiAffinity,
            max_server_per_host: None,
            member_hosts: vec!["a".into()],
        });
        assert_eq!(
            refusal(&host("a"), &s),
            Some("ServerGroupAntiAffinityFilter")
        );
        assert_eq!(refusal(&host("b"), &s), None);
        s.group.as_mut().unwrap().max_server_per_host = Some(2);
        assert_eq!(refusal(&host("a"), &s), None);
        s.group = Some(ServerGroup {
            policy: GroupPolicy::Affinity,
            max_server_per_host: None,
            member_hosts: vec!["a".into()],
        });
        assert_eq!(refusal(&host("b"), &s), Some("ServerGroupAffinityFilter"));
        assert_eq!(refusal(&host("a"), &s), None);
        s.group.as_mut().unwrap().member_hosts.clear();
        assert_eq!(
            refusal(&host("b"), &s),
            None,
            "the first member goes anywhere"
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise(&[1.0, 3.0, 2.0]), vec![0.0, 1.0, 0.5]);
        assert_eq!(normalise(&[5.0, 5.0]), vec![0.0, 0.0]);
        assert!(normalise(&[]).is_empty());
    }
}
