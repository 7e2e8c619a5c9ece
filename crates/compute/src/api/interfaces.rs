//! Interfaces of servers (`os-interface`): list, show, attach and detach network ports.
//!
//! The listing and show are the network service's ports of the server (`device_id`), as the
//! caller sees them, in Nova's `interfaceAttachment` view (`tag` from 2.70, from the request
//! that made the port). Attach checks what Nova checks (the schema per microversion, the
//! server visible, policy, the lock, the server's state, the port free or the network
//! visible), then creates the port in the server's project bound to its host — or binds the
//! user's port — as the build saga's networking step does, and records it on the server in one
//! store write that also records the `attach_interface` action: the port and a network request
//! for it, so the host's agent gets the new VIF with the next generation (hot plug) and a
//! server that moves takes it along. A write that is refused (the server changed meanwhile)
//! undoes the port. Detach is the reverse: Nova's `preserve_on_delete` semantics — a port
//! created for the server is deleted, a port the user gave is only unbound — then the server
//! forgets it (`detach_interface`). Both answer once the network service has done its part
//! (attach 200 with the attachment, detach 202), the agent's plug or unplug following.

use super::servers::{check_lock, find, invalid_state};
use crate::controller::service_context;
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Body, Mv};
use crate::schema::{self, fail, repr};
use crate::server::{vm, NetRequest, PortRef, Server};
use crate::server_db as sdb;
use crate::version::Microversion;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use strata_api::inproc::Answer;
use strata_api::RequestId;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route(
            "/servers/{id}/os-interface",
            get(interface_list).post(interface_create),
        )
        .route(
            "/servers/{id}/os-interface/{port_id}",
            get(interface_show).delete(interface_delete),
        )
}

/// Nova's instance action names and events.
const ATTACH: &str = "attach_interface";
const ATTACH_EVENT: &str = "compute_attach_interface";
const DETACH: &str = "detach_interface";
const DETACH_EVENT: &str = "compute_detach_interface";

// ------------------------------------------------------------------ shared pieces

/// A port as Nova's `_translate_interface_attachment_view` shows it; `tag` (2.70) is
/// `Some(..)` when shown.
fn view(port: &Value, tag: Option<Option<String>>) -> Value {
    let fixed_ips: Vec<Value> = port["fixed_ips"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|ip| json!({"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}))
                .collect()
        })
        .unwrap_or_default();
    let mut v = json!({
        "net_id": port["network_id"],
        "port_id": port["id"],
        "mac_addr": port["mac_address"],
        "port_state": port["status"],
        "fixed_ips": fixed_ips,
    });
    if let Some(t) = tag {
        v["tag"] = json!(t);
    }
    v
}

/// The tag of the request that made the server's port `port_id`.
fn tag_of(s: &Server, port_id: &str) -> Option<String> {
    tag_in(&s.networks, &s.ports, port_id)
}

fn tag_in(networks: &[NetRequest], ports: &[PortRef], port_id: &str) -> Option<String> {
    ports
        .iter()
        .find(|p| p.port_id == port_id)
        .and_then(|p| networks.get(p.request))
        .and_then(|n| n.tag.clone())
}

fn shown_tag(s: &Server, port_id: &str, mv: Microversion) -> Option<Option<String>> {
    mv.at_least(70).then(|| tag_of(s, port_id))
}

fn no_network_service() -> NovaError {
    NovaError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Network driver does not support this function.",
    )
}

fn port_not_found(id: &str) -> NovaError {
    NovaError::not_found(format!("Port id {id} could not be found."))
}

/// Nova's `PROJECT_MEMBER_OR_ADMIN`: an admin, or a member (or manager) of the server's
/// project.
fn require_member(auth: &Auth, s: &Server, rule: &str) -> NovaResult<()> {
    let member = auth.0.has_role("member") || auth.0.has_role("manager");
    if auth.admin() || (auth.project() == s.project_id && member) {
        Ok(())
    } else {
        Err(NovaError::policy(rule))
    }
}

