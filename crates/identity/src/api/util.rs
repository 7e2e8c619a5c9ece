//! Shared pieces of the identity wire format: links, collections, query parsing.

use serde_json::{json, Value};

/// `{"self": "<v3>/<path>"}`.
pub fn self_link(v3: &str, path: &str) -> Value {
    json!({"self": format!("{v3}/{path}")})
}

/// `{"<name>": items, "links": {"self": …, "previous": null, "next": null}}`.
pub fn collection(name: &str, items: Vec<Value>, self_url: String) -> Value {
    json!({name: items, "links": {"self": self_url, "previous": null, "next": null}})
}

/// Keystone's truthiness of query values: `0`, `false`, `f`, `no`, `n`, `off` are false
/// (case-insensitive), anything else true.
pub fn query_true(v: &str) -> bool {
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "0" | "false" | "f" | "no" | "n" | "off"
    )
}

/// The query string as pairs, repeated keys kept.
pub type QueryPairs = Vec<(String, String)>;

/// The first value of `key`.
pub fn q<'a>(pairs: &'a QueryPairs, key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whether `key` is present (with any value, including none).
pub fn has(pairs: &QueryPairs, key: &str) -> bool {
    pairs.iter().any(|(k, _)| k == key)
}

/// The request path and query for `links.self`.
pub fn self_url(v3: &str, path: &str, pairs: &QueryPairs) -> String {
    if pairs.is_empty() {
        format!("{v3}/{path}")
    } else {
        let qs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{v3}/{path}?{}", qs.join("&"))
    }
}

/// Merges free-form `extra` attributes into an entity's JSON, without overriding fixed ones.
pub fn with_extra(mut v: Value, extra: &Value) -> Value {
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in e {
            o.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    v
}

/// Matches Keystone's string filters: `attr=value` exact, and the `__contains`,
/// `__icontains`, `__startswith`, `__istartswith`, `__endswith`, `__iendswith` and `__equals`,
/// `__iequals` forms.
pub fn string_filter(pairs: &QueryPairs, attr: &str, value: &str) -> bool {
    for (k, v) in pairs {
        let Some(rest) = k.strip_prefix(attr) else {
            continue;
        };
        let (hay, needle) = if rest.starts_with("__i") {
            (value.to_lowercase(), v.to_lowercase())
        } else {
            (value.to_string(), v.clone())
        };
        let ok = match rest {
            "" | "__equals" | "__iequals" => hay == needle,
            "__contains" | "__icontains" => hay.contains(&needle),
            "__startswith" | "__istartswith" => hay.starts_with(&needle),
            "__endswith" | "__iendswith" => hay.ends_with(&needle),
            _ => continue,
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_truthiness() {
        for f in ["0", "false", "False", "no", "off"] {
            assert!(!query_true(f), "{f}");
        }
        for t in ["1", "true", "True", "yes", ""] {
            assert!(query_true(t), "{t}");
        }
    }

    #[test]
    fn string_filters() {
        let p: QueryPairs = vec![("name__icontains".into(), "AdM".into())];
        assert!(string_filter(&p, "name", "the-admin"));
        assert!(!string_filter(&p, "name", "demo"));
        let p: QueryPairs = vec![("name".into(), "x".into())];
        assert!(string_filter(&p, "name", "x"));
        assert!(!string_filter(&p, "name", "xy"));
        // Other attributes don't interfere.
        assert!(string_filter(&p, "description", "anything"));
    }
}
