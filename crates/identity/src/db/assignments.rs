//! Role assignments of users and groups on projects, domains and the system.

use super::keys::{revoke_in, Revoke};
use super::{kind, s, Where};
use strata_core::Result;
use strata_store::{from_sqlx, get_bool, sqlx, Op, Store};

/// What kind of assignment a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    UserProject,
    GroupProject,
    UserDomain,
    GroupDomain,
    UserSystem,
    GroupSystem,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UserProject => "UserProject",
            Kind::GroupProject => "GroupProject",
            Kind::UserDomain => "UserDomain",
            Kind::GroupDomain => "GroupDomain",
            Kind::UserSystem => "UserSystem",
            Kind::GroupSystem => "GroupSystem",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "UserProject" => Kind::UserProject,
            "GroupProject" => Kind::GroupProject,
            "UserDomain" => Kind::UserDomain,
            "GroupDomain" => Kind::GroupDomain,
            "UserSystem" => Kind::UserSystem,
            "GroupSystem" => Kind::GroupSystem,
            _ => return None,
        })
    }
    pub fn is_group(self) -> bool {
        matches!(
            self,
            Kind::GroupProject | Kind::GroupDomain | Kind::GroupSystem
        )
    }
}

/// The target id of system assignments.
pub const SYSTEM: &str = "system";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub kind: Kind,
    pub actor_id: String,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}

/// Adds an assignment. Idempotent.
pub async fn add(store: &Store, a: &Assignment) -> Result<()> {
    let a = a.clone();
    store
        .write(move |tx| {
            let a = a.clone();
            Box::pin(async move {
                let n = sqlx::query(
                    "INSERT INTO identity_assignment (kind, actor_id, target_id, role_id, inherited) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(a.kind.as_str())
                .bind(&a.actor_id)
                .bind(&a.target_id)
                .bind(&a.role_id)
                .bind(a.inherited as i64)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(kind::ASSIGNMENT, &key(&a), Op::Create).await?;
                }
                Ok(())
            })
        })
        .await
}

fn key(a: &Assignment) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        a.kind.as_str(),
        a.actor_id,
        a.target_id,
        a.role_id,
        a.inherited as u8
    )
}

/// Removes an assignment and revokes the tokens that carried it (for a group, its members'
/// tokens on that target). Returns whether it existed.
pub async fn remove(store: &Store, a: &Assignment, group_members: Vec<String>) -> Result<bool> {
    let a = a.clone();
    store
        .write(move |tx| {
            let (a, members) = (a.clone(), group_members.clone());
            Box::pin(async move {
                let n = sqlx::query(
                    "DELETE FROM identity_assignment WHERE kind = $1 AND actor_id = $2 AND target_id = $3 \
                     AND role_id = $4 AND inherited = $5",
                )
                .bind(a.kind.as_str())
                .bind(&a.actor_id)
                .bind(&a.target_id)
                .bind(&a.role_id)
                .bind(a.inherited as i64)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                let users = if a.kind.is_group() { members } else { vec![a.actor_id.clone()] };
                for u in users {
                    let r = match a.kind {
                        Kind::UserProject | Kind::GroupProject if !a.inherited => {
                            Revoke::user_project(&u, &a.target_id)
                        }
                        Kind::UserDomain | Kind::GroupDomain if !a.inherited => Revoke {
                            user_id: Some(u.clone()),
                            domain_id: Some(a.target_id.clone()),
                            ..Default::default()
                        },
                        // System and inherited assignments reach many scopes: revoke the user's
                        // tokens.
                        _ => Revoke::user(&u),
                    };
                    revoke_in(tx, r).await?;
                }
                tx.record(kind::ASSIGNMENT, &key(&a), Op::Delete).await?;
                Ok(true)
            })
        })
        .await
}

/// Whether exactly this assignment exists.
pub async fn exists(store: &Store, a: &Assignment) -> Result<bool> {
    let r = sqlx::query(
        "SELECT role_id FROM identity_assignment WHERE kind = $1 AND actor_id = $2 AND target_id = $3 \
         AND role_id = $4 AND inherited = $5",
    )
    .bind(a.kind.as_str())
    .bind(&a.actor_id)
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(a.inherited as i64)
    .fetch_optional(store.pool())
    .await
    .map_err(from_sqlx)?;
    Ok(r.is_some())
}

/// Assignments matching `w` (columns `kind`, `actor_id`, `target_id`, `role_id`, `inherited`).
pub async fn list(store: &Store, w: &Where) -> Result<Vec<Assignment>> {
    let rows = w
        .fetch(
            store,
            "SELECT kind, actor_id, target_id, role_id, inherited FROM identity_assignment",
            "ORDER BY kind, actor_id, target_id, role_id",
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let k = s(r, "kind")?;
        let Some(kind) = Kind::parse(&k) else {
            continue;
        };
        out.push(Assignment {
            kind,
            actor_id: s(r, "actor_id")?,
            target_id: s(r, "target_id")?,
            role_id: s(r, "role_id")?,
            inherited: get_bool(r, "inherited"),
        });
    }
    Ok(out)
}

/// Role ids held directly (not implied) by a user, through itself or its groups, on one target:
/// `targets` lists the target itself (direct assignments) and `inherited_from` the targets
/// whose inherited assignments flow down to it (the project's domain and ancestors).
pub async fn direct_role_ids(
    store: &Store,
    user_id: &str,
    group_ids: &[String],
    user_kind: Kind,
    group_kind: Kind,
    target: &str,
    inherited_from: &[String],
) -> Result<Vec<String>> {
    let mut actors = vec![user_id.to_string()];
    actors.extend(group_ids.iter().cloned());
    let mut w = Where::default();
    w.one_of("actor_id", &actors);
    let mut rows = list(store, &w).await?;
    rows.retain(|a| {
        let user_actor = a.actor_id == user_id
            && matches!(
                a.kind,
                Kind::UserProject | Kind::UserDomain | Kind::UserSystem
            );
        let group_actor = group_ids.contains(&a.actor_id)
            && matches!(
                a.kind,
                Kind::GroupProject | Kind::GroupDomain | Kind::GroupSystem
            );
        if a.inherited {
            // Inherited assignments on a domain or an ancestor flow down to projects.
            user_kind == Kind::UserProject
                && (user_actor || group_actor)
                && inherited_from.contains(&a.target_id)
        } else {
            a.target_id == target
                && ((a.kind == user_kind && user_actor) || (a.kind == group_kind && group_actor))
        }
    });
    let mut ids: Vec<String> = Vec::new();
    for a in rows {
        if !ids.contains(&a.role_id) {
            ids.push(a.role_id);
        }
    }
    Ok(ids)
}
