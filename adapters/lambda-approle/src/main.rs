//! `bootstrap`: the CloudFormation custom resource `Custom::VaultAuth` as a
//! Lambda function (custom runtime, `provided.al2023`).
//!
//! All protocol logic lives in [`vault_approle::cfn`]; this binary reads its
//! configuration from the environment (see docs/approle.md) and runs the
//! handler for every event. A configuration error does not stop it: every
//! event then gets a FAILED answer naming the problem, so no stack hangs.

mod auth;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use vault_approle::cfn::CfnHandler;
use vault_approle::{DeliveryMode, Provisioner, ProvisionerOptions, S3CredentialStore};
use vault_client::{ClientConfig, VaultClient, parse_duration};

fn build<F>(lookup: F) -> anyhow::Result<CfnHandler>
where
    F: Fn(&str) -> Option<String>,
{
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let client = VaultClient::new(ClientConfig::from_lookup(&lookup)?)?;
    let auth = auth::auth_from_lookup(&lookup)?;
    let store = S3CredentialStore::from_lookup(&lookup)?;
    let mut options = ProvisionerOptions::default();
    if let Some(mount) = get("VAULT_APPROLE_MOUNT") {
        options = options.mount(mount);
    }
    if let Some(v) = get("VAULT_APPROLE_ROTATION_GRACE") {
        options = options.rotation_grace(parse_duration("VAULT_APPROLE_ROTATION_GRACE", &v)?);
    }
    if let Some(v) = get("VAULT_APPROLE_WRAP_TTL") {
        options = options.wrap_ttl(parse_duration("VAULT_APPROLE_WRAP_TTL", &v)?);
    }
    if let Some(v) = get("VAULT_APPROLE_CONSUMER_VAULT_ADDR") {
        options = options.consumer_vault_addr(v);
    }
    let mut handler = CfnHandler::new(Arc::new(Provisioner::new(
        client,
        auth,
        Arc::new(store),
        options,
    )));
    if let Some(v) = get("VAULT_APPROLE_DELIVERY") {
        let mode: DeliveryMode = v.parse().context("VAULT_APPROLE_DELIVERY")?;
        handler = handler.default_delivery(mode);
    }
    let margin = match get("VAULT_APPROLE_DEADLINE_MARGIN") {
        Some(v) => parse_duration("VAULT_APPROLE_DEADLINE_MARGIN", &v)?,
        None => Duration::from_secs(5),
    };
    Ok(handler.deadline_margin(margin))
}

/// `VAULT_APPROLE_RESPONSE_URL_HOSTS`: comma-separated hosts allowed in
/// `ResponseURL` besides CloudFormation's (the emulator's listener in tests,
/// a private endpoint). Applies to the unconfigured handler too.
fn response_url_hosts<F>(lookup: F) -> Vec<String>
where
    F: Fn(&str) -> Option<String>,
{
    lookup("VAULT_APPROLE_RESPONSE_URL_HOSTS")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .init();
    if let Err(e) =
        vault_aws_lambda_env::require_lambda_environment("bootstrap", |n| std::env::var(n).ok())
    {
        // Started by hand: a message for the person at the terminal, not a panic.
        eprintln!("{e}");
        std::process::exit(1);
    }
    let handler = match build(|name| std::env::var(name).ok()) {
        Ok(h) => h,
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::error!(error = %reason, "configuration error: every event will be answered FAILED");
            CfnHandler::unconfigured(reason)
        }
    };
    let handler = Arc::new(
        handler.allow_response_url_hosts(response_url_hosts(|name| std::env::var(name).ok())),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            let deadline = event.context.deadline();
            let outcome = handler.handle(event.payload, Some(deadline)).await;
            match &outcome.delivered {
                Ok(()) => Ok::<Value, lambda_runtime::Error>(outcome.summary()),
                // An error makes Lambda retry the (asynchronous) invocation.
                Err(e) => Err(format!("the response was not delivered: {e}").into()),
            }
        }
    }))
    .await
}
