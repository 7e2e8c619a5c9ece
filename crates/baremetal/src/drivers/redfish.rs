//! The `redfish` hardware type: DMTF Redfish over HTTP(S), spoken with reqwest on rustls.
//!
//! What it does, as Ironic's driver (through sushy) does:
//! - `redfish_address` as Ironic accepts it (`https://host:port`, a bare host meaning https,
//!   an optional path being the service root, default `/redfish/v1`), `redfish_system_id` the
//!   system's path (`/redfish/v1/Systems/<id>`; a bare id is taken relative to the root; absent,
//!   the BMC's only system);
//! - authentication by session (`POST SessionService/Sessions` → `X-Auth-Token`, logged in
//!   again once on a 401) with a fall back to HTTP basic when the BMC has no session service
//!   (`redfish_auth_type` `auto`, the default; `session` and `basic` force one);
//! - power from `PowerState`, actions through `ComputerSystem.Reset` (`On`, `ForceOff`,
//!   `GracefulShutdown`, `ForceRestart`, `GracefulRestart`), the boot override through a
//!   `PATCH` of `Boot` with `If-Match` when the BMC gave an `ETag` (read again and retried
//!   once on a 412);
//! - TLS verification on unless `redfish_verify_ca` is false; a path there is the CA bundle
//!   (a file, or a directory of PEM files) trusted instead of the built-in roots.
//!
//! One reqwest client is shared by every node with the same verification setting (connection
//! pools and TLS configuration are per client); a node's driver keeps its session token.

use super::{
    info_str, BmcDriver, BmcError, BmcResult, BootDevice, BootSetting, Power, PowerAction,
};
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// `driver_info` keys, as `/v1/drivers/redfish/properties` lists them.
pub const PROPERTIES: &[(&str, &str)] = &[
    (
        "redfish_address",
        "The URL address to the Redfish controller. It must include the authority portion of \
         the URL, and can optionally include the scheme. If the scheme is missing, https is \
         assumed. For example: https://mgmt.vendor.com. Required.",
    ),
    (
        "redfish_system_id",
        "The canonical path to the ComputerSystem resource that the driver will interact with. \
         It should include the root service, version and the unique resource path to the \
         ComputerSystem. This property is only required if target BMC manages more than one \
         ComputerSystem. Otherwise ironic will pick the only available ComputerSystem \
         automatically. For example: /redfish/v1/Systems/1. Optional.",
    ),
    (
        "redfish_username",
        "User account with admin/server-profile access privilege. Although this property is \
         not mandatory it's highly recommended to set a username. Optional",
    ),
    (
        "redfish_password",
        "User account password. Although this property is not mandatory, it's highly \
         recommended to set a password. Optional",
    ),
    (
        "redfish_verify_ca",
        "Either a Boolean value, a path to a CA_BUNDLE file or directory with certificates of \
         trusted CAs. If set to True the driver will verify the host certificates; if False the \
         driver will ignore verifying the SSL certificate. If it's a path the driver will use \
         the specified certificate or one of the certificates in the directory. Defaults to \
         True. Optional",
    ),
    (
        "redfish_auth_type",
        "Redfish HTTP client authentication method. Can be \"basic\", \"session\" or \"auto\". \
         The \"auto\" mode first tries \"session\" and falls back to \"basic\" if session \
         authentication is not supported by the Redfish BMC. Optional",
    ),
];

/// How the BMC's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verify {
    /// Against the built-in roots.
    On,
    /// Not at all.
    Off,
    /// Against this bundle (a file or a directory of PEM files) only.
    Ca(PathBuf),
}

/// The reqwest clients, one per verification setting.
pub struct HttpClients {
    timeout: Duration,
    clients: Mutex<HashMap<Verify, reqwest::Client>>,
}

