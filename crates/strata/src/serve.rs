//! The `up`, `server` and `db migrate` roles: configuration, the data dir, the store, the
//! services on one listener, and graceful shutdown.

use crate::clouds;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_core::config::Config;
use strata_identity::{CatalogService, Identity};
use strata_store::Store;
use tokio::net::TcpListener;

/// The services this build serves, as the catalog lists them.
pub const SERVICES: &[CatalogService] = &[
    CatalogService {
        kind: "identity",
        name: "keystone",
        path: "/identity",
    },
    CatalogService {
        kind: "image",
        name: "glance",
        path: "/image",
    },
    CatalogService {
        kind: "block-storage",
        name: "cinder",
        path: "/volume/v3/$(project_id)s",
    },
    CatalogService {
        kind: "volumev3",
        name: "cinderv3",
        path: "/volume/v3/$(project_id)s",
    },
    CatalogService {
        kind: "network",
        name: "neutron",
        path: "/network",
    },
    CatalogService {
        kind: "compute",
        name: "nova",
        path: "/compute/v2.1",
    },
    CatalogService {
        kind: "placement",
        name: "placement",
        path: "/placement",
    },
    CatalogService {
        kind: "baremetal",
        name: "ironic",
        path: "/baremetal",
    },
];

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Where the database, keys and clouds.yaml live [default: $XDG_DATA_HOME/strata or
    /// ~/.local/share/strata].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8440")]
    pub listen: String,
    /// Configuration file (TOML); flags win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Simulated compute hosts (`fake-1` …) run in process with the fake hypervisor: each
    /// registers as a hypervisor with 8 VCPUs, 16 GiB and 100 GB.
    #[arg(long, default_value_t = 0)]
    pub fake_hosts: u32,
    /// Simulated bare-metal hosts (`sim-0000` …) with Redfish and IPMI BMCs on ephemeral
    /// loopback ports, as `strata sim` serves them; state in <data-dir>/sim, where hosts.json
    /// lists their BMCs (docs/simulator.md).
    #[arg(long, default_value_t = 0)]
    pub sim_hosts: u32,
    /// The driver of the all-in-one's own compute host: `fake` (in memory) or `libvirt` (real
    /// QEMU guests through libvirt on this machine; docs/operator-guide.md).
    #[arg(long, value_parser = ["fake", "libvirt"], default_value = "fake")]
    pub hypervisor: String,
    /// libvirt: `kvm`, `qemu` (TCG) or `auto`.
    #[arg(long, default_value = "auto")]
    pub virt_type: String,
    /// libvirt: guests' disks and the image cache [default: <data-dir>/instances].
    #[arg(long)]
    pub instances_path: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding `server.listen`.
    #[arg(long)]
    pub listen: Option<String>,
    /// Database URL, overriding `database.url`.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); `STRATA_LOG_FORMAT=json` for JSON
/// lines.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("STRATA_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(path, std::env::vars()).context("loading configuration")
}

fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("strata");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/strata"),
        None => PathBuf::from("strata-data"),
    }
}

/// Holds the data dir's lock file for the life of the process.
struct DataDirLock {
    _file: std::fs::File,
}

