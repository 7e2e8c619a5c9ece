//! Server sub-resources kept on the server record or proxied for it:
//!
//! - metadata: `GET/POST/PUT /servers/{id}/metadata`, `GET/PUT/DELETE
//!   /servers/{id}/metadata/{key}`. Changes are refused on locked servers (409 for non-admins),
//!   outside `active`/`paused`/`suspended`/`stopped` or while a task runs (409), and beyond the
//!   `metadata_items` quota (403), all checked inside the store write that saves them;
//! - addresses: `GET /servers/{id}/ips` and `GET /servers/{id}/ips/{network_label}`;
//! - the `os-security-groups` proxy (Nova ≤ 2.35, 404 above): `os-security-groups`,
//!   `os-security-group-rules` and `GET /servers/{id}/os-security-groups`, relayed to the
//!   network service in process and translated to Nova's bodies and errors.

use super::servers::{find, invalid_state, metadata, not_found};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::schema::{self, fail, repr};
use crate::server::{vm, Server};
use crate::server_db as sdb;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route(
            "/servers/{id}/metadata",
            get(meta_index).post(meta_create).put(meta_update_all),
        )
        .route(
            "/servers/{id}/metadata/{key}",
            get(meta_show).put(meta_update).delete(meta_delete),
        )
        .route("/servers/{id}/ips", get(ips_index))
        .route("/servers/{id}/ips/{network}", get(ips_show))
        .route(
            "/os-security-groups",
            get(secgroup_list)
                .post(secgroup_create)
                .delete(secgroup_delete_without_id),
        )
        .route(
            "/os-security-groups/{id}",
            get(secgroup_show)
                .put(secgroup_update)
                .delete(secgroup_delete),
        )
        .route("/os-security-group-rules", post(secrule_create))
        .route(
            "/os-security-group-rules/{id}",
            axum::routing::delete(secrule_delete),
        )
        .route("/servers/{id}/os-security-groups", get(server_secgroups))
}

// ------------------------------------------------------------------ metadata

/// The `vm_state`s Nova's `update_instance_metadata`/`delete_instance_metadata` accept.
const META_STATES: &[&str] = &[vm::ACTIVE, vm::PAUSED, vm::SUSPENDED, vm::STOPPED];

/// Nova's `check_instance_lock` then `check_instance_state` for a metadata change.
fn check_changeable(s: &Server, admin: bool, action: &str) -> NovaResult<()> {
    if s.locked && !admin {
        return Err(NovaError::conflict(format!("Instance {} is locked", s.id)));
    }
    if !META_STATES.contains(&s.vm_state.as_str()) {
        return Err(invalid_state(s, "vm_state", action));
    }
    if s.task_state.is_some() {
        return Err(invalid_state(s, "task_state", action));
    }
    Ok(())
}

/// How a write changes the metadata.
#[derive(Clone)]
enum MetaChange {
    /// Merge these items in.
    Merge(BTreeMap<String, String>),
    /// Replace everything with these.
    Replace(BTreeMap<String, String>),
    /// Remove one key (404 when absent).
    Remove(String),
}

