//! `/v2.0/security-groups` and `/v2.0/security-group-rules`: Neutron's groups with their rules,
//! the per-project `default` group made on first use (exactly once: `network_default_sg` is
//! keyed by project), rule validation as Neutron's (protocols by name or number, port ranges,
//! ICMP type/code, CIDRs normalised and matched to the ethertype), duplicates refused with the
//! existing rule's id, quotas checked inside the write.

use super::list;
use super::networks::{boolean, only, owner, standard, string};
use super::write;
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body, Pairs};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use strata_store::{from_sqlx, sqlx, Row, Tx};

pub const KIND: &str = "security_group";
pub const RULE: &str = "security_group_rule";

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/security-groups", get(sg_list).post(sg_create))
        .route(
            "/security-groups/{id}",
            get(sg_show).put(sg_update).delete(sg_delete),
        )
        .route("/security-group-rules", get(rule_list).post(rule_create))
        .route(
            "/security-group-rules/{id}",
            get(rule_show).delete(rule_delete),
        )
}

/// Attributes of the group view.
pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "tenant_id",
    "project_id",
    "security_group_rules",
    "stateful",
    "shared",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

/// Attributes of the rule view.
pub const RULE_ATTRS: &[&str] = &[
    "id",
    "tenant_id",
    "project_id",
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "normalized_cidr",
    "belongs_to_default_sg",
    "description",
    "created_at",
    "updated_at",
    "revision_number",
];

/// Neutron's protocol names (`IP_PROTOCOL_MAP` and the `icmpv6` alias).
const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("icmpv6", 58),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols whose port range is a range of ports.
const PORT_PROTOCOLS: &[u8] = &[6, 17, 33, 132, 136];

fn default_sg_description() -> &'static str {
    "Default security group"
}

// ------------------------------------------------------------------ the default group

/// The rule document of a new rule (validated).
#[allow(clippy::too_many_arguments)]
fn rule_doc(
    sg: &str,
    direction: &str,
    ethertype: &str,
    protocol: Option<String>,
    min: Option<i64>,
    max: Option<i64>,
    prefix: Option<String>,
    remote_group: Option<String>,
    description: &str,
    default_sg: bool,
) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("security_group_id".into(), json!(sg));
    d.insert("direction".into(), json!(direction));
    d.insert("ethertype".into(), json!(ethertype));
    d.insert("protocol".into(), json!(protocol));
    d.insert("port_range_min".into(), json!(min));
    d.insert("port_range_max".into(), json!(max));
    d.insert("normalized_cidr".into(), json!(prefix));
    d.insert("remote_ip_prefix".into(), json!(prefix));
    d.insert("remote_group_id".into(), json!(remote_group));
    d.insert("remote_address_group_id".into(), Value::Null);
    d.insert("belongs_to_default_sg".into(), json!(default_sg));
    d.insert("description".into(), json!(description));
    d
}

/// The group document of a new group.
fn group_doc(name: &str, description: &str, stateful: bool) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("name".into(), json!(name));
    d.insert("description".into(), json!(description));
    d.insert("stateful".into(), json!(stateful));
    d.insert("shared".into(), json!(false));
    d.insert("tags".into(), json!([]));
    d
}

/// The id of `project`'s `default` security group, created (with Neutron's default rules:
/// egress anywhere and ingress from the group itself, IPv4 and IPv6) when it does not exist
/// yet. Runs inside a write; `network_default_sg`'s key makes it exactly once per project.
pub async fn ensure_default(tx: &mut Tx, project_id: &str) -> strata_core::Result<String> {
    if let Some(id) = default_id_tx(tx, project_id).await? {
        return Ok(id);
    }
    let id = strata_core::ids::uuid();
    let n = sqlx::query(
        "INSERT INTO network_default_sg (project_id, security_group_id) VALUES ($1, $2) \
         ON CONFLICT (project_id) DO NOTHING",
    )
    .bind(project_id)
    .bind(&id)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?
    .rows_affected();
    if n == 0 {
        return Ok(default_id_tx(tx, project_id).await?.unwrap_or_default());
    }
    let sg = Resource::new(
        KIND,
        id.clone(),
        project_id.to_string(),
        group_doc("default", default_sg_description(), true),
    );
    db::insert(tx, &sg).await?;
    for (direction, ethertype) in [
        ("egress", "IPv4"),
        ("egress", "IPv6"),
        ("ingress", "IPv4"),
        ("ingress", "IPv6"),
    ] {
        let remote = (direction == "ingress").then(|| id.clone());
        let doc = rule_doc(
            &id, direction, ethertype, None, None, None, None, remote, "", true,
        );
        let r = Resource::new(RULE, strata_core::ids::uuid(), project_id.to_string(), doc);
        db::insert(tx, &r).await?;
    }
    Ok(id)
}

