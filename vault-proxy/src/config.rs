//! Configuration of the proxy, the token manager, the cache and the secret
//! files, read through an injectable lookup (hashicorp/vault-lambda-extension
//! names plus ours). Documented in `docs/proxy.md`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use secrecy::SecretString;
use vault_client::{ConfigError, parse_bool, parse_duration};

/// Default listen address of the proxy.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8200";
/// Default `VAULT_TOKEN_EXPIRY_GRACE_PERIOD`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// Default secret file (`VAULT_SECRET_FILE`) and the directory relative file names go under.
pub const DEFAULT_SECRET_FILE: &str = "/tmp/vault/secret.json";
/// Directory relative secret file names are placed under.
pub const SECRET_DIR: &str = "/tmp/vault";
/// Header a caller may send instead of `X-Vault-Request: true`, carrying the
/// configured secret (in Lambda: the function's `AWS_SESSION_TOKEN`).
pub const DEFAULT_SECRET_HEADER: &str = "x-vault-aws-session-token";
/// Path of the Prometheus metrics on the proxy's listener.
pub const METRICS_PATH: &str = "/vault-aws/metrics";

/// Where the proxy listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address, `127.0.0.1:8200` by default.
    Tcp(SocketAddr),
    /// A unix socket path (`unix:/path` in `VAULT_PROXY_LISTEN`).
    Unix(PathBuf),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What the Lambda extension does (`VAULT_RUN_MODE`, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Secret files and the proxy.
    Default,
    /// Only the proxy.
    Proxy,
    /// Only the secret files.
    File,
}

impl RunMode {
    /// Whether the proxy runs.
    pub fn proxy(self) -> bool {
        matches!(self, Self::Default | Self::Proxy)
    }

    /// Whether secret files are written.
    pub fn files(self) -> bool {
        matches!(self, Self::Default | Self::File)
    }
}

/// Token manager settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// Period at the end of the token's life when it counts as expired
    /// (`VAULT_TOKEN_EXPIRY_GRACE_PERIOD`, default 10s; never more than a
    /// quarter of the token's TTL).
    pub grace: Duration,
    /// How long a request waits for a login before failing (`VAULT_PROXY_LOGIN_WAIT`, default 10s).
    pub login_wait: Duration,
    /// First backoff after a failed login (default 200ms).
    pub min_backoff: Duration,
    /// Longest backoff between failed logins (`VAULT_LOGIN_MAX_BACKOFF`, default 30s).
    pub max_backoff: Duration,
    /// Revoke the token on shutdown (`VAULT_REVOKE_TOKEN_ON_SHUTDOWN`, default true).
    pub revoke_on_shutdown: bool,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            grace: DEFAULT_GRACE,
            login_wait: Duration::from_secs(10),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            revoke_on_shutdown: true,
        }
    }
}

/// The SSRF guard: which requests the proxy serves.
#[derive(Clone, Default)]
pub struct GuardConfig {
    /// Require `X-Vault-Request: true` or the secret header (`VAULT_PROXY_REQUIRE_REQUEST_HEADER`).
    pub enabled: bool,
    /// A header whose value must equal a secret (compared in constant time).
    pub secret_header: Option<(HeaderName, SecretString)>,
}

impl fmt::Debug for GuardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardConfig")
            .field("enabled", &self.enabled)
            .field(
                "secret_header",
                &self
                    .secret_header
                    .as_ref()
                    .map(|(h, _)| (h.as_str(), "<redacted>")),
            )
            .finish()
    }
}

