//! The configuration model shared by every role.
//!
//! Configuration comes from three places, later ones winning: a TOML file, environment variables
//! named `STRATA_<SECTION>__<KEY>` (for example `STRATA_DATABASE__URL`), and the main
//! command-line flags. `docs/configuration.md` lists every key with its default; keep it in step
//! with this file.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The whole configuration. Every section has defaults, so an empty file is valid.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub identity: IdentityConfig,
    pub security_compliance: SecurityCompliance,
    pub image: ImageConfig,
    pub volume: VolumeConfig,
    pub network: NetworkConfig,
    pub compute: ComputeConfig,
    pub baremetal: BaremetalConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the one HTTP listener binds.
    pub listen: String,
    /// Base URL written into the service catalog; empty means `http://<listen>`.
    pub public_url: String,
    /// Where the embedded database, keys and `clouds.yaml` live (the `up` role).
    pub data_dir: Option<PathBuf>,
    /// Region name used for catalog entries created at bootstrap.
    pub region: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8440".into(),
            public_url: String::new(),
            data_dir: None,
            region: "RegionOne".into(),
        }
    }
}

impl ServerConfig {
    /// The base URL clients should use.
    pub fn base_url(&self, bound: &std::net::SocketAddr) -> String {
        if self.public_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`. Empty means
    /// `sqlite://<data_dir>/strata.db`.
    pub url: String,
    /// Upper bound on pooled connections.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (Keystone's `max_request_body_size`); larger
    /// bodies are answered 413.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 114_688,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Token lifetime in seconds (Keystone `[token] expiration`).
    pub token_expiration: u64,
    /// How long after expiry a token may still be validated with `allow_expired=true`
    /// (Keystone `[token] allow_expired_window`), in seconds.
    pub allow_expired_window: u64,
    /// bcrypt cost for password hashes (Keystone `[identity] password_hash_rounds`).
    pub password_hash_rounds: u32,
    /// Seconds between signing-key rotations.
    pub key_rotation_interval: u64,
    /// How many signing keys stay valid for verification (the newest signs).
    pub max_active_keys: u32,
    /// Password for the bootstrap `admin` user; empty means generate one on first start.
    pub bootstrap_password: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            token_expiration: 3600,
            allow_expired_window: 172_800,
            password_hash_rounds: 12,
            key_rotation_interval: 86_400,
            max_active_keys: 3,
            bootstrap_password: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Directory holding image data (one file per image). Unset means `<data_dir>/images`;
    /// `strata server` with neither set serves image records but refuses image data (503).
    pub store_dir: Option<PathBuf>,
    /// Largest image accepted, in bytes (Glance's `image_size_cap`, 1 TiB); larger uploads are
    /// answered 413. Image uploads are not subject to `http.max_body_bytes`.
    pub max_image_bytes: u64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            store_dir: None,
            max_image_bytes: 1 << 40,
        }
    }
}

impl ImageConfig {
    /// Where image data lives: `store_dir`, else `<data_dir>/images`.
    pub fn store_dir(&self, data_dir: Option<&std::path::Path>) -> Option<PathBuf> {
        self.store_dir
            .clone()
            .or_else(|| data_dir.map(|d| d.join("images")))
    }
}

/// The block-storage service (Cinder): the local file backend and Cinder's quota defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    /// Directory holding volume and snapshot files. Unset means `<data_dir>/volumes`;
    /// `strata server` with neither set refuses to create volume data (volumes go to `error`).
    pub store_dir: Option<PathBuf>,
    /// The `qemu-img` binary used to convert images and make copy-on-write overlays.
    pub qemu_img: String,
    /// The availability zone volumes are created in (Cinder's `storage_availability_zone`).
    pub availability_zone: String,
    /// The host name in `os-vol-host-attr:host` (`<host>@<backend>#<pool>`) and `os-services`.
    pub host: String,
    /// Default quotas per project (Cinder's `quota_*`); -1 is unlimited.
    pub quota_volumes: i64,
    pub quota_snapshots: i64,
    pub quota_gigabytes: i64,
    pub quota_backups: i64,
    pub quota_backup_gigabytes: i64,
    pub quota_groups: i64,
    pub quota_per_volume_gigabytes: i64,
    /// Bytes per second an image → volume copy may read (Cinder's `volume_copy_bps_limit`),
    /// so copies do not starve guests of disk bandwidth; 0 is unlimited.
    pub copy_bps_limit: u64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        Self {
            store_dir: None,
            qemu_img: "qemu-img".into(),
            availability_zone: "nova".into(),
            host: "strata".into(),
            quota_volumes: 10,
            quota_snapshots: 10,
            quota_gigabytes: 1000,
            quota_backups: 10,
            quota_backup_gigabytes: 1000,
            quota_groups: 10,
            quota_per_volume_gigabytes: -1,
            copy_bps_limit: 0,
        }
    }
}

