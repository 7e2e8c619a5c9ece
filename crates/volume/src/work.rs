//! The asynchronous steps behind the API (creating volume data, snapshots, clones, uploads to
//! images, reclaiming space) and crash recovery. Each step persists the status it ends in; a
//! step cut off by a crash leaves a transitional status that [`recover`] resolves.

use crate::backend::BlockBackend;
use crate::db;
use crate::error::{CinderError, CinderResult};
use crate::model::{Snapshot, Volume, VolumeType, DEFAULT_TYPE_NAME};
use crate::VolumeService;
use serde_json::Map;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use strata_core::time::now_micros;
use strata_core::{Error, Result};
use strata_store::Tx;

/// Where a new volume's data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Blank,
    Image { id: String, disk_format: String },
    Snapshot { id: String },
    Volume { id: String },
}

/// Runs `f` on the volume `id` inside a write and saves it, unless `f` refuses (its error is
/// returned and nothing is written). 404 when the volume is gone.
pub async fn update_volume<F>(svc: &VolumeService, id: &str, f: F) -> CinderResult<Volume>
where
    F: Fn(&mut Volume) -> CinderResult<()> + Send + Sync + Clone + 'static,
{
    let id = id.to_string();
    write(svc, move |tx| {
        let (id, f) = (id.clone(), f.clone());
        Box::pin(async move {
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            if let Err(e) = f(&mut v) {
                return Ok(Err(e));
            }
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(v))
        })
    })
    .await
}

/// The same for snapshots.
pub async fn update_snapshot<F>(svc: &VolumeService, id: &str, f: F) -> CinderResult<Snapshot>
where
    F: Fn(&mut Snapshot) -> CinderResult<()> + Send + Sync + Clone + 'static,
{
    let id = id.to_string();
    write(svc, move |tx| {
        let (id, f) = (id.clone(), f.clone());
        Box::pin(async move {
            let Some(mut s) = db::get_snapshot_tx(tx, &id).await? else {
                return Ok(Err(CinderError::snapshot_not_found(&id)));
            };
            if let Err(e) = f(&mut s) {
                return Ok(Err(e));
            }
            s.updated_at = now_micros().max(s.updated_at + 1);
            db::save_snapshot(tx, &s).await?;
            Ok(Ok(s))
        })
    })
    .await
}

