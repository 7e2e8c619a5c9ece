//! Deferred delete (Nova's `reclaim_instance_interval` and the `os-deferred-delete` actions).
//!
//! With `reclaim_instance_interval` above 0, `DELETE /servers/{id}` of a server that was
//! launched and has no task soft-deletes it: SOFT_DELETED at once, its guest powered off by
//! its host's agent, its resources kept (it still counts against quota). `restore` powers it
//! back on (SOFT_DELETED → ACTIVE when the agent reports it running); `forceDelete` deletes it
//! at once, as it deletes any server without a task; the controller's periodic sweep reclaims
//! (deletes) soft-deleted servers older than the interval ([`reclaim`]). With the interval 0
//! (the default) deletes are immediate, so there is never anything to restore: `restore`
//! answers 409 as Nova's state check does, and `forceDelete` is a plain delete, as in Nova.

use super::servers::{find, invalid_state, mutate_with, start_delete};
use crate::error::{NovaError, NovaResult};
use crate::extract::Auth;
use crate::server::{task, vm, Server};
use crate::ComputeService;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use strata_agent_api::Power;
use strata_core::time::now_micros;
use strata_store::{from_sqlx, sqlx, Row};

/// Nova's `PROJECT_MEMBER_OR_ADMIN`.
fn require_member(auth: &Auth, s: &Server, rule: &str) -> NovaResult<()> {
    let member = auth.0.has_role("member") || auth.0.has_role("manager");
    if auth.admin() || (auth.project() == s.project_id && member) {
        Ok(())
    } else {
        Err(NovaError::policy(rule))
    }
}

fn locked(n: &Server, admin: bool) -> NovaResult<()> {
    if n.locked && !admin {
        return Err(NovaError::conflict(format!("Instance {} is locked", n.id)));
    }
    Ok(())
}

/// The soft delete `DELETE /servers/{id}` does when a reclaim interval is set; `false` when
/// the server is to be deleted at once (no interval, never launched, a task running, already
/// soft-deleted), as Nova falls back to a hard delete.
pub async fn soft_delete(
    svc: &ComputeService,
    auth: &Auth,
    s: &Server,
    request_id: &str,
) -> NovaResult<bool> {
    if svc.config().reclaim_instance_interval <= 0
        || s.launched_at.is_none()
        || s.task_state.is_some()
        || s.vm_state == vm::SOFT_DELETED
    {
        return Ok(false);
    }
    let admin = auth.admin();
    let record = Some((
        request_id.to_string(),
        "delete".to_string(),
        auth.user().to_string(),
        "compute_soft_delete_instance".to_string(),
    ));
    mutate_with(svc, &s.id, record, move |n| {
        locked(n, admin)?;
        // Something started meanwhile: refused as Nova's state check refuses it.
        if n.task_state.is_some() {
            return Err(invalid_state(n, "task_state", "soft_delete"));
        }
        if n.vm_state == vm::SOFT_DELETED {
            return Err(invalid_state(n, "vm_state", "soft_delete"));
        }
        n.vm_state = vm::SOFT_DELETED.into();
        n.power = Power::Shutdown;
        n.deleted_at = Some(now_micros());
        n.generation += 1;
        Ok(())
    })
    .await?;
    finish_action(svc, &s.id).await;
    Ok(true)
}

/// Finishes the server's newest action (one done in a single write).
async fn finish_action(svc: &ComputeService, id: &str) {
    let id = id.to_string();
    let r = svc
        .store()
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move { crate::server_db::action_finish(tx, &id, None).await })
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "finishing a soft delete action");
    }
}

/// `restore`: a SOFT_DELETED server powered back on (202); 409 in any other state.
pub async fn server_restore(
    svc: &ComputeService,
    auth: &Auth,
    request_id: &str,
    id: &str,
) -> NovaResult<Response> {
    let s = find(svc, auth, id).await?;
    require_member(auth, &s, "os_compute_api:os-deferred-delete:restore")?;
    locked(&s, auth.admin())?;
    if s.vm_state != vm::SOFT_DELETED {
        return Err(invalid_state(&s, "vm_state", "restore"));
    }
    let admin = auth.admin();
    let record = Some((
        request_id.to_string(),
        "restore".to_string(),
        auth.user().to_string(),
        "compute_restore_instance".to_string(),
    ));
    mutate_with(svc, id, record, move |n| {
        locked(n, admin)?;
        if n.vm_state != vm::SOFT_DELETED {
            return Err(invalid_state(n, "vm_state", "restore"));
        }
        if n.task_state.is_some() {
            return Err(invalid_state(n, "task_state", "restore"));
        }
        n.deleted_at = None;
        if n.host.is_some() && n.on_host {
            // The host's agent powers the guest on; its report makes the server ACTIVE.
            n.task_state = Some(task::POWERING_ON.into());
            n.power = Power::Running;
            n.generation += 1;
        } else {
            n.vm_state = vm::ACTIVE.into();
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `forceDelete`: the server deleted at once, whatever its state, unless a task runs (202).
pub async fn server_force_delete(
    svc: &ComputeService,
    auth: &Auth,
    request_id: &str,
    id: &str,
) -> NovaResult<Response> {
    let s = find(svc, auth, id).await?;
    require_member(auth, &s, "os_compute_api:os-deferred-delete:force")?;
    locked(&s, auth.admin())?;
    if s.task_state.is_some() {
        return Err(invalid_state(&s, "task_state", "force_delete"));
    }
    start_delete(svc, auth, id, request_id.to_string()).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Deletes the soft-deleted servers older than the reclaim interval (Nova's
/// `_reclaim_queued_deletes`). Run by the controller's periodic sweep; idempotent (a server
/// already being deleted is left alone).
pub async fn reclaim(svc: &ComputeService) -> strata_core::Result<()> {
    let interval = svc.config().reclaim_instance_interval;
    if interval <= 0 {
        return Ok(());
    }
    let before = now_micros() - interval.saturating_mul(1_000_000);
    let rows = sqlx::query(
        "SELECT id FROM compute_server WHERE vm_state = $1 AND deleted = 0 \
         AND task_state IS NULL AND deleted_at IS NOT NULL AND deleted_at < $2",
    )
    .bind(vm::SOFT_DELETED)
    .bind(before)
    .fetch_all(svc.store().pool())
    .await
    .map_err(from_sqlx)?;
    for r in &rows {
        let id: String = r.try_get("id").map_err(from_sqlx)?;
        crate::controller::update(svc, &id, None, |n| {
            if n.vm_state == vm::SOFT_DELETED {
                n.task_state = Some(task::DELETING.into());
                n.on_host = false;
                n.generation += 1;
            }
        })
        .await?;
    }
    Ok(())
}
