//! The proxy as a `tower::Service`, called with `oneshot` and no socket, for
//! request bodies of any type (not only hyper's `Incoming`): a buffered
//! body, a streamed one larger than the retry buffer, and the guard's
//! refusal, against a real OpenBao.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};
use testkit::OpenBao;
use tower::ServiceExt;
use vault_client::{ClientConfig, SecretString, TokenAuth, VaultClient};
use vault_proxy::{Metrics, Proxy, ProxyBody, ProxyConfig, TokenManager};

async fn body_json(response: http::Response<ProxyBody>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
}

#[tokio::test]
async fn the_proxy_is_a_tower_service_for_any_body() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    let client = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap()).unwrap();
    let auth = Arc::new(TokenAuth::new(SecretString::from(bao.root_token())));
    let tokens = TokenManager::new(
        client,
        auth,
        token_config(Duration::from_secs(10)),
        Arc::new(Metrics::new()),
    );
    tokens.start();
    let proxy = Proxy::new(tokens.clone(), &ProxyConfig::default());

    // A buffered body (Full<Bytes>): write, then read back, both without a socket.
    let payload = Bytes::from(json!({"data": {"k": "oneshot-v1"}}).to_string());
    let write = Request::builder()
        .method(Method::PUT)
        .uri("/v1/secret/data/svc")
        .header("X-Vault-Request", "true")
        .header("Content-Length", payload.len())
        .body(Full::new(payload))
        .unwrap();
    let response = proxy.clone().oneshot(write).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read = Request::get("/v1/secret/data/svc")
        .header("X-Vault-Request", "true")
        .body(String::new())
        .unwrap();
    let response = proxy.clone().oneshot(read).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["data"]["data"]["k"], "oneshot-v1");

    // A streamed body of another type, larger than the 1 MiB retry buffer and
    // without a Content-Length: it is streamed to Vault as it comes.
    let big = "x".repeat(1_500_000);
    let json = json!({"data": {"big": big}}).to_string().into_bytes();
    let chunks: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = json
        .chunks(64 * 1024)
        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let streamed = Request::builder()
        .method(Method::POST)
        .uri("/v1/secret/data/large")
        .header("X-Vault-Request", "true")
        .header("Transfer-Encoding", "chunked")
        .body(StreamBody::new(futures_util::stream::iter(chunks)))
        .unwrap();
    let response = proxy.clone().oneshot(streamed).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stored = root(&bao)
        .kv2("secret")
        .read("large")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.data.expose_secret()["big"].as_str().map(str::len),
        Some(1_500_000)
    );

    // The guard answers through the service too: no X-Vault-Request, 412.
    let unguarded = Request::get("/v1/secret/data/svc")
        .body(String::new())
        .unwrap();
    let response = proxy.clone().oneshot(unguarded).await.unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    assert!(
        body_json(response).await["errors"][0]
            .as_str()
            .unwrap()
            .contains("X-Vault-Request")
    );

    tokens.shutdown(Duration::from_secs(2)).await;
}
