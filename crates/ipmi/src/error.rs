//! The client's error type. The BMC driver maps these onto Strata's public errors and
//! operator-facing messages: `AuthFailed` becomes "wrong BMC credentials", `Timeout` and
//! `Unreachable` "BMC unreachable", `Completion` names what the BMC refused.

use std::net::SocketAddr;

use thiserror::Error;

use crate::types::Completion;
use crate::wire::WireError;

#[derive(Debug, Error)]
pub enum IpmiError {
    /// No answer within the timeout, after every retry.
    #[error("no answer from the BMC at {addr} ({attempts} attempts)")]
    Timeout { addr: SocketAddr, attempts: u32 },

    /// The network said no: nothing listens there (ICMP port unreachable), no route, etc.
    #[error("cannot reach the BMC at {addr}")]
    Unreachable {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The credentials were refused: a wrong password (the BMC's RAKP 2 auth code does not match
    /// ours), an unknown user name, or a user not allowed the requested privilege.
    #[error("BMC authentication failed: {0}")]
    AuthFailed(String),

    /// The BMC understood and refused the command.
    #[error("the BMC refused {command}: completion code {code}")]
    Completion {
        command: &'static str,
        code: Completion,
    },

    /// The BMC said something we cannot use: a malformed packet, an unexpected answer, no
    /// cipher suite in common, a session set-up refused for reasons other than credentials.
    #[error("IPMI protocol error: {0}")]
    Protocol(String),

    /// What the caller asked for cannot be sent (a user name over 16 bytes, a password over 20).
    #[error("invalid IPMI request: {0}")]
    InvalidArgument(String),

    /// The local socket could not be set up.
    #[error("IPMI socket error")]
    Io(#[source] std::io::Error),
}

impl IpmiError {
    /// The completion code, if the BMC refused a command.
    pub fn completion(&self) -> Option<Completion> {
        match self {
            IpmiError::Completion { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the BMC refused the credentials (as opposed to being unreachable or broken).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, IpmiError::AuthFailed(_))
    }
}

impl From<WireError> for IpmiError {
    fn from(e: WireError) -> Self {
        IpmiError::Protocol(e.0.to_string())
    }
}
