//! [`Report`]: what a run did.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::plan::Action;

/// One secret that could not be replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The Vault mount.
    pub mount: String,
    /// The Vault path.
    pub path: String,
    /// What was attempted.
    pub action: Action,
    /// What went wrong (never a value).
    pub reason: String,
    /// Whether it was transient (throttling, 5xx, connection).
    pub retryable: bool,
}

/// One planned change (listed in dry runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// The action.
    pub action: Action,
    /// The Vault mount.
    pub mount: String,
    /// The Vault path.
    pub path: String,
    /// The Vault version to write.
    pub version: Option<u64>,
    /// The target names involved.
    pub names: Vec<String>,
    /// Why.
    pub reason: String,
}

/// What one run did: counts per action, failures, API calls by kind, time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `secretsmanager`, `s3`, or the label of one of several destinations
    /// (`secretsmanager:<name>`).
    pub target: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Live secrets found in Vault.
    pub source_secrets: u64,
    /// Secrets whose current version is deleted or destroyed (not replicated).
    pub skipped_deleted: u64,
    /// Done (or, in a dry run, planned) per action: `create`, `update`,
    /// `delete`, `orphan`, `unchanged`; plus `failed` and `skipped`.
    pub counts: BTreeMap<String, u64>,
    /// The secrets that failed, with reasons.
    pub failures: Vec<Failure>,
    /// Calls by kind (`vault.list`, `vault.read`, `secretsmanager.ListSecrets`, ...).
    pub api_calls: BTreeMap<String, u64>,
    /// Changes not done because the run stopped before its deadline (the
    /// next run does them): the run is partial.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub left: u64,
    /// Name partitions the target was listed by (0: one full listing, or
    /// none at all when `reused_listing`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub list_partitions: u64,
    /// The target was not listed: the plan used the listing a warm
    /// replicator remembered from its last run, which changed nothing (see
    /// `Replicator::with_partitioned_listing`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused_listing: bool,
    /// The planned changes (dry runs only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedChange>,
    /// A failure that stopped the whole run (a snapshot could not be taken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Report {
    /// Whether the run did everything it planned (no failure, not stopped
    /// by its deadline).
    pub fn is_complete(&self) -> bool {
        self.is_success() && self.left == 0
    }

    /// `partial: N left` when the run stopped before its deadline.
    pub fn partial_note(&self) -> Option<String> {
        (self.left > 0).then(|| {
            format!(
                "partial: {} left (stopped before the deadline; the next run continues)",
                self.left
            )
        })
    }

    /// Whether the run completed without any failure.
    pub fn is_success(&self) -> bool {
        self.error.is_none() && self.failures.is_empty()
    }

    /// The count for `name` (`create`, `failed`, ...).
    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// API calls of `kind`.
    pub fn calls(&self, kind: &str) -> u64 {
        self.api_calls.get(kind).copied().unwrap_or(0)
    }

    pub(crate) fn bump(&mut self, name: &str) {
        *self.counts.entry(name.to_owned()).or_default() += 1;
    }

    /// A readable multi-line summary.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "vault-replicate -> {}{}: {} secrets in vault, {} ms",
            self.target,
            if self.dry_run { " (dry run)" } else { "" },
            self.source_secrets,
            self.duration_ms
        );
        if let Some(e) = &self.error {
            let _ = writeln!(out, "ERROR: {e}");
        }
        if let Some(p) = self.partial_note() {
            let _ = writeln!(out, "{p}");
        }
        let width = self
            .counts
            .keys()
            .chain(self.api_calls.keys())
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(10);
        let _ = writeln!(out, "{:<width$}  {:>8}", "action", "count");
        for (k, v) in &self.counts {
            let _ = writeln!(out, "{k:<width$}  {v:>8}");
        }
        let _ = writeln!(out, "{:<width$}  {:>8}", "api call", "count");
        for (k, v) in &self.api_calls {
            let _ = writeln!(out, "{k:<width$}  {v:>8}");
        }
        for p in &self.planned {
            let _ = writeln!(
                out,
                "{:<9} {}/{}{} -> {} ({})",
                p.action.as_str(),
                p.mount,
                p.path,
                p.version.map(|v| format!(" v{v}")).unwrap_or_default(),
                p.names.join(", "),
                p.reason
            );
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "failures:");
            for f in &self.failures {
                let _ = writeln!(
                    out,
                    "  {} {}/{}: {}",
                    f.action.as_str(),
                    f.mount,
                    f.path,
                    f.reason
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json_show_counts_calls_and_failures() {
        let mut r = Report {
            target: "secretsmanager".into(),
            ..Report::default()
        };
        r.bump("create");
        r.bump("create");
        r.api_calls.insert("vault.list".into(), 3);
        r.failures.push(Failure {
            mount: "secret".into(),
            path: "a/b".into(),
            action: Action::Update,
            reason: "boom".into(),
            retryable: false,
        });
        assert!(!r.is_success());
        assert_eq!(r.count("create"), 2);
        let t = r.table();
        assert!(
            t.contains("create") && t.contains("vault.list") && t.contains("a/b: boom"),
            "{t}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["counts"]["create"], 2);
        assert_eq!(json["failures"][0]["action"], "update");
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }
}
