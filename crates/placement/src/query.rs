//! Query strings of `GET /resource_providers` and `GET /allocation_candidates`, parsed into
//! filters and request groups without I/O. What each microversion accepts (which keys, `!`
//! forbidden traits from 1.22, several `member_of` from 1.24, numbered groups from 1.25,
//! `!` forbidden aggregates from 1.32, string suffixes from 1.33, `root_required` from 1.35,
//! `same_subtree` and resourceless groups from 1.36, `in:` any-of traits from 1.39) is decided
//! here; whether named classes and traits exist is checked by the caller against the store.

use crate::error::{codes, PlacementError};
use crate::model::{is_uuid, Resources};
use crate::version::Microversion;
use std::collections::{BTreeMap, BTreeSet};

/// Trait constraints: every inner list of `all_of` needs one of its traits (a plain trait is a
/// list of one; `in:A,B` is a list of two), and none of `forbidden` may be present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraitFilter {
    pub all_of: Vec<Vec<String>>,
    pub forbidden: Vec<String>,
}

impl TraitFilter {
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.forbidden.is_empty()
    }
    /// Whether a provider (or a union of providers) with `traits` satisfies the filter.
    pub fn matches(&self, traits: &BTreeSet<String>) -> bool {
        self.all_of
            .iter()
            .all(|any| any.iter().any(|t| traits.contains(t)))
            && !self.forbidden.iter().any(|t| traits.contains(t))
    }
    /// Every trait named.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.all_of.iter().flatten().chain(self.forbidden.iter())
    }
}

/// Aggregate constraints: membership in one of each inner list, in none of `forbidden`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateFilter {
    pub any_of: Vec<Vec<String>>,
    pub forbidden: Vec<String>,
}

impl AggregateFilter {
    pub fn is_empty(&self) -> bool {
        self.any_of.is_empty() && self.forbidden.is_empty()
    }
    pub fn matches(&self, aggs: &BTreeSet<String>) -> bool {
        self.any_of
            .iter()
            .all(|any| any.iter().any(|a| aggs.contains(a)))
            && !self.forbidden.iter().any(|a| aggs.contains(a))
    }
}

/// One request group: the unnumbered one (`suffix == ""`), whose resources may come from
/// several providers of a tree and sharing providers, or a numbered/suffixed one, satisfied
/// entirely by one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestGroup {
    pub suffix: String,
    pub resources: Resources,
    pub traits: TraitFilter,
    pub aggregates: AggregateFilter,
    /// Only providers of the tree of this provider.
    pub in_tree: Option<String>,
}

impl RequestGroup {
    pub fn is_unsuffixed(&self) -> bool {
        self.suffix.is_empty()
    }
}

/// How numbered groups relate (1.25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicy {
    /// Groups may share providers.
    None,
    /// Numbered groups use different providers.
    Isolate,
}

/// A whole `GET /allocation_candidates` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandidateRequest {
    /// The unsuffixed group first when present, then the others by suffix.
    pub groups: Vec<RequestGroup>,
    pub group_policy: Option<GroupPolicy>,
    pub limit: Option<usize>,
    /// Traits the root of each candidate's tree must (not) have (1.35).
    pub root_required: TraitFilter,
    /// Lists of suffixes whose providers must share a subtree (1.36).
    pub same_subtree: Vec<Vec<String>>,
    /// With a `limit`, start the walk over the trees at a random one (Placement's
    /// `randomize_allocation_candidates`), so that limited answers do not always name the
    /// same hosts.
    pub randomize: bool,
}

impl CandidateRequest {
    /// Every resource class named.
    pub fn classes(&self) -> BTreeSet<String> {
        self.groups
            .iter()
            .flat_map(|g| g.resources.keys().cloned())
            .collect()
    }
    /// Every trait named.
    pub fn traits(&self) -> BTreeSet<String> {
        self.groups
            .iter()
            .flat_map(|g| g.traits.names().cloned())
            .chain(self.root_required.names().cloned())
            .collect()
    }
}

/// `GET /resource_providers` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderFilter {
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub in_tree: Option<String>,
    pub resources: Resources,
    pub traits: TraitFilter,
    pub aggregates: AggregateFilter,
}

fn bad_value(msg: impl Into<String>) -> PlacementError {
    PlacementError::bad_request(msg).with_code(codes::QUERYPARAM_BAD_VALUE)
}

