//! Routes of the bare-metal service, nested under `/baremetal`, all behind the microversion
//! middleware: version discovery at the root and `/v1` (no token, as in Ironic), the agent's
//! `lookup` and `heartbeat` (no token: the agent token gates them), and everything else with a
//! Keystone token. Each resource file exposes its handlers; names are `<resource>_<verb>`.

pub mod drivers;
pub mod nodes;
pub mod ports;
pub mod provision;
pub mod ramdisk;
pub mod versions;

use crate::error::{IronicError, IronicResult};
use crate::extract::Query;
use crate::model::{self, Node};
use crate::version::Microversion;
use crate::{db, BaremetalService};
use axum::routing::{get, post, put};
use axum::Router;
use http::StatusCode;
use serde_json::{Map, Value};

/// Every bare-metal route.
pub fn router() -> Router<BaremetalService> {
    let v1 = Router::new()
        .route("/", get(versions::v1))
        .route("/nodes", get(nodes::node_list).post(nodes::node_create))
        .route("/nodes/detail", get(nodes::node_list))
        .route("/nodes/validate", get(nodes::node_validate_query))
        .route(
            "/nodes/{ident}",
            get(nodes::node_get)
                .patch(nodes::node_update)
                .delete(nodes::node_delete),
        )
        .route("/nodes/{ident}/validate", get(nodes::node_validate))
        .route("/nodes/{ident}/states", get(nodes::node_states))
        .route(
            "/nodes/{ident}/states/provision",
            put(provision::node_set_provision_state),
        )
        .route(
            "/nodes/{ident}/states/power",
            put(provision::node_set_power_state),
        )
        .route(
            "/nodes/{ident}/management/boot_device",
            get(provision::node_get_boot_device).put(provision::node_set_boot_device),
        )
        .route(
            "/nodes/{ident}/management/boot_device/supported",
            get(provision::node_supported_boot_devices),
        )
        .route(
            "/nodes/{ident}/maintenance",
            put(nodes::node_maintenance_set).delete(nodes::node_maintenance_unset),
        )
        .route(
            "/nodes/{ident}/traits",
            get(nodes::node_traits_list)
                .put(nodes::node_traits_replace)
                .delete(nodes::node_traits_clear),
        )
        .route(
            "/nodes/{ident}/traits/{trait_name}",
            put(nodes::node_trait_add).delete(nodes::node_trait_remove),
        )
        .route("/nodes/{ident}/ports", get(ports::node_port_list))
        .route("/nodes/{ident}/ports/detail", get(ports::node_port_list))
        .route("/ports", get(ports::port_list).post(ports::port_create))
        .route("/ports/detail", get(ports::port_list))
        .route(
            "/ports/{ident}",
            get(ports::port_get)
                .patch(ports::port_update)
                .delete(ports::port_delete),
        )
        .route("/drivers", get(drivers::driver_list))
        .route("/drivers/{name}", get(drivers::driver_get))
        .route(
            "/drivers/{name}/properties",
            get(drivers::driver_properties),
        )
        .route("/conductors", get(drivers::conductor_list))
        .route("/conductors/{hostname}", get(drivers::conductor_get))
        .route("/lookup", get(ramdisk::lookup))
        .route("/heartbeat/{ident}", post(ramdisk::heartbeat))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .route("/", get(versions::root))
        .nest("/v1", v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::version::layer))
}

async fn not_found() -> IronicError {
    IronicError::not_found("The resource could not be found.")
}

async fn method_not_allowed() -> IronicError {
    IronicError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
}

/// Finds a node by UUID or name as Ironic's `get_rpc_node` does: a UUID; from 1.5 a logical
/// name; otherwise 400/404. Below 1.91 a `.json` suffix is ignored when nothing has that name.
pub async fn find_node(
    svc: &BaremetalService,
    ident: &str,
    mv: Microversion,
) -> IronicResult<Node> {
    match lookup_node(svc, ident, mv).await {
        Err(e) if e.status == StatusCode::NOT_FOUND && !mv.at_least(91) => {
            match ident.strip_suffix(".json") {
                Some(stem) => lookup_node(svc, stem, mv).await,
                None => Err(e),
            }
        }
        other => other,
    }
}

async fn lookup_node(svc: &BaremetalService, ident: &str, mv: Microversion) -> IronicResult<Node> {
    if model::is_uuid_like(ident) {
        let uuid = model::canonical_uuid(ident);
        return db::get_node(svc.store(), &uuid)
            .await?
            .ok_or_else(|| IronicError::node_not_found(ident));
    }
    if mv.at_least(5) {
        if !model::is_valid_logical_name(ident) {
            return Err(IronicError::invalid(format!(
                "Expected a logical name or UUID but received {ident}."
            )));
        }
        return db::get_node_by_name(svc.store(), ident)
            .await?
            .ok_or_else(|| IronicError::node_not_found(ident));
    }
    Err(IronicError::node_not_found(ident))
}

