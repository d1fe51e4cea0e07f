//! `vault-aws-extension`: the external Lambda extension of
//! `vault_aws_lambda_extension` (a drop-in replacement for
//! hashicorp/vault-lambda-extension, built on `vault-proxy`). This file is
//! the wiring: logging, the check that Lambda started it, then
//! [`vault_aws_lambda_extension::run`] with the process environment.
//!
//! Configuration: docs/proxy.md.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

use std::process::ExitCode;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let started = vault_client::clock::now().into_std();
    // Lambda's logging configuration (AWS_LAMBDA_LOG_FORMAT/LEVEL), with
    // VAULT_LOG_LEVEL first as in hashicorp/vault-lambda-extension; set up
    // before the settings are read, so an error about them is logged too.
    vault_aws_lambda_env::LogSettings::from_lookup(
        env,
        "VAULT_LOG_LEVEL",
        vault_aws_lambda_env::LogFormat::Text,
        "info",
    )
    .init();
    if env("AWS_LAMBDA_RUNTIME_API").is_none_or(|v| v.trim().is_empty()) {
        // Started by hand, not by Lambda: a usage error for the person at the
        // terminal, printed whatever VAULT_LOG_LEVEL says.
        eprintln!(
            "vault-aws-extension: AWS_LAMBDA_RUNTIME_API is not set, so this is not a Lambda \
             execution environment. Install the binary as a layer in /opt/extensions/; \
             to run the same proxy as a sidecar or on a workstation use `vault-aws proxy`."
        );
        return ExitCode::FAILURE;
    }
    vault_aws_lambda_extension::run(env, started).await
}
