//! Every Lambda binary of the workspace at its most verbose log level under
//! the AWS Lambda Runtime Interface Emulator: no pre-signed URL signature
//! (`X-Amz-Signature`), no token and no secret_id in anything it prints.
//!
//! `lambda_runtime` logs the whole raw event at TRACE; a CloudFormation
//! event carries a pre-signed `ResponseURL`, an API Gateway event an
//! `Authorization` header. Each binary gets events carrying both.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use testkit::{AppRolePeers, Rie, RieConfig};
use wiremock::MockServer;

const SIGNATURE: &str = "X-Amz-Signature=9f3c1e0b7a5d4c2e8f6a1b3d5c7e9f0a";
const BEARER: &str = "bearer-token-5b8e2d1f9c3a";
const BUCKET: &str = "cfn-creds";

/// The other Lambda binaries of the workspace, next to this package's
/// `bootstrap`. `cargo test --workspace` (scripts/test) builds them before
/// any test runs; when one is missing (this package tested alone) they are
/// built here.
fn workspace_binaries() -> Vec<(&'static str, PathBuf)> {
    let bootstrap = PathBuf::from(env!("CARGO_BIN_EXE_bootstrap"));
    let names = [
        "lambda-replicate",
        "lambda-authorizer",
        "proxy-function",
        "vault-aws-extension",
    ];
    if names.iter().any(|n| !bootstrap.with_file_name(n).exists()) {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "vault-aws-lambda-replicate",
                "-p",
                "vault-aws-lambda-authorizer",
                "-p",
                "vault-aws-examples",
                "-p",
                "vault-aws-lambda-extension",
                "--bins",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the Lambda binaries");
    }
    names
        .into_iter()
        .map(|name| {
            let path = bootstrap.with_file_name(name);
            assert!(path.exists(), "{} missing", path.display());
            (name, path)
        })
        .collect()
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A CloudFormation event whose ResponseURL is the wiremock listener.
fn cfn_event(cfn: &MockServer, n: u32) -> Value {
    let props = json!({"ServiceToken": "arn", "Service": "shop", "Environment": "dev",
        "Iam": "arn:aws:iam::123456789012:role/ShopTask"});
    let mut event = testkit::cfn::event("Create", n, &cfn.uri(), None, props);
    event["ResponseURL"] = json!(format!(
        "{}/cfn/{n}?X-Amz-Algorithm=AWS4-HMAC-SHA256&{SIGNATURE}",
        cfn.uri()
    ));
    event
}

/// An API Gateway (HTTP API 2.0) request with a bearer token and a
/// pre-signed URL in its query.
fn http_event() -> Value {
    json!({
        "version": "2.0", "type": "REQUEST", "routeKey": "GET /x",
        "routeArn": "arn:aws:execute-api:eu-west-1:111122223333:r7t4u1v8cd/prod/GET/x",
        "rawPath": "/x", "rawQueryString": SIGNATURE,
        "headers": {"authorization": format!("Bearer {BEARER}")},
        "requestContext": {"http": {"method": "GET", "path": "/x"}},
        "ResponseURL": format!("https://example.s3.amazonaws.com/r?{SIGNATURE}"),
    })
}

fn assert_clean(binary: &str, logs: &str, secrets: &[&str]) {
    assert!(
        !logs.contains("X-Amz-Signature"),
        "{binary}: a pre-signed URL's signature is in the output:\n{logs}"
    );
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "{binary}: a secret ({} bytes) is in the output:\n{logs}",
            secret.len()
        );
    }
}

