//! `/v3/{project_id}/attachments` (3.27; `os-complete` from 3.44): the attachment flow Nova
//! uses today. Create reserves the volume (`reserved`, or `attaching` with a connector and its
//! connection info), update hands over the connector, `os-complete` marks it attached and the
//! volume `in-use`, delete detaches and settles the volume on what remains. Each step re-reads
//! the volume inside its write, so a volume that allows one attachment never gets two.

use super::actions::action_of;
use super::views::{self, list_params, page, SortVal};
use crate::db;
use crate::error::{CinderError, CinderResult};
use crate::extract::{Auth, Body, Mv};
use crate::model::{self, Attachment, Volume};
use crate::version::Microversion;
use crate::work;
use crate::VolumeService;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use strata_core::time::now_micros;

pub fn routes() -> Router<VolumeService> {
    Router::new()
        .route("/attachments", get(attachment_list).post(attachment_create))
        .route("/attachments/detail", get(attachment_list_detail))
        .route(
            "/attachments/{attachment_id}",
            get(attachment_show)
                .put(attachment_update)
                .delete(attachment_delete),
        )
        .route(
            "/attachments/{attachment_id}/action",
            post(attachment_action),
        )
}

/// The connection info of `v`'s data for a client attaching in `mode` (`access_mode`, as
/// Cinder's manager adds it).
pub fn connection_info(svc: &VolumeService, v: &Volume, mode: &str) -> CinderResult<Value> {
    let Some(b) = svc.backend() else {
        return Err(CinderError::invalid_volume(
            "No volume backend is configured; the volume has no data to connect to.",
        ));
    };
    let Some(handle) = &v.provider_location else {
        return Err(CinderError::invalid_volume(format!(
            "Volume {} has no data to connect to (status {}).",
            v.id, v.status
        )));
    };
    let mut info = b.connection_info(handle);
    if let Some(data) = info.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("access_mode".into(), json!(mode));
        data.entry("encrypted").or_insert(json!(false));
        data.entry("qos_specs").or_insert(Value::Null);
        data.insert("volume_id".into(), json!(v.id));
    }
    Ok(info)
}

/// Sets the volume's status from the attachments it still has, most advanced first
/// (attached > attaching > detaching > reserved), `available` when none is left.
pub fn settle(v: &mut Volume, remaining: &[Attachment]) {
    let has = |s: &str| remaining.iter().any(|a| a.attach_status == s);
    let (status, attach) = if has("attached") {
        ("in-use", "attached")
    } else if has("attaching") {
        ("attaching", "attaching")
    } else if has("detaching") {
        ("detaching", "detaching")
    } else if has("reserved") {
        ("reserved", "reserved")
    } else {
        ("available", "detached")
    };
    v.status = status.into();
    v.attach_status = attach.into();
    if !has("attached") {
        v.admin_metadata.remove("attached_mode");
    }
}

/// Cinder's `_normalize` of attachment times: the timestamp, or `""`.
fn time(us: Option<i64>) -> Value {
    us.map(|u| json!(views::ts(u))).unwrap_or_else(|| json!(""))
}

pub fn summary(a: &Attachment) -> Value {
    json!({
        "id": a.id,
        "status": a.attach_status,
        "instance": a.instance_uuid,
        "volume_id": a.volume_id,
    })
}

pub fn detail(a: &Attachment) -> Value {
    let mut o = summary(a);
    let m = o.as_object_mut().expect("object");
    m.insert("attached_at".into(), time(a.attached_at));
    m.insert("detached_at".into(), time(a.detached_at));
    m.insert("attach_mode".into(), json!(a.attach_mode));
    m.insert(
        "connection_info".into(),
        a.connection_info.clone().unwrap_or_else(|| json!({})),
    );
    o
}

fn gate(mv: Microversion, minor: u32) -> CinderResult<()> {
    if mv.at_least(minor) {
        Ok(())
    } else {
        Err(CinderError::not_found("The resource could not be found."))
    }
}

fn attachment_not_found(id: &str) -> CinderError {
    CinderError::not_found(format!(
        "Volume attachment could not be found with filter: attachment_id = {id}."
    ))
}

fn member(auth: &Auth, rule: &str) -> CinderResult<()> {
    if model::can_write(&auth.0) {
        Ok(())
    } else {
        Err(CinderError::policy(rule))
    }
}

