//! No token, secret_id or secret value in any log line, at trace level,
//! through a login, renewals, proxied and cached requests, a forced
//! re-login, a secret file and shutdown.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use testkit::OpenBao;
use vault_proxy::{CacheConfig, FilesConfig, ProxyConfig, SecretFileSpec, SecretFiles};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_in_any_log_line_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let bao = OpenBao::start().await;
    setup(&bao, "2s", "1h").await;
    let config = ProxyConfig {
        cache: CacheConfig::default(),
        ..ProxyConfig::default()
    };
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_millis(500)),
        config,
    )
    .await;
    let http = http();
    let mut tokens = Vec::new();
    for headers in [
        vec![],
        vec![("X-Vault-Cache-Control", "cache")],
        vec![("X-Vault-Cache-Control", "cache")],
        vec![("X-Vault-Token-Options", "revoke")],
        vec![("X-Vault-Token", "hvs.caller-token-must-not-leak")],
    ] {
        let (status, _, body) = get(&http, &p.v1("secret/data/app"), &headers).await;
        assert_eq!(status, 200, "{body}");
        tokens.push(p.tokens.current().unwrap().secret().clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let files = SecretFiles::new(
        p.tokens.clone(),
        FilesConfig {
            secrets: vec![SecretFileSpec {
                name: String::new(),
                path: "secret/data/app".into(),
                file: dir.path().join("secret.json"),
            }],
            refresh_interval: Some(Duration::from_millis(500)),
            grace: Duration::from_millis(500),
        },
    );
    let states = files.write_all().await.unwrap();
    let _tasks = files.spawn_maintenance(states, p.cancel.clone());
    // Renewals of the 2 s token and file refreshes happen meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokens.push(p.tokens.current().unwrap().secret().clone());
    assert!(
        p.metrics.get(vault_proxy::Event::FileWrite) >= 3,
        "the KV file is re-read on its 500 ms interval"
    );
    assert!(p.metrics.get(vault_proxy::Event::Renewal) >= 1);
    p.tokens.shutdown(Duration::from_secs(2)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("logged in to vault"),
        "logs were captured:\n{logs}"
    );
    assert!(logs.contains("renewed the vault token"), "{logs}");
    assert!(logs.contains("wrote a secret file"), "{logs}");
    assert!(logs.contains("TRACE"), "trace level is on:\n{logs}");
    use vault_client::ExposeSecret;
    let mut secrets: Vec<String> = tokens
        .iter()
        .map(|t| t.expose_secret().to_owned())
        .collect();
    secrets.extend([
        SECRET_ID.to_owned(),
        KV_VALUE.to_owned(),
        "hvs.caller-token-must-not-leak".to_owned(),
    ]);
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the logs"
        );
    }
    // Token suffixes too (a truncated token is still a leak).
    for t in &tokens {
        let t = t.expose_secret();
        assert!(
            !logs.contains(&t[t.len() - 12..]),
            "part of a token appears in the logs"
        );
    }
}
