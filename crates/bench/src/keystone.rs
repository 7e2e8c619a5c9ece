//! The few Keystone v3 requests the benchmarks make, as a client would make them.

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// `X-Subject-Token`: where Keystone puts an issued token and reads the one to validate.
pub(crate) const SUBJECT_TOKEN: &str = "X-Subject-Token";
/// `X-Auth-Token`: the caller's own token.
pub(crate) const AUTH_TOKEN: &str = "X-Auth-Token";

/// Who to authenticate as; users and projects are looked up by name in the `default` domain.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: String,
    pub project: String,
}

/// `{url}/identity/v3/auth/tokens` for a base URL with or without a trailing slash.
pub(crate) fn tokens_url(base: &str) -> String {
    format!("{}/identity/v3/auth/tokens", base.trim_end_matches('/'))
}

/// The body of a project-scoped password authentication.
pub(crate) fn password_auth_body(c: &Credentials) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": c.username, "domain": {"id": "default"}, "password": c.password,
        }}},
        "scope": {"project": {"name": c.project, "domain": {"id": "default"}}},
    }})
}

/// The body of a project-scoped re-authentication with an existing token.
pub(crate) fn token_auth_body(token: &str, project: &str) -> Value {
    json!({"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}},
    }})
}

/// Issues one token by password; errors on anything but 201 with an `X-Subject-Token`.
pub(crate) async fn issue_password_token(
    client: &reqwest::Client,
    base: &str,
    creds: &Credentials,
) -> anyhow::Result<String> {
    let resp = client
        .post(tokens_url(base))
        .json(&password_auth_body(creds))
        .send()
        .await
        .with_context(|| format!("POST {}", tokens_url(base)))?;
    let status = resp.status();
    let token = resp
        .headers()
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if status != reqwest::StatusCode::CREATED {
        let body = resp.text().await.unwrap_or_default();
        bail!(
            "password authentication as {:?} answered {status}: {body}",
            creds.username
        );
    }
    // Drain the body so the connection goes back to the pool.
    resp.bytes().await.context("reading token body")?;
    token.context("201 without an X-Subject-Token header")
}

/// The base URL from a Keystone `auth_url` (`http://h:p/identity/v3` → `http://h:p`).
pub(crate) fn base_from_auth_url(auth_url: &str) -> String {
    let u = auth_url.trim_end_matches('/');
    let u = u.strip_suffix("/v3").unwrap_or(u);
    let u = u.strip_suffix("/identity").unwrap_or(u);
    u.to_string()
}

/// An error and its sources on one line, for grouping failures in reports.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            tokens_url("http://127.0.0.1:8440/"),
            "http://127.0.0.1:8440/identity/v3/auth/tokens"
        );
        assert_eq!(
            base_from_auth_url("http://127.0.0.1:8440/identity/v3/"),
            "http://127.0.0.1:8440"
        );
        assert_eq!(base_from_auth_url("http://h:1/v3"), "http://h:1");
        assert_eq!(base_from_auth_url("http://h:1"), "http://h:1");
    }

    #[test]
    fn bodies_match_keystone() {
        let c = Credentials {
            username: "admin".into(),
            password: "pw".into(),
            project: "admin".into(),
        };
        let b = password_auth_body(&c);
        assert_eq!(b["auth"]["identity"]["methods"][0], "password");
        assert_eq!(b["auth"]["identity"]["password"]["user"]["name"], "admin");
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["id"],
            "default"
        );
        assert_eq!(b["auth"]["identity"]["password"]["user"]["password"], "pw");
        assert_eq!(b["auth"]["scope"]["project"]["name"], "admin");
        assert_eq!(b["auth"]["scope"]["project"]["domain"]["id"], "default");
        let t = token_auth_body("tok", "admin");
        assert_eq!(
            t,
            json!({"auth":{"identity":{"methods":["token"],"token":{"id":"tok"}},
                "scope":{"project":{"name":"admin","domain":{"id":"default"}}}}})
        );
    }
}
