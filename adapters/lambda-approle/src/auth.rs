//! How the orchestrator authenticates to Vault. `VAULT_AUTH_METHOD` names the
//! method explicitly (see `vault_auth_env`); otherwise, in order:
//! `VAULT_AUTH_ROLE` (AWS IAM with the Lambda's own role: preferred, no
//! long-lived secret anywhere), `VAULT_TOKEN_S3_BUCKET` + `VAULT_TOKEN_S3_KEY`
//! (a token kept in S3, what the original manager did), then `VAULT_TOKEN` /
//! `VAULT_TOKEN_FILE`. AppRole is never guessed here: `VAULT_APPROLE_S3_BUCKET`
//! is this Lambda's delivery bucket, not a login.

use std::sync::Arc;

use anyhow::Context;
use vault_auth_env::Selection;
use vault_client::VaultAuth;

/// The orchestrator's login, chosen as described in the module docs
/// ([`Selection::ORCHESTRATOR`]).
pub fn auth_from_lookup<F>(lookup: F) -> anyhow::Result<Arc<dyn VaultAuth>>
where
    F: Fn(&str) -> Option<String>,
{
    let method = Selection::ORCHESTRATOR
        .method(&lookup)?
        .ok_or_else(|| Selection::ORCHESTRATOR.not_configured())?;
    vault_auth_env::build(method, &lookup).with_context(|| format!("orchestrator login ({method})"))
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
        let c = auth_from_lookup(|k| match k {
            "VAULT_AUTH_ROLE" => Some("approle-manager".into()),
            "VAULT_TOKEN" => Some("hvs.x".into()),
            "VAULT_APPROLE_S3_BUCKET" => Some("delivery".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.method(), "aws-iam");
        let d = auth_from_lookup(|k| match k {
            "VAULT_APPROLE_S3_BUCKET" => Some("delivery".into()),
            "VAULT_TOKEN" => Some("hvs.x".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(d.method(), "token");
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
