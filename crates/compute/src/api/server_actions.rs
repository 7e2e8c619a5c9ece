//! `POST /servers/{id}/action`: Nova's server actions — reboot, stop/start, pause/unpause,
//! suspend/resume, lock/unlock, rebuild, console output, security groups, the admin password
//! and `createImage` (the snapshot itself is the host agent's; `crate::snapshot`).
//!
//! The body names one action (`{"<action>": {...}}`, anything else is Nova's 400), whose
//! schema is checked before the server is looked up, as Nova's validation decorators run
//! before the handler. Then, as Nova: the server must be visible (404), the caller a member of
//! its project or an admin (403), a locked server refuses non-admins (409, for the actions
//! Nova guards with `check_instance_lock`), and the server must be in one of the states Nova's
//! `check_instance_state` allows (409). Actions the host carries out set a task and what the
//! host's agent must do (power, reboot sequence, image), bumping the generation so the agent
//! wakes; its report finishes the task (`controller.rs`). Each action starts an instance
//! action record under the names Nova uses; those done at once (lock, unlock, the password)
//! finish it in the same write.

use super::servers::{self, check_lock, find, invalid_state, mutate, mutate_with, Shape, ViewCtx};
use super::Links;
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv};
use crate::schema::{self, fail, repr};
use crate::server::{task, vm, Server};
use crate::server_db as sdb;
use crate::version::Microversion;
use crate::{db, ComputeService};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine;
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_agent_api::Power;
use strata_api::{AuthContext, RequestId};

pub fn routes() -> Router<ComputeService> {
    Router::new().route("/servers/{id}/action", post(server_action))
}

/// Everything an action handler gets.
struct Call {
    svc: ComputeService,
    auth: Auth,
    mv: Microversion,
    links: Links,
    request_id: String,
    id: String,
}

impl Call {
    /// `(request id, action, user, event)` for an instance action record.
    fn record(&self, action: &str, event: &str) -> Option<(String, String, String, String)> {
        Some((
            self.request_id.clone(),
            action.into(),
            self.auth.user().into(),
            event.into(),
        ))
    }

    /// The caller's context (to check the lock inside store writes).
    fn ctx(&self) -> Arc<AuthContext> {
        self.auth.0.clone()
    }
}

/// `POST /servers/{id}/action`.
pub async fn server_action(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    rid: Option<Extension<RequestId>>,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Response> {
    // Nova's `action_peek`: exactly one key names the action.
    let (name, arg) = match body.as_object() {
        Some(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one key");
            (k.clone(), v.clone())
        }
        _ => return Err(NovaError::bad_request("Malformed request body")),
    };
    let request_id = rid
        .map(|Extension(r)| r.0)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
    let c = Call {
        svc,
        auth,
        mv,
        links,
        request_id,
        id,
    };
    match name.as_str() {
        "reboot" => reboot(c, &arg).await,
        "os-stop" => power_action(c, &STOP).await,
        "os-start" => power_action(c, &START).await,
        "pause" => power_action(c, &PAUSE).await,
        "unpause" => power_action(c, &UNPAUSE).await,
        "suspend" => power_action(c, &SUSPEND).await,
        "resume" => power_action(c, &RESUME).await,
        "lock" => lock(c, &arg).await,
        "unlock" => unlock(c).await,
        "rebuild" => rebuild(c, &arg).await,
        "os-getConsoleOutput" => console_output(c, &arg).await,
        "addSecurityGroup" => security_group(c, &arg, true).await,
        "removeSecurityGroup" => security_group(c, &arg, false).await,
        "changePassword" => change_password(c, &arg).await,
        "createImage" => create_image(c, &arg).await,
        other => Err(NovaError::bad_request(format!(
            "There is no such action: {other}"
        ))),
    }
}

fn accepted() -> NovaResult<Response> {
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Nova's `PROJECT_MEMBER_OR_ADMIN`: an admin, or a member (or manager) of the server's
/// project.
fn require_member(auth: &Auth, s: &Server, rule: &str) -> NovaResult<()> {
    let member = auth.0.has_role("member") || auth.0.has_role("manager");
    if auth.admin() || (auth.project() == s.project_id && member) {
        Ok(())
    } else {
        Err(NovaError::policy(rule))
    }
}

/// Nova's `check_instance_state`: the `vm_state` first, then the `task_state`.
fn check_state(
    s: &Server,
    vm_states: &[&str],
    task_states: &[Option<&str>],
    action: &str,
) -> NovaResult<()> {
    if !vm_states.contains(&s.vm_state.as_str()) {
        return Err(invalid_state(s, "vm_state", action));
    }
    if !task_states.contains(&s.task_state.as_deref()) {
        return Err(invalid_state(s, "task_state", action));
    }
    Ok(())
}

/// Nova's `InstanceNotReady`: nothing runs the server's guest (no host, or a build that never
/// reached it).
fn check_host(s: &Server) -> NovaResult<()> {
    if s.host.is_none() || !s.on_host {
        return Err(NovaError::conflict(format!(
            "Instance {} is not ready",
            s.id
        )));
    }
    Ok(())
}

// ------------------------------------------------------------------ power actions

/// An action the host's agent carries out by moving the guest to a power state.
struct PowerAction {
    /// The action's name in `InvalidState` messages and instance actions.
    name: &'static str,
    event: &'static str,
    rule: &'static str,
    vm_states: &'static [&'static str],
    /// Nova's `check_instance_host` (stop and start).
    host_first: bool,
    task: &'static str,
    power: Power,
}

const STOP: PowerAction = PowerAction {
    name: "stop",
    event: "compute_stop_instance",
    rule: "os_compute_api:servers:stop",
    vm_states: &[vm::ACTIVE, vm::ERROR],
    host_first: true,
    task: task::POWERING_OFF,
    power: Power::Shutdown,
};
const START: PowerAction = PowerAction {
    name: "start",
    event: "compute_start_instance",
    rule: "os_compute_api:servers:start",
    vm_states: &[vm::STOPPED],
    host_first: true,
    task: task::POWERING_ON,
    power: Power::Running,
};
const PAUSE: PowerAction = PowerAction {
    name: "pause",
    event: "compute_pause_instance",
    rule: "os_compute_api:os-pause-server:pause",
    vm_states: &[vm::ACTIVE],
    host_first: false,
    task: task::PAUSING,
    power: Power::Paused,
};
const UNPAUSE: PowerAction = PowerAction {
    name: "unpause",
    event: "compute_unpause_instance",
    rule: "os_compute_api:os-pause-server:unpause",
    vm_states: &[vm::PAUSED],
    host_first: false,
    task: task::UNPAUSING,
    power: Power::Running,
};
const SUSPEND: PowerAction = PowerAction {
    name: "suspend",
    event: "compute_suspend_instance",
    rule: "os_compute_api:os-suspend-server:suspend",
    vm_states: &[vm::ACTIVE],
    host_first: false,
    task: task::SUSPENDING,
    power: Power::Suspended,
};
const RESUME: PowerAction = PowerAction {
    name: "resume",
    event: "compute_resume_instance",
    rule: "os_compute_api:os-suspend-server:resume",
    vm_states: &[vm::SUSPENDED],
    host_first: false,
    task: task::RESUMING,
    power: Power::Running,
};

async fn power_action(c: Call, a: &'static PowerAction) -> NovaResult<Response> {
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, a.rule)?;
    let ctx = c.ctx();
    mutate_with(&c.svc, &c.id, c.record(a.name, a.event), move |n| {
        check_lock(&Auth(ctx.clone()), n)?;
        if a.host_first {
            check_host(n)?;
        }
        check_state(n, a.vm_states, &[None], a.name)?;
        check_host(n)?;
        n.task_state = Some(a.task.into());
        n.power = a.power;
        n.generation += 1;
        Ok(())
    })
    .await?;
    accepted()
}

