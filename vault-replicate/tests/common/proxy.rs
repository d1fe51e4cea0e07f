//! A pass-through HTTP proxy in front of a peer: counts requests in flight
//! (and the most at once), and can add a fixed latency to every call.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Stats {
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub requests: AtomicUsize,
    /// `METHOD path body` of every request (bodies of at most 4 KiB).
    pub log: std::sync::Mutex<Vec<String>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Forwards everything to `upstream` (`http://host:port`), `delay` added
    /// before each call.
    pub async fn start(upstream: &str, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let client = reqwest::Client::new();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let s = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, stats) = (client.clone(), upstream.clone(), s.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (client, upstream, stats) =
                            (client.clone(), upstream.clone(), stats.clone());
                        async move {
                            Ok::<_, Infallible>(
                                forward(&client, &upstream, &stats, delay, req).await,
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Proxy { addr, stats, task }
    }
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    stats: &Stats,
    delay: Duration,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
    stats.requests.fetch_add(1, Ordering::SeqCst);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if let Ok(mut log) = stats.log.lock() {
        let shown = &body[..body.len().min(4096)];
        log.push(format!(
            "{} {path} {}",
            parts.method,
            String::from_utf8_lossy(shown)
        ));
    }
    let mut out = client.request(parts.method.clone(), format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST && k != hyper::header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let response = match out.body(body).send().await {
        Ok(r) => {
            let mut builder = Response::builder().status(r.status());
            for (k, v) in r.headers() {
                if k != hyper::header::TRANSFER_ENCODING && k != hyper::header::CONTENT_LENGTH {
                    builder = builder.header(k, v);
                }
            }
            let bytes = r.bytes().await.unwrap_or_default();
            builder.body(Full::new(bytes)).unwrap()
        }
        Err(e) => Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(e.to_string())))
            .unwrap(),
    };
    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}
