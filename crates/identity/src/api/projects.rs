//! `/v3/projects`, project tags, and `/v3/users/{id}/projects`.

use super::domains::{check_name, check_tags};
use super::util::{collection, has, q, query_true, self_link, self_url, string_filter, QueryPairs};
use crate::db::{self, domains::Domain, keys::Revoke, projects::Project};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_reader_of, admin_or_system_reader, enforce, owner};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use strata_api::{AuthContext, Scope};

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/projects", get(project_list).post(project_create))
        .route(
            "/v3/projects/{project_id}",
            get(project_show)
                .patch(project_update)
                .delete(project_delete),
        )
        .route(
            "/v3/projects/{project_id}/tags",
            get(project_tags_list)
                .put(project_tags_replace)
                .delete(project_tags_clear),
        )
        .route(
            "/v3/projects/{project_id}/tags/{tag}",
            get(project_tag_check)
                .head(project_tag_check)
                .put(project_tag_add)
                .delete(project_tag_delete),
        )
        .route("/v3/users/{user_id}/projects", get(user_projects))
}

pub fn view(id: &Identity, p: &Project) -> Value {
    super::util::with_extra(
        json!({
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "parent_id": p.parent_id,
            "description": p.description,
            "enabled": p.enabled,
            "is_domain": false,
            "tags": p.tags,
            "options": p.options,
            "links": self_link(&id.v3_url(), &format!("projects/{}", p.id)),
        }),
        &p.extra,
    )
}

/// A domain seen as a project acting as a domain: no `domain_id` and no `parent_id`, as
/// Keystone shows them.
pub fn domain_view(id: &Identity, d: &Domain) -> Value {
    super::util::with_extra(
        json!({
            "id": d.id,
            "name": d.name,
            "domain_id": null,
            "parent_id": null,
            "description": d.description,
            "enabled": d.enabled,
            "is_domain": true,
            "tags": d.tags,
            "options": d.options,
            "links": self_link(&id.v3_url(), &format!("projects/{}", d.id)),
        }),
        &d.extra,
    )
}

/// The view of a project, or of a domain as a project acting as a domain; `None` when `pid`
/// names neither.
pub(crate) async fn any_project_view(id: &Identity, pid: &str) -> KsResult<Option<Value>> {
    if let Some(p) = db::projects::get(id.store(), pid).await? {
        return Ok(Some(view(id, &p)));
    }
    Ok(db::domains::get(id.store(), pid)
        .await?
        .map(|d| domain_view(id, &d)))
}

/// The domain new resources land in when the request names none: the domain of the caller's
/// scope, as Keystone does.
pub(crate) fn scope_domain(ctx: &AuthContext) -> String {
    match &ctx.scope {
        Scope::Project { domain_id, .. } => domain_id.clone(),
        Scope::Domain { id, .. } => id.clone(),
        _ => "default".to_string(),
    }
}

#[derive(Deserialize)]
pub struct ProjectBody {
    project: Map<String, Value>,
}

fn opt_str(m: &Map<String, Value>, k: &str, field: &str) -> KsResult<Option<String>> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(KsError::bad_request(format!(
            "Invalid input for field '{field}.{k}': {other} is not of type 'string'"
        ))),
    }
}

fn opt_bool(m: &Map<String, Value>, k: &str, field: &str) -> KsResult<Option<bool>> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(KsError::bad_request(format!(
            "Invalid input for field '{field}.{k}': {other} is not of type 'boolean'"
        ))),
    }
}

fn opt_tags(m: &Map<String, Value>) -> KsResult<Option<Vec<String>>> {
    match m.get("tags") {
        None => Ok(None),
        Some(v) => {
            let t: Vec<String> = serde_json::from_value(v.clone()).map_err(|_| {
                KsError::bad_request(
                    "Invalid input for field 'project.tags': expected a list of strings",
                )
            })?;
            check_tags(&t)?;
            Ok(Some(t))
        }
    }
}

const FIXED: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "parent_id",
    "description",
    "enabled",
    "is_domain",
    "tags",
    "options",
    "links",
];

