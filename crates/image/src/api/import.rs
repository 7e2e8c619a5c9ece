//! Interoperable image import (Image API v2.6+): `PUT /v2/images/{id}/stage`,
//! `POST /v2/images/{id}/import` with the `glance-direct` method, and the discovery documents
//! `GET /v2/info/import` and `GET /v2/info/stores`.
//!
//! The image moves `queued` → `uploading` (staging claims it; the data goes to the store's
//! staging area) → `importing` (the import call claims it and returns 202) → `active`, in a
//! spawned task that reads the staged blob, hashes it as an upload does (size, md5, sha512,
//! virtual size) while writing it into the store proper, records the result and removes the
//! staged blob. Every claim is one conditional update, so concurrent stages or imports get 409.
//! Any failure puts the image back to `queued` with its staged (and any imported) data removed;
//! a failed import also sets `os_glance_failed_import` to the store, as multi-store Glance does,
//! so pollers can stop waiting. [`crate::ImageService::recover`] does the same for work cut off
//! by a crash.
//!
//! The site has one store, `local` (the default), and serves only `glance-direct`:
//! `web-download` and `glance-download` would fetch data over the network and `copy-image`
//! needs a second store, so all three are refused with 400.

use crate::api::images::visible;
use crate::data::{Digest, STORE_ID};
use crate::db::{self, DataChange, DataInfo};
use crate::error::{GlanceError, GlanceResult};
use crate::extract::{Auth, Body};
use crate::{model, ImageService};
use axum::extract::{Path, Request, State};
use axum::Json;
use futures::StreamExt;
use http::{header, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use strata_core::time::now_micros;

/// The import methods this site serves.
pub const IMPORT_METHODS: &[&str] = &["glance-direct"];
/// Methods Glance knows that this site does not serve.
const REFUSED_METHODS: &[&str] = &["web-download", "copy-image", "glance-download"];

/// Glance's reserved properties for import progress (multi-store).
const IMPORTING: &str = "os_glance_importing_to_stores";
const FAILED: &str = "os_glance_failed_import";

/// `GET /v2/info/import`.
pub async fn info_import(_auth: Auth) -> Json<Value> {
    Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": IMPORT_METHODS,
        }
    }))
}

/// `GET /v2/info/stores`: the one store, the default (Glance spells booleans here as strings).
pub async fn info_stores(_auth: Auth) -> Json<Value> {
    Json(json!({
        "stores": [{
            "id": STORE_ID,
            "description": "Image data on the local file system of the server",
            "default": "true",
        }]
    }))
}

/// Undoes a stage or an import unless disarmed: removes the staged data (and, for an import,
/// any data written to the store), then puts the image from `from` back to `queued`. Runs on
/// every failure path, including the request future being dropped mid-stage.
struct Undo {
    svc: ImageService,
    id: String,
    from: &'static str,
    armed: bool,
}

impl Undo {
    async fn run(svc: ImageService, id: String, from: &'static str) {
        if let Some(staging) = svc.data().staging() {
            if let Err(e) = staging.delete(&id).await {
                tracing::warn!(image = %id, error = %e, "removing staged data");
            }
        }
        let props: &[(&str, Option<&str>)] = if from == "importing" {
            if let Err(e) = svc.data().delete(&id).await {
                tracing::warn!(image = %id, error = %e, "removing the data of a failed import");
            }
            &[(IMPORTING, Some("")), (FAILED, Some(STORE_ID))]
        } else {
            &[]
        };
        let r = db::transition(
            svc.store(),
            &id,
            from,
            "queued",
            DataChange::Clear,
            props,
            now_micros(),
        )
        .await;
        if let Err(e) = r {
            tracing::warn!(image = %id, error = %e, "restoring a failed {from} to queued");
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (svc, id, from) = (self.svc.clone(), std::mem::take(&mut self.id), self.from);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(Undo::run(svc, id, from));
        }
    }
}

/// Why a data stream stopped early.
#[derive(Debug)]
enum Cut {
    TooLarge,
    Client(String),
    WrongSize(u64),
}

