//! Wire views shared by the resource files: links, timestamps, list parameters (sorting,
//! `limit`/`marker`/`offset`) and the `*_links` next page.

use crate::error::{CinderError, CinderResult};
use crate::model::{Attachment, Snapshot, Volume};
use crate::version::Microversion;
use crate::VolumeService;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Cinder's timestamp spelling: `2026-11-21T15:04:05.123456` (no zone).
pub fn ts(us: i64) -> String {
    strata_core::time::iso_micros_z(us)
        .trim_end_matches('Z')
        .to_string()
}

pub fn ts_opt(us: Option<i64>) -> Value {
    us.map(|u| Value::String(ts(u))).unwrap_or(Value::Null)
}

/// `self` and `bookmark` links of a resource.
pub fn links(svc: &VolumeService, project: &str, collection: &str, id: &str) -> Value {
    let root = svc.root_url();
    json!([
        {"href": format!("{root}/v3/{project}/{collection}/{id}"), "rel": "self"},
        {"href": format!("{root}/{project}/{collection}/{id}"), "rel": "bookmark"},
    ])
}

/// How a volume's attachments are shown inside it.
pub fn volume_attachments(v: &Volume, atts: &[Attachment]) -> Value {
    Value::Array(
        atts.iter()
            .filter(|a| a.attach_status == "attached")
            .map(|a| {
                json!({
                    "server_id": a.instance_uuid,
                    "attachment_id": a.id,
                    "attached_at": ts_opt(a.attached_at),
                    "host_name": a.attached_host,
                    "volume_id": v.id,
                    "device": a.mountpoint,
                    "id": v.id,
                })
            })
            .collect(),
    )
}

/// The detailed volume view.
pub fn volume(
    svc: &VolumeService,
    v: &Volume,
    atts: &[Attachment],
    type_name: Option<&str>,
    admin: bool,
    mv: Microversion,
) -> Value {
    let mut o = json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "size": v.size,
        "status": v.status,
        "availability_zone": v.availability_zone,
        "created_at": ts(v.created_at),
        "updated_at": ts(v.updated_at),
        "attachments": volume_attachments(v, atts),
        "links": links(svc, &v.project_id, "volumes", &v.id),
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": false,
        "multiattach": v.multiattach,
        "metadata": visible_metadata(v),
        "migration_status": v.migration_status,
        "replication_status": null,
        "consistencygroup_id": null,
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "user_id": v.user_id,
        "volume_type": type_name,
        "os-vol-tenant-attr:tenant_id": v.project_id,
    });
    let m = o.as_object_mut().expect("object");
    if !v.image_metadata.is_empty() {
        m.insert(
            "volume_image_metadata".into(),
            Value::Object(v.image_metadata.clone()),
        );
    }
    if admin {
        m.insert("os-vol-host-attr:host".into(), json!(svc.host_string()));
        m.insert(
            "os-vol-mig-status-attr:migstat".into(),
            json!(v.migration_status),
        );
        m.insert("os-vol-mig-status-attr:name_id".into(), Value::Null);
    }
    if mv.at_least(13) {
        m.insert("group_id".into(), Value::Null);
    }
    if mv.at_least(21) && admin {
        m.insert("provider_id".into(), Value::Null);
    }
    if mv.at_least(48) {
        m.insert("shared_targets".into(), json!(false));
        if admin {
            m.insert("service_uuid".into(), Value::Null);
        }
    }
    o
}

/// The view `POST /volumes` and `PUT /volumes/{id}` answer: Cinder's core detail view,
/// without what its API extensions add to show and list only (tenant, host, migration and
/// image attributes).
pub fn without_extensions(mut view: Value) -> Value {
    if let Some(m) = view.as_object_mut() {
        m.retain(|k, _| !k.starts_with("os-vol-") && k != "volume_image_metadata");
    }
    view
}

