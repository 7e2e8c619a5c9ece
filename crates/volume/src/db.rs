//! Queries of the volume service. Every mutation runs inside [`Store::write`] and records a
//! change (`volume.volume`, `volume.snapshot`, `volume.type`, `volume.attachment`,
//! `volume.quota`). Reads outside a transaction use the pool; checks that must hold when the
//! write lands (statuses, quotas) are made again inside the write, which is serialised with
//! every other write by the store's revision counter.

use crate::model::{Attachment, Snapshot, Volume, VolumeType};
use serde_json::{Map, Value};
use strata_core::{Error, Result};
use strata_store::{
    from_sqlx, get_bool, get_opt_i64, get_opt_str, sqlx, AnyRow, Op, Row, Store, Tx,
};

pub const VOLUME: &str = "volume.volume";
pub const SNAPSHOT: &str = "volume.snapshot";
pub const TYPE: &str = "volume.type";
pub const ATTACHMENT: &str = "volume.attachment";
pub const QUOTA: &str = "volume.quota";

fn text(r: &AnyRow, col: &str) -> Result<String> {
    r.try_get::<String, _>(col).map_err(from_sqlx)
}
fn int(r: &AnyRow, col: &str) -> Result<i64> {
    r.try_get::<i64, _>(col).map_err(from_sqlx)
}
fn obj(r: &AnyRow, col: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(&text(r, col)?).map_err(|e| Error::internal(format!("{col}: {e}")))
}
fn opt_json(r: &AnyRow, col: &str) -> Option<Value> {
    get_opt_str(r, col).and_then(|s| serde_json::from_str(&s).ok())
}
fn js(m: &Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}

// ---------------------------------------------------------------- volumes

const VCOLS: &str = "id, project_id, user_id, name, description, size, status, attach_status, \
    availability_zone, volume_type_id, bootable, multiattach, source_volid, snapshot_id, \
    image_id, metadata, image_metadata, admin_metadata, migration_status, provider_location, \
    error, created_at, updated_at, launched_at";

fn volume_row(r: &AnyRow) -> Result<Volume> {
    Ok(Volume {
        id: text(r, "id")?,
        project_id: text(r, "project_id")?,
        user_id: text(r, "user_id")?,
        name: get_opt_str(r, "name"),
        description: get_opt_str(r, "description"),
        size: int(r, "size")?,
        status: text(r, "status")?,
        attach_status: text(r, "attach_status")?,
        availability_zone: text(r, "availability_zone")?,
        volume_type_id: text(r, "volume_type_id")?,
        bootable: get_bool(r, "bootable"),
        multiattach: get_bool(r, "multiattach"),
        source_volid: get_opt_str(r, "source_volid"),
        snapshot_id: get_opt_str(r, "snapshot_id"),
        image_id: get_opt_str(r, "image_id"),
        metadata: obj(r, "metadata")?,
        image_metadata: obj(r, "image_metadata")?,
        admin_metadata: obj(r, "admin_metadata")?,
        migration_status: get_opt_str(r, "migration_status"),
        provider_location: get_opt_str(r, "provider_location"),
        error: get_opt_str(r, "error"),
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
        launched_at: get_opt_i64(r, "launched_at"),
    })
}

