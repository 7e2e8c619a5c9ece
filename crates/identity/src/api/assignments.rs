//! Role assignments ("grants"): `/v3/{projects,domains}/{id}/{users,groups}/{id}/roles[/{role}]`,
//! `/v3/system/{users,groups}/{id}/roles[/{role}]`, the OS-INHERIT forms
//! (`/v3/OS-INHERIT/{domains,projects}/…/roles/{role}/inherited_to_projects`), and
//! `GET /v3/role_assignments`.
//!
//! The ten grant route families differ only in the kind of target and actor and in the
//! inherited flag, so they share one set of handlers parameterised by a [`Grant`]. Listing with
//! `effective` follows Keystone's algorithm step by step (the pure [`expand`] module): pick the
//! assignments that can affect the filters, expand group assignments into one per member
//! (`links.membership`), expand inherited assignments onto the projects below their target,
//! add implied roles (`links.prior_role`), drop domain-specific roles, then filter by role.

use super::roles::{load as load_role, view as role_view};
use super::util::{collection, has, q, query_true, self_url, QueryPairs};
use crate::db::{
    self,
    assignments::{Assignment, Kind, SYSTEM},
    roles::Role,
};
use crate::error::{KsError, KsResult};
use crate::extract::Auth;
use crate::policy::{admin, admin_or_reader_of, admin_or_system_reader, domain_reader, enforce};
use crate::Identity;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use expand::{Actor, Entry, Filters, Target, World};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use strata_api::AuthContext;

/// What a grant route is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Project,
    Domain,
    System,
}

/// Who a grant route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    User,
    Group,
}

/// One family of grant routes.
#[derive(Debug, Clone, Copy)]
struct Grant {
    on: On,
    who: Who,
    inherited: bool,
}

const GRANTS: [Grant; 10] = [
    Grant {
        on: On::Project,
        who: Who::User,
        inherited: false,
    },
    Grant {
        on: On::Project,
        who: Who::Group,
        inherited: false,
    },
    Grant {
        on: On::Domain,
        who: Who::User,
        inherited: false,
    },
    Grant {
        on: On::Domain,
        who: Who::Group,
        inherited: false,
    },
    Grant {
        on: On::System,
        who: Who::User,
        inherited: false,
    },
    Grant {
        on: On::System,
        who: Who::Group,
        inherited: false,
    },
    Grant {
        on: On::Domain,
        who: Who::User,
        inherited: true,
    },
    Grant {
        on: On::Domain,
        who: Who::Group,
        inherited: true,
    },
    Grant {
        on: On::Project,
        who: Who::User,
        inherited: true,
    },
    Grant {
        on: On::Project,
        who: Who::Group,
        inherited: true,
    },
];

#[derive(Debug, Clone, Copy)]
enum Verb {
    Create,
    Check,
    Revoke,
    List,
}

impl Grant {
    fn kind(self) -> Kind {
        match (self.on, self.who) {
            (On::Project, Who::User) => Kind::UserProject,
            (On::Project, Who::Group) => Kind::GroupProject,
            (On::Domain, Who::User) => Kind::UserDomain,
            (On::Domain, Who::Group) => Kind::GroupDomain,
            (On::System, Who::User) => Kind::UserSystem,
            (On::System, Who::Group) => Kind::GroupSystem,
        }
    }

    /// The roles collection path, e.g. `/v3/projects/{project_id}/users/{user_id}/roles`.
    fn base(self) -> String {
        let target = match self.on {
            On::Project => "projects/{project_id}/",
            On::Domain => "domains/{domain_id}/",
            On::System => "system/",
        };
        let actor = match self.who {
            Who::User => "users/{user_id}",
            Who::Group => "groups/{group_id}",
        };
        let prefix = if self.inherited {
            "/v3/OS-INHERIT/"
        } else {
            "/v3/"
        };
        format!("{prefix}{target}{actor}/roles")
    }

    fn one_path(self) -> String {
        let suffix = if self.inherited {
            "/inherited_to_projects"
        } else {
            ""
        };
        format!("{}/{{role_id}}{suffix}", self.base())
    }

    /// The list route; Keystone has none for inherited project grants.
    fn list_path(self) -> Option<String> {
        match (self.inherited, self.on) {
            (false, _) => Some(self.base()),
            (true, On::Domain) => Some(format!("{}/inherited_to_projects", self.base())),
            (true, _) => None,
        }
    }

    fn action(self, verb: Verb) -> &'static str {
        match (self.on, self.who, verb) {
            (On::System, Who::User, Verb::Create) => "identity:create_system_grant_for_user",
            (On::System, Who::User, Verb::Check) => "identity:check_system_grant_for_user",
            (On::System, Who::User, Verb::Revoke) => "identity:revoke_system_grant_for_user",
            (On::System, Who::User, Verb::List) => "identity:list_system_grants_for_user",
            (On::System, Who::Group, Verb::Create) => "identity:create_system_grant_for_group",
            (On::System, Who::Group, Verb::Check) => "identity:check_system_grant_for_group",
            (On::System, Who::Group, Verb::Revoke) => "identity:revoke_system_grant_for_group",
            (On::System, Who::Group, Verb::List) => "identity:list_system_grants_for_group",
            (_, _, Verb::Create) => "identity:create_grant",
            (_, _, Verb::Check) => "identity:check_grant",
            (_, _, Verb::Revoke) => "identity:revoke_grant",
            (_, _, Verb::List) => "identity:list_grants",
        }
    }
}

