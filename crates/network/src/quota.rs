//! Per-project quotas (Neutron's `quota_*`): the configured defaults overlaid with overrides,
//! checked inside the write that creates the resource, so concurrent creates cannot both take
//! the last unit.

use crate::db;
use crate::error::NeutronError;
use strata_core::config::NetworkConfig;
use strata_core::Result;
use strata_store::Tx;

/// The resources Neutron counts, with the resource kind each counts.
pub const RESOURCES: &[(&str, &str)] = &[
    ("network", "network"),
    ("subnet", "subnet"),
    ("subnetpool", "subnetpool"),
    ("port", "port"),
    ("router", "router"),
    ("floatingip", "floatingip"),
    ("security_group", "security_group"),
    ("security_group_rule", "security_group_rule"),
];

/// The configured default for `resource`.
pub fn default_limit(cfg: &NetworkConfig, resource: &str) -> i64 {
    match resource {
        "network" => cfg.quota_network,
        "subnet" => cfg.quota_subnet,
        "subnetpool" => cfg.quota_subnetpool,
        "port" => cfg.quota_port,
        "router" => cfg.quota_router,
        "floatingip" => cfg.quota_floatingip,
        "security_group" => cfg.quota_security_group,
        "security_group_rule" => cfg.quota_security_group_rule,
        _ => -1,
    }
}

/// Checks inside the write that `project` may have `more` more of `resource`; Neutron's 409
/// `OverQuota` otherwise.
pub async fn check(
    tx: &mut Tx,
    cfg: &NetworkConfig,
    project: &str,
    resource: &str,
    more: i64,
) -> Result<std::result::Result<(), NeutronError>> {
    let limit = match db::quota_override_tx(tx, project, resource).await? {
        Some(l) => l,
        None => default_limit(cfg, resource),
    };
    if limit < 0 {
        return Ok(Ok(()));
    }
    let used = db::count_tx(tx, resource, project).await?;
    if used + more > limit {
        return Ok(Err(NeutronError::conflict(
            "OverQuota",
            format!("Quota exceeded for resources: ['{resource}']."),
        )));
    }
    Ok(Ok(()))
}
