//! A token-refreshing local Vault proxy with caching, secret files and lease renewal.
//!
//! **Status: planned.** This crate reserves its place in the workspace; its code
//! arrives with the "vault-proxy" issue. Nothing here is usable yet.
//!
//! What it will provide:
//!
//! | piece | does |
//! |---|---|
//! | `TokenManager` | logs in through any `vault_client::VaultAuth`, renews before expiry, logs in again when renewal is refused or the process was frozen past the token's TTL |
//! | proxy | listens on `127.0.0.1:8200`, injects the managed token, guards against SSRF, caches GETs where allowed |
//! | secret files | writes secrets to files (mode 0600, atomically) and keeps leased secrets renewed |
//!
//! It runs as the Lambda extension `vault-aws-extension` and as a sidecar through the CLI.