/// Response cache settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Cache GETs unless the request says `X-Vault-Cache-Control: nocache`
    /// (`VAULT_DEFAULT_CACHE_ENABLED`, default false: only requests that say
    /// `cache` are cached).
    pub enabled_by_default: bool,
    /// Longest time a response is served from the cache (`VAULT_DEFAULT_CACHE_TTL`, default 5m);
    /// a leased response never outlives its lease. Responses with a
    /// `lease_id` (dynamic secrets) live as long as their lease, renewed
    /// while cached, whatever this and `max_staleness` say.
    pub default_ttl: Duration,
    /// Longest time after the proxy read a value from Vault that the value is
    /// served from the cache, so a write made elsewhere (not through this proxy)
    /// shows within it (`VAULT_CACHE_MAX_STALENESS`, default 1m). Hot entries
    /// are re-read in the background after three quarters of it.
    pub max_staleness: Duration,
    /// Most entries (`VAULT_CACHE_MAX_ENTRIES`, default 10000).
    pub max_entries: u64,
    /// Most bytes of cached bodies (`VAULT_CACHE_MAX_BYTES`, default 64 MiB).
    pub max_bytes: u64,
    /// Largest body that is cached (default 1 MiB).
    pub max_entry_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled_by_default: false,
            default_ttl: Duration::from_secs(300),
            max_staleness: Duration::from_secs(60),
            max_entries: 10_000,
            max_bytes: 64 << 20,
            max_entry_bytes: 1 << 20,
        }
    }
}

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Listen address (`VAULT_PROXY_LISTEN`, default `127.0.0.1:8200`).
    pub listen: Listen,
    /// The SSRF guard.
    pub guard: GuardConfig,
    /// The response cache.
    pub cache: CacheConfig,
    /// Request bodies up to this size are buffered so a request can be
    /// retried after a new login (default 1 MiB); larger ones stream.
    pub max_retry_body: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 8200))),
            guard: GuardConfig {
                enabled: true,
                secret_header: None,
            },
            cache: CacheConfig::default(),
            max_retry_body: 1 << 20,
        }
    }
}

/// One secret written to a file: the API path read (relative to `/v1/`) and
/// the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFileSpec {
    /// `""` for `VAULT_SECRET_PATH`, `X` for `VAULT_SECRET_PATH_X`.
    pub name: String,
    /// API path such as `secret/data/app` or `database/creds/app`.
    pub path: String,
    /// Absolute file path.
    pub file: PathBuf,
}

/// Secret file settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilesConfig {
    /// The secrets.
    pub secrets: Vec<SecretFileSpec>,
    /// Re-read secrets without a lease (KV) this often (`VAULT_SECRET_REFRESH_INTERVAL`, default off).
    pub refresh_interval: Option<Duration>,
    /// Re-read leased secrets this long before their lease ends (the grace period).
    pub grace: Duration,
}

/// Everything the Lambda extension and the sidecar read from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `VAULT_RUN_MODE`.
    pub run_mode: RunMode,
    /// The proxy.
    pub proxy: ProxyConfig,
    /// The token manager.
    pub token: TokenConfig,
    /// The secret files.
    pub files: FilesConfig,
    /// `VAULT_LOG_LEVEL` (default `info`).
    pub log_level: String,
}