/// Nova's `check_instance_state` of attach and detach: active, paused or stopped, no task.
fn check_state(s: &Server, action: &str) -> NovaResult<()> {
    if !matches!(s.vm_state.as_str(), vm::ACTIVE | vm::PAUSED | vm::STOPPED) {
        return Err(invalid_state(s, "vm_state", action));
    }
    if s.task_state.is_some() {
        return Err(invalid_state(s, "task_state", action));
    }
    Ok(())
}

fn request_id(rid: Option<Extension<RequestId>>) -> String {
    rid.map(|Extension(r)| r.0)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()))
}

/// Neutron's exception name in an error answer.
fn neutron_type(a: &Answer) -> &str {
    a.body["NeutronError"]["type"].as_str().unwrap_or_default()
}

/// Records a failed action (started and finished with `error`) on the server.
async fn record_failure(
    svc: &ComputeService,
    s: &Server,
    rid: &str,
    action: &'static str,
    event: &'static str,
    user: &str,
    error: &str,
) {
    let sid = s.id.clone();
    let (s, rid, user, error) = (
        s.clone(),
        rid.to_string(),
        user.to_string(),
        error.to_string(),
    );
    let r = svc
        .store()
        .write(move |tx| {
            let (s, rid, user, error) = (s.clone(), rid.clone(), user.clone(), error.clone());
            Box::pin(async move {
                sdb::action_start(tx, &s, &rid, action, &user, event).await?;
                sdb::action_finish(tx, &s.id, Some(&error)).await
            })
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(server = %sid, error = %e, "recording a failed {action}");
    }
}

// ------------------------------------------------------------------ list, show

/// `GET /servers/{id}/os-interface`.
pub async fn interface_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(&s.project_id, "os_compute_api:os-attach-interfaces:list")?;
    let a = svc
        .neutron(
            auth.0.clone(),
            Method::GET,
            &format!("/ports?device_id={}", s.id),
            None,
        )
        .await
        .ok_or_else(no_network_service)?;
    if !a.ok() {
        return Err(NovaError::not_found(a.message()));
    }
    let list: Vec<Value> = a.body["ports"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|p| {
                    let pid = p["id"].as_str().unwrap_or_default();
                    view(p, shown_tag(&s, pid, mv))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({ "interfaceAttachments": list })))
}

/// `GET /servers/{id}/os-interface/{port_id}`.
pub async fn interface_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    Path((id, port_id)): Path<(String, String)>,
) -> NovaResult<Json<Value>> {
    let s = find(&svc, &auth, &id).await?;
    auth.require_reader_of(&s.project_id, "os_compute_api:os-attach-interfaces:show")?;
    let a = svc
        .neutron(
            auth.0.clone(),
            Method::GET,
            &format!("/ports/{port_id}"),
            None,
        )
        .await
        .ok_or_else(no_network_service)?;
    match a.status.as_u16() {
        200 => {}
        403 => return Err(NovaError::forbidden(a.message())),
        _ => return Err(port_not_found(&port_id)),
    }
    let port = &a.body["port"];
    if port["device_id"].as_str() != Some(s.id.as_str()) {
        return Err(NovaError::not_found(format!(
            "Instance {id} does not have a port with id {port_id}"
        )));
    }
    Ok(Json(
        json!({ "interfaceAttachment": view(port, shown_tag(&s, &port_id, mv)) }),
    ))
}

// ------------------------------------------------------------------ attach

struct AttachReq {
    net_id: Option<String>,
    port_id: Option<String>,
    ip: Option<String>,
    tag: Option<String>,
}

fn uuid_field(v: &Value, field: &str) -> NovaResult<String> {
    match v.as_str() {
        Some(s) if uuid::Uuid::parse_str(s).is_ok() => Ok(s.to_string()),
        Some(_) => Err(fail(Some(field), v, format!("{} is not a 'uuid'", repr(v)))),
        None => Err(fail(
            Some(field),
            v,
            format!("{} is not of type 'string'", repr(v)),
        )),
    }
}

