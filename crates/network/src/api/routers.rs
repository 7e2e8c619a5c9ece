//! `/v2.0/routers` (`router`, `extraroute`, `ext-gw-mode`): create, list, show, update, delete,
//! `add_router_interface` / `remove_router_interface`. A router's gateway is a port on an
//! external network (device owner `network:router_gateway`, no project, as Neutron makes it);
//! its interfaces are ports with device owner `network:router_interface` and the router as
//! device. Interfaces are found through those ports, so the port table is the one truth.
//! Distributed and HA routers are not implemented: asking for one is refused.

use super::list;
use super::networks::{self, boolean, only, owner, standard, string};
use super::{ports, subnets, write};
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body, Pairs};
use crate::ipam::{self, Cidr};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use strata_core::config::NetworkConfig;
use strata_store::Tx;

pub const KIND: &str = "router";
pub const GATEWAY_OWNER: &str = "network:router_gateway";
pub const INTERFACE_OWNER: &str = "network:router_interface";
/// Neutron's `max_routes`.
const MAX_ROUTES: usize = 30;

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/routers", get(router_list).post(router_create))
        .route(
            "/routers/{id}",
            get(router_show).put(router_update).delete(router_delete),
        )
        .route("/routers/{id}/add_router_interface", put(interface_add))
        .route(
            "/routers/{id}/remove_router_interface",
            put(interface_remove),
        )
}

/// Every attribute of the router view (what may be filtered and sorted on).
pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "tenant_id",
    "project_id",
    "admin_state_up",
    "status",
    "external_gateway_info",
    "routes",
    "distributed",
    "ha",
    "availability_zone_hints",
    "availability_zones",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

macro_rules! refuse {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

/// The router view; `distributed` and `ha` only for admins (Neutron's policy). Internal
/// attributes (`_…`) never show.
pub fn view(r: &Resource, admin: bool) -> Value {
    let mut m = standard(r);
    m.retain(|k, _| !k.starts_with('_'));
    if !admin {
        m.remove("distributed");
        m.remove("ha");
    }
    Value::Object(m)
}

fn visible(auth: &Auth, r: &Resource) -> bool {
    auth.owns(&r.project_id)
}

/// The router `id` if the caller may see it; 404 otherwise.
pub async fn find(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<Resource> {
    match db::get(svc.store(), KIND, id).await? {
        Some(r) if visible(auth, &r) => Ok(r),
        _ => Err(NeutronError::not_found(KIND, id)),
    }
}

fn bad_router(msg: impl std::fmt::Display) -> NeutronError {
    NeutronError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Bad router request: {msg}."),
    )
}

fn invalid_routes(routes: &Value, reason: &str) -> NeutronError {
    NeutronError::new(
        StatusCode::BAD_REQUEST,
        "InvalidRoutes",
        format!("Invalid format for routes: {routes}, {reason}."),
    )
}

// ------------------------------------------------------------------ gateway

/// A validated `external_gateway_info`.
#[derive(Debug, Clone)]
pub struct GatewayAsk {
    pub network_id: String,
    pub enable_snat: Option<bool>,
    pub fixed_ips: Option<Vec<(Option<String>, Option<IpAddr>)>>,
}

/// Parses `external_gateway_info`: `None` when absent, `Some(None)` to clear it.
fn gateway_attr(auth: &Auth, m: &Map<String, Value>) -> NeutronResult<Option<Option<GatewayAsk>>> {
    let info = match m.get("external_gateway_info") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(Value::Object(o)) if o.is_empty() => return Ok(Some(None)),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for external_gateway_info. Reason: '{other}' is not a dictionary."
            )))
        }
    };
    if let Some(k) = info.keys().find(|k| {
        !matches!(
            k.as_str(),
            "network_id" | "enable_snat" | "external_fixed_ips"
        )
    }) {
        return Err(NeutronError::bad_request(format!(
            "Invalid input for external_gateway_info. Reason: Unexpected keys supplied: {k}."
        )));
    }
    let network_id = match info.get("network_id") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(NeutronError::bad_request(
                "Invalid input for external_gateway_info. Reason: Validation of dictionary's \
                 keys failed. Expected keys: {'network_id'}.",
            ))
        }
    };
    let enable_snat = boolean(info, "enable_snat")?;
    if enable_snat.is_some() && !auth.admin() {
        return Err(NeutronError::policy(
            "create_router:external_gateway_info:enable_snat",
        ));
    }
    let fixed_ips = match info.get("external_fixed_ips") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if !auth.admin() {
                return Err(NeutronError::policy(
                    "create_router:external_gateway_info:external_fixed_ips",
                ));
            }
            let mut out = Vec::new();
            for i in items {
                let Some(o) = i.as_object() else {
                    return Err(NeutronError::bad_request(format!(
                        "Invalid input for external_fixed_ips. Reason: '{i}' is not a dictionary."
                    )));
                };
                let sid = o.get("subnet_id").and_then(Value::as_str).map(String::from);
                let ip = match o.get("ip_address") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                        NeutronError::bad_request(format!(
                            "Invalid input for external_fixed_ips. Reason: '{v}' is not a valid \
                             IP address."
                        ))
                    })?),
                };
                if sid.is_none() && ip.is_none() {
                    return Err(NeutronError::invalid_input(
                        "IP allocation requires subnet_id or ip_address",
                    ));
                }
                out.push((sid, ip));
            }
            Some(out)
        }
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for external_fixed_ips. Reason: '{other}' is not a list."
            )))
        }
    };
    Ok(Some(Some(GatewayAsk {
        network_id,
        enable_snat,
        fixed_ips,
    })))
}

