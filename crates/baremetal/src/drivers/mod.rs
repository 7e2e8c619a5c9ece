//! BMC drivers: how the conductor reaches a node's baseboard management controller.
//!
//! [`BmcDriver`] is the seam. Three hardware types implement it:
//! - `redfish` ([`redfish::RedfishDriver`]): DMTF Redfish over HTTPS with sessions, the real
//!   protocol of modern BMCs (and of `strata sim`'s hosts, so tests drive this very code);
//! - `ipmi` ([`ipmi::IpmiDriver`]): IPMI 2.0 lanplus through `strata_ipmi`, natively (no
//!   `ipmitool` fork per command; docs/baremetal-ipmi.md says why);
//! - `fake-hardware` ([`fake::FakeDriver`]): in memory and instant, with fault knobs, beside
//!   the real ones as a test double (Ironic has the same hardware type).
//!
//! Drivers are built per node from `driver_info` by [`Drivers::for_node`] and cached while the
//! node's `driver_info` stays the same, so a Redfish session or an IPMI session outlives one
//! call (the power sync reads every node's power every interval). Errors are typed
//! ([`BmcError`]) so the conductor tells a failure worth retrying (unreachable, a BMC fault)
//! from one that is not (wrong credentials, a bad address, a refused certificate).
//!
//! The deploy work to come adds virtual media (`insert_media`/`eject_media`, Redfish's
//! `VirtualMedia.InsertMedia`) to this trait for `redfish-virtualmedia`; nothing here needs to
//! change shape for it.

pub mod fake;
pub mod ipmi;
pub mod redfish;

use crate::model::Node;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A power state a BMC reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
}

impl Power {
    /// Ironic's name (`power on` / `power off`).
    pub fn ironic(self) -> &'static str {
        match self {
            Power::On => crate::states::power::ON,
            Power::Off => crate::states::power::OFF,
        }
    }
}

/// A power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    On,
    Off,
    Reboot,
    SoftOff,
    SoftReboot,
}

impl PowerAction {
    /// The action an API target names (`power on`, `rebooting`, …).
    pub fn from_target(t: &str) -> Option<PowerAction> {
        use crate::states::power::*;
        Some(match t {
            ON => PowerAction::On,
            OFF => PowerAction::Off,
            REBOOT => PowerAction::Reboot,
            SOFT_OFF => PowerAction::SoftOff,
            SOFT_REBOOT => PowerAction::SoftReboot,
            _ => return None,
        })
    }
}

/// A boot device, as Ironic names them (`ironic.common.boot_devices`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    Pxe,
    Disk,
    Cdrom,
    Bios,
    Safe,
    UefiHttp,
}

impl BootDevice {
    pub fn name(self) -> &'static str {
        match self {
            BootDevice::Pxe => "pxe",
            BootDevice::Disk => "disk",
            BootDevice::Cdrom => "cdrom",
            BootDevice::Bios => "bios",
            BootDevice::Safe => "safe",
            BootDevice::UefiHttp => "uefi-http",
        }
    }
    pub fn parse(s: &str) -> Option<BootDevice> {
        [
            BootDevice::Pxe,
            BootDevice::Disk,
            BootDevice::Cdrom,
            BootDevice::Bios,
            BootDevice::Safe,
            BootDevice::UefiHttp,
        ]
        .into_iter()
        .find(|d| d.name() == s)
    }
}

/// The boot device override a BMC reports: `None` fields when it does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootSetting {
    pub device: Option<BootDevice>,
    pub persistent: Option<bool>,
}