impl VolumeConfig {
    /// Where volume data lives: `store_dir`, else `<data_dir>/volumes`.
    pub fn store_dir(&self, data_dir: Option<&std::path::Path>) -> Option<PathBuf> {
        self.store_dir
            .clone()
            .or_else(|| data_dir.map(|d| d.join("volumes")))
    }
}

/// The networking service (Neutron): segmentation, MTUs, MAC addresses and quota defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Type of project networks (`geneve`, `vxlan`, `vlan` or `flat`; Neutron's
    /// `tenant_network_types`, first entry).
    pub tenant_network_type: String,
    /// Physical networks flat networks may use (Neutron's `flat_networks`).
    pub flat_networks: Vec<String>,
    /// `physnet:first:last` VLAN ranges (Neutron's `network_vlan_ranges`).
    pub vlan_ranges: Vec<String>,
    /// `first:last` VNI ranges of geneve and vxlan networks.
    pub tunnel_ranges: Vec<String>,
    /// MTU of the physical network (Neutron's `global_physnet_mtu`); tunnel networks get it
    /// minus their encapsulation overhead.
    pub physnet_mtu: u32,
    /// MAC address prefix of ports (Neutron's `base_mac`); `00` octets are random.
    pub base_mac: String,
    /// Default quotas per project (Neutron's `quota_*`); -1 is unlimited.
    pub quota_network: i64,
    pub quota_subnet: i64,
    pub quota_subnetpool: i64,
    pub quota_port: i64,
    pub quota_router: i64,
    pub quota_floatingip: i64,
    pub quota_security_group: i64,
    pub quota_security_group_rule: i64,
    /// The host name under which `strata up` plugs ports through its own host agent (ports
    /// whose `binding:host_id` is this become ACTIVE); empty means the machine's host name.
    pub host: String,
}

impl NetworkConfig {
    /// [`NetworkConfig::host`], or the kernel's host name when it is empty.
    pub fn agent_host(&self) -> String {
        if !self.host.is_empty() {
            return self.host.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            tenant_network_type: "geneve".into(),
            flat_networks: vec!["physnet1".into()],
            vlan_ranges: vec!["physnet1:1000:2999".into()],
            tunnel_ranges: vec!["1:65535".into()],
            physnet_mtu: 1500,
            base_mac: "fa:16:3e:00:00:00".into(),
            quota_network: 100,
            quota_subnet: 100,
            quota_subnetpool: -1,
            quota_port: 500,
            quota_router: 10,
            quota_floatingip: 50,
            quota_security_group: 10,
            quota_security_group_rule: 100,
            host: String::new(),
        }
    }
}

/// Keystone's `[security_compliance]` options, with Keystone's defaults (all off).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityCompliance {
    /// Failed password attempts before a user is locked out; 0 disables lockout.
    pub lockout_failure_attempts: u32,
    /// Seconds a locked-out user stays locked; 0 means until an admin re-enables the user.
    pub lockout_duration: u64,
    /// A new password must differ from the last N; 0 (or 1) disables history checks.
    pub unique_last_password_count: u32,
    /// Days before a user may change their password again; 0 disables.
    pub minimum_password_age: u32,
    /// Days before a password expires; 0 means never.
    pub password_expires_days: u32,
    /// A regular expression new passwords must match; empty disables.
    pub password_regex: String,
    /// Human explanation of `password_regex`, shown when it fails.
    pub password_regex_description: String,
    /// Users created or reset by an admin must change their password before using it.
    pub change_password_upon_first_use: bool,
}

/// A problem loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing configuration")]
    Parse(#[source] toml::de::Error),
    #[error("environment variable {0}: unknown section or key")]
    UnknownEnv(String),
}

impl Config {
    /// Loads a TOML file (or an empty document when `path` is `None`), then applies
    /// `STRATA_<SECTION>__<KEY>` variables from `env`.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        let mut doc: toml::Table = text.parse().map_err(ConfigError::Parse)?;
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("STRATA_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            if !KNOWN_SECTIONS.contains(&section.as_str()) {
                return Err(ConfigError::UnknownEnv(k));
            }
            let entry = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(t) = entry {
                t.insert(key, env_value(&v));
            }
        }
        toml::Value::Table(doc)
            .try_into()
            .map_err(ConfigError::Parse)
    }
}

const KNOWN_SECTIONS: &[&str] = &[
    "server",
    "database",
    "http",
    "identity",
    "security_compliance",
    "image",
    "volume",
    "network",
    "compute",
    "baremetal",
];

