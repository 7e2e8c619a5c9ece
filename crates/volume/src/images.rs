//! The bridge to the image service: reading an image into a new volume and writing a volume
//! out as a new image (`os-volume_upload_image`). In-process, through the image crate's own
//! rules (who may see an image, the upload's status transitions and digests), never over HTTP.

use crate::backend::ByteStream;
use futures::StreamExt;
use serde_json::{Map, Value};
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use strata_api::AuthContext;
use strata_image::ImageService;

pub type BridgeFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the volume service needs to know of an image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub checksum: Option<String>,
    pub properties: Map<String, Value>,
}

/// A new image record for a volume's data.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub name: String,
    pub disk_format: String,
    pub container_format: String,
    pub visibility: String,
    pub protected: bool,
    pub properties: Map<String, Value>,
}

pub trait ImageBridge: Send + Sync + 'static {
    /// The image `id` if `ctx` may see it.
    fn find<'a>(
        &'a self,
        ctx: &'a AuthContext,
        id: &'a str,
    ) -> BridgeFuture<'a, strata_core::Result<Option<ImageInfo>>>;

    /// The image's data.
    fn open<'a>(&'a self, id: &'a str) -> BridgeFuture<'a, io::Result<ByteStream>>;

    /// The image's data as a local file, when the image store keeps it as one.
    fn local_path(&self, id: &str) -> Option<std::path::PathBuf>;

    /// A queued image owned by `ctx`'s project; `Err(Forbidden)` when policy refuses it.
    fn create<'a>(
        &'a self,
        ctx: &'a AuthContext,
        spec: NewImage,
    ) -> BridgeFuture<'a, strata_core::Result<ImageInfo>>;

    /// Uploads `path` as the data of the queued image `id` (queued → saving → active); on
    /// failure the image is `killed` and no data is kept.
    fn upload<'a>(&'a self, id: &'a str, path: &'a Path) -> BridgeFuture<'a, Result<(), String>>;

    /// Marks an image whose upload can no longer happen as `killed`.
    fn kill<'a>(&'a self, id: &'a str) -> BridgeFuture<'a, ()>;
}

fn info(img: strata_image::model::Image) -> ImageInfo {
    ImageInfo {
        id: img.id,
        name: img.name,
        status: img.status,
        disk_format: img.disk_format,
        container_format: img.container_format,
        size: img.size,
        virtual_size: img.virtual_size,
        min_disk: img.min_disk,
        min_ram: img.min_ram,
        checksum: img.checksum,
        properties: img.properties,
    }
}

impl ImageBridge for ImageService {
    fn find<'a>(
        &'a self,
        ctx: &'a AuthContext,
        id: &'a str,
    ) -> BridgeFuture<'a, strata_core::Result<Option<ImageInfo>>> {
        Box::pin(async move {
            let Some(img) = strata_image::db::get(self.store(), id).await? else {
                return Ok(None);
            };
            let member = if strata_image::model::needs_membership(ctx, &img) {
                let project = ctx.project_id().unwrap_or_default();
                use strata_store::sqlx;
                sqlx::query(
                    "SELECT 1 AS one FROM image_member WHERE image_id = $1 AND member_id = $2",
                )
                .bind(id)
                .bind(project)
                .fetch_optional(self.store().pool())
                .await
                .map_err(strata_store::from_sqlx)?
                .is_some()
            } else {
                false
            };
            Ok(strata_image::model::can_see(ctx, &img, member).then(|| info(img)))
        })
    }

    fn open<'a>(&'a self, id: &'a str) -> BridgeFuture<'a, io::Result<ByteStream>> {
        Box::pin(async move { self.data().get(id, 0, None).await })
    }

    fn local_path(&self, id: &str) -> Option<std::path::PathBuf> {
        self.data().local_path(id)
    }

    fn create<'a>(
        &'a self,
        ctx: &'a AuthContext,
        spec: NewImage,
    ) -> BridgeFuture<'a, strata_core::Result<ImageInfo>> {
        Box::pin(async move {
            if !strata_image::model::can_create(ctx) {
                return Err(strata_core::Error::forbidden(
                    "You are not authorized to complete add_image action.",
                ));
            }
            if spec.visibility == "public" && !strata_image::model::can_publicize(ctx) {
                return Err(strata_core::Error::forbidden(
                    "You are not authorized to complete publicize_image action.",
                ));
            }
            let now = strata_core::time::now_micros();
            let img = strata_image::model::Image {
                id: strata_core::ids::uuid(),
                name: Some(spec.name),
                owner: ctx.project_id().unwrap_or_default().to_string(),
                status: "queued".into(),
                visibility: spec.visibility,
                protected: spec.protected,
                os_hidden: false,
                disk_format: Some(spec.disk_format),
                container_format: Some(spec.container_format),
                min_disk: 0,
                min_ram: 0,
                size: None,
                virtual_size: None,
                checksum: None,
                os_hash_algo: None,
                os_hash_value: None,
                properties: spec.properties,
                tags: Vec::new(),
                created_at: now,
                updated_at: now,
            };
            strata_image::db::create(self.store(), &img).await?;
            Ok(info(img))
        })
    }

    fn upload<'a>(&'a self, id: &'a str, path: &'a Path) -> BridgeFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let result = upload(self, id, path).await;
            if result.is_err() {
                self.kill(id).await;
            }
            result
        })
    }

    fn kill<'a>(&'a self, id: &'a str) -> BridgeFuture<'a, ()> {
        Box::pin(async move {
            let now = strata_core::time::now_micros();
            for from in ["saving", "queued"] {
                if let Ok(true) =
                    strata_image::db::set_status(self.store(), id, from, "killed", now).await
                {
                    break;
                }
            }
            let _ = self.data().delete(id).await;
        })
    }
}

async fn upload(svc: &ImageService, id: &str, path: &Path) -> Result<(), String> {
    let store = svc.store();
    let img = strata_image::db::get(store, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the image was deleted")?;
    let at = strata_core::time::now_micros().max(img.updated_at + 1);
    if !strata_image::db::set_status(store, id, "queued", "saving", at)
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!("the image is {}, not queued", img.status));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("opening the exported volume: {e}"))?;
    let digest = Arc::new(Mutex::new(strata_image::data::Digest::default()));
    let d = digest.clone();
    let stream = tokio_util_stream(file)
        .map(move |chunk| {
            let chunk = chunk?;
            d.lock().unwrap_or_else(|p| p.into_inner()).update(&chunk);
            Ok(chunk)
        })
        .boxed();
    svc.data()
        .put(id, stream)
        .await
        .map_err(|e| format!("storing the image data: {e}"))?;
    let digest = std::mem::take(&mut *digest.lock().unwrap_or_else(|p| p.into_inner()));
    let size = digest.size as i64;
    let virtual_size = digest
        .virtual_size(img.disk_format.as_deref())
        .map(|v| v as i64);
    let (checksum, os_hash_value) = digest.finish();
    let data = strata_image::db::DataInfo {
        size,
        virtual_size,
        checksum,
        os_hash_algo: "sha512".into(),
        os_hash_value,
    };
    let done = strata_image::db::set_data(
        store,
        id,
        &data,
        strata_core::time::now_micros().max(at + 1),
    )
    .await
    .map_err(|e| e.to_string())?;
    if !done {
        return Err("the image was deleted during the upload".into());
    }
    Ok(())
}

/// A file as a stream of 1 MiB chunks.
fn tokio_util_stream(file: tokio::fs::File) -> ByteStream {
    use tokio::io::AsyncReadExt;
    futures::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 1 << 20];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), f)))
    })
    .boxed()
}
