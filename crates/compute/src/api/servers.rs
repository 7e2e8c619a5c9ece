//! Servers: create, list, detail, show, update and delete, and the pieces other server routes
//! share (finding a server the caller may see, the lock check, the wire views per
//! microversion, writes that re-read the server inside the transaction).
//!
//! Create validates what Nova's API validates before answering 202 (flavor, image, networks,
//! ports, security groups, key pair, zone, metadata, quotas), then records the servers in
//! BUILD/scheduling in one store write that also counts the project's instances, cores and RAM
//! against its quota; the lifecycle controller takes them from there.

use super::views::nova_time;
use super::{next_link, page_limit, Links};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv, Pairs};
use crate::hosts::{self, Service};
use crate::schema::{self, fail, repr};
use crate::server::{self, power, task, vm, FlavorCopy, NetRequest, Server};
use crate::server_db as sdb;
use crate::version::Microversion;
use crate::{db, ComputeService};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use strata_agent_api::Power;
use strata_api::RequestId;
use strata_core::time::{iso_seconds_z, now_micros, parse_iso};

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/servers", get(server_list).post(server_create))
        .route("/servers/detail", get(server_list_detail))
        .route(
            "/servers/{id}",
            get(server_show).put(server_update).delete(server_delete),
        )
}

// ------------------------------------------------------------------ shared pieces

/// Nova's `InstanceNotFound`.
pub fn not_found(id: &str) -> NovaError {
    NovaError::not_found(format!("Instance {id} could not be found."))
}

/// The live server `id` if the caller may see it (404 otherwise, other projects' included).
pub async fn find(svc: &ComputeService, auth: &Auth, id: &str) -> NovaResult<Server> {
    match sdb::get(svc.store(), id).await? {
        Some(s) if !s.deleted && (auth.admin() || s.project_id == auth.project()) => Ok(s),
        _ => Err(not_found(id)),
    }
}

/// Nova's `check_instance_lock`: a locked server refuses changes from non-admins.
pub fn check_lock(auth: &Auth, s: &Server) -> NovaResult<()> {
    if s.locked && !auth.admin() {
        return Err(NovaError::conflict(format!("Instance {} is locked", s.id)));
    }
    Ok(())
}

/// Nova's `InstanceInvalidState` for an action.
pub fn invalid_state(s: &Server, attr: &str, action: &str) -> NovaError {
    let state = match attr {
        "task_state" => s.task_state.clone().unwrap_or_else(|| "None".into()),
        _ => s.vm_state.clone(),
    };
    NovaError::conflict(format!(
        "Cannot '{action}' instance {} while it is in {attr} {state}",
        s.id
    ))
}

/// Changes a server inside one store write: `f` sees the server as it is when the write lands
/// and may refuse. Returns the server as written.
pub async fn mutate<F>(svc: &ComputeService, id: &str, f: F) -> NovaResult<Server>
where
    F: Fn(&mut Server) -> NovaResult<()> + Send + Sync + Clone + 'static,
{
    mutate_with(svc, id, None, f).await
}

/// [`mutate`], also starting an instance action `(request id, action, user, first event)`.
pub async fn mutate_with<F>(
    svc: &ComputeService,
    id: &str,
    action: Option<(String, String, String, String)>,
    f: F,
) -> NovaResult<Server>
where
    F: Fn(&mut Server) -> NovaResult<()> + Send + Sync + Clone + 'static,
{
    let id = id.to_string();
    let out = svc
        .store()
        .write_or_refuse(move |tx| {
            let (id, f, action) = (id.clone(), f.clone(), action.clone());
            Box::pin(async move {
                let Some(old) = sdb::get_tx(tx, &id).await? else {
                    return Ok(Err(not_found(&id)));
                };
                if old.deleted {
                    return Ok(Err(not_found(&id)));
                }
                let mut n = old.clone();
                if let Err(e) = f(&mut n) {
                    return Ok(Err(e));
                }
                if let Some((rid, act, user, event)) = &action {
                    sdb::action_start(tx, &n, rid, act, user, event).await?;
                }
                if n != old {
                    sdb::save(tx, &old, &mut n).await?;
                }
                Ok(Ok(n))
            })
        })
        .await?;
    out
}

/// How much of a server a response shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `GET /servers`: id, name, links.
    Brief,
    /// Update and rebuild answers below 2.75: the core fields.
    Core,
    /// Show and detail (and update/rebuild from 2.75).
    Full,
}

/// What the views need beyond the server.
pub struct ViewCtx<'a> {
    pub admin: bool,
    /// Microseconds without a heartbeat after which a host is down.
    pub down_after_us: i64,
    pub mv: Microversion,
    pub links: &'a Links,
    /// Compute services by host.
    pub services: Arc<HashMap<String, Service>>,
    pub groups: HashMap<String, Vec<String>>,
}

impl<'a> ViewCtx<'a> {
    pub async fn new(
        svc: &ComputeService,
        auth: &Auth,
        mv: Microversion,
        links: &'a Links,
    ) -> NovaResult<ViewCtx<'a>> {
        Ok(ViewCtx {
            admin: auth.admin(),
            down_after_us: svc.config().service_down_time_s.max(1) * 1_000_000,
            mv,
            links,
            // Only admins see `host_status` (2.16): others do not pay for reading every host.
            services: Arc::new(if auth.admin() && mv.at_least(16) {
                hosts::services(svc.store())
                    .await?
                    .into_iter()
                    .filter(|s| s.binary == "nova-compute")
                    .map(|s| (s.host.clone(), s))
                    .collect()
            } else {
                HashMap::new()
            }),
            groups: HashMap::new(),
        })
    }

    fn host_status(&self, host: Option<&str>) -> &'static str {
        let Some(h) = host else { return "" };
        let now = now_micros();
        match self.services.get(h) {
            None => "UNKNOWN",
            Some(s) if s.forced_down => "DOWN",
            Some(s) if s.last_seen_up.is_none() => "UNKNOWN",
            Some(s) if !s.is_up_within(now, self.down_after_us) => "DOWN",
            Some(s) if s.disabled => "MAINTENANCE",
            Some(_) => "UP",
        }
    }
}

fn addresses(s: &Server, full: bool) -> Value {
    let mut out: Map<String, Value> = Map::new();
    for p in &s.ports {
        let list = out
            .entry(p.network_name.clone())
            .or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            for (ip, v) in &p.ips {
                let mut e = json!({"version": v, "addr": ip});
                if full {
                    e["OS-EXT-IPS:type"] = json!("fixed");
                    e["OS-EXT-IPS-MAC:mac_addr"] = json!(p.mac);
                }
                a.push(e);
            }
        }
    }
    Value::Object(out)
}

fn progress_shown(status: &str) -> bool {
    matches!(
        status,
        "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING"
    )
}

