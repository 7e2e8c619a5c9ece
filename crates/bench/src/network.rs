//! `strata bench network`: Neutron port creation, port listing and IP allocation on a /16.
//!
//! It starts its own `strata up` on a fresh data directory (as `strata bench storage` does),
//! logs in as the admin from the `clouds.yaml` the server writes, lifts the admin project's
//! network, subnet and port quotas (`PUT /network/v2.0/quotas/{project}` with -1) and measures,
//! in order:
//!
//! 1. **Port creation under load**: on a network with one IPv4 /16 subnet (`10.0.0.0/16`,
//!    the default pool), `--ports` `POST /ports` by `--concurrency` workers sharing one HTTP
//!    client: ports/s over the wall time and per-request latency percentiles. Afterwards it
//!    lists the network's ports and fails unless exactly those ports exist, with pairwise
//!    distinct IPs and MACs.
//! 2. **Listing**: more ports are created on that network (concurrently, untimed) until the
//!    server holds `--list-ports`; then 50 sequential `GET /ports` each of the whole list,
//!    of `?limit=100`, of `?fields=id` and of `?fields=id&limit=100`, with the response
//!    size and the server's CPU time per request (`/proc/<pid>/stat`).
//! 3. **Allocation on a crowded /16**, 100 sequential creates each (one request in flight):
//!    on a fresh /16 with nothing taken (the baseline), on the step-1 network (whole-/16 pool,
//!    its lowest `--list-ports` addresses taken, so the allocator must step over them) and on
//!    a /16 whose only allocation pool is its last 300 usable addresses, 200 of them taken
//!    beforehand, so the 100 creates use up the pool and the 101st must answer
//!    409 `IpAddressGenerationFailure`; and on a nearly full /16: 10.3.0.0/16 filled to its last
//!    address by bulk creates, then 700 scattered ports deleted again.
//!
//! The data directory is removed afterwards unless `--keep`; the server is stopped with
//! SIGTERM whatever happens.

use crate::keystone::AUTH_TOKEN;
use crate::procfs::read_cpu_secs;
use crate::report::{opt, HostInfo};
use crate::stats::{percentile, us_to_ms};
use crate::storage::{stop, str_at, Server};
use anyhow::{bail, Context};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sequential `GET /ports` per query.
const LIST_GETS: usize = 50;
/// Sequential creates timed per allocation scenario.
const ALLOC_CREATES: usize = 100;
/// The crowded pool: its size and how many of it are taken before the timed creates.
const TAIL_POOL: u32 = 300;
const TAIL_TAKEN: u32 = 200;
/// The nearly full /16: every usable address of 10.3.0.0/16 taken (bulk creates of
/// [`BULK`] ports), then [`FULL_FREE`] of them, scattered, released again.
const FULL_FREE: usize = 700;
const BULK: usize = 500;
/// Usable addresses of a /16 pool with the gateway at .0.1: .0.2–.255.254.
const SLASH16_POOL: usize = 65533;
/// Where the networking API lives under the server's base URL.
const NET: &str = "/network/v2.0";

/// Arguments of `strata bench network`.
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkBenchArgs {
    /// The strata binary to start [default: this executable]
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Data directory of the started server, empty or absent (removed afterwards)
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address the started server listens on; nothing else may be listening there
    #[arg(long, default_value = "127.0.0.1:18442")]
    pub listen: String,
    /// Concurrent workers creating ports (step 1 and the untimed fills)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Ports created (timed) by the concurrent workers
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub ports: u64,
    /// Ports on the server (all on the step-1 network) while `GET /ports` is timed
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub list_ports: u64,
    /// Keep the data directory afterwards
    #[arg(long)]
    pub keep: bool,
    /// Print JSON instead of a Markdown table
    #[arg(long)]
    pub json: bool,
}

/// Latency percentiles of a set of requests, in milliseconds (nearest rank, [`percentile`]).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Sorts `us` (microseconds) and summarises it; `None` when empty.
    pub fn of_us(us: &mut [u64]) -> Option<Self> {
        us.sort_unstable();
        Some(Self {
            count: us.len(),
            p50_ms: us_to_ms(percentile(us, 50.0)?),
            p95_ms: us_to_ms(percentile(us, 95.0)?),
            p99_ms: us_to_ms(percentile(us, 99.0)?),
            max_ms: us_to_ms(*us.last()?),
        })
    }
}

