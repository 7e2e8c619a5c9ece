//! `/v3/{project_id}/volumes`: create (blank, from an image, a volume or a snapshot), list
//! and detail with Cinder's filters, sorting and paging, show, update, delete (with
//! `cascade`), and volume metadata.

use super::views::{self, list_params, next_link, page, SortVal};
use crate::db;
use crate::error::{CinderError, CinderResult};
use crate::extract::{Auth, Body, Mv};
use crate::model::{self, Snapshot, Volume, VolumeType, DEFAULT_TYPE_NAME, VOLUME_STATUSES};
use crate::version::Microversion;
use crate::work::{self, Source};
use crate::VolumeService;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use strata_core::time::now_micros;

pub fn routes() -> Router<VolumeService> {
    Router::new()
        .route("/volumes", get(volume_list).post(volume_create))
        .route("/volumes/detail", get(volume_list_detail))
        .route("/volumes/summary", get(volume_summary))
        .route(
            "/volumes/{volume_id}",
            get(volume_show).put(volume_update).delete(volume_delete),
        )
        .route(
            "/volumes/{volume_id}/metadata",
            get(metadata_show)
                .post(metadata_create)
                .put(metadata_replace),
        )
        .route(
            "/volumes/{volume_id}/metadata/{key}",
            get(metadata_item_show)
                .put(metadata_item_update)
                .delete(metadata_item_delete),
        )
}

/// The volume `id` if the caller may see it; Cinder's 404 otherwise.
pub async fn visible(svc: &VolumeService, auth: &Auth, id: &str) -> CinderResult<Volume> {
    match db::get_volume(svc.store(), id).await? {
        Some(v) if model::owns(&auth.0, &v.project_id) => Ok(v),
        _ => Err(CinderError::volume_not_found(id)),
    }
}

/// The detailed view of `v` for the caller.
pub async fn render(
    svc: &VolumeService,
    auth: &Auth,
    mv: Microversion,
    v: &Volume,
) -> CinderResult<Value> {
    let atts = db::attachments_of(svc.store(), &v.id).await?;
    let t = db::get_type(svc.store(), &v.volume_type_id).await?;
    Ok(views::volume(
        svc,
        v,
        &atts,
        t.as_ref().map(|t| t.name.as_str()),
        auth.admin(),
        mv,
    ))
}

/// A volume type by id or name that the caller may use; 404 otherwise.
pub async fn find_type(svc: &VolumeService, auth: &Auth, key: &str) -> CinderResult<VolumeType> {
    let t = match db::get_type(svc.store(), key).await? {
        Some(t) => Some(t),
        None => db::get_type_by_name(svc.store(), key).await?,
    };
    let Some(t) = t else {
        return Err(CinderError::not_found(format!(
            "Volume type with name {key} could not be found."
        )));
    };
    if !t.is_public && !auth.admin() {
        let allowed = db::type_access(svc.store(), &t.id).await?;
        if !allowed.iter().any(|p| p == auth.project()) {
            return Err(CinderError::not_found(format!(
                "Volume type with name {key} could not be found."
            )));
        }
    }
    Ok(t)
}

/// A size as Cinder's schema accepts it: an integer or a string of digits, at least 1.
fn parse_size(v: &Value) -> CinderResult<i64> {
    let bad = || {
        CinderError::invalid_input(format!(
            "Volume size '{}' must be an integer and greater than 0",
            match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
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

/// A string field of at most 255 characters, or null.
pub fn opt_string(m: &Map<String, Value>, key: &str) -> CinderResult<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value is longer than 255 characters."
        ))),
        Some(other) => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {other}. {other} is not of type \
             'string'"
        ))),
    }
}

