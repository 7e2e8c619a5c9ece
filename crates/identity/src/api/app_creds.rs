//! `/v3/users/{user_id}/application_credentials`: a user delegates some of their roles on one
//! project to a secret that authenticates on its own.
//!
//! The credential is bound to the project of the token that creates it and carries a subset of
//! that token's roles (all of them by default, implied roles included). The secret is shown
//! once, in the create response; only its bcrypt hash is stored. Tokens made from a credential
//! carry its roles for as long as the user still holds them (see `Identity::resolve`), and are
//! revoked when it is deleted.
//!
//! A credential may also carry access rules (service type, method, path template): tokens made
//! from it then allow only the requests some rule matches, on every service (see
//! `strata_api::access_rules_allow`; this service checks its own calls in `extract::Auth`). The
//! rules are rows of the user's, shared between credentials (`access_rules.rs`).

use super::util::{collection, self_url, string_filter, QueryPairs};
use crate::db::{self, access_rules::RuleRef, app_creds::AppCred};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_system_reader, enforce, owner};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::StatusCode;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use strata_api::AuthContext;
use strata_core::time::{iso_micros_z, now_micros, parse_iso};

pub fn routes() -> Router<Identity> {
    Router::new()
        .route(
            "/v3/users/{user_id}/application_credentials",
            get(app_cred_list).post(app_cred_create),
        )
        .route(
            "/v3/users/{user_id}/application_credentials/{application_credential_id}",
            get(app_cred_show).delete(app_cred_delete),
        )
}

/// The wire view. `secret` is added by the create handler only. `expires_at` is spelled as
/// Keystone serialises datetimes: `2026-11-21T15:04:05.000000`, no zone.
pub async fn view(id: &Identity, c: &AppCred) -> KsResult<Value> {
    let mut roles = Vec::with_capacity(c.roles.len());
    for rid in &c.roles {
        // A role deleted since is simply gone from the credential.
        if let Some(r) = db::roles::get(id.store(), rid).await? {
            roles.push(json!({"id": r.id, "name": r.name, "domain_id": r.domain_id}));
        }
    }
    let access_rules = db::access_rules::list_for_app_cred(id.store(), &c.id).await?;
    Ok(json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "system": null,
        "expires_at": c.expires_at.map(|t| iso_micros_z(t).trim_end_matches('Z').to_string()),
        "unrestricted": c.unrestricted,
        "roles": roles,
        "access_rules": access_rules,
        "links": {"self": format!("{}/users/{}/application_credentials/{}", id.v3_url(), c.user_id, c.id)},
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCredBody {
    application_credential: AppCredFields,
}

/// Keystone's create schema (`additionalProperties: false`). `id`, `project_id` and `system`
/// are accepted and ignored, as Keystone overwrites them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppCredFields {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    roles: Option<Vec<RoleRef>>,
    #[serde(default)]
    unrestricted: Option<bool>,
    #[serde(default)]
    access_rules: Option<Vec<AccessRule>>,
    #[serde(default, rename = "id")]
    _id: Option<Value>,
    #[serde(default, rename = "project_id")]
    _project_id: Option<Value>,
    #[serde(default, rename = "system")]
    _system: Option<Value>,
}

/// `{"id"}` or `{"name"}`; a `domain_id` may qualify a name (older Keystone schemas).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
}

/// An access rule in a create request: `{"id"}` naming one of the user's rules, or
/// `{"service", "method", "path"}` (optionally with an `id` for the rule if it is new).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessRule {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

const METHODS: &[&str] = &["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"];

