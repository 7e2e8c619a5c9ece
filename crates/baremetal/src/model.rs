//! Nodes and ports as Strata keeps them, and Ironic's rules about them: which fields exist at
//! which microversion, how a request body is validated (Ironic's JSON schemas and their
//! messages), what is masked in views, and which verbs are legal where.
//!
//! A [`Node`] is stored whole as a JSON document; the fields Ironic shows are its fields, plus
//! the conductor's private [`Work`] (what it has to do for the node next) and the lock. Views
//! are built from it per microversion by [`node_view`] and [`port_view`].

use crate::error::{IronicError, IronicResult};
use crate::patch::py;
use crate::states;
use crate::version::Microversion;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use strata_core::time::iso_micros_z;

/// A bare-metal node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Node {
    pub uuid: String,
    /// Ironic's integer `id`: creation order, the default sort key.
    pub id: i64,
    pub name: Option<String>,
    pub driver: String,
    pub driver_info: Map<String, Value>,
    pub driver_internal_info: Map<String, Value>,
    pub properties: Map<String, Value>,
    pub instance_info: Map<String, Value>,
    pub instance_uuid: Option<String>,
    pub instance_name: Option<String>,
    pub extra: Map<String, Value>,
    pub resource_class: Option<String>,
    pub provision_state: String,
    pub target_provision_state: Option<String>,
    pub provision_updated_at: Option<i64>,
    pub power_state: Option<String>,
    pub target_power_state: Option<String>,
    pub last_error: Option<String>,
    pub maintenance: bool,
    pub maintenance_reason: Option<String>,
    pub fault: Option<String>,
    /// The conductor holding the node (shown as `reservation`), with [`Node::lock_until`].
    pub reservation: Option<String>,
    pub console_enabled: bool,
    pub conductor_group: String,
    pub automated_clean: Option<bool>,
    pub protected: bool,
    pub protected_reason: Option<String>,
    pub owner: Option<String>,
    pub lessee: Option<String>,
    pub description: Option<String>,
    pub retired: bool,
    pub retired_reason: Option<String>,
    pub shard: Option<String>,
    pub parent_node: Option<String>,
    pub network_data: Map<String, Value>,
    pub boot_mode: Option<String>,
    pub secure_boot: Option<bool>,
    pub disable_power_off: bool,
    pub health: Option<String>,
    pub traits: Vec<String>,
    /// `<kind>_interface` for each of [`INTERFACES`].
    pub interfaces: std::collections::BTreeMap<String, String>,
    pub raid_config: Map<String, Value>,
    pub target_raid_config: Map<String, Value>,
    pub clean_step: Map<String, Value>,
    pub deploy_step: Map<String, Value>,
    pub service_step: Map<String, Value>,
    pub inspection_started_at: Option<i64>,
    pub inspection_finished_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    /// What the conductor has to do for the node next (never shown).
    pub work: Option<Work>,
    /// A lock taken for a synchronous BMC call expires then (microseconds), so a process that
    /// died holding it does not hold the node for ever. Work holds the lock until it ends.
    pub lock_until: Option<i64>,
}

/// A step the conductor owes a node, with its failure record: the state machine's progress
/// lives in `provision_state`/`target_power_state`, this says what to run next and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Work {
    pub kind: WorkKind,
    /// Attempts that failed for a reason that may pass (retried after a backoff).
    pub failures: u32,
    /// Why the last attempt failed.
    pub last_failure: Option<String>,
    /// When the next attempt is due (microseconds).
    pub due: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkKind {
    /// `manage` from `enroll`: reach the BMC, authenticate, read the power state.
    Verify,
    /// A power action: `target` as the API named it (`power on`, `rebooting`, …). Once the BMC
    /// accepted it, `deadline` is set and the step waits for the power state to settle.
    Power {
        target: String,
        timeout_s: u64,
        deadline: Option<i64>,
    },
}

/// The interfaces of a node, in Ironic's order (`driver_base.ALL_INTERFACES`).
pub const INTERFACES: &[&str] = &[
    "bios",
    "boot",
    "console",
    "deploy",
    "firmware",
    "inspect",
    "management",
    "network",
    "power",
    "raid",
    "rescue",
    "storage",
    "vendor",
];

