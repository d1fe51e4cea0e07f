//! Sources users have: KV version 1 mounts, and a Vault without
//! `detailed-metadata` (the per-secret metadata path, forced on OpenBao).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::proxy::Proxy;
use common::*;
use serde_json::json;
use testkit::{Moto, OpenBao};
use vault_replicate::{
    DeletionPolicy, Granularity, Naming, PlanPolicy, Replicator, SourceScope, VaultKvSource,
};

/// A KV v1 mount: no versions, so the digest of the value decides.
#[tokio::test]
async fn kv_version_1_mounts_replicate_on_value_changes() {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    bao.bao(&["secrets", "enable", "-path=kv1", "-version=1", "kv"])
        .await;
    let v = vault(&bao.addr(), bao.root_token());
    let sm = aws_sdk_secretsmanager::Client::new(&sdk(&moto.endpoint(), 3).await);
    let put = |path: &str, value: &str| {
        let (bao, path, value) = (&bao, path.to_owned(), value.to_owned());
        async move {
            bao.root_request("POST", &format!("kv1/{path}"), json!({"password": value}))
                .await;
        }
    };
    put("app/db", "p1").await;
    put("app/x/api", "t1").await;
    put("top", "s1").await;
    let source = Arc::new(
        VaultKvSource::builder(v.clone())
            .scope(SourceScope::new("kv1", ""))
            .build()
            .unwrap(),
    );
    let run = Replicator::new(
        source,
        sm_target(&sm, false),
        PlanPolicy {
            naming: Naming::new(None, "v1", Granularity::Secret, false).unwrap(),
            deletion: DeletionPolicy::None,
        },
        4,
    )
    .unwrap();

    let r = run.run(false).await;
    assert_eq!(r.count("create"), 3, "{}", r.table());
    assert_eq!(r.calls("vault.read_mount"), 1);
    assert_eq!(value(&sm, "v1/app/x/api").await, r#"{"password":"t1"}"#);
    let t = tags(&sm, "v1/app/db").await;
    assert_eq!(t["vault-version"], "0");
    assert!(t["vault-version-id"].starts_with("sha256:"), "{t:?}");

    // Nothing changed: every value is read (KV v1 has no metadata), nothing written.
    let r = run.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(r.count("unchanged"), 3, "{}", r.table());
    assert_eq!(r.calls("vault.read"), 3);
    assert_eq!(r.calls("secretsmanager.PutSecretValue"), 0);
    assert_eq!(
        r.calls("vault.read_mount"),
        0,
        "the mount's version is remembered"
    );

    put("app/db", "p2").await;
    let r = run.run(false).await;
    assert_eq!(
        (r.count("update"), r.count("unchanged")),
        (1, 2),
        "{}",
        r.table()
    );
    assert_eq!(value(&sm, "v1/app/db").await, r#"{"password":"p2"}"#);
    let r = run.run(false).await;
    assert_eq!(r.count("unchanged"), 3, "{}", r.table());
}

/// The per-secret metadata path (HashiCorp Vault has no
/// `detailed-metadata`), forced on OpenBao: same result, one metadata read
/// per secret, never more than the configured reads at once, and it sees
/// a secret deleted and written again.
#[tokio::test]
async fn forced_metadata_fallback_is_bounded_and_sees_recreated_secrets() {
    let SmPeers {
        bao,
        moto: _moto,
        v,
        sm,
    } = sm_peers().await;
    for i in 0..40 {
        write(&v, &format!("f{}/s{i}", i % 4), json!({"n": i})).await;
    }
    // A little latency so that reads overlap and the bound is what limits them.
    let proxy = Proxy::start(&bao.addr(), Duration::from_millis(20)).await;
    let through = vault(&proxy.url(), bao.root_token());
    let source = Arc::new(
        VaultKvSource::builder(through)
            .scope(SourceScope::new("secret", ""))
            .detailed_metadata(false)
            .metadata_concurrency(3)
            .list_concurrency(1)
            .build()
            .unwrap(),
    );
    let run = replicator(
        source,
        sm_target(&sm, false),
        Granularity::Secret,
        DeletionPolicy::None,
    );
    let r = run.run(true).await;
    assert_eq!(r.count("create"), 40, "{}", r.table());
    assert_eq!(r.calls("vault.read_metadata"), 40);
    assert_eq!(r.calls("vault.list"), 5);
    assert_eq!(r.calls("vault.read"), 0);
    let max = proxy.stats.max_in_flight.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&max),
        "at most 3 metadata reads at once, saw {max}"
    );

    let r = run.run(false).await;
    assert_eq!(r.count("create"), 40, "{}", r.table());
    let r = run.run(false).await;
    assert_eq!(r.count("unchanged"), 40, "{}", r.table());

    v.kv2("secret").delete_metadata("f1/s5").await.unwrap();
    write(&v, "f1/s5", json!({"n": "again"})).await;
    let r = run.run(false).await;
    assert_eq!(
        (r.count("update"), r.count("unchanged")),
        (1, 39),
        "{}",
        r.table()
    );
    assert_eq!(value(&sm, "vault/f1/s5").await, r#"{"n":"again"}"#);
}
