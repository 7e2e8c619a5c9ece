//! Extractors for identity handlers: the caller's [`AuthContext`] and JSON bodies, both failing
//! in Keystone's error format.

use crate::error::KsError;
use crate::Identity;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::StatusCode;
use serde::de::DeserializeOwned;
use strata_api::{access_rules_allow, parse_json, AuthContext, AuthFailure, AUTH_TOKEN_HEADER};

/// The service type access rules name for this service.
pub const SERVICE_TYPE: &str = "identity";

/// The authenticated caller. Rejects with 401 when the token is missing or invalid, or when it
/// came from an application credential whose access rules do not allow this request.
pub struct Auth(pub std::sync::Arc<AuthContext>);

/// Whether the access rules of `ctx` allow a request, as keystonemiddleware decides for
/// Keystone: `path` is relative to the service root (`/v3/...`, the router is nested under
/// `/identity`), and validating tokens (`GET /v3/auth/tokens`) is always allowed.
fn allowed(ctx: &AuthContext, method: &http::Method, path: &str) -> bool {
    (method == http::Method::GET && path.ends_with("/v3/auth/tokens"))
        || access_rules_allow(&ctx.access_rules, SERVICE_TYPE, method.as_str(), path)
}

impl FromRequestParts<Identity> for Auth {
    type Rejection = KsError;

    async fn from_request_parts(parts: &mut Parts, state: &Identity) -> Result<Self, KsError> {
        let token = parts
            .headers
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(KsError::unauthorized())?;
        match state.authenticate(token).await {
            Ok(ctx) if allowed(&ctx, &parts.method, parts.uri.path()) => Ok(Auth(ctx)),
            Ok(_) => Err(KsError::unauthorized()),
            Err(AuthFailure::Missing | AuthFailure::Invalid) => Err(KsError::unauthorized()),
        }
    }
}

/// A JSON body of type `T`: 400 for malformed JSON or a field of the wrong shape (naming the
/// field), 413 for a body over the limit.
pub struct KsJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for KsJson<T> {
    type Rejection = KsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, KsError> {
        let bytes = match bytes::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(KsError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request is too large.",
                ))
            }
            Err(rej) => return Err(KsError::bad_request(rej.body_text())),
        };
        parse_json::<T>(&bytes)
            .map(KsJson)
            .map_err(|e| KsError::bad_request(e.message()))
    }
}
