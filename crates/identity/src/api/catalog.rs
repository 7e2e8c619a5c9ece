//! `/v3/regions`, `/v3/services` and `/v3/endpoints`: the service catalog.
//!
//! The three resources accept attributes beyond their fixed ones (Keystone's
//! `additionalProperties: true`) and store them as `extra`, shown back merged into the view. Bodies
//! are therefore read as JSON objects and checked field by field, with Keystone's messages.
//! Regions are readable by any authenticated caller; services and endpoints by admins and system
//! readers; every write is admin only. Each write refreshes the cached catalog
//! ([`Identity::changed`]) so the next token carries it.

use super::util::{collection, q, self_link, self_url, string_filter, with_extra, QueryPairs};
use crate::db::{
    self,
    catalog::{Endpoint, Region, RegionDelete, Service},
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
        .route("/v3/regions", get(region_list).post(region_create))
        .route(
            "/v3/regions/{region_id}",
            get(region_show)
                .put(region_create_with_id)
                .patch(region_update)
                .delete(region_delete),
        )
        .route("/v3/services", get(service_list).post(service_create))
        .route(
            "/v3/services/{service_id}",
            get(service_show)
                .patch(service_update)
                .delete(service_delete),
        )
        .route("/v3/endpoints", get(endpoint_list).post(endpoint_create))
        .route(
            "/v3/endpoints/{endpoint_id}",
            get(endpoint_show)
                .patch(endpoint_update)
                .delete(endpoint_delete),
        )
}

use super::fields::{
    boolean, check_len, extra_of, merge_extra, nullable_string, require_matching_id, require_some,
    string, validation_error, Obj,
};

// ---- regions -------------------------------------------------------------------------------

const REGION_FIXED: &[&str] = &["id", "description", "parent_region_id", "links"];

pub fn region_view(id: &Identity, r: &Region) -> Value {
    with_extra(
        json!({
            "id": r.id,
            "description": r.description,
            "parent_region_id": r.parent_region_id,
            "links": self_link(&id.v3_url(), &format!("regions/{}", r.id)),
        }),
        &r.extra,
    )
}

#[derive(Deserialize)]
pub struct RegionBody {
    region: Obj,
}

async fn load_region(id: &Identity, rid: &str) -> KsResult<Region> {
    db::catalog::get_region(id.store(), rid)
        .await?
        .ok_or_else(|| KsError::not_found("region", rid))
}

/// Creates a region from a create body; `path_id` is the id of `PUT /v3/regions/{id}`.
async fn create_region(id: &Identity, m: Obj, path_id: Option<String>) -> KsResult<Response> {
    let body_id = nullable_string(&m, "id")?
        .flatten()
        .filter(|s| !s.is_empty());
    let rid = match (path_id, body_id) {
        (Some(p), Some(b)) if p != b => {
            return Err(KsError::bad_request(format!(
                "Conflicting region IDs specified: \"{p}\" != \"{b}\""
            )))
        }
        (Some(p), _) => p,
        (None, Some(b)) => b,
        (None, None) => strata_core::ids::hex_id(),
    };
    check_len("id", &rid, 1, 255)?;
    let description = nullable_string(&m, "description")?
        .flatten()
        .unwrap_or_default();
    check_len("description", &description, 0, 255)?;
    let parent = nullable_string(&m, "parent_region_id")?.flatten();
    let store = id.store();
    if db::catalog::get_region(store, &rid).await?.is_some() {
        return Err(KsError::conflict(format!(
            "Conflict occurred attempting to store region - Duplicate ID, {rid}."
        )));
    }
    if let Some(p) = &parent {
        load_region(id, p).await?;
    }
    let r = Region {
        id: rid,
        description,
        parent_region_id: parent,
        extra: Value::Object(extra_of(&m, REGION_FIXED)),
    };
    db::catalog::upsert_region(store, &r, true).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"region": region_view(id, &r)})),
    )
        .into_response())
}

