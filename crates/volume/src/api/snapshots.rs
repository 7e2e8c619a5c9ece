//! `/v3/{project_id}/snapshots`: create (taken in the background), list and detail with
//! filters, sorting and paging, show, update, delete, snapshot metadata, the admin actions
//! `os-reset_status` and `os-force_delete`, and `os-update_snapshot_status`.

use super::views::{self, list_params, next_link, page, SortVal};
use crate::api::volumes::{opt_string, parse_bool};
use crate::db;
use crate::error::{CinderError, CinderResult};
use crate::extract::{Auth, Body, Mv};
use crate::model::{self, Snapshot, SNAPSHOT_STATUSES};
use crate::work;
use crate::VolumeService;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use strata_core::time::now_micros;

pub fn routes() -> Router<VolumeService> {
    Router::new()
        .route("/snapshots", get(snapshot_list).post(snapshot_create))
        .route("/snapshots/detail", get(snapshot_list_detail))
        .route(
            "/snapshots/{snapshot_id}",
            get(snapshot_show)
                .put(snapshot_update)
                .delete(snapshot_delete),
        )
        .route(
            "/snapshots/{snapshot_id}/metadata",
            get(metadata_show)
                .post(metadata_create)
                .put(metadata_replace),
        )
        .route(
            "/snapshots/{snapshot_id}/metadata/{key}",
            get(metadata_item_show)
                .put(metadata_item_update)
                .delete(metadata_item_delete),
        )
        .route("/snapshots/{snapshot_id}/action", post(snapshot_action))
}

/// The snapshot `id` if the caller may see it; Cinder's 404 otherwise.
pub async fn visible(svc: &VolumeService, auth: &Auth, id: &str) -> CinderResult<Snapshot> {
    match db::get_snapshot(svc.store(), id).await? {
        Some(s) if model::owns(&auth.0, &s.project_id) => Ok(s),
        _ => Err(CinderError::snapshot_not_found(id)),
    }
}

fn only_keys(m: &Map<String, Value>, allowed: &[&str]) -> CinderResult<()> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(CinderError::invalid_input(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// `POST /snapshots`: 202 with the snapshot in `creating`; the data is taken in the
/// background.
pub async fn snapshot_create(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    body: Body,
) -> CinderResult<(StatusCode, Json<Value>)> {
    let m = body.entity("snapshot")?.clone();
    only_keys(
        &m,
        &[
            "name",
            "display_name",
            "description",
            "display_description",
            "volume_id",
            "force",
            "metadata",
        ],
    )?;
    let volume_id = match m.get("volume_id") {
        None => {
            return Err(CinderError::invalid_input(
                "'volume_id' is a required property",
            ))
        }
        // Cinder looks the volume up and finds nothing.
        Some(Value::Null) => return Err(CinderError::volume_not_found("None")),
        Some(Value::String(s)) if model::is_uuid(s) => s.clone(),
        Some(other) => {
            return Err(CinderError::invalid_input(format!(
                "{other} is not a valid UUID for volume_id"
            )))
        }
    };
    let name = match opt_string(&m, "name")? {
        Some(n) => Some(n),
        None => opt_string(&m, "display_name")?,
    };
    let description = match opt_string(&m, "description")? {
        Some(d) => Some(d),
        None => opt_string(&m, "display_description")?,
    };
    let force = match m.get("force") {
        None | Some(Value::Null) => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            CinderError::invalid_input(format!("{v} is not a valid boolean for force"))
        })?,
    };
    let metadata = match m.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => views::validate_metadata(v, "metadata")?,
    };
    let vol = crate::api::volumes::visible(&svc, &auth, &volume_id).await?;
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:create_snapshot"));
    }
    let now = now_micros();
    let snap = Snapshot {
        id: strata_core::ids::uuid(),
        project_id: auth.project().to_string(),
        user_id: auth.0.user_id.clone(),
        volume_id: vol.id.clone(),
        name,
        description,
        size: vol.size,
        status: "creating".into(),
        progress: "0%".into(),
        metadata,
        provider_location: None,
        created_at: now,
        updated_at: now,
    };
    let cfg = svc.config().clone();
    let s2 = snap.clone();
    let snap = work::write(&svc, move |tx| {
        let (mut s, cfg) = (s2.clone(), cfg.clone());
        Box::pin(async move {
            let Some(v) = db::get_volume_tx(tx, &s.volume_id).await? else {
                return Ok(Err(CinderError::volume_not_found(&s.volume_id)));
            };
            let why = match v.status.as_str() {
                "maintenance" => Some(
                    "The snapshot cannot be created when the volume is in maintenance mode."
                        .to_string(),
                ),
                "error" => Some(
                    "The snapshot cannot be created when the volume is in error status."
                        .to_string(),
                ),
                _ if v.migration_status.is_some() => {
                    Some("Snapshot cannot be created while volume is migrating.".to_string())
                }
                "available" => None,
                "in-use" if force => None,
                other => Some(format!(
                    "Volume {} status must be {}, but current status is: {other}.",
                    v.id,
                    if force {
                        "available, in-use"
                    } else {
                        "available"
                    }
                )),
            };
            if let Some(why) = why {
                return Ok(Err(CinderError::invalid_volume(why)));
            }
            let vtype = match db::get_type_tx(tx, &v.volume_type_id).await? {
                Some(t) => t,
                None => crate::model::VolumeType {
                    id: v.volume_type_id.clone(),
                    name: String::new(),
                    description: None,
                    is_public: true,
                    extra_specs: Map::new(),
                    created_at: 0,
                    updated_at: 0,
                },
            };
            s.size = v.size;
            if let Err(e) = work::check_quota(tx, &cfg, &s.project_id, &vtype, 0, 1, v.size).await?
            {
                return Ok(Err(e));
            }
            db::insert_snapshot(tx, &s).await?;
            Ok(Ok(s))
        })
    })
    .await?;
    let (s2, id2) = (svc.clone(), snap.id.clone());
    svc.spawn(work::snapshot(s2, id2)).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"snapshot": views::snapshot(&snap, false, mv)})),
    ))
}

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "size",
    "volume_id",
    "project_id",
    "created_at",
    "updated_at",
];

