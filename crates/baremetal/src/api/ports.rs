//! `/v1/ports` and `/v1/nodes/{ident}/ports`: a node's NICs, each with a unique MAC address.

use super::nodes::{needs, only};
use super::{collection, find_node, paging};
use crate::db::{self, Bind, ListQuery};
use crate::error::{IronicError, IronicResult};
use crate::extract::{Admin, Body, Mv, Query};
use crate::model::{self, Port, PORT_FIELDS, PORT_SCHEMA};
use crate::patch;
use crate::states;
use crate::version::Microversion;
use crate::BaremetalService;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Map, Value};
use strata_core::time::now_micros;

fn view(svc: &BaremetalService, p: &Port, mv: Microversion, fields: Option<&[String]>) -> Value {
    model::port_view(p, mv, fields, &svc.root_url())
}

/// Finds a port by UUID, or (from 1.88) by name.
async fn find_port(svc: &BaremetalService, ident: &str, mv: Microversion) -> IronicResult<Port> {
    if model::is_uuid_like(ident) {
        return db::get_port(svc.store(), &model::canonical_uuid(ident))
            .await?
            .ok_or_else(|| IronicError::port_not_found(ident));
    }
    if mv.at_least(88) && model::is_valid_logical_name(ident) {
        return db::get_port_by_name(svc.store(), ident)
            .await?
            .ok_or_else(|| IronicError::port_not_found(ident));
    }
    Err(IronicError::invalid(format!(
        "Expected UUID or name for port: {ident}"
    )))
}

const LIST_PARAMS: &[&str] = &[
    "node",
    "node_uuid",
    "address",
    "marker",
    "limit",
    "sort_key",
    "sort_dir",
    "fields",
    "portgroup",
    "detail",
    "shard",
    "description_contains",
    "conductor_groups",
];

fn sort_column(key: &str) -> Option<(&'static str, bool)> {
    Some(match key {
        "id" => ("seq", false),
        "uuid" => ("uuid", true),
        "address" => ("address", true),
        "name" => ("name", true),
        "node_uuid" => ("node_uuid", true),
        "created_at" => ("created_at", false),
        "updated_at" => ("updated_at", false),
        _ => return None,
    })
}

fn sort_value(p: &Port, col: &str) -> Bind {
    match col {
        "uuid" => Bind::Text(p.uuid.clone()),
        "address" => Bind::Text(p.address.clone()),
        "name" => Bind::Text(p.name.clone().unwrap_or_default()),
        "node_uuid" => Bind::Text(p.node_uuid.clone()),
        "created_at" => Bind::Int(p.created_at),
        "updated_at" => Bind::Int(p.updated_at.unwrap_or(0)),
        _ => Bind::Int(p.id),
    }
}

