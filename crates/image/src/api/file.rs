//! `/v2/images/{id}/file`: image data upload and download (Glance's `image_data` controller).
//!
//! An upload claims the image by moving it `queued` → `saving` in one conditional update (a
//! second concurrent upload gets 409), streams the body into the [`crate::ImageStore`] while
//! hashing it, and finishes with `saving` → `active` plus size and hashes. Any failure — a bad
//! stream, the size cap, a store error, the client going away (the handler future is dropped)
//! — removes the data and puts the image back to `queued`, as Glance's `_restore` does.
//!
//! A process that dies mid-upload leaves the image `saving` and a temp file in the store dir;
//! [`crate::ImageService::recover`] puts such images back to `queued` and removes the temp file.

use crate::data::Digest;
use crate::db::{self, DataInfo};
use crate::error::{GlanceError, GlanceResult};
use crate::extract::Auth;
use crate::{model, ImageService};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use std::sync::{Arc, Mutex};
use strata_core::time::now_micros;

/// Marks an image `killed` and removes its data unless disarmed: runs on every failure path,
/// including the request future being dropped mid-upload. (Glance v2 restores such images to
/// `queued`; Strata kills them so a half-written upload is never mistaken for a retryable one,
/// and a client re-creates the image.)
struct Restore {
    svc: ImageService,
    id: String,
    armed: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (svc, id) = (self.svc.clone(), std::mem::take(&mut self.id));
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if let Err(e) = svc.data().delete(&id).await {
                tracing::warn!(image = %id, error = %e, "removing the data of a failed upload");
            }
            if let Err(e) = db::set_status(svc.store(), &id, "saving", "killed", now_micros()).await
            {
                tracing::warn!(image = %id, error = %e, "marking a failed upload killed");
            }
        });
    }
}

/// Why the upload stream stopped early.
#[derive(Debug)]
enum Cut {
    TooLarge,
    Client(String),
}

/// `PUT /v2/images/{id}/file` (`application/octet-stream`): 204 when the image is active.
pub async fn image_upload(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    req: Request,
) -> GlanceResult<StatusCode> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if ct.split(';').next().unwrap_or_default().trim() != "application/octet-stream" {
        return Err(GlanceError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Invalid content type {ct}"),
        ));
    }
    let img = crate::api::images::visible(&svc, &ctx, &id).await?;
    if !model::can_modify(&ctx, &img) {
        return Err(GlanceError::policy("upload_image"));
    }
    let at = now_micros().max(img.updated_at + 1);
    if !db::set_status(svc.store(), &id, "queued", "saving", at).await? {
        let status = db::get(svc.store(), &id)
            .await?
            .map(|i| i.status)
            .unwrap_or_else(|| "deleted".into());
        return Err(GlanceError::conflict(format!(
            "Image status transition from {status} to saving is not allowed"
        )));
    }
    let mut restore = Restore {
        svc: svc.clone(),
        id: id.clone(),
        armed: true,
    };
    let cap = svc.max_image_bytes();
    let digest = Arc::new(Mutex::new(Digest::default()));
    let cut: Arc<Mutex<Option<Cut>>> = Arc::new(Mutex::new(None));
    let (d, c) = (digest.clone(), cut.clone());
    let stream = req
        .into_body()
        .into_data_stream()
        .map(move |chunk| {
            let chunk = chunk.map_err(|e| {
                *c.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cut::Client(e.to_string()));
                std::io::Error::other("the upload was cut short")
            })?;
            let mut d = d.lock().unwrap_or_else(|p| p.into_inner());
            d.update(&chunk);
            if d.size > cap {
                *c.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cut::TooLarge);
                return Err(std::io::Error::other("the image is over the size cap"));
            }
            Ok(chunk)
        })
        .boxed();
    let put = svc.data().put(&id, stream).await;
    if let Err(e) = put {
        let cut = cut.lock().unwrap_or_else(|p| p.into_inner()).take();
        return Err(match cut {
            Some(Cut::TooLarge) => GlanceError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The provided image is too large.",
            ),
            Some(Cut::Client(why)) => {
                GlanceError::bad_request(format!("Error in the uploaded data: {why}"))
            }
            // Glance's StorageFull: 413, nothing kept (the guard kills the image).
            None if e.kind() == std::io::ErrorKind::StorageFull
                || e.kind() == std::io::ErrorKind::QuotaExceeded =>
            {
                tracing::warn!(image = %id, error = %e, "the image store is full");
                GlanceError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Image storage media is full: {e}"),
                )
            }
            None => {
                tracing::error!(image = %id, error = %e, "storing image data");
                GlanceError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Error in store configuration. Adding images to store is disabled.",
                )
            }
        });
    }
    let digest = std::mem::take(&mut *digest.lock().unwrap_or_else(|p| p.into_inner()));
    let size = digest.size as i64;
    let virtual_size = digest
        .virtual_size(img.disk_format.as_deref())
        .map(|v| v as i64);
    let (checksum, os_hash_value) = digest.finish();
    let info = DataInfo {
        size,
        virtual_size,
        checksum,
        os_hash_algo: "sha512".into(),
        os_hash_value,
    };
    if !db::set_data(svc.store(), &id, &info, now_micros().max(at + 1)).await? {
        // Deleted while uploading: the guard removes the data; Glance answers 410.
        return Err(GlanceError::new(
            StatusCode::GONE,
            format!(
                "Image {id} could not be found after upload. The image may have been deleted \
             during the upload."
            ),
        ));
    }
    restore.armed = false;
    Ok(StatusCode::NO_CONTENT)
}

