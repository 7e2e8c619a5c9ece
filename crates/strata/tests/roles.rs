//! The binary's roles, run for real: `strata server` replicas sharing one database (SQLite and
//! PostgreSQL), `strata db migrate`, and configuration errors.

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_strata");
const PW: &str = "replica-admin-pw";

struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts `strata server` on `db_url` and waits (with a deadline) for its ready line.
    async fn start(db_url: &str) -> Server {
        Server::start_args(&[
            "server",
            "--database-url",
            db_url,
            "--listen",
            "127.0.0.1:0",
        ])
        .await
    }

    /// Starts `strata <args>` and waits (with a deadline) for the server's ready line.
    async fn start_args(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .env("STRATA_IDENTITY__BOOTSTRAP_PASSWORD", PW)
            .env("STRATA_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn strata server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("Strata server is up on ") {
                    return url.to_string();
                }
            }
            panic!("strata server exited before it was ready");
        })
        .await
        .expect("strata server ready within 60 s");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, url }
    }

    /// SIGTERM, then the exit status (which must come within a deadline).
    async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits within 30 s of SIGTERM")
            .unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn token(url: &str) -> String {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": PW}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let r = client()
        .post(format!("{url}/identity/v3/auth/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.headers()["x-subject-token"].to_str().unwrap().to_string()
}

async fn validate(url: &str, caller: &str, subject: &str) -> u16 {
    client()
        .get(format!("{url}/identity/v3/auth/tokens"))
        .header("x-auth-token", caller)
        .header("x-subject-token", subject)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Two replicas on one database: tokens, writes and revocations made on one are seen on the
/// other.
async fn replicas_share_state(db_url: &str) {
    let a = Server::start(db_url).await;
    let b = Server::start(db_url).await;
    let ta = token(&a.url).await;
    let tb = token(&b.url).await;
    assert_eq!(
        validate(&b.url, &tb, &ta).await,
        200,
        "a token from A validates on B"
    );

    // A user created on B is at once visible on A (reads go to the shared database).
    let r = client()
        .post(format!("{}/identity/v3/users", b.url))
        .header("x-auth-token", &tb)
        .json(&json!({"user": {"name": "shared-user", "password": "pw-shared"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r: Value = client()
        .get(format!("{}/identity/v3/users?name=shared-user", a.url))
        .header("x-auth-token", &ta)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["users"].as_array().unwrap().len(), 1);

    // A validation cached on B is dropped once B sees A's revocation in the change log.
    let victim = token(&a.url).await;
    assert_eq!(validate(&b.url, &tb, &victim).await, 200);
    let r = client()
        .delete(format!("{}/identity/v3/auth/tokens", a.url))
        .header("x-auth-token", &ta)
        .header("x-subject-token", &victim)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        validate(&a.url, &ta, &victim).await,
        404,
        "revoked at once on A"
    );
    // Poll with a deadline: B learns of other replicas' writes from the change log.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    while validate(&b.url, &tb, &victim).await != 404 {
        assert!(Instant::now() < deadline, "B never saw A's revocation");
        every.tick().await;
    }
    assert!(a.stop().await.success(), "graceful exit");
    assert!(b.stop().await.success(), "graceful exit");
}

#[tokio::test]
async fn replicas_share_state_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    replicas_share_state(&format!("sqlite://{}/shared.db", dir.path().display())).await;
}

#[tokio::test]
async fn replicas_share_state_on_postgres() {
    if let Some(url) = strata_store::testing::fresh_postgres_url().await {
        replicas_share_state(&url).await;
    }
}

#[tokio::test]
async fn db_migrate_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/m.db", dir.path().display());
    let run = || {
        std::process::Command::new(BIN)
            .args(["db", "migrate", "--database-url", &url])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let n = strata_store::migrate::MIGRATIONS.len();
    assert!(String::from_utf8_lossy(&first.stdout).contains(&format!("applied {n} migration(s)")));
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).contains("applied 0 migration(s)"));
}

#[tokio::test]
async fn configuration_errors_are_clear() {
    let out = std::process::Command::new(BIN)
        .args(["server"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url is not set"));
    let out = std::process::Command::new(BIN)
        .args(["server", "--database-url", "mysql://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database url"));
    let out = std::process::Command::new(BIN)
        .args(["server", "--database-url", "sqlite:///nonexistent-dir/x.db"])
        .env("STRATA_NOPE__X", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("STRATA_NOPE__X"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn server_reads_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("strata.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{}/c.db\"\n\
             [identity]\ntoken_expiration = 120\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let s = Server::start_args(&["server", "--config", cfg.to_str().unwrap()]).await;
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": PW}}}}});
    let r: Value = client()
        .post(format!("{}/identity/v3/auth/tokens", s.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The token lifetime comes from the file: 120 s between issue and expiry.
    let issued = r["token"]["issued_at"].as_str().unwrap();
    let expires = r["token"]["expires_at"].as_str().unwrap();
    let secs = |t: &str| -> i64 {
        let hms = &t[11..19];
        let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600 + p[1] * 60 + p[2]
    };
    assert_eq!(
        (secs(expires) - secs(issued)).rem_euclid(86_400),
        120,
        "{issued} {expires}"
    );
    assert!(s.stop().await.success());
}

/// 100 concurrent port creates split across two replicas on one database, on a subnet with
/// room for 60: exactly 60 succeed, the rest get Neutron's 409, and no address or MAC is
/// handed out twice (the allocation tables' keys, shared by the replicas).
async fn replicas_never_double_allocate(db_url: &str) {
    let a = Server::start(db_url).await;
    let b = Server::start(db_url).await;
    let ta = token(&a.url).await;
    let tb = token(&b.url).await;
    let post = |url: String, tok: String, body: Value| async move {
        let r = client()
            .post(url)
            .header("x-auth-token", tok)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (s, net) = post(
        format!("{}/network/v2.0/networks", a.url),
        ta.clone(),
        json!({"network": {"name": "race"}}),
    )
    .await;
    assert_eq!(s, 201, "{net}");
    let net = net["network"]["id"].as_str().unwrap().to_string();
    let (s, sub) = post(
        format!("{}/network/v2.0/subnets", b.url),
        tb.clone(),
        json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.9.0.0/24",
            "allocation_pools": [{"start": "10.9.0.10", "end": "10.9.0.69"}]}}),
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (url, tok) = if i % 2 == 0 {
            (a.url.clone(), ta.clone())
        } else {
            (b.url.clone(), tb.clone())
        };
        let body = json!({"port": {"network_id": net, "name": format!("p{i}")}});
        tasks.push(tokio::spawn(post(
            format!("{url}/network/v2.0/ports"),
            tok,
            body,
        )));
    }
    let mut ips = std::collections::HashSet::new();
    let mut macs = std::collections::HashSet::new();
    let (mut created, mut refused) = (0, 0);
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => {
                created += 1;
                let p = &body["port"];
                assert!(
                    ips.insert(p["fixed_ips"][0]["ip_address"].to_string()),
                    "{p}"
                );
                assert!(macs.insert(p["mac_address"].to_string()), "{p}");
            }
            409 => {
                refused += 1;
                assert_eq!(
                    body["NeutronError"]["type"], "IpAddressGenerationFailure",
                    "{body}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, refused), (60, 40));
    assert!(a.stop().await.success(), "graceful exit");
    assert!(b.stop().await.success(), "graceful exit");
}

#[tokio::test]
async fn replicas_never_double_allocate_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    replicas_never_double_allocate(&format!("sqlite://{}/race.db", dir.path().display())).await;
}

#[tokio::test]
async fn replicas_never_double_allocate_on_postgres() {
    if let Some(url) = strata_store::testing::fresh_postgres_url().await {
        replicas_never_double_allocate(&url).await;
    }
}