impl Node {
    /// Whether a conductor holds the node at `now`.
    pub fn locked(&self, now: i64) -> bool {
        self.reservation.is_some() && (self.work.is_some() || self.lock_until.unwrap_or(0) > now)
    }
    /// `NodeLocked` (409) while a conductor holds the node at `now` (`host` names it when the
    /// row does not).
    pub fn ensure_unlocked(&self, now: i64, host: &str) -> IronicResult<()> {
        if self.locked(now) {
            return Err(IronicError::node_locked(
                &self.uuid,
                self.reservation.as_deref().unwrap_or(host),
            ));
        }
        Ok(())
    }
    /// The reservation as shown: only while the lock is held.
    pub fn reservation_at(&self, now: i64) -> Option<&str> {
        if self.locked(now) {
            self.reservation.as_deref()
        } else {
            None
        }
    }
    /// `automated_clean`, the conductor's default filling in for an unset value.
    pub fn cleans_automatically(&self, default: bool) -> bool {
        self.automated_clean.unwrap_or(default)
    }
    /// The interface of `kind` (`boot`, `power`, …).
    pub fn interface(&self, kind: &str) -> Option<&str> {
        self.interfaces.get(kind).map(|s| s.as_str())
    }
}

/// A port (a NIC of a node).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Port {
    pub uuid: String,
    pub id: i64,
    pub address: String,
    pub node_uuid: String,
    pub name: Option<String>,
    pub extra: Map<String, Value>,
    pub internal_info: Map<String, Value>,
    pub local_link_connection: Map<String, Value>,
    pub pxe_enabled: bool,
    pub physical_network: Option<String>,
    pub is_smartnic: bool,
    pub description: Option<String>,
    pub vendor: Option<String>,
    pub category: Option<String>,
    pub available_for_dynamic_portgroup: bool,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

// ------------------------------------------------------------------ versioned fields

/// Node fields newer than 1.1, with the minor version that added each (Ironic's
/// `VERSIONED_FIELDS` and the 1.31 interface fields).
pub const NODE_FIELDS: &[(&str, u32)] = &[
    ("driver_internal_info", 3),
    ("name", 5),
    ("inspection_finished_at", 6),
    ("inspection_started_at", 6),
    ("clean_step", 7),
    ("raid_config", 12),
    ("target_raid_config", 12),
    ("network_interface", 20),
    ("resource_class", 21),
    ("boot_interface", 31),
    ("console_interface", 31),
    ("deploy_interface", 31),
    ("inspect_interface", 31),
    ("management_interface", 31),
    ("power_interface", 31),
    ("raid_interface", 31),
    ("vendor_interface", 31),
    ("storage_interface", 33),
    ("traits", 37),
    ("rescue_interface", 38),
    ("bios_interface", 40),
    ("fault", 42),
    ("deploy_step", 44),
    ("conductor_group", 46),
    ("automated_clean", 47),
    ("protected", 48),
    ("protected_reason", 48),
    ("conductor", 49),
    ("owner", 50),
    ("description", 51),
    ("allocation_uuid", 52),
    ("retired", 61),
    ("retired_reason", 61),
    ("lessee", 65),
    ("network_data", 66),
    ("boot_mode", 75),
    ("secure_boot", 75),
    ("shard", 82),
    ("parent_node", 83),
    ("firmware_interface", 86),
    ("service_step", 87),
    ("disable_power_off", 95),
    ("instance_name", 104),
    ("health", 109),
];

/// Port fields newer than 1.1 (Ironic's port `hide_fields_in_newer_versions`).
pub const PORT_FIELDS: &[(&str, u32)] = &[
    ("internal_info", 18),
    ("pxe_enabled", 19),
    ("local_link_connection", 19),
    ("portgroup_uuid", 24),
    ("physical_network", 34),
    ("is_smartnic", 53),
    ("name", 88),
    ("description", 97),
    ("vendor", 100),
    ("category", 101),
    ("available_for_dynamic_portgroup", 111),
];

/// The minor version a field appeared in (1 for the original fields).
pub fn field_version(table: &[(&str, u32)], field: &str) -> u32 {
    table
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, v)| *v)
        .unwrap_or(1)
}

/// 406 when any of `fields` is newer than `mv` (Ironic's `check_allowed_fields`).
pub fn check_fields_allowed(
    table: &[(&str, u32)],
    fields: &[String],
    mv: Microversion,
) -> IronicResult<()> {
    if fields.iter().any(|f| field_version(table, f) > mv.0) {
        return Err(IronicError::not_acceptable());
    }
    Ok(())
}

/// What a node list shows without `detail` or `fields`.
pub const NODE_DEFAULT_FIELDS: &[&str] = &[
    "instance_uuid",
    "maintenance",
    "power_state",
    "provision_state",
    "uuid",
    "name",
];

/// What a port list shows without `detail` or `fields`.
pub const PORT_DEFAULT_FIELDS: &[&str] = &["uuid", "address"];

// ------------------------------------------------------------------ views

