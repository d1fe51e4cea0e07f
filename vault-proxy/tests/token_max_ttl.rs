//! Leased secrets outlive the token that read them: Vault revokes a lease
//! when its token expires, so when the proxy's token reaches its max TTL the
//! secret files are read again with the new token before the old one dies.
//! Real OpenBao and PostgreSQL; the "function" logs in with the file's
//! credentials throughout.
//!
//! By default the times are scaled down to keep `scripts/test` short (token
//! TTL 8 s, max 24 s, lease 12 s, 34 s of logins twice a second). With
//! `VAULT_AWS_FULL_PROOF=1` it runs issue 14's numbers: token TTL 20 s, max
//! 60 s, lease 30 s, a login every second for 150 s:
//! `VAULT_AWS_FULL_PROOF=1 cargo test -p vault-proxy --test token_max_ttl`.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use testkit::{OpenBao, Postgres};
use vault_proxy::{Event, FilesConfig, ProxyConfig, SecretFileSpec, SecretFiles};

/// Token TTL, token max TTL, database lease TTL, how long the function logs
/// in, and how often.
struct Times {
    ttl: &'static str,
    max_ttl: &'static str,
    lease_ttl: &'static str,
    run: Duration,
    every: Duration,
}

fn times() -> Times {
    if std::env::var("VAULT_AWS_FULL_PROOF").is_ok_and(|v| v == "1") {
        Times {
            ttl: "20s",
            max_ttl: "60s",
            lease_ttl: "30s",
            run: Duration::from_secs(150),
            every: Duration::from_secs(1),
        }
    } else {
        Times {
            ttl: "8s",
            max_ttl: "24s",
            lease_ttl: "12s",
            run: Duration::from_secs(34),
            every: Duration::from_millis(500),
        }
    }
}

#[tokio::test]
async fn database_credentials_survive_the_tokens_max_ttl() {
    let t = times();
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    // The database lease (max 10 min) would outlive the token that read it.
    setup(&bao, t.ttl, t.max_ttl).await;
    bao.enable_postgres_database(&pg, t.lease_ttl, "10m").await;

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

    // Past the first token's max TTL and into the second token's life.
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut users = std::collections::BTreeSet::new();
    let mut logins = 0;
    while started.elapsed() < t.run {
        let (user, password) = creds(&file);
        if !pg.can_login(&user, &password).await {
            failures.push((started.elapsed(), user.clone()));
        }
        users.insert(user);
        logins += 1;
        tokio::time::sleep(t.every).await;
    }
    println!(
        "{logins} PostgreSQL logins over {:?} (token ttl {}, max {}, lease {}): {} failed; {} tokens, {} distinct users",
        t.run,
        t.ttl,
        t.max_ttl,
        t.lease_ttl,
        failures.len(),
        p.metrics.get(Event::Login),
        users.len()
    );
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
