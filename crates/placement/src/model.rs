//! Placement's records and rules, without I/O: the standard resource classes and traits, name
//! rules for custom ones, inventory capacity and the checks an allocation must pass.
//!
//! Capacity is `(total - reserved) * allocation_ratio`; an allocation of `amount` fits when
//! `used + amount <= capacity` and `min_unit <= amount <= max_unit` and `amount` is a multiple
//! of `step_size`, exactly the arithmetic Placement's SQL does (a float comparison).

use std::collections::BTreeMap;

/// The largest integer Placement accepts for amounts (a signed 32-bit SQL column upstream).
pub const MAX_INT: i64 = 2_147_483_647;
/// The largest allocation ratio (a single-precision SQL float upstream).
pub const MAX_RATIO: f64 = 3.40282e38;

/// os-resource-classes' standard classes, in its order.
pub const STANDARD_RESOURCE_CLASSES: &[&str] = &[
    "VCPU",
    "MEMORY_MB",
    "DISK_GB",
    "PCI_DEVICE",
    "SRIOV_NET_VF",
    "NUMA_SOCKET",
    "NUMA_CORE",
    "NUMA_THREAD",
    "NUMA_MEMORY_MB",
    "IPV4_ADDRESS",
    "VGPU",
    "VGPU_DISPLAY_HEAD",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU",
    "MEM_ENCRYPTION_CONTEXT",
    "FPGA",
    "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
];