/// Keystone's `id_string`: 1 to 64 of `[a-zA-Z0-9-]`.
fn id_string(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Checks access rules against Keystone's schema and names what each refers to.
fn rule_refs(rules: Vec<AccessRule>) -> KsResult<Vec<RuleRef>> {
    let field = |name: &str, detail: &str| {
        KsError::bad_request(format!(
            "Invalid input for field 'application_credential.access_rules.{name}': {detail}"
        ))
    };
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        if let Some(id) = r.id.as_deref().filter(|id| !id_string(id)) {
            return Err(field("id", &format!("'{id}' is not a valid id.")));
        }
        if let Some(s) = r.service.as_deref().filter(|s| !id_string(s)) {
            return Err(field(
                "service",
                &format!("'{s}' is not a valid service type."),
            ));
        }
        if let Some(m) = r.method.as_deref().filter(|m| !METHODS.contains(m)) {
            return Err(field("method", &format!("'{m}' is not one of {METHODS:?}")));
        }
        if let Some(p) = &r.path {
            if !p.starts_with('/') || p.chars().count() > 225 {
                return Err(field(
                    "path",
                    "the path must start with '/' and be at most 225 characters.",
                ));
            }
        }
        out.push(match (r.id, r.service, r.method, r.path) {
            (id, Some(service), Some(method), Some(path)) => RuleRef::Rule {
                id,
                service,
                method,
                path,
            },
            // An id with less than a whole rule names an existing rule (Keystone ignores the
            // other attributes of a rule it finds by id).
            (Some(id), ..) => RuleRef::Id(id),
            (None, ..) => {
                return Err(KsError::bad_request(
                    "Invalid input for field 'application_credential.access_rules': a rule needs an id, \
                     or a service, a method and a path.",
                ))
            }
        });
    }
    Ok(out)
}

/// Keystone's `ApplicationCredentialValidationError`.
fn invalid(detail: &str) -> KsError {
    KsError::bad_request(format!("Invalid application credential: {detail}"))
}

/// 64 random bytes, URL-safe base64 without padding, as Keystone generates them.
fn generate_secret() -> String {
    let mut b = [0u8; 64];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Keystone refuses to manage application credentials with a token that was itself made from a
/// restricted one, or with a trust-scoped token (a credential would outlive the delegation).
async fn check_unrestricted(id: &Identity, ctx: &AuthContext) -> KsResult<()> {
    if ctx.trust_id.is_some() {
        return Err(KsError::forbidden_msg(
            "Cannot manage application credentials with a token issued via delegation.",
        ));
    }
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
            "Using method 'application_credential' is not allowed for managing additional application credentials",
        ))
    }
}

/// The role ids a create request delegates: the named roles plus every role they imply, each of
/// which the caller's token must carry (400 otherwise); or, by default, all of the token's roles.
async fn delegated_roles(
    id: &Identity,
    ctx: &AuthContext,
    requested: Option<Vec<RoleRef>>,
) -> KsResult<Vec<String>> {
    let requested = requested.unwrap_or_default();
    if requested.is_empty() {
        return Ok(ctx.role_ids.clone());
    }
    let store = id.store();
    let mut ids = Vec::new();
    for r in requested {
        let rid = match (r.id, r.name) {
            (Some(rid), _) => rid,
            (None, Some(name)) => {
                db::roles::get_by_name(store, r.domain_id.as_deref(), &name)
                    .await?
                    .ok_or_else(|| KsError::not_found("role", &name))?
                    .id
            }
            (None, None) => {
                return Err(KsError::bad_request(
                    "Invalid input for field 'application_credential.roles': a role needs an id or a name.",
                ))
            }
        };
        if !ids.contains(&rid) {
            ids.push(rid);
        }
    }
    let rules = db::roles::implications(store).await?;
    let ids = db::roles::expand(&ids, &rules);
    if ids.iter().any(|r| !ctx.role_ids.contains(r)) {
        return Err(invalid(
            "Cannot create an application credential with unassigned role",
        ));
    }
    Ok(ids)
}