/// The attachment `id` if the caller may see its volume; 404 otherwise.
async fn visible(svc: &VolumeService, auth: &Auth, id: &str) -> CinderResult<Attachment> {
    let Some(a) = db::get_attachment(svc.store(), id).await? else {
        return Err(attachment_not_found(id));
    };
    match db::get_volume(svc.store(), &a.volume_id).await? {
        Some(v) if model::owns(&auth.0, &v.project_id) => Ok(a),
        _ => Err(attachment_not_found(id)),
    }
}

/// A required string field of the `attachment` entity.
fn required_str(m: &Map<String, Value>, key: &str, uuid: bool) -> CinderResult<String> {
    match m.get(key) {
        Some(Value::String(s)) if !uuid || model::is_uuid(s) => Ok(s.clone()),
        Some(other) => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {other}. {other} is not a 'uuid'"
        ))),
        None => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute attachment. Value: {}. '{key}' is a required \
             property",
            Value::Object(m.clone())
        ))),
    }
}

fn opt_connector(m: &Map<String, Value>) -> CinderResult<Option<Value>> {
    match m.get("connector") {
        None | Some(Value::Null) => Ok(None),
        Some(c @ Value::Object(_)) => Ok(Some(c.clone())),
        Some(other) => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute connector. Value: {other}. {other} is not of \
             type 'object', 'null'"
        ))),
    }
}

/// The mode a connector asks for, if it names one.
fn connector_mode(c: &Value) -> Option<String> {
    c.get("mode")
        .and_then(Value::as_str)
        .filter(|m| *m == "rw" || *m == "ro")
        .map(str::to_string)
}

/// `POST /attachments`: 200 with the attachment.
pub async fn attachment_create(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    body: Body,
) -> CinderResult<Json<Value>> {
    gate(mv, 27)?;
    member(&auth, "volume:attachment_create")?;
    let m = body.entity("attachment")?.clone();
    let instance = required_str(&m, "instance_uuid", true)?;
    let volume_id = required_str(&m, "volume_uuid", false)?;
    let connector = opt_connector(&m)?;
    let mode = if mv.at_least(54) {
        match m.get("mode") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "rw" || s == "ro" => Some(s.clone()),
            Some(other) => {
                return Err(CinderError::bad_request(format!(
                    "Invalid input for field/attribute mode. Value: {other}. {other} is not \
                     one of ['rw', 'ro']"
                )))
            }
        }
    } else {
        None
    };
    super::volumes::visible(&svc, &auth, &volume_id).await?;
    let s2 = svc.clone();
    // Connection info names the volume's current handle: hold the backend lock shared so
    // a snapshot or clone (exclusive) cannot re-point the volume until this is recorded.
    let _handle_guard = svc.backend_lock().read().await;
    let att = work::write(&svc, move |tx| {
        let (svc, instance, volume_id, connector, mode) = (
            s2.clone(),
            instance.clone(),
            volume_id.clone(),
            connector.clone(),
            mode.clone(),
        );
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &volume_id).await? else {
                return Ok(Err(CinderError::volume_not_found(&volume_id)));
            };
            if v.status.contains("error") {
                return Ok(Err(CinderError::invalid_volume(format!(
                    "Volume attachments can not be created if the volume is in an error \
                     state. The Volume {} currently has a status of: {} ",
                    v.id, v.status
                ))));
            }
            let atts = db::attachments_of_tx(tx, &v.id).await?;
            let reservable = matches!(v.status.as_str(), "available" | "downloading")
                || (v.multiattach && v.status == "in-use");
            // The same server attaching again (a migration) may reserve a second one.
            let again = matches!(v.status.as_str(), "in-use" | "reserved")
                && atts
                    .iter()
                    .any(|a| a.instance_uuid.as_deref() == Some(instance.as_str()));
            if !reservable && !again {
                let want = if v.multiattach {
                    "available or in-use or downloading"
                } else {
                    "available or downloading"
                };
                return Ok(Err(CinderError::invalid_volume(format!(
                    "Volume {} status must be {want} to reserve, but the current status is \
                     {}.",
                    v.id, v.status
                ))));
            }
            let attach_mode = if v.readonly() {
                "ro".to_string()
            } else {
                mode.or_else(|| connector.as_ref().and_then(connector_mode))
                    .unwrap_or_else(|| "rw".into())
            };
            let now = now_micros();
            let mut att = Attachment {
                id: strata_core::ids::uuid(),
                volume_id: v.id.clone(),
                instance_uuid: Some(instance),
                attached_host: None,
                mountpoint: None,
                attach_mode,
                attach_status: "reserved".into(),
                connector: None,
                connection_info: None,
                attached_at: None,
                detached_at: None,
                created_at: now,
                updated_at: now,
            };
            if reservable {
                v.status = "reserved".into();
                v.attach_status = "reserved".into();
            }
            if let Some(c) = connector {
                let info = match connection_info(&svc, &v, &att.attach_mode) {
                    Ok(i) => i,
                    Err(e) => return Ok(Err(e)),
                };
                connect(&mut att, &mut v, c, info);
            }
            db::put_attachment(tx, &att).await?;
            v.updated_at = now.max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(att))
        })
    })
    .await?;
    Ok(Json(json!({"attachment": detail(&att)})))
}

