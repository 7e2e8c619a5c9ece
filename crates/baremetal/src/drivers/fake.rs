//! `fake-hardware`: machines that exist only in memory, with power and a boot device that
//! change at once, and fault knobs as plain fields. A test double beside the real drivers, as
//! Ironic's hardware type of the same name is; nothing in it is compiled for tests only.

use super::{BmcDriver, BmcError, BmcResult, BootDevice, BootSetting, Power, PowerAction};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One fake machine's state and fault knobs.
#[derive(Debug, Clone, Default)]
pub struct FakeMachine {
    pub powered_on: bool,
    pub boot: BootSetting,
    /// Fault knob: every call fails with [`BmcError::Unreachable`].
    pub unreachable: bool,
    /// Fault knob: every call fails with [`BmcError::Auth`].
    pub wrong_credentials: bool,
    /// Fault knob: this many power actions fail with [`BmcError::Fault`], then they succeed.
    pub fail_power_actions: u32,
    /// Fault knob: power actions are accepted but the power state does not change (as a BMC
    /// whose host ignores the request) until the knob is cleared, when the last requested
    /// state lands.
    pub hold_power: bool,
    /// Where held power actions head.
    pub pending_power: Option<bool>,
    /// Every power action accepted, in order.
    pub actions: Vec<PowerAction>,
    /// Power reads served.
    pub reads: u64,
}

/// Every fake machine, by node UUID. Machines appear (off) on first use.
#[derive(Debug, Default)]
pub struct FakeHardware {
    machines: Mutex<HashMap<String, FakeMachine>>,
}

impl FakeHardware {
    /// The machine of node `uuid`, locked: read it or turn its knobs.
    pub fn machine(&self, uuid: &str) -> FakeMachineGuard<'_> {
        let mut g = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        g.entry(uuid.to_string()).or_default();
        FakeMachineGuard {
            guard: g,
            uuid: uuid.to_string(),
        }
    }

    /// Clears `hold_power` on `uuid`, landing the last held power change.
    pub fn release_power(&self, uuid: &str) {
        let mut m = self.machine(uuid);
        m.hold_power = false;
        if let Some(on) = m.pending_power.take() {
            m.powered_on = on;
        }
    }
}

/// A locked fake machine.
pub struct FakeMachineGuard<'a> {
    guard: MutexGuard<'a, HashMap<String, FakeMachine>>,
    uuid: String,
}

impl std::ops::Deref for FakeMachineGuard<'_> {
    type Target = FakeMachine;
    fn deref(&self) -> &FakeMachine {
        &self.guard[&self.uuid]
    }
}

impl std::ops::DerefMut for FakeMachineGuard<'_> {
    fn deref_mut(&mut self) -> &mut FakeMachine {
        self.guard.entry(self.uuid.clone()).or_default()
    }
}

/// The driver of one `fake-hardware` node.
pub struct FakeDriver {
    uuid: String,
    hw: Arc<FakeHardware>,
}

impl FakeDriver {
    pub fn new(uuid: &str, hw: Arc<FakeHardware>) -> FakeDriver {
        FakeDriver {
            uuid: uuid.to_string(),
            hw,
        }
    }

    fn reach(&self) -> BmcResult<FakeMachineGuard<'_>> {
        let m = self.hw.machine(&self.uuid);
        if m.unreachable {
            return Err(BmcError::Unreachable(
                "the fake BMC is unreachable (fault knob)".into(),
            ));
        }
        if m.wrong_credentials {
            return Err(BmcError::Auth(
                "the fake BMC refused the credentials (fault knob)".into(),
            ));
        }
        Ok(m)
    }
}

impl BmcDriver for FakeDriver {
    fn validate(&self) -> BmcResult<()> {
        Ok(())
    }

    fn power_state(&self) -> BoxFuture<'_, BmcResult<Power>> {
        Box::pin(async move {
            let mut m = self.reach()?;
            m.reads += 1;
            Ok(if m.powered_on { Power::On } else { Power::Off })
        })
    }

    fn set_power(&self, action: PowerAction) -> BoxFuture<'_, BmcResult<()>> {
        Box::pin(async move {
            let mut m = self.reach()?;
            if m.fail_power_actions > 0 {
                m.fail_power_actions -= 1;
                return Err(BmcError::Fault(
                    "the fake BMC failed the power action (fault knob)".into(),
                ));
            }
            m.actions.push(action);
            let on = !matches!(action, PowerAction::Off | PowerAction::SoftOff);
            if m.hold_power {
                m.pending_power = Some(on);
            } else {
                m.powered_on = on;
            }
            Ok(())
        })
    }

    fn set_boot_device(
        &self,
        device: BootDevice,
        persistent: bool,
    ) -> BoxFuture<'_, BmcResult<()>> {
        Box::pin(async move {
            let mut m = self.reach()?;
            m.boot = BootSetting {
                device: Some(device),
                persistent: Some(persistent),
            };
            Ok(())
        })
    }

    fn boot_device(&self) -> BoxFuture<'_, BmcResult<BootSetting>> {
        Box::pin(async move { Ok(self.reach()?.boot) })
    }

    fn supported_boot_devices(&self) -> Vec<BootDevice> {
        vec![
            BootDevice::Pxe,
            BootDevice::Disk,
            BootDevice::Cdrom,
            BootDevice::Bios,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn knobs() {
        let hw = Arc::new(FakeHardware::default());
        let d = FakeDriver::new("n", hw.clone());
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        d.set_power(PowerAction::Reboot).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::On);
        hw.machine("n").fail_power_actions = 1;
        assert!(d.set_power(PowerAction::Off).await.unwrap_err().retryable());
        d.set_power(PowerAction::Off).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        hw.machine("n").hold_power = true;
        d.set_power(PowerAction::On).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        hw.release_power("n");
        assert_eq!(d.power_state().await.unwrap(), Power::On);
        hw.machine("n").wrong_credentials = true;
        assert!(!d.power_state().await.unwrap_err().retryable());
        hw.machine("n").wrong_credentials = false;
        d.set_boot_device(BootDevice::Pxe, true).await.unwrap();
        assert_eq!(
            d.boot_device().await.unwrap(),
            BootSetting {
                device: Some(BootDevice::Pxe),
                persistent: Some(true)
            }
        );
    }
}