/// Nova's `attach_interfaces.create` (and `create_v249` with `tag`); a missing body or
/// envelope is an attach to the project's one network.
fn parse_create(body: &Value, mv: Microversion) -> NovaResult<AttachReq> {
    let mut out = AttachReq {
        net_id: None,
        port_id: None,
        ip: None,
        tag: None,
    };
    if body.is_null() {
        return Ok(out);
    }
    let top = schema::object(body, None)?;
    schema::only(top, &["interfaceAttachment"], None, body)?;
    let Some(whole) = top.get("interfaceAttachment") else {
        return Ok(out);
    };
    let m = schema::object(whole, Some("interfaceAttachment"))?;
    let mut allowed = vec!["net_id", "port_id", "fixed_ips"];
    if mv.at_least(49) {
        allowed.push("tag");
    }
    schema::only(m, &allowed, Some("interfaceAttachment"), whole)?;
    out.net_id = m
        .get("net_id")
        .map(|v| uuid_field(v, "net_id"))
        .transpose()?;
    out.port_id = m
        .get("port_id")
        .map(|v| uuid_field(v, "port_id"))
        .transpose()?;
    if let Some(v) = m.get("fixed_ips") {
        let list = v.as_array().ok_or_else(|| {
            fail(
                Some("fixed_ips"),
                v,
                format!("{} is not of type 'array'", repr(v)),
            )
        })?;
        if list.is_empty() {
            return Err(fail(
                Some("fixed_ips"),
                v,
                format!("{} is too short", repr(v)),
            ));
        }
        if list.len() > 1 {
            return Err(fail(
                Some("fixed_ips"),
                v,
                format!("{} is too long", repr(v)),
            ));
        }
        let item = &list[0];
        let o = schema::object(item, Some("fixed_ips"))?;
        schema::only(o, &["ip_address"], Some("fixed_ips"), item)?;
        let ip = schema::require(o, "ip_address", Some("fixed_ips"), item)?;
        match ip.as_str() {
            Some(s) if s.parse::<std::net::IpAddr>().is_ok() => out.ip = Some(s.to_string()),
            _ => {
                return Err(fail(
                    Some("ip_address"),
                    ip,
                    format!("{} is not valid under any of the given schemas", repr(ip)),
                ))
            }
        }
    }
    if let Some(v) = m.get("tag") {
        let s = schema::string(v, "tag", 0, 60)?;
        if s.contains('/') || s.contains(',') {
            return Err(fail(
                Some("tag"),
                v,
                format!("{} does not match '^[^,/]*$'", repr(v)),
            ));
        }
        out.tag = Some(s.to_string());
    }
    Ok(out)
}

/// The one network the server's project can use when none is named (its own or shared, not
/// external), as the caller sees them.
async fn only_network(svc: &ComputeService, auth: &Auth, project: &str) -> NovaResult<String> {
    let a = svc
        .neutron(auth.0.clone(), Method::GET, "/networks", None)
        .await
        .ok_or_else(no_network_service)?;
    let nets: Vec<String> = a.body["networks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            !n["router:external"].as_bool().unwrap_or(false)
                && (n["project_id"].as_str() == Some(project)
                    || n["shared"].as_bool() == Some(true))
        })
        .filter_map(|n| n["id"].as_str().map(String::from))
        .collect();
    match nets.len() {
        0 => Err(NovaError::bad_request(format!(
            "No specific network was requested and none are available for project '{project}'."
        ))),
        1 => Ok(nets[0].clone()),
        _ => Err(NovaError::bad_request(
            "Multiple possible networks found, use a Network ID to be more specific.",
        )),
    }
}

/// A refusal of the network service's port create or bind, as Nova relays it.
fn relay_port_error(a: &Answer, s: &Server, net: &str, ip: Option<&str>) -> NovaError {
    match (a.status.as_u16(), neutron_type(a)) {
        (409, "OverQuota") => NovaError::forbidden("Maximum number of ports exceeded"),
        (409, "IpAddressAlreadyAllocated") | (409, "IpAddressInUse") => {
            NovaError::conflict(format!(
                "Fixed IP address {} is already in use on instance {}.",
                ip.unwrap_or_default(),
                s.id
            ))
        }
        (409, "IpAddressGenerationFailure") => NovaError::bad_request(format!(
            "No fixed IP addresses available for network: {net}"
        )),
        (409, "PortInUse") => NovaError::conflict(a.message()),
        (400, _) => NovaError::bad_request(a.message()),
        (404, _) => NovaError::not_found(a.message()),
        _ => NovaError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to attach network adapter device to {}", s.id),
        ),
    }
}

