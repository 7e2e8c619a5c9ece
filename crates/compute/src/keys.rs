//! Key material for keypairs: parsing imported SSH public keys and x509 certificates, the
//! fingerprints Nova shows for them, and server-side generation.
//!
//! Fingerprints are Nova's: for SSH keys the MD5 of the decoded key blob as colon-separated
//! hex (what `ssh-keygen -l -E md5` prints after `MD5:`), for x509 certificates the SHA-1 of
//! the DER encoding, also colon-separated. Nova generates 2048-bit RSA keys; Strata generates
//! Ed25519 keys instead (no RSA key generator is in the dependency tree; `ring` is, through
//! rustls), written in the OpenSSH private key format every SSH client reads; generated x509
//! keypairs are self-signed Ed25519 certificates with a PKCS#8 private key.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};
use ring::rand::SecureRandom;
use ring::signature::KeyPair;

/// SSH public key algorithms accepted on import (those `cryptography`'s
/// `load_ssh_public_key` reads).
const SSH_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Reads one SSH wire `string` (u32 length + bytes) from `buf` at `*at`.
fn read_string<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len_bytes = buf.get(*at..*at + 4)?;
    let len = u32::from_be_bytes(len_bytes.try_into().ok()?) as usize;
    let start = *at + 4;
    let out = buf.get(start..start.checked_add(len)?)?;
    *at = start + len;
    Some(out)
}

/// The decoded blob of an OpenSSH public key line (`<type> <base64> [comment]`), checked to be
/// a well-formed key of a known type; `None` when it is not one.
pub fn ssh_key_blob(line: &str) -> Option<Vec<u8>> {
    let mut parts = line.split_whitespace();
    let kind = parts.next()?;
    let data = parts.next()?;
    if !SSH_TYPES.contains(&kind) {
        return None;
    }
    let blob = B64.decode(data).ok()?;
    let mut at = 0;
    if read_string(&blob, &mut at)? != kind.as_bytes() {
        return None;
    }
    // The fields each algorithm carries after its name.
    let fields = match kind {
        "ssh-rsa" => 2,
        "ssh-dss" => 4,
        "ssh-ed25519" => 1,
        "sk-ssh-ed25519@openssh.com" => 2,
        "sk-ecdsa-sha2-nistp256@openssh.com" => 3,
        _ => 2, // ecdsa: curve name, point
    };
    let mut first = None;
    for _ in 0..fields {
        let f = read_string(&blob, &mut at)?;
        if f.is_empty() {
            return None;
        }
        first.get_or_insert(f);
    }
    if kind == "ssh-ed25519" && first.map(|f| f.len()) != Some(32) {
        return None;
    }
    if at != blob.len() {
        return None;
    }
    Some(blob)
}

/// Colon-separated lowercase hex (`aa:bb:…`).
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Nova's fingerprint of an SSH public key: MD5 of the key blob, colon hex.
pub fn ssh_fingerprint(line: &str) -> Option<String> {
    let blob = ssh_key_blob(line)?;
    Some(colon_hex(&Md5::digest(&blob)))
}

/// The DER of a PEM certificate (`-----BEGIN CERTIFICATE-----`), checked to be one DER
/// `SEQUENCE` spanning the whole body whose first element is also a `SEQUENCE`.
pub fn x509_der(pem: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)? + BEGIN.len();
    let end = pem[start..].find(END)? + start;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64.decode(b64).ok()?;
    let (tag, body) = der_element(&der)?;
    if tag != 0x30 || body.0 + body.1 != der.len() {
        return None;
    }
    let inner = &der[body.0..];
    let (tag, _) = der_element(inner)?;
    (tag == 0x30).then_some(der)
}

/// The tag and `(content offset, content length)` of the DER element at the start of `buf`.
fn der_element(buf: &[u8]) -> Option<(u8, (usize, usize))> {
    let tag = *buf.first()?;
    let first = *buf.get(1)? as usize;
    let (len, off) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    (off + len <= buf.len()).then_some((tag, (off, len)))
}

/// Nova's fingerprint of an x509 certificate: SHA-1 of the DER, colon hex.
pub fn x509_fingerprint(pem: &str) -> Option<String> {
    let der = x509_der(pem)?;
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    Some(colon_hex(d.as_ref()))
}

/// A generated keypair.
pub struct Generated {
    /// The private key in OpenSSH format (PEM-armoured).
    pub private_key: String,
    /// The public key line, `ssh-ed25519 <base64> <comment>`.
    pub public_key: String,
    /// Its fingerprint (MD5, colon hex).
    pub fingerprint: String,
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Generates an Ed25519 keypair from the system's CSPRNG; `comment` ends the public key line
/// (Nova writes `Generated-by-Nova`).
pub fn generate_ed25519(comment: &str) -> Result<Generated, ring::error::Unspecified> {
    let rng = ring::rand::SystemRandom::new();
    let mut seed = [0u8; 32];
    rng.fill(&mut seed)?;
    let mut check = [0u8; 4];
    rng.fill(&mut check)?;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| ring::error::Unspecified)?;
    let public = pair.public_key().as_ref().to_vec();
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-ed25519");
    put_string(&mut blob, &public);

