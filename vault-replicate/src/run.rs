//! [`Replicator`]: snapshot, plan, execute, report.

use std::sync::Arc;
use std::time::Instant;

use tokio::time::Instant as Deadline;

use futures_util::stream::{self, StreamExt};
use secrecy::SecretString;
use vault_client::SecretMap;

use crate::calls::ApiCalls;
use crate::error::{ConfigError, Error, Result};
use crate::model::{
    DeletionPolicy, Granularity, SourceEntry, TargetEntry, TargetSnapshot, value_digest,
};
use crate::plan::{Action, Plan, PlanItem, PlanPolicy, plan};
use crate::report::{Failure, PlannedChange, Report};
use crate::source::Source;
use crate::target::{Desired, Target};

/// Told how a run progresses (a progress bar, a log line).
pub trait Progress: Send + Sync {
    /// Still taking the snapshots: the calls made so far, by kind (called
    /// every few hundred milliseconds; planning 10,000 secrets can take
    /// seconds before the first write).
    fn planning(&self, _calls: &std::collections::BTreeMap<String, u64>) {}
    /// The plan is made: `changes` items will be executed.
    fn planned(&self, changes: u64);
    /// One item is done.
    fn advance(&self);
}

/// Runs replication from one source to one target.
pub struct Replicator {
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    policy: PlanPolicy,
    concurrency: usize,
    progress: Option<Arc<dyn Progress>>,
    label: Option<String>,
    full_list_interval: Option<std::time::Duration>,
    last_full_list: std::sync::Mutex<Option<Instant>>,
    /// The target listing of the last run, while that run changed nothing
    /// (warm replicators only, see [`Replicator::with_partitioned_listing`]).
    remembered: std::sync::Mutex<Option<TargetSnapshot>>,
}

/// Fewer expected names than this: always one full listing.
pub const PARTITION_THRESHOLD: usize = 1_000;
/// Names per partition of a name-filtered listing (5 pages of 100).
pub const PARTITION_SIZE: usize = 500;
/// A plan and how it was made.
struct Listed {
    plan: Plan,
    /// Live secrets in Vault.
    secrets: u64,
    /// Secrets whose current version is deleted or destroyed.
    skipped: u64,
    /// Name partitions the target was listed by (0: one listing, or none).
    partitions: u64,
    /// The remembered listing was used (the target was not listed).
    reused: bool,
    /// The listing the plan was made from.
    target: TargetSnapshot,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("target", &self.target.kind())
            .field("policy", &self.policy)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// More paths than this in one [`Replicator::run_paths`]: the target is
/// listed in full instead of once per path.
pub const PATHS_FULL_LIST_THRESHOLD: usize = 100;

/// Default number of secrets worked on at once.
pub const DEFAULT_CONCURRENCY: usize = 16;

enum Outcome {
    Done(Action),
    Skipped,
    Failed(Failure),
    /// Not done: the run had to stop before its deadline.
    Left,
}

impl Replicator {
    /// A replicator; `concurrency` secrets are worked on at once (at least 1).
    pub fn new(
        source: Arc<dyn Source>,
        target: Arc<dyn Target>,
        policy: PlanPolicy,
        concurrency: usize,
    ) -> Result<Self, ConfigError> {
        if concurrency == 0 {
            return Err(ConfigError::invalid(
                "REPLICATE_CONCURRENCY",
                "a number of at least 1",
                format!("got {:?}", "0"),
            ));
        }
        Ok(Self {
            source,
            target,
            policy,
            concurrency,
            progress: None,
            label: None,
            full_list_interval: None,
            last_full_list: std::sync::Mutex::new(None),
            remembered: std::sync::Mutex::new(None),
        })
    }

