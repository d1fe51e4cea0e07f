//! Near-real-time replication: [`Watcher`] follows Vault's / OpenBao's
//! socket audit device (JSON lines over TCP) and replicates exactly the
//! secrets the audit entries name, through [`Replicator::run_paths`] (the
//! same planner, tags, deletion policy and rate limits as the scheduled run).
//!
//! - The listener never back-pressures Vault: every connection is read as
//!   fast as it arrives, relevant entries go into a bounded queue, and an
//!   entry that does not fit is dropped and counted (the scheduled run, the
//!   reconcile, catches it up).
//! - Only peers on the allow-list may connect; others are closed at once.
//! - Bursts are coalesced: every path named during one window is replicated
//!   once, at its current version.
//! - A path whose replication failed stays pending (bounded) and is retried
//!   with exponential backoff.
//! - Nothing but the request path, operation and mount is read from an entry;
//!   nothing of an entry is logged but the path.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::ConfigError;
use crate::model::SourceScope;
use crate::run::Replicator;

/// Default listen address of the watcher.
pub const DEFAULT_WATCH_LISTEN: &str = "127.0.0.1:9514";
/// Default peers allowed to connect.
pub const DEFAULT_WATCH_PEERS: &str = "127.0.0.1,::1";
/// Default coalescing window in milliseconds.
pub const DEFAULT_WATCH_WINDOW_MS: u64 = 1_000;
/// Default capacity of the queue (and of the pending set).
pub const DEFAULT_WATCH_QUEUE: usize = 10_000;
/// Default interval of the metrics log line, in seconds.
pub const DEFAULT_WATCH_METRICS_SECS: u64 = 60;
/// Longest audit line read; longer lines are dropped (counted).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Longest backoff between retries of a failing path.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Settings of [`Watcher`], from `REPLICATE_WATCH_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// Where the listener binds (`REPLICATE_WATCH_LISTEN`).
    pub listen: SocketAddr,
    /// IP addresses allowed to connect (`REPLICATE_WATCH_PEERS`).
    pub peers: Vec<IpAddr>,
    /// The coalescing window (`REPLICATE_WATCH_WINDOW_MS`).
    pub window: Duration,
    /// Capacity of the queue and of the pending set (`REPLICATE_WATCH_QUEUE`).
    pub queue: usize,
    /// Interval of the metrics log line (`REPLICATE_WATCH_METRICS_SECS`).
    pub metrics_every: Duration,
}

impl WatchConfig {
    /// Reads the settings through `lookup` (unset or empty: the default).
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let listen_raw = get("REPLICATE_WATCH_LISTEN").unwrap_or(DEFAULT_WATCH_LISTEN.into());
        let listen = listen_raw.trim().parse().map_err(|_| {
            ConfigError::new(
                "REPLICATE_WATCH_LISTEN",
                "an IP address and port, e.g. 0.0.0.0:9514",
                &listen_raw,
            )
        })?;
        let peers_raw = get("REPLICATE_WATCH_PEERS").unwrap_or(DEFAULT_WATCH_PEERS.into());
        let peers = peers_raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpAddr>().map_err(|_| {
                    ConfigError::new(
                        "REPLICATE_WATCH_PEERS",
                        "a comma-separated list of IP addresses",
                        &peers_raw,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if peers.is_empty() {
            return Err(ConfigError::new(
                "REPLICATE_WATCH_PEERS",
                "at least one IP address",
                &peers_raw,
            ));
        }
        let number = |k: &str, default: u64| -> Result<u64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::new(k, "a whole number of at least 1", &v)),
            }
        };
        Ok(Self {
            listen,
            peers,
            window: Duration::from_millis(number(
                "REPLICATE_WATCH_WINDOW_MS",
                DEFAULT_WATCH_WINDOW_MS,
            )?),
            queue: number("REPLICATE_WATCH_QUEUE", DEFAULT_WATCH_QUEUE as u64)? as usize,
            metrics_every: Duration::from_secs(number(
                "REPLICATE_WATCH_METRICS_SECS",
                DEFAULT_WATCH_METRICS_SECS,
            )?),
        })
    }
}

