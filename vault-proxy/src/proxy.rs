//! The local proxy: SSRF guard → cache → token injection → forward.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::cache::{
    CacheControl, Cached, Fetch, FetchError, Fetched, Key, Leases, Renewal, ResponseCache,
};
use crate::config::{GuardConfig, Listen, METRICS_PATH, ProxyConfig};
use crate::metrics::{Event, Metrics};
use crate::token::{Token, TokenError, TokenManager, error_chain};
use crate::upstream::{Upstream, check_path};

/// Body of the proxy's responses.
pub type ProxyBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

const X_VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");
const X_VAULT_REQUEST: HeaderName = HeaderName::from_static("x-vault-request");
const X_VAULT_NAMESPACE: HeaderName = HeaderName::from_static("x-vault-namespace");
const X_VAULT_CACHE_CONTROL: HeaderName = HeaderName::from_static("x-vault-cache-control");
const X_VAULT_TOKEN_OPTIONS: HeaderName = HeaderName::from_static("x-vault-token-options");
const X_VAULT_WRAP_TTL: HeaderName = HeaderName::from_static("x-vault-wrap-ttl");
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Headers that belong to one hop and are never forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

/// A bound listener: TCP or a unix socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// Unix socket (the file is created with mode 0600 and removed first if stale).
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    /// Binds `listen`.
    pub async fn bind(listen: &Listen) -> std::io::Result<Self> {
        match listen {
            Listen::Tcp(addr) => Ok(Self::Tcp(tokio::net::TcpListener::bind(addr).await?)),
            Listen::Unix(path) => {
                if path.exists() {
                    std::fs::remove_file(path)?;
                }
                let listener = tokio::net::UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Ok(Self::Unix(listener, path.clone()))
            }
        }
    }

    /// The TCP address (useful after binding port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix(..) => None,
        }
    }
}

/// Why a request failed inside the proxy (rendered as Vault-style JSON errors).
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn token(e: &TokenError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("vault-aws proxy has no vault token: {e}"),
        )
    }
}

struct State {
    tokens: TokenManager,
    http: reqwest::Client,
    /// `scheme://host:port[/prefix]` of Vault, no trailing slash.
    origin: String,
    /// Builds upstream URLs that never leave `<VAULT_ADDR>/v1/`.
    upstream: Upstream,
    namespace: Option<HeaderValue>,
    guard: GuardConfig,
    cache: Option<ResponseCache>,
    max_retry_body: usize,
    metrics: Arc<Metrics>,
}

/// The proxy. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    state: Arc<State>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("origin", &self.state.origin)
            .field("guard", &self.state.guard)
            .field("cache", &self.state.cache.as_ref().map(|c| &c.config))
            .finish()
    }
}

impl Proxy {
    /// A proxy to the Vault of `tokens.client()` (its HTTP pool, TLS settings and
    /// namespace), authenticating every request with the manager's token.
    pub fn new(tokens: TokenManager, config: &ProxyConfig) -> Self {
        let client = tokens.client().clone();
        let base = client.base_url().as_str();
        let origin = base
            .strip_suffix("v1/")
            .unwrap_or(base)
            .trim_end_matches('/')
            .to_owned();
        let namespace = client
            .namespace()
            .filter(|ns| !ns.is_empty())
            .and_then(|ns| HeaderValue::from_str(ns).ok());
        let metrics = Arc::clone(tokens.metrics());
        Self {
            state: Arc::new(State {
                http: client.http_client().clone(),
                origin,
                upstream: Upstream::new(client.base_url()),
                namespace,
                guard: config.guard.clone(),
                cache: Some(ResponseCache::new(
                    config.cache.clone(),
                    Arc::clone(&metrics),
                    Some(Arc::new(TokenLeases(tokens.clone()))),
                )),
                max_retry_body: config.max_retry_body,
                metrics,
                tokens,
            }),
        }
    }

    /// The token manager.
    pub fn tokens(&self) -> &TokenManager {
        &self.state.tokens
    }

