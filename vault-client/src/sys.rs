//! `sys/*` endpoints: health, response wrapping, leases, ACL policies, mounts.

use std::time::Duration;

use http::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::client::VaultClient;
use crate::error::Result;
use crate::types::VaultResponse;

/// The answer of `sys/health`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// Whether the server is initialized.
    #[serde(default)]
    pub initialized: bool,
    /// Whether the server is sealed.
    #[serde(default)]
    pub sealed: bool,
    /// Whether the server is a standby node.
    #[serde(default)]
    pub standby: bool,
    /// Whether the server is a performance standby.
    #[serde(default)]
    pub performance_standby: bool,
    /// Server version, e.g. `2.7.2`.
    #[serde(default)]
    pub version: String,
    /// Cluster name.
    #[serde(default)]
    pub cluster_name: String,
    /// Server time (Unix seconds).
    #[serde(default)]
    pub server_time_utc: u64,
    /// The HTTP status the endpoint answered with (200 active, 429 standby,
    /// 472/473 replication or performance standby, 501 not initialized,
    /// 503 sealed).
    #[serde(skip)]
    pub status: u16,
}

impl Health {
    /// Whether the node can serve requests: initialized, unsealed, active or
    /// a standby that forwards.
    pub fn is_ready(&self) -> bool {
        self.initialized && !self.sealed
    }
}

/// What `sys/wrapping/lookup` says of a wrapping token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct WrapLookup {
    /// The path whose response was wrapped, e.g. `auth/approle/role/x/secret-id`.
    #[serde(default)]
    pub creation_path: String,
    /// When the token was created (RFC 3339).
    #[serde(default)]
    pub creation_time: String,
    /// Its TTL in seconds.
    #[serde(default)]
    pub creation_ttl: u64,
}

/// The result of renewing a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseRenewal {
    /// The lease.
    pub lease_id: String,
    /// Whether it can be renewed again.
    pub renewable: bool,
    /// Its new duration. Shorter than asked when the lease nears its max TTL.
    pub lease_duration: Duration,
}

/// An ACL policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AclPolicy {
    /// Policy name.
    pub name: String,
    /// Policy text (HCL or JSON).
    pub policy: String,
}

impl VaultClient {
    /// `GET sys/health`. Standby, sealed and uninitialized nodes answer with
    /// their own status codes; those are returned as a [`Health`], not errors.
    pub async fn health(&self) -> Result<Health> {
        let response = self
            .request(Method::GET, "sys/health")
            .no_token()
            .execute(is_health_status)
            .await?;
        let mut health: Health = response.json()?;
        health.status = response.status.as_u16();
        Ok(health)
    }

    /// `POST sys/wrapping/unwrap` with the wrapping token as the request's
    /// token: returns the wrapped response. A wrapping token works once; a
    /// second unwrap is refused by Vault (HTTP 400).
    pub async fn unwrap<T: DeserializeOwned>(
        &self,
        wrapping_token: &SecretString,
    ) -> Result<VaultResponse<T>> {
        self.request(Method::POST, "sys/wrapping/unwrap")
            .token(wrapping_token)
            .send()
            .await?
            .vault()
    }

    /// `POST sys/wrapping/lookup`: where a wrapping token comes from, without
    /// using it up. Check `creation_path` before unwrapping a token you were
    /// handed, so a forged token is noticed.
    pub async fn wrap_lookup(&self, wrapping_token: &SecretString) -> Result<WrapLookup> {
        self.request(Method::POST, "sys/wrapping/lookup")
            .no_token()
            .json(&json!({ "token": wrapping_token.expose_secret() }))
            .send()
            .await?
            .data()
    }

    /// `PUT sys/leases/renew`.
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment: Option<Duration>,
    ) -> Result<LeaseRenewal> {
        let mut body = json!({ "lease_id": lease_id });
        if let Some(increment) = increment {
            body["increment"] = json!(increment.as_secs());
        }
        let response: VaultResponse<serde_json::Value> = self
            .request(Method::PUT, "sys/leases/renew")
            .json(&body)
            .send()
            .await?
            .vault()?;
        Ok(LeaseRenewal {
            lease_id: response.lease_id,
            renewable: response.renewable,
            lease_duration: Duration::from_secs(response.lease_duration),
        })
    }

    /// `PUT sys/leases/revoke`.
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        self.request(Method::PUT, "sys/leases/revoke")
            .json(&json!({ "lease_id": lease_id }))
            .send()
            .await?;
        Ok(())
    }

    /// `GET sys/policies/acl/:name`; `None` when there is no such policy.
    pub async fn read_policy(&self, name: &str) -> Result<Option<AclPolicy>> {
        self.request(Method::GET, &format!("sys/policies/acl/{name}"))
            .data_optional()
            .await
    }

    /// `PUT sys/policies/acl/:name`.
    pub async fn write_policy(&self, name: &str, policy: &str) -> Result<()> {
        self.request(Method::PUT, &format!("sys/policies/acl/{name}"))
            .json(&json!({ "policy": policy }))
            .send()
            .await?;
        Ok(())
    }

    /// `DELETE sys/policies/acl/:name`.
    pub async fn delete_policy(&self, name: &str) -> Result<()> {
        self.request(Method::DELETE, &format!("sys/policies/acl/{name}"))
            .send()
            .await?;
        Ok(())
    }

    /// `POST sys/mounts/:path`: enables a secrets engine (`kv` with
    /// `{"version": "2"}` options, `database`, ...).
    pub async fn enable_secrets_engine(
        &self,
        path: &str,
        engine: &str,
        options: Option<serde_json::Value>,
    ) -> Result<()> {
        let mut body = json!({ "type": engine });
        if let Some(options) = options {
            body["options"] = options;
        }
        self.request(Method::POST, &format!("sys/mounts/{path}"))
            .json(&body)
            .send()
            .await?;
        Ok(())
    }

    /// `POST sys/auth/:path`: enables an auth method (`approle`, `userpass`, ...).
    pub async fn enable_auth_method(&self, path: &str, method: &str) -> Result<()> {
        self.request(Method::POST, &format!("sys/auth/{path}"))
            .json(&json!({ "type": method }))
            .send()
            .await?;
        Ok(())
    }

    /// `POST auth/:mount/login` without a token: the generic login used by
    /// every auth method. Returns the `auth` block.
    pub async fn login(&self, mount: &str, body: &serde_json::Value) -> Result<crate::AuthInfo> {
        let mount = mount.trim_matches('/');
        self.request(Method::POST, &format!("auth/{mount}/login"))
            .no_token()
            .json(body)
            .send()
            .await?
            .auth()
    }
}

/// The statuses `sys/health` answers with: 200 active, 429 standby, 472/473
/// replication/performance standby, 501 not initialized, 503 sealed.
fn is_health_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 200 | 429 | 472 | 473 | 501 | 503)
}
