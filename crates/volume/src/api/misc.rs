//! `/v3/{project_id}`: availability zones, the extensions this service implements, and the
//! services (the scheduler and the volume service of this process, always up).

use super::views;
use crate::error::{CinderError, CinderResult};
use crate::extract::{Auth, Mv};
use crate::VolumeService;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use strata_core::time::now_micros;

pub fn routes() -> Router<VolumeService> {
    Router::new()
        .route("/os-availability-zone", get(availability_zone_list))
        .route("/extensions", get(extension_list))
        .route("/os-services", get(service_list))
        .route("/os-hosts", get(host_list))
        .route("/os-hosts/{host}", get(host_show))
}

/// `GET /os-availability-zone`: the one zone volumes are created in.
pub async fn availability_zone_list(State(svc): State<VolumeService>, _auth: Auth) -> Json<Value> {
    Json(json!({"availabilityZoneInfo": [{
        "zoneName": svc.config().availability_zone,
        "zoneState": {"available": true},
    }]}))
}

/// The extensions whose behaviour this service implements, as Cinder names them:
/// `(alias, name, updated, description)`.
const EXTENSIONS: &[(&str, &str, &str, &str)] = &[
    (
        "os-hosts",
        "Hosts",
        "2011-06-29T00:00:00+00:00",
        "Admin-only host administration.",
    ),
    (
        "os-admin-actions",
        "AdminActions",
        "2012-08-25T00:00:00+00:00",
        "Enable admin actions.",
    ),
    (
        "os-availability-zone",
        "AvailabilityZones",
        "2013-06-27T00:00:00+00:00",
        "Describe Availability Zones.",
    ),
    (
        "os-extended-snapshot-attributes",
        "ExtendedSnapshotAttributes",
        "2012-06-19T00:00:00+00:00",
        "Extended SnapshotAttributes support.",
    ),
    (
        "os-extended-services",
        "ExtendedServices",
        "2014-01-10T00:00:00-00:00",
        "Extended services support.",
    ),
    (
        "os-quota-class-sets",
        "QuotaClasses",
        "2012-03-12T00:00:00+00:00",
        "Quota classes management support.",
    ),
    (
        "os-quota-sets",
        "Quotas",
        "2011-08-08T00:00:00+00:00",
        "Quota management support.",
    ),
    (
        "os-services",
        "Services",
        "2012-10-28T00:00:00-00:00",
        "Services support.",
    ),
    (
        "os-types-extra-specs",
        "TypesExtraSpecs",
        "2011-08-24T00:00:00+00:00",
        "Type extra specs support.",
    ),
    (
        "os-types-manage",
        "TypesManage",
        "2011-08-24T00:00:00+00:00",
        "Types manage support.",
    ),
    (
        "os-used-limits",
        "UsedLimits",
        "2013-10-03T00:00:00+00:00",
        "Provide data on limited resources that are being used.",
    ),
    (
        "os-vol-host-attr",
        "VolumeHostAttribute",
        "2011-11-03T00:00:00+00:00",
        "Expose host as an attribute of a volume.",
    ),
    (
        "os-vol-image-meta",
        "VolumeImageMetadata",
        "2012-12-07T00:00:00+00:00",
        "Show image metadata associated with the volume.",
    ),
    (
        "os-vol-mig-status-attr",
        "VolumeMigStatusAttribute",
        "2013-08-08T00:00:00+00:00",
        "Expose migration_status as an attribute of a volume.",
    ),
    (
        "os-vol-tenant-attr",
        "VolumeTenantAttribute",
        "2011-11-03T00:00:00+00:00",
        "Expose the internal project_id as an attribute of a volume.",
    ),
    (
        "os-volume-actions",
        "VolumeActions",
        "2012-05-31T00:00:00+00:00",
        "Enable volume actions.",
    ),
    (
        "os-volume-type-access",
        "VolumeTypeAccess",
        "2014-06-26T00:00:00Z",
        "Volume type access support.",
    ),
];

/// `GET /extensions`.
pub async fn extension_list(_auth: Auth) -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name, updated, description)| {
            json!({
                "alias": alias,
                "name": name,
                "updated": updated,
                "description": description,
                "links": [],
            })
        })
        .collect();
    Json(json!({ "extensions": list }))
}

