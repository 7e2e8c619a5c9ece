//! Migrations: `GET /os-migrations` (every move of every server, admins only; paging and
//! `changes-since` from 2.59, `changes-before` from 2.66, the user and project from 2.80), and
//! a server's live migrations in progress: `GET /servers/{id}/migrations[/{migration_id}]`
//! (2.23), `DELETE` to abort one (2.24; queued ones from 2.65), and the `force_complete` action
//! (2.22). The rows are written with the server by the moves themselves (`crate::moves`).

use super::servers::{check_lock, find, invalid_state};
use super::views::nova_time;
use super::{next_link, page_limit, Links};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::server::{migration, task, vm, Server};
use crate::server_db::{self as sdb, MigrationFilter, MigrationRow};
use crate::version::Microversion;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde_json::{json, Value};
use strata_api::RequestId;
use strata_core::time::parse_iso;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-migrations", get(migration_list))
        .route("/servers/{id}/migrations", get(server_migration_list))
        .route(
            "/servers/{id}/migrations/{migration_id}",
            get(server_migration_show).delete(server_migration_delete),
        )
        .route(
            "/servers/{id}/migrations/{migration_id}/action",
            post(server_migration_action),
        )
}

/// Live migration statuses Nova's server-migrations API calls in progress.
const LIVE_IN_PROGRESS: &[&str] = &[
    migration::QUEUED,
    migration::PREPARING,
    migration::RUNNING,
    migration::POST_MIGRATING,
];

/// A flavor's id as Nova's integer `instance_type_id` (`null` for a non-numeric id).
fn type_id(f: &Option<String>) -> Value {
    f.as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// A row as `os-migrations` shows it at `mv`.
fn list_view(r: &MigrationRow, mv: Microversion, links: &Links) -> Value {
    let mut v = json!({
        "created_at": nova_time(r.created_at),
        "dest_compute": r.dest_compute,
        "dest_host": r.dest_host,
        "dest_node": r.dest_node,
        "id": r.id,
        "instance_uuid": r.instance_uuid,
        "new_instance_type_id": type_id(&r.new_flavor_id),
        "old_instance_type_id": type_id(&r.old_flavor_id),
        "source_compute": r.source_compute,
        "source_node": r.source_node,
        "status": r.status,
        "updated_at": nova_time(r.updated_at),
    });
    if mv.at_least(23) {
        v["migration_type"] = json!(r.migration_type);
        let in_progress = ["queued", "preparing", "running", "post-migrating"];
        if r.migration_type == migration::LIVE && in_progress.contains(&r.status.as_str()) {
            v["links"] = links.pair(
                &format!("servers/{}/migrations", r.instance_uuid),
                &r.id.to_string(),
            );
        }
    }
    if mv.at_least(59) {
        v["uuid"] = json!(r.uuid);
    }
    if mv.at_least(80) {
        v["user_id"] = json!(r.user_id);
        v["project_id"] = json!(r.project_id);
    }
    v
}

/// A row as `/servers/{id}/migrations` shows it at `mv`.
fn server_view(r: &MigrationRow, mv: Microversion) -> Value {
    let mut v = json!({
        "created_at": nova_time(r.created_at),
        "dest_compute": r.dest_compute,
        "dest_host": r.dest_host,
        "dest_node": r.dest_node,
        "disk_processed_bytes": null,
        "disk_remaining_bytes": null,
        "disk_total_bytes": null,
        "id": r.id,
        "memory_processed_bytes": null,
        "memory_remaining_bytes": null,
        "memory_total_bytes": null,
        "server_uuid": r.instance_uuid,
        "source_compute": r.source_compute,
        "source_node": r.source_node,
        "status": r.status,
        "updated_at": nova_time(r.updated_at),
    });
    if mv.at_least(59) {
        v["uuid"] = json!(r.uuid);
    }
    if mv.at_least(80) {
        v["user_id"] = json!(r.user_id);
        v["project_id"] = json!(r.project_id);
    }
    v
}

/// Query parameters `os-migrations` takes at `mv` (from 2.59 others are refused).
fn allowed_params(mv: Microversion) -> Vec<&'static str> {
    let mut a = vec![
        "hidden",
        "host",
        "instance_uuid",
        "source_compute",
        "status",
        "migration_type",
        "limit",
        "marker",
        "changes-since",
    ];
    if mv.at_least(66) {
        a.push("changes-before");
    }
    if mv.at_least(80) {
        a.extend(["user_id", "project_id"]);
    }
    a
}

