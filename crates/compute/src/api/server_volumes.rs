//! Volumes of servers: `os-volume_attachments` (list, show, attach, update, detach) and the
//! volume block device mappings of server create (`block_device_mapping_v2` with a volume
//! destination, boot from volume).
//!
//! Attach checks what Nova checks before answering (the body's schema per microversion, the
//! server visible, policy, the lock, the server's state, the volume visible and not already
//! attached), then reserves the volume in the volume service (an attachment with the host's
//! connector) and records the mapping on the server in one store write that starts the
//! `attach_volume` action; the host's agent and the controller finish it
//! (`crate::volumes`). Detach begins detaching in the volume service and marks the mapping;
//! the agent and the controller finish it. Device names are Nova's (`/dev/vdb`, … after the
//! root disk and the flavor's ephemeral disk and swap); a requested one is not honoured, as
//! with Nova's libvirt driver.

use super::server_meta::limited;
use super::servers::{check_lock, find, image_properties, invalid_state, mutate_with};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::schema::{self, fail, repr};
use crate::server::{bdm, vm, Bdm, Server};
use crate::version::Microversion;
use crate::volumes::{self, ATTACH_EVENT, DETACH_EVENT};
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use strata_api::inproc::Answer;
use strata_api::RequestId;
use strata_core::time::now_micros;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route(
            "/servers/{id}/os-volume_attachments",
            get(attachment_index).post(attachment_create),
        )
        .route(
            "/servers/{id}/os-volume_attachments/{volume_id}",
            get(attachment_show)
                .put(attachment_update)
                .delete(attachment_delete),
        )
}

// ------------------------------------------------------------------ shared pieces

/// The device pattern of Nova's attach schema (`block_device.match_device`).
const DEVICE_PATTERN: &str = r"(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$";

fn uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// A string field in `uuid` format.
fn uuid_field(v: &Value, field: &str) -> NovaResult<String> {
    match v.as_str() {
        Some(s) if uuid_like(s) => Ok(s.to_string()),
        Some(_) => Err(fail(Some(field), v, format!("{} is not a 'uuid'", repr(v)))),
        None => Err(fail(
            Some(field),
            v,
            format!("{} is not of type 'string'", repr(v)),
        )),
    }
}

/// Nova's `parameter_types.tag`.
fn tag_field(v: &Value) -> NovaResult<String> {
    let s = schema::string(v, "tag", 0, 60)?;
    if s.contains('/') || s.contains(',') {
        return Err(fail(
            Some("tag"),
            v,
            format!("{} does not match '^[^,/]*$'", repr(v)),
        ));
    }
    Ok(s.to_string())
}

/// Nova's `parameter_types.boolean` (booleans and their usual spellings).
fn bool_field(v: &Value, field: &str) -> NovaResult<bool> {
    schema::boolean(v, field)
}

/// An attachment as Nova's `_translate_attachment_detail_view` shows it.
fn view(s: &Server, b: &Bdm, mv: Microversion) -> Value {
    let mut m = Map::new();
    if !mv.at_least(89) {
        m.insert("id".into(), json!(b.volume_id));
    }
    m.insert("volumeId".into(), json!(b.volume_id));
    m.insert("serverId".into(), json!(s.id));
    if !b.device.is_empty() {
        m.insert("device".into(), json!(b.device));
    }
    if mv.at_least(70) {
        m.insert("tag".into(), json!(b.tag));
    }
    if mv.at_least(79) {
        m.insert(
            "delete_on_termination".into(),
            json!(b.delete_on_termination),
        );
    }
    if mv.at_least(89) {
        m.insert("attachment_id".into(), json!(b.attachment_id));
        m.insert("bdm_uuid".into(), json!(b.uuid));
    }
    Value::Object(m)
}

/// What the server view's `os-extended-volumes:volumes_attached` lists.
pub fn volumes_attached(s: &Server, mv: Microversion) -> Value {
    json!(s
        .bdms
        .iter()
        .filter(|b| !b.volume_id.is_empty())
        .map(|b| {
            if mv.at_least(3) {
                json!({"id": b.volume_id, "delete_on_termination": b.delete_on_termination})
            } else {
                json!({ "id": b.volume_id })
            }
        })
        .collect::<Vec<_>>())
}

/// Nova's `VolumeNotFound`.
fn volume_not_found(id: &str) -> NovaError {
    NovaError::not_found(format!("Volume {id} could not be found."))
}

