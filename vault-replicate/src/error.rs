//! Errors of the replicator.

/// Everything a replication step can fail with.
///
/// Messages are lowercase, name what failed and never contain a secret value
/// or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Vault refused or failed a request.
    #[error("vault: {0}")]
    Vault(#[from] vault_client::Error),

    /// An AWS API call failed (after the SDK's own retries).
    #[error("{service} {operation} failed for {resource}: {message}")]
    Aws {
        /// `secretsmanager`, `s3` or `sns`.
        service: &'static str,
        /// The API operation, e.g. `PutSecretValue`.
        operation: &'static str,
        /// The secret name, object key or topic.
        resource: String,
        /// The AWS error code and message.
        message: String,
        /// Whether the failure was throttling or a server error (the SDK already retried it).
        retryable: bool,
    },

    /// A secret cannot be written because a secret with the same name exists
    /// and is not managed by the replicator.
    #[error(
        "{name} exists and is not managed by vault-replicate (no managed-by=vault-replicate tag); \
         left untouched (set REPLICATE_ADOPT=true to take it over)"
    )]
    Unmanaged {
        /// The target name.
        name: String,
    },

    /// A name or tag rendered for a secret is not acceptable to the target.
    #[error("invalid {what} {value:?}: {problem}")]
    InvalidName {
        /// `secret name`, `tag value`, `object key`.
        what: &'static str,
        /// The rejected value (a name or path, never a secret value).
        value: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A value is larger than the target accepts.
    #[error(
        "the value of {name} has {bytes} bytes; {target} accepts at most {max}: not written \
         (split the Vault secret, or use REPLICATE_GRANULARITY=key)"
    )]
    TooLarge {
        /// The target name.
        name: String,
        /// The value's size in bytes.
        bytes: usize,
        /// The target's limit.
        max: usize,
        /// `Secrets Manager`.
        target: &'static str,
    },

    /// The run reached its deadline before the snapshots were taken.
    #[error(
        "the deadline came before the snapshots were complete: nothing was written \
         (give the run more time, or shard it by folder)"
    )]
    Deadline,

    /// The value of a secret cannot be serialized.
    #[error("cannot serialize the value of {path}: {problem}")]
    Serialize {
        /// The Vault path.
        path: String,
        /// What went wrong (never the value).
        problem: String,
    },
}

impl Error {
    /// Whether the failure was transient (throttling, 5xx, connection): a
    /// later run may succeed without any change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Vault(e) => e.is_retryable(),
            Self::Aws { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// A configuration value is missing or malformed: the one configuration
/// error of every vault-aws crate ([`vault_client::ConfigError`]).
pub use vault_client::ConfigError;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
