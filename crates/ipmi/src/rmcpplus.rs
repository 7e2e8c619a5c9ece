//! RMCP+ session set-up (IPMI 2.0 §13.17–13.23: Open Session Request/Response, RAKP messages
//! 1–4) and the protected framing of an active session (§13.8: the authenticated and
//! encrypted bits, AuthCode trailer).

use crate::crypto::{self, SessionKeys};
use crate::wire::{self, WireError, WireResult, V2};

/// RMCP+ and RAKP message status codes (table 13-15).
pub(crate) mod status {
    pub(crate) const OK: u8 = 0x00;
    pub(crate) const INSUFFICIENT_RESOURCES: u8 = 0x01;
    pub(crate) const INVALID_SESSION_ID: u8 = 0x02;
    pub(crate) const INVALID_ROLE: u8 = 0x09;
    pub(crate) const UNAUTHORIZED_ROLE: u8 = 0x0A;
    pub(crate) const INVALID_NAME_LENGTH: u8 = 0x0C;
    pub(crate) const UNAUTHORIZED_NAME: u8 = 0x0D;
    pub(crate) const INVALID_INTEGRITY_CHECK_VALUE: u8 = 0x0F;
    pub(crate) const NO_CIPHER_SUITE_MATCH: u8 = 0x11;
}

pub(crate) fn status_name(code: u8) -> &'static str {
    match code {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0A => "unauthorized role or privilege level requested",
        0x0B => "insufficient resources to create a session at the requested role",
        0x0C => "invalid name length",
        0x0D => "unauthorized name",
        0x0E => "unauthorized GUID",
        0x0F => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

/// The RAKP 1 role byte's "name-only lookup" bit: look the user up by name alone, not by name
/// and privilege (what ipmitool sends by default).
pub(crate) const NAME_ONLY_LOOKUP: u8 = 0x10;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn need(payload: &[u8], len: usize, what: &'static str) -> WireResult<()> {
    if payload.len() < len {
        Err(WireError(what))
    } else {
        Ok(())
    }
}

/// The authentication, integrity and confidentiality payloads (table 13-9), 8 bytes each:
/// type (0, 1, 2), 2 reserved, length 8, algorithm, 3 reserved.
fn algorithm_payloads(out: &mut Vec<u8>, (auth, integrity, conf): (u8, u8, u8)) {
    for (kind, algorithm) in [(0x00, auth), (0x01, integrity), (0x02, conf)] {
        out.extend_from_slice(&[kind, 0, 0, 0x08, algorithm, 0, 0, 0]);
    }
}

/// Open Session Request (table 13-9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpenSessionRequest {
    pub tag: u8,
    /// Requested maximum privilege (0: the highest the proposed algorithms allow).
    pub max_privilege: u8,
    pub console_session_id: u32,
    /// (authentication, integrity, confidentiality) algorithms proposed.
    pub algorithms: (u8, u8, u8),
}

impl OpenSessionRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.max_privilege, 0, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        algorithm_payloads(&mut out, self.algorithms);
        out
    }

    pub fn decode(p: &[u8]) -> WireResult<OpenSessionRequest> {
        need(p, 32, "short Open Session Request")?;
        Ok(OpenSessionRequest {
            tag: p[0],
            max_privilege: p[1] & 0x0F,
            console_session_id: le32(p, 4),
            algorithms: (p[12] & 0x3F, p[20] & 0x3F, p[28] & 0x3F),
        })
    }
}

/// Open Session Response (table 13-10). On an error status only tag, status and the console's
/// session ID are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpenSessionResponse {
    pub tag: u8,
    pub status: u8,
    pub max_privilege: u8,
    pub console_session_id: u32,
    pub bmc_session_id: u32,
    pub algorithms: (u8, u8, u8),
}

