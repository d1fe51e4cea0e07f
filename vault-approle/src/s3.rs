//! Amazon S3 access: [`S3CredentialStore`] and the lazily configured client
//! ([`S3Access`]) it shares with [`S3TokenAuth`](crate::S3TokenAuth).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::{CredentialStore, Credentials};

/// Default key prefix of delivered credentials.
pub const DEFAULT_PREFIX: &str = "vault/approle/";

/// An S3 client, given or built on first use from the AWS default chain
/// (environment, web identity, ECS container endpoint, IMDSv2), with an
/// optional endpoint override (path-style addressing, for S3-compatible
/// servers and tests).
#[derive(Clone)]
pub struct S3Access {
    inner: Arc<AccessInner>,
}

struct AccessInner {
    client: OnceCell<Client>,
    endpoint: Option<String>,
}

impl fmt::Debug for S3Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Access")
            .field("endpoint", &self.inner.endpoint)
            .field("configured", &self.inner.client.initialized())
            .finish()
    }
}

impl S3Access {
    /// Uses `client` as it is.
    pub fn from_client(client: Client) -> Self {
        Self {
            inner: Arc::new(AccessInner {
                client: OnceCell::new_with(Some(client)),
                endpoint: None,
            }),
        }
    }

    /// Loads the AWS configuration on first use; `endpoint` overrides the S3
    /// endpoint (and switches to path-style addressing).
    pub fn lazy(endpoint: Option<String>) -> Self {
        Self {
            inner: Arc::new(AccessInner {
                client: OnceCell::new(),
                endpoint: endpoint.filter(|e| !e.trim().is_empty()),
            }),
        }
    }

    /// Like [`S3Access::lazy`] with the endpoint from `AWS_ENDPOINT_URL_S3`,
    /// else `AWS_ENDPOINT_URL` (the AWS SDKs' own variables), read through
    /// `lookup`.
    pub fn from_lookup<F>(lookup: F) -> Self
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::non_blank(&lookup);
        Self::lazy(get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")))
    }

    /// The client (built on the first call).
    pub async fn client(&self) -> &Client {
        self.inner
            .client
            .get_or_init(|| async {
                let region = aws_config::meta::region::RegionProviderChain::default_provider()
                    .or_else("us-east-1");
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(region)
                    .load()
                    .await;
                let mut builder = aws_sdk_s3::config::Builder::from(&shared);
                if let Some(endpoint) = &self.inner.endpoint {
                    builder = builder.endpoint_url(endpoint.trim()).force_path_style(true);
                }
                Client::from_conf(builder.build())
            })
            .await
    }

    /// Reads `s3://bucket/key`; `None` when there is no such object.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let location = format!("s3://{bucket}/{key}");
        let result = self
            .client()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(|e| {
                    Error::store(
                        &location,
                        format!("cannot read the object: {e}"),
                        Some(Box::new(e)),
                    )
                })?;
                Ok(Some(Zeroizing::new(bytes.into_bytes().to_vec())))
            }
            Err(e) => {
                let not_found = e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if not_found {
                    Ok(None)
                } else {
                    Err(Error::store(
                        &location,
                        format!("cannot get the object: {}", DisplayErrorContext(&e)),
                        Some(Box::new(e)),
                    ))
                }
            }
        }
    }
}

/// Server-side encryption of the credential objects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum S3Encryption {
    /// SSE-S3 (`AES256`).
    #[default]
    Aes256,
    /// SSE-KMS with this key (id, ARN or alias).
    Kms(String),
}

/// Credentials as S3 objects `s3://<bucket>/<prefix><role>` (prefix default
/// `vault/approle/`), JSON, server-side encrypted (SSE-KMS with a key, or
/// AES256). Consumers need `s3:GetObject` on their own key only (and
/// `kms:Decrypt` on the key).
#[derive(Debug, Clone)]
pub struct S3CredentialStore {
    access: S3Access,
    bucket: String,
    prefix: String,
    encryption: S3Encryption,
}

/// Builder of an [`S3CredentialStore`].
#[derive(Debug, Clone)]
pub struct S3CredentialStoreBuilder {
    access: Option<S3Access>,
    bucket: String,
    prefix: String,
    encryption: S3Encryption,
}

impl S3CredentialStore {
    /// Starts a store in `bucket`.
    pub fn builder(bucket: impl Into<String>) -> S3CredentialStoreBuilder {
        S3CredentialStoreBuilder {
            access: None,
            bucket: bucket.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            encryption: S3Encryption::Aes256,
        }
    }