impl Settings {
    /// Reads the settings through `lookup` (an empty value counts as unset).
    /// `lambda` selects the Lambda defaults: the SSRF guard also accepts the
    /// function's `AWS_SESSION_TOKEN` in the secret header.
    ///
    /// The Vault connection itself (`VAULT_ADDR`, `VLE_VAULT_ADDR`, TLS, namespace)
    /// is read by [`client_config_from_lookup`]; the login by
    /// `vault_auth_env::auth_from_lookup` in the binaries.
    pub fn from_lookup<F>(lookup: F, lambda: bool) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::non_blank(&lookup);
        let run_mode = match get("VAULT_RUN_MODE")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("default") => RunMode::Default,
            Some("proxy") => RunMode::Proxy,
            Some("file") => RunMode::File,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "VAULT_RUN_MODE",
                    "default, proxy or file",
                    format!("got {other:?}"),
                ));
            }
        };

        let mut token = TokenConfig::default();
        if let Some(v) = get("VAULT_TOKEN_EXPIRY_GRACE_PERIOD") {
            token.grace = parse_duration("VAULT_TOKEN_EXPIRY_GRACE_PERIOD", &v)?;
        }
        if let Some(v) = get("VAULT_PROXY_LOGIN_WAIT") {
            token.login_wait = positive("VAULT_PROXY_LOGIN_WAIT", &v)?;
        }
        if let Some(v) = get("VAULT_LOGIN_MAX_BACKOFF") {
            token.max_backoff = positive("VAULT_LOGIN_MAX_BACKOFF", &v)?.max(token.min_backoff);
        }
        if let Some(v) = get("VAULT_REVOKE_TOKEN_ON_SHUTDOWN") {
            token.revoke_on_shutdown = parse_bool("VAULT_REVOKE_TOKEN_ON_SHUTDOWN", &v)?;
        }

        let mut proxy = ProxyConfig::default();
        if let Some(v) = get("VAULT_PROXY_LISTEN") {
            proxy.listen = parse_listen(&v)?;
        }
        if let Some(v) = get("VAULT_PROXY_REQUIRE_REQUEST_HEADER") {
            proxy.guard.enabled = parse_bool("VAULT_PROXY_REQUIRE_REQUEST_HEADER", &v)?;
        }
        let header_name = match get("VAULT_PROXY_SECRET_HEADER") {
            Some(h) => HeaderName::from_bytes(h.trim().as_bytes()).map_err(|_| {
                ConfigError::invalid(
                    "VAULT_PROXY_SECRET_HEADER",
                    "an HTTP header name such as X-Vault-AWS-Session-Token",
                    format!("{h:?} is not a valid header name"),
                )
            })?,
            None => HeaderName::from_static(DEFAULT_SECRET_HEADER),
        };
        let secret = proxy_secret(&get, lambda)?;
        proxy.guard.secret_header = secret.map(|s| (header_name, s));

        if let Some(v) = get("VAULT_DEFAULT_CACHE_ENABLED") {
            proxy.cache.enabled_by_default = parse_bool("VAULT_DEFAULT_CACHE_ENABLED", &v)?;
        }
        if let Some(v) = get("VAULT_DEFAULT_CACHE_TTL") {
            proxy.cache.default_ttl = parse_duration("VAULT_DEFAULT_CACHE_TTL", &v)?;
        }
        if let Some(v) = get("VAULT_CACHE_MAX_STALENESS") {
            proxy.cache.max_staleness = positive("VAULT_CACHE_MAX_STALENESS", &v)?;
        }
        if let Some(v) = get("VAULT_CACHE_MAX_ENTRIES") {
            proxy.cache.max_entries = parse_u64("VAULT_CACHE_MAX_ENTRIES", &v)?;
        }
        if let Some(v) = get("VAULT_CACHE_MAX_BYTES") {
            proxy.cache.max_bytes = parse_u64("VAULT_CACHE_MAX_BYTES", &v)?;
            proxy.cache.max_entry_bytes = proxy
                .cache
                .max_entry_bytes
                .min(usize::try_from(proxy.cache.max_bytes).unwrap_or(usize::MAX));
        }

        let mut files = FilesConfig {
            grace: token.grace,
            ..FilesConfig::default()
        };
        if let Some(v) = get("VAULT_SECRET_REFRESH_INTERVAL") {
            let interval = parse_duration("VAULT_SECRET_REFRESH_INTERVAL", &v)?;
            files.refresh_interval = (!interval.is_zero()).then_some(interval);
        }
        files.secrets = secret_specs(&get)?;

        Ok(Self {
            run_mode,
            proxy,
            token,
            files,
            log_level: get("VAULT_LOG_LEVEL")
                .map(|v| v.trim().to_ascii_lowercase())
                .unwrap_or_else(|| "info".to_owned()),
        })
    }
}

/// [`vault_client::ClientConfig::from_lookup`] with `VLE_VAULT_ADDR`
/// overriding `VAULT_ADDR`, as in hashicorp/vault-lambda-extension.
pub fn client_config_from_lookup<F>(lookup: F) -> Result<vault_client::ClientConfig, ConfigError>
where
    F: Fn(&str) -> Option<String>,
{
    let vle = lookup("VLE_VAULT_ADDR").filter(|v| !v.trim().is_empty());
    vault_client::ClientConfig::from_lookup(|name| match (name, &vle) {
        ("VAULT_ADDR", Some(addr)) => Some(addr.clone()),
        // The proxy holds its own token; VAULT_TOKEN is a login input only.
        ("VAULT_TOKEN", _) => None,
        _ => lookup(name),
    })
}

