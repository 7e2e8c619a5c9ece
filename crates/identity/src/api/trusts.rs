//! `/v3/OS-TRUST/trusts`: a trustor delegates some of the roles they hold on a project to a
//! trustee, who may then get tokens scoped to the trust (`{"scope": {"OS-TRUST:trust":
//! {"id"}}}` in `POST /v3/auth/tokens`).
//!
//! Trusts are immutable once made. A trust-scoped token carries the trust's roles (implied
//! roles included) on its project for as long as the trust is valid and the trustor still
//! holds them (`Identity::resolve_trust` checks on every resolution), and stands for the
//! trustor when the trust allows impersonation. `remaining_uses` limits how many tokens may be
//! issued; tokens already issued are not affected by it. Deleting a trust revokes its tokens
//! at once. A trust used up or expired is not found, as in Keystone, but may still be deleted.
//!
//! Redelegation: the trustee of a trust that allows it may, with a token scoped to it, make a
//! new trust from it (Keystone's rules: fewer or equal roles, no later expiry, no
//! impersonation unless the parent has it, no use limit, a depth that counts down from
//! [`MAX_REDELEGATION_COUNT`]). Strata also requires the new trust to be on the same project.

use super::fields::{required, string, type_error, validation_error, Obj};
use super::util::{collection, q, self_url, QueryPairs};
use crate::db::{self, trusts::Trust};
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
use strata_core::time::{iso_micros_z, now_micros, parse_iso};

/// Keystone's `[trust] max_redelegation_count` default: the longest chain of redelegations.
pub const MAX_REDELEGATION_COUNT: i64 = 3;

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/OS-TRUST/trusts", get(trust_list).post(trust_create))
        .route(
            "/v3/OS-TRUST/trusts/{trust_id}",
            get(trust_show).delete(trust_delete),
        )
        .route("/v3/OS-TRUST/trusts/{trust_id}/roles", get(trust_role_list))
        .route(
            "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}",
            get(trust_role_show).head(trust_role_check),
        )
}

fn trust_url(id: &Identity, trust_id: &str) -> String {
    format!("{}/OS-TRUST/trusts/{trust_id}", id.v3_url())
}

/// The view lists show: the trust without its roles. `expires_at` is spelled as Keystone
/// spells it (`2026-11-21T15:04:05.000000Z`); `deleted_at` is always null (deleted trusts are
/// never shown) but present, as Keystone includes it.
pub fn summary(id: &Identity, t: &Trust) -> Value {
    json!({
        "id": t.id,
        "trustor_user_id": t.trustor_user_id,
        "trustee_user_id": t.trustee_user_id,
        "project_id": t.project_id,
        "impersonation": t.impersonation,
        "expires_at": t.expires_at.map(iso_micros_z),
        "remaining_uses": t.remaining_uses,
        "redelegated_trust_id": t.redelegated_trust_id,
        "redelegation_count": t.redelegation_count,
        "deleted_at": null,
        "links": {"self": trust_url(id, &t.id)},
    })
}

/// The roles of a trust as full role views; a role deleted since is left out.
async fn role_views(id: &Identity, t: &Trust) -> KsResult<Vec<Value>> {
    let mut roles = Vec::with_capacity(t.roles.len());
    for rid in &t.roles {
        if let Some(r) = db::roles::get(id.store(), rid).await? {
            roles.push(super::roles::view(id, &r));
        }
    }
    Ok(roles)
}

fn roles_links(id: &Identity, t: &Trust) -> Value {
    json!({"self": format!("{}/roles", trust_url(id, &t.id)), "previous": null, "next": null})
}

/// The view create and show answer: the summary with `roles` and `roles_links`.
pub async fn view(id: &Identity, t: &Trust) -> KsResult<Value> {
    let mut v = summary(id, t);
    v["roles"] = Value::Array(role_views(id, t).await?);
    v["roles_links"] = roles_links(id, t);
    Ok(v)
}

// --- tokens -----------------------------------------------------------------------------------

