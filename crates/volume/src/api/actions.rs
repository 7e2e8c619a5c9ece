//! `POST /v3/{project_id}/volumes/{volume_id}/action`: the single key of the body names the
//! action (`os-extend`, `os-attach`, `os-volume_upload_image`, …). Every status transition is
//! made inside one write that re-reads the volume, so two concurrent requests cannot both
//! pass a check (two attachments of a volume that allows one, two extends); refusals are
//! Cinder's `Invalid volume: …` 400s. Members of the owning project may act, admin actions
//! (`os-reset_status`, `os-force_delete`, `os-force_detach`) need the admin role, and other
//! projects are told the volume does not exist.

use super::attachments::{connection_info, settle};
use super::views;
use super::volumes::{self, opt_string, parse_bool, visible};
use crate::db;
use crate::error::{CinderError, CinderResult};
use crate::extract::{Auth, Body, Mv};
use crate::images::NewImage;
use crate::model::{self, Attachment, Volume, VolumeType, VOLUME_STATUSES};
use crate::version::Microversion;
use crate::work;
use crate::VolumeService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use strata_core::time::now_micros;

pub fn routes() -> Router<VolumeService> {
    Router::new().route("/volumes/{volume_id}/action", post(volume_action))
}

/// The action a body names and its argument: exactly one key (Cinder's `action_peek`).
pub fn action_of(body: &Body) -> CinderResult<(String, Value)> {
    match &body.0 {
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one key");
            Ok((k.clone(), v.clone()))
        }
        Value::Object(m) if m.len() > 1 => Err(CinderError::bad_request(
            "Malformed request body: Too many body keys",
        )),
        _ => Err(CinderError::bad_request("Malformed request body")),
    }
}

/// The argument as an object (`null` and `{}` are both empty).
fn object(name: &str, arg: &Value) -> CinderResult<Map<String, Value>> {
    match arg {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        other => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute {name}. Value: {other}. {other} is not of type \
             'object'"
        ))),
    }
}

fn required(name: &str, arg: &Value, key: &str) -> CinderError {
    CinderError::bad_request(format!(
        "Invalid input for field/attribute {name}. Value: {arg}. '{key}' is a required property"
    ))
}

/// A boolean field as Cinder's schema accepts it (JSON booleans and oslo's strings).
fn bool_field(m: &Map<String, Value>, key: &str) -> CinderResult<Option<bool>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
            CinderError::bad_request(format!(
                "Invalid input for field/attribute {key}. Value: {v}. {v} is not of type \
                 'boolean'"
            ))
        }),
    }
}

fn member(auth: &Auth, rule: &str) -> CinderResult<()> {
    if model::can_write(&auth.0) {
        Ok(())
    } else {
        Err(CinderError::policy(rule))
    }
}

fn admin(auth: &Auth, rule: &str) -> CinderResult<()> {
    if auth.admin() {
        Ok(())
    } else {
        Err(CinderError::policy(rule))
    }
}

