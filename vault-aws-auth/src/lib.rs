//! AWS IAM and EC2 login to HashiCorp Vault and OpenBao-compatible servers
//! that run Vault's `aws` auth method.
//!
//! | type | does |
//! |---|---|
//! | [`AwsIamAuth`] | signs `POST sts:GetCallerIdentity` with SigV4 (credentials from the `aws-config` default chain: environment, profile, web identity, ECS container endpoint, IMDSv2, Lambda) and logs in at `auth/<mount>/login`; optional signed `X-Vault-AWS-IAM-Server-ID`, regional STS endpoints, an assumed role; [`AwsIamAuth::login_payload`] for callers who send the login themselves |
//! | [`Ec2Auth`] | logs in with the IMDSv2 PKCS7 identity document and keeps Vault's nonce (memory, optionally a 0600 file) for re-login |
//! | [`Imds`] | EC2 instance metadata (IMDSv2) through `aws-config`'s client: token cached and renewed, retries, timeouts |
//! | [`AwsAuthError`] | what went wrong before Vault was asked (no or expired credentials, AssumeRole, IMDS) |
//!
//! Both implement [`vault_client::VaultAuth`], so the proxy, the ECS
//! entrypoint and the replicator use them through `Arc<dyn VaultAuth>`.
//! Both read their settings through an injectable lookup
//! ([`AwsIamAuth::from_lookup`], [`Ec2Auth::from_lookup`]) with the variable
//! names of hashicorp/vault-lambda-extension.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vault_aws_auth::AwsIamAuth;
//! use vault_client::{VaultAuth, VaultClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // VAULT_AUTH_ROLE, VAULT_AUTH_PROVIDER, VAULT_IAM_SERVER_ID, VAULT_STS_ENDPOINT_REGION, ...
//! let auth: Arc<dyn VaultAuth> = Arc::new(AwsIamAuth::from_lookup(|k| std::env::var(k).ok())?);
//! let client = VaultClient::from_env()?;
//! let login = auth.login(&client).await?;
//! println!("token accessor {}, ttl {:?}", login.accessor, login.ttl());
//! let client = client.with_token(login.client_token);
//! # Ok(()) }
//! ```
//!
//! Safety: the signed headers (signature, session token), the nonce and the
//! Vault token are never shown by `Debug`, errors or logs. Errors say what to
//! do: a Vault refusal carries Vault's words and a hint (for example "the
//! mount requires X-Vault-AWS-IAM-Server-ID: set VAULT_IAM_SERVER_ID").
//!
//! | feature | enables |
//! |---|---|
//! | `sso` (default) | AWS IAM Identity Center (SSO) profiles in the default credential chain (aws-sdk-sso, aws-sdk-ssooidc); the Lambda extension leaves it out to stay small |
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod credentials;
mod ec2;
mod error;
mod hints;
mod iam;
mod imds;
mod sdk_http;

pub use ec2::{Ec2Auth, Ec2AuthBuilder, PKCS7_PATH};
pub use error::AwsAuthError;
pub use iam::{
    ASSUME_ROLE_SESSION_NAME, AwsIamAuth, AwsIamAuthBuilder, DEFAULT_MOUNT, FORM_CONTENT_TYPE,
    GET_CALLER_IDENTITY_BODY, GLOBAL_STS_ENDPOINT, IAM_SERVER_ID_HEADER, IamLoginPayload,
    regional_sts_endpoint, sts_host_region,
};
pub use imds::{DEFAULT_IMDS_ENDPOINT, IMDS_TOKEN_PATH, Imds};
pub use vault_client::write_private_file;

/// Re-exported so callers can inject credentials without naming the crate.
pub use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
