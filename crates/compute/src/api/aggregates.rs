//! Host aggregates (`os-aggregates`, admin only): list, create, show, update, delete, and the
//! `add_host`, `remove_host` and `set_metadata` actions, plus `POST /os-aggregates/{id}/images`
//! (2.81). Bodies are checked as Nova's schemas check them before policy, as Nova's decorators
//! run; the rules (zone conflicts, a non-empty aggregate refusing deletion, hosts that must
//! exist) are Nova's `AggregateAPI` rules with its messages. Each change is one store write
//! that also moves the zone of the hosts it touches (`crate::aggregates`); membership is then
//! mirrored into placement.

use super::views::nova_time;
use crate::aggregates::{self as agg, Aggregate, AZ_KEY};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv};
use crate::schema::{self, fail, repr};
use crate::version::Microversion;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use strata_core::time::now_micros;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-aggregates", get(aggregate_list).post(aggregate_create))
        .route(
            "/os-aggregates/{id}",
            get(aggregate_show)
                .put(aggregate_update)
                .delete(aggregate_delete),
        )
        .route("/os-aggregates/{id}/action", post(aggregate_action))
        .route("/os-aggregates/{id}/images", post(aggregate_images))
}

// ------------------------------------------------------------------ shared pieces

/// The aggregate as Nova's `_marshall_aggregate` shows it (`uuid` from 2.41); create's answer
/// leaves out `hosts` and `metadata`.
fn view(a: &Aggregate, mv: Microversion, full: bool) -> Value {
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "availability_zone": a.availability_zone(),
        "created_at": nova_time(a.created_at),
        "updated_at": a.updated_at.map(nova_time),
        "deleted_at": null,
        "deleted": false,
    });
    if full {
        v["hosts"] = json!(a.hosts);
        v["metadata"] = json!(a.metadata);
    }
    if mv.at_least(41) {
        v["uuid"] = json!(a.uuid);
    }
    v
}

/// Nova's `utils.validate_integer(id, 'id')`.
fn parse_id(id: &str) -> NovaResult<i64> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| NovaError::invalid_input("id must be an integer"))
}

fn not_found(id: i64) -> NovaError {
    NovaError::not_found(format!("Aggregate {id} could not be found."))
}

/// Nova's `az_name`: a name (printable, no surrounding whitespace) without `:`.
fn az_name(v: &Value, field: &str) -> NovaResult<String> {
    let s = schema::string(v, field, 1, 255)?;
    if !schema::valid_name(s) || s.contains(':') {
        return Err(fail(
            Some(field),
            v,
            format!(
                "{} does not match '^(?! )[printable, no :]*(?<! )$'",
                repr(v)
            ),
        ));
    }
    Ok(s.to_string())
}

/// `availability_zone`: an `az_name` or null.
fn opt_az(v: &Value) -> NovaResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(_) => az_name(v, "availability_zone").map(Some),
        _ => Err(fail(
            Some("availability_zone"),
            v,
            format!("{} is not valid under any of the given schemas", repr(v)),
        )),
    }
}

/// Nova's `parameter_types.fqdn` (the `host` of `add_host`/`remove_host`).
fn fqdn(v: &Value) -> NovaResult<String> {
    let s = schema::string(v, "host", 1, 255)?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(fail(
            Some("host"),
            v,
            format!("{} does not match '^[a-zA-Z0-9-._]*$'", repr(v)),
        ));
    }
    Ok(s.to_string())
}

