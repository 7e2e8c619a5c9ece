//! Application credentials. Their access rules are rows of their own (`access_rules`), linked
//! in the credential's create transaction and unlinked by its delete.

use super::access_rules::{self, RuleRef};
use super::keys::{revoke_in, Revoke};
use super::{json, kind, s, Where};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, get_bool, get_opt_i64, get_opt_str, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub secret_hash: String,
    pub description: Option<String>,
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    /// Role ids delegated.
    pub roles: Vec<String>,
}

// The legacy `access_rules` JSON column (migration 0003) keeps its default and is not read.
const COLS: &str =
    "id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, roles";

fn row(r: &AnyRow) -> Result<AppCred> {
    Ok(AppCred {
        id: s(r, "id")?,
        name: s(r, "name")?,
        user_id: s(r, "user_id")?,
        project_id: s(r, "project_id")?,
        secret_hash: s(r, "secret_hash")?,
        description: get_opt_str(r, "description"),
        expires_at: get_opt_i64(r, "expires_at"),
        unrestricted: get_bool(r, "unrestricted"),
        roles: serde_json::from_value(json(r, "roles")?).unwrap_or_default(),
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<AppCred>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_app_cred WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn get_by_name(store: &Store, user_id: &str, name: &str) -> Result<Option<AppCred>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_app_cred WHERE user_id = $1 AND name = $2"
    ))
    .bind(user_id)
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn list(store: &Store, w: &Where) -> Result<Vec<AppCred>> {
    let sql = format!(
        "SELECT {COLS} FROM identity_app_cred{} ORDER BY name, id",
        w.sql()
    );
    let mut q = sqlx::query(&sql);
    for b in &w.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(store.pool()).await.map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// Creates a credential with its access rules (see [`access_rules::link_in`]); returns the
/// rules as linked, with their ids.
pub async fn create(
    store: &Store,
    c: &AppCred,
    rules: &[RuleRef],
) -> Result<Vec<strata_api::AccessRule>> {
    let c = c.clone();
    let rules = rules.to_vec();
    let name = c.name.clone();
    store
        .write(move |tx| {
            let c = c.clone();
            let rules = rules.clone();
            Box::pin(async move {
                sqlx::query(&format!(
                    "INSERT INTO identity_app_cred ({COLS}, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(&c.id)
                .bind(&c.name)
                .bind(&c.user_id)
                .bind(&c.project_id)
                .bind(&c.secret_hash)
                .bind(&c.description)
                .bind(c.expires_at)
                .bind(c.unrestricted as i64)
                .bind(serde_json::to_string(&c.roles).unwrap_or_default())
                .bind(now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                let linked = access_rules::link_in(tx, &c.user_id, &c.id, &rules).await?;
                tx.record(kind::APP_CRED, &c.id, Op::Create).await?;
                Ok(linked)
            })
        })
        .await
        .map_err(|e| match e {
            Error::AlreadyExists(_) => Error::conflict(format!(
                "Conflict occurred attempting to store application_credential - Duplicate entry found with name {name}."
            )),
            e => e,
        })
}

/// Deletes an application credential (its access rules stay) and revokes the tokens made from
/// it.
pub async fn delete(store: &Store, id: &str) -> Result<bool> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let n = sqlx::query("DELETE FROM identity_app_cred WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                access_rules::unlink_app_cred_in(tx, &id).await?;
                revoke_in(tx, Revoke::app_cred(&id)).await?;
                tx.record(kind::APP_CRED, &id, Op::Delete).await?;
                Ok(true)
            })
        })
        .await
}
