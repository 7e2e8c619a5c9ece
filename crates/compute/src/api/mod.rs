//! Routes of the compute service, nested under `/compute`: the version list at the root, the
//! v2.0 and v2.1 version documents, and every resource under `/v2.1` behind the microversion
//! middleware. Each resource file exposes its `routes()`; handlers are `<resource>_<verb>`.
//!
//! Nova also accepts the project id in URLs (`/v2.1/{project_id}/flavors`, the legacy catalog
//! form): a rewrite in front of the routes strips it and hands it to the auth extractor, which
//! refuses it (400) when it is not the token's project, and to the link builder, which keeps it
//! in `self`/`bookmark` links as Nova does.

pub mod aggregates;
pub mod deferred;
pub mod flavors;
pub mod hosts;
pub mod images;
pub mod instance_actions;
pub mod interfaces;
pub mod keypairs;
pub mod migrations;
pub mod quotas;
pub mod server_actions;
pub mod server_groups;
pub mod server_meta;
pub mod server_tags;
pub mod server_volumes;
pub mod servers;
pub mod usage;
pub mod versions;
pub mod views;
pub mod zones;

use crate::error::NovaError;
use crate::extract::UrlProject;
use crate::ComputeService;
use axum::extract::{FromRequestParts, Request};
use axum::routing::get;
use axum::Router;
use http::request::Parts;
use http::{StatusCode, Uri};
use tower::ServiceExt;

/// The first path segments under `/v2.1` that name resources, so that anything else in that
/// place followed by one of them is a project id.
const RESOURCES: &[&str] = &[
    "flavors",
    "os-keypairs",
    "limits",
    "os-quota-sets",
    "os-quota-class-sets",
    "os-availability-zone",
    "servers",
    "images",
    "extensions",
    "os-server-groups",
    "os-hypervisors",
    "os-services",
    "os-aggregates",
    "os-simple-tenant-usage",
    "os-migrations",
    "os-instance-actions",
    "os-volumes",
    "os-volumes_boot",
    "os-snapshots",
    "os-networks",
    "os-floating-ips",
    "os-security-groups",
    "os-security-group-rules",
    "os-hosts",
    "os-server-external-events",
    "os-assisted-volume-snapshots",
    "os-console-auth-tokens",
    "os-instance_usage_audit_log",
];

/// Every compute route.
pub fn router(svc: ComputeService) -> Router {
    let v21 = Router::new()
        .route("/", get(versions::v21))
        .merge(flavors::routes())
        .merge(keypairs::routes())
        .merge(quotas::routes())
        .merge(zones::routes())
        .merge(hosts::routes())
        .merge(servers::routes())
        .merge(server_actions::routes())
        .merge(images::routes())
        .merge(server_meta::routes())
        .merge(server_tags::routes())
        .merge(server_volumes::routes())
        .merge(instance_actions::routes())
        .merge(server_groups::routes())
        .merge(migrations::routes())
        .merge(aggregates::routes())
        .merge(interfaces::routes())
        .merge(usage::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::version::layer));
    let inner = Router::new()
        .route("/", get(versions::versions))
        .route("/v2", get(versions::v2))
        .nest("/v2.1", v21)
        .route_layer(axum::middleware::from_fn(name_route))
        .fallback(not_found)
        .with_state(svc);
    Router::new().fallback_service(inner.map_request(strip_project))
}

/// Names the matched route on the response ([`strata_api::ServiceRoute`]): the listener's
/// router only sees the fallback this service is mounted as.
async fn name_route(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| format!("/compute{}", m.as_str()));
    let request_id = req
        .extensions()
        .get::<strata_api::RequestId>()
        .map(|r| r.0.clone());
    let mut resp = next.run(req).await;
    // Nova's own request-id header beside the common one (Tempest reads it).
    if let Some(id) = request_id.and_then(|r| http::HeaderValue::from_str(&r).ok()) {
        resp.headers_mut().insert("x-compute-request-id", id);
    }
    if let Some(r) = route {
        resp.extensions_mut().insert(strata_api::ServiceRoute(r));
    }
    resp
}