    /// Serves connections from `listener` until `cancel` fires.
    pub async fn serve(self, listener: Listener, cancel: CancellationToken) -> std::io::Result<()> {
        loop {
            match &listener {
                Listener::Tcp(l) => {
                    let accepted = tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        a = l.accept() => a,
                    };
                    match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            // As AWS's agent: answers never leave the local
                            // network segment (a router drops them).
                            let _ = stream.set_ttl(1);
                            self.spawn_connection(stream, cancel.clone());
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
                Listener::Unix(l, _) => {
                    let accepted = tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        a = l.accept() => a,
                    };
                    match accepted {
                        Ok((stream, _)) => self.spawn_connection(stream, cancel.clone()),
                        Err(e) => accept_error(e).await,
                    }
                }
            }
        }
    }

    fn spawn_connection<S>(&self, stream: S, cancel: CancellationToken)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let this = this.clone();
                async move { Ok::<_, Infallible>(this.handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "proxy connection ended with an error");
                    }
                }
                () = cancel.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }

    /// Handles one request (also usable without a socket).
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let metrics = &self.state.metrics;
        metrics.inc(Event::Request);
        let response = match self.route(req).await {
            Ok(r) => r,
            Err(f) => error_response(f.status, &f.message),
        };
        metrics.response(response.status().as_u16());
        response
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Response<ProxyBody>, Failure> {
        let st = &self.state;
        let path = req.uri().path();
        if path == METRICS_PATH && req.method() == Method::GET {
            let mut r = Response::new(full(Bytes::from(st.metrics.render())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return Ok(r);
        }
        if !path.starts_with("/v1/") {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                format!("vault-aws proxy serves /v1/... and {METRICS_PATH} only, not {path}"),
            ));
        }
        if let Err(message) = check_path(path) {
            st.metrics.inc(Event::Rejected);
            return Err(Failure::new(StatusCode::BAD_REQUEST, message));
        }
        if let Some(message) = forwarded_refusal(&st.guard, req.headers()) {
            st.metrics.inc(Event::Rejected);
            return Err(Failure::new(StatusCode::BAD_REQUEST, message));
        }
        if !guard_allows(&st.guard, req.headers()) {
            st.metrics.inc(Event::Rejected);
            let alt = st
                .guard
                .secret_header
                .as_ref()
                .map(|(h, _)| format!(" or the header {h} with the configured secret"))
                .unwrap_or_default();
            return Err(Failure::new(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "vault-aws proxy: missing required header: send X-Vault-Request: true{alt} \
                     (protects against server-side request forgery; set \
                     VAULT_PROXY_REQUIRE_REQUEST_HEADER=false to switch it off)"
                ),
            ));
        }
        let control = match req.headers().get(&X_VAULT_CACHE_CONTROL) {
            Some(v) => Some(
                CacheControl::parse(v.as_bytes())
                    .map_err(|m| Failure::new(StatusCode::BAD_REQUEST, m))?,
            ),
            None => None,
        };
        if req
            .headers()
            .get(&X_VAULT_TOKEN_OPTIONS)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|o| o.trim().eq_ignore_ascii_case("revoke"))
            })
        {
            st.tokens
                .revoke_and_relogin()
                .await
                .map_err(|e| Failure::token(&e))?;
        }

        let (parts, body) = req.into_parts();
        let cacheable_request = parts.method == Method::GET
            && !parts.headers.contains_key(&X_VAULT_WRAP_TTL)
            && body_is_empty(&parts.headers);
        let use_cache = match (&st.cache, control) {
            (None, _) | (_, Some(CacheControl::NoCache)) => None,
            (Some(c), Some(CacheControl::Cache | CacheControl::Recache)) => Some(c),
            (Some(c), None) => c.config.enabled_by_default.then_some(c),
        };
        if let (Some(cache), true) = (use_cache, cacheable_request) {
            let recache = control == Some(CacheControl::Recache);
            return self.cached(cache, &parts, recache).await;
        }

        let body = self.request_body(&parts.headers, body).await?;
        let result = self.forward(&parts, body).await;
        if let Some(cache) = &st.cache {
            // Before the caller sees the answer: read your writes.
            let status = result.as_ref().ok().map(|(r, _)| r.status());
            cache.written(
                &parts.method,
                parts.uri.path(),
                self.namespace_of(&parts),
                status,
            );
        }
        let (response, _) = result?;
        Ok(stream_response(response))
    }

    /// Buffers a small body (so a request can be retried), streams a large one.
    async fn request_body(&self, headers: &HeaderMap, body: Incoming) -> Result<ReqBody, Failure> {
        if body_is_empty(headers) {
            return Ok(ReqBody::Buffered(Bytes::new()));
        }
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        match length {
            Some(n) if n <= self.state.max_retry_body => {
                let bytes = Limited::new(body, self.state.max_retry_body)
                    .collect()
                    .await
                    .map_err(|e| {
                        Failure::new(
                            StatusCode::BAD_REQUEST,
                            format!("cannot read the request body: {e}"),
                        )
                    })?
                    .to_bytes();
                Ok(ReqBody::Buffered(bytes))
            }
            _ => Ok(ReqBody::Streaming(body)),
        }
    }

    /// Sends the request with the managed token; on a 403 for a token that
    /// Vault no longer accepts, logs in once and retries once (buffered bodies).
    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: ReqBody,
    ) -> Result<(reqwest::Response, Arc<Token>), Failure> {
        let st = &self.state;
        let token = st.tokens.token().await.map_err(|e| Failure::token(&e))?;
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = st
            .upstream
            .url(path_and_query)
            .map_err(|m| Failure::new(StatusCode::BAD_REQUEST, m))?;
        let mut headers = HeaderMap::with_capacity(parts.headers.len() + 2);
        for (name, value) in &parts.headers {
            if is_hop_by_hop(name)
                || *name == X_VAULT_TOKEN
                || *name == X_VAULT_CACHE_CONTROL
                || *name == X_VAULT_TOKEN_OPTIONS
                || st
                    .guard
                    .secret_header
                    .as_ref()
                    .is_some_and(|(h, _)| h == name)
            {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        if let Some(ns) = &st.namespace
            && !headers.contains_key(&X_VAULT_NAMESPACE)
        {
            headers.insert(X_VAULT_NAMESPACE, ns.clone());
        }
        match body {
            ReqBody::Buffered(bytes) => {
                let response = self
                    .send(
                        &parts.method,
                        &url,
                        &headers,
                        &token,
                        reqwest::Body::from(bytes.clone()),
                    )
                    .await?;
                if response.status() != StatusCode::FORBIDDEN {
                    return Ok((response, token));
                }
                match st.tokens.recover_from_403(&token).await {
                    Ok(Some(fresh)) => {
                        st.metrics.inc(Event::RetryAfter403);
                        let retried = self
                            .send(
                                &parts.method,
                                &url,
                                &headers,
                                &fresh,
                                reqwest::Body::from(bytes),
                            )
                            .await?;
                        Ok((retried, fresh))
                    }
                    Ok(None) => Ok((response, token)),
                    Err(e) => Err(Failure::token(&e)),
                }
            }
            ReqBody::Streaming(incoming) => {
                let response = self
                    .send(
                        &parts.method,
                        &url,
                        &headers,
                        &token,
                        reqwest::Body::wrap(incoming),
                    )
                    .await?;
                if response.status() == StatusCode::FORBIDDEN {
                    // Cannot retry a streamed body; heal for the next request.
                    let _ = st.tokens.recover_from_403(&token).await;
                }
                Ok((response, token))
            }
        }
    }

    async fn send(
        &self,
        method: &Method,
        url: &url::Url,
        headers: &HeaderMap,
        token: &Token,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, Failure> {
        let st = &self.state;
        let mut headers = headers.clone();
        headers.insert(X_VAULT_TOKEN, token.header().clone());
        let started = Instant::now();
        let result = st
            .http
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        match result {
            Ok(r) => {
                st.metrics.upstream_latency(started.elapsed());
                Ok(r)
            }
            Err(e) => {
                st.metrics.inc(Event::UpstreamFailure);
                let status = if e.is_timeout() {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                let message = format!(
                    "vault-aws proxy cannot reach vault at {}: {}",
                    st.origin,
                    error_chain(&e.without_url())
                );
                tracing::warn!(method = %method, path = %url.path(), error = %message, "upstream request failed");
                Err(Failure::new(status, message))
            }
        }
    }

    /// The namespace a request is sent to: its own header, else `VAULT_NAMESPACE`.
    fn namespace_of<'a>(&'a self, parts: &'a http::request::Parts) -> Option<&'a [u8]> {
        parts
            .headers
            .get(&X_VAULT_NAMESPACE)
            .or(self.state.namespace.as_ref())
            .map(HeaderValue::as_bytes)
    }

    async fn cached(
        &self,
        cache: &ResponseCache,
        parts: &http::request::Parts,
        recache: bool,
    ) -> Result<Response<ProxyBody>, Failure> {
        let key = Key {
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            namespace: self.namespace_of(parts).map(<[u8]>::to_vec),
        };
        if !recache && let Some((entry, refresh)) = cache.lookup(&key).await {
            if self.lease_outlived(&entry).await {
                // Vault revokes the lease with the token that read it.
                cache.drop_outdated_lease(&key, &entry).await;
            } else {
                if refresh {
                    cache.refresh(&key, self.fetch_for_cache(parts));
                }
                self.state.metrics.inc(Event::CacheHit);
                return Ok(cached_response(&entry, true));
            }
        }
        self.state.metrics.inc(Event::CacheMiss);
        let fetch = self.fetch_for_cache(parts);
        let outcome = if recache {
            cache.recache(&key, fetch).await
        } else {
            cache.fill(&key, fetch).await
        };
        match outcome {
            Ok(entry) => Ok(cached_response(&entry, false)),
            Err(e) => Err(Failure::new(e.status, e.message.clone())),
        }
    }

    /// Whether `entry` holds a lease read with another token than the one
    /// requests use now (a new login since, or none to be had).
    async fn lease_outlived(&self, entry: &Cached) -> bool {
        let Some(generation) = entry.lease_generation() else {
            return false;
        };
        match self.state.tokens.token().await {
            Ok(token) => token.generation() != generation,
            Err(_) => true,
        }
    }

    /// A GET of the request's path, as a task of its own (it outlives the
    /// request when it refreshes an entry or other callers wait for it).
    fn fetch_for_cache(&self, parts: &http::request::Parts) -> Fetch {
        let this = self.clone();
        let mut request = Request::new(());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = parts.uri.clone();
        *request.headers_mut() = parts.headers.clone();
        let (parts, ()) = request.into_parts();
        Box::pin(async move {
            let (response, token) = this
                .forward(&parts, ReqBody::Buffered(Bytes::new()))
                .await
                .map_err(|f| FetchError {
                    status: f.status,
                    message: f.message,
                })?;
            let status = response.status();
            let mut headers = response.headers().clone();
            strip_hop_by_hop(&mut headers);
            let body = response.bytes().await.map_err(|e| FetchError {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "vault-aws proxy: vault's response broke off: {}",
                    error_chain(&e.without_url())
                ),
            })?;
            Ok(Fetched {
                status,
                headers,
                body,
                generation: token.generation(),
            })
        })
    }
}

/// Renews the leases of cached responses with the managed token.
struct TokenLeases(TokenManager);

impl Leases for TokenLeases {
    fn renew(
        &self,
        lease_id: &str,
        increment: Duration,
        generation: u64,
    ) -> futures_util::future::BoxFuture<'static, Renewal> {
        let tokens = self.0.clone();
        let id = lease_id.to_owned();
        Box::pin(async move {
            let token = match tokens.token().await {
                Ok(t) => t,
                // Shut down, or a login refused for good: the lease dies
                // with the token that read it.
                Err(e) if !e.is_retryable() => return Renewal::TokenChanged,
                Err(e) => return Renewal::Failed(e.to_string()),
            };
            if token.generation() != generation {
                return Renewal::TokenChanged;
            }
            let result = tokens
                .client()
                .with_token(token.secret().clone())
                .renew_lease(&id, Some(increment))
                .await;
            match result {
                Ok(r) => Renewal::Renewed {
                    granted: r.lease_duration,
                    renewable: r.renewable,
                },
                Err(e) if matches!(e.status(), Some(400 | 403 | 404)) => {
                    Renewal::Refused(error_chain(&e))
                }
                Err(e) => Renewal::Failed(error_chain(&e)),
            }
        })
    }
}

enum ReqBody {
    Buffered(Bytes),
    Streaming(Incoming),
}

async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "cannot accept a connection");
    // EMFILE and friends: do not spin.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn body_is_empty(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::TRANSFER_ENCODING)
        && headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0")
}

