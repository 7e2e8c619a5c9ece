//! Allocation candidates, computed without I/O over a [`Snapshot`] of every provider.
//!
//! For each provider tree (in root name order) the request's groups are matched against the
//! tree's providers and the sharing providers associated with it (`MISC_SHARES_VIA_AGGREGATE`
//! providers sharing an aggregate with some provider of the tree):
//! - the unsuffixed group may take each resource class from a different provider; its
//!   required traits are checked against the union of the traits of the providers it uses and
//!   its forbidden traits against each of them;
//! - every suffixed group takes all its resources from one provider that has its traits and
//!   aggregates; a resourceless group (1.36) names one provider of the tree without taking
//!   anything;
//! - `group_policy=isolate` keeps suffixed groups on different providers, `same_subtree`
//!   requires one of the listed groups' providers to be an ancestor of (or equal to) all the
//!   others, `root_required` filters on the tree's root, and amounts a provider gives to
//!   several groups must fit its capacity together.
//!
//! The search is a depth-first walk over the choices, so the first candidates come without
//! enumerating all of them; `limit` stops it early. Candidates identical in allocations and
//! mappings (reached through two trees sharing a provider) are reported once.

use crate::model::{Inventory, Provider, SHARES_VIA_AGGREGATE};
use crate::query::{CandidateRequest, GroupPolicy, RequestGroup};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A hard stop on how many candidates one request may produce.
pub const MAX_CANDIDATES: usize = 10_000;

/// What the algorithm needs to know about one provider.
#[derive(Debug, Clone)]
pub struct ProviderState {
    pub provider: Provider,
    pub inventories: BTreeMap<String, Inventory>,
    /// Allocated amounts per class.
    pub used: BTreeMap<String, i64>,
    pub traits: BTreeSet<String>,
    pub aggregates: BTreeSet<String>,
}

impl ProviderState {
    /// Whether `amount` more of `rc` fits (capacity and unit constraints).
    pub fn fits(&self, rc: &str, amount: i64) -> bool {
        self.fits_with(rc, 0, amount)
    }
    fn fits_with(&self, rc: &str, extra_used: i64, amount: i64) -> bool {
        let Some(inv) = self.inventories.get(rc) else {
            return false;
        };
        let used = self.used.get(rc).copied().unwrap_or(0) + extra_used;
        inv.check(used, amount).is_ok()
    }
}

/// Every provider, by UUID.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub providers: BTreeMap<String, ProviderState>,
}

/// One way to satisfy the request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    /// Amounts per provider per class.
    pub allocations: BTreeMap<String, BTreeMap<String, i64>>,
    /// The providers satisfying each group, by suffix (`""` for the unsuffixed group).
    pub mappings: BTreeMap<String, Vec<String>>,
}

impl Snapshot {
    pub fn get(&self, uuid: &str) -> Option<&ProviderState> {
        self.providers.get(uuid)
    }

    /// The root of `uuid`'s tree.
    pub fn root_of(&self, uuid: &str) -> Option<&str> {
        self.get(uuid).map(|p| p.provider.root_uuid.as_str())
    }

