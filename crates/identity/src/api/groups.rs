//! `/v3/groups`, group membership, and `/v3/users/{id}/groups`.
//!
//! Groups carry role assignments for their members. Adding a member only widens what the user
//! holds; removing one (or deleting a group with assignments) revokes the user's tokens, since
//! their roles may shrink — the queries in `db::groups` do that in the same transaction.

use super::projects::scope_domain;
use super::util::{collection, q, query_true, self_link, self_url, string_filter, QueryPairs};
use crate::db::{self, groups::Group, users::User};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{
    admin, admin_or_reader_of, admin_or_system_reader, domain_reader, enforce, owner,
};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use strata_api::AuthContext;

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/groups", get(group_list).post(group_create))
        .route(
            "/v3/groups/{group_id}",
            get(group_show).patch(group_update).delete(group_delete),
        )
        .route("/v3/groups/{group_id}/users", get(group_users_list))
        .route(
            "/v3/groups/{group_id}/users/{user_id}",
            get(group_member_check)
                .head(group_member_check)
                .put(group_member_add)
                .delete(group_member_remove),
        )
        .route("/v3/users/{user_id}/groups", get(user_groups_list))
}

pub fn view(id: &Identity, g: &Group) -> Value {
    super::util::with_extra(
        json!({
            "id": g.id,
            "name": g.name,
            "domain_id": g.domain_id,
            "description": g.description,
            "links": self_link(&id.v3_url(), &format!("groups/{}", g.id)),
        }),
        &g.extra,
    )
}

/// `{"group": {...}}`; other top-level keys are refused, as Keystone's schema does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    group: Map<String, Value>,
}

/// Attributes with a meaning of their own; any other is kept as a free-form extra.
const FIXED: &[&str] = &["id", "name", "domain_id", "description", "links"];

/// A string attribute of `m` (`None` when absent or null); 400 naming `<entity>.<k>` otherwise.
pub(crate) fn str_attr(m: &Map<String, Value>, entity: &str, k: &str) -> KsResult<Option<String>> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(KsError::bad_request(format!(
            "Invalid input for field '{entity}.{k}': {other} is not of type 'string'"
        ))),
    }
}

/// Keystone's `_identity_name`/role name rule: 1 to 255 characters, not only blanks.
pub(crate) fn check_name_255(field: &str, name: &str) -> KsResult<()> {
    if name.is_empty() {
        return Err(KsError::bad_request(format!(
            "Invalid input for field '{field}': '' is too short"
        )));
    }
    if name.chars().count() > 255 {
        return Err(KsError::bad_request(format!(
            "Invalid input for field '{field}': the name is longer than 255 characters"
        )));
    }
    if name.trim().is_empty() {
        return Err(KsError::bad_request(format!(
            "Invalid input for field '{field}': '{name}' does not match '[\\S]+'"
        )));
    }
    Ok(())
}

/// The free-form attributes of a request object.
pub(crate) fn extra_of(m: &Map<String, Value>, fixed: &[&str]) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !fixed.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Keystone's `_require_matching_id`: a body may repeat the id but not change it.
pub(crate) fn require_matching_id(m: &Map<String, Value>, id: &str) -> KsResult<()> {
    match m.get("id") {
        Some(Value::String(s)) if s != id => Err(KsError::bad_request("Cannot change ID")),
        Some(v) if !v.is_string() => Err(KsError::bad_request("Cannot change ID")),
        _ => Ok(()),
    }
}

async fn group_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<GroupBody>,
) -> KsResult<Response> {
    let m = body.group;
    let name = str_attr(&m, "group", "name")?.ok_or_else(|| {
        KsError::bad_request("Invalid input for field 'group.name': 'name' is a required property")
    })?;
    check_name_255("group.name", &name)?;
    let description = str_attr(&m, "group", "description")?.unwrap_or_default();
    let domain_id = str_attr(&m, "group", "domain_id")?.unwrap_or_else(|| scope_domain(&ctx));
    enforce("identity:create_group", admin(&ctx))?;
    let domain = db::domains::get(id.store(), &domain_id)
        .await?
        .ok_or_else(|| KsError::not_found("domain", &domain_id))?;
    let g = Group {
        id: strata_core::ids::hex_id(),
        domain_id: domain.id,
        name: name.trim().to_string(),
        description,
        extra: Value::Object(extra_of(&m, FIXED)),
    };
    db::groups::create(id.store(), &g).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"group": view(&id, &g)})),
    )
        .into_response())
}

/// Whether the caller may read groups (and their members) of `domain_id`.
fn may_read_domain(ctx: &AuthContext, domain_id: &str) -> bool {
    admin_or_reader_of(ctx, domain_id)
}

async fn group_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let caller_domain = ctx.domain_id().map(str::to_string);
    enforce(
        "identity:list_groups",
        admin_or_system_reader(&ctx)
            || caller_domain
                .as_deref()
                .is_some_and(|d| domain_reader(&ctx, d)),
    )?;
    let mut w = db::Where::default();
    if let Some(d) = q(&query, "domain_id") {
        w.eq("g.domain_id", d);
    }
    // A domain-scoped token sees its own domain only, as in Keystone.
    if let Some(d) = &caller_domain {
        w.eq("g.domain_id", d.clone());
    }
    let mut groups = db::groups::list(id.store(), &w).await?;
    groups.retain(|g| string_filter(&query, "name", &g.name));
    let items = groups.iter().map(|g| view(&id, g)).collect();
    Ok(axum::Json(collection(
        "groups",
        items,
        self_url(&id.v3_url(), "groups", &query),
    ))
    .into_response())
}

