//! A small typed HTTP client for HashiCorp Vault and OpenBao, and the
//! [`VaultAuth`] trait every vault-aws crate shares.
//!
//! ```no_run
//! use vault_client::{VaultClient, TokenAuth, VaultAuth};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT, ... as the Vault CLI reads them.
//! let client = VaultClient::from_env()?;
//! let health = client.health().await?;
//! println!("vault {} sealed={}", health.version, health.sealed);
//!
//! // Any login method gives a token; here an existing token is checked.
//! let auth = TokenAuth::from_lookup(|k| std::env::var(k).ok())?.login(&client).await?;
//! let client = client.with_token(auth.client_token);
//!
//! if let Some(secret) = client.kv2("secret").read("app/db").await? {
//!     println!("version {} has keys {:?}", secret.version(), secret.data.keys().collect::<Vec<_>>());
//! }
//! # Ok(()) }
//! ```
//!
//! | area | methods |
//! |---|---|
//! | configuration | [`ClientConfig::from_env`], [`ClientConfig::from_lookup`] (`VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_CAPATH`, `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`, `VAULT_SKIP_VERIFY`, `VAULT_TLS_SERVER_NAME`, `VAULT_CLIENT_TIMEOUT`, `VAULT_MAX_RETRIES`) |
//! | sys | [`health`](VaultClient::health), [`unwrap`](VaultClient::unwrap), [`wrap_lookup`](VaultClient::wrap_lookup), [`renew_lease`](VaultClient::renew_lease), [`revoke_lease`](VaultClient::revoke_lease), [`read_policy`](VaultClient::read_policy), [`write_policy`](VaultClient::write_policy), [`enable_secrets_engine`](VaultClient::enable_secrets_engine), [`enable_auth_method`](VaultClient::enable_auth_method) |
//! | tokens | [`lookup_self`](VaultClient::lookup_self), [`renew_self`](VaultClient::renew_self), [`revoke_self`](VaultClient::revoke_self), [`create_token`](VaultClient::create_token) |
//! | login | [`login`](VaultClient::login) (any method), [`AppRole::login`] |
//! | AppRole | [`VaultClient::approle`]: roles, role-id, secret-id (optionally wrapped), accessors |
//! | KV v2 | [`VaultClient::kv2`]: read (latest or a version), write, metadata, list, recursive [`walk`](Kv2::walk), OpenBao's [`list_detailed`](Kv2::list_detailed) |
//! | anything else | [`VaultClient::request`] |
//!
//! Safety: tokens, secret ids, wrapping tokens and secret values are held as
//! [`secrecy::SecretString`] or [`SecretMap`]; no `Debug` or `Display` of a
//! client, request, response or error shows them. TLS verification is on
//! unless `VAULT_SKIP_VERIFY` says otherwise. Retries (connection errors,
//! timeouts, 429, 5xx; never other 4xx) use exponential backoff with jitter.
//!
//! Feature `test-util`: `MockVaultAuth`, a mockall mock of [`VaultAuth`].
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod approle;
mod auth;
mod client;
pub mod clock;
mod config;
mod error;
mod files;
mod kv2;
mod sys;
mod token;
mod types;

pub use approle::{
    AppRole, GeneratedSecretId, RoleConfig, SecretId, SecretIdInfo, SecretIdRequest,
};
#[cfg(any(test, feature = "test-util"))]
pub use auth::MockVaultAuth;
pub use auth::{TokenAuth, VaultAuth};
pub use client::{RawRequest, RawResponse, VaultClient};
pub use config::{
    ClientConfig, ConfigError, DEFAULT_ADDRESS, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, TlsConfig,
    non_blank, parse_bool, parse_duration, trimmed,
};
pub use error::{Error, Result, TransportKind, error_chain};
pub use files::write_private_file;
pub use kv2::{
    DetailedEntry, Kv2, KvMetadata, KvSecret, KvVersion, KvVersionState, kv_folder, walk_kv_tree,
};
pub use sys::{AclPolicy, Health, LeaseRenewal, WrapLookup};
pub use token::{TokenInfo, TokenRequest};
pub use types::{AuthInfo, SecretMap, VaultResponse, WrapInfo};

pub use http::Method;
pub use secrecy::{self, ExposeSecret, SecretString};
