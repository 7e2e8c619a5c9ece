//! Records of the compute service and Nova's rules about them: flavor fields, keypair names
//! per microversion, the quota resources each microversion shows, and the 2.86 extra-spec
//! validation.

use serde_json::{Map, Value};

/// A flavor (Nova's `flavors` row; `id` is the public `flavorid`).
#[derive(Debug, Clone, PartialEq)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    /// Swap in MiB; 0 is none.
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    /// Values are strings, as Nova stores them.
    pub extra_specs: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Flavor {
    /// A public flavor with Nova's defaults for the optional fields.
    pub fn new(id: &str, name: &str, memory_mb: i64, vcpus: i64, root_gb: i64) -> Flavor {
        Flavor {
            id: id.into(),
            name: name.into(),
            memory_mb,
            vcpus,
            root_gb,
            ephemeral_gb: 0,
            swap: 0,
            rxtx_factor: 1.0,
            is_public: true,
            disabled: false,
            description: None,
            extra_specs: Map::new(),
            created_at: strata_core::time::now_micros(),
            updated_at: None,
        }
    }
}

/// The flavors DevStack creates: Nova's classic `m1.*` set plus `m1.nano` (42) and `m1.micro`
/// (84) that DevStack makes for Tempest.
pub fn devstack_flavors() -> Vec<Flavor> {
    vec![
        Flavor::new("1", "m1.tiny", 512, 1, 1),
        Flavor::new("2", "m1.small", 2048, 1, 20),
        Flavor::new("3", "m1.medium", 4096, 2, 40),
        Flavor::new("4", "m1.large", 8192, 4, 80),
        Flavor::new("5", "m1.xlarge", 16384, 8, 160),
        Flavor::new("42", "m1.nano", 128, 1, 1),
        Flavor::new("84", "m1.micro", 192, 1, 1),
    ]
}

/// The keys `sort_key` may name on flavor lists, mapped to our columns.
pub fn flavor_sort_column(key: &str) -> Option<&'static str> {
    Some(match key {
        "flavorid" | "id" => "id",
        "name" => "name",
        "memory_mb" => "memory_mb",
        "vcpus" => "vcpus",
        "root_gb" => "root_gb",
        "ephemeral_gb" => "ephemeral_gb",
        "swap" => "swap",
        "rxtx_factor" => "rxtx_factor",
        "is_public" => "is_public",
        "disabled" => "disabled",
        "description" => "description",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        // Columns Nova has and Strata does not keep: every flavor has the same value.
        "vcpu_weight" => "id",
        _ => return None,
    })
}

/// A keypair.
#[derive(Debug, Clone, PartialEq)]
pub struct Keypair {
    pub user_id: String,
    pub name: String,
    /// A number unique among keypairs (Nova shows its row id).
    pub id: i64,
    /// `ssh` or `x509`.
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: i64,
}

/// Characters keypair names may use below 2.92 (Nova's `keypair_name_20`).
pub const KEYPAIR_CHARS_20: &str =
    "_- 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// From 2.92 (`keypair_name_292`), `@` and `.` too.
pub const KEYPAIR_CHARS_292: &str =
    "@._- 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Whether `name` uses only the characters allowed at microversion `2.minor`.
pub fn keypair_name_ok(name: &str, minor: u32) -> bool {
    let chars = if minor >= 92 {
        KEYPAIR_CHARS_292
    } else {
        KEYPAIR_CHARS_20
    };
    name.chars().all(|c| chars.contains(c))
}

/// Every quota resource Nova knows, in the order its views list them.
pub const QUOTA_RESOURCES: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "floating_ips",
    "fixed_ips",
    "metadata_items",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "key_pairs",
    "security_groups",
    "security_group_rules",
    "server_groups",
    "server_group_members",
];

/// The nova-network resources removed from quota sets and limits at 2.36.
pub const NETWORK_QUOTAS: &[&str] = &[
    "floating_ips",
    "fixed_ips",
    "security_groups",
    "security_group_rules",
];
/// The personality resources removed at 2.57.
pub const PERSONALITY_QUOTAS: &[&str] = &[
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
];

