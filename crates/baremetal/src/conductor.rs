//! The conductor: the reconciler that advances nodes' work, and the power-state sync.
//!
//! **Work.** A handler that starts something (`manage`, a power action) writes the node's new
//! state and a [`Work`] record due now, and answers 202. The conductor — one per deployment,
//! elected with a store lease — wakes on every commit (and on its own timer for work due
//! later), finds due work with one indexed query (`work_due <= now`), and hands node ids to a
//! bounded pool of workers ([`WorkQueue`]). A worker runs one step for the node and ends it with
//! one conditional write: done (the work record is removed, the lock released), failed for good
//! (the state machine's `fail` edge, `last_error`), or failed for a reason that may pass (the
//! failure count and reason stored on the row, due again after a backoff). There is no retry
//! loop inside a step: the next activation is the retry. Steps:
//!
//! - `verify` (`verifying`): validate `driver_info`, reach and authenticate to the BMC, read the
//!   power state → `manageable` with `power_state` set, or `enroll` with `last_error`.
//!   Idempotent: it only reads.
//! - `power`: ask the BMC for the action (once accepted, the row says so before anything else
//!   happens), then read the power until it settles at the target or the timeout passes.
//!   Reading is idempotent; asking twice for `power on`/`power off` is too, for a reboot it is
//!   not — a crash between the BMC accepting a reboot and the row recording it reboots again on
//!   resume, which is the price of not losing the request.
//!
//! A row left in `verifying` or with a power action by a killed process still has its work
//! record, so the next conductor picks it up: nothing is held in memory alone.
//!
//! **Power-state sync.** Every `sync_power_state_interval` the leader reads every eligible
//! node's power (not in maintenance, not in `enroll` and the other excluded states, no action
//! in flight, not locked) through a few workers (`sync_power_state_workers`) pulling from one
//! list, and writes only the nodes whose power changed. `power_state_sync_max_retries`
//! consecutive failures put a node into maintenance with the fault `power failure`; a later
//! successful read takes it out again (Ironic's power failure recovery).

use crate::db;
use crate::drivers::{BmcError, PowerAction};
use crate::error::{IronicError, IronicResult};
use crate::model::{Node, Work, WorkKind};
use crate::states::{self, power};
use crate::BaremetalService;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_core::time::now_micros;
use strata_core::workqueue::WorkQueue;
use strata_core::Result;
use tokio::sync::watch;

/// The lease the conductor holds.
const LEASE: &str = "baremetal-conductor";
const LEASE_TTL_MS: i64 = 15_000;
/// Nodes worked on at once.
const PARALLEL: usize = 32;
/// How often a settling power action is read again.
const POWER_POLL: Duration = Duration::from_millis(250);
/// Longest sleep between looks for due work when nothing wakes the loop.
const IDLE: Duration = Duration::from_secs(2);

/// The fault the sync sets on a node whose BMC stopped answering.
pub const POWER_FAILURE: &str = "power failure";

/// The delay before retry `failures` (1, 2, …): the configured backoff, doubled each time,
/// at most a minute.
fn backoff(svc: &BaremetalService, failures: u32) -> i64 {
    let base = svc.config().power_retry_backoff_ms.max(1) as i64;
    let ms = base.saturating_mul(1i64 << failures.saturating_sub(1).min(16));
    ms.min(60_000) * 1000
}

/// Runs `f` on node `uuid` inside a write and saves it, unless `f` refuses (its error comes
/// back and nothing is written); 404 when the node is gone.
pub async fn update_node<F>(svc: &BaremetalService, uuid: &str, f: F) -> IronicResult<Node>
where
    F: Fn(&mut Node) -> IronicResult<()> + Send + Sync + Clone + 'static,
{
    let uuid = uuid.to_string();
    let out = svc
        .store()
        .write_or_refuse(move |tx| {
            let (uuid, f) = (uuid.clone(), f.clone());
            Box::pin(async move {
                let Some(mut n) = db::get_node_tx(tx, &uuid).await? else {
                    return Ok(Err(IronicError::node_not_found(&uuid)));
                };
                if let Err(e) = f(&mut n) {
                    return Ok(Err(e));
                }
                db::save_node(tx, &mut n).await?;
                Ok(Ok(n))
            })
        })
        .await?;
    out
}

/// What a step's conditional write found.
enum Outcome {
    Written,
    /// The node moved on (deleted, or its work replaced) meanwhile: nothing written.
    Stale,
}

