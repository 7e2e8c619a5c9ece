//! Availability zones (`os-availability-zone`), as Nova's `get_availability_zones` finds them:
//! the zones of enabled compute services are available, those where every service is disabled
//! are not. A host's zone is its aggregates' `availability_zone`, else the configured default
//! (kept on its service row, `crate::aggregates`). Before any compute host exists the
//! configured zone is listed as available, so a fresh cloud still names a zone to boot in.
//! `/detail` (admins) lists each available zone's hosts and their `nova-compute` service.

use super::views::nova_time;
use crate::error::NovaResult;
use crate::extract::Auth;
use crate::hosts::Service;
use crate::ComputeService;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// The availability zone routes.
pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-availability-zone", get(zone_list))
        .route("/os-availability-zone/detail", get(zone_detail))
}

/// `(available zones, unavailable zones)`, each in the order their services were created,
/// with the compute services of each available zone.
async fn zones(svc: &ComputeService) -> NovaResult<(Vec<(String, Vec<Service>)>, Vec<String>)> {
    let services: Vec<Service> = crate::hosts::services(svc.store())
        .await?
        .into_iter()
        .filter(|s| s.binary == "nova-compute")
        .collect();
    if services.is_empty() {
        return Ok((
            vec![(svc.config().availability_zone.clone(), Vec::new())],
            Vec::new(),
        ));
    }
    let mut available: Vec<(String, Vec<Service>)> = Vec::new();
    for s in services.iter().filter(|s| !s.disabled) {
        match available.iter_mut().find(|(z, _)| *z == s.zone) {
            Some((_, list)) => list.push(s.clone()),
            None => available.push((s.zone.clone(), vec![s.clone()])),
        }
    }
    let mut unavailable: Vec<String> = Vec::new();
    for s in services.iter().filter(|s| s.disabled) {
        if !available.iter().any(|(z, _)| *z == s.zone) && !unavailable.contains(&s.zone) {
            unavailable.push(s.zone.clone());
        }
    }
    Ok((available, unavailable))
}

/// `GET /os-availability-zone`.
pub async fn zone_list(State(svc): State<ComputeService>, _auth: Auth) -> NovaResult<Json<Value>> {
    let (available, unavailable) = zones(&svc).await?;
    let mut out: Vec<Value> = available
        .iter()
        .map(|(z, _)| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": null}))
        .collect();
    out.extend(
        unavailable
            .iter()
            .map(|z| json!({"zoneName": z, "zoneState": {"available": false}, "hosts": null})),
    );
    Ok(Json(json!({ "availabilityZoneInfo": out })))
}

/// `GET /os-availability-zone/detail` (admin).
pub async fn zone_detail(State(svc): State<ComputeService>, auth: Auth) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-availability-zone:detail")?;
    let (available, unavailable) = zones(&svc).await?;
    let now = strata_core::time::now_micros();
    let mut out: Vec<Value> = Vec::new();
    for (z, services) in &available {
        let mut hosts = Map::new();
        for s in services {
            let updated = s.last_seen_up.unwrap_or(s.updated_at).max(s.updated_at);
            hosts.insert(
                s.host.clone(),
                json!({ s.binary.clone(): {
                    "available": svc.service_up(s, now),
                    "active": !s.disabled,
                    "updated_at": nova_time(updated),
                }}),
            );
        }
        out.push(json!({"zoneName": z, "zoneState": {"available": true}, "hosts": hosts}));
    }
    out.extend(
        unavailable
            .iter()
            .map(|z| json!({"zoneName": z, "zoneState": {"available": false}, "hosts": null})),
    );
    Ok(Json(json!({ "availabilityZoneInfo": out })))
}
