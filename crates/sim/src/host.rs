//! A simulated host's runtime state, as its BMC sees it: power, the boot override, the
//! virtual CD, BIOS settings, BMC sessions, and the fault knobs tests turn.
//!
//! All of it sits behind one lock per host, held only for short, non-blocking critical
//! sections; nothing awaits or calls out with it held. Every change that a real host would
//! keep across a BMC restart (power, boot override, media, BIOS, password) is written to the
//! fleet's state file before the BMC answers, through [`StateFile`](crate::state::StateFile).
//!
//! Power changes can take time ([`Faults::power_delay`]): the BMC accepts the reset, keeps
//! reporting the old state (or `PoweringOn`/`PoweringOff`), and a timer lands the change.
//! Landing a power-on is a *boot*: the host works out what it boots from
//! ([`BootSource`]), consumes a `Once` override, applies pending BIOS settings, logs the boot
//! and hands it to the fleet's [`BootHandler`] — the seam where the deploy ramdisk and the
//! deployed OS will plug in.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::bios;
use crate::inventory::Inventory;
use crate::state::{PendingRecord, Persisted, StateFile};

/// Hosts are shared between their BMC, the control API and the fleet.
pub type SimHostHandle = Arc<SimHost>;

/// What a host does when it boots.
///
/// The simulator decides *when* a host boots and *from what*; a `BootHandler` decides what
/// that boot does. The default ([`LogBoots`]) does nothing beyond a log line (the host's own
/// boot log, shown by the control API, is kept either way). The deploy-ramdisk logic will
/// implement this trait: on [`BootSource::Network`] or [`BootSource::VirtualMedia`] start an
/// agent that talks to the conductor, on [`BootSource::Disk`] start whatever the last deploy
/// wrote to [`SimHost::disk_path`].
pub trait BootHandler: Send + Sync {
    /// Called once for every boot (power-on, restart, power cycle), after the host is `On`
    /// and its state (a consumed `Once` override, applied BIOS settings, the boot log entry)
    /// is recorded, with no lock held: the handler may call back into `host`. It runs on the
    /// task that landed the power change (a BMC request or a power-delay timer), so it must
    /// not block: spawn anything that takes time. A later power-off or reset does not wait
    /// for it; the handler should watch [`SimHost::boot_count`] or the power state if it
    /// needs to notice that the boot it serves is over.
    fn on_boot(&self, host: &SimHostHandle, source: BootSource);
}

/// The default [`BootHandler`]: a log line per boot.
pub struct LogBoots;

impl BootHandler for LogBoots {
    fn on_boot(&self, host: &SimHostHandle, source: BootSource) {
        tracing::info!(host = %host.name(), ?source, "boot");
    }
}

/// What a booting host starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BootSource {
    /// The network: PXE or UEFI HTTP boot from the first NIC.
    Network,
    /// The image inserted in the BMC's virtual CD.
    VirtualMedia { url: String },
    /// The first local disk (the host's disk file).
    Disk,
    /// Nothing bootable: the firmware setup screen, or a CD override with no CD inserted and
    /// no other device to fall back to.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PowerState {
    On,
    #[default]
    Off,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "On",
            PowerState::Off => "Off",
        }
    }
}

/// Declares a fieldless enum whose variants are spelled on the wire exactly as in Rust (the
/// DMTF spellings), with `ALL`, `as_str` and `parse`.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}

wire_enum! {
    /// `BootSourceOverrideTarget` values this BMC accepts.
    BootTarget { None, Pxe, Cd, Hdd, UefiHttp, BiosSetup }
}

wire_enum! {
    /// `BootSourceOverrideEnabled`.
    BootEnabled { Disabled, Once, Continuous }
}

wire_enum! {
    /// `BootSourceOverrideMode`.
    #[allow(clippy::upper_case_acronyms)]
    BootMode { UEFI, Legacy }
}

wire_enum! {
    /// `ResetType` values of `#ComputerSystem.Reset`.
    ResetType {
        On, ForceOn, ForceOff, GracefulShutdown, GracefulRestart, ForceRestart, Nmi,
        PushPowerButton, PowerCycle,
    }
}

