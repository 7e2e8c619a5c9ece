//! Simulated bare-metal hosts with real BMCs: what `strata sim` serves.
//!
//! Strata's bare-metal service drives hosts through BMC drivers (Redfish, IPMI), and the
//! project's rule is that tests exercise the *real* driver: so the simulator is not a mock
//! of the driver's trait but a protocol simulator. Each host gets its own BMC on its own
//! loopback port ([`redfish`]: DMTF Redfish as real BMCs and sushy-tools spell it), so that
//! sushy — and through it Ironic — or `curl` work against it unchanged, and anything our
//! driver relies on that real BMCs do not offer shows up as a failure against sushy in the
//! end-to-end tests rather than in a data centre.
//!
//! The shape follows from that:
//!
//! - A host ([`SimHost`]) is hardware ([`Inventory`], deterministic from the fleet seed and
//!   the host's index, so MACs and UUIDs are known before the fleet starts) plus runtime
//!   state behind one lock: power, boot override, virtual CD, BIOS, sessions, and **fault
//!   knobs as plain fields** ([`Faults`]: unreachable, slow or failing power, a changed
//!   password) for the fault tests a controller needs.
//! - The same BMC also speaks IPMI 2.0 over LAN (module `ipmi`: RMCP+ on a UDP port of
//!   its own, `strata-ipmi`'s server with the host behind its backend trait), so `ipmitool -I
//!   lanplus` and Strata's `ipmi` driver work too. It is a second view of one machine, not a
//!   second machine: power actions, the boot override and the fault knobs are the same ones
//!   Redfish sees.
//! - Booting is a seam ([`BootHandler`]): the host decides *that* it boots and *from what*
//!   ([`BootSource`]: network, virtual media, disk) and records it; what the boot then does
//!   (run a deploy ramdisk that writes [`SimHost::disk_path`], start a deployed agent) is
//!   the handler's business, added later without touching the BMC.
//! - What a real host keeps across a BMC reboot (power, override, media, BIOS, disk) the
//!   simulated one keeps across a simulator restart: `<data-dir>/state.json`, written before
//!   the BMC answers, and a sparse disk file per host.
//! - A [`Fleet`] runs in the caller's tokio runtime, so `strata sim` is a thin command and
//!   `strata up` or a test can embed one. Its control API ([`control`], `/sim/v1`) shows
//!   each host's state and boot log and turns the fault knobs; `hosts.json` in the data dir
//!   lists what a controller needs to enrol each host.
//! - HTTPS is optional per fleet: a CA and BMC certificate made into the data dir ([`tls`]),
//!   so a client's certificate verification is tested for real.
//!
//! See `docs/simulator.md` for the operator's view.

pub mod bios;
pub mod control;
mod error;
mod fleet;
mod host;
pub mod inventory;
mod ipmi;
mod listener;
pub mod redfish;
mod state;
pub mod tls;

pub use error::SimError;
pub use fleet::{Fleet, FleetOptions, HostEntry};
pub use host::{
    BmcEndpoint, BootEnabled, BootHandler, BootMode, BootOverride, BootRecord, BootSource,
    BootTarget, Faults, LogBoots, PowerError, PowerState, ResetType, Session, SimHost,
    SimHostHandle, VirtualMedia,
};
pub use inventory::{Cpu, Disk, Firmware, Inventory, Nic, SystemVendor};
