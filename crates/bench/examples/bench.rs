//! Runs the benchmarks standalone, before (or without) the `strata bench` wiring:
//!
//! ```text
//! cargo run -p strata-bench --example bench -- identity --clouds-yaml DIR/clouds.yaml --server-pid PID
//! cargo run -p strata-bench --example bench -- up --bin target/debug/strata --data-dir "$(mktemp -d)"
//! cargo run -p strata-bench --example bench -- storage --bin target/debug/strata --data-dir /var/tmp/sb
//! cargo run -p strata-bench --example bench -- network --bin target/debug/strata --data-dir /var/tmp/nb
//! cargo run -p strata-bench --example bench -- compute --bin target/debug/strata --data-dir /var/tmp/cb
//! ```

use clap::Parser;
use strata_bench::{
    ComputeBenchArgs, IdentityBenchArgs, NetworkBenchArgs, StorageBenchArgs, UpBenchArgs,
};

#[derive(Parser)]
#[command(about = "Strata benchmarks")]
enum Cli {
    /// Keystone token validation and issuance under concurrent load
    Identity(IdentityBenchArgs),
    /// Time from spawning `strata up` to its first token
    Up(UpBenchArgs),
    /// Image and volume data paths against `cp` on the same disk
    Storage(StorageBenchArgs),
    /// Neutron port creation, listing and IP allocation
    Network(NetworkBenchArgs),
    /// Server boots, listing, scheduling at scale and memory
    Compute(ComputeBenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Identity(args) => strata_bench::run_identity(args).await,
        Cli::Up(args) => strata_bench::run_up(args).await,
        Cli::Storage(args) => strata_bench::run_storage(args).await,
        Cli::Network(args) => strata_bench::run_network(args).await,
        Cli::Compute(args) => strata_bench::run_compute(args).await,
    }
}