/// A refusal of the volume service as Nova relays it (`translate_volume_exception`).
fn relay(a: &Answer, volume: &str) -> NovaError {
    match a.status.as_u16() {
        404 => volume_not_found(volume),
        400 => NovaError::invalid_input(format!("{} (HTTP 400)", a.message())),
        403 => NovaError::forbidden(a.message()),
        413 => NovaError::over_quota(a.message()),
        _ => NovaError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The volume service failed: {}", a.message()),
        ),
    }
}

fn no_volume_service() -> NovaError {
    NovaError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "The volume service is not available.",
    )
}

/// The volume `id` as the caller sees it (404 when it cannot).
async fn get_volume(svc: &ComputeService, auth: &Auth, id: &str) -> NovaResult<Value> {
    let a = svc
        .cinder(auth.0.clone(), Method::GET, &format!("/volumes/{id}"), None)
        .await
        .ok_or_else(no_volume_service)?;
    if !a.ok() {
        return Err(relay(&a, id));
    }
    Ok(a.body["volume"].clone())
}

/// Nova's `check_instance_state` of the volume actions: one of their vm states, no task.
fn check_state(s: &Server, action: &str) -> NovaResult<()> {
    if !volumes::attachable_state(&s.vm_state) {
        return Err(invalid_state(s, "vm_state", action));
    }
    if s.task_state.is_some() {
        return Err(invalid_state(s, "task_state", action));
    }
    Ok(())
}

/// Before 2.20 a shelved server refuses volume changes (`_check_request_version`).
fn check_shelved(s: &Server, mv: Microversion, action: &str) -> NovaResult<()> {
    if matches!(s.vm_state.as_str(), vm::SHELVED | vm::SHELVED_OFFLOADED) && !mv.at_least(20) {
        return Err(invalid_state(s, "vm_state", action));
    }
    Ok(())
}

fn not_attached(server: &str, volume: &str) -> NovaError {
    NovaError::not_found(format!(
        "Instance {server} is not attached to volume {volume}"
    ))
}

fn request_id(rid: Option<Extension<RequestId>>) -> String {
    rid.map(|Extension(r)| r.0)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()))
}

// ------------------------------------------------------------------ list, show

const INDEX_PARAMS: &[&str] = &["limit", "offset"];

/// `GET /servers/{id}/os-volume_attachments` (`limit`, `offset`).
pub async fn attachment_index(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, INDEX_PARAMS)?;
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(&s.project_id, "os_compute_api:os-volumes-attachments:index")?;
    let list: Vec<Bdm> = s
        .bdms
        .iter()
        .filter(|b| !b.volume_id.is_empty())
        .cloned()
        .collect();
    let page = limited(&list, &pairs)?;
    Ok(Json(json!({
        "volumeAttachments": page.iter().map(|b| view(&s, b, mv)).collect::<Vec<_>>()
    })))
}

/// `GET /servers/{id}/os-volume_attachments/{volume_id}`.
pub async fn attachment_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, volume_id)): Path<(String, String)>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(&s.project_id, "os_compute_api:os-volumes-attachments:show")?;
    let b = s
        .bdms
        .iter()
        .find(|b| b.volume_id == volume_id)
        .ok_or_else(|| not_attached(&id, &volume_id))?;
    Ok(Json(json!({ "volumeAttachment": view(&s, b, mv) })))
}

// ------------------------------------------------------------------ attach

struct AttachReq {
    volume_id: String,
    tag: Option<String>,
    delete_on_termination: bool,
}

fn parse_attach(body: &Value, mv: Microversion) -> NovaResult<AttachReq> {
    let m = schema::envelope(body, "volumeAttachment")?;
    let whole = &body["volumeAttachment"];
    let mut allowed = vec!["volumeId", "device"];
    if mv.at_least(49) {
        allowed.push("tag");
    }
    if mv.at_least(79) {
        allowed.push("delete_on_termination");
    }
    schema::only(m, &allowed, Some("volumeAttachment"), whole)?;
    let volume_id = uuid_field(
        schema::require(m, "volumeId", Some("volumeAttachment"), whole)?,
        "volumeId",
    )?;
    match m.get("device") {
        None | Some(Value::Null) => {}
        Some(v @ Value::String(d)) => {
            let re = regex::Regex::new(DEVICE_PATTERN).expect("pattern");
            if !re.is_match(d) {
                return Err(fail(
                    Some("device"),
                    v,
                    format!("{} does not match '{DEVICE_PATTERN}'", repr(v)),
                ));
            }
        }
        Some(v) => {
            return Err(fail(
                Some("device"),
                v,
                format!("{} is not of type 'string', 'null'", repr(v)),
            ))
        }
    }
    let tag = m.get("tag").map(tag_field).transpose()?;
    let delete_on_termination = m
        .get("delete_on_termination")
        .map(|v| bool_field(v, "delete_on_termination"))
        .transpose()?
        .unwrap_or(false);
    Ok(AttachReq {
        volume_id,
        tag,
        delete_on_termination,
    })
}

