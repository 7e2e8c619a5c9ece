//! Server tags (2.26): `GET/PUT/DELETE /servers/{id}/tags` and `GET/PUT/DELETE
//! /servers/{id}/tags/{tag}`; below 2.26 the routes do not exist (404).
//!
//! As in Nova, a server of another project is refused by policy (403) rather than hidden, and
//! changes need the server `active`, `paused`, `suspended` or `stopped` (409 otherwise); the
//! lock does not apply to tags.

use super::servers::{invalid_state, mutate};
use super::Links;
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv};
use crate::schema::{fail, repr};
use crate::server::{vm, Server};
use crate::server_db as sdb;
use crate::version::Microversion;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Most tags a server may have.
pub const MAX_TAGS: usize = 50;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 60;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route(
            "/servers/{id}/tags",
            get(tag_index).put(tag_update_all).delete(tag_delete_all),
        )
        .route(
            "/servers/{id}/tags/{tag}",
            get(tag_show).put(tag_update).delete(tag_delete),
        )
}

/// Nova's tag rule: 1..=60 characters, no `/` or `,`.
pub fn valid_tag(t: &str) -> bool {
    tag_error(t).is_none()
}

/// What Nova's `parameter_types.tag` says of `t`, if anything.
fn tag_error(t: &str) -> Option<String> {
    let v = json!(t);
    let n = t.chars().count();
    if n < 1 {
        return Some(format!("{} should be non-empty", repr(&v)));
    }
    if n > MAX_TAG_LEN {
        return Some(format!("{} is too long", repr(&v)));
    }
    if t.contains('/') || t.contains(',') {
        return Some(format!("{} does not match '^[^,/]*$'", repr(&v)));
    }
    None
}