/// The trust id of an authentication request's `{"OS-TRUST:trust": {"id"}}` scope, `None` for
/// any other scope.
pub(crate) fn requested_trust(scope: Option<&Value>) -> KsResult<Option<String>> {
    let Some(o) = scope.and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some(t) = o.get("OS-TRUST:trust") else {
        return Ok(None);
    };
    if o.len() != 1 {
        return Err(validation_error(
            "system, project, domain, OS-TRUST:trust or unscoped",
            "scope",
        ));
    }
    let t = t
        .as_object()
        .ok_or_else(|| type_error("OS-TRUST:trust", t, "object"))?;
    match t.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            Err(validation_error("trust_id", "trust"))
        }
        Some(v) => Err(type_error("OS-TRUST:trust.id", v, "string")),
    }
}

/// Checks that `user_id` may get a token scoped to trust `trust_id` now, returning the trust
/// and its project. As Keystone: a trust that is gone, expired or used up is 401, a user who is
/// not the trustee 403. A trust without a project cannot scope a token (401).
pub(crate) async fn trust_for_token(
    id: &Identity,
    user_id: &str,
    trust_id: &str,
) -> KsResult<(Trust, String)> {
    let t = db::trusts::get(id.store(), trust_id)
        .await?
        .filter(|t| t.usable(now_micros()))
        .ok_or_else(KsError::unauthorized)?;
    if t.trustee_user_id != user_id {
        return Err(KsError::forbidden_msg("User is not a trustee."));
    }
    let project_id = t.project_id.clone().ok_or_else(KsError::unauthorized)?;
    Ok((t, project_id))
}

/// Takes one use of `t` once its token is resolved (so that a refused token costs none). 403
/// when another request took the last use meanwhile.
pub(crate) async fn consume_use(id: &Identity, t: &Trust) -> KsResult<()> {
    if t.remaining_uses.is_some() && !db::trusts::consume_use(id.store(), &t.id).await? {
        return Err(KsError::forbidden_msg(format!(
            "No remaining uses for trust: {}.",
            t.id
        )));
    }
    Ok(())
}

// --- create -----------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustBody {
    trust: Obj,
}

/// A role of a create request: by id or by name.
enum RoleRef {
    Id(String),
    Name(String),
}

/// A create request, checked against Keystone's schema.
struct NewTrust {
    trustor_user_id: String,
    trustee_user_id: String,
    impersonation: bool,
    project_id: Option<String>,
    remaining_uses: Option<i64>,
    expires_at: Option<String>,
    allow_redelegation: bool,
    redelegation_count: Option<i64>,
    roles: Vec<RoleRef>,
}

fn nullable<'a>(m: &'a Obj, field: &str) -> Option<&'a Value> {
    m.get(field).filter(|v| !v.is_null())
}

fn nullable_str(m: &Obj, field: &str) -> KsResult<Option<String>> {
    match nullable(m, field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(type_error(field, v, "string, null")),
    }
}

/// An integer or null, at least `min`.
fn nullable_int(m: &Obj, field: &str, min: i64) -> KsResult<Option<i64>> {
    let Some(v) = nullable(m, field) else {
        return Ok(None);
    };
    let n = v
        .as_i64()
        .ok_or_else(|| type_error(field, v, "integer, null"))?;
    if n < min {
        return Err(KsError::bad_request(format!(
            "Invalid input for field '{field}': {n} is less than the minimum of {min}"
        )));
    }
    Ok(Some(n))
}

fn parse_new_trust(m: &Obj) -> KsResult<NewTrust> {
    let req_string = |f: &str| string(m, f)?.ok_or_else(|| required(f));
    let trustor_user_id = req_string("trustor_user_id")?;
    let trustee_user_id = req_string("trustee_user_id")?;
    let impersonation = match m.get("impersonation") {
        None => return Err(required("impersonation")),
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(type_error("impersonation", v, "boolean")),
    };
    let allow_redelegation = match nullable(m, "allow_redelegation") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(type_error("allow_redelegation", v, "boolean, null")),
    };
    let mut roles = Vec::new();
    match nullable(m, "roles") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let o = item
                    .as_object()
                    .filter(|o| o.len() == 1)
                    .ok_or_else(|| {
                        KsError::bad_request(format!(
                            "Invalid input for field 'roles': {item} must have exactly one of 'id' or 'name'"
                        ))
                    })?;
                let r = match (o.get("id"), o.get("name")) {
                    (Some(Value::String(s)), _) if !s.is_empty() => RoleRef::Id(s.clone()),
                    (_, Some(Value::String(s))) if !s.is_empty() => RoleRef::Name(s.clone()),
                    _ => {
                        return Err(KsError::bad_request(format!(
                            "Invalid input for field 'roles': {item} must have exactly one of 'id' or 'name', a non-empty string"
                        )))
                    }
                };
                roles.push(r);
            }
        }
        Some(v) => return Err(type_error("roles", v, "array")),
    }
    Ok(NewTrust {
        trustor_user_id,
        trustee_user_id,
        impersonation,
        project_id: nullable_str(m, "project_id")?,
        remaining_uses: nullable_int(m, "remaining_uses", 1)?,
        expires_at: nullable_str(m, "expires_at")?,
        allow_redelegation,
        redelegation_count: nullable_int(m, "redelegation_count", 0)?,
        roles,
    })
}

