//! The checks Placement's JSON schemas make on request bodies, as small helpers: objects
//! without additional properties, required keys, integer and number bounds, string lengths,
//! UUID formats. Failures are 400s worded like the `jsonschema` messages Placement relays.

use crate::error::{PlacementError, PlacementResult};
use crate::model::{canonical_uuid, is_uuid};
use serde_json::{Map, Value};

/// An object, or "X is not of type 'object'".
pub fn object(v: &Value) -> PlacementResult<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| PlacementError::schema(format!("{v} is not of type 'object'")))
}

/// No keys beyond `allowed`.
pub fn only(m: &Map<String, Value>, allowed: &[&str]) -> PlacementResult<()> {
    let extra: Vec<&String> = m
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = extra.iter().map(|k| format!("'{k}'")).collect();
    Err(PlacementError::schema(format!(
        "Additional properties are not allowed ({} {} unexpected)",
        names.join(", "),
        if extra.len() == 1 { "was" } else { "were" }
    )))
}

/// The value under a required key.
pub fn require<'a>(m: &'a Map<String, Value>, key: &str) -> PlacementResult<&'a Value> {
    m.get(key)
        .ok_or_else(|| PlacementError::schema(format!("'{key}' is a required property")))
}

/// An integer within `min..=max`.
pub fn integer(v: &Value, min: i64, max: i64) -> PlacementResult<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| PlacementError::schema(format!("{v} is not of type 'integer'")))?;
    if n < min {
        return Err(PlacementError::schema(format!(
            "{n} is less than the minimum of {min}"
        )));
    }
    if n > max {
        return Err(PlacementError::schema(format!(
            "{n} is greater than the maximum of {max}"
        )));
    }
    Ok(n)
}

/// A number within `min..=max`.
pub fn number(v: &Value, min: f64, max: f64) -> PlacementResult<f64> {
    let n = v
        .as_f64()
        .filter(|_| v.is_number())
        .ok_or_else(|| PlacementError::schema(format!("{v} is not of type 'number'")))?;
    if n < min {
        return Err(PlacementError::schema(format!(
            "{v} is less than the minimum of {min}"
        )));
    }
    if n > max {
        return Err(PlacementError::schema(format!(
            "{v} is greater than the maximum of {max}"
        )));
    }
    Ok(n)
}

/// A string of `1..=max_len` characters.
pub fn string(v: &Value, max_len: usize) -> PlacementResult<&str> {
    let s = v
        .as_str()
        .ok_or_else(|| PlacementError::schema(format!("{v} is not of type 'string'")))?;
    if s.is_empty() {
        return Err(PlacementError::schema(format!("{v} is too short")));
    }
    if s.chars().count() > max_len {
        return Err(PlacementError::schema(format!("{v} is too long")));
    }
    Ok(s)
}

/// A UUID string, canonicalised.
pub fn uuid(v: &Value) -> PlacementResult<String> {
    let s = v
        .as_str()
        .ok_or_else(|| PlacementError::schema(format!("{v} is not of type 'string'")))?;
    if !is_uuid(s) {
        return Err(PlacementError::schema(format!("{v} is not a 'uuid'")));
    }
    Ok(canonical_uuid(s))
}

/// An array.
pub fn array(v: &Value) -> PlacementResult<&Vec<Value>> {
    v.as_array()
        .ok_or_else(|| PlacementError::schema(format!("{v} is not of type 'array'")))
}

/// A string matching `^[A-Z0-9_]+$` (names of classes, traits, consumer types), at most 255.
pub fn upper_name(v: &Value) -> PlacementResult<&str> {
    let s = string(v, 255)?;
    if !s.bytes().all(crate::model::name_byte) {
        return Err(PlacementError::schema(format!(
            "{v} does not match '^[A-Z0-9_]+$'"
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_name_the_problem() {
        let m = json!({"a": 1, "b": 2});
        let e = only(m.as_object().unwrap(), &["a"]).unwrap_err();
        assert!(e.detail.contains("('b' was unexpected)"), "{e}");
        let e = require(m.as_object().unwrap(), "c").unwrap_err();
        assert!(e.detail.contains("'c' is a required property"));
        assert!(integer(&json!("1"), 0, 10).is_err());
        assert!(integer(&json!(1.5), 0, 10).is_err());
        assert!(integer(&json!(true), 0, 10).is_err());
        assert!(integer(&json!(-1), 0, 10).is_err());
        assert!(integer(&json!(11), 0, 10).is_err());
        assert_eq!(integer(&json!(10), 0, 10).unwrap(), 10);
        assert_eq!(number(&json!(1), 0.0, 2.0).unwrap(), 1.0);
        assert!(number(&json!("1"), 0.0, 2.0).is_err());
        assert!(string(&json!(""), 5).is_err());
        assert!(string(&json!("abcdef"), 5).is_err());
        assert!(uuid(&json!("nope")).is_err());
        assert!(upper_name(&json!("lower")).is_err());
        assert!(upper_name(&json!("INSTANCE")).is_ok());
    }
}