/// The boot override (`Boot` of the ComputerSystem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootOverride {
    pub target: BootTarget,
    pub enabled: BootEnabled,
    pub mode: BootMode,
}

impl Default for BootOverride {
    fn default() -> Self {
        BootOverride {
            target: BootTarget::None,
            enabled: BootEnabled::Disabled,
            mode: BootMode::UEFI,
        }
    }
}

/// The BMC's virtual CD slot (`Managers/BMC/VirtualMedia/Cd`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VirtualMedia {
    /// The image URL given to `InsertMedia` (not fetched).
    pub image: Option<String>,
    pub inserted: bool,
    pub write_protected: bool,
}

/// One boot, as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// 1 for the host's first boot, counting across simulator restarts.
    pub seq: u64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// What powered it on: a Redfish `ResetType`, an IPMI chassis control (`ipmi on`,
    /// `ipmi cycle`, `ipmi reset`), `control` or `resume` (a power change in flight when the
    /// simulator stopped).
    pub reason: String,
    /// The boot device used: the override target if one was enabled, else the default.
    pub target: BootTarget,
    pub mode: BootMode,
    pub source: BootSource,
}

/// Knobs a test turns to make the host misbehave. Plain data: read with
/// [`SimHost::faults`], set with [`SimHost::set_faults`] (or the control API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The BMC answers nothing: new connections are closed at once, open ones are cut; IPMI
    /// datagrams are dropped.
    pub unreachable: bool,
    /// How long a power change takes to land after the BMC accepted it.
    #[serde(rename = "power_delay_ms", with = "millis")]
    pub power_delay: Duration,
    /// While a power change is in flight, report `PoweringOn`/`PoweringOff` rather than the
    /// old state.
    pub transitional_power_states: bool,
    /// `ComputerSystem.Reset` fails with a Redfish 500, IPMI Chassis Control with completion
    /// code 0xFF, and the power does not change.
    pub fail_power_actions: bool,
    /// The BMC's password, replacing the fleet's (so the controller's becomes wrong), for
    /// Redfish and IPMI alike. Changing the effective password ends every open session (IPMI
    /// sessions too). Kept across restarts.
    pub password: Option<String>,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// A BMC login session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub token: String,
    pub user: String,
}

/// Why a power action was refused.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("the power action failed (injected fault)")]
    Injected,
    /// A restart that needs the power on (IPMI's power cycle and hard reset) of a host that
    /// is off.
    #[error("the host is off")]
    Off,
}

/// How long the boot log is (older entries are dropped).
const BOOT_LOG_LEN: usize = 64;

/// A power change accepted but not landed yet.
#[derive(Debug)]
struct PendingPower {
    target: PowerState,
    /// Landing it boots the host (power-on, restart, cycle).
    boot: bool,
    reason: String,
    generation: u64,
    timer: Option<tokio::task::AbortHandle>,
}

#[derive(Debug, Default)]
struct HostState {
    power: PowerState,
    pending: Option<PendingPower>,
    /// Bumped on every change; a pending power change lands only if it is still the latest.
    generation: u64,
    boot: BootOverride,
    virtual_media: VirtualMedia,
    bios: BTreeMap<String, Value>,
    bios_pending: BTreeMap<String, Value>,
    bios_applied_at: Option<String>,
    boot_log: Vec<BootRecord>,
    boots: u64,
    faults: Faults,
    sessions: BTreeMap<String, Session>,
    next_session: u64,
}

/// Where a host's BMC listens, once it does.
#[derive(Debug, Clone, Serialize)]
pub struct BmcEndpoint {
    /// `http://127.0.0.1:8100` or `https://…`.
    pub base_url: String,
    pub port: u16,
    /// The IPMI (RMCP+ over UDP) address, unless the fleet serves no IPMI.
    pub ipmi: Option<std::net::SocketAddr>,
}

