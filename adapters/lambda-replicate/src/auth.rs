//! Vault authentication for the Lambda: the ONE place that decides how it
//! logs in. This branch supports a token (`VAULT_TOKEN`, or the file named by
//! `VAULT_TOKEN_FILE`); the shared "auth from environment" builder (AWS IAM,
//! EC2, AppRole) replaces this function after the merge.

use std::sync::Arc;

use vault_client::{ConfigError, TokenAuth, VaultAuth};

/// The auth method configured by the environment.
pub fn auth_from_lookup<F>(lookup: F) -> Result<Arc<dyn VaultAuth>, ConfigError>
where
    F: Fn(&str) -> Option<String>,
{
    Ok(Arc::new(TokenAuth::from_lookup(lookup)?))
}
