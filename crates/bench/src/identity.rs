//! `strata bench identity`: Keystone token validation and issuance under concurrent load.
//!
//! Each (scenario, concurrency) row runs N tokio tasks sharing one keep-alive `reqwest::Client`
//! for a fixed time. Every task first opens its connection with one unrecorded validation, then
//! all start together at a barrier and loop until the deadline; requests in flight at the
//! deadline finish and count. Latencies are recorded per task (no shared lock on the hot path)
//! and merged afterwards. Only responses with the expected status contribute latencies and
//! throughput; anything else is counted and grouped as an error, never aborting the run, so a
//! server that degrades under load shows it in the table instead of killing the benchmark.

use crate::clouds::load_cloud;
use crate::keystone::{
    base_from_auth_url, error_chain, issue_password_token, password_auth_body, token_auth_body,
    tokens_url, Credentials, AUTH_TOKEN, SUBJECT_TOKEN,
};
use crate::procfs::{kib_to_mib, read_vmrss_kib, RssSampler};
use crate::report::{opt, HostInfo};
use crate::stats::{us_to_ms, LatencySummary};
use anyhow::{bail, Context};
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the server's RSS is sampled under load.
const RSS_EVERY: Duration = Duration::from_millis(200);

/// Arguments of `strata bench identity`.
#[derive(clap::Args, Debug, Clone)]
pub struct IdentityBenchArgs {
    /// Base URL of a running Strata (e.g. http://127.0.0.1:8440); defaults to the auth_url in
    /// --clouds-yaml without its /identity/v3 suffix
    #[arg(long)]
    pub url: Option<String>,
    /// User name to authenticate as (default: from --clouds-yaml, else "admin")
    #[arg(long)]
    pub username: Option<String>,
    /// Password (default: from --clouds-yaml)
    #[arg(long)]
    pub password: Option<String>,
    /// Project to scope tokens to (default: from --clouds-yaml, else "admin")
    #[arg(long)]
    pub project: Option<String>,
    /// A clouds.yaml (as written by `strata up`) to read auth_url, username, password and
    /// project_name from; explicit flags win
    #[arg(long)]
    pub clouds_yaml: Option<PathBuf>,
    /// Cloud name in --clouds-yaml [default: "strata", or the file's only cloud]
    #[arg(long)]
    pub cloud: Option<String>,
    /// Seconds to run each (scenario, concurrency) row
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_secs: u64,
    /// Concurrency levels (concurrent requests in flight), comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,8,32",
        value_parser = clap::value_parser!(u32).range(1..=4096)
    )]
    pub concurrency: Vec<u32>,
    /// Scenarios to run, comma-separated
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "validate,issue-token,issue-password"
    )]
    pub scenarios: Vec<Scenario>,
    /// Pid of the server, to report its resident memory (VmRSS) idle and under load
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print JSON instead of a Markdown table
    #[arg(long)]
    pub json: bool,
}

/// One request loop of the identity benchmark.
#[derive(clap::ValueEnum, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `GET /identity/v3/auth/tokens` validating the caller's own token; expects 200.
    Validate,
    /// `POST /identity/v3/auth/tokens` re-scoping an existing token; expects 201.
    IssueToken,
    /// `POST /identity/v3/auth/tokens` with a password (one password hash check each); 201.
    IssuePassword,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::IssueToken => "issue-token",
            Self::IssuePassword => "issue-password",
        }
    }

    /// The status a successful request answers.
    pub fn expected(self) -> StatusCode {
        match self {
            Self::Validate => StatusCode::OK,
            Self::IssueToken | Self::IssuePassword => StatusCode::CREATED,
        }
    }
}

/// The result of one (scenario, concurrency) row.
#[derive(Debug, Clone, Serialize)]
pub struct LevelResult {
    pub scenario: Scenario,
    pub concurrency: u32,
    /// Requests sent in the window, successful or not.
    pub requests: u64,
    /// Requests answered with an unexpected status or failing in transport.
    pub errors: u64,
    /// Wall time from the common start to the last task finishing.
    pub elapsed_secs: f64,
    /// Successful requests per second.
    pub rate: f64,
    /// Latencies of the successful requests; `None` if there were none.
    pub latency: Option<LatencySummary>,
    /// The server's largest RSS seen during this row, if its pid was given.
    pub max_rss_mib: Option<f64>,
    /// Errors grouped by kind (`HTTP 401 Unauthorized`, `transport: ...`).
    pub error_kinds: BTreeMap<String, u64>,
}

