//! Wire views per microversion, as Nova's view builders make them.

use super::Links;
use crate::model::{Flavor, Keypair};
use crate::version::Microversion;
use serde_json::{json, Map, Value};

/// The flavor in lists (`GET /flavors`): id, name, links; `description` from 2.55.
pub fn flavor_basic(f: &Flavor, mv: Microversion, links: &Links) -> Value {
    let mut v = json!({
        "id": f.id,
        "name": f.name,
        "links": links.pair("flavors", &f.id),
    });
    if mv.at_least(55) {
        v["description"] = json!(f.description);
    }
    v
}

/// The full flavor (`/flavors/detail`, show, create, update): `swap` is `""` for none below
/// 2.75, `description` from 2.55, `extra_specs` from 2.61.
pub fn flavor_detail(f: &Flavor, mv: Microversion, links: &Links) -> Value {
    let swap = if f.swap == 0 && !mv.at_least(75) {
        json!("")
    } else {
        json!(f.swap)
    };
    let mut v = json!({
        "id": f.id,
        "name": f.name,
        "ram": f.memory_mb,
        "disk": f.root_gb,
        "vcpus": f.vcpus,
        "links": links.pair("flavors", &f.id),
        "OS-FLV-DISABLED:disabled": f.disabled,
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
        "os-flavor-access:is_public": f.is_public,
        "swap": swap,
        "rxtx_factor": f.rxtx_factor,
    });
    if mv.at_least(55) {
        v["description"] = json!(f.description);
    }
    if mv.at_least(61) {
        v["extra_specs"] = Value::Object(f.extra_specs.clone());
    }
    v
}

/// A keypair in lists: name, public key, fingerprint; `type` from 2.2.
pub fn keypair_list_item(k: &Keypair, mv: Microversion) -> Value {
    let mut v = json!({
        "name": k.name,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
    });
    if mv.at_least(2) {
        v["type"] = json!(k.key_type);
    }
    json!({"keypair": v})
}

/// A keypair as `GET /os-keypairs/{name}` shows it (with Nova's soft-delete columns).
pub fn keypair_show(k: &Keypair, mv: Microversion) -> Value {
    let mut v = json!({
        "name": k.name,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
        "user_id": k.user_id,
        "id": k.id,
        "created_at": nova_time(k.created_at),
        "updated_at": null,
        "deleted_at": null,
        "deleted": false,
    });
    if mv.at_least(2) {
        v["type"] = json!(k.key_type);
    }
    json!({"keypair": v})
}

/// A created keypair: `private_key` only when generated.
pub fn keypair_created(k: &Keypair, private_key: Option<&str>, mv: Microversion) -> Value {
    let mut v = Map::new();
    v.insert("name".into(), json!(k.name));
    v.insert("public_key".into(), json!(k.public_key));
    v.insert("fingerprint".into(), json!(k.fingerprint));
    v.insert("user_id".into(), json!(k.user_id));
    if let Some(p) = private_key {
        v.insert("private_key".into(), json!(p));
    }
    if mv.at_least(2) {
        v.insert("type".into(), json!(k.key_type));
    }
    json!({"keypair": v})
}

/// Nova's datetime spelling for database timestamps: `2026-11-21T15:04:05.000000`.
pub fn nova_time(us: i64) -> String {
    let z = strata_core::time::iso_micros_z(us);
    z.trim_end_matches('Z').to_string()
}
