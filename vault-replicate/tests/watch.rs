//! `Watcher` against real peers: an OpenBao dev server whose socket audit
//! device streams to the watcher (plus a file audit device, as documented),
//! moto as Secrets Manager.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use vault_client::{ClientConfig, SecretString, VaultClient};
use vault_replicate::sm::kinds;
use vault_replicate::watch::{WatchConfig, Watcher};
use vault_replicate::{DeletionPolicy, Granularity, SourceScope, VaultKvSource};

/// A TCP forwarder to moto that can be switched off: while off it closes
/// every connection, new and open (a target that is down).
struct Switch {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Switch {
    async fn start(upstream: std::net::SocketAddr) -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (u, c) = (up.clone(), cut.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = c.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Switch {
            addr,
            up,
            cut,
            task,
        }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

async fn wait_for<F, Fut>(what: &str, bound: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn current(sm: &aws_sdk_secretsmanager::Client, name: &str) -> Option<String> {
    let r = sm.get_secret_value().secret_id(name).send().await.ok()?;
    r.secret_string().map(str::to_owned)
}

/// Server configuration: a socket audit device to `port` and, beside it, a
/// file device (as documented: Vault never depends on the watcher alone).
fn audit_config(port: u16, audit_file: &std::path::Path) -> String {
    format!(
        "audit \"socket\" \"watch\" {{\n  options {{\n    address = \"127.0.0.1:{port}\"\n    socket_type = \"tcp\"\n  }}\n}}\n\
         audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
        audit_file.display()
    )
}

fn watch_config(listen: &str, window: Duration, namespace: Option<&str>) -> WatchConfig {
    let window = window.as_millis().to_string();
    WatchConfig::from_lookup(|k| match k {
        "REPLICATE_WATCH_LISTEN" => Some(listen.into()),
        "REPLICATE_WATCH_WINDOW_MS" => Some(window.clone()),
        "VAULT_NAMESPACE" => namespace.map(str::to_owned),
        _ => None,
    })
    .unwrap()
}

/// A spawned watcher (its `run` is `Send + 'static`) and its stop switch.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn spawn(watcher: Watcher, listener: TcpListener) -> Running {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(watcher.run(listener, async {
            let _ = stop_rx.await;
        }));
        Running { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the watcher stops")
            .unwrap();
    }
}

