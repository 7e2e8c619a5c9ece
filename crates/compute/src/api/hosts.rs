//! Compute hosts as Nova shows them to admins: `os-services` (list, update, delete) and
//! `os-hypervisors` (list, detail, show, statistics, the servers of a host). Ids are the UUIDs
//! Nova uses from 2.53 at every microversion; usage counts are 0.
//!
//! Updating a service is `PUT /os-services/{uuid}` from 2.53 and the `enable`, `disable`,
//! `disable-log-reason` and `force-down` (2.11) actions naming host and binary before; a
//! disabled service's host is skipped by the scheduler. Deleting a service whose host still
//! has servers is refused (409) as Nova refuses it; otherwise its node and resource provider
//! go with it.

use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::hosts::{self, Node, Service};
use crate::schema::{self, fail, repr};
use crate::server_db as sdb;
use crate::version::Microversion;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use strata_store::{from_sqlx, sqlx, Op};

/// The host routes.
pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-services", get(service_list))
        .route(
            "/os-services/{id}",
            axum::routing::put(service_update).delete(service_delete),
        )
        .route("/os-hypervisors", get(hypervisor_list))
        .route("/os-hypervisors/detail", get(hypervisor_detail))
        .route("/os-hypervisors/statistics", get(hypervisor_statistics))
        .route("/os-hypervisors/{id}", get(hypervisor_show))
        .route("/os-hypervisors/{id}/servers", get(hypervisor_servers))
        .route("/os-hypervisors/{id}/search", get(hypervisor_search))
        .route("/os-hypervisors/{id}/uptime", get(hypervisor_uptime))
}

fn state(s: &Service, now: i64, down: i64) -> &'static str {
    if s.is_up_within(now, down) {
        "up"
    } else {
        "down"
    }
}

fn status(s: &Service) -> &'static str {
    if s.disabled {
        "disabled"
    } else {
        "enabled"
    }
}

/// `GET /os-services` (admin).
pub async fn service_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-services:list")?;
    pairs.only(mv, &["host", "binary"])?;
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    let list: Vec<Value> = hosts::services(svc.store())
        .await?
        .iter()
        .filter(|s| pairs.get("host").is_none_or(|h| s.host == h))
        .filter(|s| pairs.get("binary").is_none_or(|b| s.binary == b))
        .map(|s| service_view(s, now, down, mv))
        .collect();
    Ok(Json(json!({ "services": list })))
}

/// The integer id a service has below 2.53 (Nova's database id then; Tempest's 2.1 schema
/// takes an integer or a cell-qualified `name@N`): derived from the service's UUID, so it is
/// stable and `DELETE /os-services/{id}` finds the service by it.
pub fn legacy_service_id(uuid: &str) -> i64 {
    let hex: String = uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    i64::from_str_radix(&hex, 16).unwrap_or(0) & 0x7fff_ffff
}

/// A service's id as shown at `mv`.
fn shown_service_id(id: &str, mv: Microversion) -> Value {
    if mv.at_least(53) {
        json!(id)
    } else {
        json!(legacy_service_id(id))
    }
}

fn service_view(s: &Service, now: i64, down: i64, mv: Microversion) -> Value {
    let forced_down = mv.at_least(11);
    let mut v = json!({
        "id": shown_service_id(&s.id, mv), "binary": s.binary, "host": s.host, "zone": s.zone,
        "status": status(s), "state": state(s, now, down),
        "disabled_reason": s.disabled_reason,
        "updated_at": super::views::nova_time(s.last_seen_up.unwrap_or(s.updated_at)),
    });
    if forced_down {
        v["forced_down"] = json!(s.forced_down);
    }
    v
}