/// Floating IPs that go through the router.
async fn router_fips(tx: &mut Tx, router_id: &str) -> strata_core::Result<Vec<Resource>> {
    Ok(db::list_tx(tx, super::floatingips::KIND, None)
        .await?
        .into_iter()
        .filter(|f| f.str("router_id") == Some(router_id))
        .collect())
}

/// Sets (or, with `None`, clears) the router's gateway inside the write: the old gateway port
/// goes, a new one is made on the external network. The router is not saved here.
pub(crate) async fn set_gateway(
    tx: &mut Tx,
    cfg: &NetworkConfig,
    router: &mut Resource,
    ask: Option<GatewayAsk>,
) -> strata_core::Result<NeutronResult<()>> {
    let old_net = router
        .doc
        .get("external_gateway_info")
        .and_then(|g| g.get("network_id"))
        .and_then(Value::as_str)
        .map(String::from);
    if let Some(a) = &ask {
        let Some(net) = db::get_tx(tx, networks::KIND, &a.network_id).await? else {
            return Ok(Err(NeutronError::not_found(networks::KIND, &a.network_id)));
        };
        if !net.flag("router:external") {
            return Ok(Err(bad_router(format_args!(
                "Network {} is not a valid external network",
                a.network_id
            ))));
        }
    }
    let new_net = ask.as_ref().map(|a| a.network_id.clone());
    if old_net.is_some() && old_net != new_net {
        let fips = router_fips(tx, &router.id).await?;
        if !fips.is_empty() {
            return Ok(Err(NeutronError::conflict(
                "RouterExternalGatewayInUseByFloatingIp",
                format!(
                    "Gateway cannot be updated for router {}, since a gateway to external \
                     network {} is required by one or more floating IPs.",
                    router.id,
                    old_net.unwrap_or_default()
                ),
            )));
        }
    }
    let same_port = old_net.is_some()
        && old_net == new_net
        && ask.as_ref().is_some_and(|a| a.fixed_ips.is_none());
    let mut info = Value::Null;
    if let Some(a) = ask {
        let snat = a.enable_snat.unwrap_or_else(|| {
            router.doc["external_gateway_info"]["enable_snat"]
                .as_bool()
                .filter(|_| same_port)
                .unwrap_or(true)
        });
        let port_ips = if same_port {
            router.doc["external_gateway_info"]["external_fixed_ips"].clone()
        } else {
            if let Some(old) = router.str("_gw_port").map(String::from) {
                ports::remove_service_port(tx, &old).await?;
            }
            let port = refuse!(
                ports::create_service_port(
                    tx,
                    &cfg.base_mac,
                    "",
                    &a.network_id,
                    GATEWAY_OWNER,
                    &router.id,
                    a.fixed_ips.clone(),
                )
                .await?
            );
            router.doc.insert("_gw_port".into(), json!(port.id));
            port.doc.get("fixed_ips").cloned().unwrap_or(json!([]))
        };
        info = json!({"network_id": a.network_id, "enable_snat": snat,
                      "external_fixed_ips": port_ips});
    } else if let Some(old) = router.str("_gw_port").map(String::from) {
        ports::remove_service_port(tx, &old).await?;
        router.doc.remove("_gw_port");
    }
    router.doc.insert("external_gateway_info".into(), info);
    Ok(Ok(()))
}