/// Nova's `metadata_with_null`: keys of 1..255 of `[a-zA-Z0-9-_:. ]`, values strings of at
/// most 255 characters or null (null removes the key).
fn metadata_with_null(v: &Value) -> NovaResult<BTreeMap<String, Option<String>>> {
    let m = schema::object(v, Some("metadata"))?;
    let bad: Vec<String> = m
        .keys()
        .filter(|k| {
            k.is_empty()
                || k.chars().count() > 255
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c))
        })
        .map(|k| format!("'{k}'"))
        .collect();
    if !bad.is_empty() {
        return Err(fail(
            Some("metadata"),
            v,
            format!(
                "Additional properties are not allowed ({} {} unexpected)",
                bad.join(", "),
                if bad.len() == 1 { "was" } else { "were" }
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, x) in m {
        let val = match x {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
            Value::String(_) => {
                return Err(fail(Some(k), x, format!("{} is too long", repr(x))));
            }
            _ => {
                return Err(fail(
                    Some(k),
                    x,
                    format!("{} is not of type 'string', 'null'", repr(x)),
                ))
            }
        };
        out.insert(k.clone(), val);
    }
    Ok(out)
}

/// How a refused zone change reads (`_raise_invalid_aggregate_exc`).
#[derive(Clone, Copy)]
enum Action {
    Add,
    Update,
    UpdateMeta,
}

fn invalid_action(action: Action, id: i64, reason: &str) -> NovaError {
    let what = match action {
        Action::Add => "add host to aggregate",
        Action::Update => "update aggregate",
        Action::UpdateMeta => "update metadata of aggregate",
    };
    let msg = format!("Cannot {what} {id}. Reason: {reason}.");
    match action {
        // The add_host route answers InvalidAggregateAction with 409, the others with 400.
        Action::Add => NovaError::conflict(msg),
        _ => NovaError::bad_request(msg),
    }
}

/// Python's `repr` of a list of strings.
fn py_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Nova's `is_safe_to_update_az`: a zone in `metadata` must be named, must not put any of
/// `hosts` (the aggregate's own when `None`) in two zones, and with `check_instances` must not
/// move hosts that run servers to another zone.
async fn check_az(
    tx: &mut strata_store::Tx,
    all: &[Aggregate],
    metadata: &BTreeMap<String, Option<String>>,
    a: &Aggregate,
    hosts: Option<&[String]>,
    action: Action,
    check_instances: bool,
) -> strata_core::Result<Result<(), NovaError>> {
    let Some(new) = metadata.get(AZ_KEY) else {
        return Ok(Ok(()));
    };
    let Some(new) = new.as_deref().filter(|z| !z.is_empty()) else {
        return Ok(Err(invalid_action(
            action,
            a.id,
            &format!(
                "Aggregate {} does not support empty named availability zone",
                a.name
            ),
        )));
    };
    let hosts: Vec<String> = hosts.map(<[String]>::to_vec).unwrap_or(a.hosts.clone());
    let conflicting: Vec<String> = all
        .iter()
        .filter(|o| o.id != a.id && o.hosts.iter().any(|h| hosts.contains(h)))
        .filter_map(|o| o.availability_zone())
        .filter(|z| *z != new)
        .map(String::from)
        .collect();
    if !conflicting.is_empty() {
        return Ok(Err(invalid_action(
            action,
            a.id,
            &format!(
                "One or more hosts already in availability zone(s) {}",
                py_list(&conflicting)
            ),
        )));
    }
    if check_instances && a.availability_zone() != Some(new) {
        for h in &hosts {
            let n = strata_store::sqlx::query(
                "SELECT COUNT(*) AS n FROM compute_server WHERE host = $1 AND deleted = 0",
            )
            .bind(h)
            .fetch_one(tx.conn())
            .await
            .map_err(strata_store::from_sqlx)?;
            let n: i64 = strata_store::Row::try_get(&n, "n").map_err(strata_store::from_sqlx)?;
            if n > 0 {
                return Ok(Err(invalid_action(
                    action,
                    a.id,
                    "One or more hosts contain instances in this zone",
                )));
            }
        }
    }
    Ok(Ok(()))
}

/// Applies `metadata` (null values remove keys).
fn apply_metadata(a: &mut Aggregate, metadata: &BTreeMap<String, Option<String>>) {
    for (k, v) in metadata {
        match v {
            Some(v) => {
                a.metadata.insert(k.clone(), v.clone());
            }
            None => {
                a.metadata.remove(k);
            }
        }
    }
}

/// Whether `host` runs a `nova-compute` service here.
async fn compute_host_exists(svc: &ComputeService, host: &str) -> NovaResult<bool> {
    Ok(crate::hosts::services(svc.store())
        .await?
        .iter()
        .any(|s| s.host == host && s.binary == "nova-compute"))
}

/// Runs `f` on aggregate `id` inside one store write (it may refuse), saves it, and moves
/// the zone of the hosts in `touched(old, new)`; returns the aggregate as written.
async fn change<F>(svc: &ComputeService, id: i64, f: F) -> NovaResult<Aggregate>
where
    F: for<'t> Fn(
            &'t mut strata_store::Tx,
            Vec<Aggregate>,
            Aggregate,
        ) -> strata_store::TxFuture<'t, Result<Aggregate, NovaError>>
        + Send
        + Sync
        + Clone
        + 'static,
{
    let zone = svc.config().availability_zone.clone();
    let out = svc
        .store()
        .write_or_refuse(move |tx| {
            let (f, zone) = (f.clone(), zone.clone());
            Box::pin(async move {
                let all = agg::list_tx(tx).await?;
                let Some(old) = all.iter().find(|a| a.id == id).cloned() else {
                    return Ok(Err(not_found(id)));
                };
                let mut new = match f(tx, all, old.clone()).await? {
                    Ok(a) => a,
                    Err(e) => return Ok(Err(e)),
                };
                agg::save_tx(tx, &mut new).await?;
                let touched: BTreeSet<String> =
                    old.hosts.iter().chain(new.hosts.iter()).cloned().collect();
                agg::sync_zones(tx, &zone, &touched).await?;
                Ok(Ok(new))
            })
        })
        .await??;
    svc.live().hosts_changed();
    Ok(out)
}

// ------------------------------------------------------------------ list, show

/// `GET /os-aggregates`.
pub async fn aggregate_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-aggregates:index")?;
    let list = agg::list(svc.store()).await?;
    Ok(Json(json!({
        "aggregates": list.iter().map(|a| view(a, mv, true)).collect::<Vec<_>>()
    })))
}

