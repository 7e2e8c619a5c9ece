//! `/v2.0/subnets`: create (also in bulk, also from a subnet pool), list, show, update,
//! delete, with Neutron's validation of CIDRs, gateways, allocation pools, DNS servers, host
//! routes and IPv6 address modes. The checks that depend on other resources (the network, the
//! subnets beside it, the pool's free prefixes, the quota) run inside the write.

use super::list;
use super::networks::{self, boolean, only, owner, standard, string};
use super::subnetpools;
use super::write;
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body, Pairs};
use crate::ipam::{self, Cidr, Range};
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use strata_core::config::NetworkConfig;
use strata_store::Tx;

pub const KIND: &str = "subnet";

/// Neutron's `max_dns_nameservers` and `max_subnet_host_routes`.
const MAX_DNS: usize = 5;
const MAX_ROUTES: usize = 20;
const MODES: &[&str] = &["dhcpv6-stateful", "dhcpv6-stateless", "slaac"];

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/subnets", get(subnet_list).post(subnet_create))
        .route(
            "/subnets/{id}",
            get(subnet_show).put(subnet_update).delete(subnet_delete),
        )
}

/// Every attribute of the subnet view.
pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "network_id",
    "tenant_id",
    "project_id",
    "ip_version",
    "cidr",
    "subnetpool_id",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "description",
    "tags",
    "service_types",
    "segment_id",
    "created_at",
    "updated_at",
    "revision_number",
];

pub fn view(r: &Resource) -> Value {
    let mut m = standard(r);
    for k in [
        "subnetpool_id",
        "segment_id",
        "ipv6_ra_mode",
        "ipv6_address_mode",
    ] {
        m.entry(k).or_insert(Value::Null);
    }
    for k in [
        "dns_nameservers",
        "host_routes",
        "service_types",
        "allocation_pools",
    ] {
        m.entry(k).or_insert_with(|| json!([]));
    }
    Value::Object(m)
}

/// Whether the caller may see the subnet: its own, those of shared networks, or any for
/// admins.
pub fn visible(auth: &Auth, r: &Resource, network_shared: bool) -> bool {
    auth.owns(&r.project_id) || network_shared
}

async fn shared_networks(svc: &NetworkService) -> NeutronResult<HashMap<String, bool>> {
    Ok(db::list(svc.store(), networks::KIND, None)
        .await?
        .into_iter()
        .map(|n| {
            let shared = n.flag("shared");
            (n.id, shared)
        })
        .collect())
}

/// The subnet `id` if the caller may see it; 404 otherwise.
pub async fn find(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<Resource> {
    let Some(r) = db::get(svc.store(), KIND, id).await? else {
        return Err(NeutronError::not_found(KIND, id));
    };
    let shared = match r.str("network_id") {
        Some(n) => db::get(svc.store(), networks::KIND, n)
            .await?
            .map(|n| n.flag("shared"))
            .unwrap_or(false),
        None => false,
    };
    if visible(auth, &r, shared) {
        Ok(r)
    } else {
        Err(NeutronError::not_found(KIND, id))
    }
}

// ------------------------------------------------------------------ parsing

fn parse_ip(key: &str, v: &Value) -> NeutronResult<IpAddr> {
    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
        NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{}' is not a valid IP address.",
            text(v)
        ))
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A CIDR as Neutron's `type:subnet` validator accepts it: v4 must be in canonical form.
pub fn parse_cidr(key: &str, v: &Value) -> NeutronResult<Cidr> {
    let s = v.as_str().unwrap_or_default();
    let Some(c) = Cidr::parse(s) else {
        return Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{}' is not a valid IP subnet.",
            text(v)
        )));
    };
    if c.version() == 4 && c.to_string() != s {
        return Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{s}' isn't a recognized IP subnet cidr, '{c}' \
             is recommended."
        )));
    }
    Ok(c)
}

fn int(m: &Map<String, Value>, key: &str) -> NeutronResult<Option<i64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{}' is not an integer.",
            text(other)
        ))),
    }
}

fn mode(m: &Map<String, Value>, key: &str) -> NeutronResult<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if MODES.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{}' is not in {:?}.",
            text(other),
            MODES
        ))),
    }
}

fn range_text(r: &Range, version: u8) -> String {
    format!(
        "{}-{}",
        ipam::from_u128(r.0, version),
        ipam::from_u128(r.1, version)
    )
}