/// Timestamps as Ironic writes them (`datetime.isoformat()` of an aware UTC time).
pub fn iso(us: i64) -> String {
    format!("{}+00:00", iso_micros_z(us).trim_end_matches('Z'))
}

fn iso_opt(us: Option<i64>) -> Value {
    us.map(|t| Value::String(iso(t))).unwrap_or(Value::Null)
}

/// `self` and `bookmark` links to `<base>/v1/<resource>/<args>` and `<base>/<resource>/<args>`.
pub fn links(base: &str, resource: &str, args: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{resource}/{args}"), "rel": "self"},
        {"href": format!("{base}/{resource}/{args}"), "rel": "bookmark"},
    ])
}

/// The keys oslo's `mask_dict_password` hides (matched as substrings of lower-cased keys).
const SECRET_KEYS: &[&str] = &[
    "adminpass",
    "admin_pass",
    "password",
    "admin_password",
    "auth_token",
    "new_pass",
    "auth_password",
    "secret_uuid",
    "secret",
    "sys_pswd",
    "token",
    "configdrive",
    "chappassword",
    "encrypted_key",
    "private_key",
    "fernetkey",
    "sslkey",
    "passphrase",
    "chapsecret",
];

/// `mask_dict_password(d, "******")`: secret-looking keys (recursively) show `******`.
pub fn mask(d: &Map<String, Value>) -> Map<String, Value> {
    d.iter()
        .map(|(k, v)| {
            let lk = k.to_ascii_lowercase();
            let out = match v {
                Value::Object(inner) => Value::Object(mask(inner)),
                _ if SECRET_KEYS.iter().any(|s| lk.contains(s)) => Value::String("******".into()),
                other => other.clone(),
            };
            (k.clone(), out)
        })
        .collect()
}

/// Everything Ironic's node view can hold, before version gating and `fields`.
fn node_full(n: &Node, base: &str, conductor: &str, now: i64) -> Map<String, Value> {
    let mut instance_info = mask(&n.instance_info);
    for k in ["configdrive", "image_url"] {
        if instance_info
            .get(k)
            .is_some_and(|v| !v.is_null() && v != "")
        {
            instance_info.insert(k.into(), Value::String("******".into()));
        }
    }
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("allocation_uuid", Value::Null);
    put("automated_clean", json!(n.automated_clean));
    put("boot_mode", json!(n.boot_mode));
    put("chassis_uuid", Value::Null);
    put("clean_step", Value::Object(n.clean_step.clone()));
    put("conductor", json!(conductor));
    put("conductor_group", json!(n.conductor_group));
    put("console_enabled", json!(n.console_enabled));
    put("created_at", json!(iso(n.created_at)));
    put("deploy_step", Value::Object(n.deploy_step.clone()));
    put("description", json!(n.description));
    put("disable_power_off", json!(n.disable_power_off));
    put("driver", json!(n.driver));
    put("driver_info", Value::Object(mask(&n.driver_info)));
    put(
        "driver_internal_info",
        Value::Object(mask(&n.driver_internal_info)),
    );
    put("extra", Value::Object(n.extra.clone()));
    put("fault", json!(n.fault));
    put("health", json!(n.health));
    put("inspection_finished_at", iso_opt(n.inspection_finished_at));
    put("inspection_started_at", iso_opt(n.inspection_started_at));
    put("instance_info", Value::Object(instance_info));
    put("instance_name", json!(n.instance_name));
    put("instance_uuid", json!(n.instance_uuid));
    put("last_error", json!(n.last_error));
    put("lessee", json!(n.lessee));
    put("links", links(base, "nodes", &n.uuid));
    put("maintenance", json!(n.maintenance));
    put("maintenance_reason", json!(n.maintenance_reason));
    put("name", json!(n.name));
    put("network_data", Value::Object(n.network_data.clone()));
    put("owner", json!(n.owner));
    put("parent_node", json!(n.parent_node));
    put(
        "portgroups",
        links(base, "nodes", &format!("{}/portgroups", n.uuid)),
    );
    put("ports", links(base, "nodes", &format!("{}/ports", n.uuid)));
    put("power_state", json!(n.power_state));
    put("properties", Value::Object(n.properties.clone()));
    put("protected", json!(n.protected));
    put("protected_reason", json!(n.protected_reason));
    put("provision_state", json!(n.provision_state));
    put("provision_updated_at", iso_opt(n.provision_updated_at));
    put("raid_config", Value::Object(n.raid_config.clone()));
    put("reservation", json!(n.reservation_at(now)));
    put("resource_class", json!(n.resource_class));
    put("retired", json!(n.retired));
    put("retired_reason", json!(n.retired_reason));
    put("secure_boot", json!(n.secure_boot));
    put("service_step", Value::Object(n.service_step.clone()));
    put("shard", json!(n.shard));
    put(
        "states",
        links(base, "nodes", &format!("{}/states", n.uuid)),
    );
    put("target_power_state", json!(n.target_power_state));
    put("target_provision_state", json!(n.target_provision_state));
    put(
        "target_raid_config",
        Value::Object(n.target_raid_config.clone()),
    );
    put("traits", json!(n.traits));
    put(
        "updated_at",
        n.updated_at.map(|t| json!(iso(t))).unwrap_or(Value::Null),
    );
    put("uuid", json!(n.uuid));
    put(
        "volume",
        links(base, "nodes", &format!("{}/volume", n.uuid)),
    );
    for kind in INTERFACES {
        put(&format!("{kind}_interface"), json!(n.interface(kind)));
    }
    m
}

