//! [`ReplicateConfig`]: settings from environment variables, shared by the
//! Lambda and the CLI.

use std::sync::Arc;

use vault_client::{VaultAuth, VaultClient, parse_bool};

use crate::error::ConfigError;
use crate::model::{DeletionPolicy, Granularity, Naming, SourceScope};
use crate::notify::{Notifier, SnsNotifier};
use crate::plan::PlanPolicy;
use crate::run::{DEFAULT_CONCURRENCY, Replicator};
use crate::s3::S3Target;
use crate::sm::{DEFAULT_READ_TPS, DEFAULT_WRITE_TPS, SecretsManagerTarget};
use crate::source::VaultKvSource;

/// Default of `REPLICATE_DEADLINE_MARGIN_MS` (capped at a quarter of the
/// time left).
pub const DEFAULT_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// One more Secrets Manager destination (`REPLICATE_DESTINATIONS`, a JSON
/// array of these objects): another region, or another account through
/// `sts:AssumeRole` with an external id, with its own prefix and KMS key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Destination {
    /// A short label, shown in the reports (`secretsmanager:<name>`).
    pub name: String,
    /// The region (default: the function's / the SDK's).
    #[serde(default)]
    pub region: Option<String>,
    /// A role to assume (another account); default: the function's own credentials.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The name prefix (default `REPLICATE_TARGET_PREFIX`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// The KMS key for new secrets (default: that account's `aws/secretsmanager`).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Regions new secrets are replicated to (default none).
    #[serde(default)]
    pub replica_regions: Vec<String>,
    /// Another endpoint (a VPC endpoint; a local emulator in tests).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

fn parse_destinations(raw: &str) -> Result<Vec<Destination>, ConfigError> {
    const EXPECTED: &str = "a JSON array of {\"name\", \"region\", \"role_arn\", \"external_id\", \
                            \"prefix\", \"kms_key_id\", \"replica_regions\", \"endpoint_url\"} \
                            objects with a unique, non-empty name";
    let bad = |why: String| {
        ConfigError::invalid(
            "REPLICATE_DESTINATIONS",
            format!("{EXPECTED} ({why})"),
            format!("got {:?}", raw),
        )
    };
    let list: Vec<Destination> = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
    let mut names = std::collections::BTreeSet::new();
    for d in &list {
        let ok_name = !d.name.is_empty()
            && d.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_name || !names.insert(d.name.as_str()) {
            return Err(bad(format!("name {:?}", d.name)));
        }
        if d.external_id.is_some() && d.role_arn.is_none() {
            return Err(bad(format!("{}: external_id needs role_arn", d.name)));
        }
        if let Some(r) = &d.role_arn
            && !r.starts_with("arn:")
        {
            return Err(bad(format!("{}: role_arn is not an ARN", d.name)));
        }
    }
    Ok(list)
}

