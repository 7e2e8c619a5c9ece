//! The identity and bare-metal services over one fresh store (SQLite, and PostgreSQL when
//! `STRATA_TEST_POSTGRES_URL` is set), driven in-process with `oneshot`, with the admin and a
//! project member; the conductor runs (its power-state sync is driven by the tests).
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_baremetal::BaremetalService;
use strata_core::config::{BaremetalConfig, Config};
use strata_identity::{CatalogService, Identity};
use strata_store::testing::TestDb;
use tower::ServiceExt;

pub const ADMIN_PW: &str = "admin-pw";
pub const PW: &str = "secret-pw";
/// How long `wait_*` polls before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// The version python-ironicclient and gophercloud negotiate to: the newest.
pub const LATEST: &str = "latest";

pub struct Stack {
    pub db: TestDb,
    pub identity: Identity,
    pub svc: BaremetalService,
    pub app: Router,
    pub admin: String,
    pub member: String,
    stop: tokio::sync::watch::Sender<bool>,
    conductor: Option<tokio::task::JoinHandle<()>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: String,
}

impl Resp {
    /// Asserts Ironic's error body (`{"error_message": "<JSON of the fault>"}`) for `status`
    /// and returns the `faultstring`.
    pub fn fault(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.raw);
        let msg = self.json["error_message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error_message: {}", self.raw));
        let inner: Value = serde_json::from_str(msg).expect("error_message is JSON text");
        assert_eq!(
            inner["faultcode"],
            if status.is_client_error() {
                "Client"
            } else {
                "Server"
            }
        );
        assert!(inner["debuginfo"].is_null());
        inner["faultstring"].as_str().unwrap().to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The configuration the stacks run with: fast retries, short timeouts, no periodic sync
/// (tests run it), fast track on so the ramdisk lookup answers in `enroll`.
pub fn test_config() -> BaremetalConfig {
    BaremetalConfig {
        conductor_hostname: "test-conductor".into(),
        sync_power_state_interval: Some(0),
        power_retries: 3,
        power_retry_backoff_ms: 5,
        bmc_request_timeout: 2,
        power_state_change_timeout: 10,
        fast_track: true,
        ..Default::default()
    }
}

impl Stack {
    pub async fn new(db: TestDb) -> Stack {
        Self::with(db, test_config(), true).await
    }

    /// A stack on `db` with `cfg`; `conductor` starts the conductor loop.
    pub async fn with(db: TestDb, cfg: BaremetalConfig, conductor: bool) -> Stack {
        let mut config = Config::default();
        config.identity.password_hash_rounds = 4;
        let identity = Identity::new(db.store.clone(), &config, "http://test")
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
                        kind: "baremetal",
                        name: "ironic",
                        path: "/baremetal",
                    },
                ],
                "RegionOne",
                Some(ADMIN_PW.into()),
            )
            .await
            .expect("bootstrap");
        let svc = BaremetalService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            cfg,
        );
        let app = strata_api::assemble(
            vec![
                ("/identity", identity.router()),
                ("/baremetal", svc.router()),
            ],
            114_688,
        );
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let conductor = conductor.then(|| svc.spawn_conductor(stop_rx));
        let mut s = Stack {
            db,
            identity,
            svc,
            app,
            admin: String::new(),
            member: String::new(),
            stop,
            conductor,
        };
        s.admin = s.login("admin", ADMIN_PW, "admin").await;
        s.member = s.member_token().await;
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

    /// Stops the conductor and hands the store back (a "kill": nothing else is cleaned up).
    pub async fn kill(mut self) -> TestDb {
        let _ = self.stop.send(true);
        if let Some(c) = self.conductor.take() {
            c.abort();
            let _ = c.await;
        }
        self.db
    }

    async fn member_token(&self) -> String {
        let admin = self.admin.clone();
        let r = self
            .call(
                Method::POST,
                "/identity/v3/projects",
                Some(&admin),
                &[],
                Some(json!({"project": {"name": "p1"}})),
            )
            .await;
        if r.status == StatusCode::CONFLICT {
            // A stack reopened on a store that already has the member.
            return self.login("u1", PW, "p1").await;
        }
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let pid = r.json["project"]["id"].as_str().unwrap().to_string();
        let r = self
            .call(
                Method::POST,
                "/identity/v3/users",
                Some(&admin),
                &[],
                Some(json!({"user": {"name": "u1", "password": PW}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let uid = r.json["user"]["id"].as_str().unwrap().to_string();
        let rid = strata_identity::db::roles::get_by_name(&self.db.store, None, "member")
            .await
            .unwrap()
            .unwrap()
            .id;
        let r = self
            .call(
                Method::PUT,
                &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{rid}"),
                Some(&admin),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        self.login("u1", PW, "p1").await
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

    /// Sends a request; `body` is JSON unless it is a string (sent raw).
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
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if body.is_some() {
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

    /// A request as the admin at microversion `mv` to `/baremetal/v1{path}`.
    pub async fn v1(&self, method: Method, mv: &str, path: &str, body: Option<Value>) -> Resp {
        let admin = self.admin.clone();
        self.call(
            method,
            &format!("/baremetal/v1{path}"),
            Some(&admin),
            &[("x-openstack-ironic-api-version", mv)],
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.v1(Method::GET, LATEST, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.v1(Method::POST, LATEST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.v1(Method::PUT, LATEST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.v1(Method::PATCH, LATEST, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.v1(Method::DELETE, LATEST, path, None).await
    }

    /// Creates a node (201) and returns its view.
    pub async fn node(&self, body: Value) -> Value {
        let r = self.post("/nodes", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", self.label(), r.raw);
        r.json
    }

    /// A `fake-hardware` node called `name`.
    pub async fn fake_node(&self, name: &str) -> String {
        let n = self
            .node(json!({"driver": "fake-hardware", "name": name}))
            .await;
        n["uuid"].as_str().unwrap().to_string()
    }

    /// `PUT …/states/provision` with `target`, asserting 202.
    pub async fn provision(&self, node: &str, target: &str) {
        let r = self
            .put(
                &format!("/nodes/{node}/states/provision"),
                json!({ "target": target }),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{target}: {}", r.raw);
    }

    /// `PUT …/states/power` with `target`, asserting 202.
    pub async fn power(&self, node: &str, target: &str) {
        let r = self
            .put(
                &format!("/nodes/{node}/states/power"),
                json!({ "target": target }),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{target}: {}", r.raw);
    }

    /// Polls the node until `cond` holds on its view; panics with the last view at the
    /// deadline.
    pub async fn wait_node(&self, node: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        let mut every = tokio::time::interval(Duration::from_millis(10));
        loop {
            every.tick().await;
            let r = self.get(&format!("/nodes/{node}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
            if cond(&r.json) {
                return r.json;
            }
            assert!(
                Instant::now() < deadline,
                "{}: node {node} never reached {what}: {}",
                self.label(),
                r.raw
            );
        }
    }

    /// Waits for a provision state with no transition in progress.
    pub async fn wait_state(&self, node: &str, state: &str) -> Value {
        self.wait_node(node, state, |n| {
            n["provision_state"] == state && n["target_provision_state"].is_null()
        })
        .await
    }

    /// Waits for a power state with no action in progress.
    pub async fn wait_power(&self, node: &str, power: &str) -> Value {
        self.wait_node(node, power, |n| {
            n["power_state"] == power && n["target_power_state"].is_null()
        })
        .await
    }
}
