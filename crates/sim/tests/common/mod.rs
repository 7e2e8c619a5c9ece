//! What the simulator's integration tests share: a fleet in the test's runtime on ephemeral
//! loopback ports, a boot handler that records every boot, a reqwest client for its Redfish
//! BMCs, and polling with a deadline.

#![allow(dead_code)]

use anyhow::{ensure, Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_sim::{BootHandler, BootSource, Faults, Fleet, FleetOptions, SimHostHandle};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "password";
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A boot handler that remembers every boot.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<(String, BootSource)>>);

impl BootHandler for Recorder {
    fn on_boot(&self, host: &SimHostHandle, source: BootSource) {
        self.0
            .lock()
            .unwrap()
            .push((host.name().to_string(), source));
    }
}

impl Recorder {
    pub fn sources(&self) -> Vec<BootSource> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }
}

pub struct Sim {
    pub fleet: Fleet,
    pub dir: tempfile::TempDir,
    pub boots: Arc<Recorder>,
    pub http: reqwest::Client,
}

pub fn options() -> FleetOptions {
    FleetOptions {
        hosts: 2,
        control: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
        ..FleetOptions::default()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Sim {
    pub async fn start(opts: FleetOptions) -> Result<Sim> {
        Sim::start_in(opts, tempfile::tempdir()?).await
    }

    pub async fn start_in(opts: FleetOptions, dir: tempfile::TempDir) -> Result<Sim> {
        let boots = Arc::new(Recorder::default());
        let fleet = Fleet::start(opts, dir.path(), boots.clone()).await?;
        Ok(Sim {
            fleet,
            dir,
            boots,
            http: client(),
        })
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.fleet.shutdown().await;
        self.dir
    }

    pub fn host(&self) -> &SimHostHandle {
        &self.fleet.hosts()[0]
    }

    pub fn base(&self) -> String {
        self.host().bmc().unwrap().base_url.clone()
    }

    pub fn sys(&self) -> String {
        format!("/redfish/v1/Systems/{}", self.host().uuid())
    }

    pub fn control(&self, path: &str) -> String {
        format!("http://{}{path}", self.fleet.control_addr().unwrap())
    }

    /// A request to host 0's BMC with basic auth.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Reply> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .basic_auth(USER, Some(PASSWORD));
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::from(req.send().await?).await
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let r = self.call(Method::GET, path, None).await?;
        ensure!(
            r.status == StatusCode::OK,
            "GET {path}: {} {}",
            r.status,
            r.body
        );
        Ok(r.body)
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Reply> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Reply> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Asserts each body sent to `path` is refused with a 400 and its Base message key.
    pub async fn refuses(
        &self,
        method: Method,
        path: &str,
        cases: Vec<(Value, &str)>,
    ) -> Result<()> {
        for (body, key) in cases {
            let r = self.call(method.clone(), path, Some(body.clone())).await?;
            r.redfish_error(StatusCode::BAD_REQUEST, key)
                .with_context(|| format!("{method} {path} {body}"))?;
        }
        Ok(())
    }

    pub async fn reset(&self, kind: &str) -> Result<Reply> {
        let path = format!("{}/Actions/ComputerSystem.Reset", self.sys());
        self.post(&path, json!({ "ResetType": kind })).await
    }

    pub async fn power(&self) -> Result<String> {
        Ok(self.get(&self.sys()).await?["PowerState"]
            .as_str()
            .context("PowerState")?
            .to_string())
    }

    pub fn set_faults(&self, f: impl FnOnce(&mut Faults)) {
        let mut faults = self.host().faults();
        f(&mut faults);
        self.host().set_faults(faults);
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Result<Reply> {
        let status = r.status();
        let headers = r.headers().clone();
        let raw = r.bytes().await?;
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).with_context(|| {
                format!("not JSON ({status}): {}", String::from_utf8_lossy(&raw))
            })?
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Asserts a Redfish error with this status and Base message key.
    pub fn redfish_error(&self, status: StatusCode, key: &str) -> Result<()> {
        ensure!(
            self.status == status,
            "wanted {status}, got {}: {}",
            self.status,
            self.body
        );
        let err = &self.body["error"];
        ensure!(
            err["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("Base.1.")),
            "no Base code: {}",
            self.body
        );
        ensure!(err["message"].is_string(), "no message: {}", self.body);
        let id = err["@Message.ExtendedInfo"][0]["MessageId"]
            .as_str()
            .unwrap_or("");
        ensure!(
            id.ends_with(&format!(".{key}")),
            "wanted {key}, got {}",
            self.body
        );
        Ok(())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// Polls `f` until it returns `Some`, failing after the deadline with `what`.
pub async fn poll<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        ensure!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port `p` such that `p` and `p + 1` were both free on 127.0.0.1 a moment ago, for TCP or
/// for UDP: a base port for a fleet of two.
pub fn free_port_pair(udp: bool) -> Result<u16> {
    // The port bound, and the socket holding it while it lives.
    let bind = |port: u16| -> std::io::Result<(u16, Box<dyn std::any::Any>)> {
        if udp {
            let s = std::net::UdpSocket::bind(("127.0.0.1", port))?;
            Ok((s.local_addr()?.port(), Box::new(s)))
        } else {
            let s = std::net::TcpListener::bind(("127.0.0.1", port))?;
            Ok((s.local_addr()?.port(), Box::new(s)))
        }
    };
    loop {
        let (port, _held) = bind(0)?;
        if port < 65000 && bind(port + 1).is_ok() {
            return Ok(port);
        }
    }
}

/// Whether a fleet starts with `opts` (stopping it again if it does).
pub async fn fleet_starts(opts: FleetOptions) -> Result<bool> {
    let dir = tempfile::tempdir()?;
    match Fleet::start(opts, dir.path(), Arc::new(strata_sim::LogBoots)).await {
        Ok(fleet) => {
            fleet.shutdown().await;
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}