fn lock_data_dir(dir: &Path) -> anyhow::Result<DataDirLock> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    let path = dir.join("strata.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "the data dir {} is in use by another strata process (it holds {}); stop it or use another --data-dir",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut cfg = load_config(args.config.as_deref())?;
    let dir = args
        .data_dir
        .or(cfg.server.data_dir.clone())
        .unwrap_or_else(default_data_dir);
    let _lock = lock_data_dir(&dir)?;
    let dir = dir.canonicalize().unwrap_or(dir);
    cfg.server.listen = args.listen;
    cfg.server.data_dir = Some(dir.clone());
    // An all-in-one often has one compute host: a resize may stay on it (as in DevStack).
    cfg.compute.allow_resize_to_same_host.get_or_insert(true);
    // The all-in-one syncs bare-metal power more often than Ironic's 120 s default.
    cfg.baremetal.sync_power_state_interval.get_or_insert(60);
    if cfg.database.url.is_empty() {
        cfg.database.url = format!("sqlite://{}", dir.join("strata.db").display());
    }
    let own_libvirt = if args.hypervisor == "libvirt" {
        use strata_agent::libvirt::{LibvirtConfig, VirtType};
        let virt = VirtType::parse(&args.virt_type).map_err(anyhow::Error::msg)?;
        let path = args
            .instances_path
            .clone()
            .unwrap_or_else(|| dir.join("instances"));
        Some(LibvirtConfig::new(path, virt))
    } else {
        None
    };
    let clouds_path = dir.join("clouds.yaml");
    let sim = match args.sim_hosts {
        0 => None,
        n => Some(crate::sim::start_embedded(&dir, n).await?),
    };
    let served = run(cfg, true, args.fake_hosts, own_libvirt, |url, boot| {
        let auth_url = format!("{url}/identity");
        match boot {
            Some(b) => clouds::write(
                &clouds_path,
                &auth_url,
                "RegionOne",
                &b.admin_password,
                &b.demo_password,
            )?,
            None if clouds_path.exists() => clouds::update_url(&clouds_path, &auth_url)?,
            None => tracing::warn!(
                "{} is missing and the passwords are not recoverable; reset them with the API",
                clouds_path.display()
            ),
        }
        println!("Strata is up on {url}");
        println!("export OS_CLIENT_CONFIG_FILE={}", clouds_path.display());
        println!("openstack --os-cloud strata token issue");
        Ok(())
    })
    .await;
    if let Some(fleet) = sim {
        fleet.shutdown().await;
    }
    served
}

pub async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let mut cfg = load_config(args.config.as_deref())?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(u) = args.database_url {
        cfg.database.url = u;
    }
    if cfg.database.url.is_empty() {
        bail!("database.url is not set (sqlite://PATH or postgres://…); see docs/configuration.md");
    }
    let data_dir = cfg.server.data_dir.clone();
    // TODO-correctness: replicas sharing a database need a lease-guarded recovery of
    // interrupted uploads; until then only `up` recovers them.
    run(cfg, false, 0, None, move |url, boot| {
        if let Some(b) = boot {
            // First start of a fresh database: hand the generated admin password to the
            // operator once, in a private file when there is a data dir, never in the logs.
            match &data_dir {
                Some(d) => {
                    let p = d.join("admin-password");
                    write_private(&p, &b.admin_password)?;
                    println!("bootstrapped: the admin password is in {}", p.display());
                }
                None => println!("bootstrapped: admin password: {}", b.admin_password),
            }
        }
        println!("Strata server is up on {url}");
        Ok(())
    })
    .await
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub async fn db_migrate(config: Option<PathBuf>, url: Option<String>) -> anyhow::Result<()> {
    let mut cfg = load_config(config.as_deref())?;
    if let Some(u) = url {
        cfg.database.url = u;
    }
    if cfg.database.url.is_empty() {
        bail!("database.url is not set; pass --database-url or a --config file");
    }
    let store = Store::connect(&cfg.database.url, 2).await?;
    let applied = store.migrate().await?;
    println!(
        "applied {} migration(s); schema at {:?}",
        applied.len(),
        store.applied_migrations().await?.last()
    );
    store.close().await;
    Ok(())
}

