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
use crate::server::{migration, task, vm, FlavorCopy, Move, Server, Shelve};
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
use strata_core::time::now_micros;

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
        "restore" => super::deferred::server_restore(&c.svc, &c.auth, &c.request_id, &c.id).await,
        "forceDelete" => {
            super::deferred::server_force_delete(&c.svc, &c.auth, &c.request_id, &c.id).await
        }
        "resize" => resize(c, &arg).await,
        "confirmResize" => confirm_resize(c).await,
        "revertResize" => revert_resize(c).await,
        "migrate" => migrate(c, &arg).await,
        "os-migrateLive" => live_migrate(c, &arg).await,
        "shelve" => shelve(c).await,
        "shelveOffload" => shelve_offload(c).await,
        "unshelve" => unshelve(c, &arg).await,
        "os-resetState" => reset_state(c, &arg).await,
        "injectNetworkInfo" => inject_network_info(c).await,
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

/// `os-resetState` (admins): the `vm_state` set to `active` or `error` and the task cleared,
/// nothing else (Nova's `_reset_state`: the guest is not touched). Recorded as the
/// `reset_state` action.
async fn reset_state(c: Call, arg: &Value) -> NovaResult<Response> {
    let state = match arg {
        Value::Object(m) => {
            schema::only(m, &["state"], Some("os-resetState"), arg)?;
            match m.get("state") {
                Some(Value::String(v)) if v == "active" || v == "error" => v.clone(),
                Some(other) => {
                    return Err(fail(
                        Some("os-resetState/state"),
                        other,
                        format!("{} is not one of ['active', 'error']", repr(other)),
                    ))
                }
                None => {
                    return Err(fail(
                        Some("os-resetState"),
                        arg,
                        "'state' is a required property",
                    ))
                }
            }
        }
        other => {
            return Err(fail(
                Some("os-resetState"),
                other,
                format!("{} is not of type 'object'", repr(other)),
            ))
        }
    };
    c.auth
        .require_admin("os_compute_api:os-admin-actions:reset_state")?;
    find(&c.svc, &c.auth, &c.id).await?;
    let action = c
        .record("reset_state", "api_reset_state")
        .expect("a record");
    record_done(&c.svc, &c.id, action, move |n| {
        n.vm_state = if state == "active" {
            vm::ACTIVE
        } else {
            vm::ERROR
        }
        .into();
        n.task_state = None;
        Ok(true)
    })
    .await?;
    accepted()
}

/// `injectNetworkInfo` (admins): 202. Nothing to inject: guests read their network from the
/// config drive (Nova's libvirt driver does nothing here either).
async fn inject_network_info(c: Call) -> NovaResult<Response> {
    c.auth
        .require_admin("os_compute_api:os-admin-actions:inject_network_info")?;
    let s = find(&c.svc, &c.auth, &c.id).await?;
    check_host(&s)?;
    accepted()
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
        n.security_groups_removed = union.is_empty();
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
    // What the rebuild may have changed, in its answer (Nova's `_action_rebuild`).
    if c.mv.at_least(54) {
        v["key_name"] = json!(s.key_name);
    }
    if c.mv.at_least(57) {
        v["user_data"] = json!(s.user_data);
        // The full view of 2.75 carries it here instead (Nova's `show_user_data=False`).
        if let Some(m) = v.as_object_mut() {
            m.remove("OS-EXT-SRV-ATTR:user_data");
        }
    }
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

// ------------------------------------------------------------------ moves

/// Nova's `check_instance_host(check_is_up=True)`: a host runs the guest, and its service is
/// up (409 `ServiceUnavailable` otherwise).
async fn check_host_up(c: &Call, s: &Server) -> NovaResult<()> {
    check_host(s)?;
    let host = s.host.as_deref().unwrap_or_default();
    if !crate::controller::host_is_up(&c.svc, host).await? {
        return Err(NovaError::conflict("Service is unavailable at this time."));
    }
    Ok(())
}

/// Nova's `ComputeHostNotFound` (400 where the moves raise it) unless `host` has a node.
async fn check_compute_host(c: &Call, host: &str) -> NovaResult<()> {
    if crate::hosts::nodes(c.svc.store())
        .await?
        .iter()
        .any(|n| n.host == host)
    {
        Ok(())
    } else {
        Err(NovaError::bad_request(format!(
            "Compute host {host} could not be found."
        )))
    }
}

/// Nova's `parameter_types.fqdn` with `null` allowed (the `host` of a migration).
fn fqdn_or_null(v: &Value, field: &str) -> NovaResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            schema::string(v, field, 1, 255)?;
            if !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                return Err(fail(
                    Some(field),
                    v,
                    format!("{} does not match '^[a-zA-Z0-9-._]*$'", repr(v)),
                ));
            }
            Ok(Some(s.clone()))
        }
        other => Err(fail(
            Some(field),
            other,
            format!("{} is not of type 'string', 'null'", repr(other)),
        )),
    }
}

