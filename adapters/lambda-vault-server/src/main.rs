//! `lambda-vault-server`: OpenBao or HashiCorp Vault as an AWS Lambda
//! function (container image). Configuration: `VAULT_SERVER_*` (see
//! `docs/vault-in-lambda.md`) and the AWS SDK's usual variables.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use vault_aws_lambda_vault_server::{
    App, ServerConfig, register_for_sigterm, report_init_error, secrets, server::Server,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    vault_aws_lambda_env::LogSettings::from_lookup(
        |n| std::env::var(n).ok(),
        "VAULT_SERVER_LOG_LEVEL",
        vault_aws_lambda_env::LogFormat::Text,
        "info",
    )
    .init();
    if let Err(e) = vault_aws_lambda_env::require_lambda_environment("lambda-vault-server", |n| {
        std::env::var(n).ok()
    }) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    if let Err(e) = register_for_sigterm(&api).await {
        tracing::warn!(error = %e, "cannot register for SIGTERM; Lambda will stop the server with SIGKILL");
    }
    let app = match start().await {
        Ok(app) => Arc::new(app),
        Err(message) => {
            tracing::error!("{message}");
            if let Err(e) = report_init_error(&api, &message).await {
                tracing::error!(error = %e, "cannot report the init error to the Runtime API");
            }
            std::process::exit(1);
        }
    };

    // Lambda's shutdown: SIGTERM to the runtime, because it registered as
    // an internal extension (else Lambda sends SIGKILL; PostgreSQL storage
    // survives that too: every write is a committed transaction).
    let mut term = signal(SignalKind::terminate())?;
    let stopping = app.clone();
    tokio::spawn(async move {
        term.recv().await;
        // Within Lambda's 500 ms for a runtime with an internal extension.
        let status = stopping.stop(Duration::from_millis(400)).await;
        tracing::info!(?status, "server stopped");
        std::process::exit(0);
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let deadline = event.context.deadline();
            app.handle(&event.payload, deadline).await.map_err(|e| {
                tracing::error!(request_id = %event.context.request_id, error = %e, "invocation failed");
                Error::from(e.to_string())
            })
        }
    }))
    .await
}

/// Init phase: configuration, secrets, the server until it answers.
async fn start() -> Result<App, String> {
    let config = ServerConfig::from_lookup(|n| std::env::var(n).ok())
        .map_err(|e| format!("lambda-vault-server is misconfigured: {e}"))?;
    tracing::info!(binary = %config.binary.display(), storage = ?config.storage, seal = ?config.seal, "starting the server");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let secrets = secrets::fetch(&client, &config)
        .await
        .map_err(|e| format!("lambda-vault-server cannot start the server: {e}"))?;
    let started = vault_client::clock::now();
    let server = Server::start(&config, secrets)
        .await
        .map_err(|e| format!("lambda-vault-server: {e}"))?;
    tracing::info!(
        ready_ms = started.elapsed().as_millis() as u64,
        pid = server.pid(),
        "server ready"
    );
    Ok(App::new(&config, server, client))
}
