//! `/v2/images/{id}/members`: image sharing (Glance's `image_members` controller).
//!
//! Only `shared` images have members (403 otherwise). The owner (with the `member` role, or an
//! admin) adds and removes members; each member project sets its own status (`pending` →
//! `accepted`/`rejected`, and back), never the owner. The owner sees every member; a member
//! sees only its own membership, another project sees nothing (404, as for the image). Glance
//! checks in this order: the body (400), the image (404), its visibility (403), the membership
//! (404), the policy (403), the status value (400); so does this module.

use crate::api::images::visible;
use crate::db::{self, members::Member};
use crate::error::{GlanceError, GlanceResult};
use crate::extract::{Auth, Body};
use crate::model::{self, Image};
use crate::ImageService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Value};
use strata_api::AuthContext;
use strata_core::time::{iso_seconds_z, now_micros};

/// The member as Glance shows it.
pub fn view(m: &Member) -> Value {
    json!({
        "created_at": iso_seconds_z(m.created_at),
        "image_id": m.image_id,
        "member_id": m.member_id,
        "schema": "/v2/schemas/member",
        "status": m.status,
        "updated_at": iso_seconds_z(m.updated_at),
    })
}

/// The image behind a members call: 404 when the caller may not see it ("Image … not found."
/// in the members controller's words).
async fn image(svc: &ImageService, ctx: &AuthContext, id: &str) -> GlanceResult<Image> {
    visible(svc, ctx, id).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            GlanceError::new(StatusCode::NOT_FOUND, format!("Image {id} not found."))
        } else {
            e
        }
    })
}

/// Whether the caller sees the membership of `member_id`: admins and the owner see all of
/// them, a member only its own (Glance's `image_member_find`).
fn sees_member(ctx: &AuthContext, img: &Image, member_id: &str) -> bool {
    ctx.is_admin()
        || ctx.project_id() == Some(img.owner.as_str())
        || ctx.project_id() == Some(member_id)
}

fn member_not_found(member_id: &str, image_id: &str) -> GlanceError {
    GlanceError::new(
        StatusCode::NOT_FOUND,
        format!("{member_id} not found in the member list of the image {image_id}."),
    )
}

/// The membership if the caller may see it: 404 otherwise.
async fn lookup(
    svc: &ImageService,
    ctx: &AuthContext,
    img: &Image,
    member_id: &str,
) -> GlanceResult<Member> {
    match db::members::get(svc.store(), &img.id, member_id).await? {
        Some(m) if sees_member(ctx, img, member_id) => Ok(m),
        _ => Err(member_not_found(member_id, &img.id)),
    }
}

/// `GET /v2/images/{id}/members`: `{"members": […], "schema": "/v2/schemas/members"}`.
pub async fn member_list(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> GlanceResult<Response> {
    let img = image(&svc, &ctx, &id).await?;
    if img.visibility != "shared" {
        return Err(GlanceError::forbidden(format!(
            "Not allowed to list members for image {id}: Only shared images have members."
        )));
    }
    let members: Vec<Value> = db::members::list(svc.store(), &id)
        .await?
        .iter()
        .filter(|m| sees_member(&ctx, &img, &m.member_id))
        .map(view)
        .collect();
    Ok(Json(json!({"members": members, "schema": "/v2/schemas/members"})).into_response())
}

/// `POST /v2/images/{id}/members` with `{"member": "<project id>"}`: 200 with the member, in
/// status `pending`; 409 when it is a member already.
pub async fn member_create(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> GlanceResult<Response> {
    let member_id = match body.json()? {
        Value::Object(m) => match m.get("member") {
            None => return Err(GlanceError::bad_request("Member to be added not specified")),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_) | Value::Null) => {
                return Err(GlanceError::bad_request("Member can't be empty"))
            }
            Some(_) => {
                return Err(GlanceError::bad_request(
                    "Expected a member in the form: {\"member\": \"image_id\"}",
                ))
            }
        },
        _ => {
            return Err(GlanceError::bad_request(
                "Expected a member in the form: {\"member\": \"image_id\"}",
            ))
        }
    };
    if member_id.chars().count() > 255 {
        return Err(GlanceError::bad_request(format!(
            "Member {member_id} is too long"
        )));
    }
    let img = image(&svc, &ctx, &id).await?;
    if img.visibility != "shared" || !model::can_manage_members(&ctx, &img) {
        return Err(GlanceError::forbidden(format!(
            "Not allowed to create members for image {id}."
        )));
    }
    let now = now_micros();
    let m = Member {
        image_id: id,
        member_id,
        status: "pending".into(),
        created_at: now,
        updated_at: now,
    };
    db::members::create(svc.store(), &m).await?;
    Ok(Json(view(&m)).into_response())
}