/// `POST /servers/{id}/os-volume_attachments`: 200 with the attachment (the attach itself
/// finishes asynchronously).
pub async fn attachment_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    rid: Option<Extension<RequestId>>,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let req = parse_attach(&body, mv)?;
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(
        &s.project_id,
        "os_compute_api:os-volumes-attachments:create",
    )?;
    check_shelved(&s, mv, "attach_volume")?;
    check_lock(&auth, &s)?;
    check_state(&s, "attach_volume")?;
    let vol = get_volume(&svc, &auth, &req.volume_id).await?;
    let vid = req.volume_id.clone();
    if s.bdms.iter().any(|b| b.volume_id == vid) {
        return Err(NovaError::bad_request(format!(
            "Invalid volume: volume {vid} already attached"
        )));
    }
    let others: Vec<String> = vol["attachments"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|a| a["server_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if !vol["multiattach"].as_bool().unwrap_or(false) && !others.is_empty() {
        return Err(NovaError::bad_request(format!(
            "Invalid volume: volume {vid} is already attached to instances: {}",
            others.join(" ")
        )));
    }
    let device = volumes::next_device(&s).ok_or_else(too_many_disks)?;
    // Reserve the volume; with a host, connect it there at once (the connection info is what
    // the host's agent attaches).
    let host = s.host.clone().filter(|_| s.on_host);
    let mut att = json!({"volume_uuid": vid, "instance_uuid": s.id});
    if let Some(h) = &host {
        att["connector"] = volumes::connector(h, &device);
    }
    let a = svc
        .cinder(
            auth.0.clone(),
            Method::POST,
            "/attachments",
            Some(&json!({ "attachment": att })),
        )
        .await
        .ok_or_else(no_volume_service)?;
    if !a.ok() {
        return Err(relay(&a, &vid));
    }
    let attachment_id = a.body["attachment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let b = Bdm {
        uuid: uuid::Uuid::new_v4().to_string(),
        source_type: "volume".into(),
        source_id: None,
        volume_id: vid.clone(),
        attachment_id: Some(attachment_id.clone()),
        device,
        boot_index: None,
        delete_on_termination: req.delete_on_termination,
        tag: req.tag.clone(),
        volume_size: vol["size"].as_i64(),
        volume_type: None,
        guest_format: None,
        disk_bus: None,
        device_type: None,
        state: if host.is_some() {
            bdm::ATTACHING
        } else {
            // No host to attach it on: completed as it is (Nova's shelved-offloaded attach).
            bdm::CONNECTED
        }
        .into(),
        connection_info: host
            .is_some()
            .then(|| a.body["attachment"]["connection_info"].clone()),
        created: false,
        requested_at: now_micros(),
        error: None,
    };
    let admin = auth.admin();
    let record = Some((
        request_id(rid),
        "attach_volume".to_string(),
        auth.user().to_string(),
        ATTACH_EVENT.to_string(),
    ));
    let b2 = b.clone();
    let written = mutate_with(&svc, &id, record, move |n| {
        if n.locked && !admin {
            return Err(NovaError::conflict(format!("Instance {} is locked", n.id)));
        }
        check_state(n, "attach_volume")?;
        if n.bdms.iter().any(|x| x.volume_id == b2.volume_id) {
            return Err(NovaError::bad_request(format!(
                "Invalid volume: volume {} already attached",
                b2.volume_id
            )));
        }
        let mut b = b2.clone();
        // Another attach took the device meanwhile: the next free one.
        if n.bdms.iter().any(|x| x.device == b.device) {
            b.device = volumes::next_device(n).ok_or_else(too_many_disks)?;
        }
        n.bdms.push(b);
        n.generation += 1;
        Ok(())
    })
    .await;
    let s = match written {
        Ok(s) => s,
        Err(e) => {
            // Nothing recorded: the reservation goes.
            let _ = svc
                .cinder(
                    auth.0.clone(),
                    Method::DELETE,
                    &format!("/attachments/{attachment_id}"),
                    None,
                )
                .await;
            return Err(e);
        }
    };
    let b = s
        .bdms
        .iter()
        .find(|x| x.uuid == b.uuid)
        .cloned()
        .unwrap_or(b);
    // Nova's create answer: always `id`, and neither `attachment_id` nor `bdm_uuid`.
    let mut v = json!({"id": b.volume_id, "serverId": s.id, "volumeId": b.volume_id,
        "device": b.device});
    if mv.at_least(70) {
        v["tag"] = json!(b.tag);
    }
    if mv.at_least(79) {
        v["delete_on_termination"] = json!(b.delete_on_termination);
    }
    Ok(Json(json!({ "volumeAttachment": v })))
}

