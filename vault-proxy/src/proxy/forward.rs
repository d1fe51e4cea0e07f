//! The upstream request: the managed token, hop-by-hop headers dropped,
//! small bodies buffered so a 403 can be retried after a re-login, large ones
//! streamed.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::{
    BoxError, Failure, Proxy, ProxyBody, X_VAULT_CACHE_CONTROL, X_VAULT_NAMESPACE, X_VAULT_TOKEN,
    X_VAULT_TOKEN_OPTIONS,
};
use crate::cache::body_is_empty;
use crate::metrics::Event;
use crate::token::Token;
use vault_client::error_chain;

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

/// A request body ready to send: buffered (retryable) or streamed.
pub(super) enum ReqBody {
    Buffered(Bytes),
    Streaming(reqwest::Body),
}

impl Proxy {
    /// Buffers a small body (so a request can be retried), streams a large one.
    pub(super) async fn request_body<B>(
        &self,
        headers: &HeaderMap,
        body: B,
    ) -> Result<ReqBody, Failure>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
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
            // Any body type: streamed as its data frames (pinned, so it
            // need not be Unpin).
            _ => Ok(ReqBody::Streaming(reqwest::Body::wrap_stream(
                Box::pin(body).into_data_stream(),
            ))),
        }
    }

    /// Sends the request with the managed token; on a 403 for a token that
    /// Vault no longer accepts, logs in once and retries once (buffered bodies).
    pub(super) async fn forward(
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
            ReqBody::Streaming(streamed) => {
                let response = self
                    .send(&parts.method, &url, &headers, &token, streamed)
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
        let started = vault_client::clock::now().into_std();
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
}

pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

pub(super) fn stream_response(response: reqwest::Response) -> Response<ProxyBody> {
    let response: Response<reqwest::Body> = response.into();
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}