/// The os-traits standard traits Strata knows: the common compute, CPU, storage, NIC, GPU and
/// accelerator ones, and the miscellaneous traits Nova and Neutron use.
pub const STANDARD_TRAITS: &[&str] = &[
    // compute
    "COMPUTE_ACCELERATORS",
    "COMPUTE_ADDRESS_SPACE_EMULATED",
    "COMPUTE_ADDRESS_SPACE_PASSTHROUGH",
    "COMPUTE_ARCH_AARCH64",
    "COMPUTE_ARCH_PPC64LE",
    "COMPUTE_ARCH_S390X",
    "COMPUTE_ARCH_X86_64",
    "COMPUTE_CONFIG_DRIVE_REGULAR_FILE",
    "COMPUTE_DEVICE_TAGGING",
    "COMPUTE_EPHEMERAL_ENCRYPTION",
    "COMPUTE_EPHEMERAL_ENCRYPTION_LUKS",
    "COMPUTE_EPHEMERAL_ENCRYPTION_PLAIN",
    "COMPUTE_FIRMWARE_BIOS",
    "COMPUTE_FIRMWARE_UEFI",
    "COMPUTE_GRAPHICS_MODEL_BOCHS",
    "COMPUTE_GRAPHICS_MODEL_CIRRUS",
    "COMPUTE_GRAPHICS_MODEL_NONE",
    "COMPUTE_GRAPHICS_MODEL_QXL",
    "COMPUTE_GRAPHICS_MODEL_VGA",
    "COMPUTE_GRAPHICS_MODEL_VIRTIO",
    "COMPUTE_IMAGE_TYPE_AKI",
    "COMPUTE_IMAGE_TYPE_AMI",
    "COMPUTE_IMAGE_TYPE_ARI",
    "COMPUTE_IMAGE_TYPE_ISO",
    "COMPUTE_IMAGE_TYPE_PLOOP",
    "COMPUTE_IMAGE_TYPE_QCOW2",
    "COMPUTE_IMAGE_TYPE_RAW",
    "COMPUTE_IMAGE_TYPE_VDI",
    "COMPUTE_IMAGE_TYPE_VHD",
    "COMPUTE_IMAGE_TYPE_VHDX",
    "COMPUTE_IMAGE_TYPE_VMDK",
    "COMPUTE_MANAGED_PCI_DEVICE",
    "COMPUTE_MEM_BACKING_FILE",
    "COMPUTE_NET_ATTACH_INTERFACE",
    "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG",
    "COMPUTE_NET_VIF_MODEL_E1000",
    "COMPUTE_NET_VIF_MODEL_E1000E",
    "COMPUTE_NET_VIF_MODEL_IGB",
    "COMPUTE_NET_VIF_MODEL_LAN9118",
    "COMPUTE_NET_VIF_MODEL_NE2K_PCI",
    "COMPUTE_NET_VIF_MODEL_NETFRONT",
    "COMPUTE_NET_VIF_MODEL_PCNET",
    "COMPUTE_NET_VIF_MODEL_RTL8139",
    "COMPUTE_NET_VIF_MODEL_SPAPR_VLAN",
    "COMPUTE_NET_VIF_MODEL_SRIOV",
    "COMPUTE_NET_VIF_MODEL_VIRTIO",
    "COMPUTE_NET_VIF_MODEL_VMXNET",
    "COMPUTE_NET_VIF_MODEL_VMXNET3",
    "COMPUTE_NODE",
    "COMPUTE_RESCUE_BFV",
    "COMPUTE_SAME_HOST_COLD_MIGRATE",
    "COMPUTE_SECURITY_STATELESS_FIREWALL",
    "COMPUTE_SECURITY_TPM_1_2",
    "COMPUTE_SECURITY_TPM_2_0",
    "COMPUTE_SECURITY_UEFI_SECURE_BOOT",
    "COMPUTE_SOCKET_PCI_NUMA_AFFINITY",
    "COMPUTE_STATUS_DISABLED",
    "COMPUTE_STORAGE_BUS_FDC",
    "COMPUTE_STORAGE_BUS_IDE",
    "COMPUTE_STORAGE_BUS_LXC",
    "COMPUTE_STORAGE_BUS_SATA",
    "COMPUTE_STORAGE_BUS_SCSI",
    "COMPUTE_STORAGE_BUS_USB",
    "COMPUTE_STORAGE_BUS_UML",
    "COMPUTE_STORAGE_BUS_VIRTIO",
    "COMPUTE_STORAGE_BUS_XEN",
    "COMPUTE_TRUSTED_CERTS",
    "COMPUTE_VIOMMU_MODEL_AUTO",
    "COMPUTE_VIOMMU_MODEL_INTEL",
    "COMPUTE_VIOMMU_MODEL_SMMUV3",
    "COMPUTE_VIOMMU_MODEL_VIRTIO",
    "COMPUTE_VOLUME_ATTACH",
    "COMPUTE_VOLUME_ATTACH_WITH_TAG",
    "COMPUTE_VOLUME_EXTEND",
    "COMPUTE_VOLUME_MULTI_ATTACH",
    // CPU: x86
    "HW_CPU_HYPERTHREADING",
    "HW_CPU_X86_3DNOW",
    "HW_CPU_X86_ABM",
    "HW_CPU_X86_AESNI",
    "HW_CPU_X86_AMD_IBPB",
    "HW_CPU_X86_AMD_NO_SSB",
    "HW_CPU_X86_AMD_SEV",
    "HW_CPU_X86_AMD_SSBD",
    "HW_CPU_X86_AMD_SVM",
    "HW_CPU_X86_AMD_VIRT_SSBD",
    "HW_CPU_X86_AVX",
    "HW_CPU_X86_AVX2",
    "HW_CPU_X86_AVX512BW",
    "HW_CPU_X86_AVX512CD",
    "HW_CPU_X86_AVX512DQ",
    "HW_CPU_X86_AVX512ER",
    "HW_CPU_X86_AVX512F",
    "HW_CPU_X86_AVX512PF",
    "HW_CPU_X86_AVX512VL",
    "HW_CPU_X86_AVX512VNNI",
    "HW_CPU_X86_BMI",
    "HW_CPU_X86_BMI2",
    "HW_CPU_X86_CLMUL",
    "HW_CPU_X86_F16C",
    "HW_CPU_X86_FMA3",
    "HW_CPU_X86_FMA4",
    "HW_CPU_X86_INTEL_MD_CLEAR",
    "HW_CPU_X86_INTEL_PCID",
    "HW_CPU_X86_INTEL_SPEC_CTRL",
    "HW_CPU_X86_INTEL_SSBD",
    "HW_CPU_X86_INTEL_VMX",
    "HW_CPU_X86_MMX",
    "HW_CPU_X86_MPX",
    "HW_CPU_X86_PDPE1GB",
    "HW_CPU_X86_SGX",
    "HW_CPU_X86_SHA",
    "HW_CPU_X86_SSE",
    "HW_CPU_X86_SSE2",
    "HW_CPU_X86_SSE3",
    "HW_CPU_X86_SSE41",
    "HW_CPU_X86_SSE42",
    "HW_CPU_X86_SSE4A",
    "HW_CPU_X86_SSSE3",
    "HW_CPU_X86_SVM",
    "HW_CPU_X86_TBM",
    "HW_CPU_X86_VMX",
    "HW_CPU_X86_XOP",
    // CPU: other architectures
    "HW_CPU_AARCH64_AES",
    "HW_CPU_AARCH64_ASIMD",
    "HW_CPU_AARCH64_CRC32",
    "HW_CPU_AARCH64_FP",
    "HW_CPU_AARCH64_SHA1",
    "HW_CPU_AARCH64_SHA2",
    "HW_CPU_PPC64LE_POWER8",
    "HW_CPU_PPC64LE_POWER9",
    // GPU
    "HW_GPU_API_DIRECT2D",
    "HW_GPU_API_DIRECT3D_V10_0",
    "HW_GPU_API_DIRECT3D_V11_0",
    "HW_GPU_API_DIRECT3D_V12_0",
    "HW_GPU_API_OPENGL_V4_6",
    "HW_GPU_API_VULKAN",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V7_0",
    "HW_GPU_CUDA_SDK_V10_0",
    "HW_GPU_MAX_DISPLAY_HEADS_1",
    "HW_GPU_MAX_DISPLAY_HEADS_2",
    "HW_GPU_MAX_DISPLAY_HEADS_4",
    "HW_GPU_RESOLUTION_W1920H1080",
    "HW_GPU_RESOLUTION_W3840H2160",
    // NIC
    "HW_NIC_ACCEL_DEFLATE",
    "HW_NIC_ACCEL_DIFFIEH",
    "HW_NIC_ACCEL_IPSEC",
    "HW_NIC_ACCEL_RSA",
    "HW_NIC_ACCEL_SSL",
    "HW_NIC_ACCEL_TLS",
    "HW_NIC_DCB_ETS",
    "HW_NIC_DCB_PFC",
    "HW_NIC_DCB_QCN",
    "HW_NIC_MULTIQUEUE",
    "HW_NIC_OFFLOAD_FDF",
    "HW_NIC_OFFLOAD_GENEVE",
    "HW_NIC_OFFLOAD_GRO",
    "HW_NIC_OFFLOAD_GSO",
    "HW_NIC_OFFLOAD_L2TP",
    "HW_NIC_OFFLOAD_LRO",
    "HW_NIC_OFFLOAD_QINQ",
    "HW_NIC_OFFLOAD_RDMA",
    "HW_NIC_OFFLOAD_RX",
    "HW_NIC_OFFLOAD_RXHASH",
    "HW_NIC_OFFLOAD_RXVLAN",
    "HW_NIC_OFFLOAD_SG",
    "HW_NIC_OFFLOAD_SWITCHDEV",
    "HW_NIC_OFFLOAD_TSO",
    "HW_NIC_OFFLOAD_TX",
    "HW_NIC_OFFLOAD_TXUDP",
    "HW_NIC_OFFLOAD_TXVLAN",
    "HW_NIC_OFFLOAD_UCS",
    "HW_NIC_OFFLOAD_UFO",
    "HW_NIC_OFFLOAD_VXLAN",
    "HW_NIC_SRIOV",
    "HW_NIC_SRIOV_MULTIQUEUE",
    "HW_NIC_SRIOV_QOS_RX",
    "HW_NIC_SRIOV_QOS_TX",
    "HW_NIC_SRIOV_TRUSTED",
    "HW_NIC_VMDQ",
    // NUMA and accelerators
    "HW_NUMA_ROOT",
    "HW_ARCH_X86_64",
    "HW_ARCH_AARCH64",
    "HW_FPGA_CLASS_FUNCTION_ID",
    // storage
    "STORAGE_DISK_HDD",
    "STORAGE_DISK_SSD",
    // misc
    "MISC_SHARES_VIA_AGGREGATE",
    "OWNER_CYBORG",
    "OWNER_NOVA",
];

