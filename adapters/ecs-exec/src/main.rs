//! `vault-exec [options] -- CMD ARGS...`: a container entrypoint.
//!
//! Finds the task's IAM role, reads the AppRole credentials delivered for it
//! (S3), logs in to Vault, reads the secrets named by
//! `VAULT_ENV_<NAME>=<mount>/<path>#<key>` and every key of each
//! `--secrets-path`, and then replaces itself with CMD (same PID: signals
//! reach the app directly and its exit code is the container's). Nothing is
//! written to disk; `VAULT_ENV_*` and vault-exec's own credentials variables
//! are not passed on, nor `VAULT_TOKEN` unless `--pass-token`. Any missing
//! secret stops it before the app starts. See docs/approle.md.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod auth;
mod role;
mod secrets;

use std::os::unix::process::CommandExt;

use anyhow::Context;
use clap::Parser;
use vault_client::{ClientConfig, VaultClient};

#[derive(Debug, Parser)]
#[command(
    name = "vault-exec",
    version,
    about = "Log in to Vault, put secrets in the environment, exec the app"
)]
struct Args {
    /// IAM role (name or ARN) whose delivered credentials to use; default: the
    /// task role (ECS credentials endpoint) or the instance role (IMDSv2).
    #[arg(long, env = "VAULT_EXEC_IAM_ROLE")]
    iam_role: Option<String>,
    /// A KV v2 secret (`<mount>/<path>`) whose every key becomes a variable
    /// (upper case, other characters `_`). Repeatable.
    #[arg(long = "secrets-path", value_name = "MOUNT/PATH")]
    secrets_paths: Vec<String>,
    /// Pass the Vault token to the app as VAULT_TOKEN.
    #[arg(long)]
    pass_token: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

async fn prepare(args: &Args) -> anyhow::Result<Vec<(String, String)>> {
    let lookup = |name: &str| std::env::var(name).ok();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let mut secrets_paths = args.secrets_paths.clone();
    if let Some(p) = lookup("VAULT_EXEC_SECRETS_PATH").filter(|p| !p.trim().is_empty()) {
        secrets_paths.extend(
            p.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        );
    }
    let mappings = secrets::mappings(&vars)?;
    let (auth, how, delivered_addr) =
        auth::auth_from_lookup(lookup, args.iam_role.as_deref()).await?;
    // VAULT_ADDR wins; else the address the orchestrator delivered.
    let client = VaultClient::new(ClientConfig::from_lookup(|name| match name {
        "VAULT_ADDR" => lookup(name)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| delivered_addr.clone()),
        _ => lookup(name),
    })?)?;
    let login = auth
        .login(&client)
        .await
        .with_context(|| format!("cannot log in to vault at {} with {how}", client.address()))?;
    tracing::info!(method = %how, accessor = %login.accessor, policies = ?login.policies, "logged in");
    let client = client.with_token(login.client_token.clone());
    let values = secrets::collect(&client, &mappings, &secrets_paths).await?;
    tracing::info!(count = values.len(), names = ?values.keys().collect::<Vec<_>>(), "secrets read");
    let token = args.pass_token.then_some(&login.client_token);
    Ok(secrets::child_env(vars, values, token))
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VAULT_EXEC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vault-exec: cannot start: {e}");
            std::process::exit(1);
        }
    };
    // The runtime is dropped before exec, so no thread is left behind.
    let env = runtime.block_on(prepare(&args));
    drop(runtime);
    let env = match env {
        Ok(env) => env,
        Err(e) => {
            eprintln!("vault-exec: {e:#}");
            std::process::exit(1);
        }
    };
    let (program, rest) = match args.command.split_first() {
        Some(split) => split,
        None => {
            eprintln!("vault-exec: no command given after --");
            std::process::exit(2);
        }
    };
    let err = std::process::Command::new(program)
        .args(rest)
        .env_clear()
        .envs(env)
        .exec();
    eprintln!("vault-exec: cannot run {program}: {err}");
    std::process::exit(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    });
}
