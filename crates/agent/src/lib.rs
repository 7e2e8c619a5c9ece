//! The node agent: it registers its host with the server, heartbeats, follows the host's
//! desired instances and drives a [`Hypervisor`] until what runs matches, reporting each
//! instance's observed state. Level-triggered: every pass compares the whole desired set
//! with what the hypervisor lists, so a missed update, an agent restart or a guest that died
//! costs one pass, never a wrong state.
//!
//! Snapshots (`InstanceSpec::snapshot`) run in the background, once per request: the driver
//! writes the disk to a file in the agent's work dir, which is uploaded to the control plane
//! (or the failure reported) and removed.
//!
//! Drivers: [`FakeHypervisor`] (in memory, instant; for scale and API tests, with injectable
//! spawn and snapshot failures) here, and [`libvirt::LibvirtDriver`] (QEMU guests through
//! libvirt, with config drives from [`configdrive`]).

pub mod configdrive;
pub mod libvirt;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_agent_api::{
    ApiError, ControlPlane, Disk, Fault, HostRegistration, InstanceReport, InstanceSpec, Power,
    PowerState, Sizing, SnapshotRequest, Vif,
};
use tokio::sync::watch;

/// A hypervisor failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HvError {
    pub message: String,
    /// Another host may succeed.
    pub retryable: bool,
}

/// The future a [`Hypervisor`] call returns.
pub type HvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HvError>> + Send + 'a>>;

/// What the hypervisor offers, for registration.
#[derive(Debug, Clone, PartialEq)]
pub struct HostResources {
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub cpu_info: serde_json::Value,
    pub supported_instances: Vec<(String, String, String)>,
    pub traits: Vec<String>,
}

/// A hypervisor driver.
pub trait Hypervisor: Send + Sync {
    fn name(&self) -> &str;
    /// How often the agent looks at its guests when nothing it is given changes (power
    /// states, console output, volumes): a driver whose guests change by themselves says
    /// less than the default 30 s.
    fn resync_interval(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn resources(&self) -> HvFuture<'_, HostResources>;
    /// Every guest on the host with its power state.
    fn list(&self) -> HvFuture<'_, Vec<(String, PowerState)>>;
    /// Creates the guest (disks, definition) and starts it.
    fn spawn<'a>(&'a self, spec: &'a InstanceSpec) -> HvFuture<'a, ()>;
    /// Stops and removes the guest and its local disks; a missing guest is no error.
    fn destroy<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, ()>;
    /// Gives an existing guest the spec's size (Nova's cold resize on one host: powered off,
    /// its definition and disks changed; the agent then powers it as the spec says). While
    /// the spec names a `previous_sizing` the driver keeps what it needs to go back; a spec
    /// whose size is that previous one again is a revert (the old disk comes back), one
    /// without a previous size a confirmation (what was kept goes). Idempotent: a guest
    /// already at the spec's size, with nothing kept or to keep, is left alone; called once
    /// per guest after every agent start. Drivers whose guests have no size of their own
    /// accept it.
    fn resize<'a>(&'a self, _uuid: &'a str, _spec: &'a InstanceSpec) -> HvFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Moves a guest to `power` (start, stop, pause, unpause, suspend, resume).
    fn set_power<'a>(&'a self, uuid: &'a str, power: Power) -> HvFuture<'a, ()>;
    fn reboot<'a>(&'a self, uuid: &'a str, hard: bool) -> HvFuture<'a, ()>;
    fn console_output<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, String>;
    /// The volumes attached to the guest (their `volume_id`s). Drivers without volume
    /// support attach none.
    fn attached_volumes<'a>(&'a self, _uuid: &'a str) -> HvFuture<'a, Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Attaches a `volume` disk to the guest, running or not; one already attached is no
    /// error.
    fn attach_volume<'a>(&'a self, _uuid: &'a str, disk: &'a Disk) -> HvFuture<'a, ()> {
        let message = format!(
            "the {} driver cannot attach volumes ({})",
            self.name(),
            disk.device_name
        );
        Box::pin(async move {
            Err(HvError {
                message,
                retryable: false,
            })
        })
    }
    /// Detaches a volume from the guest; one not attached is no error.
    fn detach_volume<'a>(&'a self, _uuid: &'a str, _volume_id: &'a str) -> HvFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    /// The MAC addresses of the guest's NICs, when the driver tracks them (`None`: it does
    /// not, and the agent leaves NICs as the guest was spawned).
    fn interfaces<'a>(&'a self, _uuid: &'a str) -> HvFuture<'a, Option<Vec<String>>> {
        Box::pin(async { Ok(None) })
    }
    /// Plugs a NIC for `vif` into the guest, running or not (Nova's `attach_interface`).
    fn attach_interface<'a>(&'a self, _uuid: &'a str, vif: &'a Vif) -> HvFuture<'a, ()> {
        let message = format!(
            "the {} driver cannot attach interfaces (port {})",
            self.name(),
            vif.port_id
        );
        Box::pin(async move {
            Err(HvError {
                message,
                retryable: false,
            })
        })
    }
    /// Unplugs the guest's NIC with MAC address `mac`; one not plugged is no error.
    fn detach_interface<'a>(&'a self, _uuid: &'a str, _mac: &'a str) -> HvFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Writes a snapshot of the guest's root disk to the file `dest` (created or replaced) in
    /// the request's `disk_format`, the guest running or not (a libvirt driver: `qemu-img
    /// convert` of the disk, after a freeze or a pause). Drivers without snapshots refuse.
    fn snapshot<'a>(
        &'a self,
        _uuid: &'a str,
        req: &'a SnapshotRequest,
        _dest: &'a std::path::Path,
    ) -> HvFuture<'a, ()> {
        let message = format!(
            "the {} driver cannot take snapshots (image {})",
            self.name(),
            req.image_id
        );
        Box::pin(async move {
            Err(HvError {
                message,
                retryable: false,
            })
        })
    }
}

