//! `/v3/{project_id}/types`: volume types (`/types/default` is `__DEFAULT__`), their extra
//! specs, and the access lists of private types. Changes are admin-only; non-admins see public
//! types and the private ones their project was given, with only the user-visible extra specs.

use super::views::{list_params, page, SortVal};
use crate::api::volumes::{opt_string, parse_bool};
use crate::db;
use crate::error::{CinderError, CinderResult};
use crate::extract::{Auth, Body};
use crate::model::{VolumeType, DEFAULT_TYPE_NAME};
use crate::work;
use crate::VolumeService;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use strata_core::time::now_micros;

pub fn routes() -> Router<VolumeService> {
    Router::new()
        .route("/types", get(type_list).post(type_create))
        .route(
            "/types/{type_id}",
            get(type_show).put(type_update).delete(type_delete),
        )
        .route(
            "/types/{type_id}/extra_specs",
            get(extra_specs_list).post(extra_specs_create),
        )
        .route(
            "/types/{type_id}/extra_specs/{key}",
            get(extra_spec_show)
                .put(extra_spec_update)
                .delete(extra_spec_delete),
        )
        .route("/types/{type_id}/os-volume-type-access", get(access_list))
        .route("/types/{type_id}/action", post(type_action))
}

/// Extra specs every caller may read (Cinder's `USER_VISIBLE_EXTRA_SPECS`).
const USER_VISIBLE_EXTRA_SPECS: &[&str] = &[
    "RESKEY:availability_zones",
    "multiattach",
    "replication_enabled",
];

/// The extra specs the caller may see.
fn visible_specs(t: &VolumeType, admin: bool) -> Map<String, Value> {
    t.extra_specs
        .iter()
        .filter(|(k, _)| admin || USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// How a type is shown by `GET` (one or a list).
fn view(t: &VolumeType, admin: bool) -> Value {
    let mut o = json!({
        "id": t.id,
        "name": t.name,
        "is_public": t.is_public,
        "description": t.description,
        "extra_specs": visible_specs(t, admin),
        "os-volume-type-access:is_public": t.is_public,
    });
    if admin {
        o["qos_specs_id"] = Value::Null;
    }
    o
}

/// How a type is shown after create (with the access attribute) and update (without).
fn manage_view(t: &VolumeType, with_access: bool) -> Value {
    let mut o = json!({
        "id": t.id,
        "name": t.name,
        "is_public": t.is_public,
        "description": t.description,
        "extra_specs": t.extra_specs,
    });
    if with_access {
        o["os-volume-type-access:is_public"] = json!(t.is_public);
    }
    o
}

fn require_admin(auth: &Auth, rule: &str) -> CinderResult<()> {
    if auth.admin() {
        Ok(())
    } else {
        Err(CinderError::policy(rule))
    }
}

/// Whether the caller's project may use the private type `t`.
async fn accessible(svc: &VolumeService, auth: &Auth, t: &VolumeType) -> CinderResult<bool> {
    if t.is_public || auth.admin() {
        return Ok(true);
    }
    let allowed = db::type_access(svc.store(), &t.id).await?;
    Ok(allowed.iter().any(|p| p == auth.project()))
}

/// The type `id` (or the default type for `default`) if the caller may see it; 404 otherwise.
async fn visible(svc: &VolumeService, auth: &Auth, id: &str) -> CinderResult<VolumeType> {
    let t = if id == "default" {
        db::get_type_by_name(svc.store(), DEFAULT_TYPE_NAME)
            .await?
            .ok_or_else(|| CinderError::not_found("Default volume type can not be found."))?
    } else {
        db::get_type(svc.store(), id)
            .await?
            .ok_or_else(|| CinderError::type_not_found(id))?
    };
    if !accessible(svc, auth, &t).await? {
        return Err(CinderError::type_not_found(id));
    }
    Ok(t)
}

/// The type `id` whatever its visibility (for admin-only changes); 404 when absent.
async fn existing(svc: &VolumeService, id: &str) -> CinderResult<VolumeType> {
    db::get_type(svc.store(), id)
        .await?
        .ok_or_else(|| CinderError::type_not_found(id))
}

/// Refuses keys of `m` outside `allowed` as the schema's `additionalProperties: false` does.
fn only_keys(m: &Map<String, Value>, allowed: &[&str]) -> CinderResult<()> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(CinderError::invalid_input(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

fn strict_bool(m: &Map<String, Value>, key: &str) -> CinderResult<Option<bool>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
            CinderError::invalid_input(format!("{v} is not a valid boolean for {key}"))
        }),
    }
}

