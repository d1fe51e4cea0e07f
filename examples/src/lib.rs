//! Runnable programs that use the vault-aws libraries; see `src/bin/`.
//!
//! | program | shows |
//! |---|---|
//! | `approle-quickstart` | the trusted-orchestrator pattern with `vault-client`: policy, AppRole, a wrapped single-use secret_id, the consumer's unwrap and login, a least-privilege read, revocation |
//! | `proxy-function` | a Lambda function (`lambda_runtime`) that reads its secret through the `vault-aws-extension` proxy at 127.0.0.1:8200, or from the extension's secret file |

/// Hides a secret entirely, for demo output: `**** (21 chars)`. No
/// character of the value is shown, not even a prefix.
pub fn mask(secret: &str) -> String {
    format!("**** ({} chars)", secret.chars().count())
}
