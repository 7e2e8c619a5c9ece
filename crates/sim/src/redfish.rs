//! One host's BMC as a Redfish service (DMTF DSP0266 / schema 2020-era versions), spelled as
//! real BMCs and sushy-tools spell it, so that independent clients (sushy, and through it
//! Ironic; Strata's own driver) work against it unchanged.
//!
//! Layout: `/redfish` → `/redfish/v1/` (service root, no auth) → `SessionService`,
//! `Systems/{uuid}` (power, boot override, inventory, BIOS, virtual media), `Managers/BMC`
//! (virtual media, as older clients look for it) and `Chassis/1`.
//!
//! Auth is HTTP basic or an `X-Auth-Token` from `POST SessionService/Sessions`; only the
//! service root and the login itself answer without. Every GET carries a strong `ETag` (a
//! hash of the body), and a `PATCH` whose `If-Match` names another representation gets 412.
//! Errors use Redfish's body (`{"error":{"code","message","@Message.ExtendedInfo"}}`) with
//! message ids from the DMTF Base registry.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use crate::bios;
use crate::host::{BootEnabled, BootMode, BootTarget, ResetType, SimHostHandle};

/// The DMTF Base message registry the error messages are drawn from.
const BASE: &str = "Base.1.16";
const REDFISH_VERSION: &str = "1.11.0";
const V1: &str = "/redfish/v1";
const MANAGER: &str = "BMC";
const CHASSIS: &str = "1";
const STORAGE: &str = "1";
const CD: &str = "Cd";

/// The BMC's view of its host.
#[derive(Clone)]
pub(crate) struct Bmc {
    host: SimHostHandle,
    /// `false` only for `--no-auth` fleets (sushy-tools' default), for poking with curl.
    auth: bool,
}

/// The Redfish router of one host's BMC.
pub(crate) fn router(host: SimHostHandle, auth: bool) -> Router {
    let bmc = Bmc { host, auth };
    let sys = "/redfish/v1/Systems/{id}";
    let vmedia = |r: Router<Bmc>, parent: &str| {
        r.route(&format!("{parent}/VirtualMedia"), get(vmedia_list))
            .route(&format!("{parent}/VirtualMedia/{{vid}}"), get(vmedia_get))
            .route(
                &format!("{parent}/VirtualMedia/{{vid}}/Actions/VirtualMedia.InsertMedia"),
                post(vmedia_insert),
            )
            .route(
                &format!("{parent}/VirtualMedia/{{vid}}/Actions/VirtualMedia.EjectMedia"),
                post(vmedia_eject),
            )
    };
    let r = Router::new()
        .route("/redfish", get(versions))
        .route("/redfish/", get(versions))
        .route("/redfish/v1", get(service_root))
        .route("/redfish/v1/", get(service_root))
        .route("/redfish/v1/SessionService", get(session_service))
        .route(
            "/redfish/v1/SessionService/Sessions",
            get(session_list).post(session_create),
        )
        .route(
            "/redfish/v1/SessionService/Sessions/{sid}",
            get(session_get).delete(session_delete),
        )
        .route("/redfish/v1/Systems", get(system_list))
        .route(sys, get(system_get).patch(system_patch))
        .route(
            &format!("{sys}/Actions/ComputerSystem.Reset"),
            post(system_reset),
        )
        .route(
            &format!("{sys}/Storage/{{sub}}/Drives/{{drive}}"),
            get(drive_get),
        )
        .route(
            &format!("{sys}/Storage/{{sub}}/Controllers"),
            get(controller_list),
        )
        .route(
            &format!("{sys}/Storage/{{sub}}/Controllers/{{ctl}}"),
            get(controller_get),
        )
        .route(&format!("{sys}/Bios"), get(bios_get))
        .route(
            &format!("{sys}/Bios/Actions/Bios.ResetBios"),
            post(bios_reset),
        )
        .route(
            &format!("{sys}/Bios/Settings"),
            get(bios_settings_get).patch(bios_settings_patch),
        )
        .route("/redfish/v1/Managers", get(manager_list))
        .route("/redfish/v1/Managers/{id}", get(manager_get))
        .route("/redfish/v1/Chassis", get(chassis_list))
        .route("/redfish/v1/Chassis/{id}", get(chassis_get));
    let r = INVENTORY
        .iter()
        .fold(r, |r, entry| inventory_routes(r, sys, *entry));
    let r = vmedia(r, sys);
    let r = vmedia(r, "/redfish/v1/Managers/{id}");
    r.fallback(fallback_not_found)
        .method_not_allowed_fallback(fallback_method)
        .layer(axum::middleware::from_fn_with_state(
            bmc.clone(),
            authenticate,
        ))
        .layer(axum::middleware::map_response(odata_version))
        .with_state(bmc)
}

// --- errors -----------------------------------------------------------------------------------

/// A Redfish error response.
#[derive(Debug)]
pub(crate) struct RfError {
    status: StatusCode,
    /// The message key in the Base registry (`PropertyValueNotInList`).
    key: &'static str,
    message: String,
    /// JSON pointers of the properties concerned (`#/Boot/BootSourceOverrideTarget`).
    related: Vec<String>,
}

type RfResult<T> = Result<T, RfError>;

impl RfError {
    fn new(status: StatusCode, key: &'static str, message: impl Into<String>) -> RfError {
        RfError {
            status,
            key,
            message: message.into(),
            related: Vec::new(),
        }
    }

    fn about(mut self, pointer: impl Into<String>) -> RfError {
        self.related.push(pointer.into());
        self
    }

