//! The proxy and token manager against a real OpenBao (and PostgreSQL for
//! leased database credentials).

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use testkit::{OpenBao, Postgres};
use vault_client::Method;
use vault_proxy::{
    CacheConfig, Event, FilesConfig, GuardConfig, Listen, Listener, Proxy, ProxyConfig,
    SecretFileSpec, SecretFiles,
};

fn proxy_config() -> ProxyConfig {
    ProxyConfig::default()
}

#[tokio::test]
async fn renews_relogs_in_at_max_ttl_and_heals_after_revocation() {
    let bao = OpenBao::start().await;
    setup(&bao, "3s", "7s").await;
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(1)),
        proxy_config(),
    )
    .await;
    let http = http();

    // Requests keep working across renewals and the max-TTL re-login.
    let started = Instant::now();
    let first = p.tokens.wait_ready(Duration::from_secs(10)).await.unwrap();
    while started.elapsed() < Duration::from_secs(10) {
        let (status, _, body) = get(&http, &p.v1("secret/data/app"), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(KV_VALUE));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        p.metrics.get(Event::Renewal) >= 2,
        "renewals: {}",
        p.metrics.get(Event::Renewal)
    );
    assert!(
        p.metrics.get(Event::Login) >= 2,
        "a new login after the 7 s max TTL"
    );
    assert_eq!(
        p.metrics.get(Event::RetryAfter403),
        0,
        "no request saw an expired token"
    );
    let current = p.tokens.current().unwrap();
    assert_ne!(current.accessor(), first.accessor());

    // Revoked behind the proxy's back: the next request logs in again and succeeds.
    let logins = p.metrics.get(Event::Login);
    root(&bao)
        .request(Method::POST, "auth/token/revoke-accessor")
        .json(&json!({"accessor": current.accessor()}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = get(&http, &p.v1("secret/data/app"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(p.metrics.get(Event::RetryAfter403), 1);
    assert_eq!(p.metrics.get(Event::Login), logins + 1);

    // A policy denial is passed on without a new login.
    let (status, _, body) = get(&http, &p.v1("sys/policies/acl"), &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(p.metrics.get(Event::Login), logins + 1);

    // X-Vault-Token-Options: revoke forces a new login and revokes the old token.
    let before = p.tokens.current().unwrap();
    let (status, _, _) = get(
        &http,
        &p.v1("secret/data/app"),
        &[("X-Vault-Token-Options", "revoke")],
    )
    .await;
    assert_eq!(status, 200);
    let after = p.tokens.current().unwrap();
    assert!(after.generation() > before.generation());
    let lookup = root(&bao)
        .request(Method::POST, "auth/token/lookup-accessor")
        .json(&json!({"accessor": before.accessor()}))
        .send()
        .await;
    assert!(lookup.is_err(), "the old token is revoked");

    // Shutdown revokes the token.
    let accessor = after.accessor().to_owned();
    p.tokens.shutdown(Duration::from_secs(2)).await;
    let lookup = root(&bao)
        .request(Method::POST, "auth/token/lookup-accessor")
        .json(&json!({"accessor": accessor}))
        .send()
        .await;
    assert!(lookup.is_err(), "revoked on shutdown");
}

#[tokio::test]
async fn ssrf_guard_and_token_replacement() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    let mut config = proxy_config();
    config.guard = GuardConfig {
        enabled: true,
        secret_header: Some((
            http::HeaderName::from_static("x-vault-aws-session-token"),
            "session-token-value".into(),
        )),
    };
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(10)),
        config,
    )
    .await;
    let http = http();
    let url = p.v1("secret/data/app");

    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 412);
    let text = resp.text().await.unwrap();
    assert!(text.contains("X-Vault-Request: true"), "{text}");
    assert!(text.contains("x-vault-aws-session-token"), "{text}");
    assert!(!text.contains("session-token-value"), "{text}");

    let wrong = http
        .get(&url)
        .header("X-Vault-AWS-Session-Token", "session-token-valuX")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 412);
    let right = http
        .get(&url)
        .header("X-Vault-AWS-Session-Token", "session-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    // A caller's own token is replaced by the managed one.
    let (status, _, body) = get(&http, &url, &[("X-Vault-Token", "hvs.bogus-caller-token")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(KV_VALUE));
    assert_eq!(p.metrics.get(Event::Rejected), 2);

    // The same proxy on a unix socket (mode 0600).
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("proxy.sock");
    let config = ProxyConfig {
        listen: Listen::Unix(sock.clone()),
        ..proxy_config()
    };
    let listener = Listener::bind(&config.listen).await.unwrap();
    tokio::spawn(Proxy::new(p.tokens.clone(), &config).serve(listener, p.cancel.clone()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let over_unix = reqwest::Client::builder()
        .unix_socket(sock.clone())
        .build()
        .unwrap();
    let resp = over_unix
        .get("http://localhost/v1/secret/data/app")
        .header("X-Vault-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains(KV_VALUE));

    // Switched off: any local caller is served; POST bodies are forwarded.
    let mut open = proxy_config();
    open.guard.enabled = false;
    let p2 = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(10)),
        open,
    )
    .await;
    let resp = http.get(p2.v1("secret/data/app")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The default policy may wrap: body and X-Vault-Wrap-TTL reach vault, and
    // unwrapping through the proxy gives the body back.
    let resp = http
        .post(p2.v1("sys/wrapping/wrap"))
        .header("X-Vault-Wrap-TTL", "60s")
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let wrapped: serde_json::Value = resp.json().await.unwrap();
    let wrapping_token = wrapped["wrap_info"]["token"].as_str().unwrap();
    let resp = http
        .post(p2.v1("sys/wrapping/unwrap"))
        .json(&json!({"token": wrapping_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let unwrapped: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(unwrapped["data"]["hello"], "world");
    let metrics = http
        .get(format!("{}{}", p2.url, vault_proxy::METRICS_PATH))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("vault_proxy_logins_total 1"), "{text}");
}

#[tokio::test]
async fn cache_hits_leases_and_single_flight() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    let mut config = proxy_config();
    config.cache = CacheConfig {
        default_ttl: Duration::from_secs(60),
        ..CacheConfig::default()
    };
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(10)),
        config,
    )
    .await;
    let http = http();
    p.tokens.wait_ready(Duration::from_secs(10)).await.unwrap();
    let upstream = || p.metrics.upstream_requests();
    let cache = [("X-Vault-Cache-Control", "cache")];

    // Off by default: no X-Cache header, every request goes upstream.
    let n = upstream();
    let (status, headers, _) = get(&http, &p.v1("secret/data/app"), &[]).await;
    assert_eq!(status, 200);
    assert!(headers.get("x-cache").is_none());
    assert_eq!(upstream(), n + 1);

    // cache: MISS then HIT with an Age; tracing headers do not split the key.
    let n = upstream();
    let (_, h1, b1) = get(&http, &p.v1("secret/data/app"), &cache).await;
    assert_eq!(h1["x-cache"], "MISS");
    let (_, h2, b2) = get(
        &http,
        &p.v1("secret/data/app"),
        &[cache[0], ("traceparent", "00-abc-01")],
    )
    .await;
    assert_eq!(h2["x-cache"], "HIT");
    assert!(h2.get("age").is_some());
    assert_eq!(b1, b2);
    assert_eq!(upstream(), n + 1);
    // A different query is a different entry; nocache bypasses; recache refreshes.
    let (_, h3, _) = get(&http, &p.v1("secret/data/app?version=1"), &cache).await;
    assert_eq!(h3["x-cache"], "MISS");
    let (_, h4, _) = get(
        &http,
        &p.v1("secret/data/app"),
        &[("X-Vault-Cache-Control", "nocache")],
    )
    .await;
    assert!(h4.get("x-cache").is_none());
    let (_, h5, _) = get(
        &http,
        &p.v1("secret/data/app"),
        &[("X-Vault-Cache-Control", "recache")],
    )
    .await;
    assert_eq!(h5["x-cache"], "MISS");
    assert_eq!(upstream(), n + 4);
    let (status, _, body) = get(
        &http,
        &p.v1("secret/data/app"),
        &[("X-Vault-Cache-Control", "sometimes")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("cache, recache or nocache"), "{body}");

    // The namespace is part of the key: the same path in namespace `team`
    // is another secret, forwarded with its X-Vault-Namespace header.
    let root_client = root(&bao);
    root_client
        .request(Method::POST, "sys/namespaces/team")
        .send()
        .await
        .unwrap();
    let team = root_client.with_namespace(Some("team"));
    team.enable_secrets_engine("secret", "kv", Some(json!({"version": "2"})))
        .await
        .unwrap();
    kv2_ready(&team).await;
    team.kv2("secret")
        .write(
            "app",
            json!({"password": "team-value"}).as_object().unwrap(),
            None,
        )
        .await
        .unwrap();
    root_client
        .write_policy(
            "app",
            r#"path "secret/data/*" { capabilities = ["read"] }
path "team/secret/data/*" { capabilities = ["read"] }
path "kv1/*" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    let (status, h, body) = get(
        &http,
        &p.v1("secret/data/app"),
        &[cache[0], ("X-Vault-Namespace", "team")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h["x-cache"], "MISS");
    assert!(
        body.contains("team-value") && !body.contains(KV_VALUE),
        "{body}"
    );
    let (_, h, body) = get(&http, &p.v1("secret/data/app"), &cache).await;
    assert_eq!(h["x-cache"], "HIT");
    assert!(body.contains(KV_VALUE), "{body}");

    // Errors are not cached.
    let n = upstream();
    for _ in 0..2 {
        let (status, h, _) = get(&http, &p.v1("secret/data/missing"), &cache).await;
        assert_eq!(status, 404);
        assert_eq!(h["x-cache"], "MISS");
    }
    assert_eq!(upstream(), n + 2);

    // A leased response (KV v1 ttl=2s) is never served past its lease.
    let n = upstream();
    let (_, h, body) = get(&http, &p.v1("kv1/short"), &cache).await;
    assert_eq!(h["x-cache"], "MISS", "{body}");
    assert!(body.contains("\"lease_duration\":2"), "{body}");
    let (_, h, _) = get(&http, &p.v1("kv1/short"), &cache).await;
    assert_eq!(h["x-cache"], "HIT");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, h, _) = get(&http, &p.v1("kv1/short"), &cache).await;
    assert_eq!(h["x-cache"], "MISS", "expired with its lease");
    assert_eq!(upstream(), n + 2);

    // 32 concurrent misses share one upstream call.
    let n = upstream();
    let url = p.v1("secret/data/app?single-flight=1");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(
                async move { get(&http, &url, &[("X-Vault-Cache-Control", "cache")]).await },
            )
        })
        .collect();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(KV_VALUE));
    }
    assert_eq!(
        upstream(),
        n + 1,
        "one upstream call for 32 concurrent misses"
    );
    assert!(p.metrics.get(Event::CacheHit) >= 2);
}