/// `POST /v3/regions`: the id is taken from the body when given, else generated.
async fn region_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<RegionBody>,
) -> KsResult<Response> {
    enforce("identity:create_region", admin(&ctx))?;
    create_region(&id, body.region, None).await
}

/// `PUT /v3/regions/{region_id}`: creates a region with the id of the path.
async fn region_create_with_id(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(rid): Path<String>,
    KsJson(body): KsJson<RegionBody>,
) -> KsResult<Response> {
    enforce("identity:create_region", admin(&ctx))?;
    create_region(&id, body.region, Some(rid)).await
}

async fn region_list(
    State(id): State<Identity>,
    Auth(_ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    // `identity:list_regions` is open to any authenticated caller.
    let mut w = db::Where::default();
    if let Some(p) = q(&query, "parent_region_id") {
        w.eq("parent_region_id", p);
    }
    let regions = db::catalog::list_regions(id.store(), &w).await?;
    let items = regions.iter().map(|r| region_view(&id, r)).collect();
    Ok(axum::Json(collection(
        "regions",
        items,
        self_url(&id.v3_url(), "regions", &query),
    ))
    .into_response())
}

async fn region_show(
    State(id): State<Identity>,
    Auth(_ctx): Auth,
    Path(rid): Path<String>,
) -> KsResult<Response> {
    // `identity:get_region` is open to any authenticated caller.
    let r = load_region(&id, &rid).await?;
    Ok(axum::Json(json!({"region": region_view(&id, &r)})).into_response())
}

async fn region_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(rid): Path<String>,
    KsJson(body): KsJson<RegionBody>,
) -> KsResult<Response> {
    enforce("identity:update_region", admin(&ctx))?;
    let m = body.region;
    require_some(&m)?;
    require_matching_id(&m, &rid)?;
    let mut r = load_region(&id, &rid).await?;
    if let Some(d) = nullable_string(&m, "description")? {
        let d = d.unwrap_or_default();
        check_len("description", &d, 0, 255)?;
        r.description = d;
    }
    if let Some(p) = nullable_string(&m, "parent_region_id")? {
        if let Some(parent) = &p {
            load_region(&id, parent).await?;
            // Walk up from the new parent: meeting this region again would close a cycle.
            let mut cur = Some(parent.clone());
            let mut seen = Vec::new();
            while let Some(c) = cur {
                if c == r.id {
                    return Err(KsError::bad_request(format!(
                        "The specified parent region {parent} would create a circular region hierarchy."
                    )));
                }
                if seen.contains(&c) {
                    break;
                }
                seen.push(c.clone());
                cur = db::catalog::get_region(id.store(), &c)
                    .await?
                    .and_then(|x| x.parent_region_id);
            }
        }
        r.parent_region_id = p;
    }
    merge_extra(&mut r.extra, &m, REGION_FIXED);
    db::catalog::upsert_region(id.store(), &r, false).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"region": region_view(&id, &r)})).into_response())
}