/// Every replication setting (see `docs/replicate.md` for the variables).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicateConfig {
    /// `REPLICATE_SOURCES` (default `secret`).
    pub sources: Vec<SourceScope>,
    /// `REPLICATE_TARGET_PREFIX` (default `vault`).
    pub target_prefix: String,
    /// `REPLICATE_NAME_TEMPLATE` (default `{prefix}/{path}`, see [`Naming::new`]).
    pub name_template: Option<String>,
    /// `REPLICATE_GRANULARITY` (default `secret`).
    pub granularity: Granularity,
    /// `REPLICATE_KMS_KEY_ID` (default: the account's `aws/secretsmanager` key).
    pub kms_key_id: Option<String>,
    /// `REPLICATE_REPLICA_REGIONS` (default none).
    pub replica_regions: Vec<String>,
    /// `REPLICATE_DELETION` + `REPLICATE_RECOVERY_WINDOW_DAYS` (default `none`, 30).
    pub deletion: DeletionPolicy,
    /// `REPLICATE_ADOPT` (default false).
    pub adopt: bool,
    /// `REPLICATE_CONCURRENCY` (default 16).
    pub concurrency: usize,
    /// `REPLICATE_WRITE_TPS` (default 40).
    pub write_tps: u32,
    /// `REPLICATE_READ_TPS` (default 80).
    pub read_tps: u32,
    /// `REPLICATE_AWS_MAX_ATTEMPTS` (default 5).
    pub max_attempts: u32,
    /// `REPLICATE_SECRETS_MANAGER` (default true).
    pub secrets_manager: bool,
    /// `REPLICATE_S3_BUCKET` (default none: no S3 copy).
    pub s3_bucket: Option<String>,
    /// `REPLICATE_S3_PREFIX` (default: the target prefix).
    pub s3_prefix: Option<String>,
    /// `REPLICATE_S3_KMS_KEY_ID` (default: `REPLICATE_KMS_KEY_ID`).
    pub s3_kms_key_id: Option<String>,
    /// `REPLICATE_SNS_TOPIC_ARN` (default none).
    pub sns_topic_arn: Option<String>,
    /// `REPLICATE_DETAILED_METADATA` (default true; false always reads
    /// metadata per secret, as on HashiCorp Vault).
    pub detailed_metadata: bool,
    /// `REPLICATE_METADATA_CONCURRENCY` (default 16): metadata reads (and
    /// KV v1 value reads) at once.
    pub metadata_concurrency: usize,
    /// `REPLICATE_DEADLINE_MARGIN_MS` (default: 10 s, or a quarter of the
    /// time left when that is less): how long before a deadline (the
    /// Lambda's) a run stops starting writes.
    pub deadline_margin: Option<std::time::Duration>,
    /// `REPLICATE_DESTINATIONS` (default none): more Secrets Manager
    /// destinations, each replicated on its own.
    pub destinations: Vec<Destination>,
    /// `REPLICATE_FULL_LIST_SECONDS` (default 3600; 0 = always list
    /// everything): how often a long-lived replicator (a warm Lambda) lists
    /// all of Secrets Manager; between, it lists by name partitions
    /// concurrently (see [`Replicator::with_partitioned_listing`]).
    pub full_list_every: std::time::Duration,
}

fn parse_num<T: std::str::FromStr>(
    name: &str,
    raw: &str,
    expected: &str,
) -> Result<T, ConfigError> {
    raw.trim().parse().map_err(|_| {
        ConfigError::invalid(name.to_owned(), expected.to_owned(), format!("got {raw:?}"))
    })
}

