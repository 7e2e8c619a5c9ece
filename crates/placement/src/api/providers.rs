//! `/resource_providers` and what hangs off a provider besides inventories: its aggregates
//! (1.1, with generations from 1.19), traits (1.6), usages and allocations.

use super::{created_at, href, json_at, need, path_uuid, provider_or_404};
use crate::db;
use crate::error::{PlacementError, PlacementResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::model::Provider;
use crate::query::parse_provider_filter;
use crate::schema;
use crate::version::Microversion;
use crate::PlacementService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub fn routes() -> Router<PlacementService> {
    Router::new()
        .route(
            "/resource_providers",
            get(resource_providers_list).post(resource_provider_create),
        )
        .route(
            "/resource_providers/{uuid}",
            get(resource_provider_show)
                .put(resource_provider_update)
                .delete(resource_provider_delete),
        )
        .route(
            "/resource_providers/{uuid}/aggregates",
            get(provider_aggregates_show).put(provider_aggregates_update),
        )
        .route(
            "/resource_providers/{uuid}/traits",
            get(provider_traits_show)
                .put(provider_traits_update)
                .delete(provider_traits_delete),
        )
        .route(
            "/resource_providers/{uuid}/usages",
            get(provider_usages_show),
        )
        .route(
            "/resource_providers/{uuid}/allocations",
            get(provider_allocations_show),
        )
}

/// A provider as Placement shows it at `mv`.
pub fn provider_view(p: &Provider, mv: Microversion) -> Value {
    let base = format!("/resource_providers/{}", p.uuid);
    let mut links = vec![
        json!({"rel": "self", "href": href(&base)}),
        json!({"rel": "inventories", "href": href(&format!("{base}/inventories"))}),
        json!({"rel": "usages", "href": href(&format!("{base}/usages"))}),
    ];
    if mv.at_least(1) {
        links.push(json!({"rel": "aggregates", "href": href(&format!("{base}/aggregates"))}));
    }
    if mv.at_least(6) {
        links.push(json!({"rel": "traits", "href": href(&format!("{base}/traits"))}));
    }
    if mv.at_least(11) {
        links.push(json!({"rel": "allocations", "href": href(&format!("{base}/allocations"))}));
    }
    let mut v = json!({
        "uuid": p.uuid,
        "name": p.name,
        "generation": p.generation,
        "links": links,
    });
    if mv.at_least(14) {
        v["parent_provider_uuid"] = json!(p.parent_uuid);
        v["root_provider_uuid"] = json!(p.root_uuid);
    }
    v
}

/// `GET /resource_providers` with `name`, `uuid`, `member_of`, `resources`, `in_tree` and
/// `required` filters (each from its microversion).
pub async fn resource_providers_list(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Pairs(pairs): Pairs,
) -> PlacementResult<Response> {
    let f = parse_provider_filter(&pairs, mv)?;
    svc.require_classes(
        f.resources.keys(),
        "Invalid resource class in resources parameter: ",
    )
    .await?;
    svc.require_traits(f.traits.names()).await?;
    let snap = svc.snapshot().await?;
    // An unknown `in_tree` provider matches nothing.
    let tree_root: Option<String> = f
        .in_tree
        .as_ref()
        .map(|t| snap.root_of(t).unwrap_or_default().to_string());
    let mut out: Vec<&crate::candidates::ProviderState> = snap
        .providers
        .values()
        .filter(|p| {
            f.name.as_ref().is_none_or(|n| *n == p.provider.name)
                && f.uuid.as_ref().is_none_or(|u| *u == p.provider.uuid)
                && tree_root
                    .as_ref()
                    .is_none_or(|r| *r == p.provider.root_uuid)
                && (f.aggregates.is_empty() || f.aggregates.matches(&p.aggregates))
                && (f.traits.is_empty() || f.traits.matches(&p.traits))
                && f.resources.iter().all(|(rc, n)| p.fits(rc, *n))
        })
        .collect();
    out.sort_by_key(|p| (p.provider.created_at, p.provider.uuid.clone()));
    let list: Vec<Value> = out.iter().map(|p| provider_view(&p.provider, mv)).collect();
    Ok(axum::Json(json!({"resource_providers": list})).into_response())
}

/// `POST /resource_providers`: 201 with a location (and, from 1.20, 200 with the provider).
pub async fn resource_provider_create(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> PlacementResult<Response> {
    let m = schema::object(&body)?;
    let mut allowed = vec!["name", "uuid"];
    if mv.at_least(14) {
        allowed.push("parent_provider_uuid");
    }
    schema::only(m, &allowed)?;
    let name = schema::string(schema::require(m, "name")?, 200)?.to_string();
    let uuid = match m.get("uuid") {
        Some(v) => schema::uuid(v)?,
        None => strata_core::ids::uuid(),
    };
    let parent = match m.get("parent_provider_uuid") {
        None | Some(Value::Null) => None,
        Some(v) => Some(schema::uuid(v)?),
    };
    let p = svc.provider_create(name, uuid, parent).await?;
    let location = href(&format!("/resource_providers/{}", p.uuid));
    if mv.at_least(20) {
        let mut resp = json_at(provider_view(&p, mv), p.updated_at);
        if let Ok(v) = http::HeaderValue::from_str(&location) {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
        return Ok(resp);
    }
    Ok(created_at(StatusCode::CREATED, location))
}

pub async fn resource_provider_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
) -> PlacementResult<Response> {
    let p = provider_or_404(&svc, &uuid).await?;
    Ok(json_at(provider_view(&p, mv), p.updated_at))
}

/// `PUT /resource_providers/{uuid}`: the name, and the parent (set once from 1.14; changed
/// or removed from 1.37).
pub async fn resource_provider_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
    Body(body): Body,
) -> PlacementResult<Response> {
    let uuid = path_uuid(&uuid)?;
    let m = schema::object(&body)?;
    let mut allowed = vec!["name"];
    if mv.at_least(14) {
        allowed.push("parent_provider_uuid");
    }
    schema::only(m, &allowed)?;
    let name = schema::string(schema::require(m, "name")?, 200)?.to_string();
    let parent = match m.get("parent_provider_uuid") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(schema::uuid(v)?)),
    };
    // Before 1.37 a parent may be set where there was none, never removed or changed.
    let parent = match parent {
        Some(None) if !mv.at_least(37) => {
            let current = provider_or_404(&svc, &uuid).await?;
            if current.parent_uuid.is_some() {
                return Err(PlacementError::bad_request(
                    "un-parenting a provider is not currently allowed.",
                ));
            }
            None
        }
        other => other,
    };
    let p = svc
        .provider_update(uuid, name, parent, mv.at_least(37))
        .await?;
    Ok(json_at(provider_view(&p, mv), p.updated_at))
}

