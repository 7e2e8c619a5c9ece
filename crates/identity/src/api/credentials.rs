//! `/v3/credentials` and `/v3/users/{user_id}/credentials/OS-EC2`: secrets users keep with the
//! identity service. Both APIs share one table: an EC2 credential is a credential of type `ec2`
//! whose blob is `{"access", "secret", "trust_id"}`, whose id is the SHA-256 of its access key,
//! and which names a project. EC2/S3 authentication looks keys up with
//! [`db::credentials::ec2_by_access`].
//!
//! Policy is Keystone's defaults: admins and system readers see every credential, owners see and
//! manage their own; OS-EC2 creation and deletion also need the `member` role. A token made from
//! an application credential only reaches credentials of its own project, and only an
//! unrestricted one may create EC2 credentials (Keystone's delegation rules).
//!
//! Blobs are secrets: they are never logged, and only ever shown to whoever may manage them.

use super::fields::{
    check_max_len, extra_of, merge_extra, nullable_string, require_matching_id, require_some,
    required, string, validation_error, Obj,
};
use super::util::{collection, q, self_link, self_url, string_filter, with_extra, QueryPairs};
use crate::db::{
    self,
    credentials::{ec2_id, Credential, EC2},
};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_system_reader, enforce, owner};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use strata_api::AuthContext;

pub fn routes() -> Router<Identity> {
    Router::new()
        .route(
            "/v3/credentials",
            get(credential_list).post(credential_create),
        )
        .route(
            "/v3/credentials/{credential_id}",
            get(credential_show)
                .patch(credential_update)
                .delete(credential_delete),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2",
            get(ec2_list).post(ec2_create),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2/{access}",
            get(ec2_show).delete(ec2_delete),
        )
}

const FIXED: &[&str] = &["id", "user_id", "project_id", "type", "blob", "links"];

/// Blob keys of an `ec2` credential that bind it to a delegation; an update may not change them.
const EC2_BOUND_KEYS: &[&str] = &["trust_id", "app_cred_id", "access_token_id", "access_id"];

pub fn view(id: &Identity, c: &Credential) -> Value {
    with_extra(
        json!({
            "id": c.id,
            "user_id": c.user_id,
            "project_id": c.project_id,
            "type": c.kind,
            "blob": c.blob,
            "links": self_link(&id.v3_url(), &format!("credentials/{}", c.id)),
        }),
        &c.extra,
    )
}

/// The OS-EC2 view of an `ec2` credential.
pub fn ec2_view(id: &Identity, c: &Credential) -> Value {
    let b = c.ec2_blob().unwrap_or_default();
    let access = b.get("access").cloned().unwrap_or(Value::Null);
    json!({
        "user_id": c.user_id,
        "tenant_id": c.project_id,
        "access": access,
        "secret": b.get("secret").cloned().unwrap_or(Value::Null),
        "trust_id": b.get("trust_id").cloned().unwrap_or(Value::Null),
        "links": {"self": format!(
            "{}/users/{}/credentials/OS-EC2/{}",
            id.v3_url(),
            c.user_id,
            access.as_str().unwrap_or_default()
        )},
    })
}

#[derive(Deserialize)]
pub struct CredentialBody {
    credential: Obj,
}

/// Keystone treats the type case-insensitively when deciding a credential is `ec2`; Strata
/// stores it as `ec2` so that every reader agrees.
fn normalise_kind(kind: String) -> String {
    if kind.eq_ignore_ascii_case(EC2) {
        EC2.to_string()
    } else {
        kind
    }
}

/// Parses an `ec2` blob: a non-empty JSON object with a string `access`.
fn parse_ec2_blob(blob: &str) -> KsResult<Obj> {
    let b = match serde_json::from_str::<Value>(blob) {
        Ok(Value::Object(m)) if !m.is_empty() => m,
        Ok(_) => return Err(validation_error("blob", "credential")),
        Err(_) => return Err(KsError::bad_request("Invalid blob in credential")),
    };
    match b.get("access") {
        None | Some(Value::Null) => Err(validation_error("access", "credential")),
        Some(Value::String(_)) => Ok(b),
        Some(v) => Err(KsError::bad_request(format!(
            "Invalid input for field 'blob': the access key {v} is not of type 'string'"
        ))),
    }
}

