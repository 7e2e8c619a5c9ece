//! `/v3/domains`.

use super::util::{collection, q, query_true, self_link, self_url, string_filter, QueryPairs};
use crate::db::{self, domains::Domain, keys::Revoke};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_reader_of, admin_or_system_reader, enforce};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/domains", get(domain_list).post(domain_create))
        .route(
            "/v3/domains/{domain_id}",
            get(domain_show).patch(domain_update).delete(domain_delete),
        )
}

pub fn view(id: &Identity, d: &Domain) -> Value {
    super::util::with_extra(
        json!({
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "enabled": d.enabled,
            "tags": d.tags,
            "options": d.options,
            "links": self_link(&id.v3_url(), &format!("domains/{}", d.id)),
        }),
        &d.extra,
    )
}

#[derive(Deserialize)]
pub struct DomainBody {
    domain: DomainFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainFields {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
    #[serde(default)]
    explicit_domain_id: Option<String>,
}

pub(crate) fn check_name(field: &str, name: &str) -> KsResult<()> {
    if name.trim().is_empty() || name.chars().count() > 64 {
        return Err(KsError::bad_request(format!(
            "Invalid input for field '{field}': the name must be 1 to 64 characters and not blank."
        )));
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[String]) -> KsResult<()> {
    if tags.len() > 80 {
        return Err(KsError::bad_request(
            "Invalid input for field 'tags': at most 80 tags.",
        ));
    }
    for t in tags {
        if t.is_empty() || t.chars().count() > 255 || t.contains('/') || t.contains(',') {
            return Err(KsError::bad_request(format!(
                "Invalid input for field 'tags': '{t}' must be 1 to 255 characters without '/' or ','."
            )));
        }
    }
    Ok(())
}

async fn domain_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<DomainBody>,
) -> KsResult<Response> {
    enforce("identity:create_domain", admin(&ctx))?;
    let f = body.domain;
    let name = f.name.ok_or_else(|| {
        KsError::bad_request("Invalid input for field 'domain.name': 'name' is a required property")
    })?;
    check_name("domain.name", &name)?;
    let tags = f.tags.unwrap_or_default();
    check_tags(&tags)?;
    let d = Domain {
        id: f
            .explicit_domain_id
            .unwrap_or_else(strata_core::ids::hex_id),
        name,
        description: f.description.unwrap_or_default(),
        enabled: f.enabled.unwrap_or(true),
        tags,
        options: Value::Object(f.options.unwrap_or_default()),
        extra: json!({}),
    };
    db::domains::create(id.store(), &d).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"domain": view(&id, &d)})),
    )
        .into_response())
}

async fn domain_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    enforce(
        "identity:list_domains",
        admin_or_system_reader(&ctx) || ctx.domain_id().is_some(),
    )?;
    let mut w = db::Where::default();
    if let Some(e) = q(&query, "enabled") {
        w.literal(if query_true(e) {
            "enabled = 1"
        } else {
            "enabled = 0"
        });
    }
    let mut domains = db::domains::list(id.store(), &w).await?;
    domains.retain(|d| string_filter(&query, "name", &d.name) && admin_or_reader_of(&ctx, &d.id));
    let items = domains.iter().map(|d| view(&id, d)).collect();
    Ok(axum::Json(collection(
        "domains",
        items,
        self_url(&id.v3_url(), "domains", &query),
    ))
    .into_response())
}

async fn domain_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(did): Path<String>,
) -> KsResult<Response> {
    let d = db::domains::get(id.store(), &did)
        .await?
        .ok_or_else(|| KsError::not_found("domain", &did))?;
    let own_project_domain =
        matches!(&ctx.scope, strata_api::Scope::Project { domain_id, .. } if *domain_id == d.id);
    enforce(
        "identity:get_domain",
        admin_or_reader_of(&ctx, &d.id) || own_project_domain || ctx.user_domain_id == d.id,
    )?;
    Ok(axum::Json(json!({"domain": view(&id, &d)})).into_response())
}

async fn domain_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(did): Path<String>,
    KsJson(body): KsJson<DomainBody>,
) -> KsResult<Response> {
    enforce("identity:update_domain", admin(&ctx))?;
    let mut d = db::domains::get(id.store(), &did)
        .await?
        .ok_or_else(|| KsError::not_found("domain", &did))?;
    let f = body.domain;
    if f.explicit_domain_id.is_some() {
        return Err(KsError::bad_request(
            "Invalid input for field 'domain.explicit_domain_id': cannot be updated.",
        ));
    }
    let was_enabled = d.enabled;
    if let Some(n) = f.name {
        check_name("domain.name", &n)?;
        d.name = n;
    }
    if let Some(v) = f.description {
        d.description = v;
    }
    if let Some(v) = f.enabled {
        d.enabled = v;
    }
    if let Some(t) = f.tags {
        check_tags(&t)?;
        d.tags = t;
    }
    if let Some(o) = f.options {
        if let Value::Object(cur) = &mut d.options {
            cur.extend(o);
        }
    }
    db::domains::update(id.store(), &d).await?;
    if was_enabled && !d.enabled {
        db::keys::revoke(id.store(), Revoke::domain(&d.id)).await?;
    }
    id.changed().await?;
    Ok(axum::Json(json!({"domain": view(&id, &d)})).into_response())
}

async fn domain_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(did): Path<String>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_domain", admin(&ctx))?;
    let d = db::domains::get(id.store(), &did)
        .await?
        .ok_or_else(|| KsError::not_found("domain", &did))?;
    if d.enabled {
        return Err(KsError::forbidden_msg(
            "Cannot delete a domain that is enabled, please disable it first.",
        ));
    }
    db::domains::delete(id.store(), &d.id).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}
