//! `proxy-in-axum` run as its doc says, against a real OpenBao: the app's
//! own route and the Vault API through the embedded proxy on one port.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use testkit::OpenBao;

#[tokio::test]
async fn the_proxy_serves_under_v1_next_to_the_apps_own_routes() {
    let bao = OpenBao::start().await;
    bao.root_request(
        "POST",
        "secret/data/app",
        serde_json::json!({"data": {"password": "axum-kv-value"}}),
    )
    .await;
    let port = testkit::free_port();
    let _app = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxy-in-axum"))
        .arg(format!("127.0.0.1:{port}"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", bao.root_token())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            break r;
        }
        assert!(Instant::now() < deadline, "proxy-in-axum did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health.text().await.unwrap(), "ok");

    // The caller holds no token: the proxy adds its own.
    let secret: serde_json::Value = http
        .get(format!("{base}/v1/secret/data/app"))
        .header("X-Vault-Request", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(secret["data"]["data"]["password"], "axum-kv-value");

    // The SSRF guard applies inside the app as in the sidecar.
    let refused = http
        .get(format!("{base}/v1/secret/data/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 412);
}
