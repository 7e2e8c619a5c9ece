//! Queries of the network service. Resources are documents in `network_resource` keyed by
//! `(kind, id)`; every mutation runs inside [`Store::write`] and records a `network.<kind>`
//! change. Checks that must hold when a write lands (quotas, "in use", uniqueness Neutron
//! promises) are made inside the write, which the store serialises with every other write;
//! the unique keys of the allocation tables back them up across replicas.

use serde_json::{Map, Value};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, sqlx, AnyRow, Op, Row, Store, Tx};

/// One Neutron resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: String,
    pub id: String,
    pub project_id: String,
    /// The resource's own attributes (not `id`, `project_id`/`tenant_id`, timestamps or
    /// `revision_number`, which live in the columns).
    pub doc: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision_number: i64,
}

impl Resource {
    pub fn new(kind: &str, id: String, project_id: String, doc: Map<String, Value>) -> Self {
        let now = strata_core::time::now_micros();
        Resource {
            kind: kind.to_string(),
            id,
            project_id,
            doc,
            created_at: now,
            updated_at: now,
            revision_number: 0,
        }
    }
    /// A string attribute.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }
    /// A boolean attribute (false when absent).
    pub fn flag(&self, key: &str) -> bool {
        self.doc.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
}

const COLS: &str = "kind, id, project_id, doc, created_at, updated_at, revision_number";

fn row(r: &AnyRow) -> Result<Resource> {
    let text = |c: &str| r.try_get::<String, _>(c).map_err(from_sqlx);
    let int = |c: &str| r.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok(Resource {
        kind: text("kind")?,
        id: text("id")?,
        project_id: text("project_id")?,
        doc: serde_json::from_str(&text("doc")?)
            .map_err(|e| Error::internal(format!("network resource document: {e}")))?,
        created_at: int("created_at")?,
        updated_at: int("updated_at")?,
        revision_number: int("revision_number")?,
    })
}

fn change_kind(kind: &str) -> String {
    format!("network.{kind}")
}

pub async fn get(store: &Store, kind: &str, id: &str) -> Result<Option<Resource>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM network_resource WHERE kind = $1 AND id = $2"
    ))
    .bind(kind)
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn get_tx(tx: &mut Tx, kind: &str, id: &str) -> Result<Option<Resource>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM network_resource WHERE kind = $1 AND id = $2"
    ))
    .bind(kind)
    .bind(id)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// Every resource of `kind` (of `project` when given).
pub async fn list(store: &Store, kind: &str, project: Option<&str>) -> Result<Vec<Resource>> {
    let rows = match project {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM network_resource WHERE kind = $1"
            ))
            .bind(kind)
            .fetch_all(store.pool())
            .await
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM network_resource WHERE kind = $1 AND project_id = $2"
            ))
            .bind(kind)
            .bind(p)
            .fetch_all(store.pool())
            .await
        }
    }
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

pub async fn list_tx(tx: &mut Tx, kind: &str, project: Option<&str>) -> Result<Vec<Resource>> {
    let rows = match project {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM network_resource WHERE kind = $1"
            ))
            .bind(kind)
            .fetch_all(tx.conn())
            .await
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM network_resource WHERE kind = $1 AND project_id = $2"
            ))
            .bind(kind)
            .bind(p)
            .fetch_all(tx.conn())
            .await
        }
    }
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// A listing of one kind pushed into SQL: who may see the rows, equality filters on the
/// indexed columns, ascending or descending id order and a window after a marker id.
#[derive(Debug, Default, Clone, Copy)]
pub struct Scan<'a> {
    pub kind: &'a str,
    /// `Some(project)`: only rows of `project` or on one of `or_networks` (ports on networks
    /// the caller owns). `None`: every row (admins).
    pub owner: Option<&'a str>,
    pub or_networks: &'a [String],
    /// `network_id` must be one of these (when not empty).
    pub network_ids: &'a [&'a str],
    /// `device_id` must be one of these (when not empty).
    pub device_ids: &'a [&'a str],
    /// Only ids after this one in the scan's order.
    pub after: Option<&'a str>,
    pub desc: bool,
    pub limit: Option<usize>,
}

