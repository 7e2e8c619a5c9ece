//! The server side of the node agents' contract (`strata_agent_api`), mounted at `/agent`:
//! `PUT /agent/v1/hosts/{host}` (registration), `POST /agent/v1/hosts/{host}/heartbeat`,
//! `GET /agent/v1/hosts/{host}/instances?after=&wait=` (the host's desired instances, a long
//! poll on the change-log revision), `PUT /agent/v1/instances/{uuid}/report` and the snapshot
//! calls `PUT /agent/v1/instances/{uuid}/snapshot/{image}` (raw data) and `…/{image}/fault`.
//! Callers need a token with the `admin` or `service` role. Errors use Nova's fault bodies.

use crate::controller::ReportError;
use crate::error::{NovaError, NovaResult};
use crate::hosts::RegisterError;
use crate::server::{bdm, migration, Server};
use crate::server_db;
use crate::snapshot::SnapshotError;
use crate::ComputeService;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use strata_agent_api::{
    ApiError, ApiFuture, ControlPlane, DesiredInstances, Disk, Fault, FileBody, HostRegistration,
    InstanceReport, InstanceSpec, Registered, Sizing, SnapshotRequest, Vif,
};

/// The longest an agent's desired-state poll is held open.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A caller with the `admin` or `service` role.
pub struct AgentAuth;

impl FromRequestParts<ComputeService> for AgentAuth {
    type Rejection = NovaError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ComputeService,
    ) -> Result<Self, NovaError> {
        let ctx = crate::extract::token_context(parts, state).await?;
        if ctx.is_admin() || ctx.has_role("service") {
            Ok(AgentAuth)
        } else {
            Err(NovaError::policy("strata:agent"))
        }
    }
}

/// The agent routes, to be nested under `/agent`.
pub fn router(svc: ComputeService) -> Router {
    Router::new()
        .route("/v1/hosts/{host}", put(host_register))
        .route("/v1/hosts/{host}/heartbeat", post(host_heartbeat))
        .route("/v1/hosts/{host}/instances", get(host_instances))
        .route("/v1/instances/{uuid}/report", put(instance_report))
        .route("/v1/images/{image}", get(image_record))
        .route("/v1/images/{image}/file", get(image_file))
        .route(
            "/v1/instances/{uuid}/snapshot/{image}",
            put(snapshot_upload.layer(axum::extract::DefaultBodyLimit::disable())),
        )
        .route(
            "/v1/instances/{uuid}/snapshot/{image}/fault",
            put(snapshot_fault),
        )
        .with_state(svc)
}

fn body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> NovaResult<T> {
    serde_json::from_slice(raw)
        .map_err(|e| NovaError::bad_request(format!("Invalid agent request body: {e}")))
}

/// `PUT /agent/v1/hosts/{host}`.
pub async fn host_register(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path(host): Path<String>,
    raw: axum::body::Bytes,
) -> NovaResult<Json<Registered>> {
    let reg: HostRegistration = body(&raw)?;
    if reg.host != host {
        return Err(NovaError::bad_request(format!(
            "The registration is for host {}, not {host}",
            reg.host
        )));
    }
    match svc.register_host(&reg).await? {
        Ok(r) => Ok(Json(r)),
        Err(RegisterError::Invalid(m)) => Err(NovaError::bad_request(m)),
        Err(RegisterError::Placement(m)) => Err(NovaError::new(
            StatusCode::CONFLICT,
            format!("Placement refused the host's provider: {m}"),
        )),
    }
}

/// `POST /agent/v1/hosts/{host}/heartbeat`.
pub async fn host_heartbeat(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path(host): Path<String>,
) -> NovaResult<StatusCode> {
    if svc.heartbeat(&host).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NovaError::not_found(format!(
            "Compute host {host} could not be found."
        )))
    }
}

#[derive(Deserialize)]
pub struct Poll {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    wait: u64,
}

/// `GET /agent/v1/hosts/{host}/instances?after=&wait=`: once what the host is given changes
/// after revision `after` (or `wait` seconds, at most 60, have gone), the host's desired
/// instances.
pub async fn host_instances(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path(host): Path<String>,
    Query(poll): Query<Poll>,
) -> NovaResult<Json<DesiredInstances>> {
    if !crate::hosts::services(svc.store())
        .await?
        .iter()
        .any(|s| s.host == host)
    {
        return Err(NovaError::not_found(format!(
            "Compute host {host} could not be found."
        )));
    }
    Ok(Json(
        desired(&svc, &host, poll.after, Duration::from_secs(poll.wait)).await?,
    ))
}