fn extra_of(m: &Map<String, Value>) -> Value {
    Value::Object(
        m.iter()
            .filter(|(k, _)| !FIXED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

async fn project_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    KsJson(body): KsJson<ProjectBody>,
) -> KsResult<Response> {
    let m = body.project;
    let name = opt_str(&m, "name", "project")?.ok_or_else(|| {
        KsError::bad_request(
            "Invalid input for field 'project.name': 'name' is a required property",
        )
    })?;
    check_name("project.name", &name)?;
    if opt_bool(&m, "is_domain", "project")? == Some(true) {
        enforce("identity:create_project", admin(&ctx))?;
        return create_domain_project(&id, &m, name).await;
    }
    let parent_id = opt_str(&m, "parent_id", "project")?;
    let store = id.store();
    let parent = match &parent_id {
        Some(pid) => Some(
            db::projects::get(store, pid)
                .await?
                .ok_or_else(|| KsError::not_found("project", pid))?,
        ),
        None => None,
    };
    let domain_id = match (opt_str(&m, "domain_id", "project")?, &parent) {
        (Some(d), _) => d,
        (None, Some(p)) => p.domain_id.clone(),
        (None, None) => scope_domain(&ctx),
    };
    enforce("identity:create_project", admin(&ctx))?;
    let domain = db::domains::get(store, &domain_id)
        .await?
        .ok_or_else(|| KsError::not_found("domain", &domain_id))?;
    if let Some(p) = &parent {
        if p.domain_id != domain.id {
            return Err(KsError::bad_request(format!(
                "Cannot create project, the parent ({}) is in a different domain ({}).",
                p.id, p.domain_id
            )));
        }
    }
    let p = Project {
        id: strata_core::ids::hex_id(),
        name,
        domain_id: domain.id.clone(),
        parent_id: Some(parent.map(|p| p.id).unwrap_or(domain.id)),
        description: opt_str(&m, "description", "project")?.unwrap_or_default(),
        enabled: opt_bool(&m, "enabled", "project")?.unwrap_or(true),
        tags: opt_tags(&m)?.unwrap_or_default(),
        options: m
            .get("options")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({})),
        extra: extra_of(&m),
    };
    db::projects::create(store, &p).await?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"project": view(&id, &p)})),
    )
        .into_response())
}

/// `POST /v3/projects` with `is_domain: true`: creates a domain, shown as a project acting as
/// a domain. As Keystone, it must be a root: neither `parent_id` nor `domain_id` may be set.
async fn create_domain_project(
    id: &Identity,
    m: &Map<String, Value>,
    name: String,
) -> KsResult<Response> {
    if opt_str(m, "parent_id", "project")?.is_some()
        || opt_str(m, "domain_id", "project")?.is_some()
    {
        return Err(KsError::bad_request(
            "only root projects are allowed to act as domains.",
        ));
    }
    let d = Domain {
        id: strata_core::ids::hex_id(),
        name,
        description: opt_str(m, "description", "project")?.unwrap_or_default(),
        enabled: opt_bool(m, "enabled", "project")?.unwrap_or(true),
        tags: opt_tags(m)?.unwrap_or_default(),
        options: m
            .get("options")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({})),
        extra: extra_of(m),
    };
    db::domains::create(id.store(), &d)
        .await
        .map_err(domain_project_conflict(&d.name))?;
    id.changed().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"project": domain_view(id, &d)})),
    )
        .into_response())
}

/// Keystone's conflict message for two projects acting as domains with one name.
fn domain_project_conflict(name: &str) -> impl Fn(strata_core::Error) -> KsError + '_ {
    move |e| match e {
        strata_core::Error::Conflict(_) | strata_core::Error::AlreadyExists(_) => {
            KsError::conflict(format!(
                "Conflict occurred attempting to store project - it is not permitted to have two \
                 projects acting as domains with the same name: {name}."
            ))
        }
        e => e.into(),
    }
}

fn tags_match(pairs: &QueryPairs, tags: &[String]) -> bool {
    let split = |v: &str| -> Vec<String> { v.split(',').map(str::to_string).collect() };
    if let Some(all) = q(pairs, "tags") {
        if !split(all).iter().all(|t| tags.contains(t)) {
            return false;
        }
    }
    if let Some(any) = q(pairs, "tags-any") {
        if !split(any).iter().any(|t| tags.contains(t)) {
            return false;
        }
    }
    if let Some(not_all) = q(pairs, "not-tags") {
        if split(not_all).iter().all(|t| tags.contains(t)) {
            return false;
        }
    }
    if let Some(not_any) = q(pairs, "not-tags-any") {
        if split(not_any).iter().any(|t| tags.contains(t)) {
            return false;
        }
    }
    true
}

