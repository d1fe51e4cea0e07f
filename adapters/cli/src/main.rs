//! `vault-aws`: the command-line front end of the vault-aws crates.
//!
//! Vault connection settings come from the standard variables (`VAULT_ADDR`,
//! `VAULT_TOKEN`, `VAULT_CACERT`, ...; see `vault_client::ClientConfig`).

mod login;
mod proxy;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use vault_client::{ClientConfig, VaultClient};

#[derive(Parser, Debug)]
#[command(
    name = "vault-aws",
    version,
    about = "Use HashiCorp Vault / OpenBao from AWS workloads"
)]
struct Cli {
    /// Vault address; overrides VAULT_ADDR.
    #[arg(long, global = true, value_name = "URL")]
    address: Option<String>,

    /// Log level (error, warn, info, debug, trace); overrides VAULT_LOG_LEVEL.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Talk to the Vault server.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
    /// Log in to Vault with AWS credentials (aws auth method) and print the token.
    Login {
        #[command(subcommand)]
        command: login::LoginCommand,
    },
    /// Run the local authenticating, caching Vault proxy (sidecar); see docs/proxy.md.
    Proxy(proxy::ProxyArgs),
}

#[derive(Subcommand, Debug)]
enum VaultCommand {
    /// Show the server's health. Exit status: 0 ready, 2 sealed or not
    /// initialized, 1 unreachable or misconfigured.
    Health {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn init_logging(level: Option<&str>) {
    let level = level
        .map(str::to_owned)
        .or_else(|| std::env::var("VAULT_LOG_LEVEL").ok())
        .unwrap_or_else(|| "warn".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

fn client(address: Option<&str>) -> anyhow::Result<VaultClient> {
    let config = ClientConfig::from_lookup(|name| match (name, address) {
        ("VAULT_ADDR", Some(a)) => Some(a.to_owned()),
        _ => std::env::var(name).ok(),
    })?;
    Ok(VaultClient::new(config)?)
}

async fn health(client: &VaultClient, format: Format) -> anyhow::Result<ExitCode> {
    let health = client
        .health()
        .await
        .with_context(|| format!("cannot get the health of {}", client.address()))?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "address": client.address().as_str(),
                "status": health.status,
                "initialized": health.initialized,
                "sealed": health.sealed,
                "standby": health.standby,
                "performance_standby": health.performance_standby,
                "version": health.version,
                "cluster_name": health.cluster_name,
                "ready": health.is_ready(),
            })
        ),
        Format::Text => {
            println!("address      {}", client.address());
            println!("version      {}", health.version);
            println!("initialized  {}", health.initialized);
            println!("sealed       {}", health.sealed);
            println!("standby      {}", health.standby);
            if !health.cluster_name.is_empty() {
                println!("cluster      {}", health.cluster_name);
            }
        }
    }
    Ok(if health.is_ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Vault {
            command: VaultCommand::Health { format },
        } => health(&client(cli.address.as_deref())?, format).await,
        Command::Login { command } => login::run(&client(cli.address.as_deref())?, command).await,
        Command::Proxy(args) => proxy::run(args, cli.address.as_deref())
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
