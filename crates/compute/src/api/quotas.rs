//! Quotas and limits: `os-quota-sets` (show, `/defaults`, `/detail`, update, delete; per
//! project or per user with `user_id`), `os-quota-class-sets` (the `default` class feeds every
//! project's defaults) and `/limits`.
//!
//! A limit resolves as Nova's `DbQuotaDriver` resolves it: the user's override, else the
//! project's, else the `default` quota class's, else the configured default. Which resources
//! appear depends on the microversion (network ones go at 2.36, personality ones at 2.57;
//! quota classes swap network ones for server groups at 2.50).
//!
//! Usage: `instances`, `cores` and `ram` count the project's (or user's) live servers,
//! `server_groups` its groups; `key_pairs` counts the user's keypairs (Nova's key_pairs quota is
//! per user).

use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::model::{quota_class_resources, quota_set_resources, QUOTA_RESOURCES};
use crate::schema::{self, fail, repr, MAX_INT};
use crate::version::Microversion;
use crate::{db, ComputeConfig, ComputeService};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use strata_store::{from_sqlx, sqlx, Row, Tx};

/// The quota and limit routes.
pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route(
            "/os-quota-sets/{project_id}",
            get(quota_set_show)
                .put(quota_set_update)
                .delete(quota_set_delete),
        )
        .route(
            "/os-quota-sets/{project_id}/defaults",
            get(quota_set_defaults),
        )
        .route("/os-quota-sets/{project_id}/detail", get(quota_set_detail))
        .route(
            "/os-quota-class-sets/{id}",
            get(quota_class_show).put(quota_class_update),
        )
        .route("/limits", get(limits_show))
}

type Limits = BTreeMap<&'static str, i64>;

fn overlay(base: &mut Limits, rows: &[(String, i64)]) {
    for (res, limit) in rows {
        if let Some(slot) = QUOTA_RESOURCES
            .iter()
            .find(|r| **r == res.as_str())
            .and_then(|r| base.get_mut(r))
        {
            *slot = *limit;
        }
    }
}

fn configured(cfg: &ComputeConfig) -> Limits {
    QUOTA_RESOURCES
        .iter()
        .map(|r| (*r, cfg.quota_default(r).unwrap_or(-1)))
        .collect()
}

/// The limits of a quota class: its own, else the `default` class's, else configured.
async fn class_limits(svc: &ComputeService, class: &str) -> NovaResult<Limits> {
    let mut l = configured(svc.config());
    overlay(&mut l, &db::quota_class(svc.store(), "default").await?);
    if class != "default" {
        overlay(&mut l, &db::quota_class(svc.store(), class).await?);
    }
    Ok(l)
}

/// The limits that apply to a project (`user` `None`) or to one of its users.
async fn limits_of(svc: &ComputeService, project: &str, user: Option<&str>) -> NovaResult<Limits> {
    let mut l = class_limits(svc, "default").await?;
    overlay(
        &mut l,
        &db::quota_overrides(svc.store(), project, "").await?,
    );
    if let Some(u) = user {
        overlay(&mut l, &db::quota_overrides(svc.store(), project, u).await?);
    }
    Ok(l)
}

/// One resource's limit for a user of a project (for checks no write has to hold, such as
/// `createImage`'s image metadata).
pub async fn limit(
    svc: &ComputeService,
    project: &str,
    user: &str,
    resource: &str,
) -> NovaResult<i64> {
    Ok(limits_of(svc, project, Some(user))
        .await?
        .get(resource)
        .copied()
        .unwrap_or(-1))
}

/// One resource's limit for a user of a project, read inside a write (for checks that must
/// hold when the write lands).
pub async fn limit_tx(
    tx: &mut Tx,
    cfg: &ComputeConfig,
    project: &str,
    user: &str,
    resource: &str,
) -> strata_core::Result<i64> {
    let l = limits_tx(tx, cfg, project, user).await?;
    Ok(l.get(resource).copied().unwrap_or(-1))
}

/// Every limit of `user` in `project` (read inside the transaction that consumes them).
pub async fn limits_tx(
    tx: &mut Tx,
    cfg: &ComputeConfig,
    project: &str,
    user: &str,
) -> strata_core::Result<Limits> {
    let mut l = configured(cfg);
    overlay(&mut l, &db::quota_class_tx(tx, "default").await?);
    overlay(&mut l, &db::quota_overrides_tx(tx, project, "").await?);
    overlay(&mut l, &db::quota_overrides_tx(tx, project, user).await?);
    Ok(l)
}

