//! The scheduled rotation under the AWS Lambda Runtime Interface Emulator,
//! against a real OpenBao and moto S3: with a secret_id TTL of 20 s and a
//! scheduled event every 5 s, consumers logging in from the store for two
//! minutes (six TTLs) never fail, and a role never has more than two live
//! secret_ids.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{AppRolePeers, Rie, RieConfig};
use vault_approle::{AppRoleAuth, S3Access, S3CredentialStore};
use vault_client::{ClientConfig, SecretString, VaultAuth, VaultClient};

const BUCKET: &str = "cfn-creds";
const RUN: Duration = Duration::from_secs(120);

/// Seconds since the epoch of OpenBao's `2026-12-01T04:30:20.123Z` (UTC).
fn epoch(time: &str) -> i64 {
    let n = |a: usize, b: usize| -> i64 { time[a..b].parse().unwrap() };
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    assert!(
        time[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit()) == "Z",
        "not UTC: {time}"
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Secret_ids of `role` that can still log in (listed and not expired).
async fn live_accessors(root: &VaultClient, role: &str) -> usize {
    let approle = root.approle("approle");
    let mut live = 0;
    for accessor in approle.list_secret_id_accessors(role).await.unwrap() {
        if let Some(info) = approle
            .lookup_secret_id_accessor(role, &accessor)
            .await
            .unwrap()
            && epoch(&info.expiration_time) > now()
        {
            live += 1;
        }
    }
    live
}

#[tokio::test]
async fn scheduled_rotation_keeps_every_login_working_for_six_ttls() {
    let AppRolePeers { bao, moto, s3 } = AppRolePeers::start(
        BUCKET,
        "shop-dev",
        r#"path "secret/*" { capabilities = ["read"] }"#,
    )
    .await;
    let cfn = testkit::cfn::response_listener().await;
    let env: Vec<(String, String)> = [
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_TOKEN", bao.root_token().to_owned()),
        ("AWS_ENDPOINT_URL_S3", moto.endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIATEST".into()),
        ("AWS_SECRET_ACCESS_KEY", "secret".into()),
        ("VAULT_APPROLE_S3_BUCKET", BUCKET.into()),
        ("VAULT_APPROLE_RESPONSE_URL_HOSTS", "127.0.0.1".into()),
        ("VAULT_APPROLE_ROTATION_GRACE", "2s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let rie = Rie::start(RieConfig {
        bootstrap: PathBuf::from(env!("CARGO_BIN_EXE_bootstrap")),
        env,
        ..RieConfig::default()
    })
    .await;
    let props = json!({"ServiceToken": "arn", "Service": "shop", "Environment": "dev",
        "Iam": "ShopTask", "SecretIdTtl": "20"});
    let create = testkit::cfn::event("Create", 1, &cfn.uri(), None, props);
    let (status, out) = rie.invoke(&create).await;
    assert_eq!(status, 200, "{out}\n{}", rie.logs());
    assert!(out.contains("SUCCESS"), "{out}\n{}", rie.logs());

    let root = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap())
        .unwrap()
        .with_token(SecretString::from(bao.root_token()));
    let store = Arc::new(
        S3CredentialStore::builder(BUCKET)
            .access(S3Access::from_client(s3.clone()))
            .build()
            .unwrap(),
    );
    let consumer = AppRoleAuth::from_store("approle", store, "shoptask");
    let client = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap()).unwrap();
    let started = Instant::now();

    let schedule = async {
        let event = json!({
            "version": "0", "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-12-01T00:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/vault-approle-rotation"],
            "detail": {},
        });
        let mut rotated = 0;
        let mut runs = 0;
        while started.elapsed() < RUN {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let (status, out) = rie.invoke(&event).await;
            assert_eq!(status, 200, "{out}\n{}", rie.logs());
            let summary: Value = serde_json::from_str(&out).unwrap();
            assert!(
                summary["failed"].as_array().is_some_and(Vec::is_empty),
                "{summary}\n{}",
                rie.logs()
            );
            rotated += summary["rotated"].as_array().unwrap().len();
            runs += 1;
        }
        (runs, rotated)
    };
    let logins = async {
        let (mut ok, mut failed, mut most_live) = (0, Vec::new(), 0);
        while started.elapsed() < RUN {
            match consumer.login(&client).await {
                Ok(_) => ok += 1,
                Err(e) => failed.push(format!(
                    "{:.1}s: {}",
                    started.elapsed().as_secs_f64(),
                    vault_client::error_chain(&e)
                )),
            }
            most_live = most_live.max(live_accessors(&root, "shoptask").await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (ok, failed, most_live)
    };
    let ((runs, rotated), (ok, failed, most_live)) = tokio::join!(schedule, logins);
    let logs = rie.shutdown().await;
    println!(
        "{runs} scheduled runs, {rotated} rotations, {ok} logins, {} failed, at most {most_live} live secret_ids",
        failed.len()
    );
    assert!(failed.is_empty(), "failed logins: {failed:#?}\n{logs}");
    assert!(ok > 100, "{ok} logins");
    assert!(
        rotated >= 5,
        "{rotated} rotations in {runs} runs (a 20 s TTL over 120 s)\n{logs}"
    );
    assert!(
        most_live <= 2,
        "{most_live} live secret_ids at once\n{logs}"
    );
    assert!(logs.contains("scheduled rotation"), "{logs}");
}
