//! HTTP plumbing shared by every service.
//!
//! Every service is an axum `Router` mounted under its path prefix on the one listener.
//! [`assemble`] wraps them all with what every response needs: an `x-openstack-request-id`, an
//! access-log line, Prometheus metrics per route and status, and the request body limit. What
//! differs per service (error bodies, auth failures) stays in the service: this crate hands
//! services the pieces ([`parse_json`], [`AuthContext`], [`TokenValidator`],
//! [`access_rules_allow`]) and lets each render its own errors.

mod access_rules;
mod auth;
mod http;
pub mod inproc;
mod json;
pub mod metrics;

pub use access_rules::{access_rules_allow, path_matches, AccessRule};
pub use auth::{
    authenticate, unauthorized_response, AuthContext, AuthFailure, Scope, TokenValidator,
    ValidateFuture, AUTH_TOKEN_HEADER,
};
pub use http::{assemble, RequestId, ServiceRoute, TrimmedSlash, REQUEST_ID_HEADER};
pub use inproc::{in_process_caller, InProcessCaller};
pub use json::{parse_json, BodyError};
