//! The API Gateway authorizer (`lambda-authorizer`):
//!
//! 1. token lookup: our constant-time `TokenSet::find` (SHA-256 digests,
//!    every token compared) next to the naive early-exit scan, by where the
//!    presented token sits in a set of 64 — ours should not depend on it;
//! 2. the binary under the Lambda Runtime Interface Emulator, warm and cold,
//!    next to a minimal Python authorizer (custom runtime, `hmac.compare_digest`)
//!    doing the same job, and with tokens from a moto Secrets Manager secret
//!    (cached for 300 s, and re-read on every request).
//!
//! `cargo bench -p vault-aws-benches --bench authorizer`

// Bench helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::{Moto, Rie, RieConfig};
use vault_aws_benches::{Latencies, Table, fmt_duration};
use vault_aws_lambda_authorizer::TokenSet;

const SET: usize = 64;
const BATCH: u32 = 2000;
const SAMPLES: usize = 300;
const WARM: usize = 300;
const COLD: usize = 3;

fn token(i: usize) -> String {
    format!("tok{i:03}-{}", "k7Qm4hR2xZp9Lw3Vn8Bc5Df1Gj6Ht0Ys".repeat(2))
}

/// Per-call latency of each closure; the samples are taken round-robin
/// (one batch of each in turn) so load drift on a shared machine affects
/// every scenario alike.
fn per_call(fs: &mut [Box<dyn FnMut() + '_>]) -> Vec<Latencies> {
    let mut out: Vec<Latencies> = fs.iter().map(|_| Latencies::new()).collect();
    for _ in 0..SAMPLES {
        for (f, l) in fs.iter_mut().zip(out.iter_mut()) {
            let t = Instant::now();
            for _ in 0..BATCH {
                f();
            }
            l.push(t.elapsed() / BATCH);
        }
    }
    out
}

fn ns(d: Duration) -> String {
    format!("{} ns", d.as_nanos())
}

fn lookup_table() -> String {
    let tokens: Vec<String> = (0..SET).map(token).collect();
    let set = TokenSet::from_env_list(&SecretString::from(tokens.join(","))).unwrap();
    let near_miss = {
        let mut t = token(0);
        t.pop();
        t.push('!');
        t
    };
    let scenarios = [
        ("match: first of 64", token(0)),
        ("match: 32nd of 64", token(31)),
        ("match: last of 64", token(SET - 1)),
        ("no match: all but the last byte right", near_miss),
        (
            "no match: unrelated",
            "zzzz-unrelated-token-value-0000000000000000".to_owned(),
        ),
    ];
    let mut table = Table::new([
        "presented token",
        "ours p50",
        "ours p99",
        "naive == p50",
        "naive == p99",
    ]);
    let mut fs: Vec<Box<dyn FnMut() + '_>> = Vec::new();
    for (_, presented) in &scenarios {
        let set = &set;
        fs.push(Box::new(move || {
            black_box(set.find(black_box(presented)));
        }));
    }
    for (_, presented) in &scenarios {
        let tokens = &tokens;
        fs.push(Box::new(move || {
            black_box(
                tokens
                    .iter()
                    .position(|t| t.as_bytes() == black_box(presented.as_bytes())),
            );
        }));
    }
    let mut results = per_call(&mut fs);
    drop(fs);
    let n = scenarios.len();
    for (i, (name, _)) in scenarios.iter().enumerate() {
        let ours = (results[i].quantile(0.5), results[i].quantile(0.99));
        let naive = (results[n + i].quantile(0.5), results[n + i].quantile(0.99));
        table.row([
            (*name).to_owned(),
            ns(ours.0),
            ns(ours.1),
            ns(naive.0),
            ns(naive.1),
        ]);
    }
    table.render()
}

/// A minimal Python authorizer as a custom runtime `bootstrap`: the same
/// bearer check (HTTP API 2.0 simple response), constant-time compare.
const PYTHON_BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import hmac, json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
tokens = [t.strip() for t in os.environ["AUTHORIZER_TOKENS"].split(",") if t.strip()]
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    h = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    scheme, _, tok = h.get("authorization", "").partition(" ")
    ok = scheme.lower() == "bearer" and any(hmac.compare_digest(tok.strip(), t) for t in tokens)
    body = json.dumps({"isAuthorized": ok, "context": {}}).encode()
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=body, method="POST")).read()
"#;

