//! `/v3/policies` and `/v3/OS-OAUTH1/consumers`: records Keystone keeps on behalf of others and
//! does not interpret. A policy is an opaque blob with a media type, once meant for services to
//! fetch their rules from; an OAuth1 consumer is a client registered for OAuth1 delegation
//! (Strata stores consumers but does not implement the OAuth1 token flow yet).
//!
//! Both accept attributes beyond their fixed ones and keep them as `extra`. Writes are admin
//! only; reads are for admins and system readers, as Keystone's defaults say.

use super::fields::{
    check_max_len, extra_of, merge_extra, nullable_string, require_matching_id, require_some,
    required, string, Obj,
};
use super::util::{collection, q, self_link, self_url, string_filter, with_extra, QueryPairs};
use crate::db::{
    self,
    policies::{Consumer, Policy},
};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_system_reader, enforce};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/policies", get(policy_list).post(policy_create))
        .route(
            "/v3/policies/{policy_id}",
            get(policy_show).patch(policy_update).delete(policy_delete),
        )
        .route(
            "/v3/OS-OAUTH1/consumers",
            get(consumer_list).post(consumer_create),
        )
        .route(
            "/v3/OS-OAUTH1/consumers/{consumer_id}",
            get(consumer_show)
                .patch(consumer_update)
                .delete(consumer_delete),
        )
}

// ---- policies ------------------------------------------------------------------------------

const POLICY_FIXED: &[&str] = &["id", "blob", "type", "links"];

pub fn policy_view(id: &Identity, p: &Policy) -> Value {
    with_extra(
        json!({
            "id": p.id,
            "blob": p.blob,
            "type": p.kind,
            "links": self_link(&id.v3_url(), &format!("policies/{}", p.id)),
        }),
        &p.extra,
    )
}

#[derive(Deserialize)]
pub struct PolicyBody {
    policy: Obj,
}

async fn load_policy(id: &Identity, pid: &str) -> KsResult<Policy> {
    db::policies::get_policy(id.store(), pid)
        .await?
        .ok_or_else(|| KsError::not_found("policy", pid))
}

async fn policy_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<PolicyBody>,
) -> KsResult<Response> {
    enforce("identity:create_policy", admin(&ctx))?;
    let m = body.policy;
    let blob = string(&m, "blob")?.ok_or_else(|| required("blob"))?;
    let kind = string(&m, "type")?.ok_or_else(|| required("type"))?;
    check_max_len("type", &kind, 255)?;
    let p = Policy {
        // As Keystone, an `id` in the body is ignored.
        id: strata_core::ids::hex_id(),
        kind,
        blob,
        extra: Value::Object(extra_of(&m, POLICY_FIXED)),
    };
    db::policies::upsert_policy(id.store(), &p, true).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"policy": policy_view(&id, &p)})),
    )
        .into_response())
}

async fn policy_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    enforce("identity:list_policies", admin_or_system_reader(&ctx))?;
    let mut w = db::Where::default();
    if let Some(t) = q(&query, "type") {
        w.eq("type", t);
    }
    let mut policies = db::policies::list_policies(id.store(), &w).await?;
    policies.retain(|p| string_filter(&query, "type", &p.kind));
    let items = policies.iter().map(|p| policy_view(&id, p)).collect();
    Ok(axum::Json(collection(
        "policies",
        items,
        self_url(&id.v3_url(), "policies", &query),
    ))
    .into_response())
}

async fn policy_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
) -> KsResult<Response> {
    enforce("identity:get_policy", admin_or_system_reader(&ctx))?;
    let p = load_policy(&id, &pid).await?;
    Ok(axum::Json(json!({"policy": policy_view(&id, &p)})).into_response())
}

async fn policy_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
    KsJson(body): KsJson<PolicyBody>,
) -> KsResult<Response> {
    enforce("identity:update_policy", admin(&ctx))?;
    let m = body.policy;
    require_some(&m)?;
    require_matching_id(&m, &pid)?;
    let mut p = load_policy(&id, &pid).await?;
    if let Some(b) = string(&m, "blob")? {
        p.blob = b;
    }
    if let Some(t) = string(&m, "type")? {
        check_max_len("type", &t, 255)?;
        p.kind = t;
    }
    merge_extra(&mut p.extra, &m, POLICY_FIXED);
    db::policies::upsert_policy(id.store(), &p, false).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"policy": policy_view(&id, &p)})).into_response())
}