/// Writes a service's `disabled`, `disabled_reason` and `forced_down`.
async fn save_service(svc: &ComputeService, s: &Service) -> NovaResult<()> {
    let s = s.clone();
    svc.store()
        .write(move |tx| {
            let s = s.clone();
            Box::pin(async move {
                sqlx::query(
                    "UPDATE compute_service SET disabled = $2, disabled_reason = $3, \
                     forced_down = $4, updated_at = $5 WHERE id = $1",
                )
                .bind(&s.id)
                .bind(s.disabled as i64)
                .bind(s.disabled_reason.as_deref())
                .bind(s.forced_down as i64)
                .bind(strata_core::time::now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(hosts::SERVICE, &s.id, Op::Update).await
            })
        })
        .await?;
    svc.live().hosts_changed();
    Ok(())
}

fn uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// A string of 1..=255 characters in a service body.
fn short_string(m: &Map<String, Value>, key: &str) -> NovaResult<Option<String>> {
    m.get(key)
        .map(|v| schema::string(v, key, 1, 255).map(String::from))
        .transpose()
}

/// `PUT /os-services/{id}` (admin): from 2.53 `{status, disabled_reason, forced_down}` on
/// the service `id`; before, `id` is the action and the body names host and binary.
pub async fn service_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = schema::object(&body, None)?.clone();
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    if mv.at_least(53) {
        schema::only(
            &m,
            &["status", "disabled_reason", "forced_down"],
            None,
            &body,
        )?;
        let status = match m.get("status") {
            None => None,
            Some(Value::String(s)) if s == "enabled" || s == "disabled" => Some(s.clone()),
            Some(v) => {
                return Err(fail(
                    Some("status"),
                    v,
                    format!("{} is not one of ['enabled', 'disabled']", repr(v)),
                ))
            }
        };
        let reason = short_string(&m, "disabled_reason")?;
        let forced = m
            .get("forced_down")
            .map(|v| schema::boolean(v, "forced_down"))
            .transpose()?;
        if !uuid_like(&id) {
            return Err(NovaError::bad_request(format!("Invalid uuid {id}")));
        }
        auth.require_admin("os_compute_api:os-services:update")?;
        let Some(mut s) = hosts::services(svc.store())
            .await?
            .into_iter()
            .find(|s| s.id == id)
        else {
            return Err(NovaError::not_found(format!(
                "Service {id} could not be found."
            )));
        };
        if s.binary != "nova-compute" {
            return Err(NovaError::bad_request(format!(
                "Updating a {} service is not supported. Only nova-compute services can be \
                 updated.",
                s.binary
            )));
        }
        match status.as_deref() {
            Some("enabled") => {
                if reason.is_some() {
                    return Err(NovaError::bad_request(
                        "Specifying 'disabled_reason' with status 'enabled' is invalid.",
                    ));
                }
                s.disabled = false;
                s.disabled_reason = None;
            }
            Some(_) => {
                s.disabled = true;
                s.disabled_reason = reason;
            }
            None => {}
        }
        if let Some(f) = forced {
            s.forced_down = f;
        }
        if status.is_none() && forced.is_none() {
            return Err(NovaError::bad_request(
                "No updates were requested. Fields 'status' or 'forced_down' should be \
                 specified.",
            ));
        }
        save_service(&svc, &s).await?;
        return Ok(Json(json!({"service": service_view(&s, now, down, mv)})));
    }
    let mut allowed = vec!["host", "binary", "disabled_reason"];
    if mv.at_least(11) {
        allowed.push("forced_down");
    }
    schema::only(&m, &allowed, None, &body)?;
    let host =
        schema::string(schema::require(&m, "host", None, &body)?, "host", 1, 255)?.to_string();
    let binary = schema::string(
        schema::require(&m, "binary", None, &body)?,
        "binary",
        1,
        255,
    )?
    .to_string();
    let reason = short_string(&m, "disabled_reason")?;
    let forced = m
        .get("forced_down")
        .map(|v| schema::boolean(v, "forced_down"))
        .transpose()?;
    auth.require_admin("os_compute_api:os-services:update")?;
    let known = ["enable", "disable", "disable-log-reason"];
    let force_down = mv.at_least(11) && id == "force-down";
    if !force_down && !known.contains(&id.as_str()) {
        return Err(NovaError::not_found("Unknown action"));
    }
    if id == "disable-log-reason" && reason.is_none() {
        return Err(NovaError::bad_request("Missing disabled reason field"));
    }
    if id == "force-down" && forced.is_none() {
        return Err(NovaError::bad_request("Missing forced_down field"));
    }
    if binary != "nova-compute" {
        return Err(NovaError::bad_request(format!(
            "Updating a {binary} service is not supported. Only nova-compute services can be \
             updated."
        )));
    }
    let Some(mut s) = hosts::services(svc.store())
        .await?
        .into_iter()
        .find(|s| s.host == host && s.binary == binary)
    else {
        return Err(NovaError::not_found(format!(
            "Could not find binary {binary} on host {host}."
        )));
    };
    let mut out = json!({"host": host, "binary": binary});
    match id.as_str() {
        "enable" => {
            s.disabled = false;
            s.disabled_reason = None;
            out["status"] = json!("enabled");
        }
        "disable" | "disable-log-reason" => {
            s.disabled = true;
            s.disabled_reason = if id == "disable" {
                None
            } else {
                reason.clone()
            };
            out["status"] = json!("disabled");
            if let (Some(r), true) = (&reason, id == "disable-log-reason") {
                out["disabled_reason"] = json!(r);
            }
        }
        _ => {
            s.forced_down = forced.unwrap_or(false);
            out["forced_down"] = json!(s.forced_down);
        }
    }
    save_service(&svc, &s).await?;
    Ok(Json(json!({ "service": out })))
}

