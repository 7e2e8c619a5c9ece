//! The real ipmitool (`-I lanplus`, Debian 12's 1.8.19) against our server: every command the
//! `ipmi` driver's operators use, with cipher suite 3 and with ipmitool's default (17, since
//! our server lists it), asserting on the fake machine behind the server after each.
//!
//! Skipped with a notice when ipmitool is not installed, unless STRATA_REQUIRE_IPMITOOL=1
//! (CI), which makes that a failure. Install: `apt-get install -y --no-install-recommends
//! ipmitool`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use strata_ipmi::interop::{ipmitool_available, Ipmitool};
use strata_ipmi::{
    BmcBackend, BootDevice, BootSource, ChassisAction, Completion, Credentials, FakeBmc, IpmiServer,
};

async fn serve(bmc: Arc<FakeBmc>) -> IpmiServer {
    IpmiServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Credentials::new("admin", "password"),
        bmc,
    )
    .await
    .unwrap()
}

/// ipmitool aimed at `srv` as `admin`/`password`, with `-C suite` if given.
fn ipmitool(srv: &IpmiServer, suite: Option<u8>) -> Ipmitool {
    Ipmitool::new(srv.local_addr(), "admin", "password").with_suite(suite)
}

async fn every_command(suite: Option<u8>) {
    if !ipmitool_available() {
        return;
    }
    let bmc = Arc::new(FakeBmc::new(false));
    let srv = serve(bmc.clone()).await;
    let tool = ipmitool(&srv, suite);

    assert!(tool
        .ok("chassis power status")
        .await
        .contains("Chassis Power is off"));
    tool.ok("chassis power on").await;
    assert!(bmc.power_state());
    assert!(tool
        .ok("chassis power status")
        .await
        .contains("Chassis Power is on"));
    tool.ok("chassis power cycle").await;
    tool.ok("chassis power reset").await;
    assert_eq!(bmc.snapshot().boots, 3, "on, cycle, reset");
    tool.ok("chassis power soft").await;
    assert!(!bmc.power_state());
    tool.ok("chassis power on").await;
    tool.ok("chassis power off").await;
    assert!(!bmc.power_state());
    assert_eq!(
        bmc.snapshot().actions,
        [
            ChassisAction::PowerUp,
            ChassisAction::PowerCycle,
            ChassisAction::HardReset,
            ChassisAction::SoftShutdown,
            ChassisAction::PowerUp,
            ChassisAction::PowerDown,
        ]
    );

    for (args, device, persistent, efi) in [
        ("chassis bootdev pxe", BootSource::Pxe, false, false),
        ("chassis bootdev disk", BootSource::Disk, false, false),
        ("chassis bootdev cdrom", BootSource::Cdrom, false, false),
        (
            "chassis bootdev pxe options=persistent",
            BootSource::Pxe,
            true,
            false,
        ),
        (
            "chassis bootdev disk options=efiboot",
            BootSource::Disk,
            false,
            true,
        ),
    ] {
        tool.ok(args).await;
        let want = BootDevice {
            device,
            persistent,
            efi,
        };
        assert_eq!(bmc.snapshot().boot, want, "after ipmitool {args}");
    }
    // ipmitool reads the boot flags back through Get System Boot Options.
    let flags = tool.ok("chassis bootparam get 5").await;
    assert!(flags.contains("BIOS EFI boot"), "{flags}");
    assert!(
        flags.contains("Force Boot from default Hard-Drive"),
        "{flags}"
    );

    let status = tool.ok("chassis status").await;
    assert!(status.contains("System Power         : off"), "{status}");
    bmc.state().powered_on = true;
    let status = tool.ok("chassis status").await;
    assert!(status.contains("System Power         : on"), "{status}");

    let info = tool.ok("mc info").await;
    assert!(info.contains("IPMI Version              : 2.0"), "{info}");
    assert!(info.contains("Firmware Revision         : 1.00"), "{info}");

    // A failing power action is reported as such (and changes nothing).
    bmc.state().fail_power_actions = Some(Completion::NOT_SUPPORTED_IN_PRESENT_STATE);
    let out = tool.run("chassis power off").await;
    assert!(!out.status.success());
    assert!(bmc.power_state());

    // ipmitool closes its session on exit: none is left behind.
    common::eventually("sessions to be closed", Duration::from_secs(10), || async {
        (srv.session_count() == 0).then_some(())
    })
    .await;
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ipmitool_default_suite_17_every_command() {
    every_command(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ipmitool_suite_3_every_command() {
    every_command(Some(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ipmitool_picks_suite_17_from_our_list() {
    if !ipmitool_available() {
        return;
    }
    let srv = serve(Arc::new(FakeBmc::default())).await;
    let out = ipmitool(&srv, None).run("-v chassis power status").await;
    assert!(out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("Using best available cipher suite 17"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ipmitool_wrong_password_fails() {
    if !ipmitool_available() {
        return;
    }
    let bmc = Arc::new(FakeBmc::default());
    let srv = serve(bmc.clone()).await;
    for suite in [None, Some(3)] {
        let out = ipmitool(&srv, suite)
            .with_password("wrong")
            .run("chassis power on")
            .await;
        assert!(!out.status.success(), "suite {suite:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("Unable to establish IPMI v2 / RMCP+ session"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!bmc.power_state());
    assert!(bmc.snapshot().actions.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ipmitool_suite_0_is_refused() {
    if !ipmitool_available() {
        return;
    }
    let bmc = Arc::new(FakeBmc::default());
    let srv = serve(bmc.clone()).await;
    let out = ipmitool(&srv, Some(0)).run("chassis power on").await;
    assert!(!out.status.success());
    assert!(!bmc.power_state());
}
