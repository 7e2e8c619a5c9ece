//! Routes of the placement service, nested under `/placement`, all behind the microversion
//! middleware. Each resource file exposes its `routes()`; handlers are `<resource>_<verb>`.
//! A route newer than the request's microversion answers 404, as Placement's router does.

pub mod allocations;
pub mod candidates;
pub mod classes;
pub mod inventories;
pub mod providers;
pub mod root;
pub mod traits;

use crate::error::PlacementError;
use crate::version::Microversion;
use crate::PlacementService;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{HeaderValue, StatusCode};
use serde_json::Value;

/// Every placement route.
pub fn router() -> Router<PlacementService> {
    Router::new()
        .merge(root::routes())
        .merge(providers::routes())
        .merge(inventories::routes())
        .merge(classes::routes())
        .merge(traits::routes())
        .merge(allocations::routes())
        .merge(candidates::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::version::layer))
}

async fn not_found() -> PlacementError {
    PlacementError::not_found("The resource could not be found.")
}

async fn method_not_allowed() -> PlacementError {
    PlacementError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
}

/// 404 unless the request is at `1.minor` or later (the route does not exist before).
pub fn need(mv: Microversion, minor: u32) -> Result<(), PlacementError> {
    if mv.at_least(minor) {
        Ok(())
    } else {
        Err(PlacementError::not_found(
            "The resource could not be found.",
        ))
    }
}

/// A 200 JSON body with `last-modified` set from `updated_at` (microseconds).
pub fn json_at(body: Value, updated_at: i64) -> Response {
    with_status_at(StatusCode::OK, body, updated_at)
}

/// A JSON body with a status and `last-modified` (the version middleware drops it before 1.15).
pub fn with_status_at(status: StatusCode, body: Value, updated_at: i64) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&crate::version::http_date(updated_at)) {
        resp.headers_mut().insert(http::header::LAST_MODIFIED, v);
    }
    resp
}

/// A 201 or 204 with a `location`.
pub fn created_at(status: StatusCode, location: String) -> Response {
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

/// The relative URL of a placement path, as Placement writes links (`/placement/...`).
pub fn href(path: &str) -> String {
    format!("/placement{path}")
}

/// A path UUID, canonicalised; 404 (no such provider) when it is not one.
pub fn path_uuid(uuid: &str) -> Result<String, PlacementError> {
    if crate::model::is_uuid(uuid) {
        Ok(crate::model::canonical_uuid(uuid))
    } else {
        Err(PlacementError::provider_not_found(uuid))
    }
}

/// Loads a provider or answers 404.
pub async fn provider_or_404(
    svc: &PlacementService,
    uuid: &str,
) -> Result<crate::model::Provider, PlacementError> {
    let uuid = path_uuid(uuid)?;
    let mut c = svc.conn().await?;
    crate::db::provider_get(&mut c, &uuid)
        .await?
        .ok_or_else(|| PlacementError::provider_not_found(&uuid))
}
