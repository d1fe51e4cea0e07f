//! Replication of Vault / OpenBao KV v2 secrets into AWS Secrets Manager
//! (and an S3 backup copy), built to scale: a run that changes nothing costs
//! one Vault LIST per folder and one ListSecrets per 100 secrets, and reads
//! no secret value.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vault_replicate::{ReplicateConfig, aws};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let env = |k: &str| std::env::var(k).ok();
//! let config = ReplicateConfig::from_lookup(env)?;
//! let vault = vault_client::VaultClient::from_env()?;
//! let auth = Arc::new(vault_client::TokenAuth::from_lookup(env)?);
//! let source = Arc::new(config.source(vault, Some(auth))?);
//! let sdk = aws::sdk_config(&aws::AwsSettings::default(), None).await;
//! for replicator in config.replicators(source, &sdk).await? {
//!     let report = replicator.run(false).await;
//!     println!("{}", report.table());
//! }
//! # Ok(()) }
//! ```
//!
//! | piece | does |
//! |---|---|
//! | [`Source`] / [`VaultKvSource`] | current versions under mounts/folders, recursively: one `detailed-metadata` LIST per folder on OpenBao, bounded-parallel metadata reads where that endpoint is missing (or when forced); values read AT the planned version; KV v1 mounts compared by a digest of the value |
//! | [`Target`] / [`SecretsManagerTarget`], [`S3Target`] | what we manage (tag `managed-by=vault-replicate`), create/update/delete with per-API rate limits; the SDK retries throttling and 5xx |
//! | [`plan()`] | a pure function from the two snapshots and a [`PlanPolicy`] to a [`Plan`] |
//! | [`Replicator`] | snapshot, plan, execute with bounded concurrency, [`Report`]; [`Replicator::run_until`] stops before a deadline (`left` in the report, the next run continues); [`Replicator::with_partitioned_listing`] lists the target by name partitions concurrently between full listings, and plans from the last listing after a run that changed nothing |
//! | [`Destination`] | more Secrets Manager destinations (regions, accounts through AssumeRole with an external id), each its own replicator |
//! | [`Notifier`] / [`SnsNotifier`] | a summary under SNS's 256 KiB limit when a run failed |
//! | [`watch::Watcher`] | near-real-time: follows the socket audit device, coalesces, replicates exactly the named secrets through [`Replicator::run_paths`] |
//! | [`ReplicateConfig`] | every setting from `REPLICATE_*` variables through a lookup function |
//!
//! Safety: a secret without our `managed-by` tag is never modified or
//! deleted unless adoption is on; targets outside the configured scopes are
//! never touched; deletion is off by default. Values are [`SecretMap`] /
//! `SecretString` and never logged.
//!
//! Feature `test-util`: mockall mocks `MockSource`, `MockTarget`, `MockNotifier`.
//!
//! [`SecretMap`]: vault_client::SecretMap
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

pub mod aws;
mod calls;
mod config;
mod error;
mod model;
mod notify;
mod plan;
mod report;
mod run;
pub mod s3;
pub mod sm;
pub mod source;
mod target;
pub mod watch;

pub use calls::{ApiCalls, RateLimiter, RateLimits};
pub use config::{DEFAULT_DEADLINE_MARGIN, Destination, ReplicateConfig};
pub use error::{ConfigError, Error, Result};
pub use model::{
    DeletionPolicy, Granularity, MANAGED_BY, Naming, SourceEntry, SourceScope, SourceSnapshot,
    TAG_KEY, TAG_KEY_COUNT, TAG_MANAGED_BY, TAG_MOUNT, TAG_PATH, TAG_STATE, TAG_VERSION,
    TAG_VERSION_ID, TargetEntry, TargetSnapshot, validate_secret_name, validate_tag_value,
    value_digest,
};
#[cfg(any(test, feature = "test-util"))]
pub use notify::MockNotifier;
pub use notify::{Notifier, SNS_MAX_MESSAGE_BYTES, SnsNotifier, summary};
pub use plan::{Action, Plan, PlanItem, PlanPolicy, name_partitions, plan};
pub use report::{Failure, PlannedChange, Report};
pub use run::{
    DEFAULT_CONCURRENCY, PARTITION_SIZE, PARTITION_THRESHOLD, PATHS_FULL_LIST_THRESHOLD, Progress,
    Replicator,
};
pub use s3::S3Target;
pub use sm::{SecretsManagerTarget, SecretsManagerTargetBuilder};
#[cfg(any(test, feature = "test-util"))]
pub use source::MockSource;
pub use source::{Source, VaultKvSource, VaultKvSourceBuilder};
#[cfg(any(test, feature = "test-util"))]
pub use target::MockTarget;
pub use target::{Desired, Target, WriteOutcome};
