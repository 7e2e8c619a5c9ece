//! The `ipmi` hardware type: IPMI 2.0 over LAN (RMCP+, "lanplus") through
//! `strata_ipmi::IpmiClient`, natively — Ironic forks `ipmitool` per command, which its own
//! docs name as what limits nodes per conductor (docs/baremetal-ipmi.md records the decision).
//!
//! A node's driver keeps one authenticated session and reuses it across calls; a failed call
//! drops it, so the next call opens a new one (the BMC may have rebooted or expired it). The
//! interfaces keep Ironic's names (`ipmitool` power and management) because clients and
//! operators know the hardware type by them.

use super::{
    info_str, BmcDriver, BmcError, BmcResult, BootDevice, BootSetting, DriverOptions, Power,
    PowerAction,
};
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use std::time::Duration;
use strata_ipmi::{BootSource, ChassisAction, ClientOptions, IpmiClient, IpmiError};

/// `driver_info` keys, as `/v1/drivers/ipmi/properties` lists them.
pub const PROPERTIES: &[(&str, &str)] = &[
    (
        "ipmi_address",
        "IP address or hostname of the node. Required.",
    ),
    ("ipmi_port", "remote IPMI RMCP port. Optional."),
    ("ipmi_username", "username; default is NULL user. Optional."),
    ("ipmi_password", "password. Optional."),
];

/// The driver of one IPMI node.
pub struct IpmiDriver {
    host: String,
    port: u16,
    username: String,
    password: String,
    opts: DriverOptions,
    session: tokio::sync::Mutex<Option<IpmiClient>>,
}

fn invalid(msg: String) -> BmcError {
    BmcError::InvalidDriverInfo(msg)
}

impl IpmiDriver {
    /// Reads `driver_info` as Ironic's `ipmitool._parse_driver_info` does.
    pub fn new(
        node: &str,
        info: &Map<String, Value>,
        opts: DriverOptions,
    ) -> BmcResult<IpmiDriver> {
        let Some(host) = info_str(info, "ipmi_address") else {
            return Err(invalid(format!(
                "Missing the following IPMI credentials in node's driver_info: \
                 ['ipmi_address']. (node {node})"
            )));
        };
        let port = match info.get("ipmi_port") {
            None | Some(Value::Null) => 623,
            Some(v) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                text.parse::<u16>().map_err(|_| {
                    invalid(format!(
                        "IPMI port is not an integer: invalid literal for int() with base 10: \
                         '{text}'"
                    ))
                })?
            }
        };
        let username = info_str(info, "ipmi_username").unwrap_or_default();
        let password = info_str(info, "ipmi_password").unwrap_or_default();
        if username.len() > 16 {
            return Err(invalid(format!(
                "The IPMI user name on node {node} is longer than 16 bytes"
            )));
        }
        if password.len() > 20 {
            return Err(invalid(format!(
                "The IPMI password on node {node} is longer than 20 bytes"
            )));
        }
        Ok(IpmiDriver {
            host,
            port,
            username,
            password,
            opts,
            session: tokio::sync::Mutex::new(None),
        })
    }

    fn target(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Runs `f` on the node's session, opening one first when there is none; drops the
    /// session when the call fails.
    async fn with_session<T, F>(&self, f: F) -> BmcResult<T>
    where
        F: for<'c> FnOnce(&'c mut IpmiClient) -> BoxFuture<'c, Result<T, IpmiError>>,
    {
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            let addr = tokio::net::lookup_host(self.target())
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    BmcError::Unreachable(format!(
                        "cannot resolve the IPMI address {}",
                        self.target()
                    ))
                })?;
            // Retransmissions fit in one request timeout.
            let retries = 2;
            let options = ClientOptions {
                timeout: self.opts.request_timeout / (retries + 1),
                retries,
                ..ClientOptions::default()
            };
            let client = IpmiClient::connect(addr, &self.username, &self.password, options)
                .await
                .map_err(|e| self.error(e))?;
            *guard = Some(client);
        }
        let Some(client) = guard.as_mut() else {
            return Err(BmcError::Fault("no IPMI session".into()));
        };
        match f(client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *guard = None;
                Err(self.error(e))
            }
        }
    }

    fn error(&self, e: IpmiError) -> BmcError {
        let at = self.target();
        match e {
            IpmiError::AuthFailed(why) => BmcError::Auth(format!(
                "IPMI authentication to {at} as user '{}' failed: wrong credentials ({why})",
                self.username
            )),
            e @ (IpmiError::Timeout { .. } | IpmiError::Unreachable { .. } | IpmiError::Io(_)) => {
                BmcError::Unreachable(format!("the IPMI BMC at {at} is unreachable: {e}"))
            }
            e @ IpmiError::Completion { .. } => {
                BmcError::Fault(format!("the IPMI BMC at {at} failed: {e}"))
            }
            e @ IpmiError::InvalidArgument(_) => BmcError::InvalidDriverInfo(e.to_string()),
            e => BmcError::Refused(format!("the IPMI BMC at {at}: {e}")),
        }
    }

    async fn read_power(&self) -> BmcResult<bool> {
        self.with_session(|c| Box::pin(c.power_status())).await
    }

    async fn chassis(&self, action: ChassisAction) -> BmcResult<()> {
        self.with_session(move |c| Box::pin(c.chassis_control(action)))
            .await
    }
}

