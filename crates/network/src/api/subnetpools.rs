//! `/v2.0/subnetpools`: create, list, show, update, delete; and the allocation of a subnet's
//! CIDR from a pool (the first free prefix of the asked length not used by the pool's other
//! subnets).

use super::list;
use super::networks::{boolean, only, owner, standard, string};
use super::write;
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body, Pairs};
use crate::ipam::{self, Cidr, Range};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};

pub const KIND: &str = "subnetpool";

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/subnetpools", get(subnetpool_list).post(subnetpool_create))
        .route(
            "/subnetpools/{id}",
            get(subnetpool_show)
                .put(subnetpool_update)
                .delete(subnetpool_delete),
        )
}

pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "tenant_id",
    "project_id",
    "prefixes",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "is_default",
    "shared",
    "address_scope_id",
    "ip_version",
    "default_quota",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

pub fn not_found(id: &str) -> NeutronError {
    NeutronError::new(
        StatusCode::NOT_FOUND,
        "SubnetPoolNotFound",
        format!("Subnet pool {id} could not be found."),
    )
}

pub fn view(r: &Resource) -> Value {
    Value::Object(standard(r))
}

pub fn visible(auth: &Auth, r: &Resource) -> bool {
    auth.owns(&r.project_id) || r.flag("shared")
}

async fn find(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<Resource> {
    match db::get(svc.store(), KIND, id).await? {
        Some(r) if visible(auth, &r) => Ok(r),
        _ => Err(not_found(id)),
    }
}

// ------------------------------------------------------------------ prefix arithmetic

/// The CIDRs covering exactly the range `(s, e)` (netaddr's `iter_cidrs`).
pub fn range_cidrs(mut s: u128, e: u128, version: u8) -> Vec<Cidr> {
    let bits: u32 = if version == 4 { 32 } else { 128 };
    let mut out = Vec::new();
    loop {
        // the largest aligned block starting at s that fits in [s, e]
        let mut host = if s == 0 {
            bits
        } else {
            s.trailing_zeros().min(bits)
        };
        while host > 0 {
            let span = if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            };
            if s.checked_add(span).is_some_and(|last| last <= e) {
                break;
            }
            host -= 1;
        }
        let cidr = Cidr::new(ipam::from_u128(s, version), (bits - host) as u8).expect("prefix");
        out.push(cidr);
        let last = cidr.last();
        if last >= e {
            break;
        }
        s = last + 1;
    }
    out
}

/// Merges prefixes into the fewest CIDRs covering the same addresses (netaddr's `IPSet`).
pub fn compact(prefixes: &[Cidr]) -> Vec<Cidr> {
    let Some(version) = prefixes.first().map(Cidr::version) else {
        return vec![];
    };
    let mut ranges: Vec<Range> = prefixes.iter().map(|c| (c.first(), c.last())).collect();
    ranges.sort();
    let mut merged: Vec<Range> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
        .into_iter()
        .flat_map(|(s, e)| range_cidrs(s, e, version))
        .collect()
}

/// The first block of length `prefixlen` inside `prefixes` overlapping none of `used`.
pub fn first_free(prefixes: &[Cidr], used: &[Cidr], prefixlen: u8) -> Option<Cidr> {
    let mut used: Vec<Range> = used.iter().map(|c| (c.first(), c.last())).collect();
    used.sort();
    let mut prefixes = prefixes.to_vec();
    prefixes.sort_by_key(|c| c.first());
    for p in prefixes {
        if p.prefix > prefixlen {
            continue;
        }
        let block = Cidr::new(p.addr, prefixlen)?;
        let size = block.size();
        let mut cand = p.first();
        loop {
            let end = cand.checked_add(size - 1)?;
            if end > p.last() {
                break;
            }
            match used.iter().find(|u| u.0 <= end && cand <= u.1) {
                None => return Cidr::new(ipam::from_u128(cand, p.version()), prefixlen),
                Some(u) => {
                    // jump past the used block, aligned to the block size
                    let next = u.1.checked_add(1)?;
                    let aligned = next.div_ceil(size).checked_mul(size)?;
                    cand = aligned.max(cand + size);
                }
            }
        }
    }
    None
}

