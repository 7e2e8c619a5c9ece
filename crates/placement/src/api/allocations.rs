//! `/allocations/{consumer}` (GET, PUT, DELETE), `POST /allocations` (1.13, several consumers
//! at once), `GET /usages` (1.9, by consumer type from 1.38) and `POST /reshaper` (1.30).
//!
//! Request bodies change shape with the microversion: a list of `{"resource_provider":
//! {"uuid"}, "resources"}` before 1.12, a dict keyed by provider from 1.12; `project_id` and
//! `user_id` required from 1.8; `consumer_generation` required from 1.28 (`null` for a new
//! consumer); `mappings` accepted from 1.34; `consumer_type` required from 1.38. Every write
//! goes through [`PlacementService::claim_many`], the same path in-process callers use.

use super::{need, path_uuid};
use crate::api::inventories::parse_inventory;
use crate::db;
use crate::error::{PlacementError, PlacementResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::model::{Claim, ConsumerGeneration, Inventory, Resources, MAX_INT};
use crate::ops::{ConsumerClaim, INCOMPLETE_CONSUMER};
use crate::schema;
use crate::version::Microversion;
use crate::PlacementService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub fn routes() -> Router<PlacementService> {
    Router::new()
        .route("/allocations", post(allocations_create))
        .route(
            "/allocations/{consumer}",
            get(allocations_show)
                .put(allocations_update)
                .delete(allocations_delete),
        )
        .route("/usages", get(usages_show))
        .route("/reshaper", post(reshaper_create))
}

fn consumer_uuid(s: &str) -> PlacementResult<String> {
    if crate::model::is_uuid(s) {
        Ok(crate::model::canonical_uuid(s))
    } else {
        Err(PlacementError::bad_request(format!(
            "Malformed consumer_uuid: {s}"
        )))
    }
}

/// `{"VCPU": 1, …}`: at least one class, amounts of at least 1.
fn parse_resources(v: &Value) -> PlacementResult<Resources> {
    let m = schema::object(v)?;
    if m.is_empty() {
        return Err(PlacementError::schema(format!(
            "{v} does not have enough properties"
        )));
    }
    let mut out = Resources::new();
    for (rc, n) in m {
        schema::upper_name(&json!(rc))?;
        out.insert(rc.clone(), schema::integer(n, 1, MAX_INT)?);
    }
    Ok(out)
}

/// The allocations of one consumer body at `mv` (`allow_empty` for POST and, from 1.28, PUT).
fn parse_allocations(
    v: &Value,
    mv: Microversion,
    allow_empty: bool,
) -> PlacementResult<BTreeMap<String, Resources>> {
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    if !mv.at_least(12) {
        let items = schema::array(v)?;
        if items.is_empty() {
            return Err(PlacementError::schema("[] is too short"));
        }
        for item in items {
            let m = schema::object(item)?;
            schema::only(m, &["resource_provider", "resources"])?;
            let rp = schema::object(schema::require(m, "resource_provider")?)?;
            schema::only(rp, &["uuid"])?;
            let uuid = schema::uuid(schema::require(rp, "uuid")?)?;
            let res = parse_resources(schema::require(m, "resources")?)?;
            out.entry(uuid).or_default().extend(res);
        }
        return Ok(out);
    }
    let m = schema::object(v)?;
    if m.is_empty() && !allow_empty {
        return Err(PlacementError::schema(format!(
            "{v} does not have enough properties"
        )));
    }
    for (rp, a) in m {
        if !crate::model::is_uuid(rp) {
            return Err(PlacementError::schema(format!(
                "'{rp}' does not match any of the regexes: uuid"
            )));
        }
        let am = schema::object(a)?;
        schema::only(am, &["resources", "generation"])?;
        if let Some(g) = am.get("generation") {
            schema::integer(g, i64::MIN, i64::MAX)?;
        }
        let res = parse_resources(schema::require(am, "resources")?)?;
        out.insert(crate::model::canonical_uuid(rp), res);
    }
    Ok(out)
}

/// The owner, generation and type fields shared by PUT, POST and the reshaper.
fn parse_consumer_fields(
    m: &Map<String, Value>,
    mv: Microversion,
    allocations: BTreeMap<String, Resources>,
) -> PlacementResult<(Claim, ConsumerGeneration)> {
    let owner = |key: &str| -> PlacementResult<String> {
        match m.get(key) {
            Some(v) => Ok(schema::string(v, 255)?.to_string()),
            None if mv.at_least(8) => Err(PlacementError::schema(format!(
                "'{key}' is a required property"
            ))),
            None => Ok(INCOMPLETE_CONSUMER.to_string()),
        }
    };
    let project_id = owner("project_id")?;
    let user_id = owner("user_id")?;
    let expected = if mv.at_least(28) {
        match schema::require(m, "consumer_generation")? {
            Value::Null => ConsumerGeneration::New,
            v => ConsumerGeneration::Is(schema::integer(v, i64::MIN, i64::MAX)?),
        }
    } else {
        ConsumerGeneration::Unchecked
    };
    let consumer_type = if mv.at_least(38) {
        Some(schema::upper_name(schema::require(m, "consumer_type")?)?.to_string())
    } else {
        None
    };
    if mv.at_least(34) {
        if let Some(mappings) = m.get("mappings") {
            for (_, list) in schema::object(mappings)? {
                for u in schema::array(list)? {
                    schema::uuid(u)?;
                }
            }
        }
    }
    Ok((
        Claim {
            project_id,
            user_id,
            consumer_type,
            allocations,
        },
        expected,
    ))
}

fn consumer_keys(mv: Microversion) -> Vec<&'static str> {
    let mut keys = vec!["allocations"];
    if mv.at_least(8) {
        keys.extend(["project_id", "user_id"]);
    }
    if mv.at_least(28) {
        keys.push("consumer_generation");
    }
    if mv.at_least(34) {
        keys.push("mappings");
    }
    if mv.at_least(38) {
        keys.push("consumer_type");
    }
    keys
}

