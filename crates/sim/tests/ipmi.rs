//! The simulated hosts' IPMI BMCs (lanplus, UDP), driven by our client (`IpmiClient`) and by the
//! real ipmitool, with what they do checked through the same host's Redfish BMC — and the
//! other way round: the two protocols are two views of one BMC.

mod common;

use anyhow::{ensure, Result};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use strata_ipmi::interop::{ipmitool_available, Ipmitool};
use strata_ipmi::{
    BootDevice, BootSource as IpmiBoot, ChassisAction, ClientOptions, Completion, IpmiClient,
    IpmiError,
};
use strata_sim::{BootSource, FleetOptions, PowerState};

/// Host 0's IPMI address.
fn ipmi_addr(sim: &Sim) -> SocketAddr {
    sim.host()
        .bmc()
        .unwrap()
        .ipmi
        .expect("the fleet serves IPMI")
}

/// A session with host 0's IPMI BMC as the fleet's user.
async fn ipmi(sim: &Sim) -> IpmiClient {
    IpmiClient::connect(ipmi_addr(sim), USER, PASSWORD, ClientOptions::default())
        .await
        .unwrap()
}

/// Client options for BMCs expected not to answer: give up quickly.
fn impatient() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(200),
        retries: 1,
        ..ClientOptions::default()
    }
}

/// `Boot` of host 0's Redfish system.
async fn redfish_boot(sim: &Sim) -> Result<Value> {
    Ok(sim.get(&sim.sys()).await?["Boot"].clone())
}

/// `[BootSourceOverrideTarget, BootSourceOverrideEnabled, BootSourceOverrideMode]`.
async fn redfish_override(sim: &Sim) -> Result<Vec<String>> {
    let boot = redfish_boot(sim).await?;
    Ok(["Target", "Enabled", "Mode"]
        .iter()
        .map(|k| {
            let v = &boot[format!("BootSourceOverride{k}")];
            v.as_str().unwrap_or_default().to_string()
        })
        .collect())
}

