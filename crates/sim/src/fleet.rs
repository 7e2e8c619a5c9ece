//! A fleet: N simulated hosts, one BMC each (a Redfish listener and, unless turned off, an
//! IPMI UDP socket), and the control API, all in the calling tokio runtime — so `strata sim`
//! runs one and `strata up` (or a test) can embed one.

use serde::Serialize;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control;
use crate::error::SimError;
use crate::host::{BmcEndpoint, BootHandler, BootTarget, HostSetup, SimHost, SimHostHandle};
use crate::inventory::Inventory;
use crate::ipmi;
use crate::listener::BmcListener;
use crate::redfish;
use crate::state::StateFile;
use crate::tls;

/// How a fleet is made. The hardware options (`seed`, `cpus`, …) feed
/// [`Inventory::generate`]; the same options give the same machines.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Number of hosts (`sim-0000` …).
    pub hosts: u32,
    /// Varies UUIDs, serial numbers and MACs between fleets.
    pub seed: u64,
    /// Logical CPUs per host.
    pub cpus: u32,
    pub ram_mib: u64,
    /// Size of every disk, GiB; the first disk is a sparse file in the data dir.
    pub disk_gib: u64,
    /// Disks per host (`/dev/sda`, `/dev/sdb`, …).
    pub disks: u32,
    /// NICs per host; the first is the boot NIC.
    pub nics: u32,
    /// The address every BMC (and by default the control API) listens on.
    pub bind: IpAddr,
    /// Host `i`'s BMC listens on `bmc_base_port + i`; 0 gives every BMC an ephemeral port.
    pub bmc_base_port: u16,
    /// Serve IPMI 2.0 over LAN (RMCP+, UDP) for every host too, beside Redfish.
    pub ipmi: bool,
    /// Host `i`'s IPMI listens on UDP `ipmi_base_port + i`; 0 gives each an ephemeral port.
    pub ipmi_base_port: u16,
    /// The control API's address; `None` serves no control API.
    pub control: Option<SocketAddr>,
    /// Serve the BMCs over HTTPS with a certificate from the fleet's own CA.
    pub tls: bool,
    pub username: String,
    pub password: String,
    /// Require credentials (as every real BMC does); `false` serves everything without, like
    /// sushy-tools without an htpasswd file.
    pub auth: bool,
    /// How long power changes take to land, at start (a per-host fault knob after).
    pub power_delay: Duration,
    /// What a host boots from without an override (`Hdd` or `Pxe`).
    pub default_boot: BootTarget,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            hosts: 1,
            seed: 0,
            cpus: 4,
            ram_mib: 8192,
            disk_gib: 10,
            disks: 1,
            nics: 2,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bmc_base_port: 0,
            ipmi: true,
            ipmi_base_port: 0,
            control: None,
            tls: false,
            username: "admin".to_string(),
            password: "password".to_string(),
            auth: true,
            power_delay: Duration::ZERO,
            default_boot: BootTarget::Hdd,
        }
    }
}

/// A running fleet. Stop it with [`Fleet::shutdown`] (dropping it leaves its listeners
/// running until the runtime ends).
pub struct Fleet {
    hosts: Arc<Vec<SimHostHandle>>,
    control: Option<SocketAddr>,
    ca_path: Option<PathBuf>,
    data_dir: PathBuf,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    ipmi: Vec<strata_ipmi::IpmiServer>,
}

/// One line of `<data-dir>/hosts.json`: what a controller needs to enrol the host.
#[derive(Debug, Clone, Serialize)]
pub struct HostEntry {
    pub name: String,
    pub uuid: String,
    /// `http(s)://127.0.0.1:PORT/redfish/v1/Systems/<uuid>`.
    pub redfish: String,
    /// `127.0.0.1:PORT`: the IPMI (lanplus) BMC, if the fleet serves IPMI.
    pub ipmi_address: Option<String>,
    pub username: String,
    pub password: String,
    pub boot_mac: String,
    pub inventory: Inventory,
}

