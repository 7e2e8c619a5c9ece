//! `standard-attr-tag`: `/v2.0/{collection}/{id}/tags` (list, replace all, remove all) and
//! `/v2.0/{collection}/{id}/tags/{tag}` (check, add, remove) on every taggable resource. Tags
//! live in the resource document's `tags`; changing them is an update of the resource.

use super::write;
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Value};

/// Taggable collections and the resource kind each holds.
pub const COLLECTIONS: &[(&str, &str)] = &[
    ("networks", "network"),
    ("subnets", "subnet"),
    ("ports", "port"),
    ("subnetpools", "subnetpool"),
    ("security-groups", "security_group"),
    ("routers", "router"),
    ("floatingips", "floatingip"),
];

pub fn routes() -> Router<NetworkService> {
    let mut r = Router::new();
    for (collection, kind) in COLLECTIONS {
        let k1 = *kind;
        let k2 = *kind;
        let k3 = *kind;
        let k4 = *kind;
        let k5 = *kind;
        let k6 = *kind;
        r = r
            .route(
                &format!("/{collection}/{{id}}/tags"),
                get(move |s: State<NetworkService>, a: Auth, p: Path<String>| {
                    tags_list(s, a, p, k1)
                })
                .put(
                    move |s: State<NetworkService>, a: Auth, p: Path<String>, b: Body| {
                        tags_replace(s, a, p, b, k2)
                    },
                )
                .delete(
                    move |s: State<NetworkService>, a: Auth, p: Path<String>| {
                        tags_clear(s, a, p, k3)
                    },
                ),
            )
            .route(
                &format!("/{collection}/{{id}}/tags/{{tag}}"),
                get(
                    move |s: State<NetworkService>, a: Auth, p: Path<(String, String)>| {
                        tag_check(s, a, p, k4)
                    },
                )
                .put(
                    move |s: State<NetworkService>, a: Auth, p: Path<(String, String)>| {
                        tag_add(s, a, p, k5)
                    },
                )
                .delete(
                    move |s: State<NetworkService>, a: Auth, p: Path<(String, String)>| {
                        tag_remove(s, a, p, k6)
                    },
                ),
            );
    }
    r
}

/// Whether the caller may see the resource (its own; shared networks and subnet pools, and
/// external networks, are visible to all).
fn visible(auth: &Auth, r: &Resource) -> bool {
    auth.owns(&r.project_id)
        || r.flag("shared")
        || (r.kind == "network" && r.flag("router:external"))
}

fn not_found(kind: &str, id: &str) -> NeutronError {
    if kind == "security_group" {
        return NeutronError::new(
            StatusCode::NOT_FOUND,
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        );
    }
    NeutronError::not_found(kind, id)
}

async fn find(svc: &NetworkService, auth: &Auth, kind: &str, id: &str) -> NeutronResult<Resource> {
    match db::get(svc.store(), kind, id).await? {
        Some(r) if visible(auth, &r) => Ok(r),
        _ => Err(not_found(kind, id)),
    }
}

/// Finds the resource for a change of its tags: the owner's members or admins.
async fn find_writable(
    svc: &NetworkService,
    auth: &Auth,
    kind: &str,
    id: &str,
) -> NeutronResult<Resource> {
    let r = find(svc, auth, kind, id).await?;
    if !auth.owns(&r.project_id) || !auth.can_write() {
        return Err(NeutronError::policy(&format!("update_{kind}:tags")));
    }
    Ok(r)
}