/// A server as Nova's view builder shows it at the request's microversion.
pub fn view(s: &Server, cx: &ViewCtx, shape: Shape) -> Value {
    let mv = cx.mv;
    let links = cx.links.pair("servers", &s.id);
    if shape == Shape::Brief {
        return json!({"id": s.id, "name": s.name, "links": links});
    }
    let shape = if shape == Shape::Core && mv.at_least(75) {
        Shape::Full
    } else {
        shape
    };
    let full = shape == Shape::Full;
    let status = s.status();
    let image = if s.image_ref.is_empty() {
        json!("")
    } else {
        json!({"id": s.image_ref, "links": [{"rel": "bookmark",
            "href": format!("{}/images/{}", cx.links.bookmark_base, s.image_ref)}]})
    };
    let flavor = if mv.at_least(47) {
        let mut f = json!({
            "vcpus": s.flavor.vcpus, "ram": s.flavor.memory_mb, "disk": s.flavor.root_gb,
            "ephemeral": s.flavor.ephemeral_gb, "swap": s.flavor.swap,
            "original_name": s.flavor.name,
        });
        f["extra_specs"] = json!(s.flavor.extra_specs);
        f
    } else {
        json!({"id": s.flavor.id, "links": [{"rel": "bookmark",
            "href": format!("{}/flavors/{}", cx.links.bookmark_base, s.flavor.id)}]})
    };
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": status,
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": s.metadata,
        "hostId": server::host_id(&s.project_id, s.host.as_deref()),
        "image": image,
        "flavor": flavor,
        "created": iso_seconds_z(s.created_at),
        "updated": iso_seconds_z(s.updated_at),
        "addresses": addresses(s, full),
        "accessIPv4": s.access_ip_v4,
        "accessIPv6": s.access_ip_v6,
        "links": links,
        "OS-DCF:diskConfig": s.disk_config,
    });
    if progress_shown(status) {
        v["progress"] = json!(s.progress);
    }
    if let Some(f) = &s.fault {
        if matches!(status, "ERROR" | "DELETED") {
            let mut fv = json!({"code": f.code, "created": iso_seconds_z(f.created),
                "message": f.message});
            if cx.admin || f.code != 500 {
                fv["details"] = json!(f.details);
            }
            v["fault"] = fv;
        }
    }
    if mv.at_least(9) {
        v["locked"] = json!(s.locked);
    }
    if mv.at_least(19) {
        v["description"] = json!(s.description);
    }
    if mv.at_least(26) {
        v["tags"] = json!(s.tags);
    }
    if mv.at_least(63) {
        v["trusted_image_certificates"] = Value::Null;
    }
    if mv.at_least(73) && (full || mv.at_least(73)) {
        v["locked_reason"] = json!(s.locked_reason);
    }
    if mv.at_least(96) {
        v["pinned_availability_zone"] = json!(s.requested_zone);
    }
    if !full {
        if mv.at_least(71) {
            v["server_groups"] = json!(cx.groups.get(&s.id).cloned().unwrap_or_default());
        }
        return v;
    }
    v["key_name"] = json!(s.key_name);
    v["config_drive"] = json!(if s.config_drive { "True" } else { "" });
    v["OS-EXT-AZ:availability_zone"] = json!(s.availability_zone.clone().unwrap_or_default());
    v["OS-SRV-USG:launched_at"] = json!(s.launched_at.map(nova_time));
    v["OS-SRV-USG:terminated_at"] = json!(s.terminated_at.map(nova_time));
    v["OS-EXT-STS:task_state"] = json!(s.task_state);
    v["OS-EXT-STS:vm_state"] = json!(s.vm_state);
    v["OS-EXT-STS:power_state"] = json!(s.power_state);
    v["os-extended-volumes:volumes_attached"] = super::server_volumes::volumes_attached(s, mv);
    if !s.ports.is_empty() {
        let mut names: Vec<String> = Vec::new();
        // What the ports have now: none after the last group was removed.
        let groups = if s.security_groups_removed {
            Vec::new()
        } else {
            s.security_group_names()
        };
        for n in &groups {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        // None left (all removed): no key, as Nova shows it.
        if !names.is_empty() {
            v["security_groups"] =
                json!(names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
        }
    }
    if cx.admin {
        v["OS-EXT-SRV-ATTR:host"] = json!(s.host);
        v["OS-EXT-SRV-ATTR:instance_name"] = json!(s.instance_name());
        v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(s.node);
        if mv.at_least(3) {
            v["OS-EXT-SRV-ATTR:reservation_id"] = json!(s.reservation_id);
            v["OS-EXT-SRV-ATTR:launch_index"] = json!(s.launch_index);
            v["OS-EXT-SRV-ATTR:hostname"] = json!(s.hostname);
            v["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
            v["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
            v["OS-EXT-SRV-ATTR:root_device_name"] = json!("/dev/vda");
            v["OS-EXT-SRV-ATTR:user_data"] = json!(s.user_data);
        }
    } else if mv.at_least(90) {
        v["OS-EXT-SRV-ATTR:hostname"] = json!(s.hostname);
    }
    if mv.at_least(16) && cx.admin {
        v["host_status"] = json!(cx.host_status(s.host.as_deref()));
    }
    if mv.at_least(71) && shape == Shape::Full {
        if let Some(g) = cx.groups.get(&s.id) {
            v["server_groups"] = json!(g);
        }
    }
    v
}

/// The server view with `server_groups` (2.71) looked up.
pub async fn view_one(
    svc: &ComputeService,
    s: &Server,
    cx: &mut ViewCtx<'_>,
    shape: Shape,
) -> NovaResult<Value> {
    if cx.mv.at_least(71) {
        let g = sdb::groups_of_server(svc.store(), &s.id).await?;
        cx.groups.insert(s.id.clone(), g);
    }
    Ok(view(s, cx, shape))
}

impl Server {
    /// The names of the security groups of the server's created ports.
    pub fn security_group_names(&self) -> Vec<String> {
        if self.security_group_names.is_empty() {
            vec!["default".into()]
        } else {
            self.security_group_names.clone()
        }
    }
}

// ------------------------------------------------------------------ create

fn uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// The id at the end of a reference that may be a URL (`imageRef`, `flavorRef`).
pub(crate) fn last_segment(s: &str) -> &str {
    s.trim_end_matches('/').rsplit('/').next().unwrap_or(s)
}

/// Nova's hostname from a display name (`utils.sanitize_hostname`).
pub fn sanitize_hostname(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if c == ' ' || c == '_' {
            out.push('-');
        }
    }
    let trimmed: String = out
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(63)
        .collect();
    let trimmed = trimmed.trim_end_matches(['-', '.']).to_string();
    if trimmed.is_empty() {
        "server".into()
    } else {
        trimmed
    }
}

fn valid_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

fn valid_ipv6(s: &str) -> bool {
    s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// An IPv6 address in RFC 5952's canonical form (as Nova stores `accessIPv6`).
fn canonical_ipv6(s: &str) -> String {
    s.parse::<std::net::Ipv6Addr>()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// Metadata as `parameter_types.metadata` allows it: keys 1..=255 characters, string values
/// up to 255.
pub fn metadata(v: &Value, field: &str) -> NovaResult<BTreeMap<String, String>> {
    let m = schema::object(v, Some(field))?;
    let mut out = BTreeMap::new();
    for (k, val) in m {
        let kl = k.chars().count();
        if kl == 0 || kl > 255 {
            return Err(fail(
                Some(field),
                v,
                format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let s = val.as_str().ok_or_else(|| {
            fail(
                Some(k),
                val,
                format!("{} is not of type 'string'", repr(val)),
            )
        })?;
        if s.chars().count() > 255 {
            return Err(fail(Some(k), val, format!("{} is too long", repr(val))));
        }
        out.insert(k.clone(), s.to_string());
    }
    Ok(out)
}

/// A parsed create request.
struct Create {
    name: String,
    image_ref: String,
    flavor_ref: String,
    admin_pass: Option<String>,
    metadata: BTreeMap<String, String>,
    networks: Option<Value>,
    disk_config: String,
    access_ip_v4: String,
    access_ip_v6: String,
    availability_zone: Option<String>,
    key_name: Option<String>,
    min_count: i64,
    max_count: i64,
    return_reservation_id: bool,
    security_groups: Vec<String>,
    user_data: Option<String>,
    config_drive: bool,
    description: Option<String>,
    tags: Vec<String>,
    hostname: Option<String>,
    hints: Map<String, Value>,
    bdm_boot_volume: bool,
    /// The volume block device mappings asked for.
    bdms: Vec<crate::server::Bdm>,
    /// `block_device_mapping_v2` was given (then a missing `imageRef` is no error by itself).
    bdm_given: bool,
}

fn count_param(v: &Value, field: &str) -> NovaResult<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(n),
        Some(n) => Err(fail(
            Some(field),
            v,
            format!("{n} is less than the minimum of 1"),
        )),
        None => Err(fail(
            Some(field),
            v,
            format!("{} is not of type 'integer', 'string'", repr(v)),
        )),
    }
}

const CREATE_KEYS: &[&str] = &[
    "name",
    "imageRef",
    "flavorRef",
    "adminPass",
    "metadata",
    "networks",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "personality",
    "availability_zone",
    "block_device_mapping",
    "block_device_mapping_v2",
    "config_drive",
    "key_name",
    "min_count",
    "max_count",
    "return_reservation_id",
    "security_groups",
    "user_data",
    "description",
    "tags",
    "trusted_image_certificates",
    "host",
    "hypervisor_hostname",
    "hostname",
];

fn parse_create(body: &Value, mv: Microversion) -> NovaResult<Create> {
    let top = schema::object(body, None)?;
    schema::require(top, "server", None, body)?;
    schema::only(
        top,
        &["server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"],
        None,
        body,
    )?;
    let m = schema::object(&top["server"], Some("server"))?;
    let whole = &top["server"];
    schema::only(m, CREATE_KEYS, Some("server"), whole)?;
    let name = schema::name(schema::require(m, "name", Some("server"), whole)?, "name")?;
    let flavor_v = schema::require(m, "flavorRef", Some("server"), whole)?;
    let flavor_ref = match flavor_v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) if n.is_i64() => n.to_string(),
        Value::String(_) => {
            return Err(fail(
                Some("flavorRef"),
                flavor_v,
                format!("{} is too short", repr(flavor_v)),
            ))
        }
        other => {
            return Err(fail(
                Some("flavorRef"),
                other,
                format!("{} is not of type 'string', 'integer'", repr(other)),
            ))
        }
    };
    let image_ref = match m.get("imageRef") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(fail(
                Some("imageRef"),
                other,
                format!("{} is not of type 'string'", repr(other)),
            ))
        }
    };
    let str_field = |k: &str, max: usize| -> NovaResult<Option<String>> {
        match m.get(k) {
            None => Ok(None),
            Some(v) => Ok(Some(schema::string(v, k, 0, max)?.to_string())),
        }
    };
    let admin_pass = str_field("adminPass", 255)?;
    let md = match m.get("metadata") {
        Some(v) => metadata(v, "metadata")?,
        None => BTreeMap::new(),
    };
    let disk_config = match m.get("OS-DCF:diskConfig") {
        None => "MANUAL".to_string(),
        Some(Value::String(s)) if s == "AUTO" || s == "MANUAL" => s.clone(),
        Some(v) => {
            return Err(fail(
                Some("OS-DCF:diskConfig"),
                v,
                format!("{} is not one of ['AUTO', 'MANUAL']", repr(v)),
            ))
        }
    };
    let access_ip_v4 = match m.get("accessIPv4") {
        None => String::new(),
        Some(v) => {
            let s = v.as_str().unwrap_or("");
            if !v.is_string() || !valid_ipv4(s) {
                return Err(fail(
                    Some("accessIPv4"),
                    v,
                    format!("{} is not a 'ipv4'", repr(v)),
                ));
            }
            s.to_string()
        }
    };
    let access_ip_v6 = match m.get("accessIPv6") {
        None => String::new(),
        Some(v) => {
            let s = v.as_str().unwrap_or("");
            if !v.is_string() || !valid_ipv6(s) {
                return Err(fail(
                    Some("accessIPv6"),
                    v,
                    format!("{} is not a 'ipv6'", repr(v)),
                ));
            }
            canonical_ipv6(s)
        }
    };
    if m.contains_key("personality") && mv.at_least(57) {
        return Err(fail(
            Some("server"),
            whole,
            "Additional properties are not allowed ('personality' was unexpected)",
        ));
    }
    let availability_zone = match m.get("availability_zone") {
        None => None,
        Some(v) => Some(schema::string(v, "availability_zone", 1, 255)?.to_string()),
    };
    let key_name = match m.get("key_name") {
        None | Some(Value::Null) => None,
        Some(v) => Some(schema::string(v, "key_name", 1, 255)?.to_string()),
    };
    let min_count = match m.get("min_count") {
        Some(v) => count_param(v, "min_count")?,
        None => 1,
    };
    let max_count = match m.get("max_count") {
        Some(v) => count_param(v, "max_count")?,
        None => min_count,
    };
    if min_count > max_count {
        return Err(NovaError::bad_request("min_count must be <= max_count"));
    }
    let return_reservation_id = match m.get("return_reservation_id") {
        Some(v) => schema::boolean(v, "return_reservation_id")?,
        None => false,
    };
    let mut security_groups = Vec::new();
    if let Some(v) = m.get("security_groups") {
        let arr = v.as_array().ok_or_else(|| {
            fail(
                Some("security_groups"),
                v,
                format!("{} is not of type 'array'", repr(v)),
            )
        })?;
        for item in arr {
            let o = schema::object(item, Some("security_groups"))?;
            schema::only(o, &["name"], Some("security_groups"), item)?;
            if let Some(n) = o.get("name") {
                let n = schema::string(n, "name", 1, 255)?;
                if !security_groups.iter().any(|x: &String| x == n) {
                    security_groups.push(n.to_string());
                }
            }
        }
    }
    let user_data = match m.get("user_data") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = schema::string(v, "user_data", 0, 65535)?;
            if base64::engine::general_purpose::STANDARD
                .decode(s.trim().as_bytes())
                .is_err()
            {
                return Err(NovaError::bad_request(
                    "User data needs to be valid base 64.",
                ));
            }
            Some(s.to_string())
        }
    };
    let config_drive = match m.get("config_drive") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => schema::bool_from_string(s).unwrap_or(!s.is_empty()),
        Some(v) => {
            return Err(fail(
                Some("config_drive"),
                v,
                format!("{} is not of type 'boolean', 'string', 'null'", repr(v)),
            ))
        }
    };
    let description = match m.get("description") {
        _ if !mv.at_least(19) && m.contains_key("description") => {
            return Err(fail(
                Some("server"),
                whole,
                "Additional properties are not allowed ('description' was unexpected)",
            ))
        }
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = schema::string(v, "description", 0, 255)?;
            if !schema::valid_description(s) {
                return Err(fail(
                    Some("description"),
                    v,
                    format!("{} does not match the description pattern", repr(v)),
                ));
            }
            Some(s.to_string())
        }
    };
    let mut tags = Vec::new();
    if let Some(v) = m.get("tags") {
        if !mv.at_least(52) {
            return Err(fail(
                Some("server"),
                whole,
                "Additional properties are not allowed ('tags' was unexpected)",
            ));
        }
        tags = super::server_tags::tag_list(v, "tags")?;
    }
    let hostname = match m.get("hostname") {
        None => None,
        Some(_) if !mv.at_least(90) => {
            return Err(fail(
                Some("server"),
                whole,
                "Additional properties are not allowed ('hostname' was unexpected)",
            ))
        }
        Some(v) => Some(schema::string(v, "hostname", 1, 255)?.to_string()),
    };
    let networks = m.get("networks").cloned();
    if mv.at_least(37) && networks.is_none() {
        return Err(fail(
            Some("server"),
            whole,
            "'networks' is a required property",
        ));
    }
    let hints = top
        .get("os:scheduler_hints")
        .or_else(|| top.get("OS-SCH-HNT:scheduler_hints"))
        .map(|v| schema::object(v, Some("os:scheduler_hints")).cloned())
        .transpose()?
        .unwrap_or_default();
    let (mut bdm_boot_volume, mut bdms, mut bdm_given) = (false, Vec::new(), false);
    if let Some(v) = m.get("block_device_mapping_v2") {
        if m.contains_key("block_device_mapping") {
            return Err(NovaError::bad_request(
                "Using different block_device_mapping syntaxes is not allowed in the same \
                 request.",
            ));
        }
        let r = super::server_volumes::parse_bdm_v2(v, mv, !image_ref.is_empty())?;
        bdm_boot_volume = r.boot_volume;
        bdms = r.bdms;
        bdm_given = v.as_array().is_some_and(|a| !a.is_empty());
    }
    Ok(Create {
        name: name.to_string(),
        image_ref,
        flavor_ref,
        admin_pass,
        metadata: md,
        networks,
        disk_config,
        access_ip_v4,
        access_ip_v6,
        availability_zone,
        key_name,
        min_count,
        max_count,
        return_reservation_id,
        security_groups,
        user_data,
        config_drive,
        description,
        tags,
        hostname,
        hints,
        bdm_boot_volume,
        bdms,
        bdm_given,
    })
}

