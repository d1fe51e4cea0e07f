//! OpenBao (or HashiCorp Vault) itself as an AWS Lambda function.
//!
//! The function's image holds the server binary and this runtime. In the
//! init phase the runtime reads its secrets from Secrets Manager (the static
//! seal key, the PostgreSQL connection URL), starts the server as a child on
//! the loopback interface and waits until it answers unsealed (or
//! uninitialized, so that `vault-aws server init` can initialize it). Each
//! API Gateway event (HTTP API payload 2.0 or REST) then becomes an HTTP
//! request to the server, and its answer the Lambda response; a direct
//! invocation `{"vault_aws_server": "init"}` initializes the server and
//! stores its recovery keys and root token in Secrets Manager. On SIGTERM
//! (Lambda's shutdown) the server is stopped cleanly.
//!
//! See `docs/vault-in-lambda.md` for when this is a good idea, and its
//! limits.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

pub mod config;
pub mod gateway;
pub mod init;
pub mod secrets;
pub mod server;

use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::Mutex;

pub use config::ServerConfig;
use gateway::{ApiRequest, ApiResponse, Event};
use server::Server;

/// Kept back from an invocation's deadline for the answer to travel.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The function: the running server and what answers events.
pub struct App {
    server: Mutex<Server>,
    http: reqwest::Client,
    base_url: String,
    require_authorizer: bool,
    initializer: init::Initializer,
}

/// An invocation that fails (Lambda reports it as a function error).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is not one this function answers.
    #[error(transparent)]
    Event(#[from] gateway::EventError),
    /// `server init` did not complete.
    #[error(transparent)]
    Init(#[from] init::InitError),
}

impl App {
    /// The function around a started server.
    pub fn new(
        config: &ServerConfig,
        server: Server,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Self {
        Self {
            http: server.http().clone(),
            base_url: server.base_url().to_owned(),
            server: Mutex::new(server),
            require_authorizer: config.require_authorizer,
            initializer: init::Initializer::new(
                secrets,
                config.init_secret_name.clone(),
                config.init_kms_key_id.clone(),
            ),
        }
    }

    /// Answers one event; `deadline` is the invocation's.
    pub async fn handle(&self, event: &Value, deadline: SystemTime) -> Result<Value, HandlerError> {
        match gateway::parse_event(event)? {
            Event::Init(request) => {
                let summary = self
                    .initializer
                    .run(&self.http, &self.base_url, &request)
                    .await?;
                tracing::info!(outcome = %summary["outcome"], secret = %summary["secret_name"], "server init");
                // With an auto-seal the server unseals itself right after init.
                let left = time_left(deadline);
                if let Err(e) = self.server.lock().await.wait_ready(left).await {
                    tracing::warn!(error = %e, "the server is not unsealed yet after init");
                }
                Ok(summary)
            }
            Event::Api(request) => {
                let started = vault_client::clock::now();
                let response = self.answer(&request, deadline).await;
                tracing::info!(
                    method = %request.method,
                    path = %request.path,
                    status = response.status,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "request"
                );
                Ok(gateway::to_lambda_response(request.flavour, &response))
            }
        }
    }

    async fn answer(&self, request: &ApiRequest, deadline: SystemTime) -> ApiResponse {
        if self.require_authorizer && !request.authorized {
            tracing::warn!(path = %request.path, "refused: no authorizer context in the event");
            return ApiResponse::error(
                403,
                "refused: the event carries no API Gateway authorizer context \
                 (requestContext.authorizer); put the lambda-authorizer on the route",
            );
        }
        if is_init_path(&request.path) && !request.method.eq_ignore_ascii_case("GET") {
            return ApiResponse::error(
                403,
                "sys/init is not reachable through API Gateway: initialize with \
                 `vault-aws server init --function <name>`, which keeps the keys in Secrets Manager",
            );
        }
        if let Some(status) = self.server.lock().await.exited() {
            tracing::error!(%status, "the server has exited; this instance stops so Lambda starts a new one");
            // Answer first, then leave: the next invocation gets a fresh instance.
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                std::process::exit(1);
            });
            return ApiResponse::error(503, "the server has exited; retry (a new instance starts)");
        }
        gateway::forward(&self.http, &self.base_url, request, time_left(deadline)).await
    }

    /// Stops the server (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop(&self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.server.lock().await.stop(grace).await
    }
}

fn time_left(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(vault_client::clock::wall())
        .unwrap_or_default()
        .saturating_sub(DEADLINE_MARGIN)
        .max(Duration::from_secs(1))
}

/// Whether `path` is `sys/init` however it is spelled (percent-encoding,
/// repeated slashes, `.` and `..` segments, a trailing slash: the server
/// would clean them all).
pub fn is_init_path(path: &str) -> bool {
    let decoded = url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments == ["v1", "sys", "init"]
}

/// Registers this runtime as an internal extension with no events. Its only
/// effect: Lambda then shuts the runtime down with SIGTERM (and a grace
/// period, up to 500 ms for a runtime with an internal extension) instead of
/// SIGKILL, so the server is stopped cleanly. The task it spawns waits on
/// the Extensions API's `next`, as an extension must.
pub async fn register_for_sigterm(runtime_api: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let response = http
        .post(format!(
            "http://{runtime_api}/2020-01-01/extension/register"
        ))
        .header("Lambda-Extension-Name", "lambda-vault-server")
        .json(&serde_json::json!({ "events": [] }))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| vault_client::error_chain(&e))?;
    let id = response
        .headers()
        .get("Lambda-Extension-Identifier")
        .and_then(|v| v.to_str().ok())
        .ok_or("the Extensions API answered without Lambda-Extension-Identifier")?
        .to_owned();
    let next = format!("http://{runtime_api}/2020-01-01/extension/event/next");
    tokio::spawn(async move {
        // Registered for no event: this returns only if Lambda changes its mind.
        let _ = http
            .get(&next)
            .header("Lambda-Extension-Identifier", id)
            .send()
            .await;
    });
    Ok(())
}

/// Reports an init-phase failure to Lambda's Runtime API
/// (`/runtime/init/error`): Lambda logs it and fails the invocation that
/// was waiting, with `message` (the server's own words) in the answer.
pub async fn report_init_error(runtime_api: &str, message: &str) -> Result<(), reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .build()?
        .post(format!(
            "http://{runtime_api}/2018-06-01/runtime/init/error"
        ))
        .header(
            "Lambda-Runtime-Function-Error-Type",
            "Runtime.VaultServerNotReady",
        )
        .json(&serde_json::json!({
            "errorMessage": message,
            "errorType": "Runtime.VaultServerNotReady",
            "stackTrace": [],
        }))
        .send()
        .await?
        .error_for_status()
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_init_is_recognised_however_it_is_spelled() {
        for path in [
            "/v1/sys/init",
            "/v1/sys/init/",
            "//v1//sys/init",
            "/v1/sys/./init",
            "/v1/secret/../sys/init",
            "/v1/sys/%69nit",
            "/v1/sys%2Finit",
        ] {
            assert!(is_init_path(path), "{path}");
        }
        for path in [
            "/v1/sys/health",
            "/v1/sys/initx",
            "/v1/secret/sys/init",
            "/v2/sys/init",
        ] {
            assert!(!is_init_path(path), "{path}");
        }
    }
}
