//! `/v3/OS-EP-FILTER`: endpoint groups (a named filter over endpoint `interface`, `service_id`
//! and `region_id`) and the associations of projects with endpoints and with endpoint groups.
//!
//! A project's endpoints are those associated directly plus those matched by its endpoint
//! groups. When a project has any, the catalog of tokens scoped to it holds only those (see
//! [`crate::api::catalog_view`] and [`Identity::catalog`]); otherwise the full catalog, as
//! Keystone with `return_all_endpoints_if_no_filter` (its default).
//!
//! A "project" here may be a project acting as a domain, as in Keystone. Reads are open to
//! admins and system readers, writes to admins (Keystone's defaults).

use super::catalog::endpoint_view;
use super::projects::any_project_view;
use super::util::{collection, self_link, string_filter, QueryPairs};
use crate::db::{
    self,
    endpoint_groups::{Assoc, EndpointGroup},
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
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

const PREFIX: &str = "OS-EP-FILTER";

pub fn routes() -> Router<Identity> {
    Router::new()
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups",
            get(endpoint_group_list).post(endpoint_group_create),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}",
            get(endpoint_group_show)
                .patch(endpoint_group_update)
                .delete(endpoint_group_delete),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects",
            get(endpoint_group_projects),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints",
            get(endpoint_group_endpoints),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}",
            get(endpoint_group_project_show)
                .put(endpoint_group_project_add)
                .delete(endpoint_group_project_remove),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups",
            get(project_endpoint_groups),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoints",
            get(project_endpoints),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}",
            get(project_endpoint_check)
                .put(project_endpoint_add)
                .delete(project_endpoint_remove),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects",
            get(endpoint_projects),
        )
}

pub fn view(id: &Identity, g: &EndpointGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": g.filters,
        "links": self_link(&id.v3_url(), &format!("{PREFIX}/endpoint_groups/{}", g.id)),
    })
}

// ---- bodies --------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct EndpointGroupBody {
    endpoint_group: Map<String, Value>,
}

const FIELDS: &[&str] = &["name", "description", "filters"];
const FILTER_KEYS: &[&str] = &["service_id", "region_id", "interface"];

fn bad_field(field: &str, msg: impl std::fmt::Display) -> KsError {
    KsError::bad_request(format!("Invalid input for field '{field}': {msg}"))
}

/// The fields of a create or update body checked against Keystone's schema
/// (`additionalProperties: false`): `(name, description, filters)`, each `None` when absent.
type Fields = (
    Option<String>,
    Option<Option<String>>,
    Option<Map<String, Value>>,
);

fn read_fields(m: &Map<String, Value>) -> KsResult<Fields> {
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(KsError::bad_request(format!(
            "Invalid input for field 'endpoint_group': Additional properties are not allowed \
             ('{k}' was unexpected)"
        )));
    }
    let name = match m.get("name") {
        None => None,
        Some(Value::String(n)) => {
            if n.is_empty() || n.chars().count() > 255 || n.trim().is_empty() {
                return Err(bad_field(
                    "name",
                    format!("'{n}' must be 1 to 255 characters and not blank."),
                ));
            }
            Some(n.clone())
        }
        Some(v) => return Err(bad_field("name", format!("{v} is not of type 'string'"))),
    };
    let description = match m.get("description") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(d)) => Some(Some(d.clone())),
        Some(v) => {
            return Err(bad_field(
                "description",
                format!("{v} is not of type 'string', 'null'"),
            ))
        }
    };
    let filters = match m.get("filters") {
        None => None,
        Some(Value::Object(f)) => {
            for (k, v) in f {
                let ok = match k.as_str() {
                    "interface" => v
                        .as_str()
                        .is_some_and(|i| ["admin", "internal", "public"].contains(&i)),
                    "service_id" => v.is_string(),
                    "region_id" => v.is_string() || v.is_null(),
                    "enabled" => v.is_boolean(),
                    _ => true,
                };
                if !ok {
                    return Err(bad_field(
                        &format!("filters.{k}"),
                        format!("{v} is not valid for '{k}'"),
                    ));
                }
            }
            Some(f.clone())
        }
        Some(v) => return Err(bad_field("filters", format!("{v} is not of type 'object'"))),
    };
    Ok((name, description, filters))
}

