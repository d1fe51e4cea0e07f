//! `lambda-authorizer`: the API Gateway Lambda authorizer of
//! `vault-aws-lambda-authorizer` under `lambda_runtime`.
//!
//! Configuration: `AUTHORIZER_*` (see `docs/authorizer.md`), the AWS SDK's
//! usual variables for the Secrets Manager client, and
//! `AUTHORIZER_LOG_LEVEL` (default `info`). The token set is read once in
//! the init phase; a configuration error is logged and every invocation then
//! fails naming the variable (API Gateway answers 500: never an allow).
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use vault_aws_lambda_authorizer::{Authorizer, AuthorizerConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Lambda's logging configuration (AWS_LAMBDA_LOG_FORMAT/LEVEL),
    // AUTHORIZER_LOG_LEVEL first. lambda_runtime logs every raw event (with
    // its Authorization header and cookies) at TRACE: never enabled here.
    vault_aws_lambda_env::LogSettings::from_lookup(
        |n| std::env::var(n).ok(),
        "AUTHORIZER_LOG_LEVEL",
        vault_aws_lambda_env::LogFormat::Text,
        "info",
    )
    .init();
    if let Err(e) = vault_aws_lambda_env::require_lambda_environment("lambda-authorizer", |n| {
        std::env::var(n).ok()
    }) {
        // Started by hand: a message for the person at the terminal, not a panic.
        eprintln!("{e}");
        std::process::exit(1);
    }
    let app: Arc<Result<Authorizer, String>> = Arc::new(
        match AuthorizerConfig::from_lookup(|k| std::env::var(k).ok()) {
            Ok(config) => {
                let authorizer = Authorizer::from_config(config).await;
                tracing::info!(config = ?authorizer, "lambda-authorizer starting");
                // Cold start: read the secret now (a failure is logged and
                // every request is denied until a read succeeds).
                authorizer.refresh_if_due().await;
                Ok(authorizer)
            }
            Err(e) => {
                let message = format!("lambda-authorizer is misconfigured: {e}");
                tracing::error!("{message}");
                Err(message)
            }
        },
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            match app.as_ref() {
                Ok(authorizer) => authorizer.authorize(&event.payload).await.map_err(|e| {
                    tracing::error!(request_id = %event.context.request_id, error = %e, "cannot decide");
                    Error::from(e.to_string())
                }),
                Err(message) => {
                    tracing::error!(request_id = %event.context.request_id, "{message}");
                    Err(Error::from(message.clone()))
                }
            }
        }
    }))
    .await
}
