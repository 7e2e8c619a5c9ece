//! `GET /network`: the API versions (only `v2.0`); `GET /network/v2.0`: its resources.

use crate::NetworkService;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// The collections served, as `GET /v2.0` lists them.
pub const RESOURCES: &[(&str, &str)] = &[
    ("network", "networks"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
    ("subnet", "subnets"),
    ("subnetpool", "subnetpools"),
    ("port", "ports"),
    ("router", "routers"),
    ("floatingip", "floatingips"),
];

pub async fn versions(State(svc): State<NetworkService>) -> Json<Value> {
    Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("{}/v2.0/", svc.root_url()), "rel": "self"}],
    }]}))
}

pub async fn v2_resources(State(svc): State<NetworkService>) -> Json<Value> {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(name, collection)| {
            json!({"name": name, "collection": collection, "links": [
                {"href": format!("{}/v2.0/{collection}", svc.root_url()), "rel": "self"}
            ]})
        })
        .collect();
    Json(json!({ "resources": resources }))
}
