//! The control API (`/sim/v1`), for tests and operators: what each host is and does (its
//! inventory, BMC addresses — Redfish and IPMI — and credentials, power, boot log) and its
//! fault knobs. It is the
//! simulator's own, not Redfish: the back of the rack, not the BMC.
//!
//! - `GET /sim/v1/hosts`, `GET /sim/v1/hosts/{name}`
//! - `PUT /sim/v1/hosts/{name}/faults` (the whole set; absent knobs reset) and `PATCH` (only
//!   the knobs given)
//! - `POST /sim/v1/hosts/{name}/power {"state": "On"|"Off"}`: the power button, at once,
//!   whatever the faults say.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::fleet::entry;
use crate::host::{Faults, PowerState, SimHostHandle};

type Hosts = Arc<Vec<SimHostHandle>>;

pub(crate) fn router(hosts: Hosts) -> Router {
    Router::new()
        .route("/sim/v1/hosts", get(hosts_list))
        .route("/sim/v1/hosts/{name}", get(host_get))
        .route(
            "/sim/v1/hosts/{name}/faults",
            get(faults_get).put(faults_put).patch(faults_patch),
        )
        .route("/sim/v1/hosts/{name}/power", post(power_set))
        .fallback(|| async { CtlError(StatusCode::NOT_FOUND, "no such resource".into()) })
        .with_state(hosts)
}

/// A control API error: `{"error": "…"}`.
struct CtlError(StatusCode, String);

impl IntoResponse for CtlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type CtlResult = Result<Response, CtlError>;

fn find(hosts: &Hosts, name: &str) -> Result<SimHostHandle, CtlError> {
    hosts
        .iter()
        .find(|h| h.name() == name)
        .cloned()
        .ok_or_else(|| CtlError(StatusCode::NOT_FOUND, format!("no host {name}")))
}

/// Everything about one host.
fn view(host: &SimHostHandle) -> Value {
    let e = entry(host);
    let (bios_pending, bios_applied_at) = host.bios_pending();
    json!({
        "name": e.name,
        "index": host.index(),
        "uuid": e.uuid,
        "redfish": e.redfish,
        "ipmi_address": e.ipmi_address,
        "username": e.username,
        "password": e.password,
        "boot_mac": e.boot_mac,
        "power": host.power(),
        "reported_power": host.reported_power(),
        "boot": host.boot_override(),
        "virtual_media": host.virtual_media(),
        "bios": host.bios(),
        "bios_pending": bios_pending,
        "bios_applied_at": bios_applied_at,
        "boot_log": host.boot_log(),
        "faults": host.faults(),
        "disk": host.disk_path(),
        "inventory": e.inventory,
    })
}

async fn hosts_list(State(hosts): State<Hosts>) -> Json<Value> {
    Json(json!({ "hosts": hosts.iter().map(view).collect::<Vec<_>>() }))
}

async fn host_get(State(hosts): State<Hosts>, Path(name): Path<String>) -> CtlResult {
    Ok(Json(view(&find(&hosts, &name)?)).into_response())
}

async fn faults_get(State(hosts): State<Hosts>, Path(name): Path<String>) -> CtlResult {
    Ok(Json(find(&hosts, &name)?.faults()).into_response())
}

/// Parses a faults body; with `base`, the body's knobs are laid over it (PATCH).
fn parse_faults(raw: &[u8], base: Option<&Faults>) -> Result<Faults, CtlError> {
    let bad = |e: serde_json::Error| CtlError(StatusCode::BAD_REQUEST, format!("faults: {e}"));
    let given: Value = serde_json::from_slice(raw).map_err(bad)?;
    let Value::Object(given) = given else {
        return Err(CtlError(
            StatusCode::BAD_REQUEST,
            "faults: expected an object".into(),
        ));
    };
    let mut merged = match base.map(serde_json::to_value) {
        Some(Ok(Value::Object(m))) => m,
        _ => serde_json::Map::new(),
    };
    merged.extend(given);
    serde_json::from_value(Value::Object(merged)).map_err(bad)
}

async fn faults_put(State(hosts): State<Hosts>, Path(name): Path<String>, raw: Bytes) -> CtlResult {
    set_faults(&hosts, &name, &raw, false)
}

async fn faults_patch(
    State(hosts): State<Hosts>,
    Path(name): Path<String>,
    raw: Bytes,
) -> CtlResult {
    set_faults(&hosts, &name, &raw, true)
}

fn set_faults(hosts: &Hosts, name: &str, raw: &[u8], merge: bool) -> CtlResult {
    let host = find(hosts, name)?;
    let current = host.faults();
    let faults = parse_faults(raw, merge.then_some(&current))?;
    host.set_faults(faults.clone());
    Ok(Json(faults).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerBody {
    state: PowerState,
}

async fn power_set(State(hosts): State<Hosts>, Path(name): Path<String>, raw: Bytes) -> CtlResult {
    let host = find(&hosts, &name)?;
    let body: PowerBody = serde_json::from_slice(&raw)
        .map_err(|e| CtlError(StatusCode::BAD_REQUEST, format!("power: {e}")))?;
    host.set_power(body.state);
    Ok(Json(view(&host)).into_response())
}