/// Validates extra specs: keys of the allowed characters (`/` and spaces only when
/// `spaces`), values strings of at most 255 characters or null. Null values are dropped.
fn parse_specs(v: &Value, spaces: bool) -> CinderResult<Map<String, Value>> {
    let Value::Object(m) = v else {
        return Err(CinderError::invalid_input(format!(
            "{v} is not of type 'object'"
        )));
    };
    let mut out = Map::new();
    for (k, val) in m {
        let key_ok = !k.is_empty()
            && k.chars().count() <= 255
            && k.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || "-_:.".contains(c)
                    || (spaces && (c == ' ' || c == '/'))
            });
        if !key_ok {
            return Err(CinderError::invalid_input(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        match val {
            Value::Null => {}
            Value::String(s) if s.chars().count() <= 255 => {
                out.insert(k.clone(), val.clone());
            }
            Value::String(_) => {
                return Err(CinderError::invalid_input(format!(
                    "The value of extra spec {k} is longer than 255 characters"
                )))
            }
            other => {
                return Err(CinderError::invalid_input(format!(
                    "{other} is not of type 'string', 'null'"
                )))
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ types

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "is_public",
    "description",
    "created_at",
    "updated_at",
];

fn sort_value(t: &VolumeType, key: &str) -> SortVal {
    match key {
        "id" => SortVal::Text(t.id.clone()),
        "name" => SortVal::Text(t.name.clone()),
        "is_public" => SortVal::Int(t.is_public as i64),
        "description" => t
            .description
            .clone()
            .map(SortVal::Text)
            .unwrap_or(SortVal::Null),
        "created_at" => SortVal::Int(t.created_at),
        "updated_at" => SortVal::Int(t.updated_at),
        _ => SortVal::Null,
    }
}

/// `GET /types`: public types and the private ones the caller's project may use; admins may
/// ask for `is_public=false` (private only) or `is_public=None` (all).
pub async fn type_list(
    State(svc): State<VolumeService>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let p = list_params(&q, SORT_KEYS)?;
    // `None`: every type; `Some(true)`: public or granted; `Some(false)`: private only.
    let want: Option<bool> = if auth.admin() {
        match q.get("is_public") {
            None => Some(true),
            Some(v) if v.eq_ignore_ascii_case("none") => None,
            Some(v) => Some(parse_bool(&json!(v)).ok_or_else(|| {
                CinderError::invalid_input(format!("Invalid is_public filter [{v}]"))
            })?),
        }
    } else {
        Some(true)
    };
    let granted = db::types_accessible(svc.store(), auth.project()).await?;
    let mut types = db::list_types(svc.store()).await?;
    types.retain(|t| match want {
        None => true,
        Some(true) => t.is_public || granted.contains(&t.id),
        Some(false) => !t.is_public,
    });
    if let Some(m) = &p.marker {
        if !types.iter().any(|t| &t.id == m) {
            return Err(CinderError::not_found(format!(
                "Marker {m} could not be found."
            )));
        }
    }
    let types = page(types, &p, sort_value, |t| t.id.as_str())?;
    let admin = auth.admin();
    Ok(Json(json!({
        "volume_types": types.iter().map(|t| view(t, admin)).collect::<Vec<_>>()
    })))
}

/// `GET /types/{id}` (and `/types/default`).
pub async fn type_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let t = visible(&svc, &auth, &p["type_id"]).await?;
    Ok(Json(json!({"volume_type": view(&t, auth.admin())})))
}

/// `POST /types` (admin): 200 with the new type; 409 when the name is taken.
pub async fn type_create(
    State(svc): State<VolumeService>,
    auth: Auth,
    body: Body,
) -> CinderResult<Json<Value>> {
    if let Some(o) = body.0.as_object() {
        only_keys(o, &["volume_type"])?;
    }
    let m = body.entity("volume_type")?.clone();
    only_keys(
        &m,
        &[
            "name",
            "description",
            "extra_specs",
            "os-volume-type-access:is_public",
        ],
    )?;
    let name = match m.get("name") {
        None => return Err(CinderError::invalid_input("'name' is a required property")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(CinderError::invalid_input(
                "Name has a minimum character requirement of 1.",
            ))
        }
        Some(Value::String(s)) if s.chars().count() > 255 => {
            return Err(CinderError::invalid_input(
                "Name has more than 255 characters.",
            ))
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(CinderError::invalid_input(format!(
                "{other} is not of type 'string'"
            )))
        }
    };
    let description = opt_string(&m, "description")?;
    let extra_specs = match m.get("extra_specs") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => parse_specs(v, true)?,
    };
    let is_public = strict_bool(&m, "os-volume-type-access:is_public")?.unwrap_or(true);
    require_admin(&auth, "volume_extension:types_manage")?;
    if db::get_type_by_name(svc.store(), &name).await?.is_some() {
        return Err(CinderError::conflict(format!(
            "Volume Type {name} already exists."
        )));
    }
    let now = now_micros();
    let t = VolumeType {
        id: strata_core::ids::uuid(),
        name: name.clone(),
        description,
        is_public,
        extra_specs,
        created_at: now,
        updated_at: now,
    };
    let t2 = t.clone();
    work::write(&svc, move |tx| {
        let t = t2.clone();
        Box::pin(async move {
            db::insert_type(tx, &t).await?;
            Ok(Ok(()))
        })
    })
    .await
    .map_err(|e| {
        if e.status == StatusCode::CONFLICT {
            CinderError::conflict(format!("Volume Type {name} already exists."))
        } else {
            e
        }
    })?;
    Ok(Json(json!({"volume_type": manage_view(&t, true)})))
}

/// `PUT /types/{id}` (admin): name, description, is_public.
pub async fn type_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    if let Some(o) = body.0.as_object() {
        only_keys(o, &["volume_type"])?;
    }
    let m = body.entity("volume_type")?.clone();
    only_keys(&m, &["name", "description", "is_public"])?;
    let name = match m.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() || s.chars().count() > 255 => {
            return Err(CinderError::invalid_input(
                "Name must be 1 to 255 characters long.",
            ))
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(CinderError::bad_request(
                "Volume type name can not be empty.",
            ))
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(CinderError::invalid_input(format!(
                "{other} is not of type 'string', 'null'"
            )))
        }
    };
    let description = opt_string(&m, "description")?;
    let is_public = match m.get("is_public") {
        None | Some(Value::Null) => None,
        Some(_) => strict_bool(&m, "is_public")?,
    };
    require_admin(&auth, "volume_extension:types_manage")?;
    if name.is_none() && description.is_none() && is_public.is_none() {
        return Err(CinderError::bad_request(
            "Specify volume type name, description, is_public or a combination thereof.",
        ));
    }
    let id = p["type_id"].clone();
    let cur = existing(&svc, &id).await?;
    if let Some(n) = &name {
        if cur.name == DEFAULT_TYPE_NAME && n != DEFAULT_TYPE_NAME {
            return Err(CinderError::bad_request(
                "The default volume type cannot be renamed.",
            ));
        }
        if let Some(other) = db::get_type_by_name(svc.store(), n).await? {
            if other.id != id {
                return Err(CinderError::conflict(format!(
                    "Volume Type {n} already exists."
                )));
            }
        }
    }
    let t = update_type(&svc, &id, move |t| {
        if let Some(n) = &name {
            t.name = n.clone();
        }
        if let Some(d) = &description {
            t.description = Some(d.clone());
        }
        if let Some(b) = is_public {
            t.is_public = b;
        }
        Ok(())
    })
    .await?;
    Ok(Json(json!({"volume_type": manage_view(&t, false)})))
}

