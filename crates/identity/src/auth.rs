//! Authentication rules: who a credential is, what a scope resolves to, password checks
//! (lockout, expiry, history, minimum age, complexity) and token issuing.

use crate::db::{self, assignments::Kind, users::User};
use crate::error::{KsError, KsResult};
use crate::token::{self, Payload, ScopeRef};
use crate::Identity;
use http::StatusCode;
use serde_json::{json, Value};
use strata_api::{AuthContext, Scope};
use strata_core::time::{iso_micros_z, now_micros};

/// What a token stands for once resolved against current identity data.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub password_expires_at: Option<i64>,
    pub scope: ResolvedScope,
    /// `(id, name)`, implied roles included.
    pub roles: Vec<(String, String)>,
    /// `(id, name, restricted)` when made from an application credential.
    pub app_cred: Option<(String, String, bool)>,
    /// That application credential's access rules; empty when it has none.
    pub access_rules: Vec<strata_api::AccessRule>,
    /// The trust of a trust-scoped token.
    pub trust: Option<TrustRef>,
}

/// The trust a trust-scoped token was issued under, as its body shows it.
#[derive(Debug, Clone)]
pub struct TrustRef {
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub impersonation: bool,
}

#[derive(Debug, Clone)]
pub enum ResolvedScope {
    Unscoped,
    Project {
        id: String,
        name: String,
        domain_id: String,
        domain_name: String,
        is_domain: bool,
    },
    Domain {
        id: String,
        name: String,
    },
    System,
}

impl Resolved {
    /// The project a project-scoped token is scoped to.
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            ResolvedScope::Project { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn project_domain_id(&self) -> Option<&str> {
        match &self.scope {
            ResolvedScope::Project { domain_id, .. } => Some(domain_id),
            _ => None,
        }
    }

    /// The request context other handlers see.
    pub fn context(&self, p: &Payload) -> AuthContext {
        AuthContext {
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            user_domain_id: self.user_domain_id.clone(),
            scope: match &self.scope {
                ResolvedScope::Unscoped => Scope::Unscoped,
                ResolvedScope::Project {
                    id,
                    name,
                    domain_id,
                    domain_name,
                    ..
                } => Scope::Project {
                    id: id.clone(),
                    name: name.clone(),
                    domain_id: domain_id.clone(),
                    domain_name: domain_name.clone(),
                },
                ResolvedScope::Domain { id, name } => Scope::Domain {
                    id: id.clone(),
                    name: name.clone(),
                },
                ResolvedScope::System => Scope::System,
            },
            roles: self.roles.iter().map(|(_, n)| n.clone()).collect(),
            role_ids: self.roles.iter().map(|(i, _)| i.clone()).collect(),
            audit_ids: p.a.clone(),
            app_cred_id: p.c.clone(),
            access_rules: self.access_rules.clone(),
            trust_id: p.t.clone(),
            expires_at: p.e,
        }
    }

    /// The `token` object of Keystone's token responses.
    pub fn token_body(&self, p: &Payload, catalog: Option<&Value>) -> Value {
        let mut t = json!({
            "methods": p.m,
            "user": {
                "domain": {"id": self.user_domain_id, "name": self.user_domain_name},
                "id": self.user_id,
                "name": self.user_name,
                "password_expires_at": self.password_expires_at.map(iso_micros_z),
            },
            "audit_ids": p.a,
            "expires_at": iso_micros_z(p.e),
            "issued_at": iso_micros_z(p.i),
        });
        let o = t.as_object_mut().expect("object");
        match &self.scope {
            ResolvedScope::Unscoped => {}
            ResolvedScope::Project {
                id,
                name,
                domain_id,
                domain_name,
                is_domain,
            } => {
                o.insert(
                    "project".into(),
                    json!({"domain": {"id": domain_id, "name": domain_name}, "id": id, "name": name}),
                );
                o.insert("is_domain".into(), json!(is_domain));
            }
            ResolvedScope::Domain { id, name } => {
                o.insert("domain".into(), json!({"id": id, "name": name}));
            }
            ResolvedScope::System => {
                o.insert("system".into(), json!({"all": true}));
            }
        }
        if !matches!(self.scope, ResolvedScope::Unscoped) {
            let roles: Vec<Value> = self
                .roles
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name}))
                .collect();
            o.insert("roles".into(), Value::Array(roles));
            if let Some(c) = catalog {
                o.insert("catalog".into(), c.clone());
            }
        } else {
            o.insert("is_domain".into(), json!(false));
        }
        if let Some(tr) = &self.trust {
            o.insert(
                "OS-TRUST:trust".into(),
                json!({
                    "id": tr.id,
                    "impersonation": tr.impersonation,
                    "trustee_user": {"id": tr.trustee_user_id},
                    "trustor_user": {"id": tr.trustor_user_id},
                }),
            );
        }
        if let Some((id, name, restricted)) = &self.app_cred {
            let mut c = json!({"id": id, "name": name, "restricted": restricted});
            // As Keystone: shown only when the credential has rules.
            if !self.access_rules.is_empty() {
                c["access_rules"] = json!(self.access_rules);
            }
            o.insert("application_credential".into(), c);
        }
        t
    }
}

