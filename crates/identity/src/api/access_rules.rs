//! `/v3/users/{user_id}/access_rules`: the access rules of a user's application credentials.
//!
//! Rules are created only as part of an application credential (see `app_creds.rs`) and are
//! shared between the user's credentials; here they are listed, shown, and deleted once no
//! credential uses them (403 before, as Keystone answers). A rule of another user is not found
//! under this user's path, whoever asks.

use super::util::{collection, self_url, string_filter, QueryPairs};
use crate::db;
use crate::error::{KsError, KsResult};
use crate::extract::Auth;
use crate::policy::{admin, admin_or_system_reader, enforce, owner};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};
use strata_api::AccessRule;

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/users/{user_id}/access_rules", get(access_rule_list))
        .route(
            "/v3/users/{user_id}/access_rules/{access_rule_id}",
            get(access_rule_show).delete(access_rule_delete),
        )
}

/// The wire view: the rule with a link under its user.
pub fn view(id: &Identity, user_id: &str, r: &AccessRule) -> Value {
    json!({
        "id": r.id,
        "service": r.service,
        "method": r.method,
        "path": r.path,
        "links": {"self": format!("{}/users/{user_id}/access_rules/{}", id.v3_url(), r.id)},
    })
}

/// `GET …/access_rules`, filtered by `service`, `path` and `method` (Keystone's string filters).
async fn access_rule_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    enforce(
        "identity:list_access_rules",
        admin_or_system_reader(&ctx) || owner(&ctx, &uid),
    )?;
    let mut rules = db::access_rules::list_for_user(id.store(), &uid).await?;
    rules.retain(|r| {
        string_filter(&query, "service", &r.service)
            && string_filter(&query, "path", &r.path)
            && string_filter(&query, "method", &r.method)
    });
    let items = rules.iter().map(|r| view(&id, &uid, r)).collect();
    Ok(axum::Json(collection(
        "access_rules",
        items,
        self_url(&id.v3_url(), &format!("users/{uid}/access_rules"), &query),
    ))
    .into_response())
}

async fn access_rule_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((uid, rid)): Path<(String, String)>,
) -> KsResult<Response> {
    enforce(
        "identity:get_access_rule",
        admin_or_system_reader(&ctx) || owner(&ctx, &uid),
    )?;
    let r = db::access_rules::get(id.store(), &uid, &rid)
        .await?
        .ok_or_else(|| KsError::not_found("access rule", &rid))?;
    Ok(axum::Json(json!({"access_rule": view(&id, &uid, &r)})).into_response())
}

/// `DELETE …/access_rules/{id}`: 403 while an application credential uses the rule.
async fn access_rule_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((uid, rid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    enforce(
        "identity:delete_access_rule",
        admin(&ctx) || owner(&ctx, &uid),
    )?;
    db::access_rules::delete(id.store(), &uid, &rid).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}
