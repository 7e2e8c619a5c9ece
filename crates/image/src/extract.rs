//! Extractors for image handlers: the caller's [`AuthContext`] and request bodies, failing in
//! Glance's error format.

use crate::error::GlanceError;
use crate::ImageService;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::StatusCode;
use std::sync::Arc;
use strata_api::{access_rules_allow, AuthContext, AUTH_TOKEN_HEADER};

/// The service type access rules name for this service.
pub const SERVICE_TYPE: &str = "image";

/// The authenticated caller: 401 (keystonemiddleware's body) when the token is missing or
/// invalid, or when it came from an application credential whose access rules do not allow the
/// request (`path` is relative to the service root, `/v2/...`).
pub struct Auth(pub Arc<AuthContext>);

impl FromRequestParts<ImageService> for Auth {
    type Rejection = GlanceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ImageService,
    ) -> Result<Self, GlanceError> {
        if let Some(ctx) = strata_api::in_process_caller(parts) {
            return Ok(Auth(ctx));
        }
        let token = parts
            .headers
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(GlanceError::unauthorized)?;
        let ctx = state
            .tokens()
            .validate(token)
            .await
            .map_err(|_| GlanceError::unauthorized())?;
        if !access_rules_allow(
            &ctx.access_rules,
            SERVICE_TYPE,
            parts.method.as_str(),
            parts.uri.path(),
        ) {
            return Err(GlanceError::unauthorized());
        }
        Ok(Auth(ctx))
    }
}

/// The raw body with its content type: 413 over the body limit.
pub struct Body {
    pub content_type: Option<String>,
    pub bytes: bytes::Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = GlanceError;

    async fn from_request(req: Request, state: &S) -> Result<Self, GlanceError> {
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match bytes::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body {
                content_type,
                bytes,
            }),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(GlanceError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body is too large.",
            )),
            Err(rej) => Err(GlanceError::bad_request(rej.body_text())),
        }
    }
}

impl Body {
    /// The body as JSON, as Glance's `JSONRequestDeserializer` reads it: 400 "Body expected in
    /// request." when empty, 400 "Malformed JSON in request body." when not JSON.
    pub fn json(&self) -> Result<serde_json::Value, GlanceError> {
        if self.bytes.is_empty() {
            return Err(GlanceError::detail(
                StatusCode::BAD_REQUEST,
                "Body expected in request.",
            ));
        }
        serde_json::from_slice(&self.bytes).map_err(|_| {
            GlanceError::detail(StatusCode::BAD_REQUEST, "Malformed JSON in request body.")
        })
    }
}
