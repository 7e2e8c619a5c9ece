//! The contract between the server and its node agents (ours, not OpenStack's), version 1.
//!
//! An agent registers its host ([`HostRegistration`]: what the hypervisor offers), then keeps
//! it alive with heartbeats, follows the host's desired instances ([`DesiredInstances`], a
//! long poll on the change-log revision) and reports what it observes ([`InstanceReport`]).
//! The server owns every decision (scheduling, state transitions, retries); the agent only
//! makes its host match what it is given, idempotently, and says what happened.
//!
//! [`ControlPlane`] is the agent's view of the server. [`HttpControlPlane`] speaks it over
//! HTTP+JSON (paths under `/agent/v1`, the caller's Keystone token in `X-Auth-Token`);
//! `strata up` can hand its in-process agents another implementation.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

/// The version of this contract; the server refuses agents of another major version.
pub const VERSION: &str = "1.0";

/// What a host offers, sent at registration (and again when it changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRegistration {
    /// The compute host name (`binding:host_id` of its ports, `OS-EXT-SRV-ATTR:host`).
    pub host: String,
    pub agent_version: String,
    /// `QEMU`, `fake`, …
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub hypervisor_hostname: String,
    pub host_ip: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    /// Free-form CPU description (`arch`, `model`, `vendor`, `topology`, `features`), as Nova
    /// shows it in `os-hypervisors`.
    pub cpu_info: Value,
    /// `(architecture, hypervisor type, vm mode)` triples the host runs.
    pub supported_instances: Vec<(String, String, String)>,
    /// Placement traits of the host (`COMPUTE_*`, `HW_CPU_*`).
    pub traits: Vec<String>,
}

/// The server's answer to a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The host's root resource provider.
    pub provider_uuid: String,
    pub service_id: String,
    /// Heartbeat at least this often or the service is reported down.
    pub heartbeat_interval_s: u64,
}

/// The power state an instance should be in (Nova's `power_state` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Power {
    Running,
    Shutdown,
    Paused,
    Suspended,
}

/// Observed power state, as Nova numbers it (`power_state` in the server view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    NoState,
    Running,
    Paused,
    Shutdown,
    Crashed,
    Suspended,
}

impl PowerState {
    /// Nova's integer codes.
    pub fn code(self) -> i64 {
        match self {
            PowerState::NoState => 0,
            PowerState::Running => 1,
            PowerState::Paused => 3,
            PowerState::Shutdown => 4,
            PowerState::Crashed => 6,
            PowerState::Suspended => 7,
        }
    }
}

/// The flavor as the hypervisor sizes a guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Sizing {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    pub extra_specs: std::collections::BTreeMap<String, String>,
}

/// A disk of the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// `vda`, `vdb`, …
    pub device_name: String,
    pub boot_index: Option<i64>,
    /// Where the data lives: `{"driver_volume_type": "file", "data": {"path", "format"}}`
    /// for local files, `rbd` for Ceph; for an image-backed root, the image's path.
    pub connection_info: Value,
    pub size_gb: i64,
    /// `local` (the agent creates it from `image` or blank) or `volume` (given).
    pub source: String,
    /// The volume service's id of a `volume` disk (what reports name it by).
    #[serde(default)]
    pub volume_id: Option<String>,
}

/// A network interface of the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vif {
    pub port_id: String,
    pub mac_address: String,
    pub network_id: String,
    pub mtu: i64,
    pub vif_type: String,
    pub fixed_ips: Vec<String>,
}

