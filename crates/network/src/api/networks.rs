//! `/v2.0/networks`: create (also in bulk), list, show, update, delete; provider attributes
//! for admins with segment ids allocated from the configured ranges; `shared` and
//! `router:external` networks visible to every project.

use super::list;
use super::write;
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body, Pairs};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use strata_core::config::NetworkConfig;

pub const KIND: &str = "network";

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/networks", get(network_list).post(network_create))
        .route(
            "/networks/{id}",
            get(network_show).put(network_update).delete(network_delete),
        )
}

/// Every attribute of the network view (what may be filtered and sorted on).
pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "tenant_id",
    "project_id",
    "admin_state_up",
    "status",
    "subnets",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "availability_zone_hints",
    "availability_zones",
    "ipv4_address_scope",
    "ipv6_address_scope",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "l2_adjacency",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
];

/// Neutron's timestamp spelling: `2026-11-21T15:04:05Z`.
pub fn ts(us: i64) -> String {
    strata_core::time::iso_seconds_z(us)
}

/// The attributes every resource view has: id, project, standard attributes.
pub fn standard(r: &Resource) -> Map<String, Value> {
    standard_owned(r.clone())
}

/// [`standard`], consuming the resource (no copy of its document).
pub fn standard_owned(r: Resource) -> Map<String, Value> {
    let mut m = r.doc;
    m.insert("id".into(), json!(r.id));
    m.insert("tenant_id".into(), json!(r.project_id));
    m.insert("project_id".into(), Value::String(r.project_id));
    m.insert("created_at".into(), json!(ts(r.created_at)));
    m.insert("updated_at".into(), json!(ts(r.updated_at)));
    m.insert("revision_number".into(), json!(r.revision_number));
    m.entry("tags").or_insert_with(|| json!([]));
    m.entry("description").or_insert_with(|| json!(""));
    m
}

/// The network view; provider attributes only for admins.
pub fn view(r: &Resource, subnets: &[String], admin: bool) -> Value {
    let mut m = standard(r);
    m.insert("subnets".into(), json!(subnets));
    m.insert("status".into(), json!("ACTIVE"));
    m.insert("availability_zones".into(), json!(["nova"]));
    if !admin {
        for k in [
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ] {
            m.remove(k);
        }
    }
    Value::Object(m)
}

/// Whether the caller may see the network: its own, shared or external ones, or any for admins.
pub fn visible(auth: &Auth, r: &Resource) -> bool {
    auth.owns(&r.project_id) || r.flag("shared") || r.flag("router:external")
}

/// The network `id` if the caller may see it; Neutron's 404 otherwise.
pub async fn find(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<Resource> {
    match db::get(svc.store(), KIND, id).await? {
        Some(r) if visible(auth, &r) => Ok(r),
        _ => Err(NeutronError::not_found(KIND, id)),
    }
}

/// Subnet ids of every network, for the views.
async fn subnets_by_network(svc: &NetworkService) -> NeutronResult<Vec<(String, String)>> {
    Ok(db::list(svc.store(), "subnet", None)
        .await?
        .into_iter()
        .filter_map(|s| s.str("network_id").map(|n| (n.to_string(), s.id.clone())))
        .collect())
}

fn subnets_of(all: &[(String, String)], network: &str) -> Vec<String> {
    let mut v: Vec<String> = all
        .iter()
        .filter(|(n, _)| n == network)
        .map(|(_, s)| s.clone())
        .collect();
    v.sort();
    v
}

// ------------------------------------------------------------------ validation helpers

/// A string attribute of at most `max` characters (null allowed when `nullable`).
pub fn string(m: &Map<String, Value>, key: &str, max: usize) -> NeutronResult<Option<String>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{s}' exceeds maximum length of {max}."
        ))),
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{other}' is not a valid string."
        ))),
    }
}

/// A boolean attribute as Neutron converts it (JSON booleans, "true"/"false", 0/1).
pub fn boolean(m: &Map<String, Value>, key: &str) -> NeutronResult<Option<bool>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{other}' cannot be converted to boolean."
        ))),
    }
}

/// 400 for attributes outside `allowed`, as Neutron's attribute validation answers.
pub fn only(m: &Map<String, Value>, allowed: &[&str]) -> NeutronResult<()> {
    let unknown: Vec<&str> = m
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(NeutronError::bad_request(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.join(", ")
        )))
    }
}

