//! The crate's error type.

/// Everything provisioning, delivery and AppRole login can fail with.
///
/// Messages are lowercase, say what failed and what to do, and never contain a
/// token, secret_id or wrapping token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy the role would be bound to does not exist.
    #[error("policy {0} does not exist in Vault; create it first")]
    PolicyMissing(String),

    /// The role does not exist in Vault (rotation of a role never provisioned).
    #[error("approle role {0} does not exist in Vault; provision it first")]
    RoleMissing(String),

    /// Vault refused or failed a request.
    #[error(transparent)]
    Vault(#[from] vault_client::Error),

    /// A role specification, CloudFormation property or setting is
    /// invalid, or the Vault client could not be configured: the one
    /// configuration error of every vault-aws crate (see [`Error::invalid`]).
    #[error(transparent)]
    Config(#[from] vault_client::ConfigError),

    /// The credential store could not be read or written.
    #[error("credential store {location}: {message}")]
    Store {
        /// Where (`s3://bucket/key`, a file path).
        location: String,
        /// What failed.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The role belongs to another resource (another stack, or another
    /// resource of the same stack).
    #[error(
        "approle role {role} belongs to {owner}; give this resource its own RoleName, or remove the role from that stack first"
    )]
    OwnedByOther {
        /// The Vault role name.
        role: String,
        /// Its owner.
        owner: crate::store::Owner,
    },

    /// Delivered credentials are missing or cannot be used.
    #[error("approle credentials: {0}")]
    Credentials(String),
}

impl Error {
    /// A value that cannot be used: the field, property or variable, the
    /// form it must have, then what is wrong (never a secret value); the
    /// argument order of [`vault_client::ConfigError::invalid`].
    pub fn invalid(
        field: impl Into<std::borrow::Cow<'static, str>>,
        expected: impl Into<std::borrow::Cow<'static, str>>,
        problem: impl Into<String>,
    ) -> Self {
        Self::Config(vault_client::ConfigError::invalid(field, expected, problem))
    }

    pub(crate) fn store(
        location: impl Into<String>,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Store {
            location: location.into(),
            message: message.into(),
            source,
        }
    }

    /// Whether retrying may succeed (Vault 429/5xx, connection failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Vault(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
