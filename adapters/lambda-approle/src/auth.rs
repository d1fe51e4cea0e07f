//! How the orchestrator authenticates to Vault: the one place to add a login
//! method (the workspace's shared "auth from environment" builder replaces
//! this after the merge; AWS IAM is the preferred method there).

use std::sync::Arc;

use anyhow::Context;
use vault_approle::S3TokenAuth;
use vault_client::{TokenAuth, VaultAuth};

/// `VAULT_TOKEN_S3_BUCKET` + `VAULT_TOKEN_S3_KEY`: a token kept in S3 (read on
/// every login); otherwise `VAULT_TOKEN` / `VAULT_TOKEN_FILE`.
pub fn auth_from_lookup<F>(lookup: F) -> anyhow::Result<Arc<dyn VaultAuth>>
where
    F: Fn(&str) -> Option<String>,
{
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    if set("VAULT_TOKEN_S3_BUCKET") || set("VAULT_TOKEN_S3_KEY") {
        let auth = S3TokenAuth::from_lookup(&lookup).context("orchestrator token in S3")?;
        return Ok(Arc::new(auth));
    }
    let auth = TokenAuth::from_lookup(&lookup).context(
        "no orchestrator login configured: set VAULT_TOKEN_S3_BUCKET and VAULT_TOKEN_S3_KEY, or VAULT_TOKEN",
    )?;
    Ok(Arc::new(auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_s3_then_token_and_explains_what_is_missing() {
        let a = auth_from_lookup(|k| match k {
            "VAULT_TOKEN_S3_BUCKET" => Some("b".into()),
            "VAULT_TOKEN_S3_KEY" => Some("k".into()),
            "VAULT_TOKEN" => Some("hvs.x".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(a.method(), "s3-token");
        let b = auth_from_lookup(|k| (k == "VAULT_TOKEN").then(|| "hvs.x".into())).unwrap();
        assert_eq!(b.method(), "token");
        let err = format!("{:#}", auth_from_lookup(|_| None).err().unwrap());
        assert!(err.contains("VAULT_TOKEN_S3_BUCKET"), "{err}");
        let err = format!(
            "{:#}",
            auth_from_lookup(|k| (k == "VAULT_TOKEN_S3_BUCKET").then(|| "b".into()))
                .err()
                .unwrap()
        );
        assert!(err.contains("VAULT_TOKEN_S3_KEY"), "{err}");
    }
}