async fn default_id_tx(tx: &mut Tx, project_id: &str) -> strata_core::Result<Option<String>> {
    let r = sqlx::query("SELECT security_group_id FROM network_default_sg WHERE project_id = $1")
        .bind(project_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.map(|r| {
        r.try_get::<String, _>("security_group_id")
            .map_err(from_sqlx)
    })
    .transpose()
}

async fn has_default(svc: &NetworkService, project_id: &str) -> strata_core::Result<bool> {
    let r = sqlx::query("SELECT security_group_id FROM network_default_sg WHERE project_id = $1")
        .bind(project_id)
        .fetch_optional(svc.store().pool())
        .await
        .map_err(from_sqlx)?;
    Ok(r.is_some())
}

/// Makes the caller's project's default group when it has none yet.
async fn ensure_for(svc: &NetworkService, project: &str) -> NeutronResult<()> {
    if project.is_empty() || has_default(svc, project).await? {
        return Ok(());
    }
    let project = project.to_string();
    write(svc, move |tx| {
        let project = project.clone();
        Box::pin(async move {
            ensure_default(tx, &project).await?;
            Ok(Ok(()))
        })
    })
    .await
}

// ------------------------------------------------------------------ views

fn not_found(id: &str) -> NeutronError {
    NeutronError::new(
        StatusCode::NOT_FOUND,
        "SecurityGroupNotFound",
        format!("Security group {id} does not exist"),
    )
}

fn rule_not_found(id: &str) -> NeutronError {
    NeutronError::new(
        StatusCode::NOT_FOUND,
        "SecurityGroupRuleNotFound",
        format!("Security group rule {id} does not exist"),
    )
}

pub fn rule_view(r: &Resource) -> Value {
    let mut m = standard(r);
    m.remove("tags");
    Value::Object(m)
}

pub fn view(r: &Resource, rules: &[Resource]) -> Value {
    let mut m = standard(r);
    let mut rs: Vec<&Resource> = rules
        .iter()
        .filter(|x| x.str("security_group_id") == Some(r.id.as_str()))
        .collect();
    rs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    m.insert(
        "security_group_rules".into(),
        Value::Array(rs.into_iter().map(rule_view).collect()),
    );
    m.entry("stateful").or_insert(json!(true));
    m.entry("shared").or_insert(json!(false));
    Value::Object(m)
}

pub fn visible(auth: &Auth, r: &Resource) -> bool {
    auth.owns(&r.project_id)
}

/// The group `id` if the caller may see it; Neutron's 404 otherwise.
pub async fn find(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<Resource> {
    match db::get(svc.store(), KIND, id).await? {
        Some(r) if visible(auth, &r) => Ok(r),
        _ => Err(not_found(id)),
    }
}

// ------------------------------------------------------------------ groups

const CREATE_ATTRS: &[&str] = &[
    "name",
    "description",
    "tenant_id",
    "project_id",
    "stateful",
    "tags",
];

fn tags_of(m: &Map<String, Value>) -> NeutronResult<Value> {
    match m.get("tags") {
        None => Ok(json!([])),
        Some(Value::Array(t)) if t.iter().all(Value::is_string) => Ok(Value::Array(t.clone())),
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for tags. Reason: '{other}' is not a list of strings."
        ))),
    }
}

fn default_exists() -> NeutronError {
    NeutronError::conflict(
        "SecurityGroupDefaultAlreadyExists",
        "Default security group already exists.",
    )
}

fn build_group(auth: &Auth, m: &Map<String, Value>) -> NeutronResult<Resource> {
    only(m, CREATE_ATTRS)?;
    let project = owner(auth, m)?;
    let name = string(m, "name", 255)?.unwrap_or_default();
    if name == "default" {
        return Err(default_exists());
    }
    let description = string(m, "description", 255)?.unwrap_or_default();
    let stateful = boolean(m, "stateful")?.unwrap_or(true);
    let mut doc = group_doc(&name, &description, stateful);
    doc.insert("tags".into(), tags_of(m)?);
    Ok(Resource::new(KIND, strata_core::ids::uuid(), project, doc))
}