/// The owning project of a new resource: the caller's, or another one for admins.
pub fn owner(auth: &Auth, m: &Map<String, Value>) -> NeutronResult<String> {
    let asked = match (m.get("project_id"), m.get("tenant_id")) {
        (Some(Value::String(p)), Some(Value::String(t))) if p != t => {
            return Err(NeutronError::bad_request(
                "'project_id' and 'tenant_id' do not match",
            ))
        }
        (Some(Value::String(p)), _) | (None, Some(Value::String(p))) => Some(p.clone()),
        (None, None) => None,
        _ => {
            return Err(NeutronError::bad_request(
                "Invalid input for project_id. Reason: not a valid string.",
            ))
        }
    };
    match asked {
        Some(p) if p != auth.project() && !auth.admin() => Err(NeutronError::bad_request(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in \
             request requires admin privileges",
        )),
        Some(p) => Ok(p),
        None if auth.project().is_empty() => Err(NeutronError::bad_request(
            "Running without keystone AuthN requires that tenant_id is specified",
        )),
        None => Ok(auth.project().to_string()),
    }
}

// ------------------------------------------------------------------ segments

fn overhead(network_type: &str) -> u32 {
    match network_type {
        "vxlan" => 50,
        "geneve" => 58,
        _ => 0,
    }
}

