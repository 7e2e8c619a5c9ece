//! Availability zones (`os-availability-zone`): the configured zone, available. Hosts appear
//! in `/detail` (admins) once compute hosts exist; until then the zone has none.

use crate::error::NovaResult;
use crate::extract::Auth;
use crate::ComputeService;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The availability zone routes.
pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-availability-zone", get(zone_list))
        .route("/os-availability-zone/detail", get(zone_detail))
}

/// `GET /os-availability-zone`.
pub async fn zone_list(State(svc): State<ComputeService>, _auth: Auth) -> Json<Value> {
    Json(json!({"availabilityZoneInfo": [{
        "zoneName": svc.config().availability_zone,
        "zoneState": {"available": true},
        "hosts": null,
    }]}))
}

/// `GET /os-availability-zone/detail` (admin).
pub async fn zone_detail(State(svc): State<ComputeService>, auth: Auth) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-availability-zone:detail")?;
    Ok(Json(json!({"availabilityZoneInfo": [{
        "zoneName": svc.config().availability_zone,
        "zoneState": {"available": true},
        "hosts": {},
    }]})))
}
