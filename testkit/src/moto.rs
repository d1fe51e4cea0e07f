//! moto server: a local AWS (STS, IAM, S3, KMS, SNS, Secrets Manager).

use std::time::Duration;

use crate::process::{PeerProcess, guarded_command};
use crate::{free_port, http_client, http_ok, peer_bin, temp_dir};

/// A running `moto_server` on 127.0.0.1; stopped on drop.
///
/// moto routes a request to a service by the credential scope in its
/// `Authorization` header (`.../<region>/<service>/aws4_request`), never by
/// `Host`: a request without that header goes to S3.
pub struct Moto {
    process: PeerProcess,
    port: u16,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// An IAM user with an access key, as created by [`Moto::create_iam_user`].
#[derive(Clone, Debug)]
pub struct AwsUser {
    /// IAM user name.
    pub user_name: String,
    /// `arn:aws:iam::123456789012:user/<name>`.
    pub arn: String,
    /// Access key id (`AKIA...`).
    pub access_key_id: String,
    /// Secret access key (test credentials; printed by `Debug`).
    pub secret_access_key: String,
}

impl Moto {
    /// Starts `moto_server -H 127.0.0.1 -p P` and waits until it answers.
    pub async fn start() -> Moto {
        let moto_server = peer_bin("moto_server");
        let port = free_port();
        let dir = temp_dir("moto");
        let mut cmd = guarded_command(&[], &moto_server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .current_dir(dir.path());
        let log = dir.path().join("moto.log");
        let mut process = PeerProcess::spawn("moto", cmd, log, "TERM", Duration::from_secs(5));
        let client = http_client();
        let probe = format!("http://127.0.0.1:{port}/moto-api/data.json");
        process
            .wait_ready(Duration::from_secs(60), async || {
                http_ok(&client, &probe).await
            })
            .await;
        Moto {
            process,
            port,
            client,
            _dir: dir,
        }
    }

    /// Endpoint for every service, `http://127.0.0.1:P`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An S3 client for this server (feature `s3`): region `us-east-1`,
    /// static test credentials (`AKIATEST` / `secret`), path-style
    /// addressing (moto serves no bucket host names).
    #[cfg(feature = "s3")]
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new(
                    "AKIATEST", "secret", None, None, "testkit",
                ))
                .endpoint_url(self.endpoint())
                .force_path_style(true)
                .build(),
        )
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the server printed so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Deletes all resources (`POST /moto-api/reset`). SigV4 verification,
    /// once enabled, stays enabled: see [`Moto::disable_sigv4_verification`].
    pub async fn reset(&self) {
        self.moto_api("reset", None).await;
    }

    /// Creates an IAM user and an access key for it, through the IAM query
    /// API. Call it before [`Moto::enable_sigv4_verification`]: these
    /// requests are not really signed.
    pub async fn create_iam_user(&self, name: &str) -> AwsUser {
        let user = self
            .iam_call(&[("Action", "CreateUser"), ("UserName", name)])
            .await;
        let key = self
            .iam_call(&[("Action", "CreateAccessKey"), ("UserName", name)])
            .await;
        AwsUser {
            user_name: name.to_owned(),
            arn: xml_text(&user, "Arn"),
            access_key_id: xml_text(&key, "AccessKeyId"),
            secret_access_key: xml_text(&key, "SecretAccessKey"),
        }
    }

    /// Turns SigV4 verification on (`POST /moto-api/reset-auth`, body `0`):
    /// from now on only requests signed with the key of an existing IAM user
    /// succeed; others get 403 (`InvalidClientTokenId`,
    /// `SignatureDoesNotMatch`). moto does not check the request date. A
    /// request with no `Authorization` header at all gets 500 from moto
    /// (`KeyError: HTTP_AUTHORIZATION`), not 403: test refusals with a badly
    /// signed request instead.
    pub async fn enable_sigv4_verification(&self) {
        self.moto_api("reset-auth", Some("0")).await;
    }

    /// Turns SigV4 verification off again (`reset-auth` with body `inf`).
    pub async fn disable_sigv4_verification(&self) {
        self.moto_api("reset-auth", Some("inf")).await;
    }

    async fn moto_api(&self, path: &str, body: Option<&str>) {
        let url = format!("{}/moto-api/{path}", self.endpoint());
        let mut req = self.client.post(&url);
        if let Some(body) = body {
            req = req
                .header("Content-Type", "text/plain")
                .body(body.to_owned());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            panic!("POST {url}: {status}: {text}");
        }
    }

    /// An IAM query API call routed to IAM by a (fake) credential scope.
    pub(crate) async fn iam_call(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2010-05-08");
        for (k, v) in params {
            body.push_str(&format!("&{}={}", url_encode(k), url_encode(v)));
        }
        let resp = self
            .client
            .post(self.endpoint())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIATESTKIT/20250101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto IAM {body}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            panic!("moto IAM {body}: {status}: {text}");
        }
        text
    }
}

/// Text of the first `<tag>` element; panics when missing.
fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("no <{tag}> in moto response: {xml}"));
    let end = xml[start..]
        .find('<')
        .unwrap_or_else(|| panic!("unterminated <{tag}> in moto response: {xml}"));
    xml[start..start + end].to_owned()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