/// Runs `f` inside a write; `f`'s own refusals come back as they are.
pub async fn write<T, F>(svc: &VolumeService, f: F) -> CinderResult<T>
where
    T: Send + 'static,
    F: for<'t> Fn(&'t mut Tx) -> crate::work::TxStep<'t, T> + Send + Sync + Clone + 'static,
{
    let stash: Arc<Mutex<Option<CinderError>>> = Arc::new(Mutex::new(None));
    let s2 = stash.clone();
    let out = svc
        .store()
        .write(move |tx| {
            let (f, stash) = (f.clone(), s2.clone());
            Box::pin(async move {
                match f(tx).await {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(c)) => {
                        *stash.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
                        Err(Error::conflict("refused"))
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .await;
    match out {
        Ok(v) => Ok(v),
        Err(e) => match stash.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(c) => Err(c),
            None => Err(e.into()),
        },
    }
}

/// What a step inside [`write`] returns: a store error aborts and is retried or reported, an
/// inner `Err` is a refusal answered to the client.
pub type TxStep<'t, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<CinderResult<T>>> + Send + 't>>;

// ------------------------------------------------------------------ quotas

/// A project's limits: the configured defaults overlaid with its overrides.
pub fn limit(
    cfg: &strata_core::config::VolumeConfig,
    overrides: &[(String, i64)],
    resource: &str,
) -> i64 {
    if let Some((_, v)) = overrides.iter().find(|(r, _)| r == resource) {
        return *v;
    }
    match resource {
        "volumes" => cfg.quota_volumes,
        "snapshots" => cfg.quota_snapshots,
        "gigabytes" => cfg.quota_gigabytes,
        "backups" => cfg.quota_backups,
        "backup_gigabytes" => cfg.quota_backup_gigabytes,
        "groups" => cfg.quota_groups,
        "per_volume_gigabytes" => cfg.quota_per_volume_gigabytes,
        _ => -1,
    }
}

/// Checks, inside the write that is about to add them, that `volumes`, `snapshots` and
/// `gigabytes` more of type `type_name` fit the project's quotas; Cinder's 413 otherwise.
pub async fn check_quota(
    tx: &mut Tx,
    cfg: &strata_core::config::VolumeConfig,
    project: &str,
    volume_type: &VolumeType,
    volumes: i64,
    snapshots: i64,
    gigabytes: i64,
) -> Result<CinderResult<()>> {
    let overrides = db::quota_overrides_tx(tx, project).await?;
    let per_volume = limit(cfg, &overrides, "per_volume_gigabytes");
    if volumes > 0 && per_volume >= 0 && gigabytes > per_volume {
        return Ok(Err(CinderError::bad_request(format!(
            "Volume size {gigabytes}G exceeds the maximum size of a volume in this project \
             ({per_volume}G)."
        ))));
    }
    let usage = db::usage_tx(tx, project).await?;
    let t = usage
        .per_type
        .iter()
        .find(|p| p.0 == volume_type.id)
        .cloned()
        .unwrap_or_default();
    let name = &volume_type.name;
    let checks = [
        ("volumes".to_string(), volumes, usage.volumes),
        ("snapshots".to_string(), snapshots, usage.snapshots),
        ("gigabytes".to_string(), gigabytes, usage.gigabytes),
        (format!("volumes_{name}"), volumes, t.1),
        (format!("snapshots_{name}"), snapshots, t.2),
        (format!("gigabytes_{name}"), gigabytes, t.3),
    ];
    for (resource, want, used) in checks {
        if want <= 0 {
            continue;
        }
        let lim = limit(cfg, &overrides, &resource);
        if lim < 0 || used + want <= lim {
            continue;
        }
        let msg = if resource.starts_with("gigabytes") {
            format!(
                "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed \
                 {resource} quota. Requested {want}G, quota is {lim}G and {used}G has been \
                 consumed."
            )
        } else if resource.starts_with("snapshots") {
            format!(
                "SnapshotLimitExceeded: Maximum number of snapshots allowed ({lim}) exceeded for \
                 quota '{resource}'."
            )
        } else {
            format!(
                "VolumeLimitExceeded: Maximum number of volumes allowed ({lim}) exceeded for \
                 quota '{resource}'."
            )
        };
        return Ok(Err(CinderError::over_quota(msg)));
    }
    Ok(Ok(()))
}

// ------------------------------------------------------------------ types

/// Creates `__DEFAULT__` when no type of that name exists.
pub async fn ensure_default_type(svc: &VolumeService) -> Result<()> {
    if db::get_type_by_name(svc.store(), DEFAULT_TYPE_NAME)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let now = now_micros();
    let t = VolumeType {
        id: strata_core::ids::uuid(),
        name: DEFAULT_TYPE_NAME.into(),
        description: Some("Default Volume Type".into()),
        is_public: true,
        extra_specs: Map::new(),
        created_at: now,
        updated_at: now,
    };
    let res = svc
        .store()
        .write(move |tx| {
            let t = t.clone();
            Box::pin(async move { db::insert_type(tx, &t).await })
        })
        .await;
    match res {
        // Another replica made it first.
        Err(Error::AlreadyExists(_)) | Err(Error::Conflict(_)) => Ok(()),
        other => other,
    }
}

// ------------------------------------------------------------------ volume data

fn backend(svc: &VolumeService) -> std::result::Result<Arc<dyn BlockBackend>, String> {
    svc.backend()
        .cloned()
        .ok_or_else(|| "no volume backend is configured (set volume.store_dir)".to_string())
}

/// Builds the data of the new volume `id` (status `creating`) from `source`, then marks it
/// `available` (or `error`).
pub async fn build(svc: VolumeService, id: String, source: Source) {
    let result = build_data(&svc, &id, &source).await;
    let now = now_micros();
    let outcome = match result {
        Ok(()) => Ok(()),
        Err(why) => {
            tracing::warn!(volume = %id, error = %why, "creating the volume's data failed");
            let why2 = why.clone();
            update_volume(&svc, &id, move |v| {
                v.status = "error".into();
                v.error = Some(why2.clone());
                Ok(())
            })
            .await
            .map(|_| ())
        }
    };
    if let Err(e) = outcome {
        tracing::debug!(volume = %id, error = ?e, "volume gone before its data was built");
    }
    let _ = now;
}

async fn build_data(
    svc: &VolumeService,
    id: &str,
    source: &Source,
) -> std::result::Result<(), String> {
    let b = backend(svc)?;
    let vol = db::get_volume(svc.store(), id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the volume was deleted")?;
    let size = vol.size as u64;
    match source {
        Source::Blank => {
            let _g = svc.backend_lock().read().await;
            let h = b.create(size).await.map_err(|e| e.to_string())?;
            finish(svc, id, h, None).await
        }
        Source::Image {
            id: image,
            disk_format,
        } => {
            let _ = update_volume(svc, id, |v| {
                if v.status == "creating" {
                    v.status = "downloading".into();
                }
                Ok(())
            })
            .await;
            let bps = svc.config().copy_bps_limit;
            let data = match svc.images().local_path(image) {
                Some(path) if bps == 0 => crate::backend::ImageData::File(path),
                _ => {
                    let stream = svc
                        .images()
                        .open(image)
                        .await
                        .map_err(|e| format!("reading image {image}: {e}"))?;
                    crate::backend::ImageData::Stream(throttle(stream, bps))
                }
            };
            let _g = svc.backend_lock().read().await;
            let h = b
                .create_from_image(data, disk_format, size)
                .await
                .map_err(|e| e.to_string())?;
            finish(svc, id, h, None).await
        }
        Source::Snapshot { id: snap } => {
            let s = db::get_snapshot(svc.store(), snap)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the snapshot was deleted")?;
            let handle = s.provider_location.ok_or("the snapshot has no data")?;
            let _g = svc.backend_lock().read().await;
            let h = b
                .create_from_snapshot(&handle, size)
                .await
                .map_err(|e| e.to_string())?;
            finish(svc, id, h, None).await
        }
        Source::Volume { id: src } => {
            let _g = svc.backend_lock().write().await;
            let s = db::get_volume(svc.store(), src)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the source volume was deleted")?;
            let handle = s
                .provider_location
                .clone()
                .ok_or("the source volume has no data")?;
            if s.status != "available" || s.attach_status == "attached" {
                // A hypervisor holds (or is being handed) the source's handle: copy it whole.
                let h = b.copy(&handle).await.map_err(|e| e.to_string())?;
                b.extend(&h, size).await.map_err(|e| e.to_string())?;
                finish(svc, id, h, None).await
            } else {
                let (next, clone) = b
                    .clone_volume(&handle, size)
                    .await
                    .map_err(|e| e.to_string())?;
                finish(svc, id, clone, Some((src.clone(), handle, next))).await
            }
        }
    }
}

/// Paces `data` to at most `bps` bytes per second (0: as fast as it comes).
fn throttle(data: crate::backend::ByteStream, bps: u64) -> crate::backend::ByteStream {
    use futures::StreamExt;
    if bps == 0 {
        return data;
    }
    let start = tokio::time::Instant::now();
    let mut sent: u64 = 0;
    data.then(move |chunk| {
        if let Ok(c) = &chunk {
            sent += c.len() as u64;
        }
        // When this much data should have taken longer than it did, wait out the difference.
        let due = start + std::time::Duration::from_secs_f64(sent as f64 / bps as f64);
        async move {
            tokio::time::sleep_until(due).await;
            chunk
        }
    })
    .boxed()
}

/// Records the new volume's handle and marks it `available`; with `moved`, also moves the
/// source volume to its new handle (if it still has the old one).
async fn finish(
    svc: &VolumeService,
    id: &str,
    handle: String,
    moved: Option<(String, String, String)>,
) -> std::result::Result<(), String> {
    let id = id.to_string();
    let res = write(svc, move |tx| {
        let (id, handle, moved) = (id.clone(), handle.clone(), moved.clone());
        Box::pin(async move {
            if let Some((src, old, new)) = moved {
                if let Some(mut s) = db::get_volume_tx(tx, &src).await? {
                    if s.provider_location.as_deref() == Some(old.as_str()) {
                        s.provider_location = Some(new);
                        s.updated_at = now_micros().max(s.updated_at + 1);
                        db::save_volume(tx, &s).await?;
                    }
                }
            }
            let Some(mut v) = db::get_volume_tx(tx, &id).await? else {
                return Ok(Err(CinderError::volume_not_found(&id)));
            };
            v.provider_location = Some(handle);
            if matches!(v.status.as_str(), "creating" | "downloading") {
                v.status = "available".into();
                v.launched_at = Some(now_micros());
            }
            v.updated_at = now_micros().max(v.updated_at + 1);
            db::save_volume(tx, &v).await?;
            Ok(Ok(()))
        })
    })
    .await;
    let gone = res.is_err();
    if gone {
        // Deleted meanwhile: the new data belongs to nobody.
        reclaim(svc).await;
        return Err("the volume was deleted while its data was built".into());
    }
    Ok(())
}

/// Takes a snapshot's data: freezes the volume's data (or copies it when the volume is in
/// use), then marks the snapshot `available` (or `error`).
pub async fn snapshot(svc: VolumeService, snap_id: String) {
    let result = snapshot_data(&svc, &snap_id).await;
    if let Err(why) = result {
        tracing::warn!(snapshot = %snap_id, error = %why, "taking the snapshot failed");
        let _ = update_snapshot(&svc, &snap_id, |s| {
            s.status = "error".into();
            Ok(())
        })
        .await;
        reclaim(&svc).await;
    }
}

async fn snapshot_data(svc: &VolumeService, snap_id: &str) -> std::result::Result<(), String> {
    let b = backend(svc)?;
    let _g = svc.backend_lock().write().await;
    let s = db::get_snapshot(svc.store(), snap_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the snapshot was deleted")?;
    let v = db::get_volume(svc.store(), &s.volume_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the volume was deleted")?;
    let handle = v
        .provider_location
        .clone()
        .ok_or("the volume has no data")?;
    // A volume a hypervisor holds (or is being handed: connection info is given out under
    // the shared backend lock, this runs under the exclusive one) keeps its handle; its
    // snapshot is a full copy.
    let (snap_handle, next) = if v.status != "available" || v.attach_status == "attached" {
        (b.copy(&handle).await.map_err(|e| e.to_string())?, None)
    } else {
        let (frozen, next) = b.snapshot(&handle).await.map_err(|e| e.to_string())?;
        (frozen, Some(next))
    };
    let (sid, vid) = (snap_id.to_string(), v.id.clone());
    write(svc, move |tx| {
        let (sid, vid, snap_handle, next, handle) = (
            sid.clone(),
            vid.clone(),
            snap_handle.clone(),
            next.clone(),
            handle.clone(),
        );
        Box::pin(async move {
            let Some(mut s) = db::get_snapshot_tx(tx, &sid).await? else {
                return Ok(Err(CinderError::snapshot_not_found(&sid)));
            };
            if let (Some(next), Some(mut v)) = (next, db::get_volume_tx(tx, &vid).await?) {
                if v.provider_location.as_deref() == Some(handle.as_str()) {
                    v.provider_location = Some(next);
                    v.updated_at = now_micros().max(v.updated_at + 1);
                    db::save_volume(tx, &v).await?;
                }
            }
            s.provider_location = Some(snap_handle);
            if s.status == "creating" {
                s.status = "available".into();
                s.progress = "100%".into();
            }
            s.updated_at = now_micros().max(s.updated_at + 1);
            db::save_snapshot(tx, &s).await?;
            Ok(Ok(()))
        })
    })
    .await
    .map_err(|e| e.message)
}

/// Grows a volume's data, then marks it `available` (or `error_extending`).
pub async fn extend(svc: VolumeService, id: String, new_size: i64, back_to: String) {
    let result = async {
        let b = backend(&svc)?;
        let _g = svc.backend_lock().write().await;
        let v = db::get_volume(svc.store(), &id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the volume was deleted")?;
        let h = v.provider_location.ok_or("the volume has no data")?;
        b.extend(&h, new_size as u64)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    let _ = update_volume(&svc, &id, move |v| {
        match &result {
            Ok(()) => {
                v.size = new_size;
                v.status = back_to.clone();
            }
            Err(why) => {
                v.status = "error_extending".into();
                v.error = Some(why.clone());
            }
        }
        Ok(())
    })
    .await;
}

/// Writes a volume out as the data of a queued image, then puts the volume back to
/// `back_to`.
pub async fn upload(
    svc: VolumeService,
    id: String,
    image_id: String,
    disk_format: String,
    back_to: String,
) {
    let result = async {
        let b = backend(&svc)?;
        let scratch = b
            .scratch_dir()
            .join(format!("upload-{}.tmp", uuid::Uuid::new_v4().simple()));
        let exported = {
            let _g = svc.backend_lock().read().await;
            let v = db::get_volume(svc.store(), &id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the volume was deleted")?;
            let h = v.provider_location.ok_or("the volume has no data")?;
            b.export(&h, &disk_format, &scratch).await
        };
        let out = match exported {
            Ok(()) => svc.images().upload(&image_id, &scratch).await,
            Err(e) => {
                svc.images().kill(&image_id).await;
                Err(e.to_string())
            }
        };
        let _ = tokio::fs::remove_file(&scratch).await;
        out
    }
    .await;
    if let Err(why) = &result {
        tracing::warn!(volume = %id, image = %image_id, error = %why, "uploading the volume to an image failed");
    }
    let _ = update_volume(&svc, &id, move |v| {
        if v.status == "uploading" {
            v.status = back_to.clone();
        }
        Ok(())
    })
    .await;
}

/// Removes backend data no row owns. Runs after deletes and at start.
pub async fn reclaim(svc: &VolumeService) {
    let Some(b) = svc.backend().cloned() else {
        return;
    };
    let _g = svc.backend_lock().write().await;
    let live = match db::live_handles(svc.store()).await {
        Ok(l) => l.into_iter().collect::<HashSet<_>>(),
        Err(e) => {
            tracing::warn!(error = %e, "listing live volume data; not sweeping");
            return;
        }
    };
    match b.sweep(&live).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(removed = n, "reclaimed volume data"),
        Err(e) => tracing::warn!(error = %e, "sweeping the volume backend"),
    }
}

/// Resolves transitional statuses a crash left behind, then sweeps the backend: volumes that
/// were being created end in `error`, extends and uploads go back to where they started
/// (an extend that did not finish keeps the old size). Client-driven attach states are left.
pub async fn recover(svc: &VolumeService) -> Result<()> {
    let vols = db::list_volumes(svc.store(), None).await?;
    let mut fixed = 0;
    for v in vols {
        let to = match v.status.as_str() {
            "creating" | "downloading" => Some("error"),
            "extending" | "uploading" => Some(if v.attach_status == "attached" {
                "in-use"
            } else {
                "available"
            }),
            // `reserved`, `attaching` and `detaching` are driven by the client (Nova's attach
            // handshake), not by a step of this process: they stay, as Cinder leaves them.
            _ => None,
        };
        if let Some(to) = to {
            let to = to.to_string();
            let _ = update_volume(svc, &v.id, move |v| {
                v.status = to.clone();
                Ok(())
            })
            .await;
            fixed += 1;
        }
    }
    for s in db::list_snapshots(svc.store(), None).await? {
        if s.status == "creating" {
            let _ = update_snapshot(svc, &s.id, |s| {
                s.status = "error".into();
                Ok(())
            })
            .await;
            fixed += 1;
        }
    }
    if fixed > 0 {
        tracing::info!(
            records = fixed,
            "recovered volume work interrupted by a crash"
        );
    }
    reclaim(svc).await;
    Ok(())
}