fn tags(r: &Resource) -> Vec<String> {
    r.doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn check_tag(t: &str) -> NeutronResult<()> {
    if t.is_empty() || t.chars().count() > 255 {
        return Err(NeutronError::bad_request(format!(
            "Invalid input for tags. Reason: '{t}' is not a valid tag."
        )));
    }
    if t.contains(',') {
        return Err(NeutronError::bad_request(format!(
            "Invalid input for tags. Reason: '{t}' contains a comma."
        )));
    }
    Ok(())
}

/// Saves `tags` on the resource inside a write (a revision like any update).
async fn store_tags(
    svc: &NetworkService,
    kind: &'static str,
    id: &str,
    change: impl Fn(Vec<String>) -> NeutronResult<Vec<String>> + Clone + Send + Sync + 'static,
) -> NeutronResult<Vec<String>> {
    let id = id.to_string();
    write(svc, move |tx| {
        let (id, change) = (id.clone(), change.clone());
        Box::pin(async move {
            let Some(mut r) = db::get_tx(tx, kind, &id).await? else {
                return Ok(Err(not_found(kind, &id)));
            };
            let new = match change(tags(&r)) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            };
            r.doc.insert("tags".into(), json!(new));
            db::save(tx, &mut r).await?;
            Ok(Ok(new))
        })
    })
    .await
}

/// `GET …/{id}/tags`.
pub async fn tags_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    kind: &'static str,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, kind, &id).await?;
    Ok(Json(json!({"tags": tags(&r)})))
}

/// `PUT …/{id}/tags` with `{"tags": [...]}`: replaces them all.
pub async fn tags_replace(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
    kind: &'static str,
) -> NeutronResult<Json<Value>> {
    find_writable(&svc, &auth, kind, &id).await?;
    let new: Vec<String> = match body.0.get("tags") {
        Some(Value::Array(a)) => {
            let mut out: Vec<String> = Vec::new();
            for t in a {
                let Some(t) = t.as_str() else {
                    return Err(NeutronError::bad_request(format!(
                        "Invalid input for tags. Reason: '{t}' is not a valid string."
                    )));
                };
                check_tag(t)?;
                if out.iter().any(|o| o == t) {
                    return Err(NeutronError::bad_request(format!(
                        "Invalid input for tags. Reason: Duplicate items in the list: '{t}'."
                    )));
                }
                out.push(t.to_string());
            }
            out
        }
        _ => {
            return Err(NeutronError::bad_request(
                "Invalid input for tags. Reason: a list of tags is required.",
            ))
        }
    };
    let tags = store_tags(&svc, kind, &id, move |_| Ok(new.clone())).await?;
    Ok(Json(json!({ "tags": tags })))
}

/// `DELETE …/{id}/tags`: 204.
pub async fn tags_clear(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    kind: &'static str,
) -> NeutronResult<StatusCode> {
    find_writable(&svc, &auth, kind, &id).await?;
    store_tags(&svc, kind, &id, |_| Ok(Vec::new())).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn tag_not_found(tag: &str) -> NeutronError {
    NeutronError::new(
        StatusCode::NOT_FOUND,
        "TagNotFound",
        format!("Tag {tag} could not be found."),
    )
}

/// `GET …/{id}/tags/{tag}`: 204 when it has the tag, 404 otherwise.
pub async fn tag_check(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
    kind: &'static str,
) -> NeutronResult<StatusCode> {
    let r = find(&svc, &auth, kind, &id).await?;
    if tags(&r).contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(tag_not_found(&tag))
    }
}

/// `PUT …/{id}/tags/{tag}`: 201 (also when already there).
pub async fn tag_add(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
    kind: &'static str,
) -> NeutronResult<StatusCode> {
    find_writable(&svc, &auth, kind, &id).await?;
    check_tag(&tag)?;
    store_tags(&svc, kind, &id, move |mut t| {
        if !t.contains(&tag) {
            t.push(tag.clone());
        }
        Ok(t)
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE …/{id}/tags/{tag}`: 204; 404 for a tag it does not have.
pub async fn tag_remove(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
    kind: &'static str,
) -> NeutronResult<StatusCode> {
    find_writable(&svc, &auth, kind, &id).await?;
    store_tags(&svc, kind, &id, move |t| {
        if !t.contains(&tag) {
            return Err(tag_not_found(&tag));
        }
        Ok(t.into_iter().filter(|x| *x != tag).collect())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
