//! The AppRole auth method: login, roles, role ids and secret ids.

use std::collections::HashMap;
use std::time::Duration;

use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::VaultClient;
use crate::error::{Error, Result};
use crate::types::{AuthInfo, WrapInfo, nullable};

/// The AppRole endpoints of one mount (usually `approle`).
#[derive(Debug, Clone)]
pub struct AppRole<'a> {
    client: &'a VaultClient,
    mount: String,
}

/// A role's settings, as written to and read from `auth/<mount>/role/<name>`.
///
/// Durations are whole seconds. Fields left `None` (or empty) are not sent,
/// so a write changes only what is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleConfig {
    /// Policies of the tokens issued by the role.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub token_policies: Vec<String>,
    /// Token TTL in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<u64>,
    /// Token max TTL in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_max_ttl: Option<u64>,
    /// Secret id TTL in seconds (0 = never expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id_ttl: Option<u64>,
    /// Uses of a secret id (0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id_num_uses: Option<u64>,
    /// CIDRs a secret id may be used from.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secret_id_bound_cidrs: Vec<String>,
    /// CIDRs the issued tokens may be used from.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub token_bound_cidrs: Vec<String>,
    /// Whether a secret id is required at login (Vault's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_secret_id: Option<bool>,
    /// Uses of an issued token (0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_num_uses: Option<u64>,
    /// `service`, `batch` or `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// Parameters of a new secret id.
#[derive(Debug, Clone, Default)]
pub struct SecretIdRequest {
    /// Metadata attached to the secret id (shows in audit logs and token metadata).
    pub metadata: HashMap<String, String>,
    /// CIDRs the secret id may be used from.
    pub cidr_list: Vec<String>,
    /// CIDRs the tokens issued with it may be used from.
    pub token_bound_cidrs: Vec<String>,
    /// TTL of the secret id (default: the role's `secret_id_ttl`).
    pub ttl: Option<Duration>,
    /// Uses (default: the role's `secret_id_num_uses`).
    pub num_uses: Option<u64>,
    /// Wrap the response for this long: the caller gets a single-use wrapping
    /// token instead of the secret id.
    pub wrap_ttl: Option<Duration>,
}

/// A freshly generated secret id.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecretId {
    /// The secret id.
    pub secret_id: SecretString,
    /// Its accessor (safe to log; used to destroy it).
    pub accessor: String,
    /// TTL in seconds (0 = never expires).
    pub ttl: u64,
    /// Uses (0 = unlimited).
    pub num_uses: u64,
}

/// The result of generating a secret id: the secret id itself, or a wrapping
/// token for it when a wrap TTL was asked for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GeneratedSecretId {
    /// The secret id.
    Plain(SecretId),
    /// A wrapping token; `wrapped_accessor` is the secret id's accessor.
    Wrapped(WrapInfo),
}

impl GeneratedSecretId {
    /// The secret id's accessor, in either form.
    pub fn accessor(&self) -> &str {
        match self {
            Self::Plain(s) => &s.accessor,
            Self::Wrapped(w) => &w.wrapped_accessor,
        }
    }
}

/// What Vault says of a secret id, looked up by accessor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SecretIdInfo {
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub creation_time: String,
    /// Expiry time (RFC 3339; Vault's zero time when it never expires).
    #[serde(default)]
    pub expiration_time: String,
    /// Remaining uses (0 = unlimited).
    #[serde(default)]
    pub secret_id_num_uses: u64,
    /// TTL in seconds.
    #[serde(default)]
    pub secret_id_ttl: u64,
    /// CIDR binding.
    #[serde(default, deserialize_with = "nullable")]
    pub cidr_list: Vec<String>,
    /// Metadata.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: HashMap<String, String>,
}

#[derive(Deserialize)]
struct SecretIdData {
    secret_id: SecretString,
    secret_id_accessor: String,
    #[serde(default)]
    secret_id_ttl: u64,
    #[serde(default)]
    secret_id_num_uses: u64,
}

impl VaultClient {
    /// The AppRole endpoints at `mount` (usually `"approle"`).
    pub fn approle(&self, mount: &str) -> AppRole<'_> {
        AppRole {
            client: self,
            mount: mount.trim_matches('/').to_owned(),
        }
    }
}