    /// Whether `ancestor` is `p` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: &str, p: &str) -> bool {
        let mut cur = Some(p.to_string());
        let mut steps = 0;
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            steps += 1;
            if steps > 1000 {
                return false;
            }
            cur = self.get(&c).and_then(|s| s.provider.parent_uuid.clone());
        }
        false
    }

    /// The providers of the tree rooted at `root`.
    pub fn tree(&self, root: &str) -> Vec<&str> {
        self.providers
            .values()
            .filter(|p| p.provider.root_uuid == root)
            .map(|p| p.provider.uuid.as_str())
            .collect()
    }

    /// Every tree's providers, by root: one pass instead of one scan per root.
    pub fn trees(&self) -> HashMap<&str, Vec<&str>> {
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        for p in self.providers.values() {
            out.entry(p.provider.root_uuid.as_str())
                .or_default()
                .push(p.provider.uuid.as_str());
        }
        out
    }

    /// The providers that share their resources through aggregates.
    pub fn sharers(&self) -> Vec<&ProviderState> {
        self.providers
            .values()
            .filter(|p| p.traits.contains(SHARES_VIA_AGGREGATE))
            .collect()
    }

    /// [`Snapshot::sharing_for`] among `sharers` (from [`Snapshot::sharers`]).
    pub fn sharing_among<'s>(&self, sharers: &[&'s ProviderState], tree: &[&str]) -> Vec<&'s str> {
        if sharers.is_empty() {
            return Vec::new();
        }
        let aggs: BTreeSet<&String> = tree
            .iter()
            .filter_map(|u| self.get(u))
            .flat_map(|p| p.aggregates.iter())
            .collect();
        sharers
            .iter()
            .filter(|p| {
                !tree.contains(&p.provider.uuid.as_str())
                    && p.aggregates.iter().any(|a| aggs.contains(a))
            })
            .map(|p| p.provider.uuid.as_str())
            .collect()
    }

    /// Sharing providers outside the tree that share an aggregate with one of its providers.
    pub fn sharing_for(&self, tree: &[&str]) -> Vec<&str> {
        let aggs: BTreeSet<&String> = tree
            .iter()
            .filter_map(|u| self.get(u))
            .flat_map(|p| p.aggregates.iter())
            .collect();
        self.providers
            .values()
            .filter(|p| {
                p.traits.contains(SHARES_VIA_AGGREGATE)
                    && !tree.contains(&p.provider.uuid.as_str())
                    && p.aggregates.iter().any(|a| aggs.contains(a))
            })
            .map(|p| p.provider.uuid.as_str())
            .collect()
    }

    /// Aggregates of a provider as member_of sees them: its own and its root's.
    fn aggregates_seen(&self, p: &ProviderState) -> BTreeSet<String> {
        let mut aggs = p.aggregates.clone();
        if let Some(root) = self.get(&p.provider.root_uuid) {
            aggs.extend(root.aggregates.iter().cloned());
        }
        aggs
    }

    /// Whether provider `p` may serve group `g` at all (tree, aggregates, and for suffixed
    /// groups the traits; the unsuffixed group's forbidden traits apply to each provider).
    fn admits(&self, g: &RequestGroup, p: &ProviderState) -> bool {
        if let Some(t) = &g.in_tree {
            if self.root_of(t) != Some(p.provider.root_uuid.as_str()) {
                return false;
            }
        }
        if !g.aggregates.is_empty() && !g.aggregates.matches(&self.aggregates_seen(p)) {
            return false;
        }
        if g.is_unsuffixed() {
            !g.traits.forbidden.iter().any(|t| p.traits.contains(t))
        } else {
            g.traits.matches(&p.traits)
        }
    }
}

/// One choice to make: a class of the unsuffixed group, or a whole suffixed group.
enum Slot<'r> {
    Class {
        rc: &'r str,
        amount: i64,
        options: Vec<&'r str>,
    },
    Group {
        group: &'r RequestGroup,
        options: Vec<&'r str>,
    },
}

/// The candidates for `req`. `nested` (1.29) lets providers with a parent take part; before it
/// only roots (and sharing providers) do.
pub fn allocation_candidates(
    snap: &Snapshot,
    req: &CandidateRequest,
    nested: bool,
) -> Vec<Candidate> {
    candidates_with(snap, req, nested, true)
}

