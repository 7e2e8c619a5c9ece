//! Extractors for compute handlers: the caller, the microversion, the query pairs and JSON
//! bodies, failing in Nova's error format.

use crate::error::NovaError;
use crate::version::{Microversion, MIN_VERSION};
use crate::ComputeService;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use http::request::Parts;
use http::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use strata_api::{access_rules_allow, AuthContext, AUTH_TOKEN_HEADER};

/// The service type access rules name for this service.
pub const SERVICE_TYPE: &str = "compute";

/// The project id a request named in its URL (`/v2.1/{project_id}/...`), put there by the
/// prefix rewrite in `api::router`.
#[derive(Debug, Clone)]
pub struct UrlProject(pub String);

/// The authenticated caller (401 in keystonemiddleware's format otherwise). Tokens not scoped
/// to a project are refused with 403, and a project id in the URL must be the token's (400
/// otherwise, as Nova's WSGI layer answers).
pub struct Auth(pub Arc<AuthContext>);

/// The caller's validated token (401 in keystonemiddleware's format without a valid one).
pub(crate) async fn token_context(
    parts: &Parts,
    state: &ComputeService,
) -> Result<Arc<AuthContext>, NovaError> {
    let token = parts
        .headers
        .get(AUTH_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(NovaError::unauthorized)?;
    state
        .tokens()
        .validate(token)
        .await
        .map_err(|_| NovaError::unauthorized())
}

impl FromRequestParts<ComputeService> for Auth {
    type Rejection = NovaError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ComputeService,
    ) -> Result<Self, NovaError> {
        let ctx = token_context(parts, state).await?;
        if !access_rules_allow(
            &ctx.access_rules,
            SERVICE_TYPE,
            parts.method.as_str(),
            parts.uri.path(),
        ) {
            return Err(NovaError::unauthorized());
        }
        let Some(project) = ctx.project_id() else {
            return Err(NovaError::forbidden(
                "Nova requires a project-scoped token.",
            ));
        };
        if let Some(UrlProject(url)) = parts.extensions.get::<UrlProject>() {
            if url != project {
                return Err(NovaError::bad_request(format!(
                    "Malformed request URL: URL's project_id '{url}' doesn't match Context's \
                     project_id '{project}'"
                )));
            }
        }
        Ok(Auth(ctx))
    }
}

impl Auth {
    /// The token's project.
    pub fn project(&self) -> &str {
        self.0.project_id().unwrap_or_default()
    }
    /// The caller's user id.
    pub fn user(&self) -> &str {
        &self.0.user_id
    }
    /// Nova's `context_is_admin` (`role:admin`).
    pub fn admin(&self) -> bool {
        self.0.is_admin()
    }
    /// Passes an admin-only rule, or refuses naming it.
    pub fn require_admin(&self, rule: &str) -> Result<(), NovaError> {
        if self.admin() {
            Ok(())
        } else {
            Err(NovaError::policy(rule))
        }
    }
    /// Passes `PROJECT_READER_OR_ADMIN` for `project`, or refuses naming the rule.
    pub fn require_reader_of(&self, project: &str, rule: &str) -> Result<(), NovaError> {
        if self.admin() || self.project() == project {
            Ok(())
        } else {
            Err(NovaError::policy(rule))
        }
    }
}

/// The request's microversion (set by the version middleware; 2.1 when absent).
pub struct Mv(pub Microversion);

impl<S: Send + Sync> FromRequestParts<S> for Mv {
    type Rejection = NovaError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NovaError> {
        Ok(Mv(parts
            .extensions
            .get::<Microversion>()
            .copied()
            .unwrap_or(Microversion(MIN_VERSION))))
    }
}

/// The query string as ordered pairs (keys may repeat).
pub struct Pairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Pairs {
    type Rejection = NovaError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NovaError> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| Pairs(q.0))
            .map_err(|_| NovaError::bad_request("Malformed query string"))
    }
}

impl Pairs {
    /// From 2.75 Nova's query schemas forbid parameters beyond `allowed` (400); before, they
    /// are ignored.
    pub fn only(&self, mv: Microversion, allowed: &[&str]) -> Result<(), NovaError> {
        if !mv.at_least(75) {
            return Ok(());
        }
        let mut extra: Vec<String> = Vec::new();
        for (k, _) in &self.0 {
            let quoted = format!("'{k}'");
            if !allowed.contains(&k.as_str()) && !extra.contains(&quoted) {
                extra.push(quoted);
            }
        }
        if extra.is_empty() {
            return Ok(());
        }
        Err(NovaError::bad_request(format!(
            "Additional properties are not allowed ({} {} unexpected)",
            extra.join(", "),
            if extra.len() == 1 { "was" } else { "were" }
        )))
    }

    /// The last value given for `key` (webob's `GET.get` keeps the last).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A JSON request body: 415 for a non-JSON content type, 400 when malformed, 413 over the
/// body limit.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = NovaError;

    async fn from_request(req: Request, state: &S) -> Result<Self, NovaError> {
        let ct = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| {
                s.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if let Some(ct) = ct.as_deref() {
            if ct != "application/json" && !ct.is_empty() {
                return Err(NovaError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Unsupported Content-Type",
                ));
            }
        }
        let bytes = match bytes::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(NovaError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request is too large.",
                ))
            }
            Err(rej) => return Err(NovaError::bad_request(rej.body_text())),
        };
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            // Nova validates the missing body as `None` against the schema.
            return Ok(Body(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|_| NovaError::bad_request("Malformed request body"))
    }
}
