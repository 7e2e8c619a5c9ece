//! Version discovery: `GET /image` answers 300 with the versions this service honours.

use crate::ImageService;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// The v2 minor versions advertised, newest first. v2.7 is the image shape served (community
/// visibility from v2.5, `os_hidden` from v2.7); Glance lists the same ids. Interoperable image
/// import (v2.6) is served with the `glance-direct` method; clients read the methods from
/// `GET /v2/info/import`. Not advertised: v2.8+ (multi-store import into chosen stores, and the
/// tasks API of v2.12, which Tempest would then check).
const VERSIONS: &[(&str, &str)] = &[
    ("v2.7", "CURRENT"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
];

/// `GET /image`, `GET /image/versions` and unknown paths outside `/v2`.
pub async fn versions(State(svc): State<ImageService>) -> Response {
    let href = format!("{}/v2/", svc.root_url());
    let versions: Vec<_> = VERSIONS
        .iter()
        .map(|(id, status)| {
            json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]})
        })
        .collect();
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({ "versions": versions })),
    )
        .into_response()
}
