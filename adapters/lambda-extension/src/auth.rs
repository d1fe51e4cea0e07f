//! The one place the extension builds its login: `vault_auth_env`, so the
//! extension accepts hashicorp/vault-lambda-extension's variables
//! (`VAULT_AUTH_ROLE`, `VAULT_AUTH_PROVIDER`, `VAULT_IAM_SERVER_ID`,
//! `VAULT_STS_ENDPOINT_REGION`, `VAULT_ASSUMED_ROLE_ARN`: AWS IAM login) and
//! also AppRole, EC2, a token in S3 or a plain token (`VAULT_AUTH_METHOD`).

use std::sync::Arc;

use vault_client::VaultAuth;

/// The login configured in the environment; the error text carries the whole
/// cause chain (it is reported through `init/error`, which shows one string).
pub fn auth_from_lookup<F>(lookup: F) -> Result<Arc<dyn VaultAuth>, String>
where
    F: Fn(&str) -> Option<String>,
{
    vault_auth_env::auth_from_lookup(lookup).map_err(|e| vault_client::error_chain(&e))
}