    /// Reads `VAULT_APPROLE_S3_BUCKET` (required), `VAULT_APPROLE_S3_PREFIX`
    /// (default `vault/approle/`), `VAULT_APPROLE_S3_KMS_KEY_ID` (SSE-KMS with
    /// that key; AES256 when unset) and the endpoint variables of
    /// [`S3Access::from_lookup`].
    pub fn from_lookup<F>(lookup: F) -> Result<Self>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::non_blank(&lookup);
        let bucket = get("VAULT_APPROLE_S3_BUCKET").ok_or_else(|| {
            Error::invalid(
                "VAULT_APPROLE_S3_BUCKET",
                "the S3 bucket that holds the delivered credentials",
                "it is not set",
            )
        })?;
        let mut builder = Self::builder(bucket.trim()).access(S3Access::from_lookup(&lookup));
        if let Some(prefix) = get("VAULT_APPROLE_S3_PREFIX") {
            builder = builder.prefix(prefix.trim());
        }
        if let Some(key) = get("VAULT_APPROLE_S3_KMS_KEY_ID") {
            builder = builder.encryption(S3Encryption::Kms(key.trim().to_owned()));
        }
        builder.build()
    }

    /// The object key of `role`.
    pub fn key(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl S3CredentialStoreBuilder {
    /// The S3 client to use (default: [`S3Access::lazy`] without override).
    pub fn access(mut self, access: S3Access) -> Self {
        self.access = Some(access);
        self
    }
    /// Key prefix (default `vault/approle/`; a missing trailing `/` is added).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Server-side encryption (default AES256).
    pub fn encryption(mut self, encryption: S3Encryption) -> Self {
        self.encryption = encryption;
        self
    }
    /// Validates and builds.
    pub fn build(self) -> Result<S3CredentialStore> {
        let bucket = self.bucket.trim().to_owned();
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_bucket {
            return Err(Error::invalid(
                "S3 bucket",
                "3-63 lower-case letters, digits, '-' or '.'",
                format!("{bucket:?} is not a bucket name"),
            ));
        }
        let mut prefix = self.prefix.trim().trim_start_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        if let S3Encryption::Kms(key) = &self.encryption
            && key.trim().is_empty()
        {
            return Err(Error::invalid(
                "KMS key id",
                "a KMS key id, ARN or alias",
                "it is empty",
            ));
        }
        Ok(S3CredentialStore {
            access: self.access.unwrap_or_else(|| S3Access::lazy(None)),
            bucket,
            prefix,
            encryption: self.encryption,
        })
    }
}

#[async_trait]
impl CredentialStore for S3CredentialStore {
    async fn put(&self, role: &str, credentials: &Credentials) -> Result<()> {
        let key = self.key(role);
        let body = credentials.to_json();
        let mut req = self
            .access
            .client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body.to_vec()));
        req = match &self.encryption {
            S3Encryption::Aes256 => req.server_side_encryption(ServerSideEncryption::Aes256),
            S3Encryption::Kms(id) => req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(id),
        };
        req.send().await.map_err(|e| {
            Error::store(
                self.location(role),
                format!("cannot put the object: {}", DisplayErrorContext(&e)),
                Some(Box::new(e)),
            )
        })?;
        tracing::info!(location = %self.location(role), "credentials delivered");
        Ok(())
    }

    async fn get(&self, role: &str) -> Result<Option<Credentials>> {
        match self.access.get(&self.bucket, &self.key(role)).await? {
            Some(bytes) => Credentials::from_json(&bytes, &self.location(role)).map(Some),
            None => Ok(None),
        }
    }

    async fn delete(&self, role: &str) -> Result<()> {
        self.access
            .client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(role))
            .send()
            .await
            .map_err(|e| {
                Error::store(
                    self.location(role),
                    format!("cannot delete the object: {}", DisplayErrorContext(&e)),
                    Some(Box::new(e)),
                )
            })?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<String>> {
        let client = self.access.client().await;
        let mut roles = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    Error::store(
                        format!("s3://{}/{}", self.bucket, self.prefix),
                        format!("cannot list the objects: {}", DisplayErrorContext(&e)),
                        Some(Box::new(e)),
                    )
                })?;
            roles.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key()?.strip_prefix(self.prefix.as_str()))
                    // Role names, or IAM role names in the old layout.
                    .filter(|name| !name.is_empty() && !name.contains('/'))
                    .map(str::to_owned),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(roles)
    }

    fn location(&self, role: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(role))
    }
}