/// What a project (or one user in it) holds: its live servers' count, cores and RAM, its
/// server groups, and (for a user) the user's keypairs.
async fn usage_of(svc: &ComputeService, project: &str, user: Option<&str>) -> NovaResult<Limits> {
    let mut u: Limits = QUOTA_RESOURCES.iter().map(|r| (*r, 0)).collect();
    let (n, c, r) = server_usage(svc, project, user).await?;
    u.insert("instances", n);
    u.insert("cores", c);
    u.insert("ram", r);
    u.insert("server_groups", group_usage(svc, project, user).await?);
    if let Some(user) = user {
        u.insert("key_pairs", db::keypair_count(svc.store(), user).await?);
    }
    Ok(u)
}

/// `(instances, cores, ram)` of the live servers of a project (or one user of it).
async fn server_usage(
    svc: &ComputeService,
    project: &str,
    user: Option<&str>,
) -> NovaResult<(i64, i64, i64)> {
    let base = "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, \
                CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r FROM compute_server \
                WHERE project_id = $1 AND deleted = 0";
    let sql = match user {
        Some(_) => format!("{base} AND user_id = $2"),
        None => base.to_string(),
    };
    let mut q = sqlx::query(&sql).bind(project);
    if let Some(u) = user {
        q = q.bind(u);
    }
    let row = q.fetch_one(svc.store().pool()).await.map_err(from_sqlx)?;
    let g = |c: &str| row.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok((g("n")?, g("c")?, g("r")?))
}

/// The server groups of a project (or of one user of it).
async fn group_usage(svc: &ComputeService, project: &str, user: Option<&str>) -> NovaResult<i64> {
    let base = "SELECT COUNT(*) AS n FROM compute_server_group WHERE project_id = $1";
    let sql = match user {
        Some(_) => format!("{base} AND user_id = $2"),
        None => base.to_string(),
    };
    let mut q = sqlx::query(&sql).bind(project);
    if let Some(u) = user {
        q = q.bind(u);
    }
    let row = q.fetch_one(svc.store().pool()).await.map_err(from_sqlx)?;
    Ok(row.try_get::<i64, _>("n").map_err(from_sqlx)?)
}

fn shown(l: &Limits, resources: &[&str]) -> Map<String, Value> {
    resources
        .iter()
        .map(|r| (r.to_string(), json!(l.get(r).copied().unwrap_or(-1))))
        .collect()
}

/// `GET /os-quota-sets/{project_id}`.
pub async fn quota_set_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(project): Path<String>,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, &["user_id"])?;
    auth.require_reader_of(&project, "os_compute_api:os-quota-sets:show")?;
    let l = limits_of(&svc, &project, pairs.get("user_id")).await?;
    let mut m = shown(&l, &quota_set_resources(mv.0));
    m.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": m})))
}

/// `GET /os-quota-sets/{project_id}/detail`: limit, in_use, reserved per resource.
pub async fn quota_set_detail(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(project): Path<String>,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, &["user_id"])?;
    auth.require_reader_of(&project, "os_compute_api:os-quota-sets:detail")?;
    let user = pairs.get("user_id");
    let l = limits_of(&svc, &project, user).await?;
    let used = usage_of(&svc, &project, user).await?;
    let mut m = Map::new();
    for r in quota_set_resources(mv.0) {
        m.insert(
            r.to_string(),
            json!({"limit": l.get(r).copied().unwrap_or(-1),
                   "in_use": used.get(r).copied().unwrap_or(0), "reserved": 0}),
        );
    }
    m.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": m})))
}

/// `GET /os-quota-sets/{project_id}/defaults`: any caller.
pub async fn quota_set_defaults(
    State(svc): State<ComputeService>,
    _auth: Auth,
    Mv(mv): Mv,
    Path(project): Path<String>,
) -> NovaResult<Json<Value>> {
    let l = class_limits(&svc, "default").await?;
    let mut m = shown(&l, &quota_set_resources(mv.0));
    m.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": m})))
}

/// A quota value: an integer (or a string of one) from -1 to `MAX_INT`.
fn quota_value(v: &Value, field: &str) -> NovaResult<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            fail(
                Some(field),
                v,
                format!("{} is not of type 'integer', 'string'", repr(v)),
            )
        })?,
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(
                    Some(field),
                    v,
                    format!("{} does not match '^-?[0-9]+$'", repr(v)),
                ));
            }
            s.parse::<i64>()
                .map_err(|_| NovaError::invalid_input(format!("{field} must be <= {MAX_INT}")))?
        }
        _ => {
            return Err(fail(
                Some(field),
                v,
                format!("{} is not of type 'integer', 'string'", repr(v)),
            ))
        }
    };
    if n < -1 {
        return Err(fail(
            Some(field),
            v,
            format!("{n} is less than the minimum of -1"),
        ));
    }
    if n > MAX_INT {
        return Err(fail(
            Some(field),
            v,
            format!("{n} is greater than the maximum of {MAX_INT}"),
        ));
    }
    Ok(n)
}

