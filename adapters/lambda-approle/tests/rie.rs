//! The `bootstrap` binary under the AWS Lambda Runtime Interface Emulator,
//! against a real OpenBao and moto S3, answering a wiremock ResponseURL.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::{Value, json};
use testkit::{AppRolePeers, Moto, Rie, RieConfig};
use wiremock::MockServer;

const BUCKET: &str = "cfn-creds";
/// The policy `shop-dev` of these tests.
const READ_ALL: &str = r#"path "secret/*" { capabilities = ["read"] }"#;

fn event(kind: &str, n: u32, cfn: &MockServer, physical: Option<&str>, props: Value) -> Value {
    testkit::cfn::event(kind, n, &cfn.uri(), physical, props)
}

async fn answer(cfn: &MockServer, n: u32) -> Value {
    let received = cfn.received_requests().await.unwrap();
    let r = received
        .iter()
        .find(|r| r.url.path() == format!("/cfn/{n}"))
        .unwrap_or_else(|| panic!("no answer for event {n}"));
    assert_eq!(
        r.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b""[..])
    );
    assert!(r.body.len() <= 4096);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["RequestId"], format!("req-{n}"));
    assert_eq!(body["LogicalResourceId"], "ShopVaultAuth");
    body
}

#[tokio::test]
async fn bootstrap_under_rie_creates_and_deletes_and_always_answers() {
    let AppRolePeers { bao, moto, s3 } = AppRolePeers::start(BUCKET, "shop-dev", READ_ALL).await;
    let cfn = testkit::cfn::response_listener().await;

    let bootstrap = PathBuf::from(env!("CARGO_BIN_EXE_bootstrap"));
    // With the bucket, or without it (a misconfigured function).
    let env = |with_bucket: bool| {
        let mut env = base_env(&bao.addr(), bao.root_token(), &moto);
        if !with_bucket {
            env.retain(|(k, _)| k != "VAULT_APPROLE_S3_BUCKET");
        }
        env
    };
    let rie = Rie::start(RieConfig {
        bootstrap: bootstrap.clone(),
        env: env(true),
        ..RieConfig::default()
    })
    .await;

    let props = json!({"ServiceToken": "arn", "Service": "shop", "Environment": "dev",
        "Iam": "arn:aws:iam::123456789012:role/ShopTask"});

    // A ResponseURL on a host that is neither CloudFormation's nor allowed
    // (the same listener, named `localhost`): nothing is done or sent.
    let mut elsewhere = event("Create", 0, &cfn, None, props.clone());
    elsewhere["ResponseURL"] = json!(
        elsewhere["ResponseURL"]
            .as_str()
            .unwrap()
            .replace("127.0.0.1", "localhost")
    );
    let (_, out) = rie.invoke(&elsewhere).await;
    assert!(
        out.contains("not CloudFormation's"),
        "{out}\n{}",
        rie.logs()
    );
    assert!(cfn.received_requests().await.unwrap().is_empty());
    assert!(
        s3.head_object()
            .bucket(BUCKET)
            .key("vault/approle/shoptask")
            .send()
            .await
            .is_err(),
        "nothing delivered"
    );
    let (status, out) = rie
        .invoke(&event("Create", 1, &cfn, None, props.clone()))
        .await;
    assert_eq!(status, 200, "{out}\n{}", rie.logs());
    let body = answer(&cfn, 1).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}\n{}", rie.logs());
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    assert_eq!(
        body["Data"]["CredentialsLocation"],
        format!("s3://{BUCKET}/vault/approle/shoptask")
    );
    let role = String::from_utf8(
        bao.bao(&["read", "-format=json", "auth/approle/role/shoptask"])
            .await
            .stdout,
    )
    .unwrap();
    assert!(role.contains("shop-dev"), "{role}");
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("vault/approle/shoptask")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key("vault/approle/shoptask")
        .send()
        .await
        .unwrap();
    let object: Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    let secret_id = object["secret_id"].as_str().unwrap().to_owned();

    // Invalid properties: answered FAILED with the reason.
    let (status, _) = rie
        .invoke(&event(
            "Create",
            2,
            &cfn,
            None,
            json!({"Service": "shop", "Iam": "X"}),
        ))
        .await;
    assert_eq!(status, 200);
    let body = answer(&cfn, 2).await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("property Environment"),
        "{body}"
    );

    // Delete removes the role and the object.
    let (status, _) = rie
        .invoke(&event("Delete", 3, &cfn, Some("shoptask"), props.clone()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer(&cfn, 3).await["Status"], "SUCCESS");
    let root =
        vault_client::VaultClient::new(vault_client::ClientConfig::new(&bao.addr()).unwrap())
            .unwrap()
            .with_token(vault_client::SecretString::from(bao.root_token()));
    assert!(
        root.approle("approle")
            .read_role("shoptask")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s3.head_object()
            .bucket(BUCKET)
            .key("vault/approle/shoptask")
            .send()
            .await
            .is_err()
    );
    let logs = rie.shutdown().await;
    assert!(logs.contains("credentials delivered"), "{logs}");
    assert!(!logs.contains(&secret_id), "no secret_id in the logs");

    // A misconfigured function still answers every event, naming the problem.
    let rie = Rie::start(RieConfig {
        bootstrap,
        env: env(false),
        ..RieConfig::default()
    })
    .await;
    let (status, _) = rie.invoke(&event("Create", 4, &cfn, None, props)).await;
    assert_eq!(status, 200, "{}", rie.logs());
    let body = answer(&cfn, 4).await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("VAULT_APPROLE_S3_BUCKET"),
        "{body}"
    );
}

