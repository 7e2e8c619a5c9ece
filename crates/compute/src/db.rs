//! Queries of the compute service. Every mutation runs inside [`Store::write`] (or
//! `write_or_refuse`) and records a change: `compute.flavor` (flavor rows, their extra specs
//! and access lists), `compute.keypair` (id `<user_id>/<name>`), `compute.quota` (id
//! `<project_id>` or `<project_id>/<user_id>`) and `compute.quota_class`. Reads outside a
//! transaction use the pool; checks that must hold when the write lands (unique names, quota
//! counts) are made again inside the write, which the store's revision counter serialises
//! with every other write.

use crate::model::{Flavor, Keypair};
use serde_json::{Map, Value};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_opt_i64, get_opt_str, sqlx, AnyRow, Op, Row, Store, Tx};

/// Change-log kinds.
pub const FLAVOR: &str = "compute.flavor";
pub const KEYPAIR: &str = "compute.keypair";
pub const QUOTA: &str = "compute.quota";
pub const QUOTA_CLASS: &str = "compute.quota_class";

fn text(r: &AnyRow, col: &str) -> Result<String> {
    r.try_get::<String, _>(col).map_err(from_sqlx)
}
fn int(r: &AnyRow, col: &str) -> Result<i64> {
    r.try_get::<i64, _>(col).map_err(from_sqlx)
}

// ---------------------------------------------------------------- flavors

const FCOLS: &str = "id, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, rxtx_factor, \
    is_public, disabled, description, extra_specs, created_at, updated_at";

fn flavor_row(r: &AnyRow) -> Result<Flavor> {
    let specs: Map<String, Value> = serde_json::from_str(&text(r, "extra_specs")?)
        .map_err(|e| Error::internal(format!("extra_specs: {e}")))?;
    Ok(Flavor {
        id: text(r, "id")?,
        name: text(r, "name")?,
        memory_mb: int(r, "memory_mb")?,
        vcpus: int(r, "vcpus")?,
        root_gb: int(r, "root_gb")?,
        ephemeral_gb: int(r, "ephemeral_gb")?,
        swap: int(r, "swap")?,
        rxtx_factor: text(r, "rxtx_factor")?.parse().unwrap_or(1.0),
        is_public: int(r, "is_public")? != 0,
        disabled: int(r, "disabled")? != 0,
        description: get_opt_str(r, "description"),
        extra_specs: specs,
        created_at: int(r, "created_at")?,
        updated_at: get_opt_i64(r, "updated_at"),
    })
}

/// One flavor by its public id.
pub async fn get_flavor(store: &Store, id: &str) -> Result<Option<Flavor>> {
    let r = sqlx::query(&format!("SELECT {FCOLS} FROM compute_flavor WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(flavor_row).transpose()
}

/// One flavor by its public id, inside a write.
pub async fn get_flavor_tx(tx: &mut Tx, id: &str) -> Result<Option<Flavor>> {
    let r = sqlx::query(&format!("SELECT {FCOLS} FROM compute_flavor WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(flavor_row).transpose()
}

/// Whether a flavor is named `name`, inside a write.
pub async fn flavor_name_taken_tx(tx: &mut Tx, name: &str) -> Result<bool> {
    let r = sqlx::query("SELECT id FROM compute_flavor WHERE name = $1")
        .bind(name)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(r.is_some())
}

/// Every flavor; filters, sorting and paging are the caller's.
pub async fn list_flavors(store: &Store) -> Result<Vec<Flavor>> {
    let rows = sqlx::query(&format!("SELECT {FCOLS} FROM compute_flavor"))
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(flavor_row).collect()
}

/// Inserts a flavor (uniqueness checked by the caller in the same write).
pub async fn insert_flavor(tx: &mut Tx, f: &Flavor) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO compute_flavor ({FCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14)"
    ))
    .bind(&f.id)
    .bind(&f.name)
    .bind(f.memory_mb)
    .bind(f.vcpus)
    .bind(f.root_gb)
    .bind(f.ephemeral_gb)
    .bind(f.swap)
    .bind(f.rxtx_factor.to_string())
    .bind(f.is_public as i64)
    .bind(f.disabled as i64)
    .bind(&f.description)
    .bind(Value::Object(f.extra_specs.clone()).to_string())
    .bind(f.created_at)
    .bind(f.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(FLAVOR, &f.id, Op::Create).await
}

/// Writes a flavor's mutable fields (description, extra specs, `updated_at`).
pub async fn save_flavor(tx: &mut Tx, f: &Flavor) -> Result<()> {
    sqlx::query(
        "UPDATE compute_flavor SET description = $2, extra_specs = $3, updated_at = $4 \
         WHERE id = $1",
    )
    .bind(&f.id)
    .bind(&f.description)
    .bind(Value::Object(f.extra_specs.clone()).to_string())
    .bind(f.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(FLAVOR, &f.id, Op::Update).await
}

/// Deletes a flavor and its access list; `false` when it was already gone.
pub async fn delete_flavor(tx: &mut Tx, id: &str) -> Result<bool> {
    sqlx::query("DELETE FROM compute_flavor_access WHERE flavor_id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    let n = sqlx::query("DELETE FROM compute_flavor WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(FLAVOR, id, Op::Delete).await?;
    }
    Ok(n > 0)
}

/// Creates the seed flavors unless the store was seeded before (a marker row in
/// `compute_meta`, written in the same transaction). Seeds whose id or name is taken are
/// skipped.
pub async fn seed_flavors(store: &Store, flavors: &[Flavor]) -> Result<()> {
    let flavors = flavors.to_vec();
    store
        .write(move |tx| {
            let flavors = flavors.clone();
            Box::pin(async move {
                let done = sqlx::query("SELECT value FROM compute_meta WHERE name = $1")
                    .bind("flavors_seeded")
                    .fetch_optional(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                if done.is_some() {
                    return Ok(());
                }
                for f in &flavors {
                    if get_flavor_tx(tx, &f.id).await?.is_none()
                        && !flavor_name_taken_tx(tx, &f.name).await?
                    {
                        insert_flavor(tx, f).await?;
                    }
                }
                sqlx::query("INSERT INTO compute_meta (name, value) VALUES ($1, $2)")
                    .bind("flavors_seeded")
                    .bind("1")
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                Ok(())
            })
        })
        .await
}

/// The projects a flavor is shared with.
pub async fn flavor_access(store: &Store, flavor_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT project_id FROM compute_flavor_access WHERE flavor_id = $1 ORDER BY project_id",
    )
    .bind(flavor_id)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "project_id")).collect()
}

/// The flavors shared with a project.
pub async fn flavors_shared_with(store: &Store, project: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT flavor_id FROM compute_flavor_access WHERE project_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "flavor_id")).collect()
}

