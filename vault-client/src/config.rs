//! Client configuration, read from the standard `VAULT_*` variables through an
//! injectable lookup.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// Vault's own default address, used when `VAULT_ADDR` is not set.
pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";
/// Default per-request timeout (Vault's CLI uses 60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of retries after the first attempt (Vault's CLI uses 2).
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// A configuration value that is missing, malformed or inconsistent.
///
/// The message names the variable (or builder field) and the expected form. It
/// never contains the value of a secret variable such as `VAULT_TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value could not be parsed.
    #[error("{variable} is invalid: {problem}; expected {expected}")]
    Invalid {
        /// The variable, builder field or property (e.g.
        /// `Properties.Policies[2]`).
        variable: Cow<'static, str>,
        /// The form it must have.
        expected: Cow<'static, str>,
        /// What is wrong with the value (never the value of a secret).
        problem: String,
    },
    /// Two settings that only make sense together were not given together, or
    /// two settings that exclude each other were both given.
    #[error("{0}")]
    Inconsistent(String),
    /// A file named by a setting could not be read or used.
    #[error("{variable}: cannot use {path}: {problem}")]
    File {
        /// The variable or builder field.
        variable: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

impl ConfigError {
    /// A value that cannot be used: which variable (or field), the form it
    /// must have, then what is wrong with it. `problem` must never hold the
    /// value of a secret.
    ///
    /// ```
    /// let e = vault_client::ConfigError::invalid("VAULT_MAX_RETRIES", "a whole number", "got \"x\"");
    /// assert_eq!(e.to_string(), "VAULT_MAX_RETRIES is invalid: got \"x\"; expected a whole number");
    /// ```
    pub fn invalid(
        variable: impl Into<Cow<'static, str>>,
        expected: impl Into<Cow<'static, str>>,
        problem: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            variable: variable.into(),
            expected: expected.into(),
            problem: problem.into(),
        }
    }

    /// The same error about another variable (e.g. a builder field's error
    /// reported under the variable that set it).
    #[must_use]
    pub fn for_variable(self, name: impl Into<Cow<'static, str>>) -> Self {
        match self {
            Self::Invalid {
                expected, problem, ..
            } => Self::Invalid {
                variable: name.into(),
                expected,
                problem,
            },
            other => other,
        }
    }

    /// The variable, field or property at fault, when the error names one.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Self::Invalid { variable, .. } => Some(variable),
            Self::File { variable, .. } => Some(variable),
            Self::Inconsistent(_) => None,
        }
    }
}