/// The reason of host 0's last boot.
fn last_boot_reason(sim: &Sim) -> String {
    sim.host()
        .boot_log()
        .last()
        .map(|b| b.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn ipmi_power_actions_show_in_redfish_and_back() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let mut c = ipmi(&sim).await;
    assert!(!c.power_status().await?);
    assert_eq!(sim.power().await?, "Off");

    c.chassis_control(ChassisAction::PowerUp).await?;
    assert_eq!(sim.power().await?, "On");
    assert!(c.power_status().await?);
    assert_eq!(sim.boots.sources(), [BootSource::Disk]);
    assert_eq!(last_boot_reason(&sim), "ipmi on");
    // Power up when on changes nothing.
    c.chassis_control(ChassisAction::PowerUp).await?;
    assert_eq!(sim.host().boot_count(), 1);

    c.chassis_control(ChassisAction::PowerCycle).await?;
    assert_eq!(sim.power().await?, "On");
    assert_eq!(last_boot_reason(&sim), "ipmi cycle");
    c.chassis_control(ChassisAction::HardReset).await?;
    assert_eq!(last_boot_reason(&sim), "ipmi reset");
    assert_eq!(sim.host().boot_count(), 3);
    // A diagnostic interrupt changes nothing.
    c.chassis_control(ChassisAction::PulseDiag).await?;
    assert_eq!(sim.power().await?, "On");

    c.chassis_control(ChassisAction::SoftShutdown).await?;
    assert_eq!(sim.power().await?, "Off");
    assert!(!c.power_status().await?);
    c.chassis_control(ChassisAction::PowerDown).await?;
    assert_eq!(sim.power().await?, "Off");
    c.chassis_control(ChassisAction::PowerUp).await?;
    c.chassis_control(ChassisAction::PowerDown).await?;
    assert_eq!(sim.power().await?, "Off");
    assert_eq!(sim.host().boot_count(), 4);

    // Cycle and reset need the power on (0xD5), where Redfish's restarts would power it on.
    for action in [ChassisAction::PowerCycle, ChassisAction::HardReset] {
        let err = c.chassis_control(action).await.unwrap_err();
        assert_eq!(
            err.completion(),
            Some(Completion::NOT_SUPPORTED_IN_PRESENT_STATE),
            "{action:?}: {err}"
        );
    }
    assert_eq!(sim.power().await?, "Off");
    assert_eq!(sim.host().boot_count(), 4);

    // The other way: Redfish resets, IPMI sees them.
    assert_eq!(sim.reset("On").await?.status, StatusCode::NO_CONTENT);
    assert!(c.power_status().await?);
    assert_eq!(sim.reset("ForceOff").await?.status, StatusCode::NO_CONTENT);
    assert!(!c.power_status().await?);
    // And the control API's power button.
    sim.host().set_power(PowerState::On);
    assert!(c.power_status().await?);
    c.close().await?;
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn ipmi_boot_device_is_the_redfish_boot_override() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let mut c = ipmi(&sim).await;
    assert_eq!(c.boot_device().await?.device, IpmiBoot::NoOverride);

    for (device, persistent, efi, want) in [
        (IpmiBoot::Pxe, false, false, ["Pxe", "Once", "Legacy"]),
        (IpmiBoot::Pxe, true, true, ["Pxe", "Continuous", "UEFI"]),
        (IpmiBoot::Disk, false, true, ["Hdd", "Once", "UEFI"]),
        (IpmiBoot::Cdrom, true, false, ["Cd", "Continuous", "Legacy"]),
        (IpmiBoot::Bios, false, true, ["BiosSetup", "Once", "UEFI"]),
    ] {
        let dev = BootDevice {
            device,
            persistent,
            efi,
        };
        c.set_boot_device(dev).await?;
        assert_eq!(redfish_override(&sim).await?, want, "{dev:?}");
        assert_eq!(c.boot_device().await?, dev);
    }

    // A Redfish PATCH shows through IPMI.
    let r = sim
        .patch(
            &sim.sys(),
            json!({ "Boot": { "BootSourceOverrideTarget": "Pxe",
                "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "UEFI" } }),
        )
        .await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let want = BootDevice {
        device: IpmiBoot::Pxe,
        persistent: true,
        efi: true,
    };
    assert_eq!(c.boot_device().await?, want);

    // "No override" disables the Redfish override and leaves its mode alone.
    c.set_boot_device(BootDevice::once(IpmiBoot::NoOverride))
        .await?;
    assert_eq!(redfish_override(&sim).await?, ["None", "Disabled", "UEFI"]);
    assert_eq!(c.boot_device().await?.device, IpmiBoot::NoOverride);

    // Selectors without a Redfish counterpart are refused and change nothing.
    let err = c
        .set_boot_device(BootDevice::once(IpmiBoot::Diag))
        .await
        .unwrap_err();
    assert_eq!(
        err.completion(),
        Some(Completion::INVALID_DATA_FIELD),
        "{err}"
    );
    assert_eq!(redfish_override(&sim).await?[1], "Disabled");
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_ipmi_power_on_boots_the_ipmi_boot_device() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let mut c = ipmi(&sim).await;

    // `chassis bootdev pxe` then `chassis power on`: a network boot, and the one-time
    // override is used up (as Redfish shows).
    c.set_boot_device(BootDevice::once(IpmiBoot::Pxe)).await?;
    c.chassis_control(ChassisAction::PowerUp).await?;
    assert_eq!(sim.boots.sources(), [BootSource::Network]);
    assert_eq!(redfish_override(&sim).await?[1], "Disabled");
    assert_eq!(c.boot_device().await?.device, IpmiBoot::NoOverride);

    // Without an override: the default device (the disk).
    c.chassis_control(ChassisAction::HardReset).await?;
    assert_eq!(sim.boots.sources()[1], BootSource::Disk);

    // A persistent override stays for every boot.
    c.set_boot_device(BootDevice {
        device: IpmiBoot::Pxe,
        persistent: true,
        efi: true,
    })
    .await?;
    c.chassis_control(ChassisAction::PowerCycle).await?;
    c.chassis_control(ChassisAction::HardReset).await?;
    assert_eq!(
        sim.boots.sources()[2..],
        [BootSource::Network, BootSource::Network]
    );
    assert_eq!(redfish_override(&sim).await?[1], "Continuous");
    let log = sim.host().boot_log();
    assert_eq!(
        (
            log[3].reason.as_str(),
            log[3].target.as_str(),
            log[3].mode.as_str()
        ),
        ("ipmi reset", "Pxe", "UEFI")
    );

    // The CD: the image inserted through Redfish's virtual media.
    let iso = "http://127.0.0.1:9/deploy.iso";
    assert!(sim.host().insert_media(iso, true, true));
    c.set_boot_device(BootDevice::once(IpmiBoot::Cdrom)).await?;
    c.chassis_control(ChassisAction::PowerCycle).await?;
    assert_eq!(
        sim.boots.sources()[4],
        BootSource::VirtualMedia {
            url: iso.to_string()
        }
    );
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_slow_ipmi_power_change_lands_later() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let mut c = ipmi(&sim).await;
    // An hour: certainly still in flight while the test looks.
    sim.set_faults(|f| f.power_delay = Duration::from_secs(3600));
    c.chassis_control(ChassisAction::PowerUp).await?;
    assert!(!c.power_status().await?);
    assert_eq!(sim.power().await?, "Off");
    // Heading on: a reset is allowed, and replaces the change in flight with one that lands
    // soon.
    sim.set_faults(|f| f.power_delay = Duration::from_millis(50));
    c.chassis_control(ChassisAction::HardReset).await?;
    let deadline = Instant::now() + DEADLINE;
    while !c.power_status().await? {
        ensure!(Instant::now() < deadline, "the power-on never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.power().await?, "On");
    assert_eq!(sim.boots.sources(), [BootSource::Disk]);
    assert_eq!(last_boot_reason(&sim), "ipmi reset");
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn failing_power_actions_are_an_ipmi_error_and_change_nothing() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let mut c = ipmi(&sim).await;
    sim.set_faults(|f| f.fail_power_actions = true);
    for action in [ChassisAction::PowerUp, ChassisAction::PowerDown] {
        let err = c.chassis_control(action).await.unwrap_err();
        assert_eq!(err.completion(), Some(Completion::UNSPECIFIED), "{err}");
    }
    assert_eq!(sim.power().await?, "Off");
    assert!(!c.power_status().await?);
    assert!(sim.boots.sources().is_empty());
    // The boot device is not a power action: still accepted.
    c.set_boot_device(BootDevice::once(IpmiBoot::Pxe)).await?;

    sim.set_faults(|f| f.fail_power_actions = false);
    c.chassis_control(ChassisAction::PowerUp).await?;
    assert_eq!(sim.power().await?, "On");
    assert_eq!(sim.boots.sources(), [BootSource::Network]);
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_ipmi_bmc_answers_nothing() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let addr = ipmi_addr(&sim);
    let mut open = IpmiClient::connect(addr, USER, PASSWORD, impatient()).await?;

    sim.set_faults(|f| f.unreachable = true);
    let err = IpmiClient::connect(addr, USER, PASSWORD, impatient())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            IpmiError::Timeout { .. } | IpmiError::Unreachable { .. }
        ),
        "{err}"
    );
    let err = open.power_status().await.unwrap_err();
    assert!(matches!(err, IpmiError::Timeout { .. }), "{err}");
    // The other host's BMC answers.
    let other = sim.fleet.hosts()[1].bmc().unwrap().ipmi.unwrap();
    let mut c = IpmiClient::connect(other, USER, PASSWORD, impatient()).await?;
    assert!(!c.power_status().await?);

    // Back on the network: the open session carries on, new ones are admitted.
    sim.set_faults(|f| f.unreachable = false);
    assert!(!open.power_status().await?);
    let mut fresh = IpmiClient::connect(addr, USER, PASSWORD, impatient()).await?;
    fresh.chassis_control(ChassisAction::PowerUp).await?;
    assert_eq!(sim.power().await?, "On");
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn ipmi_credentials_follow_the_password_fault() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let addr = ipmi_addr(&sim);
    let err = IpmiClient::connect(addr, USER, "wrong", impatient())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, IpmiError::AuthFailed(_)), "{err}");
    let err = IpmiClient::connect(addr, "nobody", PASSWORD, impatient())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, IpmiError::AuthFailed(_)), "{err}");

    let mut before = IpmiClient::connect(addr, USER, PASSWORD, impatient()).await?;
    sim.set_faults(|f| f.password = Some("rotated".into()));
    let err = IpmiClient::connect(addr, USER, PASSWORD, impatient())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, IpmiError::AuthFailed(_)), "{err}");
    // The session opened with the old password is over, as the Redfish ones are.
    let err = before.power_status().await.unwrap_err();
    assert!(matches!(err, IpmiError::Timeout { .. }), "{err}");
    let mut after = IpmiClient::connect(addr, USER, "rotated", impatient()).await?;
    after.chassis_control(ChassisAction::PowerUp).await?;
    assert_eq!(sim.host().power(), PowerState::On);

    sim.set_faults(|f| f.password = None);
    let mut again = IpmiClient::connect(addr, USER, PASSWORD, impatient()).await?;
    assert!(again.power_status().await?);
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn hosts_json_and_the_control_api_give_the_ipmi_address() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let listing: Value =
        serde_json::from_slice(&std::fs::read(sim.dir.path().join("hosts.json"))?)?;
    let view: Value = sim
        .http
        .get(sim.control("/sim/v1/hosts"))
        .send()
        .await?
        .json()
        .await?;
    for (i, host) in sim.fleet.hosts().iter().enumerate() {
        let addr = host.bmc().unwrap().ipmi.unwrap();
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_eq!(listing["hosts"][i]["ipmi_address"], addr.to_string());
        assert_eq!(view["hosts"][i]["ipmi_address"], addr.to_string());
    }
    let ports: std::collections::BTreeSet<_> = sim
        .fleet
        .hosts()
        .iter()
        .map(|h| h.bmc().unwrap().ipmi.unwrap().port())
        .collect();
    assert_eq!(ports.len(), 2, "one port per host");
    sim.stop().await;

    // IPMI turned off: Redfish only.
    let sim = Sim::start(FleetOptions {
        ipmi: false,
        ..options()
    })
    .await?;
    assert!(sim.host().bmc().unwrap().ipmi.is_none());
    let listing: Value =
        serde_json::from_slice(&std::fs::read(sim.dir.path().join("hosts.json"))?)?;
    assert_eq!(listing["hosts"][0]["ipmi_address"], Value::Null);
    assert_eq!(sim.power().await?, "Off");
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn ipmi_limits_are_checked_unless_ipmi_is_off() -> Result<()> {
    // (Fixed IPMI ports: `fixed_ports_count_up_from_the_base` in redfish.rs.)
    let past_the_end = FleetOptions {
        hosts: 10,
        ipmi_base_port: 65530,
        ..FleetOptions::default()
    };
    assert!(!fleet_starts(past_the_end.clone()).await?);
    // IPMI limits user names to 16 bytes and passwords to 20.
    let long_password = FleetOptions {
        password: "a-password-of-21-byte".into(),
        ..FleetOptions::default()
    };
    assert!(!fleet_starts(long_password.clone()).await?);
    // Without IPMI, neither matters.
    for opts in [past_the_end, long_password] {
        assert!(
            fleet_starts(FleetOptions {
                ipmi: false,
                ..opts
            })
            .await?
        );
    }
    Ok(())
}