/// `allocation_pools` as asked: `[{"start", "end"}]`.
fn parse_pools(v: &Value) -> NeutronResult<Vec<(IpAddr, IpAddr)>> {
    let bad = || {
        NeutronError::bad_request(format!(
            "Invalid input for allocation_pools. Reason: Invalid data format for IP pool: \
             '{v}'."
        ))
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    let mut out = Vec::new();
    for p in items {
        let Value::Object(o) = p else {
            return Err(bad());
        };
        if o.keys().any(|k| k != "start" && k != "end") {
            return Err(bad());
        }
        let (Some(s), Some(e)) = (o.get("start"), o.get("end")) else {
            return Err(bad());
        };
        out.push((
            parse_ip("allocation_pools", s)?,
            parse_ip("allocation_pools", e)?,
        ));
    }
    Ok(out)
}

fn parse_dns(v: &Value) -> NeutronResult<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(NeutronError::bad_request(format!(
            "Invalid input for dns_nameservers. Reason: '{v}' is not a list."
        )));
    };
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let ip = i
            .as_str()
            .and_then(|s| s.parse::<IpAddr>().ok())
            .ok_or_else(|| {
                NeutronError::bad_request(format!(
                    "Invalid input for dns_nameservers. Reason: '{}' is not a valid nameserver.",
                    text(i)
                ))
            })?;
        let s = i.as_str().unwrap_or_default().to_string();
        if out.iter().any(|o| o.parse::<IpAddr>().ok() == Some(ip)) {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for dns_nameservers. Reason: Duplicate nameserver '{s}'."
            )));
        }
        out.push(s);
    }
    Ok(out)
}

fn parse_routes(v: &Value) -> NeutronResult<Vec<Value>> {
    let bad = |r: &Value| {
        NeutronError::bad_request(format!(
            "Invalid input for host_routes. Reason: Invalid data format for hostroute: '{r}'."
        ))
    };
    let Value::Array(items) = v else {
        return Err(bad(v));
    };
    let mut out: Vec<Value> = Vec::new();
    for r in items {
        let Value::Object(o) = r else {
            return Err(bad(r));
        };
        if o.len() != 2 {
            return Err(bad(r));
        }
        let (Some(d), Some(n)) = (o.get("destination"), o.get("nexthop")) else {
            return Err(bad(r));
        };
        let dest = d.as_str().and_then(Cidr::parse).ok_or_else(|| bad(r))?;
        let hop = n
            .as_str()
            .and_then(|s| s.parse::<IpAddr>().ok())
            .ok_or_else(|| bad(r))?;
        let route = json!({"destination": d, "nexthop": n});
        if out.contains(&route) {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for host_routes. Reason: Duplicate hostroute '{r}'."
            )));
        }
        if dest.version() != ipam::version_of(hop) {
            return Err(NeutronError::invalid_input(format!("Invalid route: {r}")));
        }
        out.push(route);
    }
    Ok(out)
}

/// The gateway as asked: absent (default), null (none) or an address.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gateway {
    Default,
    None,
    At(IpAddr),
}

/// A validated create request, finished inside the write once the CIDR is known.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    project: String,
    network_id: String,
    ip_version: u8,
    cidr: Option<Cidr>,
    pool: Option<String>,
    default_pool: bool,
    prefixlen: Option<u8>,
    gateway: Gateway,
    pools: Option<Vec<(IpAddr, IpAddr)>>,
    doc: Map<String, Value>,
}

const CREATE_ATTRS: &[&str] = &[
    "name",
    "network_id",
    "tenant_id",
    "project_id",
    "ip_version",
    "cidr",
    "subnetpool_id",
    "prefixlen",
    "use_default_subnetpool",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "description",
    "segment_id",
    "service_types",
    "tags",
];

