//! One log setup for every Lambda binary and the extension, following
//! Lambda's logging configuration.
//!
//! Lambda sets `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and, with JSON,
//! `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `FATAL`) from the function's
//! `LoggingConfig`. [`LogSettings::from_lookup`] reads them, and the binary's
//! own level variable (`VAULT_LOG_LEVEL` as hashicorp/vault-lambda-extension
//! reads it, `RUST_LOG`, `AUTHORIZER_LOG_LEVEL`), which wins when set because
//! it is the more specific. [`LogSettings::init`] installs the subscriber:
//! JSON lines (`timestamp`, `level`, `fields.message` flattened to `message`,
//! `target`, and the invocation's span with its `requestId`) or plain text
//! without a timestamp (Lambda adds one), and always with
//! [`crate::log_filter`]'s cap on `lambda_runtime`'s raw-event log.

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line (what CloudWatch Logs Insights and Lambda's
    /// own log-level filtering read).
    Json,
}

/// What [`LogSettings::from_lookup`] decided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The format.
    pub format: LogFormat,
    /// The `tracing` filter directives (before the raw-event cap).
    pub directives: String,
    /// Settings that were not understood, to log once the subscriber runs.
    pub warnings: Vec<String>,
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

impl LogSettings {
    /// Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` and the binary's
    /// own level variable `own_level` through `lookup`. `default_format` and
    /// `default_level` apply when nothing is set (or a value is not understood,
    /// with a warning).
    pub fn from_lookup<F>(
        lookup: F,
        own_level: &str,
        default_format: LogFormat,
        default_level: &str,
    ) -> Self
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut warnings = Vec::new();
        let format = match get("AWS_LAMBDA_LOG_FORMAT") {
            None => default_format,
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(v) if v.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(v) => {
                warnings.push(format!(
                    "AWS_LAMBDA_LOG_FORMAT is {v:?}, not JSON or Text; using {default_format:?}"
                ));
                default_format
            }
        };
        let own = get(own_level).map(|v| v.to_ascii_lowercase());
        let directives = match (own, get("AWS_LAMBDA_LOG_LEVEL")) {
            // A filter with targets (`vault_proxy=debug,info`) is taken as
            // it is; a bare word must be a level.
            (Some(v), _) if v.contains('=') || v.contains(',') => v,
            (Some(v), _) if LEVELS.contains(&v.as_str()) => v,
            (Some(v), _) if v == "warning" => "warn".to_owned(),
            (Some(v), aws) => {
                warnings.push(format!(
                    "{own_level} is not one of trace, debug, info, warn, error, off \
                     (got {v:?}); logging at {}",
                    aws.as_deref().and_then(aws_level).unwrap_or(default_level)
                ));
                aws.as_deref()
                    .and_then(aws_level)
                    .unwrap_or(default_level)
                    .to_owned()
            }
            (None, Some(aws)) => match aws_level(&aws) {
                Some(level) => level.to_owned(),
                None => {
                    warnings.push(format!(
                        "AWS_LAMBDA_LOG_LEVEL is {aws:?}, not one of TRACE, DEBUG, INFO, WARN, \
                         ERROR, FATAL; logging at {default_level}"
                    ));
                    default_level.to_owned()
                }
            },
            (None, None) => default_level.to_owned(),
        };
        Self {
            format,
            directives,
            warnings,
        }
    }

    /// Installs the global subscriber (once per process; a second call does
    /// nothing) and logs the warnings.
    pub fn init(&self) {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let filter = crate::log_filter(Some(&self.directives), "info");
        let installed = match self.format {
            // The builder's own level stays open (TRACE); `filter` decides.
            LogFormat::Json => tracing_subscriber::fmt()
                .with_max_level(tracing::level_filters::LevelFilter::TRACE)
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(true)
                .with_ansi(false)
                .finish()
                .with(filter)
                .try_init(),
            LogFormat::Text => tracing_subscriber::fmt()
                .with_max_level(tracing::level_filters::LevelFilter::TRACE)
                .with_ansi(false)
                .without_time()
                .finish()
                .with(filter)
                .try_init(),
        };
        if installed.is_ok() {
            for warning in &self.warnings {
                tracing::warn!("{warning}");
            }
        }
    }
}

/// Lambda's application log levels as `tracing` levels (`FATAL` is `error`).
fn aws_level(value: &str) -> Option<&'static str> {
    Some(match value.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogSettings::from_lookup(
            move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            "VAULT_LOG_LEVEL",
            LogFormat::Text,
            "info",
        )
    }

    #[test]
    fn lambda_logging_config_is_followed() {
        let s = settings(&[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ]);
        assert_eq!(
            (s.format, s.directives.as_str()),
            (LogFormat::Json, "debug")
        );
        let s = settings(&[
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
            ("AWS_LAMBDA_LOG_LEVEL", "FATAL"),
        ]);
        assert_eq!(
            (s.format, s.directives.as_str()),
            (LogFormat::Text, "error")
        );
        let s = settings(&[]);
        assert_eq!((s.format, s.directives.as_str()), (LogFormat::Text, "info"));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn the_binarys_own_variable_wins_and_nonsense_is_named() {
        let s = settings(&[
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("VAULT_LOG_LEVEL", "Debug"),
        ]);
        assert_eq!(s.directives, "debug");
        let s = settings(&[("VAULT_LOG_LEVEL", "vault_proxy=trace,info")]);
        assert_eq!(s.directives, "vault_proxy=trace,info");
        let s = settings(&[
            ("VAULT_LOG_LEVEL", "verbose"),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
        ]);
        assert_eq!(s.directives, "warn");
        assert!(
            s.warnings[0].contains("VAULT_LOG_LEVEL is not one of"),
            "{:?}",
            s.warnings
        );
        assert!(s.warnings[0].contains("\"verbose\""), "{:?}", s.warnings);
        let s = settings(&[
            ("AWS_LAMBDA_LOG_FORMAT", "xml"),
            ("AWS_LAMBDA_LOG_LEVEL", "LOUD"),
        ]);
        assert_eq!((s.format, s.directives.as_str()), (LogFormat::Text, "info"));
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    }
}
