//! Microversions: `OpenStack-API-Version: compute 2.N` (or the legacy
//! `X-OpenStack-Nova-API-Version: 2.N`; `latest` in either) picks the behaviour, the former
//! winning when both are sent. Every `/v2.1` response echoes the version served in both headers
//! with `Vary`; a version outside `2.1..=MAX` is 406 and a malformed one 400, as Nova's
//! `api_version_request` answers (neither refusal echoes a version).
//!
//! [`MAX_VERSION`] is 2.96: every behaviour change up to 2.96 that touches the resources this
//! crate serves is implemented — 2.2 (keypair `type`, 201/204), 2.10 (keypair `user_id`), 2.35
//! (keypair paging), 2.36 (network quotas and limits gone), 2.39 (`maxImageMeta` gone), 2.50
//! (quota class keys), 2.55 (flavor `description`, `PUT /flavors/{id}`), 2.57 (personality
//! quotas gone), 2.61 (`extra_specs` in flavor views), 2.75 (`swap` 0; unknown query
//! parameters refused on flavor, keypair, quota-set and limit reads), 2.86 (extra spec
//! validation, see `model::validate_extra_spec`) and 2.92 (keypair generation refused, wider
//! names). The other microversions of that range change resources not served yet (servers,
//! server groups, hypervisors, migrations, …), which answer 404 until they exist.

use crate::error::NovaError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

/// The oldest microversion served, `2.1` (minor number).
pub const MIN_VERSION: u32 = 1;
/// The newest microversion served, `2.96` (minor number); see the module documentation.
pub const MAX_VERSION: u32 = 96;

/// The standard header, lowercase.
pub const HEADER: &str = "openstack-api-version";
/// Nova's legacy header, lowercase.
pub const LEGACY_HEADER: &str = "x-openstack-nova-api-version";

/// The microversion a request is served at, `2.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion(pub u32);

impl Microversion {
    /// The newest served.
    pub const LATEST: Microversion = Microversion(MAX_VERSION);

    /// Whether this is `2.minor` or later.
    pub fn at_least(self, minor: u32) -> bool {
        self.0 >= minor
    }
    /// `2.N`.
    pub fn string(self) -> String {
        format!("2.{}", self.0)
    }
}

/// Parses one version string: `latest`, or `MAJOR.MINOR` without leading zeros.
fn parse(ver: &str) -> Result<Microversion, NovaError> {
    let ver = ver.trim();
    if ver.eq_ignore_ascii_case("latest") {
        return Ok(Microversion::LATEST);
    }
    let number = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let parsed = ver.split_once('.').and_then(|(maj, min)| {
        if !number(maj) || maj == "0" || !number(min) {
            return None;
        }
        Some((maj.parse::<u32>().ok()?, min.parse::<u32>().ok()?))
    });
    match parsed {
        Some((2, minor)) if (MIN_VERSION..=MAX_VERSION).contains(&minor) => Ok(Microversion(minor)),
        Some(_) => Err(NovaError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {ver} is not supported by the API. Minimum is 2.{MIN_VERSION} and \
                 maximum is 2.{MAX_VERSION}."
            ),
        )),
        None => Err(NovaError::bad_request(format!(
            "API Version String {ver} is of invalid format. Must be of format MajorNum.MinorNum."
        ))),
    }
}

/// The version a request names: the `compute` entry of `OpenStack-API-Version`, else the
/// legacy header; `None` when neither names one (2.1).
pub fn requested(headers: &http::HeaderMap) -> Result<Option<Microversion>, NovaError> {
    for value in headers.get_all(HEADER) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let item = item.trim();
            let (service, ver) = item.split_once(' ').unwrap_or((item, ""));
            if service.eq_ignore_ascii_case("compute") {
                return parse(ver).map(Some);
            }
        }
    }
    if let Some(v) = headers.get(LEGACY_HEADER).and_then(|v| v.to_str().ok()) {
        return parse(v).map(Some);
    }
    Ok(None)
}

/// The middleware around every `/v2.1` route.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let version = match requested(req.headers()) {
        Ok(v) => v.unwrap_or(Microversion(MIN_VERSION)),
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(version);
    let mut resp = next.run(req).await;
    echo(&mut resp, version);
    resp
}

fn echo(resp: &mut Response, v: Microversion) {
    let h = resp.headers_mut();
    if let Ok(val) = HeaderValue::from_str(&format!("compute {}", v.string())) {
        h.insert(HEADER, val);
    }
    if let Ok(val) = HeaderValue::from_str(&v.string()) {
        h.insert(LEGACY_HEADER, val);
    }
    h.append(
        http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn picks_the_compute_entry_then_the_legacy_header() {
        assert_eq!(requested(&http::HeaderMap::new()).unwrap(), None);
        assert_eq!(
            requested(&hdr(&[(HEADER, "compute 2.55")])).unwrap(),
            Some(Microversion(55))
        );
        assert_eq!(
            requested(&hdr(&[(HEADER, "volume 3.5, compute 2.3")])).unwrap(),
            Some(Microversion(3))
        );
        assert_eq!(requested(&hdr(&[(HEADER, "volume 3.5")])).unwrap(), None);
        assert_eq!(
            requested(&hdr(&[(LEGACY_HEADER, "2.10")])).unwrap(),
            Some(Microversion(10))
        );
        assert_eq!(
            requested(&hdr(&[(HEADER, "compute 2.20"), (LEGACY_HEADER, "2.10")])).unwrap(),
            Some(Microversion(20))
        );
        assert_eq!(
            requested(&hdr(&[(HEADER, "compute latest")])).unwrap(),
            Some(Microversion::LATEST)
        );
    }

    #[test]
    fn refuses_out_of_range_and_malformed() {
        for (v, status) in [
            ("2.0", StatusCode::NOT_ACCEPTABLE),
            ("2.97", StatusCode::NOT_ACCEPTABLE),
            ("3.0", StatusCode::NOT_ACCEPTABLE),
            ("2.x", StatusCode::BAD_REQUEST),
            ("2.01", StatusCode::BAD_REQUEST),
            ("2", StatusCode::BAD_REQUEST),
            ("", StatusCode::BAD_REQUEST),
        ] {
            let e = requested(&hdr(&[(HEADER, &format!("compute {v}"))])).unwrap_err();
            assert_eq!(e.status, status, "{v}");
        }
    }
}
