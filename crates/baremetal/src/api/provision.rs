//! `PUT /v1/nodes/{ident}/states/provision`, `PUT …/states/power` and the boot device
//! (`…/management/boot_device[/supported]`).
//!
//! Provision and power requests record their intent in the node's row and answer 202: the
//! conductor does the work ([`crate::conductor`]). The boot device is read and set while the
//! request waits, as Ironic does, holding the node's lock for the call.

use super::nodes::only;
use super::{accepted_at, find_node};
use crate::conductor::{update_node, work_now};
use crate::drivers::{BmcDriver, BmcError, BootDevice};
use crate::error::{IronicError, IronicResult};
use crate::extract::{Admin, Body, Mv};
use crate::model::{self, Node, Provision, WorkKind};
use crate::patch::py;
use crate::states::{self, power};
use crate::version::Microversion;
use crate::BaremetalService;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use strata_core::time::now_micros;

/// A string argument of a body (`args.string`): 400 when of another type.
fn string_arg(b: &Map<String, Value>, k: &str) -> IronicResult<Option<String>> {
    match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(IronicError::invalid(format!(
            "Argument '{k}' is not a string: {}",
            py(other)
        ))),
    }
}

/// 400 for body arguments the handler does not take.
fn only_args(b: &Map<String, Value>, allowed: &[&str]) -> IronicResult<()> {
    let mut extra: Vec<&str> = b
        .keys()
        .map(|k| k.as_str())
        .filter(|k| !allowed.contains(k))
        .collect();
    extra.sort();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(IronicError::invalid(format!(
            "Unexpected arguments: {}",
            extra.join(", ")
        )))
    }
}

/// `PUT /v1/nodes/{ident}/states/provision` with `{"target": …}` (plus `configdrive`,
/// `clean_steps`, `deploy_steps`, `service_steps`, `rescue_password`, `disable_ramdisk`,
/// `runbook` for the verbs that take them).
pub async fn node_set_provision_state(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    body: Body,
) -> IronicResult<Response> {
    admin.require("baremetal:node:set_provision_state")?;
    let b = body.object("body")?;
    only_args(
        &b,
        &[
            "target",
            "configdrive",
            "clean_steps",
            "deploy_steps",
            "rescue_password",
            "disable_ramdisk",
            "service_steps",
            "runbook",
        ],
    )?;
    let Some(target) = string_arg(&b, "target")? else {
        return Err(IronicError::invalid("Missing mandatory parameter: target"));
    };
    for (k, want) in [
        ("clean_steps", "list"),
        ("deploy_steps", "list"),
        ("service_steps", "list"),
    ] {
        if let Some(v) = b.get(k).filter(|v| !v.is_null() && !v.is_array()) {
            return Err(IronicError::invalid(format!(
                "Argument '{k}' is not of type {want}: {}",
                py(v)
            )));
        }
    }
    let n = find_node(&svc, &ident, mv).await?;
    if let Some(min) = states::verb_min_version(&target) {
        if !mv.at_least(min) {
            return Err(IronicError::not_acceptable());
        }
    }
    if matches!(target.as_str(), "active" | "rebuild") && n.maintenance {
        return Err(IronicError::invalid(format!(
            "The provisioning operation can't be performed on node {} because it's in \
             maintenance mode.",
            n.uuid
        )));
    }
    let now = now_micros();
    let cleans = n.cleans_automatically(svc.config().automated_clean);
    let decision = match model::decide_provision(&n.provision_state, &target, &n.uuid, cleans) {
        // Ironic answers 409 rather than 400 while a conductor works on the node.
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            n.ensure_unlocked(now, svc.hostname())?;
            return Err(e);
        }
        other => other?,
    };
    check_arguments(&b, &target, mv)?;
    n.ensure_unlocked(now, svc.hostname())?;
    match decision {
        Provision::NotYet => Err(IronicError::invalid(format!(
            "The requested action \"{target}\" is not supported yet by this Strata release \
             (node \"{}\" stays in state \"{}\"); see docs/baremetal.md.",
            n.uuid, n.provision_state
        ))),
        Provision::Verify => {
            let hostname = svc.hostname().to_string();
            start(&svc, &n.uuid, move |n| {
                n.provision_state = states::VERIFYING.into();
                n.target_provision_state = states::target_of(states::VERIFYING).map(Into::into);
                n.provision_updated_at = Some(now_micros());
                n.last_error = None;
                n.reservation = Some(hostname.clone());
                n.work = Some(work_now(WorkKind::Verify));
            })
            .await?;
            tracing::info!(node = %n.uuid, "manage: verifying");
            Ok(accepted_at(&svc, &ident))
        }
        Provision::Move(to) => {
            start(&svc, &n.uuid, move |n| {
                n.provision_state = to.into();
                n.target_provision_state = None;
                n.provision_updated_at = Some(now_micros());
                n.last_error = None;
            })
            .await?;
            tracing::info!(node = %n.uuid, state = to, "provision state changed");
            Ok(accepted_at(&svc, &ident))
        }
    }
}

