//! Routes of the volume service, nested under `/volume`: the version document at the root,
//! everything else under `/v3/{project_id}` behind the microversion middleware. Each resource
//! file exposes its `routes()`; handlers are `<resource>_<verb>`.

pub mod actions;
pub mod attachments;
pub mod misc;
pub mod quotas;
pub mod snapshots;
pub mod types;
pub mod versions;
pub mod views;
pub mod volumes;

use crate::error::CinderError;
use crate::VolumeService;
use axum::routing::get;
use axum::Router;
use http::StatusCode;

/// Every volume route.
pub fn router(_svc: VolumeService) -> Router<VolumeService> {
    let v3 = Router::new()
        // The catalog URL itself (`/v3/{project_id}`): the v3 version document, so clients that
        // discover from the endpoint they were given find the microversion range there too.
        .route("/", get(versions::v3))
        .merge(volumes::routes())
        .merge(actions::routes())
        .merge(snapshots::routes())
        .merge(types::routes())
        .merge(quotas::routes())
        .merge(misc::routes())
        .merge(attachments::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .route("/", get(versions::versions))
        .route("/v3", get(versions::v3))
        .route("/v3/", get(versions::v3))
        .nest("/v3/{project_id}", v3)
        .layer(axum::middleware::from_fn(crate::version::layer))
        .fallback(not_found)
}

async fn not_found() -> CinderError {
    CinderError::not_found("The resource could not be found.")
}

async fn method_not_allowed() -> CinderError {
    CinderError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
}
