//! The data bytes of the commands Strata sends and serves, encoded and decoded in one place so
//! that client and server cannot disagree. Response data here excludes the completion code.

use crate::crypto::CipherSuite;
use crate::types::{BootDevice, BootSource, DeviceId};
use crate::wire::WireError;

/// The channel number "this channel" (the one the request arrived on).
pub(crate) const CURRENT_CHANNEL: u8 = 0x0E;
/// The LAN channel our server reports itself as.
pub(crate) const LAN_CHANNEL: u8 = 0x01;

/// Get Channel Authentication Capabilities request (table 22-15): channel 0x0E with bit 7 set,
/// asking for the IPMI v2.0 extended data, and the privilege level the console will want.
pub(crate) fn auth_caps_request(privilege: u8) -> Vec<u8> {
    vec![0x80 | CURRENT_CHANNEL, privilege]
}

/// Get Channel Authentication Capabilities response data (table 22-15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AuthCaps {
    pub channel: u8,
    /// Byte 2: bit 7 "IPMI v2.0+ extended capabilities available", bits 5:0 v1.5 auth types.
    pub auth_types: u8,
    /// Byte 3: KG status, per-message / user-level authentication, null/non-null/anonymous
    /// login.
    pub login_status: u8,
    /// Byte 4: bit 1 "IPMI v2.0 connections", bit 0 "IPMI v1.5 connections".
    pub ext_caps: u8,
}

impl AuthCaps {
    /// What our server answers: RMCP+ only, non-null user names, Kg all zeros.
    pub fn strata(v2_requested: bool) -> AuthCaps {
        AuthCaps {
            channel: LAN_CHANNEL,
            // No IPMI v1.5 authentication type is offered; bit 7 only when asked for.
            auth_types: if v2_requested { 0x80 } else { 0x00 },
            login_status: 0x04,
            ext_caps: 0x02,
        }
    }

    pub fn supports_rmcp_plus(&self) -> bool {
        self.auth_types & 0x80 != 0 && self.ext_caps & 0x02 != 0
    }

    pub fn encode(&self) -> Vec<u8> {
        // OEM ID (3 bytes) and OEM auxiliary data: none.
        vec![
            self.channel,
            self.auth_types,
            self.login_status,
            self.ext_caps,
            0,
            0,
            0,
            0,
        ]
    }

    pub fn decode(data: &[u8]) -> Result<AuthCaps, WireError> {
        if data.len() < 4 {
            return Err(WireError("short channel authentication capabilities"));
        }
        Ok(AuthCaps {
            channel: data[0],
            auth_types: data[1],
            login_status: data[2],
            ext_caps: data[3],
        })
    }
}

/// Get Channel Cipher Suites request (table 22-18) for IPMI payloads, listing by suite.
pub(crate) fn cipher_suites_request(list_index: u8) -> Vec<u8> {
    vec![CURRENT_CHANNEL, 0x00, 0x80 | (list_index & 0x3F)]
}

/// The cipher suite records (table 22-19) our server lists, strongest first: a "standard
/// cipher suite" start byte 0xC0, the suite ID, then the authentication, integrity (tag 01b)
/// and confidentiality (tag 10b) algorithms.
pub(crate) fn cipher_suite_records(suites: &[CipherSuite]) -> Vec<u8> {
    let mut out = Vec::new();
    for suite in suites {
        let (auth, integrity, conf) = suite.algorithms();
        out.extend_from_slice(&[0xC0, suite.id(), auth, 0x40 | integrity, 0x80 | conf]);
    }
    out
}

/// The suite IDs in a concatenation of cipher suite records. Algorithm bytes after the ID are
/// skipped; OEM records (0xC1) carry a 3-byte IANA after the ID.
pub(crate) fn parse_cipher_suite_ids(records: &[u8]) -> Vec<u8> {
    let mut ids = Vec::new();
    let mut i = 0;
    while i < records.len() {
        match records[i] {
            0xC0 | 0xC1 => {
                if let Some(id) = records.get(i + 1) {
                    ids.push(*id);
                }
                i += if records[i] == 0xC1 { 5 } else { 2 };
            }
            // An algorithm byte (tag bits 7:6 = 00, 01 or 10).
            _ => i += 1,
        }
    }
    ids
}

/// Boot options parameter 5, boot flags (table 28-14), from a `BootDevice`: byte 1 valid (7),
/// persistent (6), EFI (5); byte 2 the device selector in bits 5:2; bytes 3–5 zero.
pub(crate) fn encode_boot_flags(dev: BootDevice) -> [u8; 5] {
    let mut b1 = 0x80;
    if dev.persistent {
        b1 |= 0x40;
    }
    if dev.efi {
        b1 |= 0x20;
    }
    [b1, dev.device.selector() << 2, 0, 0, 0]
}

/// The inverse of `encode_boot_flags`. Flags marked invalid mean "no override".
pub(crate) fn decode_boot_flags(data: &[u8]) -> Result<BootDevice, WireError> {
    if data.len() < 2 {
        return Err(WireError("short boot flags"));
    }
    let valid = data[0] & 0x80 != 0;
    Ok(BootDevice {
        device: if valid {
            BootSource::from_selector(data[1] >> 2)
        } else {
            BootSource::NoOverride
        },
        persistent: data[0] & 0x40 != 0,
        efi: data[0] & 0x20 != 0,
    })
}

