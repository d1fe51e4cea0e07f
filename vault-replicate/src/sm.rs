//! [`SecretsManagerTarget`]: AWS Secrets Manager.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, ReplicaRegionType, Tag};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use secrecy::ExposeSecret;

use crate::calls::{ApiCalls, RateLimits};
use crate::error::{ConfigError, Error, Result};
use crate::model::{
    DeletionPolicy, MANAGED_BY, TAG_MANAGED_BY, TAG_STATE, TargetEntry, TargetSnapshot,
    validate_secret_name, validate_tag_value,
};
use crate::target::{Desired, Target, WriteOutcome, aws_error, entry_from_tags};

/// Call kinds counted by [`SecretsManagerTarget`] (`secretsmanager.<Operation>`).
pub mod kinds {
    /// One page of ListSecrets.
    pub const LIST: &str = "secretsmanager.ListSecrets";
    /// CreateSecret.
    pub const CREATE: &str = "secretsmanager.CreateSecret";
    /// PutSecretValue.
    pub const PUT: &str = "secretsmanager.PutSecretValue";
    /// TagResource.
    pub const TAG: &str = "secretsmanager.TagResource";
    /// DescribeSecret.
    pub const DESCRIBE: &str = "secretsmanager.DescribeSecret";
    /// RestoreSecret.
    pub const RESTORE: &str = "secretsmanager.RestoreSecret";
    /// DeleteSecret.
    pub const DELETE: &str = "secretsmanager.DeleteSecret";
}

/// Name-filtered listings run at once by [`Target::snapshot_prefixes`]
/// (the ListSecrets rate limit still applies).
const LIST_CONCURRENCY: usize = 16;

/// The largest `SecretString` Secrets Manager accepts, in bytes.
pub const MAX_SECRET_BYTES: usize = 65_536;

/// Default calls per second for each write API (CreateSecret, PutSecretValue,
/// TagResource, DeleteSecret, RestoreSecret); Secrets Manager's quota is 50.
pub const DEFAULT_WRITE_TPS: u32 = 40;
/// Default calls per second for ListSecrets and DescribeSecret; Secrets
/// Manager's quota is 100 (ListSecrets) and 100 (DescribeSecret).
pub const DEFAULT_READ_TPS: u32 = 80;

/// AWS Secrets Manager as a target.
///
/// - Snapshot: ListSecrets, 100 per page, filtered on
///   `managed-by=vault-replicate` (tags come with the listing: no per-secret
///   call), including secrets scheduled for deletion.
/// - Create: one CreateSecret with the value, the KMS key, every tag and the
///   replica regions. If the name exists (ListSecrets is eventually
///   consistent), DescribeSecret decides: ours (or adoption on) → restore if
///   scheduled for deletion, then update; not ours → an error, untouched.
/// - Update: PutSecretValue, then TagResource with the new `vault-version`:
///   a crash between them leaves the old version tag, so the next run writes
///   again (never a tag newer than the value).
/// - Each operation is rate limited on its own; throttling and 5xx are
///   retried by the SDK (see [`crate::aws::sdk_config`]).
#[derive(Debug)]
pub struct SecretsManagerTarget {
    client: Client,
    kms_key_id: Option<String>,
    replica_regions: Vec<String>,
    adopt: bool,
    limits: RateLimits,
}

/// Builds a [`SecretsManagerTarget`].
#[derive(Debug, Clone)]
pub struct SecretsManagerTargetBuilder {
    client: Client,
    kms_key_id: Option<String>,
    replica_regions: Vec<String>,
    adopt: bool,
    write_tps: u32,
    read_tps: u32,
}

impl SecretsManagerTarget {
    /// A builder around an SDK client (its endpoint, region, credentials and
    /// retry settings come from the client's configuration).
    pub fn builder(client: Client) -> SecretsManagerTargetBuilder {
        SecretsManagerTargetBuilder {
            client,
            kms_key_id: None,
            replica_regions: Vec::new(),
            adopt: false,
            write_tps: DEFAULT_WRITE_TPS,
            read_tps: DEFAULT_READ_TPS,
        }
    }

    fn tags(desired: &Desired) -> Result<Vec<Tag>> {
        desired
            .tags()
            .into_iter()
            .map(|(k, v)| {
                validate_tag_value(&v)?;
                Ok(Tag::builder().key(k).value(v).build())
            })
            .collect()
    }

    async fn describe(&self, name: &str, calls: &ApiCalls) -> Result<(String, bool, bool)> {
        self.limits.acquire("DescribeSecret").await;
        calls.add(kinds::DESCRIBE);
        let d = self
            .client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager", "DescribeSecret", name, &e))?;
        let managed = d
            .tags()
            .iter()
            .any(|t| t.key() == Some(TAG_MANAGED_BY) && t.value() == Some(MANAGED_BY));
        Ok((
            d.arn().unwrap_or(name).to_owned(),
            managed,
            d.deleted_date().is_some(),
        ))
    }

