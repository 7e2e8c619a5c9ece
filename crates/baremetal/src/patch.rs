//! JSON Patch (RFC 6902) as Ironic takes it: a list of `add`, `replace` and `remove`
//! operations whose paths are JSON Pointers (RFC 6901) of word characters and dashes
//! (Ironic's schema `^(/[\w-]+)+$`), applied one at a time to the resource's JSON view so a
//! failure names the operation that failed. `move`, `copy` and `test` are refused by the
//! schema, as Ironic refuses them; a new attribute may not be added at the root.
//!
//! Error texts follow Ironic (`Schema error for patch: …`, `Couldn't apply patch '…'. Reason:
//! …` with the reasons of the `jsonpatch` library), with values shown as Python shows them.

use serde_json::{Map, Value};

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub op: Kind,
    /// The pointer as sent.
    pub path: String,
    pub value: Option<Value>,
    /// The operation as sent, for error messages.
    raw: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Add,
    Replace,
    Remove,
}

impl Op {
    /// The pointer's segments, unescaped (`~1` → `/`, `~0` → `~`).
    pub fn segments(&self) -> Vec<String> {
        self.path[1..].split('/').map(unescape).collect()
    }
    /// The first segment: the field the operation touches.
    pub fn field(&self) -> String {
        self.segments().into_iter().next().unwrap_or_default()
    }
}

fn unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

/// Validates a patch document against Ironic's schema, returning its operations.
pub fn parse(body: &Value) -> Result<Vec<Op>, String> {
    let schema = |m: String| format!("Schema error for patch: {m}");
    let Value::Array(items) = body else {
        return Err(schema(format!("{} is not of type 'array'", py(body))));
    };
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(m) = item else {
            return Err(schema(format!("{} is not of type 'object'", py(item))));
        };
        for required in ["op", "path"] {
            if !m.contains_key(required) {
                return Err(schema(format!("'{required}' is a required property")));
            }
        }
        let extra: Vec<&String> = m
            .keys()
            .filter(|k| !["op", "path", "value"].contains(&k.as_str()))
            .collect();
        if !extra.is_empty() {
            let names: Vec<String> = extra
                .iter()
                .map(|k| py(&Value::String((*k).clone())))
                .collect();
            let verb = if names.len() == 1 { "was" } else { "were" };
            return Err(schema(format!(
                "Additional properties are not allowed ({} {verb} unexpected)",
                names.join(", ")
            )));
        }
        let path = match &m["path"] {
            Value::String(p) => p.clone(),
            other => return Err(schema(format!("{} is not of type 'string'", py(other)))),
        };
        let op = match &m["op"] {
            Value::String(o) if o == "add" => Kind::Add,
            Value::String(o) if o == "replace" => Kind::Replace,
            Value::String(o) if o == "remove" => Kind::Remove,
            Value::String(_) => {
                return Err(schema(format!(
                    "{} is not one of ['add', 'replace', 'remove']",
                    py(&m["op"])
                )))
            }
            other => return Err(schema(format!("{} is not of type 'string'", py(other)))),
        };
        if !valid_path(&path) {
            return Err(schema(format!(
                "{} does not match '^(/[\\\\w-]+)+$'",
                py(&Value::String(path))
            )));
        }
        if op != Kind::Remove && !m.contains_key("value") {
            // jsonpatch: "The operation does not contain a 'value' member".
            return Err(format!(
                "Couldn't apply patch '{}'. Reason: The operation does not contain a 'value' \
                 member",
                py(item)
            ));
        }
        ops.push(Op {
            op,
            path,
            value: m.get("value").cloned(),
            raw: item.clone(),
        });
    }
    Ok(ops)
}

/// `^(/[\w-]+)+$`, with `\w` as Python's (letters and digits of any script, `_`).
fn valid_path(p: &str) -> bool {
    let Some(rest) = p.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|seg| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}

/// The values a patch sets at exactly `path` (Ironic's `get_patch_values`), in order.
pub fn values_at<'a>(ops: &'a [Op], path: &str) -> Vec<&'a Value> {
    ops.iter()
        .filter(|o| o.path == path && o.op != Kind::Remove)
        .filter_map(|o| o.value.as_ref())
        .collect()
}