/// One instance the host should run, as the server wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub uuid: String,
    /// `instance-0000002a`, the hypervisor's domain name.
    pub name: String,
    pub hostname: String,
    /// Bumped whenever anything below changes; reports say which one they applied.
    pub generation: i64,
    pub power: Power,
    /// Bumped per reboot request; `hard_reboot` says how the last one was asked.
    pub reboot_seq: i64,
    pub hard_reboot: bool,
    pub sizing: Sizing,
    pub image_id: Option<String>,
    pub disks: Vec<Disk>,
    pub vifs: Vec<Vif>,
    pub user_data: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub key_data: Option<String>,
    pub config_drive: bool,
    /// A snapshot of the guest's root disk the server asks for (Nova's `createImage`), until
    /// the agent has uploaded it or reported it failed. Older servers send none.
    #[serde(default)]
    pub snapshot: Option<SnapshotRequest>,
    /// What the guest's metadata (a config drive) tells it about itself. Older servers send
    /// none of these.
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub launch_index: i64,
    /// The image's properties as the server recorded them at boot (`kernel_id`,
    /// `ramdisk_id`, `os_command_line`, `hw_*`).
    #[serde(default)]
    pub image_properties: std::collections::BTreeMap<String, String>,
    /// While a resize of this guest waits to be confirmed (Nova's VERIFY_RESIZE) or is being
    /// reverted, the size it had before: a driver that resizes the guest in place keeps what
    /// it needs to go back to it (the old disk), restores it when the spec's size becomes
    /// this one again, and drops it once the spec names no previous size.
    /// Older servers send none.
    #[serde(default)]
    pub previous_sizing: Option<Sizing>,
}

/// A snapshot to take of a guest: its root disk, written to a file in `disk_format` and
/// uploaded as the data of the image `image_id` (already created, `queued`) with
/// [`ControlPlane::upload_snapshot`]; a failure is reported with
/// [`ControlPlane::snapshot_failed`]. The agent takes each one once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    pub image_id: String,
    /// `raw`, `qcow2`, … (the format the image is created with).
    pub disk_format: String,
    pub container_format: String,
}

/// The desired instances of a host at a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredInstances {
    pub revision: i64,
    pub instances: Vec<InstanceSpec>,
}

/// A failure the agent hit, shown to users as the server's `fault`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub message: String,
    pub details: String,
    /// Whether another host may succeed (a reschedule is worth it).
    pub retryable: bool,
}

/// What the agent observed of one instance after acting on `generation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub uuid: String,
    pub host: String,
    pub generation: i64,
    pub reboot_seq: i64,
    pub power_state: PowerState,
    /// The guest is gone from the host (after the server stopped wanting it).
    pub deleted: bool,
    pub fault: Option<Fault>,
    /// The tail of the guest's console log, sent when it changed since the last report
    /// (`None`: unchanged or unknown).
    #[serde(default)]
    pub console: Option<String>,
    /// The volumes attached to the guest (the `volume_id`s of its `volume` disks), as the
    /// hypervisor lists them. Older agents send none.
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// Why a call to the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the server refused the call ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// The future a [`ControlPlane`] call returns.
pub type ApiFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// The server as an agent sees it.
pub trait ControlPlane: Send + Sync {
    fn register<'a>(&'a self, reg: &'a HostRegistration) -> ApiFuture<'a, Registered>;
    fn heartbeat<'a>(&'a self, host: &'a str) -> ApiFuture<'a, ()>;
    /// The host's desired instances once the revision passes `after` (or after `wait`).
    fn desired<'a>(
        &'a self,
        host: &'a str,
        after: i64,
        wait: Duration,
    ) -> ApiFuture<'a, DesiredInstances>;
    fn report<'a>(&'a self, report: &'a InstanceReport) -> ApiFuture<'a, ()>;
    /// Uploads the snapshot in the file `path` as the data of image `image_id`, asked for in
    /// instance `uuid`'s [`InstanceSpec::snapshot`]. The server finishes the snapshot (the
    /// image active, the server's task cleared) or, when the upload fails, deletes the image.
    /// Refused with 409 when the instance no longer asks for that image (already done,
    /// failed, or the server deleted): the agent drops it.
    fn upload_snapshot<'a>(
        &'a self,
        _uuid: &'a str,
        _image_id: &'a str,
        _path: &'a Path,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async { Err(not_served("snapshot uploads")) })
    }
    /// Reports that the snapshot for image `image_id` of instance `uuid` could not be taken:
    /// the server deletes the image and clears the server's task.
    fn snapshot_failed<'a>(
        &'a self,
        _uuid: &'a str,
        _image_id: &'a str,
        _fault: &'a Fault,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async { Err(not_served("snapshot failures")) })
    }
    /// The image service's record of image `image_id` (Glance's image document: `disk_format`,
    /// `container_format`, `size`, `os_hash_algo`, `os_hash_value`, properties), for a driver
    /// that builds disks from images.
    fn image<'a>(&'a self, _image_id: &'a str) -> ApiFuture<'a, Value> {
        Box::pin(async { Err(not_served("image reads")) })
    }
    /// Writes the data of image `image_id` to the file `dest` (created or replaced, streamed);
    /// answers the number of bytes written.
    fn download_image<'a>(&'a self, _image_id: &'a str, _dest: &'a Path) -> ApiFuture<'a, u64> {
        Box::pin(async { Err(not_served("image downloads")) })
    }
}

