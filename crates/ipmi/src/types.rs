//! The domain values both ends speak in: completion codes, privilege levels, chassis actions,
//! boot devices and the device identity. They carry no wire layout; `commands` encodes them.

use std::fmt;

/// An IPMI completion code (spec table 5-2), the first byte of every response.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Completion(pub u8);

impl Completion {
    pub const OK: Completion = Completion(0x00);
    /// 0x80: command-specific; for boot options "parameter not supported", for Set Session
    /// Privilege Level "requested level not available for this user".
    pub const PARAMETER_NOT_SUPPORTED: Completion = Completion(0x80);
    /// 0x81: Set Session Privilege Level "requested level exceeds the channel or user limit".
    pub const PRIVILEGE_EXCEEDS_LIMIT: Completion = Completion(0x81);
    /// 0x87: Close Session "invalid session ID".
    pub const INVALID_SESSION_ID: Completion = Completion(0x87);
    pub const NODE_BUSY: Completion = Completion(0xC0);
    pub const INVALID_COMMAND: Completion = Completion(0xC1);
    pub const REQUEST_DATA_LENGTH_INVALID: Completion = Completion(0xC7);
    pub const PARAMETER_OUT_OF_RANGE: Completion = Completion(0xC9);
    pub const INVALID_DATA_FIELD: Completion = Completion(0xCC);
    pub const INSUFFICIENT_PRIVILEGE: Completion = Completion(0xD4);
    pub const NOT_SUPPORTED_IN_PRESENT_STATE: Completion = Completion(0xD5);
    pub const UNSPECIFIED: Completion = Completion(0xFF);

    /// The generic meaning (table 5-2); command-specific codes (0x80–0xBE) print as such.
    pub fn description(self) -> &'static str {
        match self.0 {
            0x00 => "command completed normally",
            0x80..=0xBE => "command-specific error",
            0xC0 => "node busy",
            0xC1 => "invalid command",
            0xC2 => "command invalid for given LUN",
            0xC3 => "timeout while processing command",
            0xC4 => "out of space",
            0xC5 => "reservation cancelled or invalid",
            0xC6 => "request data truncated",
            0xC7 => "request data length invalid",
            0xC8 => "request data field length limit exceeded",
            0xC9 => "parameter out of range",
            0xCA => "cannot return number of requested data bytes",
            0xCB => "requested sensor, data or record not present",
            0xCC => "invalid data field in request",
            0xCD => "command illegal for specified sensor or record type",
            0xCE => "command response could not be provided",
            0xCF => "cannot execute duplicated request",
            0xD0 => "SDR repository in update mode",
            0xD1 => "device in firmware update mode",
            0xD2 => "BMC initialization in progress",
            0xD3 => "destination unavailable",
            0xD4 => "insufficient privilege level",
            0xD5 => "command not supported in present state",
            0xD6 => "command sub-function disabled or unavailable",
            _ => "unspecified error",
        }
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Completion(0x{:02X})", self.0)
    }
}

impl fmt::Display for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02X} ({})", self.0, self.description())
    }
}

/// A session privilege level (spec table 22-33 "Set Session Privilege Level").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    Callback = 1,
    User = 2,
    Operator = 3,
    Administrator = 4,
    Oem = 5,
}

impl Privilege {
    pub fn from_level(level: u8) -> Option<Privilege> {
        Some(match level {
            1 => Privilege::Callback,
            2 => Privilege::User,
            3 => Privilege::Operator,
            4 => Privilege::Administrator,
            5 => Privilege::Oem,
            _ => return None,
        })
    }

    pub fn level(self) -> u8 {
        self as u8
    }
}

/// Chassis Control (netfn Chassis, cmd 0x02) actions; the values are the request byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChassisAction {
    /// Hard power off, without telling the operating system.
    PowerDown = 0,
    PowerUp = 1,
    /// Power down, wait, power up.
    PowerCycle = 2,
    /// Hard reset, power stays on.
    HardReset = 3,
    /// A diagnostic interrupt (NMI).
    PulseDiag = 4,
    /// Soft shutdown through ACPI (an emulated over-temperature / power button event).
    SoftShutdown = 5,
}