/// `DELETE /os-services/{id}` (admin): 204; 409 while its host has servers.
pub async fn service_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    auth.require_admin("os_compute_api:os-services:delete")?;
    if mv.at_least(53) && !uuid_like(&id) {
        return Err(NovaError::bad_request(format!("Invalid uuid {id}")));
    }
    let Some(s) = hosts::services(svc.store())
        .await?
        .into_iter()
        .find(|s| s.id == id || (!mv.at_least(53) && legacy_service_id(&s.id).to_string() == id))
    else {
        return Err(NovaError::not_found(format!("Service {id} not found.")));
    };
    if s.binary == "nova-compute" && !sdb::live_on_host(svc.store(), &s.host).await?.is_empty() {
        return Err(NovaError::conflict(
            "Unable to delete compute service that is hosting instances. Migrate or delete the \
             instances first.",
        ));
    }
    let nodes: Vec<Node> = hosts::nodes(svc.store())
        .await?
        .into_iter()
        .filter(|n| n.service_id == s.id)
        .collect();
    let (sid, node_ids, host) = (
        s.id.clone(),
        nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        s.host.clone(),
    );
    let is_compute = s.binary == "nova-compute";
    svc.store()
        .write(move |tx| {
            let (sid, node_ids, host) = (sid.clone(), node_ids.clone(), host.clone());
            Box::pin(async move {
                // As Nova: a deleted compute service's host leaves its aggregates.
                if is_compute {
                    crate::aggregates::forget_host_tx(tx, &host).await?;
                }
                for n in &node_ids {
                    sqlx::query("DELETE FROM compute_node WHERE id = $1")
                        .bind(n)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                    tx.record(hosts::NODE, n, Op::Delete).await?;
                }
                sqlx::query("DELETE FROM compute_service WHERE id = $1")
                    .bind(&sid)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                tx.record(hosts::SERVICE, &sid, Op::Delete).await
            })
        })
        .await?;
    svc.live().hosts_changed();
    svc.live().forget(&s.host);
    if let Some(p) = svc.placement() {
        for n in &nodes {
            if let Err(e) = p.provider_delete(n.id.clone()).await {
                tracing::warn!(provider = %n.id, error = %e.detail, "deleting the host's provider");
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

fn brief(n: &Node, s: Option<&Service>, now: i64, down: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(n.id));
    m.insert(
        "hypervisor_hostname".into(),
        json!(n.reg.hypervisor_hostname),
    );
    m.insert(
        "state".into(),
        json!(s.map(|s| state(s, now, down)).unwrap_or("down")),
    );
    m.insert("status".into(), json!(s.map(status).unwrap_or("disabled")));
    m
}

/// What a hypervisor's servers use: placement's usages of its provider, its live servers.
#[derive(Debug, Clone, Copy, Default)]
struct Used {
    vcpus: i64,
    memory_mb: i64,
    disk_gb: i64,
    vms: i64,
}

/// Per node id, what its servers use.
async fn usage(svc: &ComputeService) -> NovaResult<std::collections::HashMap<String, Used>> {
    let mut out: std::collections::HashMap<String, Used> = Default::default();
    let vms: std::collections::HashMap<String, i64> =
        sdb::hosts_in_use(svc.store()).await?.into_iter().collect();
    let snap = match svc.placement() {
        Some(p) => Some(p.snapshot().await.map_err(|e| {
            tracing::error!(error = %e.detail, "placement snapshot");
            NovaError::internal()
        })?),
        None => None,
    };
    for n in hosts::nodes(svc.store()).await? {
        let used = snap.as_ref().and_then(|s| s.get(&n.id)).map(|p| &p.used);
        let get = |rc: &str| used.and_then(|u| u.get(rc)).copied().unwrap_or(0);
        out.insert(
            n.id.clone(),
            Used {
                vcpus: get("VCPU"),
                memory_mb: get("MEMORY_MB"),
                disk_gb: get("DISK_GB"),
                vms: vms.get(&n.host).copied().unwrap_or(0),
            },
        );
    }
    Ok(out)
}

fn detailed(
    n: &Node,
    s: Option<&Service>,
    now: i64,
    down: i64,
    mv: Microversion,
    u: Used,
) -> Value {
    let mut m = brief(n, s, now, down);
    let r = &n.reg;
    m.insert("hypervisor_type".into(), json!(r.hypervisor_type));
    m.insert("hypervisor_version".into(), json!(r.hypervisor_version));
    m.insert("host_ip".into(), json!(r.host_ip));
    m.insert(
        "service".into(),
        json!({"host": n.host, "id": shown_service_id(&n.service_id, mv),
               "disabled_reason": s.and_then(|s| s.disabled_reason.clone())}),
    );
    if mv.at_least(88) {
        m.insert("uptime".into(), json!(uptime(n, now)));
    } else {
        for (k, v) in [
            ("vcpus", json!(r.vcpus)),
            ("memory_mb", json!(r.memory_mb)),
            ("local_gb", json!(r.local_gb)),
            ("vcpus_used", json!(u.vcpus)),
            (
                "memory_mb_used",
                json!(hosts::RESERVED_HOST_MEMORY_MB.min(r.memory_mb) + u.memory_mb),
            ),
            ("local_gb_used", json!(u.disk_gb)),
            (
                "free_ram_mb",
                json!(r.memory_mb - hosts::RESERVED_HOST_MEMORY_MB.min(r.memory_mb) - u.memory_mb),
            ),
            ("free_disk_gb", json!(r.local_gb - u.disk_gb)),
            ("current_workload", json!(0)),
            ("running_vms", json!(u.vms)),
            ("disk_available_least", json!(r.local_gb - u.disk_gb)),
            // A JSON object from 2.28, its text before.
            (
                "cpu_info",
                match (&r.cpu_info, mv.at_least(28)) {
                    (Value::Object(_), true) => r.cpu_info.clone(),
                    (_, true) => json!({}),
                    (v, false) => json!(v.to_string()),
                },
            ),
        ] {
            m.insert(k.into(), v);
        }
    }
    Value::Object(m)
}

async fn all(svc: &ComputeService) -> NovaResult<Vec<(Node, Option<Service>)>> {
    let services: std::collections::HashMap<String, Service> = hosts::services(svc.store())
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    Ok(hosts::nodes(svc.store())
        .await?
        .into_iter()
        .map(|n| {
            let s = services.get(&n.service_id).cloned();
            (n, s)
        })
        .collect())
}

/// `with_servers` (2.53+): whether to list each hypervisor's servers.
fn with_servers(pairs: &Pairs, mv: Microversion) -> NovaResult<bool> {
    if !mv.at_least(53) {
        return Ok(false);
    }
    match pairs.get("with_servers") {
        None => Ok(false),
        Some(v) => schema::boolean(&json!(v), "with_servers"),
    }
}

/// Adds `servers` (`{uuid, name}` of the live servers on the node's host) to a hypervisor
/// view: only when there are some below 2.75, always from 2.75.
async fn add_servers(
    svc: &ComputeService,
    v: &mut Value,
    n: &Node,
    mv: Microversion,
) -> NovaResult<()> {
    let servers: Vec<Value> = sdb::live_on_host(svc.store(), &n.host)
        .await?
        .iter()
        .map(|s| json!({"uuid": s.id, "name": s.name}))
        .collect();
    if !servers.is_empty() || mv.at_least(75) {
        v["servers"] = json!(servers);
    }
    Ok(())
}

/// `GET /os-hypervisors` (admin).
pub async fn hypervisor_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-hypervisors:list")?;
    let ws = with_servers(&pairs, mv)?;
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    let mut list = Vec::new();
    for (n, s) in all(&svc).await? {
        let mut v = Value::Object(brief(&n, s.as_ref(), now, down));
        if ws {
            add_servers(&svc, &mut v, &n, mv).await?;
        }
        list.push(v);
    }
    Ok(Json(json!({ "hypervisors": list })))
}

/// `GET /os-hypervisors/detail` (admin).
pub async fn hypervisor_detail(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-hypervisors:list-detail")?;
    let ws = with_servers(&pairs, mv)?;
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    let mut list = Vec::new();
    let used = usage(&svc).await?;
    for (n, s) in all(&svc).await? {
        let u = used.get(&n.id).copied().unwrap_or_default();
        let mut v = detailed(&n, s.as_ref(), now, down, mv, u);
        if ws {
            add_servers(&svc, &mut v, &n, mv).await?;
        }
        list.push(v);
    }
    Ok(Json(json!({ "hypervisors": list })))
}

/// `GET /os-hypervisors/{id}` (admin).
pub async fn hypervisor_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-hypervisors:show")?;
    let ws = with_servers(&pairs, mv)?;
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    let found = all(&svc).await?.into_iter().find(|(n, _)| n.id == id);
    match found {
        Some((n, s)) => {
            let u = usage(&svc).await?.get(&n.id).copied().unwrap_or_default();
            let mut v = detailed(&n, s.as_ref(), now, down, mv, u);
            if ws {
                add_servers(&svc, &mut v, &n, mv).await?;
            }
            Ok(Json(json!({ "hypervisor": v })))
        }
        None => Err(NovaError::not_found(format!(
            "Hypervisor with ID '{id}' could not be found."
        ))),
    }
}