fn sort_value(s: &Snapshot, key: &str) -> SortVal {
    match key {
        "id" => SortVal::Text(s.id.clone()),
        "name" => s.name.clone().map(SortVal::Text).unwrap_or(SortVal::Null),
        "status" => SortVal::Text(s.status.clone()),
        "size" => SortVal::Int(s.size),
        "volume_id" => SortVal::Text(s.volume_id.clone()),
        "project_id" => SortVal::Text(s.project_id.clone()),
        "created_at" => SortVal::Int(s.created_at),
        "updated_at" => SortVal::Int(s.updated_at),
        _ => SortVal::Null,
    }
}

/// The snapshots a list request selects, paged, with the next link.
async fn select(
    svc: &VolumeService,
    auth: &Auth,
    mv: crate::version::Microversion,
    q: &HashMap<String, String>,
    detail: bool,
) -> CinderResult<(Vec<Snapshot>, Option<Value>)> {
    let all = auth.admin()
        && q.get("all_tenants")
            .is_some_and(|v| parse_bool(&json!(v)).unwrap_or(true));
    let project = if all {
        q.get("project_id").cloned()
    } else {
        Some(auth.project().to_string())
    };
    let p = list_params(q, SORT_KEYS)?;
    let mut snaps = db::list_snapshots(svc.store(), project.as_deref()).await?;
    for (k, want) in q {
        match k.as_str() {
            "name" | "display_name" => snaps.retain(|s| s.name.as_deref() == Some(want.as_str())),
            "status" => snaps.retain(|s| &s.status == want),
            "volume_id" => snaps.retain(|s| &s.volume_id == want),
            // The metadata filter arrived in 3.22.
            "metadata" if mv.at_least(22) => {
                let f = views::parse_metadata_filter(want)?;
                snaps.retain(|s| f.iter().all(|(k, v)| s.metadata.get(k) == Some(v)))
            }
            _ => {}
        }
    }
    if let Some(m) = &p.marker {
        if !snaps.iter().any(|s| &s.id == m) {
            return Err(CinderError::not_found(format!(
                "Marker {m} could not be found."
            )));
        }
    }
    let snaps = page(snaps, &p, sort_value, |s| s.id.as_str())?;
    let url = format!(
        "{}/v3/{}/snapshots{}",
        svc.root_url(),
        auth.project(),
        if detail { "/detail" } else { "" }
    );
    let link = next_link(
        &url,
        q,
        &p,
        snaps.len(),
        snaps.last().map(|s| s.id.as_str()),
    );
    Ok((snaps, link))
}