/// Hands `c` to the attachment: `attaching` with its connection info; a reserved volume
/// becomes `attaching` too.
fn connect(att: &mut Attachment, v: &mut Volume, c: Value, info: Value) {
    if let Some(m) = c.get("mountpoint").and_then(Value::as_str) {
        att.mountpoint = Some(m.to_string());
    }
    if let Some(h) = c.get("host").and_then(Value::as_str) {
        att.attached_host = Some(h.to_string());
    }
    att.connector = Some(c);
    att.connection_info = Some(info);
    if att.attach_status != "attached" {
        att.attach_status = "attaching".into();
    }
    att.updated_at = now_micros().max(att.updated_at + 1);
    if v.status == "reserved" {
        v.status = "attaching".into();
        v.attach_status = "attaching".into();
    }
}

/// `PUT /attachments/{id}` with `{"attachment": {"connector": {...}}}`.
pub async fn attachment_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    gate(mv, 27)?;
    let id = p["attachment_id"].clone();
    let a = visible(&svc, &auth, &id).await?;
    member(&auth, "volume:attachment_update")?;
    let m = body.entity("attachment")?.clone();
    let Some(c) = opt_connector(&m)? else {
        return Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute attachment. Value: {}. 'connector' is a \
             required property",
            Value::Object(m)
        )));
    };
    let s2 = svc.clone();
    let volume_id = a.volume_id.clone();
    // Connection info names the volume's current handle: hold the backend lock shared so
    // a snapshot or clone (exclusive) cannot re-point the volume until this is recorded.
    let _handle_guard = svc.backend_lock().read().await;
    let att = work::write(&svc, move |tx| {
        let (svc, id, volume_id, c) = (s2.clone(), id.clone(), volume_id.clone(), c.clone());
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &volume_id).await? else {
                return Ok(Err(attachment_not_found(&id)));
            };
            let atts = db::attachments_of_tx(tx, &volume_id).await?;
            let Some(mut att) = atts.iter().find(|a| a.id == id).cloned() else {
                return Ok(Err(attachment_not_found(&id)));
            };
            if v.status.contains("error") {
                return Ok(Err(CinderError::invalid_volume(format!(
                    "Volume attachments can not be updated if the volume is in an error \
                     state. The Volume {} currently has a status of: {} ",
                    v.id, v.status
                ))));
            }
            if !v.readonly() {
                if let Some(mode) = connector_mode(&c) {
                    att.attach_mode = mode;
                }
            }
            let info = match connection_info(&svc, &v, &att.attach_mode) {
                Ok(i) => i,
                Err(e) => return Ok(Err(e)),
            };
            connect(&mut att, &mut v, c, info);
            db::put_attachment(tx, &att).await?;
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(att))
        })
    })
    .await?;
    Ok(Json(json!({"attachment": detail(&att)})))
}

