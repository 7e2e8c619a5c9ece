//! Version discovery: `GET /baremetal` (the root document with the one major version, v1, and
//! its microversion range) and `GET /baremetal/v1` (links to the resources served). Neither
//! needs a token, as in Ironic.

use crate::model::links;
use crate::version::{Microversion, MAX_VERSION, MIN_VERSION};
use crate::BaremetalService;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

fn version_entry(svc: &BaremetalService) -> Value {
    json!({
        "id": "v1",
        "links": [{"href": format!("{}/v1/", svc.root_url()), "rel": "self"}],
        "status": "CURRENT",
        "min_version": format!("1.{MIN_VERSION}"),
        "version": format!("1.{MAX_VERSION}"),
    })
}

/// `GET /baremetal`.
pub async fn root(State(svc): State<BaremetalService>) -> Json<Value> {
    Json(json!({
        "name": "OpenStack Ironic API",
        "description": "Ironic is an OpenStack project which enables the provision and \
                        management of baremetal machines.",
        "default_version": version_entry(&svc),
        "versions": [version_entry(&svc)],
    }))
}

/// `GET /baremetal/v1`: the resources, with those that a microversion introduced listed from
/// that version on (as Ironic's `VERSIONED_CONTROLLERS`).
pub async fn v1(
    State(svc): State<BaremetalService>,
    mv: Option<axum::Extension<Microversion>>,
) -> Json<Value> {
    let mv = mv.map(|m| m.0).unwrap_or(Microversion(MIN_VERSION));
    let base = svc.root_url();
    let res = |name: &str| links(&base, name, "");
    let mut doc = json!({
        "id": "v1",
        "links": [
            {"href": format!("{base}/v1/"), "rel": "self"},
            {"href": "https://docs.openstack.org//ironic/latest/contributor//webapi.html",
             "rel": "describedby", "type": "text/html"},
        ],
        "media_types": {"base": "application/json",
                        "type": "application/vnd.openstack.ironic.v1+json"},
        "nodes": res("nodes"),
        "ports": res("ports"),
        "drivers": res("drivers"),
        "version": version_entry(&svc),
    });
    if mv.at_least(22) {
        doc["lookup"] = res("lookup");
        doc["heartbeat"] = res("heartbeat");
    }
    if mv.at_least(49) {
        doc["conductors"] = res("conductors");
    }
    Json(doc)
}
