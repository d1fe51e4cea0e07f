//! The HTTP client: connection pool, TLS, retries, and the raw request builder
//! every typed endpoint is written with.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::{ClientConfig, ConfigError};
use crate::error::{Error, Result};
use crate::types::VaultResponse;

const USER_AGENT: &str = concat!("vault-aws/", env!("CARGO_PKG_VERSION"));
/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A Vault / OpenBao client.
///
/// Cheap to clone: clones share one connection pool. A clone can carry its
/// own token ([`VaultClient::with_token`]) or namespace
/// ([`VaultClient::with_namespace`]). Retryable failures (connection errors,
/// timeouts, 429, 5xx) are retried with exponential backoff and jitter; other
/// 4xx never are. As in Vault's own client, every method is retried: a POST
/// that timed out after Vault acted on it (generating a secret_id, say) may
/// act twice. Use [`RawRequest::no_retry`] where that matters.
///
/// `Debug` shows the address and whether a token is set, never the token.
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
    token: Option<Arc<SecretString>>,
    namespace: Option<Arc<str>>,
}

struct Inner {
    http: reqwest::Client,
    /// Where requests go, ending in `/v1/`.
    base: Url,
    /// The address as configured (for display).
    address: Url,
    max_retries: u32,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.inner.address.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .field("max_retries", &self.inner.max_retries)
            .finish()
    }
}