/// Link fields and the version that added them (they are dropped with `fields`).
const NODE_LINKS: &[(&str, u32)] = &[
    ("ports", 1),
    ("states", 14),
    ("portgroups", 24),
    ("volume", 32),
];

/// Every field name a node view may be asked for with `fields` (links excepted).
pub fn node_field_names() -> Vec<String> {
    let empty = Node::default();
    node_full(&empty, "", "", 0)
        .keys()
        .filter(|k| *k != "links" && !NODE_LINKS.iter().any(|(l, _)| l == k))
        .cloned()
        .collect()
}

/// A node as Ironic shows it at `mv`: fields newer than `mv` hidden, `fields` (when given)
/// keeping only those (and `links`), secrets masked, `available` shown as `None` below 1.2.
pub fn node_view(
    n: &Node,
    mv: Microversion,
    fields: Option<&[String]>,
    base: &str,
    conductor: &str,
    now: i64,
) -> Value {
    let mut m = node_full(n, base, conductor, now);
    m.retain(|k, _| field_version(NODE_FIELDS, k) <= mv.0);
    m.retain(|k, _| match NODE_LINKS.iter().find(|(l, _)| l == k) {
        Some((_, v)) => fields.is_none() && *v <= mv.0,
        None => true,
    });
    if let Some(f) = fields {
        m.retain(|k, _| k == "links" || f.iter().any(|x| x == k));
    }
    if !mv.at_least(2) && n.provision_state == states::AVAILABLE {
        if let Some(v) = m.get_mut("provision_state") {
            *v = Value::Null;
        }
    }
    Value::Object(m)
}

fn port_full(p: &Port, base: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("address", json!(p.address));
    put(
        "available_for_dynamic_portgroup",
        json!(p.available_for_dynamic_portgroup),
    );
    put("category", json!(p.category));
    put("created_at", json!(iso(p.created_at)));
    put("description", json!(p.description));
    put("extra", Value::Object(p.extra.clone()));
    put("internal_info", Value::Object(p.internal_info.clone()));
    put("is_smartnic", json!(p.is_smartnic));
    put("links", links(base, "ports", &p.uuid));
    put(
        "local_link_connection",
        Value::Object(p.local_link_connection.clone()),
    );
    put("name", json!(p.name));
    put("node_uuid", json!(p.node_uuid));
    put("physical_network", json!(p.physical_network));
    put("portgroup_uuid", Value::Null);
    put("pxe_enabled", json!(p.pxe_enabled));
    put(
        "updated_at",
        p.updated_at.map(|t| json!(iso(t))).unwrap_or(Value::Null),
    );
    put("uuid", json!(p.uuid));
    put("vendor", json!(p.vendor));
    m
}

/// Every field name a port view may be asked for.
pub fn port_field_names() -> Vec<String> {
    port_full(&Port::default(), "")
        .keys()
        .filter(|k| *k != "links")
        .cloned()
        .collect()
}

/// A port as Ironic shows it at `mv`.
pub fn port_view(p: &Port, mv: Microversion, fields: Option<&[String]>, base: &str) -> Value {
    let mut m = port_full(p, base);
    m.retain(|k, _| field_version(PORT_FIELDS, k) <= mv.0);
    if let Some(f) = fields {
        m.retain(|k, _| k == "links" || f.iter().any(|x| x == k));
    }
    Value::Object(m)
}

// ------------------------------------------------------------------ validation

/// The JSON types a body field may have, as Ironic's schema lists them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ty {
    Str,
    StrOrNull,
    /// `['string', 'boolean', 'null']`, then parsed as a boolean.
    BoolLike,
    Bool,
    ObjOrNull,
}

/// One field of a request schema: its types, length limits, and whether it must be a UUID.
pub struct FieldRule {
    pub name: &'static str,
    pub ty: Ty,
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    pub uuid: bool,
}