/// What the host's agent is given of a server.
pub fn instance_spec(s: &Server) -> InstanceSpec {
    let mut disks = Vec::new();
    if !s.boot_from_volume() {
        disks.push(Disk {
            device_name: "vda".into(),
            boot_index: Some(0),
            connection_info: json!({"driver_volume_type": "image",
                "data": {"image_id": s.image_ref}}),
            size_gb: s.flavor.root_gb,
            source: "local".into(),
            volume_id: None,
        });
    }
    // Volumes reserved for the guest or attached to it; those being detached are left out.
    for b in s.bdms.iter().filter(|b| {
        matches!(
            b.state.as_str(),
            bdm::ATTACHING | bdm::CONNECTED | bdm::ATTACHED
        )
    }) {
        let Some(info) = &b.connection_info else {
            continue;
        };
        disks.push(Disk {
            device_name: b.device.trim_start_matches("/dev/").to_string(),
            boot_index: b.boot_index.filter(|i| *i >= 0),
            connection_info: info.clone(),
            size_gb: b.volume_size.unwrap_or(0),
            source: "volume".into(),
            volume_id: Some(b.volume_id.clone()),
        });
    }
    InstanceSpec {
        uuid: s.id.clone(),
        name: s.instance_name(),
        hostname: s.hostname.clone(),
        generation: s.generation,
        power: s.power,
        reboot_seq: s.reboot_seq,
        hard_reboot: s.hard_reboot,
        sizing: sizing(&s.flavor),
        image_id: (!s.image_ref.is_empty()).then(|| s.image_ref.clone()),
        disks,
        vifs: s
            .ports
            .iter()
            .map(|p| Vif {
                port_id: p.port_id.clone(),
                mac_address: p.mac.clone(),
                network_id: p.network_id.clone(),
                mtu: p.mtu,
                vif_type: "tap".into(),
                fixed_ips: p.ips.iter().map(|(ip, _)| ip.clone()).collect(),
            })
            .collect(),
        user_data: s.user_data.clone(),
        metadata: s.metadata.clone(),
        key_data: s.key_data.clone(),
        config_drive: s.config_drive,
        snapshot: s.snapshot.as_ref().map(|j| SnapshotRequest {
            image_id: j.image_id.clone(),
            disk_format: j.disk_format.clone(),
            container_format: j.container_format.clone(),
        }),
        display_name: Some(s.name.clone()),
        project_id: Some(s.project_id.clone()),
        availability_zone: s.availability_zone.clone(),
        key_name: s.key_name.clone(),
        launch_index: s.launch_index,
        image_properties: s.image_properties.clone(),
        // A cold move that waits for confirmation (or is being reverted): the destination's
        // guest was resized from the old flavor (in place, when the move stayed on its host).
        previous_sizing: s
            .active_move()
            .filter(|m| m.kind == migration::RESIZE || m.kind == migration::MIGRATION)
            .filter(|m| {
                [
                    migration::POST_MIGRATING,
                    migration::FINISHED,
                    migration::REVERTING,
                ]
                .contains(&m.status.as_str())
            })
            .map(|m| sizing(&m.old_flavor)),
    }
}

/// The guest's size for a flavor.
fn sizing(f: &crate::server::FlavorCopy) -> Sizing {
    Sizing {
        vcpus: f.vcpus,
        memory_mb: f.memory_mb,
        root_gb: f.root_gb,
        ephemeral_gb: f.ephemeral_gb,
        swap_mb: f.swap,
        extra_specs: f.extra_specs.clone(),
    }
}

