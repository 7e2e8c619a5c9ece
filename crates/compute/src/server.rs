//! The server record and its state machine.
//!
//! A server carries Nova's three states: `vm_state` (what the instance is: building, active,
//! stopped, …), `task_state` (what is being done to it: scheduling, spawning, powering-off, …,
//! or nothing) and `power_state` (what the hypervisor last reported). The API's `status` is
//! derived from the first two exactly as Nova's `_STATE_MAP` does.
//!
//! Who moves what: API calls set a task (and the desired power or reboot sequence the host's
//! agent follows); the controller (`controller.rs`) runs the steps that need other services
//! (scheduling, ports, releasing claims); agent reports finish tasks. Every transition is one
//! store write that checks the state it starts from, so a late or repeated report, a restarted
//! controller or a second replica cannot move a server twice.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strata_agent_api::Power;

/// `vm_state` values.
pub mod vm {
    pub const ACTIVE: &str = "active";
    pub const BUILDING: &str = "building";
    pub const PAUSED: &str = "paused";
    pub const SUSPENDED: &str = "suspended";
    pub const STOPPED: &str = "stopped";
    pub const RESCUED: &str = "rescued";
    pub const RESIZED: &str = "resized";
    pub const SOFT_DELETED: &str = "soft-delete";
    pub const DELETED: &str = "deleted";
    pub const ERROR: &str = "error";
    pub const SHELVED: &str = "shelved";
    pub const SHELVED_OFFLOADED: &str = "shelved_offloaded";
}

/// `task_state` values.
pub mod task {
    pub const SCHEDULING: &str = "scheduling";
    pub const NETWORKING: &str = "networking";
    pub const BLOCK_DEVICE_MAPPING: &str = "block_device_mapping";
    pub const SPAWNING: &str = "spawning";
    pub const REBOOTING: &str = "rebooting";
    pub const REBOOTING_HARD: &str = "rebooting_hard";
    pub const PAUSING: &str = "pausing";
    pub const UNPAUSING: &str = "unpausing";
    pub const SUSPENDING: &str = "suspending";
    pub const RESUMING: &str = "resuming";
    pub const POWERING_OFF: &str = "powering-off";
    pub const POWERING_ON: &str = "powering-on";
    pub const REBUILDING: &str = "rebuilding";
    pub const DELETING: &str = "deleting";
    /// `createImage`: the host's agent is taking the snapshot.
    pub const IMAGE_SNAPSHOT: &str = "image_snapshot";
    pub const IMAGE_SNAPSHOT_PENDING: &str = "image_snapshot_pending";
    pub const IMAGE_PENDING_UPLOAD: &str = "image_pending_upload";
    /// `createImage`: the snapshot's data is being uploaded to the image service.
    pub const IMAGE_UPLOADING: &str = "image_uploading";
    /// Resize and cold migration: the scheduler picks the destination (`moves.rs`).
    pub const RESIZE_PREP: &str = "resize_prep";
    /// The source's guest is being powered off.
    pub const RESIZE_MIGRATING: &str = "resize_migrating";
    /// The source's guest is off: the server moves over to the destination.
    pub const RESIZE_MIGRATED: &str = "resize_migrated";
    /// The destination's agent is building the guest.
    pub const RESIZE_FINISH: &str = "resize_finish";
    /// `revertResize`: back to the source host and the old flavor.
    pub const RESIZE_REVERTING: &str = "resize_reverting";
    /// Live migration.
    pub const MIGRATING: &str = "migrating";
    /// `shelve`: the guest is stopped (its snapshot taken) before the server is shelved.
    pub const SHELVING: &str = "shelving";
    pub const SHELVING_IMAGE_PENDING_UPLOAD: &str = "shelving_image_pending_upload";
    pub const SHELVING_IMAGE_UPLOADING: &str = "shelving_image_uploading";
    /// The guest leaves its host and the host's resources are released.
    pub const SHELVING_OFFLOADING: &str = "shelving_offloading";
    /// An offloaded server is scheduled again.
    pub const UNSHELVING: &str = "unshelving";

    /// The task states of a snapshot in progress.
    pub fn is_snapshot(t: Option<&str>) -> bool {
        matches!(
            t,
            Some(IMAGE_SNAPSHOT | IMAGE_SNAPSHOT_PENDING | IMAGE_PENDING_UPLOAD | IMAGE_UPLOADING)
        )
    }

