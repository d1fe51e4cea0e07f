//! `vault-aws replicate --watch`, run as an operator would: the watcher
//! listens, OpenBao starts with a socket audit device pointing at it (and a
//! file device), a KV write appears in moto's Secrets Manager, SIGTERM stops
//! the watcher cleanly.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{Moto, OpenBao};
use vault_replicate::aws;

/// Kills the watcher if the test fails before it stops it.
struct Watcher(Option<Child>);

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test]
async fn watch_replicates_a_write_and_stops_on_sigterm() {
    let moto = Moto::start().await;
    let bao_port = OpenBao::reserve_port();
    let watch_port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("watch.log");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-aws"));
    cmd.args(["replicate", "--watch"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("VAULT_") || k.starts_with("AWS_") || k.starts_with("REPLICATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(testkit::replication::env(
        &format!("http://127.0.0.1:{bao_port}"),
        &moto,
    ))
    .env("REPLICATE_WRITE_TPS", "0")
    .env("REPLICATE_SOURCES", "secret/team")
    .env("REPLICATE_WATCH_LISTEN", format!("127.0.0.1:{watch_port}"))
    .env("REPLICATE_WATCH_WINDOW_MS", "200")
    .env("REPLICATE_WATCH_METRICS_SECS", "1")
    .env("VAULT_LOG_LEVEL", "info")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut watcher = Watcher(Some(cmd.spawn().unwrap()));

    // The listener first: OpenBao tests its socket device at start.
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", watch_port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the watcher did not listen: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bao = OpenBao::start_on_with_config(
        bao_port,
        &format!(
            "audit \"socket\" \"watch\" {{\n  options {{\n    address = \"127.0.0.1:{watch_port}\"\n    socket_type = \"tcp\"\n  }}\n}}\n\
             audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            dir.path().join("audit.log").display()
        ),
    )
    .await;
    let out = bao
        .bao(&["kv", "put", "secret/team/db", "password=s3cr3t-value"])
        .await;
    assert!(out.status.success(), "{out:?}");

    let sm = aws::secretsmanager_client(
        &vault_replicate::aws::test_sdk_config(&moto.endpoint(), 1).await,
    );
    let start = Instant::now();
    loop {
        if let Ok(v) = sm
            .get_secret_value()
            .secret_id("vault/team/db")
            .send()
            .await
        {
            assert_eq!(v.secret_string(), Some(r#"{"password":"s3cr3t-value"}"#));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not replicated within 15 s: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM: a clean exit with the metrics line, and no value in the log.
    let mut child = watcher.0.take().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status:?}: {text}");
    assert!(text.contains("watch metrics"), "{text}");
    assert!(text.contains("replicated=1"), "{text}");
    assert!(!text.contains("s3cr3t-value"), "{text}");
}
