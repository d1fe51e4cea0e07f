//! The `vault-aws` binary, run as a user would, against a real OpenBao.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use testkit::OpenBao;

fn vault_aws(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-aws"));
    cmd.args(args);
    for var in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_SKIP_VERIFY",
        "VAULT_CACERT",
        "VAULT_MAX_RETRIES",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version() {
    let out = vault_aws(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("vault-aws {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn health_of_a_running_server() {
    let bao = OpenBao::start().await;
    let out = vault_aws(
        &["vault", "health", "--format", "json"],
        &[("VAULT_ADDR", &bao.addr())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ready"], true);
    assert_eq!(json["sealed"], false);
    assert_eq!(json["status"], 200);
    assert!(json["version"].as_str().unwrap().starts_with("2."));

    let out = vault_aws(&["--address", &bao.addr(), "vault", "health"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("sealed       false"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn unreachable_server_fails_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("http://127.0.0.1:{port}");
    let out = vault_aws(
        &["vault", "health"],
        &[("VAULT_ADDR", &addr), ("VAULT_MAX_RETRIES", "0")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("error: cannot get the health of {addr}/")),
        "{stderr}"
    );
    assert!(stderr.contains("connection failed"), "{stderr}");
}

#[test]
fn bad_configuration_names_the_variable() {
    let out = vault_aws(&["vault", "health"], &[("VAULT_SKIP_VERIFY", "maybe")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("VAULT_SKIP_VERIFY is invalid: got \"maybe\"; expected a boolean"),
        "{stderr}"
    );
}
