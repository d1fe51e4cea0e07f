//! The defaults docs/configuration.md states are the defaults the code
//! applies: each checked row's default cell (the last column; its first
//! `code` span) is compared with what the library builds from an empty
//! environment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

use std::path::Path;
use std::time::Duration;

use vault_client::{ClientConfig, parse_duration};
use vault_proxy::Settings;
use vault_replicate::{DeletionPolicy, Granularity, ReplicateConfig};

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configuration.md"))
        .unwrap()
}

/// The first `code` span of the last cell of the first table row whose
/// first cell names `variable`.
fn documented_default(doc: &str, variable: &str) -> String {
    let row = doc
        .lines()
        .filter(|l| l.starts_with('|'))
        .find(|l| {
            l.split('|')
                .nth(1)
                .is_some_and(|first| first.contains(&format!("`{variable}`")))
        })
        .unwrap_or_else(|| panic!("no table row for {variable} in docs/configuration.md"));
    let cells: Vec<&str> = row.trim().trim_matches('|').split('|').collect();
    let last = cells.last().unwrap();
    let code = last
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("the default of {variable} has no `code` span: {last:?}"));
    code.to_owned()
}

fn duration(doc: &str, variable: &'static str) -> Duration {
    parse_duration(variable, &documented_default(doc, variable)).unwrap()
}

fn boolean(doc: &str, variable: &str) -> bool {
    documented_default(doc, variable).parse().unwrap()
}

fn number<T: std::str::FromStr>(doc: &str, variable: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    documented_default(doc, variable).parse().unwrap()
}

#[test]
fn vault_connection_defaults() {
    let doc = doc();
    let config = ClientConfig::from_lookup(|_| None).unwrap();
    assert_eq!(
        config.address().as_str().trim_end_matches('/'),
        documented_default(&doc, "VAULT_ADDR")
    );
    assert_eq!(config.timeout(), duration(&doc, "VAULT_CLIENT_TIMEOUT"));
    assert_eq!(
        config.max_retries(),
        number::<u32>(&doc, "VAULT_MAX_RETRIES")
    );
    assert_eq!(config.tls().skip_verify, boolean(&doc, "VAULT_SKIP_VERIFY"));
}

#[test]
fn proxy_and_extension_defaults() {
    let doc = doc();
    let s = Settings::from_lookup(|_| None, true).unwrap();
    assert_eq!(
        format!("{:?}", s.run_mode).to_lowercase(),
        documented_default(&doc, "VAULT_RUN_MODE")
    );
    assert_eq!(
        s.proxy.listen.to_string(),
        documented_default(&doc, "VAULT_PROXY_LISTEN")
    );
    assert_eq!(
        s.proxy.guard.enabled,
        boolean(&doc, "VAULT_PROXY_REQUIRE_REQUEST_HEADER")
    );
    assert_eq!(s.token.login_wait, duration(&doc, "VAULT_PROXY_LOGIN_WAIT"));
    assert_eq!(
        s.token.grace,
        duration(&doc, "VAULT_TOKEN_EXPIRY_GRACE_PERIOD")
    );
    assert_eq!(
        s.token.max_backoff,
        duration(&doc, "VAULT_LOGIN_MAX_BACKOFF")
    );
    assert_eq!(
        s.token.revoke_on_shutdown,
        boolean(&doc, "VAULT_REVOKE_TOKEN_ON_SHUTDOWN")
    );
    assert_eq!(
        s.proxy.cache.enabled_by_default,
        boolean(&doc, "VAULT_DEFAULT_CACHE_ENABLED")
    );
    assert_eq!(
        s.proxy.cache.default_ttl,
        duration(&doc, "VAULT_DEFAULT_CACHE_TTL")
    );
    assert_eq!(
        s.proxy.cache.max_staleness,
        duration(&doc, "VAULT_CACHE_MAX_STALENESS")
    );
    assert_eq!(
        s.proxy.cache.max_entries,
        number::<u64>(&doc, "VAULT_CACHE_MAX_ENTRIES")
    );
    assert_eq!(
        s.proxy.cache.max_bytes,
        number::<u64>(&doc, "VAULT_CACHE_MAX_BYTES")
    );
    assert_eq!(s.log_level, documented_default(&doc, "VAULT_LOG_LEVEL"));

    // The default secret file, through the settings.
    let s = Settings::from_lookup(
        |k| (k == "VAULT_SECRET_PATH").then(|| "secret/data/app".to_owned()),
        true,
    )
    .unwrap();
    assert_eq!(
        s.files.secrets[0].file,
        Path::new(&documented_default(&doc, "VAULT_SECRET_FILE"))
    );
}

