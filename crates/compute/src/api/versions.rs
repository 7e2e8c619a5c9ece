//! Version discovery as Nova serves it: `GET /compute/` lists v2.0 (SUPPORTED, the legacy
//! endpoint without microversions) and v2.1 (CURRENT, with the microversion range) with `self`
//! links; `GET /compute/v2.1` shows the v2.1 document (`{"version": …}`), which keystoneauth
//! and the SDK read the range from.

use crate::version::{MAX_VERSION, MIN_VERSION};
use crate::ComputeService;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

fn entry(svc: &ComputeService, v21: bool, full: bool) -> Value {
    let (id, status, version, min, updated, path, media) = if v21 {
        (
            "v2.1",
            "CURRENT",
            format!("2.{MAX_VERSION}"),
            format!("2.{MIN_VERSION}"),
            "2013-07-23T11:33:21Z",
            "v2.1/",
            "application/vnd.openstack.compute+json;version=2.1",
        )
    } else {
        (
            "v2.0",
            "SUPPORTED",
            String::new(),
            String::new(),
            "2011-01-21T11:33:21Z",
            "v2/",
            "application/vnd.openstack.compute+json;version=2",
        )
    };
    let href = format!("{}/{path}", svc.root_url());
    let mut v = json!({
        "id": id,
        "status": status,
        "version": version,
        "min_version": min,
        "updated": updated,
        "links": [{"rel": "self", "href": href}],
    });
    if full {
        v["links"]
            .as_array_mut()
            .expect("links")
            .push(json!({"rel": "describedby", "type": "text/html",
                         "href": "http://docs.openstack.org/"}));
        v["media-types"] = json!([{"base": "application/json", "type": media}]);
    }
    v
}

/// `GET /compute/`: both versions, v2.0 first.
pub async fn versions(State(svc): State<ComputeService>) -> Json<Value> {
    Json(json!({"versions": [entry(&svc, false, false), entry(&svc, true, false)]}))
}

/// `GET /compute/v2`: the v2.0 document.
pub async fn v2(State(svc): State<ComputeService>) -> Json<Value> {
    Json(json!({"version": entry(&svc, false, true)}))
}

/// `GET /compute/v2.1`: the v2.1 document.
pub async fn v21(State(svc): State<ComputeService>) -> Json<Value> {
    Json(json!({"version": entry(&svc, true, true)}))
}