// ------------------------------------------------------------------ reboot

/// `vm_states.ALLOW_SOFT_REBOOT`.
const ALLOW_SOFT_REBOOT: &[&str] = &[vm::ACTIVE];
/// `vm_states.ALLOW_HARD_REBOOT`.
const ALLOW_HARD_REBOOT: &[&str] = &[
    vm::ACTIVE,
    vm::STOPPED,
    vm::PAUSED,
    vm::SUSPENDED,
    vm::ERROR,
];
/// `task_states.ALLOW_REBOOT`.
const ALLOW_REBOOT: &[Option<&str>] = &[
    None,
    Some(task::REBOOTING),
    Some("reboot_pending"),
    Some("reboot_started"),
    Some(task::RESUMING),
    Some(task::REBOOTING_HARD),
    Some(task::UNPAUSING),
    Some(task::PAUSING),
    Some(task::SUSPENDING),
];

async fn reboot(c: Call, arg: &Value) -> NovaResult<Response> {
    let m = schema::object(arg, Some("reboot"))?;
    schema::only(m, &["type"], Some("reboot"), arg)?;
    let t = schema::require(m, "type", Some("reboot"), arg)?;
    const TYPES: &[&str] = &["HARD", "Hard", "hard", "SOFT", "Soft", "soft"];
    let hard = match t.as_str() {
        Some(s) if TYPES.contains(&s) => s.eq_ignore_ascii_case("hard"),
        _ => {
            return Err(fail(
                Some("type"),
                t,
                format!(
                    "{} is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']",
                    repr(t)
                ),
            ))
        }
    };
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:servers:reboot")?;
    let ctx = c.ctx();
    mutate_with(
        &c.svc,
        &c.id,
        c.record("reboot", "compute_reboot_instance"),
        move |n| {
            check_lock(&Auth(ctx.clone()), n)?;
            // `API.reboot`, then `_soft_reboot` / `_hard_reboot`.
            let mut any: Vec<&str> = ALLOW_SOFT_REBOOT.to_vec();
            any.extend_from_slice(ALLOW_HARD_REBOOT);
            check_state(n, &any, ALLOW_REBOOT, "reboot")?;
            if hard {
                check_state(n, ALLOW_HARD_REBOOT, ALLOW_REBOOT, "reboot")?;
            } else {
                check_state(n, ALLOW_SOFT_REBOOT, &[None], "reboot")?;
            }
            check_host(n)?;
            n.task_state = Some(
                if hard {
                    task::REBOOTING_HARD
                } else {
                    task::REBOOTING
                }
                .into(),
            );
            n.reboot_seq += 1;
            n.hard_reboot = hard;
            n.power = Power::Running;
            n.generation += 1;
            Ok(())
        },
    )
    .await?;
    accepted()
}