impl HttpClients {
    pub fn new(timeout: Duration) -> HttpClients {
        HttpClients {
            timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, verify: &Verify) -> BmcResult<reqwest::Client> {
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(verify)
        {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none());
        match verify {
            Verify::On => {}
            Verify::Off => b = b.danger_accept_invalid_certs(true),
            Verify::Ca(path) => {
                b = b.tls_built_in_root_certs(false);
                for cert in read_bundle(path)? {
                    b = b.add_root_certificate(cert);
                }
            }
        }
        let client = b
            .build()
            .map_err(|e| BmcError::InvalidDriverInfo(format!("building the HTTP client: {e}")))?;
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(verify.clone(), client.clone());
        Ok(client)
    }
}

/// The certificates of a CA bundle file, or of every file in a directory.
fn read_bundle(path: &std::path::Path) -> BmcResult<Vec<reqwest::Certificate>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| bad_ca(path, &e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files {
        let pem = std::fs::read(&f).map_err(|e| bad_ca(&f, &e.to_string()))?;
        out.extend(
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad_ca(&f, &e.to_string()))?,
        );
    }
    if out.is_empty() {
        return Err(bad_ca(path, "no certificate found"));
    }
    Ok(out)
}

fn bad_ca(path: &std::path::Path, why: &str) -> BmcError {
    BmcError::InvalidDriverInfo(format!(
        "Cannot read the CA bundle {} named by driver_info/redfish_verify_ca: {why}",
        path.display()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthType {
    Auto,
    Session,
    Basic,
}

/// What a session with the BMC has established.
#[derive(Default)]
struct Session {
    token: Option<String>,
    /// `auto` found no session service: basic from now on.
    basic: bool,
    /// The system's path, once known.
    system: Option<String>,
}

/// The driver of one Redfish node.
pub struct RedfishDriver {
    node: String,
    /// `scheme://authority`.
    address: String,
    /// The service root's path, without a trailing slash (`/redfish/v1`).
    root: String,
    system_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    auth: AuthType,
    client: reqwest::Client,
    session: tokio::sync::Mutex<Session>,
}

fn invalid(msg: String) -> BmcError {
    BmcError::InvalidDriverInfo(msg)
}

/// `redfish_verify_ca` as Ironic reads it: a boolean, a boolean-like string, or a path.
fn parse_verify(node: &str, v: Option<&Value>) -> BmcResult<Verify> {
    let bad = |shown: String| {
        invalid(format!(
            "Invalid value type set in driver_info/redfish_verify_ca on node {node}. The value \
             should be a Boolean or the path to a file/directory, not \"{shown}\""
        ))
    };
    match v {
        None | Some(Value::Null) | Some(Value::Bool(true)) => Ok(Verify::On),
        Some(Value::Bool(false)) => Ok(Verify::Off),
        Some(Value::String(s)) => {
            let p = std::path::Path::new(s);
            if p.is_file() || p.is_dir() {
                return Ok(Verify::Ca(p.to_path_buf()));
            }
            match crate::model::parse_bool("redfish_verify_ca", s) {
                Ok(true) => Ok(Verify::On),
                Ok(false) => Ok(Verify::Off),
                Err(_) => Err(bad(s.clone())),
            }
        }
        Some(other) => Err(bad(other.to_string())),
    }
}

impl RedfishDriver {
    /// Reads `driver_info` as Ironic's `parse_driver_info` does; the errors are its messages.
    pub fn new(
        node: &str,
        info: &Map<String, Value>,
        clients: &HttpClients,
    ) -> BmcResult<RedfishDriver> {
        let Some(raw) = info_str(info, "redfish_address") else {
            return Err(invalid(format!(
                "Missing the following Redfish properties in node {node} driver_info: \
                 ['redfish_address']"
            )));
        };
        let bad_address = || {
            invalid(format!(
                "Invalid Redfish address {raw} set in driver_info/redfish_address on node {node}"
            ))
        };
        let with_scheme = if raw.contains("://") {
            raw.clone()
        } else {
            format!("https://{raw}")
        };
        let url = reqwest::Url::parse(&with_scheme).map_err(|_| bad_address())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad_address());
        }
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let address = format!("{}://{authority}", url.scheme());
        let path = url.path().trim_end_matches('/');
        let root = if path.is_empty() {
            "/redfish/v1".to_string()
        } else {
            path.to_string()
        };
        let system_id = match info.get("redfish_system_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                return Err(invalid(format!(
                    "Invalid value \"{other}\" set in driver_info/redfish_system_id on node \
                     {node}. The value should be a path (string) to the resource that the \
                     driver will interact with. For example: /redfish/v1/Systems/1"
                )))
            }
        };
        let verify = parse_verify(node, info.get("redfish_verify_ca"))?;
        let auth = match info_str(info, "redfish_auth_type").as_deref() {
            None | Some("auto") => AuthType::Auto,
            Some("session") => AuthType::Session,
            Some("basic") => AuthType::Basic,
            Some(other) => {
                return Err(invalid(format!(
                    "Invalid value \"{other}\" set in driver_info/redfish_auth_type on node \
                     {node}. The value should be one of \"basic\", \"session\" or \"auto\"."
                )))
            }
        };
        Ok(RedfishDriver {
            node: node.to_string(),
            address,
            root,
            system_id,
            username: info_str(info, "redfish_username"),
            password: info_str(info, "redfish_password"),
            auth,
            client: clients.get(&verify)?,
            session: tokio::sync::Mutex::new(Session::default()),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// One HTTP exchange, its transport failures classified.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: &Auth,
        if_match: Option<&str>,
    ) -> BmcResult<(StatusCode, reqwest::header::HeaderMap, Value)> {
        let url = self.url(path);
        let mut req = self
            .client
            .request(method, &url)
            .header("accept", "application/json");
        match auth {
            Auth::None => {}
            Auth::Token(t) => req = req.header("x-auth-token", t),
            Auth::Basic => {
                req = req.basic_auth(
                    self.username.clone().unwrap_or_default(),
                    self.password.clone(),
                )
            }
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| transport(&url, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| transport(&url, &e))?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, headers, json))
    }

    /// Logs in (`POST …/Sessions`); `Ok(false)` when the BMC has no session service.
    async fn login(&self, s: &mut Session) -> BmcResult<bool> {
        let path = self.sessions_path().await;
        let body = json!({
            "UserName": self.username.clone().unwrap_or_default(),
            "Password": self.password.clone().unwrap_or_default(),
        });
        let (status, headers, json) = self
            .send(Method::POST, &path, Some(&body), &Auth::None, None)
            .await?;
        if status.is_success() {
            let token = headers
                .get("x-auth-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| {
                    BmcError::Refused(format!(
                        "the Redfish BMC at {} created a session without an X-Auth-Token",
                        self.address
                    ))
                })?;
            s.token = Some(token);
            return Ok(true);
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(self.auth_failed(status)),
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED => Ok(false),
            _ => Err(classify(status, &json, &self.url(&path))),
        }
    }

    fn auth_failed(&self, status: StatusCode) -> BmcError {
        BmcError::Auth(format!(
            "Redfish authentication to {} as user '{}' failed: wrong credentials (HTTP {})",
            self.address,
            self.username.clone().unwrap_or_default(),
            status.as_u16()
        ))
    }

    /// Where sessions are created: the service root's `Links.Sessions`, else the standard
    /// path.
    async fn sessions_path(&self) -> String {
        let fallback = format!("{}/SessionService/Sessions", self.root);
        match self
            .send(
                Method::GET,
                &format!("{}/", self.root),
                None,
                &Auth::None,
                None,
            )
            .await
        {
            Ok((s, _, root)) if s.is_success() => root["Links"]["Sessions"]["@odata.id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or(fallback),
            _ => fallback,
        }
    }

    /// An authenticated request: logs in first when needed, and again once on a 401.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> BmcResult<(reqwest::header::HeaderMap, Value)> {
        let mut s = self.session.lock().await;
        for attempt in 0..2 {
            let auth = self.auth_for(&mut s).await?;
            let (status, headers, json) = self
                .send(method.clone(), path, body, &auth, if_match)
                .await?;
            if status == StatusCode::UNAUTHORIZED && matches!(auth, Auth::Token(_)) && attempt == 0
            {
                // The session expired or was ended: log in again, once.
                s.token = None;
                continue;
            }
            if status.is_success() {
                return Ok((headers, json));
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(self.auth_failed(status));
            }
            return Err(classify(status, &json, &self.url(path)));
        }
        Err(self.auth_failed(StatusCode::UNAUTHORIZED))
    }

    async fn auth_for(&self, s: &mut Session) -> BmcResult<Auth> {
        if self.username.is_none() && self.password.is_none() {
            return Ok(Auth::None);
        }
        if self.auth == AuthType::Basic || s.basic {
            return Ok(Auth::Basic);
        }
        if s.token.is_none() && !self.login(s).await? {
            if self.auth == AuthType::Session {
                return Err(BmcError::Refused(format!(
                    "the Redfish BMC at {} has no session service (redfish_auth_type is \
                     \"session\")",
                    self.address
                )));
            }
            s.basic = true;
            return Ok(Auth::Basic);
        }
        Ok(s.token.clone().map(Auth::Token).unwrap_or(Auth::Basic))
    }

    /// The system's path: `redfish_system_id`, or the BMC's only system.
    async fn system_path(&self) -> BmcResult<String> {
        if let Some(p) = self.session.lock().await.system.clone() {
            return Ok(p);
        }
        let path = match &self.system_id {
            Some(id) if id.starts_with('/') => id.trim_end_matches('/').to_string(),
            Some(id) => format!("{}/Systems/{id}", self.root),
            None => {
                let (_, systems) = self
                    .call(Method::GET, &format!("{}/Systems", self.root), None, None)
                    .await?;
                let members: Vec<String> = systems["Members"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| m["@odata.id"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                match members.as_slice() {
                    [one] => one.trim_end_matches('/').to_string(),
                    [] => {
                        return Err(BmcError::Refused(format!(
                            "the Redfish BMC at {} manages no system",
                            self.address
                        )))
                    }
                    _ => {
                        return Err(invalid(format!(
                            "The Redfish BMC at {} manages {} systems; set \
                             driver_info/redfish_system_id on node {}",
                            self.address,
                            members.len(),
                            self.node
                        )))
                    }
                }
            }
        };
        self.session.lock().await.system = Some(path.clone());
        Ok(path)
    }

    async fn system(&self) -> BmcResult<(String, Option<String>, Value)> {
        let path = self.system_path().await?;
        let (headers, body) = self.call(Method::GET, &path, None, None).await?;
        let etag = headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((path, etag, body))
    }
}

enum Auth {
    None,
    Token(String),
    Basic,
}

/// A transport failure: a certificate problem, a timeout, or nothing listening.
fn transport(url: &str, e: &reqwest::Error) -> BmcError {
    let mut chain = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return BmcError::Tls(format!(
            "TLS certificate verification failed for {url} ({chain}); set \
             driver_info/redfish_verify_ca to the CA bundle that signed the BMC's certificate, \
             or to false to skip verification"
        ));
    }
    if e.is_timeout() {
        return BmcError::Unreachable(format!("the Redfish BMC did not answer in time: {url}"));
    }
    BmcError::Unreachable(format!("cannot reach the Redfish BMC at {url}: {chain}"))
}

