//! `/v1/nodes`: list (with Ironic's filters, paging and `fields`), show, create, update
//! (JSON Patch), delete, validate, states, maintenance and traits.

use super::{collection, find_node, paging};
use crate::conductor::update_node;
use crate::db::{self, Bind, ListQuery};
use crate::drivers::{hardware_type, HARDWARE_TYPES};
use crate::error::{IronicError, IronicResult};
use crate::extract::{Admin, Body, Mv, Query};
use crate::model::{self, Node, NODE_FIELDS, NODE_SCHEMA};
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

/// 406 with the version a filter needs, when `present` and `mv` is older.
pub(crate) fn needs(present: bool, mv: Microversion, minor: u32) -> IronicResult<()> {
    if present && !mv.at_least(minor) {
        return Err(IronicError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Request not acceptable. The minimal required API version should be 1.{minor}"),
        ));
    }
    Ok(())
}

/// 400 for query parameters the handler does not take (Ironic's `Unexpected arguments`).
pub(crate) fn only(q: &Query, allowed: &[&str]) -> IronicResult<()> {
    let mut extra: Vec<&str> =
        q.0.keys()
            .map(|k| k.as_str())
            .filter(|k| !allowed.contains(k))
            .collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort();
    Err(IronicError::invalid(format!(
        "Unexpected arguments: {}",
        extra.join(", ")
    )))
}

/// The view of `n` for this request.
pub(crate) fn view(
    svc: &BaremetalService,
    n: &Node,
    mv: Microversion,
    fields: Option<&[String]>,
) -> Value {
    model::node_view(n, mv, fields, &svc.root_url(), svc.hostname(), now_micros())
}

const LIST_PARAMS: &[&str] = &[
    "chassis_uuid",
    "instance_uuid",
    "associated",
    "maintenance",
    "retired",
    "provision_state",
    "marker",
    "limit",
    "sort_key",
    "sort_dir",
    "driver",
    "fields",
    "resource_class",
    "fault",
    "conductor_group",
    "detail",
    "conductor",
    "owner",
    "description_contains",
    "lessee",
    "project",
    "shard",
    "sharded",
    "include_children",
    "parent_node",
    "instance_name",
];

/// The faults Ironic knows (`ironic.common.faults.VALID_FAULTS`).
const VALID_FAULTS: &[&str] = &[
    "power failure",
    "clean failure",
    "rescue abort failure",
    "service failure",
];

/// A sortable field's column (and whether it is text).
fn sort_column(key: &str) -> Option<(&'static str, bool)> {
    Some(match key {
        "id" => ("seq", false),
        "uuid" => ("uuid", true),
        "name" => ("name", true),
        "driver" => ("driver", true),
        "provision_state" => ("provision_state", true),
        "power_state" => ("power_state", true),
        "maintenance" => ("maintenance", false),
        "instance_uuid" => ("instance_uuid", true),
        "instance_name" => ("instance_name", true),
        "resource_class" => ("resource_class", true),
        "conductor_group" => ("conductor_group", true),
        "owner" => ("owner", true),
        "lessee" => ("lessee", true),
        "fault" => ("fault", true),
        "retired" => ("retired", false),
        "shard" => ("shard", true),
        "parent_node" => ("parent_node", true),
        "description" => ("description", true),
        "reservation" => ("reservation", true),
        "created_at" => ("created_at", false),
        "updated_at" => ("updated_at", false),
        "provision_updated_at" => ("provision_updated_at", false),
        _ => return None,
    })
}

/// The value of `n`'s sort column (for a marker).
fn sort_value(n: &Node, col: &str) -> Bind {
    let t = |s: Option<&str>| Bind::Text(s.unwrap_or_default().to_string());
    match col {
        "uuid" => t(Some(&n.uuid)),
        "name" => t(n.name.as_deref()),
        "driver" => t(Some(&n.driver)),
        "provision_state" => t(Some(&n.provision_state)),
        "power_state" => t(n.power_state.as_deref()),
        "maintenance" => Bind::Int(n.maintenance as i64),
        "instance_uuid" => t(n.instance_uuid.as_deref()),
        "instance_name" => t(n.instance_name.as_deref()),
        "resource_class" => t(n.resource_class.as_deref()),
        "conductor_group" => t(Some(&n.conductor_group)),
        "owner" => t(n.owner.as_deref()),
        "lessee" => t(n.lessee.as_deref()),
        "fault" => t(n.fault.as_deref()),
        "retired" => Bind::Int(n.retired as i64),
        "shard" => t(n.shard.as_deref()),
        "parent_node" => t(n.parent_node.as_deref()),
        "description" => t(n.description.as_deref()),
        "reservation" => t(n.reservation.as_deref()),
        "created_at" => Bind::Int(n.created_at),
        "updated_at" => Bind::Int(n.updated_at.unwrap_or(0)),
        "provision_updated_at" => Bind::Int(n.provision_updated_at.unwrap_or(0)),
        _ => Bind::Int(n.id),
    }
}

