//! `strata bench storage`: image upload and download, and volumes from an image, a snapshot
//! and a volume, against the disk they land on.
//!
//! It starts its own `strata up` on a fresh data directory (as `strata bench up` does), writes
//! a test file of `--size-mib` inside that directory (so on the same filesystem as the image
//! and volume stores) and measures, in order:
//!
//! 1. the baseline: the real `cp` of the test file followed by `sync` of the copy (the server
//!    fsyncs what it stores, so the baseline does too);
//! 2. `PUT /image/v2/images/{id}/file` of the test file by the real `curl`, sampling the
//!    server's RSS during the upload (the upload must stream: the target is a delta ≤ 64 MiB);
//! 3. `GET /image/v2/images/{id}/file` by `curl -o`, then (untimed) its size and md5 against
//!    the image's `checksum`;
//! 4. `POST /volume/v3/{project}/volumes` with `imageRef`, polled every 10 ms to `available`;
//! 5. a snapshot of that volume, a clone of it (`source_volid`) and a volume from the snapshot,
//!    each to `available`, with the space allocated under `<data_dir>/volumes` before and after
//!    (hard-linked files counted once): copy-on-write pieces should add kilobytes, not the
//!    volume's size.
//!
//! Everything it creates is deleted, the server stopped with SIGTERM and the data directory
//! removed unless `--keep`. The test file was just written, so `cp`, the upload and the
//! download all read it (or the image) from the page cache; dropping the cache needs root and
//! is not attempted. For context it also times `md5sum` and `sha512sum` of the test file: the
//! server hashes every uploaded byte with both, on one core.
//!
//! Spawning `curl` and `cp` keeps the client's costs those of ordinary tools and keeps the
//! crate free of a streaming HTTP client.

use crate::clouds::load_cloud;
use crate::keystone::{error_chain, password_auth_body, tokens_url, AUTH_TOKEN, SUBJECT_TOKEN};
use crate::procfs::{kib_to_mib, read_cpu_secs, read_vmrss_kib, RssSampler};
use crate::report::{opt, HostInfo};
use anyhow::{bail, Context};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// How long the server may take to issue its first token.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a volume or snapshot may take to become available (or to go away).
const WORK_DEADLINE: Duration = Duration::from_secs(600);
/// Pause between status polls of volumes and snapshots.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// How often the server's RSS is sampled while data moves.
const RSS_EVERY: Duration = Duration::from_millis(20);
/// How long the server may take to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// Copies of the test file timed for the baseline (the median counts).
const CP_RUNS: usize = 3;
/// The test file's name inside the data dir's scratch directory.
const SCRATCH: &str = "bench-storage";

/// Arguments of `strata bench storage`.
#[derive(clap::Args, Debug, Clone)]
pub struct StorageBenchArgs {
    /// The strata binary to start [default: this executable]
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Data directory of the started server, empty or absent; put it on the disk to measure
    /// (the test files are written inside it)
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address the started server listens on; nothing else may be listening there
    #[arg(long, default_value = "127.0.0.1:18441")]
    pub listen: String,
    /// Size of the test file (and so of the image) in MiB
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub size_mib: u64,
    /// Keep the data directory (server database, image, test files) afterwards
    #[arg(long)]
    pub keep: bool,
    /// Print JSON instead of a Markdown table
    #[arg(long)]
    pub json: bool,
}

/// One timed transfer of `bytes`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Transfer {
    pub secs: f64,
    /// Decimal megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// CPU time the server used meanwhile (all threads), for the server's steps.
    pub server_cpu_secs: Option<f64>,
}

impl Transfer {
    fn of(bytes: u64, took: Duration) -> Self {
        Self {
            secs: took.as_secs_f64(),
            mb_per_s: mb_per_s(bytes, took),
            server_cpu_secs: None,
        }
    }

    /// The same, with the server's CPU time between two readings of [`read_cpu_secs`].
    fn with_cpu(self, before: Option<f64>, after: Option<f64>) -> Self {
        Self {
            server_cpu_secs: before.zip(after).map(|(b, a)| (a - b).max(0.0)),
            ..self
        }
    }
}