/// The `volume` disks of a spec with their volume ids.
fn volume_disks(spec: &InstanceSpec) -> Vec<(&str, &Disk)> {
    spec.disks
        .iter()
        .filter(|d| d.source == "volume")
        .filter_map(|d| d.volume_id.as_deref().map(|v| (v, d)))
        .collect()
}

fn observed(p: Power) -> PowerState {
    match p {
        Power::Running => PowerState::Running,
        Power::Shutdown => PowerState::Shutdown,
        Power::Paused => PowerState::Paused,
        Power::Suspended => PowerState::Suspended,
    }
}

// ------------------------------------------------------------------ fake driver

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FakeGuest {
    power: Power,
    boots: u64,
    name: String,
    /// Attached volumes: volume id → device name.
    #[serde(default)]
    volumes: BTreeMap<String, String>,
    /// The image the guest was built from (what its snapshots say they come from).
    #[serde(default)]
    image: Option<String>,
    /// Its NICs' MAC addresses.
    #[serde(default)]
    macs: Vec<String>,
    /// Its size, and the size it had before a resize waiting for confirmation.
    #[serde(default)]
    sizing: Option<Sizing>,
    #[serde(default)]
    previous: Option<Sizing>,
}

/// The fake hypervisor: guests are entries in a map, every action is instant.
pub struct FakeHypervisor {
    resources: HostResources,
    guests: Mutex<BTreeMap<String, FakeGuest>>,
    /// The next this-many spawns fail (retryably), for reschedule tests.
    failing_spawns: Mutex<usize>,
    /// The next this-many snapshots fail.
    failing_snapshots: Mutex<usize>,
    /// While `true`, snapshots wait (for tests that look at a snapshot in progress).
    snapshot_gate: watch::Sender<bool>,
    /// While true, spawns wait (tests hold a build or rebuild in progress).
    spawn_gate: watch::Sender<bool>,
    /// Snapshots taken per guest (for tests).
    snapshots_taken: Mutex<BTreeMap<String, u64>>,
    /// Where the guests are kept across restarts of the agent (as a real hypervisor's guests
    /// outlive the agent), when set.
    state_file: Option<std::path::PathBuf>,
}

