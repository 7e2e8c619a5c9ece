//! JSON request bodies with errors that name the offending field.

use serde::de::DeserializeOwned;

/// Why a body could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all.
    Malformed(String),
    /// JSON, but a field is missing or of the wrong type. `field` is a dotted path.
    Invalid { field: String, message: String },
}

impl BodyError {
    /// A human message in the style services use: `Invalid input for field 'user.name': …`.
    pub fn message(&self) -> String {
        match self {
            BodyError::Malformed(m) => format!("Malformed request body: {m}"),
            BodyError::Invalid { field, message } if field.is_empty() || field == "." => {
                format!("Invalid input: {message}")
            }
            BodyError::Invalid { field, message } => {
                format!("Invalid input for field '{field}': {message}")
            }
        }
    }
}

/// Parses `bytes` as `T`, telling syntax errors (malformed) from shape errors (naming the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    // Syntax first, so "not JSON" is told apart from "wrong shape".
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        BodyError::Malformed(if bytes.is_empty() {
            "the body is empty".into()
        } else {
            e.to_string()
        })
    })?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde's "missing field `x`" is reported at the parent; name the field itself.
        if let Some(missing) = inner
            .strip_prefix("missing field `")
            .and_then(|s| s.split('`').next())
        {
            let full = if field == "." {
                missing.to_string()
            } else {
                format!("{field}.{missing}")
            };
            return BodyError::Invalid {
                field: full,
                message: format!("'{missing}' is a required property"),
            };
        }
        BodyError::Invalid {
            field,
            message: inner,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[allow(dead_code)]
        user: Inner,
    }
    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn malformed_is_told_apart() {
        assert!(matches!(
            parse_json::<Outer>(b"{nope"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            parse_json::<Outer>(b""),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse_json::<Outer>(br#"{"user": {"name": 5}}"#).unwrap_err();
        assert_eq!(
            e,
            BodyError::Invalid {
                field: "user.name".into(),
                message: "invalid type: integer `5`, expected a string".into()
            }
        );
    }

    #[test]
    fn missing_names_the_field() {
        let e = parse_json::<Outer>(br#"{"user": {}}"#).unwrap_err();
        assert!(e.message().contains("'user.name'"), "{}", e.message());
        let e = parse_json::<Outer>(br#"{}"#).unwrap_err();
        assert!(e.message().contains("'user'"), "{}", e.message());
    }
}
