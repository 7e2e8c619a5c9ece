//! `/v2.0/quotas`: the projects with overrides (admins), one project's limits (its members
//! and admins), their defaults and details (limit, used, reserved); admins set and reset them.

use super::write;
use crate::db;
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body};
use crate::quota::{default_limit, RESOURCES};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/quotas", get(quota_list))
        .route("/quotas/tenant", get(quota_tenant))
        .route("/quotas/project", get(quota_tenant))
        .route(
            "/quotas/{project}",
            get(quota_show).put(quota_update).delete(quota_delete),
        )
        .route("/quotas/{project}/default", get(quota_default))
        .route("/quotas/{project}/details", get(quota_details))
}

fn forbidden() -> NeutronError {
    NeutronError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "Only admin is authorized to access quotas for another tenant",
    )
}

fn admin_only() -> NeutronError {
    NeutronError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "Only admin can view or configure quota",
    )
}

/// The limits of `project`: defaults overlaid with its overrides.
async fn limits(svc: &NetworkService, project: &str) -> NeutronResult<Map<String, Value>> {
    let overrides = db::quota_overrides(svc.store(), project).await?;
    let mut m = Map::new();
    for (r, _) in RESOURCES {
        let l = overrides
            .iter()
            .find(|(k, _)| k == r)
            .map(|(_, l)| *l)
            .unwrap_or_else(|| default_limit(svc.config(), r));
        m.insert(r.to_string(), json!(l));
    }
    Ok(m)
}

/// `GET /v2.0/quotas`: admins only; the projects with overrides and their limits.
pub async fn quota_list(
    State(svc): State<NetworkService>,
    auth: Auth,
) -> NeutronResult<Json<Value>> {
    if !auth.admin() {
        return Err(admin_only());
    }
    let mut out = Vec::new();
    for p in db::quota_projects(svc.store()).await? {
        let mut m = limits(&svc, &p).await?;
        m.insert("project_id".into(), json!(p));
        m.insert("tenant_id".into(), json!(p));
        out.push(Value::Object(m));
    }
    Ok(Json(json!({ "quotas": out })))
}

/// `GET /v2.0/quotas/tenant`: the caller's project.
pub async fn quota_tenant(auth: Auth) -> Json<Value> {
    Json(json!({"tenant": {"tenant_id": auth.project()},
                "project": {"project_id": auth.project()}}))
}

fn may_read(auth: &Auth, project: &str) -> NeutronResult<()> {
    if auth.admin() || auth.project() == project {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// `GET /v2.0/quotas/{project}`.
pub async fn quota_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(project): Path<String>,
) -> NeutronResult<Json<Value>> {
    may_read(&auth, &project)?;
    Ok(Json(json!({"quota": limits(&svc, &project).await?})))
}

/// `GET /v2.0/quotas/{project}/default`.
pub async fn quota_default(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(project): Path<String>,
) -> NeutronResult<Json<Value>> {
    may_read(&auth, &project)?;
    let mut m = Map::new();
    for (r, _) in RESOURCES {
        m.insert(r.to_string(), json!(default_limit(svc.config(), r)));
    }
    m.insert("project_id".into(), json!(project));
    m.insert("tenant_id".into(), json!(project));
    Ok(Json(json!({ "quota": m })))
}

/// `GET /v2.0/quotas/{project}/details`: limit, used and reserved of every resource.
pub async fn quota_details(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(project): Path<String>,
) -> NeutronResult<Json<Value>> {
    may_read(&auth, &project)?;
    let limits = limits(&svc, &project).await?;
    let mut m = Map::new();
    for (r, kind) in RESOURCES {
        let used = db::list(svc.store(), kind, Some(&project)).await?.len();
        m.insert(
            r.to_string(),
            json!({"limit": limits[*r], "used": used, "reserved": 0}),
        );
    }
    Ok(Json(json!({ "quota": m })))
}

/// A quota value: an integer of at least -1 (-1 is unlimited).
fn limit_value(key: &str, v: &Value) -> NeutronResult<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= -1 => Ok(n),
        Some(n) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{n}' should be greater than or equal to -1."
        ))),
        None => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{v}' is not an integer."
        ))),
    }
}

/// `PUT /v2.0/quotas/{project}`: admins only; sets the given limits, answers all of them.
pub async fn quota_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(project): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    if !auth.admin() {
        return Err(admin_only());
    }
    let m = body.entity("quota")?;
    let mut set = Vec::new();
    for (k, v) in &m {
        if k == "force" || k == "check_limit" {
            continue;
        }
        if !RESOURCES.iter().any(|(r, _)| r == k) {
            return Err(NeutronError::bad_request(format!(
                "Unrecognized attribute(s) '{k}'"
            )));
        }
        set.push((k.clone(), limit_value(k, v)?));
    }
    let p2 = project.clone();
    write(&svc, move |tx| {
        let (project, set) = (p2.clone(), set.clone());
        Box::pin(async move {
            for (k, v) in &set {
                db::set_quota(tx, &project, k, *v).await?;
            }
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(Json(json!({"quota": limits(&svc, &project).await?})))
}

/// `DELETE /v2.0/quotas/{project}`: admins only; back to the defaults. 204.
pub async fn quota_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(project): Path<String>,
) -> NeutronResult<StatusCode> {
    if !auth.admin() {
        return Err(admin_only());
    }
    write(&svc, move |tx| {
        let project = project.clone();
        Box::pin(async move {
            db::delete_quotas(tx, &project).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
