//! `/v2.0/floatingips`: create, list, show, update (associate / disassociate), delete. A
//! floating IP holds its address through a port on the external network (device owner
//! `network:floatingip`, no project, as Neutron makes it); associating it with a port needs a
//! router whose gateway is on the floating network and which has an interface on the port's
//! subnet, which becomes the floating IP's `router_id`.

use super::list;
use super::networks::{self, only, owner, standard, string};
use super::{ports, routers, subnets, write};
use crate::db::{self, Resource};
use crate::error::{NeutronError, NeutronResult};
use crate::extract::{Auth, Body, Pairs};
use crate::ipam;
use crate::NetworkService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use strata_store::Tx;

pub const KIND: &str = "floatingip";
pub const PORT_OWNER: &str = "network:floatingip";

pub fn routes() -> Router<NetworkService> {
    Router::new()
        .route("/floatingips", get(fip_list).post(fip_create))
        .route(
            "/floatingips/{id}",
            get(fip_show).put(fip_update).delete(fip_delete),
        )
}

/// Every attribute of the floating IP view (what may be filtered and sorted on).
pub const ATTRS: &[&str] = &[
    "id",
    "tenant_id",
    "project_id",
    "floating_ip_address",
    "floating_network_id",
    "router_id",
    "port_id",
    "fixed_ip_address",
    "status",
    "description",
    "tags",
    "qos_policy_id",
    "port_forwardings",
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

pub fn view(r: &Resource) -> Value {
    let mut m = standard(r);
    m.retain(|k, _| !k.starts_with('_'));
    Value::Object(m)
}

fn visible(auth: &Auth, r: &Resource) -> bool {
    auth.owns(&r.project_id)
}

async fn find(svc: &NetworkService, auth: &Auth, id: &str) -> NeutronResult<Resource> {
    match db::get(svc.store(), KIND, id).await? {
        Some(r) if visible(auth, &r) => Ok(r),
        _ => Err(NeutronError::not_found(KIND, id)),
    }
}

fn bad_fip(msg: impl std::fmt::Display) -> NeutronError {
    NeutronError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Bad floatingip request: {msg}."),
    )
}

/// What a floating IP is associated with.
#[derive(Debug, Clone)]
struct Assoc {
    port_id: String,
    fixed_ip: Option<IpAddr>,
}

fn uuid_attr(m: &Map<String, Value>, key: &str) -> NeutronResult<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(NeutronError::bad_request(format!(
            "Invalid input for {key}. Reason: '{other}' is not a valid UUID."
        ))),
    }
}

fn ip_attr(m: &Map<String, Value>, key: &str) -> NeutronResult<Option<IpAddr>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                NeutronError::bad_request(format!(
                    "Invalid input for {key}. Reason: '{}' is not a valid IP address.",
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                ))
            }),
    }
}