/// The argument checks Ironic makes after the state check.
fn check_arguments(b: &Map<String, Value>, target: &str, mv: Microversion) -> IronicResult<()> {
    let present = |k: &str| b.get(k).is_some_and(|v| !v.is_null());
    if present("configdrive") {
        let mut allowed = vec!["active"];
        if mv.at_least(35) {
            allowed.push("rebuild");
        }
        if !allowed.contains(&target) {
            return Err(IronicError::invalid(format!(
                "Adding a config drive is only supported when setting provision state to {}",
                allowed.join(", ")
            )));
        }
    }
    if present("clean_steps") && target != "clean" {
        return Err(IronicError::invalid(
            "\"clean_steps\" is only valid when setting target provision state to clean",
        ));
    }
    if present("deploy_steps") && !matches!(target, "active" | "rebuild" | "deploy") {
        return Err(IronicError::invalid(
            "\"deploy_steps\" is only valid when setting target provision state to active or \
             rebuild",
        ));
    }
    if present("rescue_password") && target != "rescue" {
        return Err(IronicError::invalid(
            "\"rescue_password\" is only valid when setting target provision state to rescue",
        ));
    }
    if present("service_steps") && target != "service" {
        return Err(IronicError::invalid(
            "\"service_steps\" is only valid when setting target provision state to service",
        ));
    }
    if target == "clean" && !present("clean_steps") && !present("runbook") {
        return Err(IronicError::invalid(
            "\"clean_steps\" is required when setting target provision state to clean",
        ));
    }
    Ok(())
}

/// Writes the start of a transition unless the node got locked meanwhile; wakes the conductor.
async fn start(
    svc: &BaremetalService,
    uuid: &str,
    f: impl Fn(&mut Node) + Send + Sync + Clone + 'static,
) -> IronicResult<Node> {
    let hostname = svc.hostname().to_string();
    let n = update_node(svc, uuid, move |n| {
        n.ensure_unlocked(now_micros(), &hostname)?;
        f(n);
        Ok(())
    })
    .await?;
    svc.kick();
    Ok(n)
}

/// `PUT /v1/nodes/{ident}/states/power` with `{"target": …, "timeout": …}`.
pub async fn node_set_power_state(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    body: Body,
) -> IronicResult<Response> {
    admin.require("baremetal:node:set_power_state")?;
    let b = body.object("body")?;
    only_args(&b, &["target", "timeout"])?;
    let Some(target) = string_arg(&b, "target")? else {
        return Err(IronicError::invalid("Missing mandatory parameter: target"));
    };
    let timeout = match b.get("timeout") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
        Some(other) => {
            return Err(IronicError::invalid(format!(
                "Expected an integer for timeout: {}",
                py(other)
            )))
        }
    };
    let n = find_node(&svc, &ident, mv).await?;
    if (matches!(target.as_str(), power::SOFT_REBOOT | power::SOFT_OFF) || timeout.is_some())
        && !mv.at_least(27)
    {
        return Err(IronicError::not_acceptable());
    }
    if timeout.is_some_and(|t| t < 1) {
        return Err(IronicError::invalid("timeout has to be positive integer"));
    }
    if !power::TARGETS.contains(&target.as_str()) {
        return Err(IronicError::invalid_state_requested(
            &target,
            &ident,
            n.power_state.as_deref().unwrap_or("None"),
        ));
    }
    if matches!(
        n.provision_state.as_str(),
        states::CLEANWAIT | states::CLEANING
    ) {
        return Err(IronicError::invalid_state_requested(
            &target,
            &ident,
            &n.provision_state,
        ));
    }
    if matches!(target.as_str(), power::OFF | power::SOFT_OFF) && n.disable_power_off {
        return Err(IronicError::conflict(format!(
            "Failed to set node power state to {target}."
        )));
    }
    n.ensure_unlocked(now_micros(), svc.hostname())?;
    // The conductor validates the power interface before it accepts the request.
    svc.drivers()
        .for_node(&n)
        .and_then(|d| d.validate())
        .map_err(|e| IronicError::invalid(e.to_string()))?;
    let cfg = svc.config();
    let timeout_s = match timeout {
        Some(t) => t as u64,
        None if matches!(target.as_str(), power::SOFT_REBOOT | power::SOFT_OFF) => {
            cfg.soft_power_off_timeout
        }
        None => cfg.power_state_change_timeout,
    };
    let hostname = svc.hostname().to_string();
    let t = target.clone();
    start(&svc, &n.uuid, move |n| {
        n.target_power_state = Some(power::settles_at(&t).into());
        n.last_error = None;
        n.reservation = Some(hostname.clone());
        n.work = Some(work_now(WorkKind::Power {
            target: t.clone(),
            timeout_s,
            deadline: None,
        }));
    })
    .await?;
    tracing::info!(node = %n.uuid, target = %target, "power action requested");
    Ok(accepted_at(&svc, &ident))
}