/// The volume's metadata with the admin metadata Cinder shows in it (`readonly`,
/// `attached_mode`: `add_visible_admin_metadata`).
pub fn visible_metadata(v: &Volume) -> Map<String, Value> {
    let mut m = v.metadata.clone();
    for key in ["readonly", "attached_mode"] {
        if let Some(val) = v.admin_metadata.get(key) {
            m.insert(key.into(), val.clone());
        }
    }
    m
}

/// The summary view of lists without `/detail`.
pub fn volume_summary(svc: &VolumeService, v: &Volume) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "links": links(svc, &v.project_id, "volumes", &v.id),
    })
}

/// The snapshot view; `detail` adds the extended attributes.
pub fn snapshot(s: &Snapshot, detail: bool, mv: Microversion) -> Value {
    let mut o = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "size": s.size,
        "status": s.status,
        "metadata": s.metadata,
        "created_at": ts(s.created_at),
        "updated_at": ts(s.updated_at),
    });
    let m = o.as_object_mut().expect("object");
    if detail {
        m.insert(
            "os-extended-snapshot-attributes:progress".into(),
            json!(s.progress),
        );
        m.insert(
            "os-extended-snapshot-attributes:project_id".into(),
            json!(s.project_id),
        );
    }
    if mv.at_least(14) {
        m.insert("group_snapshot_id".into(), Value::Null);
    }
    if mv.at_least(41) {
        m.insert("user_id".into(), json!(s.user_id));
    }
    o
}

/// A value a list can be sorted by.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortVal {
    Null,
    Int(i64),
    Text(String),
}

fn cmp(a: &SortVal, b: &SortVal) -> Ordering {
    a.partial_cmp(b).unwrap_or(Ordering::Equal)
}

/// `limit`, `marker`, `offset` and the sort of a list request.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub offset: usize,
    /// `(key, ascending)`, most significant first.
    pub sort: Vec<(String, bool)>,
}

/// Cinder's `osapi_max_limit`.
pub const MAX_LIMIT: usize = 1000;

/// The paging and sorting parameters, validated as Cinder does; `keys` are the sortable keys.
pub fn list_params(q: &HashMap<String, String>, keys: &[&str]) -> CinderResult<ListParams> {
    let limit = match q.get("limit") {
        None => None,
        Some(l) => {
            let n: i64 = l
                .trim()
                .parse()
                .map_err(|_| CinderError::bad_request("limit param must be an integer"))?;
            if n < 0 {
                return Err(CinderError::bad_request("limit param must be positive"));
            }
            Some((n as usize).min(MAX_LIMIT))
        }
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(o) => {
            let n: i64 = o.trim().parse().map_err(|_| {
                CinderError::bad_request(format!("offset param must be an integer: {o}"))
            })?;
            if n < 0 {
                return Err(CinderError::bad_request("offset param must be positive"));
            }
            n as usize
        }
    };
    let mut sort = Vec::new();
    if let Some(s) = q.get("sort") {
        if q.contains_key("sort_key") || q.contains_key("sort_dir") {
            return Err(CinderError::bad_request(
                "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with \
                 the 'sort' parameter.",
            ));
        }
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            sort.push((k.trim().to_string(), direction(d)?));
        }
    } else if q.contains_key("sort_key") || q.contains_key("sort_dir") {
        let dirs: Vec<&str> = q
            .get("sort_dir")
            .map(|d| d.split(',').collect())
            .unwrap_or_default();
        let keys_: Vec<&str> = q
            .get("sort_key")
            .map(|k| k.split(',').collect())
            .unwrap_or_else(|| vec!["created_at"]);
        for (i, k) in keys_.iter().enumerate() {
            let d = dirs.get(i).or(dirs.last()).copied().unwrap_or("desc");
            sort.push((k.trim().to_string(), direction(d)?));
        }
    }
    for (k, _) in &mut sort {
        if k == "name" || k == "display_name" {
            *k = "name".into();
        }
        if !keys.contains(&k.as_str()) {
            return Err(CinderError::bad_request(format!(
                "Invalid input received: Invalid sort key {k}"
            )));
        }
    }
    if !sort.iter().any(|(k, _)| k == "created_at") && sort.is_empty() {
        sort.push(("created_at".into(), false));
    }
    if !sort.iter().any(|(k, _)| k == "id") {
        let asc = sort.last().map(|s| s.1).unwrap_or(false);
        sort.push(("id".into(), asc));
    }
    Ok(ListParams {
        limit,
        marker: q.get("marker").cloned(),
        offset,
        sort,
    })
}

