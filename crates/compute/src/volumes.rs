//! Volumes on servers, through the volume service's attachments API (3.44), in process.
//!
//! A server's volumes are its block device mappings ([`Bdm`]), kept on the server record:
//!
//! - attach (`os-volume_attachments`): the API reserves the volume (an attachment with the
//!   host's connector, so it carries the connection info) and records the mapping
//!   `attaching`, bumping the generation; the host's agent attaches the volume and reports it
//!   among the guest's `volumes`, which makes the mapping `connected`; the controller then
//!   completes the attachment (the volume `in-use`) and the mapping is `attached`;
//! - detach: the API begins detaching (the volume `detaching`) and marks the mapping
//!   `detaching`, which takes it from the agent's disks; once the agent reports it gone the
//!   mapping is `detached` and the controller deletes the attachment (the volume `available`)
//!   and the mapping. An attach the agent failed takes the same way out;
//! - boot from volume: create records the mappings `pending`; the controller's
//!   block-device-mapping step creates the volumes (from an image, a snapshot, or blank),
//!   waits for them by being driven again (a bounded time), attaches and completes each with
//!   the host's connector, then lets the host spawn the guest with them;
//! - a failed build detaches every volume and deletes those made for it; a deleted server
//!   detaches every volume and deletes those marked `delete_on_termination`.
//!
//! Every step is idempotent: an attachment a crash kept from being recorded is found again
//! by the server's id, a deleted attachment or volume is no error.

use crate::controller::{self, service_context, Step};
use crate::server::{bdm, task, vm, Bdm, Server};
use crate::server_db as db;
use crate::ComputeService;
use axum::http::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use strata_agent_api::InstanceReport;
use strata_api::inproc::Answer;
use strata_api::AuthContext;
use strata_core::time::now_micros;
use strata_core::Result;

/// The volume service microversion the calls are made at (Nova's: the attachments API with
/// `os-complete`).
pub const CINDER_VERSION: &str = "volume 3.44";

/// How long a build waits for the volumes it creates to become available (Nova's
/// `block_device_allocate_retries` × `block_device_allocate_retries_interval`, 60 × 3 s).
pub const VOLUME_WAIT_US: i64 = 180_000_000;

/// The instance action events of attach and detach.
pub const ATTACH_EVENT: &str = "compute_attach_volume";
pub const DETACH_EVENT: &str = "compute_detach_volume";

/// The connector of `host` (what Nova's virt driver hands the volume service), with the
/// device the volume shows as.
pub fn connector(host: &str, device: &str) -> Value {
    json!({
        "host": host,
        "initiator": format!("iqn.2024-01.org.strata:{host}"),
        "platform": "x86_64",
        "os_type": "linux",
        "multipath": false,
        "do_local_attach": false,
        "mountpoint": device,
    })
}

/// The letter of a `/dev/vdX` device name.
fn letter(device: &str) -> Option<char> {
    let d = device.trim_start_matches("/dev/");
    let rest = d
        .strip_prefix("vd")
        .or_else(|| d.strip_prefix("sd"))
        .or_else(|| d.strip_prefix("xvd"))
        .or_else(|| d.strip_prefix("hd"))?;
    let mut c = rest.chars();
    match (c.next(), c.next()) {
        (Some(l), None) if l.is_ascii_lowercase() => Some(l),
        _ => None,
    }
}

/// The device letters a server's disks take: the local root (`a`), the flavor's ephemeral
/// disk and swap (as Nova's libvirt driver lays them out), and every mapping's.
pub fn taken_letters(local_root: bool, ephemeral_gb: i64, swap_mb: i64, bdms: &[Bdm]) -> Vec<char> {
    let mut used = Vec::new();
    if local_root {
        used.push('a');
    }
    let mut next = 'b';
    if ephemeral_gb > 0 {
        used.push(next);
        next = 'c';
    }
    if swap_mb > 0 {
        used.push(next);
    }
    used.extend(bdms.iter().filter_map(|b| letter(&b.device)));
    used
}

