//! Routes of the identity service, nested under `/identity`. Each resource file has its
//! handlers (`<resource>_<verb>`) and wire views; rules live in `auth`/`policy`, queries in
//! `db`.

pub mod access_rules;
pub mod app_creds;
pub mod assignments;
pub mod catalog;
pub mod credentials;
pub mod domain_config;
pub mod domains;
pub mod endpoint_groups;
pub mod fields;
pub mod groups;
pub mod policies;
pub mod projects;
pub mod roles;
pub mod tokens;
pub mod trusts;
pub mod users;
pub mod util;
pub mod version;

use crate::db;
use crate::Identity;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

/// Every identity route.
pub fn router() -> Router<Identity> {
    Router::new()
        .route("/", get(version::versions))
        .route("/v3", get(version::version_v3))
        .route(
            "/v3/auth/tokens",
            get(tokens::token_validate)
                .head(tokens::token_check)
                .post(tokens::token_issue)
                .delete(tokens::token_revoke),
        )
        .route("/v3/auth/catalog", get(tokens::auth_catalog))
        .route("/v3/auth/projects", get(tokens::auth_projects))
        .route("/v3/auth/domains", get(tokens::auth_domains))
        .route("/v3/auth/system", get(tokens::auth_system))
        .merge(catalog::routes())
        .merge(app_creds::routes())
        .merge(access_rules::routes())
        .merge(domains::routes())
        .merge(domain_config::routes())
        .merge(endpoint_groups::routes())
        .merge(projects::routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(roles::routes())
        .merge(assignments::routes())
        .merge(credentials::routes())
        .merge(policies::routes())
        .merge(trusts::routes())
}

/// The catalog as tokens and `/v3/auth/catalog` carry it: enabled services with their enabled
/// endpoints.
pub(crate) async fn catalog_view(id: &Identity) -> strata_core::Result<Value> {
    let store = id.store();
    let services = db::catalog::list_services(store, &db::Where::default()).await?;
    let endpoints = db::catalog::list_endpoints(store, &db::Where::default()).await?;
    let mut out = Vec::new();
    for s in services.iter().filter(|s| s.enabled) {
        let eps: Vec<Value> = endpoints
            .iter()
            .filter(|e| e.service_id == s.id && e.enabled)
            .map(|e| {
                json!({
                    "id": e.id,
                    "interface": e.interface,
                    "region": e.region_id,
                    "region_id": e.region_id,
                    "url": e.url,
                })
            })
            .collect();
        out.push(json!({"endpoints": eps, "id": s.id, "type": s.kind, "name": s.name}));
    }
    Ok(Value::Array(out))
}

/// Fills Keystone's `$(project_id)s` and `$(tenant_id)s` endpoint templates for a project, or
/// drops templated endpoints when there is none.
pub(crate) fn catalog_for_project(raw: &Value, project_id: Option<&str>) -> Value {
    let mut out = raw.clone();
    if let Some(services) = out.as_array_mut() {
        for s in services {
            if let Some(eps) = s.get_mut("endpoints").and_then(Value::as_array_mut) {
                eps.retain_mut(|e| {
                    let Some(url) = e.get("url").and_then(Value::as_str) else {
                        return true;
                    };
                    if !url.contains("$(") {
                        return true;
                    }
                    match project_id {
                        Some(p) => {
                            let filled =
                                url.replace("$(project_id)s", p).replace("$(tenant_id)s", p);
                            e["url"] = json!(filled);
                            true
                        }
                        None => false,
                    }
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_templates_are_filled_or_dropped() {
        let raw = json!([{"type": "volumev3", "endpoints": [
            {"interface": "public", "url": "http://h/volume/v3/$(project_id)s"},
            {"interface": "admin", "url": "http://h/volume"}]}]);
        let c = catalog_for_project(&raw, Some("p1"));
        assert_eq!(c[0]["endpoints"][0]["url"], "http://h/volume/v3/p1");
        assert_eq!(c[0]["endpoints"][1]["url"], "http://h/volume");
        let c = catalog_for_project(&raw, None);
        assert_eq!(c[0]["endpoints"].as_array().unwrap().len(), 1);
    }
}