fn opt_bool(options: &Value, key: &str) -> bool {
    options.get(key).and_then(Value::as_bool).unwrap_or(false)
}

impl Identity {
    /// Resolves a user and scope against current data. Fails (401) when the user, its domain,
    /// the scope target or its domain is gone or disabled, or the user holds no role there.
    /// With a trust, `user_id` is the trustee and the roles are the trust's (see
    /// [`Identity::resolve_trust`]).
    pub(crate) async fn resolve(
        &self,
        user_id: &str,
        scope: &ScopeRef,
        app_cred: Option<&str>,
        trust: Option<&str>,
    ) -> KsResult<Resolved> {
        let store = self.store();
        let user = db::users::get(store, user_id)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        if !user.enabled {
            return Err(KsError::unauthorized());
        }
        let udom = db::domains::get(store, &user.domain_id)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        if !udom.enabled {
            return Err(KsError::unauthorized());
        }
        if let Some(tid) = trust {
            return self.resolve_trust(user, udom, scope, tid).await;
        }
        let (rscope, mut role_ids) = match scope {
            ScopeRef::Unscoped => (ResolvedScope::Unscoped, Vec::new()),
            ScopeRef::Project(pid) => {
                let p = db::projects::get(store, pid)
                    .await?
                    .ok_or_else(KsError::unauthorized)?;
                let d = db::domains::get(store, &p.domain_id)
                    .await?
                    .ok_or_else(KsError::unauthorized)?;
                if !p.enabled || !d.enabled {
                    return Err(KsError::unauthorized());
                }
                let roles = self.direct_roles_on_project(&user, &p).await?;
                (
                    ResolvedScope::Project {
                        id: p.id,
                        name: p.name,
                        domain_id: d.id,
                        domain_name: d.name,
                        is_domain: false,
                    },
                    roles,
                )
            }
            ScopeRef::Domain(did) => {
                let d = db::domains::get(store, did)
                    .await?
                    .ok_or_else(KsError::unauthorized)?;
                if !d.enabled {
                    return Err(KsError::unauthorized());
                }
                let groups = db::users::group_ids(store, &user.id).await?;
                let roles = db::assignments::direct_role_ids(
                    store,
                    &user.id,
                    &groups,
                    Kind::UserDomain,
                    Kind::GroupDomain,
                    &d.id,
                    &[],
                )
                .await?;
                (
                    ResolvedScope::Domain {
                        id: d.id,
                        name: d.name,
                    },
                    roles,
                )
            }
            ScopeRef::System => {
                let groups = db::users::group_ids(store, &user.id).await?;
                let roles = db::assignments::direct_role_ids(
                    store,
                    &user.id,
                    &groups,
                    Kind::UserSystem,
                    Kind::GroupSystem,
                    db::assignments::SYSTEM,
                    &[],
                )
                .await?;
                (ResolvedScope::System, roles)
            }
        };
        let rules = db::roles::implications(store).await?;
        let mut app = None;
        let mut access_rules = Vec::new();
        if let Some(cid) = app_cred {
            let c = db::app_creds::get(store, cid)
                .await?
                .ok_or_else(KsError::unauthorized)?;
            let bound_here = matches!(scope, ScopeRef::Project(pid) if *pid == c.project_id);
            if c.user_id != user.id
                || !bound_here
                || c.expires_at.is_some_and(|e| e <= now_micros())
            {
                return Err(KsError::unauthorized());
            }
            // As Keystone: the delegated roles the user still holds (effective, so implied
            // roles count); none left fails below.
            let held = db::roles::expand(&role_ids, &rules);
            role_ids = c
                .roles
                .iter()
                .filter(|r| held.contains(r))
                .cloned()
                .collect();
            access_rules = db::access_rules::list_for_app_cred(store, &c.id).await?;
            app = Some((c.id, c.name, !c.unrestricted));
        }
        let expanded = db::roles::expand(&role_ids, &rules);
        let mut roles = Vec::with_capacity(expanded.len());
        for id in expanded {
            // Domain-specific roles only serve to imply others: tokens never carry them.
            if let Some(r) = db::roles::get(store, &id).await? {
                if r.domain_id.is_none() {
                    roles.push((r.id, r.name));
                }
            }
        }
        if !matches!(rscope, ResolvedScope::Unscoped) && roles.is_empty() {
            return Err(KsError::unauthorized());
        }
        Ok(Resolved {
            user_id: user.id,
            user_name: user.name,
            user_domain_id: udom.id,
            user_domain_name: udom.name,
            password_expires_at: user.password_expires_at,
            scope: rscope,
            roles,
            app_cred: app,
            access_rules,
            trust: None,
        })
    }