/// `GET /os-services[?host=&binary=]` (admin): the scheduler on `host` and the volume service
/// on `host@<backend>`, both enabled and up (they live in this process).
pub async fn service_list(
    State(svc): State<VolumeService>,
    auth: Auth,
    Mv(mv): Mv,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    if !auth.admin() {
        return Err(CinderError::policy("volume_extension:services:index"));
    }
    let cfg = svc.config();
    let backend = svc.backend().map(|b| b.name().to_string());
    let now = views::ts(now_micros());
    let mut out = Vec::new();
    let volume_host = format!("{}@{}", cfg.host, backend.as_deref().unwrap_or("none"));
    for (binary, host) in [
        ("cinder-scheduler", cfg.host.clone()),
        ("cinder-volume", volume_host),
    ] {
        // Cinder's host filter matches `host`, `host@backend` and `host@backend#pool`.
        if q.get("host").is_some_and(|h| {
            h != &host && !host.starts_with(&format!("{h}@")) && !host.starts_with(&format!("{h}#"))
        }) {
            continue;
        }
        if q.get("binary").is_some_and(|b| b != binary) {
            continue;
        }
        let mut s = json!({
            "binary": binary,
            "host": host,
            "zone": cfg.availability_zone,
            "status": "enabled",
            "state": "up",
            "updated_at": now,
            "disabled_reason": null,
        });
        let m = s.as_object_mut().expect("object");
        if binary == "cinder-volume" {
            m.insert("replication_status".into(), json!("disabled"));
            m.insert("active_backend_id".into(), Value::Null);
            m.insert("frozen".into(), json!(false));
            if mv.at_least(49) {
                m.insert(
                    "backend_state".into(),
                    json!(if backend.is_some() { "up" } else { "down" }),
                );
            }
        }
        if mv.at_least(7) {
            m.insert("cluster".into(), Value::Null);
        }
        out.push(s);
    }
    Ok(Json(json!({ "services": out })))
}

/// The hosts of this service: the scheduler's and the volume service's.
fn hosts(svc: &VolumeService) -> [(&'static str, String); 2] {
    let cfg = svc.config();
    let backend = svc.backend().map(|b| b.name()).unwrap_or("none");
    [
        ("cinder-scheduler", cfg.host.clone()),
        ("cinder-volume", format!("{}@{backend}", cfg.host)),
    ]
}

/// `GET /os-hosts` (admin): Cinder's host list.
pub async fn host_list(State(svc): State<VolumeService>, auth: Auth) -> CinderResult<Json<Value>> {
    if !auth.admin() {
        return Err(CinderError::policy("volume_extension:hosts"));
    }
    let now = views::ts(now_micros());
    let list: Vec<Value> = hosts(&svc)
        .into_iter()
        .map(|(service, host)| {
            json!({
                "service-status": "available",
                "service": service,
                "zone": svc.config().availability_zone,
                "service-state": "enabled",
                "host_name": host,
                "last-update": now,
            })
        })
        .collect();
    Ok(Json(json!({ "hosts": list })))
}

/// `GET /os-hosts/{host}` (admin): volume and snapshot counts and sizes on a volume host, in
/// total and per project (Cinder's strings).
pub async fn host_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    axum::extract::Path(p): axum::extract::Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    if !auth.admin() {
        return Err(CinderError::policy("volume_extension:hosts"));
    }
    let host = p.get("host").cloned().unwrap_or_default();
    let Some((_, volume_host)) = hosts(&svc)
        .into_iter()
        .find(|(service, h)| *service == "cinder-volume" && *h == host)
    else {
        return Err(CinderError::not_found(format!(
            "Host {host} could not be found."
        )));
    };
    let vols = crate::db::list_volumes(svc.store(), None).await?;
    let snaps = crate::db::list_snapshots(svc.store(), None).await?;
    let mut projects: Vec<String> = vols.iter().map(|v| v.project_id.clone()).collect();
    projects.extend(snaps.iter().map(|s| s.project_id.clone()));
    projects.sort();
    projects.dedup();
    let entry = |project: Option<&str>| {
        let v: Vec<_> = vols
            .iter()
            .filter(|v| project.is_none_or(|p| v.project_id == p))
            .collect();
        let s: Vec<_> = snaps
            .iter()
            .filter(|s| project.is_none_or(|p| s.project_id == p))
            .collect();
        json!({"resource": {
            "volume_count": v.len().to_string(),
            "total_volume_gb": v.iter().map(|v| v.size).sum::<i64>().to_string(),
            "snapshot_count": s.len().to_string(),
            "total_snapshot_gb": s.iter().map(|s| s.size).sum::<i64>().to_string(),
            "project": project.unwrap_or("(total)"),
            "host": volume_host,
        }})
    };
    let mut out = vec![entry(None)];
    for p in &projects {
        out.push(entry(Some(p)));
    }
    Ok(Json(json!({ "host": out })))
}
