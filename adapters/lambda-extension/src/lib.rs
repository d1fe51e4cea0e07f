//! The Lambda extension `vault-aws-extension`: a drop-in replacement for
//! hashicorp/vault-lambda-extension, built on `vault-proxy`. The binary
//! (`src/main.rs`) sets up logging, checks that Lambda started it and calls
//! [`run`].
//!
//! - `VAULT_RUN_MODE=default` (secret files, then the proxy), `proxy`, or `file`.
//! - File mode writes the secret files BEFORE registering, so the function
//!   can read them during its init; proxy mode binds the listener and
//!   registers at once, and the proxy makes early requests wait for the login.
//! - Errors are reported through `init/error` with a readable type
//!   (`Extension.ConfigError`, `Extension.AuthError`, `Extension.SecretError`).
//! - On `SHUTDOWN` it revokes its token and exits within the deadline.
//!
//! | module | holds |
//! |---|---|
//! | `init` | what is done before `register`, and the failures reported through `init/error` with their type |
//! | `shutdown` | `SHUTDOWN`: stop, revoke the token within the deadline, exit |
//! | `auth` | the login, from the environment |
//!
//! Configuration: docs/proxy.md.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod auth;
mod init;
mod shutdown;

use std::process::ExitCode;
use std::time::Instant;

use lambda_extension::{Extension, LambdaEvent, service_fn};
use vault_proxy::{Proxy, Settings};

use crate::init::InitFailure;
use crate::shutdown::Shutdown;

/// Runs the extension in a Lambda execution environment, its configuration
/// read through `lookup` (`started`: when the process started, for the log
/// line of the registration). Failure when the init failed (reported through
/// `init/error`), the registration failed or the Extensions API loop ended in
/// an error; success after `SHUTDOWN`.
pub async fn run<F>(lookup: F, started: Instant) -> ExitCode
where
    F: Fn(&str) -> Option<String> + Copy,
{
    let early = match Settings::from_lookup(lookup, true) {
        Ok(settings) => init::before_register(settings, lookup).await,
        Err(e) => Err(InitFailure::config(e)),
    };
    let mut early = match early {
        Ok(early) => early,
        Err(failure) => {
            init::report_init_error(&failure).await;
            return ExitCode::FAILURE;
        }
    };

    let shutdown = Shutdown::default();
    let processor = {
        let shutdown = shutdown.clone();
        service_fn(move |event: LambdaEvent| {
            let shutdown = shutdown.clone();
            async move { shutdown.handle(event).await }
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
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        elapsed_us = started.elapsed().as_micros() as u64,
        "vault-aws-extension registered"
    );

    let tokens = match early.take_tokens() {
        Ok(tokens) => tokens,
        Err(failure) => {
            init::post_init_error(&registered.extension_id, &failure).await;
            return ExitCode::FAILURE;
        }
    };
    shutdown.manage(tokens.clone());
    if let Some(listener) = early.listener.take() {
        let proxy = Proxy::new(tokens.clone(), &early.settings.proxy);
        tokio::spawn(proxy.serve(listener, shutdown.cancel.clone()));
    }
    if let Some((files, states)) = early.files.take() {
        files.spawn_maintenance(states, shutdown.cancel.clone());
    }
    tokio::select! {
        r = registered.run() => {
            if let Err(e) = r {
                tracing::error!(error = %e, "the Extensions API loop failed");
                return ExitCode::FAILURE;
            }
        }
        () = shutdown.done() => {}
    }
    ExitCode::SUCCESS
}