    /// The task states of a shelve's snapshot in progress.
    pub fn is_shelve_snapshot(t: Option<&str>) -> bool {
        matches!(
            t,
            Some(SHELVING_IMAGE_PENDING_UPLOAD | SHELVING_IMAGE_UPLOADING)
        )
    }
}

/// Migration statuses (Nova's `Migration.status`) and types.
pub mod migration {
    /// A cold move waiting for its destination.
    pub const PRE_MIGRATING: &str = "pre-migrating";
    /// The source's guest is being stopped (cold) or the guest copied (live: `running`).
    pub const MIGRATING: &str = "migrating";
    /// The destination builds the guest.
    pub const POST_MIGRATING: &str = "post-migrating";
    /// Resized or migrated, waiting for `confirmResize` or `revertResize`.
    pub const FINISHED: &str = "finished";
    pub const CONFIRMING: &str = "confirming";
    pub const CONFIRMED: &str = "confirmed";
    pub const REVERTING: &str = "reverting";
    pub const REVERTED: &str = "reverted";
    /// A live migration waiting for its destination.
    pub const ACCEPTED: &str = "accepted";
    pub const QUEUED: &str = "queued";
    pub const PREPARING: &str = "preparing";
    pub const RUNNING: &str = "running";
    pub const COMPLETED: &str = "completed";
    pub const CANCELLED: &str = "cancelled";
    pub const FAILED: &str = "failed";
    pub const ERROR: &str = "error";

    pub const RESIZE: &str = "resize";
    pub const MIGRATION: &str = "migration";
    pub const LIVE: &str = "live-migration";

    /// Whether the move is over (the server no longer carries it out).
    pub fn is_final(status: &str) -> bool {
        matches!(
            status,
            CONFIRMED | REVERTED | COMPLETED | CANCELLED | FAILED | ERROR
        )
    }
}

/// The guest a server has on a second host while it moves: the destination's while a live
/// migration builds it, the source's (stopped, with the old flavor) while a resize waits to be
/// confirmed, the destination's while a revert removes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherGuest {
    pub host: String,
    /// The host's agent should run it; `false`: it is being removed.
    pub wanted: bool,
    pub power: Power,
    pub flavor: FlavorCopy,
    /// Its agent reported it gone (after it stopped being wanted).
    #[serde(default)]
    pub gone: bool,
    /// Its agent reported it in `power` at the server's generation.
    #[serde(default)]
    pub ready: bool,
    /// Its agent could not build it.
    #[serde(default)]
    pub fault: Option<String>,
}

/// A move of the server (Nova's `Migration`): a resize, a cold migration or a live migration.
/// Kept on the server after it ends (with its final status) until the next move; every write
/// that changes it also writes its `compute_migration` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    /// The API's id.
    pub id: i64,
    /// The placement consumer holding the source's allocation during the move.
    pub uuid: String,
    /// [`migration::RESIZE`], [`migration::MIGRATION`] or [`migration::LIVE`].
    pub kind: String,
    pub status: String,
    /// The action the move carries out now (its events are recorded on it): the move's,
    /// then `confirmResize`'s or `revertResize`'s.
    pub request_id: String,
    pub user_id: String,
    pub source_host: String,
    pub source_node: String,
    pub dest_host: Option<String>,
    pub dest_node: Option<String>,
    /// The destination's address (Nova's `dest_host`).
    pub dest_ip: Option<String>,
    /// The host the request named (cold migration from 2.56, live migration).
    pub requested_host: Option<String>,
    /// Live migration with `force` (2.30–2.67): the named host is not checked by the filters.
    pub force: bool,
    pub old_flavor: FlavorCopy,
    pub new_flavor: FlavorCopy,
    /// What the server was before the move, restored by a revert or a failure.
    pub old_vm_state: String,
    pub old_power: Power,
    pub old_zone: Option<String>,
    pub other: Option<OtherGuest>,
    /// A live migration's abort was asked for (`DELETE /servers/{id}/migrations/{id}`), with
    /// the request id of its `live_migration_cancel` action.
    #[serde(default)]
    pub abort: Option<String>,
    /// A revert's last step: the source's guest reaching its old power state (its agent's
    /// report ends the move).
    #[serde(default)]
    pub finishing: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Move {
    pub fn is_live(&self) -> bool {
        self.kind == migration::LIVE
    }
    /// The move is still being carried out (or waits for confirmation).
    pub fn active(&self) -> bool {
        !migration::is_final(&self.status)
    }
}

