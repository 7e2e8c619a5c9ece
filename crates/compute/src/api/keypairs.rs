//! Keypairs (`/os-keypairs`): imported (`public_key`) or generated server-side (below 2.92;
//! from 2.92 `public_key` is required), typed `ssh` or `x509` from 2.2, owned by a user
//! (admins name another with `user_id` from 2.10), paged from 2.35. The `key_pairs` quota is
//! counted inside the write that inserts the keypair.

use super::views::{keypair_created, keypair_list_item, keypair_show};
use super::{next_link, page_limit, Links};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::model::{keypair_name_ok, Keypair, KEYPAIR_CHARS_20, KEYPAIR_CHARS_292};
use crate::schema::{self, fail, repr};
use crate::version::Microversion;
use crate::{db, keys, ComputeService};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Value};

/// The keypair routes.
pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-keypairs", get(keypair_list).post(keypair_create))
        .route(
            "/os-keypairs/{name}",
            get(keypair_show_one).delete(keypair_delete),
        )
}

/// The user a request acts for: its own, or (admins, from 2.10) the `user_id` it names.
fn target_user(
    auth: &Auth,
    mv: Microversion,
    asked: Option<&str>,
    rule: &str,
) -> NovaResult<String> {
    match asked {
        Some(u) if mv.at_least(10) && u != auth.user() => {
            auth.require_admin(rule)?;
            Ok(u.to_string())
        }
        _ => Ok(auth.user().to_string()),
    }
}

fn not_found(name: &str, user: &str) -> NovaError {
    NovaError::not_found(format!("Keypair {name} not found for user {user}"))
}

/// `GET /os-keypairs`.
pub async fn keypair_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, &["user_id", "limit", "marker"])?;
    let user = target_user(
        &auth,
        mv,
        pairs.get("user_id"),
        "os_compute_api:os-keypairs:index",
    )?;
    let mut list = db::list_keypairs(svc.store(), &user).await?;
    let mut limit = usize::MAX;
    if mv.at_least(35) {
        if let Some(marker) = pairs.get("marker") {
            let at = list.iter().position(|k| k.name == marker).ok_or_else(|| {
                NovaError::bad_request(format!("Marker {marker} could not be found."))
            })?;
            list.drain(..=at);
        }
        limit = page_limit(&pairs)?;
        list.truncate(limit);
    }
    let items: Vec<Value> = list.iter().map(|k| keypair_list_item(k, mv)).collect();
    let mut body = json!({"keypairs": items});
    if mv.at_least(35) && list.len() == limit {
        if let Some(last) = list.last() {
            let base = format!("{}/os-keypairs", links.self_base);
            body["keypairs_links"] = next_link(&base, &pairs, limit, &last.name);
        }
    }
    Ok(Json(body))
}

/// `GET /os-keypairs/{name}`.
pub async fn keypair_show_one(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(name): Path<String>,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, &["user_id"])?;
    let user = target_user(
        &auth,
        mv,
        pairs.get("user_id"),
        "os_compute_api:os-keypairs:show",
    )?;
    let k = db::get_keypair(svc.store(), &user, &name)
        .await?
        .ok_or_else(|| not_found(&name, &user))?;
    Ok(Json(keypair_show(&k, mv)))
}