/// The refusal of a call a [`ControlPlane`] implementation does not serve.
fn not_served(what: &str) -> ApiError {
    ApiError::Refused {
        status: 501,
        body: format!("this control plane does not take {what}"),
    }
}

/// [`ControlPlane`] over HTTP: `PUT /agent/v1/hosts/{host}`, `POST
/// /agent/v1/hosts/{host}/heartbeat`, `GET /agent/v1/hosts/{host}/instances?after=&wait=`,
/// `PUT /agent/v1/instances/{uuid}/report`, `PUT /agent/v1/instances/{uuid}/snapshot/{image}`
/// (the raw snapshot, `application/octet-stream`) and
/// `PUT /agent/v1/instances/{uuid}/snapshot/{image}/fault` (a [`Fault`]); images for drivers
/// that build disks from them: `GET /agent/v1/images/{image}` (Glance's record) and
/// `GET /agent/v1/images/{image}/file` (the data).
pub struct HttpControlPlane {
    base: String,
    token: std::sync::Mutex<Option<String>>,
    /// `(user, password, project)` in the `Default` domain, to get (and renew) tokens.
    password: Option<(String, String, String)>,
    client: reqwest::Client,
}

impl HttpControlPlane {
    /// `base` is the server's root URL (`http://host:8440`); `token` a Keystone token with
    /// the `admin` or `service` role.
    pub fn new(base: &str, token: &str) -> HttpControlPlane {
        HttpControlPlane {
            base: base.trim_end_matches('/').to_string(),
            token: std::sync::Mutex::new(Some(token.to_string())),
            password: None,
            client: reqwest::Client::new(),
        }
    }

    /// Authenticates as `user` (with `password`, scoped to `project`, all in the `Default`
    /// domain) at the server's `/identity/v3`, and again whenever the token is refused.
    pub fn with_password(base: &str, user: &str, password: &str, project: &str) -> Self {
        HttpControlPlane {
            base: base.trim_end_matches('/').to_string(),
            token: std::sync::Mutex::new(None),
            password: Some((user.into(), password.into(), project.into())),
            client: reqwest::Client::new(),
        }
    }