/// Applies `change` to server `id` in one store write that re-reads the server, checks lock,
/// state and the `metadata_items` quota; returns the metadata as saved.
async fn change_metadata(
    svc: &ComputeService,
    auth: &Auth,
    id: &str,
    change: MetaChange,
) -> NovaResult<BTreeMap<String, String>> {
    let (id, admin, cfg) = (id.to_string(), auth.admin(), svc.config().clone());
    svc.store()
        .write_or_refuse(move |tx| {
            let (id, change, cfg) = (id.clone(), change.clone(), cfg.clone());
            Box::pin(async move {
                let Some(old) = sdb::get_tx(tx, &id).await? else {
                    return Ok(Err(not_found(&id)));
                };
                if old.deleted {
                    return Ok(Err(not_found(&id)));
                }
                let action = match &change {
                    MetaChange::Remove(k) => {
                        if !old.metadata.contains_key(k) {
                            return Ok(Err(NovaError::not_found("Metadata item was not found")));
                        }
                        "delete metadata"
                    }
                    _ => "update metadata",
                };
                if let Err(e) = check_changeable(&old, admin, action) {
                    return Ok(Err(e));
                }
                let mut n = old.clone();
                match &change {
                    MetaChange::Merge(m) => n.metadata.extend(m.clone()),
                    MetaChange::Replace(m) => n.metadata = m.clone(),
                    MetaChange::Remove(k) => {
                        n.metadata.remove(k);
                    }
                }
                if !n.metadata.is_empty() && !matches!(change, MetaChange::Remove(_)) {
                    let limit = super::quotas::limit_tx(
                        tx,
                        &cfg,
                        &old.project_id,
                        &old.user_id,
                        "metadata_items",
                    )
                    .await?;
                    if limit >= 0 && n.metadata.len() as i64 > limit {
                        return Ok(Err(NovaError::over_quota(format!(
                            "Maximum number of metadata items exceeds {limit}"
                        ))));
                    }
                }
                if n != old {
                    sdb::save(tx, &old, &mut n).await?;
                }
                Ok(Ok(n.metadata))
            })
        })
        .await?
}

/// `{"metadata": {...}}` as Nova's `create`/`update_all` schemas check it.
fn metadata_body(body: &Value) -> NovaResult<BTreeMap<String, String>> {
    let top = schema::object(body, None)?;
    schema::require(top, "metadata", None, body)?;
    schema::only(top, &["metadata"], None, body)?;
    metadata(&top["metadata"], "metadata")
}

/// `GET /servers/{id}/metadata`.
pub async fn meta_index(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    Ok(Json(json!({ "metadata": s.metadata })))
}

/// `POST /servers/{id}/metadata`: merges; 200 with all the metadata.
pub async fn meta_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = metadata_body(&body)?;
    find(&svc, &auth, &id).await?;
    let all = change_metadata(&svc, &auth, &id, MetaChange::Merge(m)).await?;
    Ok(Json(json!({ "metadata": all })))
}

/// `PUT /servers/{id}/metadata`: replaces everything.
pub async fn meta_update_all(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = metadata_body(&body)?;
    find(&svc, &auth, &id).await?;
    let all = change_metadata(&svc, &auth, &id, MetaChange::Replace(m)).await?;
    Ok(Json(json!({ "metadata": all })))
}

/// `GET /servers/{id}/metadata/{key}`.
pub async fn meta_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    match s.metadata.get(&key) {
        Some(v) => Ok(Json(json!({"meta": { key: v }}))),
        None => Err(NovaError::not_found("Metadata item was not found")),
    }
}

/// `PUT /servers/{id}/metadata/{key}`: `{"meta": {key: value}}` (exactly one item, the
/// URL's).
pub async fn meta_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let top = schema::object(&body, None)?;
    schema::require(top, "meta", None, &body)?;
    schema::only(top, &["meta"], None, &body)?;
    let meta = &top["meta"];
    if let Some(o) = meta.as_object() {
        if o.len() > 1 {
            return Err(fail(
                Some("meta"),
                meta,
                format!("{} has too many properties", repr(meta)),
            ));
        }
        if o.is_empty() {
            return Err(fail(
                Some("meta"),
                meta,
                format!("{} should be non-empty", repr(meta)),
            ));
        }
    }
    let m = metadata(meta, "meta")?;
    find(&svc, &auth, &id).await?;
    if !m.contains_key(&key) {
        return Err(NovaError::bad_request("Request body and URI mismatch"));
    }
    change_metadata(&svc, &auth, &id, MetaChange::Merge(m.clone())).await?;
    Ok(Json(json!({ "meta": m })))
}

