//! `strata sim`: a fleet of simulated bare-metal hosts with Redfish and IPMI BMCs on loopback
//! (crates/sim, docs/simulator.md). Runs until SIGINT/SIGTERM. Also the fleet `strata up
//! --sim-hosts N` embeds ([`start_embedded`]).

use anyhow::Context;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use strata_sim::{BootTarget, Fleet, FleetOptions};

/// Arguments of `strata sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Number of simulated hosts (`sim-0000`, `sim-0001`, …)
    #[arg(long, default_value_t = 1)]
    pub hosts: u32,
    /// Where the hosts' state, disks, `hosts.json` and TLS files live (kept across restarts)
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The address the BMCs listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Host i's BMC listens on this port + i (0: an ephemeral port each)
    #[arg(long, default_value_t = 8100)]
    pub bmc_base_port: u16,
    /// Host i's IPMI BMC (lanplus, UDP) listens on this port + i (0: an ephemeral port each)
    #[arg(long, default_value_t = 6230)]
    pub ipmi_base_port: u16,
    /// Serve Redfish only, no IPMI
    #[arg(long)]
    pub no_ipmi: bool,
    /// The control API's address (`/sim/v1`)
    #[arg(long, default_value = "127.0.0.1:8099")]
    pub control: SocketAddr,
    /// Serve the BMCs over HTTPS (certificate from a CA made in `<data-dir>/tls/ca.pem`)
    #[arg(long)]
    pub tls: bool,
    /// The BMCs' user name
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// The BMCs' password
    #[arg(long, default_value = "password")]
    pub password: String,
    /// Serve Redfish without credentials (as sushy-tools does by default)
    #[arg(long)]
    pub no_auth: bool,
    /// Logical CPUs per host
    #[arg(long, default_value_t = 4)]
    pub cpus: u32,
    /// Memory per host (MiB)
    #[arg(long, default_value_t = 8192)]
    pub ram_mib: u64,
    /// Size of each disk (GiB); the first is a sparse file in the data dir
    #[arg(long, default_value_t = 10)]
    pub disk_gib: u64,
    /// Disks per host
    #[arg(long, default_value_t = 1)]
    pub disks: u32,
    /// NICs per host (the first is the boot NIC)
    #[arg(long, default_value_t = 2)]
    pub nics: u32,
    /// Varies UUIDs, serial numbers and MACs between fleets
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How long power changes take to land (milliseconds)
    #[arg(long, default_value_t = 0)]
    pub power_delay_ms: u64,
    /// What hosts boot from without a boot override
    #[arg(long, value_parser = ["Hdd", "Pxe"], default_value = "Hdd")]
    pub default_boot: String,
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let opts = FleetOptions {
        hosts: args.hosts,
        seed: args.seed,
        cpus: args.cpus,
        ram_mib: args.ram_mib,
        disk_gib: args.disk_gib,
        disks: args.disks,
        nics: args.nics,
        bind: args.bind,
        bmc_base_port: args.bmc_base_port,
        ipmi: !args.no_ipmi,
        ipmi_base_port: args.ipmi_base_port,
        control: Some(args.control),
        tls: args.tls,
        username: args.username,
        password: args.password,
        auth: !args.no_auth,
        power_delay: Duration::from_millis(args.power_delay_ms),
        default_boot: BootTarget::parse(&args.default_boot).unwrap_or(BootTarget::Hdd),
    };
    // Before the listeners: a signal during start-up then stops the fleet cleanly.
    let (mut int, mut term) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        )
    };
    let fleet = Fleet::start(opts, &args.data_dir, Arc::new(strata_sim::LogBoots))
        .await
        .with_context(|| format!("starting the simulator in {}", args.data_dir.display()))?;
    for e in fleet.entries() {
        match &e.ipmi_address {
            Some(ipmi) => println!(
                "{}  {}  ipmi {ipmi}  boot MAC {}",
                e.name, e.redfish, e.boot_mac
            ),
            None => println!("{}  {}  boot MAC {}", e.name, e.redfish, e.boot_mac),
        }
    }
    if let Some(ca) = fleet.ca_path() {
        println!("CA certificate: {}", ca.display());
    }
    if let Some(addr) = fleet.control_addr() {
        println!("control API: http://{addr}/sim/v1/hosts");
    }
    println!("hosts: {}", fleet.data_dir().join("hosts.json").display());
    tracing::info!(hosts = fleet.hosts().len(), "simulator serving");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("simulator stopping");
    fleet.shutdown().await;
    Ok(())
}

/// The fleet of `strata up --sim-hosts N`: `hosts` simulated hosts with their state in
/// `<data_dir>/sim`, every BMC (Redfish, IPMI) and the control API on an ephemeral loopback
/// port, so that it never collides with a `strata sim` on its default ports; `hosts.json` in
/// that directory says where each one is. The caller stops it with [`Fleet::shutdown`].
pub async fn start_embedded(data_dir: &Path, hosts: u32) -> anyhow::Result<Fleet> {
    let dir = data_dir.join("sim");
    let opts = FleetOptions {
        hosts,
        control: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
        ..FleetOptions::default()
    };
    let fleet = Fleet::start(opts, &dir, Arc::new(strata_sim::LogBoots))
        .await
        .with_context(|| format!("starting the simulated hosts in {}", dir.display()))?;
    let listing = dir.join("hosts.json");
    tracing::info!(hosts, listing = %listing.display(), "simulated hosts serving");
    println!("simulated hosts: {}", listing.display());
    Ok(fleet)
}