/// The server's copy of a flavor.
fn flavor_copy(f: &crate::model::Flavor) -> FlavorCopy {
    FlavorCopy {
        id: f.id.clone(),
        name: f.name.clone(),
        vcpus: f.vcpus,
        memory_mb: f.memory_mb,
        root_gb: f.root_gb,
        ephemeral_gb: f.ephemeral_gb,
        swap: f.swap,
        extra_specs: f
            .extra_specs
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
    }
}

/// What a move starts from (the server `n` as the write finds it).
struct MoveStart {
    id: i64,
    kind: &'static str,
    status: &'static str,
    request_id: String,
    user_id: String,
    new_flavor: FlavorCopy,
    requested_host: Option<String>,
    force: bool,
}

fn new_move(n: &Server, m: MoveStart) -> Move {
    let now = now_micros();
    Move {
        id: m.id,
        uuid: uuid::Uuid::new_v4().to_string(),
        kind: m.kind.into(),
        status: m.status.into(),
        request_id: m.request_id,
        user_id: m.user_id,
        source_host: n.host.clone().unwrap_or_default(),
        source_node: n.node.clone().or(n.host.clone()).unwrap_or_default(),
        dest_host: None,
        dest_node: None,
        dest_ip: None,
        requested_host: m.requested_host,
        force: m.force,
        old_flavor: n.flavor.clone(),
        new_flavor: m.new_flavor,
        old_vm_state: n.vm_state.clone(),
        old_power: n.power,
        old_zone: n.availability_zone.clone(),
        other: None,
        abort: None,
        finishing: false,
        created_at: now,
        updated_at: now,
    }
}

/// Starts a move in one store write: `f` checks the server as the write finds it and records
/// the move (given the new migration's id); the quota for `(cores, ram)` grown by a resize is
/// counted in the same write (403 over it, as Nova's upsize check); the action starts.
async fn start_move<F>(
    c: &Call,
    action: &'static str,
    event: &'static str,
    grow: Option<(i64, i64)>,
    f: F,
) -> NovaResult<Server>
where
    F: Fn(&mut Server, i64) -> NovaResult<()> + Send + Sync + Clone + 'static,
{
    let (id, rid, user) = (
        c.id.clone(),
        c.request_id.clone(),
        c.auth.user().to_string(),
    );
    let cfg = c.svc.config().clone();
    c.svc
        .store()
        .write_or_refuse(move |tx| {
            let (id, rid, user, cfg, f) = (
                id.clone(),
                rid.clone(),
                user.clone(),
                cfg.clone(),
                f.clone(),
            );
            Box::pin(async move {
                let Some(old) = sdb::get_tx(tx, &id).await? else {
                    return Ok(Err(servers::not_found(&id)));
                };
                if old.deleted {
                    return Ok(Err(servers::not_found(&id)));
                }
                let mut n = old.clone();
                let mid = sdb::next_migration_id(tx).await?;
                if let Err(e) = f(&mut n, mid) {
                    return Ok(Err(e));
                }
                if let Some((dc, dr)) = grow.filter(|(c, r)| *c > 0 || *r > 0) {
                    let (p, u) = (old.project_id.clone(), old.user_id.clone());
                    let limits = super::quotas::limits_tx(tx, &cfg, &p, &u).await?;
                    let limit = |r: &str| limits.get(r).copied().unwrap_or(-1);
                    let (lc, lr) = (limit("cores"), limit("ram"));
                    if (lc >= 0 && dc > 0) || (lr >= 0 && dr > 0) {
                        let (_, uc, ur) = sdb::usage(tx, &p, None).await?;
                        let mut overs = Vec::new();
                        if lc >= 0 && dc > 0 && uc + dc > lc {
                            overs.push(("cores", dc, uc, lc));
                        }
                        if lr >= 0 && dr > 0 && ur + dr > lr {
                            overs.push(("ram", dr, ur, lr));
                        }
                        if !overs.is_empty() {
                            return Ok(Err(servers::over_quota(&overs)));
                        }
                    }
                }
                sdb::action_start(tx, &n, &rid, action, &user, event).await?;
                sdb::save(tx, &old, &mut n).await?;
                Ok(Ok(n))
            })
        })
        .await?
}