// ------------------------------------------------------------------ lock, unlock, password

/// Changes a server and records an action that is done at once (started and finished in the
/// same write). `f` says whether there is anything to record.
async fn record_done<F>(
    svc: &ComputeService,
    id: &str,
    action: (String, String, String, String),
    f: F,
) -> NovaResult<Server>
where
    F: Fn(&mut Server) -> NovaResult<bool> + Send + Sync + Clone + 'static,
{
    let id = id.to_string();
    svc.store()
        .write_or_refuse(move |tx| {
            let (id, f, action) = (id.clone(), f.clone(), action.clone());
            Box::pin(async move {
                let Some(old) = sdb::get_tx(tx, &id).await? else {
                    return Ok(Err(servers::not_found(&id)));
                };
                if old.deleted {
                    return Ok(Err(servers::not_found(&id)));
                }
                let mut n = old.clone();
                let record = match f(&mut n) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                if record {
                    let (rid, act, user, event) = &action;
                    sdb::action_start(tx, &n, rid, act, user, event).await?;
                    sdb::action_finish(tx, &n.id, None).await?;
                }
                if n != old {
                    sdb::save(tx, &old, &mut n).await?;
                }
                Ok(Ok(n))
            })
        })
        .await?
}

async fn lock(c: Call, arg: &Value) -> NovaResult<Response> {
    // From 2.73 the body is `{"lock": null}` or `{"lock": {"locked_reason": "..."}}`.
    let mut reason = None;
    if c.mv.at_least(73) {
        match arg {
            Value::Null => {}
            Value::Object(m) => {
                schema::only(m, &["locked_reason"], Some("lock"), arg)?;
                if let Some(r) = m.get("locked_reason") {
                    reason = Some(schema::string(r, "locked_reason", 1, 255)?.to_string());
                }
            }
            other => {
                return Err(fail(
                    Some("lock"),
                    other,
                    format!("{} is not of type 'object', 'null'", repr(other)),
                ))
            }
        }
    }
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:os-lock-server:lock")?;
    let project = c.auth.project().to_string();
    let action = c.record("lock", "api_lock").expect("a record");
    record_done(&c.svc, &c.id, action, move |n| {
        // Only an admin (not the owner) locks again a locked server.
        let owner = n.project_id == project;
        if n.locked && owner {
            return Ok(false);
        }
        n.locked = true;
        n.locked_by = Some(if owner { "owner" } else { "admin" }.into());
        if let Some(r) = &reason {
            n.locked_reason = Some(r.clone());
        }
        Ok(true)
    })
    .await?;
    accepted()
}

async fn unlock(c: Call) -> NovaResult<Response> {
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:os-lock-server:unlock")?;
    // `is_expected_locked_by`: a lock taken by the other side (an admin's, for the owner)
    // needs the override rule (admins only).
    let owner = s.project_id == c.auth.project();
    let expected = if owner { "owner" } else { "admin" };
    if s.locked_by.as_deref().is_some_and(|b| b != expected) {
        c.auth
            .require_admin("os_compute_api:os-lock-server:unlock:unlock_override")?;
    }
    let action = c.record("unlock", "api_unlock").expect("a record");
    record_done(&c.svc, &c.id, action, move |n| {
        n.locked = false;
        n.locked_by = None;
        n.locked_reason = None;
        Ok(true)
    })
    .await?;
    accepted()
}

async fn change_password(c: Call, arg: &Value) -> NovaResult<Response> {
    let m = schema::object(arg, Some("changePassword"))?;
    schema::only(m, &["adminPass"], Some("changePassword"), arg)?;
    let p = schema::require(m, "adminPass", Some("changePassword"), arg)?;
    schema::string(p, "adminPass", 0, usize::MAX)?;
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:os-admin-password")?;
    let ctx = c.ctx();
    let action = c
        .record("changePassword", "compute_set_admin_password")
        .expect("a record");
    // The fake guests take any password at once: the action is recorded as done.
    record_done(&c.svc, &c.id, action, move |n| {
        check_lock(&Auth(ctx.clone()), n)?;
        check_state(n, &[vm::ACTIVE], &[None], "changePassword")?;
        check_host(n)?;
        Ok(true)
    })
    .await?;
    accepted()
}

// ------------------------------------------------------------------ console output

/// Nova's `_tail_log`: the last `length` newline-separated pieces (Python's
/// `'\n'.join(log.split('\n')[-length:])`, negative lengths included); 0 is nothing.
fn tail_log(log: &str, length: Option<i64>) -> String {
    let Some(n) = length else {
        return log.to_string();
    };
    if n == 0 {
        return String::new();
    }
    let parts: Vec<&str> = log.split('\n').collect();
    let len = parts.len() as i64;
    let start = if n > 0 {
        (len - n).max(0)
    } else {
        (-n).min(len)
    };
    parts[start as usize..].join("\n")
}