    /// Names this replicator in its reports (default: the target's kind),
    /// e.g. `secretsmanager:eu` for one of several destinations.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Lists the target by name partitions, concurrently, instead of in one
    /// sequential listing: the partitions are the name prefixes of what Vault
    /// holds (at most [`PARTITION_SIZE`] names each), so a no-change run over
    /// N secrets waits for about N / 100 / 16 sequential pages instead of
    /// N / 100. Such a listing cannot see replicas outside those prefixes (a
    /// whole folder deleted from Vault, an old name template): the first run
    /// of this replicator, every run after `full_every` has passed since the
    /// last full listing, and runs with fewer than [`PARTITION_THRESHOLD`]
    /// secrets list everything, so those are still retired, one interval
    /// late at most.
    ///
    /// A warm replicator also remembers the target's listing after a run
    /// that changed nothing, failed nothing and finished: until the next
    /// full listing is due, the next run plans from it without listing the
    /// target at all (with at least [`PARTITION_THRESHOLD`] secrets), so an
    /// unchanged run costs the Vault listing alone. A run that writes
    /// anything, fails, or stops at its deadline forgets it (the next run
    /// lists again), as does [`run_paths`](Self::run_paths). What such a run
    /// cannot see is drift made by hand (a replica changed or deleted in
    /// Secrets Manager, not through Vault): the next full listing, at most
    /// `full_every` later, repairs it.
    pub fn with_partitioned_listing(mut self, full_every: std::time::Duration) -> Self {
        self.full_list_interval = Some(full_every);
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Takes both snapshots and plans. Returns the plan, the live secrets in
    /// Vault, the skipped ones, and the partitions of the target listing (0
    /// for one full listing).
    pub async fn plan(&self, calls: &ApiCalls) -> Result<(Plan, u64, u64, u64)> {
        let listed = self.plan_listed(calls).await?;
        Ok((
            listed.plan,
            listed.secrets,
            listed.skipped,
            listed.partitions,
        ))
    }

    async fn plan_listed(&self, calls: &ApiCalls) -> Result<Listed> {
        let full_due = match self.full_list_interval {
            None => true,
            Some(every) => self
                .last_full_list
                .lock()
                .map(|last| last.is_none_or(|t| t.elapsed() >= every))
                .unwrap_or(true),
        };
        let remembered = if full_due {
            None
        } else {
            self.remembered.lock().ok().and_then(|mut r| r.take())
        };
        let mut reused = false;
        let (source, target, partitions) = if full_due {
            let (source, target) =
                tokio::join!(self.source.snapshot(calls), self.target.snapshot(calls));
            (source?, target?, 0)
        } else {
            let source = self.source.snapshot(calls).await?;
            if source.entries.len() >= PARTITION_THRESHOLD
                && let Some(target) = remembered
            {
                reused = true;
                (source, target, 0)
            } else if source.entries.len() < PARTITION_THRESHOLD {
                (source, self.target.snapshot(calls).await?, 0)
            } else {
                let names: Vec<String> = source
                    .entries
                    .iter()
                    .map(|e| self.policy.naming.name_prefix(&e.mount, &e.path))
                    .collect();
                let prefixes = crate::plan::name_partitions(&names, PARTITION_SIZE);
                let target = self.target.snapshot_prefixes(&prefixes, calls).await?;
                (source, target, prefixes.len() as u64)
            }
        };
        if partitions == 0
            && !reused
            && let Ok(mut last) = self.last_full_list.lock()
        {
            *last = Some(vault_client::clock::now().into_std());
        }
        Ok(Listed {
            plan: plan(&source, &target, &self.policy),
            secrets: source.entries.len() as u64,
            skipped: source.skipped_deleted,
            partitions,
            reused,
            target,
        })
    }

    /// Forgets the remembered listing (see
    /// [`with_partitioned_listing`](Self::with_partitioned_listing)): the
    /// next run lists the target. For callers that wrote to the target
    /// another way.
    pub fn forget_listing(&self) {
        if let Ok(mut remembered) = self.remembered.lock() {
            *remembered = None;
        }
    }

    /// After a run planned from `listing`: remember it when the run changed
    /// nothing, failed nothing and finished (warm replicators only);
    /// otherwise forget any.
    fn remember_listing_if_clean(&self, listing: Option<TargetSnapshot>, report: &Report) {
        let clean = self.full_list_interval.is_some()
            && report.error.is_none()
            && !report.dry_run
            && report.failures.is_empty()
            && report.left == 0
            && report
                .counts
                .iter()
                .all(|(action, n)| *n == 0 || action == "unchanged" || action == "skipped");
        if let Ok(mut remembered) = self.remembered.lock() {
            *remembered = if clean { listing } else { None };
        }
    }

    /// One run: plan, then (unless `dry_run`) execute every change, at most
    /// `concurrency` at once. A failing secret never stops the others; a
    /// failing snapshot stops the run (nothing is written) and is the
    /// report's `error`.
    pub async fn run(&self, dry_run: bool) -> Report {
        self.run_until(dry_run, None).await
    }

    /// [`run`](Self::run), bounded: no write starts at or after `stop_at`,
    /// and writes still in flight then are abandoned (safe: a value is
    /// written before the tag that claims it, so the next run writes an
    /// abandoned secret again). The report counts what was not done as
    /// `left`; the next run plans it again. Leave a margin after `stop_at`
    /// for the S3 manifest, the SNS summary and the answer.
    pub async fn run_until(&self, dry_run: bool, stop_at: Option<Deadline>) -> Report {
        let started = vault_client::clock::now().into_std();
        let calls = ApiCalls::new();
        let mut report = Report {
            target: self
                .label
                .clone()
                .unwrap_or_else(|| self.target.kind().to_owned()),
            dry_run,
            ..Report::default()
        };
        let planned = match stop_at {
            None => self.plan_with_progress(&calls).await,
            Some(stop) => {
                match tokio::time::timeout_at(stop, self.plan_with_progress(&calls)).await {
                    Ok(p) => p,
                    Err(_) => Err(Error::Deadline),
                }
            }
        };
        let mut listing = None;
        match planned {
            Err(e) => report.error = Some(format!("cannot take the snapshots: {e}")),
            Ok(Listed {
                plan: p,
                secrets: n,
                skipped,
                partitions,
                reused,
                target,
            }) => {
                listing = Some(target);
                report.list_partitions = partitions;
                report.reused_listing = reused;
                report.source_secrets = n;
                report.skipped_deleted = skipped;
                if dry_run {
                    for item in &p.items {
                        report.bump(item.action.as_str());
                        if item.action != Action::Unchanged {
                            report.planned.push(self.planned_change(item));
                        }
                    }
                } else {
                    self.execute(&p, &calls, &mut report, stop_at).await;
                }
            }
        }
        if !dry_run {
            self.remember_listing_if_clean(listing, &report);
        }
        report.api_calls = calls.snapshot();
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }

    /// One run over exactly `paths` (`(mount, path)` pairs, e.g. what the
    /// audit stream named): the source reads the metadata of those secrets
    /// only, the target is listed by their name prefixes only (in full beyond
    /// [`PATHS_FULL_LIST_THRESHOLD`] paths), and the SAME
    /// planner and execution as [`run`](Self::run) decide and write (tags,
    /// deletion policy, rate limits). A path gone from Vault inside the
    /// scopes is retired by the deletion policy; no other secret is read.
    pub async fn run_paths(&self, paths: &[(String, String)]) -> Report {
        // It writes outside the scheduled runs: a remembered listing would
        // no longer be what the target holds.
        self.forget_listing();
        let started = vault_client::clock::now().into_std();
        let calls = ApiCalls::new();
        let mut report = Report {
            target: self
                .label
                .clone()
                .unwrap_or_else(|| self.target.kind().to_owned()),
            ..Report::default()
        };
        match self.plan_paths(paths, &calls).await {
            Err(e) => report.error = Some(format!("cannot take the snapshots: {e}")),
            Ok((p, n, skipped)) => {
                report.source_secrets = n;
                report.skipped_deleted = skipped;
                self.execute(&p, &calls, &mut report, None).await;
            }
        }
        report.api_calls = calls.snapshot();
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }

    async fn plan_paths(
        &self,
        paths: &[(String, String)],
        calls: &ApiCalls,
    ) -> Result<(Plan, u64, u64)> {
        let mut prefixes: Vec<String> = paths
            .iter()
            .map(|(m, p)| self.policy.naming.name_prefix(m, p))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        // One name-filtered listing per path, or one full listing when that
        // costs fewer calls (about 100 secrets a page).
        let target = async {
            if prefixes.len() > PATHS_FULL_LIST_THRESHOLD {
                self.target.snapshot(calls).await
            } else {
                self.target.snapshot_prefixes(&prefixes, calls).await
            }
        };
        let (source, target) = tokio::join!(self.source.snapshot_paths(paths, calls), target);
        let (source, mut target) = (source?, target?);
        // A name prefix also matches longer names (`app/a` lists `app/ab`):
        // keep exactly the named secrets, or the others would look deleted.
        target
            .entries
            .retain(|e| paths.iter().any(|(m, p)| *m == e.mount && *p == e.path));
        let p = plan(&source, &target, &self.policy);
        Ok((p, source.entries.len() as u64, source.skipped_deleted))
    }

    async fn plan_with_progress(&self, calls: &ApiCalls) -> Result<Listed> {
        let Some(progress) = &self.progress else {
            return self.plan_listed(calls).await;
        };
        let planning = self.plan_listed(calls);
        tokio::pin!(planning);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tokio::select! {
                result = &mut planning => return result,
                _ = tick.tick() => progress.planning(&calls.snapshot()),
            }
        }
    }