fn opt_bool(m: &Map<String, Value>, key: &str) -> CinderResult<Option<bool>> {
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

/// oslo's boolean strings and JSON booleans.
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "y" | "t" => Some(true),
            "false" | "0" | "no" | "off" | "n" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `POST /volumes`: 202 with the volume in `creating`.
pub async fn volume_create(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    body: Body,
) -> CinderResult<(StatusCode, Json<Value>)> {
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:create"));
    }
    let m = body.entity("volume")?.clone();
    let name = match opt_string(&m, "name")? {
        Some(n) => Some(n),
        None => opt_string(&m, "display_name")?,
    };
    let description = match opt_string(&m, "description")? {
        Some(d) => Some(d),
        None => opt_string(&m, "display_description")?,
    };
    let metadata = match m.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => views::validate_metadata(v, "metadata")?,
    };
    let az = opt_string(&m, "availability_zone")?;
    if let Some(az) = &az {
        if az != &svc.config().availability_zone {
            return Err(CinderError::invalid_input(format!(
                "Availability zone '{az}' is invalid."
            )));
        }
    }
    let multiattach = opt_bool(&m, "multiattach")?.unwrap_or(false);
    let size = match m.get("size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_size(v)?),
    };
    let snapshot_id = opt_string(&m, "snapshot_id")?;
    let source_volid = opt_string(&m, "source_volid")?;
    let image_ref = match opt_string(&m, "imageRef")? {
        Some(i) => Some(i),
        None => opt_string(&m, "image_id")?,
    };
    if [&snapshot_id, &source_volid, &image_ref]
        .iter()
        .filter(|s| s.is_some())
        .count()
        > 1
    {
        return Err(CinderError::invalid_input(
            "Only one of snapshot_id, source_volid and imageRef may be given.",
        ));
    }
    let mut vtype: Option<VolumeType> = match opt_string(&m, "volume_type")? {
        Some(t) => Some(find_type(&svc, &auth, &t).await?),
        None => None,
    };
    let mut bootable = false;
    let mut image_metadata = Map::new();
    let (size, source) = if let Some(sid) = &snapshot_id {
        let snap: Snapshot = match db::get_snapshot(svc.store(), sid).await? {
            Some(s) if model::owns(&auth.0, &s.project_id) => s,
            _ => return Err(CinderError::snapshot_not_found(sid)),
        };
        if snap.status != "available" {
            return Err(CinderError::invalid_snapshot(
                "Originating snapshot status must be one of 'available' values",
            ));
        }
        let size = size.unwrap_or(snap.size);
        if size < snap.size {
            return Err(CinderError::invalid_input(format!(
                "Volume size '{size}'GB cannot be smaller than the snapshot size {}GB. They must \
                 be >= original snapshot size.",
                snap.size
            )));
        }
        if let Some(src) = db::get_volume(svc.store(), &snap.volume_id).await? {
            bootable = src.bootable;
            image_metadata = src.image_metadata.clone();
            if vtype.is_none() {
                vtype = db::get_type(svc.store(), &src.volume_type_id).await?;
            }
        }
        (size, Source::Snapshot { id: sid.clone() })
    } else if let Some(vid) = &source_volid {
        let src = match db::get_volume(svc.store(), vid).await? {
            Some(v) if model::owns(&auth.0, &v.project_id) => v,
            _ => return Err(CinderError::volume_not_found(vid)),
        };
        if !matches!(src.status.as_str(), "available" | "in-use") {
            return Err(CinderError::invalid_volume(format!(
                "Volume {vid} status must be available or in-use, but current status is: {}.",
                src.status
            )));
        }
        let size = size.unwrap_or(src.size);
        if size < src.size {
            return Err(CinderError::invalid_input(format!(
                "Volume size '{size}'GB cannot be smaller than original volume size {}GB. They \
                 must be >= original volume size.",
                src.size
            )));
        }
        bootable = src.bootable;
        image_metadata = src.image_metadata.clone();
        if vtype.is_none() {
            vtype = db::get_type(svc.store(), &src.volume_type_id).await?;
        }
        (size, Source::Volume { id: vid.clone() })
    } else if let Some(iid) = &image_ref {
        let Some(size) = size else {
            return Err(CinderError::invalid_input(
                "Volume size '' must be an integer and greater than 0",
            ));
        };
        let img =
            svc.images().find(&auth.0, iid).await?.ok_or_else(|| {
                CinderError::not_found(format!("Image {iid} could not be found."))
            })?;
        if img.status != "active" {
            return Err(CinderError::invalid_input(format!(
                "Image {iid} is not active."
            )));
        }
        const GIB: i64 = 1 << 30;
        let need = img
            .virtual_size
            .or(img.size)
            .map(|b| (b + GIB - 1) / GIB)
            .unwrap_or(0);
        if need > size {
            return Err(CinderError::invalid_input(format!(
                "Size of specified image {need}GB is larger than volume size {size}GB."
            )));
        }
        if img.min_disk > size {
            return Err(CinderError::invalid_input(format!(
                "Volume size {size}GB cannot be smaller than the image minDisk size {}GB.",
                img.min_disk
            )));
        }
        let disk_format = img.disk_format.clone().unwrap_or_else(|| "raw".into());
        if !matches!(
            disk_format.as_str(),
            "raw" | "qcow2" | "vmdk" | "vdi" | "vhd" | "vhdx" | "iso"
        ) {
            return Err(CinderError::invalid_input(format!(
                "Image {iid} has disk_format {disk_format}, which cannot be written to a volume."
            )));
        }
        bootable = true;
        image_metadata = image_meta(&img);
        (
            size,
            Source::Image {
                id: iid.clone(),
                disk_format,
            },
        )
    } else {
        let Some(size) = size else {
            return Err(CinderError::invalid_input(
                "Volume size '' must be an integer and greater than 0",
            ));
        };
        (size, Source::Blank)
    };
    let vtype = match vtype {
        Some(t) => t,
        None => db::get_type_by_name(svc.store(), DEFAULT_TYPE_NAME)
            .await?
            .ok_or_else(|| CinderError::type_not_found(DEFAULT_TYPE_NAME))?,
    };
    let now = now_micros();
    let vol = Volume {
        id: strata_core::ids::uuid(),
        project_id: auth.project().to_string(),
        user_id: auth.0.user_id.clone(),
        name,
        description,
        size,
        status: "creating".into(),
        attach_status: "detached".into(),
        availability_zone: svc.config().availability_zone.clone(),
        volume_type_id: vtype.id.clone(),
        bootable,
        multiattach,
        source_volid,
        snapshot_id,
        image_id: image_ref,
        metadata,
        image_metadata,
        admin_metadata: Map::new(),
        migration_status: None,
        provider_location: None,
        error: None,
        created_at: now,
        updated_at: now,
        launched_at: None,
    };
    let cfg = svc.config().clone();
    let (v2, t2) = (vol.clone(), vtype.clone());
    work::write(&svc, move |tx| {
        let (v, t, cfg) = (v2.clone(), t2.clone(), cfg.clone());
        Box::pin(async move {
            if let Err(e) = work::check_quota(tx, &cfg, &v.project_id, &t, 1, 0, v.size).await? {
                return Ok(Err(e));
            }
            db::insert_volume(tx, &v).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    let (s2, id2) = (svc.clone(), vol.id.clone());
    svc.spawn(work::build(s2, id2, source)).await;
    let view = views::volume(&svc, &vol, &[], Some(&vtype.name), auth.admin(), mv);
    let view = views::without_extensions(view);
    Ok((StatusCode::ACCEPTED, Json(json!({"volume": view}))))
}

/// What a volume made from an image remembers of it (`volume_image_metadata`).
fn image_meta(img: &crate::images::ImageInfo) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &img.properties {
        if let Value::String(s) = v {
            m.insert(k.clone(), json!(s));
        }
    }
    m.insert("image_id".into(), json!(img.id));
    if let Some(n) = &img.name {
        m.insert("image_name".into(), json!(n));
    }
    if let Some(c) = &img.checksum {
        m.insert("checksum".into(), json!(c));
    }
    if let Some(f) = &img.disk_format {
        m.insert("disk_format".into(), json!(f));
    }
    if let Some(f) = &img.container_format {
        m.insert("container_format".into(), json!(f));
    }
    m.insert("min_disk".into(), json!(img.min_disk.to_string()));
    m.insert("min_ram".into(), json!(img.min_ram.to_string()));
    if let Some(s) = img.size {
        m.insert("size".into(), json!(s.to_string()));
    }
    m
}

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "size",
    "created_at",
    "updated_at",
    "availability_zone",
    "bootable",
    "volume_type",
    "project_id",
];

fn sort_value(v: &Volume, key: &str) -> SortVal {
    match key {
        "id" => SortVal::Text(v.id.clone()),
        "name" => v.name.clone().map(SortVal::Text).unwrap_or(SortVal::Null),
        "status" => SortVal::Text(v.status.clone()),
        "size" => SortVal::Int(v.size),
        "created_at" => SortVal::Int(v.created_at),
        "updated_at" => SortVal::Int(v.updated_at),
        "availability_zone" => SortVal::Text(v.availability_zone.clone()),
        "bootable" => SortVal::Int(v.bootable as i64),
        "volume_type" => SortVal::Text(v.volume_type_id.clone()),
        "project_id" => SortVal::Text(v.project_id.clone()),
        _ => SortVal::Null,
    }
}

/// The volumes a list request selects, paged, with the next link.
async fn select(
    svc: &VolumeService,
    auth: &Auth,
    q: &HashMap<String, String>,
    detail: bool,
) -> CinderResult<(Vec<Volume>, Option<Value>)> {
    let all = auth.admin()
        && q.get("all_tenants")
            .is_some_and(|v| parse_bool(&json!(v)).unwrap_or(true));
    let project = if all {
        q.get("project_id").cloned()
    } else {
        Some(auth.project().to_string())
    };
    let p = list_params(q, SORT_KEYS)?;
    let mut vols = db::list_volumes(svc.store(), project.as_deref()).await?;
    for (k, want) in q {
        let (key, like) = match k.strip_suffix('~') {
            Some(base) => (base, true),
            None => (k.as_str(), false),
        };
        let text_match = |have: Option<&str>| -> bool {
            match have {
                Some(h) if like => h.contains(want.as_str()),
                Some(h) => h == want,
                None => false,
            }
        };
        match key {
            "name" | "display_name" => vols.retain(|v| text_match(v.name.as_deref())),
            "status" => {
                // An unknown status matches nothing, as Cinder's query does.
                let _ = VOLUME_STATUSES;
                vols.retain(|v| text_match(Some(&v.status)))
            }
            "availability_zone" => vols.retain(|v| text_match(Some(&v.availability_zone))),
            "bootable" => {
                let b = parse_bool(&json!(want)).ok_or_else(|| {
                    CinderError::invalid_input(format!("Invalid value for bootable: {want}"))
                })?;
                vols.retain(|v| v.bootable == b)
            }
            "metadata" => {
                let f = views::parse_metadata_filter(want)?;
                vols.retain(|v| f.iter().all(|(k, val)| v.metadata.get(k) == Some(val)))
            }
            "volume_type" => vols.retain(|v| &v.volume_type_id == want),
            "size" => vols.retain(|v| v.size.to_string() == *want),
            _ => {}
        }
    }
    let vols = page(vols, &p, sort_value, |v| v.id.as_str())?;
    let url = format!(
        "{}/v3/{}/volumes{}",
        svc.root_url(),
        auth.project(),
        if detail { "/detail" } else { "" }
    );
    let link = next_link(&url, q, &p, vols.len(), vols.last().map(|v| v.id.as_str()));
    Ok((vols, link))
}

/// `GET /volumes`: ids, names and links.
pub async fn volume_list(
    State(svc): State<VolumeService>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let (vols, link) = select(&svc, &auth, &q, false).await?;
    let mut out = json!({
        "volumes": vols.iter().map(|v| views::volume_summary(&svc, v)).collect::<Vec<_>>()
    });
    if let Some(l) = link {
        out["volumes_links"] = l;
    }
    Ok(Json(out))
}

/// `GET /volumes/detail`.
pub async fn volume_list_detail(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let (vols, link) = select(&svc, &auth, &q, true).await?;
    let mut items = Vec::with_capacity(vols.len());
    for v in &vols {
        items.push(render(&svc, &auth, mv, v).await?);
    }
    let mut out = json!({ "volumes": items });
    if let Some(l) = link {
        out["volumes_links"] = l;
    }
    if mv.at_least(45)
        && q.get("with_count")
            .is_some_and(|c| parse_bool(&json!(c)) == Some(true))
    {
        let all = db::list_volumes(svc.store(), Some(auth.project())).await?;
        out["count"] = json!(all.len());
    }
    Ok(Json(out))
}

/// `GET /volumes/summary` (3.12): count and total size of the caller's volumes.
pub async fn volume_summary(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
) -> CinderResult<Json<Value>> {
    if !mv.at_least(12) {
        return Err(CinderError::not_found("The resource could not be found."));
    }
    let vols = db::list_volumes(svc.store(), Some(auth.project())).await?;
    let mut out = json!({"volume-summary": {
        "total_size": vols.iter().map(|v| v.size).sum::<i64>(),
        "total_count": vols.len(),
    }});
    if mv.at_least(36) {
        let mut meta: Map<String, Value> = Map::new();
        for v in &vols {
            for (k, val) in &v.metadata {
                let e = meta.entry(k.clone()).or_insert_with(|| json!([]));
                if let (Some(arr), Some(s)) = (e.as_array_mut(), val.as_str()) {
                    if !arr.iter().any(|x| x == s) {
                        arr.push(json!(s));
                    }
                }
            }
        }
        out["volume-summary"]["metadata"] = Value::Object(meta);
    }
    Ok(Json(out))
}

/// `GET /volumes/{id}`.
pub async fn volume_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let id = &p["volume_id"];
    let v = visible(&svc, &auth, id).await?;
    Ok(Json(json!({"volume": render(&svc, &auth, mv, &v).await?})))
}

