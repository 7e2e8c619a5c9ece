//! Reading the credentials out of a `clouds.yaml`, by hand.
//!
//! `strata up` writes an openstacksdk-style `clouds.yaml` of a small, known shape:
//!
//! ```yaml
//! clouds:
//!   strata:
//!     auth:
//!       auth_url: http://127.0.0.1:8440/identity/v3
//!       username: admin
//!       password: "s3cret"
//!       project_name: admin
//! ```
//!
//! Pulling in a YAML crate for four scalars is not worth its weight, so this is a small reader
//! for block mappings: indentation-nested `key: value` lines, plain or quoted scalars, `#`
//! comments. It ignores what it does not understand (sequences, flow collections, anchors)
//! rather than failing, because only `clouds.<name>.auth.*` scalars matter.

use anyhow::{bail, Context};
use std::collections::BTreeMap;

/// The credentials of one cloud entry; absent keys stay `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudAuth {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
}

impl CloudAuth {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "auth_url" => self.auth_url = Some(value),
            "username" => self.username = Some(value),
            "password" => self.password = Some(value),
            "project_name" => self.project_name = Some(value),
            _ => {}
        }
    }
}

/// Every cloud under `clouds:` with whatever `auth` scalars it has, by cloud name.
pub fn parse_clouds_yaml(text: &str) -> BTreeMap<String, CloudAuth> {
    let mut clouds: BTreeMap<String, CloudAuth> = BTreeMap::new();
    // The open mapping keys above the current line, with their indentation.
    let mut path: Vec<(usize, String)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') || body == "---" || body == "..." {
            continue;
        }
        let indent = line.len() - body.len();
        while path.last().is_some_and(|(i, _)| *i >= indent) {
            path.pop();
        }
        let Some((key, value)) = split_key_value(body) else {
            continue;
        };
        let value = scalar(value);
        if value.is_empty() {
            // A nested mapping opens (`key:` alone on its line).
            path.push((indent, key.clone()));
            if let [(_, clouds_key), (_, name)] = path.as_slice() {
                if clouds_key == "clouds" {
                    clouds.entry(name.clone()).or_default();
                }
            }
            continue;
        }
        if let [(_, clouds_key), (_, name), (_, auth)] = path.as_slice() {
            if clouds_key == "clouds" && auth == "auth" {
                clouds.entry(name.clone()).or_default().set(&key, value);
            }
        }
    }
    clouds
}

/// Picks cloud `name`; when it is absent and `fallback_to_only` is set, the file's only cloud.
pub fn select_cloud(
    clouds: &BTreeMap<String, CloudAuth>,
    name: &str,
    fallback_to_only: bool,
) -> anyhow::Result<CloudAuth> {
    if let Some(c) = clouds.get(name) {
        return Ok(c.clone());
    }
    if fallback_to_only && clouds.len() == 1 {
        if let Some(c) = clouds.values().next() {
            return Ok(c.clone());
        }
    }
    let names: Vec<&str> = clouds.keys().map(String::as_str).collect();
    bail!("no cloud named {name:?} in clouds.yaml (found: {names:?})")
}

/// Reads `path` and selects cloud `name` from it.
pub(crate) async fn load_cloud(
    path: &std::path::Path,
    name: &str,
    fallback_to_only: bool,
) -> anyhow::Result<CloudAuth> {
    let text = tokio::fs::read_to_string(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    select_cloud(&parse_clouds_yaml(&text), name, fallback_to_only)
        .with_context(|| format!("in {}", path.display()))
}

/// Splits `key: value` (or `key:` at end of line); `None` for lines that are not a mapping entry.
fn split_key_value(body: &str) -> Option<(String, &str)> {
    if body.starts_with("- ") || body == "-" {
        return None;
    }
    // A quoted key may itself contain ": ".
    if let Some(q) = body.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = body[1..].find(q)? + 1;
        let rest = body[end + 1..].strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return None;
        }
        return Some((body[1..end].to_string(), rest));
    }
    let (key, rest) = match body.find(": ").or_else(|| body.find(":\t")) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body.strip_suffix(':')?, ""),
    };
    Some((key.trim_end().to_string(), rest))
}

