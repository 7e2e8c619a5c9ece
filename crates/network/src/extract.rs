//! Extractors for network handlers: the caller, repeated query parameters and JSON bodies,
//! failing in Neutron's error format.

use crate::error::NeutronError;
use crate::NetworkService;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::StatusCode;
use serde_json::{Map, Value};
use std::sync::Arc;
use strata_api::{access_rules_allow, AuthContext, AUTH_TOKEN_HEADER};

/// The service type access rules name for this service.
pub const SERVICE_TYPE: &str = "network";

/// The authenticated caller (401 in keystonemiddleware's format otherwise).
pub struct Auth(pub Arc<AuthContext>);

impl FromRequestParts<NetworkService> for Auth {
    type Rejection = NeutronError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &NetworkService,
    ) -> Result<Self, NeutronError> {
        if let Some(ctx) = strata_api::in_process_caller(parts) {
            return Ok(Auth(ctx));
        }
        let token = parts
            .headers
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(NeutronError::unauthorized)?;
        let ctx = state
            .tokens()
            .validate(token)
            .await
            .map_err(|_| NeutronError::unauthorized())?;
        if !access_rules_allow(
            &ctx.access_rules,
            SERVICE_TYPE,
            parts.method.as_str(),
            parts.uri.path(),
        ) {
            return Err(NeutronError::unauthorized());
        }
        Ok(Auth(ctx))
    }
}

impl Auth {
    /// The service itself acting as an admin of `project` (bootstrap): no token involved.
    pub(crate) fn service(project: &str) -> Auth {
        Auth(Arc::new(AuthContext {
            user_id: "strata".into(),
            user_name: "strata".into(),
            user_domain_id: "default".into(),
            scope: strata_api::Scope::Project {
                id: project.to_string(),
                name: String::new(),
                domain_id: "default".into(),
                domain_name: "Default".into(),
            },
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            ..Default::default()
        }))
    }

    /// The caller's project ("" for unscoped tokens, which own nothing).
    pub fn project(&self) -> &str {
        self.0.project_id().unwrap_or_default()
    }
    pub fn admin(&self) -> bool {
        self.0.has_role("admin")
    }
    /// Members (and admins) may change things; readers only look.
    pub fn can_write(&self) -> bool {
        self.admin() || self.0.has_role("member")
    }
    /// Whether the caller may see a resource of `project`.
    pub fn owns(&self, project: &str) -> bool {
        self.admin() || self.project() == project
    }
}

/// The query string as ordered pairs: Neutron repeats keys (`fields=a&fields=b`, `name=x&name=y`).
pub struct Pairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Pairs {
    type Rejection = NeutronError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NeutronError> {
        let q = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(q)
            .map_err(|_| NeutronError::bad_request("Malformed query string"))?;
        Ok(Pairs(pairs))
    }
}

fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, ()> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
                out.push(u8::from_str_radix(h, 16).map_err(|_| ())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ())
}

/// A JSON request body: 400 when empty or malformed, 413 over the body limit.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = NeutronError;

    async fn from_request(req: Request, state: &S) -> Result<Self, NeutronError> {
        let bytes = match bytes::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(NeutronError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "HTTPRequestEntityTooLarge",
                    "Request is too large.",
                ))
            }
            Err(rej) => return Err(NeutronError::bad_request(rej.body_text())),
        };
        if bytes.is_empty() {
            return Err(NeutronError::bad_request("Resource body required"));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| NeutronError::bad_request(format!("Malformed JSON in request body: {e}")))
    }
}

impl Body {
    /// The object under `key` (`{"network": {...}}`): 400 otherwise.
    pub fn entity(&self, key: &str) -> Result<Map<String, Value>, NeutronError> {
        match self.0.get(key) {
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(NeutronError::bad_request(format!(
                "Unable to find '{key}' in request body"
            ))),
            None => Err(NeutronError::bad_request(format!(
                "Unable to find '{key}' in request body"
            ))),
        }
    }

    /// The objects of a create: `{"<key>": {...}}` or a bulk `{"<key>s": [{...}, ...]}`, with
    /// whether it was bulk.
    pub fn entities(
        &self,
        key: &str,
        plural: &str,
    ) -> Result<(Vec<Map<String, Value>>, bool), NeutronError> {
        if let Some(list) = self.0.get(plural) {
            let Value::Array(items) = list else {
                return Err(NeutronError::bad_request(format!(
                    "Unable to find '{plural}' in request body"
                )));
            };
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Value::Object(m) => out.push(m.clone()),
                    _ => {
                        return Err(NeutronError::bad_request(format!(
                            "Unable to find '{key}' in request body"
                        )))
                    }
                }
            }
            if out.is_empty() {
                return Err(NeutronError::bad_request(format!(
                    "Resources required in '{plural}'"
                )));
            }
            return Ok((out, true));
        }
        Ok((vec![self.entity(key)?], false))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_repeated_pairs() {
        let p = super::serde_urlencoded_pairs("fields=id&fields=name&name=a%20b+c&x=").unwrap();
        assert_eq!(
            p,
            vec![
                ("fields".into(), "id".into()),
                ("fields".into(), "name".into()),
                ("name".into(), "a b c".into()),
                ("x".into(), "".into())
            ]
        );
        assert!(super::serde_urlencoded_pairs("a=%zz").is_err());
    }
}
