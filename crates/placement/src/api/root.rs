//! `GET /placement/`: the version document, without authentication.

use crate::version::{MAX_VERSION, MIN_VERSION};
use crate::PlacementService;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<PlacementService> {
    Router::new().route("/", get(root_show))
}

/// The one version Placement has, with its microversion range.
pub async fn root_show() -> Json<Value> {
    Json(json!({"versions": [{
        "id": "v1.0",
        "max_version": format!("1.{MAX_VERSION}"),
        "min_version": format!("1.{MIN_VERSION}"),
        "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}],
    }]}))
}
