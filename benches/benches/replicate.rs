//! Replication at scale: Vault KV v2 (a local OpenBao) -> Secrets Manager
//! (a local moto), 1,000 and 10,000 secrets in nested folders.
//!
//! Scenarios per size: initial sync, no-change sync, 1% changed, and the
//! no-change sync again with per-secret metadata reads (what a Vault without
//! `detailed-metadata` costs, and what the reference sample does on every
//! run). The no-change sync is measured with one full, sequential
//! ListSecrets listing (a cold replicator) and with the concurrent
//! name-partitioned listing (a warm one), on plain moto and on moto behind
//! a pass-through that adds 30 ms to every call (what a call to Secrets
//! Manager costs; moto alone answers in a few ms but scans every secret per
//! call). ListSecrets stays under the default 80 calls/s. Prints wall time
//! and API calls by kind.
//!
//! ```sh
//! cargo bench -p vault-aws-benches --bench replicate             # 1,000
//! cargo bench -p vault-aws-benches --bench replicate -- 1000 10000
//! REPLICATE_BENCH_SIZES=10000 cargo bench -p vault-aws-benches --bench replicate
//! ```
//!
//! moto has no quotas: the write rate limit is off here (with Secrets
//! Manager's real quotas an initial sync of N secrets takes about N / 40 s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Benchmark helpers fail loudly.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use aws_credential_types::Credentials;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use testkit::{Moto, OpenBao};
use vault_aws_benches::{Table, fmt_duration};
use vault_client::{ClientConfig, SecretString, VaultClient};
use vault_replicate::{
    DeletionPolicy, Granularity, Naming, PlanPolicy, Replicator, Report, SecretsManagerTarget,
    SourceScope, VaultKvSource, aws,
};

fn path(i: usize) -> String {
    format!("team-{}/app-{}/secret-{i}", i % 10, (i / 10) % 10)
}