impl VaultClient {
    /// Builds a client from a configuration. Fails when a TLS file cannot be
    /// read or parsed.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let tls = &config.tls;
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60));

        let mut roots = Vec::new();
        if let Some(path) = &tls.ca_cert {
            roots.extend(read_certs("VAULT_CACERT", path)?);
        }
        if let Some(dir) = &tls.ca_path {
            let entries = std::fs::read_dir(dir).map_err(|e| file_error("VAULT_CAPATH", dir, e))?;
            let mut files: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for file in files {
                roots.extend(read_certs("VAULT_CAPATH", &file)?);
            }
            if roots.is_empty() {
                return Err(ConfigError::File {
                    variable: "VAULT_CAPATH",
                    path: dir.clone(),
                    problem: "the directory holds no PEM certificates".into(),
                });
            }
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_only(roots);
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            let mut pem =
                std::fs::read(cert).map_err(|e| file_error("VAULT_CLIENT_CERT", cert, e))?;
            let key_pem = zeroize::Zeroizing::new(
                std::fs::read(key).map_err(|e| file_error("VAULT_CLIENT_KEY", key, e))?,
            );
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            let pem = zeroize::Zeroizing::new(pem);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| ConfigError::File {
                variable: "VAULT_CLIENT_CERT",
                path: cert.clone(),
                problem: format!("not a PEM certificate and private key pair: {e}"),
            })?;
            builder = builder.identity(identity);
        }
        if tls.skip_verify {
            tracing::warn!(
                "VAULT_SKIP_VERIFY is set: the vault server's certificate is not verified"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }

        let mut base = config.address.clone();
        if let Some(server_name) = tls.server_name.as_deref().filter(|s| !s.is_empty()) {
            let host = config.address.host_str().unwrap_or_default().to_owned();
            if !host.eq_ignore_ascii_case(server_name) {
                let port = config.address.port_or_known_default().unwrap_or(8200);
                base.set_host(Some(server_name)).map_err(|e| {
                    ConfigError::invalid("VAULT_TLS_SERVER_NAME", "a DNS host name", e.to_string())
                })?;
                // Keep the configured port even if it is the scheme's default.
                let _ = base.set_port(Some(port));
                builder = builder.dns_resolver(Arc::new(ServerNameResolver {
                    server_name: server_name.to_ascii_lowercase(),
                    connect_host: host,
                }));
            }
        }
        // `http://gw/vault` and `http://gw/vault/` both mean the prefix
        // `/vault` (as for the Vault CLI): a relative join would drop a last
        // segment without a trailing slash.
        let prefix = format!("{}/", base.path().trim_end_matches('/'));
        base.set_path(&prefix);
        let base = base.join("v1/").map_err(|e| {
            ConfigError::invalid("VAULT_ADDR", "an http:// or https:// URL", e.to_string())
        })?;
        let http = builder.build().map_err(|e| {
            ConfigError::invalid(
                "TLS settings",
                "usable certificates and keys",
                e.to_string(),
            )
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: normalize_base(base),
                address: config.address,
                max_retries: config.max_retries,
                min_backoff: config.min_backoff,
                max_backoff: config.max_backoff,
            }),
            token: config.token.map(Arc::new),
            namespace: config.namespace.map(Arc::from),
        })
    }

    /// Builds a client from the standard `VAULT_*` variables of the process
    /// environment (see [`ClientConfig::from_lookup`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(ClientConfig::from_env()?)
    }

    /// A clone that sends `token` (sharing the connection pool).
    pub fn with_token(&self, token: SecretString) -> Self {
        Self {
            token: Some(Arc::new(token)),
            ..self.clone()
        }
    }

    /// A clone that sends no token.
    pub fn without_token(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    /// A clone that sends `namespace` as `X-Vault-Namespace` (`None` for the
    /// root namespace).
    pub fn with_namespace(&self, namespace: Option<&str>) -> Self {
        Self {
            namespace: namespace.map(Arc::from),
            ..self.clone()
        }
    }

    /// The configured address.
    pub fn address(&self) -> &Url {
        &self.inner.address
    }

    /// The pooled HTTP client behind this client (TLS settings of the
    /// configuration applied). For components that forward raw HTTP, such as
    /// a local proxy; typed calls should use [`VaultClient::request`].
    pub fn http_client(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The URL requests go to, ending in `/v1/` (with `VAULT_TLS_SERVER_NAME`
    /// applied).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The namespace this client sends, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Whether this client carries a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The token this client sends, if any. Do not log it.
    pub fn token(&self) -> Option<&SecretString> {
        self.token.as_deref()
    }

    /// Starts a raw request to `/v1/<path>` for endpoints without a typed
    /// method. `LIST` is sent as `GET ?list=true`, as the Vault CLI does.
    ///
    /// ```no_run
    /// # async fn f(client: vault_client::VaultClient) -> Result<(), vault_client::Error> {
    /// let mounts: serde_json::Value =
    ///     client.request(http::Method::GET, "sys/mounts").send().await?.json()?;
    /// # Ok(()) }
    /// ```
    pub fn request(&self, method: Method, path: &str) -> RawRequest<'_> {
        RawRequest {
            client: self,
            method,
            path: path.trim_start_matches('/').to_owned(),
            query: Vec::new(),
            body: None,
            headers: HeaderMap::new(),
            token: TokenChoice::Client,
            retry: true,
        }
    }

    /// Starts a `LIST` request (sent as `GET ?list=true`).
    pub fn list_request(&self, path: &str) -> RawRequest<'_> {
        self.request(list_method(), path)
    }

    fn url(&self, path: &str, list: bool, query: &[(String, String)]) -> Result<Url> {
        let mut url = self.inner.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                Error::invalid_input("path", "the vault address cannot carry a path")
            })?;
            segments.pop_if_empty();
            for segment in path.split('/') {
                if segment == "." || segment == ".." {
                    return Err(Error::invalid_input(
                        "path",
                        format!("{path:?} contains a '.' or '..' segment"),
                    ));
                }
                segments.push(segment);
            }
        }
        if list || !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            if list {
                pairs.append_pair("list", "true");
            }
        }
        Ok(url)
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let min = self.inner.min_backoff.as_secs_f64();
        let max = self.inner.max_backoff.as_secs_f64();
        let exp = (min * 2f64.powi(attempt.min(30) as i32)).min(max);
        // "Equal jitter": half fixed, half random, so retries never bunch up.
        let delay = Duration::from_secs_f64(exp / 2.0 + fastrand::f64() * exp / 2.0);
        match retry_after {
            Some(ra) => delay.max(ra.min(MAX_RETRY_AFTER)),
            None => delay,
        }
    }
}

