//! The demo's world: our binaries, the peers, and the Vault setup they share.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use testkit::{Moto, OpenBao, Postgres};

/// Region every AWS client uses.
pub const REGION: &str = "us-east-1";
/// Static moto credentials (moto does not check them unless told to).
pub const AWS_KEY: (&str, &str) = ("AKIADEMO", "demo-secret-key");

/// The policy `shop-dev`: what the shop service may read in dev.
pub const SHOP_POLICY: &str = r#"path "secret/data/shop/dev/*" { capabilities = ["read"] }
path "database/creds/shop-dev" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }"#;

/// Our binaries, from the directory of this program (cargo's target dir).
pub struct Bins {
    /// AppRole manager Lambda (package vault-aws-lambda-approle).
    pub approle: PathBuf,
    /// ECS entrypoint (package vault-aws-ecs-exec).
    pub vault_exec: PathBuf,
    /// Lambda extension (package vault-aws-lambda-extension).
    pub extension: PathBuf,
    /// Example function reading through the extension (package vault-aws-examples).
    pub proxy_function: PathBuf,
    /// Replication Lambda (package vault-aws-lambda-replicate).
    pub replicate: PathBuf,
}

impl Bins {
    /// Finds the binaries next to this program; names the missing ones.
    pub fn locate() -> anyhow::Result<Bins> {
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let dir = exe
            .parent()
            .context("this program's path has no directory")?
            .to_path_buf();
        let find = |name: &str, package: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                anyhow::bail!(
                    "{} is missing: build it with `cargo build -p {package}` (scripts/demo does)",
                    path.display()
                )
            }
        };
        Ok(Bins {
            approle: find("bootstrap", "vault-aws-lambda-approle")?,
            vault_exec: find("vault-exec", "vault-aws-ecs-exec")?,
            extension: find("vault-aws-extension", "vault-aws-lambda-extension")?,
            proxy_function: find("proxy-function", "vault-aws-examples")?,
            replicate: find("lambda-replicate", "vault-aws-lambda-replicate")?,
        })
    }
}

/// The running peers and the secrets the demo wrote.
pub struct World {
    /// OpenBao dev server.
    pub bao: OpenBao,
    /// moto (S3, Secrets Manager).
    pub moto: Moto,
    /// PostgreSQL behind OpenBao's database secrets engine.
    pub pg: Postgres,
    /// `secret/shop/dev/db` key `password`.
    pub db_password: String,
    /// `secret/shop/dev/app` key `api-key`.
    pub api_key: String,
    /// `secret/shop/dev/app` key `webhook-secret`.
    pub webhook_secret: String,
}

/// A random printable value with a recognisable prefix.
pub fn random_secret(prefix: &str) -> String {
    let tail: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(20)
        .collect();
    format!("{prefix}{tail}")
}

/// Starts OpenBao, moto and PostgreSQL at once (testkit, free 127.0.0.1
/// ports; each stops when dropped).
pub async fn start_peers() -> (OpenBao, Moto, Postgres) {
    tokio::join!(OpenBao::start(), Moto::start(), Postgres::start())
}

impl World {
    /// Writes the KV secrets, the policy `shop-dev`, enables AppRole and the
    /// database engine with role `shop-dev` (4 s leases, 1 min max).
    pub async fn setup(bao: OpenBao, moto: Moto, pg: Postgres) -> World {
        let world = World {
            bao,
            moto,
            pg,
            db_password: random_secret("db-"),
            api_key: random_secret("sk_"),
            webhook_secret: random_secret("whsec_"),
        };
        let bao = &world.bao;
        bao.root_request(
            "POST",
            "secret/data/shop/dev/db",
            json!({"data": {"password": world.db_password, "user": "shop"}}),
        )
        .await;
        bao.root_request(
            "POST",
            "secret/data/shop/dev/app",
            json!({"data": {"api-key": world.api_key, "webhook-secret": world.webhook_secret}}),
        )
        .await;
        bao.root_request(
            "PUT",
            "sys/policies/acl/shop-dev",
            json!({ "policy": SHOP_POLICY }),
        )
        .await;
        bao.root_request("POST", "sys/auth/approle", json!({"type": "approle"}))
            .await;
        bao.root_request("POST", "sys/mounts/database", json!({"type": "database"}))
            .await;
        bao.root_request(
            "POST",
            "database/config/shop-pg",
            json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": format!(
                    "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
                    world.pg.port()
                ),
                "username": world.pg.superuser(),
                "password": world.pg.password(),
                "allowed_roles": ["shop-dev"],
            }),
        )
        .await;
        bao.root_request(
            "POST",
            "database/roles/shop-dev",
            json!({
                "db_name": "shop-pg",
                "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
                "default_ttl": "4s",
                "max_ttl": "1m",
            }),
        )
        .await;
        world
    }

    /// Environment for a binary talking to moto with static keys.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", AWS_KEY.0.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", AWS_KEY.1.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// An S3 client for moto.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new(AWS_KEY.0, AWS_KEY.1, None, None, "demo"))
                .endpoint_url(self.moto.endpoint())
                .force_path_style(true)
                .build(),
        )
    }

    /// A Secrets Manager client for moto.
    pub fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        use aws_sdk_secretsmanager::config;
        aws_sdk_secretsmanager::Client::from_conf(
            config::Builder::new()
                .behavior_version(config::BehaviorVersion::latest())
                .region(config::Region::new(REGION))
                .credentials_provider(config::Credentials::new(
                    AWS_KEY.0, AWS_KEY.1, None, None, "demo",
                ))
                .endpoint_url(self.moto.endpoint())
                .build(),
        )
    }

    /// `sys/leases/lookup` of `lease_id`, as root.
    pub async fn lease(&self, lease_id: &str) -> Value {
        self.bao
            .root_request("PUT", "sys/leases/lookup", json!({ "lease_id": lease_id }))
            .await
    }

    /// True when `user`/`password` can log in to PostgreSQL (bounded by 10 s).
    pub async fn pg_login(&self, user: &str, password: &str) -> bool {
        let psql = testkit::peers_dir().join("pgbin").join("psql");
        let out = tokio::time::timeout(
            Duration::from_secs(15),
            tokio::process::Command::new(psql)
                .args(["-X", "-A", "-t", "-c", "select current_user"])
                .arg(format!(
                    "postgresql://{user}@127.0.0.1:{}/postgres?sslmode=disable",
                    self.pg.port()
                ))
                .env("PGPASSWORD", password)
                .env("PGCONNECT_TIMEOUT", "10")
                .kill_on_drop(true)
                .output(),
        )
        .await;
        matches!(out, Ok(Ok(o)) if o.status.success()
            && String::from_utf8_lossy(&o.stdout).trim() == user)
    }
}

/// The value of counter `name` in Prometheus text, 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_counter_from_prometheus_text() {
        let text = "# HELP vault_proxy_cache_hits_total Hits.\n# TYPE vault_proxy_cache_hits_total counter\n\
                    vault_proxy_cache_hits_total 3\nvault_proxy_cache_misses_total 1\n";
        assert_eq!(metric(text, "vault_proxy_cache_hits_total"), 3);
        assert_eq!(metric(text, "vault_proxy_cache_misses_total"), 1);
        assert_eq!(metric(text, "vault_proxy_lease_renewals_total"), 0);
        assert!(random_secret("db-").starts_with("db-") && random_secret("x").len() == 21);
    }
}