/// [`allocation_candidates`]; `fast` allows the shortcut for flat clouds (tests compare it
/// with the general walk).
fn candidates_with(
    snap: &Snapshot,
    req: &CandidateRequest,
    nested: bool,
    fast: bool,
) -> Vec<Candidate> {
    let max = req.limit.unwrap_or(MAX_CANDIDATES).min(MAX_CANDIDATES);
    // Randomised (a scheduler weighs what it gets, in any order): the walk starts at a random
    // point of the UUID order and wraps around, stopping once it has enough — no list of every
    // root, no sort. Otherwise roots come by name, as Placement orders them.
    let randomized = req.randomize && req.limit.is_some();
    let roots: Box<dyn Iterator<Item = &ProviderState>> = if randomized {
        let start = format!("{:032x}", rand_u128());
        let start = start.as_str();
        Box::new(
            snap.providers
                .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
                .chain(snap.providers.range::<str, _>((
                    std::ops::Bound::Unbounded,
                    std::ops::Bound::Excluded(start),
                )))
                .map(|(_, p)| p)
                .filter(|p| p.provider.parent_uuid.is_none()),
        )
    } else {
        let mut roots: Vec<&ProviderState> = snap
            .providers
            .values()
            .filter(|p| p.provider.parent_uuid.is_none())
            .collect();
        roots.sort_by(|a, b| {
            (a.provider.name.as_str(), a.provider.uuid.as_str())
                .cmp(&(b.provider.name.as_str(), b.provider.uuid.as_str()))
        });
        Box::new(roots.into_iter())
    };
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen: BTreeSet<Candidate> = BTreeSet::new();
    // Trees are only indexed when some provider has a parent: a flat cloud's trees are its
    // roots alone. One pass finds that and the sharing providers.
    let mut nested_any = false;
    let mut sharers: Vec<&ProviderState> = Vec::new();
    for p in snap.providers.values() {
        nested_any |= p.provider.parent_uuid.is_some();
        if p.traits.contains(SHARES_VIA_AGGREGATE) {
            sharers.push(p);
        }
    }
    let trees = if nested_any {
        snap.trees()
    } else {
        HashMap::new()
    };
    // The common case of a scheduler's request — flat trees, nothing shared, one unsuffixed
    // group — has one candidate per root that fits: found without the general walk (what a
    // decision among 10,000 hosts spends most of its time on otherwise).
    if fast
        && !nested_any
        && sharers.is_empty()
        && req.same_subtree.is_empty()
        && req.groups.len() == 1
        && req.groups[0].is_unsuffixed()
        && !req.groups[0].resources.is_empty()
    {
        let g = &req.groups[0];
        for root in roots {
            if out.len() >= max {
                break;
            }
            if (!req.root_required.is_empty() && !req.root_required.matches(&root.traits))
                || !snap.admits(g, root)
                || !g.resources.iter().all(|(rc, n)| root.fits(rc, *n))
                || !g.traits.matches(&root.traits)
            {
                continue;
            }
            let uuid = root.provider.uuid.clone();
            out.push(Candidate {
                allocations: BTreeMap::from([(uuid.clone(), g.resources.clone())]),
                mappings: BTreeMap::from([(String::new(), vec![uuid])]),
            });
        }
        return out;
    }
    for root in roots {
        if out.len() >= max {
            break;
        }
        if !req.root_required.is_empty() && !req.root_required.matches(&root.traits) {
            continue;
        }
        let mut tree = if nested_any {
            trees
                .get(root.provider.uuid.as_str())
                .cloned()
                .unwrap_or_default()
        } else {
            vec![root.provider.uuid.as_str()]
        };
        if !nested {
            tree.retain(|u| {
                snap.get(u)
                    .is_some_and(|p| p.provider.parent_uuid.is_none())
            });
        }
        let sharing = snap.sharing_among(&sharers, &tree);
        let pool: Vec<&str> = tree.iter().chain(sharing.iter()).copied().collect();
        let Some(slots) = slots(snap, req, &tree, &pool) else {
            continue;
        };
        let mut walk = Walk {
            snap,
            req,
            tree: &tree,
            slots: &slots,
            chosen: Vec::with_capacity(slots.len()),
            extra: BTreeMap::new(),
            out: &mut out,
            seen: &mut seen,
            max,
        };
        walk.step();
    }
    out
}

/// A random number from the clock and a counter (no RNG dependency here; only where a walk
/// over the providers starts depends on it).
fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.write_i64(strata_core::time::now_micros());
    let a = h.finish();
    h.write_u64(a);
    ((a as u128) << 64) | h.finish() as u128
}