async fn load(id: &Identity, gid: &str) -> KsResult<Group> {
    db::groups::get(id.store(), gid)
        .await?
        .ok_or_else(|| KsError::not_found("group", gid))
}

async fn load_user(id: &Identity, uid: &str) -> KsResult<User> {
    db::users::get(id.store(), uid)
        .await?
        .ok_or_else(|| KsError::not_found("user", uid))
}

async fn group_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
) -> KsResult<Response> {
    let g = load(&id, &gid).await?;
    enforce("identity:get_group", may_read_domain(&ctx, &g.domain_id))?;
    Ok(axum::Json(json!({"group": view(&id, &g)})).into_response())
}

async fn group_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
    KsJson(body): KsJson<GroupBody>,
) -> KsResult<Response> {
    let mut g = load(&id, &gid).await?;
    enforce("identity:update_group", admin(&ctx))?;
    let m = body.group;
    if m.is_empty() {
        return Err(KsError::bad_request(
            "Invalid input for field 'group': {} does not have enough properties",
        ));
    }
    require_matching_id(&m, &g.id)?;
    if m.contains_key("domain_id")
        && str_attr(&m, "group", "domain_id")?.as_deref() != Some(g.domain_id.as_str())
    {
        return Err(KsError::bad_request("Cannot change Domain ID"));
    }
    if let Some(n) = str_attr(&m, "group", "name")? {
        check_name_255("group.name", &n)?;
        g.name = n.trim().to_string();
    } else if m.contains_key("name") {
        return Err(KsError::bad_request(
            "Invalid input for field 'group.name': None is not of type 'string'",
        ));
    }
    if m.contains_key("description") {
        g.description = str_attr(&m, "group", "description")?.unwrap_or_default();
    }
    if let Value::Object(cur) = &mut g.extra {
        cur.extend(extra_of(&m, FIXED));
    }
    db::groups::update(id.store(), &g).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"group": view(&id, &g)})).into_response())
}

async fn group_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
) -> KsResult<StatusCode> {
    let g = load(&id, &gid).await?;
    enforce("identity:delete_group", admin(&ctx))?;
    db::groups::delete(id.store(), &g.id).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_users_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let g = load(&id, &gid).await?;
    enforce(
        "identity:list_users_in_group",
        may_read_domain(&ctx, &g.domain_id),
    )?;
    let mut w = db::Where::default();
    w.raw(
        "u.id IN (SELECT m.user_id FROM identity_group_member m WHERE m.group_id = {})",
        g.id.clone(),
    );
    if let Some(d) = q(&query, "domain_id") {
        w.eq("u.domain_id", d);
    }
    if let Some(d) = ctx.domain_id() {
        w.eq("u.domain_id", d);
    }
    if let Some(e) = q(&query, "enabled") {
        w.literal(if query_true(e) {
            "u.enabled = 1"
        } else {
            "u.enabled = 0"
        });
    }
    let mut users = db::users::list(id.store(), &w).await?;
    users.retain(|u| string_filter(&query, "name", &u.name));
    let items = users.iter().map(|u| super::users::view(&id, u)).collect();
    Ok(axum::Json(collection(
        "users",
        items,
        self_url(&id.v3_url(), &format!("groups/{gid}/users"), &query),
    ))
    .into_response())
}

fn not_member(uid: &str, gid: &str) -> KsError {
    KsError::new(
        StatusCode::NOT_FOUND,
        format!("User '{uid}' not found in group '{gid}'"),
    )
}

/// `GET`/`HEAD /v3/groups/{g}/users/{u}`: 204 when a member, 404 otherwise.
async fn group_member_check(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((gid, uid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let g = load(&id, &gid).await?;
    let u = load_user(&id, &uid).await?;
    enforce(
        "identity:check_user_in_group",
        may_read_domain(&ctx, &g.domain_id) && may_read_domain(&ctx, &u.domain_id),
    )?;
    if db::groups::is_member(id.store(), &g.id, &u.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_member(&u.id, &g.id))
    }
}

async fn group_member_add(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((gid, uid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let g = load(&id, &gid).await?;
    let u = load_user(&id, &uid).await?;
    enforce("identity:add_user_to_group", admin(&ctx))?;
    db::groups::add_member(id.store(), &g.id, &u.id).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_member_remove(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((gid, uid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let g = load(&id, &gid).await?;
    let u = load_user(&id, &uid).await?;
    enforce("identity:remove_user_from_group", admin(&ctx))?;
    if !db::groups::remove_member(id.store(), &g.id, &u.id).await? {
        return Err(not_member(&u.id, &g.id));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_groups_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let u = load_user(&id, &uid).await?;
    enforce(
        "identity:list_groups_for_user",
        owner(&ctx, &u.id) || may_read_domain(&ctx, &u.domain_id),
    )?;
    let mut groups = db::groups::list_for_user(id.store(), &u.id).await?;
    groups.retain(|g| string_filter(&query, "name", &g.name));
    let items = groups
        .iter()
        .map(|g| {
            let mut v = view(&id, g);
            // Keystone lists memberships with their expiry (federated ones expire).
            v["membership_expires_at"] = Value::Null;
            v
        })
        .collect();
    Ok(axum::Json(collection(
        "groups",
        items,
        self_url(&id.v3_url(), &format!("users/{uid}/groups"), &query),
    ))
    .into_response())
}
