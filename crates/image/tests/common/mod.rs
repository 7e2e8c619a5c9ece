//! The identity and image services over one fresh store (SQLite, and PostgreSQL when
//! configured), driven in-process with `oneshot`, with two projects' members and the admin.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use strata_core::config::Config;
use strata_identity::{CatalogService, Identity};
use strata_image::ImageService;
use strata_store::testing::TestDb;
use tower::ServiceExt;

pub const ADMIN_PW: &str = "admin-pw";
pub const PW: &str = "secret-pw";
/// The body limit the stacks are assembled with.
pub const BODY_LIMIT: usize = 114_688;
pub const PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// The image size cap the stacks are assembled with.
pub const MAX_IMAGE: u64 = 1 << 20;

pub struct Stack {
    pub db: TestDb,
    /// Where this stack's image data lives.
    pub images: tempfile::TempDir,
    pub identity: Identity,
    pub app: Router,
    /// Tokens: admin on `admin`, members of `p1` and `p2`, a reader of `p1`.
    pub admin: String,
    pub u1: String,
    pub u2: String,
    pub reader: String,
    pub p1: String,
    pub p2: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: String,
}

impl Resp {
    /// Asserts Glance's (webob's) JSON error body for `status`; returns the message.
    pub fn assert_error(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "{}", self.raw);
        let code = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
        let code = code.replace("Payload Too Large", "Request Entity Too Large");
        assert_eq!(self.json["code"], code.as_str(), "{}", self.raw);
        assert!(self.json["title"].is_string(), "{}", self.raw);
        self.json["message"].as_str().expect("message")
    }
}

impl Stack {
    pub async fn new(db: TestDb) -> Stack {
        let mut cfg = Config::default();
        cfg.identity.password_hash_rounds = 4;
        let identity = Identity::new(db.store.clone(), &cfg, "http://test")
            .await
            .expect("identity");
        identity
            .bootstrap(
                &[
                    CatalogService {
                        kind: "identity",
                        name: "keystone",
                        path: "/identity",
                    },
                    CatalogService {
                        kind: "image",
                        name: "glance",
                        path: "/image",
                    },
                ],
                "RegionOne",
                Some(ADMIN_PW.into()),
            )
            .await
            .expect("bootstrap");
        let images = tempfile::tempdir().expect("tempdir");
        let data = strata_image::LocalStore::new(images.path()).expect("image store");
        let image = ImageService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            Arc::new(data),
            MAX_IMAGE,
        );
        let app = strata_api::assemble(
            vec![("/identity", identity.router()), ("/image", image.router())],
            BODY_LIMIT,
        );
        let mut s = Stack {
            db,
            images,
            identity,
            app,
            admin: String::new(),
            u1: String::new(),
            u2: String::new(),
            reader: String::new(),
            p1: String::new(),
            p2: String::new(),
        };
        s.admin = s.login("admin", ADMIN_PW, "admin").await;
        s.p1 = s
            .create("projects", json!({"project": {"name": "p1"}}))
            .await;
        s.p2 = s
            .create("projects", json!({"project": {"name": "p2"}}))
            .await;
        for (user, project, role) in [
            ("u1", "p1", "member"),
            ("u2", "p2", "member"),
            ("r1", "p1", "reader"),
        ] {
            let uid = s
                .create("users", json!({"user": {"name": user, "password": PW}}))
                .await;
            let pid = if project == "p1" {
                s.p1.clone()
            } else {
                s.p2.clone()
            };
            let rid = strata_identity::db::roles::get_by_name(&s.db.store, None, role)
                .await
                .unwrap()
                .unwrap()
                .id;
            let admin = s.admin.clone();
            let r = s
                .call(
                    Method::PUT,
                    &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{rid}"),
                    Some(&admin),
                    &[],
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        }
        s.u1 = s.login("u1", PW, "p1").await;
        s.u2 = s.login("u2", PW, "p2").await;
        s.reader = s.login("r1", PW, "p1").await;
        s
    }

    /// One stack per backend.
    pub async fn all() -> Vec<Stack> {
        let mut out = Vec::new();
        for db in TestDb::all().await {
            out.push(Stack::new(db).await);
        }
        out
    }

    pub fn label(&self) -> &'static str {
        self.db.label
    }

    async fn create(&self, kind: &str, body: Value) -> String {
        let r = self
            .call(
                Method::POST,
                &format!("/identity/v3/{kind}"),
                Some(&self.admin),
                &[],
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let key = kind.trim_end_matches('s');
        r.json[key]["id"].as_str().unwrap().to_string()
    }

    async fn login(&self, user: &str, pw: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": pw}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self
            .call(
                Method::POST,
                "/identity/v3/auth/tokens",
                None,
                &[],
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "login {user}: {}", r.raw);
        r.headers["x-subject-token"].to_str().unwrap().to_string()
    }

    /// Sends a request; `body` is JSON unless it is a string (sent raw). A `content-type` in
    /// `headers` replaces the JSON default.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if body.is_some() && !has_ct {
            b = b.header("content-type", "application/json");
        }
        let req = match body {
            Some(Value::String(raw)) => b.body(Body::from(raw)).unwrap(),
            Some(v) => b.body(Body::from(v.to_string())).unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            raw: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), &[], None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), &[], Some(body))
            .await
    }
    pub async fn patch(&self, path: &str, token: &str, ops: Value) -> Resp {
        self.call(
            Method::PATCH,
            path,
            Some(token),
            &[("content-type", PATCH)],
            Some(ops),
        )
        .await
    }
    pub async fn put(&self, path: &str, token: &str) -> Resp {
        self.call(Method::PUT, path, Some(token), &[], None).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), &[], None)
            .await
    }

    /// Creates an image as `token`, asserting 201; returns its view.
    pub async fn image(&self, token: &str, body: Value) -> Value {
        let r = self.post("/image/v2/images", token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", self.label(), r.raw);
        r.json
    }

    /// The ids of `GET /image/v2/images?{query}` as `token`.
    pub async fn ids(&self, token: &str, query: &str) -> Vec<String> {
        let r = self.get(&format!("/image/v2/images?{query}"), token).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.raw);
        r.json["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A raw response: status, headers and body bytes.
pub struct RawResp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Stack {
    /// Sends `body` as raw bytes with `headers`; returns the raw response.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> RawResp {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", token);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        RawResp {
            status,
            headers,
            body,
        }
    }

    /// `PUT /image/v2/images/{id}/file` as `token`.
    pub async fn upload(&self, id: &str, token: &str, data: &[u8]) -> RawResp {
        self.raw(
            Method::PUT,
            &format!("/image/v2/images/{id}/file"),
            token,
            &[("content-type", "application/octet-stream")],
            data.to_vec(),
        )
        .await
    }

    /// `GET /image/v2/images/{id}/file` as `token`, with extra headers.
    pub async fn download(&self, id: &str, token: &str, headers: &[(&str, &str)]) -> RawResp {
        self.raw(
            Method::GET,
            &format!("/image/v2/images/{id}/file"),
            token,
            headers,
            Vec::new(),
        )
        .await
    }

    /// The files in the image store (temp files included).
    pub fn stored_files(&self) -> Vec<String> {
        std::fs::read_dir(self.images.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// Polls the image's status until it is `want` (background restores run in a spawned task);
/// panics after a deadline. Returns the image.
pub async fn poll_status(s: &Stack, id: &str, want: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut every = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        every.tick().await;
        let r = s.get(&format!("/image/v2/images/{id}"), &s.u1).await;
        if r.json["status"] == want {
            return r.json;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} never became {want}: {}",
            r.raw
        );
    }
}