impl OpenSessionResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.status, self.max_privilege, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        if self.status != status::OK {
            return out;
        }
        out.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        algorithm_payloads(&mut out, self.algorithms);
        out
    }

    pub fn decode(p: &[u8]) -> WireResult<OpenSessionResponse> {
        need(p, 2, "short Open Session Response")?;
        if p[1] != status::OK {
            return Ok(OpenSessionResponse {
                tag: p[0],
                status: p[1],
                max_privilege: 0,
                console_session_id: if p.len() >= 8 { le32(p, 4) } else { 0 },
                bmc_session_id: 0,
                algorithms: (0, 0, 0),
            });
        }
        need(p, 36, "short Open Session Response")?;
        Ok(OpenSessionResponse {
            tag: p[0],
            status: p[1],
            max_privilege: p[2] & 0x0F,
            console_session_id: le32(p, 4),
            bmc_session_id: le32(p, 8),
            algorithms: (p[16] & 0x3F, p[24] & 0x3F, p[32] & 0x3F),
        })
    }
}

/// RAKP Message 1 (table 13-11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rakp1 {
    pub tag: u8,
    pub bmc_session_id: u32,
    pub console_random: [u8; 16],
    /// Requested maximum privilege (bits 3:0) and the name-only lookup bit (4).
    pub role: u8,
    pub username: Vec<u8>,
}

impl Rakp1 {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, 0, 0, 0];
        out.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        out.extend_from_slice(&self.console_random);
        out.extend_from_slice(&[self.role, 0, 0, self.username.len() as u8]);
        out.extend_from_slice(&self.username);
        out
    }

    pub fn decode(p: &[u8]) -> WireResult<Rakp1> {
        need(p, 28, "short RAKP 1")?;
        let name_len = p[27] as usize;
        let username = p
            .get(28..28 + name_len)
            .ok_or(WireError("RAKP 1 user name beyond the payload"))?;
        Ok(Rakp1 {
            tag: p[0],
            bmc_session_id: le32(p, 4),
            console_random: p[8..24].try_into().expect("16 bytes"),
            role: p[24],
            username: username.to_vec(),
        })
    }
}

/// RAKP Message 2 (table 13-12). On an error status the random number, GUID and auth code are
/// absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rakp2 {
    pub tag: u8,
    pub status: u8,
    pub console_session_id: u32,
    pub bmc_random: [u8; 16],
    pub bmc_guid: [u8; 16],
    pub auth_code: Vec<u8>,
}

impl Rakp2 {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.status, 0, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        if self.status == status::OK {
            out.extend_from_slice(&self.bmc_random);
            out.extend_from_slice(&self.bmc_guid);
            out.extend_from_slice(&self.auth_code);
        }
        out
    }

    pub fn decode(p: &[u8]) -> WireResult<Rakp2> {
        need(p, 2, "short RAKP 2")?;
        let mut msg = Rakp2 {
            tag: p[0],
            status: p[1],
            console_session_id: if p.len() >= 8 { le32(p, 4) } else { 0 },
            bmc_random: [0; 16],
            bmc_guid: [0; 16],
            auth_code: Vec::new(),
        };
        if msg.status == status::OK {
            need(p, 40, "short RAKP 2")?;
            msg.bmc_random.copy_from_slice(&p[8..24]);
            msg.bmc_guid.copy_from_slice(&p[24..40]);
            msg.auth_code = p[40..].to_vec();
        }
        Ok(msg)
    }
}

/// RAKP Message 3 (table 13-13) and RAKP Message 4 (table 13-14) share a shape: tag, status,
/// 2 reserved, a session ID (the BMC's in RAKP 3, the console's in RAKP 4), then an auth code
/// (RAKP 3) or integrity check value (RAKP 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rakp34 {
    pub tag: u8,
    pub status: u8,
    pub session_id: u32,
    pub code: Vec<u8>,
}

impl Rakp34 {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.status, 0, 0];
        out.extend_from_slice(&self.session_id.to_le_bytes());
        out.extend_from_slice(&self.code);
        out
    }

    pub fn decode(p: &[u8]) -> WireResult<Rakp34> {
        need(p, 8, "short RAKP 3/4")?;
        Ok(Rakp34 {
            tag: p[0],
            status: p[1],
            session_id: le32(p, 4),
            code: p[8..].to_vec(),
        })
    }
}