/// A shelve of the server: its snapshot image (image-backed servers), what it was before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shelve {
    /// The `<name>-shelved` snapshot (deleted once the server is unshelved or deleted).
    pub image_id: Option<String>,
    /// The project the image was created in.
    pub image_owner: String,
    /// The action being carried out (`shelve`, `shelveOffload`, `unshelve`).
    pub request_id: String,
    pub old_power: Power,
    /// When the server became SHELVED (for `shelved_offload_time`).
    pub shelved_at: Option<i64>,
    /// `unshelve` to this host (2.91).
    #[serde(default)]
    pub host: Option<String>,
}

/// Nova's `power_state` codes.
pub mod power {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const CRASHED: i64 = 6;
    pub const SUSPENDED: i64 = 7;
}

/// The flavor as the server was built with it (Nova keeps a copy on the instance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlavorCopy {
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap: i64,
    pub extra_specs: BTreeMap<String, String>,
}

/// One entry of the request's `networks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NetRequest {
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip: Option<String>,
    pub tag: Option<String>,
}

/// A port of the server: created for it (deleted with it) or given by the user (unbound
/// when the server goes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRef {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac: String,
    /// `(address, version)`.
    pub ips: Vec<(String, i64)>,
    pub created: bool,
    /// The index of the request entry it realises.
    pub request: usize,
    pub mtu: i64,
}

/// The `fault` of a server in ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub details: String,
    pub created: i64,
}

/// The states of a volume block device mapping ([`Bdm::state`]).
pub mod bdm {
    /// Boot from volume: the volume is still to be created (or to become available) and
    /// attached by the controller's block-device-mapping step.
    pub const PENDING: &str = "pending";
    /// Reserved in the volume service and given to the host's agent, which has not yet
    /// reported it attached.
    pub const ATTACHING: &str = "attaching";
    /// The agent reported it attached; the controller completes the attachment.
    pub const CONNECTED: &str = "connected";
    /// Attached (the volume is `in-use`).
    pub const ATTACHED: &str = "attached";
    /// Detach asked: taken from the agent's disks, waiting for its report.
    pub const DETACHING: &str = "detaching";
    /// The agent reported it gone; the controller deletes the attachment.
    pub const DETACHED: &str = "detached";
}

/// A block device mapping with a volume destination (Nova's `BlockDeviceMapping`): a volume
/// given by the user, or created for the server from an image, a snapshot or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bdm {
    /// `bdm_uuid` (2.89).
    pub uuid: String,
    /// `volume`, `image`, `snapshot` or `blank`.
    pub source_type: String,
    /// The image or snapshot a volume is created from.
    pub source_id: Option<String>,
    /// Empty until the volume is created.
    pub volume_id: String,
    /// The volume service's attachment.
    pub attachment_id: Option<String>,
    /// `/dev/vdb`, …
    pub device: String,
    /// `None` (or negative): not bootable.
    pub boot_index: Option<i64>,
    pub delete_on_termination: bool,
    pub tag: Option<String>,
    /// GiB.
    pub volume_size: Option<i64>,
    pub volume_type: Option<String>,
    pub guest_format: Option<String>,
    pub disk_bus: Option<String>,
    pub device_type: Option<String>,
    /// One of [`bdm`]'s states.
    pub state: String,
    /// What the host's agent connects to (the attachment's connection info).
    pub connection_info: Option<serde_json::Value>,
    /// The volume was created for the server (a failed build deletes it).
    pub created: bool,
    /// When the volume was asked for (a build waits for it a bounded time).
    pub requested_at: i64,
    /// Why an attach failed (the mapping is then removed).
    #[serde(default)]
    pub error: Option<String>,
}

impl Bdm {
    /// The server's root disk.
    pub fn is_root(&self) -> bool {
        self.boot_index == Some(0)
    }
}

/// A snapshot of a server in progress: the image it fills (created `queued` by the API,
/// owned by the requester's project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotJob {
    pub image_id: String,
    /// The image's owner: the upload and the clean-up act in this project.
    pub owner_project: String,
    pub disk_format: String,
    pub container_format: String,
}

