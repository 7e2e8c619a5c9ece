//! Flavors (`/flavors`), their extra specs (`/flavors/{id}/os-extra_specs`) and access lists
//! (`/flavors/{id}/os-flavor-access`, `addTenantAccess`/`removeTenantAccess` actions).
//!
//! Visibility follows Nova's flavor queries: everyone sees public flavors, a project also the
//! private flavors shared with it, admins everything (lists default to public + shared for
//! admins too; `is_public=None` lists all). A flavor the caller may not see is a 404.

use super::views::{flavor_basic, flavor_detail};
use super::{next_link, page_limit, Links};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::model::{flavor_sort_column, validate_extra_spec, Flavor};
use crate::schema::{self, fail, repr};
use crate::{db, ComputeService};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// The flavor routes.
pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/flavors", get(flavor_list).post(flavor_create))
        .route("/flavors/detail", get(flavor_list_detail))
        .route(
            "/flavors/{id}",
            get(flavor_show).put(flavor_update).delete(flavor_delete),
        )
        .route(
            "/flavors/{id}/os-extra_specs",
            get(extra_specs_list).post(extra_specs_create),
        )
        .route(
            "/flavors/{id}/os-extra_specs/{key}",
            get(extra_spec_show)
                .put(extra_spec_update)
                .delete(extra_spec_delete),
        )
        .route("/flavors/{id}/os-flavor-access", get(flavor_access_list))
        .route("/flavors/{id}/action", axum::routing::post(flavor_action))
}

/// The flavor if the caller may see it, else Nova's `FlavorNotFound`.
pub async fn visible_flavor(svc: &ComputeService, auth: &Auth, id: &str) -> NovaResult<Flavor> {
    let f = db::get_flavor(svc.store(), id)
        .await?
        .ok_or_else(|| NovaError::flavor_not_found(id))?;
    if f.is_public || auth.admin() {
        return Ok(f);
    }
    let shared = db::flavors_shared_with(svc.store(), auth.project()).await?;
    if shared.contains(&f.id) {
        Ok(f)
    } else {
        Err(NovaError::flavor_not_found(id))
    }
}

/// The page of flavors a list request asks for, and whether it is full (a `next` link).
async fn list_page(
    svc: &ComputeService,
    auth: &Auth,
    mv: crate::Microversion,
    pairs: &Pairs,
) -> NovaResult<(Vec<Flavor>, usize)> {
    pairs.only(
        mv,
        &[
            "limit",
            "marker",
            "is_public",
            "minRam",
            "minDisk",
            "sort_key",
            "sort_dir",
        ],
    )?;
    // is_public: admins may ask for private ones or all (`None`); others get public + shared.
    let is_public = if auth.admin() {
        match pairs.get("is_public") {
            None => Some(true),
            Some(s) if s.eq_ignore_ascii_case("none") => None,
            Some(s) => Some(schema::bool_from_string(s).ok_or_else(|| {
                NovaError::bad_request(format!("Invalid is_public filter [{s}]"))
            })?),
        }
    } else {
        Some(true)
    };
    let min = |key: &str| -> NovaResult<Option<i64>> {
        match pairs.get(key) {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| NovaError::bad_request(format!("Invalid {key} filter [{s}]"))),
        }
    };
    let min_ram = min("minRam")?;
    let min_disk = min("minDisk")?;
    let sort_key = pairs.get("sort_key").unwrap_or("flavorid");
    let column = flavor_sort_column(sort_key).ok_or_else(|| {
        NovaError::bad_request("Sort key supplied is invalid: ".to_string() + sort_key)
    })?;
    let desc = match pairs.get("sort_dir").unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        _ => {
            return Err(NovaError::bad_request(
                "Unknown sort direction, must be 'desc' or 'asc'",
            ))
        }
    };
    let limit = page_limit(pairs)?;

    let shared = db::flavors_shared_with(svc.store(), auth.project()).await?;
    let mut flavors: Vec<Flavor> = db::list_flavors(svc.store())
        .await?
        .into_iter()
        .filter(|f| match is_public {
            None => true,
            Some(true) => f.is_public || shared.contains(&f.id),
            Some(false) => !f.is_public,
        })
        // Nova hides disabled flavors from everyone but admins.
        .filter(|f| auth.admin() || !f.disabled)
        .filter(|f| min_ram.is_none_or(|m| f.memory_mb >= m))
        .filter(|f| min_disk.is_none_or(|m| f.root_gb >= m))
        .collect();
    flavors.sort_by(|a, b| {
        let o = compare(a, b, column).then_with(|| a.id.cmp(&b.id));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    if let Some(marker) = pairs.get("marker") {
        let at = flavors
            .iter()
            .position(|f| f.id == marker)
            .ok_or_else(|| NovaError::bad_request(format!("marker [{marker}] not found")))?;
        flavors.drain(..=at);
    }
    flavors.truncate(limit);
    Ok((flavors, limit))
}

fn compare(a: &Flavor, b: &Flavor, column: &str) -> Ordering {
    match column {
        "name" => a.name.cmp(&b.name),
        "memory_mb" => a.memory_mb.cmp(&b.memory_mb),
        "vcpus" => a.vcpus.cmp(&b.vcpus),
        "root_gb" => a.root_gb.cmp(&b.root_gb),
        "ephemeral_gb" => a.ephemeral_gb.cmp(&b.ephemeral_gb),
        "swap" => a.swap.cmp(&b.swap),
        "rxtx_factor" => a.rxtx_factor.total_cmp(&b.rxtx_factor),
        "is_public" => a.is_public.cmp(&b.is_public),
        "disabled" => a.disabled.cmp(&b.disabled),
        "description" => a.description.cmp(&b.description),
        "created_at" => a.created_at.cmp(&b.created_at),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        _ => a.id.cmp(&b.id),
    }
}

async fn list_common(
    svc: ComputeService,
    auth: Auth,
    mv: Mv,
    links: Links,
    pairs: Pairs,
    detail: bool,
) -> NovaResult<Json<Value>> {
    let (flavors, limit) = list_page(&svc, &auth, mv.0, &pairs).await?;
    let items: Vec<Value> = flavors
        .iter()
        .map(|f| {
            if detail {
                flavor_detail(f, mv.0, &links)
            } else {
                flavor_basic(f, mv.0, &links)
            }
        })
        .collect();
    let mut body = json!({"flavors": items});
    if flavors.len() == limit {
        if let Some(last) = flavors.last() {
            let base = if detail {
                format!("{}/flavors/detail", links.self_base)
            } else {
                format!("{}/flavors", links.self_base)
            };
            body["flavors_links"] = next_link(&base, &pairs, limit, &last.id);
        }
    }
    Ok(Json(body))
}

/// `GET /flavors`.
pub async fn flavor_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    mv: Mv,
    links: Links,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    list_common(svc, auth, mv, links, pairs, false).await
}