/// Runs `f` on the type `id` inside a write and saves it, unless `f` refuses. With
/// `unused`, refuses (400) while a volume uses the type, as Cinder does for extra spec
/// changes.
async fn update_type_checked<F>(
    svc: &VolumeService,
    id: &str,
    unused: bool,
    f: F,
) -> CinderResult<VolumeType>
where
    F: Fn(&mut VolumeType) -> CinderResult<()> + Send + Sync + Clone + 'static,
{
    let id = id.to_string();
    work::write(svc, move |tx| {
        let (id, f) = (id.clone(), f.clone());
        Box::pin(async move {
            let Some(mut t) = get_type_tx(tx, &id).await? else {
                return Ok(Err(CinderError::type_not_found(&id)));
            };
            if unused && db::type_in_use(tx, &id).await? {
                return Ok(Err(CinderError::bad_request(
                    "Volume Type is currently in use.",
                )));
            }
            if let Err(e) = f(&mut t) {
                return Ok(Err(e));
            }
            t.updated_at = now_micros().max(t.updated_at + 1);
            db::save_type(tx, &t).await?;
            Ok(Ok(t))
        })
    })
    .await
}

async fn update_type<F>(svc: &VolumeService, id: &str, f: F) -> CinderResult<VolumeType>
where
    F: Fn(&mut VolumeType) -> CinderResult<()> + Send + Sync + Clone + 'static,
{
    update_type_checked(svc, id, false, f).await
}