/// Step 1: concurrent creation.
#[derive(Debug, Clone, Serialize)]
pub struct CreateResult {
    pub ports: usize,
    pub concurrency: usize,
    pub secs: f64,
    pub ports_per_s: f64,
    pub latency: Latency,
    pub server_cpu_secs: Option<f64>,
    /// What the verification listing found (it fails the run unless all equal `ports`).
    pub listed: usize,
    pub distinct_ips: usize,
    pub distinct_macs: usize,
}

/// Step 2: one kind of `GET /ports`.
#[derive(Debug, Clone, Serialize)]
pub struct ListResult {
    /// The query string, `""` for the whole list.
    pub query: String,
    pub latency: Latency,
    /// Body size of the first response.
    pub bytes: usize,
    /// Ports in the first response.
    pub ports_returned: usize,
    /// The server's CPU time (all threads) over the run, per request.
    pub server_cpu_ms_per_get: Option<f64>,
}

/// Step 3: sequential creates on one subnet.
#[derive(Debug, Clone, Serialize)]
pub struct AllocResult {
    pub scenario: String,
    pub cidr: String,
    /// The allocation pool(s), as `start–end`.
    pub pool: String,
    pub pool_size: u64,
    /// Addresses of the pool allocated before the timed creates.
    pub taken_before: u64,
    pub latency: Latency,
    pub server_cpu_ms_per_create: Option<f64>,
    /// Whether one more create answered 409 `IpAddressGenerationFailure` (checked only where
    /// the creates use up the pool).
    pub exhausted_409: Option<bool>,
}

/// Everything one `strata bench network` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkReport {
    pub host: HostInfo,
    pub bin: String,
    pub data_dir: String,
    pub listen: String,
    pub create: CreateResult,
    /// The untimed fill up to `list_ports`: ports and ports/s, for context.
    pub fill_ports: usize,
    pub fill_ports_per_s: f64,
    /// Bulk creates filling the whole 10.3.0.0/16 pool, ports/s, for context.
    pub full_fill_ports_per_s: f64,
    pub list_ports: usize,
    /// The step-1 network's addresses are the lowest `list_ports` of its pool, contiguous.
    pub list_addresses_contiguous: bool,
    pub lists: Vec<ListResult>,
    pub allocs: Vec<AllocResult>,
}

impl NetworkReport {
    /// The report as Markdown: a header line, what was run, and three tables.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.host.header("strata bench network"));
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "`strata up --listen {}` on a fresh `{}` (SQLite) · admin token · one reqwest client \
             on the same machine · latencies nearest-rank.",
            self.listen, self.data_dir
        );
        let _ = writeln!(s);
        let c = &self.create;
        let _ = writeln!(
            s,
            "| port create (`POST /ports`, 10.0.0.0/16) | ports | workers | seconds | ports/s | p50 ms | p95 ms | p99 ms | max ms | server CPU s |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| concurrent creates | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            c.ports,
            c.concurrency,
            c.secs,
            c.ports_per_s,
            c.latency.p50_ms,
            c.latency.p95_ms,
            c.latency.p99_ms,
            c.latency.max_ms,
            opt(c.server_cpu_secs, 2)
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Verified afterwards: {} ports listed on the network, {} distinct IPs, {} distinct \
             MACs. Untimed fill to {} ports: {} more at {:.1} ports/s.",
            c.listed,
            c.distinct_ips,
            c.distinct_macs,
            self.list_ports,
            self.fill_ports,
            self.fill_ports_per_s
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| `GET /v2.0/ports` ({} ports on the bench network), {LIST_GETS} sequential | ports returned | response bytes | p50 ms | p95 ms | max ms | server CPU ms / GET |",
            self.list_ports
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        for l in &self.lists {
            let q = if l.query.is_empty() {
                "whole list".to_string()
            } else {
                format!("`?{}`", l.query)
            };
            let _ = writeln!(
                s,
                "| {q} | {} | {} | {:.1} | {:.1} | {:.1} | {} |",
                l.ports_returned,
                l.bytes,
                l.latency.p50_ms,
                l.latency.p95_ms,
                l.latency.max_ms,
                opt(l.server_cpu_ms_per_get, 1)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| allocation, {ALLOC_CREATES} sequential `POST /ports` | subnet | pool | pool size | taken before | p50 ms | p99 ms | max ms | server CPU ms / create | 101st create |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---:|---|");
        for a in &self.allocs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
                a.scenario,
                a.cidr,
                a.pool,
                a.pool_size,
                a.taken_before,
                a.latency.p50_ms,
                a.latency.p99_ms,
                a.latency.max_ms,
                opt(a.server_cpu_ms_per_create, 1),
                match a.exhausted_409 {
                    None => "-",
                    Some(true) => "409 IpAddressGenerationFailure",
                    Some(false) => "**not 409**",
                }
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Taken addresses on 10.0.0.0/16 are the lowest {} of its pool{}; \"nearly full\" is \
             a pool of {TAIL_POOL} addresses (the last usable ones of the /16) with {TAIL_TAKEN} \
             taken, which the {ALLOC_CREATES} timed creates use up; \"nearly full /16\" is \
             10.3.0.0/16 with all {SLASH16_POOL} pool addresses taken by bulk creates of {BULK} \
             ports ({:.0} ports/s; one more create answered 409), then {FULL_FREE} of them, \
             picked pseudo-randomly over the range, deleted.",
            self.list_ports,
            if self.list_addresses_contiguous {
                ", contiguous"
            } else {
                " (**not contiguous**)"
            },
            self.full_fill_ports_per_s
        );
        s
    }
}

