//! The identity and network services over one fresh store (SQLite, and PostgreSQL when
//! `STRATA_TEST_POSTGRES_URL` is set), driven in-process with `oneshot`, with two projects'
//! members, a reader and the admin.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use strata_core::config::{Config, NetworkConfig};
use strata_identity::{CatalogService, Identity};
use strata_network::NetworkService;
use strata_store::testing::TestDb;
use tower::ServiceExt;

pub const ADMIN_PW: &str = "admin-pw";
pub const PW: &str = "secret-pw";
/// The body limit the stacks are assembled with.
pub const BODY_LIMIT: usize = 114_688;

pub struct Stack {
    pub db: TestDb,
    pub identity: Identity,
    pub network: NetworkService,
    pub app: Router,
    /// Tokens: admin on `admin`, members of `p1` and `p2`, a reader of `p1`.
    pub admin: String,
    pub u1: String,
    pub u2: String,
    pub reader: String,
    /// Project ids: `admin`, `p1`, `p2`.
    pub admin_project: String,
    pub p1: String,
    pub p2: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: String,
}

impl Resp {
    /// Asserts Neutron's error body `{"NeutronError": {"type", "message", "detail"}}` with
    /// `status`; returns the type.
    pub fn assert_error(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "{}", self.raw);
        let e = &self.json["NeutronError"];
        assert!(e.is_object(), "not a NeutronError: {}", self.raw);
        assert!(e["message"].is_string(), "{}", self.raw);
        assert!(e["detail"].is_string(), "{}", self.raw);
        e["type"].as_str().expect("type")
    }

    /// The NeutronError message.
    pub fn message(&self) -> &str {
        self.json["NeutronError"]["message"]
            .as_str()
            .unwrap_or_default()
    }

    /// Asserts `status`; returns the JSON body.
    pub fn ok(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "{}", self.raw);
        &self.json
    }
}

impl Stack {
    pub async fn new(db: TestDb) -> Stack {
        Self::with_config(db, NetworkConfig::default()).await
    }

    pub async fn with_config(db: TestDb, net_cfg: NetworkConfig) -> Stack {
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
                        kind: "network",
                        name: "neutron",
                        path: "/network",
                    },
                ],
                "RegionOne",
                Some(ADMIN_PW.into()),
            )
            .await
            .expect("bootstrap");
        let network = NetworkService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            net_cfg,
        );
        let app = strata_api::assemble(
            vec![
                ("/identity", identity.router()),
                ("/network", network.router()),
            ],
            BODY_LIMIT,
        );
        let mut s = Stack {
            db,
            identity,
            network,
            app,
            admin: String::new(),
            u1: String::new(),
            u2: String::new(),
            reader: String::new(),
            admin_project: String::new(),
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
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        }
        s.u1 = s.login("u1", PW, "p1").await;
        s.u2 = s.login("u2", PW, "p2").await;
        s.reader = s.login("r1", PW, "p1").await;
        let r = s
            .call(
                Method::GET,
                "/identity/v3/auth/tokens",
                Some(&s.admin),
                Some(("x-subject-token", s.admin.as_str())),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        s.admin_project = r.json["token"]["project"]["id"]
            .as_str()
            .unwrap()
            .to_string();
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

    /// One stack per backend, with a network configuration.
    pub async fn all_with(cfg: NetworkConfig) -> Vec<Stack> {
        let mut out = Vec::new();
        for db in TestDb::all().await {
            out.push(Stack::with_config(db, cfg.clone()).await);
        }
        out
    }

    pub fn label(&self) -> &'static str {
        self.db.label
    }

    async fn create(&self, kind: &str, body: Value) -> String {
        let r = self
            .send(
                Method::POST,
                &format!("/identity/v3/{kind}"),
                Some(&self.admin),
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
            .send(Method::POST, "/identity/v3/auth/tokens", None, Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "login {user}: {}", r.raw);
        r.headers["x-subject-token"].to_str().unwrap().to_string()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        header: Option<(&str, &str)>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        if let Some((k, v)) = header {
            b = b.header(k, v);
        }
        self.run(b.body(Body::empty()).unwrap()).await
    }

    /// Sends a request; `body` is JSON unless it is a string (sent raw, as JSON content).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = match body {
            Some(Value::String(raw)) => b.body(Body::from(raw)).unwrap(),
            Some(v) => b.body(Body::from(v.to_string())).unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.run(req).await
    }

    async fn run(&self, req: Request<Body>) -> Resp {
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

    /// Paths are relative to `/network` (`/v2.0/networks`), or absolute when they start with
    /// `/network` or `/identity`.
    fn path(p: &str) -> String {
        if p.starts_with("/network") || p.starts_with("/identity") {
            p.to_string()
        } else {
            format!("/network{p}")
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, &Self::path(path), Some(token), None)
            .await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, &Self::path(path), Some(token), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PUT, &Self::path(path), Some(token), Some(body))
            .await
    }
    /// A PUT without a body (tags).
    pub async fn put_empty(&self, path: &str, token: &str) -> Resp {
        self.send(Method::PUT, &Self::path(path), Some(token), None)
            .await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, &Self::path(path), Some(token), None)
            .await
    }
    /// A request without a token.
    pub async fn anonymous(&self, method: Method, path: &str) -> Resp {
        self.send(method, &Self::path(path), None, None).await
    }

    /// Creates `{"<key>": body}` in `collection` as `token`, asserting 201; returns the view.
    pub async fn create_in(&self, collection: &str, key: &str, token: &str, body: Value) -> Value {
        let r = self
            .post(&format!("/v2.0/{collection}"), token, json!({ key: body }))
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{} create {key}: {}",
            self.label(),
            r.raw
        );
        r.json[key].clone()
    }

    /// Creates a network named `name` as `token`; returns its view.
    pub async fn network(&self, token: &str, name: &str) -> Value {
        self.create_in("networks", "network", token, json!({"name": name}))
            .await
    }

    /// Creates a network with extra attributes as `token`; returns its view.
    pub async fn network_with(&self, token: &str, body: Value) -> Value {
        self.create_in("networks", "network", token, body).await
    }

    /// Creates a security group named `name` as `token`; returns its view.
    pub async fn security_group(&self, token: &str, name: &str) -> Value {
        self.create_in(
            "security-groups",
            "security_group",
            token,
            json!({"name": name}),
        )
        .await
    }

    /// The ids of `GET /v2.0/{collection}?{query}` as `token`.
    pub async fn ids(&self, token: &str, collection: &str, query: &str) -> Vec<String> {
        let r = self
            .get(&format!("/v2.0/{collection}?{query}"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{collection}?{query}: {}", r.raw);
        let key = collection.replace('-', "_");
        r.json[key.as_str()]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.raw))
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The string at `v[key]`.
pub fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}