/// Keystone's project boundary for delegated tokens: a token made from an application
/// credential or scoped to a trust reaches only credentials of the project it is scoped to.
fn check_delegation(ctx: &AuthContext, project_id: Option<&str>) -> KsResult<()> {
    let delegated = ctx.app_cred_id.is_some() || ctx.trust_id.is_some();
    if delegated && project_id != ctx.project_id() {
        return Err(KsError::forbidden(
            "Credential project does not match the project scope of the delegated token",
        ));
    }
    Ok(())
}

/// Only an unrestricted application credential may mint EC2 credentials (which would otherwise
/// outlive its restrictions).
async fn check_unrestricted(id: &Identity, ctx: &AuthContext) -> KsResult<()> {
    let Some(cid) = &ctx.app_cred_id else {
        return Ok(());
    };
    let unrestricted = db::app_creds::get(id.store(), cid)
        .await?
        .is_some_and(|c| c.unrestricted);
    if unrestricted {
        Ok(())
    } else {
        Err(KsError::forbidden(
            "Using method 'application_credential' is not allowed for managing additional credentials",
        ))
    }
}

/// Records the application credential a token came from in a new `ec2` blob, as Keystone does,
/// so that authenticating with the key can be limited the same way.
fn bind_delegation(ctx: &AuthContext, blob: &mut Obj) {
    if let Some(ac) = &ctx.app_cred_id {
        blob.insert("app_cred_id".into(), json!(ac));
    }
}

// ---- /v3/credentials -----------------------------------------------------------------------

async fn credential_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<CredentialBody>,
) -> KsResult<Response> {
    let m = body.credential;
    // As Keystone, policy first, judged by the owner the body names.
    let target = m.get("user_id").and_then(Value::as_str);
    enforce(
        "identity:create_credential",
        admin(&ctx) || target.is_some_and(|u| owner(&ctx, u)),
    )?;
    let user_id = string(&m, "user_id")?.ok_or_else(|| required("user_id"))?;
    let kind = normalise_kind(string(&m, "type")?.ok_or_else(|| required("type"))?);
    let mut blob = string(&m, "blob")?.ok_or_else(|| required("blob"))?;
    let project_id = nullable_string(&m, "project_id")?.flatten();
    check_max_len("user_id", &user_id, 64)?;
    check_max_len("type", &kind, 255)?;
    if let Some(p) = &project_id {
        check_max_len("project_id", p, 64)?;
    }
    let cid = if kind == EC2 {
        if project_id.is_none() {
            return Err(required("project_id"));
        }
        check_unrestricted(&id, &ctx).await?;
        let mut b = parse_ec2_blob(&blob)?;
        let cid = ec2_id(b["access"].as_str().unwrap_or_default());
        if ctx.app_cred_id.is_some() {
            bind_delegation(&ctx, &mut b);
            blob = Value::Object(b).to_string();
        }
        cid
    } else {
        // As Keystone, an `id` in the body is ignored.
        strata_core::ids::hex_id()
    };
    check_delegation(&ctx, project_id.as_deref())?;
    let c = Credential {
        id: cid,
        user_id,
        project_id,
        kind,
        blob,
        extra: Value::Object(extra_of(&m, FIXED)),
    };
    db::credentials::create(id.store(), &c).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"credential": view(&id, &c)})),
    )
        .into_response())
}

/// Lists the credentials the caller may see: all of them for admins and system readers, their
/// own for others; filtered by `user_id` and `type`.
async fn credential_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    // `identity:list_credentials` lets anyone list; each credential is then shown only to those
    // who may get it.
    let mut w = db::Where::default();
    if let Some(u) = q(&query, "user_id") {
        w.eq("user_id", u);
    }
    if let Some(t) = q(&query, "type") {
        w.eq("type", normalise_kind(t.to_string()));
    }
    if !admin_or_system_reader(&ctx) {
        w.eq("user_id", ctx.user_id.clone());
    }
    let mut creds = db::credentials::list(id.store(), &w).await?;
    creds.retain(|c| {
        check_delegation(&ctx, c.project_id.as_deref()).is_ok()
            && string_filter(&query, "type", &c.kind)
    });
    let items = creds.iter().map(|c| view(&id, c)).collect();
    Ok(axum::Json(collection(
        "credentials",
        items,
        self_url(&id.v3_url(), "credentials", &query),
    ))
    .into_response())
}