/// One secret an audit entry says has changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditChange {
    /// The mount, without slashes.
    pub mount: String,
    /// The secret's path below the mount.
    pub path: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    request: Option<Request>,
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    operation: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    mount_point: Option<String>,
    #[serde(default)]
    mount_type: Option<String>,
}

const KV2_ENDPOINTS: [&str; 5] = ["data/", "metadata/", "delete/", "undelete/", "destroy/"];

/// The secret a successful KV write, patch or delete names, if it lies under
/// `scopes`: `<mount>/data|metadata|delete|undelete|destroy/<path>` (KV v2)
/// or `<mount>/<path>` (KV v1). Request entries, failed requests, reads,
/// lists and other mounts give `None`.
pub fn parse_audit_line(line: &str, scopes: &[SourceScope]) -> Option<AuditChange> {
    let entry: Entry = serde_json::from_str(line).ok()?;
    if entry.kind != "response" || entry.error.as_deref().is_some_and(|e| !e.is_empty()) {
        return None;
    }
    let req = entry.request?;
    if !matches!(
        req.operation.as_str(),
        "create" | "update" | "delete" | "patch"
    ) {
        return None;
    }
    if req
        .mount_type
        .as_deref()
        .is_some_and(|t| t != "kv" && t != "generic")
    {
        return None;
    }
    let path = req.path.trim_start_matches('/');
    let candidates: Vec<(String, &str)> = match req.mount_point.as_deref() {
        Some(mp) if !mp.trim_matches('/').is_empty() => {
            let mount = mp.trim_matches('/');
            let rest = path.strip_prefix(mount)?.strip_prefix('/')?;
            vec![(mount.to_owned(), rest)]
        }
        // No mount point in the entry: every scope's mount is a candidate.
        _ => scopes
            .iter()
            .filter_map(|s| {
                let rest = path.strip_prefix(s.mount.as_str())?.strip_prefix('/')?;
                Some((s.mount.clone(), rest))
            })
            .collect(),
    };
    for (mount, rest) in candidates {
        let secret = KV2_ENDPOINTS
            .iter()
            .find_map(|e| rest.strip_prefix(e))
            .unwrap_or(rest)
            .trim_end_matches('/');
        if secret.is_empty() {
            continue;
        }
        if scopes.iter().any(|s| s.contains(&mount, secret)) {
            return Some(AuditChange {
                mount,
                path: secret.to_owned(),
            });
        }
    }
    None
}

