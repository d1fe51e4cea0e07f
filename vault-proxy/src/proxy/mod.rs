//! The local proxy: SSRF guard → cache → token injection → forward.
//!
//! | module | holds |
//! |---|---|
//! | this one | [`Proxy`]: a request's route through the guard, the cache and the forward; the [`tower_service::Service`] implementation |
//! | `serve` | [`Listener`] and the hyper HTTP/1 server loop (a thin runner over [`Proxy::handle`]) |
//! | `guard` | the SSRF guard: request header or secret, `X-Forwarded-For`, dot segments |
//! | `forward` | the upstream request with the managed token, one re-login and retry on 403, streaming |
//! | `crate::cache` | cache policy: what is cacheable, for how long, what a write evicts |

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

use crate::cache::{
    CacheControl, Cached, Fetch, FetchError, Fetched, Key, Leases, Renewal, ResponseCache,
};
use crate::config::{GuardConfig, METRICS_PATH, ProxyConfig};
use crate::metrics::{Event, Metrics};
use crate::token::{TokenError, TokenManager};
use crate::upstream::Upstream;
use vault_client::error_chain;

mod forward;
mod guard;
mod serve;

use forward::{ReqBody, stream_response, strip_hop_by_hop};
pub use serve::Listener;

/// Body of the proxy's responses.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The error type request bodies may have.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const X_VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");
const X_VAULT_REQUEST: HeaderName = HeaderName::from_static("x-vault-request");
const X_VAULT_NAMESPACE: HeaderName = HeaderName::from_static("x-vault-namespace");
const X_VAULT_CACHE_CONTROL: HeaderName = HeaderName::from_static("x-vault-cache-control");
const X_VAULT_TOKEN_OPTIONS: HeaderName = HeaderName::from_static("x-vault-token-options");
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

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

    /// Handles one request with any body (also usable without a socket:
    /// the proxy is a [`tower_service::Service`] too, e.g. for axum).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let metrics = &self.state.metrics;
        metrics.inc(Event::Request);
        let response = match self.route(req).await {
            Ok(r) => r,
            Err(f) => error_response(f.status, &f.message),
        };
        metrics.response(response.status().as_u16());
        response
    }

    async fn route<B>(&self, req: Request<B>) -> Result<Response<ProxyBody>, Failure>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
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
        guard::check(&st.guard, &st.metrics, path, req.headers())?;
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
        let use_cache = st.cache.as_ref().filter(|c| c.serves(&parts, control));
        if let Some(cache) = use_cache {
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

/// The proxy as a `tower` service, for any request body: mount it in an axum
/// (or any tower-based) server next to your own routes, or test it with
/// `ServiceExt::oneshot` without a socket. It never fails: errors are
/// Vault-style JSON responses.
impl<B> tower_service::Service<Request<B>> for Proxy
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
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

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
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