/// `X-Vault-Request: true`, or the secret header with the right value
/// (constant-time compare).
fn guard_allows(guard: &GuardConfig, headers: &HeaderMap) -> bool {
    if !guard.enabled {
        return true;
    }
    if headers
        .get(&X_VAULT_REQUEST)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        return true;
    }
    match &guard.secret_header {
        Some((name, secret)) => headers
            .get(name)
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(secret.expose_secret().as_bytes()))),
        None => false,
    }
}

/// With the guard on, a request that passed through another proxy
/// (`X-Forwarded-For` or `Forwarded`) is refused, as AWS's caching agent does:
/// the local proxy is for local callers.
fn forwarded_refusal(guard: &GuardConfig, headers: &HeaderMap) -> Option<&'static str> {
    (guard.enabled
        && (headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED)))
    .then_some(
        "vault-aws proxy refuses requests with X-Forwarded-For or Forwarded: they came \
         through another proxy (protects against server-side request forgery; set \
         VAULT_PROXY_REQUIRE_REQUEST_HEADER=false to switch it off)",
    )
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn stream_response(response: reqwest::Response) -> Response<ProxyBody> {
    let response: Response<reqwest::Body> = response.into();
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}

fn cached_response(entry: &Cached, hit: bool) -> Response<ProxyBody> {
    let mut r = Response::new(full(entry.body.clone()));
    *r.status_mut() = entry.status;
    *r.headers_mut() = entry.headers.clone();
    r.headers_mut().remove(header::CONTENT_LENGTH);
    let h = r.headers_mut();
    h.insert(
        X_CACHE,
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    if hit {
        h.insert(header::AGE, HeaderValue::from(entry.age().as_secs()));
    }
    r
}

fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "errors": [message] }).to_string();
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn guard_needs_the_request_header_or_the_secret() {
        let guard = GuardConfig {
            enabled: true,
            secret_header: Some((
                HeaderName::from_static("x-vault-aws-session-token"),
                SecretString::from("s3cret"),
            )),
        };
        assert!(!guard_allows(&guard, &headers(&[])));
        assert!(guard_allows(
            &guard,
            &headers(&[("x-vault-request", "true")])
        ));
        assert!(guard_allows(
            &guard,
            &headers(&[("x-vault-request", "TRUE")])
        ));
        assert!(!guard_allows(&guard, &headers(&[("x-vault-request", "1")])));
        assert!(guard_allows(
            &guard,
            &headers(&[("x-vault-aws-session-token", "s3cret")])
        ));
        assert!(!guard_allows(
            &guard,
            &headers(&[("x-vault-aws-session-token", "s3cre")])
        ));
        assert!(guard_allows(
            &GuardConfig {
                enabled: false,
                secret_header: None
            },
            &headers(&[])
        ));
    }
}
