//! `/v2.0/ports`: create (also in bulk, all or none), list (with `fixed_ips=ip_address=…` /
//! `fixed_ips=subnet_id=…` filters), show, update, delete. A port's MAC is unique on its
//! network and its addresses unique on their subnets: both are rows of the allocation tables
//! (`network_mac`, `network_ip_allocation`) claimed inside the write that creates or changes
//! the port, so concurrent creates can never share either. Binding attributes (`binding:*`)
//! follow Neutron's default policy: host, profile, VIF type and details are admin-only; the
//! VNIC type is the owner's. A port is ACTIVE once bound (to a host, or to its router) with its
//! admin state up.

use super::list;
use super::networks::{self, boolean, only, owner, string};
use super::write;
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body, Pairs};
use crate::ipam::{self, Cidr};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use strata_store::{from_sqlx, sqlx, Tx};

pub const KIND: &str = "port";

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/ports", get(port_list).post(port_create))
        .route(
            "/ports/{id}",
            get(port_show).put(port_update).delete(port_delete),
        )
}

/// Every attribute of the port view (what may be filtered and sorted on).
pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "network_id",
    "tenant_id",
    "project_id",
    "mac_address",
    "admin_state_up",
    "status",
    "device_id",
    "device_owner",
    "fixed_ips",
    "security_groups",
    "allowed_address_pairs",
    "port_security_enabled",
    "binding:host_id",
    "binding:vif_type",
    "binding:vif_details",
    "binding:vnic_type",
    "binding:profile",
    "extra_dhcp_opts",
    "ip_allocation",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

/// The binding attributes only admins see.
const ADMIN_ONLY: &[&str] = &[
    "binding:host_id",
    "binding:vif_type",
    "binding:vif_details",
    "binding:profile",
];

/// Neutron's VNIC types.
const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
];

/// Neutron's `max_allowed_address_pair`.
const MAX_ADDRESS_PAIRS: usize = 10;
/// Neutron's `max_fixed_ips_per_port`.
const MAX_FIXED_IPS: usize = 5;

/// The port view; binding details only for admins.
pub fn view(r: &Resource, admin: bool) -> Value {
    view_owned(r.clone(), admin)
}

/// [`view`], consuming the resource.
fn view_owned(r: Resource, admin: bool) -> Value {
    let mut m = networks::standard_owned(r);
    if !admin {
        for k in ADMIN_ONLY {
            m.remove(*k);
        }
    }
    Value::Object(m)
}

/// The port's status after a change. Router ports are realised by the control plane's own L3
/// service ([`crate::dataplane::RouterAgent`]), so they are ACTIVE while administratively up.
/// A port bound to a compute host is DOWN until that host's agent reports it plugged
/// ([`crate::NetworkService::report_port`]); it drops back to DOWN when it moves to another
/// host, is unbound or set administratively down, and keeps what the agent reported otherwise.
fn status(doc: &Map<String, Value>, prev_host: Option<&str>) -> &'static str {
    let up = doc
        .get("admin_state_up")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let router_port = doc
        .get("device_owner")
        .and_then(Value::as_str)
        .is_some_and(|o| o.starts_with("network:router_"));
    if router_port {
        return if up { "ACTIVE" } else { "DOWN" };
    }
    let host = doc
        .get("binding:host_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    if host.is_empty() || !up || prev_host != Some(host) {
        return "DOWN";
    }
    match doc.get("status").and_then(Value::as_str) {
        Some("ACTIVE") => "ACTIVE",
        Some("BUILD") => "BUILD",
        _ => "DOWN",
    }
}

