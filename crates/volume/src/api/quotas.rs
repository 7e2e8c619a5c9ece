//! `/v3/{project_id}`: quota sets (per project, with `?usage=true`), their defaults, quota
//! classes and `/limits`.
//!
//! Limits are the configured defaults (`[volume] quota_*`, -1 for the per-type resources)
//! overlaid with per-project overrides. Quota classes are read-only here: the `default` class
//! shows the configured defaults, and `PUT /os-quota-class-sets/{class}` is refused with 400
//! since defaults come from the configuration.

use crate::db;
use crate::error::{CinderError, CinderResult};
use crate::extract::{Auth, Body, Mv};
use crate::model::VolumeType;
use crate::work;
use crate::VolumeService;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub fn routes() -> Router<VolumeService> {
    Router::new()
        .route(
            "/os-quota-sets/{target_id}",
            get(quota_show).put(quota_update).delete(quota_delete),
        )
        .route("/os-quota-sets/{target_id}/defaults", get(quota_defaults))
        .route(
            "/os-quota-class-sets/{class_name}",
            get(quota_class_show).put(quota_class_update),
        )
        .route("/limits", get(limits_show))
}

/// The project-wide resources, in Cinder's names.
const RESOURCES: &[&str] = &[
    "volumes",
    "snapshots",
    "gigabytes",
    "backups",
    "backup_gigabytes",
    "groups",
    "per_volume_gigabytes",
];

/// Keys a quota set body may carry that are not resources.
const NON_QUOTA_KEYS: &[&str] = &["id", "tenant_id"];

/// Every resource key: the project-wide ones and `volumes_/snapshots_/gigabytes_<type>`.
fn resource_keys(types: &[VolumeType]) -> Vec<String> {
    let mut keys: Vec<String> = RESOURCES.iter().map(|r| r.to_string()).collect();
    for t in types {
        for r in ["volumes", "snapshots", "gigabytes"] {
            keys.push(format!("{r}_{}", t.name));
        }
    }
    keys
}

/// Limits of every resource for `overrides` (empty: the defaults).
fn limits(
    svc: &VolumeService,
    types: &[VolumeType],
    overrides: &[(String, i64)],
) -> Map<String, Value> {
    resource_keys(types)
        .into_iter()
        .map(|k| {
            let v = work::limit(svc.config(), overrides, &k);
            (k, json!(v))
        })
        .collect()
}

/// What the project uses of each resource key.
fn in_use(usage: &db::Usage, types: &[VolumeType], key: &str) -> i64 {
    match key {
        "volumes" => usage.volumes,
        "snapshots" => usage.snapshots,
        "gigabytes" => usage.gigabytes,
        _ => {
            for t in types {
                let p = usage.per_type.iter().find(|p| p.0 == t.id);
                let get = |f: fn(&(String, i64, i64, i64)) -> i64| p.map(f).unwrap_or(0);
                if key == format!("volumes_{}", t.name) {
                    return get(|p| p.1);
                }
                if key == format!("snapshots_{}", t.name) {
                    return get(|p| p.2);
                }
                if key == format!("gigabytes_{}", t.name) {
                    return get(|p| p.3);
                }
            }
            0
        }
    }
}

/// Readers may look at their own project's quotas; admins at any.
fn may_read(auth: &Auth, target: &str) -> CinderResult<()> {
    if auth.admin() || auth.project() == target {
        Ok(())
    } else {
        Err(CinderError::policy("volume_extension:quotas:show"))
    }
}

/// `GET /os-quota-sets/{project}[?usage=true]`.
pub async fn quota_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let target = p["target_id"].clone();
    may_read(&auth, &target)?;
    let usage = match q.get("usage") {
        None => false,
        Some(u) => crate::api::volumes::parse_bool(&json!(u))
            .ok_or_else(|| CinderError::invalid_input(format!("Invalid value '{u}' for usage")))?,
    };
    let types = db::list_types(svc.store()).await?;
    let overrides = db::quota_overrides(svc.store(), &target).await?;
    let mut set = limits(&svc, &types, &overrides);
    if usage {
        let used = db::usage(svc.store(), &target).await?;
        for (k, v) in set.iter_mut() {
            *v = json!({
                "limit": v.clone(),
                "in_use": in_use(&used, &types, k),
                "reserved": 0,
                "allocated": 0,
            });
        }
    }
    set.insert("id".into(), json!(target));
    Ok(Json(json!({ "quota_set": set })))
}

/// `GET /os-quota-sets/{project}/defaults`.
pub async fn quota_defaults(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let target = p["target_id"].clone();
    may_read(&auth, &target)?;
    let types = db::list_types(svc.store()).await?;
    let mut set = limits(&svc, &types, &[]);
    set.insert("id".into(), json!(target));
    Ok(Json(json!({ "quota_set": set })))
}

/// A quota value as Cinder's validator takes it: an integer (or a string of one) from -1 to
/// the largest database integer.
fn quota_value(key: &str, v: &Value) -> CinderResult<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| CinderError::invalid_input(format!("{key} must be an integer.")))?;
    if n < -1 {
        return Err(CinderError::invalid_input(format!("{key} must be >= -1")));
    }
    if n > i32::MAX as i64 {
        return Err(CinderError::invalid_input(format!(
            "{key} must be <= {}",
            i32::MAX
        )));
    }
    Ok(n)
}

