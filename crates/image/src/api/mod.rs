//! Routes of the image service, nested under `/image`. Handlers are `<resource>_<verb>`; rules
//! live in `model`, queries in `db`.

pub mod file;
pub mod images;
pub mod import;
pub mod members;
pub mod schemas;
pub mod versions;

use crate::error::GlanceError;
use crate::ImageService;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{get, post, put};
use axum::Router;
use http::StatusCode;

/// Every image route. Paths outside `/v2/…` answer the version document, as Glance's version
/// negotiation does for anything that names no known version.
pub fn router() -> Router<ImageService> {
    Router::new()
        .route("/", get(versions::versions))
        .route("/versions", get(versions::versions))
        .route(
            "/v2/images",
            get(images::image_list)
                .post(images::image_create)
                .delete(images::image_delete_no_id),
        )
        .route(
            "/v2/images/{image_id}",
            get(images::image_show)
                .patch(images::image_update)
                .delete(images::image_delete),
        )
        .route(
            "/v2/images/{image_id}/tags/{tag}",
            put(images::image_tag_add).delete(images::image_tag_delete),
        )
        // Image data streams past the service-wide body limit; `image.max_image_bytes` caps it.
        .route(
            "/v2/images/{image_id}/file",
            get(file::image_download).put(file::image_upload.layer(DefaultBodyLimit::disable())),
        )
        .route(
            "/v2/images/{image_id}/stage",
            put(import::image_stage.layer(DefaultBodyLimit::disable())),
        )
        .route("/v2/images/{image_id}/import", post(import::image_import))
        .route(
            "/v2/images/{image_id}/members",
            get(members::member_list).post(members::member_create),
        )
        .route(
            "/v2/images/{image_id}/members/{member_id}",
            get(members::member_show)
                .put(members::member_update)
                .delete(members::member_delete),
        )
        .route("/v2/info/import", get(import::info_import))
        .route("/v2/info/stores", get(import::info_stores))
        .route("/v2/schemas/image", get(schemas::schema_image))
        .route("/v2/schemas/images", get(schemas::schema_images))
        .route("/v2/schemas/member", get(schemas::schema_member))
        .route("/v2/schemas/members", get(schemas::schema_members))
        .route(
            "/v2/images/{image_id}/actions/{action}",
            post(images::image_action),
        )
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Glance's `RejectMethodController`: webob's 405 naming the method (axum adds `Allow`).
async fn method_not_allowed(method: http::Method) -> GlanceError {
    GlanceError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("The method {method} is not allowed for this resource. <br /><br />\n\n"),
        headers: Vec::new(),
    }
}

/// Unknown paths: under `/v2` a 404, elsewhere the version choices.
async fn fallback(
    axum::extract::State(svc): axum::extract::State<ImageService>,
    uri: http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path() == "/v2" || uri.path().starts_with("/v2/") {
        GlanceError::new(StatusCode::NOT_FOUND, "The resource could not be found.").into_response()
    } else {
        versions::versions(axum::extract::State(svc)).await
    }
}
