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

#[test]
fn a_usage_error_is_not_a_sealed_vault() {
    // `vault health` answers 2 for a sealed server: a typo must not look like that.
    for args in [
        &["--no-such-flag", "vault", "health"][..],
        &["vault", "health", "--format", "yaml"],
        &["vault"],
    ] {
        let out = vault_aws(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = vault_aws(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("VAULT_FORMAT"),
        "{}",
        text(&out.stdout)
    );
    // The replication settings show in `replicate --help` with their
    // variable and the value the environment gives them.
    let out = vault_aws(
        &["replicate", "--help"],
        &[("REPLICATE_DELETION", "schedule")],
    );
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for shown in [
        "--sources <MOUNT[/FOLDER],...>",
        "[env: REPLICATE_SOURCES",
        "[env: REPLICATE_DELETION=schedule]",
        "[env: REPLICATE_WATCH_LISTEN",
    ] {
        assert!(help.contains(shown), "{shown} not in:\n{help}");
    }
}

#[tokio::test]
async fn a_sealed_vault_exits_2() {
    let bao = OpenBao::start().await;
    bao.root_request("PUT", "sys/seal", serde_json::Value::Null)
        .await;
    let out = vault_aws(&["vault", "health"], &[("VAULT_ADDR", &bao.addr())]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("sealed       true"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn output_format_as_the_vault_cli_takes_it() {
    let bao = OpenBao::start().await;
    let addr = bao.addr();
    let json = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
    };
    // VAULT_FORMAT, the Vault CLI's one-dash spelling, and --format after the command.
    let by_env = vault_aws(
        &["vault", "health"],
        &[("VAULT_ADDR", &addr), ("VAULT_FORMAT", "json")],
    );
    assert_eq!(json(&by_env)["sealed"], false);
    let one_dash = vault_aws(
        &[
            &format!("-address={addr}"),
            "-format=json",
            "vault",
            "health",
        ],
        &[],
    );
    assert_eq!(json(&one_dash)["ready"], true);
    let after = vault_aws(
        &["vault", "health", "--format", "json"],
        &[("VAULT_ADDR", &addr)],
    );
    assert_eq!(json(&after)["status"], 200);
    // A flag wins over the variable.
    let table = vault_aws(
        &["vault", "health", "-format=table"],
        &[("VAULT_ADDR", &addr), ("VAULT_FORMAT", "json")],
    );
    assert!(
        text(&table.stdout).contains("sealed       false"),
        "{}",
        text(&table.stdout)
    );
}

#[tokio::test]
async fn tls_flags_mirror_the_variables() {
    let bao = OpenBao::start_tls().await;
    let addr = bao.addr();
    assert!(addr.starts_with("https://"), "{addr}");
    let ca = bao.ca_cert().unwrap();
    let ca = ca.to_str().unwrap();
    // Verification is on: an unknown CA is refused, with no retry storm.
    let refused = vault_aws(
        &["--address", &addr, "vault", "health"],
        &[("VAULT_MAX_RETRIES", "0")],
    );
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");
    for args in [
        vec!["--address", &addr, "--ca-cert", ca, "vault", "health"],
        vec!["--address", &addr, "--tls-skip-verify", "vault", "health"],
        vec![
            &format!("-address={addr}"),
            &format!("-ca-cert={ca}"),
            "vault",
            "health",
        ],
    ] {
        let out = vault_aws(&args, &[("VAULT_MAX_RETRIES", "0")]);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
}
