//! Config drives: the OpenStack metadata of a guest on an ISO 9660 disk labelled `config-2`,
//! which cloud-init (and the guest agents of other OSes) read when there is no metadata
//! service. The layout is OpenStack's: `openstack/<version>/meta_data.json`, `user_data`,
//! `network_data.json`, `vendor_data.json`, `vendor_data2.json`, one directory per metadata
//! version plus `latest`.
//!
//! The ISO is written by `genisoimage` (as Nova writes it, with Rock Ridge and Joliet names so
//! that lower-case, long file names survive), from a tree staged next to the image.

use crate::HvError;
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;
use strata_agent_api::InstanceSpec;

/// The volume label guests look for.
pub const LABEL: &str = "config-2";

/// The metadata versions written (newest first), besides `latest`: the newest that
/// cloud-init knows and the oldest that every reader knows.
pub const VERSIONS: &[&str] = &["2018-08-27", "2012-08-10"];

/// The DNS domain appended to the hostname in the metadata, as Nova's default `dhcp_domain`.
pub const DHCP_DOMAIN: &str = "novalocal";

/// `meta_data.json` of a guest.
pub fn meta_data(spec: &InstanceSpec) -> Value {
    let mut keys = Vec::new();
    let mut public_keys = serde_json::Map::new();
    if let Some(data) = spec.key_data.as_deref().filter(|k| !k.is_empty()) {
        let name = spec.key_name.clone().unwrap_or_else(|| "key".into());
        // x509 keys are certificates (Windows guests); everything else is an SSH key.
        let kind = if data.starts_with("-----BEGIN CERTIFICATE") {
            "x509"
        } else {
            "ssh"
        };
        public_keys.insert(name.clone(), json!(data));
        keys.push(json!({"name": name, "type": kind, "data": data}));
    }
    json!({
        "uuid": spec.uuid,
        "name": spec.display_name.clone().unwrap_or_else(|| spec.hostname.clone()),
        "hostname": format!("{}.{DHCP_DOMAIN}", spec.hostname),
        "launch_index": spec.launch_index,
        "availability_zone": spec.availability_zone.clone().unwrap_or_else(|| "nova".into()),
        "project_id": spec.project_id.clone().unwrap_or_default(),
        "meta": spec.metadata,
        "public_keys": public_keys,
        "keys": keys,
        "devices": [],
        "dedicated_cpus": [],
        "random_seed": base64::engine::general_purpose::STANDARD.encode(random_seed()),
    })
}

/// 512 bytes for the guest's entropy pool (as Nova's `random_seed`).
fn random_seed() -> Vec<u8> {
    use rand::RngCore;
    let mut b = vec![0u8; 512];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// `network_data.json`: one link per interface (by MAC) and, per fixed IP, a network the
/// guest configures by DHCP (the ports' subnets serve DHCP).
pub fn network_data(spec: &InstanceSpec) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    for vif in &spec.vifs {
        let link = tap_name(&vif.port_id);
        links.push(json!({
            "id": link,
            "vif_id": vif.port_id,
            "type": "tap",
            "mtu": vif.mtu,
            "ethernet_mac_address": vif.mac_address,
        }));
        for ip in &vif.fixed_ips {
            let kind = if ip.contains(':') {
                "ipv6_dhcp"
            } else {
                "ipv4_dhcp"
            };
            networks.push(json!({
                "id": format!("network{}", networks.len()),
                "type": kind,
                "link": link,
                "network_id": vif.network_id,
            }));
        }
    }
    json!({"links": links, "networks": networks, "services": []})
}

/// The host's tap device of a port, as Nova names it (`tap` and the port id's first 11
/// characters: 14, within the kernel's 15).
pub fn tap_name(port_id: &str) -> String {
    format!("tap{}", port_id.chars().take(11).collect::<String>())
}

/// The files of the drive, by path inside it.
pub fn files(spec: &InstanceSpec) -> Result<Vec<(String, Vec<u8>)>, HvError> {
    let user_data = match spec.user_data.as_deref().filter(|u| !u.is_empty()) {
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| HvError {
                    message: format!("the user data is not base64: {e}"),
                    retryable: false,
                })?,
        ),
        None => None,
    };
    let meta = serde_json::to_vec(&meta_data(spec)).unwrap_or_default();
    let net = serde_json::to_vec(&network_data(spec)).unwrap_or_default();
    let mut out = Vec::new();
    for v in VERSIONS.iter().copied().chain(["latest"]) {
        let d = format!("openstack/{v}");
        out.push((format!("{d}/meta_data.json"), meta.clone()));
        out.push((format!("{d}/network_data.json"), net.clone()));
        out.push((format!("{d}/vendor_data.json"), b"{}".to_vec()));
        out.push((format!("{d}/vendor_data2.json"), b"{}".to_vec()));
        if let Some(u) = &user_data {
            out.push((format!("{d}/user_data"), u.clone()));
        }
    }
    Ok(out)
}