    fn planned_change(&self, item: &PlanItem) -> PlannedChange {
        let names = match (item.action, self.policy.naming.granularity()) {
            (Action::Create | Action::Update, Granularity::Secret) => {
                vec![self.policy.naming.name(&item.mount, &item.path, None)]
            }
            (Action::Create | Action::Update, Granularity::Key) => {
                vec![
                    self.policy
                        .naming
                        .name(&item.mount, &item.path, Some("<key>")),
                ]
            }
            _ => item.entries.iter().map(|e| e.name.clone()).collect(),
        };
        PlannedChange {
            action: item.action,
            mount: item.mount.clone(),
            path: item.path.clone(),
            version: item.version,
            names,
            reason: item.reason.clone(),
        }
    }

    async fn execute(
        &self,
        p: &Plan,
        calls: &ApiCalls,
        report: &mut Report,
        stop_at: Option<Deadline>,
    ) {
        report.counts.insert(
            Action::Unchanged.as_str().to_owned(),
            p.count(Action::Unchanged) as u64,
        );
        let changes: Vec<&PlanItem> = p.changes().collect();
        if let Some(progress) = &self.progress {
            progress.planned(changes.len() as u64);
        }
        // Indices, not `&PlanItem`s, into the closure: a closure taking a
        // reference makes this future not provably `Send` for every lifetime
        // (rust-lang/rust#102211), and `Watcher::run`, which awaits it, must
        // be spawnable.
        let mut results = stream::iter(0..changes.len())
            .map(|i| self.execute_until(changes[i], calls, stop_at))
            .buffer_unordered(self.concurrency);
        while let Some(outcome) = results.next().await {
            match outcome {
                Outcome::Done(action) => report.bump(action.as_str()),
                Outcome::Skipped => report.bump("skipped"),
                Outcome::Left => report.left += 1,
                Outcome::Failed(f) => {
                    report.bump("failed");
                    report.failures.push(f);
                }
            }
        }
        report
            .failures
            .sort_by(|a, b| (&a.mount, &a.path).cmp(&(&b.mount, &b.path)));
        if report.left > 0 {
            tracing::warn!(
                left = report.left,
                "stopped before the deadline: the next run continues"
            );
        }
        if let Err(e) = self.target.finish(calls).await {
            report.error = Some(format!("cannot finish the run: {e}"));
        }
    }

