//! Usage (`os-simple-tenant-usage`): what each project's servers used over a window, as
//! Nova's `SimpleTenantUsageController` reckons it. A server counts when it was launched
//! before the window's end and not terminated before its start; it is charged the hours of
//! the window it ran in (from `launched_at`, or the window's start, to `terminated_at`, or the
//! window's end), times its flavor's vCPUs, memory and local disk. Deleted servers keep their
//! rows (soft delete), so they count for the windows they ran in. The window's end is clamped
//! to now. From 2.40 the servers are paged (`limit`, `marker`) with a `next` link.
//!
//! Listing every project is admin-only; one project's usage is its members' (and admins').

use super::views::nova_time;
use super::{next_link, page_limit, Links};
use crate::error::{NovaError, NovaResult};
use crate::extract::{Auth, Mv, Pairs};
use crate::server::Server;
use crate::server_db as sdb;
use crate::ComputeService;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use strata_core::time::now_micros;

pub fn routes() -> Router<ComputeService> {
    Router::new()
        .route("/os-simple-tenant-usage", get(usage_list))
        .route("/os-simple-tenant-usage/{tenant_id}", get(usage_show))
}

const LIST_PARAMS: &[&str] = &["start", "end", "detailed", "limit", "marker"];
const SHOW_PARAMS: &[&str] = &["start", "end", "limit", "marker"];

/// Parses a time as Nova's `_parse_datetime` does: `%Y-%m-%dT%H:%M:%S`, with `.%f`, or
/// `%Y-%m-%d %H:%M:%S.%f`, always UTC; absent or empty means now.
fn parse_time(v: Option<&str>) -> NovaResult<i64> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(now_micros());
    };
    let invalid =
        || NovaError::bad_request("Invalid datetime string: Datetime is in invalid format");
    let (date, time) = s
        .split_once('T')
        .or_else(|| s.split_once(' ').filter(|(_, t)| t.contains('.')))
        .ok_or_else(invalid)?;
    let (hms, frac) = match time.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (time, None),
    };
    let ok_date = date.len() == 10
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[7] == b'-'
        && date
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    let ok_hms = hms.len() == 8
        && hms.as_bytes()[2] == b':'
        && hms.as_bytes()[5] == b':'
        && hms
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || i == 5 || b.is_ascii_digit());
    let ok_frac =
        frac.is_none_or(|f| !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()));
    if !(ok_date && ok_hms && ok_frac) {
        return Err(invalid());
    }
    let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
    strata_core::time::parse_iso(&format!("{date}T{hms}{frac}Z")).ok_or_else(invalid)
}

/// `(start, stop, detailed)` of the request; the stop is clamped to now.
fn window(pairs: &Pairs) -> NovaResult<(i64, i64, bool)> {
    let start = parse_time(pairs.get("start"))?;
    // Nova reads "now" for a missing end after the start: a later instant.
    let end = match pairs.get("end").filter(|e| !e.is_empty()) {
        Some(e) => parse_time(Some(e))?,
        None => now_micros().max(start + 1),
    };
    if start >= end {
        return Err(NovaError::bad_request(
            "Invalid start time. The start time cannot occur after the end time.",
        ));
    }
    let detailed = pairs.get("detailed") == Some("1");
    Ok((start, end.min(now_micros()), detailed))
}

/// Hours of `[start, stop]` the server ran in (Nova's `_hours_for`).
fn hours_for(s: &Server, start: i64, stop: i64) -> f64 {
    let Some(launched) = s.launched_at else {
        return 0.0;
    };
    if s.terminated_at.is_some_and(|t| t < start) || launched > stop {
        return 0.0;
    }
    let from = launched.max(start);
    let to = s.terminated_at.map_or(stop, |t| t.min(stop));
    (to - from) as f64 / 3_600_000_000.0
}

/// The servers of the window (of one project, or all), oldest first, paged.
async fn servers_in_window(
    svc: &ComputeService,
    project: Option<&str>,
    start: i64,
    stop: i64,
    limit: usize,
    marker: Option<&str>,
) -> NovaResult<Vec<Server>> {
    let scan = sdb::Scan {
        project_id: project.map(String::from),
        deleted: None,
        ..Default::default()
    };
    // TODO-perf: narrow by launch and termination time in SQL once these are columns.
    let mut rows: Vec<Server> = sdb::scan(svc.store(), &scan)
        .await?
        .into_iter()
        .filter(|s| {
            s.launched_at.is_some_and(|l| l < stop) && s.terminated_at.is_none_or(|t| t > start)
        })
        .collect();
    rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if let Some(m) = marker {
        let at = rows
            .iter()
            .position(|s| s.id == m)
            .ok_or_else(|| NovaError::bad_request(format!("Marker {m} could not be found.")))?;
        rows.drain(..=at);
    }
    rows.truncate(limit);
    Ok(rows)
}