/// Whether any operation touches `path` or below it.
pub fn touches(ops: &[Op], path: &str) -> bool {
    ops.iter()
        .any(|o| o.path == path || o.path.starts_with(&format!("{path}/")))
}

/// Applies `ops` to `doc` one at a time.
pub fn apply(doc: &mut Value, ops: &[Op]) -> Result<(), String> {
    for o in ops {
        if o.op == Kind::Add && o.path.matches('/').count() == 1 {
            let field = o.field();
            if doc.get(&field).is_none() {
                return Err(format!(
                    "Adding a new attribute ({}) to the root of the resource is not allowed",
                    o.path
                ));
            }
        }
    }
    for o in ops {
        apply_one(doc, o)
            .map_err(|reason| format!("Couldn't apply patch '{}'. Reason: {reason}", py(&o.raw)))?;
    }
    Ok(())
}

fn apply_one(doc: &mut Value, o: &Op) -> Result<(), String> {
    let segs = o.segments();
    let (last, parents) = segs.split_last().ok_or("empty path")?;
    let mut cur = &mut *doc;
    for seg in parents {
        cur = match cur {
            Value::Object(m) => {
                if !m.contains_key(seg) {
                    return Err(format!("member '{seg}' not found in {}", py_map(m)));
                }
                match m.get_mut(seg) {
                    Some(v) => v,
                    None => return Err(format!("member '{seg}' not found")),
                }
            }
            Value::Array(a) => {
                let i = index(seg, a.len(), false)?;
                &mut a[i]
            }
            other => return Err(format!("member '{seg}' not found in {}", py(other))),
        };
    }
    match (o.op, cur) {
        (Kind::Add, Value::Object(m)) => {
            m.insert(last.clone(), o.value.clone().unwrap_or(Value::Null));
        }
        (Kind::Add, Value::Array(a)) => {
            let v = o.value.clone().unwrap_or(Value::Null);
            if last == "-" {
                a.push(v);
            } else {
                let i = index(last, a.len() + 1, true)?;
                a.insert(i, v);
            }
        }
        (Kind::Replace, Value::Object(m)) => match m.get_mut(last) {
            Some(slot) => *slot = o.value.clone().unwrap_or(Value::Null),
            None => return Err(format!("can't replace a non-existent object '{last}'")),
        },
        (Kind::Replace, Value::Array(a)) => {
            let i = index(last, a.len(), false).map_err(|_| "can't replace outside of list")?;
            a[i] = o.value.clone().unwrap_or(Value::Null);
        }
        (Kind::Remove, Value::Object(m)) => {
            if m.remove(last).is_none() {
                return Err(format!("can't remove a non-existent object '{last}'"));
            }
        }
        (Kind::Remove, Value::Array(a)) => {
            let i = index(last, a.len(), false)
                .map_err(|_| format!("can't remove a non-existent object '{last}'"))?;
            a.remove(i);
        }
        (_, other) => {
            return Err(format!(
                "invalid document: {} is neither an object nor a list",
                py(other)
            ))
        }
    }
    Ok(())
}

/// A list index: digits without a leading zero, below `len`.
fn index(seg: &str, len: usize, inserting: bool) -> Result<usize, String> {
    let valid = !seg.is_empty()
        && seg.chars().all(|c| c.is_ascii_digit())
        && (seg == "0" || !seg.starts_with('0'));
    let i: usize = if valid {
        seg.parse()
            .map_err(|_| format!("'{seg}' is not a valid sequence index"))?
    } else {
        return Err(format!("'{seg}' is not a valid sequence index"));
    };
    if i >= len {
        return Err(if inserting {
            "can't insert outside of list".to_string()
        } else {
            format!("index '{i}' is out of bounds")
        });
    }
    Ok(i)
}

/// A JSON value as Python's `repr` writes the equivalent object (`'text'`, `True`, `None`,
/// `{'k': 1}`), which is how Ironic's messages show values.
pub fn py(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => py_map(m),
    }
}

