//! The extension end to end under the AWS Lambda Runtime Interface Emulator,
//! with the example function `proxy-function` and a real OpenBao.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{OpenBao, Rie, RieConfig};

const KV_VALUE: &str = "rie-kv-secret-4d1e";

/// The example function's binary (package vault-aws-examples), built on demand.
fn function_binary() -> PathBuf {
    let ext = PathBuf::from(env!("CARGO_BIN_EXE_vault-aws-extension"));
    let bin = ext.with_file_name("proxy-function");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "vault-aws-examples",
                "--bin",
                "proxy-function",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build proxy-function");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// KV `secret/app`, policy `app`, AppRole `app`; returns (role_id, secret_id).
async fn setup(bao: &OpenBao) -> (String, String) {
    bao.root_request(
        "POST",
        "secret/data/app",
        json!({"data": {"password": KV_VALUE}}),
    )
    .await;
    bao.approle_with_policy("app", r#"path "secret/data/*" { capabilities = ["read"] }"#)
        .await
}

fn config(env: Vec<(&str, String)>) -> RieConfig {
    RieConfig {
        bootstrap: function_binary(),
        extensions: vec![PathBuf::from(env!("CARGO_BIN_EXE_vault-aws-extension"))],
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        files: Vec::new(),
    }
}

fn accessor_in(logs: &str) -> String {
    let line = logs
        .lines()
        .find(|l| l.contains("logged in to vault"))
        .unwrap_or_else(|| panic!("no login in the logs:\n{logs}"));
    let start = line.find("accessor=").unwrap() + "accessor=".len();
    line[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn proxy_mode_serves_the_function_and_shutdown_revokes_the_token() {
    let bao = OpenBao::start().await;
    let (role_id, secret_id) = setup(&bao).await;
    let listen = format!("127.0.0.1:{}", testkit::free_port());
    let rie = Rie::start(config(vec![
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_ROLE_ID", role_id),
        ("VAULT_SECRET_ID", secret_id.clone()),
        ("VAULT_RUN_MODE", "Proxy".into()),
        ("VAULT_PROXY_LISTEN", listen),
        ("AWS_SESSION_TOKEN", "function-session-token".into()),
        ("VAULT_LOG_LEVEL", "debug".into()),
    ]))
    .await;

    for _ in 0..2 {
        let (status, body) = rie.invoke(&json!({"path": "secret/data/app"})).await;
        assert_eq!(status, 200, "{body}\n{}", rie.logs());
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], 200, "{body}\n{}", rie.logs());
        assert_eq!(body["data"]["data"]["password"], KV_VALUE);
    }
    let logs = rie.logs();
    assert!(logs.contains("vault-aws-extension registered"), "{logs}");
    let accessor = accessor_in(&logs);

    let started = Instant::now();
    let logs = rie.shutdown().await;
    let took = started.elapsed();
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(logs.contains("revoked the vault token"), "{logs}");
    assert!(
        took < Duration::from_secs(2),
        "shutdown took {took:?}:\n{logs}"
    );
    assert!(!logs.contains(&secret_id), "the secret_id leaked");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let lookup = http
        .post(format!("{}/v1/auth/token/lookup-accessor", bao.addr()))
        .header("X-Vault-Token", bao.root_token())
        .json(&json!({"accessor": accessor}))
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status(), 400, "the token is revoked");
}

#[tokio::test]
async fn file_mode_writes_the_secret_before_the_function_starts() {
    let bao = OpenBao::start().await;
    let (role_id, secret_id) = setup(&bao).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.json");
    let rie = Rie::start(config(vec![
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_ROLE_ID", role_id),
        ("VAULT_SECRET_ID", secret_id),
        ("VAULT_RUN_MODE", "file".into()),
        ("VAULT_SECRET_PATH", "secret/data/app".into()),
        ("VAULT_SECRET_FILE", file.display().to_string()),
    ]))
    .await;
    let (status, body) = rie.invoke(&json!({"file": file})).await;
    assert_eq!(status, 200, "{body}\n{}", rie.logs());
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["file_at_init"], true, "{body}");
    assert_eq!(body["data"]["data"]["password"], KV_VALUE, "{body}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let logs = rie.shutdown().await;
    assert!(logs.contains("wrote a secret file"), "{logs}");
}

#[tokio::test]
async fn a_bad_vault_addr_is_reported_at_init() {
    let rie = Rie::start(config(vec![
        ("VAULT_ADDR", "ftp://vault.example".into()),
        ("VAULT_TOKEN", "hvs.unused".into()),
        ("VAULT_RUN_MODE", "proxy".into()),
        (
            "VAULT_PROXY_LISTEN",
            format!("127.0.0.1:{}", testkit::free_port()),
        ),
    ]))
    .await;
    let (status, body) = rie.invoke(&json!({"path": "secret/data/app"})).await;
    let logs = rie.logs();
    assert_ne!(status, 200, "{body}\n{logs}");
    assert!(
        format!("{body}\n{logs}").contains("Extension.ConfigError"),
        "{status} {body}\n{logs}"
    );
    assert!(
        logs.contains("VAULT_ADDR is invalid: unsupported scheme"),
        "{logs}"
    );
}

/// File mode with `env` (plus the address and a secret to write): invokes
/// once and returns the invoke's status, body and the logs, and how long the
/// invoke (which runs the init) took.
async fn init_with(bao: &OpenBao, env: Vec<(&str, String)>) -> (u16, String, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_RUN_MODE", "file".into()),
        ("VAULT_SECRET_PATH", "secret/data/app".into()),
        (
            "VAULT_SECRET_FILE",
            dir.path().join("secret.json").display().to_string(),
        ),
    ];
    all.extend(env);
    let rie = Rie::start(config(all)).await;
    let started = Instant::now();
    let (status, body) = rie.invoke(&json!({"path": "secret/data/app"})).await;
    let took = started.elapsed();
    let logs = rie.shutdown().await;
    (status, body, logs, took)
}