/// Everything one `strata bench storage` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StorageReport {
    pub host: HostInfo,
    pub bin: String,
    pub data_dir: String,
    pub listen: String,
    /// Size of the test file and of the image.
    pub bytes: u64,
    /// Writing the test file (1 MiB blocks, then fsync): the disk's write speed, for context.
    pub write_test_file: Transfer,
    /// `md5sum` / `sha512sum` of the test file (page-cached): what hashing costs per byte on
    /// one core; `None` when the tool is missing.
    pub md5sum: Option<Transfer>,
    pub sha512sum: Option<Transfer>,
    /// `cp` of the test file plus `sync` of the copy: the median of three.
    pub cp: Transfer,
    /// Every copy's MB/s, fastest first.
    pub cp_runs_mb_per_s: Vec<f64>,
    /// md5 then sha512 of every byte on one core, as the upload hashes: the upload's ceiling
    /// on this CPU (from the `md5sum` and `sha512sum` rows).
    pub hash_ceiling_mb_per_s: Option<f64>,
    /// `curl -T` to `PUT …/file`, until the 204.
    pub upload: Transfer,
    /// The upload's MB/s over `cp`'s.
    pub upload_vs_cp: f64,
    /// Server RSS before the upload, its peak during it, and the difference, in MiB.
    pub rss_idle_mib: Option<f64>,
    pub rss_upload_peak_mib: Option<f64>,
    pub rss_upload_delta_mib: Option<f64>,
    /// `curl -o` of `GET …/file`.
    pub download: Transfer,
    pub download_vs_cp: f64,
    pub rss_download_peak_mib: Option<f64>,
    /// The downloaded file has the image's size and its md5 is the image's `checksum`.
    pub download_verified: bool,
    /// `POST /volumes` with `imageRef` to `available`.
    pub volume_from_image: Transfer,
    pub volume_from_image_vs_cp: f64,
    pub volume_size_gib: u64,
    pub rss_volume_peak_mib: Option<f64>,
    /// `POST /snapshots` to `available`, in ms.
    pub snapshot_ms: f64,
    /// `POST /volumes` with `source_volid` to `available`, in ms.
    pub clone_ms: f64,
    /// `POST /volumes` with `snapshot_id` to `available`, in ms.
    pub from_snapshot_ms: f64,
    /// Bytes allocated under `<data_dir>/volumes` before the snapshot and after the volume
    /// from the snapshot.
    pub volumes_allocated_before: u64,
    pub volumes_allocated_after: u64,
}

impl StorageReport {
    /// Allocated growth of the volume store over the snapshot, clone and from-snapshot steps.
    pub fn cow_growth_bytes(&self) -> i64 {
        self.volumes_allocated_after as i64 - self.volumes_allocated_before as i64
    }

    /// The report as Markdown: a header line, what was run, and a table.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let mib = self.bytes as f64 / MIB as f64;
        let _ = writeln!(s, "{}", self.host.header("strata bench storage"));
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{mib:.0} MiB test file in `{}` (page-cached: every step reads it, or the image, from \
             memory) · `strata up --listen {}` · MB = 10^6 bytes.",
            self.data_dir, self.listen
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| step | seconds | MB/s | vs cp | server CPU s | server RSS MiB | notes |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
        let row =
            |s: &mut String, step: &str, t: &Transfer, vs: Option<f64>, rss: &str, n: &str| {
                let _ = writeln!(
                    s,
                    "| {step} | {:.2} | {:.1} | {} | {} | {rss} | {n} |",
                    t.secs,
                    t.mb_per_s,
                    vs.map_or_else(|| "-".into(), |v| format!("{:.0} %", v * 100.0)),
                    opt(t.server_cpu_secs, 2),
                );
            };
        row(
            &mut s,
            "write test file",
            &self.write_test_file,
            None,
            "-",
            "1 MiB blocks + fsync (disk write, context)",
        );
        if let Some(t) = &self.md5sum {
            row(&mut s, "md5sum", t, None, "-", "one core, context");
        }
        if let Some(t) = &self.sha512sum {
            row(&mut s, "sha512sum", t, None, "-", "one core, context");
        }
        let runs: Vec<String> = self
            .cp_runs_mb_per_s
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect();
        row(
            &mut s,
            "cp + sync",
            &self.cp,
            Some(1.0),
            "-",
            &format!("baseline: median of {} MB/s", runs.join(" / ")),
        );
        let rss_up = format!(
            "{} idle → {} peak (Δ {})",
            opt(self.rss_idle_mib, 1),
            opt(self.rss_upload_peak_mib, 1),
            opt(self.rss_upload_delta_mib, 1)
        );
        row(
            &mut s,
            "image upload (`PUT …/file`)",
            &self.upload,
            Some(self.upload_vs_cp),
            &rss_up,
            &format!(
                "md5 + sha512 + fsync in the server; one-core hashing ceiling {} MB/s",
                opt(self.hash_ceiling_mb_per_s, 0)
            ),
        );
        row(
            &mut s,
            "image download (`GET …/file`)",
            &self.download,
            Some(self.download_vs_cp),
            &format!("{} peak", opt(self.rss_download_peak_mib, 1)),
            if self.download_verified {
                "size and md5 match the image's checksum"
            } else {
                "**size or md5 MISMATCH**"
            },
        );
        row(
            &mut s,
            "volume from image",
            &self.volume_from_image,
            Some(self.volume_from_image_vs_cp),
            &format!("{} peak", opt(self.rss_volume_peak_mib, 1)),
            &format!(
                "{} GiB raw volume, POST to `available`",
                self.volume_size_gib
            ),
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "| copy-on-write step | ms to `available` |");
        let _ = writeln!(s, "|---|---:|");
        let _ = writeln!(s, "| snapshot of the volume | {:.1} |", self.snapshot_ms);
        let _ = writeln!(s, "| clone (`source_volid`) | {:.1} |", self.clone_ms);
        let _ = writeln!(
            s,
            "| volume from the snapshot | {:.1} |",
            self.from_snapshot_ms
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "`<data_dir>/volumes` allocated: {} before the three steps, {} after (growth {}).",
            human_bytes(self.volumes_allocated_before as f64),
            human_bytes(self.volumes_allocated_after as f64),
            human_bytes(self.cow_growth_bytes() as f64),
        );
        s
    }
}

