//! [`S3Target`]: a backup copy in S3, one object per secret.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::calls::{ApiCalls, RateLimits};
use crate::error::{ConfigError, Error, Result};
use crate::model::{DeletionPolicy, MANAGED_BY, TAG_MANAGED_BY, TargetEntry, TargetSnapshot};
use crate::target::{Desired, Target, WriteOutcome, aws_error, entry_from_tags};

/// Call kinds counted by [`S3Target`] (`s3.<Operation>`).
pub mod kinds {
    /// One page of ListObjectsV2.
    pub const LIST: &str = "s3.ListObjectsV2";
    /// GetObject (the manifest).
    pub const GET: &str = "s3.GetObject";
    /// HeadObject (name collision check before a create).
    pub const HEAD: &str = "s3.HeadObject";
    /// PutObject.
    pub const PUT: &str = "s3.PutObject";
    /// DeleteObject.
    pub const DELETE: &str = "s3.DeleteObject";
}

/// The manifest's file name under the prefix.
pub const MANIFEST: &str = ".vault-replicate-manifest.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    entries: BTreeMap<String, TargetEntry>,
}

/// S3 as a target: one object per secret (or per key) under a prefix,
/// encrypted with SSE-KMS, with `managed-by`, `vault-mount`, `vault-path`,
/// `vault-version` (...) in its user metadata.
///
/// S3 listings do not carry metadata, so the snapshot reads one manifest
/// object (`<prefix>/.vault-replicate-manifest.json`, written at the end of
/// each run) and checks it against one ListObjectsV2 per 1,000 objects:
/// two or three calls however many secrets, no per-object read. A crash
/// before the manifest is written makes the next run write those objects
/// again (the manifest never claims a version that was not written).
/// Deletion (`schedule` or `force`) is DeleteObject; use bucket versioning
/// for a recovery window. Objects without our metadata are never
/// overwritten unless adoption is on.
#[derive(Debug)]
pub struct S3Target {
    client: Client,
    bucket: String,
    prefix: String,
    kms_key_id: Option<String>,
    adopt: bool,
    limits: RateLimits,
    manifest: Mutex<Manifest>,
    dirty: Mutex<bool>,
}

impl S3Target {
    /// A target writing to `bucket` under `prefix` (object keys are the
    /// names the template makes, which must start with `prefix/`).
    pub fn new(
        client: Client,
        bucket: &str,
        prefix: &str,
        kms_key_id: Option<String>,
        adopt: bool,
        write_tps: u32,
    ) -> Result<Self, ConfigError> {
        if bucket.trim().is_empty() {
            return Err(ConfigError::invalid(
                "REPLICATE_S3_BUCKET",
                "a bucket name",
                format!("got {:?}", bucket),
            ));
        }
        Ok(Self {
            client,
            bucket: bucket.trim().to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            kms_key_id: kms_key_id.filter(|k| !k.trim().is_empty()),
            adopt,
            limits: RateLimits::new(write_tps, &[("ListObjectsV2", 0), ("GetObject", 0)]),
            manifest: Mutex::new(Manifest::default()),
            dirty: Mutex::new(false),
        })
    }

    fn manifest_key(&self) -> String {
        if self.prefix.is_empty() {
            MANIFEST.to_owned()
        } else {
            format!("{}/{MANIFEST}", self.prefix)
        }
    }

    fn record(&self, name: &str, entry: Option<TargetEntry>) {
        if let Ok(mut m) = self.manifest.lock() {
            match entry {
                Some(e) => m.entries.insert(name.to_owned(), e),
                None => m.entries.remove(name),
            };
        }
        if let Ok(mut d) = self.dirty.lock() {
            *d = true;
        }
    }

    async fn read_manifest(&self, calls: &ApiCalls) -> Result<Manifest> {
        calls.add(kinds::GET);
        let key = self.manifest_key();
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(o) => {
                let bytes = o.body.collect().await.map_err(|e| Error::Aws {
                    service: "s3",
                    operation: "GetObject",
                    resource: key.clone(),
                    message: e.to_string(),
                    retryable: true,
                })?;
                serde_json::from_slice(&bytes.into_bytes()).map_err(|e| Error::Aws {
                    service: "s3",
                    operation: "GetObject",
                    resource: key.clone(),
                    message: format!("the manifest is not valid JSON: {e}"),
                    retryable: false,
                })
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Ok(Manifest::default())
            }
            Err(e) => Err(aws_error("s3", "GetObject", &key, &e)),
        }
    }
}