/// Variables the Lambda extension takes the SSRF secret from when neither
/// `VAULT_PROXY_SECRET` nor `VAULT_PROXY_SECRET_ENV_VARIABLES` is set: the
/// first one set wins (SnapStart functions have no `AWS_SESSION_TOKEN` but
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN`), as AWS's own caching agent does.
pub const LAMBDA_SECRET_VARIABLES: &[&str] =
    &["AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"];

/// The secret the guard accepts in the secret header: `VAULT_PROXY_SECRET`,
/// else the first set variable of `VAULT_PROXY_SECRET_ENV_VARIABLES` (a
/// comma-separated list of names; in Lambda by default
/// [`LAMBDA_SECRET_VARIABLES`]). A value `file:///path` means the secret is
/// the content of that file (trimmed).
fn proxy_secret(
    get: &dyn Fn(&str) -> Option<String>,
    lambda: bool,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(v) = get("VAULT_PROXY_SECRET") {
        return secret_value("VAULT_PROXY_SECRET", "VAULT_PROXY_SECRET", &v).map(Some);
    }
    let names: Vec<String> = match get("VAULT_PROXY_SECRET_ENV_VARIABLES") {
        Some(list) => {
            let names: Vec<String> = list
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect();
            if let Some(bad) = names
                .iter()
                .find(|n| !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            {
                return Err(ConfigError::invalid(
                    "VAULT_PROXY_SECRET_ENV_VARIABLES",
                    "comma-separated variable names such as \
                               AWS_SESSION_TOKEN,AWS_CONTAINER_AUTHORIZATION_TOKEN",
                    format!("{bad:?} is not a variable name"),
                ));
            }
            names
        }
        None if lambda => LAMBDA_SECRET_VARIABLES
            .iter()
            .map(|n| (*n).to_owned())
            .collect(),
        None => Vec::new(),
    };
    for name in &names {
        if let Some(v) = get(name) {
            return secret_value("VAULT_PROXY_SECRET_ENV_VARIABLES", name, &v).map(Some);
        }
    }
    Ok(None)
}

/// `raw`, or the content of the file a `file:///path` value names. Errors
/// name `name` (the variable read) but never show the secret.
fn secret_value(
    variable: &'static str,
    name: &str,
    raw: &str,
) -> Result<SecretString, ConfigError> {
    let raw = raw.trim();
    let Some(path) = raw.strip_prefix("file://") else {
        return Ok(SecretString::from(raw.to_owned()));
    };
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(ConfigError::invalid(
            variable,
            "a secret, or file:///absolute/path to a file holding it",
            format!("{name} names the relative file {}", path.display()),
        ));
    }
    let text =
        zeroize::Zeroizing::new(
            std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                variable,
                path: path.clone(),
                problem: format!("cannot read the secret named by {name}: {e}"),
            })?,
        );
    let secret = text.trim();
    if secret.is_empty() {
        return Err(ConfigError::File {
            variable,
            path,
            problem: format!("the secret file named by {name} is empty"),
        });
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// The Lambda extension's default `VAULT_CLIENT_TIMEOUT` (one HTTP attempt):
/// Lambda's default function timeout. A hung Vault then fails a proxied
/// request within an invocation instead of after the Vault CLI's 60 s, and
/// a login with its retries fits in the 10 s init phase.
pub const LAMBDA_CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// [`client_config_from_lookup`] with the Lambda extension's default
/// timeout, [`LAMBDA_CLIENT_TIMEOUT`], when `VAULT_CLIENT_TIMEOUT` is unset
/// (the sidecar and the CLI keep the Vault CLI's 60 s).
pub fn lambda_client_config_from_lookup<F>(
    lookup: F,
) -> Result<vault_client::ClientConfig, ConfigError>
where
    F: Fn(&str) -> Option<String>,
{
    client_config_from_lookup(|name| {
        let value = lookup(name);
        if name == "VAULT_CLIENT_TIMEOUT" && value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            return Some(format!("{}ms", LAMBDA_CLIENT_TIMEOUT.as_millis()));
        }
        value
    })
}