/// Loads a credential for show/update/delete. As Keystone, policy is judged against the
/// credential's owner, and a missing credential is 403 to whoever could not have seen it anyway.
async fn load_for(
    id: &Identity,
    ctx: &AuthContext,
    cid: &str,
    action: &str,
    allowed: impl Fn(&AuthContext, Option<&str>) -> bool,
) -> KsResult<Credential> {
    let found = db::credentials::get(id.store(), cid).await?;
    enforce(
        action,
        allowed(ctx, found.as_ref().map(|c| c.user_id.as_str())),
    )?;
    let c = found.ok_or_else(|| KsError::not_found("credential", cid))?;
    check_delegation(ctx, c.project_id.as_deref())?;
    Ok(c)
}

fn may_read(ctx: &AuthContext, owner_id: Option<&str>) -> bool {
    admin_or_system_reader(ctx) || owner_id.is_some_and(|u| owner(ctx, u))
}

fn may_manage(ctx: &AuthContext, owner_id: Option<&str>) -> bool {
    admin(ctx) || owner_id.is_some_and(|u| owner(ctx, u))
}

async fn credential_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(cid): Path<String>,
) -> KsResult<Response> {
    let c = load_for(&id, &ctx, &cid, "identity:get_credential", may_read).await?;
    Ok(axum::Json(json!({"credential": view(&id, &c)})).into_response())
}

/// `PATCH /v3/credentials/{id}`: any attribute but the id may change; the result must still be
/// a valid credential (an `ec2` one keeps a project and an access key), and an `ec2`
/// credential's delegation keys may not change. The id stays even when the access key does.
async fn credential_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(cid): Path<String>,
    KsJson(body): KsJson<CredentialBody>,
) -> KsResult<Response> {
    const ACTION: &str = "identity:update_credential";
    let mut c = load_for(&id, &ctx, &cid, ACTION, may_manage).await?;
    let m = body.credential;
    require_some(&m)?;
    let blob = string(&m, "blob")?;
    let kind = string(&m, "type")?.map(normalise_kind);
    let user_id = string(&m, "user_id")?;
    let project_id = nullable_string(&m, "project_id")?;
    if let (Some(old), Some(new)) = (c.ec2_blob(), &blob) {
        let new = parse_ec2_blob(new)?;
        for key in EC2_BOUND_KEYS {
            let bound = |b: &Obj| b.get(*key).cloned().unwrap_or(Value::Null);
            if bound(&old) != bound(&new) {
                return Err(KsError::bad_request(format!(
                    "{key} can not be updated for credential"
                )));
            }
        }
    }
    require_matching_id(&m, &cid)?;
    let was = c.clone();
    if let Some(u) = user_id {
        check_max_len("user_id", &u, 64)?;
        c.user_id = u;
    }
    if let Some(p) = project_id {
        if let Some(p) = &p {
            check_max_len("project_id", p, 64)?;
        }
        c.project_id = p;
    }
    if let Some(k) = kind {
        check_max_len("type", &k, 255)?;
        c.kind = k;
    }
    if let Some(b) = blob {
        c.blob = b;
    }
    merge_extra(&mut c.extra, &m, FIXED);
    if c.kind == EC2 {
        if c.project_id.is_none() {
            return Err(validation_error("project_id", "credential"));
        }
        if c.kind != was.kind || c.blob != was.blob {
            parse_ec2_blob(&c.blob)?;
        }
    }
    // As Keystone, policy again against the result: an owner cannot give a credential away, and
    // a delegated token cannot move one out of its project.
    enforce(ACTION, may_manage(&ctx, Some(&c.user_id)))?;
    check_delegation(&ctx, c.project_id.as_deref())?;
    if !db::credentials::update(id.store(), &c).await? {
        return Err(KsError::not_found("credential", &cid));
    }
    id.changed().await?;
    Ok(axum::Json(json!({"credential": view(&id, &c)})).into_response())
}