fn unexpected(key: &str) -> PlacementError {
    PlacementError::query(format!(
        "Additional properties are not allowed ('{key}' was unexpected)"
    ))
}

/// `VCPU:2,MEMORY_MB:1024`.
pub fn parse_resources(value: &str) -> Result<Resources, PlacementError> {
    let badly = || {
        bad_value(format!(
            "Badly formed resources parameter. Expected resources query string parameter in \
             form: ?resources=VCPU:2,MEMORY_MB:1024. Got: {value}."
        ))
    };
    let mut out = Resources::new();
    for item in value.split(',') {
        let (rc, amount) = item.split_once(':').ok_or_else(badly)?;
        let (rc, amount) = (rc.trim(), amount.trim());
        if rc.is_empty() {
            return Err(badly());
        }
        let n = amount
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                bad_value(format!(
                    "Requested resource {rc} expected positive integer amount. Got: {amount}."
                ))
            })?;
        if out.insert(rc.to_string(), n).is_some() {
            return Err(bad_value(format!(
                "Resource class {rc} appears more than once in the resources parameter {value}."
            )));
        }
    }
    Ok(out)
}

/// One `required` value into `into`: `A,!B` (forbidden from 1.22), or `in:A,B` (1.39).
pub fn parse_required(
    key: &str,
    value: &str,
    mv: Microversion,
    into: &mut TraitFilter,
) -> Result<(), PlacementError> {
    let form = || {
        bad_value(format!(
            "Invalid query string parameters: Expected '{key}' parameter value of the form: \
             HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got: {value}"
        ))
    };
    if let Some(list) = value.strip_prefix("in:").filter(|_| mv.at_least(39)) {
        let any: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
        if any.iter().any(|t| t.is_empty() || t.starts_with('!')) {
            return Err(form());
        }
        into.all_of.push(any);
        return Ok(());
    }
    for t in value.split(',') {
        let t = t.trim();
        match t.strip_prefix('!').filter(|_| mv.at_least(22)) {
            Some("") => return Err(form()),
            Some(f) => into.forbidden.push(f.to_string()),
            None if t.is_empty() => return Err(form()),
            None => into.all_of.push(vec![t.to_string()]),
        }
    }
    let conflicting: Vec<String> = into
        .all_of
        .iter()
        .filter(|any| any.iter().all(|t| into.forbidden.contains(t)))
        .map(|any| {
            let mut names: Vec<&str> = any.iter().map(|s| s.as_str()).collect();
            names.sort();
            format!("{key}: ({})", names.join(", "))
        })
        .collect();
    if !conflicting.is_empty() {
        return Err(bad_value(format!(
            "Conflicting required and forbidden traits found in the following traits keys: {}",
            conflicting.join(", ")
        )));
    }
    Ok(())
}

/// One `member_of` value into `into`: `UUID`, `in:U1,U2`, and from 1.32 `!UUID`, `!in:U1,U2`.
pub fn parse_member_of(
    value: &str,
    mv: Microversion,
    into: &mut AggregateFilter,
) -> Result<(), PlacementError> {
    let (forbid, rest) = match value.strip_prefix('!').filter(|_| mv.at_least(32)) {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (listed, rest) = match rest.strip_prefix("in:") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let uuids: Vec<String> = rest.split(',').map(|s| s.trim().to_string()).collect();
    if uuids.len() > 1 && !listed {
        return Err(bad_value(format!(
            "Multiple values for 'member_of' must be prefixed with the 'in:' keyword. Got: {value}"
        )));
    }
    if uuids.iter().any(|u| !is_uuid(u)) {
        return Err(bad_value(format!(
            "Expected 'member_of' parameter to contain valid UUID(s). Got: {value}"
        )));
    }
    let uuids: Vec<String> = uuids
        .iter()
        .map(|u| crate::model::canonical_uuid(u))
        .collect();
    if forbid {
        into.forbidden.extend(uuids);
    } else {
        into.any_of.push(uuids);
    }
    Ok(())
}

fn parse_uuid_param(key: &str, value: &str) -> Result<String, PlacementError> {
    if !is_uuid(value) {
        return Err(PlacementError::query(format!(
            "Failed to parse {key}: '{value}' is not a 'uuid'"
        )));
    }
    Ok(crate::model::canonical_uuid(value))
}

/// The single value of a key that may appear once.
fn single<'a>(key: &str, values: &[&'a str]) -> Result<&'a str, PlacementError> {
    match values {
        [one] => Ok(one),
        _ => Err(PlacementError::bad_request(format!(
            "Query parameter '{key}' is expected to have exactly one value. Got: {}",
            values.join(", ")
        ))
        .with_code(codes::ILLEGAL_DUPLICATE_QUERYPARAM)),
    }
}