type Params = HashMap<String, String>;

pub fn routes() -> Router<Identity> {
    let mut r = Router::new().route("/v3/role_assignments", get(role_assignment_list));
    for g in GRANTS {
        r = r.route(
            &g.one_path(),
            get(
                move |State(id): State<Identity>, Auth(ctx): Auth, Path(p): Path<Params>| {
                    grant_check(id, ctx, p, g)
                },
            )
            .put(
                move |State(id): State<Identity>, Auth(ctx): Auth, Path(p): Path<Params>| {
                    grant_create(id, ctx, p, g)
                },
            )
            .delete(
                move |State(id): State<Identity>, Auth(ctx): Auth, Path(p): Path<Params>| {
                    grant_delete(id, ctx, p, g)
                },
            ),
        );
        if let Some(path) = g.list_path() {
            r = r.route(
                &path,
                get(
                    move |State(id): State<Identity>,
                          Auth(ctx): Auth,
                          Path(p): Path<Params>,
                          Query(query): Query<QueryPairs>| {
                        grant_list(id, ctx, p, query, g)
                    },
                ),
            );
        }
    }
    r
}

/// The actor and target of a grant route, loaded (404 for either).
struct Parties {
    actor_id: String,
    actor_domain: String,
    target_id: String,
    /// The domain the target belongs to (`None` for the system).
    target_domain: Option<String>,
}

fn param<'a>(p: &'a Params, k: &str) -> &'a str {
    p.get(k).map(String::as_str).unwrap_or_default()
}

/// Loads actor then target, in Keystone's order (after the role).
async fn parties(id: &Identity, g: Grant, p: &Params) -> KsResult<Parties> {
    let store = id.store();
    let (actor_id, actor_domain) = match g.who {
        Who::User => {
            let uid = param(p, "user_id");
            let u = db::users::get(store, uid)
                .await?
                .ok_or_else(|| KsError::not_found("user", uid))?;
            (u.id, u.domain_id)
        }
        Who::Group => {
            let gid = param(p, "group_id");
            let gr = db::groups::get(store, gid)
                .await?
                .ok_or_else(|| KsError::not_found("group", gid))?;
            (gr.id, gr.domain_id)
        }
    };
    let (target_id, target_domain) = match g.on {
        On::Project => {
            let pid = param(p, "project_id");
            let pr = db::projects::get(store, pid)
                .await?
                .ok_or_else(|| KsError::not_found("project", pid))?;
            (pr.id, Some(pr.domain_id))
        }
        On::Domain => {
            let did = param(p, "domain_id");
            let d = db::domains::get(store, did)
                .await?
                .ok_or_else(|| KsError::not_found("domain", did))?;
            (d.id.clone(), Some(d.id))
        }
        On::System => (SYSTEM.to_string(), None),
    };
    Ok(Parties {
        actor_id,
        actor_domain,
        target_id,
        target_domain,
    })
}

/// Reads of grants: admin, system reader, or a reader of the domain of both target and actor.
fn may_read(ctx: &AuthContext, who: &Parties) -> bool {
    admin_or_system_reader(ctx)
        || who
            .target_domain
            .as_deref()
            .is_some_and(|d| domain_reader(ctx, d) && domain_reader(ctx, &who.actor_domain))
}

fn assignment(g: Grant, who: &Parties, role_id: &str) -> Assignment {
    Assignment {
        kind: g.kind(),
        actor_id: who.actor_id.clone(),
        target_id: who.target_id.clone(),
        role_id: role_id.to_string(),
        inherited: g.inherited,
    }
}

fn assignment_not_found(a: &Assignment) -> KsError {
    KsError::new(
        StatusCode::NOT_FOUND,
        format!(
            "Could not find role assignment with role: {}, user or group: {}, project, domain, or system: {}.",
            a.role_id, a.actor_id, a.target_id
        ),
    )
}

