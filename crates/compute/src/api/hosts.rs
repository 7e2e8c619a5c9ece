//! Compute hosts as Nova shows them to admins: `os-services` (list) and `os-hypervisors`
//! (list, detail, show, statistics). Ids are the UUIDs Nova uses from 2.53 at every
//! microversion; usage counts are 0 until servers are served.

use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Mv};
use crate::hosts::{self, Node, Service};
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// The host routes.
pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-services", get(service_list))
        .route("/os-hypervisors", get(hypervisor_list))
        .route("/os-hypervisors/detail", get(hypervisor_detail))
        .route("/os-hypervisors/statistics", get(hypervisor_statistics))
        .route("/os-hypervisors/{id}", get(hypervisor_show))
}

fn state(s: &Service, now: i64) -> &'static str {
    if s.is_up(now) {
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
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-services:list")?;
    let now = strata_core::time::now_micros();
    let list: Vec<Value> = hosts::services(svc.store())
        .await?
        .iter()
        .map(|s| {
            let mut v = json!({
                "id": s.id, "binary": s.binary, "host": s.host, "zone": s.zone,
                "status": status(s), "state": state(s, now),
                "disabled_reason": s.disabled_reason,
                "updated_at": super::views::nova_time(s.last_seen_up.unwrap_or(s.updated_at)),
            });
            if mv.at_least(11) {
                v["forced_down"] = json!(s.forced_down);
            }
            v
        })
        .collect();
    Ok(Json(json!({ "services": list })))
}

fn brief(n: &Node, s: Option<&Service>, now: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(n.id));
    m.insert(
        "hypervisor_hostname".into(),
        json!(n.reg.hypervisor_hostname),
    );
    m.insert(
        "state".into(),
        json!(s.map(|s| state(s, now)).unwrap_or("down")),
    );
    m.insert("status".into(), json!(s.map(status).unwrap_or("disabled")));
    m
}

fn detailed(n: &Node, s: Option<&Service>, now: i64, mv: crate::version::Microversion) -> Value {
    let mut m = brief(n, s, now);
    let r = &n.reg;
    m.insert("hypervisor_type".into(), json!(r.hypervisor_type));
    m.insert("hypervisor_version".into(), json!(r.hypervisor_version));
    m.insert("host_ip".into(), json!(r.host_ip));
    m.insert(
        "service".into(),
        json!({"host": n.host, "id": n.service_id,
               "disabled_reason": s.and_then(|s| s.disabled_reason.clone())}),
    );
    if mv.at_least(88) {
        m.insert("uptime".into(), Value::Null);
    } else {
        for (k, v) in [
            ("vcpus", json!(r.vcpus)),
            ("memory_mb", json!(r.memory_mb)),
            ("local_gb", json!(r.local_gb)),
            ("vcpus_used", json!(0)),
            (
                "memory_mb_used",
                json!(hosts::RESERVED_HOST_MEMORY_MB.min(r.memory_mb)),
            ),
            ("local_gb_used", json!(0)),
            (
                "free_ram_mb",
                json!(r.memory_mb - hosts::RESERVED_HOST_MEMORY_MB.min(r.memory_mb)),
            ),
            ("free_disk_gb", json!(r.local_gb)),
            ("current_workload", json!(0)),
            ("running_vms", json!(0)),
            ("disk_available_least", json!(r.local_gb)),
            ("cpu_info", json!(r.cpu_info.to_string())),
        ] {
            m.insert(k.into(), v);
        }
    }
    Value::Object(m)
}

async fn all(svc: &ComputeService) -> NovaResult<Vec<(Node, Option<Service>)>> {
    let services = hosts::services(svc.store()).await?;
    Ok(hosts::nodes(svc.store())
        .await?
        .into_iter()
        .map(|n| {
            let s = services.iter().find(|s| s.id == n.service_id).cloned();
            (n, s)
        })
        .collect())
}

/// `GET /os-hypervisors` (admin).
pub async fn hypervisor_list(
    State(svc): State<ComputeService>,
    auth: Auth,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-hypervisors:list")?;
    let now = strata_core::time::now_micros();
    let list: Vec<Value> = all(&svc)
        .await?
        .iter()
        .map(|(n, s)| Value::Object(brief(n, s.as_ref(), now)))
        .collect();
    Ok(Json(json!({ "hypervisors": list })))
}

/// `GET /os-hypervisors/detail` (admin).
pub async fn hypervisor_detail(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-hypervisors:list-detail")?;
    let now = strata_core::time::now_micros();
    let list: Vec<Value> = all(&svc)
        .await?
        .iter()
        .map(|(n, s)| detailed(n, s.as_ref(), now, mv))
        .collect();
    Ok(Json(json!({ "hypervisors": list })))
}

/// `GET /os-hypervisors/{id}` (admin).
pub async fn hypervisor_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-hypervisors:show")?;
    let now = strata_core::time::now_micros();
    let found = all(&svc).await?.into_iter().find(|(n, _)| n.id == id);
    match found {
        Some((n, s)) => Ok(Json(
            json!({"hypervisor": detailed(&n, s.as_ref(), now, mv)}),
        )),
        None => Err(NovaError::not_found(format!(
            "Hypervisor with ID '{id}' could not be found."
        ))),
    }
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
    let sum = |f: &dyn Fn(&Node) -> i64| nodes.iter().map(|(n, _)| f(n)).sum::<i64>();
    let reserved = |n: &Node| hosts::RESERVED_HOST_MEMORY_MB.min(n.reg.memory_mb);
    Ok(Json(json!({"hypervisor_statistics": {
        "count": nodes.len(),
        "vcpus": sum(&|n| n.reg.vcpus),
        "memory_mb": sum(&|n| n.reg.memory_mb),
        "local_gb": sum(&|n| n.reg.local_gb),
        "vcpus_used": 0,
        "memory_mb_used": sum(&reserved),
        "local_gb_used": 0,
        "free_ram_mb": sum(&|n| n.reg.memory_mb - reserved(n)),
        "free_disk_gb": sum(&|n| n.reg.local_gb),
        "current_workload": 0,
        "running_vms": 0,
        "disk_available_least": sum(&|n| n.reg.local_gb),
    }})))
}