/// `DELETE /v3/regions/{region_id}`: as Keystone, deletes the region's descendants with it, and
/// refuses (403) when the region or a descendant still has endpoints.
async fn region_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(rid): Path<String>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_region", admin(&ctx))?;
    match db::catalog::delete_region_tree(id.store(), &rid).await? {
        RegionDelete::Deleted => {}
        RegionDelete::NotFound => return Err(KsError::not_found("region", &rid)),
        RegionDelete::HasEndpoints => {
            return Err(KsError::forbidden_msg(format!(
                "Unable to delete region {rid} because it or its child regions have associated endpoints."
            )))
        }
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- services ------------------------------------------------------------------------------

const SERVICE_FIXED: &[&str] = &["id", "type", "name", "description", "enabled", "links"];

/// Keystone keeps `name` (default `""`) and `description` (only when given) as plain
/// attributes, so `description` is absent unless set.
pub fn service_view(id: &Identity, s: &Service) -> Value {
    let mut v = json!({
        "id": s.id,
        "type": s.kind,
        "name": s.name,
        "enabled": s.enabled,
        "links": self_link(&id.v3_url(), &format!("services/{}", s.id)),
    });
    if let Some(d) = &s.description {
        v["description"] = json!(d);
    }
    with_extra(v, &s.extra)
}

#[derive(Deserialize)]
pub struct ServiceBody {
    service: Obj,
}

async fn load_service(id: &Identity, sid: &str) -> KsResult<Service> {
    db::catalog::get_service(id.store(), sid)
        .await?
        .ok_or_else(|| KsError::not_found("service", sid))
}

async fn service_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<ServiceBody>,
) -> KsResult<Response> {
    enforce("identity:create_service", admin(&ctx))?;
    let m = body.service;
    let kind = string(&m, "type")?.ok_or_else(|| {
        KsError::bad_request("Invalid input for field 'type': 'type' is a required property")
    })?;
    check_len("type", &kind, 1, 255)?;
    let name = string(&m, "name")?;
    if let Some(n) = &name {
        check_len("name", n, 1, 255)?;
    }
    let s = Service {
        // As Keystone, an `id` in the body is ignored.
        id: strata_core::ids::hex_id(),
        kind,
        name: name.unwrap_or_default(),
        description: nullable_string(&m, "description")?.flatten(),
        enabled: boolean(&m, "enabled")?.unwrap_or(true),
        extra: Value::Object(extra_of(&m, SERVICE_FIXED)),
    };
    db::catalog::upsert_service(id.store(), &s, true).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"service": service_view(&id, &s)})),
    )
        .into_response())
}

async fn service_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    enforce("identity:list_services", admin_or_system_reader(&ctx))?;
    let mut w = db::Where::default();
    if let Some(t) = q(&query, "type") {
        w.eq("type", t);
    }
    let mut services = db::catalog::list_services(id.store(), &w).await?;
    services.retain(|s| string_filter(&query, "name", &s.name));
    let items = services.iter().map(|s| service_view(&id, s)).collect();
    Ok(axum::Json(collection(
        "services",
        items,
        self_url(&id.v3_url(), "services", &query),
    ))
    .into_response())
}

async fn service_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(sid): Path<String>,
) -> KsResult<Response> {
    enforce("identity:get_service", admin_or_system_reader(&ctx))?;
    let s = load_service(&id, &sid).await?;
    Ok(axum::Json(json!({"service": service_view(&id, &s)})).into_response())
}

async fn service_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(sid): Path<String>,
    KsJson(body): KsJson<ServiceBody>,
) -> KsResult<Response> {
    enforce("identity:update_service", admin(&ctx))?;
    let m = body.service;
    require_some(&m)?;
    require_matching_id(&m, &sid)?;
    let mut s = load_service(&id, &sid).await?;
    if let Some(t) = string(&m, "type")? {
        check_len("type", &t, 1, 255)?;
        s.kind = t;
    }
    if let Some(n) = string(&m, "name")? {
        check_len("name", &n, 1, 255)?;
        s.name = n;
    }
    if let Some(d) = nullable_string(&m, "description")? {
        s.description = d;
    }
    if let Some(e) = boolean(&m, "enabled")? {
        s.enabled = e;
    }
    merge_extra(&mut s.extra, &m, SERVICE_FIXED);
    db::catalog::upsert_service(id.store(), &s, false).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"service": service_view(&id, &s)})).into_response())
}