/// `GET /v2/images/{id}/members/{member_id}`: 404 for whatever the caller may not see (Glance
/// turns every refusal here into a 404).
pub async fn member_show(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path((id, member_id)): Path<(String, String)>,
) -> GlanceResult<Response> {
    let img = image(&svc, &ctx, &id).await?;
    if img.visibility != "shared" {
        return Err(GlanceError::new(
            StatusCode::NOT_FOUND,
            "Only shared images have members.",
        ));
    }
    let m = lookup(&svc, &ctx, &img, &member_id).await?;
    Ok(Json(view(&m)).into_response())
}

/// `PUT /v2/images/{id}/members/{member_id}` with `{"status": "accepted"}`: 200 with the
/// member. Only the member project itself (or an admin) sets its status.
pub async fn member_update(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path((id, member_id)): Path<(String, String)>,
    body: Body,
) -> GlanceResult<Response> {
    let status = match body.json()? {
        Value::Object(m) => match m.get("status") {
            None => return Err(GlanceError::bad_request("Status not specified")),
            Some(v) => v.clone(),
        },
        _ => {
            return Err(GlanceError::bad_request(
                "Expected a status in the form: {\"status\": \"status\"}",
            ))
        }
    };
    let img = image(&svc, &ctx, &id).await?;
    let refused =
        || GlanceError::forbidden(format!("Not allowed to update members for image {id}."));
    if img.visibility != "shared" {
        return Err(refused());
    }
    let mut m = lookup(&svc, &ctx, &img, &member_id).await?;
    let own = ctx.project_id() == Some(member_id.as_str());
    if !model::can_set_member_status(&ctx, own) {
        return Err(refused());
    }
    let status = match status.as_str() {
        Some(s) if model::MEMBER_STATUSES.contains(&s) => s.to_string(),
        _ => {
            return Err(GlanceError::bad_request(
                "Incorrect request: Status must be \"pending\", \"accepted\" or \"rejected\".",
            ))
        }
    };
    let at = now_micros().max(m.updated_at + 1);
    if !db::members::set_status(svc.store(), &id, &member_id, &status, at).await? {
        return Err(member_not_found(&member_id, &id));
    }
    m.status = status;
    m.updated_at = at;
    Ok(Json(view(&m)).into_response())
}

/// `DELETE /v2/images/{id}/members/{member_id}`: 204. Only the owner (or an admin) removes
/// members; a member cannot leave on its own (it rejects instead).
pub async fn member_delete(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path((id, member_id)): Path<(String, String)>,
) -> GlanceResult<StatusCode> {
    let img = image(&svc, &ctx, &id).await?;
    let refused =
        || GlanceError::forbidden(format!("Not allowed to delete members for image {id}."));
    if img.visibility != "shared" {
        return Err(refused());
    }
    lookup(&svc, &ctx, &img, &member_id).await?;
    if !model::can_manage_members(&ctx, &img) {
        return Err(refused());
    }
    if !db::members::delete(svc.store(), &id, &member_id).await? {
        return Err(member_not_found(&member_id, &id));
    }
    Ok(StatusCode::NO_CONTENT)
}