/// Groups the pairs by key, keeping order of first appearance.
fn by_key(pairs: &[(String, String)]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (k, v) in pairs {
        match out.iter_mut().find(|(key, _)| key == k) {
            Some((_, vs)) => vs.push(v),
            None => out.push((k, vec![v])),
        }
    }
    out
}

/// Whether `s` is a valid group suffix at `mv`: digits without a leading zero before 1.33,
/// up to 64 of `a-zA-Z0-9_-` from 1.33.
fn valid_suffix(s: &str, mv: Microversion) -> bool {
    if mv.at_least(33) {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    } else {
        !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit())
    }
}

/// Splits `resources12` into (`resources`, `12`).
fn granular_key(key: &str) -> Option<(&'static str, &str)> {
    // `member_of` before `resources`/`required` so prefixes do not overlap.
    for base in ["member_of", "resources", "required", "in_tree"] {
        if let Some(rest) = key.strip_prefix(base) {
            return Some((base, rest));
        }
    }
    None
}

/// Parses `GET /allocation_candidates` at `mv`.
pub fn parse_candidates(
    pairs: &[(String, String)],
    mv: Microversion,
) -> Result<CandidateRequest, PlacementError> {
    let mut groups: BTreeMap<String, RequestGroup> = BTreeMap::new();
    let mut seen: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    let mut req = CandidateRequest::default();
    for (key, values) in by_key(pairs) {
        match key {
            "limit" if mv.at_least(16) => {
                let v = single(key, &values)?;
                let ok =
                    !v.is_empty() && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit());
                let n = v.parse::<usize>().ok().filter(|_| ok).ok_or_else(|| {
                    PlacementError::query(format!("'{v}' does not match '^[1-9][0-9]*$'"))
                })?;
                req.limit = Some(n);
                continue;
            }
            "group_policy" if mv.at_least(25) => {
                req.group_policy = Some(match single(key, &values)? {
                    "none" => GroupPolicy::None,
                    "isolate" => GroupPolicy::Isolate,
                    other => {
                        return Err(PlacementError::query(format!(
                            "'{other}' is not one of ['none', 'isolate']"
                        )))
                    }
                });
                continue;
            }
            "root_required" if mv.at_least(35) => {
                if values.len() > 1 {
                    return Err(PlacementError::bad_request(
                        "Query parameter 'root_required' may be specified only once.",
                    )
                    .with_code(codes::ILLEGAL_DUPLICATE_QUERYPARAM));
                }
                // root_required has no any-of (`in:`) form.
                parse_required(
                    key,
                    values[0],
                    Microversion(mv.0.min(38)),
                    &mut req.root_required,
                )?;
                continue;
            }
            "same_subtree" if mv.at_least(36) => {
                for v in values {
                    let list: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                    if list.iter().any(|s| s.is_empty()) {
                        return Err(bad_value(format!(
                            "Empty string (unsuffixed group) can not be specified in \
                             `same_subtree`: {v}"
                        )));
                    }
                    req.same_subtree.push(list);
                }
                continue;
            }
            _ => {}
        }
        let Some((base, suffix)) = granular_key(key) else {
            return Err(unexpected(key));
        };
        let allowed = match base {
            "resources" => true,
            "required" => mv.at_least(17),
            "member_of" => mv.at_least(21),
            _ => mv.at_least(31),
        } && (suffix.is_empty() || (mv.at_least(25) && valid_suffix(suffix, mv)));
        if !allowed {
            return Err(unexpected(key));
        }
        let g = groups
            .entry(suffix.to_string())
            .or_insert_with(|| RequestGroup {
                suffix: suffix.to_string(),
                ..Default::default()
            });
        seen.entry(suffix.to_string()).or_default().insert(base);
        match base {
            "resources" => g.resources = parse_resources(single(key, &values)?)?,
            "required" => {
                for v in values {
                    parse_required(key, v, mv, &mut g.traits)?;
                }
            }
            "member_of" => {
                if values.len() > 1 && !mv.at_least(24) {
                    return Err(bad_value(
                        "Multiple member_of parameters are not supported at this microversion",
                    ));
                }
                for v in values {
                    parse_member_of(v, mv, &mut g.aggregates)?;
                }
            }
            _ => g.in_tree = Some(parse_uuid_param(key, single(key, &values)?)?),
        }
    }
    let resourceless: Vec<&String> = groups
        .iter()
        .filter(|(_, g)| g.resources.is_empty())
        .map(|(s, _)| s)
        .collect();
    if mv.at_least(36) {
        // Resourceless groups (1.36) must name a subtree to sit in.
        if resourceless.len() == groups.len() {
            return Err(bad_value(
                "There must be at least one resources or resources[$S] parameter.",
            )
            .with_code(codes::QUERYPARAM_MISSING_VALUE));
        }
        let in_subtree: BTreeSet<&String> = req.same_subtree.iter().flatten().collect();
        let bad: Vec<String> = resourceless
            .iter()
            .filter(|s| !in_subtree.contains(*s))
            .map(|s| format!("'{s}'"))
            .collect();
        if !bad.is_empty() {
            return Err(bad_value(format!(
                "Resourceless suffixed group request should be specified in `same_subtree` \
                 query param: bad group(s) - [{}].",
                bad.join(", ")
            )));
        }
    } else {
        for (suffix, bases) in &seen {
            if bases.contains("resources") {
                continue;
            }
            for (base, what) in [
                ("required", "traits"),
                ("member_of", "member_of"),
                ("in_tree", "in_tree"),
            ] {
                if bases.contains(base) {
                    return Err(PlacementError::bad_request(format!(
                        "All {what} parameters must be associated with resources. Found the \
                         following orphaned {what} keys: {base}{suffix}"
                    )));
                }
            }
        }
        if groups.is_empty() {
            return Err(PlacementError::bad_request(
                "At least one request group (`resources` or `resources{$S}`) is required.",
            ));
        }
    }
    let numbered = groups.keys().filter(|s| !s.is_empty()).count();
    if numbered > 1 && req.group_policy.is_none() {
        return Err(bad_value(
            "The \"group_policy\" parameter is required when specifying more than one \
             \"resources{$S}\" parameter.",
        )
        .with_code(codes::QUERYPARAM_MISSING_VALUE));
    }
    for list in &req.same_subtree {
        let unknown: Vec<&str> = list
            .iter()
            .filter(|s| !groups.contains_key(s.as_str()))
            .map(|s| s.as_str())
            .collect();
        if !unknown.is_empty() {
            let known: Vec<String> = groups.keys().map(|k| format!("'{k}'")).collect();
            let unknown: Vec<String> = unknown.iter().map(|k| format!("'{k}'")).collect();
            return Err(bad_value(format!(
                "Real suffixes should be specified in `same_subtree`: [{}] not found in [{}].",
                unknown.join(", "),
                known.join(", ")
            )));
        }
    }
    // The unsuffixed group first (BTreeMap orders "" first), the others by suffix.
    req.groups = groups.into_values().collect();
    Ok(req)
}