async fn list(
    svc: VolumeService,
    auth: Auth,
    mv: crate::version::Microversion,
    q: HashMap<String, String>,
    detail: bool,
) -> CinderResult<Json<Value>> {
    let (snaps, link) = select(&svc, &auth, mv, &q, detail).await?;
    let mut out = json!({
        "snapshots": snaps.iter().map(|s| views::snapshot(s, detail, mv)).collect::<Vec<_>>()
    });
    if let Some(l) = link {
        out["snapshots_links"] = l;
    }
    if mv.at_least(45)
        && q.get("with_count")
            .is_some_and(|c| parse_bool(&json!(c)) == Some(true))
    {
        let all = db::list_snapshots(svc.store(), Some(auth.project())).await?;
        out["count"] = json!(all.len());
    }
    Ok(Json(out))
}

/// `GET /snapshots`.
pub async fn snapshot_list(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    list(svc, auth, mv, q, false).await
}

/// `GET /snapshots/detail`: with the extended attributes.
pub async fn snapshot_list_detail(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    list(svc, auth, mv, q, true).await
}

/// `GET /snapshots/{id}`.
pub async fn snapshot_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let s = visible(&svc, &auth, &p["snapshot_id"]).await?;
    Ok(Json(json!({"snapshot": views::snapshot(&s, true, mv)})))
}

/// `PUT /snapshots/{id}`: name and description.
pub async fn snapshot_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    let m = body.entity("snapshot")?.clone();
    only_keys(
        &m,
        &["name", "description", "display_name", "display_description"],
    )?;
    if m.is_empty() {
        return Err(CinderError::invalid_input(
            "{} is not valid under any of the given schemas",
        ));
    }
    let name = if m.contains_key("name") {
        Some(opt_string(&m, "name")?)
    } else if m.contains_key("display_name") {
        Some(opt_string(&m, "display_name")?)
    } else {
        None
    };
    let description = if m.contains_key("description") {
        Some(opt_string(&m, "description")?)
    } else if m.contains_key("display_description") {
        Some(opt_string(&m, "display_description")?)
    } else {
        None
    };
    let id = p["snapshot_id"].clone();
    visible(&svc, &auth, &id).await?;
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:update_snapshot"));
    }
    let s = work::update_snapshot(&svc, &id, move |s| {
        if let Some(n) = &name {
            s.name = n.clone();
        }
        if let Some(d) = &description {
            s.description = d.clone();
        }
        Ok(())
    })
    .await?;
    Ok(Json(json!({"snapshot": views::snapshot(&s, false, mv)})))
}

