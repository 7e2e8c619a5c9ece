//! Groups and their memberships.
//!
//! A membership change alters the roles a user holds through the group, so removing a member
//! (or deleting a group that carries assignments) revokes the affected users' tokens in the same
//! transaction; adding a member only widens roles and needs no revocation (cached resolutions are
//! dropped by [`crate::Identity::changed`]).

use super::keys::{revoke_in, Revoke};
use super::{json, kind, s, Where};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, sqlx, AnyRow, Op, Store};

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub domain_id: String,
    pub name: String,
    pub description: String,
    pub extra: serde_json::Value,
}

const COLS: &str = "g.id, g.domain_id, g.name, g.description, g.extra";

fn row(r: &AnyRow) -> Result<Group> {
    Ok(Group {
        id: s(r, "id")?,
        domain_id: s(r, "domain_id")?,
        name: s(r, "name")?,
        description: s(r, "description")?,
        extra: json(r, "extra")?,
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Group>> {
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM identity_group g WHERE g.id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(row).transpose()
}

/// Groups matching `w` (columns prefixed `g.`).
pub async fn list(store: &Store, w: &Where) -> Result<Vec<Group>> {
    let rows = w
        .fetch(
            store,
            &format!("SELECT {COLS} FROM identity_group g"),
            "ORDER BY g.name, g.id",
        )
        .await?;
    rows.iter().map(row).collect()
}

/// The groups `user_id` belongs to.
pub async fn list_for_user(store: &Store, user_id: &str) -> Result<Vec<Group>> {
    let mut w = Where::default();
    w.raw(
        "g.id IN (SELECT m.group_id FROM identity_group_member m WHERE m.user_id = {})",
        user_id,
    );
    list(store, &w).await
}

fn dup<'a>(name: &'a str, domain_id: &'a str) -> impl Fn(Error) -> Error + 'a {
    move |e| match e {
        Error::AlreadyExists(_) => Error::conflict(format!(
            "Conflict occurred attempting to store group - Duplicate entry found with name \
             {name} at domain ID {domain_id}."
        )),
        e => e,
    }
}

pub async fn create(store: &Store, g: &Group) -> Result<()> {
    let g = g.clone();
    let (name, domain_id) = (g.name.clone(), g.domain_id.clone());
    store
        .write(move |tx| {
            let g = g.clone();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO identity_group (id, domain_id, name, description, extra, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&g.id)
                .bind(&g.domain_id)
                .bind(&g.name)
                .bind(&g.description)
                .bind(g.extra.to_string())
                .bind(now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(kind::GROUP, &g.id, Op::Create).await
            })
        })
        .await
        .map_err(dup(&name, &domain_id))
}

pub async fn update(store: &Store, g: &Group) -> Result<()> {
    let g = g.clone();
    let (name, domain_id) = (g.name.clone(), g.domain_id.clone());
    store
        .write(move |tx| {
            let g = g.clone();
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE identity_group SET name = $2, description = $3, extra = $4 WHERE id = $1",
                )
                .bind(&g.id)
                .bind(&g.name)
                .bind(&g.description)
                .bind(g.extra.to_string())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("group", g.id.clone()));
                }
                tx.record(kind::GROUP, &g.id, Op::Update).await
            })
        })
        .await
        .map_err(dup(&name, &domain_id))
}

async fn member_ids_in(c: &mut sqlx::AnyConnection, group_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT user_id FROM identity_group_member WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(c)
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| s(r, "user_id")).collect()
}

/// Deletes a group with its memberships and assignments. When it carried assignments, its
/// members' tokens are revoked (their roles shrink), as Keystone does.
pub async fn delete(store: &Store, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let members = member_ids_in(tx.conn(), &id).await?;
                let assignments =
                    sqlx::query("DELETE FROM identity_assignment WHERE actor_id = $1")
                        .bind(&id)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?
                        .rows_affected();
                sqlx::query("DELETE FROM identity_group_member WHERE group_id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                let n = sqlx::query("DELETE FROM identity_group WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n == 0 {
                    return Err(Error::not_found("group", id.clone()));
                }
                if assignments > 0 {
                    for u in &members {
                        revoke_in(tx, Revoke::user(u)).await?;
                    }
                }
                tx.record(kind::GROUP, &id, Op::Delete).await
            })
        })
        .await
}

/// Adds `user_id` to `group_id`. Idempotent.
pub async fn add_member(store: &Store, group_id: &str, user_id: &str) -> Result<()> {
    let (group_id, user_id) = (group_id.to_string(), user_id.to_string());
    store
        .write(move |tx| {
            let (group_id, user_id) = (group_id.clone(), user_id.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "INSERT INTO identity_group_member (group_id, user_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&group_id)
                .bind(&user_id)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(kind::GROUP, &group_id, Op::Update).await?;
                }
                Ok(())
            })
        })
        .await
}

/// Removes `user_id` from `group_id` and revokes the user's tokens in the same transaction, as
/// the roles they held through the group are gone. Returns whether the membership existed.
pub async fn remove_member(store: &Store, group_id: &str, user_id: &str) -> Result<bool> {
    let (group_id, user_id) = (group_id.to_string(), user_id.to_string());
    store
        .write(move |tx| {
            let (group_id, user_id) = (group_id.clone(), user_id.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "DELETE FROM identity_group_member WHERE group_id = $1 AND user_id = $2",
                )
                .bind(&group_id)
                .bind(&user_id)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                revoke_in(tx, Revoke::user(&user_id)).await?;
                tx.record(kind::GROUP, &group_id, Op::Update).await?;
                Ok(true)
            })
        })
        .await
}

/// Whether `user_id` is a member of `group_id`.
pub async fn is_member(store: &Store, group_id: &str, user_id: &str) -> Result<bool> {
    let r = sqlx::query(
        "SELECT user_id FROM identity_group_member WHERE group_id = $1 AND user_id = $2",
    )
    .bind(group_id)
    .bind(user_id)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    Ok(r.is_some())
}

/// Ids of the members of `group_id`.
pub async fn member_ids(store: &Store, group_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT user_id FROM identity_group_member WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(|r| s(r, "user_id")).collect()
}

/// Every membership as `(group_id, user_id)`.
pub async fn memberships(store: &Store) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT group_id, user_id FROM identity_group_member")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok((s(r, "group_id")?, s(r, "user_id")?)))
        .collect()
}