const BOOT_SOURCES: &[(BootDevice, BootSource)] = &[
    (BootDevice::Pxe, BootSource::Pxe),
    (BootDevice::Disk, BootSource::Disk),
    (BootDevice::Cdrom, BootSource::Cdrom),
    (BootDevice::Bios, BootSource::Bios),
    (BootDevice::Safe, BootSource::Safe),
];

impl BmcDriver for IpmiDriver {
    fn validate(&self) -> BmcResult<()> {
        Ok(())
    }

    fn power_state(&self) -> BoxFuture<'_, BmcResult<Power>> {
        Box::pin(async move {
            Ok(if self.read_power().await? {
                Power::On
            } else {
                Power::Off
            })
        })
    }

    fn set_power(&self, action: PowerAction) -> BoxFuture<'_, BmcResult<()>> {
        Box::pin(async move {
            match action {
                PowerAction::On => self.chassis(ChassisAction::PowerUp).await,
                PowerAction::Off => self.chassis(ChassisAction::PowerDown).await,
                PowerAction::SoftOff => self.chassis(ChassisAction::SoftShutdown).await,
                PowerAction::Reboot => {
                    // Power cycle needs the power on (0xD5 otherwise): a node that is off is
                    // powered on, as Ironic's reboot does.
                    if self.read_power().await? {
                        self.chassis(ChassisAction::PowerCycle).await
                    } else {
                        self.chassis(ChassisAction::PowerUp).await
                    }
                }
                PowerAction::SoftReboot => {
                    // IPMI has no graceful restart: ask the OS to shut down, wait for the power
                    // to go, then power on (bounded by the request timeout per poll).
                    if self.read_power().await? {
                        self.chassis(ChassisAction::SoftShutdown).await?;
                        let mut every = tokio::time::interval(Duration::from_millis(250));
                        let deadline = tokio::time::Instant::now() + self.opts.request_timeout * 6;
                        loop {
                            every.tick().await;
                            if !self.read_power().await? {
                                break;
                            }
                            if tokio::time::Instant::now() >= deadline {
                                return Err(BmcError::Fault(format!(
                                    "the node behind the IPMI BMC at {} did not shut down",
                                    self.target()
                                )));
                            }
                        }
                    }
                    self.chassis(ChassisAction::PowerUp).await
                }
            }
        })
    }

    fn set_boot_device(
        &self,
        device: BootDevice,
        persistent: bool,
    ) -> BoxFuture<'_, BmcResult<()>> {
        Box::pin(async move {
            let Some((_, source)) = BOOT_SOURCES.iter().find(|(d, _)| *d == device) else {
                return Err(BmcError::Unsupported(format!(
                    "Invalid boot device {} specified.",
                    device.name()
                )));
            };
            let dev = strata_ipmi::BootDevice {
                device: *source,
                persistent,
                efi: false,
            };
            self.with_session(move |c| Box::pin(c.set_boot_device(dev)))
                .await
        })
    }

    fn boot_device(&self) -> BoxFuture<'_, BmcResult<BootSetting>> {
        Box::pin(async move {
            let b = self.with_session(|c| Box::pin(c.boot_device())).await?;
            Ok(BootSetting {
                device: BOOT_SOURCES
                    .iter()
                    .find(|(_, s)| *s == b.device)
                    .map(|(d, _)| *d),
                persistent: Some(b.persistent),
            })
        })
    }

    fn supported_boot_devices(&self) -> Vec<BootDevice> {
        BOOT_SOURCES.iter().map(|(d, _)| *d).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use strata_ipmi::{Credentials, FakeBmc, IpmiServer};

    async fn bmc() -> (Arc<FakeBmc>, IpmiServer) {
        let fake = Arc::new(FakeBmc::new(false));
        let server = IpmiServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            Credentials::new("admin", "password"),
            fake.clone(),
        )
        .await
        .unwrap();
        (fake, server)
    }

    fn driver(server: &IpmiServer, password: &str) -> IpmiDriver {
        let addr = server.local_addr();
        let info = json!({"ipmi_address": addr.ip().to_string(), "ipmi_port": addr.port(),
            "ipmi_username": "admin", "ipmi_password": password});
        let opts = DriverOptions {
            request_timeout: Duration::from_secs(3),
        };
        IpmiDriver::new("n", info.as_object().unwrap(), opts).unwrap()
    }

    #[tokio::test]
    async fn power_and_boot_round_trips() {
        let (fake, server) = bmc().await;
        let d = driver(&server, "password");
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        d.set_power(PowerAction::On).await.unwrap();
        assert!(fake.snapshot().powered_on);
        assert_eq!(d.power_state().await.unwrap(), Power::On);
        d.set_power(PowerAction::Reboot).await.unwrap();
        assert_eq!(
            fake.snapshot().actions.last(),
            Some(&ChassisAction::PowerCycle)
        );
        d.set_power(PowerAction::Off).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        // Reboot from off powers on.
        d.set_power(PowerAction::Reboot).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::On);
        d.set_power(PowerAction::SoftReboot).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::On);

        d.set_boot_device(BootDevice::Pxe, true).await.unwrap();
        let b = d.boot_device().await.unwrap();
        assert_eq!(b.device, Some(BootDevice::Pxe));
        assert_eq!(b.persistent, Some(true));
        d.set_boot_device(BootDevice::Disk, false).await.unwrap();
        assert_eq!(
            d.boot_device().await.unwrap().device,
            Some(BootDevice::Disk)
        );
        assert_eq!(server.session_count(), 1, "one session, reused");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn wrong_password_is_an_auth_failure() {
        let (_fake, server) = bmc().await;
        let d = driver(&server, "wrong");
        let e = d.power_state().await.unwrap_err();
        assert!(matches!(e, BmcError::Auth(_)), "{e:?}");
        assert!(e.to_string().contains("wrong credentials"), "{e}");
        assert!(!e.retryable());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn bmc_faults_are_retryable() {
        let (fake, server) = bmc().await;
        let d = driver(&server, "password");
        fake.state().fail_power_actions = Some(strata_ipmi::Completion(0xC0));
        let e = d.set_power(PowerAction::On).await.unwrap_err();
        assert!(matches!(e, BmcError::Fault(_)), "{e:?}");
        assert!(e.retryable());
        fake.state().fail_power_actions = None;
        d.set_power(PowerAction::On).await.unwrap();
        assert!(fake.snapshot().powered_on);
        server.shutdown().await;
    }

    #[test]
    fn driver_info_checks() {
        let o = DriverOptions::default();
        let e = IpmiDriver::new("n", json!({}).as_object().unwrap(), o)
            .err()
            .unwrap();
        assert!(e.to_string().contains("['ipmi_address']"), "{e}");
        let e = IpmiDriver::new(
            "n",
            json!({"ipmi_address": "h", "ipmi_port": "x"})
                .as_object()
                .unwrap(),
            o,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("IPMI port is not an integer"), "{e}");
        let d = IpmiDriver::new(
            "n",
            json!({"ipmi_address": "::1", "ipmi_port": "6230"})
                .as_object()
                .unwrap(),
            o,
        )
        .unwrap();
        assert_eq!(d.target(), "[::1]:6230");
    }
}
