//! Proxy throughput and latency, in one run on this machine: direct to
//! OpenBao with an AppRole token vs our proxy (no cache; cache hit; cache hit
//! while the entry is re-read ahead of its staleness bound) vs
//! `bao proxy` (approle auto-auth, `use_auto_auth_token = "force"`,
//! `cache {}`), at 1, 4 and 16 keep-alive connections. Then the Lambda
//! extension: release binary size, exec-to-register time in proxy mode
//! (against a local fake Extensions API) and RSS after its first login.
//!
//! `cargo build --release -p vault-aws-lambda-extension` first (for the
//! extension table), then `cargo bench -p vault-aws-benches --bench proxy`
//! (`BENCH_SECONDS` per cell, default 2).

// A benchmark fails loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use serde_json::{Value, json};
use testkit::OpenBao;
use vault_aws_benches::{Latencies, Table, fmt_duration};
use vault_client::{ClientConfig, SecretString, VaultClient};
use vault_proxy::{
    CacheConfig, Event, Listen, Listener, Metrics, Proxy, ProxyConfig, TokenConfig, TokenManager,
};

/// Requests, wall time and latencies of one or more load slices.
#[derive(Default)]
struct Measured {
    requests: usize,
    elapsed: Duration,
    latencies: Latencies,
}

