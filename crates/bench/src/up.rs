//! `strata bench up`: how long from spawning `strata up` to the first token it issues.
//!
//! The measured interval is what an operator waits for: process start, configuration, opening
//! (or creating and migrating) the database, bootstrap, binding the listener, and one password
//! authentication. It ends when the response to the first successful
//! `POST /identity/v3/auth/tokens` arrives. The first start on an empty data directory is the
//! bootstrap and is reported on its own; the following starts reuse that directory.
//!
//! The credentials come from the `clouds.yaml` the server writes into its data directory, which
//! does not exist before the first start: the poll loop waits for the file, then for the token.
//! It polls every 2 ms, so the resolution is a few milliseconds. After the token the child gets
//! SIGTERM (through `kill(1)`, to stay free of `unsafe`) and the time to its exit is reported
//! too; a child that ignores SIGTERM for 30 s is killed.

use crate::clouds::load_cloud;
use crate::keystone::{error_chain, password_auth_body, tokens_url, Credentials};
use crate::report::HostInfo;
use crate::stats::{percentile, us_to_ms};
use anyhow::{bail, Context};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a start may take to issue its first token.
const FIRST_TOKEN_DEADLINE: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between polls.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// Arguments of `strata bench up`.
#[derive(clap::Args, Debug, Clone)]
pub struct UpBenchArgs {
    /// The strata binary to start [default: this executable]
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Data directory; the first start bootstraps it (give an empty or absent one), the other
    /// runs reuse it
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address the started server listens on; nothing else may be listening there
    #[arg(long, default_value = "127.0.0.1:18440")]
    pub listen: String,
    /// Starts measured on the existing data directory, after the first one
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Print JSON instead of a Markdown table
    #[arg(long)]
    pub json: bool,
}

/// One start of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpTiming {
    /// From spawn to the first 201 answer to a password authentication.
    pub first_token: Duration,
    /// From SIGTERM to exit; `None` if the server had to be killed.
    pub stop: Option<Duration>,
}

/// min / median / max of a set of runs, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct MsSummary {
    pub runs: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub max_ms: f64,
}

impl MsSummary {
    /// Summarises durations; `None` when there are none. The median is nearest-rank (the lower
    /// middle run for an even count), so it is always a run that happened.
    pub fn of(durations: impl IntoIterator<Item = Duration>) -> Option<Self> {
        let mut us: Vec<u64> = durations
            .into_iter()
            .map(|d| d.as_micros() as u64)
            .collect();
        us.sort_unstable();
        Some(Self {
            runs: us.len(),
            min_ms: us_to_ms(*us.first()?),
            median_ms: us_to_ms(percentile(&us, 50.0)?),
            max_ms: us_to_ms(*us.last()?),
        })
    }
}

/// Everything one `strata bench up` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub host: HostInfo,
    pub bin: String,
    pub data_dir: String,
    pub listen: String,
    /// Whether the data directory was empty or absent before the first start.
    pub first_start_was_bootstrap: bool,
    pub first_start_ms: f64,
    pub first_stop_ms: Option<f64>,
    /// Starts on the existing data directory.
    pub existing: MsSummary,
    /// SIGTERM-to-exit of those starts; `None` if any had to be killed.
    pub existing_stop: Option<MsSummary>,
    /// Every existing-directory start, in order, in milliseconds.
    pub existing_runs_ms: Vec<f64>,
}

impl UpReport {
    /// The report as Markdown: a header line, what was run, and a table.
    pub fn to_markdown(&self) -> String {
        let ms = |x: f64| format!("{x:.1}");
        let stop = |s: Option<MsSummary>| s.map_or_else(|| "-".into(), |s| ms(s.median_ms));
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.host.header("strata bench up"));
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "`strata up --listen {}`: spawn to the first 201 from `POST /identity/v3/auth/tokens`; \
             stop is SIGTERM to exit.",
            self.listen
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| start | runs | first token min ms | median ms | max ms | stop median ms |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
        let first = if self.first_start_was_bootstrap {
            "bootstrap (empty data dir)"
        } else {
            "first (data dir not empty)"
        };
        let f = ms(self.first_start_ms);
        let first_stop = self.first_stop_ms.map_or_else(|| "-".into(), ms);
        let _ = writeln!(s, "| {first} | 1 | {f} | {f} | {f} | {first_stop} |");
        let e = &self.existing;
        let _ = writeln!(
            s,
            "| existing data dir | {} | {} | {} | {} | {} |",
            e.runs,
            ms(e.min_ms),
            ms(e.median_ms),
            ms(e.max_ms),
            stop(self.existing_stop)
        );
        s
    }
}

