//! `vault-aws login aws|ec2` run as a user would: credentials from the ECS
//! container endpoint (wiremock, serving a moto user's key) and from the
//! environment, verified by moto's STS behind testkit's Vault-like login server.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use testkit::{IamLoginServer, Moto};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Runs the binary with a clean AWS environment: no credentials, no profile,
/// no instance metadata, plus `env`.
async fn vault_aws(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vault-aws"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("VAULT_MAX_RETRIES", "0")
        .envs(env.iter().copied());
    cmd.output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_aws_with_ecs_and_environment_credentials() {
    let moto = Moto::start().await;
    let user = moto.create_iam_user("deployer").await;
    let task_role = testkit::create_assumable_role(&moto, "task-role", &user).await;
    let task = testkit::assume_role_unsigned(&moto, &task_role, "ecs-task-1").await;
    moto.enable_sigv4_verification().await;
    let server = IamLoginServer::builder(&moto.endpoint())
        .server_id("vault.example.com")
        .role("app", &[&user.arn])
        .role("task", &[&task_role])
        .start()
        .await;
    let addr = server.addr();

    // ECS task role: AWS_CONTAINER_CREDENTIALS_FULL_URI + authorization token.
    let ecs = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/credentials/task"))
        .and(header("authorization", "ecs-agent-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "AccessKeyId": task.access_key_id,
            "SecretAccessKey": task.secret_access_key,
            "Token": task.session_token,
            "Expiration": task.expiration,
            "RoleArn": task_role,
        })))
        .expect(1)
        .mount(&ecs)
        .await;
    let full_uri = format!("{}/v2/credentials/task", ecs.uri());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let out = vault_aws(
        &[
            "login",
            "aws",
            "--role",
            "task",
            "--server-id",
            "vault.example.com",
            "--token-file",
            token_file.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[
            ("VAULT_ADDR", &addr),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-agent-token"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["method"], "aws-iam");
    assert_eq!(json["metadata"]["canonical_arn"], task_role.as_str());
    assert!(
        server.observed()[0]
            .headers
            .contains_key("x-amz-security-token"),
        "the session token of the task credentials is sent"
    );
    assert!(json.get("client_token").is_none(), "{json}");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.starts_with("hvs.testkit"), "{token}");
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Lambda's shape: session credentials in the environment; regional
    // endpoint from AWS_STS_REGIONAL_ENDPOINTS, server id from the
    // environment: the bare token on stdout.
    let out = vault_aws(
        &["login", "aws"],
        &[
            ("VAULT_ADDR", &addr),
            ("VAULT_AUTH_ROLE", "task"),
            ("VAULT_IAM_SERVER_ID", "vault.example.com"),
            ("AWS_ACCESS_KEY_ID", &task.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &task.secret_access_key),
            ("AWS_SESSION_TOKEN", &task.session_token),
            ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
            ("AWS_REGION", "ap-southeast-2"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).trim().starts_with("hvs.testkit"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        server.observed().last().unwrap().url,
        "https://sts.ap-southeast-2.amazonaws.com/"
    );

    // Without the server id: Vault's words and the hint, exit 1, no secret.
    let out = vault_aws(
        &["login", "aws", "--role", "app"],
        &[
            ("VAULT_ADDR", &addr),
            ("AWS_ACCESS_KEY_ID", &user.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &user.secret_access_key),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("set VAULT_IAM_SERVER_ID"), "{stderr}");
    assert!(!stderr.contains(&user.secret_access_key), "{stderr}");
}

#[tokio::test]
async fn login_aws_without_credentials_names_the_sources_tried() {
    let out = vault_aws(
        &["login", "aws", "--role", "app"],
        &[("VAULT_ADDR", "http://127.0.0.1:1")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no AWS credentials found"), "{stderr}");
    assert!(
        stderr.contains("ECS container endpoint") && stderr.contains("IMDSv2"),
        "{stderr}"
    );

    let out = vault_aws(&["login", "aws"], &[("VAULT_ADDR", "http://127.0.0.1:1")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("VAULT_AUTH_ROLE"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_ec2_prints_json_and_keeps_the_nonce() {
    let imds = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                .set_body_string("imds-token"),
        )
        .expect(1)
        .mount(&imds)
        .await;
    Mock::given(method("GET"))
        .and(path("/latest/dynamic/instance-identity/pkcs7"))
        .and(header("x-aws-ec2-metadata-token", "imds-token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("MIIA\nBBB\n"))
        .expect(1)
        .mount(&imds)
        .await;
    let vault = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/aws/login"))
        .and(wiremock::matchers::body_json(
            serde_json::json!({"pkcs7": "MIIABBB", "role": "web"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "auth": {"client_token": "hvs.ec2", "accessor": "acc-ec2", "policies": ["web"],
                     "metadata": {"nonce": "vault-nonce", "instance_id": "i-1"},
                     "lease_duration": 600, "renewable": true}
        })))
        .expect(1)
        .mount(&vault)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let nonce = dir.path().join("nonce");
    let out = vault_aws(
        &[
            "login",
            "ec2",
            "--role",
            "web",
            "--format",
            "json",
            "--nonce-file",
            nonce.to_str().unwrap(),
        ],
        &[
            ("VAULT_ADDR", &vault.uri()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.uri()),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["client_token"], "hvs.ec2");
    assert_eq!(json["method"], "ec2");
    assert_eq!(json["lease_duration"], 600);
    assert_eq!(std::fs::read_to_string(&nonce).unwrap(), "vault-nonce");
    assert_eq!(
        std::fs::metadata(&nonce).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