/// The desired instances of `host` once what it is given changes after `after` (or `wait`,
/// at most [`MAX_WAIT`], has gone). The answer's revision is the host's, to poll after next.
pub async fn desired(
    svc: &ComputeService,
    host: &str,
    after: i64,
    wait: Duration,
) -> strata_core::Result<DesiredInstances> {
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    // Only this host's changes wake the poll (see `live`): thousands of waiting agents cost
    // nothing while other hosts' servers change.
    let (mut rev, mut rx) = crate::live::host_rev(svc.live(), svc.store(), host).await?;
    // `after` 0 is an agent that has nothing yet (a start or restart): it is answered at once,
    // so that it adopts its guests and removes orphans without waiting for a change.
    while rev <= after && after > 0 {
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => rev = rev.max(*rx.borrow_and_update()),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let servers = server_db::on_host(svc.store(), host).await?;
    Ok(DesiredInstances {
        // A host that was never given anything is at revision 1, not 0: its agent's next
        // poll (`after=1`) then waits instead of being answered at once again.
        revision: rev.max(1),
        instances: servers.iter().map(|s| instance_spec_on(s, host)).collect(),
    })
}

/// What `host`'s agent is given of a server: its guest, or, on the second host of a move, the
/// guest it keeps or builds there (the other flavor and power, same uuid).
pub fn instance_spec_on(s: &Server, host: &str) -> InstanceSpec {
    if s.host.as_deref() != Some(host) {
        if let Some(o) = s.active_move().and_then(|m| m.other.as_ref()) {
            let mut other = s.clone();
            other.flavor = o.flavor.clone();
            other.power = o.power;
            other.snapshot = None;
            // The guest kept (or built) there is not resized in place.
            let mut spec = instance_spec(&other);
            spec.previous_sizing = None;
            return spec;
        }
    }
    instance_spec(s)
}

/// The contract served in process, for the agents `strata up` runs itself (no token, no
/// HTTP; the same code paths as the routes above).
pub struct LocalControlPlane(pub ComputeService);

fn refused(status: u16, body: impl Into<String>) -> ApiError {
    ApiError::Refused {
        status,
        body: body.into(),
    }
}

impl ControlPlane for LocalControlPlane {
    fn register<'a>(&'a self, reg: &'a HostRegistration) -> ApiFuture<'a, Registered> {
        Box::pin(async move {
            match self.0.register_host(reg).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(RegisterError::Invalid(m))) => Err(refused(400, m)),
                Ok(Err(RegisterError::Placement(m))) => Err(refused(409, m)),
                Err(e) => Err(refused(500, e.to_string())),
            }
        })
    }
    fn heartbeat<'a>(&'a self, host: &'a str) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            match self.0.heartbeat(host).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(refused(
                    404,
                    format!("Compute host {host} could not be found."),
                )),
                Err(e) => Err(refused(500, e.to_string())),
            }
        })
    }
    fn desired<'a>(
        &'a self,
        host: &'a str,
        after: i64,
        wait: Duration,
    ) -> ApiFuture<'a, DesiredInstances> {
        Box::pin(async move {
            desired(&self.0, host, after, wait)
                .await
                .map_err(|e| refused(500, e.to_string()))
        })
    }
    fn report<'a>(&'a self, report: &'a InstanceReport) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            match self.0.instance_report(report).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(ReportError::NotFound)) => Err(refused(
                    404,
                    format!("Instance {} could not be found.", report.uuid),
                )),
                Err(e) => Err(refused(500, e.to_string())),
            }
        })
    }
    fn upload_snapshot<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
        path: &'a std::path::Path,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            let file = FileBody::open(path)
                .await
                .map_err(|e| ApiError::Decode(format!("reading {}: {e}", path.display())))?;
            let answer = self
                .0
                .snapshot_upload(uuid, image_id, axum::body::Body::new(file))
                .await;
            snapshot_answer(uuid, answer)
        })
    }
    fn snapshot_failed<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
        fault: &'a Fault,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            let answer = self.0.snapshot_failed(uuid, image_id, fault).await;
            snapshot_answer(uuid, answer)
        })
    }
    fn image<'a>(&'a self, image_id: &'a str) -> ApiFuture<'a, serde_json::Value> {
        Box::pin(async move {
            self.0
                .agent_image(image_id)
                .await
                .map_err(|e| refused(e.status.as_u16(), e.message))
        })
    }
    fn download_image<'a>(
        &'a self,
        image_id: &'a str,
        dest: &'a std::path::Path,
    ) -> ApiFuture<'a, u64> {
        Box::pin(async move {
            use http_body_util::BodyExt;
            use tokio::io::AsyncWriteExt;
            let resp = self
                .0
                .agent_image_data(image_id)
                .await
                .map_err(|e| refused(e.status.as_u16(), e.message))?;
            let io =
                |e: std::io::Error| ApiError::Decode(format!("writing {}: {e}", dest.display()));
            let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
            let mut body = resp.into_body();
            let mut n = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ApiError::Unreachable(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    file.write_all(&data).await.map_err(io)?;
                    n += data.len() as u64;
                }
            }
            file.flush().await.map_err(io)?;
            file.sync_all().await.map_err(io)?;
            Ok(n)
        })
    }
}

/// A snapshot call's answer as the agent's contract words it.
fn snapshot_answer(
    uuid: &str,
    answer: strata_core::Result<Result<(), SnapshotError>>,
) -> Result<(), ApiError> {
    match answer {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let e = snapshot_error(uuid, e);
            Err(refused(e.status.as_u16(), e.message))
        }
        Err(e) => Err(refused(500, e.to_string())),
    }
}

