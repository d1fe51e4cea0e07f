//! Login construction from the environment, in one place.
//!
//! Supported here: a token (`VAULT_TOKEN` / `VAULT_TOKEN_FILE`) and AppRole
//! (`VAULT_ROLE_ID` + `VAULT_SECRET_ID` / `VAULT_SECRET_ID_FILE`, mount
//! `VAULT_APPROLE_MOUNT`, default `approle`). The AWS IAM login of
//! hashicorp/vault-lambda-extension (`VAULT_AUTH_PROVIDER=aws`,
//! `VAULT_AUTH_ROLE`) plugs in here once `vault-aws-auth` provides it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use vault_client::{AuthInfo, ConfigError, TokenAuth, VaultAuth, VaultClient};

/// AppRole login with a role_id and a secret_id (static or read from a
/// file on every login, so it can be rotated).
#[derive(Clone)]
pub struct AppRoleLogin {
    mount: String,
    role_id: String,
    secret_id: Option<SecretIdSource>,
}

#[derive(Clone)]
enum SecretIdSource {
    Static(SecretString),
    File(PathBuf),
}

impl fmt::Debug for AppRoleLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRoleLogin")
            .field("mount", &self.mount)
            .field("role_id", &self.role_id)
            .field(
                "secret_id",
                &match &self.secret_id {
                    None => "none".to_owned(),
                    Some(SecretIdSource::Static(_)) => "<redacted>".to_owned(),
                    Some(SecretIdSource::File(p)) => format!("file {}", p.display()),
                },
            )
            .finish()
    }
}

impl AppRoleLogin {
    /// AppRole at `mount` with `role_id` and an optional `secret_id`.
    pub fn new(mount: &str, role_id: &str, secret_id: Option<SecretString>) -> Self {
        Self {
            mount: mount.trim_matches('/').to_owned(),
            role_id: role_id.trim().to_owned(),
            secret_id: secret_id.map(SecretIdSource::Static),
        }
    }

    /// Reads the secret_id from `path` on every login.
    pub fn with_secret_id_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secret_id = Some(SecretIdSource::File(path.into()));
        self
    }
}

#[async_trait]
impl VaultAuth for AppRoleLogin {
    async fn login(&self, client: &VaultClient) -> vault_client::Result<AuthInfo> {
        let secret_id = match &self.secret_id {
            None => None,
            Some(SecretIdSource::Static(s)) => Some(s.clone()),
            Some(SecretIdSource::File(p)) => {
                let raw = zeroize::Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    vault_client::Error::auth(
                        "approle",
                        format!("cannot read the secret_id file {}: {e}", p.display()),
                        None,
                    )
                })?);
                Some(SecretString::from(raw.trim().to_owned()))
            }
        };
        client
            .approle(&self.mount)
            .login(&self.role_id, secret_id.as_ref())
            .await
            .map_err(|e| {
                let message = if e.is_permission_denied() || e.status() == Some(400) {
                    format!(
                        "vault refused role_id {} at auth/{} (wrong or expired secret_id?)",
                        self.role_id, self.mount
                    )
                } else {
                    format!("cannot log in at auth/{}", self.mount)
                };
                vault_client::Error::auth("approle", message, Some(Box::new(e)))
            })
    }

    fn method(&self) -> &'static str {
        "approle"
    }
}

/// The login configured in the environment (read through `lookup`).
///
/// | variables | login |
/// |---|---|
/// | `VAULT_ROLE_ID` (+ `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE`, `VAULT_APPROLE_MOUNT`) | AppRole |
/// | `VAULT_TOKEN` or `VAULT_TOKEN_FILE` | an existing token |
/// | `VAULT_AUTH_PROVIDER=aws` / `VAULT_AUTH_ROLE` | AWS IAM: not in this build yet (clear error) |
pub fn auth_from_lookup<F>(lookup: F) -> Result<Arc<dyn VaultAuth>, ConfigError>
where
    F: Fn(&str) -> Option<String>,
{
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    if let Some(role_id) = get("VAULT_ROLE_ID") {
        let mount = get("VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".to_owned());
        let mut login = AppRoleLogin::new(&mount, &role_id, None);
        if let Some(secret) = get("VAULT_SECRET_ID") {
            login.secret_id = Some(SecretIdSource::Static(SecretString::from(
                secret.trim().to_owned(),
            )));
        } else if let Some(file) = get("VAULT_SECRET_ID_FILE") {
            login = login.with_secret_id_file(file.trim());
        }
        return Ok(Arc::new(login));
    }
    if get("VAULT_TOKEN").is_some() || get("VAULT_TOKEN_FILE").is_some() {
        return Ok(Arc::new(TokenAuth::from_lookup(&lookup)?));
    }
    if let Some(provider) = get("VAULT_AUTH_PROVIDER") {
        return Err(ConfigError::Invalid {
            variable: "VAULT_AUTH_PROVIDER",
            expected: "a login this build supports: set VAULT_ROLE_ID (+ VAULT_SECRET_ID) for AppRole, or VAULT_TOKEN",
            problem: format!(
                "{:?} login is not available in this build yet",
                provider.trim()
            ),
        });
    }
    Err(ConfigError::Invalid {
        variable: "VAULT_ROLE_ID",
        expected: "a login: VAULT_ROLE_ID (+ VAULT_SECRET_ID or VAULT_SECRET_ID_FILE) for AppRole, or VAULT_TOKEN / VAULT_TOKEN_FILE",
        problem: "no login is configured".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_login_from_the_variables() {
        let a = auth_from_lookup(|k| match k {
            "VAULT_ROLE_ID" => Some("rid".into()),
            "VAULT_SECRET_ID" => Some("sid-secret".into()),
            "VAULT_TOKEN" => Some("hvs.x".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(a.method(), "approle");
        let t = auth_from_lookup(|k| (k == "VAULT_TOKEN").then(|| "hvs.x".into())).unwrap();
        assert_eq!(t.method(), "token");
        let err = auth_from_lookup(|k| (k == "VAULT_AUTH_PROVIDER").then(|| "aws".into()))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("\"aws\" login is not available"),
            "{err}"
        );
        let err = auth_from_lookup(|_| None).err().unwrap();
        assert!(err.to_string().contains("no login is configured"), "{err}");
        let debug = format!(
            "{:?}",
            AppRoleLogin::new("approle", "rid", Some(SecretString::from("sid-secret")))
        );
        assert!(!debug.contains("sid-secret"), "{debug}");
    }
}