async fn project_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let domain_filter = q(&query, "domain_id").map(str::to_string);
    let allowed = admin_or_system_reader(&ctx)
        || match (&domain_filter, ctx.domain_id()) {
            (Some(d), _) => admin_or_reader_of(&ctx, d),
            (None, Some(d)) => admin_or_reader_of(&ctx, d),
            _ => false,
        };
    enforce("identity:list_projects", allowed)?;
    if q(&query, "is_domain").is_some_and(query_true) {
        // Domains seen as projects.
        let domains = db::domains::list(id.store(), &db::Where::default()).await?;
        let items = domains
            .iter()
            .filter(|d| string_filter(&query, "name", &d.name))
            .map(|d| domain_view(&id, d))
            .collect();
        return Ok(axum::Json(collection(
            "projects",
            items,
            self_url(&id.v3_url(), "projects", &query),
        ))
        .into_response());
    }
    let mut w = db::Where::default();
    if let Some(d) = domain_filter
        .as_deref()
        .or(if admin_or_system_reader(&ctx) {
            None
        } else {
            ctx.domain_id()
        })
    {
        w.eq("domain_id", d);
    }
    if let Some(e) = q(&query, "enabled") {
        w.literal(if query_true(e) {
            "enabled = 1"
        } else {
            "enabled = 0"
        });
    }
    if let Some(p) = q(&query, "parent_id") {
        w.eq("parent_id", p);
    }
    let mut projects = db::projects::list(id.store(), &w).await?;
    projects.retain(|p| string_filter(&query, "name", &p.name) && tags_match(&query, &p.tags));
    let items = projects.iter().map(|p| view(&id, p)).collect();
    Ok(axum::Json(collection(
        "projects",
        items,
        self_url(&id.v3_url(), "projects", &query),
    ))
    .into_response())
}

async fn load(id: &Identity, pid: &str) -> KsResult<Project> {
    db::projects::get(id.store(), pid)
        .await?
        .ok_or_else(|| KsError::not_found("project", pid))
}

/// A domain looked up by a project id (a project acting as a domain); 404 names a project.
async fn load_domain(id: &Identity, pid: &str) -> KsResult<Domain> {
    db::domains::get(id.store(), pid)
        .await?
        .ok_or_else(|| KsError::not_found("project", pid))
}

async fn project_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let store = id.store();
    let (mut v, p) = match db::projects::get(store, &pid).await? {
        Some(p) => {
            enforce(
                "identity:get_project",
                admin_or_reader_of(&ctx, &p.domain_id) || ctx.project_id() == Some(p.id.as_str()),
            )?;
            (view(&id, &p), Some(p))
        }
        None => {
            // A project acting as a domain: Keystone's rule has no domain to match.
            let d = load_domain(&id, &pid).await?;
            enforce("identity:get_project", admin_or_system_reader(&ctx))?;
            (domain_view(&id, &d), None)
        }
    };
    if has(&query, "parents_as_list") || has(&query, "parents_as_ids") {
        let parents = match &p {
            Some(p) => db::projects::ancestors(store, p).await?,
            None => Vec::new(),
        };
        if has(&query, "parents_as_list") {
            v["parents"] = Value::Array(
                parents
                    .iter()
                    .map(|a| json!({"project": view(&id, a)}))
                    .collect(),
            );
        } else {
            // Nested ids, innermost first: {"parent": {"grandparent": null}}.
            let mut nested = Value::Null;
            for a in parents.iter().rev() {
                nested = json!({ a.id.clone(): nested });
            }
            v["parents"] = nested;
        }
    }
    if has(&query, "subtree_as_list") || has(&query, "subtree_as_ids") {
        let sub = db::projects::subtree(store, &pid).await?;
        if has(&query, "subtree_as_list") {
            v["subtree"] = Value::Array(
                sub.iter()
                    .map(|a| json!({"project": view(&id, a)}))
                    .collect(),
            );
        } else {
            fn nest(of: &str, all: &[Project]) -> Value {
                let kids: Map<String, Value> = all
                    .iter()
                    .filter(|c| c.parent_id.as_deref() == Some(of))
                    .map(|c| (c.id.clone(), nest(&c.id, all)))
                    .collect();
                if kids.is_empty() {
                    Value::Null
                } else {
                    Value::Object(kids)
                }
            }
            v["subtree"] = nest(&pid, &sub);
        }
    }
    Ok(axum::Json(json!({"project": v})).into_response())
}