/// An environment value is read as a TOML value when it parses as a number or boolean, and as a
/// string otherwise, so `STRATA_HTTP__MAX_BODY_BYTES=1024` and `STRATA_DATABASE__URL=...` both
/// work without quoting.
fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = v.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    toml::Value::String(v.to_string())
}

/// The compute service (Nova): its zone, quota defaults, scheduling and liveness. Quota defaults are Nova's `[quota]` defaults (-1 is
/// unlimited); they apply where neither a project (or user) override nor the `default` quota
/// class says otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    /// The availability zone compute hosts land in (Nova's `default_availability_zone`).
    pub availability_zone: String,
    /// Whether to create the DevStack flavors at the first start.
    pub seed_flavors: bool,
    pub quota_instances: i64,
    pub quota_cores: i64,
    pub quota_ram: i64,
    pub quota_metadata_items: i64,
    pub quota_injected_files: i64,
    pub quota_injected_file_content_bytes: i64,
    pub quota_injected_file_path_length: i64,
    pub quota_key_pairs: i64,
    pub quota_server_groups: i64,
    pub quota_server_group_members: i64,
    /// The nova-network era quotas only shown below 2.36 (Nova keeps their defaults).
    pub quota_floating_ips: i64,
    pub quota_fixed_ips: i64,
    pub quota_security_groups: i64,
    pub quota_security_group_rules: i64,
    /// Build attempts per server (the first and its reschedules; Nova's
    /// `[scheduler] max_attempts`).
    pub max_attempts: i64,
    /// Seconds without a heartbeat after which a compute service is down (Nova's
    /// `service_down_time`).
    pub service_down_time_s: i64,
    /// Whether a resize may land on the host the server is on (Nova's
    /// `allow_resize_to_same_host`). Unset: `false`, as Nova, for `strata server`; `true` for
    /// `strata up`, whose all-in-one is often the only host (as DevStack sets it).
    pub allow_resize_to_same_host: Option<bool>,
    /// Seconds a shelved server keeps its guest before it is offloaded (Nova's
    /// `shelved_offload_time`): 0 offloads at once, a negative value never.
    pub shelved_offload_time: i64,
    /// Seconds a deleted server is kept SOFT_DELETED (restorable) before it is reclaimed
    /// (Nova's `reclaim_instance_interval`): 0 deletes at once.
    pub reclaim_instance_interval: i64,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            availability_zone: "nova".into(),
            seed_flavors: true,
            quota_instances: 10,
            quota_cores: 20,
            quota_ram: 51200,
            quota_metadata_items: 128,
            quota_injected_files: 5,
            quota_injected_file_content_bytes: 10240,
            quota_injected_file_path_length: 255,
            quota_key_pairs: 100,
            quota_server_groups: 10,
            quota_server_group_members: 10,
            quota_floating_ips: 10,
            quota_fixed_ips: -1,
            quota_security_groups: 10,
            quota_security_group_rules: 20,
            max_attempts: 3,
            service_down_time_s: 60,
            allow_resize_to_same_host: None,
            shelved_offload_time: 0,
            reclaim_instance_interval: 0,
        }
    }
}

impl ComputeConfig {
    /// The configured default for a quota resource (`None` for an unknown name).
    pub fn quota_default(&self, resource: &str) -> Option<i64> {
        Some(match resource {
            "instances" => self.quota_instances,
            "cores" => self.quota_cores,
            "ram" => self.quota_ram,
            "metadata_items" => self.quota_metadata_items,
            "injected_files" => self.quota_injected_files,
            "injected_file_content_bytes" => self.quota_injected_file_content_bytes,
            "injected_file_path_bytes" => self.quota_injected_file_path_length,
            "key_pairs" => self.quota_key_pairs,
            "server_groups" => self.quota_server_groups,
            "server_group_members" => self.quota_server_group_members,
            "floating_ips" => self.quota_floating_ips,
            "fixed_ips" => self.quota_fixed_ips,
            "security_groups" => self.quota_security_groups,
            "security_group_rules" => self.quota_security_group_rules,
            _ => return None,
        })
    }
}

