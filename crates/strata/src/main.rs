//! `strata`: one binary, several roles. This file only parses the command line and hands off;
//! each role is wired in its own module.

mod agent;
mod bmc;
mod clouds;
mod serve;
mod sim;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's allocator: the API builds and drops many small JSON values per
/// request, and under glibc a 1,000-server listing spent a third of its time in
/// `malloc_consolidate`, page faults and trimming (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "strata", version, about = "A private cloud in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on this machine on an embedded SQLite database in a data dir.
    Up(serve::UpArgs),
    /// Run one control-plane replica against the database named in the configuration.
    Server(serve::ServerArgs),
    /// Run this machine's compute node agent against a control plane.
    Agent(agent::AgentArgs),
    /// Serve simulated bare-metal hosts with Redfish BMCs on loopback.
    Sim(sim::SimArgs),
    /// Talk IPMI to a BMC, or serve IPMI for a fake machine.
    Bmc {
        #[command(subcommand)]
        command: bmc::BmcCommand,
    },
    /// Benchmarks against a running Strata (results go to docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Token validate / issue-by-token / issue-by-password rates and latencies, server RSS.
    Identity(strata_bench::IdentityBenchArgs),
    /// Time from `strata up` to the first token, on a new and on an existing data dir.
    Up(strata_bench::UpBenchArgs),
    /// Image upload/download vs `cp`, server RSS while uploading, volume from image,
    /// snapshot/clone latency and the space they add (starts its own `strata up`).
    Storage(strata_bench::StorageBenchArgs),
    /// Neutron port create rate and latency, `GET /ports` with 10,000 ports, and IP
    /// allocation on crowded /16s (starts its own `strata up`).
    Network(strata_bench::NetworkBenchArgs),
    /// Server boots to ACTIVE on fake hosts, `GET /servers/detail`, one scheduling decision
    /// among 10,000 hosts, memory with 100,000 servers (starts its own `strata up`).
    Compute(strata_bench::ComputeBenchArgs),
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply pending migrations and exit.
    Migrate {
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (`sqlite://PATH` or `postgres://…`), overriding the configuration.
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    serve::init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Up(args) => serve::up(args).await,
            Command::Server(args) => serve::server(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Sim(args) => sim::run(args).await,
            Command::Bmc { command } => bmc::run(command).await,
            Command::Bench {
                command: BenchCommand::Identity(args),
            } => strata_bench::run_identity(args).await,
            Command::Bench {
                command: BenchCommand::Up(args),
            } => strata_bench::run_up(args).await,
            Command::Bench {
                command: BenchCommand::Storage(args),
            } => strata_bench::run_storage(args).await,
            Command::Bench {
                command: BenchCommand::Network(args),
            } => strata_bench::run_network(args).await,
            Command::Bench {
                command: BenchCommand::Compute(args),
            } => strata_bench::run_compute(args).await,
            Command::Db {
                command:
                    DbCommand::Migrate {
                        config,
                        database_url,
                    },
            } => serve::db_migrate(config, database_url).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: {e:#}");
            ExitCode::FAILURE
        }
    }
}