impl FakeHypervisor {
    /// A fake host with `vcpus`, `memory_mb` and `local_gb`.
    pub fn new(vcpus: i64, memory_mb: i64, local_gb: i64) -> FakeHypervisor {
        FakeHypervisor {
            resources: HostResources {
                hypervisor_type: "fake".into(),
                hypervisor_version: 1000,
                vcpus,
                memory_mb,
                local_gb,
                cpu_info: serde_json::json!({"arch": "x86_64", "model": "fake", "vendor": "strata",
                    "topology": {"sockets": 1, "cores": vcpus, "threads": 1}, "features": []}),
                supported_instances: vec![
                    ("x86_64".into(), "fake".into(), "hvm".into()),
                    ("x86_64".into(), "qemu".into(), "hvm".into()),
                ],
                traits: vec![
                    "COMPUTE_NET_ATTACH_INTERFACE".into(),
                    "COMPUTE_VOLUME_ATTACH".into(),
                ],
            },
            guests: Mutex::new(BTreeMap::new()),
            failing_spawns: Mutex::new(0),
            failing_snapshots: Mutex::new(0),
            snapshot_gate: watch::channel(false).0,
            spawn_gate: watch::channel(false).0,
            snapshots_taken: Mutex::new(BTreeMap::new()),
            state_file: None,
        }
    }

    /// Keeps the guests in `path` (JSON), loading what an earlier run left there: guests
    /// survive an agent restart, so the agent must adopt them rather than boot them again.
    pub fn with_state_file(mut self, path: impl Into<std::path::PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        match std::fs::read(&path) {
            Ok(b) => {
                let guests: BTreeMap<String, FakeGuest> = serde_json::from_slice(&b)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                self.guests = Mutex::new(guests);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.state_file = Some(path);
        Ok(self)
    }
    /// Makes the next `n` spawns fail.
    pub fn fail_next_spawns(&self, n: usize) {
        *self
            .failing_spawns
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = n;
    }
    /// Makes the next `n` snapshots fail.
    pub fn fail_next_snapshots(&self, n: usize) {
        *self
            .failing_snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = n;
    }
    /// Holds spawns (they wait before creating anything) until called again with `false`.
    pub fn hold_spawns(&self, held: bool) {
        self.spawn_gate.send_replace(held);
    }
    /// Holds snapshots (they wait before writing anything) until called again with `false`.
    pub fn hold_snapshots(&self, held: bool) {
        self.snapshot_gate.send_replace(held);
    }
    /// How many snapshots of the guest were written (for tests).
    pub fn snapshots_taken(&self, uuid: &str) -> u64 {
        self.snapshots_taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uuid)
            .copied()
            .unwrap_or(0)
    }
    /// The volumes attached to a guest: volume id → device name (for tests).
    pub fn volumes(&self, uuid: &str) -> BTreeMap<String, String> {
        self.with(|g| g.get(uuid).map(|g| g.volumes.clone()).unwrap_or_default())
    }
    /// A guest's size and the size it keeps to go back to (for tests).
    pub fn sizing_of(&self, uuid: &str) -> Option<(Sizing, Option<Sizing>)> {
        self.with(|g| {
            g.get(uuid)
                .and_then(|g| g.sizing.clone().map(|s| (s, g.previous.clone())))
        })
    }
    /// The guests and how many times each booted (for tests).
    pub fn guests(&self) -> BTreeMap<String, (Power, u64)> {
        self.guests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, g)| (k.clone(), (g.power, g.boots)))
            .collect()
    }
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, FakeGuest>) -> T) -> T {
        f(&mut self.guests.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// [`FakeHypervisor::with`] for changes: the state file is rewritten afterwards.
    fn with_mut<T>(&self, f: impl FnOnce(&mut BTreeMap<String, FakeGuest>) -> T) -> T {
        let mut g = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut g);
        if let Some(path) = &self.state_file {
            // Written whole and renamed into place, so a crash leaves the old or the new state.
            let tmp = path.with_extension("tmp");
            let saved = serde_json::to_vec(&*g)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&tmp, b))
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = saved {
                tracing::warn!(error = %e, path = %path.display(), "fake hypervisor: saving state");
            }
        }
        out
    }
}

fn missing(uuid: &str) -> HvError {
    HvError {
        message: format!("no guest {uuid} on this host"),
        retryable: false,
    }
}

/// What a fake guest writes on its console at its `boot`th boot: four lines, the last its
/// login prompt.
pub fn fake_boot_log(name: &str, boot: u64) -> String {
    ["firmware", "kernel", "init"]
        .iter()
        .map(|stage| format!("[fake] {name} boot {boot}: {stage}\n"))
        .chain(std::iter::once(format!(
            "[fake] {name} boot {boot}: login:\n"
        )))
        .collect()
}