    fn not_found(kind: &str, name: &str) -> RfError {
        RfError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The requested resource of type {kind} named {name} was not found."),
        )
    }

    fn unauthorized() -> RfError {
        RfError::new(
            StatusCode::UNAUTHORIZED,
            "NoValidSession",
            "There is no valid session established with the implementation.",
        )
    }

    fn bad_request(key: &'static str, message: impl Into<String>) -> RfError {
        RfError::new(StatusCode::BAD_REQUEST, key, message)
    }

    fn property_unknown(pointer: &str) -> RfError {
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        RfError::bad_request(
            "PropertyUnknown",
            format!("The property {name} is not in the list of valid properties for the resource."),
        )
        .about(pointer)
    }

    fn property_not_writable(pointer: &str) -> RfError {
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        RfError::bad_request(
            "PropertyNotWritable",
            format!("The property {name} is a read only property and cannot be assigned a value."),
        )
        .about(pointer)
    }

    fn property_not_in_list(pointer: &str, value: &Value) -> RfError {
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        RfError::bad_request(
            "PropertyValueNotInList",
            format!(
                "The value {value} for the property {name} is not in the list of acceptable \
                 values."
            ),
        )
        .about(pointer)
    }

    fn property_type(pointer: &str, value: &Value) -> RfError {
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        RfError::bad_request(
            "PropertyValueTypeError",
            format!(
                "The value {value} for the property {name} is of a different type than the \
                 property can accept."
            ),
        )
        .about(pointer)
    }

    fn parameter_missing(action: &str, param: &str) -> RfError {
        RfError::bad_request(
            "ActionParameterMissing",
            format!("The action {action} requires the parameter {param} to be present in the request body."),
        )
        .about(format!("#/{param}"))
    }

    fn parameter_unknown(action: &str, param: &str) -> RfError {
        RfError::bad_request(
            "ActionParameterUnknown",
            format!("The action {action} was submitted with the invalid parameter {param}."),
        )
        .about(format!("#/{param}"))
    }

    fn parameter_not_in_list(action: &str, param: &str, value: &Value) -> RfError {
        RfError::bad_request(
            "ActionParameterValueNotInList",
            format!(
                "The value {value} for the parameter {param} in the action {action} is not in \
                 the list of acceptable values."
            ),
        )
        .about(format!("#/{param}"))
    }

    fn parameter_type(action: &str, param: &str, value: &Value) -> RfError {
        RfError::bad_request(
            "ActionParameterValueTypeError",
            format!(
                "The value {value} for the parameter {param} in the action {action} is of a \
                 different type than the parameter can accept."
            ),
        )
        .about(format!("#/{param}"))
    }
}

impl IntoResponse for RfError {
    fn into_response(self) -> Response {
        let severity = if self.status.is_server_error() {
            "Critical"
        } else {
            "Warning"
        };
        let body = json!({
            "error": {
                "code": format!("{BASE}.GeneralError"),
                "message": self.message,
                "@Message.ExtendedInfo": [{
                    "@odata.type": "#Message.v1_1_1.Message",
                    "MessageId": format!("{BASE}.{}", self.key),
                    "Message": self.message,
                    "RelatedProperties": self.related,
                    "Severity": severity,
                    "MessageSeverity": severity,
                    "Resolution": "Correct the request and resubmit it.",
                }],
            }
        });
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Redfish\""),
            );
        }
        res
    }
}

async fn fallback_not_found(uri: Uri) -> RfError {
    RfError::new(
        StatusCode::NOT_FOUND,
        "ResourceMissingAtURI",
        format!("The resource at the URI {} was not found.", uri.path()),
    )
}

async fn fallback_method() -> RfError {
    RfError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "OperationNotAllowed",
        "The HTTP method is not allowed on this resource.",
    )
}

// --- middleware -------------------------------------------------------------------------------

async fn odata_version(mut res: Response) -> Response {
    res.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    res
}

/// Lets through the service root, the login and any request with a valid session token or
/// basic credentials; everything else gets 401.
async fn authenticate(State(bmc): State<Bmc>, req: Request, next: Next) -> Response {
    let path = req.uri().path().trim_end_matches('/');
    let open = matches!(path, "/redfish" | V1)
        || (path == "/redfish/v1/SessionService/Sessions" && req.method() == "POST");
    if open || !bmc.auth || bmc.authorized(req.headers()) {
        next.run(req).await
    } else {
        RfError::unauthorized().into_response()
    }
}

