//! Keystone's default policy, as rules over the caller's [`AuthContext`].
//!
//! Keystone (2023.1 onwards) combines `admin_required` (the `admin` role on any scope) with
//! scoped reader rules: `role:reader and system_scope:all` for system readers, `role:reader and
//! token.domain.id:<target domain>` for domain readers, and owner rules such as
//! `user_id:%(target.user.id)s`. Each handler makes exactly one [`enforce`] call naming its
//! action and combining these predicates.

use crate::error::{KsError, KsResult};
use strata_api::AuthContext;

/// `rule:admin_required`.
pub fn admin(ctx: &AuthContext) -> bool {
    ctx.is_admin()
}

/// `role:reader and system_scope:all`.
pub fn system_reader(ctx: &AuthContext) -> bool {
    ctx.is_system() && ctx.has_role("reader")
}

/// `role:reader and token.domain.id:<domain>`.
pub fn domain_reader(ctx: &AuthContext, domain_id: &str) -> bool {
    ctx.domain_id() == Some(domain_id) && ctx.has_role("reader")
}

/// `rule:admin_required or (role:reader and system_scope:all)`.
pub fn admin_or_system_reader(ctx: &AuthContext) -> bool {
    admin(ctx) || system_reader(ctx)
}

/// Admin, system reader, or reader of `domain_id`.
pub fn admin_or_reader_of(ctx: &AuthContext, domain_id: &str) -> bool {
    admin_or_system_reader(ctx) || domain_reader(ctx, domain_id)
}

/// `user_id:%(target.user.id)s`.
pub fn owner(ctx: &AuthContext, user_id: &str) -> bool {
    ctx.user_id == user_id
}

/// Allows the request when `allowed`, else answers 403 naming `action`.
pub fn enforce(action: &str, allowed: bool) -> KsResult<()> {
    if allowed {
        Ok(())
    } else {
        Err(KsError::forbidden(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::Scope;

    fn ctx(scope: Scope, roles: &[&str]) -> AuthContext {
        AuthContext {
            user_id: "u".into(),
            user_name: "u".into(),
            user_domain_id: "default".into(),
            scope,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            role_ids: vec![],
            audit_ids: vec![],
            app_cred_id: None,
            access_rules: vec![],
            trust_id: None,
            expires_at: 0,
        }
    }

    #[test]
    fn readers_by_scope() {
        let sys = ctx(Scope::System, &["reader"]);
        assert!(admin_or_system_reader(&sys));
        assert!(!admin(&sys));
        let dom = ctx(
            Scope::Domain {
                id: "d".into(),
                name: "D".into(),
            },
            &["reader"],
        );
        assert!(admin_or_reader_of(&dom, "d"));
        assert!(!admin_or_reader_of(&dom, "e"));
        let member = ctx(
            Scope::Project {
                id: "p".into(),
                name: "p".into(),
                domain_id: "d".into(),
                domain_name: "D".into(),
            },
            &["member", "reader"],
        );
        assert!(!admin_or_reader_of(&member, "d"));
        assert!(owner(&member, "u"));
        let adm = ctx(Scope::Unscoped, &["admin"]);
        assert!(admin_or_reader_of(&adm, "anything"));
        assert_eq!(
            enforce("identity:x", false).unwrap_err().status,
            http::StatusCode::FORBIDDEN
        );
    }
}
