//! Cinder's error bodies. Cinder's `Fault` wraps webob exceptions as `{"<name>": {"code": N,
//! "message": "..."}}`, the name chosen by status (`badRequest`, `itemNotFound`, `overLimit`, …).
//! 401s come from keystonemiddleware in front of Cinder, in Keystone's format.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use strata_core::Error;

/// An error answered in Cinder's format.
#[derive(Debug)]
pub struct CinderError {
    pub status: StatusCode,
    pub message: String,
}

pub type CinderResult<T> = Result<T, CinderError>;

impl CinderError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        CinderError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }
    /// A body that failed schema validation, in Cinder's words.
    pub fn invalid_input(msg: impl AsRef<str>) -> Self {
        Self::bad_request(format!("Invalid input received: {}", msg.as_ref()))
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }
    pub fn volume_not_found(id: &str) -> Self {
        Self::not_found(format!("Volume {id} could not be found."))
    }
    pub fn snapshot_not_found(id: &str) -> Self {
        Self::not_found(format!("Snapshot {id} could not be found."))
    }
    pub fn type_not_found(id: &str) -> Self {
        Self::not_found(format!("Volume type {id} could not be found."))
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }
    /// oslo.policy's refusal as Cinder relays it.
    pub fn policy(rule: &str) -> Self {
        Self::forbidden(format!("Policy doesn't allow {rule} to be performed."))
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, msg)
    }
    /// An invalid state transition (Cinder's `InvalidVolume` & co, answered 400).
    pub fn invalid_volume(msg: impl AsRef<str>) -> Self {
        Self::bad_request(format!("Invalid volume: {}", msg.as_ref()))
    }
    pub fn invalid_snapshot(msg: impl AsRef<str>) -> Self {
        Self::bad_request(format!("Invalid snapshot: {}", msg.as_ref()))
    }
    /// Quota exhaustion: Cinder answers 413 `overLimit`.
    pub fn over_quota(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, msg)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }
}

/// Cinder's fault name for a status (`cinder/api/openstack/wsgi.py`).
pub fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

impl IntoResponse for CinderError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            // keystonemiddleware's answer, as for every service behind it.
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

impl From<Error> for CinderError {
    fn from(e: Error) -> Self {
        match e {
            e @ Error::NotFound { .. } => CinderError::not_found(e.to_string()),
            Error::Conflict(m) | Error::AlreadyExists(m) => CinderError::conflict(m),
            Error::InvalidRequest(m) => CinderError::bad_request(m),
            Error::Forbidden(m) => CinderError::forbidden(m),
            Error::OverQuota(m) => CinderError::over_quota(m),
            other => {
                tracing::error!(error = %other, "volume service error");
                CinderError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server has either erred or is incapable of performing the requested operation.",
                )
            }
        }
    }
}
