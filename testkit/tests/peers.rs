//! Self-tests: every peer starts, answers a real request, and leaves no
//! process and no bound port behind once dropped.

// Helpers outside `#[test]` fns fail loudly too (clippy's test exemption does not reach them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use testkit::{Moto, OpenBao, Postgres, Rie, RieConfig};

/// `(pid, state, ppid)` of every process.
fn processes() -> Vec<(u32, char, u32)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut f = stat[stat.rfind(')')? + 1..].split_whitespace();
            Some((pid, f.next()?.chars().next()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// `pid` and all its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let all = processes();
    let mut tree = vec![pid];
    let mut i = 0;
    while let Some(&parent) = tree.get(i) {
        tree.extend(all.iter().filter(|p| p.2 == parent).map(|p| p.0));
        i += 1;
    }
    tree
}

/// The peer itself must be reaped (no /proc entry); anything it started must
/// not run any more. (A killed orphan can stay a zombie where PID 1 does not
/// reap, as on this project's VMs: it holds no port and runs no code.)
fn assert_gone(peer: u32, tree: &[u32]) {
    assert!(
        !PathBuf::from(format!("/proc/{peer}")).exists(),
        "peer process {peer} still exists"
    );
    let running: Vec<_> = processes()
        .into_iter()
        .filter(|p| tree.contains(&p.0) && p.1 != 'Z')
        .collect();
    assert!(running.is_empty(), "processes left behind: {running:?}");
}

fn assert_port_free(port: u16) {
    TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} still bound after drop: {e}"));
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn openbao_serves_kv_and_stops_on_drop() {
    let bao = OpenBao::start().await;
    let (pid, port) = (bao.pid(), port_of(&bao.addr()));
    assert_eq!(bao.root_token(), "root");

    bao.bao(&["auth", "enable", "approle"]).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth: serde_json::Value = client
        .get(format!("{}/v1/sys/auth", bao.addr()))
        .header("X-Vault-Token", bao.root_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(auth["data"]["approle/"]["type"], "approle");

    let url = format!("{}/v1/secret/data/testkit/demo", bao.addr());
    let write = client
        .post(&url)
        .header("X-Vault-Token", bao.root_token())
        .json(&json!({"data": {"answer": "42"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 200, "{}", write.text().await.unwrap());
    let read: serde_json::Value = client
        .get(&url)
        .header("X-Vault-Token", bao.root_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"]["data"]["answer"], "42");

    let tree = process_tree(pid);
    drop(bao);
    assert_gone(pid, &tree);
    assert_port_free(port);
    assert_port_free(port + 1);
}

#[tokio::test]
#[should_panic(expected = "bao auth enable aws failed")]
async fn openbao_cli_failure_panics_with_stderr() {
    // OpenBao has no built-in `aws` auth method; the handle is dropped while unwinding.
    OpenBao::start().await.bao(&["auth", "enable", "aws"]).await;
}

#[test]
#[should_panic(expected = "is not installed at")]
fn missing_peer_names_the_install_script() {
    testkit::peer_bin("no-such-peer");
}

/// STS GetCallerIdentity with a well-formed Authorization header for
/// `access_key_id` whose signature is wrong.
async fn get_caller_identity(moto: &Moto, access_key_id: &str) -> (u16, String) {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/20250101/us-east-1/sts/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    );
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(moto.endpoint())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Amz-Date", "20250101T000000Z")
        .header("Authorization", auth)
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn moto_verifies_sigv4_once_enabled() {
    let moto = Moto::start().await;
    let (pid, port) = (moto.pid(), port_of(&moto.endpoint()));

    let alice = moto.create_iam_user("alice").await;
    assert_eq!(alice.user_name, "alice");
    assert!(alice.arn.ends_with(":user/alice"), "{alice:?}");
    assert!(alice.access_key_id.starts_with("AKIA"), "{alice:?}");
    assert!(alice.secret_access_key.len() >= 40, "{alice:?}");

    // Without verification the bad signature is accepted and the key is resolved to alice.
    let (status, body) = get_caller_identity(&moto, &alice.access_key_id).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&alice.arn), "{body}");

    moto.enable_sigv4_verification().await;
    let (status, body) = get_caller_identity(&moto, &alice.access_key_id).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    let (status, body) = get_caller_identity(&moto, "AKIANOSUCHKEY0000000").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("InvalidClientTokenId"), "{body}");

    moto.reset().await;
    moto.disable_sigv4_verification().await;
    let (status, body) = get_caller_identity(&moto, "AKIANOSUCHKEY0000000").await;
    assert_eq!(status, 200, "{body}");

    let tree = process_tree(pid);
    drop(moto);
    assert_gone(pid, &tree);
    assert_port_free(port);
}

/// The uid a process runs as, from /proc/<pid>/status.
fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn postgres_answers_sql_with_password_auth() {
    let pg = Postgres::start().await;
    let (pid, port) = (pg.pid(), pg.port());

    assert_eq!(pg.psql("select 1").await, "1");
    assert_eq!(pg.psql("select current_user").await, pg.superuser());
    assert_ne!(uid_of(pid), 0, "postgres must not run as root");

    // The connection URL works, and TCP really asks for the password.
    let psql = testkit::peers_dir().join("pgbin").join("psql");
    let run = |url: String| {
        Command::new(&psql)
            .args(["-X", "-A", "-t", "-c", "select 2"])
            .arg(url)
            .env_remove("PGPASSWORD")
            .output()
            .unwrap()
    };
    let ok = run(pg.connection_url());
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "2");
    let wrong = pg.connection_url().replace(pg.password(), "wrong-password");
    let denied = run(wrong);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );

    let tree = process_tree(pid);
    assert!(tree.len() > 1, "postgres runs background workers");
    drop(pg);
    assert_gone(pid, &tree);
    assert_port_free(port);
}

#[tokio::test]
async fn rie_runs_function_and_extension_through_shutdown() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rie");
    let note = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(note.path(), "from /opt").unwrap();
    let rie = Rie::start(RieConfig {
        bootstrap: fixtures.join("bootstrap"),
        extensions: vec![fixtures.join("marker-ext")],
        env: vec![("GREETING".into(), "hello".into())],
        files: vec![("data/note.txt".into(), note.path().to_owned())],
    })
    .await;
    let (pid, port) = (rie.pid(), port_of(&rie.emulator_addr()));

    for n in 1..=2 {
        let (status, body) = rie.invoke(&json!({"n": n})).await;
        assert_eq!(status, 200, "{body}\n{}", rie.logs());
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"greeting": "hello", "note": "from /opt", "event": {"n": n}})
        );
    }
    assert!(
        rie.logs().contains("marker-ext registered as"),
        "{}",
        rie.logs()
    );

    let tree = process_tree(pid);
    assert!(
        tree.len() >= 3,
        "RIE runs the function and the extension: {tree:?}"
    );
    let logs = rie.shutdown().await;
    assert!(logs.contains("marker-ext saw SHUTDOWN"), "{logs}");
    assert_eq!(logs.matches(r#""eventType":"INVOKE""#).count(), 2, "{logs}");
    assert_gone(pid, &tree);
    assert_port_free(port);
}
