//! Neutron v2.0, wire-compatible: version discovery, the extension list, and the networking
//! resources with Neutron's attributes, defaults, filters, `fields`, sorting and pagination,
//! standard attributes (`revision_number`, timestamps, tags, `description`) and quotas.
//!
//! Rooms: `api/` holds the routes and views (one file per resource, `list` for the shared list
//! semantics), `db` the queries over resource documents and the allocation tables whose unique
//! keys make addresses, MACs and segments impossible to hand out twice, `quota` the per-project
//! limits checked inside the write that consumes them, `extract` the auth and body
//! extractors, `error` Neutron's error bodies.
//!
//! Packets are realised by a data-plane driver ([`dataplane::DataPlane`]; Linux bridge / OVN in
//! a later issue, `noop` now) called by two reconcilers that watch the change log: the host
//! agent of each compute host plugs the ports bound to it and reports them ACTIVE
//! ([`NetworkService::report_port`]), the router agent wires routers.

pub mod api;
pub mod dataplane;
pub mod db;
mod error;
mod extract;
pub mod ipam;
pub mod quota;

pub use error::{NeutronError, NeutronResult};

use std::sync::Arc;
use strata_api::TokenValidator;
use strata_core::config::NetworkConfig;
use strata_store::Store;

/// The network service; cheap to clone.
#[derive(Clone)]
pub struct NetworkService(Arc<Inner>);

struct Inner {
    store: Store,
    tokens: Arc<dyn TokenValidator>,
    base_url: String,
    cfg: NetworkConfig,
}

