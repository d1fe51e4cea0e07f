//! `vault-aws`: the command-line front end of the vault-aws crates.
//!
//! Vault connection settings come from the standard variables (`VAULT_ADDR`,
//! `VAULT_TOKEN`, `VAULT_CACERT`, ...; see `vault_client::ClientConfig`), with
//! the Vault CLI's habits: `--address`, `--namespace`, `--ca-cert` and
//! `--tls-skip-verify` override their variables, `--format`/`VAULT_FORMAT`
//! choose the output, the Vault CLI's single-dash spelling (`-format=json`)
//! is accepted, and without `VAULT_TOKEN` the token helper's file
//! `~/.vault-token` is used, as `vault login` leaves it.
//!
//! Exit status: 0 success; 1 an error (local or from Vault/AWS); 2 only from
//! `vault health`, for a server that is sealed or not initialized; 64 a usage
//! error (unknown flag, bad value: sysexits' `EX_USAGE`), so no script mistakes
//! a typo for a sealed Vault.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod login;
mod proxy;
mod replicate;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use vault_client::{ClientConfig, VaultClient};

/// Exit status of a usage error (sysexits.h `EX_USAGE`): never 2, which
/// `vault health` gives for a sealed server.
const EXIT_USAGE: u8 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "vault-aws",
    version,
    about = "Use HashiCorp Vault / OpenBao from AWS workloads"
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,

    /// Output format: `table` (text for people; `text` is accepted too) or `json`.
    #[arg(long, global = true, value_enum, env = "VAULT_FORMAT", default_value_t = Format::Table)]
    format: Format,

    /// Log level (error, warn, info, debug, trace); overrides VAULT_LOG_LEVEL.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// The Vault CLI's connection flags; each overrides its variable.
#[derive(Args, Debug, Clone, Default)]
pub struct Connection {
    /// Vault address; overrides VAULT_ADDR.
    #[arg(long, global = true, value_name = "URL")]
    address: Option<String>,

    /// Namespace (Vault Enterprise, OpenBao); overrides VAULT_NAMESPACE.
    #[arg(long, global = true, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// PEM file of the CA that signed Vault's certificate; overrides VAULT_CACERT.
    #[arg(long, global = true, value_name = "PATH")]
    ca_cert: Option<PathBuf>,

    /// Do not verify Vault's TLS certificate (insecure: for tests only);
    /// overrides VAULT_SKIP_VERIFY.
    #[arg(long, global = true)]
    tls_skip_verify: bool,
}

impl Connection {
    /// Whether `--address` was given.
    pub fn has_address(&self) -> bool {
        self.address.is_some()
    }

    /// The settings as one lookup: a flag wins over its variable; without
    /// `VAULT_TOKEN` and `VAULT_TOKEN_FILE`, `~/.vault-token` (the Vault CLI's
    /// token helper file) stands for `VAULT_TOKEN_FILE` when it exists.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + Clone + '_ {
        let env = |name: &str| std::env::var(name).ok();
        move |name: &str| match name {
            "VAULT_ADDR" if self.address.is_some() => self.address.clone(),
            "VAULT_NAMESPACE" if self.namespace.is_some() => self.namespace.clone(),
            "VAULT_CACERT" if self.ca_cert.is_some() => {
                self.ca_cert.as_ref().map(|p| p.display().to_string())
            }
            "VAULT_SKIP_VERIFY" if self.tls_skip_verify => Some("true".to_owned()),
            "VAULT_TOKEN_FILE" => env(name).or_else(|| {
                let set = |v: &str| env(v).is_some_and(|t| !t.trim().is_empty());
                if set("VAULT_TOKEN") {
                    return None;
                }
                let helper = PathBuf::from(env("HOME")?).join(".vault-token");
                helper.is_file().then(|| helper.display().to_string())
            }),
            _ => env(name),
        }
    }
}