/// Adds (`add`) or removes a project from a flavor's access list; `false` when there was
/// nothing to do (already there, or not there).
pub async fn set_flavor_access(
    tx: &mut Tx,
    flavor_id: &str,
    project: &str,
    add: bool,
) -> Result<bool> {
    let exists = sqlx::query(
        "SELECT project_id FROM compute_flavor_access WHERE flavor_id = $1 AND project_id = $2",
    )
    .bind(flavor_id)
    .bind(project)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?
    .is_some();
    if exists == add {
        return Ok(false);
    }
    let sql = if add {
        "INSERT INTO compute_flavor_access (flavor_id, project_id) VALUES ($1, $2)"
    } else {
        "DELETE FROM compute_flavor_access WHERE flavor_id = $1 AND project_id = $2"
    };
    sqlx::query(sql)
        .bind(flavor_id)
        .bind(project)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(FLAVOR, flavor_id, Op::Update).await?;
    Ok(true)
}

// ---------------------------------------------------------------- keypairs

const KCOLS: &str = "user_id, name, id, key_type, public_key, fingerprint, created_at";

fn keypair_row(r: &AnyRow) -> Result<Keypair> {
    Ok(Keypair {
        user_id: text(r, "user_id")?,
        name: text(r, "name")?,
        id: int(r, "id")?,
        key_type: text(r, "key_type")?,
        public_key: text(r, "public_key")?,
        fingerprint: text(r, "fingerprint")?,
        created_at: int(r, "created_at")?,
    })
}

/// A user's keypairs by name.
pub async fn list_keypairs(store: &Store, user: &str) -> Result<Vec<Keypair>> {
    let rows = sqlx::query(&format!(
        "SELECT {KCOLS} FROM compute_keypair WHERE user_id = $1 ORDER BY name"
    ))
    .bind(user)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(keypair_row).collect()
}

/// One of a user's keypairs.
pub async fn get_keypair(store: &Store, user: &str, name: &str) -> Result<Option<Keypair>> {
    let r = sqlx::query(&format!(
        "SELECT {KCOLS} FROM compute_keypair WHERE user_id = $1 AND name = $2"
    ))
    .bind(user)
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(keypair_row).transpose()
}

/// How many keypairs a user holds, and whether `name` is one of them, inside a write.
pub async fn keypair_usage_tx(tx: &mut Tx, user: &str, name: &str) -> Result<(i64, bool)> {
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM compute_keypair WHERE user_id = $1")
        .bind(user)
        .fetch_one(tx.conn())
        .await
        .map_err(from_sqlx)?
        .try_get("n")
        .map_err(from_sqlx)?;
    let taken = sqlx::query("SELECT id FROM compute_keypair WHERE user_id = $1 AND name = $2")
        .bind(user)
        .bind(name)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?
        .is_some();
    Ok((count, taken))
}