/// `DELETE /v3/services/{service_id}`: deletes the service's endpoints with it.
async fn service_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(sid): Path<String>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_service", admin(&ctx))?;
    if !db::catalog::delete(id.store(), "identity_service", db::kind::SERVICE, &sid).await? {
        return Err(KsError::not_found("service", &sid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- endpoints -----------------------------------------------------------------------------

const ENDPOINT_FIXED: &[&str] = &[
    "id",
    "service_id",
    "interface",
    "url",
    "region_id",
    "region",
    "enabled",
    "links",
    "legacy_endpoint_id",
];

const INTERFACES: &[&str] = &["admin", "internal", "public"];

/// The substitutions Keystone allows in endpoint URLs (`$(project_id)s`).
const URL_SUBSTITUTIONS: &[&str] = &[
    "tenant_id",
    "project_id",
    "user_id",
    "compute_host",
    "public_endpoint",
];

/// `region` repeats `region_id`, for clients of the v3.0 API.
pub fn endpoint_view(id: &Identity, e: &Endpoint) -> Value {
    with_extra(
        json!({
            "id": e.id,
            "interface": e.interface,
            "region": e.region_id,
            "region_id": e.region_id,
            "service_id": e.service_id,
            "url": e.url,
            "enabled": e.enabled,
            "links": self_link(&id.v3_url(), &format!("endpoints/{}", e.id)),
        }),
        &e.extra,
    )
}

#[derive(Deserialize)]
pub struct EndpointBody {
    endpoint: Obj,
}

fn check_interface(v: &str) -> KsResult<()> {
    if INTERFACES.contains(&v) {
        Ok(())
    } else {
        Err(KsError::bad_request(format!(
            "Invalid input for field 'interface': '{v}' is not one of ['admin', 'internal', 'public']"
        )))
    }
}

/// Keystone's URL rules: the schema's `^[a-zA-Z0-9+.-]+:.+` up to 225 characters, and only
/// known `$(name)s` substitutions.
fn check_url(url: &str) -> KsResult<()> {
    let scheme_ok = url.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            && !rest.is_empty()
    });
    if !scheme_ok || url.chars().count() > 225 {
        return Err(KsError::bad_request(format!(
            "Invalid input for field 'url': '{url}' does not match '^[a-zA-Z0-9+.-]+:.+'"
        )));
    }
    let invalid = || {
        KsError::bad_request(format!(
            "Cannot create an endpoint with an invalid URL: {url}."
        ))
    };
    let mut rest = url;
    while let Some(i) = rest.find("$(") {
        let after = &rest[i + 2..];
        let end = after.find(")s").ok_or_else(invalid)?;
        if !URL_SUBSTITUTIONS.contains(&&after[..end]) {
            return Err(invalid());
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

async fn load_endpoint(id: &Identity, eid: &str) -> KsResult<Endpoint> {
    db::catalog::get_endpoint(id.store(), eid)
        .await?
        .ok_or_else(|| KsError::not_found("endpoint", eid))
}

/// The region an endpoint body names. `region_id` must exist (400 otherwise); the legacy
/// `region`, used only when `region_id` is null or absent, is created when missing, as Keystone
/// does for v2-style clients. `None` when the body names neither.
async fn endpoint_region(id: &Identity, m: &Obj) -> KsResult<Option<Option<String>>> {
    let region_id = nullable_string(m, "region_id")?;
    let legacy = nullable_string(m, "region")?.flatten();
    match (region_id, legacy) {
        (Some(Some(r)), _) => {
            if db::catalog::get_region(id.store(), &r).await?.is_none() {
                return Err(validation_error("endpoint region_id", "region table"));
            }
            Ok(Some(Some(r)))
        }
        (_, Some(r)) => {
            check_len("region", &r, 1, 255)?;
            if db::catalog::get_region(id.store(), &r).await?.is_none() {
                let region = Region {
                    id: r.clone(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: json!({}),
                };
                match db::catalog::upsert_region(id.store(), &region, true).await {
                    // Created concurrently by another request: just as good.
                    Ok(()) | Err(strata_core::Error::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Some(Some(r)))
        }
        (Some(None), None) => Ok(Some(None)),
        (None, None) => Ok(None),
    }
}

async fn require_service(id: &Identity, sid: &str) -> KsResult<()> {
    match db::catalog::get_service(id.store(), sid).await? {
        Some(_) => Ok(()),
        None => Err(validation_error("endpoint service_id", "service table")),
    }
}

async fn endpoint_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<EndpointBody>,
) -> KsResult<Response> {
    enforce("identity:create_endpoint", admin(&ctx))?;
    let m = body.endpoint;
    let required = |k: &str| {
        KsError::bad_request(format!(
            "Invalid input for field '{k}': '{k}' is a required property"
        ))
    };
    let service_id = string(&m, "service_id")?.ok_or_else(|| required("service_id"))?;
    let interface = string(&m, "interface")?.ok_or_else(|| required("interface"))?;
    let url = string(&m, "url")?.ok_or_else(|| required("url"))?;
    check_interface(&interface)?;
    check_url(&url)?;
    let enabled = boolean(&m, "enabled")?.unwrap_or(true);
    // The service first, so a refused request doesn't leave an auto-created region behind.
    require_service(&id, &service_id).await?;
    let region_id = endpoint_region(&id, &m).await?.flatten();
    let e = Endpoint {
        // As Keystone, an `id` in the body is ignored.
        id: strata_core::ids::hex_id(),
        service_id,
        interface,
        url,
        region_id,
        enabled,
        extra: Value::Object(extra_of(&m, ENDPOINT_FIXED)),
    };
    db::catalog::upsert_endpoint(id.store(), &e, true).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"endpoint": endpoint_view(&id, &e)})),
    )
        .into_response())
}

async fn endpoint_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    enforce("identity:list_endpoints", admin_or_system_reader(&ctx))?;
    let mut w = db::Where::default();
    if let Some(i) = q(&query, "interface") {
        check_interface(i)?;
        w.eq("interface", i);
    }
    if let Some(s) = q(&query, "service_id") {
        w.eq("service_id", s);
    }
    if let Some(r) = q(&query, "region_id") {
        w.eq("region_id", r);
    }
    let endpoints = db::catalog::list_endpoints(id.store(), &w).await?;
    let items = endpoints.iter().map(|e| endpoint_view(&id, e)).collect();
    Ok(axum::Json(collection(
        "endpoints",
        items,
        self_url(&id.v3_url(), "endpoints", &query),
    ))
    .into_response())
}