/// Runs `scan`: rows in id order (descending when asked).
pub async fn scan(store: &Store, scan: &Scan<'_>) -> Result<Vec<Resource>> {
    let mut sql = format!("SELECT {COLS} FROM network_resource WHERE kind = $1");
    let mut binds: Vec<&str> = vec![scan.kind];
    fn param<'v>(binds: &mut Vec<&'v str>, v: &'v str) -> String {
        binds.push(v);
        format!("${}", binds.len())
    }
    if let Some(owner) = scan.owner {
        let mut alts = vec![format!("project_id = {}", param(&mut binds, owner))];
        if !scan.or_networks.is_empty() {
            let ps: Vec<String> = scan
                .or_networks
                .iter()
                .map(|n| param(&mut binds, n.as_str()))
                .collect();
            alts.push(format!("network_id IN ({})", ps.join(", ")));
        }
        sql.push_str(&format!(" AND ({})", alts.join(" OR ")));
    }
    for (col, vals) in [
        ("network_id", scan.network_ids),
        ("device_id", scan.device_ids),
    ] {
        if !vals.is_empty() {
            let ps: Vec<String> = vals.iter().map(|v| param(&mut binds, v)).collect();
            sql.push_str(&format!(" AND {col} IN ({})", ps.join(", ")));
        }
    }
    if let Some(after) = scan.after {
        let op = if scan.desc { "<" } else { ">" };
        sql.push_str(&format!(" AND id {op} {}", param(&mut binds, after)));
    }
    sql.push_str(if scan.desc {
        " ORDER BY id DESC"
    } else {
        " ORDER BY id"
    });
    if let Some(l) = scan.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(*b);
    }
    let rows = q.fetch_all(store.pool()).await.map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// The ids of `project`'s resources of `kind`.
pub async fn ids_of(store: &Store, kind: &str, project: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM network_resource WHERE kind = $1 AND project_id = $2")
        .bind(kind)
        .bind(project)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("id").map_err(from_sqlx))
        .collect()
}

/// How many resources of `kind` a project has (for quotas), inside the write.
pub async fn count_tx(tx: &mut Tx, kind: &str, project: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM network_resource WHERE kind = $1 AND project_id = $2",
    )
    .bind(kind)
    .bind(project)
    .fetch_one(tx.conn())
    .await
    .map_err(from_sqlx)?;
    r.try_get::<i64, _>("n").map_err(from_sqlx)
}

/// The indexed copies of `network_id` and `device_id` beside the document.
fn indexed(r: &Resource) -> (Option<String>, Option<String>) {
    (
        r.str("network_id").map(str::to_string),
        r.str("device_id").map(str::to_string),
    )
}

pub async fn insert(tx: &mut Tx, r: &Resource) -> Result<()> {
    let (network_id, device_id) = indexed(r);
    sqlx::query(&format!(
        "INSERT INTO network_resource ({COLS}, network_id, device_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&r.kind)
    .bind(&r.id)
    .bind(&r.project_id)
    .bind(Value::Object(r.doc.clone()).to_string())
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(r.revision_number)
    .bind(network_id)
    .bind(device_id)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(&change_kind(&r.kind), &r.id, Op::Create).await
}

/// Saves `r`'s document, bumping `revision_number` and `updated_at` (in `r` too).
pub async fn save(tx: &mut Tx, r: &mut Resource) -> Result<()> {
    r.revision_number += 1;
    r.updated_at = strata_core::time::now_micros().max(r.updated_at + 1);
    let (network_id, device_id) = indexed(r);
    sqlx::query(
        "UPDATE network_resource SET doc = $3, updated_at = $4, revision_number = $5, \
         project_id = $6, network_id = $7, device_id = $8 WHERE kind = $1 AND id = $2",
    )
    .bind(&r.kind)
    .bind(&r.id)
    .bind(Value::Object(r.doc.clone()).to_string())
    .bind(r.updated_at)
    .bind(r.revision_number)
    .bind(&r.project_id)
    .bind(network_id)
    .bind(device_id)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(&change_kind(&r.kind), &r.id, Op::Update).await
}

pub async fn delete(tx: &mut Tx, kind: &str, id: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM network_resource WHERE kind = $1 AND id = $2")
        .bind(kind)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(&change_kind(kind), id, Op::Delete).await?;
    }
    Ok(n > 0)
}

// ------------------------------------------------------------------ quotas

pub async fn quota_overrides(store: &Store, project: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT resource, hard_limit FROM network_quota WHERE project_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("resource").map_err(from_sqlx)?,
                r.try_get::<i64, _>("hard_limit").map_err(from_sqlx)?,
            ))
        })
        .collect()
}

