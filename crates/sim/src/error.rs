//! Why a fleet could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the simulator state {}", path.display())]
    StateFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("listening on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("making the BMC TLS certificates")]
    Certificate(#[source] rcgen::Error),
    #[error("loading the BMC TLS certificate")]
    Tls(#[source] tokio_rustls::rustls::Error),
    #[error("serving IPMI on udp {addr}")]
    Ipmi {
        addr: SocketAddr,
        #[source]
        source: strata_ipmi::IpmiError,
    },
    #[error("invalid fleet options: {0}")]
    Options(String),
}
