//! `vault-aws replicate`: one replication run (Vault KV v2 -> Secrets
//! Manager, and the S3 copy when configured) from the command line, with
//! the same `REPLICATE_*` variables as the Lambda.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vault_client::{ClientConfig, VaultAuth, VaultClient};
use vault_replicate::watch::{WatchConfig, Watcher};
use vault_replicate::{Progress, ReplicateConfig, Report, aws};

use crate::Format;

/// Arguments of `vault-aws replicate`.
#[derive(Args, Debug)]
pub struct ReplicateArgs {
    /// Print the plan (every change with its reason) and write nothing.
    #[arg(long, conflicts_with = "watch")]
    dry_run: bool,
    /// Run until SIGTERM: follow Vault's socket audit device and replicate
    /// each change within seconds (settings REPLICATE_WATCH_*; see
    /// docs/replicate.md). The scheduled run stays the reconcile.
    #[arg(long)]
    watch: bool,
}

/// A progress bar on stderr.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn planning(&self, calls: &std::collections::BTreeMap<String, u64>) {
        let get = |k: &str| calls.get(k).copied().unwrap_or(0);
        self.0.set_message(format!(
            "planning: {} vault LISTs, {} metadata reads, {} ListSecrets pages",
            get("vault.list"),
            get("vault.read_metadata"),
            get("secretsmanager.ListSecrets") + get("s3.ListObjectsV2")
        ));
        self.0.tick();
    }

    fn planned(&self, changes: u64) {
        self.0.set_message("");
        self.0.set_length(changes);
        self.0.set_position(0);
    }

    fn advance(&self) {
        self.0.inc(1);
    }
}

fn bar(target: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(target.to_owned());
    bar
}

/// Vault auth for the CLI: the ONE place that decides how it logs in (a
/// token for now; the shared auth-from-environment builder replaces it).
fn auth_from_lookup<F>(lookup: F) -> anyhow::Result<Arc<dyn VaultAuth>>
where
    F: Fn(&str) -> Option<String>,
{
    Ok(vault_auth_env::auth_from_lookup(lookup)?)
}

/// Runs `vault-aws replicate`; exit 0 when every target succeeded, 1 otherwise.
pub async fn run(
    args: ReplicateArgs,
    connection: &crate::Connection,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let lookup = connection.lookup();
    let config = ReplicateConfig::from_lookup(&lookup)?;
    let vault = VaultClient::new(ClientConfig::from_lookup(&lookup)?)?;
    let auth = auth_from_lookup(&lookup)?;
    let source = Arc::new(config.source(vault, Some(auth))?);
    let scopes = source.scopes().to_vec();
    let settings = aws::AwsSettings {
        max_attempts: config.max_attempts,
        ..aws::AwsSettings::default()
    };
    let sdk = aws::sdk_config(&settings, None).await;
    let replicators = config
        .replicators(source, &sdk)
        .await
        .context("invalid replication settings")?;
    if args.watch {
        return watch(replicators, scopes, &lookup).await;
    }
    // Also for dry runs: planning 10,000 secrets takes seconds.
    let show_bar = std::io::stderr().is_terminal();

    let mut reports: Vec<Report> = Vec::new();
    for replicator in replicators {
        let (replicator, progress) = if show_bar {
            let b = bar("replicating");
            (replicator.with_progress(Arc::new(Bar(b.clone()))), Some(b))
        } else {
            (replicator, None)
        };
        let report = replicator.run(args.dry_run).await;
        if let Some(b) = progress {
            b.finish_and_clear();
        }
        if format == Format::Table {
            print!("{}", report.table());
        }
        reports.push(report);
    }
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "reports": reports }))?
        );
    }
    Ok(if reports.iter().all(Report::is_success) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--watch`: binds the audit listener, then replicates what Vault's socket
/// audit device names until SIGTERM or SIGINT.
async fn watch(
    replicators: Vec<vault_replicate::Replicator>,
    scopes: Vec<vault_replicate::SourceScope>,
    lookup: &(impl Fn(&str) -> Option<String> + Clone),
) -> anyhow::Result<ExitCode> {
    let settings = WatchConfig::from_lookup(lookup).context("invalid watch settings")?;
    let listen = settings.listen;
    let watcher = Watcher::new(replicators, scopes, settings);
    let listener = watcher
        .bind()
        .await
        .with_context(|| format!("cannot listen on {listen} (REPLICATE_WATCH_LISTEN)"))?;
    tracing::info!(%listen, "watching the socket audit device");
    eprintln!("vault-aws replicate --watch: listening on {listen}");
    watcher
        .run(listener, async {
            if let Err(e) = wait_for_signal().await {
                tracing::warn!(error = %e, "no signal handler: stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        })
        .await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
