//! [`Imds`]: EC2 instance metadata (IMDSv2) through `aws-config`'s client,
//! which fetches, caches and renews the session token, retries and times
//! out; it runs over this crate's HTTP client (see `sdk_http`). Used by the
//! EC2 login and by `vault-exec`'s role discovery.

use std::fmt;
use std::time::Duration;

use aws_config::imds::client::error::{ImdsError, TokenError};
use aws_config::provider_config::ProviderConfig;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::error::AwsAuthError;
use crate::sdk_http::ReqwestHttpClient;

/// The instance metadata endpoint of EC2 (and of ECS on EC2).
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// Path of the IMDSv2 session token.
pub const IMDS_TOKEN_PATH: &str = "/latest/api/token";

/// Attempts per IMDS read (the first and two retries of a failed connection,
/// a timeout or a 5xx).
const ATTEMPTS: u32 = 3;

/// An IMDSv2 client for one endpoint.
#[derive(Clone)]
pub struct Imds {
    endpoint: String,
    client: aws_config::imds::Client,
}

impl fmt::Debug for Imds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imds")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Imds {
    /// A client of the IMDS at `endpoint` (an `http(s)://host[:port]` URL);
    /// `timeout` bounds connecting and reading in each attempt.
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, String> {
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        let config = ProviderConfig::default().with_http_client(ReqwestHttpClient::shared());
        let client = aws_config::imds::Client::builder()
            .configure(&config)
            .endpoint(&endpoint)
            .map_err(|e| format!("the IMDS endpoint {endpoint} is not a valid URL: {e}"))?
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .operation_attempt_timeout(timeout)
            .operation_timeout(timeout * ATTEMPTS + Duration::from_secs(1))
            .max_attempts(ATTEMPTS)
            .build();
        Ok(Self { endpoint, client })
    }

    /// The endpoint, as errors name it.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `GET path` with an IMDSv2 token; `what` names the document in errors.
    pub async fn get(&self, path: &str, what: &str) -> Result<String, AwsAuthError> {
        match self.client.get(path).await {
            Ok(value) => Ok(value.as_ref().to_owned()),
            Err(e) => Err(self.error(path, what, e)),
        }
    }

    fn error(&self, path: &str, what: &str, e: ImdsError) -> AwsAuthError {
        let (problem, source) = match e {
            ImdsError::FailedToLoadToken(ref failed) => {
                let status = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<SdkError<TokenError, HttpResponse>>())
                    .and_then(SdkError::raw_response)
                    .map(|r| r.status().as_u16());
                match status {
                    // IMDS answered and refused (e.g. 403: IMDS is disabled on the instance).
                    Some(status) => (format!("PUT {IMDS_TOKEN_PATH} answered {status}"), None),
                    None if failed.is_dispatch_failure() => (
                        "cannot get an IMDSv2 token (not on EC2, or the hop limit is too low for \
                         a container: set the instance's HttpPutResponseHopLimit to 2)"
                            .to_owned(),
                        Some(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
                    ),
                    None => (
                        format!(
                            "cannot get an IMDSv2 token: {}",
                            vault_client::error_chain(&e)
                        ),
                        None,
                    ),
                }
            }
            ImdsError::ErrorResponse(ref r) => (
                format!("GET {path} answered {}", r.response().status().as_u16()),
                None,
            ),
            other => (format!("cannot get {what}"), Some(Box::new(other) as _)),
        };
        AwsAuthError::Imds {
            endpoint: self.endpoint.clone(),
            problem,
            source,
        }
    }
}
