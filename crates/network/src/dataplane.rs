//! The data plane: what turns the recorded model into packets. A [`DataPlane`] driver plugs
//! ports on a host, applies their security groups and wires routers; Linux bridge and OVN
//! drivers implement it in a later issue, [`NoopDataPlane`] does nothing but remember what it
//! was asked (the all-in-one's default and the tests' double).
//!
//! Two reconcilers call the driver, each from the change log (`network.*` kinds) and never
//! inside a write:
//! - [`HostAgent`] runs for one host (in the node agent; `strata up` runs one for its own
//!   host): it plugs every port bound to its host (`binding:host_id`), applies the rules of the
//!   port's security groups with remote groups resolved to member addresses, unplugs ports
//!   that left, and reports each plugged port to the control plane
//!   ([`NetworkService::report_port`]), which makes the port ACTIVE.
//! - [`RouterAgent`] runs once in the control plane and wires every router: gateway, SNAT,
//!   interfaces, extra routes and floating IPs.
//!
//! Both are level-triggered: a pass compares what should be with a fingerprint of what the
//! driver last applied, so a missed wake-up or a restart costs one full pass, never a wrong
//! state.

use crate::api::{floatingips, networks, ports, routers, security_groups};
use crate::db::{self, Resource};
use crate::NetworkService;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_core::Result;
use tokio::sync::watch;

/// The future a [`DataPlane`] call returns.
pub type PlaneFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The L2 segment a port's network is realised on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
    pub mtu: i64,
}

/// A port as the data plane plugs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortPlug {
    pub id: String,
    pub network_id: String,
    pub segment: Segment,
    pub mac_address: String,
    /// `(subnet_id, ip_address)`.
    pub fixed_ips: Vec<(String, String)>,
    pub admin_state_up: bool,
    pub port_security_enabled: bool,
    /// `(ip_address or CIDR, mac_address)` the port may also send from.
    pub allowed_address_pairs: Vec<(String, String)>,
    pub security_groups: Vec<String>,
    pub vnic_type: String,
    pub device_owner: String,
    pub device_id: String,
}

/// One rule of a port's security groups, remote groups resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// A protocol name or number; `None` for any.
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    /// The peer: a CIDR, or the addresses of the remote group's ports, or anyone.
    pub remote: Remote,
}

/// Who a rule lets in (ingress) or out to (egress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Remote {
    Any,
    Prefix(String),
    /// The fixed IPs of the remote group's ports at the time of the pass.
    Addresses(Vec<String>),
}

/// What plugging a port yields: Neutron's `binding:vif_type` and `binding:vif_details`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub vif_type: String,
    pub vif_details: Value,
}

/// A router as the data plane wires it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouterWiring {
    pub id: String,
    pub admin_state_up: bool,
    pub gateway: Option<Gateway>,
    pub interfaces: Vec<Interface>,
    /// Extra routes `(destination, nexthop)`.
    pub routes: Vec<(String, String)>,
    /// `(floating_ip_address, fixed_ip_address, port_id)` of associated floating IPs.
    pub floating_ips: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gateway {
    pub network_id: String,
    pub port_id: String,
    pub enable_snat: bool,
    /// `(subnet_id, ip_address)`.
    pub fixed_ips: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub port_id: String,
    pub network_id: String,
    pub mac_address: String,
    /// `(subnet_id, ip_address)`.
    pub fixed_ips: Vec<(String, String)>,
}

/// A data-plane driver.
pub trait DataPlane: Send + Sync {
    fn name(&self) -> &str;
    /// Plugs (or re-plugs after a change) `port` on `host`.
    fn bind_port<'a>(&'a self, host: &'a str, port: &'a PortPlug) -> PlaneFuture<'a, Bound>;
    /// Unplugs a port that `host` had (deleted, unbound or moved away).
    fn unbind_port<'a>(&'a self, host: &'a str, port_id: &'a str) -> PlaneFuture<'a, ()>;
    /// Replaces the port's filter with `rules` (all of its groups'). With port security off
    /// `rules` is empty and nothing is filtered.
    fn apply_security_groups<'a>(
        &'a self,
        host: &'a str,
        port_id: &'a str,
        rules: &'a [Rule],
    ) -> PlaneFuture<'a, ()>;
    /// Wires (or rewires after a change) a router.
    fn wire_router<'a>(&'a self, router: &'a RouterWiring) -> PlaneFuture<'a, ()>;
    /// Tears a deleted router down.
    fn unwire_router<'a>(&'a self, router_id: &'a str) -> PlaneFuture<'a, ()>;
}