/// Decimal megabytes per second for `bytes` moved in `took` (0 for a zero duration).
pub fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    bytes as f64 / 1e6 / secs
}

/// The rate of doing two passes over the same bytes one after the other, at rates `a` and `b`.
pub fn serial_rate(a: f64, b: f64) -> f64 {
    if a <= 0.0 || b <= 0.0 {
        return 0.0;
    }
    1.0 / (1.0 / a + 1.0 / b)
}

/// The smallest whole number of GiB holding `bytes`, at least 1 (a volume's size).
pub fn size_gib_for(bytes: u64) -> u64 {
    bytes.div_ceil(GIB).max(1)
}

/// `1.2 GiB`, `340.0 KiB`, `-12.0 KiB`: bytes for humans.
fn human_bytes(b: f64) -> String {
    let a = b.abs();
    if a >= GIB as f64 {
        format!("{:.2} GiB", b / GIB as f64)
    } else if a >= MIB as f64 {
        format!("{:.1} MiB", b / MIB as f64)
    } else if a >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// Bytes allocated on disk by the files under `dir` (recursively): `st_blocks * 512` summed,
/// each inode counted once however many names it has. A missing `dir` holds nothing.
pub fn allocated_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            // Files come and go while the server works (temp files); skip what vanished.
            let m = match std::fs::symlink_metadata(e.path()) {
                Ok(m) => m,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
    }
    Ok(total)
}

/// Writes `size_mib` MiB of incompressible bytes to `path` and fsyncs it: one pseudo-random
/// MiB repeated, each copy stamped with its index so no two blocks are equal.
pub fn write_test_file(path: &Path, size_mib: u64, seed: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut block = vec![0u8; MIB as usize];
    // xorshift64*: fast, and plenty random for bytes no compressor should squeeze.
    let mut x = seed | 1;
    for chunk in block.chunks_exact_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        chunk.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    let mut f = std::fs::File::create(path)?;
    for i in 0..size_mib {
        block[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&block)?;
    }
    f.sync_all()
}

/// The `strata` binary to start: `bin` when given, else this executable.
pub(crate) fn strata_bin(bin: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match bin {
        Some(b) => Ok(b.clone()),
        None => std::env::current_exe().context("finding this executable (give --bin)"),
    }
}

/// Fails unless `dir` is empty or absent (benchmarks remove their data dir afterwards).
pub(crate) fn require_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; give an empty or absent --data-dir (it is removed afterwards)",
                    dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    }
    Ok(())
}