    /// Resolves a trust-scoped token of `trustee` (already checked enabled, in an enabled
    /// domain). As Keystone, the token stands for the trust's roles on its project, implied
    /// roles included, for as long as: the trust and every trust it was redelegated from exist
    /// and have not expired, their trustees are enabled, the trustor and its domain are
    /// enabled, and the original trustor still holds every delegated role there (one role
    /// lost invalidates the trust). The token's user is the trustor when the trust allows
    /// impersonation, else the trustee. Remaining uses do not matter here: they limit issuing.
    async fn resolve_trust(
        &self,
        trustee: User,
        trustee_domain: db::domains::Domain,
        scope: &ScopeRef,
        trust_id: &str,
    ) -> KsResult<Resolved> {
        let store = self.store();
        let now = now_micros();
        let t = db::trusts::get(store, trust_id)
            .await?
            .filter(|t| !t.expired(now) && t.trustee_user_id == trustee.id)
            .ok_or_else(KsError::unauthorized)?;
        let Some(pid) = t.project_id.clone() else {
            return Err(KsError::unauthorized());
        };
        if *scope != ScopeRef::Project(pid.clone()) {
            return Err(KsError::unauthorized());
        }
        let origin = self.trust_origin(&t).await?;
        let trustor = self
            .enabled_user(&t.trustor_user_id)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        let p = db::projects::get(store, &pid)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        let pdom = db::domains::get(store, &p.domain_id)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        if !p.enabled || !pdom.enabled {
            return Err(KsError::unauthorized());
        }
        let origin_user = if origin == trustor.0.id {
            trustor.0.clone()
        } else {
            db::users::get(store, &origin)
                .await?
                .ok_or_else(KsError::unauthorized)?
        };
        let rules = db::roles::implications(store).await?;
        let held = db::roles::expand(
            &self.direct_roles_on_project(&origin_user, &p).await?,
            &rules,
        );
        let delegated = db::roles::expand(&t.roles, &rules);
        if delegated.iter().any(|r| !held.contains(r)) {
            return Err(KsError::unauthorized());
        }
        let mut roles = Vec::with_capacity(delegated.len());
        for id in delegated {
            if let Some(r) = db::roles::get(store, &id).await? {
                if r.domain_id.is_none() {
                    roles.push((r.id, r.name));
                }
            }
        }
        if roles.is_empty() {
            return Err(KsError::unauthorized());
        }
        let (user, udom) = if t.impersonation {
            trustor
        } else {
            (trustee, trustee_domain)
        };
        Ok(Resolved {
            user_id: user.id,
            user_name: user.name,
            user_domain_id: udom.id,
            user_domain_name: udom.name,
            password_expires_at: user.password_expires_at,
            scope: ResolvedScope::Project {
                id: p.id,
                name: p.name,
                domain_id: pdom.id,
                domain_name: pdom.name,
                is_domain: false,
            },
            roles,
            app_cred: None,
            access_rules: Vec::new(),
            trust: Some(TrustRef {
                id: t.id,
                trustor_user_id: t.trustor_user_id,
                trustee_user_id: t.trustee_user_id,
                impersonation: t.impersonation,
            }),
        })
    }