/// Builds the list query from the filters, checking each against the version that added it.
async fn list_query(
    svc: &BaremetalService,
    q: &Query,
    mv: Microversion,
    page: &super::Paging,
) -> IronicResult<(ListQuery, Vec<(&'static str, String)>, bool)> {
    model::check_fields_allowed(NODE_FIELDS, std::slice::from_ref(&page.sort_key), mv)?;
    const NOT_SORTABLE: &[&str] = &[
        "properties",
        "driver_info",
        "extra",
        "instance_info",
        "driver_internal_info",
        "clean_step",
        "deploy_step",
        "raid_config",
        "target_raid_config",
        "traits",
        "network_data",
        "service_step",
    ];
    let Some((col, text)) =
        sort_column(&page.sort_key).filter(|_| !NOT_SORTABLE.contains(&page.sort_key.as_str()))
    else {
        return Err(IronicError::invalid(format!(
            "The sort_key value {} is an invalid field for sorting",
            page.sort_key
        )));
    };
    let mut lq = ListQuery::new(col, text, page.desc, page.limit);
    let mut args: Vec<(&'static str, String)> = Vec::new();
    let mut empty = false;
    let text_filter = |lq: &mut ListQuery, clause: &str, v: &str| {
        lq.filter(clause, vec![Bind::Text(v.to_string())]);
    };
    if let Some(v) = q.uuid("chassis_uuid")? {
        // No chassis are served: no node is in one.
        let _ = v;
        empty = true;
    }
    let instance_uuid = q.uuid("instance_uuid")?;
    if let Some(v) = &instance_uuid {
        text_filter(&mut lq, "instance_uuid = ?", v);
    }
    if let Some(b) = q.boolean("associated")? {
        lq.filter(
            if b {
                "instance_uuid IS NOT NULL"
            } else {
                "instance_uuid IS NULL"
            },
            vec![],
        );
        args.push(("associated", b.to_string()));
    }
    if let Some(b) = q.boolean("maintenance")? {
        lq.filter("maintenance = ?", vec![Bind::Int(b as i64)]);
        args.push(("maintenance", b.to_string()));
    }
    if let Some(b) = q.boolean("retired")? {
        lq.filter("retired = ?", vec![Bind::Int(b as i64)]);
        args.push(("retired", b.to_string()));
    }
    if let Some(v) = q.get("provision_state") {
        needs(true, mv, 9)?;
        if !states::is_state(v) {
            return Err(IronicError::invalid(format!(
                "Provision state \"{v}\" is not valid"
            )));
        }
        text_filter(&mut lq, "provision_state = ?", v);
    }
    // Equality filters on a column of the same name, with the version that added each.
    for (param, min) in [
        ("driver", 16),
        ("resource_class", 21),
        ("owner", 50),
        ("lessee", 65),
        ("instance_name", 104),
    ] {
        if let Some(v) = q.get(param) {
            needs(true, mv, min)?;
            text_filter(&mut lq, &format!("{param} = ?"), v);
        }
    }
    if let Some(v) = q.get("fault") {
        needs(true, mv, 42)?;
        if !VALID_FAULTS.contains(&v) {
            return Err(IronicError::invalid(format!(
                "Unrecognized fault \"{v}\" is specified, allowed faults are {}",
                patch::py(&json!(VALID_FAULTS))
            )));
        }
        text_filter(&mut lq, "fault = ?", v);
    }
    if let Some(v) = q.get("conductor_group") {
        needs(true, mv, 46)?;
        text_filter(&mut lq, "conductor_group = ?", &v.to_ascii_lowercase());
    }
    if let Some(v) = q.get("conductor") {
        needs(true, mv, 49)?;
        // The one conductor serves the default group.
        if v != svc.hostname() {
            empty = true;
        }
        lq.filter("conductor_group = ''", vec![]);
    }
    if let Some(v) = q.get("project") {
        lq.filter(
            "(owner = ? OR lessee = ?)",
            vec![Bind::Text(v.to_string()), Bind::Text(v.to_string())],
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
    if let Some(shards) = q.list("shard") {
        needs(true, mv, 82)?;
        if shards.is_empty() {
            empty = true;
        } else {
            let marks = vec!["?"; shards.len()].join(", ");
            lq.filter(
                &format!("shard IN ({marks})"),
                shards.into_iter().map(Bind::Text).collect(),
            );
        }
    }
    if let Some(b) = q.boolean("sharded")? {
        needs(true, mv, 82)?;
        lq.filter(
            if b {
                "shard IS NOT NULL"
            } else {
                "shard IS NULL"
            },
            vec![],
        );
    }
    let include_children = q.boolean("include_children")?;
    let parent = q.get("parent_node");
    needs(include_children.is_some() || parent.is_some(), mv, 83)?;
    match parent {
        Some(p) => {
            let parent_uuid = match find_node(svc, p, mv).await {
                Ok(n) => n.uuid,
                Err(_) => p.to_string(),
            };
            text_filter(&mut lq, "parent_node = ?", &parent_uuid);
        }
        None if include_children != Some(true) => lq.filter("parent_node IS NULL", vec![]),
        None => {}
    }
    if let Some(m) = &page.marker {
        let marker = db::get_node(svc.store(), m)
            .await?
            .ok_or_else(|| IronicError::node_not_found(m))?;
        lq.marker = Some((sort_value(&marker, col), marker.id));
    }
    // An instance UUID is unique: Ironic gives no `next` link for it.
    let no_next = instance_uuid.is_some();
    if empty {
        lq.filter("1 = 0", vec![]);
    }
    Ok((lq, args, no_next))
}

/// The names a node's `fields` may ask for: 400 for the first it does not have.
fn check_node_fields(f: &[String]) -> IronicResult<()> {
    let valid = model::node_field_names();
    match f.iter().find(|name| !valid.contains(name)) {
        Some(name) => Err(IronicError::invalid(format!(
            "Field {name} is not a valid field."
        ))),
        None => Ok(()),
    }
}

/// `GET /v1/nodes` and `GET /v1/nodes/detail`.
pub async fn node_list(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    uri: http::Uri,
    q: Query,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:list")?;
    let detail_path = super::is_detail(&uri);
    let fields = super::list_fields(
        &q,
        mv,
        LIST_PARAMS,
        detail_path,
        model::NODE_DEFAULT_FIELDS,
        NODE_FIELDS,
        check_node_fields,
    )?;
    let page = paging(&q, svc.config().max_limit)?;
    let (lq, mut args, no_next) = list_query(&svc, &q, mv, &page).await?;
    let nodes = db::list_nodes(svc.store(), lq).await?;
    let items: Vec<Value> = nodes
        .iter()
        .map(|n| view(&svc, n, mv, fields.as_deref()))
        .collect();
    if let Some(d) = q.boolean("detail")? {
        args.push(("detail", d.to_string()));
    }
    args.push(("sort_key", page.sort_key.clone()));
    args.push(("sort_dir", if page.desc { "desc" } else { "asc" }.into()));
    let resource = if detail_path { "nodes/detail" } else { "nodes" };
    Ok(Json(collection(
        &svc,
        "nodes",
        items,
        if no_next { 0 } else { page.limit },
        resource,
        &args,
        q.list("fields").as_deref(),
    )))
}

/// `GET /v1/nodes/{ident}`.
pub async fn node_get(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    q: Query,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:get")?;
    only(&q, &["fields"])?;
    let n = find_node(&svc, &ident, mv).await?;
    let fields = q.list("fields");
    if let Some(f) = &fields {
        if !mv.at_least(8) {
            return Err(IronicError::not_acceptable());
        }
        model::check_fields_allowed(NODE_FIELDS, f, mv)?;
        check_node_fields(f)?;
    }
    Ok(Json(view(&svc, &n, mv, fields.as_deref())))
}

/// The `NoValidHost` Ironic answers (as 400) for a driver or conductor group no conductor
/// serves.
fn no_valid_host(driver: &str, group: &str) -> IronicError {
    IronicError::invalid(format!(
        "No valid host was found. Reason: No conductor service registered which supports \
         driver {driver} for conductor group \"{group}\"."
    ))
}

/// Applies the driver and interface rules to `n`: the hardware type must be served and its
/// conductor group the conductor's; each interface given must be one the hardware type has,
/// the others get its defaults (or are reset when the driver changed).
fn resolve_interfaces(n: &mut Node, given: &Map<String, Value>) -> IronicResult<()> {
    let Some(hw) = hardware_type(&n.driver) else {
        return Err(no_valid_host(&n.driver, &n.conductor_group));
    };
    if !n.conductor_group.is_empty() {
        return Err(no_valid_host(&n.driver, &n.conductor_group));
    }
    for kind in model::INTERFACES {
        let impls = hw.implementations(kind);
        let key = format!("{kind}_interface");
        match given.get(&key) {
            Some(Value::String(v)) => {
                if !impls.contains(&v.as_str()) {
                    return Err(IronicError::invalid(format!(
                        "{kind} interface implementation '{v}' is not supported by hardware \
                         type {}.",
                        hw.name
                    )));
                }
                n.interfaces.insert(kind.to_string(), v.clone());
            }
            _ => {
                let keep = n
                    .interfaces
                    .get(*kind)
                    .is_some_and(|cur| impls.contains(&cur.as_str()))
                    && !given.contains_key(&key);
                if !keep {
                    if let Some(d) = impls.first() {
                        n.interfaces.insert(kind.to_string(), d.to_string());
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_name(name: &str, mv: Microversion, what: String) -> IronicResult<()> {
    if !mv.at_least(5) {
        return Err(IronicError::not_acceptable());
    }
    let valid = if mv.at_least(10) {
        model::is_valid_logical_name(name)
    } else {
        // Before 1.10 names were hostname-like.
        model::is_valid_logical_name(name)
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if !valid {
        return Err(IronicError::invalid(what));
    }
    if model::RESERVED_NODE_NAMES.contains(&name) {
        return Err(IronicError::invalid(format!(
            "The word \"{name}\" is reserved and can not be used as a node name. Reserved words \
             are: {}.",
            model::RESERVED_NODE_NAMES.join(", ")
        )));
    }
    Ok(())
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| v.as_str()).map(str::to_string)
}

fn obj(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(|v| v.as_object()).cloned().unwrap_or_default()
}

fn boolean(v: Option<&Value>) -> Option<bool> {
    v.and_then(|v| v.as_bool())
}

/// Copies the schema fields of `f` (validated) onto `n`.
fn assign(n: &mut Node, f: &Map<String, Value>) {
    for (k, v) in f {
        match k.as_str() {
            "name" => n.name = opt_str(Some(v)),
            "driver" => n.driver = v.as_str().unwrap_or_default().to_string(),
            "driver_info" => n.driver_info = obj(Some(v)),
            "extra" => n.extra = obj(Some(v)),
            "instance_info" => n.instance_info = obj(Some(v)),
            "properties" => n.properties = obj(Some(v)),
            "network_data" => n.network_data = obj(Some(v)),
            "instance_uuid" => {
                n.instance_uuid = opt_str(Some(v)).map(|s| model::canonical_uuid(&s))
            }
            "instance_name" => n.instance_name = opt_str(Some(v)),
            "resource_class" => n.resource_class = opt_str(Some(v)),
            "conductor_group" => {
                n.conductor_group = opt_str(Some(v)).unwrap_or_default().to_ascii_lowercase()
            }
            "automated_clean" => n.automated_clean = boolean(Some(v)),
            "console_enabled" => n.console_enabled = boolean(Some(v)).unwrap_or(false),
            "maintenance" => n.maintenance = boolean(Some(v)).unwrap_or(false),
            "protected" => n.protected = boolean(Some(v)).unwrap_or(false),
            "protected_reason" => n.protected_reason = opt_str(Some(v)),
            "retired" => n.retired = boolean(Some(v)).unwrap_or(false),
            "retired_reason" => n.retired_reason = opt_str(Some(v)),
            "secure_boot" => n.secure_boot = boolean(Some(v)),
            "disable_power_off" => n.disable_power_off = boolean(Some(v)).unwrap_or(false),
            "boot_mode" => n.boot_mode = opt_str(Some(v)),
            "owner" => n.owner = opt_str(Some(v)),
            "lessee" => n.lessee = opt_str(Some(v)),
            "description" => n.description = opt_str(Some(v)),
            "shard" => n.shard = opt_str(Some(v)),
            "parent_node" => n.parent_node = opt_str(Some(v)),
            _ => {}
        }
    }
}

/// The patchable document of `n` (the node schema's fields with their values).
fn patch_doc(n: &Node) -> Value {
    let mut m = Map::new();
    for r in NODE_SCHEMA {
        let v = match r.name {
            "automated_clean" => json!(n.automated_clean),
            "boot_mode" => json!(n.boot_mode),
            "chassis_uuid" => Value::Null,
            "conductor_group" => json!(n.conductor_group),
            "console_enabled" => json!(n.console_enabled),
            "description" => json!(n.description),
            "disable_power_off" => json!(n.disable_power_off),
            "driver" => json!(n.driver),
            "driver_info" => Value::Object(n.driver_info.clone()),
            "extra" => Value::Object(n.extra.clone()),
            "instance_info" => Value::Object(n.instance_info.clone()),
            "instance_name" => json!(n.instance_name),
            "instance_uuid" => json!(n.instance_uuid),
            "lessee" => json!(n.lessee),
            "maintenance" => json!(n.maintenance),
            "name" => json!(n.name),
            "network_data" => Value::Object(n.network_data.clone()),
            "owner" => json!(n.owner),
            "parent_node" => json!(n.parent_node),
            "properties" => Value::Object(n.properties.clone()),
            "resource_class" => json!(n.resource_class),
            "retired" => json!(n.retired),
            "retired_reason" => json!(n.retired_reason),
            "secure_boot" => json!(n.secure_boot),
            "shard" => json!(n.shard),
            "uuid" => json!(n.uuid),
            "protected" => json!(n.protected),
            "protected_reason" => json!(n.protected_reason),
            other => match other.strip_suffix("_interface") {
                Some(kind) => json!(n.interface(kind)),
                None => Value::Null,
            },
        };
        m.insert(r.name.to_string(), v);
    }
    Value::Object(m)
}

/// What the create and update writes check against other nodes.
async fn check_unique(
    tx: &mut strata_store::Tx,
    n: &Node,
) -> strata_core::Result<IronicResult<()>> {
    if let Some(name) = &n.name {
        if let Some(other) = db::uuid_by(tx, "baremetal_node", "name", name).await? {
            if other != n.uuid {
                return Ok(Err(IronicError::conflict(format!(
                    "A node with name {name} already exists."
                ))));
            }
        }
    }
    if let Some(inst) = &n.instance_uuid {
        if let Some(other) = db::uuid_by(tx, "baremetal_node", "instance_uuid", inst).await? {
            if other != n.uuid {
                return Ok(Err(IronicError::conflict(format!(
                    "Instance {inst} is already associated with a node, it cannot be \
                     associated with this other node {}",
                    n.uuid
                ))));
            }
        }
    }
    Ok(Ok(()))
}

/// `POST /v1/nodes`.
pub async fn node_create(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    body: Body,
) -> IronicResult<Response> {
    admin.require("baremetal:node:create")?;
    let raw = body.object("node")?;
    let allow: Vec<&str> = NODE_SCHEMA
        .iter()
        .map(|r| r.name)
        .filter(|n| *n != "protected" && *n != "protected_reason")
        .collect();
    let f = model::validate("node", &raw, NODE_SCHEMA, &allow)?;
    if !f.contains_key("driver") {
        return Err(IronicError::invalid(
            "Schema error for node: 'driver' is a required property",
        ));
    }
    // Fields newer than the request's version may only be given empty.
    for (k, v) in &f {
        if model::field_version(NODE_FIELDS, k) > mv.0 {
            let empty = match (k.as_str(), v) {
                ("conductor_group", Value::String(s)) => s.is_empty(),
                ("name", Value::Null) => true,
                (_, Value::Null) => true,
                _ => false,
            };
            if !empty {
                return Err(IronicError::not_acceptable());
            }
        }
    }
    if let Some(name) = f.get("name").and_then(|v| v.as_str()) {
        check_name(
            name,
            mv,
            format!("Cannot create node with invalid name '{name}'"),
        )?;
    }
    if let Some(c) = f.get("chassis_uuid").and_then(|v| v.as_str()) {
        return Err(IronicError::invalid(format!(
            "Chassis {c} could not be found."
        )));
    }
    let now = now_micros();
    let mut n = Node {
        uuid: f
            .get("uuid")
            .and_then(|v| v.as_str())
            .map(model::canonical_uuid)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        provision_state: if mv.at_least(11) {
            states::ENROLL
        } else {
            states::AVAILABLE
        }
        .into(),
        created_at: now,
        ..Default::default()
    };
    assign(&mut n, &f);
    if let Some(p) = f.get("parent_node").and_then(|v| v.as_str()) {
        let parent = find_node(&svc, p, mv)
            .await
            .map_err(|e| IronicError::invalid(e.message))?;
        n.parent_node = Some(parent.uuid);
    }
    sync_instance_name(&mut n);
    resolve_interfaces(&mut n, &f)?;
    let node = n.clone();
    let created = svc
        .store()
        .write_or_refuse(move |tx| {
            let mut n = node.clone();
            Box::pin(async move {
                if db::get_node_tx(tx, &n.uuid).await?.is_some() {
                    return Ok(Err(IronicError::conflict(format!(
                        "A node with UUID {} already exists.",
                        n.uuid
                    ))));
                }
                if let Err(e) = check_unique(tx, &n).await? {
                    return Ok(Err(e));
                }
                n.id = db::next_seq(tx, "baremetal_node").await?;
                db::insert_node(tx, &n).await?;
                Ok(Ok(n))
            })
        })
        .await??;
    tracing::info!(node = %created.uuid, driver = %created.driver, "node created");
    let location = format!("{}/v1/nodes/{}", svc.root_url(), created.uuid);
    Ok((
        StatusCode::CREATED,
        [(http::header::LOCATION, location)],
        Json(view(&svc, &created, mv, None)),
    )
        .into_response())
}

/// Ironic keeps `instance_name` in step with `instance_info.display_name` when unset.
fn sync_instance_name(n: &mut Node) {
    if n.instance_name.is_none() {
        if let Some(d) = n.instance_info.get("display_name").and_then(|v| v.as_str()) {
            n.instance_name = Some(d.to_string());
        }
    }
}

/// Ironic's `PATCH_ALLOWED_FIELDS`.
const PATCH_ALLOWED: &[&str] = &[
    "automated_clean",
    "bios_interface",
    "boot_interface",
    "chassis_uuid",
    "conductor_group",
    "console_interface",
    "deploy_interface",
    "description",
    "disable_power_off",
    "driver",
    "driver_info",
    "extra",
    "inspect_interface",
    "instance_info",
    "instance_name",
    "instance_uuid",
    "lessee",
    "maintenance",
    "management_interface",
    "name",
    "network_data",
    "network_interface",
    "owner",
    "power_interface",
    "properties",
    "protected",
    "protected_reason",
    "raid_interface",
    "rescue_interface",
    "resource_class",
    "retired",
    "retired_reason",
    "shard",
    "storage_interface",
    "vendor_interface",
    "parent_node",
    "firmware_interface",
];

/// `PATCH /v1/nodes/{ident}`.
pub async fn node_update(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    q: Query,
    body: Body,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:update")?;
    only(&q, &["reset_interfaces"])?;
    if q.boolean("reset_interfaces")?.is_some() && !mv.at_least(45) {
        return Err(IronicError::not_acceptable());
    }
    let ops = patch::parse(&body.0).map_err(IronicError::invalid)?;
    for o in &ops {
        let field = if mv.at_least(98) {
            o.field()
        } else {
            o.path[1..]
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        if !PATCH_ALLOWED.contains(&field.as_str()) {
            return Err(IronicError::invalid(format!(
                "Cannot patch {}. Only the following can be updated: {}",
                o.path,
                PATCH_ALLOWED.join(", ")
            )));
        }
    }
    for (field, min) in NODE_FIELDS {
        if *min > mv.0 && !patch::values_at(&ops, &format!("/{field}")).is_empty() {
            return Err(IronicError::not_acceptable());
        }
    }
    if !patch::values_at(&ops, "/traits").is_empty() {
        return Err(IronicError::invalid(
            "Cannot update node traits via node patch. Node traits should be updated via the \
             node traits API.",
        ));
    }
    let reset = q.boolean("reset_interfaces")?;
    if reset.is_some() && patch::values_at(&ops, "/driver").is_empty() {
        return Err(IronicError::invalid(
            "The reset_interfaces parameter can only be used when changing the node's driver.",
        ));
    }
    for name in patch::values_at(&ops, "/name") {
        if let Some(name) = name.as_str() {
            check_name(
                name,
                mv,
                format!("Node {ident}: Cannot change name to invalid name '{name}'"),
            )?;
        }
    }
    let current = super::find_node(&svc, &ident, mv).await?;
    let uuid = current.uuid.clone();
    let ident2 = ident.clone();
    let hostname = svc.hostname().to_string();
    let change = move |n: &mut Node| {
        let now = now_micros();
        n.ensure_unlocked(now, &hostname)?;
        let removing_instance =
            ops.len() == 1 && ops[0].op == patch::Kind::Remove && ops[0].path == "/instance_uuid";
        if !(n.maintenance && removing_instance)
            && n.target_provision_state.is_some()
            && !states::UPDATE_ALLOWED.contains(&n.provision_state.as_str())
        {
            return Err(IronicError::conflict(format!(
                "Node {ident2} can not be updated while a state transition is in progress."
            )));
        }
        let mut doc = patch_doc(n);
        patch::apply(&mut doc, &ops).map_err(IronicError::invalid)?;
        let Value::Object(patched) = doc else {
            return Err(IronicError::invalid(
                "Schema error for patch: not an object",
            ));
        };
        let f = model::validate("patch", &patched, NODE_SCHEMA, &[])?;
        if f.get("uuid")
            .and_then(|v| v.as_str())
            .map(model::canonical_uuid)
            != Some(n.uuid.clone())
        {
            return Err(IronicError::invalid("Cannot patch /uuid."));
        }
        if let Some(c) = f.get("chassis_uuid").and_then(|v| v.as_str()) {
            return Err(IronicError::invalid(format!(
                "Chassis {c} could not be found."
            )));
        }
        let old = n.clone();
        assign(n, &f);
        if n.driver != old.driver || ops.iter().any(|o| o.path.ends_with("_interface")) {
            let mut given = Map::new();
            for kind in model::INTERFACES {
                let key = format!("{kind}_interface");
                if patch::touches(&ops, &format!("/{key}")) {
                    if let Some(v) = f.get(&key) {
                        given.insert(key, v.clone());
                    }
                }
            }
            if n.driver != old.driver && reset == Some(true) {
                n.interfaces.clear();
            }
            resolve_interfaces(n, &given)?;
        } else if n.conductor_group != old.conductor_group && !n.conductor_group.is_empty() {
            return Err(no_valid_host(&n.driver, &n.conductor_group));
        }
        if n.protected && !old.protected && n.provision_state != states::ACTIVE {
            return Err(IronicError::conflict(
                "Protection can only be set in the \"active\" provision state",
            ));
        }
        if !n.protected {
            if n.protected_reason.is_some() && patch::touches(&ops, "/protected_reason") {
                return Err(IronicError::invalid(
                    "Cannot set protected_reason without protected",
                ));
            }
            n.protected_reason = None;
        }
        if !n.retired {
            if n.retired_reason.is_some() && patch::touches(&ops, "/retired_reason") {
                return Err(IronicError::invalid(
                    "Cannot set retired_reason without retired",
                ));
            }
            n.retired_reason = None;
        }
        if old.maintenance && !n.maintenance {
            n.maintenance_reason = None;
            n.fault = None;
        }
        if n.instance_info != old.instance_info {
            sync_instance_name(n);
        }
        Ok(())
    };
    let id = uuid.clone();
    let updated = svc
        .store()
        .write_or_refuse(move |tx| {
            let (id, change) = (id.clone(), change.clone());
            Box::pin(async move {
                let Some(mut n) = db::get_node_tx(tx, &id).await? else {
                    return Ok(Err(IronicError::node_not_found(&id)));
                };
                if let Err(e) = change(&mut n) {
                    return Ok(Err(e));
                }
                if let Err(e) = check_unique(tx, &n).await? {
                    return Ok(Err(e));
                }
                db::save_node(tx, &mut n).await?;
                Ok(Ok(n))
            })
        })
        .await??;
    if let Some(p) = &updated.parent_node {
        if p != &current.parent_node.clone().unwrap_or_default() {
            let parent = find_node(&svc, p, mv)
                .await
                .map_err(|e| IronicError::invalid(e.message))?;
            if parent.uuid != *p {
                let pu = parent.uuid.clone();
                update_node(&svc, &uuid, move |n| {
                    n.parent_node = Some(pu.clone());
                    Ok(())
                })
                .await?;
            }
        }
    }
    svc.drivers().forget(&uuid);
    let fresh = db::get_node(svc.store(), &uuid)
        .await?
        .ok_or_else(|| IronicError::node_not_found(&uuid))?;
    Ok(Json(view(&svc, &fresh, mv, None)))
}

/// `DELETE /v1/nodes/{ident}`.
pub async fn node_delete(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<StatusCode> {
    admin.require("baremetal:node:delete")?;
    let n = find_node(&svc, &ident, mv).await?;
    let uuid = n.uuid.clone();
    let hostname = svc.hostname().to_string();
    svc.store()
        .write_or_refuse(move |tx| {
            let (uuid, hostname) = (uuid.clone(), hostname.clone());
            Box::pin(async move {
                let Some(n) = db::get_node_tx(tx, &uuid).await? else {
                    return Ok(Err(IronicError::node_not_found(&uuid)));
                };
                if let Err(e) = n.ensure_unlocked(now_micros(), &hostname) {
                    return Ok(Err(e));
                }
                if !n.maintenance {
                    if let Some(inst) = &n.instance_uuid {
                        return Ok(Err(IronicError::conflict(format!(
                            "Node {} is associated with instance {inst}.",
                            n.uuid
                        ))));
                    }
                }
                if n.protected {
                    return Ok(Err(IronicError::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "Node {} is protected and cannot be undeployed, rebuilt or deleted",
                            n.uuid
                        ),
                    )));
                }
                if !n.maintenance && !states::DELETE_ALLOWED.contains(&n.provision_state.as_str()) {
                    let valid: Vec<String> = states::DELETE_ALLOWED
                        .iter()
                        .map(|s| format!("'{s}'"))
                        .collect();
                    return Ok(Err(IronicError::conflict(format!(
                        "Can not delete node \"{}\" while it is in provision state \"{}\". \
                         Valid provision states to perform deletion are: \"({})\", or set the \
                         node into maintenance mode",
                        n.uuid,
                        n.provision_state,
                        valid.join(", ")
                    ))));
                }
                db::delete_node(tx, &uuid).await?;
                Ok(Ok(()))
            })
        })
        .await??;
    svc.drivers().forget(&n.uuid);
    tracing::info!(node = %n.uuid, "node deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/nodes/{ident}/states`.
pub async fn node_states(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:get_states")?;
    let n = find_node(&svc, &ident, mv).await?;
    let mut provision = json!(n.provision_state);
    if !mv.at_least(2) && n.provision_state == states::AVAILABLE {
        provision = Value::Null;
    }
    let mut m = json!({
        "console_enabled": n.console_enabled,
        "last_error": n.last_error,
        "power_state": n.power_state,
        "provision_state": provision,
        "target_power_state": n.target_power_state,
        "target_provision_state": n.target_provision_state,
        "provision_updated_at": n.provision_updated_at.map(model::iso),
    });
    if mv.at_least(12) {
        m["raid_config"] = Value::Object(n.raid_config.clone());
        m["target_raid_config"] = Value::Object(n.target_raid_config.clone());
    }
    if mv.at_least(75) {
        m["boot_mode"] = json!(n.boot_mode);
        m["secure_boot"] = json!(n.secure_boot);
    }
    Ok(Json(m))
}

/// The result of validating each interface, as `GET …/validate` shows it.
async fn validate_interfaces(svc: &BaremetalService, n: &Node) -> Value {
    let mut out = Map::new();
    let power = svc
        .drivers()
        .for_node(n)
        .and_then(|d| d.validate().map(|_| d));
    for kind in model::INTERFACES {
        let iface = n.interface(kind).unwrap_or_default();
        let entry = if iface.starts_with("no-") {
            json!({"result": null, "reason": "not supported"})
        } else {
            match *kind {
                "power" | "management" => match &power {
                    Ok(_) => json!({"result": true}),
                    Err(e) => json!({"result": false, "reason": e.to_string()}),
                },
                "network" | "storage" => json!({"result": true}),
                _ if n.driver == "fake-hardware" => json!({"result": true}),
                "boot" | "deploy" => json!({"result": false, "reason":
                    format!("The {iface} {kind} interface is not implemented by Strata yet: \
                             nodes cannot be deployed (see docs/baremetal.md).")}),
                _ => json!({"result": null, "reason": "not supported"}),
            }
        };
        // Only the interfaces Ironic validates at this API's level (firmware is newer).
        out.insert(kind.to_string(), entry);
    }
    Value::Object(out)
}

/// `GET /v1/nodes/{ident}/validate`.
pub async fn node_validate(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:validate")?;
    let n = find_node(&svc, &ident, mv).await?;
    Ok(Json(validate_interfaces(&svc, &n).await))
}

/// `GET /v1/nodes/validate?node=…` (or the deprecated `node_uuid=`).
pub async fn node_validate_query(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    q: Query,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:validate")?;
    only(&q, &["node", "node_uuid"])?;
    let ident = match (q.uuid("node_uuid")?, q.get("node")) {
        (Some(u), _) => u,
        (None, Some(n)) => {
            if !mv.at_least(5) && !model::is_uuid_like(n) {
                return Err(IronicError::not_acceptable());
            }
            n.to_string()
        }
        (None, None) => return Err(IronicError::invalid("Missing mandatory parameter: node")),
    };
    let n = find_node(&svc, &ident, mv).await?;
    Ok(Json(validate_interfaces(&svc, &n).await))
}

/// Sets or clears maintenance, as `PUT`/`DELETE …/maintenance` do (202, no body).
async fn maintenance(
    svc: &BaremetalService,
    ident: &str,
    mv: Microversion,
    on: bool,
    reason: Option<String>,
) -> IronicResult<Response> {
    let n = find_node(svc, ident, mv).await?;
    let hostname = svc.hostname().to_string();
    update_node(svc, &n.uuid, move |n| {
        n.ensure_unlocked(now_micros(), &hostname)?;
        n.maintenance = on;
        n.maintenance_reason = if on { reason.clone() } else { None };
        if !on {
            n.fault = None;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /v1/nodes/{ident}/maintenance` (`{"reason": …}` in the body or the query).
pub async fn node_maintenance_set(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    q: Query,
    body: Body,
) -> IronicResult<Response> {
    admin.require("baremetal:node:set_maintenance")?;
    only(&q, &["reason"])?;
    let b = body.object("body")?;
    if let Some(k) = b.keys().find(|k| k.as_str() != "reason") {
        return Err(IronicError::invalid(format!("Unexpected arguments: {k}")));
    }
    let reason = match b.get("reason") {
        None | Some(Value::Null) => q.get("reason").map(str::to_string),
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(IronicError::invalid(format!(
                "Argument 'reason' is not a string: {}",
                patch::py(other)
            )))
        }
    };
    maintenance(&svc, &ident, mv, true, reason).await
}

/// `DELETE /v1/nodes/{ident}/maintenance`.
pub async fn node_maintenance_unset(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<Response> {
    admin.require("baremetal:node:clear_maintenance")?;
    maintenance(&svc, &ident, mv, false, None).await
}

/// Traits appeared in 1.37; before it the sub-resource does not exist.
async fn traits_node(svc: &BaremetalService, ident: &str, mv: Microversion) -> IronicResult<Node> {
    if !mv.at_least(37) {
        return Err(IronicError::not_found("The resource could not be found."));
    }
    find_node(svc, ident, mv).await
}

/// The most traits a node may have (Ironic's `MAX_TRAITS_PER_NODE`).
const MAX_TRAITS: usize = 50;

/// Sets `n`'s traits to `traits` (sorted, unique) unless it is locked or over the limit.
async fn set_traits(
    svc: &BaremetalService,
    n: &Node,
    change: impl Fn(&Node) -> IronicResult<Vec<String>> + Send + Sync + Clone + 'static,
) -> IronicResult<()> {
    let hostname = svc.hostname().to_string();
    update_node(svc, &n.uuid, move |n| {
        n.ensure_unlocked(now_micros(), &hostname)?;
        let mut t = change(n)?;
        t.sort();
        t.dedup();
        if t.len() > MAX_TRAITS {
            return Err(IronicError::invalid(format!(
                "Could not modify traits for node {} as it would exceed the maximum number of \
                 traits per node ({MAX_TRAITS}).",
                n.uuid
            )));
        }
        n.traits = t;
        Ok(())
    })
    .await?;
    Ok(())
}

fn check_trait(t: &str, what: &str) -> IronicResult<()> {
    if model::valid_trait(t) {
        Ok(())
    } else {
        Err(IronicError::invalid(format!(
            "Schema error for {what}: {} is not valid under any of the given schemas",
            patch::py(&json!(t))
        )))
    }
}

/// `GET /v1/nodes/{ident}/traits`.
pub async fn node_traits_list(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:node:traits:list")?;
    let n = traits_node(&svc, &ident, mv).await?;
    Ok(Json(json!({"traits": n.traits})))
}

/// `PUT /v1/nodes/{ident}/traits` with `{"traits": [...]}`: replaces them all.
pub async fn node_traits_replace(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    body: Body,
) -> IronicResult<StatusCode> {
    admin.require("baremetal:node:traits:set")?;
    let n = traits_node(&svc, &ident, mv).await?;
    let b = body.object("body")?;
    if let Some(k) = b.keys().find(|k| k.as_str() != "traits") {
        return Err(IronicError::invalid(format!(
            "Schema error for body: Additional properties are not allowed ('{k}' was \
             unexpected)"
        )));
    }
    let Some(list) = b.get("traits") else {
        return Err(IronicError::invalid(
            "A single node trait may be added via PUT /v1/nodes/<node identifier>/traits/<trait> \
             with no body, or all node traits may be replaced via PUT /v1/nodes/<node \
             identifier>/traits with the list of traits specified in the request body.",
        ));
    };
    let Value::Array(items) = list else {
        return Err(IronicError::invalid(format!(
            "Schema error for body: {} is not of type 'array'",
            patch::py(list)
        )));
    };
    let mut traits = Vec::new();
    for t in items {
        let Some(s) = t.as_str() else {
            return Err(IronicError::invalid(format!(
                "Schema error for body: {} is not of type 'string'",
                patch::py(t)
            )));
        };
        check_trait(s, "body")?;
        traits.push(s.to_string());
    }
    set_traits(&svc, &n, move |_| Ok(traits.clone())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/nodes/{ident}/traits/{trait}`: adds one (no body).
pub async fn node_trait_add(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path((ident, trait_name)): Path<(String, String)>,
    body: Body,
) -> IronicResult<Response> {
    admin.require("baremetal:node:traits:set")?;
    let n = traits_node(&svc, &ident, mv).await?;
    if !matches!(&body.0, Value::Null) && body.0 != json!({}) {
        return Err(IronicError::invalid(
            "No body should be provided when adding a trait",
        ));
    }
    check_trait(&trait_name, "trait")?;
    let t = trait_name.clone();
    set_traits(&svc, &n, move |n| {
        let mut v = n.traits.clone();
        v.push(t.clone());
        Ok(v)
    })
    .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            http::header::LOCATION,
            format!("{}/v1/nodes/{ident}/traits/{trait_name}", svc.root_url()),
        )],
    )
        .into_response())
}

/// `DELETE /v1/nodes/{ident}/traits`: removes them all.
pub async fn node_traits_clear(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(ident): Path<String>,
) -> IronicResult<StatusCode> {
    admin.require("baremetal:node:traits:delete")?;
    let n = traits_node(&svc, &ident, mv).await?;
    set_traits(&svc, &n, |_| Ok(Vec::new())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/nodes/{ident}/traits/{trait}`.
pub async fn node_trait_remove(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path((ident, trait_name)): Path<(String, String)>,
) -> IronicResult<StatusCode> {
    admin.require("baremetal:node:traits:delete")?;
    let n = traits_node(&svc, &ident, mv).await?;
    let t = trait_name.clone();
    set_traits(&svc, &n, move |n| {
        if !n.traits.contains(&t) {
            return Err(IronicError::not_found(format!(
                "Node {} doesn't have a trait '{t}'",
                n.uuid
            )));
        }
        Ok(n.traits.iter().filter(|x| **x != t).cloned().collect())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The hardware types served, for the drivers API.
pub fn served_hardware_types() -> impl Iterator<Item = &'static str> {
    HARDWARE_TYPES.iter().map(|h| h.name)
}
