//! OS-EP-FILTER: endpoint groups, and the associations of projects with endpoints and with
//! endpoint groups. Associations name ids without foreign keys; deleting a project, domain,
//! endpoint or endpoint group deletes its associations in the same transaction.

use super::{json, kind, s};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_opt_str, sqlx, AnyRow, Op, Store, Tx};

#[derive(Debug, Clone)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// A JSON object over `interface`, `service_id` and `region_id`.
    pub filters: serde_json::Value,
}

impl EndpointGroup {
    /// Whether an endpoint matches every filter (Keystone compares each filter with the
    /// endpoint attribute of the same name; a `null` `region_id` matches endpoints without one).
    pub fn matches(&self, e: &super::catalog::Endpoint) -> bool {
        let Some(filters) = self.filters.as_object() else {
            return true;
        };
        filters.iter().all(|(k, v)| {
            let actual = match k.as_str() {
                "interface" => Some(e.interface.as_str()),
                "service_id" => Some(e.service_id.as_str()),
                "region_id" => e.region_id.as_deref(),
                _ => return false,
            };
            match v {
                serde_json::Value::Null => actual.is_none(),
                serde_json::Value::String(want) => actual == Some(want.as_str()),
                _ => false,
            }
        })
    }
}

fn row(r: &AnyRow) -> Result<EndpointGroup> {
    Ok(EndpointGroup {
        id: s(r, "id")?,
        name: s(r, "name")?,
        description: get_opt_str(r, "description"),
        filters: json(r, "filters")?,
    })
}

pub async fn list(store: &Store) -> Result<Vec<EndpointGroup>> {
    let rows = sqlx::query(
        "SELECT id, name, description, filters FROM identity_endpoint_group ORDER BY name, id",
    )
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

pub async fn get(store: &Store, id: &str) -> Result<Option<EndpointGroup>> {
    let r = sqlx::query(
        "SELECT id, name, description, filters FROM identity_endpoint_group WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// Creates (`create`) or updates an endpoint group. An update of a group deleted meanwhile
/// fails with not found.
pub async fn upsert(store: &Store, g: &EndpointGroup, create: bool) -> Result<()> {
    let g = g.clone();
    store
        .write(move |tx| {
            let g = g.clone();
            Box::pin(async move {
                let n = if create {
                    sqlx::query(
                        "INSERT INTO identity_endpoint_group (id, name, description, filters, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&g.id)
                    .bind(&g.name)
                    .bind(&g.description)
                    .bind(g.filters.to_string())
                    .bind(strata_core::time::now_micros())
                    .execute(tx.conn())
                    .await
                } else {
                    sqlx::query(
                        "UPDATE identity_endpoint_group SET name = $2, description = $3, filters = $4 \
                         WHERE id = $1",
                    )
                    .bind(&g.id)
                    .bind(&g.name)
                    .bind(&g.description)
                    .bind(g.filters.to_string())
                    .execute(tx.conn())
                    .await
                }
                .map_err(from_sqlx)?
                .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("endpoint group", g.id.clone()));
                }
                tx.record(kind::ENDPOINT_GROUP, &g.id, if create { Op::Create } else { Op::Update })
                    .await
            })
        })
        .await
}

/// Deletes an endpoint group with its project associations; `false` when there was none.
pub async fn delete(store: &Store, id: &str) -> Result<bool> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                sqlx::query(
                    "DELETE FROM identity_project_endpoint_group WHERE endpoint_group_id = $1",
                )
                .bind(&id)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                let n = sqlx::query("DELETE FROM identity_endpoint_group WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n > 0 {
                    tx.record(kind::ENDPOINT_GROUP, &id, Op::Delete).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// The two association tables: a project with an endpoint, a project with an endpoint group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assoc {
    Endpoint,
    EndpointGroup,
}

impl Assoc {
    fn table(self) -> &'static str {
        match self {
            Assoc::Endpoint => "identity_project_endpoint",
            Assoc::EndpointGroup => "identity_project_endpoint_group",
        }
    }
    fn column(self) -> &'static str {
        match self {
            Assoc::Endpoint => "endpoint_id",
            Assoc::EndpointGroup => "endpoint_group_id",
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Assoc::Endpoint => kind::PROJECT_ENDPOINT,
            Assoc::EndpointGroup => kind::PROJECT_ENDPOINT_GROUP,
        }
    }
    /// Keystone's conflict type for a duplicate.
    fn conflict_type(self) -> &'static str {
        match self {
            Assoc::Endpoint => "project_endpoint",
            Assoc::EndpointGroup => "project_endpoint_group",
        }
    }
}