/// The type `id` read inside a write.
async fn get_type_tx(
    tx: &mut strata_store::Tx,
    id: &str,
) -> strata_core::Result<Option<VolumeType>> {
    db::get_type_tx(tx, id).await
}

/// `DELETE /types/{id}` (admin): 202; 400 for the default type or one still in use.
pub async fn type_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<StatusCode> {
    require_admin(&auth, "volume_extension:types_manage")?;
    let id = p["type_id"].clone();
    let t = existing(&svc, &id).await?;
    if t.name == DEFAULT_TYPE_NAME {
        return Err(CinderError::bad_request(format!(
            "The volume type {id} is a default volume type and cannot be deleted."
        )));
    }
    work::write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            if get_type_tx(tx, &id).await?.is_none() {
                return Ok(Err(CinderError::type_not_found(&id)));
            }
            if db::type_in_use(tx, &id).await? {
                return Ok(Err(CinderError::bad_request(
                    "Target volume type is still in use.",
                )));
            }
            db::delete_type_row(tx, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}

// ------------------------------------------------------------------ extra specs

/// `GET /types/{id}/extra_specs`.
pub async fn extra_specs_list(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let t = visible(&svc, &auth, &p["type_id"]).await?;
    Ok(Json(
        json!({"extra_specs": visible_specs(&t, auth.admin())}),
    ))
}

fn no_cacheable_multiattach(specs: &Map<String, Value>) -> CinderResult<()> {
    let on = |k: &str| specs.get(k).and_then(Value::as_str) == Some("<is> True");
    if on("multiattach") && on("cacheable") {
        return Err(CinderError::bad_request(
            "cacheable cannot be set with multiattach.",
        ));
    }
    Ok(())
}

/// `POST /types/{id}/extra_specs` (admin): merges; answers the body.
pub async fn extra_specs_create(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    let Some(o) = body.0.as_object() else {
        return Err(CinderError::invalid_input(format!(
            "{} is not of type 'object'",
            body.0
        )));
    };
    only_keys(o, &["extra_specs"])?;
    let raw = o
        .get("extra_specs")
        .ok_or_else(|| CinderError::invalid_input("'extra_specs' is a required property"))?
        .clone();
    let Value::Object(raw_map) = &raw else {
        return Err(CinderError::invalid_input(format!(
            "{raw} is not of type 'object'"
        )));
    };
    let specs = parse_specs(&raw, false)?;
    require_admin(&auth, "volume_extension:types_extra_specs:create")?;
    let id = p["type_id"].clone();
    existing(&svc, &id).await?;
    let nulls: Vec<String> = raw_map
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    update_type_checked(&svc, &id, true, move |t| {
        let mut merged = t.extra_specs.clone();
        for (k, v) in &specs {
            merged.insert(k.clone(), v.clone());
        }
        for k in &nulls {
            merged.remove(k);
        }
        no_cacheable_multiattach(&merged)?;
        t.extra_specs = merged;
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "extra_specs": raw })))
}

/// `GET /types/{id}/extra_specs/{key}`: `{key: value}`.
pub async fn extra_spec_show(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    let id = &p["type_id"];
    let key = &p["key"];
    let t = visible(&svc, &auth, id).await?;
    match visible_specs(&t, auth.admin()).get(key) {
        Some(v) => Ok(Json(json!({ key.clone(): v }))),
        None => Err(CinderError::not_found(format!(
            "Volume Type {id} has no extra specs with key {key}."
        ))),
    }
}