/// `VAULT_SECRET_PATH`/`VAULT_SECRET_FILE` and every `VAULT_SECRET_PATH_<X>`
/// with its `VAULT_SECRET_FILE_<X>`.
fn secret_specs(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<SecretFileSpec>, ConfigError> {
    let mut specs = Vec::new();
    if let Some(path) = get("VAULT_SECRET_PATH") {
        let file = get("VAULT_SECRET_FILE").unwrap_or_else(|| DEFAULT_SECRET_FILE.to_owned());
        specs.push(SecretFileSpec {
            name: String::new(),
            path: clean_path(&path),
            file: secret_file(&file),
        });
    }
    // The lookup cannot enumerate, so the process environment supplies the
    // names; the values still come through `get`.
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter_map(|k| k.strip_prefix("VAULT_SECRET_PATH_").map(str::to_owned))
        .collect();
    names.extend(
        get("VAULT_SECRET_NAMES")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    );
    names.sort();
    names.dedup();
    for name in names {
        let Some(path) = get(&format!("VAULT_SECRET_PATH_{name}")) else {
            continue;
        };
        let file = get(&format!("VAULT_SECRET_FILE_{name}"))
            .unwrap_or_else(|| format!("{}.json", name.to_ascii_lowercase()));
        specs.push(SecretFileSpec {
            name,
            path: clean_path(&path),
            file: secret_file(&file),
        });
    }
    for (i, a) in specs.iter().enumerate() {
        if let Some(b) = specs[i + 1..].iter().find(|b| b.file == a.file) {
            return Err(ConfigError::Inconsistent(format!(
                "VAULT_SECRET_FILE{} and VAULT_SECRET_FILE{} both name {}; give each secret its own file",
                suffix(&a.name),
                suffix(&b.name),
                a.file.display()
            )));
        }
    }
    Ok(specs)
}

fn suffix(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("_{name}")
    }
}

fn clean_path(path: &str) -> String {
    let p = path.trim().trim_start_matches('/');
    p.strip_prefix("v1/").unwrap_or(p).to_owned()
}

/// Absolute file names as given; relative ones under `/tmp/vault/`; `.`,
/// `..` and repeated `/` resolved (lexically), so that two spellings of one
/// file compare equal.
fn secret_file(file: &str) -> PathBuf {
    let file = Path::new(file.trim());
    let joined = if file.is_absolute() {
        file.to_owned()
    } else {
        Path::new(SECRET_DIR).join(file)
    };
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}

fn parse_listen(raw: &str) -> Result<Listen, ConfigError> {
    let raw = raw.trim();
    if let Some(path) = raw.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ConfigError::invalid(
                "VAULT_PROXY_LISTEN",
                "host:port such as 127.0.0.1:8200, or unix:/path/to/socket",
                "the unix socket path is empty",
            ));
        }
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    raw.parse::<SocketAddr>().map(Listen::Tcp).map_err(|_| {
        ConfigError::invalid(
            "VAULT_PROXY_LISTEN",
            "host:port such as 127.0.0.1:8200, or unix:/path/to/socket",
            format!("got {raw:?}"),
        )
    })
}

fn positive(variable: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(variable, raw)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(
            variable,
            "a positive duration such as 10s",
            "it is zero",
        ));
    }
    Ok(d)
}