impl Measured {
    fn add(&mut self, other: Measured) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `conns` keep-alive HTTP/1.1 connections, each sending GETs one after
/// another for `secs`.
async fn load(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    conns: usize,
    secs: f64,
) -> Measured {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let path = path.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(
                hyper_util::rt::TokioIo::new(stream),
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            let mut lat = Latencies::new();
            while Instant::now() < deadline {
                let mut req = http::Request::get(&path).header("host", addr.to_string());
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                let req = req.body(Empty::new()).unwrap();
                let t = Instant::now();
                sender.ready().await.unwrap();
                let resp = sender.send_request(req).await.unwrap();
                let status = resp.status();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                lat.push(t.elapsed());
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
            lat
        }));
    }
    let mut all = Latencies::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    Measured {
        requests: all.len(),
        elapsed: started.elapsed(),
        latencies: all,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// KV secret, policy and AppRole; returns (role_id, secret_id).
async fn setup(bao: &OpenBao) -> (String, String) {
    bao.root_request(
        "POST",
        "secret/data/bench",
        json!({"data": {"password": "bench-value", "user": "app"}}),
    )
    .await;
    bao.approle_with_policy(
        "bench",
        r#"path "secret/data/*" { capabilities = ["read"] }"#,
    )
    .await
}

/// Our proxy on its own thread with a current-thread runtime, as in the
/// Lambda extension.
fn start_our_proxy(
    vault: String,
    role_id: String,
    secret_id: String,
    cache: CacheConfig,
) -> (SocketAddr, Arc<Metrics>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let metrics = Arc::new(Metrics::new());
    let ours = Arc::clone(&metrics);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = VaultClient::new(ClientConfig::new(&vault).unwrap()).unwrap();
            let auth = Arc::new(vault_approle::AppRoleAuth::new(
                "approle",
                &role_id,
                Some(SecretString::from(secret_id)),
            ));
            let tokens = TokenManager::new(client, auth, TokenConfig::default(), metrics);
            tokens.start();
            let config = ProxyConfig {
                listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
                cache,
                ..ProxyConfig::default()
            };
            let listener = Listener::bind(&config.listen).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            Proxy::new(tokens, &config)
                .serve(listener, tokio_util::sync::CancellationToken::new())
                .await
                .unwrap();
        });
    });
    (rx.recv().unwrap(), ours)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bao proxy` with approle auto-auth, forced auto-auth token and `cache {}`.
async fn start_bao_proxy(
    vault: &str,
    role_id: &str,
    secret_id: &str,
    dir: &std::path::Path,
) -> (SocketAddr, Killed) {
    let port = testkit::free_port();
    std::fs::write(dir.join("role_id"), role_id).unwrap();
    std::fs::write(dir.join("secret_id"), secret_id).unwrap();
    let config = format!(
        r#"vault {{ address = "{vault}" }}
auto_auth {{
  method "approle" {{
    mount_path = "auth/approle"
    config = {{
      role_id_file_path = "{d}/role_id"
      secret_id_file_path = "{d}/secret_id"
      remove_secret_id_file_after_reading = false
    }}
  }}
}}
api_proxy {{ use_auto_auth_token = "force" }}
cache {{}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
"#,
        d = dir.display()
    );
    let file = dir.join("proxy.hcl");
    std::fs::write(&file, config).unwrap();
    let child = Command::new(testkit::peer_bin("bao"))
        .arg("proxy")
        .arg(format!("-config={}", file.display()))
        .env_clear()
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    let url = format!("http://127.0.0.1:{port}/v1/secret/data/bench");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http()
            .get(&url)
            .header("X-Vault-Request", "true")
            .send()
            .await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "bao proxy did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (SocketAddr::from(([127, 0, 0, 1], port)), child)
}

/// A measured path: name, address, request headers.
type Case<'a> = (&'a str, SocketAddr, Vec<(&'a str, String)>);

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}x", a / b)
}

async fn proxies(bao: &OpenBao, role_id: &str, secret_id: &str, secs: f64) {
    let login: Value = http()
        .post(format!("{}/v1/auth/approle/login", bao.addr()))
        .json(&json!({"role_id": role_id, "secret_id": secret_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let (ours, _) = start_our_proxy(
        bao.addr(),
        role_id.to_owned(),
        secret_id.to_owned(),
        CacheConfig::default(),
    );
    // The same proxy with a 200 ms staleness bound: every 150 ms the entry is
    // re-read in the background while hits keep being served (about five
    // times per slice; the entry ends between slices, so each slice starts
    // with a miss).
    let (refreshing, refreshing_metrics) = start_our_proxy(
        bao.addr(),
        role_id.to_owned(),
        secret_id.to_owned(),
        CacheConfig {
            max_staleness: Duration::from_millis(200),
            ..CacheConfig::default()
        },
    );
    let dir = tempfile_dir();
    let (theirs, _bao_proxy) = start_bao_proxy(&bao.addr(), role_id, secret_id, &dir).await;
    let path = "/v1/secret/data/bench";
    let direct = addr_of(&bao.addr());
    let req = ("X-Vault-Request", "true".to_owned());
    let cache = ("X-Vault-Cache-Control", "cache".to_owned());
    let cases: [Case<'_>; 5] = [
        (
            "direct (AppRole token)",
            direct,
            vec![("X-Vault-Token", token), req.clone()],
        ),
        ("vault-proxy, no cache", ours, vec![req.clone()]),
        (
            "vault-proxy, cache hit",
            ours,
            vec![req.clone(), cache.clone()],
        ),
        (
            "vault-proxy, cache hit, refresh ahead (200 ms bound)",
            refreshing,
            vec![req.clone(), cache.clone()],
        ),
        ("bao proxy (cache {})", theirs, vec![req.clone()]),
    ];
    const BAO: usize = 4;
    // Warm up every path (logins, connection pools, the cache entry).
    for (_, addr, headers) in &cases {
        load(*addr, path, headers, 4, 0.3).await;
    }
    let mut table = Table::new([
        "case",
        "conns",
        "req/s",
        "p50",
        "p99",
        "vs direct",
        "vs bao proxy",
    ]);
    // The cases take turns in short slices, so load from outside the
    // benchmark (other processes on the machine) hits them alike.
    const ROUNDS: u32 = 4;
    for conns in [1, 4, 16] {
        let mut results: Vec<Measured> = cases.iter().map(|_| Measured::default()).collect();
        for _ in 0..ROUNDS {
            for ((_, addr, headers), total) in cases.iter().zip(results.iter_mut()) {
                total.add(load(*addr, path, headers, conns, secs / f64::from(ROUNDS)).await);
            }
        }
        let direct_rps = results[0].rps();
        let bao_rps = results[BAO].rps();
        for ((name, _, _), m) in cases.iter().zip(results.iter_mut()) {
            let rps = m.rps();
            table.row([
                (*name).to_owned(),
                conns.to_string(),
                format!("{rps:.0}"),
                fmt_duration(m.latencies.quantile(0.5)),
                fmt_duration(m.latencies.quantile(0.99)),
                ratio(rps, direct_rps),
                ratio(rps, bao_rps),
            ]);
        }
    }
    println!(
        "\nGET {path} through each path ({secs} s per cell in {ROUNDS} interleaved slices; \
         2 cores shared by client, proxies and OpenBao)\n"
    );
    println!("{table}");
    let m = &refreshing_metrics;
    println!(
        "refresh-ahead proxy: {} hits, {} misses, {} refreshes ahead, {} hits served while re-reading",
        m.get(Event::CacheHit),
        m.get(Event::CacheMiss),
        m.get(Event::CacheRefreshAhead),
        m.get(Event::CacheStaleServe),
    );
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vault-aws-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fake Lambda Extensions API: records when `/register` arrives and
/// answers `/event/next` with SHUTDOWN once `release` is set.
async fn fake_extensions_api() -> (SocketAddr, Arc<Mutex<Option<Instant>>>) {
    let registered = Arc::new(Mutex::new(None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::clone(&registered);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let path = req.uri().path().to_owned();
                            let resp = if path.ends_with("/register") {
                                *seen.lock().unwrap() = Some(Instant::now());
                                http::Response::builder()
                                .header("Lambda-Extension-Identifier", "bench-ext-id")
                                .body(Full::new(Bytes::from(
                                    r#"{"functionName":"f","functionVersion":"1","handler":"h"}"#,
                                )))
                                .unwrap()
                            } else if path.ends_with("/event/next") {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                http::Response::new(Full::new(Bytes::new()))
                            } else {
                                http::Response::new(Full::new(Bytes::new()))
                            };
                            Ok::<_, Infallible>(resp)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, registered)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn extension(bao: &OpenBao, role_id: &str, secret_id: &str) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let binary = target.join("release/vault-aws-extension");
    if !binary.exists() {
        println!(
            "\n{} not found: run `cargo build --release -p vault-aws-lambda-extension` for the extension table",
            binary.display()
        );
        return;
    }
    let size = std::fs::metadata(&binary).unwrap().len();
    let mut register = Latencies::new();
    let mut rss = Vec::new();
    for _ in 0..10 {
        let (api, registered) = fake_extensions_api().await;
        let port = testkit::free_port();
        let started = Instant::now();
        let child = Command::new(&binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("VAULT_ADDR", bao.addr())
            .env("VAULT_ROLE_ID", role_id)
            .env("VAULT_SECRET_ID", secret_id)
            .env("VAULT_RUN_MODE", "proxy")
            .env("VAULT_PROXY_LISTEN", format!("127.0.0.1:{port}"))
            .env("VAULT_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child = Killed(child);
        let at = loop {
            if let Some(at) = *registered.lock().unwrap() {
                break at;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the extension did not register"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        register.push(at - started);
        let resp = http()
            .get(format!("http://127.0.0.1:{port}/v1/secret/data/bench"))
            .header("X-Vault-Request", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        rss.push(rss_kib(child.0.id()));
    }
    rss.sort_unstable();
    let mut table = Table::new(["extension", "vault-aws-extension", "hashicorp (published)"]);
    table
        .row([
            "stripped release binary".to_owned(),
            format!("{:.2} MB", size as f64 / 1e6),
            "8.5 MB".to_owned(),
        ])
        .row([
            "exec to /register, proxy mode (p50 / p99 of 10)".to_owned(),
            format!(
                "{} / {}",
                fmt_duration(register.quantile(0.5)),
                fmt_duration(register.quantile(0.99))
            ),
            "8.5 ms".to_owned(),
        ])
        .row([
            "RSS after login + 1 proxied read (median)".to_owned(),
            format!("{:.1} MB", rss[rss.len() / 2] as f64 / 1024.0),
            "+12 MB".to_owned(),
        ]);
    println!("\n{table}");
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let bao = OpenBao::start().await;
        let (role_id, secret_id) = setup(&bao).await;
        proxies(&bao, &role_id, &secret_id, secs).await;
        extension(&bao, &role_id, &secret_id).await;
    });
}
