//! HTTP behaviour that a real server cannot be made to show on demand:
//! 5xx storms, malformed bodies, refused connections, timeouts. wiremock
//! `.expect(n)` makes each test fail when a call is missing or extra.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;
use vault_client::{
    ClientConfig, Error, ExposeSecret, SecretString, TokenAuth, TransportKind, VaultAuth,
    VaultClient,
};
use wiremock::matchers::{body_json, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "hvs.CAESIJ-very-secret-token-value";

fn client(server: &MockServer) -> VaultClient {
    let config = ClientConfig::new(&server.uri())
        .unwrap()
        .with_token(SecretString::from(TOKEN))
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_max_retries(3);
    VaultClient::new(config).unwrap()
}

fn vault_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "errors": [message] }))
}

fn lookup_self_body() -> serde_json::Value {
    json!({
        "request_id": "r1",
        "data": {
            "accessor": "acc-123", "id": TOKEN, "policies": ["default"],
            "ttl": 3600, "renewable": true, "type": "service", "path": "auth/token/create"
        }
    })
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(vault_error(503, "Vault is sealed"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(lookup_self_body()))
        .expect(1)
        .mount(&server)
        .await;

    let info = client(&server).lookup_self().await.unwrap();
    assert_eq!(info.accessor, "acc-123");
    assert_eq!(info.ttl(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn gives_up_after_max_retries_with_a_retryable_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(vault_error(502, "upstream down"))
        .expect(4) // 1 attempt + 3 retries
        .mount(&server)
        .await;
    let err = client(&server).lookup_self().await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(502));
    assert_eq!(err.vault_errors(), ["upstream down"]);
}

#[tokio::test]
async fn a_400_is_not_retried_and_shows_vaults_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(vault_error(400, "invalid role or secret ID"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .approle("approle")
        .login("role-1", Some(&SecretString::from("s3cr3t-id")))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.status(), Some(400));
    let msg = err.to_string();
    assert!(
        msg.contains("vault returned 400 Bad Request for POST /v1/auth/approle/login: invalid role or secret ID"),
        "{msg}"
    );
    assert!(!msg.contains("s3cr3t-id"));
}

#[tokio::test]
async fn a_429_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(vault_error(429, "rate limited").insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(lookup_self_body()))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).lookup_self().await.unwrap();
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = ClientConfig::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(2));
    let err = VaultClient::new(config)
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::Connect),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot reach vault for GET /v1/sys/health"),
        "{err}"
    );
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let config = ClientConfig::new(&server.uri())
        .unwrap()
        .with_timeout(Duration::from_millis(200))
        .with_max_retries(0);
    let err = VaultClient::new(config)
        .unwrap()
        .lookup_self()
        .await
        .unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::Timeout),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error_naming_the_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).lookup_self().await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.contains("unexpected response from vault for GET /v1/auth/token/lookup-self"),
        "{msg}"
    );

    // A success without the documented data is an error too, not a default.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"request_id": "x"})))
        .mount(&server)
        .await;
    let err = client(&server).lookup_self().await.unwrap_err();
    assert!(
        err.to_string().contains("the response has no data"),
        "{err}"
    );
}

#[tokio::test]
async fn a_non_json_error_page_is_shown_briefly() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string("<h1>Forbidden by\n proxy</h1>"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).lookup_self().await.unwrap_err();
    assert!(err.is_permission_denied());
    assert!(
        err.to_string()
            .contains("non-JSON body: <h1>Forbidden by proxy</h1>"),
        "{err}"
    );
}

#[tokio::test]
async fn sends_token_namespace_and_request_headers_and_lists_as_get() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/metadata/app/"))
        .and(query_param("list", "true"))
        .and(header("x-vault-token", TOKEN))
        .and(header("x-vault-namespace", "team-a"))
        .and(header("x-vault-request", "true"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"keys": ["db", "sub/"]}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let keys = client(&server)
        .with_namespace(Some("team-a"))
        .kv2("secret")
        .list("app")
        .await
        .unwrap();
    assert_eq!(keys, ["db", "sub/"]);
}

