//! AwsIamAuth proven by a real SigV4 verifier: moto's STS checks the signed
//! request our payload carries, and a Vault-like login server
//! (`testkit::IamLoginServer`) runs the whole login over HTTP.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use testkit::{AwsUser, IamLoginServer, Moto};
use vault_aws_auth::{AwsIamAuth, Credentials, IamLoginPayload, SharedCredentialsProvider};
use vault_client::{ClientConfig, ExposeSecret, VaultAuth, VaultClient};

fn provider(access_key: &str, secret: &str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(access_key, secret, None, None, "test"))
}

fn user_provider(user: &AwsUser) -> SharedCredentialsProvider {
    provider(&user.access_key_id, &user.secret_access_key)
}

struct Decoded {
    url: String,
    body: String,
    headers: BTreeMap<String, Vec<String>>,
}

fn decode(p: &IamLoginPayload) -> Decoded {
    let s = |v: &str| String::from_utf8(B64.decode(v).unwrap()).unwrap();
    Decoded {
        url: s(&p.iam_request_url),
        body: s(&p.iam_request_body),
        headers: serde_json::from_str(&s(p.iam_request_headers.expose_secret())).unwrap(),
    }
}

/// Sends the decoded request to moto as Vault's server would send it to STS.
async fn replay(moto: &Moto, d: &Decoded, body: &str, overrides: &[(&str, &str)]) -> (u16, String) {
    let url = reqwest::Url::parse(&d.url).unwrap();
    let mut req = reqwest::Client::new()
        .post(format!("{}{}", moto.endpoint(), url.path()))
        .header("host", url.host_str().unwrap())
        .body(body.to_owned());
    for (name, values) in &d.headers {
        let value = overrides
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_else(|| values.join(","));
        req = req.header(name.as_str(), value);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn vault(addr: &str) -> VaultClient {
    let mut config = ClientConfig::new(addr).unwrap();
    config = config.with_max_retries(0);
    VaultClient::new(config).unwrap()
}

#[tokio::test]
async fn moto_sts_verifies_the_signed_payload_and_rejects_tampering() {
    let moto = Moto::start().await;
    let user = moto.create_iam_user("vault-login").await;
    moto.enable_sigv4_verification().await;

    let auth = AwsIamAuth::builder()
        .role("app")
        .server_id("vault.example.com")
        .credentials_provider(user_provider(&user))
        .build()
        .unwrap();
    let payload = auth.login_payload().await.unwrap();
    let d = decode(&payload);
    assert_eq!(d.url, "https://sts.amazonaws.com/");
    assert_eq!(d.body, "Action=GetCallerIdentity&Version=2011-06-15");
    let authorization = d.headers["Authorization"][0].clone();
    assert!(
        authorization
            .contains("SignedHeaders=content-type;host;x-amz-date;x-vault-aws-iam-server-id"),
        "{authorization}"
    );
    assert!(
        authorization.contains("/us-east-1/sts/aws4_request"),
        "{authorization}"
    );

    // The genuine request: STS names the user.
    let (status, text) = replay(&moto, &d, &d.body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("<Arn>{}</Arn>", user.arn)), "{text}");

    // A tampered body, a tampered signed header: refused.
    let (status, text) = replay(
        &moto,
        &d,
        "Action=GetCallerIdentity&Version=2011-06-16",
        &[],
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    let (status, text) = replay(
        &moto,
        &d,
        &d.body,
        &[("X-Vault-AWS-IAM-Server-ID", "evil.example.com")],
    )
    .await;
    assert_eq!(status, 403, "{text}");

    // The right key id with a wrong secret: refused.
    let wrong = AwsIamAuth::builder()
        .role("app")
        .credentials_provider(provider(&user.access_key_id, "not-the-secret"))
        .build()
        .unwrap();
    let d = decode(&wrong.login_payload().await.unwrap());
    let (status, text) = replay(&moto, &d, &d.body, &[]).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");

    // A regional endpoint is signed for its own region and verifies too.
    let regional = AwsIamAuth::builder()
        .role("app")
        .sts_region("eu-west-1")
        .credentials_provider(user_provider(&user))
        .build()
        .unwrap();
    let d = decode(&regional.login_payload().await.unwrap());
    assert_eq!(d.url, "https://sts.eu-west-1.amazonaws.com/");
    assert!(d.headers["Authorization"][0].contains("/eu-west-1/sts/aws4_request"));
    let (status, text) = replay(&moto, &d, &d.body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&user.arn), "{text}");

    // Debug of the payload and of the auth shows no secret.
    let debug = format!("{payload:?} {auth:?}");
    assert!(
        !debug.contains(&user.secret_access_key) && !debug.contains("Signature="),
        "{debug}"
    );
}

#[tokio::test]
async fn login_end_to_end_through_a_vault_like_server() {
    let moto = Moto::start().await;
    let user = moto.create_iam_user("app-user").await;
    let other = moto.create_iam_user("someone-else").await;
    let role_arn = testkit::create_assumable_role(&moto, "app-role", &user).await;
    moto.enable_sigv4_verification().await;

    let server = IamLoginServer::builder(&moto.endpoint())
        .server_id("vault.example.com")
        .role("app", &[&user.arn])
        .role("other", &[&other.arn])
        .role("by-role", &[&role_arn])
        .policies(&["default", "app-read"])
        .start()
        .await;
    let client = vault(&server.addr());
    let base = || {
        AwsIamAuth::builder()
            .server_id("vault.example.com")
            .credentials_provider(user_provider(&user))
    };

    // Global endpoint.
    let auth = base().role("app").build().unwrap();
    assert_eq!(auth.method(), "aws-iam");
    let login = auth.login(&client).await.unwrap();
    assert!(
        login
            .client_token
            .expose_secret()
            .starts_with("hvs.testkit")
    );
    assert_eq!(login.policies, vec!["default", "app-read"]);
    assert!(login.renewable);
    assert_eq!(login.metadata["canonical_arn"], user.arn);
    assert!(!format!("{login:?}").contains(login.client_token.expose_secret()));

    // Regional endpoint.
    let auth = base().role("app").sts_region("us-west-2").build().unwrap();
    auth.login(&client).await.unwrap();
    let seen = server.observed();
    assert_eq!(
        seen.last().unwrap().url,
        "https://sts.us-west-2.amazonaws.com/"
    );
    assert!(seen.iter().all(|o| {
        o.signed_headers
            .contains(&"x-vault-aws-iam-server-id".to_owned())
    }));

    // Assumed role: AssumeRole in moto, then a login as the role.
    let auth = base()
        .role("by-role")
        .assumed_role_arn(&role_arn)
        .assume_role_endpoint_url(moto.endpoint())
        .build()
        .unwrap();
    let login = auth.login(&client).await.unwrap();
    assert_eq!(login.metadata["canonical_arn"], role_arn);
    assert!(
        login.metadata["client_arn"]
            .starts_with("arn:aws:sts::123456789012:assumed-role/app-role/vault-aws-auth"),
        "{:?}",
        login.metadata
    );
    assert!(
        server
            .observed()
            .last()
            .unwrap()
            .headers
            .contains_key("x-amz-security-token")
    );

    // Refusals carry Vault's words and a hint.
    let no_id = AwsIamAuth::builder()
        .role("app")
        .credentials_provider(user_provider(&user))
        .build()
        .unwrap();
    let e = no_id.login(&client).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    let msg = e.to_string();
    assert!(
        msg.contains("missing header") && msg.contains("set VAULT_IAM_SERVER_ID"),
        "{msg}"
    );

    let e = base()
        .role("other")
        .build()
        .unwrap()
        .login(&client)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    let msg = e.to_string();
    assert!(
        msg.contains("does not belong to the role") && msg.contains("bound_iam_principal_arn"),
        "{msg}"
    );

    let e = base()
        .role("nope")
        .build()
        .unwrap()
        .login(&client)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("check VAULT_AUTH_ROLE"), "{e}");

    let wrong_secret = AwsIamAuth::builder()
        .role("app")
        .server_id("vault.example.com")
        .credentials_provider(provider(&user.access_key_id, "wrong-secret-key"))
        .build()
        .unwrap();
    let e = wrong_secret.login(&client).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("SignatureDoesNotMatch") && msg.contains("hint"),
        "{msg}"
    );
    assert!(!msg.contains("wrong-secret-key"), "{msg}");

    // Vault configured for a regional STS while the client signs for the
    // global endpoint: STS refuses the credential scope; the hint names the fix.
    let regional_vault = IamLoginServer::builder(&moto.endpoint())
        .sts_region("eu-west-1")
        .role("app", &[&user.arn])
        .start()
        .await;
    let e = base()
        .role("app")
        .build()
        .unwrap()
        .login(&vault(&regional_vault.addr()))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("Credential should be scoped to a valid region")
            && msg.contains("set VAULT_STS_ENDPOINT_REGION"),
        "{msg}"
    );
    base()
        .role("app")
        .sts_region("eu-west-1")
        .build()
        .unwrap()
        .login(&vault(&regional_vault.addr()))
        .await
        .unwrap();

    let e = base()
        .role("app")
        .mount("aws-other")
        .build()
        .unwrap()
        .login(&client)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("check VAULT_AUTH_PROVIDER"), "{e}");
}