/// The trait marking providers that share their inventory with the trees in their aggregates.
pub const SHARES_VIA_AGGREGATE: &str = "MISC_SHARES_VIA_AGGREGATE";

/// Whether `name` is an os-resource-classes standard class.
pub fn is_standard_class(name: &str) -> bool {
    STANDARD_RESOURCE_CLASSES.contains(&name)
}

/// Whether `name` is a standard trait Strata knows.
pub fn is_standard_trait(name: &str) -> bool {
    STANDARD_TRAITS.contains(&name)
}

/// `CUSTOM_` followed by at least one of `A-Z0-9_`, at most 255 characters: the rule for
/// custom resource classes and traits.
pub fn valid_custom_name(name: &str) -> bool {
    name.len() <= 255
        && name
            .strip_prefix("CUSTOM_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(name_byte))
}

/// Characters of class, trait and consumer type names.
pub fn name_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// Whether `s` is a UUID in any of the spellings Placement's `uuid` format accepts (dashed or
/// 32 hex digits).
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && (s.len() == 36 || s.len() == 32)
}

/// The canonical dashed spelling of a UUID.
pub fn canonical_uuid(s: &str) -> String {
    uuid::Uuid::parse_str(s)
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// One resource class of a provider's inventory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inventory {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory {
            total: 0,
            reserved: 0,
            min_unit: 1,
            max_unit: MAX_INT,
            step_size: 1,
            allocation_ratio: 1.0,
        }
    }
}