/// Counters and gauges of a [`Watcher`].
#[derive(Debug, Default)]
pub struct WatchMetrics {
    /// Audit lines received.
    pub received: AtomicU64,
    /// Relevant entries queued.
    pub queued: AtomicU64,
    /// Relevant entries dropped because the queue or the pending set was full
    /// (or the line too long).
    pub dropped: AtomicU64,
    /// Connections refused (peer not on the allow-list).
    pub refused: AtomicU64,
    /// Entries in the queue now (gauge).
    pub queue_depth: AtomicU64,
    /// Paths waiting to be replicated now, retries included (gauge).
    pub pending: AtomicU64,
    /// Paths replicated (every target succeeded).
    pub replicated: AtomicU64,
    /// Lag of the last replicated path, received → written, in ms (gauge).
    pub last_lag_ms: AtomicU64,
    /// Largest lag since the last metrics line, in ms.
    pub max_lag_ms: AtomicU64,
    /// Failed replications by target label.
    pub failures: std::sync::Mutex<BTreeMap<String, u64>>,
    /// The last failure's reason (no value: errors never carry one).
    pub last_error: std::sync::Mutex<Option<String>>,
    /// Calls made by kind (`secretsmanager.PutSecretValue`, `vault.read`, ...),
    /// every target together.
    pub api_calls: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl WatchMetrics {
    /// Failures of `target` so far.
    pub fn failures_of(&self, target: &str) -> u64 {
        self.failures
            .lock()
            .map(|f| f.get(target).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Calls of `kind` so far (see [`WatchMetrics::api_calls`]).
    pub fn calls(&self, kind: &str) -> u64 {
        self.api_calls
            .lock()
            .map(|c| c.get(kind).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn log(&self) {
        let failures = self
            .failures
            .lock()
            .map(|f| format!("{f:?}"))
            .unwrap_or_default();
        tracing::info!(
            received = self.received.load(Ordering::Relaxed),
            queued = self.queued.load(Ordering::Relaxed),
            dropped = self.dropped.load(Ordering::Relaxed),
            refused = self.refused.load(Ordering::Relaxed),
            queue_depth = self.queue_depth.load(Ordering::Relaxed),
            pending = self.pending.load(Ordering::Relaxed),
            replicated = self.replicated.load(Ordering::Relaxed),
            last_lag_ms = self.last_lag_ms.load(Ordering::Relaxed),
            max_lag_ms = self.max_lag_ms.swap(0, Ordering::Relaxed),
            failures = %failures,
            "watch metrics"
        );
    }
}

struct Pending {
    first_seen: Instant,
    attempts: u32,
    not_before: Instant,
}

/// Follows a socket audit device and replicates what it names.
pub struct Watcher {
    replicators: Vec<Replicator>,
    scopes: Vec<SourceScope>,
    config: WatchConfig,
    metrics: Arc<WatchMetrics>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("replicators", &self.replicators.len())
            .field("scopes", &self.scopes)
            .field("config", &self.config)
            .finish()
    }
}

impl Watcher {
    /// A watcher replicating entries under `scopes` (the source's scopes)
    /// through every replicator.
    pub fn new(
        replicators: Vec<Replicator>,
        scopes: Vec<SourceScope>,
        config: WatchConfig,
    ) -> Self {
        Self {
            replicators,
            scopes,
            config,
            metrics: Arc::new(WatchMetrics::default()),
        }
    }

    /// The counters and gauges (shared: read them while it runs).
    pub fn metrics(&self) -> Arc<WatchMetrics> {
        self.metrics.clone()
    }

    /// Binds the listener at the configured address (bind before starting
    /// Vault: a socket audit device must reach it when it is enabled).
    pub async fn bind(&self) -> std::io::Result<TcpListener> {
        TcpListener::bind(self.config.listen).await
    }

    /// Accepts audit streams on `listener` and replicates until `shutdown`
    /// completes; what is still pending then is left to the reconcile.
    pub async fn run(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        let (tx, rx) = mpsc::channel::<(AuditChange, Instant)>(self.config.queue);
        let accept = accept_loop(
            listener,
            tx,
            self.config.peers.clone(),
            self.scopes.clone(),
            self.metrics.clone(),
        );
        let work = self.work(rx);
        tokio::select! {
            () = accept => {},
            () = work => {},
            () = shutdown => {
                tracing::info!("watch: shutting down; the next scheduled run reconciles what is pending");
            },
        }
        self.metrics.log();
    }

    async fn work(&self, mut rx: mpsc::Receiver<(AuditChange, Instant)>) {
        let metrics = &self.metrics;
        let mut pending: HashMap<(String, String), Pending> = HashMap::new();
        let mut next_log = Instant::now() + self.config.metrics_every;
        let add = |pending: &mut HashMap<(String, String), Pending>,
                   (c, at): (AuditChange, Instant)| {
            metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            let key = (c.mount, c.path);
            if let Some(p) = pending.get_mut(&key) {
                // A new write: retry soon even if the path was backing off.
                p.not_before = p.not_before.min(at);
                return;
            }
            if pending.len() >= self.config.queue {
                metrics.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            pending.insert(
                key,
                Pending {
                    first_seen: at,
                    attempts: 0,
                    not_before: at,
                },
            );
        };
        loop {
            // Wait for something due: a new entry, a retry, or the metrics line.
            let next_retry = pending.values().map(|p| p.not_before).min();
            let wake = next_retry.map_or(next_log, |r| r.min(next_log));
            tokio::select! {
                got = rx.recv() => match got {
                    Some(item) => add(&mut pending, item),
                    None => return,
                },
                () = tokio::time::sleep_until(wake) => {},
            }
            // Coalesce: gather everything that arrives within the window.
            if pending.values().any(|p| p.attempts == 0) {
                let until = Instant::now() + self.config.window;
                loop {
                    tokio::select! {
                        got = rx.recv() => match got {
                            Some(item) => add(&mut pending, item),
                            None => break,
                        },
                        () = tokio::time::sleep_until(until) => break,
                    }
                }
            }
            let now = Instant::now();
            let due: Vec<(String, String)> = pending
                .iter()
                .filter(|(_, p)| p.not_before <= now)
                .map(|(k, _)| k.clone())
                .collect();
            metrics
                .pending
                .store(pending.len() as u64, Ordering::Relaxed);
            if !due.is_empty() {
                let failed = self.replicate(&due).await;
                let done = Instant::now();
                for key in due {
                    if failed.contains(&key) {
                        if let Some(p) = pending.get_mut(&key) {
                            p.attempts += 1;
                            let backoff = Duration::from_millis(500)
                                .saturating_mul(1 << p.attempts.min(6))
                                .min(MAX_BACKOFF);
                            p.not_before = done + backoff;
                        }
                    } else if let Some(p) = pending.remove(&key) {
                        let lag = done.duration_since(p.first_seen).as_millis() as u64;
                        metrics.replicated.fetch_add(1, Ordering::Relaxed);
                        metrics.last_lag_ms.store(lag, Ordering::Relaxed);
                        metrics.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
                    }
                }
                metrics
                    .pending
                    .store(pending.len() as u64, Ordering::Relaxed);
            }
            if Instant::now() >= next_log {
                metrics.log();
                next_log = Instant::now() + self.config.metrics_every;
            }
        }
    }

    /// Replicates `paths` through every replicator; the paths to retry: those
    /// that failed somewhere with a retryable error (all of them when a
    /// snapshot failed).
    async fn replicate(&self, paths: &[(String, String)]) -> Vec<(String, String)> {
        let mut failed: Vec<(String, String)> = Vec::new();
        for r in &self.replicators {
            let report = r.run_paths(paths).await;
            if let Ok(mut calls) = self.metrics.api_calls.lock() {
                for (k, n) in &report.api_calls {
                    *calls.entry(k.clone()).or_default() += n;
                }
            }
            let bump = |n: u64| {
                if let Ok(mut f) = self.metrics.failures.lock() {
                    *f.entry(report.target.clone()).or_default() += n;
                }
            };
            if let Some(e) = &report.error {
                tracing::warn!(target_label = %report.target, paths = paths.len(), error = %e, "watch: replication failed; retrying with backoff");
                bump(paths.len() as u64);
                if let Ok(mut last) = self.metrics.last_error.lock() {
                    *last = Some(e.clone());
                }
                failed.extend(paths.iter().cloned());
                continue;
            }
            bump(report.failures.len() as u64);
            if let Some(f) = report.failures.first()
                && let Ok(mut last) = self.metrics.last_error.lock()
            {
                *last = Some(format!("{}/{}: {}", f.mount, f.path, f.reason));
            }
            // A failure that cannot succeed by retrying (an invalid name, a
            // refused permission) is dropped: the report and the reconcile show it.
            for f in &report.failures {
                if f.retryable {
                    failed.push((f.mount.clone(), f.path.clone()));
                } else {
                    tracing::warn!(target_label = %report.target, mount = %f.mount, path = %f.path, reason = %f.reason, "watch: replication failed and is not retried");
                }
            }
            tracing::debug!(target_label = %report.target, counts = ?report.counts, "watch: replicated");
        }
        failed.sort();
        failed.dedup();
        failed
    }
}

async fn accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<(AuditChange, Instant)>,
    peers: Vec<IpAddr>,
    scopes: Vec<SourceScope>,
    metrics: Arc<WatchMetrics>,
) {
    let scopes = Arc::new(scopes);
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watch: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if !peers.contains(&ip) {
            metrics.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %ip, "watch: connection from a peer not in REPLICATE_WATCH_PEERS refused");
            drop(stream);
            continue;
        }
        tracing::info!(peer = %ip, "watch: audit stream connected");
        let (tx, scopes, metrics) = (tx.clone(), scopes.clone(), metrics.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match (&mut reader)
                    .take(MAX_LINE_BYTES as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::info!(peer = %ip, error = %e, "watch: audit stream closed");
                        break;
                    }
                }
                metrics.received.fetch_add(1, Ordering::Relaxed);
                if line.len() > MAX_LINE_BYTES {
                    metrics.dropped.fetch_add(1, Ordering::Relaxed);
                    // Skip the rest of this overlong line.
                    let rest = &mut Vec::new();
                    if reader.read_until(b'\n', rest).await.is_err() {
                        break;
                    }
                    continue;
                }
                let Ok(text) = std::str::from_utf8(&line) else {
                    continue;
                };
                let Some(change) = parse_audit_line(text.trim(), &scopes) else {
                    continue;
                };
                match tx.try_send((change, Instant::now())) {
                    Ok(()) => {
                        metrics.queued.fetch_add(1, Ordering::Relaxed);
                        metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        metrics.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, op: &str, path: &str, error: Option<&str>) -> String {
        serde_json::json!({
            "type": kind,
            "time": "2026-12-01T05:42:56.128166226Z",
            "error": error,
            "request": {"operation": op, "path": path, "mount_point": "secret/", "mount_type": "kv",
                        "data": {"data": {"password": "hmac-sha256:abc"}}},
            "response": {}
        })
        .to_string()
    }

    #[test]
    fn parses_kv_v2_and_v1_changes_under_the_scopes() {
        let scopes = vec![SourceScope::new("secret", "app")];
        let got = |l: String| parse_audit_line(&l, &scopes).map(|c| c.path);
        for p in [
            "secret/data/app/x",
            "secret/metadata/app/x",
            "secret/delete/app/x",
            "secret/undelete/app/x",
            "secret/destroy/app/x",
            "secret/app/x",
        ] {
            let op = if p.contains("metadata") {
                "delete"
            } else {
                "update"
            };
            assert_eq!(
                got(line("response", op, p, None)).as_deref(),
                Some("app/x"),
                "{p}"
            );
        }
        assert_eq!(
            got(line("request", "update", "secret/data/app/x", None)),
            None
        );
        assert_eq!(
            got(line("response", "read", "secret/data/app/x", None)),
            None
        );
        assert_eq!(
            got(line("response", "list", "secret/metadata/app/", None)),
            None
        );
        assert_eq!(
            got(line(
                "response",
                "update",
                "secret/data/app/x",
                Some("permission denied")
            )),
            None
        );
        assert_eq!(
            got(line("response", "update", "secret/data/other/x", None)),
            None
        );
        assert_eq!(got("not json".into()), None);
    }

    #[test]
    fn config_defaults_and_errors() {
        let c = WatchConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_WATCH_LISTEN);
        assert_eq!(c.window, Duration::from_millis(DEFAULT_WATCH_WINDOW_MS));
        assert_eq!(c.queue, DEFAULT_WATCH_QUEUE);
        let e = WatchConfig::from_lookup(|k| (k == "REPLICATE_WATCH_PEERS").then(|| "nope".into()))
            .unwrap_err();
        assert!(e.to_string().contains("REPLICATE_WATCH_PEERS"), "{e}");
    }
}
