//! The image record and Glance's rules about it: the formats it accepts, who may see and change
//! an image, which attributes are read-only or reserved, and the values each attribute takes.
//! Pure functions over [`Image`] and [`AuthContext`]; no I/O.

use serde_json::{Map, Value};
use strata_api::AuthContext;

/// Glance's default `disk_formats`.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
/// Glance's default `container_formats`.
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
pub const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];
/// Every status an image may have (only `queued` is reached while data upload is missing).
pub const STATUSES: &[&str] = &[
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
];

/// Attributes no request may set (Glance's `_disallowed_properties`): 403 "is read-only".
pub const DISALLOWED: &[&str] = &["direct_url", "self", "file", "schema", "stores"];
/// Attributes the server owns (Glance's `_readonly_properties`): 403 "is read-only".
pub const READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
];
/// Names Glance keeps for itself (`_reserved_properties`): 403 "is reserved".
pub const RESERVED: &[&str] = &["location", "locations", "deleted", "deleted_at"];
/// The namespace Glance reserves for its own properties.
pub const RESERVED_NAMESPACE: &str = "os_glance";
/// The attributes of the image entity, as opposed to free-form properties.
pub const BASE: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "tags",
    "created_at",
    "updated_at",
];

/// Glance's limit on integers (`min_disk`, `min_ram`): a signed 32-bit column.
pub const MAX_INT: i64 = 2_147_483_647;

/// One image record.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub owner: String,
    pub status: String,
    pub visibility: String,
    pub protected: bool,
    pub os_hidden: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    /// Free-form properties; values are strings.
    pub properties: Map<String, Value>,
    /// Unique, in the order they were added.
    pub tags: Vec<String>,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

impl Image {
    /// The value of a base attribute or a property by name, as the view shows it.
    pub fn attribute(&self, key: &str) -> Option<Value> {
        let v = match key {
            "id" => Value::from(self.id.clone()),
            "name" => self.name.clone().into(),
            "owner" => Value::from(self.owner.clone()),
            "status" => Value::from(self.status.clone()),
            "visibility" => Value::from(self.visibility.clone()),
            "protected" => Value::from(self.protected),
            "os_hidden" => Value::from(self.os_hidden),
            "disk_format" => self.disk_format.clone().into(),
            "container_format" => self.container_format.clone().into(),
            "min_disk" => Value::from(self.min_disk),
            "min_ram" => Value::from(self.min_ram),
            "size" => self.size.into(),
            "virtual_size" => self.virtual_size.into(),
            "checksum" => self.checksum.clone().into(),
            "os_hash_algo" => self.os_hash_algo.clone().into(),
            "os_hash_value" => self.os_hash_value.clone().into(),
            "tags" => Value::from(self.tags.clone()),
            _ => return self.properties.get(key).cloned(),
        };
        Some(v)
    }

    /// Sets a base attribute or a property from a JSON value, checking its type and range as
    /// Glance's image schema does. Read-only attributes are refused by the caller before this.
    pub fn set(&mut self, key: &str, v: &Value) -> Result<(), String> {
        match key {
            "name" => self.name = opt_string(key, v, 255)?,
            "visibility" => self.visibility = enum_of(key, v, VISIBILITIES)?,
            "protected" => self.protected = boolean(key, v)?,
            "os_hidden" => self.os_hidden = boolean(key, v)?,
            "disk_format" => self.disk_format = opt_enum_of(key, v, DISK_FORMATS)?,
            "container_format" => self.container_format = opt_enum_of(key, v, CONTAINER_FORMATS)?,
            "min_disk" => self.min_disk = int(key, v)?,
            "min_ram" => self.min_ram = int(key, v)?,
            "owner" => {
                self.owner = opt_string(key, v, 255)?.unwrap_or_default();
            }
            "tags" => self.tags = tags(v)?,
            _ => {
                if key.len() > 255 {
                    return Err(format!("'{key}' is too long"));
                }
                match v {
                    Value::String(s) if s.len() <= 65535 => {
                        self.properties.insert(key.to_string(), v.clone());
                    }
                    Value::String(_) => return Err(format!("'{key}' is too long")),
                    other => return Err(format!("{other} is not of type 'string'")),
                }
            }
        }
        Ok(())
    }
}

fn schema_error(msg: String) -> String {
    format!("Provided object does not match schema 'image': {msg}")
}

fn opt_string(_key: &str, v: &Value, max: usize) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= max => Ok(Some(s.clone())),
        Value::String(s) => Err(schema_error(format!("'{s}' is too long"))),
        other => Err(schema_error(format!(
            "{other} is not of type 'null', 'string'"
        ))),
    }
}

fn enum_of(_key: &str, v: &Value, allowed: &[&str]) -> Result<String, String> {
    match v {
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        other => Err(schema_error(format!(
            "{other} is not one of {}",
            py_list(allowed)
        ))),
    }
}

fn opt_enum_of(key: &str, v: &Value, allowed: &[&str]) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        other => enum_of(key, other, allowed).map(Some),
    }
}

fn boolean(_key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| schema_error(format!("{v} is not of type 'boolean'")))
}