/// Resolves an association inside the write: the port's fixed address (the asked one, or its
/// only IPv4 one), the router that reaches the floating network from it, and no other
/// floating IP on that address. Sets `port_id`, `fixed_ip_address`, `router_id`, `status`.
async fn associate(
    tx: &mut Tx,
    fip: &mut Resource,
    a: Option<Assoc>,
) -> strata_core::Result<NeutronResult<()>> {
    let Some(a) = a else {
        for k in ["port_id", "fixed_ip_address", "router_id"] {
            fip.doc.insert(k.into(), Value::Null);
        }
        fip.doc.remove("_fixed_subnet");
        fip.doc.insert("status".into(), json!("DOWN"));
        return Ok(Ok(()));
    };
    let Some(port) = db::get_tx(tx, ports::KIND, &a.port_id).await? else {
        return Ok(Err(NeutronError::not_found(ports::KIND, &a.port_id)));
    };
    let fnet = fip.str("floating_network_id").unwrap_or("").to_string();
    if port.str("network_id") == Some(fnet.as_str()) {
        return Ok(Err(bad_fip(format_args!(
            "Port {} is on the floating network {fnet}",
            port.id
        ))));
    }
    let v4: Vec<(String, IpAddr)> = ports::addresses(&port)
        .into_iter()
        .filter(|(_, ip)| ip.is_ipv4())
        .collect();
    let (subnet_id, fixed) = match a.fixed_ip {
        Some(ip) => match ports::addresses(&port).into_iter().find(|(_, x)| *x == ip) {
            Some(found) => found,
            None => {
                return Ok(Err(bad_fip(format_args!(
                    "Port {} does not have fixed ip {ip}",
                    port.id
                ))))
            }
        },
        None => match v4.as_slice() {
            [one] => one.clone(),
            [] => {
                return Ok(Err(bad_fip(format_args!(
                    "Cannot add floating IP to port {} that has no fixed IPv4 addresses",
                    port.id
                ))))
            }
            _ => {
                return Ok(Err(bad_fip(format_args!(
                    "Port {} has multiple fixed IPv4 addresses. Must provide a specific IPv4 \
                     address when assigning a floating IP",
                    port.id
                ))))
            }
        },
    };
    if !fixed.is_ipv4() {
        return Ok(Err(bad_fip(format_args!(
            "Cannot add floating IP to port {} that has no fixed IPv4 addresses",
            port.id
        ))));
    }
    for other in db::list_tx(tx, KIND, None).await? {
        if other.id != fip.id
            && other.str("floating_network_id") == Some(fnet.as_str())
            && other.str("port_id") == Some(port.id.as_str())
            && other.str("fixed_ip_address") == Some(fixed.to_string().as_str())
        {
            return Ok(Err(NeutronError::conflict(
                "FloatingIPPortAlreadyAssociated",
                format!(
                    "Cannot associate floating IP {} ({}) with port {} using fixed IP {fixed}, \
                     as that fixed IP already has a floating IP on external network {fnet}.",
                    fip.str("floating_ip_address").unwrap_or(""),
                    fip.id,
                    port.id
                ),
            )));
        }
    }
    let mut router_id = None;
    let mut routers = db::list_tx(tx, routers::KIND, None).await?;
    routers.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    for r in routers {
        if r.doc["external_gateway_info"]["network_id"].as_str() != Some(fnet.as_str()) {
            continue;
        }
        let on_subnet = routers::interfaces(tx, &r.id)
            .await?
            .iter()
            .any(|p| ports::addresses(p).iter().any(|(s, _)| *s == subnet_id));
        if on_subnet {
            router_id = Some(r.id);
            break;
        }
    }
    let Some(router_id) = router_id else {
        return Ok(Err(NeutronError::new(
            StatusCode::NOT_FOUND,
            "ExternalGatewayForFloatingIPNotFound",
            format!(
                "External network {fnet} is not reachable from subnet {subnet_id}.  Therefore, \
                 cannot associate Port {} with a Floating IP.",
                port.id
            ),
        )));
    };
    fip.doc.insert("port_id".into(), json!(port.id));
    fip.doc
        .insert("fixed_ip_address".into(), json!(fixed.to_string()));
    fip.doc.insert("router_id".into(), json!(router_id));
    fip.doc.insert("_fixed_subnet".into(), json!(subnet_id));
    fip.doc.insert("status".into(), json!("ACTIVE"));
    Ok(Ok(()))
}