/// Everything one `strata bench identity` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityReport {
    pub host: HostInfo,
    pub url: String,
    pub duration_secs: u64,
    pub server_pid: Option<u32>,
    /// Server RSS before the first request.
    pub idle_rss_mib: Option<f64>,
    /// Largest server RSS seen under load, over all rows.
    pub load_max_rss_mib: Option<f64>,
    /// Server RSS after the last row.
    pub after_rss_mib: Option<f64>,
    pub results: Vec<LevelResult>,
}

impl IdentityReport {
    /// The report as Markdown: a header line, a context line, a table, then any errors.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.host.header("strata bench identity"));
        let _ = writeln!(s);
        let _ = write!(s, "Target {} · {} s per row", self.url, self.duration_secs);
        if let Some(pid) = self.server_pid {
            let _ = write!(
                s,
                " · server pid {pid}: RSS idle {} MiB, max under load {} MiB, after {} MiB",
                opt(self.idle_rss_mib, 1),
                opt(self.load_max_rss_mib, 1),
                opt(self.after_rss_mib, 1)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| scenario | concurrency | requests | errors | ok req/s | p50 ms | p99 ms | max ms | max RSS MiB |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.results {
            let lat = |f: fn(&LatencySummary) -> u64| r.latency.as_ref().map(|l| us_to_ms(f(l)));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
                r.scenario.name(),
                r.concurrency,
                r.requests,
                r.errors,
                r.rate,
                opt(lat(|l| l.p50_us), 2),
                opt(lat(|l| l.p99_us), 2),
                opt(lat(|l| l.max_us), 2),
                opt(r.max_rss_mib, 1),
            );
        }
        let failed: Vec<&LevelResult> = self
            .results
            .iter()
            .filter(|r| !r.error_kinds.is_empty())
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "Errors:");
            for r in failed {
                for (kind, n) in &r.error_kinds {
                    let _ = writeln!(
                        s,
                        "- {} ×{}: {n} × {kind}",
                        r.scenario.name(),
                        r.concurrency
                    );
                }
            }
        }
        s
    }
}

/// What every task of a row shares: the URL, the token and the prepared bodies.
struct Ctx {
    tokens_url: String,
    token: String,
    token_body: String,
    password_body: String,
}

/// What one task measured.
#[derive(Default)]
struct TaskOutcome {
    requests: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    error_kinds: BTreeMap<String, u64>,
}