/// Deletes the snapshot `id` (only when `available` or `error` unless `force`): it passes
/// through `deleting`, then its row goes and its data is reclaimed in the background. Volumes
/// made from it keep their data.
async fn delete(svc: &VolumeService, id: &str, force: bool) -> CinderResult<()> {
    work::update_snapshot(svc, id, move |s| {
        if !force && !matches!(s.status.as_str(), "available" | "error") {
            return Err(CinderError::invalid_snapshot(
                "Snapshot status must be available or error and must not be part of a group.",
            ));
        }
        s.status = "deleting".into();
        Ok(())
    })
    .await?;
    let id2 = id.to_string();
    work::write(svc, move |tx| {
        let id = id2.clone();
        Box::pin(async move {
            db::delete_snapshot_row(tx, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    let s2 = svc.clone();
    svc.spawn(async move { work::reclaim(&s2).await }).await;
    Ok(())
}

/// `DELETE /snapshots/{id}`: 202.
pub async fn snapshot_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<StatusCode> {
    let id = p["snapshot_id"].clone();
    visible(&svc, &auth, &id).await?;
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:delete_snapshot"));
    }
    delete(&svc, &id, false).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /snapshots/{id}/action`: `os-reset_status` and `os-force_delete` (admin), 202.
pub async fn snapshot_action(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<StatusCode> {
    let id = p["snapshot_id"].clone();
    let Some(o) = body.0.as_object() else {
        return Err(CinderError::bad_request("Malformed request body"));
    };
    if o.contains_key("os-reset_status") {
        only_keys(o, &["os-reset_status"])?;
        let m = body.entity("os-reset_status")?;
        only_keys(m, &["status"])?;
        let status = match m.get("status") {
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            Some(other) => {
                return Err(CinderError::invalid_input(format!(
                    "{other} is not of type 'string'"
                )))
            }
            None => {
                return Err(CinderError::invalid_input(
                    "'status' is a required property",
                ))
            }
        };
        if !SNAPSHOT_STATUSES.contains(&status.as_str()) {
            return Err(CinderError::invalid_input(format!(
                "Snapshot status: {status} is invalid, valid statuses are: {}.",
                SNAPSHOT_STATUSES.join(", ")
            )));
        }
        if db::get_snapshot(svc.store(), &id).await?.is_none() {
            return Err(CinderError::snapshot_not_found(&id));
        }
        if !auth.admin() {
            return Err(CinderError::policy(
                "volume_extension:snapshot_admin_actions:reset_status",
            ));
        }
        work::update_snapshot(&svc, &id, move |s| {
            s.status = status.clone();
            Ok(())
        })
        .await?;
        Ok(StatusCode::ACCEPTED)
    } else if o.contains_key("os-update_snapshot_status") {
        // What Nova's assisted snapshots report back: only `creating` and `deleting` snapshots
        // move, and only to their outcomes.
        only_keys(o, &["os-update_snapshot_status"])?;
        let m = body.entity("os-update_snapshot_status")?;
        only_keys(m, &["status", "progress"])?;
        let Some(Value::String(status)) = m.get("status") else {
            return Err(CinderError::invalid_input(
                "'status' is a required property",
            ));
        };
        let progress = match m.get("progress") {
            None | Some(Value::Null) => None,
            Some(Value::String(p))
                if p.strip_suffix('%')
                    .and_then(|n| n.parse::<u8>().ok())
                    .is_some_and(|n| n <= 100) =>
            {
                Some(p.clone())
            }
            Some(other) => {
                return Err(CinderError::invalid_input(format!(
                    "Invalid progress {other}: a percentage such as \"80%\" is expected"
                )))
            }
        };
        visible(&svc, &auth, &id).await?;
        if !model::can_write(&auth.0) {
            return Err(CinderError::policy(
                "snapshot_extension:snapshot_actions:update_snapshot_status",
            ));
        }
        let status = status.clone();
        work::update_snapshot(&svc, &id, move |s| {
            let allowed: &[&str] = match s.status.as_str() {
                "creating" => &["creating", "available", "error"],
                "deleting" => &["deleting", "error_deleting"],
                other => {
                    return Err(CinderError::invalid_snapshot(format!(
                        "Snapshot status {other} not allowed for update_snapshot_status"
                    )))
                }
            };
            if !allowed.contains(&status.as_str()) {
                return Err(CinderError::invalid_snapshot(format!(
                    "Provided snapshot status {status} not allowed for snapshot with status {}.",
                    s.status
                )));
            }
            s.status = status.clone();
            if let Some(p) = &progress {
                s.progress = p.clone();
            }
            Ok(())
        })
        .await?;
        Ok(StatusCode::ACCEPTED)
    } else if o.contains_key("os-force_delete") {
        visible(&svc, &auth, &id).await?;
        if !auth.admin() {
            return Err(CinderError::policy(
                "volume_extension:snapshot_admin_actions:force_delete",
            ));
        }
        delete(&svc, &id, true).await?;
        Ok(StatusCode::ACCEPTED)
    } else {
        let name = o.keys().next().cloned().unwrap_or_default();
        Err(CinderError::bad_request(format!(
            "There is no such action: {name}"
        )))
    }
}

// ------------------------------------------------------------------ metadata

/// Snapshot metadata keys Cinder's schema accepts: letters, digits and `-_:. `, 1–255.
fn check_keys(m: &Map<String, Value>) -> CinderResult<()> {
    for k in m.keys() {
        if k.is_empty()
            || k.chars().count() > 255
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c))
        {
            return Err(CinderError::invalid_input(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    Ok(())
}

async fn writable(svc: &VolumeService, auth: &Auth, id: &str) -> CinderResult<()> {
    visible(svc, auth, id).await?;
    if !model::can_write(&auth.0) {
        return Err(CinderError::policy("volume:update_snapshot_metadata"));
    }
    Ok(())
}

/// `GET /snapshots/{id}/metadata`.
pub async fn metadata_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let s = visible(&svc, &auth, &p["snapshot_id"]).await?;
    Ok(Json(json!({"metadata": s.metadata})))
}

async fn set_metadata(
    svc: &VolumeService,
    auth: &Auth,
    id: &str,
    body: &Body,
    replace: bool,
) -> CinderResult<Json<Value>> {
    let md = match body.0.get("metadata") {
        Some(v) => views::validate_metadata(v, "metadata")?,
        None => {
            return Err(CinderError::invalid_input(
                "'metadata' is a required property",
            ))
        }
    };
    check_keys(&md)?;
    writable(svc, auth, id).await?;
    let s = work::update_snapshot(svc, id, move |s| {
        if replace {
            s.metadata = md.clone();
        } else {
            for (k, v) in &md {
                s.metadata.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    })
    .await?;
    Ok(Json(json!({"metadata": s.metadata})))
}

/// `POST /snapshots/{id}/metadata`: merges; answers every item.
pub async fn metadata_create(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    set_metadata(&svc, &auth, &p["snapshot_id"], &body, false).await
}

/// `PUT /snapshots/{id}/metadata`: replaces.
pub async fn metadata_replace(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    set_metadata(&svc, &auth, &p["snapshot_id"], &body, true).await
}

fn item_not_found(id: &str, key: &str) -> CinderError {
    CinderError::not_found(format!("Snapshot {id} has no metadata with key {key}."))
}

/// `GET /snapshots/{id}/metadata/{key}`.
pub async fn metadata_item_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let id = &p["snapshot_id"];
    let key = &p["key"];
    let s = visible(&svc, &auth, id).await?;
    match s.metadata.get(key) {
        Some(v) => Ok(Json(json!({"meta": {key.clone(): v}}))),
        None => Err(item_not_found(id, key)),
    }
}

/// `PUT /snapshots/{id}/metadata/{key}` with `{"meta": {key: value}}`.
pub async fn metadata_item_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    let id = p["snapshot_id"].clone();
    let key = p["key"].clone();
    let meta = match body.0.get("meta") {
        Some(v) => views::validate_metadata(v, "meta")?,
        None => return Err(CinderError::invalid_input("'meta' is a required property")),
    };
    check_keys(&meta)?;
    if meta.is_empty() {
        return Err(CinderError::invalid_input(
            "{} does not have enough properties",
        ));
    }
    if !meta.contains_key(&key) {
        return Err(CinderError::bad_request("Request body and URI mismatch"));
    }
    if meta.len() > 1 {
        return Err(CinderError::bad_request(
            "Request body contains too many items",
        ));
    }
    writable(&svc, &auth, &id).await?;
    let val = meta[&key].clone();
    let (k2, v2) = (key.clone(), val.clone());
    work::update_snapshot(&svc, &id, move |s| {
        s.metadata.insert(k2.clone(), v2.clone());
        Ok(())
    })
    .await?;
    Ok(Json(json!({"meta": {key: val}})))
}

/// `DELETE /snapshots/{id}/metadata/{key}`: 200 with no body.
pub async fn metadata_item_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<StatusCode> {
    let id = p["snapshot_id"].clone();
    let key = p["key"].clone();
    writable(&svc, &auth, &id).await?;
    let id2 = id.clone();
    work::update_snapshot(&svc, &id, move |s| {
        if s.metadata.remove(&key).is_none() {
            return Err(item_not_found(&id2, &key));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}
