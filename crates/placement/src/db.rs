//! Queries of the placement service. Reads take a connection (a pooled one, or the write's);
//! mutations run inside [`strata_store::Store::write`] (through `write_or_refuse`, so a failed
//! check rolls everything back) and record `placement.<kind>` changes:
//! `placement.resource_provider` (the provider and its inventories, traits and aggregates),
//! `placement.allocation` (a consumer's allocations), `placement.resource_class`,
//! `placement.trait`. The store serialises writes on its revision counter, so a check made
//! inside a write (generations, capacity, "in use") still holds when the write commits.

use crate::candidates::{ProviderState, Snapshot};
use crate::model::{Consumer, Inventory, Provider, Resources};
use std::collections::{BTreeMap, BTreeSet};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, get_opt_str, sqlx, AnyRow, Op, Row, Tx};

/// A connection to read or write on.
pub type Conn = sqlx::AnyConnection;

pub const PROVIDER: &str = "placement.resource_provider";
pub const ALLOCATION: &str = "placement.allocation";
pub const RESOURCE_CLASS: &str = "placement.resource_class";
pub const TRAIT: &str = "placement.trait";
/// A provider whose usage changed without its generation moving (a consumer's allocations
/// removed): change-log entries only, for caches of usage.
pub const USAGE: &str = "placement.usage";

fn text(r: &AnyRow, col: &str) -> Result<String> {
    r.try_get::<String, _>(col).map_err(from_sqlx)
}
fn int(r: &AnyRow, col: &str) -> Result<i64> {
    r.try_get::<i64, _>(col).map_err(from_sqlx)
}

// ---------------------------------------------------------------- providers

const PCOLS: &str = "uuid, name, generation, parent_uuid, root_uuid, created_at, updated_at";

fn provider(r: &AnyRow) -> Result<Provider> {
    Ok(Provider {
        uuid: text(r, "uuid")?,
        name: text(r, "name")?,
        generation: int(r, "generation")?,
        parent_uuid: get_opt_str(r, "parent_uuid"),
        root_uuid: text(r, "root_uuid")?,
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
    })
}

pub async fn provider_get(c: &mut Conn, uuid: &str) -> Result<Option<Provider>> {
    let r = sqlx::query(&format!(
        "SELECT {PCOLS} FROM placement_provider WHERE uuid = $1"
    ))
    .bind(uuid)
    .fetch_optional(&mut *c)
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(provider).transpose()
}

pub async fn provider_by_name(c: &mut Conn, name: &str) -> Result<Option<Provider>> {
    let r = sqlx::query(&format!(
        "SELECT {PCOLS} FROM placement_provider WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut *c)
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(provider).transpose()
}

pub async fn providers(c: &mut Conn) -> Result<Vec<Provider>> {
    let rows = sqlx::query(&format!(
        "SELECT {PCOLS} FROM placement_provider ORDER BY created_at, uuid"
    ))
    .fetch_all(&mut *c)
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(provider).collect()
}

pub async fn children(c: &mut Conn, uuid: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT uuid FROM placement_provider WHERE parent_uuid = $1")
        .bind(uuid)
        .fetch_all(&mut *c)
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "uuid")).collect()
}

pub async fn provider_insert(tx: &mut Tx, p: &Provider) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO placement_provider ({PCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&p.uuid)
    .bind(&p.name)
    .bind(p.generation)
    .bind(p.parent_uuid.clone())
    .bind(&p.root_uuid)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(PROVIDER, &p.uuid, Op::Create).await
}