/// One call a [`NoopDataPlane`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Bind {
        host: String,
        port: PortPlug,
    },
    Unbind {
        host: String,
        port_id: String,
    },
    Filter {
        host: String,
        port_id: String,
        rules: Vec<Rule>,
    },
    Wire(RouterWiring),
    Unwire(String),
}

/// The driver that moves no packets: it binds every port as `ovs` and remembers each call.
#[derive(Default)]
pub struct NoopDataPlane {
    calls: Mutex<Vec<Call>>,
}

impl NoopDataPlane {
    pub fn new() -> Self {
        Self::default()
    }
    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn push(&self, c: Call) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: an all-in-one runs it for its whole life.
        if calls.len() >= 10_000 {
            calls.drain(..5_000);
        }
        calls.push(c);
    }
}

impl DataPlane for NoopDataPlane {
    fn name(&self) -> &str {
        "noop"
    }
    fn bind_port<'a>(&'a self, host: &'a str, port: &'a PortPlug) -> PlaneFuture<'a, Bound> {
        self.push(Call::Bind {
            host: host.into(),
            port: port.clone(),
        });
        let filter = port.port_security_enabled;
        Box::pin(async move {
            Ok(Bound {
                vif_type: "ovs".into(),
                vif_details: json!({"port_filter": filter, "connectivity": "l2"}),
            })
        })
    }
    fn unbind_port<'a>(&'a self, host: &'a str, port_id: &'a str) -> PlaneFuture<'a, ()> {
        self.push(Call::Unbind {
            host: host.into(),
            port_id: port_id.into(),
        });
        Box::pin(async { Ok(()) })
    }
    fn apply_security_groups<'a>(
        &'a self,
        host: &'a str,
        port_id: &'a str,
        rules: &'a [Rule],
    ) -> PlaneFuture<'a, ()> {
        self.push(Call::Filter {
            host: host.into(),
            port_id: port_id.into(),
            rules: rules.to_vec(),
        });
        Box::pin(async { Ok(()) })
    }
    fn wire_router<'a>(&'a self, router: &'a RouterWiring) -> PlaneFuture<'a, ()> {
        self.push(Call::Wire(router.clone()));
        Box::pin(async { Ok(()) })
    }
    fn unwire_router<'a>(&'a self, router_id: &'a str) -> PlaneFuture<'a, ()> {
        self.push(Call::Unwire(router_id.into()));
        Box::pin(async { Ok(()) })
    }
}