/// Sets the binding's VIF type and details and the status from the host and admin state;
/// `prev_host` is the host the port was bound to before this change (`None` for a new port).
fn settle(doc: &mut Map<String, Value>, prev_host: Option<&str>) {
    let host = doc
        .get("binding:host_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let bound = !host.is_empty();
    let moved = prev_host != Some(host);
    let filter = doc
        .get("port_security_enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !bound {
        doc.insert("binding:vif_type".into(), json!("unbound"));
        doc.insert("binding:vif_details".into(), json!({}));
    } else if moved || doc.get("binding:vif_type").and_then(Value::as_str) == Some("unbound") {
        // Bound by the control plane; the host's agent may refine the details when it plugs.
        doc.insert("binding:vif_type".into(), json!("ovs"));
        doc.insert(
            "binding:vif_details".into(),
            json!({"port_filter": filter, "connectivity": "l2"}),
        );
    }
    let s = status(doc, prev_host);
    doc.insert("status".into(), json!(s));
}

/// Whether the caller may see the port: its own, one on a network it owns, or any for admins
/// (Neutron's `admin_owner_or_network_owner`).
fn visible(auth: &Auth, r: &Resource, network_owner: Option<&str>) -> bool {
    auth.owns(&r.project_id) || network_owner.is_some_and(|p| p == auth.project())
}

/// The owner of the port's network.
async fn network_owner(svc: &NetworkService, r: &Resource) -> NeutronResult<Option<String>> {
    let Some(net) = r.str("network_id") else {
        return Ok(None);
    };
    Ok(db::get(svc.store(), networks::KIND, net)
        .await?
        .map(|n| n.project_id))
}

/// The port `id` if the caller may see it, with whether the caller owns its network; 404
/// otherwise.
async fn find(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<(Resource, bool)> {
    let Some(r) = db::get(svc.store(), KIND, id).await? else {
        return Err(NeutronError::not_found(KIND, id));
    };
    let net_owner = network_owner(svc, &r).await?;
    if !visible(auth, &r, net_owner.as_deref()) {
        return Err(NeutronError::not_found(KIND, id));
    }
    let owns_net = auth.admin() || net_owner.as_deref() == Some(auth.project());
    Ok((r, owns_net))
}

/// Ports of routers and floating IPs, which their owners remove.
const SERVICE_OWNERS: &[(&str, &str)] = &[
    ("network:router_interface", "router"),
    ("network:router_interface_distributed", "router"),
    ("network:ha_router_replicated_interface", "router"),
    ("network:router_centralized_snat", "router"),
    ("network:router_gateway", "router"),
    ("network:floatingip", "floatingip"),
];

/// Ports Neutron trusts (`network:*` owners) get no security groups by default.
fn trusted(device_owner: &str) -> bool {
    device_owner.starts_with("network:")
}

// ------------------------------------------------------------------ MACs

fn mac_in_use(network_id: &str, mac: &str) -> NeutronError {
    NeutronError::conflict(
        "MacAddressInUse",
        format!("Unable to complete operation for network {network_id}. The mac address {mac} is in use."),
    )
}

/// A MAC attribute normalised to lower-case colon form; 400 unless a unicast, non-zero MAC.
fn mac_attr(key: &str, v: &Value) -> NeutronResult<String> {
    let bad = || {
        NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{}' is not a valid MAC address.",
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        ))
    };
    let s = v.as_str().ok_or_else(bad)?;
    let m = ipam::parse_mac(s).ok_or_else(bad)?;
    if m == [0; 6] || m[0] & 1 == 1 {
        return Err(bad());
    }
    Ok(m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// A MAC from `base` (Neutron's `base_mac`): its first three octets, and its later octets
/// where they are not `00`; random elsewhere.
fn random_mac(base: &str) -> String {
    let b = ipam::parse_mac(base).unwrap_or([0xfa, 0x16, 0x3e, 0, 0, 0]);
    let mut out = b;
    for (i, o) in out.iter_mut().enumerate().skip(3) {
        if b[i] == 0 {
            *o = rand::random::<u8>();
        }
    }
    out[0] &= 0xfe;
    out.iter()
        .map(|o| format!("{o:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn mac_taken(tx: &mut Tx, network_id: &str, mac: &str) -> strata_core::Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM network_mac WHERE network_id = $1 AND mac_address = $2")
            .bind(network_id)
            .bind(mac)
            .fetch_optional(tx.conn())
            .await
            .map_err(from_sqlx)?
            .is_some(),
    )
}

/// Claims `mac` (or a generated one) on the network for the port inside the write.
async fn claim_mac(
    tx: &mut Tx,
    base_mac: &str,
    network_id: &str,
    port_id: &str,
    asked: Option<&str>,
) -> strata_core::Result<NeutronResult<String>> {
    let mac = match asked {
        Some(m) => {
            if mac_taken(tx, network_id, m).await? {
                return Ok(Err(mac_in_use(network_id, m)));
            }
            m.to_string()
        }
        None => {
            let mut found = None;
            for _ in 0..16 {
                let m = random_mac(base_mac);
                if !mac_taken(tx, network_id, &m).await? {
                    found = Some(m);
                    break;
                }
            }
            match found {
                Some(m) => m,
                None => {
                    return Ok(Err(NeutronError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "NetworkMacAddressGenerationFailure",
                        format!("Unable to generate unique mac on network {network_id}."),
                    )))
                }
            }
        }
    };
    sqlx::query("INSERT INTO network_mac (network_id, mac_address, port_id) VALUES ($1, $2, $3)")
        .bind(network_id)
        .bind(&mac)
        .bind(port_id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(Ok(mac))
}

async fn release_mac(tx: &mut Tx, port_id: &str) -> strata_core::Result<()> {
    sqlx::query("DELETE FROM network_mac WHERE port_id = $1")
        .bind(port_id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

// ------------------------------------------------------------------ fixed IPs

/// One requested fixed IP: by subnet, by address, or both.
#[derive(Debug, Clone)]
struct FixedIp {
    subnet_id: Option<String>,
    ip: Option<IpAddr>,
}

fn fixed_ips_attr(v: &Value) -> NeutronResult<Vec<FixedIp>> {
    let Value::Array(items) = v else {
        return Err(NeutronError::bad_request(format!(
            "Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: '{v}'."
        )));
    };
    if items.len() > MAX_FIXED_IPS {
        return Err(NeutronError::bad_request(
            "Exceeded maximum amount of fixed ips per port.",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        let Value::Object(m) = i else {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: '{i}'."
            )));
        };
        if let Some(k) = m.keys().find(|k| *k != "subnet_id" && *k != "ip_address") {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for fixed_ips. Reason: Key '{k}' is not a valid fixed IP attribute."
            )));
        }
        let subnet_id = match m.get("subnet_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(NeutronError::bad_request(format!(
                    "Invalid input for fixed_ips. Reason: '{other}' is not a valid UUID."
                )))
            }
        };
        let ip = match m.get("ip_address") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse::<IpAddr>().map_err(|_| {
                NeutronError::bad_request(format!(
                    "Invalid input for fixed_ips. Reason: '{s}' is not a valid IP address."
                ))
            })?),
            Some(other) => {
                return Err(NeutronError::bad_request(format!(
                    "Invalid input for fixed_ips. Reason: '{other}' is not a valid IP address."
                )))
            }
        };
        if subnet_id.is_none() && ip.is_none() {
            return Err(NeutronError::invalid_input(
                "IP allocation requires subnet_id or ip_address",
            ));
        }
        out.push(FixedIp { subnet_id, ip });
    }
    Ok(out)
}

/// The subnets of a network inside the write, oldest first.
async fn subnets_of(tx: &mut Tx, network_id: &str) -> strata_core::Result<Vec<Resource>> {
    let mut v: Vec<Resource> = db::list_tx(tx, "subnet", None)
        .await?
        .into_iter()
        .filter(|s| s.str("network_id") == Some(network_id))
        .collect();
    v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(v)
}

fn version(subnet: &Resource) -> i64 {
    subnet
        .doc
        .get("ip_version")
        .and_then(Value::as_i64)
        .unwrap_or(4)
}

/// Neutron's answer to an address taken on the network.
fn in_use(err: NeutronError, network_id: &str, ip: IpAddr) -> NeutronError {
    if err.kind == "IpAddressAlreadyAllocated" {
        NeutronError::conflict(
            "IpAddressInUse",
            format!(
                "Unable to complete operation for network {network_id}. The IP address {ip} is in use."
            ),
        )
    } else {
        err
    }
}