    async fn restore(&self, id: &str, calls: &ApiCalls) -> Result<()> {
        self.limits.acquire("RestoreSecret").await;
        calls.add(kinds::RESTORE);
        self.client
            .restore_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager", "RestoreSecret", id, &e))?;
        Ok(())
    }

    async fn put_and_tag(&self, id: &str, desired: &Desired, calls: &ApiCalls) -> Result<()> {
        let tags = Self::tags(desired)?;
        self.limits.acquire("PutSecretValue").await;
        calls.add(kinds::PUT);
        self.client
            .put_secret_value()
            .secret_id(id)
            .secret_string(desired.value.expose_secret())
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager", "PutSecretValue", &desired.name, &e))?;
        self.tag(id, &desired.name, tags, calls).await
    }

    async fn tag(&self, id: &str, name: &str, tags: Vec<Tag>, calls: &ApiCalls) -> Result<()> {
        self.limits.acquire("TagResource").await;
        calls.add(kinds::TAG);
        self.client
            .tag_resource()
            .secret_id(id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager", "TagResource", name, &e))?;
        Ok(())
    }

    /// Every page of ListSecrets filtered on our tag (and on `name_prefix`).
    async fn list(&self, name_prefix: Option<&str>, calls: &ApiCalls) -> Result<Vec<TargetEntry>> {
        let mut entries = Vec::new();
        let mut next: Option<String> = None;
        loop {
            self.limits.acquire("ListSecrets").await;
            calls.add(kinds::LIST);
            let mut req = self
                .client
                .list_secrets()
                .max_results(100)
                .include_planned_deletion(true)
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::TagKey)
                        .values(TAG_MANAGED_BY)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::TagValue)
                        .values(MANAGED_BY)
                        .build(),
                );
            if let Some(p) = name_prefix {
                req = req.filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(p)
                        .build(),
                );
            }
            let page = req.set_next_token(next.take()).send().await.map_err(|e| {
                aws_error(
                    "secretsmanager",
                    "ListSecrets",
                    name_prefix.unwrap_or("*"),
                    &e,
                )
            })?;
            for s in page.secret_list() {
                let tags: HashMap<String, String> = s
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect();
                let (Some(name), Some(arn)) = (s.name(), s.arn()) else {
                    continue;
                };
                if let Some(e) = entry_from_tags(name, arn, &tags, s.deleted_date().is_some()) {
                    entries.push(e);
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => return Ok(entries),
            }
        }
    }

    async fn create(&self, desired: &Desired, calls: &ApiCalls) -> Result<WriteOutcome> {
        let tags = Self::tags(desired)?;
        self.limits.acquire("CreateSecret").await;
        calls.add(kinds::CREATE);
        let mut req = self
            .client
            .create_secret()
            .name(&desired.name)
            .secret_string(desired.value.expose_secret())
            .description(format!(
                "replicated from vault {}/{} by vault-replicate",
                desired.mount, desired.path
            ))
            .set_tags(Some(tags))
            .set_kms_key_id(self.kms_key_id.clone());
        for region in &self.replica_regions {
            let mut r = ReplicaRegionType::builder().region(region);
            if let Some(k) = &self.kms_key_id {
                // A key ARN is regional; an alias resolves in each region.
                if k.starts_with("alias/") {
                    r = r.kms_key_id(k);
                }
            }
            req = req.add_replica_regions(r.build());
        }
        match req.send().await {
            Ok(_) => Ok(WriteOutcome::Created),
            Err(e) => {
                let exists = e.as_service_error().is_some_and(|s| {
                    s.is_resource_exists_exception()
                        || (s.is_invalid_request_exception()
                            && aws_sdk_secretsmanager::error::ProvideErrorMetadata::message(s)
                                .is_some_and(|m| m.contains("deletion")))
                });
                if !exists {
                    return Err(aws_error(
                        "secretsmanager",
                        "CreateSecret",
                        &desired.name,
                        &e,
                    ));
                }
                // The listing did not show it (eventual consistency, a
                // secret scheduled for deletion, or not ours): look.
                let (arn, managed, pending) = self.describe(&desired.name, calls).await?;
                if !managed && !self.adopt {
                    return Err(Error::Unmanaged {
                        name: desired.name.clone(),
                    });
                }
                if pending {
                    self.restore(&arn, calls).await?;
                }
                self.put_and_tag(&arn, desired, calls).await?;
                Ok(match (managed, pending) {
                    (false, _) => WriteOutcome::Adopted,
                    (true, true) => WriteOutcome::Restored,
                    (true, false) => WriteOutcome::Updated,
                })
            }
        }
    }
}