/// Keystone's `parse_expiration_date`: ISO 8601, UTC when no zone is given, not in the past.
fn parse_expiry(s: Option<&str>) -> KsResult<Option<i64>> {
    let Some(s) = s else {
        return Ok(None);
    };
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
    Ok(Some(t))
}

/// Keystone refuses application credential tokens for managing trusts (whatever their
/// restrictions: a credential must not extend its reach through the delegation chain).
fn check_not_app_cred(ctx: &AuthContext) -> KsResult<()> {
    if ctx.app_cred_id.is_some() {
        return Err(KsError::forbidden(
            "Using method 'application_credential' is not allowed for managing trusts",
        ));
    }
    Ok(())
}

/// Keystone's `_validate_redelegation`: what a trust redelegated from `parent` (or from one of
/// its ancestors) may ask for. Fills in `expires_at` from the parent when not given.
fn check_redelegation(parent: &Trust, child: &mut Trust) -> KsResult<()> {
    let depth = parent.redelegation_count;
    if !(0 < depth && depth <= MAX_REDELEGATION_COUNT) {
        return Err(KsError::forbidden_msg(format!(
            "Remaining redelegation depth of {depth} out of allowed range of [0..{MAX_REDELEGATION_COUNT}]"
        )));
    }
    if let Some(n) = child.remaining_uses {
        return Err(KsError::forbidden_msg(format!(
            "Field \"remaining_uses\" is set to {n} while it must not be set in order to redelegate a trust"
        )));
    }
    match (child.expires_at, parent.expires_at) {
        (Some(c), Some(p)) if p < c => {
            return Err(KsError::forbidden_msg(
                "Requested expiration time is more than redelegated trust can provide",
            ))
        }
        (None, p) => child.expires_at = p,
        _ => {}
    }
    if child.roles.iter().any(|r| !parent.roles.contains(r)) {
        return Err(KsError::forbidden_msg(
            "Some of requested roles are not in redelegated trust",
        ));
    }
    if !parent.impersonation && child.impersonation {
        return Err(KsError::forbidden_msg(format!(
            "Impersonation is not allowed because redelegated trust does not specify \
             impersonation. Redelegated trust id: {}",
            parent.id
        )));
    }
    Ok(())
}

