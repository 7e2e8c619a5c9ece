//! Microversions: `OpenStack-API-Version: volume 3.x` picks the behaviour, every v3 response
//! echoes the version it was served at (with `Vary`), and a version outside the advertised
//! range is answered 406 as Cinder does.

use crate::error::CinderError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

/// The oldest and newest microversions served (minor numbers of 3.x).
pub const MIN_VERSION: u32 = 0;
pub const MAX_VERSION: u32 = 60;

pub const HEADER: &str = "openstack-api-version";

/// The microversion a request is served at, `3.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u32);

impl Microversion {
    pub fn at_least(self, minor: u32) -> bool {
        self.0 >= minor
    }
    pub fn string(self) -> String {
        format!("3.{}", self.0)
    }
}

/// The version named by the header's `volume …` entry: `None` when absent (3.0).
fn requested(headers: &http::HeaderMap) -> Result<Option<Microversion>, CinderError> {
    for value in headers.get_all(HEADER) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split_whitespace();
            let (Some(service), Some(ver)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !service.eq_ignore_ascii_case("volume") {
                continue;
            }
            if ver.eq_ignore_ascii_case("latest") {
                return Ok(Some(Microversion(MAX_VERSION)));
            }
            let parsed = ver
                .split_once('.')
                .and_then(|(maj, min)| Some((maj.parse::<u32>().ok()?, min.parse::<u32>().ok()?)));
            return match parsed {
                Some((3, minor)) if (MIN_VERSION..=MAX_VERSION).contains(&minor) => {
                    Ok(Some(Microversion(minor)))
                }
                Some(_) => Err(CinderError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    format!(
                        "Version {ver} is not supported by the API. Minimum is 3.{MIN_VERSION} \
                         and maximum is 3.{MAX_VERSION}."
                    ),
                )),
                None => Err(CinderError::bad_request(format!(
                    "API Version String {ver} is of invalid format. Must be of format \
                     MajorNum.MinorNum."
                ))),
            };
        }
    }
    Ok(None)
}

/// The middleware of every `/v3` route.
pub async fn layer(mut req: Request, next: Next) -> Response {
    // `/v3/{project}/volumes/` and the like: Cinder's router matches no resource (an empty
    // id), so 404, where the assembled app trimmed the slash to reach the collection.
    let resource_path = req.uri().path().trim_matches('/').split('/').count() >= 3;
    let trimmed = req.extensions().get::<strata_api::TrimmedSlash>().is_some();
    let version = match requested(req.headers()) {
        Ok(v) => v.unwrap_or(Microversion(MIN_VERSION)),
        Err(e) => {
            let mut resp = e.into_response();
            echo(&mut resp, Microversion(MIN_VERSION));
            return resp;
        }
    };
    req.extensions_mut().insert(version);
    let mut resp = if trimmed && resource_path {
        CinderError::not_found("The resource could not be found.").into_response()
    } else {
        next.run(req).await
    };
    echo(&mut resp, version);
    resp
}

fn echo(resp: &mut Response, v: Microversion) {
    let h = resp.headers_mut();
    if let Ok(val) = HeaderValue::from_str(&format!("volume {}", v.string())) {
        h.insert(HEADER, val);
    }
    h.append(
        http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version"),
    );
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
    fn parses_the_volume_entry_only() {
        assert_eq!(requested(&http::HeaderMap::new()).unwrap(), None);
        assert_eq!(
            requested(&hdr("volume 3.27")).unwrap(),
            Some(Microversion(27))
        );
        assert_eq!(requested(&hdr("compute 2.5")).unwrap(), None);
        assert_eq!(
            requested(&hdr("compute 2.5, volume 3.1")).unwrap(),
            Some(Microversion(1))
        );
        assert_eq!(
            requested(&hdr("volume latest")).unwrap(),
            Some(Microversion(MAX_VERSION))
        );
        assert_eq!(
            requested(&hdr("volume 3.999")).unwrap_err().status,
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            requested(&hdr("volume 2.0")).unwrap_err().status,
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            requested(&hdr("volume 3.x")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
