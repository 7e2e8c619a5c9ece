//! Access rules of application credentials: rows per user, shared by that user's credentials
//! through `identity_app_cred_access_rule`.
//!
//! A rule is created by the application credential create that first names it and is never
//! changed; the same service, method and path for one user is always the same rule. It outlives
//! its credentials and may be deleted once no credential uses it. Writers are serialised by
//! [`Store::write`], so "look up, else insert" inside one transaction cannot race another.

use super::{kind, s};
use strata_api::AccessRule;
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, sqlx, AnyRow, Op, Store, Tx};

/// One rule named by an application credential create request, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRef {
    /// `{"id"}`: one of the user's existing rules.
    Id(String),
    /// `{"service", "method", "path"}`, with an `id` of the client's choosing for the rule if
    /// it is new (Keystone accepts one; an existing rule keeps its id).
    Rule {
        id: Option<String>,
        service: String,
        method: String,
        path: String,
    },
}

const COLS: &str = "id, service, method, path";

fn row(r: &AnyRow) -> Result<AccessRule> {
    Ok(AccessRule {
        id: s(r, "id")?,
        service: s(r, "service")?,
        method: s(r, "method")?,
        path: s(r, "path")?,
    })
}

fn not_found(id: &str) -> Error {
    Error::not_found("access rule", id)
}

/// One of `user_id`'s rules.
pub async fn get(store: &Store, user_id: &str, id: &str) -> Result<Option<AccessRule>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_access_rule WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// `user_id`'s rules.
pub async fn list_for_user(store: &Store, user_id: &str) -> Result<Vec<AccessRule>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_access_rule WHERE user_id = $1 ORDER BY service, path, method, id"
    ))
    .bind(user_id)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// The rules of an application credential, in the order its create request named them.
pub async fn list_for_app_cred(store: &Store, app_cred_id: &str) -> Result<Vec<AccessRule>> {
    let rows = sqlx::query(
        "SELECT r.id, r.service, r.method, r.path FROM identity_access_rule r \
         JOIN identity_app_cred_access_rule l ON l.access_rule_id = r.id \
         WHERE l.app_cred_id = $1 ORDER BY l.ordinal, r.id",
    )
    .bind(app_cred_id)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

async fn get_in(tx: &mut Tx, id: &str) -> Result<Option<(String, AccessRule)>> {
    let r = sqlx::query(&format!(
        "SELECT user_id, {COLS} FROM identity_access_rule WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?;
    r.as_ref()
        .map(|r| Ok((s(r, "user_id")?, row(r)?)))
        .transpose()
}

/// Resolves the rules a new application credential names to rows of `user_id` — an existing
/// rule by id (404 unless it is the user's), else the user's rule with the same service, method
/// and path, else a new one — and links them to `app_cred_id`. Returns them in request order,
/// each once. Runs in the caller's transaction (the credential's insert); re-running the whole
/// transaction is safe.
pub(crate) async fn link_in(
    tx: &mut Tx,
    user_id: &str,
    app_cred_id: &str,
    refs: &[RuleRef],
) -> Result<Vec<AccessRule>> {
    let mut linked: Vec<AccessRule> = Vec::with_capacity(refs.len());
    for r in refs {
        let rule = match r {
            RuleRef::Id(id) => match get_in(tx, id).await? {
                Some((owner, rule)) if owner == user_id => rule,
                _ => return Err(not_found(id)),
            },
            RuleRef::Rule {
                id,
                service,
                method,
                path,
            } => {
                let by_id = match id {
                    Some(id) => match get_in(tx, id).await? {
                        Some((owner, rule)) if owner == user_id => Some(rule),
                        // Another user's rule id is not the caller's to name or to reuse.
                        Some(_) => return Err(not_found(id)),
                        None => None,
                    },
                    None => None,
                };
                match by_id {
                    Some(rule) => rule,
                    None => {
                        find_or_create_in(tx, user_id, id.as_deref(), service, method, path).await?
                    }
                }
            }
        };
        if linked.iter().any(|l| l.id == rule.id) {
            continue;
        }
        sqlx::query(
            "INSERT INTO identity_app_cred_access_rule (app_cred_id, access_rule_id, ordinal) \
             VALUES ($1, $2, $3)",
        )
        .bind(app_cred_id)
        .bind(&rule.id)
        .bind(linked.len() as i64)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
        linked.push(rule);
    }
    Ok(linked)
}

async fn find_or_create_in(
    tx: &mut Tx,
    user_id: &str,
    id: Option<&str>,
    service: &str,
    method: &str,
    path: &str,
) -> Result<AccessRule> {
    let existing = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_access_rule \
         WHERE user_id = $1 AND service = $2 AND method = $3 AND path = $4"
    ))
    .bind(user_id)
    .bind(service)
    .bind(method)
    .bind(path)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?;
    if let Some(r) = existing {
        return row(&r);
    }
    let rule = AccessRule {
        id: id.map_or_else(strata_core::ids::hex_id, str::to_string),
        service: service.to_string(),
        method: method.to_string(),
        path: path.to_string(),
    };
    sqlx::query(
        "INSERT INTO identity_access_rule (id, user_id, service, method, path, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&rule.id)
    .bind(user_id)
    .bind(&rule.service)
    .bind(&rule.method)
    .bind(&rule.path)
    .bind(now_micros())
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(kind::ACCESS_RULE, &rule.id, Op::Create).await?;
    Ok(rule)
}

/// Unlinks an application credential's rules (the rules stay), in the caller's transaction.
pub(crate) async fn unlink_app_cred_in(tx: &mut Tx, app_cred_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM identity_app_cred_access_rule WHERE app_cred_id = $1")
        .bind(app_cred_id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// Keystone's refusal to delete a rule a credential still uses.
pub const IN_USE: &str = "May not delete access rule in use";

/// Deletes one of `user_id`'s rules: `NotFound` when it has no such rule, `Forbidden` while an
/// application credential uses it (as Keystone, which answers 403). Links left by credentials
/// deleted without unlinking (none should be) do not count and go with the rule.
pub async fn delete(store: &Store, user_id: &str, id: &str) -> Result<()> {
    let (user_id, id) = (user_id.to_string(), id.to_string());
    store
        .write(move |tx| {
            let (user_id, id) = (user_id.clone(), id.clone());
            Box::pin(async move {
                match get_in(tx, &id).await? {
                    Some((owner, _)) if owner == user_id => {}
                    _ => return Err(not_found(&id)),
                }
                let used = sqlx::query(
                    "SELECT l.app_cred_id FROM identity_app_cred_access_rule l \
                     JOIN identity_app_cred c ON c.id = l.app_cred_id \
                     WHERE l.access_rule_id = $1 LIMIT 1",
                )
                .bind(&id)
                .fetch_optional(tx.conn())
                .await
                .map_err(from_sqlx)?;
                if used.is_some() {
                    return Err(Error::forbidden(IN_USE));
                }
                for sql in [
                    "DELETE FROM identity_app_cred_access_rule WHERE access_rule_id = $1",
                    "DELETE FROM identity_access_rule WHERE id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                }
                tx.record(kind::ACCESS_RULE, &id, Op::Delete).await
            })
        })
        .await
}