/// Why an amount cannot be allocated from an inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationFault {
    /// Outside `min_unit..=max_unit` or not a multiple of `step_size`.
    Constraints,
    /// More than the capacity left.
    Capacity,
}

impl Inventory {
    /// `(total - reserved) * allocation_ratio`, truncated as Placement reports it.
    pub fn capacity(&self) -> i64 {
        ((self.total - self.reserved) as f64 * self.allocation_ratio) as i64
    }

    /// Whether `amount` more can be allocated when `used` is allocated already.
    pub fn check(&self, used: i64, amount: i64) -> Result<(), AllocationFault> {
        if amount < self.min_unit
            || amount > self.max_unit
            || self.step_size <= 0
            || amount % self.step_size != 0
        {
            return Err(AllocationFault::Constraints);
        }
        let capacity = (self.total - self.reserved) as f64 * self.allocation_ratio;
        if (used + amount) as f64 > capacity {
            return Err(AllocationFault::Capacity);
        }
        Ok(())
    }

    /// The JSON Placement shows for an inventory.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "total": self.total,
            "reserved": self.reserved,
            "min_unit": self.min_unit,
            "max_unit": self.max_unit,
            "step_size": self.step_size,
            "allocation_ratio": self.allocation_ratio,
        })
    }

    /// Placement's rule on a stored inventory: `reserved` below `total` (at most `total`
    /// from 1.26) and `min_unit <= max_unit`. The message names the class and provider.
    pub fn validate(
        &self,
        rc: &str,
        rp: &str,
        reserved_may_equal_total: bool,
    ) -> Result<(), String> {
        let bad_reserved = if reserved_may_equal_total {
            self.reserved > self.total
        } else {
            self.reserved >= self.total && self.total > 0
        };
        if bad_reserved {
            return Err(format!(
                "Unable to update inventory for resource provider {rp}: Invalid inventory for \
                 '{rc}' on resource provider '{rp}'. The reserved value is greater than {}total.",
                if reserved_may_equal_total {
                    ""
                } else {
                    "or equal to "
                }
            ));
        }
        if self.min_unit > self.max_unit {
            return Err(format!(
                "Unable to update inventory for resource provider {rp}: Invalid inventory for \
                 '{rc}' on resource provider '{rp}'. The min_unit value is greater than max_unit."
            ));
        }
        Ok(())
    }
}

/// A resource provider's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent_uuid: Option<String>,
    pub root_uuid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A consumer: whoever holds allocations (an instance, a migration, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub uuid: String,
    pub project_id: String,
    pub user_id: String,
    /// `None` for consumers written before 1.38 (reported as `unknown`).
    pub consumer_type: Option<String>,
    pub generation: i64,
}