impl ChassisAction {
    pub const ALL: [ChassisAction; 6] = [
        ChassisAction::PowerDown,
        ChassisAction::PowerUp,
        ChassisAction::PowerCycle,
        ChassisAction::HardReset,
        ChassisAction::PulseDiag,
        ChassisAction::SoftShutdown,
    ];

    pub fn from_code(code: u8) -> Option<ChassisAction> {
        Self::ALL.into_iter().find(|a| *a as u8 == code)
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The boot device selector of boot options parameter 5, data byte 2 bits 5:2
/// (spec table 28-14). `selector()` is the 4-bit value, not shifted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BootSource {
    /// No override: boot as the BIOS is configured.
    NoOverride,
    Pxe,
    /// The default hard drive.
    Disk,
    /// The default hard drive, in safe mode.
    Safe,
    /// The diagnostic partition.
    Diag,
    /// The default CD/DVD.
    Cdrom,
    /// Enter BIOS setup.
    Bios,
    /// Any other selector (remote media, floppy/USB, ...), as the 4-bit value.
    Other(u8),
}

impl BootSource {
    pub fn selector(self) -> u8 {
        match self {
            BootSource::NoOverride => 0x0,
            BootSource::Pxe => 0x1,
            BootSource::Disk => 0x2,
            BootSource::Safe => 0x3,
            BootSource::Diag => 0x4,
            BootSource::Cdrom => 0x5,
            BootSource::Bios => 0x6,
            BootSource::Other(v) => v & 0x0F,
        }
    }

    pub fn from_selector(selector: u8) -> BootSource {
        match selector & 0x0F {
            0x0 => BootSource::NoOverride,
            0x1 => BootSource::Pxe,
            0x2 => BootSource::Disk,
            0x3 => BootSource::Safe,
            0x4 => BootSource::Diag,
            0x5 => BootSource::Cdrom,
            0x6 => BootSource::Bios,
            v => BootSource::Other(v),
        }
    }
}

/// The boot device override of boot options parameter 5 ("boot flags").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BootDevice {
    pub device: BootSource,
    /// Applies to all future boots, not only the next one.
    pub persistent: bool,
    /// Boot in UEFI mode rather than legacy (PC compatible).
    pub efi: bool,
}

impl BootDevice {
    /// The next boot only, legacy mode.
    pub fn once(device: BootSource) -> BootDevice {
        BootDevice {
            device,
            persistent: false,
            efi: false,
        }
    }
}

impl Default for BootDevice {
    fn default() -> Self {
        BootDevice::once(BootSource::NoOverride)
    }
}

/// What Get Device ID (App 0x01) reports (spec table 20-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceId {
    pub device_id: u8,
    pub device_revision: u8,
    /// Bits 6:0; bit 7 of the wire byte is "device update in progress".
    pub firmware_major: u8,
    /// Binary-coded decimal, as on the wire (0x05 is ".05").
    pub firmware_minor: u8,
    /// Binary-coded decimal, minor in bits 7:4 (0x02 is 2.0, 0x51 is 1.5).
    pub ipmi_version: u8,
    pub additional_device_support: u8,
    /// The 20-bit IANA enterprise number of the manufacturer.
    pub manufacturer_id: u32,
    pub product_id: u16,
}

impl Default for DeviceId {
    /// What Strata's simulated BMCs report: IPMI 2.0, firmware 1.00, chassis device.
    fn default() -> Self {
        DeviceId {
            device_id: 0x20,
            device_revision: 0x01,
            firmware_major: 1,
            firmware_minor: 0x00,
            ipmi_version: 0x02,
            // Chassis device (bit 7), IPMB event receiver is not claimed.
            additional_device_support: 0x80,
            manufacturer_id: 0,
            product_id: 0,
        }
    }
}
