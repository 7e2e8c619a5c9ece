//! Host aggregates: named groups of compute hosts with metadata, as Nova keeps them.
//!
//! Why they matter beyond their API (`api/aggregates.rs`):
//! - An aggregate's `availability_zone` metadata puts its hosts in that zone. A host's zone is
//!   stored on its `nova-compute` service row (`compute_service.zone`), the one place the
//!   zone list, server create's zone check, `os-services` and the scheduler's host states read
//!   it from; every change of membership or of an aggregate's zone recomputes the zone of the
//!   hosts it touches ([`sync_zones`]) in the same store write, and moves the zone shown on
//!   those hosts' servers with it (Nova shows a placed server's zone as its host's).
//! - The scheduler's aggregate filters (`AggregateMultiTenancyIsolation`,
//!   `AggregateImagePropertiesIsolation`, `AggregateInstanceExtraSpecsFilter`, the zone filter)
//!   read every host's aggregates and metadata ([`for_host`]).
//! - Placement mirrors membership as Nova's API does: the aggregate's UUID is added to (and
//!   removed from) the member host's resource provider aggregates, so `member_of` queries see
//!   it ([`mirror_to_placement`]). That call goes after the store write and is idempotent; a
//!   failure is logged and repaired by the next add or remove of the host.
//!
//! Rows are hard-deleted (Nova's API database does the same); ids are integers never reused.
//! Changes are recorded as `compute.aggregate`.

use crate::server::Server;
use crate::ComputeService;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use strata_core::time::now_micros;
use strata_core::{Error, Result};
use strata_store::{from_sqlx, sqlx, AnyRow, Op, Row, Store, Tx};

/// Change-log kind.
pub const KIND: &str = "compute.aggregate";
/// The metadata key that names the aggregate's availability zone.
pub const AZ_KEY: &str = "availability_zone";

/// An aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    /// Member hosts, in the order they were added.
    pub hosts: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Aggregate {
    /// The zone its hosts are in, when it names one.
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get(AZ_KEY).map(String::as_str)
    }
}

/// What the `doc` column holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Doc {
    hosts: Vec<String>,
    metadata: BTreeMap<String, String>,
}

fn row(r: &AnyRow) -> Result<Aggregate> {
    let doc: String = r.try_get("doc").map_err(from_sqlx)?;
    let doc: Doc = serde_json::from_str(&doc)
        .map_err(|e| Error::internal(format!("aggregate document: {e}")))?;
    Ok(Aggregate {
        id: r.try_get("id").map_err(from_sqlx)?,
        uuid: r.try_get("uuid").map_err(from_sqlx)?,
        name: r.try_get("name").map_err(from_sqlx)?,
        hosts: doc.hosts,
        metadata: doc.metadata,
        created_at: r.try_get("created_at").map_err(from_sqlx)?,
        updated_at: strata_store::get_opt_i64(r, "updated_at"),
    })
}

fn doc_of(a: &Aggregate) -> Result<String> {
    serde_json::to_string(&Doc {
        hosts: a.hosts.clone(),
        metadata: a.metadata.clone(),
    })
    .map_err(|e| Error::internal(e.to_string()))
}