// ------------------------------------------------------------------ interfaces and routes

/// The router's interface ports inside the write.
pub(crate) async fn interfaces(tx: &mut Tx, router_id: &str) -> strata_core::Result<Vec<Resource>> {
    Ok(db::list_tx(tx, ports::KIND, None)
        .await?
        .into_iter()
        .filter(|p| {
            p.str("device_id") == Some(router_id) && p.str("device_owner") == Some(INTERFACE_OWNER)
        })
        .collect())
}

/// Every port of the router (interfaces and gateway) inside the write.
async fn router_ports(tx: &mut Tx, router_id: &str) -> strata_core::Result<Vec<Resource>> {
    Ok(db::list_tx(tx, ports::KIND, None)
        .await?
        .into_iter()
        .filter(|p| p.str("device_id") == Some(router_id))
        .filter(|p| {
            matches!(
                p.str("device_owner"),
                Some(INTERFACE_OWNER) | Some(GATEWAY_OWNER)
            )
        })
        .collect())
}

/// Parses `routes` (`null` clears them).
fn routes_attr(v: &Value) -> NeutronResult<Vec<(Cidr, IpAddr)>> {
    let items = match v {
        Value::Null => return Ok(vec![]),
        Value::Array(items) => items,
        other => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for routes. Reason: '{other}' is not a list."
            )))
        }
    };
    let mut out: Vec<(Cidr, IpAddr)> = Vec::new();
    for i in items {
        let bad = |why: &str| {
            NeutronError::bad_request(format!("Invalid input for routes. Reason: {why}."))
        };
        let Some(o) = i.as_object() else {
            return Err(bad(&format!("'{i}' is not a dictionary")));
        };
        if let Some(k) = o.keys().find(|k| *k != "destination" && *k != "nexthop") {
            return Err(bad(&format!("Unexpected keys supplied: {k}")));
        }
        let dest = o
            .get("destination")
            .and_then(Value::as_str)
            .and_then(Cidr::parse)
            .ok_or_else(|| {
                bad(&format!(
                    "'{}' is not a valid IP subnet",
                    o.get("destination").cloned().unwrap_or(Value::Null)
                ))
            })?;
        let hop: IpAddr = o
            .get("nexthop")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                bad(&format!(
                    "'{}' is not a valid IP address",
                    o.get("nexthop").cloned().unwrap_or(Value::Null)
                ))
            })?;
        if !out.contains(&(dest, hop)) {
            out.push((dest, hop));
        }
    }
    if out.len() > MAX_ROUTES {
        return Err(NeutronError::new(
            StatusCode::BAD_REQUEST,
            "RoutesExhausted",
            format!("Unable to complete operation for router. The number of routes exceeds the maximum {MAX_ROUTES}."),
        ));
    }
    Ok(out)
}

