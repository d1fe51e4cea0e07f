//! Faults a real server cannot be made to show: throttling and 5xx from
//! Secrets Manager (a wiremock server speaking its JSON protocol), and a
//! Vault without OpenBao's `detailed-metadata` endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use vault_client::SecretMap;
use vault_replicate::{
    ApiCalls, DeletionPolicy, Granularity, MockSource, Source, SourceEntry, SourceScope,
    SourceSnapshot, VaultKvSource,
};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const JSON_11: &str = "application/x-amz-json-1.1";

fn sm_op(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path("/")).and(header(
        "x-amz-target",
        format!("secretsmanager.{op}").as_str(),
    ))
}

fn aws_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", JSON_11)
        .set_body_string(json!({"__type": code, "message": "injected"}).to_string())
}

fn created(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", JSON_11)
        .set_body_string(
            json!({
                "ARN": format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"),
                "Name": name,
                "VersionId": "00000000-0000-0000-0000-000000000001"
            })
            .to_string(),
        )
}

fn mock_source() -> MockSource {
    let mut source = MockSource::new();
    source.expect_snapshot().returning(|_| {
        Ok(SourceSnapshot {
            scopes: vec![SourceScope::new("secret", "")],
            entries: ["a", "b", "c"]
                .iter()
                .map(|p| SourceEntry {
                    mount: "secret".into(),
                    path: (*p).into(),
                    version: 1,
                    version_id: "t1".into(),
                })
                .collect(),
            skipped_deleted: 0,
        })
    });
    source.expect_read().times(3).returning(|e, _| {
        assert_eq!(e.version, 1, "the value is read at the planned version");
        let map = json!({"k": format!("value-of-{}", e.path)});
        Ok(Some(SecretMap::new(map.as_object().unwrap().clone())))
    });
    source
}

