//! Cinder v3, wire-compatible: version discovery and microversions; volumes (blank, from an
//! image, a volume or a snapshot), their metadata and actions; snapshots; volume types with
//! extra specs and access lists; attachments (the legacy `os-attach` family and the 3.27
//! attachments API); quotas enforced inside the write that consumes them; limits, availability
//! zones, extensions and services.
//!
//! Rooms: `api/` holds the routes and wire views (one file per resource), `model` the records
//! and Cinder's rules, `db` the queries, `backend` where the data lives ([`BlockBackend`],
//! implemented by [`LocalBackend`] on files), `work` the asynchronous steps (creating data,
//! uploads to images, deletes) and crash recovery, `images` the bridge to the image service,
//! `extract` the auth, microversion and body extractors, `error` Cinder's error bodies.
//!
//! Asynchronous steps run as tasks in the serving process and persist every state change, so
//! a crash leaves rows in a transitional status that [`VolumeService::recover`] resolves at
//! the next start (to `error` or back to where they were), after which the backend is swept of
//! data no row owns.

pub mod api;
pub mod backend;
pub mod db;
mod error;
mod extract;
pub mod images;
pub mod model;
mod version;
pub mod work;

pub use backend::{BlockBackend, ImageData, LocalBackend};
pub use error::{CinderError, CinderResult};
pub use images::ImageBridge;
pub use version::{Microversion, MAX_VERSION, MIN_VERSION};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_core::config::VolumeConfig;
use strata_store::Store;

/// The volume service; cheap to clone.
#[derive(Clone)]
pub struct VolumeService(Arc<Inner>);

struct Inner {
    store: Store,
    tokens: Arc<dyn TokenValidator>,
    base_url: String,
    backend: Option<Arc<dyn BlockBackend>>,
    images: Arc<dyn ImageBridge>,
    cfg: VolumeConfig,
    /// Backend operations that only add pieces hold it shared; those that move a volume's
    /// handle (snapshots, clones, extends) and the sweep hold it exclusively.
    backend_lock: tokio::sync::RwLock<()>,
    /// Background tasks, so tests and shutdown can wait for them.
    tasks: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl VolumeService {
    /// The service over a migrated store. `backend` is `None` when no data directory is
    /// configured (volume data is then refused).
    pub fn new(
        store: Store,
        tokens: Arc<dyn TokenValidator>,
        base_url: &str,
        backend: Option<Arc<dyn BlockBackend>>,
        images: Arc<dyn ImageBridge>,
        cfg: VolumeConfig,
    ) -> VolumeService {
        VolumeService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            backend,
            images,
            cfg,
            backend_lock: tokio::sync::RwLock::new(()),
            tasks: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
        }))
    }

    /// Creates the default volume type when missing. Call once at start.
    pub async fn init(&self) -> strata_core::Result<()> {
        work::ensure_default_type(self).await
    }

    /// Resolves what a crash of the process that owned the database interrupted, then sweeps
    /// the backend. Call once at start, before serving, and only where this process is the only
    /// writer (`strata up`).
    pub async fn recover(&self) -> strata_core::Result<()> {
        work::recover(self).await
    }

    /// Waits until every background step started so far has finished.
    pub async fn idle(&self) {
        let mut tasks = self.0.tasks.lock().await;
        while tasks.join_next().await.is_some() {}
    }

    pub(crate) async fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut tasks = self.0.tasks.lock().await;
        // Reap finished ones so the set does not grow.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut);
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn tokens(&self) -> &dyn TokenValidator {
        self.0.tokens.as_ref()
    }

    pub(crate) fn backend(&self) -> Option<&Arc<dyn BlockBackend>> {
        self.0.backend.as_ref()
    }

    pub(crate) fn images(&self) -> &dyn ImageBridge {
        self.0.images.as_ref()
    }

    pub(crate) fn backend_lock(&self) -> &tokio::sync::RwLock<()> {
        &self.0.backend_lock
    }

    pub fn config(&self) -> &VolumeConfig {
        &self.0.cfg
    }

    /// `host@backend#pool`, as `os-vol-host-attr:host` shows it.
    pub fn host_string(&self) -> String {
        let backend = self.backend().map(|b| b.name()).unwrap_or("none");
        format!("{}@{backend}#{backend}", self.0.cfg.host)
    }

    /// `<base>/volume`, the service root.
    pub fn root_url(&self) -> String {
        format!("{}/volume", self.0.base_url)
    }

    /// The routes, to be nested under `/volume`.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone()).with_state(self.clone())
    }
}