const fn rule(name: &'static str, ty: Ty) -> FieldRule {
    FieldRule {
        name,
        ty,
        min_len: None,
        max_len: None,
        uuid: false,
    }
}

const fn rule_len(name: &'static str, ty: Ty, min: Option<usize>, max: usize) -> FieldRule {
    FieldRule {
        name,
        ty,
        min_len: min,
        max_len: Some(max),
        uuid: false,
    }
}

const fn rule_uuid(name: &'static str) -> FieldRule {
    FieldRule {
        name,
        ty: Ty::StrOrNull,
        min_len: None,
        max_len: None,
        uuid: true,
    }
}

/// Ironic's `node_schema()` (plus `protected`/`protected_reason`, which only PATCH takes).
pub const NODE_SCHEMA: &[FieldRule] = &[
    rule("automated_clean", Ty::BoolLike),
    rule("bios_interface", Ty::StrOrNull),
    rule("boot_interface", Ty::StrOrNull),
    rule("boot_mode", Ty::StrOrNull),
    rule_uuid("chassis_uuid"),
    rule("conductor_group", Ty::StrOrNull),
    rule("console_enabled", Ty::BoolLike),
    rule("console_interface", Ty::StrOrNull),
    rule("deploy_interface", Ty::StrOrNull),
    rule_len("description", Ty::StrOrNull, None, 4096),
    rule("disable_power_off", Ty::BoolLike),
    rule("driver", Ty::Str),
    rule("driver_info", Ty::ObjOrNull),
    rule("extra", Ty::ObjOrNull),
    rule("firmware_interface", Ty::StrOrNull),
    rule("inspect_interface", Ty::StrOrNull),
    rule("instance_info", Ty::ObjOrNull),
    rule_len("instance_name", Ty::StrOrNull, Some(1), 255),
    rule_uuid("instance_uuid"),
    rule("lessee", Ty::StrOrNull),
    rule("management_interface", Ty::StrOrNull),
    rule("maintenance", Ty::BoolLike),
    rule("name", Ty::StrOrNull),
    rule("network_data", Ty::ObjOrNull),
    rule("network_interface", Ty::StrOrNull),
    rule("owner", Ty::StrOrNull),
    rule_len("parent_node", Ty::StrOrNull, None, 36),
    rule("power_interface", Ty::StrOrNull),
    rule("properties", Ty::ObjOrNull),
    rule("raid_interface", Ty::StrOrNull),
    rule("rescue_interface", Ty::StrOrNull),
    rule_len("resource_class", Ty::StrOrNull, None, 80),
    rule("retired", Ty::BoolLike),
    rule("retired_reason", Ty::StrOrNull),
    rule("secure_boot", Ty::BoolLike),
    rule("shard", Ty::StrOrNull),
    rule("storage_interface", Ty::StrOrNull),
    rule_uuid("uuid"),
    rule("vendor_interface", Ty::StrOrNull),
    rule("protected", Ty::BoolLike),
    rule("protected_reason", Ty::StrOrNull),
];

/// Ironic's `PORT_SCHEMA`.
pub const PORT_SCHEMA: &[FieldRule] = &[
    rule("address", Ty::Str),
    rule("extra", Ty::ObjOrNull),
    rule("is_smartnic", Ty::BoolLike),
    rule("local_link_connection", Ty::ObjOrNull),
    rule("node_ident", Ty::Str),
    rule("node_uuid", Ty::Str),
    rule_len("physical_network", Ty::StrOrNull, None, 64),
    rule_uuid("portgroup_uuid"),
    rule("pxe_enabled", Ty::BoolLike),
    rule_uuid("uuid"),
    rule("name", Ty::StrOrNull),
    rule_len("description", Ty::StrOrNull, None, 255),
    rule_len("vendor", Ty::StrOrNull, None, 32),
    rule_len("category", Ty::StrOrNull, None, 80),
    rule("available_for_dynamic_portgroup", Ty::Bool),
];

fn type_names(ty: Ty) -> &'static str {
    match ty {
        Ty::Str => "'string'",
        Ty::StrOrNull => "'string', 'null'",
        Ty::BoolLike => "'string', 'boolean', 'null'",
        Ty::Bool => "'boolean'",
        Ty::ObjOrNull => "'object', 'null'",
    }
}

