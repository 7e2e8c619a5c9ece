//! `/resource_providers/{uuid}/inventories`: the whole set (GET, PUT, DELETE from 1.5) and
//! one class (POST, GET, PUT, DELETE). Every write names the provider generation it expects
//! (DELETEs excepted) and bumps it; a mismatch is 409 `placement.concurrent_update`.

use super::{created_at, href, json_at, path_uuid, provider_or_404};
use crate::db;
use crate::error::{PlacementError, PlacementResult};
use crate::extract::{Auth, Body, Mv};
use crate::model::{Inventory, MAX_INT, MAX_RATIO};
use crate::schema;
use crate::version::Microversion;
use crate::PlacementService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub fn routes() -> Router<PlacementService> {
    Router::new()
        .route(
            "/resource_providers/{uuid}/inventories",
            get(inventories_show)
                .put(inventories_update)
                .post(inventory_create)
                .delete(inventories_delete),
        )
        .route(
            "/resource_providers/{uuid}/inventories/{rc}",
            get(inventory_show)
                .put(inventory_update)
                .delete(inventory_delete),
        )
}

/// The inventory fields of `m` (`total` required, the rest defaulted), checked as
/// Placement's schema and rules check them.
pub fn parse_inventory(
    m: &Map<String, Value>,
    rc: &str,
    rp: &str,
    mv: Microversion,
) -> PlacementResult<Inventory> {
    let mut inv = Inventory {
        total: schema::integer(schema::require(m, "total")?, 1, MAX_INT)?,
        ..Default::default()
    };
    if let Some(v) = m.get("reserved") {
        inv.reserved = schema::integer(v, 0, MAX_INT)?;
    }
    if let Some(v) = m.get("min_unit") {
        inv.min_unit = schema::integer(v, 1, MAX_INT)?;
    }
    if let Some(v) = m.get("max_unit") {
        inv.max_unit = schema::integer(v, 1, MAX_INT)?;
    }
    if let Some(v) = m.get("step_size") {
        inv.step_size = schema::integer(v, 1, MAX_INT)?;
    }
    if let Some(v) = m.get("allocation_ratio") {
        inv.allocation_ratio = schema::number(v, 0.0, MAX_RATIO)?;
    }
    inv.validate(rc, rp, mv.at_least(26))
        .map_err(PlacementError::bad_request)?;
    Ok(inv)
}

const FIELDS: &[&str] = &[
    "total",
    "reserved",
    "min_unit",
    "max_unit",
    "step_size",
    "allocation_ratio",
];

fn class_name(v: &Value) -> PlacementResult<String> {
    Ok(schema::upper_name(v)?.to_string())
}

async fn require_class(svc: &PlacementService, rc: &str, rp: &str) -> PlacementResult<()> {
    if !svc.class_exists(rc).await? {
        return Err(PlacementError::bad_request(format!(
            "Unknown resource class in inventory for resource provider {rp}: No such resource \
             class {rc}."
        )));
    }
    Ok(())
}

fn set_view(invs: &BTreeMap<String, Inventory>, generation: i64) -> Value {
    let m: Map<String, Value> = invs.iter().map(|(rc, i)| (rc.clone(), i.view())).collect();
    json!({"inventories": m, "resource_provider_generation": generation})
}

fn one_view(inv: &Inventory, generation: i64) -> Value {
    let mut v = inv.view();
    v["resource_provider_generation"] = json!(generation);
    v
}

pub async fn inventories_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Path(uuid): Path<String>,
) -> PlacementResult<Response> {
    let p = provider_or_404(&svc, &uuid).await?;
    let mut c = svc.conn().await?;
    let invs = db::inventories(&mut c, &p.uuid).await?;
    Ok(json_at(set_view(&invs, p.generation), p.updated_at))
}

