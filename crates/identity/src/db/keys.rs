//! Signing keys and revocation events.

use super::{i, kind, s};
use crate::token::{Key, RevocationEvent};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, get_opt_str, sqlx, Op, Store, Tx};

/// Signing keys, newest first.
pub async fn list_keys(store: &Store) -> Result<Vec<Key>> {
    let rows = sqlx::query(
        "SELECT id, secret, created_at FROM identity_signing_key ORDER BY created_at DESC, id",
    )
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok(Key {
                id: s(r, "id")?,
                secret: B64
                    .decode(s(r, "secret")?)
                    .map_err(|e| Error::internal(format!("signing key: {e}")))?,
                created_at: i(r, "created_at")?,
            })
        })
        .collect()
}

/// Adds a new signing key when the newest is older than `interval_us` (or there is none), and
/// drops keys beyond the newest `keep`. Safe to race: the check and the insert share a
/// transaction that serialises with every other writer.
pub async fn rotate_if_due(store: &Store, interval_us: i64, keep: u32) -> Result<bool> {
    store
        .write(move |tx| {
            Box::pin(async move {
                let newest: Option<i64> =
                    sqlx::query("SELECT MAX(created_at) AS m FROM identity_signing_key")
                        .fetch_one(tx.conn())
                        .await
                        .map_err(from_sqlx)?
                        .try_get::<Option<i64>, _>("m")
                        .map_err(from_sqlx)?;
                let now = now_micros();
                if newest.is_some_and(|t| now - t < interval_us) {
                    return Ok(false);
                }
                let k = Key::generate(now);
                sqlx::query(
                    "INSERT INTO identity_signing_key (id, secret, created_at) VALUES ($1, $2, $3)",
                )
                .bind(&k.id)
                .bind(B64.encode(&k.secret))
                .bind(k.created_at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                let rows =
                    sqlx::query("SELECT id FROM identity_signing_key ORDER BY created_at DESC, id")
                        .fetch_all(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                for r in rows.iter().skip(keep.max(1) as usize) {
                    let id = s(r, "id")?;
                    sqlx::query("DELETE FROM identity_signing_key WHERE id = $1")
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                }
                tx.record(kind::KEY, &k.id, Op::Create).await?;
                Ok(true)
            })
        })
        .await
}

use strata_store::Row;

/// What a revocation event matches.
#[derive(Debug, Clone, Default)]
pub struct Revoke {
    pub audit_id: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub app_cred_id: Option<String>,
    pub trust_id: Option<String>,
}

impl Revoke {
    pub fn audit(a: &str) -> Self {
        Revoke {
            audit_id: Some(a.into()),
            ..Default::default()
        }
    }
    pub fn user(u: &str) -> Self {
        Revoke {
            user_id: Some(u.into()),
            ..Default::default()
        }
    }
    pub fn project(p: &str) -> Self {
        Revoke {
            project_id: Some(p.into()),
            ..Default::default()
        }
    }
    pub fn domain(d: &str) -> Self {
        Revoke {
            domain_id: Some(d.into()),
            ..Default::default()
        }
    }
    pub fn user_project(u: &str, p: &str) -> Self {
        Revoke {
            user_id: Some(u.into()),
            project_id: Some(p.into()),
            ..Default::default()
        }
    }
    pub fn app_cred(c: &str) -> Self {
        Revoke {
            app_cred_id: Some(c.into()),
            ..Default::default()
        }
    }
    /// Every token issued under a trust.
    pub fn trust(t: &str) -> Self {
        Revoke {
            trust_id: Some(t.into()),
            ..Default::default()
        }
    }
}

/// Records a revocation event inside the caller's transaction.
pub async fn revoke_in(tx: &mut Tx, r: Revoke) -> Result<()> {
    let now = now_micros();
    let id = strata_core::ids::hex_id();
    sqlx::query(
        "INSERT INTO identity_revocation (id, audit_id, user_id, project_id, domain_id, app_cred_id, trust_id, issued_before, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&id)
    .bind(&r.audit_id)
    .bind(&r.user_id)
    .bind(&r.project_id)
    .bind(&r.domain_id)
    .bind(&r.app_cred_id)
    .bind(&r.trust_id)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(kind::REVOCATION, &id, Op::Create).await
}

/// Records a revocation event in its own transaction.
pub async fn revoke(store: &Store, r: Revoke) -> Result<()> {
    store
        .write(move |tx| {
            let r = r.clone();
            Box::pin(async move { revoke_in(tx, r).await })
        })
        .await
}

/// Events revoked after `since` (older ones only concern tokens that have expired), and prunes
/// the rest.
pub async fn list_revocations(store: &Store, since: i64) -> Result<Vec<RevocationEvent>> {
    let rows = sqlx::query(
        "SELECT audit_id, user_id, project_id, domain_id, app_cred_id, trust_id, issued_before \
         FROM identity_revocation WHERE revoked_at >= $1",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok(RevocationEvent {
                audit_id: get_opt_str(r, "audit_id"),
                user_id: get_opt_str(r, "user_id"),
                project_id: get_opt_str(r, "project_id"),
                domain_id: get_opt_str(r, "domain_id"),
                app_cred_id: get_opt_str(r, "app_cred_id"),
                trust_id: get_opt_str(r, "trust_id"),
                issued_before: i(r, "issued_before")?,
            })
        })
        .collect()
}

/// Deletes events that can no longer match an unexpired token.
pub async fn prune_revocations(store: &Store, before: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM identity_revocation WHERE revoked_at < $1")
            .bind(before)
            .execute(store.pool())
            .await
            .map_err(from_sqlx)?
            .rows_affected(),
    )
}