fn prefixes_of(pool: &Resource) -> Vec<Cidr> {
    pool.doc
        .get("prefixes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(Cidr::parse))
                .collect()
        })
        .unwrap_or_default()
}

fn len_of(pool: &Resource, key: &str) -> u8 {
    pool.doc.get(key).and_then(Value::as_i64).unwrap_or(0) as u8
}

fn bounds_error(kind: &str, len: u8, base_kind: &str, base: u8) -> NeutronError {
    NeutronError::bad_request(format!(
        "Illegal prefix bounds: {kind}={len}, {base_kind}={base}."
    ))
}

/// The CIDR of a new subnet of `pool`: `cidr` if asked (inside the pool and free), else the
/// first free block of `prefixlen` (the pool's default when absent).
pub fn allocate(
    pool: &Resource,
    subnets: &[Resource],
    ip_version: u8,
    cidr: Option<Cidr>,
    prefixlen: Option<u8>,
) -> NeutronResult<Cidr> {
    let pv = pool
        .doc
        .get("ip_version")
        .and_then(Value::as_i64)
        .unwrap_or(4) as u8;
    if pv != ip_version {
        return Err(NeutronError::bad_request(format!(
            "Bad subnets request: Cannot allocate IPv{ip_version} subnet from IPv{pv} subnet \
             pool."
        )));
    }
    let used: Vec<Cidr> = subnets
        .iter()
        .filter(|s| s.str("subnetpool_id") == Some(pool.id.as_str()))
        .filter_map(ipam::cidr_of)
        .collect();
    let prefixes = prefixes_of(pool);
    let (min, max) = (len_of(pool, "min_prefixlen"), len_of(pool, "max_prefixlen"));
    let plen = cidr
        .map(|c| c.prefix)
        .or(prefixlen)
        .unwrap_or_else(|| len_of(pool, "default_prefixlen"));
    if plen < min {
        return Err(bounds_error("prefixlen", plen, "min_prefixlen", min));
    }
    if plen > max {
        return Err(bounds_error("prefixlen", plen, "max_prefixlen", max));
    }
    let failed = |reason: String| {
        NeutronError::conflict(
            "SubnetAllocationError",
            format!("Failed to allocate subnet: {reason}"),
        )
    };
    if let Some(c) = cidr {
        if !prefixes.iter().any(|p| p.covers(&c)) {
            return Err(failed(format!(
                "Cannot allocate requested subnet {c} from the available set of prefixes."
            )));
        }
        if used.iter().any(|u| u.overlaps(&c)) {
            return Err(failed(format!(
                "Cannot allocate requested subnet {c}: it overlaps another subnet of the pool."
            )));
        }
        return Ok(c);
    }
    first_free(&prefixes, &used, plen).ok_or_else(|| {
        failed(format!(
            "Insufficient prefix space to allocate subnet size /{plen}."
        ))
    })
}

// ------------------------------------------------------------------ validation

fn int(m: &Map<String, Value>, key: &str) -> NeutronResult<Option<i64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{other}' is not an integer."
        ))),
    }
}

fn parse_prefixes(v: &Value) -> NeutronResult<Vec<Cidr>> {
    let items: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        Value::String(_) => vec![v.clone()],
        other => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for prefixes. Reason: '{other}' is not a list."
            )))
        }
    };
    if items.is_empty() {
        return Err(NeutronError::bad_request(
            "Invalid input for prefixes. Reason: the list of prefixes is empty.",
        ));
    }
    let mut out = Vec::new();
    for i in &items {
        out.push(super::subnets::parse_cidr("prefixes", i)?);
    }
    let v4 = out[0].version();
    if out.iter().any(|c| c.version() != v4) {
        return Err(NeutronError::bad_request(
            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
        ));
    }
    Ok(compact(&out))
}

