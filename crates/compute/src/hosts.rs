//! Compute hosts: the `nova-compute` service of each host and its node, written when a node
//! agent registers ([`ComputeService::register_host`]) and kept alive by its heartbeats. A
//! registration also makes the host's root resource provider in placement (the node's id is
//! its UUID) with `VCPU`, `MEMORY_MB` and `DISK_GB` inventories and the host's traits.
//! A service is up while its last heartbeat is younger than
//! [`SERVICE_DOWN_TIME_US`] and it is not forced down, as Nova's service group says.
//! Changes are recorded as `compute.service` and `compute.node`.

use crate::ComputeService;
use std::collections::BTreeMap;
use strata_agent_api::{HostRegistration, Registered};
use strata_core::{Error, Result};
use strata_store::{from_sqlx, get_opt_i64, get_opt_str, sqlx, AnyRow, Op, Row, Tx};

pub const SERVICE: &str = "compute.service";
pub const NODE: &str = "compute.node";
/// Nova's `service_down_time` (60 s).
pub const SERVICE_DOWN_TIME_US: i64 = 60_000_000;
/// How often agents are asked to heartbeat (Nova's `report_interval`).
pub const HEARTBEAT_INTERVAL_S: u64 = 10;
/// Nova's initial allocation ratios (`initial_*_allocation_ratio`) and the memory it reserves
/// for the host (`reserved_host_memory_mb`).
pub const CPU_ALLOCATION_RATIO: f64 = 4.0;
pub const RAM_ALLOCATION_RATIO: f64 = 1.0;
pub const DISK_ALLOCATION_RATIO: f64 = 1.0;
pub const RESERVED_HOST_MEMORY_MB: i64 = 512;

/// A `nova-compute` service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: String,
    pub host: String,
    pub binary: String,
    pub zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub last_seen_up: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Service {
    /// Up as Nova's database service group decides: a heartbeat within the down time and not
    /// forced down.
    pub fn is_up(&self, now: i64) -> bool {
        self.is_up_within(now, SERVICE_DOWN_TIME_US)
    }

    /// Up when the last heartbeat is at most `down_after_us` old and not forced down.
    pub fn is_up_within(&self, now: i64, down_after_us: i64) -> bool {
        !self.forced_down && self.last_seen_up.is_some_and(|t| now - t <= down_after_us)
    }
}

/// A compute node: what its agent registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Also the root resource provider's UUID.
    pub id: String,
    pub service_id: String,
    pub host: String,
    pub reg: HostRegistration,
    pub created_at: i64,
    pub updated_at: i64,
}

fn service_row(r: &AnyRow) -> Result<Service> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(from_sqlx);
    let i = |c: &str| r.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok(Service {
        id: s("id")?,
        host: s("host")?,
        binary: s("binary_name")?,
        zone: s("zone")?,
        disabled: i("disabled")? != 0,
        disabled_reason: get_opt_str(r, "disabled_reason"),
        forced_down: i("forced_down")? != 0,
        last_seen_up: get_opt_i64(r, "last_seen_up"),
        created_at: i("created_at")?,
        updated_at: i("updated_at")?,
    })
}

fn node_row(r: &AnyRow) -> Result<Node> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(from_sqlx);
    let i = |c: &str| r.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok(Node {
        id: s("id")?,
        service_id: s("service_id")?,
        host: s("host")?,
        reg: serde_json::from_str(&s("doc")?)
            .map_err(|e| Error::internal(format!("compute node document: {e}")))?,
        created_at: i("created_at")?,
        updated_at: i("updated_at")?,
    })
}

/// Every compute service.
pub async fn services(store: &strata_store::Store) -> Result<Vec<Service>> {
    let rows = sqlx::query("SELECT * FROM compute_service ORDER BY created_at, id")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(service_row).collect()
}

