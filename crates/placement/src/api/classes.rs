//! `/resource_classes` (1.2): the standard classes of os-resource-classes plus custom ones
//! (`CUSTOM_*`). `PUT /resource_classes/{name}` renames before 1.7 and creates-or-verifies
//! from 1.7.

use super::{created_at, href, need};
use crate::db;
use crate::error::{PlacementError, PlacementResult};
use crate::extract::{Auth, Body, Mv};
use crate::model::{is_standard_class, valid_custom_name, STANDARD_RESOURCE_CLASSES};
use crate::schema;
use crate::PlacementService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};

pub fn routes() -> Router<PlacementService> {
    Router::new()
        .route(
            "/resource_classes",
            get(resource_classes_list).post(resource_class_create),
        )
        .route(
            "/resource_classes/{name}",
            get(resource_class_show)
                .put(resource_class_update)
                .delete(resource_class_delete),
        )
}

fn view(name: &str) -> Value {
    json!({"name": name, "links": [
        {"rel": "self", "href": href(&format!("/resource_classes/{name}"))}
    ]})
}

fn invalid_name() -> PlacementError {
    PlacementError::schema(
        "A custom resource class name must start with the prefix \"CUSTOM_\" and contain only \
         the characters \"A\"-\"Z\", \"0\"-\"9\" and \"_\", at most 255 characters.",
    )
}

pub async fn resource_classes_list(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
) -> PlacementResult<Response> {
    need(mv, 2)?;
    let mut c = svc.conn().await?;
    let mut list: Vec<Value> = STANDARD_RESOURCE_CLASSES.iter().map(|n| view(n)).collect();
    for (name, _) in db::custom_classes(&mut c).await? {
        list.push(view(&name));
    }
    Ok(axum::Json(json!({"resource_classes": list})).into_response())
}

/// `POST /resource_classes`: `{"name": "CUSTOM_…"}`, 201 with a location.
pub async fn resource_class_create(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> PlacementResult<Response> {
    need(mv, 2)?;
    let m = schema::object(&body)?;
    schema::only(m, &["name"])?;
    let name = schema::string(schema::require(m, "name")?, 255)?;
    if !valid_custom_name(name) {
        return Err(invalid_name());
    }
    svc.class_create(name.to_string(), false).await?;
    Ok(created_at(
        StatusCode::CREATED,
        href(&format!("/resource_classes/{name}")),
    ))
}

pub async fn resource_class_show(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
) -> PlacementResult<Response> {
    need(mv, 2)?;
    if !svc.class_exists(&name).await? {
        return Err(PlacementError::not_found(format!(
            "No such resource class {name}."
        )));
    }
    Ok(axum::Json(view(&name)).into_response())
}

/// Before 1.7 a rename (`{"name": new}`); from 1.7 create-or-verify without a body (201 when
/// created, 204 when it existed).
pub async fn resource_class_update(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
    body: bytes::Bytes,
) -> PlacementResult<Response> {
    need(mv, 2)?;
    if is_standard_class(&name) {
        if mv.at_least(7) {
            return Ok(created_at(
                StatusCode::NO_CONTENT,
                href(&format!("/resource_classes/{name}")),
            ));
        }
        return Err(PlacementError::bad_request(format!(
            "Cannot update standard resource class {name}"
        )));
    }
    if !mv.at_least(7) {
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| PlacementError::bad_request(format!("Malformed JSON: {e}")))?;
        let m = schema::object(&body)?;
        schema::only(m, &["name"])?;
        let new = schema::string(schema::require(m, "name")?, 255)?;
        if !valid_custom_name(new) {
            return Err(invalid_name());
        }
        svc.class_rename(name, new.to_string()).await?;
        return Ok(axum::Json(view(new)).into_response());
    }
    if !valid_custom_name(&name) {
        return Err(invalid_name());
    }
    let created = svc.class_create(name.clone(), true).await?;
    Ok(created_at(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::NO_CONTENT
        },
        href(&format!("/resource_classes/{name}")),
    ))
}

pub async fn resource_class_delete(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
) -> PlacementResult<StatusCode> {
    need(mv, 2)?;
    if is_standard_class(&name) {
        return Err(PlacementError::bad_request(format!(
            "Cannot delete standard resource class {name}"
        )));
    }
    svc.class_delete(name).await?;
    Ok(StatusCode::NO_CONTENT)
}
