//! Near-real-time replication (`vault-aws replicate --watch`): the time from
//! a KV write in a local OpenBao to the new value readable in a local moto's
//! Secrets Manager, through the socket audit device and the watcher, at the
//! default 1 s coalescing window and at 100 ms. 100 sequential writes (each
//! to a distinct secret, a new one every 10th) per window; prints p50, p99
//! and max.
//!
//! ```sh
//! cargo bench -p vault-aws-benches --bench replicate_watch
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Benchmark helpers fail loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
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

async fn measure(window_ms: u64, sm: &aws_sdk_secretsmanager::Client) -> Latencies {
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
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = watcher.run(listener, async {
        let _ = stop_rx.await;
    });
    let measure = async {
        let mut lat = Latencies::new();
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
        }
        let _ = stop_tx.send(());
        lat
    };
    let ((), lat) = tokio::join!(run, measure);
    lat
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let moto = Moto::start().await;
    let sm = aws::secretsmanager_client(
        &aws::sdk_config(
            &aws::AwsSettings {
                region: Some("us-east-1".into()),
                endpoint_url: Some(moto.endpoint()),
                max_attempts: 2,
                initial_backoff: Some(Duration::from_millis(5)),
            },
            Some(Credentials::new(
                "AKIDTEST",
                "test-secret",
                None,
                None,
                "bench",
            )),
        )
        .await,
    );
    let mut table = Table::new(["window", "writes", "p50", "p99", "max"]);
    for window_ms in [1_000, 100] {
        let mut lat = measure(window_ms, &sm).await;
        let (p50, p99, max) = (lat.quantile(0.5), lat.quantile(0.99), lat.quantile(1.0));
        table.row([
            format!("{window_ms} ms"),
            lat.len().to_string(),
            fmt_duration(p50),
            fmt_duration(p99),
            fmt_duration(max),
        ]);
    }
    println!("write in OpenBao -> value readable in Secrets Manager (moto), via --watch");
    println!("{}", table.render());
}