async fn policy_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_policy", admin(&ctx))?;
    if !db::policies::delete(id.store(), "identity_policy", db::kind::POLICY, &pid).await? {
        return Err(KsError::not_found("policy", &pid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- OAuth1 consumers ----------------------------------------------------------------------

const CONSUMER_FIXED: &[&str] = &["id", "description", "secret", "links"];

/// The view; `secret` is added by the create handler only.
pub fn consumer_view(id: &Identity, c: &Consumer) -> Value {
    with_extra(
        json!({
            "id": c.id,
            "description": c.description,
            "links": self_link(&id.v3_url(), &format!("OS-OAUTH1/consumers/{}", c.id)),
        }),
        &c.extra,
    )
}

/// Keystone reads a missing `consumer` as an empty one.
#[derive(Deserialize)]
pub struct ConsumerBody {
    #[serde(default)]
    consumer: Obj,
}

async fn load_consumer(id: &Identity, cid: &str) -> KsResult<Consumer> {
    db::policies::get_consumer(id.store(), cid)
        .await?
        .ok_or_else(|| KsError::not_found("consumer", cid))
}

/// `POST /v3/OS-OAUTH1/consumers`: the id and secret are generated (ones in the body are
/// ignored, as Keystone does); the secret is shown in this response only.
async fn consumer_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<ConsumerBody>,
) -> KsResult<Response> {
    enforce("identity:create_consumer", admin(&ctx))?;
    let m = body.consumer;
    let c = Consumer {
        id: strata_core::ids::hex_id(),
        description: nullable_string(&m, "description")?.flatten(),
        secret: strata_core::ids::hex_id(),
        extra: Value::Object(extra_of(&m, CONSUMER_FIXED)),
    };
    db::policies::upsert_consumer(id.store(), &c, true).await?;
    id.changed().await?;
    let mut v = consumer_view(&id, &c);
    v["secret"] = json!(c.secret);
    Ok((StatusCode::CREATED, axum::Json(json!({"consumer": v}))).into_response())
}

async fn consumer_list(State(id): State<Identity>, Auth(ctx): Auth) -> KsResult<Response> {
    enforce("identity:list_consumers", admin_or_system_reader(&ctx))?;
    let consumers = db::policies::list_consumers(id.store()).await?;
    let items = consumers.iter().map(|c| consumer_view(&id, c)).collect();
    Ok(axum::Json(collection(
        "consumers",
        items,
        format!("{}/OS-OAUTH1/consumers", id.v3_url()),
    ))
    .into_response())
}

async fn consumer_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(cid): Path<String>,
) -> KsResult<Response> {
    enforce("identity:get_consumer", admin_or_system_reader(&ctx))?;
    let c = load_consumer(&id, &cid).await?;
    Ok(axum::Json(json!({"consumer": consumer_view(&id, &c)})).into_response())
}

/// `PATCH /v3/OS-OAUTH1/consumers/{id}`: the description and extra attributes may change, the
/// secret may not.
async fn consumer_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(cid): Path<String>,
    KsJson(body): KsJson<ConsumerBody>,
) -> KsResult<Response> {
    enforce("identity:update_consumer", admin(&ctx))?;
    let m = body.consumer;
    if m.contains_key("secret") {
        return Err(KsError::bad_request(
            "Invalid input for field 'secret': the secret of a consumer cannot be changed.",
        ));
    }
    require_some(&m)?;
    require_matching_id(&m, &cid)?;
    let mut c = load_consumer(&id, &cid).await?;
    if let Some(d) = nullable_string(&m, "description")? {
        c.description = d;
    }
    merge_extra(&mut c.extra, &m, CONSUMER_FIXED);
    db::policies::upsert_consumer(id.store(), &c, false).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"consumer": consumer_view(&id, &c)})).into_response())
}

async fn consumer_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(cid): Path<String>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_consumer", admin(&ctx))?;
    let deleted = db::policies::delete(
        id.store(),
        "identity_oauth_consumer",
        db::kind::CONSUMER,
        &cid,
    )
    .await?;
    if !deleted {
        return Err(KsError::not_found("consumer", &cid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}
