//! Glance's error bodies. Glance raises webob exceptions; for JSON clients webob renders them as
//! `{"message": "<explanation><br /><br />\n<detail>\n\n", "code": "404 Not Found", "title":
//! "Not Found"}` (webob's `body_template_obj`). Glance passes its own text either as the
//! explanation (most errors) or as the detail under webob's default explanation (malformed
//! bodies); both spellings are kept. 401s come from keystonemiddleware in front of Glance, in
//! Keystone's `{"error": {…}}` format with a `WWW-Authenticate` header.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use strata_core::Error;

/// An error answered in Glance's format.
#[derive(Debug)]
pub struct GlanceError {
    pub status: StatusCode,
    /// The rendered webob body (explanation, detail and the template's separators).
    pub message: String,
    /// Extra headers (`Accept-Patch` on 415).
    pub headers: Vec<(&'static str, String)>,
}

pub type GlanceResult<T> = Result<T, GlanceError>;

impl GlanceError {
    /// `explanation=msg`, as Glance raises most errors.
    pub fn new(status: StatusCode, explanation: impl AsRef<str>) -> Self {
        GlanceError {
            status,
            message: format!("{}<br /><br />\n\n\n", explanation.as_ref()),
            headers: Vec::new(),
        }
    }
    /// A positional `detail` under webob's default explanation for the status.
    pub fn detail(status: StatusCode, detail: impl AsRef<str>) -> Self {
        GlanceError {
            status,
            message: format!(
                "{}<br /><br />\n{}\n\n",
                default_explanation(status),
                detail.as_ref()
            ),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(msg: impl AsRef<str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }
    pub fn forbidden(msg: impl AsRef<str>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }
    /// A policy refusal, in oslo.policy's words as Glance relays them.
    pub fn policy(action: &str) -> Self {
        Self::forbidden(format!(
            "You are not authorized to complete {action} action."
        ))
    }
    pub fn conflict(msg: impl AsRef<str>) -> Self {
        Self::new(StatusCode::CONFLICT, msg)
    }
    /// Glance's 404 for an image that does not exist or that the caller may not see.
    pub fn image_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("No image found with ID {id}"),
        )
    }
    /// keystonemiddleware's 401.
    pub fn unauthorized() -> Self {
        GlanceError {
            status: StatusCode::UNAUTHORIZED,
            message: String::new(),
            headers: vec![("www-authenticate", "Keystone uri=\"/identity\"".into())],
        }
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// webob's `title` of a status.
pub fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        300 => "Multiple Choices",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// webob's default `explanation` of a status.
fn default_explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => {
            "The server could not comply with the request since it is either malformed or \
             otherwise incorrect."
        }
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        405 => "The method is not allowed for this resource.",
        409 => "There was a conflict when trying to complete your request.",
        410 => "This resource is no longer available.  No forwarding address is given.",
        413 => "The request is larger than the server is willing or able to process.",
        _ => "The server has either erred or is incapable of performing the requested operation.",
    }
}

impl IntoResponse for GlanceError {
    fn into_response(self) -> Response {
        let body = if self.status == StatusCode::UNAUTHORIZED {
            serde_json::json!({"error": {
                "code": 401,
                "title": "Unauthorized",
                "message": "The request you have made requires authentication.",
            }})
        } else {
            serde_json::json!({
                "message": self.message,
                "code": format!("{} {}", self.status.as_u16(), title(self.status)),
                "title": title(self.status),
            })
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (k, v) in self.headers {
            if let Ok(v) = http::HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp
    }
}

impl From<Error> for GlanceError {
    fn from(e: Error) -> Self {
        match &e {
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                GlanceError::new(StatusCode::INTERNAL_SERVER_ERROR, e.external_message())
            }
            Error::NotFound { id, .. } => GlanceError::image_not_found(id),
            Error::AlreadyExists(m) | Error::Conflict(m) => GlanceError::conflict(m),
            Error::InvalidRequest(m) => GlanceError::bad_request(m),
            Error::Forbidden(m) | Error::OverQuota(m) | Error::InsufficientCapacity(m) => {
                GlanceError::forbidden(m)
            }
            Error::Unauthenticated(_) => GlanceError::unauthorized(),
            Error::Unavailable(m) => GlanceError::new(StatusCode::SERVICE_UNAVAILABLE, m),
        }
    }
}