/// `GET /os-aggregates/{id}`.
pub async fn aggregate_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-aggregates:show")?;
    let id = parse_id(&id)?;
    let a = agg::get(svc.store(), id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(json!({ "aggregate": view(&a, mv, true) })))
}

// ------------------------------------------------------------------ create, update, delete

/// `POST /os-aggregates`: 200 (Nova keeps 200) with the aggregate, without hosts and metadata.
pub async fn aggregate_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = schema::envelope(&body, "aggregate")?;
    let whole = &body["aggregate"];
    schema::only(m, &["name", "availability_zone"], Some("aggregate"), whole)?;
    let name = schema::name(
        schema::require(m, "name", Some("aggregate"), whole)?,
        "name",
    )?
    .to_string();
    let az = m
        .get("availability_zone")
        .map(opt_az)
        .transpose()?
        .flatten();
    auth.require_admin("os_compute_api:os-aggregates:create")?;
    let now = now_micros();
    let a = svc
        .store()
        .write_or_refuse(move |tx| {
            let (name, az) = (name.clone(), az.clone());
            Box::pin(async move {
                if agg::name_taken_tx(tx, &name, None).await? {
                    return Ok(Err(NovaError::conflict(format!(
                        "Aggregate {name} already exists."
                    ))));
                }
                let a = Aggregate {
                    id: agg::next_id_tx(tx).await?,
                    uuid: uuid::Uuid::new_v4().to_string(),
                    name,
                    hosts: Vec::new(),
                    metadata: az
                        .map(|z| [(AZ_KEY.to_string(), z)].into())
                        .unwrap_or_default(),
                    created_at: now,
                    updated_at: None,
                };
                agg::insert_tx(tx, &a).await?;
                Ok(Ok(a))
            })
        })
        .await??;
    Ok(Json(json!({ "aggregate": view(&a, mv, false) })))
}

