//! `/v3/auth/*`: issuing, validating, checking and revoking tokens; what a token may see
//! (catalog, projects, domains, system).

use super::util::{collection, has, q, QueryPairs};
use crate::db::{self, keys::Revoke};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin_or_system_reader, enforce};
use crate::token::{audit_id, Payload, ScopeRef};
use crate::Identity;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use strata_core::time::now_micros;

#[derive(Deserialize)]
pub struct AuthRequest {
    auth: AuthBody,
}

#[derive(Deserialize)]
struct AuthBody {
    identity: IdentityBody,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize)]
struct IdentityBody {
    methods: Vec<String>,
    #[serde(default)]
    password: Option<PasswordMethod>,
    #[serde(default)]
    token: Option<TokenMethod>,
    #[serde(default)]
    application_credential: Option<AppCredMethod>,
}

#[derive(Deserialize)]
struct PasswordMethod {
    user: UserRef,
}

#[derive(Deserialize)]
pub(crate) struct UserRef {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub domain: Option<NameOrId>,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct NameOrId {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct TokenMethod {
    id: String,
}

#[derive(Deserialize)]
struct AppCredMethod {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    user: Option<UserRef>,
    secret: String,
}

/// Finds a domain by `{"id"}` or `{"name"}`; `None` when absent.
pub(crate) async fn find_domain(
    id: &Identity,
    d: &NameOrId,
) -> KsResult<Option<db::domains::Domain>> {
    Ok(match (&d.id, &d.name) {
        (Some(i), _) => db::domains::get(id.store(), i).await?,
        (None, Some(n)) => db::domains::get_by_name(id.store(), n).await?,
        (None, None) => None,
    })
}

/// Finds a user by id, or by name within a domain given by id or name. `None` when any part
/// is unknown: callers answer 401 without saying which.
pub(crate) async fn find_user(id: &Identity, u: &UserRef) -> KsResult<Option<db::users::User>> {
    if let Some(uid) = &u.id {
        return Ok(db::users::get(id.store(), uid).await?);
    }
    let (Some(name), Some(d)) = (&u.name, &u.domain) else {
        return Err(KsError::bad_request(
            "Invalid input for field 'identity.password.user': a user id, or a user name with a domain, is required.",
        ));
    };
    match find_domain(id, d).await? {
        Some(dom) => Ok(db::users::get_by_name(id.store(), &dom.id, name).await?),
        None => Ok(None),
    }
}

/// Parses the `scope` of an authentication request.
async fn parse_scope(id: &Identity, scope: &Value) -> KsResult<ScopeRef> {
    if scope.as_str() == Some("unscoped") {
        return Ok(ScopeRef::Unscoped);
    }
    let o = scope.as_object().ok_or_else(|| {
        KsError::bad_request("Invalid input for field 'scope': expected an object.")
    })?;
    if o.len() != 1 {
        return Err(KsError::bad_request(
            "Invalid input for field 'scope': exactly one of project, domain or system is required.",
        ));
    }
    if let Some(p) = o.get("project") {
        let r: NameOrIdWithDomain = serde_json::from_value(p.clone()).map_err(|e| {
            KsError::bad_request(format!("Invalid input for field 'scope.project': {e}"))
        })?;
        if let Some(pid) = r.id {
            return Ok(ScopeRef::Project(pid));
        }
        let (Some(name), Some(d)) = (r.name, r.domain) else {
            return Err(KsError::bad_request(
                "Invalid input for field 'scope.project': an id, or a name with a domain, is required.",
            ));
        };
        let dom = find_domain(id, &d)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        let p = db::projects::get_by_name(id.store(), &dom.id, &name)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        return Ok(ScopeRef::Project(p.id));
    }
    if let Some(d) = o.get("domain") {
        let r: NameOrId = serde_json::from_value(d.clone()).map_err(|e| {
            KsError::bad_request(format!("Invalid input for field 'scope.domain': {e}"))
        })?;
        if r.id.is_none() && r.name.is_none() {
            return Err(KsError::bad_request(
                "Invalid input for field 'scope.domain': an id or a name is required.",
            ));
        }
        let dom = find_domain(id, &r)
            .await?
            .ok_or_else(KsError::unauthorized)?;
        return Ok(ScopeRef::Domain(dom.id));
    }
    if let Some(s) = o.get("system") {
        if s.get("all").and_then(Value::as_bool) == Some(true) {
            return Ok(ScopeRef::System);
        }
        return Err(KsError::bad_request(
            "Invalid input for field 'scope.system': {\"all\": true} is required.",
        ));
    }
    Err(KsError::bad_request(
        "Invalid input for field 'scope': unknown scope.",
    ))
}

#[derive(Deserialize)]
struct NameOrIdWithDomain {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<NameOrId>,
}

fn token_response(status: StatusCode, token: &str, body: Value) -> Response {
    let mut resp = (status, axum::Json(json!({"token": body}))).into_response();
    if let Ok(v) = HeaderValue::from_str(token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

/// `POST /v3/auth/tokens`.
pub async fn token_issue(
    State(id): State<Identity>,
    Query(query): Query<QueryPairs>,
    KsJson(req): KsJson<AuthRequest>,
) -> KsResult<Response> {
    let ident = req.auth.identity;
    if ident.methods.is_empty() {
        return Err(KsError::bad_request(
            "Invalid input for field 'auth.identity.methods': at least one method is required.",
        ));
    }
    let now = now_micros();
    let lifetime = id.cfg().token_expiration as i64 * 1_000_000;
    let trust_id = super::trusts::requested_trust(req.auth.scope.as_ref())?;
    let requested = match &req.auth.scope {
        // A trust scope: the trust's project, filled in once the trustee is known. A scope is
        // requested all the same (the application credential method refuses one).
        Some(_) if trust_id.is_some() => Some(ScopeRef::Unscoped),
        Some(s) => Some(parse_scope(&id, s).await?),
        None => None,
    };
    let methods: Vec<&str> = ident.methods.iter().map(String::as_str).collect();
    let (user_id, scope, expires, audit, app_cred, out_methods) = match methods.as_slice() {
        ["password"] => {
            let pw = ident.password.ok_or_else(|| {
                KsError::bad_request("Invalid input for field 'auth.identity.password': required by the password method.")
            })?;
            let secret = pw.user.password.clone().ok_or_else(|| {
                KsError::bad_request("Invalid input for field 'auth.identity.password.user.password': 'password' is a required property")
            })?;
            let user = find_user(&id, &pw.user)
                .await?
                .ok_or_else(KsError::unauthorized)?;
            id.check_password(&user, &secret).await?;
            let scope = match requested {
                Some(s) => s,
                None => default_scope(&id, &user).await?,
            };
            (
                user.id,
                scope,
                now + lifetime,
                vec![audit_id()],
                None,
                vec!["password".to_string()],
            )
        }
        ["token"] => {
            let t = ident.token.ok_or_else(|| {
                KsError::bad_request(
                    "Invalid input for field 'auth.identity.token': required by the token method.",
                )
            })?;
            let parent = id
                .validate_token(&t.id, false)
                .await
                // Keystone answers an invalid token to rescope as not found.
                .ok_or_else(|| KsError::new(StatusCode::NOT_FOUND, "Failed to validate token"))?
                .payload
                .clone();
            if parent.c.is_some() {
                return Err(KsError::forbidden(
                    "identity:rescope_application_credential_token",
                ));
            }
            if parent.t.is_some() {
                return Err(KsError::forbidden(
                    "Using trust-scoped token to create another token. Create a new trust-scoped token instead",
                ));
            }
            let mut m = vec!["token".to_string()];
            for pm in &parent.m {
                if !m.contains(pm) {
                    m.push(pm.clone());
                }
            }
            let scope = requested.unwrap_or(ScopeRef::Unscoped);
            let mut chain = vec![audit_id()];
            chain.extend(parent.a.first().cloned());
            (parent.u, scope, parent.e, chain, None, m)
        }
        ["application_credential"] => {
            let ac = ident.application_credential.ok_or_else(|| {
                KsError::bad_request("Invalid input for field 'auth.identity.application_credential': required by the application_credential method.")
            })?;
            if requested.is_some() {
                return Err(KsError::unauthorized());
            }
            let cred = match (&ac.id, &ac.name, &ac.user) {
                (Some(cid), _, _) => db::app_creds::get(id.store(), cid).await?,
                (None, Some(name), Some(u)) => match find_user(&id, u).await? {
                    Some(user) => db::app_creds::get_by_name(id.store(), &user.id, name).await?,
                    None => None,
                },
                _ => {
                    return Err(KsError::bad_request(
                        "Invalid input for field 'auth.identity.application_credential': an id, or a name with a user, is required.",
                    ))
                }
            };
            let cred = cred.ok_or_else(KsError::unauthorized)?;
            if !Identity::verify_secret(ac.secret.clone(), cred.secret_hash.clone()).await {
                return Err(KsError::unauthorized());
            }
            if cred.expires_at.is_some_and(|e| e <= now) {
                return Err(KsError::unauthorized());
            }
            let expires = cred
                .expires_at
                .map_or(now + lifetime, |e| e.min(now + lifetime));
            (
                cred.user_id,
                ScopeRef::Project(cred.project_id),
                expires,
                vec![audit_id()],
                Some(cred.id),
                vec!["application_credential".to_string()],
            )
        }
        _ => return Err(KsError::unauthorized()),
    };
    let trust = match &trust_id {
        Some(tid) => Some(super::trusts::trust_for_token(&id, &user_id, tid).await?),
        None => None,
    };
    let (scope, expires) = match &trust {
        // A trust-scoped token lasts no longer than its trust.
        Some((t, project_id)) => (
            ScopeRef::Project(project_id.clone()),
            t.expires_at.map_or(expires, |e| e.min(expires)),
        ),
        None => (scope, expires),
    };
    let payload = Payload {
        k: id.signing_key_id(),
        u: user_id,
        m: out_methods,
        s: scope,
        e: expires,
        i: now,
        a: audit,
        c: app_cred,
        t: trust_id,
    };
    let resolved = id.resolve_cached(&payload).await?;
    if let Some((t, _)) = &trust {
        super::trusts::consume_use(&id, t).await?;
    }
    let token = id.sign(&payload);
    let catalog = if has(&query, "nocatalog") {
        None
    } else {
        Some(id.catalog(resolved.project_id()).await?)
    };
    let body = resolved.token_body(&payload, catalog.as_deref());
    Ok(token_response(StatusCode::CREATED, &token, body))
}

/// A password authentication without scope lands on the user's default project when the user
/// holds a role there, as in Keystone; otherwise it is unscoped.
async fn default_scope(id: &Identity, user: &db::users::User) -> KsResult<ScopeRef> {
    if let Some(pid) = &user.default_project_id {
        if let Some(p) = db::projects::get(id.store(), pid).await? {
            if p.enabled && !id.direct_roles_on_project(user, &p).await?.is_empty() {
                return Ok(ScopeRef::Project(p.id));
            }
        }
    }
    Ok(ScopeRef::Unscoped)
}

fn subject(headers: &HeaderMap) -> KsResult<String> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| {
            KsError::bad_request(
                "Invalid input for field 'X-Subject-Token': the header is required.",
            )
        })
}

/// Validates the subject token for a caller allowed to see it.
async fn subject_token(
    id: &Identity,
    caller: &strata_api::AuthContext,
    headers: &HeaderMap,
    allow_expired: bool,
    action: &str,
) -> KsResult<std::sync::Arc<crate::Validated>> {
    let tok = subject(headers)?;
    // An invalid, expired or revoked subject is not found, whoever asks (as Keystone: the
    // token is validated before policy sees it).
    let v = id
        .validate_token(&tok, allow_expired)
        .await
        .ok_or_else(|| KsError::new(StatusCode::NOT_FOUND, "Failed to validate token"))?;
    // As Keystone: a token restricted by access rules validates only for callers declaring
    // they enforce them (keystonemiddleware sends `OpenStack-Identity-Access-Rules: 1.0`).
    let enforces_rules = headers
        .get("openstack-identity-access-rules")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().parse::<f64>().ok())
        .is_some_and(|version| version >= 1.0);
    if !v.resolved.access_rules.is_empty() && !enforces_rules {
        return Err(KsError::new(
            StatusCode::NOT_FOUND,
            "Failed to validate token",
        ));
    }
    // Policy: admins, system readers, services, or the token's own user.
    let own = v.payload.u == caller.user_id;
    enforce(
        action,
        own || admin_or_system_reader(caller) || caller.has_role("service"),
    )?;
    Ok(v)
}

/// `GET /v3/auth/tokens`.
pub async fn token_validate(
    State(id): State<Identity>,
    Auth(caller): Auth,
    Query(query): Query<QueryPairs>,
    headers: HeaderMap,
) -> KsResult<Response> {
    let allow_expired = q(&query, "allow_expired").is_some_and(super::util::query_true);
    let v = subject_token(
        &id,
        &caller,
        &headers,
        allow_expired,
        "identity:validate_token",
    )
    .await?;
    let body = v.body(&id, !has(&query, "nocatalog")).await?;
    let mut resp = (
        StatusCode::OK,
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(t) = headers.get("x-subject-token") {
        resp.headers_mut().insert("x-subject-token", t.clone());
    }
    Ok(resp)
}

/// `HEAD /v3/auth/tokens`.
pub async fn token_check(
    State(id): State<Identity>,
    Auth(caller): Auth,
    Query(query): Query<QueryPairs>,
    headers: HeaderMap,
) -> KsResult<Response> {
    let allow_expired = q(&query, "allow_expired").is_some_and(super::util::query_true);
    subject_token(
        &id,
        &caller,
        &headers,
        allow_expired,
        "identity:check_token",
    )
    .await?;
    let mut resp = StatusCode::OK.into_response();
    if let Some(t) = headers.get("x-subject-token") {
        resp.headers_mut().insert("x-subject-token", t.clone());
    }
    Ok(resp)
}

/// `DELETE /v3/auth/tokens`.
pub async fn token_revoke(
    State(id): State<Identity>,
    Auth(caller): Auth,
    headers: HeaderMap,
) -> KsResult<StatusCode> {
    let v = subject_token(&id, &caller, &headers, false, "identity:revoke_token").await?;
    if let Some(a) = v.payload.a.first() {
        db::keys::revoke(id.store(), Revoke::audit(a)).await?;
        id.changed().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/auth/catalog`.
pub async fn auth_catalog(State(id): State<Identity>, Auth(caller): Auth) -> KsResult<Response> {
    if matches!(caller.scope, strata_api::Scope::Unscoped) {
        return Err(KsError::forbidden("identity:get_auth_catalog"));
    }
    let catalog = id.catalog(caller.project_id()).await?;
    Ok(axum::Json(json!({"catalog": *catalog, "links": {"self": format!("{}/auth/catalog", id.v3_url()), "previous": null, "next": null}}))
        .into_response())
}

/// `GET /v3/auth/projects`: enabled projects the caller holds a role on.
pub async fn auth_projects(State(id): State<Identity>, Auth(caller): Auth) -> KsResult<Response> {
    let projects = super::projects::projects_of_user(&id, &caller.user_id).await?;
    let items = projects
        .iter()
        .map(|p| super::projects::view(&id, p))
        .collect();
    Ok(axum::Json(collection(
        "projects",
        items,
        format!("{}/auth/projects", id.v3_url()),
    ))
    .into_response())
}

/// `GET /v3/auth/domains`: enabled domains the caller holds a role on.
pub async fn auth_domains(State(id): State<Identity>, Auth(caller): Auth) -> KsResult<Response> {
    let store = id.store();
    let groups = db::users::group_ids(store, &caller.user_id).await?;
    let mut w = db::Where::default();
    let mut actors = vec![caller.user_id.clone()];
    actors.extend(groups);
    w.one_of("actor_id", &actors);
    w.literal("kind IN ('UserDomain', 'GroupDomain')");
    let mut domain_ids: Vec<String> = db::assignments::list(store, &w)
        .await?
        .into_iter()
        .map(|a| a.target_id)
        .collect();
    domain_ids.sort();
    domain_ids.dedup();
    let mut items = Vec::new();
    for d in domain_ids {
        if let Some(dom) = db::domains::get(store, &d).await? {
            if dom.enabled {
                items.push(super::domains::view(&id, &dom));
            }
        }
    }
    Ok(axum::Json(collection(
        "domains",
        items,
        format!("{}/auth/domains", id.v3_url()),
    ))
    .into_response())
}

/// `GET /v3/auth/system`.
pub async fn auth_system(State(id): State<Identity>, Auth(caller): Auth) -> KsResult<Response> {
    let store = id.store();
    let groups = db::users::group_ids(store, &caller.user_id).await?;
    let roles = db::assignments::direct_role_ids(
        store,
        &caller.user_id,
        &groups,
        db::assignments::Kind::UserSystem,
        db::assignments::Kind::GroupSystem,
        db::assignments::SYSTEM,
        &[],
    )
    .await?;
    let system: Vec<Value> = if roles.is_empty() {
        vec![]
    } else {
        vec![json!({"all": true})]
    };
    Ok(axum::Json(json!({"system": system, "links": {"self": format!("{}/auth/system", id.v3_url()), "previous": null, "next": null}})).into_response())
}