#[async_trait]
impl Target for SecretsManagerTarget {
    fn kind(&self) -> &'static str {
        "secretsmanager"
    }

    async fn snapshot(&self, calls: &ApiCalls) -> Result<TargetSnapshot> {
        let mut entries = self.list(None, calls).await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TargetSnapshot { entries })
    }

    async fn snapshot_prefixes(
        &self,
        prefixes: &[String],
        calls: &ApiCalls,
    ) -> Result<TargetSnapshot> {
        let lists: Vec<Vec<TargetEntry>> = stream::iter(prefixes.iter().cloned())
            .map(|p| async move { self.list(Some(&p), calls).await })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        let mut entries: Vec<TargetEntry> = lists.into_iter().flatten().collect();
        entries.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        entries.dedup_by(|a, b| a.id == b.id);
        Ok(TargetSnapshot { entries })
    }

    async fn write(
        &self,
        desired: &Desired,
        existing: Option<TargetEntry>,
        calls: &ApiCalls,
    ) -> Result<WriteOutcome> {
        validate_secret_name(&desired.name)?;
        let bytes = desired.value.expose_secret().len();
        if bytes > MAX_SECRET_BYTES {
            return Err(Error::TooLarge {
                name: desired.name.clone(),
                bytes,
                max: MAX_SECRET_BYTES,
                target: "Secrets Manager",
            });
        }
        match existing {
            None => self.create(desired, calls).await,
            Some(e) => {
                if e.pending_deletion {
                    self.restore(&e.id, calls).await?;
                }
                self.put_and_tag(&e.id, desired, calls).await?;
                Ok(if e.pending_deletion {
                    WriteOutcome::Restored
                } else {
                    WriteOutcome::Updated
                })
            }
        }
    }

    async fn retire(
        &self,
        entry: &TargetEntry,
        policy: DeletionPolicy,
        calls: &ApiCalls,
    ) -> Result<()> {
        let mut req = self.client.delete_secret().secret_id(&entry.id);
        match policy {
            DeletionPolicy::None => {
                let tag = Tag::builder().key(TAG_STATE).value("orphaned").build();
                return self.tag(&entry.id, &entry.name, vec![tag], calls).await;
            }
            DeletionPolicy::Schedule {
                recovery_window_days,
            } => req = req.recovery_window_in_days(i64::from(recovery_window_days)),
            DeletionPolicy::Force => req = req.force_delete_without_recovery(true),
        }
        self.limits.acquire("DeleteSecret").await;
        calls.add(kinds::DELETE);
        req.send()
            .await
            .map_err(|e| aws_error("secretsmanager", "DeleteSecret", &entry.name, &e))?;
        Ok(())
    }

    async fn finish(&self, _calls: &ApiCalls) -> Result<()> {
        Ok(())
    }
}

impl SecretsManagerTargetBuilder {
    /// The KMS key (id, ARN or alias) new secrets are encrypted with
    /// (default: `aws/secretsmanager`).
    pub fn kms_key_id(mut self, key: Option<String>) -> Self {
        self.kms_key_id = key.filter(|k| !k.trim().is_empty());
        self
    }

    /// Regions new secrets are replicated to.
    pub fn replica_regions(mut self, regions: Vec<String>) -> Self {
        self.replica_regions = regions;
        self
    }

    /// Take over existing secrets without our tag (default off).
    pub fn adopt(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }

    /// Calls per second for each write API (default 40; 0 = unlimited).
    pub fn write_tps(mut self, tps: u32) -> Self {
        self.write_tps = tps;
        self
    }

    /// Calls per second for ListSecrets and DescribeSecret (default 80; 0 = unlimited).
    pub fn read_tps(mut self, tps: u32) -> Self {
        self.read_tps = tps;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<SecretsManagerTarget, ConfigError> {
        for r in &self.replica_regions {
            let ok = !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(ConfigError::invalid(
                    "REPLICATE_REPLICA_REGIONS",
                    "comma-separated AWS regions such as eu-west-1",
                    format!("got {:?}", r),
                ));
            }
        }
        Ok(SecretsManagerTarget {
            client: self.client,
            kms_key_id: self.kms_key_id,
            replica_regions: self.replica_regions,
            adopt: self.adopt,
            limits: RateLimits::new(
                self.write_tps,
                &[
                    ("ListSecrets", self.read_tps),
                    ("DescribeSecret", self.read_tps),
                ],
            ),
        })
    }
}
