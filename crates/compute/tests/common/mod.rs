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
    pub network: strata_network::NetworkService,
    pub image: strata_image::ImageService,
    pub volume: strata_volume::VolumeService,
    pub app: Router,
    /// The image store's directory.
    pub dir: tempfile::TempDir,
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
        let dir = tempfile::tempdir().expect("tempdir");
        let image = strata_image::ImageService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            Arc::new(strata_image::LocalStore::new(dir.path()).expect("image store")),
            1 << 30,
        );
        let network = strata_network::NetworkService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            strata_core::config::NetworkConfig::default(),
        );
        let volume = strata_volume::VolumeService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            Some(Arc::new(
                strata_volume::LocalBackend::new(dir.path().join("volumes"), "qemu-img")
                    .expect("volume store"),
            )),
            Arc::new(image.clone()),
            strata_core::config::VolumeConfig::default(),
        );
        volume.init().await.expect("volume init");
        let svc = svc.with_peers(strata_compute::Peers {
            network: Some(network.router()),
            image: Some(image.router()),
            volume: Some(volume.router()),
        });
        svc.init().await.expect("compute init");
        let app = strata_api::assemble(
            vec![
                ("/identity", identity.router()),
                ("/image", image.router()),
                ("/network", network.router()),
                ("/volume", volume.router()),
                ("/compute", svc.router()),
                ("/agent", svc.agent_router()),
            ],
            BODY_LIMIT,
        );
        let mut s = Stack {
            db,
            identity,
            svc,
            network,
            image,
            volume,
            app,
            dir,
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

/// What server tests boot on: a network with a subnet in `p1`, a public active image, and
/// fake compute hosts run by in-process node agents, with the lifecycle controller running.
pub struct Cloud {
    pub net: String,
    pub subnet: String,
    pub image: String,
    pub hosts: Vec<Arc<strata_agent::FakeHypervisor>>,
    pub stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Stack {
    /// Sets up [`Cloud`] with `hosts` fake hosts (`fake-1` …) of 8 vCPUs, 16 GiB and 100 GB,
    /// and waits until every host has registered.
    pub async fn cloud(&self, hosts: usize) -> Cloud {
        self.cloud_with(hosts, true).await
    }

    /// [`Stack::cloud`], with the lifecycle controller running or not (tests then step it
    /// with [`ComputeService::drive_all`], possibly on another service over the same store).
    pub async fn cloud_with(&self, hosts: usize, controller: bool) -> Cloud {
        let r = self
            .raw(
                Method::POST,
                "/network/v2.0/networks",
                Some(&self.u1),
                &[],
                Some(json!({"network": {"name": "net1"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let net = r.json["network"]["id"].as_str().unwrap().to_string();
        let r = self
            .raw(
                Method::POST,
                "/network/v2.0/subnets",
                Some(&self.u1),
                &[],
                Some(json!({"subnet": {"network_id": net, "cidr": "10.1.0.0/24",
                    "ip_version": 4, "name": "sub1"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let subnet = r.json["subnet"]["id"].as_str().unwrap().to_string();
        let image = self.upload_image("img1", b"fake image bytes").await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut hvs = Vec::new();
        for i in 1..=hosts {
            let hv = Arc::new(strata_agent::FakeHypervisor::new(8, 16384, 100));
            let cp = Arc::new(strata_compute::agent::LocalControlPlane(self.svc.clone()));
            let agent =
                strata_agent::NodeAgent::new(format!("fake-{i}"), "127.0.0.1", cp, hv.clone());
            tokio::spawn(Arc::new(agent).run(rx.clone()));
            hvs.push(hv);
        }
        if controller {
            self.svc.spawn_controller(rx.clone());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            // Registered: the node recorded and its provider's inventory in placement.
            let snap = self.svc.placement().unwrap().snapshot().await.unwrap();
            let n = snap
                .providers
                .values()
                .filter(|p| p.inventories.contains_key("VCPU"))
                .count();
            if n >= hosts {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "hosts did not register"
            );
            self.db
                .store
                .watch(
                    self.db.store.current_revision().await.unwrap(),
                    std::time::Duration::from_millis(200),
                )
                .await
                .unwrap();
        }
        Cloud {
            net,
            subnet,
            image,
            hosts: hvs,
            stop,
        }
    }

    /// A new compute service over the same store and peers, as after a restart of the
    /// process (nothing in memory is shared with [`Stack::svc`]).
    pub fn restarted_compute(&self, cfg: ComputeConfig) -> ComputeService {
        ComputeService::new(
            self.db.store.clone(),
            Arc::new(self.identity.clone()),
            "http://test",
            cfg,
        )
        .with_placement(strata_placement::PlacementService::new(
            self.db.store.clone(),
            Arc::new(self.identity.clone()),
            "http://test",
        ))
        .with_peers(strata_compute::Peers {
            network: Some(self.network.router()),
            image: Some(self.image.router()),
            volume: Some(self.volume.router()),
        })
    }

    /// A public, active image with `data`, uploaded by the admin.
    pub async fn upload_image(&self, name: &str, data: &[u8]) -> String {
        let r = self
            .raw(
                Method::POST,
                "/image/v2/images",
                Some(&self.admin),
                &[],
                Some(
                    json!({"name": name, "disk_format": "raw", "container_format": "bare",
                    "visibility": "public"}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let id = r.json["id"].as_str().unwrap().to_string();
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("/image/v2/images/{id}/file"))
            .header("x-auth-token", &self.admin)
            .header("content-type", "application/octet-stream")
            .body(Body::from(data.to_vec()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        id
    }

    /// Boots a server as `token` on the cloud's network; returns its id (202 asserted).
    pub async fn boot(&self, cloud: &Cloud, token: &str, name: &str, extra: Value) -> String {
        let mut server = json!({"name": name, "imageRef": cloud.image, "flavorRef": "1",
            "networks": [{"uuid": cloud.net}]});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                server[k] = v;
            }
        }
        let r = self
            .post("/servers", token, json!({ "server": server }))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        r.json["server"]["id"].as_str().unwrap().to_string()
    }

    /// Polls the server (as admin) until `pred` holds on its view, or panics after 30 s.
    pub async fn wait_server(&self, id: &str, what: &str, pred: impl Fn(&Resp) -> bool) -> Resp {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let r = self
                .get_mv(&format!("/servers/{id}"), &self.admin, "latest")
                .await;
            if pred(&r) {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server {id} never became {what}: {}",
                r.raw
            );
            let rev = self.db.store.current_revision().await.unwrap();
            self.db
                .store
                .watch(rev, std::time::Duration::from_millis(200))
                .await
                .unwrap();
        }
    }

    /// Waits for the server's `status`.
    pub async fn wait_status(&self, id: &str, status: &str) -> Resp {
        self.wait_server(id, status, |r| r.json["server"]["status"] == status)
            .await
    }

    /// Waits until the server is gone (404).
    pub async fn wait_gone(&self, id: &str) {
        self.wait_server(id, "deleted", |r| r.status == StatusCode::NOT_FOUND)
            .await;
    }
}
