//! Placement's error bodies: `{"errors": [{"status", "title", "detail", "code", "request_id"}]}`.
//!
//! Placement renders webob exceptions through its JSON formatter: `detail` is the exception's
//! explanation, a blank line and the message; `code` (one of [`codes`]) appears from 1.23; the
//! request id is the one the request-id middleware assigned. A handler's error does not know
//! the microversion or the request id, so [`PlacementError::into_response`] stores the error in
//! the response's extensions and the version middleware ([`crate::version::layer`]) renders
//! the final body. 401s come from keystonemiddleware in front of Placement, in its format.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use strata_core::Error;

/// The `code` values Placement answers with (`placement/errors.py`).
pub mod codes {
    pub const DEFAULT: &str = "placement.undefined_code";
    pub const INVENTORY_INUSE: &str = "placement.inventory.inuse";
    pub const CONCURRENT_UPDATE: &str = "placement.concurrent_update";
    pub const DUPLICATE_NAME: &str = "placement.duplicate_name";
    pub const PROVIDER_IN_USE: &str = "placement.resource_provider.inuse";
    pub const PROVIDER_CANNOT_DELETE_PARENT: &str =
        "placement.resource_provider.cannot_delete_parent";
    pub const RESOURCE_PROVIDER_NOT_FOUND: &str = "placement.resource_provider.not_found";
    pub const ILLEGAL_DUPLICATE_QUERYPARAM: &str = "placement.query.duplicate_key";
    pub const QUERYPARAM_BAD_VALUE: &str = "placement.query.bad_value";
    pub const QUERYPARAM_MISSING_VALUE: &str = "placement.query.missing_value";
}

/// An error answered in Placement's format.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementError {
    pub status: StatusCode,
    /// The message after the status's explanation.
    pub detail: String,
    /// One of [`codes`].
    pub code: &'static str,
}

pub type PlacementResult<T> = Result<T, PlacementError>;

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for PlacementError {}

impl PlacementError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        PlacementError {
            status,
            detail: detail.into(),
            code: codes::DEFAULT,
        }
    }
    /// The same error with another `code`.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    /// A body that failed Placement's JSON schema.
    pub fn schema(msg: impl AsRef<str>) -> Self {
        Self::bad_request(format!("JSON does not validate: {}", msg.as_ref()))
    }
    /// A query string that failed Placement's query schema.
    pub fn query(msg: impl AsRef<str>) -> Self {
        Self::bad_request(format!("Invalid query string parameters: {}", msg.as_ref()))
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    /// `No resource provider with uuid X found`.
    pub fn provider_not_found(uuid: &str) -> Self {
        Self::not_found(format!("No resource provider with uuid {uuid} found"))
            .with_code(codes::RESOURCE_PROVIDER_NOT_FOUND)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    /// A provider generation that does not match the server's.
    pub fn provider_generation(uuid: &str) -> Self {
        Self::conflict(format!(
            "resource provider generation conflict for provider {uuid}"
        ))
        .with_code(codes::CONCURRENT_UPDATE)
    }
    /// oslo.policy's refusal.
    pub fn policy(rule: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("Policy does not allow {rule} to be performed."),
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }

    /// webob's explanation of the status, which Placement's bodies start with.
    fn explanation(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
            403 => "Access was denied to this resource.",
            404 => "The resource could not be found.",
            405 => "The method specified is not allowed for this resource.",
            406 => "The resource could not be generated that was acceptable to your browser.",
            409 => "There was a conflict when trying to complete your request.",
            415 => "The request media type is not supported by this server.",
            _ => "The server has either erred or is incapable of performing the requested operation.",
        }
    }

    /// The whole body: `code` only from 1.23 (`with_code`), `request_id` when known.
    pub fn body(&self, with_code: bool, request_id: Option<&str>) -> serde_json::Value {
        let mut e = json!({
            "status": self.status.as_u16(),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "detail": format!("{}\n\n {}  ", self.explanation(), self.detail),
        });
        if with_code {
            e["code"] = json!(self.code);
        }
        if let Some(id) = request_id {
            e["request_id"] = json!(id);
        }
        json!({"errors": [e]})
    }
}

impl IntoResponse for PlacementError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            // keystonemiddleware's answer, as for every service behind it.
            let body = json!({"error": {"code": 401, "title": "Unauthorized",
                "message": self.detail}});
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
        // Rendered with the code and request id by the version middleware; this body stands
        // when the router is used without it.
        let mut resp = (self.status, axum::Json(self.body(true, None))).into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

impl From<Error> for PlacementError {
    fn from(e: Error) -> Self {
        match e {
            e @ Error::NotFound { .. } => PlacementError::not_found(e.to_string()),
            Error::Conflict(m) => PlacementError::conflict(m),
            Error::AlreadyExists(m) => PlacementError::conflict(m).with_code(codes::DUPLICATE_NAME),
            Error::InvalidRequest(m) => PlacementError::bad_request(m),
            Error::Forbidden(m) => PlacementError::new(StatusCode::FORBIDDEN, m),
            Error::InsufficientCapacity(m) | Error::OverQuota(m) => PlacementError::conflict(m),
            other => {
                tracing::error!(error = %other, "placement service error");
                PlacementError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error prevented the server from fulfilling your request.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_placement_shape() {
        let e = PlacementError::provider_not_found("abc");
        let b = e.body(true, Some("req-1"));
        let e0 = &b["errors"][0];
        assert_eq!(e0["status"], 404);
        assert_eq!(e0["title"], "Not Found");
        assert_eq!(e0["code"], "placement.resource_provider.not_found");
        assert_eq!(e0["request_id"], "req-1");
        assert!(e0["detail"]
            .as_str()
            .unwrap()
            .contains("No resource provider with uuid abc found"));
        let b = e.body(false, None);
        assert!(b["errors"][0].get("code").is_none());
    }
}