/// Runs the identity benchmark and prints its report (Markdown, or JSON with `--json`).
pub async fn run_identity(args: IdentityBenchArgs) -> anyhow::Result<()> {
    let report = measure_identity(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// Runs the identity benchmark and returns what it measured, printing only progress (stderr).
pub async fn measure_identity(args: &IdentityBenchArgs) -> anyhow::Result<IdentityReport> {
    if args.concurrency.is_empty() || args.scenarios.is_empty() {
        bail!("need at least one concurrency level and one scenario");
    }
    let (base, creds) = resolve_target(args).await?;
    let host = HostInfo::collect();
    let idle_kib = args.server_pid.and_then(read_vmrss_kib);
    if let (Some(pid), None) = (args.server_pid, idle_kib) {
        bail!("cannot read VmRSS of --server-pid {pid} from /proc/{pid}/status");
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let duration = Duration::from_secs(args.duration_secs);

    let mut results = Vec::new();
    for &scenario in &args.scenarios {
        // A fresh token per scenario, so long runs never outlive a token's lifetime.
        let token = issue_password_token(&client, &base, &creds)
            .await
            .context("getting the admin token the benchmark runs with")?;
        let ctx = Arc::new(Ctx {
            tokens_url: tokens_url(&base),
            token_body: token_auth_body(&token, &creds.project).to_string(),
            password_body: password_auth_body(&creds).to_string(),
            token,
        });
        for &concurrency in &args.concurrency {
            eprintln!(
                "identity: {} at concurrency {concurrency} for {} s ...",
                scenario.name(),
                args.duration_secs
            );
            let r = run_level(
                &client,
                &ctx,
                scenario,
                concurrency,
                duration,
                args.server_pid,
            )
            .await?;
            eprintln!(
                "identity: {} ×{concurrency}: {} requests, {} errors, {:.1} ok/s",
                scenario.name(),
                r.requests,
                r.errors,
                r.rate
            );
            results.push(r);
        }
    }
    let after_kib = args.server_pid.and_then(read_vmrss_kib);
    let load_max_rss_mib = results
        .iter()
        .filter_map(|r| r.max_rss_mib)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    Ok(IdentityReport {
        host,
        url: base,
        duration_secs: args.duration_secs,
        server_pid: args.server_pid,
        idle_rss_mib: idle_kib.map(kib_to_mib),
        load_max_rss_mib,
        after_rss_mib: after_kib.map(kib_to_mib),
        results,
    })
}

/// The base URL and credentials from the flags, falling back to `--clouds-yaml`, then to
/// `admin`/`admin` for the user and project.
async fn resolve_target(args: &IdentityBenchArgs) -> anyhow::Result<(String, Credentials)> {
    let cloud = match &args.clouds_yaml {
        Some(path) => {
            let name = args.cloud.as_deref().unwrap_or("strata");
            Some(load_cloud(path, name, args.cloud.is_none()).await?)
        }
        None => None,
    };
    let from_cloud =
        |f: fn(&crate::CloudAuth) -> &Option<String>| cloud.as_ref().and_then(|c| f(c).clone());
    let base = match &args.url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => match from_cloud(|c| &c.auth_url) {
            Some(auth_url) => base_from_auth_url(&auth_url),
            None => bail!("give --url, or --clouds-yaml with an auth_url"),
        },
    };
    let password = match args
        .password
        .clone()
        .or_else(|| from_cloud(|c| &c.password))
    {
        Some(p) => p,
        None => bail!("give --password, or --clouds-yaml with a password"),
    };
    let creds = Credentials {
        username: args
            .username
            .clone()
            .or_else(|| from_cloud(|c| &c.username))
            .unwrap_or_else(|| "admin".into()),
        password,
        project: args
            .project
            .clone()
            .or_else(|| from_cloud(|c| &c.project_name))
            .unwrap_or_else(|| "admin".into()),
    };
    Ok((base, creds))
}

/// Runs one (scenario, concurrency) row.
async fn run_level(
    client: &reqwest::Client,
    ctx: &Arc<Ctx>,
    scenario: Scenario,
    concurrency: u32,
    duration: Duration,
    server_pid: Option<u32>,
) -> anyhow::Result<LevelResult> {
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency as usize + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, ctx, barrier) = (client.clone(), Arc::clone(ctx), Arc::clone(&barrier));
        tasks.spawn(async move {
            // Open this task's keep-alive connection with one cheap, unrecorded request.
            let _ = send(&client, &ctx, Scenario::Validate).await;
            barrier.wait().await;
            let deadline = Instant::now() + duration;
            let mut out = TaskOutcome::default();
            while Instant::now() < deadline {
                let started = Instant::now();
                let result = send(&client, &ctx, scenario).await;
                out.requests += 1;
                match result {
                    Ok(status) if status == scenario.expected() => {
                        out.latencies_us.push(started.elapsed().as_micros() as u64);
                    }
                    Ok(status) => {
                        out.errors += 1;
                        *out.error_kinds.entry(format!("HTTP {status}")).or_default() += 1;
                    }
                    Err(e) => {
                        out.errors += 1;
                        let kind = format!("transport: {}", error_chain(&e.without_url()));
                        *out.error_kinds.entry(kind).or_default() += 1;
                        // Don't spin on a dead server; the window is bounded anyway.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out
        });
    }
    barrier.wait().await;
    let started = Instant::now();
    let sampler = server_pid.map(|pid| RssSampler::start(pid, RSS_EVERY));

    let mut requests = 0;
    let mut errors = 0;
    let mut latencies = Vec::new();
    let mut error_kinds: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let out = joined.context("a load task panicked")?;
        requests += out.requests;
        errors += out.errors;
        latencies.extend(out.latencies_us);
        for (k, n) in out.error_kinds {
            *error_kinds.entry(k).or_default() += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let max_rss_kib = match sampler {
        Some(s) => s.stop().await,
        None => None,
    };
    let ok = latencies.len() as f64;
    Ok(LevelResult {
        scenario,
        concurrency,
        requests,
        errors,
        elapsed_secs: elapsed,
        rate: if elapsed > 0.0 { ok / elapsed } else { 0.0 },
        latency: LatencySummary::from_samples(&mut latencies),
        max_rss_mib: max_rss_kib.map(kib_to_mib),
        error_kinds,
    })
}

/// Sends one request of `scenario` and reads the whole response (so the connection is reused).
async fn send(
    client: &reqwest::Client,
    ctx: &Ctx,
    scenario: Scenario,
) -> Result<StatusCode, reqwest::Error> {
    let req = match scenario {
        Scenario::Validate => client
            .get(&ctx.tokens_url)
            .header(AUTH_TOKEN, &ctx.token)
            .header(SUBJECT_TOKEN, &ctx.token),
        Scenario::IssueToken => client
            .post(&ctx.tokens_url)
            .header(CONTENT_TYPE, "application/json")
            .body(ctx.token_body.clone()),
        Scenario::IssuePassword => client
            .post(&ctx.tokens_url)
            .header(CONTENT_TYPE, "application/json")
            .body(ctx.password_body.clone()),
    };
    let resp = req.send().await?;
    let status = resp.status();
    resp.bytes().await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: IdentityBenchArgs,
    }

    #[test]
    fn defaults() {
        let a = Cli::parse_from(["x", "--url", "http://127.0.0.1:1"]).args;
        assert_eq!(a.duration_secs, 10);
        assert_eq!(a.concurrency, vec![1, 8, 32]);
        assert_eq!(
            a.scenarios,
            vec![
                Scenario::Validate,
                Scenario::IssueToken,
                Scenario::IssuePassword
            ]
        );
        assert_eq!(a.server_pid, None);
        assert!(!a.json);
    }

    #[test]
    fn lists_and_ranges() {
        let a = Cli::parse_from([
            "x",
            "--concurrency",
            "2,4",
            "--scenarios",
            "issue-password",
            "--duration-secs",
            "1",
            "--json",
        ])
        .args;
        assert_eq!(a.concurrency, vec![2, 4]);
        assert_eq!(a.scenarios, vec![Scenario::IssuePassword]);
        assert!(Cli::try_parse_from(["x", "--concurrency", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--duration-secs", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--scenarios", "nope"]).is_err());
    }

    #[tokio::test]
    async fn target_from_clouds_yaml_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clouds.yaml");
        std::fs::write(
            &path,
            "clouds:\n  strata:\n    auth:\n      auth_url: http://127.0.0.1:9/identity/v3\n      \
             username: root\n      password: pw\n      project_name: ops\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let a = Cli::parse_from(["x", "--clouds-yaml", p]).args;
        let (base, c) = resolve_target(&a).await.unwrap();
        assert_eq!(base, "http://127.0.0.1:9");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("root", "pw"));
        assert_eq!(c.project, "ops");

        let a = Cli::parse_from([
            "x",
            "--clouds-yaml",
            p,
            "--url",
            "http://h:1/",
            "--project",
            "p",
        ])
        .args;
        let (base, c) = resolve_target(&a).await.unwrap();
        assert_eq!((base.as_str(), c.project.as_str()), ("http://h:1", "p"));

        let a = Cli::parse_from(["x", "--url", "http://h:1", "--password", "x"]).args;
        let (_, c) = resolve_target(&a).await.unwrap();
        assert_eq!(
            (c.username.as_str(), c.project.as_str()),
            ("admin", "admin")
        );

        assert!(
            resolve_target(&Cli::parse_from(["x", "--url", "http://h:1"]).args)
                .await
                .is_err()
        );
        assert!(
            resolve_target(&Cli::parse_from(["x", "--clouds-yaml", p, "--cloud", "no"]).args)
                .await
                .is_err()
        );
    }

    #[test]
    fn markdown_table() {
        let mut kinds = BTreeMap::new();
        kinds.insert("HTTP 401 Unauthorized".to_string(), 3);
        let report = IdentityReport {
            host: HostInfo {
                date_utc: "2026-01-02 03:04:05 UTC".into(),
                nproc: 2,
                cpu_model: "Test CPU".into(),
                build: "debug",
            },
            url: "http://127.0.0.1:1".into(),
            duration_secs: 10,
            server_pid: Some(42),
            idle_rss_mib: Some(20.0),
            load_max_rss_mib: Some(30.3),
            after_rss_mib: None,
            results: vec![LevelResult {
                scenario: Scenario::IssueToken,
                concurrency: 8,
                requests: 1003,
                errors: 3,
                elapsed_secs: 10.0,
                rate: 100.0,
                latency: Some(LatencySummary {
                    count: 1000,
                    p50_us: 1500,
                    p99_us: 12_346,
                    max_us: 20_000,
                }),
                max_rss_mib: Some(30.3),
                error_kinds: kinds,
            }],
        };
        let md = report.to_markdown();
        assert!(md.starts_with("**strata bench identity** — 2026-01-02 03:04:05 UTC · nproc 2"));
        assert!(md.contains("RSS idle 20.0 MiB, max under load 30.3 MiB, after - MiB"));
        assert!(md.contains("| issue-token | 8 | 1003 | 3 | 100.0 | 1.50 | 12.35 | 20.00 | 30.3 |"));
        assert!(md.contains("- issue-token ×8: 3 × HTTP 401 Unauthorized"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["results"][0]["scenario"], "issue-token");
        assert_eq!(json["results"][0]["latency"]["p99_us"], 12_346);
    }
}

/// The HTTP loop against a tiny in-process fake of Keystone's token API. It checks what was
/// sent and how answers are counted, never how fast anything was.
#[cfg(test)]
mod fake_keystone {
    use super::*;
    use axum::http::{HeaderMap, StatusCode as AxStatus};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use axum::{Json, Router};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Accepts password `pw` for admin/admin and the token `tok`; every 4th validation fails
    /// with 503 when `flaky` is set.
    async fn serve(flaky: bool) -> String {
        let calls = Arc::new(AtomicU64::new(0));
        let issue = |Json(body): Json<serde_json::Value>| async move {
            let id = &body["auth"]["identity"];
            let scoped = body["auth"]["scope"]["project"]
                == serde_json::json!({"name": "admin", "domain": {"id": "default"}});
            let ok = scoped
                && match id["methods"][0].as_str() {
                    Some("password") => {
                        let user = &id["password"]["user"];
                        user["name"] == "admin"
                            && user["domain"]["id"] == "default"
                            && user["password"] == "pw"
                    }
                    Some("token") => id["token"]["id"] == "tok",
                    _ => false,
                };
            if ok {
                (AxStatus::CREATED, [("X-Subject-Token", "tok")], "{}").into_response()
            } else {
                AxStatus::UNAUTHORIZED.into_response()
            }
        };
        let validate = move |headers: HeaderMap| {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                let good = headers.get("x-auth-token").is_some_and(|v| v == "tok")
                    && headers.get("x-subject-token").is_some_and(|v| v == "tok");
                if flaky && n % 4 == 3 {
                    AxStatus::SERVICE_UNAVAILABLE
                } else if good {
                    AxStatus::OK
                } else {
                    AxStatus::NOT_FOUND
                }
            }
        };
        let app = Router::new().route("/identity/v3/auth/tokens", post(issue).get(validate));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn args(url: &str, password: &str) -> IdentityBenchArgs {
        IdentityBenchArgs {
            url: Some(url.into()),
            username: None,
            password: Some(password.into()),
            project: None,
            clouds_yaml: None,
            cloud: None,
            duration_secs: 1,
            concurrency: vec![2],
            scenarios: vec![
                Scenario::Validate,
                Scenario::IssueToken,
                Scenario::IssuePassword,
            ],
            server_pid: Some(std::process::id()),
            json: false,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_scenario_succeeds_against_a_conforming_server() {
        let url = serve(false).await;
        let report = measure_identity(&args(&url, "pw")).await.unwrap();
        assert_eq!(report.results.len(), 3);
        for r in &report.results {
            assert!(r.requests > 0, "{r:?}");
            assert_eq!(r.errors, 0, "{r:?}");
            assert_eq!(r.latency.unwrap().count as u64, r.requests);
            assert!(r.max_rss_mib.is_some());
        }
        assert!(report.idle_rss_mib.is_some() && report.after_rss_mib.is_some());
        assert!(report.to_markdown().contains("| validate | 2 |"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unexpected_statuses_are_counted_not_fatal() {
        let url = serve(true).await;
        let mut a = args(&url, "pw");
        a.scenarios = vec![Scenario::Validate];
        a.concurrency = vec![2];
        let report = measure_identity(&a).await.unwrap();
        let r = &report.results[0];
        assert!(r.errors > 0, "{r:?}");
        assert_eq!(r.error_kinds["HTTP 503 Service Unavailable"], r.errors);
        assert_eq!(r.latency.unwrap().count as u64 + r.errors, r.requests);
    }

    #[tokio::test]
    async fn a_wrong_password_fails_up_front() {
        let url = serve(false).await;
        let err = measure_identity(&args(&url, "nope")).await.unwrap_err();
        assert!(format!("{err:#}").contains("401"), "{err:#}");
    }
}
