//! First-start bootstrap, as `keystone-manage bootstrap` does, plus the catalog entries of the
//! services this process serves, kept in step with its URL on every start.

use crate::db::{
    self,
    assignments::{Assignment, Kind, SYSTEM},
    catalog::{Endpoint, Region, Service},
    domains::Domain,
    projects::Project,
    roles::Role,
    users::User,
};
use crate::Identity;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::json;
use strata_core::Result;

/// A service Strata serves, to list in the catalog.
#[derive(Debug, Clone)]
pub struct CatalogService {
    /// Catalog type, e.g. `identity`.
    pub kind: &'static str,
    /// Service name, e.g. `keystone`.
    pub name: &'static str,
    /// Path under the base URL, e.g. `/identity`.
    pub path: &'static str,
}

/// What the first start created: the generated passwords (only then).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub admin_password: String,
    pub demo_password: String,
}

fn generate_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

impl Identity {
    /// Creates the `Default` domain, projects `admin`/`service`/`demo`, roles
    /// `admin`⇒`member`⇒`reader`, users `admin` (admin on project `admin` and on the system) and
    /// `demo` (member on `demo`), and region `RegionOne` — once; returns the generated
    /// passwords when it did. Then makes the catalog list `services` at `base_url`.
    /// Idempotent: a second run only refreshes endpoint URLs.
    pub async fn bootstrap(
        &self,
        services: &[CatalogService],
        region: &str,
        admin_password: Option<String>,
    ) -> Result<Option<Bootstrap>> {
        let store = self.store();
        let created = if db::domains::get(store, "default").await?.is_none() {
            let admin_password = admin_password.unwrap_or_else(generate_password);
            let demo_password = generate_password();
            self.bootstrap_identity(&admin_password, &demo_password, region)
                .await?;
            Some(Bootstrap {
                admin_password,
                demo_password,
            })
        } else {
            None
        };
        self.sync_catalog(services, region).await?;
        self.changed().await?;
        Ok(created)
    }

    async fn bootstrap_identity(&self, admin_pw: &str, demo_pw: &str, region: &str) -> Result<()> {
        let store = self.store();
        db::domains::create(
            store,
            &Domain {
                id: "default".into(),
                name: "Default".into(),
                description: "The default domain".into(),
                enabled: true,
                tags: vec![],
                options: json!({}),
                extra: json!({}),
            },
        )
        .await?;
        let mut project_ids = Vec::new();
        for name in ["admin", "service", "demo"] {
            let p = Project {
                id: strata_core::ids::hex_id(),
                name: name.into(),
                domain_id: "default".into(),
                parent_id: Some("default".into()),
                description: format!("Bootstrap project {name}"),
                enabled: true,
                tags: vec![],
                options: json!({}),
                extra: json!({}),
            };
            db::projects::create(store, &p).await?;
            project_ids.push(p.id);
        }
        let mut role_ids = Vec::new();
        for name in ["admin", "member", "reader", "service"] {
            let r = Role {
                id: strata_core::ids::hex_id(),
                name: name.into(),
                domain_id: None,
                description: None,
                options: json!({}),
                extra: json!({}),
            };
            db::roles::create(store, &r).await?;
            role_ids.push(r.id);
        }
        db::roles::imply(store, &role_ids[0], &role_ids[1]).await?;
        db::roles::imply(store, &role_ids[1], &role_ids[2]).await?;
        let mut user_ids = Vec::new();
        for (name, pw, project) in [
            ("admin", admin_pw, &project_ids[0]),
            ("demo", demo_pw, &project_ids[2]),
        ] {
            let u = User {
                id: strata_core::ids::hex_id(),
                domain_id: "default".into(),
                name: name.into(),
                enabled: true,
                default_project_id: Some(project.clone()),
                description: None,
                options: json!({}),
                extra: json!({}),
                failed_auth_count: 0,
                failed_auth_at: None,
                password_expires_at: None,
            };
            let mut password = self.new_password(None, pw, true).await.map_err(|e| {
                strata_core::Error::internal(format!("bootstrap password: {}", e.message))
            })?;
            // The bootstrap passwords are the operator's own: never expire them.
            password.expires_at = None;
            db::users::create(store, &u, Some(password)).await?;
            user_ids.push(u.id);
        }
        let grants = [
            (
                Kind::UserProject,
                &user_ids[0],
                &project_ids[0],
                &role_ids[0],
            ),
            (
                Kind::UserSystem,
                &user_ids[0],
                &SYSTEM.to_string(),
                &role_ids[0],
            ),
            (
                Kind::UserProject,
                &user_ids[1],
                &project_ids[2],
                &role_ids[1],
            ),
        ];
        for (kind, actor, target, role) in grants {
            db::assignments::add(
                store,
                &Assignment {
                    kind,
                    actor_id: actor.clone(),
                    target_id: target.clone(),
                    role_id: role.clone(),
                    inherited: false,
                },
            )
            .await?;
        }
        if db::catalog::get_region(store, region).await?.is_none() {
            db::catalog::upsert_region(
                store,
                &Region {
                    id: region.into(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: json!({}),
                },
                true,
            )
            .await?;
        }
        tracing::info!(
            "bootstrapped identity: domain Default, projects admin/service/demo, users admin/demo"
        );
        Ok(())
    }

    async fn sync_catalog(&self, services: &[CatalogService], region: &str) -> Result<()> {
        let store = self.store();
        if db::catalog::get_region(store, region).await?.is_none() {
            db::catalog::upsert_region(
                store,
                &Region {
                    id: region.into(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: json!({}),
                },
                true,
            )
            .await?;
        }
        for s in services {
            let mut w = db::Where::default();
            w.eq("type", s.kind);
            let svc = match db::catalog::list_services(store, &w)
                .await?
                .into_iter()
                .next()
            {
                Some(svc) => svc,
                None => {
                    let svc = Service {
                        id: strata_core::ids::hex_id(),
                        kind: s.kind.into(),
                        name: s.name.into(),
                        description: Some(format!("Strata {}", s.kind)),
                        enabled: true,
                        extra: json!({}),
                    };
                    db::catalog::upsert_service(store, &svc, true).await?;
                    svc
                }
            };
            let url = format!("{}{}", self.base_url(), s.path);
            let mut w = db::Where::default();
            w.eq("service_id", svc.id.clone());
            let existing = db::catalog::list_endpoints(store, &w).await?;
            for interface in ["public", "internal", "admin"] {
                match existing
                    .iter()
                    .find(|e| e.interface == interface && e.region_id.as_deref() == Some(region))
                {
                    Some(e) if e.url == url => {}
                    Some(e) => {
                        let mut e = e.clone();
                        e.url = url.clone();
                        db::catalog::upsert_endpoint(store, &e, false).await?;
                    }
                    None => {
                        let e = Endpoint {
                            id: strata_core::ids::hex_id(),
                            service_id: svc.id.clone(),
                            interface: interface.into(),
                            url: url.clone(),
                            region_id: Some(region.into()),
                            enabled: true,
                            extra: json!({}),
                        };
                        db::catalog::upsert_endpoint(store, &e, true).await?;
                    }
                }
            }
        }
        Ok(())
    }
}
