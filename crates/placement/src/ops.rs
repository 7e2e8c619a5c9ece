//! The writes of the placement service and the reads that need the store's knowledge of names.
//! Every write is one [`Store::write_or_refuse`](strata_store::Store::write_or_refuse): the
//! checks (generations, capacity, "in use", existence) are made inside it, and a failed check
//! refuses the whole write. The store serialises writers on its revision counter, so what a
//! check read is still true when the write commits — which is what makes claims atomic across
//! tasks and across server processes sharing PostgreSQL.

use crate::candidates::{allocation_candidates, Candidate, Snapshot};
use crate::db;
use crate::error::{codes, PlacementError, PlacementResult};
use crate::model::{
    is_standard_class, is_standard_trait, AllocationFault, Claim, Consumer, ConsumerGeneration,
    Inventory, Provider,
};
use crate::query::CandidateRequest;
use crate::PlacementService;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use strata_core::time::now_micros;
use strata_store::{Op, Tx, TxFuture};

/// Placement's `incomplete_consumer_project_id`/`user_id`: the owner of consumers written
/// before 1.8 without one.
pub const INCOMPLETE_CONSUMER: &str = "00000000-0000-0000-0000-000000000000";

/// One consumer's part of an allocation write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerClaim {
    pub consumer: String,
    pub claim: Claim,
    pub expected: ConsumerGeneration,
}

