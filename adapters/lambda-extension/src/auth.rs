//! The one place the extension builds its login. Today: token or AppRole
//! (`vault_proxy::auth_from_lookup`); AWS IAM (`VAULT_AUTH_PROVIDER=aws`,
//! `VAULT_AUTH_ROLE`) is wired in here once `vault-aws-auth` provides it.

use std::sync::Arc;

use vault_client::{ConfigError, VaultAuth};

/// The login configured in the environment.
pub fn auth_from_lookup<F>(lookup: F) -> Result<Arc<dyn VaultAuth>, ConfigError>
where
    F: Fn(&str) -> Option<String>,
{
    vault_proxy::auth_from_lookup(lookup)
}