/// Nova's `TooManyDiskDevices` (403).
fn too_many_disks() -> NovaError {
    NovaError::forbidden(
        "The maximum allowed number of disk devices (26) to attach to a single instance has \
         been exceeded.",
    )
}

// ------------------------------------------------------------------ update

/// `PUT /servers/{id}/os-volume_attachments/{volume_id}`: from 2.85 `delete_on_termination`
/// (the other fields may be given but not changed); a different `volumeId` (and anything
/// before 2.85) is a swap, which only the volume service asks for while it migrates a volume
/// — refused, as no volume here migrates. 202.
pub async fn attachment_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, volume_id)): Path<(String, String)>,
    Body(body): Body,
) -> NovaResult<StatusCode> {
    let m = schema::envelope(&body, "volumeAttachment")?;
    let whole = &body["volumeAttachment"];
    let allowed: &[&str] = if mv.at_least(85) {
        &[
            "volumeId",
            "device",
            "tag",
            "delete_on_termination",
            "serverId",
            "id",
        ]
    } else {
        &["volumeId"]
    };
    schema::only(m, allowed, Some("volumeAttachment"), whole)?;
    let new_volume = uuid_field(
        schema::require(m, "volumeId", Some("volumeAttachment"), whole)?,
        "volumeId",
    )?;
    let device = match m.get("device") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(schema::string(v, "device", 0, 255)?.to_string())),
    };
    let tag = match m.get("tag") {
        None => None,
        Some(v) => Some(tag_field(v)?),
    };
    let dot = m
        .get("delete_on_termination")
        .map(|v| bool_field(v, "delete_on_termination"))
        .transpose()?;
    let server_id = m
        .get("serverId")
        .map(|v| uuid_field(v, "serverId"))
        .transpose()?;
    let att_id = m.get("id").map(|v| uuid_field(v, "id")).transpose()?;
    let s = find(&svc, &auth, &id).await?;
    let swap = !mv.at_least(85) || new_volume != volume_id;
    if swap {
        auth.require_admin("os_compute_api:os-volumes-attachments:swap")?;
    } else {
        auth.require_reader_of(
            &s.project_id,
            "os_compute_api:os-volumes-attachments:update",
        )?;
    }
    if mv.at_least(85) {
        let Some(b) = s.bdms.iter().find(|b| b.volume_id == volume_id).cloned() else {
            return Err(NovaError::not_found(format!(
                "No volume Block Device Mapping with id {volume_id}."
            )));
        };
        if att_id.as_ref().is_some_and(|x| *x != volume_id) {
            return Err(NovaError::bad_request("The id property is not mutable"));
        }
        if server_id.as_ref().is_some_and(|x| *x != s.id) {
            return Err(NovaError::bad_request(
                "The serverId property is not mutable",
            ));
        }
        if device
            .as_ref()
            .is_some_and(|d| d.as_deref().unwrap_or("") != b.device)
        {
            return Err(NovaError::bad_request("The device property is not mutable"));
        }
        if tag.is_some() && tag != b.tag {
            return Err(NovaError::bad_request("The tag property is not mutable"));
        }
        if let Some(dot) = dot {
            let uuid = b.uuid.clone();
            super::servers::mutate(&svc, &id, move |n| {
                if let Some(x) = n.bdms.iter_mut().find(|x| x.uuid == uuid) {
                    x.delete_on_termination = dot;
                }
                Ok(())
            })
            .await?;
        }
    }
    if swap {
        let old = get_volume(&svc, &auth, &volume_id).await?;
        if old["migration_status"]
            .as_str()
            .is_none_or(|m| m.is_empty())
        {
            return Err(NovaError::conflict(format!(
                "volume {volume_id} is not migrating; this API should only be called by Cinder"
            )));
        }
        return Err(NovaError::conflict(
            "Swapping a migrating volume is not supported by this cloud.",
        ));
    }
    Ok(StatusCode::ACCEPTED)
}

// ------------------------------------------------------------------ detach