/// Why a BMC operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BmcError {
    /// `driver_info` is missing something or holds a bad value (never retried).
    #[error("{0}")]
    InvalidDriverInfo(String),
    /// The BMC refused the credentials (never retried).
    #[error("{0}")]
    Auth(String),
    /// The TLS handshake failed: the BMC's certificate is not trusted (never retried).
    #[error("{0}")]
    Tls(String),
    /// Nothing answered, or not in time (retried).
    #[error("{0}")]
    Unreachable(String),
    /// The BMC answered with a failure of its own (retried).
    #[error("{0}")]
    Fault(String),
    /// The BMC refused the request as invalid, or answered something we cannot use (never
    /// retried).
    #[error("{0}")]
    Refused(String),
    /// The operation is not something this driver or BMC can do.
    #[error("{0}")]
    Unsupported(String),
}

impl BmcError {
    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, BmcError::Unreachable(_) | BmcError::Fault(_))
    }
}

pub type BmcResult<T> = Result<T, BmcError>;

/// A node's BMC, as the conductor drives it. Methods are `&self` and may be called
/// concurrently; drivers serialise what their protocol needs serialised.
pub trait BmcDriver: Send + Sync {
    /// Checks `driver_info` without talking to the BMC. Pure and idempotent.
    fn validate(&self) -> BmcResult<()>;

    /// The power state the BMC reports. Read-only, idempotent.
    fn power_state(&self) -> BoxFuture<'_, BmcResult<Power>>;

    /// Asks the BMC for a power action and returns once the BMC accepted it (the power state
    /// may settle later; the conductor polls [`BmcDriver::power_state`]). `On` when on and
    /// `Off`/`SoftOff` when off are idempotent (accepted, nothing changes); `Reboot` of a node
    /// that is off powers it on (Ironic's behaviour); `Reboot` and `SoftReboot` of a running
    /// node are not idempotent — each call restarts it — which is why the conductor records
    /// that the BMC accepted one before it does anything else.
    fn set_power(&self, action: PowerAction) -> BoxFuture<'_, BmcResult<()>>;

    /// Sets the boot device for the next boot, or for every boot when `persistent`. Idempotent:
    /// last write wins.
    fn set_boot_device(&self, device: BootDevice, persistent: bool)
        -> BoxFuture<'_, BmcResult<()>>;

    /// The boot device override in force. Read-only, idempotent.
    fn boot_device(&self) -> BoxFuture<'_, BmcResult<BootSetting>>;

    /// The devices [`BmcDriver::set_boot_device`] accepts.
    fn supported_boot_devices(&self) -> Vec<BootDevice>;
}

/// A hardware type: its name, its interfaces (the default first) and the `driver_info` keys it
/// reads (for `/v1/drivers/{name}/properties`).
pub struct HardwareType {
    pub name: &'static str,
    /// `(interface kind, [implementations; the first is the default])`.
    pub interfaces: &'static [(&'static str, &'static [&'static str])],
    pub properties: &'static [(&'static str, &'static str)],
}

impl HardwareType {
    /// The implementations of `kind` this hardware type supports (the default first).
    pub fn implementations(&self, kind: &str) -> &'static [&'static str] {
        self.interfaces
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| *v)
            .unwrap_or(&[])
    }
}

/// The hardware types this conductor serves.
pub const HARDWARE_TYPES: &[HardwareType] = &[
    HardwareType {
        name: "fake-hardware",
        interfaces: &[
            ("bios", &["no-bios", "fake"]),
            ("boot", &["fake"]),
            ("console", &["no-console", "fake"]),
            ("deploy", &["fake"]),
            ("firmware", &["no-firmware", "fake"]),
            ("inspect", &["no-inspect", "fake"]),
            ("management", &["fake"]),
            ("network", &["noop"]),
            ("power", &["fake"]),
            ("raid", &["no-raid", "fake"]),
            ("rescue", &["no-rescue", "fake"]),
            ("storage", &["noop"]),
            ("vendor", &["no-vendor", "fake"]),
        ],
        properties: &[],
    },
    HardwareType {
        name: "ipmi",
        interfaces: &[
            ("bios", &["no-bios"]),
            ("boot", &["ipxe", "pxe"]),
            ("console", &["no-console"]),
            ("deploy", &["direct"]),
            ("firmware", &["no-firmware"]),
            ("inspect", &["no-inspect"]),
            ("management", &["ipmitool"]),
            ("network", &["noop"]),
            ("power", &["ipmitool"]),
            ("raid", &["no-raid"]),
            ("rescue", &["no-rescue"]),
            ("storage", &["noop"]),
            ("vendor", &["no-vendor"]),
        ],
        properties: ipmi::PROPERTIES,
    },
    HardwareType {
        name: "redfish",
        interfaces: &[
            ("bios", &["no-bios"]),
            ("boot", &["ipxe", "pxe", "redfish-virtual-media"]),
            ("console", &["no-console"]),
            ("deploy", &["direct"]),
            ("firmware", &["no-firmware"]),
            ("inspect", &["no-inspect"]),
            ("management", &["redfish"]),
            ("network", &["noop"]),
            ("power", &["redfish"]),
            ("raid", &["no-raid"]),
            ("rescue", &["no-rescue"]),
            ("storage", &["noop"]),
            ("vendor", &["no-vendor"]),
        ],
        properties: redfish::PROPERTIES,
    },
];