fn normalize_base(mut base: Url) -> Url {
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

fn file_error(variable: &'static str, path: &Path, e: std::io::Error) -> ConfigError {
    ConfigError::File {
        variable,
        path: path.to_owned(),
        problem: e.to_string(),
    }
}

fn read_certs(
    variable: &'static str,
    path: &Path,
) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| file_error(variable, path, e))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ConfigError::File {
        variable,
        path: path.to_owned(),
        problem: format!("not a PEM certificate bundle: {e}"),
    })?;
    if certs.is_empty() {
        return Err(ConfigError::File {
            variable,
            path: path.to_owned(),
            problem: "no PEM certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// `VAULT_TLS_SERVER_NAME`: the URL carries the server name (so TLS verifies
/// against it and sends it as SNI) while connections go to the configured host.
struct ServerNameResolver {
    server_name: String,
    connect_host: String,
}

impl reqwest::dns::Resolve for ServerNameResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = if name.as_str().eq_ignore_ascii_case(&self.server_name) {
            self.connect_host.clone()
        } else {
            name.as_str().to_owned()
        };
        Box::pin(async move {
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

pub(crate) fn list_method() -> Method {
    // "LIST" is a valid token, so this cannot fail; fall back to GET anyway.
    Method::from_bytes(b"LIST").unwrap_or(Method::GET)
}

#[derive(Clone)]
enum TokenChoice {
    Client,
    None,
    Explicit(Arc<SecretString>),
}

/// A request being built. Send it with [`RawRequest::send`].
///
/// `Debug` shows the method and path only (bodies may hold secrets).
#[must_use = "a request does nothing until it is sent"]
pub struct RawRequest<'a> {
    client: &'a VaultClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Bytes>,
    headers: HeaderMap,
    token: TokenChoice,
    retry: bool,
}

impl fmt::Debug for RawRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRequest")
            .field("method", &self.method.as_str())
            .field("path", &self.path)
            .field("has_body", &self.body.is_some())
            .finish()
    }
}

impl<'a> RawRequest<'a> {
    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(Bytes::from(body.to_string()));
        self
    }

    /// Adds a header. Its value is marked sensitive, so HTTP layers do not
    /// log it (it may carry a token).
    pub fn header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.insert(name, value);
        self
    }

    /// Asks Vault to wrap the response for `ttl` (`X-Vault-Wrap-TTL`).
    pub fn wrap_ttl(mut self, ttl: Duration) -> Self {
        let secs = ttl.as_secs().max(1);
        if let Ok(v) = HeaderValue::from_str(&format!("{secs}s")) {
            self.headers
                .insert(HeaderName::from_static("x-vault-wrap-ttl"), v);
        }
        self
    }

    /// Sends no token (login endpoints).
    pub fn no_token(mut self) -> Self {
        self.token = TokenChoice::None;
        self
    }

    /// Sends `token` instead of the client's token.
    pub fn token(mut self, token: &SecretString) -> Self {
        self.token = TokenChoice::Explicit(Arc::new(token.clone()));
        self
    }

    /// Sends once, without retries.
    pub fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }

    /// Sends the request; a non-2xx status is an [`Error::Api`].
    pub async fn send(self) -> Result<RawResponse> {
        self.execute(|s| s.is_success()).await
    }

    /// Sends the request and returns `Ok(None)` on 404 (Vault's answer for a
    /// missing secret or an empty folder).
    pub async fn send_optional(self) -> Result<Option<RawResponse>> {
        let response = self
            .execute(|s| s.is_success() || s == StatusCode::NOT_FOUND)
            .await?;
        Ok((response.status != StatusCode::NOT_FOUND).then_some(response))
    }

    /// Sends the request and decodes the `data` of Vault's envelope;
    /// `Ok(None)` on 404.
    pub async fn data_optional<T: DeserializeOwned>(self) -> Result<Option<T>> {
        self.send_optional().await?.map(|r| r.data()).transpose()
    }

    /// Sends a `LIST` and returns the `keys` of its `data`; a 404 (Vault's
    /// answer for an empty folder) lists as empty.
    pub async fn keys(self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Keys {
            #[serde(default, deserialize_with = "crate::types::nullable")]
            keys: Vec<String>,
        }
        Ok(self
            .data_optional::<Keys>()
            .await?
            .map(|k| k.keys)
            .unwrap_or_default())
    }

    /// Sends the request; statuses for which `accept` returns true are
    /// returned as they are, others become errors (and are retried when
    /// retryable).
    pub async fn execute(self, accept: impl Fn(StatusCode) -> bool) -> Result<RawResponse> {
        let client = self.client;
        let is_list = self.method.as_str() == "LIST";
        let method = if is_list {
            Method::GET
        } else {
            self.method.clone()
        };
        let shown_method = self.method.as_str().to_owned();
        let url = client.url(&self.path, is_list, &self.query)?;
        let shown_path = format!("/v1/{}", self.path);

        let mut headers = self.headers.clone();
        headers.insert(
            HeaderName::from_static("x-vault-request"),
            HeaderValue::from_static("true"),
        );
        let token = match &self.token {
            TokenChoice::Client => client.token.clone(),
            TokenChoice::None => None,
            TokenChoice::Explicit(t) => Some(t.clone()),
        };
        if let Some(token) = token {
            let mut v = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                Error::invalid_input("token", "it is not a valid HTTP header value")
            })?;
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-vault-token"), v);
        }
        if let Some(ns) = client.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            let v = HeaderValue::from_str(ns)
                .map_err(|_| Error::invalid_input("namespace", "it is not a valid header value"))?;
            headers.insert(HeaderName::from_static("x-vault-namespace"), v);
        }
        if self.body.is_some() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }

        let max_retries = if self.retry {
            client.inner.max_retries
        } else {
            0
        };
        let mut attempt = 0;
        loop {
            let mut req = client
                .inner
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &self.body {
                req = req.body(body.clone());
            }
            let (error, retry_after) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    let response_headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) if accept(status) => {
                            tracing::debug!(method = %shown_method, path = %shown_path, status = status.as_u16(), "vault request");
                            return Ok(RawResponse {
                                status,
                                headers: response_headers,
                                body,
                                method: shown_method,
                                path: shown_path,
                            });
                        }
                        Ok(body) => (
                            api_error(status, &shown_method, &shown_path, &body),
                            retry_after,
                        ),
                        Err(e) => (Error::transport(&shown_method, &shown_path, e), None),
                    }
                }
                Err(e) => (Error::transport(&shown_method, &shown_path, e), None),
            };
            if attempt >= max_retries || !error.is_retryable() {
                return Err(error);
            }
            let delay = client.backoff(attempt, retry_after);
            tracing::warn!(
                method = %shown_method, path = %shown_path, attempt = attempt + 1,
                delay_ms = delay.as_millis() as u64, error = %error,
                "retrying vault request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn api_error(status: StatusCode, method: &str, path: &str, body: &[u8]) -> Error {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default, deserialize_with = "crate::types::nullable")]
        errors: Vec<String>,
    }
    let errors = match serde_json::from_slice::<Errors>(body) {
        Ok(e) => e.errors,
        Err(_) => {
            // Not Vault's JSON (a load balancer's page, say): keep a short,
            // single-line excerpt so the user sees who answered.
            let text = String::from_utf8_lossy(body);
            let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let excerpt: String = line.chars().take(160).collect();
            if excerpt.is_empty() {
                Vec::new()
            } else {
                vec![format!("non-JSON body: {excerpt}")]
            }
        }
    };
    Error::Api {
        status: status.as_u16(),
        method: method.to_owned(),
        path: path.to_owned(),
        errors,
    }
}

