//! Nova's fault bodies. Nova's `wsgi.Fault` wraps webob exceptions as `{"<name>": {"code": N,
//! "message": "..."}}`, the name chosen by status (`badRequest`, `itemNotFound`, `overLimit`,
//! …; anything unnamed, 406 included, is `computeFault`). 401s come from keystonemiddleware in
//! front of Nova, in Keystone's format.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use strata_core::Error;

/// An error answered in Nova's format.
#[derive(Debug)]
pub struct NovaError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `message` of the fault body.
    pub message: String,
}

/// Results of compute handlers.
pub type NovaResult<T> = Result<T, NovaError>;

impl NovaError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        NovaError {
            status,
            message: message.into(),
        }
    }
    /// 400 `badRequest`.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }
    /// 400 as `InvalidInput` words it.
    pub fn invalid_input(msg: impl AsRef<str>) -> Self {
        Self::bad_request(format!("Invalid input received: {}", msg.as_ref()))
    }
    /// 404 `itemNotFound`.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }
    /// Nova's `FlavorNotFound`.
    pub fn flavor_not_found(id: &str) -> Self {
        Self::not_found(format!("Flavor {id} could not be found."))
    }
    /// 403 `forbidden`.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }
    /// oslo.policy's refusal as Nova relays it.
    pub fn policy(rule: &str) -> Self {
        Self::forbidden(format!("Policy doesn't allow {rule} to be performed."))
    }
    /// 409 `conflictingRequest`.
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, msg)
    }
    /// Quota exhaustion for keypairs (and, later, servers): Nova answers 403 `forbidden`.
    pub fn over_quota(msg: impl Into<String>) -> Self {
        Self::forbidden(msg)
    }
    /// 401 in keystonemiddleware's words.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }
    /// 500 `computeFault`.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and \
             attach the Nova API log if possible.",
        )
    }
}

impl std::fmt::Display for NovaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// Nova's fault name for a status (`nova/api/openstack/wsgi.py`, `Fault._fault_names`).
pub fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

impl IntoResponse for NovaError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            let body = serde_json::json!({"error": {"code": 401, "title": "Unauthorized",
                "message": self.message}});
            return (
                self.status,
                [(
                    http::header::WWW_AUTHENTICATE,
                    "Keystone uri=\"/identity\"".to_string(),
                )],
                axum::Json(body),
            )
                .into_response();
        }
        let body = serde_json::json!({
            fault_name(self.status): {"code": self.status.as_u16(), "message": self.message}
        });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<Error> for NovaError {
    fn from(e: Error) -> Self {
        match e {
            e @ Error::NotFound { .. } => NovaError::not_found(e.to_string()),
            Error::Conflict(m) | Error::AlreadyExists(m) => NovaError::conflict(m),
            Error::InvalidRequest(m) => NovaError::bad_request(m),
            Error::Forbidden(m) | Error::OverQuota(m) => NovaError::forbidden(m),
            other => {
                tracing::error!(error = %other, "compute service error");
                NovaError::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_follow_nova() {
        assert_eq!(fault_name(StatusCode::NOT_FOUND), "itemNotFound");
        assert_eq!(fault_name(StatusCode::NOT_ACCEPTABLE), "computeFault");
        assert_eq!(fault_name(StatusCode::PAYLOAD_TOO_LARGE), "overLimit");
        assert_eq!(fault_name(StatusCode::CONFLICT), "conflictingRequest");
    }
}