/// Undoes a port made or bound for an attach that was not recorded.
async fn undo_port(svc: &ComputeService, project: &str, port_id: &str, created: bool) {
    let ctx = service_context(project);
    let r = if created {
        svc.neutron(ctx, Method::DELETE, &format!("/ports/{port_id}"), None)
            .await
    } else {
        let body = json!({"port": {"device_id": "", "device_owner": "", "binding:host_id": ""}});
        svc.neutron(ctx, Method::PUT, &format!("/ports/{port_id}"), Some(&body))
            .await
    };
    if let Some(a) = r.filter(|a| !a.ok() && a.status != StatusCode::NOT_FOUND) {
        tracing::warn!(port = %port_id, error = %a.message(), "undoing an interface attach");
    }
}

/// `POST /servers/{id}/os-interface`: 200 with the new attachment.
pub async fn interface_create(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    rid: Option<Extension<RequestId>>,
    Path(id): Path<String>,
    Body(body): Body,
) -> NovaResult<Json<Value>> {
    let req = parse_create(&body, mv)?;
    let s = find(&svc, &auth, &id).await?;
    require_member(&auth, &s, "os_compute_api:os-attach-interfaces:create")?;
    if req.net_id.is_some() && req.port_id.is_some() {
        return Err(NovaError::bad_request(
            "Must not input both network_id and port_id",
        ));
    }
    if req.ip.is_some() && req.net_id.is_none() {
        return Err(NovaError::bad_request(
            "Must input network_id when request IP address",
        ));
    }
    check_lock(&auth, &s)?;
    check_state(&s, ATTACH)?;
    let Some(host) = s.host.clone() else {
        return Err(invalid_state(&s, "vm_state", ATTACH));
    };
    let rid = request_id(rid);
    let ctx = service_context(&s.project_id);
    let owner = format!(
        "compute:{}",
        s.availability_zone.clone().unwrap_or_else(|| "nova".into())
    );
    // The port or network, as the caller sees it.
    let (answer, created, net_id) = if let Some(pid) = &req.port_id {
        let a = svc
            .neutron(auth.0.clone(), Method::GET, &format!("/ports/{pid}"), None)
            .await
            .ok_or_else(no_network_service)?;
        if !a.ok() {
            return Err(port_not_found(pid));
        }
        let port = &a.body["port"];
        if port["device_id"].as_str().is_some_and(|d| !d.is_empty()) {
            return Err(NovaError::conflict(format!("Port {pid} is still in use.")));
        }
        let net = port["network_id"].as_str().unwrap_or_default().to_string();
        let body = json!({"port": {"device_id": s.id, "device_owner": owner,
            "binding:host_id": host}});
        let a = svc
            .neutron(
                ctx.clone(),
                Method::PUT,
                &format!("/ports/{pid}"),
                Some(&body),
            )
            .await
            .ok_or_else(no_network_service)?;
        (a, false, net)
    } else {
        let net = match &req.net_id {
            Some(n) => {
                let a = svc
                    .neutron(auth.0.clone(), Method::GET, &format!("/networks/{n}"), None)
                    .await
                    .ok_or_else(no_network_service)?;
                if !a.ok() {
                    return Err(NovaError::not_found(format!(
                        "Network {n} could not be found."
                    )));
                }
                n.clone()
            }
            None => only_network(&svc, &auth, &s.project_id).await?,
        };
        let mut port = json!({"network_id": net, "project_id": s.project_id,
            "device_id": s.id, "device_owner": owner, "binding:host_id": host});
        if !s.security_groups.is_empty() {
            port["security_groups"] = json!(s.security_groups);
        }
        if let Some(ip) = &req.ip {
            port["fixed_ips"] = json!([{ "ip_address": ip }]);
        }
        let a = svc
            .neutron(
                ctx.clone(),
                Method::POST,
                "/ports",
                Some(&json!({ "port": port })),
            )
            .await
            .ok_or_else(no_network_service)?;
        (a, true, net)
    };
    if !answer.ok() {
        let e = relay_port_error(&answer, &s, &net_id, req.ip.as_deref());
        record_failure(
            &svc,
            &s,
            &rid,
            ATTACH,
            ATTACH_EVENT,
            auth.user(),
            &e.message,
        )
        .await;
        return Err(e);
    }
    let port = answer.body["port"].clone();
    let port_id = port["id"].as_str().unwrap_or_default().to_string();
    let net = svc
        .neutron(
            ctx.clone(),
            Method::GET,
            &format!("/networks/{net_id}"),
            None,
        )
        .await
        .map(|a| a.body["network"].clone())
        .unwrap_or(Value::Null);
    let ips = port["fixed_ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|ip| ip["ip_address"].as_str())
                .map(|ip| (ip.to_string(), if ip.contains(':') { 6 } else { 4 }))
                .collect()
        })
        .unwrap_or_default();
    let pref = PortRef {
        port_id: port_id.clone(),
        network_id: net_id.clone(),
        network_name: net["name"].as_str().unwrap_or(&net_id).to_string(),
        mac: port["mac_address"].as_str().unwrap_or_default().into(),
        ips,
        created,
        request: 0,
        mtu: net["mtu"].as_i64().unwrap_or(1500),
    };
    let nreq = NetRequest {
        network_id: Some(net_id.clone()),
        port_id: (!created).then(|| port_id.clone()),
        fixed_ip: req.ip.clone(),
        tag: req.tag.clone(),
    };
    let admin = auth.admin();
    let user = auth.user().to_string();
    let (sid, rid2) = (s.id.clone(), rid.clone());
    let written = svc
        .store()
        .write_or_refuse(move |tx| {
            let (sid, rid, user, pref, nreq, host) = (
                sid.clone(),
                rid2.clone(),
                user.clone(),
                pref.clone(),
                nreq.clone(),
                host.clone(),
            );
            Box::pin(async move {
                let Some(old) = sdb::get_tx(tx, &sid).await? else {
                    return Ok(Err(super::servers::not_found(&sid)));
                };
                if old.deleted {
                    return Ok(Err(super::servers::not_found(&sid)));
                }
                if old.locked && !admin {
                    return Ok(Err(NovaError::conflict(format!(
                        "Instance {sid} is locked"
                    ))));
                }
                if let Err(e) = check_state(&old, ATTACH) {
                    return Ok(Err(e));
                }
                // The port is bound to the host the server was on when the attach began.
                if old.host.as_deref() != Some(host.as_str()) {
                    return Ok(Err(invalid_state(&old, "vm_state", ATTACH)));
                }
                let mut n = old.clone();
                n.networks.push(nreq);
                let mut pref = pref;
                pref.request = n.networks.len() - 1;
                n.ports.push(pref);
                n.generation += 1;
                sdb::action_start(tx, &n, &rid, ATTACH, &user, ATTACH_EVENT).await?;
                sdb::action_finish(tx, &sid, None).await?;
                sdb::save(tx, &old, &mut n).await?;
                Ok(Ok(n))
            })
        })
        .await;
    let s = match written {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            undo_port(&svc, &s.project_id, &port_id, created).await;
            return Err(e);
        }
        Err(e) => {
            undo_port(&svc, &s.project_id, &port_id, created).await;
            return Err(e.into());
        }
    };
    Ok(Json(
        json!({ "interfaceAttachment": view(&port, shown_tag(&s, &port_id, mv)) }),
    ))
}

