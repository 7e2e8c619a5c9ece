//! Application-credential access rules: which requests a token made from a restricted
//! application credential may make.
//!
//! A credential created with access rules yields tokens that carry them (see
//! [`crate::AuthContext::access_rules`]). Every service checks each request against them with
//! [`access_rules_allow`], as keystonemiddleware's `auth_token` does for OpenStack services: a
//! request is allowed when some rule names the service's type, the request's method exactly, and
//! a path template matching the request path (relative to the service's root, without the query
//! string). A token without rules is unrestricted. A refused request is answered like an invalid
//! token (401), as the middleware does.
//!
//! Path templates, as keystonemiddleware reads them:
//! - `*` matches one path segment (one or more characters other than `/`);
//! - `**` matches anything, `/` included, possibly nothing;
//! - `{name}` matches one path segment, like `*`;
//! - any other character matches itself, and the template must match the whole path.
//!
//! The middleware turns templates into regular expressions without escaping literal
//! characters, so there a `.` (as in `/v2.1/…`) matches any character; here every literal
//! character matches only itself, which is what rule authors mean and never allows more. A `{`
//! with no `}` after it and a stray `}` match nothing and are skipped, as in the middleware.
//!
//! Pure and allocation-light: no I/O, safe to call on every request.

use serde::{Deserialize, Serialize};

/// One access rule as Keystone shows it: `{"id", "service", "method", "path"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessRule {
    pub id: String,
    /// A service type from the catalog (`compute`, `identity`, …).
    pub service: String,
    /// An HTTP method, upper case (`GET`, `POST`, …).
    pub method: String,
    /// A path template, e.g. `/v2.1/servers/{server_id}/ips` or `/v3/users/**`.
    pub path: String,
}

/// Whether `rules` allow a request of `method` to `path` on a service of type `service_type`.
/// Empty `rules` allow everything (the token is not restricted by access rules).
///
/// `path` is relative to the service's root (`/v3/users` for identity mounted at `/identity`)
/// and carries no query string; `method` is compared exactly, so a `GET` rule does not allow
/// `HEAD`.
pub fn access_rules_allow(
    rules: &[AccessRule],
    service_type: &str,
    method: &str,
    path: &str,
) -> bool {
    rules.is_empty()
        || rules
            .iter()
            .any(|r| r.service == service_type && r.method == method && path_matches(&r.path, path))
}

/// One element of a parsed path template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// This character, exactly.
    Lit(char),
    /// One or more characters other than `/` (`*` and `{name}`).
    Segment,
    /// Any characters, `/` included, possibly none (`**`).
    Any,
}