/// `GET /os-migrations`: newest first.
pub async fn migration_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-migrations:index")?;
    if mv.at_least(59) {
        let allowed = allowed_params(mv);
        let mut extra: Vec<String> = Vec::new();
        for (k, _) in &pairs.0 {
            let q = format!("'{k}'");
            if !allowed.contains(&k.as_str()) && !extra.contains(&q) {
                extra.push(q);
            }
        }
        if !extra.is_empty() {
            return Err(NovaError::bad_request(format!(
                "Additional properties are not allowed ({} {} unexpected)",
                extra.join(", "),
                if extra.len() == 1 { "was" } else { "were" }
            )));
        }
    }
    let get = |k: &str| pairs.get(k).map(String::from);
    let mut f = MigrationFilter {
        instance_uuid: get("instance_uuid"),
        host: get("host"),
        source_compute: get("source_compute"),
        status: get("status"),
        migration_type: get("migration_type"),
        ..Default::default()
    };
    if mv.at_least(80) {
        f.user_id = get("user_id");
        f.project_id = get("project_id");
    }
    let parse_time = |key: &str| -> NovaResult<Option<i64>> {
        match pairs.get(key) {
            None => Ok(None),
            Some(v) => parse_iso(v).map(Some).ok_or_else(|| {
                NovaError::bad_request(format!(
                    "Invalid input for query parameters {key}. Value: {v}. '{v}' is not a \
                     'date-time'"
                ))
            }),
        }
    };
    if mv.at_least(59) {
        f.changes_since = parse_time("changes-since")?;
    }
    if mv.at_least(66) {
        f.changes_before = parse_time("changes-before")?;
        if let (Some(a), Some(b)) = (f.changes_since, f.changes_before) {
            if b < a {
                return Err(NovaError::bad_request(
                    "The value of changes-since must be less than or equal to changes-before.",
                ));
            }
        }
    }
    let mut rows = sdb::migrations(svc.store(), &f).await?;
    let mut out = json!({});
    if mv.at_least(59) {
        let limit = page_limit(&pairs)?;
        if let Some(marker) = pairs.get("marker") {
            let Some(at) = rows.iter().position(|r| r.uuid == marker) else {
                return Err(NovaError::bad_request(format!(
                    "Marker {marker} could not be found."
                )));
            };
            rows.drain(..=at);
        }
        rows.truncate(limit);
        if limit > 0 && rows.len() == limit {
            let last = rows.last().map(|r| r.uuid.clone()).unwrap_or_default();
            let base = format!("{}/os-migrations", links.self_base);
            out["migrations_links"] = next_link(&base, &pairs, limit, &last);
        }
    }
    out["migrations"] = Value::Array(rows.iter().map(|r| list_view(r, mv, &links)).collect());
    Ok(Json(out))
}

fn gate(mv: Microversion, minor: u32) -> NovaResult<()> {
    if !mv.at_least(minor) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    Ok(())
}

/// The server's migration `mid` (`None` when it has none of that id).
async fn migration_of(
    svc: &ComputeService,
    server: &str,
    mid: &str,
) -> NovaResult<Option<MigrationRow>> {
    let Ok(id) = mid.parse::<i64>() else {
        return Ok(None);
    };
    let f = MigrationFilter {
        instance_uuid: Some(server.to_string()),
        ..Default::default()
    };
    Ok(sdb::migrations(svc.store(), &f)
        .await?
        .into_iter()
        .find(|r| r.id == id))
}

/// `GET /servers/{id}/migrations` (2.23): the server's live migrations in progress.
pub async fn server_migration_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    gate(mv, 23)?;
    let _s = find(&svc, &auth, &id).await?;
    auth.require_admin("os_compute_api:servers:migrations:index")?;
    let f = MigrationFilter {
        instance_uuid: Some(id),
        migration_type: Some(migration::LIVE.into()),
        ..Default::default()
    };
    let rows = sdb::migrations(svc.store(), &f).await?;
    let list: Vec<Value> = rows
        .iter()
        .filter(|r| !migration::is_final(&r.status))
        .map(|r| server_view(r, mv))
        .collect();
    Ok(Json(json!({ "migrations": list })))
}

/// `GET /servers/{id}/migrations/{migration_id}` (2.23): a live migration in progress.
pub async fn server_migration_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, mid)): Path<(String, String)>,
) -> NovaResult<Json<Value>> {
    gate(mv, 23)?;
    let _s = find(&svc, &auth, &id).await?;
    auth.require_admin("os_compute_api:servers:migrations:show")?;
    let Some(r) = migration_of(&svc, &id, &mid).await? else {
        return Err(NovaError::not_found(format!(
            "In-progress live migration {mid} is not found for server {id}."
        )));
    };
    if r.migration_type != migration::LIVE {
        return Err(NovaError::not_found(format!(
            "Migration {mid} for server {id} is not live-migration."
        )));
    }
    if !LIVE_IN_PROGRESS.contains(&r.status.as_str()) {
        return Err(NovaError::not_found(format!(
            "Live migration {mid} for server {id} is not in progress."
        )));
    }
    Ok(Json(json!({ "migration": server_view(&r, mv) })))
}

fn invalid_migration_state(mid: &str, server: &str, state: &str, method: &str) -> NovaError {
    NovaError::bad_request(format!(
        "Migration {mid} state of instance {server} is {state}. Cannot {method} while the \
         migration is in this state."
    ))
}

