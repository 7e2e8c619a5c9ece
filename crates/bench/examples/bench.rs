//! Runs the benchmarks standalone, before (or without) the `strata bench` wiring:
//!
//! ```text
//! cargo run -p strata-bench --example bench -- identity --clouds-yaml DIR/clouds.yaml --server-pid PID
//! cargo run -p strata-bench --example bench -- up --bin target/debug/strata --data-dir "$(mktemp -d)"
//! ```

use clap::Parser;
use strata_bench::{IdentityBenchArgs, UpBenchArgs};

#[derive(Parser)]
#[command(about = "Strata benchmarks")]
enum Cli {
    /// Keystone token validation and issuance under concurrent load
    Identity(IdentityBenchArgs),
    /// Time from spawning `strata up` to its first token
    Up(UpBenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Identity(args) => strata_bench::run_identity(args).await,
        Cli::Up(args) => strata_bench::run_up(args).await,
    }
}