/// `PUT /os-aggregates/{id}`: the name and/or the zone.
pub async fn aggregate_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = schema::envelope(&body, "aggregate")?;
    let whole = &body["aggregate"];
    schema::only(m, &["name", "availability_zone"], Some("aggregate"), whole)?;
    if !m.contains_key("name") && !m.contains_key("availability_zone") {
        return Err(fail(
            Some("aggregate"),
            whole,
            format!(
                "{} is not valid under any of the given schemas",
                repr(whole)
            ),
        ));
    }
    // `name_with_leading_trailing_spaces`, normalised as Nova's `normalize_name` does.
    let name = match m.get("name") {
        None => None,
        Some(v) => {
            let s = schema::string(v, "name", 1, 255)?;
            if !schema::valid_name(s.trim()) || s.trim().is_empty() {
                return Err(fail(
                    Some("name"),
                    v,
                    format!("{} does not match '^[printable]*$'", repr(v)),
                ));
            }
            Some(s.trim().to_string())
        }
    };
    let az: Option<Option<String>> = m.get("availability_zone").map(opt_az).transpose()?;
    auth.require_admin("os_compute_api:os-aggregates:update")?;
    let id = parse_id(&id)?;
    let a = change(&svc, id, move |tx, all, mut a| {
        let (name, az) = (name.clone(), az.clone());
        Box::pin(async move {
            if let Some(n) = &name {
                if agg::name_taken_tx(tx, n, Some(a.id)).await? {
                    return Ok(Err(NovaError::conflict(format!(
                        "Aggregate {n} already exists."
                    ))));
                }
                a.name = n.clone();
            }
            if let Some(z) = az {
                let meta: BTreeMap<String, Option<String>> = [(AZ_KEY.to_string(), z)].into();
                if let Err(e) = check_az(tx, &all, &meta, &a, None, Action::Update, true).await? {
                    return Ok(Err(e));
                }
                apply_metadata(&mut a, &meta);
            }
            Ok(Ok(a))
        })
    })
    .await?;
    Ok(Json(json!({ "aggregate": view(&a, mv, true) })))
}

/// `DELETE /os-aggregates/{id}`: 200 with no body (as Nova); 400 while it has hosts.
pub async fn aggregate_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<Response> {
    auth.require_admin("os_compute_api:os-aggregates:delete")?;
    let id = parse_id(&id)?;
    svc.store()
        .write_or_refuse(move |tx| {
            Box::pin(async move {
                let Some(a) = agg::get_tx(tx, id).await? else {
                    return Ok(Err(not_found(id)));
                };
                if !a.hosts.is_empty() {
                    return Ok(Err(NovaError::bad_request(format!(
                        "Cannot remove host from aggregate {id}. Reason: Host aggregate is not \
                         empty."
                    ))));
                }
                agg::delete_tx(tx, id).await?;
                Ok(Ok(()))
            })
        })
        .await??;
    svc.live().hosts_changed();
    Ok(StatusCode::OK.into_response())
}

// ------------------------------------------------------------------ actions

/// `POST /os-aggregates/{id}/action`: `add_host`, `remove_host`, `set_metadata`.
pub async fn aggregate_action(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let (name, arg) = match body.as_object() {
        Some(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one key");
            (k.clone(), v.clone())
        }
        _ => return Err(NovaError::bad_request("Malformed request body")),
    };
    let a = match name.as_str() {
        "add_host" => add_host(&svc, &auth, &id, &body, &arg).await?,
        "remove_host" => remove_host(&svc, &auth, &id, &body, &arg).await?,
        "set_metadata" => set_metadata(&svc, &auth, &id, &body, &arg).await?,
        other => {
            return Err(NovaError::bad_request(format!(
                "There is no such action: {other}"
            )))
        }
    };
    Ok(Json(json!({ "aggregate": view(&a, mv, true) })))
}

/// The `host` of an `add_host`/`remove_host` body.
fn host_arg(body: &Value, key: &str, arg: &Value) -> NovaResult<String> {
    let _ = body;
    let m = schema::object(arg, Some(key))?;
    schema::only(m, &["host"], Some(key), arg)?;
    fqdn(schema::require(m, "host", Some(key), arg)?)
}

async fn add_host(
    svc: &ComputeService,
    auth: &Auth,
    id: &str,
    body: &Value,
    arg: &Value,
) -> NovaResult<Aggregate> {
    let host = host_arg(body, "add_host", arg)?;
    auth.require_admin("os_compute_api:os-aggregates:add_host")?;
    let id = parse_id(id)?;
    if !compute_host_exists(svc, &host).await? {
        return Err(NovaError::not_found(format!(
            "Compute host {host} could not be found."
        )));
    }
    let h = host.clone();
    let a = change(svc, id, move |tx, all, mut a| {
        let h = h.clone();
        Box::pin(async move {
            let meta: BTreeMap<String, Option<String>> = a
                .metadata
                .iter()
                .filter(|(k, _)| *k == AZ_KEY)
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            let hs = [h.clone()];
            if let Err(e) = check_az(tx, &all, &meta, &a, Some(&hs), Action::Add, false).await? {
                return Ok(Err(e));
            }
            if a.hosts.contains(&h) {
                return Ok(Err(NovaError::conflict(format!(
                    "The aggregate {} already has host {h}.",
                    a.id
                ))));
            }
            a.hosts.push(h);
            Ok(Ok(a))
        })
    })
    .await?;
    svc.mirror_to_placement(&a.uuid, &[host], true).await;
    Ok(a)
}

