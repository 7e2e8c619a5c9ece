//! Keystone v3, wire-compatible: version discovery, tokens (password, token and application
//! credential methods; project, domain, system and unscoped scopes), the identity resources
//! (domains, projects, users, groups, roles, assignments), the catalog (regions, services,
//! endpoints), application credentials and OS-TRUST trusts.
//!
//! Rooms: `api/` holds the routes and wire types, `db/` the queries, `auth` the authentication
//! rules (lockout, password checks, scope resolution), `token` the signed token format and the
//! revocation model, `policy` Keystone's default rules.
//!
//! Hot path: validating a token needs no database read. The signature is checked against
//! signing keys held in memory; revocation events are held in memory; what a token resolves to
//! (user, scope, roles) is cached until any identity data changes. Every write in this process
//! refreshes those at once ([`Identity::changed`]); a background task does the same when the
//! change log shows writes by other replicas.

pub mod api;
mod auth;
mod bootstrap;
pub mod db;
mod error;
mod extract;
pub mod policy;
pub mod token;

pub use auth::Resolved;
pub use bootstrap::{Bootstrap, CatalogService};
pub use error::{KsError, KsResult};

use crate::token::{Key, Payload, Revocations, VerifyError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use strata_api::{AuthContext, AuthFailure, TokenValidator, ValidateFuture};
use strata_core::config::{Config, IdentityConfig, SecurityCompliance};
use strata_core::time::now_micros;
use strata_core::Result;
use strata_store::Store;

/// The cached catalog: as built, whether any URL is templated, OS-EP-FILTER project filters.
type CachedCatalog = (
    Arc<serde_json::Value>,
    bool,
    Arc<api::endpoint_groups::ProjectFilters>,
);

/// The identity service; cheap to clone.
#[derive(Clone)]
pub struct Identity(Arc<Inner>);

struct Inner {
    store: Store,
    cfg: IdentityConfig,
    sc: SecurityCompliance,
    base_url: String,
    keys: RwLock<Vec<Key>>,
    revocations: RwLock<Revocations>,
    resolved: RwLock<HashMap<token::ScopeKey, Arc<Resolved>>>,
    /// Tokens validated since the last identity change, by token string.
    validated: RwLock<HashMap<String, Arc<Validated>>>,
    /// The catalog, whether any endpoint URL holds a template, and the OS-EP-FILTER endpoint
    /// filters of projects.
    catalog: RwLock<Option<CachedCatalog>>,
    /// Bumped on every invalidation so a resolution that raced one is not cached.
    generation: AtomicU64,
    password_regex: Option<regex::Regex>,
}

impl Identity {
    /// Builds the service over a migrated store, making sure a signing key exists.
    pub async fn new(store: Store, config: &Config, base_url: &str) -> Result<Identity> {
        let password_regex = match config.security_compliance.password_regex.as_str() {
            "" => None,
            re => Some(regex::Regex::new(re).map_err(|e| {
                strata_core::Error::invalid(format!("security_compliance.password_regex: {e}"))
            })?),
        };
        let id = Identity(Arc::new(Inner {
            store,
            cfg: config.identity.clone(),
            sc: config.security_compliance.clone(),
            base_url: base_url.trim_end_matches('/').to_string(),
            keys: RwLock::new(Vec::new()),
            revocations: RwLock::new(Revocations::default()),
            resolved: RwLock::new(HashMap::new()),
            validated: RwLock::new(HashMap::new()),
            catalog: RwLock::new(None),
            generation: AtomicU64::new(0),
            password_regex,
        }));
        id.rotate_keys_if_due().await?;
        id.reload().await?;
        Ok(id)
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn cfg(&self) -> &IdentityConfig {
        &self.0.cfg
    }

    pub(crate) fn sc(&self) -> &SecurityCompliance {
        &self.0.sc
    }

    pub(crate) fn password_regex(&self) -> Option<&regex::Regex> {
        self.0.password_regex.as_ref()
    }

    /// The public base URL (`http://host:port`), without the `/identity` prefix.
    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    /// `<base>/identity/v3`.
    pub fn v3_url(&self) -> String {
        format!("{}/identity/v3", self.0.base_url)
    }

    /// The routes, to be nested under `/identity`.
    pub fn router(&self) -> axum::Router {
        api::router()
            .fallback(|| async {
                KsError::new(
                    http::StatusCode::NOT_FOUND,
                    "The resource could not be found.",
                )
            })
            .method_not_allowed_fallback(|| async {
                KsError::new(
                    http::StatusCode::METHOD_NOT_ALLOWED,
                    "The method is not allowed for the requested URL.",
                )
            })
            .with_state(self.clone())
    }

    async fn rotate_keys_if_due(&self) -> Result<()> {
        let interval = self.0.cfg.key_rotation_interval.max(60) as i64 * 1_000_000;
        if db::keys::rotate_if_due(&self.0.store, interval, self.0.cfg.max_active_keys).await? {
            tracing::info!("rotated the token signing key");
        }
        Ok(())
    }

    /// Reloads keys and revocation events and drops every cached resolution. Call after any
    /// identity write (the handlers do) so the change is visible to the next request.
    pub async fn changed(&self) -> Result<()> {
        self.reload().await
    }

    async fn reload(&self) -> Result<()> {
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.resolved.write().expect("lock").clear();
        self.0.validated.write().expect("lock").clear();
        *self.0.catalog.write().expect("lock") = None;
        let keys = db::keys::list_keys(&self.0.store).await?;
        let window = (self.0.cfg.token_expiration + self.0.cfg.allow_expired_window) as i64;
        let since = now_micros() - window * 1_000_000;
        let revs = db::keys::list_revocations(&self.0.store, since).await?;
        *self.0.keys.write().expect("lock") = keys;
        *self.0.revocations.write().expect("lock") = Revocations::new(revs);
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.resolved.write().expect("lock").clear();
        self.0.validated.write().expect("lock").clear();
        Ok(())
    }

    /// Runs until `shutdown` resolves: refreshes caches when the change log moves (this
    /// replica's commits wake it at once; other replicas' are found by polling), rotates
    /// signing keys when due, and prunes old revocation events.
    pub async fn run_background(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let store = self.0.store.clone();
        let mut seen = store.current_revision().await.unwrap_or(0);
        let mut rx = store.subscribe();
        let mut housekeeping = tokio::time::interval(Duration::from_secs(60));
        let mut poll = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = rx.changed() => {}
                _ = poll.tick() => {}
                _ = housekeeping.tick() => {
                    if let Err(e) = self.rotate_keys_if_due().await {
                        tracing::warn!(error = %e, "signing key rotation");
                    }
                    let window = (self.0.cfg.token_expiration + self.0.cfg.allow_expired_window) as i64;
                    let _ = db::keys::prune_revocations(&store, now_micros() - window * 1_000_000).await;
                }
            }
            match store.newer_of_kind(seen, "identity.").await {
                Ok((rev, identity_changed)) if rev > seen => {
                    seen = rev;
                    if identity_changed {
                        if let Err(e) = self.reload().await {
                            tracing::warn!(error = %e, "reloading identity caches");
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reading the change log"),
            }
        }
    }

    /// Checks a token's signature, expiry and revocation. No database read unless the token
    /// names a signing key this replica has not loaded yet.
    pub(crate) async fn verify(&self, tok: &str, allow_expired: bool) -> Option<Payload> {
        let keys = self.0.keys.read().expect("lock").clone();
        let payload = match token::verify(tok, &keys) {
            Ok(p) => p,
            Err(VerifyError::UnknownKey(_)) => {
                // Maybe another replica rotated: reload keys once.
                let fresh = db::keys::list_keys(&self.0.store).await.ok()?;
                *self.0.keys.write().expect("lock") = fresh.clone();
                token::verify(tok, &fresh).ok()?
            }
            Err(_) => return None,
        };
        let now = now_micros();
        if payload.e <= now {
            let window = self.0.cfg.allow_expired_window as i64 * 1_000_000;
            if !allow_expired || payload.e + window <= now {
                return None;
            }
        }
        Some(payload)
    }

    /// Whether a revocation event matches `p`. `project_domain` is the domain of the token's
    /// project.
    pub(crate) fn is_revoked(&self, p: &Payload, project_domain: Option<&str>) -> bool {
        self.0
            .revocations
            .read()
            .expect("lock")
            .revokes(p, project_domain)
    }

    /// Validates a token into what it stands for: signature, expiry, revocation, and a
    /// still-valid user, scope and role set. A token validated since the last identity change
    /// is answered from memory (only its expiry is checked again): any change that could
    /// affect it — a revocation, a disabled user, a role removed — empties that cache first.
    pub(crate) async fn validate_token(
        &self,
        tok: &str,
        allow_expired: bool,
    ) -> Option<Arc<Validated>> {
        if !allow_expired {
            if let Some(v) = self.0.validated.read().expect("lock").get(tok) {
                if v.payload.e > now_micros() {
                    return Some(v.clone());
                }
            }
        }
        let generation = self.0.generation.load(Ordering::SeqCst);
        let payload = self.verify(tok, allow_expired).await?;
        let resolved = self.resolve_cached(&payload).await.ok()?;
        if self.is_revoked(&payload, resolved.project_domain_id()) {
            return None;
        }
        // As Keystone, events naming a user revoke the trust-scoped tokens of trusts it is
        // the trustor of, as well as its own.
        if let Some(t) = resolved.trust.as_ref() {
            let as_trustor = Payload {
                u: t.trustor_user_id.clone(),
                ..payload.clone()
            };
            if self.is_revoked(&as_trustor, resolved.project_domain_id()) {
                return None;
            }
        }
        let v = Arc::new(Validated::new(payload, resolved));
        if !allow_expired && self.0.generation.load(Ordering::SeqCst) == generation {
            let mut map = self.0.validated.write().expect("lock");
            if map.len() >= 50_000 {
                map.clear();
            }
            map.insert(tok.to_string(), v.clone());
        }
        Some(v)
    }

    pub(crate) async fn resolve_cached(
        &self,
        p: &Payload,
    ) -> std::result::Result<Arc<Resolved>, KsError> {
        let key = token::ScopeKey {
            user: p.u.clone(),
            scope: p.s.clone(),
            app_cred: p.c.clone(),
            trust: p.t.clone(),
        };
        if let Some(r) = self.0.resolved.read().expect("lock").get(&key) {
            return Ok(r.clone());
        }
        let generation = self.0.generation.load(Ordering::SeqCst);
        let r = Arc::new(
            self.resolve(&p.u, &p.s, p.c.as_deref(), p.t.as_deref())
                .await?,
        );
        if self.0.generation.load(Ordering::SeqCst) == generation {
            let mut map = self.0.resolved.write().expect("lock");
            if map.len() > 100_000 {
                map.clear();
            }
            map.insert(key, r.clone());
        }
        Ok(r)
    }

    /// The catalog as a token scoped to `project_id` carries it, cached until a catalog
    /// change. Endpoint URLs may hold Keystone's `$(project_id)s` / `$(tenant_id)s`
    /// templates: they are filled in for project-scoped tokens, and such endpoints are left out
    /// of other tokens' catalogs, as Keystone does. A project with OS-EP-FILTER associations
    /// sees only its associated endpoints.
    pub(crate) async fn catalog(&self, project_id: Option<&str>) -> Result<Arc<serde_json::Value>> {
        let cached = self.0.catalog.read().expect("lock").clone();
        let (raw, templated, filters) = match cached {
            Some(c) => c,
            None => {
                // Built from reads that may race a change: cached only if no invalidation
                // happened meanwhile, else the next call rebuilds it.
                let generation = self.0.generation.load(Ordering::SeqCst);
                let c = Arc::new(api::catalog_view(self).await?);
                let templated = c.to_string().contains("$(");
                let filters = Arc::new(api::endpoint_groups::project_filters(self).await?);
                if self.0.generation.load(Ordering::SeqCst) == generation {
                    *self.0.catalog.write().expect("lock") =
                        Some((c.clone(), templated, filters.clone()));
                }
                (c, templated, filters)
            }
        };
        let mut catalog = raw;
        // OS-EP-FILTER: a project with endpoint associations sees only those endpoints.
        if let Some(ids) = project_id.and_then(|p| filters.get(p)) {
            catalog = Arc::new(api::endpoint_groups::filter_catalog(&catalog, ids));
        }
        if templated {
            catalog = Arc::new(api::catalog_for_project(&catalog, project_id));
        }
        Ok(catalog)
    }

    /// Authenticates `token` for another service's request.
    pub async fn authenticate(
        &self,
        tok: &str,
    ) -> std::result::Result<Arc<AuthContext>, AuthFailure> {
        let v = self
            .validate_token(tok, false)
            .await
            .ok_or(AuthFailure::Invalid)?;
        Ok(v.context())
    }
}

/// A validated token with what it resolves to, and its renderings computed once.
pub(crate) struct Validated {
    pub payload: Payload,
    pub resolved: Arc<Resolved>,
    ctx: std::sync::OnceLock<Arc<AuthContext>>,
    /// The `GET /v3/auth/tokens` body, with and without the catalog.
    bodies: [std::sync::OnceLock<bytes::Bytes>; 2],
}

impl Validated {
    fn new(payload: Payload, resolved: Arc<Resolved>) -> Self {
        Validated {
            payload,
            resolved,
            ctx: Default::default(),
            bodies: Default::default(),
        }
    }

    /// The request context of the token's holder.
    pub fn context(&self) -> Arc<AuthContext> {
        self.ctx
            .get_or_init(|| Arc::new(self.resolved.context(&self.payload)))
            .clone()
    }

    /// The serialised `{"token": …}` body.
    pub async fn body(&self, id: &Identity, with_catalog: bool) -> Result<bytes::Bytes> {
        let slot = &self.bodies[usize::from(!with_catalog)];
        if let Some(b) = slot.get() {
            return Ok(b.clone());
        }
        let catalog = if with_catalog {
            Some(id.catalog(self.resolved.project_id()).await?)
        } else {
            None
        };
        let body = serde_json::json!({"token": self.resolved.token_body(&self.payload, catalog.as_deref())});
        let bytes = bytes::Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|e| strata_core::Error::internal(format!("serialising a token: {e}")))?,
        );
        Ok(slot.get_or_init(|| bytes).clone())
    }
}

impl TokenValidator for Identity {
    fn validate<'a>(&'a self, tok: &'a str) -> ValidateFuture<'a> {
        Box::pin(self.authenticate(tok))
    }
}
