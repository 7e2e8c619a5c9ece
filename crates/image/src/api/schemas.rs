//! `GET /v2/schemas/image`, `/v2/schemas/images`, `/v2/schemas/member` and
//! `/v2/schemas/members`: the JSON schemas glanceclient and Tempest fetch, spelled as Glance
//! serves them but listing only the attributes this service serves (no `locations` or
//! `direct_url`: there is no locations API). `model` is the rule book; these documents must
//! agree with it (a test checks the enums and base attributes).

use crate::extract::Auth;
use crate::model::{CONTAINER_FORMATS, DISK_FORMATS, MEMBER_STATUSES, STATUSES};
use axum::Json;
use serde_json::{json, Value};

/// The image schema document.
pub fn image_schema() -> Value {
    let nullable = |list: &[&str]| -> Value {
        let mut v = vec![Value::Null];
        v.extend(list.iter().map(|s| Value::from(*s)));
        Value::Array(v)
    };
    json!({
        "name": "image",
        "properties": {
            "id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
            },
            "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image", "enum": STATUSES},
            "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": ["community", "public", "private", "shared"]},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128},
            "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "description": "Format of the container", "enum": nullable(CONTAINER_FORMATS)},
            "disk_format": {"type": ["null", "string"], "description": "Format of the disk", "enum": nullable(DISK_FORMATS)},
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "description": "List of strings related to the image", "items": {"type": "string", "maxLength": 255}},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "stores": {"type": "string", "readOnly": true, "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers."},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."}
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

/// `GET /v2/schemas/image` (authenticated, as everything under `/v2` behind keystonemiddleware).
pub async fn schema_image(_auth: Auth) -> Json<Value> {
    Json(image_schema())
}

/// `GET /v2/schemas/images`.
pub async fn schema_images(_auth: Auth) -> Json<Value> {
    Json(json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"}
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    }))
}

/// The image member schema document.
pub fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
            },
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": true},
            "status": {"type": "string", "description": "The status of this image member", "enum": MEMBER_STATUSES},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"}
        }
    })
}

/// `GET /v2/schemas/member`.
pub async fn schema_member(_auth: Auth) -> Json<Value> {
    Json(member_schema())
}

/// `GET /v2/schemas/members`.
pub async fn schema_members(_auth: Auth) -> Json<Value> {
    Json(json!({
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"}
        },
        "links": [{"rel": "describedby", "href": "{schema}"}]
    }))
}