async fn endpoint_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(eid): Path<String>,
) -> KsResult<Response> {
    enforce("identity:get_endpoint", admin_or_system_reader(&ctx))?;
    let e = load_endpoint(&id, &eid).await?;
    Ok(axum::Json(json!({"endpoint": endpoint_view(&id, &e)})).into_response())
}

async fn endpoint_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(eid): Path<String>,
    KsJson(body): KsJson<EndpointBody>,
) -> KsResult<Response> {
    enforce("identity:update_endpoint", admin(&ctx))?;
    let m = body.endpoint;
    require_some(&m)?;
    require_matching_id(&m, &eid)?;
    let mut e = load_endpoint(&id, &eid).await?;
    if let Some(i) = string(&m, "interface")? {
        check_interface(&i)?;
        e.interface = i;
    }
    if let Some(u) = string(&m, "url")? {
        check_url(&u)?;
        e.url = u;
    }
    if let Some(b) = boolean(&m, "enabled")? {
        e.enabled = b;
    }
    if let Some(s) = string(&m, "service_id")? {
        require_service(&id, &s).await?;
        e.service_id = s;
    }
    if let Some(r) = endpoint_region(&id, &m).await? {
        e.region_id = r;
    }
    merge_extra(&mut e.extra, &m, ENDPOINT_FIXED);
    db::catalog::upsert_endpoint(id.store(), &e, false).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"endpoint": endpoint_view(&id, &e)})).into_response())
}

async fn endpoint_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(eid): Path<String>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_endpoint", admin(&ctx))?;
    if !db::catalog::delete(id.store(), "identity_endpoint", db::kind::ENDPOINT, &eid).await? {
        return Err(KsError::not_found("endpoint", &eid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        for ok in [
            "http://x",
            "https://h:5000/v3",
            "http://nova/v2.1/$(project_id)s",
            "http://h/$(tenant_id)s/x/$(user_id)s",
            "git+ssh:x",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "no-scheme",
            ":x",
            "http:",
            "ht tp://x",
            "http://h/$(secret)s",
            "http://h/$(project_id",
            &format!("http://{}", "a".repeat(230)),
        ] {
            assert_eq!(
                check_url(bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }
}