async fn app_cred_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
    KsJson(body): KsJson<AppCredBody>,
) -> KsResult<Response> {
    enforce("identity:create_application_credential", owner(&ctx, &uid))?;
    check_unrestricted(&id, &ctx).await?;
    let project_id = ctx.project_id().map(str::to_string).ok_or_else(|| {
        invalid("a project-scoped token is required to create an application credential.")
    })?;
    let f = body.application_credential;
    if f.name.trim().is_empty() || f.name.chars().count() > 255 {
        return Err(KsError::bad_request(
            "Invalid input for field 'application_credential.name': the name must be 1 to 255 characters and not blank.",
        ));
    }
    let expires_at = match f.expires_at.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let t = parse_iso(s).ok_or_else(|| {
                KsError::bad_request(
                    "Timestamp not in expected format. The server could not comply with the request \
                     since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
                )
            })?;
            if t <= now_micros() {
                return Err(KsError::bad_request(
                    "The 'expires_at' must not be before now. The server could not comply with the \
                     request since it is either malformed or otherwise incorrect. The client is assumed \
                     to be in error.",
                ));
            }
            Some(t)
        }
    };
    let rules = rule_refs(f.access_rules.unwrap_or_default())?;
    let roles = delegated_roles(&id, &ctx, f.roles).await?;
    let secret = f
        .secret
        .filter(|s| !s.is_empty())
        .unwrap_or_else(generate_secret);
    let c = AppCred {
        id: strata_core::ids::hex_id(),
        name: f.name,
        user_id: uid,
        project_id,
        secret_hash: id.hash_secret(secret.clone()).await?,
        description: f.description,
        expires_at,
        unrestricted: f.unrestricted.unwrap_or(false),
        roles,
    };
    db::app_creds::create(id.store(), &c, &rules).await?;
    id.changed().await?;
    let mut v = view(&id, &c).await?;
    v["secret"] = json!(secret);
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"application_credential": v})),
    )
        .into_response())
}

async fn app_cred_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    enforce(
        "identity:list_application_credentials",
        admin_or_system_reader(&ctx) || owner(&ctx, &uid),
    )?;
    let mut w = db::Where::default();
    w.eq("user_id", uid.clone());
    let mut creds = db::app_creds::list(id.store(), &w).await?;
    creds.retain(|c| string_filter(&query, "name", &c.name));
    let mut items = Vec::with_capacity(creds.len());
    for c in &creds {
        items.push(view(&id, c).await?);
    }
    Ok(axum::Json(collection(
        "application_credentials",
        items,
        self_url(
            &id.v3_url(),
            &format!("users/{uid}/application_credentials"),
            &query,
        ),
    ))
    .into_response())
}

/// Loads a credential for show/delete. As Keystone, policy judges ownership by the credential's
/// own user (not the path's), so naming another user's credential under one's own path gains
/// nothing; then a credential that is missing or not under `uid` is 404.
async fn load_for(
    id: &Identity,
    ctx: &AuthContext,
    uid: &str,
    cid: &str,
    action: &str,
    allowed: impl Fn(&AuthContext, &str) -> bool,
) -> KsResult<AppCred> {
    let found = db::app_creds::get(id.store(), cid).await?;
    let target = found.as_ref().map_or(uid, |c| c.user_id.as_str());
    enforce(action, allowed(ctx, target))?;
    found
        .filter(|c| c.user_id == uid)
        .ok_or_else(|| KsError::not_found("Application Credential", cid))
}

async fn app_cred_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((uid, cid)): Path<(String, String)>,
) -> KsResult<Response> {
    let c = load_for(
        &id,
        &ctx,
        &uid,
        &cid,
        "identity:get_application_credential",
        |ctx, target| admin_or_system_reader(ctx) || owner(ctx, target),
    )
    .await?;
    Ok(axum::Json(json!({"application_credential": view(&id, &c).await?})).into_response())
}

/// `DELETE …/application_credentials/{id}`: also revokes every token made from it.
async fn app_cred_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((uid, cid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let c = load_for(
        &id,
        &ctx,
        &uid,
        &cid,
        "identity:delete_application_credential",
        |ctx, target| admin(ctx) || owner(ctx, target),
    )
    .await?;
    check_unrestricted(&id, &ctx).await?;
    if !db::app_creds::delete(id.store(), &c.id).await? {
        return Err(KsError::not_found("Application Credential", &cid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}