/// The Vault CLI spells long flags with one dash (`-format=json`,
/// `-address=...`): accept that for our global flags, up to a `--`.
fn vault_cli_spelling(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    const LONG: [&str; 6] = [
        "address",
        "namespace",
        "ca-cert",
        "tls-skip-verify",
        "format",
        "log-level",
    ];
    let mut done = false;
    args.into_iter()
        .map(|arg| {
            if done {
                return arg;
            }
            let Some(text) = arg.to_str() else { return arg };
            if text == "--" {
                done = true;
                return arg;
            }
            match text.strip_prefix('-') {
                Some(rest)
                    if !rest.starts_with('-')
                        && LONG.contains(&rest.split('=').next().unwrap_or_default()) =>
                {
                    format!("--{rest}").into()
                }
                _ => arg,
            }
        })
        .collect()
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
    /// Replicate Vault KV v2 secrets into AWS Secrets Manager (and the S3
    /// copy) once, or continuously with --watch; settings from REPLICATE_*
    /// (see docs/replicate.md).
    /// Exit status: 0 success, 1 failures or error.
    // Boxed: its flags make it far larger than the other commands.
    Replicate(Box<replicate::ReplicateArgs>),
    /// The Vault/OpenBao server run as a Lambda function
    /// (docs/vault-in-lambda.md).
    Server {
        #[command(subcommand)]
        command: server::ServerCommand,
    },
}

#[derive(Subcommand, Debug)]
enum VaultCommand {
    /// Show the server's health. Exit status: 0 ready, 2 sealed or not
    /// initialized, 1 unreachable or misconfigured.
    Health,
}

/// Output format (`--format`, `VAULT_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people (the Vault CLI's default name; `text` is accepted too).
    #[value(alias = "text")]
    Table,
    /// One JSON document on stdout.
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

fn client(connection: &Connection) -> anyhow::Result<VaultClient> {
    let config = ClientConfig::from_lookup(connection.lookup())?;
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
        Format::Table => {
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
    let connection = &cli.connection;
    match cli.command {
        Command::Vault {
            command: VaultCommand::Health,
        } => health(&client(connection)?, cli.format).await,
        Command::Login { command } => login::run(&client(connection)?, command, cli.format).await,
        Command::Proxy(args) => proxy::run(args, connection)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Replicate(args) => replicate::run(*args, connection, cli.format).await,
        Command::Server { command } => server::run(command, cli.format).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(vault_cli_spelling(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; anything else is a usage error.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.log_level.as_deref());
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        vault_cli_spelling(list.iter().map(std::ffi::OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn the_vault_cli_one_dash_spelling_is_accepted_for_global_flags_only() {
        assert_eq!(
            args(&[
                "vault-aws",
                "-format=json",
                "-address",
                "https://v:8200",
                "-tls-skip-verify",
                "vault",
                "health"
            ]),
            [
                "vault-aws",
                "--format=json",
                "--address",
                "https://v:8200",
                "--tls-skip-verify",
                "vault",
                "health"
            ]
        );
        // Other one-dash words, values and everything after `--` stay as they are.
        assert_eq!(
            args(&["vault-aws", "-h", "--format", "-x", "--", "-format=json"]),
            ["vault-aws", "-h", "--format", "-x", "--", "-format=json"]
        );
    }

    #[test]
    fn flags_win_over_variables() {
        let connection = Connection {
            address: Some("https://flag:8200".to_owned()),
            namespace: Some("team".to_owned()),
            ca_cert: Some(PathBuf::from("/etc/ca.pem")),
            tls_skip_verify: true,
        };
        let lookup = connection.lookup();
        assert_eq!(lookup("VAULT_ADDR").as_deref(), Some("https://flag:8200"));
        assert_eq!(lookup("VAULT_NAMESPACE").as_deref(), Some("team"));
        assert_eq!(lookup("VAULT_CACERT").as_deref(), Some("/etc/ca.pem"));
        assert_eq!(lookup("VAULT_SKIP_VERIFY").as_deref(), Some("true"));
        let none = Connection::default();
        assert_eq!(
            none.lookup()("VAULT_SKIP_VERIFY"),
            std::env::var("VAULT_SKIP_VERIFY").ok()
        );
    }

    #[test]
    fn usage_errors_are_not_exit_2() {
        let err =
            Cli::try_parse_from(["vault-aws", "vault", "health", "--format", "yaml"]).unwrap_err();
        assert!(err.use_stderr());
        assert_ne!(EXIT_USAGE, 2);
    }
}