/// Returns early with `Ok(Err(e))`: the write refuses with `e`.
macro_rules! refuse {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

type Refusable<T> = strata_core::Result<PlacementResult<T>>;

/// A connection checked out of the pool.
pub(crate) type PoolConnection = strata_store::sqlx::pool::PoolConnection<strata_store::sqlx::Any>;

/// The providers' copy [`PlacementService::snapshot`] keeps.
pub struct CachedSnapshot {
    /// The change-log revision the copy is up to date with.
    revision: i64,
    /// When it was read in full.
    loaded: std::time::Instant,
    snap: Arc<Snapshot>,
}

/// The kept snapshot is read again in full at least this often.
pub const SNAPSHOT_FULL_RELOAD: std::time::Duration = std::time::Duration::from_secs(60);
/// More changed providers than this since the last use and the snapshot is read in full.
pub const SNAPSHOT_MAX_DELTA: usize = 2_000;
const CHANGE_PAGE: i64 = 1_000;

impl PlacementService {
    /// Runs a write that may refuse; the refusal reaches the caller, nothing is written.
    async fn write<T, F>(&self, f: F) -> PlacementResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnMut(&'t mut Tx) -> TxFuture<'t, PlacementResult<T>>,
    {
        self.store().write_or_refuse(f).await?
    }

    /// A pooled connection for reads.
    pub(crate) async fn conn(&self) -> PlacementResult<PoolConnection> {
        self.store()
            .pool()
            .acquire()
            .await
            .map_err(|e| strata_store::from_sqlx(e).into())
    }

    /// Whether `rc` is a standard or an existing custom resource class.
    pub async fn class_exists(&self, rc: &str) -> PlacementResult<bool> {
        if is_standard_class(rc) {
            return Ok(true);
        }
        let mut c = self.conn().await?;
        Ok(db::custom_class_exists(&mut c, rc).await?)
    }

    /// The names among `traits` that are neither standard nor existing custom traits.
    pub async fn unknown_traits<'a>(
        &self,
        traits: impl IntoIterator<Item = &'a String>,
    ) -> PlacementResult<Vec<String>> {
        let mut c = self.conn().await?;
        let mut out = Vec::new();
        for t in traits {
            if !is_standard_trait(t) && !db::custom_trait_exists(&mut c, t).await? {
                out.push(t.clone());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// 400 `No such trait(s): …` unless every trait exists.
    pub async fn require_traits<'a>(
        &self,
        traits: impl IntoIterator<Item = &'a String>,
    ) -> PlacementResult<()> {
        let unknown = self.unknown_traits(traits).await?;
        if !unknown.is_empty() {
            return Err(PlacementError::bad_request(format!(
                "No such trait(s): {}.",
                unknown.join(", ")
            )));
        }
        Ok(())
    }

    /// 400 unless every class exists (`what` prefixes the message).
    pub async fn require_classes<'a>(
        &self,
        classes: impl IntoIterator<Item = &'a String>,
        what: &str,
    ) -> PlacementResult<()> {
        for rc in classes {
            if !self.class_exists(rc).await? {
                return Err(PlacementError::bad_request(format!(
                    "{what}No such resource class {rc}."
                )));
            }
        }
        Ok(())
    }

    /// One provider, when it exists.
    pub async fn provider_get(
        &self,
        uuid: &str,
    ) -> PlacementResult<Option<crate::model::Provider>> {
        let mut c = self.conn().await?;
        Ok(db::provider_get(&mut c, uuid).await?)
    }

    /// Every provider with inventories, usages, traits and aggregates.
    ///
    /// Read once and then kept: each call reads the change log since the revision the copy
    /// is at and reloads only the providers changed since (their generation moved, or a
    /// consumer's allocations left them), so a scheduling decision among 10,000 hosts does
    /// not re-read 10,000 hosts. The copy is read again in full every
    /// [`SNAPSHOT_FULL_RELOAD`] (bounding what a PostgreSQL commit out of revision order
    /// could hide) and after a burst of more than [`SNAPSHOT_MAX_DELTA`] changed providers.
    /// Claims are checked against the database in their own transaction, so a stale copy
    /// costs a retry, never an over-commit.
    pub async fn snapshot(&self) -> PlacementResult<Arc<Snapshot>> {
        let mut g = self.snapshot_cache().lock().await;
        if let Some(c) = g.as_mut() {
            if c.loaded.elapsed() < SNAPSHOT_FULL_RELOAD {
                if let Some(changed) = self.changed_providers(c.revision).await? {
                    let (rev, touched) = changed;
                    if !touched.is_empty() {
                        let mut conn = self.conn().await?;
                        let snap = Arc::make_mut(&mut c.snap);
                        for uuid in &touched {
                            match db::provider_state(&mut conn, uuid).await? {
                                Some(p) => {
                                    snap.providers.insert(uuid.clone(), p);
                                }
                                None => {
                                    snap.providers.remove(uuid);
                                }
                            }
                        }
                    }
                    c.revision = rev;
                    return Ok(c.snap.clone());
                }
            }
        }
        // Everything committed up to `revision` is in what is read next.
        let revision = self.store().current_revision().await?;
        let mut conn = self.conn().await?;
        let snap = Arc::new(db::snapshot(&mut conn).await?);
        *g = Some(CachedSnapshot {
            revision,
            loaded: std::time::Instant::now(),
            snap: snap.clone(),
        });
        Ok(snap)
    }

    /// The newest revision and the providers changed after `after`; `None` when too many
    /// changed to be worth reloading one by one.
    async fn changed_providers(
        &self,
        after: i64,
    ) -> PlacementResult<Option<(i64, BTreeSet<String>)>> {
        let mut rev = after;
        let mut touched = BTreeSet::new();
        loop {
            let page = self.store().changes_since(rev, CHANGE_PAGE).await?;
            for ch in &page {
                rev = rev.max(ch.revision);
                if ch.kind == db::PROVIDER || ch.kind == db::USAGE {
                    touched.insert(ch.id.clone());
                }
            }
            if touched.len() > SNAPSHOT_MAX_DELTA {
                return Ok(None);
            }
            if (page.len() as i64) < CHANGE_PAGE {
                return Ok(Some((rev, touched)));
            }
        }
    }

    /// Where `req` fits, at microversion `mv` (nested providers take part from 1.29), with the
    /// snapshot the candidates were computed from (for provider summaries). Unknown classes and
    /// traits are 400s, as over HTTP.
    pub async fn allocation_candidates(
        &self,
        req: &CandidateRequest,
        mv: crate::Microversion,
    ) -> PlacementResult<(Vec<Candidate>, Arc<Snapshot>)> {
        self.require_classes(
            req.classes().iter(),
            "Invalid resource class in resources parameter: ",
        )
        .await?;
        self.require_traits(req.traits().iter()).await?;
        let snap = self.snapshot().await?;
        let found = allocation_candidates(&snap, req, mv.at_least(29));
        Ok((found, snap))
    }

    /// Replaces `consumer`'s allocations with `claim` if the consumer is at `expected`, every
    /// provider exists and every amount fits its inventory — all checked and written in one
    /// store write. An empty `claim.allocations` removes the consumer's allocations. Returns
    /// the consumer's new generation (`None` once it has no allocations).
    pub async fn claim(
        &self,
        consumer: &str,
        claim: Claim,
        expected: ConsumerGeneration,
    ) -> PlacementResult<Option<i64>> {
        let out = self
            .claim_many(vec![ConsumerClaim {
                consumer: consumer.to_string(),
                claim,
                expected,
            }])
            .await?;
        Ok(out.into_iter().next().flatten())
    }

    /// [`PlacementService::claim`] for several consumers at once (`POST /allocations`): all
    /// or nothing. Returns each consumer's new generation in order.
    pub async fn claim_many(
        &self,
        claims: Vec<ConsumerClaim>,
    ) -> PlacementResult<Vec<Option<i64>>> {
        self.write(move |tx| {
            let claims = claims.clone();
            Box::pin(async move { apply_claims(tx, &claims).await })
        })
        .await
    }

    /// A consumer's allocations, per provider (empty when it has none).
    pub async fn consumer_allocations(
        &self,
        consumer: &str,
    ) -> PlacementResult<BTreeMap<String, crate::model::Resources>> {
        let mut c = self.conn().await?;
        Ok(db::consumer_allocations(&mut c, consumer).await?)
    }

    /// `DELETE /allocations/{consumer}`: 404 when the consumer has none.
    pub async fn allocations_delete(&self, consumer: &str) -> PlacementResult<()> {
        let consumer = consumer.to_string();
        self.write(move |tx| {
            let consumer = consumer.clone();
            Box::pin(async move {
                let n = db::allocations_delete(tx, &consumer).await?;
                if n == 0 {
                    return Ok(Err(PlacementError::not_found(format!(
                        "No allocations for consumer '{consumer}'"
                    ))));
                }
                db::consumer_delete(tx, &consumer).await?;
                tx.record(db::ALLOCATION, &consumer, Op::Delete).await?;
                Ok(Ok(()))
            })
        })
        .await
    }

    // ------------------------------------------------------------ providers

    /// Creates a provider (under `parent` when given).
    pub async fn provider_create(
        &self,
        name: String,
        uuid: String,
        parent: Option<String>,
    ) -> PlacementResult<Provider> {
        self.write(move |tx| {
            let (name, uuid, parent) = (name.clone(), uuid.clone(), parent.clone());
            Box::pin(async move {
                if db::provider_get(tx.conn(), &uuid).await?.is_some() {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Conflicting resource provider uuid: {uuid} already exists."
                    ))));
                }
                if db::provider_by_name(tx.conn(), &name).await?.is_some() {
                    return Ok(Err(duplicate_name(&name)));
                }
                let root = match &parent {
                    Some(p) if *p == uuid => {
                        return Ok(Err(PlacementError::bad_request(
                            "parent provider UUID cannot be same as UUID. Please modify the \
                             value of parent_provider_uuid.",
                        )))
                    }
                    Some(p) => match db::provider_get(tx.conn(), p).await? {
                        Some(pp) => pp.root_uuid,
                        None => {
                            return Ok(Err(PlacementError::bad_request(format!(
                                "parent provider UUID does not exist: {p}"
                            ))))
                        }
                    },
                    None => uuid.clone(),
                };
                let now = now_micros();
                let p = Provider {
                    uuid,
                    name,
                    generation: 0,
                    parent_uuid: parent,
                    root_uuid: root,
                    created_at: now,
                    updated_at: now,
                };
                db::provider_insert(tx, &p).await?;
                Ok(Ok(p))
            })
        })
        .await
    }

    /// Renames and/or re-parents a provider. `parent`: `None` leaves it, `Some(None)` removes
    /// it. Re-parenting an already parented provider, or un-parenting, needs `reparent` (1.37).
    pub async fn provider_update(
        &self,
        uuid: String,
        name: String,
        parent: Option<Option<String>>,
        reparent: bool,
    ) -> PlacementResult<Provider> {
        self.write(move |tx| {
            let (uuid, name, parent) = (uuid.clone(), name.clone(), parent.clone());
            Box::pin(async move {
                let Some(mut p) = db::provider_get(tx.conn(), &uuid).await? else {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                };
                if name != p.name {
                    if db::provider_by_name(tx.conn(), &name).await?.is_some() {
                        return Ok(Err(duplicate_name(&name)));
                    }
                    p.name = name;
                }
                let old_root = p.root_uuid.clone();
                if let Some(new_parent) = parent {
                    if new_parent != p.parent_uuid {
                        if p.parent_uuid.is_some() && !reparent {
                            return Ok(Err(PlacementError::bad_request(
                                "re-parenting a provider is not currently allowed.",
                            )));
                        }
                        match &new_parent {
                            None => p.root_uuid = p.uuid.clone(),
                            Some(np) => {
                                if *np == p.uuid {
                                    return Ok(Err(PlacementError::bad_request(
                                        "creating loop in the provider tree is not allowed.",
                                    )));
                                }
                                let Some(pp) = db::provider_get(tx.conn(), np).await? else {
                                    return Ok(Err(PlacementError::bad_request(format!(
                                        "parent provider UUID does not exist: {np}"
                                    ))));
                                };
                                // A new parent inside the provider's own subtree is a loop.
                                let mut cur = Some(pp.clone());
                                while let Some(c) = cur {
                                    if c.uuid == p.uuid {
                                        return Ok(Err(PlacementError::bad_request(
                                            "creating loop in the provider tree is not allowed.",
                                        )));
                                    }
                                    cur = match c.parent_uuid {
                                        Some(up) => db::provider_get(tx.conn(), &up).await?,
                                        None => None,
                                    };
                                }
                                p.root_uuid = pp.root_uuid;
                            }
                        }
                        p.parent_uuid = new_parent;
                    }
                }
                p.updated_at = now_micros().max(p.updated_at + 1);
                db::provider_update(tx, &p, &old_root).await?;
                Ok(Ok(p))
            })
        })
        .await
    }

    /// Deletes a provider: 409 while it has allocations or children.
    pub async fn provider_delete(&self, uuid: String) -> PlacementResult<()> {
        self.write(move |tx| {
            let uuid = uuid.clone();
            Box::pin(async move {
                if db::provider_get(tx.conn(), &uuid).await?.is_none() {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                }
                if db::provider_has_allocations(tx.conn(), &uuid).await? {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Unable to delete resource provider {uuid}: Resource provider has \
                         allocations."
                    ))
                    .with_code(codes::PROVIDER_IN_USE)));
                }
                if !db::children(tx.conn(), &uuid).await?.is_empty() {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Unable to delete parent resource provider {uuid}: It has child resource \
                         providers."
                    ))
                    .with_code(codes::PROVIDER_CANNOT_DELETE_PARENT)));
                }
                db::provider_delete(tx, &uuid).await?;
                Ok(Ok(()))
            })
        })
        .await
    }

    // ------------------------------------------------------------ inventories

    /// Replaces a provider's whole inventory if it is at `generation`. Classes removed while
    /// in use are 409 `placement.inventory.inuse`. Returns the new generation.
    pub async fn inventories_replace(
        &self,
        uuid: String,
        generation: i64,
        inventories: BTreeMap<String, Inventory>,
    ) -> PlacementResult<i64> {
        self.write(move |tx| {
            let (uuid, inventories) = (uuid.clone(), inventories.clone());
            Box::pin(async move {
                let gen = refuse!(
                    replace_inventories(tx, &uuid, Some(generation), &inventories, true).await?
                );
                Ok(Ok(gen))
            })
        })
        .await
    }

    /// Sets one class's inventory (`PUT …/inventories/{rc}`, or `POST …/inventories` when
    /// `create`, which refuses an existing class) if the provider is at `generation`.
    pub async fn inventory_set(
        &self,
        uuid: String,
        rc: String,
        generation: i64,
        inv: Inventory,
        create: bool,
    ) -> PlacementResult<i64> {
        self.write(move |tx| {
            let (uuid, rc) = (uuid.clone(), rc.clone());
            Box::pin(async move {
                let Some(p) = db::provider_get(tx.conn(), &uuid).await? else {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                };
                if p.generation != generation {
                    return Ok(Err(PlacementError::provider_generation(&uuid)));
                }
                let current = db::inventories(tx.conn(), &uuid).await?;
                if create && current.contains_key(&rc) {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Update conflict: Inventory for '{rc}' on resource provider '{uuid}' \
                         already exists."
                    ))));
                }
                if !create && !current.contains_key(&rc) {
                    return Ok(Err(PlacementError::bad_request(format!(
                        "No inventory record with resource class for resource provider \
                         {uuid}: {rc}"
                    ))));
                }
                db::inventory_put(tx, &uuid, &rc, &inv).await?;
                bump(tx, &uuid, Some(generation)).await
            })
        })
        .await
    }

    /// Deletes one class's inventory: 404 when absent, 409 while in use.
    pub async fn inventory_delete(&self, uuid: String, rc: String) -> PlacementResult<()> {
        self.write(move |tx| {
            let (uuid, rc) = (uuid.clone(), rc.clone());
            Box::pin(async move {
                if db::provider_get(tx.conn(), &uuid).await?.is_none() {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                }
                let used = db::provider_usages(tx.conn(), &uuid).await?;
                if used.get(&rc).copied().unwrap_or(0) > 0 {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Unable to delete inventory of class {rc}: Inventory for '{rc}' on \
                         resource provider '{uuid}' in use."
                    ))
                    .with_code(codes::INVENTORY_INUSE)));
                }
                if !db::inventory_delete(tx, &uuid, &rc).await? {
                    return Ok(Err(PlacementError::not_found(format!(
                        "No inventory of class {rc} found for delete"
                    ))));
                }
                refuse!(bump(tx, &uuid, None).await?);
                Ok(Ok(()))
            })
        })
        .await
    }

    /// Deletes every inventory of a provider (1.5): 409 while any is in use.
    pub async fn inventories_delete(&self, uuid: String) -> PlacementResult<()> {
        self.write(move |tx| {
            let uuid = uuid.clone();
            Box::pin(async move {
                let Some(p) = db::provider_get(tx.conn(), &uuid).await? else {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                };
                refuse!(
                    replace_inventories(tx, &uuid, Some(p.generation), &BTreeMap::new(), true)
                        .await?
                );
                Ok(Ok(()))
            })
        })
        .await
    }

    // ------------------------------------------------------------ traits and aggregates

    /// Replaces a provider's traits if it is at `generation`; `None` (DELETE) skips the check.
    pub async fn provider_traits_set(
        &self,
        uuid: String,
        generation: Option<i64>,
        traits: BTreeSet<String>,
    ) -> PlacementResult<i64> {
        self.write(move |tx| {
            let (uuid, traits) = (uuid.clone(), traits.clone());
            Box::pin(async move {
                let Some(p) = db::provider_get(tx.conn(), &uuid).await? else {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                };
                if generation.is_some_and(|g| g != p.generation) {
                    return Ok(Err(PlacementError::provider_generation(&uuid)));
                }
                db::provider_traits_set(tx, &uuid, &traits).await?;
                bump(tx, &uuid, Some(p.generation)).await
            })
        })
        .await
    }

    /// Replaces a provider's aggregates if it is at `generation` (1.19; `None` before).
    pub async fn provider_aggregates_set(
        &self,
        uuid: String,
        generation: Option<i64>,
        aggregates: BTreeSet<String>,
    ) -> PlacementResult<i64> {
        self.write(move |tx| {
            let (uuid, aggregates) = (uuid.clone(), aggregates.clone());
            Box::pin(async move {
                let Some(p) = db::provider_get(tx.conn(), &uuid).await? else {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                };
                if generation.is_some_and(|g| g != p.generation) {
                    return Ok(Err(PlacementError::provider_generation(&uuid)));
                }
                db::provider_aggregates_set(tx, &uuid, &aggregates).await?;
                bump(tx, &uuid, Some(p.generation)).await
            })
        })
        .await
    }

    /// Adds `add` to a provider's aggregates and takes `remove` from them, in one write at
    /// whatever generation the provider is (what Nova's `aggregate_add_host` and
    /// `aggregate_remove_host` do for a compute host aggregate). Idempotent: adding an
    /// aggregate the provider is in, or removing one it is not, changes nothing and keeps the
    /// generation. Returns the provider's generation.
    pub async fn provider_aggregates_update(
        &self,
        uuid: String,
        add: BTreeSet<String>,
        remove: BTreeSet<String>,
    ) -> PlacementResult<i64> {
        self.write(move |tx| {
            let (uuid, add, remove) = (uuid.clone(), add.clone(), remove.clone());
            Box::pin(async move {
                let Some(p) = db::provider_get(tx.conn(), &uuid).await? else {
                    return Ok(Err(PlacementError::provider_not_found(&uuid)));
                };
                let old = db::provider_aggregates(tx.conn(), &uuid).await?;
                let mut new: BTreeSet<String> = old.difference(&remove).cloned().collect();
                new.extend(add.iter().cloned());
                if new == old {
                    return Ok(Ok(p.generation));
                }
                db::provider_aggregates_set(tx, &uuid, &new).await?;
                bump(tx, &uuid, Some(p.generation)).await
            })
        })
        .await
    }

    /// Creates a custom trait; `false` when it existed already.
    pub async fn trait_put(&self, name: String) -> PlacementResult<bool> {
        self.write(move |tx| {
            let name = name.clone();
            Box::pin(async move {
                if db::custom_trait_exists(tx.conn(), &name).await? {
                    return Ok(Ok(false));
                }
                db::trait_insert(tx, &name).await?;
                Ok(Ok(true))
            })
        })
        .await
    }

    /// Deletes a custom trait: 404 when absent, 409 while a provider has it.
    pub async fn trait_delete(&self, name: String) -> PlacementResult<()> {
        self.write(move |tx| {
            let name = name.clone();
            Box::pin(async move {
                if !db::custom_trait_exists(tx.conn(), &name).await? {
                    return Ok(Err(PlacementError::not_found(format!(
                        "No such trait(s): {name}"
                    ))));
                }
                if db::associated_traits(tx.conn()).await?.contains(&name) {
                    return Ok(Err(PlacementError::conflict(format!(
                        "The trait {name} is in use by a resource provider."
                    ))));
                }
                db::trait_delete(tx, &name).await?;
                Ok(Ok(()))
            })
        })
        .await
    }

    // ------------------------------------------------------------ resource classes

    /// Creates a custom class; with `exists_ok` (1.7 PUT) an existing one is `Ok(false)`,
    /// else 409.
    pub async fn class_create(&self, name: String, exists_ok: bool) -> PlacementResult<bool> {
        self.write(move |tx| {
            let name = name.clone();
            Box::pin(async move {
                if db::custom_class_exists(tx.conn(), &name).await? {
                    if exists_ok {
                        return Ok(Ok(false));
                    }
                    return Ok(Err(PlacementError::conflict(format!(
                        "Conflicting resource class already exists: {name}"
                    ))
                    .with_code(codes::DUPLICATE_NAME)));
                }
                db::class_insert(tx, &name).await?;
                Ok(Ok(true))
            })
        })
        .await
    }

    /// Renames a custom class (before 1.7).
    pub async fn class_rename(&self, old: String, new: String) -> PlacementResult<()> {
        self.write(move |tx| {
            let (old, new) = (old.clone(), new.clone());
            Box::pin(async move {
                if !db::custom_class_exists(tx.conn(), &old).await? {
                    return Ok(Err(PlacementError::not_found(format!(
                        "No such resource class {old}."
                    ))));
                }
                if db::custom_class_exists(tx.conn(), &new).await? {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Resource class already exists: {new}"
                    ))
                    .with_code(codes::DUPLICATE_NAME)));
                }
                db::class_rename(tx, &old, &new).await?;
                Ok(Ok(()))
            })
        })
        .await
    }

    /// Deletes a custom class: 404 when absent, 409 while some inventory has it.
    pub async fn class_delete(&self, name: String) -> PlacementResult<()> {
        self.write(move |tx| {
            let name = name.clone();
            Box::pin(async move {
                if !db::custom_class_exists(tx.conn(), &name).await? {
                    return Ok(Err(PlacementError::not_found(format!(
                        "No such resource class {name}."
                    ))));
                }
                if db::class_in_inventory(tx.conn(), &name).await? {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Unable to delete resource class {name}. The resource class is in use \
                         in inventory."
                    ))));
                }
                db::class_delete(tx, &name).await?;
                Ok(Ok(()))
            })
        })
        .await
    }

    // ------------------------------------------------------------ reshaper

    /// `POST /reshaper` (1.30): replaces the inventories of the named providers (each at its
    /// generation) and the allocations of the named consumers in one write; inventory may be
    /// in use in between, but not once everything is applied.
    pub async fn reshape(
        &self,
        inventories: BTreeMap<String, (i64, BTreeMap<String, Inventory>)>,
        claims: Vec<ConsumerClaim>,
    ) -> PlacementResult<()> {
        self.write(move |tx| {
            let (inventories, claims) = (inventories.clone(), claims.clone());
            Box::pin(async move {
                for (uuid, (gen, invs)) in &inventories {
                    refuse!(replace_inventories(tx, uuid, Some(*gen), invs, false).await?);
                }
                refuse!(apply_claims(tx, &claims).await?);
                for uuid in inventories.keys() {
                    let invs = db::inventories(tx.conn(), uuid).await?;
                    let used = db::provider_usages(tx.conn(), uuid).await?;
                    for (rc, n) in used {
                        if n > 0 && !invs.contains_key(&rc) {
                            return Ok(Err(in_use(&rc, uuid)));
                        }
                    }
                }
                Ok(Ok(()))
            })
        })
        .await
    }
}

