//! Leased secrets outlive the token that read them: Vault revokes a lease
//! when its token expires, so when the proxy's token reaches its max TTL the
//! secret files are read again with the new token before the old one dies.
//! Real OpenBao and PostgreSQL; the "function" logs in with the file's
//! credentials twice a second throughout.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use testkit::{OpenBao, Postgres};
use vault_client::Method;
use vault_proxy::{Event, FilesConfig, ProxyConfig, SecretFileSpec, SecretFiles};

fn creds(file: &std::path::Path) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    (
        v["data"]["username"].as_str().unwrap().to_owned(),
        v["data"]["password"].as_str().unwrap().to_owned(),
    )
}

async fn can_login(pg: &Postgres, user: &str, password: &str) -> bool {
    let psql = testkit::peers_dir().join("pgbin").join("psql");
    let out = tokio::process::Command::new(psql)
        .args(["-X", "-A", "-t", "-c", "select current_user"])
        .arg(format!(
            "postgresql://{user}@127.0.0.1:{}/postgres?sslmode=disable",
            pg.port()
        ))
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .await
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == user
}

#[tokio::test]
async fn database_credentials_survive_the_tokens_max_ttl() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    // Token TTL 8 s, max 24 s; database lease TTL 12 s (max 10 min): the
    // lease would outlive the token that read it.
    setup(&bao, "8s", "24s").await;
    let root = root(&bao);
    root.enable_secrets_engine("database", "database", None)
        .await
        .unwrap();
    root.request(Method::POST, "database/config/pg")
        .json(&json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable", pg.port()),
            "username": pg.superuser(),
            "password": pg.password(),
            "allowed_roles": ["app"],
        }))
        .send()
        .await
        .unwrap();
    root.request(Method::POST, "database/roles/app")
        .json(&json!({
            "db_name": "pg",
            "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
            "default_ttl": "12s",
            "max_ttl": "10m",
        }))
        .send()
        .await
        .unwrap();

    // The new token comes min(grace, ttl / 4) = 2 s before the old one expires.
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(2)),
        ProxyConfig::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.json");
    let files = SecretFiles::new(
        p.tokens.clone(),
        FilesConfig {
            secrets: vec![SecretFileSpec {
                name: "DB".into(),
                path: "database/creds/app".into(),
                file: file.clone(),
            }],
            refresh_interval: None,
            grace: Duration::from_secs(2),
        },
    );
    let states = files.write_all().await.unwrap();
    let _tasks = files.spawn_maintenance(states, p.cancel.clone());

    // Past the first token's max TTL (24 s) and into the second token's life.
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut users = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_secs(34) {
        let (user, password) = creds(&file);
        if !can_login(&pg, &user, &password).await {
            failures.push((started.elapsed(), user.clone()));
        }
        users.insert(user);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        p.metrics.get(Event::Login) >= 2,
        "the token reached its max TTL and was replaced"
    );
    assert!(users.len() >= 2, "the file was rewritten: {users:?}");
    assert!(
        failures.is_empty(),
        "logins with the file's credentials failed (revoked with the old token): {failures:?}"
    );
}
