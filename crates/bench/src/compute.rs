//! `strata bench compute`: server boots to ACTIVE at concurrency, the detailed server list,
//! one scheduling decision among many hosts, and the control plane's memory at scale.
//!
//! It starts its own `strata up` twice, each on a fresh data directory (as `strata bench
//! network` does), logs in as the admin from the `clouds.yaml` the server writes and lifts the
//! admin project's compute and port quotas. Everything goes through the public APIs.
//!
//! **Boots** (`strata up --fake-hosts --hosts`, the fake hypervisor): a 1-vCPU/64 MiB/1 GiB
//! flavor, a 1 KiB public image and a network with an IPv4 /16; then `--servers` `POST
//! /servers` (one port each on that network) by `--concurrency` workers. The clock runs from
//! the first POST until `GET /servers?status=BUILD` is empty; the run fails unless every server
//! is then ACTIVE, the hypervisors' `running_vms` add up to the servers and each server holds
//! exactly one port. Then 50 sequential `GET /servers/detail` (all servers, one page), and
//! every server deleted by the same workers, timed until `GET /servers` is empty; the ports
//! must be gone too.
//!
//! **Scale** (`strata up --fake-hosts --scale-hosts`; skipped with `--scale-hosts 0`): once all
//! hosts are registered, `--sched-samples` servers are booted one at a time; each one's
//! scheduling decision (host states, allocation candidates, filters, weighers and the
//! placement claim) is the duration of its `conductor_schedule_and_build_instances` event in
//! `os-instance-actions`. `GET /placement/allocation_candidates` for that flavor is timed too.
//! Then servers without networks (microversion 2.37 `"networks": "none"`) are created in
//! multi-create batches until `--scale-servers` exist and are ACTIVE, and the server's
//! resident memory is read (and its peak sampled throughout).
//!
//! The data directories are removed afterwards unless `--keep`; the servers are stopped with
//! SIGTERM whatever happens.

use crate::procfs::{kib_to_mib, read_cpu_secs, read_vmrss_kib, RssSampler};
use crate::report::{opt, HostInfo};
use crate::storage::{stop, str_at, Server};
use crate::Latency;
use anyhow::{bail, Context};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the compute API lives under the server's base URL.
const NOVA: &str = "/compute/v2.1";
/// Sequential `GET /servers/detail` timed.
const DETAIL_GETS: usize = 50;
/// Sequential `GET /allocation_candidates` timed.
const CANDIDATE_GETS: usize = 20;
/// How long the servers may take to reach ACTIVE, or to go, before the run fails.
const SETTLE_DEADLINE: Duration = Duration::from_secs(1800);
/// How long the hosts may take to register.
const HOSTS_DEADLINE: Duration = Duration::from_secs(1800);

/// Arguments of `strata bench compute`.
#[derive(clap::Args, Debug, Clone)]
pub struct ComputeBenchArgs {
    /// The strata binary to start [default: this executable]
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Data directory for the started servers, empty or absent (removed afterwards)
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address the started servers listen on; nothing else may be listening there
    #[arg(long, default_value = "127.0.0.1:18443")]
    pub listen: String,
    /// Fake hypervisors for the boot run
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub hosts: u64,
    /// Servers booted (timed) by the concurrent workers
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub servers: u64,
    /// Concurrent workers booting and deleting
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Fake hypervisors for the scale run (0 skips it)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub scale_hosts: u64,
    /// Servers on the scale run's hosts when its memory is read
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub scale_servers: u64,
    /// Servers per multi-create request while filling the scale run
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,
    /// Scheduling decisions sampled on the scale run (sequential boots)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub sched_samples: u64,
    /// Keep the data directories afterwards
    #[arg(long)]
    pub keep: bool,
    /// Print JSON instead of a Markdown table
    #[arg(long)]
    pub json: bool,
}

