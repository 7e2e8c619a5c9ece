//! Framing, outermost first: the RMCP header (ASF spec; IPMI 2.0 §13.1), ASF presence
//! ping/pong, the IPMI v1.5 session wrapper (§13.6, used here only outside a session), the
//! IPMI v2.0 / RMCP+ session header (§13.8, table 13-8) without its security (see `session`),
//! and the IPMI LAN message inside (§13.8, "IPMI LAN message format": addresses, netFn/LUN,
//! sequence, command, data, two checksums).

use thiserror::Error;

pub(crate) const RMCP_VERSION: u8 = 0x06;
/// "No RMCP ACK": IPMI never uses RMCP-level acknowledgements.
pub(crate) const RMCP_SEQ_NO_ACK: u8 = 0xFF;
pub(crate) const RMCP_CLASS_ASF: u8 = 0x06;
pub(crate) const RMCP_CLASS_IPMI: u8 = 0x07;
pub(crate) const RMCP_IPMI_HEADER: [u8; 4] = [RMCP_VERSION, 0, RMCP_SEQ_NO_ACK, RMCP_CLASS_IPMI];

/// The ASF IANA enterprise number (4542), big-endian as ASF writes it.
const ASF_IANA: [u8; 4] = [0x00, 0x00, 0x11, 0xBE];
const ASF_PRESENCE_PING: u8 = 0x80;
const ASF_PRESENCE_PONG: u8 = 0x40;

/// Session header "authentication type / format": 0x06 marks an RMCP+ (v2.0) session header.
pub(crate) const AUTH_TYPE_RMCP_PLUS: u8 = 0x06;
pub(crate) const AUTH_TYPE_NONE: u8 = 0x00;

/// The BMC's slave address and the remote console's software ID (§13.8 "rqAddr").
pub(crate) const BMC_SLAVE_ADDR: u8 = 0x20;
pub(crate) const REMOTE_CONSOLE_SWID: u8 = 0x81;

pub(crate) mod netfn {
    pub(crate) const CHASSIS: u8 = 0x00;
    pub(crate) const APP: u8 = 0x06;
}

pub(crate) mod cmd {
    // App
    pub(crate) const GET_DEVICE_ID: u8 = 0x01;
    pub(crate) const GET_CHANNEL_AUTH_CAPABILITIES: u8 = 0x38;
    pub(crate) const SET_SESSION_PRIVILEGE_LEVEL: u8 = 0x3B;
    pub(crate) const CLOSE_SESSION: u8 = 0x3C;
    pub(crate) const GET_CHANNEL_CIPHER_SUITES: u8 = 0x54;
    // Chassis
    pub(crate) const GET_CHASSIS_STATUS: u8 = 0x01;
    pub(crate) const CHASSIS_CONTROL: u8 = 0x02;
    pub(crate) const SET_SYSTEM_BOOT_OPTIONS: u8 = 0x08;
    pub(crate) const GET_SYSTEM_BOOT_OPTIONS: u8 = 0x09;
}

/// RMCP+ payload types (table 13-16).
pub(crate) mod payload {
    pub(crate) const IPMI: u8 = 0x00;
    pub(crate) const OPEN_SESSION_REQUEST: u8 = 0x10;
    pub(crate) const OPEN_SESSION_RESPONSE: u8 = 0x11;
    pub(crate) const RAKP1: u8 = 0x12;
    pub(crate) const RAKP2: u8 = 0x13;
    pub(crate) const RAKP3: u8 = 0x14;
    pub(crate) const RAKP4: u8 = 0x15;
}

