//! Shared setup for the integration tests: an OpenBao with KV data and an
//! AppRole, and an in-process proxy on a free port.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use testkit::OpenBao;
use tokio_util::sync::CancellationToken;
use vault_client::{ClientConfig, Method, SecretString, VaultAuth, VaultClient};
use vault_proxy::{Listen, Listener, Metrics, Proxy, ProxyConfig, TokenConfig, TokenManager};

pub const ROLE_ID: &str = "proxy-test-role-id";
pub const SECRET_ID: &str = "proxy-test-secret-id-7f3a";
pub const KV_VALUE: &str = "kv-secret-value-91c2";

pub fn root(bao: &OpenBao) -> VaultClient {
    VaultClient::new(
        ClientConfig::new(&bao.addr())
            .unwrap()
            .with_token(SecretString::from(bao.root_token())),
    )
    .unwrap()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// KV v2 at `secret/` holds `app` = {password: KV_VALUE}; KV v1 at `kv1/`
/// holds `short` with a 2 s ttl; policy `app` reads them (and database
/// creds); AppRole `app` has the fixed ROLE_ID / SECRET_ID and tokens with
/// `ttl` / `max_ttl`.
pub async fn setup(bao: &OpenBao, ttl: &str, max_ttl: &str) {
    let root = root(bao);
    root.kv2("secret")
        .write(
            "app",
            json!({"password": KV_VALUE}).as_object().unwrap(),
            None,
        )
        .await
        .unwrap();
    root.enable_secrets_engine("kv1", "kv", None).await.unwrap();
    root.request(Method::POST, "kv1/short")
        .json(&json!({"value": "short-lived", "ttl": "2s"}))
        .send()
        .await
        .unwrap();
    root.write_policy(
        "app",
        r#"path "secret/data/*" { capabilities = ["read"] }
path "kv1/*" { capabilities = ["read"] }
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }"#,
    )
    .await
    .unwrap();
    root.enable_auth_method("approle", "approle").await.unwrap();
    root.request(Method::POST, "auth/approle/role/app")
        .json(&json!({"token_policies": ["app"], "token_ttl": ttl, "token_max_ttl": max_ttl}))
        .send()
        .await
        .unwrap();
    root.request(Method::POST, "auth/approle/role/app/role-id")
        .json(&json!({"role_id": ROLE_ID}))
        .send()
        .await
        .unwrap();
    root.request(Method::POST, "auth/approle/role/app/custom-secret-id")
        .json(&json!({"secret_id": SECRET_ID}))
        .send()
        .await
        .unwrap();
}

/// The proxy's login in these tests: AppRole with the fixed role_id and
/// secret_id, through `vault-client` alone (vault-proxy's tests link no other
/// capability crate: ARCHITECTURE.md's layering rule).
pub struct TestAppRole;

#[async_trait::async_trait]
impl VaultAuth for TestAppRole {
    async fn login(&self, client: &VaultClient) -> vault_client::Result<vault_client::AuthInfo> {
        client
            .approle("approle")
            .login(ROLE_ID, Some(&SecretString::from(SECRET_ID)))
            .await
    }

    fn method(&self) -> &'static str {
        "approle"
    }
}

pub fn approle() -> Arc<dyn VaultAuth> {
    Arc::new(TestAppRole)
}

pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub tokens: TokenManager,
    pub metrics: Arc<Metrics>,
    pub cancel: CancellationToken,
}

impl Running {
    pub fn v1(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.url)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn token_config(grace: Duration) -> TokenConfig {
    TokenConfig {
        grace,
        login_wait: Duration::from_secs(10),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        revoke_on_shutdown: true,
    }
}

/// Starts a proxy to `vault_addr` on 127.0.0.1:0.
pub async fn start_proxy(
    vault_addr: &str,
    auth: Arc<dyn VaultAuth>,
    token: TokenConfig,
    mut config: ProxyConfig,
) -> Running {
    let client = VaultClient::new(
        ClientConfig::new(vault_addr)
            .unwrap()
            .with_max_retries(0)
            .with_timeout(Duration::from_secs(10)),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let tokens = TokenManager::new(client, auth, token, Arc::clone(&metrics));
    tokens.start();
    config.listen = Listen::Tcp("127.0.0.1:0".parse().unwrap());
    let listener = Listener::bind(&config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let proxy = Proxy::new(tokens.clone(), &config);
    tokio::spawn(proxy.serve(listener, cancel.clone()));
    Running {
        addr,
        url: format!("http://{addr}"),
        tokens,
        metrics,
        cancel,
    }
}

/// GET through the proxy with `X-Vault-Request: true` and extra headers.
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = http.get(url).header("X-Vault-Request", "true");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// `(username, password)` of the database credentials in a secret file the
/// proxy wrote (`{"data": {"username": ..., "password": ...}, ...}`).
pub fn creds(file: &std::path::Path) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    (
        v["data"]["username"].as_str().unwrap().to_owned(),
        v["data"]["password"].as_str().unwrap().to_owned(),
    )
}
