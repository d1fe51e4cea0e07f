//! The client's error type.

use std::fmt;

use crate::config::ConfigError;

/// Everything a call to Vault can fail with.
///
/// Messages are lowercase, say what failed and, where there is one, what to
/// do. They never contain a token, secret_id, wrapping token or secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Vault answered with an error status.
    #[error("{}", api_message(*.status, .method, .path, .errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// Method of the request (`LIST` shows as `LIST`).
        method: String,
        /// Path of the request, e.g. `/v1/auth/token/lookup-self`.
        path: String,
        /// Vault's `errors` strings.
        errors: Vec<String>,
    },

    /// The request did not get an HTTP answer (connection refused, TLS
    /// failure, timeout, reset).
    #[error("cannot reach vault for {method} {path}: {kind}")]
    Transport {
        /// Method of the request.
        method: String,
        /// Path of the request.
        path: String,
        /// Connection, timeout or other.
        kind: TransportKind,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// Vault answered with a success status but a body that is not what the
    /// endpoint documents.
    #[error("unexpected response from vault for {method} {path}: {problem}")]
    Decode {
        /// Method of the request.
        method: String,
        /// Path of the request.
        path: String,
        /// What was wrong.
        problem: String,
    },

    /// An argument cannot be sent to Vault (a path with `..`, a token that is
    /// not a valid header value, ...).
    #[error("invalid {what}: {problem}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },

    /// A login method could not produce a token.
    #[error("{method} login failed: {message}")]
    Auth {
        /// The login method, e.g. `token`, `approle`, `aws-iam`.
        method: &'static str,
        /// What went wrong and what to do.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// Could not connect (refused, unreachable, DNS, TLS handshake).
    Connect,
    /// The request timed out.
    Timeout,
    /// Anything else (connection reset, body error, ...).
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::Other => "request failed",
        })
    }
}

fn api_message(status: u16, method: &str, path: &str, errors: &[String]) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut msg = format!("vault returned {status} {reason} for {method} {path}");
    let errors: Vec<&str> = errors
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if !errors.is_empty() {
        msg.push_str(": ");
        msg.push_str(&errors.join("; "));
    }
    let hint = match status {
        403 => {
            " (the token is missing, invalid, expired or revoked, or its policies do not allow this path)"
        }
        404 if errors.is_empty() => " (nothing at this path: check the mount and the path)",
        412 => " (a required request header is missing)",
        429 => " (rate limited or a standby node; retry later)",
        503 => " (vault is sealed, in standby or under maintenance)",
        _ => "",
    };
    msg.push_str(hint);
    msg
}

impl Error {
    /// Whether retrying the same request may succeed: connection failures,
    /// timeouts, 429 and 5xx (except 501 Not Implemented).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 429 || (*status >= 500 && *status != 501),
            Self::Transport { kind, .. } => {
                matches!(kind, TransportKind::Connect | TransportKind::Timeout)
            }
            Self::Auth {
                source: Some(source),
                ..
            } => source
                .downcast_ref::<Error>()
                .is_some_and(Error::is_retryable),
            _ => false,
        }
    }

    /// The HTTP status Vault answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Auth {
                source: Some(source),
                ..
            } => source.downcast_ref::<Error>().and_then(Error::status),
            _ => None,
        }
    }

    /// The kind of transport failure, `None` when Vault answered (or the
    /// error is not about the transport).
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match self {
            Self::Transport { kind, .. } => Some(*kind),
            Self::Auth {
                source: Some(source),
                ..
            } => source
                .downcast_ref::<Error>()
                .and_then(Error::transport_kind),
            _ => None,
        }
    }

    /// Vault's `errors` strings, empty when Vault did not answer with any.
    pub fn vault_errors(&self) -> &[String] {
        match self {
            Self::Api { errors, .. } => errors,
            _ => &[],
        }
    }

    /// Whether Vault refused the token or its permissions (HTTP 403).
    pub fn is_permission_denied(&self) -> bool {
        self.status() == Some(403)
    }

    /// A login error for `method`, keeping `source` as the cause.
    pub fn auth(
        method: &'static str,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Auth {
            method,
            message: message.into(),
            source,
        }
    }

    pub(crate) fn invalid_input(what: &'static str, problem: impl Into<String>) -> Self {
        Self::InvalidInput {
            what,
            problem: problem.into(),
        }
    }

    pub(crate) fn transport(method: &str, path: &str, source: reqwest::Error) -> Self {
        let kind = if source.is_timeout() {
            TransportKind::Timeout
        } else if source.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Other
        };
        Self::Transport {
            method: method.to_owned(),
            path: path.to_owned(),
            kind,
            source,
        }
    }

    pub(crate) fn decode(method: &str, path: &str, problem: impl Into<String>) -> Self {
        Self::Decode {
            method: method.to_owned(),
            path: path.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line, `: `-separated, each cause added
/// only when the text so far does not already say it (many errors repeat
/// their source in their own message), e.g. `token login failed: cannot look
/// up the token: error sending request for url (https://vault:8200/...):
/// tcp connect error: Connection refused`. The one renderer every vault-aws
/// crate and binary uses for logs, `init/error` and CloudFormation reasons;
/// errors in this workspace never hold a secret, nor do the causes they keep.
///
/// ```
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot log in")]
/// struct Login(#[source] std::io::Error);
/// let e = Login(std::io::Error::other("connection refused"));
/// assert_eq!(vault_client::error_chain(&e), "cannot log in: connection refused");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !c_text.is_empty() && !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        Error::Api {
            status,
            method: "GET".into(),
            path: "/v1/x".into(),
            errors: vec!["boom".into()],
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(api(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 412, 501] {
            assert!(!api(s).is_retryable(), "{s}");
        }
    }

    #[test]
    fn api_message_carries_vault_errors_and_a_hint() {
        let msg = api(403).to_string();
        assert!(
            msg.starts_with("vault returned 403 Forbidden for GET /v1/x: boom"),
            "{msg}"
        );
        assert!(msg.contains("expired or revoked"), "{msg}");
    }

    #[test]
    fn auth_errors_inherit_retryability_from_their_cause() {
        let e = Error::auth("approle", "login refused", Some(Box::new(api(503))));
        assert!(e.is_retryable());
        assert_eq!(e.status(), Some(503));
        let e = Error::auth("approle", "login refused", Some(Box::new(api(400))));
        assert!(!e.is_retryable());
        assert_eq!(e.transport_kind(), None);
    }
}
