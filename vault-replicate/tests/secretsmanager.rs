//! Replication into Secrets Manager against a real OpenBao and moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use futures_util::StreamExt;
use serde_json::json;
use testkit::{Moto, OpenBao};
use vault_replicate::{
    ApiCalls, DeletionPolicy, Desired, Granularity, Target, TargetEntry, TargetSnapshot,
    WriteOutcome,
};

/// Creates, no-change, update, a crash between PutSecretValue and
/// TagResource, an unmanaged name collision, dry run, paging past 100, and
/// deletion under each policy, on one tree of nested folders.
#[tokio::test]
async fn secrets_manager_lifecycle_on_nested_folders() {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    let v = vault(&bao.addr(), bao.root_token());
    let sdk = sdk(&moto.endpoint(), 3).await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);

    // 110 secrets in app/0..4, plus top-level and deep ones: 112 ours.
    for i in 0..110 {
        write(
            &v,
            &format!("app/{}/svc-{i}", i % 5),
            json!({"user": format!("u{i}"), "n": i}),
        )
        .await;
    }
    write(&v, "top", json!({"password": "p1"})).await;
    write(&v, "deep/a/b/c/leaf", json!({"k": "leaf-1"})).await;
    // A Vault secret whose name an unmanaged AWS secret already holds.
    write(&v, "clash", json!({"k": "ours"})).await;
    sm.create_secret()
        .name("vault/clash")
        .secret_string("theirs")
        .send()
        .await
        .unwrap();
    // folders: root, app, app/0..4, deep, deep/a, deep/a/b, deep/a/b/c
    let folders = 11;

    let src = source(&v);
    let target = sm_target(&sm, false);
    let none = replicator(
        src.clone(),
        target.clone(),
        Granularity::Secret,
        DeletionPolicy::None,
    );

    // Dry run: the plan, nothing written.
    let dry = none.run(true).await;
    assert!(dry.dry_run && dry.error.is_none(), "{}", dry.table());
    assert_eq!(dry.count("create"), 113);
    assert_eq!(dry.planned.len(), 113);
    assert!(
        dry.planned
            .iter()
            .any(|p| p.names == vec!["vault/deep/a/b/c/leaf".to_owned()])
    );
    assert_eq!(dry.calls("vault.read"), 0);
    assert_eq!(all_names(&sm).await, vec!["vault/clash".to_owned()]);

    // First run: everything created but the collision, which is left alone.
    let r = none.run(false).await;
    assert_eq!(r.count("create"), 112, "{}", r.table());
    assert_eq!(r.count("failed"), 1);
    assert_eq!(r.failures[0].path, "clash");
    assert!(
        r.failures[0]
            .reason
            .contains("not managed by vault-replicate"),
        "{}",
        r.failures[0].reason
    );
    assert_eq!(value(&sm, "vault/clash").await, "theirs");
    assert!(!tags(&sm, "vault/clash").await.contains_key("managed-by"));
    assert_eq!(r.calls("vault.list"), folders);
    assert_eq!(r.calls("vault.read"), 113);
    assert_eq!(r.calls("secretsmanager.CreateSecret"), 113);
    assert_eq!(r.calls("secretsmanager.DescribeSecret"), 1);
    let leaf: serde_json::Value =
        serde_json::from_str(&value(&sm, "vault/deep/a/b/c/leaf").await).unwrap();
    assert_eq!(leaf, json!({"k": "leaf-1"}));
    let t = tags(&sm, "vault/app/3/svc-8").await;
    assert_eq!(t["managed-by"], "vault-replicate");
    assert_eq!(t["vault-mount"], "secret");
    assert_eq!(t["vault-path"], "app/3/svc-8");
    assert_eq!(t["vault-version"], "1");
    assert_eq!(t["vault-state"], "active");
    assert_eq!(all_names(&sm).await.len(), 113);

    // Nothing changed; the collision is gone from Vault: no value read, one
    // LIST per folder, one ListSecrets per 100 secrets.
    v.kv2("secret").delete_metadata("clash").await.unwrap();
    let r = none.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(r.count("unchanged"), 112);
    assert_eq!(r.calls("vault.read"), 0);
    assert_eq!(r.calls("vault.list"), folders);
    assert_eq!(r.calls("secretsmanager.ListSecrets"), 2);
    assert_eq!(value(&sm, "vault/clash").await, "theirs");

    // Update: the version tag always matches the value written.
    let v2 = write(&v, "top", json!({"password": "p2"})).await;
    // A crashed run wrote svc-0's new value but not its tag.
    write(&v, "app/0/svc-0", json!({"user": "u0-new"})).await;
    sm.put_secret_value()
        .secret_id("vault/app/0/svc-0")
        .secret_string(r#"{"user":"u0-new"}"#)
        .send()
        .await
        .unwrap();
    let r = none.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(r.count("update"), 2);
    assert_eq!(r.count("unchanged"), 110);
    assert_eq!(r.calls("vault.read"), 2);
    assert_eq!(value(&sm, "vault/top").await, r#"{"password":"p2"}"#);
    assert_eq!(
        tags(&sm, "vault/top").await["vault-version"],
        v2.to_string()
    );
    assert_eq!(tags(&sm, "vault/app/0/svc-0").await["vault-version"], "2");
    assert_eq!(
        value(&sm, "vault/app/0/svc-0").await,
        r#"{"user":"u0-new"}"#
    );

    // The current version of leaf is soft-deleted: gone from Vault.
    v.kv2("secret")
        .delete_latest("deep/a/b/c/leaf")
        .await
        .unwrap();
    // Policy none: tagged orphaned once, never deleted.
    let r = none.run(false).await;
    assert_eq!(r.count("orphan"), 1, "{}", r.table());
    assert_eq!(r.skipped_deleted, 1);
    assert_eq!(
        tags(&sm, "vault/deep/a/b/c/leaf").await["vault-state"],
        "orphaned"
    );
    let r = none.run(false).await;
    assert_eq!(
        (r.count("orphan"), r.count("unchanged")),
        (0, 112),
        "{}",
        r.table()
    );

    // Policy schedule: deleted with a recovery window, once.
    let schedule = replicator(
        src.clone(),
        target.clone(),
        Granularity::Secret,
        DeletionPolicy::schedule(7).unwrap(),
    );
    let r = schedule.run(false).await;
    assert_eq!(r.count("delete"), 1, "{}", r.table());
    let d = sm
        .describe_secret()
        .secret_id("vault/deep/a/b/c/leaf")
        .send()
        .await
        .unwrap();
    assert!(d.deleted_date().is_some());
    let r = schedule.run(false).await;
    assert_eq!(
        (r.count("delete"), r.count("unchanged")),
        (0, 112),
        "{}",
        r.table()
    );

    // Back in Vault: restored, then updated.
    let leaf_v = write(&v, "deep/a/b/c/leaf", json!({"k": "leaf-2"})).await;
    let r = schedule.run(false).await;
    assert_eq!(r.count("update"), 1, "{}", r.table());
    assert_eq!(r.calls("secretsmanager.RestoreSecret"), 1);
    let d = sm
        .describe_secret()
        .secret_id("vault/deep/a/b/c/leaf")
        .send()
        .await
        .unwrap();
    assert!(d.deleted_date().is_none());
    assert_eq!(
        value(&sm, "vault/deep/a/b/c/leaf").await,
        r#"{"k":"leaf-2"}"#
    );
    assert_eq!(
        tags(&sm, "vault/deep/a/b/c/leaf").await["vault-version"],
        leaf_v.to_string()
    );

    // Policy force: deleted at once; the unmanaged secret is still untouched.
    v.kv2("secret").delete_metadata("top").await.unwrap();
    let force = replicator(
        src.clone(),
        target.clone(),
        Granularity::Secret,
        DeletionPolicy::Force,
    );
    let r = force.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(r.count("delete"), 1);
    assert!(
        sm.describe_secret()
            .secret_id("vault/top")
            .send()
            .await
            .is_err()
    );
    assert_eq!(value(&sm, "vault/clash").await, "theirs");

    // And a last run changes nothing.
    let r = force.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(r.count("unchanged"), 111);
    assert_eq!(r.calls("vault.read"), 0);
}

/// Delegates to a real target but hangs after `limit` writes, like a run
/// killed mid-way (the test drops it).
struct Interrupted {
    inner: Arc<dyn Target>,
    writes: AtomicUsize,
    limit: usize,
}

#[async_trait]
impl Target for Interrupted {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn snapshot(&self, calls: &ApiCalls) -> vault_replicate::Result<TargetSnapshot> {
        self.inner.snapshot(calls).await
    }
    async fn write(
        &self,
        desired: &Desired,
        existing: Option<TargetEntry>,
        calls: &ApiCalls,
    ) -> vault_replicate::Result<WriteOutcome> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.limit {
            std::future::pending::<()>().await;
        }
        self.inner.write(desired, existing, calls).await
    }
    async fn retire(
        &self,
        entry: &TargetEntry,
        policy: DeletionPolicy,
        calls: &ApiCalls,
    ) -> vault_replicate::Result<()> {
        self.inner.retire(entry, policy, calls).await
    }
    async fn finish(&self, calls: &ApiCalls) -> vault_replicate::Result<()> {
        self.inner.finish(calls).await
    }
}