async fn project_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
    KsJson(body): KsJson<ProjectBody>,
) -> KsResult<Response> {
    let Some(mut p) = db::projects::get(id.store(), &pid).await? else {
        let d = load_domain(&id, &pid).await?;
        enforce("identity:update_project", admin(&ctx))?;
        return update_domain_project(&id, d, body.project).await;
    };
    enforce("identity:update_project", admin(&ctx))?;
    let m = body.project;
    if let Some(d) = opt_str(&m, "domain_id", "project")? {
        if d != p.domain_id {
            return Err(KsError::bad_request("Invalid input for field 'project.domain_id': the domain of a project cannot be changed."));
        }
    }
    if let Some(par) = opt_str(&m, "parent_id", "project")? {
        if Some(&par) != p.parent_id.as_ref() {
            return Err(KsError::forbidden_msg(
                "Update of `parent_id` is not allowed.",
            ));
        }
    }
    if m.get("is_domain").is_some_and(|v| v != &Value::Bool(false)) {
        return Err(KsError::bad_request(
            "Invalid input for field 'project.is_domain': cannot be updated.",
        ));
    }
    let was_enabled = p.enabled;
    if let Some(n) = opt_str(&m, "name", "project")? {
        check_name("project.name", &n)?;
        p.name = n;
    }
    if let Some(d) = opt_str(&m, "description", "project")? {
        p.description = d;
    }
    if let Some(e) = opt_bool(&m, "enabled", "project")? {
        p.enabled = e;
    }
    if let Some(t) = opt_tags(&m)? {
        p.tags = t;
    }
    if let Some(Value::Object(o)) = m.get("options") {
        if let Value::Object(cur) = &mut p.options {
            cur.extend(o.clone());
        }
    }
    if let (Value::Object(cur), Value::Object(new)) = (&mut p.extra, extra_of(&m)) {
        cur.extend(new);
    }
    db::projects::update(id.store(), &p, was_enabled && !p.enabled).await?;
    id.changed().await?;
    Ok(axum::Json(json!({"project": view(&id, &p)})).into_response())
}

/// `PATCH /v3/projects/{id}` of a project acting as a domain: updates the domain, with the
/// project API's rules (its `domain_id` and `parent_id` stay null, `is_domain` stays true).
async fn update_domain_project(
    id: &Identity,
    mut d: Domain,
    m: Map<String, Value>,
) -> KsResult<Response> {
    if opt_str(&m, "domain_id", "project")?.is_some() {
        return Err(KsError::bad_request("Cannot change Domain ID"));
    }
    if opt_str(&m, "parent_id", "project")?.is_some() {
        return Err(KsError::forbidden_msg(
            "Update of `parent_id` is not allowed.",
        ));
    }
    if m.get("is_domain").is_some_and(|v| v != &Value::Bool(true)) {
        return Err(KsError::bad_request(
            "Invalid input for field 'project.is_domain': cannot be updated.",
        ));
    }
    let was_enabled = d.enabled;
    if let Some(n) = opt_str(&m, "name", "project")? {
        check_name("project.name", &n)?;
        d.name = n;
    }
    if let Some(v) = opt_str(&m, "description", "project")? {
        d.description = v;
    }
    if let Some(e) = opt_bool(&m, "enabled", "project")? {
        d.enabled = e;
    }
    if let Some(t) = opt_tags(&m)? {
        d.tags = t;
    }
    if let Some(Value::Object(o)) = m.get("options") {
        if let Value::Object(cur) = &mut d.options {
            cur.extend(o.clone());
        }
    }
    if let (Value::Object(cur), Value::Object(new)) = (&mut d.extra, extra_of(&m)) {
        cur.extend(new);
    }
    db::domains::update(id.store(), &d)
        .await
        .map_err(domain_project_conflict(&d.name))?;
    if was_enabled && !d.enabled {
        db::keys::revoke(id.store(), Revoke::domain(&d.id)).await?;
    }
    id.changed().await?;
    Ok(axum::Json(json!({"project": domain_view(id, &d)})).into_response())
}

