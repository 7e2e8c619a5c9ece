//! Domains.

use super::{json, kind, s, Where};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_bool, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: serde_json::Value,
    pub extra: serde_json::Value,
}

fn row(r: &AnyRow) -> Result<Domain> {
    Ok(Domain {
        id: s(r, "id")?,
        name: s(r, "name")?,
        description: s(r, "description")?,
        enabled: get_bool(r, "enabled"),
        tags: serde_json::from_value(json(r, "tags")?).unwrap_or_default(),
        options: json(r, "options")?,
        extra: json(r, "extra")?,
    })
}

const COLS: &str = "id, name, description, enabled, tags, options, extra";

pub async fn get(store: &Store, id: &str) -> Result<Option<Domain>> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM identity_domain WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn get_by_name(store: &Store, name: &str) -> Result<Option<Domain>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_domain WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn list(store: &Store, w: &Where) -> Result<Vec<Domain>> {
    let rows = w
        .fetch(
            store,
            &format!("SELECT {COLS} FROM identity_domain"),
            "ORDER BY name, id",
        )
        .await?;
    rows.iter().map(row).collect()
}

fn dup(name: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::AlreadyExists(_) => Error::conflict(format!(
            "Conflict occurred attempting to store domain - Duplicate entry found with name {name}."
        )),
        e => e,
    }
}

pub async fn create(store: &Store, d: &Domain) -> Result<()> {
    let d = d.clone();
    let name = d.name.clone();
    store
        .write(move |tx| {
            let d = d.clone();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO identity_domain (id, name, description, enabled, tags, options, extra, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&d.id)
                .bind(&d.name)
                .bind(&d.description)
                .bind(d.enabled as i64)
                .bind(serde_json::to_string(&d.tags).unwrap_or_default())
                .bind(d.options.to_string())
                .bind(d.extra.to_string())
                .bind(strata_core::time::now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(kind::DOMAIN, &d.id, Op::Create).await
            })
        })
        .await
        .map_err(dup(&name))
}

pub async fn update(store: &Store, d: &Domain) -> Result<()> {
    let d = d.clone();
    let name = d.name.clone();
    store
        .write(move |tx| {
            let d = d.clone();
            Box::pin(async move {
                sqlx::query(
                    "UPDATE identity_domain SET name = $2, description = $3, enabled = $4, tags = $5, \
                     options = $6, extra = $7 WHERE id = $1",
                )
                .bind(&d.id)
                .bind(&d.name)
                .bind(&d.description)
                .bind(d.enabled as i64)
                .bind(serde_json::to_string(&d.tags).unwrap_or_default())
                .bind(d.options.to_string())
                .bind(d.extra.to_string())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(kind::DOMAIN, &d.id, Op::Update).await
            })
        })
        .await
        .map_err(dup(&name))
}

/// Deletes a domain and everything it owns (projects, users, groups, domain roles, their
/// assignments, credentials and the trusts naming them). The caller has checked it is
/// disabled.
pub async fn delete(store: &Store, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                // Trusts naming the domain's users or projects go first, with their tokens.
                for (table, is_user) in [("identity_user", true), ("identity_project", false)] {
                    let rows = sqlx::query(&format!("SELECT id FROM {table} WHERE domain_id = $1"))
                        .bind(&id)
                        .fetch_all(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                    for r in rows {
                        let member = super::s(&r, "id")?;
                        if is_user {
                            super::trusts::delete_for_user_in(tx, &member).await?;
                        } else {
                            super::trusts::delete_for_project_in(tx, &member).await?;
                        }
                    }
                }
                let c = tx.conn();
                for sql in [
                    "DELETE FROM identity_assignment WHERE target_id = $1 OR target_id IN (SELECT id FROM identity_project WHERE domain_id = $1) \
                     OR actor_id IN (SELECT id FROM identity_user WHERE domain_id = $1) OR actor_id IN (SELECT id FROM identity_group WHERE domain_id = $1) \
                     OR role_id IN (SELECT id FROM identity_role WHERE domain_id = $1)",
                    "DELETE FROM identity_password WHERE user_id IN (SELECT id FROM identity_user WHERE domain_id = $1)",
                    "DELETE FROM identity_group_member WHERE group_id IN (SELECT id FROM identity_group WHERE domain_id = $1) \
                     OR user_id IN (SELECT id FROM identity_user WHERE domain_id = $1)",
                    "DELETE FROM identity_app_cred_access_rule WHERE app_cred_id IN (SELECT id FROM identity_app_cred WHERE user_id IN (SELECT id FROM identity_user WHERE domain_id = $1))",
                    "DELETE FROM identity_app_cred WHERE user_id IN (SELECT id FROM identity_user WHERE domain_id = $1)",
                    "DELETE FROM identity_access_rule WHERE user_id IN (SELECT id FROM identity_user WHERE domain_id = $1)",
                    "DELETE FROM identity_implied_role WHERE prior_role_id IN (SELECT id FROM identity_role WHERE domain_id = $1) \
                     OR implied_role_id IN (SELECT id FROM identity_role WHERE domain_id = $1)",
                    "DELETE FROM identity_user WHERE domain_id = $1",
                    "DELETE FROM identity_group WHERE domain_id = $1",
                    "DELETE FROM identity_domain_config WHERE domain_id = $1",
                    "DELETE FROM identity_project_endpoint WHERE project_id = $1 \
                     OR project_id IN (SELECT id FROM identity_project WHERE domain_id = $1)",
                    "DELETE FROM identity_project_endpoint_group WHERE project_id = $1 \
                     OR project_id IN (SELECT id FROM identity_project WHERE domain_id = $1)",
                    "DELETE FROM identity_project WHERE domain_id = $1",
                    "DELETE FROM identity_role WHERE domain_id = $1",
                ] {
                    sqlx::query(sql).bind(&id).execute(&mut *c).await.map_err(from_sqlx)?;
                }
                let n = sqlx::query("DELETE FROM identity_domain WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("domain", id.clone()));
                }
                tx.record(kind::DOMAIN, &id, Op::Delete).await
            })
        })
        .await
}
