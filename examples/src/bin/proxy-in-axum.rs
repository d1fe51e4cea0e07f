//! `proxy-in-axum [LISTEN]`: an axum app that serves its own routes and the
//! Vault API under `/v1/` through the vault-aws proxy, in one process.
//!
//! ```sh
//! VAULT_ADDR=https://vault:8200 VAULT_ROLE_ID=... VAULT_SECRET_ID=... \
//!   proxy-in-axum 127.0.0.1:3000
//! curl localhost:3000/healthz
//! curl -H 'X-Vault-Request: true' localhost:3000/v1/secret/data/app
//! ```
//!
//! The login and the proxy's settings come from the same variables as
//! `vault-aws proxy` (docs/configuration.md); `LISTEN` defaults to
//! `127.0.0.1:3000`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vault_client::VaultClient;
use vault_proxy::{Metrics, Proxy, Settings, TokenManager, client_config_from_lookup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let settings = Settings::from_lookup(env, false)?;
    let client = VaultClient::new(client_config_from_lookup(env)?)?;
    let auth = vault_auth_env::auth_from_lookup(env)?;
    let tokens = TokenManager::new(
        client,
        auth,
        settings.token.clone(),
        Arc::new(Metrics::new()),
    );
    tokens.start();

    let app = vault_aws_examples::app(Proxy::new(tokens.clone(), &settings.proxy));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("proxy-in-axum listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    tokens.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