/// The hypervisors whose name contains `pattern`, for the routes by name below 2.53 (404
/// from 2.53, and when none matches; `rule` is the route's policy).
async fn matching(
    svc: &ComputeService,
    auth: &Auth,
    mv: Microversion,
    rule: &str,
    pattern: &str,
) -> NovaResult<Vec<(Node, Option<Service>)>> {
    if mv.at_least(53) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    auth.require_admin(&format!("os_compute_api:os-hypervisors:{rule}"))?;
    let matched: Vec<(Node, Option<Service>)> = all(svc)
        .await?
        .into_iter()
        .filter(|(n, _)| n.reg.hypervisor_hostname.contains(pattern))
        .collect();
    if matched.is_empty() {
        return Err(NovaError::not_found(format!(
            "No hypervisor matching '{pattern}' could be found."
        )));
    }
    Ok(matched)
}

/// `GET /os-hypervisors/{hostname_pattern}/servers` (admin, below 2.53): the hypervisors
/// whose name contains the pattern, with their servers.
pub async fn hypervisor_servers(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(pattern): Path<String>,
) -> NovaResult<Json<Value>> {
    let matched = matching(&svc, &auth, mv, "servers", &pattern).await?;
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    let mut list = Vec::new();
    for (n, s) in matched {
        let Some(s) = s else { continue };
        let mut v = Value::Object(brief(&n, Some(&s), now, down));
        add_servers(&svc, &mut v, &n, mv).await?;
        list.push(v);
    }
    Ok(Json(json!({ "hypervisors": list })))
}