    fn cached(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn remember(&self, t: Option<String>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    async fn token(&self) -> Result<String, ApiError> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let Some((user, password, project)) = &self.password else {
            return Err(ApiError::Refused {
                status: 401,
                body: "no token and no credentials".into(),
            });
        };
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let resp = self
            .client
            .post(format!("{}/identity/v3/auth/tokens?nocatalog", self.base))
            .json(&body)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let token = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match token {
            Some(t) if status.is_success() => {
                self.remember(Some(t.clone()));
                Ok(t)
            }
            _ => Err(ApiError::Refused {
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            }),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Option<T>, ApiError> {
        let resp = self
            .send(|token| {
                let mut req = self
                    .client
                    .request(method.clone(), format!("{}/agent/v1{path}", self.base))
                    .header("X-Auth-Token", token)
                    .timeout(timeout);
                if let Some(b) = &body {
                    req = req.json(b);
                }
                std::future::ready(Ok(req))
            })
            .await?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(ApiError::Refused {
                status: status.as_u16(),
                body: text,
            });
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ApiError::Decode(format!("{e}: {text}")))
    }
}

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a snapshot upload may take (disk images are large).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

impl HttpControlPlane {
    /// `PUT /agent/v1{path}` with the file at `file` as the raw body
    /// (`application/octet-stream`, streamed); the answer's body is ignored.
    async fn upload(&self, path: &str, file: &Path) -> Result<(), ApiError> {
        let resp = self
            .send(|token| async move {
                let body = FileBody::open(file)
                    .await
                    .map_err(|e| ApiError::Decode(format!("reading {}: {e}", file.display())))?;
                Ok(self
                    .client
                    .put(format!("{}/agent/v1{path}", self.base))
                    .header("X-Auth-Token", token)
                    .header("Content-Type", "application/octet-stream")
                    .body(reqwest::Body::wrap(body))
                    .timeout(UPLOAD_TIMEOUT))
            })
            .await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(ApiError::Refused {
            status: status.as_u16(),
            body: resp.text().await.unwrap_or_default(),
        })
    }

    /// Sends the request `build` makes with a token, and once more with a new one when the
    /// token is refused (expired or revoked: 401) and the agent can authenticate again.
    async fn send<F, Fut>(&self, build: F) -> Result<reqwest::Response, ApiError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<reqwest::RequestBuilder, ApiError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let resp = build(token)
                .await?
                .send()
                .await
                .map_err(|e| ApiError::Unreachable(e.to_string()))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED
                && self.password.is_some()
                && attempt == 1
            {
                self.remember(None);
                continue;
            }
            return Ok(resp);
        }
    }
}

/// A file as a streamed HTTP body (read in chunks, never whole in memory): how a snapshot
/// goes to the server, over HTTP or in process.
pub struct FileBody {
    file: tokio::fs::File,
    buf: Vec<u8>,
    done: bool,
}

impl FileBody {
    const CHUNK: usize = 256 * 1024;

    pub async fn open(path: &Path) -> std::io::Result<FileBody> {
        Ok(FileBody {
            file: tokio::fs::File::open(path).await?,
            buf: vec![0; Self::CHUNK],
            done: false,
        })
    }
}

impl http_body::Body for FileBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut rb = tokio::io::ReadBuf::new(&mut this.buf);
        match tokio::io::AsyncRead::poll_read(Pin::new(&mut this.file), cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(http_body::Frame::data(
                bytes::Bytes::copy_from_slice(rb.filled()),
            )))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Decode(e.to_string()))
}

impl ControlPlane for HttpControlPlane {
    fn register<'a>(&'a self, reg: &'a HostRegistration) -> ApiFuture<'a, Registered> {
        Box::pin(async move {
            self.call(
                reqwest::Method::PUT,
                &format!("/hosts/{}", reg.host),
                Some(to_value(reg)?),
                CALL_TIMEOUT,
            )
            .await?
            .ok_or_else(|| ApiError::Decode("empty registration answer".into()))
        })
    }
    fn heartbeat<'a>(&'a self, host: &'a str) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            self.call::<Value>(
                reqwest::Method::POST,
                &format!("/hosts/{host}/heartbeat"),
                None,
                CALL_TIMEOUT,
            )
            .await
            .map(|_| ())
        })
    }
    fn desired<'a>(
        &'a self,
        host: &'a str,
        after: i64,
        wait: Duration,
    ) -> ApiFuture<'a, DesiredInstances> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &format!(
                    "/hosts/{host}/instances?after={after}&wait={}",
                    wait.as_secs()
                ),
                None,
                CALL_TIMEOUT + wait,
            )
            .await?
            .ok_or_else(|| ApiError::Decode("empty desired-state answer".into()))
        })
    }
    fn report<'a>(&'a self, report: &'a InstanceReport) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            self.call::<Value>(
                reqwest::Method::PUT,
                &format!("/instances/{}/report", report.uuid),
                Some(to_value(report)?),
                CALL_TIMEOUT,
            )
            .await
            .map(|_| ())
        })
    }
    fn upload_snapshot<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
        path: &'a Path,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            self.upload(&format!("/instances/{uuid}/snapshot/{image_id}"), path)
                .await
        })
    }
    fn snapshot_failed<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
        fault: &'a Fault,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            self.call::<Value>(
                reqwest::Method::PUT,
                &format!("/instances/{uuid}/snapshot/{image_id}/fault"),
                Some(to_value(fault)?),
                CALL_TIMEOUT,
            )
            .await
            .map(|_| ())
        })
    }
    fn image<'a>(&'a self, image_id: &'a str) -> ApiFuture<'a, Value> {
        Box::pin(async move {
            self.call::<Value>(
                reqwest::Method::GET,
                &format!("/images/{image_id}"),
                None,
                CALL_TIMEOUT,
            )
            .await?
            .ok_or_else(|| ApiError::Decode(format!("no record of image {image_id}")))
        })
    }
    fn download_image<'a>(&'a self, image_id: &'a str, dest: &'a Path) -> ApiFuture<'a, u64> {
        Box::pin(async move {
            self.download(&format!("/images/{image_id}/file"), dest)
                .await
        })
    }
}

