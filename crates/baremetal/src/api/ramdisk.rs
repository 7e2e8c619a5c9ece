//! The deploy ramdisk's endpoints (ironic-python-agent's side): `GET /v1/lookup` finds the
//! node a ramdisk runs on and hands it the agent token, once; `POST /v1/heartbeat/{ident}`
//! records that the agent is alive and where to reach it. Neither takes a Keystone token, as
//! in Ironic: the agent token gates the heartbeat, and the lookup only answers for nodes in the
//! states where a ramdisk is expected (Ironic's `restrict_lookup`; with `fast_track` also
//! `enroll`, `manageable` and `available`).

use super::find_node;
use crate::conductor::update_node;
use crate::error::{IronicError, IronicResult};
use crate::extract::{Body, Mv, Query};
use crate::model::{self, Node};
use crate::states;
use crate::version::Microversion;
use crate::BaremetalService;
use axum::extract::{Path, State};
use axum::Json;
use base64::Engine;
use http::StatusCode;
use rand::RngCore;
use serde_json::{json, Value};

/// Ironic's bare `NotFound`, which the ramdisk endpoints answer for every miss so that a
/// wrong state is not told apart from a wrong node.
fn not_found() -> IronicError {
    IronicError::not_found("Resource could not be found.")
}

fn exists(mv: Microversion) -> IronicResult<()> {
    if mv.at_least(22) {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// A new agent token: 32 random bytes, URL-safe base64 without padding (43 characters, as
/// Ironic's `secrets.token_urlsafe(32)`).
fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn config(svc: &BaremetalService, token: &str, n: &Node) -> Value {
    json!({
        "metrics": {"backend": "noop", "prepend_host": false, "prepend_uuid": false,
                    "prepend_host_reverse": true, "global_prefix": null},
        "metrics_statsd": {"statsd_host": "localhost", "statsd_port": 8125},
        "heartbeat_timeout": svc.config().ramdisk_heartbeat_timeout,
        "agent_token": token,
        "agent_token_required": true,
        "agent_md5_checksum_enable": false,
        "disable_deep_image_inspection": false,
        "permitted_image_formats": ["raw", "qcow2", "iso"],
        "agent_skip_bmc_detect": n.interface("management") == Some("redfish"),
        "enable_bios_bootloader_install": false,
        "tls_min_version": null,
        "tls_cipher_suites": null,
    })
}

/// `GET /v1/lookup?addresses=<mac>,…&node_uuid=<uuid>`.
pub async fn lookup(
    State(svc): State<BaremetalService>,
    Mv(mv): Mv,
    q: Query,
) -> IronicResult<Json<Value>> {
    exists(mv)?;
    super::nodes::only(&q, &["addresses", "node_uuid"])?;
    let addresses: Vec<String> = q
        .list("addresses")
        .unwrap_or_default()
        .iter()
        .filter_map(|a| model::normalize_mac(a))
        .collect();
    let node_uuid = q.uuid("node_uuid")?;
    if addresses.is_empty() && node_uuid.is_none() {
        return Err(IronicError::invalid(
            "At least one of 'addresses' and 'node_uuid' parameters is required",
        ));
    }
    let uuid = match node_uuid {
        Some(u) => u,
        None => crate::db::node_by_port_addresses(svc.store(), &addresses)
            .await?
            .ok_or_else(not_found)?,
    };
    let n = crate::db::get_node(svc.store(), &uuid)
        .await?
        .ok_or_else(not_found)?;
    let allowed = if svc.config().fast_track {
        states::FASTTRACK_LOOKUP_ALLOWED
    } else {
        states::LOOKUP_ALLOWED
    };
    if !allowed.contains(&n.provision_state.as_str()) {
        tracing::warn!(node = %n.uuid, state = %n.provision_state, "lookup refused in this state");
        return Err(not_found());
    }
    // The token is handed out once; later lookups get a placeholder that verifies nothing.
    let fresh = new_token();
    let f2 = fresh.clone();
    let n = update_node(&svc, &n.uuid, move |n| {
        if !n.driver_internal_info.contains_key("agent_secret_token") {
            n.driver_internal_info
                .insert("agent_secret_token".into(), json!(f2));
            n.driver_internal_info
                .insert("agent_secret_token_pregenerated".into(), json!(false));
        }
        Ok(())
    })
    .await?;
    let token = match n.driver_internal_info.get("agent_secret_token") {
        Some(Value::String(t)) if *t == fresh => fresh,
        _ => "******".to_string(),
    };
    let fields: Vec<String> = [
        "uuid",
        "properties",
        "instance_info",
        "driver_internal_info",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let node = super::nodes::view(&svc, &n, Microversion::MAX, Some(&fields));
    Ok(Json(
        json!({"node": node, "config": config(&svc, &token, &n)}),
    ))
}

/// `POST /v1/heartbeat/{ident}` with `callback_url`, `agent_token`, `agent_version` (1.36),
/// `agent_verify_ca` (1.68), `agent_status` and `agent_status_message` (1.72), in the body or
/// the query. 202.
pub async fn heartbeat(
    State(svc): State<BaremetalService>,
    Mv(mv): Mv,
    Path(ident): Path<String>,
    q: Query,
    body: Body,
) -> IronicResult<StatusCode> {
    exists(mv)?;
    const ARGS: &[&str] = &[
        "callback_url",
        "agent_version",
        "agent_token",
        "agent_verify_ca",
        "agent_status",
        "agent_status_message",
    ];
    let b = body.object("body")?;
    let mut args = std::collections::HashMap::new();
    for (k, v) in q.0.iter() {
        args.insert(k.clone(), v.clone());
    }
    for (k, v) in &b {
        match v {
            Value::String(s) => {
                args.insert(k.clone(), s.clone());
            }
            Value::Null => {}
            other => {
                return Err(IronicError::invalid(format!(
                    "Argument '{k}' is not a string: {}",
                    crate::patch::py(other)
                )))
            }
        }
    }
    let mut extra: Vec<&String> = args
        .keys()
        .filter(|k| !ARGS.contains(&k.as_str()))
        .collect();
    extra.sort();
    if !extra.is_empty() {
        let names: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
        return Err(IronicError::invalid(format!(
            "Unexpected arguments: {}",
            names.join(", ")
        )));
    }
    let Some(callback_url) = args.get("callback_url").cloned() else {
        return Err(IronicError::invalid(
            "Missing mandatory parameter: callback_url",
        ));
    };
    if args.contains_key("agent_version") && !mv.at_least(36) {
        return Err(IronicError::invalid(
            "Field \"agent_version\" not recognised",
        ));
    }
    if (args.contains_key("agent_status") || args.contains_key("agent_status_message"))
        && !mv.at_least(72)
    {
        return Err(IronicError::invalid(
            "Fields \"agent_status\" and \"agent_status_message\" not recognised.",
        ));
    }
    if args.contains_key("agent_verify_ca") && !mv.at_least(68) {
        return Err(IronicError::invalid(
            "Field \"agent_verify_ca\" not recognised in this version",
        ));
    }
    let n = find_node(&svc, &ident, mv).await?;
    let scheme_ok = callback_url
        .split_once("://")
        .is_some_and(|(scheme, rest)| scheme.contains("http") && !rest.is_empty());
    if !scheme_ok && !callback_url.is_empty() {
        return Err(IronicError::invalid(
            "An issue with the supplied \"callback_url\" has been detected.",
        ));
    }
    if let Some(Value::String(known)) = n.driver_internal_info.get("agent_url") {
        if *known != callback_url {
            return Err(IronicError::invalid(
                "Detected change in ramdisk provided \"callback_url\"",
            ));
        }
    }
    let Some(token) = args.get("agent_token").cloned() else {
        return Err(IronicError::invalid(
            "Agent token is required for heartbeat processing.",
        ));
    };
    if let Some(s) = args.get("agent_status") {
        if !["start", "end", "error"].contains(&s.as_str()) {
            return Err(IronicError::invalid(
                "Agent status is invalid. Valid states are start,end,error.",
            ));
        }
    }
    let version = args.get("agent_version").cloned();
    update_node(&svc, &n.uuid, move |n| {
        let valid = matches!(n.driver_internal_info.get("agent_secret_token"),
            Some(Value::String(t)) if *t == token && t != "******");
        if !valid {
            return Err(IronicError::invalid(
                "Invalid or missing agent token received.",
            ));
        }
        let dii = &mut n.driver_internal_info;
        dii.insert("agent_url".into(), json!(callback_url));
        dii.insert(
            "agent_last_heartbeat".into(),
            json!(model::iso(strata_core::time::now_micros())),
        );
        dii.insert(
            "agent_version".into(),
            json!(version.clone().unwrap_or_else(|| "3.0.0".into())),
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_43_url_safe_characters() {
        let t = super::new_token();
        assert_eq!(t.len(), 43);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(t, super::new_token());
    }
}