/// The last `size` usable addresses of the IPv4 network `base/prefix` (the broadcast address
/// excluded), as an inclusive range; `None` if they do not fit above the network address.
pub fn tail_pool(base: Ipv4Addr, prefix: u8, size: u32) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if prefix > 30 || size == 0 {
        return None;
    }
    let host = 32 - u32::from(prefix);
    let first = u32::from(base) & !((1u32 << host) - 1);
    let last_usable = first + (1u32 << host) - 2;
    let start = last_usable.checked_sub(size - 1)?;
    if start <= first + 1 {
        // The network address and (by default) the gateway stay out.
        return None;
    }
    Some((Ipv4Addr::from(start), Ipv4Addr::from(last_usable)))
}

/// Whether `ips` are exactly the `ips.len()` consecutive addresses from `start`.
pub fn contiguous_from(ips: &[Ipv4Addr], start: Ipv4Addr) -> bool {
    let mut v: Vec<u32> = ips.iter().map(|&i| u32::from(i)).collect();
    v.sort_unstable();
    v.iter()
        .enumerate()
        .all(|(i, &a)| u64::from(a) == u64::from(u32::from(start)) + i as u64)
}

/// Runs the network benchmark and prints its report (Markdown, or JSON with `--json`).
pub async fn run_network(args: NetworkBenchArgs) -> anyhow::Result<()> {
    let report = measure_network(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// Runs the network benchmark and returns what it measured, printing only progress (stderr).
pub async fn measure_network(args: &NetworkBenchArgs) -> anyhow::Result<NetworkReport> {
    if args.list_ports < args.ports {
        bail!(
            "--list-ports ({}) must be at least --ports ({})",
            args.list_ports,
            args.ports
        );
    }
    let bin = crate::storage::strata_bin(args.bin.as_ref())?;
    crate::storage::require_empty(&args.data_dir)?;
    if tokio::net::TcpStream::connect(&args.listen).await.is_ok() {
        bail!(
            "something already listens on {}; stop it or choose another --listen",
            args.listen
        );
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;
    let host = HostInfo::collect();

    let result = measure_in(args, &bin, &data_dir, host).await;
    if args.keep {
        eprintln!("network: kept {}", data_dir.display());
    } else if let Err(e) = std::fs::remove_dir_all(&data_dir) {
        eprintln!("network: warning: removing {}: {e}", data_dir.display());
    }
    result
}

/// Starts the server, runs the steps, stops the server whatever happened.
async fn measure_in(
    args: &NetworkBenchArgs,
    bin: &Path,
    data_dir: &Path,
    host: HostInfo,
) -> anyhow::Result<NetworkReport> {
    eprintln!(
        "network: starting {} up on {}",
        bin.display(),
        data_dir.display()
    );
    let mut child = tokio::process::Command::new(bin)
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(&args.listen)
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
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?,
        base: format!("http://{}", args.listen),
        token: String::new(),
        project: String::new(),
        pid,
    };
    let measured = match server.login(&mut child, data_dir).await {
        Ok(server) => steps(args, Arc::new(server)).await,
        Err(e) => Err(e),
    };
    stop(&mut child).await?;
    let m = measured?;
    Ok(NetworkReport {
        host,
        bin: bin.display().to_string(),
        data_dir: data_dir.display().to_string(),
        listen: args.listen.clone(),
        ..m
    })
}

/// One created port, as the create answered it.
#[derive(Debug, Clone)]
struct Made {
    id: String,
    ip: Ipv4Addr,
    mac: String,
}

impl Made {
    fn of(port: &Value) -> anyhow::Result<Self> {
        let ip = port
            .pointer("/fixed_ips/0/ip_address")
            .and_then(Value::as_str)
            .with_context(|| format!("port without a fixed IP: {port}"))?;
        Ok(Self {
            id: str_at(port, "/id")?,
            ip: ip
                .parse()
                .with_context(|| format!("port with a bad IPv4 address {ip}"))?,
            mac: str_at(port, "/mac_address")?,
        })
    }
}

async fn post(server: &Server, path: &str, body: Value) -> anyhow::Result<Value> {
    server
        .call(
            reqwest::Method::POST,
            &format!("{NET}{path}"),
            Some(body),
            StatusCode::CREATED,
        )
        .await
}

/// Creates a network and one IPv4 subnet on it (with `pools`, if given); returns the ids.
async fn network_with_subnet(
    server: &Server,
    name: &str,
    cidr: &str,
    pools: Option<Value>,
) -> anyhow::Result<(String, String)> {
    let n = post(server, "/networks", json!({"network": {"name": name}})).await?;
    let net = str_at(&n, "/network/id")?;
    let mut subnet = json!({"network_id": net, "ip_version": 4, "cidr": cidr, "name": name});
    if let Some(p) = pools {
        subnet["allocation_pools"] = p;
    }
    let s = post(server, "/subnets", json!({ "subnet": subnet })).await?;
    Ok((net, str_at(&s, "/subnet/id")?))
}

async fn create_port(server: &Server, net: &str) -> anyhow::Result<Made> {
    let p = post(server, "/ports", json!({"port": {"network_id": net}})).await?;
    Made::of(&p["port"])
}

/// `n` ports on `net` by `workers` concurrent workers: the ports, each request's latency in
/// µs and the wall time.
async fn create_concurrently(
    server: &Arc<Server>,
    net: &str,
    n: usize,
    workers: usize,
) -> anyhow::Result<(Vec<Made>, Vec<u64>, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers.min(n.max(1)) {
        let (server, next, net) = (server.clone(), next.clone(), net.to_string());
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            let mut lat = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t = Instant::now();
                let p = create_port(&server, &net).await?;
                lat.push(t.elapsed().as_micros() as u64);
                made.push(p);
            }
            anyhow::Ok((made, lat))
        }));
    }
    let mut made = Vec::with_capacity(n);
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        let (m, l) = t.await.context("a create worker panicked")??;
        made.extend(m);
        lat.extend(l);
    }
    Ok((made, lat, started.elapsed()))
}

