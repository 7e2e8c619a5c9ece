//! Server snapshots (`createImage`) after the API has answered.
//!
//! The API creates the image in the image service (`queued`, owned by the caller's project),
//! puts the server in task `image_snapshot` with a [`SnapshotJob`] and bumps its generation:
//! the host's agent finds the request in the server's `InstanceSpec::snapshot`, has its
//! hypervisor write the root disk to a file, and uploads it
//! (`PUT /agent/v1/instances/{uuid}/snapshot/{image}`, [`ComputeService::snapshot_upload`]).
//! The control plane moves the server to `image_uploading`, streams the data into the image's
//! `PUT /v2/images/{id}/file` in process (as the image's owner project), and finishes: the
//! request and the task are cleared and the `compute_snapshot_instance` event ends in
//! `Success`. A snapshot the agent could not take
//! (`PUT …/snapshot/{image}/fault`, [`ComputeService::snapshot_failed`]) or an upload the image
//! service refused ends the same way with `Error`, and the image is deleted, as Nova's
//! `delete_image_on_error` does.
//!
//! Every step checks that the server still asks for that image, so an upload repeated by a
//! restarted agent, or arriving after the server was deleted, changes nothing (409 to the
//! agent). Deleting a server during its snapshot deletes the image unless its upload already
//! made it active (Nova's compute manager does the same when the instance disappears during a
//! snapshot); that is done by the controller's delete step.
//!
//! The server's write comes before the image's deletion: a crash between the two leaves a
//! `queued` (or `killed`) image behind rather than a server stuck in a snapshot task.

use crate::controller::service_context;
use crate::server::{task, SnapshotJob};
use crate::server_db as db;
use crate::ComputeService;
use axum::body::Body;
use http::{Method, StatusCode};
use strata_agent_api::Fault;
use strata_api::inproc::{call, call_raw};
use strata_core::Result;

/// The instance action event of a snapshot.
pub const EVENT: &str = "compute_snapshot_instance";

/// Why a snapshot call from an agent was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// No such server.
    NotFound,
    /// The server does not (or no longer) ask for that image: done, failed, deleted, or
    /// another upload of it is in progress.
    NotPending(String),
    /// The upload failed (the snapshot is finished as failed, its image deleted).
    Failed(String),
}

type Answer = std::result::Result<(), SnapshotError>;

/// How much of a refused upload is read before the connection may be closed.
const REFUSED_BODY_DRAIN: u64 = 64 << 20;

/// Reads and drops up to `max` bytes of `body`.
async fn drain(body: Body, max: u64) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut n = 0u64;
    while n < max {
        match body.frame().await {
            Some(Ok(f)) => n += f.data_ref().map(|d| d.len() as u64).unwrap_or(0),
            _ => break,
        }
    }
}

impl ComputeService {
    /// The public URL of image `id` in the image service (`createImage`'s `Location`).
    pub fn image_url(&self, id: &str) -> String {
        format!("{}/image/v2/images/{id}", self.0.base_url)
    }

    /// The snapshot of server `uuid` for image `image_id`, uploaded by its host's agent.
    pub async fn snapshot_upload(&self, uuid: &str, image_id: &str, data: Body) -> Result<Answer> {
        let job = match self.snapshot_start_upload(uuid, image_id).await? {
            Ok(j) => j,
            Err(e) => {
                // Refused before reading the data: read (and drop) what the agent is still
                // sending, so that it gets this answer rather than a connection cut under its
                // upload.
                drain(data, REFUSED_BODY_DRAIN).await;
                return Ok(Err(e));
            }
        };
        let Some(image) = self.0.peers.image.clone() else {
            let msg = "no image service to upload the snapshot to".to_string();
            self.snapshot_end(uuid, &job, Some(msg.clone())).await?;
            return Ok(Err(SnapshotError::Failed(msg)));
        };
        let ctx = service_context(&job.owner_project);
        let path = format!("/v2/images/{image_id}/file");
        let a = call_raw(
            &image,
            ctx.clone(),
            Method::PUT,
            &path,
            "application/octet-stream",
            data,
        )
        .await;
        if a.ok() {
            self.snapshot_end(uuid, &job, None).await?;
            return Ok(Ok(()));
        }
        if a.status == StatusCode::CONFLICT {
            // Not `queued`: an upload that already made it active (repeated), or one still
            // in progress (a second, concurrent one: refused without changing anything).
            let status = call(
                &image,
                ctx,
                Method::GET,
                &format!("/v2/images/{image_id}"),
                None,
            )
            .await
            .body["status"]
                .as_str()
                .map(String::from);
            match status.as_deref() {
                Some("active") => {
                    self.snapshot_end(uuid, &job, None).await?;
                    return Ok(Ok(()));
                }
                Some("saving") => {
                    return Ok(Err(SnapshotError::NotPending(format!(
                        "Image {image_id} is being uploaded already."
                    ))))
                }
                _ => {}
            }
        }
        let msg = format!(
            "Uploading the snapshot to image {image_id} failed: {}",
            a.message()
        );
        tracing::warn!(server = %uuid, image = %image_id, error = %msg, "snapshot upload");
        self.snapshot_end(uuid, &job, Some(msg.clone())).await?;
        Ok(Err(SnapshotError::Failed(msg)))
    }