impl NetworkService {
    /// The service over a migrated store.
    pub fn new(
        store: Store,
        tokens: Arc<dyn TokenValidator>,
        base_url: &str,
        cfg: NetworkConfig,
    ) -> NetworkService {
        NetworkService(Arc::new(Inner {
            store,
            tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            cfg,
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn tokens(&self) -> &dyn TokenValidator {
        self.0.tokens.as_ref()
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.0.cfg
    }

    /// A host's agent reports the port plugged (`up`) or held down: the port becomes ACTIVE
    /// (or DOWN) and takes the binding details the driver gave, if it is still bound to
    /// `host` (a port that moved meanwhile is left to its new host). A report that changes
    /// nothing writes nothing.
    pub async fn report_port(
        &self,
        port_id: &str,
        host: &str,
        up: bool,
        bound: &dataplane::Bound,
    ) -> strata_core::Result<bool> {
        let (port_id, host) = (port_id.to_string(), host.to_string());
        let (vif_type, vif_details) = (bound.vif_type.clone(), bound.vif_details.clone());
        self.store()
            .write(move |tx| {
                let (port_id, host) = (port_id.clone(), host.clone());
                let (vif_type, vif_details) = (vif_type.clone(), vif_details.clone());
                Box::pin(async move {
                    let Some(mut p) = db::get_tx(tx, api::ports::KIND, &port_id).await? else {
                        return Ok(false);
                    };
                    if p.str("binding:host_id") != Some(host.as_str()) {
                        return Ok(false);
                    }
                    let admin_up = p
                        .doc
                        .get("admin_state_up")
                        .and_then(serde_json::Value::as_bool);
                    let status = if up && admin_up != Some(false) {
                        "ACTIVE"
                    } else {
                        "DOWN"
                    };
                    let same = p.str("status") == Some(status)
                        && p.str("binding:vif_type") == Some(vif_type.as_str())
                        && p.doc.get("binding:vif_details") == Some(&vif_details);
                    if same {
                        return Ok(false);
                    }
                    p.doc.insert("status".into(), status.into());
                    p.doc.insert("binding:vif_type".into(), vif_type.into());
                    p.doc.insert("binding:vif_details".into(), vif_details);
                    db::save(tx, &mut p).await?;
                    Ok(true)
                })
            })
            .await
    }

    /// `<base>/network`, the catalog endpoint.
    pub fn root_url(&self) -> String {
        format!("{}/network", self.0.base_url)
    }

    /// DevStack's starting topology, built with the functions the API uses (no HTTP), in one
    /// write: the external network `public` (admin project; flat on the first configured flat
    /// physical network, else the tenant network type) with `public-subnet` 172.24.4.0/24,
    /// the demo project's `private` network with `private-subnet` 10.0.0.0/26, and its router
    /// `router1` with the gateway on `public` and an interface on `private-subnet`.
    /// Idempotent: nothing happens when an external network named `public` exists. Returns
    /// whether it created anything.
    pub async fn bootstrap(
        &self,
        admin_project: &str,
        demo_project: &str,
    ) -> strata_core::Result<bool> {
        use serde_json::{json, Value};
        let exists = db::list(self.store(), api::networks::KIND, None)
            .await?
            .iter()
            .any(|n| n.str("name") == Some("public") && n.flag("router:external"));
        if exists {
            return Ok(false);
        }
        let admin = extract::Auth::service(admin_project);
        let demo = extract::Auth::service(demo_project);
        let obj = |v: Value| v.as_object().cloned().unwrap_or_default();
        let cfg = self.config().clone();
        let mut public = json!({"name": "public", "router:external": true});
        match cfg.flat_networks.first().map(String::as_str) {
            Some("*") => {
                public["provider:network_type"] = json!("flat");
                public["provider:physical_network"] = json!("physnet1");
            }
            Some(p) => {
                public["provider:network_type"] = json!("flat");
                public["provider:physical_network"] = json!(p);
            }
            None => {}
        }
        let fail = |e: NeutronError| {
            strata_core::Error::internal(format!("network bootstrap: {}: {}", e.kind, e.message))
        };
        let public = api::networks::build(self, &admin, &obj(public)).map_err(fail)?;
        let private =
            api::networks::build(self, &demo, &obj(json!({"name": "private"}))).map_err(fail)?;
        let router = api::routers::build(&demo, &obj(json!({"name": "router1"}))).map_err(fail)?;
        let (public_id, private_id) = (public.0.id.clone(), private.0.id.clone());
        let public_subnet = api::subnets::spec(
            &admin,
            &obj(
                json!({"name": "public-subnet", "network_id": public_id, "ip_version": 4,
                "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": false,
                "allocation_pools": [{"start": "172.24.4.2", "end": "172.24.4.254"}]}),
            ),
        )
        .map_err(fail)?;
        let private_subnet = api::subnets::spec(
            &demo,
            &obj(
                json!({"name": "private-subnet", "network_id": private_id, "ip_version": 4,
                "cidr": "10.0.0.0/26"}),
            ),
        )
        .map_err(fail)?;
        let (admin_project, demo_project) = (admin_project.to_string(), demo_project.to_string());
        let refused = self
            .store()
            .write_or_refuse(move |tx| {
                let (public, private, router) = (public.clone(), private.clone(), router.clone());
                let (ps, vs) = (public_subnet.clone(), private_subnet.clone());
                let (cfg, ap, dp) = (cfg.clone(), admin_project.clone(), demo_project.clone());
                Box::pin(async move {
                    macro_rules! refuse {
                        ($e:expr) => {
                            match $e {
                                Ok(v) => v,
                                Err(e) => return Ok(Err(e)),
                            }
                        };
                    }
                    let public_id = public.0.id.clone();
                    refuse!(api::networks::insert_built(tx, &cfg, public).await?);
                    refuse!(api::networks::insert_built(tx, &cfg, private).await?);
                    let s = refuse!(api::subnets::finish(tx, true, &ap, ps, &[]).await?);
                    db::insert(tx, &s).await?;
                    let s = refuse!(api::subnets::finish(tx, true, &dp, vs, &[]).await?);
                    db::insert(tx, &s).await?;
                    let gw = api::routers::GatewayAsk {
                        network_id: public_id,
                        enable_snat: None,
                        fixed_ips: None,
                    };
                    let r = refuse!(api::routers::insert(tx, &cfg, router.0, Some(gw)).await?);
                    refuse!(api::routers::add_subnet_interface(tx, &cfg, &r, &s.id).await?);
                    Ok(Ok(()))
                })
            })
            .await?;
        refused.map_err(fail)?;
        Ok(true)
    }

    /// The routes, to be nested under `/network`.
    pub fn router(&self) -> axum::Router {
        api::router().with_state(self.clone())
    }
}
