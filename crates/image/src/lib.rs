//! Glance v2, wire-compatible: version discovery, image records (create, list with Glance's
//! filters, sorting and paging, show, JSON-patch update, delete), image tags, image members
//! (sharing `shared` images with other projects, who accept or reject them), the schemas
//! clients fetch, and image data: upload (`PUT …/file`, streamed into an [`ImageStore`] while
//! size, md5, sha512 and the virtual size are computed), download (`GET …/file`, with ranges)
//! and interoperable import with the `glance-direct` method (`PUT …/stage` into the store's
//! staging area, `POST …/import` finishing in a spawned task; `GET /v2/info/import` and
//! `/v2/info/stores` describe it). Not served: tasks, metadefs, locations, the image cache, and
//! the import methods that fetch over the network (`web-download`, `glance-download`) or need a
//! second store (`copy-image`).
//!
//! Rooms: `api/` holds the routes and wire views, `model` the image record and Glance's rules
//! (formats, visibility, members, reserved attributes), `db` the queries (`db::members` for
//! sharing), `data` the image-data stores, `extract` the auth and body extractors, `error`
//! Glance's (webob's) error bodies.
//!
//! Tokens are validated by the identity service through [`strata_api::TokenValidator`], in
//! memory: this crate never reads identity tables.

pub mod api;
pub mod data;
pub mod db;
mod error;
mod extract;
pub mod model;

pub use data::{ImageStore, LocalStore, NoStore};
pub use error::{GlanceError, GlanceResult};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_store::Store;

/// The image service; cheap to clone.
#[derive(Clone)]
pub struct ImageService(Arc<Inner>);

struct Inner {
    store: Store,
    tokens: Arc<dyn TokenValidator>,
    base_url: String,
    data: Arc<dyn ImageStore>,
    max_image_bytes: u64,
}

impl ImageService {
    /// The service over a migrated store; `tokens` validates `X-Auth-Token` (the identity
    /// service), `base_url` is the public `http://host:port` the version document points at,
    /// `data` keeps image data, `max_image_bytes` caps an upload (Glance's `image_size_cap`).
    pub fn new(
        store: Store,
        tokens: Arc<dyn TokenValidator>,
        base_url: &str,
        data: Arc<dyn ImageStore>,
        max_image_bytes: u64,
    ) -> ImageService {
        ImageService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            data,
            max_image_bytes,
        }))
    }

    /// Recovers from a crash of the process that owned the database: uploads cut off mid-way
    /// end `killed` and their temp files are removed; so do stages cut off mid-way and
    /// imports that were running (their staged data is removed, and staged data whose image is
    /// no longer `uploading`). Call once at start, before serving, and only where this process
    /// is the only writer (`strata up`).
    pub async fn recover(&self) -> strata_core::Result<()> {
        let imports = api::import::recover(self).await?;
        if imports.images > 0 || imports.staged > 0 {
            tracing::info!(
                images = imports.images,
                staged = imports.staged,
                "recovered stages and imports interrupted by a crash"
            );
        }
        let reset =
            db::kill_interrupted_uploads(&self.0.store, strata_core::time::now_micros()).await?;
        let swept =
            self.0.data.sweep().await.map_err(|e| {
                strata_core::Error::internal(format!("sweeping the image store: {e}"))
            })?;
        if !reset.is_empty() || swept > 0 {
            tracing::info!(
                images = reset.len(),
                temp_files = swept,
                "recovered uploads interrupted by a crash"
            );
        }
        Ok(())
    }

    /// Where image data is kept.
    pub fn data(&self) -> &dyn ImageStore {
        self.0.data.as_ref()
    }

    pub(crate) fn max_image_bytes(&self) -> u64 {
        self.0.max_image_bytes
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn tokens(&self) -> &dyn TokenValidator {
        self.0.tokens.as_ref()
    }

    /// `<base>/image`, the catalog endpoint.
    pub fn root_url(&self) -> String {
        format!("{}/image", self.0.base_url)
    }

    /// The routes, to be nested under `/image`.
    pub fn router(&self) -> axum::Router {
        api::router().with_state(self.clone())
    }
}