/// Ends or reschedules the work `expected` of node `uuid` with `f`, unless the node's work is
/// no longer `expected` (another step or a user changed it meanwhile).
async fn settle<F>(svc: &BaremetalService, uuid: &str, expected: &Work, f: F) -> Result<Outcome>
where
    F: Fn(&mut Node) + Send + Sync + Clone + 'static,
{
    let expected = expected.clone();
    let r = update_node(svc, uuid, move |n| {
        if n.work.as_ref() != Some(&expected) {
            return Err(IronicError::conflict("stale"));
        }
        f(n);
        Ok(())
    })
    .await;
    match r {
        Ok(_) => Ok(Outcome::Written),
        Err(e)
            if e.status == http::StatusCode::CONFLICT
                || e.status == http::StatusCode::NOT_FOUND =>
        {
            Ok(Outcome::Stale)
        }
        Err(e) => Err(strata_core::Error::internal(e.message)),
    }
}

/// Releases the node's lock and forgets its work.
fn release(n: &mut Node) {
    n.work = None;
    n.reservation = None;
    n.lock_until = None;
}

impl BaremetalService {
    /// Runs the conductor until `stop` turns true.
    pub fn spawn_conductor(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let svc = self.clone();
        tokio::spawn(async move { run(svc, stop).await })
    }

    /// Runs node `uuid`'s due step once, if it has one (tests step with it; the loop does the
    /// same for every due node).
    pub async fn drive(&self, uuid: &str) -> Result<()> {
        let Some(n) = db::get_node(self.store(), uuid).await? else {
            return Ok(());
        };
        let Some(work) = n.work.clone() else {
            return Ok(());
        };
        if work.due > now_micros() {
            return Ok(());
        }
        match &work.kind {
            WorkKind::Verify => verify_step(self, n, work).await,
            WorkKind::Power { .. } => power_step(self, n, work).await,
        }
    }

    /// One pass of the power-state sync over every eligible node (the loop runs it every
    /// interval; tests call it).
    pub async fn sync_power_states(&self) -> Result<()> {
        sync_pass(self).await
    }
}

