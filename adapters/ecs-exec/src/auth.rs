//! How vault-exec logs in: delivered AppRole credentials (found through the
//! task role), or any method of the shared `vault_auth_env` builder (AWS IAM
//! with the task role, EC2, AppRole values, token).

use std::sync::Arc;

use anyhow::Context;
use vault_approle::{AppRoleAuth, CredentialStore, S3CredentialStore, role_name_from_iam};
use vault_client::{TokenAuth, VaultAuth};

/// In order:
/// 0. `VAULT_AUTH_METHOD` (other than `approle`), or `VAULT_AUTH_ROLE`
///    without it: the `vault_auth_env` login it names (`VAULT_AUTH_ROLE`
///    alone = AWS IAM with the task role's credentials);
/// 1. `VAULT_ROLE_ID[_FILE]` (+ `VAULT_SECRET_ID[_FILE]`): AppRole from values/files;
/// 2. `VAULT_APPROLE_S3_BUCKET`: AppRole with the credentials delivered to S3
///    for `VAULT_APPROLE_ROLE`, else for the role derived from `iam_role`
///    (the `--iam-role` flag) or the discovered task role;
/// 3. `VAULT_TOKEN` / `VAULT_TOKEN_FILE`.
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
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let method = vault_auth_env::AuthMethod::from_lookup(&lookup)?;
    let explicit = get(vault_auth_env::METHOD_VARIABLE).is_some();
    if let Some(method) = method.filter(|m| {
        (explicit && *m != vault_auth_env::AuthMethod::AppRole)
            || (!explicit && *m == vault_auth_env::AuthMethod::AwsIam)
    }) {
        let auth = vault_auth_env::build(method, &lookup)?;
        return Ok((auth, method.to_string(), None));
    }
    if get("VAULT_ROLE_ID").is_some() || get("VAULT_ROLE_ID_FILE").is_some() {
        let auth = AppRoleAuth::from_lookup(&lookup)?;
        return Ok((Arc::new(auth), "approle (configured role_id)".into(), None));
    }
    if get("VAULT_APPROLE_S3_BUCKET").is_some() {
        let role = match get("VAULT_APPROLE_ROLE") {
            Some(role) => role,
            None => {
                let iam = match iam_role {
                    Some(r) => r.to_owned(),
                    None => crate::role::discover(&lookup).await?,
                };
                role_name_from_iam(&iam).with_context(|| format!("the IAM role {iam}"))?
            }
        };
        let store: Arc<dyn CredentialStore> = Arc::new(S3CredentialStore::from_lookup(&lookup)?);
        let delivered_addr = if get("VAULT_ADDR").is_none() {
            // One extra read, only when the address is not configured.
            store
                .get(&role)
                .await
                .ok()
                .flatten()
                .map(|c| c.vault_addr)
                .filter(|a| !a.is_empty())
        } else {
            None
        };
        let mount = get("VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".into());
        let auth = AppRoleAuth::from_store(&mount, store, role.clone());
        return Ok((
            Arc::new(auth),
            format!("approle role {role} (credentials from S3)"),
            delivered_addr,
        ));
    }
    let auth = TokenAuth::from_lookup(&lookup).context(
        "no Vault login configured: set VAULT_APPROLE_S3_BUCKET (delivered AppRole credentials), VAULT_ROLE_ID, or VAULT_TOKEN",
    )?;
    Ok((Arc::new(auth), "token".into(), None))
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
