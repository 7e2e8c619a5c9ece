//! Keystone's error body: `{"error": {"code": N, "message": "...", "title": "..."}}`.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use strata_core::Error;

/// An error answered in Keystone's format.
#[derive(Debug)]
pub struct KsError {
    pub status: StatusCode,
    pub message: String,
}

/// Keystone's one message for every authentication failure, so that a wrong user name and a
/// wrong password cannot be told apart.
pub const UNAUTHENTICATED: &str = "The request you have made requires authentication.";

impl KsError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        KsError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, UNAUTHENTICATED)
    }
    pub fn forbidden(action: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("You are not authorized to perform the requested action: {action}."),
        )
    }
    /// A 403 with a message of its own (not a policy refusal).
    pub fn forbidden_msg(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("Could not find {kind}: {id}."),
        )
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
}

fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

impl IntoResponse for KsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {
            "code": self.status.as_u16(),
            "message": self.message,
            "title": title(self.status),
        }});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Keystone uri=\"/identity\""),
            );
        }
        resp
    }
}

impl From<Error> for KsError {
    fn from(e: Error) -> Self {
        match &e {
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                KsError::new(StatusCode::INTERNAL_SERVER_ERROR, e.external_message())
            }
            Error::NotFound { .. } => KsError::new(StatusCode::NOT_FOUND, e.to_string()),
            Error::AlreadyExists(m) | Error::Conflict(m) => KsError::conflict(m.clone()),
            Error::InvalidRequest(m) => KsError::bad_request(m.clone()),
            Error::Forbidden(m) => KsError::new(StatusCode::FORBIDDEN, m.clone()),
            Error::Unauthenticated(m) => KsError::new(StatusCode::UNAUTHORIZED, m.clone()),
            Error::OverQuota(m) | Error::InsufficientCapacity(m) => {
                KsError::new(StatusCode::FORBIDDEN, m.clone())
            }
            Error::Unavailable(m) => KsError::new(StatusCode::SERVICE_UNAVAILABLE, m.clone()),
        }
    }
}

/// Result type of identity handlers.
pub type KsResult<T> = Result<T, KsError>;
