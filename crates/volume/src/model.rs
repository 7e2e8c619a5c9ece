//! The records of the volume service and Cinder's rules on them: statuses and which actions
//! each allows, who may see and change what.

use serde_json::{Map, Value};
use strata_api::AuthContext;

/// A Cinder volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB.
    pub size: i64,
    pub status: String,
    /// `detached` or `attached`.
    pub attach_status: String,
    pub availability_zone: String,
    pub volume_type_id: String,
    pub bootable: bool,
    pub multiattach: bool,
    pub source_volid: Option<String>,
    pub snapshot_id: Option<String>,
    pub image_id: Option<String>,
    pub metadata: Map<String, Value>,
    pub image_metadata: Map<String, Value>,
    /// `readonly` ("True"/"False") and `attached_mode` live here, as in Cinder.
    pub admin_metadata: Map<String, Value>,
    pub migration_status: Option<String>,
    /// The backend's handle of the volume's data.
    pub provider_location: Option<String>,
    /// Why the last asynchronous step failed (never shown to tenants verbatim).
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub launched_at: Option<i64>,
}

/// A snapshot of a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub size: i64,
    pub status: String,
    pub progress: String,
    pub metadata: Map<String, Value>,
    pub provider_location: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A volume type.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeType {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An attachment of a volume to a server (or a host).
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub id: String,
    pub volume_id: String,
    pub instance_uuid: Option<String>,
    pub attached_host: Option<String>,
    pub mountpoint: Option<String>,
    /// `rw` or `ro`.
    pub attach_mode: String,
    /// `reserved`, `attaching`, `attached`, `detaching`, `detached`.
    pub attach_status: String,
    pub connector: Option<Value>,
    pub connection_info: Option<Value>,
    pub attached_at: Option<i64>,
    pub detached_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Every volume status Cinder has; list filters on `status` accept only these.
pub const VOLUME_STATUSES: &[&str] = &[
    "creating",
    "available",
    "reserved",
    "attaching",
    "detaching",
    "in-use",
    "maintenance",
    "deleting",
    "awaiting-transfer",
    "error",
    "error_deleting",
    "backing-up",
    "restoring-backup",
    "error_backing-up",
    "error_restoring",
    "error_extending",
    "downloading",
    "uploading",
    "retyping",
    "extending",
];

/// Every snapshot status.
pub const SNAPSHOT_STATUSES: &[&str] = &[
    "creating",
    "available",
    "backing-up",
    "deleting",
    "error",
    "deleted",
    "unmanaging",
    "restoring",
    "error_deleting",
];

/// The name of the type volumes get when none is asked for (Cinder's `__DEFAULT__`).
pub const DEFAULT_TYPE_NAME: &str = "__DEFAULT__";

pub fn is_admin(ctx: &AuthContext) -> bool {
    ctx.has_role("admin")
}

/// Whether the caller may see (and so act on) a project's resource: its own project, or an
/// admin. Everyone else is told it does not exist.
pub fn owns(ctx: &AuthContext, project_id: &str) -> bool {
    is_admin(ctx) || ctx.project_id() == Some(project_id)
}

/// Whether the caller may change resources (readers may only look).
pub fn can_write(ctx: &AuthContext) -> bool {
    is_admin(ctx) || ctx.has_role("member")
}

impl Volume {
    pub fn readonly(&self) -> bool {
        self.admin_metadata
            .get("readonly")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Whether `s` is a UUID in any spelling Cinder accepts (dashed or plain hex).
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok()
}
