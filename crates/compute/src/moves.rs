//! Moves of servers between hosts — resize, cold migration, live migration — and shelving,
//! after the API has answered.
//!
//! The API checks the request, records the move on the server ([`Move`], mirrored in its
//! `compute_migration` row by every write that changes it) and sets a task; the lifecycle
//! controller runs the steps below, one store write each, guarded by the task and the move
//! they start from; agent reports ([`on_report`]) finish the steps that wait for a guest.
//!
//! Allocations follow Nova's migration-based allocations (Queens and later): while a server
//! moves, the *source's* allocation (old flavor) belongs to the migration's uuid as placement
//! consumer and the instance's own consumer holds the *destination's* (new flavor). Each step
//! reads placement before it acts, so running a step again after a crash finds what the
//! earlier run did and does not claim twice:
//!
//! * scheduling: the instance's allocation passes to the migration (one atomic placement write
//!   of both consumers) unless the migration already holds one; then the instance is claimed on
//!   the destination, unless it already holds a claim (reused);
//! * confirm: the migration's allocation is deleted (404 is no error);
//! * revert, or a move that fails: the migration's allocation goes back to the instance,
//!   replacing its destination claim, in one write — unless the migration holds none.
//!
//! Guests: a move gives the server a second host ([`OtherGuest`], the `move_host` column) whose
//! agent is given the server too, as another [`InstanceSpec`] with the same uuid: the
//! destination's guest while a live migration builds it, the source's guest (stopped, old
//! flavor) while a resize waits to be confirmed. Taking the server off that list makes its agent
//! destroy the guest and report it gone, which is what confirm, revert and the end of a live
//! migration wait for (or for that host to be down: its agent removes the orphan when back).
//!
//! States (task, migration status):
//!
//! ```text
//! resize/migrate: resize_prep,pre-migrating --schedule--> resize_migrating,migrating
//!   --source off (report)--> resize_migrated --switch to dest--> resize_finish,post-migrating
//!   --dest running (report)--> VERIFY_RESIZE (resized, finished)
//! confirmResize: finished -> confirming --source gone, allocation dropped--> active, confirmed
//! revertResize: resize_reverting,reverting --back to source--> (dest gone, allocations swapped)
//!   --source in its old power (report)--> active/stopped, reverted
//! live: migrating,accepted --schedule--> running --dest running (report)--> post-migrating
//!   (host = dest) --source gone, allocation dropped--> completed
//! shelve: shelving_image_* (snapshot) -> shelving --guest off--> shelved
//!   [-> shelving_offloading --guest gone, allocation dropped--> shelved_offloaded]
//! unshelve: shelved -> powering-on -> active; shelved_offloaded -> unshelving --scheduled-->
//!   spawning -> active; the shelved image is deleted once the server left the shelved states
//! ```
//!
//! [`InstanceSpec`]: strata_agent_api::InstanceSpec

use crate::controller::{host_is_up, host_states, service_context, Step};
use crate::server::{migration as mig, power, task, vm, Fault, Move, OtherGuest, Server};
use crate::server_db as db;
use crate::ComputeService;
use http::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use strata_agent_api::{InstanceReport, Power};
use strata_core::time::now_micros;
use strata_core::Result;
use strata_placement::scheduler::Weights;
use strata_placement::{Claim, ConsumerClaim, ConsumerGeneration, PlacementError, Resources};
use strata_store::Tx;

/// Instance action events, as Nova names them.
pub mod event {
    pub const MIGRATE_SERVER: &str = "conductor_migrate_server";
    pub const PREP_RESIZE: &str = "compute_prep_resize";
    pub const RESIZE_INSTANCE: &str = "compute_resize_instance";
    pub const FINISH_RESIZE: &str = "compute_finish_resize";
    pub const CONFIRM_RESIZE: &str = "compute_confirm_resize";
    pub const REVERT_RESIZE: &str = "compute_revert_resize";
    pub const FINISH_REVERT_RESIZE: &str = "compute_finish_revert_resize";
    pub const LIVE_MIGRATE: &str = "conductor_live_migrate_instance";
    pub const LIVE_MIGRATION: &str = "compute_live_migration";
    pub const POST_LIVE_MIGRATION: &str = "compute_post_live_migration_at_destination";
    pub const LIVE_ABORT: &str = "compute_live_migration_abort";
    pub const LIVE_FORCE_COMPLETE: &str = "compute_live_migration_force_complete";
    pub const SHELVE: &str = "compute_shelve_instance";
    pub const SHELVE_OFFLOAD: &str = "compute_shelve_offload_instance";
    pub const SCHEDULE: &str = "schedule_instances";
    pub const UNSHELVE: &str = "compute_unshelve_instance";
    pub const START: &str = "compute_start_instance";
}

/// Nova's power-state code of a desired power.
pub fn power_code(p: Power) -> i64 {
    match p {
        Power::Running => power::RUNNING,
        Power::Shutdown => power::SHUTDOWN,
        Power::Paused => power::PAUSED,
        Power::Suspended => power::SUSPENDED,
    }
}