/// Starts (and, when `done`, finishes) an instance action on the server, applying `f` in the
/// same write.
async fn with_action<F>(
    svc: &ComputeService,
    id: &str,
    action: (String, &'static str, String, &'static str),
    done: bool,
    f: F,
) -> NovaResult<()>
where
    F: Fn(&mut Server) -> NovaResult<()> + Send + Sync + Clone + 'static,
{
    let id = id.to_string();
    svc.store()
        .write_or_refuse(move |tx| {
            let (id, f, action) = (id.clone(), f.clone(), action.clone());
            Box::pin(async move {
                let Some(old) = sdb::get_tx(tx, &id).await? else {
                    return Ok(Err(super::servers::not_found(&id)));
                };
                if old.deleted {
                    return Ok(Err(super::servers::not_found(&id)));
                }
                let mut n = old.clone();
                if let Err(e) = f(&mut n) {
                    return Ok(Err(e));
                }
                let (rid, name, user, event) = &action;
                sdb::action_start(tx, &n, rid, name, user, event).await?;
                if done {
                    sdb::action_end(tx, &n.id, rid, None).await?;
                }
                if n != old {
                    sdb::save(tx, &old, &mut n).await?;
                }
                Ok(Ok(()))
            })
        })
        .await?
}

fn request_id(rid: Option<Extension<RequestId>>) -> String {
    rid.map(|Extension(r)| r.0)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()))
}

/// `DELETE /servers/{id}/migrations/{migration_id}` (2.24): aborts a running live migration
/// (also a queued or preparing one from 2.65): the destination's guest is removed and the
/// server stays on its source (`crate::moves`). 202.
pub async fn server_migration_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    rid: Option<Extension<RequestId>>,
    Path((id, mid)): Path<(String, String)>,
) -> NovaResult<Response> {
    gate(mv, 24)?;
    let s = find(&svc, &auth, &id).await?;
    auth.require_admin("os_compute_api:servers:migrations:delete")?;
    let mut allowed = vec![migration::RUNNING];
    if mv.at_least(65) {
        allowed.extend([migration::QUEUED, migration::PREPARING]);
    }
    let check = {
        let (ctx, mid) = (auth.0.clone(), mid.clone());
        move |n: &Server| -> NovaResult<()> {
            check_lock(&Auth(ctx.clone()), n)?;
            if n.task_state.as_deref() != Some(task::MIGRATING) {
                return Err(invalid_state(n, "task_state", "abort live migration"));
            }
            let Some(m) = n.migration.as_ref().filter(|m| m.id.to_string() == mid) else {
                return Err(NovaError::not_found(format!(
                    "Migration {mid} not found for instance {}",
                    n.id
                )));
            };
            if !allowed.contains(&m.status.as_str()) || m.abort.is_some() {
                return Err(invalid_migration_state(
                    &mid,
                    &n.id,
                    &m.status,
                    "abort live migration",
                ));
            }
            Ok(())
        }
    };
    check(&s)?;
    let r = request_id(rid);
    let action = (
        r.clone(),
        "live_migration_cancel",
        auth.user().to_string(),
        crate::moves::event::LIVE_ABORT,
    );
    with_action(&svc, &id, action, false, move |n| {
        check(n)?;
        if let Some(m) = n.active_move_mut() {
            m.abort = Some(r.clone());
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /servers/{id}/migrations/{migration_id}/action` with `{"force_complete": null}`
/// (2.22): a running live migration is asked to finish (the fake driver's finish on their
/// own; the action is recorded). 202.
pub async fn server_migration_action(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    rid: Option<Extension<RequestId>>,
    Path((id, mid)): Path<(String, String)>,
    Body(body): Body,
) -> NovaResult<Response> {
    gate(mv, 22)?;
    let top = crate::schema::object(&body, None)?;
    crate::schema::require(top, "force_complete", None, &body)?;
    crate::schema::only(top, &["force_complete"], None, &body)?;
    if !top["force_complete"].is_null() {
        let v = &top["force_complete"];
        return Err(crate::schema::fail(
            Some("force_complete"),
            v,
            format!("{} is not of type 'null'", crate::schema::repr(v)),
        ));
    }
    let s = find(&svc, &auth, &id).await?;
    auth.require_admin("os_compute_api:servers:migrations:force_complete")?;
    let check = {
        let (ctx, mid) = (auth.0.clone(), mid.clone());
        move |n: &Server| -> NovaResult<()> {
            check_lock(&Auth(ctx.clone()), n)?;
            if n.vm_state != vm::ACTIVE {
                return Err(invalid_state(n, "vm_state", "force_complete"));
            }
            if n.task_state.as_deref() != Some(task::MIGRATING) {
                return Err(invalid_state(n, "task_state", "force_complete"));
            }
            let Some(m) = n.migration.as_ref().filter(|m| m.id.to_string() == mid) else {
                return Err(NovaError::bad_request(format!(
                    "Migration {mid} not found for instance {}",
                    n.id
                )));
            };
            if m.status != migration::RUNNING {
                return Err(invalid_migration_state(
                    &mid,
                    &n.id,
                    &m.status,
                    "force complete",
                ));
            }
            Ok(())
        }
    };
    check(&s)?;
    let action = (
        request_id(rid),
        "live_migration_force_complete",
        auth.user().to_string(),
        crate::moves::event::LIVE_FORCE_COMPLETE,
    );
    with_action(&svc, &id, action, true, move |n: &mut Server| check(n)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