/// `GET /flavors/detail`.
pub async fn flavor_list_detail(
    State(svc): State<ComputeService>,
    auth: Auth,
    mv: Mv,
    links: Links,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    list_common(svc, auth, mv, links, pairs, true).await
}

/// `GET /flavors/{id}`.
pub async fn flavor_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let f = visible_flavor(&svc, &auth, &id).await?;
    Ok(Json(json!({"flavor": flavor_detail(&f, mv, &links)})))
}

/// Checks a flavor create body (`flavor_manage.create`, `create_v2_55`) into a flavor.
fn parse_create(body: &Value, mv: crate::Microversion) -> NovaResult<Flavor> {
    let f = schema::envelope(body, "flavor")?;
    let whole = &body["flavor"];
    let mut allowed = vec![
        "name",
        "id",
        "ram",
        "vcpus",
        "disk",
        "OS-FLV-EXT-DATA:ephemeral",
        "swap",
        "rxtx_factor",
        "os-flavor-access:is_public",
    ];
    if mv.at_least(55) {
        allowed.push("description");
    }
    schema::only(f, &allowed, Some("flavor"), whole)?;
    for key in ["name", "ram", "vcpus", "disk"] {
        schema::require(f, key, Some("flavor"), whole)?;
    }
    let name = schema::name(&f["name"], "name")?.trim().to_string();
    let id = match f.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(v @ Value::String(s)) => {
            schema::string(v, "id", 1, 255)?;
            let ok_chars = s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b". _-".contains(&b));
            if !ok_chars || s.starts_with(' ') || s.ends_with(' ') {
                return Err(fail(
                    Some("id"),
                    v,
                    format!("{} does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", repr(v)),
                ));
            }
            s.clone()
        }
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => {
            return Err(fail(
                Some("id"),
                v,
                format!("{} is not of type 'string', 'number', 'null'", repr(v)),
            ))
        }
    };
    let mut flavor = Flavor::new(
        &id,
        &name,
        schema::flavor_int(&f["ram"], "ram", 1)?,
        schema::flavor_int(&f["vcpus"], "vcpus", 1)?,
        schema::flavor_int(&f["disk"], "disk", 0)?,
    );
    if let Some(v) = f.get("OS-FLV-EXT-DATA:ephemeral") {
        flavor.ephemeral_gb = schema::flavor_int(v, "OS-FLV-EXT-DATA:ephemeral", 0)?;
    }
    if let Some(v) = f.get("swap") {
        flavor.swap = schema::flavor_int(v, "swap", 0)?;
    }
    if let Some(v) = f.get("rxtx_factor") {
        flavor.rxtx_factor = rxtx(v)?;
    }
    if let Some(v) = f.get("os-flavor-access:is_public") {
        flavor.is_public = schema::boolean(v, "os-flavor-access:is_public")?;
    }
    if let Some(v) = f.get("description") {
        flavor.description = description(v)?;
    }
    Ok(flavor)
}

