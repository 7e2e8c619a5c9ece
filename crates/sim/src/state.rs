//! `<data-dir>/state.json`: what a simulated host keeps across a restart of the simulator,
//! as a real one keeps it across a BMC reboot — power, the boot override, the inserted CD,
//! BIOS settings (applied and pending), a changed password, the boot log, and a power change
//! still in flight (landed at the next start).
//!
//! One file for the fleet, rewritten whole (to a temporary file, then renamed over the old
//! one) on every change, before the BMC answers the request that made it.
//! TODO-perf: at thousands of hosts with a busy controller, write per host or coalesce.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::SimError;
use crate::host::{BootOverride, BootRecord, PowerState, VirtualMedia};

/// One host's durable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Persisted {
    pub power: PowerState,
    #[serde(default)]
    pub pending: Option<PendingRecord>,
    pub boot: BootOverride,
    pub virtual_media: VirtualMedia,
    pub bios: BTreeMap<String, Value>,
    #[serde(default)]
    pub bios_pending: BTreeMap<String, Value>,
    #[serde(default)]
    pub bios_applied_at: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub boot_log: Vec<BootRecord>,
}

/// A power change accepted but not landed when the state was written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingRecord {
    pub target: PowerState,
    pub boot: bool,
}

#[derive(Serialize, Deserialize, Default)]
struct FileFormat {
    hosts: BTreeMap<String, Persisted>,
}

/// The fleet's state file and the latest state of every host in it.
pub(crate) struct StateFile {
    path: PathBuf,
    hosts: Mutex<BTreeMap<String, Persisted>>,
}

impl StateFile {
    /// Reads `path` (a missing file is an empty fleet).
    pub fn open(path: &Path) -> Result<StateFile, SimError> {
        let hosts = match std::fs::read(path) {
            Ok(raw) => {
                serde_json::from_slice::<FileFormat>(&raw)
                    .map_err(|source| SimError::StateFile {
                        path: path.to_path_buf(),
                        source,
                    })?
                    .hosts
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(SimError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(StateFile {
            path: path.to_path_buf(),
            hosts: Mutex::new(hosts),
        })
    }

    /// The saved state of host `name`, if any.
    pub fn saved(&self, name: &str) -> Option<Persisted> {
        self.lock().get(name).cloned()
    }

    /// Records `state` for host `name` and rewrites the file. A failed write is logged, not
    /// returned: the BMC keeps serving, as a real one would with a worn-out flash.
    pub fn save(&self, name: &str, state: Persisted) {
        let mut hosts = self.lock();
        hosts.insert(name.to_string(), state);
        if let Err(e) = self.write(&hosts) {
            tracing::warn!(path = %self.path.display(), error = %e, "writing the simulator state");
        }
    }

    fn write(&self, hosts: &BTreeMap<String, Persisted>) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            hosts: &'a BTreeMap<String, Persisted>,
        }
        let raw = serde_json::to_vec_pretty(&Borrowed { hosts }).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, raw)?;
        std::fs::rename(&tmp, &self.path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Persisted>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }
}