/// `DELETE /servers/{id}/metadata/{key}`: 204.
pub async fn meta_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> NovaResult<StatusCode> {
    find(&svc, &auth, &id).await?;
    change_metadata(&svc, &auth, &id, MetaChange::Remove(key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ addresses

/// The server's addresses by network label, `version` and `addr` only.
pub fn networks(s: &Server) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for p in &s.ports {
        let list = out
            .entry(p.network_name.clone())
            .or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            for (ip, v) in &p.ips {
                a.push(json!({"version": v, "addr": ip}));
            }
        }
    }
    out
}

/// `GET /servers/{id}/ips`.
pub async fn ips_index(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    Ok(Json(json!({ "addresses": networks(&s) })))
}

/// `GET /servers/{id}/ips/{network_label}`.
pub async fn ips_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path((id, label)): Path<(String, String)>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    match networks(&s).remove(&label) {
        Some(list) => Ok(Json(json!({ label: list }))),
        None => Err(NovaError::not_found(
            "Instance is not a member of specified network",
        )),
    }
}

// ------------------------------------------------------------------ security group proxy

/// The last microversion serving the network proxies.
const MAX_PROXY: u32 = 35;

fn proxy_gate(mv: crate::version::Microversion) -> NovaResult<()> {
    if mv.at_least(MAX_PROXY + 1) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    Ok(())
}

fn uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// A call to the network service as the caller; 503-less deployments answer 404 like an
/// unknown resource would.
async fn neutron(
    svc: &ComputeService,
    auth: &Auth,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> NovaResult<strata_api::inproc::Answer> {
    svc.neutron(auth.0.clone(), method, path, body)
        .await
        .ok_or_else(|| NovaError::not_found("The resource could not be found."))
}

/// A Neutron failure as Nova relays it for security groups: 404 stays 404 (`Security group
/// … not found.` when Neutron gives no message), 400/409 become 400, 401/403 as given.
fn relay(a: &strata_api::inproc::Answer, id: &str) -> NovaError {
    let msg = a.message();
    match a.status.as_u16() {
        404 => {
            if msg.is_empty() || msg.starts_with("status ") {
                NovaError::not_found(format!("Security group {id} not found."))
            } else {
                NovaError::not_found(msg)
            }
        }
        400 | 409 => NovaError::bad_request(msg),
        403 => NovaError::forbidden(msg),
        _ => NovaError::internal(),
    }
}

/// Nova's view of a Neutron rule (ingress only), with its remote group's name and project.
fn nova_rule(r: &Value, groups: &BTreeMap<String, (String, String)>) -> Option<Value> {
    let proto = r["protocol"].clone();
    let (from, to) = match (
        r["port_range_min"].as_i64(),
        r["port_range_max"].as_i64(),
        proto.as_str(),
    ) {
        (None, None, Some(p)) if p.eq_ignore_ascii_case("tcp") || p.eq_ignore_ascii_case("udp") => {
            (json!(1), json!(65535))
        }
        (None, None, Some(_)) => (json!(-1), json!(-1)),
        (a, b, _) => (json!(a), json!(b)),
    };
    let mut rule = json!({
        "id": r["id"],
        "parent_group_id": r["security_group_id"],
        "ip_protocol": proto,
        "from_port": from,
        "to_port": to,
        "group": {},
        "ip_range": {},
    });
    match r["remote_group_id"].as_str() {
        Some(g) => {
            let (name, tenant) = groups.get(g)?;
            rule["group"] = json!({"name": name, "tenant_id": tenant});
        }
        None => {
            let cidr = r["remote_ip_prefix"]
                .as_str()
                .filter(|c| !c.is_empty())
                .unwrap_or("0.0.0.0/0");
            rule["ip_range"] = json!({ "cidr": cidr });
        }
    }
    Some(rule)
}

/// Nova's view of a Neutron security group.
fn nova_group(g: &Value, groups: &BTreeMap<String, (String, String)>) -> Value {
    let rules: Vec<Value> = g["security_group_rules"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["direction"] == "ingress")
                .filter_map(|r| nova_rule(r, groups))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": g["id"],
        "name": g["name"],
        "description": g["description"],
        "tenant_id": g["tenant_id"].as_str().or(g["project_id"].as_str()),
        "rules": rules,
    })
}