#[async_trait]
impl Target for S3Target {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn snapshot(&self, calls: &ApiCalls) -> Result<TargetSnapshot> {
        let manifest = self.read_manifest(calls).await?;
        let mut present = HashSet::new();
        let mut token: Option<String> = None;
        let list_prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        loop {
            calls.add(kinds::LIST);
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&list_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error("s3", "ListObjectsV2", &self.bucket, &e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    present.insert(k.to_owned());
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let kept: BTreeMap<String, TargetEntry> = manifest
            .entries
            .into_iter()
            .filter(|(k, _)| present.contains(k))
            .collect();
        let entries = kept.values().cloned().collect();
        if let Ok(mut m) = self.manifest.lock() {
            m.entries = kept;
        }
        Ok(TargetSnapshot { entries })
    }

    async fn write(
        &self,
        desired: &Desired,
        existing: Option<TargetEntry>,
        calls: &ApiCalls,
    ) -> Result<WriteOutcome> {
        if !self.prefix.is_empty() && !desired.name.starts_with(&format!("{}/", self.prefix)) {
            return Err(Error::InvalidName {
                what: "object key",
                value: desired.name.clone(),
                problem: format!("it must start with the prefix {}/", self.prefix),
            });
        }
        let mut outcome = if existing.is_some() {
            WriteOutcome::Updated
        } else {
            WriteOutcome::Created
        };
        if existing.is_none() {
            calls.add(kinds::HEAD);
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&desired.name)
                .send()
                .await
            {
                Ok(h) => {
                    let ours = h
                        .metadata()
                        .and_then(|m| m.get(TAG_MANAGED_BY))
                        .is_some_and(|v| v == MANAGED_BY);
                    if !ours && !self.adopt {
                        return Err(Error::Unmanaged {
                            name: desired.name.clone(),
                        });
                    }
                    outcome = if ours {
                        WriteOutcome::Updated
                    } else {
                        WriteOutcome::Adopted
                    };
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
                Err(e) => return Err(aws_error("s3", "HeadObject", &desired.name, &e)),
            }
        }
        let tags = desired.tags();
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&desired.name)
            .content_type(if desired.key.is_some() {
                "text/plain"
            } else {
                "application/json"
            })
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key_id.clone())
            .body(ByteStream::from(
                desired.value.expose_secret().as_bytes().to_vec(),
            ));
        for (k, v) in &tags {
            req = req.metadata(*k, v);
        }
        self.limits.acquire("PutObject").await;
        calls.add(kinds::PUT);
        req.send()
            .await
            .map_err(|e| aws_error("s3", "PutObject", &desired.name, &e))?;
        let map: HashMap<String, String> =
            tags.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        self.record(
            &desired.name,
            entry_from_tags(&desired.name, &desired.name, &map, false),
        );
        Ok(outcome)
    }

    async fn retire(
        &self,
        entry: &TargetEntry,
        policy: DeletionPolicy,
        calls: &ApiCalls,
    ) -> Result<()> {
        if policy == DeletionPolicy::None {
            let mut e = entry.clone();
            e.orphaned = true;
            self.record(&entry.name, Some(e));
            return Ok(());
        }
        self.limits.acquire("DeleteObject").await;
        calls.add(kinds::DELETE);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&entry.id)
            .send()
            .await
            .map_err(|e| aws_error("s3", "DeleteObject", &entry.name, &e))?;
        self.record(&entry.name, None);
        Ok(())
    }

    async fn finish(&self, calls: &ApiCalls) -> Result<()> {
        let dirty = self.dirty.lock().map(|d| *d).unwrap_or(true);
        if !dirty {
            return Ok(());
        }
        let body = match self.manifest.lock() {
            Ok(m) => serde_json::to_vec(&*m).map_err(|e| Error::Serialize {
                path: MANIFEST.into(),
                problem: e.to_string(),
            })?,
            Err(_) => return Ok(()),
        };
        let key = self.manifest_key();
        calls.add(kinds::PUT);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key_id.clone())
            .metadata(TAG_MANAGED_BY, MANAGED_BY)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| aws_error("s3", "PutObject", &key, &e))?;
        if let Ok(mut d) = self.dirty.lock() {
            *d = false;
        }
        Ok(())
    }
}
