//! The [`VaultAuth`] trait ("obtain a token") and [`TokenAuth`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::client::VaultClient;
use crate::config::{ConfigError, parse_token};
use crate::error::{Error, Result};
use crate::types::AuthInfo;

/// A way to obtain a Vault token.
///
/// This is the seam every component shares: the proxy's token manager, the
/// ECS entrypoint and the replicator take an `Arc<dyn VaultAuth>` and never
/// know which method is behind it ([`TokenAuth`], AWS IAM, EC2, AppRole).
///
/// # Contract
/// - `login` performs one login and returns the new token with its TTL and
///   renewability. Callers decide when to call it again (expiry, 403,
///   revocation); implementations must not cache a token that may have been
///   revoked, and must read rotating inputs (files, AWS credentials) afresh on
///   every call.
/// - `client` carries the address, TLS settings and namespace; implementations
///   must not rely on the token it carries.
/// - Errors are [`Error::Auth`] naming the method and what to do, with the
///   cause as `source`, so `is_retryable()` tells a transient failure from a
///   refusal.
/// - Nothing secret (token, secret_id, signed headers) may appear in an error
///   or a log line.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait VaultAuth: Send + Sync {
    /// Logs in and returns the new token's `auth` block.
    async fn login(&self, client: &VaultClient) -> Result<AuthInfo>;

    /// A short name for logs and errors: `token`, `approle`, `aws-iam`, `ec2`.
    fn method(&self) -> &'static str;
}

#[async_trait]
impl<T: VaultAuth + ?Sized> VaultAuth for Arc<T> {
    async fn login(&self, client: &VaultClient) -> Result<AuthInfo> {
        (**self).login(client).await
    }

    fn method(&self) -> &'static str {
        (**self).method()
    }
}

#[async_trait]
impl<T: VaultAuth + ?Sized> VaultAuth for Box<T> {
    async fn login(&self, client: &VaultClient) -> Result<AuthInfo> {
        (**self).login(client).await
    }

    fn method(&self) -> &'static str {
        (**self).method()
    }
}

/// "Login" with an existing token: a static value, or a file that is read
/// again on every login (so an external process can rotate it).
///
/// `login` looks the token up (`auth/token/lookup-self`), which both checks
/// that it is valid and reports its remaining TTL and renewability.
#[derive(Clone)]
pub struct TokenAuth {
    source: TokenSource,
}

#[derive(Clone)]
enum TokenSource {
    Static(SecretString),
    File(PathBuf),
}

impl fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            TokenSource::Static(_) => f.write_str("TokenAuth(static <redacted>)"),
            TokenSource::File(p) => write!(f, "TokenAuth(file {})", p.display()),
        }
    }
}

impl TokenAuth {
    /// A static token.
    pub fn new(token: SecretString) -> Self {
        Self {
            source: TokenSource::Static(token),
        }
    }

    /// A token file, read (and trimmed) on every login.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self {
            source: TokenSource::File(path.into()),
        }
    }

    /// `VAULT_TOKEN`, else the file named by `VAULT_TOKEN_FILE`, through `lookup`.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = crate::config::non_blank(&lookup);
        if let Some(token) = get("VAULT_TOKEN") {
            return Ok(Self::new(parse_token("VAULT_TOKEN", &token)?));
        }
        if let Some(file) = get("VAULT_TOKEN_FILE") {
            return Ok(Self::from_file(file.trim()));
        }
        Err(ConfigError::invalid(
            "VAULT_TOKEN",
            "a Vault token (or VAULT_TOKEN_FILE naming a file that holds one)",
            "neither VAULT_TOKEN nor VAULT_TOKEN_FILE is set",
        ))
    }

    fn read_file(path: &Path) -> Result<SecretString> {
        let raw = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::auth(
                "token",
                format!("cannot read token file {}: {e}", path.display()),
                None,
            )
        })?);
        parse_token("token file", &raw)
            .map_err(|e| Error::auth("token", format!("token file {}: {e}", path.display()), None))
    }

    fn current(&self) -> Result<SecretString> {
        match &self.source {
            TokenSource::Static(t) => Ok(t.clone()),
            TokenSource::File(p) => Self::read_file(p),
        }
    }
}

#[async_trait]
impl VaultAuth for TokenAuth {
    async fn login(&self, client: &VaultClient) -> Result<AuthInfo> {
        let token = self.current()?;
        let info = client
            .with_token(token.clone())
            .lookup_self()
            .await
            .map_err(|e| {
                let message = if e.is_permission_denied() {
                    "the token was refused (invalid, expired or revoked)".to_owned()
                } else {
                    "cannot look up the token".to_owned()
                };
                Error::auth("token", message, Some(Box::new(e)))
            })?;
        let mut auth = AuthInfo::from_token(token);
        auth.accessor = info.accessor;
        auth.policies = info.policies;
        auth.lease_duration = info.ttl;
        auth.renewable = info.renewable;
        auth.entity_id = info.entity_id;
        auth.token_type = info.token_type;
        auth.orphan = info.orphan;
        auth.metadata = info.meta;
        Ok(auth)
    }

    fn method(&self) -> &'static str {
        "token"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn client() -> VaultClient {
        VaultClient::new(crate::ClientConfig::new("http://127.0.0.1:1").unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_mock_login_works_through_arc_dyn() {
        let mut mock = MockVaultAuth::new();
        mock.expect_method().return_const("mock");
        mock.expect_login()
            .times(1)
            .returning(|_| Ok(AuthInfo::from_token(SecretString::from("hvs.mocked"))));
        let auth: Arc<dyn VaultAuth> = Arc::new(mock);
        let shared = Arc::clone(&auth);
        assert_eq!(shared.method(), "mock");
        let info = shared.login(&client()).await.unwrap();
        assert_eq!(info.client_token.expose_secret(), "hvs.mocked");
    }

    #[test]
    fn from_lookup_prefers_the_token_then_the_file() {
        let a = TokenAuth::from_lookup(|k| match k {
            "VAULT_TOKEN" => Some("hvs.abc".into()),
            "VAULT_TOKEN_FILE" => Some("/t".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(format!("{a:?}"), "TokenAuth(static <redacted>)");
        let b =
            TokenAuth::from_lookup(|k| (k == "VAULT_TOKEN_FILE").then(|| "/run/t".into())).unwrap();
        assert_eq!(format!("{b:?}"), "TokenAuth(file /run/t)");
        let err = TokenAuth::from_lookup(|_| None).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither VAULT_TOKEN nor VAULT_TOKEN_FILE is set"),
            "{err}"
        );
    }
}