/// The size of a fake snapshot.
pub const FAKE_SNAPSHOT_BYTES: usize = 4096;

/// What the fake hypervisor writes as a snapshot of guest `uuid` built from `image`:
/// [`FAKE_SNAPSHOT_BYTES`] of text naming both, the same every time.
pub fn fake_snapshot_data(uuid: &str, image: Option<&str>) -> Vec<u8> {
    let line = format!(
        "strata fake snapshot of guest {uuid} built from image {}\n",
        image.unwrap_or("none")
    );
    line.bytes().cycle().take(FAKE_SNAPSHOT_BYTES).collect()
}

impl Hypervisor for FakeHypervisor {
    fn name(&self) -> &str {
        "fake"
    }
    fn resources(&self) -> HvFuture<'_, HostResources> {
        let r = self.resources.clone();
        Box::pin(async move { Ok(r) })
    }
    fn resize<'a>(&'a self, uuid: &'a str, spec: &'a InstanceSpec) -> HvFuture<'a, ()> {
        let r = self.with_mut(|g| {
            let guest = g.get_mut(uuid).ok_or_else(|| missing(uuid))?;
            if guest.sizing.as_ref() != Some(&spec.sizing) {
                // As a real guest: it is off while its size changes.
                guest.power = Power::Shutdown;
                guest.previous = spec.previous_sizing.clone().filter(|p| *p != spec.sizing);
                guest.sizing = Some(spec.sizing.clone());
            } else if spec.previous_sizing.is_none() {
                guest.previous = None;
            }
            Ok(())
        });
        Box::pin(async move { r })
    }
    fn list(&self) -> HvFuture<'_, Vec<(String, PowerState)>> {
        let l = self.with(|g| {
            g.iter()
                .map(|(k, v)| (k.clone(), observed(v.power)))
                .collect()
        });
        Box::pin(async move { Ok(l) })
    }
    fn spawn<'a>(&'a self, spec: &'a InstanceSpec) -> HvFuture<'a, ()> {
        let mut gate = self.spawn_gate.subscribe();
        Box::pin(async move {
            let _ = gate.wait_for(|held| !*held).await;
            let fail = {
                let mut n = self
                    .failing_spawns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let f = *n > 0;
                *n = n.saturating_sub(1);
                f
            };
            if fail {
                return Err(HvError {
                    message: format!("fake hypervisor: injected failure spawning {}", spec.name),
                    retryable: true,
                });
            }
            self.with_mut(|g| {
                g.entry(spec.uuid.clone()).or_insert(FakeGuest {
                    power: Power::Running,
                    boots: 1,
                    name: spec.name.clone(),
                    volumes: volume_disks(spec)
                        .into_iter()
                        .map(|(v, d)| (v.to_string(), d.device_name.clone()))
                        .collect(),
                    image: spec.image_id.clone(),
                    macs: spec
                        .vifs
                        .iter()
                        .map(|v| v.mac_address.to_lowercase())
                        .collect(),
                    sizing: Some(spec.sizing.clone()),
                    previous: None,
                });
            });
            Ok(())
        })
    }
    fn destroy<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, ()> {
        self.with_mut(|g| g.remove(uuid));
        Box::pin(async { Ok(()) })
    }
    fn snapshot<'a>(
        &'a self,
        uuid: &'a str,
        _req: &'a SnapshotRequest,
        dest: &'a std::path::Path,
    ) -> HvFuture<'a, ()> {
        let mut gate = self.snapshot_gate.subscribe();
        Box::pin(async move {
            let _ = gate.wait_for(|held| !*held).await;
            let fail = {
                let mut n = self
                    .failing_snapshots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let f = *n > 0;
                *n = n.saturating_sub(1);
                f
            };
            if fail {
                return Err(HvError {
                    message: format!("fake hypervisor: injected failure snapshotting {uuid}"),
                    retryable: false,
                });
            }
            let Some(image) = self.with(|g| g.get(uuid).map(|g| g.image.clone())) else {
                return Err(missing(uuid));
            };
            tokio::fs::write(dest, fake_snapshot_data(uuid, image.as_deref()))
                .await
                .map_err(|e| HvError {
                    message: format!("writing the snapshot {}: {e}", dest.display()),
                    retryable: false,
                })?;
            *self
                .snapshots_taken
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(uuid.to_string())
                .or_default() += 1;
            Ok(())
        })
    }
    fn set_power<'a>(&'a self, uuid: &'a str, power: Power) -> HvFuture<'a, ()> {
        let out = self.with_mut(|g| match g.get_mut(uuid) {
            Some(guest) => {
                if power == Power::Running && guest.power == Power::Shutdown {
                    guest.boots += 1;
                }
                guest.power = power;
                Ok(())
            }
            None => Err(missing(uuid)),
        });
        Box::pin(async move { out })
    }
    fn reboot<'a>(&'a self, uuid: &'a str, _hard: bool) -> HvFuture<'a, ()> {
        let out = self.with_mut(|g| match g.get_mut(uuid) {
            Some(guest) => {
                guest.power = Power::Running;
                guest.boots += 1;
                Ok(())
            }
            None => Err(missing(uuid)),
        });
        Box::pin(async move { out })
    }
    fn console_output<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, String> {
        let out = self.with(|g| match g.get(uuid) {
            Some(guest) => Ok((1..=guest.boots)
                .map(|b| fake_boot_log(&guest.name, b))
                .collect()),
            None => Err(missing(uuid)),
        });
        Box::pin(async move { out })
    }
    fn attached_volumes<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, Vec<String>> {
        let out = self.with(|g| match g.get(uuid) {
            Some(guest) => Ok(guest.volumes.keys().cloned().collect()),
            None => Err(missing(uuid)),
        });
        Box::pin(async move { out })
    }
    fn attach_volume<'a>(&'a self, uuid: &'a str, disk: &'a Disk) -> HvFuture<'a, ()> {
        let out = match disk.volume_id.clone() {
            None => Err(HvError {
                message: format!("disk {} names no volume", disk.device_name),
                retryable: false,
            }),
            Some(v) => self.with_mut(|g| match g.get_mut(uuid) {
                Some(guest) => {
                    guest.volumes.insert(v, disk.device_name.clone());
                    Ok(())
                }
                None => Err(missing(uuid)),
            }),
        };
        Box::pin(async move { out })
    }
    fn detach_volume<'a>(&'a self, uuid: &'a str, volume_id: &'a str) -> HvFuture<'a, ()> {
        self.with_mut(|g| {
            if let Some(guest) = g.get_mut(uuid) {
                guest.volumes.remove(volume_id);
            }
        });
        Box::pin(async { Ok(()) })
    }
    fn interfaces<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, Option<Vec<String>>> {
        let out = self.with(|g| match g.get(uuid) {
            Some(guest) => Ok(Some(guest.macs.clone())),
            None => Err(missing(uuid)),
        });
        Box::pin(async move { out })
    }
    fn attach_interface<'a>(&'a self, uuid: &'a str, vif: &'a Vif) -> HvFuture<'a, ()> {
        let out = self.with_mut(|g| match g.get_mut(uuid) {
            Some(guest) => {
                let mac = vif.mac_address.to_lowercase();
                if !guest.macs.contains(&mac) {
                    guest.macs.push(mac);
                }
                Ok(())
            }
            None => Err(missing(uuid)),
        });
        Box::pin(async move { out })
    }
    fn detach_interface<'a>(&'a self, uuid: &'a str, mac: &'a str) -> HvFuture<'a, ()> {
        let mac = mac.to_lowercase();
        self.with_mut(|g| {
            if let Some(guest) = g.get_mut(uuid) {
                guest.macs.retain(|m| *m != mac);
            }
        });
        Box::pin(async { Ok(()) })
    }
}