/// Keystone's `_require_valid_filter`: only `service_id`, `region_id` and `interface`.
fn require_valid_filter(filters: &Map<String, Value>) -> KsResult<()> {
    if filters.keys().any(|k| !FILTER_KEYS.contains(&k.as_str())) {
        return Err(KsError::bad_request(format!(
            "Expecting to find {} in endpoint_group. The server could not comply with the request \
             since it is either malformed or otherwise incorrect. The client is assumed to be in \
             error.",
            FILTER_KEYS.join(" or ")
        )));
    }
    Ok(())
}

// ---- endpoint groups -----------------------------------------------------------------------

async fn load_group(id: &Identity, gid: &str) -> KsResult<EndpointGroup> {
    db::endpoint_groups::get(id.store(), gid)
        .await?
        .ok_or_else(|| KsError::not_found("Endpoint Group", gid))
}

async fn endpoint_group_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<EndpointGroupBody>,
) -> KsResult<Response> {
    enforce("identity:create_endpoint_group", admin(&ctx))?;
    let (name, description, filters) = read_fields(&body.endpoint_group)?;
    let name = name.ok_or_else(|| bad_field("name", "'name' is a required property"))?;
    let filters = match filters {
        Some(f) if !f.is_empty() => f,
        _ => {
            return Err(KsError::bad_request(
                "filters field is required and cannot be empty",
            ))
        }
    };
    require_valid_filter(&filters)?;
    let g = EndpointGroup {
        id: strata_core::ids::hex_id(),
        name,
        description: description.flatten(),
        filters: Value::Object(filters),
    };
    db::endpoint_groups::upsert(id.store(), &g, true).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"endpoint_group": view(&id, &g)})),
    )
        .into_response())
}

async fn endpoint_group_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    enforce(
        "identity:list_endpoint_groups",
        admin_or_system_reader(&ctx),
    )?;
    let mut groups = db::endpoint_groups::list(id.store()).await?;
    groups.retain(|g| string_filter(&query, "name", &g.name));
    let items = groups.iter().map(|g| view(&id, g)).collect();
    Ok(axum::Json(collection(
        "endpoint_groups",
        items,
        super::util::self_url(&id.v3_url(), &format!("{PREFIX}/endpoint_groups"), &query),
    ))
    .into_response())
}

/// `GET` (and `HEAD`, which answers 200 without a body).
async fn endpoint_group_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
) -> KsResult<Response> {
    enforce("identity:get_endpoint_group", admin_or_system_reader(&ctx))?;
    let g = load_group(&id, &gid).await?;
    Ok(axum::Json(json!({"endpoint_group": view(&id, &g)})).into_response())
}

async fn endpoint_group_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
    KsJson(body): KsJson<EndpointGroupBody>,
) -> KsResult<Response> {
    enforce("identity:update_endpoint_group", admin(&ctx))?;
    let m = body.endpoint_group;
    if m.is_empty() {
        return Err(KsError::bad_request(
            "Invalid input for field 'endpoint_group': {} does not have enough properties",
        ));
    }
    let (name, description, filters) = read_fields(&m)?;
    if let Some(f) = &filters {
        require_valid_filter(f)?;
    }
    let mut g = load_group(&id, &gid).await?;
    if let Some(n) = name {
        g.name = n;
    }
    if let Some(d) = description {
        g.description = d;
    }
    if let Some(f) = filters {
        g.filters = Value::Object(f);
    }
    db::endpoint_groups::upsert(id.store(), &g, false).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"endpoint_group": view(&id, &g)})).into_response())
}