async fn credential_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(cid): Path<String>,
) -> KsResult<StatusCode> {
    let c = load_for(&id, &ctx, &cid, "identity:delete_credential", may_manage).await?;
    if !db::credentials::delete(id.store(), &c.id).await? {
        return Err(KsError::not_found("credential", &cid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- OS-EC2 --------------------------------------------------------------------------------

/// `rule:admin_required or (role:member and user_id:<owner>)`.
fn admin_or_member_owner(ctx: &AuthContext, owner_id: &str) -> bool {
    admin(ctx) || (ctx.has_role("member") && owner(ctx, owner_id))
}

async fn require_user(id: &Identity, uid: &str) -> KsResult<()> {
    db::users::get(id.store(), uid)
        .await?
        .map(|_| ())
        .ok_or_else(|| KsError::not_found("user", uid))
}

/// `POST /v3/users/{user_id}/credentials/OS-EC2` with `{"tenant_id"}`: a new access/secret pair
/// for the user on that project.
async fn ec2_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
    KsJson(body): KsJson<Obj>,
) -> KsResult<Response> {
    enforce(
        "identity:ec2_create_credential",
        admin_or_member_owner(&ctx, &uid),
    )?;
    check_unrestricted(&id, &ctx).await?;
    require_user(&id, &uid).await?;
    let tenant_id = nullable_string(&body, "tenant_id")?
        .flatten()
        .ok_or_else(|| required("tenant_id"))?;
    db::projects::get(id.store(), &tenant_id)
        .await?
        .ok_or_else(|| KsError::not_found("project", &tenant_id))?;
    check_delegation(&ctx, Some(&tenant_id))?;
    let access = strata_core::ids::hex_id();
    let mut blob = Obj::new();
    blob.insert("access".into(), json!(access));
    blob.insert("secret".into(), json!(strata_core::ids::hex_id()));
    blob.insert("trust_id".into(), Value::Null);
    bind_delegation(&ctx, &mut blob);
    let c = Credential {
        id: ec2_id(&access),
        user_id: uid,
        project_id: Some(tenant_id),
        kind: EC2.to_string(),
        blob: Value::Object(blob).to_string(),
        extra: json!({}),
    };
    db::credentials::create(id.store(), &c).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"credential": ec2_view(&id, &c)})),
    )
        .into_response())
}

async fn ec2_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
) -> KsResult<Response> {
    enforce(
        "identity:ec2_list_credentials",
        admin_or_system_reader(&ctx) || owner(&ctx, &uid),
    )?;
    require_user(&id, &uid).await?;
    let mut w = db::Where::default();
    w.eq("user_id", uid.clone()).eq("type", EC2);
    let mut creds = db::credentials::list(id.store(), &w).await?;
    creds.retain(|c| check_delegation(&ctx, c.project_id.as_deref()).is_ok());
    let items = creds.iter().map(|c| ec2_view(&id, c)).collect();
    Ok(axum::Json(collection(
        "credentials",
        items,
        format!("{}/users/{uid}/credentials/OS-EC2", id.v3_url()),
    ))
    .into_response())
}

/// Loads the EC2 credential with access key `access` for show/delete. Policy is judged by the
/// credential's own user (the path's when there is none), so naming another user's key under
/// one's own path gains nothing; then a key that is missing or not `uid`'s is 404.
async fn load_ec2(
    id: &Identity,
    ctx: &AuthContext,
    uid: &str,
    access: &str,
    action: &str,
    allowed: impl Fn(&AuthContext, &str) -> bool,
) -> KsResult<Credential> {
    let found = db::credentials::get_by_access(id.store(), access).await?;
    let target = found.as_ref().map_or(uid, |c| c.user_id.as_str());
    enforce(action, allowed(ctx, target))?;
    let c = found
        .filter(|c| c.user_id == uid)
        .ok_or_else(|| KsError::not_found("credential", &ec2_id(access)))?;
    check_delegation(ctx, c.project_id.as_deref())?;
    Ok(c)
}

async fn ec2_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((uid, access)): Path<(String, String)>,
) -> KsResult<Response> {
    let c = load_ec2(
        &id,
        &ctx,
        &uid,
        &access,
        "identity:ec2_get_credential",
        |ctx, target| admin_or_system_reader(ctx) || owner(ctx, target),
    )
    .await?;
    Ok(axum::Json(json!({"credential": ec2_view(&id, &c)})).into_response())
}

async fn ec2_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((uid, access)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let c = load_ec2(
        &id,
        &ctx,
        &uid,
        &access,
        "identity:ec2_delete_credential",
        admin_or_member_owner,
    )
    .await?;
    if !db::credentials::delete(id.store(), &c.id).await? {
        return Err(KsError::not_found("credential", &c.id));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_blobs() {
        assert!(parse_ec2_blob(r#"{"access": "a", "secret": "s"}"#).is_ok());
        for bad in [
            "",
            "nope",
            "[]",
            "{}",
            r#"{"secret": "s"}"#,
            r#"{"access": null}"#,
            r#"{"access": 1}"#,
        ] {
            assert_eq!(
                parse_ec2_blob(bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert_eq!(normalise_kind("EC2".into()), "ec2");
        assert_eq!(normalise_kind("cert".into()), "cert");
    }
}