/// Whether a lone segment after `/v2.1` looks like a project id (Keystone's are hex, with or
/// without dashes).
fn looks_like_project(seg: &str) -> bool {
    seg.len() >= 8 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// `/v2.1/{project_id}/<resource>…` → `/v2.1/<resource>…` (and `/v2.1/{project_id}` →
/// `/v2.1`), remembering the project id.
fn strip_project(mut req: Request) -> Request {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v2.1/") else {
        return req;
    };
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if first.is_empty() || RESOURCES.contains(&first) {
        return req;
    }
    let next = tail.split('/').next().unwrap_or("");
    let is_project = if tail.is_empty() {
        looks_like_project(first)
    } else {
        RESOURCES.contains(&next)
    };
    if !is_project {
        return req;
    }
    let project = first.to_string();
    let new_path = if tail.is_empty() {
        "/v2.1".to_string()
    } else {
        format!("/v2.1/{tail}")
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = pq.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
            req.extensions_mut().insert(UrlProject(project));
        }
    }
    req
}

/// The bases of the links a response carries: `self` under `<root>/v2.1`, `bookmark` under
/// `<root>`, both with the URL's project id when the request had one.
#[derive(Clone)]
pub struct Links {
    pub self_base: String,
    pub bookmark_base: String,
}

impl FromRequestParts<ComputeService> for Links {
    type Rejection = NovaError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ComputeService,
    ) -> Result<Self, NovaError> {
        let root = state.root_url();
        let project = parts
            .extensions
            .get::<UrlProject>()
            .map(|p| format!("/{}", p.0))
            .unwrap_or_default();
        Ok(Links {
            self_base: format!("{root}/v2.1{project}"),
            bookmark_base: format!("{root}{project}"),
        })
    }
}

impl Links {
    /// `self` and `bookmark` links for `<collection>/<id>`.
    pub fn pair(&self, collection: &str, id: &str) -> serde_json::Value {
        serde_json::json!([
            {"rel": "self", "href": format!("{}/{collection}/{id}", self.self_base)},
            {"rel": "bookmark", "href": format!("{}/{collection}/{id}", self.bookmark_base)},
        ])
    }
}

/// Nova's `limit` query parameter (`common.get_limit_and_marker`): a non-negative integer,
/// capped at the maximum (1000, also the default); 0 asks for an empty page.
pub fn page_limit(pairs: &crate::extract::Pairs) -> Result<usize, NovaError> {
    const MAX_LIMIT: usize = 1000;
    match pairs.get("limit") {
        None => Ok(MAX_LIMIT),
        Some(s) => {
            let n: i64 = s
                .trim()
                .parse()
                .map_err(|_| NovaError::bad_request("limit param must be an integer"))?;
            if n < 0 {
                return Err(NovaError::bad_request("limit param must be positive"));
            }
            Ok((n as usize).min(MAX_LIMIT))
        }
    }
}

/// The `next` link of a full page: the request's query with `limit` and `marker` replaced.
pub fn next_link(
    base: &str,
    pairs: &crate::extract::Pairs,
    limit: usize,
    marker: &str,
) -> serde_json::Value {
    let mut q: Vec<(String, String)> = pairs
        .0
        .iter()
        .filter(|(k, _)| k != "limit" && k != "marker")
        .cloned()
        .collect();
    q.push(("limit".into(), limit.to_string()));
    q.push(("marker".into(), marker.to_string()));
    let query: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    serde_json::json!([{"rel": "next", "href": format!("{base}?{}", query.join("&"))}])
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn not_found() -> NovaError {
    NovaError::not_found("The resource could not be found.")
}

async fn method_not_allowed() -> NovaError {
    NovaError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(path: &str) -> (String, Option<String>) {
        let req = Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let req = strip_project(req);
        (
            req.uri().to_string(),
            req.extensions().get::<UrlProject>().map(|p| p.0.clone()),
        )
    }

    #[test]
    fn strips_project_ids_before_resources() {
        assert_eq!(rewrite("/v2.1/flavors"), ("/v2.1/flavors".into(), None));
        assert_eq!(
            rewrite("/v2.1/abc/flavors/detail?limit=1"),
            ("/v2.1/flavors/detail?limit=1".into(), Some("abc".into()))
        );
        assert_eq!(
            rewrite("/v2.1/0123456789abcdef0123456789abcdef"),
            (
                "/v2.1".into(),
                Some("0123456789abcdef0123456789abcdef".into())
            )
        );
        assert_eq!(rewrite("/v2.1/nothing"), ("/v2.1/nothing".into(), None));
        assert_eq!(
            rewrite("/v2.1/os-keypairs/flavors"),
            ("/v2.1/os-keypairs/flavors".into(), None)
        );
        assert_eq!(rewrite("/"), ("/".into(), None));
    }
}