/// The node's driver for a synchronous call, its failures answered as Ironic does: a bad
/// `driver_info` is 400.
fn driver_of(svc: &BaremetalService, n: &Node) -> IronicResult<Arc<dyn BmcDriver>> {
    svc.drivers()
        .for_node(n)
        .and_then(|d| d.validate().map(|_| d))
        .map_err(|e| IronicError::invalid(e.to_string()))
}

/// A BMC failure during a synchronous call: 400 for a refused argument, 500 otherwise (as an
/// Ironic driver's exception surfaces).
fn bmc_error(n: &Node, e: BmcError) -> IronicError {
    match e {
        BmcError::InvalidDriverInfo(m) | BmcError::Unsupported(m) => IronicError::invalid(m),
        other => IronicError::server(format!(
            "{} driver failed on node {}: {other}",
            n.driver, n.uuid
        )),
    }
}

/// Runs `f` against the node's BMC holding its lock (taken and released in the store, with an
/// expiry so a crash cannot keep it).
async fn with_lock<T, F, Fut>(svc: &BaremetalService, n: &Node, f: F) -> IronicResult<T>
where
    F: FnOnce(Arc<dyn BmcDriver>) -> Fut,
    Fut: std::future::Future<Output = Result<T, BmcError>>,
{
    let driver = driver_of(svc, n)?;
    let hostname = svc.hostname().to_string();
    let hold = svc.config().bmc_request_timeout.max(1) as i64 * 3 * 1_000_000;
    let held = update_node(svc, &n.uuid, move |n| {
        let now = now_micros();
        n.ensure_unlocked(now, &hostname)?;
        n.reservation = Some(hostname.clone());
        n.lock_until = Some(now + hold);
        Ok(())
    })
    .await?;
    let budget = std::time::Duration::from_micros(hold as u64);
    let r = tokio::time::timeout(budget, f(driver))
        .await
        .unwrap_or_else(|_| {
            Err(BmcError::Unreachable(
                "the BMC did not answer in time".into(),
            ))
        });
    let until = held.lock_until;
    let _ = update_node(svc, &n.uuid, move |n| {
        if n.work.is_none() && n.lock_until == until {
            n.reservation = None;
            n.lock_until = None;
        }
        Ok(())
    })
    .await;
    r.map_err(|e| bmc_error(n, e))
}

/// `PUT /v1/nodes/{ident}/management/boot_device` with `{"boot_device": …, "persistent": …}`
/// (204).
pub async fn node_set_boot_device(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    body: Body,
) -> IronicResult<StatusCode> {
    admin.require("baremetal:node:set_boot_device")?;
    let b = body.object("body")?;
    only_args(&b, &["boot_device", "persistent"])?;
    let Some(dev) = string_arg(&b, "boot_device")? else {
        return Err(IronicError::invalid(
            "Missing mandatory parameter: boot_device",
        ));
    };
    let persistent = match b.get("persistent") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(p)) => *p,
        Some(Value::String(s)) => model::parse_bool("persistent", s)?,
        Some(other) => {
            return Err(IronicError::invalid(format!(
                "Invalid persistent: {} is not a boolean",
                py(other)
            )))
        }
    };
    let n = find_node(&svc, &ident, mv).await?;
    let driver = driver_of(&svc, &n)?;
    let device = BootDevice::parse(&dev)
        .filter(|d| driver.supported_boot_devices().contains(d))
        .ok_or_else(|| IronicError::invalid(format!("Invalid boot device {dev} specified.")))?;
    with_lock(&svc, &n, |d| async move {
        d.set_boot_device(device, persistent).await
    })
    .await?;
    tracing::info!(node = %n.uuid, device = device.name(), persistent, "boot device set");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/nodes/{ident}/management/boot_device`.
pub async fn node_get_boot_device(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:get_boot_device")?;
    let n = find_node(&svc, &ident, mv).await?;
    let b = with_lock(&svc, &n, |d| async move { d.boot_device().await }).await?;
    Ok(Json(json!({
        "boot_device": b.device.map(|d| d.name()),
        "persistent": b.persistent,
    })))
}

/// `GET /v1/nodes/{ident}/management/boot_device/supported`.
pub async fn node_supported_boot_devices(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    q: crate::extract::Query,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:get_boot_device")?;
    only(&q, &[])?;
    let n = find_node(&svc, &ident, mv).await?;
    let d = driver_of(&svc, &n)?;
    let names: Vec<&str> = d
        .supported_boot_devices()
        .iter()
        .map(|d| d.name())
        .collect();
    Ok(Json(json!({ "supported_boot_devices": names })))
}