/// The value of a plain, single- or double-quoted scalar, without its trailing comment.
fn scalar(value: &str) -> String {
    let v = value.trim();
    if let Some(inner) = v.strip_prefix('\'') {
        // Single quotes: `''` is an escaped quote, nothing else is special.
        let mut out = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('0') => out.push('\0'),
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        return out;
    }
    // Plain scalar: a comment starts at " #".
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    if v.starts_with('#') {
        return String::new();
    }
    v.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Written by strata up; keep it secret.
clouds:
  strata:
    auth:
      auth_url: http://127.0.0.1:8440/identity/v3
      username: admin
      password: \"p@ss: w#rd \\\"q\\\"\"
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  other:
    auth:
      username: 'o''brien'
      password: plain-pw # a comment
      project_name: demo
";

    #[test]
    fn parses_the_strata_shape() {
        let clouds = parse_clouds_yaml(SAMPLE);
        assert_eq!(clouds.len(), 2);
        assert_eq!(
            clouds["strata"],
            CloudAuth {
                auth_url: Some("http://127.0.0.1:8440/identity/v3".into()),
                username: Some("admin".into()),
                password: Some("p@ss: w#rd \"q\"".into()),
                project_name: Some("admin".into()),
            }
        );
        assert_eq!(clouds["other"].username.as_deref(), Some("o'brien"));
        assert_eq!(clouds["other"].password.as_deref(), Some("plain-pw"));
        assert_eq!(clouds["other"].project_name.as_deref(), Some("demo"));
        assert_eq!(clouds["other"].auth_url, None);
    }

    #[test]
    fn parses_what_strata_up_writes() {
        // The shape of crates/strata/src/clouds.rs: two clouds, quoted passwords.
        let text = "# Written by `strata up`. Use: export OS_CLIENT_CONFIG_FILE=/d/clouds.yaml\n\
            clouds:\n  strata:\n    auth:\n      auth_url: http://127.0.0.1:8440/identity\n      \
            username: admin\n      password: \"Xy9-_z\"\n      project_name: admin\n      \
            user_domain_name: Default\n      project_domain_name: Default\n    \
            region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n  \
            strata-demo:\n    auth:\n      auth_url: http://127.0.0.1:8440/identity\n      \
            username: demo\n      password: \"d3m0\"\n      project_name: demo\n";
        let clouds = parse_clouds_yaml(text);
        let admin = select_cloud(&clouds, "strata", true).unwrap();
        assert_eq!(admin.password.as_deref(), Some("Xy9-_z"));
        assert_eq!(admin.username.as_deref(), Some("admin"));
        assert_eq!(
            admin.auth_url.as_deref(),
            Some("http://127.0.0.1:8440/identity")
        );
        assert_eq!(clouds["strata-demo"].project_name.as_deref(), Some("demo"));
    }

    #[test]
    fn ignores_keys_outside_auth_and_unknown_constructs() {
        let text = "\
password: top-level
clouds:
  c1:
    password: not-auth
    regions:
      - RegionOne
      - name: RegionTwo
    auth: {username: flow}
  c2:
    auth:
      password: 'yes'
      nested:
        password: no
";
        let clouds = parse_clouds_yaml(text);
        assert_eq!(clouds["c1"], CloudAuth::default());
        assert_eq!(clouds["c2"].password.as_deref(), Some("yes"));
    }

    #[test]
    fn handles_tabs_crlf_and_other_indentation() {
        let text = "clouds:\r\n    strata:\r\n        auth:\r\n            password:\tpw\r\n";
        let clouds = parse_clouds_yaml(text);
        assert_eq!(clouds["strata"].password.as_deref(), Some("pw"));
    }

    #[test]
    fn selects_by_name_or_the_only_cloud() {
        let clouds = parse_clouds_yaml(SAMPLE);
        assert_eq!(
            select_cloud(&clouds, "other", false)
                .unwrap()
                .project_name
                .as_deref(),
            Some("demo")
        );
        assert!(select_cloud(&clouds, "missing", true).is_err());

        let one = parse_clouds_yaml("clouds:\n  mine:\n    auth:\n      password: x\n");
        assert!(select_cloud(&one, "strata", false).is_err());
        assert_eq!(
            select_cloud(&one, "strata", true)
                .unwrap()
                .password
                .as_deref(),
            Some("x")
        );
        assert!(select_cloud(&parse_clouds_yaml(""), "strata", true).is_err());
    }

    #[test]
    fn scalars() {
        assert_eq!(scalar(""), "");
        assert_eq!(scalar("  # only a comment"), "");
        assert_eq!(scalar("a#b"), "a#b");
        assert_eq!(scalar("'it''s' # c"), "it's");
        assert_eq!(scalar(r#""a\\b\tc""#), "a\\b\tc");
        assert_eq!(split_key_value("\"k: x\": v"), Some(("k: x".into(), " v")));
        assert_eq!(split_key_value("url:http://x"), None);
        assert_eq!(split_key_value("- item"), None);
    }
}