/// Throttling and 503 are retried by the SDK (with backoff) until they
/// succeed; a secret whose calls keep failing with 500 fails alone, after
/// the configured attempts, while the others replicate.
#[tokio::test]
async fn throttling_and_5xx_are_retried_and_one_failure_does_not_stop_the_others() {
    let server = MockServer::start().await;
    sm_op("ListSecrets")
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", JSON_11)
                .set_body_string(json!({"SecretList": []}).to_string()),
        )
        .expect(1)
        .mount(&server)
        .await;
    // a: throttled twice, then created.
    sm_op("CreateSecret")
        .and(body_string_contains(r#""Name":"vault/a""#))
        .respond_with(aws_error(400, "ThrottlingException"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    sm_op("CreateSecret")
        .and(body_string_contains(r#""Name":"vault/a""#))
        .respond_with(created("vault/a"))
        .expect(1)
        .mount(&server)
        .await;
    // b: 503 once, then created.
    sm_op("CreateSecret")
        .and(body_string_contains(r#""Name":"vault/b""#))
        .respond_with(aws_error(503, "ServiceUnavailable"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    sm_op("CreateSecret")
        .and(body_string_contains(r#""Name":"vault/b""#))
        .respond_with(created("vault/b"))
        .expect(1)
        .mount(&server)
        .await;
    // c: 500 every time: 3 attempts, then a failure.
    sm_op("CreateSecret")
        .and(body_string_contains(r#""Name":"vault/c""#))
        .respond_with(aws_error(500, "InternalServiceError"))
        .expect(3)
        .mount(&server)
        .await;

    let sm = aws_sdk_secretsmanager::Client::new(&sdk(&server.uri(), 3).await);
    let run = replicator(
        Arc::new(mock_source()),
        sm_target(&sm, false),
        Granularity::Secret,
        DeletionPolicy::None,
    );
    let r = run.run(false).await;
    assert_eq!(r.count("create"), 2, "{}", r.table());
    assert_eq!(r.count("failed"), 1);
    let f = &r.failures[0];
    assert_eq!(f.path, "c");
    assert!(f.retryable);
    assert!(f.reason.contains("InternalServiceError"), "{}", f.reason);
    assert!(
        !f.reason.contains("value-of"),
        "no value in errors: {}",
        f.reason
    );
    // Counted once per logical call: the SDK's retries are not ours.
    assert_eq!(r.calls("secretsmanager.CreateSecret"), 3);
    assert_eq!(r.calls("secretsmanager.ListSecrets"), 1);
    assert_eq!(r.calls("vault.read"), 0, "the mock source counts nothing");

    // The request carried the KMS key and our tags.
    let requests = server.received_requests().await.unwrap();
    let body = requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .find(|b| b.contains("vault/a"))
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["KmsKeyId"], "alias/vault-replicate-test");
    assert_eq!(body["SecretString"], r#"{"k":"value-of-a"}"#);
    let tags = body["Tags"].as_array().unwrap();
    assert!(tags.contains(&json!({"Key": "managed-by", "Value": "vault-replicate"})));
    assert!(tags.contains(&json!({"Key": "vault-version", "Value": "1"})));
}

/// A failing ListSecrets stops the run before anything is written: a
/// partial listing must never look like missing secrets.
#[tokio::test]
async fn a_failing_snapshot_writes_nothing() {
    let server = MockServer::start().await;
    sm_op("ListSecrets")
        .respond_with(aws_error(400, "AccessDeniedException"))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = MockSource::new();
    source
        .expect_snapshot()
        .returning(|_| Ok(SourceSnapshot::default()));
    source.expect_read().never();
    let sm = aws_sdk_secretsmanager::Client::new(&sdk(&server.uri(), 3).await);
    let run = replicator(
        Arc::new(source),
        sm_target(&sm, false),
        Granularity::Secret,
        DeletionPolicy::Force,
    );
    let r = run.run(false).await;
    assert!(!r.is_success());
    let e = r.error.unwrap();
    assert!(
        e.contains("ListSecrets") && e.contains("AccessDeniedException"),
        "{e}"
    );
}

fn vault_list(path_: &str, keys: serde_json::Value) -> Mock {
    Mock::given(method("GET"))
        .and(path(path_))
        .and(query_param("list", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"keys": keys}})))
}

fn vault_metadata(path_: &str, current: u64, destroyed: bool) -> Mock {
    Mock::given(method("GET"))
        .and(path(path_))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "current_version": current,
            "versions": {current.to_string(): {"created_time": "", "deletion_time": "", "destroyed": destroyed}}
        }})))
}

/// HashiCorp Vault has no `detailed-metadata`: the source lists folders and
/// reads each secret's metadata instead, and skips destroyed versions.
#[tokio::test]
async fn vault_without_detailed_metadata_falls_back_to_metadata_reads() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/detailed-metadata/team/"))
        .respond_with(ResponseTemplate::new(405).set_body_json(json!({"errors": []})))
        .expect(1)
        .mount(&server)
        .await;
    vault_list("/v1/secret/metadata/team/", json!(["a", "sub/"]))
        .expect(1)
        .mount(&server)
        .await;
    vault_list("/v1/secret/metadata/team/sub/", json!(["b", "gone"]))
        .expect(1)
        .mount(&server)
        .await;
    vault_metadata("/v1/secret/metadata/team/a", 3, false)
        .expect(1)
        .mount(&server)
        .await;
    vault_metadata("/v1/secret/metadata/team/sub/b", 1, false)
        .expect(1)
        .mount(&server)
        .await;
    vault_metadata("/v1/secret/metadata/team/sub/gone", 2, true)
        .expect(1)
        .mount(&server)
        .await;

    let source = VaultKvSource::builder(vault(&server.uri(), "t"))
        .scope(SourceScope::new("secret", "team"))
        .build()
        .unwrap();
    let calls = ApiCalls::new();
    let snap = source.snapshot(&calls).await.unwrap();
    let got: Vec<(String, u64)> = snap
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.version))
        .collect();
    assert_eq!(got, vec![("team/a".into(), 3), ("team/sub/b".into(), 1)]);
    assert_eq!(snap.skipped_deleted, 1);
    assert_eq!(calls.get("vault.list"), 3);
    assert_eq!(calls.get("vault.read_metadata"), 3);
}