/// Validates `body` (an object) against `schema` the way Ironic's `args.schema` then
/// `dict_valid` do, naming the body `what` (`node`, `patch`, `port`). Returns the fields as
/// given, boolean-like strings turned into booleans and UUIDs checked.
pub fn validate(
    what: &str,
    body: &Map<String, Value>,
    schema: &[FieldRule],
    allow: &[&str],
) -> IronicResult<Map<String, Value>> {
    let err = |m: String| IronicError::invalid(format!("Schema error for {what}: {m}"));
    let unexpected: Vec<String> = body
        .keys()
        .filter(|k| !schema.iter().any(|r| r.name == k.as_str()) || !allowed(allow, k))
        .map(|k| py(&Value::String(k.clone())))
        .collect();
    if !unexpected.is_empty() {
        let verb = if unexpected.len() == 1 { "was" } else { "were" };
        return Err(err(format!(
            "Additional properties are not allowed ({} {verb} unexpected)",
            unexpected.join(", ")
        )));
    }
    let mut out = Map::new();
    for r in schema {
        let Some(v) = body.get(r.name) else { continue };
        let ok = matches!(
            (r.ty, v),
            (Ty::Str, Value::String(_))
                | (Ty::StrOrNull, Value::String(_) | Value::Null)
                | (
                    Ty::BoolLike,
                    Value::String(_) | Value::Bool(_) | Value::Null
                )
                | (Ty::Bool, Value::Bool(_))
                | (Ty::ObjOrNull, Value::Object(_) | Value::Null)
        );
        if !ok {
            return Err(err(format!(
                "{} is not of type {}",
                py(v),
                type_names(r.ty)
            )));
        }
        if let Value::String(s) = v {
            let len = s.chars().count();
            if r.max_len.is_some_and(|m| len > m) {
                return Err(err(format!("{} is too long", py(v))));
            }
            if r.min_len.is_some_and(|m| len < m) {
                return Err(err(format!("{} is too short", py(v))));
            }
        }
        out.insert(r.name.to_string(), v.clone());
    }
    // dict_valid: booleans and UUIDs.
    for r in schema {
        let Some(v) = out.get(r.name).cloned() else {
            continue;
        };
        if r.ty == Ty::BoolLike {
            if let Value::String(s) = &v {
                let b = parse_bool(r.name, s)?;
                out.insert(r.name.to_string(), Value::Bool(b));
            }
        }
        if r.uuid {
            if let Value::String(s) = &v {
                if !is_uuid_like(s) {
                    return Err(IronicError::invalid(format!(
                        "Expected UUID for {}: {s}",
                        r.name
                    )));
                }
            }
        }
    }
    Ok(out)
}

fn allowed(allow: &[&str], k: &str) -> bool {
    allow.is_empty() || allow.contains(&k)
}

/// oslo's `bool_from_string(strict=True)`, with Ironic's message.
pub fn parse_bool(name: &str, s: &str) -> IronicResult<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(IronicError::invalid(format!(
            "Invalid {name}: Unrecognized value '{s}', acceptable values are: '0', '1', 'f', \
             'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        ))),
    }
}

/// oslo's `is_uuid_like`: 32 hex digits, dashes anywhere.
pub fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// The canonical spelling of a UUID (lower case, dashed).
pub fn canonical_uuid(s: &str) -> String {
    uuid::Uuid::parse_str(s)
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// Ironic's `is_valid_logical_name`: RFC 3986 unreserved characters, 1–255 of them.
pub fn is_valid_logical_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// Ironic's `validate_and_normalize_mac`: six hex octets, lower-cased.
pub fn normalize_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_lowercase())
}

/// Reserved words that may not name a node (Ironic's controller's sub-resources).
pub const RESERVED_NODE_NAMES: &[&str] = &["detail", "validate"];

/// `local_link_connection`: Ironic's `LOCAL_LINK_CONN_SCHEMA` (one of the shapes) with the
/// switch id normalised.
pub fn check_local_link(v: &Map<String, Value>) -> IronicResult<Map<String, Value>> {
    const KEYS: &[&str] = &[
        "port_id",
        "switch_id",
        "hostname",
        "switch_info",
        "network_type",
        "vtep-logical-switch",
        "vtep-physical-switch",
    ];
    let bad = || {
        IronicError::invalid(format!(
            "Schema error for local_link_connection: {} is not valid under any of the given \
             schemas",
            py(&Value::Object(v.clone()))
        ))
    };
    if v.is_empty() {
        return Ok(v.clone());
    }
    if v.keys().any(|k| !KEYS.contains(&k.as_str())) || v.values().any(|x| !x.is_string()) {
        return Err(bad());
    }
    if let Some(t) = v.get("network_type").and_then(|t| t.as_str()) {
        if t != "managed" && t != "unmanaged" {
            return Err(bad());
        }
    }
    let has = |k: &str| v.contains_key(k);
    let shape = (has("port_id") && has("switch_id"))
        || (has("port_id") && has("hostname"))
        || v.get("network_type").and_then(|t| t.as_str()) == Some("unmanaged")
        || (has("port_id") && has("vtep-logical-switch") && has("vtep-physical-switch"));
    if !shape {
        return Err(bad());
    }
    let mut out = v.clone();
    if let Some(Value::String(sw)) = v.get("switch_id") {
        let norm = normalize_mac(sw)
            .or_else(|| normalize_datapath_id(sw))
            .ok_or_else(|| {
                IronicError::invalid(format!(
                    "Expected a MAC address or OpenFlow datapath ID but received {sw}."
                ))
            })?;
        out.insert("switch_id".into(), Value::String(norm));
    }
    Ok(out)
}

