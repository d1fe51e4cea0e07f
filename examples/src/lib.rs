//! Runnable programs that use the vault-aws libraries; see `src/bin/`.
//!
//! | program | shows |
//! |---|---|
//! | `approle-quickstart` | the trusted-orchestrator pattern with `vault-client`: policy, AppRole, a wrapped single-use secret_id, the consumer's unwrap and login, a least-privilege read, revocation |
//! | `proxy-function` | a Lambda function (`lambda_runtime`) that reads its secret through the `vault-aws-extension` proxy at 127.0.0.1:8200, or from the extension's secret file |
//! | `proxy-in-axum` | the vault-aws proxy mounted in an axum app under `/v1/`, next to the app's own routes ([`app`]) |

/// Hides a secret entirely, for demo output: `**** (21 chars)`. No
/// character of the value is shown, not even a prefix.
pub fn mask(secret: &str) -> String {
    format!("**** ({} chars)", secret.chars().count())
}

/// An axum app with its own routes (`GET /healthz`) that serves the Vault
/// API under `/v1/` through the vault-aws proxy (a `tower::Service`): its
/// callers never hold a Vault token, and the proxy's SSRF guard, cache and
/// re-login apply as in the sidecar.
pub fn app(proxy: vault_proxy::Proxy) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route_service("/v1/{*path}", proxy)
}