/// `PUT …/roles/{role_id}`: 204, idempotent.
async fn grant_create(
    id: Identity,
    ctx: std::sync::Arc<AuthContext>,
    p: Params,
    g: Grant,
) -> KsResult<StatusCode> {
    let role = load_role(&id, param(&p, "role_id")).await?;
    let who = parties(&id, g, &p).await?;
    enforce(g.action(Verb::Create), admin(&ctx))?;
    if let Some(rd) = &role.domain_id {
        match g.on {
            On::System => {
                return Err(KsError::bad_request(format!(
                    "Role {} is a domain-specific role. Unable to use a domain-specific role in a system assignment.",
                    role.id
                )))
            }
            On::Project if who.target_domain.as_deref() != Some(rd.as_str()) => {
                return Err(KsError::forbidden_msg(format!(
                    "Project {} must be in the same domain as the role {} being assigned.",
                    who.target_id, role.id
                )))
            }
            _ => {}
        }
    }
    db::assignments::add(id.store(), &assignment(g, &who, &role.id)).await?;
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET`/`HEAD …/roles/{role_id}`: 204 when assigned, 404 otherwise.
async fn grant_check(
    id: Identity,
    ctx: std::sync::Arc<AuthContext>,
    p: Params,
    g: Grant,
) -> KsResult<StatusCode> {
    let role = load_role(&id, param(&p, "role_id")).await?;
    let who = parties(&id, g, &p).await?;
    enforce(g.action(Verb::Check), may_read(&ctx, &who))?;
    let a = assignment(g, &who, &role.id);
    if db::assignments::exists(id.store(), &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(assignment_not_found(&a))
    }
}

/// `DELETE …/roles/{role_id}`: 204, 404 when not assigned. Revokes the tokens that carried it
/// (for a group, its members').
async fn grant_delete(
    id: Identity,
    ctx: std::sync::Arc<AuthContext>,
    p: Params,
    g: Grant,
) -> KsResult<StatusCode> {
    let role = load_role(&id, param(&p, "role_id")).await?;
    let who = parties(&id, g, &p).await?;
    enforce(g.action(Verb::Revoke), admin(&ctx))?;
    let a = assignment(g, &who, &role.id);
    let members = match g.who {
        Who::Group => db::groups::member_ids(id.store(), &who.actor_id).await?,
        Who::User => Vec::new(),
    };
    if !db::assignments::remove(id.store(), &a, members).await? {
        return Err(assignment_not_found(&a));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/roles`: the roles granted directly (not implied, not through groups).
async fn grant_list(
    id: Identity,
    ctx: std::sync::Arc<AuthContext>,
    p: Params,
    query: QueryPairs,
    g: Grant,
) -> KsResult<Response> {
    let who = parties(&id, g, &p).await?;
    enforce(g.action(Verb::List), may_read(&ctx, &who))?;
    let mut w = db::Where::default();
    w.eq("kind", g.kind().as_str())
        .eq("actor_id", who.actor_id.clone())
        .eq("target_id", who.target_id.clone())
        .literal(if g.inherited {
            "inherited = 1"
        } else {
            "inherited = 0"
        });
    let mut items = Vec::new();
    for a in db::assignments::list(id.store(), &w).await? {
        if let Some(r) = db::roles::get(id.store(), &a.role_id).await? {
            items.push(role_view(&id, &r));
        }
    }
    // The request path, placeholders filled, for `links.self`.
    let mut path = g.list_path().unwrap_or_default();
    for (k, v) in &p {
        path = path.replace(&format!("{{{k}}}"), v);
    }
    let path = path.trim_start_matches("/v3/");
    Ok(axum::Json(collection(
        "roles",
        items,
        self_url(&id.v3_url(), path, &query),
    ))
    .into_response())
}

/// A query value, empty counting as absent (Keystone tests these for truthiness).
fn qv(query: &QueryPairs, k: &str) -> Option<String> {
    q(query, k).filter(|v| !v.is_empty()).map(str::to_string)
}

/// `GET /v3/role_assignments`.
async fn role_assignment_list(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Query(query): Query<QueryPairs>,
) -> KsResult<Response> {
    let store = id.store();
    let f = Filters {
        role_id: qv(&query, "role.id"),
        user_id: qv(&query, "user.id"),
        group_id: qv(&query, "group.id"),
        system: q(&query, "scope.system") == Some("all"),
        domain_id: qv(&query, "scope.domain.id"),
        project_id: qv(&query, "scope.project.id"),
        include_subtree: has(&query, "include_subtree")
            && q(&query, "include_subtree").is_none_or(query_true),
        inherited: q(&query, "scope.OS-INHERIT:inherited_to").map(|v| v == "projects"),
        effective: has(&query, "effective") && q(&query, "effective").is_none_or(query_true),
    };
    let include_names =
        has(&query, "include_names") && q(&query, "include_names").is_none_or(query_true);
    // Clients list their own effective assignments (`?user.id=<me>&effective`).
    let own = f.effective && f.user_id.as_deref() == Some(ctx.user_id.as_str());
    if f.include_subtree {
        let project = match &f.project_id {
            Some(pid) => Some(
                db::projects::get(store, pid)
                    .await?
                    .ok_or_else(|| KsError::not_found("project", pid))?,
            ),
            None => None,
        };
        enforce(
            "identity:list_role_assignments_for_tree",
            admin_or_system_reader(&ctx)
                || project
                    .as_ref()
                    .is_some_and(|p| admin_or_reader_of(&ctx, &p.domain_id))
                || own,
        )?;
        if project.is_none() {
            return Err(KsError::bad_request(
                "scope.project.id must be specified if include_subtree is also specified",
            ));
        }
    } else {
        enforce(
            "identity:list_role_assignments",
            admin_or_system_reader(&ctx)
                || ctx.domain_id().is_some_and(|d| domain_reader(&ctx, d))
                || own,
        )?;
    }
    let system_given = qv(&query, "scope.system").is_some();
    if f.domain_id.is_some() && f.project_id.is_some() {
        return Err(KsError::bad_request(
            "Specify a domain or project, not both",
        ));
    }
    if f.domain_id.is_some() && system_given {
        return Err(KsError::bad_request("Specify system or domain, not both"));
    }
    if f.project_id.is_some() && system_given {
        return Err(KsError::bad_request("Specify system or project, not both"));
    }
    if f.user_id.is_some() && f.group_id.is_some() {
        return Err(KsError::bad_request("Specify a user or group, not both"));
    }
    if f.effective && f.group_id.is_some() {
        return Err(KsError::bad_request(
            "Combining effective and group filter will always result in an empty list.",
        ));
    }
    if f.effective && f.inherited == Some(true) && f.domain_id.is_some() {
        return Err(KsError::bad_request(
            "Combining effective, domain and inherited filters will always result in an empty list.",
        ));
    }

    let world = load_world(&id).await?;
    if f.effective {
        // Expanding onto a project needs the project itself.
        if let Some(pid) = &f.project_id {
            if world.project(pid).is_none() {
                return Err(KsError::not_found("project", pid));
            }
        }
    }
    let mut entries = expand::list(&f, &world);
    // A domain-scoped token sees assignments on its domain and its projects only.
    if let Some(d) = ctx.domain_id() {
        entries.retain(|e| match &e.target {
            Target::Domain(x) => x == d,
            Target::Project(p) => world.project(p).is_some_and(|p| p.domain_id == d),
            Target::System => false,
        });
    }
    let names = if include_names {
        Some(Names::load(&id, &entries).await?)
    } else {
        None
    };
    let v3 = id.v3_url();
    let items: Vec<Value> = entries
        .iter()
        .map(|e| format_entry(&v3, e, names.as_ref()))
        .collect();
    Ok(axum::Json(collection(
        "role_assignments",
        items,
        self_url(&v3, "role_assignments", &query),
    ))
    .into_response())
}

async fn load_world(id: &Identity) -> KsResult<World> {
    let store = id.store();
    let all = db::Where::default();
    let roles = db::roles::list(store, &all).await?;
    Ok(World {
        assignments: db::assignments::list(store, &all).await?,
        memberships: db::groups::memberships(store).await?,
        projects: db::projects::list(store, &all)
            .await?
            .into_iter()
            .map(|p| expand::ProjectNode {
                id: p.id,
                domain_id: p.domain_id,
                parent_id: p.parent_id,
            })
            .collect(),
        rules: db::roles::implications(store).await?,
        domain_roles: roles
            .iter()
            .filter(|r| r.domain_id.is_some())
            .map(|r| r.id.clone())
            .collect(),
    })
}

/// Names for `include_names`: `(name, domain id, domain name)` of users, groups and projects,
/// names of domains, and roles.
#[derive(Default)]
struct Names {
    users: HashMap<String, (String, String, String)>,
    groups: HashMap<String, (String, String, String)>,
    projects: HashMap<String, (String, String, String)>,
    domains: HashMap<String, String>,
    roles: HashMap<String, Role>,
}

impl Names {
    async fn load(id: &Identity, entries: &[Entry]) -> KsResult<Names> {
        let store = id.store();
        let mut n = Names::default();
        for d in db::domains::list(store, &db::Where::default()).await? {
            n.domains.insert(d.id, d.name);
        }
        for r in db::roles::list(store, &db::Where::default()).await? {
            n.roles.insert(r.id.clone(), r);
        }
        for e in entries {
            match &e.actor {
                Actor::User(u) if !n.users.contains_key(u) => {
                    // A user deleted under us shows with empty names, as in Keystone.
                    let v = match db::users::get(store, u).await? {
                        Some(x) => {
                            let dn = n.domains.get(&x.domain_id).cloned().unwrap_or_default();
                            (x.name, x.domain_id, dn)
                        }
                        None => Default::default(),
                    };
                    n.users.insert(u.clone(), v);
                }
                Actor::Group(g) if !n.groups.contains_key(g) => {
                    let v = match db::groups::get(store, g).await? {
                        Some(x) => {
                            let dn = n.domains.get(&x.domain_id).cloned().unwrap_or_default();
                            (x.name, x.domain_id, dn)
                        }
                        None => Default::default(),
                    };
                    n.groups.insert(g.clone(), v);
                }
                _ => {}
            }
            if let Target::Project(p) = &e.target {
                if !n.projects.contains_key(p) {
                    let v = match db::projects::get(store, p).await? {
                        Some(x) => {
                            let dn = n.domains.get(&x.domain_id).cloned().unwrap_or_default();
                            (x.name, x.domain_id, dn)
                        }
                        None => Default::default(),
                    };
                    n.projects.insert(p.clone(), v);
                }
            }
        }
        Ok(n)
    }
}

fn named(id: &str, n: Option<&(String, String, String)>) -> Value {
    match n {
        Some((name, did, dname)) => {
            json!({"id": id, "name": name, "domain": {"id": did, "name": dname}})
        }
        None => json!({"id": id}),
    }
}

/// One item of `role_assignments`, as Keystone's `_format_entity` builds it.
fn format_entry(v3: &str, e: &Entry, names: Option<&Names>) -> Value {
    let mut links = serde_json::Map::new();
    let mut inherited = e.inherited;
    let (mut scope, mut link) = match &e.target {
        Target::Project(p) => {
            let scope = match names {
                Some(n) => json!({"project": named(p, n.projects.get(p))}),
                None => json!({"project": {"id": p}}),
            };
            let link = match &e.via_target {
                Some(Target::Domain(d)) => {
                    inherited = true;
                    format!("/domains/{d}")
                }
                Some(Target::Project(src)) => {
                    inherited = true;
                    format!("/projects/{src}")
                }
                _ => format!("/projects/{p}"),
            };
            (scope, link)
        }
        Target::Domain(d) => {
            let scope = match names {
                Some(n) => {
                    json!({"domain": {"id": d, "name": n.domains.get(d).cloned().unwrap_or_default()}})
                }
                None => json!({"domain": {"id": d}}),
            };
            (scope, format!("/domains/{d}"))
        }
        Target::System => (json!({"system": {"all": true}}), "/system".to_string()),
    };
    let mut out = serde_json::Map::new();
    match &e.actor {
        Actor::User(u) => {
            out.insert(
                "user".into(),
                match names {
                    Some(n) => named(u, Some(&n.users.get(u).cloned().unwrap_or_default())),
                    None => json!({"id": u}),
                },
            );
            match &e.via_group {
                Some(g) => {
                    links.insert(
                        "membership".into(),
                        json!(format!("{v3}/groups/{g}/users/{u}")),
                    );
                    link.push_str(&format!("/groups/{g}"));
                }
                None => link.push_str(&format!("/users/{u}")),
            }
        }
        Actor::Group(g) => {
            out.insert(
                "group".into(),
                match names {
                    Some(n) => named(g, Some(&n.groups.get(g).cloned().unwrap_or_default())),
                    None => json!({"id": g}),
                },
            );
            link.push_str(&format!("/groups/{g}"));
        }
    }
    let role = match names.and_then(|n| n.roles.get(&e.role_id).map(|r| (n, r))) {
        Some((n, r)) => {
            let mut v = json!({"id": e.role_id, "name": r.name});
            if let Some(d) = &r.domain_id {
                v["domain"] =
                    json!({"id": d, "name": n.domains.get(d).cloned().unwrap_or_default()});
            }
            v
        }
        None => json!({"id": e.role_id}),
    };
    out.insert("role".into(), role);
    match &e.prior_role {
        Some(prior) => {
            // The assignment that granted the prior role; Keystone also links the rule.
            link.push_str(&format!("/roles/{prior}"));
            links.insert(
                "prior_role".into(),
                json!(format!("{v3}/roles/{prior}/implies/{}", e.role_id)),
            );
        }
        None => link.push_str(&format!("/roles/{}", e.role_id)),
    }
    if inherited {
        scope["OS-INHERIT:inherited_to"] = json!("projects");
        link = format!("/OS-INHERIT{link}/inherited_to_projects");
    }
    links.insert("assignment".into(), json!(format!("{v3}{link}")));
    out.insert("scope".into(), scope);
    out.insert("links".into(), Value::Object(links));
    Value::Object(out)
}

/// Keystone's role-assignment listing over a snapshot of the assignment data, without I/O.
pub(crate) mod expand {
    use crate::db::assignments::{Assignment, Kind};
    use std::collections::HashSet;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub enum Actor {
        User(String),
        Group(String),
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub enum Target {
        Project(String),
        Domain(String),
        System,
    }

    /// One listed assignment. Direct ones have no `via_*`; effective ones say where they came
    /// from: a group membership, an inherited assignment on a domain or parent project, a prior
    /// role.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct Entry {
        pub role_id: String,
        pub actor: Actor,
        pub target: Target,
        /// An inherited assignment listed as such (not expanded).
        pub inherited: bool,
        pub via_group: Option<String>,
        pub via_target: Option<Target>,
        pub prior_role: Option<String>,
    }

    /// The query of `GET /v3/role_assignments`.
    #[derive(Debug, Default, Clone)]
    pub struct Filters {
        pub role_id: Option<String>,
        pub user_id: Option<String>,
        pub group_id: Option<String>,
        /// `scope.system=all`.
        pub system: bool,
        pub domain_id: Option<String>,
        pub project_id: Option<String>,
        pub include_subtree: bool,
        /// `scope.OS-INHERIT:inherited_to`: `Some(true)` for `projects`, `None` when absent.
        pub inherited: Option<bool>,
        pub effective: bool,
    }

    #[derive(Debug, Clone)]
    pub struct ProjectNode {
        pub id: String,
        pub domain_id: String,
        pub parent_id: Option<String>,
    }

    /// What the listing reads.
    #[derive(Debug, Default)]
    pub struct World {
        pub assignments: Vec<Assignment>,
        /// `(group_id, user_id)`.
        pub memberships: Vec<(String, String)>,
        pub projects: Vec<ProjectNode>,
        /// `(prior, implied)`.
        pub rules: Vec<(String, String)>,
        /// Ids of domain-specific roles.
        pub domain_roles: HashSet<String>,
    }

    impl World {
        pub fn project(&self, id: &str) -> Option<&ProjectNode> {
            self.projects.iter().find(|p| p.id == id)
        }

        /// Every project below `id`, not including it.
        fn subtree(&self, id: &str) -> Vec<String> {
            let mut out = Vec::new();
            let mut frontier = vec![id.to_string()];
            while let Some(cur) = frontier.pop() {
                for p in &self.projects {
                    if p.parent_id.as_deref() == Some(cur.as_str()) && !out.contains(&p.id) {
                        out.push(p.id.clone());
                        frontier.push(p.id.clone());
                    }
                }
            }
            out
        }

        /// The parents of `id` up to (not including) its domain.
        fn ancestors(&self, id: &str) -> Vec<String> {
            let mut out = Vec::new();
            let mut cur = self.project(id);
            while let Some(p) = cur {
                match p.parent_id.as_deref() {
                    Some(parent) if parent != p.domain_id && !out.iter().any(|x| x == parent) => {
                        out.push(parent.to_string());
                        cur = self.project(parent);
                    }
                    _ => break,
                }
            }
            out
        }

        fn projects_in_domain(&self, d: &str) -> Vec<String> {
            self.projects
                .iter()
                .filter(|p| p.domain_id == d)
                .map(|p| p.id.clone())
                .collect()
        }

        fn members(&self, g: &str) -> Vec<String> {
            self.memberships
                .iter()
                .filter(|(x, _)| x == g)
                .map(|(_, u)| u.clone())
                .collect()
        }

        fn groups_of(&self, u: &str) -> Vec<String> {
            self.memberships
                .iter()
                .filter(|(_, x)| x == u)
                .map(|(g, _)| g.clone())
                .collect()
        }
    }

    fn actor_of(a: &Assignment) -> Actor {
        if a.kind.is_group() {
            Actor::Group(a.actor_id.clone())
        } else {
            Actor::User(a.actor_id.clone())
        }
    }

    fn target_of(a: &Assignment) -> Target {
        match a.kind {
            Kind::UserProject | Kind::GroupProject => Target::Project(a.target_id.clone()),
            Kind::UserDomain | Kind::GroupDomain => Target::Domain(a.target_id.clone()),
            Kind::UserSystem | Kind::GroupSystem => Target::System,
        }
    }

    fn direct_entry(a: &Assignment) -> Entry {
        Entry {
            role_id: a.role_id.clone(),
            actor: actor_of(a),
            target: target_of(a),
            inherited: a.inherited,
            via_group: None,
            via_target: None,
            prior_role: None,
        }
    }

    /// The listing: direct assignments matching the filters, or with `effective` what they
    /// amount to per user.
    pub fn list(f: &Filters, w: &World) -> Vec<Entry> {
        if f.effective {
            effective(f, w)
        } else {
            direct(f, w)
        }
    }

    fn direct(f: &Filters, w: &World) -> Vec<Entry> {
        let pids = f.project_id.as_ref().map(|p| {
            let mut v = vec![p.clone()];
            if f.include_subtree {
                v.extend(w.subtree(p));
            }
            v
        });
        // As Keystone: a project or domain filter excludes system assignments, a system
        // filter excludes the others. Inherited-only listings have no system assignments.
        let want_system = f.inherited != Some(true)
            && (f.system || (f.project_id.is_none() && f.domain_id.is_none()));
        let want_others = !f.system;
        w.assignments
            .iter()
            .filter(|a| {
                if f.role_id.as_ref().is_some_and(|r| *r != a.role_id) {
                    return false;
                }
                let actor_ok = match (&f.user_id, &f.group_id, actor_of(a)) {
                    (Some(u), _, Actor::User(x)) => *u == x,
                    (Some(_), _, Actor::Group(_)) => false,
                    (None, Some(g), Actor::Group(x)) => *g == x,
                    (None, Some(_), Actor::User(_)) => false,
                    (None, None, _) => true,
                };
                if !actor_ok {
                    return false;
                }
                if f.inherited.is_some_and(|i| i != a.inherited) && !a.kind_is_system() {
                    return false;
                }
                match target_of(a) {
                    Target::System => want_system,
                    Target::Domain(d) => {
                        want_others
                            && pids.is_none()
                            && f.domain_id.as_ref().is_none_or(|x| *x == d)
                    }
                    Target::Project(p) => {
                        want_others
                            && f.domain_id.is_none()
                            && pids.as_ref().is_none_or(|v| v.contains(&p))
                    }
                }
            })
            .map(direct_entry)
            .collect()
    }

    trait SystemKind {
        fn kind_is_system(&self) -> bool;
    }

    impl SystemKind for Assignment {
        fn kind_is_system(&self) -> bool {
            matches!(self.kind, Kind::UserSystem | Kind::GroupSystem)
        }
    }

    fn effective(f: &Filters, w: &World) -> Vec<Entry> {
        if f.group_id.is_some() || (f.domain_id.is_some() && f.inherited == Some(true)) {
            return Vec::new();
        }
        let user_groups = f.user_id.as_deref().map(|u| w.groups_of(u));
        let actor_ok = |a: &Assignment| match (&f.user_id, actor_of(a)) {
            (None, _) => true,
            (Some(u), Actor::User(x)) => *u == x,
            (Some(_), Actor::Group(g)) => user_groups.as_ref().is_some_and(|gs| gs.contains(&g)),
        };
        // The members an assignment reaches: the filtered user only, when there is one.
        let users_of = |a: &Assignment| -> Vec<(String, Option<String>)> {
            match (actor_of(a), &f.user_id) {
                (Actor::User(u), _) => vec![(u, None)],
                (Actor::Group(g), Some(u)) => vec![(u.clone(), Some(g))],
                (Actor::Group(g), None) => w
                    .members(&g)
                    .into_iter()
                    .map(|u| (u, Some(g.clone())))
                    .collect(),
            }
        };
        let mut out = Vec::new();
        if f.system {
            // Keystone ignores `scope.system` in effective mode (its system assignments live
            // apart); we answer what the filter asks: system assignments, expanded.
            for a in w
                .assignments
                .iter()
                .filter(|a| a.kind_is_system() && actor_ok(a))
            {
                for (u, g) in users_of(a) {
                    out.push(Entry {
                        actor: Actor::User(u),
                        via_group: g,
                        ..direct_entry(a)
                    });
                }
            }
            return finish(out, f, w);
        }
        // Domains inherit nothing.
        let inherited = if f.domain_id.is_some() {
            Some(false)
        } else {
            f.inherited
        };
        let scope = f.project_id.as_ref().map(|p| {
            let mut pids = vec![p.clone()];
            if f.include_subtree {
                pids.extend(w.subtree(p));
            }
            let domain = w.project(p).map(|x| x.domain_id.clone());
            (pids, w.ancestors(p), domain)
        });
        for a in &w.assignments {
            if a.kind_is_system() || !actor_ok(a) {
                continue;
            }
            let t = target_of(a);
            let relevant = if a.inherited {
                inherited != Some(false)
                    && match &scope {
                        Some((pids, parents, pdomain)) => match &t {
                            Target::Domain(d) => pdomain.as_ref() == Some(d),
                            Target::Project(x) => {
                                parents.contains(x) || (f.include_subtree && pids.contains(x))
                            }
                            Target::System => false,
                        },
                        None => true,
                    }
            } else {
                inherited != Some(true)
                    && match (&scope, &f.domain_id, &t) {
                        (Some((pids, _, _)), _, Target::Project(x)) => pids.contains(x),
                        (Some(_), _, _) => false,
                        (None, Some(d), Target::Domain(x)) => d == x,
                        (None, Some(_), _) => false,
                        (None, None, _) => true,
                    }
            };
            if !relevant {
                continue;
            }
            if a.inherited {
                // Onto the projects below the assignment point (within the filter).
                let projects = match (&f.project_id, &t) {
                    (Some(p), _) => {
                        let mut ids = vec![p.clone()];
                        if f.include_subtree {
                            ids.extend(w.subtree(p));
                            if let Target::Project(x) = &t {
                                if ids.contains(x) {
                                    ids = w.subtree(x);
                                }
                            }
                        }
                        ids
                    }
                    (None, Target::Domain(d)) => w.projects_in_domain(d),
                    (None, Target::Project(x)) => w.subtree(x),
                    (None, Target::System) => Vec::new(),
                };
                for (u, g) in users_of(a) {
                    for pid in &projects {
                        out.push(Entry {
                            role_id: a.role_id.clone(),
                            actor: Actor::User(u.clone()),
                            target: Target::Project(pid.clone()),
                            inherited: false,
                            via_group: g.clone(),
                            via_target: Some(t.clone()),
                            prior_role: None,
                        });
                    }
                }
            } else {
                for (u, g) in users_of(a) {
                    out.push(Entry {
                        actor: Actor::User(u),
                        via_group: g,
                        ..direct_entry(a)
                    });
                }
            }
        }
        finish(out, f, w)
    }

    /// Adds implied roles, drops domain-specific roles, filters by role, removes duplicates.
    fn finish(entries: Vec<Entry>, f: &Filters, w: &World) -> Vec<Entry> {
        let mut seen: HashSet<Entry> = HashSet::new();
        let mut out = Vec::new();
        let mut stack: Vec<Entry> = Vec::new();
        for e in entries {
            if seen.insert(e.clone()) {
                out.push(e.clone());
                stack.push(e);
            }
        }
        while let Some(e) = stack.pop() {
            for (prior, implied) in &w.rules {
                if *prior != e.role_id {
                    continue;
                }
                let n = Entry {
                    role_id: implied.clone(),
                    prior_role: Some(e.role_id.clone()),
                    ..e.clone()
                };
                if seen.insert(n.clone()) {
                    out.push(n.clone());
                    stack.push(n);
                }
            }
        }
        out.retain(|e| {
            !w.domain_roles.contains(&e.role_id)
                && f.role_id.as_ref().is_none_or(|r| *r == e.role_id)
        });
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn a(kind: Kind, actor: &str, target: &str, role: &str, inherited: bool) -> Assignment {
            Assignment {
                kind,
                actor_id: actor.into(),
                target_id: target.into(),
                role_id: role.into(),
                inherited,
            }
        }

        fn node(id: &str, domain: &str, parent: &str) -> ProjectNode {
            ProjectNode {
                id: id.into(),
                domain_id: domain.into(),
                parent_id: Some(parent.into()),
            }
        }

        /// d ─ p1 ─ p2 ─ p3; d ─ q; group g = {u1, u2}.
        fn world() -> World {
            World {
                assignments: vec![
                    a(Kind::UserProject, "u1", "p1", "member", false),
                    a(Kind::GroupProject, "g", "q", "reader", false),
                    a(Kind::UserDomain, "u1", "d", "observer", true),
                    a(Kind::GroupProject, "g", "p1", "ops", true),
                    a(Kind::UserSystem, "u2", "system", "admin", false),
                    a(Kind::UserProject, "u2", "q", "dsr", false),
                ],
                memberships: vec![("g".into(), "u1".into()), ("g".into(), "u2".into())],
                projects: vec![
                    node("p1", "d", "d"),
                    node("p2", "d", "p1"),
                    node("p3", "d", "p2"),
                    node("q", "d", "d"),
                ],
                rules: vec![
                    ("member".into(), "reader".into()),
                    ("dsr".into(), "member".into()),
                ],
                domain_roles: ["dsr".to_string()].into_iter().collect(),
            }
        }

        fn keys(v: &[Entry]) -> Vec<String> {
            let mut out: Vec<String> = v
                .iter()
                .map(|e| {
                    let who = match &e.actor {
                        Actor::User(u) => u.clone(),
                        Actor::Group(g) => format!("g:{g}"),
                    };
                    let on = match &e.target {
                        Target::Project(p) => p.clone(),
                        Target::Domain(d) => format!("d:{d}"),
                        Target::System => "system".into(),
                    };
                    format!("{who} {on} {}", e.role_id)
                })
                .collect();
            out.sort();
            out
        }

        #[test]
        fn direct_listing_filters_without_expanding() {
            let w = world();
            assert_eq!(list(&Filters::default(), &w).len(), 6);
            let f = Filters {
                user_id: Some("u1".into()),
                ..Default::default()
            };
            assert_eq!(keys(&list(&f, &w)), ["u1 d:d observer", "u1 p1 member"]);
            let f = Filters {
                project_id: Some("p1".into()),
                include_subtree: true,
                ..Default::default()
            };
            assert_eq!(keys(&list(&f, &w)), ["g:g p1 ops", "u1 p1 member"]);
            let f = Filters {
                inherited: Some(true),
                ..Default::default()
            };
            assert_eq!(keys(&list(&f, &w)), ["g:g p1 ops", "u1 d:d observer"]);
            let f = Filters {
                system: true,
                ..Default::default()
            };
            assert_eq!(keys(&list(&f, &w)), ["u2 system admin"]);
        }

        #[test]
        fn effective_expands_groups_inheritance_and_implied_roles() {
            let w = world();
            let f = Filters {
                user_id: Some("u1".into()),
                effective: true,
                ..Default::default()
            };
            assert_eq!(
                keys(&list(&f, &w)),
                [
                    "u1 p1 member",
                    "u1 p1 observer",
                    "u1 p1 reader",
                    "u1 p2 observer",
                    "u1 p2 ops",
                    "u1 p3 observer",
                    "u1 p3 ops",
                    "u1 q observer",
                    "u1 q reader",
                ]
            );
            // The domain-specific role is stripped but what it implies stays.
            let f = Filters {
                user_id: Some("u2".into()),
                project_id: Some("q".into()),
                effective: true,
                ..Default::default()
            };
            // reader through the group, member implied by dsr, reader implied by member.
            assert_eq!(
                keys(&list(&f, &w)),
                ["u2 q member", "u2 q reader", "u2 q reader"]
            );
            let got = list(&f, &w);
            let from_group = got.iter().find(|e| e.via_group.is_some()).unwrap();
            assert_eq!(from_group.role_id, "reader");
            let implied = got
                .iter()
                .find(|e| e.role_id == "reader" && e.prior_role.is_some())
                .unwrap();
            assert_eq!(implied.prior_role.as_deref(), Some("member"));
        }

        #[test]
        fn effective_project_filter_pulls_inherited_from_parents() {
            let w = world();
            let f = Filters {
                project_id: Some("p3".into()),
                effective: true,
                ..Default::default()
            };
            assert_eq!(
                keys(&list(&f, &w)),
                ["u1 p3 observer", "u1 p3 ops", "u2 p3 ops"]
            );
            let e = list(&f, &w);
            let ops = e.iter().find(|e| e.role_id == "ops").unwrap();
            assert_eq!(ops.via_target, Some(Target::Project("p1".into())));
            assert_eq!(ops.via_group.as_deref(), Some("g"));
            // Inherited assignments do not apply to their own project.
            let f = Filters {
                project_id: Some("p1".into()),
                role_id: Some("ops".into()),
                effective: true,
                ..Default::default()
            };
            assert!(list(&f, &w).is_empty());
            let f = Filters {
                project_id: Some("p1".into()),
                include_subtree: true,
                role_id: Some("ops".into()),
                effective: true,
                ..Default::default()
            };
            assert_eq!(
                keys(&list(&f, &w)),
                ["u1 p2 ops", "u1 p3 ops", "u2 p2 ops", "u2 p3 ops"]
            );
        }

        #[test]
        fn effective_domain_and_system() {
            let w = world();
            let f = Filters {
                domain_id: Some("d".into()),
                effective: true,
                ..Default::default()
            };
            assert!(list(&f, &w).is_empty());
            let f = Filters {
                system: true,
                effective: true,
                ..Default::default()
            };
            assert_eq!(keys(&list(&f, &w)), ["u2 system admin"]);
            // Without a filter, effective mode leaves system assignments out, as Keystone.
            let f = Filters {
                effective: true,
                ..Default::default()
            };
            assert!(!keys(&list(&f, &w)).iter().any(|k| k.contains("system")));
        }

        #[test]
        fn implied_cycles_terminate() {
            let mut w = world();
            w.rules.push(("reader".into(), "member".into()));
            let f = Filters {
                user_id: Some("u1".into()),
                project_id: Some("p1".into()),
                effective: true,
                ..Default::default()
            };
            let got = list(&f, &w);
            assert!(got.len() < 10, "{got:?}");
        }
    }
}