#[tokio::test]
async fn permanent_login_errors_reach_init_error_at_once_and_never_lock_the_approle_out() {
    let bao = OpenBao::start().await;
    let (role_id, secret_id) = setup(&bao).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_id_file = dir.path().join("secret-id");
    std::fs::write(&secret_id_file, &secret_id).unwrap();
    let role_dir = dir.path().join("role-id-dir");
    std::fs::create_dir(&role_dir).unwrap();
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "role_id file missing",
            vec![
                (
                    "VAULT_ROLE_ID_FILE",
                    dir.path().join("missing").display().to_string(),
                ),
                ("VAULT_SECRET_ID_FILE", secret_id_file.display().to_string()),
            ],
            "cannot read the role_id file",
        ),
        (
            "role_id file is a directory",
            vec![
                ("VAULT_ROLE_ID_FILE", role_dir.display().to_string()),
                ("VAULT_SECRET_ID_FILE", secret_id_file.display().to_string()),
            ],
            "cannot read the role_id file",
        ),
        (
            "secret_id refused",
            vec![
                ("VAULT_ROLE_ID", role_id.clone()),
                ("VAULT_SECRET_ID", "wrong-secret-id-5b7e".into()),
            ],
            "vault refused the role_id/secret_id",
        ),
        (
            "role unknown",
            vec![
                ("VAULT_ROLE_ID", "no-such-role-id".into()),
                ("VAULT_SECRET_ID", secret_id.clone()),
            ],
            "vault refused the role_id/secret_id",
        ),
    ];
    for (case, env, want) in cases {
        let (status, body, logs, took) = init_with(&bao, env).await;
        eprintln!("{case}: the invoke failed the init after {took:?}");
        let all = format!("{status} {body}\n{logs}");
        assert_ne!(status, 200, "{case}: {all}");
        assert!(all.contains("Extension.AuthError"), "{case}: {all}");
        assert!(logs.contains(want), "{case}: {all}");
        assert!(!all.contains("Task timed out"), "{case}: {all}");
        // The login wait is 10 s (Lambda's whole init): a permanent error
        // must not wait for it.
        assert!(
            took < Duration::from_secs(8),
            "{case}: the init took {took:?}\n{all}"
        );
        assert!(!logs.contains(&secret_id), "{case}: the secret_id leaked");
    }

    // The refused secret_id was not sent again and again: OpenBao's AppRole
    // lockout (5 failed attempts) did not trip, the right one still works.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let login = http
        .post(format!("{}/v1/auth/approle/login", bao.addr()))
        .json(&json!({"role_id": role_id, "secret_id": secret_id}))
        .send()
        .await
        .unwrap();
    let status = login.status();
    assert_eq!(status, 200, "{}", login.text().await.unwrap());
}
