//! A whole identity stack for integration tests: the real router over a fresh, bootstrapped
//! store (SQLite, and PostgreSQL when configured), driven in-process with `oneshot`.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use strata_core::config::Config;
use strata_identity::{CatalogService, Identity};
use strata_store::testing::TestDb;
use tower::ServiceExt;

pub const ADMIN_PW: &str = "admin-pw";

pub struct Stack {
    pub db: TestDb,
    pub identity: Identity,
    pub app: Router,
}

/// Configuration for tests: fast bcrypt.
pub fn test_config() -> Config {
    let mut cfg = Config::default();
    cfg.identity.password_hash_rounds = 4;
    cfg
}

impl Stack {
    pub async fn new(db: TestDb, cfg: Config) -> Stack {
        let identity = Identity::new(db.store.clone(), &cfg, "http://test")
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
        let app = strata_api::assemble(vec![("/identity", identity.router())], 114_688);
        Stack { db, identity, app }
    }

    /// One stack per backend (SQLite; PostgreSQL when STRATA_TEST_POSTGRES_URL is set).
    pub async fn all(cfg: Config) -> Vec<Stack> {
        let mut out = Vec::new();
        for db in TestDb::all().await {
            out.push(Stack::new(db, cfg.clone()).await);
        }
        out
    }

    pub fn label(&self) -> &'static str {
        self.db.label
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
        let req = match body {
            Some(Value::String(raw)) => b
                .header("content-type", "application/json")
                .body(Body::from(raw))
                .unwrap(),
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            json,
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
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), &[], Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str) -> Resp {
        self.call(Method::PUT, path, Some(token), &[], None).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), &[], None)
            .await
    }

    /// Issues a password token; `scope` is a Keystone scope object or `None` (unscoped).
    pub async fn password_token(
        &self,
        user: &str,
        domain: &str,
        pw: &str,
        scope: Option<Value>,
    ) -> Resp {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": domain}, "password": pw}}}});
        if let Some(s) = scope {
            auth["scope"] = s;
        }
        self.call(
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            &[],
            Some(json!({"auth": auth})),
        )
        .await
    }

    /// A project-scoped token for `user` on `project` (names, domain `default`).
    pub async fn login(&self, user: &str, pw: &str, project: &str) -> String {
        let r = self
            .password_token(user, "default", pw, Some(project_scope(project)))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "login {user}: {}", r.raw);
        r.token()
    }

    /// An unscoped token for `user` (a name in domain `default`).
    pub async fn login_unscoped(&self, user: &str, pw: &str) -> String {
        let r = self
            .password_token(user, "default", pw, Some(json!("unscoped")))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "login {user}: {}", r.raw);
        r.token()
    }

    /// The bootstrap admin's token on project `admin`.
    pub async fn admin(&self) -> String {
        self.login("admin", ADMIN_PW, "admin").await
    }

    /// Validates `subject` as the admin: the status of `GET /v3/auth/tokens`.
    pub async fn validate(&self, admin: &str, subject: &str) -> Resp {
        self.call(
            Method::GET,
            "/identity/v3/auth/tokens",
            Some(admin),
            &[("x-subject-token", subject)],
            None,
        )
        .await
    }

    /// Creates a user in domain `default`, returning its id.
    pub async fn create_user(&self, admin: &str, name: &str, pw: &str) -> String {
        let r = self
            .post(
                "/identity/v3/users",
                admin,
                json!({"user": {"name": name, "password": pw, "domain_id": "default"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        r.json["user"]["id"].as_str().unwrap().to_string()
    }

    /// Creates a project in domain `default`, returning its id.
    pub async fn create_project(&self, admin: &str, name: &str) -> String {
        let r = self
            .post(
                "/identity/v3/projects",
                admin,
                json!({"project": {"name": name, "domain_id": "default"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        r.json["project"]["id"].as_str().unwrap().to_string()
    }

    /// The id of a role by name.
    pub async fn role_id(&self, name: &str) -> String {
        strata_identity::db::roles::get_by_name(&self.db.store, None, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("role {name}"))
            .id
    }

    /// The id of a project of domain `default` by name.
    pub async fn project_id(&self, name: &str) -> String {
        strata_identity::db::projects::get_by_name(&self.db.store, "default", name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("project {name}"))
            .id
    }

    /// The id of a user of domain `default` by name.
    pub async fn user_id(&self, name: &str) -> String {
        strata_identity::db::users::get_by_name(&self.db.store, "default", name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("user {name}"))
            .id
    }

    /// Grants `role` (a name) to a user on a project directly through the store layer, so tests
    /// of other endpoints don't depend on the assignment API.
    pub async fn grant(&self, user_id: &str, project_id: &str, role: &str) {
        let role_id = self.role_id(role).await;
        strata_identity::db::assignments::add(
            &self.db.store,
            &strata_identity::db::assignments::Assignment {
                kind: strata_identity::db::assignments::Kind::UserProject,
                actor_id: user_id.into(),
                target_id: project_id.into(),
                role_id,
                inherited: false,
            },
        )
        .await
        .unwrap();
        self.identity.changed().await.unwrap();
    }
}

impl Stack {
    /// Grants `role` (a name) to a user on the system directly through the store layer.
    pub async fn grant_system(&self, user_id: &str, role: &str) {
        let role_id = self.role_id(role).await;
        strata_identity::db::assignments::add(
            &self.db.store,
            &strata_identity::db::assignments::Assignment {
                kind: strata_identity::db::assignments::Kind::UserSystem,
                actor_id: user_id.into(),
                target_id: strata_identity::db::assignments::SYSTEM.into(),
                role_id,
                inherited: false,
            },
        )
        .await
        .unwrap();
        self.identity.changed().await.unwrap();
    }

    /// A system-scoped token for `user` (a name in domain `default`).
    pub async fn system_login(&self, user: &str, pw: &str) -> String {
        let r = self
            .password_token(user, "default", pw, Some(json!({"system": {"all": true}})))
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "system login {user}: {}",
            r.raw
        );
        r.token()
    }
}

pub fn project_scope(name: &str) -> Value {
    json!({"project": {"name": name, "domain": {"id": "default"}}})
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: String,
}

impl Resp {
    pub fn token(&self) -> String {
        self.headers
            .get("x-subject-token")
            .expect("x-subject-token")
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Asserts Keystone's error body with `code` equal to the status.
    pub fn assert_error(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "{}", self.raw);
        assert_eq!(self.json["error"]["code"], status.as_u16(), "{}", self.raw);
        assert!(self.json["error"]["title"].is_string(), "{}", self.raw);
        self.json["error"]["message"].as_str().expect("message")
    }
}
