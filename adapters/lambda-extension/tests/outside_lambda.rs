#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

//! The extension binary started by hand (no Lambda Extensions API) and the
//! `VAULT_LOG_LEVEL` values hashicorp/vault-lambda-extension accepts.

use std::process::{Command, Output};

/// Runs the extension; returns its exit code and everything it printed
/// (logs go to stdout, as Lambda captures both streams).
fn run(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-aws-extension"));
    cmd.env_clear()
        .env("VAULT_ADDR", "http://127.0.0.1:9")
        .env("VAULT_TOKEN", "not-a-real-token");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let mut all = String::from_utf8_lossy(&stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&stderr));
    (status.code(), all)
}

#[test]
fn outside_lambda_it_exits_with_a_clear_message_instead_of_panicking() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1), "output: {stderr}");
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("vault-aws proxy"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("not-a-real-token"), "{stderr}");
}

#[test]
fn log_level_off_silences_logs_and_an_unknown_level_is_named() {
    // An invalid run mode with an unreachable Extensions API: the extension
    // logs the configuration error and the failed registration, unless off.
    let broken = [
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        ("VAULT_RUN_MODE", "nonsense"),
    ];
    let (code, stderr) = run(&broken);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("ERROR"), "{stderr}");
    assert!(stderr.contains("VAULT_RUN_MODE"), "{stderr}");

    let (code, stderr) = run(&[broken[0], broken[1], ("VAULT_LOG_LEVEL", "OFF")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim(), "", "VAULT_LOG_LEVEL=off must log nothing");

    let (_, stderr) = run(&[("VAULT_LOG_LEVEL", "loud")]);
    assert!(
        stderr.contains("VAULT_LOG_LEVEL is not one of trace, debug, info, warn, error, off"),
        "{stderr}"
    );
    assert!(stderr.contains("loud"), "{stderr}");
}
