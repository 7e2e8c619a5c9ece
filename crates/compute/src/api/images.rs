//! The image proxy (Nova ≤ 2.35, 404 above): `GET /images/{id}` and `DELETE /images/{id}`,
//! answered from the image service in process as the caller, in Nova's image view (`minRam`,
//! `minDisk`, `metadata` for the image's own properties, `status` and `progress` mapped from
//! Glance's status, `OS-EXT-IMG-SIZE:size`, the `server` a snapshot was taken of). Clients at
//! those microversions (Tempest among them) follow a `createImage` snapshot through it.
//! Listing (`/images`, `/images/detail`) and image metadata are not served yet.

use super::Links;
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Mv};
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

pub fn routes() -> Router<ComputeService> {
    Router::new().route("/images/{id}", get(image_show).delete(image_delete))
}

/// The last microversion serving the image proxy.
const MAX_PROXY: u32 = 35;

fn gate(mv: crate::version::Microversion) -> NovaResult<()> {
    if mv.at_least(MAX_PROXY + 1) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    Ok(())
}

fn not_found(id: &str) -> NovaError {
    NovaError::not_found(format!("Image {id} could not be found."))
}

/// Glance's attributes, as opposed to the image's own properties (Nova's `metadata`).
const ATTRIBUTES: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "tags",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
];

/// Nova's image view (`views/images.py` `show`) of a Glance v2 image.
fn view(svc: &ComputeService, img: &Value, links: &Links) -> Value {
    let id = img["id"].as_str().unwrap_or_default();
    let status = img["status"].as_str().unwrap_or_default();
    let mut metadata = Map::new();
    if let Some(o) = img.as_object() {
        for (k, v) in o {
            if !ATTRIBUTES.contains(&k.as_str()) && v.is_string() {
                metadata.insert(k.clone(), v.clone());
            }
        }
    }
    let mut links_v = links.pair("images", id);
    if let Some(a) = links_v.as_array_mut() {
        a.push(
            json!({"rel": "alternate", "type": "application/vnd.openstack.image",
            "href": svc.image_url(id)}),
        );
    }
    let mut v = json!({
        "id": id,
        "name": img["name"],
        "minRam": img["min_ram"].as_i64().unwrap_or(0),
        "minDisk": img["min_disk"].as_i64().unwrap_or(0),
        "created": img["created_at"],
        "updated": img["updated_at"],
        "status": match status {
            "active" => "ACTIVE",
            "queued" | "saving" => "SAVING",
            "deleted" | "pending_delete" => "DELETED",
            "killed" => "ERROR",
            _ => "UNKNOWN",
        },
        "progress": match status {
            "queued" => 25,
            "saving" => 50,
            "active" => 100,
            _ => 0,
        },
        "OS-EXT-IMG-SIZE:size": img["size"],
        "links": links_v,
    });
    if let Some(server) = metadata.get("instance_uuid").and_then(Value::as_str) {
        v["server"] = json!({"id": server, "links": links.pair("servers", server)});
    }
    if let Some(auto) = metadata.get("auto_disk_config").and_then(Value::as_str) {
        let on = crate::schema::bool_from_string(auto).unwrap_or(false);
        v["OS-DCF:diskConfig"] = json!(if on { "AUTO" } else { "MANUAL" });
    }
    v["metadata"] = Value::Object(metadata);
    v
}

/// `GET /images/{id}`.
pub async fn image_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    gate(mv)?;
    let a = svc
        .glance(auth.0.clone(), Method::GET, &format!("/images/{id}"), None)
        .await
        .ok_or_else(|| not_found(&id))?;
    match a.status {
        s if s.is_success() => Ok(Json(json!({ "image": view(&svc, &a.body, &links) }))),
        StatusCode::NOT_FOUND => Err(not_found(&id)),
        StatusCode::FORBIDDEN => Err(NovaError::new(StatusCode::FORBIDDEN, a.message())),
        _ => Err(NovaError::internal()),
    }
}

/// `DELETE /images/{id}`: 204.
pub async fn image_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    gate(mv)?;
    let a = svc
        .glance(
            auth.0.clone(),
            Method::DELETE,
            &format!("/images/{id}"),
            None,
        )
        .await
        .ok_or_else(|| not_found(&id))?;
    match a.status {
        s if s.is_success() => Ok(StatusCode::NO_CONTENT),
        StatusCode::NOT_FOUND => Err(not_found(&id)),
        StatusCode::FORBIDDEN => Err(NovaError::new(StatusCode::FORBIDDEN, a.message())),
        _ => Err(NovaError::internal()),
    }
}
