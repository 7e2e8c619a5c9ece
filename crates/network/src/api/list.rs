//! Neutron's list semantics, shared by every collection: filters on any attribute (a key
//! repeated means OR), `tags`/`tags-any`/`not-tags`/`not-tags-any`, `fields`, `sort_key` /
//! `sort_dir` (repeatable), `limit` / `marker` / `page_reverse` with `<collection>_links`.
//! Works on the rendered views, so a filter sees exactly what the client sees.

use crate::error::{NeutronError, NeutronResult};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// Query keys that are not filters.
const CONTROL: &[&str] = &[
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
];
const TAG_FILTERS: &[&str] = &["tags", "tags-any", "not-tags", "not-tags-any"];

/// Whether a view's value equals a query value, as Neutron converts query strings: booleans
/// case-insensitively (`True`, `true`, `1`), numbers by value, lists by membership, null as
/// `None` or empty.
pub fn value_matches(have: &Value, want: &str) -> bool {
    match have {
        Value::String(s) => s == want,
        Value::Bool(b) => match want.to_ascii_lowercase().as_str() {
            "true" | "1" => *b,
            "false" | "0" => !*b,
            _ => false,
        },
        Value::Number(n) => want.parse::<f64>().ok() == n.as_f64(),
        Value::Null => want.is_empty() || want == "None",
        Value::Array(items) => items.iter().any(|i| value_matches(i, want)),
        Value::Object(_) => false,
    }
}

/// A caller's own interpretation of some filter keys: `Some(matches)` takes over the key.
pub type Special<'a> = &'a dyn Fn(&Value, &str, &[&str]) -> Option<bool>;

/// Applies the query's filters to `views`. `attrs` are the attributes that may be filtered on
/// (Neutron's filter validation: anything else is 400). `special` handles keys the caller
/// interprets itself (e.g. `fixed_ips` of ports): return `Some(matches)` to take over a key.
pub fn filter(
    views: Vec<Value>,
    query: &[(String, String)],
    attrs: &[&str],
    special: Special<'_>,
) -> NeutronResult<Vec<Value>> {
    let mut keys: Vec<(&str, Vec<&str>)> = Vec::new();
    for (k, v) in query {
        if CONTROL.contains(&k.as_str()) {
            continue;
        }
        match keys.iter_mut().find(|(kk, _)| *kk == k.as_str()) {
            Some((_, vs)) => vs.push(v.as_str()),
            None => keys.push((k.as_str(), vec![v.as_str()])),
        }
    }
    for (k, _) in &keys {
        if !attrs.contains(k) && !TAG_FILTERS.contains(k) && *k != "tenant_id" && *k != "project_id"
        {
            return Err(NeutronError::bad_request(format!(
                "[{k}] is invalid attribute for filtering"
            )));
        }
    }
    Ok(views
        .into_iter()
        .filter(|v| {
            keys.iter().all(|(k, wants)| {
                if let Some(m) = special(v, k, wants) {
                    return m;
                }
                if TAG_FILTERS.contains(k) {
                    let tags: Vec<&str> = v["tags"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let asked: Vec<&str> = wants
                        .iter()
                        .flat_map(|w| w.split(','))
                        .filter(|t| !t.is_empty())
                        .collect();
                    return match *k {
                        "tags" => asked.iter().all(|t| tags.contains(t)),
                        "tags-any" => asked.iter().any(|t| tags.contains(t)),
                        "not-tags" => !asked.iter().all(|t| tags.contains(t)),
                        _ => !asked.iter().any(|t| tags.contains(t)),
                    };
                }
                match v.get(*k) {
                    Some(have) => wants.iter().any(|w| value_matches(have, w)),
                    None => false,
                }
            })
        })
        .collect())
}

fn sort_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

fn get_all<'q>(query: &'q [(String, String)], k: &str) -> Vec<&'q str> {
    query
        .iter()
        .filter(|(kk, _)| kk == k)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The sort order the query asks for as `(key, ascending)` pairs, ending with `id` so the