    async fn execute_until(
        &self,
        item: &PlanItem,
        calls: &ApiCalls,
        stop_at: Option<Deadline>,
    ) -> Outcome {
        let outcome = match stop_at {
            None => self.execute_item(item, calls).await,
            Some(stop) if vault_client::clock::now() >= stop => Outcome::Left,
            Some(stop) => tokio::time::timeout_at(stop, self.execute_item(item, calls))
                .await
                .unwrap_or(Outcome::Left),
        };
        if let Some(progress) = &self.progress {
            progress.advance();
        }
        outcome
    }

    async fn execute_item(&self, item: &PlanItem, calls: &ApiCalls) -> Outcome {
        let fail = |e: &Error| {
            tracing::warn!(mount = %item.mount, path = %item.path, action = item.action.as_str(), error = %e, "replication failed");
            Outcome::Failed(Failure {
                mount: item.mount.clone(),
                path: item.path.clone(),
                action: item.action,
                reason: e.to_string(),
                retryable: e.is_retryable(),
            })
        };
        match item.action {
            Action::Unchanged => Outcome::Done(Action::Unchanged),
            Action::Delete | Action::Orphan => {
                let policy = if item.action == Action::Orphan {
                    DeletionPolicy::None
                } else {
                    self.policy.deletion
                };
                for e in &item.entries {
                    if let Err(err) = self.target.retire(e, policy, calls).await {
                        return fail(&err);
                    }
                }
                Outcome::Done(item.action)
            }
            Action::Create | Action::Update => {
                let Some(version) = item.version else {
                    return Outcome::Skipped;
                };
                let entry = SourceEntry {
                    mount: item.mount.clone(),
                    path: item.path.clone(),
                    version,
                    version_id: item.version_id.clone().unwrap_or_default(),
                };
                let value = match self.source.read(&entry, calls).await {
                    Ok(Some(v)) => v,
                    Ok(None) => {
                        tracing::info!(mount = %item.mount, path = %item.path, version, "version deleted since the listing: skipped");
                        return Outcome::Skipped;
                    }
                    Err(e) => return fail(&e),
                };
                // KV v1 has no versions: the digest of the value written is
                // what the replica claims, whatever the listing saw.
                let version_id = if version == 0 {
                    value_digest(&value)
                } else {
                    entry.version_id
                };
                match self
                    .write_all(item, version, &version_id, &value, calls)
                    .await
                {
                    Ok(()) => Outcome::Done(item.action),
                    Err(e) => fail(&e),
                }
            }
        }
    }

