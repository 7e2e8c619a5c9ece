//! `/v3/roles`, implied roles (`/v3/roles/{prior}/implies/{implied}`) and
//! `/v3/role_inferences`.
//!
//! Roles are global (`domain_id: null`) or domain-specific. A domain-specific role only serves
//! to imply other roles: it is never placed in tokens or effective assignment lists itself.
//! Implication rules are a graph, not a tree; expansion (`db::roles::expand`) tolerates cycles,
//! and Keystone accepts any rule except a global role implying a domain-specific one and a rule
//! implying a prohibited role (`admin`).

use super::groups::{check_name_255, extra_of, require_matching_id, str_attr};
use super::util::{collection, q, self_link, self_url, string_filter, QueryPairs};
use crate::db::{self, roles::Role};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_system_reader, domain_reader, enforce};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use strata_api::AuthContext;

/// Role names that may not be implied (Keystone's `[assignment] prohibited_implied_role`).
const PROHIBITED_IMPLIED: &[&str] = &["admin"];

/// Role options Keystone knows.
const OPTIONS: &[&str] = &["immutable"];

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/roles", get(role_list).post(role_create))
        .route(
            "/v3/roles/{role_id}",
            get(role_show).patch(role_update).delete(role_delete),
        )
        .route("/v3/roles/{prior_role_id}/implies", get(implied_role_list))
        .route(
            "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
            get(implied_role_show)
                .head(implied_role_check)
                .put(implied_role_create)
                .delete(implied_role_delete),
        )
        .route("/v3/role_inferences", get(role_inference_list))
}

pub fn view(id: &Identity, r: &Role) -> Value {
    super::util::with_extra(
        json!({
            "id": r.id,
            "name": r.name,
            "domain_id": r.domain_id,
            "description": r.description,
            "options": r.options,
            "links": self_link(&id.v3_url(), &format!("roles/{}", r.id)),
        }),
        &r.extra,
    )
}

/// `{"id", "name", "links"}` as prior and implied roles are shown.
fn brief(id: &Identity, r: &Role) -> Value {
    json!({
        "id": r.id,
        "links": self_link(&id.v3_url(), &format!("roles/{}", r.id)),
        "name": r.name,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: Map<String, Value>,
}

const FIXED: &[&str] = &["id", "name", "domain_id", "description", "options", "links"];

/// The `options` of a request: known options only, each a boolean or null (null unsets).
fn options_attr(m: &Map<String, Value>) -> KsResult<Option<Map<String, Value>>> {
    match m.get("options") {
        None => Ok(None),
        Some(Value::Object(o)) => {
            for (k, v) in o {
                if !OPTIONS.contains(&k.as_str()) {
                    return Err(KsError::bad_request(format!(
                        "Invalid input for field 'role.options': Additional properties are not allowed ('{k}' was unexpected)"
                    )));
                }
                if !(v.is_boolean() || v.is_null()) {
                    return Err(KsError::bad_request(format!(
                        "Invalid input for field 'role.options.{k}': {v} is not of type 'boolean', 'null'"
                    )));
                }
            }
            Ok(Some(o.clone()))
        }
        Some(other) => Err(KsError::bad_request(format!(
            "Invalid input for field 'role.options': {other} is not of type 'object'"
        ))),
    }
}

fn merge_options(cur: &mut Value, new: Map<String, Value>) {
    if let Value::Object(cur) = cur {
        for (k, v) in new {
            if v.is_null() {
                cur.remove(&k);
            } else {
                cur.insert(k, v);
            }
        }
    }
}

fn immutable(r: &Role) -> bool {
    r.options.get("immutable").and_then(Value::as_bool) == Some(true)
}

/// Admin and system readers read every role; a domain reader reads global roles and those of
/// its domain.
fn may_read(ctx: &AuthContext, role_domain: Option<&str>) -> bool {
    admin_or_system_reader(ctx)
        || ctx
            .domain_id()
            .is_some_and(|d| domain_reader(ctx, d) && role_domain.is_none_or(|rd| rd == d))
}

async fn role_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<RoleBody>,
) -> KsResult<Response> {
    let m = body.role;
    let name = str_attr(&m, "role", "name")?.ok_or_else(|| {
        KsError::bad_request("Invalid input for field 'role.name': 'name' is a required property")
    })?;
    check_name_255("role.name", &name)?;
    let domain_id = str_attr(&m, "role", "domain_id")?;
    let options = options_attr(&m)?;
    let description = str_attr(&m, "role", "description")?;
    let action = if domain_id.is_some() {
        "identity:create_domain_role"
    } else {
        "identity:create_role"
    };
    enforce(action, admin(&ctx))?;
    if let Some(d) = &domain_id {
        db::domains::get(id.store(), d)
            .await?
            .ok_or_else(|| KsError::not_found("domain", d))?;
    }
    let mut opts = json!({});
    merge_options(&mut opts, options.unwrap_or_default());
    let r = Role {
        id: strata_core::ids::hex_id(),
        name,
        domain_id,
        description,
        options: opts,
        extra: Value::Object(extra_of(&m, FIXED)),
    };
    db::roles::create(id.store(), &r).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"role": view(&id, &r)})),
    )
        .into_response())
}