/// One simulated host and its BMC.
pub struct SimHost {
    name: String,
    index: u32,
    inventory: Inventory,
    disk_path: PathBuf,
    username: String,
    fleet_password: String,
    default_boot: BootTarget,
    handler: Arc<dyn BootHandler>,
    store: Arc<StateFile>,
    bmc: OnceLock<BmcEndpoint>,
    state: Mutex<HostState>,
}

/// The parts of [`SimHost`] fixed when it is made.
pub(crate) struct HostSetup {
    pub name: String,
    pub index: u32,
    pub inventory: Inventory,
    pub disk_path: PathBuf,
    pub username: String,
    pub password: String,
    pub default_boot: BootTarget,
    pub power_delay: Duration,
    pub handler: Arc<dyn BootHandler>,
    pub store: Arc<StateFile>,
}

impl SimHost {
    /// A host in the state `saved` (from the state file), or new: off, no override, no media,
    /// default BIOS.
    pub(crate) fn new(setup: HostSetup, saved: Option<Persisted>) -> SimHostHandle {
        let mut st = HostState {
            bios: bios::defaults(),
            faults: Faults {
                power_delay: setup.power_delay,
                ..Faults::default()
            },
            ..HostState::default()
        };
        if let Some(p) = saved {
            st.power = p.power;
            st.boot = p.boot;
            st.virtual_media = p.virtual_media;
            // Attributes this version no longer knows are dropped, new ones get defaults.
            for (k, v) in p.bios {
                if let Some(slot) = st.bios.get_mut(&k) {
                    *slot = v;
                }
            }
            st.bios_pending = p.bios_pending;
            st.bios_applied_at = p.bios_applied_at;
            st.boots = p.boot_log.last().map_or(0, |b| b.seq);
            st.boot_log = p.boot_log;
            st.faults.password = p.password;
            st.pending = p.pending.map(|r| PendingPower {
                target: r.target,
                boot: r.boot,
                reason: "resume".to_string(),
                generation: 0,
                timer: None,
            });
        }
        Arc::new(SimHost {
            name: setup.name,
            index: setup.index,
            inventory: setup.inventory,
            disk_path: setup.disk_path,
            username: setup.username,
            fleet_password: setup.password,
            default_boot: setup.default_boot,
            handler: setup.handler,
            store: setup.store,
            bmc: OnceLock::new(),
            state: Mutex::new(st),
        })
    }

    /// `sim-0000`, `sim-0001`, …
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The system UUID, also the Redfish system id.
    pub fn uuid(&self) -> &str {
        &self.inventory.system.uuid
    }

    /// The sparse file behind the first disk (`/dev/sda`).
    pub fn disk_path(&self) -> &std::path::Path {
        &self.disk_path
    }

    /// Where the BMC listens (`None` before the fleet has bound it).
    pub fn bmc(&self) -> Option<&BmcEndpoint> {
        self.bmc.get()
    }

    pub(crate) fn set_bmc(&self, endpoint: BmcEndpoint) {
        let _ = self.bmc.set(endpoint);
    }

    /// The BMC user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The BMC password in force: the fleet's, unless a fault replaced it.
    pub fn password(&self) -> String {
        let st = self.lock();
        st.faults
            .password
            .clone()
            .unwrap_or_else(|| self.fleet_password.clone())
    }

    fn lock(&self) -> MutexGuard<'_, HostState> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // --- faults -----------------------------------------------------------------------------

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the fault knobs. A change of the effective password ends every session.
    pub fn set_faults(&self, faults: Faults) {
        let mut st = self.lock();
        if st.faults.password != faults.password {
            st.sessions.clear();
        }
        st.faults = faults;
        self.save(&mut st);
    }

    /// Whether the BMC should drop this connection (the `unreachable` fault).
    pub fn unreachable(&self) -> bool {
        self.lock().faults.unreachable
    }

    // --- power ------------------------------------------------------------------------------

    /// The landed power state.
    pub fn power(&self) -> PowerState {
        self.lock().power
    }