/// `PUT /volumes/{id}`: name, description, metadata.
pub async fn volume_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    let id = p["volume_id"].clone();
    visible(&svc, &auth, &id).await?;
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:update"));
    }
    let m = body.entity("volume")?.clone();
    let name = match m.get("name") {
        Some(_) => Some(opt_string(&m, "name")?),
        None if m.contains_key("display_name") => Some(opt_string(&m, "display_name")?),
        None => None,
    };
    let description = match m.get("description") {
        Some(_) => Some(opt_string(&m, "description")?),
        None if m.contains_key("display_description") => {
            Some(opt_string(&m, "display_description")?)
        }
        None => None,
    };
    let metadata = match m.get("metadata") {
        None => None,
        Some(v) => Some(views::validate_metadata(v, "metadata")?),
    };
    let v = work::update_volume(&svc, &id, move |v| {
        if let Some(n) = &name {
            v.name = n.clone();
        }
        if let Some(d) = &description {
            v.description = d.clone();
        }
        if let Some(md) = &metadata {
            v.metadata = md.clone();
        }
        Ok(())
    })
    .await?;
    let view = views::without_extensions(render(&svc, &auth, mv, &v).await?);
    Ok(Json(json!({"volume": view})))
}

/// `DELETE /volumes/{id}[?cascade=true]`: 202; the data is reclaimed in the background.
pub async fn volume_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<StatusCode> {
    let id = p["volume_id"].clone();
    visible(&svc, &auth, &id).await?;
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:delete"));
    }
    let cascade = q
        .get("cascade")
        .is_some_and(|c| parse_bool(&json!(c)) == Some(true));
    delete(&svc, &id, cascade).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Deletes the volume `id` (and with `cascade` its snapshots) if its status allows it.
