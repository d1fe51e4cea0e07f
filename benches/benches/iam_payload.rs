//! How long building the signed IAM login payload takes, next to what a
//! login costs anyway: one STS verification round trip (moto's STS through
//! testkit's Vault-like login server, on this machine).
//!
//! `cargo bench -p vault-aws-benches --bench iam_payload`
//! (criterion for the payload; then a table with the login round trip).

// Bench helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use criterion::Criterion;
use vault_aws_auth::{AwsIamAuth, Credentials, SharedCredentialsProvider};
use vault_aws_benches::{Latencies, Table, fmt_duration};
use vault_client::{ClientConfig, VaultAuth, VaultClient};

fn auth(provider: SharedCredentialsProvider, server_id: bool) -> AwsIamAuth {
    let mut b = AwsIamAuth::builder()
        .role("app")
        .credentials_provider(provider);
    if server_id {
        b = b.server_id("vault.example.com");
    }
    b.build().unwrap()
}

fn session_creds() -> Credentials {
    Credentials::new(
        "ASIAEXAMPLEEXAMPLE01",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN".repeat(20)),
        Some(SystemTime::now() + std::time::Duration::from_secs(3600)),
        "bench",
    )
}

fn criterion_benches(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let creds = session_creds();
    let provider = SharedCredentialsProvider::new(creds.clone());
    let plain = auth(provider.clone(), false);
    let with_id = auth(provider, true);
    c.bench_function("iam payload: sign_with (session creds)", |b| {
        b.iter(|| black_box(plain.sign_with(&creds, SystemTime::now()).unwrap()))
    });
    c.bench_function("iam payload: sign_with + server id header", |b| {
        b.iter(|| black_box(with_id.sign_with(&creds, SystemTime::now()).unwrap()))
    });
    c.bench_function("iam payload: login_payload (provider + cache)", |b| {
        b.iter(|| black_box(rt.block_on(with_id.login_payload()).unwrap()))
    });
}

/// Payload building vs a full login round trip, as quantiles.
fn peer_table(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let moto = testkit::Moto::start().await;
        let user = moto.create_iam_user("bench").await;
        moto.enable_sigv4_verification().await;
        let server = testkit::IamLoginServer::builder(&moto.endpoint())
            .server_id("vault.example.com")
            .role("app", &[&user.arn])
            .start()
            .await;
        let provider = SharedCredentialsProvider::new(Credentials::new(
            &user.access_key_id,
            &user.secret_access_key,
            None,
            None,
            "bench",
        ));
        let auth = auth(provider, true);
        let client = VaultClient::new(ClientConfig::new(&server.addr()).unwrap()).unwrap();
        let mut payload = Latencies::new();
        for _ in 0..2000 {
            let t = Instant::now();
            black_box(auth.login_payload().await.unwrap());
            payload.push(t.elapsed());
        }
        auth.login(&client).await.unwrap(); // warm the connection
        let mut login = Latencies::new();
        for _ in 0..50 {
            let t = Instant::now();
            auth.login(&client).await.unwrap();
            login.push(t.elapsed());
        }
        let mut table = Table::new(["what", "n", "p50", "p90", "p99"]);
        for (name, l) in [
            ("build signed payload (ours)", &mut payload),
            ("full login: ours + server + moto STS verify", &mut login),
        ] {
            let n = l.len().to_string();
            table.row([
                name.to_owned(),
                n,
                fmt_duration(l.quantile(0.5)),
                fmt_duration(l.quantile(0.9)),
                fmt_duration(l.quantile(0.99)),
            ]);
        }
        println!("\n{table}");
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &rt);
    c.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: skip the peers there.
    if std::env::args().any(|a| a == "--bench") {
        peer_table(&rt);
    }
}