// ------------------------------------------------------------------ reading the model

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn fixed_ips(doc: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    doc.get("fixed_ips")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["subnet_id"].as_str().unwrap_or("").to_string(),
                        f["ip_address"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn segment(net: Option<&Resource>) -> Segment {
    let Some(n) = net else {
        return Segment {
            network_type: "local".into(),
            physical_network: None,
            segmentation_id: None,
            mtu: 1500,
        };
    };
    Segment {
        network_type: n
            .str("provider:network_type")
            .unwrap_or("local")
            .to_string(),
        physical_network: n.str("provider:physical_network").map(str::to_string),
        segmentation_id: n
            .doc
            .get("provider:segmentation_id")
            .and_then(Value::as_i64),
        mtu: n.doc.get("mtu").and_then(Value::as_i64).unwrap_or(1500),
    }
}

fn plug_of(port: &Resource, net: Option<&Resource>) -> PortPlug {
    let d = &port.doc;
    PortPlug {
        id: port.id.clone(),
        network_id: port.str("network_id").unwrap_or("").to_string(),
        segment: segment(net),
        mac_address: port.str("mac_address").unwrap_or("").to_string(),
        fixed_ips: fixed_ips(d),
        admin_state_up: d
            .get("admin_state_up")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        port_security_enabled: d
            .get("port_security_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        allowed_address_pairs: d
            .get("allowed_address_pairs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p["ip_address"].as_str().unwrap_or("").to_string(),
                            p["mac_address"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        security_groups: strs(d.get("security_groups").unwrap_or(&Value::Null)),
        vnic_type: port
            .str("binding:vnic_type")
            .unwrap_or("normal")
            .to_string(),
        device_owner: port.str("device_owner").unwrap_or("").to_string(),
        device_id: port.str("device_id").unwrap_or("").to_string(),
    }
}

/// The rules of `groups`, with remote groups resolved to the fixed IPs of their members
/// (`members`: group id → addresses).
fn rules_of(
    groups: &[String],
    all_rules: &[Resource],
    members: &HashMap<String, Vec<String>>,
) -> Vec<Rule> {
    let mut out: Vec<Rule> = all_rules
        .iter()
        .filter(|r| {
            r.str("security_group_id")
                .is_some_and(|g| groups.iter().any(|x| x == g))
        })
        .map(|r| {
            let remote = match (r.str("remote_ip_prefix"), r.str("remote_group_id")) {
                (Some(p), _) => Remote::Prefix(p.to_string()),
                (None, Some(g)) => {
                    let mut a = members.get(g).cloned().unwrap_or_default();
                    a.sort();
                    Remote::Addresses(a)
                }
                _ => Remote::Any,
            };
            let int = |k: &str| r.doc.get(k).and_then(Value::as_i64);
            Rule {
                security_group_id: r.str("security_group_id").unwrap_or("").to_string(),
                direction: r.str("direction").unwrap_or("ingress").to_string(),
                ethertype: r.str("ethertype").unwrap_or("IPv4").to_string(),
                protocol: r.str("protocol").map(str::to_string).or_else(|| {
                    r.doc
                        .get("protocol")
                        .and_then(Value::as_i64)
                        .map(|n| n.to_string())
                }),
                port_range_min: int("port_range_min"),
                port_range_max: int("port_range_max"),
                remote,
            }
        })
        .collect();
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out
}

/// Group id → fixed IPs of the ports in it.
fn group_members(all_ports: &[Resource]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for p in all_ports {
        let ips: Vec<String> = fixed_ips(&p.doc).into_iter().map(|(_, ip)| ip).collect();
        for g in strs(p.doc.get("security_groups").unwrap_or(&Value::Null)) {
            m.entry(g).or_default().extend(ips.iter().cloned());
        }
    }
    m
}

fn fingerprint<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Waits for the next change after `after` (or `idle`), returning the newest revision seen
/// and the changes. Errors are logged and waited out, so a reconciler outlives a database
/// hiccup.
async fn next_changes(
    svc: &NetworkService,
    after: i64,
    idle: Duration,
) -> (i64, Vec<strata_store::Change>) {
    match svc.store().watch(after, idle).await {
        Ok(changes) => {
            let newest = changes.iter().map(|c| c.revision).max().unwrap_or(after);
            (newest, changes)
        }
        Err(e) => {
            tracing::warn!(error = %e, "network data plane: reading the change log");
            tokio::time::sleep(Duration::from_secs(1)).await;
            (after, Vec::new())
        }
    }
}

// ------------------------------------------------------------------ the host agent

/// Passes of a host agent start at least this far apart.
const MIN_SYNC_GAP: Duration = Duration::from_millis(200);

/// Plugs the ports bound to one host through a [`DataPlane`] and reports them.
pub struct HostAgent {
    svc: NetworkService,
    host: String,
    plane: Arc<dyn DataPlane>,
    /// Port id → fingerprint of what was last plugged and filtered.
    applied: tokio::sync::Mutex<HashMap<String, String>>,
    /// The security groups of the host's ports at the last pass: a change to another port in
    /// one of them changes those ports' filters (remote groups).
    groups: Mutex<HashSet<String>>,
}

/// What one [`HostAgent::sync`] pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub plugged: usize,
    pub unplugged: usize,
    pub unchanged: usize,
}

impl HostAgent {
    pub fn new(svc: NetworkService, host: impl Into<String>, plane: Arc<dyn DataPlane>) -> Self {
        HostAgent {
            svc,
            host: host.into(),
            plane,
            applied: Default::default(),
            groups: Default::default(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// One level-triggered pass over every port: plugs and filters the host's ports whose
    /// desired state changed (or that are not yet ACTIVE), unplugs those that left, and
    /// reports each plugged port.
    pub async fn sync(&self) -> Result<SyncReport> {
        let store = self.svc.store();
        let all_ports = db::list(store, ports::KIND, None).await?;
        let mine: Vec<&Resource> = all_ports
            .iter()
            .filter(|p| p.str("binding:host_id") == Some(self.host.as_str()))
            .filter(|p| {
                !p.str("device_owner")
                    .unwrap_or("")
                    .starts_with("network:router_")
            })
            .collect();
        let nets: HashMap<String, Resource> = db::list(store, networks::KIND, None)
            .await?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let all_rules = db::list(store, security_groups::RULE, None).await?;
        let members = group_members(&all_ports);
        let mut report = SyncReport::default();
        let mut applied = self.applied.lock().await;
        let mut seen = HashSet::new();
        *self.groups.lock().unwrap_or_else(|p| p.into_inner()) = mine
            .iter()
            .flat_map(|p| strs(p.doc.get("security_groups").unwrap_or(&Value::Null)))
            .collect();
        for p in mine {
            seen.insert(p.id.clone());
            let plug = plug_of(p, p.str("network_id").and_then(|n| nets.get(n)));
            let rules = if plug.port_security_enabled {
                rules_of(&plug.security_groups, &all_rules, &members)
            } else {
                Vec::new()
            };
            let print = fingerprint(&(&plug, &rules));
            let want_status = if plug.admin_state_up {
                "ACTIVE"
            } else {
                "DOWN"
            };
            if applied.get(&p.id) == Some(&print) && p.str("status") == Some(want_status) {
                report.unchanged += 1;
                continue;
            }
            let bound = self.plane.bind_port(&self.host, &plug).await?;
            self.plane
                .apply_security_groups(&self.host, &p.id, &rules)
                .await?;
            self.svc
                .report_port(&p.id, &self.host, plug.admin_state_up, &bound)
                .await?;
            applied.insert(p.id.clone(), print);
            report.plugged += 1;
        }
        let gone: Vec<String> = applied
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.plane.unbind_port(&self.host, &id).await?;
            applied.remove(&id);
            report.unplugged += 1;
        }
        Ok(report)
    }

    /// Whether `changes` may change what this host should have: a network or security group
    /// changed, or a port that is (or was) plugged here or shares a security group with the
    /// host's ports (its addresses are in their remote-group rules).
    async fn concerns(&self, changes: &[strata_store::Change]) -> bool {
        let groups = self
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for c in changes {
            match c.kind.as_str() {
                "network.network" | "network.security_group" | "network.security_group_rule" => {
                    return true
                }
                "network.port" => {
                    if self.applied.lock().await.contains_key(&c.id) {
                        return true;
                    }
                    match db::get(self.svc.store(), ports::KIND, &c.id).await {
                        Ok(Some(p)) => {
                            let in_groups =
                                strs(p.doc.get("security_groups").unwrap_or(&Value::Null))
                                    .iter()
                                    .any(|g| groups.contains(g));
                            if p.str("binding:host_id") == Some(self.host.as_str()) || in_groups {
                                return true;
                            }
                        }
                        // Deleted: its addresses may leave one of the host's groups.
                        Ok(None) => {
                            if !groups.is_empty() {
                                return true;
                            }
                        }
                        Err(_) => return true,
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// Syncs at start and again after every change that concerns the host, until `stop`
    /// turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut after = self.svc.store().current_revision().await.unwrap_or(0);
        let mut dirty = true;
        let mut last_sync: Option<tokio::time::Instant> = None;
        loop {
            if dirty {
                // A burst of port changes (hundreds of boots a second) is taken in a few
                // passes rather than one pass per change: a pass reads every port.
                if let Some(at) = last_sync {
                    let gap =
                        (at + MIN_SYNC_GAP).saturating_duration_since(tokio::time::Instant::now());
                    if !gap.is_zero() {
                        tokio::select! {
                            _ = stop.changed() => return,
                            _ = tokio::time::sleep(gap) => {}
                        }
                    }
                }
                last_sync = Some(tokio::time::Instant::now());
                if let Err(e) = self.sync().await {
                    tracing::warn!(error = %e, host = %self.host, "network host agent: sync");
                }
            }
            tokio::select! {
                _ = stop.changed() => return,
                (rev, changes) = next_changes(&self.svc, after, Duration::from_secs(30)) => {
                    after = rev;
                    // A quiet period re-syncs too: the pass is level-triggered.
                    dirty = changes.is_empty() || self.concerns(&changes).await;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

// ------------------------------------------------------------------ the router agent

/// Wires every router through a [`DataPlane`].
pub struct RouterAgent {
    svc: NetworkService,
    plane: Arc<dyn DataPlane>,
    applied: tokio::sync::Mutex<HashMap<String, String>>,
}

impl RouterAgent {
    pub fn new(svc: NetworkService, plane: Arc<dyn DataPlane>) -> Self {
        RouterAgent {
            svc,
            plane,
            applied: Default::default(),
        }
    }

    /// The wiring of every router as the model says.
    pub async fn desired(&self) -> Result<Vec<RouterWiring>> {
        let store = self.svc.store();
        let routers_ = db::list(store, routers::KIND, None).await?;
        let ids: Vec<&str> = routers_.iter().map(|r| r.id.as_str()).collect();
        let router_ports: Vec<Resource> = if ids.is_empty() {
            Vec::new()
        } else {
            db::scan(
                store,
                &db::Scan {
                    kind: ports::KIND,
                    device_ids: &ids,
                    ..Default::default()
                },
            )
            .await?
            .into_iter()
            .filter(|p| {
                p.str("device_owner")
                    .unwrap_or("")
                    .starts_with("network:router_")
            })
            .collect()
        };
        let fips = db::list(store, floatingips::KIND, None).await?;
        let mut out = Vec::new();
        for r in routers_ {
            let mine = || {
                router_ports
                    .iter()
                    .filter(|p| p.str("device_id") == Some(r.id.as_str()))
            };
            let gw_port = mine().find(|p| p.str("device_owner") == Some("network:router_gateway"));
            let info = r.doc.get("external_gateway_info");
            let gateway = match (info.and_then(|i| i["network_id"].as_str()), gw_port) {
                (Some(net), Some(port)) => Some(Gateway {
                    network_id: net.to_string(),
                    port_id: port.id.clone(),
                    enable_snat: info
                        .and_then(|i| i["enable_snat"].as_bool())
                        .unwrap_or(true),
                    fixed_ips: fixed_ips(&port.doc),
                }),
                _ => None,
            };
            let mut interfaces: Vec<Interface> = mine()
                .filter(|p| p.str("device_owner") != Some("network:router_gateway"))
                .map(|p| Interface {
                    port_id: p.id.clone(),
                    network_id: p.str("network_id").unwrap_or("").to_string(),
                    mac_address: p.str("mac_address").unwrap_or("").to_string(),
                    fixed_ips: fixed_ips(&p.doc),
                })
                .collect();
            interfaces.sort_by(|a, b| a.port_id.cmp(&b.port_id));
            let mut routes: Vec<(String, String)> = r
                .doc
                .get("routes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            (
                                x["destination"].as_str().unwrap_or("").to_string(),
                                x["nexthop"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            routes.sort();
            let mut floating_ips: Vec<(String, String, String)> = fips
                .iter()
                .filter(|f| f.str("router_id") == Some(r.id.as_str()))
                .filter_map(|f| {
                    Some((
                        f.str("floating_ip_address")?.to_string(),
                        f.str("fixed_ip_address")?.to_string(),
                        f.str("port_id")?.to_string(),
                    ))
                })
                .collect();
            floating_ips.sort();
            out.push(RouterWiring {
                id: r.id.clone(),
                admin_state_up: r
                    .doc
                    .get("admin_state_up")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                gateway,
                interfaces,
                routes,
                floating_ips,
            });
        }
        Ok(out)
    }

    /// One pass: wires routers whose wiring changed, tears down deleted ones. Returns how many
    /// routers were (re)wired and unwired.
    pub async fn sync(&self) -> Result<(usize, usize)> {
        let desired = self.desired().await?;
        let mut applied = self.applied.lock().await;
        let mut wired = 0;
        let mut seen = HashSet::new();
        for w in &desired {
            seen.insert(w.id.clone());
            let print = fingerprint(w);
            if applied.get(&w.id) == Some(&print) {
                continue;
            }
            self.plane.wire_router(w).await?;
            applied.insert(w.id.clone(), print);
            wired += 1;
        }
        let gone: Vec<String> = applied
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in &gone {
            self.plane.unwire_router(id).await?;
            applied.remove(id);
        }
        Ok((wired, gone.len()))
    }

    /// Whether `changes` touch a router, a floating IP or a router's port.
    async fn concerns(&self, changes: &[strata_store::Change]) -> bool {
        for c in changes {
            match c.kind.as_str() {
                "network.router" | "network.floatingip" => return true,
                "network.port" => match db::get(self.svc.store(), ports::KIND, &c.id).await {
                    Ok(Some(p)) => {
                        if p.str("device_owner")
                            .unwrap_or("")
                            .starts_with("network:router_")
                        {
                            return true;
                        }
                    }
                    // Deleted: was it wired into a router?
                    Ok(None) => {
                        if self
                            .applied
                            .lock()
                            .await
                            .values()
                            .any(|f| f.contains(&c.id))
                        {
                            return true;
                        }
                    }
                    Err(_) => return true,
                },
                _ => {}
            }
        }
        false
    }

    /// Syncs at start and after every change of routers, their ports or floating IPs.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut after = self.svc.store().current_revision().await.unwrap_or(0);
        let mut dirty = true;
        loop {
            if dirty {
                if let Err(e) = self.sync().await {
                    tracing::warn!(error = %e, "network router agent: sync");
                }
            }
            tokio::select! {
                _ = stop.changed() => return,
                (rev, changes) = next_changes(&self.svc, after, Duration::from_secs(30)) => {
                    after = rev;
                    dirty = changes.is_empty() || self.concerns(&changes).await;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
