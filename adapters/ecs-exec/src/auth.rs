//! How vault-exec logs in: the shared registry of `vault_auth_env` under
//! its [`Selection::EXEC`] policy, with one step of its own: AppRole
//! credentials delivered to S3 are found for the task's IAM role when
//! `VAULT_APPROLE_ROLE` does not name the Vault role.

use std::sync::Arc;

use anyhow::Context;
use vault_approle::{CredentialStore, S3CredentialStore, role_name_from_iam};
use vault_auth_env::{AuthMethod, Selection};
use vault_client::VaultAuth;

/// In order ([`Selection::EXEC`]; `VAULT_AUTH_METHOD` names any method):
/// 1. `VAULT_AUTH_ROLE`: AWS IAM with the task role's credentials;
/// 2. `VAULT_ROLE_ID[_FILE]` (+ `VAULT_SECRET_ID[_FILE]`): AppRole from values/files;
/// 3. `VAULT_APPROLE_S3_BUCKET`: AppRole with the credentials delivered to S3
///    for `VAULT_APPROLE_ROLE`, else for the role derived from `iam_role`
///    (the `--iam-role` flag) or the discovered task role;
/// 4. `VAULT_TOKEN` / `VAULT_TOKEN_FILE`.
///
/// Returns the login, a description for logs, and the Vault address written
/// in the delivered credentials (used when `VAULT_ADDR` is not set).
pub async fn auth_from_lookup<F>(
    lookup: F,
    iam_role: Option<&str>,
) -> anyhow::Result<(Arc<dyn VaultAuth>, String, Option<String>)>
where
    F: Fn(&str) -> Option<String>,
{
    let get = vault_client::non_blank(&lookup);
    let policy = Selection::EXEC;
    let method = policy
        .method(&lookup)?
        .ok_or_else(|| policy.not_configured())?;
    let delivered = method == AuthMethod::AppRole
        && get("VAULT_ROLE_ID").is_none()
        && get("VAULT_ROLE_ID_FILE").is_none()
        && get("VAULT_APPROLE_S3_BUCKET").is_some();
    if !delivered {
        let auth = vault_auth_env::build(method, &lookup)?;
        let how = match method {
            AuthMethod::AppRole => "approle (configured role_id)".to_owned(),
            other => other.to_string(),
        };
        return Ok((auth, how, None));
    }
    let role = match get("VAULT_APPROLE_ROLE") {
        Some(role) => role.trim().to_owned(),
        None => {
            let iam = match iam_role {
                Some(r) => r.to_owned(),
                None => crate::role::discover(&lookup).await?,
            };
            role_name_from_iam(&iam).with_context(|| format!("the IAM role {iam}"))?
        }
    };
    let with_role = |name: &str| match name {
        "VAULT_APPROLE_ROLE" => Some(role.clone()),
        _ => lookup(name),
    };
    let auth = vault_auth_env::build(AuthMethod::AppRole, with_role)?;
    let delivered_addr = if get("VAULT_ADDR").is_none() {
        // One extra read, only when the address is not configured.
        S3CredentialStore::from_lookup(&lookup)?
            .get(&role)
            .await
            .ok()
            .flatten()
            .map(|c| c.vault_addr)
            .filter(|a| !a.is_empty())
    } else {
        None
    };
    Ok((
        auth,
        format!("approle role {role} (credentials from S3)"),
        delivered_addr,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[tokio::test]
    async fn aws_iam_and_explicit_methods_come_from_the_shared_builder() {
        let (auth, how, addr) = auth_from_lookup(
            env(&[("VAULT_AUTH_ROLE", "shop-task"), ("VAULT_TOKEN", "hvs.x")]),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            (auth.method(), how.as_str(), addr),
            ("aws-iam", "aws", None)
        );

        let (auth, _, _) = auth_from_lookup(
            env(&[("VAULT_AUTH_METHOD", "token"), ("VAULT_TOKEN", "hvs.x")]),
            None,
        )
        .await
        .unwrap();
        assert_eq!(auth.method(), "token");

        let (auth, how, _) = auth_from_lookup(
            env(&[("VAULT_ROLE_ID", "rid"), ("VAULT_SECRET_ID", "sid")]),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            (auth.method(), how.as_str()),
            ("approle", "approle (configured role_id)")
        );

        let err = auth_from_lookup(env(&[("VAULT_AUTH_METHOD", "kerberos")]), None)
            .await
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("VAULT_AUTH_METHOD"), "{err:#}");
    }
}