/// Checks extra routes against the router's ports inside the write: every next hop on a
/// subnet of the router, none the router's own address.
async fn check_routes(
    tx: &mut Tx,
    router_id: &str,
    routes: &[(Cidr, IpAddr)],
    raw: &Value,
) -> strata_core::Result<NeutronResult<()>> {
    let mut cidrs = Vec::new();
    let mut own = Vec::new();
    for p in router_ports(tx, router_id).await? {
        for (sid, ip) in ports::addresses(&p) {
            own.push(ip);
            if let Some(s) = db::get_tx(tx, subnets::KIND, &sid).await? {
                if let Some(c) = ipam::cidr_of(&s) {
                    cidrs.push(c);
                }
            }
        }
    }
    for (_, hop) in routes {
        if !cidrs.iter().any(|c| c.contains(*hop)) {
            return Ok(Err(invalid_routes(
                raw,
                "the nexthop is not connected with router",
            )));
        }
        if own.contains(hop) {
            return Ok(Err(invalid_routes(raw, "the nexthop is used by router")));
        }
    }
    Ok(Ok(()))
}

fn routes_json(routes: &[(Cidr, IpAddr)]) -> Value {
    Value::Array(
        routes
            .iter()
            .map(|(d, h)| json!({"destination": d.to_string(), "nexthop": h.to_string()}))
            .collect(),
    )
}

/// The answer to `add_router_interface` / `remove_router_interface`.
fn interface_info(router: &Resource, port: &Resource) -> Value {
    let subnets: Vec<String> = ports::addresses(port).into_iter().map(|(s, _)| s).collect();
    json!({
        "id": router.id,
        "tenant_id": router.project_id,
        "project_id": router.project_id,
        "port_id": port.id,
        "subnet_id": subnets.first(),
        "subnet_ids": subnets,
        "network_id": port.str("network_id"),
    })
}

/// CIDRs of the subnets the router's interfaces are on, with the subnet ids.
async fn attached(tx: &mut Tx, router_id: &str) -> strata_core::Result<Vec<(String, Cidr)>> {
    let mut out = Vec::new();
    for p in interfaces(tx, router_id).await? {
        for (sid, _) in ports::addresses(&p) {
            if let Some(c) = db::get_tx(tx, subnets::KIND, &sid)
                .await?
                .and_then(|s| ipam::cidr_of(&s))
            {
                out.push((sid, c));
            }
        }
    }
    Ok(out)
}

/// Refuses a subnet already on the router or overlapping one that is.
async fn check_new_subnet(
    tx: &mut Tx,
    router_id: &str,
    subnet: &Resource,
) -> strata_core::Result<NeutronResult<()>> {
    let Some(cidr) = ipam::cidr_of(subnet) else {
        return Ok(Ok(()));
    };
    for (sid, c) in attached(tx, router_id).await? {
        if sid == subnet.id {
            return Ok(Err(bad_router(format_args!(
                "Router already has a port on subnet {sid}"
            ))));
        }
        if c.overlaps(&cidr) {
            return Ok(Err(bad_router(format_args!(
                "Cidr {cidr} of subnet {} overlaps with cidr {c} of subnet {sid}",
                subnet.id
            ))));
        }
    }
    Ok(Ok(()))
}

/// Attaches `subnet` to the router inside the write: a new port with the subnet's gateway
/// address, of the subnet's project.
pub(crate) async fn add_subnet_interface(
    tx: &mut Tx,
    cfg: &NetworkConfig,
    router: &Resource,
    subnet_id: &str,
) -> strata_core::Result<NeutronResult<Value>> {
    let Some(subnet) = db::get_tx(tx, subnets::KIND, subnet_id).await? else {
        return Ok(Err(NeutronError::not_found(subnets::KIND, subnet_id)));
    };
    let Some(gw) = ipam::gateway_of(&subnet) else {
        return Ok(Err(bad_router(
            "Subnet for router interface must have a gateway IP",
        )));
    };
    refuse!(check_new_subnet(tx, &router.id, &subnet).await?);
    let network_id = subnet.str("network_id").unwrap_or("").to_string();
    let port = refuse!(
        ports::create_service_port(
            tx,
            &cfg.base_mac,
            &subnet.project_id,
            &network_id,
            INTERFACE_OWNER,
            &router.id,
            Some(vec![(Some(subnet.id.clone()), Some(gw))]),
        )
        .await?
    );
    Ok(Ok(interface_info(router, &port)))
}