#[tokio::test]
async fn ipmi_state_survives_a_restart() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let mut c = ipmi(&sim).await;
    c.set_boot_device(BootDevice {
        device: IpmiBoot::Cdrom,
        persistent: true,
        efi: false,
    })
    .await?;
    c.chassis_control(ChassisAction::PowerUp).await?;
    let dir = sim.stop().await;
    let sim = Sim::start_in(options(), dir).await?;
    let mut c = ipmi(&sim).await;
    assert!(c.power_status().await?);
    assert_eq!(
        c.boot_device().await?,
        BootDevice {
            device: IpmiBoot::Cdrom,
            persistent: true,
            efi: false,
        }
    );
    sim.stop().await;
    Ok(())
}

// --- the real ipmitool --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn ipmitool_drives_a_simulated_host() -> Result<()> {
    if !ipmitool_available() {
        return Ok(());
    }
    let sim = Sim::start(options()).await?;
    let tool = Ipmitool::new(ipmi_addr(&sim), USER, PASSWORD);

    assert!(tool
        .ok("chassis power status")
        .await
        .contains("Chassis Power is off"));
    tool.ok("chassis power on").await;
    assert_eq!(sim.power().await?, "On");
    assert_eq!(last_boot_reason(&sim), "ipmi on");
    assert!(tool
        .ok("chassis power status")
        .await
        .contains("Chassis Power is on"));
    tool.ok("chassis power cycle").await;
    assert_eq!(last_boot_reason(&sim), "ipmi cycle");
    tool.ok("chassis power reset").await;
    assert_eq!(last_boot_reason(&sim), "ipmi reset");
    assert_eq!(sim.host().boot_count(), 3);
    tool.ok("chassis power off").await;
    assert_eq!(sim.power().await?, "Off");
    // Redfish powers it on; ipmitool sees it.
    assert_eq!(sim.reset("On").await?.status, StatusCode::NO_CONTENT);
    assert!(tool
        .ok("chassis power status")
        .await
        .contains("Chassis Power is on"));
    tool.ok("chassis power soft").await;
    assert_eq!(sim.power().await?, "Off");

    for (args, want) in [
        ("chassis bootdev pxe", ["Pxe", "Once", "Legacy"]),
        ("chassis bootdev disk", ["Hdd", "Once", "Legacy"]),
        ("chassis bootdev cdrom", ["Cd", "Once", "Legacy"]),
        (
            "chassis bootdev pxe options=persistent",
            ["Pxe", "Continuous", "Legacy"],
        ),
        (
            "chassis bootdev disk options=efiboot",
            ["Hdd", "Once", "UEFI"],
        ),
    ] {
        tool.ok(args).await;
        assert_eq!(redfish_override(&sim).await?, want, "after ipmitool {args}");
    }
    // A Redfish override, read by ipmitool.
    let r = sim
        .patch(
            &sim.sys(),
            json!({ "Boot": { "BootSourceOverrideTarget": "Pxe",
                "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI" } }),
        )
        .await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let flags = tool.ok("chassis bootparam get 5").await;
    assert!(flags.contains("Force PXE"), "{flags}");
    assert!(flags.contains("BIOS EFI boot"), "{flags}");
    // ... and used by the next power-on, whoever asks for it.
    tool.ok("chassis power on").await;
    assert_eq!(*sim.boots.sources().last().unwrap(), BootSource::Network);

    // Refusals: a power cycle of a host that is off, an injected failure, a wrong password.
    tool.ok("chassis power off").await;
    let out = tool.run("chassis power cycle").await;
    assert!(!out.status.success());
    sim.set_faults(|f| f.fail_power_actions = true);
    let out = tool.run("chassis power on").await;
    assert!(!out.status.success());
    assert_eq!(sim.power().await?, "Off");
    sim.set_faults(|f| f.fail_power_actions = false);
    let out = tool
        .clone()
        .with_password("wrong")
        .run("chassis power on")
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Unable to establish IPMI v2 / RMCP+ session"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sim.power().await?, "Off");
    sim.stop().await;
    Ok(())
}
