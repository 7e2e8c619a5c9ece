//! Ironic's error bodies. Ironic renders a fault as a JSON object — `faultcode` (`Client` for
//! 4xx, `Server` otherwise), `faultstring`, `debuginfo` — and its outermost middleware then
//! wraps *that text* as a string: `{"error_message": "{\"faultcode\": ...}"}`. Clients
//! (python-ironicclient, gophercloud) parse the inner string again. 401s come from
//! keystonemiddleware in front of Ironic, in Keystone's format.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use strata_core::Error;

/// An error answered in Ironic's format.
#[derive(Debug)]
pub struct IronicError {
    pub status: StatusCode,
    pub message: String,
}

pub type IronicResult<T> = Result<T, IronicError>;

impl IronicError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        IronicError {
            status,
            message: message.into(),
        }
    }
    /// `Invalid` and its children (`InvalidParameterValue`, `InvalidStateRequested`, …): 400.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, msg)
    }
    /// `NotAcceptable`: a field, filter or verb newer than the requested microversion.
    pub fn not_acceptable() -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "Request not acceptable.")
    }
    /// oslo.policy's refusal as Ironic words it (`HTTPForbidden`).
    pub fn policy(rule: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("Access was denied to the following resource: {rule}"),
        )
    }
    pub fn node_not_found(ident: &str) -> Self {
        Self::not_found(format!("Node {ident} could not be found."))
    }
    pub fn port_not_found(ident: &str) -> Self {
        Self::not_found(format!("Port {ident} could not be found."))
    }
    /// `NodeLocked`: a conductor holds the node.
    pub fn node_locked(node: &str, host: &str) -> Self {
        Self::conflict(format!(
            "Node {node} is locked by host {host}, please retry after the current operation is \
             completed."
        ))
    }
    /// `InvalidStateRequested`: the verb is not legal from the node's state.
    pub fn invalid_state_requested(action: &str, node: &str, state: &str) -> Self {
        Self::invalid(format!(
            "The requested action \"{action}\" can not be performed on node \"{node}\" while it \
             is in state \"{state}\"."
        ))
    }
    /// `InvalidParameterValue` for a query parameter or argument that failed validation.
    pub fn bad_param(msg: impl Into<String>) -> Self {
        Self::invalid(msg)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }
    /// A BMC or driver failure while serving a synchronous call (`IronicException`, 500).
    pub fn server(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }
    /// The `faultcode` Ironic gives this status.
    pub fn faultcode(&self) -> &'static str {
        if self.status.is_client_error() {
            "Client"
        } else {
            "Server"
        }
    }
    /// The `error_message` string: the fault serialised as Ironic's `json.dumps` writes it.
    pub fn error_message(&self) -> String {
        // Key order and separators as Python's json.dumps gives them for the dict Ironic builds.
        format!(
            "{{\"faultcode\": {}, \"faultstring\": {}, \"debuginfo\": null}}",
            serde_json::Value::String(self.faultcode().into()),
            serde_json::Value::String(self.message.clone()),
        )
    }
}

impl std::fmt::Display for IronicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for IronicError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            // keystonemiddleware's answer, in front of Ironic's own error middleware.
            return strata_api::unauthorized_response(&self.message);
        }
        let body = serde_json::json!({ "error_message": self.error_message() });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<Error> for IronicError {
    fn from(e: Error) -> Self {
        match e {
            e @ Error::NotFound { .. } => IronicError::not_found(e.to_string()),
            Error::Conflict(m) | Error::AlreadyExists(m) => IronicError::conflict(m),
            Error::InvalidRequest(m) => IronicError::invalid(m),
            Error::Forbidden(m) => IronicError::new(StatusCode::FORBIDDEN, m),
            Error::Unavailable(m) => IronicError::new(StatusCode::SERVICE_UNAVAILABLE, m),
            other => {
                tracing::error!(error = %other, "baremetal service error");
                IronicError::server(
                    "The server has either erred or is incapable of performing the requested \
                     operation.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_is_a_json_string_inside_json() {
        let e = IronicError::node_not_found("n1");
        let inner: serde_json::Value = serde_json::from_str(&e.error_message()).unwrap();
        assert_eq!(inner["faultcode"], "Client");
        assert_eq!(inner["faultstring"], "Node n1 could not be found.");
        assert!(inner["debuginfo"].is_null());
        assert_eq!(
            e.error_message(),
            "{\"faultcode\": \"Client\", \"faultstring\": \"Node n1 could not be found.\", \
             \"debuginfo\": null}"
        );
        assert_eq!(IronicError::server("x").faultcode(), "Server");
    }
}
