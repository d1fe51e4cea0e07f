//! Checks that a vault-aws Lambda binary runs inside AWS Lambda (or the
//! Lambda Runtime Interface Emulator) before it starts `lambda_runtime`.
//!
//! `lambda_runtime::run` panics when the variables Lambda sets are missing,
//! which is what happens when someone starts `bootstrap` by hand. The
//! binaries call [`require_lambda_environment`] first and exit with a message
//! that names the missing variables instead.
//!
//! ```
//! let lambda = |name: &str| match name {
//!     "AWS_LAMBDA_RUNTIME_API" => Some("127.0.0.1:9001".to_owned()),
//!     "AWS_LAMBDA_FUNCTION_NAME" => Some("replicate".to_owned()),
//!     "AWS_LAMBDA_FUNCTION_VERSION" => Some("$LATEST".to_owned()),
//!     "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("128".to_owned()),
//!     _ => None,
//! };
//! assert!(vault_aws_lambda_env::require_lambda_environment("lambda-replicate", lambda).is_ok());
//!
//! let shell = |_: &str| None;
//! let err = vault_aws_lambda_env::require_lambda_environment("lambda-replicate", shell).unwrap_err();
//! assert!(err.to_string().contains("AWS_LAMBDA_RUNTIME_API"));
//! ```
//!
//! [`log_filter`] builds the log filter of every Lambda binary: at any level,
//! also `trace`, `lambda_runtime`'s log of the raw event stays off (the event
//! carries credentials: CloudFormation's pre-signed `ResponseURL`, an
//! `Authorization` header).
//!
//! ```
//! use tracing::Level;
//! let filter = vault_aws_lambda_env::log_filter(Some("trace"), "info");
//! assert!(filter.would_enable("vault_proxy", &Level::TRACE));
//! assert!(!filter.would_enable(vault_aws_lambda_env::RAW_EVENT_TARGET, &Level::TRACE));
//! ```
//!
//! [`LogSettings`] is the one log setup of every Lambda binary and the
//! extension: Lambda's `AWS_LAMBDA_LOG_FORMAT` / `AWS_LAMBDA_LOG_LEVEL`, the
//! binary's own level variable, and that filter.
//!
//! ```
//! use vault_aws_lambda_env::{LogFormat, LogSettings};
//! let lambda = |name: &str| match name {
//!     "AWS_LAMBDA_LOG_FORMAT" => Some("JSON".to_owned()),
//!     "AWS_LAMBDA_LOG_LEVEL" => Some("WARN".to_owned()),
//!     _ => None,
//! };
//! let logs = LogSettings::from_lookup(lambda, "VAULT_LOG_LEVEL", LogFormat::Text, "info");
//! assert_eq!((logs.format, logs.directives.as_str()), (LogFormat::Json, "warn"));
//! logs.init();
//! ```
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod logging;

pub use logging::{LogFormat, LogSettings};

/// The `tracing` target under which `lambda_runtime` logs every raw event
/// (the whole payload) at TRACE.
pub const RAW_EVENT_TARGET: &str = "lambda_runtime::layers::api_response";

/// The log filter of a Lambda binary: `directives` (e.g. the value of
/// `RUST_LOG` or `VAULT_LOG_LEVEL`: `level` or `target=level` entries
/// separated by commas; `default` when absent, empty or not valid), with
/// [`RAW_EVENT_TARGET`] capped at DEBUG whatever the directives say, so the
/// raw event (with its pre-signed URL, tokens or cookies) is never logged.
/// Its errors (payloads that are not JSON) still are.
///
/// A [`Targets`](tracing_subscriber::filter::Targets) filter, not an
/// `EnvFilter`: the same directives without span and field filters, and
/// without the regex engine (about 400 KB of the extension's binary).
pub fn log_filter(directives: Option<&str>, default: &str) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::Targets;
    let filter = directives
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .and_then(|d| d.parse::<Targets>().ok())
        .or_else(|| default.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    filter.with_target(RAW_EVENT_TARGET, tracing::Level::DEBUG)
}

/// The variables Lambda sets that `lambda_runtime` requires.
pub const REQUIRED: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// The binary was started outside Lambda: some of [`REQUIRED`] are missing
/// or unusable.
#[derive(Debug, thiserror::Error)]
#[error(
    "{binary} is an AWS Lambda function and does not run on its own: {problems} \
     (Lambda and the Runtime Interface Emulator set these; deploy it as a function, \
     see docs/deploy.md, or run it under aws-lambda-rie)"
)]
#[non_exhaustive]
pub struct NotInLambda {
    /// The binary's name, as given by the caller.
    pub binary: String,
    /// What is wrong, e.g. `AWS_LAMBDA_RUNTIME_API is not set`.
    pub problems: String,
}

/// Fails unless every variable of [`REQUIRED`] is set (and the memory size
/// is a number), naming each missing one.
pub fn require_lambda_environment<F>(binary: &str, lookup: F) -> Result<(), NotInLambda>
where
    F: Fn(&str) -> Option<String>,
{
    let mut problems = Vec::new();
    for name in REQUIRED {
        match lookup(name) {
            None => problems.push(format!("{name} is not set")),
            Some(v) if v.trim().is_empty() => problems.push(format!("{name} is empty")),
            Some(v)
                if name == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
                    && v.trim().parse::<i32>().is_err() =>
            {
                problems.push(format!("{name} is {v:?}, expected a number of MB"));
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NotInLambda {
            binary: binary.to_owned(),
            problems: problems.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_raw_event_target_stays_at_debug_whatever_the_level() {
        use tracing::Level;
        for level in [
            Some("trace"),
            Some("lambda_runtime=trace"),
            Some("debug,lambda_runtime::layers::api_response=trace"),
            Some("not a [level"),
            None,
        ] {
            let filter = log_filter(level, "info");
            assert!(
                !filter.would_enable(RAW_EVENT_TARGET, &Level::TRACE),
                "{level:?}: {filter}"
            );
            assert!(
                filter.would_enable(RAW_EVENT_TARGET, &Level::DEBUG),
                "{level:?}: {filter}"
            );
        }
        let trace = log_filter(Some("trace"), "info");
        assert!(trace.would_enable("vault_proxy::token", &Level::TRACE));
        let targeted = log_filter(Some("warn,vault_proxy=debug"), "info");
        assert!(targeted.would_enable("vault_proxy::cache", &Level::DEBUG));
        assert!(!targeted.would_enable("hyper", &Level::INFO));
        let fallback = log_filter(Some("vault_proxy=loud"), "info");
        assert!(fallback.would_enable("hyper", &Level::INFO));
        assert!(!fallback.would_enable("hyper", &Level::DEBUG));
    }

    #[test]
    fn names_every_missing_or_bad_variable() {
        let partial = |name: &str| match name {
            "AWS_LAMBDA_FUNCTION_NAME" => Some("f".to_owned()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some(" ".to_owned()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("lots".to_owned()),
            _ => None,
        };
        let message = require_lambda_environment("bootstrap", partial)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("bootstrap is an AWS Lambda function"),
            "{message}"
        );
        assert!(
            message.contains("AWS_LAMBDA_RUNTIME_API is not set"),
            "{message}"
        );
        assert!(
            message.contains("AWS_LAMBDA_FUNCTION_VERSION is empty"),
            "{message}"
        );
        assert!(
            message.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is \"lots\""),
            "{message}"
        );
        assert!(!message.contains("AWS_LAMBDA_FUNCTION_NAME"), "{message}");
    }
}