pub async fn resource_provider_delete(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Path(uuid): Path<String>,
) -> PlacementResult<StatusCode> {
    let uuid = path_uuid(&uuid)?;
    svc.provider_delete(uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- aggregates

fn aggregates_view(p: &Provider, aggs: &BTreeSet<String>, mv: Microversion) -> Value {
    let mut v = json!({"aggregates": aggs.iter().collect::<Vec<_>>()});
    if mv.at_least(19) {
        v["resource_provider_generation"] = json!(p.generation);
    }
    v
}

pub async fn provider_aggregates_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
) -> PlacementResult<Response> {
    need(mv, 1)?;
    let p = provider_or_404(&svc, &uuid).await?;
    let mut c = svc.conn().await?;
    let aggs = db::provider_aggregates(&mut c, &p.uuid).await?;
    Ok(json_at(aggregates_view(&p, &aggs, mv), p.updated_at))
}

/// `PUT …/aggregates`: a list of UUIDs before 1.19, then `{"aggregates": [...],
/// "resource_provider_generation": N}`.
pub async fn provider_aggregates_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
    Body(body): Body,
) -> PlacementResult<Response> {
    need(mv, 1)?;
    let uuid = path_uuid(&uuid)?;
    let (list, generation) = if mv.at_least(19) {
        let m = schema::object(&body)?;
        schema::only(m, &["aggregates", "resource_provider_generation"])?;
        let list = schema::require(m, "aggregates")?;
        let g = schema::integer(
            schema::require(m, "resource_provider_generation")?,
            i64::MIN,
            i64::MAX,
        )?;
        (list, Some(g))
    } else {
        (&body, None)
    };
    let items = schema::array(list)?;
    let mut aggs = BTreeSet::new();
    for a in items {
        if !aggs.insert(schema::uuid(a)?) {
            return Err(PlacementError::schema(format!(
                "{list} has non-unique elements"
            )));
        }
    }
    svc.provider_aggregates_set(uuid.clone(), generation, aggs.clone())
        .await?;
    let p = provider_or_404(&svc, &uuid).await?;
    Ok(json_at(aggregates_view(&p, &aggs, mv), p.updated_at))
}