/// A datagram that is not what it claims to be. Servers drop these; clients report them as
/// `IpmiError::Protocol`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed IPMI packet: {0}")]
pub struct WireError(pub(crate) &'static str);

pub(crate) type WireResult<T> = Result<T, WireError>;

/// The class and body (everything after the 4-byte header) of an RMCP datagram.
pub(crate) fn split_rmcp(datagram: &[u8]) -> WireResult<(u8, &[u8])> {
    if datagram.len() < 4 {
        return Err(WireError("shorter than an RMCP header"));
    }
    if datagram[0] != RMCP_VERSION {
        return Err(WireError("not RMCP version 1.0"));
    }
    // Bit 7 of the class is "RMCP ACK": acknowledgements carry no message.
    let class = datagram[3];
    if class & 0x80 != 0 {
        return Err(WireError("RMCP ACK"));
    }
    Ok((class & 0x1F, &datagram[4..]))
}

/// If `body` (an ASF-class RMCP body) is a presence ping, the full pong datagram to send back.
pub(crate) fn asf_pong_for(body: &[u8]) -> Option<Vec<u8>> {
    // IANA (4), message type, message tag, reserved, data length.
    if body.len() < 8 || body[..4] != ASF_IANA || body[4] != ASF_PRESENCE_PING {
        return None;
    }
    let tag = body[5];
    let mut out = vec![RMCP_VERSION, 0, RMCP_SEQ_NO_ACK, RMCP_CLASS_ASF];
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[ASF_PRESENCE_PONG, tag, 0x00, 0x10]);
    // Pong data: IANA of the OEM (ASF's: none), OEM-defined (0), supported entities
    // (bit 7: IPMI supported; ASF version 1.0), supported interactions (none), reserved.
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&[0x81, 0x00]);
    out.extend_from_slice(&[0; 6]);
    Some(out)
}

/// An ASF presence ping (as `ipmiping`/`rmcpping` send), for tests.
pub fn asf_presence_ping(tag: u8) -> Vec<u8> {
    let mut out = vec![RMCP_VERSION, 0, RMCP_SEQ_NO_ACK, RMCP_CLASS_ASF];
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[ASF_PRESENCE_PING, tag, 0x00, 0x00]);
    out
}

/// Whether `datagram` is an ASF presence pong answering `tag` that announces IPMI support.
pub fn is_asf_pong(datagram: &[u8], tag: u8) -> bool {
    matches!(split_rmcp(datagram), Ok((RMCP_CLASS_ASF, body))
        if body.len() >= 24 && body[..4] == ASF_IANA && body[4] == ASF_PRESENCE_PONG
            && body[5] == tag && body[16] & 0x80 != 0)
}

/// An IPMI v1.5 session wrapper (table 13-4), decoded.
pub(crate) struct V15<'a> {
    pub auth_type: u8,
    pub session_id: u32,
    pub message: &'a [u8],
}

/// Decodes the v1.5 wrapper of an IPMI-class RMCP body whose first byte is not 0x06.
pub(crate) fn decode_v15(body: &[u8]) -> WireResult<V15<'_>> {
    // auth type, sequence (4), session id (4), [auth code (16)], length, message.
    if body.len() < 10 {
        return Err(WireError("short v1.5 session header"));
    }
    let auth_type = body[0];
    let session_id = u32::from_le_bytes([body[5], body[6], body[7], body[8]]);
    let mut at = 9;
    if auth_type != AUTH_TYPE_NONE {
        at += 16;
    }
    let len = *body.get(at).ok_or(WireError("short v1.5 session header"))? as usize;
    let message = body
        .get(at + 1..at + 1 + len)
        .ok_or(WireError("v1.5 message length beyond the datagram"))?;
    Ok(V15 {
        auth_type,
        session_id,
        message,
    })
}

/// A whole datagram: RMCP header + v1.5 wrapper without a session (auth type none, sequence 0,
/// session 0) + `message`.
pub(crate) fn encode_v15(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + message.len());
    out.extend_from_slice(&RMCP_IPMI_HEADER);
    out.push(AUTH_TYPE_NONE);
    out.extend_from_slice(&[0; 8]);
    out.push(message.len() as u8);
    out.extend_from_slice(message);
    out
}

/// An RMCP+ session header (table 13-8) and the bytes around its payload, unverified.
pub(crate) struct V2<'a> {
    /// Bits 5:0 of the payload type byte.
    pub payload_type: u8,
    pub encrypted: bool,
    pub authenticated: bool,
    pub session_id: u32,
    pub seq: u32,
    /// The payload as sent (IV + ciphertext when encrypted).
    pub payload: &'a [u8],
    /// Everything after the payload: integrity pad, pad length, next header, AuthCode.
    pub trailer: &'a [u8],
    /// The bytes an AuthCode covers, from the auth type byte up to (not including) the AuthCode:
    /// with `trailer` split by the caller, who knows the AuthCode's length.
    pub body: &'a [u8],
}