/// A server (an instance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub hostname: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub node: Option<String>,
    /// The zone the server is in (its host's), or the one it asked for while unplaced.
    pub availability_zone: Option<String>,
    /// The zone the request named (2.96 `pinned_availability_zone`).
    pub requested_zone: Option<String>,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub flavor: FlavorCopy,
    /// `""` for a server booted from a volume.
    pub image_ref: String,
    pub image_properties: BTreeMap<String, String>,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub config_drive: bool,
    pub access_ip_v4: String,
    pub access_ip_v6: String,
    pub disk_config: String,
    pub locked: bool,
    pub locked_by: Option<String>,
    pub locked_reason: Option<String>,
    pub reservation_id: String,
    pub launch_index: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub deleted: bool,
    pub fault: Option<Fault>,
    pub progress: i64,
    /// `None`: no network (`"none"`); else one entry per NIC to create or take.
    pub networks: Vec<NetRequest>,
    /// Security group ids for the ports created for the server (empty: Neutron's default).
    pub security_groups: Vec<String>,
    /// Their names, as the server view shows them.
    pub security_group_names: Vec<String>,
    /// Every group was removed (`removeSecurityGroup`): the ports have none, the view shows
    /// none — unlike empty lists at create, which mean Neutron's `default`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub security_groups_removed: bool,
    pub scheduler_hints: serde_json::Map<String, serde_json::Value>,
    pub group_id: Option<String>,
    /// Build attempts made (a reschedule is a new attempt).
    pub attempts: i64,
    pub ignore_hosts: Vec<String>,
    pub ports: Vec<PortRef>,
    /// Ports and claims of a failed build are still to be released.
    pub cleanup: bool,
    /// The host's agent should run the guest.
    pub on_host: bool,
    /// Bumped whenever what the agent is given changes.
    pub generation: i64,
    pub power: Power,
    pub reboot_seq: i64,
    pub hard_reboot: bool,
    /// The agent reported the guest gone (after the server stopped wanting it).
    pub guest_gone: bool,
    /// The tail of the guest's console log, as its agent last reported it.
    #[serde(default)]
    pub console: String,
    /// Volume block device mappings (attached volumes, boot volumes).
    #[serde(default)]
    pub bdms: Vec<Bdm>,
    /// The snapshot in progress (`createImage`), which the host's agent is asked for until it
    /// uploads it or reports it failed.
    #[serde(default)]
    pub snapshot: Option<SnapshotJob>,
    /// The server's last move (in progress, resized, or ended).
    #[serde(default)]
    pub migration: Option<Move>,
    /// The server's shelve (while shelving, shelved, and until its image is deleted).
    #[serde(default)]
    pub shelve: Option<Shelve>,
}

impl Server {
    /// The hypervisor's name for the guest (Nova's `instance_name_template`).
    pub fn instance_name(&self) -> String {
        format!("instance-{:08x}", self.seq)
    }

    /// Nova's API status for the server's states.
    pub fn status(&self) -> &'static str {
        status(&self.vm_state, self.task_state.as_deref())
    }

    /// Booted from a volume: its root disk is a volume, not a local disk from the image.
    pub fn boot_from_volume(&self) -> bool {
        self.image_ref.is_empty() || self.bdms.iter().any(Bdm::is_root)
    }

    /// The move in progress (or waiting for confirmation), if any.
    pub fn active_move(&self) -> Option<&Move> {
        self.migration.as_ref().filter(|m| m.active())
    }

    /// The move in progress, to change.
    pub fn active_move_mut(&mut self) -> Option<&mut Move> {
        self.migration.as_mut().filter(|m| m.active())
    }

    /// The second host whose agent is given the server (see [`OtherGuest`]), if any.
    pub fn move_host(&self) -> Option<&str> {
        if self.deleted || self.task_state.as_deref() == Some(task::DELETING) {
            return None;
        }
        self.active_move()
            .and_then(|m| m.other.as_ref())
            .filter(|o| o.wanted && Some(o.host.as_str()) != self.host.as_deref())
            .map(|o| o.host.as_str())
    }

    /// `(vcpus, memory_mb)` the server counts against quotas: while it moves, the larger of
    /// its old and new flavors (both are held), as Nova's resize checks the upsize.
    pub fn quota_usage(&self) -> (i64, i64) {
        match self.active_move() {
            Some(m) => (
                m.old_flavor.vcpus.max(m.new_flavor.vcpus),
                m.old_flavor.memory_mb.max(m.new_flavor.memory_mb),
            ),
            None => (self.flavor.vcpus, self.flavor.memory_mb),
        }
    }

    /// Whether a volume mapping has a step for the controller (completing or removing an
    /// attachment).
    pub fn volume_work(&self) -> bool {
        self.bdms
            .iter()
            .any(|b| b.state == bdm::CONNECTED || b.state == bdm::DETACHED)
    }
}

