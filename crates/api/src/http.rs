//! Assembling the one listener: services under prefixes, then the layers every response shares.

use crate::metrics::Metrics;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{HeaderValue, StatusCode, Uri};
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// The id of the current request, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Present on a request whose path had trailing slashes trimmed before routing, for services
/// that answer such paths differently (Cinder's `GET /volumes/` is a 404).
#[derive(Debug, Clone, Copy)]
pub struct TrimmedSlash;

/// Builds the application: `/healthz`, `/metrics`, each service nested under its prefix, a JSON
/// 404 for everything else; all of it wrapped with request ids, access logs, metrics and the
/// body limit. Trailing slashes are trimmed before routing (`/identity/v3/` is `/identity/v3`).
pub fn assemble(services: Vec<(&'static str, Router)>, max_body_bytes: usize) -> Router {
    let metrics = Arc::new(Metrics::default());
    let m = metrics.clone();
    let mut inner = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        );
    for (prefix, router) in services {
        inner = inner.nest(prefix, router);
    }
    let inner = inner
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(metrics, observe))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    Router::new().fallback_service(inner.map_request(trim_trailing_slash))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": {"code": 404, "title": "Not Found",
            "message": "The resource could not be found."}}),
        ),
    )
        .into_response()
}

fn trim_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
                req.extensions_mut().insert(TrimmedSlash);
            }
        }
    }
    req
}

/// The route a service matched itself, for services that route behind a fallback (compute
/// rewrites `/v2.1/{project_id}/…` before routing): put on the response, it names the route
/// in the access log and metrics when the listener's router matched none.
#[derive(Clone, Debug)]
pub struct ServiceRoute(pub String);

/// Request id, access log and metrics for one request.
async fn observe(State(metrics): State<Arc<Metrics>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = strata_core::ids::request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let route = match resp.extensions().get::<ServiceRoute>() {
        Some(r) if route == "unmatched" => r.0.clone(),
        _ => route,
    };
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    metrics.observe(method.as_str(), &route, status, elapsed.as_secs_f64());
    tracing::info!(
        target: "strata::access",
        request_id = %id,
        method = %method,
        path = %path,
        route = %route,
        status,
        latency_us = elapsed.as_micros() as u64,
        "request"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use http_body_util::BodyExt;

    fn app() -> Router {
        let svc = Router::new()
            .route("/", get(|| async { "root" }))
            .route("/v1/things/{id}", get(|| async { "thing" }))
            .route(
                "/v1/echo",
                post(|body: axum::body::Bytes| async move {
                    match body.len() {
                        0 => StatusCode::NO_CONTENT.into_response(),
                        n => n.to_string().into_response(),
                    }
                }),
            );
        assemble(vec![("/svc", svc)], 16)
    }

    async fn call(app: Router, req: Request) -> (StatusCode, http::HeaderMap, String) {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn every_response_has_a_request_id() {
        for path in ["/svc", "/svc/", "/svc/v1/things/1", "/nope", "/healthz"] {
            let (status, headers, _) =
                call(app(), Request::get(path).body(Body::empty()).unwrap()).await;
            let id = headers
                .get(REQUEST_ID_HEADER)
                .expect("request id")
                .to_str()
                .unwrap();
            assert!(id.starts_with("req-"), "{path}: {id}");
            assert_eq!(status == StatusCode::NOT_FOUND, path == "/nope", "{path}");
        }
    }

    #[tokio::test]
    async fn trailing_slash_is_trimmed_and_query_kept() {
        let (status, _, body) = call(
            app(),
            Request::get("/svc/v1/things/1/?a=b")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "thing");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413() {
        let big = "x".repeat(17);
        let (status, _, _) = call(
            app(),
            Request::post("/svc/v1/echo").body(Body::from(big)).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _, body) = call(
            app(),
            Request::post("/svc/v1/echo")
                .body(Body::from("12345"))
                .unwrap(),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "5"));
    }

    #[tokio::test]
    async fn metrics_count_by_route_template() {
        let app = app();
        for _ in 0..3 {
            call(
                app.clone(),
                Request::get("/svc/v1/things/7")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        }
        let (_, _, text) = call(app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert!(
            text.contains(
                "strata_http_requests_total{method=\"GET\",route=\"/svc/v1/things/{id}\",status=\"200\"} 3"
            ),
            "{text}"
        );
    }
}
