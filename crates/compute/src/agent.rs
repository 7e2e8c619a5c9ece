//! The server side of the node agents' contract (`strata_agent_api`), mounted at `/agent`:
//! `PUT /agent/v1/hosts/{host}` (registration), `POST /agent/v1/hosts/{host}/heartbeat`,
//! `GET /agent/v1/hosts/{host}/instances?after=&wait=` (the host's desired instances, a long
//! poll on the change-log revision) and `PUT /agent/v1/instances/{uuid}/report`. Callers need
//! a token with the `admin` or `service` role. Errors use Nova's fault bodies.

use crate::controller::ReportError;
use crate::error::{NovaError, NovaResult};
use crate::hosts::RegisterError;
use crate::server::Server;
use crate::server_db;
use crate::ComputeService;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use strata_agent_api::{
    ApiError, ApiFuture, ControlPlane, DesiredInstances, Disk, HostRegistration, InstanceReport,
    InstanceSpec, Registered, Sizing, Vif,
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
    if !s.image_ref.is_empty() {
        disks.push(Disk {
            device_name: "vda".into(),
            boot_index: Some(0),
            connection_info: json!({"driver_volume_type": "image",
                "data": {"image_id": s.image_ref}}),
            size_gb: s.flavor.root_gb,
            source: "local".into(),
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
        sizing: Sizing {
            vcpus: s.flavor.vcpus,
            memory_mb: s.flavor.memory_mb,
            root_gb: s.flavor.root_gb,
            ephemeral_gb: s.flavor.ephemeral_gb,
            swap_mb: s.flavor.swap,
            extra_specs: s.flavor.extra_specs.clone(),
        },
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
    let mut rev = server_db::host_rev(svc.store(), host).await?;
    // `after` 0 is an agent that has nothing yet (a start or restart): it is answered at once,
    // so that it adopts its guests and removes orphans without waiting for a change.
    while rev <= after && after > 0 {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        let seen = svc.store().current_revision().await?;
        let rev2 = server_db::host_rev(svc.store(), host).await?;
        if rev2 > after {
            rev = rev2;
            break;
        }
        svc.store().watch(seen, deadline - now).await?;
        rev = server_db::host_rev(svc.store(), host).await?;
    }
    let servers = server_db::on_host(svc.store(), host).await?;
    Ok(DesiredInstances {
        revision: rev,
        instances: servers.iter().map(instance_spec).collect(),
    })
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