/// How many keypairs a user holds.
pub async fn keypair_count(store: &Store, user: &str) -> Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM compute_keypair WHERE user_id = $1")
        .bind(user)
        .fetch_one(store.pool())
        .await
        .map_err(from_sqlx)?
        .try_get("n")
        .map_err(from_sqlx)
}

/// Inserts a keypair (name and quota checked by the caller in the same write).
pub async fn insert_keypair(tx: &mut Tx, k: &Keypair) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO compute_keypair ({KCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&k.user_id)
    .bind(&k.name)
    .bind(k.id)
    .bind(&k.key_type)
    .bind(&k.public_key)
    .bind(&k.fingerprint)
    .bind(k.created_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(KEYPAIR, &format!("{}/{}", k.user_id, k.name), Op::Create)
        .await
}

/// Deletes a keypair; `false` when there was none.
pub async fn delete_keypair(tx: &mut Tx, user: &str, name: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM compute_keypair WHERE user_id = $1 AND name = $2")
        .bind(user)
        .bind(name)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(KEYPAIR, &format!("{user}/{name}"), Op::Delete)
            .await?;
    }
    Ok(n > 0)
}

// ---------------------------------------------------------------- quotas

async fn overrides_on(
    conn: &mut sqlx::AnyConnection,
    project: &str,
    user: &str,
) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT resource, hard_limit FROM compute_quota WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project)
    .bind(user)
    .fetch_all(conn)
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((text(r, "resource")?, int(r, "hard_limit")?)))
        .collect()
}

/// The limits set for a project (`user` empty) or for one user in it.
pub async fn quota_overrides(
    store: &Store,
    project: &str,
    user: &str,
) -> Result<Vec<(String, i64)>> {
    let mut conn = store.pool().acquire().await.map_err(from_sqlx)?;
    overrides_on(&mut conn, project, user).await
}

/// The same, inside a write.
pub async fn quota_overrides_tx(
    tx: &mut Tx,
    project: &str,
    user: &str,
) -> Result<Vec<(String, i64)>> {
    overrides_on(tx.conn(), project, user).await
}

fn quota_change_id(project: &str, user: &str) -> String {
    if user.is_empty() {
        project.to_string()
    } else {
        format!("{project}/{user}")
    }
}

/// Sets one limit for a project (`user` empty) or a user in it.
pub async fn set_quota(
    tx: &mut Tx,
    project: &str,
    user: &str,
    resource: &str,
    limit: i64,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM compute_quota WHERE project_id = $1 AND user_id = $2 AND resource = $3",
    )
    .bind(project)
    .bind(user)
    .bind(resource)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    sqlx::query(
        "INSERT INTO compute_quota (project_id, user_id, resource, hard_limit) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(project)
    .bind(user)
    .bind(resource)
    .bind(limit)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(QUOTA, &quota_change_id(project, user), Op::Update)
        .await
}

/// Removes the limits of a project (and of all its users) when `user` is `None`, or of one
/// user.
pub async fn delete_quotas(tx: &mut Tx, project: &str, user: Option<&str>) -> Result<()> {
    match user {
        None => {
            sqlx::query("DELETE FROM compute_quota WHERE project_id = $1")
                .bind(project)
                .execute(tx.conn())
                .await
        }
        Some(u) => {
            sqlx::query("DELETE FROM compute_quota WHERE project_id = $1 AND user_id = $2")
                .bind(project)
                .bind(u)
                .execute(tx.conn())
                .await
        }
    }
    .map_err(from_sqlx)?;
    tx.record(
        QUOTA,
        &quota_change_id(project, user.unwrap_or("")),
        Op::Delete,
    )
    .await
}

async fn class_on(conn: &mut sqlx::AnyConnection, class: &str) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT resource, hard_limit FROM compute_quota_class WHERE class_name = $1")
            .bind(class)
            .fetch_all(conn)
            .await
            .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((text(r, "resource")?, int(r, "hard_limit")?)))
        .collect()
}

/// The limits a quota class sets.
pub async fn quota_class(store: &Store, class: &str) -> Result<Vec<(String, i64)>> {
    let mut conn = store.pool().acquire().await.map_err(from_sqlx)?;
    class_on(&mut conn, class).await
}

/// The same, inside a write.
pub async fn quota_class_tx(tx: &mut Tx, class: &str) -> Result<Vec<(String, i64)>> {
    class_on(tx.conn(), class).await
}

/// Sets one limit of a quota class.
pub async fn set_quota_class(tx: &mut Tx, class: &str, resource: &str, limit: i64) -> Result<()> {
    sqlx::query("DELETE FROM compute_quota_class WHERE class_name = $1 AND resource = $2")
        .bind(class)
        .bind(resource)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    sqlx::query(
        "INSERT INTO compute_quota_class (class_name, resource, hard_limit) VALUES ($1, $2, $3)",
    )
    .bind(class)
    .bind(resource)
    .bind(limit)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(QUOTA_CLASS, class, Op::Update).await
}