/// order is total (as Neutron does).
pub fn order<'q>(
    query: &'q [(String, String)],
    attrs: &[&str],
) -> NeutronResult<Vec<(&'q str, bool)>> {
    let sort_keys = get_all(query, "sort_key");
    let sort_dirs = get_all(query, "sort_dir");
    if sort_keys.len() < sort_dirs.len() {
        return Err(NeutronError::bad_request(
            "The number of sort_keys and sort_dirs must be same",
        ));
    }
    let mut order: Vec<(&str, bool)> = Vec::new();
    for (i, k) in sort_keys.iter().enumerate() {
        if !attrs.contains(k) {
            return Err(NeutronError::bad_request(format!(
                "{k} is invalid attribute for sort_key"
            )));
        }
        let asc = match sort_dirs.get(i).copied().unwrap_or("asc") {
            "asc" => true,
            "desc" => false,
            other => {
                return Err(NeutronError::bad_request(format!(
                    "{other} is invalid value for sort_dir, valid value is 'asc' and 'desc'"
                )))
            }
        };
        order.push((k, asc));
    }
    if !order.iter().any(|(k, _)| *k == "id") {
        let asc = order.last().map(|o| o.1).unwrap_or(true);
        order.push(("id", asc));
    }
    Ok(order)
}

/// `limit=`: `None` when absent or 0.
pub fn limit(query: &[(String, String)]) -> NeutronResult<Option<usize>> {
    match query.iter().find(|(k, _)| k == "limit") {
        None => Ok(None),
        Some((_, l)) => match l.parse::<i64>() {
            Ok(0) => Ok(None),
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            _ => Err(NeutronError::bad_request(format!(
                "Limit must be an integer 0 or greater and not '{l}'"
            ))),
        },
    }
}

/// Whether the query pages backwards (`page_reverse=True`).
pub fn reverse(query: &[(String, String)]) -> bool {
    query
        .iter()
        .any(|(k, v)| k == "page_reverse" && v.eq_ignore_ascii_case("true"))
}

/// `marker=`.
pub fn marker(query: &[(String, String)]) -> Option<&str> {
    query
        .iter()
        .find(|(k, _)| k == "marker")
        .map(|(_, v)| v.as_str())
}

