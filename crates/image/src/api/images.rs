//! `/v2/images`: create, list, show, JSON-patch update, delete, tags and actions.
//!
//! Links in bodies are relative (`/v2/images/{id}`), as Glance writes them; clients resolve them
//! against the catalog endpoint (openstacksdk strips the `/v2` of `next`).

use crate::db;
use crate::error::{GlanceError, GlanceResult};
use crate::extract::{Auth, Body};
use crate::model::{self, Image, BASE, DISALLOWED, READ_ONLY, STATUSES, VISIBILITIES};
use crate::ImageService;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use strata_api::AuthContext;
use strata_core::time::{iso_seconds_z, now_micros, parse_iso};

/// Glance's `limit_param_default` and `api_limit_max`.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;

/// The content types `PATCH` accepts: RFC 6902 operations (`v2.1`) and the draft-04 spelling
/// (`v2.0`, `{"replace": "/name", "value": …}`), which Tempest's client still sends.
const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";
const PATCH_V20: &str = "application/openstack-images-v2.0-json-patch";

/// The image as Glance shows it: not wrapped, every base attribute present (null when unset),
/// free-form properties alongside, relative links.
pub fn view(img: &Image) -> Value {
    let mut m = img.properties.clone();
    for key in BASE {
        if let Some(v) = img.attribute(key) {
            m.insert((*key).to_string(), v);
        }
    }
    m.insert("created_at".into(), iso_seconds_z(img.created_at).into());
    m.insert("updated_at".into(), iso_seconds_z(img.updated_at).into());
    m.insert("self".into(), format!("/v2/images/{}", img.id).into());
    m.insert("file".into(), format!("/v2/images/{}/file", img.id).into());
    m.insert("schema".into(), "/v2/schemas/image".into());
    // Where the data is, as multi-store Glance shows it (`GET /v2/info/stores` lists the store).
    if matches!(img.status.as_str(), "active" | "deactivated") && img.size.is_some() {
        m.insert("stores".into(), crate::data::STORE_ID.into());
    }
    Value::Object(m)
}

