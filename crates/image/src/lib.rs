//! Glance v2, wire-compatible: version discovery, image records (create, list with Glance's
//! filters, sorting and paging, show, JSON-patch update, delete), image tags, and the image
//! schemas clients fetch. Image data (upload, download, import, stores) is not served yet: new
//! images stay `queued` with no size or checksum.
//!
//! Rooms: `api/` holds the routes and wire views, `model` the image record and Glance's rules
//! (formats, visibility, reserved attributes), `db` the queries, `extract` the auth and body
//! extractors, `error` Glance's (webob's) error bodies.
//!
//! Tokens are validated by the identity service through [`strata_api::TokenValidator`], in
//! memory: this crate never reads identity tables.

pub mod api;
pub mod db;
mod error;
mod extract;
pub mod model;

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
}

impl ImageService {
    /// The service over a migrated store; `tokens` validates `X-Auth-Token` (the identity
    /// service), `base_url` is the public `http://host:port` the version document points at.
    pub fn new(store: Store, tokens: Arc<dyn TokenValidator>, base_url: &str) -> ImageService {
        ImageService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
        }))
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