impl AppRole<'_> {
    fn role_path(&self, name: &str, rest: &str) -> String {
        format!("auth/{}/role/{name}{rest}", self.mount)
    }

    /// `POST auth/<mount>/login`. `secret_id` may be `None` for roles with
    /// `bind_secret_id=false`.
    pub async fn login(&self, role_id: &str, secret_id: Option<&SecretString>) -> Result<AuthInfo> {
        let mut body = json!({ "role_id": role_id });
        if let Some(secret_id) = secret_id {
            body["secret_id"] = json!(secret_id.expose_secret());
        }
        self.client.login(&self.mount, &body).await
    }

    /// `POST auth/<mount>/role/<name>`: creates the role or updates the fields
    /// that are set.
    pub async fn write_role(&self, name: &str, config: &RoleConfig) -> Result<()> {
        let body = serde_json::to_value(config)
            .map_err(|e| Error::invalid_input("role config", e.to_string()))?;
        self.client
            .request(Method::POST, &self.role_path(name, ""))
            .json(&body)
            .send()
            .await?;
        Ok(())
    }

    /// `GET auth/<mount>/role/<name>`; `None` when there is no such role.
    pub async fn read_role(&self, name: &str) -> Result<Option<RoleConfig>> {
        self.client
            .request(Method::GET, &self.role_path(name, ""))
            .data_optional()
            .await
    }

    /// `DELETE auth/<mount>/role/<name>`; deleting a missing role succeeds.
    pub async fn delete_role(&self, name: &str) -> Result<()> {
        self.client
            .request(Method::DELETE, &self.role_path(name, ""))
            .send_optional()
            .await?;
        Ok(())
    }

    /// `LIST auth/<mount>/role`.
    pub async fn list_roles(&self) -> Result<Vec<String>> {
        let path = format!("auth/{}/role", self.mount);
        self.client.list_request(&path).keys().await
    }

    /// `GET auth/<mount>/role/<name>/role-id`.
    pub async fn role_id(&self, name: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct RoleId {
            role_id: String,
        }
        let data: RoleId = self
            .client
            .request(Method::GET, &self.role_path(name, "/role-id"))
            .send()
            .await?
            .data()?;
        Ok(data.role_id)
    }

    /// `POST auth/<mount>/role/<name>/secret-id`.
    pub async fn generate_secret_id(
        &self,
        name: &str,
        request: &SecretIdRequest,
    ) -> Result<GeneratedSecretId> {
        let mut body = json!({});
        if !request.metadata.is_empty() {
            // Vault takes metadata as a JSON string.
            body["metadata"] = json!(serde_json::to_string(&request.metadata).unwrap_or_default());
        }
        if !request.cidr_list.is_empty() {
            body["cidr_list"] = json!(request.cidr_list);
        }
        if !request.token_bound_cidrs.is_empty() {
            body["token_bound_cidrs"] = json!(request.token_bound_cidrs);
        }
        if let Some(ttl) = request.ttl {
            body["ttl"] = json!(format!("{}s", ttl.as_secs()));
        }
        if let Some(uses) = request.num_uses {
            body["num_uses"] = json!(uses);
        }
        let mut req = self
            .client
            .request(Method::POST, &self.role_path(name, "/secret-id"))
            .json(&body);
        if let Some(wrap_ttl) = request.wrap_ttl {
            req = req.wrap_ttl(wrap_ttl);
        }
        let response = req.send().await?;
        if request.wrap_ttl.is_some() {
            return Ok(GeneratedSecretId::Wrapped(response.wrap_info()?));
        }
        let data: SecretIdData = response.data()?;
        Ok(GeneratedSecretId::Plain(SecretId {
            secret_id: data.secret_id,
            accessor: data.secret_id_accessor,
            ttl: data.secret_id_ttl,
            num_uses: data.secret_id_num_uses,
        }))
    }

    /// `LIST auth/<mount>/role/<name>/secret-id`: the accessors of the role's
    /// live secret ids.
    pub async fn list_secret_id_accessors(&self, name: &str) -> Result<Vec<String>> {
        self.client
            .list_request(&self.role_path(name, "/secret-id"))
            .keys()
            .await
    }

    /// `POST auth/<mount>/role/<name>/secret-id-accessor/lookup`; `None` when
    /// the accessor is unknown, or its secret_id expired (OpenBao then
    /// answers 204 with no body).
    pub async fn lookup_secret_id_accessor(
        &self,
        name: &str,
        accessor: &str,
    ) -> Result<Option<SecretIdInfo>> {
        let response = self
            .client
            .request(
                Method::POST,
                &self.role_path(name, "/secret-id-accessor/lookup"),
            )
            .json(&json!({ "secret_id_accessor": accessor }))
            .send_optional()
            .await;
        match response {
            Ok(Some(r)) if r.status == http::StatusCode::NO_CONTENT || r.body.is_empty() => {
                Ok(None)
            }
            Ok(Some(r)) => Ok(Some(r.data()?)),
            Ok(None) => Ok(None),
            // Vault answers 400/500 "failed to find accessor entry" for unknown accessors.
            Err(e)
                if e.vault_errors()
                    .iter()
                    .any(|m| m.contains("failed to find accessor")) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `POST auth/<mount>/role/<name>/secret-id-accessor/destroy`.
    pub async fn destroy_secret_id_accessor(&self, name: &str, accessor: &str) -> Result<()> {
        self.client
            .request(
                Method::POST,
                &self.role_path(name, "/secret-id-accessor/destroy"),
            )
            .json(&json!({ "secret_id_accessor": accessor }))
            .send()
            .await?;
        Ok(())
    }
}
