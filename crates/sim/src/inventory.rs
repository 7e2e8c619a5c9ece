//! A simulated host's hardware: what its BMC reports over Redfish and what an in-band
//! inspection will later report, so the two can be compared field by field.
//!
//! Generation is deterministic in `(fleet seed, host index)`: the same fleet options always
//! describe the same machines (UUIDs, serial numbers, MACs), across restarts and machines, so
//! a test can name a host's MAC before the fleet starts and a controller's database stays
//! valid when `strata sim` is restarted on the same data dir.

use serde::{Deserialize, Serialize};

use crate::fleet::FleetOptions;

/// A host's hardware inventory. Field names follow Metal3's `HardwareData` where it has one
/// (`systemVendor`, `cpu`, `ramMebibytes`, `nics`, `storage`), in Rust's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub system: SystemVendor,
    pub firmware: Firmware,
    pub cpu: Cpu,
    /// Installed memory in MiB.
    pub ram_mib: u64,
    /// Network interfaces; the first is the boot (PXE) interface.
    pub nics: Vec<Nic>,
    /// Local disks; the first is the root device (`/dev/sda`), backed by the host's disk file.
    pub disks: Vec<Disk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemVendor {
    pub manufacturer: String,
    /// The product name (Redfish `Model`).
    pub model: String,
    pub serial_number: String,
    /// The system UUID (SMBIOS), lower-case hyphenated; also the Redfish `Systems/{id}`.
    pub uuid: String,
}

/// The system firmware (Metal3 `firmware.bios`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firmware {
    pub vendor: String,
    pub version: String,
    /// Release date, `MM/DD/YYYY` as SMBIOS spells it.
    pub date: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Logical CPUs (threads) over all sockets: what an OS counts, and Ironic's `cpus`.
    pub count: u32,
    /// Populated sockets; `count` is split evenly between them.
    pub sockets: u32,
    pub model: String,
    /// `x86_64`.
    pub arch: String,
    pub clock_mhz: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    /// The kernel's name for it (`eno1`, …).
    pub name: String,
    /// Lower-case, colon-separated; unicast and locally administered.
    pub mac: String,
    pub link_up: bool,
    pub speed_mbps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// The device path (`/dev/sda`, …).
    pub name: String,
    pub size_bytes: u64,
    pub serial_number: String,
    pub model: String,
    pub vendor: String,
    /// `false` for the SSD root disk, `true` for the spinning data disks after it.
    pub rotational: bool,
}

const GIB: u64 = 1 << 30;

impl Inventory {
    /// The inventory of host `index` of a fleet made with `opts`: the same arguments always
    /// give the same inventory.
    pub fn generate(index: u32, opts: &FleetOptions) -> Inventory {
        // Hash (seed, index) into the start state: consecutive raw states would make one
        // host's stream a shifted copy of its neighbour's.
        let key = SplitMix64::new(opts.seed).next()
            ^ SplitMix64::new(u64::from(index).wrapping_mul(0xd1b5_4a32_d192_ed03)).next();
        let mut rng = SplitMix64::new(key);
        let mut uuid_bytes = [0u8; 16];
        uuid_bytes[..8].copy_from_slice(&rng.next().to_be_bytes());
        uuid_bytes[8..].copy_from_slice(&rng.next().to_be_bytes());
        let uuid = uuid::Builder::from_random_bytes(uuid_bytes).into_uuid();
        let serial = format!("SIM{:010X}", rng.next() & 0xff_ffff_ffff);

        let cpus = opts.cpus.max(1);
        let sockets = if cpus >= 8 && cpus.is_multiple_of(2) {
            2
        } else {
            1
        };
        let nics = (0..opts.nics.max(1))
            .map(|n| Nic {
                name: format!("eno{}", n + 1),
                mac: mac_address(opts.seed, index, n),
                // Every other NIC after the first two is cabled to nothing.
                link_up: n < 2 || n % 2 == 0,
                speed_mbps: if n == 0 { 10_000 } else { 1_000 },
            })
            .collect();
        let disks = (0..opts.disks.max(1))
            .map(|d| {
                let rotational = d > 0;
                let kind = if rotational { "HD" } else { "SS" };
                Disk {
                    name: format!("/dev/sd{}", (b'a' + (d % 26) as u8) as char),
                    size_bytes: opts.disk_gib.max(1) * GIB,
                    serial_number: format!("{kind}{:08X}", rng.next() as u32),
                    model: if rotational {
                        "SimHDD 7200"
                    } else {
                        "SimSSD 1000"
                    }
                    .to_string(),
                    vendor: "Strata".to_string(),
                    rotational,
                }
            })
            .collect();
        Inventory {
            system: SystemVendor {
                manufacturer: "Strata".to_string(),
                model: "SimServer S1".to_string(),
                serial_number: serial,
                uuid: uuid.to_string(),
            },
            firmware: Firmware {
                vendor: "Strata".to_string(),
                version: "1.4.2".to_string(),
                date: "03/14/2025".to_string(),
            },
            cpu: Cpu {
                count: cpus,
                sockets,
                model: "Strata SimCPU @ 2.40GHz".to_string(),
                arch: "x86_64".to_string(),
                clock_mhz: 2400,
            },
            ram_mib: opts.ram_mib.max(1),
            nics,
            disks,
        }
    }