pub(crate) const V2_HEADER_LEN: usize = 12;

/// Decodes the RMCP+ header of an IPMI-class RMCP body whose first byte is 0x06.
pub(crate) fn decode_v2(body: &[u8]) -> WireResult<V2<'_>> {
    if body.len() < V2_HEADER_LEN {
        return Err(WireError("short RMCP+ session header"));
    }
    if body[0] != AUTH_TYPE_RMCP_PLUS {
        return Err(WireError("not an RMCP+ session header"));
    }
    let ptype = body[1];
    if ptype & 0x3F == 0x02 {
        return Err(WireError("OEM explicit payloads are not supported"));
    }
    let le32 = |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    let len = u16::from_le_bytes([body[10], body[11]]) as usize;
    let payload = body
        .get(V2_HEADER_LEN..V2_HEADER_LEN + len)
        .ok_or(WireError("RMCP+ payload length beyond the datagram"))?;
    Ok(V2 {
        payload_type: ptype & 0x3F,
        encrypted: ptype & 0x80 != 0,
        authenticated: ptype & 0x40 != 0,
        session_id: le32(2),
        seq: le32(6),
        payload,
        trailer: &body[V2_HEADER_LEN + len..],
        body,
    })
}

/// The RMCP header and RMCP+ session header, without security bits set or trailer.
pub(crate) fn encode_v2_header(
    out: &mut Vec<u8>,
    payload_type: u8,
    flags: u8,
    session_id: u32,
    seq: u32,
    payload_len: usize,
) {
    out.extend_from_slice(&RMCP_IPMI_HEADER);
    out.push(AUTH_TYPE_RMCP_PLUS);
    out.push(payload_type | flags);
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(payload_len as u16).to_le_bytes());
}

/// A whole datagram: an unauthenticated, unencrypted RMCP+ packet outside any session (session
/// ID and sequence 0), as the session set-up messages and pre-session commands travel.
pub(crate) fn encode_v2_plain(payload_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    encode_v2_header(&mut out, payload_type, 0, 0, 0, payload.len());
    out.extend_from_slice(payload);
    out
}

/// The 8-bit two's-complement checksum the LAN message format uses: bytes + checksum ≡ 0.
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI LAN message. Requests and responses share the layout: `dst`/`src` are rsAddr/rqAddr
/// in a request and rqAddr/rsAddr in a response; a response's data starts with its completion
/// code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub dst_addr: u8,
    pub netfn: u8,
    pub dst_lun: u8,
    pub src_addr: u8,
    /// The 6-bit requester's sequence number: a response echoes its request's.
    pub rq_seq: u8,
    pub src_lun: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
}

impl Message {
    /// A request from the remote console to the BMC.
    pub fn request(netfn: u8, cmd: u8, rq_seq: u8, data: Vec<u8>) -> Message {
        Message {
            dst_addr: BMC_SLAVE_ADDR,
            netfn,
            dst_lun: 0,
            src_addr: REMOTE_CONSOLE_SWID,
            rq_seq: rq_seq & 0x3F,
            src_lun: 0,
            cmd,
            data,
        }
    }

    /// The response to this request: response netFn (odd), addresses and LUNs swapped, the
    /// completion code first.
    pub fn response(&self, code: u8, data: &[u8]) -> Message {
        let mut body = Vec::with_capacity(1 + data.len());
        body.push(code);
        body.extend_from_slice(data);
        Message {
            dst_addr: self.src_addr,
            netfn: self.netfn | 1,
            dst_lun: self.src_lun,
            src_addr: self.dst_addr,
            rq_seq: self.rq_seq,
            src_lun: self.dst_lun,
            cmd: self.cmd,
            data: body,
        }
    }

    pub fn is_response(&self) -> bool {
        self.netfn & 1 == 1
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(7 + self.data.len());
        out.push(self.dst_addr);
        out.push(self.netfn << 2 | (self.dst_lun & 3));
        out.push(checksum(&out[..2]));
        out.push(self.src_addr);
        out.push(self.rq_seq << 2 | (self.src_lun & 3));
        out.push(self.cmd);
        out.extend_from_slice(&self.data);
        let sum = checksum(&out[3..]);
        out.push(sum);
        out
    }