/// Starts the control plane on `cfg` and serves until SIGINT/SIGTERM. `ready` runs once the
/// listener is bound and bootstrap is done, with the base URL and what bootstrap created.
/// `sole_writer`: this process is the only one using the database (`strata up` holds the data
/// dir's lock), so work that a crash interrupted can be recovered at start.
async fn run(
    cfg: Config,
    sole_writer: bool,
    fake_hosts: u32,
    own_libvirt: Option<strata_agent::libvirt::LibvirtConfig>,
    ready: impl FnOnce(&str, Option<strata_identity::Bootstrap>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // Before anything else: a signal during start-up then shuts down gracefully once serving.
    let signals = ShutdownSignals::install()?;
    let store = Store::connect(&cfg.database.url, cfg.database.max_connections)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                strata_store::redact(&cfg.database.url)
            )
        })?;
    store.migrate().await.context("migrating the database")?;
    // PostgreSQL: hear other replicas' commits at once rather than at the next poll.
    let notifications = store.listen();
    let listener = TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    let base_url = cfg.server.base_url(&addr);
    let identity = Identity::new(store.clone(), &cfg, &base_url).await?;
    let password = Some(cfg.identity.bootstrap_password.clone()).filter(|p| !p.is_empty());
    let boot = identity
        .bootstrap(SERVICES, &cfg.server.region, password)
        .await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let background = tokio::spawn(identity.clone().run_background(stop_rx.clone()));
    let data: Arc<dyn strata_image::ImageStore> = match cfg
        .image
        .store_dir(cfg.server.data_dir.as_deref())
    {
        Some(dir) => Arc::new(
            strata_image::LocalStore::new(&dir)
                .with_context(|| format!("opening the image store {}", dir.display()))?,
        ),
        None => {
            tracing::warn!("neither image.store_dir nor server.data_dir is set: image data uploads and downloads are refused");
            Arc::new(strata_image::NoStore)
        }
    };
    let image = strata_image::ImageService::new(
        store.clone(),
        Arc::new(identity.clone()),
        &base_url,
        data,
        cfg.image.max_image_bytes,
    );
    if sole_writer {
        image
            .recover()
            .await
            .context("recovering interrupted image uploads")?;
    }
    let backend: Option<Arc<dyn strata_volume::BlockBackend>> = match cfg
        .volume
        .store_dir(cfg.server.data_dir.as_deref())
    {
        Some(dir) => Some(Arc::new(
            strata_volume::LocalBackend::new(&dir, cfg.volume.qemu_img.clone())
                .with_context(|| format!("opening the volume store {}", dir.display()))?,
        )),
        None => {
            tracing::warn!("neither volume.store_dir nor server.data_dir is set: volume data cannot be created");
            None
        }
    };
    let volume = strata_volume::VolumeService::new(
        store.clone(),
        Arc::new(identity.clone()),
        &base_url,
        backend,
        Arc::new(image.clone()),
        cfg.volume.clone(),
    );
    volume
        .init()
        .await
        .context("creating the default volume type")?;
    if sole_writer {
        volume
            .recover()
            .await
            .context("recovering interrupted volume work")?;
    }
    let network = strata_network::NetworkService::new(
        store.clone(),
        Arc::new(identity.clone()),
        &base_url,
        cfg.network.clone(),
    );
    if boot.is_some() {
        bootstrap_network(&store, &network).await;
    }
    let mut agents = start_network_agents(&network, sole_writer, &stop_rx);
    let placement = strata_placement::PlacementService::new(
        store.clone(),
        Arc::new(identity.clone()),
        &base_url,
    );
    let compute = strata_compute::ComputeService::new(
        store.clone(),
        Arc::new(identity.clone()),
        &base_url,
        cfg.compute.clone(),
    )
    .with_placement(placement.clone())
    .with_peers(strata_compute::Peers {
        network: Some(network.router()),
        image: Some(image.router()),
        volume: Some(volume.router()),
    });
    compute
        .init()
        .await
        .context("seeding the compute service")?;
    agents.push(compute.spawn_controller(stop_rx.clone()));
    let baremetal = strata_baremetal::BaremetalService::new(
        store.clone(),
        Arc::new(identity.clone()),
        &base_url,
        cfg.baremetal.clone(),
    );
    agents.push(baremetal.spawn_conductor(stop_rx.clone()));
    // The all-in-one is a compute host itself (the fake driver, named as the network host
    // agent's host so that its guests' ports go ACTIVE), plus any simulated hosts asked for.
    let mut hosts: Vec<String> = Vec::new();
    if sole_writer {
        hosts.push(network.config().agent_host());
    }
    hosts.extend((1..=fake_hosts).map(|i| format!("fake-{i}")));
    for (i, host) in hosts.into_iter().enumerate() {
        let server = Arc::new(strata_compute::agent::LocalControlPlane(compute.clone()));
        let agent = match (&own_libvirt, i == 0 && sole_writer) {
            (Some(cfg), true) => {
                tracing::info!(virt_type = cfg.virt_type.domain_type(),
                    instances = %cfg.instances_path.display(), "own host: libvirt driver");
                let hv = Arc::new(strata_agent::libvirt::LibvirtDriver::new(
                    cfg.clone(),
                    server.clone(),
                ));
                strata_agent::NodeAgent::new(host, "127.0.0.1", server, hv)
                    .with_work_dir(cfg.instances_path.join("snapshots"))
            }
            _ => {
                let hv = Arc::new(strata_agent::FakeHypervisor::new(8, 16384, 100));
                strata_agent::NodeAgent::new(host, "127.0.0.1", server, hv)
            }
        };
        agents.push(tokio::spawn(Arc::new(agent).run(stop_rx.clone())));
    }
    let app = strata_api::assemble(
        vec![
            ("/identity", identity.router()),
            ("/image", image.router()),
            ("/volume", volume.router()),
            ("/network", network.router()),
            ("/placement", placement.router()),
            ("/compute", compute.router()),
            ("/agent", compute.agent_router()),
            ("/baremetal", baremetal.router()),
        ],
        cfg.http.max_body_bytes,
    );
    ready(&base_url, boot)?;
    tracing::info!(%addr, "serving");
    let stop_tx = Arc::new(stop_tx);
    let signal_tx = stop_tx.clone();
    let mut shutdown_rx = stop_rx.clone();
    tokio::spawn(async move {
        signals.recv().await;
        tracing::info!("shutting down");
        let _ = signal_tx.send(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown_rx.wait_for(|s| *s).await;
        })
        .await
        .context("serving HTTP")?;
    let _ = stop_tx.send(true);
    let _ = background.await;
    for a in agents {
        let _ = a.await;
    }
    if let Some(l) = notifications {
        l.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT and SIGTERM, registered at once (not when first polled), so a signal that arrives
/// as soon as the listener answers is never met by the default action.
struct ShutdownSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<ShutdownSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn recv(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// The network data plane's reconcilers on the `noop` driver: the router agent, and for the
/// all-in-one (`up`) the host agent of this machine, which plugs the ports bound to it.
/// Replicas (`server`) each run a router agent: its passes are idempotent, so two replicas
/// wiring the same router do no harm; compute hosts run their own host agents.
fn start_network_agents(
    network: &strata_network::NetworkService,
    all_in_one: bool,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use strata_network::dataplane::{HostAgent, NoopDataPlane, RouterAgent};
    let plane = Arc::new(NoopDataPlane::new());
    let mut tasks = vec![tokio::spawn(
        Arc::new(RouterAgent::new(network.clone(), plane.clone())).run(stop.clone()),
    )];
    if all_in_one {
        let host = network.config().agent_host();
        tracing::info!(%host, driver = "noop", "network host agent");
        tasks.push(tokio::spawn(
            Arc::new(HostAgent::new(network.clone(), host, plane)).run(stop.clone()),
        ));
    }
    tasks
}

/// DevStack's starting network topology (`public`, `private`, `router1`), made once, when the
/// identity was bootstrapped fresh on this start: like `stack.sh`, it seeds a new cloud and
/// never recreates what an operator later deleted. A failure (say, the flat physical network
/// already taken) is logged, not fatal: the cloud serves without the sample topology.
async fn bootstrap_network(store: &strata_store::Store, network: &strata_network::NetworkService) {
    let project = |name: &'static str| async move {
        strata_identity::db::projects::get_by_name(store, "default", name)
            .await
            .ok()
            .flatten()
            .map(|p| p.id)
    };
    let (Some(admin), Some(demo)) = (project("admin").await, project("demo").await) else {
        tracing::warn!("network bootstrap skipped: projects admin and demo not found");
        return;
    };
    match network.bootstrap(&admin, &demo).await {
        Ok(true) => tracing::info!("network bootstrap: created public, private and router1"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "network bootstrap failed"),
    }
}