/// `PUT /v2/images/{id}/stage` (`application/octet-stream`, optionally
/// `x-openstack-image-size`): 204 once the data is staged and the image `uploading`; 409 unless
/// the image was `queued`.
pub async fn image_stage(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    req: Request,
) -> GlanceResult<StatusCode> {
    let headers = req.headers();
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let ct = header_str(header::CONTENT_TYPE.as_str()).unwrap_or_default();
    if ct.split(';').next().unwrap_or_default().trim() != "application/octet-stream" {
        return Err(GlanceError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Invalid content type {ct}"),
        ));
    }
    let expected = match header_str("x-openstack-image-size") {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            GlanceError::bad_request(format!("Invalid x-openstack-image-size header: {v}"))
        })?),
    };
    let Some(staging) = svc.data().staging() else {
        return Err(GlanceError::new(
            StatusCode::NOT_FOUND,
            "'glance-direct' method is not available at this site.",
        ));
    };
    let img = visible(&svc, &ctx, &id).await?;
    if !model::can_modify(&ctx, &img) {
        return Err(GlanceError::policy("modify_image"));
    }
    let cap = svc.max_image_bytes();
    if expected.is_some_and(|n| n > cap) {
        return Err(GlanceError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The incoming image is too large.",
        ));
    }
    let claimed = db::transition(
        svc.store(),
        &id,
        "queued",
        "uploading",
        DataChange::Keep,
        &[],
        now_micros(),
    )
    .await?;
    if !claimed {
        let status = db::get(svc.store(), &id)
            .await?
            .map(|i| i.status)
            .unwrap_or_else(|| "deleted".into());
        return Err(GlanceError::conflict(format!(
            "Image status transition from {status} to uploading is not allowed"
        )));
    }
    let mut undo = Undo {
        svc: svc.clone(),
        id: id.clone(),
        from: "uploading",
        armed: true,
    };
    let cut: Arc<Mutex<Option<Cut>>> = Arc::new(Mutex::new(None));
    let c = cut.clone();
    let mut size = 0u64;
    let stream = req
        .into_body()
        .into_data_stream()
        .map(move |chunk| {
            let set = |why| *c.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            let chunk = chunk.map_err(|e| {
                set(Cut::Client(e.to_string()));
                std::io::Error::other("the upload was cut short")
            })?;
            size += chunk.len() as u64;
            if size > cap {
                set(Cut::TooLarge);
                return Err(std::io::Error::other("the image is over the size cap"));
            }
            if expected.is_some_and(|n| size > n) {
                set(Cut::WrongSize(size));
                return Err(std::io::Error::other("more data than announced"));
            }
            Ok(chunk)
        })
        .boxed();
    let put = staging.put(&id, stream).await;
    let stored = match put {
        Ok(n) => n,
        Err(e) => {
            let why = cut.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(match why {
                Some(Cut::TooLarge) => GlanceError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The incoming image is too large.",
                ),
                Some(Cut::Client(why)) => {
                    GlanceError::bad_request(format!("Error in the uploaded data: {why}"))
                }
                Some(Cut::WrongSize(n)) => size_mismatch(expected, n),
                None => {
                    tracing::error!(image = %id, error = %e, "staging image data");
                    GlanceError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Error in store configuration. Adding images to store is disabled.",
                    )
                }
            });
        }
    };
    if expected.is_some_and(|n| n != stored) {
        return Err(size_mismatch(expected, stored));
    }
    let recorded = db::transition(
        svc.store(),
        &id,
        "uploading",
        "uploading",
        DataChange::Size(stored as i64),
        &[],
        now_micros(),
    )
    .await?;
    if !recorded {
        // Deleted while staging: the undo removes the staged data.
        return Err(GlanceError::new(
            StatusCode::GONE,
            format!(
                "Image {id} could not be found after upload. The image may have been deleted \
                 during the upload."
            ),
        ));
    }
    undo.armed = false;
    Ok(StatusCode::NO_CONTENT)
}

fn size_mismatch(expected: Option<u64>, got: u64) -> GlanceError {
    GlanceError::bad_request(format!(
        "Image size mismatch: x-openstack-image-size is {}, the data has {got} bytes or more.",
        expected.unwrap_or_default()
    ))
}

/// The request body of an import, checked as Glance's deserializer does.
struct ImportRequest {
    method: String,
}