// ------------------------------------------------------------------ detach

/// `DELETE /servers/{id}/os-interface/{port_id}`: 202.
pub async fn interface_delete(
    State(svc): State<ComputeService>,
    auth: Auth,
    rid: Option<Extension<RequestId>>,
    Path((id, port_id)): Path<(String, String)>,
) -> NovaResult<StatusCode> {
    let s = find(&svc, &auth, &id).await?;
    require_member(&auth, &s, "os_compute_api:os-attach-interfaces:delete")?;
    check_lock(&auth, &s)?;
    check_state(&s, DETACH)?;
    let Some(p) = s.ports.iter().find(|p| p.port_id == port_id).cloned() else {
        let a = svc
            .neutron(
                auth.0.clone(),
                Method::GET,
                &format!("/ports/{port_id}"),
                None,
            )
            .await
            .ok_or_else(no_network_service)?;
        if !a.ok() {
            return Err(port_not_found(&port_id));
        }
        return Err(NovaError::not_found(format!(
            "Instance {id} does not have a port with id {port_id}"
        )));
    };
    let rid = request_id(rid);
    // The network service first: a port the server still lists is released again by the
    // next detach or by the server's deletion, never left bound to a forgotten server.
    let ctx = service_context(&s.project_id);
    let a = if p.created {
        svc.neutron(ctx, Method::DELETE, &format!("/ports/{port_id}"), None)
            .await
    } else {
        let body = json!({"port": {"device_id": "", "device_owner": "", "binding:host_id": ""}});
        svc.neutron(ctx, Method::PUT, &format!("/ports/{port_id}"), Some(&body))
            .await
    }
    .ok_or_else(no_network_service)?;
    if !a.ok() && a.status != StatusCode::NOT_FOUND {
        let msg = format!("Failed to detach network adapter device from {id}");
        record_failure(
            &svc,
            &s,
            &rid,
            DETACH,
            DETACH_EVENT,
            auth.user(),
            &a.message(),
        )
        .await;
        return Err(NovaError::new(StatusCode::INTERNAL_SERVER_ERROR, msg));
    }
    let admin = auth.admin();
    let user = auth.user().to_string();
    let sid = s.id.clone();
    svc.store()
        .write_or_refuse(move |tx| {
            let (sid, rid, user, pid) = (sid.clone(), rid.clone(), user.clone(), port_id.clone());
            Box::pin(async move {
                let Some(old) = sdb::get_tx(tx, &sid).await? else {
                    return Ok(Err(super::servers::not_found(&sid)));
                };
                if old.deleted {
                    return Ok(Err(super::servers::not_found(&sid)));
                }
                if old.locked && !admin {
                    return Ok(Err(NovaError::conflict(format!(
                        "Instance {sid} is locked"
                    ))));
                }
                let mut n = old.clone();
                forget_port(&mut n.networks, &mut n.ports, &pid);
                n.generation += 1;
                sdb::action_start(tx, &n, &rid, DETACH, &user, DETACH_EVENT).await?;
                sdb::action_finish(tx, &sid, None).await?;
                sdb::save(tx, &old, &mut n).await?;
                Ok(Ok(()))
            })
        })
        .await??;
    Ok(StatusCode::ACCEPTED)
}