#[tokio::test]
async fn vault_restart_gives_clear_5xx_then_recovers() {
    let bao = OpenBao::start().await;
    let port = bao.port();
    setup(&bao, "1h", "2h").await;
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(10)),
        proxy_config(),
    )
    .await;
    let http = http();
    let (status, _, _) = get(&http, &p.v1("secret/data/app"), &[]).await;
    assert_eq!(status, 200);

    drop(bao);
    let (status, _, body) = get(&http, &p.v1("secret/data/app"), &[]).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("cannot reach vault at http://127.0.0.1:"),
        "{body}"
    );
    assert!(p.metrics.get(Event::UpstreamFailure) >= 1);

    // A new, empty server on the same port: the old token is unknown there.
    let bao = OpenBao::start_on(port).await;
    setup(&bao, "1h", "2h").await;
    let (status, _, body) = get(&http, &p.v1("secret/data/app"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(KV_VALUE));
    assert_eq!(p.metrics.get(Event::RetryAfter403), 1);
    assert_eq!(p.metrics.get(Event::Login), 2);
}

#[tokio::test]
async fn database_credentials_are_renewed_and_reread_before_max_ttl() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    setup(&bao, "1h", "2h").await;
    bao.enable_postgres_database(&pg, "8s", "16s").await;

    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(1)),
        proxy_config(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.json");
    let files = SecretFiles::new(
        p.tokens.clone(),
        FilesConfig {
            secrets: vec![SecretFileSpec {
                name: "DB".into(),
                path: "database/creds/app".into(),
                file: file.clone(),
            }],
            refresh_interval: None,
            // The re-read starts min(grace, lease / 4) = 2 s before the max
            // TTL: enough slack for a loaded CI machine.
            grace: Duration::from_secs(2),
        },
    );
    let written = Instant::now();
    let states = files.write_all().await.unwrap();
    let first_lease = states[0].lease_id().unwrap().to_owned();
    let (user1, pass1) = creds(&file);
    assert!(
        pg.can_login(&user1, &pass1).await,
        "the first credentials work"
    );
    let _tasks = files.spawn_maintenance(states, p.cancel.clone());

    // Rewritten with new credentials before the 16 s max TTL.
    let (user2, pass2) = loop {
        let (u, pw) = creds(&file);
        if u != user1 {
            break (u, pw);
        }
        assert!(
            written.elapsed() < Duration::from_secs(16),
            "file not rewritten before the max TTL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        p.metrics.get(Event::LeaseRenewal) >= 1,
        "the lease was renewed first"
    );
    assert!(
        pg.can_login(&user2, &pass2).await,
        "the new credentials work"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&first_lease), "a new lease");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A login that takes a while, like a cold IAM login.
struct SlowLogin(std::sync::Arc<dyn vault_client::VaultAuth>);

#[async_trait::async_trait]
impl vault_client::VaultAuth for SlowLogin {
    async fn login(
        &self,
        client: &vault_client::VaultClient,
    ) -> vault_client::Result<vault_client::AuthInfo> {
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.0.login(client).await
    }
    fn method(&self) -> &'static str {
        "slow"
    }
}