/// Disassociates the floating IPs of a port being deleted, inside the port's write.
pub(crate) async fn port_deleted(tx: &mut Tx, port_id: &str) -> strata_core::Result<()> {
    for mut f in db::list_tx(tx, KIND, None).await? {
        if f.str("port_id") == Some(port_id) {
            let _ = associate(tx, &mut f, None).await?;
            db::save(tx, &mut f).await?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ handlers

const CREATE_ATTRS: &[&str] = &[
    "floating_network_id",
    "floating_ip_address",
    "subnet_id",
    "port_id",
    "fixed_ip_address",
    "description",
    "tenant_id",
    "project_id",
    "tags",
    "qos_policy_id",
    "dns_name",
    "dns_domain",
];

#[derive(Clone)]
struct Plan {
    fip: Resource,
    network_id: String,
    subnet_id: Option<String>,
    address: Option<IpAddr>,
    assoc: Option<Assoc>,
}

/// `POST /v2.0/floatingips`: 201.
pub async fn fip_create(
    State(svc): State<NetworkService>,
    auth: Auth,
    body: Body,
) -> NeutronResult<(StatusCode, Json<Value>)> {
    if !auth.can_write() {
        return Err(NeutronError::policy("create_floatingip"));
    }
    let m = body.entity("floatingip")?;
    only(&m, CREATE_ATTRS)?;
    let project = owner(&auth, &m)?;
    let Some(network_id) = uuid_attr(&m, "floating_network_id")? else {
        return Err(NeutronError::bad_request(
            "Failed to parse request. Required attribute 'floating_network_id' not specified",
        ));
    };
    let address = ip_attr(&m, "floating_ip_address")?;
    if address.is_some() && !auth.admin() {
        return Err(NeutronError::policy(
            "create_floatingip:floating_ip_address",
        ));
    }
    let subnet_id = uuid_attr(&m, "subnet_id")?;
    if m.get("qos_policy_id").is_some_and(|v| !v.is_null()) {
        return Err(bad_fip("QoS policies are not supported"));
    }
    let net = networks::find(&svc, &auth, &network_id).await?;
    if !net.flag("router:external") {
        return Err(bad_fip(format_args!(
            "Network {network_id} is not a valid external network"
        )));
    }
    let assoc = match uuid_attr(&m, "port_id")? {
        Some(p) => {
            match db::get(svc.store(), ports::KIND, &p).await? {
                Some(port) if auth.owns(&port.project_id) => {}
                _ => return Err(NeutronError::not_found(ports::KIND, &p)),
            }
            Some(Assoc {
                port_id: p,
                fixed_ip: ip_attr(&m, "fixed_ip_address")?,
            })
        }
        None => None,
    };
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
    doc.insert("floating_network_id".into(), json!(network_id));
    doc.insert("floating_ip_address".into(), Value::Null);
    doc.insert("router_id".into(), Value::Null);
    doc.insert("port_id".into(), Value::Null);
    doc.insert("fixed_ip_address".into(), Value::Null);
    doc.insert("status".into(), json!("DOWN"));
    doc.insert(
        "description".into(),
        json!(string(&m, "description", 255)?.unwrap_or_default()),
    );
    doc.insert("tags".into(), tags);
    doc.insert("qos_policy_id".into(), Value::Null);
    doc.insert("port_forwardings".into(), json!([]));
    let plan = Plan {
        fip: Resource::new(KIND, strata_core::ids::uuid(), project, doc),
        network_id,
        subnet_id,
        address,
        assoc,
    };
    let cfg = svc.config().clone();
    let created = write(&svc, move |tx| {
        let (p, cfg) = (plan.clone(), cfg.clone());
        Box::pin(async move {
            let mut fip = p.fip;
            refuse!(crate::quota::check(tx, &cfg, &fip.project_id, "floatingip", 1).await?);
            let ask = match (&p.subnet_id, p.address) {
                (None, Some(ip)) => (None, Some(ip)),
                (Some(s), ip) => {
                    match db::get_tx(tx, subnets::KIND, s).await? {
                        Some(sub) if sub.str("network_id") == Some(p.network_id.as_str()) => {}
                        Some(_) => {
                            return Ok(Err(bad_fip(format_args!(
                                "Subnet {s} is not on network {}",
                                p.network_id
                            ))))
                        }
                        None => return Ok(Err(NeutronError::not_found(subnets::KIND, s))),
                    }
                    (Some(s.clone()), ip)
                }
                (None, None) => {
                    let mut v4: Vec<Resource> = db::list_tx(tx, subnets::KIND, None)
                        .await?
                        .into_iter()
                        .filter(|s| {
                            s.str("network_id") == Some(p.network_id.as_str())
                                && ipam::cidr_of(s).is_some_and(|c| c.version() == 4)
                        })
                        .collect();
                    v4.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                    let Some(first) = v4.first() else {
                        return Ok(Err(bad_fip(format_args!(
                            "Network {} does not contain any IPv4 subnet",
                            p.network_id
                        ))));
                    };
                    (Some(first.id.clone()), None)
                }
            };
            let port = refuse!(
                ports::create_service_port(
                    tx,
                    &cfg.base_mac,
                    "",
                    &p.network_id,
                    PORT_OWNER,
                    &fip.id,
                    Some(vec![ask]),
                )
                .await?
            );
            let addr = ports::addresses(&port)
                .first()
                .map(|(_, ip)| ip.to_string());
            fip.doc.insert("floating_ip_address".into(), json!(addr));
            fip.doc.insert("_port".into(), json!(port.id));
            refuse!(associate(tx, &mut fip, p.assoc).await?);
            db::insert(tx, &fip).await?;
            Ok(Ok(fip))
        })
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"floatingip": view(&created)})),
    ))
}

