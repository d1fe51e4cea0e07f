//! An API Gateway Lambda authorizer: lets a request through when it carries
//! one of a set of shared tokens, as `Authorization: Bearer <token>` or in a
//! cookie (`auth=<token>`), and denies everything else.
//!
//! One function serves both API flavours, told apart by the event:
//!
//! | event | response |
//! |---|---|
//! | HTTP API, payload format 2.0 (`"version": "2.0"`, `routeArn`, `cookies`) | simple: `{"isAuthorized": true, "context": {"client": "web"}}` |
//! | REST API REQUEST or TOKEN authorizer (`methodArn`), HTTP API payload 1.0 | IAM policy: `{"principalId", "policyDocument", "context"}` |
//!
//! The valid tokens come from `AUTHORIZER_TOKENS` and/or a Secrets Manager
//! secret (`AUTHORIZER_TOKENS_SECRET_ID`) holding several tokens, re-read
//! every `AUTHORIZER_TOKENS_REFRESH_SECONDS` so tokens can be rotated with an
//! overlap. They are compared in constant time (SHA-256 digests compared
//! with `subtle`, every token of the set, no early exit). No token is ever
//! logged, returned or printed by `Debug`; each decision is logged with its
//! reason and a non-secret client label (`env-N`, `secret-N`, or the client
//! name of the secret's JSON object form). See `docs/authorizer.md`.
//!
//! ```
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use vault_aws_lambda_authorizer::{Authorizer, AuthorizerConfig};
//!
//! let config = AuthorizerConfig::from_lookup(|k| match k {
//!     "AUTHORIZER_TOKENS" => Some("s3cr3t-token-0123456789".to_owned()),
//!     _ => None,
//! })?;
//! let authorizer = Authorizer::new(config, None);
//! let event = serde_json::json!({
//!     "version": "2.0", "type": "REQUEST",
//!     "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/orders",
//!     "headers": {"authorization": "Bearer s3cr3t-token-0123456789"},
//! });
//! let response = authorizer.authorize(&event).await?;
//! assert_eq!(response["isAuthorized"], true);
//! assert_eq!(response["context"]["client"], "env-1");
//! # Ok(()) }
//! ```
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | `MockTokenSource` (mockall) for downstream tests |
//!
//! The binary `lambda-authorizer` (this package's `src/main.rs`) runs
//! [`Authorizer`] under `lambda_runtime`.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod authorizer;
mod config;
mod request;
mod tokens;

#[cfg(any(test, feature = "test-util"))]
pub use authorizer::MockTokenSource;
pub use authorizer::{Authorizer, MAX_RETRY_AFTER_FAILURE, SecretsManagerSource, TokenSource};
pub use config::{AuthorizerConfig, DEFAULT_COOKIE_NAME, DEFAULT_REFRESH};
pub use request::{
    AuthorizerEvent, Credential, CredentialSource, DENIED_PRINCIPAL, Decision, DenyReason,
    EventKind, PolicyResource, RequestParts, extract_credential, response,
};
pub use tokens::{MAX_CLIENT_NAME_LEN, MAX_TOKEN_LEN, MIN_TOKEN_LEN, TokenSet, ValidToken};

/// A configuration variable with a bad value (or none at all).
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
#[non_exhaustive]
pub struct ConfigError {
    variable: &'static str,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, message: String) -> Self {
        Self { variable, message }
    }

    /// The variable at fault.
    pub fn variable(&self) -> &'static str {
        self.variable
    }
}

/// Token text that is not a valid token or token set (the message names the
/// position or client, never the token).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct TokenError {
    message: String,
}

impl TokenError {
    pub(crate) fn invalid(message: String) -> Self {
        Self { message }
    }
}

/// A [`TokenSource`] could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct SourceError {
    message: String,
}

impl SourceError {
    /// An error described by `message` (which must not hold a secret).
    pub fn new(message: String) -> Self {
        Self { message }
    }
}

/// [`Authorizer::authorize`] could not decide the event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizerError {
    /// The event is not an API Gateway authorizer event this function knows.
    #[error("unsupported event: {0}")]
    UnsupportedEvent(String),
}

impl AuthorizerError {
    fn unsupported_event(message: String) -> Self {
        Self::UnsupportedEvent(message)
    }
}