#[tokio::test]
async fn requests_wait_for_the_first_login() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    let started = Instant::now();
    let p = start_proxy(
        &bao.addr(),
        std::sync::Arc::new(SlowLogin(approle())),
        token_config(Duration::from_secs(10)),
        proxy_config(),
    )
    .await;
    let http = http();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url) = (http.clone(), p.v1("secret/data/app"));
            tokio::spawn(async move { get(&http, &url, &[]).await })
        })
        .collect();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "they waited for the login"
    );
    assert_eq!(p.metrics.get(Event::Login), 1, "one login for all of them");
}

/// The Python of the peers' client venv (`scripts/install-peers` installs
/// hvac there); panics naming the install script when it is missing.
fn client_python() -> std::path::PathBuf {
    let python = testkit::peers_dir()
        .join("clients")
        .join("bin")
        .join("python");
    assert!(
        python.exists(),
        "the Vault client libraries are not installed at {}: run scripts/install-peers",
        python.display()
    );
    python
}

#[tokio::test]
async fn read_your_writes_with_hvac() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    let root_client = root(&bao);
    root_client
        .request(Method::POST, "sys/namespaces/team")
        .send()
        .await
        .unwrap();
    root_client
        .with_namespace(Some("team"))
        .enable_secrets_engine("secret", "kv", Some(json!({"version": "2"})))
        .await
        .unwrap();
    kv2_ready(&root_client.with_namespace(Some("team"))).await;
    let all = r#"capabilities = ["create", "read", "update", "patch", "delete", "list"]"#;
    root_client
        .write_policy(
            "app",
            &format!("path \"secret/*\" {{ {all} }}\npath \"kv1/*\" {{ {all} }}\npath \"team/secret/*\" {{ {all} }}"),
        )
        .await
        .unwrap();
    // Every GET is cached, for far longer than the test runs.
    let mut config = proxy_config();
    config.guard.enabled = true;
    config.cache = CacheConfig {
        enabled_by_default: true,
        default_ttl: Duration::from_secs(600),
        max_staleness: Duration::from_secs(600),
        ..CacheConfig::default()
    };
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(10)),
        config,
    )
    .await;
    p.tokens.wait_ready(Duration::from_secs(10)).await.unwrap();

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("hvac_read_your_writes.py");
    let out = tokio::process::Command::new(client_python())
        .arg(&script)
        .arg(&p.url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvac saw a stale read through the proxy:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok: every read saw the write"), "{stdout}");
    // The reads were served from the cache (the second of each pair).
    let hits = p.metrics.get(Event::CacheHit);
    assert!(
        hits >= 20,
        "only {hits} cache hits: the cache was not in use"
    );
    assert!(
        p.metrics.get(Event::CacheEvictionWrite) >= 1,
        "writes evicted entries"
    );
}