/// Checks min ≤ default ≤ max within the address width, as Neutron's `SubnetPoolHelper`.
fn check_lengths(version: u8, min: i64, default: i64, max: i64) -> NeutronResult<()> {
    let bits: i64 = if version == 4 { 32 } else { 128 };
    if min < 0 || min > bits {
        return Err(NeutronError::bad_request(format!(
            "Prefix '{min}' not supported in IPv{version} pool."
        )));
    }
    if max > bits || max < 0 {
        return Err(bounds_error(
            "max_prefixlen",
            max as u8,
            "ip_version_max",
            bits as u8,
        ));
    }
    if min > max {
        return Err(bounds_error(
            "min_prefixlen",
            min as u8,
            "max_prefixlen",
            max as u8,
        ));
    }
    if default < min {
        return Err(bounds_error(
            "default_prefixlen",
            default as u8,
            "min_prefixlen",
            min as u8,
        ));
    }
    if default > max {
        return Err(bounds_error(
            "default_prefixlen",
            default as u8,
            "max_prefixlen",
            max as u8,
        ));
    }
    Ok(())
}

const CREATE_ATTRS: &[&str] = &[
    "name",
    "tenant_id",
    "project_id",
    "prefixes",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "is_default",
    "shared",
    "address_scope_id",
    "default_quota",
    "description",
    "tags",
];

fn build(auth: &Auth, m: &Map<String, Value>) -> NeutronResult<Resource> {
    only(m, CREATE_ATTRS)?;
    let project = owner(auth, m)?;
    let prefixes = match m.get("prefixes") {
        None => {
            return Err(NeutronError::bad_request(
                "Failed to parse request. Required attribute 'prefixes' not specified",
            ))
        }
        Some(v) => parse_prefixes(v)?,
    };
    let version = prefixes[0].version();
    let shared = boolean(m, "shared")?.unwrap_or(false);
    if shared && !auth.admin() {
        return Err(NeutronError::policy("create_subnetpool:shared"));
    }
    let is_default = boolean(m, "is_default")?.unwrap_or(false);
    if is_default && !auth.admin() {
        return Err(NeutronError::policy("create_subnetpool:is_default"));
    }
    match m.get("address_scope_id") {
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(NeutronError::bad_request(
                "Invalid input for address_scope_id. Reason: address scopes are not supported.",
            ))
        }
    }
    let min = int(m, "min_prefixlen")?.unwrap_or(if version == 4 { 8 } else { 64 });
    let max = int(m, "max_prefixlen")?.unwrap_or(if version == 4 { 32 } else { 128 });
    let default = int(m, "default_prefixlen")?.unwrap_or(min);
    check_lengths(version, min, default, max)?;
    let quota = int(m, "default_quota")?;
    let tags = match m.get("tags") {
        None => json!([]),
        Some(Value::Array(t)) if t.iter().all(Value::is_string) => Value::Array(t.clone()),
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for tags. Reason: '{other}' is not a list of strings."
            )))
        }
    };
    let mut doc = Map::new();
    doc.insert(
        "name".into(),
        json!(string(m, "name", 255)?.unwrap_or_default()),
    );
    doc.insert(
        "prefixes".into(),
        json!(prefixes.iter().map(Cidr::to_string).collect::<Vec<_>>()),
    );
    doc.insert("default_prefixlen".into(), json!(default));
    doc.insert("min_prefixlen".into(), json!(min));
    doc.insert("max_prefixlen".into(), json!(max));
    doc.insert("is_default".into(), json!(is_default));
    doc.insert("shared".into(), json!(shared));
    doc.insert("address_scope_id".into(), Value::Null);
    doc.insert("ip_version".into(), json!(version));
    doc.insert("default_quota".into(), json!(quota));
    doc.insert(
        "description".into(),
        json!(string(m, "description", 255)?.unwrap_or_default()),
    );
    doc.insert("tags".into(), tags);
    Ok(Resource::new(KIND, strata_core::ids::uuid(), project, doc))
}

fn default_taken(version: i64) -> NeutronError {
    NeutronError::invalid_input(format!(
        "A default subnetpool for this IP family (IPv{version}) has already been set. Only one \
         default may exist per IP family"
    ))
}

/// Whether another pool of `version` is the default.
async fn has_default(
    tx: &mut strata_store::Tx,
    version: i64,
    except: &str,
) -> strata_core::Result<bool> {
    Ok(db::list_tx(tx, KIND, None).await?.iter().any(|p| {
        p.id != except
            && p.flag("is_default")
            && p.doc.get("ip_version").and_then(Value::as_i64) == Some(version)
    }))
}