/// The validated `(key, limit)` pairs of a quota set body under `field`.
fn parse_set(
    body: &Body,
    field: &str,
    keys: &[String],
    skip_non_quota: bool,
) -> CinderResult<Vec<(String, i64)>> {
    if let Some(extra) = body
        .0
        .as_object()
        .and_then(|o| o.keys().find(|k| k.as_str() != field))
    {
        return Err(CinderError::invalid_input(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let m = body.entity(field)?;
    if m.is_empty() {
        return Err(CinderError::invalid_input(format!(
            "{{}} does not have enough properties for {field}"
        )));
    }
    let bad: Vec<&str> = m
        .keys()
        .filter(|k| {
            let known = keys.iter().any(|x| x == *k);
            let ignored = skip_non_quota && NON_QUOTA_KEYS.contains(&k.as_str());
            !(known || ignored)
        })
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        let what = if field == "quota_set" {
            "quota set"
        } else {
            "quota class set"
        };
        return Err(CinderError::invalid_input(format!(
            "Bad key(s) in {what}: {}",
            bad.join(", ")
        )));
    }
    let mut out = Vec::new();
    for (k, v) in m {
        if NON_QUOTA_KEYS.contains(&k.as_str()) {
            continue;
        }
        out.push((k.clone(), quota_value(k, v)?));
    }
    Ok(out)
}

/// `PUT /os-quota-sets/{project}` (admin): sets overrides. As Cinder does, a new limit below
/// what the project already uses is refused (400) for resources that already had an override
/// (`per_volume_gigabytes` and -1 are never refused).
pub async fn quota_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    if !auth.admin() {
        return Err(CinderError::policy("volume_extension:quotas:update"));
    }
    let target = p["target_id"].clone();
    if target.is_empty() || target.chars().count() > 255 {
        return Err(CinderError::invalid_input(
            "quota_set_name has a length outside 1 to 255 characters.",
        ));
    }
    let types = db::list_types(svc.store()).await?;
    let keys = resource_keys(&types);
    let set = parse_set(&body, "quota_set", &keys, true)?;
    let (t2, s2, types2) = (target.clone(), set.clone(), types.clone());
    work::write(&svc, move |tx| {
        let (target, set, types) = (t2.clone(), s2.clone(), types2.clone());
        Box::pin(async move {
            let overrides = db::quota_overrides_tx(tx, &target).await?;
            let usage = db::usage_tx(tx, &target).await?;
            for (k, v) in &set {
                if k == "per_volume_gigabytes" || *v == -1 {
                    continue;
                }
                if !overrides.iter().any(|(r, _)| r == k) {
                    continue;
                }
                let used = in_use(&usage, &types, k);
                if *v < used {
                    return Ok(Err(CinderError::bad_request(format!(
                        "Quota {k} limit must be equal or greater than existing resources. \
                         Current usage is {used} and the requested limit is {v}."
                    ))));
                }
            }
            for (k, v) in &set {
                db::set_quota(tx, &target, k, *v).await?;
            }
            Ok(Ok(()))
        })
    })
    .await?;
    let overrides = db::quota_overrides(svc.store(), &target).await?;
    Ok(Json(
        json!({ "quota_set": limits(&svc, &types, &overrides) }),
    ))
}

/// `DELETE /os-quota-sets/{project}` (admin): back to the defaults; 200.
pub async fn quota_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<StatusCode> {
    if !auth.admin() {
        return Err(CinderError::policy("volume_extension:quotas:delete"));
    }
    let target = p["target_id"].clone();
    work::write(&svc, move |tx| {
        let target = target.clone();
        Box::pin(async move {
            db::delete_quotas(tx, &target).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::OK)
}

/// `GET /os-quota-class-sets/{class}` (admin): the configured defaults.
pub async fn quota_class_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    if !auth.admin() {
        return Err(CinderError::policy("volume_extension:quota_classes"));
    }
    let types = db::list_types(svc.store()).await?;
    let mut set = limits(&svc, &types, &[]);
    set.insert("id".into(), json!(p["class_name"]));
    Ok(Json(json!({ "quota_class_set": set })))
}

/// `PUT /os-quota-class-sets/{class}` (admin): the body is validated as Cinder does, then the
/// change is refused (400): default quotas are set in the configuration.
pub async fn quota_class_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    if !auth.admin() {
        return Err(CinderError::policy("volume_extension:quota_classes:update"));
    }
    let types = db::list_types(svc.store()).await?;
    let keys = resource_keys(&types);
    parse_set(&body, "quota_class_set", &keys, false)?;
    Err(CinderError::bad_request(format!(
        "Quota class {} cannot be changed through the API: default quotas are set in the \
         configuration ([volume] quota_*).",
        p["class_name"]
    )))
}

/// `GET /limits`: the caller's absolute limits and usage (an admin may name another project
/// with `project_id` from 3.39); no rate limits.
pub async fn limits_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let project = match q.get("project_id").or_else(|| q.get("tenant_id")) {
        Some(p) if auth.admin() && mv.at_least(39) => p.clone(),
        _ => auth.project().to_string(),
    };
    let overrides = db::quota_overrides(svc.store(), &project).await?;
    let used = db::usage(svc.store(), &project).await?;
    let lim = |r: &str| work::limit(svc.config(), &overrides, r);
    Ok(Json(json!({"limits": {
        "rate": [],
        "absolute": {
            "maxTotalVolumes": lim("volumes"),
            "maxTotalSnapshots": lim("snapshots"),
            "maxTotalVolumeGigabytes": lim("gigabytes"),
            "maxTotalBackups": lim("backups"),
            "maxTotalBackupGigabytes": lim("backup_gigabytes"),
            "totalVolumesUsed": used.volumes,
            "totalGigabytesUsed": used.gigabytes,
            "totalSnapshotsUsed": used.snapshots,
            "totalBackupsUsed": 0,
            "totalBackupGigabytesUsed": 0,
        },
    }})))
}
