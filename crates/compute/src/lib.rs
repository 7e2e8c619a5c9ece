//! Nova v2.1, wire-compatible, first increment: version discovery and microversions (2.1 to
//! [`MAX_VERSION`]), flavors with extra specs and access lists, keypairs (imported or
//! generated), availability zones, limits, quota sets and quota class sets. Servers, server
//! groups and the server lifecycle controller come next and will share these rooms.
//!
//! Rooms: `api/` holds the routes and wire views (one file per resource), `model` the records
//! and Nova's rules (flavor fields, keypair names, extra-spec validation, quota resources per
//! microversion), `keys` the key material (SSH and x509 fingerprints, Ed25519 generation),
//! `db` the queries (every mutation in one store write recorded as `compute.<kind>`),
//! `extract` the auth, microversion and body extractors, `schema` the JSON-schema-like body
//! checks worded as Nova's validator words them, `error` Nova's fault bodies, `version` the
//! microversion middleware and the `/v2.1/{project_id}` prefix handling.
//!
//! Quotas are counted inside the write that consumes them (a keypair's insert counts the
//! user's keypairs in the same transaction), so two replicas never both take the last slot.

pub mod agent;
pub mod aggregates;
pub mod api;
pub mod controller;
pub mod db;
mod error;
mod extract;
pub mod hosts;
pub mod keys;
mod live;
pub mod model;
pub mod moves;
mod schema;
pub mod server;
pub mod server_db;
pub mod snapshot;
mod version;
pub mod volumes;

pub use error::{NovaError, NovaResult};
pub use version::{Microversion, MAX_VERSION, MIN_VERSION};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_store::Store;

pub use strata_core::config::ComputeConfig;

/// The compute service; cheap to clone.
#[derive(Clone)]
pub struct ComputeService(Arc<Inner>);

struct Inner {
    store: Store,
    tokens: Arc<dyn TokenValidator>,
    base_url: String,
    cfg: ComputeConfig,
    /// Placement, in process: hosts' providers and inventories, and scheduling.
    placement: Option<strata_placement::PlacementService>,
    peers: Peers,
    /// In-memory wake-ups and heartbeat batching ([`live`]).
    live: Arc<live::Live>,
}

/// The other services compute calls in process, as their routers (the calls go through their
/// own validation and policy, as Nova's calls to Neutron, Glance and Cinder go over HTTP).
#[derive(Clone, Default)]
pub struct Peers {
    /// Neutron's routes (`/v2.0/...`).
    pub network: Option<axum::Router>,
    /// Glance's routes (`/v2/...`).
    pub image: Option<axum::Router>,
    /// Cinder's routes (`/v3/...`).
    pub volume: Option<axum::Router>,
}

impl ComputeService {
    /// The service over a migrated store.
    pub fn new(
        store: Store,
        tokens: Arc<dyn TokenValidator>,
        base_url: &str,
        cfg: ComputeConfig,
    ) -> ComputeService {
        ComputeService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            cfg,
            placement: None,
            peers: Peers::default(),
            live: Default::default(),
        }))
    }

    fn unwrap(self) -> Inner {
        Arc::try_unwrap(self.0).unwrap_or_else(|a| Inner {
            store: a.store.clone(),
            tokens: a.tokens.clone(),
            base_url: a.base_url.clone(),
            cfg: a.cfg.clone(),
            placement: a.placement.clone(),
            peers: a.peers.clone(),
            live: a.live.clone(),
        })
    }

    /// The service with placement (in process) for hosts' providers and scheduling.
    pub fn with_placement(self, placement: strata_placement::PlacementService) -> ComputeService {
        ComputeService(Arc::new(Inner {
            placement: Some(placement),
            ..self.unwrap()
        }))
    }

    /// The service with the network, image and volume services it calls.
    pub fn with_peers(self, peers: Peers) -> ComputeService {
        ComputeService(Arc::new(Inner {
            peers,
            ..self.unwrap()
        }))
    }

    /// Placement, when configured.
    pub fn placement(&self) -> Option<&strata_placement::PlacementService> {
        self.0.placement.as_ref()
    }

    /// Creates the DevStack flavors the first time a store is initialised (when
    /// [`ComputeConfig::seed_flavors`] is set). Idempotent: a marker row written in the same
    /// transaction means later starts (and other replicas) leave flavors alone, so a seeded
    /// flavor an operator deleted stays deleted.
    pub async fn init(&self) -> strata_core::Result<()> {
        if self.0.cfg.seed_flavors {
            db::seed_flavors(&self.0.store, &model::devstack_flavors()).await?;
        }
        Ok(())
    }

    /// The in-memory state, its follower started.
    pub(crate) fn live(&self) -> &Arc<live::Live> {
        live::ensure_started(&self.0.live, &self.0.store);
        &self.0.live
    }

    /// The store the service writes to.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn tokens(&self) -> &dyn TokenValidator {
        self.0.tokens.as_ref()
    }

    /// The service's settings.
    pub fn config(&self) -> &ComputeConfig {
        &self.0.cfg
    }

    /// Whether a compute service is up: a heartbeat within the configured
    /// `service_down_time_s`, and not forced down.
    pub fn service_up(&self, s: &hosts::Service, now: i64) -> bool {
        s.is_up_within(now, self.0.cfg.service_down_time_s.max(1) * 1_000_000)
    }

    /// `<base>/compute`, the service root.
    pub fn root_url(&self) -> String {
        format!("{}/compute", self.0.base_url)
    }

    /// The routes, to be nested under `/compute`.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// The node agents' routes, to be nested under `/agent`.
    pub fn agent_router(&self) -> axum::Router {
        agent::router(self.clone())
    }
}