/// Limits a body sets, and the body's object (for keys like `force`).
type ParsedLimits = (Vec<(String, i64)>, Map<String, Value>);

/// Checks `{"<key>": {resource: value, …}}` against the resources of this microversion.
fn parse_limits(
    body: &Value,
    key: &str,
    resources: &[&str],
    extra: &[&str],
) -> NovaResult<ParsedLimits> {
    let m = schema::envelope(body, key)?;
    let mut allowed: Vec<&str> = resources.to_vec();
    allowed.extend_from_slice(extra);
    schema::only(m, &allowed, Some(key), &body[key])?;
    let mut out = Vec::new();
    for (k, v) in m {
        if extra.contains(&k.as_str()) {
            continue;
        }
        out.push((k.clone(), quota_value(v, k)?));
    }
    Ok((out, m.clone()))
}

fn inf(n: i64) -> f64 {
    if n < 0 {
        f64::INFINITY
    } else {
        n as f64
    }
}

/// `PUT /os-quota-sets/{project_id}` (admin): sets limits; without `force`, a limit below
/// what is in use (or, for a user, above the project's) is refused.
pub async fn quota_set_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(project): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let resources = quota_set_resources(mv.0);
    let (values, raw) = parse_limits(&body, "quota_set", &resources, &["force"])?;
    let force = match raw.get("force") {
        None => false,
        Some(v) => schema::boolean(v, "force")?,
    };
    pairs.only(mv, &["user_id"])?;
    auth.require_admin("os_compute_api:os-quota-sets:update")?;
    let user = pairs.get("user_id").map(str::to_string);
    if !force {
        let used = usage_of(&svc, &project, user.as_deref()).await?;
        let project_limits = limits_of(&svc, &project, None).await?;
        for (res, limit) in &values {
            let minimum = used.get(res.as_str()).copied().unwrap_or(0);
            if inf(*limit) < inf(minimum) {
                return Err(NovaError::bad_request(format!(
                    "Quota limit {limit} for {res} must be greater than or equal to already used \
                     and reserved {minimum}."
                )));
            }
            if user.is_some() {
                let maximum = project_limits.get(res.as_str()).copied().unwrap_or(-1);
                if inf(*limit) > inf(maximum) {
                    return Err(NovaError::bad_request(format!(
                        "Quota limit {limit} for {res} must be less than or equal to {maximum}."
                    )));
                }
            }
        }
    }
    let (p2, u2, v2) = (project.clone(), user.clone(), values.clone());
    svc.store()
        .write(move |tx| {
            let (p, u, v) = (p2.clone(), u2.clone(), v2.clone());
            Box::pin(async move {
                for (res, limit) in &v {
                    db::set_quota(tx, &p, u.as_deref().unwrap_or(""), res, *limit).await?;
                }
                Ok(())
            })
        })
        .await?;
    let l = limits_of(&svc, &project, user.as_deref()).await?;
    Ok(Json(json!({"quota_set": shown(&l, &resources)})))
}