/// Fails with not found unless `sql` (selecting by `$1`) finds a row; used inside the writing
/// transaction so an association cannot outlive a concurrently deleted project or target.
async fn require_in(tx: &mut Tx, sql: &str, what: &'static str, id: &str) -> Result<()> {
    let found = sqlx::query(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::not_found(what, id.to_string())),
    }
}

/// Associates a project (or a project acting as a domain) with an endpoint or endpoint group;
/// a duplicate is a conflict, as in Keystone. Not found when either end is missing.
pub async fn associate(store: &Store, a: Assoc, project_id: &str, target_id: &str) -> Result<()> {
    let (p, t) = (project_id.to_string(), target_id.to_string());
    store
        .write(move |tx| {
            let (p, t) = (p.clone(), t.clone());
            Box::pin(async move {
                require_in(
                    tx,
                    "SELECT id FROM identity_project WHERE id = $1 \
                     UNION SELECT id FROM identity_domain WHERE id = $1",
                    "project",
                    &p,
                )
                .await?;
                match a {
                    Assoc::Endpoint => {
                        let sql = "SELECT id FROM identity_endpoint WHERE id = $1";
                        require_in(tx, sql, "endpoint", &t).await?
                    }
                    Assoc::EndpointGroup => {
                        let sql = "SELECT id FROM identity_endpoint_group WHERE id = $1";
                        require_in(tx, sql, "Endpoint Group", &t).await?
                    }
                }
                sqlx::query(&format!(
                    "INSERT INTO {} (project_id, {}) VALUES ($1, $2)",
                    a.table(),
                    a.column()
                ))
                .bind(&p)
                .bind(&t)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(a.kind(), &format!("{p}/{t}"), Op::Create).await
            })
        })
        .await
        .map_err(|e| match e {
            Error::AlreadyExists(_) => Error::conflict(format!(
                "Conflict occurred attempting to store {} - Duplicate entry.",
                a.conflict_type()
            )),
            e => e,
        })
}

/// Removes an association; `false` when there was none.
pub async fn dissociate(
    store: &Store,
    a: Assoc,
    project_id: &str,
    target_id: &str,
) -> Result<bool> {
    let (p, t) = (project_id.to_string(), target_id.to_string());
    store
        .write(move |tx| {
            let (p, t) = (p.clone(), t.clone());
            Box::pin(async move {
                let n = sqlx::query(&format!(
                    "DELETE FROM {} WHERE project_id = $1 AND {} = $2",
                    a.table(),
                    a.column()
                ))
                .bind(&p)
                .bind(&t)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(a.kind(), &format!("{p}/{t}"), Op::Delete).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// `(project_id, target_id)` pairs of one association table, optionally narrowed to a project
/// or to a target.
pub async fn associations(
    store: &Store,
    a: Assoc,
    project_id: Option<&str>,
    target_id: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let col = a.column();
    let rows = sqlx::query(&format!(
        "SELECT project_id, {col} FROM {} WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR {col} = $2) \
         ORDER BY project_id, {col}",
        a.table()
    ))
    .bind(project_id.unwrap_or(""))
    .bind(target_id.unwrap_or(""))
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((s(r, "project_id")?, s(r, col)?)))
        .collect()
}
