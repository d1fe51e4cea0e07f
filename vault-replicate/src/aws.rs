//! Building the AWS SDK configuration: region, endpoint and the SDK's own
//! retries.

use std::time::Duration;

/// The AWS SDK configuration the functions here build and take.
pub use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};

/// Default attempts per AWS call (the first plus retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How the SDK is set up.
///
/// Retries are the SDK's "standard" mode: exponential backoff with full
/// jitter on throttling errors (ThrottlingException, 429), 5xx and
/// connection/timeouts, never on other 4xx; our code does not retry on top
/// of it. The replicator's per-API rate limits keep it below the quotas so
/// throttling is rare.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// Region; `None` = the SDK's chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint for every service (moto, LocalStack, a VPC endpoint);
    /// `None` = AWS (the SDK also honours `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Attempts per call, first included (default 5).
    pub max_attempts: u32,
    /// First backoff (default 1 s in the SDK; jittered, doubling, max 20 s).
    pub initial_backoff: Option<Duration>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: None,
        }
    }
}

/// The SDK configuration for `settings`; credentials from the default chain
/// unless `credentials` is given.
pub async fn sdk_config(
    settings: &AwsSettings,
    credentials: Option<aws_credential_types::Credentials>,
) -> SdkConfig {
    let mut retry = RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1));
    if let Some(b) = settings.initial_backoff {
        retry = retry.with_initial_backoff(b);
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
    if let Some(r) = &settings.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &settings.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c);
    }
    loader.load().await
}

/// The SDK configuration of the tests (feature `test-util`): `endpoint`
/// (moto, or a proxy in front of it), region `us-east-1`, the static test
/// credentials `AKIDTEST` / `test-secret` (those of
/// `testkit::replication::env`), `max_attempts` per call and a 5 ms first
/// backoff.
#[cfg(feature = "test-util")]
pub async fn test_sdk_config(endpoint: &str, max_attempts: u32) -> SdkConfig {
    sdk_config(
        &AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.into()),
            max_attempts,
            initial_backoff: Some(std::time::Duration::from_millis(5)),
        },
        Some(aws_credential_types::Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "test-util",
        )),
    )
    .await
}

/// A Secrets Manager client for `config`.
pub fn secretsmanager_client(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// An S3 client for `config` (path-style addressing when an endpoint is set,
/// as moto and most S3-compatible servers need).
pub fn s3_client(config: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let c = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(c)
}

/// An SNS client for `config`.
pub fn sns_client(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}
