//! Neutron's error bodies: `{"NeutronError": {"type": "NetworkNotFound", "message": "...",
//! "detail": ""}}`. 401s come from keystonemiddleware in front of Neutron, in Keystone's format.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use strata_core::Error;

/// An error answered in Neutron's format.
#[derive(Debug, Clone)]
pub struct NeutronError {
    pub status: StatusCode,
    /// Neutron's exception name (`NetworkNotFound`, `InUse`, `OverQuota`, …).
    pub kind: String,
    pub message: String,
}

pub type NeutronResult<T> = Result<T, NeutronError>;

impl NeutronError {
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        NeutronError {
            status,
            kind: kind.to_string(),
            message: message.into(),
        }
    }
    /// `HTTPBadRequest`, what Neutron answers for invalid input.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }
    /// Neutron's `InvalidInput`.
    pub fn invalid_input(message: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!(
                "Invalid input for operation: {}.",
                message.as_ref().trim_end_matches('.')
            ),
        )
    }
    /// `<Resource>NotFound` with Neutron's message (`Network x could not be found.`).
    pub fn not_found(resource: &str, id: &str) -> Self {
        let kind = format!("{}NotFound", camel(resource));
        Self::new(
            StatusCode::NOT_FOUND,
            &kind,
            format!("{} {id} could not be found.", sentence(resource)),
        )
    }
    pub fn conflict(kind: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, message)
    }
    /// A policy refusal, as oslo.policy's `PolicyNotAuthorized` reaches the client.
    pub fn policy(action: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
            format!("(rule:{action}) is disallowed by policy"),
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The request you have made requires authentication.",
        )
    }
}

/// `security_group_rule` → `SecurityGroupRule`.
fn camel(resource: &str) -> String {
    resource
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `security_group_rule` → `Security group rule`.
fn sentence(resource: &str) -> String {
    let words = resource.replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

impl IntoResponse for NeutronError {
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
        let body = serde_json::json!({"NeutronError": {
            "type": self.kind, "message": self.message, "detail": ""}});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<Error> for NeutronError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound { kind, id } => NeutronError::not_found(kind, &id),
            Error::Conflict(m) | Error::AlreadyExists(m) => NeutronError::conflict("Conflict", m),
            Error::InvalidRequest(m) => NeutronError::bad_request(m),
            Error::Forbidden(m) => NeutronError::new(StatusCode::FORBIDDEN, "Forbidden", m),
            Error::OverQuota(m) => NeutronError::conflict("OverQuota", m),
            other => {
                tracing::error!(error = %other, "network service error");
                NeutronError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "HTTPInternalServerError",
                    "Request Failed: internal server error while processing your request.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_neutron() {
        let e = NeutronError::not_found("security_group_rule", "x");
        assert_eq!(e.kind, "SecurityGroupRuleNotFound");
        assert_eq!(e.message, "Security group rule x could not be found.");
        assert_eq!(
            NeutronError::not_found("network", "n").kind,
            "NetworkNotFound"
        );
    }
}
