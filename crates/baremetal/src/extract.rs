//! Extractors for bare-metal handlers: the caller (Ironic's default policy: every API of this
//! increment is `system admin or project admin`), the microversion, JSON bodies and query
//! strings, failing in Ironic's error format.

use crate::error::IronicError;
use crate::version::Microversion;
use crate::BaremetalService;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use strata_api::AuthContext;

/// The service type access rules name for this service.
pub const SERVICE_TYPE: &str = "baremetal";

/// The authenticated caller, with the role Ironic's defaults want for everything served here:
/// `admin` on the system or on a project (`SYSTEM_ADMIN or PROJECT_ADMIN`). 401 without a valid
/// token, 403 otherwise (checked per route with [`Admin::require`]).
pub struct Admin(pub Arc<AuthContext>);

impl FromRequestParts<BaremetalService> for Admin {
    type Rejection = IronicError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &BaremetalService,
    ) -> Result<Self, IronicError> {
        strata_api::authenticate(parts, state.tokens(), &[SERVICE_TYPE])
            .await
            .map(Admin)
            .map_err(|_| IronicError::unauthorized())
    }
}

impl Admin {
    /// Ironic's `SYSTEM_ADMIN or PROJECT_ADMIN` for `rule` (named in the 403).
    pub fn require(&self, rule: &str) -> Result<(), IronicError> {
        let scoped = self.0.is_system() || self.0.project_id().is_some();
        if scoped && self.0.has_role("admin") {
            Ok(())
        } else {
            Err(IronicError::policy(rule))
        }
    }
}

/// The request's microversion (set by the version middleware).
pub struct Mv(pub Microversion);

impl<S: Send + Sync> FromRequestParts<S> for Mv {
    type Rejection = IronicError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, IronicError> {
        Ok(Mv(parts
            .extensions
            .get::<Microversion>()
            .copied()
            .unwrap_or(Microversion(crate::version::MIN_VERSION))))
    }
}

/// A JSON request body (absent or empty is `null`): 400 when malformed, 413 over the limit.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = IronicError;

    async fn from_request(req: Request, state: &S) -> Result<Self, IronicError> {
        let bytes = match bytes::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(IronicError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request is too large.",
                ))
            }
            Err(rej) => return Err(IronicError::invalid(rej.body_text())),
        };
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Body(Value::Null));
        }
        strata_api::parse_json::<Value>(&bytes)
            .map(Body)
            .map_err(|e| IronicError::invalid(e.message()))
    }
}

impl Body {
    /// The body as an object, as Ironic's `@method.body` wants it.
    pub fn object(&self, what: &str) -> Result<serde_json::Map<String, Value>, IronicError> {
        match &self.0 {
            Value::Object(m) => Ok(m.clone()),
            Value::Null => Ok(Default::default()),
            other => Err(IronicError::invalid(format!(
                "Schema error for {what}: {} is not of type 'object'",
                crate::patch::py(other)
            ))),
        }
    }
}

/// The query string as name → value (the last value of a repeated name wins).
pub struct Query(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = IronicError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, IronicError> {
        let q = parts.uri.query().unwrap_or("");
        let map = form_urlencoded(q);
        Ok(Query(map))
    }
}

fn form_urlencoded(q: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 3 <= bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|s| s.as_str())
    }

    /// A boolean parameter (`args.boolean`): 400 on anything but a boolean-like string.
    pub fn boolean(&self, k: &str) -> Result<Option<bool>, IronicError> {
        self.get(k)
            .map(|v| crate::model::parse_bool(k, v))
            .transpose()
    }

    /// An integer parameter (`args.integer`).
    pub fn integer(&self, k: &str) -> Result<Option<i64>, IronicError> {
        self.get(k)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    IronicError::bad_param(format!("Expected an integer for {k}: {v}"))
                })
            })
            .transpose()
    }

    /// A comma-separated list (`args.string_list`): trimmed, lower-cased, de-duplicated.
    pub fn list(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).map(|v| {
            let mut items: Vec<String> = Vec::new();
            for x in v.split(',') {
                let x = x.trim().to_ascii_lowercase();
                if !x.is_empty() && !items.contains(&x) {
                    items.push(x);
                }
            }
            items
        })
    }

    /// A UUID parameter (`args.uuid`).
    pub fn uuid(&self, k: &str) -> Result<Option<String>, IronicError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) if crate::model::is_uuid_like(v) => Ok(Some(crate::model::canonical_uuid(v))),
            Some(v) => Err(IronicError::bad_param(format!(
                "Expected UUID for {k}: {v}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let m = form_urlencoded("a=1&b=x%2Cy&c=with+space&d&e=%zz&f=%41");
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x,y");
        assert_eq!(m["c"], "with space");
        assert_eq!(m["d"], "");
        assert_eq!(m["e"], "%zz");
        assert_eq!(m["f"], "A");
    }
}