/// Whether the controller has a step of a move or a shelve to run for `s`.
pub fn pending(s: &Server) -> bool {
    match s.task_state.as_deref() {
        Some(
            task::RESIZE_PREP
            | task::RESIZE_MIGRATED
            | task::RESIZE_REVERTING
            | task::MIGRATING
            | task::SHELVING
            | task::SHELVING_OFFLOADING
            | task::UNSHELVING,
        ) => true,
        None => {
            s.active_move().is_some_and(|m| m.status == mig::CONFIRMING)
                || shelved_image_to_drop(s)
                || (s.vm_state == vm::SHELVED && s.shelve.is_some())
        }
        _ => false,
    }
}

/// A shelve's image is deleted once the server is out of the shelved states.
fn shelved_image_to_drop(s: &Server) -> bool {
    s.shelve.is_some() && !matches!(s.vm_state.as_str(), vm::SHELVED | vm::SHELVED_OFFLOADED)
}

/// An event change on an action (by request id) recorded with a step's write.
#[derive(Debug, Clone)]
pub(crate) enum Ev {
    Begin(&'static str),
    End(&'static str, Option<String>),
    /// Every running event finished (failed with the message when given).
    Done(Option<String>),
}

type Events = Vec<(String, Ev)>;

pub(crate) async fn record(tx: &mut Tx, n: &Server, evs: &Events) -> Result<()> {
    for (rid, ev) in evs {
        match ev {
            Ev::Begin(e) => db::action_event_begin(tx, &n.id, rid, e, n.host.as_deref()).await?,
            Ev::End(e, err) => db::action_event_end(tx, &n.id, rid, e, err.as_deref()).await?,
            Ev::Done(err) => db::action_end(tx, &n.id, rid, err.as_deref()).await?,
        }
    }
    Ok(())
}

/// Applies `f` to the server in one store write if `guard` holds on it (and it is not
/// deleted), with the events `f` returns; whether it did.
async fn advance(
    svc: &ComputeService,
    id: &str,
    guard: impl Fn(&Server) -> bool + Send + Sync + Clone + 'static,
    f: impl Fn(&mut Server) -> Events + Send + Sync + Clone + 'static,
) -> Result<bool> {
    let id = id.to_string();
    svc.store()
        .write(move |tx| {
            let (id, guard, f) = (id.clone(), guard.clone(), f.clone());
            Box::pin(async move {
                let Some(old) = db::get_tx(tx, &id).await? else {
                    return Ok(false);
                };
                if old.deleted || !guard(&old) {
                    return Ok(false);
                }
                let mut n = old.clone();
                let evs = f(&mut n);
                record(tx, &n, &evs).await?;
                db::save(tx, &old, &mut n).await?;
                Ok(true)
            })
        })
        .await
}

/// The server is still in `task` with move `id` in `status` (any status when `None`).
fn at(
    t: Option<&'static str>,
    id: i64,
    status: Option<&'static str>,
) -> impl Fn(&Server) -> bool + Send + Sync + Clone + 'static {
    move |s: &Server| {
        s.task_state.as_deref() == t
            && s.active_move()
                .is_some_and(|m| m.id == id && status.is_none_or(|st| m.status == st))
    }
}

/// The move's action.
fn rid(n: &Server) -> String {
    n.migration
        .as_ref()
        .map(|m| m.request_id.clone())
        .unwrap_or_default()
}

// ------------------------------------------------------------------ placement

fn perr(e: PlacementError) -> strata_core::Error {
    strata_core::Error::internal(e.detail)
}

async fn allocations(svc: &ComputeService, consumer: &str) -> Result<BTreeMap<String, Resources>> {
    match svc.placement() {
        Some(p) => p.consumer_allocations(consumer).await.map_err(perr),
        None => Ok(BTreeMap::new()),
    }
}

/// Gives consumer `to` the allocations of `from`, which loses them, in one placement write
/// (Nova's `move_allocations`); nothing when `from` has none. Idempotent: once moved, `from`
/// has none.
async fn move_allocations(
    svc: &ComputeService,
    s: &Server,
    from: &str,
    to: &str,
    to_type: &str,
) -> Result<()> {
    let Some(p) = svc.placement() else {
        return Ok(());
    };
    let a = p.consumer_allocations(from).await.map_err(perr)?;
    if a.is_empty() {
        return Ok(());
    }
    let claim = |allocations, consumer_type: Option<&str>| Claim {
        project_id: s.project_id.clone(),
        user_id: s.user_id.clone(),
        consumer_type: consumer_type.map(String::from),
        allocations,
    };
    p.claim_many(vec![
        ConsumerClaim {
            consumer: to.to_string(),
            claim: claim(a, Some(to_type)),
            expected: ConsumerGeneration::Unchecked,
        },
        ConsumerClaim {
            consumer: from.to_string(),
            claim: claim(BTreeMap::new(), None),
            expected: ConsumerGeneration::Unchecked,
        },
    ])
    .await
    .map_err(perr)?;
    Ok(())
}

/// Deletes a consumer's allocations; none is no error.
async fn drop_allocations(svc: &ComputeService, consumer: &str) -> Result<()> {
    if let Some(p) = svc.placement() {
        match p.allocations_delete(consumer).await {
            Ok(()) => {}
            Err(e) if e.status == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(perr(e)),
        }
    }
    Ok(())
}

/// The source's allocation passes to the migration (Nova's
/// `replace_allocation_with_migration`) unless the migration holds one already, or the
/// instance holds nothing on the source (a claim it has elsewhere is a destination's).
async fn hand_source_to_migration(svc: &ComputeService, s: &Server, m: &Move) -> Result<()> {
    if !allocations(svc, &m.uuid).await?.is_empty() {
        return Ok(());
    }
    let source_rp = crate::hosts::nodes(svc.store())
        .await?
        .into_iter()
        .find(|n| n.host == m.source_host)
        .map(|n| n.id);
    let inst = allocations(svc, &s.id).await?;
    if !inst.is_empty() && inst.keys().all(|rp| Some(rp) == source_rp.as_ref()) {
        move_allocations(svc, s, &s.id, &m.uuid, "MIGRATION").await?;
    }
    Ok(())
}

/// Picks a host for `s` sized as `flavor` (the destination of move `m`, or the host an
/// offloaded server is unshelved to when `m` is `None`) and claims it for the instance: `Ok`
/// with the host, `Err` with why none fits. A claim the instance already holds (made before a
/// crash) is reused when its host is acceptable.
async fn pick_host(
    svc: &ComputeService,
    s: &Server,
    m: Option<&Move>,
    forced: Option<String>,
) -> Result<std::result::Result<String, String>> {
    let Some(p) = svc.placement() else {
        return Ok(Err("no placement service".into()));
    };
    let _serial = crate::controller::SCHEDULING.lock().await;
    let states = host_states(svc).await?;
    let same_host_ok = m.is_some_and(|m| m.kind == mig::RESIZE)
        && svc.config().allow_resize_to_same_host.unwrap_or(false);
    let avoid: Vec<String> = match m {
        Some(m) if !same_host_ok => vec![m.source_host.clone()],
        _ => Vec::new(),
    };
    let existing = p.consumer_allocations(&s.id).await.map_err(perr)?;
    if let Some(rp) = existing.keys().next() {
        let host = states.iter().find(|h| &h.provider == rp).map(|h| &h.host);
        match host {
            Some(h) if !avoid.contains(h) && forced.as_ref().is_none_or(|f| f == h) => {
                return Ok(Ok(h.clone()));
            }
            _ => drop_allocations(svc, &s.id).await?,
        }
    }
    let mut t = s.clone();
    if let Some(m) = m {
        t.flavor = m.new_flavor.clone();
    }
    t.ignore_hosts = avoid;
    // A host forced at boot does not bind later moves (Nova resets forced destinations); the
    // zone does.
    t.requested_zone = s
        .requested_zone
        .as_deref()
        .map(|z| z.split(':').next().unwrap_or(z).to_string())
        .filter(|z| !z.is_empty());
    let mut spec = crate::controller::request_spec(svc, &t).await?;
    spec.force_host = forced;
    match p
        .schedule(&s.id, &spec, &states, &Weights::default())
        .await
        .map_err(perr)?
    {
        Ok((sel, _)) => Ok(Ok(sel.host)),
        Err(nv) => Ok(Err(nv.0)),
    }
}

/// `(zone, address)` of a host.
async fn host_facts(svc: &ComputeService, host: &str) -> Result<(String, Option<String>)> {
    let zone = host_states(svc)
        .await?
        .iter()
        .find(|h| h.host == host)
        .map(|h| h.availability_zone.clone())
        .unwrap_or_else(|| svc.config().availability_zone.clone());
    let ip = crate::hosts::nodes(svc.store())
        .await?
        .into_iter()
        .find(|n| n.host == host)
        .map(|n| n.reg.host_ip);
    Ok((zone, ip))
}

/// The server's ports follow it to `host` (`binding:host_id`). Idempotent.
async fn bind_ports(svc: &ComputeService, s: &Server, host: &str) {
    let ctx = service_context(&s.project_id);
    for p in &s.ports {
        let body = json!({"port": {"binding:host_id": host}});
        let path = format!("/ports/{}", p.port_id);
        if let Some(a) = svc
            .neutron(ctx.clone(), Method::PUT, &path, Some(&body))
            .await
        {
            if !a.ok() && a.status != StatusCode::NOT_FOUND {
                tracing::warn!(port = %p.port_id, error = %a.message(), "moving a port");
            }
        }
    }
}

/// Whether the guest on `o` is gone, or cannot be waited for (its host is down).
async fn other_gone(svc: &ComputeService, o: &Option<OtherGuest>) -> Result<bool> {
    match o {
        Some(o) if !o.gone => Ok(!host_is_up(svc, &o.host).await?),
        _ => Ok(true),
    }
}

// ------------------------------------------------------------------ the steps

/// Runs the move or shelve step `s` is at.
pub(crate) async fn step(svc: &ComputeService, s: Server) -> Result<Step> {
    let m = s.active_move().cloned();
    match (s.task_state.as_deref(), m) {
        (Some(task::RESIZE_PREP), Some(m)) => cold_schedule(svc, s, m).await,
        (Some(task::RESIZE_MIGRATED), Some(m)) => cold_switch(svc, s, m).await,
        (Some(task::RESIZE_REVERTING), Some(m)) => revert(svc, s, m).await,
        (Some(task::MIGRATING), Some(m)) if m.is_live() => live(svc, s, m).await,
        (None, Some(m)) if m.status == mig::CONFIRMING => confirm(svc, s, m).await,
        (Some(task::RESIZE_PREP | task::RESIZE_MIGRATED | task::RESIZE_REVERTING), None)
        | (Some(task::MIGRATING), _) => {
            // A move task without its move (written by hand, or an older document): nothing
            // can be carried out; the task is cleared.
            let t = s.task_state.clone();
            advance(
                svc,
                &s.id,
                move |n| n.task_state == t,
                |n| {
                    n.task_state = None;
                    Vec::new()
                },
            )
            .await?;
            Ok(Step::Next)
        }
        (Some(task::SHELVING), _) => shelve_done(svc, s).await,
        (Some(task::SHELVING_OFFLOADING), _) => offload(svc, s).await,
        (Some(task::UNSHELVING), _) => unshelve(svc, s).await,
        (None, _) if s.vm_state == vm::SHELVED => offload_later(svc, s).await,
        (None, _) if shelved_image_to_drop(&s) => drop_shelved_image(svc, s).await,
        _ => Ok(Step::Wait),
    }
}

/// Resize / cold migration: the destination. Idempotent (see the module's allocations).
async fn cold_schedule(svc: &ComputeService, s: Server, m: Move) -> Result<Step> {
    hand_source_to_migration(svc, &s, &m).await?;
    let picked = pick_host(svc, &s, Some(&m), m.requested_host.clone()).await?;
    let guard = at(Some(task::RESIZE_PREP), m.id, Some(mig::PRE_MIGRATING));
    let dest = match picked {
        Ok(h) => h,
        Err(why) => {
            // As Nova's conductor: the server stays as it was, the migration is in error, the
            // action says why. The source's allocation goes back to the instance.
            move_allocations(svc, &s, &m.uuid, &s.id, "INSTANCE").await?;
            let msg = format!("No valid host was found. {why}");
            advance(svc, &s.id, guard, move |n| {
                n.task_state = None;
                n.fault = Some(Fault {
                    code: 500,
                    message: msg.clone(),
                    details: String::new(),
                    created: now_micros(),
                });
                if let Some(mm) = n.active_move_mut() {
                    mm.status = mig::ERROR.into();
                }
                let r = rid(n);
                vec![
                    (r.clone(), Ev::End(event::MIGRATE_SERVER, Some(msg.clone()))),
                    (r, Ev::Done(Some(msg.clone()))),
                ]
            })
            .await?;
            return Ok(Step::Next);
        }
    };
    let (_, ip) = host_facts(svc, &dest).await?;
    advance(svc, &s.id, guard, move |n| {
        if let Some(mm) = n.active_move_mut() {
            mm.dest_host = Some(dest.clone());
            mm.dest_node = Some(dest.clone());
            mm.dest_ip = ip.clone();
            mm.status = mig::MIGRATING.into();
        }
        // The source's guest is powered off before the destination builds its own.
        n.task_state = Some(task::RESIZE_MIGRATING.into());
        n.power = Power::Shutdown;
        n.generation += 1;
        let r = rid(n);
        vec![
            (r.clone(), Ev::End(event::MIGRATE_SERVER, None)),
            (r.clone(), Ev::Begin(event::PREP_RESIZE)),
            (r.clone(), Ev::End(event::PREP_RESIZE, None)),
            (r, Ev::Begin(event::RESIZE_INSTANCE)),
        ]
    })
    .await?;
    Ok(Step::Next)
}

/// Resize / cold migration: the source's guest is off; the server becomes the destination's,
/// with the new flavor (the source keeps its stopped guest until confirm or revert).
/// Idempotent: the ports' binding is rewritten, the write checks the task.
async fn cold_switch(svc: &ComputeService, s: Server, m: Move) -> Result<Step> {
    let Some(dest) = m.dest_host.clone() else {
        return Ok(Step::Wait);
    };
    bind_ports(svc, &s, &dest).await;
    let (zone, _) = host_facts(svc, &dest).await?;
    let guard = at(Some(task::RESIZE_MIGRATED), m.id, None);
    advance(svc, &s.id, guard, move |n| {
        let same = n.host.as_deref() == Some(dest.as_str());
        n.host = Some(dest.clone());
        n.node = Some(dest.clone());
        n.availability_zone = Some(zone.clone());
        n.on_host = true;
        n.guest_gone = false;
        n.task_state = Some(task::RESIZE_FINISH.into());
        n.generation += 1;
        let mut evs = Vec::new();
        if let Some(mm) = n.active_move_mut() {
            mm.status = mig::POST_MIGRATING.into();
            mm.other = (!same).then(|| OtherGuest {
                host: mm.source_host.clone(),
                wanted: true,
                power: Power::Shutdown,
                flavor: mm.old_flavor.clone(),
                gone: false,
                ready: false,
                fault: None,
            });
            // Powered on again unless it was stopped (Nova's `finish_resize`).
            let (flavor, power) = (mm.new_flavor.clone(), mm.old_power);
            n.flavor = flavor;
            n.power = match power {
                Power::Shutdown => Power::Shutdown,
                _ => Power::Running,
            };
            evs.push((rid(n), Ev::Begin(event::FINISH_RESIZE)));
        }
        evs
    })
    .await?;
    Ok(Step::Next)
}

/// `confirmResize`: the source's guest goes, then the migration's allocation; the server is
/// active (or stopped) on the destination. Idempotent.
async fn confirm(svc: &ComputeService, s: Server, m: Move) -> Result<Step> {
    if !other_gone(svc, &m.other).await? {
        return Ok(Step::Wait);
    }
    drop_allocations(svc, &m.uuid).await?;
    advance(
        svc,
        &s.id,
        at(None, m.id, Some(mig::CONFIRMING)),
        move |n| {
            n.vm_state = if n.power == Power::Shutdown {
                vm::STOPPED
            } else {
                vm::ACTIVE
            }
            .into();
            if let Some(mm) = n.active_move_mut() {
                mm.status = mig::CONFIRMED.into();
                mm.other = None;
            }
            let r = rid(n);
            vec![
                (r.clone(), Ev::End(event::CONFIRM_RESIZE, None)),
                (r, Ev::Done(None)),
            ]
        },
    )
    .await?;
    Ok(Step::Next)
}

/// `revertResize`: back on the source (the destination's guest removed), then the
/// allocations swapped back and the source's guest in its old power state; its report ends
/// the revert ([`on_report`]). Idempotent.
async fn revert(svc: &ComputeService, s: Server, m: Move) -> Result<Step> {
    let id = m.id;
    let guard = move |n: &Server| {
        n.task_state.as_deref() == Some(task::RESIZE_REVERTING)
            && n.active_move()
                .is_some_and(|mm| mm.id == id && mm.status == mig::REVERTING && !mm.finishing)
    };
    if m.status != mig::REVERTING || m.finishing {
        return Ok(Step::Wait);
    }
    if s.host.as_deref() != Some(m.source_host.as_str()) {
        bind_ports(svc, &s, &m.source_host).await;
        advance(svc, &s.id, guard, move |n| {
            let dest = n.host.clone().unwrap_or_default();
            n.on_host = true;
            n.guest_gone = false;
            n.power = Power::Shutdown;
            n.generation += 1;
            let Some(m0) = n.active_move().cloned() else {
                return Vec::new();
            };
            n.host = Some(m0.source_host.clone());
            n.node = Some(m0.source_node.clone());
            n.availability_zone = m0.old_zone.clone();
            n.flavor = m0.old_flavor.clone();
            if let Some(mm) = n.active_move_mut() {
                mm.other = Some(OtherGuest {
                    host: dest,
                    wanted: false,
                    power: Power::Shutdown,
                    flavor: m0.new_flavor.clone(),
                    gone: false,
                    ready: false,
                    fault: None,
                });
            }
            let r = m0.request_id;
            vec![
                (r.clone(), Ev::End(event::REVERT_RESIZE, None)),
                (r, Ev::Begin(event::FINISH_REVERT_RESIZE)),
            ]
        })
        .await?;
        return Ok(Step::Next);
    }
    if !other_gone(svc, &m.other).await? {
        return Ok(Step::Wait);
    }
    // The migration's (source) allocation back to the instance, replacing the destination's.
    move_allocations(svc, &s, &m.uuid, &s.id, "INSTANCE").await?;
    advance(svc, &s.id, guard, move |n| {
        n.generation += 1;
        let Some(m0) = n.active_move().cloned() else {
            return Vec::new();
        };
        n.flavor = m0.old_flavor.clone();
        n.power = m0.old_power;
        if let Some(mm) = n.active_move_mut() {
            mm.other = None;
            mm.finishing = true;
        }
        let r = m0.request_id;
        vec![
            (r.clone(), Ev::End(event::REVERT_RESIZE, None)),
            (r, Ev::Begin(event::FINISH_REVERT_RESIZE)),
        ]
    })
    .await?;
    Ok(Step::Next)
}

/// Live migration. Idempotent per status (see the module's allocations).
async fn live(svc: &ComputeService, s: Server, m: Move) -> Result<Step> {
    match m.status.as_str() {
        mig::ACCEPTED | mig::QUEUED | mig::PREPARING => {
            if m.abort.is_some() {
                return live_rollback(svc, s, m, mig::CANCELLED, None).await;
            }
            hand_source_to_migration(svc, &s, &m).await?;
            let picked = pick_host(svc, &s, Some(&m), m.requested_host.clone()).await?;
            let status = m.status.clone();
            let id = m.id;
            let guard = move |n: &Server| {
                n.task_state.as_deref() == Some(task::MIGRATING)
                    && n.active_move()
                        .is_some_and(|mm| mm.id == id && mm.status == status && mm.abort.is_none())
            };
            match picked {
                Ok(dest) => {
                    let (_, ip) = host_facts(svc, &dest).await?;
                    let done = advance(svc, &s.id, guard, move |n| {
                        let (power, flavor) = (n.power, n.flavor.clone());
                        n.generation += 1;
                        if let Some(mm) = n.active_move_mut() {
                            mm.dest_host = Some(dest.clone());
                            mm.dest_node = Some(dest.clone());
                            mm.dest_ip = ip.clone();
                            mm.status = mig::RUNNING.into();
                            mm.other = Some(OtherGuest {
                                host: dest.clone(),
                                wanted: true,
                                power,
                                flavor,
                                gone: false,
                                ready: false,
                                fault: None,
                            });
                        }
                        let r = rid(n);
                        vec![
                            (r.clone(), Ev::End(event::LIVE_MIGRATE, None)),
                            (r, Ev::Begin(event::LIVE_MIGRATION)),
                        ]
                    })
                    .await?;
                    if !done {
                        // Aborted meanwhile: the next pass rolls back (the claim included).
                        return Ok(Step::Next);
                    }
                }
                Err(why) => {
                    let msg = format!("No valid host was found. {why}");
                    return live_rollback(svc, s, m, mig::ERROR, Some(msg)).await;
                }
            }
            Ok(Step::Next)
        }
        mig::RUNNING => {
            let failed = m.other.as_ref().and_then(|o| o.fault.clone());
            if m.abort.is_some() || failed.is_some() {
                let status = if m.abort.is_some() {
                    mig::CANCELLED
                } else {
                    mig::FAILED
                };
                return live_rollback(svc, s, m, status, failed).await;
            }
            if !m.other.as_ref().is_some_and(|o| o.ready) {
                return Ok(Step::Wait);
            }
            let Some(dest) = m.dest_host.clone() else {
                return Ok(Step::Wait);
            };
            bind_ports(svc, &s, &dest).await;
            let (zone, _) = host_facts(svc, &dest).await?;
            let id = m.id;
            let guard = move |n: &Server| {
                n.task_state.as_deref() == Some(task::MIGRATING)
                    && n.active_move().is_some_and(|mm| {
                        mm.id == id && mm.status == mig::RUNNING && mm.abort.is_none()
                    })
            };
            advance(svc, &s.id, guard, move |n| {
                let source = n.host.clone().unwrap_or_default();
                n.host = Some(dest.clone());
                n.node = Some(dest.clone());
                n.availability_zone = Some(zone.clone());
                n.on_host = true;
                n.guest_gone = false;
                n.generation += 1;
                let (power, flavor) = (n.power, n.flavor.clone());
                if let Some(mm) = n.active_move_mut() {
                    mm.status = mig::POST_MIGRATING.into();
                    mm.other = Some(OtherGuest {
                        host: source,
                        wanted: false,
                        power,
                        flavor,
                        gone: false,
                        ready: false,
                        fault: None,
                    });
                }
                vec![(rid(n), Ev::Begin(event::POST_LIVE_MIGRATION))]
            })
            .await?;
            Ok(Step::Next)
        }
        mig::POST_MIGRATING => {
            if !other_gone(svc, &m.other).await? {
                return Ok(Step::Wait);
            }
            drop_allocations(svc, &m.uuid).await?;
            advance(
                svc,
                &s.id,
                at(Some(task::MIGRATING), m.id, Some(mig::POST_MIGRATING)),
                move |n| {
                    n.task_state = None;
                    if let Some(mm) = n.active_move_mut() {
                        mm.status = mig::COMPLETED.into();
                        mm.other = None;
                    }
                    vec![(rid(n), Ev::Done(None))]
                },
            )
            .await?;
            Ok(Step::Next)
        }
        _ => Ok(Step::Wait),
    }
}

/// Ends a live migration that did not happen (aborted, failed, or without a host): the
/// destination's guest removed, the migration's allocation back to the instance, the server
/// as it was on the source. Idempotent.
async fn live_rollback(
    svc: &ComputeService,
    s: Server,
    m: Move,
    status: &'static str,
    error: Option<String>,
) -> Result<Step> {
    let id = m.id;
    let from = m.status.clone();
    let guard = move |n: &Server| {
        n.task_state.as_deref() == Some(task::MIGRATING)
            && n.active_move()
                .is_some_and(|mm| mm.id == id && mm.status == from)
    };
    if m.other.as_ref().is_some_and(|o| o.wanted) {
        advance(svc, &s.id, guard, |n| {
            if let Some(o) = n.active_move_mut().and_then(|mm| mm.other.as_mut()) {
                o.wanted = false;
                o.gone = false;
            }
            Vec::new()
        })
        .await?;
        return Ok(Step::Next);
    }
    if !other_gone(svc, &m.other).await? {
        return Ok(Step::Wait);
    }
    move_allocations(svc, &s, &m.uuid, &s.id, "INSTANCE").await?;
    advance(svc, &s.id, guard, move |n| {
        n.task_state = None;
        let mut evs = Vec::new();
        if let Some(mm) = n.active_move_mut() {
            mm.status = status.into();
            mm.other = None;
            let r = mm.request_id.clone();
            if let Some(e) = &error {
                evs.push((r.clone(), Ev::End(event::LIVE_MIGRATE, Some(e.clone()))));
            }
            evs.push((r, Ev::Done(error.clone())));
            if let Some(a) = &mm.abort {
                evs.push((a.clone(), Ev::Done(None)));
            }
        }
        evs
    })
    .await?;
    Ok(Step::Next)
}

// ------------------------------------------------------------------ shelve

fn shelve_rid(n: &Server) -> String {
    n.shelve
        .as_ref()
        .map(|s| s.request_id.clone())
        .unwrap_or_default()
}

/// `shelve`: the snapshot is uploaded; once the guest is off (or its host down) the server
/// is SHELVED, and offloaded at once when `shelved_offload_time` is 0. Idempotent.
async fn shelve_done(svc: &ComputeService, s: Server) -> Result<Step> {
    if s.snapshot.is_some() {
        return Ok(Step::Wait);
    }
    let host_down = match &s.host {
        Some(h) => !host_is_up(svc, h).await?,
        None => true,
    };
    if s.power_state != power::SHUTDOWN && !host_down {
        return Ok(Step::Wait);
    }
    let offload_now = svc.config().shelved_offload_time == 0;
    advance(
        svc,
        &s.id,
        |n| n.task_state.as_deref() == Some(task::SHELVING),
        move |n| {
            n.vm_state = vm::SHELVED.into();
            if let Some(sh) = n.shelve.as_mut() {
                sh.shelved_at = Some(now_micros());
            }
            let r = shelve_rid(n);
            if offload_now {
                n.task_state = Some(task::SHELVING_OFFLOADING.into());
                vec![(r, Ev::End(event::SHELVE, None))]
            } else {
                n.task_state = None;
                vec![(r, Ev::Done(None))]
            }
        },
    )
    .await?;
    Ok(Step::Next)
}

/// A SHELVED server is offloaded once it has been shelved for `shelved_offload_time` seconds
/// (Nova's `_poll_shelved_instances`).
async fn offload_later(svc: &ComputeService, s: Server) -> Result<Step> {
    let after = svc.config().shelved_offload_time;
    let since = s.shelve.as_ref().and_then(|sh| sh.shelved_at);
    let due = after >= 0 && since.is_some_and(|t| now_micros() >= t + after * 1_000_000);
    if !due {
        return Ok(Step::Wait);
    }
    advance(
        svc,
        &s.id,
        |n| n.task_state.is_none() && n.vm_state == vm::SHELVED,
        |n| {
            n.task_state = Some(task::SHELVING_OFFLOADING.into());
            Vec::new()
        },
    )
    .await?;
    Ok(Step::Next)
}

/// Offload: the guest leaves its host, then the host's allocation and the host itself.
/// Idempotent.
async fn offload(svc: &ComputeService, s: Server) -> Result<Step> {
    let guard = |n: &Server| n.task_state.as_deref() == Some(task::SHELVING_OFFLOADING);
    if s.on_host {
        advance(svc, &s.id, guard, |n| {
            n.on_host = false;
            n.power = Power::Shutdown;
            n.guest_gone = false;
            n.generation += 1;
            Vec::new()
        })
        .await?;
        return Ok(Step::Next);
    }
    if let Some(h) = &s.host {
        if !s.guest_gone && host_is_up(svc, h).await? {
            return Ok(Step::Wait);
        }
    }
    drop_allocations(svc, &s.id).await?;
    advance(svc, &s.id, guard, |n| {
        n.host = None;
        n.node = None;
        n.vm_state = vm::SHELVED_OFFLOADED.into();
        n.task_state = None;
        n.power_state = power::NOSTATE;
        n.guest_gone = false;
        if let Some(sh) = n.shelve.as_mut() {
            sh.shelved_at.get_or_insert_with(now_micros);
        }
        vec![(shelve_rid(n), Ev::Done(None))]
    })
    .await?;
    Ok(Step::Next)
}

/// Unshelve of an offloaded server: scheduled (the zone and host the request named), then
/// built on its new host (`spawning`, finished by its agent's report as a build is).
/// Idempotent: a claim made before a crash is reused.
async fn unshelve(svc: &ComputeService, s: Server) -> Result<Step> {
    let guard = |n: &Server| n.task_state.as_deref() == Some(task::UNSHELVING);
    let Some(host) = s.host.clone() else {
        let forced = s.shelve.as_ref().and_then(|sh| sh.host.clone());
        match pick_host(svc, &s, None, forced).await? {
            Ok(h) => {
                let (zone, _) = host_facts(svc, &h).await?;
                advance(svc, &s.id, guard, move |n| {
                    n.host = Some(h.clone());
                    n.node = Some(h.clone());
                    n.availability_zone = Some(zone.clone());
                    let r = shelve_rid(n);
                    vec![
                        (r.clone(), Ev::End(event::SCHEDULE, None)),
                        (r, Ev::Begin(event::UNSHELVE)),
                    ]
                })
                .await?;
            }
            Err(why) => {
                // As Nova's conductor: the server stays offloaded, the action says why.
                let msg = format!("No valid host was found. {why}");
                advance(svc, &s.id, guard, move |n| {
                    n.task_state = None;
                    let r = shelve_rid(n);
                    vec![
                        (r.clone(), Ev::End(event::SCHEDULE, Some(msg.clone()))),
                        (r, Ev::Done(Some(msg.clone()))),
                    ]
                })
                .await?;
            }
        }
        return Ok(Step::Next);
    };
    bind_ports(svc, &s, &host).await;
    advance(svc, &s.id, guard, |n| {
        n.on_host = true;
        n.guest_gone = false;
        n.power = Power::Running;
        n.task_state = Some(task::SPAWNING.into());
        n.generation += 1;
        Vec::new()
    })
    .await?;
    Ok(Step::Next)
}

/// Deletes the image of a shelve once the server left the shelved states (Nova deletes it
/// on unshelve). An image already gone is no error; one the image service refuses to delete
/// is left (and logged).
async fn drop_shelved_image(svc: &ComputeService, s: Server) -> Result<Step> {
    let Some(sh) = s.shelve.clone() else {
        return Ok(Step::Wait);
    };
    if let Some(img) = &sh.image_id {
        delete_image(svc, &sh.image_owner, img).await;
    }
    advance(
        svc,
        &s.id,
        move |n| n.shelve.as_ref() == Some(&sh) && shelved_image_to_drop(n),
        |n| {
            n.shelve = None;
            Vec::new()
        },
    )
    .await?;
    Ok(Step::Next)
}

/// Deletes an image as its owner project's service user; one already gone is no error.
pub(crate) async fn delete_image(svc: &ComputeService, owner: &str, image: &str) {
    let ctx = service_context(owner);
    let path = format!("/images/{image}");
    match svc.glance(ctx, Method::DELETE, &path, None).await {
        Some(a) if a.ok() || a.status == StatusCode::NOT_FOUND => {}
        Some(a) => tracing::warn!(%image, error = %a.message(), "deleting a shelved image"),
        None => {}
    }
}

// ------------------------------------------------------------------ agent reports

/// The effect of an agent's report on a server that is moving or shelving: `Some` with the
/// server as it becomes (the report is then not looked at further), `None` when the report is
/// not about a move (the generic handling applies). Events are recorded in `tx`.
pub(crate) async fn on_report(
    tx: &mut Tx,
    old: &Server,
    r: &InstanceReport,
) -> Result<Option<Server>> {
    let mut n = old.clone();
    // From the second host of a move.
    if old.host.as_deref() != Some(r.host.as_str()) {
        let generation = old.generation;
        let Some(o) = n
            .active_move_mut()
            .and_then(|m| m.other.as_mut())
            .filter(|o| o.host == r.host)
        else {
            return Ok(None);
        };
        if r.deleted {
            if !o.wanted {
                o.gone = true;
            }
        } else if o.wanted && r.generation >= generation {
            match &r.fault {
                Some(f) => o.fault = Some(f.message.clone()),
                None if r.power_state.code() == power_code(o.power) => o.ready = true,
                None => {}
            }
        }
        return Ok(Some(n));
    }
    let ours = matches!(
        old.task_state.as_deref(),
        Some(
            task::RESIZE_PREP
                | task::RESIZE_MIGRATING
                | task::RESIZE_MIGRATED
                | task::RESIZE_FINISH
                | task::RESIZE_REVERTING
                | task::MIGRATING
                | task::SHELVING
                | task::SHELVING_IMAGE_PENDING_UPLOAD
                | task::SHELVING_IMAGE_UPLOADING
                | task::SHELVING_OFFLOADING
                | task::UNSHELVING
        )
    );
    if !ours || r.deleted || !old.on_host || r.generation < old.generation {
        return Ok(None);
    }
    if let Some(c) = &r.console {
        n.console = c.clone();
    }
    crate::volumes::apply_report(&mut n, r);
    let observed = r.power_state.code();
    n.power_state = observed;
    let wanted = power_code(n.power);
    let fault = r
        .fault
        .as_ref()
        .map(|f| (f.message.clone(), f.details.clone()));
    let mut evs: Events = Vec::new();
    let finishing_revert = n.active_move().is_some_and(|m| m.finishing);
    match n.task_state.as_deref() {
        Some(task::RESIZE_MIGRATING) if observed == power::SHUTDOWN => {
            n.task_state = Some(task::RESIZE_MIGRATED.into());
            evs.push((rid(&n), Ev::End(event::RESIZE_INSTANCE, None)));
        }
        Some(task::RESIZE_FINISH) | Some(task::RESIZE_REVERTING)
            if (fault.is_some() || observed == wanted)
                && (n.task_state.as_deref() == Some(task::RESIZE_FINISH) || finishing_revert) =>
        {
            let finishing = n.task_state.as_deref() == Some(task::RESIZE_FINISH);
            let ev = if finishing {
                event::FINISH_RESIZE
            } else {
                event::FINISH_REVERT_RESIZE
            };
            let r_id = rid(&n);
            n.task_state = None;
            match fault {
                Some((message, details)) => {
                    // As Nova: a move that fails on its destination leaves the server in ERROR.
                    n.vm_state = vm::ERROR.into();
                    n.fault = Some(Fault {
                        code: 500,
                        message: message.clone(),
                        details,
                        created: now_micros(),
                    });
                    if let Some(mm) = n.active_move_mut() {
                        mm.status = mig::ERROR.into();
                    }
                    evs.push((r_id.clone(), Ev::End(ev, Some(message.clone()))));
                    evs.push((r_id, Ev::Done(Some(message))));
                }
                None => {
                    if let Some(mm) = n.active_move_mut() {
                        mm.status = if finishing {
                            mig::FINISHED
                        } else {
                            mig::REVERTED
                        }
                        .into();
                    }
                    let old_vm = n
                        .migration
                        .as_ref()
                        .map(|m| m.old_vm_state.clone())
                        .unwrap_or_else(|| vm::ACTIVE.into());
                    n.vm_state = if finishing {
                        vm::RESIZED.into()
                    } else {
                        old_vm
                    };
                    n.progress = 100;
                    evs.push((r_id.clone(), Ev::End(ev, None)));
                    evs.push((r_id, Ev::Done(None)));
                }
            }
        }
        _ => {}
    }
    record(tx, &n, &evs).await?;
    Ok(Some(n))
}