impl ReplicateConfig {
    /// Reads the `REPLICATE_*` variables through `lookup` (empty = unset).
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::non_blank(&lookup);
        let list = |n: &str| -> Vec<String> {
            get(n)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut sources = Vec::new();
        for s in list("REPLICATE_SOURCES") {
            sources.push(s.parse::<SourceScope>()?);
        }
        if sources.is_empty() {
            sources.push(SourceScope::new("secret", ""));
        }
        let granularity = match get("REPLICATE_GRANULARITY") {
            Some(g) => g.parse()?,
            None => Granularity::Secret,
        };
        let days: u8 = match get("REPLICATE_RECOVERY_WINDOW_DAYS") {
            Some(d) => parse_num(
                "REPLICATE_RECOVERY_WINDOW_DAYS",
                &d,
                "a number of days from 7 to 30",
            )?,
            None => 30,
        };
        let deletion = DeletionPolicy::parse(&get("REPLICATE_DELETION").unwrap_or_default(), days)?;
        let concurrency: usize = match get("REPLICATE_CONCURRENCY") {
            Some(c) => parse_num("REPLICATE_CONCURRENCY", &c, "a number from 1 to 256")?,
            None => DEFAULT_CONCURRENCY,
        };
        if !(1..=256).contains(&concurrency) {
            return Err(ConfigError::invalid(
                "REPLICATE_CONCURRENCY",
                "a number from 1 to 256",
                format!("got {:?}", concurrency.to_string()),
            ));
        }
        let tps = |n: &str, d: u32| -> Result<u32, ConfigError> {
            match get(n) {
                Some(v) => parse_num(n, &v, "calls per second (0 = unlimited)"),
                None => Ok(d),
            }
        };
        let max_attempts = tps(
            "REPLICATE_AWS_MAX_ATTEMPTS",
            crate::aws::DEFAULT_MAX_ATTEMPTS,
        )?;
        if max_attempts == 0 || max_attempts > 20 {
            return Err(ConfigError::invalid(
                "REPLICATE_AWS_MAX_ATTEMPTS",
                "a number from 1 to 20",
                format!("got {:?}", max_attempts.to_string()),
            ));
        }
        let metadata_concurrency: usize = match get("REPLICATE_METADATA_CONCURRENCY") {
            Some(c) => parse_num(
                "REPLICATE_METADATA_CONCURRENCY",
                &c,
                "a number from 1 to 256",
            )?,
            None => 16,
        };
        if !(1..=256).contains(&metadata_concurrency) {
            return Err(ConfigError::invalid(
                "REPLICATE_METADATA_CONCURRENCY",
                "a number from 1 to 256",
                format!("got {:?}", metadata_concurrency.to_string()),
            ));
        }
        let deadline_margin = get("REPLICATE_DEADLINE_MARGIN_MS")
            .map(|v| {
                parse_num::<u64>("REPLICATE_DEADLINE_MARGIN_MS", &v, "milliseconds")
                    .map(std::time::Duration::from_millis)
            })
            .transpose()?;
        let destinations = match get("REPLICATE_DESTINATIONS") {
            Some(raw) => parse_destinations(&raw)?,
            None => Vec::new(),
        };
        let full_list_every = match get("REPLICATE_FULL_LIST_SECONDS") {
            Some(v) => std::time::Duration::from_secs(parse_num(
                "REPLICATE_FULL_LIST_SECONDS",
                &v,
                "seconds (0 = list everything on every run)",
            )?),
            None => std::time::Duration::from_secs(3600),
        };
        let config = Self {
            full_list_every,
            destinations,
            deadline_margin,
            detailed_metadata: get("REPLICATE_DETAILED_METADATA")
                .map(|v| parse_bool("REPLICATE_DETAILED_METADATA", &v))
                .transpose()?
                .unwrap_or(true),
            metadata_concurrency,
            target_prefix: get("REPLICATE_TARGET_PREFIX")
                .map(|p| p.trim().trim_matches('/').to_owned())
                .unwrap_or_else(|| "vault".to_owned()),
            name_template: get("REPLICATE_NAME_TEMPLATE"),
            granularity,
            kms_key_id: get("REPLICATE_KMS_KEY_ID"),
            replica_regions: list("REPLICATE_REPLICA_REGIONS"),
            deletion,
            adopt: get("REPLICATE_ADOPT")
                .map(|v| parse_bool("REPLICATE_ADOPT", &v))
                .transpose()?
                .unwrap_or(false),
            concurrency,
            write_tps: tps("REPLICATE_WRITE_TPS", DEFAULT_WRITE_TPS)?,
            read_tps: tps("REPLICATE_READ_TPS", DEFAULT_READ_TPS)?,
            max_attempts,
            secrets_manager: get("REPLICATE_SECRETS_MANAGER")
                .map(|v| parse_bool("REPLICATE_SECRETS_MANAGER", &v))
                .transpose()?
                .unwrap_or(true),
            s3_bucket: get("REPLICATE_S3_BUCKET"),
            s3_prefix: get("REPLICATE_S3_PREFIX"),
            s3_kms_key_id: get("REPLICATE_S3_KMS_KEY_ID"),
            sns_topic_arn: get("REPLICATE_SNS_TOPIC_ARN"),
            sources,
        };
        config.naming(&config.target_prefix)?;
        if !config.secrets_manager && config.s3_bucket.is_none() && config.destinations.is_empty() {
            return Err(ConfigError::invalid(
                "REPLICATE_SECRETS_MANAGER",
                "true, or REPLICATE_S3_BUCKET or REPLICATE_DESTINATIONS set (there must be a target)",
                format!("got {:?}", "false"),
            ));
        }
        Ok(config)
    }