/// Allocates the requested fixed IPs (or, with `None`, the defaults: an address of the first
/// IPv4 subnet with room, one of the first stateful IPv6 subnet with room, and the automatic
/// address of every SLAAC / stateless DHCPv6 subnet) to the port inside the write.
async fn allocate_ips(
    tx: &mut Tx,
    network_id: &str,
    port_id: &str,
    mac: &str,
    asked: Option<&[FixedIp]>,
    device_owner: &str,
) -> strata_core::Result<NeutronResult<Vec<Value>>> {
    let subnets = subnets_of(tx, network_id).await?;
    let mut out = Vec::new();
    match asked {
        Some(list) => {
            for f in list {
                let subnet = match &f.subnet_id {
                    Some(sid) => match subnets.iter().find(|s| &s.id == sid) {
                        Some(s) => s.clone(),
                        None => {
                            if db::get_tx(tx, "subnet", sid).await?.is_none() {
                                return Ok(Err(NeutronError::not_found("subnet", sid)));
                            }
                            return Ok(Err(NeutronError::invalid_input(format!(
                                "Failed to create port on network {network_id}, because \
                                 fixed_ips included invalid subnet {sid}"
                            ))));
                        }
                    },
                    None => {
                        let ip = f.ip.expect("address or subnet");
                        match subnets
                            .iter()
                            .find(|s| ipam::cidr_of(s).is_some_and(|c: Cidr| c.contains(ip)))
                        {
                            Some(s) => s.clone(),
                            None => {
                                return Ok(Err(NeutronError::new(
                                    StatusCode::BAD_REQUEST,
                                    "InvalidIpForNetwork",
                                    format!(
                                        "IP address {ip} is not a valid IP for any of the \
                                         subnets on the specified network."
                                    ),
                                )))
                            }
                        }
                    }
                };
                match ipam::allocate(tx, &subnet, port_id, network_id, f.ip, Some(mac)).await? {
                    Ok(ip) => {
                        out.push(json!({"subnet_id": subnet.id, "ip_address": ip.to_string()}))
                    }
                    Err(e) => {
                        return Ok(Err(match f.ip {
                            Some(ip) => in_use(e, network_id, ip),
                            None => e,
                        }))
                    }
                }
            }
        }
        None => {
            let router = device_owner.starts_with("network:router");
            let v4: Vec<&Resource> = subnets.iter().filter(|s| version(s) == 4).collect();
            let v6: Vec<&Resource> = subnets
                .iter()
                .filter(|s| version(s) == 6 && !ipam::is_auto_address(s))
                .collect();
            for group in [v4, v6] {
                let mut last_err = None;
                let mut done = false;
                for s in &group {
                    match ipam::allocate(tx, s, port_id, network_id, None, Some(mac)).await? {
                        Ok(ip) => {
                            out.push(json!({"subnet_id": s.id, "ip_address": ip.to_string()}));
                            done = true;
                            break;
                        }
                        Err(e) => last_err = Some(e),
                    }
                }
                if !done {
                    if let Some(e) = last_err {
                        return Ok(Err(e));
                    }
                }
            }
            if !router {
                for s in subnets.iter().filter(|s| ipam::is_auto_address(s)) {
                    match ipam::allocate(tx, s, port_id, network_id, None, Some(mac)).await? {
                        Ok(ip) => {
                            out.push(json!({"subnet_id": s.id, "ip_address": ip.to_string()}))
                        }
                        Err(e) => return Ok(Err(e)),
                    }
                }
            }
        }
    }
    Ok(Ok(out))
}

// ------------------------------------------------------------------ other attributes

fn sg_not_found(ids: &[String]) -> NeutronError {
    NeutronError::new(
        StatusCode::NOT_FOUND,
        "SecurityGroupNotFound",
        format!("Security group {} does not exist", ids.join(", ")),
    )
}

fn security_groups_attr(v: &Value) -> NeutronResult<Vec<String>> {
    match v {
        Value::Null => Ok(vec![]),
        Value::Array(items) => {
            let mut out: Vec<String> = Vec::new();
            for i in items {
                let Some(s) = i.as_str() else {
                    return Err(NeutronError::bad_request(format!(
                        "Invalid input for security_groups. Reason: '{i}' is not a valid UUID."
                    )));
                };
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            Ok(out)
        }
        other => Err(NeutronError::bad_request(format!(
            "Invalid input for security_groups. Reason: '{other}' is not a list."
        ))),
    }
}

/// The security groups of a port of `project` inside the write: the asked ones, which must
/// exist and belong to the project (any for admins), or the project's default group.
async fn resolve_security_groups(
    tx: &mut Tx,
    admin: bool,
    project: &str,
    asked: Option<Vec<String>>,
    port_security: bool,
    device_owner: &str,
) -> strata_core::Result<NeutronResult<Vec<String>>> {
    match asked {
        Some(ids) => {
            if !ids.is_empty() && !port_security {
                return Ok(Err(port_security_required()));
            }
            let mut missing = Vec::new();
            for id in &ids {
                match db::get_tx(tx, "security_group", id).await? {
                    Some(sg) if admin || sg.project_id == project => {}
                    _ => missing.push(id.clone()),
                }
            }
            if !missing.is_empty() {
                return Ok(Err(sg_not_found(&missing)));
            }
            Ok(Ok(ids))
        }
        None if !port_security || trusted(device_owner) => Ok(Ok(vec![])),
        None => Ok(Ok(vec![
            super::security_groups::ensure_default(tx, project).await?,
        ])),
    }
}

fn port_security_required() -> NeutronError {
    NeutronError::new(
        StatusCode::BAD_REQUEST,
        "PortSecurityAndIPRequiredForSecurityGroups",
        "Port security must be enabled and port must have an IP address in order to use \
         security groups.",
    )
}

fn address_pairs_need_port_security() -> NeutronError {
    NeutronError::conflict(
        "AddressPairAndPortSecurityRequired",
        "Port Security must be enabled in order to have allowed address pairs on a port.",
    )
}

/// Allowed address pairs `[{ip_address, mac_address?}]`; a missing MAC is the port's.
fn address_pairs_attr(v: &Value) -> NeutronResult<Vec<(String, Option<String>)>> {
    let items = match v {
        Value::Null => return Ok(vec![]),
        Value::Array(items) => items,
        other => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for allowed_address_pairs. Reason: '{other}' is not a list."
            )))
        }
    };
    if items.len() > MAX_ADDRESS_PAIRS {
        return Err(NeutronError::new(
            StatusCode::BAD_REQUEST,
            "AllowedAddressPairExhausted",
            format!("The number of allowed address pair exceeds the maximum {MAX_ADDRESS_PAIRS}."),
        ));
    }
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for i in items {
        let Value::Object(m) = i else {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for allowed_address_pairs. Reason: '{i}' is not a dictionary."
            )));
        };
        if let Some(k) = m.keys().find(|k| *k != "ip_address" && *k != "mac_address") {
            return Err(NeutronError::bad_request(format!(
                "Unrecognized attribute(s) '{k}'"
            )));
        }
        let ip = match m.get("ip_address") {
            Some(Value::String(s)) => {
                if s.parse::<IpAddr>().is_err() && Cidr::parse(s).is_none() {
                    return Err(NeutronError::bad_request(format!(
                        "Invalid input for allowed_address_pairs. Reason: '{s}' is not a valid IP \
                         address."
                    )));
                }
                s.clone()
            }
            _ => {
                return Err(NeutronError::new(
                    StatusCode::BAD_REQUEST,
                    "AllowedAddressPairsMissingIP",
                    "AllowedAddressPair must contain ip_address",
                ))
            }
        };
        let mac = match m.get("mac_address") {
            None | Some(Value::Null) => None,
            Some(v) => Some(mac_attr("allowed_address_pairs", v)?),
        };
        if out.iter().any(|(i2, m2)| *i2 == ip && *m2 == mac) {
            return Err(NeutronError::new(
                StatusCode::BAD_REQUEST,
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {} ip_address {ip}.",
                    mac.clone().unwrap_or_default()
                ),
            ));
        }
        out.push((ip, mac));
    }
    Ok(out)
}

