//! IPMI 2.0 over LAN — RMCP+, what ipmitool calls "lanplus" — both ends of it: a client, with
//! which Strata's `ipmi` BMC driver manages real servers, and a server, with which the hardware
//! simulator gives each simulated host a BMC that real tools can talk to.
//!
//! # Why native, not ipmitool
//!
//! Ironic forks `ipmitool` for every command. Its own documentation names those forks as what
//! limits how many nodes a conductor can manage, and Strata benchmarks a power-state sync loop
//! over 10,000 hosts. Speaking the protocol ourselves gives:
//! - one process and no fork per command: a session is a struct and a UDP socket, kept across
//!   commands instead of being re-negotiated (four round trips) by every invocation;
//! - timeouts and retransmissions under our control, and errors as types (`IpmiError`) rather
//!   than scraped stderr: a wrong password is `AuthFailed`, so the controller can say "wrong
//!   BMC credentials" and not "BMC unreachable";
//! - the same protocol code for the simulator's BMCs, so that the driver's tests exercise the
//!   real wire format.
//!
//! The independent implementations keep us honest: `tests/ipmitool.rs` runs the real ipmitool
//! against our server, `tests/virtualbmc.rs` our client against VirtualBMC (pyghmi's BMC in
//! front of a libvirt domain). Everything here is written from the IPMI v2.0 rev 1.1
//! specification (§13 "IPMI LAN interface", §22 "IPMI messaging support commands", §28
//! "chassis device commands"); see docs/baremetal-ipmi.md.
//!
//! # Shape
//!
//! Outside in: `wire` (RMCP, ASF ping, the v1.5 and v2.0 session wrappers, the IPMI message
//! and its checksums), `rmcpplus` (Open Session, RAKP 1–4, sealing and opening protected
//! packets), `crypto` (cipher suites 3 and 17, RAKP auth codes, SIK/K1/K2, AES-CBC-128 and its
//! pad, the sequence-number window), `commands` (the data of each command, shared by both
//! ends). Then the two ends: `server` (a sans-I/O engine behind a tokio task, the
//! `BmcBackend` trait, `fake::FakeBmc`) and `client`; and `interop`, how tests here and in the
//! simulator run the real ipmitool.
//!
//! Scope: cipher suites 3 and 17 only (suite 0, "no security", is refused); one user per
//! server; no IPMI v1.5 sessions, no Serial-over-LAN, no BMC key (Kg) — TODO-security: Kg
//! support, for BMCs configured with one.

mod client;
mod commands;
mod crypto;
mod error;
pub mod fake;
pub mod interop;
mod rmcpplus;
mod server;
mod types;
mod wire;

#[cfg(test)]
mod loopback_tests;

pub use client::{ClientOptions, IpmiClient};
pub use crypto::CipherSuite;
pub use error::IpmiError;
pub use fake::{FakeBmc, FakeBmcState};
pub use server::{BmcBackend, Credentials, IpmiServer, ServerOptions};
pub use types::{BootDevice, BootSource, ChassisAction, Completion, DeviceId, Privilege};
pub use wire::{asf_presence_ping, is_asf_pong};