    /// The power state a Redfish client sees: the landed one, or while a change is in flight
    /// and the `transitional_power_states` fault is set, `PoweringOn`/`PoweringOff`.
    pub fn reported_power(&self) -> &'static str {
        let st = self.lock();
        match &st.pending {
            Some(p) if st.faults.transitional_power_states => match p.target {
                PowerState::On => "PoweringOn",
                PowerState::Off => "PoweringOff",
            },
            _ => st.power.as_str(),
        }
    }

    /// A `ComputerSystem.Reset`. Idempotent where the hardware is: `On` when on (or going on)
    /// and `ForceOff`/`GracefulShutdown` when off do nothing; `Nmi` is accepted and changes
    /// nothing. Restarts and power cycles of a host that is off power it on. With a power
    /// delay the change lands later (a newer action replaces one in flight); must then be
    /// called inside a tokio runtime.
    pub fn reset(self: &Arc<Self>, kind: ResetType) -> Result<(), PowerError> {
        self.reset_as(kind, kind.as_str(), false)
    }

    /// [`SimHost::reset`], recording `reason` in the boot log; with `only_if_on`, a host that
    /// is off (and not heading on) is left so and [`PowerError::Off`] returned — IPMI's power
    /// cycle and hard reset, which the spec says to refuse on a powered-down system.
    pub(crate) fn reset_as(
        self: &Arc<Self>,
        kind: ResetType,
        reason: &str,
        only_if_on: bool,
    ) -> Result<(), PowerError> {
        let mut st = self.lock();
        if st.faults.fail_power_actions {
            return Err(PowerError::Injected);
        }
        let heading = st.pending.as_ref().map_or(st.power, |p| p.target);
        if only_if_on && heading == PowerState::Off {
            return Err(PowerError::Off);
        }
        let (target, boot) = match kind {
            ResetType::On | ResetType::ForceOn if heading == PowerState::On => return Ok(()),
            ResetType::ForceOff | ResetType::GracefulShutdown if heading == PowerState::Off => {
                return Ok(())
            }
            ResetType::Nmi => return Ok(()),
            ResetType::ForceOff | ResetType::GracefulShutdown => (PowerState::Off, false),
            ResetType::PushPowerButton if heading == PowerState::On => (PowerState::Off, false),
            ResetType::On
            | ResetType::ForceOn
            | ResetType::PushPowerButton
            | ResetType::GracefulRestart
            | ResetType::ForceRestart
            | ResetType::PowerCycle => (PowerState::On, true),
        };
        let delay = st.faults.power_delay;
        if delay.is_zero() {
            let booted = self.land(&mut st, target, boot, reason);
            drop(st);
            self.after_landing(booted);
            return Ok(());
        }
        st.generation += 1;
        let generation = st.generation;
        let host = self.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            host.land_pending(generation);
        });
        if let Some(old) = st.pending.take() {
            old.timer.inspect(|t| t.abort());
        }
        st.pending = Some(PendingPower {
            target,
            boot,
            reason: reason.to_string(),
            generation,
            timer: Some(timer.abort_handle()),
        });
        self.save(&mut st);
        Ok(())
    }

    /// Sets the power at once, whatever the faults say: the control API's power button (or
    /// plug). Turning an off host on boots it. Cancels a change in flight.
    pub fn set_power(self: &Arc<Self>, target: PowerState) {
        let mut st = self.lock();
        if let Some(old) = st.pending.take() {
            old.timer.inspect(|t| t.abort());
        }
        let boot = target == PowerState::On && st.power == PowerState::Off;
        let booted = self.land(&mut st, target, boot, "control");
        drop(st);
        self.after_landing(booted);
    }

    /// Lands a power change that was in flight when the simulator last stopped.
    pub(crate) fn resume_pending(self: &Arc<Self>) {
        let mut st = self.lock();
        let Some(p) = st.pending.take() else { return };
        let booted = self.land(&mut st, p.target, p.boot, &p.reason);
        drop(st);
        self.after_landing(booted);
    }

    /// Stops the power-delay timer (the simulator is stopping); the change stays recorded
    /// as in flight and lands at the next start.
    pub(crate) fn stop_timers(&self) {
        if let Some(p) = self.lock().pending.as_mut() {
            p.timer.take().inspect(|t| t.abort());
        }
    }

    fn land_pending(self: &Arc<Self>, generation: u64) {
        let mut st = self.lock();
        match &st.pending {
            Some(p) if p.generation == generation => {}
            _ => return,
        }
        let Some(p) = st.pending.take() else { return };
        let booted = self.land(&mut st, p.target, p.boot, &p.reason);
        drop(st);
        self.after_landing(booted);
    }

    /// Applies a power change under the lock; returns what the host boots from, if it boots.
    fn land(
        &self,
        st: &mut HostState,
        target: PowerState,
        boot: bool,
        reason: &str,
    ) -> Option<BootSource> {
        if let Some(old) = st.pending.take() {
            old.timer.inspect(|t| t.abort());
        }
        st.power = target;
        let source = boot.then(|| self.boot(st, reason));
        self.save(st);
        source
    }

    fn after_landing(self: &Arc<Self>, booted: Option<BootSource>) {
        if let Some(source) = booted {
            self.handler.on_boot(self, source);
        }
    }

    /// A boot, under the lock: what it starts from, with the override consumed and pending
    /// BIOS settings applied, as real firmware does during POST.
    fn boot(&self, st: &mut HostState, reason: &str) -> BootSource {
        let overridden =
            st.boot.enabled != BootEnabled::Disabled && st.boot.target != BootTarget::None;
        let target = if overridden {
            st.boot.target
        } else {
            self.default_boot
        };
        let source = if target == BootTarget::BiosSetup {
            BootSource::None
        } else {
            // A device with nothing to boot (an empty CD drive): firmware falls through to
            // the default device.
            device_source(target, &st.virtual_media)
                .or_else(|| device_source(self.default_boot, &st.virtual_media))
                .unwrap_or(BootSource::None)
        };
        if st.boot.enabled == BootEnabled::Once {
            st.boot.enabled = BootEnabled::Disabled;
        }
        if !st.bios_pending.is_empty() {
            let pending = std::mem::take(&mut st.bios_pending);
            st.bios.extend(pending);
            st.bios_applied_at = Some(now_rfc3339());
        }
        st.boots += 1;
        st.boot_log.push(BootRecord {
            seq: st.boots,
            at: now_rfc3339(),
            reason: reason.to_string(),
            target,
            mode: st.boot.mode,
            source: source.clone(),
        });
        let excess = st.boot_log.len().saturating_sub(BOOT_LOG_LEN);
        st.boot_log.drain(..excess);
        source
    }

    /// How many times the host has booted (across simulator restarts).
    pub fn boot_count(&self) -> u64 {
        self.lock().boots
    }

    /// The most recent boots, oldest first.
    pub fn boot_log(&self) -> Vec<BootRecord> {
        self.lock().boot_log.clone()
    }

    // --- boot override ----------------------------------------------------------------------

    pub fn boot_override(&self) -> BootOverride {
        self.lock().boot.clone()
    }

    /// Sets the parts of the boot override given (a Redfish `PATCH` of `Boot`).
    pub fn set_boot_override(
        &self,
        target: Option<BootTarget>,
        enabled: Option<BootEnabled>,
        mode: Option<BootMode>,
    ) {
        let mut st = self.lock();
        if let Some(t) = target {
            st.boot.target = t;
        }
        if let Some(e) = enabled {
            st.boot.enabled = e;
        }
        if let Some(m) = mode {
            st.boot.mode = m;
        }
        self.save(&mut st);
    }

    // --- virtual media ----------------------------------------------------------------------

    pub fn virtual_media(&self) -> VirtualMedia {
        self.lock().virtual_media.clone()
    }

    /// `VirtualMedia.InsertMedia`. Returns `false` (and changes nothing) if an image is
    /// already inserted: eject it first, as on most BMCs.
    pub fn insert_media(&self, image: &str, inserted: bool, write_protected: bool) -> bool {
        let mut st = self.lock();
        if st.virtual_media.inserted {
            return false;
        }
        st.virtual_media = VirtualMedia {
            image: Some(image.to_string()),
            inserted,
            write_protected,
        };
        self.save(&mut st);
        true
    }

    /// `VirtualMedia.EjectMedia`; ejecting an empty drive does nothing.
    pub fn eject_media(&self) {
        let mut st = self.lock();
        if st.virtual_media == VirtualMedia::default() {
            return;
        }
        st.virtual_media = VirtualMedia::default();
        self.save(&mut st);
    }

    // --- BIOS -------------------------------------------------------------------------------

    /// The BIOS attributes in effect.
    pub fn bios(&self) -> BTreeMap<String, Value> {
        self.lock().bios.clone()
    }

    /// Settings waiting for the next boot, and when settings were last applied.
    pub fn bios_pending(&self) -> (BTreeMap<String, Value>, Option<String>) {
        let st = self.lock();
        (st.bios_pending.clone(), st.bios_applied_at.clone())
    }

    /// Adds (already validated) settings to apply at the next boot.
    pub fn stage_bios(&self, attributes: BTreeMap<String, Value>) {
        let mut st = self.lock();
        st.bios_pending.extend(attributes);
        self.save(&mut st);
    }

    /// `Bios.ResetBios`: every attribute back to its default at the next boot.
    pub fn stage_bios_defaults(&self) {
        let mut st = self.lock();
        st.bios_pending = bios::defaults();
        self.save(&mut st);
    }

    // --- sessions ---------------------------------------------------------------------------

    /// Whether `user`/`password` are this BMC's credentials.
    pub fn credentials_match(&self, user: &str, password: &str) -> bool {
        user == self.username && password == self.password()
    }

    /// Logs in: a new session, or `None` for wrong credentials.
    pub fn create_session(&self, user: &str, password: &str) -> Option<Session> {
        if !self.credentials_match(user, password) {
            return None;
        }
        let mut st = self.lock();
        st.next_session += 1;
        let session = Session {
            id: st.next_session.to_string(),
            token: uuid::Uuid::new_v4().simple().to_string(),
            user: user.to_string(),
        };
        st.sessions.insert(session.id.clone(), session.clone());
        Some(session)
    }

    pub fn session_by_token(&self, token: &str) -> Option<Session> {
        let st = self.lock();
        st.sessions.values().find(|s| s.token == token).cloned()
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.lock().sessions.values().cloned().collect()
    }

    pub fn session(&self, id: &str) -> Option<Session> {
        self.lock().sessions.get(id).cloned()
    }

    /// Logs out; `false` if there was no such session.
    pub fn delete_session(&self, id: &str) -> bool {
        self.lock().sessions.remove(id).is_some()
    }

    // --- persistence ------------------------------------------------------------------------

    /// Records the host's durable state (under its lock, so saves of one host never land out
    /// of order).
    fn save(&self, st: &mut HostState) {
        let snapshot = Persisted {
            power: st.power,
            pending: st.pending.as_ref().map(|p| PendingRecord {
                target: p.target,
                boot: p.boot,
            }),
            boot: st.boot.clone(),
            virtual_media: st.virtual_media.clone(),
            bios: st.bios.clone(),
            bios_pending: st.bios_pending.clone(),
            bios_applied_at: st.bios_applied_at.clone(),
            password: st.faults.password.clone(),
            boot_log: st.boot_log.clone(),
        };
        self.store.save(&self.name, snapshot);
    }
}

/// What booting from `target` starts, if the device has something to boot.
fn device_source(target: BootTarget, media: &VirtualMedia) -> Option<BootSource> {
    match target {
        BootTarget::Pxe | BootTarget::UefiHttp => Some(BootSource::Network),
        BootTarget::Hdd => Some(BootSource::Disk),
        BootTarget::Cd => match media {
            VirtualMedia {
                image: Some(url),
                inserted: true,
                ..
            } => Some(BootSource::VirtualMedia { url: url.clone() }),
            _ => None,
        },
        BootTarget::None | BootTarget::BiosSetup => None,
    }
}

/// The current time, RFC 3339 UTC with seconds (`2026-11-22T07:00:50Z`).
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0);
    let now = now.unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