fn image_response(status: StatusCode, img: &Image) -> Response {
    let mut resp = (status, axum::Json(view(img))).into_response();
    if status == StatusCode::CREATED {
        if let Ok(v) = http::HeaderValue::from_str(&format!("/v2/images/{}", img.id)) {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
    }
    resp
}

/// The image if the caller may see it; `None` when it does not exist or is hidden from them
/// (other projects' private images, shared ones their project is no member of).
pub(crate) async fn find_visible(
    svc: &ImageService,
    ctx: &AuthContext,
    id: &str,
) -> GlanceResult<Option<Image>> {
    let Some(img) = db::get(svc.store(), id).await? else {
        return Ok(None);
    };
    let member = match ctx.project_id() {
        Some(p) if model::needs_membership(ctx, &img) => {
            db::members::get(svc.store(), id, p).await?.is_some()
        }
        _ => false,
    };
    Ok(model::can_see(ctx, &img, member).then_some(img))
}

/// The image if the caller may see it; 404 otherwise, as Glance hides other projects' private
/// images.
pub(crate) async fn visible(
    svc: &ImageService,
    ctx: &AuthContext,
    id: &str,
) -> GlanceResult<Image> {
    find_visible(svc, ctx, id)
        .await?
        .ok_or_else(|| GlanceError::image_not_found(id))
}

/// The image if the caller may change it: 404 when they may not see it, 403 when they may see
/// but not change it (another project's public image).
pub(crate) async fn modifiable(
    svc: &ImageService,
    ctx: &AuthContext,
    id: &str,
    action: &str,
) -> GlanceResult<Image> {
    let img = visible(svc, ctx, id).await?;
    if !model::can_modify(ctx, &img) {
        return Err(GlanceError::policy(action));
    }
    Ok(img)
}

fn read_only(key: &str) -> GlanceError {
    GlanceError::forbidden(format!("Attribute '{key}' is read-only."))
}

fn reserved(key: &str) -> GlanceError {
    GlanceError::forbidden(format!("Attribute '{key}' is reserved."))
}

/// `POST /v2/images`.
pub async fn image_create(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    body: Body,
) -> GlanceResult<Response> {
    let Value::Object(body) = body.json()? else {
        return Err(GlanceError::bad_request(
            "Provided object does not match schema 'image': the body is not of type 'object'",
        ));
    };
    for key in DISALLOWED {
        if body.contains_key(*key) {
            return Err(read_only(key));
        }
    }
    if !model::can_create(&ctx) {
        return Err(GlanceError::policy("add_image"));
    }
    let Some(project) = ctx.project_id().map(str::to_string).or_else(|| {
        // An admin without a project scope names the owner in the body.
        body.get("owner")
            .and_then(Value::as_str)
            .map(str::to_string)
    }) else {
        return Err(GlanceError::policy("add_image"));
    };
    let now = now_micros();
    let mut img = Image {
        id: strata_core::ids::uuid(),
        name: None,
        owner: project.clone(),
        status: "queued".into(),
        visibility: "shared".into(),
        protected: false,
        os_hidden: false,
        disk_format: None,
        container_format: None,
        min_disk: 0,
        min_ram: 0,
        size: None,
        virtual_size: None,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        properties: Map::new(),
        tags: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    // Types first (Glance validates the body against its schema: 400), then the attributes
    // the server owns (403).
    for (key, value) in &body {
        if key == "id" {
            match value.as_str() {
                Some(id) if model::is_uuid(id) => img.id = id.to_string(),
                _ => {
                    return Err(GlanceError::bad_request(format!(
                        "Provided object does not match schema 'image': {value} does not match \
                         the 'id' pattern"
                    )))
                }
            }
            continue;
        }
        if READ_ONLY.contains(&key.as_str()) {
            return Err(read_only(key));
        }
        if model::is_reserved(key) {
            return Err(reserved(key));
        }
        img.set(key, value).map_err(GlanceError::bad_request)?;
    }
    if img.owner != project && !ctx.is_admin() {
        return Err(GlanceError::forbidden(format!(
            "You are not permitted to create images owned by '{}'.",
            img.owner
        )));
    }
    if img.visibility == "public" && !model::can_publicize(&ctx) {
        return Err(GlanceError::policy("publicize_image"));
    }
    db::create(svc.store(), &img).await?;
    Ok(image_response(StatusCode::CREATED, &img))
}

/// `GET /v2/images/{id}`.
pub async fn image_show(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> GlanceResult<Response> {
    let img = visible(&svc, &ctx, &id).await?;
    Ok(image_response(StatusCode::OK, &img))
}

/// `DELETE /v2/images/{id}`: 204; 403 while protected. The image's data goes with it.
pub async fn image_delete(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> GlanceResult<StatusCode> {
    let img = modifiable(&svc, &ctx, &id, "delete_image").await?;
    if img.protected {
        return Err(GlanceError::forbidden(format!(
            "Image {id} is protected and cannot be deleted."
        )));
    }
    db::delete(svc.store(), &id).await?;
    // TODO-correctness: a crash between the two leaves an orphaned blob; a sweep of blobs
    // without records would collect it.
    if let Err(e) = svc.data().delete(&id).await {
        tracing::warn!(image = %id, error = %e, "removing the data of a deleted image");
    }
    if let Some(staging) = svc.data().staging() {
        if let Err(e) = staging.delete(&id).await {
            tracing::warn!(image = %id, error = %e, "removing the staged data of a deleted image");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/images/` (an empty id): 404 as in Glance; `DELETE /v2/images`: 405.
pub async fn image_delete_no_id(_auth: Auth, OriginalUri(uri): OriginalUri) -> GlanceError {
    if uri.path().ends_with('/') {
        GlanceError::new(StatusCode::NOT_FOUND, "The resource could not be found.")
    } else {
        GlanceError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "The method is not allowed for this resource.",
        )
    }
}

/// `PUT /v2/images/{id}/tags/{tag}`: 204, idempotent.
pub async fn image_tag_add(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> GlanceResult<StatusCode> {
    let mut img = modifiable(&svc, &ctx, &id, "modify_image").await?;
    if tag.chars().count() > 255 {
        return Err(GlanceError::bad_request(format!(
            "Provided object does not match schema 'image': '{tag}' is too long"
        )));
    }
    if !img.tags.contains(&tag) {
        let before = img.updated_at;
        img.tags.push(tag);
        img.updated_at = now_micros().max(before + 1);
        db::update(svc.store(), &img, before).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/images/{id}/tags/{tag}`: 204; 404 for a tag the image does not have.
pub async fn image_tag_delete(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> GlanceResult<StatusCode> {
    let mut img = modifiable(&svc, &ctx, &id, "modify_image").await?;
    let Some(pos) = img.tags.iter().position(|t| *t == tag) else {
        return Err(GlanceError::new(
            StatusCode::NOT_FOUND,
            format!("Tag {tag} not found."),
        ));
    };
    let before = img.updated_at;
    img.tags.remove(pos);
    img.updated_at = now_micros().max(before + 1);
    db::update(svc.store(), &img, before).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/{deactivate|reactivate}`: 204. Glance's default policy for both
/// is `role:admin or (role:member and project_id:%(project_id)s)`: admins, and members of the
/// owning project. Only active or deactivated images move between the two; others are refused
/// with Glance's 403.
pub async fn image_action(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path((id, action)): Path<(String, String)>,
) -> GlanceResult<StatusCode> {
    let (policy, target) = match action.as_str() {
        "deactivate" => ("deactivate", "deactivated"),
        "reactivate" => ("reactivate", "active"),
        _ => {
            return Err(GlanceError::new(
                StatusCode::NOT_FOUND,
                "The resource could not be found.",
            ))
        }
    };
    let mut img = visible(&svc, &ctx, &id).await?;
    let owner_member = ctx.has_role("member") && ctx.project_id() == Some(img.owner.as_str());
    if !ctx.is_admin() && !owner_member {
        return Err(GlanceError::policy(policy));
    }
    if img.status != "active" && img.status != "deactivated" {
        return Err(GlanceError::forbidden(format!(
            "Not allowed to {action} image in status '{}'",
            img.status
        )));
    }
    if img.status != target {
        let before = img.updated_at;
        img.status = target.into();
        img.updated_at = now_micros().max(before + 1);
        db::update(svc.store(), &img, before).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// One decoded patch operation.
struct Change {
    op: String,
    key: String,
    value: Option<Value>,
}

/// Decodes a JSON pointer naming one attribute (`/name`, `/a~1b` for `a/b`).
fn pointer(path: &Value) -> GlanceResult<String> {
    let Some(p) = path.as_str() else {
        return Err(GlanceError::bad_request(
            "Unable to find 'path' in JSON Schema change",
        ));
    };
    let Some(rest) = p.strip_prefix('/') else {
        return Err(GlanceError::bad_request(format!(
            "Pointer `{p}` does not start with \"/\"."
        )));
    };
    if rest.is_empty() || rest.contains('/') {
        return Err(GlanceError::bad_request(format!(
            "Invalid JSON pointer for this resource: '{p}'"
        )));
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

fn changes(body: &Value, draft04: bool) -> GlanceResult<Vec<Change>> {
    let Value::Array(items) = body else {
        return Err(GlanceError::bad_request(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    let mut out = Vec::new();
    for raw in items {
        let Value::Object(m) = raw else {
            return Err(GlanceError::bad_request("Operations must be JSON objects."));
        };
        let (op, path) = if draft04 {
            let ops: Vec<&str> = ["add", "remove", "replace"]
                .into_iter()
                .filter(|o| m.contains_key(*o))
                .collect();
            if ops.len() != 1 {
                return Err(GlanceError::bad_request(
                    "Operation objects must contain exactly one member named \"add\", \
                     \"remove\", or \"replace\".",
                ));
            }
            (ops[0].to_string(), &m[ops[0]])
        } else {
            let op = m.get("op").and_then(Value::as_str).unwrap_or_default();
            if !["add", "remove", "replace"].contains(&op) {
                return Err(GlanceError::bad_request(format!(
                    "Invalid operation: `{op}`."
                )));
            }
            let Some(path) = m.get("path") else {
                return Err(GlanceError::bad_request(
                    "Unable to find 'path' in JSON Schema change",
                ));
            };
            (op.to_string(), path)
        };
        let key = pointer(path)?;
        let value = m.get("value").cloned();
        if op != "remove" && value.is_none() {
            return Err(GlanceError::bad_request(format!(
                "Operation \"{op}\" requires a member named \"value\"."
            )));
        }
        if DISALLOWED.contains(&key.as_str()) || READ_ONLY.contains(&key.as_str()) {
            return Err(read_only(&key));
        }
        if model::is_reserved(&key) {
            return Err(reserved(&key));
        }
        out.push(Change { op, key, value });
    }
    Ok(out)
}

/// `PATCH /v2/images/{id}` with a JSON-patch body: 200 with the image; 415 for other media
/// types.
pub async fn image_update(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> GlanceResult<Response> {
    let ct = body.content_type.clone().unwrap_or_default();
    let media = ct.split(';').next().unwrap_or_default().trim();
    let draft04 = match media {
        PATCH_V21 => false,
        PATCH_V20 => true,
        _ => {
            return Err(GlanceError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("The request media type {ct} is not supported by this server."),
            )
            .with_header("accept-patch", format!("{PATCH_V20}, {PATCH_V21}")))
        }
    };
    let changes = changes(&body.json()?, draft04)?;
    let mut img = modifiable(&svc, &ctx, &id, "modify_image").await?;
    let before = img.clone();
    for c in changes {
        let is_base = BASE.contains(&c.key.as_str());
        let present = is_base || img.properties.contains_key(&c.key);
        match c.op.as_str() {
            "remove" if is_base => {
                return Err(GlanceError::forbidden(format!(
                    "Property {} may not be removed.",
                    c.key
                )))
            }
            "remove" if !present => {
                return Err(GlanceError::conflict(format!(
                    "Property {} does not exist.",
                    c.key
                )))
            }
            "remove" => {
                img.properties.remove(&c.key);
            }
            "replace" if !present => {
                return Err(GlanceError::conflict(format!(
                    "Property {} does not exist.",
                    c.key
                )))
            }
            "add" if draft04 && present => {
                return Err(GlanceError::conflict(format!(
                    "Property {} already present.",
                    c.key
                )))
            }
            _ => {
                let v = c.value.as_ref().unwrap_or(&Value::Null);
                img.set(&c.key, v).map_err(GlanceError::bad_request)?;
            }
        }
    }
    if img.visibility == "public" && before.visibility != "public" && !model::can_publicize(&ctx) {
        return Err(GlanceError::policy("publicize_image"));
    }
    if img.owner != before.owner && !ctx.is_admin() {
        return Err(GlanceError::forbidden(
            "You are not permitted to modify 'owner' on this image.",
        ));
    }
    if img != before {
        img.updated_at = now_micros().max(before.updated_at + 1);
        db::update(svc.store(), &img, before.updated_at).await?;
    }
    Ok(image_response(StatusCode::OK, &img))
}

/// A value to sort by: nulls first, then numbers, then strings.
#[derive(PartialEq, PartialOrd)]
enum SortVal {
    Null,
    Int(i64),
    Str(String),
}

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "virtual_size",
    "id",
    "created_at",
    "updated_at",
    "min_disk",
    "min_ram",
    "owner",
    "visibility",
    "protected",
];

fn sort_val(img: &Image, key: &str) -> SortVal {
    match key {
        "created_at" => SortVal::Int(img.created_at),
        "updated_at" => SortVal::Int(img.updated_at),
        "protected" => SortVal::Int(img.protected as i64),
        _ => match img.attribute(key) {
            Some(Value::String(s)) => SortVal::Str(s),
            Some(Value::Number(n)) => SortVal::Int(n.as_i64().unwrap_or_default()),
            _ => SortVal::Null,
        },
    }
}

fn compare(a: &Image, b: &Image, keys: &[(String, bool)]) -> Ordering {
    for (key, desc) in keys {
        let o = sort_val(a, key)
            .partial_cmp(&sort_val(b, key))
            .unwrap_or(Ordering::Equal);
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn one<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    all(pairs, key).into_iter().last()
}

/// `sort_key`/`sort_dir` (repeatable) or `sort=k1:dir,k2`, with `created_at` and `id` appended
/// as tie-breakers, as Glance does.
fn sort_keys(pairs: &[(String, String)]) -> GlanceResult<Vec<(String, bool)>> {
    let check_key = |k: &str| -> GlanceResult<()> {
        if SORT_KEYS.contains(&k) {
            Ok(())
        } else {
            Err(GlanceError::bad_request(format!(
                "Invalid sort key: {k}. It must be one of the following: {}.",
                SORT_KEYS.join(", ")
            )))
        }
    };
    let dir = |d: &str| -> GlanceResult<bool> {
        match d {
            "asc" => Ok(false),
            "desc" => Ok(true),
            _ => Err(GlanceError::bad_request(format!(
                "Invalid sort direction: {d}"
            ))),
        }
    };
    let mut keys = Vec::new();
    let sort = one(pairs, "sort");
    let skeys = all(pairs, "sort_key");
    let sdirs = all(pairs, "sort_dir");
    if let Some(sort) = sort {
        if !skeys.is_empty() || !sdirs.is_empty() {
            return Err(GlanceError::bad_request(
                "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.",
            ));
        }
        for part in sort.split(',') {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            let k = k.trim();
            check_key(k)?;
            keys.push((k.to_string(), dir(d.trim())?));
        }
    } else {
        if sdirs.len() > 1 && sdirs.len() != skeys.len() {
            return Err(GlanceError::bad_request(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
        for (i, k) in skeys.iter().enumerate() {
            check_key(k)?;
            let d = sdirs.get(i).or(sdirs.first()).copied().unwrap_or("desc");
            keys.push((k.to_string(), dir(d)?));
        }
        if keys.is_empty() {
            if let Some(d) = sdirs.first() {
                keys.push(("created_at".into(), dir(d)?));
            }
        }
    }
    let default_desc = keys.first().map(|(_, d)| *d).unwrap_or(true);
    for tie in ["created_at", "id"] {
        if !keys.iter().any(|(k, _)| k == tie) {
            keys.push((tie.to_string(), default_desc));
        }
    }
    Ok(keys)
}

/// `in:a,b` → the listed values; anything else → itself.
fn values(v: &str) -> Vec<&str> {
    match v.strip_prefix("in:") {
        Some(list) => list.split(',').collect(),
        None => vec![v],
    }
}

fn bool_filter(name: &str, v: &str) -> GlanceResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(GlanceError::bad_request(format!(
            "Invalid value for {name} filter: {v}"
        ))),
    }
}

/// `created_at`/`updated_at` filters: `gt:`, `gte:`, `lt:`, `lte:`, `eq:`, `neq:` and a time.
fn time_filter(v: &str) -> GlanceResult<(String, i64)> {
    let (op, t) = v.split_once(':').unwrap_or(("eq", v));
    if !["gt", "gte", "lt", "lte", "eq", "neq"].contains(&op) {
        return Err(GlanceError::bad_request(format!(
            "Unable to filter by unknown operator '{op}'."
        )));
    }
    let at = parse_iso(t)
        .ok_or_else(|| GlanceError::bad_request(format!("Invalid time format for {v}.")))?;
    Ok((op.to_string(), at))
}

fn time_matches(at: i64, op: &str, t: i64) -> bool {
    // Shown times are whole seconds: compare at that precision.
    let (at, t) = (at / 1_000_000, t / 1_000_000);
    match op {
        "gt" => at > t,
        "gte" => at >= t,
        "lt" => at < t,
        "lte" => at <= t,
        "neq" => at != t,
        _ => at == t,
    }
}

/// Parameters that are not property filters.
const NOT_PROPERTIES: &[&str] = &[
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "name",
    "status",
    "visibility",
    "owner",
    "container_format",
    "disk_format",
    "tag",
    "size_min",
    "size_max",
    "id",
    "protected",
    "os_hidden",
    "member_status",
    "created_at",
    "updated_at",
];

/// Image columns Glance filters on by equality when named as query parameters (its db layer
/// turns any parameter naming a column into `column = value`).
const COLUMN_FILTERS: &[&str] = &[
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "min_disk",
    "min_ram",
];

/// Whether `img`'s column `key` equals the query value `want`.
fn column_matches(img: &Image, key: &str, want: &str) -> bool {
    match img.attribute(key) {
        Some(Value::String(s)) => s == want,
        Some(Value::Number(n)) => n.to_string() == want,
        _ => false,
    }
}

/// Form-encodes query pairs as Python's `urlencode` does.
fn urlencode(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /v2/images`: `{"images": […], "first": …, "schema": …, "next"?: …}`.
pub async fn image_list(
    State(svc): State<ImageService>,
    Auth(ctx): Auth,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> GlanceResult<Response> {
    // `GET /v2/images/` is a show with an empty id in Glance: 404.
    if original.path().ends_with('/') {
        return Err(GlanceError::image_not_found(""));
    }
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|e| GlanceError::bad_request(e.body_text()))?;
    let limit = match one(&pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(l) => {
            let n: i64 = l
                .parse()
                .map_err(|_| GlanceError::bad_request("limit param must be an integer"))?;
            if n < 0 {
                return Err(GlanceError::bad_request("limit param must be positive"));
            }
            (n as usize).min(MAX_LIMIT)
        }
    };
    let keys = sort_keys(&pairs)?;
    let visibility = one(&pairs, "visibility");
    if let Some(v) = visibility {
        if v != "all" && !VISIBILITIES.contains(&v) {
            return Err(GlanceError::bad_request(format!(
                "Invalid visibility value: {v}"
            )));
        }
    }
    if let Some(s) = one(&pairs, "status") {
        for s in values(s) {
            if !STATUSES.contains(&s) {
                return Err(GlanceError::bad_request(format!(
                    "Invalid status value: {s}"
                )));
            }
        }
    }
    let size = |k: &str| -> GlanceResult<Option<i64>> {
        one(&pairs, k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    GlanceError::bad_request("Unable to filter on a range with a nonnumeric value.")
                })
            })
            .transpose()
    };
    let (size_min, size_max) = (size("size_min")?, size("size_max")?);
    let protected = one(&pairs, "protected")
        .map(|v| bool_filter("protected", v))
        .transpose()?;
    let os_hidden = one(&pairs, "os_hidden")
        .map(|v| bool_filter("os_hidden", v))
        .transpose()?;
    let mut times = Vec::new();
    for col in ["created_at", "updated_at"] {
        for v in all(&pairs, col) {
            let (op, t) = time_filter(v)?;
            times.push((col, op, t));
        }
    }
    let tags = all(&pairs, "tag");
    let member_status = one(&pairs, "member_status").unwrap_or("accepted");
    if member_status != "all" && !model::MEMBER_STATUSES.contains(&member_status) {
        return Err(GlanceError::bad_request(format!(
            "Invalid status: {member_status}"
        )));
    }
    let project = ctx.project_id();
    let admin = ctx.is_admin();
    let candidates = db::list_candidates(svc.store(), if admin { None } else { project }).await?;
    // The caller's memberships: any of them makes a shared image visible (show, marker); only
    // those with the wanted status list it, as Glance's `member_status` filter does.
    let memberships = match project {
        Some(p) if !admin => db::members::statuses_of(svc.store(), p).await?,
        _ => Default::default(),
    };
    let can_see = |img: &Image| model::can_see(&ctx, img, memberships.contains_key(&img.id));
    let listed_member = |img: &Image| {
        img.visibility == "shared"
            && memberships
                .get(&img.id)
                .is_some_and(|s| member_status == "all" || s == member_status)
    };
    let marker = match one(&pairs, "marker") {
        Some(m) => Some(
            candidates
                .iter()
                .find(|i| i.id == m && can_see(i))
                .cloned()
                .ok_or_else(|| {
                    GlanceError::bad_request(format!("Marker {m} could not be found."))
                })?,
        ),
        None => None,
    };
    let owned = |img: &Image| project == Some(img.owner.as_str());
    let mut images: Vec<Image> = candidates
        .into_iter()
        .filter(|img| match visibility {
            // Default listing: own, public, shared with the caller's project (accepted, unless
            // `member_status` says otherwise) and (for admins) everything but other projects'
            // community images; community images only when asked for.
            None => {
                owned(img)
                    || img.visibility == "public"
                    || listed_member(img)
                    || (admin && img.visibility != "community")
            }
            Some("all") => {
                admin
                    || owned(img)
                    || img.visibility == "public"
                    || img.visibility == "community"
                    || listed_member(img)
            }
            Some(v @ ("public" | "community")) => img.visibility == v,
            Some(v) => img.visibility == v && (admin || owned(img) || listed_member(img)),
        })
        .filter(|img| match os_hidden {
            None => !img.os_hidden,
            Some(h) => img.os_hidden == h,
        })
        .filter(|img| {
            let str_match = |key: &str, actual: Option<&str>| -> bool {
                match one(&pairs, key) {
                    None => true,
                    Some(want) => actual.is_some_and(|a| values(want).contains(&a)),
                }
            };
            str_match("name", img.name.as_deref())
                && str_match("id", Some(&img.id))
                && str_match("status", Some(&img.status))
                && str_match("owner", Some(&img.owner))
                && str_match("container_format", img.container_format.as_deref())
                && str_match("disk_format", img.disk_format.as_deref())
                && tags.iter().all(|t| img.tags.iter().any(|have| have == t))
                && size_min.is_none_or(|m| img.size.is_some_and(|s| s >= m))
                && size_max.is_none_or(|m| img.size.is_some_and(|s| s <= m))
                && protected.is_none_or(|p| img.protected == p)
                && times.iter().all(|(col, op, t)| {
                    let at = if *col == "created_at" {
                        img.created_at
                    } else {
                        img.updated_at
                    };
                    time_matches(at, op, *t)
                })
                && COLUMN_FILTERS
                    .iter()
                    .all(|k| one(&pairs, k).is_none_or(|want| column_matches(img, k, want)))
                && pairs
                    .iter()
                    .filter(|(k, _)| {
                        !NOT_PROPERTIES.contains(&k.as_str())
                            && !COLUMN_FILTERS.contains(&k.as_str())
                    })
                    .all(|(k, v)| img.properties.get(k).and_then(Value::as_str) == Some(v))
        })
        .collect();
    images.sort_by(|a, b| compare(a, b, &keys));
    if let Some(m) = &marker {
        images.retain(|img| compare(img, m, &keys) == Ordering::Greater);
    }
    images.truncate(limit);
    let mut rest: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "marker")
        .cloned()
        .collect();
    let mut body = json!({
        "images": images.iter().map(view).collect::<Vec<_>>(),
        "first": if rest.is_empty() {
            "/v2/images".to_string()
        } else {
            format!("/v2/images?{}", urlencode(&rest))
        },
        "schema": "/v2/schemas/images",
    });
    if limit > 0 && images.len() == limit {
        if let Some(last) = images.last() {
            rest.push(("marker".into(), last.id.clone()));
            body["next"] = format!("/v2/images?{}", urlencode(&rest)).into();
        }
    }
    Ok(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sort_keys_follow_glance() {
        let k = sort_keys(&p(&[])).unwrap();
        assert_eq!(
            k,
            vec![("created_at".to_string(), true), ("id".to_string(), true)]
        );
        let k = sort_keys(&p(&[("sort_key", "name"), ("sort_dir", "asc")])).unwrap();
        assert_eq!(k[0], ("name".to_string(), false));
        assert_eq!(k.len(), 3);
        let k = sort_keys(&p(&[("sort", "name:asc,size")])).unwrap();
        assert_eq!(k[1], ("size".to_string(), true));
        assert!(sort_keys(&p(&[("sort_key", "bogus")])).is_err());
        assert!(sort_keys(&p(&[("sort_dir", "up")])).is_err());
        assert!(sort_keys(&p(&[("sort", "name"), ("sort_key", "id")])).is_err());
    }

    #[test]
    fn pointers_and_encoding() {
        assert_eq!(pointer(&json!("/a~1b~0c")).unwrap(), "a/b~c");
        assert!(pointer(&json!("name")).is_err());
        assert!(pointer(&json!("/tags/0")).is_err());
        assert_eq!(
            urlencode(&p(&[("name", "a b&c"), ("limit", "2")])),
            "name=a+b%26c&limit=2"
        );
    }
}
