//! The identity, image and volume services over one fresh store (SQLite, and PostgreSQL when
//! `STRATA_TEST_POSTGRES_URL` is set), driven in-process with `oneshot`, with two projects'
//! members, a reader and the admin. Volume data lives in a [`LocalBackend`] over a tempdir
//! (with the system's `qemu-img`), image data in a `LocalStore` over another.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_core::config::{Config, VolumeConfig};
use strata_identity::{CatalogService, Identity};
use strata_image::ImageService;
use strata_store::testing::TestDb;
use strata_volume::{LocalBackend, VolumeService};
use tower::ServiceExt;

pub const ADMIN_PW: &str = "admin-pw";
pub const PW: &str = "secret-pw";
/// The body limit the stacks are assembled with.
pub const BODY_LIMIT: usize = 114_688;
/// The image size cap the stacks are assembled with.
pub const MAX_IMAGE: u64 = 8 << 20;
/// How long `wait_*` polls before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);
pub const GIB: u64 = 1 << 30;

pub struct Stack {
    pub db: TestDb,
    /// Where this stack's image data lives.
    pub images: tempfile::TempDir,
    /// Where this stack's volume data lives (the `LocalBackend`'s directory).
    pub volumes: tempfile::TempDir,
    pub identity: Identity,
    pub image: ImageService,
    pub svc: VolumeService,
    pub app: Router,
    /// Tokens: admin on `admin`, members of `p1` and `p2`, a reader of `p1`.
    pub admin: String,
    pub u1: String,
    pub u2: String,
    pub reader: String,
    /// Project ids.
    pub admin_project: String,
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
    /// Asserts Cinder's fault body `{"<faultName>": {"code": N, "message": "..."}}` for
    /// `status` (Keystone's `{"error": …}` for 401); returns the message.
    pub fn assert_error(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "{}", self.raw);
        let name = match status.as_u16() {
            400 => "badRequest",
            401 => "error",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            406 => "computeFault",
            409 => "conflictingRequest",
            413 => "overLimit",
            415 => "badMediaType",
            501 => "notImplemented",
            503 => "serviceUnavailable",
            _ => "computeFault",
        };
        let obj = self.json.as_object().expect("a JSON object body");
        assert_eq!(obj.len(), 1, "one fault key: {}", self.raw);
        let fault = &self.json[name];
        assert!(fault.is_object(), "fault {name}: {}", self.raw);
        assert_eq!(fault["code"], status.as_u16(), "{}", self.raw);
        fault["message"].as_str().expect("message")
    }

    /// The echoed microversion header, if any.
    pub fn version(&self) -> Option<&str> {
        self.headers
            .get("openstack-api-version")
            .and_then(|v| v.to_str().ok())
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
                    CatalogService {
                        kind: "block-storage",
                        name: "cinder",
                        path: "/volume/v3/$(project_id)s",
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
        let volumes = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::new(volumes.path(), "qemu-img").expect("volume backend");
        let svc = VolumeService::new(
            db.store.clone(),
            Arc::new(identity.clone()),
            "http://test",
            Some(Arc::new(backend)),
            Arc::new(image.clone()),
            VolumeConfig::default(),
        );
        svc.init().await.expect("volume init");
        let app = strata_api::assemble(
            vec![
                ("/identity", identity.router()),
                ("/image", image.router()),
                ("/volume", svc.router()),
            ],
            BODY_LIMIT,
        );
        let mut s = Stack {
            db,
            images,
            volumes,
            identity,
            image,
            svc,
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
        s.admin_project = s.token_project(&s.admin.clone()).await;
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

    /// The volume data directory.
    pub fn data_dir(&self) -> &Path {
        self.volumes.path()
    }

    /// The files in the volume backend's directory (scratch and temp files included).
    pub fn volume_files(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.volumes.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    /// The path of a volume's data file, from its `provider_location`.
    pub async fn volume_path(&self, id: &str) -> PathBuf {
        let v = strata_volume::db::get_volume(self.svc.store(), id)
            .await
            .unwrap()
            .expect("volume row");
        let handle = v.provider_location.expect("provider_location");
        self.volumes.path().join(handle)
    }

    /// The project a token is scoped to.
    async fn token_project(&self, token: &str) -> String {
        let r = self
            .call(
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

    /// The project a token of this stack is scoped to (admin, u1/reader → p1, u2 → p2).
    pub fn project_of(&self, token: &str) -> &str {
        if token == self.admin {
            &self.admin_project
        } else if token == self.u2 {
            &self.p2
        } else {
            &self.p1
        }
    }

    /// `/volume/v3/{project of token}{rest}`.
    pub fn url(&self, token: &str, rest: &str) -> String {
        format!("/volume/v3/{}{rest}", self.project_of(token))
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

    /// A request at microversion `mv` (`"3.27"`, `"latest"`), or none when `None`.
    pub async fn call_mv(
        &self,
        method: Method,
        path: &str,
        token: &str,
        mv: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let hdr = mv.map(|v| format!("volume {v}"));
        let headers: Vec<(&str, &str)> = match &hdr {
            Some(h) => vec![("openstack-api-version", h.as_str())],
            None => vec![],
        };
        self.call(method, path, Some(token), &headers, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), &[], None).await
    }
    pub async fn get_mv(&self, path: &str, token: &str, mv: &str) -> Resp {
        self.call_mv(Method::GET, path, token, Some(mv), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), &[], Some(body))
            .await
    }
    pub async fn post_mv(&self, path: &str, token: &str, mv: &str, body: Value) -> Resp {
        self.call_mv(Method::POST, path, token, Some(mv), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(token), &[], Some(body))
            .await
    }
    pub async fn put_mv(&self, path: &str, token: &str, mv: &str, body: Value) -> Resp {
        self.call_mv(Method::PUT, path, token, Some(mv), Some(body))
            .await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), &[], None)
            .await
    }
    pub async fn delete_mv(&self, path: &str, token: &str, mv: &str) -> Resp {
        self.call_mv(Method::DELETE, path, token, Some(mv), None)
            .await
    }

    /// `POST .../volumes` as `token` with `{"volume": body}`, asserting 202; returns the view.
    pub async fn create_volume(&self, token: &str, body: Value) -> Value {
        let r = self
            .post(&self.url(token, "/volumes"), token, json!({"volume": body}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "{}: {}",
            self.label(),
            r.raw
        );
        r.json["volume"].clone()
    }

    /// A blank volume of `size` GiB as `token`, waited to `available`; returns its view.
    pub async fn volume(&self, token: &str, size: u64) -> Value {
        let v = self.create_volume(token, json!({"size": size})).await;
        self.wait_volume(token, v["id"].as_str().unwrap(), "available")
            .await
    }

    /// Polls `GET .../volumes/{id}` as `token` until its status is `want`; panics on a
    /// deadline or when it reaches `error` unexpectedly. Returns the volume.
    pub async fn wait_volume(&self, token: &str, id: &str, want: &str) -> Value {
        self.wait(token, &format!("/volumes/{id}"), "volume", want)
            .await
    }

    /// Polls `GET .../snapshots/{id}` as `token` until its status is `want`.
    pub async fn wait_snapshot(&self, token: &str, id: &str, want: &str) -> Value {
        self.wait(token, &format!("/snapshots/{id}"), "snapshot", want)
            .await
    }

    /// Polls until `GET .../{kind}s/{id}` answers 404.
    pub async fn wait_gone(&self, token: &str, rest: &str) {
        let deadline = Instant::now() + DEADLINE;
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            let r = self.get(&self.url(token, rest), token).await;
            if r.status == StatusCode::NOT_FOUND {
                return;
            }
            assert!(Instant::now() < deadline, "{rest} never went: {}", r.raw);
        }
    }

    async fn wait(&self, token: &str, rest: &str, key: &str, want: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            let r = self.get(&self.url(token, rest), token).await;
            assert_eq!(r.status, StatusCode::OK, "{rest}: {}", r.raw);
            let status = r.json[key]["status"].as_str().unwrap_or_default();
            if status == want {
                return r.json[key].clone();
            }
            assert!(
                !(status == "error" && want != "error"),
                "{}: {rest} went to error waiting for {want}: {}",
                self.label(),
                r.raw
            );
            assert!(
                Instant::now() < deadline,
                "{}: {rest} never became {want}: {}",
                self.label(),
                r.raw
            );
        }
    }

    /// Creates an image as `token` through /image/v2, uploads `data` and returns its id.
    pub async fn image_with(&self, token: &str, body: Value, data: &[u8]) -> String {
        let r = self.post("/image/v2/images", token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", self.label(), r.raw);
        let id = r.json["id"].as_str().unwrap().to_string();
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("/image/v2/images/{id}/file"))
            .header("x-auth-token", token)
            .header("content-type", "application/octet-stream")
            .body(Body::from(data.to_vec()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "upload {id}");
        id
    }
}

/// A qcow2 image of `virtual_bytes`, made with `qemu-img create -f qcow2`.
pub fn qcow2_image(virtual_bytes: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg(virtual_bytes.to_string())
        .output()
        .expect("qemu-img");
    assert!(out.status.success(), "{out:?}");
    std::fs::read(path).unwrap()
}

/// Bytes allocated on disk for `path` (sparse files allocate less than their length).
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}