/// Runs the storage benchmark and prints its report (Markdown, or JSON with `--json`).
pub async fn run_storage(args: StorageBenchArgs) -> anyhow::Result<()> {
    let report = measure_storage(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// Runs the storage benchmark and returns what it measured, printing only progress (stderr).
pub async fn measure_storage(args: &StorageBenchArgs) -> anyhow::Result<StorageReport> {
    let bin = crate::storage::strata_bin(args.bin.as_ref())?;
    for (tool, why) in [
        ("curl", "streams the image up and down"),
        ("cp", "is the baseline"),
        ("sync", "flushes the baseline's copy"),
    ] {
        if !tool_exists(tool).await {
            bail!("`{tool}` was not found on PATH; it {why}: install it (e.g. apt install {tool})");
        }
    }
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
        eprintln!("storage: kept {}", data_dir.display());
    } else if let Err(e) = std::fs::remove_dir_all(&data_dir) {
        eprintln!("storage: warning: removing {}: {e}", data_dir.display());
    }
    result
}

/// The local steps, then the server's; the server is stopped whatever happens.
async fn measure_in(
    args: &StorageBenchArgs,
    bin: &Path,
    data_dir: &Path,
    host: HostInfo,
) -> anyhow::Result<StorageReport> {
    let scratch = data_dir.join(SCRATCH);
    std::fs::create_dir_all(&scratch)?;
    let src = scratch.join("test.bin");
    let bytes = args.size_mib * MIB;

    eprintln!(
        "storage: writing a {} MiB test file to {}",
        args.size_mib,
        src.display()
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5eed, |d| d.as_nanos() as u64);
    let t = Instant::now();
    let (p, n) = (src.clone(), args.size_mib);
    tokio::task::spawn_blocking(move || write_test_file(&p, n, seed))
        .await?
        .context("writing the test file")?;
    let write_test_file = Transfer::of(bytes, t.elapsed());

    let md5sum = time_tool("md5sum", &src, bytes).await;
    let sha512sum = time_tool("sha512sum", &src, bytes).await;

    // The disk's write speed varies from run to run (a VM's disk especially): take the median
    // of a few copies.
    let copy = scratch.join("copy.bin");
    let mut cp_runs = Vec::new();
    for _ in 0..CP_RUNS {
        let t = Instant::now();
        run("cp", &[src.as_os_str(), copy.as_os_str()]).await?;
        run("sync", &[copy.as_os_str()]).await?;
        let took = t.elapsed();
        std::fs::remove_file(&copy)?;
        eprintln!("storage: cp + sync: {:.1} MB/s", mb_per_s(bytes, took));
        cp_runs.push(took);
    }
    cp_runs.sort_unstable();
    let cp = Transfer::of(bytes, cp_runs[cp_runs.len() / 2]);
    let cp_runs_mb_per_s: Vec<f64> = cp_runs.iter().map(|d| mb_per_s(bytes, *d)).collect();

    eprintln!(
        "storage: starting {} up on {}",
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
        Ok(mut server) => {
            let mut created = Created::default();
            let r = server_steps(&mut server, &mut created, &scratch, &src, bytes, data_dir).await;
            server.clean_up(&created).await;
            r
        }
        Err(e) => Err(e),
    };
    stop(&mut child).await?;
    let m = measured?;
    let _ = std::fs::remove_dir_all(&scratch);
    let vs = |t: &Transfer| {
        if cp.mb_per_s > 0.0 {
            t.mb_per_s / cp.mb_per_s
        } else {
            0.0
        }
    };
    Ok(StorageReport {
        host,
        bin: bin.display().to_string(),
        data_dir: data_dir.display().to_string(),
        listen: args.listen.clone(),
        bytes,
        write_test_file,
        hash_ceiling_mb_per_s: md5sum
            .zip(sha512sum)
            .map(|(a, b)| serial_rate(a.mb_per_s, b.mb_per_s)),
        md5sum,
        sha512sum,
        cp_runs_mb_per_s,
        upload_vs_cp: vs(&m.upload),
        download_vs_cp: vs(&m.download),
        volume_from_image_vs_cp: vs(&m.volume_from_image),
        cp,
        upload: m.upload,
        rss_idle_mib: m.rss_idle_kib.map(kib_to_mib),
        rss_upload_peak_mib: m.rss_upload_peak_kib.map(kib_to_mib),
        rss_upload_delta_mib: match (m.rss_idle_kib, m.rss_upload_peak_kib) {
            (Some(i), Some(p)) => Some(kib_to_mib(p.saturating_sub(i))),
            _ => None,
        },
        download: m.download,
        rss_download_peak_mib: m.rss_download_peak_kib.map(kib_to_mib),
        download_verified: m.download_verified,
        volume_from_image: m.volume_from_image,
        volume_size_gib: m.volume_size_gib,
        rss_volume_peak_mib: m.rss_volume_peak_kib.map(kib_to_mib),
        snapshot_ms: ms(m.snapshot),
        clone_ms: ms(m.clone),
        from_snapshot_ms: ms(m.from_snapshot),
        volumes_allocated_before: m.alloc_before,
        volumes_allocated_after: m.alloc_after,
    })
}

/// What the server steps measured.
struct ServerMeasures {
    upload: Transfer,
    rss_idle_kib: Option<u64>,
    rss_upload_peak_kib: Option<u64>,
    download: Transfer,
    rss_download_peak_kib: Option<u64>,
    download_verified: bool,
    volume_from_image: Transfer,
    volume_size_gib: u64,
    rss_volume_peak_kib: Option<u64>,
    snapshot: Duration,
    clone: Duration,
    from_snapshot: Duration,
    alloc_before: u64,
    alloc_after: u64,
}

/// What the run created on the server, for the clean-up.
#[derive(Default)]
struct Created {
    image: Option<String>,
    /// Volumes in creation order; the first is the snapshot's volume.
    volumes: Vec<String>,
}

async fn server_steps(
    server: &mut Server,
    created: &mut Created,
    scratch: &Path,
    src: &Path,
    bytes: u64,
    data_dir: &Path,
) -> anyhow::Result<ServerMeasures> {
    // 2. Upload.
    let image = server
        .call(
            reqwest::Method::POST,
            "/image/v2/images",
            Some(json!({
                "name": "strata-bench-storage",
                "disk_format": "raw",
                "container_format": "bare",
            })),
            StatusCode::CREATED,
        )
        .await?;
    let image_id = str_at(&image, "/id")?;
    created.image = Some(image_id.clone());
    let file_url = format!("{}/image/v2/images/{image_id}/file", server.base);
    let rss_idle_kib = read_vmrss_kib(server.pid);
    eprintln!("storage: uploading image {image_id}");
    let sampler = RssSampler::start(server.pid, RSS_EVERY);
    let cpu = read_cpu_secs(server.pid);
    let t = Instant::now();
    let up = server
        .curl(&[
            "-T".as_ref(),
            src.as_os_str(),
            "-H".as_ref(),
            "Content-Type: application/octet-stream".as_ref(),
            "-X".as_ref(),
            "PUT".as_ref(),
            file_url.as_ref(),
        ])
        .await;
    let took = t.elapsed();
    let rss_upload_peak_kib = sampler.stop().await;
    up.context("uploading the image")?;
    let upload = Transfer::of(bytes, took).with_cpu(cpu, read_cpu_secs(server.pid));
    eprintln!("storage: upload: {:.1} MB/s", upload.mb_per_s);

    let image = server
        .call(
            reqwest::Method::GET,
            &format!("/image/v2/images/{image_id}"),
            None,
            StatusCode::OK,
        )
        .await?;
    let status = str_at(&image, "/status")?;
    if status != "active" || image.pointer("/size").and_then(Value::as_u64) != Some(bytes) {
        bail!(
            "after the upload the image is {status} with size {}, expected active with {bytes}",
            image["size"]
        );
    }
    let checksum = str_at(&image, "/checksum")?;

    // 3. Download.
    let out = scratch.join("download.bin");
    let sampler = RssSampler::start(server.pid, RSS_EVERY);
    let cpu = read_cpu_secs(server.pid);
    let t = Instant::now();
    let down = server
        .curl(&["-o".as_ref(), out.as_os_str(), file_url.as_ref()])
        .await;
    let took = t.elapsed();
    let rss_download_peak_kib = sampler.stop().await;
    down.context("downloading the image")?;
    let download = Transfer::of(bytes, took).with_cpu(cpu, read_cpu_secs(server.pid));
    eprintln!("storage: download: {:.1} MB/s", download.mb_per_s);
    let got = std::fs::metadata(&out)?.len();
    let md5 = md5_of(&out).await;
    let download_verified = got == bytes && md5.as_deref() == Some(checksum.as_str());
    if !download_verified {
        eprintln!(
            "storage: warning: downloaded {got} bytes with md5 {md5:?}; the image has {bytes} \
             with checksum {checksum}"
        );
    }
    std::fs::remove_file(&out)?;

    // 4. Volume from the image.
    let volume_size_gib = size_gib_for(bytes);
    eprintln!("storage: creating a {volume_size_gib} GiB volume from the image");
    let sampler = RssSampler::start(server.pid, RSS_EVERY);
    let cpu = read_cpu_secs(server.pid);
    let t = Instant::now();
    let made = server
        .create_volume(
            created,
            json!({"size": volume_size_gib, "imageRef": image_id, "name": "bench-from-image"}),
        )
        .await;
    let took = t.elapsed();
    let rss_volume_peak_kib = sampler.stop().await;
    let volume = made?;
    let volume_from_image = Transfer::of(bytes, took).with_cpu(cpu, read_cpu_secs(server.pid));
    eprintln!(
        "storage: volume from image: {:.2} s, {:.1} MB/s",
        volume_from_image.secs, volume_from_image.mb_per_s
    );

    // 5. Copy-on-write steps.
    let volumes_dir = data_dir.join("volumes");
    let alloc_before = allocated_bytes(&volumes_dir)?;
    let t = Instant::now();
    let snap = server
        .call(
            reqwest::Method::POST,
            &server.volume_path("/snapshots"),
            Some(json!({"snapshot": {"volume_id": volume, "name": "bench-snap"}})),
            StatusCode::ACCEPTED,
        )
        .await?;
    let snap_id = str_at(&snap, "/snapshot/id")?;
    server
        .wait_available(
            &server.volume_path(&format!("/snapshots/{snap_id}")),
            "snapshot",
        )
        .await?;
    let snapshot = t.elapsed();
    eprintln!("storage: snapshot: {:.1} ms", ms(snapshot));

    let t = Instant::now();
    server
        .create_volume(
            created,
            json!({"source_volid": volume, "name": "bench-clone"}),
        )
        .await?;
    let clone = t.elapsed();
    eprintln!("storage: clone: {:.1} ms", ms(clone));

    let t = Instant::now();
    server
        .create_volume(
            created,
            json!({"snapshot_id": snap_id, "name": "bench-from-snap"}),
        )
        .await?;
    let from_snapshot = t.elapsed();
    eprintln!("storage: volume from snapshot: {:.1} ms", ms(from_snapshot));
    let alloc_after = allocated_bytes(&volumes_dir)?;

    Ok(ServerMeasures {
        upload,
        rss_idle_kib,
        rss_upload_peak_kib,
        download,
        rss_download_peak_kib,
        download_verified,
        volume_from_image,
        volume_size_gib,
        rss_volume_peak_kib,
        snapshot,
        clone,
        from_snapshot,
        alloc_before,
        alloc_after,
    })
}

/// The started server and the admin's token on it (shared with `strata bench network`).
pub(crate) struct Server {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) project: String,
    pub(crate) pid: u32,
}

