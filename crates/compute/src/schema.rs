//! The checks Nova's JSON schemas make on request bodies, as small helpers: objects without
//! additional properties, required keys, Nova's parameter types (flavor integers that may be
//! strings, booleans spelled as strings, names without surrounding whitespace). Failures are
//! 400s worded as Nova's validator words them: `Invalid input for field/attribute <name>.
//! Value: <value>. <jsonschema message>` with values in Python's repr, or the bare message for
//! the body itself.

use crate::error::{NovaError, NovaResult};
use serde_json::{Map, Value};

/// The largest integer Nova's database columns take (`db.MAX_INT`).
pub const MAX_INT: i64 = 0x7FFF_FFFF;

/// A value as Python's `repr` shows it in jsonschema messages.
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => format!("[{}]", a.iter().map(repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A validation failure at `field` (the last element of the failing path; `None` for the
/// body itself) on `value`.
pub fn fail(field: Option<&str>, value: &Value, message: impl AsRef<str>) -> NovaError {
    match field {
        Some(f) => NovaError::bad_request(format!(
            "Invalid input for field/attribute {f}. Value: {}. {}",
            repr(value),
            message.as_ref()
        )),
        None => NovaError::bad_request(message.as_ref().to_string()),
    }
}

/// An object, or "X is not of type 'object'".
pub fn object<'a>(v: &'a Value, field: Option<&str>) -> NovaResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| fail(field, v, format!("{} is not of type 'object'", repr(v))))
}

/// The object under `key` of a body `{"<key>": {...}}` that allows nothing else.
pub fn envelope<'a>(body: &'a Value, key: &str) -> NovaResult<&'a Map<String, Value>> {
    let top = object(body, None)?;
    require(top, key, None, body)?;
    only(top, &[key], None, body)?;
    object(&top[key], Some(key))
}

/// No keys beyond `allowed` (`additionalProperties: false`).
pub fn only(
    m: &Map<String, Value>,
    allowed: &[&str],
    field: Option<&str>,
    whole: &Value,
) -> NovaResult<()> {
    let extra: Vec<String> = m
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    Err(fail(
        field,
        whole,
        format!(
            "Additional properties are not allowed ({} {} unexpected)",
            extra.join(", "),
            if extra.len() == 1 { "was" } else { "were" }
        ),
    ))
}

/// A required key.
pub fn require<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    field: Option<&str>,
    whole: &Value,
) -> NovaResult<&'a Value> {
    m.get(key)
        .ok_or_else(|| fail(field, whole, format!("'{key}' is a required property")))
}

/// A string of `min..=max` characters.
pub fn string<'a>(v: &'a Value, field: &str, min: usize, max: usize) -> NovaResult<&'a str> {
    let s = v.as_str().ok_or_else(|| {
        fail(
            Some(field),
            v,
            format!("{} is not of type 'string'", repr(v)),
        )
    })?;
    let n = s.chars().count();
    if n < min {
        return Err(fail(Some(field), v, format!("{} is too short", repr(v))));
    }
    if n > max {
        return Err(fail(Some(field), v, format!("{} is too long", repr(v))));
    }
    Ok(s)
}

/// Nova's `parameter_types.name`: 1..=255 printable characters without leading or trailing
/// whitespace.
pub fn name<'a>(v: &'a Value, field: &str) -> NovaResult<&'a str> {
    let s = string(v, field, 1, 255)?;
    if !valid_name(s) {
        return Err(fail(
            Some(field),
            v,
            format!(
                "{} does not match '{}'",
                repr(v),
                "^(?! )[printable]*(?<! )$"
            ),
        ));
    }
    Ok(s)
}

/// Printable (no control or non-space separators) without surrounding whitespace.
pub fn valid_name(s: &str) -> bool {
    let printable = s
        .chars()
        .all(|c| !c.is_control() && (c == ' ' || !c.is_whitespace() || c == '\u{a0}'));
    let edges = !s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace);
    printable && edges
}

/// Nova's `valid_description_regex`: printable characters and whitespace, nothing else.
pub fn valid_description(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
}

