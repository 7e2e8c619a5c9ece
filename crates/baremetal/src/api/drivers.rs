//! `/v1/drivers` (the hardware types this conductor serves, their interfaces and `driver_info`
//! properties) and `/v1/conductors` (this process, the one conductor).

use super::nodes::only;
use crate::drivers::{hardware_type, HardwareType, HARDWARE_TYPES};
use crate::error::{IronicError, IronicResult};
use crate::extract::{Admin, Mv, Query};
use crate::model::{self, links};
use crate::version::Microversion;
use crate::BaremetalService;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

/// The interfaces a driver view shows at `mv` (storage from 1.33, rescue 1.38, bios 1.40,
/// firmware 1.86).
fn shown_interface(kind: &str, mv: Microversion) -> bool {
    match kind {
        "storage" => mv.at_least(33),
        "rescue" => mv.at_least(38),
        "bios" => mv.at_least(40),
        "firmware" => mv.at_least(86),
        _ => true,
    }
}

fn driver_view(
    svc: &BaremetalService,
    hw: &HardwareType,
    mv: Microversion,
    detail: bool,
) -> Map<String, Value> {
    let base = svc.root_url();
    let mut d = Map::new();
    d.insert("name".into(), json!(hw.name));
    d.insert("hosts".into(), json!([svc.hostname()]));
    d.insert("links".into(), links(&base, "drivers", hw.name));
    if mv.at_least(14) {
        d.insert(
            "properties".into(),
            links(&base, "drivers", &format!("{}/properties", hw.name)),
        );
    }
    if mv.at_least(30) {
        d.insert("type".into(), json!("dynamic"));
        if detail {
            for kind in model::INTERFACES {
                if !shown_interface(kind, mv) {
                    continue;
                }
                let impls = hw.implementations(kind);
                d.insert(format!("default_{kind}_interface"), json!(impls.first()));
                d.insert(format!("enabled_{kind}_interfaces"), json!(impls));
            }
        }
    }
    d
}

fn keep_fields(d: &mut Map<String, Value>, fields: &Option<Vec<String>>) -> IronicResult<()> {
    if let Some(f) = fields {
        let valid: Vec<String> = d.keys().cloned().collect();
        super::unknown_fields(f, &valid)?;
        d.retain(|k, _| k == "links" || f.contains(k));
    }
    Ok(())
}

/// `GET /v1/drivers`.
pub async fn driver_list(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    q: Query,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:driver:get")?;
    only(&q, &["type", "detail", "fields"])?;
    let detail = q.boolean("detail")?;
    let fields = q.list("fields");
    if fields.is_some() && detail == Some(true) {
        return Err(IronicError::invalid(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    super::nodes::needs(detail.is_some(), mv, 30)?;
    super::nodes::needs(q.get("type").is_some(), mv, 30)?;
    if fields.is_some() && !mv.at_least(77) {
        return Err(IronicError::not_acceptable());
    }
    let kind = q.get("type");
    if !matches!(kind, None | Some("classic") | Some("dynamic")) {
        return Err(IronicError::invalid(
            "\"type\" filter must be one of \"classic\" or \"dynamic\", if specified.",
        ));
    }
    let mut drivers = Vec::new();
    if kind != Some("classic") {
        for hw in HARDWARE_TYPES {
            let mut d = driver_view(&svc, hw, mv, detail == Some(true));
            keep_fields(&mut d, &fields)?;
            drivers.push(Value::Object(d));
        }
    }
    Ok(Json(json!({ "drivers": drivers })))
}

fn find(name: &str) -> IronicResult<&'static HardwareType> {
    hardware_type(name).ok_or_else(|| {
        IronicError::not_found(format!(
            "Could not find the following driver(s) or hardware type(s): {name}."
        ))
    })
}

/// `GET /v1/drivers/{name}`.
pub async fn driver_get(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(name): Path<String>,
    q: Query,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:driver:get")?;
    only(&q, &["fields"])?;
    let fields = q.list("fields");
    if fields.is_some() && !mv.at_least(77) {
        return Err(IronicError::not_acceptable());
    }
    let hw = find(&name)?;
    let mut d = driver_view(&svc, hw, mv, true);
    keep_fields(&mut d, &fields)?;
    Ok(Json(Value::Object(d)))
}

/// `GET /v1/drivers/{name}/properties`: the `driver_info` keys the hardware type reads.
pub async fn driver_properties(
    State(_svc): State<BaremetalService>,
    admin: Admin,
    Path(name): Path<String>,
) -> IronicResult<Json<Value>> {
    admin.require("baremetal:driver:get_properties")?;
    let hw = find(&name)?;
    let m: Map<String, Value> = hw
        .properties
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Ok(Json(Value::Object(m)))
}

fn conductor_view(svc: &BaremetalService, detail: bool) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("hostname".into(), json!(svc.hostname()));
    c.insert("conductor_group".into(), json!(""));
    c.insert("alive".into(), json!(true));
    c.insert(
        "links".into(),
        links(&svc.root_url(), "conductors", svc.hostname()),
    );
    if detail {
        c.insert("created_at".into(), json!(model::iso(svc.started_at())));
        c.insert(
            "updated_at".into(),
            json!(model::iso(strata_core::time::now_micros())),
        );
        let names: Vec<&str> = HARDWARE_TYPES.iter().map(|h| h.name).collect();
        c.insert("drivers".into(), json!(names));
    }
    c
}

fn conductors_exist(mv: Microversion) -> IronicResult<()> {
    if mv.at_least(49) {
        Ok(())
    } else {
        Err(IronicError::not_found("The resource could not be found."))
    }
}

/// `GET /v1/conductors` (1.49+).
pub async fn conductor_list(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    q: Query,
) -> IronicResult<Json<Value>> {
    conductors_exist(mv)?;
    admin.require("baremetal:conductor:get")?;
    only(
        &q,
        &[
            "marker", "limit", "sort_key", "sort_dir", "fields", "detail",
        ],
    )?;
    let fields = super::return_fields(&q, mv, &["hostname", "conductor_group", "alive"], &[])?;
    let page = super::paging_hostname(&q, svc.config().max_limit)?;
    if matches!(page.sort_key.as_str(), "alive" | "drivers") {
        return Err(IronicError::invalid(format!(
            "The sort_key value {} is an invalid field for sorting",
            page.sort_key
        )));
    }
    let mut list = Vec::new();
    let past_marker = page.marker.as_deref().is_none_or(|m| m < svc.hostname());
    if past_marker {
        let mut c = conductor_view(&svc, true);
        keep_fields(&mut c, &fields)?;
        list.push(Value::Object(c));
    }
    Ok(Json(json!({ "conductors": list })))
}

/// `GET /v1/conductors/{hostname}` (1.49+).
pub async fn conductor_get(
    State(svc): State<BaremetalService>,
    admin: Admin,
    Mv(mv): Mv,
    Path(hostname): Path<String>,
    q: Query,
) -> IronicResult<Json<Value>> {
    conductors_exist(mv)?;
    admin.require("baremetal:conductor:get")?;
    only(&q, &["fields"])?;
    if hostname != svc.hostname() {
        return Err(IronicError::not_found(format!(
            "Conductor {hostname} could not be found."
        )));
    }
    let mut c = conductor_view(&svc, true);
    keep_fields(&mut c, &q.list("fields"))?;
    Ok(Json(Value::Object(c)))
}