impl FakeHypervisor {
    /// The MAC addresses of a guest's NICs (for tests).
    pub fn interfaces_of(&self, uuid: &str) -> Vec<String> {
        self.with(|g| g.get(uuid).map(|g| g.macs.clone()).unwrap_or_default())
    }
}

// ------------------------------------------------------------------ the agent

/// The most of a guest's console log a report carries (its tail).
pub const CONSOLE_TAIL: usize = 64 * 1024;

/// What the agent remembers of an instance between passes.
#[derive(Debug, Default)]
struct Seen {
    /// The reboot sequence applied.
    reboot_seq: i64,
    /// The last report sent (its `console` left out).
    report: Option<InstanceReport>,
    /// The console tail last sent.
    console: Option<String>,
    /// The image the guest was last built from (a change is a rebuild).
    image: Option<Option<String>>,
    /// The size (and previous size) the guest was last given: a change is a resize.
    sizing: Option<(Sizing, Option<Sizing>)>,
}

/// The last `max` bytes of `s`, cut at a character boundary.
fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The node agent of one host.
pub struct NodeAgent {
    host: String,
    host_ip: String,
    server: Arc<dyn ControlPlane>,
    hv: Arc<dyn Hypervisor>,
    /// Per instance: what was applied and reported.
    seen: tokio::sync::Mutex<HashMap<String, Seen>>,
    /// Per instance: the image of the snapshot taken (or being taken) last, so that each
    /// snapshot request is carried out once, whatever the passes in the meantime.
    snapshots: Arc<Mutex<HashMap<String, String>>>,
    /// Where snapshots are written before their upload.
    work_dir: std::path::PathBuf,
}