/// Saves name, parent and root (and the root of every descendant when it changed).
pub async fn provider_update(tx: &mut Tx, p: &Provider, old_root: &str) -> Result<()> {
    sqlx::query(
        "UPDATE placement_provider SET name = $2, parent_uuid = $3, root_uuid = $4, \
         updated_at = $5 WHERE uuid = $1",
    )
    .bind(&p.uuid)
    .bind(&p.name)
    .bind(p.parent_uuid.clone())
    .bind(&p.root_uuid)
    .bind(p.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    if old_root != p.root_uuid {
        // Descendants follow: walk down from the provider.
        let mut frontier = vec![p.uuid.clone()];
        while let Some(u) = frontier.pop() {
            for child in children(tx.conn(), &u).await? {
                sqlx::query("UPDATE placement_provider SET root_uuid = $2 WHERE uuid = $1")
                    .bind(&child)
                    .bind(&p.root_uuid)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                tx.record(PROVIDER, &child, Op::Update).await?;
                frontier.push(child);
            }
        }
    }
    tx.record(PROVIDER, &p.uuid, Op::Update).await
}

/// Bumps a provider's generation when it is `expected` (any when `None`). Returns the new
/// generation, or `None` when the provider is gone or at another generation.
pub async fn provider_bump(tx: &mut Tx, uuid: &str, expected: Option<i64>) -> Result<Option<i64>> {
    let now = now_micros();
    let row = match expected {
        Some(g) => {
            sqlx::query(
                "UPDATE placement_provider SET generation = generation + 1, updated_at = $3 \
             WHERE uuid = $1 AND generation = $2 RETURNING generation",
            )
            .bind(uuid)
            .bind(g)
            .bind(now)
            .fetch_optional(tx.conn())
            .await
        }
        None => {
            sqlx::query(
                "UPDATE placement_provider SET generation = generation + 1, updated_at = $2 \
             WHERE uuid = $1 RETURNING generation",
            )
            .bind(uuid)
            .bind(now)
            .fetch_optional(tx.conn())
            .await
        }
    }
    .map_err(from_sqlx)?;
    let generation = row.as_ref().map(|r| int(r, "generation")).transpose()?;
    if generation.is_some() {
        tx.record(PROVIDER, uuid, Op::Update).await?;
    }
    Ok(generation)
}

/// Deletes a provider with its inventories, traits and aggregates.
pub async fn provider_delete(tx: &mut Tx, uuid: &str) -> Result<bool> {
    for table in [
        "placement_inventory",
        "placement_provider_trait",
        "placement_provider_aggregate",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE provider_uuid = $1"))
            .bind(uuid)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
    }
    let n = sqlx::query("DELETE FROM placement_provider WHERE uuid = $1")
        .bind(uuid)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(PROVIDER, uuid, Op::Delete).await?;
    }
    Ok(n > 0)
}

// ---------------------------------------------------------------- inventories

fn inventory(r: &AnyRow) -> Result<Inventory> {
    let ratio = text(r, "allocation_ratio")?;
    Ok(Inventory {
        total: int(r, "total")?,
        reserved: int(r, "reserved")?,
        min_unit: int(r, "min_unit")?,
        max_unit: int(r, "max_unit")?,
        step_size: int(r, "step_size")?,
        allocation_ratio: ratio
            .parse()
            .map_err(|_| Error::internal(format!("allocation_ratio {ratio}")))?,
    })
}

const ICOLS: &str = "provider_uuid, resource_class, total, reserved, min_unit, max_unit, \
    step_size, allocation_ratio, created_at, updated_at";

/// A provider's inventories by class.
pub async fn inventories(c: &mut Conn, uuid: &str) -> Result<BTreeMap<String, Inventory>> {
    let rows = sqlx::query(&format!(
        "SELECT {ICOLS} FROM placement_inventory WHERE provider_uuid = $1"
    ))
    .bind(uuid)
    .fetch_all(&mut *c)
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((text(r, "resource_class")?, inventory(r)?)))
        .collect()
}

