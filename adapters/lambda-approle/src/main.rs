//! `bootstrap`: the CloudFormation custom resource `Custom::VaultAuth` as a
//! Lambda function (custom runtime, `provided.al2023`).
//!
//! All protocol logic lives in [`vault_approle::cfn`]; this binary reads its
//! configuration from the environment (see docs/approle.md) and runs the
//! handler for every event. A configuration error does not stop it: every
//! event then gets a FAILED answer naming the problem, so no stack hangs.
//! EventBridge scheduled events run the scheduled rotation of the shared
//! secret_ids (docs/approle.md, "Scheduled rotation").
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod auth;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{LambdaEvent, LambdaInvocation, Runtime, service_fn};
use serde_json::{Value, json};
use vault_approle::cfn::CfnHandler;
use vault_approle::{
    DeliveryMode, LEGACY_PREFIX, Provisioner, ProvisionerOptions, S3CredentialStore, StoreLayout,
};
use vault_client::{ClientConfig, VaultClient, parse_duration};

fn build<F>(lookup: F) -> anyhow::Result<CfnHandler>
where
    F: Fn(&str) -> Option<String>,
{
    let get = vault_client::trimmed(&lookup);
    let client = VaultClient::new(ClientConfig::from_lookup(&lookup)?)?;
    let auth = auth::auth_from_lookup(&lookup)?;
    let layout = match get("VAULT_APPROLE_S3_LAYOUT") {
        Some(v) => v
            .parse::<StoreLayout>()
            .context("VAULT_APPROLE_S3_LAYOUT")?,
        None => StoreLayout::VaultAws,
    };
    // The old layout has its own default prefix (vault/appRole/).
    let store = S3CredentialStore::from_lookup(|name| match name {
        "VAULT_APPROLE_S3_PREFIX"
            if layout == StoreLayout::ServerlessAppRoleManager
                && get("VAULT_APPROLE_S3_PREFIX").is_none() =>
        {
            Some(LEGACY_PREFIX.to_owned())
        }
        _ => lookup(name),
    })?;
    let mut options = ProvisionerOptions::default().layout(layout);
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
    if let Some(v) = get("VAULT_APPROLE_ROTATE_BELOW") {
        let fraction = parse_fraction(&v)
            .filter(|f| *f > 0.0 && *f <= 1.0)
            .with_context(|| {
                format!(
                    "VAULT_APPROLE_ROTATE_BELOW: got {v:?}, expected a fraction of the secret_id TTL above 0 and at most 1, e.g. 1/3 or 0.25"
                )
            })?;
        handler = handler.rotate_below(fraction);
    }
    let margin = match get("VAULT_APPROLE_DEADLINE_MARGIN") {
        Some(v) => parse_duration("VAULT_APPROLE_DEADLINE_MARGIN", &v)?,
        None => Duration::from_secs(5),
    };
    Ok(handler.deadline_margin(margin))
}

/// `0.25` or `1/3`.
fn parse_fraction(v: &str) -> Option<f64> {
    match v.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
            (b != 0.0).then(|| a / b)
        }
        None => v.trim().parse().ok(),
    }
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

/// The key under which [`KeepUnparsed`] hands over an event that is not JSON.
const UNPARSED: &str = "vault-aws-unparsed-event";

/// `lambda_runtime` answers an event that is not JSON with an error before
/// the handler runs, so CloudFormation would wait for an answer until its
/// timeout. This layer hands such an event to the handler as
/// `{"vault-aws-unparsed-event": "<the text>"}`; the handler then finds the
/// ResponseURL in the text and answers FAILED.
#[derive(Clone)]
struct KeepUnparsed<S>(S);

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for KeepUnparsed<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        if serde_json::from_slice::<Value>(&invocation.body).is_err() {
            let text = String::from_utf8_lossy(&invocation.body).into_owned();
            invocation.body = json!({ UNPARSED: text }).to_string().into_bytes().into();
        }
        self.0.call(invocation)
    }
}

struct KeepUnparsedLayer;

impl<S> Layer<S> for KeepUnparsedLayer {
    type Service = KeepUnparsed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        KeepUnparsed(inner)
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Lambda's logging configuration (AWS_LAMBDA_LOG_FORMAT/LEVEL), RUST_LOG
    // first; never lambda_runtime's log of the raw event (its ResponseURL is a
    // pre-signed credential), whatever the level.
    vault_aws_lambda_env::LogSettings::from_lookup(
        |n| std::env::var(n).ok(),
        "RUST_LOG",
        vault_aws_lambda_env::LogFormat::Json,
        "info",
    )
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
    let service = service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            let deadline = event.context.deadline();
            if vault_approle::cfn::is_scheduled_event(&event.payload) {
                // EventBridge: the scheduled rotation of shared secret_ids.
                return handler
                    .scheduled(Some(deadline))
                    .await
                    .map_err(lambda_runtime::Error::from);
            }
            let outcome = match event.payload.get(UNPARSED).and_then(Value::as_str) {
                Some(text) => handler.handle_bytes(text.as_bytes(), Some(deadline)).await,
                None => handler.handle(event.payload, Some(deadline)).await,
            };
            match &outcome.delivered {
                Ok(()) => Ok::<Value, lambda_runtime::Error>(outcome.summary()),
                // An error makes Lambda retry the (asynchronous) invocation.
                Err(e) => Err(format!("the response was not delivered: {e}").into()),
            }
        }
    });
    Runtime::new(service)
        .layer(KeepUnparsedLayer)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .run()
        .await
}

#[cfg(test)]
mod tests {
    use super::parse_fraction;

    #[test]
    fn fractions_are_decimals_or_ratios() {
        assert_eq!(parse_fraction("0.25"), Some(0.25));
        assert_eq!(parse_fraction(" 1 / 4 "), Some(0.25));
        assert_eq!(parse_fraction("1/3"), Some(1.0 / 3.0));
        assert_eq!(parse_fraction("1/0"), None);
        assert_eq!(parse_fraction("a third"), None);
    }
}