async fn project_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
) -> KsResult<StatusCode> {
    let Some(p) = db::projects::get(id.store(), &pid).await? else {
        // A project acting as a domain: deleted as the domain, which must be disabled first.
        let d = load_domain(&id, &pid).await?;
        enforce("identity:delete_project", admin(&ctx))?;
        if d.enabled {
            return Err(KsError::forbidden_msg(
                "Cannot delete a domain that is enabled, please disable it first.",
            ));
        }
        db::domains::delete(id.store(), &d.id).await?;
        id.changed().await?;
        return Ok(StatusCode::NO_CONTENT);
    };
    enforce("identity:delete_project", admin(&ctx))?;
    db::projects::delete(id.store(), &p.id).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn save_tags(id: &Identity, mut p: Project, tags: Vec<String>) -> KsResult<Project> {
    check_tags(&tags)?;
    p.tags = tags;
    db::projects::update(id.store(), &p, false).await?;
    id.changed().await?;
    Ok(p)
}

async fn project_tags_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
) -> KsResult<Response> {
    let p = load(&id, &pid).await?;
    enforce(
        "identity:list_project_tags",
        admin_or_reader_of(&ctx, &p.domain_id) || ctx.project_id() == Some(p.id.as_str()),
    )?;
    Ok(axum::Json(json!({"tags": p.tags})).into_response())
}

#[derive(Deserialize)]
struct TagsBody {
    tags: Vec<String>,
}

async fn project_tags_replace(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
    KsJson(body): KsJson<TagsBody>,
) -> KsResult<Response> {
    let p = load(&id, &pid).await?;
    enforce("identity:update_project_tags", admin(&ctx))?;
    let mut tags = Vec::new();
    for t in body.tags {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let p = save_tags(&id, p, tags).await?;
    Ok(axum::Json(json!({"tags": p.tags})).into_response())
}

async fn project_tags_clear(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(pid): Path<String>,
) -> KsResult<StatusCode> {
    let p = load(&id, &pid).await?;
    enforce("identity:delete_project_tags", admin(&ctx))?;
    save_tags(&id, p, Vec::new()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn project_tag_check(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((pid, tag)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let p = load(&id, &pid).await?;
    enforce(
        "identity:get_project_tag",
        admin_or_reader_of(&ctx, &p.domain_id) || ctx.project_id() == Some(p.id.as_str()),
    )?;
    if p.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(KsError::not_found("tag", &tag))
    }
}

async fn project_tag_add(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((pid, tag)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let p = load(&id, &pid).await?;
    enforce("identity:create_project_tag", admin(&ctx))?;
    if !p.tags.contains(&tag) {
        let mut tags = p.tags.clone();
        tags.push(tag);
        save_tags(&id, p, tags).await?;
    }
    Ok(StatusCode::CREATED)
}

async fn project_tag_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((pid, tag)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    let p = load(&id, &pid).await?;
    enforce("identity:delete_project_tag", admin(&ctx))?;
    if !p.tags.contains(&tag) {
        return Err(KsError::not_found("tag", &tag));
    }
    let tags = p.tags.iter().filter(|t| **t != tag).cloned().collect();
    save_tags(&id, p, tags).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enabled projects a user holds a role on (directly, through groups, or inherited).
pub(crate) async fn projects_of_user(id: &Identity, user_id: &str) -> KsResult<Vec<Project>> {
    let store = id.store();
    let Some(user) = db::users::get(store, user_id).await? else {
        return Ok(Vec::new());
    };
    let mut w = db::Where::default();
    w.literal("enabled = 1");
    let mut out = Vec::new();
    for p in db::projects::list(store, &w).await? {
        if !id.direct_roles_on_project(&user, &p).await?.is_empty() {
            out.push(p);
        }
    }
    Ok(out)
}

async fn user_projects(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(uid): Path<String>,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let user = db::users::get(id.store(), &uid)
        .await?
        .ok_or_else(|| KsError::not_found("user", &uid))?;
    enforce(
        "identity:list_user_projects",
        owner(&ctx, &user.id) || admin_or_reader_of(&ctx, &user.domain_id),
    )?;
    let mut projects = projects_of_user(&id, &user.id).await?;
    projects.retain(|p| string_filter(&query, "name", &p.name));
    let items = projects.iter().map(|p| view(&id, p)).collect();
    Ok(axum::Json(collection(
        "projects",
        items,
        self_url(&id.v3_url(), &format!("users/{uid}/projects"), &query),
    ))
    .into_response())
}