/// `POST /v2.0/security-groups`: 201 with the group and its egress rules (IPv4 and IPv6
/// anywhere); a bulk body creates all or none.
pub async fn sg_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_security_group"));
    }
    let (items, bulk) = body.entities("security_group", "security_groups")?;
    let mut built = Vec::with_capacity(items.len());
    for m in &items {
        built.push(build_group(&auth, m)?);
    }
    let cfg = svc.config().clone();
    let caller = auth.project().to_string();
    let created = write(&svc, move |tx| {
        let (built, cfg, caller) = (built.clone(), cfg.clone(), caller.clone());
        Box::pin(async move {
            if !caller.is_empty() {
                ensure_default(tx, &caller).await?;
            }
            let mut per_project: Vec<(String, i64)> = Vec::new();
            for r in &built {
                match per_project.iter_mut().find(|(p, _)| *p == r.project_id) {
                    Some((_, n)) => *n += 1,
                    None => per_project.push((r.project_id.clone(), 1)),
                }
            }
            for (p, _) in &per_project {
                if *p != caller {
                    ensure_default(tx, p).await?;
                }
            }
            for (p, n) in &per_project {
                if let Err(e) = crate::quota::check(tx, &cfg, p, KIND, *n).await? {
                    return Ok(Err(e));
                }
            }
            let mut out = Vec::with_capacity(built.len());
            for r in built {
                db::insert(tx, &r).await?;
                let mut rules = Vec::new();
                for ethertype in ["IPv4", "IPv6"] {
                    let doc = rule_doc(
                        &r.id, "egress", ethertype, None, None, None, None, None, "", false,
                    );
                    let rule =
                        Resource::new(RULE, strata_core::ids::uuid(), r.project_id.clone(), doc);
                    db::insert(tx, &rule).await?;
                    rules.push(rule);
                }
                out.push((r, rules));
            }
            Ok(Ok(out))
        })
    })
    .await?;
    let views: Vec<Value> = created.iter().map(|(r, rules)| view(r, rules)).collect();
    let body = if bulk {
        json!({ "security_groups": views })
    } else {
        json!({ "security_group": views[0] })
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v2.0/security-groups`: makes the caller's default group on first use.
pub async fn sg_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    ensure_for(&svc, auth.project()).await?;
    let groups = db::list(svc.store(), KIND, None).await?;
    let rules = db::list(svc.store(), RULE, None).await?;
    let views: Vec<Value> = groups
        .iter()
        .filter(|r| visible(&auth, r))
        .map(|r| view(r, &rules))
        .collect();
    let none = |_: &Value, _: &str, _: &[&str]| None;
    let views = list::filter(views, &q, ATTRS, &none)?;
    Ok(Json(list::respond(
        "security_groups",
        &super::collection_url(&svc, "security-groups"),
        views,
        &q,
        ATTRS,
    )?))
}

/// `GET /v2.0/security-groups/{id}`.
pub async fn sg_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    let rules = db::list(svc.store(), RULE, None).await?;
    Ok(Json(
        json!({"security_group": list::project(view(&r, &rules), &list::fields(&q))}),
    ))
}

/// `PUT /v2.0/security-groups/{id}`: name, description, stateful; the default group keeps
/// its name and no other group may take it.
pub async fn sg_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("update_security_group"));
    }
    let m = body.entity("security_group")?;
    for k in m.keys() {
        if matches!(
            k.as_str(),
            "id" | "tenant_id" | "project_id" | "security_group_rules"
        ) {
            return Err(NeutronError::bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
    }
    only(&m, &["name", "description", "stateful"])?;
    let mut changes = Map::new();
    if let Some(n) = string(&m, "name", 255)? {
        if r.str("name") == Some("default") && n != "default" {
            return Err(NeutronError::conflict(
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group not allowed.",
            ));
        }
        if n == "default" && r.str("name") != Some("default") {
            return Err(default_exists());
        }
        changes.insert("name".into(), json!(n));
    }
    if let Some(d) = string(&m, "description", 255)? {
        changes.insert("description".into(), json!(d));
    }
    if let Some(b) = boolean(&m, "stateful")? {
        changes.insert("stateful".into(), json!(b));
    }
    let id2 = id.clone();
    let updated = write(&svc, move |tx| {
        let (id, changes) = (id2.clone(), changes.clone());
        Box::pin(async move {
            let Some(mut r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(not_found(&id)));
            };
            if changes.contains_key("stateful")
                && changes.get("stateful") != r.doc.get("stateful")
                && in_use(tx, &id).await?
            {
                return Ok(Err(in_use_error(&id)));
            }
            for (k, v) in changes {
                r.doc.insert(k, v);
            }
            db::save(tx, &mut r).await?;
            Ok(Ok(r))
        })
    })
    .await?;
    let rules = db::list(svc.store(), RULE, None).await?;
    Ok(Json(json!({"security_group": view(&updated, &rules)})))
}

async fn in_use(tx: &mut Tx, id: &str) -> strata_core::Result<bool> {
    Ok(db::list_tx(tx, "port", None).await?.iter().any(|p| {
        p.doc
            .get("security_groups")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(id)))
    }))
}

fn in_use_error(id: &str) -> NeutronError {
    NeutronError::conflict("SecurityGroupInUse", format!("Security Group {id} in use."))
}

/// `DELETE /v2.0/security-groups/{id}`: 204 with its rules and the rules that name it as
/// their remote group; 409 while a port uses it, or for the default group (but for admins).
pub async fn sg_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("delete_security_group"));
    }
    if r.str("name") == Some("default") && !auth.admin() {
        return Err(NeutronError::conflict(
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        ));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(not_found(&id)));
            };
            if in_use(tx, &id).await? {
                return Ok(Err(in_use_error(&id)));
            }
            for rule in db::list_tx(tx, RULE, None).await? {
                if rule.str("security_group_id") == Some(id.as_str())
                    || rule.str("remote_group_id") == Some(id.as_str())
                {
                    db::delete(tx, RULE, &rule.id).await?;
                }
            }
            sqlx::query(
                "DELETE FROM network_default_sg WHERE project_id = $1 AND security_group_id = $2",
            )
            .bind(&r.project_id)
            .bind(&id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
            db::delete(tx, KIND, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ rules

const RULE_CREATE_ATTRS: &[&str] = &[
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "tenant_id",
    "project_id",
];

/// A protocol as Neutron converts it: a known name (case-insensitive) or a number 0–255,
/// kept as given (names lowercased, numbers as strings); with its number.
fn protocol(v: Option<&Value>) -> NeutronResult<Option<(String, u8)>> {
    let invalid = |p: &str| {
        let names: Vec<&str> = PROTOCOLS.iter().map(|(n, _)| *n).collect();
        NeutronError::new(
            StatusCode::BAD_REQUEST,
            "SecurityGroupRuleInvalidProtocol",
            format!(
                "Security group rule protocol {p} not supported. Only protocol values [{}] and \
                 integer representations [0 to 255] are supported.",
                names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(x) if x <= 255 => Ok(Some((x.to_string(), x as u8))),
            _ => Err(invalid(&n.to_string())),
        },
        Some(Value::String(s)) => {
            if s.is_empty() || s.eq_ignore_ascii_case("any") {
                return Ok(None);
            }
            let lower = s.to_ascii_lowercase();
            if let Some((name, num)) = PROTOCOLS.iter().find(|(n, _)| *n == lower) {
                return Ok(Some((name.to_string(), *num)));
            }
            match s.parse::<u64>() {
                Ok(x) if x <= 255 => Ok(Some((x.to_string(), x as u8))),
                _ => Err(invalid(s)),
            }
        }
        Some(other) => Err(invalid(&other.to_string())),
    }
}

/// A port value: an integer 0–65535 (Neutron's `convert_validate_port_value`).
fn port(m: &Map<String, Value>, key: &str) -> NeutronResult<Option<i64>> {
    let bad = |v: &dyn std::fmt::Display| {
        NeutronError::new(
            StatusCode::BAD_REQUEST,
            "SecurityGroupInvalidPortValue",
            format!("Invalid value for port {v}"),
        )
    };
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(x) if (0..=65535).contains(&x) => Ok(Some(x)),
            _ => Err(bad(n)),
        },
        Some(Value::String(s)) => match s.parse::<i64>() {
            Ok(x) if (0..=65535).contains(&x) => Ok(Some(x)),
            _ => Err(bad(s)),
        },
        Some(other) => Err(bad(other)),
    }
}

/// A CIDR (or a bare address, as a host route) normalised to its network address.
pub fn normalize_cidr(s: &str) -> Option<(String, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u32 = match len {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => l.parse().ok()?,
        Some(_) => return None,
        None => max,
    };
    if len > max {
        return None;
    }
    let net = match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::from(std::net::Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::from(std::net::Ipv6Addr::from(bits & mask))
        }
    };
    Some((format!("{net}/{len}"), if ip.is_ipv4() { 4 } else { 6 }))
}

/// A validated rule and the group/remote group it names (still to check inside the write).
fn build_rule(auth: &Auth, m: &Map<String, Value>) -> NeutronResult<Resource> {
    only(m, RULE_CREATE_ATTRS)?;
    let project = owner(auth, m)?;
    let sg = match m.get("security_group_id") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(NeutronError::bad_request(
                "Failed to parse request. Required attribute 'security_group_id' not specified",
            ))
        }
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for security_group_id. Reason: '{other}' is not a valid string."
            )))
        }
    };
    let direction = match m.get("direction") {
        Some(Value::String(d)) if d == "ingress" || d == "egress" => d.clone(),
        None => {
            return Err(NeutronError::bad_request(
                "Failed to parse request. Required attribute 'direction' not specified",
            ))
        }
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for direction. Reason: {other} is not in valid_values."
            )))
        }
    };
    let ethertype = match m.get("ethertype") {
        None | Some(Value::Null) => "IPv4".to_string(),
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv4") => "IPv4".to_string(),
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv6") => "IPv6".to_string(),
        Some(other) => {
            let shown = other
                .as_str()
                .map(str::to_string)
                .unwrap_or(other.to_string());
            return Err(NeutronError::new(
                StatusCode::BAD_REQUEST,
                "SecurityGroupRuleInvalidEtherType",
                format!(
                    "Security group rule for ethertype '{shown}' not supported. Allowed values \
                     are ['IPv4', 'IPv6']."
                ),
            ));
        }
    };
    let proto = protocol(m.get("protocol"))?;
    let mut min = port(m, "port_range_min")?;
    let mut max = port(m, "port_range_max")?;
    let description = string(m, "description", 255)?.unwrap_or_default();
    if let Some(Value::String(_)) = m.get("remote_address_group_id") {
        return Err(NeutronError::bad_request(
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    let remote_group = match m.get("remote_group_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for remote_group_id. Reason: '{other}' is not a valid string."
            )))
        }
    };
    let prefix = match m.get("remote_ip_prefix") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            let Some((cidr, version)) = normalize_cidr(p) else {
                return Err(NeutronError::bad_request(format!(
                    "Invalid input for remote_ip_prefix. Reason: '{p}' is not a valid IP subnet."
                )));
            };
            if (version == 4) != (ethertype == "IPv4") {
                return Err(NeutronError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupRuleParameterConflict",
                    format!("Conflicting value ethertype {ethertype} for CIDR {p}"),
                ));
            }
            Some(cidr)
        }
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for remote_ip_prefix. Reason: '{other}' is not a valid IP subnet."
            )))
        }
    };
    if prefix.is_some() && remote_group.is_some() {
        return Err(NeutronError::new(
            StatusCode::BAD_REQUEST,
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    match &proto {
        None => {
            if min.is_some() || max.is_some() {
                return Err(NeutronError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupProtocolRequiredWithPorts",
                    "Must also specify protocol if port range is given.",
                ));
            }
        }
        Some((name, num)) if PORT_PROTOCOLS.contains(num) => {
            let _ = name;
            if min == Some(0) || max == Some(0) {
                return Err(NeutronError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupInvalidPortValue",
                    "Invalid value for port 0",
                ));
            }
            match (min, max) {
                (Some(a), Some(b)) if a <= b => {}
                (None, None) => {}
                _ => {
                    return Err(NeutronError::new(
                        StatusCode::BAD_REQUEST,
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ))
                }
            }
        }
        Some((name, num)) if *num == 1 || *num == 58 => {
            // Only IPv6 protocols conflict (with IPv4); Neutron accepts `icmp` on IPv6 rules.
            if *num == 58 && ethertype == "IPv4" {
                return Err(NeutronError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupEthertypeConflictWithProtocol",
                    format!("Invalid ethertype {ethertype} for protocol {name}."),
                ));
            }
            for (field, attr, v) in [
                ("type", "port_range_min", min),
                ("code", "port_range_max", max),
            ] {
                if let Some(v) = v {
                    if v > 255 {
                        return Err(NeutronError::new(
                            StatusCode::BAD_REQUEST,
                            "SecurityGroupInvalidIcmpValue",
                            format!(
                                "Invalid value for ICMP {field} ({attr}): {v}. It must be 0 to 255."
                            ),
                        ));
                    }
                }
            }
            if min.is_none() && max.is_some() {
                return Err(NeutronError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupMissingIcmpType",
                    format!(
                        "ICMP code (port-range-max) {} is provided but ICMP type (port-range-min) \
                         is missing.",
                        max.unwrap_or_default()
                    ),
                ));
            }
        }
        Some((name, _)) => {
            if min.is_some() || max.is_some() {
                return Err(NeutronError::new(
                    StatusCode::BAD_REQUEST,
                    "SecurityGroupInvalidProtoForPortRange",
                    format!(
                        "Invalid protocol {name} for port range, only supported for TCP, UDP, \
                         UDPLITE, SCTP and DCCP."
                    ),
                ));
            }
            min = None;
            max = None;
        }
    }
    let doc = rule_doc(
        &sg,
        &direction,
        &ethertype,
        proto.map(|p| p.0),
        min,
        max,
        prefix,
        remote_group,
        &description,
        false,
    );
    Ok(Resource::new(RULE, strata_core::ids::uuid(), project, doc))
}

/// The protocol number of a stored rule (None for any).
fn proto_num(r: &Resource) -> Option<u8> {
    protocol(r.doc.get("protocol")).ok().flatten().map(|p| p.1)
}

/// Whether two rules are the same rule as Neutron compares them.
fn same_rule(a: &Resource, b: &Resource) -> bool {
    [
        "security_group_id",
        "direction",
        "ethertype",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
    ]
    .iter()
    .all(|k| a.doc.get(*k).unwrap_or(&Value::Null) == b.doc.get(*k).unwrap_or(&Value::Null))
        && proto_num(a) == proto_num(b)
}

fn rule_visible(auth: &Auth, rule: &Resource, groups: &[Resource]) -> bool {
    auth.owns(&rule.project_id)
        || groups.iter().any(|g| {
            Some(g.id.as_str()) == rule.str("security_group_id") && auth.owns(&g.project_id)
        })
}

/// `POST /v2.0/security-group-rules`: 201; a bulk body creates all or none.
pub async fn rule_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_security_group_rule"));
    }
    let (items, bulk) = body.entities("security_group_rule", "security_group_rules")?;
    let mut built = Vec::with_capacity(items.len());
    for m in &items {
        built.push(build_rule(&auth, m)?);
    }
    // The group (and remote group) must be the caller's (or any, for admins).
    for r in &built {
        let sg = r.str("security_group_id").unwrap_or_default();
        let g = find(&svc, &auth, sg).await?;
        if !auth.admin() && g.project_id != r.project_id {
            return Err(NeutronError::policy("create_security_group_rule"));
        }
        if let Some(rg) = r.str("remote_group_id") {
            find(&svc, &auth, rg).await?;
        }
    }
    let cfg = svc.config().clone();
    let created = write(&svc, move |tx| {
        let (built, cfg) = (built.clone(), cfg.clone());
        Box::pin(async move {
            let mut per_project: Vec<(String, i64)> = Vec::new();
            for r in &built {
                match per_project.iter_mut().find(|(p, _)| *p == r.project_id) {
                    Some((_, n)) => *n += 1,
                    None => per_project.push((r.project_id.clone(), 1)),
                }
            }
            for (p, n) in &per_project {
                if let Err(e) = crate::quota::check(tx, &cfg, p, RULE, *n).await? {
                    return Ok(Err(e));
                }
            }
            let mut existing = db::list_tx(tx, RULE, None).await?;
            let mut out = Vec::with_capacity(built.len());
            for mut r in built {
                let sg = r.str("security_group_id").unwrap_or_default().to_string();
                let Some(group) = db::get_tx(tx, KIND, &sg).await? else {
                    return Ok(Err(not_found(&sg)));
                };
                if let Some(rg) = r.str("remote_group_id") {
                    if db::get_tx(tx, KIND, rg).await?.is_none() {
                        return Ok(Err(not_found(rg)));
                    }
                }
                if let Some(dup) = existing.iter().find(|e| same_rule(e, &r)) {
                    return Ok(Err(NeutronError::conflict(
                        "SecurityGroupRuleExists",
                        format!("Security group rule already exists. Rule id is {}.", dup.id),
                    )));
                }
                let is_default = default_id_tx(tx, &group.project_id).await?.as_deref()
                    == Some(group.id.as_str());
                r.doc
                    .insert("belongs_to_default_sg".into(), json!(is_default));
                db::insert(tx, &r).await?;
                let mut g = group;
                db::save(tx, &mut g).await?;
                existing.push(r.clone());
                out.push(r);
            }
            Ok(Ok(out))
        })
    })
    .await?;
    let views: Vec<Value> = created.iter().map(rule_view).collect();
    let body = if bulk {
        json!({ "security_group_rules": views })
    } else {
        json!({ "security_group_rule": views[0] })
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v2.0/security-group-rules`.
pub async fn rule_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let groups = db::list(svc.store(), KIND, None).await?;
    let rules = db::list(svc.store(), RULE, None).await?;
    let views: Vec<Value> = rules
        .iter()
        .filter(|r| rule_visible(&auth, r, &groups))
        .map(rule_view)
        .collect();
    let none = |_: &Value, _: &str, _: &[&str]| None;
    let views = list::filter(views, &q, RULE_ATTRS, &none)?;
    Ok(Json(list::respond(
        "security_group_rules",
        &super::collection_url(&svc, "security-group-rules"),
        views,
        &q,
        RULE_ATTRS,
    )?))
}

