//! Shared domain plumbing for every Strata crate: the one public error type, identifiers,
//! timestamps, the configuration model and the work queue controllers drive rows with.
//!
//! Nothing here knows about HTTP or SQL: services convert [`Error`] into their own wire
//! error bodies at the edge (Keystone, Nova and Neutron all spell errors differently), and the
//! store converts database failures into it.

pub mod config;
pub mod error;
pub mod ids;
pub mod time;
pub mod workqueue;

pub use error::{Error, Result};
