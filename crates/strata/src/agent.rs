//! `strata agent`: a compute host's node agent as its own process, speaking the node-agent
//! protocol (docs/agent-protocol.md) to a control plane over HTTP with a service user's
//! password. Runs until SIGINT/SIGTERM.

use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `strata agent`.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The control plane's base URL (`http://controller:8440`)
    #[arg(long)]
    pub server: String,
    /// This compute host's name [default: the machine's host name]
    #[arg(long)]
    pub host: Option<String>,
    /// The address guests' traffic reaches this host on (shown as `host_ip`)
    #[arg(long, default_value = "127.0.0.1")]
    pub host_ip: String,
    /// The user the agent authenticates as (needs the `admin` or `service` role)
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// The project the agent's tokens are scoped to
    #[arg(long, default_value = "admin")]
    pub project: String,
    /// A file holding the user's password (else the STRATA_AGENT_PASSWORD variable)
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// The hypervisor driver: `fake` (in memory) or `libvirt` (QEMU guests through libvirt)
    #[arg(long, value_parser = ["fake", "libvirt"], default_value = "fake")]
    pub driver: String,
    /// libvirt: the connection URI
    #[arg(long, default_value = "qemu:///system")]
    pub libvirt_uri: String,
    /// libvirt: `kvm`, `qemu` (TCG emulation) or `auto` (KVM on bare metal with /dev/kvm,
    /// else TCG: nested KVM is not trusted)
    #[arg(long, default_value = "auto")]
    pub virt_type: String,
    /// libvirt: where guests' disks, config drives and console logs live, and the image cache
    #[arg(long, default_value = "/var/lib/strata/instances")]
    pub instances_path: PathBuf,
    /// libvirt: seconds a guest gets to power off cleanly before it is destroyed
    #[arg(long, default_value_t = 60)]
    pub shutdown_timeout: u64,
    /// Where the agent stages snapshots before their upload [default: <instances-path>/snapshots
    /// for libvirt, the system's temp dir otherwise]
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// vCPUs the fake driver offers
    #[arg(long, default_value_t = 8)]
    pub vcpus: i64,
    /// Memory (MiB) the fake driver offers
    #[arg(long, default_value_t = 16384)]
    pub memory_mb: i64,
    /// Disk (GB) the fake driver offers
    #[arg(long, default_value_t = 100)]
    pub disk_gb: i64,
    /// Where the fake driver keeps its guests, so that they outlive a restart of the agent
    /// (as a real hypervisor's do) [default: in memory only]
    #[arg(long)]
    pub state_file: Option<PathBuf>,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let password = match &args.password_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        None => std::env::var("STRATA_AGENT_PASSWORD")
            .context("no password: give --password-file or set STRATA_AGENT_PASSWORD")?,
    };
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| strata_core::config::NetworkConfig::default().agent_host());
    let server = Arc::new(strata_agent_api::HttpControlPlane::with_password(
        &args.server,
        &args.user,
        &password,
        &args.project,
    ));
    let (hv, work_dir): (Arc<dyn strata_agent::Hypervisor>, Option<PathBuf>) = if args.driver
        == "libvirt"
    {
        use strata_agent::libvirt::{LibvirtConfig, LibvirtDriver, VirtType};
        let virt = VirtType::parse(&args.virt_type).map_err(anyhow::Error::msg)?;
        let mut cfg = LibvirtConfig::new(&args.instances_path, virt);
        cfg.uri = args.libvirt_uri.clone();
        cfg.shutdown_timeout = std::time::Duration::from_secs(args.shutdown_timeout);
        tracing::info!(uri = %cfg.uri, virt_type = virt.domain_type(),
                instances = %args.instances_path.display(), "libvirt driver");
        let cp: Arc<dyn strata_agent_api::ControlPlane> = server.clone();
        (
            Arc::new(LibvirtDriver::new(cfg, cp)),
            Some(args.instances_path.join("snapshots")),
        )
    } else {
        let mut hv = strata_agent::FakeHypervisor::new(args.vcpus, args.memory_mb, args.disk_gb);
        if let Some(p) = &args.state_file {
            hv = hv
                .with_state_file(p)
                .with_context(|| format!("reading the fake hypervisor's state {}", p.display()))?;
        }
        (Arc::new(hv), None)
    };
    let mut agent = strata_agent::NodeAgent::new(host.clone(), args.host_ip.clone(), server, hv);
    if let Some(d) = args.work_dir.clone().or(work_dir) {
        agent = agent.with_work_dir(d);
    }
    let agent = Arc::new(agent);
    tracing::info!(%host, driver = %args.driver, server = %args.server, "node agent starting");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(stop_rx));
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
    tracing::info!("node agent stopping");
    let _ = stop_tx.send(true);
    let _ = task.await;
    Ok(())
}
