//! `os-server-groups`: list (own project; every project for admins with `all_projects`;
//! `limit`/`offset`), create, show and delete. The view follows the microversion: `policies`
//! and `metadata` below 2.64, `policy` and `rules` from 2.64, `project_id` and `user_id` from
//! 2.13; members are the group's servers that are not deleted. Creating counts the project's
//! groups against its `server_groups` quota inside the write that inserts the group.

use super::server_meta::limited;
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::schema::{self, fail, repr};
use crate::server_db::{self as sdb, Group};
use crate::version::Microversion;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-server-groups", get(group_list).post(group_create))
        .route(
            "/os-server-groups/{id}",
            get(group_show).delete(group_delete),
        )
}

/// The members of `groups` that are live servers.
async fn live_members(svc: &ComputeService, groups: &[Group]) -> NovaResult<HashSet<String>> {
    let mut seen: HashMap<String, bool> = HashMap::new();
    for g in groups {
        for m in &g.members {
            if !seen.contains_key(m) {
                let live = matches!(sdb::get(svc.store(), m).await?, Some(s) if !s.deleted);
                seen.insert(m.clone(), live);
            }
        }
    }
    Ok(seen
        .into_iter()
        .filter(|(_, l)| *l)
        .map(|(k, _)| k)
        .collect())
}

fn view(g: &Group, mv: Microversion, live: &HashSet<String>) -> Value {
    let members: Vec<&String> = g.members.iter().filter(|m| live.contains(*m)).collect();
    let mut v = json!({"id": g.id, "name": g.name, "members": members});
    if mv.at_least(64) {
        v["policy"] = json!(g.policy);
        v["rules"] = Value::Object(g.rules.clone());
    } else {
        v["policies"] = json!([g.policy]);
        v["metadata"] = json!({});
    }
    if mv.at_least(13) {
        v["project_id"] = json!(g.project_id);
        v["user_id"] = json!(g.user_id);
    }
    v
}

fn not_found(id: &str) -> NovaError {
    NovaError::not_found(format!("Instance group {id} could not be found."))
}

/// `GET /os-server-groups`.
pub async fn group_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, &["all_projects", "limit", "offset"])?;
    let all = auth.admin() && pairs.get("all_projects").is_some();
    let groups = sdb::groups(svc.store(), if all { None } else { Some(auth.project()) }).await?;
    let page = limited(&groups, &pairs)?;
    let live = live_members(&svc, &page).await?;
    let list: Vec<Value> = page.iter().map(|g| view(g, mv, &live)).collect();
    Ok(Json(json!({ "server_groups": list })))
}

/// `GET /os-server-groups/{id}`: 404 when unknown, 403 for another project's (non-admins).
pub async fn group_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let g = sdb::group_get(svc.store(), &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    auth.require_reader_of(&g.project_id, "os_compute_api:os-server-groups:show")?;
    let live = live_members(&svc, std::slice::from_ref(&g)).await?;
    Ok(Json(json!({"server_group": view(&g, mv, &live)})))
}