/// `GET /os-hypervisors/{hostname_pattern}/search` (admin, below 2.53): the hypervisors whose
/// name contains the pattern.
pub async fn hypervisor_search(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(pattern): Path<String>,
) -> NovaResult<Json<Value>> {
    let matched = matching(&svc, &auth, mv, "search", &pattern).await?;
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    let list: Vec<Value> = matched
        .into_iter()
        .map(|(n, s)| Value::Object(brief(&n, s.as_ref(), now, down)))
        .collect();
    Ok(Json(json!({ "hypervisors": list })))
}

/// `GET /os-hypervisors/{id}/uptime` (admin; removed in 2.88, where `uptime` is in the
/// hypervisor's view).
pub async fn hypervisor_uptime(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    if mv.at_least(88) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    auth.require_admin("os_compute_api:os-hypervisors:uptime")?;
    let now = strata_core::time::now_micros();
    let down = svc.config().service_down_time_s.max(1) * 1_000_000;
    let Some((n, s)) = all(&svc).await?.into_iter().find(|(n, _)| n.id == id) else {
        return Err(NovaError::not_found(format!(
            "Hypervisor with ID '{id}' could not be found."
        )));
    };
    let mut v = brief(&n, s.as_ref(), now, down);
    v.insert("uptime".into(), json!(uptime(&n, now)));
    Ok(Json(json!({ "hypervisor": v })))
}