    async fn write_all(
        &self,
        item: &PlanItem,
        version: u64,
        version_id: &str,
        value: &SecretMap,
        calls: &ApiCalls,
    ) -> Result<()> {
        let desired = desired_objects(&self.policy, item, version, version_id, value)?;
        for d in &desired {
            let existing: Option<TargetEntry> =
                item.entries.iter().find(|e| e.name == d.name).cloned();
            let outcome = self.target.write(d, existing, calls).await?;
            tracing::debug!(name = %d.name, version, ?outcome, "written");
        }
        // Key granularity: keys gone from this version.
        for e in &item.entries {
            if desired.iter().any(|d| d.name == e.name) {
                continue;
            }
            if self.policy.deletion == DeletionPolicy::None && e.orphaned {
                continue;
            }
            self.target.retire(e, self.policy.deletion, calls).await?;
        }
        Ok(())
    }
}

/// The objects to write for one Vault secret at `version`.
fn desired_objects(
    policy: &PlanPolicy,
    item: &PlanItem,
    version: u64,
    version_id: &str,
    value: &SecretMap,
) -> Result<Vec<Desired>> {
    let ser = |v: &serde_json::Value| -> Result<String> {
        match v {
            serde_json::Value::String(s) => Ok(s.clone()),
            other => serde_json::to_string(other).map_err(|e| Error::Serialize {
                path: item.path.clone(),
                problem: e.to_string(),
            }),
        }
    };
    let naming = &policy.naming;
    match naming.granularity() {
        Granularity::Secret => {
            let json =
                serde_json::to_string(value.expose_secret()).map_err(|e| Error::Serialize {
                    path: item.path.clone(),
                    problem: e.to_string(),
                })?;
            Ok(vec![Desired {
                name: naming.name(&item.mount, &item.path, None),
                mount: item.mount.clone(),
                path: item.path.clone(),
                key: None,
                version,
                version_id: version_id.to_owned(),
                key_count: 1,
                value: SecretString::from(json),
            }])
        }
        Granularity::Key => value
            .expose_secret()
            .iter()
            .map(|(k, v)| {
                Ok(Desired {
                    name: naming.name(&item.mount, &item.path, Some(k)),
                    mount: item.mount.clone(),
                    path: item.path.clone(),
                    key: Some(k.clone()),
                    version,
                    version_id: version_id.to_owned(),
                    key_count: value.len() as u64,
                    value: SecretString::from(ser(v)?),
                })
            })
            .collect(),
    }
}