/// Inserts or replaces one inventory.
pub async fn inventory_put(tx: &mut Tx, uuid: &str, rc: &str, inv: &Inventory) -> Result<()> {
    let now = now_micros();
    sqlx::query("DELETE FROM placement_inventory WHERE provider_uuid = $1 AND resource_class = $2")
        .bind(uuid)
        .bind(rc)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    sqlx::query(&format!(
        "INSERT INTO placement_inventory ({ICOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(uuid)
    .bind(rc)
    .bind(inv.total)
    .bind(inv.reserved)
    .bind(inv.min_unit)
    .bind(inv.max_unit)
    .bind(inv.step_size)
    .bind(inv.allocation_ratio.to_string())
    .bind(now)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

pub async fn inventory_delete(tx: &mut Tx, uuid: &str, rc: &str) -> Result<bool> {
    let n = sqlx::query(
        "DELETE FROM placement_inventory WHERE provider_uuid = $1 AND resource_class = $2",
    )
    .bind(uuid)
    .bind(rc)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?
    .rows_affected();
    Ok(n > 0)
}

/// Whether any provider has inventory of `rc`.
pub async fn class_in_inventory(c: &mut Conn, rc: &str) -> Result<bool> {
    let r =
        sqlx::query("SELECT 1 AS one FROM placement_inventory WHERE resource_class = $1 LIMIT 1")
            .bind(rc)
            .fetch_optional(&mut *c)
            .await
            .map_err(from_sqlx)?;
    Ok(r.is_some())
}

// ---------------------------------------------------------------- usages

/// What is allocated from a provider, by class.
pub async fn provider_usages(c: &mut Conn, uuid: &str) -> Result<BTreeMap<String, i64>> {
    let rows = sqlx::query(
        "SELECT resource_class, CAST(SUM(used) AS BIGINT) AS used FROM placement_allocation \
         WHERE provider_uuid = $1 GROUP BY resource_class",
    )
    .bind(uuid)
    .fetch_all(&mut *c)
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((text(r, "resource_class")?, int(r, "used")?)))
        .collect()
}

/// Consumers seen and amounts per class, for one consumer type.
type TypeUsage = (BTreeSet<String>, BTreeMap<String, i64>);

/// Usages of a project (and user), by consumer type (`None` for untyped) and class, with the
/// number of consumers of each type.
pub async fn project_usages(
    c: &mut Conn,
    project: &str,
    user: Option<&str>,
) -> Result<BTreeMap<Option<String>, (i64, BTreeMap<String, i64>)>> {
    let (sql, bind_user) = match user {
        Some(_) => (
            "SELECT c.uuid AS consumer, c.consumer_type AS consumer_type, a.resource_class AS rc, \
             a.used AS used FROM placement_allocation a JOIN placement_consumer c \
             ON c.uuid = a.consumer_uuid WHERE c.project_id = $1 AND c.user_id = $2",
            true,
        ),
        None => (
            "SELECT c.uuid AS consumer, c.consumer_type AS consumer_type, a.resource_class AS rc, \
             a.used AS used FROM placement_allocation a JOIN placement_consumer c \
             ON c.uuid = a.consumer_uuid WHERE c.project_id = $1",
            false,
        ),
    };
    let mut q = sqlx::query(sql).bind(project);
    if bind_user {
        q = q.bind(user.unwrap_or_default());
    }
    let rows = q.fetch_all(&mut *c).await.map_err(from_sqlx)?;
    let mut out: BTreeMap<Option<String>, TypeUsage> = BTreeMap::new();
    for r in &rows {
        let e = out.entry(get_opt_str(r, "consumer_type")).or_default();
        e.0.insert(text(r, "consumer")?);
        *e.1.entry(text(r, "rc")?).or_default() += int(r, "used")?;
    }
    Ok(out
        .into_iter()
        .map(|(k, (consumers, u))| (k, (consumers.len() as i64, u)))
        .collect())
}

// ---------------------------------------------------------------- classes and traits

pub async fn custom_classes(c: &mut Conn) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT name, updated_at FROM placement_resource_class ORDER BY name")
        .fetch_all(&mut *c)
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((text(r, "name")?, int(r, "updated_at")?)))
        .collect()
}

