//! Microversions, as Ironic negotiates them: the requested version comes from
//! `X-OpenStack-Ironic-API-Version: 1.x` or `OpenStack-API-Version: baremetal 1.x` (`latest`
//! meaning the newest served); without either a request is served at the *oldest* version
//! (1.1), as Ironic does. Every response under `/baremetal` carries the supported range
//! (`X-OpenStack-Ironic-API-Minimum-Version`/`-Maximum-Version`) and, once accepted, the version
//! served (`X-OpenStack-Ironic-API-Version`); a version outside the range is a 406 that names
//! the range in the headers and the body, which is what clients negotiate from.
//!
//! What each version changes is a value handed to handlers ([`Microversion::at_least`]); the
//! field gates are in `model::NODE_FIELDS` and `model::PORT_FIELDS`.

use crate::error::IronicError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue};

/// The oldest and newest minor versions served (of 1.x).
pub const MIN_VERSION: u32 = 1;
pub const MAX_VERSION: u32 = 115;

pub const VERSION_HEADER: &str = "x-openstack-ironic-api-version";
pub const MIN_HEADER: &str = "x-openstack-ironic-api-minimum-version";
pub const MAX_HEADER: &str = "x-openstack-ironic-api-maximum-version";
const GENERIC_HEADER: &str = "openstack-api-version";

/// The microversion a request is served at: `1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u32);

impl Microversion {
    pub const MAX: Microversion = Microversion(MAX_VERSION);

    pub fn at_least(self, minor: u32) -> bool {
        self.0 >= minor
    }
    pub fn string(self) -> String {
        format!("1.{}", self.0)
    }
}

fn range() -> String {
    format!("[1.{MIN_VERSION}, 1.{MAX_VERSION}]")
}

/// The version string the client asked for, if any: the `baremetal` entry of
/// `OpenStack-API-Version` first, then the legacy Ironic header.
fn requested_string(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(GENERIC_HEADER) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split_whitespace();
            if let (Some(service), Some(ver)) = (parts.next(), parts.next()) {
                if service.eq_ignore_ascii_case("baremetal") {
                    return Some(ver.to_string());
                }
            }
        }
    }
    headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The version to serve the request at, or the 406 Ironic answers.
pub fn negotiate(headers: &HeaderMap) -> Result<Microversion, IronicError> {
    let Some(text) = requested_string(headers) else {
        return Ok(Microversion(MIN_VERSION));
    };
    if text.eq_ignore_ascii_case("latest") {
        return Ok(Microversion::MAX);
    }
    let invalid = || {
        IronicError::new(
            http::StatusCode::NOT_ACCEPTABLE,
            "Invalid value for X-OpenStack-Ironic-API-Version header",
        )
    };
    let (major, minor) = text.split_once('.').ok_or_else(invalid)?;
    let major: u32 = major.parse().map_err(|_| invalid())?;
    let minor: u32 = minor.parse().map_err(|_| invalid())?;
    if major != 1 {
        return Err(IronicError::new(
            http::StatusCode::NOT_ACCEPTABLE,
            format!(
                "Mutually exclusive versions requested. Version {major}.{minor} requested but \
                 not supported by this service. The supported version range is: {}.",
                range()
            ),
        ));
    }
    if !(MIN_VERSION..=MAX_VERSION).contains(&minor) {
        return Err(IronicError::new(
            http::StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version 1.{minor} was requested but the minor version is not supported by this \
                 service. The supported version range is: {}.",
                range()
            ),
        ));
    }
    Ok(Microversion(minor))
}

/// The middleware of every `/baremetal` route: negotiates, hands the version to handlers as an
/// extension, and stamps the version headers (and Ironic's `openstack-request-id`) on the
/// answer, errors included.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<strata_api::RequestId>()
        .map(|r| r.0.clone());
    let served = negotiate(req.headers());
    let mut resp = match &served {
        Ok(v) => {
            req.extensions_mut().insert(*v);
            next.run(req).await
        }
        Err(e) => IronicError::new(e.status, e.message.clone()).into_response(),
    };
    let h = resp.headers_mut();
    h.insert(MIN_HEADER, HeaderValue::from_static("1.1"));
    if let Ok(max) = HeaderValue::from_str(&format!("1.{MAX_VERSION}")) {
        h.insert(MAX_HEADER, max);
    }
    if let Ok(v) = &served {
        if let Ok(val) = HeaderValue::from_str(&v.string()) {
            h.insert(VERSION_HEADER, val);
        }
    }
    h.append(
        http::header::VARY,
        HeaderValue::from_static("X-OpenStack-Ironic-API-Version"),
    );
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        // Ironic's historical spelling beside the `x-openstack-request-id` every service sends.
        h.insert("openstack-request-id", id);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(name: &'static str, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn absent_is_the_oldest_version() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), Microversion(1));
    }

    #[test]
    fn both_headers_and_latest() {
        assert_eq!(
            negotiate(&hdr(VERSION_HEADER, "1.31")).unwrap(),
            Microversion(31)
        );
        assert_eq!(
            negotiate(&hdr(GENERIC_HEADER, "compute 2.1, baremetal 1.81")).unwrap(),
            Microversion(81)
        );
        assert_eq!(
            negotiate(&hdr(VERSION_HEADER, "latest")).unwrap(),
            Microversion::MAX
        );
        assert_eq!(
            negotiate(&hdr(GENERIC_HEADER, "baremetal latest")).unwrap(),
            Microversion::MAX
        );
        // The generic header wins over the legacy one.
        let mut h = hdr(VERSION_HEADER, "1.5");
        h.insert(GENERIC_HEADER, HeaderValue::from_static("baremetal 1.6"));
        assert_eq!(negotiate(&h).unwrap(), Microversion(6));
    }

    #[test]
    fn out_of_range_and_malformed_are_406() {
        let e = negotiate(&hdr(VERSION_HEADER, "1.999")).unwrap_err();
        assert_eq!(e.status, http::StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            e.message,
            format!(
                "Version 1.999 was requested but the minor version is not supported by this \
                 service. The supported version range is: [1.1, 1.{MAX_VERSION}]."
            )
        );
        let e = negotiate(&hdr(VERSION_HEADER, "1.0")).unwrap_err();
        assert_eq!(e.status, http::StatusCode::NOT_ACCEPTABLE);
        let e = negotiate(&hdr(VERSION_HEADER, "2.1")).unwrap_err();
        assert!(e.message.starts_with("Mutually exclusive versions"));
        for bad in ["1", "one.two", "1.x", ""] {
            let e = negotiate(&hdr(VERSION_HEADER, bad)).unwrap_err();
            assert_eq!(e.status, http::StatusCode::NOT_ACCEPTABLE, "{bad}");
            assert_eq!(
                e.message,
                "Invalid value for X-OpenStack-Ironic-API-Version header"
            );
        }
    }
}