pub(crate) fn spec(auth: &Auth, m: &Map<String, Value>) -> NeutronResult<Spec> {
    only(m, CREATE_ATTRS)?;
    let project = owner(auth, m)?;
    let network_id = match m.get("network_id") {
        Some(Value::String(s)) => s.clone(),
        None => {
            return Err(NeutronError::bad_request(
                "Failed to parse request. Required attribute 'network_id' not specified",
            ))
        }
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for network_id. Reason: '{}' is not a valid UUID.",
                text(other)
            )))
        }
    };
    let ip_version = match int(m, "ip_version")? {
        Some(4) => 4u8,
        Some(6) => 6u8,
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for ip_version. Reason: {other} is not in [4, 6]."
            )))
        }
        None => {
            return Err(NeutronError::bad_request(
                "Failed to parse request. Required attribute 'ip_version' not specified",
            ))
        }
    };
    let cidr = match m.get("cidr") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_cidr("cidr", v)?),
    };
    let pool = match m.get("subnetpool_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for subnetpool_id. Reason: '{}' is not a valid UUID.",
                text(other)
            )))
        }
    };
    let default_pool = boolean(m, "use_default_subnetpool")?.unwrap_or(false);
    if default_pool && pool.is_some() {
        return Err(NeutronError::bad_request(
            "Bad subnets request: subnetpool_id and use_default_subnetpool cannot both be \
             specified.",
        ));
    }
    let prefixlen = match int(m, "prefixlen")? {
        None => None,
        Some(p) if (0..=128).contains(&p) => Some(p as u8),
        Some(p) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for prefixlen. Reason: '{p}' is not a valid prefix length."
            )))
        }
    };
    if cidr.is_none() && pool.is_none() && !default_pool {
        return Err(NeutronError::bad_request(
            "Bad subnets request: a subnetpool must be specified in the absence of a cidr.",
        ));
    }
    if let Some(c) = &cidr {
        if c.version() != ip_version {
            return Err(NeutronError::invalid_input(format!(
                "cidr '{c}' does not match the ip_version '{ip_version}'"
            )));
        }
        if c.prefix == 0 && pool.is_none() && !default_pool {
            return Err(NeutronError::invalid_input(
                "0 is not allowed as CIDR prefix length",
            ));
        }
    }
    let gateway = match m.get("gateway_ip") {
        None => Gateway::Default,
        Some(Value::Null) => Gateway::None,
        Some(v) => {
            let g = parse_ip("gateway_ip", v)?;
            if ipam::version_of(g) != ip_version {
                return Err(NeutronError::invalid_input(format!(
                    "gateway_ip '{g}' does not match the ip_version '{ip_version}'"
                )));
            }
            Gateway::At(g)
        }
    };
    let pools = match m.get("allocation_pools") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_pools(v)?),
    };
    let dns = match m.get("dns_nameservers") {
        None | Some(Value::Null) => vec![],
        Some(v) => parse_dns(v)?,
    };
    let routes = match m.get("host_routes") {
        None | Some(Value::Null) => vec![],
        Some(v) => parse_routes(v)?,
    };
    let enable_dhcp = boolean(m, "enable_dhcp")?.unwrap_or(true);
    let ra = mode(m, "ipv6_ra_mode")?;
    let am = mode(m, "ipv6_address_mode")?;
    check_modes(ip_version, enable_dhcp, ra.as_deref(), am.as_deref())?;
    let tags = match m.get("tags") {
        None => json!([]),
        Some(Value::Array(t)) if t.iter().all(Value::is_string) => Value::Array(t.clone()),
        Some(other) => {
            return Err(NeutronError::bad_request(format!(
                "Invalid input for tags. Reason: '{other}' is not a list of strings."
            )))
        }
    };
    match m.get("service_types") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(_) => {
            return Err(NeutronError::bad_request(
                "Invalid input for service_types. Reason: service types are not supported.",
            ))
        }
    }
    match m.get("segment_id") {
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(NeutronError::bad_request(
                "Invalid input for segment_id. Reason: routed network segments are not \
                 supported.",
            ))
        }
    }
    let mut doc = Map::new();
    doc.insert(
        "name".into(),
        json!(string(m, "name", 255)?.unwrap_or_default()),
    );
    doc.insert("network_id".into(), json!(network_id));
    doc.insert("ip_version".into(), json!(ip_version));
    doc.insert("dns_nameservers".into(), json!(dns));
    doc.insert("host_routes".into(), json!(routes));
    doc.insert("enable_dhcp".into(), json!(enable_dhcp));
    doc.insert("ipv6_ra_mode".into(), json!(ra));
    doc.insert("ipv6_address_mode".into(), json!(am));
    doc.insert(
        "description".into(),
        json!(string(m, "description", 255)?.unwrap_or_default()),
    );
    doc.insert("tags".into(), tags);
    doc.insert("service_types".into(), json!([]));
    doc.insert("segment_id".into(), Value::Null);
    doc.insert("subnetpool_id".into(), Value::Null);
    Ok(Spec {
        project,
        network_id,
        ip_version,
        cidr,
        pool,
        default_pool,
        prefixlen,
        gateway,
        pools,
        doc,
    })
}

