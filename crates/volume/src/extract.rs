//! Extractors for volume handlers: the caller, the microversion and JSON bodies, failing in
//! Cinder's error format.

use crate::error::CinderError;
use crate::version::Microversion;
use crate::VolumeService;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use strata_api::{access_rules_allow, AuthContext, AUTH_TOKEN_HEADER};

/// The service type access rules name for this service.
pub const SERVICE_TYPE: &str = "block-storage";

/// The authenticated caller (401 in keystonemiddleware's format otherwise). Tokens not scoped
/// to a project are refused with 403: every Cinder resource belongs to a project.
pub struct Auth(pub Arc<AuthContext>);

impl FromRequestParts<VolumeService> for Auth {
    type Rejection = CinderError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &VolumeService,
    ) -> Result<Self, CinderError> {
        if let Some(ctx) = strata_api::in_process_caller(parts) {
            return Ok(Auth(ctx));
        }
        let token = parts
            .headers
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(CinderError::unauthorized)?;
        let ctx = state
            .tokens()
            .validate(token)
            .await
            .map_err(|_| CinderError::unauthorized())?;
        if !access_rules_allow(
            &ctx.access_rules,
            SERVICE_TYPE,
            parts.method.as_str(),
            parts.uri.path(),
        ) && !access_rules_allow(
            &ctx.access_rules,
            "volumev3",
            parts.method.as_str(),
            parts.uri.path(),
        ) {
            return Err(CinderError::unauthorized());
        }
        if ctx.project_id().is_none() {
            return Err(CinderError::forbidden(
                "Cinder requires a project-scoped token.",
            ));
        }
        Ok(Auth(ctx))
    }
}

impl Auth {
    pub fn project(&self) -> &str {
        self.0.project_id().unwrap_or_default()
    }
    pub fn admin(&self) -> bool {
        crate::model::is_admin(&self.0)
    }
}

/// The request's microversion (set by the version middleware; 3.0 when absent).
pub struct Mv(pub Microversion);

impl<S: Send + Sync> FromRequestParts<S> for Mv {
    type Rejection = CinderError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, CinderError> {
        Ok(Mv(parts
            .extensions
            .get::<Microversion>()
            .copied()
            .unwrap_or(Microversion(crate::version::MIN_VERSION))))
    }
}

/// A JSON request body: 400 when empty or malformed, 413 over the body limit.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = CinderError;

    async fn from_request(req: Request, state: &S) -> Result<Self, CinderError> {
        let bytes = match bytes::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(CinderError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request is too large.",
                ))
            }
            Err(rej) => return Err(CinderError::bad_request(rej.body_text())),
        };
        if bytes.is_empty() {
            return Err(CinderError::bad_request("Malformed request body"));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|_| CinderError::bad_request("Malformed request body"))
    }
}

impl Body {
    /// The object under `key` (`{"volume": {...}}`): 400 naming the element otherwise.
    pub fn entity(&self, key: &str) -> Result<&serde_json::Map<String, Value>, CinderError> {
        match self.0.get(key) {
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(CinderError::bad_request(format!(
                "Invalid input for field/attribute {key}. Value: {other}. {other} is not of type \
                 'object'"
            ))),
            None => Err(CinderError::bad_request(format!(
                "Missing required element '{key}' in request body."
            ))),
        }
    }
}
