//! The server lifecycle controller: the steps of a server's life that need other services.
//!
//! A server with a step to run is `pending` in the database (scheduling, networking, block
//! device mapping, deleting, or the cleanup of a failed build). The controller — one per
//! deployment, elected with a store lease — wakes on every change, and drives each pending
//! server through its steps, a bounded number of servers at a time. Every step is idempotent
//! and ends in one store write that checks the server is still where the step found it, so a
//! crash between the side effect (a placement claim, a port) and the write is repaired by
//! running the step again: a claim already made for the server is reused, a port already
//! created for it (found by `device_id`) is adopted, a port or claim already released is no
//! error.
//!
//! Agent reports ([`ComputeService::instance_report`]) finish tasks and turn failed builds
//! into reschedules (up to `max_attempts`) or ERROR with a fault; a periodic sweep marks the
//! servers of hosts whose service is down with power state NOSTATE.

use crate::hosts::{self, Service};
use crate::server::{power, task, vm, Fault, PortRef, Server};
use crate::server_db as db;
use crate::ComputeService;
use axum::http::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use strata_agent_api::{InstanceReport, Power};
use strata_api::inproc::{call, Answer};
use strata_api::{AuthContext, Scope};
use strata_core::time::now_micros;
use strata_core::workqueue::WorkQueue;
use strata_core::Result;
use strata_placement::scheduler::{GroupPolicy, HostState, RequestSpec, ServerGroup, Weights};
use tokio::sync::watch;

/// The lease the controller holds.
const LEASE: &str = "compute-controller";
const LEASE_TTL_MS: i64 = 15_000;
/// Servers driven at once.
const PARALLEL: usize = 64;

/// The identity the controller acts as towards the network, image and volume services (Nova's
/// own service user, with the admin role), scoped to the server's project.
pub fn service_context(project_id: &str) -> Arc<AuthContext> {
    Arc::new(AuthContext {
        user_id: "strata-compute".into(),
        user_name: "nova".into(),
        user_domain_id: "default".into(),
        scope: Scope::Project {
            id: project_id.into(),
            name: String::new(),
            domain_id: "default".into(),
            domain_name: "Default".into(),
        },
        roles: vec![
            "admin".into(),
            "service".into(),
            "member".into(),
            "reader".into(),
        ],
        expires_at: i64::MAX,
        ..Default::default()
    })
}

/// What a step did.
pub(crate) enum Step {
    /// The server moved on: run its next step.
    Next,
    /// Nothing to do until something else happens (an agent report, a host coming back).
    Wait,
}

impl ComputeService {
    /// A call to the network service in process.
    pub(crate) async fn neutron(
        &self,
        ctx: Arc<AuthContext>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let r = self.0.peers.network.as_ref()?;
        Some(call(r, ctx, method, &format!("/v2.0{path}"), body).await)
    }

    /// A call to the image service in process.
    pub(crate) async fn glance(
        &self,
        ctx: Arc<AuthContext>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let r = self.0.peers.image.as_ref()?;
        Some(call(r, ctx, method, &format!("/v2{path}"), body).await)
    }

    /// A call to the volume service in process, at the attachments API's microversion (3.44),
    /// under the project of `ctx`.
    pub(crate) async fn cinder(
        &self,
        ctx: Arc<AuthContext>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let r = self.0.peers.volume.as_ref()?;
        let project = ctx.project_id().unwrap_or_default().to_string();
        Some(
            strata_api::inproc::call_with_headers(
                r,
                ctx,
                method,
                &format!("/v3/{project}{path}"),
                &[("openstack-api-version", crate::volumes::CINDER_VERSION)],
                body,
            )
            .await,
        )
    }

    /// Runs the controller until `stop` turns true.
    pub fn spawn_controller(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let svc = self.clone();
        tokio::spawn(async move { run(svc, stop).await })
    }

    /// Drives one server until it waits on something (tests call it to step without the loop).
    pub async fn drive(&self, id: &str) -> Result<()> {
        for _ in 0..16 {
            let Some(s) = db::get(self.store(), id).await? else {
                return Ok(());
            };
            if !db::pending(&s) {
                return Ok(());
            }
            match step(self, s).await? {
                Step::Next => continue,
                Step::Wait => return Ok(()),
            }
        }
        Ok(())
    }

    /// Drives every pending server once (tests; the loop does the same on every change).
    pub async fn drive_all(&self) -> Result<()> {
        for id in db::pending_ids(self.store()).await? {
            self.drive(&id).await?;
        }
        Ok(())
    }
}