/// `rxtx_factor`: a positive number (or a string of one) up to the largest SQL float.
fn rxtx(v: &Value) -> NovaResult<f64> {
    const SQL_SP_FLOAT_MAX: f64 = 3.40282e38;
    let n = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            let ok = match s.split_once('.') {
                Some((a, b)) => digits(a) && digits(b),
                None => digits(s),
            };
            if !ok {
                return Err(fail(
                    Some("rxtx_factor"),
                    v,
                    format!("{} does not match '^[0-9]+(\\.[0-9]+)?$'", repr(v)),
                ));
            }
            s.parse().unwrap_or(f64::NAN)
        }
        _ => {
            return Err(fail(
                Some("rxtx_factor"),
                v,
                format!("{} is not of type 'number', 'string'", repr(v)),
            ))
        }
    };
    if n.is_nan() || n <= 0.0 {
        return Err(fail(
            Some("rxtx_factor"),
            v,
            format!("{} is less than or equal to the minimum of 0", repr(v)),
        ));
    }
    if n > SQL_SP_FLOAT_MAX {
        return Err(fail(
            Some("rxtx_factor"),
            v,
            format!(
                "{} is greater than the maximum of {SQL_SP_FLOAT_MAX}",
                repr(v)
            ),
        ));
    }
    Ok(n)
}

/// A 2.55 `description`: null or up to 65535 printable characters.
fn description(v: &Value) -> NovaResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            schema::string(v, "description", 0, 65535)?;
            if !schema::valid_description(s) {
                return Err(fail(
                    Some("description"),
                    v,
                    format!("{} does not match the description pattern", repr(v)),
                ));
            }
            Ok(Some(s.clone()))
        }
        _ => Err(fail(
            Some("description"),
            v,
            format!("{} is not of type 'string', 'null'", repr(v)),
        )),
    }
}

/// `POST /flavors` (admin): 200 with the flavor; 409 for a taken id or name.
pub async fn flavor_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let flavor = parse_create(&body, mv)?;
    auth.require_admin("os_compute_api:os-flavor-manage:create")?;
    let f2 = flavor.clone();
    svc.store()
        .write_or_refuse(move |tx| {
            let f = f2.clone();
            Box::pin(async move {
                if db::get_flavor_tx(tx, &f.id).await?.is_some() {
                    return Ok(Err(NovaError::conflict(format!(
                        "Flavor with ID {} already exists.",
                        f.id
                    ))));
                }
                if db::flavor_name_taken_tx(tx, &f.name).await? {
                    return Ok(Err(NovaError::conflict(format!(
                        "Flavor with name {} already exists.",
                        f.name
                    ))));
                }
                db::insert_flavor(tx, &f).await?;
                Ok(Ok(()))
            })
        })
        .await??;
    Ok(Json(json!({"flavor": flavor_detail(&flavor, mv, &links)})))
}

/// `PUT /flavors/{id}` (2.55, admin): sets the description.
pub async fn flavor_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    if !mv.at_least(55) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    let f = schema::envelope(&body, "flavor")?;
    schema::only(f, &["description"], Some("flavor"), &body["flavor"])?;
    let desc = description(schema::require(
        f,
        "description",
        Some("flavor"),
        &body["flavor"],
    )?)?;
    auth.require_admin("os_compute_api:os-flavor-manage:update")?;
    let id2 = id.clone();
    let updated = svc
        .store()
        .write_or_refuse(move |tx| {
            let (id, desc) = (id2.clone(), desc.clone());
            Box::pin(async move {
                let Some(mut f) = db::get_flavor_tx(tx, &id).await? else {
                    return Ok(Err(NovaError::flavor_not_found(&id)));
                };
                f.description = desc;
                f.updated_at = Some(strata_core::time::now_micros());
                db::save_flavor(tx, &f).await?;
                Ok(Ok(f))
            })
        })
        .await??;
    Ok(Json(json!({"flavor": flavor_detail(&updated, mv, &links)})))
}