/// A list of tags as Nova's schema checks it (at most 50, each valid, duplicates dropped).
/// Errors on an item name its index, as Nova's validator reports the failing path's end.
pub fn tag_list(v: &Value, field: &str) -> NovaResult<Vec<String>> {
    let arr = v.as_array().ok_or_else(|| {
        fail(
            Some(field),
            v,
            format!("{} is not of type 'array'", repr(v)),
        )
    })?;
    if arr.len() > MAX_TAGS {
        return Err(fail(Some(field), v, format!("{} is too long", repr(v))));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in arr.iter().enumerate() {
        let idx = i.to_string();
        let s = t.as_str().ok_or_else(|| {
            fail(
                Some(&idx),
                t,
                format!("{} is not of type 'string'", repr(t)),
            )
        })?;
        if let Some(msg) = tag_error(s) {
            return Err(fail(Some(&idx), t, msg));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

fn gate(mv: Microversion) -> NovaResult<()> {
    if !mv.at_least(26) {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    Ok(())
}

/// The server for a tag call: 404 when unknown or deleted, 403 (policy `rule`) for another
/// project's.
async fn lookup(svc: &ComputeService, auth: &Auth, id: &str, rule: &str) -> NovaResult<Server> {
    let Some(s) = sdb::get(svc.store(), id).await? else {
        return Err(NovaError::not_found(format!(
            "Instance {id} has no mapping to a cell."
        )));
    };
    auth.require_reader_of(
        &s.project_id,
        &format!("os_compute_api:os-server-tags:{rule}"),
    )?;
    if s.deleted {
        return Err(super::servers::not_found(id));
    }
    Ok(s)
}

/// Nova's `_check_instance_in_valid_state`.
fn check_state(s: &Server, action: &str) -> NovaResult<()> {
    if [vm::ACTIVE, vm::PAUSED, vm::SUSPENDED, vm::STOPPED].contains(&s.vm_state.as_str()) {
        Ok(())
    } else {
        Err(invalid_state(s, "vm_state", action))
    }
}

/// `GET /servers/{id}/tags`.
pub async fn tag_index(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    gate(mv)?;
    let s = lookup(&svc, &auth, &id, "index").await?;
    Ok(Json(json!({ "tags": s.tags })))
}

/// `PUT /servers/{id}/tags`: replaces every tag; 200 with the list.
pub async fn tag_update_all(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    gate(mv)?;
    let top = crate::schema::object(&body, None)?;
    crate::schema::require(top, "tags", None, &body)?;
    crate::schema::only(top, &["tags"], None, &body)?;
    let tags = tag_list(&top["tags"], "tags")?;
    let s = lookup(&svc, &auth, &id, "update_all").await?;
    check_state(&s, "update tags")?;
    let s = mutate(&svc, &id, move |n| {
        check_state(n, "update tags")?;
        n.tags = tags.clone();
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "tags": s.tags })))
}

/// `DELETE /servers/{id}/tags`: 204.
pub async fn tag_delete_all(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    gate(mv)?;
    let s = lookup(&svc, &auth, &id, "delete_all").await?;
    check_state(&s, "delete tags")?;
    mutate(&svc, &id, move |n| {
        check_state(n, "delete tags")?;
        n.tags.clear();
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /servers/{id}/tags/{tag}`: 204 when the server has it.
pub async fn tag_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> NovaResult<StatusCode> {
    gate(mv)?;
    let s = lookup(&svc, &auth, &id, "show").await?;
    if s.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NovaError::not_found(format!(
            "Server {id} has no tag '{tag}'"
        )))
    }
}

/// `PUT /servers/{id}/tags/{tag}`: 201 with `Location` when added, 204 when already there.
pub async fn tag_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    Path((id, tag)): Path<(String, String)>,
    Body(body): Body,
) -> NovaResult<Response> {
    gate(mv)?;
    if !body.is_null() {
        return Err(fail(
            None,
            &body,
            format!("{} is not of type 'null'", repr(&body)),
        ));
    }
    let s = lookup(&svc, &auth, &id, "update").await?;
    check_state(&s, "update tag")?;
    if let Some(msg) = tag_error(&tag) {
        return Err(NovaError::bad_request(format!(
            "Tag '{tag}' is invalid. It must be a non empty string without characters '/' and \
             ','. Validation error message: {msg}"
        )));
    }
    let added = Arc::new(AtomicBool::new(false));
    let flag = added.clone();
    let t = tag.clone();
    mutate(&svc, &id, move |n| {
        check_state(n, "update tag")?;
        flag.store(false, Ordering::SeqCst);
        if n.tags.len() >= MAX_TAGS {
            return Err(NovaError::bad_request(format!(
                "The number of tags exceeded the per-server limit {MAX_TAGS}"
            )));
        }
        if !n.tags.contains(&t) {
            n.tags.push(t.clone());
            flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    })
    .await?;
    if !added.load(Ordering::SeqCst) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let location = format!("{}/servers/{id}/tags/{}", links.self_base, encode(&tag));
    Ok((StatusCode::CREATED, [(http::header::LOCATION, location)]).into_response())
}

/// `DELETE /servers/{id}/tags/{tag}`: 204, or 404 when the server does not have it.
pub async fn tag_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> NovaResult<StatusCode> {
    gate(mv)?;
    let s = lookup(&svc, &auth, &id, "delete").await?;
    check_state(&s, "delete tag")?;
    let t = tag.clone();
    mutate(&svc, &id, move |n| {
        check_state(n, "delete tag")?;
        let before = n.tags.len();
        n.tags.retain(|x| *x != t);
        if n.tags.len() == before {
            return Err(NovaError::not_found(format!(
                "Instance {} has no tag '{t}'",
                n.id
            )));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Percent-encodes a path segment.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_novas_schema() {
        assert!(valid_tag("a"));
        assert!(!valid_tag(""));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag("a,b"));
        assert!(!valid_tag(&"x".repeat(61)));
        assert_eq!(
            tag_list(&json!(["a", "b", "a"]), "tags").unwrap(),
            vec!["a", "b"]
        );
        let e = tag_list(&json!(["ok", "a,b"]), "tags").unwrap_err();
        assert_eq!(
            e.message,
            "Invalid input for field/attribute 1. Value: 'a,b'. 'a,b' does not match '^[^,/]*$'"
        );
        let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
        assert!(tag_list(&json!(many), "tags").is_err());
    }
}
