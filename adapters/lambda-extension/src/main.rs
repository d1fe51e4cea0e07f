//! `vault-aws-extension`: an external Lambda extension that is a drop-in
//! replacement for hashicorp/vault-lambda-extension, built on `vault-proxy`.
//!
//! - `VAULT_RUN_MODE=default` (secret files, then the proxy), `proxy`, or `file`.
//! - File mode writes the secret files BEFORE registering, so the function
//!   can read them during its init; proxy mode binds the listener and
//!   registers at once, and the proxy makes early requests wait for the login.
//! - Errors are reported through `init/error` with a readable type
//!   (`Extension.ConfigError`, `Extension.AuthError`, `Extension.SecretError`).
//! - On `SHUTDOWN` it revokes its token and exits within the deadline.
//!
//! Configuration: docs/proxy.md.

mod auth;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_extension::{Extension, LambdaEvent, NextEvent, service_fn};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vault_client::VaultClient;
use vault_proxy::{
    Listener, Metrics, Proxy, SecretFiles, Settings, TokenManager, lambda_client_config_from_lookup,
};

/// A failure during init, with the type reported to Lambda.
struct InitFailure {
    error_type: &'static str,
    message: String,
}

impl InitFailure {
    fn config(e: impl std::fmt::Display) -> Self {
        Self {
            error_type: "Extension.ConfigError",
            message: format!("vault-aws-extension configuration: {e}"),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let started = Instant::now();
    match run(started).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(()) => std::process::ExitCode::FAILURE,
    }
}

async fn run(started: Instant) -> Result<(), ()> {
    // Lambda's logging configuration (AWS_LAMBDA_LOG_FORMAT/LEVEL), with
    // VAULT_LOG_LEVEL first as in hashicorp/vault-lambda-extension; set up
    // before the settings are read, so an error about them is logged too.
    vault_aws_lambda_env::LogSettings::from_lookup(
        env,
        "VAULT_LOG_LEVEL",
        vault_aws_lambda_env::LogFormat::Text,
        "info",
    )
    .init();
    let settings = Settings::from_lookup(env, true);
    if env("AWS_LAMBDA_RUNTIME_API").is_none_or(|v| v.trim().is_empty()) {
        // Started by hand, not by Lambda: a usage error for the person at the
        // terminal, printed whatever VAULT_LOG_LEVEL says.
        eprintln!(
            "vault-aws-extension: AWS_LAMBDA_RUNTIME_API is not set, so this is not a Lambda \
             execution environment. Install the binary as a layer in /opt/extensions/; \
             to run the same proxy as a sidecar or on a workstation use `vault-aws proxy`."
        );
        return Err(());
    }
    let early = match settings {
        Ok(settings) => before_register(settings).await,
        Err(e) => Err(InitFailure::config(e)),
    };
    let mut early = match early {
        Ok(early) => early,
        Err(failure) => {
            report_init_error(&failure).await;
            return Err(());
        }
    };

    let cancel = CancellationToken::new();
    let shutdown = Arc::new(Notify::new());
    let managed: Arc<OnceLock<TokenManager>> = Arc::new(OnceLock::new());
    let processor = {
        let (managed, cancel, shutdown) =
            (Arc::clone(&managed), cancel.clone(), Arc::clone(&shutdown));
        service_fn(move |event: LambdaEvent| {
            let (managed, cancel, shutdown) =
                (Arc::clone(&managed), cancel.clone(), Arc::clone(&shutdown));
            async move {
                if let NextEvent::Shutdown(e) = event.next {
                    let budget = time_left(e.deadline_ms)
                        .saturating_sub(Duration::from_millis(300))
                        .clamp(Duration::from_millis(100), Duration::from_millis(1500));
                    tracing::info!(reason = %e.shutdown_reason, budget_ms = budget.as_millis() as u64, "shutting down");
                    cancel.cancel();
                    if let Some(tokens) = managed.get() {
                        tokens.shutdown(budget).await;
                    }
                    shutdown.notify_one();
                }
                Ok::<(), lambda_extension::Error>(())
            }
        })
    };
    let registered = match Extension::new()
        .with_events(&["SHUTDOWN"])
        .with_events_processor(processor)
        .register()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot register with the Lambda Extensions API");
            return Err(());
        }
    };
    tracing::info!(
        elapsed_us = started.elapsed().as_micros() as u64,
        "vault-aws-extension registered"
    );

    // Proxy mode: the HTTP client (TLS roots) is built after registering;
    // early requests wait in the listener's backlog, then for the login.
    let tokens = match early.tokens.take() {
        Some(tokens) => tokens,
        None => match VaultClient::new(early.client_config.clone()) {
            Ok(client) => {
                let tokens = TokenManager::new(
                    client,
                    Arc::clone(&early.auth),
                    early.settings.token.clone(),
                    Arc::new(Metrics::new()),
                );
                tokens.start();
                tokens
            }
            Err(e) => {
                post_init_error(&registered.extension_id, &InitFailure::config(e)).await;
                return Err(());
            }
        },
    };
    let _ = managed.set(tokens.clone());
    if let Some(listener) = early.listener.take() {
        let proxy = Proxy::new(tokens.clone(), &early.settings.proxy);
        tokio::spawn(proxy.serve(listener, cancel.clone()));
    }
    if let Some((files, states)) = early.files.take() {
        files.spawn_maintenance(states, cancel.clone());
    }
    tokio::select! {
        r = registered.run() => {
            if let Err(e) = r {
                tracing::error!(error = %e, "the Extensions API loop failed");
                return Err(());
            }
        }
        () = shutdown.notified() => {}
    }
    Ok(())
}

