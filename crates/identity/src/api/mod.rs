//! Routes of the identity service, nested under `/identity`. Each resource file has its
//! handlers (`<resource>_<verb>`) and wire views; rules live in `auth`/`policy`, queries in
//! `db`.

pub mod app_creds;
pub mod assignments;
pub mod catalog;
pub mod domains;
pub mod groups;
pub mod projects;
pub mod roles;
pub mod tokens;
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
        .merge(domains::routes())
        .merge(projects::routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(roles::routes())
        .merge(assignments::routes())
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