fn parse_u64(variable: &'static str, raw: &str) -> Result<u64, ConfigError> {
    raw.trim().parse().map_err(|_| {
        ConfigError::invalid(variable, "a non-negative integer", format!("got {raw:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults() {
        let s = Settings::from_lookup(lookup(&[]), false).unwrap();
        assert_eq!(s.run_mode, RunMode::Default);
        assert_eq!(s.proxy.listen.to_string(), DEFAULT_LISTEN);
        assert!(s.proxy.guard.enabled);
        assert!(s.proxy.guard.secret_header.is_none());
        assert!(!s.proxy.cache.enabled_by_default);
        assert_eq!(s.proxy.cache.max_staleness, Duration::from_secs(60));
        assert_eq!(s.token.grace, DEFAULT_GRACE);
        assert!(s.files.secrets.is_empty());
        assert_eq!(s.log_level, "info");
    }

    #[test]
    fn hashicorp_names_are_understood() {
        let s = Settings::from_lookup(
            lookup(&[
                ("VAULT_RUN_MODE", "PrOxY"),
                ("VAULT_TOKEN_EXPIRY_GRACE_PERIOD", "3s"),
                ("VAULT_DEFAULT_CACHE_TTL", "15m"),
                ("VAULT_DEFAULT_CACHE_ENABLED", "true"),
                ("VAULT_CACHE_MAX_STALENESS", "20s"),
                ("VAULT_SECRET_PATH", "/v1/secret/data/app"),
                ("VAULT_SECRET_NAMES", "DB"),
                ("VAULT_SECRET_PATH_DB", "database/creds/app"),
                ("VAULT_SECRET_FILE_DB", "db.json"),
                ("AWS_SESSION_TOKEN", "session-secret"),
                ("VAULT_LOG_LEVEL", "DEBUG"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(s.run_mode, RunMode::Proxy);
        assert_eq!(s.token.grace, Duration::from_secs(3));
        assert_eq!(s.files.grace, Duration::from_secs(3));
        assert_eq!(s.proxy.cache.default_ttl, Duration::from_secs(900));
        assert!(s.proxy.cache.enabled_by_default);
        assert_eq!(s.proxy.cache.max_staleness, Duration::from_secs(20));
        assert_eq!(
            s.files.secrets,
            vec![
                SecretFileSpec {
                    name: String::new(),
                    path: "secret/data/app".into(),
                    file: PathBuf::from(DEFAULT_SECRET_FILE),
                },
                SecretFileSpec {
                    name: "DB".into(),
                    path: "database/creds/app".into(),
                    file: PathBuf::from("/tmp/vault/db.json"),
                },
            ]
        );
        let (header, _) = s.proxy.guard.secret_header.as_ref().unwrap();
        assert_eq!(header.as_str(), DEFAULT_SECRET_HEADER);
        assert!(!format!("{s:?}").contains("session-secret"));
        assert_eq!(s.log_level, "debug");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value, want) in [
            (
                "VAULT_RUN_MODE",
                "sidecar",
                "VAULT_RUN_MODE is invalid: got \"sidecar\"; expected default, proxy or file",
            ),
            (
                "VAULT_PROXY_LISTEN",
                "localhost",
                "VAULT_PROXY_LISTEN is invalid",
            ),
            (
                "VAULT_DEFAULT_CACHE_ENABLED",
                "sometimes",
                "VAULT_DEFAULT_CACHE_ENABLED is invalid",
            ),
            (
                "VAULT_CACHE_MAX_STALENESS",
                "0s",
                "VAULT_CACHE_MAX_STALENESS is invalid: it is zero; expected a positive duration",
            ),
            (
                "VAULT_TOKEN_EXPIRY_GRACE_PERIOD",
                "soon",
                "VAULT_TOKEN_EXPIRY_GRACE_PERIOD is invalid",
            ),
            (
                "VAULT_PROXY_SECRET_HEADER",
                "bad header",
                "VAULT_PROXY_SECRET_HEADER is invalid",
            ),
        ] {
            let err = Settings::from_lookup(lookup(&[(var, value)]), false).unwrap_err();
            assert!(err.to_string().contains(want), "{var}={value}: {err}");
        }
        let err = Settings::from_lookup(
            lookup(&[
                ("VAULT_SECRET_PATH", "a"),
                ("VAULT_SECRET_NAMES", "B"),
                ("VAULT_SECRET_PATH_B", "b"),
                ("VAULT_SECRET_FILE_B", "secret.json"),
            ]),
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("both name /tmp/vault/secret.json"),
            "{err}"
        );
    }

    #[test]
    fn the_ssrf_secret_comes_from_a_variable_list_or_a_file() {
        use secrecy::ExposeSecret;
        let secret = |vars: &[(&str, &str)], lambda: bool| {
            Settings::from_lookup(lookup(vars), lambda)
                .unwrap()
                .proxy
                .guard
                .secret_header
                .map(|(_, s)| s.expose_secret().to_owned())
        };
        // SnapStart: no AWS_SESSION_TOKEN, but AWS_CONTAINER_AUTHORIZATION_TOKEN.
        assert_eq!(
            secret(&[("AWS_CONTAINER_AUTHORIZATION_TOKEN", "snap")], true).as_deref(),
            Some("snap")
        );
        assert_eq!(
            secret(
                &[
                    ("AWS_SESSION_TOKEN", "session"),
                    ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "snap")
                ],
                true
            )
            .as_deref(),
            Some("session")
        );
        // The sidecar has no default list.
        assert_eq!(secret(&[("AWS_SESSION_TOKEN", "session")], false), None);
        // A list of names: the first set one wins.
        assert_eq!(
            secret(
                &[
                    ("VAULT_PROXY_SECRET_ENV_VARIABLES", "MY_TOKEN, OTHER"),
                    ("OTHER", "other"),
                    ("AWS_SESSION_TOKEN", "session"),
                ],
                true
            )
            .as_deref(),
            Some("other")
        );
        // file:///path: the file's content.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let url = format!("file://{}", file.display());
        assert_eq!(
            secret(&[("VAULT_PROXY_SECRET", &url)], false).as_deref(),
            Some("from-file")
        );
        assert_eq!(
            secret(
                &[
                    ("VAULT_PROXY_SECRET_ENV_VARIABLES", "ECS_TOKEN"),
                    ("ECS_TOKEN", &url)
                ],
                false
            )
            .as_deref(),
            Some("from-file")
        );
        // Errors name the variable and never show the secret.
        let missing = format!("file://{}", dir.path().join("nope").display());
        let err = Settings::from_lookup(
            lookup(&[
                ("VAULT_PROXY_SECRET_ENV_VARIABLES", "ECS_TOKEN"),
                ("ECS_TOKEN", &missing),
            ]),
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("VAULT_PROXY_SECRET_ENV_VARIABLES")
                && err.to_string().contains("ECS_TOKEN"),
            "{err}"
        );
        let err = Settings::from_lookup(
            lookup(&[("VAULT_PROXY_SECRET_ENV_VARIABLES", "A,B-C")]),
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("\"B-C\" is not a variable name"),
            "{err}"
        );
    }

    #[test]
    fn two_spellings_of_one_file_are_refused() {
        for (a, b) in [
            ("/tmp/vault/x.json", "/tmp/vault/../vault/x.json"),
            ("/tmp/vault/x.json", "/tmp/vault/./x.json"),
            ("/tmp/vault/x.json", "/tmp//vault/x.json"),
            ("x.json", "/tmp/vault/x.json"),
            ("sub/../x.json", "x.json"),
        ] {
            let err = Settings::from_lookup(
                lookup(&[
                    ("VAULT_SECRET_PATH", "a"),
                    ("VAULT_SECRET_FILE", a),
                    ("VAULT_SECRET_NAMES", "B"),
                    ("VAULT_SECRET_PATH_B", "b"),
                    ("VAULT_SECRET_FILE_B", b),
                ]),
                false,
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("both name /tmp/vault/x.json"),
                "{a} {b}: {err}"
            );
        }
        let s = Settings::from_lookup(
            lookup(&[
                ("VAULT_SECRET_PATH", "a"),
                ("VAULT_SECRET_FILE", "/tmp/vault/../other/./a.json"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(s.files.secrets[0].file, Path::new("/tmp/other/a.json"));
    }

    #[test]
    fn listen_accepts_unix_sockets_and_vle_addr_wins() {
        let s = Settings::from_lookup(lookup(&[("VAULT_PROXY_LISTEN", "unix:/run/v.sock")]), false)
            .unwrap();
        assert_eq!(s.proxy.listen, Listen::Unix("/run/v.sock".into()));
        let c = client_config_from_lookup(lookup(&[
            ("VAULT_ADDR", "http://a:1"),
            ("VLE_VAULT_ADDR", "http://b:2"),
            ("VAULT_TOKEN", "hvs.x"),
        ]))
        .unwrap();
        assert_eq!(c.address().as_str(), "http://b:2/");
        assert!(!c.has_token());
    }

    #[test]
    fn the_extension_has_a_lambda_sized_timeout_and_the_sidecar_the_cli_one() {
        let lambda = lambda_client_config_from_lookup(lookup(&[])).unwrap();
        assert_eq!(lambda.timeout(), LAMBDA_CLIENT_TIMEOUT);
        let sidecar = client_config_from_lookup(lookup(&[])).unwrap();
        assert_eq!(sidecar.timeout(), vault_client::DEFAULT_TIMEOUT);
        let set =
            lambda_client_config_from_lookup(lookup(&[("VAULT_CLIENT_TIMEOUT", "20s")])).unwrap();
        assert_eq!(set.timeout(), Duration::from_secs(20));
    }
}