/// `GET /v2.0/floatingips`.
pub async fn fip_list(
    State(svc): State<NetworkService>,
    auth: Auth,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let all = db::list(svc.store(), KIND, None).await?;
    let views: Vec<Value> = all.iter().filter(|r| visible(&auth, r)).map(view).collect();
    let none = |_: &Value, _: &str, _: &[&str]| None;
    let views = list::filter(views, &q, ATTRS, &none)?;
    Ok(Json(list::respond(
        "floatingips",
        &super::collection_url(&svc, "floatingips"),
        views,
        &q,
        ATTRS,
    )?))
}

/// `GET /v2.0/floatingips/{id}`.
pub async fn fip_show(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    Pairs(q): Pairs,
) -> NeutronResult<Json<Value>> {
    let r = find(&svc, &auth, &id).await?;
    Ok(Json(
        json!({"floatingip": list::project(view(&r), &list::fields(&q))}),
    ))
}

/// `PUT /v2.0/floatingips/{id}`: associate (`port_id`, optionally `fixed_ip_address`),
/// disassociate (`port_id: null`), describe.
pub async fn fip_update(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> NeutronResult<Json<Value>> {
    find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("update_floatingip"));
    }
    let m = body.entity("floatingip")?;
    for k in m.keys() {
        if matches!(
            k.as_str(),
            "id" | "tenant_id"
                | "project_id"
                | "floating_network_id"
                | "floating_ip_address"
                | "status"
                | "router_id"
                | "subnet_id"
        ) {
            return Err(NeutronError::bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
    }
    only(
        &m,
        &[
            "port_id",
            "fixed_ip_address",
            "description",
            "qos_policy_id",
        ],
    )?;
    let description = string(&m, "description", 255)?;
    let fixed_ip = ip_attr(&m, "fixed_ip_address")?;
    let assoc: Option<Option<Assoc>> = if m.contains_key("port_id") {
        match uuid_attr(&m, "port_id")? {
            Some(p) => {
                match db::get(svc.store(), ports::KIND, &p).await? {
                    Some(port) if auth.owns(&port.project_id) => {}
                    _ => return Err(NeutronError::not_found(ports::KIND, &p)),
                }
                Some(Some(Assoc {
                    port_id: p,
                    fixed_ip,
                }))
            }
            None => Some(None),
        }
    } else if fixed_ip.is_some() {
        return Err(bad_fip(
            "fixed_ip_address cannot be specified without a port_id",
        ));
    } else {
        None
    };
    let updated = write(&svc, move |tx| {
        let (id, description, assoc) = (id.clone(), description.clone(), assoc.clone());
        Box::pin(async move {
            let Some(mut f) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            if let Some(d) = description {
                f.doc.insert("description".into(), json!(d));
            }
            if let Some(a) = assoc {
                refuse!(associate(tx, &mut f, a).await?);
            }
            db::save(tx, &mut f).await?;
            Ok(Ok(f))
        })
    })
    .await?;
    Ok(Json(json!({"floatingip": view(&updated)})))
}

/// `DELETE /v2.0/floatingips/{id}`: 204; its address is free again.
pub async fn fip_delete(
    State(svc): State<NetworkService>,
    auth: Auth,
    Path(id): Path<String>,
) -> NeutronResult<StatusCode> {
    find(&svc, &auth, &id).await?;
    if !auth.can_write() {
        return Err(NeutronError::policy("delete_floatingip"));
    }
    write(&svc, move |tx| {
        let id = id.clone();
        Box::pin(async move {
            let Some(f) = db::get_tx(tx, KIND, &id).await? else {
                return Ok(Err(NeutronError::not_found(KIND, &id)));
            };
            if let Some(p) = f.str("_port") {
                ports::remove_service_port(tx, p).await?;
            }
            db::delete(tx, KIND, &id).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