/// `{"resize": {"flavorRef": ..., "OS-DCF:diskConfig"?}}` as Nova's schema checks it.
fn parse_resize(arg: &Value) -> NovaResult<(String, Option<String>)> {
    let m = schema::object(arg, Some("resize"))?;
    schema::only(m, &["flavorRef", "OS-DCF:diskConfig"], Some("resize"), arg)?;
    let v = schema::require(m, "flavorRef", Some("resize"), arg)?;
    let flavor = match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) if n.is_i64() => n.to_string(),
        Value::String(_) => {
            return Err(fail(
                Some("flavorRef"),
                v,
                format!("{} is too short", repr(v)),
            ))
        }
        other => {
            return Err(fail(
                Some("flavorRef"),
                other,
                format!("{} is not of type 'string', 'integer'", repr(other)),
            ))
        }
    };
    let disk_config = match m.get("OS-DCF:diskConfig") {
        None => None,
        Some(Value::String(s)) if s == "AUTO" || s == "MANUAL" => Some(s.clone()),
        Some(v) => {
            return Err(fail(
                Some("OS-DCF:diskConfig"),
                v,
                format!("{} is not one of ['AUTO', 'MANUAL']", repr(v)),
            ))
        }
    };
    Ok((flavor, disk_config))
}

/// The flavor a resize asks for, as Nova's `get_flavor_by_flavor_id` finds it for the
/// caller (400 `FlavorNotFound` when unknown, disabled, or private and not shared).
async fn resize_flavor(c: &Call, wanted: &str) -> NovaResult<crate::model::Flavor> {
    let id = servers::last_segment(wanted).to_string();
    let not_found = || NovaError::bad_request(format!("Flavor {id} could not be found."));
    let Some(f) = db::get_flavor(c.svc.store(), &id).await? else {
        return Err(not_found());
    };
    if !f.is_public && !c.auth.admin() {
        let access = db::flavor_access(c.svc.store(), &f.id).await?;
        if !access.iter().any(|p| p == c.auth.project()) {
            return Err(not_found());
        }
    }
    Ok(f)
}

/// The checks of the server's image against a new flavor (Nova's
/// `_validate_flavor_image_nostatus`, its memory and disk parts).
async fn check_image_fits(c: &Call, s: &Server, f: &FlavorCopy) -> NovaResult<()> {
    if s.image_ref.is_empty() {
        return Ok(());
    }
    let ctx = crate::controller::service_context(&s.project_id);
    let path = format!("/images/{}", s.image_ref);
    let Some(a) = c.svc.glance(ctx, Method::GET, &path, None).await else {
        return Ok(());
    };
    if !a.ok() {
        // As Nova's resize of a server whose image went: the image's limits are unknown.
        return Ok(());
    }
    let img = a.body;
    if f.memory_mb < img["min_ram"].as_i64().unwrap_or(0) {
        return Err(NovaError::bad_request(
            "Flavor's memory is too small for requested image.",
        ));
    }
    if !s.boot_from_volume() && f.root_gb > 0 {
        let disk = f.root_gb << 30;
        let size = img["size"].as_i64().unwrap_or(0);
        if size > disk {
            return Err(NovaError::bad_request(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, \
                 image is {size} bytes."
            )));
        }
        let min_disk = img["min_disk"].as_i64().unwrap_or(0);
        if min_disk > f.root_gb {
            return Err(NovaError::bad_request(format!(
                "Flavor's disk is smaller than the minimum size specified in image metadata. \
                 Flavor disk is {disk} bytes, minimum size is {} bytes.",
                min_disk << 30
            )));
        }
    }
    Ok(())
}

