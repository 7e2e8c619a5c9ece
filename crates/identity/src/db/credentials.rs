//! Credentials: secrets a user keeps with the identity service (`/v3/credentials`). The `ec2`
//! ones are also the access/secret pairs of the OS-EC2 API, which EC2- and S3-style clients sign
//! requests with; [`ec2_by_access`] is the lookup their authenticators make.
//!
//! A blob is a secret: nothing here logs one, and [`Credential`]'s `Debug` leaves it out.
//! TODO-security: blobs are stored in the clear; Keystone encrypts them at rest.

use super::{json, kind, s, Where};
use sha2::{Digest, Sha256};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, get_opt_str, sqlx, AnyRow, Op, Store};

/// The credential type of EC2/S3 access keys.
pub const EC2: &str = "ec2";

#[derive(Clone)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    /// Required for `ec2` credentials, optional otherwise.
    pub project_id: Option<String>,
    /// `type` on the wire: `ec2`, `cert`, `totp`, or anything else.
    pub kind: String,
    /// The credential itself, as the client serialised it (JSON text for `ec2`).
    pub blob: String,
    pub extra: serde_json::Value,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .field("kind", &self.kind)
            .field("blob", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The blob of an `ec2` credential as a JSON object; `None` for other types or a blob that
    /// is not an object.
    pub fn ec2_blob(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        if !self.kind.eq_ignore_ascii_case(EC2) {
            return None;
        }
        match serde_json::from_str(&self.blob) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        }
    }

    /// The `access` key of an `ec2` credential.
    pub fn ec2_access(&self) -> Option<String> {
        self.ec2_blob()?
            .get("access")
            .and_then(|a| a.as_str())
            .map(str::to_string)
    }
}

/// Keystone's id of an `ec2` credential: the SHA-256 of its access key, in lowercase hex.
pub fn ec2_id(access: &str) -> String {
    Sha256::digest(access.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const COLS: &str = "id, user_id, project_id, type, blob, extra";

fn row(r: &AnyRow) -> Result<Credential> {
    Ok(Credential {
        id: s(r, "id")?,
        user_id: s(r, "user_id")?,
        project_id: get_opt_str(r, "project_id"),
        kind: s(r, "type")?,
        blob: s(r, "blob")?,
        extra: json(r, "extra")?,
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Credential>> {
    let mut w = Where::default();
    w.eq("id", id);
    Ok(list(store, &w).await?.into_iter().next())
}

/// The `ec2` credential whose blob's `access` is `access`.
pub async fn get_by_access(store: &Store, access: &str) -> Result<Option<Credential>> {
    let mut w = Where::default();
    w.eq("ec2_access", access);
    Ok(list(store, &w).await?.into_iter().next())
}

/// Credentials matching `w` (columns of `identity_credential`).
pub async fn list(store: &Store, w: &Where) -> Result<Vec<Credential>> {
    let rows = w
        .fetch(
            store,
            &format!("SELECT {COLS} FROM identity_credential"),
            "ORDER BY user_id, id",
        )
        .await?;
    rows.iter().map(row).collect()
}

/// What EC2/S3 request authentication needs for an access key: `(user_id, project_id,
/// secret)`, or `None` when no `ec2` credential has that key (or it has no project or secret).
///
/// The credential grants nothing by itself: the caller must check that the user is enabled and
/// resolve their roles on the project, as for a token. TODO-security: a credential created with
/// an application-credential token records `app_cred_id` in its blob (as Keystone does); the
/// authenticator should then limit the roles to that application credential's.
pub async fn ec2_by_access(
    store: &Store,
    access: &str,
) -> Result<Option<(String, String, String)>> {
    let Some(c) = get_by_access(store, access).await? else {
        return Ok(None);
    };
    let secret = c
        .ec2_blob()
        .and_then(|b| b.get("secret").and_then(|v| v.as_str()).map(str::to_string));
    Ok(match (c.project_id, secret) {
        (Some(p), Some(secret)) => Some((c.user_id, p, secret)),
        _ => None,
    })
}

/// Keystone's message for a credential id or EC2 access key already taken.
fn dup(e: Error) -> Error {
    match e {
        Error::AlreadyExists(_) => {
            Error::conflict("Conflict occurred attempting to store credential - Duplicate entry.")
        }
        e => e,
    }
}

/// Creates a credential. 409 when its id, or (for `ec2`) its access key, is taken.
pub async fn create(store: &Store, c: &Credential) -> Result<()> {
    let c = c.clone();
    store
        .write(move |tx| {
            let c = c.clone();
            Box::pin(async move {
                sqlx::query(&format!(
                    "INSERT INTO identity_credential ({COLS}, ec2_access, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&c.id)
                .bind(&c.user_id)
                .bind(&c.project_id)
                .bind(&c.kind)
                .bind(&c.blob)
                .bind(c.extra.to_string())
                .bind(c.ec2_access())
                .bind(now_micros())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
                tx.record(kind::CREDENTIAL, &c.id, Op::Create).await
            })
        })
        .await
        .map_err(dup)
}

/// Replaces a credential's attributes (all but its id). `false` when it does not exist.
pub async fn update(store: &Store, c: &Credential) -> Result<bool> {
    let c = c.clone();
    store
        .write(move |tx| {
            let c = c.clone();
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE identity_credential SET user_id = $2, project_id = $3, type = $4, \
                     blob = $5, extra = $6, ec2_access = $7 WHERE id = $1",
                )
                .bind(&c.id)
                .bind(&c.user_id)
                .bind(&c.project_id)
                .bind(&c.kind)
                .bind(&c.blob)
                .bind(c.extra.to_string())
                .bind(c.ec2_access())
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if n > 0 {
                    tx.record(kind::CREDENTIAL, &c.id, Op::Update).await?;
                }
                Ok(n > 0)
            })
        })
        .await
        .map_err(dup)
}

/// Deletes a credential. `false` when it does not exist.
pub async fn delete(store: &Store, id: &str) -> Result<bool> {
    let id = id.to_string();
    store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let n = sqlx::query("DELETE FROM identity_credential WHERE id = $1")
                    .bind(&id)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                if n > 0 {
                    tx.record(kind::CREDENTIAL, &id, Op::Delete).await?;
                }
                Ok(n > 0)
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(kind: &str, blob: &str) -> Credential {
        Credential {
            id: "c".into(),
            user_id: "u".into(),
            project_id: Some("p".into()),
            kind: kind.into(),
            blob: blob.into(),
            extra: serde_json::json!({}),
        }
    }

    #[test]
    fn ec2_ids_are_sha256_hex_of_the_access_key() {
        assert_eq!(
            ec2_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn access_keys_only_of_ec2_credentials() {
        let blob = r#"{"access": "a1", "secret": "s1"}"#;
        assert_eq!(cred("ec2", blob).ec2_access().as_deref(), Some("a1"));
        assert_eq!(cred("cert", blob).ec2_access(), None);
        assert_eq!(cred("ec2", "not json").ec2_access(), None);
        assert_eq!(cred("ec2", r#"{"access": 5}"#).ec2_access(), None);
    }

    #[test]
    fn debug_leaves_the_blob_out() {
        let c = cred("ec2", r#"{"access": "a1", "secret": "hunter2"}"#);
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