/// The networks a server gets when it names none (or `auto`): the one network the project
/// can use (its own or shared, not external). Several is Nova's `NetworkAmbiguous` (409).
async fn auto_network(
    svc: &ComputeService,
    ctx: Arc<strata_api::AuthContext>,
    project: &str,
    required: bool,
) -> NovaResult<Vec<NetRequest>> {
    let Some(a) = svc.neutron(ctx, Method::GET, "/networks", None).await else {
        return Ok(Vec::new());
    };
    let nets: Vec<Value> = a.body["networks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            !n["router:external"].as_bool().unwrap_or(false)
                && (n["project_id"].as_str() == Some(project)
                    || n["shared"].as_bool() == Some(true))
        })
        .collect();
    match nets.len() {
        0 if required => Err(NovaError::bad_request(format!(
            "Unable to automatically allocate a network for project {project}"
        ))),
        0 => Ok(Vec::new()),
        1 => Ok(vec![NetRequest {
            network_id: nets[0]["id"].as_str().map(String::from),
            ..Default::default()
        }]),
        _ => Err(NovaError::conflict(
            "Multiple possible networks found, use a Network ID to be more specific.",
        )),
    }
}

/// The requested NICs, checked against the network service as the caller.
async fn requested_networks(
    svc: &ComputeService,
    auth: &Auth,
    mv: Microversion,
    networks: &Option<Value>,
) -> NovaResult<Vec<NetRequest>> {
    let ctx = auth.0.clone();
    let project = auth.project().to_string();
    let list = match networks {
        None => return auto_network(svc, ctx, &project, false).await,
        Some(Value::String(s)) if mv.at_least(37) && s == "none" => return Ok(Vec::new()),
        Some(Value::String(s)) if mv.at_least(37) && s == "auto" => {
            return auto_network(svc, ctx, &project, true).await
        }
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(fail(
                Some("networks"),
                v,
                format!("{} is not of type 'array'", repr(v)),
            ))
        }
    };
    let mut out = Vec::new();
    for item in list {
        let o = schema::object(item, Some("networks"))?;
        let allowed: &[&str] = if mv.at_least(32) {
            &["fixed_ip", "port", "uuid", "tag"]
        } else {
            &["fixed_ip", "port", "uuid"]
        };
        schema::only(o, allowed, Some("networks"), item)?;
        let port = match o.get("port") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if uuid_like(p) => Some(p.clone()),
            Some(v) => {
                return Err(fail(
                    Some("port"),
                    v,
                    format!("{} is not a 'uuid'", repr(v)),
                ))
            }
        };
        let fixed_ip = match o.get("fixed_ip") {
            None => None,
            Some(Value::String(s)) if valid_ipv4(s) || valid_ipv6(s) => Some(s.clone()),
            Some(v) => {
                return Err(fail(
                    Some("fixed_ip"),
                    v,
                    format!("{} is not a 'ip-address'", repr(v)),
                ))
            }
        };
        let uuid = match o.get("uuid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                return Err(fail(
                    Some("uuid"),
                    v,
                    format!("{} is not of type 'string'", repr(v)),
                ))
            }
        };
        let tag = o.get("tag").and_then(|v| v.as_str()).map(String::from);
        if let Some(p) = &port {
            let a = svc
                .neutron(ctx.clone(), Method::GET, &format!("/ports/{p}"), None)
                .await;
            let Some(a) = a.filter(|a| a.ok()) else {
                return Err(NovaError::bad_request(format!(
                    "Port id {p} could not be found."
                )));
            };
            if a.body["port"]["device_id"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
            {
                return Err(NovaError::conflict(format!("Port {p} is still in use.")));
            }
            out.push(NetRequest {
                network_id: a.body["port"]["network_id"].as_str().map(String::from),
                port_id: Some(p.clone()),
                fixed_ip: None,
                tag,
            });
            continue;
        }
        let Some(net) = uuid else {
            return Err(NovaError::bad_request("Bad network format: missing 'uuid'"));
        };
        if !uuid_like(&net) {
            return Err(NovaError::bad_request(format!(
                "Bad networks format: network uuid is not in proper format ({net})"
            )));
        }
        let a = svc
            .neutron(ctx.clone(), Method::GET, &format!("/networks/{net}"), None)
            .await;
        if !a.as_ref().is_some_and(|a| a.ok()) {
            return Err(NovaError::bad_request(format!(
                "Network {net} could not be found."
            )));
        }
        out.push(NetRequest {
            network_id: Some(net),
            port_id: None,
            fixed_ip,
            tag,
        });
    }
    Ok(out)
}

