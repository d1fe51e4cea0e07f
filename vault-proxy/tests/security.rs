//! The managed token never leaves Vault's API: a real OpenBao behind a
//! path-prefixed gateway (`http://127.0.0.1:G/vault/` → OpenBao) that records
//! every request it sees. Requests are sent over raw TCP so that their paths
//! reach the proxy exactly as written (HTTP clients resolve `..` themselves).

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use testkit::OpenBao;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vault_proxy::{Event, ProxyConfig};

/// One request the gateway saw: its path (and query) and whether it carried
/// an `X-Vault-Token`.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    token: bool,
}

/// A gateway that serves OpenBao under `/vault/` and answers 404 to anything
/// else, recording every request.
struct Gateway {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Gateway {
    async fn start(vault: String) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        let http = http();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = Arc::clone(&log);
                let http = http.clone();
                let vault = vault.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<Incoming>| {
                            let log = Arc::clone(&log);
                            let http = http.clone();
                            let vault = vault.clone();
                            async move { Ok::<_, Infallible>(gateway(req, &log, &http, &vault).await) }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Gateway { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn gateway(
    req: hyper::Request<Incoming>,
    log: &Mutex<Vec<Seen>>,
    http: &reqwest::Client,
    vault: &str,
) -> hyper::Response<Full<Bytes>> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    log.lock().unwrap().push(Seen {
        path: path.clone(),
        token: req.headers().contains_key("x-vault-token"),
    });
    let Some(rest) = path.strip_prefix("/vault/") else {
        return hyper::Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(
                b"{\"errors\":[\"not vault\"]}",
            )))
            .unwrap();
    };
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut upstream = http.request(parts.method, format!("{vault}/{rest}"));
    for (name, value) in &parts.headers {
        if name != "host" {
            upstream = upstream.header(name, value);
        }
    }
    let resp = upstream.body(body).send().await.unwrap();
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(bytes))
        .unwrap()
}

/// Sends `GET <target>` exactly as written, with `X-Vault-Request: true`;
/// returns the status code and the body.
async fn raw_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Request: true\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the proxy answers")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

const TRAVERSALS: &[&str] = &[
    "/v1/../../admin/x",
    "/v1/../admin/x",
    "/v1/secret/../../../admin/x",
    "/v1/%2e%2e/%2e%2e/admin/x",
    "/v1/%2E%2E/%2E%2E/admin/x",
    "/v1/.%2e/.%2E/admin/x",
    "/v1/secret%2f..%2f..%2f..%2fadmin%2fx",
    "/v1/secret%2F..%2F..%2F..%2Fadmin%2Fx",
    "/v1/..%5c..%5cadmin%5cx",
    "/v1/..%5C..%5Cadmin%5Cx",
    "/v1/%252e%252e/%252e%252e/admin/x",
    "/v1/..;/..;/admin/x",
    "/v1/./../admin/x",
    "/v1/sys/../../admin/x?y=1",
];

#[tokio::test]
async fn the_token_never_leaves_the_vault_prefix() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    let gw = Gateway::start(bao.addr()).await;
    let http = http();

    // With and without the trailing slash: the prefix is kept either way.
    for vault_addr in [
        format!("http://{}/vault/", gw.addr),
        format!("http://{}/vault", gw.addr),
    ] {
        let p = start_proxy(
            &vault_addr,
            approle(),
            token_config(Duration::from_secs(10)),
            ProxyConfig::default(),
        )
        .await;
        let (status, _, body) = get(&http, &p.v1("secret/data/app"), &[]).await;
        assert_eq!(status, 200, "{vault_addr}: {body}");
        assert!(body.contains(KV_VALUE), "{vault_addr}: {body}");

        let mut answers = Vec::new();
        for target in TRAVERSALS {
            answers.push((*target, raw_get(p.addr, target).await));
        }
        let outside: Vec<Seen> = gw
            .seen()
            .into_iter()
            .filter(|s| !s.path.starts_with("/vault/v1/"))
            .collect();
        assert!(
            outside.is_empty(),
            "{vault_addr}: the gateway saw requests outside /vault/v1/ \
             (token = the managed X-Vault-Token went along): {outside:?}"
        );
        for (target, (status, body)) in answers {
            assert_eq!(status, 400, "{vault_addr} {target}: {body}");
            assert!(body.contains("refuses the path"), "{target}: {body}");
        }
        assert_eq!(
            p.metrics.get(Event::Rejected),
            TRAVERSALS.len() as u64,
            "{vault_addr}"
        );
        // The ordinary path still works after the refusals.
        let (status, body) = raw_get(p.addr, "/v1/secret/data/app").await;
        assert_eq!(status, 200, "{body}");
    }
    let seen = gw.seen();
    assert!(
        seen.iter()
            .any(|s| s.path == "/vault/v1/secret/data/app" && s.token),
        "{seen:?}"
    );
}

#[tokio::test]
async fn ssrf_defaults_as_aws_agent_snapstart_secret_and_forwarded_requests() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    // A SnapStart function: no AWS_SESSION_TOKEN, only
    // AWS_CONTAINER_AUTHORIZATION_TOKEN, read with the Lambda defaults.
    let env = |name: &str| {
        (name == "AWS_CONTAINER_AUTHORIZATION_TOKEN").then(|| "snapstart-auth-token".to_owned())
    };
    let settings = vault_proxy::Settings::from_lookup(env, true).unwrap();
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(10)),
        settings.proxy.clone(),
    )
    .await;
    let http = http();
    let url = p.v1("secret/data/app");
    let with_secret = http
        .get(&url)
        .header("X-Vault-AWS-Session-Token", "snapstart-auth-token")
        .send()
        .await
        .unwrap();
    assert_eq!(with_secret.status(), 200);
    assert!(with_secret.text().await.unwrap().contains(KV_VALUE));
    let wrong = http
        .get(&url)
        .header("X-Vault-AWS-Session-Token", "another-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 412);

    // Reached through another proxy: refused, with the header or the secret.
    for (name, value) in [
        ("X-Forwarded-For", "203.0.113.7"),
        ("Forwarded", "for=203.0.113.7"),
    ] {
        let (status, _, body) = get(&http, &url, &[(name, value)]).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body.contains("X-Forwarded-For"), "{body}");
        let resp = http
            .get(&url)
            .header("X-Vault-AWS-Session-Token", "snapstart-auth-token")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name}");
    }
    let (status, _, body) = get(&http, &url, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(p.metrics.get(Event::Rejected), 5);
}