/// Neutron's rules for the IPv6 attributes.
fn check_modes(
    ip_version: u8,
    enable_dhcp: bool,
    ra: Option<&str>,
    am: Option<&str>,
) -> NeutronResult<()> {
    if ip_version == 4 {
        if ra.is_some() {
            return Err(NeutronError::invalid_input(
                "ipv6_ra_mode is not valid when ip_version is 4",
            ));
        }
        if am.is_some() {
            return Err(NeutronError::invalid_input(
                "ipv6_address_mode is not valid when ip_version is 4",
            ));
        }
        return Ok(());
    }
    if (ra.is_some() || am.is_some()) && !enable_dhcp {
        return Err(NeutronError::invalid_input(
            "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False",
        ));
    }
    if let (Some(r), Some(a)) = (ra, am) {
        if r != a {
            return Err(NeutronError::invalid_input(format!(
                "ipv6_ra_mode set to '{r}' with ipv6_address_mode set to '{a}' is not valid. If \
                 both attributes are set, they must be the same value"
            )));
        }
    }
    Ok(())
}

/// The EUI-64 rule: automatic address modes need a /64.
fn check_eui64(doc: &Map<String, Value>, cidr: &Cidr) -> NeutronResult<()> {
    let auto = |k: &str| {
        matches!(
            doc.get(k).and_then(Value::as_str),
            Some("slaac") | Some("dhcpv6-stateless")
        )
    };
    if cidr.version() == 6
        && (auto("ipv6_address_mode") || auto("ipv6_ra_mode"))
        && cidr.prefix != 64
    {
        return Err(NeutronError::invalid_input(format!(
            "Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address \
             format, which requires the prefix to be /64"
        )));
    }
    Ok(())
}

/// Checks a gateway against its CIDR.
fn check_gateway(cidr: &Cidr, g: IpAddr) -> NeutronResult<()> {
    let v = ipam::to_u128(g);
    let edge = cidr.version() == 4 && cidr.prefix < 31 && (v == cidr.first() || v == cidr.last());
    if !cidr.contains(g) || edge {
        return Err(NeutronError::invalid_input(
            "Gateway is not valid on subnet",
        ));
    }
    Ok(())
}

/// Validates explicit allocation pools against the CIDR and the gateway (Neutron's
/// `_validate_allocation_pools` and `_validate_gw_out_of_pools`).
fn check_pools(
    cidr: &Cidr,
    pools: &[(IpAddr, IpAddr)],
    gateway: Option<IpAddr>,
) -> NeutronResult<Vec<Range>> {
    let version = cidr.version();
    let lo = cidr.first() + 1;
    let hi = if version == 4 {
        cidr.last() - 1
    } else {
        cidr.last()
    };
    let mut ranges: Vec<Range> = Vec::new();
    for &(s, e) in pools {
        let text = format!("{s}-{e}");
        if ipam::version_of(s) != version || ipam::version_of(e) != version {
            return Err(NeutronError::new(
                StatusCode::BAD_REQUEST,
                "OutOfBoundsAllocationPool",
                format!("The allocation pool {text} spans beyond the subnet cidr {cidr}."),
            ));
        }
        let (a, b) = (ipam::to_u128(s), ipam::to_u128(e));
        if a > b {
            return Err(NeutronError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAllocationPool",
                format!("The allocation pool {text} is not valid."),
            ));
        }
        if a < lo || b > hi {
            return Err(NeutronError::new(
                StatusCode::BAD_REQUEST,
                "OutOfBoundsAllocationPool",
                format!("The allocation pool {text} spans beyond the subnet cidr {cidr}."),
            ));
        }
        ranges.push((a, b));
    }
    for i in 0..ranges.len() {
        for j in i + 1..ranges.len() {
            let (x, y) = (ranges[i], ranges[j]);
            if x.0 <= y.1 && y.0 <= x.1 {
                return Err(NeutronError::conflict(
                    "OverlappingAllocationPools",
                    format!(
                        "Found overlapping allocation pools: {} and {} for subnet {cidr}.",
                        range_text(&x, version),
                        range_text(&y, version)
                    ),
                ));
            }
        }
    }
    if let Some(g) = gateway {
        gateway_outside_pools(g, &ranges, version)?;
    }
    Ok(ranges)
}