fn accepted() -> CinderResult<Response> {
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /volumes/{id}/action`.
pub async fn volume_action(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Response> {
    let id = p["volume_id"].clone();
    let (name, arg) = action_of(&body)?;
    const KNOWN: &[&str] = &[
        "os-extend",
        "os-set_bootable",
        "os-update_readonly_flag",
        "os-volume_upload_image",
        "os-reset_status",
        "os-force_delete",
        "os-reserve",
        "os-unreserve",
        "os-begin_detaching",
        "os-roll_detaching",
        "os-initialize_connection",
        "os-terminate_connection",
        "os-attach",
        "os-detach",
        "os-force_detach",
        "os-set_image_metadata",
        "os-unset_image_metadata",
        "os-show_image_metadata",
        "os-retype",
    ];
    if !KNOWN.contains(&name.as_str()) {
        return Err(CinderError::bad_request(format!(
            "There is no such action: {name}"
        )));
    }
    let v = visible(&svc, &auth, &id).await?;
    match name.as_str() {
        "os-extend" => volume_action_extend(&svc, &auth, mv, &v, &arg).await,
        "os-set_bootable" => volume_action_set_bootable(&svc, &auth, &v, &arg).await,
        "os-update_readonly_flag" => volume_action_readonly(&svc, &auth, &v, &arg).await,
        "os-volume_upload_image" => volume_action_upload_image(&svc, &auth, mv, &v, &arg).await,
        "os-reset_status" => volume_action_reset_status(&svc, &auth, &v, &arg).await,
        "os-force_delete" => {
            admin(&auth, "volume_extension:volume_admin_actions:force_delete")?;
            volumes::delete_with(&svc, &v.id, false, true).await?;
            accepted()
        }
        "os-reserve" => volume_action_reserve(&svc, &auth, &v).await,
        "os-unreserve" => {
            member(&auth, "volume_extension:volume_actions:unreserve")?;
            transition(&svc, &v.id, |v, atts| {
                if v.status == "attaching" {
                    settle(v, atts);
                }
                Ok(())
            })
            .await?;
            accepted()
        }
        "os-begin_detaching" => {
            member(&auth, "volume_extension:volume_actions:begin_detaching")?;
            work::update_volume(&svc, &v.id, |v| {
                if v.status != "in-use" || v.attach_status != "attached" {
                    return Err(CinderError::invalid_volume(
                        "Unable to detach volume. Volume status must be 'in-use' and \
                         attach_status must be 'attached' to detach.",
                    ));
                }
                v.status = "detaching".into();
                Ok(())
            })
            .await?;
            accepted()
        }
        "os-roll_detaching" => {
            member(&auth, "volume_extension:volume_actions:roll_detaching")?;
            work::update_volume(&svc, &v.id, |v| {
                if v.status == "detaching" {
                    v.status = "in-use".into();
                }
                Ok(())
            })
            .await?;
            accepted()
        }
        "os-initialize_connection" => {
            member(
                &auth,
                "volume_extension:volume_actions:initialize_connection",
            )?;
            let m = object(&name, &arg)?;
            connector(&name, &arg, &m)?;
            if v.status == "maintenance" {
                return Err(CinderError::invalid_volume(
                    "Volume cannot be attached while in maintenance.",
                ));
            }
            let mode = v
                .admin_metadata
                .get("attached_mode")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| if v.readonly() { "ro" } else { "rw" }.to_string());
            // Hold the backend lock shared and read the handle again under it, so a snapshot
            // or clone (exclusive) cannot re-point the volume after its handle is handed out.
            let _handle_guard = svc.backend_lock().read().await;
            let v = db::get_volume(svc.store(), &v.id)
                .await?
                .ok_or_else(|| CinderError::volume_not_found(&v.id))?;
            let info = connection_info(&svc, &v, &mode)?;
            Ok((StatusCode::OK, Json(json!({"connection_info": info}))).into_response())
        }
        "os-terminate_connection" => {
            member(
                &auth,
                "volume_extension:volume_actions:terminate_connection",
            )?;
            let m = object(&name, &arg)?;
            connector(&name, &arg, &m)?;
            accepted()
        }
        "os-attach" => volume_action_attach(&svc, &auth, &v, &arg).await,
        "os-detach" => {
            member(&auth, "volume_extension:volume_actions:detach")?;
            let m = object(&name, &arg)?;
            detach(&svc, &v.id, opt_string(&m, "attachment_id")?, false).await?;
            accepted()
        }
        "os-force_detach" => {
            admin(&auth, "volume_extension:volume_admin_actions:force_detach")?;
            let m = object(&name, &arg)?;
            detach(&svc, &v.id, opt_string(&m, "attachment_id")?, true).await?;
            accepted()
        }
        "os-set_image_metadata" => {
            member(&auth, "volume_extension:volume_image_metadata:set")?;
            let m = object(&name, &arg)?;
            let md = match m.get("metadata") {
                Some(md) => views::validate_metadata(md, "metadata")?,
                None => return Err(required(&name, &arg, "metadata")),
            };
            let v = work::update_volume(&svc, &v.id, move |v| {
                image_metadata_writable(v)?;
                for (k, val) in &md {
                    v.image_metadata.insert(k.clone(), val.clone());
                }
                Ok(())
            })
            .await?;
            Ok(Json(json!({"metadata": v.image_metadata})).into_response())
        }
        "os-unset_image_metadata" => {
            member(&auth, "volume_extension:volume_image_metadata:remove")?;
            let m = object(&name, &arg)?;
            let key = match m.get("key") {
                Some(Value::String(k)) if !k.is_empty() && k.chars().count() <= 255 => k.clone(),
                Some(other) => {
                    return Err(CinderError::bad_request(format!(
                        "Invalid input for field/attribute key. Value: {other}. {other} is not \
                         a valid metadata key"
                    )))
                }
                None => return Err(required(&name, &arg, "key")),
            };
            work::update_volume(&svc, &v.id, move |v| {
                image_metadata_writable(v)?;
                if v.image_metadata.remove(&key).is_none() {
                    return Err(CinderError::not_found(format!(
                        "Glance metadata for volume/snapshot {} cannot be found.",
                        v.id
                    )));
                }
                Ok(())
            })
            .await?;
            Ok(StatusCode::OK.into_response())
        }
        "os-show_image_metadata" => Ok(Json(json!({"metadata": v.image_metadata})).into_response()),
        "os-retype" => volume_action_retype(&svc, &auth, &v, &arg).await,
        _ => unreachable!("checked against KNOWN"),
    }
}

fn image_metadata_writable(v: &Volume) -> CinderResult<()> {
    if matches!(v.status.as_str(), "maintenance" | "uploading") {
        return Err(CinderError::invalid_volume(format!(
            "Volume {} status must not be {} to update its image metadata.",
            v.id, v.status
        )));
    }
    Ok(())
}

/// The `connector` of an action's argument: a required object.
fn connector(name: &str, arg: &Value, m: &Map<String, Value>) -> CinderResult<Value> {
    match m.get("connector") {
        Some(c @ Value::Object(_)) => Ok(c.clone()),
        Some(other) => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute connector. Value: {other}. {other} is not of \
             type 'object'"
        ))),
        None => Err(required(name, arg, "connector")),
    }
}

/// Runs `f` on the volume and its attachments inside one write and saves the volume.
async fn transition<F>(svc: &VolumeService, id: &str, f: F) -> CinderResult<Volume>
where
    F: Fn(&mut Volume, &[Attachment]) -> CinderResult<()> + Send + Sync + Clone + 'static,
{
    let id = id.to_string();
    work::write(svc, move |tx| {
        let (id, f) = (id.clone(), f.clone());
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            let atts = db::attachments_of_tx(tx, &id).await?;
            if let Err(e) = f(&mut v, &atts) {
                return Ok(Err(e));
            }
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(v))
        })
    })
    .await
}

/// A size as Cinder's schema accepts it (an integer or a string of digits, 1..=2^31-1).
fn parse_new_size(v: Option<&Value>) -> CinderResult<i64> {
    let Some(v) = v else {
        return Err(CinderError::bad_request(
            "Invalid input for field/attribute os-extend. 'new_size' is a required property",
        ));
    };
    let bad = || {
        CinderError::bad_request(format!(
            "Invalid input for field/attribute new_size. Value: {v}. {v} is not of type \
             'integer', 'string'"
        ))
    };
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad)?,
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if n < 1 || n > i32::MAX as i64 {
        return Err(bad());
    }
    Ok(n)
}

async fn type_of(svc: &VolumeService, v: &Volume) -> CinderResult<VolumeType> {
    Ok(db::get_type(svc.store(), &v.volume_type_id)
        .await?
        .unwrap_or_else(|| VolumeType {
            id: v.volume_type_id.clone(),
            name: String::new(),
            description: None,
            is_public: true,
            extra_specs: Map::new(),
            created_at: 0,
            updated_at: 0,
        }))
}

/// `os-extend`: available (or in-use from 3.42, the file backend grows files in use) →
/// `extending`, the gigabytes quota taken for the growth in the same write.
async fn volume_action_extend(
    svc: &VolumeService,
    auth: &Auth,
    mv: Microversion,
    v: &Volume,
    arg: &Value,
) -> CinderResult<Response> {
    member(auth, "volume:extend")?;
    let m = object("os-extend", arg)?;
    let new_size = parse_new_size(m.get("new_size"))?;
    let in_use_ok = mv.at_least(42);
    let vtype = type_of(svc, v).await?;
    let cfg = svc.config().clone();
    let id = v.id.clone();
    let back_to = work::write(svc, move |tx| {
        let (id, vtype, cfg) = (id.clone(), vtype.clone(), cfg.clone());
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            if !(v.status == "available" || (in_use_ok && v.status == "in-use")) {
                let want = if in_use_ok {
                    "available' or 'in-use"
                } else {
                    "available"
                };
                return Ok(Err(CinderError::invalid_volume(format!(
                    "Volume {id} status must be '{want}' to extend, currently {}.",
                    v.status
                ))));
            }
            if new_size <= v.size {
                return Ok(Err(CinderError::invalid_input(format!(
                    "New size for extend must be greater than current size. (current: {}, \
                     extended: {new_size}).",
                    v.size
                ))));
            }
            let overrides = db::quota_overrides_tx(tx, &v.project_id).await?;
            let per_volume = work::limit(&cfg, &overrides, "per_volume_gigabytes");
            if per_volume >= 0 && new_size > per_volume {
                return Ok(Err(CinderError::over_quota(format!(
                    "Requested volume size {new_size}G is larger than maximum allowed limit \
                     {per_volume}G."
                ))));
            }
            let grow = new_size - v.size;
            if let Err(e) = work::check_quota(tx, &cfg, &v.project_id, &vtype, 0, 0, grow).await? {
                return Ok(Err(e));
            }
            let back_to = v.status.clone();
            v.status = "extending".into();
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(back_to))
        })
    })
    .await?;
    svc.spawn(work::extend(svc.clone(), v.id.clone(), new_size, back_to))
        .await;
    accepted()
}

/// `os-set_bootable`: 200 with no body.
async fn volume_action_set_bootable(
    svc: &VolumeService,
    auth: &Auth,
    v: &Volume,
    arg: &Value,
) -> CinderResult<Response> {
    member(auth, "volume:update")?;
    let m = object("os-set_bootable", arg)?;
    let Some(bootable) = bool_field(&m, "bootable")? else {
        return Err(required("os-set_bootable", arg, "bootable"));
    };
    work::update_volume(svc, &v.id, move |v| {
        if v.status == "maintenance" {
            return Err(CinderError::invalid_volume(
                "The volume cannot be updated during maintenance.",
            ));
        }
        v.bootable = bootable;
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `os-update_readonly_flag`: `admin_metadata["readonly"]`, shown in the volume's metadata.
async fn volume_action_readonly(
    svc: &VolumeService,
    auth: &Auth,
    v: &Volume,
    arg: &Value,
) -> CinderResult<Response> {
    member(auth, "volume:update_readonly_flag")?;
    let m = object("os-update_readonly_flag", arg)?;
    let Some(readonly) = bool_field(&m, "readonly")? else {
        return Err(required("os-update_readonly_flag", arg, "readonly"));
    };
    work::update_volume(svc, &v.id, move |v| {
        if v.status != "available" {
            return Err(CinderError::invalid_volume(format!(
                "Volume {} status must be available to update readonly flag, but current \
                 status is: {}.",
                v.id, v.status
            )));
        }
        v.admin_metadata.insert(
            "readonly".into(),
            json!(if readonly { "True" } else { "False" }),
        );
        Ok(())
    })
    .await?;
    accepted()
}

const UPLOAD_DISK_FORMATS: &[&str] = &["raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx"];
const CONTAINER_FORMATS: &[&str] = &[
    "bare",
    "ovf",
    "ova",
    "ami",
    "ari",
    "aki",
    "docker",
    "compressed",
];
/// Image metadata a volume remembers that is not a property of a new image.
const CORE_IMAGE_KEYS: &[&str] = &[
    "image_id",
    "image_name",
    "checksum",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "size",
];

/// `os-volume_upload_image`: available (or in-use with `force`) → `uploading`; a queued
/// image is made for the caller and the volume's data written into it in the background.
async fn volume_action_upload_image(
    svc: &VolumeService,
    auth: &Auth,
    mv: Microversion,
    v: &Volume,
    arg: &Value,
) -> CinderResult<Response> {
    member(auth, "volume_extension:volume_actions:upload_image")?;
    let name = "os-volume_upload_image";
    let m = object(name, arg)?;
    let Some(image_name) = opt_string(&m, "image_name")? else {
        return Err(required(name, arg, "image_name"));
    };
    let force = bool_field(&m, "force")?.unwrap_or(false);
    let disk_format = opt_string(&m, "disk_format")?.unwrap_or_else(|| "raw".into());
    if !UPLOAD_DISK_FORMATS.contains(&disk_format.as_str()) {
        return Err(CinderError::bad_request(format!(
            "Invalid disk-format '{disk_format}' is specified. Allowed disk-formats are {}.",
            UPLOAD_DISK_FORMATS.join(", ")
        )));
    }
    let container_format = opt_string(&m, "container_format")?.unwrap_or_else(|| "bare".into());
    if !CONTAINER_FORMATS.contains(&container_format.as_str()) {
        return Err(CinderError::bad_request(format!(
            "Invalid container-format '{container_format}' is specified. Allowed \
             container-formats are {}.",
            CONTAINER_FORMATS.join(", ")
        )));
    }
    let (visibility, protected) = if mv.at_least(1) {
        let vis = opt_string(&m, "visibility")?.unwrap_or_else(|| "private".into());
        if !matches!(vis.as_str(), "public" | "private" | "community" | "shared") {
            return Err(CinderError::bad_request(format!(
                "Invalid input for field/attribute visibility. Value: {vis}. '{vis}' is not one \
                 of ['public', 'private', 'community', 'shared']"
            )));
        }
        (vis, bool_field(&m, "protected")?.unwrap_or(false))
    } else {
        ("private".to_string(), false)
    };
    let id = v.id.clone();
    let (vol, back_to) = work::write(svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            let ok = v.status == "available" || (force && v.status == "in-use");
            if !ok {
                let want = if force {
                    "available or in-use"
                } else {
                    "available"
                };
                return Ok(Err(CinderError::invalid_volume(format!(
                    "Volume {id} status must be {want}, but current status is: {}.",
                    v.status
                ))));
            }
            let back_to = v.status.clone();
            v.status = "uploading".into();
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok((v, back_to)))
        })
    })
    .await?;
    let properties: Map<String, Value> = vol
        .image_metadata
        .iter()
        .filter(|(k, _)| !CORE_IMAGE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec = NewImage {
        name: image_name.clone(),
        disk_format: disk_format.clone(),
        container_format: container_format.clone(),
        visibility: visibility.clone(),
        protected,
        properties,
    };
    let img = match svc.images().create(&auth.0, spec).await {
        Ok(img) => img,
        Err(e) => {
            let b2 = back_to.clone();
            let _ = work::update_volume(svc, &vol.id, move |v| {
                if v.status == "uploading" {
                    v.status = b2.clone();
                }
                Ok(())
            })
            .await;
            return Err(e.into());
        }
    };
    svc.spawn(work::upload(
        svc.clone(),
        vol.id.clone(),
        img.id.clone(),
        disk_format.clone(),
        back_to,
    ))
    .await;
    let vtype = db::get_type(svc.store(), &vol.volume_type_id).await?;
    let mut out = json!({
        "id": vol.id,
        "updated_at": views::ts(vol.updated_at),
        "status": "uploading",
        "display_description": vol.description,
        "size": vol.size,
        "volume_type": vtype.map(|t| json!({
            "id": t.id,
            "name": t.name,
            "description": t.description,
            "is_public": t.is_public,
            "extra_specs": t.extra_specs,
            "qos_specs_id": null,
            "created_at": views::ts(t.created_at),
            "updated_at": views::ts(t.updated_at),
            "deleted": false,
            "deleted_at": null,
        })),
        "image_id": img.id,
        "container_format": container_format,
        "disk_format": disk_format,
        "image_name": image_name,
    });
    if mv.at_least(1) {
        out["visibility"] = json!(visibility);
        out["protected"] = json!(protected);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"os-volume_upload_image": out})),
    )
        .into_response())
}

/// `os-reset_status` (admin): `status`, `attach_status`, `migration_status`; resetting
/// `attach_status` to `detached` drops every attachment.
async fn volume_action_reset_status(
    svc: &VolumeService,
    auth: &Auth,
    v: &Volume,
    arg: &Value,
) -> CinderResult<Response> {
    admin(auth, "volume_extension:volume_admin_actions:reset_status")?;
    let m = object("os-reset_status", arg)?;
    let status = match m.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let s = s.to_ascii_lowercase();
            if !VOLUME_STATUSES.contains(&s.as_str())
                && !matches!(s.as_str(), "managing" | "error_managing")
            {
                return Err(CinderError::bad_request("Must specify a valid status"));
            }
            Some(s)
        }
        Some(_) => return Err(CinderError::bad_request("Must specify a valid status")),
    };
    let attach_status = match m.get("attach_status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if matches!(s.to_ascii_lowercase().as_str(), "attached" | "detached") =>
        {
            Some(s.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(CinderError::bad_request(
                "Must specify a valid attach status",
            ))
        }
    };
    let migration_status = match m.get("migration_status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if matches!(
                s.to_ascii_lowercase().as_str(),
                "migrating" | "error" | "success" | "completing" | "none" | "starting"
            ) =>
        {
            let s = s.to_ascii_lowercase();
            Some(if s == "none" { None } else { Some(s) })
        }
        Some(_) => {
            return Err(CinderError::bad_request(
                "Must specify a valid migration status",
            ))
        }
    };
    if status.is_none() && attach_status.is_none() && migration_status.is_none() {
        return Err(CinderError::bad_request(
            "Must specify 'status', 'attach_status' or 'migration_status' for update.",
        ));
    }
    let id = v.id.clone();
    work::write(svc, move |tx| {
        let (id, status, attach_status, migration_status) = (
            id.clone(),
            status.clone(),
            attach_status.clone(),
            migration_status.clone(),
        );
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            if let Some(s) = status {
                v.status = s;
            }
            if let Some(m) = migration_status {
                v.migration_status = m;
            }
            if let Some(a) = attach_status {
                if a == "detached" {
                    for att in db::attachments_of_tx(tx, &id).await? {
                        db::delete_attachment_row(tx, &att.id).await?;
                    }
                    v.admin_metadata.remove("attached_mode");
                }
                v.attach_status = a;
            }
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    accepted()
}

/// `os-reserve`: available (or in-use when multiattach) → `attaching`.
async fn volume_action_reserve(
    svc: &VolumeService,
    auth: &Auth,
    v: &Volume,
) -> CinderResult<Response> {
    member(auth, "volume_extension:volume_actions:reserve")?;
    work::update_volume(svc, &v.id, |v| {
        let ok = v.status == "available" || (v.multiattach && v.status == "in-use");
        if !ok {
            let want = if v.multiattach {
                "available or in-use"
            } else {
                "available"
            };
            return Err(CinderError::invalid_volume(format!(
                "Volume {} status must be {want} to reserve, but the current status is {}.",
                v.id, v.status
            )));
        }
        v.status = "attaching".into();
        Ok(())
    })
    .await?;
    accepted()
}

/// `os-attach`: records an attachment to a server or a host and marks the volume `in-use`.
async fn volume_action_attach(
    svc: &VolumeService,
    auth: &Auth,
    v: &Volume,
    arg: &Value,
) -> CinderResult<Response> {
    member(auth, "volume_extension:volume_actions:attach")?;
    let name = "os-attach";
    let m = object(name, arg)?;
    let instance = opt_string(&m, "instance_uuid")?;
    let host = opt_string(&m, "host_name")?;
    let Some(mountpoint) = opt_string(&m, "mountpoint")? else {
        return Err(required(name, arg, "mountpoint"));
    };
    if let Some(i) = &instance {
        if !model::is_uuid(i) {
            return Err(CinderError::bad_request(format!(
                "Invalid input for field/attribute instance_uuid. Value: {i}. '{i}' is not a \
                 'uuid'"
            )));
        }
    }
    match (&instance, &host) {
        (Some(i), Some(h)) => {
            return Err(CinderError::bad_request(format!(
                "Invalid request to attach volume to an instance {i} and a host {h} \
                 simultaneously"
            )))
        }
        (None, None) => {
            return Err(CinderError::bad_request(
                "Invalid request to attach volume to an invalid target",
            ))
        }
        _ => {}
    }
    let mode = opt_string(&m, "mode")?.unwrap_or_else(|| "rw".into());
    if mode != "rw" && mode != "ro" {
        return Err(CinderError::bad_request(
            "Invalid request to attach volume with an invalid mode. Attaching mode should be \
             'rw' or 'ro'",
        ));
    }
    let id = v.id.clone();
    work::write(svc, move |tx| {
        let (id, instance, host, mountpoint, mode) = (
            id.clone(),
            instance.clone(),
            host.clone(),
            mountpoint.clone(),
            mode.clone(),
        );
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            let atts = db::attachments_of_tx(tx, &id).await?;
            let same = atts.iter().find(|a| {
                a.attach_status == "attached"
                    && a.instance_uuid == instance
                    && a.attached_host == host
            });
            if same.is_some() {
                // Attaching again to the same target is a no-op, as in Cinder's manager.
                return Ok(Ok(()));
            }
            match v.status.as_str() {
                "available" | "attaching" | "reserved" => {}
                "in-use" if v.multiattach => {}
                "in-use" => {
                    return Ok(Err(CinderError::invalid_volume(
                        "volume is already attached",
                    )))
                }
                other => {
                    return Ok(Err(CinderError::invalid_volume(format!(
                        "Volume {id} status must be available or attaching to attach, but \
                         current status is: {other}."
                    ))))
                }
            }
            if v.readonly() && mode == "rw" {
                return Ok(Err(CinderError::bad_request(format!(
                    "Invalid attaching mode '{mode}' for volume {id}."
                ))));
            }
            let now = now_micros();
            let att = Attachment {
                id: strata_core::ids::uuid(),
                volume_id: id.clone(),
                instance_uuid: instance,
                attached_host: host,
                mountpoint: Some(mountpoint),
                attach_mode: mode.clone(),
                attach_status: "attached".into(),
                connector: None,
                connection_info: None,
                attached_at: Some(now),
                detached_at: None,
                created_at: now,
                updated_at: now,
            };
            db::put_attachment(tx, &att).await?;
            v.status = "in-use".into();
            v.attach_status = "attached".into();
            v.admin_metadata.insert("attached_mode".into(), json!(mode));
            v.updated_at = now.max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    accepted()
}

/// `os-detach` / `os-force_detach`: removes one attachment (the only one when none is
/// named) and settles the volume's status on what remains.
async fn detach(
    svc: &VolumeService,
    id: &str,
    attachment_id: Option<String>,
    force: bool,
) -> CinderResult<()> {
    let id = id.to_string();
    work::write(svc, move |tx| {
        let (id, attachment_id) = (id.clone(), attachment_id.clone());
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            if !force
                && !matches!(
                    v.status.as_str(),
                    "in-use" | "detaching" | "attaching" | "reserved" | "available" | "error"
                )
            {
                return Ok(Err(CinderError::invalid_volume(format!(
                    "Volume {id} status must be in-use or detaching to detach, but current \
                     status is: {}.",
                    v.status
                ))));
            }
            let atts = db::attachments_of_tx(tx, &id).await?;
            let target = match &attachment_id {
                Some(aid) => match atts.iter().find(|a| &a.id == aid) {
                    Some(a) => Some(a.clone()),
                    None => {
                        return Ok(Err(CinderError::bad_request(format!(
                            "Volume attachment could not be found with filter: \
                             attachment_id = {aid}."
                        ))))
                    }
                },
                None if atts.len() > 1 => {
                    return Ok(Err(CinderError::invalid_volume(
                        "Detach volume failed: More than one attachment, but no attachment_id \
                         provided.",
                    )))
                }
                None => atts.first().cloned(),
            };
            let remaining: Vec<Attachment> = match &target {
                Some(t) => {
                    db::delete_attachment_row(tx, &t.id).await?;
                    atts.into_iter().filter(|a| a.id != t.id).collect()
                }
                None => Vec::new(),
            };
            settle(&mut v, &remaining);
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(()))
        })
    })
    .await
}

/// `os-retype`: every type lives on the one backend, so a retype only moves the volume (and
/// its per-type quota usage) to the new type.
async fn volume_action_retype(
    svc: &VolumeService,
    auth: &Auth,
    v: &Volume,
    arg: &Value,
) -> CinderResult<Response> {
    member(auth, "volume:retype")?;
    let m = object("os-retype", arg)?;
    let Some(new_type) = opt_string(&m, "new_type")? else {
        return Err(CinderError::bad_request(
            "New volume type must be specified.",
        ));
    };
    match opt_string(&m, "migration_policy")?.as_deref() {
        None | Some("never") | Some("on-demand") => {}
        Some(other) => {
            return Err(CinderError::invalid_input(format!(
                "Invalid migration policy '{other}'."
            )))
        }
    }
    let t = volumes::find_type(svc, auth, &new_type).await?;
    let cfg = svc.config().clone();
    let id = v.id.clone();
    work::write(svc, move |tx| {
        let (id, t, cfg) = (id.clone(), t.clone(), cfg.clone());
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            if !matches!(v.status.as_str(), "available" | "in-use") {
                return Ok(Err(CinderError::invalid_volume(format!(
                    "Volume {id} status must be available or in-use, but current status is: \
                     {}.",
                    v.status
                ))));
            }
            if v.volume_type_id == t.id {
                return Ok(Err(CinderError::invalid_input(
                    "Retype requires a different volume type.",
                )));
            }
            let overrides = db::quota_overrides_tx(tx, &v.project_id).await?;
            let usage = db::usage_tx(tx, &v.project_id).await?;
            let used = usage
                .per_type
                .iter()
                .find(|p| p.0 == t.id)
                .cloned()
                .unwrap_or_default();
            for (resource, want, used) in [
                (format!("volumes_{}", t.name), 1, used.1),
                (format!("gigabytes_{}", t.name), v.size, used.3),
            ] {
                let lim = work::limit(&cfg, &overrides, &resource);
                if lim >= 0 && used + want > lim {
                    return Ok(Err(CinderError::over_quota(format!(
                        "Quota exceeded for resources: ['{resource}']"
                    ))));
                }
            }
            v.volume_type_id = t.id.clone();
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    accepted()
}