#[test]
fn login_and_approle_defaults() {
    let doc = doc();
    let iam =
        vault_aws_auth::AwsIamAuth::from_lookup(|k| (k == "VAULT_AUTH_ROLE").then(|| "r".into()))
            .unwrap();
    assert_eq!(iam.mount(), documented_default(&doc, "VAULT_AUTH_PROVIDER"));
    assert_eq!(
        vault_approle::DEFAULT_PREFIX,
        documented_default(&doc, "VAULT_APPROLE_S3_PREFIX")
    );
    let options = vault_approle::ProvisionerOptions::default();
    assert_eq!(
        options.mount,
        documented_default(&doc, "VAULT_APPROLE_MOUNT")
    );
    assert_eq!(
        options.rotation_grace,
        duration(&doc, "VAULT_APPROLE_ROTATION_GRACE")
    );
    assert_eq!(options.wrap_ttl, duration(&doc, "VAULT_APPROLE_WRAP_TTL"));
}

#[test]
fn replication_defaults() {
    let doc = doc();
    let c = ReplicateConfig::from_lookup(|_| None).unwrap();
    let sources: Vec<String> = c.sources.iter().map(|s| s.mount.clone()).collect();
    assert_eq!(sources, [documented_default(&doc, "REPLICATE_SOURCES")]);
    assert_eq!(
        c.target_prefix,
        documented_default(&doc, "REPLICATE_TARGET_PREFIX")
    );
    assert_eq!(
        c.granularity,
        documented_default(&doc, "REPLICATE_GRANULARITY")
            .parse::<Granularity>()
            .unwrap()
    );
    assert_eq!(
        c.deletion,
        DeletionPolicy::parse(&documented_default(&doc, "REPLICATE_DELETION"), 30).unwrap()
    );
    assert_eq!(c.adopt, boolean(&doc, "REPLICATE_ADOPT"));
    assert_eq!(
        c.concurrency,
        number::<usize>(&doc, "REPLICATE_CONCURRENCY")
    );
    assert_eq!(c.write_tps, number::<u32>(&doc, "REPLICATE_WRITE_TPS"));
    assert_eq!(
        c.detailed_metadata,
        boolean(&doc, "REPLICATE_DETAILED_METADATA")
    );
    assert_eq!(
        c.full_list_every.as_secs(),
        number::<u64>(&doc, "REPLICATE_FULL_LIST_SECONDS")
    );
    assert_eq!(
        c.metadata_concurrency,
        number::<usize>(&doc, "REPLICATE_METADATA_CONCURRENCY")
    );
    assert_eq!(c.read_tps, number::<u32>(&doc, "REPLICATE_READ_TPS"));
    assert_eq!(
        c.max_attempts,
        number::<u32>(&doc, "REPLICATE_AWS_MAX_ATTEMPTS")
    );
    assert_eq!(
        c.secrets_manager,
        boolean(&doc, "REPLICATE_SECRETS_MANAGER")
    );
    // Schedule's default window.
    let c =
        ReplicateConfig::from_lookup(|k| (k == "REPLICATE_DELETION").then(|| "schedule".into()))
            .unwrap();
    assert_eq!(
        c.deletion,
        DeletionPolicy::schedule(number::<u8>(&doc, "REPLICATE_RECOVERY_WINDOW_DAYS")).unwrap()
    );
}

#[test]
fn the_default_cell_is_read_from_the_right_row() {
    let doc = "| variable | form | default |\n|---|---|---|\n| `VAULT_X_FILE` | f | `b` |\n| `VAULT_X` | a file, `not this` | `a` (note) |\n";
    assert_eq!(documented_default(doc, "VAULT_X"), "a");
    assert_eq!(documented_default(doc, "VAULT_X_FILE"), "b");
}

#[test]
fn replication_watch_defaults() {
    let doc = doc();
    let c = vault_replicate::watch::WatchConfig::from_lookup(|_| None).unwrap();
    assert_eq!(
        c.listen.to_string(),
        documented_default(&doc, "REPLICATE_WATCH_LISTEN")
    );
    let peers: Vec<String> = c.peers.iter().map(ToString::to_string).collect();
    assert_eq!(
        peers.join(","),
        documented_default(&doc, "REPLICATE_WATCH_PEERS")
    );
    assert_eq!(
        c.window.as_millis() as u64,
        number::<u64>(&doc, "REPLICATE_WATCH_WINDOW_MS")
    );
    assert_eq!(c.queue, number::<usize>(&doc, "REPLICATE_WATCH_QUEUE"));
    assert_eq!(
        c.metrics_every.as_secs(),
        number::<u64>(&doc, "REPLICATE_WATCH_METRICS_SECS")
    );
}