/// `fields`, `detail` and the default fields of a list, as Ironic's
/// `get_request_return_fields` decides them (and the version gates of `fields` and
/// `detail`). `None`: every field.
pub fn return_fields(
    q: &Query,
    mv: Microversion,
    defaults: &[&str],
    table: &[(&str, u32)],
) -> IronicResult<Option<Vec<String>>> {
    let fields = q.list("fields");
    let detail = q.boolean("detail")?;
    if fields.is_some() && !mv.at_least(8) {
        return Err(IronicError::not_acceptable());
    }
    if let Some(f) = &fields {
        model::check_fields_allowed(table, f, mv)?;
    }
    if detail.is_some() && !mv.at_least(43) {
        return Err(IronicError::bad_param(format!(
            "Invalid query parameter ?detail={} received.",
            q.get("detail").unwrap_or_default()
        )));
    }
    if fields.is_some() && detail == Some(true) {
        return Err(IronicError::bad_param(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    Ok(match (fields, detail) {
        (Some(f), _) => Some(f),
        (None, Some(true)) => None,
        (None, _) => Some(defaults.iter().map(|s| s.to_string()).collect()),
    })
}

/// The fields a list returns, after Ironic's checks of its query: parameters other than
/// `params` are refused (`…/detail` takes neither `fields` nor `detail`), `fields` and
/// `detail` are decided by [`return_fields`], and requested field names go through
/// `check_names`.
pub fn list_fields(
    q: &Query,
    mv: Microversion,
    params: &[&str],
    detail_path: bool,
    defaults: &[&str],
    table: &[(&str, u32)],
    check_names: impl Fn(&[String]) -> IronicResult<()>,
) -> IronicResult<Option<Vec<String>>> {
    if detail_path {
        let allowed: Vec<&str> = params
            .iter()
            .copied()
            .filter(|p| *p != "fields" && *p != "detail")
            .collect();
        nodes::only(q, &allowed)?;
        return Ok(None);
    }
    nodes::only(q, params)?;
    let fields = return_fields(q, mv, defaults, table)?;
    if let (Some(f), true) = (&fields, q.get("fields").is_some()) {
        check_names(f)?;
    }
    Ok(fields)
}

/// 400 naming the requested fields a resource does not have (Ironic's
/// `check_for_invalid_fields`).
pub fn unknown_fields(fields: &[String], valid: &[String]) -> IronicResult<()> {
    let bad: Vec<&str> = fields
        .iter()
        .filter(|f| !valid.contains(f))
        .map(|s| s.as_str())
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(IronicError::invalid(format!(
        "Field(s) \"{}\" are not valid",
        bad.join(", ")
    )))
}

/// Whether the request is for a `…/detail` collection.
pub fn is_detail(uri: &http::Uri) -> bool {
    uri.path().ends_with("/detail")
}

/// Paging parameters: `limit` (at most `max_limit`), `marker`, `sort_key`, `sort_dir`.
pub struct Paging {
    pub limit: i64,
    pub marker: Option<String>,
    pub sort_key: String,
    pub desc: bool,
}

pub fn paging(q: &Query, max_limit: u64) -> IronicResult<Paging> {
    paging_with(q, max_limit, true)
}

/// The same, with a marker that is a host name (conductors) rather than a UUID.
pub fn paging_hostname(q: &Query, max_limit: u64) -> IronicResult<Paging> {
    paging_with(q, max_limit, false)
}

fn paging_with(q: &Query, max_limit: u64, uuid_marker: bool) -> IronicResult<Paging> {
    let limit = match q.integer("limit")? {
        None => max_limit as i64,
        Some(l) if l <= 0 => return Err(IronicError::invalid("Limit must be positive")),
        Some(l) => l.min(max_limit as i64),
    };
    let dir = q.get("sort_dir").unwrap_or("asc");
    let desc = match dir {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(IronicError::invalid(format!(
                "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
            )))
        }
    };
    let marker = if uuid_marker {
        q.uuid("marker")?
    } else {
        q.get("marker").map(str::to_string)
    };
    Ok(Paging {
        limit,
        marker,
        sort_key: q.get("sort_key").unwrap_or("id").to_string(),
        desc,
    })
}

/// `{"<item_name>": items, "next": …}`: the collection with Ironic's `next` link when a full
/// page was returned. `args` are the query parameters repeated in the link.
pub fn collection(
    svc: &BaremetalService,
    item_name: &str,
    items: Vec<Value>,
    limit: i64,
    resource: &str,
    args: &[(&str, String)],
    fields: Option<&[String]>,
) -> Value {
    let mut out = Map::new();
    let next = (limit > 0 && items.len() as i64 == limit)
        .then(|| {
            items
                .last()
                .and_then(|l| l["uuid"].as_str().or_else(|| l["hostname"].as_str()))
                .map(str::to_string)
        })
        .flatten();
    out.insert(item_name.into(), Value::Array(items));
    if let Some(marker) = next {
        let mut q = String::new();
        for (k, v) in args {
            q.push_str(&format!("{k}={v}&"));
        }
        if let Some(f) = fields {
            q.push_str(&format!("fields={}&", f.join(",")));
        }
        out.insert(
            "next".into(),
            Value::String(format!(
                "{}/v1/{resource}?{q}limit={limit}&marker={marker}",
                svc.root_url()
            )),
        );
    }
    Value::Object(out)
}

/// A 202 with Ironic's `Location` (the node's `states`).
pub fn accepted_at(svc: &BaremetalService, ident: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        StatusCode::ACCEPTED,
        [(
            http::header::LOCATION,
            format!("{}/v1/nodes/{ident}/states", svc.root_url()),
        )],
    )
        .into_response()
}
