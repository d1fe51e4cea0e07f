//! `auth/token/*` endpoints for the client's own token.

use std::collections::HashMap;
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::VaultClient;
use crate::error::Result;
use crate::types::{AuthInfo, nullable};

/// What `auth/token/lookup-self` says of a token. The token itself is not
/// kept (Vault returns it as `id`); the accessor identifies it safely.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The token's accessor.
    #[serde(default)]
    pub accessor: String,
    /// Policies.
    #[serde(default, deserialize_with = "nullable")]
    pub policies: Vec<String>,
    /// Remaining time to live in seconds (0 = no expiry).
    #[serde(default)]
    pub ttl: u64,
    /// TTL at creation, in seconds.
    #[serde(default)]
    pub creation_ttl: u64,
    /// Explicit max TTL in seconds (0 = none beyond the system's).
    #[serde(default)]
    pub explicit_max_ttl: u64,
    /// Whether the token can be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// Expiry time (RFC 3339), absent for tokens that do not expire.
    #[serde(default)]
    pub expire_time: Option<String>,
    /// `service` or `batch`.
    #[serde(default, rename = "type")]
    pub token_type: String,
    /// Login path that created the token, e.g. `auth/approle/login`.
    #[serde(default)]
    pub path: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Remaining uses (0 = unlimited).
    #[serde(default)]
    pub num_uses: u64,
    /// Whether the token is an orphan.
    #[serde(default)]
    pub orphan: bool,
    /// Metadata.
    #[serde(default, deserialize_with = "nullable")]
    pub meta: HashMap<String, String>,
    /// Identity entity.
    #[serde(default)]
    pub entity_id: String,
}

impl TokenInfo {
    /// Remaining TTL, `None` for a token that does not expire.
    pub fn ttl(&self) -> Option<Duration> {
        (self.ttl > 0).then(|| Duration::from_secs(self.ttl))
    }
}

/// Parameters of `auth/token/create`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TokenRequest {
    /// Policies of the new token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// TTL, e.g. `"1h"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Explicit max TTL, e.g. `"24h"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_max_ttl: Option<String>,
    /// Whether it can be renewed (Vault's default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewable: Option<bool>,
    /// Number of uses (0 = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_uses: Option<u64>,
    /// Create an orphan token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_parent: bool,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl TokenRequest {
    /// A request for a token with `policies` and `ttl` (e.g. `"30m"`).
    pub fn new(policies: &[&str], ttl: &str) -> Self {
        Self {
            policies: policies.iter().map(|p| (*p).to_owned()).collect(),
            ttl: Some(ttl.to_owned()),
            ..Self::default()
        }
    }
}

impl VaultClient {
    /// `GET auth/token/lookup-self`.
    pub async fn lookup_self(&self) -> Result<TokenInfo> {
        self.request(Method::GET, "auth/token/lookup-self")
            .send()
            .await?
            .data()
    }

    /// `POST auth/token/renew-self`. Vault may grant less than `increment`
    /// (max TTL); check the returned `lease_duration`.
    pub async fn renew_self(&self, increment: Option<Duration>) -> Result<AuthInfo> {
        let body = match increment {
            Some(i) => json!({ "increment": format!("{}s", i.as_secs()) }),
            None => json!({}),
        };
        self.request(Method::POST, "auth/token/renew-self")
            .json(&body)
            .send()
            .await?
            .auth()
    }

    /// `POST auth/token/revoke-self`. Afterwards every use of the token gets 403.
    pub async fn revoke_self(&self) -> Result<()> {
        self.request(Method::POST, "auth/token/revoke-self")
            .send()
            .await?;
        Ok(())
    }

    /// `POST auth/token/create`: a child token of the client's token.
    pub async fn create_token(&self, request: &TokenRequest) -> Result<AuthInfo> {
        let body = serde_json::to_value(request).unwrap_or_else(|_| json!({}));
        self.request(Method::POST, "auth/token/create")
            .json(&body)
            .send()
            .await?
            .auth()
    }
}
