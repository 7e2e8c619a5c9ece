//! Routes of the network service, nested under `/network`: the version list at the root, the
//! resources under `/v2.0`. One file per resource; handlers are `<resource>_<verb>`; `list`
//! holds the list semantics every collection shares.

pub mod extensions;
pub mod floatingips;
pub mod list;
pub mod networks;
pub mod ports;
pub mod quotas;
pub mod routers;
pub mod security_groups;
pub mod subnetpools;
pub mod subnets;
pub mod tags;
pub mod versions;

use crate::error::{NeutronError, NeutronResult};
use crate::NetworkService;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use strata_store::{Tx, TxFuture};

/// Every network route.
pub fn router() -> Router<NetworkService> {
    let v2 = Router::new()
        .route("/", get(versions::v2_resources))
        .route("/extensions", get(extensions::extension_list))
        .route("/extensions/{alias}", get(extensions::extension_show))
        .route("/agents", get(extensions::agent_list))
        .route("/agents/{id}", get(extensions::agent_show))
        .merge(networks::routes())
        .merge(security_groups::routes())
        .merge(quotas::routes())
        .merge(tags::routes())
        .merge(subnets::routes())
        .merge(subnetpools::routes())
        .merge(ports::routes())
        .merge(routers::routes())
        .merge(floatingips::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .route("/", get(versions::versions))
        .nest("/v2.0", v2)
        .fallback(not_found)
}

async fn not_found() -> NeutronError {
    NeutronError::new(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        "The resource could not be found.",
    )
}

async fn method_not_allowed() -> NeutronError {
    NeutronError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTPMethodNotAllowed",
        "The method is not allowed for this resource.",
    )
}

/// Runs a write step that may refuse (`Ok(Err(..))`): the refusal reaches the client, nothing
/// is written.
pub async fn write<T, F>(svc: &NetworkService, f: F) -> NeutronResult<T>
where
    T: Send + 'static,
    F: for<'t> FnMut(&'t mut Tx) -> TxFuture<'t, NeutronResult<T>>,
{
    svc.store().write_or_refuse(f).await?
}

/// The URL of a collection (`…/network/v2.0/networks`).
pub fn collection_url(svc: &NetworkService, collection: &str) -> String {
    format!("{}/v2.0/{collection}", svc.root_url())
}