/// The payload type bits for "authenticated" and "encrypted".
const FLAG_ENCRYPTED: u8 = 0x80;
const FLAG_AUTHENTICATED: u8 = 0x40;
/// The trailer's next-header byte: always 0x07 (RMCP's IPMI class).
const NEXT_HEADER: u8 = 0x07;

/// A whole datagram carrying `payload` in an active session: encrypted (AES-CBC-128, fresh
/// random IV) and authenticated (integrity pad of 0xFF to a multiple of 4 bytes from the auth
/// type on, pad length, next header, AuthCode). Both our suites do both.
pub(crate) fn seal(
    keys: &SessionKeys,
    payload_type: u8,
    session_id: u32,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let encrypted = keys.encrypt(crypto::random::<16>(), payload);
    let mut out = Vec::with_capacity(16 + encrypted.len() + 4 + 2 + keys.suite.icv_len());
    wire::encode_v2_header(
        &mut out,
        payload_type,
        FLAG_ENCRYPTED | FLAG_AUTHENTICATED,
        session_id,
        seq,
        encrypted.len(),
    );
    out.extend_from_slice(&encrypted);
    // Covered: out[4..] (from the auth type) + pad + pad length + next header.
    let pad = (4 - (out.len() - 4 + 2) % 4) % 4;
    out.extend(std::iter::repeat_n(0xFF, pad));
    out.push(pad as u8);
    out.push(NEXT_HEADER);
    let code = keys.auth_code(&out[4..]);
    out.extend_from_slice(&code);
    out
}