async fn write_all(v: &VaultClient, ids: impl Iterator<Item = usize>, round: u32) {
    stream::iter(ids)
        .map(|i| {
            let v = v.clone();
            async move {
                let data =
                    json!({"user": format!("user-{i}"), "password": format!("pw-{i}-{round}")});
                v.kv2("secret")
                    .write(&path(i), data.as_object().unwrap(), None)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// A pass-through to `upstream` that sleeps `delay` before each call.
async fn latency_proxy(upstream: String, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (client, upstream) = (client.clone(), upstream.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (client, upstream) = (client.clone(), upstream.clone());
                    async move {
                        tokio::time::sleep(delay).await;
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let path = parts
                            .uri
                            .path_and_query()
                            .map(|p| p.as_str())
                            .unwrap_or("/");
                        let mut out =
                            client.request(parts.method.clone(), format!("{upstream}{path}"));
                        for (k, v) in &parts.headers {
                            if k != hyper::header::HOST && k != hyper::header::CONTENT_LENGTH {
                                out = out.header(k, v);
                            }
                        }
                        let r = out.body(body).send().await.unwrap();
                        let mut b = Response::builder().status(r.status());
                        for (k, v) in r.headers() {
                            if k != hyper::header::TRANSFER_ENCODING
                                && k != hyper::header::CONTENT_LENGTH
                            {
                                b = b.header(k, v);
                            }
                        }
                        let bytes = r.bytes().await.unwrap();
                        Ok::<_, Infallible>(b.body(Full::new(bytes)).unwrap())
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

async fn sm_sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws::sdk_config(
        &aws::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.to_owned()),
            max_attempts: 5,
            initial_backoff: Some(Duration::from_millis(50)),
        },
        Some(Credentials::new(
            "AKIDBENCH",
            "bench-secret",
            None,
            None,
            "bench",
        )),
    )
    .await
}

fn row(table: &mut Table, size: usize, scenario: &str, elapsed: Duration, r: &Report) {
    assert!(r.error.is_none(), "{}", r.table());
    if !r.failures.is_empty() {
        eprintln!(
            "{size} {scenario}: {} failed, first: {}",
            r.failures.len(),
            r.failures[0].reason
        );
    }
    let aws_total: u64 = r
        .api_calls
        .iter()
        .filter(|(k, _)| k.starts_with("secretsmanager."))
        .map(|(_, v)| v)
        .sum();
    table.row([
        size.to_string(),
        scenario.to_owned(),
        fmt_duration(elapsed),
        format!(
            "{}/{}/{}/{}",
            r.count("create"),
            r.count("update"),
            r.count("unchanged"),
            r.count("failed")
        ),
        r.calls("vault.list").to_string(),
        r.calls("vault.read_metadata").to_string(),
        r.calls("vault.read").to_string(),
        format!(
            "{}{}",
            r.calls("secretsmanager.ListSecrets"),
            if r.list_partitions > 0 {
                format!(" ({} partitions)", r.list_partitions)
            } else if r.reused_listing {
                " (listing remembered)".to_owned()
            } else {
                String::new()
            }
        ),
        r.calls("secretsmanager.CreateSecret").to_string(),
        r.calls("secretsmanager.PutSecretValue").to_string(),
        r.calls("secretsmanager.TagResource").to_string(),
        aws_total.to_string(),
    ]);
}

async fn bench(size: usize, table: &mut Table) {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    let v = VaultClient::new(
        ClientConfig::new(&bao.addr())
            .unwrap()
            .with_token(SecretString::from(bao.root_token().to_owned())),
    )
    .unwrap();
    let started = Instant::now();
    write_all(&v, 0..size, 0).await;
    eprintln!(
        "{size}: wrote {size} secrets to OpenBao in {}",
        fmt_duration(started.elapsed())
    );

    let sdk = sm_sdk(&moto.endpoint()).await;
    let target = Arc::new(
        SecretsManagerTarget::builder(aws::secretsmanager_client(&sdk))
            .write_tps(0)
            .build()
            .unwrap(),
    );
    let policy = PlanPolicy {
        naming: Naming::new(None, "vault", Granularity::Secret, false).unwrap(),
        deletion: DeletionPolicy::None,
    };
    let source = |detailed: bool| {
        Arc::new(
            VaultKvSource::builder(v.clone())
                .scope(SourceScope::new("secret", ""))
                .detailed_metadata(detailed)
                .build()
                .unwrap(),
        )
    };
    let ours = Replicator::new(source(true), target.clone(), policy.clone(), 16)
        .unwrap()
        .with_partitioned_listing(Duration::from_secs(3600));
    let cold = || Replicator::new(source(true), target.clone(), policy.clone(), 16).unwrap();
    let per_secret = Replicator::new(source(false), target.clone(), policy.clone(), 16).unwrap();

    let t = Instant::now();
    let r = ours.run(false).await;
    row(table, size, "initial sync", t.elapsed(), &r);
    // moto answers some creates with 500 under load (about 1 in 10 at
    // 50,000): the next runs converge.
    let mut failures = r.failures.len();
    for _ in 0..5 {
        if failures == 0 {
            break;
        }
        let t = Instant::now();
        let r = ours.run(false).await;
        row(table, size, "catch-up after failures", t.elapsed(), &r);
        failures = r.failures.len();
    }
    assert_eq!(failures, 0, "{size}: moto kept failing creates");
    if lean() {
        // One listing (partitioned), then only the rows that do not page
        // through moto's secrets again (its ListSecrets scans every secret
        // on every call: minutes at 50,000).
        let t = Instant::now();
        let r = ours.run(false).await;
        row(
            table,
            size,
            "no change, partitioned listing",
            t.elapsed(),
            &r,
        );
        assert_eq!(r.count("unchanged") as usize, size);
        let t = Instant::now();
        let r = ours.run(false).await;
        row(
            table,
            size,
            "no change, remembered listing",
            t.elapsed(),
            &r,
        );
        assert_eq!(r.count("unchanged") as usize, size);
        assert_eq!(r.calls("secretsmanager.ListSecrets"), 0);
        write_all(&v, (0..size).step_by(100), 1).await;
        let t = Instant::now();
        let r = ours.run(false).await;
        row(table, size, "changed 1%", t.elapsed(), &r);
        assert_eq!(r.count("update") as usize, size / 100);
        return;
    }

    let t = Instant::now();
    let r = cold().run(false).await;
    row(table, size, "no change, full listing", t.elapsed(), &r);
    assert_eq!(r.count("unchanged") as usize, size);
    assert_eq!(r.calls("vault.read"), 0);

    let t = Instant::now();
    let r = ours.run(false).await;
    row(
        table,
        size,
        "no change, partitioned listing",
        t.elapsed(),
        &r,
    );
    assert_eq!(r.count("unchanged") as usize, size);
    // That run changed nothing: the next one plans from its listing.
    let t = Instant::now();
    let r = ours.run(false).await;
    row(
        table,
        size,
        "no change, remembered listing",
        t.elapsed(),
        &r,
    );
    assert_eq!(r.count("unchanged") as usize, size);

    // The same against moto behind 30 ms per call.
    let slow = latency_proxy(moto.endpoint(), Duration::from_millis(30)).await;
    let slow_target = Arc::new(
        SecretsManagerTarget::builder(aws::secretsmanager_client(&sm_sdk(&slow).await))
            .write_tps(0)
            .build()
            .unwrap(),
    );
    let slow_run = |partitioned: bool| {
        let r = Replicator::new(source(true), slow_target.clone(), policy.clone(), 16).unwrap();
        if partitioned {
            r.with_partitioned_listing(Duration::from_secs(3600))
        } else {
            r
        }
    };
    let t = Instant::now();
    let r = slow_run(false).run(false).await;
    row(
        table,
        size,
        "no change, full listing, 30 ms/call",
        t.elapsed(),
        &r,
    );
    let warm = slow_run(true);
    let _ = warm.run(false).await;
    warm.forget_listing();
    let t = Instant::now();
    let r = warm.run(false).await;
    row(
        table,
        size,
        "no change, partitioned, 30 ms/call",
        t.elapsed(),
        &r,
    );
    assert_eq!(r.count("unchanged") as usize, size);
    let t = Instant::now();
    let r = warm.run(false).await;
    row(
        table,
        size,
        "no change, remembered listing, 30 ms/call",
        t.elapsed(),
        &r,
    );
    assert_eq!(r.count("unchanged") as usize, size);

    let t = Instant::now();
    let r = per_secret.run(false).await;
    row(
        table,
        size,
        "no change, metadata read per secret",
        t.elapsed(),
        &r,
    );

    write_all(&v, (0..size).step_by(100), 1).await;
    let t = Instant::now();
    let r = ours.run(false).await;
    row(table, size, "changed 1%", t.elapsed(), &r);
    assert_eq!(r.count("update") as usize, size / 100);
}

/// `REPLICATE_BENCH_LEAN=1`: after the initial sync, only the rows whose
/// time is ours rather than moto's listing (see [`bench`]).
fn lean() -> bool {
    std::env::var("REPLICATE_BENCH_LEAN").is_ok_and(|v| v == "1")
}

fn sizes() -> Vec<usize> {
    let from_args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if !from_args.is_empty() {
        return from_args;
    }
    std::env::var("REPLICATE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1000])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut table = Table::new([
        "secrets",
        "scenario",
        "wall",
        "create/update/unchanged/failed",
        "vault LIST",
        "vault metadata reads",
        "vault value reads",
        "ListSecrets",
        "CreateSecret",
        "PutSecretValue",
        "TagResource",
        "AWS calls",
    ]);
    for size in sizes() {
        bench(size, &mut table).await;
        eprintln!("{table}");
    }
    println!(
        "\nvault-replicate: OpenBao -> moto Secrets Manager, 111 folders at most, concurrency 16\n"
    );
    println!("{table}");
}