/// Every aggregate, by id.
pub async fn list(store: &Store) -> Result<Vec<Aggregate>> {
    let rows = sqlx::query("SELECT * FROM compute_aggregate ORDER BY id")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// Every aggregate, read inside a write.
pub async fn list_tx(tx: &mut Tx) -> Result<Vec<Aggregate>> {
    let rows = sqlx::query("SELECT * FROM compute_aggregate ORDER BY id")
        .fetch_all(tx.conn())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// One aggregate.
pub async fn get(store: &Store, id: i64) -> Result<Option<Aggregate>> {
    let r = sqlx::query("SELECT * FROM compute_aggregate WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// One aggregate, read inside a write.
pub async fn get_tx(tx: &mut Tx, id: i64) -> Result<Option<Aggregate>> {
    let r = sqlx::query("SELECT * FROM compute_aggregate WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// Whether another aggregate than `except` is named `name`.
pub async fn name_taken_tx(tx: &mut Tx, name: &str, except: Option<i64>) -> Result<bool> {
    let r = sqlx::query("SELECT id FROM compute_aggregate WHERE name = $1")
        .bind(name)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(match r {
        Some(r) => Some(r.try_get::<i64, _>("id").map_err(from_sqlx)?) != except,
        None => false,
    })
}

/// The next aggregate id: one past the largest ever issued (kept in `compute_meta`, so a
/// deleted aggregate's id is never handed out again, as a database sequence would not).
pub async fn next_id_tx(tx: &mut Tx) -> Result<i64> {
    let last = sqlx::query("SELECT value FROM compute_meta WHERE name = 'aggregate_last_id'")
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    let last: Option<i64> = match &last {
        Some(r) => r
            .try_get::<String, _>("value")
            .map_err(from_sqlx)?
            .parse()
            .ok(),
        None => None,
    };
    let max = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM compute_aggregate")
        .fetch_one(tx.conn())
        .await
        .map_err(from_sqlx)?
        .try_get::<i64, _>("m")
        .map_err(from_sqlx)?;
    let next = last.unwrap_or(0).max(max) + 1;
    let sql = if last.is_some() {
        "UPDATE compute_meta SET value = $2 WHERE name = $1"
    } else {
        "INSERT INTO compute_meta (name, value) VALUES ($1, $2)"
    };
    sqlx::query(sql)
        .bind("aggregate_last_id")
        .bind(next.to_string())
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(next)
}

pub async fn insert_tx(tx: &mut Tx, a: &Aggregate) -> Result<()> {
    sqlx::query(
        "INSERT INTO compute_aggregate (id, uuid, name, doc, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.id)
    .bind(&a.uuid)
    .bind(&a.name)
    .bind(doc_of(a)?)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(KIND, &a.id.to_string(), Op::Create).await
}

/// Writes the aggregate's name, hosts and metadata, stamping `updated_at`.
pub async fn save_tx(tx: &mut Tx, a: &mut Aggregate) -> Result<()> {
    a.updated_at = Some(now_micros());
    sqlx::query("UPDATE compute_aggregate SET name = $2, doc = $3, updated_at = $4 WHERE id = $1")
        .bind(a.id)
        .bind(&a.name)
        .bind(doc_of(a)?)
        .bind(a.updated_at)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(KIND, &a.id.to_string(), Op::Update).await
}

pub async fn delete_tx(tx: &mut Tx, id: i64) -> Result<bool> {
    let n = sqlx::query("DELETE FROM compute_aggregate WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(KIND, &id.to_string(), Op::Delete).await?;
    }
    Ok(n > 0)
}

/// The zone `host` is in given every aggregate: the first (by id) naming one, else the
/// default zone.
pub fn zone_of(aggs: &[Aggregate], host: &str, default_zone: &str) -> String {
    aggs.iter()
        .filter(|a| a.hosts.iter().any(|h| h == host))
        .find_map(|a| a.availability_zone())
        .unwrap_or(default_zone)
        .to_string()
}

/// The aggregates `host` is in, as the scheduler's filters see them.
pub fn for_host(aggs: &[Aggregate], host: &str) -> Vec<strata_placement::scheduler::Aggregate> {
    aggs.iter()
        .filter(|a| a.hosts.iter().any(|h| h == host))
        .map(|a| strata_placement::scheduler::Aggregate {
            name: a.name.clone(),
            metadata: a.metadata.clone(),
        })
        .collect()
}

/// Recomputes the zone of each of `hosts` from the aggregates as they are in this write, and
/// writes it on the host's compute service and on the live servers placed there whose zone
/// differs. Idempotent.
pub async fn sync_zones(tx: &mut Tx, default_zone: &str, hosts: &BTreeSet<String>) -> Result<()> {
    if hosts.is_empty() {
        return Ok(());
    }
    let aggs = list_tx(tx).await?;
    for host in hosts {
        let zone = zone_of(&aggs, host, default_zone);
        let n = sqlx::query(
            "UPDATE compute_service SET zone = $2 WHERE host = $1 AND zone <> $2 \
             AND binary_name = 'nova-compute'",
        )
        .bind(host)
        .bind(&zone)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        if n > 0 {
            let r = sqlx::query(
                "SELECT id FROM compute_service WHERE host = $1 AND binary_name = 'nova-compute'",
            )
            .bind(host)
            .fetch_optional(tx.conn())
            .await
            .map_err(from_sqlx)?;
            if let Some(r) = r {
                let id: String = r.try_get("id").map_err(from_sqlx)?;
                tx.record(crate::hosts::SERVICE, &id, Op::Update).await?;
            }
        }
        let rows = sqlx::query("SELECT doc FROM compute_server WHERE host = $1 AND deleted = 0")
            .bind(host)
            .fetch_all(tx.conn())
            .await
            .map_err(from_sqlx)?;
        for r in &rows {
            let doc: String = r.try_get("doc").map_err(from_sqlx)?;
            let old: Server = serde_json::from_str(&doc)
                .map_err(|e| Error::internal(format!("server document: {e}")))?;
            if old.availability_zone.as_deref() == Some(zone.as_str()) {
                continue;
            }
            let mut n = old.clone();
            n.availability_zone = Some(zone.clone());
            crate::server_db::save(tx, &old, &mut n).await?;
        }
    }
    Ok(())
}

/// Takes `host` out of every aggregate (its compute service is deleted, as Nova's service
/// delete does). Called inside that write; the host's provider goes with the service.
pub async fn forget_host_tx(tx: &mut Tx, host: &str) -> Result<()> {
    for mut a in list_tx(tx).await? {
        if a.hosts.iter().any(|h| h == host) {
            a.hosts.retain(|h| h != host);
            save_tx(tx, &mut a).await?;
        }
    }
    Ok(())
}

impl ComputeService {
    /// Adds (`member`) or removes the aggregate `uuid` on the resource provider of each of
    /// `hosts`' nodes in placement. Idempotent; failures are logged (the next change of the
    /// host's membership writes it again).
    pub(crate) async fn mirror_to_placement(&self, uuid: &str, hosts: &[String], member: bool) {
        let Some(p) = self.placement() else { return };
        let nodes = match crate::hosts::nodes(self.store()).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "aggregate placement mirror: reading nodes");
                return;
            }
        };
        for n in nodes.iter().filter(|n| hosts.contains(&n.host)) {
            let one: BTreeSet<String> = [uuid.to_string()].into();
            let (add, remove) = if member {
                (one, BTreeSet::new())
            } else {
                (BTreeSet::new(), one)
            };
            if let Err(e) = p
                .provider_aggregates_update(n.id.clone(), add, remove)
                .await
            {
                tracing::warn!(provider = %n.id, aggregate = %uuid, error = %e.detail,
                    "aggregate placement mirror");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(id: i64, hosts: &[&str], az: Option<&str>) -> Aggregate {
        Aggregate {
            id,
            uuid: format!("u{id}"),
            name: format!("a{id}"),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            metadata: az
                .map(|z| [(AZ_KEY.to_string(), z.to_string())].into())
                .unwrap_or_default(),
            created_at: 0,
            updated_at: None,
        }
    }

    #[test]
    fn a_hosts_zone_is_its_aggregates_or_the_default() {
        let aggs = vec![
            agg(1, &["h1", "h2"], None),
            agg(2, &["h2"], Some("az2")),
            agg(3, &["h3"], Some("az3")),
        ];
        assert_eq!(zone_of(&aggs, "h1", "nova"), "nova");
        assert_eq!(zone_of(&aggs, "h2", "nova"), "az2");
        assert_eq!(zone_of(&aggs, "h3", "nova"), "az3");
        assert_eq!(zone_of(&aggs, "h9", "nova"), "nova");
        assert_eq!(for_host(&aggs, "h2").len(), 2);
        assert!(for_host(&aggs, "h9").is_empty());
    }
}