/// Nova's `flavor_param_positive`/`flavor_param_non_negative`: an integer or a string of
/// digits, within `min..=MAX_INT`.
pub fn flavor_int(v: &Value, field: &str, min: i64) -> NovaResult<i64> {
    match v {
        Value::Number(n) => {
            let Some(i) = n.as_i64() else {
                if n.is_u64() {
                    return Err(fail(
                        Some(field),
                        v,
                        format!("{n} is greater than the maximum of {MAX_INT}"),
                    ));
                }
                return Err(fail(
                    Some(field),
                    v,
                    format!("{n} is not of type 'integer', 'string'"),
                ));
            };
            if i < min {
                return Err(fail(
                    Some(field),
                    v,
                    format!("{i} is less than the minimum of {min}"),
                ));
            }
            if i > MAX_INT {
                return Err(fail(
                    Some(field),
                    v,
                    format!("{i} is greater than the maximum of {MAX_INT}"),
                ));
            }
            Ok(i)
        }
        Value::String(s) => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(
                    Some(field),
                    v,
                    format!("{} does not match '^[0-9]+$'", repr(v)),
                ));
            }
            let name = flavor_field_name(field);
            let i: i64 = s
                .parse()
                .map_err(|_| NovaError::invalid_input(format!("{name} must be <= {MAX_INT}")))?;
            if i < min {
                return Err(NovaError::invalid_input(format!("{name} must be >= {min}")));
            }
            if i > MAX_INT {
                return Err(NovaError::invalid_input(format!(
                    "{name} must be <= {MAX_INT}"
                )));
            }
            Ok(i)
        }
        _ => Err(fail(
            Some(field),
            v,
            format!("{} is not of type 'integer', 'string'", repr(v)),
        )),
    }
}

fn flavor_field_name(field: &str) -> &str {
    match field {
        "OS-FLV-EXT-DATA:ephemeral" => "ephemeral",
        "disk" => "disk",
        other => other,
    }
}

/// Nova's `parameter_types.boolean`: a JSON boolean or one of oslo's spellings.
pub fn boolean(v: &Value, field: &str) -> NovaResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => parse_bool_strict(s).ok_or_else(|| {
            fail(
                Some(field),
                v,
                format!("{} is not one of {}", repr(v), BOOL_ENUM),
            )
        }),
        _ => Err(fail(
            Some(field),
            v,
            format!("{} is not of type 'boolean', 'string'", repr(v)),
        )),
    }
}

const BOOL_ENUM: &str = "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', \
    'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']";

/// The spellings of `parameter_types.boolean` (oslo's `bool_from_string` strict set).
pub fn parse_bool_strict(s: &str) -> Option<bool> {
    match s {
        "True" | "TRUE" | "true" | "1" | "ON" | "On" | "on" | "YES" | "Yes" | "yes" => Some(true),
        "False" | "FALSE" | "false" | "0" | "OFF" | "Off" | "off" | "NO" | "No" | "no" => {
            Some(false)
        }
        _ => None,
    }
}

/// oslo's `bool_from_string(strict=True)` (case-insensitive; `t`, `y` too).
pub fn bool_from_string(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_follow_nova() {
        let body = json!({"flavor": {"name": "x", "foo": 1}});
        let m = body["flavor"].as_object().unwrap();
        let e = only(m, &["name"], Some("flavor"), &body["flavor"]).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid input for field/attribute flavor. Value: {'foo': 1, 'name': 'x'}. \
             Additional properties are not allowed ('foo' was unexpected)"
        );
        let e = envelope(&json!({}), "flavor").unwrap_err();
        assert_eq!(e.message, "'flavor' is a required property");
        let e = envelope(&json!([]), "flavor").unwrap_err();
        assert_eq!(e.message, "[] is not of type 'object'");
    }

    #[test]
    fn flavor_integers() {
        assert_eq!(flavor_int(&json!(512), "ram", 1).unwrap(), 512);
        assert_eq!(flavor_int(&json!("512"), "ram", 1).unwrap(), 512);
        assert!(flavor_int(&json!(0), "ram", 1).is_err());
        assert_eq!(flavor_int(&json!(0), "disk", 0).unwrap(), 0);
        assert!(flavor_int(&json!("0"), "ram", 1).is_err());
        assert!(flavor_int(&json!(1.5), "ram", 1).is_err());
        assert!(flavor_int(&json!("1.5"), "ram", 1).is_err());
        assert!(flavor_int(&json!(true), "ram", 1).is_err());
        assert!(flavor_int(&json!(MAX_INT + 1), "ram", 1).is_err());
        assert!(flavor_int(&json!("99999999999999999999"), "ram", 1).is_err());
    }

    #[test]
    fn names_and_booleans() {
        assert!(valid_name("m1.tiny"));
        assert!(valid_name("a b"));
        assert!(!valid_name(" a"));
        assert!(!valid_name("a "));
        assert!(!valid_name("a\u{1}b"));
        assert!(name(&json!(""), "name").is_err());
        assert!(name(&json!("x".repeat(256)), "name").is_err());
        assert!(boolean(&json!("yes"), "b").unwrap());
        assert!(!boolean(&json!("Off"), "b").unwrap());
        assert!(boolean(&json!("maybe"), "b").is_err());
        assert!(boolean(&json!(1), "b").is_err());
    }
}