/// The resources `os-quota-sets` shows and accepts at `2.minor`.
pub fn quota_set_resources(minor: u32) -> Vec<&'static str> {
    QUOTA_RESOURCES
        .iter()
        .copied()
        .filter(|r| minor < 36 || !NETWORK_QUOTAS.contains(r))
        .filter(|r| minor < 57 || !PERSONALITY_QUOTAS.contains(r))
        .collect()
}

/// The resources `os-quota-class-sets` shows and accepts at `2.minor`: below 2.50 the
/// network ones without the server group ones, from 2.50 the other way round, and from 2.57
/// without personality.
pub fn quota_class_resources(minor: u32) -> Vec<&'static str> {
    QUOTA_RESOURCES
        .iter()
        .copied()
        .filter(|r| {
            if minor < 50 {
                !matches!(*r, "server_groups" | "server_group_members")
            } else {
                !NETWORK_QUOTAS.contains(r)
            }
        })
        .filter(|r| minor < 57 || !PERSONALITY_QUOTAS.contains(r))
        .collect()
}

/// Checks one extra spec as Nova does from 2.86 (`nova.api.validation.extra_specs`): keys of
/// the namespaces Nova registers are checked against the keys it knows there, and known keys'
/// values against their type or choices. Keys outside those namespaces are free (Nova allows
/// them for out-of-tree filters). Covered: `hw_rng:`, `hw_video:`, `quota:`, `resources*:`,
/// `trait*:`, `accel:`, `pci_passthrough:`, `hide_hypervisor_id`, `group_policy`, and the
/// values of the common `hw:` keys; unknown `hw:` keys are let through rather than risk
/// refusing one Nova knows (TODO-correctness: complete the `hw:` table).
pub fn validate_extra_spec(key: &str, value: &str) -> Result<(), String> {
    let bad_value = |why: &str| {
        Err(format!(
            "Validation failed; extra spec {key} value {value} is invalid: {why}"
        ))
    };
    let unknown = || {
        Err(format!(
            "Validation failed; extra spec {key} does not match any known validator"
        ))
    };
    let int = |min: i64| -> Result<(), String> {
        match value.parse::<i64>() {
            Ok(n) if n >= min => Ok(()),
            Ok(_) => bad_value(&format!("must be greater than or equal to {min}")),
            Err(_) => bad_value("must be an integer"),
        }
    };
    let boolean = || -> Result<(), String> {
        if crate::schema::bool_from_string(value).is_some() {
            Ok(())
        } else {
            bad_value("must be a boolean")
        }
    };
    let choice = |options: &[&str]| -> Result<(), String> {
        if options.contains(&value) {
            Ok(())
        } else {
            bad_value(&format!("must be one of {}", options.join(", ")))
        }
    };
    let (ns, name) = match key.split_once(':') {
        Some((ns, name)) => (ns, name),
        None => {
            return match key {
                "hide_hypervisor_id" => boolean(),
                "group_policy" => choice(&["isolate", "none"]),
                _ => Ok(()),
            }
        }
    };
    let resources_ns = ns.strip_prefix("resources").is_some_and(|g| {
        g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    let trait_ns = ns.strip_prefix("trait").is_some_and(|g| {
        g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    let class_name = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    if resources_ns {
        if !class_name(name) {
            return unknown();
        }
        return int(0);
    }
    if trait_ns {
        if !class_name(name) {
            return unknown();
        }
        return choice(&["required", "forbidden"]);
    }
    match ns {
        "hw_rng" => match name {
            "allowed" => boolean(),
            "rate_bytes" | "rate_period" => int(0),
            _ => unknown(),
        },
        "hw_video" => match name {
            "ram_max_mb" => int(0),
            _ => unknown(),
        },
        "quota" => {
            let ints = [
                "cpu_shares",
                "cpu_period",
                "cpu_quota",
                "cpu_limit",
                "cpu_reservation",
                "disk_read_bytes_sec",
                "disk_read_iops_sec",
                "disk_write_bytes_sec",
                "disk_write_iops_sec",
                "disk_total_bytes_sec",
                "disk_total_iops_sec",
                "disk_io_limit",
                "disk_io_reservation",
                "disk_io_shares_share",
                "memory_limit",
                "memory_reservation",
                "memory_shares_share",
                "vif_inbound_average",
                "vif_inbound_peak",
                "vif_inbound_burst",
                "vif_outbound_average",
                "vif_outbound_peak",
                "vif_outbound_burst",
                "vif_limit",
                "vif_reservation",
                "vif_shares_share",
            ];
            let levels = [
                "cpu_shares_level",
                "memory_shares_level",
                "disk_io_shares_level",
                "vif_shares_level",
            ];
            if ints.contains(&name) {
                int(0)
            } else if levels.contains(&name) {
                choice(&["custom", "high", "normal", "low"])
            } else {
                unknown()
            }
        }
        "accel" => match name {
            "device_profile" => Ok(()),
            _ => unknown(),
        },
        "pci_passthrough" => match name {
            "alias" => Ok(()),
            _ => unknown(),
        },
        "hw" => match name {
            "cpu_policy" => choice(&["dedicated", "shared", "mixed"]),
            "cpu_thread_policy" => choice(&["prefer", "isolate", "require"]),
            "emulator_threads_policy" => choice(&["share", "isolate"]),
            "cpu_sockets" | "cpu_cores" | "cpu_threads" | "cpu_max_sockets" | "cpu_max_cores"
            | "cpu_max_threads" | "numa_nodes" => int(1),
            "serial_port_count" | "maxphysaddr_bits" => int(0),
            "cpu_realtime"
            | "boot_menu"
            | "vif_multiqueue_enabled"
            | "mem_encryption"
            | "pmu"
            | "hide_hypervisor_id"
            | "locked_memory"
            | "virtio_packed_ring"
            | "ephemeral_encryption" => boolean(),
            "mem_page_size" => {
                let sized = value
                    .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                    .parse::<u64>()
                    .is_ok();
                if sized || ["small", "large", "any"].contains(&value) {
                    Ok(())
                } else {
                    bad_value("must be small, large, any or a page size")
                }
            }
            "pci_numa_affinity_policy" => choice(&["required", "legacy", "preferred", "socket"]),
            "tpm_version" => choice(&["1.2", "2.0"]),
            "tpm_model" => choice(&["tpm-tis", "tpm-crb"]),
            "watchdog_action" => choice(&["none", "pause", "poweroff", "reset", "disabled"]),
            "maxphysaddr_mode" => choice(&["emulate", "passthrough"]),
            "viommu_model" => choice(&["intel", "smmuv3", "virtio", "auto"]),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypair_names_per_version() {
        assert!(keypair_name_ok("my key_1-a", 2));
        assert!(!keypair_name_ok("me@host", 91));
        assert!(keypair_name_ok("me@host.example", 92));
        assert!(!keypair_name_ok("a/b", 92));
    }

    #[test]
    fn quota_keys_per_version() {
        assert!(quota_set_resources(35).contains(&"floating_ips"));
        assert!(!quota_set_resources(36).contains(&"floating_ips"));
        assert!(quota_set_resources(56).contains(&"injected_files"));
        assert!(!quota_set_resources(57).contains(&"injected_files"));
        assert!(!quota_class_resources(49).contains(&"server_groups"));
        assert!(quota_class_resources(49).contains(&"security_groups"));
        assert!(quota_class_resources(50).contains(&"server_groups"));
        assert!(!quota_class_resources(50).contains(&"fixed_ips"));
    }

    #[test]
    fn extra_specs_validated_from_2_86() {
        assert!(validate_extra_spec("hw:cpu_policy", "dedicated").is_ok());
        assert!(validate_extra_spec("hw:cpu_policy", "bogus").is_err());
        assert!(validate_extra_spec("hw:numa_nodes", "0").is_err());
        assert!(validate_extra_spec("hw_rng:allowed", "True").is_ok());
        assert!(validate_extra_spec("hw_rng:nonsense", "1").is_err());
        assert!(validate_extra_spec("resources:VCPU", "2").is_ok());
        assert!(validate_extra_spec("resources1:CUSTOM_X", "-1").is_err());
        assert!(validate_extra_spec("trait:HW_CPU_X86_AVX", "required").is_ok());
        assert!(validate_extra_spec("trait:HW_CPU_X86_AVX", "yes").is_err());
        assert!(validate_extra_spec("quota:cpu_shares", "x").is_err());
        assert!(validate_extra_spec("my_filter:anything", "x").is_ok());
        assert!(validate_extra_spec("plain", "x").is_ok());
    }
}
