//! `FakeBmc`: an in-memory machine behind an `IpmiServer`, compiled always (not only for
//! tests) so that the hardware simulator can wrap it. Its fault knobs are plain public fields
//! of its state, set through `state()`.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::server::BmcBackend;
use crate::types::{BootDevice, ChassisAction, Completion, DeviceId};

/// The fake machine's state and fault knobs.
#[derive(Clone, Debug)]
pub struct FakeBmcState {
    /// Whether the machine is on (as last settled: see `power_delay`).
    pub powered_on: bool,
    pub boot: BootDevice,
    pub device_id: DeviceId,
    /// Fault knob: every chassis control action fails with this completion code (0xD5 "not
    /// supported in present state", 0xC0 "node busy" and 0xFF "unspecified" are what real
    /// BMCs answer) and changes nothing.
    pub fail_power_actions: Option<Completion>,
    /// Fault knob: Set System Boot Options fails with this completion code.
    pub fail_boot_device: Option<Completion>,
    /// Fault knob: power changes land this long after the command that asked for them (the
    /// command itself answers at once, as real BMCs do); until then the old state is reported.
    pub power_delay: Duration,
    /// Fault knob: the BMC answers nothing (every datagram is dropped).
    pub unreachable: bool,
    /// Fault knob: the password in force, replacing the server's (`None`: the server's).
    /// Sessions opened with another password end.
    pub password: Option<String>,
    /// Every chassis control action accepted, in order (for tests' assertions).
    pub actions: Vec<ChassisAction>,
    /// How many times the machine was started: power up from off, cycle, hard reset.
    pub boots: u64,
    /// A power change in flight: when it lands and the power state it lands on.
    pending: Option<(Instant, bool)>,
}

impl FakeBmcState {
    fn settle(&mut self) {
        if let Some((at, on)) = self.pending {
            if Instant::now() >= at {
                self.powered_on = on;
                self.pending = None;
            }
        }
    }

    /// The power state the machine is on, or heading to.
    fn target(&self) -> bool {
        self.pending.map_or(self.powered_on, |(_, on)| on)
    }

    fn change_power(&mut self, on: bool) {
        if self.power_delay.is_zero() {
            self.powered_on = on;
            self.pending = None;
        } else {
            self.pending = Some((Instant::now() + self.power_delay, on));
        }
    }
}

/// An in-memory BMC backend: power, boot device, device identity, with fault knobs.
#[derive(Debug)]
pub struct FakeBmc {
    state: Mutex<FakeBmcState>,
}

impl Default for FakeBmc {
    fn default() -> Self {
        FakeBmc::new(false)
    }
}

impl FakeBmc {
    pub fn new(powered_on: bool) -> FakeBmc {
        FakeBmc {
            state: Mutex::new(FakeBmcState {
                powered_on,
                boot: BootDevice::default(),
                device_id: DeviceId::default(),
                fail_power_actions: None,
                fail_boot_device: None,
                power_delay: Duration::ZERO,
                unreachable: false,
                password: None,
                actions: Vec::new(),
                boots: 0,
                pending: None,
            }),
        }
    }

    /// The state, locked: read it, or set fault knobs (`bmc.state().power_delay = ...`).
    /// Pending power changes that are due are applied first.
    pub fn state(&self) -> MutexGuard<'_, FakeBmcState> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.settle();
        state
    }

    /// A copy of the state, for assertions.
    pub fn snapshot(&self) -> FakeBmcState {
        self.state().clone()
    }
}

impl BmcBackend for FakeBmc {
    fn power_state(&self) -> bool {
        self.state().powered_on
    }

    /// Power up and down are idempotent (up when on, down or soft when off succeed and change
    /// nothing); cycle and hard reset need the power on (0xD5 otherwise, as many BMCs answer);
    /// pulse diag only records itself. Decisions use the state the machine is heading to, so a
    /// second "power up" during `power_delay` is still a no-op.
    fn chassis_control(&self, action: ChassisAction) -> Result<(), Completion> {
        let mut s = self.state();
        if let Some(code) = s.fail_power_actions {
            return Err(code);
        }
        let on = s.target();
        match action {
            ChassisAction::PowerUp => {
                if !on {
                    s.boots += 1;
                    s.change_power(true);
                }
            }
            ChassisAction::PowerDown | ChassisAction::SoftShutdown => {
                if on {
                    s.change_power(false);
                }
            }
            ChassisAction::PowerCycle | ChassisAction::HardReset => {
                if !on {
                    return Err(Completion::NOT_SUPPORTED_IN_PRESENT_STATE);
                }
                s.boots += 1;
            }
            ChassisAction::PulseDiag => {}
        }
        s.actions.push(action);
        Ok(())
    }

    fn boot_device(&self) -> BootDevice {
        self.state().boot
    }

    fn set_boot_device(&self, device: BootDevice) -> Result<(), Completion> {
        let mut s = self.state();
        if let Some(code) = s.fail_boot_device {
            return Err(code);
        }
        s.boot = device;
        Ok(())
    }

    fn device_id(&self) -> DeviceId {
        self.state().device_id
    }

    fn password(&self) -> Option<String> {
        self.state().password.clone()
    }

    fn reachable(&self) -> bool {
        !self.state().unreachable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BootSource;

    #[test]
    fn power_actions_and_idempotency() {
        let bmc = FakeBmc::new(false);
        assert_eq!(
            bmc.chassis_control(ChassisAction::HardReset),
            Err(Completion::NOT_SUPPORTED_IN_PRESENT_STATE)
        );
        bmc.chassis_control(ChassisAction::PowerUp).unwrap();
        bmc.chassis_control(ChassisAction::PowerUp).unwrap();
        assert!(bmc.power_state());
        assert_eq!(bmc.snapshot().boots, 1, "a second power up is a no-op");
        bmc.chassis_control(ChassisAction::PowerCycle).unwrap();
        assert_eq!(bmc.snapshot().boots, 2);
        bmc.chassis_control(ChassisAction::SoftShutdown).unwrap();
        assert!(!bmc.power_state());
        bmc.chassis_control(ChassisAction::PowerDown).unwrap();
        assert!(!bmc.power_state());
    }

    #[test]
    fn fault_knobs() {
        let bmc = FakeBmc::new(true);
        bmc.state().fail_power_actions = Some(Completion::UNSPECIFIED);
        assert_eq!(
            bmc.chassis_control(ChassisAction::PowerDown),
            Err(Completion::UNSPECIFIED)
        );
        assert!(bmc.power_state());
        assert!(bmc.snapshot().actions.is_empty());

        bmc.state().fail_boot_device = Some(Completion::NODE_BUSY);
        assert_eq!(
            bmc.set_boot_device(BootDevice::once(BootSource::Pxe)),
            Err(Completion::NODE_BUSY)
        );
    }

    #[test]
    fn power_delay_reports_the_old_state_until_due() {
        let bmc = FakeBmc::new(false);
        bmc.state().power_delay = Duration::from_secs(3600);
        bmc.chassis_control(ChassisAction::PowerUp).unwrap();
        assert!(!bmc.power_state(), "not landed yet");
        // Heading on already: a second power up changes nothing.
        bmc.chassis_control(ChassisAction::PowerUp).unwrap();
        assert_eq!(bmc.snapshot().boots, 1);
        bmc.state().pending = Some((Instant::now(), true));
        assert!(bmc.power_state(), "landed");
    }
}
