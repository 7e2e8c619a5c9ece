//! The request's identity, as established from `X-Auth-Token` by the identity service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The header carrying the caller's token.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Unscoped,
    Project {
        id: String,
        name: String,
        domain_id: String,
        domain_name: String,
    },
    Domain {
        id: String,
        name: String,
    },
    System,
}

/// Who is calling, with the roles their token carries (implied roles expanded). Built once per
/// request by the auth layer and handed to handlers and policy. `Default` is an anonymous,
/// unscoped context without roles, for building contexts field by field (tests, fakes).
#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub scope: Scope,
    /// Role names, implied roles included.
    pub roles: Vec<String>,
    /// Role ids matching `roles`.
    pub role_ids: Vec<String>,
    /// The token's audit ids (its own first, then its parent's on rescoping).
    pub audit_ids: Vec<String>,
    /// Set when the token came from an application credential.
    pub app_cred_id: Option<String>,
    /// Set when the token is scoped to an OS-TRUST trust (delegated authority: `user_id` is
    /// the trustor when the trust allows impersonation, else the trustee).
    pub trust_id: Option<String>,
    /// The access rules of the application credential the token came from; empty when it has
    /// none or the token did not come from one. Services check every request against them
    /// with [`crate::access_rules_allow`].
    pub access_rules: Vec<crate::AccessRule>,
    /// Token expiry, microseconds since the epoch.
    pub expires_at: i64,
}

impl AuthContext {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project { id, .. } => Some(id),
            _ => None,
        }
    }
    pub fn domain_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Domain { id, .. } => Some(id),
            _ => None,
        }
    }
    pub fn is_system(&self) -> bool {
        matches!(self.scope, Scope::System)
    }
    /// Cloud administrator in the sense of the legacy `admin_required` rule: the `admin` role
    /// on any scope.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `X-Auth-Token` header.
    Missing,
    /// Malformed, foreign-signed, tampered with, expired or revoked.
    Invalid,
}

/// The future [`TokenValidator::validate`] returns.
pub type ValidateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<AuthContext>, AuthFailure>> + Send + 'a>>;

/// Validates tokens for every service. The identity service implements it; validation must not
/// need a database read on the hot path (signature and revocation checks are in memory, and
/// resolved roles are cached until an identity change).
pub trait TokenValidator: Send + Sync + 'static {
    fn validate<'a>(&'a self, token: &'a str) -> ValidateFuture<'a>;
}

/// The caller of a request: the in-process caller when it is one, else the holder of a valid
/// `X-Auth-Token` whose application-credential access rules (if any) allow `method path` on
/// one of `service_types`. Services answer the failure in their own format (mostly
/// [`unauthorized_response`]).
pub async fn authenticate(
    parts: &http::request::Parts,
    tokens: &dyn TokenValidator,
    service_types: &[&str],
) -> Result<Arc<AuthContext>, AuthFailure> {
    if let Some(ctx) = crate::in_process_caller(parts) {
        return Ok(ctx);
    }
    let token = parts
        .headers
        .get(AUTH_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthFailure::Missing)?;
    let ctx = tokens.validate(token).await?;
    let allowed = service_types.iter().any(|t| {
        crate::access_rules_allow(
            &ctx.access_rules,
            t,
            parts.method.as_str(),
            parts.uri.path(),
        )
    });
    if !allowed {
        return Err(AuthFailure::Invalid);
    }
    Ok(ctx)
}

/// keystonemiddleware's 401, which every service behind it answers in Keystone's format:
/// `{"error": {"code": 401, "title": "Unauthorized", "message": …}}` with `WWW-Authenticate`.
pub fn unauthorized_response(message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({"error": {"code": 401, "title": "Unauthorized",
        "message": message}});
    (
        http::StatusCode::UNAUTHORIZED,
        [(
            http::header::WWW_AUTHENTICATE,
            "Keystone uri=\"/identity\"".to_string(),
        )],
        axum::Json(body),
    )
        .into_response()
}