async fn role_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let domain_filter = q(&query, "domain_id").filter(|d| !d.is_empty());
    let action = if domain_filter.is_some() {
        "identity:list_domain_roles"
    } else {
        "identity:list_roles"
    };
    enforce(action, may_read(&ctx, domain_filter))?;
    // Without a domain filter Keystone lists the global roles only.
    let mut w = db::Where::default();
    w.eq("domain_id", domain_filter.unwrap_or(""));
    let mut roles = db::roles::list(id.store(), &w).await?;
    roles.retain(|r| string_filter(&query, "name", &r.name));
    let items = roles.iter().map(|r| view(&id, r)).collect();
    Ok(axum::Json(collection(
        "roles",
        items,
        self_url(&id.v3_url(), "roles", &query),
    ))
    .into_response())
}

pub(crate) async fn load(id: &Identity, rid: &str) -> KsResult<Role> {
    db::roles::get(id.store(), rid)
        .await?
        .ok_or_else(|| KsError::not_found("role", rid))
}

async fn role_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(rid): Path<String>,
) -> KsResult<Response> {
    let r = load(&id, &rid).await?;
    let action = if r.domain_id.is_some() {
        "identity:get_domain_role"
    } else {
        "identity:get_role"
    };
    enforce(action, may_read(&ctx, r.domain_id.as_deref()))?;
    Ok(axum::Json(json!({"role": view(&id, &r)})).into_response())
}

async fn role_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(rid): Path<String>,
    KsJson(body): KsJson<RoleBody>,
) -> KsResult<Response> {
    let mut r = load(&id, &rid).await?;
    let action = if r.domain_id.is_some() {
        "identity:update_domain_role"
    } else {
        "identity:update_role"
    };
    enforce(action, admin(&ctx))?;
    let m = body.role;
    if m.is_empty() {
        return Err(KsError::bad_request(
            "Invalid input for field 'role': {} does not have enough properties",
        ));
    }
    require_matching_id(&m, &r.id)?;
    let options = options_attr(&m)?;
    if immutable(&r) {
        // Only `{"options": {"immutable": false|null}}` may touch an immutable role.
        let unsets = m.len() == 1
            && options
                .as_ref()
                .and_then(|o| o.get("immutable"))
                .is_some_and(|v| v.is_null() || v == &Value::Bool(false));
        if !unsets {
            return Err(KsError::forbidden_msg(format!(
                "Unable to update immutable role resource: `{}. Set resource option \"immutable\" to false first.",
                r.id
            )));
        }
    }
    if m.contains_key("domain_id") && str_attr(&m, "role", "domain_id")? != r.domain_id {
        return Err(KsError::bad_request(
            "Update of `domain_id` is not allowed.",
        ));
    }
    if let Some(n) = str_attr(&m, "role", "name")? {
        check_name_255("role.name", &n)?;
        r.name = n;
    } else if m.contains_key("name") {
        return Err(KsError::bad_request(
            "Invalid input for field 'role.name': None is not of type 'string'",
        ));
    }
    if m.contains_key("description") {
        r.description = str_attr(&m, "role", "description")?;
    }
    if let Some(o) = options {
        merge_options(&mut r.options, o);
    }
    if let Value::Object(cur) = &mut r.extra {
        cur.extend(extra_of(&m, FIXED));
    }
    db::roles::update(id.store(), &r).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"role": view(&id, &r)})).into_response())
}