/// Every compute node.
pub async fn nodes(store: &strata_store::Store) -> Result<Vec<Node>> {
    let rows = sqlx::query("SELECT * FROM compute_node ORDER BY created_at, id")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(node_row).collect()
}

async fn service_of_host(tx: &mut Tx, host: &str) -> Result<Option<Service>> {
    let r = sqlx::query(
        "SELECT * FROM compute_service WHERE host = $1 AND binary_name = 'nova-compute'",
    )
    .bind(host)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(service_row).transpose()
}

async fn node_of_host(tx: &mut Tx, host: &str) -> Result<Option<Node>> {
    let r = sqlx::query("SELECT * FROM compute_node WHERE host = $1")
        .bind(host)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(node_row).transpose()
}

/// Records the host's service (new ones enabled, in the configured zone, just seen) and node;
/// returns `(service_id, node_id)`. A host that registers again keeps its ids.
async fn upsert(tx: &mut Tx, reg: &HostRegistration, zone: &str) -> Result<(String, String)> {
    let now = strata_core::time::now_micros();
    let service_id = match service_of_host(tx, &reg.host).await? {
        Some(s) => {
            sqlx::query(
                "UPDATE compute_service SET last_seen_up = $2, updated_at = $2 WHERE id = $1",
            )
            .bind(&s.id)
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
            tx.record(SERVICE, &s.id, Op::Update).await?;
            s.id
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            sqlx::query(
                "INSERT INTO compute_service (id, host, binary_name, zone, disabled, \
                 disabled_reason, forced_down, last_seen_up, created_at, updated_at) \
                 VALUES ($1, $2, 'nova-compute', $3, 0, NULL, 0, $4, $4, $4)",
            )
            .bind(&id)
            .bind(&reg.host)
            .bind(zone)
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
            tx.record(SERVICE, &id, Op::Create).await?;
            id
        }
    };
    let doc = serde_json::to_string(reg).map_err(|e| Error::internal(e.to_string()))?;
    let node_id = match node_of_host(tx, &reg.host).await? {
        Some(n) => {
            sqlx::query("UPDATE compute_node SET doc = $2, updated_at = $3 WHERE id = $1")
                .bind(&n.id)
                .bind(&doc)
                .bind(now)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
            tx.record(NODE, &n.id, Op::Update).await?;
            n.id
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            sqlx::query(
                "INSERT INTO compute_node (id, service_id, host, doc, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&id)
            .bind(&service_id)
            .bind(&reg.host)
            .bind(&doc)
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
            tx.record(NODE, &id, Op::Create).await?;
            id
        }
    };
    Ok((service_id, node_id))
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// The registration is not acceptable (400).
    Invalid(String),
    /// Placement refused (its message).
    Placement(String),
}

/// The placement inventories a registration offers.
pub fn inventories(reg: &HostRegistration) -> BTreeMap<String, strata_placement::Inventory> {
    let inv = |total: i64, reserved: i64, ratio: f64| strata_placement::Inventory {
        total,
        reserved: reserved.min(total),
        max_unit: total.max(1),
        allocation_ratio: ratio,
        ..Default::default()
    };
    let mut m = BTreeMap::new();
    m.insert("VCPU".to_string(), inv(reg.vcpus, 0, CPU_ALLOCATION_RATIO));
    m.insert(
        "MEMORY_MB".to_string(),
        inv(reg.memory_mb, RESERVED_HOST_MEMORY_MB, RAM_ALLOCATION_RATIO),
    );
    if reg.local_gb > 0 {
        m.insert(
            "DISK_GB".to_string(),
            inv(reg.local_gb, 0, DISK_ALLOCATION_RATIO),
        );
    }
    m
}

impl ComputeService {
    /// A node agent registers its host: the service and node are recorded, and the host's
    /// provider in placement is created (or found) with its inventories and traits.
    pub async fn register_host(
        &self,
        reg: &HostRegistration,
    ) -> Result<std::result::Result<Registered, RegisterError>> {
        if reg.host.is_empty() || reg.host.len() > 255 {
            return Ok(Err(RegisterError::Invalid(
                "host must be 1 to 255 characters".into(),
            )));
        }
        if reg.vcpus < 1 || reg.memory_mb < 1 || reg.local_gb < 0 {
            return Ok(Err(RegisterError::Invalid(
                "vcpus and memory_mb must be positive, local_gb not negative".into(),
            )));
        }
        if reg.agent_version.split('.').next() != strata_agent_api::VERSION.split('.').next() {
            return Ok(Err(RegisterError::Invalid(format!(
                "agent contract {} is not served (the server speaks {})",
                reg.agent_version,
                strata_agent_api::VERSION
            ))));
        }
        let Some(placement) = self.placement() else {
            return Ok(Err(RegisterError::Placement(
                "no placement service is configured".into(),
            )));
        };
        let zone = self.config().availability_zone.clone();
        let r = reg.clone();
        let (service_id, node_id) = self
            .store()
            .write(move |tx| {
                let (r, zone) = (r.clone(), zone.clone());
                Box::pin(async move { upsert(tx, &r, &zone).await })
            })
            .await?;
        let perr = |e: strata_placement::PlacementError| RegisterError::Placement(e.detail);
        self.live().hosts_changed();
        let existing = placement
            .provider_get(&node_id)
            .await
            .map_err(|e| Error::internal(e.detail))?;
        let generation = match existing {
            Some(p) => p.generation,
            None => match placement
                .provider_create(reg.host.clone(), node_id.clone(), None)
                .await
            {
                Ok(p) => p.generation,
                Err(e) => return Ok(Err(perr(e))),
            },
        };
        let generation = match placement
            .inventories_replace(node_id.clone(), generation, inventories(reg))
            .await
        {
            Ok(g) => g,
            Err(e) => return Ok(Err(perr(e))),
        };
        let traits: std::collections::BTreeSet<String> = reg
            .traits
            .iter()
            .filter(|t| strata_placement::model::is_standard_trait(t))
            .cloned()
            .collect();
        if let Err(e) = placement
            .provider_traits_set(node_id.clone(), Some(generation), traits)
            .await
        {
            return Ok(Err(perr(e)));
        }
        self.live().hosts_changed();
        self.live().know(&reg.host);
        Ok(Ok(Registered {
            provider_uuid: node_id,
            service_id,
            // Three beats fit in the down time, so one lost beat never marks a host down.
            heartbeat_interval_s: ((self.config().service_down_time_s / 3).max(1) as u64)
                .min(HEARTBEAT_INTERVAL_S),
        }))
    }

    /// Records a heartbeat of `host`'s compute service; false when the host never registered.
    /// Heartbeats are not recorded in the change log (every host beats every few seconds;
    /// nothing watches liveness through it).
    pub async fn heartbeat(&self, host: &str) -> Result<bool> {
        let now = strata_core::time::now_micros();
        if self.live().is_known(host) {
            self.live().beat(host, now);
            return Ok(true);
        }
        let found = self.heartbeat_now(host).await?;
        if found {
            self.live().know(host);
        }
        Ok(found)
    }

    /// A heartbeat written at once (the first of a host this process has not seen yet).
    async fn heartbeat_now(&self, host: &str) -> Result<bool> {
        let host = host.to_string();
        self.store()
            .write(move |tx| {
                let host = host.clone();
                Box::pin(async move {
                    let Some(s) = service_of_host(tx, &host).await? else {
                        return Ok(false);
                    };
                    let now = strata_core::time::now_micros();
                    sqlx::query("UPDATE compute_service SET last_seen_up = $2 WHERE id = $1")
                        .bind(&s.id)
                        .bind(now)
                        .execute(tx.conn())
                        .await
                        .map_err(from_sqlx)?;
                    Ok(true)
                })
            })
            .await
    }
}