    /// The naming scheme for target names under `prefix`.
    pub fn naming(&self, prefix: &str) -> Result<Naming, ConfigError> {
        let mounts: std::collections::BTreeSet<&str> =
            self.sources.iter().map(|s| s.mount.as_str()).collect();
        Naming::new(
            self.name_template.as_deref(),
            prefix,
            self.granularity,
            mounts.len() > 1,
        )
    }

    /// The planner policy for Secrets Manager.
    pub fn policy(&self) -> Result<PlanPolicy, ConfigError> {
        Ok(PlanPolicy {
            naming: self.naming(&self.target_prefix)?,
            deletion: self.deletion,
        })
    }

    /// The Vault source: `client` with its token, or logging in with `auth`.
    pub fn source(
        &self,
        client: VaultClient,
        auth: Option<Arc<dyn VaultAuth>>,
    ) -> Result<VaultKvSource, ConfigError> {
        let mut b = VaultKvSource::builder(client)
            .scopes(self.sources.iter().cloned())
            .detailed_metadata(self.detailed_metadata)
            .metadata_concurrency(self.metadata_concurrency);
        if let Some(a) = auth {
            b = b.auth(a);
        }
        b.build()
    }

    /// One replicator per configured target (Secrets Manager, the S3 copy,
    /// then each of `REPLICATE_DESTINATIONS`), sharing `source`. Each runs
    /// on its own: one failing never stops the others.
    pub async fn replicators(
        &self,
        source: Arc<VaultKvSource>,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Vec<Replicator>, ConfigError> {
        let mut out = self.local_replicators(source.clone(), sdk)?;
        for d in &self.destinations {
            out.push(self.destination(d, source.clone(), sdk).await?);
        }
        Ok(out)
    }

    /// The replicator of one destination: its own region, credentials
    /// (AssumeRole with the external id, refreshed before they expire),
    /// prefix and KMS key.
    async fn destination(
        &self,
        d: &Destination,
        source: Arc<VaultKvSource>,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Replicator, ConfigError> {
        let mut b = sdk.to_builder();
        if let Some(r) = &d.region {
            b = b.region(aws_config::Region::new(r.clone()));
        }
        if let Some(e) = &d.endpoint_url {
            b = b.endpoint_url(e);
        }
        if let Some(role) = &d.role_arn {
            let mut p = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(format!("vault-replicate-{}", d.name))
                .configure(sdk);
            if let Some(x) = &d.external_id {
                p = p.external_id(x);
            }
            let provider = p.build().await;
            b = b.credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            );
        }
        let conf = b.build();
        let target = SecretsManagerTarget::builder(crate::aws::secretsmanager_client(&conf))
            .kms_key_id(d.kms_key_id.clone())
            .replica_regions(d.replica_regions.clone())
            .adopt(self.adopt)
            .write_tps(self.write_tps)
            .read_tps(self.read_tps)
            .build()?;
        let prefix = d
            .prefix
            .as_deref()
            .map(|p| p.trim().trim_matches('/').to_owned())
            .unwrap_or_else(|| self.target_prefix.clone());
        let policy = PlanPolicy {
            naming: self.naming(&prefix)?,
            deletion: self.deletion,
        };
        Ok(self.partitioned(
            Replicator::new(source, Arc::new(target), policy, self.concurrency)?
                .with_label(format!("secretsmanager:{}", d.name)),
        ))
    }

    fn partitioned(&self, r: Replicator) -> Replicator {
        if self.full_list_every.is_zero() {
            r
        } else {
            r.with_partitioned_listing(self.full_list_every)
        }
    }

    fn local_replicators(
        &self,
        source: Arc<VaultKvSource>,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Vec<Replicator>, ConfigError> {
        let mut out = Vec::new();
        if self.secrets_manager {
            let target = SecretsManagerTarget::builder(crate::aws::secretsmanager_client(sdk))
                .kms_key_id(self.kms_key_id.clone())
                .replica_regions(self.replica_regions.clone())
                .adopt(self.adopt)
                .write_tps(self.write_tps)
                .read_tps(self.read_tps)
                .build()?;
            out.push(self.partitioned(Replicator::new(
                source.clone(),
                Arc::new(target),
                self.policy()?,
                self.concurrency,
            )?));
        }
        if let Some(bucket) = &self.s3_bucket {
            let prefix = self
                .s3_prefix
                .clone()
                .unwrap_or_else(|| self.target_prefix.clone());
            let path_style = sdk.endpoint_url().is_some();
            let target = S3Target::new(
                crate::aws::s3_client(sdk, path_style),
                bucket,
                &prefix,
                self.s3_kms_key_id
                    .clone()
                    .or_else(|| self.kms_key_id.clone()),
                self.adopt,
                self.write_tps,
            )?;
            let policy = PlanPolicy {
                naming: self.naming(&prefix)?,
                deletion: self.deletion,
            };
            out.push(Replicator::new(
                source,
                Arc::new(target),
                policy,
                self.concurrency,
            )?);
        }
        Ok(out)
    }

    /// When a run that must end by `deadline` stops starting writes:
    /// `deadline` minus the margin ([`Self::deadline_margin`]).
    pub fn stop_at(&self, deadline: std::time::SystemTime) -> tokio::time::Instant {
        let left = deadline
            .duration_since(vault_client::clock::wall())
            .unwrap_or_default();
        let margin = self
            .deadline_margin
            .unwrap_or_else(|| DEFAULT_DEADLINE_MARGIN.min(left / 4));
        vault_client::clock::now() + left.saturating_sub(margin)
    }

    /// The SNS notifier, when a topic is configured.
    pub fn notifier(&self, sdk: &aws_config::SdkConfig) -> Option<Arc<dyn Notifier>> {
        self.sns_topic_arn.as_ref().map(|arn| {
            Arc::new(SnsNotifier::new(crate::aws::sns_client(sdk), arn.clone()))
                as Arc<dyn Notifier>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<ReplicateConfig, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        ReplicateConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.sources, vec![SourceScope::new("secret", "")]);
        assert_eq!(c.target_prefix, "vault");
        assert_eq!(c.deletion, DeletionPolicy::None);
        assert_eq!(c.concurrency, 16);
        assert_eq!((c.write_tps, c.read_tps, c.max_attempts), (40, 80, 5));
        assert!(c.secrets_manager && !c.adopt && c.s3_bucket.is_none());
        assert_eq!(
            c.policy().unwrap().naming.name("secret", "a/b", None),
            "vault/a/b"
        );
    }

    #[test]
    fn everything_set() {
        let c = cfg(&[
            ("REPLICATE_SOURCES", "secret/app, kv"),
            ("REPLICATE_TARGET_PREFIX", "/prod/"),
            ("REPLICATE_GRANULARITY", "key"),
            ("REPLICATE_DELETION", "schedule"),
            ("REPLICATE_RECOVERY_WINDOW_DAYS", "7"),
            ("REPLICATE_ADOPT", "true"),
            ("REPLICATE_REPLICA_REGIONS", "eu-west-1,us-west-2"),
            ("REPLICATE_CONCURRENCY", "4"),
            ("REPLICATE_S3_BUCKET", "backup"),
        ])
        .unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.target_prefix, "prod");
        assert_eq!(
            c.deletion,
            DeletionPolicy::Schedule {
                recovery_window_days: 7
            }
        );
        assert_eq!(c.replica_regions, vec!["eu-west-1", "us-west-2"]);
        let n = c.policy().unwrap().naming;
        assert_eq!(n.name("kv", "x", Some("k")), "prod/kv/x/k");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("REPLICATE_DELETION", "sometimes"),
            ("REPLICATE_RECOVERY_WINDOW_DAYS", "3"),
            ("REPLICATE_CONCURRENCY", "0"),
            ("REPLICATE_ADOPT", "perhaps"),
            ("REPLICATE_GRANULARITY", "field"),
            ("REPLICATE_WRITE_TPS", "-1"),
            ("REPLICATE_NAME_TEMPLATE", "{prefix}"),
            ("REPLICATE_AWS_MAX_ATTEMPTS", "0"),
            ("REPLICATE_DETAILED_METADATA", "sometimes"),
            ("REPLICATE_METADATA_CONCURRENCY", "0"),
            ("REPLICATE_DEADLINE_MARGIN_MS", "soon"),
            ("REPLICATE_FULL_LIST_SECONDS", "hourly"),
            (
                "REPLICATE_DESTINATIONS",
                "[{\"name\": \"eu\", \"regoin\": \"eu-west-1\"}]",
            ),
            (
                "REPLICATE_DESTINATIONS",
                "[{\"name\": \"a\"}, {\"name\": \"a\"}]",
            ),
            (
                "REPLICATE_DESTINATIONS",
                "[{\"name\": \"a\", \"external_id\": \"x\"}]",
            ),
            ("REPLICATE_DESTINATIONS", "{}"),
        ] {
            let vars = if k == "REPLICATE_RECOVERY_WINDOW_DAYS" {
                vec![(k, v), ("REPLICATE_DELETION", "schedule")]
            } else {
                vec![(k, v)]
            };
            let e = cfg(&vars).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
        assert!(cfg(&[("REPLICATE_SECRETS_MANAGER", "false")]).is_err());
    }

    #[test]
    fn destinations_parse() {
        let c = cfg(&[
            ("REPLICATE_SECRETS_MANAGER", "false"),
            (
                "REPLICATE_DESTINATIONS",
                r#"[{"name": "eu", "region": "eu-west-1", "prefix": "/prod/",
                     "role_arn": "arn:aws:iam::111111111111:role/r", "external_id": "x-1",
                     "kms_key_id": "alias/k", "replica_regions": ["eu-central-1"]}]"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.destinations.len(), 1);
        let d = &c.destinations[0];
        assert_eq!(
            (d.region.as_deref(), d.external_id.as_deref()),
            (Some("eu-west-1"), Some("x-1"))
        );
        assert_eq!(d.replica_regions, vec!["eu-central-1"]);
    }

    #[test]
    fn stop_at_leaves_the_margin() {
        let now = vault_client::clock::now();
        let in_a_minute = vault_client::clock::wall() + std::time::Duration::from_secs(60);
        let c = cfg(&[]).unwrap();
        let stop = c.stop_at(in_a_minute) - now;
        assert!(
            stop > std::time::Duration::from_secs(49)
                && stop <= std::time::Duration::from_millis(50_100),
            "{stop:?}"
        );
        let in_4s = vault_client::clock::wall() + std::time::Duration::from_secs(4);
        let stop = c.stop_at(in_4s) - now;
        assert!(
            stop <= std::time::Duration::from_millis(3_100),
            "a quarter of 4 s: {stop:?}"
        );
        let c = cfg(&[("REPLICATE_DEADLINE_MARGIN_MS", "500")]).unwrap();
        let stop = c.stop_at(in_4s) - now;
        assert!(
            stop <= std::time::Duration::from_millis(3_600)
                && stop > std::time::Duration::from_secs(3),
            "{stop:?}"
        );
        let past = vault_client::clock::wall() - std::time::Duration::from_secs(1);
        assert!(c.stop_at(past) - now < std::time::Duration::from_millis(100));
    }
}