/// `DELETE /os-quota-sets/{project_id}` (admin): back to the defaults, 202.
pub async fn quota_set_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
    Path(project): Path<String>,
) -> NovaResult<StatusCode> {
    pairs.only(mv, &["user_id"])?;
    auth.require_admin("os_compute_api:os-quota-sets:delete")?;
    let user = pairs.get("user_id").map(str::to_string);
    svc.store()
        .write(move |tx| {
            let (p, u) = (project.clone(), user.clone());
            Box::pin(async move { db::delete_quotas(tx, &p, u.as_deref()).await })
        })
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /os-quota-class-sets/{id}` (admin).
pub async fn quota_class_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    auth.require_admin("os_compute_api:os-quota-class-sets:show")?;
    let l = class_limits(&svc, &id).await?;
    let mut m = shown(&l, &quota_class_resources(mv.0));
    m.insert("id".into(), json!(id));
    Ok(Json(json!({"quota_class_set": m})))
}

/// `PUT /os-quota-class-sets/{id}` (admin).
pub async fn quota_class_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let resources = quota_class_resources(mv.0);
    let (values, _) = parse_limits(&body, "quota_class_set", &resources, &[])?;
    auth.require_admin("os_compute_api:os-quota-class-sets:update")?;
    if id.is_empty() || id.chars().count() > 255 {
        return Err(NovaError::invalid_input(
            "quota_class_name must be between 1 and 255 characters",
        ));
    }
    let (c2, v2) = (id.clone(), values.clone());
    svc.store()
        .write(move |tx| {
            let (c, v) = (c2.clone(), v2.clone());
            Box::pin(async move {
                for (res, limit) in &v {
                    db::set_quota_class(tx, &c, res, *limit).await?;
                }
                Ok(())
            })
        })
        .await?;
    let l = class_limits(&svc, &id).await?;
    Ok(Json(json!({"quota_class_set": shown(&l, &resources)})))
}

/// `GET /limits`: the project's absolute limits and usage (`tenant_id` names a project, admins
/// only); `rate` is always empty.
pub async fn limits_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    pairs: Pairs,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, &["tenant_id", "reserved"])?;
    // Naming any project, even one's own, needs the admin-only `other_project` rule.
    let project = match pairs.get("tenant_id") {
        Some(t) => {
            auth.require_admin("os_compute_api:limits:other_project")?;
            t.to_string()
        }
        None => auth.project().to_string(),
    };
    let l = limits_of(&svc, &project, None).await?;
    let used = usage_of(&svc, &project, None).await?;
    Ok(Json(
        json!({"limits": {"rate": [], "absolute": absolute(&l, &used, mv)}}),
    ))
}

/// Nova's absolute limits view for a microversion.
fn absolute(l: &Limits, used: &Limits, mv: Microversion) -> Map<String, Value> {
    let max: &[(&str, &str)] = &[
        ("ram", "maxTotalRAMSize"),
        ("instances", "maxTotalInstances"),
        ("cores", "maxTotalCores"),
        ("key_pairs", "maxTotalKeypairs"),
        ("floating_ips", "maxTotalFloatingIps"),
        ("metadata_items", "maxServerMeta"),
        ("metadata_items", "maxImageMeta"),
        ("injected_files", "maxPersonality"),
        ("injected_file_content_bytes", "maxPersonalitySize"),
        ("security_groups", "maxSecurityGroups"),
        ("security_group_rules", "maxSecurityGroupRules"),
        ("server_groups", "maxServerGroups"),
        ("server_group_members", "maxServerGroupMembers"),
    ];
    let usage: &[(&str, &str)] = &[
        ("ram", "totalRAMUsed"),
        ("cores", "totalCoresUsed"),
        ("instances", "totalInstancesUsed"),
        ("floating_ips", "totalFloatingIpsUsed"),
        ("security_groups", "totalSecurityGroupsUsed"),
        ("server_groups", "totalServerGroupsUsed"),
    ];
    let network = [
        "maxTotalFloatingIps",
        "maxSecurityGroups",
        "maxSecurityGroupRules",
        "totalFloatingIpsUsed",
        "totalSecurityGroupsUsed",
    ];
    let keep = |name: &str| {
        !(mv.at_least(36) && network.contains(&name)
            || mv.at_least(39) && name == "maxImageMeta"
            || mv.at_least(57) && (name == "maxPersonality" || name == "maxPersonalitySize"))
    };
    let mut out = Map::new();
    for (res, name) in max {
        if keep(name) {
            out.insert(name.to_string(), json!(l.get(res).copied().unwrap_or(-1)));
        }
    }
    for (res, name) in usage {
        if keep(name) {
            out.insert(name.to_string(), json!(used.get(res).copied().unwrap_or(0)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_limits_per_version() {
        let l: Limits = QUOTA_RESOURCES.iter().map(|r| (*r, 7)).collect();
        let u: Limits = QUOTA_RESOURCES.iter().map(|r| (*r, 0)).collect();
        let a = absolute(&l, &u, Microversion(1));
        for k in [
            "maxTotalFloatingIps",
            "maxImageMeta",
            "maxPersonality",
            "totalFloatingIpsUsed",
        ] {
            assert!(a.contains_key(k), "{k}");
        }
        let a = absolute(&l, &u, Microversion(36));
        assert!(!a.contains_key("maxTotalFloatingIps"));
        assert!(a.contains_key("maxImageMeta"));
        let a = absolute(&l, &u, Microversion(57));
        assert!(!a.contains_key("maxImageMeta"));
        assert!(!a.contains_key("maxPersonality"));
        assert_eq!(a["maxTotalKeypairs"], 7);
        assert_eq!(a["totalServerGroupsUsed"], 0);
    }

    #[test]
    fn quota_values() {
        assert_eq!(quota_value(&json!(5), "cores").unwrap(), 5);
        assert_eq!(quota_value(&json!("-1"), "cores").unwrap(), -1);
        assert!(quota_value(&json!(-2), "cores").is_err());
        assert!(quota_value(&json!("x"), "cores").is_err());
        assert!(quota_value(&json!(true), "cores").is_err());
        assert!(quota_value(&json!(1.5), "cores").is_err());
    }
}