/// Key granularity (one AWS secret per key), a run interrupted mid-way
/// that the next run completes, and a key removed from Vault.
#[tokio::test]
async fn key_granularity_and_an_interrupted_run_converge() {
    let SmPeers {
        bao: _bao,
        moto: _moto,
        v,
        sm,
    } = sm_peers().await;

    write(
        &v,
        "svc/a",
        json!({"user": "admin", "password": "pw", "port": 5432}),
    )
    .await;
    for i in 0..20 {
        write(
            &v,
            &format!("bulk/{i}"),
            json!({"k": format!("v{i}"), "j": format!("w{i}")}),
        )
        .await;
    }
    let expected = 3 + 20 * 2;
    let real = sm_target(&sm, false);
    let src = source(&v);

    let interrupted = replicator(
        src.clone(),
        Arc::new(Interrupted {
            inner: real.clone(),
            writes: AtomicUsize::new(0),
            limit: 15,
        }),
        Granularity::Key,
        DeletionPolicy::None,
    );
    let crashed = tokio::time::timeout(Duration::from_secs(3), interrupted.run(false)).await;
    assert!(crashed.is_err(), "the run should have been interrupted");
    let partial = all_names(&sm).await.len();
    assert!(partial > 0 && partial < expected, "{partial}");

    let run = replicator(
        src.clone(),
        real.clone(),
        Granularity::Key,
        DeletionPolicy::None,
    );
    let r = run.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    // What the interrupted run completed is unchanged; the rest is written.
    assert!(r.count("unchanged") > 0, "{}", r.table());
    assert_eq!(
        r.count("create") + r.count("update") + r.count("unchanged"),
        21,
        "{}",
        r.table()
    );
    assert_eq!(all_names(&sm).await.len(), expected);
    assert_eq!(value(&sm, "vault/svc/a/port").await, "5432");
    assert_eq!(value(&sm, "vault/svc/a/user").await, "admin");
    assert_eq!(value(&sm, "vault/bulk/7/j").await, "w7");
    let t = tags(&sm, "vault/svc/a/password").await;
    assert_eq!(
        (t["vault-key"].as_str(), t["vault-key-count"].as_str()),
        ("password", "3")
    );

    let r = run.run(false).await;
    assert_eq!(r.count("unchanged"), 21, "{}", r.table());
    assert_eq!(r.calls("vault.read"), 0);

    // A key removed from Vault: its AWS secret is tagged orphaned, the
    // others move to the new version, and the next run is quiet.
    write(&v, "svc/a", json!({"user": "admin2", "port": 5432})).await;
    let r = run.run(false).await;
    assert_eq!(r.count("update"), 1, "{}", r.table());
    assert_eq!(value(&sm, "vault/svc/a/user").await, "admin2");
    assert_eq!(tags(&sm, "vault/svc/a/user").await["vault-version"], "2");
    assert_eq!(
        tags(&sm, "vault/svc/a/password").await["vault-state"],
        "orphaned"
    );
    assert_eq!(value(&sm, "vault/svc/a/password").await, "pw");
    let r = run.run(false).await;
    assert_eq!(r.count("unchanged"), 21, "{}", r.table());

    // With force, the orphaned key is deleted on the next change.
    write(&v, "svc/a", json!({"user": "admin3", "port": 5432})).await;
    let force = replicator(src, real, Granularity::Key, DeletionPolicy::Force);
    let r = force.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert!(
        sm.describe_secret()
            .secret_id("vault/svc/a/password")
            .send()
            .await
            .is_err()
    );
    assert_eq!(all_names(&sm).await.len(), expected - 1);
}

