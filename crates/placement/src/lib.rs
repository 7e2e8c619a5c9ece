//! The OpenStack Placement API, wire-compatible from 1.0 to 1.39: resource providers in trees,
//! inventories, resource classes, traits, aggregates, allocations with consumer generations,
//! usages, allocation candidates (granular groups, forbidden traits and aggregates,
//! `in_tree`, `root_required`, `same_subtree`, any-of traits) and the reshaper.
//!
//! Rooms: `api/` holds the routes and wire views (one file per resource), `model` the records
//! and Placement's rules (capacity, names), `query` the parsing of filters and request groups,
//! `candidates` the allocation-candidate search over an in-memory [`Snapshot`], `db` the
//! queries, `ops` the writes (every one a single store write that checks generations and
//! capacity before it lands), `extract` the auth, microversion and body extractors, `schema`
//! the JSON-schema-like body checks, `error` Placement's error bodies, `version` the
//! microversion middleware.
//!
//! In-process callers (the scheduler) use the same paths as the HTTP handlers:
//! [`PlacementService::allocation_candidates`] to find where a request fits and
//! [`PlacementService::claim`] (or [`PlacementService::claim_many`]) to take the resources
//! atomically. A claim re-checks capacity inside the write, so two schedulers (or two server
//! processes on one PostgreSQL) racing for the last room never both win.

pub mod api;
pub mod candidates;
pub mod db;
mod error;
mod extract;
pub mod model;
pub mod ops;
pub mod query;
pub mod scheduler;
mod schema;
mod version;

pub use candidates::{Candidate, ProviderState, Snapshot};
pub use error::{codes, PlacementError, PlacementResult};
pub use model::{Claim, Consumer, ConsumerGeneration, Inventory, Provider, Resources};
pub use ops::ConsumerClaim;
pub use query::{AggregateFilter, CandidateRequest, GroupPolicy, RequestGroup, TraitFilter};
pub use version::{Microversion, MAX_VERSION, MIN_VERSION};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_store::Store;

/// The placement service; cheap to clone.
#[derive(Clone)]
pub struct PlacementService(Arc<Inner>);

struct Inner {
    store: Store,
    tokens: Arc<dyn TokenValidator>,
    base_url: String,
    /// Every provider as last read, brought up to date from the change log on use.
    snapshot: tokio::sync::Mutex<Option<ops::CachedSnapshot>>,
}

impl PlacementService {
    /// The service over a migrated store.
    pub fn new(store: Store, tokens: Arc<dyn TokenValidator>, base_url: &str) -> PlacementService {
        PlacementService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            snapshot: Default::default(),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn snapshot_cache(&self) -> &tokio::sync::Mutex<Option<ops::CachedSnapshot>> {
        &self.0.snapshot
    }

    pub(crate) fn tokens(&self) -> &dyn TokenValidator {
        self.0.tokens.as_ref()
    }

    /// `<base>/placement`, the service root.
    pub fn root_url(&self) -> String {
        format!("{}/placement", self.0.base_url)
    }

    /// The routes, to be nested under `/placement`.
    ///
    /// `Location` headers are absolute URLs, as Placement's WSGI stack (webob) makes them:
    /// clients (osc-placement) fetch them through a session that would put a relative path
    /// under the endpoint a second time.
    pub fn router(&self) -> axum::Router {
        let base = self.0.base_url.clone();
        api::router()
            .with_state(self.clone())
            .layer(axum::middleware::map_response(
                move |mut resp: axum::response::Response| {
                    let base = base.clone();
                    async move {
                        let loc = resp.headers().get(http::header::LOCATION).cloned();
                        if let Some(abs) = loc
                            .as_ref()
                            .and_then(|l| l.to_str().ok())
                            .filter(|l| l.starts_with('/'))
                            .and_then(|l| http::HeaderValue::from_str(&format!("{base}{l}")).ok())
                        {
                            resp.headers_mut().insert(http::header::LOCATION, abs);
                        }
                        resp
                    }
                },
            ))
    }
}
