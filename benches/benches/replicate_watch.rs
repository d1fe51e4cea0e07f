//! Near-real-time replication (`vault-aws replicate --watch`): at the
//! default 1 s coalescing window and at 100 ms, 100 sequential KV writes in a
//! local OpenBao (over 10 secrets) through the socket audit device and the
//! watcher into a local moto's Secrets Manager. Two lags per write, p50, p99
//! and max:
//! - `entry -> written`: the watcher's own metric (`last_lag_ms`), from the
//!   audit entry's `time` to the replica written;
//! - `write -> readable`: from before the client's write to the new value
//!   read back from Secrets Manager (polled every 10 ms).
//!
//! ```sh
//! cargo bench -p vault-aws-benches --bench replicate_watch
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Benchmark helpers fail loudly.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{Moto, OpenBao};
use vault_aws_benches::{Latencies, Table, fmt_duration};
use vault_client::{ClientConfig, SecretString, VaultClient};
use vault_replicate::watch::{WatchConfig, Watcher};
use vault_replicate::{
    DeletionPolicy, Granularity, Naming, PlanPolicy, Replicator, SecretsManagerTarget, SourceScope,
    VaultKvSource, aws,
};

const WRITES: usize = 100;

async fn measure(window_ms: u64, sm: &aws_sdk_secretsmanager::Client) -> (Latencies, Latencies) {
    let config = WatchConfig::from_lookup(|k| match k {
        "REPLICATE_WATCH_LISTEN" => Some("127.0.0.1:0".into()),
        "REPLICATE_WATCH_WINDOW_MS" => Some(window_ms.to_string()),
        _ => None,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let bao = OpenBao::start_with_config(&format!(
        "audit \"socket\" \"watch\" {{\n  options {{\n    address = \"127.0.0.1:{port}\"\n    socket_type = \"tcp\"\n  }}\n}}\n\
         audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
        dir.path().join("audit.log").display()
    ))
    .await;
    let vault = VaultClient::new(
        ClientConfig::new(&bao.addr())
            .unwrap()
            .with_token(SecretString::from(bao.root_token().to_owned())),
    )
    .unwrap();
    let scope = SourceScope::new("secret", "");
    let source = Arc::new(
        VaultKvSource::builder(vault.clone())
            .scope(scope.clone())
            .build()
            .unwrap(),
    );
    let target = Arc::new(
        SecretsManagerTarget::builder(sm.clone())
            .write_tps(0)
            .read_tps(0)
            .build()
            .unwrap(),
    );
    let prefix = format!("w{window_ms}");
    let policy = PlanPolicy {
        naming: Naming::new(None, &prefix, Granularity::Secret, false).unwrap(),
        deletion: DeletionPolicy::None,
    };
    let replicator = Replicator::new(source, target, policy, 16).unwrap();
    let watcher = Watcher::new(vec![replicator], vec![scope], config);
    let metrics = watcher.metrics();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = watcher.run(listener, async {
        let _ = stop_rx.await;
    });
    let measure = async {
        let mut lat = Latencies::new();
        let mut entry_lag = Latencies::new();
        for i in 0..WRITES {
            let path = format!("bench/secret-{}", i % 10);
            let value = format!("v{i}");
            let data = json!({ "value": value });
            let expected = serde_json::to_string(&data).unwrap();
            let start = Instant::now();
            vault
                .kv2("secret")
                .write(&path, data.as_object().unwrap(), None)
                .await
                .unwrap();
            loop {
                let got = sm
                    .get_secret_value()
                    .secret_id(format!("{prefix}/{path}"))
                    .send()
                    .await;
                if got.is_ok_and(|g| g.secret_string() == Some(expected.as_str())) {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "write {i} not replicated"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            lat.push(start.elapsed());
            // The watcher counts the path replicated once every target is
            // written (just after the value became readable).
            while metrics.replicated.load(Ordering::Relaxed) < i as u64 + 1 {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "write {i} not counted"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            entry_lag.push(Duration::from_millis(
                metrics.last_lag_ms.load(Ordering::Relaxed),
            ));
        }
        assert_eq!(metrics.time_fallbacks.load(Ordering::Relaxed), 0);
        let _ = stop_tx.send(());
        (entry_lag, lat)
    };
    let ((), lats) = tokio::join!(run, measure);
    lats
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let moto = Moto::start().await;
    let sm = aws::secretsmanager_client(
        &vault_replicate::aws::test_sdk_config(&moto.endpoint(), 2).await,
    );
    let mut table = Table::new(["window", "lag", "writes", "p50", "p99", "max"]);
    for window_ms in [1_000, 100] {
        let (entry_lag, readable) = measure(window_ms, &sm).await;
        for (what, mut lat) in [
            ("entry -> written", entry_lag),
            ("write -> readable", readable),
        ] {
            let (p50, p99, max) = (lat.quantile(0.5), lat.quantile(0.99), lat.quantile(1.0));
            table.row([
                format!("{window_ms} ms"),
                what.to_owned(),
                lat.len().to_string(),
                fmt_duration(p50),
                fmt_duration(p99),
                fmt_duration(max),
            ]);
        }
    }
    println!("KV write in OpenBao -> Secrets Manager (moto), via --watch");
    println!("{}", table.render());
}
