//! Ironic v1, wire-compatible: bare-metal nodes and ports, the provision state machine, the
//! conductor that drives it, and the BMC drivers (`redfish`, `ipmi`, `fake-hardware`).
//!
//! Rooms: `api/` holds the routes and views (one file per resource), `model` the records and
//! Ironic's rules (field versions, schemas, masking, which verb is legal where), `states` the
//! state machine as data, `patch` JSON Patch as Ironic takes it, `db` the queries, `conductor`
//! the reconciler and the power-state sync, `drivers/` the BMC drivers behind [`BmcDriver`],
//! `extract` the auth, microversion and body extractors, `version` microversion negotiation,
//! `error` Ironic's error bodies.
//!
//! Work that takes time follows the project's rule: a handler records intent in the node's row
//! (`provision_state = verifying`, a `target_power_state`, and a [`model::Work`] with when it
//! is due) and answers 202; the conductor — one per deployment, elected with a store lease —
//! finds due work with one indexed query, runs one idempotent step per activation, and writes
//! the outcome (or a failure count and reason, and when to try again). A process killed in the
//! middle leaves the row saying what is owed, and the next conductor resumes it.

pub mod api;
pub mod conductor;
pub mod db;
pub mod drivers;
mod error;
mod extract;
pub mod model;
pub mod patch;
pub mod states;
mod version;

pub use drivers::{BmcDriver, BmcError, Drivers};
pub use error::{IronicError, IronicResult};
pub use version::{Microversion, MAX_VERSION, MIN_VERSION};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_core::config::BaremetalConfig;
use strata_store::Store;

/// The bare-metal service; cheap to clone.
#[derive(Clone)]
pub struct BaremetalService(Arc<Inner>);

struct Inner {
    store: Store,
    tokens: Arc<dyn TokenValidator>,
    base_url: String,
    cfg: BaremetalConfig,
    drivers: Drivers,
    hostname: String,
    started_at: i64,
    /// Consecutive failed power reads per node, for the sync's maintenance rule (in memory, as
    /// Ironic keeps it).
    sync_failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Wakes the conductor loop (a handler recorded work).
    kick: tokio::sync::Notify,
}

impl BaremetalService {
    /// The service over a migrated store.
    pub fn new(
        store: Store,
        tokens: Arc<dyn TokenValidator>,
        base_url: &str,
        cfg: BaremetalConfig,
    ) -> BaremetalService {
        let hostname = if cfg.conductor_hostname.is_empty() {
            local_hostname()
        } else {
            cfg.conductor_hostname.clone()
        };
        let drivers = Drivers::new(drivers::DriverOptions {
            request_timeout: std::time::Duration::from_secs(cfg.bmc_request_timeout.max(1)),
        });
        BaremetalService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            cfg,
            drivers,
            hostname,
            started_at: strata_core::time::now_micros(),
            sync_failures: Default::default(),
            kick: tokio::sync::Notify::new(),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn tokens(&self) -> &dyn TokenValidator {
        self.0.tokens.as_ref()
    }

    pub fn config(&self) -> &BaremetalConfig {
        &self.0.cfg
    }

    /// The BMC drivers (and through them the `fake-hardware` machines' knobs).
    pub fn drivers(&self) -> &Drivers {
        &self.0.drivers
    }

    /// This conductor's host name.
    pub fn hostname(&self) -> &str {
        &self.0.hostname
    }

    pub(crate) fn started_at(&self) -> i64 {
        self.0.started_at
    }

    pub(crate) fn sync_failures(
        &self,
    ) -> &std::sync::Mutex<std::collections::HashMap<String, u32>> {
        &self.0.sync_failures
    }

    /// Wakes the conductor: a handler recorded work that is due now.
    pub(crate) fn kick(&self) {
        self.0.kick.notify_one();
    }

    pub(crate) fn kicked(&self) -> &tokio::sync::Notify {
        &self.0.kick
    }

    /// `<base>/baremetal`, the service root, which Ironic's links are relative to.
    pub fn root_url(&self) -> String {
        format!("{}/baremetal", self.0.base_url)
    }

    /// The routes, to be nested under `/baremetal`.
    pub fn router(&self) -> axum::Router {
        api::router().with_state(self.clone())
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else
/// `localhost`).
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}
