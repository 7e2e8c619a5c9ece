//! The identity and compute services over one fresh store (SQLite, and PostgreSQL when
//! `STRATA_TEST_POSTGRES_URL` is set), driven in-process with `oneshot` through the shared
//! HTTP stack, with the admin, two members of `p1` (`u1`, `u1b`), a member of `p2` (`u2`) and
//! a reader of `p1`.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use strata_compute::{ComputeConfig, ComputeService};
use strata_core::config::Config;
use strata_identity::{CatalogService, Identity};
use strata_store::testing::TestDb;
use tower::ServiceExt;

pub const ADMIN_PW: &str = "admin-pw";
pub const PW: &str = "secret-pw";
pub const BODY_LIMIT: usize = 114_688;

pub struct Stack {
    pub db: TestDb,
    pub identity: Identity,
    pub svc: ComputeService,
    pub app: Router,
    /// Tokens.
    pub admin: String,
    pub u1: String,
    pub u1b: String,
    pub u2: String,
    pub reader: String,
    /// Project and user ids.
    pub admin_project: String,
    pub p1: String,
    pub p2: String,
    pub u1_id: String,
    pub u1b_id: String,
    pub u2_id: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: String,
}

impl Resp {
    /// Asserts Nova's fault body `{"<faultName>": {"code": N, "message": "..."}}` for
    /// `status` (Keystone's `{"error": …}` for 401); returns the message.
    pub fn assert_error(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "{}", self.raw);
        let name = match status.as_u16() {
            400 => "badRequest",
            401 => "error",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflictingRequest",
            413 => "overLimit",
            415 => "badMediaType",
            _ => "computeFault",
        };
        let obj = self.json.as_object().expect("a JSON object body");
        assert_eq!(obj.len(), 1, "one fault key: {}", self.raw);
        let fault = &self.json[name];
        assert!(fault.is_object(), "fault {name}: {}", self.raw);
        assert_eq!(fault["code"], status.as_u16(), "{}", self.raw);
        fault["message"].as_str().expect("message")
    }

    /// The echoed `OpenStack-API-Version`, if any.
    pub fn version(&self) -> Option<&str> {
        self.headers
            .get("openstack-api-version")
            .and_then(|v| v.to_str().ok())
    }
}

impl Stack {
    pub async fn new(db: TestDb) -> Stack {
        Self::with_config(db, ComputeConfig::default()).await
    }

    pub async fn with_config(db: TestDb, ccfg: ComputeConfig) -> Stack {
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
                        kind: "compute",
                        name: "nova",
                        path: "/compute/v2.1",
                    },
                ],
                "RegionOne",
                Some(ADMIN_PW.into()),
            )
            .await
            .expect("bootstrap");
        let svc = ComputeService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            ccfg,
        )
        .with_placement(strata_placement::PlacementService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
        ));
        svc.init().await.expect("compute init");
        let app = strata_api::assemble(
            vec![
                ("/identity", identity.router()),
                ("/compute", svc.router()),
                ("/agent", svc.agent_router()),
            ],
            BODY_LIMIT,
        );
        let mut s = Stack {
            db,
            identity,
            svc,
            app,
            admin: String::new(),
            u1: String::new(),
            u1b: String::new(),
            u2: String::new(),
            reader: String::new(),
            admin_project: String::new(),
            p1: String::new(),
            p2: String::new(),
            u1_id: String::new(),
            u1b_id: String::new(),
            u2_id: String::new(),
        };
        s.admin = s.login("admin", ADMIN_PW, "admin").await;
        s.admin_project = s.token_project(&s.admin.clone()).await;
        s.p1 = s
            .create("projects", json!({"project": {"name": "p1"}}))
            .await;
        s.p2 = s
            .create("projects", json!({"project": {"name": "p2"}}))
            .await;
        let mut ids = Vec::new();
        for (user, project, role) in [
            ("u1", "p1", "member"),
            ("u1b", "p1", "member"),
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
                .raw(
                    Method::PUT,
                    &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{rid}"),
                    Some(&admin),
                    &[],
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
            ids.push(uid);
        }
        s.u1_id = ids[0].clone();
        s.u1b_id = ids[1].clone();
        s.u2_id = ids[2].clone();
        s.u1 = s.login("u1", PW, "p1").await;
        s.u1b = s.login("u1b", PW, "p1").await;
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

    async fn token_project(&self, token: &str) -> String {
        let r = self
            .raw(
                Method::GET,
                "/identity/v3/auth/tokens",
                Some(token),
                &[("x-subject-token", token)],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        r.json["token"]["project"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn create(&self, kind: &str, body: Value) -> String {
        let r = self
            .raw(
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

    pub async fn login(&self, user: &str, pw: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": pw}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self
            .raw(
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
    pub async fn raw(
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

    /// A request to `/compute/v2.1{rest}` at microversion `mv` (none sent when `None`).
    pub async fn call(
        &self,
        method: Method,
        rest: &str,
        token: &str,
        mv: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let hdr = mv.map(|v| format!("compute {v}"));
        let headers: Vec<(&str, &str)> = match &hdr {
            Some(h) => vec![("openstack-api-version", h.as_str())],
            None => vec![],
        };
        self.raw(
            method,
            &format!("/compute/v2.1{rest}"),
            Some(token),
            &headers,
            body,
        )
        .await
    }

    pub async fn get(&self, rest: &str, token: &str) -> Resp {
        self.call(Method::GET, rest, token, None, None).await
    }
    pub async fn get_mv(&self, rest: &str, token: &str, mv: &str) -> Resp {
        self.call(Method::GET, rest, token, Some(mv), None).await
    }
    pub async fn post(&self, rest: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, rest, token, None, Some(body)).await
    }
    pub async fn post_mv(&self, rest: &str, token: &str, mv: &str, body: Value) -> Resp {
        self.call(Method::POST, rest, token, Some(mv), Some(body))
            .await
    }
    pub async fn put_mv(&self, rest: &str, token: &str, mv: &str, body: Value) -> Resp {
        self.call(Method::PUT, rest, token, Some(mv), Some(body))
            .await
    }
    pub async fn delete(&self, rest: &str, token: &str) -> Resp {
        self.call(Method::DELETE, rest, token, None, None).await
    }
    pub async fn delete_mv(&self, rest: &str, token: &str, mv: &str) -> Resp {
        self.call(Method::DELETE, rest, token, Some(mv), None).await
    }

    /// The change-log entries of `kind` recorded so far.
    pub async fn changes(&self, kind: &str) -> Vec<strata_store::Change> {
        self.db
            .store
            .changes_since(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.kind == kind)
            .collect()
    }
}