fn pairs_json(pairs: &[(String, Option<String>)], port_mac: &str) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(ip, mac)| {
                json!({"ip_address": ip, "mac_address": mac.clone().unwrap_or_else(|| port_mac.to_string())})
            })
            .collect(),
    )
}

/// `extra_dhcp_opts`: `[{opt_name, opt_value, ip_version}]`.
fn dhcp_opts_attr(v: &Value) -> NeutronResult<Vec<Value>> {
    let items = match v {
        Value::Null => return Ok(vec![]),
        Value::Array(items) => items,
        other => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for extra_dhcp_opts. Reason: '{other}' is not a list."
            )))
        }
    };
    let mut out = Vec::new();
    for i in items {
        let bad = || {
            NeutronError::bad_request(format!(
                "Invalid input for extra_dhcp_opts. Reason: Invalid data format for extra-dhcp-opt: {i}."
            ))
        };
        let Value::Object(m) = i else {
            return Err(bad());
        };
        let name = m.get("opt_name").and_then(Value::as_str).ok_or_else(bad)?;
        let value = match m.get("opt_value") {
            None | Some(Value::Null) => Value::Null,
            Some(Value::String(s)) => json!(s),
            Some(_) => return Err(bad()),
        };
        let ipv = match m.get("ip_version") {
            None | Some(Value::Null) => 4,
            Some(v) => match v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(n @ (4 | 6)) => n,
                _ => return Err(bad()),
            },
        };
        out.push(json!({"opt_name": name, "opt_value": value, "ip_version": ipv}));
    }
    Ok(out)
}

/// Merges DHCP option changes into the port's (same name and version replaced; a null value
/// removes), as Neutron updates them.
fn merge_dhcp_opts(old: &Value, changes: Vec<Value>) -> Value {
    let mut opts: Vec<Value> = old.as_array().cloned().unwrap_or_default();
    for c in changes {
        let key = |o: &Value| (o["opt_name"].clone(), o["ip_version"].clone());
        opts.retain(|o| key(o) != key(&c));
        if !c["opt_value"].is_null() {
            opts.push(c);
        }
    }
    Value::Array(opts)
}

fn vnic_type_attr(m: &Map<String, Value>) -> NeutronResult<Option<String>> {
    match string(m, "binding:vnic_type", 255)? {
        None => Ok(None),
        Some(v) if VNIC_TYPES.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(NeutronError::bad_request(format!(
            "Invalid input for binding:vnic_type. Reason: '{v}' is not in {:?}.",
            VNIC_TYPES
        ))),
    }
}

fn profile_attr(v: &Value) -> NeutronResult<Value> {
    match v {
        Value::Null => Ok(json!({})),
        Value::Object(_) => Ok(v.clone()),
        other => Err(NeutronError::bad_request(format!(
            "Invalid input for binding:profile. Reason: '{other}' is not a dictionary."
        ))),
    }
}

fn tags_attr(m: &Map<String, Value>) -> NeutronResult<Option<Value>> {
    match m.get("tags") {
        None => Ok(None),
        Some(Value::Array(t)) if t.iter().all(Value::is_string) => {
            Ok(Some(Value::Array(t.clone())))
        }
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for tags. Reason: '{other}' is not a list of strings."
        ))),
    }
}

/// Attributes no request may set.
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "binding:vif_type",
    "binding:vif_details",
    "created_at",
    "updated_at",
    "revision_number",
    "ip_allocation",
];

// ------------------------------------------------------------------ create

const CREATE_ATTRS: &[&str] = &[
    "name",
    "network_id",
    "tenant_id",
    "project_id",
    "mac_address",
    "admin_state_up",
    "device_id",
    "device_owner",
    "fixed_ips",
    "security_groups",
    "allowed_address_pairs",
    "port_security_enabled",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "extra_dhcp_opts",
    "description",
    "tags",
];

/// A validated create request; addresses, MAC and groups are taken inside the write.
#[derive(Clone)]
struct Plan {
    port: Resource,
    network_id: String,
    mac: Option<String>,
    fixed_ips: Option<Vec<FixedIp>>,
    security_groups: Option<Vec<String>>,
    pairs: Vec<(String, Option<String>)>,
}