/// Names and projects of the groups `gs` and of the remote groups their rules name (looked
/// up as the caller; ones it cannot see are left out, dropping their rules as Nova does).
async fn group_names(
    svc: &ComputeService,
    auth: &Auth,
    gs: &[Value],
) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let entry = |g: &Value| {
        (
            g["id"].as_str().unwrap_or_default().to_string(),
            (
                g["name"].as_str().unwrap_or_default().to_string(),
                g["tenant_id"]
                    .as_str()
                    .or(g["project_id"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            ),
        )
    };
    for g in gs {
        let (k, v) = entry(g);
        out.insert(k, v);
    }
    let wanted: Vec<String> = gs
        .iter()
        .flat_map(|g| {
            g["security_group_rules"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|r| r["remote_group_id"].as_str().map(String::from))
        .collect();
    for w in wanted {
        if out.contains_key(&w) {
            continue;
        }
        if let Ok(a) = neutron(
            svc,
            auth,
            Method::GET,
            &format!("/security-groups/{w}"),
            None,
        )
        .await
        {
            if a.ok() {
                let (k, v) = entry(&a.body["security_group"]);
                out.insert(k, v);
            }
        }
    }
    out
}

async fn get_group(svc: &ComputeService, auth: &Auth, id: &str) -> NovaResult<Value> {
    let a = neutron(
        svc,
        auth,
        Method::GET,
        &format!("/security-groups/{id}"),
        None,
    )
    .await?;
    if !a.ok() {
        return Err(relay(&a, id));
    }
    Ok(a.body["security_group"].clone())
}

async fn view_group(svc: &ComputeService, auth: &Auth, g: &Value) -> Value {
    let names = group_names(svc, auth, std::slice::from_ref(g)).await;
    nova_group(g, &names)
}

fn sort_groups(list: &mut [Value]) {
    list.sort_by(|a, b| {
        let k = |v: &Value| {
            (
                v["tenant_id"].as_str().unwrap_or_default().to_string(),
                v["name"].as_str().unwrap_or_default().to_string(),
            )
        };
        k(a).cmp(&k(b))
    });
}

/// Nova's `limit`/`offset` (`common.limited`): non-negative integers; limit 0 or absent means
/// the maximum (1000).
pub fn limited<T: Clone>(items: &[T], pairs: &Pairs) -> NovaResult<Vec<T>> {
    let int = |k: &str| -> NovaResult<Option<usize>> {
        match pairs.get(k) {
            None => Ok(None),
            Some(s) => {
                let n: i64 = s.trim().parse().map_err(|_| {
                    let v = json!(s);
                    fail(
                        Some(k),
                        &v,
                        format!("{} does not match '^[0-9]*$'", repr(&v)),
                    )
                })?;
                if n < 0 {
                    let v = json!(s);
                    return Err(fail(
                        Some(k),
                        &v,
                        format!("{} does not match '^[0-9]*$'", repr(&v)),
                    ));
                }
                Ok(Some(n as usize))
            }
        }
    };
    let offset = int("offset")?.unwrap_or(0);
    let limit = match int("limit")? {
        None | Some(0) => 1000,
        Some(n) => n.min(1000),
    };
    Ok(items.iter().skip(offset).take(limit).cloned().collect())
}

/// `GET /os-security-groups`: the caller's project's groups (all with `all_tenants` for
/// admins), sorted by project and name.
pub async fn secgroup_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    proxy_gate(mv)?;
    let path = if auth.admin() && pairs.get("all_tenants").is_some() {
        "/security-groups".to_string()
    } else {
        format!("/security-groups?tenant_id={}", auth.project())
    };
    let a = neutron(&svc, &auth, Method::GET, &path, None).await?;
    if !a.ok() {
        return Err(relay(&a, ""));
    }
    let groups = a.body["security_groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let page = limited(&groups, &pairs)?;
    let names = group_names(&svc, &auth, &groups).await;
    let mut list: Vec<Value> = page.iter().map(|g| nova_group(g, &names)).collect();
    sort_groups(&mut list);
    Ok(Json(json!({ "security_groups": list })))
}

/// `{"security_group": {"name", "description"}}` (strings up to 255, both required).
fn group_body(body: &Value) -> NovaResult<(String, String)> {
    let top = schema::object(body, None)?;
    schema::require(top, "security_group", None, body)?;
    let whole = &top["security_group"];
    let m = schema::object(whole, Some("security_group"))?;
    schema::require(m, "name", Some("security_group"), whole)?;
    schema::require(m, "description", Some("security_group"), whole)?;
    let name = schema::string(&m["name"], "name", 0, 255)?.to_string();
    let description = schema::string(&m["description"], "description", 0, 255)?.to_string();
    Ok((name, description))
}

/// `DELETE /os-security-groups/` (no id): Nova's router finds nothing there, a 404.
async fn secgroup_delete_without_id(_auth: Auth) -> NovaResult<StatusCode> {
    Err(NovaError::not_found("The resource could not be found."))
}

/// `POST /os-security-groups`: 200.
pub async fn secgroup_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    proxy_gate(mv)?;
    let (name, description) = group_body(&body)?;
    let req = json!({"security_group": {"name": name, "description": description}});
    let a = neutron(&svc, &auth, Method::POST, "/security-groups", Some(&req)).await?;
    if !a.ok() {
        return Err(match a.status.as_u16() {
            409 => NovaError::forbidden(a.message()),
            _ => relay(&a, ""),
        });
    }
    let g = a.body["security_group"].clone();
    Ok(Json(
        json!({"security_group": view_group(&svc, &auth, &g).await}),
    ))
}

fn check_id(id: &str) -> NovaResult<()> {
    if !uuid_like(id) {
        return Err(NovaError::bad_request("Security group id should be uuid"));
    }
    Ok(())
}

/// `GET /os-security-groups/{id}`.
pub async fn secgroup_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    proxy_gate(mv)?;
    check_id(&id)?;
    let g = get_group(&svc, &auth, &id).await?;
    Ok(Json(
        json!({"security_group": view_group(&svc, &auth, &g).await}),
    ))
}

/// `PUT /os-security-groups/{id}`: name and description.
pub async fn secgroup_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    proxy_gate(mv)?;
    let (name, description) = group_body(&body)?;
    check_id(&id)?;
    get_group(&svc, &auth, &id).await?;
    let req = json!({"security_group": {"name": name, "description": description}});
    let a = neutron(
        &svc,
        &auth,
        Method::PUT,
        &format!("/security-groups/{id}"),
        Some(&req),
    )
    .await?;
    if !a.ok() {
        return Err(relay(&a, &id));
    }
    let g = a.body["security_group"].clone();
    Ok(Json(
        json!({"security_group": view_group(&svc, &auth, &g).await}),
    ))
}

