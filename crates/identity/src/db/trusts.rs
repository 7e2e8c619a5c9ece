//! OS-TRUST trusts and the roles they delegate.
//!
//! A deleted trust is removed with its roles, and a revocation event naming it is recorded in
//! the same transaction, so tokens issued under it stop validating at once on every replica.
//! Trusts redelegated from a deleted trust go with it (Keystone deletes them recursively).

use super::keys::{revoke_in, Revoke};
use super::{i, kind, s, Where};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, get_bool, get_opt_i64, get_opt_str, sqlx, AnyRow, Op, Store, Tx};

#[derive(Debug, Clone)]
pub struct Trust {
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: Option<String>,
    pub impersonation: bool,
    /// Microseconds since the epoch; `None` for no expiry.
    pub expires_at: Option<i64>,
    /// `None` for unlimited.
    pub remaining_uses: Option<i64>,
    /// The trust this one was redelegated from.
    pub redelegated_trust_id: Option<String>,
    /// How many more times this trust may be redelegated (0: not at all).
    pub redelegation_count: i64,
    /// Role ids delegated, as given (not expanded).
    pub roles: Vec<String>,
}

impl Trust {
    /// Whether the trust has expired at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Whether the trust may still be used to get a token at `now`: not expired and not used
    /// up. Keystone treats a trust that fails this as not found.
    pub fn usable(&self, now: i64) -> bool {
        !self.expired(now) && self.remaining_uses.is_none_or(|n| n > 0)
    }
}

const COLS: &str = "id, trustor_user_id, trustee_user_id, project_id, impersonation, expires_at, \
    remaining_uses, redelegated_trust_id, redelegation_count";

fn row(r: &AnyRow) -> Result<Trust> {
    Ok(Trust {
        id: s(r, "id")?,
        trustor_user_id: s(r, "trustor_user_id")?,
        trustee_user_id: s(r, "trustee_user_id")?,
        project_id: get_opt_str(r, "project_id"),
        impersonation: get_bool(r, "impersonation"),
        expires_at: get_opt_i64(r, "expires_at"),
        remaining_uses: get_opt_i64(r, "remaining_uses"),
        redelegated_trust_id: get_opt_str(r, "redelegated_trust_id"),
        redelegation_count: i(r, "redelegation_count")?,
        roles: Vec::new(),
    })
}

/// A trust by id, whatever its expiry and remaining uses (callers decide what those mean).
pub async fn get(store: &Store, id: &str) -> Result<Option<Trust>> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM identity_trust WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    let Some(mut t) = r.as_ref().map(row).transpose()? else {
        return Ok(None);
    };
    let roles =
        sqlx::query("SELECT role_id FROM identity_trust_role WHERE trust_id = $1 ORDER BY role_id")
            .bind(id)
            .fetch_all(store.pool())
            .await
            .map_err(from_sqlx)?;
    t.roles = roles
        .iter()
        .map(|r| s(r, "role_id"))
        .collect::<Result<_>>()?;
    Ok(Some(t))
}

/// Trusts matching `w`, without their roles (list views do not show them).
pub async fn list(store: &Store, w: &Where) -> Result<Vec<Trust>> {
    let sql = format!(
        "SELECT {COLS} FROM identity_trust{} ORDER BY created_at, id",
        w.sql()
    );
    let mut q = sqlx::query(&sql);
    for b in &w.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(store.pool()).await.map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// Creates a trust with its roles.
pub async fn create(store: &Store, t: &Trust) -> Result<()> {
    let t = t.clone();
    store
        .write(move |tx| {
            let t = t.clone();
            Box::pin(async move {
                sqlx::query(&format!(
                    "INSERT INTO identity_trust ({COLS}, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(&t.id)
                .bind(&t.trustor_user_id)
                .bind(&t.trustee_user_id)
                .bind(&t.project_id)
                .bind(t.impersonation as i64)
                .bind(t.expires_at)
                .bind(t.remaining_uses)
                .bind(&t.redelegated_trust_id)
                .bind(t.redelegation_count)
                .bind(now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                for role_id in &t.roles {
                    sqlx::query(
                        "INSERT INTO identity_trust_role (trust_id, role_id) VALUES ($1, $2) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&t.id)
                    .bind(role_id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                }
                tx.record(kind::TRUST, &t.id, Op::Create).await
            })
        })
        .await
        .map_err(|e| match e {
            Error::AlreadyExists(_) => {
                Error::conflict("Conflict occurred attempting to store trust - Duplicate entry.")
            }
            e => e,
        })
}

/// Takes one use of a limited-use trust; `false` when none is left (or the trust is gone).
/// Atomic: concurrent issuers never take the same last use.
///
/// Not recorded in the change log: nothing cached depends on the count (tokens already issued
/// stay valid; issuing reads the count from the store), so other replicas need not refresh.
pub async fn consume_use(store: &Store, id: &str) -> Result<bool> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE identity_trust SET remaining_uses = remaining_uses - 1 \
                     WHERE id = $1 AND remaining_uses > 0",
                )
                .bind(&id)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                Ok(n == 1)
            })
        })
        .await
}

/// Deletes a trust and the trusts redelegated from it, revoking their tokens. Returns the ids
/// deleted: empty when the trust did not exist.
pub async fn delete(store: &Store, id: &str) -> Result<Vec<String>> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move { delete_cascade_in(tx, vec![id]).await })
        })
        .await
}

/// Inside a user's deletion: deletes the trusts the user is trustor or trustee of.
pub async fn delete_for_user_in(tx: &mut Tx, user_id: &str) -> Result<()> {
    let roots = ids_where(
        tx,
        "SELECT id FROM identity_trust WHERE trustor_user_id = $1 OR trustee_user_id = $1",
        user_id,
    )
    .await?;
    delete_cascade_in(tx, roots).await.map(|_| ())
}

/// Inside a project's deletion: deletes the trusts on the project.
pub async fn delete_for_project_in(tx: &mut Tx, project_id: &str) -> Result<()> {
    let roots = ids_where(
        tx,
        "SELECT id FROM identity_trust WHERE project_id = $1",
        project_id,
    )
    .await?;
    delete_cascade_in(tx, roots).await.map(|_| ())
}

async fn ids_where(tx: &mut Tx, sql: &str, bind: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(sql)
        .bind(bind)
        .fetch_all(tx.conn())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| s(r, "id")).collect()
}

/// Deletes `roots` and, transitively, every trust redelegated from one of them; records a
/// revocation event and a change for each. Ids that do not exist are skipped.
async fn delete_cascade_in(tx: &mut Tx, roots: Vec<String>) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    let mut frontier = roots;
    while let Some(id) = frontier.pop() {
        if deleted.contains(&id) {
            continue;
        }
        let n = sqlx::query("DELETE FROM identity_trust WHERE id = $1")
            .bind(&id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        if n == 0 {
            continue;
        }
        sqlx::query("DELETE FROM identity_trust_role WHERE trust_id = $1")
            .bind(&id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        revoke_in(tx, Revoke::trust(&id)).await?;
        tx.record(kind::TRUST, &id, Op::Delete).await?;
        frontier.extend(
            ids_where(
                tx,
                "SELECT id FROM identity_trust WHERE redelegated_trust_id = $1",
                &id,
            )
            .await?,
        );
        deleted.push(id);
    }
    Ok(deleted)
}
