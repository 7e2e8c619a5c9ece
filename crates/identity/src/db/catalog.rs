//! The service catalog: regions, services and endpoints.

use super::{json, kind, s, Where};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_bool, get_opt_str, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub extra: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: serde_json::Value,
}

fn region_row(r: &AnyRow) -> Result<Region> {
    Ok(Region {
        id: s(r, "id")?,
        description: s(r, "description")?,
        parent_region_id: get_opt_str(r, "parent_region_id"),
        extra: json(r, "extra")?,
    })
}

fn service_row(r: &AnyRow) -> Result<Service> {
    Ok(Service {
        id: s(r, "id")?,
        kind: s(r, "type")?,
        name: s(r, "name")?,
        description: get_opt_str(r, "description"),
        enabled: get_bool(r, "enabled"),
        extra: json(r, "extra")?,
    })
}

fn endpoint_row(r: &AnyRow) -> Result<Endpoint> {
    Ok(Endpoint {
        id: s(r, "id")?,
        service_id: s(r, "service_id")?,
        interface: s(r, "interface")?,
        url: s(r, "url")?,
        region_id: get_opt_str(r, "region_id"),
        enabled: get_bool(r, "enabled"),
        extra: json(r, "extra")?,
    })
}

pub async fn list_regions(store: &Store, w: &Where) -> Result<Vec<Region>> {
    let rows = w
        .fetch(
            store,
            "SELECT id, description, parent_region_id, extra FROM identity_region",
            "ORDER BY id",
        )
        .await?;
    rows.iter().map(region_row).collect()
}

pub async fn get_region(store: &Store, id: &str) -> Result<Option<Region>> {
    let mut w = Where::default();
    w.eq("id", id);
    Ok(list_regions(store, &w).await?.into_iter().next())
}

pub async fn list_services(store: &Store, w: &Where) -> Result<Vec<Service>> {
    let rows = w
        .fetch(
            store,
            "SELECT id, type, name, description, enabled, extra FROM identity_service",
            "ORDER BY type, id",
        )
        .await?;
    rows.iter().map(service_row).collect()
}

pub async fn get_service(store: &Store, id: &str) -> Result<Option<Service>> {
    let mut w = Where::default();
    w.eq("id", id);
    Ok(list_services(store, &w).await?.into_iter().next())
}

pub async fn list_endpoints(store: &Store, w: &Where) -> Result<Vec<Endpoint>> {
    let rows = w.fetch(store, "SELECT id, service_id, interface, url, region_id, enabled, extra FROM identity_endpoint", "ORDER BY service_id, interface, id").await?;
    rows.iter().map(endpoint_row).collect()
}

pub async fn get_endpoint(store: &Store, id: &str) -> Result<Option<Endpoint>> {
    let mut w = Where::default();
    w.eq("id", id);
    Ok(list_endpoints(store, &w).await?.into_iter().next())
}

fn dup(what: &'static str, id: String) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::AlreadyExists(_) => Error::conflict(format!(
            "Conflict occurred attempting to store {what} - Duplicate ID, {id}."
        )),
        e => e,
    }
}

pub async fn upsert_region(store: &Store, r: &Region, create: bool) -> Result<()> {
    let r = r.clone();
    let id = r.id.clone();
    store
        .write(move |tx| {
            let r = r.clone();
            Box::pin(async move {
                let sql = if create {
                    "INSERT INTO identity_region (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)"
                } else {
                    "UPDATE identity_region SET description = $2, parent_region_id = $3, extra = $4 WHERE id = $1"
                };
                sqlx::query(sql)
                    .bind(&r.id)
                    .bind(&r.description)
                    .bind(&r.parent_region_id)
                    .bind(r.extra.to_string())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                tx.record(kind::REGION, &r.id, if create { Op::Create } else { Op::Update }).await
            })
        })
        .await
        .map_err(dup("region", id))
}