impl Bmc {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        if let Some(token) = headers.get("X-Auth-Token").and_then(|v| v.to_str().ok()) {
            return self.host.session_by_token(token).is_some();
        }
        let Some(basic) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) else {
            return false;
        };
        let Ok(raw) = String::from_utf8(raw) else {
            return false;
        };
        raw.split_once(':')
            .is_some_and(|(user, password)| self.host.credentials_match(user, password))
    }

    fn system_path(&self) -> String {
        format!("{V1}/Systems/{}", self.host.uuid())
    }

    fn manager_path(&self) -> String {
        format!("{V1}/Managers/{MANAGER}")
    }

    fn chassis_path(&self) -> String {
        format!("{V1}/Chassis/{CHASSIS}")
    }

    fn system(&self, id: &str) -> RfResult<()> {
        if id == self.host.uuid() {
            Ok(())
        } else {
            Err(RfError::not_found("ComputerSystem", id))
        }
    }

    /// The BMC's own UUID (service root, manager): derived from the system's, but not it.
    fn service_uuid(&self) -> String {
        let system = uuid::Uuid::parse_str(self.host.uuid()).unwrap_or_default();
        let mut bytes = *system.as_bytes();
        for b in bytes.iter_mut() {
            *b ^= 0x5a;
        }
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

// --- response helpers -------------------------------------------------------------------------

/// `@odata.id`, `@odata.type` and `@odata.context` of a resource of type `ty`
/// (`#ComputerSystem.v1_10_0.ComputerSystem`).
fn odata(id: &str, ty: &str) -> Map<String, Value> {
    let short = {
        let parts: Vec<&str> = ty.trim_start_matches('#').split('.').collect();
        format!("{}.{}", parts[0], parts[parts.len() - 1])
    };
    let mut m = Map::new();
    m.insert("@odata.id".into(), id.into());
    m.insert("@odata.type".into(), ty.into());
    m.insert(
        "@odata.context".into(),
        format!("{V1}/$metadata#{short}").into(),
    );
    m
}

/// A resource body: `@odata` annotations followed by `fields` (a JSON object).
fn body(id: &str, ty: &str, fields: Value) -> Value {
    let mut m = odata(id, ty);
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    Value::Object(m)
}

fn link(path: &str) -> Value {
    json!({ "@odata.id": path })
}

fn status_ok() -> Value {
    json!({ "State": "Enabled", "Health": "OK", "HealthRollup": "OK" })
}

/// A collection resource of `members` (paths).
fn collection(id: &str, ty: &str, name: &str, members: &[String]) -> Response {
    let members: Vec<Value> = members.iter().map(|m| link(m)).collect();
    let b = body(
        id,
        &format!("#{ty}.{ty}"),
        json!({ "Name": name, "Members@odata.count": members.len(), "Members": members }),
    );
    resource(b, "GET")
}

/// The strong entity tag of a representation.
fn etag(body: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// A GET response: the body with its `ETag` and the methods the resource allows.
fn resource(body: Value, allow: &'static str) -> Response {
    let tag = etag(&body);
    let mut res = axum::Json(body).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

/// 412 unless `If-Match` is absent, `*`, or names the current representation `current`.
fn check_if_match(headers: &HeaderMap, current: &Value) -> RfResult<()> {
    let Some(wanted) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let wanted = wanted.to_str().unwrap_or("");
    let tag = etag(current);
    if wanted
        .split(',')
        .map(str::trim)
        .any(|w| w == "*" || w == tag)
    {
        Ok(())
    } else {
        Err(RfError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "The ETag supplied did not match the ETag required to change this resource.",
        ))
    }
}

/// What every PATCH of a system resource starts with: the system exists, `If-Match` (if
/// any) names the current representation (`view`), the body is a JSON object. Returns the
/// current representation and the body.
fn patch_request(
    bmc: &Bmc,
    id: &str,
    headers: &HeaderMap,
    raw: &Bytes,
    view: fn(&Bmc) -> Value,
) -> RfResult<(Value, Map<String, Value>)> {
    bmc.system(id)?;
    let current = view(bmc);
    check_if_match(headers, &current)?;
    Ok((current, object(raw)?))
}

/// A request body as a JSON object (an empty body is an empty object).
fn object(raw: &Bytes) -> RfResult<Map<String, Value>> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RfError::bad_request(
            "UnrecognizedRequestBody",
            "The service detected a malformed request body that it was unable to interpret.",
        )),
        Err(_) => Err(RfError::bad_request(
            "MalformedJSON",
            "The request body submitted was malformed JSON and could not be parsed by the \
             receiving service.",
        )),
    }
}

/// Takes the string property `key` of `m`, checking it is one of `allowed`.
fn take_choice<T: Copy>(
    m: &mut Map<String, Value>,
    key: &str,
    pointer: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> RfResult<Option<T>> {
    match m.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => match parse(&s) {
            Some(v) => Ok(Some(v)),
            None => Err(RfError::property_not_in_list(pointer, &Value::String(s))),
        },
        Some(other) => Err(RfError::property_type(pointer, &other)),
    }
}

/// Refuses whatever is left in a PATCH body: read-only if `current` shows it, else unknown.
fn refuse_rest(rest: &Map<String, Value>, current: &Value, prefix: &str) -> RfResult<()> {
    match rest.keys().find(|k| !k.starts_with("@odata.")) {
        None => Ok(()),
        Some(k) if current.get(k).is_some() => {
            Err(RfError::property_not_writable(&format!("{prefix}/{k}")))
        }
        Some(k) => Err(RfError::property_unknown(&format!("{prefix}/{k}"))),
    }
}

// --- service root and sessions ---------------------------------------------------------------

async fn versions() -> Response {
    axum::Json(json!({ "v1": "/redfish/v1/" })).into_response()
}

async fn service_root(State(bmc): State<Bmc>) -> Response {
    let b = body(
        "/redfish/v1/",
        "#ServiceRoot.v1_5_0.ServiceRoot",
        json!({
            "Id": "RootService",
            "Name": "Root Service",
            "RedfishVersion": REDFISH_VERSION,
            "UUID": bmc.service_uuid(),
            "Vendor": "Strata",
            "Product": "Strata simulated BMC",
            "ProtocolFeaturesSupported": {
                "ExpandQuery": { "ExpandAll": false, "Levels": false, "Links": false, "NoLinks": false },
                "FilterQuery": false,
                "SelectQuery": false,
                "OnlyMemberQuery": false,
                "ExcerptQuery": false,
            },
            "Systems": link(&format!("{V1}/Systems")),
            "Managers": link(&format!("{V1}/Managers")),
            "Chassis": link(&format!("{V1}/Chassis")),
            "SessionService": link(&format!("{V1}/SessionService")),
            "Links": { "Sessions": link(&format!("{V1}/SessionService/Sessions")) },
        }),
    );
    resource(b, "GET")
}

async fn session_service() -> Response {
    let b = body(
        &format!("{V1}/SessionService"),
        "#SessionService.v1_1_8.SessionService",
        json!({
            "Id": "SessionService",
            "Name": "Session Service",
            "ServiceEnabled": true,
            "SessionTimeout": 1800,
            "Status": status_ok(),
            "Sessions": link(&format!("{V1}/SessionService/Sessions")),
        }),
    );
    resource(b, "GET")
}

fn session_path(id: &str) -> String {
    format!("{V1}/SessionService/Sessions/{id}")
}

fn session_body(s: &crate::host::Session) -> Value {
    body(
        &session_path(&s.id),
        "#Session.v1_3_0.Session",
        json!({ "Id": s.id, "Name": "User Session", "UserName": s.user, "Password": null }),
    )
}