/// A parsed `Range: bytes=…` header: the first and last byte wanted, or `Err(())` when it
/// cannot be satisfied for an image of `size` bytes. `Ok(None)` when absent or not a single
/// byte range (served whole, as webob ignores what it does not understand).
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (first, last) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
        (Some(_), Some(_)) => return Ok(None),
        (Some(a), None) if b.is_empty() => (a, size.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => {
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return Ok(None),
    };
    if size == 0 || first >= size {
        return Err(());
    }
    Ok(Some((first, last)))
}

/// `GET /v2/images/{id}/file`: the data, streamed; 204 when the image has none; 206 for a
/// satisfiable `Range`, 416 otherwise; 403 for non-admins while the image is deactivated.
pub async fn image_download(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> GlanceResult<Response> {
    let img = crate::api::images::visible(&svc, &ctx, &id).await?;
    if img.status == "deactivated" && !ctx.is_admin() {
        return Err(GlanceError::forbidden(
            "The requested image has been deactivated. Image data download is forbidden.",
        ));
    }
    let size = match (img.status.as_str(), img.size) {
        ("active" | "deactivated", Some(size)) => size as u64,
        _ => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    let (status, first, len) = match range(&headers, size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Err(()) => {
            return Err(GlanceError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "Requested range not satisfiable",
            )
            .with_header("content-range", format!("bytes */{size}")))
        }
    };
    let stream = svc.data().get(&id, first, Some(len)).await.map_err(|e| {
        tracing::error!(image = %id, error = %e, "reading image data");
        GlanceError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Image {id} data could not be read."),
        )
    })?;
    let mut resp = (status, axum::body::Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(sum) = img
        .checksum
        .as_deref()
        .and_then(|s| HeaderValue::from_str(s).ok())
    {
        h.insert("content-md5", sum);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{}/{size}", first + len - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        range(&h, size)
    }

    #[test]
    fn ranges() {
        assert_eq!(r("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(r("bytes=90-200", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=95-", 100), Ok(Some((95, 99))));
        assert_eq!(r("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-200", 100), Ok(Some((0, 99))));
        assert_eq!(r("bytes=100-", 100), Err(()));
        assert_eq!(r("bytes=5-2", 100), Ok(None));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(range(&HeaderMap::new(), 100), Ok(None));
    }
}