async fn list(
    svc: BaremetalService,
    admin: Admin,
    mv: Microversion,
    q: Query,
    parent: Option<String>,
    detail_path: bool,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:port:list")?;
    let fields = super::list_fields(
        &q,
        mv,
        LIST_PARAMS,
        detail_path,
        model::PORT_DEFAULT_FIELDS,
        PORT_FIELDS,
        |f| super::unknown_fields(f, &model::port_field_names()),
    )?;
    let page = paging(&q, svc.config().max_limit)?;
    model::check_fields_allowed(PORT_FIELDS, std::slice::from_ref(&page.sort_key), mv)?;
    let Some((col, text)) = sort_column(&page.sort_key) else {
        return Err(IronicError::invalid(format!(
            "The sort_key value {} is an invalid field for sorting",
            page.sort_key
        )));
    };
    let mut lq = ListQuery::new(col, text, page.desc, page.limit);
    if q.get("portgroup").is_some() {
        needs(true, mv, 24)?;
        // No port groups are served: no port is in one.
        lq.filter("1 = 0", vec![]);
    }
    let shard = q.list("shard");
    needs(shard.is_some(), mv, 82)?;
    let node_ident = parent.clone().or_else(|| {
        q.uuid("node_uuid")
            .ok()
            .flatten()
            .or_else(|| q.get("node").map(str::to_string))
    });
    if let Some(bad) = q.get("node_uuid").filter(|v| !model::is_uuid_like(v)) {
        return Err(IronicError::invalid(format!(
            "Expected UUID for node_uuid: {bad}"
        )));
    }
    let exclusive = [
        node_ident.is_some(),
        q.get("portgroup").is_some(),
        shard.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if exclusive > 1 {
        return Err(IronicError::invalid("Operation not permitted."));
    }
    let groups = q.list("conductor_groups");
    needs(groups.is_some(), mv, 99)?;
    if groups.is_some() && (node_ident.is_some() || q.get("address").is_some()) {
        return Err(IronicError::invalid(
            "Filtering by conductor_groups cannot be combined with node_ident, \
             portgroup_ident, or node address filters.",
        ));
    }
    if let Some(ident) = &node_ident {
        if !mv.at_least(5) && !model::is_uuid_like(ident) {
            return Err(IronicError::not_acceptable());
        }
        let n = find_node(&svc, ident, mv).await?;
        lq.filter("node_uuid = ?", vec![Bind::Text(n.uuid)]);
    }
    if let Some(a) = q.get("address") {
        let mac = model::normalize_mac(a).ok_or_else(|| {
            IronicError::invalid(format!("Expected valid MAC address for address: {a}"))
        })?;
        lq.filter("address = ?", vec![Bind::Text(mac)]);
    }
    if let Some(shards) = shard {
        let marks = vec!["?"; shards.len().max(1)].join(", ");
        let mut binds: Vec<Bind> = shards.into_iter().map(Bind::Text).collect();
        if binds.is_empty() {
            binds.push(Bind::Text(String::new()));
        }
        lq.filter(
            &format!("node_uuid IN (SELECT uuid FROM baremetal_node WHERE shard IN ({marks}))"),
            binds,
        );
    }
    if let Some(groups) = groups {
        let marks = vec!["?"; groups.len().max(1)].join(", ");
        let mut binds: Vec<Bind> = groups.into_iter().map(Bind::Text).collect();
        if binds.is_empty() {
            binds.push(Bind::Text(String::new()));
        }
        lq.filter(
            &format!(
                "node_uuid IN (SELECT uuid FROM baremetal_node WHERE conductor_group IN \
                 ({marks}))"
            ),
            binds,
        );
    }
    if let Some(v) = q.get("description_contains") {
        let pat = format!(
            "%{}%",
            v.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        lq.filter("description LIKE ? ESCAPE '\\'", vec![Bind::Text(pat)]);
    }
    if let Some(m) = &page.marker {
        let marker = db::get_port(svc.store(), m)
            .await?
            .ok_or_else(|| IronicError::port_not_found(m))?;
        lq.marker = Some((sort_value(&marker, col), marker.id));
    }
    let ports = db::list_ports(svc.store(), lq).await?;
    let items: Vec<Value> = ports
        .iter()
        .map(|p| view(&svc, p, mv, fields.as_deref()))
        .collect();
    let mut args: Vec<(&str, String)> = Vec::new();
    if let Some(d) = q.boolean("detail")? {
        args.push(("detail", d.to_string()));
    }
    args.push(("sort_key", page.sort_key.clone()));
    args.push(("sort_dir", if page.desc { "desc" } else { "asc" }.into()));
    let resource = match (&parent, detail_path) {
        (Some(n), false) => format!("nodes/{n}/ports"),
        (Some(n), true) => format!("nodes/{n}/ports/detail"),
        (None, false) => "ports".into(),
        (None, true) => "ports/detail".into(),
    };
    Ok(Json(collection(
        &svc,
        "ports",
        items,
        page.limit,
        &resource,
        &args,
        q.list("fields").as_deref(),
    )))
}

/// `GET /v1/ports` and `GET /v1/ports/detail`.
pub async fn port_list(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    uri: http::Uri,
    q: Query,
) -> IronicResult<Json<Value>> {
    let detail = super::is_detail(&uri);
    list(svc, admin, mv, q, None, detail).await
}

/// `GET /v1/nodes/{ident}/ports` and `…/ports/detail`.
pub async fn node_port_list(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    uri: http::Uri,
    q: Query,
) -> IronicResult<Json<Value>> {
    let detail = super::is_detail(&uri);
    list(svc, admin, mv, q, Some(ident), detail).await
}

/// `GET /v1/ports/{ident}`.
pub async fn port_get(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    q: Query,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:port:get")?;
    only(&q, &["fields"])?;
    let fields = q.list("fields");
    if let Some(f) = &fields {
        if !mv.at_least(8) {
            return Err(IronicError::not_acceptable());
        }
        model::check_fields_allowed(PORT_FIELDS, f, mv)?;
    }
    let p = find_port(&svc, &ident, mv).await?;
    if let Some(f) = &fields {
        super::unknown_fields(f, &model::port_field_names())?;
    }
    Ok(Json(view(&svc, &p, mv, fields.as_deref())))
}

/// 406 when a body sets a port field newer than `mv` (Ironic's `_check_allowed_port_fields`).
fn check_port_fields(f: &Map<String, Value>, mv: Microversion) -> IronicResult<()> {
    for (k, v) in f {
        if model::field_version(PORT_FIELDS, k) > mv.0 && !v.is_null() {
            return Err(IronicError::not_acceptable());
        }
    }
    if f.contains_key("node_ident") && !mv.at_least(94) {
        return Err(IronicError::not_acceptable());
    }
    if let Some(Value::Object(ll)) = f.get("local_link_connection") {
        if ll.contains_key("network_type") && !mv.at_least(64) {
            return Err(IronicError::not_acceptable());
        }
        if ll.contains_key("vtep-logical-switch") && !mv.at_least(90) {
            return Err(IronicError::not_acceptable());
        }
    }
    Ok(())
}

/// Copies validated fields onto `p`.
fn assign(p: &mut Port, f: &Map<String, Value>) -> IronicResult<()> {
    for (k, v) in f {
        let s = || v.as_str().map(str::to_string);
        match k.as_str() {
            "address" => {
                let a = v.as_str().unwrap_or_default();
                p.address = model::normalize_mac(a).ok_or_else(|| {
                    IronicError::invalid(format!("Expected valid MAC address for address: {a}"))
                })?;
            }
            "extra" => p.extra = v.as_object().cloned().unwrap_or_default(),
            "local_link_connection" => {
                p.local_link_connection =
                    model::check_local_link(&v.as_object().cloned().unwrap_or_default())?
            }
            "pxe_enabled" => p.pxe_enabled = v.as_bool().unwrap_or(true),
            "is_smartnic" => p.is_smartnic = v.as_bool().unwrap_or(false),
            "physical_network" => {
                if v.as_str() == Some("") {
                    return Err(IronicError::invalid(
                        "A non-empty value is required when setting physical_network",
                    ));
                }
                p.physical_network = s()
            }
            "name" => {
                if let Some(n) = v.as_str() {
                    if !model::is_valid_logical_name(n) {
                        return Err(IronicError::invalid(format!(
                            "Expected a logical name but received {n}."
                        )));
                    }
                }
                p.name = s()
            }
            "description" => p.description = s(),
            "vendor" => p.vendor = s(),
            "category" => p.category = s(),
            "available_for_dynamic_portgroup" => {
                p.available_for_dynamic_portgroup = v.as_bool().unwrap_or(true)
            }
            _ => {}
        }
    }
    if p.is_smartnic {
        let ll = &p.local_link_connection;
        if !(ll.contains_key("port_id") && ll.contains_key("hostname")) {
            return Err(IronicError::invalid(
                "Smart NIC port must have port_id and hostname in local_link_connection",
            ));
        }
    }
    Ok(())
}

/// The uniqueness checks of a port write (MAC, name).
async fn check_unique(
    tx: &mut strata_store::Tx,
    p: &Port,
) -> strata_core::Result<IronicResult<()>> {
    if let Some(other) = db::uuid_by(tx, "baremetal_port", "address", &p.address).await? {
        if other != p.uuid {
            return Ok(Err(IronicError::conflict(format!(
                "A port with MAC address {} already exists.",
                p.address
            ))));
        }
    }
    if let Some(name) = &p.name {
        if let Some(other) = db::uuid_by(tx, "baremetal_port", "name", name).await? {
            if other != p.uuid {
                return Ok(Err(IronicError::conflict(format!(
                    "A port with name {name} already exists."
                ))));
            }
        }
    }
    Ok(Ok(()))
}

/// `POST /v1/ports`.
pub async fn port_create(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    body: Body,
) -> IronicResult<Response> {
    admin.require("baremetal:port:create")?;
    let raw = body.object("port")?;
    let f = model::validate("port", &raw, PORT_SCHEMA, &[])?;
    if !f.contains_key("address") {
        return Err(IronicError::invalid(
            "Schema error for port: 'address' is a required property",
        ));
    }
    match (f.contains_key("node_uuid"), f.contains_key("node_ident")) {
        (true, true) => {
            return Err(IronicError::invalid(format!(
                "Schema error for port: {} is valid under each of {{'required': \
                 ['node_uuid']}}, {{'required': ['node_ident']}}",
                patch::py(&Value::Object(raw.clone()))
            )))
        }
        (false, false) => {
            return Err(IronicError::invalid(format!(
                "Schema error for port: {} is not valid under any of the given schemas",
                patch::py(&Value::Object(raw.clone()))
            )))
        }
        _ => {}
    }
    if let Some(a) = f.get("address").and_then(|v| v.as_str()) {
        if model::normalize_mac(a).is_none() {
            return Err(IronicError::invalid(format!(
                "Expected valid MAC address for address: {a}"
            )));
        }
    }
    if let Some(u) = f.get("node_uuid").and_then(|v| v.as_str()) {
        if !model::is_uuid_like(u) {
            return Err(IronicError::invalid(format!(
                "Expected UUID for node_uuid: {u}"
            )));
        }
    }
    check_port_fields(&f, mv)?;
    let ident = f
        .get("node_ident")
        .or_else(|| f.get("node_uuid"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let node = find_node(&svc, &ident, mv).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            IronicError::invalid(format!("Node {ident} could not be found."))
        } else {
            e
        }
    })?;
    if let Some(pg) = f.get("portgroup_uuid").and_then(|v| v.as_str()) {
        return Err(IronicError::invalid(format!(
            "Portgroup {pg} could not be found."
        )));
    }
    let mut p = Port {
        uuid: f
            .get("uuid")
            .and_then(|v| v.as_str())
            .map(model::canonical_uuid)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        node_uuid: node.uuid.clone(),
        pxe_enabled: true,
        available_for_dynamic_portgroup: true,
        created_at: now_micros(),
        ..Default::default()
    };
    assign(&mut p, &f)?;
    let port = p.clone();
    let created = svc
        .store()
        .write_or_refuse(move |tx| {
            let mut p = port.clone();
            Box::pin(async move {
                if db::get_port_tx(tx, &p.uuid).await?.is_some() {
                    return Ok(Err(IronicError::conflict(format!(
                        "A port with UUID {} already exists.",
                        p.uuid
                    ))));
                }
                if db::get_node_tx(tx, &p.node_uuid).await?.is_none() {
                    return Ok(Err(IronicError::invalid(format!(
                        "Node {} could not be found.",
                        p.node_uuid
                    ))));
                }
                if let Err(e) = check_unique(tx, &p).await? {
                    return Ok(Err(e));
                }
                p.id = db::next_seq(tx, "baremetal_port").await?;
                db::insert_port(tx, &p).await?;
                Ok(Ok(p))
            })
        })
        .await??;
    let location = format!("{}/v1/ports/{}", svc.root_url(), created.uuid);
    Ok((
        StatusCode::CREATED,
        [(http::header::LOCATION, location)],
        Json(view(&svc, &created, mv, None)),
    )
        .into_response())
}

/// Ironic's port `PATCH_ALLOWED_FIELDS`.
const PATCH_ALLOWED: &[&str] = &[
    "address",
    "extra",
    "is_smartnic",
    "local_link_connection",
    "node_ident",
    "node_uuid",
    "physical_network",
    "portgroup_uuid",
    "pxe_enabled",
    "name",
    "description",
    "vendor",
    "category",
    "available_for_dynamic_portgroup",
];

/// The patchable document of a port.
fn patch_doc(p: &Port) -> Value {
    json!({
        "address": p.address,
        "extra": p.extra,
        "is_smartnic": p.is_smartnic,
        "local_link_connection": p.local_link_connection,
        "node_uuid": p.node_uuid,
        "physical_network": p.physical_network,
        "portgroup_uuid": null,
        "pxe_enabled": p.pxe_enabled,
        "uuid": p.uuid,
        "name": p.name,
        "description": p.description,
        "vendor": p.vendor,
        "category": p.category,
        "available_for_dynamic_portgroup": p.available_for_dynamic_portgroup,
    })
}

/// `PATCH /v1/ports/{ident}`.
pub async fn port_update(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    body: Body,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:port:update")?;
    let ops = patch::parse(&body.0).map_err(IronicError::invalid)?;
    for o in &ops {
        let field = o.field();
        if !PATCH_ALLOWED.contains(&field.as_str()) {
            return Err(IronicError::invalid(format!(
                "Cannot patch {}. Only the following can be updated: {}",
                o.path,
                PATCH_ALLOWED.join(", ")
            )));
        }
        if model::field_version(PORT_FIELDS, &field) > mv.0 {
            return Err(IronicError::not_acceptable());
        }
    }
    let current = find_port(&svc, &ident, mv).await?;
    let mut doc = patch_doc(&current);
    patch::apply(&mut doc, &ops).map_err(IronicError::invalid)?;
    let Value::Object(patched) = doc else {
        return Err(IronicError::invalid(
            "Schema error for patch: not an object",
        ));
    };
    let f = model::validate("patch", &patched, PORT_SCHEMA, &[])?;
    if f.get("portgroup_uuid").is_some_and(|v| !v.is_null()) {
        return Err(IronicError::invalid(format!(
            "Portgroup {} could not be found.",
            f["portgroup_uuid"].as_str().unwrap_or_default()
        )));
    }
    let node_ident = f
        .get("node_ident")
        .or_else(|| f.get("node_uuid"))
        .and_then(|v| v.as_str())
        .unwrap_or(&current.node_uuid)
        .to_string();
    let node = find_node(&svc, &node_ident, mv).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            IronicError::invalid(format!("Node {node_ident} could not be found."))
        } else {
            e
        }
    })?;
    if node.provision_state == states::INSPECTING && mv.at_least(39) {
        return Err(IronicError::conflict(format!(
            "Cannot update port \"{}\" on \"{}\" while it is in state \"{}\".",
            current.uuid,
            node.uuid,
            states::INSPECTING
        )));
    }
    let mut p = current.clone();
    assign(&mut p, &f)?;
    p.node_uuid = node.uuid.clone();
    let updated = svc
        .store()
        .write_or_refuse(move |tx| {
            let mut p = p.clone();
            Box::pin(async move {
                if db::get_port_tx(tx, &p.uuid).await?.is_none() {
                    return Ok(Err(IronicError::port_not_found(&p.uuid)));
                }
                if let Err(e) = check_unique(tx, &p).await? {
                    return Ok(Err(e));
                }
                db::save_port(tx, &mut p).await?;
                Ok(Ok(p))
            })
        })
        .await??;
    Ok(Json(view(&svc, &updated, mv, None)))
}

/// `DELETE /v1/ports/{uuid}`.
pub async fn port_delete(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<StatusCode> {
    admin.require("baremetal:port:delete")?;
    if !model::is_uuid_like(&ident) {
        return Err(IronicError::invalid(format!(
            "Expected UUID for port_uuid: {ident}"
        )));
    }
    let p = find_port(&svc, &ident, mv).await?;
    let uuid = p.uuid.clone();
    svc.store()
        .write(move |tx| {
            let uuid = uuid.clone();
            Box::pin(async move { db::delete_port(tx, &uuid).await })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
