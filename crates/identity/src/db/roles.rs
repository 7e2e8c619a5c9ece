//! Roles and implied roles.

use super::{json, kind, s, Where};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, get_opt_str, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// `None` for global roles.
    pub domain_id: Option<String>,
    pub description: Option<String>,
    pub options: serde_json::Value,
    pub extra: serde_json::Value,
}

const COLS: &str = "id, name, domain_id, description, options, extra";

fn row(r: &AnyRow) -> Result<Role> {
    let d = s(r, "domain_id")?;
    Ok(Role {
        id: s(r, "id")?,
        name: s(r, "name")?,
        domain_id: if d.is_empty() { None } else { Some(d) },
        description: get_opt_str(r, "description"),
        options: json(r, "options")?,
        extra: json(r, "extra")?,
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Role>> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM identity_role WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// A role by name: global when `domain_id` is `None`.
pub async fn get_by_name(
    store: &Store,
    domain_id: Option<&str>,
    name: &str,
) -> Result<Option<Role>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_role WHERE domain_id = $1 AND name = $2"
    ))
    .bind(domain_id.unwrap_or(""))
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

pub async fn list(store: &Store, w: &Where) -> Result<Vec<Role>> {
    let rows = w
        .fetch(
            store,
            &format!("SELECT {COLS} FROM identity_role"),
            "ORDER BY name, id",
        )
        .await?;
    rows.iter().map(row).collect()
}

/// Keystone's conflict message: the domain is named for domain-specific roles.
fn dup(name: String, domain_id: Option<String>) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::AlreadyExists(_) => {
            let at = domain_id
                .as_ref()
                .map(|d| format!(" at domain ID {d}"))
                .unwrap_or_default();
            Error::conflict(format!(
                "Conflict occurred attempting to store role - Duplicate entry found with name \
                 {name}{at}."
            ))
        }
        e => e,
    }
}

pub async fn create(store: &Store, r: &Role) -> Result<()> {
    let r = r.clone();
    let (name, domain_id) = (r.name.clone(), r.domain_id.clone());
    store
        .write(move |tx| {
            let r = r.clone();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO identity_role (id, name, domain_id, description, options, extra, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&r.id)
                .bind(&r.name)
                .bind(r.domain_id.clone().unwrap_or_default())
                .bind(&r.description)
                .bind(r.options.to_string())
                .bind(r.extra.to_string())
                .bind(now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(kind::ROLE, &r.id, Op::Create).await
            })
        })
        .await
        .map_err(dup(name, domain_id))
}

pub async fn update(store: &Store, r: &Role) -> Result<()> {
    let r = r.clone();
    let (name, domain_id) = (r.name.clone(), r.domain_id.clone());
    store
        .write(move |tx| {
            let r = r.clone();
            Box::pin(async move {
                sqlx::query(
                    "UPDATE identity_role SET name = $2, description = $3, options = $4, extra = $5 WHERE id = $1",
                )
                .bind(&r.id)
                .bind(&r.name)
                .bind(&r.description)
                .bind(r.options.to_string())
                .bind(r.extra.to_string())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(kind::ROLE, &r.id, Op::Update).await
            })
        })
        .await
        .map_err(dup(name, domain_id))
}

/// Deletes a role with its assignments and implication rules.
pub async fn delete(store: &Store, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                for sql in [
                    "DELETE FROM identity_assignment WHERE role_id = $1",
                    "DELETE FROM identity_implied_role WHERE prior_role_id = $1 OR implied_role_id = $1",
                ] {
                    sqlx::query(sql).bind(&id).execute(tx.conn()).await.map_err(from_sqlx)?;
                }
                let n = sqlx::query("DELETE FROM identity_role WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("role", id.clone()));
                }
                tx.record(kind::ROLE, &id, Op::Delete).await
            })
        })
        .await
}

/// Every implication rule as `(prior, implied)`.
pub async fn implications(store: &Store) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT prior_role_id, implied_role_id FROM identity_implied_role")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((s(r, "prior_role_id")?, s(r, "implied_role_id")?)))
        .collect()
}

/// Whether the rule `prior` implies `implied` exists.
pub async fn implication_exists(store: &Store, prior: &str, implied: &str) -> Result<bool> {
    let r = sqlx::query(
        "SELECT prior_role_id FROM identity_implied_role WHERE prior_role_id = $1 AND implied_role_id = $2",
    )
    .bind(prior)
    .bind(implied)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    Ok(r.is_some())
}

/// Adds `prior` implies `implied`. Idempotent.
pub async fn imply(store: &Store, prior: &str, implied: &str) -> Result<bool> {
    let (prior, implied) = (prior.to_string(), implied.to_string());
    store
        .write(move |tx| {
            let (prior, implied) = (prior.clone(), implied.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "INSERT INTO identity_implied_role (prior_role_id, implied_role_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&prior)
                .bind(&implied)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(kind::ROLE, &prior, Op::Update).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// Removes `prior` implies `implied`; returns whether it existed.
pub async fn unimply(store: &Store, prior: &str, implied: &str) -> Result<bool> {
    let (prior, implied) = (prior.to_string(), implied.to_string());
    store
        .write(move |tx| {
            let (prior, implied) = (prior.clone(), implied.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "DELETE FROM identity_implied_role WHERE prior_role_id = $1 AND implied_role_id = $2",
                )
                .bind(&prior)
                .bind(&implied)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(kind::ROLE, &prior, Op::Update).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// Expands `ids` with every role they imply, transitively, keeping the order of first
/// appearance.
pub fn expand(ids: &[String], rules: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<String> = ids.iter().rev().cloned().collect();
    while let Some(id) = stack.pop() {
        if out.contains(&id) {
            continue;
        }
        for (p, imp) in rules.iter().rev() {
            if p == &id {
                stack.push(imp.clone());
            }
        }
        out.push(id);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn expansion_is_transitive_and_cycle_safe() {
        let rules = vec![
            ("admin".to_string(), "member".to_string()),
            ("member".to_string(), "reader".to_string()),
            ("reader".to_string(), "admin".to_string()),
        ];
        let got = super::expand(&["admin".to_string()], &rules);
        assert_eq!(got, vec!["admin", "member", "reader"]);
        let got = super::expand(&["member".to_string(), "x".to_string()], &rules[..2]);
        assert_eq!(got, vec!["member", "reader", "x"]);
    }
}