/// The servers to drive: at most [`PARALLEL`] workers, each driving one server after
/// another; the rest wait in line as ids ([`WorkQueue`]). A server changed while it is driven
/// is driven again after.
fn queue(svc: &ComputeService) -> WorkQueue {
    let svc = svc.clone();
    WorkQueue::new(
        PARALLEL,
        Arc::new(move |id: String| {
            let svc = svc.clone();
            Box::pin(async move {
                if let Err(e) = svc.drive(&id).await {
                    tracing::warn!(error = %e, server = %id, "compute controller");
                }
            })
        }),
    )
}

async fn run(svc: ComputeService, mut stop: watch::Receiver<bool>) {
    let holder = uuid::Uuid::new_v4().to_string();
    let queue = queue(&svc);
    let mut after = svc.store().current_revision().await.unwrap_or(0);
    let mut last_sweep = std::time::Instant::now() - Duration::from_secs(60);
    let mut last_lease = std::time::Instant::now() - Duration::from_secs(60);
    let mut last_scan = std::time::Instant::now() - Duration::from_secs(60);
    let mut leader = false;
    // Servers that changed since the last pass (from the change log); `None` means every
    // pending server is looked at (a full scan).
    let mut changed: Option<Vec<String>> = None;
    loop {
        if last_lease.elapsed() >= Duration::from_millis(LEASE_TTL_MS as u64 / 3) {
            let was = leader;
            leader = svc
                .store()
                .lease_acquire(LEASE, &holder, LEASE_TTL_MS)
                .await
                .unwrap_or(false);
            last_lease = std::time::Instant::now();
            if leader && !was {
                changed = None;
            }
        }
        if leader {
            if last_scan.elapsed() >= FULL_SCAN_EVERY {
                changed = None;
            }
            let ids = match changed.take() {
                Some(ids) => Ok(ids),
                None => {
                    last_scan = std::time::Instant::now();
                    db::pending_ids(svc.store()).await
                }
            };
            match ids {
                Ok(ids) => {
                    for id in ids {
                        queue.push(id);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "compute controller: pending servers"),
            }
            if last_sweep.elapsed() >= Duration::from_secs(5) {
                last_sweep = std::time::Instant::now();
                if let Err(e) = sweep(&svc).await {
                    tracing::warn!(error = %e, "compute controller: power sweep");
                }
                if let Err(e) = crate::api::deferred::reclaim(&svc).await {
                    tracing::warn!(error = %e, "compute controller: reclaiming soft deletes");
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => break,
            r = svc.store().watch(after, Duration::from_secs(2)) => {
                match r {
                    Ok(ch) => {
                        let mut ids: Vec<String> = Vec::new();
                        let mut seen = HashSet::new();
                        for c in &ch {
                            after = after.max(c.revision);
                            if c.kind == db::SERVER && seen.insert(c.id.as_str()) {
                                ids.push(c.id.clone());
                            }
                        }
                        // A full page may not be everything: look at every pending server.
                        changed = (ch.len() < WATCH_PAGE).then_some(ids);
                    }
                    Err(_) => changed = None,
                }
            }
        }
    }
    let _ = svc.store().lease_release(LEASE, &holder).await;
}

/// Every pending server is looked at this often even without changes (a change missed while
/// another replica led, or a PostgreSQL commit out of revision order).
const FULL_SCAN_EVERY: Duration = Duration::from_secs(2);
/// Changes the store's `watch` returns at most.
const WATCH_PAGE: usize = 1000;

/// Servers of hosts whose service is down are reported with power state NOSTATE (their
/// generation bumps, so the agent reports again when it is back).
async fn sweep(svc: &ComputeService) -> Result<()> {
    let now = now_micros();
    let down: Vec<Service> = hosts::services(svc.store())
        .await?
        .into_iter()
        .filter(|s| !svc.service_up(s, now))
        .collect();
    for s in down {
        for srv in db::live_on_host(svc.store(), &s.host).await? {
            if srv.power_state == power::NOSTATE || srv.task_state.is_some() {
                continue;
            }
            let id = srv.id.clone();
            svc.store()
                .write(move |tx| {
                    let id = id.clone();
                    Box::pin(async move {
                        let Some(old) = db::get_tx(tx, &id).await? else {
                            return Ok(());
                        };
                        if old.deleted || old.power_state == power::NOSTATE {
                            return Ok(());
                        }
                        let mut n = old.clone();
                        n.power_state = power::NOSTATE;
                        n.generation += 1;
                        db::save(tx, &old, &mut n).await
                    })
                })
                .await?;
        }
    }
    Ok(())
}

/// Applies `f` to the server if it is still in `task` (and not deleted); returns whether it
/// did.
pub(crate) async fn update(
    svc: &ComputeService,
    id: &str,
    expect_task: Option<&'static str>,
    f: impl Fn(&mut Server) + Send + Sync + Clone + 'static,
) -> Result<bool> {
    let id = id.to_string();
    svc.store()
        .write(move |tx| {
            let (id, f) = (id.clone(), f.clone());
            Box::pin(async move {
                let Some(old) = db::get_tx(tx, &id).await? else {
                    return Ok(false);
                };
                if old.deleted || old.task_state.as_deref() != expect_task {
                    return Ok(false);
                }
                let mut n = old.clone();
                f(&mut n);
                if n.vm_state == vm::ERROR && old.vm_state != vm::ERROR {
                    let msg = n.fault.as_ref().map(|f| f.message.clone());
                    db::action_finish(tx, &id, msg.as_deref()).await?;
                }
                db::save(tx, &old, &mut n).await?;
                Ok(true)
            })
        })
        .await
}

/// [`update`] that also records the scheduler's event (timed from `start`) on the server's
/// action, in the same transaction.
async fn update_scheduled(
    svc: &ComputeService,
    id: &str,
    start: i64,
    error: Option<String>,
    f: impl Fn(&mut Server) + Send + Sync + Clone + 'static,
) -> Result<bool> {
    let id = id.to_string();
    svc.store()
        .write(move |tx| {
            let (id, f, error) = (id.clone(), f.clone(), error.clone());
            Box::pin(async move {
                let Some(old) = db::get_tx(tx, &id).await? else {
                    return Ok(false);
                };
                if old.deleted || old.task_state.as_deref() != Some(task::SCHEDULING) {
                    return Ok(false);
                }
                let mut n = old.clone();
                f(&mut n);
                db::action_event_done(tx, &id, SCHEDULE_EVENT, start, error.as_deref()).await?;
                if n.vm_state == vm::ERROR && old.vm_state != vm::ERROR {
                    let msg = n.fault.as_ref().map(|f| f.message.clone());
                    db::action_finish(tx, &id, msg.as_deref()).await?;
                }
                db::save(tx, &old, &mut n).await?;
                Ok(true)
            })
        })
        .await
}

/// Nova's name for the conductor's scheduling of a build.
const SCHEDULE_EVENT: &str = "conductor_schedule_and_build_instances";

async fn step(svc: &ComputeService, s: Server) -> Result<Step> {
    match s.task_state.as_deref() {
        Some(task::DELETING) => delete_step(svc, s).await,
        Some(task::SCHEDULING) => schedule_step(svc, s).await,
        Some(task::NETWORKING) => network_step(svc, s).await,
        Some(task::BLOCK_DEVICE_MAPPING) => crate::volumes::bdm_step(svc, s).await,
        _ if s.cleanup => cleanup_step(svc, s).await,
        _ if s.volume_work() => crate::volumes::volume_step(svc, s).await,
        _ if crate::moves::pending(&s) => crate::moves::step(svc, s).await,
        _ => Ok(Step::Wait),
    }
}

/// The server is ready for its host's agent.
pub(crate) fn spawn(n: &mut Server) {
    n.task_state = Some(task::SPAWNING.into());
    n.on_host = true;
    n.power = Power::Running;
    n.generation += 1;
}

/// Fails a build: ERROR with a fault, claims and ports to release.
pub(crate) fn fail_build(
    code: i64,
    message: String,
    details: String,
) -> impl Fn(&mut Server) + Clone {
    move |n: &mut Server| {
        n.vm_state = vm::ERROR.into();
        n.task_state = None;
        n.on_host = false;
        n.cleanup = true;
        n.fault = Some(Fault {
            code,
            message: message.clone(),
            details: details.clone(),
            created: now_micros(),
        });
    }
}

/// Every host as the scheduler sees it (read again when this process changed a service or
/// node, or after [`crate::live::HOST_STATES_TTL`]).
pub async fn host_states(svc: &ComputeService) -> Result<Arc<Vec<HostState>>> {
    if let Some(hs) = svc.live().host_states() {
        return Ok(hs);
    }
    let gen = svc.live().hosts_gen();
    let hs = Arc::new(read_host_states(svc).await?);
    svc.live().keep_host_states(gen, hs.clone());
    Ok(hs)
}

async fn read_host_states(svc: &ComputeService) -> Result<Vec<HostState>> {
    let now = now_micros();
    let services = hosts::services(svc.store()).await?;
    let by_id: HashMap<&str, &Service> = services.iter().map(|s| (s.id.as_str(), s)).collect();
    let nodes = hosts::nodes(svc.store()).await?;
    let aggregates = crate::aggregates::list(svc.store()).await?;
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let Some(s) = by_id.get(n.service_id.as_str()).copied() else {
            continue;
        };
        let mut caps = BTreeMap::new();
        caps.insert("hypervisor_type".into(), n.reg.hypervisor_type.clone());
        caps.insert(
            "hypervisor_version".into(),
            n.reg.hypervisor_version.to_string(),
        );
        caps.insert("vcpus".into(), n.reg.vcpus.to_string());
        caps.insert("memory_mb".into(), n.reg.memory_mb.to_string());
        if let Some(o) = n.reg.cpu_info.as_object() {
            for (k, v) in o {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                caps.insert(format!("cpu_info:{k}"), v);
            }
        }
        out.push(HostState {
            host: n.host.clone(),
            provider: n.id.clone(),
            enabled: !s.disabled,
            up: svc.service_up(s, now),
            availability_zone: s.zone.clone(),
            aggregates: crate::aggregates::for_host(&aggregates, &n.host),
            hypervisor_type: n.reg.hypervisor_type.clone(),
            hypervisor_version: n.reg.hypervisor_version,
            supported_instances: n.reg.supported_instances.clone(),
            capabilities: caps,
        });
    }
    // Sorted by provider: the scheduler finds a candidate's host by binary search.
    out.sort_by(|a, b| a.provider.cmp(&b.provider));
    Ok(out)
}

/// What placement and the scheduler need of a server.
pub(crate) async fn request_spec(svc: &ComputeService, s: &Server) -> Result<RequestSpec> {
    let mut group = None;
    if let Some(gid) = &s.group_id {
        if let Some(g) = db::group_get(svc.store(), gid).await? {
            let policy = match g.policy.as_str() {
                "affinity" => GroupPolicy::Affinity,
                "anti-affinity" => GroupPolicy::AntiAffinity,
                "soft-affinity" => GroupPolicy::SoftAffinity,
                _ => GroupPolicy::SoftAntiAffinity,
            };
            let mut member_hosts = Vec::new();
            for m in g.members.iter().filter(|m| **m != s.id) {
                if let Some(o) = db::get(svc.store(), m).await? {
                    if !o.deleted {
                        if let Some(h) = o.host {
                            member_hosts.push(h);
                        }
                    }
                }
            }
            group = Some(ServerGroup {
                policy,
                max_server_per_host: g.rules.get("max_server_per_host").and_then(|v| v.as_i64()),
                member_hosts,
            });
        }
    }
    let (zone, force_host) = match s.requested_zone.as_deref() {
        Some(z) => match z.split_once(':') {
            Some((z, h)) => (
                (!z.is_empty()).then(|| z.to_string()),
                Some(h.split(':').next().unwrap_or(h).to_string()),
            ),
            None => (Some(z.to_string()), None),
        },
        None => (None, None),
    };
    Ok(RequestSpec {
        project_id: s.project_id.clone(),
        user_id: s.user_id.clone(),
        vcpus: s.flavor.vcpus,
        memory_mb: s.flavor.memory_mb,
        root_gb: s.flavor.root_gb,
        ephemeral_gb: s.flavor.ephemeral_gb,
        swap_mb: s.flavor.swap,
        boot_from_volume: s.boot_from_volume(),
        extra_specs: s.flavor.extra_specs.clone(),
        image_properties: s.image_properties.clone(),
        availability_zone: zone,
        force_host: force_host.filter(|h| !h.is_empty()),
        group,
        ignore_hosts: s.ignore_hosts.clone(),
    })
}

/// Scheduling decisions are taken one at a time (per process), as one Nova scheduler takes
/// them: each decision sees the claims of the ones before (no two builds racing for the same
/// best host and retrying), the placement snapshot is updated in place rather than copied,
/// and two server-group members never both take the last room an (anti-)affinity policy
/// leaves (a member's host is recorded before the next member is scheduled). Replicas still
/// decide concurrently; their claims are checked in the database.
pub(crate) static SCHEDULING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn schedule_step(svc: &ComputeService, s: Server) -> Result<Step> {
    let Some(placement) = svc.placement() else {
        update(
            svc,
            &s.id,
            Some(task::SCHEDULING),
            fail_build(
                500,
                "No valid host was found. ".into(),
                "no placement".into(),
            ),
        )
        .await?;
        return Ok(Step::Next);
    };
    let perr = |e: strata_placement::PlacementError| strata_core::Error::internal(e.detail);
    let serial = SCHEDULING.lock().await;
    let t0 = now_micros();
    let states = host_states(svc).await?;
    // A claim made before a crash is reused (unless its host is one to avoid).
    let existing = placement.consumer_allocations(&s.id).await.map_err(perr)?;
    let mut chosen: Option<(String, String)> = None;
    if let Some(rp) = existing.keys().next() {
        match states.iter().find(|h| &h.provider == rp) {
            Some(h) if !s.ignore_hosts.contains(&h.host) => {
                chosen = Some((h.host.clone(), h.availability_zone.clone()))
            }
            _ => {
                let _ = placement.allocations_delete(&s.id).await;
            }
        }
    }
    if chosen.is_none() {
        let spec = request_spec(svc, &s).await?;
        let weights = Weights::default();
        let decided = placement
            .schedule(&s.id, &spec, &states, &weights)
            .await
            .map_err(perr)?;
        // Group members keep the lock until their host is recorded.
        let _serial = match spec.group {
            Some(_) => Some(serial),
            None => {
                drop(serial);
                None
            }
        };
        match decided {
            Ok((sel, _alternates)) => {
                let zone = states
                    .iter()
                    .find(|h| h.host == sel.host)
                    .map(|h| h.availability_zone.clone())
                    .unwrap_or_default();
                chosen = Some((sel.host, zone));
                // Record the host while still holding the group lock, so the next member
                // sees it.
                let (host, zone) = chosen.clone().unwrap_or_default();
                update_scheduled(svc, &s.id, t0, None, move |n| {
                    n.host = Some(host.clone());
                    n.node = Some(host.clone());
                    n.availability_zone = Some(zone.clone());
                    n.task_state = Some(task::NETWORKING.into());
                    n.attempts += 1;
                })
                .await?;
                return Ok(Step::Next);
            }
            Err(nv) => {
                update_scheduled(
                    svc,
                    &s.id,
                    t0,
                    Some(format!("No valid host was found. {}", nv.0)),
                    fail_build(
                        500,
                        "No valid host was found. ".into(),
                        format!("No valid host was found. {}", nv.0),
                    ),
                )
                .await?;
                return Ok(Step::Next);
            }
        }
    }
    let (host, zone) = chosen.unwrap_or_default();
    update_scheduled(svc, &s.id, t0, None, move |n| {
        n.host = Some(host.clone());
        n.node = Some(host.clone());
        n.availability_zone = Some(zone.clone());
        n.task_state = Some(task::NETWORKING.into());
        n.attempts += 1;
    })
    .await?;
    Ok(Step::Next)
}

fn port_ref(port: &Value, request: usize, created: bool, net_name: &str, mtu: i64) -> PortRef {
    let ips = port["fixed_ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|ip| ip["ip_address"].as_str())
                .map(|ip| {
                    let v = if ip.contains(':') { 6 } else { 4 };
                    (ip.to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    PortRef {
        port_id: port["id"].as_str().unwrap_or_default().into(),
        network_id: port["network_id"].as_str().unwrap_or_default().into(),
        network_name: net_name.into(),
        mac: port["mac_address"].as_str().unwrap_or_default().into(),
        ips,
        created,
        request,
        mtu,
    }
}

async fn network_step(svc: &ComputeService, s: Server) -> Result<Step> {
    let ctx = service_context(&s.project_id);
    let host = s.host.clone().unwrap_or_default();
    let owner = format!(
        "compute:{}",
        s.availability_zone.clone().unwrap_or_else(|| "nova".into())
    );
    let mut ports = s.ports.clone();
    let fail = |msg: String| fail_build(500, "Build of instance failed.".into(), msg);
    // Ports already recorded follow the server to its (new) host.
    for p in &ports {
        let body = json!({"port": {"binding:host_id": host}});
        if let Some(a) = svc
            .neutron(
                ctx.clone(),
                Method::PUT,
                &format!("/ports/{}", p.port_id),
                Some(&body),
            )
            .await
        {
            if !a.ok() && a.status.as_u16() != 404 {
                tracing::warn!(port = %p.port_id, error = %a.message(), "rebinding a port");
            }
        }
    }
    for (i, req) in s.networks.iter().enumerate() {
        if ports.iter().any(|p| p.request == i) {
            continue;
        }
        let Some(_) = svc.0.peers.network else {
            update(
                svc,
                &s.id,
                Some(task::NETWORKING),
                fail("no network service".into()),
            )
            .await?;
            return Ok(Step::Next);
        };
        let answer = if let Some(pid) = &req.port_id {
            let body = json!({"port": {"device_id": s.id, "device_owner": owner,
                "binding:host_id": host}});
            svc.neutron(
                ctx.clone(),
                Method::PUT,
                &format!("/ports/{pid}"),
                Some(&body),
            )
            .await
            .map(|a| (a, false))
        } else {
            let net = req.network_id.clone().unwrap_or_default();
            // A port created before a crash is adopted.
            let taken: HashSet<&str> = ports.iter().map(|p| p.port_id.as_str()).collect();
            let found = svc
                .neutron(
                    ctx.clone(),
                    Method::GET,
                    &format!("/ports?device_id={}&network_id={net}", s.id),
                    None,
                )
                .await;
            let adopt = found.as_ref().and_then(|a| {
                a.body["ports"].as_array().and_then(|l| {
                    l.iter()
                        .find(|p| !taken.contains(p["id"].as_str().unwrap_or_default()))
                        .cloned()
                })
            });
            match adopt {
                Some(p) => Some((
                    Answer {
                        status: http::StatusCode::OK,
                        body: json!({ "port": p }),
                    },
                    true,
                )),
                None => {
                    let mut port = json!({"network_id": net, "project_id": s.project_id,
                        "device_id": s.id, "device_owner": owner, "binding:host_id": host});
                    if !s.security_groups.is_empty() {
                        port["security_groups"] = json!(s.security_groups);
                    }
                    if let Some(ip) = &req.fixed_ip {
                        port["fixed_ips"] = json!([{ "ip_address": ip }]);
                    }
                    svc.neutron(
                        ctx.clone(),
                        Method::POST,
                        "/ports",
                        Some(&json!({ "port": port })),
                    )
                    .await
                    .map(|a| (a, true))
                }
            }
        };
        let Some((a, created)) = answer else {
            update(
                svc,
                &s.id,
                Some(task::NETWORKING),
                fail("no network service".into()),
            )
            .await?;
            return Ok(Step::Next);
        };
        if !a.ok() {
            let msg = format!(
                "Port for network request {i} could not be set up: {}",
                a.message()
            );
            update(svc, &s.id, Some(task::NETWORKING), fail(msg)).await?;
            return Ok(Step::Next);
        }
        let port = &a.body["port"];
        let net_id = port["network_id"].as_str().unwrap_or_default().to_string();
        let net = svc
            .neutron(
                ctx.clone(),
                Method::GET,
                &format!("/networks/{net_id}"),
                None,
            )
            .await
            .map(|a| a.body["network"].clone())
            .unwrap_or(Value::Null);
        ports.push(port_ref(
            port,
            i,
            created,
            net["name"].as_str().unwrap_or(&net_id),
            net["mtu"].as_i64().unwrap_or(1500),
        ));
    }
    update(svc, &s.id, Some(task::NETWORKING), move |n| {
        n.ports = ports.clone();
        n.task_state = Some(task::BLOCK_DEVICE_MAPPING.into());
    })
    .await?;
    Ok(Step::Next)
}

/// Releases a server's ports (deleting those created for it, unbinding the user's) and its
/// placement claim. Idempotent.
async fn release(svc: &ComputeService, s: &Server) -> Result<()> {
    let ctx = service_context(&s.project_id);
    let mut seen: HashSet<String> = HashSet::new();
    for p in &s.ports {
        seen.insert(p.port_id.clone());
        if p.created {
            let _ = svc
                .neutron(
                    ctx.clone(),
                    Method::DELETE,
                    &format!("/ports/{}", p.port_id),
                    None,
                )
                .await;
        } else {
            let body = json!({"port": {"device_id": "", "device_owner": "",
                "binding:host_id": ""}});
            let _ = svc
                .neutron(
                    ctx.clone(),
                    Method::PUT,
                    &format!("/ports/{}", p.port_id),
                    Some(&body),
                )
                .await;
        }
    }
    // Ports created for the server that a crash kept from being recorded.
    if let Some(a) = svc
        .neutron(
            ctx.clone(),
            Method::GET,
            &format!("/ports?device_id={}", s.id),
            None,
        )
        .await
    {
        for p in a.body["ports"].as_array().cloned().unwrap_or_default() {
            let id = p["id"].as_str().unwrap_or_default().to_string();
            let ours = p["device_owner"]
                .as_str()
                .is_some_and(|o| o.starts_with("compute:"));
            if ours
                && !seen.contains(&id)
                && !s.networks.iter().any(|n| n.port_id.as_ref() == Some(&id))
            {
                let _ = svc
                    .neutron(ctx.clone(), Method::DELETE, &format!("/ports/{id}"), None)
                    .await;
            }
        }
    }
    if let Some(p) = svc.placement() {
        // The instance's claim, and the source's allocation a move in progress holds under
        // the migration's uuid.
        let consumers =
            std::iter::once(s.id.as_str()).chain(s.active_move().map(|m| m.uuid.as_str()));
        for c in consumers {
            match p.allocations_delete(c).await {
                Ok(()) => {}
                Err(e) if e.status == http::StatusCode::NOT_FOUND => {}
                Err(e) => return Err(strata_core::Error::internal(e.detail)),
            }
        }
    }
    Ok(())
}

pub(crate) async fn host_is_up(svc: &ComputeService, host: &str) -> Result<bool> {
    let now = now_micros();
    Ok(hosts::services(svc.store())
        .await?
        .iter()
        .any(|s| s.host == host && svc.service_up(s, now)))
}

async fn delete_step(svc: &ComputeService, s: Server) -> Result<Step> {
    // The guest goes first when its host can remove it; a host that is down cannot, and the
    // server is deleted without it (the agent removes the orphan when it returns).
    if let Some(h) = s.host.as_deref() {
        if s.on_host && !s.guest_gone && host_is_up(svc, h).await? {
            return Ok(Step::Wait);
        }
    }
    // Volumes are detached, those to delete with the server deleted (once they can be).
    if !crate::volumes::release(svc, &s, false).await? {
        return Ok(Step::Wait);
    }
    release(svc, &s).await?;
    // A snapshot still in progress: its image goes too unless its upload made it active, as
    // Nova's compute manager does when an instance disappears during a snapshot.
    if let Some(job) = &s.snapshot {
        crate::snapshot::drop_image(svc, job).await;
    }
    // The image of a shelve goes with the server, as Nova deletes it.
    if let Some(sh) = &s.shelve {
        if let Some(img) = &sh.image_id {
            crate::moves::delete_image(svc, &sh.image_owner, img).await;
        }
    }
    let id = s.id.clone();
    svc.store()
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let Some(old) = db::get_tx(tx, &id).await? else {
                    return Ok(());
                };
                if old.deleted {
                    return Ok(());
                }
                let mut n = old.clone();
                if n.snapshot.take().is_some() {
                    db::action_finish_event(
                        tx,
                        &id,
                        crate::snapshot::EVENT,
                        Some("Instance disappeared during snapshot"),
                    )
                    .await?;
                }
                let now = now_micros();
                n.deleted = true;
                n.vm_state = vm::DELETED.into();
                n.task_state = None;
                n.on_host = false;
                n.cleanup = false;
                n.deleted_at = Some(now);
                n.terminated_at = Some(now);
                n.power_state = power::NOSTATE;
                // A move in progress ends with the server (a resized one as confirmed, as
                // Nova confirms it on delete).
                if let Some(m) = n.active_move_mut() {
                    m.status = if m.status == crate::server::migration::FINISHED {
                        crate::server::migration::CONFIRMED
                    } else {
                        crate::server::migration::ERROR
                    }
                    .into();
                    m.other = None;
                }
                db::group_remove_server(tx, &id).await?;
                db::action_finish(tx, &id, None).await?;
                db::save(tx, &old, &mut n).await
            })
        })
        .await?;
    Ok(Step::Next)
}

async fn cleanup_step(svc: &ComputeService, s: Server) -> Result<Step> {
    // A failed build's volumes are detached and those made for it deleted (once they can be).
    if !crate::volumes::release(svc, &s, true).await? {
        return Ok(Step::Wait);
    }
    release(svc, &s).await?;
    let id = s.id.clone();
    svc.store()
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let Some(old) = db::get_tx(tx, &id).await? else {
                    return Ok(());
                };
                if !old.cleanup || old.deleted {
                    return Ok(());
                }
                let mut n = old.clone();
                n.cleanup = false;
                n.ports.clear();
                n.bdms.clear();
                db::save(tx, &old, &mut n).await
            })
        })
        .await?;
    Ok(Step::Next)
}