/// A response from Vault: status, headers and the whole body.
///
/// `Debug` shows the status and size, not the body (it may hold secrets).
pub struct RawResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    method: String,
    path: String,
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("path", &self.path)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl RawResponse {
    /// Decodes the body as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            // serde_json's message names the field and position, not the data.
            Error::decode(
                &self.method,
                &self.path,
                format!("the body does not match the expected shape: {e}"),
            )
        })
    }

    /// Decodes Vault's envelope.
    pub fn vault<T: DeserializeOwned>(&self) -> Result<VaultResponse<T>> {
        self.json()
    }

    /// Decodes Vault's envelope and returns its `data`, which must be present.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T> {
        self.vault::<T>()?
            .data
            .ok_or_else(|| Error::decode(&self.method, &self.path, "the response has no data"))
    }

    /// Decodes Vault's envelope and returns its `auth` block, which must be present.
    pub fn auth(&self) -> Result<crate::AuthInfo> {
        self.vault::<serde_json::Value>()?.auth.ok_or_else(|| {
            Error::decode(&self.method, &self.path, "the response has no auth block")
        })
    }

    /// Decodes Vault's envelope and returns its `wrap_info`, which must be present.
    pub fn wrap_info(&self) -> Result<crate::WrapInfo> {
        self.vault::<serde_json::Value>()?.wrap_info.ok_or_else(|| {
            Error::decode(
                &self.method,
                &self.path,
                "the response is not wrapped (no wrap_info)",
            )
        })
    }
}
