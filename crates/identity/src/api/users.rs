//! `/v3/users` and self-service password changes.

use super::projects::scope_domain;
use super::util::{collection, q, query_true, self_link, self_url, string_filter, QueryPairs};
use crate::db::{self, users::User};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_reader_of, admin_or_system_reader, enforce, owner};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use strata_core::time::iso_micros_z;

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/users", get(user_list).post(user_create))
        .route(
            "/v3/users/{user_id}",
            get(user_show).patch(user_update).delete(user_delete),
        )
        .route("/v3/users/{user_id}/password", post(user_change_password))
}

/// User options Keystone knows; others are refused.
const OPTIONS: &[&str] = &[
    "ignore_change_password_upon_first_use",
    "ignore_password_expiry",
    "ignore_lockout_failure_attempts",
    "lock_password",
    "multi_factor_auth_enabled",
    "multi_factor_auth_rules",
    "ignore_user_inactivity",
];

/// User names may be up to 255 characters (Keystone's `user_name` schema).
fn check_user_name(name: &str) -> KsResult<()> {
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(KsError::bad_request(
            "Invalid input for field 'user.name': the name must be 1 to 255 characters and not blank.",
        ));
    }
    Ok(())
}

pub fn view(id: &Identity, u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": u.password_expires_at.map(|t| iso_micros_z(t).trim_end_matches('Z').to_string()),
        "options": u.options,
        "links": self_link(&id.v3_url(), &format!("users/{}", u.id)),
    });
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    if let Some(d) = &u.description {
        v["description"] = json!(d);
    }
    super::util::with_extra(v, &u.extra)
}

#[derive(Deserialize)]
pub struct UserBody {
    user: Map<String, Value>,
}

const FIXED: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "enabled",
    "password",
    "default_project_id",
    "description",
    "options",
    "links",
    "password_expires_at",
    "federated",
];

fn str_field(m: &Map<String, Value>, k: &str) -> KsResult<Option<String>> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(KsError::bad_request(format!(
            "Invalid input for field 'user.{k}': {other} is not of type 'string'"
        ))),
    }
}

fn options_field(m: &Map<String, Value>) -> KsResult<Option<Map<String, Value>>> {
    match m.get("options") {
        None => Ok(None),
        Some(Value::Object(o)) => {
            for k in o.keys() {
                if !OPTIONS.contains(&k.as_str()) {
                    return Err(KsError::bad_request(format!(
                        "Invalid input for field 'user.options': '{k}' is not a valid option."
                    )));
                }
            }
            Ok(Some(o.clone()))
        }
        Some(other) => Err(KsError::bad_request(format!(
            "Invalid input for field 'user.options': {other} is not of type 'object'"
        ))),
    }
}

async fn user_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<UserBody>,
) -> KsResult<Response> {
    let m = body.user;
    let name = str_field(&m, "name")?.ok_or_else(|| {
        KsError::bad_request("Invalid input for field 'user.name': 'name' is a required property")
    })?;
    check_user_name(&name)?;
    let domain_id = str_field(&m, "domain_id")?.unwrap_or_else(|| scope_domain(&ctx));
    enforce("identity:create_user", admin(&ctx))?;
    let store = id.store();
    db::domains::get(store, &domain_id)
        .await?
        .ok_or_else(|| KsError::not_found("domain", &domain_id))?;
    let enabled = match m.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(KsError::bad_request(format!(
                "Invalid input for field 'user.enabled': {other} is not of type 'boolean'"
            )))
        }
    };
    let mut u = User {
        id: strata_core::ids::hex_id(),
        domain_id,
        name,
        enabled,
        default_project_id: str_field(&m, "default_project_id")?,
        description: str_field(&m, "description")?,
        options: Value::Object(options_field(&m)?.unwrap_or_default()),
        extra: Value::Object(
            m.iter()
                .filter(|(k, _)| !FIXED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        failed_auth_count: 0,
        failed_auth_at: None,
        password_expires_at: None,
    };
    let password = match str_field(&m, "password")? {
        Some(pw) => Some(id.new_password(None, &pw, false).await?),
        None => None,
    };
    u.password_expires_at = password.as_ref().and_then(|p| p.expires_at);
    db::users::create(store, &u, password).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"user": view(&id, &u)})),
    )
        .into_response())
}

