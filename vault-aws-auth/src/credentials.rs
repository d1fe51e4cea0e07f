//! Where AWS credentials come from: an injected provider or the `aws-config`
//! default chain, optionally followed by `sts:AssumeRole`, behind a small
//! cache that hands out credentials only while they stay valid for a while.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::region::Region;
use tokio::sync::OnceCell;

use crate::error::AwsAuthError;
use crate::sdk_http::ReqwestHttpClient;

/// Credentials that expire sooner than this are fetched again.
pub(crate) const REFRESH_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The sources of the default chain, in the order `aws-config` tries them.
pub(crate) const DEFAULT_CHAIN_SOURCES: &str = "environment variables (AWS_ACCESS_KEY_ID, \
     AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the shared profile (AWS_PROFILE, ~/.aws/config, \
     ~/.aws/credentials), web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), the ECS \
     container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI \
     + AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]) and EC2 instance metadata (IMDSv2)";

/// Role to assume before signing.
#[derive(Debug, Clone)]
pub(crate) struct AssumeRoleConfig {
    pub(crate) role_arn: String,
    pub(crate) session_name: String,
    pub(crate) region: String,
    pub(crate) endpoint_url: Option<String>,
}

pub(crate) struct CredentialSource {
    injected: Option<SharedCredentialsProvider>,
    chain_region: Option<String>,
    chain: OnceCell<SharedCredentialsProvider>,
    assume: Option<AssumeRoleConfig>,
    sts: OnceCell<aws_sdk_sts::Client>,
    /// The HTTP client of the chain's providers and of STS (see `sdk_http`).
    http: SharedHttpClient,
    cache: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSource")
            .field(
                "provider",
                &if self.injected.is_some() {
                    "injected"
                } else {
                    "default chain"
                },
            )
            .field("assume_role", &self.assume.as_ref().map(|a| &a.role_arn))
            .finish_non_exhaustive()
    }
}

impl CredentialSource {
    pub(crate) fn new(
        injected: Option<SharedCredentialsProvider>,
        chain_region: Option<String>,
        assume: Option<AssumeRoleConfig>,
    ) -> Self {
        Self {
            injected,
            chain_region,
            chain: OnceCell::new(),
            assume,
            sts: OnceCell::new(),
            http: ReqwestHttpClient::shared(),
            cache: Mutex::new(None),
        }
    }

    fn provider_label(&self) -> &'static str {
        if self.injected.is_some() {
            "the injected credentials provider"
        } else {
            "the default credential chain"
        }
    }

    async fn base_provider(&self) -> SharedCredentialsProvider {
        if let Some(p) = &self.injected {
            return p.clone();
        }
        self.chain
            .get_or_init(|| async {
                let conf = aws_config::provider_config::ProviderConfig::default()
                    .with_http_client(self.http.clone());
                let mut builder =
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .configure(conf);
                if let Some(region) = &self.chain_region {
                    builder = builder.region(Region::new(region.clone()));
                }
                SharedCredentialsProvider::new(builder.build().await)
            })
            .await
            .clone()
    }

    /// Credentials valid for at least [`REFRESH_WINDOW`] (or without expiry).
    pub(crate) async fn credentials(&self) -> Result<Credentials, AwsAuthError> {
        let now = vault_client::clock::wall();
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.as_ref()
            && c.expiry().is_some_and(|e| e > now + REFRESH_WINDOW)
        {
            return Ok(c.clone());
        }
        let base = self.base_provider().await;
        let creds = match &self.assume {
            None => {
                let creds = base
                    .provide_credentials()
                    .await
                    .map_err(|e| self.map_provider_error(e))?;
                check_expiry(&creds, self.provider_label())?;
                creds
            }
            Some(assume) => self.assume_role(assume, base).await?,
        };
        if let Ok(mut cache) = self.cache.lock() {
            *cache = creds.expiry().is_some().then(|| creds.clone());
        }
        Ok(creds)
    }

    fn map_provider_error(&self, e: CredentialsError) -> AwsAuthError {
        let detail = vault_client::error_chain(&e);
        match e {
            CredentialsError::CredentialsNotLoaded(_) if self.injected.is_none() => {
                AwsAuthError::NoCredentials {
                    tried: DEFAULT_CHAIN_SOURCES.to_owned(),
                    source: Some(Box::new(e)),
                }
            }
            CredentialsError::CredentialsNotLoaded(_) => AwsAuthError::NoCredentials {
                tried: self.provider_label().to_owned(),
                source: Some(Box::new(e)),
            },
            other => AwsAuthError::CredentialsFailed {
                provider: self.provider_label().to_owned(),
                problem: detail,
                source: Some(Box::new(other)),
            },
        }
    }

    async fn assume_role(
        &self,
        assume: &AssumeRoleConfig,
        base: SharedCredentialsProvider,
    ) -> Result<Credentials, AwsAuthError> {
        // Fail with the chain's own words when there is nothing to assume the role with.
        let creds = base
            .provide_credentials()
            .await
            .map_err(|e| self.map_provider_error(e))?;
        check_expiry(&creds, self.provider_label())?;
        let client = self
            .sts
            .get_or_init(|| async {
                let mut conf = aws_sdk_sts::Config::builder()
                    .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
                    .region(Region::new(assume.region.clone()))
                    .http_client(self.http.clone())
                    .credentials_provider(base.clone());
                if let Some(url) = &assume.endpoint_url {
                    conf = conf.endpoint_url(url.clone());
                }
                aws_sdk_sts::Client::from_conf(conf.build())
            })
            .await;
        let out = client
            .assume_role()
            .role_arn(&assume.role_arn)
            .role_session_name(&assume.session_name)
            .send()
            .await
            .map_err(|e| AwsAuthError::AssumeRole {
                role_arn: assume.role_arn.clone(),
                problem: sdk_error_text(&e),
                source: Some(Box::new(e)),
            })?;
        let c = out.credentials().ok_or_else(|| AwsAuthError::AssumeRole {
            role_arn: assume.role_arn.clone(),
            problem: "the answer holds no credentials".to_owned(),
            source: None,
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            expiry,
            "sts:AssumeRole",
        ))
    }
}

/// Errors for credentials that are already expired.
pub(crate) fn check_expiry(creds: &Credentials, provider: &str) -> Result<(), AwsAuthError> {
    if let Some(expiry) = creds.expiry()
        && let Ok(ago) = vault_client::clock::wall().duration_since(expiry)
    {
        return Err(AwsAuthError::ExpiredCredentials {
            provider: provider.to_owned(),
            ago_secs: ago.as_secs(),
            expired_at: expiry,
        });
    }
    Ok(())
}

fn sdk_error_text<E, R>(e: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(service) = e.as_service_error() {
        let code = service.code().unwrap_or("error");
        let message = service.message().unwrap_or("");
        return format!("{code}: {message}");
    }
    vault_client::error_chain(e)
}
