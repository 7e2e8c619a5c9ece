//! Benchmarks run against a live Strata, exposed by the binary as `strata bench ...`.
//!
//! Everything here talks to a real server over HTTP on the loopback, the way a client would:
//! there are no in-process shortcuts, so the numbers include the HTTP stack, JSON, the database
//! and the token code. Five benchmarks exist today:
//!
//! - [`run_identity`] (`strata bench identity`): Keystone v3 token validation and issuance (by
//!   token and by password) at several concurrency levels for a fixed time each, reporting
//!   throughput, latency percentiles and, given the server's pid, its resident memory.
//! - [`run_up`] (`strata bench up`): the time from spawning `strata up` to the first token it
//!   issues, on a fresh data directory (bootstrap) and then on the existing one.
//! - [`run_storage`] (`strata bench storage`): image upload and download against `cp` on the
//!   same disk, with the server's memory during the upload; a volume from that image; and the
//!   latency of a snapshot, a clone and a volume from the snapshot, and the space they add.
//! - [`run_network`] (`strata bench network`): Neutron port creation at concurrency, `GET
//!   /ports` with 10,000 ports, and sequential IP allocation on an empty, a crowded and a
//!   nearly exhausted /16.
//! - [`run_compute`] (`strata bench compute`): server boots to ACTIVE at concurrency on fake
//!   hosts, `GET /servers/detail`, one scheduling decision among 10,000 hosts and the server's
//!   memory with 10,000 hosts and 100,000 servers.
//!
//! Output is a Markdown table preceded by a line naming the date, the core count, the CPU model
//! and the build profile, so a run can be pasted into `docs/benchmarks.md` as it is; `--json`
//! prints the same data as JSON. Progress goes to stderr so stdout stays pasteable.
//!
//! The client and the server share the machine, so the client's own CPU use is part of what is
//! measured; on a 2-core box the numbers are a floor for the server, not a ceiling. The pure
//! pieces (percentiles, `clouds.yaml` and `/proc` parsing) are unit-tested here; the HTTP parts
//! are exercised by running them against the binary (`cargo run -p strata-bench --example
//! bench -- identity --help`). Benchmarks never run in the test suite and never assert timings.

mod clouds;
mod compute;
mod identity;
mod keystone;
mod network;
mod procfs;
mod report;
mod stats;
mod storage;
mod up;

pub use clouds::{parse_clouds_yaml, select_cloud, CloudAuth};
pub use compute::{
    measure_compute, nova_span_us, run_compute, BootResult, ComputeBenchArgs, ComputeReport,
    ScaleResult,
};
pub use identity::{
    measure_identity, run_identity, IdentityBenchArgs, IdentityReport, LevelResult, Scenario,
};
pub use network::{
    contiguous_from, measure_network, run_network, tail_pool, AllocResult, CreateResult, Latency,
    ListResult, NetworkBenchArgs, NetworkReport,
};
pub use procfs::{
    cpu_model, parse_cpu_ticks, parse_vmrss_kib, read_cpu_secs, read_vmrss_kib, RssSampler,
};
pub use report::HostInfo;
pub use stats::{percentile, LatencySummary};
pub use storage::{
    allocated_bytes, mb_per_s, measure_storage, run_storage, size_gib_for, write_test_file,
    StorageBenchArgs, StorageReport, Transfer,
};
pub use up::{
    measure_up, run_up, time_to_first_token, up_once, MsSummary, UpBenchArgs, UpReport, UpTiming,
};