impl Fleet {
    /// Makes the data dir's hosts (restoring the state a previous run left), binds every
    /// BMC and the control API, writes `hosts.json`, and lands any power change that was in
    /// flight at the last stop. Spawns onto the current tokio runtime.
    pub async fn start(
        opts: FleetOptions,
        data_dir: &Path,
        handler: Arc<dyn BootHandler>,
    ) -> Result<Fleet, SimError> {
        for (what, base) in [
            ("Redfish", opts.bmc_base_port),
            ("IPMI", if opts.ipmi { opts.ipmi_base_port } else { 0 }),
        ] {
            if base != 0 && u32::from(base) + opts.hosts > 65536 {
                return Err(SimError::Options(format!(
                    "{} {what} BMCs from port {base} run past port 65535",
                    opts.hosts
                )));
            }
        }
        let ipmi_credentials = strata_ipmi::Credentials::new(&opts.username, &opts.password);
        if opts.ipmi && (opts.username.len() > 16 || opts.password.len() > 20) {
            return Err(SimError::Options(
                "IPMI user names are at most 16 bytes and passwords 20: shorten them or turn IPMI off"
                    .to_string(),
            ));
        }
        if !matches!(opts.default_boot, BootTarget::Hdd | BootTarget::Pxe) {
            return Err(SimError::Options(
                "the default boot device is Hdd or Pxe".to_string(),
            ));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SimError::Io { path, source }
        };
        let disks = data_dir.join("disks");
        std::fs::create_dir_all(&disks).map_err(io(&disks))?;
        let tls = if opts.tls {
            Some(tls::ensure(data_dir, opts.bind)?)
        } else {
            None
        };
        let store = Arc::new(StateFile::open(&data_dir.join("state.json"))?);

        let mut hosts = Vec::with_capacity(opts.hosts as usize);
        for index in 0..opts.hosts {
            let name = format!("sim-{index:04}");
            let inventory = Inventory::generate(index, &opts);
            let disk_path = disks.join(format!("{name}.img"));
            ensure_disk(&disk_path, inventory.disks[0].size_bytes).map_err(io(&disk_path))?;
            let saved = store.saved(&name);
            let setup = HostSetup {
                name,
                index,
                inventory,
                disk_path,
                username: opts.username.clone(),
                password: opts.password.clone(),
                default_boot: opts.default_boot,
                power_delay: opts.power_delay,
                handler: handler.clone(),
                store: store.clone(),
            };
            hosts.push(SimHost::new(setup, saved));
        }

        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut ipmi_servers = Vec::new();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.config.clone()));
        for (i, host) in hosts.iter().enumerate() {
            let port = |base: u16| match base {
                0 => 0,
                base => base + i as u16,
            };
            let ipmi_addr = if opts.ipmi {
                let addr = SocketAddr::new(opts.bind, port(opts.ipmi_base_port));
                let server = ipmi::serve(host, addr, ipmi_credentials.clone()).await?;
                let local = server.local_addr();
                ipmi_servers.push(server);
                Some(local)
            } else {
                None
            };
            let addr = SocketAddr::new(opts.bind, port(opts.bmc_base_port));
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind { addr, source })?;
            let listener = BmcListener::start(tcp, host.clone(), acceptor.clone(), stop_rx.clone())
                .map_err(|source| SimError::Bind { addr, source })?;
            let local = axum::serve::Listener::local_addr(&listener)
                .map_err(|source| SimError::Bind { addr, source })?;
            host.set_bmc(BmcEndpoint {
                base_url: format!("{scheme}://{}", url_host(local)),
                port: local.port(),
                ipmi: ipmi_addr,
            });
            let app = redfish::router(host.clone(), opts.auth);
            tasks.push(spawn_server(listener, app, stop_rx.clone()));
        }

        let hosts = Arc::new(hosts);
        let ca_path = tls.map(|t| t.ca_path);
        let control = match opts.control {
            None => None,
            Some(addr) => {
                let tcp = TcpListener::bind(addr)
                    .await
                    .map_err(|source| SimError::Bind { addr, source })?;
                let local = tcp
                    .local_addr()
                    .map_err(|source| SimError::Bind { addr, source })?;
                let app = control::router(hosts.clone());
                tasks.push(spawn_server(tcp, app, stop_rx.clone()));
                Some(local)
            }
        };

        let fleet = Fleet {
            hosts,
            control,
            ca_path,
            data_dir: data_dir.to_path_buf(),
            stop,
            tasks,
            ipmi: ipmi_servers,
        };
        let hosts_json = data_dir.join("hosts.json");
        let listing = json!({
            "hosts": fleet.entries(),
            "ca_file": fleet.ca_path,
            "control_url": fleet.control.map(|a| format!("http://{}", url_host(a))),
        });
        let raw = serde_json::to_vec_pretty(&listing).unwrap_or_default();
        std::fs::write(&hosts_json, raw).map_err(io(&hosts_json))?;
        for host in fleet.hosts.iter() {
            host.resume_pending();
        }
        Ok(fleet)
    }

    pub fn hosts(&self) -> &[SimHostHandle] {
        &self.hosts
    }

    /// The host called `name` (`sim-0003`).
    pub fn host(&self, name: &str) -> Option<&SimHostHandle> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// Where the control API listens, if it does.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control
    }

    /// The CA certificate (PEM) of an HTTPS fleet.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// What `hosts.json` lists.
    pub fn entries(&self) -> Vec<HostEntry> {
        self.hosts.iter().map(|h| entry(h)).collect()
    }

    /// Stops every listener and waits for them; power changes in flight stay recorded and
    /// land at the next start on this data dir.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for host in self.hosts.iter() {
            host.stop_timers();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        for s in self.ipmi {
            s.shutdown().await;
        }
    }
}

/// The `hosts.json` entry of `host`.
pub(crate) fn entry(host: &SimHost) -> HostEntry {
    let base = host.bmc().map(|b| b.base_url.clone()).unwrap_or_default();
    HostEntry {
        name: host.name().to_string(),
        uuid: host.uuid().to_string(),
        redfish: format!("{base}/redfish/v1/Systems/{}", host.uuid()),
        ipmi_address: host.bmc().and_then(|b| b.ipmi).map(|a| a.to_string()),
        username: host.username().to_string(),
        password: host.password(),
        boot_mac: host.inventory().boot_mac().to_string(),
        inventory: host.inventory().clone(),
    }
}

/// `127.0.0.1:8100` or `[::1]:8100`.
fn url_host(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// The host's disk: a sparse file of the disk's size, made once (its contents are the
/// host's and survive restarts).
fn ensure_disk(path: &Path, size: u64) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let f = std::fs::File::create(path)?;
    f.set_len(size)
}

fn spawn_server<L>(
    listener: L,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "simulator listener");
        }
    })
}