#[tokio::test]
async fn no_lambda_binary_logs_a_signature_token_or_secret_id_at_trace() {
    let others = workspace_binaries();
    let AppRolePeers { bao, moto, s3 } = AppRolePeers::start(
        BUCKET,
        "shop-dev",
        r#"path "secret/*" { capabilities = ["read"] }"#,
    )
    .await;
    // An orchestrator token that can be told apart in the output (the dev
    // server's root token is the word "root").
    let created = bao
        .root_request(
            "POST",
            "auth/token/create",
            json!({"policies": ["root"], "ttl": "1h"}),
        )
        .await;
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {created}"))
        .to_owned();
    let (role_id, app_secret_id) = bao
        .approle_with_policy("app", r#"path "secret/data/*" { capabilities = ["read"] }"#)
        .await;
    bao.bao(&["kv", "put", "secret/app/db", "value=v"]).await;
    let cfn = testkit::cfn::response_listener().await;
    let aws = |extra: &[(&str, String)]| {
        let mut pairs = vec![
            ("VAULT_ADDR", bao.addr()),
            ("VAULT_TOKEN", token.clone()),
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "AKIATEST".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "secret".to_owned()),
        ];
        pairs.extend(extra.iter().cloned());
        env(&pairs)
    };

    // bootstrap (Custom::VaultAuth): a real Create, answered through the
    // pre-signed URL; the delivered secret_id must not be printed either.
    let rie = Rie::start(RieConfig {
        bootstrap: env!("CARGO_BIN_EXE_bootstrap").into(),
        env: aws(&[
            ("RUST_LOG", "trace".to_owned()),
            ("VAULT_APPROLE_S3_BUCKET", BUCKET.to_owned()),
            ("VAULT_APPROLE_RESPONSE_URL_HOSTS", "127.0.0.1".to_owned()),
        ]),
        ..RieConfig::default()
    })
    .await;
    let (status, out) = rie.invoke(&cfn_event(&cfn, 1)).await;
    assert_eq!(status, 200, "{out}\n{}", rie.logs());
    assert!(out.contains("SUCCESS"), "{out}\n{}", rie.logs());
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
    let logs = rie.shutdown().await;
    assert!(logs.contains("TRACE"), "not at TRACE:\n{logs}");
    assert_clean("bootstrap", &logs, &[&token, &secret_id]);

    for (name, binary) in others {
        let (config, event) = match name {
            "lambda-replicate" => (
                RieConfig {
                    bootstrap: binary,
                    env: aws(&[
                        ("VAULT_LOG_LEVEL", "trace".to_owned()),
                        ("REPLICATE_SOURCES", "secret/app".to_owned()),
                        ("REPLICATE_TARGET_PREFIX", "prod".to_owned()),
                        ("REPLICATE_WRITE_TPS", "0".to_owned()),
                    ]),
                    ..RieConfig::default()
                },
                cfn_event(&cfn, 2),
            ),
            "lambda-authorizer" => (
                RieConfig {
                    bootstrap: binary,
                    env: aws(&[
                        ("AUTHORIZER_LOG_LEVEL", "trace".to_owned()),
                        ("AUTHORIZER_TOKENS", BEARER.to_owned()),
                    ]),
                    ..RieConfig::default()
                },
                http_event(),
            ),
            "proxy-function" => (
                RieConfig {
                    bootstrap: binary,
                    env: aws(&[("RUST_LOG", "trace".to_owned())]),
                    ..RieConfig::default()
                },
                json!({"file": "/nonexistent/vault-aws", "event": cfn_event(&cfn, 3)}),
            ),
            "vault-aws-extension" => {
                // The extension beside the example function, logging in
                // with AppRole.
                let function = binary.with_file_name("proxy-function");
                (
                    RieConfig {
                        bootstrap: function,
                        extensions: vec![binary],
                        env: env(&[
                            ("VAULT_ADDR", bao.addr()),
                            ("VAULT_ROLE_ID", role_id.clone()),
                            ("VAULT_SECRET_ID", app_secret_id.clone()),
                            ("VAULT_RUN_MODE", "proxy".to_owned()),
                            (
                                "VAULT_PROXY_LISTEN",
                                format!("127.0.0.1:{}", testkit::free_port()),
                            ),
                            ("VAULT_LOG_LEVEL", "trace".to_owned()),
                            ("RUST_LOG", "trace".to_owned()),
                        ]),
                        ..RieConfig::default()
                    },
                    json!({"file": "/nonexistent/vault-aws", "event": cfn_event(&cfn, 4)}),
                )
            }
            other => panic!("unexpected binary {other}"),
        };
        let rie = Rie::start(config).await;
        let (_, out) = rie.invoke(&event).await;
        let logs = rie.shutdown().await;
        let all = format!("{logs}\n--- invoke answer:\n{out}");
        assert_clean(name, &all, &[&token, BEARER, &app_secret_id, &secret_id]);
    }
}