    // openssh-key-v1, unencrypted.
    let mut private = Vec::new();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, &public);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(&public);
    put_string(&mut private, &secret);
    put_string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut file = b"openssh-key-v1\0".to_vec();
    put_string(&mut file, b"none");
    put_string(&mut file, b"none");
    put_string(&mut file, b"");
    file.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut file, &blob);
    put_string(&mut file, &private);
    let encoded = B64.encode(&file);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in encoded.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Ok(Generated {
        private_key: pem,
        public_key: format!("ssh-ed25519 {} {comment}", B64.encode(&blob)),
        fingerprint: colon_hex(&Md5::digest(&blob)),
    })
}

/// One DER element: tag, length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER time for microseconds since the epoch: `UTCTime` before 2050, else
/// `GeneralizedTime` (RFC 5280 §4.1.2.5).
fn der_time(us: i64) -> Vec<u8> {
    // `YYYY-MM-DDTHH:MM:SS`
    let iso = strata_core::time::iso_seconds(us);
    let digits: String = iso.chars().filter(|c| c.is_ascii_digit()).collect();
    let year: u32 = digits[..4].parse().unwrap_or(2000);
    if year < 2050 {
        tlv(0x17, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        tlv(0x18, format!("{digits}Z").as_bytes())
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Generates a self-signed x509 certificate for `common_name`, valid ten years, over a new
/// Ed25519 key (Nova makes an RSA one for WinRM; any x509 consumer reads Ed25519). Returns
/// the PKCS#8 private key and the certificate, PEM-armoured, with Nova's fingerprint.
pub fn generate_x509(common_name: &str) -> Result<Generated, ring::error::Unspecified> {
    const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
    let rng = ring::rand::SystemRandom::new();
    let mut seed = [0u8; 32];
    rng.fill(&mut seed)?;
    let mut serial = [0u8; 16];
    rng.fill(&mut serial)?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| ring::error::Unspecified)?;
    let algorithm = tlv(0x30, ED25519_OID);
    let cn = [
        tlv(0x06, &[0x55, 0x04, 0x03]),
        tlv(0x0c, common_name.as_bytes()),
    ]
    .concat();
    let name = tlv(0x30, &tlv(0x31, &tlv(0x30, &cn)));
    let now = strata_core::time::now_micros();
    let ten_years = 10 * 365 * 86_400 * 1_000_000i64;
    let validity = tlv(0x30, &[der_time(now), der_time(now + ten_years)].concat());
    let mut key_bits = vec![0u8];
    key_bits.extend_from_slice(pair.public_key().as_ref());
    let spki = tlv(0x30, &[algorithm.clone(), tlv(0x03, &key_bits)].concat());
    let tbs = tlv(
        0x30,
        &[
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &serial),
            algorithm.clone(),
            name.clone(),
            validity,
            name,
            spki,
        ]
        .concat(),
    );
    let mut sig_bits = vec![0u8];
    sig_bits.extend_from_slice(pair.sign(&tbs).as_ref());
    let cert = tlv(
        0x30,
        &[tbs, algorithm.clone(), tlv(0x03, &sig_bits)].concat(),
    );
    let pkcs8 = tlv(
        0x30,
        &[tlv(0x02, &[0]), algorithm, tlv(0x04, &tlv(0x04, &seed))].concat(),
    );
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    Ok(Generated {
        private_key: pem("PRIVATE KEY", &pkcs8),
        public_key: pem("CERTIFICATE", &cert),
        fingerprint: colon_hex(d.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Public keys and their fingerprints as `ssh-keygen -l -E md5 -f key.pub` printed them.
    const KEY: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAIEzik8WjE6D4AOgzvdz57vimSZYNb9xu2KMz0TkxBOED test@strata";
    const KEY_MD5: &str = "97:7c:94:bd:5a:56:f5:eb:cd:fe:6f:f3:f8:73:b8:9e";
    const RSA: &str =
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDTJn4Ek6+4wwDcS05kTlYkGmr4oAZ+jviG28mHK\
        0P8pZuOD/J2hmdfMeBZwKGdLI2m3cFWGTWQz3v4ULv5XlsswM/5Tb0vNhwdL6SqXwBJhoyGX8hBGaBiF01K5aT/qSA\
        HFUgThLfPJ8EHdysT+ecUoLOl1dLMNw4nI7gfl6yV1Q== rsa@strata";
    const RSA_MD5: &str = "5d:54:fc:28:a2:c5:c4:74:62:b3:6b:6b:07:94:c0:9b";
    /// A self-signed certificate and its SHA-1 as `openssl x509 -fingerprint -sha1` printed it.
    pub const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUGCdzNHBd3YifqUxTzL6FLfytz7UwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGc3RyYXRhMB4XDTI2MTEyMTIxMTIyNFoXDTM2MTExODIxMTIy
NFowETEPMA0GA1UEAwwGc3RyYXRhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
0ZMhAD54V1o8mVdzJUPVUoQK6L6VAv1TJdYOX6TMbAfKlfqHWkfRuOMMgd2L+kB/
f1XhmsneVH4PBLfNcOgYtqNTMFEwHQYDVR0OBBYEFMl6FDNXcxQmcCjQgQ/z2t0j
hpJ+MB8GA1UdIwQYMBaAFMl6FDNXcxQmcCjQgQ/z2t0jhpJ+MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgIugIX7mSovIrqADE6eMlacViaOw8qnAy
aRbuWteoZt4CIQDwCjF2v+h27UKiUUJhweGAEFynzqjDvZYjYUNL8UAUUw==
-----END CERTIFICATE-----
";
    const CERT_SHA1: &str = "61:00:80:65:4f:7d:89:45:ac:4e:16:62:80:0c:30:9a:d3:66:43:16";

    #[test]
    fn parses_and_fingerprints_ssh_keys() {
        assert_eq!(ssh_fingerprint(KEY).unwrap(), KEY_MD5);
        assert_eq!(ssh_fingerprint(RSA).unwrap(), RSA_MD5);
        assert!(ssh_fingerprint("ssh-rsa").is_none());
        assert!(ssh_fingerprint("ssh-rsa AAAA").is_none());
        assert!(ssh_fingerprint("not a key").is_none());
        // A blob whose embedded type differs from the declared one.
        let wrong = KEY.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(ssh_fingerprint(&wrong).is_none());
    }

    #[test]
    fn generated_keys_read_back() {
        let g = generate_ed25519("Generated-by-Nova").unwrap();
        assert!(g
            .private_key
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(g.public_key.ends_with(" Generated-by-Nova"));
        assert_eq!(ssh_fingerprint(&g.public_key).unwrap(), g.fingerprint);
        // ssh-keygen reads the private key back to the same public key, where installed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        std::fs::write(&path, &g.private_key).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
        std::fs::set_permissions(&path, perms).unwrap();
        if let Ok(out) = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let derived = String::from_utf8(out.stdout).unwrap();
            let mine: Vec<&str> = g.public_key.split_whitespace().take(2).collect();
            let theirs: Vec<&str> = derived.split_whitespace().take(2).collect();
            assert_eq!(mine, theirs);
        }
        let other = generate_ed25519("x").unwrap();
        assert_ne!(g.fingerprint, other.fingerprint);
    }

    #[test]
    fn generated_certificates_read_back() {
        let g = generate_x509("some-user").unwrap();
        assert_eq!(x509_fingerprint(&g.public_key).unwrap(), g.fingerprint);
        assert!(g.private_key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // openssl parses both and verifies the self-signature, where installed.
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &g.public_key).unwrap();
        std::fs::write(&key, &g.private_key).unwrap();
        let run =
            |args: &[&std::ffi::OsStr]| std::process::Command::new("openssl").args(args).output();
        if let Ok(out) = run(&[
            "x509".as_ref(),
            "-noout".as_ref(),
            "-subject".as_ref(),
            "-in".as_ref(),
            cert.as_os_str(),
        ]) {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("some-user"));
            let out = run(&[
                "verify".as_ref(),
                "-CAfile".as_ref(),
                cert.as_os_str(),
                cert.as_os_str(),
            ])
            .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = run(&[
                "pkey".as_ref(),
                "-noout".as_ref(),
                "-in".as_ref(),
                key.as_os_str(),
            ])
            .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn x509_needs_a_certificate() {
        assert!(x509_fingerprint("junk").is_none());
        // A SEQUENCE claiming more bytes than there are.
        let pem = "-----BEGIN CERTIFICATE-----\nMAQwAQA=\n-----END CERTIFICATE-----\n";
        assert!(x509_fingerprint(pem).is_none());
        let ok = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            B64.encode([0x30, 0x02, 0x30, 0x00])
        );
        assert_eq!(x509_fingerprint(CERT).unwrap(), CERT_SHA1);
        assert!(x509_fingerprint(&CERT.replace("MIIBdzCC", "MIIBdzCD")).is_none());
        let fp = x509_fingerprint(&ok).unwrap();
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &[0x30, 0x02, 0x30, 0x00],
        );
        assert_eq!(fp, colon_hex(d.as_ref()));
    }
}