/// `DELETE /servers/{id}/os-volume_attachments/{volume_id}`: 202; the host's agent detaches
/// the volume and the controller removes the attachment.
pub async fn attachment_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    rid: Option<Extension<RequestId>>,
    Path((id, volume_id)): Path<(String, String)>,
) -> NovaResult<StatusCode> {
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(
        &s.project_id,
        "os_compute_api:os-volumes-attachments:delete",
    )?;
    check_shelved(&s, mv, "detach_volume")?;
    get_volume(&svc, &auth, &volume_id).await?;
    let Some(b) = s.bdms.iter().find(|b| b.volume_id == volume_id).cloned() else {
        return Err(not_attached(&id, &volume_id));
    };
    if b.is_root() {
        return Err(NovaError::bad_request("Cannot detach a root device volume"));
    }
    check_lock(&auth, &s)?;
    check_state(&s, "detach_volume")?;
    // The host must be there to take the volume away (`check_instance_host(check_is_up)`).
    if let Some(h) = s.host.as_deref().filter(|_| s.on_host) {
        let now = now_micros();
        let up = crate::hosts::services(svc.store())
            .await?
            .iter()
            .any(|x| x.host == h && svc.service_up(x, now));
        if !up {
            return Err(NovaError::conflict("Service is unavailable at this time."));
        }
    }
    let a = svc
        .cinder(
            auth.0.clone(),
            Method::POST,
            &format!("/volumes/{volume_id}/action"),
            Some(&json!({"os-begin_detaching": {}})),
        )
        .await
        .ok_or_else(no_volume_service)?;
    if !a.ok() {
        return Err(match a.status.as_u16() {
            400 => NovaError::bad_request(format!(
                "Invalid volume: Invalid input received: {} (HTTP 400)",
                a.message()
            )),
            _ => relay(&a, &volume_id),
        });
    }
    let admin = auth.admin();
    let record = Some((
        request_id(rid),
        "detach_volume".to_string(),
        auth.user().to_string(),
        DETACH_EVENT.to_string(),
    ));
    let uuid = b.uuid.clone();
    let written = mutate_with(&svc, &id, record, move |n| {
        if n.locked && !admin {
            return Err(NovaError::conflict(format!("Instance {} is locked", n.id)));
        }
        check_state(n, "detach_volume")?;
        let on_host = n.on_host;
        let Some(x) = n.bdms.iter_mut().find(|x| x.uuid == uuid) else {
            return Err(not_attached(&n.id, "the volume"));
        };
        if x.state != bdm::ATTACHED {
            return Err(NovaError::bad_request(format!(
                "Invalid volume: volume {} is {}, not attached",
                x.volume_id, x.state
            )));
        }
        x.state = if on_host {
            bdm::DETACHING
        } else {
            bdm::DETACHED
        }
        .into();
        n.generation += 1;
        Ok(())
    })
    .await;
    if let Err(e) = written {
        let _ = svc
            .cinder(
                auth.0.clone(),
                Method::POST,
                &format!("/volumes/{volume_id}/action"),
                Some(&json!({"os-roll_detaching": {}})),
            )
            .await;
        return Err(e);
    }
    Ok(StatusCode::ACCEPTED)
}

// ------------------------------------------------------------------ create's mappings

/// The volume mappings a create request asks for, checked as Nova's schema and
/// `BlockDeviceDict.from_api` check them (local ones — the image root, blank ephemerals — are
/// validated and left out).
pub struct Requested {
    pub bdms: Vec<Bdm>,
    /// A volume mapping is the root disk.
    pub boot_volume: bool,
}

const BDM_KEYS: &[&str] = &[
    "virtual_name",
    "volume_id",
    "snapshot_id",
    "volume_size",
    "device_name",
    "delete_on_termination",
    "no_device",
    "connection_info",
    "source_type",
    "uuid",
    "image_id",
    "destination_type",
    "guest_format",
    "device_type",
    "disk_bus",
    "boot_index",
];

fn invalid_bdm(details: &str) -> NovaError {
    NovaError::bad_request(format!("Block Device Mapping is Invalid: {details}"))
}

fn opt_string(
    o: &Map<String, Value>,
    key: &str,
    min: usize,
    max: usize,
) -> NovaResult<Option<String>> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => Ok(Some(schema::string(v, key, min, max)?.to_string())),
    }
}

/// Nova's `parameter_types.non_negative_integer`.
fn non_negative(v: &Value, field: &str) -> NovaResult<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Value::String(_) => {
            return Err(fail(
                Some(field),
                v,
                format!("{} does not match '^[0-9]*$'", repr(v)),
            ))
        }
        _ => None,
    };
    match n {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(fail(
            Some(field),
            v,
            format!("{n} is less than the minimum of 0"),
        )),
        None => Err(fail(
            Some(field),
            v,
            format!("{} is not of type 'integer', 'string'", repr(v)),
        )),
    }
}

