//! Small local HTTP servers standing in for AWS endpoints the binaries call:
//! the CloudFormation pre-signed ResponseURL and the ECS task credentials
//! endpoint. Each runs on a free 127.0.0.1 port and stops when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One request a [`Capture`] server received.
#[derive(Clone, Debug)]
pub struct Captured {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// Aborts the server task when dropped.
struct Serving(tokio::task::JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve(router: axum::Router) -> anyhow::Result<(SocketAddr, Serving)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind a local listener on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((addr, Serving(task)))
}

/// Records every request and answers 200: the CloudFormation ResponseURL.
pub struct Capture {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Captured>>>,
    _serving: Serving,
}

impl Capture {
    /// Starts the server.
    pub async fn start() -> anyhow::Result<Capture> {
        let received: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let router = axum::Router::new()
            .fallback(record)
            .with_state(Arc::clone(&received));
        let (addr, serving) = serve(router).await?;
        Ok(Capture {
            addr,
            received,
            _serving: serving,
        })
    }

    /// `http://127.0.0.1:P`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The first request whose path starts with `path`, waiting up to `timeout`.
    pub async fn wait_for(&self, path: &str, timeout: Duration) -> Option<Captured> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .received
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|r| r.uri.starts_with(path))
                .cloned();
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn record(
    State(received): State<Arc<Mutex<Vec<Captured>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let content_type = headers
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Captured {
            method: method.to_string(),
            uri: uri.to_string(),
            content_type,
            body,
        });
    StatusCode::OK
}

/// The ECS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`)
/// of a task whose role is `role_arn`: `GET /v2/credentials/task` with the
/// right `Authorization` header gets temporary credentials.
pub struct EcsEndpoint {
    addr: SocketAddr,
    calls: Arc<Mutex<u32>>,
    _serving: Serving,
}

#[derive(Clone)]
struct EcsState {
    role_arn: String,
    auth_token: String,
    calls: Arc<Mutex<u32>>,
}

impl EcsEndpoint {
    /// Starts the endpoint.
    pub async fn start(role_arn: &str, auth_token: &str) -> anyhow::Result<EcsEndpoint> {
        let calls: Arc<Mutex<u32>> = Arc::default();
        let state = EcsState {
            role_arn: role_arn.to_owned(),
            auth_token: auth_token.to_owned(),
            calls: Arc::clone(&calls),
        };
        let router = axum::Router::new()
            .route("/v2/credentials/task", axum::routing::get(credentials))
            .with_state(state);
        let (addr, serving) = serve(router).await?;
        Ok(EcsEndpoint {
            addr,
            calls,
            _serving: serving,
        })
    }

    /// The full URI of the credentials.
    pub fn uri(&self) -> String {
        format!("http://{}/v2/credentials/task", self.addr)
    }

    /// Authorized calls answered so far.
    pub fn calls(&self) -> u32 {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn credentials(State(state): State<EcsState>, headers: HeaderMap) -> Response {
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == state.auth_token.as_bytes());
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "bad authorization token").into_response();
    }
    *state.calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    axum::Json(json!({
        "RoleArn": state.role_arn,
        "AccessKeyId": "ASIADEMOTASKROLE",
        "SecretAccessKey": "demo-task-secret-key",
        "Token": "demo-task-session-token",
        "Expiration": "2099-01-01T00:00:00Z",
    }))
    .into_response()
}
