//! `os-instance-actions`: what was done to a server, newest first, and the events of one
//! action. From 2.21 the actions of a deleted server can still be read; 2.51 shows events to
//! non-admins (without tracebacks); 2.58 adds `updated_at` and paging (`limit`, `marker`,
//! `changes-since`; `changes-before` from 2.66); 2.62 adds `hostId` (and `host` for admins)
//! to events; 2.84 adds `details` for admins.

use super::views::nova_time;
use super::{next_link, Links};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Mv, Pairs};
use crate::schema::{fail, repr};
use crate::server::{host_id, Server};
use crate::server_db::{self as sdb, Action, ActionEvent};
use crate::version::Microversion;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use strata_core::time::parse_iso;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/servers/{id}/os-instance-actions", get(action_list))
        .route(
            "/servers/{id}/os-instance-actions/{request_id}",
            get(action_show),
        )
}

/// The server as the actions API finds it: live ones, and deleted ones too from 2.21; other
/// projects' are hidden from non-admins (404).
async fn server_of(
    svc: &ComputeService,
    auth: &Auth,
    mv: Microversion,
    id: &str,
) -> NovaResult<Server> {
    match sdb::get(svc.store(), id).await? {
        Some(s)
            if (!s.deleted || mv.at_least(21))
                && (auth.admin() || s.project_id == auth.project()) =>
        {
            Ok(s)
        }
        _ => Err(super::servers::not_found(id)),
    }
}

fn action_view(a: &Action, mv: Microversion) -> Value {
    let mut v = json!({
        "action": a.action,
        "instance_uuid": a.instance_uuid,
        "request_id": a.request_id,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "start_time": nova_time(a.start_time),
        "message": a.message,
    });
    if mv.at_least(58) {
        v["updated_at"] = json!(nova_time(a.updated_at));
    }
    v
}

/// The message of a failed event, without its traceback frame.
fn details(e: &ActionEvent) -> Value {
    match &e.traceback {
        Some(t) => {
            let last = t.lines().map(str::trim).rfind(|l| !l.is_empty());
            json!(last.unwrap_or_default())
        }
        None => Value::Null,
    }
}

/// An event's view; `host` is where it ran (the server's host when the event was recorded
/// before the server was placed).
fn event_view(
    e: &ActionEvent,
    project: &str,
    host: Option<&str>,
    mv: Microversion,
    admin: bool,
) -> Value {
    let host = e.host.as_deref().or(host);
    let mut v = json!({
        "event": e.event,
        "start_time": nova_time(e.start_time),
        "finish_time": e.finish_time.map(nova_time),
        "result": e.result,
    });
    if admin {
        v["traceback"] = json!(e.traceback);
        if mv.at_least(62) {
            v["host"] = json!(host);
        }
        if mv.at_least(84) {
            v["details"] = details(e);
        }
    }
    if mv.at_least(62) {
        v["hostId"] = json!(host_id(project, host));
    }
    v
}

/// A `date-time` query parameter.
fn time_param(pairs: &Pairs, key: &str) -> NovaResult<Option<i64>> {
    match pairs.get(key) {
        None => Ok(None),
        Some(s) => match parse_iso(s) {
            Some(t) => Ok(Some(t)),
            None => {
                let v = json!(s);
                Err(fail(
                    Some(key),
                    &v,
                    format!("{} is not a 'date-time'", repr(&v)),
                ))
            }
        },
    }
}

/// `GET /servers/{id}/os-instance-actions`.
pub async fn action_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    pairs: Pairs,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let mut page_limit = None;
    let mut marker = None;
    let (mut since, mut before) = (None, None);
    if mv.at_least(58) {
        let mut allowed = vec!["limit", "marker", "changes-since"];
        if mv.at_least(66) {
            allowed.push("changes-before");
        }
        let extra: Vec<String> = pairs
            .0
            .iter()
            .filter(|(k, _)| !allowed.contains(&k.as_str()))
            .map(|(k, _)| format!("'{k}'"))
            .collect();
        if !extra.is_empty() {
            return Err(NovaError::bad_request(format!(
                "Additional properties are not allowed ({} {} unexpected)",
                extra.join(", "),
                if extra.len() == 1 { "was" } else { "were" }
            )));
        }
        if let Some(l) = pairs.get("limit") {
            let v = json!(l);
            let n: usize = l.trim().parse().map_err(|_| {
                fail(
                    Some("limit"),
                    &v,
                    format!("{} does not match '^[0-9]*$'", repr(&v)),
                )
            })?;
            page_limit = Some(n.min(1000));
        }
        marker = pairs.get("marker").map(str::to_string);
        since = time_param(&pairs, "changes-since")?;
        before = time_param(&pairs, "changes-before")?;
        if let (Some(s), Some(b)) = (since, before) {
            if b < s {
                return Err(NovaError::bad_request(
                    "The value of changes-since must be less than or equal to changes-before.",
                ));
            }
        }
    }
    let s = server_of(&svc, &auth, mv, &id).await?;
    let mut actions: Vec<Action> = sdb::actions(svc.store(), &s.id)
        .await?
        .into_iter()
        .filter(|a| since.is_none_or(|t| a.updated_at >= t))
        .filter(|a| before.is_none_or(|t| a.updated_at <= t))
        .collect();
    if let Some(m) = &marker {
        let Some(pos) = actions.iter().position(|a| &a.request_id == m) else {
            return Err(NovaError::bad_request(format!(
                "Marker {m} could not be found."
            )));
        };
        actions.drain(..=pos);
    }
    let limit = page_limit.unwrap_or(1000);
    actions.truncate(limit);
    let list: Vec<Value> = actions.iter().map(|a| action_view(a, mv)).collect();
    let mut body = json!({ "instanceActions": list });
    if mv.at_least(58) && limit > 0 && actions.len() == limit {
        if let Some(last) = actions.last() {
            body["links"] = next_link(
                &format!("{}/servers/{id}/os-instance-actions", links.self_base),
                &pairs,
                limit,
                &last.request_id,
            );
        }
    }
    Ok(Json(body))
}

/// `GET /servers/{id}/os-instance-actions/{request_id}`.
pub async fn action_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, request_id)): Path<(String, String)>,
) -> NovaResult<Json<Value>> {
    let s = server_of(&svc, &auth, mv, &id).await?;
    let Some(a) = sdb::actions(svc.store(), &s.id)
        .await?
        .into_iter()
        .find(|a| a.request_id == request_id)
    else {
        return Err(NovaError::not_found(format!(
            "Action {request_id} not found"
        )));
    };
    let mut v = action_view(&a, mv);
    let admin = auth.admin();
    if admin || mv.at_least(51) {
        let project = if a.project_id.is_empty() {
            s.project_id.as_str()
        } else {
            a.project_id.as_str()
        };
        v["events"] = a
            .events
            .iter()
            .map(|e| event_view(e, project, s.host.as_deref(), mv, admin))
            .collect();
    }
    Ok(Json(json!({ "instanceAction": v })))
}
