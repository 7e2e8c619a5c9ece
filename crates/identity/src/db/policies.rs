//! Policy blobs (`/v3/policies`) and OAuth1 consumers (`/v3/OS-OAUTH1/consumers`): records
//! Keystone keeps for other services and clients, stored here and not interpreted.

use super::{json, kind, s, Where};
use strata_core::{time::now_micros, Result};
use strata_store::{from_sqlx, get_opt_str, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    /// `type` on the wire: the media type of the blob (`application/json`, …).
    pub kind: String,
    pub blob: String,
    pub extra: serde_json::Value,
}

#[derive(Clone)]
pub struct Consumer {
    pub id: String,
    pub description: Option<String>,
    /// Shown once, in the create response.
    pub secret: String,
    pub extra: serde_json::Value,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("id", &self.id)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

fn policy_row(r: &AnyRow) -> Result<Policy> {
    Ok(Policy {
        id: s(r, "id")?,
        kind: s(r, "type")?,
        blob: s(r, "blob")?,
        extra: json(r, "extra")?,
    })
}

fn consumer_row(r: &AnyRow) -> Result<Consumer> {
    Ok(Consumer {
        id: s(r, "id")?,
        description: get_opt_str(r, "description"),
        secret: s(r, "secret")?,
        extra: json(r, "extra")?,
    })
}

/// Policies matching `w` (columns of `identity_policy`).
pub async fn list_policies(store: &Store, w: &Where) -> Result<Vec<Policy>> {
    let rows = w
        .fetch(
            store,
            "SELECT id, type, blob, extra FROM identity_policy",
            "ORDER BY id",
        )
        .await?;
    rows.iter().map(policy_row).collect()
}

pub async fn get_policy(store: &Store, id: &str) -> Result<Option<Policy>> {
    let mut w = Where::default();
    w.eq("id", id);
    Ok(list_policies(store, &w).await?.into_iter().next())
}

/// Inserts (`create`) or replaces a policy. An update of a missing policy changes nothing.
pub async fn upsert_policy(store: &Store, p: &Policy, create: bool) -> Result<()> {
    let p = p.clone();
    store
        .write(move |tx| {
            let p = p.clone();
            Box::pin(async move {
                if create {
                    sqlx::query(
                        "INSERT INTO identity_policy (id, type, blob, extra, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&p.id)
                    .bind(&p.kind)
                    .bind(&p.blob)
                    .bind(p.extra.to_string())
                    .bind(now_micros())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                } else {
                    sqlx::query(
                        "UPDATE identity_policy SET type = $2, blob = $3, extra = $4 WHERE id = $1",
                    )
                    .bind(&p.id)
                    .bind(&p.kind)
                    .bind(&p.blob)
                    .bind(p.extra.to_string())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                }
                let op = if create { Op::Create } else { Op::Update };
                tx.record(kind::POLICY, &p.id, op).await
            })
        })
        .await
}

pub async fn list_consumers(store: &Store) -> Result<Vec<Consumer>> {
    let rows = sqlx::query(
        "SELECT id, description, secret, extra FROM identity_oauth_consumer ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(consumer_row).collect()
}

pub async fn get_consumer(store: &Store, id: &str) -> Result<Option<Consumer>> {
    let r = sqlx::query(
        "SELECT id, description, secret, extra FROM identity_oauth_consumer WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(consumer_row).transpose()
}

/// Inserts a consumer (`create`) or updates its description and extra attributes (the secret
/// never changes).
pub async fn upsert_consumer(store: &Store, c: &Consumer, create: bool) -> Result<()> {
    let c = c.clone();
    store
        .write(move |tx| {
            let c = c.clone();
            Box::pin(async move {
                if create {
                    sqlx::query(
                        "INSERT INTO identity_oauth_consumer (id, description, secret, extra, \
                         created_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&c.id)
                    .bind(&c.description)
                    .bind(&c.secret)
                    .bind(c.extra.to_string())
                    .bind(now_micros())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                } else {
                    sqlx::query(
                        "UPDATE identity_oauth_consumer SET description = $2, extra = $3 \
                         WHERE id = $1",
                    )
                    .bind(&c.id)
                    .bind(&c.description)
                    .bind(c.extra.to_string())
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                }
                let op = if create { Op::Create } else { Op::Update };
                tx.record(kind::CONSUMER, &c.id, op).await
            })
        })
        .await
}

/// Deletes a policy (`identity_policy`) or a consumer (`identity_oauth_consumer`). `false` when
/// it does not exist.
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