/// `POST /attachments/{id}/action` with `{"os-complete": …}` (3.44): 204.
pub async fn attachment_action(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Response> {
    gate(mv, 27)?;
    let id = p["attachment_id"].clone();
    let (name, _) = action_of(&body)?;
    if name != "os-complete" {
        return Err(CinderError::bad_request(format!(
            "There is no such action: {name}"
        )));
    }
    gate(mv, 44)?;
    let a = visible(&svc, &auth, &id).await?;
    member(&auth, "volume:attachment_complete")?;
    let volume_id = a.volume_id.clone();
    work::write(&svc, move |tx| {
        let (id, volume_id) = (id.clone(), volume_id.clone());
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &volume_id).await? else {
                return Ok(Err(attachment_not_found(&id)));
            };
            let atts = db::attachments_of_tx(tx, &volume_id).await?;
            let Some(mut att) = atts.iter().find(|a| a.id == id).cloned() else {
                return Ok(Err(attachment_not_found(&id)));
            };
            let now = now_micros();
            if att.attach_status != "attached" {
                att.attach_status = "attached".into();
                att.attached_at = Some(now);
            }
            att.updated_at = now.max(att.updated_at + 1);
            db::put_attachment(tx, &att).await?;
            v.status = "in-use".into();
            v.attach_status = "attached".into();
            v.admin_metadata
                .insert("attached_mode".into(), json!(att.attach_mode));
            v.updated_at = now.max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /attachments/{id}`: 200 with the volume's remaining attachments.
pub async fn attachment_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    gate(mv, 27)?;
    let id = p["attachment_id"].clone();
    let a = visible(&svc, &auth, &id).await?;
    member(&auth, "volume:attachment_delete")?;
    let volume_id = a.volume_id.clone();
    let remaining = work::write(&svc, move |tx| {
        let (id, volume_id) = (id.clone(), volume_id.clone());
        Box::pin(async move {
            let atts = db::attachments_of_tx(tx, &volume_id).await?;
            if !atts.iter().any(|a| a.id == id) {
                return Ok(Err(attachment_not_found(&id)));
            }
            db::delete_attachment_row(tx, &id).await?;
            let remaining: Vec<Attachment> = atts.into_iter().filter(|a| a.id != id).collect();
            if let Some(mut v) = db::get_volume_tx(tx, &volume_id).await? {
                settle(&mut v, &remaining);
                v.updated_at = now_micros().max(v.updated_at + 1);
                db::save_volume(tx, &v).await?;
            }
            Ok(Ok(remaining))
        })
    })
    .await?;
    Ok(Json(json!({
        "attachments": remaining.iter().map(summary).collect::<Vec<_>>()
    })))
}

/// `GET /attachments/{id}`.
pub async fn attachment_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    gate(mv, 27)?;
    let a = visible(&svc, &auth, &p["attachment_id"]).await?;
    Ok(Json(json!({"attachment": detail(&a)})))
}

const SORT_KEYS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "volume_id",
    "instance_uuid",
    "attach_status",
];

fn sort_value(a: &Attachment, key: &str) -> SortVal {
    match key {
        "id" => SortVal::Text(a.id.clone()),
        "created_at" => SortVal::Int(a.created_at),
        "updated_at" => SortVal::Int(a.updated_at),
        "volume_id" => SortVal::Text(a.volume_id.clone()),
        "instance_uuid" => a
            .instance_uuid
            .clone()
            .map(SortVal::Text)
            .unwrap_or(SortVal::Null),
        "attach_status" => SortVal::Text(a.attach_status.clone()),
        _ => SortVal::Null,
    }
}

async fn select(
    svc: &VolumeService,
    auth: &Auth,
    q: &HashMap<String, String>,
) -> CinderResult<Vec<Attachment>> {
    let all = auth.admin() && q.contains_key("all_tenants");
    let project = (!all).then(|| auth.project().to_string());
    let vols: std::collections::HashSet<String> = db::list_volumes(svc.store(), project.as_deref())
        .await?
        .into_iter()
        .map(|v| v.id)
        .collect();
    let mut atts: Vec<Attachment> = db::all_attachments(svc.store())
        .await?
        .into_iter()
        .filter(|a| vols.contains(&a.volume_id))
        .collect();
    for (k, want) in q {
        match k.as_str() {
            "volume_id" => atts.retain(|a| &a.volume_id == want),
            "instance_id" | "instance_uuid" => {
                atts.retain(|a| a.instance_uuid.as_deref() == Some(want.as_str()))
            }
            "status" | "attach_status" => atts.retain(|a| &a.attach_status == want),
            _ => {}
        }
    }
    let p = list_params(q, SORT_KEYS)?;
    page(atts, &p, sort_value, |a| a.id.as_str())
}

/// `GET /attachments`: the summary view.
pub async fn attachment_list(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    gate(mv, 27)?;
    let atts = select(&svc, &auth, &q).await?;
    Ok(Json(json!({
        "attachments": atts.iter().map(summary).collect::<Vec<_>>()
    })))
}

/// `GET /attachments/detail`.
pub async fn attachment_list_detail(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    gate(mv, 27)?;
    let atts = select(&svc, &auth, &q).await?;
    Ok(Json(json!({
        "attachments": atts.iter().map(detail).collect::<Vec<_>>()
    })))
}