/// Security group names (or ids) → `(ids, names)`, as the caller sees them.
async fn security_groups(
    svc: &ComputeService,
    auth: &Auth,
    wanted: &[String],
) -> NovaResult<(Vec<String>, Vec<String>)> {
    if wanted.is_empty() || svc.0.peers.network.is_none() {
        return Ok((Vec::new(), wanted.to_vec()));
    }
    let a = svc
        .neutron(
            auth.0.clone(),
            Method::GET,
            &format!("/security-groups?project_id={}", auth.project()),
            None,
        )
        .await;
    let groups = a
        .map(|a| {
            a.body["security_groups"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let (mut ids, mut names) = (Vec::new(), Vec::new());
    for w in wanted {
        let found: Vec<&Value> = groups
            .iter()
            .filter(|g| g["name"].as_str() == Some(w) || g["id"].as_str() == Some(w))
            .collect();
        match found.len() {
            0 => {
                return Err(NovaError::bad_request(format!(
                    "Security group {w} not found."
                )))
            }
            1 => {
                ids.push(found[0]["id"].as_str().unwrap_or_default().to_string());
                names.push(found[0]["name"].as_str().unwrap_or(w).to_string());
            }
            _ => {
                return Err(NovaError::conflict(format!(
                    "Multiple security_group matches found for name '{w}', use an ID to be \
                     more specific."
                )))
            }
        }
    }
    Ok((ids, names))
}

/// What create learns of the image.
struct ImageInfo {
    properties: BTreeMap<String, String>,
}

async fn check_image(
    svc: &ComputeService,
    auth: &Auth,
    image: &str,
    flavor: &crate::model::Flavor,
) -> NovaResult<ImageInfo> {
    if !uuid_like(image) {
        return Err(NovaError::bad_request("Invalid imageRef provided."));
    }
    let Some(a) = svc
        .glance(
            auth.0.clone(),
            Method::GET,
            &format!("/images/{image}"),
            None,
        )
        .await
    else {
        return Ok(ImageInfo {
            properties: BTreeMap::new(),
        });
    };
    if !a.ok() {
        return Err(NovaError::bad_request(format!(
            "Image {image} could not be found."
        )));
    }
    let img = a.body;
    if img["status"].as_str() != Some("active") {
        return Err(NovaError::bad_request(format!(
            "Image {image} is not active."
        )));
    }
    let min_ram = img["min_ram"].as_i64().unwrap_or(0);
    if flavor.memory_mb < min_ram {
        return Err(NovaError::bad_request(
            "Flavor's memory is too small for requested image.",
        ));
    }
    if flavor.root_gb > 0 {
        let size = img["size"].as_i64().unwrap_or(0);
        let disk = flavor.root_gb << 30;
        if size > disk {
            return Err(NovaError::bad_request(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, \
                 image is {size} bytes."
            )));
        }
        if img["min_disk"].as_i64().unwrap_or(0) > flavor.root_gb {
            return Err(NovaError::bad_request(
                "Flavor's disk is too small for requested image.",
            ));
        }
    }
    Ok(ImageInfo {
        properties: image_properties(&img),
    })
}

/// The image's own properties (not Glance's core attributes) with string values: what the
/// scheduler's image filters read (`hw_*`, `img_*`, `os_*`, `trait:*`, …).
pub fn image_properties(img: &Value) -> BTreeMap<String, String> {
    const CORE: &[&str] = &[
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "owner",
        "size",
        "virtual_size",
        "min_ram",
        "min_disk",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
        "os_hidden",
    ];
    let mut out = BTreeMap::new();
    if let Some(o) = img.as_object() {
        for (k, v) in o {
            if let (false, Some(v)) = (CORE.contains(&k.as_str()), v.as_str()) {
                out.insert(k.clone(), v.to_string());
            }
        }
    }
    out
}

pub fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Nova's quota refusal: `Quota exceeded for cores, ram: Requested 2, 1024, but already used
/// 19, 0 of 20, 51200 cores, ram` (403).
pub(crate) fn over_quota(overs: &[(&str, i64, i64, i64)]) -> NovaError {
    let names: Vec<&str> = overs.iter().map(|o| o.0).collect();
    let join = |f: fn(&(&str, i64, i64, i64)) -> i64| {
        overs
            .iter()
            .map(|o| f(o).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    NovaError::over_quota(format!(
        "Quota exceeded for {}: Requested {}, but already used {} of {} {}",
        names.join(", "),
        join(|o| o.1),
        join(|o| o.2),
        join(|o| o.3),
        names.join(", ")
    ))
}

/// `POST /servers`: 202 with the new server's id, links and `adminPass` (or the reservation
/// id); the lifecycle controller builds it.
pub async fn server_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    rid: Option<Extension<RequestId>>,
    Body(body): Body,
) -> NovaResult<Response> {
    let c = parse_create(&body, mv)?;
    let project = auth.project().to_string();
    let user = auth.user().to_string();
    // Flavor.
    let flavor_id = last_segment(&c.flavor_ref).to_string();
    let flavor = match db::get_flavor(svc.store(), &flavor_id).await? {
        Some(f) if !f.disabled || auth.admin() => f,
        _ => {
            return Err(NovaError::bad_request(format!(
                "Flavor {flavor_id} could not be found."
            )))
        }
    };
    if !flavor.is_public && !auth.admin() {
        let access = db::flavor_access(svc.store(), &flavor.id).await?;
        if !access.contains(&project) {
            return Err(NovaError::bad_request(format!(
                "Flavor {flavor_id} could not be found."
            )));
        }
    }
    // Image.
    let image_ref = last_segment(&c.image_ref).to_string();
    if image_ref.is_empty() && !c.bdm_boot_volume && !c.bdm_given {
        return Err(NovaError::bad_request("Missing imageRef attribute"));
    }
    // Volume mappings (checked against the volume and image services).
    let mut bdms = c.bdms.clone();
    let root_properties =
        super::server_volumes::check_bdms(&svc, &auth, &mut bdms, c.max_count, &flavor).await?;
    let image = if image_ref.is_empty() {
        ImageInfo {
            properties: root_properties.unwrap_or_default(),
        }
    } else {
        check_image(&svc, &auth, &image_ref, &flavor).await?
    };
    // Key pair.
    let key_data = match &c.key_name {
        Some(k) => match db::get_keypair(svc.store(), &user, k).await? {
            Some(kp) => Some(kp.public_key),
            None => return Err(NovaError::bad_request("Invalid key_name provided.")),
        },
        None => None,
    };
    // Zone.
    if let Some(z) = &c.availability_zone {
        let (zone, host) = z.split_once(':').unwrap_or((z.as_str(), ""));
        if !host.is_empty() {
            auth.require_admin("os_compute_api:servers:create:forced_host")?;
        }
        let zones: Vec<String> = std::iter::once(svc.config().availability_zone.clone())
            .chain(
                hosts::services(svc.store())
                    .await?
                    .into_iter()
                    .map(|s| s.zone),
            )
            .collect();
        if !zone.is_empty() && !zones.iter().any(|x| x == zone) {
            return Err(NovaError::bad_request(
                "The requested availability zone is not available",
            ));
        }
    }
    // Server group.
    let group_id = match c.hints.get("group") {
        None => None,
        Some(Value::String(g)) => match sdb::group_get(svc.store(), g).await? {
            Some(gr) if gr.project_id == project || auth.admin() => Some(gr.id),
            _ => {
                return Err(NovaError::bad_request(format!(
                    "Invalid server group: group {g} could not be found."
                )))
            }
        },
        Some(v) => {
            return Err(fail(
                Some("group"),
                v,
                format!("{} is not a 'uuid'", repr(v)),
            ))
        }
    };
    // Networks and security groups.
    let networks = requested_networks(&svc, &auth, mv, &c.networks).await?;
    let (sg_ids, sg_names) = security_groups(&svc, &auth, &c.security_groups).await?;
    if c.max_count > 1 && networks.iter().any(|n| n.port_id.is_some()) {
        return Err(NovaError::bad_request(
            "Unable to launch multiple instances with a single configured port ID. Please \
             launch your instance one by one with different ports.",
        ));
    }
    let admin_pass = c.admin_pass.clone().unwrap_or_else(random_password);
    let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let now = now_micros();
    let template = Server {
        id: String::new(),
        seq: 0,
        project_id: project.clone(),
        user_id: user.clone(),
        name: c.name.clone(),
        hostname: c
            .hostname
            .clone()
            .unwrap_or_else(|| sanitize_hostname(&c.name)),
        description: c.description.clone(),
        host: None,
        node: None,
        availability_zone: c
            .availability_zone
            .as_deref()
            .map(|z| z.split(':').next().unwrap_or(z).to_string())
            .filter(|z| !z.is_empty()),
        requested_zone: c.availability_zone.clone(),
        vm_state: vm::BUILDING.into(),
        task_state: Some(task::SCHEDULING.into()),
        power_state: power::NOSTATE,
        flavor: FlavorCopy {
            id: flavor.id.clone(),
            name: flavor.name.clone(),
            vcpus: flavor.vcpus,
            memory_mb: flavor.memory_mb,
            root_gb: flavor.root_gb,
            ephemeral_gb: flavor.ephemeral_gb,
            swap: flavor.swap,
            extra_specs: flavor
                .extra_specs
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
        },
        image_ref: image_ref.clone(),
        image_properties: image.properties,
        key_name: c.key_name.clone(),
        key_data,
        user_data: c.user_data.clone(),
        metadata: c.metadata.clone(),
        tags: c.tags.clone(),
        config_drive: c.config_drive,
        access_ip_v4: c.access_ip_v4.clone(),
        access_ip_v6: c.access_ip_v6.clone(),
        disk_config: c.disk_config.clone(),
        locked: false,
        locked_by: None,
        locked_reason: None,
        reservation_id: reservation_id.clone(),
        launch_index: 0,
        created_at: now,
        updated_at: now,
        launched_at: None,
        terminated_at: None,
        deleted_at: None,
        deleted: false,
        fault: None,
        progress: 0,
        networks,
        security_groups: sg_ids,
        security_group_names: sg_names,
        security_groups_removed: false,
        scheduler_hints: c.hints.clone(),
        group_id: group_id.clone(),
        attempts: 0,
        ignore_hosts: Vec::new(),
        ports: Vec::new(),
        cleanup: false,
        on_host: false,
        generation: 0,
        power: Power::Running,
        reboot_seq: 0,
        hard_reboot: false,
        guest_gone: false,
        console: String::new(),
        snapshot: None,
        migration: None,
        shelve: None,
        bdms,
    };
    let (min, max) = (c.min_count, c.max_count);
    let cfg = svc.config().clone();
    let request_id = rid
        .map(|Extension(r)| r.0)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
    let rid2 = request_id.clone();
    let created: Vec<Server> = svc
        .store()
        .write_or_refuse(move |tx| {
            let (t, cfg, rid) = (template.clone(), cfg.clone(), rid2.clone());
            Box::pin(async move {
                let (p, u) = (t.project_id.clone(), t.user_id.clone());
                let limits = super::quotas::limits_tx(tx, &cfg, &p, &u).await?;
                let limit = |r: &str| limits.get(r).copied().unwrap_or(-1);
                let lm = limit("metadata_items");
                if lm >= 0 && t.metadata.len() as i64 > lm {
                    return Ok(Err(NovaError::over_quota(format!(
                        "Maximum number of metadata items exceeds {lm}"
                    ))));
                }
                let (li, lc, lr) = (limit("instances"), limit("cores"), limit("ram"));
                // Nothing to count when nothing is limited (a cloud without compute quotas
                // does not pay a sum over all its servers on every boot).
                let (ui, uc, ur) = if li < 0 && lc < 0 && lr < 0 {
                    (0, 0, 0)
                } else {
                    sdb::usage(tx, &p, None).await?
                };
                let fits = |n: i64| {
                    (li < 0 || ui + n <= li)
                        && (lc < 0 || uc + n * t.flavor.vcpus <= lc)
                        && (lr < 0 || ur + n * t.flavor.memory_mb <= lr)
                };
                let mut n = max;
                while n >= min && !fits(n) {
                    n -= 1;
                }
                if n < min {
                    let mut overs = Vec::new();
                    if li >= 0 && ui + min > li {
                        overs.push(("instances", min, ui, li));
                    }
                    if lc >= 0 && uc + min * t.flavor.vcpus > lc {
                        overs.push(("cores", min * t.flavor.vcpus, uc, lc));
                    }
                    if lr >= 0 && ur + min * t.flavor.memory_mb > lr {
                        overs.push(("ram", min * t.flavor.memory_mb, ur, lr));
                    }
                    return Ok(Err(over_quota(&overs)));
                }
                if let Some(g) = &t.group_id {
                    let Some(group) = sdb::group_get_tx(tx, g).await? else {
                        return Ok(Err(NovaError::bad_request(format!(
                            "Invalid server group: group {g} could not be found."
                        ))));
                    };
                    let lm = limit("server_group_members");
                    if lm >= 0 && group.members.len() as i64 + n > lm {
                        return Ok(Err(NovaError::over_quota(
                            "Quota exceeded, too many servers in group",
                        )));
                    }
                }
                let mut seq = sdb::next_seq(tx).await?;
                let mut out = Vec::new();
                for i in 0..n {
                    let mut s = t.clone();
                    s.id = uuid::Uuid::new_v4().to_string();
                    s.seq = seq;
                    seq += 1;
                    s.launch_index = i;
                    for b in s.bdms.iter_mut() {
                        b.uuid = uuid::Uuid::new_v4().to_string();
                    }
                    if n > 1 {
                        s.name = format!("{}-{}", t.name, i + 1);
                        s.hostname = format!("{}-{}", t.hostname, i + 1);
                    }
                    sdb::insert(tx, &s).await?;
                    sdb::action_start(
                        tx,
                        &s,
                        &rid,
                        "create",
                        &u,
                        "compute__do_build_and_run_instance",
                    )
                    .await?;
                    if let Some(g) = &s.group_id {
                        sdb::group_add_member(tx, g, &s.id).await?;
                    }
                    out.push(s);
                }
                Ok(Ok(out))
            })
        })
        .await??;
    if c.return_reservation_id {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "reservation_id": reservation_id })),
        )
            .into_response());
    }
    let s = &created[0];
    let mut v = json!({
        "id": s.id,
        "links": links.pair("servers", &s.id),
        "OS-DCF:diskConfig": s.disk_config,
        "security_groups": s.security_group_names().iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "adminPass": admin_pass,
    });
    if s.ports.is_empty() && s.networks.is_empty() {
        v["security_groups"] = json!(s
            .security_group_names()
            .iter()
            .map(|n| json!({ "name": n }))
            .collect::<Vec<_>>());
    }
    let location = format!("{}/servers/{}", links.self_base, s.id);
    Ok((
        StatusCode::ACCEPTED,
        [(http::header::LOCATION, location)],
        Json(json!({ "server": v })),
    )
        .into_response())
}