/// Attaches an existing port (without a device) to the router inside the write.
async fn add_port_interface(
    tx: &mut Tx,
    router: &Resource,
    port_id: &str,
) -> strata_core::Result<NeutronResult<Value>> {
    let Some(mut port) = db::get_tx(tx, ports::KIND, port_id).await? else {
        return Ok(Err(NeutronError::not_found(ports::KIND, port_id)));
    };
    let device = port.str("device_id").unwrap_or("").to_string();
    if !device.is_empty() {
        return Ok(Err(NeutronError::conflict(
            "PortInUse",
            format!(
                "Unable to complete operation on port {port_id} for network {}. Port already \
                 has an attached device {device}.",
                port.str("network_id").unwrap_or("")
            ),
        )));
    }
    let addrs = ports::addresses(&port);
    if addrs.is_empty() {
        return Ok(Err(bad_router(
            "Router port must have at least one fixed IP",
        )));
    }
    for (sid, _) in &addrs {
        if let Some(s) = db::get_tx(tx, subnets::KIND, sid).await? {
            refuse!(check_new_subnet(tx, &router.id, &s).await?);
        }
    }
    port.doc.insert("device_id".into(), json!(router.id));
    port.doc
        .insert("device_owner".into(), json!(INTERFACE_OWNER));
    db::save(tx, &mut port).await?;
    Ok(Ok(interface_info(router, &port)))
}

/// Detaches an interface (by port, by subnet, or both) inside the write; the port goes.
async fn remove_interface(
    tx: &mut Tx,
    router: &Resource,
    port_id: Option<&str>,
    subnet_id: Option<&str>,
) -> strata_core::Result<NeutronResult<Value>> {
    let ifaces = interfaces(tx, &router.id).await?;
    let port = match (port_id, subnet_id) {
        (Some(pid), sid) => {
            let Some(p) = ifaces.iter().find(|p| p.id == pid) else {
                return Ok(Err(NeutronError::new(
                    StatusCode::NOT_FOUND,
                    "RouterInterfaceNotFound",
                    format!(
                        "Router {} does not have an interface with id {pid}",
                        router.id
                    ),
                )));
            };
            if let Some(sid) = sid {
                if !ports::addresses(p).iter().any(|(s, _)| s == sid) {
                    return Ok(Err(not_on_subnet(&router.id, sid)));
                }
            }
            p.clone()
        }
        (None, Some(sid)) => {
            if db::get_tx(tx, subnets::KIND, sid).await?.is_none() {
                return Ok(Err(NeutronError::not_found(subnets::KIND, sid)));
            }
            match ifaces
                .iter()
                .find(|p| ports::addresses(p).iter().any(|(s, _)| s == sid))
            {
                Some(p) => p.clone(),
                None => return Ok(Err(not_on_subnet(&router.id, sid))),
            }
        }
        (None, None) => {
            return Ok(Err(bad_router(
                "Either subnet_id or port_id must be specified",
            )))
        }
    };
    let subnet_ids: Vec<String> = ports::addresses(&port)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    for f in router_fips(tx, &router.id).await? {
        if f.str("_fixed_subnet")
            .is_some_and(|s| subnet_ids.iter().any(|x| x == s))
        {
            return Ok(Err(NeutronError::conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!(
                    "Router interface for subnet {} on router {} cannot be deleted, as it is \
                     required by one or more floating IPs.",
                    f.str("_fixed_subnet").unwrap_or(""),
                    router.id
                ),
            )));
        }
    }
    let routes = stored_routes(router);
    for sid in &subnet_ids {
        if let Some(c) = db::get_tx(tx, subnets::KIND, sid)
            .await?
            .and_then(|s| ipam::cidr_of(&s))
        {
            if routes.iter().any(|(_, h)| c.contains(*h)) {
                return Ok(Err(NeutronError::conflict(
                    "RouterInterfaceInUseByRoute",
                    format!(
                        "Router interface for subnet {sid} on router {} cannot be deleted, as \
                         it is required by one or more routes.",
                        router.id
                    ),
                )));
            }
        }
    }
    let info = interface_info(router, &port);
    ports::remove_service_port(tx, &port.id).await?;
    Ok(Ok(info))
}

