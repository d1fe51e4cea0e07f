//! A local Vault proxy that holds the workload's token: functions and
//! services call `http://127.0.0.1:8200/v1/...` without credentials and the
//! proxy adds a token it keeps fresh. It also writes secrets to files and
//! keeps leased secrets renewed. It runs as the Lambda extension
//! `vault-aws-extension` and as the sidecar `vault-aws proxy`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vault_proxy::{Listener, Metrics, Proxy, Settings, TokenManager};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let env = |k: &str| std::env::var(k).ok();
//! let settings = Settings::from_lookup(env, false)?;
//! let client = vault_client::VaultClient::new(vault_proxy::client_config_from_lookup(env)?)?;
//! // Any login: here a token from VAULT_TOKEN; the binaries use `vault_auth_env`
//! // (AWS IAM, EC2, AppRole, token).
//! let auth = std::sync::Arc::new(vault_client::TokenAuth::from_lookup(env)?);
//! let tokens = TokenManager::new(client, auth, settings.token.clone(), Arc::new(Metrics::new()));
//! tokens.start();
//! let listener = Listener::bind(&settings.proxy.listen).await?;
//! let cancel = tokio_util::sync::CancellationToken::new();
//! Proxy::new(tokens.clone(), &settings.proxy).serve(listener, cancel).await?;
//! # Ok(()) }
//! ```
//!
//! | piece | does |
//! |---|---|
//! | [`TokenManager`] | logs in through any `Arc<dyn VaultAuth>`, renews before expiry (with jitter), logs in again when renewal is refused, the token cannot be renewed, is near its max TTL or was revoked; single-flight logins with backoff; lock-free reads; checks expiry by the wall clock (frozen Lambda processes) |
//! | [`Proxy`] | `127.0.0.1:8200` (or a unix socket): SSRF guard, optional cache (a write through the proxy is read back at once; others show within `VAULT_CACHE_MAX_STALENESS`; hot entries re-read in the background; dynamic secrets served with the same credentials, their leases renewed, dropped when the token changes), token injection, streaming forward, one re-login and retry on 403, Prometheus metrics at `/vault-aws/metrics` |
//! | [`SecretFiles`] | `VAULT_SECRET_PATH[_X]` → `VAULT_SECRET_FILE[_X]` (0600, atomic), lease renewal and re-read before max TTL, optional refresh interval |
//! | [`Settings`] | configuration from hashicorp/vault-lambda-extension's variables plus ours (see `docs/proxy.md`) |
//!
//! No feature flags. Secrets: tokens are `SecretString`s and sensitive
//! header values; `Debug` output and logs show accessors, never tokens or
//! secret values.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod cache;
mod config;
mod files;
mod metrics;
mod proxy;
mod token;
mod upstream;

pub use config::{
    CacheConfig, DEFAULT_GRACE, DEFAULT_LISTEN, DEFAULT_SECRET_FILE, DEFAULT_SECRET_HEADER,
    FilesConfig, GuardConfig, LAMBDA_CLIENT_TIMEOUT, LAMBDA_SECRET_VARIABLES, Listen, METRICS_PATH,
    ProxyConfig, RunMode, SECRET_DIR, SecretFileSpec, Settings, TokenConfig,
    client_config_from_lookup, lambda_client_config_from_lookup,
};
pub use files::{FileError, SecretFileState, SecretFiles};
pub use metrics::{Event, Metrics};
pub use proxy::{Listener, Proxy, ProxyBody};
pub use token::{Token, TokenError, TokenManager};
