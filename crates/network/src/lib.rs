//! Neutron v2.0, wire-compatible: version discovery, the extension list, and the networking
//! resources with Neutron's attributes, defaults, filters, `fields`, sorting and pagination,
//! standard attributes (`revision_number`, timestamps, tags, `description`) and quotas.
//!
//! Rooms: `api/` holds the routes and views (one file per resource, `list` for the shared list
//! semantics), `db` the queries over resource documents and the allocation tables whose unique
//! keys make addresses, MACs and segments impossible to hand out twice, `quota` the per-project
//! limits checked inside the write that consumes them, `extract` the auth and body
//! extractors, `error` Neutron's error bodies.
//!
//! Packets are not this crate's job: a data-plane driver (Linux bridge / OVN, a later issue)
//! will watch the change log (`network.*` kinds) and realise what is recorded here.

pub mod api;
pub mod db;
mod error;
mod extract;
pub mod ipam;
pub mod quota;

pub use error::{NeutronError, NeutronResult};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_core::config::NetworkConfig;
use strata_store::Store;

/// The network service; cheap to clone.
#[derive(Clone)]
pub struct NetworkService(Arc<Inner>);

struct Inner {
    store: Store,
    tokens: Arc<dyn TokenValidator>,
    base_url: String,
    cfg: NetworkConfig,
}

impl NetworkService {
    /// The service over a migrated store.
    pub fn new(
        store: Store,
        tokens: Arc<dyn TokenValidator>,
        base_url: &str,
        cfg: NetworkConfig,
    ) -> NetworkService {
        NetworkService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            cfg,
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn tokens(&self) -> &dyn TokenValidator {
        self.0.tokens.as_ref()
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.0.cfg
    }

    /// `<base>/network`, the catalog endpoint.
    pub fn root_url(&self) -> String {
        format!("{}/network", self.0.base_url)
    }

    /// The routes, to be nested under `/network`.
    pub fn router(&self) -> axum::Router {
        api::router().with_state(self.clone())
    }
}