#[tokio::test]
async fn login_sends_no_token_and_wrapping_sets_the_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/role/web/secret-id"))
        .and(header("x-vault-wrap-ttl", "300s"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "wrap_info": {"token": "hvs.wrapping-secret", "accessor": "wacc", "ttl": 300,
                          "creation_path": "auth/approle/role/web/secret-id",
                          "wrapped_accessor": "sid-acc"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .and(body_json(json!({"role_id": "rid", "secret_id": "sid"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "auth": {"client_token": TOKEN, "accessor": "a", "lease_duration": 60, "renewable": true}
        })))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let request = vault_client::SecretIdRequest {
        wrap_ttl: Some(Duration::from_secs(300)),
        ..Default::default()
    };
    let generated = c
        .approle("approle")
        .generate_secret_id("web", &request)
        .await
        .unwrap();
    assert_eq!(generated.accessor(), "sid-acc");
    assert!(!format!("{generated:?}").contains("wrapping-secret"));

    let auth = c
        .approle("approle")
        .login("rid", Some(&SecretString::from("sid")))
        .await
        .unwrap();
    assert_eq!(auth.client_token.expose_secret(), TOKEN);
    let login = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/v1/auth/approle/login")
        .unwrap();
    assert!(
        !login.headers.contains_key("x-vault-token"),
        "login must not send a token"
    );
}

#[tokio::test]
async fn token_file_is_read_on_every_login() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .and(header_exists("x-vault-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(lookup_self_body()))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "hvs.first\n").unwrap();
    let auth = TokenAuth::from_file(&file);
    let c = client(&server).without_token();
    assert_eq!(
        auth.login(&c).await.unwrap().client_token.expose_secret(),
        "hvs.first"
    );
    std::fs::write(&file, "hvs.second").unwrap();
    let info = auth.login(&c).await.unwrap();
    assert_eq!(info.client_token.expose_secret(), "hvs.second");
    assert_eq!(info.accessor, "acc-123");
    assert_eq!(info.ttl(), Some(Duration::from_secs(3600)));

    std::fs::remove_file(&file).unwrap();
    let err = auth.login(&c).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("token login failed: cannot read token file"),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_token_is_a_clear_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(vault_error(403, "permission denied"))
        .expect(1)
        .mount(&server)
        .await;
    let err = TokenAuth::new(SecretString::from(TOKEN))
        .login(&client(&server))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("the token was refused"), "{err}");
}

#[tokio::test]
async fn health_reports_standby_and_sealed_without_retrying() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/sys/health"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({
            "initialized": true, "sealed": true, "standby": true, "version": "2.7.2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let health = client(&server).health().await.unwrap();
    assert_eq!(health.status, 503);
    assert!(health.sealed && !health.is_ready());
}

#[tokio::test]
async fn nothing_formatted_shows_a_secret() {
    const SECRET_ID: &str = "secret-id-9f8e7d";
    const WRAP: &str = "hvs.wrap-6c5b4a";
    const VALUE: &str = "db-password-1a2b3c";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "auth": {"client_token": TOKEN, "accessor": "a", "lease_duration": 60}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"data": {"password": VALUE}, "metadata": {"version": 3}}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/sys/wrapping/unwrap"))
        .respond_with(vault_error(
            400,
            "wrapping token is not valid or does not exist",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/broken"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&server)
        .await;

    let c = client(&server);
    let mut shown = vec![format!("{c:?}")];
    let auth = c
        .approle("approle")
        .login("rid", Some(&SecretString::from(SECRET_ID)))
        .await
        .unwrap();
    shown.push(format!("{auth:?}"));
    let secret = c.kv2("secret").read("app").await.unwrap().unwrap();
    assert_eq!(secret.data.get_str("password"), Some(VALUE));
    shown.push(format!("{secret:?}"));
    shown.push(format!(
        "{:?}",
        c.request(http::Method::POST, "x")
            .json(&json!({"secret_id": SECRET_ID}))
    ));

    let mut errors = vec![
        c.unwrap::<serde_json::Value>(&SecretString::from(WRAP))
            .await
            .unwrap_err(),
        c.request(http::Method::GET, "broken")
            .send()
            .await
            .unwrap()
            .json::<Vec<u8>>()
            .unwrap_err(),
        Error::auth("approle", "login refused", None),
        Error::from(
            ClientConfig::from_lookup(|k| (k == "VAULT_TOKEN").then(|| format!("{TOKEN} x")))
                .unwrap_err(),
        ),
    ];
    let refused = ClientConfig::new("http://127.0.0.1:1")
        .unwrap()
        .with_token(SecretString::from(TOKEN))
        .with_max_retries(0);
    errors.push(
        VaultClient::new(refused)
            .unwrap()
            .lookup_self()
            .await
            .unwrap_err(),
    );
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let timeout = ClientConfig::new(&slow.uri())
        .unwrap()
        .with_token(SecretString::from(TOKEN))
        .with_timeout(Duration::from_millis(100))
        .with_max_retries(0);
    errors.push(
        VaultClient::new(timeout)
            .unwrap()
            .lookup_self()
            .await
            .unwrap_err(),
    );
    errors.push(
        c.request(http::Method::GET, "a/../b")
            .send()
            .await
            .unwrap_err(),
    );
    for e in &errors {
        shown.push(format!("{e} | {e:?} | {:?}", std::error::Error::source(e)));
    }

    for text in &shown {
        for secret in [TOKEN, SECRET_ID, WRAP, VALUE] {
            assert!(!text.contains(secret), "{secret} leaked in: {text}");
        }
    }
}

#[tokio::test]
async fn an_address_with_a_path_prefix_keeps_it_with_or_without_a_trailing_slash() {
    // Vault behind a gateway at <gw>/vault: the Vault CLI sends /vault/v1/...
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/vault/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(lookup_self_body()))
        .expect(3)
        .mount(&server)
        .await;
    for address in [
        format!("{}/vault", server.uri()),
        format!("{}/vault/", server.uri()),
        format!("{}/vault//", server.uri()),
    ] {
        let config = ClientConfig::new(&address)
            .unwrap()
            .with_token(SecretString::from(TOKEN))
            .with_max_retries(0);
        let c = VaultClient::new(config).unwrap();
        assert_eq!(
            c.base_url().as_str(),
            format!("{}/vault/v1/", server.uri()),
            "{address}"
        );
        let info = c.lookup_self().await.unwrap();
        assert_eq!(info.accessor, "acc-123", "{address}");
    }
}