async fn remove_host(
    svc: &ComputeService,
    auth: &Auth,
    id: &str,
    body: &Value,
    arg: &Value,
) -> NovaResult<Aggregate> {
    let host = host_arg(body, "remove_host", arg)?;
    auth.require_admin("os_compute_api:os-aggregates:remove_host")?;
    let raw_id = id.to_string();
    let id = parse_id(id)?;
    let cannot =
        || NovaError::not_found(format!("Cannot remove host {host} in aggregate {raw_id}"));
    if !compute_host_exists(svc, &host).await? {
        return Err(cannot());
    }
    let h = host.clone();
    let a = change(svc, id, move |_tx, _all, mut a| {
        let h = h.clone();
        Box::pin(async move {
            if !a.hosts.contains(&h) {
                return Ok(Err(NovaError::not_found(format!(
                    "Cannot remove host {h} in aggregate {}",
                    a.id
                ))));
            }
            a.hosts.retain(|x| *x != h);
            Ok(Ok(a))
        })
    })
    .await
    .map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            cannot()
        } else {
            e
        }
    })?;
    svc.mirror_to_placement(&a.uuid, &[host], false).await;
    Ok(a)
}

async fn set_metadata(
    svc: &ComputeService,
    auth: &Auth,
    id: &str,
    _body: &Value,
    arg: &Value,
) -> NovaResult<Aggregate> {
    let m = schema::object(arg, Some("set_metadata"))?;
    schema::only(m, &["metadata"], Some("set_metadata"), arg)?;
    let meta = metadata_with_null(schema::require(m, "metadata", Some("set_metadata"), arg)?)?;
    auth.require_admin("os_compute_api:os-aggregates:set_metadata")?;
    let id = parse_id(id)?;
    change(svc, id, move |tx, all, mut a| {
        let meta = meta.clone();
        Box::pin(async move {
            if let Err(e) = check_az(tx, &all, &meta, &a, None, Action::UpdateMeta, true).await? {
                return Ok(Err(e));
            }
            apply_metadata(&mut a, &meta);
            Ok(Ok(a))
        })
    })
    .await
}

// ------------------------------------------------------------------ image cache (2.81)

/// `POST /os-aggregates/{id}/images` (2.81): 202. The request is checked as Nova checks it
/// (the schema, no duplicates, the aggregate exists); there is nothing to pre-cache — each
/// host's agent fetches a server's image when it builds it — so nothing more happens.
pub async fn aggregate_images(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<StatusCode> {
    if !mv.at_least(81) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    let top = schema::object(&body, None)?;
    schema::only(top, &["cache"], None, &body)?;
    let cache = schema::require(top, "cache", None, &body)?;
    let list = cache.as_array().ok_or_else(|| {
        fail(
            Some("cache"),
            cache,
            format!("{} is not of type 'array'", repr(cache)),
        )
    })?;
    if list.is_empty() {
        return Err(fail(
            Some("cache"),
            cache,
            format!("{} is too short", repr(cache)),
        ));
    }
    let mut ids: Vec<String> = Vec::new();
    for item in list {
        let o: &Map<String, Value> = schema::object(item, Some("cache"))?;
        schema::only(o, &["id"], Some("cache"), item)?;
        let v = schema::require(o, "id", Some("cache"), item)?;
        match v.as_str() {
            Some(s) if uuid::Uuid::parse_str(s).is_ok() => ids.push(s.to_string()),
            _ => return Err(fail(Some("id"), v, format!("{} is not a 'uuid'", repr(v)))),
        }
    }
    auth.require_admin("compute:aggregates:images")?;
    let id = parse_id(&id)?;
    let unique: BTreeSet<&String> = ids.iter().collect();
    if unique.len() != ids.len() {
        return Err(NovaError::bad_request("Duplicate images in request"));
    }
    agg::get(svc.store(), id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(StatusCode::ACCEPTED)
}
