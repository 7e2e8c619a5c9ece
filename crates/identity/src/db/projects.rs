//! Projects.

use super::{json, kind, s, Where};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_bool, get_opt_str, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    /// `None` only for projects acting as domains; a top-level project's parent is its domain.
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: serde_json::Value,
    pub extra: serde_json::Value,
}

fn row(r: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: s(r, "id")?,
        name: s(r, "name")?,
        domain_id: s(r, "domain_id")?,
        parent_id: get_opt_str(r, "parent_id"),
        description: s(r, "description")?,
        enabled: get_bool(r, "enabled"),
        tags: serde_json::from_value(json(r, "tags")?).unwrap_or_default(),
        options: json(r, "options")?,
        extra: json(r, "extra")?,
    })
}

const COLS: &str = "id, name, domain_id, parent_id, description, enabled, tags, options, extra";

pub async fn get(store: &Store, id: &str) -> Result<Option<Project>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_project WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn get_by_name(store: &Store, domain_id: &str, name: &str) -> Result<Option<Project>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_project WHERE domain_id = $1 AND name = $2"
    ))
    .bind(domain_id)
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn list(store: &Store, w: &Where) -> Result<Vec<Project>> {
    let sql = format!(
        "SELECT {COLS} FROM identity_project{} ORDER BY name, id",
        w.sql()
    );
    let mut q = sqlx::query(&sql);
    for b in &w.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(store.pool()).await.map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// Every project below `id` (children, grandchildren, …).
pub async fn subtree(store: &Store, id: &str) -> Result<Vec<Project>> {
    let mut out = Vec::new();
    let mut frontier = vec![id.to_string()];
    while !frontier.is_empty() {
        let mut w = Where::default();
        w.one_of("parent_id", &frontier);
        let children = list(store, &w).await?;
        frontier = children.iter().map(|p| p.id.clone()).collect();
        out.extend(children);
    }
    Ok(out)
}

/// The chain of parents of `p` up to (not including) its domain, nearest first.
pub async fn ancestors(store: &Store, p: &Project) -> Result<Vec<Project>> {
    let mut out = Vec::new();
    let mut cur = p.parent_id.clone();
    while let Some(pid) = cur {
        if pid == p.domain_id || out.len() > 64 {
            break;
        }
        match get(store, &pid).await? {
            Some(parent) => {
                cur = parent.parent_id.clone();
                out.push(parent);
            }
            None => break,
        }
    }
    Ok(out)
}

fn dup(name: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::AlreadyExists(_) => Error::conflict(format!(
            "Conflict occurred attempting to store project - it is not permitted to have two \
             projects with the same name in the same domain : {name}."
        )),
        e => e,
    }
}

pub async fn create(store: &Store, p: &Project) -> Result<()> {
    let p = p.clone();
    let name = p.name.clone();
    store
        .write(move |tx| {
            let p = p.clone();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO identity_project (id, name, domain_id, parent_id, description, enabled, tags, options, extra, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&p.id)
                .bind(&p.name)
                .bind(&p.domain_id)
                .bind(&p.parent_id)
                .bind(&p.description)
                .bind(p.enabled as i64)
                .bind(serde_json::to_string(&p.tags).unwrap_or_default())
                .bind(p.options.to_string())
                .bind(p.extra.to_string())
                .bind(strata_core::time::now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(kind::PROJECT, &p.id, Op::Create).await
            })
        })
        .await
        .map_err(dup(&name))
}

/// Updates a project. When it becomes disabled, tokens scoped to it are revoked in the same
/// transaction.
pub async fn update(store: &Store, p: &Project, revoke: bool) -> Result<()> {
    let p = p.clone();
    let name = p.name.clone();
    store
        .write(move |tx| {
            let p = p.clone();
            Box::pin(async move {
                sqlx::query(
                    "UPDATE identity_project SET name = $2, description = $3, enabled = $4, tags = $5, \
                     options = $6, extra = $7 WHERE id = $1",
                )
                .bind(&p.id)
                .bind(&p.name)
                .bind(&p.description)
                .bind(p.enabled as i64)
                .bind(serde_json::to_string(&p.tags).unwrap_or_default())
                .bind(p.options.to_string())
                .bind(p.extra.to_string())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                if revoke {
                    super::keys::revoke_in(tx, super::keys::Revoke::project(&p.id)).await?;
                }
                tx.record(kind::PROJECT, &p.id, Op::Update).await
            })
        })
        .await
        .map_err(dup(&name))
}

/// Deletes a project with its assignments, application credentials and trusts, revoking its
/// tokens.
pub async fn delete(store: &Store, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let n: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM identity_project WHERE parent_id = $1")
                        .bind(&id)
                        .fetch_one(tx.conn())
                        .await
                        .map_err(from_sqlx)
                        .and_then(|r| super::i(&r, "n"))?;
                if n > 0 {
                    return Err(Error::forbidden(
                        "Cannot delete the project because it has children; delete them first.",
                    ));
                }
                sqlx::query("DELETE FROM identity_assignment WHERE target_id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                // Application credentials and (EC2) credentials bound to the project go with it.
                for sql in [
                    "DELETE FROM identity_app_cred_access_rule WHERE app_cred_id IN (SELECT id FROM identity_app_cred WHERE project_id = $1)",
                    "DELETE FROM identity_app_cred WHERE project_id = $1",
                    "DELETE FROM identity_credential WHERE project_id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                }
                for table in [
                    "identity_project_endpoint",
                    "identity_project_endpoint_group",
                ] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE project_id = $1"))
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                }
                super::trusts::delete_for_project_in(tx, &id).await?;
                let n = sqlx::query("DELETE FROM identity_project WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("project", id.clone()));
                }
                super::keys::revoke_in(tx, super::keys::Revoke::project(&id)).await?;
                tx.record(kind::PROJECT, &id, Op::Delete).await
            })
        })
        .await
}