/// `PUT /types/{id}/extra_specs/{key}` (admin) with `{key: value}`.
pub async fn extra_spec_update(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<Json<Value>> {
    let Value::Object(m) = &body.0 else {
        return Err(CinderError::invalid_input(format!(
            "{} is not of type 'object'",
            body.0
        )));
    };
    if m.len() != 1 {
        return Err(CinderError::invalid_input(format!(
            "{} must have exactly one property",
            body.0
        )));
    }
    let specs = parse_specs(&body.0, false)?;
    require_admin(&auth, "volume_extension:types_extra_specs:update")?;
    let id = p["type_id"].clone();
    existing(&svc, &id).await?;
    let key = p["key"].clone();
    if !m.contains_key(&key) {
        return Err(CinderError::bad_request("Request body and URI mismatch"));
    }
    let k2 = key.clone();
    update_type_checked(&svc, &id, true, move |t| {
        let mut merged = t.extra_specs.clone();
        match specs.get(&k2) {
            Some(v) => {
                merged.insert(k2.clone(), v.clone());
            }
            None => {
                merged.remove(&k2);
            }
        }
        no_cacheable_multiattach(&merged)?;
        t.extra_specs = merged;
        Ok(())
    })
    .await?;
    Ok(Json(body.0.clone()))
}

/// `DELETE /types/{id}/extra_specs/{key}` (admin): 202.
pub async fn extra_spec_delete(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<StatusCode> {
    let id = p["type_id"].clone();
    existing(&svc, &id).await?;
    require_admin(&auth, "volume_extension:types_extra_specs:delete")?;
    let key = p["key"].clone();
    let id2 = id.clone();
    update_type_checked(&svc, &id, true, move |t| {
        if t.extra_specs.remove(&key).is_none() {
            return Err(CinderError::not_found(format!(
                "Volume Type {id2} has no extra specs with key {key}."
            )));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}

// ------------------------------------------------------------------ access

/// `GET /types/{id}/os-volume-type-access` (admin): the projects a private type was given.
pub async fn access_list(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> CinderResult<Json<Value>> {
    require_admin(
        &auth,
        "volume_extension:volume_type_access:get_all_for_type",
    )?;
    let t = existing(&svc, &p["type_id"]).await?;
    if t.is_public {
        return Err(CinderError::not_found(
            "Access list not available for public volume types.",
        ));
    }
    let projects = db::type_access(svc.store(), &t.id).await?;
    Ok(Json(json!({
        "volume_type_access": projects
            .iter()
            .map(|p| json!({"volume_type_id": t.id, "project_id": p}))
            .collect::<Vec<_>>()
    })))
}

/// `POST /types/{id}/action`: `addProjectAccess` / `removeProjectAccess` (admin), 202.
pub async fn type_action(
    State(svc): State<VolumeService>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
    body: Body,
) -> CinderResult<StatusCode> {
    let Some(o) = body.0.as_object() else {
        return Err(CinderError::bad_request("Malformed request body"));
    };
    let (action, add) = if o.contains_key("addProjectAccess") {
        ("addProjectAccess", true)
    } else if o.contains_key("removeProjectAccess") {
        ("removeProjectAccess", false)
    } else {
        let name = o.keys().next().cloned().unwrap_or_default();
        return Err(CinderError::bad_request(format!(
            "There is no such action: {name}"
        )));
    };
    only_keys(o, &[action])?;
    let m = body.entity(action)?;
    only_keys(m, &["project"])?;
    let project = match m.get("project") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 255 => s.clone(),
        Some(other) => {
            return Err(CinderError::invalid_input(format!(
                "{other} is not a valid project for {action}"
            )))
        }
        None => {
            return Err(CinderError::invalid_input(
                "'project' is a required property",
            ))
        }
    };
    require_admin(
        &auth,
        if add {
            "volume_extension:volume_type_access:addProjectAccess"
        } else {
            "volume_extension:volume_type_access:removeProjectAccess"
        },
    )?;
    let id = p["type_id"].clone();
    let t = existing(&svc, &id).await?;
    if add && t.is_public {
        return Err(CinderError::bad_request(
            "Invalid volume type: Type access modification is not applicable to public volume \
             type.",
        ));
    }
    work::write(&svc, move |tx| {
        let (id, project) = (id.clone(), project.clone());
        Box::pin(async move {
            if get_type_tx(tx, &id).await?.is_none() {
                return Ok(Err(CinderError::type_not_found(&id)));
            }
            if db::set_type_access(tx, &id, &project, add).await? {
                return Ok(Ok(()));
            }
            Ok(Err(if add {
                CinderError::conflict(format!(
                    "Volume type access for {id} / {project} combination already exists."
                ))
            } else {
                CinderError::not_found(format!(
                    "Volume type access not found for {id} / {project} combination."
                ))
            }))
        })
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}
