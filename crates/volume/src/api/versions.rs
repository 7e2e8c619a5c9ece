//! Version discovery: `GET /volume` → 300 with the v3 entry, `GET /volume/v3/` → 200 with the
//! same entry in a list (what keystoneauth and the SDK read the microversion range from).

use crate::version::{MAX_VERSION, MIN_VERSION};
use crate::VolumeService;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Value};

fn v3_entry(svc: &VolumeService) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html",
             "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{}/v3/", svc.root_url())},
        ],
        "min_version": format!("3.{MIN_VERSION}"),
        "version": format!("3.{MAX_VERSION}"),
        "media-types": [
            {"base": "application/json",
             "type": "application/vnd.openstack.volume+json;version=3"}
        ],
    })
}

/// `GET /volume/`: 300 Multiple Choices.
pub async fn versions(State(svc): State<VolumeService>) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": [v3_entry(&svc)]})),
    )
        .into_response()
}

/// `GET /volume/v3/`: 200 with the v3 entry.
pub async fn v3(State(svc): State<VolumeService>) -> Json<Value> {
    Json(json!({"versions": [v3_entry(&svc)]}))
}