/// Per project usage summaries (in the order projects first appear) and every server usage.
fn summaries(rows: &[Server], start: i64, stop: i64, detailed: bool) -> Vec<Value> {
    let now = now_micros();
    let mut out: Vec<(String, Map<String, Value>)> = Vec::new();
    for s in rows {
        let hours = hours_for(s, start, stop);
        let local_gb = s.flavor.root_gb + s.flavor.ephemeral_gb;
        let launched = s.launched_at.unwrap_or(s.created_at);
        let (state, uptime) = match s.terminated_at {
            Some(t) => ("terminated".to_string(), (t - launched) / 1_000_000),
            None => (s.vm_state.clone(), (now - launched) / 1_000_000),
        };
        let info = json!({
            "hours": hours,
            "flavor": s.flavor.name,
            "instance_id": s.id,
            "name": s.name,
            "tenant_id": s.project_id,
            "memory_mb": s.flavor.memory_mb,
            "local_gb": local_gb,
            "vcpus": s.flavor.vcpus,
            "started_at": nova_time(launched),
            "ended_at": s.terminated_at.map(nova_time),
            "state": state,
            "uptime": uptime,
        });
        let at = match out.iter().position(|(p, _)| *p == s.project_id) {
            Some(i) => i,
            None => {
                let mut m = Map::new();
                m.insert("tenant_id".into(), json!(s.project_id));
                if detailed {
                    m.insert("server_usages".into(), json!([]));
                }
                for k in [
                    "total_local_gb_usage",
                    "total_vcpus_usage",
                    "total_memory_mb_usage",
                    "total_hours",
                ] {
                    m.insert(k.into(), json!(0.0));
                }
                m.insert("start".into(), json!(nova_time(start)));
                m.insert("stop".into(), json!(nova_time(stop)));
                out.push((s.project_id.clone(), m));
                out.len() - 1
            }
        };
        let m = &mut out[at].1;
        let add = |m: &mut Map<String, Value>, k: &str, x: f64| {
            let v = m.get(k).and_then(Value::as_f64).unwrap_or(0.0) + x;
            m.insert(k.into(), json!(v));
        };
        add(m, "total_local_gb_usage", local_gb as f64 * hours);
        add(m, "total_vcpus_usage", s.flavor.vcpus as f64 * hours);
        add(
            m,
            "total_memory_mb_usage",
            s.flavor.memory_mb as f64 * hours,
        );
        add(m, "total_hours", hours);
        if let Some(Value::Array(list)) = m.get_mut("server_usages") {
            list.push(info);
        }
    }
    out.into_iter().map(|(_, m)| Value::Object(m)).collect()
}

/// `limit` and `marker` from 2.40 (the maximum page and no marker before).
fn paging(pairs: &Pairs, paged: bool) -> NovaResult<(usize, Option<String>)> {
    if !paged {
        return Ok((1000, None));
    }
    Ok((page_limit(pairs)?, pairs.get("marker").map(String::from)))
}

/// `GET /os-simple-tenant-usage` (admin): every project's usage. `/os-simple-tenant-usage/`
/// names an empty project: 404, as in Nova.
pub async fn usage_list(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    pairs: Pairs,
    trimmed: Option<Extension<strata_api::TrimmedSlash>>,
) -> NovaResult<Json<Value>> {
    if trimmed.is_some() {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    pairs.only(mv, LIST_PARAMS)?;
    auth.require_admin("os_compute_api:os-simple-tenant-usage:list")?;
    let (start, stop, detailed) = window(&pairs)?;
    let paged = mv.at_least(40);
    let (limit, marker) = paging(&pairs, paged)?;
    let rows = servers_in_window(&svc, None, start, stop, limit, marker.as_deref()).await?;
    let mut out = json!({ "tenant_usages": summaries(&rows, start, stop, detailed) });
    if paged && limit > 0 && rows.len() == limit {
        if let Some(last) = rows.last() {
            out["tenant_usages_links"] = next_link(
                &format!("{}/os-simple-tenant-usage", links.self_base),
                &pairs,
                limit,
                &last.id,
            );
        }
    }
    Ok(Json(out))
}

/// `GET /os-simple-tenant-usage/{tenant_id}`: one project's usage (`{}` when it used nothing).
pub async fn usage_show(
    State(svc): State<ComputeService>,
    auth: Auth,
    Mv(mv): Mv,
    links: Links,
    pairs: Pairs,
    Path(tenant_id): Path<String>,
) -> NovaResult<Json<Value>> {
    pairs.only(mv, SHOW_PARAMS)?;
    if tenant_id.is_empty() {
        return Err(NovaError::not_found("The resource could not be found."));
    }
    auth.require_reader_of(&tenant_id, "os_compute_api:os-simple-tenant-usage:show")?;
    let (start, stop, _) = window(&pairs)?;
    let paged = mv.at_least(40);
    let (limit, marker) = paging(&pairs, paged)?;
    let rows = servers_in_window(
        &svc,
        Some(&tenant_id),
        start,
        stop,
        limit,
        marker.as_deref(),
    )
    .await?;
    let usage = summaries(&rows, start, stop, true)
        .into_iter()
        .next()
        .unwrap_or_else(|| json!({}));
    let mut out = json!({ "tenant_usage": usage });
    if paged && limit > 0 && rows.len() == limit {
        if let Some(last) = rows.last() {
            out["tenant_usage_links"] = next_link(
                &format!("{}/os-simple-tenant-usage/{tenant_id}", links.self_base),
                &pairs,
                limit,
                &last.id,
            );
        }
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_novas_formats() {
        let t = parse_time(Some("2024-01-02T03:04:05")).unwrap();
        assert_eq!(nova_time(t), "2024-01-02T03:04:05.000000");
        let t = parse_time(Some("2024-01-02T03:04:05.5")).unwrap();
        assert_eq!(nova_time(t), "2024-01-02T03:04:05.500000");
        let t = parse_time(Some("2024-01-02 03:04:05.123456")).unwrap();
        assert_eq!(nova_time(t), "2024-01-02T03:04:05.123456");
        for bad in [
            "2024-01-02",
            "2024-01-02T03:04:05Z",
            "yesterday",
            "2024-01-02 03:04:05",
        ] {
            assert!(parse_time(Some(bad)).is_err(), "{bad}");
        }
    }
}