async fn console_output(c: Call, arg: &Value) -> NovaResult<Response> {
    let m = schema::object(arg, Some("os-getConsoleOutput"))?;
    schema::only(m, &["length"], Some("os-getConsoleOutput"), arg)?;
    let length = match m.get("length") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(n)) => match n.as_i64() {
            Some(i) if i >= -1 => Some(i),
            Some(i) => {
                return Err(fail(
                    Some("length"),
                    v,
                    format!("{i} is less than the minimum of -1"),
                ))
            }
            None => {
                return Err(fail(
                    Some("length"),
                    v,
                    format!("{} is not of type 'integer', 'string', 'null'", repr(v)),
                ))
            }
        },
        Some(v @ Value::String(s)) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(
                    Some("length"),
                    v,
                    format!("{} does not match '^-?[0-9]+$'", repr(v)),
                ));
            }
            // Nova's `int(length)`; a number too large for it is everything.
            Some(s.parse::<i64>().unwrap_or(if s.starts_with('-') {
                i64::MIN + 1
            } else {
                i64::MAX
            }))
        }
        Some(v) => {
            return Err(fail(
                Some("length"),
                v,
                format!("{} is not of type 'integer', 'string', 'null'", repr(v)),
            ))
        }
    };
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:os-console-output")?;
    check_host(&s)?;
    if matches!(s.task_state.as_deref(), Some(task::DELETING | "migrating")) {
        return Err(invalid_state(&s, "task_state", "get_console_output"));
    }
    let output: String = tail_log(&s.console, length)
        .chars()
        .filter(|ch| !matches!(*ch, '\x00'..='\x08' | '\x0b'..='\x1f'))
        .collect();
    Ok((StatusCode::OK, Json(json!({ "output": output }))).into_response())
}

// ------------------------------------------------------------------ security groups