fn duplicate_name(name: &str) -> PlacementError {
    PlacementError::conflict(format!(
        "Conflicting resource provider name: {name} already exists."
    ))
    .with_code(codes::DUPLICATE_NAME)
}

fn in_use(rc: &str, uuid: &str) -> PlacementError {
    PlacementError::conflict(format!(
        "update conflict: Inventory for '{rc}' on resource provider '{uuid}' in use."
    ))
    .with_code(codes::INVENTORY_INUSE)
}

/// Bumps a provider's generation (from `expected` when given); refuses with a generation
/// conflict when it moved.
async fn bump(tx: &mut Tx, uuid: &str, expected: Option<i64>) -> Refusable<i64> {
    match db::provider_bump(tx, uuid, expected).await? {
        Some(g) => Ok(Ok(g)),
        None => Ok(Err(PlacementError::provider_generation(uuid))),
    }
}

/// Replaces a provider's inventories; with `check_in_use`, removing a class in use refuses.
async fn replace_inventories(
    tx: &mut Tx,
    uuid: &str,
    generation: Option<i64>,
    inventories: &BTreeMap<String, Inventory>,
    check_in_use: bool,
) -> Refusable<i64> {
    let Some(p) = db::provider_get(tx.conn(), uuid).await? else {
        return Ok(Err(PlacementError::provider_not_found(uuid)));
    };
    if generation.is_some_and(|g| g != p.generation) {
        return Ok(Err(PlacementError::provider_generation(uuid)));
    }
    let current = db::inventories(tx.conn(), uuid).await?;
    if check_in_use {
        let used = db::provider_usages(tx.conn(), uuid).await?;
        let busy: Vec<&String> = current
            .keys()
            .filter(|rc| !inventories.contains_key(*rc) && used.get(*rc).copied().unwrap_or(0) > 0)
            .collect();
        if !busy.is_empty() {
            let names: Vec<&str> = busy.iter().map(|s| s.as_str()).collect();
            return Ok(Err(in_use(&names.join(", "), uuid)));
        }
    }
    for rc in current.keys() {
        if !inventories.contains_key(rc) {
            db::inventory_delete(tx, uuid, rc).await?;
        }
    }
    for (rc, inv) in inventories {
        if current.get(rc) != Some(inv) {
            db::inventory_put(tx, uuid, rc, inv).await?;
        }
    }
    bump(tx, uuid, Some(p.generation)).await
}