/// The first free `/dev/vdX` (Nova's `get_next_device_name`), `None` when all 26 are taken.
pub fn free_device(used: &[char]) -> Option<String> {
    ('a'..='z')
        .find(|c| !used.contains(c))
        .map(|c| format!("/dev/vd{c}"))
}

/// The device a volume attached to `s` now gets (a name the user asks for is not honoured,
/// as with Nova's libvirt driver).
pub fn next_device(s: &Server) -> Option<String> {
    free_device(&taken_letters(
        !s.boot_from_volume(),
        s.flavor.ephemeral_gb,
        s.flavor.swap,
        &s.bdms,
    ))
}

/// A volume status as the volume service shows it, `None` when the volume is gone.
async fn volume_status(
    svc: &ComputeService,
    ctx: &Arc<AuthContext>,
    id: &str,
) -> Option<(String, Value)> {
    let a = svc
        .cinder(ctx.clone(), Method::GET, &format!("/volumes/{id}"), None)
        .await?;
    if !a.ok() {
        return None;
    }
    let v = a.body["volume"].clone();
    Some((v["status"].as_str().unwrap_or_default().to_string(), v))
}

/// The attachments of `volume` naming `server` (one a crash kept from being recorded).
async fn attachments_of(
    svc: &ComputeService,
    ctx: &Arc<AuthContext>,
    server: &str,
    volume: Option<&str>,
) -> Vec<Value> {
    let path = match volume {
        Some(v) => format!("/attachments/detail?instance_id={server}&volume_id={v}"),
        None => format!("/attachments/detail?instance_id={server}"),
    };
    match svc.cinder(ctx.clone(), Method::GET, &path, None).await {
        Some(a) if a.ok() => a.body["attachments"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn refusal(what: &str, a: Option<&Answer>) -> String {
    match a {
        None => format!("{what}: no volume service"),
        Some(a) => format!("{what}: {} (HTTP {})", a.message(), a.status.as_u16()),
    }
}

/// Records mapping changes of a server that is still building (not deleted), keeping the
/// mappings `f` leaves.
async fn save_bdms(
    svc: &ComputeService,
    id: &str,
    f: impl Fn(&mut Vec<Bdm>) + Send + Sync + Clone + 'static,
) -> Result<bool> {
    let id = id.to_string();
    svc.store()
        .write(move |tx| {
            let (id, f) = (id.clone(), f.clone());
            Box::pin(async move {
                let Some(old) = db::get_tx(tx, &id).await? else {
                    return Ok(false);
                };
                if old.deleted {
                    return Ok(false);
                }
                let mut n = old.clone();
                f(&mut n.bdms);
                if n != old {
                    db::save(tx, &old, &mut n).await?;
                }
                Ok(true)
            })
        })
        .await
}

/// The controller's block-device-mapping step of a build: the volumes to create are created
/// (each recorded at once), then waited for, then attached to the host and completed; then
/// the host spawns the guest. Any failure fails the build (its cleanup unwinds the volumes).
pub(crate) async fn bdm_step(svc: &ComputeService, s: Server) -> Result<Step> {
    let fail = |why: String| {
        controller::fail_build(
            500,
            format!("Build of instance {} aborted: {why}", s.id),
            why,
        )
    };
    if s.bdms.is_empty() {
        controller::update(
            svc,
            &s.id,
            Some(task::BLOCK_DEVICE_MAPPING),
            controller::spawn,
        )
        .await?;
        return Ok(Step::Next);
    }
    if svc.0.peers.volume.is_none() {
        let f = fail("Failure prepping block device: no volume service.".into());
        controller::update(svc, &s.id, Some(task::BLOCK_DEVICE_MAPPING), f).await?;
        return Ok(Step::Next);
    }
    let ctx = service_context(&s.project_id);
    let host = s.host.clone().unwrap_or_default();
    let mut bdms = s.bdms.clone();
    // 1. Volumes to create.
    for b in bdms.iter_mut().filter(|b| b.volume_id.is_empty()) {
        let mut vol = json!({"size": b.volume_size.unwrap_or(1), "name": "", "description": ""});
        match b.source_type.as_str() {
            "image" => vol["imageRef"] = json!(b.source_id),
            "snapshot" => vol["snapshot_id"] = json!(b.source_id),
            _ => vol["name"] = json!(format!("{}-blank-vol", s.id)),
        }
        if let Some(t) = &b.volume_type {
            vol["volume_type"] = json!(t);
        }
        let a = svc
            .cinder(
                ctx.clone(),
                Method::POST,
                "/volumes",
                Some(&json!({ "volume": vol })),
            )
            .await;
        let id = match &a {
            Some(a) if a.ok() => a.body["volume"]["id"].as_str().unwrap_or_default(),
            _ => "",
        };
        if id.is_empty() {
            let why = refusal(
                &format!("Volume for block device mapping {} not created", b.uuid),
                a.as_ref(),
            );
            let f = fail(why);
            controller::update(svc, &s.id, Some(task::BLOCK_DEVICE_MAPPING), f).await?;
            return Ok(Step::Next);
        }
        b.volume_id = id.to_string();
        b.created = true;
        b.requested_at = now_micros();
        let done = b.clone();
        save_bdms(svc, &s.id, move |list| {
            if let Some(x) = list.iter_mut().find(|x| x.uuid == done.uuid) {
                *x = done.clone();
            }
        })
        .await?;
    }
    // 2. Wait until they are available (the controller drives the server again on every
    // change and at least every few seconds).
    let now = now_micros();
    for b in &bdms {
        let status = volume_status(svc, &ctx, &b.volume_id).await;
        let why = match status.as_ref().map(|(st, _)| st.as_str()) {
            Some("available" | "reserved" | "attaching" | "in-use") => continue,
            Some("creating" | "downloading") if now - b.requested_at < VOLUME_WAIT_US => {
                return Ok(Step::Wait)
            }
            Some(st) => format!(
                "Volume {} did not finish being created even after we waited {} seconds. \
                 And its status is {st}.",
                b.volume_id,
                (now - b.requested_at).max(0) / 1_000_000
            ),
            None => format!("Volume {} could not be found.", b.volume_id),
        };
        controller::update(svc, &s.id, Some(task::BLOCK_DEVICE_MAPPING), fail(why)).await?;
        return Ok(Step::Next);
    }
    // 3. Attach each to the host (again after a reschedule: a new connector) and complete it.
    for b in bdms.iter_mut() {
        let body = json!({"attachment": {"connector": connector(&host, &b.device)}});
        let mut answer = None;
        if let Some(id) = &b.attachment_id {
            let a = svc
                .cinder(
                    ctx.clone(),
                    Method::PUT,
                    &format!("/attachments/{id}"),
                    Some(&body),
                )
                .await;
            if a.as_ref().is_some_and(|a| a.status.as_u16() != 404) {
                answer = a;
            }
        }
        if answer.is_none() {
            // One made before a crash is taken up again.
            let found = attachments_of(svc, &ctx, &s.id, Some(&b.volume_id)).await;
            answer = match found.first().and_then(|a| a["id"].as_str()) {
                Some(id) => {
                    svc.cinder(
                        ctx.clone(),
                        Method::PUT,
                        &format!("/attachments/{id}"),
                        Some(&body),
                    )
                    .await
                }
                None => {
                    let mut create = body.clone();
                    create["attachment"]["volume_uuid"] = json!(b.volume_id);
                    create["attachment"]["instance_uuid"] = json!(s.id);
                    svc.cinder(ctx.clone(), Method::POST, "/attachments", Some(&create))
                        .await
                }
            };
        }
        let att = match &answer {
            Some(a) if a.ok() => a.body["attachment"].clone(),
            _ => {
                let why = refusal(
                    &format!("Volume {} could not be attached", b.volume_id),
                    answer.as_ref(),
                );
                let f = fail(why);
                // Whatever attachment exists is found again by the cleanup.
                controller::update(svc, &s.id, Some(task::BLOCK_DEVICE_MAPPING), f).await?;
                return Ok(Step::Next);
            }
        };
        let att_id = att["id"].as_str().unwrap_or_default().to_string();
        b.attachment_id = Some(att_id.clone());
        b.connection_info = Some(att["connection_info"].clone());
        if att["status"].as_str() != Some("attached") {
            let a = svc
                .cinder(
                    ctx.clone(),
                    Method::POST,
                    &format!("/attachments/{att_id}/action"),
                    Some(&json!({"os-complete": {}})),
                )
                .await;
            if !a.as_ref().is_some_and(|a| a.ok()) {
                let why = refusal(
                    &format!("Volume {} could not be attached", b.volume_id),
                    a.as_ref(),
                );
                let f = fail(why);
                controller::update(svc, &s.id, Some(task::BLOCK_DEVICE_MAPPING), f).await?;
                return Ok(Step::Next);
            }
        }
        b.state = bdm::ATTACHED.into();
    }
    controller::update(svc, &s.id, Some(task::BLOCK_DEVICE_MAPPING), move |n| {
        n.bdms = bdms.clone();
        controller::spawn(n);
    })
    .await?;
    Ok(Step::Next)
}

/// Detaches every volume of the server (its attachments deleted, recorded or not) and deletes
/// the volumes that go with it: those marked `delete_on_termination`, and for a failed build
/// (`failed_build`) those made for it too. Returns `false` while a volume to delete cannot be
/// deleted yet (still being created): the caller waits and calls again.
pub(crate) async fn release(svc: &ComputeService, s: &Server, failed_build: bool) -> Result<bool> {
    // A server without volumes costs the volume service nothing.
    if svc.0.peers.volume.is_none() || s.bdms.is_empty() {
        return Ok(true);
    }
    let ctx = service_context(&s.project_id);
    let mut ids: Vec<String> = s
        .bdms
        .iter()
        .filter_map(|b| b.attachment_id.clone())
        .collect();
    for a in attachments_of(svc, &ctx, &s.id, None).await {
        if let Some(id) = a["id"].as_str() {
            if !ids.iter().any(|x| x == id) {
                ids.push(id.to_string());
            }
        }
    }
    for id in &ids {
        if let Some(a) = svc
            .cinder(
                ctx.clone(),
                Method::DELETE,
                &format!("/attachments/{id}"),
                None,
            )
            .await
        {
            if !a.ok() && a.status.as_u16() != 404 {
                tracing::warn!(attachment = %id, server = %s.id, error = %a.message(),
                    "deleting a volume attachment");
            }
        }
    }
    let mut done = true;
    for b in &s.bdms {
        let delete = b.delete_on_termination || (failed_build && b.created);
        if !delete || b.volume_id.is_empty() {
            continue;
        }
        let Some(a) = svc
            .cinder(
                ctx.clone(),
                Method::DELETE,
                &format!("/volumes/{}", b.volume_id),
                None,
            )
            .await
        else {
            continue;
        };
        if a.ok() || a.status.as_u16() == 404 {
            continue;
        }
        match volume_status(svc, &ctx, &b.volume_id).await {
            Some((st, _)) if matches!(st.as_str(), "creating" | "downloading") => done = false,
            _ => tracing::warn!(volume = %b.volume_id, server = %s.id, error = %a.message(),
                "deleting a volume of a server"),
        }
    }
    Ok(done)
}

/// The effect of an agent's report on the volume mappings (a report about the generation the
/// server is at): a volume being attached that the guest has is connected (one it lacks
/// after a failure is given up), one being detached that it no longer has is detached.
pub(crate) fn apply_report(n: &mut Server, r: &InstanceReport) {
    if report_bdms(&mut n.bdms, r) {
        // The agent stops trying.
        n.generation += 1;
    }
}

/// [`apply_report`] on the mappings; whether an attach was given up.
fn report_bdms(bdms: &mut [Bdm], r: &InstanceReport) -> bool {
    let mut changed = false;
    for b in bdms.iter_mut() {
        let has = r.volumes.contains(&b.volume_id);
        match b.state.as_str() {
            bdm::ATTACHING if has => b.state = bdm::CONNECTED.into(),
            bdm::ATTACHING => {
                if let Some(f) = &r.fault {
                    b.state = bdm::DETACHED.into();
                    b.error = Some(f.message.clone());
                    changed = true;
                }
            }
            bdm::DETACHING if !has => b.state = bdm::DETACHED.into(),
            _ => {}
        }
    }
    changed
}

/// What [`settle_bdm`] does with a mapping: keep it (or remove it), and the action event to
/// finish, with its error.
type Settled = (bool, Option<(&'static str, Option<String>)>);

/// Changes mapping `uuid` of server `id` if it is still in `state`, as `f` says.
async fn settle_bdm(
    svc: &ComputeService,
    id: &str,
    uuid: &str,
    state: &'static str,
    f: impl Fn(&mut Bdm) -> Settled + Send + Sync + Clone + 'static,
) -> Result<()> {
    let (id, uuid) = (id.to_string(), uuid.to_string());
    svc.store()
        .write(move |tx| {
            let (id, uuid, f) = (id.clone(), uuid.clone(), f.clone());
            Box::pin(async move {
                let Some(old) = db::get_tx(tx, &id).await? else {
                    return Ok(());
                };
                if old.deleted {
                    return Ok(());
                }
                let Some(i) = old
                    .bdms
                    .iter()
                    .position(|b| b.uuid == uuid && b.state == state)
                else {
                    return Ok(());
                };
                let mut n = old.clone();
                let (keep, event) = f(&mut n.bdms[i]);
                // Taken from the agent's disks: it must look again.
                if n.bdms[i].state == bdm::DETACHED && state != bdm::DETACHED {
                    n.generation += 1;
                }
                if !keep {
                    n.bdms.remove(i);
                }
                if let Some((event, error)) = event {
                    db::action_finish_event(tx, &id, event, error.as_deref()).await?;
                }
                db::save(tx, &old, &mut n).await
            })
        })
        .await
}

/// The controller's step for attachments to complete and to remove (volumes attached to or
/// detached from a server that exists).
pub(crate) async fn volume_step(svc: &ComputeService, s: Server) -> Result<Step> {
    let ctx = service_context(&s.project_id);
    for b in s.bdms.iter().filter(|b| b.state == bdm::CONNECTED) {
        let a = match &b.attachment_id {
            Some(id) => {
                svc.cinder(
                    ctx.clone(),
                    Method::POST,
                    &format!("/attachments/{id}/action"),
                    Some(&json!({"os-complete": {}})),
                )
                .await
            }
            None => None,
        };
        let error = match &a {
            Some(a) if a.ok() => None,
            other => Some(refusal(
                &format!("Volume {} could not be attached", b.volume_id),
                other.as_ref(),
            )),
        };
        settle_bdm(svc, &s.id, &b.uuid, bdm::CONNECTED, move |b| match &error {
            None => {
                b.state = bdm::ATTACHED.into();
                (true, Some((ATTACH_EVENT, None)))
            }
            Some(e) => {
                // Given up: the agent detaches it, then the attachment goes.
                b.state = bdm::DETACHED.into();
                b.error = Some(e.clone());
                (true, None)
            }
        })
        .await?;
    }
    for b in s.bdms.iter().filter(|b| b.state == bdm::DETACHED) {
        if let Some(id) = &b.attachment_id {
            if let Some(a) = svc
                .cinder(
                    ctx.clone(),
                    Method::DELETE,
                    &format!("/attachments/{id}"),
                    None,
                )
                .await
            {
                if !a.ok() && a.status.as_u16() != 404 {
                    tracing::warn!(attachment = %id, server = %s.id, error = %a.message(),
                        "deleting a volume attachment");
                    continue;
                }
            }
        }
        settle_bdm(svc, &s.id, &b.uuid, bdm::DETACHED, |b| match &b.error {
            Some(e) => (false, Some((ATTACH_EVENT, Some(e.clone())))),
            None => (false, Some((DETACH_EVENT, None))),
        })
        .await?;
    }
    Ok(Step::Next)
}

/// Whether a server in `vm_state` may have volumes attached or detached (Nova's
/// `check_instance_state` of `attach_volume` and `detach_volume`).
pub fn attachable_state(vm_state: &str) -> bool {
    matches!(
        vm_state,
        vm::ACTIVE
            | vm::PAUSED
            | vm::STOPPED
            | vm::RESIZED
            | vm::SOFT_DELETED
            | vm::SHELVED
            | vm::SHELVED_OFFLOADED
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(device: &str, volume: &str, state: &str) -> Bdm {
        Bdm {
            uuid: format!("bdm-{volume}"),
            source_type: "volume".into(),
            source_id: None,
            volume_id: volume.into(),
            attachment_id: Some(format!("att-{volume}")),
            device: device.into(),
            boot_index: None,
            delete_on_termination: false,
            tag: None,
            volume_size: Some(1),
            volume_type: None,
            guest_format: None,
            disk_bus: None,
            device_type: None,
            state: state.into(),
            connection_info: None,
            created: false,
            requested_at: 0,
            error: None,
        }
    }

    #[test]
    fn devices_follow_the_root_ephemeral_swap_and_mappings() {
        assert_eq!(
            free_device(&taken_letters(true, 0, 0, &[])).unwrap(),
            "/dev/vdb"
        );
        assert_eq!(
            free_device(&taken_letters(true, 1, 0, &[])).unwrap(),
            "/dev/vdc"
        );
        assert_eq!(
            free_device(&taken_letters(true, 1, 512, &[])).unwrap(),
            "/dev/vdd"
        );
        assert_eq!(
            free_device(&taken_letters(true, 0, 512, &[])).unwrap(),
            "/dev/vdc"
        );
        let b = [
            mapping("/dev/vdb", "v1", bdm::ATTACHED),
            mapping("/dev/vdd", "v2", bdm::ATTACHED),
        ];
        // A freed letter is taken again.
        assert_eq!(
            free_device(&taken_letters(true, 0, 0, &b)).unwrap(),
            "/dev/vdc"
        );
        // Booted from a volume: the root mapping holds vda.
        let root = [mapping("/dev/vda", "r", bdm::ATTACHED)];
        assert_eq!(
            free_device(&taken_letters(false, 0, 0, &root)).unwrap(),
            "/dev/vdb"
        );
        let all: Vec<char> = ('a'..='z').collect();
        assert!(free_device(&all).is_none());
        assert_eq!(letter("/dev/sdc"), Some('c'));
        assert_eq!(letter("/dev/vdaa"), None);
    }

    #[test]
    fn reports_move_attaches_and_detaches_on() {
        let report = |volumes: &[&str], fault: bool| InstanceReport {
            uuid: "s".into(),
            host: "h".into(),
            generation: 1,
            reboot_seq: 0,
            power_state: strata_agent_api::PowerState::Running,
            deleted: false,
            fault: fault.then(|| strata_agent_api::Fault {
                message: "no".into(),
                details: String::new(),
                retryable: false,
            }),
            console: None,
            volumes: volumes.iter().map(|v| v.to_string()).collect(),
        };
        let mut bdms = vec![
            mapping("/dev/vdb", "a", bdm::ATTACHING),
            mapping("/dev/vdc", "b", bdm::DETACHING),
            mapping("/dev/vdd", "c", bdm::ATTACHING),
        ];
        let states = |l: &[Bdm]| l.iter().map(|b| b.state.clone()).collect::<Vec<_>>();
        assert!(!report_bdms(&mut bdms, &report(&["a", "b"], false)));
        assert_eq!(
            states(&bdms),
            [bdm::CONNECTED, bdm::DETACHING, bdm::ATTACHING]
        );
        // Gone from the guest: detached; missing after a fault: given up.
        assert!(report_bdms(&mut bdms, &report(&["a"], true)));
        assert_eq!(
            states(&bdms),
            [bdm::CONNECTED, bdm::DETACHED, bdm::DETACHED]
        );
        assert_eq!(bdms[2].error.as_deref(), Some("no"));
        assert!(bdms[1].error.is_none());
    }
}