/// The bare-metal service (Ironic): its conductor's periodic work and the BMC drivers' timing.
/// Names follow Ironic's `[conductor]` options where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaremetalConfig {
    /// The conductor's host name, as `/v1/conductors` and `reservation` show it; empty means
    /// this machine's host name.
    pub conductor_hostname: String,
    /// Seconds between two passes of the power-state sync loop (Ironic's
    /// `sync_power_state_interval`); 0 disables it. Unset: 120 (Ironic's default) for
    /// `strata server`, 60 for `strata up`.
    pub sync_power_state_interval: Option<u64>,
    /// BMCs read at once by the power-state sync (Ironic's `sync_power_state_workers`).
    pub sync_power_state_workers: usize,
    /// Consecutive failed power reads after which the sync puts a node into maintenance with
    /// the fault `power failure` (Ironic's `power_state_sync_max_retries`).
    pub power_state_sync_max_retries: u32,
    /// Attempts of a BMC operation that failed for a reason that may pass (unreachable, a BMC
    /// fault) before the operation fails for good: power actions and the `manage` verification.
    pub power_retries: u32,
    /// Delay before the first retry, milliseconds; doubled on each further retry.
    pub power_retry_backoff_ms: u64,
    /// Seconds a power action may take to be reflected by the BMC (Ironic's
    /// `power_state_change_timeout`).
    pub power_state_change_timeout: u64,
    /// Seconds a soft power off or soft reboot may take (Ironic's `soft_power_off_timeout`).
    pub soft_power_off_timeout: u64,
    /// Seconds one request to a BMC may take (connect and answer).
    pub bmc_request_timeout: u64,
    /// What `automated_clean` means on nodes that leave it unset (Ironic's `automated_clean`).
    pub automated_clean: bool,
    /// Ironic's `[deploy] fast_track`: the ramdisk lookup also finds nodes in `enroll`,
    /// `manageable` and `available`.
    pub fast_track: bool,
    /// The `heartbeat_timeout` handed to ramdisks at lookup (Ironic's `[api]
    /// ramdisk_heartbeat_timeout`).
    pub ramdisk_heartbeat_timeout: u64,
    /// Reserved for the deploy work: Ironic's `max_concurrent_deploy`.
    pub max_concurrent_deploy: u32,
    /// Reserved for the deploy work: Ironic's `deploy_callback_timeout`, seconds.
    pub deploy_callback_timeout: u64,
    /// Reserved for inspection: Ironic's `inspect_wait_timeout`, seconds.
    pub inspect_wait_timeout: u64,
    /// The most items one list returns (Ironic's `[api] max_limit`).
    pub max_limit: u64,
}

impl Default for BaremetalConfig {
    fn default() -> Self {
        BaremetalConfig {
            conductor_hostname: String::new(),
            sync_power_state_interval: None,
            sync_power_state_workers: 8,
            power_state_sync_max_retries: 3,
            power_retries: 3,
            power_retry_backoff_ms: 1000,
            power_state_change_timeout: 60,
            soft_power_off_timeout: 600,
            bmc_request_timeout: 10,
            automated_clean: true,
            fast_track: false,
            ramdisk_heartbeat_timeout: 300,
            max_concurrent_deploy: 250,
            deploy_callback_timeout: 1800,
            inspect_wait_timeout: 1800,
            max_limit: 1000,
        }
    }
}

impl BaremetalConfig {
    /// The sync interval in force: the configured one, else Ironic's 120 s.
    pub fn sync_interval(&self) -> u64 {
        self.sync_power_state_interval.unwrap_or(120)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_keystone() {
        let c = Config::load(None, Vec::new()).unwrap();
        assert_eq!(c.identity.token_expiration, 3600);
        assert_eq!(c.identity.password_hash_rounds, 12);
        assert_eq!(c.security_compliance.lockout_failure_attempts, 0);
        assert_eq!(c.http.max_body_bytes, 114_688);
        assert_eq!(c.image.max_image_bytes, 1 << 40);
        assert_eq!(
            c.image.store_dir(Some(std::path::Path::new("/d"))),
            Some(PathBuf::from("/d/images"))
        );
        assert_eq!(c.image.store_dir(None), None);
    }

    #[test]
    fn file_then_env_overrides() {
        let dir = std::env::temp_dir().join(format!("strata-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        std::fs::write(
            &p,
            "[database]\nurl = \"sqlite://a.db\"\n[identity]\ntoken_expiration = 60\n",
        )
        .unwrap();
        let env = vec![
            (
                "STRATA_DATABASE__URL".to_string(),
                "postgres://x@h/db".to_string(),
            ),
            (
                "STRATA_SECURITY_COMPLIANCE__LOCKOUT_FAILURE_ATTEMPTS".into(),
                "2".into(),
            ),
            ("UNRELATED".into(), "1".into()),
        ];
        let c = Config::load(Some(&p), env).unwrap();
        assert_eq!(c.database.url, "postgres://x@h/db");
        assert_eq!(c.identity.token_expiration, 60);
        assert_eq!(c.security_compliance.lockout_failure_attempts, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let env = vec![("STRATA_NOPE__X".to_string(), "1".to_string())];
        assert!(matches!(
            Config::load(None, env),
            Err(ConfigError::UnknownEnv(_))
        ));
        let env = vec![("STRATA_HTTP__NOPE".to_string(), "1".to_string())];
        assert!(matches!(
            Config::load(None, env),
            Err(ConfigError::Parse(_))
        ));
    }
}