/// The choices for one tree, or `None` when some slot has no option.
fn slots<'r>(
    snap: &'r Snapshot,
    req: &'r CandidateRequest,
    tree: &[&'r str],
    pool: &[&'r str],
) -> Option<Vec<Slot<'r>>> {
    let mut slots = Vec::new();
    for g in &req.groups {
        if g.is_unsuffixed() {
            if g.resources.is_empty() {
                // A resourceless unsuffixed group: some provider of the tree must match it.
                let ok = tree
                    .iter()
                    .filter_map(|u| snap.get(u))
                    .any(|p| snap.admits(g, p) && g.traits.matches(&p.traits));
                if !ok {
                    return None;
                }
                continue;
            }
            for (rc, amount) in &g.resources {
                let options: Vec<&str> = pool
                    .iter()
                    .copied()
                    .filter(|u| {
                        snap.get(u)
                            .is_some_and(|p| snap.admits(g, p) && p.fits(rc, *amount))
                    })
                    .collect();
                if options.is_empty() {
                    return None;
                }
                slots.push(Slot::Class {
                    rc,
                    amount: *amount,
                    options,
                });
            }
        } else {
            // Resourceless groups name a provider of the tree itself.
            let candidates: &[&str] = if g.resources.is_empty() { tree } else { pool };
            let options: Vec<&str> = candidates
                .iter()
                .copied()
                .filter(|u| {
                    snap.get(u).is_some_and(|p| {
                        snap.admits(g, p) && g.resources.iter().all(|(rc, n)| p.fits(rc, *n))
                    })
                })
                .collect();
            if options.is_empty() {
                return None;
            }
            slots.push(Slot::Group { group: g, options });
        }
    }
    Some(slots)
}

struct Walk<'a, 'r> {
    snap: &'r Snapshot,
    req: &'r CandidateRequest,
    tree: &'a [&'r str],
    slots: &'a [Slot<'r>],
    chosen: Vec<&'r str>,
    /// What earlier choices take from each (provider, class), for combined capacity.
    extra: BTreeMap<(&'r str, &'r str), i64>,
    out: &'a mut Vec<Candidate>,
    seen: &'a mut BTreeSet<Candidate>,
    max: usize,
}

