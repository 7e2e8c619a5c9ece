//! Microversions: `OpenStack-API-Version: placement 1.N` (or `latest`) picks the behaviour;
//! every response echoes the version served with `Vary: openstack-api-version`; a version
//! outside `1.0..=MAX` is 406 and a malformed one 400, as Placement's microversion middleware
//! answers. The same middleware finishes error bodies (the `code` from 1.23, the request id)
//! and adds the 1.15 `last-modified`/`cache-control` headers.

use crate::error::PlacementError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};

/// The newest microversion served (`1.MAX_VERSION`). Every behaviour change up to it is
/// implemented; see the crate documentation.
pub const MAX_VERSION: u32 = 39;
/// The oldest, `1.0`.
pub const MIN_VERSION: u32 = 0;

/// The header naming the version, lowercase.
pub const HEADER: &str = "openstack-api-version";

/// The microversion a request is served at, `1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion(pub u32);

impl Microversion {
    /// The newest served.
    pub const LATEST: Microversion = Microversion(MAX_VERSION);

    /// Whether this is `1.minor` or later.
    pub fn at_least(self, minor: u32) -> bool {
        self.0 >= minor
    }
    /// `1.N`.
    pub fn string(self) -> String {
        format!("1.{}", self.0)
    }
}

/// The version named by the header's `placement …` entry; `None` when absent (1.0).
pub fn requested(headers: &http::HeaderMap) -> Result<Option<Microversion>, PlacementError> {
    for value in headers.get_all(HEADER) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split_whitespace();
            let (Some(service), ver) = (parts.next(), parts.next()) else {
                continue;
            };
            if !service.eq_ignore_ascii_case("placement") {
                continue;
            }
            let ver = ver.unwrap_or("");
            if ver.eq_ignore_ascii_case("latest") {
                return Ok(Some(Microversion(MAX_VERSION)));
            }
            let parsed = ver.split_once('.').and_then(|(maj, min)| {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if !digits(maj) || !digits(min) {
                    return None;
                }
                Some((maj.parse::<u32>().ok()?, min.parse::<u32>().ok()?))
            });
            return match parsed {
                Some((1, minor)) if (MIN_VERSION..=MAX_VERSION).contains(&minor) => {
                    Ok(Some(Microversion(minor)))
                }
                Some(_) => Err(PlacementError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    format!("Unacceptable version header: {ver}"),
                )),
                None => Err(PlacementError::bad_request(format!(
                    "invalid version string: {ver}"
                ))),
            };
        }
    }
    Ok(None)
}

/// The middleware around every Placement route.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<strata_api::RequestId>()
        .map(|r| r.0.clone());
    let method = req.method().clone();
    let (version, mut resp) = match requested(req.headers()) {
        Ok(v) => {
            let v = v.unwrap_or(Microversion(MIN_VERSION));
            req.extensions_mut().insert(v);
            (v, next.run(req).await)
        }
        Err(e) => (Microversion(MIN_VERSION), e.into_response()),
    };
    if let Some(err) = resp.extensions_mut().remove::<PlacementError>() {
        let body = err.body(version.at_least(23), request_id.as_deref());
        let headers = std::mem::take(resp.headers_mut());
        resp = (err.status, axum::Json(body)).into_response();
        for (k, v) in headers.iter() {
            if k != http::header::CONTENT_TYPE && k != http::header::CONTENT_LENGTH {
                resp.headers_mut().insert(k.clone(), v.clone());
            }
        }
    }
    finish(&mut resp, version, &method);
    resp
}

/// Echoes the version and, from 1.15, marks bodies of successful reads and writes uncacheable
/// with a `last-modified` (the handler's, or now).
fn finish(resp: &mut Response, v: Microversion, method: &Method) {
    let status = resp.status();
    let h = resp.headers_mut();
    if let Ok(val) = HeaderValue::from_str(&format!("placement {}", v.string())) {
        h.insert(HEADER, val);
    }
    h.append(http::header::VARY, HeaderValue::from_static(HEADER));
    let has_body = status == StatusCode::OK || status == StatusCode::CREATED;
    let wants = method == Method::GET || method == Method::PUT || method == Method::POST;
    if v.at_least(15) && has_body && wants {
        if !h.contains_key(http::header::LAST_MODIFIED) {
            if let Ok(val) = HeaderValue::from_str(&http_date(strata_core::time::now_micros())) {
                h.insert(http::header::LAST_MODIFIED, val);
            }
        }
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
    } else if !v.at_least(15) {
        h.remove(http::header::LAST_MODIFIED);
    }
}

/// An HTTP date (`Sat, 21 Nov 2026 20:29:58 GMT`) for microseconds since the epoch.
pub fn http_date(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn parses_the_placement_entry_only() {
        assert_eq!(requested(&http::HeaderMap::new()).unwrap(), None);
        assert_eq!(
            requested(&hdr("placement 1.27")).unwrap(),
            Some(Microversion(27))
        );
        assert_eq!(requested(&hdr("compute 2.5")).unwrap(), None);
        assert_eq!(
            requested(&hdr("compute 2.5, placement 1.1")).unwrap(),
            Some(Microversion(1))
        );
        assert_eq!(
            requested(&hdr("placement latest")).unwrap(),
            Some(Microversion(MAX_VERSION))
        );
        for bad in ["placement 1.999", "placement 2.0", "placement 0.9"] {
            assert_eq!(
                requested(&hdr(bad)).unwrap_err().status,
                StatusCode::NOT_ACCEPTABLE,
                "{bad}"
            );
        }
        for bad in [
            "placement 1.x",
            "placement 1",
            "placement",
            "placement 1.-1",
        ] {
            assert_eq!(
                requested(&hdr(bad)).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date(1_700_000_000_123_456),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }
}