/// `DELETE /flavors/{id}` (admin): 202.
pub async fn flavor_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    auth.require_admin("os_compute_api:os-flavor-manage:delete")?;
    let id2 = id.clone();
    let gone = svc
        .store()
        .write(move |tx| {
            let id = id2.clone();
            Box::pin(async move { db::delete_flavor(tx, &id).await })
        })
        .await?;
    if !gone {
        return Err(NovaError::flavor_not_found(&id));
    }
    Ok(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- extra specs

/// The key pattern of extra specs, `^[a-zA-Z0-9-_:. ]{1,255}$`.
fn spec_key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 255
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:. ".contains(&b))
}

/// Checks `{key: value}` pairs of an extra-spec body and turns the values into the strings
/// Nova stores (`True`, `1.5`, …), validating them from 2.86.
fn parse_specs(
    m: &Map<String, Value>,
    field: &str,
    whole: &Value,
    mv: crate::Microversion,
) -> NovaResult<Vec<(String, String)>> {
    let bad: Vec<&str> = m
        .keys()
        .filter(|k| !spec_key_ok(k))
        .map(|k| k.as_str())
        .collect();
    if !bad.is_empty() {
        let names: Vec<String> = bad.iter().map(|k| format!("'{k}'")).collect();
        return Err(fail(
            Some(field),
            whole,
            format!(
                "Additional properties are not allowed ({} {} unexpected)",
                names.join(", "),
                if bad.len() == 1 { "was" } else { "were" }
            ),
        ));
    }
    let mut out = Vec::new();
    for (k, v) in m {
        let s = match v {
            Value::String(s) => {
                schema::string(v, k, 0, 255)?;
                s.clone()
            }
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Number(n) => {
                let s = n.to_string();
                if s.len() > 255 {
                    return Err(NovaError::bad_request(
                        "extra_specs value has more than 255 characters.",
                    ));
                }
                s
            }
            _ => {
                return Err(fail(
                    Some(k),
                    v,
                    format!("{} is not of type 'string', 'number', 'boolean'", repr(v)),
                ))
            }
        };
        if mv.at_least(86) {
            validate_extra_spec(k, &s).map_err(NovaError::bad_request)?;
        }
        out.push((k.clone(), s));
    }
    Ok(out)
}

async fn merge_specs(
    svc: &ComputeService,
    id: &str,
    specs: Vec<(String, String)>,
) -> NovaResult<()> {
    let id = id.to_string();
    svc.store()
        .write_or_refuse(move |tx| {
            let (id, specs) = (id.clone(), specs.clone());
            Box::pin(async move {
                let Some(mut f) = db::get_flavor_tx(tx, &id).await? else {
                    return Ok(Err(NovaError::flavor_not_found(&id)));
                };
                for (k, v) in specs {
                    f.extra_specs.insert(k, Value::String(v));
                }
                f.updated_at = Some(strata_core::time::now_micros());
                db::save_flavor(tx, &f).await?;
                Ok(Ok(()))
            })
        })
        .await??;
    Ok(())
}

/// `GET /flavors/{id}/os-extra_specs`.
pub async fn extra_specs_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let f = visible_flavor(&svc, &auth, &id).await?;
    Ok(Json(json!({"extra_specs": f.extra_specs})))
}

/// `POST /flavors/{id}/os-extra_specs` (admin): merges, answers the body.
pub async fn extra_specs_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = schema::envelope(&body, "extra_specs")?;
    let specs = parse_specs(m, "extra_specs", &body["extra_specs"], mv)?;
    auth.require_admin("os_compute_api:os-flavor-extra-specs:create")?;
    visible_flavor(&svc, &auth, &id).await?;
    merge_specs(&svc, &id, specs).await?;
    Ok(Json(body))
}

/// `PUT /flavors/{id}/os-extra_specs/{key}` (admin): one key, the URL's.
pub async fn extra_spec_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, key)): Path<(String, String)>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = schema::object(&body, None)?;
    if m.is_empty() {
        return Err(fail(
            None,
            &body,
            format!("{} does not have enough properties", repr(&body)),
        ));
    }
    if m.len() > 1 {
        return Err(fail(
            None,
            &body,
            format!("{} has too many properties", repr(&body)),
        ));
    }
    let specs = parse_specs(m, "extra_specs", &body, mv)?;
    auth.require_admin("os_compute_api:os-flavor-extra-specs:update")?;
    if !m.contains_key(&key) {
        return Err(NovaError::bad_request("Request body and URI mismatch"));
    }
    visible_flavor(&svc, &auth, &id).await?;
    merge_specs(&svc, &id, specs).await?;
    Ok(Json(body))
}