/// An OpenFlow datapath id: 16 hex digits, lower-cased.
fn normalize_datapath_id(s: &str) -> Option<String> {
    let hex = s.trim_start_matches("0x");
    (hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("{:0>16}", hex.to_ascii_lowercase()))
}

/// A trait as Ironic accepts it: a standard os-traits name or `CUSTOM_[A-Z0-9_]+`, at most 255
/// characters.
pub fn valid_trait(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 255
        && (strata_placement::model::is_standard_trait(t)
            || (t.starts_with("CUSTOM_")
                && t.len() > "CUSTOM_".len()
                && t["CUSTOM_".len()..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')))
}

// ------------------------------------------------------------------ provision verbs

/// What a legal provision request does in this release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provision {
    /// Enter `verifying` and let the conductor verify the BMC.
    Verify,
    /// Move to this state at once, clearing the target (no hardware involved).
    Move(&'static str),
    /// Legal, but this release does not do it yet.
    NotYet,
}

/// Decides a `PUT /states/provision` with `target` for a node in `state` (after the version
/// gate): the verb's legality exactly as Ironic's state machine has it, then what Strata does.
/// `cleans` is the node's effective `automated_clean`.
pub fn decide_provision(
    state: &str,
    target: &str,
    node: &str,
    cleans: bool,
) -> IronicResult<Provision> {
    let event = states::event_of(target);
    let Some(to) = states::next(state, event) else {
        return Err(IronicError::invalid_state_requested(target, node, state));
    };
    if !states::VERBS.iter().any(|(v, _)| *v == target) {
        // An internal event (`done`, `fail`, `wait`, …) that happens to be legal here.
        return Err(IronicError::invalid(format!(
            "The requested action \"{target}\" could not be understood."
        )));
    }
    Ok(match (event, state) {
        ("manage", states::ENROLL) => Provision::Verify,
        ("manage", _) => Provision::Move(to),
        ("provide", _) if !cleans => Provision::Move(states::AVAILABLE),
        ("abort", _) => Provision::Move(to),
        _ => Provision::NotYet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_from_every_state_decides_or_refuses_exactly() {
        for s in states::ALL {
            for (target, _) in states::VERBS {
                let got = decide_provision(s, target, "n1", true);
                match states::next(s, states::event_of(target)) {
                    None => {
                        let e = got.unwrap_err();
                        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
                        assert_eq!(
                            e.message,
                            format!(
                                "The requested action \"{target}\" can not be performed on \
                                 node \"n1\" while it is in state \"{s}\"."
                            )
                        );
                    }
                    Some(to) => {
                        let want = match (states::event_of(target), *s) {
                            ("manage", states::ENROLL) => Provision::Verify,
                            ("manage", _) | ("abort", _) => Provision::Move(to),
                            _ => Provision::NotYet,
                        };
                        assert_eq!(got.unwrap(), want, "{target} from {s}");
                    }
                }
            }
        }
        assert_eq!(
            decide_provision(states::MANAGEABLE, "provide", "n", false).unwrap(),
            Provision::Move(states::AVAILABLE)
        );
        assert_eq!(
            decide_provision(states::MANAGEABLE, "provide", "n", true).unwrap(),
            Provision::NotYet
        );
        let e = decide_provision(states::VERIFYING, "done", "n", true).unwrap_err();
        assert_eq!(
            e.message,
            "The requested action \"done\" could not be understood."
        );
        let e = decide_provision(states::ENROLL, "bogus", "n", true).unwrap_err();
        assert!(e.message.contains("\"bogus\" can not be performed"));
    }

    #[test]
    fn views_gate_fields_by_version() {
        let mut n = Node {
            uuid: "u".into(),
            driver: "fake-hardware".into(),
            provision_state: states::AVAILABLE.into(),
            ..Default::default()
        };
        n.driver_info
            .insert("redfish_password".into(), json!("s3cret"));
        n.driver_info
            .insert("redfish_username".into(), json!("admin"));
        let v = node_view(&n, Microversion(1), None, "http://x", "c", 0);
        assert!(v.get("name").is_none());
        assert!(
            v["provision_state"].is_null(),
            "available is None below 1.2"
        );
        assert!(v.get("states").is_none());
        assert_eq!(v["driver_info"]["redfish_password"], "******");
        assert_eq!(v["driver_info"]["redfish_username"], "admin");
        let v = node_view(&n, Microversion(31), None, "http://x", "c", 0);
        assert!(v.get("boot_interface").is_some());
        assert!(v.get("storage_interface").is_none());
        assert_eq!(v["provision_state"], "available");
        let v = node_view(&n, Microversion::MAX, None, "http://x", "c", 0);
        for (f, _) in NODE_FIELDS {
            assert!(v.get(*f).is_some(), "{f} at the newest version");
        }
        assert_eq!(v["links"][0]["href"], "http://x/v1/nodes/u");
        assert_eq!(v["links"][1]["href"], "http://x/nodes/u");
        let only = vec!["uuid".to_string(), "name".to_string()];
        let v = node_view(&n, Microversion::MAX, Some(&only), "http://x", "c", 0);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["links", "name", "uuid"]);
        let p = Port::default();
        let v = port_view(&p, Microversion(18), None, "http://x");
        assert!(v.get("internal_info").is_some());
        assert!(v.get("pxe_enabled").is_none());
    }

    #[test]
    fn schema_messages() {
        let body = json!({"driver": 5}).as_object().unwrap().clone();
        let e = validate("node", &body, NODE_SCHEMA, &[]).unwrap_err();
        assert_eq!(
            e.message,
            "Schema error for node: 5 is not of type 'string'"
        );
        let body = json!({"driver": "x", "bogus": 1})
            .as_object()
            .unwrap()
            .clone();
        let e = validate("node", &body, NODE_SCHEMA, &[]).unwrap_err();
        assert_eq!(
            e.message,
            "Schema error for node: Additional properties are not allowed ('bogus' was \
             unexpected)"
        );
        let body = json!({"maintenance": "maybe"}).as_object().unwrap().clone();
        let e = validate("node", &body, NODE_SCHEMA, &[]).unwrap_err();
        assert!(e
            .message
            .starts_with("Invalid maintenance: Unrecognized value 'maybe'"));
        let body = json!({"uuid": "nope"}).as_object().unwrap().clone();
        let e = validate("node", &body, NODE_SCHEMA, &[]).unwrap_err();
        assert_eq!(e.message, "Expected UUID for uuid: nope");
        let body = json!({"maintenance": "yes", "name": null})
            .as_object()
            .unwrap()
            .clone();
        let ok = validate("node", &body, NODE_SCHEMA, &[]).unwrap();
        assert_eq!(ok["maintenance"], true);
        let body = json!({"resource_class": "x".repeat(81)})
            .as_object()
            .unwrap()
            .clone();
        assert!(validate("node", &body, NODE_SCHEMA, &[])
            .unwrap_err()
            .message
            .ends_with("is too long"));
    }

    #[test]
    fn names_macs_traits() {
        assert!(is_valid_logical_name("node-1.a_b~c"));
        assert!(!is_valid_logical_name("with space"));
        assert!(!is_valid_logical_name(""));
        assert_eq!(
            normalize_mac("AA:BB:cc:00:11:22").as_deref(),
            Some("aa:bb:cc:00:11:22")
        );
        assert_eq!(normalize_mac("aa:bb:cc:00:11"), None);
        assert_eq!(normalize_mac("zz:bb:cc:00:11:22"), None);
        assert!(valid_trait("CUSTOM_GOLD"));
        assert!(valid_trait("HW_CPU_X86_AVX2"));
        assert!(!valid_trait("custom_gold"));
        assert!(!valid_trait("CUSTOM_"));
        let ll = json!({"port_id": "Eth1", "switch_id": "0A:1B:2C:3D:4E:5F"});
        let out = check_local_link(ll.as_object().unwrap()).unwrap();
        assert_eq!(out["switch_id"], "0a:1b:2c:3d:4e:5f");
        let ll = json!({"port_id": "Eth1"});
        assert!(check_local_link(ll.as_object().unwrap()).is_err());
    }

    #[test]
    fn masking_is_recursive_and_by_key() {
        let d = json!({"ipmi_password": "x", "nested": {"auth_token": "t", "ok": 1}, "u": "a"});
        let m = mask(d.as_object().unwrap());
        assert_eq!(
            Value::Object(m),
            json!({"ipmi_password": "******", "nested": {"auth_token": "******", "ok": 1},
                "u": "a"})
        );
    }
}