fn not_on_subnet(router_id: &str, subnet_id: &str) -> NeutronError {
    NeutronError::new(
        StatusCode::NOT_FOUND,
        "RouterInterfaceNotFoundForSubnet",
        format!("Router {router_id} has no interface on subnet {subnet_id}"),
    )
}

fn stored_routes(router: &Resource) -> Vec<(Cidr, IpAddr)> {
    router
        .doc
        .get("routes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    Some((
                        Cidr::parse(r["destination"].as_str()?)?,
                        r["nexthop"].as_str()?.parse().ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ handlers

const CREATE_ATTRS: &[&str] = &[
    "name",
    "admin_state_up",
    "external_gateway_info",
    "distributed",
    "ha",
    "availability_zone_hints",
    "description",
    "tenant_id",
    "project_id",
    "tags",
    "flavor_id",
];

/// `distributed` / `ha`: only admins may set them (Neutron's policy), and only to false here.
fn dvr_ha(auth: &Auth, m: &Map<String, Value>, verb: &str) -> NeutronResult<()> {
    for k in ["distributed", "ha"] {
        if let Some(b) = boolean(m, k)? {
            if !auth.admin() {
                return Err(NeutronError::policy(&format!("{verb}_router:{k}")));
            }
            if b {
                return Err(bad_router(format_args!(
                    "{} routers are not supported",
                    if k == "ha" { "HA" } else { "Distributed" }
                )));
            }
        }
    }
    Ok(())
}

fn az_hints(m: &Map<String, Value>) -> NeutronResult<Option<Value>> {
    match m.get("availability_zone_hints") {
        None => Ok(None),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            Ok(Some(Value::Array(a.clone())))
        }
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for availability_zone_hints. Reason: '{other}' is not a list of \
             strings."
        ))),
    }
}

/// A new router document (gateway still to set).
pub(crate) fn build(
    auth: &Auth,
    m: &Map<String, Value>,
) -> NeutronResult<(Resource, Option<GatewayAsk>)> {
    only(m, CREATE_ATTRS)?;
    let project = owner(auth, m)?;
    dvr_ha(auth, m, "create")?;
    let gw = gateway_attr(auth, m)?.flatten();
    if m.get("flavor_id").is_some_and(|v| !v.is_null()) {
        return Err(bad_router("Router flavors are not supported"));
    }
    let tags = match m.get("tags") {
        None => json!([]),
        Some(Value::Array(t)) if t.iter().all(Value::is_string) => Value::Array(t.clone()),
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for tags. Reason: '{other}' is not a list of strings."
            )))
        }
    };
    let mut doc = Map::new();
    doc.insert(
        "name".into(),
        json!(string(m, "name", 255)?.unwrap_or_default()),
    );
    doc.insert(
        "admin_state_up".into(),
        json!(boolean(m, "admin_state_up")?.unwrap_or(true)),
    );
    doc.insert("status".into(), json!("ACTIVE"));
    doc.insert("external_gateway_info".into(), Value::Null);
    doc.insert("routes".into(), json!([]));
    doc.insert("distributed".into(), json!(false));
    doc.insert("ha".into(), json!(false));
    doc.insert(
        "availability_zone_hints".into(),
        az_hints(m)?.unwrap_or(json!([])),
    );
    doc.insert("availability_zones".into(), json!(["nova"]));
    doc.insert(
        "description".into(),
        json!(string(m, "description", 255)?.unwrap_or_default()),
    );
    doc.insert("tags".into(), tags);
    Ok((
        Resource::new(KIND, strata_core::ids::uuid(), project, doc),
        gw,
    ))
}

