//! `strata bmc`: an operator's hands on a BMC, through the same `strata-ipmi` code the `ipmi`
//! BMC driver uses: `strata bmc ipmi ... power status` instead of `ipmitool -I lanplus ...
//! power status`, and `strata bmc ipmi-serve`, a BMC in front of an in-memory machine for
//! manual tests (ipmitool against it, or the driver).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use strata_ipmi::{
    BootDevice, BootSource, ChassisAction, CipherSuite, ClientOptions, Credentials, FakeBmc,
    IpmiClient, IpmiServer,
};

#[derive(clap::Subcommand, Debug)]
pub enum BmcCommand {
    /// Send one IPMI 2.0 (lanplus) command to a BMC.
    Ipmi(IpmiArgs),
    /// Serve IPMI 2.0 (lanplus) for an in-memory machine until SIGINT/SIGTERM.
    IpmiServe(IpmiServeArgs),
}

#[derive(clap::Args, Debug)]
pub struct IpmiArgs {
    /// The BMC's address, HOST[:PORT] (port 623 if none)
    #[arg(long)]
    pub address: String,
    /// The BMC user name
    #[arg(long, short = 'U')]
    pub username: String,
    /// The password (else the STRATA_BMC_PASSWORD variable, which `ps` does not show)
    #[arg(long, short = 'P', env = "STRATA_BMC_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Only this RMCP+ cipher suite (3 or 17) [default: 17 if the BMC offers it, else 3]
    #[arg(long, short = 'C', value_parser = ["3", "17"])]
    pub cipher_suite: Option<String>,
    /// Seconds to wait for each answer
    #[arg(long, default_value_t = 2)]
    pub timeout: u64,
    /// Retransmissions after the first attempt
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    #[command(subcommand)]
    pub action: IpmiAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum IpmiAction {
    /// Chassis power: status, or an action
    Power {
        #[arg(value_enum)]
        op: PowerOp,
    },
    /// The boot device override: set one, or `show` the present one
    Bootdev {
        #[arg(value_enum)]
        device: BootdevArg,
        /// For every boot, not only the next one
        #[arg(long)]
        persistent: bool,
        /// Boot in UEFI mode
        #[arg(long)]
        efi: bool,
    },
    /// The BMC's identity (Get Device ID)
    Info,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PowerOp {
    Status,
    On,
    Off,
    Cycle,
    Reset,
    /// ACPI soft shutdown
    Soft,
    /// A diagnostic interrupt (NMI)
    Diag,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum BootdevArg {
    Pxe,
    Disk,
    Cdrom,
    Bios,
    Safe,
    Diag,
    /// Remove the override
    None,
    /// Print the present override
    Show,
}

#[derive(clap::Args, Debug)]
pub struct IpmiServeArgs {
    /// The UDP address to serve on
    #[arg(long, default_value = "127.0.0.1:6230")]
    pub listen: SocketAddr,
    /// The one user name the BMC admits (at ADMINISTRATOR privilege)
    #[arg(long, short = 'U', default_value = "admin")]
    pub username: String,
    /// The password (else the STRATA_BMC_PASSWORD variable)
    #[arg(long, short = 'P', env = "STRATA_BMC_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Start with the machine powered on
    #[arg(long)]
    pub power_on: bool,
}

pub async fn run(command: BmcCommand) -> anyhow::Result<()> {
    match command {
        BmcCommand::Ipmi(args) => ipmi(args).await,
        BmcCommand::IpmiServe(args) => ipmi_serve(args).await,
    }
}

async fn ipmi(args: IpmiArgs) -> anyhow::Result<()> {
    let target = if args
        .address
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !args.address.ends_with(']')
    {
        args.address.clone()
    } else {
        format!("{}:623", args.address)
    };
    let addr = tokio::net::lookup_host(&target)
        .await
        .with_context(|| format!("resolving {target}"))?
        .next()
        .ok_or_else(|| anyhow!("{target} resolves to no address"))?;
    let mut options = ClientOptions {
        timeout: Duration::from_secs(args.timeout.max(1)),
        retries: args.retries,
        ..ClientOptions::default()
    };
    if let Some(id) = &args.cipher_suite {
        let suite = id.parse().ok().and_then(CipherSuite::from_id);
        options.cipher_suites = vec![suite.ok_or_else(|| anyhow!("cipher suite {id}"))?];
    }
    let mut bmc = IpmiClient::connect(addr, &args.username, &args.password, options).await?;
    let result = act(&mut bmc, args.action).await;
    // Free the BMC's session slot whatever happened; the command's outcome is what matters.
    let _ = bmc.close().await;
    result
}

async fn act(bmc: &mut IpmiClient, action: IpmiAction) -> anyhow::Result<()> {
    match action {
        IpmiAction::Power { op } => {
            let action = match op {
                PowerOp::Status => {
                    let on = bmc.power_status().await?;
                    println!("Chassis Power is {}", if on { "on" } else { "off" });
                    return Ok(());
                }
                PowerOp::On => ChassisAction::PowerUp,
                PowerOp::Off => ChassisAction::PowerDown,
                PowerOp::Cycle => ChassisAction::PowerCycle,
                PowerOp::Reset => ChassisAction::HardReset,
                PowerOp::Soft => ChassisAction::SoftShutdown,
                PowerOp::Diag => ChassisAction::PulseDiag,
            };
            bmc.chassis_control(action).await?;
            println!("Chassis Power Control: {action:?}");
        }
        IpmiAction::Bootdev {
            device,
            persistent,
            efi,
        } => {
            let device = match device {
                BootdevArg::Show => {
                    let dev = bmc.boot_device().await?;
                    println!(
                        "Boot device: {:?}{}{}",
                        dev.device,
                        if dev.persistent { ", persistent" } else { "" },
                        if dev.efi { ", EFI" } else { "" }
                    );
                    return Ok(());
                }
                BootdevArg::Pxe => BootSource::Pxe,
                BootdevArg::Disk => BootSource::Disk,
                BootdevArg::Cdrom => BootSource::Cdrom,
                BootdevArg::Bios => BootSource::Bios,
                BootdevArg::Safe => BootSource::Safe,
                BootdevArg::Diag => BootSource::Diag,
                BootdevArg::None => BootSource::NoOverride,
            };
            bmc.set_boot_device(BootDevice {
                device,
                persistent,
                efi,
            })
            .await?;
            println!("Set Boot Device to {device:?}");
        }
        IpmiAction::Info => {
            let id = bmc.device_id().await?;
            println!("Device ID                 : {}", id.device_id);
            println!("Device Revision           : {}", id.device_revision);
            println!(
                "Firmware Revision         : {}.{:02x}",
                id.firmware_major, id.firmware_minor
            );
            println!(
                "IPMI Version              : {}.{}",
                id.ipmi_version & 0xF,
                id.ipmi_version >> 4
            );
            println!("Manufacturer ID           : {}", id.manufacturer_id);
            println!("Product ID                : {}", id.product_id);
        }
    }
    Ok(())
}

async fn ipmi_serve(args: IpmiServeArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let machine = Arc::new(FakeBmc::new(args.power_on));
    let server = IpmiServer::bind(
        args.listen,
        Credentials::new(args.username, args.password),
        machine.clone(),
    )
    .await
    .with_context(|| format!("serving IPMI on {}", args.listen))?;
    // The line scripts wait for.
    println!(
        "IPMI BMC (fake machine) listening on udp {}",
        server.local_addr()
    );
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    let state = machine.snapshot();
    println!(
        "stopped; machine powered {}, boot device {:?}, {} power actions",
        if state.powered_on { "on" } else { "off" },
        state.boot,
        state.actions.len()
    );
    Ok(())
}