/// What is done before `register`.
struct Early {
    settings: Settings,
    client_config: vault_client::ClientConfig,
    auth: Arc<dyn vault_client::VaultAuth>,
    listener: Option<Listener>,
    tokens: Option<TokenManager>,
    files: Option<(SecretFiles, Vec<vault_proxy::SecretFileState>)>,
}

/// Everything before `register`: configuration, the proxy's listener, and
/// when there are secret files, the login and the files.
async fn before_register(settings: Settings) -> Result<Early, InitFailure> {
    let client_config = lambda_client_config_from_lookup(env).map_err(InitFailure::config)?;
    let auth = auth::auth_from_lookup(env).map_err(InitFailure::config)?;
    let listener = if settings.run_mode.proxy() {
        Some(Listener::bind(&settings.proxy.listen).await.map_err(|e| {
            InitFailure::config(format!("cannot listen on {}: {e}", settings.proxy.listen))
        })?)
    } else {
        None
    };
    let mut early = Early {
        client_config,
        auth,
        listener,
        tokens: None,
        files: None,
        settings,
    };
    if early.settings.run_mode.files() && !early.settings.files.secrets.is_empty() {
        let client = VaultClient::new(early.client_config.clone()).map_err(InitFailure::config)?;
        let tokens = TokenManager::new(
            client,
            Arc::clone(&early.auth),
            early.settings.token.clone(),
            Arc::new(Metrics::new()),
        );
        tokens.start();
        tokens
            .wait_ready(early.settings.token.login_wait)
            .await
            .map_err(|e| InitFailure {
                error_type: "Extension.AuthError",
                message: format!("vault-aws-extension: {e}"),
            })?;
        let secret_files = SecretFiles::new(tokens.clone(), early.settings.files.clone());
        let states = secret_files.write_all().await.map_err(|e| InitFailure {
            error_type: "Extension.SecretError",
            message: format!("vault-aws-extension: {e}"),
        })?;
        early.files = Some((secret_files, states));
        early.tokens = Some(tokens);
    }
    Ok(early)
}

/// Registers (the API accepts errors only from registered extensions) and
/// posts `init/error`; Lambda then fails the init with this type.
async fn report_init_error(failure: &InitFailure) {
    match Extension::new().with_events(&["SHUTDOWN"]).register().await {
        Ok(registered) => post_init_error(&registered.extension_id, failure).await,
        Err(e) => {
            // The init error itself must not be lost with the registration.
            tracing::error!(error_type = failure.error_type, "{}", failure.message);
            tracing::error!(error = %e, "cannot register to report the init error");
        }
    }
}

/// `POST /init/error` for the registered extension `extension_id`.
async fn post_init_error(extension_id: &str, failure: &InitFailure) {
    tracing::error!(error_type = failure.error_type, "{}", failure.message);
    let body = lambda_extension::requests::ErrorRequest {
        error_message: &failure.message,
        error_type: failure.error_type,
        stack_trace: Vec::new(),
    };
    let request = match lambda_extension::requests::init_error(
        extension_id,
        failure.error_type,
        Some(body),
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the init/error request");
            return;
        }
    };
    match lambda_runtime_api_client::Client::builder().build() {
        Ok(client) => {
            if let Err(e) = client.call(request).await {
                tracing::error!(error = %e, "cannot report the init error");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot reach the Extensions API"),
    }
}

fn time_left(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Duration::from_millis(deadline_ms.saturating_sub(now))
}