impl Server {
    /// Waits for `clouds.yaml` and a first token as admin, keeping the token and project id.
    pub(crate) async fn login(
        mut self,
        child: &mut tokio::process::Child,
        data_dir: &Path,
    ) -> anyhow::Result<Server> {
        let started = Instant::now();
        let clouds_yaml = data_dir.join("clouds.yaml");
        let url = tokens_url(&self.base);
        let mut last = String::from("nothing tried yet");
        loop {
            if started.elapsed() > START_DEADLINE {
                bail!(
                    "no token from {url} within {} s (last: {last})",
                    START_DEADLINE.as_secs()
                );
            }
            if let Some(status) = child.try_wait().context("checking on `strata up`")? {
                bail!("`strata up` exited with {status} before issuing a token (last: {last})");
            }
            match load_cloud(&clouds_yaml, "strata", true).await {
                Ok(c) => {
                    if let Some(password) = c.password {
                        let creds = crate::keystone::Credentials {
                            username: c.username.unwrap_or_else(|| "admin".into()),
                            password,
                            project: c.project_name.unwrap_or_else(|| "admin".into()),
                        };
                        let sent = self
                            .client
                            .post(&url)
                            .json(&password_auth_body(&creds))
                            .send()
                            .await;
                        match sent {
                            Ok(resp) if resp.status() == StatusCode::CREATED => {
                                let token = resp
                                    .headers()
                                    .get(SUBJECT_TOKEN)
                                    .and_then(|v| v.to_str().ok())
                                    .context("201 without an X-Subject-Token")?
                                    .to_string();
                                let body: Value = resp.json().await.context("token body")?;
                                self.project = str_at(&body, "/token/project/id")?;
                                self.token = token;
                                return Ok(self);
                            }
                            Ok(resp) => last = format!("HTTP {}", resp.status()),
                            Err(e) => last = error_chain(&e.without_url()),
                        }
                    } else {
                        last = format!("{} has no password yet", clouds_yaml.display());
                    }
                }
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn volume_path(&self, rest: &str) -> String {
        format!("/volume/v3/{}{rest}", self.project)
    }

    /// One JSON request; fails unless it answers `expect`. Bodiless answers give `null`.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expect: StatusCode,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .header(AUTH_TOKEN, &self.token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {path}: {}", error_chain(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status != expect {
            bail!("{method} {path} answered {status}, expected {expect}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }

    /// `curl` with the token, failing on any HTTP error.
    async fn curl(&self, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-f", "--no-progress-meter", "-H", "Expect:", "-H"])
            .arg(format!("{AUTH_TOKEN}: {}", self.token))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .context("running curl")?;
        if !out.status.success() {
            bail!(
                "curl failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// `POST /volumes` with `fields`, then polls it to `available`; returns its id.
    async fn create_volume(&self, created: &mut Created, fields: Value) -> anyhow::Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                &self.volume_path("/volumes"),
                Some(json!({ "volume": fields })),
                StatusCode::ACCEPTED,
            )
            .await?;
        let id = str_at(&v, "/volume/id")?;
        created.volumes.push(id.clone());
        self.wait_available(&self.volume_path(&format!("/volumes/{id}")), "volume")
            .await?;
        Ok(id)
    }

    /// Polls `path` every 10 ms until its `key` entity is `available`; fails on `error*`.
    async fn wait_available(&self, path: &str, key: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let v = self
                .call(reqwest::Method::GET, path, None, StatusCode::OK)
                .await?;
            let status = str_at(&v, &format!("/{key}/status"))?;
            match status.as_str() {
                "available" => return Ok(()),
                s if s.starts_with("error") => bail!("{key} at {path} went to {s}: {v}"),
                _ => {}
            }
            if started.elapsed() > WORK_DEADLINE {
                bail!(
                    "{key} at {path} still {status} after {} s",
                    WORK_DEADLINE.as_secs()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Deletes what the run created, newest volume first (the first one with its snapshot),
    /// waiting for the volumes to go; failures are reported, not fatal.
    async fn clean_up(&self, created: &Created) {
        for (i, id) in created.volumes.iter().enumerate().rev() {
            let q = if i == 0 { "?cascade=true" } else { "" };
            let path = self.volume_path(&format!("/volumes/{id}"));
            let del = self
                .call(
                    reqwest::Method::DELETE,
                    &format!("{path}{q}"),
                    None,
                    StatusCode::ACCEPTED,
                )
                .await;
            if let Err(e) = del {
                eprintln!("storage: warning: deleting volume {id}: {e:#}");
                continue;
            }
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                match self
                    .call(reqwest::Method::GET, &path, None, StatusCode::OK)
                    .await
                {
                    Ok(_) => tokio::time::sleep(POLL_EVERY).await,
                    Err(_) => break,
                }
            }
        }
        if let Some(id) = &created.image {
            if let Err(e) = self
                .call(
                    reqwest::Method::DELETE,
                    &format!("/image/v2/images/{id}"),
                    None,
                    StatusCode::NO_CONTENT,
                )
                .await
            {
                eprintln!("storage: warning: deleting image {id}: {e:#}");
            }
        }
    }
}

/// The string at JSON pointer `ptr` of `v`.
pub(crate) fn str_at(v: &Value, ptr: &str) -> anyhow::Result<String> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no string at {ptr} in {v}"))
}

/// Whether `tool --version` runs.
async fn tool_exists(tool: &str) -> bool {
    tokio::process::Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Runs `cmd args`, failing unless it exits 0.
async fn run(cmd: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Times `tool file` (a hashing tool); `None` if it is missing or fails.
async fn time_tool(tool: &str, file: &Path, bytes: u64) -> Option<Transfer> {
    let t = Instant::now();
    match run(tool, &[file.as_os_str()]).await {
        Ok(()) => {
            let took = Transfer::of(bytes, t.elapsed());
            eprintln!("storage: {tool}: {:.1} MB/s", took.mb_per_s);
            Some(took)
        }
        Err(e) => {
            eprintln!("storage: {tool} skipped: {e:#}");
            None
        }
    }
}

/// The md5 of `file` in hex, by `md5sum`; `None` when it cannot be computed.
async fn md5_of(file: &Path) -> Option<String> {
    let out = tokio::process::Command::new("md5sum")
        .arg(file)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_md5sum(&String::from_utf8_lossy(&out.stdout))
}

/// The hash in `md5sum`'s output (`<hex>  <name>`).
fn parse_md5sum(out: &str) -> Option<String> {
    let hex = out.split_whitespace().next()?.trim_start_matches('\\');
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sends SIGTERM (through `kill(1)`) and waits for the exit; kills the child after 30 s.
pub(crate) async fn stop(child: &mut tokio::process::Child) -> anyhow::Result<()> {
    let Some(pid) = child.id() else {
        bail!("`strata up` exited before it was asked to stop");
    };
    let kill = tokio::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await
        .context("running kill -TERM")?;
    if !kill.success() {
        let _ = child.kill().await;
        bail!("kill -TERM {pid} failed: {kill}");
    }
    match tokio::time::timeout(STOP_DEADLINE, child.wait()).await {
        Ok(status) => {
            let status = status.context("waiting for `strata up` to exit")?;
            if !status.success() {
                eprintln!("warning: `strata up` exited with {status} after SIGTERM");
            }
        }
        Err(_) => {
            eprintln!("warning: `strata up` ignored SIGTERM; killing it");
            child.kill().await.context("killing `strata up`")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: StorageBenchArgs,
    }

    #[test]
    fn defaults() {
        let a = Cli::parse_from(["x", "--data-dir", "/tmp/d"]).args;
        assert_eq!(a.listen, "127.0.0.1:18441");
        assert_eq!(a.size_mib, 1024);
        assert_eq!(a.bin, None);
        assert!(!a.keep && !a.json);
        assert!(Cli::try_parse_from(["x"]).is_err());
        assert!(Cli::try_parse_from(["x", "--data-dir", "d", "--size-mib", "0"]).is_err());
    }

    #[test]
    fn throughput_math() {
        assert_eq!(mb_per_s(100_000_000, Duration::from_secs(2)), 50.0);
        assert_eq!(mb_per_s(GIB, Duration::from_secs(1)), 1073.741824);
        assert_eq!(mb_per_s(5, Duration::ZERO), 0.0);
        assert_eq!(serial_rate(600.0, 300.0), 200.0);
        assert_eq!(serial_rate(0.0, 300.0), 0.0);
        let t = Transfer::of(3_000_000, Duration::from_millis(1500));
        assert_eq!((t.secs, t.mb_per_s, t.server_cpu_secs), (1.5, 2.0, None));
        assert_eq!(t.with_cpu(Some(1.0), Some(3.5)).server_cpu_secs, Some(2.5));
        assert_eq!(t.with_cpu(None, Some(3.5)).server_cpu_secs, None);
    }

    #[test]
    fn volume_sizes() {
        assert_eq!(size_gib_for(0), 1);
        assert_eq!(size_gib_for(1), 1);
        assert_eq!(size_gib_for(GIB), 1);
        assert_eq!(size_gib_for(GIB + 1), 2);
        assert_eq!(size_gib_for(1024 * MIB), 1);
    }

    #[test]
    fn bytes_for_humans() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(2048.0), "2.0 KiB");
        assert_eq!(human_bytes(-3.0 * MIB as f64), "-3.0 MiB");
        assert_eq!(human_bytes(1.5 * GIB as f64), "1.50 GiB");
    }

    #[test]
    fn md5sum_output() {
        let h = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(parse_md5sum(&format!("{h}  /x/y\n")).as_deref(), Some(h));
        assert_eq!(parse_md5sum("nothing here"), None);
        assert_eq!(parse_md5sum(""), None);
    }

    #[test]
    fn allocated_bytes_counts_hard_links_once_and_skips_holes() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(allocated_bytes(&dir.path().join("absent")).unwrap(), 0);
        assert_eq!(allocated_bytes(dir.path()).unwrap(), 0);

        let data = dir.path().join("data");
        let mut f = std::fs::File::create(&data).unwrap();
        f.write_all(&vec![7u8; 256 * 1024]).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let one = allocated_bytes(dir.path()).unwrap();
        assert!(one >= 256 * 1024, "{one}");

        // A second name for the same inode (what a frozen snapshot piece is) adds nothing.
        std::fs::hard_link(&data, dir.path().join("frozen")).unwrap();
        assert_eq!(allocated_bytes(dir.path()).unwrap(), one);

        // A sparse file of 1 GiB with nothing written allocates (almost) nothing.
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(GIB).unwrap();
        drop(sparse);
        let with_sparse = allocated_bytes(dir.path()).unwrap();
        assert!(with_sparse - one < MIB, "{with_sparse} vs {one}");

        // Files in subdirectories count too.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), vec![1u8; 64 * 1024]).unwrap();
        assert!(allocated_bytes(dir.path()).unwrap() > with_sparse);
    }

    #[test]
    fn test_file_blocks_differ() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        write_test_file(&p, 2, 42).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len() as u64, 2 * MIB);
        let (a, c) = b.split_at(MIB as usize);
        assert_ne!(a, c);
        assert_eq!(a[8..], c[8..]);
        // Not a constant fill.
        assert!(a[8..].windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn markdown_table() {
        let t = |secs: f64, mb: f64| Transfer {
            secs,
            mb_per_s: mb,
            server_cpu_secs: None,
        };
        let r = StorageReport {
            host: HostInfo {
                date_utc: "2026-01-02 03:04:05 UTC".into(),
                nproc: 2,
                cpu_model: "Test CPU".into(),
                build: "release",
            },
            bin: "strata".into(),
            data_dir: "/d".into(),
            listen: "127.0.0.1:18441".into(),
            bytes: GIB,
            write_test_file: t(2.0, 536.9),
            md5sum: Some(t(1.6, 671.1)),
            sha512sum: None,
            cp: t(2.0, 536.9),
            cp_runs_mb_per_s: vec![500.0, 536.9, 600.0],
            hash_ceiling_mb_per_s: Some(271.25),
            upload: Transfer {
                server_cpu_secs: Some(2.25),
                ..t(2.5, 429.5)
            },
            upload_vs_cp: 0.8,
            rss_idle_mib: Some(20.0),
            rss_upload_peak_mib: Some(30.5),
            rss_upload_delta_mib: Some(10.5),
            download: t(1.0, 1073.7),
            download_vs_cp: 2.0,
            rss_download_peak_mib: Some(25.0),
            download_verified: true,
            volume_from_image: t(3.0, 357.9),
            volume_from_image_vs_cp: 0.667,
            volume_size_gib: 1,
            rss_volume_peak_mib: None,
            snapshot_ms: 35.0,
            clone_ms: 50.0,
            from_snapshot_ms: 30.0,
            volumes_allocated_before: GIB,
            volumes_allocated_after: GIB + 600 * 1024,
        };
        assert_eq!(r.cow_growth_bytes(), 600 * 1024);
        let md = r.to_markdown();
        assert!(md.starts_with("**strata bench storage** — 2026-01-02 03:04:05 UTC"));
        assert!(
            md.contains(
                "| cp + sync | 2.00 | 536.9 | 100 % | - | - | baseline: median of 500 / 537 / 600 MB/s |"
            ),
            "{md}"
        );
        assert!(md.contains(
            "| image upload (`PUT …/file`) | 2.50 | 429.5 | 80 % | 2.25 | 20.0 idle → 30.5 peak (Δ 10.5) | md5 + sha512 + fsync in the server; one-core hashing ceiling 271 MB/s |"
        ));
        assert!(md.contains("| md5sum | 1.60 | 671.1 | - | - | - |"));
        assert!(!md.contains("| sha512sum"));
        assert!(md.contains("| volume from image | 3.00 | 357.9 | 67 % | - | - peak |"));
        assert!(md.contains("| snapshot of the volume | 35.0 |"));
        assert!(md.contains("growth 600.0 KiB"));
    }
}
