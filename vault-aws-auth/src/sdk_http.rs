//! The HTTP client of this crate's AWS SDK calls: the default credential
//! chain (ECS container endpoint, IMDSv2, web identity and SSO through STS)
//! and `sts:AssumeRole`.
//!
//! It is `reqwest`, the HTTP and TLS stack the Vault client already uses, so
//! a binary that logs in with AWS IAM links one HTTP client instead of two:
//! the SDK's default client (`aws-smithy-http-client` over `hyper-util`) is
//! not compiled in (the workspace turns `default-https-client` off for
//! `aws-config` and `aws-sdk-sts`). That is most of what brought the Lambda
//! extension under 6 MB (docs/benchmarks.md, "Size of the extension").
//!
//! Like the SDK's default client it ignores `HTTP(S)_PROXY`: the credential
//! endpoints are link-local or regional AWS endpoints, and a proxy must not see
//! the container credentials' authorization token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// The connector timeouts an SDK client asks for; one `reqwest` client (and
/// its connection pool) per distinct pair.
type Timeouts = (Option<Duration>, Option<Duration>);

/// An [`HttpClient`] for the AWS SDK backed by `reqwest`.
#[derive(Debug, Default)]
pub(crate) struct ReqwestHttpClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl ReqwestHttpClient {
    /// A shared client for `aws-config` providers and SDK clients.
    pub(crate) fn shared() -> SharedHttpClient {
        SharedHttpClient::new(Self::default())
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector_for((settings.connect_timeout(), settings.read_timeout()))
    }
}

impl ReqwestHttpClient {
    fn connector_for(&self, key: Timeouts) -> SharedHttpConnector {
        let mut connectors = match self.connectors.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        connectors
            .entry(key)
            .or_insert_with(|| connector(key))
            .clone()
    }
}

fn connector((connect, read): Timeouts) -> SharedHttpConnector {
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(t) = connect {
        builder = builder.connect_timeout(t);
    }
    if let Some(t) = read {
        builder = builder.read_timeout(t);
    }
    match builder.build() {
        Ok(client) => SharedHttpConnector::new(ReqwestConnector { client }),
        // Every call then fails with this reason instead of the process
        // panicking (reqwest fails here only if TLS cannot be initialised).
        Err(e) => SharedHttpConnector::new(Unavailable(format!(
            "cannot build the HTTP client for AWS calls: {e}"
        ))),
    }
}

#[derive(Debug)]
struct ReqwestConnector {
    client: reqwest::Client,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move { send(&client, request).await })
    }
}

async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let method = reqwest::Method::from_bytes(request.method().as_bytes())
        .map_err(|e| ConnectorError::user(Box::new(e)))?;
    // Every request these SDK calls make has an in-memory body (a form, or
    // nothing); a streaming one is refused rather than sent empty.
    let body = request.body().bytes().map(<[u8]>::to_vec).ok_or_else(|| {
        ConnectorError::user("a streaming request body is not supported by this HTTP client".into())
    })?;
    let mut builder = client.request(method, request.uri());
    for (name, value) in request.headers().iter() {
        builder = builder.header(name, value);
    }
    let response = builder.body(body).send().await.map_err(connector_error)?;
    let status = StatusCode::try_from(response.status().as_u16())
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(connector_error)?;
    let mut out = HttpResponse::new(status, SdkBody::from(bytes));
    for (name, value) in &headers {
        // AWS answers with ASCII header values; one that is not is left out.
        if let Ok(value) = value.to_str() {
            out.headers_mut()
                .append(name.as_str().to_owned(), value.to_owned());
        }
    }
    Ok(out)
}

/// Maps a `reqwest` error to the kind the SDK's retry policy understands:
/// timeouts and connection failures are retried, the rest are not.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(Box::new(e))
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(Box::new(e))
    } else {
        ConnectorError::other(Box::new(e), None)
    }
}

/// The connector used when the `reqwest` client could not be built.
#[derive(Debug)]
struct Unavailable(String);

impl HttpConnector for Unavailable {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let reason = self.0.clone();
        HttpConnectorFuture::new(async move { Err(ConnectorError::other(reason.into(), None)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_method_headers_and_body_and_returns_the_answer() {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path("/sts"))
            .and(wiremock::matchers::header("x-test", "one"))
            .and(wiremock::matchers::body_string("Action=AssumeRole"))
            .respond_with(
                wiremock::ResponseTemplate::new(403)
                    .insert_header("x-amzn-requestid", "r-1")
                    .set_body_string("<Error/>"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let connector = ReqwestHttpClient::default().connector_for((None, None));
        let mut request = HttpRequest::new(SdkBody::from("Action=AssumeRole"));
        request.set_method("POST").expect("method");
        request
            .set_uri(format!("{}/sts", server.uri()))
            .expect("uri");
        request.headers_mut().insert("x-test", "one");
        let response = connector.call(request).await.expect("an answer");
        assert_eq!(response.status().as_u16(), 403);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r-1"));
        assert_eq!(response.body().bytes(), Some(&b"<Error/>"[..]));
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let connector = ReqwestHttpClient::default().connector_for((None, None));
        let mut request = HttpRequest::empty();
        request
            .set_uri(format!("http://127.0.0.1:{port}/"))
            .expect("uri");
        let err = connector.call(request).await.expect_err("nothing listens");
        assert!(err.is_io(), "{err:?}");
    }

    #[test]
    fn one_connector_per_timeout_pair() {
        let client = ReqwestHttpClient::default();
        let short = (Some(Duration::from_secs(1)), None);
        client.connector_for(short);
        client.connector_for(short);
        client.connector_for((None, None));
        assert_eq!(client.connectors.lock().map(|c| c.len()).unwrap_or(0), 2);
    }
}