// ------------------------------------------------------------------ handlers

/// `POST /v2.0/subnetpools`: 201; bulk too.
pub async fn subnetpool_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_subnetpool"));
    }
    let (items, bulk) = body.entities("subnetpool", "subnetpools")?;
    let mut built = Vec::with_capacity(items.len());
    for m in &items {
        built.push(build(&auth, m)?);
    }
    let cfg = svc.config().clone();
    let created = write(&svc, move |tx| {
        let (built, cfg) = (built.clone(), cfg.clone());
        Box::pin(async move {
            let mut per_project: Vec<(String, i64)> = Vec::new();
            for r in &built {
                match per_project.iter_mut().find(|(p, _)| *p == r.project_id) {
                    Some((_, n)) => *n += 1,
                    None => per_project.push((r.project_id.clone(), 1)),
                }
            }
            for (p, n) in &per_project {
                if let Err(e) = crate::quota::check(tx, &cfg, p, "subnetpool", *n).await? {
                    return Ok(Err(e));
                }
            }
            for r in &built {
                if r.flag("is_default") {
                    let v = r.doc.get("ip_version").and_then(Value::as_i64).unwrap_or(4);
                    if has_default(tx, v, &r.id).await? {
                        return Ok(Err(default_taken(v)));
                    }
                }
                db::insert(tx, r).await?;
            }
            Ok(Ok(built))
        })
    })
    .await?;
    let views: Vec<Value> = created.iter().map(view).collect();
    let body = if bulk {
        json!({ "subnetpools": views })
    } else {
        json!({ "subnetpool": views[0] })
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v2.0/subnetpools`.
pub async fn subnetpool_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let views: Vec<Value> = db::list(svc.store(), KIND, None)
        .await?
        .iter()
        .filter(|r| visible(&auth, r))
        .map(view)
        .collect();
    let none = |_: &Value, _: &str, _: &[&str]| None;
    let views = list::filter(views, &q, ATTRS, &none)?;
    Ok(Json(list::respond(
        "subnetpools",
        &super::collection_url(&svc, "subnetpools"),
        views,
        &q,
        ATTRS,
    )?))
}

/// `GET /v2.0/subnetpools/{id}`.
pub async fn subnetpool_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    Ok(Json(
        json!({"subnetpool": list::project(view(&r), &list::fields(&q))}),
    ))
}

const UPDATE_ATTRS: &[&str] = &[
    "name",
    "description",
    "prefixes",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "is_default",
    "default_quota",
];

/// `PUT /v2.0/subnetpools/{id}`: prefixes may only grow.
pub async fn subnetpool_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.owns(&r.project_id) || !auth.can_write() {
        return Err(NeutronError::policy("update_subnetpool"));
    }
    let m = body.entity("subnetpool")?;
    for k in m.keys() {
        if ["id", "tenant_id", "project_id", "shared", "ip_version"].contains(&k.as_str()) {
            return Err(NeutronError::bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
    }
    match m.get("address_scope_id") {
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(NeutronError::bad_request(
                "Invalid input for address_scope_id. Reason: address scopes are not supported.",
            ))
        }
    }
    let mut allowed = UPDATE_ATTRS.to_vec();
    allowed.push("address_scope_id");
    only(&m, &allowed)?;
    let mut changes = Map::new();
    if let Some(n) = string(&m, "name", 255)? {
        changes.insert("name".into(), json!(n));
    }
    if let Some(d) = string(&m, "description", 255)? {
        changes.insert("description".into(), json!(d));
    }
    if let Some(b) = boolean(&m, "is_default")? {
        if !auth.admin() {
            return Err(NeutronError::policy("update_subnetpool:is_default"));
        }
        changes.insert("is_default".into(), json!(b));
    }
    if m.contains_key("default_quota") {
        changes.insert("default_quota".into(), json!(int(&m, "default_quota")?));
    }
    let version = r.doc.get("ip_version").and_then(Value::as_i64).unwrap_or(4);
    if let Some(v) = m.get("prefixes") {
        let new = parse_prefixes(v)?;
        if new[0].version() as i64 != version {
            return Err(NeutronError::bad_request(
                "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
            ));
        }
        let mut all = prefixes_of(&r);
        all.extend(new.iter().copied());
        let merged = compact(&all);
        // nothing may be taken away
        if !prefixes_of(&r)
            .iter()
            .all(|old| new.iter().any(|n| n.covers(old)))
        {
            return Err(NeutronError::bad_request(
                "Illegal update to prefixes: Existing prefixes must be a subset of the new \
                 prefixes.",
            ));
        }
        changes.insert(
            "prefixes".into(),
            json!(merged.iter().map(Cidr::to_string).collect::<Vec<_>>()),
        );
    }
    let get = |k: &str| -> NeutronResult<i64> {
        Ok(match int(&m, k)? {
            Some(v) => v,
            None => r.doc.get(k).and_then(Value::as_i64).unwrap_or(0),
        })
    };
    let (min, default, max) = (
        get("min_prefixlen")?,
        get("default_prefixlen")?,
        get("max_prefixlen")?,
    );
    check_lengths(version as u8, min, default, max)?;
    changes.insert("min_prefixlen".into(), json!(min));
    changes.insert("default_prefixlen".into(), json!(default));
    changes.insert("max_prefixlen".into(), json!(max));
    let id2 = id.clone();
    let updated = write(&svc, move |tx| {
        let (id, changes) = (id2.clone(), changes.clone());
        Box::pin(async move {
            let Some(mut r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(not_found(&id)));
            };
            if changes.get("is_default") == Some(&json!(true))
                && has_default(tx, version, &id).await?
            {
                return Ok(Err(default_taken(version)));
            }
            for (k, v) in changes {
                r.doc.insert(k, v);
            }
            db::save(tx, &mut r).await?;
            Ok(Ok(r))
        })
    })
    .await?;
    Ok(Json(json!({"subnetpool": view(&updated)})))
}

/// `DELETE /v2.0/subnetpools/{id}`: 204; 409 `SubnetPoolInUse` while subnets use it.
pub async fn subnetpool_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.owns(&r.project_id) || !auth.can_write() {
        return Err(NeutronError::policy("delete_subnetpool"));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            if db::get_tx(tx, KIND, &id).await?.is_none() {
                return Ok(Err(not_found(&id)));
            }
            let in_use = db::list_tx(tx, super::subnets::KIND, None)
                .await?
                .iter()
                .any(|s| s.str("subnetpool_id") == Some(id.as_str()));
            if in_use {
                return Ok(Err(NeutronError::conflict(
                    "SubnetPoolInUse",
                    format!(
                        "Unable to complete operation on subnet pool {id}. Subnet pool has \
                         existing allocations."
                    ),
                )));
            }
            db::delete(tx, KIND, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn compacts_like_ipset() {
        let got = compact(&[c("10.0.0.0/25"), c("10.0.0.128/25"), c("10.0.1.0/24")]);
        assert_eq!(got, vec![c("10.0.0.0/23")]);
        let got = compact(&[c("10.0.0.0/24"), c("10.0.0.0/26"), c("10.0.2.0/24")]);
        assert_eq!(got, vec![c("10.0.0.0/24"), c("10.0.2.0/24")]);
        assert_eq!(range_cidrs(1, 6, 4).len(), 4); // .1/32 .2/31 .4/31 .6/32
        assert_eq!(compact(&[c("::/0")]), vec![c("::/0")]);
    }

    #[test]
    fn first_free_skips_used() {
        let p = [c("10.0.0.0/16")];
        assert_eq!(first_free(&p, &[], 24), Some(c("10.0.0.0/24")));
        assert_eq!(
            first_free(&p, &[c("10.0.0.0/24"), c("10.0.1.0/26")], 24),
            Some(c("10.0.2.0/24"))
        );
        assert_eq!(
            first_free(&p, &[c("10.0.0.0/25")], 26),
            Some(c("10.0.0.128/26"))
        );
        assert_eq!(first_free(&p, &[c("10.0.0.0/16")], 24), None);
        assert_eq!(first_free(&[c("10.0.0.0/24")], &[], 16), None);
        let v6 = [c("2001:db8::/48")];
        assert_eq!(
            first_free(&v6, &[c("2001:db8::/64")], 64),
            Some(c("2001:db8:0:1::/64"))
        );
    }
}