const RESIZE_STATES: &[&str] = &[vm::ACTIVE, vm::STOPPED];

/// `resize`: 202; the controller moves the server to a host with room for the new flavor
/// (`crate::moves`) and it waits in VERIFY_RESIZE.
async fn resize(c: Call, arg: &Value) -> NovaResult<Response> {
    let (flavor_ref, disk_config) = parse_resize(arg)?;
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:servers:resize")?;
    check_lock(&c.auth, &s)?;
    check_state(&s, RESIZE_STATES, &[None], "resize")?;
    check_host_up(&c, &s).await?;
    let flavor = resize_flavor(&c, &flavor_ref).await?;
    let new = flavor_copy(&flavor);
    let bfv = s.boot_from_volume();
    if new.root_gb == 0 && s.flavor.root_gb != 0 && !bfv {
        return Err(NovaError::bad_request(
            "Server disk was unable to be resized because: Resize to zero disk flavor is not \
             allowed.",
        ));
    }
    if new.id == s.flavor.id {
        return Err(NovaError::bad_request(
            "When resizing, instances must change flavor!",
        ));
    }
    if flavor.disabled {
        return Err(NovaError::bad_request(format!(
            "Flavor {} could not be found.",
            new.id
        )));
    }
    // A local root disk is not shrunk (Nova's drivers refuse it when the move runs; refused
    // here before anything moves).
    if !bfv && new.root_gb < s.flavor.root_gb {
        return Err(NovaError::bad_request(
            "Server disk was unable to be resized because: Unable to resize disk down.",
        ));
    }
    check_image_fits(&c, &s, &new).await?;
    let grow = (
        (new.vcpus - s.flavor.vcpus).max(0),
        (new.memory_mb - s.flavor.memory_mb).max(0),
    );
    let (ctx, rid, user) = (c.ctx(), c.request_id.clone(), c.auth.user().to_string());
    start_move(
        &c,
        "resize",
        crate::moves::event::MIGRATE_SERVER,
        Some(grow),
        move |n, id| {
            check_lock(&Auth(ctx.clone()), n)?;
            check_state(n, RESIZE_STATES, &[None], "resize")?;
            check_host(n)?;
            n.migration = Some(new_move(
                n,
                MoveStart {
                    id,
                    kind: migration::RESIZE,
                    status: migration::PRE_MIGRATING,
                    request_id: rid.clone(),
                    user_id: user.clone(),
                    new_flavor: new.clone(),
                    requested_host: None,
                    force: false,
                },
            ));
            if let Some(dc) = &disk_config {
                n.disk_config = dc.clone();
            }
            n.task_state = Some(task::RESIZE_PREP.into());
            n.progress = 0;
            Ok(())
        },
    )
    .await?;
    accepted()
}

/// The finished move of a resized server (400 `Instance has not been resized.` otherwise).
fn finished_move(s: &Server) -> NovaResult<&Move> {
    s.active_move()
        .filter(|m| m.status == migration::FINISHED)
        .ok_or_else(|| NovaError::bad_request("Instance has not been resized."))
}

