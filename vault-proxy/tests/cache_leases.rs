//! Dynamic secrets read through the cache (issue 14 items 2 and 3): a cached
//! lease is renewed while its entry lives, so later callers get the same
//! credentials and they keep working; a lease read with an older token (Vault
//! revokes it with that token) is never served. Real OpenBao and PostgreSQL.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use testkit::{OpenBao, Postgres};
use vault_proxy::{Event, ProxyConfig};

/// OpenBao with the AppRole of `setup` (token `ttl` / `max_ttl`) and a
/// database role `app` whose leases last `lease_ttl` (max `lease_max`).
async fn peers(ttl: &str, max_ttl: &str, lease_ttl: &str, lease_max: &str) -> (OpenBao, Postgres) {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    setup(&bao, ttl, max_ttl).await;
    bao.enable_postgres_database(&pg, lease_ttl, lease_max)
        .await;
    (bao, pg)
}

fn caching() -> ProxyConfig {
    let mut config = ProxyConfig::default();
    config.cache.enabled_by_default = true;
    config
}

/// Reads `database/creds/app` through the proxy: (username, password, X-Cache).
async fn read_creds(p: &Running) -> (String, String, String) {
    let (status, headers, body) = get(&http(), &p.v1("database/creds/app"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let cache = headers
        .get("x-cache")
        .map(|h| h.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        v["data"]["username"].as_str().unwrap().to_owned(),
        v["data"]["password"].as_str().unwrap().to_owned(),
        cache,
    )
}

/// Waits (at most `within`) until `user` can no longer log in.
async fn until_refused(pg: &Postgres, user: &str, password: &str, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if !pg.can_login(user, password).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

#[tokio::test]
async fn cached_database_credentials_are_renewed_and_stay_the_same() {
    // Lease TTL 5 s (max 2 min); the token lives an hour.
    let (bao, pg) = peers("1h", "2h", "5s", "2m").await;
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(2)),
        caching(),
    )
    .await;
    let (user, password, first) = read_creds(&p).await;
    assert_eq!(first, "MISS");
    let (again, _, second) = read_creds(&p).await;
    assert_eq!((again.as_str(), second.as_str()), (user.as_str(), "HIT"));
    assert!(pg.can_login(&user, &password).await);

    // Three lease TTLs and more: the proxy renewed the lease meanwhile.
    tokio::time::sleep(Duration::from_secs(17)).await;
    let (later, later_password, cache) = read_creds(&p).await;
    assert_eq!(
        (later.as_str(), cache.as_str()),
        (user.as_str(), "HIT"),
        "the same credentials, from the cache"
    );
    assert_eq!(later_password, password);
    assert!(
        pg.can_login(&user, &password).await,
        "the credentials still log in after three lease TTLs"
    );
    assert!(p.metrics.get(Event::LeaseRenewal) >= 3, "renewed");
    assert_eq!(p.metrics.get(Event::Login), 1, "one token throughout");

    // VAULT_REVOKE_TOKEN_ON_SHUTDOWN: revoking the token revokes its leases.
    p.tokens.shutdown(Duration::from_secs(5)).await;
    assert!(
        until_refused(&pg, &user, &password, Duration::from_secs(20)).await,
        "the lease was revoked with the token on shutdown"
    );
}

#[tokio::test]
async fn a_cached_lease_from_an_older_token_is_not_served() {
    // Token TTL 4 s, max 12 s; lease TTL 30 s: the lease would outlive the
    // token that read it, and Vault revokes it when that token expires.
    let (bao, pg) = peers("4s", "12s", "30s", "10m").await;
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(1)),
        caching(),
    )
    .await;
    let (user, password, first) = read_creds(&p).await;
    assert_eq!(first, "MISS");
    let generation = p.tokens.current().unwrap().generation();

    // A "function" reads through the proxy and logs in with what it got,
    // twice a second, past the first token's max TTL (12 s) and into the
    // second token's life.
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut users = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_secs(18) {
        let (u, pw, cache) = read_creds(&p).await;
        if !pg.can_login(&u, &pw).await {
            failures.push((started.elapsed(), u.clone(), cache));
        }
        users.insert(u);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(p.tokens.current().unwrap().generation() > generation);
    assert!(
        until_refused(&pg, &user, &password, Duration::from_secs(20)).await,
        "the first lease died with the token that read it"
    );
    assert!(users.len() >= 2, "read again with the new token: {users:?}");
    assert!(
        failures.is_empty(),
        "the proxy served credentials revoked with the old token: {failures:?}"
    );
    assert!(p.metrics.get(Event::CacheEvictionToken) >= 1);
}
