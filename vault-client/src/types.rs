//! Response types shared by the endpoints.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroize;

/// Deserializes `null` as the type's default (Vault sends `null` for empty lists).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Vault's response envelope.
///
/// `Debug` never shows `data` (it may hold secrets) nor tokens.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct VaultResponse<T> {
    /// Vault's request id.
    #[serde(default)]
    pub request_id: String,
    /// The lease of a leased secret (dynamic credentials), empty otherwise.
    #[serde(default)]
    pub lease_id: String,
    /// Whether the lease can be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// Lease duration in seconds (0 when there is no lease).
    #[serde(default)]
    pub lease_duration: u64,
    /// The endpoint's payload.
    #[serde(default = "none")]
    pub data: Option<T>,
    /// Present when the response was wrapped.
    #[serde(default)]
    pub wrap_info: Option<WrapInfo>,
    /// Warnings from Vault.
    #[serde(default, deserialize_with = "nullable")]
    pub warnings: Vec<String>,
    /// Present on login and token endpoints.
    #[serde(default)]
    pub auth: Option<AuthInfo>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> fmt::Debug for VaultResponse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultResponse")
            .field("request_id", &self.request_id)
            .field("lease_id", &self.lease_id)
            .field("renewable", &self.renewable)
            .field("lease_duration", &self.lease_duration)
            .field("data", &self.data.as_ref().map(|_| "<omitted>"))
            .field("wrap_info", &self.wrap_info)
            .field("warnings", &self.warnings)
            .field("auth", &self.auth)
            .finish()
    }
}

/// The `auth` block of a login or token response.
///
/// The token is a [`SecretString`]; `Debug` shows the accessor, never the token.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct AuthInfo {
    /// The token.
    pub client_token: SecretString,
    /// The token's accessor (safe to log).
    #[serde(default)]
    pub accessor: String,
    /// All policies of the token.
    #[serde(default, deserialize_with = "nullable")]
    pub policies: Vec<String>,
    /// Policies attached to the token itself.
    #[serde(default, deserialize_with = "nullable")]
    pub token_policies: Vec<String>,
    /// Metadata of the login (e.g. `role_name`).
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: HashMap<String, String>,
    /// Time to live in seconds (0 = no expiry, e.g. a root token).
    #[serde(default)]
    pub lease_duration: u64,
    /// Whether the token can be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// The identity entity, if any.
    #[serde(default)]
    pub entity_id: String,
    /// `service` or `batch`.
    #[serde(default)]
    pub token_type: String,
    /// Whether the token is an orphan.
    #[serde(default)]
    pub orphan: bool,
}

impl AuthInfo {
    /// A minimal `AuthInfo` for a token whose properties are otherwise unknown.
    pub fn from_token(client_token: SecretString) -> Self {
        Self {
            client_token,
            accessor: String::new(),
            policies: Vec::new(),
            token_policies: Vec::new(),
            metadata: HashMap::new(),
            lease_duration: 0,
            renewable: false,
            entity_id: String::new(),
            token_type: String::new(),
            orphan: false,
        }
    }

    /// The token's time to live, `None` when it does not expire.
    pub fn ttl(&self) -> Option<Duration> {
        (self.lease_duration > 0).then(|| Duration::from_secs(self.lease_duration))
    }
}

impl fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInfo")
            .field("client_token", &"<redacted>")
            .field("accessor", &self.accessor)
            .field("policies", &self.policies)
            .field("token_policies", &self.token_policies)
            .field("metadata", &self.metadata)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .field("entity_id", &self.entity_id)
            .field("token_type", &self.token_type)
            .field("orphan", &self.orphan)
            .finish()
    }
}

/// The `wrap_info` block of a wrapped response.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct WrapInfo {
    /// The single-use wrapping token.
    pub token: SecretString,
    /// The wrapping token's accessor.
    #[serde(default)]
    pub accessor: String,
    /// Seconds the wrapping token lives.
    #[serde(default)]
    pub ttl: u64,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub creation_time: String,
    /// The path whose response is wrapped.
    #[serde(default)]
    pub creation_path: String,
    /// Accessor of the wrapped secret_id or token, when there is one.
    #[serde(default)]
    pub wrapped_accessor: String,
}

impl fmt::Debug for WrapInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapInfo")
            .field("token", &"<redacted>")
            .field("accessor", &self.accessor)
            .field("ttl", &self.ttl)
            .field("creation_time", &self.creation_time)
            .field("creation_path", &self.creation_path)
            .field("wrapped_accessor", &self.wrapped_accessor)
            .finish()
    }
}

/// A JSON object of secret values.
///
/// `Debug` lists the keys and hides the values; the strings are zeroed when it
/// is dropped. Read the values with [`SecretMap::expose_secret`].
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SecretMap(serde_json::Map<String, serde_json::Value>);

impl SecretMap {
    /// Wraps a map of secret values.
    pub fn new(map: serde_json::Map<String, serde_json::Value>) -> Self {
        Self(map)
    }

    /// The secret values. Do not log them.
    pub fn expose_secret(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    /// The keys, which are safe to log.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// A string value, if the key holds a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(serde_json::Value::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<serde_json::Map<String, serde_json::Value>> for SecretMap {
    fn from(map: serde_json::Map<String, serde_json::Value>) -> Self {
        Self(map)
    }
}

impl fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

fn zeroize_value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        serde_json::Value::Object(map) => map.values_mut().for_each(zeroize_value),
        _ => {}
    }
}

impl Drop for SecretMap {
    fn drop(&mut self) {
        self.0.values_mut().for_each(zeroize_value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_info_accepts_nulls_and_hides_the_token() {
        let auth: AuthInfo = serde_json::from_value(serde_json::json!({
            "client_token": "hvs.verysecret",
            "accessor": "acc1",
            "policies": null,
            "metadata": null,
            "lease_duration": 60,
            "renewable": true
        }))
        .unwrap();
        assert_eq!(auth.ttl(), Some(Duration::from_secs(60)));
        assert!(auth.policies.is_empty());
        let text = format!("{auth:?}");
        assert!(
            !text.contains("verysecret") && text.contains("acc1"),
            "{text}"
        );
    }

    #[test]
    fn secret_map_debug_shows_keys_only() {
        let m: SecretMap =
            serde_json::from_value(serde_json::json!({"password": "hunter2", "n": [{"x": "y"}]}))
                .unwrap();
        let text = format!("{m:?}");
        assert!(
            text.contains("password") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(m.get_str("password"), Some("hunter2"));
    }

    #[test]
    fn response_debug_omits_data() {
        let r: VaultResponse<SecretMap> = serde_json::from_value(serde_json::json!({
            "request_id": "r", "data": {"k": "topsecret"}, "warnings": null,
            "wrap_info": null, "auth": null
        }))
        .unwrap();
        assert!(!format!("{r:?}").contains("topsecret"));
        assert!(r.warnings.is_empty());
    }
}