/// `DELETE /os-security-groups/{id}`: 202; a group in use or the default group is 400.
pub async fn secgroup_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    proxy_gate(mv)?;
    check_id(&id)?;
    get_group(&svc, &auth, &id).await?;
    let a = neutron(
        &svc,
        &auth,
        Method::DELETE,
        &format!("/security-groups/{id}"),
        None,
    )
    .await?;
    if !a.ok() {
        return Err(relay(&a, &id));
    }
    Ok(StatusCode::ACCEPTED)
}

/// A port or ICMP type/code as Nova takes it: an integer or a string of one.
fn port_value(v: &Value) -> Result<Option<i64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or(()),
        Value::String(s) => s.trim().parse::<i64>().map(Some).map_err(|_| ()),
        _ => Err(()),
    }
}

/// Nova's `parse_cidr` + `netutils.is_valid_cidr`.
fn valid_cidr(s: &str) -> bool {
    let Some((addr, len)) = s.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => len <= 32,
        Ok(std::net::IpAddr::V6(_)) => len <= 128,
        Err(_) => false,
    }
}

/// `POST /os-security-group-rules`: an ingress rule from a CIDR or a group.
pub async fn secrule_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    proxy_gate(mv)?;
    let top = schema::object(&body, None)?;
    schema::require(top, "security_group_rule", None, &body)?;
    let whole = &top["security_group_rule"];
    let m = schema::object(whole, Some("security_group_rule"))?;
    let parent = schema::require(m, "parent_group_id", Some("security_group_rule"), whole)?;
    let parent_id = match parent.as_str() {
        Some(p) if uuid_like(p) => p.to_string(),
        _ => {
            return Err(fail(
                Some("parent_group_id"),
                parent,
                format!("{} is not a 'uuid'", repr(parent)),
            ))
        }
    };
    let group_id = match m.get("group_id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str() {
            Some(g) if uuid_like(g) => Some(g.to_string()),
            _ => {
                return Err(fail(
                    Some("group_id"),
                    v,
                    format!("{} is not a 'uuid'", repr(v)),
                ))
            }
        },
    };
    let parent = get_group(&svc, &auth, &parent_id).await?;
    let source = match &group_id {
        Some(g) => Some(get_group(&svc, &auth, g).await?),
        None => None,
    };
    let proto = match m.get("ip_protocol") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let mut from = port_value(m.get("from_port").unwrap_or(&Value::Null));
    let mut to = port_value(m.get("to_port").unwrap_or(&Value::Null));
    let cidr = match m.get("cidr") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let upper = proto.as_deref().unwrap_or("").to_ascii_uppercase();
    if group_id.is_some() && from == Ok(None) && to == Ok(None) {
        if upper == "ICMP" {
            (from, to) = (Ok(Some(-1)), Ok(Some(-1)));
        } else if upper == "TCP" || upper == "UDP" {
            (from, to) = (Ok(Some(1)), Ok(Some(65535)));
        }
    }
    let cidr = if group_id.is_none() {
        let c = cidr.unwrap_or_else(|| "0.0.0.0/0".into());
        if !valid_cidr(&c) {
            return Err(NovaError::bad_request(format!("Invalid cidr {c}.")));
        }
        Some(c)
    } else {
        None
    };
    let has_ports = !matches!(from, Ok(None)) && !matches!(to, Ok(None));
    let (from, to) = if proto.is_some() && has_ports {
        let (Ok(Some(f)), Ok(Some(t))) = (from, to) else {
            return Err(NovaError::invalid_input(if upper == "ICMP" {
                "Type and Code must be integers for ICMP protocol type"
            } else {
                "To and From ports must be integers"
            }));
        };
        if !["TCP", "UDP", "ICMP"].contains(&upper.as_str()) {
            return Err(NovaError::bad_request(format!(
                "Invalid IP protocol {}.",
                proto.as_deref().unwrap_or_default()
            )));
        }
        let range =
            |msg: &str| NovaError::bad_request(format!("Invalid port range {f}:{t}. {msg}"));
        if upper != "ICMP" && f > t {
            return Err(range("Former value cannot be greater than the later"));
        }
        if upper != "ICMP" && (f < 1 || t > 65535) {
            return Err(range(&format!(
                "Valid {upper} ports should be between 1-65535"
            )));
        }
        if upper == "ICMP" && (!(-1..=255).contains(&f) || !(-1..=255).contains(&t)) {
            return Err(range("For ICMP, the type:code must be valid"));
        }
        (Some(f), Some(t))
    } else if group_id.is_none() {
        return Err(NovaError::bad_request(
            "Not enough parameters to build a valid rule.",
        ));
    } else {
        (None, None)
    };
    if let Some(c) = &cidr {
        let (net, len) = c.split_once('/').unwrap_or((c, ""));
        if net != "0.0.0.0" && net != "::" && len == "0" {
            return Err(NovaError::bad_request(format!(
                "Bad prefix for network in cidr {c}"
            )));
        }
    }
    // Nova refuses a CIDR rule the group already has (its comparison never matches group
    // rules: theirs carry a CIDR, the new one none).
    let exists = group_id.is_none()
        && parent["security_group_rules"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter(|r| r["direction"] == "ingress" && r["remote_group_id"].is_null())
                    .filter_map(|r| nova_rule(r, &BTreeMap::new()))
                    .any(|v| {
                        v["ip_protocol"].as_str() == proto.as_deref()
                            && v["from_port"] == json!(from)
                            && v["to_port"] == json!(to)
                            && v["ip_range"]["cidr"].as_str() == cidr.as_deref()
                    })
            })
            .unwrap_or(false);
    if exists {
        return Err(NovaError::bad_request(format!(
            "This rule already exists in group {parent_id}"
        )));
    }
    let proto_l = proto.as_ref().map(|p| p.to_ascii_lowercase());
    let ethertype = match &cidr {
        Some(c) if c.contains(':') => "IPv6",
        _ => "IPv4",
    };
    let mut rule = json!({
        "direction": "ingress",
        "ethertype": ethertype,
        "security_group_id": parent_id,
        "protocol": proto_l,
        "remote_ip_prefix": cidr,
        "remote_group_id": group_id,
    });
    if let Some(f) = from.filter(|f| *f != -1) {
        rule["port_range_min"] = json!(f);
    }
    if let Some(t) = to.filter(|t| *t != -1) {
        rule["port_range_max"] = json!(t);
    }
    let a = neutron(
        &svc,
        &auth,
        Method::POST,
        "/security-group-rules",
        Some(&json!({ "security_group_rule": rule })),
    )
    .await?;
    if !a.ok() {
        return Err(match a.status.as_u16() {
            409 => NovaError::forbidden(a.message()),
            _ => relay(&a, &parent_id),
        });
    }
    let mut names = BTreeMap::new();
    if let Some(s) = &source {
        names.insert(
            s["id"].as_str().unwrap_or_default().to_string(),
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["tenant_id"]
                    .as_str()
                    .or(s["project_id"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            ),
        );
    }
    let created = nova_rule(&a.body["security_group_rule"], &names).unwrap_or(Value::Null);
    Ok(Json(json!({ "security_group_rule": created })))
}

