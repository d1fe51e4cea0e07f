//! `vault-aws proxy` as a separate process against a real OpenBao: frozen
//! past its token's TTL (SIGSTOP, like a Lambda freeze), it still serves the
//! next request; SIGTERM revokes the token; secret files are written.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::OpenBao;
use vault_client::{ClientConfig, Method, SecretString, VaultClient};

async fn setup(bao: &OpenBao) -> (String, String) {
    let root = VaultClient::new(
        ClientConfig::new(&bao.addr())
            .unwrap()
            .with_token(SecretString::from(bao.root_token())),
    )
    .unwrap();
    root.kv2("secret")
        .write(
            "app",
            json!({"password": "cli-kv-value"}).as_object().unwrap(),
            None,
        )
        .await
        .unwrap();
    root.write_policy("app", r#"path "secret/data/*" { capabilities = ["read"] }"#)
        .await
        .unwrap();
    root.enable_auth_method("approle", "approle").await.unwrap();
    root.request(Method::POST, "auth/approle/role/app")
        .json(&json!({"token_policies": ["app"], "token_ttl": "3s", "token_max_ttl": "1h"}))
        .send()
        .await
        .unwrap();
    let role_id = root.approle("approle").role_id("app").await.unwrap();
    let secret: serde_json::Value = root
        .request(Method::POST, "auth/approle/role/app/secret-id")
        .send()
        .await
        .unwrap()
        .data()
        .unwrap();
    (role_id, secret["secret_id"].as_str().unwrap().to_owned())
}

fn kill(signal: &str, pid: u32) {
    let ok = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn sidecar_survives_a_freeze_past_the_token_ttl() {
    let bao = OpenBao::start().await;
    let (role_id, secret_id) = setup(&bao).await;
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-aws"));
    cmd.args(["proxy", "--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", &secret_id)
        .env("VAULT_TOKEN_EXPIRY_GRACE_PERIOD", "1s")
        .env("VAULT_SECRET_PATH", "secret/data/app")
        .env("VAULT_SECRET_FILE", &file)
        .env("VAULT_LOG_LEVEL", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut proxy = Proxy(cmd.spawn().unwrap());
    let pid = proxy.0.id();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/secret/data/app");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the proxy did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["data"]["data"]["password"], "cli-kv-value");

    let get = || http.get(&url).header("X-Vault-Request", "true").send();
    assert_eq!(get().await.unwrap().status(), 200);

    // Frozen for longer than the 3 s TTL: no timer runs, the token lapses.
    kill("STOP", pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    kill("CONT", pid);
    let resp = get().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    // SIGTERM: exits promptly and revokes its token.
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/vault-aws/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("vault_proxy_requests_total"), "{metrics}");
    // The expiry check saw the lapsed token before the request was sent: no
    // request needed the 403 self-heal (which would hide a missing check).
    assert!(
        metrics.contains("\nvault_proxy_retries_after_403_total 0\n"),
        "{metrics}"
    );

    kill("TERM", pid);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = proxy.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(proxy.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("revoked the vault token"), "{stderr}");
    assert!(
        !stderr.contains(&secret_id),
        "the secret_id leaked into the logs"
    );
}

#[tokio::test]
async fn without_vault_token_the_token_helper_file_is_used() {
    // As the Vault CLI: `vault login` leaves the token in ~/.vault-token.
    let bao = OpenBao::start().await;
    setup(&bao).await;
    let home = tempfile::tempdir().unwrap();
    let start = |port: u16| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-aws"));
        cmd.args(["proxy", "--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("VAULT_ADDR", bao.addr())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Proxy(cmd.spawn().unwrap())
    };

    // No token anywhere: the sidecar refuses to start, naming what to set.
    let mut proxy = start(testkit::free_port());
    let status = proxy.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(proxy.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("VAULT_TOKEN"), "{stderr}");

    std::fs::write(home.path().join(".vault-token"), bao.root_token()).unwrap();
    let port = testkit::free_port();
    let _proxy = start(port);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/secret/data/app");
    let deadline = Instant::now() + Duration::from_secs(20);
    let resp = loop {
        if let Ok(resp) = http
            .get(&url)
            .header("X-Vault-Request", "true")
            .send()
            .await
        {
            break resp;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["data"]["password"], "cli-kv-value");
}
