//! Version discovery: `GET /identity` (300, every version) and `GET /identity/v3` (200).

use crate::Identity;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

fn v3(id: &Identity) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/", id.v3_url())}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

pub async fn versions(State(id): State<Identity>) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({"versions": {"values": [v3(&id)]}})),
    )
        .into_response()
}

pub async fn version_v3(State(id): State<Identity>) -> Response {
    axum::Json(json!({"version": v3(&id)})).into_response()
}
