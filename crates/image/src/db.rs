//! Queries on `image_image` (and, in [`members`], on `image_member`). Every mutation runs inside
//! [`Store::write`] and records an `image.image` change.

pub mod members;

use crate::model::Image;
use serde_json::{Map, Value};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_bool, get_opt_i64, get_opt_str, sqlx, AnyRow, Op, Row, Store};

/// Change-log kind of image records.
pub const KIND: &str = "image.image";

const COLS: &str = "id, name, owner, status, visibility, protected, os_hidden, disk_format, \
    container_format, min_disk, min_ram, size, virtual_size, checksum, os_hash_algo, \
    os_hash_value, properties, tags, created_at, updated_at";

fn int(r: &AnyRow, col: &str) -> Result<i64> {
    r.try_get::<i64, _>(col).map_err(from_sqlx)
}

fn row(r: &AnyRow) -> Result<Image> {
    let text = |col: &str| -> Result<String> { r.try_get::<String, _>(col).map_err(from_sqlx) };
    let properties: Map<String, Value> = serde_json::from_str(&text("properties")?)
        .map_err(|e| Error::internal(format!("image properties: {e}")))?;
    let tags: Vec<String> = serde_json::from_str(&text("tags")?)
        .map_err(|e| Error::internal(format!("image tags: {e}")))?;
    Ok(Image {
        id: text("id")?,
        name: get_opt_str(r, "name"),
        owner: text("owner")?,
        status: text("status")?,
        visibility: text("visibility")?,
        protected: get_bool(r, "protected"),
        os_hidden: get_bool(r, "os_hidden"),
        disk_format: get_opt_str(r, "disk_format"),
        container_format: get_opt_str(r, "container_format"),
        min_disk: int(r, "min_disk")?,
        min_ram: int(r, "min_ram")?,
        size: get_opt_i64(r, "size"),
        virtual_size: get_opt_i64(r, "virtual_size"),
        checksum: get_opt_str(r, "checksum"),
        os_hash_algo: get_opt_str(r, "os_hash_algo"),
        os_hash_value: get_opt_str(r, "os_hash_value"),
        properties,
        tags,
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Image>> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM image_image WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// Every image the caller could be shown: all of them when `project` is `None` (admins), else
/// the project's own, the public and community ones, and the shared ones the project is a
/// member of (whatever the membership's status). Filters, member status, sorting and paging
/// are applied by the caller.
// TODO-perf: push the equality filters, the sort and the marker into SQL once catalogs grow
// past a few thousand images.
pub async fn list_candidates(store: &Store, project: Option<&str>) -> Result<Vec<Image>> {
    let rows = match project {
        None => {
            sqlx::query(&format!("SELECT {COLS} FROM image_image"))
                .fetch_all(store.pool())
                .await
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM image_image WHERE owner = $1 \
             OR visibility IN ('public', 'community') \
             OR (visibility = 'shared' AND id IN \
                 (SELECT image_id FROM image_member WHERE member_id = $1))"
            ))
            .bind(p)
            .fetch_all(store.pool())
            .await
        }
    }
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

pub async fn create(store: &Store, img: &Image) -> Result<()> {
    let id = img.id.clone();
    let img = img.clone();
    store
        .write(move |tx| {
            let img = img.clone();
            Box::pin(async move {
                sqlx::query(&format!(
                    "INSERT INTO image_image ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                     $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
                ))
                .bind(&img.id)
                .bind(&img.name)
                .bind(&img.owner)
                .bind(&img.status)
                .bind(&img.visibility)
                .bind(img.protected as i64)
                .bind(img.os_hidden as i64)
                .bind(&img.disk_format)
                .bind(&img.container_format)
                .bind(img.min_disk)
                .bind(img.min_ram)
                .bind(img.size)
                .bind(img.virtual_size)
                .bind(&img.checksum)
                .bind(&img.os_hash_algo)
                .bind(&img.os_hash_value)
                .bind(Value::Object(img.properties.clone()).to_string())
                .bind(serde_json::to_string(&img.tags).unwrap_or_else(|_| "[]".into()))
                .bind(img.created_at)
                .bind(img.updated_at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(KIND, &img.id, Op::Create).await
            })
        })
        .await
        .map_err(|e| match e {
            Error::AlreadyExists(_) | Error::Conflict(_) => {
                Error::conflict(format!("Image with identifier {id} already exists!"))
            }
            e => e,
        })
}

/// Writes the mutable attributes of `img` if the row still has `expected_updated_at` (the
/// value read before the change): a concurrent update in between is a 409 for the caller to
/// retry, never a lost update.
pub async fn update(store: &Store, img: &Image, expected_updated_at: i64) -> Result<()> {
    let img = img.clone();
    store
        .write(move |tx| {
            let img = img.clone();
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE image_image SET name = $2, owner = $3, status = $4, visibility = $5, \
                     protected = $6, os_hidden = $7, disk_format = $8, container_format = $9, \
                     min_disk = $10, min_ram = $11, properties = $12, tags = $13, \
                     updated_at = $14 WHERE id = $1 AND updated_at = $15",
                )
                .bind(&img.id)
                .bind(&img.name)
                .bind(&img.owner)
                .bind(&img.status)
                .bind(&img.visibility)
                .bind(img.protected as i64)
                .bind(img.os_hidden as i64)
                .bind(&img.disk_format)
                .bind(&img.container_format)
                .bind(img.min_disk)
                .bind(img.min_ram)
                .bind(Value::Object(img.properties.clone()).to_string())
                .bind(serde_json::to_string(&img.tags).unwrap_or_else(|_| "[]".into()))
                .bind(img.updated_at)
                .bind(expected_updated_at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n == 0 {
                    return Err(Error::conflict(format!(
                        "Image {} was changed by another request; retry.",
                        img.id
                    )));
                }
                tx.record(KIND, &img.id, Op::Update).await
            })
        })
        .await
}

/// Deletes an image unless it is protected (checked again in the transaction, so a concurrent
/// `protected: true` wins), and its members with it.
pub async fn delete(store: &Store, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let n = sqlx::query("DELETE FROM image_image WHERE id = $1 AND protected = 0")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n == 0 {
                    let exists = sqlx::query("SELECT id FROM image_image WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(tx.conn())
                        .await
                        .map_err(from_sqlx)?
                        .is_some();
                    return Err(if exists {
                        Error::forbidden(format!("Image {id} is protected and cannot be deleted."))
                    } else {
                        Error::not_found("image", id.clone())
                    });
                }
                sqlx::query("DELETE FROM image_member WHERE image_id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                tx.record(KIND, &id, Op::Delete).await
            })
        })
        .await
}