/// Starts `bin up` on `data_dir` and `listen`, and returns the time from spawn to the first
/// token issued; the server is stopped before returning.
pub async fn time_to_first_token(
    bin: &Path,
    data_dir: &Path,
    listen: &str,
) -> anyhow::Result<Duration> {
    Ok(up_once(bin, data_dir, listen).await?.first_token)
}

/// One measured start and stop of `bin up --data-dir <data_dir> --listen <listen>`.
///
/// Fails if something already answers on `listen` (its tokens would be measured instead), if
/// the child exits early, or if no token arrives within 30 s; the child never outlives a call.
pub async fn up_once(bin: &Path, data_dir: &Path, listen: &str) -> anyhow::Result<UpTiming> {
    if tokio::net::TcpStream::connect(listen).await.is_ok() {
        bail!("something already listens on {listen}; stop it or choose another --listen");
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;

    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(listen)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;

    let polled = poll_first_token(&client, &mut child, data_dir, listen, started).await;
    let first_token = match polled {
        Ok(d) => d,
        Err(e) => {
            // Reap it; kill_on_drop would only signal it.
            let _ = child.kill().await;
            return Err(e);
        }
    };
    let stop = stop(&mut child).await?;
    Ok(UpTiming { first_token, stop })
}

/// Polls for `clouds.yaml`, then for a 201 token, until the deadline; returns spawn-to-201.
async fn poll_first_token(
    client: &reqwest::Client,
    child: &mut tokio::process::Child,
    data_dir: &Path,
    listen: &str,
    started: Instant,
) -> anyhow::Result<Duration> {
    let clouds_yaml = data_dir.join("clouds.yaml");
    let url = tokens_url(&format!("http://{listen}"));
    let mut body: Option<String> = None;
    let mut last = String::from("nothing tried yet");
    loop {
        if started.elapsed() > FIRST_TOKEN_DEADLINE {
            bail!(
                "no token from {url} within {} s (last: {last})",
                FIRST_TOKEN_DEADLINE.as_secs()
            );
        }
        if let Some(status) = child.try_wait().context("checking on `strata up`")? {
            bail!("`strata up` exited with {status} before issuing a token (last: {last})");
        }
        if body.is_none() {
            // The file may be absent, or half-written, on the first start: retry until it parses.
            match load_cloud(&clouds_yaml, "strata", true).await {
                Ok(c) => match c.password {
                    Some(password) => {
                        let creds = Credentials {
                            username: c.username.unwrap_or_else(|| "admin".into()),
                            password,
                            project: c.project_name.unwrap_or_else(|| "admin".into()),
                        };
                        body = Some(password_auth_body(&creds).to_string());
                    }
                    None => last = format!("{} has no password yet", clouds_yaml.display()),
                },
                Err(e) => last = format!("{e:#}"),
            }
        }
        if let Some(body) = &body {
            let sent = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status() == reqwest::StatusCode::CREATED => {
                    return Ok(started.elapsed());
                }
                Ok(resp) => last = format!("HTTP {}", resp.status()),
                Err(e) => last = error_chain(&e.without_url()),
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Sends SIGTERM and waits for the exit; returns how long that took, or `None` if the child had
/// to be killed after [`STOP_DEADLINE`].
async fn stop(child: &mut tokio::process::Child) -> anyhow::Result<Option<Duration>> {
    let Some(pid) = child.id() else {
        // Already reaped: it exited on its own between the token and now.
        bail!("`strata up` exited before it was asked to stop");
    };
    let asked = Instant::now();
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
            let took = asked.elapsed();
            if !status.success() {
                eprintln!("up: warning: `strata up` exited with {status} after SIGTERM");
            }
            Ok(Some(took))
        }
        Err(_) => {
            eprintln!(
                "up: warning: `strata up` still running {} s after SIGTERM; killing it",
                STOP_DEADLINE.as_secs()
            );
            child.kill().await.context("killing `strata up`")?;
            Ok(None)
        }
    }
}

/// Runs the start-up benchmark and prints its report (Markdown, or JSON with `--json`).
pub async fn run_up(args: UpBenchArgs) -> anyhow::Result<()> {
    let report = measure_up(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// Runs the start-up benchmark and returns what it measured, printing only progress (stderr).
pub async fn measure_up(args: &UpBenchArgs) -> anyhow::Result<UpReport> {
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("finding this executable (give --bin)")?,
    };
    let bootstrap = is_empty_or_absent(&args.data_dir)?;
    let host = HostInfo::collect();

    eprintln!(
        "up: first start on {} ({})",
        args.data_dir.display(),
        if bootstrap { "bootstrap" } else { "not empty" }
    );
    let first = up_once(&bin, &args.data_dir, &args.listen).await?;
    eprintln!("up: first token after {:.1} ms", ms(first.first_token));

    let mut runs = Vec::new();
    for i in 1..=args.runs {
        let t = up_once(&bin, &args.data_dir, &args.listen).await?;
        eprintln!(
            "up: run {i}/{}: first token after {:.1} ms",
            args.runs,
            ms(t.first_token)
        );
        runs.push(t);
    }
    let existing = MsSummary::of(runs.iter().map(|t| t.first_token))
        .context("no runs on the existing data dir")?;
    let stops: Option<Vec<Duration>> = runs.iter().map(|t| t.stop).collect();
    Ok(UpReport {
        host,
        bin: bin.display().to_string(),
        data_dir: args.data_dir.display().to_string(),
        listen: args.listen.clone(),
        first_start_was_bootstrap: bootstrap,
        first_start_ms: ms(first.first_token),
        first_stop_ms: first.stop.map(ms),
        existing,
        existing_stop: stops.and_then(MsSummary::of),
        existing_runs_ms: runs.iter().map(|t| ms(t.first_token)).collect(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whether `dir` does not exist or has no entries.
fn is_empty_or_absent(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: UpBenchArgs,
    }

    #[test]
    fn defaults() {
        let a = Cli::parse_from(["x", "--data-dir", "/tmp/d"]).args;
        assert_eq!(a.listen, "127.0.0.1:18440");
        assert_eq!(a.runs, 5);
        assert_eq!(a.bin, None);
        assert!(Cli::try_parse_from(["x"]).is_err());
        assert!(Cli::try_parse_from(["x", "--data-dir", "d", "--runs", "0"]).is_err());
    }

    #[test]
    fn summary_of_runs() {
        let d = |ms| Duration::from_millis(ms);
        let s = MsSummary::of([d(30), d(10), d(20), d(50), d(40)]).unwrap();
        assert_eq!(
            s,
            MsSummary {
                runs: 5,
                min_ms: 10.0,
                median_ms: 30.0,
                max_ms: 50.0
            }
        );
        assert_eq!(MsSummary::of([]), None);
    }

    #[test]
    fn empty_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(is_empty_or_absent(dir.path()).unwrap());
        assert!(is_empty_or_absent(&dir.path().join("nope")).unwrap());
        std::fs::write(dir.path().join("f"), "x").unwrap();
        assert!(!is_empty_or_absent(dir.path()).unwrap());
    }

    #[tokio::test]
    async fn a_child_that_exits_early_is_reported() {
        // `true up --data-dir ... --listen ...` exits at once without a token.
        let dir = tempfile::tempdir().unwrap();
        let err = up_once(Path::new("true"), dir.path(), "127.0.0.1:1")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exited"), "{err:#}");
    }

    #[test]
    fn markdown_table() {
        let r = UpReport {
            host: HostInfo {
                date_utc: "2026-01-02 03:04:05 UTC".into(),
                nproc: 2,
                cpu_model: "Test CPU".into(),
                build: "release",
            },
            bin: "strata".into(),
            data_dir: "/d".into(),
            listen: "127.0.0.1:18440".into(),
            first_start_was_bootstrap: true,
            first_start_ms: 812.34,
            first_stop_ms: Some(3.0),
            existing: MsSummary {
                runs: 5,
                min_ms: 40.0,
                median_ms: 45.5,
                max_ms: 60.0,
            },
            existing_stop: None,
            existing_runs_ms: vec![40.0, 45.5, 60.0, 41.0, 50.0],
        };
        let md = r.to_markdown();
        assert!(md.starts_with("**strata bench up** — 2026-01-02 03:04:05 UTC"));
        assert!(md.contains("| bootstrap (empty data dir) | 1 | 812.3 | 812.3 | 812.3 | 3.0 |"));
        assert!(md.contains("| existing data dir | 5 | 40.0 | 45.5 | 60.0 | - |"));
    }
}