async fn s3_object(s3: &aws_sdk_s3::Client, key: &str) -> Option<Value> {
    let object = s3.get_object().bucket(BUCKET).key(key).send().await.ok()?;
    Some(serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap())
}

fn base_env(bao_addr: &str, token: &str, moto: &Moto) -> Vec<(String, String)> {
    [
        ("VAULT_ADDR", bao_addr.to_owned()),
        ("VAULT_TOKEN", token.to_owned()),
        ("AWS_ENDPOINT_URL_S3", moto.endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIATEST".into()),
        ("AWS_SECRET_ACCESS_KEY", "secret".into()),
        ("VAULT_APPROLE_ROTATION_GRACE", "0s".into()),
        ("VAULT_APPROLE_S3_BUCKET", BUCKET.into()),
        // The wiremock listener stands in for CloudFormation's S3 URL.
        ("VAULT_APPROLE_RESPONSE_URL_HOSTS", "127.0.0.1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// CloudFormation's own properties (ServiceToken, ServiceTimeout), an event
/// that is not JSON, Lambda's default 3 s timeout, and a Vault that refuses
/// connections: every one answered, and answered right.
#[tokio::test]
async fn cloudformation_properties_bad_payloads_short_timeouts_and_root_causes() {
    let AppRolePeers { bao, moto, s3 } = AppRolePeers::start(BUCKET, "shop-dev", READ_ALL).await;
    let cfn = testkit::cfn::response_listener().await;
    let bootstrap = PathBuf::from(env!("CARGO_BIN_EXE_bootstrap"));
    let mut env = base_env(&bao.addr(), bao.root_token(), &moto);
    // Lambda's default timeout, shorter than the 5 s answer margin.
    env.push(("AWS_LAMBDA_FUNCTION_TIMEOUT".into(), "3".into()));
    let rie = Rie::start(RieConfig {
        bootstrap: bootstrap.clone(),
        env,
        ..RieConfig::default()
    })
    .await;

    let props = json!({"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:a",
        "ServiceTimeout": "300", "Service": "shop", "Environment": "dev",
        "Iam": "arn:aws:iam::123456789012:role/ShopTask"});
    let (status, out) = rie
        .invoke(&event("Create", 11, &cfn, None, props.clone()))
        .await;
    assert_eq!(status, 200, "{out}\n{}", rie.logs());
    let body = answer(&cfn, 11).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}\n{}", rie.logs());
    let delivered = s3_object(&s3, "vault/approle/shoptask").await.unwrap();

    // An Update changing only CloudFormation's own properties rotates nothing.
    let mut changed = props.clone();
    changed["ServiceToken"] = json!("arn:aws:lambda:us-east-1:123456789012:function:b");
    changed["ServiceTimeout"] = json!("600");
    let mut update = event("Update", 12, &cfn, Some("shoptask"), changed);
    update["OldResourceProperties"] = props.clone();
    let (status, out) = rie.invoke(&update).await;
    assert_eq!(status, 200, "{out}");
    let body = answer(&cfn, 12).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    assert_eq!(body["Data"]["RoleId"], delivered["role_id"], "{body}");
    let after = s3_object(&s3, "vault/approle/shoptask").await.unwrap();
    assert_eq!(
        after["secret_id_accessor"], delivered["secret_id_accessor"],
        "nothing rotated"
    );

    // Not JSON, but with a ResponseURL: answered FAILED.
    let url = format!("{}/cfn/13?X-Amz-Signature=abc", cfn.uri());
    let raw = format!(
        r#"{{"RequestType": "Create", "ResponseURL": "{url}", "RequestId": "req-13", "LogicalResourceId": "ShopVaultAuth", "ResourceProperties": {{"Service": "#
    );
    let reply = reqwest::Client::new()
        .post(format!(
            "http://{}/2015-03-31/functions/function/invocations",
            rie.emulator_addr()
        ))
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let received = cfn.received_requests().await.unwrap();
    let answered = received
        .iter()
        .find(|r| r.url.path() == "/cfn/13")
        .unwrap_or_else(|| panic!("the non-JSON event got no answer:\n{}", rie.logs()));
    let body: Value = serde_json::from_slice(&answered.body).unwrap();
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    let logs = rie.shutdown().await;
    assert!(!logs.contains("X-Amz-Signature"), "{logs}");

    // A Vault that refuses connections: the Reason names the root cause.
    let closed = format!("http://127.0.0.1:{}", testkit::free_port());
    let rie = Rie::start(RieConfig {
        bootstrap,
        env: base_env(&closed, "hvs.not-a-real-token-7f3e", &moto),
        ..RieConfig::default()
    })
    .await;
    let mut other = props.clone();
    other["Iam"] = json!("ShopBatch");
    rie.invoke(&event("Create", 14, &cfn, None, other)).await;
    let body = answer(&cfn, 14).await;
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.to_ascii_lowercase().contains("connection refused") && reason.contains(&closed),
        "{reason}"
    );
    assert!(!reason.contains("hvs.not-a-real-token"), "{reason}");
}
