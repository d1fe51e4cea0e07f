//! Vault authentication for the Lambda: `vault_auth_env`, so AWS IAM
//! (`VAULT_AUTH_ROLE`, preferred on Lambda), EC2, AppRole, a token in S3 or a
//! plain token, chosen by `VAULT_AUTH_METHOD` or detected from the variables
//! that are set.

use std::sync::Arc;

use vault_auth_env::AuthEnvError;
use vault_client::VaultAuth;

/// The auth method configured by the environment.
pub fn auth_from_lookup<F>(lookup: F) -> Result<Arc<dyn VaultAuth>, AuthEnvError>
where
    F: Fn(&str) -> Option<String>,
{
    vault_auth_env::auth_from_lookup(lookup)
}