fn snapshot_error(uuid: &str, e: SnapshotError) -> NovaError {
    match e {
        SnapshotError::NotFound => {
            NovaError::not_found(format!("Instance {uuid} could not be found."))
        }
        SnapshotError::NotPending(m) => NovaError::conflict(m),
        SnapshotError::Failed(m) => NovaError::new(StatusCode::BAD_GATEWAY, m),
    }
}

/// `PUT /agent/v1/instances/{uuid}/snapshot/{image}`: the snapshot's data
/// (`application/octet-stream`, streamed on into the image service). 204 once the image is
/// active; 409 when the server does not ask for that image (any more); 502 when the image
/// service refused the data (the snapshot is then finished as failed and its image deleted).
pub async fn snapshot_upload(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path((uuid, image)): Path<(String, String)>,
    req: axum::extract::Request,
) -> NovaResult<StatusCode> {
    let ct = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.split(';').next().unwrap_or_default().trim() != "application/octet-stream" {
        return Err(NovaError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("A snapshot is sent as application/octet-stream, not {ct:?}"),
        ));
    }
    match svc.snapshot_upload(&uuid, &image, req.into_body()).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(snapshot_error(&uuid, e)),
    }
}

/// `PUT /agent/v1/instances/{uuid}/snapshot/{image}/fault`: the agent could not take the
/// snapshot (a `Fault`). 204; 409 when the server does not ask for that image (any more).
pub async fn snapshot_fault(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path((uuid, image)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> NovaResult<StatusCode> {
    let fault: Fault = body(&raw)?;
    match svc.snapshot_failed(&uuid, &image, &fault).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(snapshot_error(&uuid, e)),
    }
}

/// The caller agents read images as: the image service's admin (a host boots whatever image
/// its servers were given, whoever owns it).
fn image_reader() -> std::sync::Arc<strata_api::AuthContext> {
    crate::controller::service_context("")
}

impl ComputeService {
    /// Image `id`'s record in the image service, for an agent that builds a disk from it.
    pub async fn agent_image(&self, id: &str) -> NovaResult<serde_json::Value> {
        let a = self
            .glance(image_reader(), Method::GET, &format!("/images/{id}"), None)
            .await
            .ok_or_else(|| NovaError::new(StatusCode::SERVICE_UNAVAILABLE, "No image service"))?;
        match a.status {
            s if s.is_success() => Ok(a.body),
            StatusCode::NOT_FOUND => Err(NovaError::not_found(format!(
                "Image {id} could not be found."
            ))),
            s => Err(NovaError::new(s, a.message())),
        }
    }

    /// Image `id`'s data as the image service answers it (streamed, not read here).
    pub async fn agent_image_data(&self, id: &str) -> NovaResult<axum::response::Response> {
        let Some(image) = self.0.peers.image.as_ref() else {
            return Err(NovaError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "No image service",
            ));
        };
        let resp = strata_api::inproc::get_response(
            image,
            image_reader(),
            &format!("/v2/images/{id}/file"),
        )
        .await;
        match resp.status() {
            s if s.is_success() && s != StatusCode::NO_CONTENT => Ok(resp),
            StatusCode::NO_CONTENT => Err(NovaError::conflict(format!("Image {id} has no data."))),
            StatusCode::NOT_FOUND => Err(NovaError::not_found(format!(
                "Image {id} could not be found."
            ))),
            s => Err(NovaError::new(s, format!("The image service answered {s}"))),
        }
    }
}

/// `GET /agent/v1/images/{image}`: the image service's record of an image.
pub async fn image_record(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path(image): Path<String>,
) -> NovaResult<Json<serde_json::Value>> {
    Ok(Json(svc.agent_image(&image).await?))
}

/// `GET /agent/v1/images/{image}/file`: an image's data, streamed from the image service.
pub async fn image_file(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path(image): Path<String>,
) -> NovaResult<axum::response::Response> {
    svc.agent_image_data(&image).await
}

/// `PUT /agent/v1/instances/{uuid}/report`.
pub async fn instance_report(
    State(svc): State<ComputeService>,
    _auth: AgentAuth,
    Path(uuid): Path<String>,
    raw: axum::body::Bytes,
) -> NovaResult<StatusCode> {
    let report: InstanceReport = body(&raw)?;
    if report.uuid != uuid {
        return Err(NovaError::bad_request(format!(
            "The report is for instance {}, not {uuid}",
            report.uuid
        )));
    }
    match svc.instance_report(&report).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(ReportError::NotFound) => Err(NovaError::not_found(format!(
            "Instance {uuid} could not be found."
        ))),
    }
}