/// The heart of every claim: consumer generations, then every amount against capacity, with
/// what this same write allocated counted.
async fn apply_claims(tx: &mut Tx, claims: &[ConsumerClaim]) -> Refusable<Vec<Option<i64>>> {
    let mut existing: Vec<Option<Consumer>> = Vec::with_capacity(claims.len());
    for cc in claims {
        let current = db::consumer_get(tx.conn(), &cc.consumer).await?;
        let conflict = |want: String, got: String| {
            PlacementError::conflict(format!(
                "consumer generation conflict - expected {want} but got {got}"
            ))
            .with_code(codes::CONCURRENT_UPDATE)
        };
        match (cc.expected, &current) {
            (ConsumerGeneration::Unchecked, _) | (ConsumerGeneration::New, None) => {}
            (ConsumerGeneration::New, Some(c)) => {
                return Ok(Err(conflict("null".into(), c.generation.to_string())))
            }
            (ConsumerGeneration::Is(g), None) => {
                return Ok(Err(conflict(g.to_string(), "None".into())))
            }
            (ConsumerGeneration::Is(g), Some(c)) if c.generation != g => {
                return Ok(Err(conflict(g.to_string(), c.generation.to_string())))
            }
            _ => {}
        }
        db::allocations_delete(tx, &cc.consumer).await?;
        existing.push(current);
    }
    let mut bumped: BTreeSet<String> = BTreeSet::new();
    let mut inventories: BTreeMap<String, BTreeMap<String, Inventory>> = BTreeMap::new();
    for cc in claims {
        for (rp, resources) in &cc.claim.allocations {
            if !inventories.contains_key(rp) {
                if db::provider_get(tx.conn(), rp).await?.is_none() {
                    return Ok(Err(PlacementError::bad_request(format!(
                        "Allocation for resource provider '{rp}' that does not exist."
                    ))));
                }
                inventories.insert(rp.clone(), db::inventories(tx.conn(), rp).await?);
            }
            let invs = &inventories[rp];
            let used = db::provider_usages(tx.conn(), rp).await?;
            for (rc, amount) in resources {
                let Some(inv) = invs.get(rc) else {
                    return Ok(Err(PlacementError::conflict(format!(
                        "Unable to allocate inventory: Inventory for '{rc}' on resource provider \
                         '{rp}' invalid."
                    ))));
                };
                let used = used.get(rc).copied().unwrap_or(0);
                if let Err(fault) = inv.check(used, *amount) {
                    let why = match fault {
                        AllocationFault::Capacity => "exceed the capacity",
                        AllocationFault::Constraints => "violate inventory constraints",
                    };
                    return Ok(Err(PlacementError::conflict(format!(
                        "Unable to allocate inventory: Unable to create allocation for '{rc}' on \
                         resource provider '{rp}'. The requested amount would {why}."
                    ))));
                }
                db::allocation_insert(tx, &cc.consumer, rp, rc, *amount).await?;
            }
            if bumped.insert(rp.clone()) {
                refuse!(bump(tx, rp, None).await?);
            }
        }
    }
    let mut out = Vec::with_capacity(claims.len());
    for (cc, current) in claims.iter().zip(existing) {
        let has = cc.claim.allocations.values().any(|r| !r.is_empty());
        if !has {
            if current.is_some() {
                db::consumer_delete(tx, &cc.consumer).await?;
            }
            tx.record(db::ALLOCATION, &cc.consumer, Op::Delete).await?;
            out.push(None);
            continue;
        }
        let exists = current.is_some();
        let c = Consumer {
            uuid: cc.consumer.clone(),
            project_id: cc.claim.project_id.clone(),
            user_id: cc.claim.user_id.clone(),
            consumer_type: cc
                .claim
                .consumer_type
                .clone()
                .or_else(|| current.as_ref().and_then(|c| c.consumer_type.clone())),
            generation: current.as_ref().map(|c| c.generation + 1).unwrap_or(1),
        };
        db::consumer_save(tx, &c, exists).await?;
        tx.record(
            db::ALLOCATION,
            &cc.consumer,
            if exists { Op::Update } else { Op::Create },
        )
        .await?;
        out.push(Some(c.generation));
    }
    Ok(Ok(out))
}