async fn endpoint_group_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_endpoint_group", admin(&ctx))?;
    if !db::endpoint_groups::delete(id.store(), &gid).await? {
        return Err(KsError::not_found("Endpoint Group", &gid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoints an endpoint group's filters match.
async fn endpoint_group_endpoints(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
) -> KsResult<Response> {
    enforce(
        "identity:list_endpoints_associated_with_endpoint_group",
        admin_or_system_reader(&ctx),
    )?;
    let g = load_group(&id, &gid).await?;
    let endpoints = db::catalog::list_endpoints(id.store(), &db::Where::default()).await?;
    let items = endpoints
        .iter()
        .filter(|e| g.matches(e))
        .map(|e| endpoint_view(&id, e))
        .collect();
    Ok(axum::Json(collection(
        "endpoints",
        items,
        format!("{}/{PREFIX}/endpoint_groups/{gid}/endpoints", id.v3_url()),
    ))
    .into_response())
}

/// The projects associated with an endpoint group.
async fn endpoint_group_projects(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(gid): Path<String>,
) -> KsResult<Response> {
    enforce(
        "identity:list_projects_associated_with_endpoint_group",
        admin_or_system_reader(&ctx),
    )?;
    load_group(&id, &gid).await?;
    let pairs =
        db::endpoint_groups::associations(id.store(), Assoc::EndpointGroup, None, Some(&gid))
            .await?;
    let items = project_views(&id, pairs.iter().map(|(p, _)| p.as_str())).await?;
    Ok(axum::Json(collection(
        "projects",
        items,
        format!("{}/{PREFIX}/endpoint_groups/{gid}/projects", id.v3_url()),
    ))
    .into_response())
}

/// Views of the projects (or projects acting as domains) named, skipping any gone.
async fn project_views<'a>(
    id: &Identity,
    pids: impl Iterator<Item = &'a str>,
) -> KsResult<Vec<Value>> {
    let mut out = Vec::new();
    for p in pids {
        if let Some(v) = any_project_view(id, p).await? {
            out.push(v);
        }
    }
    Ok(out)
}

async fn require_project(id: &Identity, pid: &str) -> KsResult<()> {
    match any_project_view(id, pid).await? {
        Some(_) => Ok(()),
        None => Err(KsError::not_found("project", pid)),
    }
}

async fn require_endpoint(id: &Identity, eid: &str) -> KsResult<()> {
    match db::catalog::get_endpoint(id.store(), eid).await? {
        Some(_) => Ok(()),
        None => Err(KsError::not_found("endpoint", eid)),
    }
}

/// `GET` (and `HEAD`) of one project's association with an endpoint group, shown as Keystone
/// does: `{"project_endpoint_group": {"endpoint_group_id", "project_id", "links"}}`.
async fn endpoint_group_project_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((gid, pid)): Path<(String, String)>,
) -> KsResult<Response> {
    enforce(
        "identity:get_endpoint_group_in_project",
        admin_or_system_reader(&ctx),
    )?;
    require_project(&id, &pid).await?;
    load_group(&id, &gid).await?;
    let found =
        db::endpoint_groups::associations(id.store(), Assoc::EndpointGroup, Some(&pid), Some(&gid))
            .await?;
    if found.is_empty() {
        return Err(KsError::new(
            StatusCode::NOT_FOUND,
            "Endpoint Group Project Association not found",
        ));
    }
    Ok(axum::Json(json!({"project_endpoint_group": {
        "endpoint_group_id": gid,
        "project_id": pid,
        "links": self_link(&id.v3_url(), &format!("{PREFIX}/endpoint_groups/{gid}/projects/{pid}")),
    }}))
    .into_response())
}

async fn endpoint_group_project_add(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((gid, pid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    enforce("identity:add_endpoint_group_to_project", admin(&ctx))?;
    require_project(&id, &pid).await?;
    load_group(&id, &gid).await?;
    db::endpoint_groups::associate(id.store(), Assoc::EndpointGroup, &pid, &gid).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn endpoint_group_project_remove(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((gid, pid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    enforce("identity:remove_endpoint_group_from_project", admin(&ctx))?;
    require_project(&id, &pid).await?;
    load_group(&id, &gid).await?;
    if !db::endpoint_groups::dissociate(id.store(), Assoc::EndpointGroup, &pid, &gid).await? {
        return Err(KsError::new(
            StatusCode::NOT_FOUND,
            "Endpoint Group Project Association not found",
        ));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint groups associated with a project.
async fn project_endpoint_groups(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
) -> KsResult<Response> {
    enforce(
        "identity:list_endpoint_groups_for_project",
        admin_or_system_reader(&ctx),
    )?;
    require_project(&id, &pid).await?;
    let store = id.store();
    let pairs =
        db::endpoint_groups::associations(store, Assoc::EndpointGroup, Some(&pid), None).await?;
    let mut items = Vec::new();
    for (_, gid) in &pairs {
        if let Some(g) = db::endpoint_groups::get(store, gid).await? {
            items.push(view(&id, &g));
        }
    }
    Ok(axum::Json(collection(
        "endpoint_groups",
        items,
        format!("{}/{PREFIX}/projects/{pid}/endpoint_groups", id.v3_url()),
    ))
    .into_response())
}

// ---- project ↔ endpoint --------------------------------------------------------------------

/// The ids of the endpoints associated with a project, directly or through its endpoint groups,
/// among `endpoints`; empty when the project has no association (its catalog is then whole).
pub(crate) fn project_endpoint_ids(
    project_id: &str,
    endpoints: &[db::catalog::Endpoint],
    direct: &[(String, String)],
    groups: &[EndpointGroup],
    group_links: &[(String, String)],
) -> HashSet<String> {
    let mut ids: HashSet<String> = direct
        .iter()
        .filter(|(p, _)| p == project_id)
        .map(|(_, e)| e.clone())
        .collect();
    for (_, gid) in group_links.iter().filter(|(p, _)| p == project_id) {
        if let Some(g) = groups.iter().find(|g| &g.id == gid) {
            ids.extend(
                endpoints
                    .iter()
                    .filter(|e| g.matches(e))
                    .map(|e| e.id.clone()),
            );
        }
    }
    ids
}

/// Endpoint filters of the token catalog: for each project with any association, the ids of its
/// endpoints. Projects absent from the map see the whole catalog.
pub(crate) type ProjectFilters = HashMap<String, HashSet<String>>;

/// Reads every association and endpoint group to build [`ProjectFilters`].
pub(crate) async fn project_filters(id: &Identity) -> strata_core::Result<ProjectFilters> {
    let store = id.store();
    let direct = db::endpoint_groups::associations(store, Assoc::Endpoint, None, None).await?;
    let links = db::endpoint_groups::associations(store, Assoc::EndpointGroup, None, None).await?;
    if direct.is_empty() && links.is_empty() {
        return Ok(HashMap::new());
    }
    let endpoints = db::catalog::list_endpoints(store, &db::Where::default()).await?;
    let groups = db::endpoint_groups::list(store).await?;
    let projects: HashSet<&str> = direct
        .iter()
        .chain(links.iter())
        .map(|(p, _)| p.as_str())
        .collect();
    Ok(projects
        .into_iter()
        .map(|p| {
            let ids = project_endpoint_ids(p, &endpoints, &direct, &groups, &links);
            (p.to_string(), ids)
        })
        .filter(|(_, ids)| !ids.is_empty())
        .collect())
}

/// A catalog (as [`crate::api::catalog_view`] builds it) narrowed to the endpoints in `ids`;
/// services left without endpoints are dropped, as Keystone does.
pub(crate) fn filter_catalog(catalog: &Value, ids: &HashSet<String>) -> Value {
    let services = catalog
        .as_array()
        .map(|services| {
            services
                .iter()
                .filter_map(|s| {
                    let eps: Vec<Value> = s["endpoints"]
                        .as_array()?
                        .iter()
                        .filter(|e| e["id"].as_str().is_some_and(|i| ids.contains(i)))
                        .cloned()
                        .collect();
                    if eps.is_empty() {
                        return None;
                    }
                    let mut s = s.clone();
                    s["endpoints"] = Value::Array(eps);
                    Some(s)
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Array(services)
}

/// `GET /v3/OS-EP-FILTER/projects/{project_id}/endpoints`: endpoints associated directly or
/// through endpoint groups.
async fn project_endpoints(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
) -> KsResult<Response> {
    enforce(
        "identity:list_endpoints_for_project",
        admin_or_system_reader(&ctx),
    )?;
    require_project(&id, &pid).await?;
    let store = id.store();
    let endpoints = db::catalog::list_endpoints(store, &db::Where::default()).await?;
    let direct =
        db::endpoint_groups::associations(store, Assoc::Endpoint, Some(&pid), None).await?;
    let links =
        db::endpoint_groups::associations(store, Assoc::EndpointGroup, Some(&pid), None).await?;
    let groups = db::endpoint_groups::list(store).await?;
    let ids = project_endpoint_ids(&pid, &endpoints, &direct, &groups, &links);
    let items = endpoints
        .iter()
        .filter(|e| ids.contains(&e.id))
        .map(|e| endpoint_view(&id, e))
        .collect();
    Ok(axum::Json(collection(
        "endpoints",
        items,
        format!("{}/{PREFIX}/projects/{pid}/endpoints", id.v3_url()),
    ))
    .into_response())
}

/// `GET`/`HEAD`: 204 when the endpoint is associated with the project directly.
async fn project_endpoint_check(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((pid, eid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    enforce(
        "identity:check_endpoint_in_project",
        admin_or_system_reader(&ctx),
    )?;
    require_endpoint(&id, &eid).await?;
    require_project(&id, &pid).await?;
    let found =
        db::endpoint_groups::associations(id.store(), Assoc::Endpoint, Some(&pid), Some(&eid))
            .await?;
    if found.is_empty() {
        return Err(endpoint_not_in_project(&eid, &pid));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn endpoint_not_in_project(eid: &str, pid: &str) -> KsError {
    KsError::new(
        StatusCode::NOT_FOUND,
        format!("Endpoint {eid} not found in project {pid}"),
    )
}

async fn project_endpoint_add(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((pid, eid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    enforce("identity:add_endpoint_to_project", admin(&ctx))?;
    require_endpoint(&id, &eid).await?;
    require_project(&id, &pid).await?;
    db::endpoint_groups::associate(id.store(), Assoc::Endpoint, &pid, &eid).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn project_endpoint_remove(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((pid, eid)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    enforce("identity:remove_endpoint_from_project", admin(&ctx))?;
    if !db::endpoint_groups::dissociate(id.store(), Assoc::Endpoint, &pid, &eid).await? {
        return Err(endpoint_not_in_project(&eid, &pid));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects`: the projects associated with an
/// endpoint directly.
async fn endpoint_projects(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(eid): Path<String>,
) -> KsResult<Response> {
    enforce(
        "identity:list_projects_for_endpoint",
        admin_or_system_reader(&ctx),
    )?;
    require_endpoint(&id, &eid).await?;
    let pairs =
        db::endpoint_groups::associations(id.store(), Assoc::Endpoint, None, Some(&eid)).await?;
    let items = project_views(&id, pairs.iter().map(|(p, _)| p.as_str())).await?;
    Ok(axum::Json(collection(
        "projects",
        items,
        format!("{}/{PREFIX}/endpoints/{eid}/projects", id.v3_url()),
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::Endpoint;

    fn ep(id: &str, service: &str, interface: &str, region: Option<&str>) -> Endpoint {
        Endpoint {
            id: id.into(),
            service_id: service.into(),
            interface: interface.into(),
            url: "http://x".into(),
            region_id: region.map(str::to_string),
            enabled: true,
            extra: json!({}),
        }
    }

    fn group(id: &str, filters: Value) -> EndpointGroup {
        EndpointGroup {
            id: id.into(),
            name: id.into(),
            description: None,
            filters,
        }
    }

    #[test]
    fn filters_match_every_attribute() {
        let e = ep("e1", "s1", "public", Some("R1"));
        assert!(group("g", json!({})).matches(&e));
        assert!(group("g", json!({"service_id": "s1", "interface": "public"})).matches(&e));
        assert!(!group("g", json!({"service_id": "s1", "interface": "admin"})).matches(&e));
        assert!(group("g", json!({"region_id": "R1"})).matches(&e));
        assert!(!group("g", json!({"region_id": null})).matches(&e));
        assert!(group("g", json!({"region_id": null})).matches(&ep("e2", "s", "admin", None)));
    }

    #[test]
    fn project_endpoints_join_direct_and_grouped() {
        let eps = vec![
            ep("e1", "s1", "public", None),
            ep("e2", "s1", "admin", None),
            ep("e3", "s2", "public", None),
        ];
        let direct = vec![("p".to_string(), "e3".to_string())];
        let groups = vec![group(
            "g1",
            json!({"service_id": "s1", "interface": "admin"}),
        )];
        let links = vec![
            ("p".to_string(), "g1".to_string()),
            ("q".to_string(), "g1".to_string()),
        ];
        let ids = project_endpoint_ids("p", &eps, &direct, &groups, &links);
        let mut ids: Vec<_> = ids.into_iter().collect();
        ids.sort();
        assert_eq!(ids, ["e2", "e3"]);
        assert!(project_endpoint_ids("other", &eps, &direct, &groups, &links).is_empty());
    }

    #[test]
    fn catalogs_are_narrowed_and_emptied_services_dropped() {
        let catalog = json!([
            {"id": "s1", "type": "a", "endpoints": [{"id": "e1"}, {"id": "e2"}]},
            {"id": "s2", "type": "b", "endpoints": [{"id": "e3"}]},
        ]);
        let ids: HashSet<String> = ["e2".to_string()].into();
        assert_eq!(
            filter_catalog(&catalog, &ids),
            json!([{"id": "s1", "type": "a", "endpoints": [{"id": "e2"}]}])
        );
    }

    #[test]
    fn bodies_follow_keystone_schema() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert!(read_fields(&m(json!({"name": "n", "filters": {"interface": "public"}}))).is_ok());
        for bad in [
            json!({"name": "n", "extra": 1}),
            json!({"name": 5}),
            json!({"name": ""}),
            json!({"filters": {"interface": "private"}}),
            json!({"filters": []}),
            json!({"description": 1}),
        ] {
            assert_eq!(
                read_fields(&m(bad.clone())).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert!(require_valid_filter(&m(json!({"enabled": true}))).is_err());
        assert!(require_valid_filter(&m(json!({"region_id": "R"}))).is_ok());
    }
}