/// Nova's `nova.api.openstack.common._STATE_MAP`.
pub fn status(vm_state: &str, task_state: Option<&str>) -> &'static str {
    let t = task_state.unwrap_or("");
    match vm_state {
        vm::ACTIVE => match t {
            task::REBOOTING | "reboot_pending" | "reboot_started" => "REBOOT",
            task::REBOOTING_HARD | "reboot_pending_hard" | "reboot_started_hard" => "HARD_REBOOT",
            "updating_password" => "PASSWORD",
            task::REBUILDING | "rebuild_block_device_mapping" | "rebuild_spawning" => "REBUILD",
            "migrating" => "MIGRATING",
            "resize_prep" | "resize_migrating" | "resize_migrated" | "resize_finish" => "RESIZE",
            _ => "ACTIVE",
        },
        vm::BUILDING => "BUILD",
        vm::STOPPED => match t {
            "resize_prep" | "resize_migrating" | "resize_migrated" | "resize_finish" => "RESIZE",
            task::REBUILDING | "rebuild_block_device_mapping" | "rebuild_spawning" => "REBUILD",
            _ => "SHUTOFF",
        },
        vm::RESIZED => match t {
            "resize_reverting" => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        vm::PAUSED => match t {
            "migrating" => "MIGRATING",
            _ => "PAUSED",
        },
        vm::SUSPENDED => "SUSPENDED",
        vm::RESCUED => "RESCUE",
        vm::ERROR => match t {
            task::REBUILDING | "rebuild_block_device_mapping" | "rebuild_spawning" => "REBUILD",
            _ => "ERROR",
        },
        vm::DELETED => "DELETED",
        vm::SOFT_DELETED => "SOFT_DELETED",
        vm::SHELVED => "SHELVED",
        vm::SHELVED_OFFLOADED => "SHELVED_OFFLOADED",
        _ => "UNKNOWN",
    }
}

/// The `vm_state`s a status filter matches (Nova's `task_and_vm_state_from_status`, the
/// vm-state part; the task part is checked with [`status`]).
pub fn vm_states_of_status(wanted: &str) -> Vec<&'static str> {
    let s = wanted.to_ascii_uppercase();
    [
        vm::ACTIVE,
        vm::BUILDING,
        vm::STOPPED,
        vm::RESIZED,
        vm::PAUSED,
        vm::SUSPENDED,
        vm::RESCUED,
        vm::ERROR,
        vm::DELETED,
        vm::SOFT_DELETED,
        vm::SHELVED,
        vm::SHELVED_OFFLOADED,
    ]
    .into_iter()
    .filter(|v| {
        [
            None,
            Some(task::REBOOTING),
            Some(task::REBOOTING_HARD),
            Some(task::REBUILDING),
            Some("migrating"),
            Some("resize_prep"),
            Some("resize_reverting"),
            Some("updating_password"),
        ]
        .iter()
        .any(|t| status(v, *t) == s)
    })
    .collect()
}

/// What a finished task leaves: the `vm_state` once the agent reports `observed` for a server
/// in `task` (`None`: the report does not finish the task).
pub fn finish(task: &str, observed: i64) -> Option<&'static str> {
    match (task, observed) {
        (task::SPAWNING, power::RUNNING) => Some(vm::ACTIVE),
        (task::POWERING_ON, power::RUNNING) => Some(vm::ACTIVE),
        (task::POWERING_OFF, power::SHUTDOWN) => Some(vm::STOPPED),
        (task::PAUSING, power::PAUSED) => Some(vm::PAUSED),
        (task::UNPAUSING, power::RUNNING) => Some(vm::ACTIVE),
        (task::SUSPENDING, power::SUSPENDED) => Some(vm::SUSPENDED),
        (task::RESUMING, power::RUNNING) => Some(vm::ACTIVE),
        (task::REBOOTING | task::REBOOTING_HARD, power::RUNNING) => Some(vm::ACTIVE),
        (task::REBUILDING, power::RUNNING) => Some(vm::ACTIVE),
        (task::REBUILDING, power::SHUTDOWN) => Some(vm::STOPPED),
        _ => None,
    }
}