/// Why a report was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ReportError {
    NotFound,
}

impl ComputeService {
    /// An agent's report on one instance: finishes the task it completes, reschedules or fails
    /// a build that failed, records the power state. Reports from a host the server is not on,
    /// or about an older generation than the server's, change nothing.
    pub async fn instance_report(
        &self,
        r: &InstanceReport,
    ) -> Result<std::result::Result<(), ReportError>> {
        let r = r.clone();
        let max_attempts = self.config().max_attempts;
        self.store()
            .write(move |tx| {
                let r = r.clone();
                Box::pin(async move {
                    let Some(old) = db::get_tx(tx, &r.uuid).await? else {
                        return Ok(Err(ReportError::NotFound));
                    };
                    if old.deleted {
                        return Ok(Ok(()));
                    }
                    // A moving or shelving server's reports (from either host of a move).
                    if let Some(mut n) = crate::moves::on_report(tx, &old, &r).await? {
                        if n != old {
                            db::save(tx, &old, &mut n).await?;
                        }
                        return Ok(Ok(()));
                    }
                    if old.host.as_deref() != Some(r.host.as_str()) {
                        return Ok(Ok(()));
                    }
                    let mut n = old.clone();
                    if r.deleted {
                        if !old.on_host {
                            n.guest_gone = true;
                        }
                    } else {
                        if let Some(c) = &r.console {
                            n.console = c.clone();
                        }
                        if r.generation >= old.generation && old.on_host {
                            apply(&mut n, &r, max_attempts);
                            crate::volumes::apply_report(&mut n, &r);
                        }
                    }
                    if n != old {
                        if n.task_state.is_none() && old.task_state.is_some() {
                            let err = (n.vm_state == vm::ERROR)
                                .then(|| n.fault.as_ref().map(|f| f.message.clone()))
                                .flatten()
                                .or_else(|| r.fault.as_ref().map(|f| f.message.clone()));
                            db::action_finish(tx, &n.id, err.as_deref()).await?;
                        }
                        db::save(tx, &old, &mut n).await?;
                    }
                    Ok(Ok(()))
                })
            })
            .await
    }
}

