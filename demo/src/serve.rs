//! Step 3: the Lambda extension (`vault-aws-extension`) with the example
//! function `proxy-function` under the RIE: the function reads its secret
//! through the extension's proxy (second read from the cache), and the
//! extension keeps a dynamic PostgreSQL credential alive (lease renewed).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use testkit::{Rie, RieConfig};

use crate::env::{Bins, World, metric, random_secret};
use crate::report::{block, check, excerpt, fact, mask, secs, tail};

/// Runs step 3.
pub async fn run(world: &World, bins: &Bins) -> anyhow::Result<()> {
    let (role_id, secret_id) = world
        .bao
        .approle_with_policy("shop-function", crate::env::SHOP_POLICY)
        .await;
    let dir = tempfile::Builder::new()
        .prefix("vault-aws-demo-")
        .tempdir()
        .context("create a temporary directory")?;
    let db_file = dir.path().join("db.json");
    let listen = format!("127.0.0.1:{}", testkit::free_port());
    let session_token = random_secret("lambda-session-");
    let env: Vec<(String, String)> = [
        ("VAULT_ADDR", world.bao.addr()),
        ("VAULT_ROLE_ID", role_id),
        ("VAULT_SECRET_ID", secret_id.clone()),
        ("VAULT_RUN_MODE", "default".to_owned()),
        ("VAULT_PROXY_LISTEN", listen.clone()),
        ("VAULT_DEFAULT_CACHE_ENABLED", "true".to_owned()),
        ("VAULT_SECRET_PATH_DB", "database/creds/shop-dev".to_owned()),
        ("VAULT_SECRET_FILE_DB", db_file.display().to_string()),
        ("VAULT_TOKEN_EXPIRY_GRACE_PERIOD", "1s".to_owned()),
        ("VAULT_LOG_LEVEL", "debug".to_owned()),
        ("AWS_SESSION_TOKEN", session_token),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let rie = Rie::start(RieConfig {
        bootstrap: bins.proxy_function.clone(),
        extensions: vec![bins.extension.clone()],
        env,
        files: Vec::new(),
    })
    .await;
    fact(format!(
        "function `proxy-function` + layer /opt/extensions/vault-aws-extension under the RIE;\n\
         extension: AppRole login, proxy on {listen} (cache on), secret file for database/creds/shop-dev"
    ));

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()?;
    let metrics_url = format!("http://{listen}/vault-aws/metrics");
    let metrics = async || -> anyhow::Result<String> {
        Ok(http.get(&metrics_url).send().await?.text().await?)
    };

    let event = json!({"path": "secret/data/shop/dev/app"});
    let mut served = Vec::new();
    for n in 1..=2 {
        let started = Instant::now();
        let (status, body) = rie.invoke(&event).await;
        let took = started.elapsed();
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        let m = metrics().await.context("the proxy's metrics endpoint")?;
        let (hits, misses) = (
            metric(&m, "vault_proxy_cache_hits_total"),
            metric(&m, "vault_proxy_cache_misses_total"),
        );
        let api_key = body["data"]["data"]["api-key"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        fact(format!(
            "invoke {n} {{\"path\": \"secret/data/shop/dev/app\"}} → proxy status {}, api-key {} ({}{}; cache hits {hits}, misses {misses})",
            body["status"],
            mask(&api_key),
            secs(took),
            if n == 1 { ", incl. cold start" } else { "" }
        ));
        check(
            status == 200 && body["status"] == 200 && api_key == world.api_key,
            format!(
                "invoke {n}: the function read the secret through the proxy, with no token of its own"
            ),
            || {
                format!(
                    "status {status}: {body}\nRIE output:\n{}",
                    tail(&rie.logs(), 40)
                )
            },
        )?;
        served.push((hits, misses));
    }
    check(
        served.first() == Some(&(0, 1)) && served.get(1) == Some(&(1, 1)),
        "the first read went to OpenBao (cache miss), the second came from the cache (cache hit)",
        || format!("(hits, misses) after each invoke: {served:?}"),
    )?;
    let anonymous = http
        .get(format!("http://{listen}/v1/secret/data/shop/dev/app"))
        .send()
        .await?
        .status();
    check(
        anonymous == 412,
        "a caller without X-Vault-Request or the function's session token gets 412 (SSRF guard)",
        || format!("status {anonymous}"),
    )?;
    let direct = http
        .get(format!("http://{listen}/v1/secret/data/shop/dev/app"))
        .header("X-Vault-Request", "true")
        .send()
        .await?;
    let header = |name: &str| {
        direct
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let (status, x_cache, age) = (direct.status(), header("x-cache"), header("age"));
    check(
        status == 200 && x_cache == "HIT",
        format!(
            "the same GET with X-Vault-Request: true → {status}, X-Cache: {x_cache}, Age: {age}"
        ),
        || format!("status {status}, X-Cache {x_cache}"),
    )?;

    // The database credential: written before the function started, then renewed.
    let text = std::fs::read_to_string(&db_file)
        .with_context(|| format!("check failed: no secret file {}", db_file.display()))?;
    let creds: Value = serde_json::from_str(&text).context("the secret file is not JSON")?;
    let user = creds["data"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let password = creds["data"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let lease_id = creds["lease_id"].as_str().unwrap_or_default().to_owned();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db_file)?.permissions().mode() & 0o777;
    fact(format!(
        "secret file {} (mode {mode:04o}): PostgreSQL user {user}, password {}, lease {} ({}s)",
        db_file.display(),
        mask(&password),
        lease_id,
        creds["lease_duration"]
    ));
    check(
        mode == 0o600 && world.pg_login(&user, &password).await,
        "the dynamic credentials log in to PostgreSQL; the file is 0600",
        || format!("mode {mode:o}, user {user}"),
    )?;
    // Look the lease up first, then count renewals: the renewal waited for
    // below happens after this lookup, however slow the machine is.
    let before = world.lease(&lease_id).await;
    let renewed_before = metric(&metrics().await?, "vault_proxy_lease_renewals_total");
    let deadline = Instant::now() + Duration::from_secs(15);
    let renewals = loop {
        let n = metric(&metrics().await?, "vault_proxy_lease_renewals_total");
        if n > renewed_before || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let after = world.lease(&lease_id).await;
    let (exp_before, exp_after) = (
        before["data"]["expire_time"].as_str().unwrap_or_default(),
        after["data"]["expire_time"].as_str().unwrap_or_default(),
    );
    fact(format!(
        "lease lookup: expire_time {exp_before} → {exp_after}, last_renewal {}",
        after["data"]["last_renewal"]
    ));
    check(
        renewals > renewed_before
            && after["data"]["last_renewal"].is_string()
            // RFC 3339 to the second: a renewal moves the expiry by >= 2 s.
            && exp_after.get(..19) > exp_before.get(..19),
        format!(
            "the extension renewed the lease ({renewals} renewal(s)): OpenBao extended its expiry"
        ),
        || {
            format!(
                "renewals {renewals}\nbefore {before}\nafter {after}\n{}",
                tail(&rie.logs(), 30)
            )
        },
    )?;

    let logs = rie.shutdown().await;
    fact("extension log (excerpt):");
    block(
        "| ",
        &excerpt(
            &logs,
            &[
                "vault-aws-extension registered",
                "logged in to vault",
                "wrote a secret file",
                "renewed a secret's lease",
                "shutting down",
                "revoked the vault token",
            ],
        ),
    );
    check(
        logs.contains("renewed a secret's lease") && logs.contains("revoked the vault token"),
        "logs show the renewal; on SHUTDOWN the extension revoked its token",
        || tail(&logs, 40),
    )?;
    check(
        !logs.contains(&secret_id) && !logs.contains(&password) && !logs.contains(&world.api_key),
        "no secret_id, password or secret value in the function's or extension's logs",
        || "a secret appeared in the logs".to_owned(),
    )?;
    Ok(())
}