/// `n` ports on `net` by bulk `POST /ports` of up to [`BULK`] each, `workers` in flight.
async fn fill_bulk(
    server: &Arc<Server>,
    net: &str,
    n: usize,
    workers: usize,
) -> anyhow::Result<Vec<Made>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (server, next, net) = (server.clone(), next.clone(), net.to_string());
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let from = next.fetch_add(BULK, Ordering::Relaxed);
                if from >= n {
                    return anyhow::Ok(made);
                }
                let k = BULK.min(n - from);
                let ports: Vec<Value> = (0..k).map(|_| json!({"network_id": net})).collect();
                let v = post(&server, "/ports", json!({ "ports": ports })).await?;
                for p in v["ports"].as_array().context("bulk create without ports")? {
                    made.push(Made::of(p)?);
                }
            }
        }));
    }
    let mut made = Vec::with_capacity(n);
    for t in tasks {
        made.extend(t.await.context("a bulk worker panicked")??);
    }
    Ok(made)
}

/// `k` ids of `made` spread over its address range by a fixed pseudo-random choice.
fn scattered(made: &[Made], k: usize) -> Vec<String> {
    let mut by_ip: Vec<&Made> = made.iter().collect();
    by_ip.sort_by_key(|m| m.ip);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut picked = HashSet::new();
    while picked.len() < k.min(by_ip.len()) {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        picked.insert((x % by_ip.len() as u64) as usize);
    }
    picked.into_iter().map(|i| by_ip[i].id.clone()).collect()
}

/// Deletes `ids` by `workers` concurrent `DELETE /ports/{id}`.
async fn delete_concurrently(
    server: &Arc<Server>,
    ids: &[String],
    workers: usize,
) -> anyhow::Result<()> {
    let ids = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (server, next, ids) = (server.clone(), next.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else {
                    return anyhow::Ok(());
                };
                server
                    .call(
                        reqwest::Method::DELETE,
                        &format!("{NET}/ports/{id}"),
                        None,
                        StatusCode::NO_CONTENT,
                    )
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await.context("a delete worker panicked")??;
    }
    Ok(())
}