/// Parses `block_device_mapping_v2` (`image_given`: the request has an `imageRef`).
pub fn parse_bdm_v2(v: &Value, mv: Microversion, image_given: bool) -> NovaResult<Requested> {
    let field = "block_device_mapping_v2";
    let arr = v.as_array().ok_or_else(|| {
        fail(
            Some(field),
            v,
            format!("{} is not of type 'array'", repr(v)),
        )
    })?;
    let mut keys: Vec<&str> = BDM_KEYS.to_vec();
    if mv.0 == 32 || mv.at_least(42) {
        keys.push("tag");
    }
    if mv.at_least(67) {
        keys.push("volume_type");
    }
    let mut out = Vec::new();
    let mut boot_indexes: Vec<i64> = Vec::new();
    for item in arr {
        let o = schema::object(item, Some(field))?;
        schema::only(o, &keys, Some(field), item)?;
        let source = match o.get("source_type") {
            None => None,
            Some(Value::String(s))
                if ["volume", "image", "snapshot", "blank"].contains(&s.as_str()) =>
            {
                Some(s.clone())
            }
            Some(x) => {
                return Err(fail(
                    Some("source_type"),
                    x,
                    format!(
                        "{} is not one of ['volume', 'image', 'snapshot', 'blank']",
                        repr(x)
                    ),
                ))
            }
        };
        let uuid = match o.get("uuid") {
            None => None,
            Some(x) => {
                let s = schema::string(x, "uuid", 1, 255)?;
                if !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                {
                    return Err(fail(
                        Some("uuid"),
                        x,
                        format!("{} does not match '^[a-zA-Z0-9._-]*$'", repr(x)),
                    ));
                }
                Some(s.to_string())
            }
        };
        for k in ["image_id", "volume_id", "snapshot_id"] {
            if let Some(x) = o.get(k) {
                uuid_field(x, k)?;
            }
        }
        let dest = match o.get("destination_type") {
            None => None,
            Some(Value::String(s)) if s == "local" || s == "volume" => Some(s.clone()),
            Some(x) => {
                return Err(fail(
                    Some("destination_type"),
                    x,
                    format!("{} is not one of ['local', 'volume']", repr(x)),
                ))
            }
        };
        let guest_format = opt_string(o, "guest_format", 0, 255)?;
        let device_type = opt_string(o, "device_type", 0, 255)?;
        let disk_bus = opt_string(o, "disk_bus", 0, 255)?;
        opt_string(o, "virtual_name", 0, 255)?;
        opt_string(o, "connection_info", 0, 16_777_215)?;
        let boot_index = match o.get("boot_index") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
            Some(x @ Value::String(s)) => match s.parse::<i64>() {
                Ok(n) if !s.starts_with('+') => Some(n),
                _ => {
                    return Err(fail(
                        Some("boot_index"),
                        x,
                        format!("{} does not match '^-?[0-9]+$'", repr(x)),
                    ))
                }
            },
            Some(x) => {
                return Err(fail(
                    Some("boot_index"),
                    x,
                    format!("{} is not of type 'integer', 'string'", repr(x)),
                ))
            }
        };
        let volume_size = o
            .get("volume_size")
            .filter(|v| !v.is_null())
            .map(|v| non_negative(v, "volume_size"))
            .transpose()?;
        let device_name = match o.get("device_name") {
            None => None,
            Some(x) => {
                let s = schema::string(x, "device_name", 1, 255)?;
                // `_-r` is a range in Nova's pattern: `_`, a backtick and `a`-`r`.
                let ok = s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '`' | '/'));
                if !ok {
                    return Err(fail(
                        Some("device_name"),
                        x,
                        format!("{} does not match '^[a-zA-Z0-9._-r/]*$'", repr(x)),
                    ));
                }
                Some(s.to_string())
            }
        };
        let delete_on_termination = o
            .get("delete_on_termination")
            .map(|v| bool_field(v, "delete_on_termination"))
            .transpose()?
            .unwrap_or(false);
        let tag = o.get("tag").map(tag_field).transpose()?;
        let volume_type = match o.get("volume_type") {
            None | Some(Value::Null) => None,
            Some(x) => Some(schema::string(x, "volume_type", 0, 255)?.to_string()),
        };
        // `BlockDeviceDict.from_api`.
        if o.get("no_device").is_some_and(|v| {
            !matches!(v, Value::Null | Value::Bool(false))
                && v.as_str() != Some("")
                && v.as_i64() != Some(0)
        }) {
            continue;
        }
        let Some(source) = source else {
            return Err(invalid_bdm("Some required fields are missing"));
        };
        if source == "blank" && uuid.is_some() {
            return Err(invalid_bdm("Invalid device UUID."));
        }
        if source != "blank" && uuid.is_none() {
            return Err(invalid_bdm("Missing device UUID."));
        }
        let dest = dest.unwrap_or_else(|| {
            if source == "volume" || source == "snapshot" {
                "volume".into()
            } else {
                "local".into()
            }
        });
        if source == "image" && dest == "local" && !(image_given && boot_index.unwrap_or(-1) == 0) {
            return Err(invalid_bdm("Mapping image to local is not supported."));
        }
        if dest == "local" && volume_type.is_some() {
            return Err(invalid_bdm(
                "Specifying a volume_type with destination_type=local is not supported.",
            ));
        }
        if source == "volume" && volume_type.is_some() {
            return Err(invalid_bdm(
                "Specifying volume type to existing volume is not supported.",
            ));
        }
        if dest == "local" && (source == "volume" || source == "snapshot") {
            return Err(invalid_bdm(&format!(
                "Mapping a {source} to a local disk is not supported."
            )));
        }
        if let Some(b) = disk_bus.as_deref() {
            const BUSES: &[&str] = &[
                "fdc", "ide", "sata", "scsi", "usb", "virtio", "xen", "lxc", "uml",
            ];
            if !BUSES.contains(&b) {
                return Err(NovaError::bad_request("Block Device Mapping is Invalid."));
            }
        }
        if let Some(i) = boot_index.filter(|i| *i >= 0) {
            boot_indexes.push(i);
        }
        if dest == "local" {
            continue;
        }
        if source == "image" && volume_size.unwrap_or(0) == 0 {
            return Err(NovaError::bad_request(
                "Images with destination_type 'volume' need to have a non-zero size specified",
            ));
        }
        if source == "blank" && volume_size.unwrap_or(0) == 0 {
            return Err(NovaError::bad_request(
                "Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size",
            ));
        }
        let uuid = uuid.unwrap_or_default();
        out.push(Bdm {
            uuid: uuid::Uuid::new_v4().to_string(),
            source_type: source.clone(),
            source_id: (source == "image" || source == "snapshot").then(|| uuid.clone()),
            volume_id: if source == "volume" {
                uuid
            } else {
                String::new()
            },
            attachment_id: None,
            device: device_name
                .map(|d| format!("/dev/{}", d.trim_start_matches("/dev/")))
                .unwrap_or_default(),
            boot_index,
            delete_on_termination,
            tag,
            volume_size: volume_size.filter(|n| *n > 0),
            volume_type,
            guest_format,
            disk_bus,
            device_type,
            state: bdm::PENDING.into(),
            connection_info: None,
            created: false,
            requested_at: 0,
            error: None,
        });
    }
    // The image, when given and no mapping is the root, is boot index 0.
    if image_given && !boot_indexes.contains(&0) {
        boot_indexes.push(0);
    }
    boot_indexes.sort_unstable();
    if boot_indexes.is_empty() || boot_indexes.iter().enumerate().any(|(i, b)| *b != i as i64) {
        return Err(invalid_bdm(
            "Boot sequence for the instance and image/block device mapping combination is \
             not valid.",
        ));
    }
    let boot_volume = out.iter().any(Bdm::is_root);
    Ok(Requested {
        bdms: out,
        boot_volume,
    })
}