/// An HTTP failure answered by the BMC: 5xx is a fault (retried), the rest a refusal.
fn classify(status: StatusCode, body: &Value, url: &str) -> BmcError {
    let msg = body["error"]["@Message.ExtendedInfo"][0]["Message"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .unwrap_or("")
        .to_string();
    let text = format!(
        "the Redfish BMC answered {} to {url}{}",
        status.as_u16(),
        if msg.is_empty() {
            String::new()
        } else {
            format!(": {msg}")
        }
    );
    if status.is_server_error() {
        BmcError::Fault(text)
    } else {
        BmcError::Refused(text)
    }
}

/// Redfish `BootSourceOverrideTarget` values and Ironic's names.
const BOOT_TARGETS: &[(BootDevice, &str)] = &[
    (BootDevice::Pxe, "Pxe"),
    (BootDevice::Disk, "Hdd"),
    (BootDevice::Cdrom, "Cd"),
    (BootDevice::Bios, "BiosSetup"),
    (BootDevice::UefiHttp, "UefiHttp"),
];

impl BmcDriver for RedfishDriver {
    fn validate(&self) -> BmcResult<()> {
        // Everything `driver_info` says was checked when the driver was made.
        Ok(())
    }

    fn power_state(&self) -> BoxFuture<'_, BmcResult<Power>> {
        Box::pin(async move {
            let (_, _, sys) = self.system().await?;
            match sys["PowerState"].as_str() {
                Some("On") | Some("PoweringOn") => Ok(Power::On),
                Some("Off") | Some("PoweringOff") => Ok(Power::Off),
                other => Err(BmcError::Refused(format!(
                    "the Redfish BMC at {} reports an unknown power state {other:?}",
                    self.address
                ))),
            }
        })
    }

    fn set_power(&self, action: PowerAction) -> BoxFuture<'_, BmcResult<()>> {
        Box::pin(async move {
            let (path, _, sys) = self.system().await?;
            let on = matches!(sys["PowerState"].as_str(), Some("On") | Some("PoweringOn"));
            let reset = match action {
                PowerAction::On => "On",
                PowerAction::Off => "ForceOff",
                PowerAction::SoftOff => "GracefulShutdown",
                PowerAction::Reboot | PowerAction::SoftReboot if !on => "On",
                PowerAction::Reboot => "ForceRestart",
                PowerAction::SoftReboot => "GracefulRestart",
            };
            let action_path = sys["Actions"]["#ComputerSystem.Reset"]["target"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{path}/Actions/ComputerSystem.Reset"));
            self.call(
                Method::POST,
                &action_path,
                Some(&json!({"ResetType": reset})),
                None,
            )
            .await?;
            Ok(())
        })
    }

    fn set_boot_device(
        &self,
        device: BootDevice,
        persistent: bool,
    ) -> BoxFuture<'_, BmcResult<()>> {
        Box::pin(async move {
            let Some((_, target)) = BOOT_TARGETS.iter().find(|(d, _)| *d == device) else {
                return Err(BmcError::Unsupported(format!(
                    "Invalid boot device {} specified.",
                    device.name()
                )));
            };
            let body = json!({"Boot": {
                "BootSourceOverrideTarget": target,
                "BootSourceOverrideEnabled": if persistent { "Continuous" } else { "Once" },
            }});
            for attempt in 0..2 {
                let (path, etag, sys) = self.system().await?;
                if let Some(allowed) =
                    sys["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"].as_array()
                {
                    if !allowed.iter().any(|a| a == target) {
                        return Err(BmcError::Unsupported(format!(
                            "the Redfish BMC at {} cannot boot from {target}",
                            self.address
                        )));
                    }
                }
                match self
                    .call(Method::PATCH, &path, Some(&body), etag.as_deref())
                    .await
                {
                    // Someone changed the system between our read and write: read again.
                    Err(BmcError::Refused(m)) if m.contains(" 412 ") && attempt == 0 => continue,
                    other => return other.map(drop),
                }
            }
            Ok(())
        })
    }

    fn boot_device(&self) -> BoxFuture<'_, BmcResult<BootSetting>> {
        Box::pin(async move {
            let (_, _, sys) = self.system().await?;
            let target = sys["Boot"]["BootSourceOverrideTarget"].as_str();
            let enabled = sys["Boot"]["BootSourceOverrideEnabled"].as_str();
            Ok(BootSetting {
                device: BOOT_TARGETS
                    .iter()
                    .find(|(_, t)| Some(*t) == target)
                    .map(|(d, _)| *d),
                persistent: Some(enabled == Some("Continuous")),
            })
        })
    }

    fn supported_boot_devices(&self) -> Vec<BootDevice> {
        BOOT_TARGETS.iter().map(|(d, _)| *d).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use strata_sim::{Fleet, FleetOptions, LogBoots};

    fn info(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn clients() -> HttpClients {
        HttpClients::new(Duration::from_secs(5))
    }

    async fn fleet(tls: bool) -> (tempfile::TempDir, Fleet) {
        let dir = tempfile::tempdir().unwrap();
        let opts = FleetOptions {
            hosts: 1,
            tls,
            ..Default::default()
        };
        let f = Fleet::start(opts, dir.path(), Arc::new(LogBoots))
            .await
            .unwrap();
        (dir, f)
    }

    /// `(redfish_address, redfish_system_id)` of the fleet's first host.
    fn address(f: &Fleet) -> (String, String) {
        let e = &f.entries()[0];
        let (addr, path) = e.redfish.split_once("/redfish").unwrap();
        (addr.to_string(), format!("/redfish{path}"))
    }

    fn driver(f: &Fleet, extra: Value) -> BmcResult<RedfishDriver> {
        let (addr, sys) = address(f);
        let mut i = info(json!({"redfish_address": addr, "redfish_system_id": sys,
            "redfish_username": "admin", "redfish_password": "password"}));
        for (k, v) in extra.as_object().unwrap() {
            i.insert(k.clone(), v.clone());
        }
        RedfishDriver::new("node-1", &i, &clients())
    }

    #[test]
    fn driver_info_as_ironic_reads_it() {
        let c = clients();
        let e = RedfishDriver::new("n", &info(json!({})), &c).err().unwrap();
        assert_eq!(
            e.to_string(),
            "Missing the following Redfish properties in node n driver_info: \
             ['redfish_address']"
        );
        let d = RedfishDriver::new(
            "n",
            &info(json!({"redfish_address": "bmc.example:8443"})),
            &c,
        )
        .unwrap();
        assert_eq!(d.address, "https://bmc.example:8443");
        assert_eq!(d.root, "/redfish/v1");
        let d = RedfishDriver::new(
            "n",
            &info(json!({"redfish_address": "http://h/custom/root/"})),
            &c,
        )
        .unwrap();
        assert_eq!(
            (d.address.as_str(), d.root.as_str()),
            ("http://h", "/custom/root")
        );
        let e = RedfishDriver::new(
            "n",
            &info(json!({"redfish_address": "h", "redfish_verify_ca": "maybe"})),
            &c,
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("should be a Boolean or the path"),
            "{e}"
        );
        let e = RedfishDriver::new(
            "n",
            &info(json!({"redfish_address": "h", "redfish_auth_type": "digest"})),
            &c,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("redfish_auth_type"), "{e}");
    }

    #[tokio::test]
    async fn power_and_boot_against_the_simulator() {
        let (_dir, f) = fleet(false).await;
        let d = driver(&f, json!({})).unwrap();
        let host = &f.hosts()[0];
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        d.set_power(PowerAction::On).await.unwrap();
        assert_eq!(host.reported_power(), "On");
        assert_eq!(d.power_state().await.unwrap(), Power::On);
        let boots = host.boot_count();
        d.set_power(PowerAction::Reboot).await.unwrap();
        assert_eq!(host.boot_count(), boots + 1, "a reboot boots once");
        d.set_power(PowerAction::SoftOff).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        d.set_power(PowerAction::Off).await.unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);

        d.set_boot_device(BootDevice::Pxe, true).await.unwrap();
        assert_eq!(
            d.boot_device().await.unwrap(),
            BootSetting {
                device: Some(BootDevice::Pxe),
                persistent: Some(true)
            }
        );
        d.set_boot_device(BootDevice::Cdrom, false).await.unwrap();
        let b = d.boot_device().await.unwrap();
        assert_eq!(b.device, Some(BootDevice::Cdrom));
        assert_eq!(b.persistent, Some(false));
        assert_eq!(host.boot_override().target.as_str(), "Cd");

        // Without a system id, the BMC's only system is found.
        let (addr, _) = address(&f);
        let d = RedfishDriver::new(
            "n",
            &info(json!({"redfish_address": addr, "redfish_username": "admin",
                "redfish_password": "password"})),
            &clients(),
        )
        .unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        f.shutdown().await;
    }

    #[tokio::test]
    async fn sessions_are_renewed_and_wrong_passwords_refused() {
        let (_dir, f) = fleet(false).await;
        let d = driver(&f, json!({})).unwrap();
        d.power_state().await.unwrap();
        let host = &f.hosts()[0];
        assert_eq!(host.sessions().len(), 1, "one session, reused");
        d.power_state().await.unwrap();
        assert_eq!(host.sessions().len(), 1);
        // The BMC ends every session (a password change does): the driver logs in again.
        for s in host.sessions() {
            host.delete_session(&s.id);
        }
        d.power_state().await.unwrap();
        assert_eq!(host.sessions().len(), 1);

        let bad = driver(&f, json!({"redfish_password": "nope"})).unwrap();
        let e = bad.power_state().await.unwrap_err();
        assert!(matches!(e, BmcError::Auth(_)), "{e:?}");
        assert!(e.to_string().contains("wrong credentials"), "{e}");
        assert!(!e.retryable());

        let basic = driver(&f, json!({"redfish_auth_type": "basic"})).unwrap();
        let before = host.sessions().len();
        assert_eq!(basic.power_state().await.unwrap(), Power::Off);
        assert_eq!(host.sessions().len(), before, "basic auth opens no session");
        f.shutdown().await;
    }

    #[tokio::test]
    async fn unreachable_and_faulty_bmcs_are_retryable() {
        let (_dir, f) = fleet(false).await;
        let d = driver(&f, json!({})).unwrap();
        let host = &f.hosts()[0];
        let mut faults = host.faults();
        faults.fail_power_actions = true;
        host.set_faults(faults.clone());
        let e = d.set_power(PowerAction::On).await.unwrap_err();
        assert!(matches!(e, BmcError::Fault(_)), "{e:?}");
        assert!(e.retryable());
        faults.fail_power_actions = false;
        faults.unreachable = true;
        host.set_faults(faults);
        let e = d.power_state().await.unwrap_err();
        assert!(matches!(e, BmcError::Unreachable(_)), "{e:?}");
        assert!(e.retryable());
        // Nothing listening at all.
        let gone = RedfishDriver::new(
            "n",
            &info(json!({"redfish_address": "http://127.0.0.1:9"})),
            &clients(),
        )
        .unwrap();
        let e = gone.power_state().await.unwrap_err();
        assert!(matches!(e, BmcError::Unreachable(_)), "{e:?}");
        assert!(e.to_string().contains("cannot reach"), "{e}");
        f.shutdown().await;
    }

    #[tokio::test]
    async fn tls_verification() {
        let (_dir, f) = fleet(true).await;
        let ca = f.ca_path().unwrap().display().to_string();
        // Verified against the fleet's CA.
        let d = driver(&f, json!({"redfish_verify_ca": ca})).unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        // Verification on (the default) without the CA: refused, readably, not retried.
        let d = driver(&f, json!({})).unwrap();
        let e = d.power_state().await.unwrap_err();
        assert!(matches!(e, BmcError::Tls(_)), "{e:?}");
        assert!(e.to_string().contains("redfish_verify_ca"), "{e}");
        assert!(!e.retryable());
        // Verification off.
        let d = driver(&f, json!({"redfish_verify_ca": false})).unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        let d = driver(&f, json!({"redfish_verify_ca": "False"})).unwrap();
        assert_eq!(d.power_state().await.unwrap(), Power::Off);
        f.shutdown().await;
    }
}