/// `DELETE /os-server-groups/{id}`: 204.
pub async fn group_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    let g = sdb::group_get(svc.store(), &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    auth.require_reader_of(&g.project_id, "os_compute_api:os-server-groups:delete")?;
    let id2 = id.clone();
    let gone = svc
        .store()
        .write(move |tx| {
            let id = id2.clone();
            Box::pin(async move { sdb::group_delete(tx, &id).await })
        })
        .await?;
    if !gone {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A parsed create body: `(name, policy, rules)`.
type Create = (String, String, Map<String, Value>);

fn parse_create(body: &Value, mv: Microversion) -> NovaResult<Create> {
    let m = schema::envelope(body, "server_group")?;
    let whole = &body["server_group"];
    let mut enum_: Vec<&str> = vec!["anti-affinity", "affinity"];
    if mv.at_least(15) {
        enum_.extend(["soft-anti-affinity", "soft-affinity"]);
    }
    let one_of = |v: &Value, field: &str| -> NovaResult<String> {
        match v.as_str() {
            Some(s) if enum_.contains(&s) => Ok(s.to_string()),
            _ if !v.is_string() => Err(fail(
                Some(field),
                v,
                format!("{} is not of type 'string'", repr(v)),
            )),
            _ => Err(fail(
                Some(field),
                v,
                format!(
                    "{} is not one of [{}]",
                    repr(v),
                    enum_
                        .iter()
                        .map(|e| format!("'{e}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    };
    if mv.at_least(64) {
        schema::only(m, &["name", "policy", "rules"], Some("server_group"), whole)?;
        let name = schema::name(
            schema::require(m, "name", Some("server_group"), whole)?,
            "name",
        )?;
        let policy = one_of(
            schema::require(m, "policy", Some("server_group"), whole)?,
            "policy",
        )?;
        let mut rules = Map::new();
        if let Some(r) = m.get("rules") {
            let o = schema::object(r, Some("rules"))?;
            schema::only(o, &["max_server_per_host"], Some("rules"), r)?;
            if let Some(v) = o.get("max_server_per_host") {
                let n = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
                        s.parse::<i64>().ok()
                    }
                    Value::String(_) => {
                        return Err(fail(
                            Some("max_server_per_host"),
                            v,
                            format!("{} does not match '^[0-9]*$'", repr(v)),
                        ))
                    }
                    _ => None,
                };
                let Some(n) = n else {
                    return Err(fail(
                        Some("max_server_per_host"),
                        v,
                        format!("{} is not of type 'integer', 'string'", repr(v)),
                    ));
                };
                if n < 1 {
                    return Err(fail(
                        Some("max_server_per_host"),
                        v,
                        format!("{n} is less than the minimum of 1"),
                    ));
                }
                rules.insert("max_server_per_host".into(), json!(n));
            }
        }
        if policy != "anti-affinity" && !rules.is_empty() {
            return Err(NovaError::bad_request(
                "Only anti-affinity policy supports rules.",
            ));
        }
        Ok((name.to_string(), policy, rules))
    } else {
        schema::only(m, &["name", "policies"], Some("server_group"), whole)?;
        let name = schema::name(
            schema::require(m, "name", Some("server_group"), whole)?,
            "name",
        )?;
        let p = schema::require(m, "policies", Some("server_group"), whole)?;
        let arr = p.as_array().ok_or_else(|| {
            fail(
                Some("policies"),
                p,
                format!("{} is not of type 'array'", repr(p)),
            )
        })?;
        if arr.is_empty() {
            return Err(fail(
                Some("policies"),
                p,
                format!("{} should be non-empty", repr(p)),
            ));
        }
        let policy = one_of(&arr[0], "0")?;
        if arr.len() > 1 {
            return Err(fail(
                Some("policies"),
                p,
                format!("{} is too long", repr(p)),
            ));
        }
        Ok((name.to_string(), policy, Map::new()))
    }
}

/// `POST /os-server-groups`: 200 with the group.
pub async fn group_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let (name, policy, rules) = parse_create(&body, mv)?;
    let g = Group {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: auth.project().to_string(),
        user_id: auth.user().to_string(),
        name,
        policy,
        rules,
        created_at: strata_core::time::now_micros(),
        members: Vec::new(),
    };
    let cfg = svc.config().clone();
    let g2 = g.clone();
    svc.store()
        .write_or_refuse(move |tx| {
            let (g, cfg) = (g2.clone(), cfg.clone());
            Box::pin(async move {
                let limit =
                    super::quotas::limit_tx(tx, &cfg, &g.project_id, &g.user_id, "server_groups")
                        .await?;
                let used = sdb::group_count(tx, &g.project_id).await?;
                if limit >= 0 && used + 1 > limit {
                    return Ok(Err(NovaError::over_quota(
                        "Quota exceeded, too many server groups.",
                    )));
                }
                sdb::group_insert(tx, &g).await?;
                Ok(Ok(()))
            })
        })
        .await??;
    Ok(Json(json!({"server_group": view(&g, mv, &HashSet::new())})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_per_version() {
        let b = json!({"server_group": {"name": "g", "policies": ["affinity"]}});
        assert_eq!(parse_create(&b, Microversion(1)).unwrap().1, "affinity");
        let b = json!({"server_group": {"name": "g", "policies": ["soft-affinity"]}});
        assert!(parse_create(&b, Microversion(14)).is_err());
        assert!(parse_create(&b, Microversion(15)).is_ok());
        let b = json!({"server_group": {"name": "g", "policies": ["affinity", "affinity"]}});
        assert!(parse_create(&b, Microversion(1)).is_err());
        let b = json!({"server_group": {"name": "g", "policy": "affinity",
            "rules": {"max_server_per_host": 2}}});
        assert_eq!(
            parse_create(&b, Microversion(64)).unwrap_err().message,
            "Only anti-affinity policy supports rules."
        );
        let b = json!({"server_group": {"name": "g", "policy": "anti-affinity",
            "rules": {"max_server_per_host": "2"}}});
        assert_eq!(
            parse_create(&b, Microversion(64)).unwrap().2["max_server_per_host"],
            2
        );
    }
}