pub(crate) fn encode_device_id(id: &DeviceId) -> Vec<u8> {
    let mfg = id.manufacturer_id.to_le_bytes();
    let prod = id.product_id.to_le_bytes();
    vec![
        id.device_id,
        id.device_revision & 0x0F,
        id.firmware_major & 0x7F,
        id.firmware_minor,
        id.ipmi_version,
        id.additional_device_support,
        mfg[0],
        mfg[1],
        mfg[2] & 0x0F,
        prod[0],
        prod[1],
    ]
}

pub(crate) fn decode_device_id(data: &[u8]) -> Result<DeviceId, WireError> {
    if data.len() < 11 {
        return Err(WireError("short Get Device ID response"));
    }
    Ok(DeviceId {
        device_id: data[0],
        device_revision: data[1] & 0x0F,
        firmware_major: data[2] & 0x7F,
        firmware_minor: data[3],
        ipmi_version: data[4],
        additional_device_support: data[5],
        manufacturer_id: u32::from_le_bytes([data[6], data[7], data[8] & 0x0F, 0]),
        product_id: u16::from_le_bytes([data[9], data[10]]),
    })
}

/// Get Chassis Status response data (table 28-3): current power state (bit 0 "power is on";
/// restore policy "always off"), last power event, misc chassis state.
pub(crate) fn encode_chassis_status(power_on: bool) -> Vec<u8> {
    vec![u8::from(power_on), 0x00, 0x00]
}

pub(crate) fn decode_power_on(data: &[u8]) -> Result<bool, WireError> {
    data.first()
        .map(|b| b & 1 != 0)
        .ok_or(WireError("empty Get Chassis Status response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_flags_round_trip() {
        for device in [
            BootSource::Pxe,
            BootSource::Disk,
            BootSource::Safe,
            BootSource::Diag,
            BootSource::Cdrom,
            BootSource::Bios,
            BootSource::Other(0xF),
        ] {
            for (persistent, efi) in [(false, false), (true, false), (false, true), (true, true)] {
                let dev = BootDevice {
                    device,
                    persistent,
                    efi,
                };
                assert_eq!(decode_boot_flags(&encode_boot_flags(dev)).unwrap(), dev);
            }
        }
        // The selector values ipmitool documents: pxe 0x04, disk 0x08, cdrom 0x14, bios 0x18.
        for (device, byte) in [
            (BootSource::Pxe, 0x04),
            (BootSource::Disk, 0x08),
            (BootSource::Safe, 0x0C),
            (BootSource::Diag, 0x10),
            (BootSource::Cdrom, 0x14),
            (BootSource::Bios, 0x18),
        ] {
            assert_eq!(
                encode_boot_flags(BootDevice::once(device))[1],
                byte,
                "{device:?}"
            );
        }
        let persistent_efi = BootDevice {
            device: BootSource::Pxe,
            persistent: true,
            efi: true,
        };
        assert_eq!(encode_boot_flags(persistent_efi)[0], 0xE0);
        // Invalid flags: no override.
        assert_eq!(
            decode_boot_flags(&[0x00, 0x04]).unwrap().device,
            BootSource::NoOverride
        );
        assert!(decode_boot_flags(&[0x80]).is_err());
    }

    #[test]
    fn device_id_round_trip() {
        let id = DeviceId {
            manufacturer_id: 0x0A_BCDE,
            product_id: 0x1234,
            firmware_minor: 0x42,
            ..DeviceId::default()
        };
        assert_eq!(decode_device_id(&encode_device_id(&id)).unwrap(), id);
        assert!(decode_device_id(&[0; 10]).is_err());
    }

    #[test]
    fn cipher_suite_records_round_trip() {
        let records = cipher_suite_records(&[CipherSuite::Sha256Aes, CipherSuite::Sha1Aes]);
        assert_eq!(records, [0xC0, 17, 3, 0x44, 0x81, 0xC0, 3, 1, 0x41, 0x81]);
        assert_eq!(parse_cipher_suite_ids(&records), [17, 3]);
        // pyghmi's answer, and an OEM record.
        assert_eq!(parse_cipher_suite_ids(&[0xC0, 3, 1, 0x41, 0x81]), [3]);
        assert_eq!(
            parse_cipher_suite_ids(&[0xC1, 0x80, 1, 2, 3, 0x01, 0xC0, 17, 3]),
            [0x80, 17]
        );
    }

    #[test]
    fn auth_caps_round_trip() {
        let caps = AuthCaps::strata(true);
        assert!(caps.supports_rmcp_plus());
        assert_eq!(AuthCaps::decode(&caps.encode()).unwrap(), caps);
        assert!(!AuthCaps::strata(false).supports_rmcp_plus());
        assert!(AuthCaps::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn chassis_status() {
        assert!(decode_power_on(&encode_chassis_status(true)).unwrap());
        assert!(!decode_power_on(&encode_chassis_status(false)).unwrap());
        assert!(decode_power_on(&[]).is_err());
    }
}
