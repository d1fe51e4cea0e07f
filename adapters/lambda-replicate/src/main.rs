//! `lambda-replicate`: an AWS Lambda function, triggered by an EventBridge
//! schedule, that replicates Vault / OpenBao KV v2 secrets into AWS Secrets
//! Manager (and an optional S3 backup copy) with `vault-replicate`.
//!
//! Configuration: the `VAULT_*` variables of vault-client, the AWS SDK's
//! usual variables, and `REPLICATE_*` (see `docs/replicate.md`). Everything
//! is built once per cold start; each invocation runs every configured target
//! and returns `{"reports": [...]}`. A run with failures publishes a summary
//! to `REPLICATE_SNS_TOPIC_ARN` and returns an error, so it counts in the
//! function's `Errors` metric. A run stops starting writes a margin before
//! the invocation's deadline (`REPLICATE_DEADLINE_MARGIN_MS`): it returns
//! its reports with `left` > 0, publishes "partial: N left", and the next
//! run continues.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod auth;

use std::sync::Arc;

use anyhow::Context;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use vault_client::{ClientConfig, VaultClient};
use vault_replicate::{Notifier, ReplicateConfig, Replicator, Report, aws};

struct App {
    config: ReplicateConfig,
    replicators: Vec<Replicator>,
    notifier: Option<Arc<dyn Notifier>>,
}

impl App {
    async fn from_lookup<F>(lookup: F) -> anyhow::Result<Self>
    where
        F: Fn(&str) -> Option<String> + Copy,
    {
        let config = ReplicateConfig::from_lookup(lookup)?;
        let vault = VaultClient::new(ClientConfig::from_lookup(lookup)?)?;
        let auth = auth::auth_from_lookup(lookup)?;
        let source = Arc::new(config.source(vault, Some(auth))?);
        let settings = aws::AwsSettings {
            max_attempts: config.max_attempts,
            ..aws::AwsSettings::default()
        };
        let sdk = aws::sdk_config(&settings, None).await;
        Ok(Self {
            replicators: config.replicators(source, &sdk).await?,
            notifier: config.notifier(&sdk),
            config,
        })
    }

    async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        // Stop starting writes a margin before the invocation's deadline, so
        // that every run ends with a report (and the SNS summary) instead of
        // being killed; the next run continues.
        let stop_at = self.config.stop_at(event.context.deadline());
        tracing::info!(request_id = %event.context.request_id, "replication started");
        // Every destination at once, each on its own: one failing (or slow)
        // never stops the others, and all share the deadline.
        let reports: Vec<Report> = futures_util::future::join_all(
            self.replicators
                .iter()
                .map(|r| r.run_until(false, Some(stop_at))),
        )
        .await;
        for report in &reports {
            tracing::info!(
                target_kind = %report.target,
                counts = ?report.counts,
                api_calls = ?report.api_calls,
                duration_ms = report.duration_ms,
                left = report.left,
                "replication finished"
            );
        }
        let mut problems = Vec::new();
        for report in reports.iter().filter(|r| !r.is_complete()) {
            if let Some(n) = &self.notifier
                && let Err(e) = n.notify(report).await
            {
                tracing::error!(error = %e, "cannot publish the summary");
                problems.push(format!("SNS notification failed: {e}"));
            }
        }
        let failed: Vec<&Report> = reports.iter().filter(|r| !r.is_success()).collect();
        if failed.is_empty() && problems.is_empty() {
            // Complete, or partial (the next run continues): a clean end.
            return Ok(serde_json::json!({ "reports": reports }));
        }
        for report in &failed {
            tracing::error!(report = %serde_json::to_string(report).unwrap_or_default(), "replication had failures");
            problems.push(match &report.error {
                Some(e) => format!("{}: {e}", report.target),
                None => format!(
                    "{}: {} of {} secrets failed (first: {}/{}: {})",
                    report.target,
                    report.failures.len(),
                    report.source_secrets,
                    report.failures[0].mount,
                    report.failures[0].path,
                    report.failures[0].reason
                ),
            });
        }
        Err(problems.join("; ").into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Lambda's logging configuration (AWS_LAMBDA_LOG_FORMAT/LEVEL),
    // VAULT_LOG_LEVEL first; never lambda_runtime's log of the raw event.
    vault_aws_lambda_env::LogSettings::from_lookup(
        |n| std::env::var(n).ok(),
        "VAULT_LOG_LEVEL",
        vault_aws_lambda_env::LogFormat::Text,
        "info",
    )
    .init();
    if let Err(e) = vault_aws_lambda_env::require_lambda_environment("lambda-replicate", |n| {
        std::env::var(n).ok()
    }) {
        // Started by hand: a message for the person at the terminal, not a panic.
        eprintln!("{e}");
        std::process::exit(1);
    }
    let lookup = |k: &str| std::env::var(k).ok();
    let app = Arc::new(
        App::from_lookup(lookup)
            .await
            .context("lambda-replicate configuration")
            .map_err(|e| -> Error { format!("{e:#}").into() })?,
    );
    lambda_runtime::run(service_fn(move |event| {
        let app = app.clone();
        async move { app.handle(event).await }
    }))
    .await
}
