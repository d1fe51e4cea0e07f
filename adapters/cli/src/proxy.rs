//! `vault-aws proxy`: the vault-proxy sidecar (ECS, EC2, local development).
//!
//! Configuration comes from the environment, with the same variables as the
//! Lambda extension (see docs/proxy.md); the flags override a few.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vault_client::VaultClient;
use vault_proxy::{
    Listen, Listener, Metrics, Proxy, SecretFiles, Settings, TokenManager,
    client_config_from_lookup,
};

/// Flags of `vault-aws proxy`.
#[derive(clap::Args, Debug)]
pub struct ProxyArgs {
    /// Listen address `host:port` or `unix:/path`; overrides VAULT_PROXY_LISTEN
    /// (default 127.0.0.1:8200).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,

    /// Serve requests without `X-Vault-Request: true` (switches the SSRF guard off).
    #[arg(long)]
    no_require_request_header: bool,
}

/// Runs the sidecar until SIGTERM or SIGINT; then revokes the token.
pub async fn run(args: ProxyArgs, connection: &crate::Connection) -> anyhow::Result<()> {
    let global = connection.lookup();
    let env = |name: &str| match (name, args.listen.as_deref()) {
        // --address wins over hashicorp/vault-lambda-extension's VLE_VAULT_ADDR too.
        ("VLE_VAULT_ADDR", _) if connection.has_address() => global("VAULT_ADDR"),
        ("VAULT_PROXY_LISTEN", Some(l)) => Some(l.to_owned()),
        ("VAULT_PROXY_REQUIRE_REQUEST_HEADER", _) if args.no_require_request_header => {
            Some("false".to_owned())
        }
        _ => global(name),
    };
    let settings = Settings::from_lookup(env, false)?;
    let client = VaultClient::new(client_config_from_lookup(env)?)?;
    let auth = vault_auth_env::auth_from_lookup(env)?;
    let metrics = Arc::new(Metrics::new());
    let tokens = TokenManager::new(client, auth, settings.token.clone(), metrics);
    let cancel = CancellationToken::new();
    tokens.start();

    if settings.run_mode.files() && !settings.files.secrets.is_empty() {
        let files = SecretFiles::new(tokens.clone(), settings.files.clone());
        let states = files
            .write_all()
            .await
            .context("cannot write the secret files")?;
        files.spawn_maintenance(states, cancel.clone());
    }
    let server = if settings.run_mode.proxy() {
        let listener = Listener::bind(&settings.proxy.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.proxy.listen))?;
        let shown = match (&settings.proxy.listen, listener.local_addr()) {
            (Listen::Tcp(_), Some(a)) => a.to_string(),
            (l, _) => l.to_string(),
        };
        tracing::info!(listen = %shown, "vault-aws proxy is listening");
        eprintln!("vault-aws proxy listening on {shown}");
        let proxy = Proxy::new(tokens.clone(), &settings.proxy);
        Some(tokio::spawn(proxy.serve(listener, cancel.clone())))
    } else {
        None
    };

    wait_for_signal().await?;
    tracing::info!("shutting down");
    cancel.cancel();
    tokens.shutdown(Duration::from_secs(2)).await;
    if let Some(server) = server {
        let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    }
    if let Listen::Unix(path) = &settings.proxy.listen {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
