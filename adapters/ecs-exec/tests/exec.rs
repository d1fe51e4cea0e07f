//! `vault-exec` against a real OpenBao and moto S3, with a wiremock server as
//! the ECS container credentials endpoint; the child is a real `sh -c`.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;
use testkit::{AppRolePeers, Moto, OpenBao};
use vault_approle::{Provisioner, ProvisionerOptions, RoleSpec, S3Access, S3CredentialStore};
use vault_client::{ClientConfig, SecretString, TokenAuth, VaultClient};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BUCKET: &str = "task-creds";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ecs/ShopTask";

struct Env {
    bao: OpenBao,
    moto: Moto,
    ecs: MockServer,
}

async fn setup() -> Env {
    let AppRolePeers { bao, moto, s3 } = AppRolePeers::shop_dev(BUCKET).await;
    let root = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap())
        .unwrap()
        .with_token(SecretString::from(bao.root_token()));
    let kv = root.kv2("secret");
    let db = json!({"password": "hunter2", "user": "shop"});
    kv.write("shop/dev/db", db.as_object().unwrap(), None)
        .await
        .unwrap();
    let app = json!({"api-key": "k1", "LOG_LEVEL": "debug", "port": 8080});
    kv.write("shop/dev/app", app.as_object().unwrap(), None)
        .await
        .unwrap();
    let other = json!({"x": "forbidden"});
    kv.write("other/secret", other.as_object().unwrap(), None)
        .await
        .unwrap();

    let store = S3CredentialStore::builder(BUCKET)
        .access(S3Access::from_client(s3))
        .build()
        .unwrap();
    let provisioner = Provisioner::new(
        VaultClient::new(ClientConfig::new(&bao.addr()).unwrap()).unwrap(),
        Arc::new(TokenAuth::new(SecretString::from(bao.root_token()))),
        Arc::new(store),
        ProvisionerOptions::default(),
    );
    let spec = RoleSpec::builder("shop", "dev", ROLE_ARN).build().unwrap();
    provisioner.provision(&spec).await.unwrap();

    let ecs = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/credentials/task"))
        .and(header("authorization", "ecs-auth-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RoleArn": ROLE_ARN,
            "AccessKeyId": "AKIATEST",
            "SecretAccessKey": "secret",
            "Token": "session-token",
            "Expiration": "2099-01-01T00:00:00Z",
        })))
        .expect(1..)
        .mount(&ecs)
        .await;
    Env { bao, moto, ecs }
}

impl Env {
    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vault-exec"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("VAULT_ADDR", self.bao.addr())
            .env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{}/v2/credentials/task", self.ecs.uri()),
            )
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token")
            .env("AWS_ENDPOINT_URL_S3", self.moto.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("VAULT_APPROLE_S3_BUCKET", BUCKET)
            .env("VAULT_TOKEN", "hvs.must-not-reach-the-app")
            .env("APP_SETTING", "kept")
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }
}

const SCRIPT: &str = r#"echo "pid=$$"; env | sort; exit 7"#;

#[tokio::test]
async fn execs_the_app_with_its_secrets_or_refuses_before_starting_it() {
    let env = setup().await;

    // The app replaces vault-exec (same PID), gets the secrets, and its exit code is returned.
    let child = env
        .command(
            &[
                "--secrets-path",
                "secret/shop/dev/app",
                "--",
                "sh",
                "-c",
                SCRIPT,
            ],
            &[("VAULT_ENV_DB_PASSWORD", "secret/shop/dev/db#password")],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("pid={pid}\n")),
        "same PID {pid}: {stdout}"
    );
    let vars: Vec<&str> = stdout.lines().collect();
    for expected in [
        "DB_PASSWORD=hunter2",
        "API_KEY=k1",
        "LOG_LEVEL=debug",
        "PORT=8080",
        "APP_SETTING=kept",
    ] {
        assert!(vars.contains(&expected), "{expected} missing:\n{stdout}");
    }
    for gone in [
        "VAULT_ENV_",
        "VAULT_TOKEN=",
        "VAULT_SECRET_ID",
        "VAULT_ROLE_ID",
    ] {
        assert!(!stdout.contains(gone), "{gone} reached the app:\n{stdout}");
    }
    assert!(
        stderr.contains("logged in") && stderr.contains("shoptask"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "no secret value in vault-exec's log: {stderr}"
    );

    // --pass-token hands the (new, AppRole) token to the app.
    let out = env
        .command(
            &[
                "--pass-token",
                "--",
                "sh",
                "-c",
                r#"echo "token=$VAULT_TOKEN""#,
            ],
            &[],
        )
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout.trim().strip_prefix("token=").unwrap();
    assert!(
        !token.is_empty() && token != "hvs.must-not-reach-the-app",
        "{stdout}"
    );

    // A missing secret, a missing key, or a secret outside the policy: the app never starts.
    let out = env
        .command(
            &["--", "sh", "-c", "echo started; exit 0"],
            &[
                ("VAULT_ENV_GONE", "secret/shop/dev/nope#k"),
                ("VAULT_ENV_NOKEY", "secret/shop/dev/db#missing"),
            ],
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "the app did not start");
    assert!(
        stderr.contains("secret secret/shop/dev/nope does not exist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("key missing is not in secret secret/shop/dev/db"),
        "{stderr}"
    );
    let out = env
        .command(
            &["--", "sh", "-c", "echo started"],
            &[("VAULT_ENV_X", "secret/other/secret#x")],
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An IAM role with no delivered credentials is named in the error.
    let out = env
        .command(&["--iam-role", "OtherTask", "--", "true"], &[])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("s3://{BUCKET}/vault/approle/othertask")),
        "{stderr}"
    );
}