impl HttpControlPlane {
    /// `GET /agent/v1{path}`, its body streamed into the file `dest`.
    async fn download(&self, path: &str, dest: &Path) -> Result<u64, ApiError> {
        use tokio::io::AsyncWriteExt;
        let mut resp = self
            .send(|token| {
                std::future::ready(Ok(self
                    .client
                    .get(format!("{}/agent/v1{path}", self.base))
                    .header("X-Auth-Token", token)
                    .timeout(UPLOAD_TIMEOUT)))
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ApiError::Refused {
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            });
        }
        let io = |e: std::io::Error| ApiError::Decode(format!("writing {}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut n = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?
        {
            file.write_all(&chunk).await.map_err(io)?;
            n += chunk.len() as u64;
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_without_a_snapshot_still_parse() {
        let spec = InstanceSpec {
            uuid: "u".into(),
            name: "instance-00000001".into(),
            hostname: "h".into(),
            generation: 2,
            power: Power::Running,
            reboot_seq: 0,
            hard_reboot: false,
            sizing: Sizing::default(),
            image_id: Some("img".into()),
            disks: vec![],
            vifs: vec![],
            user_data: None,
            metadata: Default::default(),
            key_data: None,
            config_drive: false,
            snapshot: Some(SnapshotRequest {
                image_id: "snap".into(),
                disk_format: "raw".into(),
                container_format: "bare".into(),
            }),
            display_name: None,
            project_id: None,
            availability_zone: None,
            key_name: None,
            launch_index: 0,
            image_properties: Default::default(),
            previous_sizing: None,
        };
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v["snapshot"],
            serde_json::json!({"image_id": "snap", "disk_format": "raw",
                "container_format": "bare"})
        );
        assert_eq!(
            serde_json::from_value::<InstanceSpec>(v.clone()).unwrap(),
            spec
        );
        let mut old = v;
        old.as_object_mut().unwrap().remove("snapshot");
        let back: InstanceSpec = serde_json::from_value(old).unwrap();
        assert_eq!(back.snapshot, None);
    }

    #[test]
    fn wire_names_are_stable() {
        assert_eq!(serde_json::to_value(Power::Running).unwrap(), "running");
        assert_eq!(
            serde_json::to_value(PowerState::NoState).unwrap(),
            "no_state"
        );
        assert_eq!(PowerState::Shutdown.code(), 4);
        let r = InstanceReport {
            uuid: "u".into(),
            host: "h".into(),
            generation: 3,
            reboot_seq: 0,
            power_state: PowerState::Running,
            deleted: false,
            fault: None,
            console: Some("login:".into()),
            volumes: vec!["v1".into()],
        };
        let back: InstanceReport =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A report of an agent that knows nothing of volumes still parses.
        let mut old = serde_json::to_value(&r).unwrap();
        old.as_object_mut().unwrap().remove("volumes");
        let back: InstanceReport = serde_json::from_value(old).unwrap();
        assert!(back.volumes.is_empty());
    }
}