/// All ports on `net` (one unfiltered-by-page `GET /ports?network_id=`).
async fn list_on(server: &Server, net: &str) -> anyhow::Result<Vec<Made>> {
    let v = server
        .call(
            reqwest::Method::GET,
            &format!("{NET}/ports?network_id={net}"),
            None,
            StatusCode::OK,
        )
        .await?;
    v["ports"]
        .as_array()
        .context("no ports array")?
        .iter()
        .map(Made::of)
        .collect()
}

fn cpu_delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    before.zip(after).map(|(b, a)| (a - b).max(0.0))
}

async fn steps(args: &NetworkBenchArgs, server: Arc<Server>) -> anyhow::Result<NetworkReport> {
    let workers = args.concurrency as usize;
    let n = args.ports as usize;
    let quota_path = format!("{NET}/quotas/{}", server.project);
    server
        .call(
            reqwest::Method::PUT,
            &quota_path,
            Some(json!({"quota": {"network": -1, "subnet": -1, "port": -1}})),
            StatusCode::OK,
        )
        .await
        .context("lifting the admin project's quotas")?;

    // 1. Concurrent creates.
    let (net_a, _) = network_with_subnet(&server, "bench-ports", "10.0.0.0/16", None).await?;
    eprintln!("network: creating {n} ports with {workers} workers");
    let cpu = read_cpu_secs(server.pid);
    let (made, mut lat, took) = create_concurrently(&server, &net_a, n, workers).await?;
    let server_cpu_secs = cpu_delta(cpu, read_cpu_secs(server.pid));
    let latency = Latency::of_us(&mut lat).context("no creates")?;
    let ports_per_s = n as f64 / took.as_secs_f64();
    eprintln!(
        "network: {ports_per_s:.1} ports/s, p50 {:.1} ms, p99 {:.1} ms",
        latency.p50_ms, latency.p99_ms
    );
    let listed = list_on(&server, &net_a).await?;
    let want: HashSet<&str> = made.iter().map(|m| m.id.as_str()).collect();
    let got: HashSet<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    let distinct_ips = listed.iter().map(|m| m.ip).collect::<HashSet<_>>().len();
    let distinct_macs = listed
        .iter()
        .map(|m| m.mac.to_ascii_lowercase())
        .collect::<HashSet<_>>()
        .len();
    if made.len() != n
        || want.len() != n
        || got != want
        || listed.len() != n
        || distinct_ips != n
        || distinct_macs != n
    {
        bail!(
            "verification FAILED after creating {n} ports: {} creates answered ({} distinct \
             ids), {} ports listed ({} of them created here), {distinct_ips} distinct IPs, \
             {distinct_macs} distinct MACs",
            made.len(),
            want.len(),
            listed.len(),
            got.intersection(&want).count(),
        );
    }
    let create = CreateResult {
        ports: n,
        concurrency: workers,
        secs: took.as_secs_f64(),
        ports_per_s,
        latency,
        server_cpu_secs,
        listed: listed.len(),
        distinct_ips,
        distinct_macs,
    };

    // 2. Fill to --list-ports, then time the listings.
    let fill = args.list_ports as usize - n;
    eprintln!("network: filling to {} ports (untimed)", args.list_ports);
    let (_, _, fill_took) = create_concurrently(&server, &net_a, fill, workers).await?;
    let fill_ports_per_s = if fill == 0 {
        0.0
    } else {
        fill as f64 / fill_took.as_secs_f64()
    };
    let all_a = list_on(&server, &net_a).await?;
    if all_a.len() != args.list_ports as usize {
        bail!(
            "after the fill the network has {} ports, expected {}",
            all_a.len(),
            args.list_ports
        );
    }
    let ips: Vec<Ipv4Addr> = all_a.iter().map(|m| m.ip).collect();
    let list_addresses_contiguous = contiguous_from(&ips, Ipv4Addr::new(10, 0, 0, 2));
    let mut lists = Vec::new();
    for q in ["", "limit=100", "fields=id", "fields=id&limit=100"] {
        lists.push(time_list(&server, q).await?);
    }

    // 3. Sequential creates on crowded subnets. The baseline first, on a fresh /16 (the
    // database holds the same ports as for the others).
    let mut allocs = Vec::new();
    let (net_c, _) = network_with_subnet(&server, "bench-alloc-empty", "10.2.0.0/16", None).await?;
    allocs.push(time_sequential(&server, &net_c, false).await?.describe(
        "fresh /16 (baseline)",
        "10.2.0.0/16",
        "10.2.0.2–10.2.255.254",
        65533,
        0,
    ));
    allocs.push(time_sequential(&server, &net_a, false).await?.describe(
        &format!("whole-/16 pool, lowest {} taken", args.list_ports),
        "10.0.0.0/16",
        "10.0.0.2–10.0.255.254",
        65533,
        args.list_ports,
    ));
    let (start, end) = tail_pool(Ipv4Addr::new(10, 1, 0, 0), 16, TAIL_POOL).context("tail pool")?;
    let (net_b, _) = network_with_subnet(
        &server,
        "bench-alloc-full",
        "10.1.0.0/16",
        Some(json!([{"start": start.to_string(), "end": end.to_string()}])),
    )
    .await?;
    eprintln!("network: taking {TAIL_TAKEN} of the {TAIL_POOL}-address pool {start}–{end}");
    create_concurrently(&server, &net_b, TAIL_TAKEN as usize, workers).await?;
    allocs.push(time_sequential(&server, &net_b, true).await?.describe(
        &format!("nearly full: {TAIL_POOL}-address pool, {TAIL_TAKEN} taken"),
        "10.1.0.0/16",
        &format!("{start}–{end}"),
        u64::from(TAIL_POOL),
        u64::from(TAIL_TAKEN),
    ));
    if allocs.last().and_then(|a| a.exhausted_409) != Some(true) {
        bail!(
            "the create after filling the {TAIL_POOL}-address pool did not answer 409 \
             IpAddressGenerationFailure"
        );
    }

    // 4. The nearly full /16.
    let (net_d, _) =
        network_with_subnet(&server, "bench-alloc-slash16", "10.3.0.0/16", None).await?;
    eprintln!("network: filling 10.3.0.0/16 ({SLASH16_POOL} addresses) with bulk creates");
    let t = Instant::now();
    let full = fill_bulk(&server, &net_d, SLASH16_POOL, workers.min(4)).await?;
    let full_fill_ports_per_s = SLASH16_POOL as f64 / t.elapsed().as_secs_f64();
    let distinct: HashSet<Ipv4Addr> = full.iter().map(|m| m.ip).collect();
    if full.len() != SLASH16_POOL || distinct.len() != SLASH16_POOL {
        bail!(
            "filling the /16 made {} ports with {} distinct addresses, expected {SLASH16_POOL}",
            full.len(),
            distinct.len()
        );
    }
    let over = server
        .client
        .post(format!("{}{NET}/ports", server.base))
        .header(AUTH_TOKEN, &server.token)
        .json(&json!({"port": {"network_id": net_d}}))
        .send()
        .await
        .context("the create on the full /16")?;
    if over.status() != StatusCode::CONFLICT {
        bail!("a create on the full /16 answered {}", over.status());
    }
    let freed = scattered(&full, FULL_FREE);
    eprintln!("network: releasing {} scattered addresses", freed.len());
    delete_concurrently(&server, &freed, workers).await?;
    allocs.push(time_sequential(&server, &net_d, false).await?.describe(
        &format!("nearly full /16: all taken, then {FULL_FREE} scattered ones released"),
        "10.3.0.0/16",
        "10.3.0.2–10.3.255.254",
        SLASH16_POOL as u64,
        (SLASH16_POOL - FULL_FREE) as u64,
    ));

    Ok(NetworkReport {
        host: HostInfo::collect(),
        bin: String::new(),
        data_dir: String::new(),
        listen: String::new(),
        create,
        fill_ports: fill,
        fill_ports_per_s,
        full_fill_ports_per_s,
        list_ports: args.list_ports as usize,
        list_addresses_contiguous,
        lists,
        allocs,
    })
}