pub async fn custom_class_exists(c: &mut Conn, name: &str) -> Result<bool> {
    let r = sqlx::query("SELECT name FROM placement_resource_class WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(from_sqlx)?;
    Ok(r.is_some())
}

pub async fn class_insert(tx: &mut Tx, name: &str) -> Result<()> {
    let now = now_micros();
    sqlx::query(
        "INSERT INTO placement_resource_class (name, created_at, updated_at) VALUES ($1, $2, $3)",
    )
    .bind(name)
    .bind(now)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(RESOURCE_CLASS, name, Op::Create).await
}

/// Renames a custom class everywhere it is used (pre-1.7 `PUT /resource_classes/{name}`).
pub async fn class_rename(tx: &mut Tx, old: &str, new: &str) -> Result<()> {
    let now = now_micros();
    for sql in [
        "UPDATE placement_resource_class SET name = $2, updated_at = $3 WHERE name = $1",
        "UPDATE placement_inventory SET resource_class = $2, updated_at = $3 \
         WHERE resource_class = $1",
    ] {
        sqlx::query(sql)
            .bind(old)
            .bind(new)
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
    }
    sqlx::query("UPDATE placement_allocation SET resource_class = $2 WHERE resource_class = $1")
        .bind(old)
        .bind(new)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(RESOURCE_CLASS, old, Op::Delete).await?;
    tx.record(RESOURCE_CLASS, new, Op::Create).await
}

pub async fn class_delete(tx: &mut Tx, name: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM placement_resource_class WHERE name = $1")
        .bind(name)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(RESOURCE_CLASS, name, Op::Delete).await?;
    }
    Ok(n > 0)
}

pub async fn custom_traits(c: &mut Conn) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM placement_trait ORDER BY name")
        .fetch_all(&mut *c)
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "name")).collect()
}

pub async fn custom_trait_exists(c: &mut Conn, name: &str) -> Result<bool> {
    let r = sqlx::query("SELECT name FROM placement_trait WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(from_sqlx)?;
    Ok(r.is_some())
}

pub async fn trait_insert(tx: &mut Tx, name: &str) -> Result<()> {
    sqlx::query("INSERT INTO placement_trait (name, created_at) VALUES ($1, $2)")
        .bind(name)
        .bind(now_micros())
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(TRAIT, name, Op::Create).await
}

pub async fn trait_delete(tx: &mut Tx, name: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM placement_trait WHERE name = $1")
        .bind(name)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(TRAIT, name, Op::Delete).await?;
    }
    Ok(n > 0)
}

/// Traits attached to some provider.
pub async fn associated_traits(c: &mut Conn) -> Result<BTreeSet<String>> {
    let rows = sqlx::query("SELECT DISTINCT trait FROM placement_provider_trait")
        .fetch_all(&mut *c)
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "trait")).collect()
}

pub async fn provider_traits(c: &mut Conn, uuid: &str) -> Result<BTreeSet<String>> {
    let rows = sqlx::query("SELECT trait FROM placement_provider_trait WHERE provider_uuid = $1")
        .bind(uuid)
        .fetch_all(&mut *c)
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "trait")).collect()
}

/// Replaces a provider's traits (the caller bumps its generation).
pub async fn provider_traits_set(tx: &mut Tx, uuid: &str, traits: &BTreeSet<String>) -> Result<()> {
    sqlx::query("DELETE FROM placement_provider_trait WHERE provider_uuid = $1")
        .bind(uuid)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    for t in traits {
        sqlx::query("INSERT INTO placement_provider_trait (provider_uuid, trait) VALUES ($1, $2)")
            .bind(uuid)
            .bind(t)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
    }
    Ok(())
}

pub async fn provider_aggregates(c: &mut Conn, uuid: &str) -> Result<BTreeSet<String>> {
    let rows = sqlx::query(
        "SELECT aggregate_uuid FROM placement_provider_aggregate WHERE provider_uuid = $1",
    )
    .bind(uuid)
    .fetch_all(&mut *c)
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "aggregate_uuid")).collect()
}