/// Secrets Manager versions of `name` (moto keeps every version).
async fn versions(sm: &aws_sdk_secretsmanager::Client, name: &str) -> usize {
    sm.list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .map(|r| r.versions().len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_follows_the_socket_audit_device() {
    let moto = testkit::Moto::start().await;
    let moto_addr: std::net::SocketAddr = moto
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let switch = Switch::start(moto_addr).await;
    // Assertions go to moto directly; the watcher goes through the switch.
    let sm = aws_sdk_secretsmanager::Client::new(&common::sdk(&moto.endpoint(), 1).await);
    let sm_watch = aws_sdk_secretsmanager::Client::new(
        &common::sdk(&format!("http://{}", switch.addr), 2).await,
    );

    let window = Duration::from_millis(1_000);
    // The watcher listens first: OpenBao connects its socket device at start.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = listener.local_addr().unwrap().to_string();
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_file = audit_dir.path().join("audit.log");
    let bao = testkit::OpenBao::start_with_config(&audit_config(
        listener.local_addr().unwrap().port(),
        &audit_file,
    ))
    .await;
    let vault = common::vault(&bao.addr(), bao.root_token());
    let scopes = vec![SourceScope::new("secret", "app")];
    let source = Arc::new(
        VaultKvSource::builder(vault.clone())
            .scopes(scopes.clone())
            .build()
            .unwrap(),
    );
    let replicator = || {
        common::replicator(
            source.clone(),
            common::sm_target(&sm_watch, false),
            Granularity::Secret,
            DeletionPolicy::schedule(7).unwrap(),
        )
    };
    // The scheduled run, with the same settings: the reconcile.
    let reconcile = common::replicator(
        source.clone(),
        common::sm_target(&sm, false),
        Granularity::Secret,
        DeletionPolicy::schedule(7).unwrap(),
    );
    let watcher = Watcher::new(
        vec![replicator()],
        scopes.clone(),
        watch_config(&listen, window, None),
    );
    let metrics = watcher.metrics();
    let running = Running::spawn(watcher, listener);

    // 1. A write appears in Secrets Manager.
    common::write(&vault, "app/one", serde_json::json!({"v": "1"})).await;
    wait_for("app/one replicated", Duration::from_secs(15), || async {
        current(&sm, "vault/app/one").await.as_deref() == Some(r#"{"v":"1"}"#)
    })
    .await;
    // Lag is measured from the entry's own time: no fallback to receipt.
    assert_eq!(metrics.time_fallbacks.load(Ordering::Relaxed), 0);
    assert!(metrics.last_lag_ms.load(Ordering::Relaxed) < 15_000);
    // Outside the scopes: never replicated, never read.
    common::write(&vault, "other/x", serde_json::json!({"v": "1"})).await;

    // 2. A burst: 1,000 writes to 10 secrets (100 rounds, each round's 10
    // writes concurrent) give at most one Secrets Manager write per secret
    // per coalescing window, and the replicas end at the latest versions.
    let names: Vec<String> = (0..10).map(|i| format!("vault/app/burst/{i}")).collect();
    let calls_before = metrics.calls(kinds::PUT) + metrics.calls(kinds::CREATE);
    let burst_start = Instant::now();
    for round in 0..100 {
        let writes = (0..10).map(|i| {
            let vault = vault.clone();
            async move {
                common::write(
                    &vault,
                    &format!("app/burst/{i}"),
                    serde_json::json!({"round": round.to_string()}),
                )
                .await
            }
        });
        futures_util::future::join_all(writes).await;
    }
    let burst = burst_start.elapsed();
    for name in &names {
        wait_for(
            "the burst's last version replicated",
            Duration::from_secs(30),
            || async { current(&sm, name).await.as_deref() == Some(r#"{"round":"99"}"#) },
        )
        .await;
    }
    // Everything written ended within `span` of the burst's start: two
    // writes of one secret are at least a window apart, so at most
    // span / window + 1 writes per secret.
    let span = burst_start.elapsed();
    let per_secret_bound = (span.as_millis() / window.as_millis()) as usize + 1;
    let mut total = 0;
    for name in &names {
        let n = versions(&sm, name).await;
        assert!(
            (1..=per_secret_bound).contains(&n),
            "{name}: {n} Secrets Manager writes for 100 Vault writes in {span:?} \
             (at most {per_secret_bound} with a {window:?} window)"
        );
        total += n;
    }
    let calls = metrics.calls(kinds::PUT) + metrics.calls(kinds::CREATE) - calls_before;
    // The watcher's own count (it also counts a call that failed and was
    // made again, which adds no version) is under the same bound.
    assert!(
        (total..=per_secret_bound * 10).contains(&(calls as usize)),
        "{calls} write calls for {total} versions (bound {})",
        per_secret_bound * 10
    );
    eprintln!(
        "burst: 1000 Vault writes to 10 secrets in {burst:?}, replicated within {span:?} \
         -> {total} Secrets Manager versions, {calls} write calls (bound {})",
        per_secret_bound * 10
    );
    // The replica is Vault's current version.
    let latest = vault
        .kv2("secret")
        .read("app/burst/3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.metadata.version, 100);

    // 3. A delete follows the deletion policy (schedule: recoverable).
    let out = bao
        .bao(&["kv", "metadata", "delete", "secret/app/one"])
        .await;
    assert!(out.status.success(), "{out:?}");
    wait_for(
        "app/one scheduled for deletion",
        Duration::from_secs(15),
        || async {
            sm.describe_secret()
                .secret_id("vault/app/one")
                .send()
                .await
                .is_ok_and(|d| d.deleted_date().is_some())
        },
    )
    .await;

    // 4. The target is down for 10 s: nothing is lost once it is back.
    let outage = Instant::now();
    switch.set(false);
    common::write(&vault, "app/outage1", serde_json::json!({"v": "1"})).await;
    wait_for("a failure counted", Duration::from_secs(15), || async {
        metrics.failures_of("secretsmanager") > 0
    })
    .await;
    // A second secret written while the first is backing off.
    common::write(&vault, "app/outage2", serde_json::json!({"v": "2"})).await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    assert_eq!(current(&sm, "vault/app/outage1").await, None);
    assert_eq!(current(&sm, "vault/app/outage2").await, None);
    assert!(metrics.pending.load(Ordering::Relaxed) >= 1);
    switch.set(true);
    for (name, value) in [
        ("vault/app/outage1", r#"{"v":"1"}"#),
        ("vault/app/outage2", r#"{"v":"2"}"#),
    ] {
        wait_for(
            "replicated after the outage",
            Duration::from_secs(60),
            || async { current(&sm, name).await.as_deref() == Some(value) },
        )
        .await;
    }

    // Nothing outside the scopes, nothing dropped, no fallback time.
    let all = common::all_names(&sm).await;
    assert!(!all.iter().any(|n| n.contains("other")), "{all:?}");
    assert_eq!(metrics.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(metrics.time_fallbacks.load(Ordering::Relaxed), 0);
    // The file device got everything too.
    let audit = std::fs::read_to_string(&audit_file).unwrap();
    assert!(audit.contains("secret/data/app/outage1"));

    // 5. Kill the watcher, write, restart it: the restarted watcher follows
    // new writes only; the scheduled run (the reconcile) fixes the missed one.
    running.stop().await;
    common::write(&vault, "app/missed", serde_json::json!({"v": "1"})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listener = TcpListener::bind(&listen).await.unwrap();
    let watcher = Watcher::new(
        vec![replicator()],
        scopes.clone(),
        watch_config(&listen, window, None),
    );
    let running = Running::spawn(watcher, listener);
    // OpenBao reconnects its socket device at its next write (the first may
    // go to the closed connection): write until the restarted watcher has it.
    let mut n = 0;
    wait_for(
        "the restarted watcher replicates",
        Duration::from_secs(30),
        || {
            n += 1;
            let (vault, sm) = (vault.clone(), sm.clone());
            async move {
                if n % 20 == 1 {
                    common::write(&vault, "app/after", serde_json::json!({"n": n.to_string()}))
                        .await;
                }
                current(&sm, "vault/app/after").await.is_some()
            }
        },
    )
    .await;
    assert_eq!(current(&sm, "vault/app/missed").await, None);
    running.stop().await;
    common::write(&vault, "app/after", serde_json::json!({"n": "last"})).await;
    let report = reconcile.run(false).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        current(&sm, "vault/app/missed").await.as_deref(),
        Some(r#"{"v":"1"}"#)
    );
    assert_eq!(
        current(&sm, "vault/app/after").await.as_deref(),
        Some(r#"{"n":"last"}"#)
    );
    // Everything else the watcher did is what the reconcile would have done.
    assert_eq!(report.count("create"), 1, "{report:?}");
    assert_eq!(report.count("update"), 1, "{report:?}");
    assert_eq!(report.count("delete"), 0, "{report:?}");
}

/// A source in a namespace follows only that namespace's entries: OpenBao
/// writes request paths relative to the namespace, so `secret/data/app/x`
/// in the root and in `ns1` look alike but for `request.namespace`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_source_follows_only_its_namespace() {
    let moto = testkit::Moto::start().await;
    let sm = aws_sdk_secretsmanager::Client::new(&common::sdk(&moto.endpoint(), 2).await);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = listener.local_addr().unwrap().to_string();
    let audit_dir = tempfile::tempdir().unwrap();
    let bao = testkit::OpenBao::start_with_config(&audit_config(
        listener.local_addr().unwrap().port(),
        &audit_dir.path().join("audit.log"),
    ))
    .await;
    for args in [
        &["namespace", "create", "ns1"][..],
        &[
            "secrets",
            "enable",
            "-namespace=ns1",
            "-path=secret",
            "kv-v2",
        ][..],
    ] {
        let out = bao.bao(args).await;
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let root = common::vault(&bao.addr(), bao.root_token());
    let ns1 = VaultClient::new(
        ClientConfig::new(&bao.addr())
            .unwrap()
            .with_token(SecretString::from(bao.root_token().to_owned()))
            .with_namespace("ns1"),
    )
    .unwrap();
    let scopes = vec![SourceScope::new("secret", "app")];
    let source = Arc::new(
        VaultKvSource::builder(ns1.clone())
            .scopes(scopes.clone())
            .build()
            .unwrap(),
    );
    let replicator = common::replicator(
        source,
        common::sm_target(&sm, false),
        Granularity::Secret,
        DeletionPolicy::Force,
    );
    let watcher = Watcher::new(
        vec![replicator],
        scopes,
        watch_config(&listen, Duration::from_millis(200), Some("ns1/")),
    );
    let metrics = watcher.metrics();
    let running = Running::spawn(watcher, listener);

    // The same relative path in both namespaces, and one only in the root.
    common::write(&root, "app/x", serde_json::json!({"ns": "root"})).await;
    common::write(&root, "app/root-only", serde_json::json!({"ns": "root"})).await;
    common::write(&ns1, "app/x", serde_json::json!({"ns": "ns1"})).await;
    common::write(&root, "app/x", serde_json::json!({"ns": "root2"})).await;
    wait_for(
        "ns1's app/x replicated",
        Duration::from_secs(15),
        || async { current(&sm, "vault/app/x").await.as_deref() == Some(r#"{"ns":"ns1"}"#) },
    )
    .await;
    // A later ns1 write as a marker: everything before it has been read.
    common::write(&ns1, "app/marker", serde_json::json!({"ns": "ns1"})).await;
    wait_for("the marker replicated", Duration::from_secs(15), || async {
        current(&sm, "vault/app/marker").await.is_some()
    })
    .await;
    // Only ns1's two writes were queued; the root's three were not.
    assert_eq!(metrics.queued.load(Ordering::Relaxed), 2);
    assert!(metrics.received.load(Ordering::Relaxed) >= 5);
    let names = common::all_names(&sm).await;
    assert_eq!(names.len(), 2, "{names:?}");
    running.stop().await;
}

#[tokio::test]
async fn refuses_peers_not_on_the_allow_list() {
    let config = WatchConfig::from_lookup(|k| match k {
        "REPLICATE_WATCH_LISTEN" => Some("127.0.0.1:0".into()),
        "REPLICATE_WATCH_PEERS" => Some("192.0.2.1".into()),
        _ => None,
    })
    .unwrap();
    let watcher = Watcher::new(Vec::new(), vec![SourceScope::new("secret", "")], config);
    let metrics = watcher.metrics();
    let listener = watcher.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = watcher.run(listener, async {
        let _ = stop_rx.await;
    });
    let scenario = async {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let line = r#"{"type":"response","request":{"operation":"update","path":"secret/data/x","mount_point":"secret/","mount_type":"kv"}}"#;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = c.write_all(format!("{line}\n").as_bytes()).await;
        let mut buf = [0u8; 1];
        // Closed by the watcher.
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert_eq!(metrics.refused.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.received.load(Ordering::Relaxed), 0);
        let _ = stop_tx.send(());
    };
    tokio::join!(run, scenario);
}

fn target_entry(path: &str, version: u64) -> vault_replicate::TargetEntry {
    vault_replicate::TargetEntry {
        name: format!("vault/{path}"),
        id: format!("arn:{path}"),
        mount: "secret".into(),
        path: path.into(),
        key: None,
        version,
        version_id: Some(format!("t{version}")),
        key_count: 1,
        orphaned: false,
        pending_deletion: false,
    }
}

/// `run_paths` reads only the named secrets, lists the target by their
/// names, and never retires a neighbour that the name-prefix listing also
/// returned (`app/ab` for `app/a`); beyond the threshold it lists in full.
#[tokio::test]
async fn run_paths_touches_exactly_the_named_secrets() {
    use vault_replicate::{
        MockSource, MockTarget, PATHS_FULL_LIST_THRESHOLD, SourceEntry, SourceSnapshot,
        TargetSnapshot,
    };
    let mut source = MockSource::new();
    source.expect_snapshot().never();
    source.expect_snapshot_paths().returning(|paths, _| {
        Ok(SourceSnapshot {
            scopes: vec![SourceScope::new("secret", "")],
            entries: paths
                .iter()
                .filter(|(_, p)| p == "app/a")
                .map(|(m, p)| SourceEntry {
                    mount: m.clone(),
                    path: p.clone(),
                    version: 2,
                    version_id: "t2".into(),
                })
                .collect(),
            skipped_deleted: 0,
        })
    });
    source.expect_read().times(2).returning(|e, _| {
        assert_eq!((e.path.as_str(), e.version), ("app/a", 2));
        let map = serde_json::json!({"k": "v"});
        Ok(Some(vault_client::SecretMap::new(
            map.as_object().unwrap().clone(),
        )))
    });
    let mut target = MockTarget::new();
    target.expect_kind().return_const("secretsmanager");
    target.expect_snapshot().times(1).returning(|_| {
        Ok(TargetSnapshot {
            entries: vec![target_entry("app/a", 1), target_entry("app/ab", 1)],
        })
    });
    target
        .expect_snapshot_prefixes()
        .times(1)
        .returning(|prefixes, _| {
            assert_eq!(prefixes, ["vault/app/a"]);
            Ok(TargetSnapshot {
                entries: vec![target_entry("app/a", 1), target_entry("app/ab", 1)],
            })
        });
    target.expect_write().times(2).returning(|d, existing, _| {
        assert_eq!(d.name, "vault/app/a");
        assert!(existing.is_some());
        Ok(vault_replicate::WriteOutcome::Updated)
    });
    target.expect_retire().never();
    target.expect_finish().returning(|_| Ok(()));
    let r = common::replicator(
        Arc::new(source),
        Arc::new(target),
        Granularity::Secret,
        DeletionPolicy::Force,
    );
    let report = r.run_paths(&[("secret".into(), "app/a".into())]).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.count("update"), 1, "{report:?}");

    // Many paths: one full listing; still only the named secrets planned.
    let many: Vec<(String, String)> = std::iter::once(("secret".to_owned(), "app/a".to_owned()))
        .chain((0..PATHS_FULL_LIST_THRESHOLD).map(|i| ("secret".into(), format!("gone/{i}"))))
        .collect();
    let report = r.run_paths(&many).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.count("update"), 1, "{report:?}");
    assert_eq!(report.count("delete"), 0, "{report:?}");
}

/// A full queue never blocks the audit stream: every line is read, what does
/// not fit is dropped and counted (the reconcile covers it).
#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    use tokio::io::AsyncWriteExt;
    let config = WatchConfig::from_lookup(|k| match k {
        "REPLICATE_WATCH_LISTEN" => Some("127.0.0.1:0".into()),
        "REPLICATE_WATCH_QUEUE" => Some("1".into()),
        "REPLICATE_WATCH_WINDOW_MS" => Some("60000".into()),
        _ => None,
    })
    .unwrap();
    let watcher = Watcher::new(Vec::new(), vec![SourceScope::new("secret", "")], config);
    let metrics = watcher.metrics();
    let listener = watcher.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = watcher.run(listener, async {
        let _ = stop_rx.await;
    });
    let scenario = async {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut lines = String::new();
        for i in 0..50 {
            lines.push_str(&format!(
                "{{\"type\":\"response\",\"request\":{{\"operation\":\"update\",\"path\":\"secret/data/s{i}\",\"mount_point\":\"secret/\",\"mount_type\":\"kv\"}}}}\n"
            ));
        }
        tokio::time::timeout(Duration::from_secs(10), c.write_all(lines.as_bytes()))
            .await
            .expect("the listener must not block the writer")
            .unwrap();
        wait_for("every line read", Duration::from_secs(10), || async {
            metrics.received.load(Ordering::Relaxed) == 50
                && metrics.dropped.load(Ordering::Relaxed) == 49
        })
        .await;
        let _ = stop_tx.send(());
    };
    tokio::join!(run, scenario);
}

/// `Watcher::run` can be spawned: its future is `Send` and `'static`.
#[test]
fn watcher_run_is_send() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let config = WatchConfig::from_lookup(|_| None).unwrap();
    let watcher = Watcher::new(Vec::new(), vec![SourceScope::new("secret", "")], config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let _guard = rt.enter();
    let run = watcher.run(listener, std::future::pending::<()>());
    assert_send(&run);
}
