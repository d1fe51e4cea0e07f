//! Test-only: starts real peers on free 127.0.0.1 ports for integration tests.
//!
//! Install the peers once with `scripts/install-peers` (into `.peers/` at the
//! workspace root, or `$VAULT_AWS_PEERS_DIR`). A missing peer makes `start`
//! panic with a message naming that script: tests never pass silently.
//!
//! | peer | handle | binary |
//! |---|---|---|
//! | OpenBao dev server | [`OpenBao`] | `.peers/bin/bao` |
//! | moto server (STS, IAM, S3, KMS, SNS, Secrets Manager) | [`Moto`] | `.peers/bin/moto_server` |
//! | PostgreSQL (runs as `nobody` when the tests run as root) | [`Postgres`] | `.peers/pgbin/{initdb,postgres,psql}` |
//! | AWS Lambda Runtime Interface Emulator | [`Rie`] | `.peers/bin/aws-lambda-rie` |
//! | API Gateway HTTP API (payload 2.0, Lambda authorizer) in front of two RIEs | [`ApiGateway`] | – |
//!
//! Every handle stops its peer and everything the peer started, and reaps it,
//! when dropped, also when the test panics. Peers also get `SIGKILL` when the
//! test process dies (`setpriv --pdeathsig KILL`). The kernel sends that signal
//! when the *thread* that spawned the peer exits, so start peers from the test
//! itself (`#[tokio::test]`, either flavor) or a runtime worker thread, never
//! from `spawn_blocking` or a short-lived thread: those threads end and take
//! the peer with them.
//!
//! Requires Linux with util-linux (`setsid`, `setpriv`, `unshare`, `kill`).
//!
//! ```no_run
//! # async fn demo() {
//! let bao = testkit::OpenBao::start().await;
//! bao.bao(&["secrets", "enable", "-path=kv2", "kv-v2"]).await;
//! let url = format!("{}/v1/sys/health", bao.addr());
//! assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
//! # }
//! ```

// This crate exists to make tests fail loudly: panicking on a broken peer is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_gateway;
#[cfg(feature = "s3")]
mod approle;
pub mod cfn;
mod iam_login;
mod lambda_binary;
mod moto;
mod openbao;
mod ports;
mod postgres;
mod process;
pub mod replication;
mod rie;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use api_gateway::ApiGateway;
#[cfg(feature = "s3")]
pub use approle::AppRolePeers;
pub use iam_login::{
    IamLoginServer, IamLoginServerBuilder, ObservedLogin, TempCredentials, assume_role_unsigned,
    canonical_arn, create_assumable_role,
};
pub use lambda_binary::assert_refuses_to_run_outside_lambda;
pub use moto::{AwsUser, Moto};
pub use openbao::OpenBao;
pub use ports::free_port;
pub use postgres::Postgres;
pub use rie::{Rie, RieConfig};

/// Where `scripts/install-peers` put the peers: `$VAULT_AWS_PEERS_DIR`, or
/// `.peers` at the workspace root.
pub fn peers_dir() -> PathBuf {
    match std::env::var_os("VAULT_AWS_PEERS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("testkit lives inside the workspace")
            .join(".peers"),
    }
}

/// `.peers/bin/<name>`; panics naming `scripts/install-peers` when missing.
pub fn peer_bin(name: &str) -> PathBuf {
    installed(name, peers_dir().join("bin").join(name))
}

/// `path` if it exists, else a panic telling how to install `peer`.
fn installed(peer: &str, path: PathBuf) -> PathBuf {
    if !path.exists() {
        panic!(
            "peer `{peer}` is not installed at {}: run scripts/install-peers",
            path.display()
        );
    }
    path
}

/// An HTTP client for talking to the peers: no proxy, bounded time.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build reqwest client")
}

/// True when `url` answers a GET with a 2xx status.
async fn http_ok(client: &reqwest::Client, url: &str) -> bool {
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

/// True when this process runs as root (judged by the owner of /proc/self).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A private temporary directory for one peer.
fn temp_dir(peer: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("testkit-{peer}-"))
        .tempdir()
        .expect("create temporary directory")
}

/// Runs a short-lived command to completion; panics with its output when it fails.
async fn run_ok(what: &str, cmd: &mut tokio::process::Command) -> std::process::Output {
    let out = cmd
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\nstderr:\n{}\nstdout:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    out
}