/// `first:last` pairs of a range list (`physnet:first:last` entries keep their physnet).
fn ranges(cfg_ranges: &[String], physnet: Option<&str>) -> Vec<(i64, i64)> {
    cfg_ranges
        .iter()
        .filter_map(|r| {
            let parts: Vec<&str> = r.split(':').collect();
            match (parts.as_slice(), physnet) {
                ([p, a, b], Some(want)) if *p == want => Some((a.parse().ok()?, b.parse().ok()?)),
                ([a, b], None) => Some((a.parse().ok()?, b.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

/// Provider attributes asked for: `(network_type, physical_network, segmentation_id)`.
pub(crate) type ProviderAsk = (String, Option<String>, Option<i64>);

/// The provider attributes asked for (admins), validated against the configuration.
fn provider(cfg: &NetworkConfig, m: &Map<String, Value>) -> NeutronResult<Option<ProviderAsk>> {
    let nt = string(m, "provider:network_type", 255)?;
    let pn = match m.get("provider:physical_network") {
        Some(Value::Null) | None => None,
        _ => string(m, "provider:physical_network", 64)?,
    };
    let sid = match m.get("provider:segmentation_id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => Some(
            s.parse::<i64>()
                .map_err(|_| NeutronError::invalid_input(format!("'{s}' is not an integer")))?,
        ),
        Some(other) => {
            return Err(NeutronError::invalid_input(format!(
                "'{other}' is not an integer"
            )))
        }
    };
    let Some(nt) = nt else {
        if pn.is_some() || sid.is_some() {
            return Err(NeutronError::invalid_input(
                "provider:network_type required",
            ));
        }
        return Ok(None);
    };
    match nt.as_str() {
        "flat" => {
            let Some(p) = &pn else {
                return Err(NeutronError::invalid_input(
                    "physical_network required for flat provider network",
                ));
            };
            if sid.is_some() {
                return Err(NeutronError::invalid_input(
                    "segmentation_id specified for flat provider network",
                ));
            }
            if !cfg.flat_networks.iter().any(|f| f == p || f == "*") {
                return Err(NeutronError::invalid_input(format!(
                    "physical_network '{p}' unknown for flat provider network"
                )));
            }
        }
        "vlan" => {
            let Some(p) = &pn else {
                return Err(NeutronError::invalid_input(
                    "physical_network required for VLAN provider network",
                ));
            };
            if !cfg
                .vlan_ranges
                .iter()
                .any(|r| r.split(':').next() == Some(p.as_str()))
            {
                return Err(NeutronError::invalid_input(format!(
                    "physical_network '{p}' unknown for VLAN provider network"
                )));
            }
            if let Some(s) = sid {
                if !(1..=4094).contains(&s) {
                    return Err(NeutronError::invalid_input(format!(
                        "segmentation_id out of range (1 through 4094): {s}"
                    )));
                }
            }
        }
        "vxlan" | "geneve" => {
            if pn.is_some() {
                return Err(NeutronError::invalid_input(format!(
                    "provider:physical_network specified for {nt} network"
                )));
            }
            if let Some(s) = sid {
                if !(1..=16_777_215).contains(&s) {
                    return Err(NeutronError::invalid_input(format!(
                        "segmentation_id out of range: {s}"
                    )));
                }
            }
        }
        other => {
            return Err(NeutronError::invalid_input(format!(
                "Unknown provider:network_type {other}"
            )))
        }
    }
    Ok(Some((nt, pn, sid)))
}

/// Claims the segment of a new network inside the write; picks a free id from the ranges
/// when none was asked for. The refusal is Neutron's 409.
async fn claim(
    tx: &mut strata_store::Tx,
    cfg: &NetworkConfig,
    network_id: &str,
    nt: &str,
    pn: Option<&str>,
    sid: Option<i64>,
) -> strata_core::Result<NeutronResult<Option<i64>>> {
    let physnet = pn.unwrap_or("");
    if nt == "flat" {
        if !db::claim_segment(tx, nt, physnet, 0, network_id).await? {
            return Ok(Err(NeutronError::conflict(
                "FlatNetworkInUse",
                format!("Unable to create the flat network. Physical network {physnet} is in use."),
            )));
        }
        return Ok(Ok(None));
    }
    if let Some(s) = sid {
        if !db::claim_segment(tx, nt, physnet, s, network_id).await? {
            let (kind, msg) = if nt == "vlan" {
                (
                    "VlanIdInUse",
                    format!(
                        "Unable to create the network. The VLAN {s} on physical network \
                         {physnet} is in use."
                    ),
                )
            } else {
                (
                    "TunnelIdInUse",
                    format!("Unable to create the network. The tunnel ID {s} is in use."),
                )
            };
            return Ok(Err(NeutronError::conflict(kind, msg)));
        }
        return Ok(Ok(Some(s)));
    }
    let rs = if nt == "vlan" {
        ranges(&cfg.vlan_ranges, Some(physnet))
    } else {
        ranges(&cfg.tunnel_ranges, None)
    };
    let taken: std::collections::HashSet<i64> = db::segments_taken(tx, nt, physnet)
        .await?
        .into_iter()
        .collect();
    for (a, b) in rs {
        if let Some(s) = (a..=b).find(|s| !taken.contains(s)) {
            db::claim_segment(tx, nt, physnet, s, network_id).await?;
            return Ok(Ok(Some(s)));
        }
    }
    Ok(Err(NeutronError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "NoNetworkAvailable",
        "Unable to create the network. No tenant network is available for allocation.",
    )))
}

/// Inserts a built network inside the write, claiming its segment (quota not checked).
pub(crate) async fn insert_built(
    tx: &mut strata_store::Tx,
    cfg: &NetworkConfig,
    built: (Resource, Option<ProviderAsk>),
) -> strata_core::Result<NeutronResult<Resource>> {
    let (mut r, asked) = built;
    let nt = r
        .str("provider:network_type")
        .unwrap_or("geneve")
        .to_string();
    let (pn, sid) = asked.map(|a| (a.1, a.2)).unwrap_or((None, None));
    let sid = match claim(tx, cfg, &r.id, &nt, pn.as_deref(), sid).await? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    r.doc.insert("provider:segmentation_id".into(), json!(sid));
    db::insert(tx, &r).await?;
    Ok(Ok(r))
}

// ------------------------------------------------------------------ handlers

const CREATE_ATTRS: &[&str] = &[
    "name",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "description",
    "tenant_id",
    "project_id",
    "availability_zone_hints",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "tags",
];

/// Validates a create body into a new network (segment still to claim).
pub(crate) fn build(
    svc: &NetworkService,
    auth: &Auth,
    m: &Map<String, Value>,
) -> NeutronResult<(Resource, Option<ProviderAsk>)> {
    only(m, CREATE_ATTRS)?;
    let project = owner(auth, m)?;
    let shared = boolean(m, "shared")?.unwrap_or(false);
    let external = boolean(m, "router:external")?.unwrap_or(false);
    if shared && !auth.admin() {
        return Err(NeutronError::policy("create_network:shared"));
    }
    if external && !auth.admin() {
        return Err(NeutronError::policy("create_network:router:external"));
    }
    let asked = provider(svc.config(), m)?;
    if asked.is_some() && !auth.admin() {
        return Err(NeutronError::policy("create_network:provider:network_type"));
    }
    let nt = asked
        .as_ref()
        .map(|a| a.0.clone())
        .unwrap_or_else(|| svc.config().tenant_network_type.clone());
    let max_mtu = svc.config().physnet_mtu.saturating_sub(overhead(&nt));
    let mtu = match m.get("mtu") {
        None | Some(Value::Null) => max_mtu as i64,
        Some(v) => {
            let n = v.as_i64().ok_or_else(|| {
                NeutronError::bad_request(format!(
                    "Invalid input for mtu. Reason: '{v}' is not an integer."
                ))
            })?;
            if n < 68 {
                return Err(NeutronError::bad_request(format!(
                    "Invalid input for mtu. Reason: '{n}' is too small - must be at least '68'."
                )));
            }
            if n > max_mtu as i64 {
                return Err(NeutronError::invalid_input(format!(
                    "Requested MTU is too big, maximum is {max_mtu}"
                )));
            }
            n
        }
    };
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
        "admin_state_up".into(),
        json!(boolean(m, "admin_state_up")?.unwrap_or(true)),
    );
    doc.insert("shared".into(), json!(shared));
    doc.insert("router:external".into(), json!(external));
    doc.insert("mtu".into(), json!(mtu));
    doc.insert(
        "port_security_enabled".into(),
        json!(boolean(m, "port_security_enabled")?.unwrap_or(true)),
    );
    doc.insert(
        "description".into(),
        json!(string(m, "description", 255)?.unwrap_or_default()),
    );
    doc.insert(
        "availability_zone_hints".into(),
        m.get("availability_zone_hints")
            .cloned()
            .unwrap_or(json!([])),
    );
    doc.insert("ipv4_address_scope".into(), Value::Null);
    doc.insert("ipv6_address_scope".into(), Value::Null);
    doc.insert("l2_adjacency".into(), json!(true));
    doc.insert("tags".into(), tags);
    doc.insert("provider:network_type".into(), json!(nt));
    doc.insert(
        "provider:physical_network".into(),
        json!(asked.as_ref().and_then(|a| a.1.clone())),
    );
    doc.insert("provider:segmentation_id".into(), Value::Null);
    let r = Resource::new(KIND, strata_core::ids::uuid(), project, doc);
    Ok((r, asked))
}

/// `POST /v2.0/networks`: 201; a bulk body creates all or none.
pub async fn network_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_network"));
    }
    let (items, bulk) = body.entities("network", "networks")?;
    let mut built = Vec::with_capacity(items.len());
    for m in &items {
        built.push(build(&svc, &auth, m)?);
    }
    let cfg = svc.config().clone();
    let created = write(&svc, move |tx| {
        let (built, cfg) = (built.clone(), cfg.clone());
        Box::pin(async move {
            let mut out = Vec::with_capacity(built.len());
            let mut per_project: Vec<(String, i64)> = Vec::new();
            for (r, _) in &built {
                match per_project.iter_mut().find(|(p, _)| *p == r.project_id) {
                    Some((_, n)) => *n += 1,
                    None => per_project.push((r.project_id.clone(), 1)),
                }
            }
            for (p, n) in &per_project {
                if let Err(e) = crate::quota::check(tx, &cfg, p, "network", *n).await? {
                    return Ok(Err(e));
                }
            }
            for b in built {
                match insert_built(tx, &cfg, b).await? {
                    Ok(r) => out.push(r),
                    Err(e) => return Ok(Err(e)),
                }
            }
            Ok(Ok(out))
        })
    })
    .await?;
    let views: Vec<Value> = created.iter().map(|r| view(r, &[], auth.admin())).collect();
    let body = if bulk {
        json!({ "networks": views })
    } else {
        json!({ "network": views[0] })
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v2.0/networks`.
pub async fn network_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let subnets = subnets_by_network(&svc).await?;
    let all = db::list(svc.store(), KIND, None).await?;
    let views: Vec<Value> = all
        .iter()
        .filter(|r| visible(&auth, r))
        .map(|r| view(r, &subnets_of(&subnets, &r.id), auth.admin()))
        .collect();
    let none = |_: &Value, _: &str, _: &[&str]| None;
    let views = list::filter(views, &q, ATTRS, &none)?;
    Ok(Json(list::respond(
        "networks",
        &super::collection_url(&svc, "networks"),
        views,
        &q,
        ATTRS,
    )?))
}

/// `GET /v2.0/networks/{id}`.
pub async fn network_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    let subnets = subnets_by_network(&svc).await?;
    let v = view(&r, &subnets_of(&subnets, &r.id), auth.admin());
    Ok(Json(
        json!({"network": list::project(v, &list::fields(&q))}),
    ))
}

const UPDATE_ATTRS: &[&str] = &[
    "name",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "description",
];

/// `PUT /v2.0/networks/{id}`.
pub async fn network_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.owns(&r.project_id) || !auth.can_write() {
        return Err(NeutronError::policy("update_network"));
    }
    let m = body.entity("network")?;
    for k in m.keys() {
        if k.starts_with("provider:") || k == "tenant_id" || k == "project_id" || k == "id" {
            return Err(NeutronError::bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
    }
    only(&m, UPDATE_ATTRS)?;
    let mut changes = Map::new();
    if let Some(n) = string(&m, "name", 255)? {
        changes.insert("name".into(), json!(n));
    }
    if let Some(d) = string(&m, "description", 255)? {
        changes.insert("description".into(), json!(d));
    }
    for k in [
        "admin_state_up",
        "port_security_enabled",
        "shared",
        "router:external",
    ] {
        if let Some(b) = boolean(&m, k)? {
            if (k == "shared" || k == "router:external") && !auth.admin() {
                return Err(NeutronError::policy(&format!("update_network:{k}")));
            }
            changes.insert(k.into(), json!(b));
        }
    }
    if let Some(v) = m.get("mtu") {
        let nt = r.str("provider:network_type").unwrap_or("geneve");
        let max = svc.config().physnet_mtu.saturating_sub(overhead(nt)) as i64;
        match v.as_i64() {
            Some(n) if (68..=max).contains(&n) => {
                changes.insert("mtu".into(), json!(n));
            }
            _ => {
                return Err(NeutronError::invalid_input(format!(
                    "Requested MTU {v} is out of range (68 to {max})"
                )))
            }
        }
    }
    let id2 = id.clone();
    let updated = write(&svc, move |tx| {
        let (id, changes) = (id2.clone(), changes.clone());
        Box::pin(async move {
            let Some(mut r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            for (k, v) in changes {
                r.doc.insert(k, v);
            }
            db::save(tx, &mut r).await?;
            Ok(Ok(r))
        })
    })
    .await?;
    let subnets = subnets_by_network(&svc).await?;
    Ok(Json(
        json!({"network": view(&updated, &subnets_of(&subnets, &id), auth.admin())}),
    ))
}

/// `DELETE /v2.0/networks/{id}`: 204; 409 `NetworkInUse` while ports other than the
/// network's own (DHCP) are on it. Its subnets go with it.
pub async fn network_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.owns(&r.project_id) || !auth.can_write() {
        return Err(NeutronError::policy("delete_network"));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(net) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            // An external network takes its floating IPs with it, as Neutron's L3 plugin
            // does before the in-use check; routers' gateways on it still block.
            if net.flag("router:external") {
                for f in db::list_tx(tx, "floatingip", None).await? {
                    if f.str("floating_network_id") == Some(id.as_str()) {
                        if let Some(p) = f.str("_port") {
                            super::ports::remove_service_port(tx, p).await?;
                        }
                        db::delete(tx, "floatingip", &f.id).await?;
                    }
                }
            }
            let ports = db::list_tx(tx, "port", None).await?;
            let on_it: Vec<&Resource> = ports
                .iter()
                .filter(|p| p.str("network_id") == Some(id.as_str()))
                .collect();
            if on_it.iter().any(|p| {
                !p.str("device_owner")
                    .unwrap_or("")
                    .starts_with("network:dhcp")
            }) {
                return Ok(Err(NeutronError::conflict(
                    "NetworkInUse",
                    format!(
                        "Unable to complete operation on network {id}. There are one or more \
                         ports still in use on the network."
                    ),
                )));
            }
            for p in on_it {
                crate::db::release_port(tx, &p.id).await?;
                db::delete(tx, "port", &p.id).await?;
            }
            for s in db::list_tx(tx, "subnet", None).await? {
                if s.str("network_id") == Some(id.as_str()) {
                    db::delete(tx, "subnet", &s.id).await?;
                }
            }
            db::release_segments(tx, &id).await?;
            db::delete(tx, KIND, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