fn no_such_spec(id: &str, key: &str) -> NovaError {
    NovaError::not_found(format!("Flavor {id} has no extra specs with key {key}."))
}

/// `GET /flavors/{id}/os-extra_specs/{key}`.
pub async fn extra_spec_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> NovaResult<Json<Value>> {
    let f = visible_flavor(&svc, &auth, &id).await?;
    let v = f
        .extra_specs
        .get(&key)
        .ok_or_else(|| no_such_spec(&id, &key))?;
    let mut out = Map::new();
    out.insert(key, v.clone());
    Ok(Json(Value::Object(out)))
}

/// `DELETE /flavors/{id}/os-extra_specs/{key}` (admin): 200 without a body.
pub async fn extra_spec_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> NovaResult<StatusCode> {
    auth.require_admin("os_compute_api:os-flavor-extra-specs:delete")?;
    visible_flavor(&svc, &auth, &id).await?;
    svc.store()
        .write_or_refuse(move |tx| {
            let (id, key) = (id.clone(), key.clone());
            Box::pin(async move {
                let Some(mut f) = db::get_flavor_tx(tx, &id).await? else {
                    return Ok(Err(NovaError::flavor_not_found(&id)));
                };
                if f.extra_specs.remove(&key).is_none() {
                    return Ok(Err(no_such_spec(&id, &key)));
                }
                f.updated_at = Some(strata_core::time::now_micros());
                db::save_flavor(tx, &f).await?;
                Ok(Ok(()))
            })
        })
        .await??;
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------- access

fn access_body(id: &str, projects: &[String]) -> Value {
    let list: Vec<Value> = projects
        .iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    json!({"flavor_access": list})
}

/// `GET /flavors/{id}/os-flavor-access` (admin): 404 for public flavors.
pub async fn flavor_access_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-flavor-access")?;
    let f = visible_flavor(&svc, &auth, &id).await?;
    if f.is_public {
        return Err(NovaError::not_found(
            "Access list not available for public flavors.",
        ));
    }
    Ok(Json(access_body(
        &id,
        &db::flavor_access(svc.store(), &id).await?,
    )))
}

/// `POST /flavors/{id}/action`: `addTenantAccess` / `removeTenantAccess` (admin).
pub async fn flavor_action(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Response> {
    let top = schema::object(&body, None)?;
    let action = ["addTenantAccess", "removeTenantAccess"]
        .into_iter()
        .find(|a| top.contains_key(*a));
    let Some(action) = action else {
        let name = top.keys().next().cloned().unwrap_or_default();
        return Err(NovaError::bad_request(format!(
            "There is no such action: {name}"
        )));
    };
    schema::only(top, &[action], None, &body)?;
    let inner = schema::object(&top[action], Some(action))?;
    schema::only(inner, &["tenant"], Some(action), &top[action])?;
    let tenant = schema::string(
        schema::require(inner, "tenant", Some(action), &top[action])?,
        "tenant",
        1,
        255,
    )?
    .to_string();
    let add = action == "addTenantAccess";
    auth.require_admin(if add {
        "os_compute_api:os-flavor-access:add_tenant_access"
    } else {
        "os_compute_api:os-flavor-access:remove_tenant_access"
    })?;
    let id2 = id.clone();
    svc.store()
        .write_or_refuse(move |tx| {
            let (id, tenant) = (id2.clone(), tenant.clone());
            Box::pin(async move {
                let Some(f) = db::get_flavor_tx(tx, &id).await? else {
                    return Ok(Err(NovaError::flavor_not_found(&id)));
                };
                if add && f.is_public {
                    return Ok(Err(NovaError::conflict(
                        "Can not add access to a public flavor.",
                    )));
                }
                if !db::set_flavor_access(tx, &id, &tenant, add).await? {
                    return Ok(Err(if add {
                        NovaError::conflict(format!(
                            "Flavor access already exists for flavor {id} and project {tenant} \
                             combination."
                        ))
                    } else {
                        NovaError::not_found(format!(
                            "Flavor access not found for {id} / {tenant} combination."
                        ))
                    }));
                }
                Ok(Ok(()))
            })
        })
        .await??;
    let list = db::flavor_access(svc.store(), &id).await?;
    Ok(Json(access_body(&id, &list)).into_response())
}
