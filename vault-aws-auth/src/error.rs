//! The error type of the AWS login methods.

use std::time::SystemTime;

/// Why an AWS IAM or EC2 login could not be prepared.
///
/// Messages are lowercase, say what failed and what to do, and never contain
/// an AWS secret access key, a session token, a signature or a Vault token.
/// [`AwsIamAuth`](crate::AwsIamAuth) and [`Ec2Auth`](crate::Ec2Auth) return it
/// from their payload builders and wrap it as the `source` of a
/// [`vault_client::Error::Auth`] in `login`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsAuthError {
    /// No credential source produced AWS credentials.
    #[error(
        "no AWS credentials found; tried {tried}. On Lambda the execution role provides them; on ECS \
         give the task a task role; elsewhere set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    )]
    NoCredentials {
        /// The sources that were tried, in order.
        tried: String,
        /// What the last source reported.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A credential source failed (it was configured but did not work).
    #[error("cannot load AWS credentials from {provider}: {problem}")]
    CredentialsFailed {
        /// The provider (e.g. `default chain`, `injected provider`).
        provider: String,
        /// What went wrong (never a secret).
        problem: String,
        /// The provider's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The credentials the provider returned have already expired.
    #[error(
        "the AWS credentials from {provider} expired {ago_secs} s ago; refresh them (e.g. `aws sso login`, \
         a new session token) or let the default chain fetch role credentials"
    )]
    ExpiredCredentials {
        /// Name of the provider that returned them.
        provider: String,
        /// How long ago they expired.
        ago_secs: u64,
        /// When they expired.
        expired_at: SystemTime,
    },

    /// `sts:AssumeRole` failed.
    #[error(
        "cannot assume role {role_arn} (VAULT_ASSUMED_ROLE_ARN): {problem}; check that the role's trust \
         policy allows the current principal and that it may call sts:AssumeRole"
    )]
    AssumeRole {
        /// The role that was to be assumed.
        role_arn: String,
        /// What STS said.
        problem: String,
        /// The SDK error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The request could not be signed.
    #[error("cannot sign the sts:GetCallerIdentity request: {0}")]
    Signing(String),

    /// The EC2 instance metadata service failed.
    #[error("instance metadata service (IMDSv2) at {endpoint}: {problem}")]
    Imds {
        /// The IMDS endpoint.
        endpoint: String,
        /// What went wrong and what to do.
        problem: String,
        /// The transport error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A file (EC2 nonce) could not be read or written.
    #[error("{what} {path}: {problem}")]
    File {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        problem: String,
    },
}

impl AwsAuthError {
    /// Whether trying again later may succeed (network trouble, throttling,
    /// an IMDS or credential endpoint that did not answer).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::CredentialsFailed { .. } | Self::AssumeRole { .. } => true,
            Self::Imds { source, .. } => source.is_some(),
            _ => false,
        }
    }
}