/// Sorts, pages and projects `views`, returning the collection body
/// `{"<collection>": [...], "<collection>_links": [...]}`. `url` is the collection's URL.
pub fn respond(
    collection: &str,
    url: &str,
    mut views: Vec<Value>,
    query: &[(String, String)],
    attrs: &[&str],
) -> NeutronResult<Value> {
    let order = order(query, attrs)?;
    views.sort_by(|a, b| {
        for (k, asc) in &order {
            let o = sort_cmp(&a[*k], &b[*k]);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let limit = limit(query)?;
    let reverse = reverse(query);
    let marker = marker(query);
    let mut page: Vec<Value> = match marker {
        Some(m) => {
            let pos = views
                .iter()
                .position(|v| v["id"].as_str() == Some(m))
                .ok_or_else(|| NeutronError::not_found(collection.trim_end_matches('s'), m))?;
            if reverse {
                views.truncate(pos);
                views
            } else {
                views.split_off(pos + 1)
            }
        }
        None => views,
    };
    let mut more = false;
    if let Some(l) = limit {
        if page.len() > l {
            more = true;
            if reverse {
                page = page.split_off(page.len() - l);
            } else {
                page.truncate(l);
            }
        }
    }
    Ok(finish(collection, url, page, more, query))
}

/// The collection body for one page already cut in sort order: `more` says whether items
/// remain beyond it in the paging direction; the links follow from the query's `limit`,
/// `marker` and `page_reverse`, and `fields` projects the views.
pub fn finish(
    collection: &str,
    url: &str,
    page: Vec<Value>,
    more: bool,
    query: &[(String, String)],
) -> Value {
    let limit = self::limit(query).ok().flatten();
    let reverse = self::reverse(query);
    let marker = self::marker(query);
    let mut links = Vec::new();
    if let Some(l) = limit {
        let base: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "marker" | "page_reverse" | "limit"))
            .cloned()
            .collect();
        let link = |marker: &str, rev: bool, rel: &str| {
            let mut q = base.clone();
            q.push(("limit".into(), l.to_string()));
            q.push(("marker".into(), marker.to_string()));
            if rev {
                q.push(("page_reverse".into(), "True".into()));
            }
            let qs: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            json!({"href": format!("{url}?{}", qs.join("&")), "rel": rel})
        };
        let first = page.first().and_then(|v| v["id"].as_str());
        let last = page.last().and_then(|v| v["id"].as_str());
        // Forward paging: next while more remain, previous once past the start; reversed, the
        // other way round.
        let (has_next, has_prev) = if reverse {
            (marker.is_some(), more)
        } else {
            (more, marker.is_some())
        };
        if has_next {
            if let Some(last) = last {
                links.push(link(last, false, "next"));
            }
        }
        if has_prev {
            if let Some(first) = first {
                links.push(link(first, true, "previous"));
            }
        }
    }
    let fields = get_all(query, "fields");
    let page: Vec<Value> = page.into_iter().map(|v| project(v, &fields)).collect();
    let mut out = Map::new();
    out.insert(collection.to_string(), Value::Array(page));
    if !links.is_empty() {
        out.insert(format!("{collection}_links"), Value::Array(links));
    }
    Value::Object(out)
}

/// Keeps only `fields` of a view (all when empty), as `?fields=` asks.
pub fn project(v: Value, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return v;
    }
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| fields.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

/// The `fields=` of a show request.
pub fn fields(query: &[(String, String)]) -> Vec<&str> {
    query
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
        .collect()
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn views() -> Vec<Value> {
        (0..5)
            .map(|i| {
                json!({"id": format!("id{i}"), "name": format!("n{}", i % 2),
                            "shared": i % 2 == 0, "mtu": 1400 + i, "tags": [format!("t{i}")]})
            })
            .collect()
    }

    #[test]
    fn filters_or_within_a_key_and_across_keys() {
        let attrs = ["id", "name", "shared", "mtu", "tags"];
        let none = |_: &Value, _: &str, _: &[&str]| None;
        let f = filter(
            views(),
            &q(&[("name", "n0"), ("shared", "True")]),
            &attrs,
            &none,
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        let f = filter(
            views(),
            &q(&[("mtu", "1401"), ("mtu", "1403")]),
            &attrs,
            &none,
        )
        .unwrap();
        assert_eq!(f.len(), 2);
        let f = filter(views(), &q(&[("tags-any", "t1,t2")]), &attrs, &none).unwrap();
        assert_eq!(f.len(), 2);
        let f = filter(views(), &q(&[("not-tags", "t1")]), &attrs, &none).unwrap();
        assert_eq!(f.len(), 4);
        let e = filter(views(), &q(&[("bogus", "x")]), &attrs, &none).unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn sorts_pages_and_links() {
        let attrs = ["id", "name", "mtu"];
        let body = respond(
            "networks",
            "http://x/v2.0/networks",
            views(),
            &q(&[("sort_key", "mtu"), ("sort_dir", "desc"), ("limit", "2")]),
            &attrs,
        )
        .unwrap();
        let ids: Vec<&str> = body["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["id4", "id3"]);
        let links = body["networks_links"].as_array().unwrap();
        assert_eq!(links.len(), 1);
        assert!(links[0]["href"].as_str().unwrap().contains("marker=id3"));
        let body = respond(
            "networks",
            "http://x/v2.0/networks",
            views(),
            &q(&[
                ("sort_key", "mtu"),
                ("sort_dir", "desc"),
                ("limit", "2"),
                ("marker", "id3"),
                ("fields", "id"),
            ]),
            &attrs,
        )
        .unwrap();
        assert_eq!(body["networks"], json!([{"id": "id2"}, {"id": "id1"}]));
        let rels: Vec<&str> = body["networks_links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].as_str().unwrap())
            .collect();
        assert_eq!(rels, ["next", "previous"]);
    }
}