/// `POST /v3/OS-TRUST/trusts`: the caller must be the trustor and hold every role delegated on
/// the project (or, redelegating, the original trustor must).
async fn trust_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<TrustBody>,
) -> KsResult<Response> {
    let f = parse_new_trust(&body.trust)?;
    enforce("identity:create_trust", owner(&ctx, &f.trustor_user_id))?;
    check_not_app_cred(&ctx)?;
    let store = id.store();
    let project_id = f.project_id.filter(|p| !p.is_empty());
    if project_id.is_some() && f.roles.is_empty() {
        return Err(KsError::forbidden("At least one role should be specified"));
    }
    if db::users::get(store, &f.trustee_user_id).await?.is_none() {
        return Err(KsError::not_found("user", &f.trustee_user_id));
    }
    let mut role_ids: Vec<String> = Vec::with_capacity(f.roles.len());
    for r in f.roles {
        let rid = match r {
            RoleRef::Id(rid) => rid,
            RoleRef::Name(name) => {
                db::roles::get_by_name(store, None, &name)
                    .await?
                    .ok_or_else(|| KsError::not_found("role", &name))?
                    .id
            }
        };
        if !role_ids.contains(&rid) {
            role_ids.push(rid);
        }
    }
    // Redelegating: the caller's token is scoped to the trust redelegated from.
    let parent = match &ctx.trust_id {
        Some(pid) => Some(
            db::trusts::get(store, pid)
                .await?
                .filter(|p| p.usable(now_micros()))
                .ok_or_else(|| KsError::not_found("trust", pid))?,
        ),
        None => None,
    };
    let origin = match &parent {
        Some(p) => id.trust_origin(p).await?,
        None => f.trustor_user_id.clone(),
    };
    // Every delegated role must be held (effectively: through groups, inheritance or
    // implication; domain-specific roles count) by the trustor on the project.
    let held = match &project_id {
        Some(pid) => {
            let p = db::projects::get(store, pid)
                .await?
                .ok_or_else(|| KsError::not_found("project", pid))?;
            let user = db::users::get(store, &origin)
                .await?
                .ok_or_else(|| KsError::not_found("user", &origin))?;
            let rules = db::roles::implications(store).await?;
            db::roles::expand(&id.direct_roles_on_project(&user, &p).await?, &rules)
        }
        None => Vec::new(),
    };
    if let Some(missing) = role_ids.iter().find(|r| !held.contains(r)) {
        return Err(KsError::not_found("role", missing));
    }
    let expires_at = parse_expiry(f.expires_at.as_deref())?;

    let redelegatable = f.allow_redelegation && f.redelegation_count != Some(0);
    let mut redelegation_count = 0;
    if redelegatable {
        if let Some(n) = f.redelegation_count.filter(|n| *n > MAX_REDELEGATION_COUNT) {
            return Err(KsError::forbidden_msg(format!(
                "Requested redelegation depth of {n} is greater than allowed {MAX_REDELEGATION_COUNT}"
            )));
        }
        if f.remaining_uses.is_some() {
            return Err(KsError::bad_request(
                "remaining_uses must not be set if redelegation is allowed",
            ));
        }
        redelegation_count = f.redelegation_count.unwrap_or(MAX_REDELEGATION_COUNT);
    }
    let mut t = Trust {
        id: strata_core::ids::hex_id(),
        trustor_user_id: f.trustor_user_id,
        trustee_user_id: f.trustee_user_id,
        project_id,
        impersonation: f.impersonation,
        expires_at,
        remaining_uses: f.remaining_uses,
        redelegated_trust_id: None,
        redelegation_count,
        roles: role_ids,
    };
    if let Some(p) = parent {
        let remaining = p.redelegation_count - 1;
        if redelegatable {
            if f.redelegation_count.is_some_and(|n| n != remaining) {
                return Err(KsError::forbidden_msg(
                    "Modifying \"redelegation_count\" upon redelegation is forbidden. Omitting \
                     this parameter is advised.",
                ));
            }
            t.redelegation_count = remaining;
        }
        if t.project_id != p.project_id {
            return Err(KsError::forbidden_msg(
                "A redelegated trust must be on the project of the trust it is redelegated from",
            ));
        }
        // Check against the whole chain, nearest first.
        t.redelegated_trust_id = Some(p.id.clone());
        let mut next = Some(p);
        while let Some(anc) = next {
            check_redelegation(&anc, &mut t)?;
            next = match &anc.redelegated_trust_id {
                Some(aid) => db::trusts::get(store, aid).await?,
                None => None,
            };
        }
    }
    db::trusts::create(store, &t).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"trust": view(&id, &t).await?})),
    )
        .into_response())
}

// --- read and delete --------------------------------------------------------------------------