/// Splits a template the way keystonemiddleware's tokenizer does: `{…}` up to the first `}`,
/// then `**` before `*`, and an unpaired brace skipped.
fn tokens(template: &str) -> Vec<Tok> {
    let cs: Vec<char> = template.chars().collect();
    let mut out = Vec::with_capacity(cs.len());
    let mut i = 0;
    while i < cs.len() {
        match cs[i] {
            '{' => match cs[i + 1..].iter().position(|&c| c == '}') {
                Some(close) => {
                    out.push(Tok::Segment);
                    i += close + 2;
                }
                None => i += 1,
            },
            '}' => i += 1,
            '*' if cs.get(i + 1) == Some(&'*') => {
                out.push(Tok::Any);
                i += 2;
            }
            '*' => {
                out.push(Tok::Segment);
                i += 1;
            }
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

/// Whether the path template `template` matches all of `path`.
pub fn path_matches(template: &str, path: &str) -> bool {
    let toks = tokens(template);
    let p: Vec<char> = path.chars().collect();
    let n = p.len();
    // Dynamic programming from the ends: `next[j]` is whether toks[i+1..] matches p[j..],
    // `cur[j]` whether toks[i..] does. Linear in the path for each token, no backtracking.
    let mut next = vec![false; n + 1];
    next[n] = true;
    let mut cur = vec![false; n + 1];
    for &t in toks.iter().rev() {
        for j in (0..=n).rev() {
            cur[j] = match t {
                Tok::Lit(c) => j < n && p[j] == c && next[j + 1],
                Tok::Segment => j < n && p[j] != '/' && (next[j + 1] || cur[j + 1]),
                Tok::Any => next[j] || (j < n && cur[j + 1]),
            };
        }
        std::mem::swap(&mut cur, &mut next);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(service: &str, method: &str, path: &str) -> AccessRule {
        AccessRule {
            id: format!("{service}-{method}-{path}"),
            service: service.into(),
            method: method.into(),
            path: path.into(),
        }
    }

    #[test]
    fn no_rules_allow_everything() {
        assert!(access_rules_allow(&[], "compute", "DELETE", "/anything"));
        assert!(access_rules_allow(&[], "", "", ""));
    }

    #[test]
    fn service_method_and_path_must_all_match() {
        let rules = [rule("compute", "GET", "/v2.1/servers")];
        assert!(access_rules_allow(
            &rules,
            "compute",
            "GET",
            "/v2.1/servers"
        ));
        assert!(!access_rules_allow(&rules, "image", "GET", "/v2.1/servers"));
        assert!(!access_rules_allow(
            &rules,
            "compute",
            "POST",
            "/v2.1/servers"
        ));
        assert!(!access_rules_allow(
            &rules,
            "compute",
            "HEAD",
            "/v2.1/servers"
        ));
        assert!(!access_rules_allow(
            &rules,
            "compute",
            "get",
            "/v2.1/servers"
        ));
        assert!(!access_rules_allow(
            &rules,
            "Compute",
            "GET",
            "/v2.1/servers"
        ));
        assert!(!access_rules_allow(
            &rules,
            "compute",
            "GET",
            "/v2.1/servers/x"
        ));
    }

    #[test]
    fn any_rule_may_allow() {
        let rules = [
            rule("compute", "GET", "/v2.1/servers"),
            rule("identity", "GET", "/v3/users/*"),
            rule("image", "DELETE", "/v2/images/{image_id}"),
        ];
        assert!(access_rules_allow(
            &rules,
            "identity",
            "GET",
            "/v3/users/u1"
        ));
        assert!(access_rules_allow(
            &rules,
            "image",
            "DELETE",
            "/v2/images/i1"
        ));
        assert!(access_rules_allow(
            &rules,
            "compute",
            "GET",
            "/v2.1/servers"
        ));
        assert!(!access_rules_allow(
            &rules,
            "identity",
            "GET",
            "/v2.1/servers"
        ));
        assert!(!access_rules_allow(&rules, "image", "GET", "/v2/images/i1"));
    }

    #[test]
    fn literal_paths_match_whole_paths_only() {
        assert!(path_matches("/v3/users", "/v3/users"));
        assert!(!path_matches("/v3/users", "/v3/users/"));
        assert!(!path_matches("/v3/users", "/v3/user"));
        assert!(!path_matches("/v3/users", "/v3/usersX"));
        assert!(!path_matches("/v3/users", "/x/v3/users"));
        assert!(!path_matches("/v3/users", "/V3/users"));
        assert!(path_matches("", ""));
        assert!(!path_matches("", "/"));
        assert!(!path_matches("/", ""));
        assert!(path_matches("/", "/"));
    }

    #[test]
    fn literal_dots_are_not_wildcards() {
        assert!(path_matches("/v2.1/servers", "/v2.1/servers"));
        assert!(!path_matches("/v2.1/servers", "/v2x1/servers"));
        assert!(!path_matches("/v2.1/servers", "/v2/1/servers"));
        // Other characters a regular expression would read specially are literal too.
        assert!(path_matches("/a+b/(c)?/[d]$^|", "/a+b/(c)?/[d]$^|"));
        assert!(!path_matches("/a+b", "/aab"));
        assert!(!path_matches("/a?", "/"));
    }

    #[test]
    fn single_star_is_one_segment() {
        let t = "/v2.1/servers/*/ips";
        assert!(path_matches(t, "/v2.1/servers/abc/ips"));
        assert!(path_matches(t, "/v2.1/servers/a-b_c.d/ips"));
        assert!(
            !path_matches(t, "/v2.1/servers//ips"),
            "a segment is not empty"
        );
        assert!(
            !path_matches(t, "/v2.1/servers/a/b/ips"),
            "nor two segments"
        );
        assert!(!path_matches(t, "/v2.1/servers/ips"));
        assert!(!path_matches(t, "/v2.1/servers/abc/ips/x"));
        // At the end, and as part of a segment.
        assert!(path_matches("/v3/users/*", "/v3/users/u1"));
        assert!(!path_matches("/v3/users/*", "/v3/users/"));
        assert!(!path_matches("/v3/users/*", "/v3/users"));
        assert!(!path_matches("/v3/users/*", "/v3/users/u1/groups"));
        assert!(path_matches("/v3/us*", "/v3/users"));
        assert!(!path_matches("/v3/us*", "/v3/us"));
        assert!(path_matches("/img-*.png", "/img-1.png"));
        assert!(!path_matches("/img-*.png", "/img-.png"));
        assert!(path_matches("/*/*", "/a/b"));
        assert!(!path_matches("/*/*", "/a/b/c"));
        assert!(path_matches("*", "abc"));
        assert!(!path_matches("*", "/abc"));
        assert!(!path_matches("*", ""));
    }

    #[test]
    fn double_star_is_any_depth() {
        let t = "/v3/users/**";
        assert!(path_matches(t, "/v3/users/"));
        assert!(path_matches(t, "/v3/users/u1"));
        assert!(path_matches(t, "/v3/users/u1/groups"));
        assert!(path_matches(t, "/v3/users/u1/application_credentials/c1"));
        assert!(!path_matches(t, "/v3/users"));
        assert!(!path_matches(t, "/v3/groups/g1"));
        assert!(path_matches("**", ""));
        assert!(path_matches("**", "/any/thing/at/all"));
        assert!(path_matches("/v3/**/roles", "/v3/projects/p/users/u/roles"));
        assert!(path_matches("/v3/**/roles", "/v3//roles"));
        assert!(!path_matches("/v3/**/roles", "/v3/roles"));
        assert!(!path_matches("/v3/**/roles", "/v3/projects/p/roles/r"));
        assert!(path_matches("/v3/**roles", "/v3/roles"));
        assert!(path_matches("/a/**/b/**/c", "/a/x/b/y/z/c"));
        assert!(path_matches("/a/**/b/**/c", "/a//b//c"));
        assert!(!path_matches("/a/**/b/**/c", "/a/x/c"));
    }

    #[test]
    fn named_segments_are_like_single_stars() {
        let t = "/v2.1/servers/{server_id}/ips/{network}";
        assert!(path_matches(t, "/v2.1/servers/s1/ips/private"));
        assert!(!path_matches(t, "/v2.1/servers/s1/ips/"));
        assert!(!path_matches(t, "/v2.1/servers/s1/x/ips/private"));
        assert!(
            path_matches("/{}", "/x"),
            "an empty name is still a segment"
        );
        assert!(
            path_matches("/{a{b}", "/x"),
            "the name runs to the first `}}`"
        );
        assert!(path_matches("/{id}.json", "/42.json"));
        assert!(!path_matches("/{id}.json", "/.json"));
    }

    #[test]
    fn star_runs_pair_from_the_left() {
        // `***` is `**` then `*`: anything, then at least one non-`/` character.
        assert!(path_matches("/***", "/a"));
        assert!(path_matches("/***", "/a/b"));
        assert!(!path_matches("/***", "/"));
        assert!(!path_matches("/***", "/a/"));
        // `****` is two `**`.
        assert!(path_matches("/****", "/"));
        assert!(path_matches("/****", "/a/b/"));
    }

    #[test]
    fn unpaired_braces_are_skipped() {
        assert!(path_matches("/a{b", "/ab"));
        assert!(!path_matches("/a{b", "/a{b"));
        assert!(path_matches("/a}b", "/ab"));
        assert!(path_matches("/}{x}", "/y"));
    }

    #[test]
    fn non_ascii_paths() {
        assert!(path_matches("/é/*", "/é/ü"));
        assert!(!path_matches("/é/*", "/e/ü"));
    }

    #[test]
    fn long_paths_do_not_blow_up() {
        let path = format!("/{}", "a/".repeat(5_000));
        assert!(path_matches("/**/**/**/**/**/", &path));
        assert!(!path_matches("/**/**/**/**/**/b", &path));
    }

    /// Reference semantics: the middleware's translation of (our reading of) a template to a
    /// regular expression, with literal characters escaped.
    fn reference(template: &str) -> regex::Regex {
        let mut re = String::from("^");
        for t in tokens(template) {
            match t {
                Tok::Lit(c) => re.push_str(&regex::escape(&c.to_string())),
                Tok::Segment => re.push_str("[^/]+"),
                Tok::Any => re.push_str(".*"),
            }
        }
        re.push('$');
        regex::Regex::new(&re).unwrap()
    }

    /// Every string over `alphabet` up to `max` characters.
    fn all_strings(alphabet: &[&str], max: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..max {
            let mut next = Vec::new();
            for s in &frontier {
                for a in alphabet {
                    next.push(format!("{s}{a}"));
                }
            }
            out.extend(next.iter().cloned());
            frontier = next;
        }
        out
    }

    #[test]
    fn exhaustively_agrees_with_the_regular_expression_reading() {
        let templates = all_strings(&["a", "/", "*", "{x}", "."], 4);
        let paths = all_strings(&["a", "b", "/", "."], 5);
        let mut checked = 0;
        for t in &templates {
            let re = reference(t);
            for p in &paths {
                assert_eq!(
                    path_matches(t, p),
                    re.is_match(p),
                    "template {t:?} path {p:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100_000);
    }
}