/// `DELETE /os-keypairs/{name}`: 202 at 2.1, 204 from 2.2.
pub async fn keypair_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(name): Path<String>,
) -> NovaResult<StatusCode> {
    pairs.only(mv, &["user_id"])?;
    let user = target_user(
        &auth,
        mv,
        pairs.get("user_id"),
        "os_compute_api:os-keypairs:delete",
    )?;
    let (u2, n2) = (user.clone(), name.clone());
    let gone = svc
        .store()
        .write(move |tx| {
            let (u, n) = (u2.clone(), n2.clone());
            Box::pin(async move { db::delete_keypair(tx, &u, &n).await })
        })
        .await?;
    if !gone {
        return Err(not_found(&name, &user));
    }
    Ok(if mv.at_least(2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}

/// What a create body asks for.
struct CreateRequest {
    name: String,
    key_type: String,
    public_key: Option<String>,
    user_id: Option<String>,
}

/// Checks a create body against the schema of its microversion (`create`, `create_v22`,
/// `create_v210`, `create_v292`).
fn parse_create(body: &Value, mv: Microversion) -> NovaResult<CreateRequest> {
    let k = schema::envelope(body, "keypair")?;
    let whole = &body["keypair"];
    let mut allowed = vec!["name", "public_key"];
    if mv.at_least(2) {
        allowed.push("type");
    }
    if mv.at_least(10) {
        allowed.push("user_id");
    }
    schema::only(k, &allowed, Some("keypair"), whole)?;
    schema::require(k, "name", Some("keypair"), whole)?;
    if mv.at_least(92) {
        schema::require(k, "public_key", Some("keypair"), whole)?;
    }
    let name = schema::name(&k["name"], "name")?.to_string();
    if !keypair_name_ok(&name, mv.0) {
        let chars = if mv.at_least(92) {
            KEYPAIR_CHARS_292
        } else {
            KEYPAIR_CHARS_20
        };
        return Err(NovaError::bad_request(format!(
            "An invalid 'name' value was provided. The name must be: Only expected characters: \
             [{chars}]"
        )));
    }
    let key_type = match k.get("type") {
        None => "ssh".to_string(),
        Some(v) => {
            let s = v.as_str().ok_or_else(|| {
                fail(
                    Some("type"),
                    v,
                    format!("{} is not of type 'string'", repr(v)),
                )
            })?;
            if s != "ssh" && s != "x509" {
                return Err(fail(
                    Some("type"),
                    v,
                    format!("{} is not one of ['ssh', 'x509']", repr(v)),
                ));
            }
            s.to_string()
        }
    };
    let public_key = match k.get("public_key") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| {
                    fail(
                        Some("public_key"),
                        v,
                        format!("{} is not of type 'string'", repr(v)),
                    )
                })?
                .to_string(),
        ),
    };
    let user_id = match k.get("user_id") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| {
                    fail(
                        Some("user_id"),
                        v,
                        format!("{} is not of type 'string'", repr(v)),
                    )
                })?
                .to_string(),
        ),
    };
    Ok(CreateRequest {
        name,
        key_type,
        public_key,
        user_id,
    })
}

/// `POST /os-keypairs`: 200 at 2.1, 201 from 2.2; `private_key` when generated.
pub async fn keypair_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> NovaResult<Response> {
    let req = parse_create(&body, mv)?;
    let user = target_user(
        &auth,
        mv,
        req.user_id.as_deref(),
        "os_compute_api:os-keypairs:create",
    )?;
    let invalid =
        || NovaError::bad_request("Keypair data is invalid: failed to generate fingerprint");
    let (public_key, fingerprint, private_key) = match (&req.public_key, req.key_type.as_str()) {
        (Some(pk), "x509") => (
            pk.clone(),
            keys::x509_fingerprint(pk).ok_or_else(invalid)?,
            None,
        ),
        (Some(pk), _) => (
            pk.clone(),
            keys::ssh_fingerprint(pk).ok_or_else(invalid)?,
            None,
        ),
        (None, "x509") => {
            let g = keys::generate_x509(&user).map_err(|_| NovaError::internal())?;
            (g.public_key, g.fingerprint, Some(g.private_key))
        }
        (None, _) => {
            let g =
                keys::generate_ed25519("Generated-by-Nova").map_err(|_| NovaError::internal())?;
            (g.public_key, g.fingerprint, Some(g.private_key))
        }
    };
    let project = auth.project().to_string();
    let cfg = svc.config().clone();
    let keypair = Keypair {
        user_id: user,
        name: req.name.clone(),
        id: 0,
        key_type: req.key_type.clone(),
        public_key,
        fingerprint,
        created_at: strata_core::time::now_micros(),
    };
    let k2 = keypair.clone();
    let keypair = svc
        .store()
        .write_or_refuse(move |tx| {
            let (mut k, project, cfg) = (k2.clone(), project.clone(), cfg.clone());
            Box::pin(async move {
                let (count, taken) = db::keypair_usage_tx(tx, &k.user_id, &k.name).await?;
                let limit =
                    super::quotas::limit_tx(tx, &cfg, &project, &k.user_id, "key_pairs").await?;
                if limit >= 0 && count + 1 > limit {
                    return Ok(Err(NovaError::over_quota(
                        "Quota exceeded, too many key pairs.",
                    )));
                }
                if taken {
                    return Ok(Err(NovaError::conflict(format!(
                        "Key pair '{}' already exists.",
                        k.name
                    ))));
                }
                // The revision is unique and increasing: it serves as the row id Nova shows.
                k.id = tx.revision();
                db::insert_keypair(tx, &k).await?;
                Ok(Ok(k))
            })
        })
        .await??;
    let status = if mv.at_least(2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(keypair_created(&keypair, private_key.as_deref(), mv)),
    )
        .into_response())
}