fn event(token: &str) -> Value {
    json!({
        "version": "2.0", "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:111122223333:k3x9z7q2ab/prod/GET/orders/42",
        "identitySource": [format!("Bearer {token}")],
        "routeKey": "GET /orders/{id}", "rawPath": "/prod/orders/42", "rawQueryString": "",
        "cookies": ["theme=dark"],
        "headers": {"authorization": format!("Bearer {token}"), "host": "k3x9z7q2ab.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "bench", "x-forwarded-for": "198.51.100.23"},
        "requestContext": {"accountId": "111122223333", "apiId": "k3x9z7q2ab", "requestId": "bench",
            "http": {"method": "GET", "path": "/prod/orders/42", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.23", "userAgent": "bench"},
            "stage": "prod"}
    })
}

async fn check(rie: &Rie, token: &str, allowed: bool) -> Duration {
    let t = Instant::now();
    let (status, body) = rie.invoke(&event(token)).await;
    let elapsed = t.elapsed();
    assert_eq!(status, 200, "{body}\n{}", rie.logs());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["isAuthorized"], allowed, "{body}\n{}", rie.logs());
    elapsed
}

struct Function {
    name: &'static str,
    bootstrap: PathBuf,
    env: Vec<(String, String)>,
}

async fn measure(f: &Function) -> (Latencies, Latencies) {
    let mut cold = Latencies::new();
    let mut warm = Latencies::new();
    for round in 0..COLD {
        let rie = Rie::start(RieConfig {
            bootstrap: f.bootstrap.clone(),
            env: f.env.clone(),
            ..RieConfig::default()
        })
        .await;
        cold.push(check(&rie, &token(1), true).await);
        if round == 0 {
            for i in 0..WARM {
                let ok = i % 2 == 0;
                let t = if ok { token(1) } else { token(999) };
                warm.push(check(&rie, &t, ok).await);
            }
        }
        rie.shutdown().await;
    }
    (cold, warm)
}

fn rie_table(rt: &tokio::runtime::Runtime, ours: &Path) -> String {
    rt.block_on(async {
        let moto = Moto::start().await;
        let sm = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    "AKIATEST", "test", None, None, "bench",
                ))
                .endpoint_url(moto.endpoint())
                .build(),
        );
        let tokens: Vec<String> = (0..4).map(token).collect();
        sm.create_secret()
            .name("bench/tokens")
            .secret_string(serde_json::to_string(&tokens).unwrap())
            .send()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("bootstrap");
        std::fs::write(&python, PYTHON_BOOTSTRAP).unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut env: Vec<(String, String)> = [
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
                ("AWS_REGION", "eu-west-1".to_owned()),
                ("AWS_ACCESS_KEY_ID", "AKIATEST".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            env.extend(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            env
        };
        let joined = tokens.join(",");
        let functions = [
            Function {
                name: "lambda-authorizer, AUTHORIZER_TOKENS",
                bootstrap: ours.to_owned(),
                env: env(&[("AUTHORIZER_TOKENS", &joined)]),
            },
            Function {
                name: "lambda-authorizer, secret (refresh 300 s)",
                bootstrap: ours.to_owned(),
                env: env(&[("AUTHORIZER_TOKENS_SECRET_ID", "bench/tokens")]),
            },
            Function {
                name: "lambda-authorizer, secret (refresh 0 s: GetSecretValue per request)",
                bootstrap: ours.to_owned(),
                env: env(&[
                    ("AUTHORIZER_TOKENS_SECRET_ID", "bench/tokens"),
                    ("AUTHORIZER_TOKENS_REFRESH_SECONDS", "0"),
                ]),
            },
            Function {
                name: "peer: minimal Python authorizer, env tokens",
                bootstrap: python,
                env: env(&[("AUTHORIZER_TOKENS", &joined)]),
            },
        ];
        let mut table = Table::new([
            "function (under RIE, moto on localhost)",
            "cold first invoke p50",
            "warm p50",
            "warm p99",
        ]);
        for f in &functions {
            let (mut cold, mut warm) = measure(f).await;
            table.row([
                f.name.to_owned(),
                fmt_duration(cold.quantile(0.5)),
                fmt_duration(warm.quantile(0.5)),
                fmt_duration(warm.quantile(0.99)),
            ]);
        }
        table.render()
    })
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("\nToken lookup, set of {SET} tokens, {SAMPLES} samples of {BATCH} calls\n");
    println!("{}", lookup_table());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let ours = target.join("release/lambda-authorizer");
    if !ours.exists() {
        println!(
            "\n{} not found: run `cargo build --release -p vault-aws-lambda-authorizer` for the RIE table",
            ours.display()
        );
        return;
    }
    println!(
        "\nrelease binary: {} bytes",
        std::fs::metadata(&ours).unwrap().len()
    );
    println!(
        "\nInvocation latency through RIE ({WARM} warm invokes alternating allow/deny; {COLD} cold starts)\n"
    );
    println!("{}", rie_table(&rt, &ours));
}