fn gateway_outside_pools(g: IpAddr, ranges: &[Range], version: u8) -> NeutronResult<()> {
    let v = ipam::to_u128(g);
    if let Some(r) = ranges.iter().find(|r| v >= r.0 && v <= r.1) {
        return Err(NeutronError::conflict(
            "GatewayConflictWithAllocationPools",
            format!(
                "Gateway ip {g} conflicts with allocation pool {}.",
                range_text(r, version)
            ),
        ));
    }
    Ok(())
}

/// 400 when `cidr` overlaps another subnet of the network.
fn check_overlap(
    cidr: &Cidr,
    network_id: &str,
    others: &[Resource],
    skip: &str,
) -> NeutronResult<()> {
    for s in others {
        if s.id == skip || s.str("network_id") != Some(network_id) {
            continue;
        }
        if ipam::cidr_of(s).is_some_and(|c| c.overlaps(cidr)) {
            return Err(NeutronError::invalid_input(format!(
                "Requested subnet with cidr: {cidr} for network: {network_id} overlaps with \
                 another subnet"
            )));
        }
    }
    Ok(())
}

/// Finishes a spec inside the write: resolves the pool's prefix, defaults and checks.
pub(crate) async fn finish(
    tx: &mut Tx,
    auth_admin: bool,
    auth_project: &str,
    spec: Spec,
    pending: &[Resource],
) -> strata_core::Result<NeutronResult<Resource>> {
    macro_rules! refuse {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            }
        };
    }
    let Some(net) = db::get_tx(tx, networks::KIND, &spec.network_id).await? else {
        return Ok(Err(NeutronError::not_found(
            networks::KIND,
            &spec.network_id,
        )));
    };
    let net_visible = auth_admin
        || net.project_id == auth_project
        || net.flag("shared")
        || net.flag("router:external");
    if !net_visible {
        return Ok(Err(NeutronError::not_found(
            networks::KIND,
            &spec.network_id,
        )));
    }
    if !auth_admin && net.project_id != auth_project {
        return Ok(Err(NeutronError::policy("create_subnet")));
    }
    let mut all = db::list_tx(tx, KIND, None).await?;
    all.extend(pending.iter().cloned());
    let mut doc = spec.doc.clone();
    // the pool
    let pool = if spec.default_pool {
        let pools = db::list_tx(tx, subnetpools::KIND, None).await?;
        match pools.into_iter().find(|p| {
            p.flag("is_default")
                && p.doc.get("ip_version").and_then(Value::as_i64) == Some(spec.ip_version as i64)
        }) {
            Some(p) => Some(p),
            None => {
                return Ok(Err(NeutronError::bad_request(format!(
                    "Bad subnets request: No default subnetpool found for IPv{}.",
                    spec.ip_version
                ))))
            }
        }
    } else if let Some(id) = &spec.pool {
        match db::get_tx(tx, subnetpools::KIND, id).await? {
            Some(p) if auth_admin || p.project_id == auth_project || p.flag("shared") => Some(p),
            _ => return Ok(Err(subnetpools::not_found(id))),
        }
    } else {
        None
    };
    let cidr = match &pool {
        Some(p) => {
            let cidr = refuse!(subnetpools::allocate(
                p,
                &all,
                spec.ip_version,
                spec.cidr,
                spec.prefixlen
            ));
            doc.insert("subnetpool_id".into(), json!(p.id));
            cidr
        }
        None => spec.cidr.expect("cidr checked"),
    };
    refuse!(check_eui64(&doc, &cidr));
    let gateway = match spec.gateway {
        Gateway::None => None,
        Gateway::At(g) => {
            refuse!(check_gateway(&cidr, g));
            Some(g)
        }
        Gateway::Default => {
            if cidr.size() > 2 {
                cidr.nth(1)
            } else {
                None
            }
        }
    };
    let ranges = match &spec.pools {
        Some(p) => refuse!(check_pools(&cidr, p, gateway)),
        None => ipam::default_pools(&cidr, gateway),
    };
    let enable_dhcp = doc
        .get("enable_dhcp")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if enable_dhcp {
        let v = cidr.version();
        if (v == 4 && cidr.prefix > 30) || (v == 6 && cidr.prefix > 126) {
            return Ok(Err(NeutronError::invalid_input(
                "Subnet has a prefix length that is incompatible with DHCP service enabled",
            )));
        }
        let first = cidr.addr;
        let multicast = first.is_multicast();
        if multicast {
            return Ok(Err(NeutronError::invalid_input(
                "Multicast IP subnet is not supported if enable_dhcp is True",
            )));
        }
        if first.is_loopback() {
            return Ok(Err(NeutronError::invalid_input(
                "Loopback IP subnet is not supported if enable_dhcp is True",
            )));
        }
    }
    let id = strata_core::ids::uuid();
    refuse!(check_overlap(&cidr, &spec.network_id, &all, &id));
    doc.insert("cidr".into(), json!(cidr.to_string()));
    doc.insert("gateway_ip".into(), json!(gateway.map(|g| g.to_string())));
    doc.insert(
        "allocation_pools".into(),
        ipam::pools_json(&ranges, cidr.version()),
    );
    if doc["dns_nameservers"].as_array().map_or(0, Vec::len) > MAX_DNS {
        return Ok(Err(NeutronError::bad_request(format!(
            "Unable to complete operation for {id}. The number of DNS nameservers exceeds the \
             limit {MAX_DNS}."
        ))));
    }
    if doc["host_routes"].as_array().map_or(0, Vec::len) > MAX_ROUTES {
        return Ok(Err(NeutronError::bad_request(format!(
            "Unable to complete operation for {id}. The number of host routes exceeds the limit \
             {MAX_ROUTES}."
        ))));
    }
    Ok(Ok(Resource::new(KIND, id, spec.project.clone(), doc)))
}