/// Checks the mappings against the volume and image services as the caller (what Nova's
/// `_validate_bdm` checks), fills in the sizes of existing volumes and snapshots and names
/// the devices. Returns the image properties of a volume root (for the scheduler).
pub async fn check_bdms(
    svc: &ComputeService,
    auth: &Auth,
    bdms: &mut [Bdm],
    max_count: i64,
    flavor: &crate::model::Flavor,
) -> NovaResult<Option<BTreeMap<String, String>>> {
    if bdms.is_empty() {
        return Ok(None);
    }
    if max_count > 1 && bdms.iter().any(|b| b.source_type == "volume") {
        return Err(NovaError::bad_request(
            "Cannot attach one or more volumes to multiple instances",
        ));
    }
    if svc.0.peers.volume.is_none() {
        return Err(NovaError::bad_request(
            "Block Device Mapping is Invalid: no volume service.",
        ));
    }
    let ctx = auth.0.clone();
    let mut root_props = None;
    let mut types: Option<Vec<Value>> = None;
    for b in bdms.iter_mut() {
        if let Some(t) = &b.volume_type {
            if types.is_none() {
                let a = svc.cinder(ctx.clone(), Method::GET, "/types", None).await;
                types = Some(
                    a.map(|a| {
                        a.body["volume_types"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .unwrap_or_default(),
                );
            }
            let known = types.iter().flatten().any(|x| {
                x["name"].as_str() == Some(t.as_str()) || x["id"].as_str() == Some(t.as_str())
            });
            if !known {
                return Err(NovaError::bad_request(format!(
                    "Volume type {t} could not be found."
                )));
            }
        }
        let id = b.source_id.clone().unwrap_or_else(|| b.volume_id.clone());
        match b.source_type.as_str() {
            "volume" => {
                let a = svc
                    .cinder(ctx.clone(), Method::GET, &format!("/volumes/{id}"), None)
                    .await;
                let Some(v) = a.filter(|a| a.ok()).map(|a| a.body["volume"].clone()) else {
                    return Err(invalid_bdm(&format!("failed to get volume {id}.")));
                };
                let status = v["status"].as_str().unwrap_or_default();
                let multi = v["multiattach"].as_bool().unwrap_or(false);
                if status != "available" && !(multi && status == "in-use") {
                    return Err(NovaError::bad_request(format!(
                        "Invalid volume: Volume {id} status must be available or downloading \
                         to reserve, but the current status is {status}."
                    )));
                }
                b.volume_size = v["size"].as_i64();
                if b.is_root() {
                    let bootable = match &v["bootable"] {
                        Value::Bool(x) => *x,
                        Value::String(x) => schema::bool_from_string(x).unwrap_or(true),
                        _ => true,
                    };
                    if !bootable {
                        return Err(NovaError::bad_request(format!(
                            "Block Device {id} is not bootable."
                        )));
                    }
                    root_props = Some(
                        v["volume_image_metadata"]
                            .as_object()
                            .map(|m| {
                                m.iter()
                                    .filter_map(|(k, x)| {
                                        x.as_str().map(|x| (k.clone(), x.to_string()))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    );
                }
            }
            "snapshot" => {
                let a = svc
                    .cinder(ctx.clone(), Method::GET, &format!("/snapshots/{id}"), None)
                    .await;
                let Some(snap) = a.filter(|a| a.ok()).map(|a| a.body["snapshot"].clone()) else {
                    return Err(invalid_bdm(&format!("failed to get snapshot {id}.")));
                };
                if b.volume_size.is_none() {
                    b.volume_size = snap["size"].as_i64();
                }
            }
            "image" => {
                let a = svc
                    .glance(ctx.clone(), Method::GET, &format!("/images/{id}"), None)
                    .await;
                let Some(img) = a.filter(|a| a.ok()).map(|a| a.body) else {
                    return Err(invalid_bdm(&format!("failed to get image {id}.")));
                };
                if b.is_root() {
                    if img["status"].as_str() != Some("active") {
                        return Err(NovaError::bad_request(format!("Image {id} is not active.")));
                    }
                    if flavor.memory_mb < img["min_ram"].as_i64().unwrap_or(0) {
                        return Err(NovaError::bad_request(
                            "Flavor's memory is too small for requested image.",
                        ));
                    }
                    let min_disk = img["min_disk"].as_i64().unwrap_or(0) << 30;
                    let size = b.volume_size.unwrap_or(0) << 30;
                    if min_disk > size {
                        return Err(NovaError::bad_request(format!(
                            "Volume is smaller than the minimum size specified in image \
                             metadata. Volume size is {size} bytes, minimum size is {min_disk} \
                             bytes."
                        )));
                    }
                    root_props = Some(image_properties(&img));
                }
            }
            _ => {}
        }
    }
    // Device names: the root volume is vda; names asked for are kept when free; the others
    // get the next free ones.
    let boot_volume = bdms.iter().any(Bdm::is_root);
    let mut used = volumes::taken_letters(!boot_volume, flavor.ephemeral_gb, flavor.swap, &[]);
    for b in bdms.iter_mut() {
        if b.is_root() {
            b.device = "/dev/vda".into();
            used.push('a');
        }
    }
    for b in bdms
        .iter_mut()
        .filter(|b| !b.is_root() && !b.device.is_empty())
    {
        let letter = b
            .device
            .trim_start_matches("/dev/")
            .strip_prefix("vd")
            .and_then(|l| l.chars().next().filter(|_| l.len() == 1));
        if letter == Some('a') && !boot_volume {
            return Err(NovaError::bad_request(
                "The volume cannot be assigned the same device name as the root device vda",
            ));
        }
        match letter {
            Some(l) if !used.contains(&l) => used.push(l),
            _ => b.device.clear(),
        }
    }
    for b in bdms.iter_mut().filter(|b| b.device.is_empty()) {
        b.device = volumes::free_device(&used).ok_or_else(too_many_disks)?;
        if let Some(l) = b.device.chars().last() {
            used.push(l);
        }
    }
    Ok(root_props)
}
