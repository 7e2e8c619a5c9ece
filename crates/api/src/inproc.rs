//! Calls from one service to another inside the process, over the callee's own router: the
//! same routes, validation, policy and error bodies a client over HTTP gets, without a token
//! on the wire. The caller hands over the [`AuthContext`] it acts as (the user's own, or one it
//! built for itself as Nova uses its service user); the callee's auth extractor takes it from
//! the request's extensions, which nothing outside the process can set.

use crate::AuthContext;
use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// The identity of an in-process call (a request extension).
#[derive(Clone)]
pub struct InProcessCaller(pub Arc<AuthContext>);

/// The caller of an in-process request, when it is one.
pub fn in_process_caller(parts: &http::request::Parts) -> Option<Arc<AuthContext>> {
    parts
        .extensions
        .get::<InProcessCaller>()
        .map(|c| c.0.clone())
}

/// An answer of an in-process call: the status and the JSON body (`Null` when empty or not
/// JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }
    /// The message of an error body, whichever service wrote it (`{"NeutronError":
    /// {"message"}}`, `{"itemNotFound": {"message"}}`, Glance's plain `message`, …).
    pub fn message(&self) -> String {
        fn find(v: &Value) -> Option<String> {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(s)) = m.get("message") {
                        return Some(s.clone());
                    }
                    m.values().find_map(find)
                }
                _ => None,
            }
        }
        find(&self.body).unwrap_or_else(|| format!("status {}", self.status))
    }
}

/// Sends `method path` (with its query) to `router` as `caller`, with `body` as JSON.
pub async fn call(
    router: &Router,
    caller: Arc<AuthContext>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    call_with_headers(router, caller, method, path, &[], body).await
}

/// [`call`] with extra request headers (a microversion, say).
pub async fn call_with_headers(
    router: &Router,
    caller: Arc<AuthContext>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let payload = match body {
        Some(b) => {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(b).unwrap_or_default())
        }
        None => Body::empty(),
    };
    let mut req = match req.body(payload) {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: serde_json::json!({"message": format!("bad in-process request: {e}")}),
            }
        }
    };
    req.extensions_mut().insert(InProcessCaller(caller));
    let resp = match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Sends `method path` to `router` as `caller` with a raw body of `content_type`, passed on as
/// it comes (an upload's data stream, not buffered here); answered as [`call`] answers.
pub async fn call_raw(
    router: &Router,
    caller: Arc<AuthContext>,
    method: Method,
    path: &str,
    content_type: &str,
    body: Body,
) -> Answer {
    let mut req = match Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body)
    {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: serde_json::json!({"message": format!("bad in-process request: {e}")}),
            }
        }
    };
    req.extensions_mut().insert(InProcessCaller(caller));
    let resp = match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Sends `GET path` to `router` as `caller` and answers the callee's response as it is, its
/// body not read (a download streamed on to somewhere else).
pub async fn get_response(
    router: &Router,
    caller: Arc<AuthContext>,
    path: &str,
) -> http::Response<Body> {
    let mut req = match Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Body::empty())
    {
        Ok(r) => r,
        Err(e) => {
            let mut resp = http::Response::new(Body::from(format!(
                "{{\"message\": \"bad in-process request: {e}\"}}"
            )));
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            return resp;
        }
    };
    req.extensions_mut().insert(InProcessCaller(caller));
    match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Request as AxRequest;
    use axum::routing::put;

    #[tokio::test]
    async fn raw_bodies_reach_the_callee_as_sent() {
        let router = Router::new().route(
            "/data",
            put(|req: AxRequest| async move {
                let ct = req.headers()[http::header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .to_string();
                let caller = req
                    .extensions()
                    .get::<InProcessCaller>()
                    .map(|c| c.0.user_id.clone());
                let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
                    .await
                    .unwrap();
                axum::Json(serde_json::json!({"ct": ct, "len": bytes.len(), "caller": caller}))
            }),
        );
        let ctx = Arc::new(AuthContext {
            user_id: "u1".into(),
            ..Default::default()
        });
        let a = call_raw(
            &router,
            ctx,
            Method::PUT,
            "/data",
            "application/octet-stream",
            Body::from(vec![7u8; 1000]),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(
            a.body,
            serde_json::json!({"ct": "application/octet-stream", "len": 1000, "caller": "u1"})
        );
    }
}
