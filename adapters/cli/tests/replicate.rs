//! `vault-aws replicate`, run as a user would, against a real OpenBao and moto.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use testkit::{Moto, OpenBao};
use vault_replicate::aws;

fn replicate(args: &[&str], bao: &OpenBao, moto: &Moto, extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-aws"));
    cmd.arg("replicate").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("VAULT_") || k.starts_with("AWS_") || k.starts_with("REPLICATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(testkit::replication::env(&bao.addr(), moto))
        .env("REPLICATE_WRITE_TPS", "0")
        .envs(extra.iter().copied());
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn dry_run_then_run_then_a_bad_setting() {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    bao.bao(&["kv", "put", "secret/team/db", "password=p1"])
        .await;
    bao.bao(&["kv", "put", "secret/team/sub/api", "token=t1"])
        .await;
    let sm = aws::secretsmanager_client(
        &vault_replicate::aws::test_sdk_config(&moto.endpoint(), 2).await,
    );

    // Dry run, JSON: the plan, nothing written.
    let out = replicate(&["--dry-run", "--format", "json"], &bao, &moto, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json["reports"][0];
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["counts"]["create"], 2);
    assert_eq!(report["planned"][0]["names"][0], "vault/team/db");
    assert!(
        sm.describe_secret()
            .secret_id("vault/team/db")
            .send()
            .await
            .is_err()
    );

    // A real run, text.
    let out = replicate(&[], &bao, &moto, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("create") && stdout.contains("vault.list"),
        "{stdout}"
    );
    assert!(!stdout.contains("p1"), "no secret value in the output");
    let v = sm
        .get_secret_value()
        .secret_id("vault/team/sub/api")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some(r#"{"token":"t1"}"#));

    // A bad setting: exit 1, the variable named.
    let out = replicate(&[], &bao, &moto, &[("REPLICATE_DELETION", "sometimes")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("REPLICATE_DELETION"),
        "{}",
        text(&out.stderr)
    );
}