pub async fn upsert_service(store: &Store, sv: &Service, create: bool) -> Result<()> {
    let sv = sv.clone();
    let id = sv.id.clone();
    store
        .write(move |tx| {
            let sv = sv.clone();
            Box::pin(async move {
                let sql = if create {
                    "INSERT INTO identity_service (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)"
                } else {
                    "UPDATE identity_service SET type = $2, name = $3, description = $4, enabled = $5, extra = $6 WHERE id = $1"
                };
                sqlx::query(sql)
                    .bind(&sv.id)
                    .bind(&sv.kind)
                    .bind(&sv.name)
                    .bind(&sv.description)
                    .bind(sv.enabled as i64)
                    .bind(sv.extra.to_string())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                tx.record(kind::SERVICE, &sv.id, if create { Op::Create } else { Op::Update }).await
            })
        })
        .await
        .map_err(dup("service", id))
}

pub async fn upsert_endpoint(store: &Store, e: &Endpoint, create: bool) -> Result<()> {
    let e = e.clone();
    let id = e.id.clone();
    store
        .write(move |tx| {
            let e = e.clone();
            Box::pin(async move {
                let sql = if create {
                    "INSERT INTO identity_endpoint (id, service_id, interface, url, region_id, enabled, extra) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                } else {
                    "UPDATE identity_endpoint SET service_id = $2, interface = $3, url = $4, region_id = $5, \
                     enabled = $6, extra = $7 WHERE id = $1"
                };
                sqlx::query(sql)
                    .bind(&e.id)
                    .bind(&e.service_id)
                    .bind(&e.interface)
                    .bind(&e.url)
                    .bind(&e.region_id)
                    .bind(e.enabled as i64)
                    .bind(e.extra.to_string())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                tx.record(kind::ENDPOINT, &e.id, if create { Op::Create } else { Op::Update }).await
            })
        })
        .await
        .map_err(dup("endpoint", id))
}

/// Deletes one row of `table` (`identity_region`, `identity_service` or `identity_endpoint`);
/// deleting a service deletes its endpoints too.
pub async fn delete(
    store: &Store,
    table: &'static str,
    change_kind: &'static str,
    id: &str,
) -> Result<bool> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                if table == "identity_service" {
                    sqlx::query(
                        "DELETE FROM identity_project_endpoint WHERE endpoint_id IN \
                         (SELECT id FROM identity_endpoint WHERE service_id = $1)",
                    )
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                    sqlx::query("DELETE FROM identity_endpoint WHERE service_id = $1")
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                }
                if table == "identity_endpoint" {
                    sqlx::query("DELETE FROM identity_project_endpoint WHERE endpoint_id = $1")
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                }
                let n = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n > 0 {
                    tx.record(change_kind, &id, Op::Delete).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// Why [`delete_region_tree`] refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RegionDelete {
    Deleted,
    NotFound,
    /// The region or one of its descendants has endpoints.
    HasEndpoints,
}

/// Deletes a region with all its descendants, as Keystone does, unless any of them has
/// endpoints. The check and the deletes share one transaction, so an endpoint created
/// concurrently either blocks the delete or fails to find its region.
pub async fn delete_region_tree(store: &Store, id: &str) -> Result<RegionDelete> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let found = sqlx::query("SELECT id FROM identity_region WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                if found.is_none() {
                    return Ok(RegionDelete::NotFound);
                }
                // Breadth-first over children; `tree` doubles as the visited set, so a cycle
                // (which updates refuse, but rows may predate that) cannot loop.
                let mut tree = vec![id.clone()];
                let mut next = 0;
                while next < tree.len() {
                    let rows =
                        sqlx::query("SELECT id FROM identity_region WHERE parent_region_id = $1")
                            .bind(&tree[next])
                            .fetch_all(tx.conn())
                            .await
                            .map_err(from_sqlx)?;
                    next += 1;
                    for r in &rows {
                        let child = s(r, "id")?;
                        if !tree.contains(&child) {
                            tree.push(child);
                        }
                    }
                }
                for r in &tree {
                    let used = sqlx::query("SELECT id FROM identity_endpoint WHERE region_id = $1")
                        .bind(r)
                        .fetch_optional(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                    if used.is_some() {
                        return Ok(RegionDelete::HasEndpoints);
                    }
                }
                for r in &tree {
                    sqlx::query("DELETE FROM identity_region WHERE id = $1")
                        .bind(r)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                    tx.record(kind::REGION, r, Op::Delete).await?;
                }
                Ok(RegionDelete::Deleted)
            })
        })
        .await
}