/// The host's uptime in the shape of `uptime`'s first fields (what Nova's libvirt driver
/// reports): the time (UTC) and how long its agent has been registered — the control plane
/// knows when the agent last started, not when the machine booted.
fn uptime(n: &Node, now: i64) -> String {
    let secs = ((now - n.updated_at) / 1_000_000).max(0);
    let day = (now / 1_000_000).rem_euclid(86_400);
    format!(
        " {:02}:{:02}:{:02} up {} days, {:2}:{:02}",
        day / 3600,
        day % 3600 / 60,
        day % 60,
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60
    )
}

/// `GET /os-hypervisors/statistics` (admin; removed in 2.88).
pub async fn hypervisor_statistics(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
) -> NovaResult<Json<Value>> {
    if mv.at_least(88) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    auth.require_admin("os_compute_api:os-hypervisors:statistics")?;
    let nodes = all(&svc).await?;
    let used = usage(&svc).await?;
    let u = |n: &Node| used.get(&n.id).copied().unwrap_or_default();
    let sum = |f: &dyn Fn(&Node) -> i64| nodes.iter().map(|(n, _)| f(n)).sum::<i64>();
    let reserved = |n: &Node| hosts::RESERVED_HOST_MEMORY_MB.min(n.reg.memory_mb);
    Ok(Json(json!({"hypervisor_statistics": {
        "count": nodes.len(),
        "vcpus": sum(&|n| n.reg.vcpus),
        "memory_mb": sum(&|n| n.reg.memory_mb),
        "local_gb": sum(&|n| n.reg.local_gb),
        "vcpus_used": sum(&|n| u(n).vcpus),
        "memory_mb_used": sum(&|n| reserved(n) + u(n).memory_mb),
        "local_gb_used": sum(&|n| u(n).disk_gb),
        "free_ram_mb": sum(&|n| n.reg.memory_mb - reserved(n) - u(n).memory_mb),
        "free_disk_gb": sum(&|n| n.reg.local_gb - u(n).disk_gb),
        "current_workload": 0,
        "running_vms": sum(&|n| u(n).vms),
        "disk_available_least": sum(&|n| n.reg.local_gb - u(n).disk_gb),
    }})))
}