fn int(key: &str, v: &Value) -> Result<i64, String> {
    let n = v
        .as_i64()
        .ok_or_else(|| schema_error(format!("{v} is not of type 'integer'")))?;
    if n < 0 {
        return Err(schema_error(format!("{n} is less than the minimum of 0")));
    }
    if n > MAX_INT {
        return Err(format!("'{key}' value must be less than {}", MAX_INT + 1));
    }
    Ok(n)
}

fn tags(v: &Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(schema_error(format!("{v} is not of type 'array'")));
    };
    let mut out: Vec<String> = Vec::new();
    for t in items {
        match t {
            Value::String(s) if s.chars().count() <= 255 => {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            Value::String(s) => return Err(schema_error(format!("'{s}' is too long"))),
            other => return Err(schema_error(format!("{other} is not of type 'string'"))),
        }
    }
    Ok(out)
}

/// `['a', 'b']`, as Python prints a list in jsonschema's messages.
fn py_list(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", inner.join(", "))
}

/// Whether `key` is in Glance's reserved namespace (`os_glance*`).
pub fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key) || key.starts_with(RESERVED_NAMESPACE)
}

/// Whether the caller may see `img` (show, download, and listing with the matching filter):
/// admins see everything, others their own project's images, public and community ones, and
/// shared ones their project is a member of (`member`: a membership exists, whatever its
/// status), as Glance's `is_image_visible` decides.
pub fn can_see(ctx: &AuthContext, img: &Image, member: bool) -> bool {
    ctx.is_admin()
        || ctx.project_id() == Some(img.owner.as_str())
        || img.visibility == "public"
        || img.visibility == "community"
        || (img.visibility == "shared" && member)
}

/// Whether seeing `img` depends on a membership (so the caller must look one up): a shared
/// image of another project, for a non-admin.
pub fn needs_membership(ctx: &AuthContext, img: &Image) -> bool {
    !ctx.is_admin() && img.visibility == "shared" && ctx.project_id() != Some(img.owner.as_str())
}

/// The statuses of an image membership.
pub const MEMBER_STATUSES: &[&str] = &["pending", "accepted", "rejected"];

/// Glance's `add_member` and `delete_member`: `role:admin or (role:member and
/// project_id:%(project_id)s)`, the image's owner.
pub fn can_manage_members(ctx: &AuthContext, img: &Image) -> bool {
    can_modify(ctx, img)
}

/// Glance's `modify_member`: `role:admin or (role:member and project_id:%(member_id)s)`, the
/// member project itself (`member`: the caller's project is a member of the image).
pub fn can_set_member_status(ctx: &AuthContext, member: bool) -> bool {
    ctx.is_admin() || (ctx.has_role("member") && member)
}

/// Glance's `modify_image`, `delete_image` and tag rules: `role:admin or (role:member and
/// project_id:%(owner)s)`.
pub fn can_modify(ctx: &AuthContext, img: &Image) -> bool {
    ctx.is_admin() || (ctx.has_role("member") && ctx.project_id() == Some(img.owner.as_str()))
}

/// Glance's `add_image`: `role:admin or (role:member and project_id:%(project_id)s)`.
pub fn can_create(ctx: &AuthContext) -> bool {
    ctx.is_admin() || (ctx.has_role("member") && ctx.project_id().is_some())
}

/// `publicize_image`: only admins make images public.
pub fn can_publicize(ctx: &AuthContext) -> bool {
    ctx.is_admin()
}

/// Whether `id` is spelled as Glance's schema wants (a dashed UUID).
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::parse_str(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn img() -> Image {
        Image {
            id: "00000000-0000-0000-0000-000000000001".into(),
            name: None,
            owner: "p".into(),
            status: "queued".into(),
            visibility: "shared".into(),
            protected: false,
            os_hidden: false,
            disk_format: None,
            container_format: None,
            min_disk: 0,
            min_ram: 0,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            properties: Map::new(),
            tags: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn set_checks_types_and_ranges() {
        let mut i = img();
        assert!(i.set("disk_format", &json!("qcow2")).is_ok());
        assert!(i.set("disk_format", &json!("wrong")).is_err());
        assert!(i.set("disk_format", &json!(null)).is_ok());
        assert!(i.set("container_format", &json!("bare")).is_ok());
        assert!(i.set("visibility", &json!("everyone")).is_err());
        assert!(i.set("min_ram", &json!(-1)).is_err());
        assert!(i.set("min_ram", &json!(MAX_INT + 1)).is_err());
        assert!(i.set("min_ram", &json!("1")).is_err());
        assert!(i.set("protected", &json!("yes")).is_err());
        assert!(i.set("a", &json!(1)).is_err());
        assert!(i.set("a", &json!("b")).is_ok());
        assert!(i.set("tags", &json!(["x", "x", "y"])).is_ok());
        assert_eq!(i.tags, vec!["x", "y"]);
        assert!(i.set("name", &json!("n".repeat(256))).is_err());
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved("os_glance_import_task"));
        assert!(is_reserved("locations"));
        assert!(!is_reserved("os_distro"));
        assert!(is_uuid("7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d"));
        assert!(!is_uuid("7b2e4a5c8b1f4c369d2a0e5b8f3c1a2d"));
    }
}
