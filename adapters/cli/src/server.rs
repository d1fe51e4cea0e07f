//! `vault-aws server init`: initializes the Vault/OpenBao server that runs
//! as a Lambda function (`lambda-vault-server`, docs/vault-in-lambda.md).
//!
//! It invokes the function directly (`lambda:InvokeFunction`, not through
//! API Gateway) with `{"vault_aws_server": "init"}`; the function runs the
//! server's `sys/init` and writes the recovery keys and the initial root
//! token into a Secrets Manager secret. Neither ever reaches this command:
//! it prints the secret's name. A second run is refused.

use std::process::ExitCode;

use anyhow::{Context, bail};
use aws_sdk_lambda::primitives::Blob;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::Format;

/// `vault-aws server ...`.
#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Initialize the server once; its recovery keys and root token go into
    /// Secrets Manager (VAULT_SERVER_INIT_SECRET_NAME of the function),
    /// never to this terminal. Exit status: 0 initialized, 1 refused or
    /// failed.
    Init(InitArgs),
}

/// `vault-aws server init` flags.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The function's name or ARN (the stack's `FunctionName` output).
    #[arg(long, env = "VAULT_SERVER_FUNCTION")]
    function: String,
    /// Number of recovery key shares.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..))]
    recovery_shares: u8,
    /// Recovery key shares needed to recover.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    recovery_threshold: u8,
}

/// Runs a `server` command.
pub async fn run(command: ServerCommand, format: Format) -> anyhow::Result<ExitCode> {
    let ServerCommand::Init(args) = command;
    if args.recovery_threshold > args.recovery_shares {
        bail!(
            "--recovery-threshold {} is more than --recovery-shares {}",
            args.recovery_threshold,
            args.recovery_shares
        );
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let payload = json!({
        "vault_aws_server": "init",
        "recovery_shares": args.recovery_shares,
        "recovery_threshold": args.recovery_threshold,
    });
    let out = lambda
        .invoke()
        .function_name(&args.function)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(vault_client::error_chain(&e)))
        .with_context(|| format!("cannot invoke the function {}", args.function))?;
    let body = out.payload.map(Blob::into_inner).unwrap_or_default();
    let answer: Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "the function {} answered something that is not JSON ({} bytes)",
            args.function,
            body.len()
        )
    })?;
    // Lambda marks a failed invocation with X-Amz-Function-Error; the body
    // is then {"errorType", "errorMessage"}.
    let failed = out.function_error.is_some()
        || (answer.get("errorMessage").is_some() && answer.get("errorType").is_some());
    if failed {
        bail!(
            "{}",
            answer["errorMessage"]
                .as_str()
                .unwrap_or("the function failed without a message")
        );
    }
    match format {
        Format::Json => println!("{answer}"),
        Format::Table => {
            println!(
                "initialized   {}",
                answer["outcome"].as_str().unwrap_or("?")
            );
            println!(
                "secret        {}",
                answer["secret_name"].as_str().unwrap_or("?")
            );
            if let Some(arn) = answer["secret_arn"].as_str() {
                println!("secret arn    {arn}");
            }
            println!(
                "recovery      {} of {} shares",
                answer["recovery_threshold"], answer["recovery_shares"]
            );
            println!(
                "The recovery keys and the initial root token are in that secret; read it \
                 once, create your own admin login, then revoke the root token."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