pub async fn get_volume(store: &Store, id: &str) -> Result<Option<Volume>> {
    let r = sqlx::query(&format!("SELECT {VCOLS} FROM volume_volume WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(volume_row).transpose()
}

pub async fn get_volume_tx(tx: &mut Tx, id: &str) -> Result<Option<Volume>> {
    let r = sqlx::query(&format!("SELECT {VCOLS} FROM volume_volume WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(volume_row).transpose()
}

/// Volumes of `project` (all projects when `None`). Filters, sorting and paging are applied
/// by the caller.
pub async fn list_volumes(store: &Store, project: Option<&str>) -> Result<Vec<Volume>> {
    let rows = match project {
        None => {
            sqlx::query(&format!("SELECT {VCOLS} FROM volume_volume"))
                .fetch_all(store.pool())
                .await
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {VCOLS} FROM volume_volume WHERE project_id = $1"
            ))
            .bind(p)
            .fetch_all(store.pool())
            .await
        }
    }
    .map_err(from_sqlx)?;
    rows.iter().map(volume_row).collect()
}

pub async fn insert_volume(tx: &mut Tx, v: &Volume) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO volume_volume ({VCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"
    ))
    .bind(&v.id)
    .bind(&v.project_id)
    .bind(&v.user_id)
    .bind(&v.name)
    .bind(&v.description)
    .bind(v.size)
    .bind(&v.status)
    .bind(&v.attach_status)
    .bind(&v.availability_zone)
    .bind(&v.volume_type_id)
    .bind(v.bootable as i64)
    .bind(v.multiattach as i64)
    .bind(&v.source_volid)
    .bind(&v.snapshot_id)
    .bind(&v.image_id)
    .bind(js(&v.metadata))
    .bind(js(&v.image_metadata))
    .bind(js(&v.admin_metadata))
    .bind(&v.migration_status)
    .bind(&v.provider_location)
    .bind(&v.error)
    .bind(v.created_at)
    .bind(v.updated_at)
    .bind(v.launched_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(VOLUME, &v.id, Op::Create).await
}

/// Writes every mutable column of `v`.
pub async fn save_volume(tx: &mut Tx, v: &Volume) -> Result<()> {
    sqlx::query(
        "UPDATE volume_volume SET name = $2, description = $3, size = $4, status = $5, \
         attach_status = $6, bootable = $7, multiattach = $8, metadata = $9, \
         image_metadata = $10, admin_metadata = $11, migration_status = $12, \
         provider_location = $13, error = $14, updated_at = $15, launched_at = $16, \
         volume_type_id = $17, availability_zone = $18 WHERE id = $1",
    )
    .bind(&v.id)
    .bind(&v.name)
    .bind(&v.description)
    .bind(v.size)
    .bind(&v.status)
    .bind(&v.attach_status)
    .bind(v.bootable as i64)
    .bind(v.multiattach as i64)
    .bind(js(&v.metadata))
    .bind(js(&v.image_metadata))
    .bind(js(&v.admin_metadata))
    .bind(&v.migration_status)
    .bind(&v.provider_location)
    .bind(&v.error)
    .bind(v.updated_at)
    .bind(v.launched_at)
    .bind(&v.volume_type_id)
    .bind(&v.availability_zone)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(VOLUME, &v.id, Op::Update).await
}

pub async fn delete_volume_row(tx: &mut Tx, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM volume_attachment WHERE volume_id = $1",
        "DELETE FROM volume_volume WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
    }
    tx.record(VOLUME, id, Op::Delete).await
}

// ---------------------------------------------------------------- snapshots

const SCOLS: &str = "id, project_id, user_id, volume_id, name, description, size, status, \
    progress, metadata, provider_location, created_at, updated_at";

fn snapshot_row(r: &AnyRow) -> Result<Snapshot> {
    Ok(Snapshot {
        id: text(r, "id")?,
        project_id: text(r, "project_id")?,
        user_id: text(r, "user_id")?,
        volume_id: text(r, "volume_id")?,
        name: get_opt_str(r, "name"),
        description: get_opt_str(r, "description"),
        size: int(r, "size")?,
        status: text(r, "status")?,
        progress: text(r, "progress")?,
        metadata: obj(r, "metadata")?,
        provider_location: get_opt_str(r, "provider_location"),
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
    })
}

pub async fn get_snapshot(store: &Store, id: &str) -> Result<Option<Snapshot>> {
    let r = sqlx::query(&format!(
        "SELECT {SCOLS} FROM volume_snapshot WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(snapshot_row).transpose()
}

pub async fn get_snapshot_tx(tx: &mut Tx, id: &str) -> Result<Option<Snapshot>> {
    let r = sqlx::query(&format!(
        "SELECT {SCOLS} FROM volume_snapshot WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(snapshot_row).transpose()
}

pub async fn list_snapshots(store: &Store, project: Option<&str>) -> Result<Vec<Snapshot>> {
    let rows = match project {
        None => {
            sqlx::query(&format!("SELECT {SCOLS} FROM volume_snapshot"))
                .fetch_all(store.pool())
                .await
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {SCOLS} FROM volume_snapshot WHERE project_id = $1"
            ))
            .bind(p)
            .fetch_all(store.pool())
            .await
        }
    }
    .map_err(from_sqlx)?;
    rows.iter().map(snapshot_row).collect()
}

pub async fn snapshots_of_tx(tx: &mut Tx, volume_id: &str) -> Result<Vec<Snapshot>> {
    let rows = sqlx::query(&format!(
        "SELECT {SCOLS} FROM volume_snapshot WHERE volume_id = $1"
    ))
    .bind(volume_id)
    .fetch_all(tx.conn())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(snapshot_row).collect()
}

pub async fn insert_snapshot(tx: &mut Tx, s: &Snapshot) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO volume_snapshot ({SCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13)"
    ))
    .bind(&s.id)
    .bind(&s.project_id)
    .bind(&s.user_id)
    .bind(&s.volume_id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.size)
    .bind(&s.status)
    .bind(&s.progress)
    .bind(js(&s.metadata))
    .bind(&s.provider_location)
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(SNAPSHOT, &s.id, Op::Create).await
}

pub async fn save_snapshot(tx: &mut Tx, s: &Snapshot) -> Result<()> {
    sqlx::query(
        "UPDATE volume_snapshot SET name = $2, description = $3, status = $4, progress = $5, \
         metadata = $6, provider_location = $7, updated_at = $8 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.status)
    .bind(&s.progress)
    .bind(js(&s.metadata))
    .bind(&s.provider_location)
    .bind(s.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(SNAPSHOT, &s.id, Op::Update).await
}

pub async fn delete_snapshot_row(tx: &mut Tx, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM volume_snapshot WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(SNAPSHOT, id, Op::Delete).await
}

// ---------------------------------------------------------------- types

const TCOLS: &str = "id, name, description, is_public, extra_specs, created_at, updated_at";

fn type_row(r: &AnyRow) -> Result<VolumeType> {
    Ok(VolumeType {
        id: text(r, "id")?,
        name: text(r, "name")?,
        description: get_opt_str(r, "description"),
        is_public: get_bool(r, "is_public"),
        extra_specs: obj(r, "extra_specs")?,
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
    })
}

pub async fn list_types(store: &Store) -> Result<Vec<VolumeType>> {
    let rows = sqlx::query(&format!("SELECT {TCOLS} FROM volume_type ORDER BY name"))
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(type_row).collect()
}

pub async fn get_type(store: &Store, id: &str) -> Result<Option<VolumeType>> {
    let r = sqlx::query(&format!("SELECT {TCOLS} FROM volume_type WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(type_row).transpose()
}

pub async fn get_type_tx(tx: &mut Tx, id: &str) -> Result<Option<VolumeType>> {
    let r = sqlx::query(&format!("SELECT {TCOLS} FROM volume_type WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(type_row).transpose()
}

pub async fn get_type_by_name(store: &Store, name: &str) -> Result<Option<VolumeType>> {
    let r = sqlx::query(&format!("SELECT {TCOLS} FROM volume_type WHERE name = $1"))
        .bind(name)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(type_row).transpose()
}

pub async fn insert_type(tx: &mut Tx, t: &VolumeType) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO volume_type ({TCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.description)
    .bind(t.is_public as i64)
    .bind(js(&t.extra_specs))
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(TYPE, &t.id, Op::Create).await
}

pub async fn save_type(tx: &mut Tx, t: &VolumeType) -> Result<()> {
    sqlx::query(
        "UPDATE volume_type SET name = $2, description = $3, is_public = $4, extra_specs = $5, \
         updated_at = $6 WHERE id = $1",
    )
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.description)
    .bind(t.is_public as i64)
    .bind(js(&t.extra_specs))
    .bind(t.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(TYPE, &t.id, Op::Update).await
}

pub async fn delete_type_row(tx: &mut Tx, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM volume_type_access WHERE type_id = $1",
        "DELETE FROM volume_type WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
    }
    tx.record(TYPE, id, Op::Delete).await
}

pub async fn type_access(store: &Store, type_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT project_id FROM volume_type_access WHERE type_id = $1 ORDER BY project_id",
    )
    .bind(type_id)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "project_id")).collect()
}

/// Type ids `project` was given access to.
pub async fn types_accessible(store: &Store, project: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT type_id FROM volume_type_access WHERE project_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| text(r, "type_id")).collect()
}

/// Adds (`add`) or removes a project's access; returns false when there was nothing to do.
pub async fn set_type_access(tx: &mut Tx, type_id: &str, project: &str, add: bool) -> Result<bool> {
    let exists = sqlx::query(
        "SELECT 1 AS one FROM volume_type_access WHERE type_id = $1 AND project_id = $2",
    )
    .bind(type_id)
    .bind(project)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?
    .is_some();
    if exists == add {
        return Ok(false);
    }
    let sql = if add {
        "INSERT INTO volume_type_access (type_id, project_id) VALUES ($1, $2)"
    } else {
        "DELETE FROM volume_type_access WHERE type_id = $1 AND project_id = $2"
    };
    sqlx::query(sql)
        .bind(type_id)
        .bind(project)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(TYPE, type_id, Op::Update).await?;
    Ok(true)
}

/// Whether any volume uses the type.
pub async fn type_in_use(tx: &mut Tx, type_id: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM volume_volume WHERE volume_type_id = $1 LIMIT 1")
            .bind(type_id)
            .fetch_optional(tx.conn())
            .await
            .map_err(from_sqlx)?
            .is_some(),
    )
}

// ---------------------------------------------------------------- attachments

const ACOLS: &str = "id, volume_id, instance_uuid, attached_host, mountpoint, attach_mode, \
    attach_status, connector, connection_info, attached_at, detached_at, created_at, updated_at";

fn attachment_row(r: &AnyRow) -> Result<Attachment> {
    Ok(Attachment {
        id: text(r, "id")?,
        volume_id: text(r, "volume_id")?,
        instance_uuid: get_opt_str(r, "instance_uuid"),
        attached_host: get_opt_str(r, "attached_host"),
        mountpoint: get_opt_str(r, "mountpoint"),
        attach_mode: text(r, "attach_mode")?,
        attach_status: text(r, "attach_status")?,
        connector: opt_json(r, "connector"),
        connection_info: opt_json(r, "connection_info"),
        attached_at: get_opt_i64(r, "attached_at"),
        detached_at: get_opt_i64(r, "detached_at"),
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
    })
}

pub async fn attachments_of(store: &Store, volume_id: &str) -> Result<Vec<Attachment>> {
    let rows = sqlx::query(&format!(
        "SELECT {ACOLS} FROM volume_attachment WHERE volume_id = $1 ORDER BY created_at"
    ))
    .bind(volume_id)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(attachment_row).collect()
}

pub async fn attachments_of_tx(tx: &mut Tx, volume_id: &str) -> Result<Vec<Attachment>> {
    let rows = sqlx::query(&format!(
        "SELECT {ACOLS} FROM volume_attachment WHERE volume_id = $1 ORDER BY created_at"
    ))
    .bind(volume_id)
    .fetch_all(tx.conn())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(attachment_row).collect()
}

pub async fn all_attachments(store: &Store) -> Result<Vec<Attachment>> {
    let rows = sqlx::query(&format!(
        "SELECT {ACOLS} FROM volume_attachment ORDER BY created_at"
    ))
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(attachment_row).collect()
}

pub async fn get_attachment(store: &Store, id: &str) -> Result<Option<Attachment>> {
    let r = sqlx::query(&format!(
        "SELECT {ACOLS} FROM volume_attachment WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(attachment_row).transpose()
}

/// Inserts or replaces an attachment.
pub async fn put_attachment(tx: &mut Tx, a: &Attachment) -> Result<()> {
    let existed = sqlx::query("DELETE FROM volume_attachment WHERE id = $1")
        .bind(&a.id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected()
        > 0;
    sqlx::query(&format!(
        "INSERT INTO volume_attachment ({ACOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13)"
    ))
    .bind(&a.id)
    .bind(&a.volume_id)
    .bind(&a.instance_uuid)
    .bind(&a.attached_host)
    .bind(&a.mountpoint)
    .bind(&a.attach_mode)
    .bind(&a.attach_status)
    .bind(a.connector.as_ref().map(Value::to_string))
    .bind(a.connection_info.as_ref().map(Value::to_string))
    .bind(a.attached_at)
    .bind(a.detached_at)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(
        ATTACHMENT,
        &a.id,
        if existed { Op::Update } else { Op::Create },
    )
    .await
}

pub async fn delete_attachment_row(tx: &mut Tx, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM volume_attachment WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(ATTACHMENT, id, Op::Delete).await
}

// ---------------------------------------------------------------- quotas

pub async fn quota_overrides(store: &Store, project: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT resource, hard_limit FROM volume_quota WHERE project_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((text(r, "resource")?, int(r, "hard_limit")?)))
        .collect()
}

pub async fn quota_overrides_tx(tx: &mut Tx, project: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT resource, hard_limit FROM volume_quota WHERE project_id = $1")
        .bind(project)
        .fetch_all(tx.conn())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((text(r, "resource")?, int(r, "hard_limit")?)))
        .collect()
}

pub async fn set_quota(tx: &mut Tx, project: &str, resource: &str, limit: i64) -> Result<()> {
    sqlx::query("DELETE FROM volume_quota WHERE project_id = $1 AND resource = $2")
        .bind(project)
        .bind(resource)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    sqlx::query("INSERT INTO volume_quota (project_id, resource, hard_limit) VALUES ($1, $2, $3)")
        .bind(project)
        .bind(resource)
        .bind(limit)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(QUOTA, project, Op::Update).await
}

pub async fn delete_quotas(tx: &mut Tx, project: &str) -> Result<()> {
    sqlx::query("DELETE FROM volume_quota WHERE project_id = $1")
        .bind(project)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(QUOTA, project, Op::Delete).await
}

/// What a project holds, counted inside the write that is about to add to it: volumes,
/// gigabytes (volumes and snapshots), snapshots, and per type name the same three.
#[derive(Debug, Default, Clone)]
pub struct Usage {
    pub volumes: i64,
    pub snapshots: i64,
    pub gigabytes: i64,
    /// `(type_id, volumes, snapshots, gigabytes)`.
    pub per_type: Vec<(String, i64, i64, i64)>,
}

pub async fn usage_tx(tx: &mut Tx, project: &str) -> Result<Usage> {
    usage_on(tx.conn(), project).await
}

/// The same, read outside a write (what `os-quota-sets?usage=true` and `/limits` show).
pub async fn usage(store: &Store, project: &str) -> Result<Usage> {
    let mut conn = store.pool().acquire().await.map_err(from_sqlx)?;
    usage_on(&mut conn, project).await
}

async fn usage_on(conn: &mut sqlx::AnyConnection, project: &str) -> Result<Usage> {
    let mut u = Usage::default();
    let rows = sqlx::query(
        "SELECT volume_type_id, CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS gb FROM volume_volume \
         WHERE project_id = $1 GROUP BY volume_type_id",
    )
    .bind(project)
    .fetch_all(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    for r in &rows {
        let (t, n, gb) = (text(r, "volume_type_id")?, int(r, "n")?, int(r, "gb")?);
        u.volumes += n;
        u.gigabytes += gb;
        u.per_type.push((t, n, 0, gb));
    }
    let rows = sqlx::query(
        "SELECT v.volume_type_id AS t, COUNT(*) AS n, CAST(COALESCE(SUM(s.size), 0) AS BIGINT) AS gb \
         FROM volume_snapshot s JOIN volume_volume v ON v.id = s.volume_id \
         WHERE s.project_id = $1 GROUP BY v.volume_type_id",
    )
    .bind(project)
    .fetch_all(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    for r in &rows {
        let (t, n, gb) = (text(r, "t")?, int(r, "n")?, int(r, "gb")?);
        u.snapshots += n;
        u.gigabytes += gb;
        match u.per_type.iter_mut().find(|p| p.0 == t) {
            Some(p) => {
                p.2 += n;
                p.3 += gb;
            }
            None => u.per_type.push((t, 0, n, gb)),
        }
    }
    Ok(u)
}

/// Every backend handle a row owns: what a sweep of the backend must keep.
pub async fn live_handles(store: &Store) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT provider_location AS h FROM volume_volume WHERE provider_location IS NOT NULL",
        "SELECT provider_location AS h FROM volume_snapshot WHERE provider_location IS NOT NULL",
    ] {
        let rows = sqlx::query(sql)
            .fetch_all(store.pool())
            .await
            .map_err(from_sqlx)?;
        for r in &rows {
            out.push(text(r, "h")?);
        }
    }
    Ok(out)
}