/// Moves the image from status `from` to `to` if it is still in `from` (the upload's claim:
/// `queued` → `saving`, and `saving` → `killed` on failure). `Ok(false)` when it was not in `from` (or gone).
pub async fn set_status(store: &Store, id: &str, from: &str, to: &str, at: i64) -> Result<bool> {
    let (id, from, to) = (id.to_string(), from.to_string(), to.to_string());
    store
        .write(move |tx| {
            let (id, from, to) = (id.clone(), from.clone(), to.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE image_image SET status = $3, updated_at = $4 \
                     WHERE id = $1 AND status = $2",
                )
                .bind(&id)
                .bind(&from)
                .bind(&to)
                .bind(at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(KIND, &id, Op::Update).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// What an upload learned about the data, written when it completes.
#[derive(Debug, Clone)]
pub struct DataInfo {
    pub size: i64,
    pub virtual_size: Option<i64>,
    pub checksum: String,
    pub os_hash_algo: String,
    pub os_hash_value: String,
}

/// Completes an upload: `saving` → `active` with the data's size and hashes. `Ok(false)` when
/// the image is no longer `saving` (deleted meanwhile).
pub async fn set_data(store: &Store, id: &str, info: &DataInfo, at: i64) -> Result<bool> {
    let (id, info) = (id.to_string(), info.clone());
    store
        .write(move |tx| {
            let (id, info) = (id.clone(), info.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE image_image SET status = 'active', size = $2, virtual_size = $3, \
                     checksum = $4, os_hash_algo = $5, os_hash_value = $6, updated_at = $7 \
                     WHERE id = $1 AND status = 'saving'",
                )
                .bind(&id)
                .bind(info.size)
                .bind(info.virtual_size)
                .bind(&info.checksum)
                .bind(&info.os_hash_algo)
                .bind(&info.os_hash_value)
                .bind(at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(KIND, &id, Op::Update).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// Marks images whose upload was cut off by a crash (`saving`) `killed`, as a failed upload
/// ends (the contract; Glance v2 itself would restore them to `queued`). Only safe
/// while no upload is running (at start of the one process owning the database). Returns
/// their ids.
pub async fn kill_interrupted_uploads(store: &Store, at: i64) -> Result<Vec<String>> {
    store
        .write(move |tx| {
            Box::pin(async move {
                let rows = sqlx::query("SELECT id FROM image_image WHERE status = 'saving'")
                    .fetch_all(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                let mut ids = Vec::with_capacity(rows.len());
                for r in &rows {
                    let id: String = strata_store::Row::try_get(r, "id").map_err(from_sqlx)?;
                    sqlx::query(
                        "UPDATE image_image SET status = 'killed', updated_at = $2 \
                         WHERE id = $1 AND status = 'saving'",
                    )
                    .bind(&id)
                    .bind(at)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                    tx.record(KIND, &id, Op::Update).await?;
                    ids.push(id);
                }
                Ok(ids)
            })
        })
        .await
}

/// What a [`transition`] writes to the data columns besides the status.
#[derive(Debug, Clone)]
pub enum DataChange {
    /// Leaves them as they are.
    Keep,
    /// Sets only `size` (what was staged).
    Size(i64),
    /// Sets size, virtual size and hashes (the data is in the store).
    Set(DataInfo),
    /// Clears them all (the data is gone).
    Clear,
}

/// Moves the image from status `from` to `to` if it is still in `from`, writing `data` and
/// setting (`Some`) or removing (`None`) the properties in `props`, in one transaction: the
/// claims and outcomes of staging and import. `Ok(false)` when the image was not in `from` (or
/// is gone). `updated_at` always moves forward, so optimistic updates see the change.
pub async fn transition(
    store: &Store,
    id: &str,
    from: &str,
    to: &str,
    data: DataChange,
    props: &[(&str, Option<&str>)],
    at: i64,
) -> Result<bool> {
    let (id, from, to) = (id.to_string(), from.to_string(), to.to_string());
    let props: Vec<(String, Option<String>)> = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
    store
        .write(move |tx| {
            let (id, from, to, data, props) = (
                id.clone(),
                from.clone(),
                to.clone(),
                data.clone(),
                props.clone(),
            );
            Box::pin(async move {
                let Some(r) =
                    sqlx::query("SELECT properties FROM image_image WHERE id = $1 AND status = $2")
                        .bind(&id)
                        .bind(&from)
                        .fetch_optional(tx.conn())
                        .await
                        .map_err(from_sqlx)?
                else {
                    return Ok(false);
                };
                let text: String = r.try_get("properties").map_err(from_sqlx)?;
                let mut properties: Map<String, Value> = serde_json::from_str(&text)
                    .map_err(|e| Error::internal(format!("image properties: {e}")))?;
                for (k, v) in &props {
                    match v {
                        Some(v) => properties.insert(k.clone(), Value::from(v.clone())),
                        None => properties.remove(k),
                    };
                }
                let base = "UPDATE image_image SET status = $3, properties = $4, \
                    updated_at = CASE WHEN updated_at >= $5 THEN updated_at + 1 ELSE $5 END";
                let cond = "WHERE id = $1 AND status = $2";
                let sql = match &data {
                    DataChange::Keep => format!("{base} {cond}"),
                    DataChange::Size(_) => format!("{base}, size = $6 {cond}"),
                    DataChange::Set(_) => format!(
                        "{base}, size = $6, virtual_size = $7, checksum = $8, \
                         os_hash_algo = $9, os_hash_value = $10 {cond}"
                    ),
                    DataChange::Clear => format!(
                        "{base}, size = NULL, virtual_size = NULL, checksum = NULL, \
                         os_hash_algo = NULL, os_hash_value = NULL {cond}"
                    ),
                };
                let mut q = sqlx::query(&sql)
                    .bind(&id)
                    .bind(&from)
                    .bind(&to)
                    .bind(Value::Object(properties).to_string())
                    .bind(at);
                match &data {
                    DataChange::Size(n) => q = q.bind(*n),
                    DataChange::Set(info) => {
                        q = q
                            .bind(info.size)
                            .bind(info.virtual_size)
                            .bind(info.checksum.clone())
                            .bind(info.os_hash_algo.clone())
                            .bind(info.os_hash_value.clone())
                    }
                    DataChange::Keep | DataChange::Clear => {}
                }
                let n = q
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n > 0 {
                    tx.record(KIND, &id, Op::Update).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// The ids of the images in `status`.
pub async fn ids_in_status(store: &Store, status: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM image_image WHERE status = $1")
        .bind(status)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("id").map_err(from_sqlx))
        .collect()
}