// ------------------------------------------------------------------ list

/// Query parameters Nova's servers index schema allows (2.75 refuses others).
const LIST_PARAMS: &[&str] = &[
    "user_id",
    "project_id",
    "tenant_id",
    "launch_index",
    "image_ref",
    "image",
    "kernel_id",
    "ramdisk_id",
    "hostname",
    "key_name",
    "power_state",
    "vm_state",
    "task_state",
    "host",
    "node",
    "flavor",
    "reservation_id",
    "launched_at",
    "terminated_at",
    "availability_zone",
    "name",
    "display_name",
    "description",
    "display_description",
    "locked_by",
    "uuid",
    "root_device_name",
    "config_drive",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "progress",
    "sort_key",
    "sort_dir",
    "all_tenants",
    "soft_deleted",
    "deleted",
    "status",
    "changes-since",
    "changes-before",
    "ip",
    "ip6",
    "created_at",
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
    "limit",
    "marker",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "locked",
    "pinned_availability_zone",
];

const SORT_KEYS: &[&str] = &[
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
];

const ADMIN_SORT_KEYS: &[&str] = &["host", "node"];

fn all_values<'a>(pairs: &'a Pairs, key: &str) -> Vec<&'a str> {
    pairs
        .0
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn sort_value(s: &Server, key: &str) -> Value {
    match key {
        "created_at" => json!(s.created_at),
        "updated_at" => json!(s.updated_at),
        "display_name" => json!(s.name),
        "display_description" => json!(s.description),
        "hostname" => json!(s.hostname),
        "host" => json!(s.host),
        "node" => json!(s.node),
        "uuid" => json!(s.id),
        "vm_state" => json!(s.vm_state),
        "task_state" => json!(s.task_state),
        "power_state" => json!(s.power_state),
        "project_id" => json!(s.project_id),
        "user_id" => json!(s.user_id),
        "image_ref" => json!(s.image_ref),
        "key_name" => json!(s.key_name),
        "launch_index" => json!(s.launch_index),
        "launched_at" => json!(s.launched_at),
        "terminated_at" => json!(s.terminated_at),
        "availability_zone" => json!(s.availability_zone),
        "access_ip_v4" => json!(s.access_ip_v4),
        "access_ip_v6" => json!(s.access_ip_v6),
        "locked" => json!(s.locked),
        "progress" => json!(s.progress),
        "config_drive" => json!(s.config_drive),
        "instance_type_id" => json!(s.flavor.id),
        _ => Value::Null,
    }
}

fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn regex_filter(pattern: &str) -> NovaResult<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| NovaError::bad_request(format!("Invalid regular expression: {pattern}")))
}

fn tags_param(v: &str) -> Vec<String> {
    v.split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The servers a listing returns (before the view), filtered, sorted and paged, with the
/// `servers_links` of a full page.
async fn list(
    svc: &ComputeService,
    auth: &Auth,
    mv: Microversion,
    pairs: &Pairs,
) -> NovaResult<(Vec<Server>, Option<String>, usize)> {
    pairs.only(mv, LIST_PARAMS)?;
    let admin = auth.admin();
    let limit = page_limit(pairs)?;
    let all_tenants = admin
        && pairs
            .get("all_tenants")
            .is_some_and(|v| v.is_empty() || schema::bool_from_string(v).unwrap_or(true));
    let mut scan = sdb::Scan::default();
    // As Nova: `project_id`/`tenant_id` count only with `all_tenants` (lp:#1185290);
    // without it an admin lists their own project's servers too.
    let project_filter = if all_tenants {
        pairs
            .get("project_id")
            .or(pairs.get("tenant_id"))
            .map(String::from)
    } else {
        None
    };
    if !all_tenants || project_filter.is_some() {
        scan.project_id = Some(project_filter.unwrap_or_else(|| auth.project().to_string()));
    }
    let parse_time = |key: &str| -> NovaResult<Option<i64>> {
        match pairs.get(key) {
            None => Ok(None),
            Some(v) => parse_iso(v).map(Some).ok_or_else(|| {
                NovaError::bad_request(format!(
                    "Invalid input for query parameters {key}. Value: {v}. '{v}' is not a \
                     'date-time'"
                ))
            }),
        }
    };
    let since = parse_time("changes-since")?;
    let before = if mv.at_least(66) {
        parse_time("changes-before")?
    } else {
        None
    };
    if let (Some(a), Some(b)) = (since, before) {
        if a > b {
            return Err(NovaError::bad_request(
                "The value of changes-since must be less than or equal to changes-before.",
            ));
        }
    }
    scan.changes_since = since;
    scan.changes_before = before;
    let deleted_param = pairs
        .get("deleted")
        .map(|v| schema::bool_from_string(v).unwrap_or(false));
    scan.deleted = if since.is_some() || before.is_some() {
        None
    } else if admin && deleted_param == Some(true) {
        Some(true)
    } else {
        Some(false)
    };
    if admin {
        scan.host = pairs.get("host").map(String::from);
    }
    if let Some(st) = pairs.get("status") {
        scan.vm_states = server::vm_states_of_status(st);
        if scan.vm_states.is_empty() {
            // Nothing can match; an empty list means "any" to the scan.
            return Ok((Vec::new(), None, limit));
        }
    }
    if let Some(page) = sql_page(svc, pairs, &scan, limit).await? {
        return Ok(page);
    }
    let mut rows = sdb::scan(svc.store(), &scan).await?;
    // Filters.
    if let Some(st) = pairs.get("status") {
        let states = server::vm_states_of_status(st);
        let want = st.to_ascii_uppercase();
        if want == "DELETED" && !admin {
            rows.clear();
        }
        rows.retain(|s| states.contains(&s.vm_state.as_str()) && s.status() == want);
    }
    if let Some(n) = pairs.get("name").or(pairs.get("display_name")) {
        let re = regex_filter(n)?;
        rows.retain(|s| re.is_match(&s.name));
    }
    if let Some(img) = pairs.get("image").or(pairs.get("image_ref")) {
        let img = last_segment(img);
        rows.retain(|s| s.image_ref == img);
    }
    if let Some(f) = pairs.get("flavor") {
        let f = last_segment(f);
        rows.retain(|s| s.flavor.id == f);
    }
    if let Some(ip) = pairs.get("ip") {
        let re = regex_filter(ip)?;
        rows.retain(|s| {
            s.ports
                .iter()
                .any(|p| p.ips.iter().any(|(a, v)| *v == 4 && re.is_match(a)))
        });
    }
    if let Some(ip) = pairs.get("ip6").filter(|_| mv.at_least(5) || admin) {
        let re = regex_filter(ip)?;
        rows.retain(|s| {
            s.ports
                .iter()
                .any(|p| p.ips.iter().any(|(a, v)| *v == 6 && re.is_match(a)))
        });
    }
    if let Some(r) = pairs.get("reservation_id") {
        rows.retain(|s| s.reservation_id == r);
    }
    if mv.at_least(26) {
        if let Some(t) = pairs.get("tags") {
            let want = tags_param(t);
            rows.retain(|s| want.iter().all(|w| s.tags.contains(w)));
        }
        if let Some(t) = pairs.get("tags-any") {
            let want = tags_param(t);
            rows.retain(|s| want.iter().any(|w| s.tags.contains(w)));
        }
        if let Some(t) = pairs.get("not-tags") {
            let want = tags_param(t);
            rows.retain(|s| !want.iter().all(|w| s.tags.contains(w)));
        }
        if let Some(t) = pairs.get("not-tags-any") {
            let want = tags_param(t);
            rows.retain(|s| !want.iter().any(|w| s.tags.contains(w)));
        }
    }
    if mv.at_least(73) {
        if let Some(l) = pairs.get("locked") {
            let Some(b) = schema::bool_from_string(l) else {
                return Err(NovaError::bad_request(format!(
                    "Invalid input for query parameters locked. Value: {l}."
                )));
            };
            rows.retain(|s| s.locked == b);
        }
    }
    if admin {
        if let Some(u) = pairs.get("user_id") {
            rows.retain(|s| s.user_id == u);
        }
        if let Some(n) = pairs.get("node") {
            rows.retain(|s| s.node.as_deref() == Some(n));
        }
        if let Some(z) = pairs.get("availability_zone") {
            rows.retain(|s| s.availability_zone.as_deref() == Some(z));
        }
        if let Some(v) = pairs.get("vm_state") {
            rows.retain(|s| s.vm_state == v);
        }
        if let Some(k) = pairs.get("key_name") {
            rows.retain(|s| s.key_name.as_deref() == Some(k));
        }
    }
    // Sort: the keys given (each with its direction), then created_at and id descending.
    let keys = all_values(pairs, "sort_key");
    let dirs = all_values(pairs, "sort_dir");
    for k in &keys {
        if !SORT_KEYS.contains(k) {
            return Err(NovaError::bad_request(format!(
                "Invalid input for query parameters sort_key. Value: {k}. '{k}' is not one of \
                 the valid sort keys"
            )));
        }
        if ADMIN_SORT_KEYS.contains(k) && !admin {
            return Err(NovaError::forbidden(
                "Only administrators can sort servers by host or node",
            ));
        }
    }
    for d in &dirs {
        if *d != "asc" && *d != "desc" {
            return Err(NovaError::bad_request(format!(
                "Invalid input for query parameters sort_dir. Value: {d}. '{d}' is not one of \
                 ['asc', 'desc']"
            )));
        }
    }
    let mut order: Vec<(&str, bool)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, dirs.get(i).copied().unwrap_or("desc") == "desc"))
        .collect();
    if order.is_empty() {
        order.push(("created_at", true));
    }
    order.push(("uuid", order[0].1));
    rows.sort_by(|a, b| {
        for (k, desc) in &order {
            let o = cmp_values(&sort_value(a, k), &sort_value(b, k));
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    // Page.
    if let Some(m) = pairs.get("marker") {
        match rows.iter().position(|s| s.id == m) {
            Some(i) => {
                rows.drain(..=i);
            }
            None => {
                return Err(NovaError::bad_request(format!("marker [{m}] not found")));
            }
        }
    }
    Ok(page_of(rows, limit, pairs))
}

/// The query parameters [`list`] applies to the rows in memory.
const MEMORY_FILTERS: &[&str] = &[
    "name",
    "display_name",
    "image",
    "image_ref",
    "flavor",
    "ip",
    "ip6",
    "reservation_id",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "locked",
    "user_id",
    "node",
    "availability_zone",
    "vm_state",
    "key_name",
    "sort_key",
    "sort_dir",
];

/// A listing SQL can page by itself — no filter applied in memory, the default order
/// (newest first), a status that its `vm_state`s decide alone (`BUILD`, `ERROR`… but not
/// `ACTIVE`, which a task can turn into `REBOOT`) — read a page at a time: a `GET /servers`
/// among 100,000 servers reads one page of them, not all. `None`: the listing needs the
/// general path.
async fn sql_page(
    svc: &ComputeService,
    pairs: &Pairs,
    scan: &sdb::Scan,
    limit: usize,
) -> NovaResult<Option<(Vec<Server>, Option<String>, usize)>> {
    if MEMORY_FILTERS.iter().any(|k| pairs.get(k).is_some()) {
        return Ok(None);
    }
    if let Some(st) = pairs.get("status") {
        let want = st.to_ascii_uppercase();
        let tasks = [
            None,
            Some(server::task::REBOOTING),
            Some(server::task::REBUILDING),
            Some("migrating"),
            Some("resize_prep"),
            Some("resize_reverting"),
            Some("deleting"),
            Some("spawning"),
        ];
        let decided = scan
            .vm_states
            .iter()
            .all(|v| tasks.iter().all(|t| server::status(v, *t) == want));
        if !decided || want == "DELETED" {
            return Ok(None);
        }
    }
    let after = match pairs.get("marker") {
        None => None,
        Some(m) => {
            let one = sdb::Scan {
                id: Some(m.to_string()),
                ..scan.clone()
            };
            match sdb::scan(svc.store(), &one).await?.into_iter().next() {
                Some(s) => Some((s.created_at, s.id)),
                None => {
                    return Err(NovaError::bad_request(format!("marker [{m}] not found")));
                }
            }
        }
    };
    let paged = sdb::Scan {
        page: Some((limit + 1, after)),
        ..scan.clone()
    };
    let rows = sdb::scan(svc.store(), &paged).await?;
    Ok(Some(page_of(rows, limit, pairs)))
}

/// The first `limit` of `rows` (what follows the marker), with the marker of the next page.
fn page_of(
    mut rows: Vec<Server>,
    limit: usize,
    pairs: &Pairs,
) -> (Vec<Server>, Option<String>, usize) {
    let full = rows.len() > limit;
    rows.truncate(limit);
    let next = if full || (rows.len() == limit && limit > 0 && pairs.get("limit").is_some()) {
        rows.last().map(|s| s.id.clone())
    } else {
        None
    };
    (rows, next, limit)
}

async fn list_response(
    svc: ComputeService,
    auth: Auth,
    mv: Microversion,
    links: Links,
    pairs: Pairs,
    shape: Shape,
    path: &str,
) -> NovaResult<Response> {
    let (rows, next, limit) = list(&svc, &auth, mv, &pairs).await?;
    let cx = ViewCtx::new(&svc, &auth, mv, &links).await?;
    let (admin, down_after_us, services) = (cx.admin, cx.down_after_us, cx.services);
    // The views are rendered straight to JSON text in chunks, one per core, each on a
    // blocking thread: a 1,000-server detail list is a few megabytes of small JSON values.
    let rows = Arc::new(rows);
    let parts = if rows.len() < 64 {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(8)
    };
    let per = rows.len().div_ceil(parts.max(1)).max(1);
    let mut tasks = Vec::new();
    for start in (0..rows.len()).step_by(per) {
        let (rows, services, links) = (rows.clone(), services.clone(), links.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            let cx = ViewCtx {
                admin,
                down_after_us,
                mv,
                links: &links,
                services,
                groups: HashMap::new(),
            };
            let end = (start + per).min(rows.len());
            let mut buf = Vec::with_capacity((end - start) * 1600);
            for (i, s) in rows[start..end].iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                // Serialising a `Value` to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut buf, &view(s, &cx, shape));
            }
            buf
        }));
    }
    let mut body = Vec::with_capacity(rows.len() * 1600 + 64);
    body.extend_from_slice(b"{\"servers\": [");
    let mut first = true;
    for t in tasks {
        let chunk = t.await.map_err(|e| {
            tracing::error!(error = %e, "rendering servers");
            NovaError::internal()
        })?;
        if chunk.is_empty() {
            continue;
        }
        if !first {
            body.push(b',');
        }
        first = false;
        body.extend_from_slice(&chunk);
    }
    body.push(b']');
    if let Some(m) = next {
        let l = next_link(&format!("{}/{path}", links.self_base), &pairs, limit, &m);
        body.extend_from_slice(b", \"servers_links\": ");
        let _ = serde_json::to_writer(&mut body, &l);
    }
    body.push(b'}');
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// `GET /servers`.
pub async fn server_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    pairs: Pairs,
) -> NovaResult<Response> {
    list_response(svc, auth, mv, links, pairs, Shape::Brief, "servers").await
}