/// Nova's `hostId`: a hash of the project and host, so a tenant can tell its servers apart by
/// host without learning host names. Empty while unplaced.
pub fn host_id(project_id: &str, host: Option<&str>) -> String {
    match host {
        Some(h) if !h.is_empty() => {
            use sha2::Digest;
            let d = sha2::Sha224::digest(format!("{project_id}{h}").as_bytes());
            d.iter().map(|b| format!("{b:02x}")).collect()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_nova_state_map() {
        assert_eq!(status(vm::BUILDING, Some(task::SCHEDULING)), "BUILD");
        assert_eq!(status(vm::ACTIVE, None), "ACTIVE");
        // A snapshot in progress leaves the status alone.
        assert_eq!(status(vm::ACTIVE, Some(task::IMAGE_SNAPSHOT)), "ACTIVE");
        assert_eq!(status(vm::ACTIVE, Some(task::IMAGE_UPLOADING)), "ACTIVE");
        assert_eq!(status(vm::STOPPED, Some(task::IMAGE_SNAPSHOT)), "SHUTOFF");
        assert_eq!(
            status(vm::ACTIVE, Some(task::REBOOTING_HARD)),
            "HARD_REBOOT"
        );
        assert_eq!(status(vm::ACTIVE, Some(task::POWERING_OFF)), "ACTIVE");
        assert_eq!(status(vm::STOPPED, None), "SHUTOFF");
        assert_eq!(
            status(vm::RESIZED, Some("resize_reverting")),
            "REVERT_RESIZE"
        );
        assert_eq!(status(vm::ERROR, None), "ERROR");
        assert_eq!(status("weird", None), "UNKNOWN");
    }

    #[test]
    fn status_filters_map_back_to_vm_states() {
        assert_eq!(vm_states_of_status("shutoff"), vec![vm::STOPPED]);
        assert_eq!(vm_states_of_status("ACTIVE"), vec![vm::ACTIVE]);
        assert_eq!(vm_states_of_status("REBOOT"), vec![vm::ACTIVE]);
        assert!(vm_states_of_status("NOPE").is_empty());
    }

    #[test]
    fn only_the_awaited_power_state_finishes_a_task() {
        assert_eq!(finish(task::SPAWNING, power::RUNNING), Some(vm::ACTIVE));
        assert_eq!(finish(task::SPAWNING, power::NOSTATE), None);
        assert_eq!(finish(task::POWERING_OFF, power::RUNNING), None);
        assert_eq!(
            finish(task::POWERING_OFF, power::SHUTDOWN),
            Some(vm::STOPPED)
        );
    }

    #[test]
    fn moves_show_as_nova_shows_them() {
        assert_eq!(status(vm::ACTIVE, Some(task::RESIZE_PREP)), "RESIZE");
        assert_eq!(status(vm::STOPPED, Some(task::RESIZE_FINISH)), "RESIZE");
        assert_eq!(status(vm::RESIZED, None), "VERIFY_RESIZE");
        assert_eq!(
            status(vm::RESIZED, Some(task::RESIZE_REVERTING)),
            "REVERT_RESIZE"
        );
        assert_eq!(status(vm::ACTIVE, Some(task::MIGRATING)), "MIGRATING");
        assert_eq!(status(vm::PAUSED, Some(task::MIGRATING)), "MIGRATING");
        assert_eq!(status(vm::ACTIVE, Some(task::SHELVING)), "ACTIVE");
        assert_eq!(status(vm::SHELVED, None), "SHELVED");
        assert_eq!(
            status(vm::SHELVED_OFFLOADED, Some(task::UNSHELVING)),
            "SHELVED_OFFLOADED"
        );
        assert!(migration::is_final(migration::CONFIRMED));
        assert!(!migration::is_final(migration::FINISHED));
        assert!(!migration::is_final(migration::RUNNING));
    }

    #[test]
    fn host_id_hides_the_host() {
        let a = host_id("p1", Some("h1"));
        assert_eq!(a.len(), 56);
        assert_ne!(a, host_id("p2", Some("h1")));
        assert_eq!(host_id("p1", None), "");
    }
}