async fn find_rule(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<Resource> {
    let Some(r) = db::get(svc.store(), RULE, id).await? else {
        return Err(rule_not_found(id));
    };
    let groups: Vec<Resource> = match r.str("security_group_id") {
        Some(sg) => db::get(svc.store(), KIND, sg).await?.into_iter().collect(),
        None => Vec::new(),
    };
    if rule_visible(auth, &r, &groups) {
        Ok(r)
    } else {
        Err(rule_not_found(id))
    }
}

/// `GET /v2.0/security-group-rules/{id}`.
pub async fn rule_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let r = find_rule(&svc, &auth, &id).await?;
    Ok(Json(
        json!({"security_group_rule": list::project(rule_view(&r), &list::fields(&q))}),
    ))
}

/// `DELETE /v2.0/security-group-rules/{id}`: 204.
pub async fn rule_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    find_rule(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("delete_security_group_rule"));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(r) = db::get_tx(tx, RULE, &id).await? else {
                return Ok(Err(rule_not_found(&id)));
            };
            db::delete(tx, RULE, &id).await?;
            if let Some(sg) = r.str("security_group_id") {
                if let Some(mut g) = db::get_tx(tx, KIND, sg).await? {
                    db::save(tx, &mut g).await?;
                }
            }
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_normalise() {
        assert_eq!(normalize_cidr("10.0.0.1/24").unwrap().0, "10.0.0.0/24");
        assert_eq!(normalize_cidr("10.0.0.1").unwrap().0, "10.0.0.1/32");
        assert_eq!(
            normalize_cidr("2001:db8::1/64").unwrap(),
            ("2001:db8::/64".into(), 6)
        );
        assert_eq!(normalize_cidr("0.0.0.0/0").unwrap().0, "0.0.0.0/0");
        for bad in [
            "192.168.1./24",
            "192.168.1.1/33",
            "bad_prefix",
            "256",
            "1.2.3.4/",
        ] {
            assert!(normalize_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn protocols_by_name_or_number() {
        assert_eq!(
            protocol(Some(&json!("TCP"))).unwrap(),
            Some(("tcp".into(), 6))
        );
        assert_eq!(protocol(Some(&json!(17))).unwrap(), Some(("17".into(), 17)));
        assert_eq!(
            protocol(Some(&json!("58"))).unwrap(),
            Some(("58".into(), 58))
        );
        assert!(protocol(Some(&json!("bad"))).is_err());
        assert!(protocol(Some(&json!(256))).is_err());
        assert_eq!(protocol(None).unwrap(), None);
    }
}