/// `GET /servers/detail`.
pub async fn server_list_detail(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    pairs: Pairs,
) -> NovaResult<Response> {
    list_response(svc, auth, mv, links, pairs, Shape::Full, "servers/detail").await
}

// ------------------------------------------------------------------ show, update, delete

/// `GET /servers/{id}`.
pub async fn server_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    let mut cx = ViewCtx::new(&svc, &auth, mv, &links).await?;
    Ok(Json(
        json!({ "server": view_one(&svc, &s, &mut cx, Shape::Full).await? }),
    ))
}

/// `PUT /servers/{id}`: name, access addresses, disk config, description (2.19), hostname
/// (2.90).
pub async fn server_update(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let m = schema::envelope(&body, "server")?.clone();
    let whole = body["server"].clone();
    let mut allowed = vec!["name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"];
    if mv.at_least(19) {
        allowed.push("description");
    }
    if mv.at_least(90) {
        allowed.push("hostname");
    }
    schema::only(&m, &allowed, Some("server"), &whole)?;
    let name = m
        .get("name")
        .map(|v| schema::name(v, "name"))
        .transpose()?
        .map(String::from);
    let v4 = match m.get("accessIPv4") {
        None => None,
        Some(v) => match v.as_str() {
            Some(s) if s.is_empty() || valid_ipv4(s) => Some(s.to_string()),
            _ => {
                return Err(fail(
                    Some("accessIPv4"),
                    v,
                    format!("{} is not a 'ipv4'", repr(v)),
                ))
            }
        },
    };
    let v6 = match m.get("accessIPv6") {
        None => None,
        Some(v) => match v.as_str() {
            Some(s) if s.is_empty() || valid_ipv6(s) => Some(canonical_ipv6(s)),
            _ => {
                return Err(fail(
                    Some("accessIPv6"),
                    v,
                    format!("{} is not a 'ipv6'", repr(v)),
                ))
            }
        },
    };
    let dc = match m.get("OS-DCF:diskConfig") {
        None => None,
        Some(Value::String(s)) if s == "AUTO" || s == "MANUAL" => Some(s.clone()),
        Some(v) => {
            return Err(fail(
                Some("OS-DCF:diskConfig"),
                v,
                format!("{} is not one of ['AUTO', 'MANUAL']", repr(v)),
            ))
        }
    };
    let desc = match m.get("description") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(schema::string(v, "description", 0, 255)?.to_string())),
    };
    let hostname = m
        .get("hostname")
        .map(|v| schema::string(v, "hostname", 1, 255).map(String::from))
        .transpose()?;
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(&s.project_id, "os_compute_api:servers:update")?;
    let s = mutate(&svc, &id, move |n| {
        if let Some(x) = &name {
            n.name = x.clone();
        }
        if let Some(x) = &v4 {
            n.access_ip_v4 = x.clone();
        }
        if let Some(x) = &v6 {
            n.access_ip_v6 = x.clone();
        }
        if let Some(x) = &dc {
            n.disk_config = x.clone();
        }
        if let Some(x) = &desc {
            n.description = x.clone();
        }
        if let Some(x) = &hostname {
            n.hostname = x.clone();
        }
        Ok(())
    })
    .await?;
    let mut cx = ViewCtx::new(&svc, &auth, mv, &links).await?;
    Ok(Json(
        json!({ "server": view_one(&svc, &s, &mut cx, Shape::Core).await? }),
    ))
}