/// 400 unless every class named by the claims exists.
async fn require_classes(svc: &PlacementService, claims: &[ConsumerClaim]) -> PlacementResult<()> {
    let classes: BTreeSet<&String> = claims
        .iter()
        .flat_map(|c| c.claim.allocations.values().flat_map(|r| r.keys()))
        .collect();
    svc.require_classes(classes, "Unable to allocate inventory: ")
        .await
}

/// A consumer's allocations, with owner (1.12), generation (1.28) and type (1.38).
pub async fn allocations_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(consumer): Path<String>,
) -> PlacementResult<Response> {
    let consumer = consumer_uuid(&consumer)?;
    let mut c = svc.conn().await?;
    let allocs = db::consumer_allocations(&mut c, &consumer).await?;
    let mut out = Map::new();
    for (rp, resources) in allocs {
        let gen = db::provider_get(&mut c, &rp)
            .await?
            .map(|p| p.generation)
            .unwrap_or(0);
        out.insert(rp, json!({"generation": gen, "resources": resources}));
    }
    let mut v = json!({"allocations": out});
    if let Some(cons) = db::consumer_get(&mut c, &consumer).await? {
        if mv.at_least(12) {
            v["project_id"] = json!(cons.project_id);
            v["user_id"] = json!(cons.user_id);
        }
        if mv.at_least(28) {
            v["consumer_generation"] = json!(cons.generation);
        }
        if mv.at_least(38) {
            v["consumer_type"] = json!(cons.consumer_type.as_deref().unwrap_or("unknown"));
        }
    }
    Ok(axum::Json(v).into_response())
}