/// A query-string value, percent-encoded.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A security group by id, or by name in the caller's project (neutronclient's
/// `find_resourceid_by_name_or_id`): `(id, name)`.
async fn find_group(c: &Call, wanted: &str) -> NovaResult<(String, String)> {
    let ctx = c.auth.0.clone();
    let not_found = || {
        NovaError::not_found(format!(
            "Security group {wanted} is not found for project {}",
            c.auth.project()
        ))
    };
    if uuid::Uuid::parse_str(wanted).is_ok() {
        if let Some(a) = c
            .svc
            .neutron(
                ctx.clone(),
                Method::GET,
                &format!("/security-groups/{wanted}"),
                None,
            )
            .await
        {
            if a.ok() {
                let g = &a.body["security_group"];
                return Ok((
                    g["id"].as_str().unwrap_or(wanted).to_string(),
                    g["name"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    let Some(a) = c
        .svc
        .neutron(
            ctx,
            Method::GET,
            &format!(
                "/security-groups?name={}&project_id={}",
                encode(wanted),
                encode(c.auth.project())
            ),
            None,
        )
        .await
    else {
        return Err(not_found());
    };
    let found: Vec<Value> = a.body["security_groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|g| g["name"].as_str() == Some(wanted))
        .collect();
    match found.len() {
        0 => Err(not_found()),
        1 => Ok((
            found[0]["id"].as_str().unwrap_or_default().to_string(),
            wanted.to_string(),
        )),
        _ => Err(NovaError::conflict(format!(
            "Multiple security_group matches found for name '{wanted}', use an ID to be more \
             specific."
        ))),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `addSecurityGroup` / `removeSecurityGroup` (`{"name": ...}`): every port of the server
/// gains or loses the group; the server's view follows its ports.
async fn security_group(c: Call, arg: &Value, add: bool) -> NovaResult<Response> {
    let rule = if add {
        "os_compute_api:os-security-groups:add"
    } else {
        "os_compute_api:os-security-groups:remove"
    };
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, rule)?;
    // Nova's `_parse`.
    let Some(m) = arg.as_object() else {
        return Err(NovaError::bad_request("Missing parameter dict"));
    };
    let Some(name) = m.get("name") else {
        return Err(NovaError::bad_request("Security group not specified"));
    };
    let name = match name.as_str() {
        Some(n) if !n.trim().is_empty() => n.to_string(),
        _ => {
            return Err(NovaError::bad_request(
                "Security group name cannot be empty",
            ))
        }
    };
    let (group_id, group_name) = find_group(&c, &name).await?;
    let ctx = c.auth.0.clone();
    let ports: Vec<Value> = match c
        .svc
        .neutron(
            ctx.clone(),
            Method::GET,
            &format!("/ports?device_id={}", c.id),
            None,
        )
        .await
    {
        Some(a) if a.ok() => a.body["ports"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    if ports.is_empty() {
        return Err(NovaError::not_found(format!(
            "instance_id {} could not be found as device id on any ports",
            c.id
        )));
    }
    let mut found = false;
    let mut union: Vec<String> = Vec::new();
    for p in &ports {
        let pid = p["id"].as_str().unwrap_or_default();
        let mut groups = strings(&p["security_groups"]);
        if add {
            let secured = p["port_security_enabled"].as_bool().unwrap_or(true);
            let has_ip = p["fixed_ips"].as_array().is_some_and(|a| !a.is_empty())
                || p["ip_allocation"].as_str() == Some("deferred");
            if !(has_ip && secured) {
                return Err(NovaError::bad_request(
                    "Network requires port_security_enabled and subnet associated in order \
                     to apply security groups.",
                ));
            }
            if !groups.contains(&group_id) {
                groups.push(group_id.clone());
            }
        } else {
            let before = groups.len();
            groups.retain(|g| *g != group_id);
            if groups.len() == before {
                for g in groups {
                    if !union.contains(&g) {
                        union.push(g);
                    }
                }
                continue;
            }
        }
        let body = json!({"port": {"security_groups": groups}});
        match c
            .svc
            .neutron(
                ctx.clone(),
                Method::PUT,
                &format!("/ports/{pid}"),
                Some(&body),
            )
            .await
        {
            Some(a) if a.ok() => {}
            Some(a) if a.status == StatusCode::BAD_REQUEST => {
                return Err(NovaError::bad_request(a.message()))
            }
            Some(a) if a.status == StatusCode::NOT_FOUND => continue,
            Some(a) => {
                tracing::warn!(port = %pid, error = %a.message(), "updating a port's groups");
                return Err(NovaError::internal());
            }
            None => return Err(NovaError::internal()),
        }
        found = true;
        for g in groups {
            if !union.contains(&g) {
                union.push(g);
            }
        }
    }
    if !add && !found {
        return Err(NovaError::not_found(format!(
            "Security group {name} not associated with the instance {}",
            c.id
        )));
    }
    // The names the view shows, from the groups now on the ports.
    let svc_ctx = crate::controller::service_context(&s.project_id);
    let mut names = Vec::new();
    for g in &union {
        if *g == group_id {
            names.push(group_name.clone());
            continue;
        }
        let n = c
            .svc
            .neutron(
                svc_ctx.clone(),
                Method::GET,
                &format!("/security-groups/{g}"),
                None,
            )
            .await
            .filter(|a| a.ok())
            .and_then(|a| a.body["security_group"]["name"].as_str().map(String::from))
            .unwrap_or_else(|| g.clone());
        names.push(n);
    }
    mutate(&c.svc, &c.id, move |n| {
        n.security_groups = union.clone();
        n.security_group_names = names.clone();
        Ok(())
    })
    .await?;
    accepted()
}

// ------------------------------------------------------------------ rebuild

/// A parsed rebuild request; `None` fields are left as they are.
#[derive(Clone, Default)]
struct Rebuild {
    image: String,
    name: Option<String>,
    admin_pass: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    disk_config: Option<String>,
    access_ip_v4: Option<String>,
    access_ip_v6: Option<String>,
    description: Option<Option<String>>,
    key_name: Option<Option<String>>,
    user_data: Option<Option<String>>,
    hostname: Option<String>,
}

fn parse_rebuild(arg: &Value, mv: Microversion) -> NovaResult<Rebuild> {
    let m: &Map<String, Value> = schema::object(arg, Some("rebuild"))?;
    let mut allowed = vec![
        "name",
        "imageRef",
        "adminPass",
        "metadata",
        "preserve_ephemeral",
        "OS-DCF:diskConfig",
        "accessIPv4",
        "accessIPv6",
    ];
    if !mv.at_least(57) {
        allowed.push("personality");
    }
    if mv.at_least(19) {
        allowed.push("description");
    }
    if mv.at_least(54) {
        allowed.push("key_name");
    }
    if mv.at_least(57) {
        allowed.push("user_data");
    }
    if mv.at_least(63) {
        allowed.push("trusted_image_certificates");
    }
    if mv.at_least(90) {
        allowed.push("hostname");
    }
    schema::only(m, &allowed, Some("rebuild"), arg)?;
    let image_v = schema::require(m, "imageRef", Some("rebuild"), arg)?;
    let image = match image_v.as_str() {
        Some(s) if uuid::Uuid::parse_str(s).is_ok() => s.to_string(),
        Some(_) => {
            return Err(fail(
                Some("imageRef"),
                image_v,
                format!("{} is not a 'uuid'", repr(image_v)),
            ))
        }
        None => {
            return Err(fail(
                Some("imageRef"),
                image_v,
                format!("{} is not of type 'string'", repr(image_v)),
            ))
        }
    };
    let mut r = Rebuild {
        image,
        ..Default::default()
    };
    if let Some(v) = m.get("name") {
        r.name = Some(schema::name(v, "name")?.to_string());
    }
    if let Some(v) = m.get("adminPass") {
        r.admin_pass = Some(schema::string(v, "adminPass", 0, usize::MAX)?.to_string());
    }
    if let Some(v) = m.get("metadata") {
        r.metadata = Some(servers::metadata(v, "metadata")?);
    }
    if let Some(v) = m.get("preserve_ephemeral") {
        schema::boolean(v, "preserve_ephemeral")?;
    }
    if let Some(v) = m.get("OS-DCF:diskConfig") {
        match v.as_str() {
            Some(s @ ("AUTO" | "MANUAL")) => r.disk_config = Some(s.to_string()),
            _ => {
                return Err(fail(
                    Some("OS-DCF:diskConfig"),
                    v,
                    format!("{} is not one of ['AUTO', 'MANUAL']", repr(v)),
                ))
            }
        }
    }
    for (key, v6) in [("accessIPv4", false), ("accessIPv6", true)] {
        let Some(v) = m.get(key) else { continue };
        let s = v.as_str().unwrap_or("");
        let ok = if v6 {
            s.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            s.parse::<std::net::Ipv4Addr>().is_ok()
        };
        if !v.is_string() || !ok {
            let kind = if v6 { "ipv6" } else { "ipv4" };
            return Err(fail(Some(key), v, format!("{} is not a '{kind}'", repr(v))));
        }
        if v6 {
            r.access_ip_v6 = Some(s.to_string());
        } else {
            r.access_ip_v4 = Some(s.to_string());
        }
    }
    if let Some(v) = m.get("personality") {
        if !v.is_array() {
            return Err(fail(
                Some("personality"),
                v,
                format!("{} is not of type 'array'", repr(v)),
            ));
        }
    }
    if let Some(v) = m.get("description") {
        r.description = Some(match v {
            Value::Null => None,
            _ => {
                let s = schema::string(v, "description", 0, 255)?;
                if !schema::valid_description(s) {
                    return Err(fail(
                        Some("description"),
                        v,
                        format!("{} does not match the description pattern", repr(v)),
                    ));
                }
                Some(s.to_string())
            }
        });
    }
    if let Some(v) = m.get("key_name") {
        r.key_name = Some(match v {
            Value::Null => None,
            _ => Some(schema::name(v, "key_name")?.to_string()),
        });
    }
    if let Some(v) = m.get("user_data") {
        r.user_data = Some(match v {
            Value::Null => None,
            _ => {
                let s = schema::string(v, "user_data", 0, 65535)?;
                if base64::engine::general_purpose::STANDARD
                    .decode(s.trim().as_bytes())
                    .is_err()
                {
                    return Err(fail(
                        Some("user_data"),
                        v,
                        format!("{} is not a 'base64'", repr(v)),
                    ));
                }
                Some(s.to_string())
            }
        });
    }
    if let Some(v) = m.get("trusted_image_certificates") {
        match v {
            Value::Null => {}
            Value::Array(a) if !a.is_empty() && a.len() <= 50 => {
                for (i, x) in a.iter().enumerate() {
                    schema::string(x, "trusted_image_certificates", 1, usize::MAX)?;
                    if a[..i].contains(x) {
                        return Err(fail(
                            Some("trusted_image_certificates"),
                            v,
                            format!("{} has non-unique elements", repr(v)),
                        ));
                    }
                }
            }
            Value::Array(a) if a.is_empty() => {
                return Err(fail(
                    Some("trusted_image_certificates"),
                    v,
                    "[] is too short",
                ))
            }
            _ => {
                return Err(fail(
                    Some("trusted_image_certificates"),
                    v,
                    format!("{} is not of type 'array', 'null'", repr(v)),
                ))
            }
        }
    }
    if let Some(v) = m.get("hostname") {
        r.hostname = Some(schema::string(v, "hostname", 1, 255)?.to_string());
    }
    Ok(r)
}

/// The image to rebuild from, checked as Nova's rebuild checks it against the server's
/// flavor; its properties.
async fn rebuild_image(
    c: &Call,
    s: &Server,
    image: &str,
) -> NovaResult<Option<BTreeMap<String, String>>> {
    let Some(a) = c
        .svc
        .glance(
            c.auth.0.clone(),
            Method::GET,
            &format!("/images/{image}"),
            None,
        )
        .await
    else {
        return Ok(None);
    };
    if !a.ok() {
        return Err(NovaError::bad_request("Cannot find image for rebuild"));
    }
    let img = a.body;
    if img["status"].as_str() != Some("active") {
        return Err(NovaError::bad_request(format!(
            "Image {image} is not active."
        )));
    }
    if s.flavor.memory_mb < img["min_ram"].as_i64().unwrap_or(0) {
        return Err(NovaError::bad_request(
            "Flavor's memory is too small for requested image.",
        ));
    }
    if s.flavor.root_gb > 0 {
        let disk = s.flavor.root_gb << 30;
        let size = img["size"].as_i64().unwrap_or(0);
        if size > disk {
            return Err(NovaError::bad_request(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, \
                 image is {size} bytes."
            )));
        }
        let min_disk = img["min_disk"].as_i64().unwrap_or(0);
        if min_disk > s.flavor.root_gb {
            return Err(NovaError::bad_request(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, \
                 minimum size is {} bytes.",
                min_disk << 30
            )));
        }
    }
    Ok(Some(servers::image_properties(&img)))
}

const REBUILD_STATES: &[&str] = &[vm::ACTIVE, vm::STOPPED, vm::ERROR];

async fn rebuild(c: Call, arg: &Value) -> NovaResult<Response> {
    let r = parse_rebuild(arg, c.mv)?;
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:servers:rebuild")?;
    // The lock and the state first (the decorators of `API.rebuild`), then the image.
    check_lock(&c.auth, &s)?;
    check_state(&s, REBUILD_STATES, &[None], "rebuild")?;
    check_host(&s)?;
    if s.image_ref.is_empty() && !c.mv.at_least(93) {
        return Err(NovaError::bad_request(format!(
            "Image {} is unacceptable: Unable to rebuild with a different image for a \
             volume-backed server.",
            r.image
        )));
    }
    let props = rebuild_image(&c, &s, &r.image).await?;
    let key_data = match &r.key_name {
        Some(Some(k)) => match db::get_keypair(c.svc.store(), c.auth.user(), k).await? {
            Some(kp) => Some(Some(kp.public_key)),
            None => return Err(NovaError::bad_request("Invalid key_name provided.")),
        },
        Some(None) => Some(None),
        None => None,
    };
    let password = r
        .admin_pass
        .clone()
        .unwrap_or_else(servers::random_password);
    let ctx = c.ctx();
    let s = mutate_with(
        &c.svc,
        &c.id,
        c.record("rebuild", "compute_rebuild_instance"),
        move |n| {
            check_lock(&Auth(ctx.clone()), n)?;
            check_state(n, REBUILD_STATES, &[None], "rebuild")?;
            check_host(n)?;
            n.image_ref = r.image.clone();
            if let Some(p) = &props {
                n.image_properties = p.clone();
            }
            if let Some(x) = &r.name {
                n.name = x.clone();
            }
            if let Some(x) = &r.metadata {
                n.metadata = x.clone();
            }
            if let Some(x) = &r.disk_config {
                n.disk_config = x.clone();
            }
            if let Some(x) = &r.access_ip_v4 {
                n.access_ip_v4 = x.clone();
            }
            if let Some(x) = &r.access_ip_v6 {
                n.access_ip_v6 = x.clone();
            }
            if let Some(x) = &r.description {
                n.description = x.clone();
            }
            if let Some(k) = &r.key_name {
                n.key_name = k.clone();
                n.key_data = key_data.clone().flatten();
            }
            if let Some(u) = &r.user_data {
                n.user_data = u.clone();
            }
            if let Some(h) = &r.hostname {
                n.hostname = h.clone();
            }
            n.task_state = Some(task::REBUILDING.into());
            n.progress = 0;
            // The guest is built again; a stopped server stays stopped (Nova rebuilds it
            // powered off), anything else boots.
            n.power = if n.vm_state == vm::STOPPED {
                Power::Shutdown
            } else {
                Power::Running
            };
            n.generation += 1;
            Ok(())
        },
    )
    .await?;
    let mut cx = ViewCtx::new(&c.svc, &c.auth, c.mv, &c.links).await?;
    let mut v = servers::view_one(&c.svc, &s, &mut cx, Shape::Core).await?;
    v["adminPass"] = json!(password);
    Ok((StatusCode::ACCEPTED, Json(json!({ "server": v }))).into_response())
}

// ------------------------------------------------------------------ createImage

/// The `vm_state`s a server is snapshotted in (`API.snapshot`).
const SNAPSHOT_STATES: &[&str] = &[vm::ACTIVE, vm::STOPPED, vm::PAUSED, vm::SUSPENDED];

/// Properties of the server's image a snapshot does not inherit: Nova's
/// `NON_INHERITABLE_IMAGE_PROPERTIES` and `[DEFAULT] non_inheritable_image_properties`
/// defaults, the formats (set as attributes), and what Glance reserves.
const NOT_INHERITED: &[&str] = &[
    "cinder_encryption_key_id",
    "cinder_encryption_key_deletion_policy",
    "img_signature",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_signature_certificate_uuid",
    "cache_in_nova",
    "bittorrent",
    "disk_format",
    "container_format",
    "location",
    "locations",
    "deleted",
    "deleted_at",
];

/// `{"name": ..., "metadata": {...}}` as Nova's `create_image` schema checks it.
fn parse_create_image(arg: &Value) -> NovaResult<(String, BTreeMap<String, String>)> {
    let m = schema::object(arg, Some("createImage"))?;
    schema::only(m, &["name", "metadata"], Some("createImage"), arg)?;
    let name = schema::name(
        schema::require(m, "name", Some("createImage"), arg)?,
        "name",
    )?;
    let metadata = match m.get("metadata") {
        Some(v) => servers::metadata(v, "metadata")?,
        None => BTreeMap::new(),
    };
    Ok((name.to_string(), metadata))
}

/// The image a snapshot fills, as Nova's `compute_utils.create_image` makes it: the server's
/// image's formats, `min_ram`/`min_disk` and inheritable properties, then `instance_uuid`,
/// `user_id`, `image_type: snapshot`, `base_image_ref`, then the request's metadata; private to
/// the caller's project (shared with the server's project when an admin snapshots another
/// project's server). Created `queued` as the caller; `(id, disk_format, container_format)`.
async fn create_snapshot_image(
    c: &Call,
    s: &Server,
    name: &str,
    metadata: &BTreeMap<String, String>,
) -> NovaResult<(String, String, String)> {
    let base = if s.image_ref.is_empty() {
        Value::Null
    } else {
        let ctx = crate::controller::service_context(&s.project_id);
        match c
            .svc
            .glance(ctx, Method::GET, &format!("/images/{}", s.image_ref), None)
            .await
        {
            Some(a) if a.ok() => a.body,
            _ => Value::Null,
        }
    };
    let disk_format = base["disk_format"].as_str().unwrap_or("raw").to_string();
    let container_format = base["container_format"]
        .as_str()
        .unwrap_or("bare")
        .to_string();
    let mut img = Map::new();
    for (k, v) in &s.image_properties {
        if !NOT_INHERITED.contains(&k.as_str()) && !k.starts_with("os_glance") {
            img.insert(k.clone(), json!(v));
        }
    }
    if !s.image_ref.is_empty() {
        img.insert("base_image_ref".into(), json!(s.image_ref));
    }
    img.insert("instance_uuid".into(), json!(s.id));
    img.insert("user_id".into(), json!(c.auth.user()));
    img.insert("image_type".into(), json!("snapshot"));
    let shared = c.auth.project() != s.project_id;
    if shared {
        img.insert("instance_owner".into(), json!(s.project_id));
    }
    for (k, v) in metadata {
        img.insert(k.clone(), json!(v));
    }
    img.insert("name".into(), json!(name));
    img.insert("disk_format".into(), json!(disk_format));
    img.insert("container_format".into(), json!(container_format));
    img.insert(
        "visibility".into(),
        json!(if shared { "shared" } else { "private" }),
    );
    img.insert(
        "min_ram".into(),
        json!(base["min_ram"].as_i64().unwrap_or(0)),
    );
    img.insert(
        "min_disk".into(),
        json!(base["min_disk"].as_i64().unwrap_or(0)),
    );
    let Some(a) = c
        .svc
        .glance(c.ctx(), Method::POST, "/images", Some(&Value::Object(img)))
        .await
    else {
        return Err(NovaError::conflict(
            "There is no image service to snapshot into.",
        ));
    };
    let id = match a.status {
        StatusCode::CREATED => a.body["id"].as_str().unwrap_or_default().to_string(),
        StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN => {
            return Err(NovaError::bad_request(a.message()))
        }
        StatusCode::PAYLOAD_TOO_LARGE => return Err(NovaError::over_quota(a.message())),
        _ => {
            tracing::warn!(server = %s.id, error = %a.message(), "creating a snapshot image");
            return Err(NovaError::internal());
        }
    };
    if shared {
        // The server's project may see (and accept) the image.
        let body = json!({"member": s.project_id});
        let path = format!("/images/{id}/members");
        if let Some(m) = c
            .svc
            .glance(c.ctx(), Method::POST, &path, Some(&body))
            .await
        {
            if !m.ok() {
                tracing::warn!(image = %id, error = %m.message(), "sharing a snapshot");
            }
        }
    }
    Ok((id, disk_format, container_format))
}

/// `createImage`: 202 once the image exists (`queued`) and the server's host is asked for the
/// snapshot; `Location` of the image up to 2.44, `{"image_id"}` from 2.45. As in Nova the lock
/// is not checked (a lock guards against changes; a snapshot changes nothing), and the image
/// metadata counts against `metadata_items` only up to 2.38.
async fn create_image(c: Call, arg: &Value) -> NovaResult<Response> {
    let (name, metadata) = parse_create_image(arg)?;
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:servers:create_image")?;
    if !c.mv.at_least(39) && !metadata.is_empty() {
        let limit =
            super::quotas::limit(&c.svc, c.auth.project(), c.auth.user(), "metadata_items").await?;
        if limit >= 0 && metadata.len() as i64 > limit {
            return Err(NovaError::over_quota("Image metadata limit exceeded"));
        }
    }
    if s.boot_from_volume() {
        return Err(NovaError::conflict(format!(
            "Snapshots of volume-backed instances are not supported yet (instance {}).",
            s.id
        )));
    }
    check_state(&s, SNAPSHOT_STATES, &[None], "createImage")?;
    check_host(&s)?;
    let (image_id, disk_format, container_format) =
        create_snapshot_image(&c, &s, &name, &metadata).await?;
    let job = crate::server::SnapshotJob {
        image_id: image_id.clone(),
        owner_project: c.auth.project().to_string(),
        disk_format,
        container_format,
    };
    let written = mutate_with(
        &c.svc,
        &c.id,
        c.record("createImage", crate::snapshot::EVENT),
        move |n| {
            check_state(n, SNAPSHOT_STATES, &[None], "createImage")?;
            check_host(n)?;
            n.task_state = Some(task::IMAGE_SNAPSHOT.into());
            n.snapshot = Some(job.clone());
            n.generation += 1;
            Ok(())
        },
    )
    .await;
    if let Err(e) = written {
        // The server changed (or went) since it was checked: no snapshot, no image.
        let path = format!("/images/{image_id}");
        let _ = c.svc.glance(c.ctx(), Method::DELETE, &path, None).await;
        return Err(e);
    }
    if c.mv.at_least(45) {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "image_id": image_id }))).into_response());
    }
    let location = c.svc.image_url(&image_id);
    Ok((StatusCode::ACCEPTED, [(http::header::LOCATION, location)]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_tails_like_nova() {
        let log = "a\nb\nc\n";
        assert_eq!(tail_log(log, None), log);
        assert_eq!(tail_log(log, Some(0)), "");
        assert_eq!(tail_log(log, Some(2)), "c\n");
        assert_eq!(tail_log(log, Some(3)), "b\nc\n");
        assert_eq!(tail_log(log, Some(100)), log);
        assert_eq!(tail_log(log, Some(-1)), "b\nc\n");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("my group"), "my%20group");
        assert_eq!(encode("a&b"), "a%26b");
    }
}