/// Marks a server for deletion: its guest leaves its host, the controller releases its ports
/// and claims and removes it. Works from any state; a second delete changes nothing.
pub async fn start_delete(
    svc: &ComputeService,
    auth: &Auth,
    id: &str,
    request_id: String,
) -> NovaResult<()> {
    let admin = auth.admin();
    let user = auth.user().to_string();
    mutate_with(
        svc,
        id,
        Some((
            request_id,
            "delete".into(),
            user,
            "compute_terminate_instance".into(),
        )),
        move |n| {
            if n.locked && !admin {
                return Err(NovaError::conflict(format!("Instance {} is locked", n.id)));
            }
            if n.task_state.as_deref() != Some(task::DELETING) {
                n.task_state = Some(task::DELETING.into());
                n.on_host = false;
                n.generation += 1;
            }
            Ok(())
        },
    )
    .await?;
    Ok(())
}

/// `DELETE /servers/{id}`: 204.
pub async fn server_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    rid: Option<Extension<RequestId>>,
    Path(id): Path<String>,
) -> NovaResult<StatusCode> {
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(&s.project_id, "os_compute_api:servers:delete")?;
    let rid = rid
        .map(|Extension(r)| r.0)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
    // With `reclaim_instance_interval`, a soft delete (`api/deferred.rs`).
    if super::deferred::soft_delete(&svc, &auth, &s, &rid).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    start_delete(&svc, &auth, &id, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_sanitised_like_nova() {
        assert_eq!(sanitize_hostname("My Server_1"), "my-server-1");
        assert_eq!(sanitize_hostname("--x--"), "x");
        assert_eq!(sanitize_hostname("ü"), "server");
    }

    #[test]
    fn references_may_be_urls() {
        assert_eq!(last_segment("http://h/compute/flavors/42"), "42");
        assert_eq!(last_segment("42"), "42");
    }

    #[test]
    fn quota_refusals_read_as_novas() {
        let e = over_quota(&[("cores", 2, 19, 20), ("ram", 1024, 0, 512)]);
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(
            e.message,
            "Quota exceeded for cores, ram: Requested 2, 1024, but already used 19, 0 of 20, \
             512 cores, ram"
        );
    }
}
