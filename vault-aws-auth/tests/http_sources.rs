//! EC2 login against wiremock IMDSv2 (token, PKCS7, nonce reuse) and the
//! credential cache / expiry checks with an injected provider.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, future};
use vault_aws_auth::{AwsIamAuth, Credentials, Ec2Auth, SharedCredentialsProvider};
use vault_client::{ClientConfig, ExposeSecret, VaultAuth, VaultClient};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn vault(addr: &str) -> VaultClient {
    VaultClient::new(ClientConfig::new(addr).unwrap().with_max_retries(0)).unwrap()
}

/// An IMDSv2 that expects `token_fetches` session tokens (each client keeps
/// its token for its TTL) and `documents` identity document reads.
async fn imds_mock(token_fetches: u64, documents: u64) -> MockServer {
    let imds = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .and(header("x-aws-ec2-metadata-token-ttl-seconds", "21600"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                .set_body_string("imds-session-token"),
        )
        .expect(token_fetches)
        .mount(&imds)
        .await;
    Mock::given(method("GET"))
        .and(path("/latest/dynamic/instance-identity/pkcs7"))
        .and(header("x-aws-ec2-metadata-token", "imds-session-token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("MIIAbc\nDEF+/=\nGHI\n"))
        .expect(documents)
        .mount(&imds)
        .await;
    imds
}

fn auth_reply(token: &str, nonce: Option<&str>) -> ResponseTemplate {
    let mut metadata = serde_json::json!({"instance_id": "i-0123", "role": "web"});
    if let Some(n) = nonce {
        metadata["nonce"] = n.into();
    }
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "auth": {"client_token": token, "accessor": "acc", "policies": ["web"],
                 "metadata": metadata, "lease_duration": 3600, "renewable": true}
    }))
}

#[tokio::test]
async fn ec2_login_sends_the_pkcs7_and_reuses_the_nonce() {
    // Two processes: the first logs in twice with one session token.
    let imds = imds_mock(2, 3).await;
    let vault_server = MockServer::start().await;
    let pkcs7 = "MIIAbcDEF+/=GHI";
    Mock::given(method("POST"))
        .and(path("/v1/auth/aws-ec2/login"))
        .and(body_json(
            serde_json::json!({"pkcs7": pkcs7, "role": "web"}),
        ))
        .respond_with(auth_reply("hvs.first", Some("nonce-from-vault")))
        .expect(1)
        .mount(&vault_server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/aws-ec2/login"))
        .and(body_json(
            serde_json::json!({"pkcs7": pkcs7, "role": "web", "nonce": "nonce-from-vault"}),
        ))
        .respond_with(auth_reply("hvs.again", None))
        .expect(2)
        .mount(&vault_server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let nonce_file = dir.path().join("nonce");
    let lookup = |k: &str| match k {
        "VAULT_AUTH_ROLE" => Some("web".to_owned()),
        "VAULT_AUTH_PROVIDER" => Some("aws-ec2".to_owned()),
        "VAULT_EC2_NONCE_FILE" => Some(nonce_file.display().to_string()),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT" => Some(imds.uri()),
        _ => None,
    };
    let auth = Ec2Auth::from_lookup(lookup).unwrap();
    let client = vault(&vault_server.uri());
    assert_eq!(
        auth.login(&client)
            .await
            .unwrap()
            .client_token
            .expose_secret(),
        "hvs.first"
    );
    assert_eq!(
        std::fs::read_to_string(&nonce_file).unwrap(),
        "nonce-from-vault"
    );
    assert_eq!(
        std::fs::metadata(&nonce_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!format!("{auth:?}").contains("nonce-from-vault"));
    // Re-login in the same process: the nonce from memory.
    assert_eq!(
        auth.login(&client)
            .await
            .unwrap()
            .client_token
            .expose_secret(),
        "hvs.again"
    );
    // A restarted process: the nonce from the file.
    let restarted = Ec2Auth::from_lookup(lookup).unwrap();
    assert_eq!(
        restarted
            .login(&client)
            .await
            .unwrap()
            .client_token
            .expose_secret(),
        "hvs.again"
    );
}

#[tokio::test]
async fn ec2_errors_say_what_failed() {
    // IMDS refuses the token (IMDSv1-only or a proxy in the way).
    let imds = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(403))
        .expect(1)
        .mount(&imds)
        .await;
    let auth = Ec2Auth::builder()
        .imds_endpoint(imds.uri())
        .build()
        .unwrap();
    let e = auth.login(&vault("http://127.0.0.1:1")).await.unwrap_err();
    assert!(
        e.to_string().contains("PUT /latest/api/token answered 403"),
        "{e}"
    );

    // Nothing listening: a retryable transport failure with advice.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let auth = Ec2Auth::builder()
        .imds_endpoint(format!("http://{closed}"))
        .imds_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let e = auth.login(&vault("http://127.0.0.1:1")).await.unwrap_err();
    assert!(e.to_string().contains("cannot get an IMDSv2 token"), "{e}");

    // Vault refuses the nonce.
    let imds = imds_mock(1, 1).await;
    let vault_server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"errors": ["client nonce mismatch"]})),
        )
        .expect(1)
        .mount(&vault_server)
        .await;
    let auth = Ec2Auth::builder()
        .imds_endpoint(imds.uri())
        .nonce("stale".to_owned().into())
        .build()
        .unwrap();
    let e = auth.login(&vault(&vault_server.uri())).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("client nonce mismatch") && msg.contains("nonce file"),
        "{msg}"
    );
    assert_eq!(e.status(), Some(400));
}

