//! The S3 backup target against moto S3, and the SNS failure summary
//! published to moto SNS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

mod common;

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use serde_json::json;
use testkit::{Moto, OpenBao};
use vault_replicate::{
    Action, DeletionPolicy, Failure, Granularity, Notifier, Report, S3Target, SnsNotifier, aws,
};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn object(
    s3: &aws_sdk_s3::Client,
    key: &str,
) -> (String, aws_sdk_s3::operation::get_object::GetObjectOutput) {
    let mut o = s3
        .get_object()
        .bucket("backup")
        .key(key)
        .send()
        .await
        .unwrap();
    let body = std::mem::replace(&mut o.body, ByteStream::from_static(b""));
    let bytes = body.collect().await.unwrap().into_bytes();
    (String::from_utf8(bytes.to_vec()).unwrap(), o)
}

/// One object per secret with SSE-KMS and the version in its metadata; a
/// no-change run reads no value and no object; an update; an object that
/// is not ours is left alone; force deletion.
#[tokio::test]
async fn s3_backup_copy() {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    let v = vault(&bao.addr(), bao.root_token());
    let sdk = sdk(&moto.endpoint(), 3).await;
    let s3 = aws::s3_client(&sdk, true);
    s3.create_bucket().bucket("backup").send().await.unwrap();
    s3.put_object()
        .bucket("backup")
        .key("vault/clash")
        .body(ByteStream::from_static(b"theirs"))
        .send()
        .await
        .unwrap();
    write(&v, "db", json!({"password": "p1"})).await;
    write(&v, "nested/x/api", json!({"token": "t1"})).await;
    write(&v, "clash", json!({"k": "ours"})).await;

    let target = Arc::new(
        S3Target::new(
            s3.clone(),
            "backup",
            "vault",
            Some("alias/backup".into()),
            false,
            0,
        )
        .unwrap(),
    );
    let none = replicator(
        source(&v),
        target.clone(),
        Granularity::Secret,
        DeletionPolicy::None,
    );
    let r = none.run(false).await;
    assert_eq!(
        (r.count("create"), r.count("failed")),
        (2, 1),
        "{}",
        r.table()
    );
    assert!(
        r.failures[0].reason.contains("not managed"),
        "{}",
        r.failures[0].reason
    );
    assert_eq!(object(&s3, "vault/clash").await.0, "theirs");
    let (body, o) = object(&s3, "vault/nested/x/api").await;
    assert_eq!(body, r#"{"token":"t1"}"#);
    let meta = o.metadata().unwrap();
    assert_eq!(meta["vault-version"], "1");
    assert_eq!(meta["managed-by"], "vault-replicate");
    assert_eq!(meta["vault-path"], "nested/x/api");
    assert_eq!(
        o.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    assert_eq!(o.ssekms_key_id(), Some("alias/backup"));

    v.kv2("secret").delete_metadata("clash").await.unwrap();
    let r = none.run(false).await;
    assert!(r.is_success(), "{}", r.table());
    assert_eq!(r.count("unchanged"), 2);
    assert_eq!(r.calls("vault.read"), 0);
    assert_eq!(r.calls("s3.GetObject"), 1);
    assert_eq!(r.calls("s3.ListObjectsV2"), 1);
    assert_eq!(r.calls("s3.PutObject"), 0);

    write(&v, "db", json!({"password": "p2"})).await;
    let r = none.run(false).await;
    assert_eq!(r.count("update"), 1, "{}", r.table());
    let (body, o) = object(&s3, "vault/db").await;
    assert_eq!(body, r#"{"password":"p2"}"#);
    assert_eq!(o.metadata().unwrap()["vault-version"], "2");

    v.kv2("secret").delete_metadata("db").await.unwrap();
    let force = replicator(
        source(&v),
        target,
        Granularity::Secret,
        DeletionPolicy::Force,
    );
    let r = force.run(false).await;
    assert_eq!(r.count("delete"), 1, "{}", r.table());
    assert!(
        s3.head_object()
            .bucket("backup")
            .key("vault/db")
            .send()
            .await
            .is_err()
    );
    assert_eq!(object(&s3, "vault/clash").await.0, "theirs");
    let r = force.run(false).await;
    assert_eq!(
        (r.count("unchanged"), r.count("delete")),
        (1, 0),
        "{}",
        r.table()
    );
}

/// 5,000 failures with long reasons: the summary published to (moto) SNS
/// stays under 256 KiB and says how many were left out.
#[tokio::test]
async fn sns_summary_of_5000_failures_stays_under_the_limit() {
    let moto = Moto::start().await;
    let subscriber = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&subscriber)
        .await;
    let sdk = sdk(&moto.endpoint(), 3).await;
    let sns = aws::sns_client(&sdk);
    let topic = sns
        .create_topic()
        .name("replicate-failures")
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(subscriber.uri())
        .send()
        .await
        .unwrap();

    let mut report = Report {
        target: "secretsmanager".into(),
        ..Report::default()
    };
    for i in 0..5000 {
        report.failures.push(Failure {
            mount: "secret".into(),
            path: format!("teams/team-{}/service-{i}/{}", i % 40, "config".repeat(10)),
            action: Action::Update,
            reason: format!("secretsmanager PutSecretValue failed: {}", "x".repeat(200)),
            retryable: true,
        });
    }
    report.counts.insert("failed".into(), 5000);
    SnsNotifier::new(sns, &topic_arn)
        .notify(&report)
        .await
        .unwrap();

    let notifications: Vec<serde_json::Value> = subscriber
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|b| b["Type"] == "Notification")
        .collect();
    assert_eq!(notifications.len(), 1);
    let message = notifications[0]["Message"].as_str().unwrap();
    assert!(message.len() <= 262_144, "{} bytes", message.len());
    assert!(
        message.len() > 200_000,
        "the budget is used: {} bytes",
        message.len()
    );
    let shown = message
        .lines()
        .filter(|l| l.starts_with("- update"))
        .count();
    assert!(message.contains(&format!("... and {} more", 5000 - shown)));
    assert!(
        notifications[0]["Subject"]
            .as_str()
            .unwrap()
            .contains("5000 failed")
    );
}