pub async fn delete(svc: &VolumeService, id: &str, cascade: bool) -> CinderResult<()> {
    delete_with(svc, id, cascade, false).await
}

/// [`delete`]; with `force` (`os-force_delete`) any status will do, but an attached or
/// migrating volume is still refused.
pub async fn delete_with(
    svc: &VolumeService,
    id: &str,
    cascade: bool,
    force: bool,
) -> CinderResult<()> {
    let id2 = id.to_string();
    work::write(svc, move |tx| {
        let id = id2.clone();
        Box::pin(async move {
            let Some(v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            const DELETABLE: &[&str] = &[
                "available",
                "error",
                "error_restoring",
                "error_extending",
                "error_managing",
            ];
            if (!force && !DELETABLE.contains(&v.status.as_str()))
                || v.attach_status == "attached"
                || v.migration_status.is_some()
            {
                return Ok(Err(CinderError::invalid_volume(
                    "Volume status must be available or error or error_restoring or \
                     error_extending or error_managing and must not be migrating, attached, \
                     belong to a group, have snapshots or be disassociated from snapshots after \
                     volume transfer.",
                )));
            }
            let snaps = db::snapshots_of_tx(tx, &id).await?;
            if !snaps.is_empty() {
                if !cascade {
                    return Ok(Err(CinderError::invalid_volume(format!(
                        "Volume {id} still has {} dependent snapshots.",
                        snaps.len()
                    ))));
                }
                if let Some(s) = snaps
                    .iter()
                    .find(|s| !matches!(s.status.as_str(), "available" | "error"))
                {
                    return Ok(Err(CinderError::invalid_volume(format!(
                        "Snapshot {} must not be part of a group or be {}.",
                        s.id, s.status
                    ))));
                }
                for s in &snaps {
                    db::delete_snapshot_row(tx, &s.id).await?;
                }
            }
            db::delete_volume_row(tx, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    let s2 = svc.clone();
    svc.spawn(async move { work::reclaim(&s2).await }).await;
    Ok(())
}

// ------------------------------------------------------------------ metadata

async fn writable(svc: &VolumeService, auth: &Auth, id: &str) -> CinderResult<()> {
    let v = visible(svc, auth, id).await?;
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:update_volume_metadata"));
    }
    if v.status == "maintenance" {
        return Err(CinderError::invalid_volume(
            "Volume is in maintenance; its metadata cannot be changed.",
        ));
    }
    Ok(())
}

/// `GET /volumes/{id}/metadata`.
pub async fn metadata_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let v = visible(&svc, &auth, &p["volume_id"]).await?;
    Ok(Json(json!({"metadata": v.metadata})))
}

async fn set_metadata(
    svc: &VolumeService,
    auth: &Auth,
    id: &str,
    body: &Body,
    replace: bool,
) -> CinderResult<Json<Value>> {
    writable(svc, auth, id).await?;
    let md = match body.0.get("metadata") {
        Some(v) => views::validate_metadata(v, "metadata")?,
        None => {
            return Err(CinderError::bad_request(
                "Missing required element 'metadata' in request body.",
            ))
        }
    };
    let v = work::update_volume(svc, id, move |v| {
        if replace {
            v.metadata = md.clone();
        } else {
            for (k, val) in &md {
                v.metadata.insert(k.clone(), val.clone());
            }
        }
        Ok(())
    })
    .await?;
    Ok(Json(json!({"metadata": v.metadata})))
}

/// `POST /volumes/{id}/metadata`: merges; answers every item.
pub async fn metadata_create(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    set_metadata(&svc, &auth, &p["volume_id"], &body, false).await
}

/// `PUT /volumes/{id}/metadata`: replaces.
pub async fn metadata_replace(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    set_metadata(&svc, &auth, &p["volume_id"], &body, true).await
}

/// `GET /volumes/{id}/metadata/{key}`.
pub async fn metadata_item_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let v = visible(&svc, &auth, &p["volume_id"]).await?;
    let key = &p["key"];
    match v.metadata.get(key) {
        Some(val) => Ok(Json(json!({"meta": {key.clone(): val}}))),
        None => Err(CinderError::not_found("Metadata item was not found")),
    }
}

/// `PUT /volumes/{id}/metadata/{key}` with `{"meta": {key: value}}`.
pub async fn metadata_item_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    let id = p["volume_id"].clone();
    let key = p["key"].clone();
    writable(&svc, &auth, &id).await?;
    let meta = match body.0.get("meta") {
        Some(v) => views::validate_metadata(v, "meta")?,
        None => {
            return Err(CinderError::bad_request(
                "Missing required element 'meta' in request body.",
            ))
        }
    };
    if meta.len() > 1 {
        return Err(CinderError::bad_request(
            "Request body contains too many items",
        ));
    }
    let Some(val) = meta.get(&key).cloned() else {
        return Err(CinderError::bad_request("Request body and URI mismatch"));
    };
    let (k2, v2) = (key.clone(), val.clone());
    work::update_volume(&svc, &id, move |v| {
        v.metadata.insert(k2.clone(), v2.clone());
        Ok(())
    })
    .await?;
    Ok(Json(json!({"meta": {key: val}})))
}

/// `DELETE /volumes/{id}/metadata/{key}`: 200 with no body.
pub async fn metadata_item_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<StatusCode> {
    let id = p["volume_id"].clone();
    let key = p["key"].clone();
    writable(&svc, &auth, &id).await?;
    work::update_volume(&svc, &id, move |v| {
        if v.metadata.remove(&key).is_none() {
            return Err(CinderError::not_found("Metadata item was not found"));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}