impl NodeAgent {
    pub fn new(
        host: impl Into<String>,
        host_ip: impl Into<String>,
        server: Arc<dyn ControlPlane>,
        hv: Arc<dyn Hypervisor>,
    ) -> NodeAgent {
        NodeAgent {
            host: host.into(),
            host_ip: host_ip.into(),
            server,
            hv,
            seen: Default::default(),
            snapshots: Default::default(),
            work_dir: std::env::temp_dir().join("strata-agent"),
        }
    }

    /// Writes snapshots under `dir` (default: `strata-agent` in the system's temp dir).
    pub fn with_work_dir(mut self, dir: impl Into<std::path::PathBuf>) -> NodeAgent {
        self.work_dir = dir.into();
        self
    }

    /// Starts the snapshot `req` of instance `uuid` in the background unless it was started
    /// already: the hypervisor writes it to a file in the work dir, which is uploaded (or the
    /// failure reported) and removed. Only a control plane that cannot be reached makes a
    /// later pass try again; anything else it answers ends the request here (it answers 409
    /// for a snapshot no longer asked for, e.g. one a previous run of the agent finished).
    fn start_snapshot(&self, uuid: &str, req: &SnapshotRequest) -> bool {
        {
            let mut taken = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
            if taken.get(uuid) == Some(&req.image_id) {
                return false;
            }
            taken.insert(uuid.to_string(), req.image_id.clone());
        }
        let (hv, server, taken) = (self.hv.clone(), self.server.clone(), self.snapshots.clone());
        let (uuid, req, host) = (uuid.to_string(), req.clone(), self.host.clone());
        let dir = self.work_dir.clone();
        tokio::spawn(async move {
            let path = dir.join(format!("{uuid}.{}.snapshot", req.image_id));
            let taken_ok = async {
                tokio::fs::create_dir_all(&dir).await.map_err(|e| HvError {
                    message: format!("creating {}: {e}", dir.display()),
                    retryable: false,
                })?;
                hv.snapshot(&uuid, &req, &path).await
            }
            .await;
            let sent = match taken_ok {
                Ok(()) => server.upload_snapshot(&uuid, &req.image_id, &path).await,
                Err(e) => {
                    tracing::warn!(error = %e.message, %uuid, image = %req.image_id,
                        "agent: snapshot");
                    let fault = Fault {
                        message: e.message,
                        details: format!("{} on host {host}", hv.name()),
                        retryable: false,
                    };
                    server.snapshot_failed(&uuid, &req.image_id, &fault).await
                }
            };
            let _ = tokio::fs::remove_file(&path).await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, %uuid, image = %req.image_id, "agent: snapshot upload");
                if matches!(e, ApiError::Unreachable(_)) {
                    let mut t = taken.lock().unwrap_or_else(|p| p.into_inner());
                    if t.get(&uuid) == Some(&req.image_id) {
                        t.remove(&uuid);
                    }
                }
            }
        });
        true
    }

    /// The registration this host sends.
    pub async fn registration(&self) -> Result<HostRegistration, HvError> {
        let r = self.hv.resources().await?;
        Ok(HostRegistration {
            host: self.host.clone(),
            agent_version: strata_agent_api::VERSION.into(),
            hypervisor_type: r.hypervisor_type,
            hypervisor_version: r.hypervisor_version,
            hypervisor_hostname: self.host.clone(),
            host_ip: self.host_ip.clone(),
            vcpus: r.vcpus,
            memory_mb: r.memory_mb,
            local_gb: r.local_gb,
            cpu_info: r.cpu_info,
            supported_instances: r.supported_instances,
            traits: r.traits,
        })
    }

    /// One pass: makes the hypervisor run exactly `desired`, and reports every instance whose
    /// observed state changed since the last report. Errors of one instance are reported as
    /// its fault and do not stop the others.
    pub async fn reconcile(&self, desired: &[InstanceSpec]) -> Result<usize, HvError> {
        let running: HashMap<String, PowerState> = self.hv.list().await?.into_iter().collect();
        let mut seen = self.seen.lock().await;
        let mut acted = 0;
        for spec in desired {
            let entry = seen.entry(spec.uuid.clone()).or_insert_with(|| Seen {
                reboot_seq: spec.reboot_seq,
                ..Default::default()
            });
            // A guest already running when the agent (re)started is taken as built from the
            // image it is given.
            if entry.image.is_none() && running.contains_key(&spec.uuid) {
                entry.image = Some(spec.image_id.clone());
            }
            // A new image is a rebuild: the guest is destroyed and spawned again from it.
            let rebuild =
                running.contains_key(&spec.uuid) && entry.image.as_ref() != Some(&spec.image_id);
            let mut fault = None;
            let step: Result<(), HvError> = async {
                let sized = (spec.sizing.clone(), spec.previous_sizing.clone());
                match running.get(&spec.uuid).filter(|_| !rebuild) {
                    None => {
                        if rebuild {
                            self.hv.destroy(&spec.uuid).await?;
                        }
                        self.hv.spawn(spec).await?;
                        entry.image = Some(spec.image_id.clone());
                        entry.sizing = Some(sized);
                        acted += 1;
                        if spec.power != Power::Running {
                            self.hv.set_power(&spec.uuid, spec.power).await?;
                        }
                        entry.reboot_seq = spec.reboot_seq;
                    }
                    Some(&now) => {
                        let mut now = now;
                        if entry.sizing.as_ref() != Some(&sized) {
                            // (After a start the agent does not know; the driver checks.)
                            if entry.sizing.is_some() {
                                acted += 1;
                            }
                            self.hv.resize(&spec.uuid, spec).await?;
                            entry.sizing = Some(sized);
                            // Resizing may have powered it off.
                            now = self
                                .hv
                                .list()
                                .await?
                                .into_iter()
                                .find(|(u, _)| *u == spec.uuid)
                                .map_or(PowerState::NoState, |(_, p)| p);
                        }
                        if now != observed(spec.power) {
                            self.hv.set_power(&spec.uuid, spec.power).await?;
                            acted += 1;
                        }
                        if spec.reboot_seq > entry.reboot_seq {
                            if spec.power == Power::Running {
                                self.hv.reboot(&spec.uuid, spec.hard_reboot).await?;
                                acted += 1;
                            }
                            entry.reboot_seq = spec.reboot_seq;
                        }
                    }
                }
                // Volumes: attach those given that the guest lacks, detach the others.
                let wanted = volume_disks(spec);
                let have = self.hv.attached_volumes(&spec.uuid).await?;
                for v in have.iter().filter(|v| !wanted.iter().any(|(w, _)| w == v)) {
                    self.hv.detach_volume(&spec.uuid, v).await?;
                    acted += 1;
                }
                for (v, d) in &wanted {
                    if !have.iter().any(|h| h == v) {
                        self.hv.attach_volume(&spec.uuid, d).await?;
                        acted += 1;
                    }
                }
                // NICs (where the driver tracks them): plug the ports given, unplug the others.
                if let Some(have) = self.hv.interfaces(&spec.uuid).await? {
                    let want: Vec<String> = spec
                        .vifs
                        .iter()
                        .map(|v| v.mac_address.to_lowercase())
                        .collect();
                    for mac in have.iter().filter(|m| !want.contains(&m.to_lowercase())) {
                        self.hv.detach_interface(&spec.uuid, mac).await?;
                        acted += 1;
                    }
                    for vif in &spec.vifs {
                        let mac = vif.mac_address.to_lowercase();
                        if !have.iter().any(|h| h.to_lowercase() == mac) {
                            self.hv.attach_interface(&spec.uuid, vif).await?;
                            acted += 1;
                        }
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = step {
                fault = Some(Fault {
                    message: e.message.clone(),
                    details: format!("{} on host {}", self.hv.name(), self.host),
                    retryable: e.retryable,
                });
            }
            if let Some(req) = &spec.snapshot {
                if self.start_snapshot(&spec.uuid, req) {
                    acted += 1;
                }
            }
            let power_state = match self.hv.list().await {
                Ok(l) => l
                    .into_iter()
                    .find(|(u, _)| *u == spec.uuid)
                    .map(|(_, p)| p)
                    .unwrap_or(PowerState::NoState),
                Err(_) => PowerState::NoState,
            };
            let mut volumes = self
                .hv
                .attached_volumes(&spec.uuid)
                .await
                .unwrap_or_default();
            volumes.sort();
            let mut report = InstanceReport {
                uuid: spec.uuid.clone(),
                host: self.host.clone(),
                generation: spec.generation,
                reboot_seq: entry.reboot_seq,
                power_state,
                deleted: false,
                fault,
                console: None,
                volumes,
            };
            let console = match self.hv.console_output(&spec.uuid).await {
                Ok(c) => Some(tail(&c, CONSOLE_TAIL).to_string()),
                Err(_) => None,
            };
            let new_console = console.is_some() && console != entry.console;
            if entry.report.as_ref() != Some(&report) || new_console {
                if new_console {
                    report.console = console.clone();
                }
                match self.server.report(&report).await {
                    Ok(()) => {
                        report.console = None;
                        entry.report = Some(report);
                        if new_console {
                            entry.console = console;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, uuid = %spec.uuid, "agent: report"),
                }
            }
        }
        let wanted: std::collections::HashSet<&str> =
            desired.iter().map(|s| s.uuid.as_str()).collect();
        for uuid in running.keys().filter(|u| !wanted.contains(u.as_str())) {
            self.hv.destroy(uuid).await?;
            acted += 1;
            let report = InstanceReport {
                uuid: uuid.clone(),
                host: self.host.clone(),
                generation: 0,
                reboot_seq: 0,
                power_state: PowerState::NoState,
                deleted: true,
                fault: None,
                console: None,
                volumes: Vec::new(),
            };
            if let Err(e) = self.server.report(&report).await {
                tracing::warn!(error = %e, %uuid, "agent: report of a deleted guest");
            }
            seen.remove(uuid);
            self.snapshots
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uuid);
        }
        Ok(acted)
    }

    /// Registers (retrying until the server answers), heartbeats, and reconciles after every
    /// change of the host's desired state, until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let reg = loop {
            let attempt = async {
                let r = self.registration().await.map_err(|e| e.message)?;
                self.server.register(&r).await.map_err(|e| e.to_string())
            };
            match attempt.await {
                Ok(r) => break r,
                Err(e) => tracing::warn!(error = %e, host = %self.host, "agent: registering"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        };
        tracing::info!(host = %self.host, provider = %reg.provider_uuid, "agent: registered");
        let beat = {
            let (me, mut stop) = (self.clone(), stop.clone());
            let every = Duration::from_secs(reg.heartbeat_interval_s.max(1));
            tokio::spawn(async move {
                loop {
                    if let Err(e) = me.server.heartbeat(&me.host).await {
                        tracing::warn!(error = %e, "agent: heartbeat");
                    }
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                }
            })
        };
        let mut after = 0;
        loop {
            let next = tokio::select! {
                _ = stop.changed() => break,
                d = self.server.desired(&self.host, after, self.hv.resync_interval()) => d,
            };
            match next {
                Ok(d) => {
                    after = d.revision;
                    if let Err(e) = self.reconcile(&d.instances).await {
                        tracing::warn!(error = %e.message, "agent: reconcile");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "agent: desired state");
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        beat.abort();
    }
}