pub async fn quota_override_tx(tx: &mut Tx, project: &str, resource: &str) -> Result<Option<i64>> {
    let r =
        sqlx::query("SELECT hard_limit FROM network_quota WHERE project_id = $1 AND resource = $2")
            .bind(project)
            .bind(resource)
            .fetch_optional(tx.conn())
            .await
            .map_err(from_sqlx)?;
    r.map(|r| r.try_get::<i64, _>("hard_limit").map_err(from_sqlx))
        .transpose()
}

pub async fn set_quota(tx: &mut Tx, project: &str, resource: &str, limit: i64) -> Result<()> {
    sqlx::query("DELETE FROM network_quota WHERE project_id = $1 AND resource = $2")
        .bind(project)
        .bind(resource)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    sqlx::query("INSERT INTO network_quota (project_id, resource, hard_limit) VALUES ($1, $2, $3)")
        .bind(project)
        .bind(resource)
        .bind(limit)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record("network.quota", project, Op::Update).await
}

pub async fn delete_quotas(tx: &mut Tx, project: &str) -> Result<()> {
    sqlx::query("DELETE FROM network_quota WHERE project_id = $1")
        .bind(project)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record("network.quota", project, Op::Delete).await
}

/// Projects with quota overrides.
pub async fn quota_projects(store: &Store) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT project_id FROM network_quota ORDER BY project_id")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("project_id").map_err(from_sqlx))
        .collect()
}

// ------------------------------------------------------------------ segments

/// Claims `(network_type, physical_network, segmentation_id)` for `network_id`; false when
/// another network holds it.
pub async fn claim_segment(
    tx: &mut Tx,
    network_type: &str,
    physical_network: &str,
    segmentation_id: i64,
    network_id: &str,
) -> Result<bool> {
    let taken = sqlx::query(
        "SELECT 1 AS one FROM network_segment WHERE network_type = $1 AND physical_network = $2 \
         AND segmentation_id = $3",
    )
    .bind(network_type)
    .bind(physical_network)
    .bind(segmentation_id)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?
    .is_some();
    if taken {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO network_segment (network_type, physical_network, segmentation_id, \
         network_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(network_type)
    .bind(physical_network)
    .bind(segmentation_id)
    .bind(network_id)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    Ok(true)
}

/// Segment ids of `network_type` on `physical_network` already taken.
pub async fn segments_taken(
    tx: &mut Tx,
    network_type: &str,
    physical_network: &str,
) -> Result<Vec<i64>> {
    let rows = sqlx::query(
        "SELECT segmentation_id FROM network_segment WHERE network_type = $1 AND \
         physical_network = $2",
    )
    .bind(network_type)
    .bind(physical_network)
    .fetch_all(tx.conn())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>("segmentation_id").map_err(from_sqlx))
        .collect()
}

pub async fn release_segments(tx: &mut Tx, network_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM network_segment WHERE network_id = $1")
        .bind(network_id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

// ------------------------------------------------------------------ addresses and MACs

/// Releases every address and the MAC a port holds.
pub async fn release_port(tx: &mut Tx, port_id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM network_ip_allocation WHERE port_id = $1",
        "DELETE FROM network_mac WHERE port_id = $1",
    ] {
        sqlx::query(sql)
            .bind(port_id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
    }
    Ok(())
}