    /// A user that exists and is enabled, in an enabled domain, with that domain.
    async fn enabled_user(&self, user_id: &str) -> KsResult<Option<(User, db::domains::Domain)>> {
        let store = self.store();
        let Some(u) = db::users::get(store, user_id).await?.filter(|u| u.enabled) else {
            return Ok(None);
        };
        Ok(db::domains::get(store, &u.domain_id)
            .await?
            .filter(|d| d.enabled)
            .map(|d| (u, d)))
    }

    /// The id of the user whose roles `t` ultimately delegates: its trustor, or for a
    /// redelegated trust the trustor at the root of its chain. Fails (401) when a trust of the
    /// chain is gone or expired or its trustee is not an enabled user (Keystone: "One of the
    /// trust agents is disabled or deleted").
    pub(crate) async fn trust_origin(&self, t: &db::trusts::Trust) -> KsResult<String> {
        let now = now_micros();
        let mut origin = t.trustor_user_id.clone();
        let mut next = t.redelegated_trust_id.clone();
        let mut depth = 0;
        while let Some(pid) = next {
            depth += 1;
            let parent = db::trusts::get(self.store(), &pid)
                .await?
                .filter(|p| !p.expired(now))
                .ok_or_else(KsError::unauthorized)?;
            if depth > 64 || self.enabled_user(&parent.trustee_user_id).await?.is_none() {
                return Err(KsError::unauthorized());
            }
            origin = parent.trustor_user_id.clone();
            next = parent.redelegated_trust_id.clone();
        }
        Ok(origin)
    }

    /// Role ids (not expanded) a user holds on a project, directly, through groups, or
    /// inherited from its domain and ancestors.
    pub(crate) async fn direct_roles_on_project(
        &self,
        user: &User,
        p: &db::projects::Project,
    ) -> KsResult<Vec<String>> {
        let store = self.store();
        let groups = db::users::group_ids(store, &user.id).await?;
        let mut inherited_from = vec![p.domain_id.clone()];
        inherited_from.extend(
            db::projects::ancestors(store, p)
                .await?
                .into_iter()
                .map(|a| a.id),
        );
        Ok(db::assignments::direct_role_ids(
            store,
            &user.id,
            &groups,
            Kind::UserProject,
            Kind::GroupProject,
            &p.id,
            &inherited_from,
        )
        .await?)
    }

    /// Hashes a password (or secret) with bcrypt off the async threads.
    pub(crate) async fn hash_secret(&self, secret: String) -> KsResult<String> {
        let cost = self.cfg().password_hash_rounds.clamp(4, 31);
        tokio::task::spawn_blocking(move || bcrypt::hash(secret, cost))
            .await
            .map_err(|e| strata_core::Error::internal(format!("hash task: {e}")))?
            .map_err(|e| strata_core::Error::internal(format!("bcrypt: {e}")).into())
    }

    /// Checks a secret against a bcrypt hash off the async threads.
    pub(crate) async fn verify_secret(secret: String, hash: String) -> bool {
        tokio::task::spawn_blocking(move || bcrypt::verify(secret, &hash).unwrap_or(false))
            .await
            .unwrap_or(false)
    }