async fn plan(svc: &NetworkService, auth: &Auth, m: &Map<String, Value>) -> NeutronResult<Plan> {
    if let Some(k) = READ_ONLY.iter().find(|k| m.contains_key(**k)) {
        return Err(NeutronError::bad_request(format!(
            "Attribute '{k}' not allowed in POST"
        )));
    }
    only(m, CREATE_ATTRS)?;
    let network_id = match m.get("network_id") {
        Some(Value::String(n)) => n.clone(),
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for network_id. Reason: '{other}' is not a valid UUID."
            )))
        }
        None => {
            return Err(NeutronError::bad_request(
                "Failed to parse request. Required attribute 'network_id' not specified",
            ))
        }
    };
    let project = owner(auth, m)?;
    let net = networks::find(svc, auth, &network_id).await?;
    let net_owner = auth.admin() || net.project_id == auth.project();
    let device_owner = string(m, "device_owner", 255)?.unwrap_or_default();
    if trusted(&device_owner) && !net_owner {
        return Err(NeutronError::policy("create_port:device_owner"));
    }
    let mac = match m.get("mac_address") {
        None | Some(Value::Null) => None,
        Some(v) => {
            if !net_owner {
                return Err(NeutronError::policy("create_port:mac_address"));
            }
            Some(mac_attr("mac_address", v)?)
        }
    };
    let fixed_ips = match m.get("fixed_ips") {
        None => None,
        Some(v) => {
            let f = fixed_ips_attr(v)?;
            if f.iter().any(|f| f.ip.is_some()) && !net_owner {
                return Err(NeutronError::policy("create_port:fixed_ips:ip_address"));
            }
            if !net_owner && !net.flag("shared") && !f.is_empty() {
                return Err(NeutronError::policy("create_port:fixed_ips:subnet_id"));
            }
            Some(f)
        }
    };
    let port_security = match boolean(m, "port_security_enabled")? {
        Some(b) => {
            if !net_owner {
                return Err(NeutronError::policy("create_port:port_security_enabled"));
            }
            b
        }
        None => net
            .doc
            .get("port_security_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    };
    let security_groups = match m.get("security_groups") {
        None => None,
        Some(v) => Some(security_groups_attr(v)?),
    };
    if security_groups.as_ref().is_some_and(|s| !s.is_empty()) && !port_security {
        return Err(port_security_required());
    }
    let pairs = match m.get("allowed_address_pairs") {
        None => vec![],
        Some(v) => {
            let p = address_pairs_attr(v)?;
            if !p.is_empty() && !net_owner {
                return Err(NeutronError::policy("create_port:allowed_address_pairs"));
            }
            p
        }
    };
    if !pairs.is_empty() && !port_security {
        return Err(address_pairs_need_port_security());
    }
    let host = string(m, "binding:host_id", 255)?;
    if host.is_some() && !auth.admin() {
        return Err(NeutronError::policy("create_port:binding:host_id"));
    }
    let profile = match m.get("binding:profile") {
        None => json!({}),
        Some(v) => {
            if !auth.admin() {
                return Err(NeutronError::policy("create_port:binding:profile"));
            }
            profile_attr(v)?
        }
    };
    let mut doc = Map::new();
    doc.insert(
        "name".into(),
        json!(string(m, "name", 255)?.unwrap_or_default()),
    );
    doc.insert("network_id".into(), json!(network_id));
    doc.insert(
        "admin_state_up".into(),
        json!(boolean(m, "admin_state_up")?.unwrap_or(true)),
    );
    doc.insert("mac_address".into(), json!(""));
    doc.insert(
        "device_id".into(),
        json!(string(m, "device_id", 255)?.unwrap_or_default()),
    );
    doc.insert("device_owner".into(), json!(device_owner));
    doc.insert("fixed_ips".into(), json!([]));
    doc.insert("security_groups".into(), json!([]));
    doc.insert("allowed_address_pairs".into(), json!([]));
    doc.insert("port_security_enabled".into(), json!(port_security));
    doc.insert("binding:host_id".into(), json!(host.unwrap_or_default()));
    doc.insert(
        "binding:vnic_type".into(),
        json!(vnic_type_attr(m)?.unwrap_or_else(|| "normal".into())),
    );
    doc.insert("binding:profile".into(), profile);
    doc.insert(
        "extra_dhcp_opts".into(),
        Value::Array(match m.get("extra_dhcp_opts") {
            None => vec![],
            Some(v) => dhcp_opts_attr(v)?,
        }),
    );
    doc.insert("ip_allocation".into(), json!("immediate"));
    doc.insert(
        "description".into(),
        json!(string(m, "description", 255)?.unwrap_or_default()),
    );
    doc.insert("tags".into(), tags_attr(m)?.unwrap_or_else(|| json!([])));
    settle(&mut doc, None);
    Ok(Plan {
        port: Resource::new(KIND, strata_core::ids::uuid(), project, doc),
        network_id,
        mac,
        fixed_ips,
        security_groups,
        pairs,
    })
}

/// Takes the MAC, addresses and groups of a planned port and inserts it, inside the write.
async fn realise(
    tx: &mut Tx,
    base_mac: &str,
    admin: bool,
    p: Plan,
) -> strata_core::Result<NeutronResult<Resource>> {
    let Plan {
        mut port,
        network_id,
        mac,
        fixed_ips,
        security_groups,
        pairs,
    } = p;
    if db::get_tx(tx, networks::KIND, &network_id).await?.is_none() {
        return Ok(Err(NeutronError::not_found(networks::KIND, &network_id)));
    }
    let mac = match claim_mac(tx, base_mac, &network_id, &port.id, mac.as_deref()).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let device_owner = port.str("device_owner").unwrap_or("").to_string();
    let ips = match allocate_ips(
        tx,
        &network_id,
        &port.id,
        &mac,
        fixed_ips.as_deref(),
        &device_owner,
    )
    .await?
    {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let port_security = port.flag("port_security_enabled");
    let sgs = match resolve_security_groups(
        tx,
        admin,
        &port.project_id,
        security_groups,
        port_security,
        &device_owner,
    )
    .await?
    {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    port.doc.insert("mac_address".into(), json!(mac));
    port.doc.insert("fixed_ips".into(), Value::Array(ips));
    port.doc.insert("security_groups".into(), json!(sgs));
    port.doc
        .insert("allowed_address_pairs".into(), pairs_json(&pairs, &mac));
    db::insert(tx, &port).await?;
    Ok(Ok(port))
}

/// `POST /v2.0/ports`: 201; a bulk body creates all or none.
pub async fn port_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_port"));
    }
    let (items, bulk) = body.entities("port", "ports")?;
    let mut plans = Vec::with_capacity(items.len());
    for m in &items {
        plans.push(plan(&svc, &auth, m).await?);
    }
    let cfg = svc.config().clone();
    let admin = auth.admin();
    let created = write(&svc, move |tx| {
        let (plans, cfg) = (plans.clone(), cfg.clone());
        Box::pin(async move {
            let mut per_project: Vec<(String, i64)> = Vec::new();
            for p in &plans {
                match per_project
                    .iter_mut()
                    .find(|(pr, _)| *pr == p.port.project_id)
                {
                    Some((_, n)) => *n += 1,
                    None => per_project.push((p.port.project_id.clone(), 1)),
                }
            }
            for (p, n) in &per_project {
                if let Err(e) = crate::quota::check(tx, &cfg, p, "port", *n).await? {
                    return Ok(Err(e));
                }
            }
            let mut out = Vec::with_capacity(plans.len());
            for p in plans {
                match realise(tx, &cfg.base_mac, admin, p).await? {
                    Ok(r) => out.push(r),
                    Err(e) => return Ok(Err(e)),
                }
            }
            Ok(Ok(out))
        })
    })
    .await?;
    let views: Vec<Value> = created.iter().map(|r| view(r, admin)).collect();
    let body = if bulk {
        json!({ "ports": views })
    } else {
        json!({ "port": views[0] })
    };
    Ok((StatusCode::CREATED, Json(body)))
}

// ------------------------------------------------------------------ list and show

/// `fixed_ips=ip_address=…`, `fixed_ips=subnet_id=…`, `fixed_ips=ip_address_substr=…`: a port
/// matches when one of its addresses satisfies every kind given (values of a kind OR-ed).
fn fixed_ips_match(v: &Value, wants: &[&str]) -> bool {
    let mut ips = Vec::new();
    let mut subnets = Vec::new();
    let mut substrs = Vec::new();
    for w in wants {
        match w.split_once('=') {
            Some(("ip_address", x)) => ips.push(x),
            Some(("subnet_id", x)) => subnets.push(x),
            Some(("ip_address_substr", x)) => substrs.push(x),
            _ => return false,
        }
    }
    v["fixed_ips"].as_array().is_some_and(|all| {
        all.iter().any(|f| {
            let ip = f["ip_address"].as_str().unwrap_or("");
            let sid = f["subnet_id"].as_str().unwrap_or("");
            (ips.is_empty() || ips.iter().any(|x| same_ip(x, ip)))
                && (subnets.is_empty() || subnets.contains(&sid))
                && (substrs.is_empty() || substrs.iter().any(|x| ip.contains(*x)))
        })
    })
}

fn same_ip(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `GET /v2.0/ports`. The caller's ports and the ports on its networks (all for admins),
/// read through indexed queries: `network_id` and `device_id` filters and, when the order is
/// by id alone (the default), the page itself (marker, limit, direction) are pushed into
/// SQL; other filters are applied to the views batch by batch until the page is full.
pub async fn port_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let order = list::order(&q, ATTRS)?;
    let limit = list::limit(&q)?;
    let admin = auth.admin();
    let or_networks = if admin {
        Vec::new()
    } else {
        db::ids_of(svc.store(), networks::KIND, auth.project()).await?
    };
    let values = |k: &str| -> Vec<&str> {
        q.iter()
            .filter(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let (network_ids, device_ids) = (values("network_id"), values("device_id"));
    let mut scan = db::Scan {
        kind: KIND,
        owner: (!admin).then(|| auth.project()),
        or_networks: &or_networks,
        network_ids: &network_ids,
        device_ids: &device_ids,
        ..Default::default()
    };
    let special = |v: &Value, k: &str, wants: &[&str]| -> Option<bool> {
        (k == "fixed_ips").then(|| fixed_ips_match(v, wants))
    };
    let url = super::collection_url(&svc, "ports");
    let [("id", asc)] = order.as_slice() else {
        let views = db::scan(svc.store(), &scan)
            .await?
            .into_iter()
            .map(|r| view_owned(r, admin))
            .collect();
        let views = list::filter(views, &q, ATTRS, &special)?;
        return Ok(Json(list::respond("ports", &url, views, &q, ATTRS)?));
    };
    let reverse = list::reverse(&q);
    let marker = list::marker(&q);
    if let Some(m) = marker {
        find(&svc, &auth, m).await?;
    }
    scan.desc = *asc == reverse;
    // One more than the page, to know whether another follows.
    let want = limit.map(|l| l + 1);
    let batch = want.map(|w| (w * 2).max(256));
    scan.limit = batch;
    let mut page = Vec::new();
    let mut after = marker.map(str::to_string);
    loop {
        let this = db::Scan {
            after: after.as_deref(),
            ..scan
        };
        let rows = db::scan(svc.store(), &this).await?;
        let n = rows.len();
        let next = rows.last().map(|r| r.id.clone());
        let views = rows.into_iter().map(|r| view_owned(r, admin)).collect();
        page.extend(list::filter(views, &q, ATTRS, &special)?);
        if want.is_some_and(|w| page.len() >= w) || batch.is_none_or(|b| n < b) {
            break;
        }
        after = next;
    }
    let more = want.is_some_and(|w| page.len() >= w);
    if let Some(l) = limit {
        page.truncate(l);
    }
    if reverse {
        page.reverse();
    }
    Ok(Json(list::finish("ports", &url, page, more, &q)))
}

/// `GET /v2.0/ports/{id}`.
pub async fn port_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let (r, _) = find(&svc, &auth, &id).await?;
    let v = view(&r, auth.admin());
    Ok(Json(json!({"port": list::project(v, &list::fields(&q))})))
}

// ------------------------------------------------------------------ update

const UPDATE_ATTRS: &[&str] = &[
    "name",
    "mac_address",
    "admin_state_up",
    "device_id",
    "device_owner",
    "fixed_ips",
    "security_groups",
    "allowed_address_pairs",
    "port_security_enabled",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "extra_dhcp_opts",
    "description",
];

/// A validated update; what depends on the stored port is applied inside the write.
#[derive(Clone, Default)]
struct Changes {
    plain: Map<String, Value>,
    mac: Option<String>,
    fixed_ips: Option<Vec<FixedIp>>,
    security_groups: Option<Vec<String>>,
    port_security: Option<bool>,
    pairs: Option<Vec<(String, Option<String>)>>,
    dhcp_opts: Option<Vec<Value>>,
}

fn changes(auth: &Auth, owns_net: bool, m: &Map<String, Value>) -> NeutronResult<Changes> {
    for k in m.keys() {
        if READ_ONLY.contains(&k.as_str())
            || matches!(k.as_str(), "network_id" | "tenant_id" | "project_id")
        {
            return Err(NeutronError::bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
    }
    only(m, UPDATE_ATTRS)?;
    let mut c = Changes::default();
    for (k, max) in [("name", 255), ("description", 255), ("device_id", 255)] {
        if let Some(v) = string(m, k, max)? {
            c.plain.insert(k.into(), json!(v));
        }
    }
    if let Some(d) = string(m, "device_owner", 255)? {
        if trusted(&d) && !owns_net {
            return Err(NeutronError::policy("update_port:device_owner"));
        }
        c.plain.insert("device_owner".into(), json!(d));
    }
    if let Some(b) = boolean(m, "admin_state_up")? {
        c.plain.insert("admin_state_up".into(), json!(b));
    }
    if let Some(v) = vnic_type_attr(m)? {
        c.plain.insert("binding:vnic_type".into(), json!(v));
    }
    if m.contains_key("binding:host_id") {
        if !auth.admin() {
            return Err(NeutronError::policy("update_port:binding:host_id"));
        }
        let h = match m.get("binding:host_id") {
            Some(Value::Null) => String::new(),
            _ => string(m, "binding:host_id", 255)?.unwrap_or_default(),
        };
        c.plain.insert("binding:host_id".into(), json!(h));
    }
    if let Some(v) = m.get("binding:profile") {
        if !auth.admin() {
            return Err(NeutronError::policy("update_port:binding:profile"));
        }
        c.plain.insert("binding:profile".into(), profile_attr(v)?);
    }
    if let Some(v) = m.get("mac_address") {
        if !auth.admin() {
            return Err(NeutronError::policy("update_port:mac_address"));
        }
        c.mac = Some(mac_attr("mac_address", v)?);
    }
    if let Some(v) = m.get("fixed_ips") {
        let f = fixed_ips_attr(v)?;
        if f.iter().any(|f| f.ip.is_some()) && !owns_net {
            return Err(NeutronError::policy("update_port:fixed_ips:ip_address"));
        }
        c.fixed_ips = Some(f);
    }
    if let Some(v) = m.get("security_groups") {
        c.security_groups = Some(security_groups_attr(v)?);
    }
    if let Some(b) = boolean(m, "port_security_enabled")? {
        if !owns_net {
            return Err(NeutronError::policy("update_port:port_security_enabled"));
        }
        c.port_security = Some(b);
    }
    if let Some(v) = m.get("allowed_address_pairs") {
        let p = address_pairs_attr(v)?;
        if !owns_net {
            return Err(NeutronError::policy("update_port:allowed_address_pairs"));
        }
        c.pairs = Some(p);
    }
    if let Some(v) = m.get("extra_dhcp_opts") {
        c.dhcp_opts = Some(dhcp_opts_attr(v)?);
    }
    Ok(c)
}

/// The port's current addresses.
fn current_ips(port: &Resource) -> Vec<(String, IpAddr)> {
    port.doc
        .get("fixed_ips")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| {
                    Some((
                        f["subnet_id"].as_str()?.to_string(),
                        f["ip_address"].as_str()?.parse().ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Re-allocates a port's addresses to `asked` inside the write: addresses asked for again
/// (by address, or by subnet where the port already has one there) are kept, the others
/// released, then the new ones allocated.
async fn reallocate(
    tx: &mut Tx,
    port: &Resource,
    mac: &str,
    asked: &[FixedIp],
) -> strata_core::Result<NeutronResult<Vec<Value>>> {
    let network_id = port.str("network_id").unwrap_or("").to_string();
    let old = current_ips(port);
    let mut kept: Vec<Option<(String, IpAddr)>> = vec![None; asked.len()];
    let mut used = vec![false; old.len()];
    // Exact addresses first, then subnet-only requests.
    for (i, f) in asked.iter().enumerate() {
        if let Some(ip) = f.ip {
            if let Some(j) = old.iter().enumerate().position(|(j, (s, a))| {
                !used[j] && *a == ip && f.subnet_id.as_ref().is_none_or(|sid| sid == s)
            }) {
                used[j] = true;
                kept[i] = Some(old[j].clone());
            }
        }
    }
    for (i, f) in asked.iter().enumerate() {
        if f.ip.is_none() {
            if let Some(sid) = &f.subnet_id {
                if let Some(j) = old
                    .iter()
                    .enumerate()
                    .position(|(j, (s, _))| !used[j] && s == sid)
                {
                    used[j] = true;
                    kept[i] = Some(old[j].clone());
                }
            }
        }
    }
    for (j, (s, a)) in old.iter().enumerate() {
        if !used[j] {
            ipam::release_address(tx, s, *a).await?;
        }
    }
    let mut out = Vec::with_capacity(asked.len());
    for (i, f) in asked.iter().enumerate() {
        match &kept[i] {
            Some((s, a)) => out.push(json!({"subnet_id": s, "ip_address": a.to_string()})),
            None => {
                match allocate_ips(
                    tx,
                    &network_id,
                    &port.id,
                    mac,
                    Some(std::slice::from_ref(f)),
                    "",
                )
                .await?
                {
                    Ok(mut v) => out.append(&mut v),
                    Err(e) => return Ok(Err(e)),
                }
            }
        }
    }
    Ok(Ok(out))
}

/// Applies `c` to the stored port inside the write.
async fn apply(
    tx: &mut Tx,
    admin: bool,
    id: &str,
    c: Changes,
) -> strata_core::Result<NeutronResult<Resource>> {
    let Some(mut r) = db::get_tx(tx, KIND, id).await? else {
        return Ok(Err(NeutronError::not_found(KIND, id)));
    };
    let network_id = r.str("network_id").unwrap_or("").to_string();
    let prev_host = r.str("binding:host_id").unwrap_or("").to_string();
    for (k, v) in c.plain {
        r.doc.insert(k, v);
    }
    let mut mac = r.str("mac_address").unwrap_or("").to_string();
    if let Some(new) = c.mac {
        if new != mac {
            if r.str("binding:vif_type").is_some_and(|t| t != "unbound") {
                return Ok(Err(NeutronError::conflict(
                    "PortBound",
                    format!(
                        "Unable to complete operation on port {id}, port is already bound, \
                         port type: {}, old_mac {mac}, new_mac {new}.",
                        r.str("binding:vif_type").unwrap_or("")
                    ),
                )));
            }
            if mac_taken(tx, &network_id, &new).await? {
                return Ok(Err(mac_in_use(&network_id, &new)));
            }
            release_mac(tx, id).await?;
            if let Err(e) = claim_mac(tx, "", &network_id, id, Some(&new)).await? {
                return Ok(Err(e));
            }
            mac = new;
            r.doc.insert("mac_address".into(), json!(mac));
        }
    }
    if let Some(f) = &c.fixed_ips {
        match reallocate(tx, &r, &mac, f).await? {
            Ok(ips) => {
                r.doc.insert("fixed_ips".into(), Value::Array(ips));
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    let was_secure = r.flag("port_security_enabled");
    let secure = c.port_security.unwrap_or(was_secure);
    r.doc.insert("port_security_enabled".into(), json!(secure));
    match c.security_groups {
        Some(sgs) => {
            let device_owner = r.str("device_owner").unwrap_or("").to_string();
            match resolve_security_groups(
                tx,
                admin,
                &r.project_id,
                Some(sgs),
                secure,
                &device_owner,
            )
            .await?
            {
                Ok(s) => {
                    r.doc.insert("security_groups".into(), json!(s));
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        None => {
            let has = r
                .doc
                .get("security_groups")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            if !secure && has {
                return Ok(Err(NeutronError::conflict(
                    "PortSecurityPortHasSecurityGroup",
                    "Port has security group associated. Cannot disable port security or IP \
                     address until security group is removed.",
                )));
            }
        }
    }
    if let Some(p) = c.pairs {
        r.doc
            .insert("allowed_address_pairs".into(), pairs_json(&p, &mac));
    }
    let has_pairs = r
        .doc
        .get("allowed_address_pairs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !secure && has_pairs {
        return Ok(Err(address_pairs_need_port_security()));
    }
    if let Some(o) = c.dhcp_opts {
        let merged = merge_dhcp_opts(r.doc.get("extra_dhcp_opts").unwrap_or(&json!([])), o);
        r.doc.insert("extra_dhcp_opts".into(), merged);
    }
    settle(&mut r.doc, Some(&prev_host));
    db::save(tx, &mut r).await?;
    Ok(Ok(r))
}

/// `PUT /v2.0/ports/{id}`.
pub async fn port_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let (_, owns_net) = find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("update_port"));
    }
    let m = body.entity("port")?;
    let c = changes(&auth, owns_net, &m)?;
    let admin = auth.admin();
    let updated = write(&svc, move |tx| {
        let (id, c) = (id.clone(), c.clone());
        Box::pin(async move { apply(tx, admin, &id, c).await })
    })
    .await?;
    Ok(Json(json!({"port": view(&updated, admin)})))
}

// ------------------------------------------------------------------ service ports

/// Creates, inside the write, a port a service owns (router gateways and interfaces, floating
/// IPs) on `network_id`: addresses as asked (`(subnet, address)` pairs) or the defaults, no
/// security groups. No quota is charged (Neutron creates these without one).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_service_port(
    tx: &mut Tx,
    base_mac: &str,
    project: &str,
    network_id: &str,
    device_owner: &str,
    device_id: &str,
    fixed_ips: Option<Vec<(Option<String>, Option<IpAddr>)>>,
) -> strata_core::Result<NeutronResult<Resource>> {
    let mut doc = Map::new();
    doc.insert("name".into(), json!(""));
    doc.insert("network_id".into(), json!(network_id));
    doc.insert("admin_state_up".into(), json!(true));
    doc.insert("mac_address".into(), json!(""));
    doc.insert("device_id".into(), json!(device_id));
    doc.insert("device_owner".into(), json!(device_owner));
    doc.insert("fixed_ips".into(), json!([]));
    doc.insert("security_groups".into(), json!([]));
    doc.insert("allowed_address_pairs".into(), json!([]));
    doc.insert("port_security_enabled".into(), json!(false));
    doc.insert("binding:host_id".into(), json!(""));
    doc.insert("binding:vnic_type".into(), json!("normal"));
    doc.insert("binding:profile".into(), json!({}));
    doc.insert("extra_dhcp_opts".into(), json!([]));
    doc.insert("ip_allocation".into(), json!("immediate"));
    doc.insert("description".into(), json!(""));
    doc.insert("tags".into(), json!([]));
    settle(&mut doc, None);
    let plan = Plan {
        port: Resource::new(KIND, strata_core::ids::uuid(), project.to_string(), doc),
        network_id: network_id.to_string(),
        mac: None,
        fixed_ips: fixed_ips.map(|v| {
            v.into_iter()
                .map(|(subnet_id, ip)| FixedIp { subnet_id, ip })
                .collect()
        }),
        security_groups: Some(vec![]),
        pairs: vec![],
    };
    realise(tx, base_mac, true, plan).await
}

/// Removes a service port inside the write, freeing its addresses and MAC.
pub(crate) async fn remove_service_port(tx: &mut Tx, id: &str) -> strata_core::Result<()> {
    ipam::release(tx, id).await?;
    db::delete(tx, KIND, id).await?;
    Ok(())
}

/// The `(subnet_id, address)` pairs of a port.
pub(crate) fn addresses(port: &Resource) -> Vec<(String, IpAddr)> {
    current_ips(port)
}

// ------------------------------------------------------------------ delete

/// `DELETE /v2.0/ports/{id}`: 204; its addresses and MAC are free again. Ports of routers
/// and floating IPs that still exist are theirs to remove (409 `ServicePortInUse`).
pub async fn port_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("delete_port"));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            let owner = r.str("device_owner").unwrap_or("");
            if let Some((_, kind)) = SERVICE_OWNERS.iter().find(|(o, _)| *o == owner) {
                let device = r.str("device_id").unwrap_or("");
                if !device.is_empty() && db::get_tx(tx, kind, device).await?.is_some() {
                    return Ok(Err(NeutronError::conflict(
                        "ServicePortInUse",
                        format!(
                            "Port {id} cannot be deleted directly via the port API: has device \
                             owner {owner}."
                        ),
                    )));
                }
            }
            super::floatingips::port_deleted(tx, &id).await?;
            ipam::release(tx, &id).await?;
            db::delete(tx, KIND, &id).await?;
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
    fn random_macs_keep_the_base_prefix() {
        for _ in 0..50 {
            let m = random_mac("fa:16:3e:00:00:00");
            assert!(m.starts_with("fa:16:3e:"), "{m}");
            assert_eq!(m.len(), 17);
        }
        assert!(random_mac("fa:16:3e:aa:00:00").starts_with("fa:16:3e:aa:"));
    }

    #[test]
    fn macs_are_validated_and_normalised() {
        assert_eq!(
            mac_attr("mac_address", &json!("FA-16-3E-01-02-03")).unwrap(),
            "fa:16:3e:01:02:03"
        );
        assert!(mac_attr("mac_address", &json!("00:00:00:00:00:00")).is_err());
        assert!(mac_attr("mac_address", &json!("01:00:5e:00:00:01")).is_err());
        assert!(mac_attr("mac_address", &json!("zz")).is_err());
        assert!(mac_attr("mac_address", &json!(5)).is_err());
    }

    #[test]
    fn fixed_ips_filter() {
        let v = json!({"fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.3"},
                                     {"subnet_id": "s2", "ip_address": "10.1.0.3"}]});
        assert!(fixed_ips_match(&v, &["ip_address=10.0.0.3"]));
        assert!(fixed_ips_match(&v, &["subnet_id=s2"]));
        assert!(fixed_ips_match(
            &v,
            &["ip_address=10.0.0.3", "subnet_id=s1"]
        ));
        assert!(!fixed_ips_match(
            &v,
            &["ip_address=10.0.0.3", "subnet_id=s2"]
        ));
        assert!(fixed_ips_match(
            &v,
            &["ip_address=10.9.9.9", "ip_address=10.1.0.3"]
        ));
        assert!(fixed_ips_match(&v, &["ip_address_substr=10.1"]));
        assert!(!fixed_ips_match(&v, &["bogus"]));
    }

    #[test]
    fn dhcp_opts_merge() {
        let old = json!([{"opt_name": "a", "opt_value": "1", "ip_version": 4},
                         {"opt_name": "b", "opt_value": "2", "ip_version": 4}]);
        let merged = merge_dhcp_opts(
            &old,
            vec![
                json!({"opt_name": "a", "opt_value": null, "ip_version": 4}),
                json!({"opt_name": "b", "opt_value": "3", "ip_version": 4}),
            ],
        );
        assert_eq!(
            merged,
            json!([{"opt_name": "b", "opt_value": "3", "ip_version": 4}])
        );
    }
}