async fn run(svc: BaremetalService, mut stop: watch::Receiver<bool>) {
    let holder = uuid::Uuid::new_v4().to_string();
    let job_svc = svc.clone();
    let queue = WorkQueue::new(
        PARALLEL,
        Arc::new(move |id: String| {
            let svc = job_svc.clone();
            Box::pin(async move {
                if let Err(e) = svc.drive(&id).await {
                    tracing::warn!(error = %e, node = %id, "baremetal conductor");
                }
            })
        }),
    );
    let syncing = Arc::new(AtomicBool::new(false));
    let interval = svc.config().sync_interval();
    let mut last_sync = tokio::time::Instant::now();
    let mut last_lease = tokio::time::Instant::now() - Duration::from_secs(60);
    let mut leader = false;
    let mut commits = svc.store().subscribe();
    let mut after = svc.store().current_revision().await.unwrap_or(0);
    // Whether to look for due work on this pass: at start, after a change of a node, a
    // handler's nudge, or the timer (work due later, another replica's commit missed).
    let mut look = true;
    let mut wait = IDLE;
    loop {
        if last_lease.elapsed() >= Duration::from_millis(LEASE_TTL_MS as u64 / 3) {
            let was = leader;
            leader = svc
                .store()
                .lease_acquire(LEASE, &holder, LEASE_TTL_MS)
                .await
                .unwrap_or(false);
            last_lease = tokio::time::Instant::now();
            if leader && !was {
                look = true;
                tracing::info!(conductor = %svc.hostname(), "baremetal conductor leading");
                if let Err(e) = clear_stale_locks(&svc).await {
                    tracing::warn!(error = %e, "baremetal conductor: stale locks");
                }
            }
        }
        if leader && look {
            wait = IDLE;
            let now = now_micros();
            match db::due_nodes(svc.store(), now, 1000).await {
                Ok(ids) => {
                    for id in ids {
                        queue.push(id);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "baremetal conductor: due work"),
            }
            if let Ok(Some(next)) = db::next_due(svc.store()).await {
                let until = Duration::from_micros((next - now).max(1) as u64);
                wait = wait.min(until);
            }
        }
        if leader
            && interval > 0
            && last_sync.elapsed() >= Duration::from_secs(interval)
            && !syncing.swap(true, Ordering::SeqCst)
        {
            last_sync = tokio::time::Instant::now();
            let (svc, flag) = (svc.clone(), syncing.clone());
            tokio::spawn(async move {
                if let Err(e) = sync_pass(&svc).await {
                    tracing::warn!(error = %e, "baremetal power-state sync");
                }
                flag.store(false, Ordering::SeqCst);
            });
        }
        let started = tokio::time::Instant::now();
        look = tokio::select! {
            _ = stop.changed() => break,
            _ = commits.changed() => {
                // Other services commit too: look only when a node changed.
                match svc.store().newer_of_kind(after, "baremetal.").await {
                    Ok((rev, ours)) => {
                        after = rev;
                        ours
                    }
                    Err(_) => true,
                }
            }
            _ = svc.kicked().notified() => true,
            _ = tokio::time::sleep(wait) => true,
        };
        if !look {
            // Keep the timer for work due later running down across the wake-ups.
            wait = wait.saturating_sub(started.elapsed());
        }
    }
    let _ = svc.store().lease_release(LEASE, &holder).await;
}

/// Releases locks that a dead process took for a synchronous call and never released.
async fn clear_stale_locks(svc: &BaremetalService) -> Result<()> {
    for uuid in db::reserved_without_work(svc.store()).await? {
        let now = now_micros();
        let _ = update_node(svc, &uuid, move |n| {
            if n.work.is_none() && n.lock_until.unwrap_or(0) <= now {
                release(n);
                Ok(())
            } else {
                Err(IronicError::conflict("held"))
            }
        })
        .await;
    }
    Ok(())
}

/// `verifying`: can the conductor reach, authenticate to, and read the power of the BMC?
async fn verify_step(svc: &BaremetalService, n: Node, work: Work) -> Result<()> {
    if n.provision_state != states::VERIFYING {
        settle(svc, &n.uuid, &work, release).await?;
        return Ok(());
    }
    let uuid = n.uuid.clone();
    let driver = match svc
        .drivers()
        .for_node(&n)
        .and_then(|d| d.validate().map(|_| d))
    {
        Ok(d) => d,
        Err(e) => {
            let msg =
                format!("Failed to validate power driver interface for node {uuid}. Error: {e}");
            return verify_failed(svc, &uuid, &work, msg).await;
        }
    };
    let read = tokio::time::timeout(request_budget(svc), driver.power_state()).await;
    let read = read.unwrap_or_else(|_| {
        Err(BmcError::Unreachable(
            "the BMC did not answer in time".into(),
        ))
    });
    match read {
        Ok(p) => {
            let state = p.ironic().to_string();
            settle(svc, &uuid, &work, move |n| {
                n.provision_state = states::MANAGEABLE.into();
                n.target_provision_state = None;
                n.provision_updated_at = Some(now_micros());
                n.power_state = Some(state.clone());
                n.last_error = None;
                release(n);
            })
            .await?;
            tracing::info!(node = %uuid, "verified: manageable");
            Ok(())
        }
        Err(e) if e.retryable() && work.failures + 1 < svc.config().power_retries.max(1) => {
            retry_later(svc, &uuid, &work, e.to_string()).await
        }
        Err(e) => {
            let tries = work.failures + 1;
            let msg = format!(
                "Failed to get power state for node {uuid}. Error: {e}{}",
                if tries > 1 {
                    format!(" (after {tries} attempts)")
                } else {
                    String::new()
                }
            );
            verify_failed(svc, &uuid, &work, msg).await
        }
    }
}

/// `verifying` → `enroll` with `last_error` (the machine's `fail` edge).
async fn verify_failed(svc: &BaremetalService, uuid: &str, work: &Work, msg: String) -> Result<()> {
    tracing::warn!(node = %uuid, error = %msg, "verification failed");
    settle(svc, uuid, work, move |n| {
        n.provision_state = states::next(states::VERIFYING, "fail")
            .unwrap_or(states::ENROLL)
            .into();
        n.target_provision_state = None;
        n.provision_updated_at = Some(now_micros());
        n.last_error = Some(msg.clone());
        release(n);
    })
    .await?;
    Ok(())
}

/// Records a failure that may pass and when to try again.
async fn retry_later(svc: &BaremetalService, uuid: &str, work: &Work, why: String) -> Result<()> {
    let failures = work.failures + 1;
    let due = now_micros() + backoff(svc, failures);
    tracing::info!(node = %uuid, failures, reason = %why, "BMC operation failed; will retry");
    settle(svc, uuid, work, move |n| {
        if let Some(w) = n.work.as_mut() {
            w.failures = failures;
            w.last_failure = Some(why.clone());
            w.due = due;
        }
    })
    .await?;
    Ok(())
}

/// How long one BMC call may take before the step gives it up.
fn request_budget(svc: &BaremetalService) -> Duration {
    Duration::from_secs(svc.config().bmc_request_timeout.max(1) * 3)
}

/// A power action: ask the BMC, then wait for the power to settle.
async fn power_step(svc: &BaremetalService, n: Node, work: Work) -> Result<()> {
    let WorkKind::Power {
        target,
        timeout_s,
        deadline,
    } = work.kind.clone()
    else {
        return Ok(());
    };
    let uuid = n.uuid.clone();
    let want = power::settles_at(&target);
    let fail_msg = |e: &str| format!("Failed to change power state to '{want}' by '{target}': {e}");
    let driver = match svc.drivers().for_node(&n) {
        Ok(d) => d,
        Err(e) => return power_failed(svc, &uuid, &work, fail_msg(&e.to_string())).await,
    };
    let retries = svc.config().power_retries.max(1);
    match deadline {
        None => {
            let Some(action) = PowerAction::from_target(&target) else {
                return power_failed(svc, &uuid, &work, fail_msg("unknown power target")).await;
            };
            let r = tokio::time::timeout(request_budget(svc), driver.set_power(action))
                .await
                .unwrap_or_else(|_| {
                    Err(BmcError::Unreachable(
                        "the BMC did not answer in time".into(),
                    ))
                });
            match r {
                Ok(()) => {
                    let dl = now_micros() + timeout_s as i64 * 1_000_000;
                    settle(svc, &uuid, &work, move |n| {
                        if let Some(w) = n.work.as_mut() {
                            if let WorkKind::Power { deadline, .. } = &mut w.kind {
                                *deadline = Some(dl);
                            }
                            w.failures = 0;
                            w.due = now_micros();
                        }
                    })
                    .await?;
                    Ok(())
                }
                Err(e) if e.retryable() && work.failures + 1 < retries => {
                    retry_later(svc, &uuid, &work, e.to_string()).await
                }
                Err(e) => power_failed(svc, &uuid, &work, fail_msg(&e.to_string())).await,
            }
        }
        Some(dl) => {
            let r = tokio::time::timeout(request_budget(svc), driver.power_state())
                .await
                .unwrap_or_else(|_| {
                    Err(BmcError::Unreachable(
                        "the BMC did not answer in time".into(),
                    ))
                });
            match r {
                Ok(p) if p.ironic() == want => {
                    settle(svc, &uuid, &work, move |n| {
                        n.power_state = Some(want.to_string());
                        n.target_power_state = None;
                        n.last_error = None;
                        release(n);
                    })
                    .await?;
                    tracing::info!(node = %uuid, power = want, "power action done");
                    Ok(())
                }
                Ok(p) if now_micros() >= dl => {
                    let msg = fail_msg(&format!(
                        "timed out after {timeout_s} seconds waiting for the power to reach \
                         '{want}' (the BMC still reports '{}')",
                        p.ironic()
                    ));
                    power_failed(svc, &uuid, &work, msg).await
                }
                Ok(_) => {
                    let due = now_micros() + POWER_POLL.as_micros() as i64;
                    settle(svc, &uuid, &work, move |n| {
                        if let Some(w) = n.work.as_mut() {
                            w.due = due;
                        }
                    })
                    .await?;
                    Ok(())
                }
                Err(e) if e.retryable() && work.failures + 1 < retries => {
                    retry_later(svc, &uuid, &work, e.to_string()).await
                }
                Err(e) => power_failed(svc, &uuid, &work, fail_msg(&e.to_string())).await,
            }
        }
    }
}

/// A power action failed for good: `last_error`, the power state as it was.
async fn power_failed(svc: &BaremetalService, uuid: &str, work: &Work, msg: String) -> Result<()> {
    tracing::warn!(node = %uuid, error = %msg, "power action failed");
    settle(svc, uuid, work, move |n| {
        n.target_power_state = None;
        n.last_error = Some(msg.clone());
        release(n);
    })
    .await?;
    Ok(())
}

/// Whether the sync reads this node now.
fn sync_eligible(n: &Node, now: i64) -> bool {
    if n.maintenance {
        // Only to take it out of maintenance once its BMC answers again.
        return n.fault.as_deref() == Some(POWER_FAILURE) && !n.locked(now);
    }
    !states::SYNC_EXCLUDED.contains(&n.provision_state.as_str())
        && n.target_power_state.is_none()
        && !n.locked(now)
}

async fn sync_pass(svc: &BaremetalService) -> Result<()> {
    let now = now_micros();
    let nodes: Arc<Vec<Node>> = Arc::new(
        db::all_nodes(svc.store())
            .await?
            .into_iter()
            .filter(|n| sync_eligible(n, now))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let workers = svc
        .config()
        .sync_power_state_workers
        .max(1)
        .min(nodes.len().max(1));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (svc, nodes, next) = (svc.clone(), nodes.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(n) = nodes.get(i) else { return };
                if let Err(e) = sync_one(&svc, n).await {
                    tracing::warn!(error = %e, node = %n.uuid, "power-state sync");
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(())
}

async fn sync_one(svc: &BaremetalService, n: &Node) -> Result<()> {
    let read = match svc.drivers().for_node(n) {
        Ok(d) => tokio::time::timeout(request_budget(svc), d.power_state())
            .await
            .unwrap_or_else(|_| {
                Err(BmcError::Unreachable(
                    "the BMC did not answer in time".into(),
                ))
            }),
        Err(e) => Err(e),
    };
    let uuid = n.uuid.clone();
    let seen = n.power_state.clone();
    match read {
        Ok(p) => {
            svc.sync_failures()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uuid);
            let now_state = p.ironic().to_string();
            let recovering = n.maintenance;
            if !recovering && seen.as_deref() == Some(now_state.as_str()) {
                return Ok(());
            }
            let _ = update_node(svc, &uuid, move |n| {
                // Only if nothing else touched the node's power meanwhile.
                if n.power_state != seen || n.target_power_state.is_some() || n.work.is_some() {
                    return Err(IronicError::conflict("moved on"));
                }
                if recovering {
                    if n.fault.as_deref() != Some(POWER_FAILURE) {
                        return Err(IronicError::conflict("moved on"));
                    }
                    n.maintenance = false;
                    n.maintenance_reason = None;
                    n.fault = None;
                }
                n.power_state = Some(now_state.clone());
                Ok(())
            })
            .await;
            Ok(())
        }
        Err(e) => {
            if n.maintenance {
                return Ok(());
            }
            let count = {
                let mut f = svc
                    .sync_failures()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let c = f.entry(uuid.clone()).or_insert(0);
                *c += 1;
                *c
            };
            let max = svc.config().power_state_sync_max_retries.max(1);
            if count < max {
                return Ok(());
            }
            svc.sync_failures()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uuid);
            let reason = format!(
                "During sync_power_state, max retries exceeded for node {uuid}, node state {} \
                 does not match expected state 'None'. Updating DB state to 'None' Switching \
                 node to maintenance mode. Error: {e}",
                seen.as_deref()
                    .map(|s| format!("'{s}'"))
                    .unwrap_or_else(|| "None".into())
            );
            tracing::warn!(node = %uuid, error = %e, "power failure: maintenance");
            let _ = update_node(svc, &uuid, move |n| {
                if n.maintenance || n.work.is_some() {
                    return Err(IronicError::conflict("moved on"));
                }
                n.power_state = None;
                n.maintenance = true;
                n.fault = Some(POWER_FAILURE.into());
                n.maintenance_reason = Some(reason.clone());
                n.last_error = Some(reason.clone());
                Ok(())
            })
            .await;
            Ok(())
        }
    }
}

/// Work due now, for a handler starting it.
pub fn work_now(kind: WorkKind) -> Work {
    Work {
        kind,
        failures: 0,
        last_failure: None,
        due: now_micros(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligibility() {
        let mut n = Node {
            provision_state: states::MANAGEABLE.into(),
            ..Default::default()
        };
        assert!(sync_eligible(&n, 0));
        n.provision_state = states::ENROLL.into();
        assert!(!sync_eligible(&n, 0));
        n.provision_state = states::AVAILABLE.into();
        n.target_power_state = Some(power::ON.into());
        assert!(!sync_eligible(&n, 0));
        n.target_power_state = None;
        n.maintenance = true;
        assert!(!sync_eligible(&n, 0));
        n.fault = Some(POWER_FAILURE.into());
        assert!(sync_eligible(&n, 0));
    }
}