    /// Checks a user's password with Keystone's lockout, expiry and first-use rules. Every
    /// failure answers the same 401 unless the account is locked or the password expired, as
    /// Keystone does.
    pub(crate) async fn check_password(&self, user: &User, password: &str) -> KsResult<()> {
        let store = self.store();
        let sc = self.sc();
        let now = now_micros();
        let lockout = sc.lockout_failure_attempts > 0
            && !opt_bool(&user.options, "ignore_lockout_failure_attempts");
        if lockout && user.failed_auth_count >= sc.lockout_failure_attempts as i64 {
            let until = user
                .failed_auth_at
                .map(|t| t + sc.lockout_duration as i64 * 1_000_000)
                .unwrap_or(i64::MAX);
            if sc.lockout_duration == 0 || until > now {
                return Err(KsError::new(
                    StatusCode::UNAUTHORIZED,
                    format!("The account is locked for user: {}.", user.id),
                ));
            }
        }
        let current = db::users::passwords(store, &user.id, 1)
            .await?
            .into_iter()
            .next();
        let Some(current) = current else {
            return Err(KsError::unauthorized());
        };
        if !Self::verify_secret(password.to_string(), current.hash.clone()).await {
            if lockout {
                db::users::record_auth_result(store, &user.id, true).await?;
            }
            return Err(KsError::unauthorized());
        }
        if user.failed_auth_count > 0 {
            db::users::record_auth_result(store, &user.id, false).await?;
        }
        if !user.enabled {
            return Err(KsError::unauthorized());
        }
        if current.expires_at.is_some_and(|e| e <= now)
            && !opt_bool(&user.options, "ignore_password_expiry")
        {
            return Err(KsError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "The password is expired and needs to be changed for user: {}.",
                    user.id
                ),
            ));
        }
        if sc.change_password_upon_first_use
            && !current.self_service
            && !opt_bool(&user.options, "ignore_change_password_upon_first_use")
        {
            return Err(KsError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "The password is expired and needs to be changed for user: {}.",
                    user.id
                ),
            ));
        }
        Ok(())
    }

    /// Validates a new password against the complexity rule and, for self-service changes,
    /// the history and minimum-age rules; returns the password row to store.
    pub(crate) async fn new_password(
        &self,
        user: Option<&User>,
        password: &str,
        self_service: bool,
    ) -> KsResult<db::users::Password> {
        let sc = self.sc();
        if let Some(re) = self.password_regex() {
            if !re.is_match(password) {
                let detail = if sc.password_regex_description.is_empty() {
                    "it does not match the configured regular expression".to_string()
                } else {
                    sc.password_regex_description.clone()
                };
                return Err(KsError::bad_request(format!(
                    "Password validation error: The password does not meet the requirements: {detail}."
                )));
            }
        }
        let now = now_micros();
        if let Some(user) = user {
            let store = self.store();
            if self_service && sc.minimum_password_age > 0 {
                // Only a password the user chose starts the clock: an admin reset may be
                // changed at once, as in Keystone.
                let current = db::users::passwords(store, &user.id, 1).await?;
                if let Some(cur) = current.first().filter(|p| p.self_service) {
                    let min = sc.minimum_password_age as i64 * 86_400 * 1_000_000;
                    if cur.created_at + min > now {
                        let days_left = ((cur.created_at + min - now) / (86_400 * 1_000_000)) + 1;
                        return Err(KsError::bad_request(format!(
                            "You cannot change your password at this time due to the minimum password age. \
                             Once you change your password, it must be used for {} day(s) before it can be \
                             changed. Please try again in {days_left} day(s) or contact your administrator \
                             to reset your password.",
                            sc.minimum_password_age
                        )));
                    }
                }
            }
            // History binds users changing their own password, not admin resets (Keystone).
            let n = sc.unique_last_password_count as i64;
            if self_service && n > 0 {
                for old in db::users::passwords(store, &user.id, n).await? {
                    if Self::verify_secret(password.to_string(), old.hash).await {
                        return Err(KsError::bad_request(format!(
                            "The new password cannot be identical to a previous password. The total \
                             number which includes the new password must be unique is {n}."
                        )));
                    }
                }
            }
        }
        let ignore_expiry = user.is_some_and(|u| opt_bool(&u.options, "ignore_password_expiry"));
        let expires_at = (sc.password_expires_days > 0 && !ignore_expiry)
            .then(|| now + sc.password_expires_days as i64 * 86_400 * 1_000_000);
        Ok(db::users::Password {
            hash: self.hash_secret(password.to_string()).await?,
            self_service,
            expires_at,
            created_at: now,
        })
    }

    /// Signs a new token.
    pub(crate) fn sign(&self, payload: &Payload) -> String {
        let keys = self.0.keys.read().expect("lock");
        let key = keys.iter().find(|k| k.id == payload.k).unwrap_or(&keys[0]);
        token::sign(payload, key)
    }

    /// The id of the key new tokens are signed with.
    pub(crate) fn signing_key_id(&self) -> String {
        self.0.keys.read().expect("lock")[0].id.clone()
    }
}