/// The boot run.
#[derive(Debug, Clone, Serialize)]
pub struct BootResult {
    pub hosts: usize,
    pub servers: usize,
    pub concurrency: usize,
    /// First POST until no server is in BUILD.
    pub secs_to_active: f64,
    pub boots_per_s: f64,
    pub post: Latency,
    /// The server process's CPU time during the boots.
    pub server_cpu_secs: Option<f64>,
    pub detail: Latency,
    pub detail_bytes: usize,
    pub delete_secs: f64,
    pub deletes_per_s: f64,
    pub delete_latency: Latency,
    /// Resident memory of the server after the boots, MiB.
    pub rss_mib: Option<f64>,
}

/// The scale run.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleResult {
    pub hosts: usize,
    /// Seconds until every host had registered.
    pub register_secs: f64,
    /// `conductor_schedule_and_build_instances` of sequential boots.
    pub schedule: Latency,
    pub candidates: Latency,
    pub candidates_returned: usize,
    pub servers: usize,
    pub fill_secs: f64,
    pub fill_per_s: f64,
    pub rss_mib: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub detail_first_page: Option<Latency>,
}

/// Everything one `strata bench compute` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ComputeReport {
    pub host: HostInfo,
    pub bin: String,
    pub listen: String,
    pub boot: BootResult,
    pub scale: Option<ScaleResult>,
}

impl ComputeReport {
    /// The report as Markdown: a header line, what was run, and the tables.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.host.header("strata bench compute"));
        let _ = writeln!(s);
        let b = &self.boot;
        let _ = writeln!(
            s,
            "`strata up --fake-hosts {}` on a fresh data directory (SQLite) · admin token · one \
             reqwest client on the same machine · 1 vCPU / 64 MiB / 1 GiB flavor, one port per \
             server on a /16 · latencies nearest-rank.",
            b.hosts
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| boots on {} fake hosts | servers | workers | s to all ACTIVE | boots/s | `POST /servers` p50 ms | p99 ms | max ms | server CPU s | RSS MiB |",
            b.hosts
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| concurrent boots | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
            b.servers,
            b.concurrency,
            b.secs_to_active,
            b.boots_per_s,
            b.post.p50_ms,
            b.post.p99_ms,
            b.post.max_ms,
            opt(b.server_cpu_secs, 1),
            opt(b.rss_mib, 0)
        );
        let _ = writeln!(
            s,
            "| delete all | {} | {} | {:.2} | {:.1} (deletes/s) | {:.1} | {:.1} | {:.1} | - | - |",
            b.servers,
            b.concurrency,
            b.delete_secs,
            b.deletes_per_s,
            b.delete_latency.p50_ms,
            b.delete_latency.p99_ms,
            b.delete_latency.max_ms
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "`GET /servers/detail` with {} servers, {DETAIL_GETS} sequential: p50 {:.1} ms, p95 \
             {:.1} ms, max {:.1} ms, {} bytes. Verified: every server ACTIVE, the hypervisors' \
             `running_vms` add up to them, one port each; after the deletes no server and no \
             port is left.",
            b.servers, b.detail.p50_ms, b.detail.p95_ms, b.detail.max_ms, b.detail_bytes
        );
        if let Some(c) = &self.scale {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "| scale: {} fake hosts | p50 ms | p95 ms | p99 ms | max ms | samples |",
                c.hosts
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| one scheduling decision (`conductor_schedule_and_build_instances`) | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                c.schedule.p50_ms, c.schedule.p95_ms, c.schedule.p99_ms, c.schedule.max_ms, c.schedule.count
            );
            let _ = writeln!(
                s,
                "| `GET /placement/allocation_candidates` ({} returned) | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                c.candidates_returned,
                c.candidates.p50_ms,
                c.candidates.p95_ms,
                c.candidates.p99_ms,
                c.candidates.max_ms,
                c.candidates.count
            );
            if let Some(d) = &c.detail_first_page {
                let _ = writeln!(
                    s,
                    "| `GET /servers/detail` (first page of 1,000) with {} servers | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                    c.servers, d.p50_ms, d.p95_ms, d.p99_ms, d.max_ms, d.count
                );
            }
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "All {} hosts registered in {:.1} s. {} servers (no networks, multi-create) \
                 filled in {:.1} s ({:.1} servers/s); control-plane RSS then: {} MiB (peak \
                 during the run {} MiB).",
                c.hosts,
                c.register_secs,
                c.servers,
                c.fill_secs,
                c.fill_per_s,
                opt(c.rss_mib, 0),
                opt(c.peak_rss_mib, 0)
            );
        }
        s
    }
}