fn import_request(body: &Value) -> GlanceResult<ImportRequest> {
    let Some(body) = body.as_object() else {
        return Err(GlanceError::bad_request(
            "Import request requires a 'method' field.",
        ));
    };
    let Some(method) = body.get("method") else {
        return Err(GlanceError::bad_request(
            "Import request requires a 'method' field.",
        ));
    };
    let Some(name) = method.get("name") else {
        return Err(GlanceError::bad_request(
            "Import request requires a 'name' field.",
        ));
    };
    let name = match name {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if REFUSED_METHODS.contains(&name.as_str()) {
        return Err(GlanceError::bad_request(format!(
            "Import method {name} is not supported at this site (import methods available: {}).",
            IMPORT_METHODS.join(", ")
        )));
    }
    if !IMPORT_METHODS.contains(&name.as_str()) {
        return Err(GlanceError::bad_request(format!(
            "Unknown import method name '{name}'."
        )));
    }
    for key in ["all_stores_must_succeed", "all_stores"] {
        if body.get(key).is_some_and(|v| !v.is_boolean()) {
            return Err(GlanceError::bad_request(format!(
                "'{key}' must be boolean value only"
            )));
        }
    }
    if let Some(stores) = body.get("stores") {
        if body.get("all_stores") == Some(&Value::Bool(true)) {
            return Err(GlanceError::bad_request(
                "All_stores parameter can't be used with x-image-meta-store header or stores \
                 parameter",
            ));
        }
        let Some(list) = stores.as_array() else {
            return Err(GlanceError::bad_request(
                "'stores' must be a list of store ids",
            ));
        };
        for s in list {
            let s = s.as_str().unwrap_or_default();
            if s != STORE_ID {
                return Err(GlanceError::conflict(format!(
                    "Unknown scheme '{s}' found in URI"
                )));
            }
        }
    }
    Ok(ImportRequest { method: name })
}

/// `POST /v2/images/{id}/import` with `{"method": {"name": "glance-direct"}}`: 202; the image
/// becomes `importing`, then `active` (or `queued` again, with `os_glance_failed_import`).
pub async fn image_import(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> GlanceResult<StatusCode> {
    let req = import_request(&body.json()?)?;
    let img = visible(&svc, &ctx, &id).await?;
    if img.status == "active" {
        return Err(GlanceError::conflict(
            "Image with status active cannot be target for import",
        ));
    }
    if img.status != "uploading" {
        return Err(GlanceError::conflict(format!(
            "Image needs to be staged before '{}' method can be used",
            req.method
        )));
    }
    if img.container_format.is_none() {
        return Err(GlanceError::conflict(
            "'container_format' needs to be set before import",
        ));
    }
    if img.disk_format.is_none() {
        return Err(GlanceError::conflict(
            "'disk_format' needs to be set before import",
        ));
    }
    if !model::can_modify(&ctx, &img) {
        return Err(GlanceError::policy("modify_image"));
    }
    let claimed = db::transition(
        svc.store(),
        &id,
        "uploading",
        "importing",
        DataChange::Keep,
        &[(IMPORTING, Some(STORE_ID)), (FAILED, Some(""))],
        now_micros(),
    )
    .await?;
    if !claimed {
        return Err(GlanceError::conflict(format!(
            "New operation on image '{id}' is not permitted as prior operation is still in \
             progress"
        )));
    }
    let undo = Undo {
        svc: svc.clone(),
        id: id.clone(),
        from: "importing",
        armed: true,
    };
    tokio::spawn(run_import(undo, img.disk_format));
    Ok(StatusCode::ACCEPTED)
}

/// The import task: staged blob → store, hashed on the way; `importing` → `active`. On any
/// failure (or a panic) the armed `undo` puts the image back to `queued`.
async fn run_import(mut undo: Undo, disk_format: Option<String>) {
    let (svc, id) = (undo.svc.clone(), undo.id.clone());
    match import_data(&svc, &id, disk_format.as_deref()).await {
        Ok(info) => {
            let done = db::transition(
                svc.store(),
                &id,
                "importing",
                "active",
                DataChange::Set(info),
                &[(IMPORTING, Some("")), (FAILED, Some(""))],
                now_micros(),
            )
            .await;
            match done {
                Ok(true) => {
                    undo.armed = false;
                    if let Some(staging) = svc.data().staging() {
                        if let Err(e) = staging.delete(&id).await {
                            tracing::warn!(image = %id, error = %e, "removing imported staged data");
                        }
                    }
                    tracing::info!(image = %id, "image imported");
                }
                // Deleted meanwhile: the undo removes both blobs.
                Ok(false) => tracing::info!(image = %id, "image deleted while importing"),
                Err(e) => tracing::error!(image = %id, error = %e, "recording an import"),
            }
        }
        Err(e) => tracing::warn!(image = %id, error = %e, "image import failed"),
    }
}

/// Copies the staged blob of `id` into the store, returning what the data is.
async fn import_data(
    svc: &ImageService,
    id: &str,
    disk_format: Option<&str>,
) -> std::io::Result<DataInfo> {
    let staging = svc
        .data()
        .staging()
        .ok_or_else(|| std::io::Error::other("no staging area"))?;
    let staged = staging.get(id, 0, None).await?;
    let cap = svc.max_image_bytes();
    let digest = Arc::new(Mutex::new(Digest::default()));
    let d = digest.clone();
    let stream = staged
        .map(move |chunk| {
            let chunk = chunk?;
            let mut d = d.lock().unwrap_or_else(|p| p.into_inner());
            d.update(&chunk);
            if d.size > cap {
                return Err(std::io::Error::other("the image is over the size cap"));
            }
            Ok(chunk)
        })
        .boxed();
    svc.data().put(id, stream).await?;
    let digest = std::mem::take(&mut *digest.lock().unwrap_or_else(|p| p.into_inner()));
    let size = digest.size as i64;
    let virtual_size = digest.virtual_size(disk_format).map(|v| v as i64);
    let (checksum, os_hash_value) = digest.finish();
    Ok(DataInfo {
        size,
        virtual_size,
        checksum,
        os_hash_algo: "sha512".into(),
        os_hash_value,
    })
}

/// What [`crate::ImageService::recover`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Images put back to `queued`.
    pub images: usize,
    /// Staged blobs removed.
    pub staged: usize,
}

/// Recovers stages and imports cut off by a crash: `importing` images go back to `queued`
/// (marked failed, staged and imported data removed), `uploading` images without staged data
/// (a stage cut off mid-way) back to `queued`, and staged blobs of images no longer `uploading`
/// are removed. Images `uploading` with their staged data stay so: staging completed, the
/// import may still come. Only safe while no stage or import runs (at start). Idempotent.
pub(crate) async fn recover(svc: &ImageService) -> strata_core::Result<Recovered> {
    let io = |e: std::io::Error| strata_core::Error::internal(format!("image staging area: {e}"));
    let mut out = Recovered::default();
    let Some(staging) = svc.data().staging() else {
        return Ok(out);
    };
    out.staged += staging.sweep().await.map_err(io)?;
    for id in db::ids_in_status(svc.store(), "importing").await? {
        Undo::run(svc.clone(), id, "importing").await;
        out.images += 1;
    }
    let staged = staging.list().await.map_err(io)?;
    let uploading = db::ids_in_status(svc.store(), "uploading").await?;
    for id in &uploading {
        if !staged.contains(id) {
            Undo::run(svc.clone(), id.clone(), "uploading").await;
            out.images += 1;
        }
    }
    for id in staged.iter().filter(|id| !uploading.contains(id)) {
        staging.delete(id).await.map_err(io)?;
        out.staged += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_bodies() {
        let ok = import_request(&json!({"method": {"name": "glance-direct"}, "all_stores": true}));
        assert_eq!(ok.unwrap().method, "glance-direct");
        let ok = import_request(&json!({"method": {"name": "glance-direct"}, "stores": ["local"]}));
        assert!(ok.is_ok());
        for (body, status) in [
            (json!({}), StatusCode::BAD_REQUEST),
            (json!({"method": {}}), StatusCode::BAD_REQUEST),
            (
                json!({"method": {"name": "web-download"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"method": {"name": "copy-image"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"method": {"name": "bogus"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"method": {"name": "glance-direct"}, "all_stores": "yes"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"method": {"name": "glance-direct"}, "stores": ["fast"]}),
                StatusCode::CONFLICT,
            ),
            (
                json!({"method": {"name": "glance-direct"}, "stores": ["local"], "all_stores": true}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let e = import_request(&body).err().expect("refused");
            assert_eq!(e.status, status, "{body}");
        }
    }
}