/// The hardware type called `name`.
pub fn hardware_type(name: &str) -> Option<&'static HardwareType> {
    HARDWARE_TYPES.iter().find(|h| h.name == name)
}

/// Timing every driver shares.
#[derive(Debug, Clone, Copy)]
pub struct DriverOptions {
    /// One request to a BMC, connect included.
    pub request_timeout: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A node's driver and the fingerprint of the `driver_info` it was built from.
type Cached = (String, Arc<dyn BmcDriver>);

/// Builds and caches each node's driver.
pub struct Drivers {
    opts: DriverOptions,
    fake: Arc<fake::FakeHardware>,
    http: redfish::HttpClients,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Drivers {
    pub fn new(opts: DriverOptions) -> Drivers {
        Drivers {
            opts,
            fake: Arc::new(fake::FakeHardware::default()),
            http: redfish::HttpClients::new(opts.request_timeout),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The in-memory machines behind `fake-hardware` nodes, for their fault knobs.
    pub fn fake(&self) -> &Arc<fake::FakeHardware> {
        &self.fake
    }

    /// The driver of `node`, reused while its driver and `driver_info` stay the same. Fails
    /// when the hardware type is unknown or `driver_info` cannot make a driver.
    pub fn for_node(&self, node: &Node) -> BmcResult<Arc<dyn BmcDriver>> {
        let key = fingerprint(&node.driver, &node.driver_info);
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((k, d)) = cache.get(&node.uuid) {
                if *k == key {
                    return Ok(d.clone());
                }
            }
        }
        let driver = self.build(node)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(node.uuid.clone(), (key, driver.clone()));
        Ok(driver)
    }

    fn build(&self, node: &Node) -> BmcResult<Arc<dyn BmcDriver>> {
        Ok(match node.driver.as_str() {
            "redfish" => Arc::new(redfish::RedfishDriver::new(
                &node.uuid,
                &node.driver_info,
                &self.http,
            )?),
            "ipmi" => Arc::new(ipmi::IpmiDriver::new(
                &node.uuid,
                &node.driver_info,
                self.opts,
            )?),
            "fake-hardware" => Arc::new(fake::FakeDriver::new(&node.uuid, self.fake.clone())),
            other => {
                return Err(BmcError::InvalidDriverInfo(format!(
                    "Could not find the following driver(s) or hardware type(s): {other}."
                )))
            }
        })
    }

    /// Forgets a deleted node's driver (and with it its BMC session).
    pub fn forget(&self, uuid: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uuid);
    }
}

fn fingerprint(driver: &str, info: &Map<String, Value>) -> String {
    format!("{driver}\n{}", Value::Object(info.clone()))
}

/// A string `driver_info` value (numbers are accepted and shown as text, as Ironic's drivers
/// do with `str()`).
pub(crate) fn info_str(info: &Map<String, Value>, key: &str) -> Option<String> {
    match info.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