async fn user_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let domain_filter = q(&query, "domain_id").map(str::to_string).or_else(|| {
        if admin_or_system_reader(&ctx) {
            None
        } else {
            ctx.domain_id().map(str::to_string)
        }
    });
    let allowed = admin_or_system_reader(&ctx)
        || domain_filter
            .as_deref()
            .is_some_and(|d| admin_or_reader_of(&ctx, d));
    enforce("identity:list_users", allowed)?;
    let mut w = db::Where::default();
    if let Some(d) = &domain_filter {
        w.eq("u.domain_id", d.clone());
    }
    if let Some(e) = q(&query, "enabled") {
        w.literal(if query_true(e) {
            "u.enabled = 1"
        } else {
            "u.enabled = 0"
        });
    }
    if let Some(n) = q(&query, "name") {
        w.eq("u.name", n);
    }
    let mut users = db::users::list(id.store(), &w).await?;
    users.retain(|u| string_filter(&query, "name", &u.name));
    let items = users.iter().map(|u| view(&id, u)).collect();
    Ok(axum::Json(collection(
        "users",
        items,
        self_url(&id.v3_url(), "users", &query),
    ))
    .into_response())
}

async fn load(id: &Identity, uid: &str) -> KsResult<User> {
    db::users::get(id.store(), uid)
        .await?
        .ok_or_else(|| KsError::not_found("user", uid))
}

async fn user_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
) -> KsResult<Response> {
    let u = load(&id, &uid).await?;
    enforce(
        "identity:get_user",
        owner(&ctx, &u.id) || admin_or_reader_of(&ctx, &u.domain_id),
    )?;
    Ok(axum::Json(json!({"user": view(&id, &u)})).into_response())
}

async fn user_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
    KsJson(body): KsJson<UserBody>,
) -> KsResult<Response> {
    let mut u = load(&id, &uid).await?;
    enforce("identity:update_user", admin(&ctx))?;
    let m = body.user;
    if let Some(d) = str_field(&m, "domain_id")? {
        if d != u.domain_id {
            return Err(KsError::bad_request(
                "Invalid input for field 'user.domain_id': the domain of a user cannot be changed.",
            ));
        }
    }
    let was_enabled = u.enabled;
    if let Some(n) = str_field(&m, "name")? {
        check_user_name(&n)?;
        u.name = n;
    }
    match m.get("enabled") {
        None => {}
        Some(Value::Bool(b)) => u.enabled = *b,
        Some(other) => {
            return Err(KsError::bad_request(format!(
                "Invalid input for field 'user.enabled': {other} is not of type 'boolean'"
            )))
        }
    }
    if m.contains_key("default_project_id") {
        u.default_project_id = str_field(&m, "default_project_id")?;
    }
    if m.contains_key("description") {
        u.description = str_field(&m, "description")?;
    }
    if let Some(o) = options_field(&m)? {
        if let Value::Object(cur) = &mut u.options {
            for (k, v) in o {
                if v.is_null() {
                    cur.remove(&k);
                } else {
                    cur.insert(k, v);
                }
            }
        }
    }
    if let Value::Object(cur) = &mut u.extra {
        for (k, v) in m.iter().filter(|(k, _)| !FIXED.contains(&k.as_str())) {
            cur.insert(k.clone(), v.clone());
        }
    }
    if u.enabled && !was_enabled {
        // Re-enabling clears a lockout, as in Keystone.
        u.failed_auth_count = 0;
        u.failed_auth_at = None;
    }
    let password = match str_field(&m, "password")? {
        Some(pw) => Some(id.new_password(Some(&u), &pw, false).await?),
        None => None,
    };
    let revoke = (was_enabled && !u.enabled) || password.is_some();
    if let Some(p) = &password {
        u.password_expires_at = p.expires_at;
    }
    db::users::update(id.store(), &u, password, revoke).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"user": view(&id, &u)})).into_response())
}

async fn user_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
) -> KsResult<StatusCode> {
    let u = load(&id, &uid).await?;
    enforce("identity:delete_user", admin(&ctx))?;
    db::users::delete(id.store(), &u.id).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct PasswordChangeBody {
    user: PasswordChange,
}

#[derive(Deserialize)]
struct PasswordChange {
    original_password: String,
    password: String,
}

/// `POST /v3/users/{id}/password`: self-service, authenticated by the original password (so a
/// user whose password expired can still change it), counted towards lockout.
async fn user_change_password(
    State(id): State<Identity>,
    Path(uid): Path<String>,
    KsJson(body): KsJson<PasswordChangeBody>,
) -> KsResult<StatusCode> {
    let u = db::users::get(id.store(), &uid)
        .await?
        .ok_or_else(KsError::unauthorized)?;
    match id.check_password(&u, &body.user.original_password).await {
        Ok(()) => {}
        // An expired password may still be used to set a new one.
        Err(e)
            if e.status == StatusCode::UNAUTHORIZED
                && e.message.starts_with("The password is expired") => {}
        Err(e) => return Err(e),
    }
    if u.options.get("lock_password").and_then(Value::as_bool) == Some(true) {
        return Err(KsError::forbidden_msg(
            "You are not allowed to change your password: it is locked.",
        ));
    }
    let password = id.new_password(Some(&u), &body.user.password, true).await?;
    let mut u2 = u.clone();
    u2.password_expires_at = password.expires_at;
    db::users::update(id.store(), &u2, Some(password), true).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}