// ---------------------------------------------------------------- traits

pub async fn provider_traits_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
) -> PlacementResult<Response> {
    need(mv, 6)?;
    let p = provider_or_404(&svc, &uuid).await?;
    let mut c = svc.conn().await?;
    let traits = db::provider_traits(&mut c, &p.uuid).await?;
    Ok(json_at(
        json!({"traits": traits, "resource_provider_generation": p.generation}),
        p.updated_at,
    ))
}

pub async fn provider_traits_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
    Body(body): Body,
) -> PlacementResult<Response> {
    need(mv, 6)?;
    let uuid = path_uuid(&uuid)?;
    let m = schema::object(&body)?;
    schema::only(m, &["traits", "resource_provider_generation"])?;
    let list = schema::array(schema::require(m, "traits")?)?;
    let g = schema::integer(
        schema::require(m, "resource_provider_generation")?,
        i64::MIN,
        i64::MAX,
    )?;
    let mut traits = BTreeSet::new();
    for t in list {
        let name = schema::string(t, 255)?;
        if !traits.insert(name.to_string()) {
            return Err(PlacementError::schema(format!(
                "{} has non-unique elements",
                m["traits"]
            )));
        }
    }
    // The provider first (404), then the names (400).
    provider_or_404(&svc, &uuid).await?;
    svc.require_traits(traits.iter()).await?;
    let gen = svc
        .provider_traits_set(uuid, Some(g), traits.clone())
        .await?;
    Ok(axum::Json(json!({"traits": traits, "resource_provider_generation": gen})).into_response())
}

pub async fn provider_traits_delete(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
) -> PlacementResult<StatusCode> {
    need(mv, 6)?;
    let uuid = path_uuid(&uuid)?;
    svc.provider_traits_set(uuid, None, BTreeSet::new()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- usages and allocations

/// Usage of every class in the provider's inventory (0 when nothing is allocated).
pub async fn provider_usages_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Path(uuid): Path<String>,
) -> PlacementResult<Response> {
    let p = provider_or_404(&svc, &uuid).await?;
    let mut c = svc.conn().await?;
    let invs = db::inventories(&mut c, &p.uuid).await?;
    let used = db::provider_usages(&mut c, &p.uuid).await?;
    let mut usages: BTreeMap<String, i64> = invs.keys().map(|rc| (rc.clone(), 0)).collect();
    for (rc, n) in used {
        usages.insert(rc, n);
    }
    Ok(axum::Json(json!({
        "usages": usages,
        "resource_provider_generation": p.generation,
    }))
    .into_response())
}

/// Allocations against the provider by consumer (with consumer generations from 1.28).
pub async fn provider_allocations_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
) -> PlacementResult<Response> {
    let p = provider_or_404(&svc, &uuid).await?;
    let mut c = svc.conn().await?;
    let allocs = db::provider_allocations(&mut c, &p.uuid).await?;
    let mut out = Map::new();
    for (consumer, resources) in allocs {
        let mut v = json!({"resources": resources});
        if mv.at_least(28) {
            let gen = db::consumer_get(&mut c, &consumer)
                .await?
                .map(|c| c.generation);
            v["consumer_generation"] = json!(gen);
        }
        out.insert(consumer, v);
    }
    Ok(axum::Json(json!({
        "allocations": out,
        "resource_provider_generation": p.generation,
    }))
    .into_response())
}