/// A provider that counts calls and hands out credentials expiring after `ttl`.
#[derive(Debug)]
struct Counting {
    calls: Arc<AtomicUsize>,
    ttl: Option<Duration>,
    expired: bool,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let expiry = if self.expired {
            Some(SystemTime::now() - Duration::from_secs(90))
        } else {
            self.ttl.map(|t| SystemTime::now() + t)
        };
        future::ProvideCredentials::ready(Ok(Credentials::new(
            "ASIAEXAMPLE",
            "secret-key-value",
            Some("session-token-value".into()),
            expiry,
            "counting",
        )))
    }
}

fn counting(ttl: Option<Duration>, expired: bool) -> (AwsIamAuth, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let auth = AwsIamAuth::builder()
        .role("app")
        .credentials_provider(SharedCredentialsProvider::new(Counting {
            calls: Arc::clone(&calls),
            ttl,
            expired,
        }))
        .build()
        .unwrap();
    (auth, calls)
}

#[tokio::test]
async fn credentials_are_reused_only_while_they_stay_valid() {
    let (auth, calls) = counting(Some(Duration::from_secs(3600)), false);
    auth.login_payload().await.unwrap();
    auth.login_payload().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Expiring within the refresh window: fetched again at every login.
    let (auth, calls) = counting(Some(Duration::from_secs(60)), false);
    auth.login_payload().await.unwrap();
    auth.login_payload().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Time passes (vault_client::clock): credentials of an hour are reused
    // 54 minutes later (6 min left) and fetched again at 56 (4 min left,
    // inside the 5 min refresh window), as after a long Lambda freeze.
    let (auth, calls) = counting(Some(Duration::from_secs(3600)), false);
    auth.login_payload().await.unwrap();
    vault_client::clock::shifted(Duration::from_secs(54 * 60), auth.login_payload())
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    vault_client::clock::shifted(Duration::from_secs(56 * 60), auth.login_payload())
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Without expiry (static keys): asked every time, so a rotated key is seen.
    let (auth, calls) = counting(None, false);
    auth.login_payload().await.unwrap();
    auth.login_payload().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let (auth, _) = counting(None, true);
    let e = auth.login(&vault("http://127.0.0.1:1")).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("expired 90 s ago")
            || msg.contains("expired 89 s ago")
            || msg.contains("expired 91 s ago"),
        "{msg}"
    );
    assert!(
        !msg.contains("secret-key-value") && !msg.contains("session-token-value"),
        "{msg}"
    );
}