/// `DELETE /os-security-group-rules/{id}`: 202.
pub async fn secrule_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    proxy_gate(mv)?;
    check_id(&id)?;
    let a = neutron(
        &svc,
        &auth,
        Method::GET,
        &format!("/security-group-rules/{id}"),
        None,
    )
    .await?;
    if !a.ok() {
        return Err(relay(&a, &id));
    }
    let a = neutron(
        &svc,
        &auth,
        Method::DELETE,
        &format!("/security-group-rules/{id}"),
        None,
    )
    .await?;
    if !a.ok() {
        return Err(relay(&a, &id));
    }
    Ok(StatusCode::ACCEPTED)
}

/// `GET /servers/{id}/os-security-groups`: the groups of the server's ports (every
/// microversion).
pub async fn server_secgroups(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    let ctx = crate::controller::service_context(&s.project_id);
    let mut ids: Vec<String> = Vec::new();
    if let Some(a) = svc
        .neutron(
            ctx.clone(),
            Method::GET,
            &format!("/ports?device_id={}", s.id),
            None,
        )
        .await
    {
        for p in a.body["ports"].as_array().cloned().unwrap_or_default() {
            for g in p["security_groups"].as_array().cloned().unwrap_or_default() {
                if let Some(g) = g.as_str() {
                    if !ids.iter().any(|x| x == g) {
                        ids.push(g.to_string());
                    }
                }
            }
        }
    }
    let mut groups = Vec::new();
    for g in &ids {
        if let Some(a) = svc
            .neutron(
                ctx.clone(),
                Method::GET,
                &format!("/security-groups/{g}"),
                None,
            )
            .await
        {
            if a.ok() {
                groups.push(a.body["security_group"].clone());
            }
        }
    }
    let names = group_names(&svc, &auth, &groups).await;
    let mut list: Vec<Value> = groups.iter().map(|g| nova_group(g, &names)).collect();
    sort_groups(&mut list);
    Ok(Json(json!({ "security_groups": list })))
}
