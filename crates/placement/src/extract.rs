//! Extractors for placement handlers: the caller (admitted by Placement's default policy), the
//! microversion, the query pairs and JSON bodies, failing in Placement's error format.

use crate::error::PlacementError;
use crate::version::{Microversion, MIN_VERSION};
use crate::PlacementService;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use strata_api::{access_rules_allow, AuthContext, AUTH_TOKEN_HEADER};

/// The service type access rules name for this service.
pub const SERVICE_TYPE: &str = "placement";

/// The authenticated caller (401 in keystonemiddleware's format otherwise). Placement's
/// default policy admits only the `admin` and `service` roles to every API; the check happens
/// here, so each handler names its rule with [`Auth::allow`] only for the refusal's wording.
pub struct Auth(pub Arc<AuthContext>);

impl FromRequestParts<PlacementService> for Auth {
    type Rejection = PlacementError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PlacementService,
    ) -> Result<Self, PlacementError> {
        let token = parts
            .headers
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(PlacementError::unauthorized)?;
        let ctx = state
            .tokens()
            .validate(token)
            .await
            .map_err(|_| PlacementError::unauthorized())?;
        if !access_rules_allow(
            &ctx.access_rules,
            SERVICE_TYPE,
            parts.method.as_str(),
            parts.uri.path(),
        ) {
            return Err(PlacementError::unauthorized());
        }
        let auth = Auth(ctx);
        // Every Placement API is `role:admin or role:service` by default: refuse before the
        // body is looked at, as oslo.policy does in Placement's handlers.
        if !auth.privileged() {
            return Err(PlacementError::policy(&rule_name(
                &parts.method,
                parts.uri.path(),
            )));
        }
        Ok(auth)
    }
}

impl Auth {
    /// Whether the caller passes `role:admin or role:service`.
    pub fn privileged(&self) -> bool {
        self.0.has_role("admin") || self.0.has_role("service")
    }
}

/// The policy rule a request falls under, as Placement names them
/// (`placement:resource_providers:list`, `placement:allocations:update`, …).
fn rule_name(method: &http::Method, path: &str) -> String {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // The path may still carry the `/placement` prefix when not nested.
    let segs: Vec<&str> = match segs.first() {
        Some(&"placement") => segs[1..].to_vec(),
        _ => segs,
    };
    let (resource, item) = match segs.as_slice() {
        [] => ("root".to_string(), false),
        [r] => (r.to_string(), false),
        [r, _] => (r.to_string(), true),
        [r, _, sub, ..] => (format!("{r}:{sub}"), segs.len() > 3),
    };
    let verb = match (method.as_str(), item) {
        ("GET", false) => "list",
        ("GET", true) => "show",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("DELETE", _) => "delete",
        _ => "show",
    };
    format!("placement:{resource}:{verb}")
}

/// The request's microversion (set by the version middleware; 1.0 when absent).
pub struct Mv(pub Microversion);

impl<S: Send + Sync> FromRequestParts<S> for Mv {
    type Rejection = PlacementError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PlacementError> {
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
    type Rejection = PlacementError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PlacementError> {
        crate::query::pairs(parts.uri.query().unwrap_or_default())
            .map(Pairs)
            .ok_or_else(|| PlacementError::bad_request("Malformed query string"))
    }
}

/// A JSON request body: 415 unless sent as `application/json`, 400 when malformed.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = PlacementError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PlacementError> {
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
        if ct.as_deref() != Some("application/json") {
            return Err(PlacementError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "The media type {} is not supported, use application/json",
                    ct.as_deref().unwrap_or("None")
                ),
            ));
        }
        let bytes = match bytes::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(PlacementError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request is too large.",
                ))
            }
            Err(rej) => return Err(PlacementError::bad_request(rej.body_text())),
        };
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| PlacementError::bad_request(format!("Malformed JSON: {e}")))
    }
}
