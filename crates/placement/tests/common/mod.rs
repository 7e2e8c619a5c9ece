//! The identity and placement services over one fresh database (SQLite, and PostgreSQL when
//! `STRATA_TEST_POSTGRES_URL` is set), driven in-process with `oneshot`: the admin, a member
//! of a project (no placement rights) and a user with only the `service` role. The database
//! URL is kept so a test can open a second store on it — a second server process's view.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use strata_core::config::Config;
use strata_identity::{CatalogService, Identity};
use strata_placement::PlacementService;
use strata_store::Store;
use tower::ServiceExt;

pub const ADMIN_PW: &str = "admin-pw";
pub const PW: &str = "secret-pw";
pub const BODY_LIMIT: usize = 114_688;

pub struct Stack {
    pub label: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pub store: Store,
    pub identity: Identity,
    pub svc: PlacementService,
    pub app: Router,
    /// Tokens: the admin, a project member, a user with only the `service` role.
    pub admin: String,
    pub member: String,
    pub service: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: String,
}

impl Resp {
    /// Asserts Placement's error body for `status` and returns the first error; `code` is
    /// checked when given (requests at 1.23 or later carry one).
    pub fn assert_error(&self, status: StatusCode, code: Option<&str>) -> &Value {
        assert_eq!(self.status, status, "{}", self.raw);
        let errors = self.json["errors"].as_array().expect("errors list");
        assert_eq!(errors.len(), 1, "{}", self.raw);
        let e = &errors[0];
        assert_eq!(e["status"], status.as_u16(), "{}", self.raw);
        assert_eq!(
            e["title"].as_str(),
            status.canonical_reason(),
            "{}",
            self.raw
        );
        assert!(e["detail"].is_string(), "{}", self.raw);
        assert!(
            e["request_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("req-")),
            "{}",
            self.raw
        );
        if let Some(code) = code {
            assert_eq!(e["code"], code, "{}", self.raw);
        }
        e
    }

    pub fn detail(&self) -> &str {
        self.json["errors"][0]["detail"]
            .as_str()
            .unwrap_or_default()
    }

    pub fn version(&self) -> Option<&str> {
        self.headers
            .get("openstack-api-version")
            .and_then(|v| v.to_str().ok())
    }
}

/// A fresh database URL per backend: a SQLite file (with the directory keeping it) and, when
/// configured, a new PostgreSQL database.
pub async fn databases() -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vec![(
        "sqlite",
        format!("sqlite://{}/test.db", dir.path().display()),
        Some(dir),
    )];
    if let Some(url) = strata_store::testing::fresh_postgres_url().await {
        v.push(("postgres", url, None));
    }
    v
}

