//! `/traits` (1.6): the os-traits standard traits plus custom ones (`CUSTOM_*`), listed with
//! `name=in:A,B` / `name=startswith:P` and `associated` filters.

use super::{created_at, href, need};
use crate::db;
use crate::error::{PlacementError, PlacementResult};
use crate::extract::{Auth, Mv, Pairs};
use crate::model::{is_standard_trait, valid_custom_name, STANDARD_TRAITS};
use crate::PlacementService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::json;

pub fn routes() -> Router<PlacementService> {
    Router::new().route("/traits", get(traits_list)).route(
        "/traits/{name}",
        get(trait_show).put(trait_update).delete(trait_delete),
    )
}

/// A predicate on trait names (`name=in:` / `name=startswith:`).
type NameFilter = Box<dyn Fn(&str) -> bool + Send>;

pub async fn traits_list(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Pairs(pairs): Pairs,
) -> PlacementResult<Response> {
    need(mv, 6)?;
    let mut name_filter: Option<NameFilter> = None;
    let mut associated: Option<bool> = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "name" => {
                if let Some(list) = v.strip_prefix("in:") {
                    let names: Vec<String> =
                        list.split(',').map(|s| s.trim().to_string()).collect();
                    name_filter = Some(Box::new(move |n| names.iter().any(|x| x == n)));
                } else if let Some(prefix) = v.strip_prefix("startswith:") {
                    let prefix = prefix.to_string();
                    name_filter = Some(Box::new(move |n| n.starts_with(&prefix)));
                } else {
                    return Err(PlacementError::bad_request(format!(
                        "Badly formatted name parameter. Expected name query string parameter \
                         in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{v}\""
                    )));
                }
            }
            "associated" => {
                associated =
                    Some(match v.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(PlacementError::bad_request(
                            "The query parameter \"associated\" only accepts \"true\" or \"false\"",
                        )),
                    })
            }
            other => {
                return Err(PlacementError::query(format!(
                    "Additional properties are not allowed ('{other}' was unexpected)"
                )))
            }
        }
    }
    let mut c = svc.conn().await?;
    let mut all: Vec<String> = STANDARD_TRAITS.iter().map(|s| s.to_string()).collect();
    all.extend(db::custom_traits(&mut c).await?);
    let used = match associated {
        Some(_) => db::associated_traits(&mut c).await?,
        None => Default::default(),
    };
    let list: Vec<String> = all
        .into_iter()
        .filter(|n| name_filter.as_ref().is_none_or(|f| f(n)))
        .filter(|n| associated.is_none_or(|a| used.contains(n) == a))
        .collect();
    Ok(axum::Json(json!({"traits": list})).into_response())
}

/// 204 when the trait exists, 404 otherwise.
pub async fn trait_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
) -> PlacementResult<StatusCode> {
    need(mv, 6)?;
    if svc.unknown_traits([&name]).await?.is_empty() {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(PlacementError::not_found(format!(
            "No such trait(s): {name}"
        )))
    }
}

/// Creates a custom trait: 201 when new, 204 when it existed.
pub async fn trait_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
) -> PlacementResult<Response> {
    need(mv, 6)?;
    let location = href(&format!("/traits/{name}"));
    if is_standard_trait(&name) {
        return Ok(created_at(StatusCode::NO_CONTENT, location));
    }
    if !valid_custom_name(&name) {
        return Err(PlacementError::bad_request(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start \
             with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" \
             and \"_\"",
        ));
    }
    let created = svc.trait_put(name).await?;
    Ok(created_at(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::NO_CONTENT
        },
        location,
    ))
}

pub async fn trait_delete(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
) -> PlacementResult<Response> {
    need(mv, 6)?;
    if is_standard_trait(&name) {
        return Err(PlacementError::bad_request(format!(
            "Cannot delete standard trait {name}."
        )));
    }
    svc.trait_delete(name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