fn py_map(m: &Map<String, Value>) -> String {
    let items: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}: {}", py_str(k), py(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn py_str(s: &str) -> String {
    // Python prefers single quotes, and double quotes when the text holds a single quote only.
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, patch: Value) -> Result<Value, String> {
        let ops = parse(&patch)?;
        let mut d = doc;
        apply(&mut d, &ops)?;
        Ok(d)
    }

    #[test]
    fn add_replace_remove_on_objects_and_lists() {
        let doc = json!({"name": "a", "extra": {"k": 1}, "traits": ["A"], "driver_info": {}});
        let out = run(
            doc,
            json!([
                {"op": "replace", "path": "/name", "value": "b"},
                {"op": "add", "path": "/extra/new", "value": {"x": true}},
                {"op": "remove", "path": "/extra/k"},
                {"op": "add", "path": "/traits/-", "value": "B"},
                {"op": "add", "path": "/traits/0", "value": "Z"},
                {"op": "add", "path": "/driver_info/redfish_address", "value": "https://h"},
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"name": "b", "extra": {"new": {"x": true}}, "traits": ["Z", "A", "B"],
                "driver_info": {"redfish_address": "https://h"}})
        );
    }

    #[test]
    fn add_replaces_an_existing_member() {
        let out = run(
            json!({"extra": {"k": 1}}),
            json!([{"op": "add", "path": "/extra/k", "value": 2}]),
        )
        .unwrap();
        assert_eq!(out, json!({"extra": {"k": 2}}));
    }

    #[test]
    fn refusals_name_the_operation() {
        let e = run(
            json!({"extra": {}}),
            json!([{"op": "remove", "path": "/extra/foo"}]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Couldn't apply patch '{'op': 'remove', 'path': '/extra/foo'}'. Reason: can't \
             remove a non-existent object 'foo'"
        );
        let e = run(
            json!({"extra": {}}),
            json!([{"op": "replace", "path": "/extra/foo", "value": 1}]),
        )
        .unwrap_err();
        assert!(
            e.ends_with("can't replace a non-existent object 'foo'"),
            "{e}"
        );
        let e = run(
            json!({"a": 1}),
            json!([{"op": "add", "path": "/b", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Adding a new attribute (/b) to the root of the resource is not allowed"
        );
        let e = run(
            json!({"l": [1]}),
            json!([{"op": "add", "path": "/l/5", "value": 1}]),
        )
        .unwrap_err();
        assert!(e.ends_with("can't insert outside of list"), "{e}");
        let e = run(json!({"a": 1}), json!([{"op": "add", "path": "/a"}])).unwrap_err();
        assert!(e.contains("does not contain a 'value' member"), "{e}");
    }

    #[test]
    fn the_schema_refuses_other_shapes() {
        let e = parse(&json!({"op": "add"})).unwrap_err();
        assert_eq!(
            e,
            "Schema error for patch: {'op': 'add'} is not of type 'array'"
        );
        let e = parse(&json!([{"op": "move", "path": "/a", "from": "/b"}])).unwrap_err();
        assert!(e.starts_with("Schema error for patch: "), "{e}");
        let e = parse(&json!([{"op": "move", "path": "/a"}])).unwrap_err();
        assert_eq!(
            e,
            "Schema error for patch: 'move' is not one of ['add', 'replace', 'remove']"
        );
        let e = parse(&json!([{"path": "/a"}])).unwrap_err();
        assert_eq!(e, "Schema error for patch: 'op' is a required property");
        let e = parse(&json!([{"op": "add", "path": "a", "value": 1}])).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = parse(&json!([{"op": "add", "path": "/a.b", "value": 1}])).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        assert!(parse(&json!([{"op": "add", "path": "/extra/é-x_1", "value": 1}])).is_ok());
    }

    #[test]
    fn helpers() {
        let ops = parse(&json!([
            {"op": "add", "path": "/name", "value": "a"},
            {"op": "remove", "path": "/name"},
            {"op": "replace", "path": "/name", "value": "b"},
            {"op": "add", "path": "/extra/x", "value": 1},
        ]))
        .unwrap();
        assert_eq!(values_at(&ops, "/name"), vec![&json!("a"), &json!("b")]);
        assert!(touches(&ops, "/extra"));
        assert!(!touches(&ops, "/ext"));
        assert_eq!(ops[3].field(), "extra");
    }

    #[test]
    fn python_repr() {
        assert_eq!(py(&json!(null)), "None");
        assert_eq!(py(&json!([true, 1, "it's"])), "[True, 1, \"it's\"]");
        assert_eq!(py(&json!({"a": "b"})), "{'a': 'b'}");
    }
}
