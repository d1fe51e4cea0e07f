//! The [`Target`] trait and what every target shares.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::calls::ApiCalls;
use crate::error::Result;
use crate::model::{
    DeletionPolicy, MANAGED_BY, TAG_KEY, TAG_KEY_COUNT, TAG_MANAGED_BY, TAG_MOUNT, TAG_PATH,
    TAG_STATE, TAG_VERSION, TAG_VERSION_ID, TargetEntry, TargetSnapshot,
};

/// One object to write: a Vault secret (or one of its keys) at one version.
///
/// `Debug` hides the value.
#[derive(Clone)]
pub struct Desired {
    /// The target name (secret name or object key).
    pub name: String,
    /// The Vault mount.
    pub mount: String,
    /// The Vault path.
    pub path: String,
    /// The Vault key (key granularity).
    pub key: Option<String>,
    /// The Vault version the value was read at.
    pub version: u64,
    /// What identifies that version (see [`crate::TAG_VERSION_ID`]).
    pub version_id: String,
    /// How many keys that version has (key granularity; 1 otherwise).
    pub key_count: u64,
    /// The value to store.
    pub value: SecretString,
}

impl fmt::Debug for Desired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Desired")
            .field("name", &self.name)
            .field("mount", &self.mount)
            .field("path", &self.path)
            .field("key", &self.key)
            .field("version", &self.version)
            .field("version_id", &self.version_id)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl Desired {
    /// The tags (or S3 metadata) that describe this object, `vault-state=active`.
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        let mut tags = vec![
            (TAG_MANAGED_BY, MANAGED_BY.to_owned()),
            (TAG_MOUNT, self.mount.clone()),
            (TAG_PATH, self.path.clone()),
            (TAG_VERSION, self.version.to_string()),
            (TAG_VERSION_ID, self.version_id.clone()),
            (TAG_STATE, "active".to_owned()),
        ];
        if let Some(key) = &self.key {
            tags.push((TAG_KEY, key.clone()));
            tags.push((TAG_KEY_COUNT, self.key_count.to_string()));
        }
        tags
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteOutcome {
    /// A new object was created.
    Created,
    /// An existing object got the new value and tags.
    Updated,
    /// An object scheduled for deletion was restored and updated.
    Restored,
    /// An object that existed without our tag was taken over (adoption on).
    Adopted,
}

/// Where secrets go.
///
/// # Contract
/// - `snapshot` lists only what carries `managed-by=vault-replicate`.
/// - `write` stores the value AND its `vault-version` so that a tag never
///   claims a version whose value was not written (value first, tags after,
///   or both in one call). It never overwrites an object without our tag
///   unless adoption is on; it restores an object scheduled for deletion.
/// - `retire` applies the deletion policy to one managed entry.
/// - `finish` is called once after a run that wrote something.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Target: Send + Sync {
    /// `secretsmanager` or `s3`.
    fn kind(&self) -> &'static str;
    /// Lists what we manage.
    async fn snapshot(&self, calls: &ApiCalls) -> Result<TargetSnapshot>;
    /// Lists what we manage whose name starts with one of `prefixes`
    /// (partitions listed concurrently); a target that cannot filter by
    /// name lists everything.
    async fn snapshot_prefixes(
        &self,
        prefixes: &[String],
        calls: &ApiCalls,
    ) -> Result<TargetSnapshot> {
        let _ = prefixes;
        self.snapshot(calls).await
    }
    /// Writes one object; `existing` is the snapshot's entry with this name.
    async fn write(
        &self,
        desired: &Desired,
        existing: Option<TargetEntry>,
        calls: &ApiCalls,
    ) -> Result<WriteOutcome>;
    /// Deletes (or tags orphaned) one managed entry.
    async fn retire(
        &self,
        entry: &TargetEntry,
        policy: DeletionPolicy,
        calls: &ApiCalls,
    ) -> Result<()>;
    /// Persists anything kept during the run (the S3 manifest).
    async fn finish(&self, calls: &ApiCalls) -> Result<()>;
}

/// Reads our tags from a tag map; `None` when `managed-by` is not ours or a
/// required tag is missing.
pub(crate) fn entry_from_tags(
    name: &str,
    id: &str,
    tags: &HashMap<String, String>,
    pending_deletion: bool,
) -> Option<TargetEntry> {
    if tags.get(TAG_MANAGED_BY).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let key = tags.get(TAG_KEY).cloned();
    Some(TargetEntry {
        name: name.to_owned(),
        id: id.to_owned(),
        mount: tags.get(TAG_MOUNT)?.clone(),
        path: tags.get(TAG_PATH)?.clone(),
        version: tags
            .get(TAG_VERSION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        version_id: tags.get(TAG_VERSION_ID).cloned(),
        key_count: if key.is_some() {
            tags.get(TAG_KEY_COUNT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        } else {
            1
        },
        key,
        orphaned: tags.get(TAG_STATE).map(String::as_str) == Some("orphaned"),
        pending_deletion,
    })
}

/// Turns an SDK error into [`crate::Error::Aws`].
pub(crate) fn aws_error<E>(
    service: &'static str,
    operation: &'static str,
    resource: &str,
    err: &aws_sdk_secretsmanager::error::SdkError<
        E,
        aws_sdk_secretsmanager::config::http::HttpResponse,
    >,
) -> crate::Error
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().unwrap_or("");
    let retryable = matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) || status.is_some_and(|s| s >= 500 || s == 429)
        || code.contains("Throttl")
        || code == "InternalServiceError"
        || code == "TooManyRequestsException";
    let message = match (err.code(), err.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        _ => match err {
            SdkError::ServiceError(_) => "an error response without an AWS error code".to_owned(),
            SdkError::TimeoutError(_) => "timed out".to_owned(),
            SdkError::DispatchFailure(e) => format!("connection failed: {e:?}"),
            SdkError::ResponseError(_) => "a response that could not be read".to_owned(),
            _ => "the request could not be built".to_owned(),
        },
    };
    let message = match status {
        Some(s) => format!("{message} (HTTP {s})"),
        None => message,
    };
    crate::Error::Aws {
        service,
        operation,
        resource: resource.to_owned(),
        message,
        retryable,
    }
}