/// `GET /v3/OS-TRUST/trusts`: by trustor or trustee (admins, system readers, or that user), or
/// all of them (admins and system readers).
async fn trust_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    if let Some((k, _)) = query
        .iter()
        .find(|(k, _)| k != "trustor_user_id" && k != "trustee_user_id")
    {
        return Err(KsError::bad_request(format!(
            "Invalid input for query parameters: Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let mut w = db::Where::default();
    // As Keystone, a trustor filter wins over a trustee filter.
    match (q(&query, "trustor_user_id"), q(&query, "trustee_user_id")) {
        (Some(u), _) => {
            enforce(
                "identity:list_trusts_for_trustor",
                admin_or_system_reader(&ctx) || owner(&ctx, u),
            )?;
            w.eq("trustor_user_id", u);
        }
        (None, Some(u)) => {
            enforce(
                "identity:list_trusts_for_trustee",
                admin_or_system_reader(&ctx) || owner(&ctx, u),
            )?;
            w.eq("trustee_user_id", u);
        }
        (None, None) => enforce("identity:list_trusts", admin_or_system_reader(&ctx))?,
    }
    let trusts = db::trusts::list(id.store(), &w).await?;
    let items = trusts.iter().map(|t| summary(&id, t)).collect();
    Ok(axum::Json(collection(
        "trusts",
        items,
        self_url(&id.v3_url(), "OS-TRUST/trusts", &query),
    ))
    .into_response())
}

/// Loads a trust for reading: 404 when it is gone, expired or used up (before policy, as
/// Keystone), then admins, system readers, its trustor and its trustee may see it.
async fn load_for_read(
    id: &Identity,
    ctx: &AuthContext,
    trust_id: &str,
    action: &str,
) -> KsResult<Trust> {
    let t = db::trusts::get(id.store(), trust_id)
        .await?
        .filter(|t| t.usable(now_micros()))
        .ok_or_else(|| KsError::not_found("trust", trust_id))?;
    enforce(
        action,
        admin_or_system_reader(ctx)
            || owner(ctx, &t.trustor_user_id)
            || owner(ctx, &t.trustee_user_id),
    )?;
    Ok(t)
}

/// `GET /v3/OS-TRUST/trusts/{trust_id}`.
async fn trust_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(trust_id): Path<String>,
) -> KsResult<Response> {
    let t = load_for_read(&id, &ctx, &trust_id, "identity:get_trust").await?;
    Ok(axum::Json(json!({"trust": view(&id, &t).await?})).into_response())
}

/// `DELETE /v3/OS-TRUST/trusts/{trust_id}`: by its trustor or an admin; deletes the trusts
/// redelegated from it too, and revokes every token issued under them.
async fn trust_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(trust_id): Path<String>,
) -> KsResult<StatusCode> {
    let t = db::trusts::get(id.store(), &trust_id)
        .await?
        .ok_or_else(|| KsError::not_found("trust", &trust_id))?;
    enforce(
        "identity:delete_trust",
        admin(&ctx) || owner(&ctx, &t.trustor_user_id),
    )?;
    check_not_app_cred(&ctx)?;
    if db::trusts::delete(id.store(), &t.id).await?.is_empty() {
        return Err(KsError::not_found("trust", &trust_id));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/OS-TRUST/trusts/{trust_id}/roles`.
async fn trust_role_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(trust_id): Path<String>,
) -> KsResult<Response> {
    let t = load_for_read(&id, &ctx, &trust_id, "identity:list_roles_for_trust").await?;
    Ok(axum::Json(json!({
        "roles": role_views(&id, &t).await?,
        "links": roles_links(&id, &t),
    }))
    .into_response())
}

/// The role `role_id` when trust `trust_id` delegates it.
async fn trust_role(
    id: &Identity,
    ctx: &AuthContext,
    trust_id: &str,
    role_id: &str,
) -> KsResult<db::roles::Role> {
    let t = load_for_read(id, ctx, trust_id, "identity:get_role_for_trust").await?;
    if !t.roles.iter().any(|r| r == role_id) {
        return Err(KsError::not_found("role", role_id));
    }
    db::roles::get(id.store(), role_id)
        .await?
        .ok_or_else(|| KsError::not_found("role", role_id))
}

/// `GET /v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}`.
async fn trust_role_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((trust_id, role_id)): Path<(String, String)>,
) -> KsResult<Response> {
    let r = trust_role(&id, &ctx, &trust_id, &role_id).await?;
    Ok(axum::Json(json!({"role": super::roles::view(&id, &r)})).into_response())
}

/// `HEAD /v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}`.
async fn trust_role_check(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((trust_id, role_id)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    trust_role(&id, &ctx, &trust_id, &role_id).await?;
    Ok(StatusCode::OK)
}