    pub fn decode(bytes: &[u8]) -> WireResult<Message> {
        if bytes.len() < 7 {
            return Err(WireError("IPMI message shorter than its header"));
        }
        if checksum(&bytes[..2]) != bytes[2] {
            return Err(WireError("IPMI header checksum"));
        }
        let last = bytes.len() - 1;
        if checksum(&bytes[3..last]) != bytes[last] {
            return Err(WireError("IPMI data checksum"));
        }
        Ok(Message {
            dst_addr: bytes[0],
            netfn: bytes[1] >> 2,
            dst_lun: bytes[1] & 3,
            src_addr: bytes[3],
            rq_seq: bytes[4] >> 2,
            src_lun: bytes[4] & 3,
            cmd: bytes[5],
            data: bytes[6..last].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip_and_checksums() {
        let rq = Message::request(
            netfn::APP,
            cmd::GET_CHANNEL_AUTH_CAPABILITIES,
            5,
            vec![0x8E, 4],
        );
        let bytes = rq.encode();
        // rsAddr, netFn 6 << 2, checksum1, rqAddr 0x81, seq 5 << 2, cmd, data, checksum2.
        assert_eq!(
            bytes,
            [0x20, 0x18, 0xC8, 0x81, 0x14, 0x38, 0x8E, 0x04, 0xA1]
        );
        assert_eq!(Message::decode(&bytes).unwrap(), rq);

        let rs = rq.response(0, &[1, 2]);
        assert!(rs.is_response());
        assert_eq!((rs.dst_addr, rs.src_addr, rs.netfn), (0x81, 0x20, 0x07));
        assert_eq!(Message::decode(&rs.encode()).unwrap(), rs);

        let mut bad = bytes.clone();
        bad[6] ^= 1;
        assert_eq!(Message::decode(&bad), Err(WireError("IPMI data checksum")));
        bad = bytes.clone();
        bad[1] ^= 4;
        assert_eq!(
            Message::decode(&bad),
            Err(WireError("IPMI header checksum"))
        );
        assert!(Message::decode(&bytes[..5]).is_err());
    }

    #[test]
    fn v15_round_trip() {
        let msg = Message::request(
            netfn::APP,
            cmd::GET_CHANNEL_CIPHER_SUITES,
            1,
            vec![0x0E, 0, 0x80],
        );
        let datagram = encode_v15(&msg.encode());
        let (class, body) = split_rmcp(&datagram).unwrap();
        assert_eq!(class, RMCP_CLASS_IPMI);
        let v15 = decode_v15(body).unwrap();
        assert_eq!((v15.auth_type, v15.session_id), (0, 0));
        assert_eq!(Message::decode(v15.message).unwrap(), msg);
        // A length byte that runs past the datagram.
        let mut cut = datagram.clone();
        cut.truncate(cut.len() - 1);
        assert!(decode_v15(split_rmcp(&cut).unwrap().1).is_err());
    }

    #[test]
    fn v2_plain_round_trip() {
        let datagram = encode_v2_plain(payload::OPEN_SESSION_REQUEST, &[1, 2, 3]);
        let (_, body) = split_rmcp(&datagram).unwrap();
        let v2 = decode_v2(body).unwrap();
        assert_eq!(v2.payload_type, payload::OPEN_SESSION_REQUEST);
        assert!(!v2.encrypted && !v2.authenticated);
        assert_eq!((v2.session_id, v2.seq), (0, 0));
        assert_eq!(v2.payload, [1, 2, 3]);
        assert!(v2.trailer.is_empty());
        assert!(decode_v2(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn asf_ping_pong() {
        let ping = asf_presence_ping(7);
        let (class, body) = split_rmcp(&ping).unwrap();
        assert_eq!(class, RMCP_CLASS_ASF);
        let pong = asf_pong_for(body).unwrap();
        assert!(is_asf_pong(&pong, 7));
        assert!(!is_asf_pong(&pong, 8));
        assert!(asf_pong_for(&body[..4]).is_none());
    }

    #[test]
    fn rmcp_rejects_other_versions_and_acks() {
        assert!(split_rmcp(&[0x05, 0, 0xFF, 0x07]).is_err());
        assert!(split_rmcp(&[0x06, 0, 0xFF, 0x87]).is_err());
        assert!(split_rmcp(&[0x06, 0]).is_err());
    }
}
