//! The simulated BIOS: a handful of realistic attributes with their types and allowed values,
//! so that a `PATCH` of `Bios/Settings` is validated as strictly as real firmware does
//! (unknown names and values outside the list are refused) and a controller's BIOS settings
//! steps have something real to change.

use serde_json::Value;
use std::collections::BTreeMap;

/// The kind of value an attribute takes.
enum Kind {
    /// One of these strings.
    Enumeration(&'static [&'static str]),
    /// An integer in this inclusive range.
    Integer(i64, i64),
    /// A string of at most this many characters.
    String(usize),
}

struct Attribute {
    name: &'static str,
    kind: Kind,
    default: Factory,
}

enum Factory {
    Str(&'static str),
    Int(i64),
}

const ENABLED_DISABLED: &[&str] = &["Enabled", "Disabled"];

const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        name: "BootMode",
        kind: Kind::Enumeration(&["Uefi", "Bios"]),
        default: Factory::Str("Uefi"),
    },
    Attribute {
        name: "ProcVirtualization",
        kind: Kind::Enumeration(ENABLED_DISABLED),
        default: Factory::Str("Enabled"),
    },
    Attribute {
        name: "ProcHyperThreading",
        kind: Kind::Enumeration(ENABLED_DISABLED),
        default: Factory::Str("Enabled"),
    },
    Attribute {
        name: "ProcTurboMode",
        kind: Kind::Enumeration(ENABLED_DISABLED),
        default: Factory::Str("Enabled"),
    },
    Attribute {
        name: "SriovGlobalEnable",
        kind: Kind::Enumeration(ENABLED_DISABLED),
        default: Factory::Str("Disabled"),
    },
    Attribute {
        name: "SecureBoot",
        kind: Kind::Enumeration(ENABLED_DISABLED),
        default: Factory::Str("Disabled"),
    },
    Attribute {
        name: "SysProfile",
        kind: Kind::Enumeration(&["PerfOptimized", "PerfPerWattOptimizedOs", "Custom"]),
        default: Factory::Str("PerfPerWattOptimizedOs"),
    },
    Attribute {
        name: "PxeRetryCount",
        kind: Kind::Integer(0, 10),
        default: Factory::Int(3),
    },
    Attribute {
        name: "AssetTag",
        kind: Kind::String(32),
        default: Factory::Str(""),
    },
];

/// Every attribute at its factory default.
pub fn defaults() -> BTreeMap<String, Value> {
    ATTRIBUTES
        .iter()
        .map(|a| {
            let v = match a.default {
                Factory::Str(s) => Value::from(s),
                Factory::Int(i) => Value::from(i),
            };
            (a.name.to_string(), v)
        })
        .collect()
}

/// Why a BIOS setting was refused, in the terms of the DMTF Base message registry.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// `PropertyUnknown`.
    Unknown(String),
    /// `PropertyValueTypeError`.
    Type(String, String),
    /// `PropertyValueNotInList` (also out of range, or too long).
    NotInList(String, String),
}

/// Checks one attribute setting against the table.
pub fn validate(name: &str, value: &Value) -> Result<(), Invalid> {
    let Some(attr) = ATTRIBUTES.iter().find(|a| a.name == name) else {
        return Err(Invalid::Unknown(name.to_string()));
    };
    let shown = value.to_string();
    let ok = match (&attr.kind, value) {
        (Kind::Enumeration(allowed), Value::String(s)) => allowed.contains(&s.as_str()),
        (Kind::Integer(lo, hi), Value::Number(n)) => match n.as_i64() {
            Some(i) => (*lo..=*hi).contains(&i),
            None => return Err(Invalid::Type(name.to_string(), shown)),
        },
        (Kind::String(max), Value::String(s)) => s.chars().count() <= *max,
        _ => return Err(Invalid::Type(name.to_string(), shown)),
    };
    if ok {
        Ok(())
    } else {
        Err(Invalid::NotInList(name.to_string(), shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_validate() {
        for (k, v) in defaults() {
            assert_eq!(validate(&k, &v), Ok(()), "{k}");
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            validate("Nope", &json!("x")),
            Err(Invalid::Unknown(_))
        ));
        assert!(matches!(
            validate("ProcTurboMode", &json!("Maybe")),
            Err(Invalid::NotInList(..))
        ));
        assert!(matches!(
            validate("ProcTurboMode", &json!(1)),
            Err(Invalid::Type(..))
        ));
        assert!(matches!(
            validate("PxeRetryCount", &json!(11)),
            Err(Invalid::NotInList(..))
        ));
        assert!(matches!(
            validate("PxeRetryCount", &json!(1.5)),
            Err(Invalid::Type(..))
        ));
        assert_eq!(validate("PxeRetryCount", &json!(10)), Ok(()));
        assert!(matches!(
            validate("AssetTag", &json!("x".repeat(33))),
            Err(Invalid::NotInList(..))
        ));
    }
}
