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
    #[command(flatten)]
    settings: Settings,
}

/// Declares the replication settings as flags that fall back to their
/// `REPLICATE_*` variable (clap's `env`), so `--help` lists every setting, its
/// variable and its current value; docs/configuration.md has the full forms.
macro_rules! settings {
    ($($field:ident => $var:literal, $value:literal: $help:literal;)*) => {
        /// The `REPLICATE_*` settings; a flag wins over its variable.
        #[derive(Args, Debug, Default)]
        #[command(next_help_heading = "Replication settings (flag or variable)")]
        pub struct Settings {
            $(
                #[doc = $help]
                #[arg(long, env = $var, value_name = $value)]
                $field: Option<String>,
            )*
        }

        impl Settings {
            /// The value of one `REPLICATE_*` variable as given by flag or environment.
            fn get(&self, variable: &str) -> Option<String> {
                match variable {
                    $($var => self.$field.clone(),)*
                    _ => None,
                }
            }

            /// Every variable these flags stand for.
            #[cfg(test)]
            const VARIABLES: &'static [&'static str] = &[$($var),*];
        }
    };
}

settings! {
    sources => "REPLICATE_SOURCES", "MOUNT[/FOLDER],...": "Vault KV mounts or folders to replicate (default: secret)";
    target_prefix => "REPLICATE_TARGET_PREFIX", "PREFIX": "Prefix of every target name (default: vault)";
    name_template => "REPLICATE_NAME_TEMPLATE", "TEMPLATE": "Target name template: {prefix}, {mount}, {path}, {key}";
    granularity => "REPLICATE_GRANULARITY", "secret|key": "One AWS secret per Vault secret (JSON) or per key";
    kms_key_id => "REPLICATE_KMS_KEY_ID", "KEY": "KMS key of new secrets (default: aws/secretsmanager)";
    replica_regions => "REPLICATE_REPLICA_REGIONS", "REGION,...": "Regions new secrets are replicated to by Secrets Manager";
    deletion => "REPLICATE_DELETION", "none|schedule|force": "What happens to a replica whose secret is gone from Vault (default: none, tagged orphaned)";
    recovery_window_days => "REPLICATE_RECOVERY_WINDOW_DAYS", "7-30": "Recovery window of scheduled deletions (default: 30)";
    adopt => "REPLICATE_ADOPT", "BOOL": "Take over same-named secrets that lack the vault-aws tag (default: false)";
    concurrency => "REPLICATE_CONCURRENCY", "1-256": "Secrets worked on at once (default: 16)";
    write_tps => "REPLICATE_WRITE_TPS", "N": "Calls per second of each write API; 0 = unlimited (default: 40)";
    read_tps => "REPLICATE_READ_TPS", "N": "Calls per second of ListSecrets / DescribeSecret (default: 80)";
    aws_max_attempts => "REPLICATE_AWS_MAX_ATTEMPTS", "1-20": "Attempts per AWS call (default: 5)";
    secrets_manager => "REPLICATE_SECRETS_MANAGER", "BOOL": "false writes only the S3 copy (default: true)";
    s3_bucket => "REPLICATE_S3_BUCKET", "BUCKET": "Bucket of the backup copy (default: none)";
    s3_prefix => "REPLICATE_S3_PREFIX", "PREFIX": "Object key prefix of the backup copy";
    s3_kms_key_id => "REPLICATE_S3_KMS_KEY_ID", "KEY": "KMS key of the backup objects";
    sns_topic_arn => "REPLICATE_SNS_TOPIC_ARN", "ARN": "Topic told about runs with failures or stopped by a deadline";
    detailed_metadata => "REPLICATE_DETAILED_METADATA", "BOOL": "false reads metadata per secret, as HashiCorp Vault needs (default: true)";
    metadata_concurrency => "REPLICATE_METADATA_CONCURRENCY", "1-256": "Metadata reads at once (default: 16)";
    deadline_margin_ms => "REPLICATE_DEADLINE_MARGIN_MS", "MS": "Lambda only: stop starting writes this long before the deadline";
    full_list_seconds => "REPLICATE_FULL_LIST_SECONDS", "SECONDS": "How often all of Secrets Manager is listed; 0 = every run (default: 3600)";
    destinations => "REPLICATE_DESTINATIONS", "JSON": "More Secrets Manager destinations (JSON array; see docs/configuration.md)";
    watch_listen => "REPLICATE_WATCH_LISTEN", "IP:PORT": "--watch: where the socket audit device listener binds (default: 127.0.0.1:9514)";
    watch_peers => "REPLICATE_WATCH_PEERS", "IP,...": "--watch: addresses allowed to connect (default: 127.0.0.1,::1)";
    watch_window_ms => "REPLICATE_WATCH_WINDOW_MS", "MS": "--watch: coalescing window (default: 1000)";
    watch_queue => "REPLICATE_WATCH_QUEUE", "N": "--watch: capacity of the entry queue (default: 10000)";
    watch_metrics_secs => "REPLICATE_WATCH_METRICS_SECS", "SECONDS": "--watch: interval of the metrics log line (default: 60)";
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
    let env = connection.lookup();
    let lookup = |name: &str| args.settings.get(name).or_else(|| env(name));
    let config = ReplicateConfig::from_lookup(lookup)?;
    let vault = VaultClient::new(ClientConfig::from_lookup(lookup)?)?;
    let auth = auth_from_lookup(lookup)?;
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

#[cfg(test)]
mod tests {
    use super::Settings;

    /// Every `REPLICATE_*` variable the library reads, found in its source.
    fn variables_read() -> std::collections::BTreeSet<String> {
        let sources = [
            include_str!("../../../vault-replicate/src/config.rs"),
            include_str!("../../../vault-replicate/src/watch.rs"),
        ];
        let mut found = std::collections::BTreeSet::new();
        for source in sources {
            for (i, _) in source.match_indices("\"REPLICATE_") {
                let rest = &source[i + 1..];
                let end = rest.find('"').unwrap_or(rest.len());
                let name = &rest[..end];
                if name.len() > "REPLICATE_".len()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                {
                    found.insert(name.to_owned());
                }
            }
        }
        found
    }

    #[test]
    fn every_replication_variable_is_a_flag_shown_in_help() {
        let read = variables_read();
        assert!(read.len() > 20, "found only {read:?}");
        let flags: std::collections::BTreeSet<String> =
            Settings::VARIABLES.iter().map(|v| v.to_string()).collect();
        let missing: Vec<_> = read.difference(&flags).collect();
        assert!(
            missing.is_empty(),
            "REPLICATE_* variables without a `vault-aws replicate` flag: {missing:?}"
        );
        let unknown: Vec<_> = flags.difference(&read).collect();
        assert!(
            unknown.is_empty(),
            "flags for variables nobody reads: {unknown:?}"
        );
    }

    #[test]
    fn a_flag_wins_over_its_variable_and_others_fall_through() {
        let settings = Settings {
            sources: Some("kv/app".into()),
            ..Settings::default()
        };
        assert_eq!(settings.get("REPLICATE_SOURCES").as_deref(), Some("kv/app"));
        assert_eq!(settings.get("REPLICATE_DELETION"), None);
        assert_eq!(settings.get("VAULT_ADDR"), None);
    }
}