async fn session_list(State(bmc): State<Bmc>) -> Response {
    let members: Vec<String> = bmc
        .host
        .sessions()
        .iter()
        .map(|s| session_path(&s.id))
        .collect();
    collection(
        &format!("{V1}/SessionService/Sessions"),
        "SessionCollection",
        "Session Collection",
        &members,
    )
}

/// `POST SessionService/Sessions {UserName, Password}`: 201 with `X-Auth-Token` and
/// `Location`.
async fn session_create(State(bmc): State<Bmc>, raw: Bytes) -> RfResult<Response> {
    let m = object(&raw)?;
    let field = |k: &str| match m.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(RfError::property_type(&format!("#/{k}"), other)),
        None => Err(RfError::bad_request(
            "PropertyMissing",
            format!("The property {k} is a required property and must be included in the request."),
        )
        .about(format!("#/{k}"))),
    };
    let (user, password) = (field("UserName")?, field("Password")?);
    let Some(s) = bmc.host.create_session(&user, &password) else {
        return Err(RfError::new(
            StatusCode::UNAUTHORIZED,
            "ResourceAtUriUnauthorized",
            "Invalid user name or password.",
        ));
    };
    let mut res = (StatusCode::CREATED, axum::Json(session_body(&s))).into_response();
    let h = res.headers_mut();
    if let (Ok(token), Ok(location)) = (
        HeaderValue::from_str(&s.token),
        HeaderValue::from_str(&session_path(&s.id)),
    ) {
        h.insert("X-Auth-Token", token);
        h.insert(header::LOCATION, location);
    }
    Ok(res)
}

async fn session_get(State(bmc): State<Bmc>, Path(sid): Path<String>) -> RfResult<Response> {
    let s = bmc
        .host
        .session(&sid)
        .ok_or_else(|| RfError::not_found("Session", &sid))?;
    Ok(resource(session_body(&s), "GET, DELETE"))
}

async fn session_delete(State(bmc): State<Bmc>, Path(sid): Path<String>) -> RfResult<StatusCode> {
    if bmc.host.delete_session(&sid) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(RfError::not_found("Session", &sid))
    }
}

// --- the computer system ---------------------------------------------------------------------

async fn system_list(State(bmc): State<Bmc>) -> Response {
    collection(
        &format!("{V1}/Systems"),
        "ComputerSystemCollection",
        "Computer System Collection",
        &[bmc.system_path()],
    )
}

fn reset_types() -> Vec<&'static str> {
    ResetType::ALL.iter().map(|r| r.as_str()).collect()
}

fn system_body(bmc: &Bmc) -> Value {
    let h = &bmc.host;
    let inv = h.inventory();
    let sys = bmc.system_path();
    let boot = h.boot_override();
    let sub = |name: &str| link(&format!("{sys}/{name}"));
    body(
        &sys,
        "#ComputerSystem.v1_10_0.ComputerSystem",
        json!({
            "Id": h.uuid(),
            "Name": h.name(),
            "SystemType": "Physical",
            "Manufacturer": inv.system.manufacturer,
            "Model": inv.system.model,
            "SerialNumber": inv.system.serial_number,
            "UUID": inv.system.uuid,
            "BiosVersion": inv.firmware.version,
            "PowerState": h.reported_power(),
            "Status": status_ok(),
            "Boot": {
                "BootSourceOverrideTarget": boot.target.as_str(),
                "BootSourceOverrideTarget@Redfish.AllowableValues":
                    BootTarget::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "BootSourceOverrideEnabled": boot.enabled.as_str(),
                "BootSourceOverrideEnabled@Redfish.AllowableValues":
                    BootEnabled::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "BootSourceOverrideMode": boot.mode.as_str(),
                "BootSourceOverrideMode@Redfish.AllowableValues":
                    BootMode::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            },
            "ProcessorSummary": {
                "Count": inv.cpu.sockets,
                "LogicalProcessorCount": inv.cpu.count,
                "Model": inv.cpu.model,
                "Status": status_ok(),
            },
            "MemorySummary": {
                "TotalSystemMemoryGiB": inv.ram_mib as f64 / 1024.0,
                "Status": status_ok(),
            },
            "Processors": sub("Processors"),
            "Memory": sub("Memory"),
            "EthernetInterfaces": sub("EthernetInterfaces"),
            "Storage": sub("Storage"),
            "SimpleStorage": sub("SimpleStorage"),
            "Bios": sub("Bios"),
            "VirtualMedia": sub("VirtualMedia"),
            "Links": {
                "Chassis": [link(&bmc.chassis_path())],
                "ManagedBy": [link(&bmc.manager_path())],
            },
            "Actions": {
                "#ComputerSystem.Reset": {
                    "target": format!("{sys}/Actions/ComputerSystem.Reset"),
                    "ResetType@Redfish.AllowableValues": reset_types(),
                },
            },
        }),
    )
}

async fn system_get(State(bmc): State<Bmc>, Path(id): Path<String>) -> RfResult<Response> {
    bmc.system(&id)?;
    Ok(resource(system_body(&bmc), "GET, PATCH"))
}

