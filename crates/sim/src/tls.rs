//! HTTPS for the BMCs (`--tls`): a CA and one BMC certificate signed by it, made once per data
//! dir (`<data-dir>/tls/`), so that a Redfish client can verify the BMCs with `ca.pem` — the
//! way an operator hands a controller the CA of their BMCs — and a client without it is
//! refused, as by a real BMC with a private certificate.
//!
//! The certificate names 127.0.0.1, ::1, `localhost` and the fleet's bind address at the time
//! it is made. The CA's key is not kept: nothing is signed after the first start.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::error::SimError;

/// The fleet's TLS material.
pub struct FleetTls {
    /// The CA certificate (PEM) that verifies every BMC of the fleet.
    pub ca_path: PathBuf,
    pub config: Arc<ServerConfig>,
}

/// Loads the BMC certificate from `<data_dir>/tls/`, making it (and its CA) first if absent.
pub fn ensure(data_dir: &Path, bind: IpAddr) -> Result<FleetTls, SimError> {
    let dir = data_dir.join("tls");
    let ca_path = dir.join("ca.pem");
    let cert_path = dir.join("bmc.pem");
    let key_path = dir.join("bmc-key.pem");
    if !(ca_path.exists() && cert_path.exists() && key_path.exists()) {
        std::fs::create_dir_all(&dir).map_err(|source| SimError::Io {
            path: dir.clone(),
            source,
        })?;
        let made = generate(bind).map_err(SimError::Certificate)?;
        write_file(&ca_path, made.ca.as_bytes(), 0o644)?;
        write_file(&cert_path, made.cert.as_bytes(), 0o644)?;
        write_file(&key_path, made.key.as_bytes(), 0o600)?;
    }
    let pem_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls::pki_types::pem::Error| SimError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        }
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(pem_error(&cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(&cert_path))?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(pem_error(&key_path))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SimError::Tls)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(SimError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(FleetTls {
        ca_path,
        config: Arc::new(config),
    })
}

struct Made {
    ca: String,
    cert: String,
    key: String,
}

fn generate(bind: IpAddr) -> Result<Made, rcgen::Error> {
    let now = time::OffsetDateTime::now_utc();
    let validity = |p: &mut CertificateParams| {
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(3650);
    };
    let named = |cn: &str| {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Strata");
        dn.push(DnType::CommonName, cn);
        dn
    };

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = named("Strata simulated BMC CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut names = vec![
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "localhost".to_string(),
    ];
    if !names.contains(&bind.to_string()) && !bind.is_unspecified() {
        names.push(bind.to_string());
    }
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names)?;
    leaf.distinguished_name = named("Strata simulated BMC");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    validity(&mut leaf);
    let cert = leaf.signed_by(&key, &Issuer::new(ca, &ca_key))?;
    Ok(Made {
        ca: ca_cert.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), SimError> {
    let io = |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)
}