impl<'r> Walk<'_, 'r> {
    fn step(&mut self) {
        if self.out.len() >= self.max {
            return;
        }
        let i = self.chosen.len();
        if i == self.slots.len() {
            self.finish();
            return;
        }
        let slot = &self.slots[i];
        let options = match slot {
            Slot::Class { options, .. } | Slot::Group { options, .. } => options,
        };
        for &p in options {
            if !self.admissible(slot, p) {
                continue;
            }
            let takes: Vec<(&'r str, i64)> = match slot {
                Slot::Class { rc, amount, .. } => vec![(*rc, *amount)],
                Slot::Group { group, .. } => group
                    .resources
                    .iter()
                    .map(|(rc, n)| (rc.as_str(), *n))
                    .collect(),
            };
            for (rc, n) in &takes {
                *self.extra.entry((p, *rc)).or_default() += n;
            }
            self.chosen.push(p);
            self.step();
            self.chosen.pop();
            for (rc, n) in &takes {
                *self.extra.entry((p, *rc)).or_default() -= n;
            }
            if self.out.len() >= self.max {
                return;
            }
        }
    }

    /// Combined capacity with earlier choices, and isolation of suffixed groups.
    fn admissible(&self, slot: &Slot<'r>, p: &str) -> bool {
        let Some(state) = self.snap.get(p) else {
            return false;
        };
        let fits = |rc: &str, n: i64| {
            let extra = self.extra.get(&(p, rc)).copied().unwrap_or(0);
            extra == 0 || state.fits_with(rc, extra, n)
        };
        match slot {
            Slot::Class { rc, amount, .. } => fits(rc, *amount),
            Slot::Group { group, .. } => {
                if !group.resources.iter().all(|(rc, n)| fits(rc, *n)) {
                    return false;
                }
                if self.req.group_policy == Some(GroupPolicy::Isolate) {
                    let taken = self.slots[..self.chosen.len()]
                        .iter()
                        .zip(&self.chosen)
                        .any(|(s, c)| matches!(s, Slot::Group { .. }) && *c == p);
                    if taken {
                        return false;
                    }
                }
                true
            }
        }
    }

    fn finish(&mut self) {
        let mut allocations: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        let mut mappings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut unsuffixed: BTreeSet<&str> = BTreeSet::new();
        for (slot, &p) in self.slots.iter().zip(&self.chosen) {
            match slot {
                Slot::Class { rc, amount, .. } => {
                    *allocations
                        .entry(p.to_string())
                        .or_default()
                        .entry(rc.to_string())
                        .or_default() += amount;
                    unsuffixed.insert(p);
                }
                Slot::Group { group, .. } => {
                    for (rc, n) in &group.resources {
                        *allocations
                            .entry(p.to_string())
                            .or_default()
                            .entry(rc.clone())
                            .or_default() += n;
                    }
                    mappings.insert(group.suffix.clone(), vec![p.to_string()]);
                }
            }
        }
        if !unsuffixed.is_empty() {
            mappings.insert(
                String::new(),
                unsuffixed.iter().map(|s| s.to_string()).collect(),
            );
            // The unsuffixed group's required traits, on the union of its providers.
            if let Some(g) = self.req.groups.iter().find(|g| g.is_unsuffixed()) {
                let union: BTreeSet<String> = unsuffixed
                    .iter()
                    .filter_map(|u| self.snap.get(u))
                    .flat_map(|p| p.traits.iter().cloned())
                    .collect();
                if !g.traits.matches(&union) {
                    return;
                }
            }
        }
        for list in &self.req.same_subtree {
            let providers: Vec<&str> = list
                .iter()
                .filter_map(|s| mappings.get(s).and_then(|v| v.first()))
                .map(|s| s.as_str())
                .collect();
            let ok = providers.iter().any(|top| {
                providers
                    .iter()
                    .all(|p| self.snap.is_ancestor_or_self(top, p))
            });
            if !ok {
                return;
            }
        }
        // Something must come from this tree (else another tree reports it).
        if !self.chosen.iter().any(|p| self.tree.contains(p))
            && !allocations.keys().any(|p| self.tree.contains(&p.as_str()))
        {
            return;
        }
        let c = Candidate {
            allocations,
            mappings,
        };
        if self.seen.insert(c.clone()) {
            self.out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{pairs, parse_candidates};
    use crate::version::Microversion;

    struct B {
        snap: Snapshot,
    }

    impl B {
        fn new() -> B {
            B {
                snap: Snapshot::default(),
            }
        }
        fn rp(&mut self, uuid: &str, parent: Option<&str>) -> &mut B {
            let root = match parent {
                Some(p) => self.snap.providers[p].provider.root_uuid.clone(),
                None => uuid.to_string(),
            };
            self.snap.providers.insert(
                uuid.to_string(),
                ProviderState {
                    provider: Provider {
                        uuid: uuid.to_string(),
                        name: uuid.to_string(),
                        generation: 0,
                        parent_uuid: parent.map(str::to_string),
                        root_uuid: root,
                        created_at: 0,
                        updated_at: 0,
                    },
                    inventories: BTreeMap::new(),
                    used: BTreeMap::new(),
                    traits: BTreeSet::new(),
                    aggregates: BTreeSet::new(),
                },
            );
            self
        }
        fn inv(&mut self, uuid: &str, rc: &str, total: i64, used: i64) -> &mut B {
            let p = self.snap.providers.get_mut(uuid).unwrap();
            p.inventories.insert(
                rc.to_string(),
                Inventory {
                    total,
                    ..Default::default()
                },
            );
            p.used.insert(rc.to_string(), used);
            self
        }
        fn traits(&mut self, uuid: &str, t: &[&str]) -> &mut B {
            let p = self.snap.providers.get_mut(uuid).unwrap();
            p.traits.extend(t.iter().map(|s| s.to_string()));
            self
        }
        fn aggs(&mut self, uuid: &str, a: &[&str]) -> &mut B {
            let p = self.snap.providers.get_mut(uuid).unwrap();
            p.aggregates.extend(a.iter().map(|s| s.to_string()));
            self
        }
        fn run(&self, q: &str, mv: u32) -> Vec<Candidate> {
            let req = parse_candidates(&pairs(q).unwrap(), Microversion(mv)).unwrap();
            allocation_candidates(&self.snap, &req, mv >= 29)
        }
    }

    fn providers(c: &[Candidate]) -> Vec<Vec<&str>> {
        c.iter()
            .map(|c| c.allocations.keys().map(|s| s.as_str()).collect())
            .collect()
    }

    #[test]
    fn the_flat_shortcut_finds_what_the_walk_finds() {
        const AGG1: &str = "11111111-1111-4111-8111-111111111111";
        const AGG2: &str = "22222222-2222-4222-8222-222222222222";
        let mut b = B::new();
        for (i, (used, traits, aggs)) in [
            (0, vec!["HW_CPU_X86_AVX2"], vec![AGG1]),
            (3, vec![], vec![]),
            (7, vec!["HW_CPU_X86_AVX2", "CUSTOM_GOLD"], vec![AGG2]),
            (1, vec!["CUSTOM_GOLD"], vec![AGG1, AGG2]),
            (8, vec![], vec![AGG1]),
        ]
        .into_iter()
        .enumerate()
        {
            let u = format!("rp{i}");
            b.rp(&u, None)
                .inv(&u, "VCPU", 8, used)
                .inv(&u, "MEMORY_MB", 1024, used * 100)
                .traits(&u, &traits)
                .aggs(&u, &aggs);
        }
        for q in [
            "resources=VCPU:1".to_string(),
            "resources=VCPU:2,MEMORY_MB:300".into(),
            "resources=VCPU:1&required=HW_CPU_X86_AVX2".into(),
            "resources=VCPU:1&required=!CUSTOM_GOLD".into(),
            format!("resources=VCPU:1&member_of={AGG1}"),
            format!("resources=VCPU:1&member_of=in:{AGG1},{AGG2}&required=CUSTOM_GOLD"),
            "resources=VCPU:1&root_required=!HW_CPU_X86_AVX2".into(),
            "resources=VCPU:9".into(),
            "resources=VCPU:1&limit=2".into(),
        ] {
            let q = q.as_str();
            let req = parse_candidates(&pairs(q).unwrap(), Microversion(39)).unwrap();
            let fast = candidates_with(&b.snap, &req, true, true);
            let walk = candidates_with(&b.snap, &req, true, false);
            assert_eq!(fast, walk, "{q}");
        }
        // And it is the shortcut that answered: one candidate per fitting root.
        let req = parse_candidates(&pairs("resources=VCPU:1").unwrap(), Microversion(39)).unwrap();
        assert_eq!(candidates_with(&b.snap, &req, true, true).len(), 4);
    }

    #[test]
    fn capacity_and_traits_filter_roots() {
        let mut b = B::new();
        b.rp("a", None)
            .inv("a", "VCPU", 4, 3)
            .traits("a", &["HW_CPU_X86_AVX2"]);
        b.rp("b", None).inv("b", "VCPU", 8, 0);
        b.rp("c", None)
            .inv("c", "VCPU", 8, 0)
            .traits("c", &["HW_CPU_X86_AVX2"]);
        assert_eq!(
            providers(&b.run("resources=VCPU:2", 17)),
            vec![vec!["b"], vec!["c"]]
        );
        assert_eq!(providers(&b.run("resources=VCPU:1", 17)).len(), 3);
        assert_eq!(
            providers(&b.run("resources=VCPU:1&required=HW_CPU_X86_AVX2", 17)),
            vec![vec!["a"], vec!["c"]]
        );
        assert_eq!(
            providers(&b.run("resources=VCPU:1&required=!HW_CPU_X86_AVX2", 22)),
            vec![vec!["b"]]
        );
        assert_eq!(
            providers(&b.run("resources=VCPU:1&required=in:HW_CPU_X86_AVX2,X", 39)),
            vec![vec!["a"], vec!["c"]]
        );
        assert_eq!(b.run("resources=VCPU:1&limit=2", 17).len(), 2);
    }

    #[test]
    fn nested_trees_spread_the_unsuffixed_group() {
        let mut b = B::new();
        b.rp("cn", None).inv("cn", "VCPU", 8, 0);
        b.rp("numa0", Some("cn")).inv("numa0", "MEMORY_MB", 1024, 0);
        b.rp("numa1", Some("cn"))
            .inv("numa1", "MEMORY_MB", 1024, 512);
        let c = b.run("resources=VCPU:1,MEMORY_MB:768", 29);
        assert_eq!(providers(&c), vec![vec!["cn", "numa0"]]);
        assert_eq!(
            c[0].mappings[""],
            vec!["cn".to_string(), "numa0".to_string()]
        );
        // Before 1.29 nested providers do not take part.
        assert!(b.run("resources=VCPU:1,MEMORY_MB:768", 28).is_empty());
        // in_tree of a child restricts to its tree.
        assert_eq!(
            b.run(
                "resources=VCPU:1&in_tree=00000000-0000-0000-0000-000000000000",
                31
            )
            .len(),
            0
        );
    }

    #[test]
    fn granular_isolate_and_none() {
        let mut b = B::new();
        b.rp("cn", None).inv("cn", "VCPU", 8, 0);
        b.rp("pf1", Some("cn")).inv("pf1", "SRIOV_NET_VF", 8, 0);
        b.rp("pf2", Some("cn")).inv("pf2", "SRIOV_NET_VF", 8, 0);
        let base = "resources=VCPU:1&resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1";
        let iso = b.run(&format!("{base}&group_policy=isolate"), 29);
        assert_eq!(iso.len(), 2, "{iso:?}");
        for c in &iso {
            assert_ne!(c.mappings["1"], c.mappings["2"]);
        }
        let none = b.run(&format!("{base}&group_policy=none"), 29);
        // pf1+pf1 (merged: 2 VFs), pf1+pf2, pf2+pf1, pf2+pf2.
        assert_eq!(none.len(), 4, "{none:?}");
        assert!(none
            .iter()
            .any(|c| c.allocations["pf1"]["SRIOV_NET_VF"] == 2));
    }

    #[test]
    fn combined_capacity_is_respected() {
        let mut b = B::new();
        b.rp("cn", None).inv("cn", "VCPU", 3, 0);
        let c = b.run("resources1=VCPU:2&resources2=VCPU:2&group_policy=none", 29);
        assert!(c.is_empty(), "{c:?}");
        let c = b.run("resources1=VCPU:1&resources2=VCPU:2&group_policy=none", 29);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].allocations["cn"]["VCPU"], 3);
    }

    #[test]
    fn sharing_providers_join_trees_by_aggregate() {
        let mut b = B::new();
        let agg = "11111111-1111-1111-1111-111111111111";
        b.rp("cn1", None)
            .inv("cn1", "VCPU", 8, 0)
            .aggs("cn1", &[agg]);
        b.rp("cn2", None).inv("cn2", "VCPU", 8, 0);
        b.rp("ss", None)
            .inv("ss", "DISK_GB", 100, 0)
            .aggs("ss", &[agg])
            .traits("ss", &[SHARES_VIA_AGGREGATE]);
        let c = b.run("resources=VCPU:1,DISK_GB:10", 29);
        assert_eq!(providers(&c), vec![vec!["cn1", "ss"]]);
        // member_of on a sharing provider's aggregate.
        let c = b.run(&format!("resources=VCPU:1&member_of={agg}"), 29);
        assert_eq!(providers(&c), vec![vec!["cn1"]]);
        let c = b.run(&format!("resources=VCPU:1&member_of=!{agg}"), 32);
        assert_eq!(providers(&c), vec![vec!["cn2"]]);
        // DISK_GB alone: the sharing provider, once.
        assert_eq!(b.run("resources=DISK_GB:10", 29).len(), 1);
    }

    #[test]
    fn same_subtree_and_root_required() {
        let mut b = B::new();
        b.rp("cn", None)
            .inv("cn", "VCPU", 8, 0)
            .traits("cn", &["COMPUTE_NODE"]);
        b.rp("nic1", Some("cn")).traits("nic1", &["CUSTOM_NIC"]);
        b.rp("nic2", Some("cn")).traits("nic2", &["CUSTOM_NIC"]);
        b.rp("pf1", Some("nic1")).inv("pf1", "SRIOV_NET_VF", 4, 0);
        b.rp("pf2", Some("nic2")).inv("pf2", "SRIOV_NET_VF", 4, 0);
        let q = "resources_VF=SRIOV_NET_VF:1&required_NIC=CUSTOM_NIC\
                 &same_subtree=_VF,_NIC&group_policy=none";
        let c = b.run(q, 36);
        assert_eq!(c.len(), 2, "{c:?}");
        for c in &c {
            let nic = &c.mappings["_NIC"][0];
            let vf = &c.mappings["_VF"][0];
            assert_eq!(vf.replace("pf", "nic"), *nic);
            assert!(
                !c.allocations.contains_key(nic),
                "resourceless groups allocate nothing"
            );
        }
        assert_eq!(
            b.run("resources=VCPU:1&root_required=COMPUTE_NODE", 35)
                .len(),
            1
        );
        assert_eq!(
            b.run("resources=VCPU:1&root_required=!COMPUTE_NODE", 35)
                .len(),
            0
        );
    }
}
