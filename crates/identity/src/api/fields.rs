//! Reading request bodies that Keystone validates field by field: objects whose schema allows
//! attributes beyond the fixed ones (`additionalProperties: true`), which Keystone keeps as
//! `extra` and shows back merged into the view. Getters answer Keystone's 400 messages naming
//! the field.

use crate::error::{KsError, KsResult};
use serde_json::{Map, Value};

/// A JSON object as read from a request body.
pub type Obj = Map<String, Value>;

pub fn type_error(field: &str, v: &Value, ty: &str) -> KsError {
    KsError::bad_request(format!(
        "Invalid input for field '{field}': {v} is not of type '{ty}'"
    ))
}

/// 400 for a required attribute that is absent.
pub fn required(field: &str) -> KsError {
    KsError::bad_request(format!(
        "Invalid input for field '{field}': '{field}' is a required property"
    ))
}

/// A string field that may not be null: `None` when absent.
pub fn string(m: &Obj, field: &str) -> KsResult<Option<String>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(type_error(field, v, "string")),
    }
}

/// A nullable string field: `None` when absent, `Some(None)` when null.
pub fn nullable_string(m: &Obj, field: &str) -> KsResult<Option<Option<String>>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(v) => Err(type_error(field, v, "string, null")),
    }
}

/// A boolean field (`"True"` and `null` are refused, as Keystone's schema does).
pub fn boolean(m: &Obj, field: &str) -> KsResult<Option<bool>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(type_error(field, v, "boolean")),
    }
}

/// 400 unless `v` has `min` to `max` characters.
pub fn check_len(field: &str, v: &str, min: usize, max: usize) -> KsResult<()> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(KsError::bad_request(format!(
            "Invalid input for field '{field}': '{v}' must be {min} to {max} characters long."
        )));
    }
    Ok(())
}

/// 400 unless `v` has at most `max` characters.
pub fn check_max_len(field: &str, v: &str, max: usize) -> KsResult<()> {
    if v.chars().count() > max {
        return Err(KsError::bad_request(format!(
            "Invalid input for field '{field}': '{v}' is too long (at most {max} characters)."
        )));
    }
    Ok(())
}

/// The attributes of `m` not in `fixed`.
pub fn extra_of(m: &Obj, fixed: &[&str]) -> Obj {
    m.iter()
        .filter(|(k, _)| !fixed.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Merges the non-fixed attributes of `m` into `extra`.
pub fn merge_extra(extra: &mut Value, m: &Obj, fixed: &[&str]) {
    let add = extra_of(m, fixed);
    match extra {
        Value::Object(cur) => cur.extend(add),
        other => *other = Value::Object(add),
    }
}

/// An update body must change something (`minProperties: 1`).
pub fn require_some(m: &Obj) -> KsResult<()> {
    if m.is_empty() {
        return Err(KsError::bad_request(
            "Invalid input: {} does not have enough properties",
        ));
    }
    Ok(())
}

/// Keystone's `_require_matching_id`: an `id` in an update body must be the one in the path.
pub fn require_matching_id(m: &Obj, path_id: &str) -> KsResult<()> {
    match m.get("id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == path_id => Ok(()),
        Some(_) => Err(KsError::bad_request("Cannot change ID")),
    }
}

/// Keystone's `ValidationError`: 400 "Expecting to find {attribute} in {target}. …".
pub fn validation_error(attribute: &str, target: &str) -> KsError {
    KsError::bad_request(format!(
        "Expecting to find {attribute} in {target}. The server could not comply with the request \
         since it is either malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn typed_getters() {
        let m = obj(json!({"a": "x", "n": null, "i": 5}));
        assert_eq!(string(&m, "a").unwrap().as_deref(), Some("x"));
        assert_eq!(string(&m, "missing").unwrap(), None);
        assert!(string(&m, "n").is_err());
        assert!(string(&m, "i").unwrap_err().message.contains("'i'"));
        assert_eq!(nullable_string(&m, "n").unwrap(), Some(None));
        assert!(nullable_string(&m, "i").is_err());
    }

    #[test]
    fn extra_attributes() {
        let m = obj(json!({"id": "1", "blob": "b", "tier": "gold"}));
        assert_eq!(
            Value::Object(extra_of(&m, &["id", "blob"])),
            json!({"tier": "gold"})
        );
        let mut extra = json!({"old": 1});
        merge_extra(&mut extra, &m, &["id", "blob"]);
        assert_eq!(extra, json!({"old": 1, "tier": "gold"}));
        assert!(require_matching_id(&m, "1").is_ok());
        assert!(require_matching_id(&m, "2").is_err());
        assert!(require_some(&Obj::new()).is_err());
    }
}
