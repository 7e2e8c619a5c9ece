//! Our client against VirtualBMC: an independent IPMI server (pyghmi's BMC code) in front of a
//! real libvirt domain — a tiny TCG guest with no disk (64 MiB, so powering it on costs little).
//! Power on/off must show in libvirt's domain state, the boot device in the domain's XML.
//!
//! Needs libvirtd (scripts/libvirt-up.sh) and the VirtualBMC venv that scripts/vbmc-up.sh
//! installs at $STRATA_VBMC_VENV (default /var/tmp/strata-vbmc-venv). Skipped with a notice
//! when either is missing, unless STRATA_REQUIRE_VBMC=1 (CI), which makes that a failure. The
//! test starts its own vbmcd through scripts/vbmc-up.sh in a temporary state dir, on free
//! ports, and removes the BMC, the daemon and the domain afterwards.

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use strata_ipmi::interop::peer_available;
use strata_ipmi::{
    BootDevice, BootSource, ChassisAction, CipherSuite, ClientOptions, IpmiClient, IpmiError,
};

const URI: &str = "qemu:///system";

fn venv() -> PathBuf {
    std::env::var_os("STRATA_VBMC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/strata-vbmc-venv"))
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawning a command")
}

fn virsh(args: &[&str]) -> Output {
    let mut all = vec!["-c", URI, "-q"];
    all.extend_from_slice(args);
    run("virsh", &all, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn check(what: &str, o: Output) -> Output {
    assert!(
        o.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn free_port(udp: bool) -> u16 {
    if udp {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// The domain, the vbmcd and its BMC; torn down on drop, also when the test fails.
struct Fixture {
    domain: String,
    state: tempfile::TempDir,
    script: PathBuf,
    bmc: SocketAddr,
}

impl Fixture {
    fn config(&self) -> PathBuf {
        self.state.path().join("virtualbmc.conf")
    }

    fn vbmc(&self, args: &[&str]) -> Output {
        run(
            venv().join("bin/vbmc"),
            args,
            &[("VIRTUALBMC_CONFIG", &self.config())],
        )
    }

    fn up() -> Fixture {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vbmc-up.sh");
        let state = tempfile::tempdir().unwrap();
        let domain = format!("strata-ipmi-test-{}", std::process::id());
        let f = Fixture {
            domain,
            state,
            script,
            bmc: SocketAddr::from(([127, 0, 0, 1], free_port(true))),
        };
        let xml = format!(
            "<domain type='qemu'>
               <name>{}</name>
               <memory unit='MiB'>64</memory>
               <vcpu>1</vcpu>
               <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
               <features><acpi/></features>
               <devices><graphics type='vnc' autoport='yes' listen='127.0.0.1'/></devices>
             </domain>",
            f.domain
        );
        let xml_path = f.state.path().join("domain.xml");
        std::fs::write(&xml_path, xml).unwrap();
        check(
            "virsh define",
            virsh(&["define", xml_path.to_str().unwrap()]),
        );

        let server_port = free_port(false).to_string();
        let up = Command::new("bash")
            .arg(&f.script)
            .arg(f.state.path())
            .env("STRATA_VBMC_VENV", venv())
            .env("STRATA_VBMC_SERVER_PORT", &server_port)
            .env("STRATA_VBMC_NO_INSTALL", "1")
            .output()
            .unwrap();
        check("scripts/vbmc-up.sh", up);
        let port = f.bmc.port().to_string();
        check(
            "vbmc add",
            f.vbmc(&[
                "add",
                &f.domain,
                "--port",
                &port,
                "--address",
                "127.0.0.1",
                "--username",
                "admin",
                "--password",
                "password",
                "--libvirt-uri",
                URI,
            ]),
        );
        check("vbmc start", f.vbmc(&["start", &f.domain]));
        f
    }

    fn domstate(&self) -> String {
        stdout(&virsh(&["domstate", &self.domain]))
    }

    /// The boot device in the domain's persistent definition (where vbmc writes it).
    fn boot_dev(&self) -> String {
        let xml = stdout(&virsh(&["dumpxml", "--inactive", &self.domain]));
        xml.split("<boot dev='")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or("")
            .to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.vbmc(&["stop", &self.domain]);
        let _ = self.vbmc(&["delete", &self.domain]);
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("--down")
            .arg(self.state.path())
            .env("STRATA_VBMC_VENV", venv())
            .output();
        let _ = virsh(&["destroy", &self.domain]);
        let _ = virsh(&["undefine", &self.domain]);
    }
}

fn available() -> bool {
    let vbmcd = venv().join("bin/vbmcd");
    if !peer_available(
        &format!("VirtualBMC ({})", vbmcd.display()),
        vbmcd.exists(),
        "STRATA_REQUIRE_VBMC",
    ) {
        return false;
    }
    peer_available(
        "libvirtd (qemu:///system)",
        Command::new("virsh")
            .args(["-c", URI, "-q", "version"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "STRATA_REQUIRE_VBMC",
    )
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    }
}

/// Connects once the BMC answers (vbmc starts its BMC process asynchronously).
async fn connect(addr: SocketAddr) -> IpmiClient {
    common::eventually(
        "the VirtualBMC to answer",
        Duration::from_secs(30),
        || async {
            match IpmiClient::connect(addr, "admin", "password", options()).await {
                Ok(c) => Some(c),
                Err(IpmiError::Unreachable { .. } | IpmiError::Timeout { .. }) => None,
                Err(e) => panic!("connecting to VirtualBMC: {e}"),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn our_client_drives_virtualbmc() {
    if !available() {
        return;
    }
    let f = Fixture::up();
    let mut c = connect(f.bmc).await;
    // pyghmi lists and speaks suite 3 only.
    assert_eq!(c.cipher_suite(), CipherSuite::Sha1Aes);
    assert!(!c.power_status().await.unwrap());
    assert_eq!(f.domstate(), "shut off");

    c.chassis_control(ChassisAction::PowerUp).await.unwrap();
    common::eventually("the domain to run", Duration::from_secs(60), || async {
        (f.domstate() == "running").then_some(())
    })
    .await;
    assert!(c.power_status().await.unwrap());

    // vbmc rewrites the domain's persistent definition: <os><boot dev=.../>.
    for (device, libvirt) in [(BootSource::Pxe, "network"), (BootSource::Disk, "hd")] {
        c.set_boot_device(BootDevice::once(device)).await.unwrap();
        assert_eq!(f.boot_dev(), libvirt);
    }
    c.set_boot_device(BootDevice::once(BootSource::Pxe))
        .await
        .unwrap();

    c.chassis_control(ChassisAction::PowerDown).await.unwrap();
    common::eventually("the domain to stop", Duration::from_secs(60), || async {
        (f.domstate() == "shut off").then_some(())
    })
    .await;
    assert!(!c.power_status().await.unwrap());
    // vbmc reads the boot device from the live definition: now the domain is off, the one
    // we set shows.
    assert_eq!(c.boot_device().await.unwrap().device, BootSource::Pxe);
    assert_eq!(c.device_id().await.unwrap().ipmi_version, 0x02);
    c.close().await.unwrap();

    // Without asking for its cipher suites we propose 17; pyghmi answers with suite 3's
    // algorithms, which we accept.
    let blind = ClientOptions {
        query_cipher_suites: false,
        ..options()
    };
    let mut c = IpmiClient::connect(f.bmc, "admin", "password", blind)
        .await
        .unwrap();
    assert_eq!(c.cipher_suite(), CipherSuite::Sha1Aes);
    assert!(!c.power_status().await.unwrap());
    c.close().await.unwrap();

    // A wrong password: pyghmi's RAKP 2 auth code does not match ours.
    let err = IpmiClient::connect(f.bmc, "admin", "wrong", options())
        .await
        .err()
        .unwrap();
    assert!(err.is_auth_failure(), "{err}");
    // An unknown user: pyghmi does not answer RAKP 1 at all (a timeout, not a refusal).
    let quick = ClientOptions {
        retries: 0,
        ..options()
    };
    let err = IpmiClient::connect(f.bmc, "nobody", "password", quick)
        .await
        .err()
        .unwrap();
    assert!(
        err.is_auth_failure() || matches!(err, IpmiError::Timeout { .. }),
        "{err}"
    );
}