impl Stack {
    pub async fn new(label: &'static str, url: String, dir: Option<tempfile::TempDir>) -> Stack {
        let store = Store::connect(&url, 8).await.expect("connect");
        store.migrate().await.expect("migrate");
        let mut cfg = Config::default();
        cfg.identity.password_hash_rounds = 4;
        let identity = Identity::new(store.clone(), &cfg, "http://test")
            .await
            .expect("identity");
        identity
            .bootstrap(
                &[CatalogService {
                    kind: "identity",
                    name: "keystone",
                    path: "/identity",
                }],
                "RegionOne",
                Some(ADMIN_PW.into()),
            )
            .await
            .expect("bootstrap");
        let svc = PlacementService::new(store.clone(), Arc::new(identity.clone()), "http://test");
        let app = strata_api::assemble(
            vec![
                ("/identity", identity.router()),
                ("/placement", svc.router()),
            ],
            BODY_LIMIT,
        );
        let mut s = Stack {
            label,
            url,
            _dir: dir,
            store,
            identity,
            svc,
            app,
            admin: String::new(),
            member: String::new(),
            service: String::new(),
        };
        s.admin = s.login("admin", ADMIN_PW, "admin").await;
        let p1 = s.id("projects", json!({"project": {"name": "p1"}})).await;
        let role = |name: &'static str| {
            let store = s.store.clone();
            async move {
                strata_identity::db::roles::get_by_name(&store, None, name)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("role {name}"))
                    .id
            }
        };
        let service_role = role("service").await;
        let member_role = role("member").await;
        for (user, role) in [("u1", member_role), ("nova", service_role)] {
            let uid = s
                .id("users", json!({"user": {"name": user, "password": PW}}))
                .await;
            let admin = s.admin.clone();
            let r = s
                .call(
                    Method::PUT,
                    &format!("/identity/v3/projects/{p1}/users/{uid}/roles/{role}"),
                    Some(&admin),
                    &[],
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        }
        s.member = s.login("u1", PW, "p1").await;
        s.service = s.login("nova", PW, "p1").await;
        s
    }

    /// One stack per backend.
    pub async fn all() -> Vec<Stack> {
        let mut out = Vec::new();
        for (label, url, dir) in databases().await {
            out.push(Stack::new(label, url, dir).await);
        }
        out
    }

    /// A second placement service on the same database through its own pool: what another
    /// server process sees.
    pub async fn second_process(&self) -> PlacementService {
        let store = Store::connect(&self.url, 8).await.expect("connect");
        PlacementService::new(store, Arc::new(self.identity.clone()), "http://test")
    }

    async fn id(&self, kind: &str, body: Value) -> String {
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

    /// Sends a request; `body` is JSON unless it is a string (sent raw as JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        call(&self.app, method, path, token, headers, body).await
    }

    /// A request as the admin at placement microversion `mv` (`"1.39"`, `"latest"`).
    pub async fn req(&self, method: Method, path: &str, mv: &str, body: Option<Value>) -> Resp {
        let hdr = format!("placement {mv}");
        self.call(
            method,
            &format!("/placement{path}"),
            Some(&self.admin),
            &[("openstack-api-version", hdr.as_str())],
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str, mv: &str) -> Resp {
        self.req(Method::GET, path, mv, None).await
    }
    pub async fn post(&self, path: &str, mv: &str, body: Value) -> Resp {
        self.req(Method::POST, path, mv, Some(body)).await
    }
    pub async fn put(&self, path: &str, mv: &str, body: Value) -> Resp {
        self.req(Method::PUT, path, mv, Some(body)).await
    }
    pub async fn delete(&self, path: &str, mv: &str) -> Resp {
        self.req(Method::DELETE, path, mv, None).await
    }

    /// Creates a provider at the latest version; returns its UUID.
    pub async fn rp(&self, name: &str, parent: Option<&str>) -> String {
        let mut body = json!({"name": name});
        if let Some(p) = parent {
            body["parent_provider_uuid"] = json!(p);
        }
        let r = self.post("/resource_providers", "latest", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", self.label, r.raw);
        r.json["uuid"].as_str().unwrap().to_string()
    }

    /// The provider's current generation.
    pub async fn generation(&self, rp: &str) -> i64 {
        let r = self
            .get(&format!("/resource_providers/{rp}"), "latest")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        r.json["generation"].as_i64().unwrap()
    }

    /// Replaces the provider's inventory with `invs` (`{"VCPU": {"total": 8}, …}`).
    pub async fn inventory(&self, rp: &str, invs: Value) {
        let g = self.generation(rp).await;
        let r = self
            .put(
                &format!("/resource_providers/{rp}/inventories"),
                "latest",
                json!({"resource_provider_generation": g, "inventories": invs}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", self.label, r.raw);
    }

    /// Sets the provider's traits (creating custom ones).
    pub async fn traits(&self, rp: &str, traits: &[&str]) {
        for t in traits.iter().filter(|t| t.starts_with("CUSTOM_")) {
            let r = self
                .req(Method::PUT, &format!("/traits/{t}"), "latest", None)
                .await;
            assert!(r.status.is_success(), "{}", r.raw);
        }
        let g = self.generation(rp).await;
        let r = self
            .put(
                &format!("/resource_providers/{rp}/traits"),
                "latest",
                json!({"traits": traits, "resource_provider_generation": g}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    }

    /// Sets the provider's aggregates.
    pub async fn aggregates(&self, rp: &str, aggs: &[&str]) {
        let g = self.generation(rp).await;
        let r = self
            .put(
                &format!("/resource_providers/{rp}/aggregates"),
                "latest",
                json!({"aggregates": aggs, "resource_provider_generation": g}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    }

    /// `PUT /allocations/{consumer}` at the latest version for a new consumer.
    pub async fn allocate(&self, consumer: &str, allocations: Value) -> Resp {
        self.put(
            &format!("/allocations/{consumer}"),
            "latest",
            json!({"allocations": allocations, "project_id": "p", "user_id": "u",
                   "consumer_generation": null, "consumer_type": "INSTANCE"}),
        )
        .await
    }
}

/// Sends a request to `app`.
pub async fn call(
    app: &Router,
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
    let resp = app.clone().oneshot(req).await.unwrap();
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

/// A fresh dashed UUID.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