/// [`LIST_GETS`] sequential `GET /ports?{query}`, each read to the end of its body.
async fn time_list(server: &Server, query: &str) -> anyhow::Result<ListResult> {
    let url = if query.is_empty() {
        format!("{}{NET}/ports", server.base)
    } else {
        format!("{}{NET}/ports?{query}", server.base)
    };
    eprintln!("network: {LIST_GETS} × GET {url}");
    let mut first = None;
    let mut lat = Vec::with_capacity(LIST_GETS);
    let cpu = read_cpu_secs(server.pid);
    for _ in 0..LIST_GETS {
        let t = Instant::now();
        let resp = server
            .client
            .get(&url)
            .header(AUTH_TOKEN, &server.token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.bytes().await.with_context(|| format!("GET {url}"))?;
        lat.push(t.elapsed().as_micros() as u64);
        if status != StatusCode::OK {
            bail!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if first.is_none() {
            first = Some(body);
        }
    }
    let cpu = cpu_delta(cpu, read_cpu_secs(server.pid));
    let body = first.context("no GET")?;
    let v: Value = serde_json::from_slice(&body).context("GET /ports: not JSON")?;
    let ports_returned = v["ports"].as_array().context("no ports array")?.len();
    let latency = Latency::of_us(&mut lat).context("no GETs")?;
    eprintln!(
        "network:   p50 {:.1} ms, {} bytes, {ports_returned} ports",
        latency.p50_ms,
        body.len()
    );
    Ok(ListResult {
        query: query.to_string(),
        latency,
        bytes: body.len(),
        ports_returned,
        server_cpu_ms_per_get: cpu.map(|c| c * 1000.0 / LIST_GETS as f64),
    })
}

/// What [`time_sequential`] measured, before it is named.
struct Sequential {
    latency: Latency,
    cpu_ms: Option<f64>,
    exhausted_409: Option<bool>,
}

impl Sequential {
    fn describe(
        self,
        scenario: &str,
        cidr: &str,
        pool: &str,
        pool_size: u64,
        taken_before: u64,
    ) -> AllocResult {
        AllocResult {
            scenario: scenario.to_string(),
            cidr: cidr.to_string(),
            pool: pool.to_string(),
            pool_size,
            taken_before,
            latency: self.latency,
            server_cpu_ms_per_create: self.cpu_ms,
            exhausted_409: self.exhausted_409,
        }
    }
}

/// [`ALLOC_CREATES`] creates on `net`, one at a time; with `then_full`, one more that must
/// answer 409 `IpAddressGenerationFailure`.
async fn time_sequential(
    server: &Server,
    net: &str,
    then_full: bool,
) -> anyhow::Result<Sequential> {
    eprintln!("network: {ALLOC_CREATES} sequential creates on {net}");
    let mut lat = Vec::with_capacity(ALLOC_CREATES);
    let cpu = read_cpu_secs(server.pid);
    for _ in 0..ALLOC_CREATES {
        let t = Instant::now();
        create_port(server, net).await?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    let cpu_ms =
        cpu_delta(cpu, read_cpu_secs(server.pid)).map(|c| c * 1000.0 / ALLOC_CREATES as f64);
    let exhausted_409 = if then_full {
        let resp = server
            .client
            .post(format!("{}{NET}/ports", server.base))
            .header(AUTH_TOKEN, &server.token)
            .json(&json!({"port": {"network_id": net}}))
            .send()
            .await
            .context("the create past the end of the pool")?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let ok = status == StatusCode::CONFLICT && text.contains("IpAddressGenerationFailure");
        if !ok {
            eprintln!("network: the create past the end of the pool answered {status}: {text}");
        }
        Some(ok)
    } else {
        None
    };
    let latency = Latency::of_us(&mut lat).context("no creates")?;
    eprintln!(
        "network:   p50 {:.1} ms, p99 {:.1} ms",
        latency.p50_ms, latency.p99_ms
    );
    Ok(Sequential {
        latency,
        cpu_ms,
        exhausted_409,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: NetworkBenchArgs,
    }

    #[test]
    fn defaults() {
        let a = Cli::parse_from(["x", "--data-dir", "/tmp/d"]).args;
        assert_eq!(a.listen, "127.0.0.1:18442");
        assert_eq!(a.concurrency, 32);
        assert_eq!(a.ports, 2000);
        assert_eq!(a.list_ports, 10_000);
        assert_eq!(a.bin, None);
        assert!(!a.keep && !a.json);
        assert!(Cli::try_parse_from(["x"]).is_err());
        assert!(Cli::try_parse_from(["x", "--data-dir", "d", "--concurrency", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--data-dir", "d", "--ports", "0"]).is_err());
        let b = Cli::parse_from(["x", "--data-dir", "d", "--ports", "5", "--list-ports", "9"]);
        assert_eq!((b.args.ports, b.args.list_ports), (5, 9));
    }

    #[test]
    fn latency_percentiles() {
        let mut us: Vec<u64> = (1..=100).rev().map(|i| i * 1000).collect();
        let l = Latency::of_us(&mut us).unwrap();
        assert_eq!(
            l,
            Latency {
                count: 100,
                p50_ms: 50.0,
                p95_ms: 95.0,
                p99_ms: 99.0,
                max_ms: 100.0
            }
        );
        assert_eq!(Latency::of_us(&mut []), None);
        let one = Latency::of_us(&mut [1500]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (1.5, 1.5, 1.5));
    }

    #[test]
    fn tail_pools() {
        let (s, e) = tail_pool(Ipv4Addr::new(10, 1, 0, 0), 16, 300).unwrap();
        assert_eq!(s, Ipv4Addr::new(10, 1, 254, 211));
        assert_eq!(e, Ipv4Addr::new(10, 1, 255, 254));
        assert_eq!(u32::from(e) - u32::from(s) + 1, 300);
        // Host bits of the base are ignored.
        assert_eq!(tail_pool(Ipv4Addr::new(10, 1, 7, 9), 16, 300), Some((s, e)));
        assert_eq!(
            tail_pool(Ipv4Addr::new(192, 168, 1, 0), 24, 1),
            Some((
                Ipv4Addr::new(192, 168, 1, 254),
                Ipv4Addr::new(192, 168, 1, 254)
            ))
        );
        // A /24 has 254 usable addresses, the gateway .1 among them: 253 fit, 254 do not.
        assert!(tail_pool(Ipv4Addr::new(192, 168, 1, 0), 24, 253).is_some());
        assert_eq!(tail_pool(Ipv4Addr::new(192, 168, 1, 0), 24, 254), None);
        assert_eq!(tail_pool(Ipv4Addr::new(192, 168, 1, 0), 24, 0), None);
        assert_eq!(tail_pool(Ipv4Addr::new(192, 168, 1, 0), 31, 1), None);
    }

    #[test]
    fn contiguity() {
        let s = Ipv4Addr::new(10, 0, 0, 2);
        let ips = [
            Ipv4Addr::new(10, 0, 0, 4),
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 3),
        ];
        assert!(contiguous_from(&ips, s));
        assert!(!contiguous_from(&ips[..2], s));
        assert!(!contiguous_from(&ips, Ipv4Addr::new(10, 0, 0, 1)));
        assert!(contiguous_from(&[], s));
        let wrap = [Ipv4Addr::new(10, 0, 0, 255), Ipv4Addr::new(10, 0, 1, 0)];
        assert!(contiguous_from(&wrap, Ipv4Addr::new(10, 0, 0, 255)));
    }

    #[test]
    fn markdown_tables() {
        let l = Latency {
            count: 50,
            p50_ms: 1.25,
            p95_ms: 2.0,
            p99_ms: 3.0,
            max_ms: 4.0,
        };
        let r = NetworkReport {
            host: HostInfo {
                date_utc: "2026-01-02 03:04:05 UTC".into(),
                nproc: 2,
                cpu_model: "Test CPU".into(),
                build: "release",
            },
            bin: "strata".into(),
            data_dir: "/d".into(),
            listen: "127.0.0.1:18442".into(),
            create: CreateResult {
                ports: 2000,
                concurrency: 32,
                secs: 4.0,
                ports_per_s: 500.0,
                latency: l,
                server_cpu_secs: Some(3.5),
                listed: 2000,
                distinct_ips: 2000,
                distinct_macs: 2000,
            },
            fill_ports: 8000,
            fill_ports_per_s: 400.0,
            full_fill_ports_per_s: 900.0,
            list_ports: 10_000,
            list_addresses_contiguous: true,
            lists: vec![ListResult {
                query: "limit=100".into(),
                latency: l,
                bytes: 12345,
                ports_returned: 100,
                server_cpu_ms_per_get: None,
            }],
            allocs: vec![AllocResult {
                scenario: "nearly full".into(),
                cidr: "10.1.0.0/16".into(),
                pool: "a–b".into(),
                pool_size: 300,
                taken_before: 200,
                latency: l,
                server_cpu_ms_per_create: Some(2.0),
                exhausted_409: Some(true),
            }],
        };
        let md = r.to_markdown();
        assert!(md.starts_with("**strata bench network** — 2026-01-02 03:04:05 UTC"));
        assert!(
            md.contains(
                "| concurrent creates | 2000 | 32 | 4.00 | 500.0 | 1.2 | 2.0 | 3.0 | 4.0 | 3.50 |"
            ),
            "{md}"
        );
        assert!(md.contains("| `?limit=100` | 100 | 12345 | 1.2 | 2.0 | 4.0 | - |"));
        assert!(md.contains(
            "| nearly full | 10.1.0.0/16 | a–b | 300 | 200 | 1.2 | 3.0 | 4.0 | 2.0 | 409 IpAddressGenerationFailure |"
        ));
        assert!(md.contains("lowest 10000 of its pool, contiguous"));
    }
}