/// `confirmResize`: 204; the source's guest and allocation go, then the server is ACTIVE.
async fn confirm_resize(c: Call) -> NovaResult<Response> {
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:servers:confirm_resize")?;
    check_lock(&c.auth, &s)?;
    check_state(&s, &[vm::RESIZED], &[None], "confirmResize")?;
    let m = finished_move(&s)?;
    // The source's service must be up to remove its guest (Nova's `ServiceUnavailable`).
    if !crate::controller::host_is_up(&c.svc, &m.source_host).await? {
        return Err(NovaError::conflict("Service is unavailable at this time."));
    }
    let (ctx, rid, mid) = (c.ctx(), c.request_id.clone(), m.id);
    mutate_with(
        &c.svc,
        &c.id,
        c.record("confirmResize", crate::moves::event::CONFIRM_RESIZE),
        move |n| {
            check_lock(&Auth(ctx.clone()), n)?;
            check_state(n, &[vm::RESIZED], &[None], "confirmResize")?;
            finished_move(n)?;
            let Some(m) = n.active_move_mut().filter(|m| m.id == mid) else {
                return Err(NovaError::bad_request("Instance has not been resized."));
            };
            m.status = migration::CONFIRMING.into();
            m.request_id = rid.clone();
            if let Some(o) = m.other.as_mut() {
                o.wanted = false;
                o.gone = false;
            }
            Ok(())
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `revertResize`: 202; back to the source host with the old flavor (`crate::moves`).
async fn revert_resize(c: Call) -> NovaResult<Response> {
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:servers:revert_resize")?;
    check_lock(&c.auth, &s)?;
    check_state(&s, &[vm::RESIZED], &[None], "revertResize")?;
    let mid = finished_move(&s)?.id;
    let (ctx, rid) = (c.ctx(), c.request_id.clone());
    mutate_with(
        &c.svc,
        &c.id,
        c.record("revertResize", crate::moves::event::REVERT_RESIZE),
        move |n| {
            check_lock(&Auth(ctx.clone()), n)?;
            check_state(n, &[vm::RESIZED], &[None], "revertResize")?;
            finished_move(n)?;
            let Some(m) = n.active_move_mut().filter(|m| m.id == mid) else {
                return Err(NovaError::bad_request("Instance has not been resized."));
            };
            m.status = migration::REVERTING.into();
            m.request_id = rid.clone();
            n.task_state = Some(task::RESIZE_REVERTING.into());
            Ok(())
        },
    )
    .await?;
    accepted()
}

/// `migrate` (`{"migrate": null}`, from 2.56 `{"migrate": {"host": ...}}`): a cold migration,
/// as a resize to the same flavor on another host. Admins only.
async fn migrate(c: Call, arg: &Value) -> NovaResult<Response> {
    let mut host = None;
    if c.mv.at_least(56) {
        match arg {
            Value::Null => {}
            Value::Object(m) => {
                schema::only(m, &["host"], Some("migrate"), arg)?;
                if let Some(v) = m.get("host") {
                    host = fqdn_or_null(v, "host")?;
                }
            }
            other => {
                return Err(fail(
                    Some("migrate"),
                    other,
                    format!("{} is not of type 'object', 'null'", repr(other)),
                ))
            }
        }
    }
    let s = find(&c.svc, &c.auth, &c.id).await?;
    c.auth.require_admin(if host.is_some() {
        "os_compute_api:os-migrate-server:migrate:host"
    } else {
        "os_compute_api:os-migrate-server:migrate"
    })?;
    check_lock(&c.auth, &s)?;
    check_state(&s, RESIZE_STATES, &[None], "migrate")?;
    check_host_up(&c, &s).await?;
    if let Some(h) = &host {
        if s.host.as_deref() == Some(h.as_str()) {
            return Err(NovaError::bad_request(
                "Cannot migrate to the host where the server exists.",
            ));
        }
        check_compute_host(&c, h).await?;
    }
    let (ctx, rid, user) = (c.ctx(), c.request_id.clone(), c.auth.user().to_string());
    start_move(
        &c,
        "migrate",
        crate::moves::event::MIGRATE_SERVER,
        None,
        move |n, id| {
            check_lock(&Auth(ctx.clone()), n)?;
            check_state(n, RESIZE_STATES, &[None], "migrate")?;
            check_host(n)?;
            let flavor = n.flavor.clone();
            n.migration = Some(new_move(
                n,
                MoveStart {
                    id,
                    kind: migration::MIGRATION,
                    status: migration::PRE_MIGRATING,
                    request_id: rid.clone(),
                    user_id: user.clone(),
                    new_flavor: flavor,
                    requested_host: host.clone(),
                    force: false,
                },
            ));
            n.task_state = Some(task::RESIZE_PREP.into());
            n.progress = 0;
            Ok(())
        },
    )
    .await?;
    accepted()
}

/// `os-migrateLive` (`host`, `block_migration`, `disk_over_commit` below 2.25, `force` from
/// 2.30 to 2.67): the guest is built on the destination while the source's keeps running,
/// then the server is the destination's. Admins only. From 2.34 the checks Nova's conductor
/// makes (the destination is not the source, has room, is up) fail the migration after the
/// 202; below, they are 400s.
async fn live_migrate(c: Call, arg: &Value) -> NovaResult<Response> {
    let key = Some("os-migrateLive");
    let m = schema::object(arg, key)?;
    let mv = c.mv;
    let allowed: &[&str] = if !mv.at_least(25) {
        &["block_migration", "disk_over_commit", "host"]
    } else if mv.at_least(30) && !mv.at_least(68) {
        &["block_migration", "host", "force"]
    } else {
        &["block_migration", "host"]
    };
    schema::only(m, allowed, key, arg)?;
    let bm = schema::require(m, "block_migration", key, arg)?;
    if !mv.at_least(25) {
        schema::require(m, "disk_over_commit", key, arg)?;
    }
    let host_v = schema::require(m, "host", key, arg)?;
    if mv.at_least(25) && bm.as_str() == Some("auto") {
        // `block_migration: auto`: the driver decides (the fake needs no disk copy).
    } else {
        let b = schema::boolean(bm, "block_migration");
        if mv.at_least(25) {
            b.map_err(|_| {
                fail(
                    Some("block_migration"),
                    bm,
                    format!(
                        "{} is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', \
                         'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', \
                         'OFF', 'Off', 'off', 'NO', 'No', 'no', 'auto']",
                        repr(bm)
                    ),
                )
            })?;
        } else {
            b?;
        }
    }
    if let Some(d) = m.get("disk_over_commit") {
        schema::boolean(d, "disk_over_commit")?;
    }
    let host = fqdn_or_null(host_v, "host")?;
    let force = match m.get("force") {
        Some(v) => schema::boolean(v, "force")?,
        None => false,
    };
    let s = find(&c.svc, &c.auth, &c.id).await?;
    c.auth.require_admin(if host.is_some() {
        "os_compute_api:os-migrate-server:migrate_live:host"
    } else {
        "os_compute_api:os-migrate-server:migrate_live"
    })?;
    if force && host.is_none() {
        return Err(NovaError::bad_request(
            "Can't force to a non-provided destination",
        ));
    }
    check_lock(&c.auth, &s)?;
    check_state(&s, &[vm::ACTIVE, vm::PAUSED], &[None], "os-migrateLive")?;
    check_host(&s)?;
    if let Some(h) = &host {
        check_compute_host(&c, h).await?;
        if !mv.at_least(34) {
            // The conductor's checks, answered synchronously below 2.34.
            if s.host.as_deref() == Some(h.as_str()) {
                return Err(NovaError::bad_request(format!(
                    "Unable to migrate instance ({}) to current host ({h}).",
                    s.id
                )));
            }
            if !crate::controller::host_is_up(&c.svc, h).await? {
                return Err(NovaError::bad_request(format!(
                    "Compute service of {h} is unavailable at this time."
                )));
            }
        }
    }
    let (ctx, rid, user) = (c.ctx(), c.request_id.clone(), c.auth.user().to_string());
    start_move(
        &c,
        "live-migration",
        crate::moves::event::LIVE_MIGRATE,
        None,
        move |n, id| {
            check_lock(&Auth(ctx.clone()), n)?;
            check_state(n, &[vm::ACTIVE, vm::PAUSED], &[None], "os-migrateLive")?;
            check_host(n)?;
            let flavor = n.flavor.clone();
            let mut mv = new_move(
                n,
                MoveStart {
                    id,
                    kind: migration::LIVE,
                    status: migration::ACCEPTED,
                    request_id: rid.clone(),
                    user_id: user.clone(),
                    new_flavor: flavor,
                    requested_host: host.clone(),
                    force,
                },
            );
            mv.dest_host = host.clone();
            n.migration = Some(mv);
            n.task_state = Some(task::MIGRATING.into());
            Ok(())
        },
    )
    .await?;
    accepted()
}

// ------------------------------------------------------------------ shelve

const SHELVE_STATES: &[&str] = &[vm::ACTIVE, vm::STOPPED, vm::PAUSED, vm::SUSPENDED];

/// `shelve`: 202; an image-backed server's root disk is snapshotted into a `<name>-shelved`
/// image (as `createImage` does), the guest stopped, and the server SHELVED — offloaded at
/// once with `shelved_offload_time` 0 (SHELVED_OFFLOADED: no guest, no host, no allocation).
/// A volume-backed server is offloaded directly.
async fn shelve(c: Call) -> NovaResult<Response> {
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:os-shelve:shelve")?;
    check_lock(&c.auth, &s)?;
    check_state(&s, SHELVE_STATES, &[None], "shelve")?;
    check_host(&s)?;
    let job = if s.boot_from_volume() {
        None
    } else {
        let name = format!("{}-shelved", s.name);
        let (image_id, disk_format, container_format) =
            create_snapshot_image(&c, &s, &name, &BTreeMap::new()).await?;
        Some(crate::server::SnapshotJob {
            image_id,
            owner_project: c.auth.project().to_string(),
            disk_format,
            container_format,
        })
    };
    let (ctx, rid) = (c.ctx(), c.request_id.clone());
    let event = if job.is_some() {
        crate::moves::event::SHELVE
    } else {
        crate::moves::event::SHELVE_OFFLOAD
    };
    let j = job.clone();
    let owner = c.auth.project().to_string();
    let written = mutate_with(&c.svc, &c.id, c.record("shelve", event), move |n| {
        check_lock(&Auth(ctx.clone()), n)?;
        check_state(n, SHELVE_STATES, &[None], "shelve")?;
        check_host(n)?;
        n.shelve = Some(Shelve {
            image_id: j.as_ref().map(|j| j.image_id.clone()),
            image_owner: owner.clone(),
            request_id: rid.clone(),
            old_power: n.power,
            shelved_at: None,
            host: None,
        });
        n.task_state = Some(
            if j.is_some() {
                task::SHELVING_IMAGE_PENDING_UPLOAD
            } else {
                task::SHELVING_OFFLOADING
            }
            .into(),
        );
        n.snapshot = j.clone();
        n.power = Power::Shutdown;
        n.generation += 1;
        Ok(())
    })
    .await;
    if let Err(e) = written {
        if let Some(j) = &job {
            let path = format!("/images/{}", j.image_id);
            let _ = c.svc.glance(c.ctx(), Method::DELETE, &path, None).await;
        }
        return Err(e);
    }
    accepted()
}

/// `shelveOffload`: 202; a SHELVED server's guest leaves its host.
async fn shelve_offload(c: Call) -> NovaResult<Response> {
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:os-shelve:shelve_offload")?;
    check_lock(&c.auth, &s)?;
    check_state(&s, &[vm::SHELVED], &[None], "shelveOffload")?;
    let (ctx, rid, owner) = (c.ctx(), c.request_id.clone(), c.auth.project().to_string());
    mutate_with(
        &c.svc,
        &c.id,
        c.record("shelveOffload", crate::moves::event::SHELVE_OFFLOAD),
        move |n| {
            check_lock(&Auth(ctx.clone()), n)?;
            check_state(n, &[vm::SHELVED], &[None], "shelveOffload")?;
            let power = n.power;
            let sh = n.shelve.get_or_insert_with(|| Shelve {
                image_id: None,
                image_owner: owner.clone(),
                request_id: String::new(),
                old_power: power,
                shelved_at: None,
                host: None,
            });
            sh.request_id = rid.clone();
            n.task_state = Some(task::SHELVING_OFFLOADING.into());
            Ok(())
        },
    )
    .await?;
    accepted()
}

/// `unshelve`: 202. A SHELVED server is powered on where it is; a SHELVED_OFFLOADED one is
/// scheduled again (to the zone given from 2.77, `null` unpinning it from 2.91, and to the
/// host given from 2.91, admins only) and built there.
async fn unshelve(c: Call, arg: &Value) -> NovaResult<Response> {
    // `Some(None)`: unpin the zone.
    let mut zone: Option<Option<String>> = None;
    let mut host: Option<String> = None;
    let key = Some("unshelve");
    let not_object = |v: &Value| {
        fail(
            key,
            v,
            format!("{} is not of type 'object', 'null'", repr(v)),
        )
    };
    if c.mv.at_least(91) {
        match arg {
            Value::Null => {}
            Value::Object(m) => {
                schema::only(m, &["availability_zone", "host"], key, arg)?;
                if let Some(v) = m.get("availability_zone") {
                    zone = Some(match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => {
                            return Err(fail(
                                Some("availability_zone"),
                                other,
                                format!("{} is not of type 'string', 'null'", repr(other)),
                            ))
                        }
                    });
                }
                if let Some(v) = m.get("host") {
                    host = Some(schema::string(v, "host", 0, usize::MAX)?.to_string());
                }
            }
            other => return Err(not_object(other)),
        }
    } else if c.mv.at_least(77) {
        match arg {
            Value::Null => {}
            Value::Object(m) => {
                schema::only(m, &["availability_zone"], key, arg)?;
                let v = schema::require(m, "availability_zone", key, arg)?;
                zone = Some(Some(schema::name(v, "availability_zone")?.to_string()));
            }
            other => return Err(not_object(other)),
        }
    }
    let s = find(&c.svc, &c.auth, &c.id).await?;
    require_member(&c.auth, &s, "os_compute_api:os-shelve:unshelve")?;
    check_lock(&c.auth, &s)?;
    const STATES: &[&str] = &[vm::SHELVED, vm::SHELVED_OFFLOADED];
    check_state(&s, STATES, &[None], "unshelve")?;
    if (zone.is_some() || host.is_some()) && s.vm_state != vm::SHELVED_OFFLOADED {
        return Err(NovaError::conflict(format!(
            "Specifying an availability zone or a host when unshelving server \"{}\" with \
             status \"{}\" is not supported. The server status must be SHELVED_OFFLOADED.",
            s.id, s.vm_state
        )));
    }
    let services = crate::hosts::services(c.svc.store()).await?;
    if let Some(Some(z)) = &zone {
        let now = strata_core::time::now_micros();
        let available = services
            .iter()
            .any(|x| x.zone == *z && !x.disabled && c.svc.service_up(x, now));
        if !available {
            return Err(NovaError::bad_request(
                "The requested availability zone is not available",
            ));
        }
    }
    if let Some(h) = &host {
        c.auth
            .require_admin("os_compute_api:os-shelve:unshelve_to_host")?;
        check_compute_host(&c, h).await?;
        let expected = match &zone {
            Some(z) => z.clone(),
            None => s
                .requested_zone
                .as_deref()
                .map(|z| z.split(':').next().unwrap_or(z).to_string())
                .filter(|z| !z.is_empty()),
        };
        if let Some(z) = expected {
            let host_zone = services
                .iter()
                .find(|x| x.host == *h)
                .map(|x| x.zone.clone())
                .unwrap_or_default();
            if host_zone != z {
                return Err(NovaError::conflict(format!(
                    "Host \"{h}\" is not in the availability zone \"{z}\"."
                )));
            }
        }
    }
    let event = if s.vm_state == vm::SHELVED {
        crate::moves::event::START
    } else {
        crate::moves::event::SCHEDULE
    };
    let (ctx, rid, owner) = (c.ctx(), c.request_id.clone(), c.auth.project().to_string());
    mutate_with(&c.svc, &c.id, c.record("unshelve", event), move |n| {
        check_lock(&Auth(ctx.clone()), n)?;
        check_state(n, STATES, &[None], "unshelve")?;
        let power = n.power;
        let sh = n.shelve.get_or_insert_with(|| Shelve {
            image_id: None,
            image_owner: owner.clone(),
            request_id: String::new(),
            old_power: power,
            shelved_at: None,
            host: None,
        });
        sh.request_id = rid.clone();
        sh.host = host.clone();
        if let Some(z) = &zone {
            n.requested_zone = z.clone();
        }
        if n.vm_state == vm::SHELVED {
            n.task_state = Some(task::POWERING_ON.into());
            n.power = Power::Running;
            n.generation += 1;
        } else {
            n.task_state = Some(task::UNSHELVING.into());
        }
        Ok(())
    })
    .await?;
    accepted()
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