/// Inserts a built router with its gateway inside the write, quota checked.
pub(crate) async fn insert(
    tx: &mut Tx,
    cfg: &NetworkConfig,
    mut r: Resource,
    gw: Option<GatewayAsk>,
) -> strata_core::Result<NeutronResult<Resource>> {
    refuse!(crate::quota::check(tx, cfg, &r.project_id, "router", 1).await?);
    if gw.is_some() {
        refuse!(set_gateway(tx, cfg, &mut r, gw).await?);
    }
    db::insert(tx, &r).await?;
    Ok(Ok(r))
}

/// `POST /v2.0/routers`: 201.
pub async fn router_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_router"));
    }
    let m = body.entity("router")?;
    let (r, gw) = build(&auth, &m)?;
    let cfg = svc.config().clone();
    let created = write(&svc, move |tx| {
        let (r, gw, cfg) = (r.clone(), gw.clone(), cfg.clone());
        Box::pin(async move { insert(tx, &cfg, r, gw).await })
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"router": view(&created, auth.admin())})),
    ))
}

/// `GET /v2.0/routers`.
pub async fn router_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let all = db::list(svc.store(), KIND, None).await?;
    let views: Vec<Value> = all
        .iter()
        .filter(|r| visible(&auth, r))
        .map(|r| view(r, auth.admin()))
        .collect();
    let none = |_: &Value, _: &str, _: &[&str]| None;
    let views = list::filter(views, &q, ATTRS, &none)?;
    Ok(Json(list::respond(
        "routers",
        &super::collection_url(&svc, "routers"),
        views,
        &q,
        ATTRS,
    )?))
}

/// `GET /v2.0/routers/{id}`.
pub async fn router_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    let v = view(&r, auth.admin());
    Ok(Json(json!({"router": list::project(v, &list::fields(&q))})))
}

const UPDATE_ATTRS: &[&str] = &[
    "name",
    "admin_state_up",
    "external_gateway_info",
    "routes",
    "distributed",
    "ha",
    "description",
];