/// Takes the port and the network request it realised off the server, renumbering the
/// requests of the ports after it.
fn forget_port(networks: &mut Vec<NetRequest>, ports: &mut Vec<PortRef>, port_id: &str) {
    let Some(at) = ports.iter().position(|p| p.port_id == port_id) else {
        return;
    };
    let p = ports.remove(at);
    // Another port may realise the same request (never the case today; kept safe).
    if ports.iter().any(|x| x.request == p.request) || p.request >= networks.len() {
        return;
    }
    networks.remove(p.request);
    for x in ports.iter_mut().filter(|x| x.request > p.request) {
        x.request -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(id: &str, request: usize) -> PortRef {
        PortRef {
            port_id: id.into(),
            network_id: "n".into(),
            network_name: "n".into(),
            mac: String::new(),
            ips: Vec::new(),
            created: true,
            request,
            mtu: 1500,
        }
    }

    #[test]
    fn detaching_renumbers_the_later_requests() {
        let nets: Vec<NetRequest> = (0..3)
            .map(|i| NetRequest {
                tag: Some(format!("t{i}")),
                ..Default::default()
            })
            .collect();
        let mut nets = nets;
        let mut ports = vec![port("a", 0), port("b", 1), port("c", 2)];
        forget_port(&mut nets, &mut ports, "b");
        assert_eq!(nets.len(), 2);
        assert_eq!(ports.len(), 2);
        assert_eq!(tag_in(&nets, &ports, "c").as_deref(), Some("t2"));
        assert_eq!(tag_in(&nets, &ports, "a").as_deref(), Some("t0"));
        forget_port(&mut nets, &mut ports, "nope");
        assert_eq!(ports.len(), 2);
    }
}