#[tokio::test]
async fn writes_made_elsewhere_show_within_the_staleness_bound() {
    let bao = OpenBao::start().await;
    setup(&bao, "1h", "2h").await;
    let bound = Duration::from_secs(4);
    let mut config = proxy_config();
    config.cache = CacheConfig {
        enabled_by_default: true,
        default_ttl: Duration::from_secs(600),
        max_staleness: bound,
        ..CacheConfig::default()
    };
    let p = start_proxy(
        &bao.addr(),
        approle(),
        token_config(Duration::from_secs(10)),
        config,
    )
    .await;
    let http = http();
    p.tokens.wait_ready(Duration::from_secs(10)).await.unwrap();
    let url = p.v1("secret/data/app");
    let (_, h, body) = get(&http, &url, &[]).await;
    assert_eq!(h["x-cache"], "MISS");
    assert!(body.contains(KV_VALUE));

    // Another process writes to Vault directly, while the entry is hot.
    tokio::time::sleep(Duration::from_millis(500)).await;
    root(&bao)
        .kv2("secret")
        .write(
            "app",
            json!({"password": "written-elsewhere"})
                .as_object()
                .unwrap(),
            None,
        )
        .await
        .unwrap();
    let written = Instant::now();
    let mut new_from_cache = 0;
    loop {
        let asked = Instant::now();
        let (status, h, body) = get(&http, &url, &[]).await;
        assert_eq!(status, 200, "{body}");
        // A miss (the entry reached the bound before its background re-read
        // landed, as on a loaded machine) carries no Age; a hit must.
        let hit = h.get("x-cache").is_some_and(|v| v == "HIT");
        if hit {
            let age: u64 = h
                .get("age")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("a cache hit without a numeric Age: {h:?}"));
            assert!(age < bound.as_secs(), "served {age} s old");
        }
        let fresh = body.contains("written-elsewhere");
        // The bound, exactly: a request sent once it has passed since the
        // write gets a value Vault was asked for after the write.
        assert!(
            fresh || asked.duration_since(written) < bound,
            "still the old value {:?} after the write",
            asked.duration_since(written)
        );
        if fresh && hit {
            new_from_cache += 1;
        }
        if asked.duration_since(written) > bound * 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Hot: re-read in the background, so the new value came as a hit.
    assert!(
        p.metrics.get(Event::CacheRefreshAhead) >= 1,
        "no refresh ahead"
    );
    assert!(
        p.metrics.get(Event::CacheStaleServe) >= 1,
        "no hit while re-reading"
    );
    assert!(
        new_from_cache >= 1,
        "the written value never came from the cache"
    );
    let metrics = http
        .get(format!("{}{}", p.url, vault_proxy::METRICS_PATH))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vault_proxy_cache_refreshes_ahead_total "),
        "{metrics}"
    );
    assert!(
        metrics.contains("vault_proxy_cache_evictions_total{cause=\"bound\"} "),
        "{metrics}"
    );
}

/// Waits until the new KV v2 mount `secret` of `client`'s namespace takes
/// writes: it first upgrades itself and answers 400 "Upgrading from
/// non-versioned to versioned data" meanwhile, longer on a loaded machine.
/// Leaves nothing behind.
async fn kv2_ready(client: &vault_client::VaultClient) {
    let kv = client.kv2("secret");
    let probe = json!({"probe": "1"});
    for _ in 0..300 {
        match kv
            .write("kv2-ready-probe", probe.as_object().unwrap(), None)
            .await
        {
            Ok(_) => {
                kv.delete_metadata("kv2-ready-probe").await.unwrap();
                return;
            }
            Err(e) if e.to_string().contains("Upgrading from non-versioned") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the KV v2 mount did not finish its upgrade within 30 s");
}