/// `PUT /v2.0/routers/{id}`.
pub async fn router_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("update_router"));
    }
    let m = body.entity("router")?;
    for k in m.keys() {
        if matches!(
            k.as_str(),
            "id" | "tenant_id" | "project_id" | "status" | "availability_zone_hints"
        ) {
            return Err(NeutronError::bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
    }
    only(&m, UPDATE_ATTRS)?;
    dvr_ha(&auth, &m, "update")?;
    let mut plain = Map::new();
    if let Some(n) = string(&m, "name", 255)? {
        plain.insert("name".into(), json!(n));
    }
    if let Some(d) = string(&m, "description", 255)? {
        plain.insert("description".into(), json!(d));
    }
    if let Some(b) = boolean(&m, "admin_state_up")? {
        plain.insert("admin_state_up".into(), json!(b));
    }
    let gw = gateway_attr(&auth, &m)?;
    let routes = match m.get("routes") {
        None => None,
        Some(v) => Some((routes_attr(v)?, v.clone())),
    };
    let cfg = svc.config().clone();
    let rid = r.id.clone();
    let updated = write(&svc, move |tx| {
        let (id, plain, gw, routes, cfg) = (
            rid.clone(),
            plain.clone(),
            gw.clone(),
            routes.clone(),
            cfg.clone(),
        );
        Box::pin(async move {
            let Some(mut r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            for (k, v) in plain {
                r.doc.insert(k, v);
            }
            if let Some(gw) = gw {
                refuse!(set_gateway(tx, &cfg, &mut r, gw).await?);
            }
            if let Some((routes, raw)) = routes {
                refuse!(check_routes(tx, &id, &routes, &raw).await?);
                r.doc.insert("routes".into(), routes_json(&routes));
            }
            db::save(tx, &mut r).await?;
            Ok(Ok(r))
        })
    })
    .await?;
    Ok(Json(json!({"router": view(&updated, auth.admin())})))
}

/// `DELETE /v2.0/routers/{id}`: 204; 409 `RouterInUse` while it has interfaces. Its gateway
/// port goes with it.
pub async fn router_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("delete_router"));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            if !interfaces(tx, &id).await?.is_empty() {
                return Ok(Err(NeutronError::conflict(
                    "RouterInUse",
                    format!("Router {id} still has ports"),
                )));
            }
            if !router_fips(tx, &id).await?.is_empty() {
                return Ok(Err(NeutronError::conflict(
                    "RouterInUse",
                    format!("Router {id} still has floating IPs"),
                )));
            }
            if let Some(gw) = r.str("_gw_port") {
                ports::remove_service_port(tx, gw).await?;
            }
            db::delete(tx, KIND, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `subnet_id` / `port_id` of an interface body (it is not wrapped).
fn interface_body(body: &Body) -> NeutronResult<(Option<String>, Option<String>)> {
    let Value::Object(m) = &body.0 else {
        return Err(bad_router("Either subnet_id or port_id must be specified"));
    };
    let get = |k: &str| -> NeutronResult<Option<String>> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(NeutronError::bad_request(format!(
                "Invalid input for {k}. Reason: '{other}' is not a valid UUID."
            ))),
        }
    };
    Ok((get("subnet_id")?, get("port_id")?))
}

/// `PUT /v2.0/routers/{id}/add_router_interface`: 200 with the interface.
pub async fn interface_add(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("add_router_interface"));
    }
    let (subnet_id, port_id) = interface_body(&body)?;
    match (&subnet_id, &port_id) {
        (Some(_), Some(_)) => return Err(bad_router("Cannot specify both subnet-id and port-id")),
        (None, None) => return Err(bad_router("Either subnet_id or port_id must be specified")),
        (Some(s), None) => {
            subnets::find(&svc, &auth, s).await?;
        }
        (None, Some(p)) => {
            let port = db::get(svc.store(), ports::KIND, p).await?;
            if !port.is_some_and(|p| auth.owns(&p.project_id)) {
                return Err(NeutronError::not_found(ports::KIND, p));
            }
        }
    }
    let cfg = svc.config().clone();
    let rid = r.id.clone();
    let info = write(&svc, move |tx| {
        let (rid, subnet_id, port_id, cfg) =
            (rid.clone(), subnet_id.clone(), port_id.clone(), cfg.clone());
        Box::pin(async move {
            let Some(r) = db::get_tx(tx, KIND, &rid).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &rid)));
            };
            match (subnet_id, port_id) {
                (Some(s), _) => add_subnet_interface(tx, &cfg, &r, &s).await,
                (None, Some(p)) => add_port_interface(tx, &r, &p).await,
                (None, None) => Ok(Err(bad_router(
                    "Either subnet_id or port_id must be specified",
                ))),
            }
        })
    })
    .await?;
    Ok(Json(info))
}

/// `PUT /v2.0/routers/{id}/remove_router_interface`: 200 with the interface removed.
pub async fn interface_remove(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("remove_router_interface"));
    }
    let (subnet_id, port_id) = interface_body(&body)?;
    let rid = r.id.clone();
    let info = write(&svc, move |tx| {
        let (rid, subnet_id, port_id) = (rid.clone(), subnet_id.clone(), port_id.clone());
        Box::pin(async move {
            let Some(r) = db::get_tx(tx, KIND, &rid).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &rid)));
            };
            remove_interface(tx, &r, port_id.as_deref(), subnet_id.as_deref()).await
        })
    })
    .await?;
    Ok(Json(info))
}