/// `PUT …/inventories`: the whole set at a generation.
pub async fn inventories_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
    Body(body): Body,
) -> PlacementResult<Response> {
    let uuid = path_uuid(&uuid)?;
    let m = schema::object(&body)?;
    schema::only(m, &["inventories", "resource_provider_generation"])?;
    let g = schema::integer(
        schema::require(m, "resource_provider_generation")?,
        i64::MIN,
        i64::MAX,
    )?;
    let set = schema::object(schema::require(m, "inventories")?)?;
    provider_or_404(&svc, &uuid).await?;
    let mut invs = BTreeMap::new();
    for (rc, v) in set {
        class_name(&json!(rc))?;
        let im = schema::object(v)?;
        schema::only(im, FIELDS)?;
        invs.insert(rc.clone(), parse_inventory(im, rc, &uuid, mv)?);
    }
    for rc in invs.keys() {
        require_class(&svc, rc, &uuid).await?;
    }
    let gen = svc
        .inventories_replace(uuid.clone(), g, invs.clone())
        .await?;
    Ok(axum::Json(set_view(&invs, gen)).into_response())
}

/// `POST …/inventories`: one new class, 201 with a location.
pub async fn inventory_create(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
    Body(body): Body,
) -> PlacementResult<Response> {
    let uuid = path_uuid(&uuid)?;
    let m = schema::object(&body)?;
    let mut allowed = FIELDS.to_vec();
    allowed.extend(["resource_class", "resource_provider_generation"]);
    schema::only(m, &allowed)?;
    let rc = class_name(schema::require(m, "resource_class")?)?;
    let g = schema::integer(
        schema::require(m, "resource_provider_generation")?,
        i64::MIN,
        i64::MAX,
    )?;
    let inv = parse_inventory(m, &rc, &uuid, mv)?;
    provider_or_404(&svc, &uuid).await?;
    require_class(&svc, &rc, &uuid).await?;
    let gen = svc
        .inventory_set(uuid.clone(), rc.clone(), g, inv, true)
        .await?;
    let mut resp = created_at(
        StatusCode::CREATED,
        href(&format!("/resource_providers/{uuid}/inventories/{rc}")),
    );
    let body = axum::Json(one_view(&inv, gen)).into_response();
    let (parts, b) = body.into_parts();
    *resp.body_mut() = b;
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        resp.headers_mut()
            .insert(http::header::CONTENT_TYPE, ct.clone());
    }
    Ok(resp)
}

/// `DELETE …/inventories` (1.5): every class, refused while any is in use.
pub async fn inventories_delete(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(uuid): Path<String>,
) -> PlacementResult<StatusCode> {
    if !mv.at_least(5) {
        return Err(PlacementError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "The method specified is not allowed for this resource.",
        ));
    }
    let uuid = path_uuid(&uuid)?;
    svc.inventories_delete(uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn inventory_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Path((uuid, rc)): Path<(String, String)>,
) -> PlacementResult<Response> {
    let p = provider_or_404(&svc, &uuid).await?;
    let mut c = svc.conn().await?;
    let invs = db::inventories(&mut c, &p.uuid).await?;
    let inv = invs.get(&rc).ok_or_else(|| {
        PlacementError::not_found(format!("No inventory of class {rc} for {}", p.uuid))
    })?;
    Ok(json_at(one_view(inv, p.generation), p.updated_at))
}

/// `PUT …/inventories/{rc}`: one class at a generation.
pub async fn inventory_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path((uuid, rc)): Path<(String, String)>,
    Body(body): Body,
) -> PlacementResult<Response> {
    let uuid = path_uuid(&uuid)?;
    let m = schema::object(&body)?;
    let mut allowed = FIELDS.to_vec();
    allowed.push("resource_provider_generation");
    schema::only(m, &allowed)?;
    let g = schema::integer(
        schema::require(m, "resource_provider_generation")?,
        i64::MIN,
        i64::MAX,
    )?;
    let inv = parse_inventory(m, &rc, &uuid, mv)?;
    provider_or_404(&svc, &uuid).await?;
    require_class(&svc, &rc, &uuid).await?;
    let gen = svc.inventory_set(uuid, rc, g, inv, false).await?;
    Ok(axum::Json(one_view(&inv, gen)).into_response())
}

pub async fn inventory_delete(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Path((uuid, rc)): Path<(String, String)>,
) -> PlacementResult<StatusCode> {
    let uuid = path_uuid(&uuid)?;
    svc.inventory_delete(uuid, rc).await?;
    Ok(StatusCode::NO_CONTENT)
}