/// A secret deleted completely in Vault and written again restarts at
/// version 1: the replica must get the new value, not stay "unchanged".
/// A replica written before `vault-version-id` existed is written once.
#[tokio::test]
async fn a_secret_deleted_and_written_again_gets_its_new_value() {
    let SmPeers {
        bao: _bao,
        moto: _moto,
        v,
        sm,
    } = sm_peers().await;
    let run = replicator(
        source(&v),
        sm_target(&sm, false),
        Granularity::Secret,
        DeletionPolicy::None,
    );

    assert_eq!(write(&v, "db", json!({"password": "old"})).await, 1);
    write(&v, "other", json!({"k": "v"})).await;
    let r = run.run(false).await;
    assert_eq!(r.count("create"), 2, "{}", r.table());
    let first_id = tags(&sm, "vault/db").await.get("vault-version-id").cloned();

    v.kv2("secret").delete_metadata("db").await.unwrap();
    assert_eq!(write(&v, "db", json!({"password": "new"})).await, 1);
    let r = run.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(
        (r.count("update"), r.count("unchanged")),
        (1, 1),
        "{}",
        r.table()
    );
    assert_eq!(value(&sm, "vault/db").await, r#"{"password":"new"}"#);
    let t = tags(&sm, "vault/db").await;
    assert_eq!(t["vault-version"], "1");
    assert!(
        t["vault-version-id"].ends_with('Z'),
        "a created_time: {t:?}"
    );
    assert_ne!(Some(&t["vault-version-id"]), first_id.as_ref());
    let r = run.run(false).await;
    assert_eq!(r.count("unchanged"), 2, "{}", r.table());

    // A replica written by an older release (no vault-version-id tag).
    sm.untag_resource()
        .secret_id("vault/other")
        .tag_keys("vault-version-id")
        .send()
        .await
        .unwrap();
    let r = run.run(false).await;
    assert_eq!(
        (r.count("update"), r.count("unchanged")),
        (1, 1),
        "{}",
        r.table()
    );
    assert!(
        tags(&sm, "vault/other")
            .await
            .contains_key("vault-version-id")
    );
    let r = run.run(false).await;
    assert_eq!(r.count("unchanged"), 2, "{}", r.table());
}

/// Values over 65,536 bytes and names Secrets Manager refuses fail with a
/// clear reason before any AWS call; the other secrets are replicated.
#[tokio::test]
async fn oversized_values_and_refused_names_fail_alone_before_any_aws_call() {
    let SmPeers {
        bao: _bao,
        moto: _moto,
        v,
        sm,
    } = sm_peers().await;
    let run = replicator(
        source(&v),
        sm_target(&sm, false),
        Granularity::Secret,
        DeletionPolicy::None,
    );
    write(&v, "big", json!({"blob": "x".repeat(70_000)})).await;
    // Exactly at the limit: {"blob":"..."} is 11 bytes of JSON around the value.
    write(&v, "edge", json!({"blob": "y".repeat(65_536 - 11)})).await;
    write(&v, "with space", json!({"k": "v"})).await;
    write(&v, "db-a1b2c3", json!({"k": "v"})).await;
    write(&v, "fine", json!({"k": "v"})).await;

    let r = run.run(false).await;
    assert_eq!(
        (r.count("create"), r.count("failed")),
        (2, 3),
        "{}",
        r.table()
    );
    assert_eq!(r.calls("secretsmanager.CreateSecret"), 2, "{}", r.table());
    let reason = |p: &str| {
        r.failures
            .iter()
            .find(|f| f.path == p)
            .map(|f| f.reason.clone())
            .unwrap_or_else(|| panic!("{p} did not fail: {}", r.table()))
    };
    let big = reason("big");
    assert!(
        big.contains("70011 bytes") && big.contains("65536"),
        "{big}"
    );
    assert!(
        reason("with space").contains("' ' is not allowed"),
        "{}",
        r.table()
    );
    assert!(
        reason("db-a1b2c3").contains("six characters"),
        "{}",
        r.table()
    );
    assert!(r.failures.iter().all(|f| !f.retryable));
    assert_eq!(
        all_names(&sm).await,
        vec!["vault/edge".to_owned(), "vault/fine".to_owned()]
    );
    assert_eq!(value(&sm, "vault/edge").await.len(), 65_536);
}

/// Over 1,000 secrets, a warm replicator lists Secrets Manager by name
/// partitions, concurrently: same plan, drift inside the partitions (a
/// replica deleted by hand) is caught; what only a full listing sees (a
/// folder gone from Vault) is retired by the next full listing.
#[tokio::test]
async fn partitioned_listing_between_full_listings() {
    let SmPeers {
        bao: _bao,
        moto: _moto,
        v,
        sm,
    } = sm_peers().await;
    let n = 1_050;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let v = v.clone();
            async move { write(&v, &format!("team-{}/s{i}", i % 7), json!({"i": i})).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    write(&v, "gone/x", json!({"k": "v"})).await;
    let warm = || {
        replicator(
            source(&v),
            sm_target(&sm, false),
            Granularity::Secret,
            DeletionPolicy::None,
        )
        .with_partitioned_listing(Duration::from_secs(3600))
    };
    let run = warm();
    let r = run.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(
        (r.count("create"), r.list_partitions),
        (n + 1, 0),
        "the first run lists everything"
    );

    v.kv2("secret").delete_metadata("gone/x").await.unwrap();
    write(&v, "team-3/s3", json!({"i": "changed"})).await;
    sm.delete_secret()
        .secret_id("vault/team-5/s5")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let r = run.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert!(r.list_partitions >= 7, "{}", r.list_partitions);
    assert!(r.calls("secretsmanager.ListSecrets") >= r.list_partitions);
    assert_eq!(
        (
            r.count("update"),
            r.count("create"),
            r.count("unchanged"),
            r.count("orphan")
        ),
        (1, 1, n - 2, 0),
        "{}",
        r.table()
    );
    assert_eq!(value(&sm, "vault/team-3/s3").await, r#"{"i":"changed"}"#);
    assert_eq!(value(&sm, "vault/team-5/s5").await, r#"{"i":5}"#);

    // That run wrote: the next one lists (by partitions) and changes nothing,
    // so the one after plans from the remembered listing: no ListSecrets.
    let r = run.run(false).await;
    assert!(r.is_success() && !r.reused_listing, "{}", r.table());
    assert!(r.list_partitions >= 7, "{}", r.table());
    let r = run.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert!(r.reused_listing, "{}", r.table());
    assert_eq!(r.calls("secretsmanager.ListSecrets"), 0, "{}", r.table());
    assert_eq!(r.count("unchanged"), n, "{}", r.table());
    // A change in Vault is still replicated from the remembered listing ...
    write(&v, "team-1/s1", json!({"i": "changed too"})).await;
    let r = run.run(false).await;
    assert!(r.is_success() && r.reused_listing, "{}", r.table());
    assert_eq!(r.count("update"), 1, "{}", r.table());
    assert_eq!(
        value(&sm, "vault/team-1/s1").await,
        r#"{"i":"changed too"}"#
    );
    // ... and, having written, the run after lists the target again.
    let r = run.run(false).await;
    assert!(r.is_success() && !r.reused_listing, "{}", r.table());
    assert!(r.calls("secretsmanager.ListSecrets") >= 7, "{}", r.table());
    // Drift made by hand is not seen from a remembered listing; the next
    // full listing repairs it.
    let r = run.run(false).await;
    assert!(r.reused_listing, "{}", r.table());
    sm.delete_secret()
        .secret_id("vault/team-2/s2")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let r = run.run(false).await;
    assert!(r.reused_listing && r.count("create") == 0, "{}", r.table());
    let full = warm();
    // A full listing (a new replicator's first run) also retires what is
    // gone from Vault, which no partition covered.
    let r = full.run(false).await;
    assert_eq!(
        (r.count("create"), r.count("orphan"), r.list_partitions),
        (1, 1, 0),
        "{}",
        r.table()
    );
    assert_eq!(value(&sm, "vault/team-2/s2").await, r#"{"i":2}"#);
    assert_eq!(tags(&sm, "vault/gone/x").await["vault-state"], "orphaned");
}