    /// The host's agent could not take the snapshot of server `uuid` for image `image_id`.
    pub async fn snapshot_failed(
        &self,
        uuid: &str,
        image_id: &str,
        fault: &Fault,
    ) -> Result<Answer> {
        let Some(s) = db::get(self.store(), uuid).await? else {
            return Ok(Err(SnapshotError::NotFound));
        };
        let Some(job) = s.snapshot.clone().filter(|j| j.image_id == image_id) else {
            return Ok(Err(not_pending(uuid, image_id)));
        };
        if s.deleted {
            return Ok(Err(not_pending(uuid, image_id)));
        }
        tracing::warn!(server = %uuid, image = %image_id, error = %fault.message,
            details = %fault.details, "snapshot failed on the host");
        self.snapshot_end(uuid, &job, Some(fault.message.clone()))
            .await?;
        Ok(Ok(()))
    }

    /// Moves the server to `image_uploading` if it still asks for `image_id`; its job.
    async fn snapshot_start_upload(
        &self,
        uuid: &str,
        image_id: &str,
    ) -> Result<std::result::Result<SnapshotJob, SnapshotError>> {
        let (uuid, image_id) = (uuid.to_string(), image_id.to_string());
        self.store()
            .write_or_refuse(move |tx| {
                let (uuid, image_id) = (uuid.clone(), image_id.clone());
                Box::pin(async move {
                    let Some(old) = db::get_tx(tx, &uuid).await? else {
                        return Ok(Err(SnapshotError::NotFound));
                    };
                    let shelving = task::is_shelve_snapshot(old.task_state.as_deref());
                    let job = match &old.snapshot {
                        Some(j)
                            if j.image_id == image_id
                                && !old.deleted
                                && (shelving || task::is_snapshot(old.task_state.as_deref())) =>
                        {
                            j.clone()
                        }
                        _ => return Ok(Err(not_pending(&uuid, &image_id))),
                    };
                    let uploading = if shelving {
                        task::SHELVING_IMAGE_UPLOADING
                    } else {
                        task::IMAGE_UPLOADING
                    };
                    if old.task_state.as_deref() != Some(uploading) {
                        let mut n = old.clone();
                        n.task_state = Some(uploading.into());
                        db::save(tx, &old, &mut n).await?;
                    }
                    Ok(Ok(job))
                })
            })
            .await
    }

    /// Finishes the snapshot `job` of server `uuid` (if the server still has it): the request
    /// and the snapshot task cleared, the event finished (`error`: failed). A failed one's
    /// image is then deleted unless it is active.
    async fn snapshot_end(
        &self,
        uuid: &str,
        job: &SnapshotJob,
        error: Option<String>,
    ) -> Result<()> {
        let (id, image_id, err) = (uuid.to_string(), job.image_id.clone(), error.clone());
        self.store()
            .write(move |tx| {
                let (id, image_id, err) = (id.clone(), image_id.clone(), err.clone());
                Box::pin(async move {
                    let Some(old) = db::get_tx(tx, &id).await? else {
                        return Ok(());
                    };
                    if old.deleted
                        || old.snapshot.as_ref().map(|j| j.image_id.as_str())
                            != Some(image_id.as_str())
                    {
                        return Ok(());
                    }
                    let mut n = old.clone();
                    n.snapshot = None;
                    if task::is_shelve_snapshot(n.task_state.as_deref()) {
                        // A shelve's snapshot: done, the controller shelves the server; failed,
                        // the shelve ends and the guest is put back as it was.
                        match &err {
                            None => n.task_state = Some(task::SHELVING.into()),
                            Some(e) => {
                                n.task_state = None;
                                if let Some(sh) = n.shelve.take() {
                                    n.power = sh.old_power;
                                    let ev = crate::moves::event::SHELVE;
                                    db::action_event_end(tx, &id, &sh.request_id, ev, Some(e))
                                        .await?;
                                    db::action_end(tx, &id, &sh.request_id, Some(e)).await?;
                                }
                            }
                        }
                    } else {
                        if task::is_snapshot(n.task_state.as_deref()) {
                            n.task_state = None;
                        }
                        db::action_finish_event(tx, &id, EVENT, err.as_deref()).await?;
                    }
                    // What the agent is given changed (no snapshot to take any more).
                    n.generation += 1;
                    db::save(tx, &old, &mut n).await
                })
            })
            .await?;
        if error.is_some() {
            drop_image(self, job).await;
        }
        Ok(())
    }
}

fn not_pending(uuid: &str, image_id: &str) -> SnapshotError {
    SnapshotError::NotPending(format!(
        "Instance {uuid} has no snapshot pending for image {image_id}."
    ))
}

/// Deletes the image of a snapshot that did not complete, unless its upload made it active;
/// one already gone is no error.
pub async fn drop_image(svc: &ComputeService, job: &SnapshotJob) {
    let ctx = service_context(&job.owner_project);
    let path = format!("/images/{}", job.image_id);
    let Some(a) = svc.glance(ctx.clone(), Method::GET, &path, None).await else {
        return;
    };
    if a.status == StatusCode::NOT_FOUND || a.body["status"].as_str() == Some("active") {
        return;
    }
    match svc.glance(ctx, Method::DELETE, &path, None).await {
        Some(d) if d.ok() || d.status == StatusCode::NOT_FOUND => {}
        Some(d) => tracing::warn!(image = %job.image_id, error = %d.message(),
            "deleting the image of a failed snapshot"),
        None => {}
    }
}