/// [`non_blank`], with the value trimmed of surrounding spaces (names, paths,
/// URLs; a file written with a trailing newline).
pub fn trimmed<F>(lookup: F) -> impl Fn(&str) -> Option<String>
where
    F: Fn(&str) -> Option<String>,
{
    move |name| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// `lookup` with blank values treated as unset: the rule every `from_lookup`
/// in the workspace follows (`VAULT_TOKEN=""` is no token, not an empty one).
pub fn non_blank<F>(lookup: F) -> impl Fn(&str) -> Option<String>
where
    F: Fn(&str) -> Option<String>,
{
    move |name| lookup(name).filter(|v| !v.trim().is_empty())
}

/// TLS settings for the connection to Vault.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) to trust instead of the system roots
    /// (`VAULT_CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// Directory of PEM files with CA certificates to trust instead of the
    /// system roots (`VAULT_CAPATH`).
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (`VAULT_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate (`VAULT_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// Disable certificate verification (`VAULT_SKIP_VERIFY`). Dangerous:
    /// only for local development.
    pub skip_verify: bool,
    /// The name to verify the server certificate against, when it differs from
    /// the host in the address (`VAULT_TLS_SERVER_NAME`).
    pub server_name: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_cert", &self.ca_cert)
            .field("ca_path", &self.ca_path)
            .field("client_cert", &self.client_cert)
            .field(
                "client_key",
                &self.client_key.as_ref().map(|_| "<path set>"),
            )
            .field("skip_verify", &self.skip_verify)
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// Everything needed to build a [`VaultClient`](crate::VaultClient).
///
/// Build it with [`ClientConfig::new`] and the setters, or read it from the
/// environment with [`ClientConfig::from_env`] / [`ClientConfig::from_lookup`].
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) address: Url,
    pub(crate) token: Option<SecretString>,
    pub(crate) namespace: Option<String>,
    pub(crate) tls: TlsConfig,
    pub(crate) timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) min_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("address", &self.address.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration for the Vault server at `address` (`http://` or
    /// `https://`), with default timeouts and retries and no token.
    pub fn new(address: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            address: parse_address(address)?,
            token: None,
            namespace: None,
            tls: TlsConfig::default(),
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1500),
        })
    }

    /// Reads the standard variables from the process environment.
    ///
    /// See [`ClientConfig::from_lookup`] for the variables and their forms.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the standard variables through `lookup` (so tests never touch the
    /// process environment). An empty value counts as unset.
    ///
    /// | variable | form | default |
    /// |---|---|---|
    /// | `VAULT_ADDR` | `http(s)://host[:port][/prefix]` | `https://127.0.0.1:8200` |
    /// | `VAULT_TOKEN` | token | none |
    /// | `VAULT_NAMESPACE` | namespace path | none |
    /// | `VAULT_CACERT` | PEM file | system roots |
    /// | `VAULT_CAPATH` | directory of PEM files | system roots |
    /// | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | PEM files, both or neither | none |
    /// | `VAULT_SKIP_VERIFY` | boolean (`1/0`, `true/false`, `t/f`) | `false` |
    /// | `VAULT_TLS_SERVER_NAME` | host name | host of `VAULT_ADDR` |
    /// | `VAULT_CLIENT_TIMEOUT` | seconds, or a duration such as `500ms`, `30s`, `2m` | `60s` |
    /// | `VAULT_MAX_RETRIES` | non-negative integer | `2` |
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = non_blank(lookup);
        let address = get("VAULT_ADDR").unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        let mut config = Self::new(address.trim()).map_err(|e| e.for_variable("VAULT_ADDR"))?;
        if let Some(token) = get("VAULT_TOKEN") {
            config.token = Some(parse_token("VAULT_TOKEN", &token)?);
        }
        config.namespace = get("VAULT_NAMESPACE").map(|ns| ns.trim().to_owned());
        config.tls.ca_cert = get("VAULT_CACERT").map(PathBuf::from);
        config.tls.ca_path = get("VAULT_CAPATH").map(PathBuf::from);
        config.tls.client_cert = get("VAULT_CLIENT_CERT").map(PathBuf::from);
        config.tls.client_key = get("VAULT_CLIENT_KEY").map(PathBuf::from);
        if let Some(v) = get("VAULT_SKIP_VERIFY") {
            config.tls.skip_verify = parse_bool("VAULT_SKIP_VERIFY", &v)?;
        }
        config.tls.server_name = get("VAULT_TLS_SERVER_NAME").map(|s| s.trim().to_owned());
        if let Some(v) = get("VAULT_CLIENT_TIMEOUT") {
            config.timeout = parse_duration("VAULT_CLIENT_TIMEOUT", &v)?;
            if config.timeout.is_zero() {
                return Err(ConfigError::invalid(
                    "VAULT_CLIENT_TIMEOUT",
                    "a positive number of seconds or a duration such as 30s",
                    "it is zero",
                ));
            }
        }
        if let Some(v) = get("VAULT_MAX_RETRIES") {
            config.max_retries = v.trim().parse::<u32>().map_err(|_| {
                ConfigError::invalid(
                    "VAULT_MAX_RETRIES",
                    "a non-negative integer such as 2",
                    format!("got {v:?}"),
                )
            })?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks settings that only make sense together.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match (&self.tls.client_cert, &self.tls.client_key) {
            (Some(_), None) => Err(ConfigError::Inconsistent(
                "VAULT_CLIENT_CERT is set but VAULT_CLIENT_KEY is not; set both for mutual TLS"
                    .into(),
            )),
            (None, Some(_)) => Err(ConfigError::Inconsistent(
                "VAULT_CLIENT_KEY is set but VAULT_CLIENT_CERT is not; set both for mutual TLS"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Sets the token sent as `X-Vault-Token`.
    pub fn with_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Sets the namespace sent as `X-Vault-Namespace` (Vault Enterprise, OpenBao).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Replaces the TLS settings.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many times a retryable failure is retried after the first attempt.
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the backoff bounds between retries (exponential from `min`,
    /// capped at `max`, with jitter).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// The Vault address.
    pub fn address(&self) -> &Url {
        &self.address
    }

    /// The namespace, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The TLS settings.
    pub fn tls(&self) -> &TlsConfig {
        &self.tls
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The number of retries after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

fn parse_address(address: &str) -> Result<Url, ConfigError> {
    const EXPECTED: &str = "an http:// or https:// URL such as https://vault.example.com:8200";
    let url = Url::parse(address)
        .map_err(|e| ConfigError::invalid("address", EXPECTED, format!("{address:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            "address",
            EXPECTED,
            format!("unsupported scheme {:?}", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid("address", EXPECTED, "it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            "address",
            EXPECTED,
            "it contains credentials; pass the token separately",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            "address",
            EXPECTED,
            "it has a query or fragment",
        ));
    }
    Ok(url)
}

/// A token must be non-empty visible ASCII (it is sent as an HTTP header).
/// The value itself never appears in the error.
pub(crate) fn parse_token(variable: &'static str, raw: &str) -> Result<SecretString, ConfigError> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(ConfigError::invalid(
            variable,
            "a Vault token",
            "it is empty",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(
            variable,
            "a Vault token of visible ASCII characters",
            "it contains spaces, control or non-ASCII characters",
        ));
    }
    Ok(SecretString::from(token))
}

/// The one rule for boolean settings in every vault-aws crate and binary:
/// what Go's `strconv.ParseBool` accepts (Vault's own rule: `1`, `t`, `true`,
/// `0`, `f`, `false`), in any case, plus `yes`/`no` and `on`/`off`.
/// Anything else is an error naming the variable; surrounding spaces are
/// ignored.
///
/// ```
/// use vault_client::parse_bool;
/// assert!(parse_bool("VAULT_SKIP_VERIFY", "TRUE").unwrap());
/// assert!(!parse_bool("VAULT_SKIP_VERIFY", " off ").unwrap());
/// assert!(parse_bool("VAULT_SKIP_VERIFY", "maybe").is_err());
/// ```
pub fn parse_bool(variable: impl Into<Cow<'static, str>>, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(
            variable,
            "a boolean: true/false, 1/0, t/f, yes/no or on/off",
            format!("got {:?}", raw.trim()),
        )),
    }
}

/// Whole seconds (`"60"`), or a number with a unit: `ms`, `s`, `m`, `h`
/// (`"500ms"`, `"1.5s"`, `"2m"`).
pub fn parse_duration(
    variable: impl Into<Cow<'static, str>>,
    raw: &str,
) -> Result<Duration, ConfigError> {
    let variable = variable.into();
    const EXPECTED: &str =
        "seconds (e.g. 30) or a duration with a unit ms, s, m or h (e.g. 500ms, 30s, 2m)";
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| ConfigError::invalid(variable.clone(), EXPECTED, format!("got {raw:?}")))?;
    let factor = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(ConfigError::invalid(
                variable.clone(),
                EXPECTED,
                format!("unknown unit in {raw:?}"),
            ));
        }
    };
    Duration::try_from_secs_f64(value * factor)
        .map_err(|_| ConfigError::invalid(variable, EXPECTED, format!("out of range: {raw:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = ClientConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.address().as_str(), "https://127.0.0.1:8200/");
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(c.max_retries(), DEFAULT_MAX_RETRIES);
        assert!(!c.has_token());
        assert!(!c.tls().skip_verify);
    }

    #[test]
    fn reads_every_variable() {
        let c = ClientConfig::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", " s.abc \n"),
            ("VAULT_NAMESPACE", "team-a"),
            ("VAULT_CACERT", "/etc/ca.pem"),
            ("VAULT_CAPATH", "/etc/cas"),
            ("VAULT_CLIENT_CERT", "/etc/c.pem"),
            ("VAULT_CLIENT_KEY", "/etc/k.pem"),
            ("VAULT_SKIP_VERIFY", "true"),
            ("VAULT_TLS_SERVER_NAME", "vault.internal"),
            ("VAULT_CLIENT_TIMEOUT", "2m"),
            ("VAULT_MAX_RETRIES", "5"),
        ]))
        .unwrap();
        assert_eq!(c.token.as_ref().unwrap().expose_secret(), "s.abc");
        assert_eq!(c.namespace(), Some("team-a"));
        assert_eq!(
            c.tls().ca_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(
            c.tls().ca_path.as_deref(),
            Some(std::path::Path::new("/etc/cas"))
        );
        assert!(c.tls().skip_verify);
        assert_eq!(c.tls().server_name.as_deref(), Some("vault.internal"));
        assert_eq!(c.timeout(), Duration::from_secs(120));
        assert_eq!(c.max_retries(), 5);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_expected_form() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "VAULT_ADDR",
                "ftp://x",
                "VAULT_ADDR is invalid: unsupported scheme",
            ),
            ("VAULT_ADDR", "not a url", "VAULT_ADDR is invalid"),
            (
                "VAULT_SKIP_VERIFY",
                "maybe",
                "VAULT_SKIP_VERIFY is invalid: got \"maybe\"; expected a boolean",
            ),
            (
                "VAULT_CLIENT_TIMEOUT",
                "soon",
                "VAULT_CLIENT_TIMEOUT is invalid: got \"soon\"; expected seconds",
            ),
            ("VAULT_CLIENT_TIMEOUT", "10d", "unknown unit"),
            ("VAULT_CLIENT_TIMEOUT", "0", "it is zero"),
            (
                "VAULT_MAX_RETRIES",
                "-1",
                "VAULT_MAX_RETRIES is invalid: got \"-1\"; expected a non-negative integer",
            ),
        ];
        for (var, value, want) in cases {
            let err = ClientConfig::from_lookup(lookup(&[(var, value)])).unwrap_err();
            assert!(err.to_string().contains(want), "{var}={value}: {err}");
        }
    }

    #[test]
    fn one_rule_for_booleans() {
        for raw in ["1", "t", "T", "true", "TRUE", "True", "yes", "On", " true "] {
            assert!(parse_bool("X", raw).unwrap(), "{raw}");
        }
        for raw in ["0", "f", "F", "false", "FALSE", "False", "no", "OFF"] {
            assert!(!parse_bool("X", raw).unwrap(), "{raw}");
        }
        for raw in ["", "2", "maybe", "truee", "y", "n"] {
            let err = parse_bool("X", raw).unwrap_err().to_string();
            assert!(err.starts_with("X is invalid: got "), "{raw}: {err}");
            assert!(err.contains("yes/no or on/off"), "{raw}: {err}");
        }
        let c = ClientConfig::from_lookup(lookup(&[("VAULT_SKIP_VERIFY", "yes")])).unwrap();
        assert!(c.tls().skip_verify);
    }

    #[test]
    fn client_cert_needs_its_key() {
        let err =
            ClientConfig::from_lookup(lookup(&[("VAULT_CLIENT_CERT", "/c.pem")])).unwrap_err();
        assert!(err.to_string().contains("VAULT_CLIENT_KEY is not"), "{err}");
    }

    #[test]
    fn a_bad_token_is_rejected_without_showing_it() {
        let err =
            ClientConfig::from_lookup(lookup(&[("VAULT_TOKEN", "hvs.secret part")])).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("VAULT_TOKEN"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn debug_redacts_the_token() {
        let c = ClientConfig::from_lookup(lookup(&[("VAULT_TOKEN", "hvs.topsecret")])).unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("x", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("x", "1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("x", "1h").unwrap(),
            Duration::from_secs(3600)
        );
        assert!(parse_duration("x", "-3s").is_err());
    }
}