/// Runs the compute benchmark and prints its report (Markdown, or JSON with `--json`).
pub async fn run_compute(args: ComputeBenchArgs) -> anyhow::Result<()> {
    let report = measure_compute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// Runs the compute benchmark and returns what it measured, printing only progress (stderr).
pub async fn measure_compute(args: &ComputeBenchArgs) -> anyhow::Result<ComputeReport> {
    let bin = crate::storage::strata_bin(args.bin.as_ref())?;
    crate::storage::require_empty(&args.data_dir)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;
    let host = HostInfo::collect();
    let result = async {
        let boot = with_server(args, &bin, &data_dir.join("boot"), args.hosts, |srv| {
            boot_run(args, srv)
        })
        .await?;
        let scale = if args.scale_hosts > 0 {
            Some(
                with_server(
                    args,
                    &bin,
                    &data_dir.join("scale"),
                    args.scale_hosts,
                    |srv| scale_run(args, srv),
                )
                .await?,
            )
        } else {
            None
        };
        anyhow::Ok((boot, scale))
    }
    .await;
    if args.keep {
        eprintln!("compute: kept {}", data_dir.display());
    } else if let Err(e) = std::fs::remove_dir_all(&data_dir) {
        eprintln!("compute: warning: removing {}: {e}", data_dir.display());
    }
    let (boot, scale) = result?;
    Ok(ComputeReport {
        host,
        bin: bin.display().to_string(),
        listen: args.listen.clone(),
        boot,
        scale,
    })
}

/// Starts `strata up --fake-hosts hosts` on `dir`, logs in, runs `f`, stops the server.
async fn with_server<T, F, Fut>(
    args: &ComputeBenchArgs,
    bin: &Path,
    dir: &Path,
    hosts: u64,
    f: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    if tokio::net::TcpStream::connect(&args.listen).await.is_ok() {
        bail!(
            "something already listens on {}; stop it or choose another --listen",
            args.listen
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!(
        "compute: starting {} up --fake-hosts {hosts}",
        bin.display()
    );
    let mut child = tokio::process::Command::new(bin)
        .arg("up")
        .arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(&args.listen)
        .arg("--fake-hosts")
        .arg(hosts.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let pid = child.id().context("the server has no pid")?;
    let server = Server {
        client: reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(1024)
            .build()
            .context("building the HTTP client")?,
        base: format!("http://{}", args.listen),
        token: String::new(),
        project: String::new(),
        pid,
    };
    let measured = match server.login(&mut child, dir).await {
        Ok(server) => f(Arc::new(server)).await,
        Err(e) => Err(e),
    };
    stop(&mut child).await?;
    measured
}

async fn nova(
    srv: &Server,
    method: Method,
    path: &str,
    body: Option<Value>,
    expect: StatusCode,
) -> anyhow::Result<Value> {
    srv.call(method, &format!("{NOVA}{path}"), body, expect)
        .await
}

/// A request with a compute microversion; the status and body.
async fn nova_mv(
    srv: &Server,
    method: Method,
    path: &str,
    mv: &str,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value, reqwest::header::HeaderMap)> {
    let mut req = srv
        .client
        .request(method.clone(), format!("{}{NOVA}{path}", srv.base))
        .header(crate::keystone::AUTH_TOKEN, &srv.token)
        .header("OpenStack-API-Version", format!("compute {mv}"));
    if let Some(b) = &body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{method} {path}"))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))?
    };
    Ok((status, v, headers))
}

/// What every run sets up: quotas lifted, a flavor, an image and (optionally) a network.
struct Fixture {
    flavor: String,
    image: String,
    network: Option<String>,
}

async fn fixture(srv: &Server, with_network: bool) -> anyhow::Result<Fixture> {
    let p = srv.project.clone();
    nova(
        srv,
        Method::PUT,
        &format!("/os-quota-sets/{p}"),
        Some(json!({"quota_set": {"instances": -1, "cores": -1, "ram": -1}})),
        StatusCode::OK,
    )
    .await?;
    srv.call(
        Method::PUT,
        &format!("/network/v2.0/quotas/{p}"),
        Some(json!({"quota": {"port": -1, "network": -1, "subnet": -1}})),
        StatusCode::OK,
    )
    .await?;
    let f = nova(
        srv,
        Method::POST,
        "/flavors",
        Some(json!({"flavor": {"name": "bench.tiny", "vcpus": 1, "ram": 64, "disk": 1}})),
        StatusCode::OK,
    )
    .await?;
    let flavor = str_at(&f, "/flavor/id")?;
    let img = srv
        .call(
            Method::POST,
            "/image/v2/images",
            Some(json!({"name": "bench-image", "disk_format": "raw",
                "container_format": "bare", "visibility": "public"})),
            StatusCode::CREATED,
        )
        .await?;
    let image = str_at(&img, "/id")?;
    let resp = srv
        .client
        .put(format!("{}/image/v2/images/{image}/file", srv.base))
        .header(crate::keystone::AUTH_TOKEN, &srv.token)
        .header("Content-Type", "application/octet-stream")
        .body(vec![0x5a_u8; 1024])
        .send()
        .await
        .context("uploading the image")?;
    if resp.status() != StatusCode::NO_CONTENT {
        bail!("image upload answered {}", resp.status());
    }
    let network = if with_network {
        let n = srv
            .call(
                Method::POST,
                "/network/v2.0/networks",
                Some(json!({"network": {"name": "bench-net"}})),
                StatusCode::CREATED,
            )
            .await?;
        let net = str_at(&n, "/network/id")?;
        srv.call(
            Method::POST,
            "/network/v2.0/subnets",
            Some(json!({"subnet": {"network_id": net, "ip_version": 4,
                "cidr": "10.0.0.0/16", "name": "bench-subnet"}})),
            StatusCode::CREATED,
        )
        .await?;
        Some(net)
    } else {
        None
    };
    Ok(Fixture {
        flavor,
        image,
        network,
    })
}

/// Waits until at least `n` hypervisors are registered and up; the seconds it took.
async fn wait_hosts(srv: &Server, n: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        let v = nova(
            srv,
            Method::GET,
            "/os-hypervisors/statistics",
            None,
            StatusCode::OK,
        )
        .await?;
        let count = v
            .pointer("/hypervisor_statistics/count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let vcpus = v
            .pointer("/hypervisor_statistics/vcpus")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if count >= n && vcpus > 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > HOSTS_DEADLINE {
            bail!("only {count} of {n} hypervisors registered after {HOSTS_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls `GET /servers?status=BUILD` every `every` until it is empty.
async fn wait_built(srv: &Server, every: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let v = nova(
            srv,
            Method::GET,
            "/servers?status=BUILD&limit=1",
            None,
            StatusCode::OK,
        )
        .await?;
        if v["servers"].as_array().is_none_or(|a| a.is_empty()) {
            return Ok(());
        }
        if started.elapsed() > SETTLE_DEADLINE {
            bail!("servers still in BUILD after {SETTLE_DEADLINE:?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Every server's id and status (following the pages).
async fn all_servers(srv: &Server) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let q = match &marker {
            Some(m) => format!("/servers/detail?limit=1000&marker={m}"),
            None => "/servers/detail?limit=1000".to_string(),
        };
        let v = nova(srv, Method::GET, &q, None, StatusCode::OK).await?;
        let page = v["servers"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            return Ok(out);
        }
        for s in &page {
            out.push((str_at(s, "/id")?, str_at(s, "/status")?));
        }
        marker = out.last().map(|(id, _)| id.clone());
    }
}

async fn boot_run(args: &ComputeBenchArgs, srv: Arc<Server>) -> anyhow::Result<BootResult> {
    let fx = fixture(&srv, true).await?;
    let net = fx.network.clone().unwrap_or_default();
    // The all-in-one is a host itself.
    wait_hosts(&srv, args.hosts + 1).await?;
    let n = args.servers as usize;
    let workers = (args.concurrency as usize).min(n.max(1));
    eprintln!("compute: booting {n} servers with {workers} workers");
    let cpu0 = read_cpu_secs(srv.pid);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (srv, next, fx_f, fx_i, net) = (
            srv.clone(),
            next.clone(),
            fx.flavor.clone(),
            fx.image.clone(),
            net.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                nova(
                    &srv,
                    Method::POST,
                    "/servers",
                    Some(
                        json!({"server": {"name": format!("bench-{i}"), "flavorRef": fx_f,
                        "imageRef": fx_i, "networks": [{"uuid": net}]}}),
                    ),
                    StatusCode::ACCEPTED,
                )
                .await?;
                lat.push(t.elapsed().as_micros() as u64);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut post = Vec::with_capacity(n);
    for t in tasks {
        post.extend(t.await.context("a boot worker panicked")??);
    }
    wait_built(&srv, Duration::from_millis(100)).await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = match (cpu0, read_cpu_secs(srv.pid)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let rss = read_vmrss_kib(srv.pid).map(kib_to_mib);
    eprintln!("compute: {n} servers settled in {secs:.1} s");

    // Verification.
    let servers = all_servers(&srv).await?;
    let active = servers.iter().filter(|(_, s)| s == "ACTIVE").count();
    if servers.len() != n || active != n {
        let errors: Vec<_> = servers
            .iter()
            .filter(|(_, s)| s != "ACTIVE")
            .take(3)
            .collect();
        bail!(
            "{} servers listed, {active} ACTIVE, expected {n} (e.g. {errors:?})",
            servers.len()
        );
    }
    let stats = nova(
        &srv,
        Method::GET,
        "/os-hypervisors/statistics",
        None,
        StatusCode::OK,
    )
    .await?;
    let running = stats
        .pointer("/hypervisor_statistics/running_vms")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if running != n as u64 {
        bail!("hypervisors report {running} running VMs, expected {n}");
    }
    let ports = srv
        .call(
            Method::GET,
            &format!("/network/v2.0/ports?network_id={net}&device_owner=compute:nova&fields=id"),
            None,
            StatusCode::OK,
        )
        .await?;
    let nports = ports["ports"].as_array().map_or(0, Vec::len);
    if nports != n {
        bail!("{nports} compute ports on the network, expected {n}");
    }

    // The detailed list.
    let mut detail = Vec::with_capacity(DETAIL_GETS);
    let mut detail_bytes = 0;
    for _ in 0..DETAIL_GETS {
        let t = Instant::now();
        let resp = srv
            .client
            .get(format!("{}{NOVA}/servers/detail", srv.base))
            .header(crate::keystone::AUTH_TOKEN, &srv.token)
            .send()
            .await?;
        if resp.status() != StatusCode::OK {
            bail!("GET /servers/detail answered {}", resp.status());
        }
        let body = resp.bytes().await?;
        detail.push(t.elapsed().as_micros() as u64);
        detail_bytes = body.len();
    }

    // Delete everything.
    eprintln!("compute: deleting {n} servers");
    let ids = Arc::new(servers.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (srv, next, ids) = (srv.clone(), next.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let t = Instant::now();
                nova(
                    &srv,
                    Method::DELETE,
                    &format!("/servers/{id}"),
                    None,
                    StatusCode::NO_CONTENT,
                )
                .await?;
                lat.push(t.elapsed().as_micros() as u64);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut del = Vec::with_capacity(n);
    for t in tasks {
        del.extend(t.await.context("a delete worker panicked")??);
    }
    loop {
        let v = nova(&srv, Method::GET, "/servers?limit=1", None, StatusCode::OK).await?;
        if v["servers"].as_array().is_none_or(|a| a.is_empty()) {
            break;
        }
        if started.elapsed() > SETTLE_DEADLINE {
            bail!("servers still listed {SETTLE_DEADLINE:?} after their deletes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delete_secs = started.elapsed().as_secs_f64();
    let ports = srv
        .call(
            Method::GET,
            &format!("/network/v2.0/ports?network_id={net}&device_owner=compute:nova&fields=id"),
            None,
            StatusCode::OK,
        )
        .await?;
    let left = ports["ports"].as_array().map_or(0, Vec::len);
    if left != 0 {
        bail!("{left} compute ports left after every server was deleted");
    }
    Ok(BootResult {
        hosts: args.hosts as usize,
        servers: n,
        concurrency: workers,
        secs_to_active: secs,
        boots_per_s: n as f64 / secs,
        post: Latency::of_us(&mut post).context("no boots")?,
        server_cpu_secs: cpu,
        detail: Latency::of_us(&mut detail).context("no lists")?,
        detail_bytes,
        delete_secs,
        deletes_per_s: n as f64 / delete_secs,
        delete_latency: Latency::of_us(&mut del).context("no deletes")?,
        rss_mib: rss,
    })
}

/// Microseconds between two Nova timestamps (`YYYY-MM-DDTHH:MM:SS.ffffff`).
pub fn nova_span_us(start: &str, finish: &str) -> Option<u64> {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"
    );
    let a = time::PrimitiveDateTime::parse(start, &fmt).ok()?;
    let b = time::PrimitiveDateTime::parse(finish, &fmt).ok()?;
    u64::try_from((b - a).whole_microseconds()).ok()
}

async fn scale_run(args: &ComputeBenchArgs, srv: Arc<Server>) -> anyhow::Result<ScaleResult> {
    let fx = fixture(&srv, false).await?;
    let hosts = args.scale_hosts;
    let sampler = RssSampler::start(srv.pid, Duration::from_millis(500));
    eprintln!("compute: waiting for {hosts} hosts");
    let register_secs = wait_hosts(&srv, hosts + 1).await?;
    eprintln!("compute: {hosts} hosts registered in {register_secs:.1} s");

    // Scheduling decisions, one boot at a time.
    let mut sched = Vec::new();
    let mut booted = 0usize;
    for i in 0..args.sched_samples {
        let (st, v, headers) = nova_mv(
            &srv,
            Method::POST,
            "/servers",
            "2.37",
            Some(
                json!({"server": {"name": format!("sched-{i}"), "flavorRef": fx.flavor,
                "imageRef": fx.image, "networks": "none"}}),
            ),
        )
        .await?;
        if st != StatusCode::ACCEPTED {
            bail!("POST /servers answered {st}: {v}");
        }
        booted += 1;
        let id = str_at(&v, "/server/id")?;
        let rid = headers
            .get("x-openstack-request-id")
            .or_else(|| headers.get("x-compute-request-id"))
            .and_then(|h| h.to_str().ok())
            .context("no x-openstack-request-id")?
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        let span = loop {
            let a = nova(
                &srv,
                Method::GET,
                &format!("/servers/{id}/os-instance-actions/{rid}"),
                None,
                StatusCode::OK,
            )
            .await?;
            let ev = a["instanceAction"]["events"].as_array().and_then(|evs| {
                evs.iter()
                    .find(|e| e["event"] == "conductor_schedule_and_build_instances")
                    .cloned()
            });
            if let Some(e) = ev {
                if let (Some(s), Some(f)) = (e["start_time"].as_str(), e["finish_time"].as_str()) {
                    break nova_span_us(s, f)
                        .with_context(|| format!("bad event times {s} {f}"))?;
                }
            }
            if Instant::now() > deadline {
                bail!("server {id} was not scheduled within 120 s: {a}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        sched.push(span);
    }
    let mut cands = Vec::new();
    let mut candidates_returned = 0;
    for _ in 0..CANDIDATE_GETS {
        let t = Instant::now();
        let resp = srv
            .client
            .get(format!(
                "{}/placement/allocation_candidates?resources=VCPU:1,MEMORY_MB:64,DISK_GB:1",
                srv.base
            ))
            .header(crate::keystone::AUTH_TOKEN, &srv.token)
            .header("OpenStack-API-Version", "placement 1.36")
            .send()
            .await?;
        let st = resp.status();
        let body: Value = resp.json().await?;
        cands.push(t.elapsed().as_micros() as u64);
        if st != StatusCode::OK {
            bail!("allocation_candidates answered {st}: {body}");
        }
        candidates_returned = body["allocation_requests"].as_array().map_or(0, Vec::len);
    }

    // Fill to `scale_servers` with multi-create batches.
    let target = args.scale_servers as usize;
    eprintln!("compute: filling to {target} servers");
    let started = Instant::now();
    let workers = (args.concurrency as usize).clamp(1, 8);
    let next = Arc::new(AtomicUsize::new(booted));
    let batch = args.batch as usize;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (srv, next, f, i) = (
            srv.clone(),
            next.clone(),
            fx.flavor.clone(),
            fx.image.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(batch, Ordering::Relaxed);
                if from >= target {
                    break;
                }
                let k = batch.min(target - from);
                let (st, v, _) = nova_mv(
                    &srv,
                    Method::POST,
                    "/servers",
                    "2.37",
                    Some(
                        json!({"server": {"name": format!("fill-{from}"), "flavorRef": f,
                        "imageRef": i, "networks": "none", "min_count": k, "max_count": k}}),
                    ),
                )
                .await?;
                if st != StatusCode::ACCEPTED {
                    bail!("multi-create of {k} answered {st}: {v}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await.context("a fill worker panicked")??;
    }
    // Listing tens of thousands of servers is itself work for the server: poll slowly.
    wait_built(&srv, Duration::from_secs(2)).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    let filled = target.saturating_sub(booted);
    let rss_mib = read_vmrss_kib(srv.pid).map(kib_to_mib);
    let peak = sampler.stop().await.map(kib_to_mib);
    let mut first_page = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        nova(
            &srv,
            Method::GET,
            "/servers/detail?limit=1000",
            None,
            StatusCode::OK,
        )
        .await?;
        first_page.push(t.elapsed().as_micros() as u64);
    }
    let errors = nova(
        &srv,
        Method::GET,
        "/servers?status=ERROR&limit=1",
        None,
        StatusCode::OK,
    )
    .await?;
    if errors["servers"].as_array().is_some_and(|a| !a.is_empty()) {
        bail!("servers in ERROR after the fill: {errors}");
    }
    Ok(ScaleResult {
        hosts: hosts as usize,
        register_secs,
        schedule: Latency::of_us(&mut sched).context("no scheduling samples")?,
        candidates: Latency::of_us(&mut cands).context("no candidate requests")?,
        candidates_returned,
        servers: target.max(booted),
        fill_secs,
        fill_per_s: filled as f64 / fill_secs.max(1e-9),
        rss_mib,
        peak_rss_mib: peak,
        detail_first_page: Latency::of_us(&mut first_page),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ComputeBenchArgs,
    }

    #[test]
    fn defaults_are_the_issue_s_numbers() {
        let c = Cli::parse_from(["x", "--data-dir", "/tmp/d"]);
        assert_eq!(c.args.hosts, 100);
        assert_eq!(c.args.servers, 1000);
        assert_eq!(c.args.concurrency, 50);
        assert_eq!(c.args.scale_hosts, 10_000);
        assert_eq!(c.args.scale_servers, 100_000);
        assert!(Cli::try_parse_from(["x", "--data-dir", "/d", "--concurrency", "0"]).is_err());
    }

    #[test]
    fn spans_between_nova_timestamps() {
        assert_eq!(
            nova_span_us("2026-11-22T10:00:00.000100", "2026-11-22T10:00:00.001600"),
            Some(1500)
        );
        assert_eq!(
            nova_span_us("2026-11-22T23:59:59.999999", "2026-11-23T00:00:00.000001"),
            Some(2)
        );
        assert_eq!(
            nova_span_us("2026-11-22T10:00:01.000000", "2026-11-22T10:00:00.000000"),
            None
        );
        assert_eq!(nova_span_us("yesterday", "today"), None);
    }
}