async fn role_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(rid): Path<String>,
) -> KsResult<StatusCode> {
    let r = load(&id, &rid).await?;
    let action = if r.domain_id.is_some() {
        "identity:delete_domain_role"
    } else {
        "identity:delete_role"
    };
    enforce(action, admin(&ctx))?;
    if immutable(&r) {
        return Err(KsError::forbidden_msg(format!(
            "Unable to delete immutable role resource: `{}. Set resource option \"immutable\" to false first.",
            r.id
        )));
    }
    db::roles::delete(id.store(), &r.id).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"role_inference": {"prior_role": …, "implies": …}, "links": {"self": …}}`.
fn inference(id: &Identity, prior: &Role, implies: Value, path: &str) -> Value {
    json!({
        "role_inference": {"prior_role": brief(id, prior), "implies": implies},
        "links": {"self": format!("{}/{path}", id.v3_url())},
    })
}

/// Loads both roles of an implication path (404 for either).
async fn load_pair(id: &Identity, prior: &str, implied: &str) -> KsResult<(Role, Role)> {
    Ok((load(id, prior).await?, load(id, implied).await?))
}

async fn implied_role_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> KsResult<Response> {
    let (prior, implied) = load_pair(&id, &prior_id, &implied_id).await?;
    enforce("identity:create_implied_role", admin(&ctx))?;
    if PROHIBITED_IMPLIED.contains(&implied.name.as_str()) {
        return Err(KsError::forbidden_msg(format!(
            "{} cannot be an implied roles.",
            implied.id
        )));
    }
    if prior.domain_id.is_none() && implied.domain_id.is_some() {
        return Err(KsError::forbidden_msg(
            "Global role cannot imply a domain-specific role",
        ));
    }
    db::roles::imply(id.store(), &prior.id, &implied.id).await?;
    id.changed().await?;
    let body = inference(
        &id,
        &prior,
        brief(&id, &implied),
        &format!("roles/{}/implies/{}", prior.id, implied.id),
    );
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn implied_role_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> KsResult<Response> {
    let (prior, implied) = load_pair(&id, &prior_id, &implied_id).await?;
    enforce("identity:get_implied_role", admin_or_system_reader(&ctx))?;
    if !db::roles::implication_exists(id.store(), &prior.id, &implied.id).await? {
        return Err(not_implied(&prior.id, &implied.id));
    }
    let body = inference(
        &id,
        &prior,
        brief(&id, &implied),
        &format!("roles/{}/implies/{}", prior.id, implied.id),
    );
    Ok(axum::Json(body).into_response())
}

fn not_implied(prior: &str, implied: &str) -> KsError {
    KsError::new(
        StatusCode::NOT_FOUND,
        format!("{prior} does not imply {implied}."),
    )
}

/// `HEAD /v3/roles/{prior}/implies/{implied}`: 204 (not 200), as Keystone answers.
async fn implied_role_check(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let (prior, implied) = load_pair(&id, &prior_id, &implied_id).await?;
    enforce("identity:check_implied_role", admin_or_system_reader(&ctx))?;
    if !db::roles::implication_exists(id.store(), &prior.id, &implied.id).await? {
        return Err(not_implied(&prior.id, &implied.id));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn implied_role_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let (prior, implied) = load_pair(&id, &prior_id, &implied_id).await?;
    enforce("identity:delete_implied_role", admin(&ctx))?;
    if !db::roles::unimply(id.store(), &prior.id, &implied.id).await? {
        return Err(not_implied(&prior.id, &implied.id));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn implied_role_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(prior_id): Path<String>,
) -> KsResult<Response> {
    let prior = load(&id, &prior_id).await?;
    enforce("identity:list_implied_roles", admin_or_system_reader(&ctx))?;
    let mut implies = Vec::new();
    for (p, implied) in db::roles::implications(id.store()).await? {
        if p == prior.id {
            if let Some(r) = db::roles::get(id.store(), &implied).await? {
                implies.push(brief(&id, &r));
            }
        }
    }
    let body = inference(
        &id,
        &prior,
        Value::Array(implies),
        &format!("roles/{}/implies", prior.id),
    );
    Ok(axum::Json(body).into_response())
}

async fn role_inference_list(State(id): State<Identity>, Auth(ctx): Auth) -> KsResult<Response> {
    enforce(
        "identity:list_role_inference_rules",
        admin_or_system_reader(&ctx),
    )?;
    let roles: std::collections::HashMap<String, Role> =
        db::roles::list(id.store(), &db::Where::default())
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
    // Grouped by prior role, in order of first appearance.
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for (p, implied) in db::roles::implications(id.store()).await? {
        let (Some(_), Some(ir)) = (roles.get(&p), roles.get(&implied)) else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| *k == p) {
            Some((_, v)) => v.push(brief(&id, ir)),
            None => out.push((p, vec![brief(&id, ir)])),
        }
    }
    let items: Vec<Value> = out
        .into_iter()
        .map(|(p, implies)| json!({"prior_role": brief(&id, &roles[&p]), "implies": implies}))
        .collect();
    Ok(axum::Json(json!({"role_inferences": items})).into_response())
}
