//! Replication of Vault KV v2 secrets into AWS Secrets Manager (and S3 backups).
//!
//! **Status: planned.** This crate reserves its place in the workspace; its code
//! arrives with the "vault-replicate" issue. Nothing here is usable yet.
//!
//! What it will provide:
//!
//! | piece | does |
//! |---|---|
//! | `Source` / `VaultKvSource` | a snapshot of the current versions under one or more KV v2 mounts and prefixes (one `detailed-metadata` LIST per folder on OpenBao) |
//! | `Target` / `SecretsManagerTarget`, `S3Target` | a snapshot of what we manage in AWS, and create/update/delete with rate limits and retries |
//! | `plan` | a pure function from the two snapshots and a deletion policy to a `Plan` |
//! | `Report`, `Notifier` / `SnsNotifier` | what a run did, and a bounded SNS summary when something failed |