/// The effect of a report on the server (`n`, still in the state the report is about).
fn apply(n: &mut Server, r: &InstanceReport, max_attempts: i64) {
    let observed = r.power_state.code();
    if let Some(f) = &r.fault {
        match n.task_state.as_deref() {
            Some(task::SPAWNING) if f.retryable && n.attempts < max_attempts => {
                // Reschedule: another host, the old claim dropped by the scheduling step.
                if let Some(h) = n.host.take() {
                    n.ignore_hosts.push(h);
                }
                n.node = None;
                n.on_host = false;
                n.task_state = Some(task::SCHEDULING.into());
                n.generation += 1;
            }
            Some(task::SPAWNING) => {
                fail_build(
                    500,
                    f.message.clone(),
                    format!("{}\n{}", f.message, f.details),
                )(n);
                n.generation += 1;
                n.power_state = observed;
            }
            // A snapshot is finished by its own calls (its upload or failure), not by reports.
            Some(t) if task::is_snapshot(Some(t)) => n.power_state = observed,
            Some(_) => {
                n.task_state = None;
                n.power_state = observed;
                n.fault = Some(Fault {
                    code: 500,
                    message: f.message.clone(),
                    details: f.details.clone(),
                    created: now_micros(),
                });
            }
            None => n.power_state = observed,
        }
        return;
    }
    n.power_state = observed;
    match n.task_state.clone() {
        Some(t) => {
            let reboot_done = !matches!(t.as_str(), task::REBOOTING | task::REBOOTING_HARD)
                || r.reboot_seq >= n.reboot_seq;
            if let Some(state) = crate::server::finish(&t, observed).filter(|_| reboot_done) {
                if t == task::SPAWNING {
                    n.launched_at = Some(now_micros());
                }
                n.vm_state = state.into();
                n.task_state = None;
                n.progress = if state == vm::ACTIVE { 100 } else { n.progress };
            }
        }
        None => {
            // The guest stopped by itself (shut down from inside, crashed): Nova's power
            // sync records it as stopped and leaves it off.
            if n.vm_state == vm::ACTIVE && matches!(observed, power::SHUTDOWN | power::CRASHED) {
                n.vm_state = vm::STOPPED.into();
                n.power = Power::Shutdown;
                n.generation += 1;
            }
        }
    }
}
