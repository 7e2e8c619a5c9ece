//! Domain-specific configuration: one row per `(domain, group, option)`, the value kept as JSON
//! text. Which groups and options are allowed, and which are sensitive, is decided by the
//! caller (`api::domain_config`); this file only stores.

use super::{i, kind, s};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_bool, sqlx, AnyRow, Op, Store, Tx};

/// One stored option.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigOption {
    pub group: String,
    pub option: String,
    pub value: serde_json::Value,
    /// Stored but never shown (the LDAP password).
    pub sensitive: bool,
}

fn row(r: &AnyRow) -> Result<ConfigOption> {
    let raw = s(r, "value")?;
    Ok(ConfigOption {
        group: s(r, "config_group")?,
        option: s(r, "config_option")?,
        value: serde_json::from_str(&raw)
            .map_err(|e| Error::internal(format!("domain config value: {e}")))?,
        sensitive: get_bool(r, "sensitive"),
    })
}

/// Every option of a domain, sensitive ones included, ordered by group and option.
pub async fn list(store: &Store, domain_id: &str) -> Result<Vec<ConfigOption>> {
    let rows = sqlx::query(
        "SELECT config_group, config_option, value, sensitive FROM identity_domain_config \
         WHERE domain_id = $1 ORDER BY config_group, config_option",
    )
    .bind(domain_id)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

async fn count_in(
    tx: &mut Tx,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<i64> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM identity_domain_config WHERE domain_id = $1 \
         AND ($2 = '' OR config_group = $2) AND ($3 = '' OR config_option = $3)",
    )
    .bind(domain_id)
    .bind(group.unwrap_or(""))
    .bind(option.unwrap_or(""))
    .fetch_one(tx.conn())
    .await
    .map_err(from_sqlx)?;
    i(&r, "n")
}

/// Fails with not found unless the domain exists: checked in the writing transaction, so a
/// concurrent domain delete (which deletes the configuration) cannot leave options behind.
async fn require_domain_in(tx: &mut Tx, domain_id: &str) -> Result<()> {
    let found = sqlx::query("SELECT id FROM identity_domain WHERE id = $1")
        .bind(domain_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::not_found("domain", domain_id.to_string())),
    }
}

/// Inserts or overwrites each option.
async fn upsert_in(tx: &mut Tx, domain_id: &str, opts: &[ConfigOption]) -> Result<()> {
    for o in opts {
        let value = o.value.to_string();
        let n = sqlx::query(
            "UPDATE identity_domain_config SET value = $4, sensitive = $5 \
             WHERE domain_id = $1 AND config_group = $2 AND config_option = $3",
        )
        .bind(domain_id)
        .bind(&o.group)
        .bind(&o.option)
        .bind(&value)
        .bind(o.sensitive as i64)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO identity_domain_config (domain_id, config_group, config_option, value, sensitive) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(domain_id)
            .bind(&o.group)
            .bind(&o.option)
            .bind(&value)
            .bind(o.sensitive as i64)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        }
    }
    Ok(())
}

/// Replaces the whole configuration of a domain with `opts` (Keystone's create: no conflict
/// when one exists). Returns whether the domain had any option before.
pub async fn replace(store: &Store, domain_id: &str, opts: &[ConfigOption]) -> Result<bool> {
    let domain_id = domain_id.to_string();
    let opts = opts.to_vec();
    store
        .write(move |tx| {
            let (domain_id, opts) = (domain_id.clone(), opts.clone());
            Box::pin(async move {
                require_domain_in(tx, &domain_id).await?;
                let existed = count_in(tx, &domain_id, None, None).await? > 0;
                sqlx::query("DELETE FROM identity_domain_config WHERE domain_id = $1")
                    .bind(&domain_id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                upsert_in(tx, &domain_id, &opts).await?;
                tx.record(
                    kind::DOMAIN_CONFIG,
                    &domain_id,
                    if existed { Op::Update } else { Op::Create },
                )
                .await?;
                Ok(existed)
            })
        })
        .await
}

/// Merges `opts` into a domain's configuration. With `require`, the group (and option) must
/// already be configured, else nothing is written and `false` is returned.
pub async fn update(
    store: &Store,
    domain_id: &str,
    opts: &[ConfigOption],
    require: Option<(&str, Option<&str>)>,
) -> Result<bool> {
    let domain_id = domain_id.to_string();
    let opts = opts.to_vec();
    let require = require.map(|(g, o)| (g.to_string(), o.map(str::to_string)));
    store
        .write(move |tx| {
            let (domain_id, opts, require) = (domain_id.clone(), opts.clone(), require.clone());
            Box::pin(async move {
                require_domain_in(tx, &domain_id).await?;
                if let Some((g, o)) = &require {
                    if count_in(tx, &domain_id, Some(g), o.as_deref()).await? == 0 {
                        return Ok(false);
                    }
                }
                upsert_in(tx, &domain_id, &opts).await?;
                tx.record(kind::DOMAIN_CONFIG, &domain_id, Op::Update)
                    .await?;
                Ok(true)
            })
        })
        .await
}

/// Deletes a domain's whole configuration (`group` `None`), a group, or one option. Returns
/// `false` when a group or option was named and is not configured.
pub async fn delete(
    store: &Store,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<bool> {
    let domain_id = domain_id.to_string();
    let group = group.map(str::to_string);
    let option = option.map(str::to_string);
    store
        .write(move |tx| {
            let (domain_id, group, option) = (domain_id.clone(), group.clone(), option.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "DELETE FROM identity_domain_config WHERE domain_id = $1 \
                     AND ($2 = '' OR config_group = $2) AND ($3 = '' OR config_option = $3)",
                )
                .bind(&domain_id)
                .bind(group.as_deref().unwrap_or(""))
                .bind(option.as_deref().unwrap_or(""))
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n == 0 && group.is_some() {
                    return Ok(false);
                }
                if n > 0 {
                    tx.record(kind::DOMAIN_CONFIG, &domain_id, Op::Delete)
                        .await?;
                }
                Ok(true)
            })
        })
        .await
}
