//! Users and their password history.

use super::keys::{revoke_in, Revoke};
use super::{i, json, kind, s, Where};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, get_bool, get_opt_i64, get_opt_str, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub domain_id: String,
    pub name: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub description: Option<String>,
    pub options: serde_json::Value,
    pub extra: serde_json::Value,
    pub failed_auth_count: i64,
    pub failed_auth_at: Option<i64>,
    /// Expiry of the current password, when it has one.
    pub password_expires_at: Option<i64>,
}

/// A stored password.
#[derive(Debug, Clone)]
pub struct Password {
    pub hash: String,
    pub self_service: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

const COLS: &str = "u.id, u.domain_id, u.name, u.enabled, u.default_project_id, u.description, \
    u.options, u.extra, u.failed_auth_count, u.failed_auth_at, \
    (SELECT p.expires_at FROM identity_password p WHERE p.user_id = u.id \
     ORDER BY p.created_at DESC LIMIT 1) AS password_expires_at";

fn row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: s(r, "id")?,
        domain_id: s(r, "domain_id")?,
        name: s(r, "name")?,
        enabled: get_bool(r, "enabled"),
        default_project_id: get_opt_str(r, "default_project_id"),
        description: get_opt_str(r, "description"),
        options: json(r, "options")?,
        extra: json(r, "extra")?,
        failed_auth_count: i(r, "failed_auth_count")?,
        failed_auth_at: get_opt_i64(r, "failed_auth_at"),
        password_expires_at: get_opt_i64(r, "password_expires_at"),
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<User>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_user u WHERE u.id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn get_by_name(store: &Store, domain_id: &str, name: &str) -> Result<Option<User>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_user u WHERE u.domain_id = $1 AND u.name = $2"
    ))
    .bind(domain_id)
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// Users matching `w` (columns prefixed `u.`).
pub async fn list(store: &Store, w: &Where) -> Result<Vec<User>> {
    let sql = format!(
        "SELECT {COLS} FROM identity_user u{} ORDER BY u.name, u.id",
        w.sql()
    );
    let mut q = sqlx::query(&sql);
    for b in &w.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(store.pool()).await.map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

fn dup(name: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::AlreadyExists(_) => Error::conflict(format!(
            "Conflict occurred attempting to store user - Duplicate entry found with name {name}."
        )),
        e => e,
    }
}

/// Creates a user, with its first password when given.
pub async fn create(store: &Store, u: &User, password: Option<Password>) -> Result<()> {
    let u = u.clone();
    let name = u.name.clone();
    store
        .write(move |tx| {
            let (u, password) = (u.clone(), password.clone());
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO identity_user (id, domain_id, name, enabled, default_project_id, description, options, extra, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&u.id)
                .bind(&u.domain_id)
                .bind(&u.name)
                .bind(u.enabled as i64)
                .bind(&u.default_project_id)
                .bind(&u.description)
                .bind(u.options.to_string())
                .bind(u.extra.to_string())
                .bind(now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                if let Some(p) = password {
                    insert_password(tx.conn(), &u.id, &p).await?;
                }
                tx.record(kind::USER, &u.id, Op::Create).await
            })
        })
        .await
        .map_err(dup(&name))
}

async fn insert_password(c: &mut sqlx::AnyConnection, user_id: &str, p: &Password) -> Result<()> {
    sqlx::query(
        "INSERT INTO identity_password (id, user_id, hash, self_service, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(strata_core::ids::hex_id())
    .bind(user_id)
    .bind(&p.hash)
    .bind(p.self_service as i64)
    .bind(p.expires_at)
    .bind(p.created_at)
    .execute(c)
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Updates a user's attributes and, when given, sets a new password. `revoke` revokes every
/// token of the user in the same transaction (disable, password change).
pub async fn update(
    store: &Store,
    u: &User,
    password: Option<Password>,
    revoke: bool,
) -> Result<()> {
    let u = u.clone();
    let name = u.name.clone();
    store
        .write(move |tx| {
            let (u, password) = (u.clone(), password.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE identity_user SET name = $2, enabled = $3, default_project_id = $4, \
                     description = $5, options = $6, extra = $7, failed_auth_count = $8, failed_auth_at = $9 \
                     WHERE id = $1",
                )
                .bind(&u.id)
                .bind(&u.name)
                .bind(u.enabled as i64)
                .bind(&u.default_project_id)
                .bind(&u.description)
                .bind(u.options.to_string())
                .bind(u.extra.to_string())
                .bind(u.failed_auth_count)
                .bind(u.failed_auth_at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("user", u.id.clone()));
                }
                if let Some(p) = password {
                    insert_password(tx.conn(), &u.id, &p).await?;
                }
                if revoke {
                    revoke_in(tx, Revoke::user(&u.id)).await?;
                }
                tx.record(kind::USER, &u.id, Op::Update).await
            })
        })
        .await
        .map_err(dup(&name))
}

/// Records the outcome of a password check: a failure bumps the counter, a success after
/// failures clears it. Not a change of the user as clients see it, so nothing is revoked.
pub async fn record_auth_result(store: &Store, user_id: &str, failed: bool) -> Result<()> {
    let user_id = user_id.to_string();
    store
        .write(move |tx| {
            let user_id = user_id.clone();
            Box::pin(async move {
                let sql = if failed {
                    "UPDATE identity_user SET failed_auth_count = failed_auth_count + 1, failed_auth_at = $2 WHERE id = $1"
                } else {
                    "UPDATE identity_user SET failed_auth_count = 0, failed_auth_at = NULL, last_active_at = $2 WHERE id = $1"
                };
                sqlx::query(sql)
                    .bind(&user_id)
                    .bind(now_micros())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                Ok(())
            })
        })
        .await
}

/// The newest `n` passwords of a user, newest first.
pub async fn passwords(store: &Store, user_id: &str, n: i64) -> Result<Vec<Password>> {
    let rows = sqlx::query(
        "SELECT hash, self_service, expires_at, created_at FROM identity_password \
         WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(n)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok(Password {
                hash: s(r, "hash")?,
                self_service: get_bool(r, "self_service"),
                expires_at: get_opt_i64(r, "expires_at"),
                created_at: i(r, "created_at")?,
            })
        })
        .collect()
}

/// Deletes a user with its passwords, memberships, assignments, application credentials and
/// access rules, credentials and the trusts it is trustor or trustee of, revoking its tokens.
pub async fn delete(store: &Store, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                for sql in [
                    "DELETE FROM identity_password WHERE user_id = $1",
                    "DELETE FROM identity_group_member WHERE user_id = $1",
                    "DELETE FROM identity_assignment WHERE actor_id = $1",
                    "DELETE FROM identity_app_cred_access_rule WHERE app_cred_id IN (SELECT id FROM identity_app_cred WHERE user_id = $1)",
                    "DELETE FROM identity_app_cred WHERE user_id = $1",
                    "DELETE FROM identity_access_rule WHERE user_id = $1",
                    "DELETE FROM identity_credential WHERE user_id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                }
                super::trusts::delete_for_user_in(tx, &id).await?;
                let n = sqlx::query("DELETE FROM identity_user WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("user", id.clone()));
                }
                revoke_in(tx, Revoke::user(&id)).await?;
                tx.record(kind::USER, &id, Op::Delete).await
            })
        })
        .await
}

/// Ids of the groups `user_id` belongs to.
pub async fn group_ids(store: &Store, user_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT group_id FROM identity_group_member WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| s(r, "group_id")).collect()
}