/// Parses `GET /resource_providers` at `mv`.
pub fn parse_provider_filter(
    pairs: &[(String, String)],
    mv: Microversion,
) -> Result<ProviderFilter, PlacementError> {
    let mut f = ProviderFilter::default();
    for (key, values) in by_key(pairs) {
        match key {
            "name" => f.name = Some(single(key, &values)?.to_string()),
            "uuid" => f.uuid = Some(parse_uuid_param(key, single(key, &values)?)?),
            "member_of" if mv.at_least(3) => {
                if values.len() > 1 && !mv.at_least(24) {
                    return Err(bad_value(
                        "Multiple member_of parameters are not supported at this microversion",
                    ));
                }
                for v in values {
                    parse_member_of(v, mv, &mut f.aggregates)?;
                }
            }
            "resources" if mv.at_least(4) => f.resources = parse_resources(single(key, &values)?)?,
            "in_tree" if mv.at_least(14) => {
                f.in_tree = Some(parse_uuid_param(key, single(key, &values)?)?)
            }
            "required" if mv.at_least(18) => {
                for v in values {
                    parse_required(key, v, mv, &mut f.traits)?;
                }
            }
            other => return Err(unexpected(other)),
        }
    }
    Ok(f)
}

/// Decodes a query string into ordered pairs (`+` and `%XX` decoded); `None` when malformed.
pub fn pairs(query: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Some(out)
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A1: &str = "11111111-1111-1111-1111-111111111111";
    const A2: &str = "22222222-2222-2222-2222-222222222222";

    fn q(s: &str) -> Vec<(String, String)> {
        pairs(s).unwrap()
    }

    fn mv(n: u32) -> Microversion {
        Microversion(n)
    }

    #[test]
    fn resources_parse_and_reject() {
        let r = parse_resources("VCPU:2,MEMORY_MB:1024").unwrap();
        assert_eq!(r["VCPU"], 2);
        assert_eq!(r["MEMORY_MB"], 1024);
        for bad in [
            "VCPU",
            "VCPU:0",
            "VCPU:-1",
            "VCPU:x",
            ":2",
            "VCPU:1,VCPU:2",
            "",
        ] {
            let e = parse_resources(bad).unwrap_err();
            assert_eq!(e.status, http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn required_forbidden_and_any_of() {
        let mut f = TraitFilter::default();
        parse_required("required", "A,!B", mv(22), &mut f).unwrap();
        assert_eq!(f.all_of, vec![vec!["A".to_string()]]);
        assert_eq!(f.forbidden, vec!["B".to_string()]);
        // Before 1.22 `!B` is a (nonexistent) trait name.
        let mut f = TraitFilter::default();
        parse_required("required", "!B", mv(21), &mut f).unwrap();
        assert_eq!(f.all_of, vec![vec!["!B".to_string()]]);
        // `in:` from 1.39.
        let mut f = TraitFilter::default();
        parse_required("required", "in:A,B", mv(39), &mut f).unwrap();
        assert_eq!(f.all_of, vec![vec!["A".to_string(), "B".to_string()]]);
        let traits: BTreeSet<String> = ["B".to_string()].into();
        assert!(f.matches(&traits));
        // Conflicts and empty names.
        let mut f = TraitFilter::default();
        assert!(parse_required("required", "A,!A", mv(22), &mut f).is_err());
        let mut f = TraitFilter::default();
        assert!(parse_required("required", "A,,B", mv(22), &mut f).is_err());
        let mut f = TraitFilter::default();
        assert!(parse_required("required", "!", mv(22), &mut f).is_err());
    }

    #[test]
    fn member_of_forms() {
        let mut f = AggregateFilter::default();
        parse_member_of(A1, mv(21), &mut f).unwrap();
        parse_member_of(&format!("in:{A1},{A2}"), mv(24), &mut f).unwrap();
        assert_eq!(f.any_of.len(), 2);
        assert!(parse_member_of(&format!("{A1},{A2}"), mv(24), &mut f).is_err());
        assert!(parse_member_of("nope", mv(24), &mut f).is_err());
        // `!` from 1.32 only.
        assert!(parse_member_of(&format!("!{A1}"), mv(31), &mut f).is_err());
        let mut f = AggregateFilter::default();
        parse_member_of(&format!("!in:{A1},{A2}"), mv(32), &mut f).unwrap();
        assert_eq!(f.forbidden.len(), 2);
        let aggs: BTreeSet<String> = [A1.to_string()].into();
        assert!(!f.matches(&aggs));
        assert!(f.matches(&BTreeSet::new()));
    }

    #[test]
    fn granular_groups() {
        let r = parse_candidates(
            &q(
                "resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1=HW_NIC_SRIOV\
                &resources2=SRIOV_NET_VF:1&group_policy=isolate&limit=5",
            ),
            mv(25),
        )
        .unwrap();
        assert_eq!(r.groups.len(), 3);
        assert!(r.groups[0].is_unsuffixed());
        assert_eq!(r.groups[1].suffix, "1");
        assert_eq!(
            r.groups[1].traits.all_of,
            vec![vec!["HW_NIC_SRIOV".to_string()]]
        );
        assert_eq!(r.group_policy, Some(GroupPolicy::Isolate));
        assert_eq!(r.limit, Some(5));
        // group_policy is required with two numbered groups.
        let e = parse_candidates(&q("resources1=VCPU:1&resources2=VCPU:1"), mv(25)).unwrap_err();
        assert!(e.detail.contains("group_policy"), "{e}");
        // Numbered groups before 1.25, string suffixes before 1.33: unknown keys.
        assert!(parse_candidates(&q("resources1=VCPU:1"), mv(24)).is_err());
        assert!(parse_candidates(&q("resources_NIC=VCPU:1"), mv(32)).is_err());
        assert!(parse_candidates(&q("resources_NIC=VCPU:1"), mv(33)).is_ok());
        assert!(parse_candidates(&q("resources01=VCPU:1"), mv(32)).is_err());
        // Orphans before 1.36, resourceless groups from 1.36.
        let orphan = "resources=VCPU:1&required1=HW_NIC_SRIOV";
        assert!(parse_candidates(&q(orphan), mv(35)).is_err());
        // From 1.36 a resourceless group must be in a same_subtree.
        assert!(parse_candidates(&q(orphan), mv(36)).is_err());
        let placed = "resources1=VCPU:1&required2=HW_NIC_SRIOV&same_subtree=1,2&group_policy=none";
        assert!(parse_candidates(&q(placed), mv(36)).is_ok());
        assert!(parse_candidates(
            &q("resources=VCPU:1&root_required=A&root_required=B"),
            mv(36)
        )
        .is_err());
        // At least one group with resources.
        assert!(parse_candidates(&q("required=A"), mv(36)).is_err());
        assert!(parse_candidates(&q(""), mv(10)).is_err());
    }

    #[test]
    fn candidate_keys_by_microversion() {
        assert!(parse_candidates(&q("resources=VCPU:1&limit=1"), mv(15)).is_err());
        assert!(parse_candidates(&q("resources=VCPU:1&limit=0"), mv(16)).is_err());
        assert!(parse_candidates(&q("resources=VCPU:1&required=A"), mv(16)).is_err());
        assert!(parse_candidates(&q(&format!("resources=VCPU:1&member_of={A1}")), mv(20)).is_err());
        assert!(parse_candidates(&q(&format!("resources=VCPU:1&in_tree={A1}")), mv(30)).is_err());
        assert!(parse_candidates(&q(&format!("resources=VCPU:1&in_tree={A1}")), mv(31)).is_ok());
        assert!(parse_candidates(&q("resources=VCPU:1&in_tree=x"), mv(31)).is_err());
        assert!(parse_candidates(&q("resources=VCPU:1&root_required=A"), mv(34)).is_err());
        assert!(parse_candidates(&q("resources=VCPU:1&root_required=!A"), mv(35)).is_ok());
        assert!(parse_candidates(&q("resources=VCPU:1&foo=bar"), mv(39)).is_err());
        assert!(parse_candidates(&q("resources=VCPU:1&resources=VCPU:2"), mv(39)).is_err());
        // same_subtree names real suffixes only.
        let ok = "resources_A=VCPU:1&required_B=X&same_subtree=_A,_B&group_policy=none";
        let r = parse_candidates(&q(ok), mv(36)).unwrap();
        assert_eq!(
            r.same_subtree,
            vec![vec!["_A".to_string(), "_B".to_string()]]
        );
        let bad = "resources_A=VCPU:1&same_subtree=_A,_C";
        assert!(parse_candidates(&q(bad), mv(36)).is_err());
    }

    #[test]
    fn provider_filters_by_microversion() {
        let f = parse_provider_filter(
            &q(&format!(
                "name=n&member_of=in:{A1},{A2}&resources=VCPU:1&required=A,!B"
            )),
            mv(22),
        )
        .unwrap();
        assert_eq!(f.name.as_deref(), Some("n"));
        assert_eq!(f.aggregates.any_of[0].len(), 2);
        assert_eq!(f.traits.forbidden, vec!["B".to_string()]);
        assert!(parse_provider_filter(&q("required=A"), mv(17)).is_err());
        assert!(parse_provider_filter(&q("resources=VCPU:1"), mv(3)).is_err());
        assert!(parse_provider_filter(&q("bogus=1"), mv(39)).is_err());
        let two = format!("member_of={A1}&member_of={A2}");
        assert!(parse_provider_filter(&q(&two), mv(23)).is_err());
        assert_eq!(
            parse_provider_filter(&q(&two), mv(24))
                .unwrap()
                .aggregates
                .any_of
                .len(),
            2
        );
    }

    #[test]
    fn decodes_pairs() {
        assert_eq!(
            pairs("a=b%2Cc&d=e+f").unwrap(),
            vec![("a".into(), "b,c".into()), ("d".into(), "e f".into())]
        );
        assert!(pairs("a=%zz").is_none());
        assert!(pairs("a=%2").is_none());
    }
}