/// Amounts per resource class.
pub type Resources = BTreeMap<String, i64>;

/// A consumer's whole set of allocations, as `PUT /allocations/{consumer}` replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claim {
    pub project_id: String,
    pub user_id: String,
    /// The consumer type (1.38); `None` keeps the consumer's current one.
    pub consumer_type: Option<String>,
    /// Per provider UUID, the amounts per resource class. Empty removes the allocations.
    pub allocations: BTreeMap<String, Resources>,
}

/// What the caller believes the consumer's generation is (1.28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGeneration {
    /// Before 1.28: no check.
    Unchecked,
    /// `null`: the consumer must not exist yet.
    New,
    /// The consumer must exist at this generation.
    Is(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(total: i64, reserved: i64, ratio: f64) -> Inventory {
        Inventory {
            total,
            reserved,
            allocation_ratio: ratio,
            ..Default::default()
        }
    }

    #[test]
    fn capacity_is_total_less_reserved_times_ratio() {
        assert_eq!(inv(16, 2, 1.0).capacity(), 14);
        assert_eq!(inv(16, 0, 16.0).capacity(), 256);
        assert_eq!(inv(10, 1, 1.5).capacity(), 13);
        assert_eq!(inv(4, 4, 2.0).capacity(), 0);
    }

    #[test]
    fn checks_capacity_with_used() {
        let i = inv(10, 2, 1.0);
        assert_eq!(i.check(0, 8), Ok(()));
        assert_eq!(i.check(7, 1), Ok(()));
        assert_eq!(i.check(7, 2), Err(AllocationFault::Capacity));
        assert_eq!(i.check(8, 1), Err(AllocationFault::Capacity));
        // A fractional capacity: 3 * 1.5 = 4.5, so 4 fit and 5 do not.
        let i = inv(3, 0, 1.5);
        assert_eq!(i.check(0, 4), Ok(()));
        assert_eq!(i.check(0, 5), Err(AllocationFault::Capacity));
    }

    #[test]
    fn checks_unit_constraints() {
        let i = Inventory {
            total: 100,
            min_unit: 2,
            max_unit: 10,
            step_size: 2,
            ..Default::default()
        };
        assert_eq!(i.check(0, 1), Err(AllocationFault::Constraints));
        assert_eq!(i.check(0, 3), Err(AllocationFault::Constraints));
        assert_eq!(i.check(0, 12), Err(AllocationFault::Constraints));
        assert_eq!(i.check(0, 10), Ok(()));
        assert_eq!(i.check(95, 6), Err(AllocationFault::Capacity));
    }

    #[test]
    fn validates_reserved_by_microversion() {
        let i = inv(4, 4, 1.0);
        assert!(i.validate("VCPU", "rp", false).is_err());
        assert!(i.validate("VCPU", "rp", true).is_ok());
        assert!(inv(4, 5, 1.0).validate("VCPU", "rp", true).is_err());
        let i = Inventory {
            total: 4,
            min_unit: 5,
            max_unit: 4,
            ..Default::default()
        };
        assert!(i.validate("VCPU", "rp", true).is_err());
    }

    #[test]
    fn custom_names() {
        assert!(valid_custom_name("CUSTOM_GOLD"));
        assert!(valid_custom_name("CUSTOM_A_1"));
        assert!(!valid_custom_name("CUSTOM_"));
        assert!(!valid_custom_name("CUSTOM_lower"));
        assert!(!valid_custom_name("GOLD"));
        assert!(!valid_custom_name(&format!("CUSTOM_{}", "A".repeat(250))));
        assert!(is_standard_class("VCPU") && !is_standard_class("CUSTOM_X"));
        assert!(is_standard_trait("HW_CPU_X86_AVX2"));
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("5a3d1a8e-9b6c-4d2f-8e1a-0b3c4d5e6f70"));
        assert!(is_uuid("5a3d1a8e9b6c4d2f8e1a0b3c4d5e6f70"));
        assert!(!is_uuid("not-a-uuid"));
        assert_eq!(
            canonical_uuid("5a3d1a8e9b6c4d2f8e1a0b3c4d5e6f70"),
            "5a3d1a8e-9b6c-4d2f-8e1a-0b3c4d5e6f70"
        );
    }
}