    /// The MAC of the boot (PXE) interface: the first NIC's.
    pub fn boot_mac(&self) -> &str {
        &self.nics[0].mac
    }
}

/// `02:ss:ss:ii:ii:nn`: locally administered (bit 1 of the first octet), unicast (bit 0
/// clear), two octets from the fleet seed, the host index (16 bits) and the NIC number, so
/// MACs are unique within a fleet of up to 65,536 hosts with up to 256 NICs each, and fleets
/// with other seeds use other ranges.
fn mac_address(seed: u64, index: u32, nic: u32) -> String {
    let s = SplitMix64::new(seed).next();
    let octets = [
        0x02,
        (s >> 8) as u8,
        s as u8,
        (index >> 8) as u8,
        index as u8,
        nic as u8,
    ];
    octets
        .iter()
        .map(|o| format!("{o:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64: a tiny, well-mixed deterministic generator (no cryptographic claims), enough
/// to make serial numbers and UUIDs look unrelated from one host to the next.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generation_is_deterministic_and_hosts_differ() {
        let opts = FleetOptions::default();
        let a = Inventory::generate(3, &opts);
        assert_eq!(a, Inventory::generate(3, &opts));
        let b = Inventory::generate(4, &opts);
        assert_ne!(a.system.uuid, b.system.uuid);
        assert_ne!(a.system.serial_number, b.system.serial_number);
        let other_seed = FleetOptions {
            seed: 7,
            ..FleetOptions::default()
        };
        assert_ne!(
            a.system.uuid,
            Inventory::generate(3, &other_seed).system.uuid
        );
        assert_ne!(
            a.nics[0].mac,
            Inventory::generate(3, &other_seed).nics[0].mac
        );
    }

    #[test]
    fn hosts_share_no_generated_bits() {
        let opts = FleetOptions::default();
        let mut halves = HashSet::new();
        for i in 0..500 {
            let inv = Inventory::generate(i, &opts);
            let hex = inv.system.uuid.replace('-', "");
            assert!(
                halves.insert(hex[..16].to_string()),
                "host {i}: {}",
                inv.system.uuid
            );
            assert!(
                halves.insert(hex[16..].to_string()),
                "host {i}: {}",
                inv.system.uuid
            );
            assert!(halves.insert(inv.system.serial_number.clone()));
        }
    }

    #[test]
    fn macs_are_unique_unicast_and_locally_administered() {
        let opts = FleetOptions {
            nics: 4,
            ..FleetOptions::default()
        };
        let mut seen = HashSet::new();
        for i in 0..300 {
            for nic in Inventory::generate(i, &opts).nics {
                let first = u8::from_str_radix(&nic.mac[..2], 16).unwrap();
                assert_eq!(first & 0b11, 0b10, "{}", nic.mac);
                assert!(seen.insert(nic.mac.clone()), "duplicate MAC {}", nic.mac);
            }
        }
    }

    #[test]
    fn options_shape_the_hardware() {
        let opts = FleetOptions {
            cpus: 16,
            ram_mib: 65536,
            disk_gib: 20,
            disks: 3,
            nics: 3,
            ..FleetOptions::default()
        };
        let inv = Inventory::generate(0, &opts);
        assert_eq!((inv.cpu.count, inv.cpu.sockets), (16, 2));
        assert_eq!(inv.ram_mib, 65536);
        assert_eq!(inv.nics.len(), 3);
        let names: Vec<_> = inv.disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["/dev/sda", "/dev/sdb", "/dev/sdc"]);
        assert!(inv.disks.iter().all(|d| d.size_bytes == 20 * GIB));
        assert!(!inv.disks[0].rotational && inv.disks[1].rotational);
        assert_eq!(inv.boot_mac(), inv.nics[0].mac);
        uuid::Uuid::parse_str(&inv.system.uuid).unwrap();
    }
}