/// Verifies and decrypts an RMCP+ packet of an active session. Packets not both authenticated
/// and encrypted are refused: the suites we negotiate require both.
pub(crate) fn open(keys: &SessionKeys, v2: &V2<'_>) -> WireResult<Vec<u8>> {
    if !v2.authenticated || !v2.encrypted {
        return Err(WireError("unprotected packet in a protected session"));
    }
    let code_len = keys.suite.icv_len();
    // Trailer: pad (0–3), pad length, next header, AuthCode.
    if v2.trailer.len() < code_len + 2 {
        return Err(WireError("short integrity trailer"));
    }
    let covered_len = v2.body.len() - code_len;
    let (covered, code) = v2.body.split_at(covered_len);
    if !crypto::ct_eq(&keys.auth_code(covered), code) {
        return Err(WireError("integrity check failed"));
    }
    let pad_len = covered[covered_len - 2] as usize;
    if covered[covered_len - 1] != NEXT_HEADER || v2.trailer.len() != pad_len + 2 + code_len {
        return Err(WireError("bad integrity pad"));
    }
    keys.decrypt(v2.payload)
        .ok_or(WireError("bad confidentiality pad"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CipherSuite;
    use crate::wire::{decode_v2, payload, split_rmcp};

    #[test]
    fn open_session_round_trip() {
        let rq = OpenSessionRequest {
            tag: 9,
            max_privilege: 4,
            console_session_id: 0xA0A1_A2A3,
            algorithms: CipherSuite::Sha256Aes.algorithms(),
        };
        let bytes = rq.encode();
        assert_eq!(bytes.len(), 32);
        assert_eq!(&bytes[8..16], [0, 0, 0, 8, 3, 0, 0, 0]);
        assert_eq!(OpenSessionRequest::decode(&bytes).unwrap(), rq);

        let rs = OpenSessionResponse {
            tag: 9,
            status: 0,
            max_privilege: 4,
            console_session_id: 0xA0A1_A2A3,
            bmc_session_id: 0x0102_0304,
            algorithms: CipherSuite::Sha1Aes.algorithms(),
        };
        assert_eq!(rs.encode().len(), 36);
        assert_eq!(OpenSessionResponse::decode(&rs.encode()).unwrap(), rs);
        let refused = OpenSessionResponse {
            status: status::NO_CIPHER_SUITE_MATCH,
            max_privilege: 0,
            bmc_session_id: 0,
            algorithms: (0, 0, 0),
            ..rs
        };
        assert_eq!(refused.encode().len(), 8);
        assert_eq!(
            OpenSessionResponse::decode(&refused.encode()).unwrap(),
            refused
        );
        assert!(OpenSessionRequest::decode(&bytes[..31]).is_err());
    }

    #[test]
    fn rakp_round_trips() {
        let r1 = Rakp1 {
            tag: 1,
            bmc_session_id: 7,
            console_random: [5; 16],
            role: 0x14,
            username: b"admin".to_vec(),
        };
        assert_eq!(Rakp1::decode(&r1.encode()).unwrap(), r1);
        let mut cut = r1.encode();
        cut.pop();
        assert!(
            Rakp1::decode(&cut).is_err(),
            "name length beyond the payload"
        );

        let r2 = Rakp2 {
            tag: 1,
            status: 0,
            console_session_id: 8,
            bmc_random: [6; 16],
            bmc_guid: [7; 16],
            auth_code: vec![1; 20],
        };
        assert_eq!(Rakp2::decode(&r2.encode()).unwrap(), r2);
        let r2_err = Rakp2 {
            status: status::UNAUTHORIZED_NAME,
            bmc_random: [0; 16],
            bmc_guid: [0; 16],
            auth_code: vec![],
            ..r2
        };
        assert_eq!(r2_err.encode().len(), 8);
        assert_eq!(Rakp2::decode(&r2_err.encode()).unwrap(), r2_err);

        let r3 = Rakp34 {
            tag: 1,
            status: 0,
            session_id: 9,
            code: vec![2; 32],
        };
        assert_eq!(Rakp34::decode(&r3.encode()).unwrap(), r3);
    }

    fn keys(suite: CipherSuite) -> SessionKeys {
        SessionKeys::derive(suite, &vec![0x5A; suite.digest_len()])
    }

    #[test]
    fn seal_open_round_trip_both_suites() {
        for suite in [CipherSuite::Sha1Aes, CipherSuite::Sha256Aes] {
            let k = keys(suite);
            for len in 0..24 {
                let body: Vec<u8> = (0..len).collect();
                let datagram = seal(&k, payload::IPMI, 0x1234, 77, &body);
                let (_, rmcp_body) = split_rmcp(&datagram).unwrap();
                // Covered bytes (auth type .. next header) are a multiple of 4.
                assert_eq!((rmcp_body.len() - suite.icv_len()) % 4, 0);
                let v2 = decode_v2(rmcp_body).unwrap();
                assert_eq!((v2.session_id, v2.seq, v2.payload_type), (0x1234, 77, 0));
                assert_eq!(open(&k, &v2).unwrap(), body);
            }
        }
    }

    #[test]
    fn open_rejects_tampering_and_wrong_keys() {
        let k = keys(CipherSuite::Sha1Aes);
        let datagram = seal(&k, payload::IPMI, 1, 2, b"chassis control");
        // Flip one bit anywhere covered by the AuthCode: header, payload, pad or the code.
        for at in [5, 9, 20, datagram.len() - 13, datagram.len() - 1] {
            let mut bad = datagram.clone();
            bad[at] ^= 0x01;
            let body = split_rmcp(&bad).unwrap().1;
            if let Ok(v2) = decode_v2(body) {
                assert!(open(&k, &v2).is_err(), "tampered byte {at} accepted");
            }
        }
        let v2 = decode_v2(split_rmcp(&datagram).unwrap().1).unwrap();
        assert_eq!(
            open(&keys(CipherSuite::Sha256Aes), &v2),
            Err(WireError("short integrity trailer"))
        );
        let other = SessionKeys::derive(CipherSuite::Sha1Aes, &[1; 20]);
        assert_eq!(open(&other, &v2), Err(WireError("integrity check failed")));
        // The same packet, claimed unauthenticated.
        let plain = wire::encode_v2_plain(payload::IPMI, b"x");
        let v2 = decode_v2(split_rmcp(&plain).unwrap().1).unwrap();
        assert!(open(&k, &v2).is_err());
    }
}