/// Replaces a provider's aggregates (the caller bumps its generation).
pub async fn provider_aggregates_set(
    tx: &mut Tx,
    uuid: &str,
    aggs: &BTreeSet<String>,
) -> Result<()> {
    sqlx::query("DELETE FROM placement_provider_aggregate WHERE provider_uuid = $1")
        .bind(uuid)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    for a in aggs {
        sqlx::query(
            "INSERT INTO placement_provider_aggregate (provider_uuid, aggregate_uuid) \
             VALUES ($1, $2)",
        )
        .bind(uuid)
        .bind(a)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- consumers and allocations

fn consumer(r: &AnyRow) -> Result<Consumer> {
    Ok(Consumer {
        uuid: text(r, "uuid")?,
        project_id: text(r, "project_id")?,
        user_id: text(r, "user_id")?,
        consumer_type: get_opt_str(r, "consumer_type"),
        generation: int(r, "generation")?,
    })
}

pub async fn consumer_get(c: &mut Conn, uuid: &str) -> Result<Option<Consumer>> {
    let r = sqlx::query(
        "SELECT uuid, project_id, user_id, consumer_type, generation FROM placement_consumer \
         WHERE uuid = $1",
    )
    .bind(uuid)
    .fetch_optional(&mut *c)
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(consumer).transpose()
}

/// Creates the consumer or moves it to the next generation with the given owner and type.
pub async fn consumer_save(tx: &mut Tx, c: &Consumer, exists: bool) -> Result<()> {
    let now = now_micros();
    if exists {
        sqlx::query(
            "UPDATE placement_consumer SET project_id = $2, user_id = $3, consumer_type = $4, \
             generation = $5, updated_at = $6 WHERE uuid = $1",
        )
        .bind(&c.uuid)
        .bind(&c.project_id)
        .bind(&c.user_id)
        .bind(c.consumer_type.clone())
        .bind(c.generation)
        .bind(now)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    } else {
        sqlx::query(
            "INSERT INTO placement_consumer (uuid, project_id, user_id, consumer_type, \
             generation, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.uuid)
        .bind(&c.project_id)
        .bind(&c.user_id)
        .bind(c.consumer_type.clone())
        .bind(c.generation)
        .bind(now)
        .bind(now)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    }
    Ok(())
}

pub async fn consumer_delete(tx: &mut Tx, uuid: &str) -> Result<()> {
    sqlx::query("DELETE FROM placement_consumer WHERE uuid = $1")
        .bind(uuid)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// A consumer's allocations: per provider, per class.
pub async fn consumer_allocations(c: &mut Conn, uuid: &str) -> Result<BTreeMap<String, Resources>> {
    let rows = sqlx::query(
        "SELECT provider_uuid, resource_class, used FROM placement_allocation \
         WHERE consumer_uuid = $1",
    )
    .bind(uuid)
    .fetch_all(&mut *c)
    .await
    .map_err(from_sqlx)?;
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for r in &rows {
        out.entry(text(r, "provider_uuid")?)
            .or_default()
            .insert(text(r, "resource_class")?, int(r, "used")?);
    }
    Ok(out)
}

/// Allocations against a provider: per consumer, per class.
pub async fn provider_allocations(c: &mut Conn, uuid: &str) -> Result<BTreeMap<String, Resources>> {
    let rows = sqlx::query(
        "SELECT consumer_uuid, resource_class, used FROM placement_allocation \
         WHERE provider_uuid = $1",
    )
    .bind(uuid)
    .fetch_all(&mut *c)
    .await
    .map_err(from_sqlx)?;
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for r in &rows {
        out.entry(text(r, "consumer_uuid")?)
            .or_default()
            .insert(text(r, "resource_class")?, int(r, "used")?);
    }
    Ok(out)
}

pub async fn allocations_delete(tx: &mut Tx, consumer: &str) -> Result<u64> {
    let rows = sqlx::query(
        "SELECT DISTINCT provider_uuid FROM placement_allocation WHERE consumer_uuid = $1",
    )
    .bind(consumer)
    .fetch_all(tx.conn())
    .await
    .map_err(from_sqlx)?;
    let n = sqlx::query("DELETE FROM placement_allocation WHERE consumer_uuid = $1")
        .bind(consumer)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    for r in &rows {
        tx.record(USAGE, &text(r, "provider_uuid")?, Op::Update)
            .await?;
    }
    Ok(n)
}

/// One provider as [`snapshot`] has it, when it exists.
pub async fn provider_state(c: &mut Conn, uuid: &str) -> Result<Option<ProviderState>> {
    let Some(provider) = provider_get(c, uuid).await? else {
        return Ok(None);
    };
    Ok(Some(ProviderState {
        inventories: inventories(c, uuid).await?,
        used: provider_usages(c, uuid).await?,
        traits: provider_traits(c, uuid).await?,
        aggregates: provider_aggregates(c, uuid).await?,
        provider,
    }))
}

pub async fn allocation_insert(
    tx: &mut Tx,
    consumer: &str,
    rp: &str,
    rc: &str,
    used: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO placement_allocation (consumer_uuid, provider_uuid, resource_class, used, \
         created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(consumer)
    .bind(rp)
    .bind(rc)
    .bind(used)
    .bind(now_micros())
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Whether a provider has any allocation.
pub async fn provider_has_allocations(c: &mut Conn, uuid: &str) -> Result<bool> {
    let r =
        sqlx::query("SELECT 1 AS one FROM placement_allocation WHERE provider_uuid = $1 LIMIT 1")
            .bind(uuid)
            .fetch_optional(&mut *c)
            .await
            .map_err(from_sqlx)?;
    Ok(r.is_some())
}

// ---------------------------------------------------------------- the whole picture

/// Every provider with its inventories, usages, traits and aggregates, for filtering and
/// allocation candidates.
pub async fn snapshot(c: &mut Conn) -> Result<Snapshot> {
    let mut snap = Snapshot::default();
    for p in providers(c).await? {
        snap.providers.insert(
            p.uuid.clone(),
            ProviderState {
                provider: p,
                inventories: BTreeMap::new(),
                used: BTreeMap::new(),
                traits: BTreeSet::new(),
                aggregates: BTreeSet::new(),
            },
        );
    }
    let rows = sqlx::query(&format!("SELECT {ICOLS} FROM placement_inventory"))
        .fetch_all(&mut *c)
        .await
        .map_err(from_sqlx)?;
    for r in &rows {
        if let Some(p) = snap.providers.get_mut(&text(r, "provider_uuid")?) {
            p.inventories
                .insert(text(r, "resource_class")?, inventory(r)?);
        }
    }
    let rows = sqlx::query(
        "SELECT provider_uuid, resource_class, CAST(SUM(used) AS BIGINT) AS used FROM placement_allocation \
         GROUP BY provider_uuid, resource_class",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(from_sqlx)?;
    for r in &rows {
        if let Some(p) = snap.providers.get_mut(&text(r, "provider_uuid")?) {
            p.used.insert(text(r, "resource_class")?, int(r, "used")?);
        }
    }
    let rows = sqlx::query("SELECT provider_uuid, trait FROM placement_provider_trait")
        .fetch_all(&mut *c)
        .await
        .map_err(from_sqlx)?;
    for r in &rows {
        if let Some(p) = snap.providers.get_mut(&text(r, "provider_uuid")?) {
            p.traits.insert(text(r, "trait")?);
        }
    }
    let rows =
        sqlx::query("SELECT provider_uuid, aggregate_uuid FROM placement_provider_aggregate")
            .fetch_all(&mut *c)
            .await
            .map_err(from_sqlx)?;
    for r in &rows {
        if let Some(p) = snap.providers.get_mut(&text(r, "provider_uuid")?) {
            p.aggregates.insert(text(r, "aggregate_uuid")?);
        }
    }
    Ok(snap)
}
