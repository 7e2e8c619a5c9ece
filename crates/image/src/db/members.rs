//! Queries on `image_member`: the projects a `shared` image is offered to. Every mutation runs
//! inside [`Store::write`] and records an `image.member` change (id `<image_id>/<member_id>`).

use std::collections::HashMap;
use strata_core::{Error, Result};
use strata_store::{from_sqlx, sqlx, AnyRow, Op, Row, Store};

/// Change-log kind of image members.
pub const KIND: &str = "image.member";

/// One membership of a project in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "image_id, member_id, status, created_at, updated_at";

fn row(r: &AnyRow) -> Result<Member> {
    let text = |c: &str| r.try_get::<String, _>(c).map_err(from_sqlx);
    let int = |c: &str| r.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok(Member {
        image_id: text("image_id")?,
        member_id: text("member_id")?,
        status: text("status")?,
        created_at: int("created_at")?,
        updated_at: int("updated_at")?,
    })
}

fn change_id(image_id: &str, member_id: &str) -> String {
    format!("{image_id}/{member_id}")
}

/// The members of an image, oldest first.
pub async fn list(store: &Store, image_id: &str) -> Result<Vec<Member>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM image_member WHERE image_id = $1 ORDER BY created_at, member_id"
    ))
    .bind(image_id)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(row).collect()
}

/// The membership of `member_id` in `image_id`, if any.
pub async fn get(store: &Store, image_id: &str, member_id: &str) -> Result<Option<Member>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM image_member WHERE image_id = $1 AND member_id = $2"
    ))
    .bind(image_id)
    .bind(member_id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// The status of every membership `project` has, by image id (for listing images).
pub async fn statuses_of(store: &Store, project: &str) -> Result<HashMap<String, String>> {
    let rows = sqlx::query("SELECT image_id, status FROM image_member WHERE member_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("image_id").map_err(from_sqlx)?,
                r.try_get::<String, _>("status").map_err(from_sqlx)?,
            ))
        })
        .collect()
}

/// Adds a membership. `Conflict` when `member_id` is already a member of the image.
pub async fn create(store: &Store, m: &Member) -> Result<()> {
    let m = m.clone();
    let dup = format!(
        "Member {} is duplicated for image {}",
        m.member_id, m.image_id
    );
    store
        .write(move |tx| {
            let m = m.clone();
            Box::pin(async move {
                let exists = sqlx::query(
                    "SELECT member_id FROM image_member WHERE image_id = $1 AND member_id = $2",
                )
                .bind(&m.image_id)
                .bind(&m.member_id)
                .fetch_optional(tx.conn())
                .await
                .map_err(from_sqlx)?
                .is_some();
                if exists {
                    return Err(Error::conflict(format!(
                        "Member {} is duplicated for image {}",
                        m.member_id, m.image_id
                    )));
                }
                sqlx::query(&format!(
                    "INSERT INTO image_member ({COLS}) VALUES ($1, $2, $3, $4, $5)"
                ))
                .bind(&m.image_id)
                .bind(&m.member_id)
                .bind(&m.status)
                .bind(m.created_at)
                .bind(m.updated_at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(KIND, &change_id(&m.image_id, &m.member_id), Op::Create)
                    .await
            })
        })
        .await
        .map_err(|e| match e {
            // Two concurrent adds: the primary key decides, with the same answer.
            Error::AlreadyExists(_) | Error::Conflict(_) => Error::conflict(dup.clone()),
            e => e,
        })
}

/// Sets the status of a membership. `Ok(false)` when it does not exist (any more).
pub async fn set_status(
    store: &Store,
    image_id: &str,
    member_id: &str,
    status: &str,
    at: i64,
) -> Result<bool> {
    let (image_id, member_id, status) = (
        image_id.to_string(),
        member_id.to_string(),
        status.to_string(),
    );
    store
        .write(move |tx| {
            let (image_id, member_id, status) =
                (image_id.clone(), member_id.clone(), status.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE image_member SET status = $3, updated_at = $4 \
                     WHERE image_id = $1 AND member_id = $2",
                )
                .bind(&image_id)
                .bind(&member_id)
                .bind(&status)
                .bind(at)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(KIND, &change_id(&image_id, &member_id), Op::Update)
                        .await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

/// Removes a membership. `Ok(false)` when it did not exist.
pub async fn delete(store: &Store, image_id: &str, member_id: &str) -> Result<bool> {
    let (image_id, member_id) = (image_id.to_string(), member_id.to_string());
    store
        .write(move |tx| {
            let (image_id, member_id) = (image_id.clone(), member_id.clone());
            Box::pin(async move {
                let n =
                    sqlx::query("DELETE FROM image_member WHERE image_id = $1 AND member_id = $2")
                        .bind(&image_id)
                        .bind(&member_id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?
                        .rows_affected();
                if n > 0 {
                    tx.record(KIND, &change_id(&image_id, &member_id), Op::Delete)
                        .await?;
                }
                Ok(n > 0)
            })
        })
        .await
}