// ------------------------------------------------------------------ handlers

/// `POST /v2.0/subnets`: 201; a bulk body creates all or none.
pub async fn subnet_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_subnet"));
    }
    let (items, bulk) = body.entities("subnet", "subnets")?;
    let mut specs = Vec::with_capacity(items.len());
    for m in &items {
        specs.push(spec(&auth, m)?);
    }
    let cfg: NetworkConfig = svc.config().clone();
    let (admin, project) = (auth.admin(), auth.project().to_string());
    let created = write(&svc, move |tx| {
        let (specs, cfg, project) = (specs.clone(), cfg.clone(), project.clone());
        Box::pin(async move {
            let mut per_project: Vec<(String, i64)> = Vec::new();
            for s in &specs {
                match per_project.iter_mut().find(|(p, _)| *p == s.project) {
                    Some((_, n)) => *n += 1,
                    None => per_project.push((s.project.clone(), 1)),
                }
            }
            for (p, n) in &per_project {
                if let Err(e) = crate::quota::check(tx, &cfg, p, "subnet", *n).await? {
                    return Ok(Err(e));
                }
            }
            let mut out: Vec<Resource> = Vec::with_capacity(specs.len());
            for s in specs {
                let r = match finish(tx, admin, &project, s, &out).await? {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                out.push(r);
            }
            for r in &out {
                db::insert(tx, r).await?;
            }
            Ok(Ok(out))
        })
    })
    .await?;
    let views: Vec<Value> = created.iter().map(view).collect();
    let body = if bulk {
        json!({ "subnets": views })
    } else {
        json!({ "subnet": views[0] })
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v2.0/subnets`.
pub async fn subnet_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let shared = shared_networks(&svc).await?;
    let all = db::list(svc.store(), KIND, None).await?;
    let views: Vec<Value> = all
        .iter()
        .filter(|r| {
            let s = r
                .str("network_id")
                .and_then(|n| shared.get(n).copied())
                .unwrap_or(false);
            visible(&auth, r, s)
        })
        .map(view)
        .collect();
    let none = |_: &Value, _: &str, _: &[&str]| None;
    let views = list::filter(views, &q, ATTRS, &none)?;
    Ok(Json(list::respond(
        "subnets",
        &super::collection_url(&svc, "subnets"),
        views,
        &q,
        ATTRS,
    )?))
}

/// `GET /v2.0/subnets/{id}`.
pub async fn subnet_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    Ok(Json(
        json!({"subnet": list::project(view(&r), &list::fields(&q))}),
    ))
}

const UPDATE_ATTRS: &[&str] = &[
    "name",
    "description",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "service_types",
    "segment_id",
];

/// `PUT /v2.0/subnets/{id}`.
pub async fn subnet_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.owns(&r.project_id) || !auth.can_write() {
        return Err(NeutronError::policy("update_subnet"));
    }
    let m = body.entity("subnet")?;
    for k in m.keys() {
        if [
            "id",
            "tenant_id",
            "project_id",
            "network_id",
            "cidr",
            "ip_version",
            "subnetpool_id",
            "prefixlen",
            "use_default_subnetpool",
        ]
        .contains(&k.as_str())
        {
            return Err(NeutronError::bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
    }
    only(&m, UPDATE_ATTRS)?;
    let mut changes = Map::new();
    if let Some(n) = string(&m, "name", 255)? {
        changes.insert("name".into(), json!(n));
    }
    if let Some(d) = string(&m, "description", 255)? {
        changes.insert("description".into(), json!(d));
    }
    if let Some(b) = boolean(&m, "enable_dhcp")? {
        changes.insert("enable_dhcp".into(), json!(b));
    }
    for k in ["ipv6_ra_mode", "ipv6_address_mode"] {
        if m.contains_key(k) {
            changes.insert(k.into(), json!(mode(&m, k)?));
        }
    }
    if let Some(v) = m.get("dns_nameservers") {
        let d = if v.is_null() { vec![] } else { parse_dns(v)? };
        if d.len() > MAX_DNS {
            return Err(NeutronError::bad_request(format!(
                "Unable to complete operation for {id}. The number of DNS nameservers exceeds \
                 the limit {MAX_DNS}."
            )));
        }
        changes.insert("dns_nameservers".into(), json!(d));
    }
    if let Some(v) = m.get("host_routes") {
        let h = if v.is_null() {
            vec![]
        } else {
            parse_routes(v)?
        };
        if h.len() > MAX_ROUTES {
            return Err(NeutronError::bad_request(format!(
                "Unable to complete operation for {id}. The number of host routes exceeds the \
                 limit {MAX_ROUTES}."
            )));
        }
        changes.insert("host_routes".into(), json!(h));
    }
    for k in ["service_types", "segment_id"] {
        match m.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(_) => {
                return Err(NeutronError::bad_request(format!(
                    "Invalid input for {k}. Reason: not supported."
                )))
            }
        }
    }
    let gateway = match m.get("gateway_ip") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(parse_ip("gateway_ip", v)?)),
    };
    let pools = match m.get("allocation_pools") {
        None => None,
        Some(Value::Null) => Some(vec![]),
        Some(v) => Some(parse_pools(v)?),
    };
    let id2 = id.clone();
    let updated = write(&svc, move |tx| {
        let (id, mut changes, pools) = (id2.clone(), changes.clone(), pools.clone());
        Box::pin(async move {
            let Some(mut r) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            let Some(cidr) = ipam::cidr_of(&r) else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            let version = cidr.version();
            let cur = |k: &str| -> Option<String> {
                changes
                    .get(k)
                    .unwrap_or(r.doc.get(k).unwrap_or(&Value::Null))
                    .as_str()
                    .map(str::to_string)
            };
            let (ra, am) = (cur("ipv6_ra_mode"), cur("ipv6_address_mode"));
            let dhcp = changes
                .get("enable_dhcp")
                .or(r.doc.get("enable_dhcp"))
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if version == 6 && (ra.is_some() || am.is_some()) && !dhcp {
                return Ok(Err(NeutronError::invalid_input(
                    "Cannot disable enable_dhcp with ipv6 attributes set",
                )));
            }
            if let Err(e) = check_modes(version, dhcp, ra.as_deref(), am.as_deref()) {
                return Ok(Err(e));
            }
            let mut probe = r.doc.clone();
            probe.extend(changes.clone());
            if let Err(e) = check_eui64(&probe, &cidr) {
                return Ok(Err(e));
            }
            let g = match gateway {
                Some(Some(g)) => {
                    if ipam::version_of(g) != version {
                        return Ok(Err(NeutronError::invalid_input(format!(
                            "gateway_ip '{g}' does not match the ip_version '{version}'"
                        ))));
                    }
                    if let Err(e) = check_gateway(&cidr, g) {
                        return Ok(Err(e));
                    }
                    Some(g)
                }
                Some(None) => None,
                None => ipam::gateway_of(&r),
            };
            let ranges = match &pools {
                Some(p) => match check_pools(&cidr, p, g) {
                    Ok(rs) => rs,
                    Err(e) => return Ok(Err(e)),
                },
                None => {
                    let rs = ipam::pools_of(&r);
                    if let Some(Some(g)) = gateway {
                        if let Err(e) = gateway_outside_pools(g, &rs, version) {
                            return Ok(Err(e));
                        }
                    }
                    rs
                }
            };
            if gateway.is_some() {
                changes.insert("gateway_ip".into(), json!(g.map(|g| g.to_string())));
            }
            if pools.is_some() {
                changes.insert(
                    "allocation_pools".into(),
                    ipam::pools_json(&ranges, version),
                );
            }
            for (k, v) in changes {
                r.doc.insert(k, v);
            }
            db::save(tx, &mut r).await?;
            Ok(Ok(r))
        })
    })
    .await?;
    Ok(Json(json!({"subnet": view(&updated)})))
}

/// Port owners whose addresses go with the subnet (Neutron's `AUTO_DELETE_PORT_OWNERS`).
fn auto_delete(owner: &str) -> bool {
    owner == "network:dhcp" || owner == "network:distributed"
}

/// `DELETE /v2.0/subnets/{id}`: 204; 409 `SubnetInUse` while ports other than the network's
/// own hold addresses on it (on SLAAC / stateless subnets the addresses go with it).
pub async fn subnet_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    let r = find(&svc, &auth, &id).await?;
    if !auth.owns(&r.project_id) || !auth.can_write() {
        return Err(NeutronError::policy("delete_subnet"));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(subnet) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            let auto = ipam::is_auto_address(&subnet);
            let holders = ipam::ports_on_subnet(tx, &id).await?;
            let mut ports = Vec::new();
            for p in &holders {
                if let Some(port) = db::get_tx(tx, "port", p).await? {
                    ports.push(port);
                }
            }
            if !auto
                && ports
                    .iter()
                    .any(|p| !auto_delete(p.str("device_owner").unwrap_or("")))
            {
                return Ok(Err(NeutronError::conflict(
                    "SubnetInUse",
                    format!(
                        "Unable to complete operation on subnet {id}: One or more ports have an \
                         IP allocation from this subnet."
                    ),
                )));
            }
            for mut p in ports {
                if let Some(Value::Array(ips)) = p.doc.get_mut("fixed_ips") {
                    ips.retain(|f| f.get("subnet_id").and_then(Value::as_str) != Some(&id));
                }
                db::save(tx, &mut p).await?;
            }
            ipam::release_subnet(tx, &id).await?;
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pools_are_checked() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        let ok = check_pools(
            &c,
            &[(ip("10.0.0.2"), ip("10.0.0.9"))],
            Some(ip("10.0.0.1")),
        );
        assert_eq!(ok.unwrap().len(), 1);
        let e = check_pools(&c, &[(ip("10.0.0.0"), ip("10.0.0.9"))], None).unwrap_err();
        assert_eq!(e.kind, "OutOfBoundsAllocationPool");
        let e = check_pools(&c, &[(ip("10.0.0.9"), ip("10.0.0.2"))], None).unwrap_err();
        assert_eq!(e.kind, "InvalidAllocationPool");
        let e = check_pools(
            &c,
            &[
                (ip("10.0.0.2"), ip("10.0.0.9")),
                (ip("10.0.0.9"), ip("10.0.0.20")),
            ],
            None,
        )
        .unwrap_err();
        assert_eq!(e.kind, "OverlappingAllocationPools");
        let e = check_pools(
            &c,
            &[(ip("10.0.0.1"), ip("10.0.0.9"))],
            Some(ip("10.0.0.5")),
        )
        .unwrap_err();
        assert_eq!(e.kind, "GatewayConflictWithAllocationPools");
        assert_eq!(e.status, StatusCode::CONFLICT);
    }

    #[test]
    fn modes_follow_neutron() {
        assert!(check_modes(6, true, Some("slaac"), Some("slaac")).is_ok());
        assert!(check_modes(6, true, Some("slaac"), Some("dhcpv6-stateful")).is_err());
        assert!(check_modes(6, false, None, Some("slaac")).is_err());
        assert!(check_modes(4, true, Some("slaac"), None).is_err());
        assert!(check_modes(6, true, None, Some("dhcpv6-stateless")).is_ok());
    }

    #[test]
    fn gateways_are_checked() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert!(check_gateway(&c, ip("10.0.0.1")).is_ok());
        assert!(check_gateway(&c, ip("10.0.0.0")).is_err());
        assert!(check_gateway(&c, ip("10.0.0.255")).is_err());
        assert!(check_gateway(&c, ip("10.0.1.1")).is_err());
    }
}
