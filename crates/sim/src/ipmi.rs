//! A simulated host's second BMC interface: IPMI 2.0 over LAN (RMCP+, "lanplus") on a UDP port
//! of its own, served by `strata-ipmi`'s [`IpmiServer`] with the host behind its
//! [`BmcBackend`] trait.
//!
//! Real BMCs speak both protocols about one machine, so this is a second *view* of the same
//! [`SimHost`], not a second machine: chassis control goes through the host's reset path (the
//! same power delay, the same `fail_power_actions` fault, the same boot on power-on through the
//! [`BootHandler`](crate::BootHandler) seam), and the boot device is the Redfish boot override:
//!
//! | IPMI boot flags | Redfish `Boot` |
//! | --- | --- |
//! | device pxe / disk (and safe) / cdrom / bios | `BootSourceOverrideTarget` `Pxe` / `Hdd` / `Cd` / `BiosSetup` |
//! | no override | `BootSourceOverrideEnabled` `Disabled` (target `None`) |
//! | persistent bit | `Continuous`, else `Once` |
//! | EFI bit | `BootSourceOverrideMode` `UEFI`, else `Legacy` |
//!
//! Read back, `UefiHttp` shows as pxe (IPMI has no selector for HTTP boot). Diagnostic
//! partition, floppy and remote-media selectors have no Redfish counterpart here and are
//! refused with 0xCC.
//!
//! Faults apply as on the Redfish side: `unreachable` drops every datagram, a `password`
//! fault is the IPMI password too (and ends IPMI sessions opened with the old one), and
//! `fail_power_actions` answers 0xFF ("unspecified error", the IPMI counterpart of the
//! Redfish 500) with the power unchanged. One difference is IPMI's own: power cycle and hard
//! reset of a host that is off answer 0xD5 ("not supported in present state") and leave it
//! off, as the specification recommends (§28.3) and BMCs such as iDRAC do, where Redfish's
//! restarts power it on.

use std::net::SocketAddr;
use std::sync::Arc;

use strata_ipmi::{
    BmcBackend, BootDevice, BootSource, ChassisAction, Completion, Credentials, IpmiServer,
    ServerOptions,
};

use crate::error::SimError;
use crate::host::{BootEnabled, BootMode, BootTarget, PowerError, PowerState, ResetType};
use crate::host::{SimHost, SimHostHandle};

/// A simulated host as an IPMI server's machine.
pub(crate) struct HostBmc(pub SimHostHandle);

impl BmcBackend for HostBmc {
    /// The landed power state (as Redfish reports it without the transitional-states fault).
    fn power_state(&self) -> bool {
        self.0.power() == PowerState::On
    }

    /// Through [`SimHost::reset`]'s path, so idempotent exactly as there: power up when on (or
    /// heading on) and power down/soft when off change nothing; diag (an NMI) changes nothing.
    fn chassis_control(&self, action: ChassisAction) -> Result<(), Completion> {
        let (kind, reason, only_if_on) = match action {
            ChassisAction::PowerUp => (ResetType::On, "ipmi on", false),
            ChassisAction::PowerDown => (ResetType::ForceOff, "ipmi off", false),
            ChassisAction::SoftShutdown => (ResetType::GracefulShutdown, "ipmi soft", false),
            ChassisAction::PowerCycle => (ResetType::PowerCycle, "ipmi cycle", true),
            ChassisAction::HardReset => (ResetType::ForceRestart, "ipmi reset", true),
            ChassisAction::PulseDiag => (ResetType::Nmi, "ipmi diag", false),
        };
        self.0
            .reset_as(kind, reason, only_if_on)
            .map_err(|e| match e {
                PowerError::Injected => Completion::UNSPECIFIED,
                PowerError::Off => Completion::NOT_SUPPORTED_IN_PRESENT_STATE,
            })
    }

    fn boot_device(&self) -> BootDevice {
        boot_device_of(&self.0)
    }

    /// Sets the Redfish boot override (last write wins).
    fn set_boot_device(&self, device: BootDevice) -> Result<(), Completion> {
        let mode = if device.efi {
            BootMode::UEFI
        } else {
            BootMode::Legacy
        };
        let enabled = if device.persistent {
            BootEnabled::Continuous
        } else {
            BootEnabled::Once
        };
        let target = match device.device {
            // "No override": the mode is the override's, so it is left as it was.
            BootSource::NoOverride => {
                self.0
                    .set_boot_override(Some(BootTarget::None), Some(BootEnabled::Disabled), None);
                return Ok(());
            }
            BootSource::Pxe => BootTarget::Pxe,
            BootSource::Disk | BootSource::Safe => BootTarget::Hdd,
            BootSource::Cdrom => BootTarget::Cd,
            BootSource::Bios => BootTarget::BiosSetup,
            BootSource::Diag | BootSource::Other(_) => return Err(Completion::INVALID_DATA_FIELD),
        };
        self.0
            .set_boot_override(Some(target), Some(enabled), Some(mode));
        Ok(())
    }

    fn password(&self) -> Option<String> {
        Some(self.0.password())
    }

    fn reachable(&self) -> bool {
        !self.0.unreachable()
    }
}

/// The host's boot override as IPMI boot flags.
fn boot_device_of(host: &SimHost) -> BootDevice {
    let boot = host.boot_override();
    let efi = boot.mode == BootMode::UEFI;
    let device = match (boot.enabled, boot.target) {
        (BootEnabled::Disabled, _) | (_, BootTarget::None) => BootSource::NoOverride,
        (_, BootTarget::Pxe | BootTarget::UefiHttp) => BootSource::Pxe,
        (_, BootTarget::Hdd) => BootSource::Disk,
        (_, BootTarget::Cd) => BootSource::Cdrom,
        (_, BootTarget::BiosSetup) => BootSource::Bios,
    };
    BootDevice {
        device,
        persistent: device != BootSource::NoOverride && boot.enabled == BootEnabled::Continuous,
        efi,
    }
}

/// Serves IPMI for `host` on `addr`. `credentials` are the fleet's; the password in force is
/// the host's ([`BmcBackend::password`]), so a password fault applies at once.
pub(crate) async fn serve(
    host: &SimHostHandle,
    addr: SocketAddr,
    credentials: Credentials,
) -> Result<IpmiServer, SimError> {
    let options = ServerOptions {
        // The system GUID RAKP 2 carries: the host's UUID, as on real servers.
        guid: uuid::Uuid::parse_str(host.uuid())
            .map(|u| *u.as_bytes())
            .unwrap_or_else(|_| ServerOptions::default().guid),
        ..ServerOptions::default()
    };
    IpmiServer::bind_with(addr, credentials, Arc::new(HostBmc(host.clone())), options)
        .await
        .map_err(|source| SimError::Ipmi { addr, source })
}