fn direction(d: &str) -> CinderResult<bool> {
    match d.trim().to_ascii_lowercase().as_str() {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(CinderError::bad_request(format!(
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc': {other}"
        ))),
    }
}

/// Sorts `items`, starts after `marker` (404, Cinder's `MarkerNotFound`, when it is not among them), skips `offset` and
/// keeps `limit`. `key` gives an item's value for a sort key, `id` its id.
pub fn page<T>(
    mut items: Vec<T>,
    p: &ListParams,
    key: impl Fn(&T, &str) -> SortVal,
    id: impl Fn(&T) -> &str,
) -> CinderResult<Vec<T>> {
    items.sort_by(|a, b| {
        for (k, asc) in &p.sort {
            let o = cmp(&key(a, k), &key(b, k));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let mut start = 0;
    if let Some(m) = &p.marker {
        start =
            items.iter().position(|i| id(i) == m).ok_or_else(|| {
                CinderError::bad_request(format!("Marker {m} could not be found."))
            })? + 1;
    }
    let start = start + p.offset;
    let items: Vec<T> = items.into_iter().skip(start).collect();
    Ok(match p.limit {
        Some(l) => items.into_iter().take(l).collect(),
        None => items.into_iter().take(MAX_LIMIT).collect(),
    })
}

/// The `*_links` next-page link when the page is full, else `None`.
pub fn next_link(
    url: &str,
    q: &HashMap<String, String>,
    p: &ListParams,
    shown: usize,
    last_id: Option<&str>,
) -> Option<Value> {
    let limit = p.limit.unwrap_or(MAX_LIMIT);
    if shown == 0 || shown < limit {
        return None;
    }
    let mut pairs: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "marker" && k.as_str() != "offset")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.sort();
    if !q.contains_key("limit") {
        pairs.push(("limit".into(), limit.to_string()));
    }
    pairs.push(("marker".into(), last_id?.to_string()));
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    Some(json!([{"href": format!("{url}?{}", query.join("&")), "rel": "next"}]))
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `metadata` filter as clients send it: JSON or a Python dict literal
/// (`{'k': 'v'}`, what Tempest's urlencoded dict looks like).
pub fn parse_metadata_filter(s: &str) -> CinderResult<Map<String, Value>> {
    let attempt = |t: &str| serde_json::from_str::<Map<String, Value>>(t).ok();
    attempt(s)
        .or_else(|| attempt(&s.replace('\'', "\"")))
        .ok_or_else(|| {
            CinderError::bad_request(format!("Invalid input received: metadata filter {s}"))
        })
}

/// Cinder's metadata rules: a JSON object of strings, keys 1–255 characters, values up to
/// 255.
pub fn validate_metadata(v: &Value, field: &str) -> CinderResult<Map<String, Value>> {
    let Value::Object(m) = v else {
        return Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: {v}. {v} is not of type 'object'"
        )));
    };
    for (k, val) in m {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(CinderError::bad_request(format!(
                "Invalid input for field/attribute {field}. Value: {v}. metadata key {k:?} \
                 must be 1 to 255 characters"
            )));
        }
        match val {
            Value::String(s) if s.chars().count() <= 255 => {}
            Value::String(_) => {
                return Err(CinderError::bad_request(format!(
                    "Invalid input for field/attribute {field}. Value: {v}. metadata value for \
                     {k} is longer than 255 characters"
                )))
            }
            other => {
                return Err(CinderError::bad_request(format!(
                    "Invalid input for field/attribute {field}. Value: {v}. {other} is not of \
                     type 'string'"
                )))
            }
        }
    }
    Ok(m.clone())
}