/// `PATCH Systems/{id}`: only `Boot` (target, enabled, mode) is writable. Validated whole
/// before anything changes.
async fn system_patch(
    State(bmc): State<Bmc>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> RfResult<StatusCode> {
    let (current, mut m) = patch_request(&bmc, &id, &headers, &raw, system_body)?;
    let boot = m.remove("Boot");
    refuse_rest(&m, &current, "#")?;
    let Some(boot) = boot else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let Value::Object(mut b) = boot else {
        return Err(RfError::property_type("#/Boot", &boot));
    };
    let target = take_choice(
        &mut b,
        "BootSourceOverrideTarget",
        "#/Boot/BootSourceOverrideTarget",
        BootTarget::parse,
    )?;
    let enabled = take_choice(
        &mut b,
        "BootSourceOverrideEnabled",
        "#/Boot/BootSourceOverrideEnabled",
        BootEnabled::parse,
    )?;
    let mode = take_choice(
        &mut b,
        "BootSourceOverrideMode",
        "#/Boot/BootSourceOverrideMode",
        BootMode::parse,
    )?;
    refuse_rest(&b, &current["Boot"], "#/Boot")?;
    bmc.host.set_boot_override(target, enabled, mode);
    Ok(StatusCode::NO_CONTENT)
}

/// `#ComputerSystem.Reset {ResetType}`.
async fn system_reset(
    State(bmc): State<Bmc>,
    Path(id): Path<String>,
    raw: Bytes,
) -> RfResult<StatusCode> {
    const ACTION: &str = "ComputerSystem.Reset";
    bmc.system(&id)?;
    let mut m = object(&raw)?;
    let kind = match m.remove("ResetType") {
        None => return Err(RfError::parameter_missing(ACTION, "ResetType")),
        Some(Value::String(s)) => ResetType::parse(&s).ok_or_else(|| {
            RfError::parameter_not_in_list(ACTION, "ResetType", &Value::String(s))
        })?,
        Some(other) => return Err(RfError::parameter_type(ACTION, "ResetType", &other)),
    };
    if let Some(k) = m.keys().next() {
        return Err(RfError::parameter_unknown(ACTION, k));
    }
    bmc.host.reset(kind).map_err(|e| {
        RfError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("The request failed due to an internal service error: {e}."),
        )
    })?;
    Ok(StatusCode::NO_CONTENT)
}

// --- inventory --------------------------------------------------------------------------------

/// The system's inventory collections: path segment, collection type, collection name.
const INVENTORY: &[(&str, &str, &str)] = &[
    ("Processors", "ProcessorCollection", "Processors Collection"),
    ("Memory", "MemoryCollection", "Memory Module Collection"),
    (
        "EthernetInterfaces",
        "EthernetInterfaceCollection",
        "Ethernet Interface Collection",
    ),
    ("Storage", "StorageCollection", "Storage Collection"),
    (
        "SimpleStorage",
        "SimpleStorageCollection",
        "Simple Storage Collection",
    ),
];

