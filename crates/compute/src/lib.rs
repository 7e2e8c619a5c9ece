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
pub mod api;
pub mod db;
mod error;
mod extract;
pub mod hosts;
pub mod keys;
pub mod model;
mod schema;
mod version;

pub use error::{NovaError, NovaResult};
pub use version::{Microversion, MAX_VERSION, MIN_VERSION};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_store::Store;

/// Settings of the compute service. Quota defaults are Nova's `[quota]` defaults (-1 is
/// unlimited); they apply where neither a project (or user) override nor the `default` quota
/// class says otherwise.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    /// The availability zone compute hosts land in (Nova's `default_availability_zone`).
    pub availability_zone: String,
    /// Whether to create the DevStack flavors at the first start.
    pub seed_flavors: bool,
    pub quota_instances: i64,
    pub quota_cores: i64,
    pub quota_ram: i64,
    pub quota_metadata_items: i64,
    pub quota_injected_files: i64,
    pub quota_injected_file_content_bytes: i64,
    pub quota_injected_file_path_length: i64,
    pub quota_key_pairs: i64,
    pub quota_server_groups: i64,
    pub quota_server_group_members: i64,
    /// The nova-network era quotas only shown below 2.36 (Nova keeps their defaults).
    pub quota_floating_ips: i64,
    pub quota_fixed_ips: i64,
    pub quota_security_groups: i64,
    pub quota_security_group_rules: i64,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            availability_zone: "nova".into(),
            seed_flavors: true,
            quota_instances: 10,
            quota_cores: 20,
            quota_ram: 51200,
            quota_metadata_items: 128,
            quota_injected_files: 5,
            quota_injected_file_content_bytes: 10240,
            quota_injected_file_path_length: 255,
            quota_key_pairs: 100,
            quota_server_groups: 10,
            quota_server_group_members: 10,
            quota_floating_ips: 10,
            quota_fixed_ips: -1,
            quota_security_groups: 10,
            quota_security_group_rules: 20,
        }
    }
}

impl ComputeConfig {
    /// The configured default for a quota resource (`None` for an unknown name).
    pub fn quota_default(&self, resource: &str) -> Option<i64> {
        Some(match resource {
            "instances" => self.quota_instances,
            "cores" => self.quota_cores,
            "ram" => self.quota_ram,
            "metadata_items" => self.quota_metadata_items,
            "injected_files" => self.quota_injected_files,
            "injected_file_content_bytes" => self.quota_injected_file_content_bytes,
            "injected_file_path_bytes" => self.quota_injected_file_path_length,
            "key_pairs" => self.quota_key_pairs,
            "server_groups" => self.quota_server_groups,
            "server_group_members" => self.quota_server_group_members,
            "floating_ips" => self.quota_floating_ips,
            "fixed_ips" => self.quota_fixed_ips,
            "security_groups" => self.quota_security_groups,
            "security_group_rules" => self.quota_security_group_rules,
            _ => return None,
        })
    }
}

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
        }))
    }

    /// The service with placement (in process) for hosts' providers and scheduling.
    pub fn with_placement(self, placement: strata_placement::PlacementService) -> ComputeService {
        let inner = Arc::try_unwrap(self.0).unwrap_or_else(|a| Inner {
            store: a.store.clone(),
            tokens: a.tokens.clone(),
            base_url: a.base_url.clone(),
            cfg: a.cfg.clone(),
            placement: a.placement.clone(),
        });
        ComputeService(Arc::new(Inner {
            placement: Some(placement),
            ..inner
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