/// Writes the config drive of `spec` to the ISO file `dest` with `mkisofs` (`genisoimage`).
pub async fn build(spec: &InstanceSpec, dest: &Path, mkisofs: &str) -> Result<(), HvError> {
    let fail = |what: String| HvError {
        message: what,
        retryable: true,
    };
    let stage = dest.with_extension("tree");
    let _ = tokio::fs::remove_dir_all(&stage).await;
    for (path, data) in files(spec)? {
        let p = stage.join(&path);
        if let Some(parent) = p.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| fail(format!("creating {}: {e}", parent.display())))?;
        }
        tokio::fs::write(&p, data)
            .await
            .map_err(|e| fail(format!("writing {}: {e}", p.display())))?;
    }
    let out = tokio::process::Command::new(mkisofs)
        .arg("-o")
        .arg(dest)
        .args([
            "-ldots",
            "-allow-lowercase",
            "-allow-multidot",
            "-l",
            "-publisher",
            "Strata",
            "-quiet",
            "-J",
            "-r",
            "-V",
            LABEL,
        ])
        .arg(&stage)
        .output()
        .await;
    let _ = tokio::fs::remove_dir_all(&stage).await;
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(fail(format!(
            "{mkisofs} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(fail(format!("running {mkisofs}: {e}"))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use strata_agent_api::{Power, Sizing, Vif};

    pub(crate) fn spec() -> InstanceSpec {
        InstanceSpec {
            uuid: "6f1c1a47-1a43-4c1d-9d5e-2a0f3f1b7c11".into(),
            name: "instance-0000002a".into(),
            hostname: "web-1".into(),
            generation: 1,
            power: Power::Running,
            reboot_seq: 0,
            hard_reboot: false,
            sizing: Sizing::default(),
            image_id: Some("img".into()),
            disks: vec![],
            vifs: vec![Vif {
                port_id: "0123456789abcdef".into(),
                mac_address: "fa:16:3e:00:00:01".into(),
                network_id: "net-1".into(),
                mtu: 1450,
                vif_type: "tap".into(),
                fixed_ips: vec!["10.0.0.5".into(), "fd00::5".into()],
            }],
            user_data: Some(
                base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\necho hi\n"),
            ),
            metadata: [("role".to_string(), "web".to_string())].into(),
            key_data: Some("ssh-ed25519 AAAA test".into()),
            config_drive: true,
            snapshot: None,
            display_name: Some("Web 1".into()),
            project_id: Some("p1".into()),
            availability_zone: Some("az1".into()),
            key_name: Some("k1".into()),
            launch_index: 0,
            image_properties: Default::default(),
            previous_sizing: None,
        }
    }

    #[test]
    fn meta_data_is_openstacks() {
        let m = meta_data(&spec());
        assert_eq!(m["uuid"], "6f1c1a47-1a43-4c1d-9d5e-2a0f3f1b7c11");
        assert_eq!(m["name"], "Web 1");
        assert_eq!(m["hostname"], "web-1.novalocal");
        assert_eq!(m["availability_zone"], "az1");
        assert_eq!(m["project_id"], "p1");
        assert_eq!(m["meta"]["role"], "web");
        assert_eq!(m["public_keys"]["k1"], "ssh-ed25519 AAAA test");
        assert_eq!(m["keys"][0]["type"], "ssh");
        let seed = base64::engine::general_purpose::STANDARD
            .decode(m["random_seed"].as_str().unwrap())
            .unwrap();
        assert_eq!(seed.len(), 512);
    }

    #[test]
    fn network_data_has_a_link_per_port_and_a_network_per_address() {
        let n = network_data(&spec());
        assert_eq!(n["links"][0]["id"], "tap0123456789a");
        assert_eq!(n["links"][0]["ethernet_mac_address"], "fa:16:3e:00:00:01");
        assert_eq!(n["links"][0]["mtu"], 1450);
        assert_eq!(n["networks"][0]["type"], "ipv4_dhcp");
        assert_eq!(n["networks"][1]["type"], "ipv6_dhcp");
        assert_eq!(n["networks"][1]["link"], "tap0123456789a");
    }

    #[test]
    fn files_carry_decoded_user_data_in_every_version() {
        let f = files(&spec()).unwrap();
        let ud: Vec<_> = f
            .iter()
            .filter(|(p, _)| p.ends_with("/user_data"))
            .collect();
        assert_eq!(ud.len(), VERSIONS.len() + 1);
        assert!(ud.iter().all(|(_, d)| d == b"#!/bin/sh\necho hi\n"));
        assert!(f
            .iter()
            .any(|(p, _)| p == "openstack/latest/meta_data.json"));
        let mut bad = spec();
        bad.user_data = Some("not base64!".into());
        assert!(files(&bad).is_err());
        let mut none = spec();
        none.user_data = None;
        assert!(!files(&none)
            .unwrap()
            .iter()
            .any(|(p, _)| p.ends_with("user_data")));
    }
}