/// The routes of one inventory collection and its members.
fn inventory_routes(
    r: Router<Bmc>,
    sys: &str,
    (kind, ty, name): (&'static str, &'static str, &'static str),
) -> Router<Bmc> {
    let list = move |State(bmc): State<Bmc>, Path(id): Path<String>| async move {
        inventory_list(&bmc, &id, kind, ty, name)
    };
    let member = move |State(bmc): State<Bmc>, Path(p): Path<(String, String)>| async move {
        inventory_get(&bmc, &p.0, kind, &p.1)
    };
    r.route(&format!("{sys}/{kind}"), get(list))
        .route(&format!("{sys}/{kind}/{{sub}}"), get(member))
}

/// A member of one of the system's inventory collections.
type Member = (String, Value);

/// The members of the system's `kind` collection (`Processors`, …), ids and bodies.
fn members(bmc: &Bmc, kind: &str) -> Vec<Member> {
    let inv = bmc.host.inventory();
    let base = format!("{}/{kind}", bmc.system_path());
    let at = |id: &str| format!("{base}/{id}");
    match kind {
        "Processors" => {
            let per_socket = inv.cpu.count / inv.cpu.sockets.max(1);
            (1..=inv.cpu.sockets)
                .map(|n| {
                    let id = format!("CPU{n}");
                    let b = body(
                        &at(&id),
                        "#Processor.v1_7_0.Processor",
                        json!({
                            "Id": id, "Name": "Processor", "Socket": format!("CPU {n}"),
                            "ProcessorType": "CPU", "ProcessorArchitecture": "x86",
                            "InstructionSet": "x86-64", "Manufacturer": inv.system.manufacturer,
                            "Model": inv.cpu.model, "MaxSpeedMHz": inv.cpu.clock_mhz,
                            "TotalCores": per_socket, "TotalThreads": per_socket,
                            "Status": status_ok(),
                        }),
                    );
                    (id, b)
                })
                .collect()
        }
        "Memory" => {
            let dimms = [4u64, 2, 1]
                .into_iter()
                .find(|d| inv.ram_mib.is_multiple_of(*d))
                .unwrap_or(1);
            (1..=dimms)
                .map(|n| {
                    let id = format!("DIMM{n}");
                    let b = body(
                        &at(&id),
                        "#Memory.v1_7_0.Memory",
                        json!({
                            "Id": id, "Name": format!("DIMM {n}"),
                            "CapacityMiB": inv.ram_mib / dimms, "MemoryType": "DRAM",
                            "MemoryDeviceType": "DDR4", "OperatingSpeedMhz": 3200,
                            "Manufacturer": inv.system.manufacturer,
                            "DeviceLocator": format!("DIMM {n}"), "Status": status_ok(),
                        }),
                    );
                    (id, b)
                })
                .collect()
        }
        "EthernetInterfaces" => inv
            .nics
            .iter()
            .map(|nic| {
                let b = body(
                    &at(&nic.name),
                    "#EthernetInterface.v1_4_1.EthernetInterface",
                    json!({
                        "Id": nic.name, "Name": nic.name, "Description": "Network interface",
                        "MACAddress": nic.mac, "PermanentMACAddress": nic.mac,
                        "SpeedMbps": nic.speed_mbps, "FullDuplex": true,
                        "InterfaceEnabled": true,
                        "LinkStatus": if nic.link_up { "LinkUp" } else { "LinkDown" },
                        "Status": { "State": "Enabled", "Health": "OK" },
                    }),
                );
                (nic.name.clone(), b)
            })
            .collect(),
        "Storage" => {
            let drives: Vec<Value> = drives(bmc).into_iter().map(|(id, _)| link(&id)).collect();
            let storage = at(STORAGE);
            let mut controller = controller_fields(bmc);
            controller["@odata.id"] = json!(format!("{storage}#/StorageControllers/0"));
            controller["MemberId"] = json!("0");
            let b = body(
                &storage,
                "#Storage.v1_9_0.Storage",
                json!({
                    "Id": STORAGE, "Name": "Storage Subsystem", "Status": status_ok(),
                    "Drives@odata.count": drives.len(), "Drives": drives,
                    // Both spellings: the array (Storage < 1.13) and the collection.
                    "StorageControllers": [controller],
                    "Controllers": link(&format!("{storage}/Controllers")),
                }),
            );
            vec![(STORAGE.to_string(), b)]
        }
        "SimpleStorage" => {
            let devices: Vec<Value> = inv
                .disks
                .iter()
                .map(|d| {
                    json!({
                        "Name": d.name.trim_start_matches("/dev/"), "Manufacturer": d.vendor,
                        "Model": d.model, "CapacityBytes": d.size_bytes, "Status": status_ok(),
                    })
                })
                .collect();
            let b = body(
                &at(STORAGE),
                "#SimpleStorage.v1_2_0.SimpleStorage",
                json!({
                    "Id": STORAGE, "Name": "Simple Storage Controller",
                    "Devices": devices, "Status": status_ok(),
                }),
            );
            vec![(STORAGE.to_string(), b)]
        }
        _ => Vec::new(),
    }
}

/// What the storage controller is, in the `StorageControllers` array and as a resource.
fn controller_fields(bmc: &Bmc) -> Value {
    json!({
        "Name": "SATA Controller",
        "Manufacturer": bmc.host.inventory().system.manufacturer,
        "Model": "SimAHCI",
        "Status": status_ok(),
        "SupportedControllerProtocols": ["PCIe"],
        "SupportedDeviceProtocols": ["SATA"],
    })
}

/// The storage subsystem's `Controllers` collection and its one member.
fn controllers(bmc: &Bmc, id: &str, sub: &str, ctl: Option<&str>) -> RfResult<Response> {
    bmc.system(id)?;
    if sub != STORAGE {
        return Err(RfError::not_found("Storage", sub));
    }
    let base = format!("{}/Storage/{STORAGE}/Controllers", bmc.system_path());
    match ctl {
        None => Ok(collection(
            &base,
            "StorageControllerCollection",
            "Storage Controller Collection",
            &[format!("{base}/0")],
        )),
        Some("0") => {
            let mut fields = controller_fields(bmc);
            fields["Id"] = json!("0");
            let b = body(
                &format!("{base}/0"),
                "#StorageController.v1_6_0.StorageController",
                fields,
            );
            Ok(resource(b, "GET"))
        }
        Some(other) => Err(RfError::not_found("StorageController", other)),
    }
}

async fn controller_list(
    State(bmc): State<Bmc>,
    Path((id, sub)): Path<(String, String)>,
) -> RfResult<Response> {
    controllers(&bmc, &id, &sub, None)
}

async fn controller_get(
    State(bmc): State<Bmc>,
    Path((id, sub, ctl)): Path<(String, String, String)>,
) -> RfResult<Response> {
    controllers(&bmc, &id, &sub, Some(&ctl))
}

/// The drives of the storage controller: paths and bodies.
fn drives(bmc: &Bmc) -> Vec<Member> {
    let inv = bmc.host.inventory();
    let base = format!("{}/Storage/{STORAGE}/Drives", bmc.system_path());
    inv.disks
        .iter()
        .map(|d| {
            let id = d.name.trim_start_matches("/dev/");
            let path = format!("{base}/{id}");
            let mut fields = json!({
                "Id": id, "Name": id, "CapacityBytes": d.size_bytes,
                "SerialNumber": d.serial_number, "Model": d.model, "Manufacturer": d.vendor,
                "MediaType": if d.rotational { "HDD" } else { "SSD" }, "Protocol": "SATA",
                "BlockSizeBytes": 512, "Status": status_ok(),
                "Links": { "Chassis": link(&bmc.chassis_path()) },
            });
            if d.rotational {
                fields["RotationSpeedRPM"] = json!(7200);
            }
            let b = body(&path, "#Drive.v1_4_0.Drive", fields);
            (path, b)
        })
        .collect()
}

/// `GET Systems/{id}/{kind}`.
fn inventory_list(bmc: &Bmc, id: &str, kind: &str, ty: &str, name: &str) -> RfResult<Response> {
    bmc.system(id)?;
    let base = format!("{}/{kind}", bmc.system_path());
    let paths: Vec<String> = members(bmc, kind)
        .into_iter()
        .map(|(m, _)| format!("{base}/{m}"))
        .collect();
    Ok(collection(&base, ty, name, &paths))
}

/// `GET Systems/{id}/{kind}/{sub}`.
fn inventory_get(bmc: &Bmc, id: &str, kind: &str, sub: &str) -> RfResult<Response> {
    bmc.system(id)?;
    members(bmc, kind)
        .into_iter()
        .find(|(m, _)| m == sub)
        .map(|(_, b)| resource(b, "GET"))
        .ok_or_else(|| RfError::not_found(kind, sub))
}

async fn drive_get(
    State(bmc): State<Bmc>,
    Path((id, sub, drive)): Path<(String, String, String)>,
) -> RfResult<Response> {
    bmc.system(&id)?;
    if sub != STORAGE {
        return Err(RfError::not_found("Storage", &sub));
    }
    drives(&bmc)
        .into_iter()
        .find(|(path, _)| path.rsplit('/').next() == Some(drive.as_str()))
        .map(|(_, b)| resource(b, "GET"))
        .ok_or_else(|| RfError::not_found("Drive", &drive))
}

// --- BIOS ---------------------------------------------------------------------------------------

async fn bios_get(State(bmc): State<Bmc>, Path(id): Path<String>) -> RfResult<Response> {
    bmc.system(&id)?;
    let path = format!("{}/Bios", bmc.system_path());
    let (_, applied_at) = bmc.host.bios_pending();
    let mut settings = json!({
        "@odata.type": "#Settings.v1_3_5.Settings",
        "SettingsObject": link(&format!("{path}/Settings")),
        "SupportedApplyTimes": ["OnReset"],
    });
    if let Some(at) = applied_at {
        settings["Time"] = json!(at);
        settings["Messages"] = json!([{
            "MessageId": format!("{BASE}.Success"),
            "Message": "Successfully Completed Request",
            "Severity": "OK",
            "MessageSeverity": "OK",
        }]);
    }
    let b = body(
        &path,
        "#Bios.v1_1_0.Bios",
        json!({
            "Id": "BIOS",
            "Name": "BIOS Configuration Current Settings",
            "AttributeRegistry": "BiosAttributeRegistry.v1_0_0",
            "Attributes": bmc.host.bios(),
            "@Redfish.Settings": settings,
            "Actions": {
                "#Bios.ResetBios": { "target": format!("{path}/Actions/Bios.ResetBios") },
            },
        }),
    );
    Ok(resource(b, "GET"))
}

fn bios_settings_body(bmc: &Bmc) -> Value {
    let (pending, _) = bmc.host.bios_pending();
    body(
        &format!("{}/Bios/Settings", bmc.system_path()),
        "#Bios.v1_1_0.Bios",
        json!({
            "Id": "Settings",
            "Name": "BIOS Configuration Pending Settings",
            "AttributeRegistry": "BiosAttributeRegistry.v1_0_0",
            "Attributes": pending,
            "@Redfish.SettingsApplyTime": {
                "@odata.type": "#Settings.v1_3_5.PreferredApplyTime",
                "ApplyTime": "OnReset",
                "ApplyTime@Redfish.AllowableValues": ["OnReset"],
            },
        }),
    )
}

async fn bios_settings_get(State(bmc): State<Bmc>, Path(id): Path<String>) -> RfResult<Response> {
    bmc.system(&id)?;
    Ok(resource(bios_settings_body(&bmc), "GET, PATCH"))
}

/// `PATCH Bios/Settings {Attributes}`: staged, applied at the next boot.
async fn bios_settings_patch(
    State(bmc): State<Bmc>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> RfResult<StatusCode> {
    let (current, mut m) = patch_request(&bmc, &id, &headers, &raw, bios_settings_body)?;
    if let Some(apply) = m.remove("@Redfish.SettingsApplyTime") {
        let when = apply.get("ApplyTime").cloned().unwrap_or(Value::Null);
        if when != "OnReset" {
            return Err(RfError::property_not_in_list(
                "#/@Redfish.SettingsApplyTime/ApplyTime",
                &when,
            ));
        }
    }
    let attrs = m.remove("Attributes");
    refuse_rest(&m, &current, "#")?;
    let Some(attrs) = attrs else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let Value::Object(attrs) = attrs else {
        return Err(RfError::property_type("#/Attributes", &attrs));
    };
    let mut staged = BTreeMap::new();
    for (k, v) in attrs {
        let pointer = format!("#/Attributes/{k}");
        bios::validate(&k, &v).map_err(|e| match e {
            bios::Invalid::Unknown(_) => RfError::property_unknown(&pointer),
            bios::Invalid::Type(..) => RfError::property_type(&pointer, &v),
            bios::Invalid::NotInList(..) => RfError::property_not_in_list(&pointer, &v),
        })?;
        staged.insert(k, v);
    }
    bmc.host.stage_bios(staged);
    Ok(StatusCode::NO_CONTENT)
}

async fn bios_reset(State(bmc): State<Bmc>, Path(id): Path<String>) -> RfResult<StatusCode> {
    bmc.system(&id)?;
    bmc.host.stage_bios_defaults();
    Ok(StatusCode::NO_CONTENT)
}

// --- virtual media ------------------------------------------------------------------------------

/// The virtual media collection's path under the resource the request came in by: the
/// system (`Systems/{id}/VirtualMedia`, Redfish 2021+) or the manager (older clients).
fn vmedia_base(bmc: &Bmc, uri: &Uri, id: &str) -> RfResult<String> {
    if uri.path().starts_with("/redfish/v1/Systems/") {
        bmc.system(id)?;
        Ok(format!("{}/VirtualMedia", bmc.system_path()))
    } else if id == MANAGER {
        Ok(format!("{}/VirtualMedia", bmc.manager_path()))
    } else {
        Err(RfError::not_found("Manager", id))
    }
}

fn vmedia_slot(bmc: &Bmc, uri: &Uri, id: &str, vid: &str) -> RfResult<String> {
    let base = vmedia_base(bmc, uri, id)?;
    if vid == CD {
        Ok(format!("{base}/{CD}"))
    } else {
        Err(RfError::not_found("VirtualMedia", vid))
    }
}

async fn vmedia_list(
    State(bmc): State<Bmc>,
    uri: Uri,
    Path(id): Path<String>,
) -> RfResult<Response> {
    let base = vmedia_base(&bmc, &uri, &id)?;
    Ok(collection(
        &base,
        "VirtualMediaCollection",
        "Virtual Media Services",
        &[format!("{base}/{CD}")],
    ))
}

async fn vmedia_get(
    State(bmc): State<Bmc>,
    uri: Uri,
    Path((id, vid)): Path<(String, String)>,
) -> RfResult<Response> {
    let path = vmedia_slot(&bmc, &uri, &id, &vid)?;
    let vm = bmc.host.virtual_media();
    let image_name = vm
        .image
        .as_deref()
        .and_then(|i| i.rsplit('/').next())
        .map(str::to_string);
    let b = body(
        &path,
        "#VirtualMedia.v1_3_0.VirtualMedia",
        json!({
            "Id": CD,
            "Name": "Virtual CD",
            "MediaTypes": ["CD", "DVD"],
            "Image": vm.image,
            "ImageName": image_name,
            "Inserted": vm.inserted,
            "WriteProtected": vm.write_protected,
            "ConnectedVia": if vm.image.is_some() { "URI" } else { "NotConnected" },
            "Status": status_ok(),
            "Actions": {
                "#VirtualMedia.InsertMedia": {
                    "target": format!("{path}/Actions/VirtualMedia.InsertMedia"),
                    "TransferProtocolType@Redfish.AllowableValues": ["HTTP", "HTTPS"],
                },
                "#VirtualMedia.EjectMedia": {
                    "target": format!("{path}/Actions/VirtualMedia.EjectMedia"),
                },
            },
        }),
    );
    Ok(resource(b, "GET"))
}

/// `#VirtualMedia.InsertMedia {Image, Inserted, WriteProtected, …}`. The image is not
/// fetched; a slot already holding one answers 409 (eject first).
async fn vmedia_insert(
    State(bmc): State<Bmc>,
    uri: Uri,
    Path((id, vid)): Path<(String, String)>,
    raw: Bytes,
) -> RfResult<StatusCode> {
    const ACTION: &str = "VirtualMedia.InsertMedia";
    vmedia_slot(&bmc, &uri, &id, &vid)?;
    let m = object(&raw)?;
    let image = match m.get("Image") {
        None => return Err(RfError::parameter_missing(ACTION, "Image")),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(RfError::parameter_type(ACTION, "Image", other)),
    };
    if !(image.starts_with("http://") || image.starts_with("https://")) {
        return Err(RfError::bad_request(
            "ActionParameterValueFormatError",
            format!(
                "The value {image:?} for the parameter Image in the action {ACTION} is of a \
                 different format than the parameter can accept."
            ),
        )
        .about("#/Image"));
    }
    let flag = |k: &str| match m.get(k) {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(RfError::parameter_type(ACTION, k, other)),
    };
    let (inserted, write_protected) = (flag("Inserted")?, flag("WriteProtected")?);
    for (k, v) in &m {
        let ok = match k.as_str() {
            "Image" | "Inserted" | "WriteProtected" => true,
            "UserName" | "Password" => v.is_string(),
            "TransferProtocolType" => matches!(v.as_str(), Some("HTTP" | "HTTPS")),
            "TransferMethod" => matches!(v.as_str(), Some("Stream" | "Upload")),
            _ => return Err(RfError::parameter_unknown(ACTION, k)),
        };
        if !ok {
            return Err(RfError::parameter_not_in_list(ACTION, k, v));
        }
    }
    if bmc.host.insert_media(&image, inserted, write_protected) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(RfError::new(
            StatusCode::CONFLICT,
            "ResourceInUse",
            "The change to the requested resource failed because the resource is in use or in \
             transition: a medium is already inserted; eject it first.",
        ))
    }
}

async fn vmedia_eject(
    State(bmc): State<Bmc>,
    uri: Uri,
    Path((id, vid)): Path<(String, String)>,
    raw: Bytes,
) -> RfResult<StatusCode> {
    vmedia_slot(&bmc, &uri, &id, &vid)?;
    if let Some(k) = object(&raw)?.keys().next() {
        return Err(RfError::parameter_unknown("VirtualMedia.EjectMedia", k));
    }
    bmc.host.eject_media();
    Ok(StatusCode::NO_CONTENT)
}

// --- manager and chassis ----------------------------------------------------------------------

async fn manager_list(State(bmc): State<Bmc>) -> Response {
    collection(
        &format!("{V1}/Managers"),
        "ManagerCollection",
        "Manager Collection",
        &[bmc.manager_path()],
    )
}

async fn manager_get(State(bmc): State<Bmc>, Path(id): Path<String>) -> RfResult<Response> {
    if id != MANAGER {
        return Err(RfError::not_found("Manager", &id));
    }
    let path = bmc.manager_path();
    let b = body(
        &path,
        "#Manager.v1_10_0.Manager",
        json!({
            "Id": MANAGER,
            "Name": "Manager",
            "ManagerType": "BMC",
            "UUID": bmc.service_uuid(),
            "Model": "Strata SimBMC",
            "FirmwareVersion": env!("CARGO_PKG_VERSION"),
            "PowerState": "On",
            "Status": status_ok(),
            "VirtualMedia": link(&format!("{path}/VirtualMedia")),
            "Links": {
                "ManagerForServers": [link(&bmc.system_path())],
                "ManagerForChassis": [link(&bmc.chassis_path())],
                "ManagerInChassis": link(&bmc.chassis_path()),
            },
        }),
    );
    Ok(resource(b, "GET"))
}

async fn chassis_list(State(bmc): State<Bmc>) -> Response {
    collection(
        &format!("{V1}/Chassis"),
        "ChassisCollection",
        "Chassis Collection",
        &[bmc.chassis_path()],
    )
}

async fn chassis_get(State(bmc): State<Bmc>, Path(id): Path<String>) -> RfResult<Response> {
    if id != CHASSIS {
        return Err(RfError::not_found("Chassis", &id));
    }
    let inv = bmc.host.inventory();
    let b = body(
        &bmc.chassis_path(),
        "#Chassis.v1_10_0.Chassis",
        json!({
            "Id": CHASSIS,
            "Name": "Computer System Chassis",
            "ChassisType": "RackMount",
            "Manufacturer": inv.system.manufacturer,
            "Model": inv.system.model,
            "SerialNumber": inv.system.serial_number,
            "PowerState": bmc.host.power().as_str(),
            "Status": status_ok(),
            "Links": {
                "ComputerSystems": [link(&bmc.system_path())],
                "ManagedBy": [link(&bmc.manager_path())],
            },
        }),
    );
    Ok(resource(b, "GET"))
}