/// `PUT /allocations/{consumer}`: replaces the consumer's allocations atomically.
pub async fn allocations_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(consumer): Path<String>,
    Body(body): Body,
) -> PlacementResult<StatusCode> {
    let consumer = consumer_uuid(&consumer)?;
    let m = schema::object(&body)?;
    schema::only(m, &consumer_keys(mv))?;
    let allocations = parse_allocations(schema::require(m, "allocations")?, mv, mv.at_least(28))?;
    let (claim, expected) = parse_consumer_fields(m, mv, allocations)?;
    let claims = vec![ConsumerClaim {
        consumer,
        claim,
        expected,
    }];
    require_classes(&svc, &claims).await?;
    svc.claim_many(claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /allocations` (1.13): several consumers' allocations, all or nothing.
pub async fn allocations_create(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> PlacementResult<StatusCode> {
    need(mv, 13)?;
    let claims = parse_consumers(&body, mv)?;
    require_classes(&svc, &claims).await?;
    svc.claim_many(claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{consumer: {allocations, project_id, user_id, …}}` as POST and the reshaper take it.
fn parse_consumers(body: &Value, mv: Microversion) -> PlacementResult<Vec<ConsumerClaim>> {
    let m = schema::object(body)?;
    let mut claims = Vec::with_capacity(m.len());
    for (consumer, v) in m {
        if !crate::model::is_uuid(consumer) {
            return Err(PlacementError::schema(format!(
                "'{consumer}' does not match any of the regexes: uuid"
            )));
        }
        let cm = schema::object(v)?;
        schema::only(cm, &consumer_keys(mv))?;
        let allocations = parse_allocations(schema::require(cm, "allocations")?, mv, true)?;
        let (claim, expected) = parse_consumer_fields(cm, mv, allocations)?;
        claims.push(ConsumerClaim {
            consumer: crate::model::canonical_uuid(consumer),
            claim,
            expected,
        });
    }
    Ok(claims)
}

pub async fn allocations_delete(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Path(consumer): Path<String>,
) -> PlacementResult<StatusCode> {
    let consumer = consumer_uuid(&consumer)?;
    svc.allocations_delete(&consumer).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /usages?project_id=&user_id=` (1.9); grouped by consumer type with `consumer_count`
/// from 1.38, where `consumer_type=all|unknown|TYPE` filters.
pub async fn usages_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Pairs(pairs): Pairs,
) -> PlacementResult<Response> {
    need(mv, 9)?;
    let mut project = None;
    let mut user = None;
    let mut ctype: Option<String> = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "project_id" => project = Some(v.clone()),
            "user_id" => user = Some(v.clone()),
            "consumer_type" if mv.at_least(38) => {
                let special = v == "all" || v == "unknown";
                schema::upper_name(&json!(v))
                    .map(|_| ())
                    .or_else(|e| if special { Ok(()) } else { Err(e) })
                    .map_err(|_| {
                        PlacementError::query(format!("'{v}' does not match '^[A-Z0-9_]+$'"))
                    })?;
                ctype = Some(v.clone());
            }
            other => {
                return Err(PlacementError::query(format!(
                    "Additional properties are not allowed ('{other}' was unexpected)"
                )))
            }
        }
    }
    let project =
        project.ok_or_else(|| PlacementError::query("'project_id' is a required property"))?;
    let mut c = svc.conn().await?;
    let by_type = db::project_usages(&mut c, &project, user.as_deref()).await?;
    if !mv.at_least(38) {
        let mut total: BTreeMap<String, i64> = BTreeMap::new();
        for (_, (_, u)) in by_type {
            for (rc, n) in u {
                *total.entry(rc).or_default() += n;
            }
        }
        return Ok(axum::Json(json!({"usages": total})).into_response());
    }
    let mut out: BTreeMap<String, (i64, BTreeMap<String, i64>)> = BTreeMap::new();
    for (t, (count, u)) in by_type {
        let key = t.unwrap_or_else(|| "unknown".to_string());
        let key = match ctype.as_deref() {
            Some("all") => "all".to_string(),
            Some(want) if want != key => continue,
            _ => key,
        };
        let e = out.entry(key).or_default();
        e.0 += count;
        for (rc, n) in u {
            *e.1.entry(rc).or_default() += n;
        }
    }
    let usages: Map<String, Value> = out
        .into_iter()
        .map(|(k, (count, u))| {
            let mut v = json!({"consumer_count": count});
            for (rc, n) in u {
                v[rc] = json!(n);
            }
            (k, v)
        })
        .collect();
    Ok(axum::Json(json!({"usages": usages})).into_response())
}

/// `POST /reshaper` (1.30): `{"inventories": {rp: {"resource_provider_generation", "inventories"}},
/// "allocations": {consumer: {...}}}`, applied in one write.
pub async fn reshaper_create(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> PlacementResult<StatusCode> {
    need(mv, 30)?;
    let m = schema::object(&body)?;
    schema::only(m, &["inventories", "allocations"])?;
    let mut inventories: BTreeMap<String, (i64, BTreeMap<String, Inventory>)> = BTreeMap::new();
    for (rp, v) in schema::object(schema::require(m, "inventories")?)? {
        if !crate::model::is_uuid(rp) {
            return Err(PlacementError::schema(format!(
                "'{rp}' does not match any of the regexes: uuid"
            )));
        }
        let rp = crate::model::canonical_uuid(rp);
        let im = schema::object(v)?;
        schema::only(im, &["resource_provider_generation", "inventories"])?;
        let g = schema::integer(
            schema::require(im, "resource_provider_generation")?,
            i64::MIN,
            i64::MAX,
        )?;
        let mut invs = BTreeMap::new();
        for (rc, iv) in schema::object(schema::require(im, "inventories")?)? {
            schema::upper_name(&json!(rc))?;
            let fm = schema::object(iv)?;
            schema::only(
                fm,
                &[
                    "total",
                    "reserved",
                    "min_unit",
                    "max_unit",
                    "step_size",
                    "allocation_ratio",
                ],
            )?;
            invs.insert(rc.clone(), parse_inventory(fm, rc, &rp, mv)?);
        }
        inventories.insert(rp, (g, invs));
    }
    let claims = parse_consumers(schema::require(m, "allocations")?, mv)?;
    for (rp, (_, invs)) in &inventories {
        path_uuid(rp)?;
        svc.require_classes(invs.keys(), "Unknown resource class in inventory: ")
            .await?;
    }
    require_classes(&svc, &claims).await?;
    svc.reshape(inventories, claims).await?;
    Ok(StatusCode::NO_CONTENT)
}
