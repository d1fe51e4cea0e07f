//! The KV version 2 secrets engine.

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use http::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::VaultClient;
use crate::error::Result;
use crate::types::{SecretMap, nullable};

/// How many folders [`Kv2::walk`] lists at once.
const WALK_CONCURRENCY: usize = 8;

/// The KV v2 endpoints of one mount (e.g. `secret`).
#[derive(Debug, Clone)]
pub struct Kv2<'a> {
    client: &'a VaultClient,
    mount: String,
}

/// Metadata of one version of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct KvVersion {
    /// The version number.
    #[serde(default)]
    pub version: u64,
    /// When it was written (RFC 3339).
    #[serde(default)]
    pub created_time: String,
    /// When it was soft-deleted; empty when it was not.
    #[serde(default)]
    pub deletion_time: String,
    /// Whether it was destroyed.
    #[serde(default)]
    pub destroyed: bool,
    /// The secret's custom metadata.
    #[serde(default, deserialize_with = "nullable")]
    pub custom_metadata: HashMap<String, String>,
}

/// A secret's value at one version, with that version's metadata.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KvSecret {
    /// The key/value pairs (`Debug` shows keys only).
    pub data: SecretMap,
    /// The version that was read.
    pub metadata: KvVersion,
}

impl KvSecret {
    /// The version that was read.
    pub fn version(&self) -> u64 {
        self.metadata.version
    }
}

/// State of one version in a secret's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct KvVersionState {
    /// When it was written.
    #[serde(default)]
    pub created_time: String,
    /// When it was soft-deleted; empty when it was not.
    #[serde(default)]
    pub deletion_time: String,
    /// Whether it was destroyed.
    #[serde(default)]
    pub destroyed: bool,
}

impl KvVersionState {
    /// Whether the version can be read (neither deleted nor destroyed).
    pub fn is_live(&self) -> bool {
        self.deletion_time.is_empty() && !self.destroyed
    }
}

/// A secret's metadata (`<mount>/metadata/<path>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct KvMetadata {
    /// The newest version.
    #[serde(default)]
    pub current_version: u64,
    /// The oldest version kept.
    #[serde(default)]
    pub oldest_version: u64,
    /// Versions kept (0 = the mount's default).
    #[serde(default)]
    pub max_versions: u64,
    /// When the secret was created.
    #[serde(default)]
    pub created_time: String,
    /// When it was last written.
    #[serde(default)]
    pub updated_time: String,
    /// Whether writes must use check-and-set.
    #[serde(default)]
    pub cas_required: bool,
    /// Custom metadata.
    #[serde(default, deserialize_with = "nullable")]
    pub custom_metadata: HashMap<String, String>,
    /// Every kept version by number.
    #[serde(default, deserialize_with = "nullable")]
    pub versions: BTreeMap<u64, KvVersionState>,
}

impl KvMetadata {
    /// Whether the current version can be read (neither deleted nor destroyed).
    pub fn current_is_live(&self) -> bool {
        self.versions
            .get(&self.current_version)
            .is_some_and(KvVersionState::is_live)
    }
}

/// One entry of a `detailed-metadata` listing: a secret with its metadata, or
/// a sub-folder (key ending in `/`, no metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DetailedEntry {
    /// The key, relative to the listed folder.
    pub key: String,
    /// The secret's metadata; `None` for folders.
    pub metadata: Option<KvMetadata>,
}

impl DetailedEntry {
    /// Whether the entry is a folder.
    pub fn is_folder(&self) -> bool {
        self.key.ends_with('/')
    }
}

#[derive(Deserialize)]
struct ReadData {
    #[serde(default)]
    data: Option<SecretMap>,
    metadata: KvVersion,
}

#[derive(Deserialize)]
struct DetailedKeys {
    #[serde(default, deserialize_with = "nullable")]
    keys: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    key_info: HashMap<String, KvMetadata>,
}

impl VaultClient {
    /// The KV v2 endpoints at `mount` (e.g. `"secret"`).
    pub fn kv2(&self, mount: &str) -> Kv2<'_> {
        Kv2 {
            client: self,
            mount: mount.trim_matches('/').to_owned(),
        }
    }
}

/// Walks a KV folder tree from `root` (a [`kv_folder`] path), breadth
/// first: `list(folder)` gives one folder's keys (sub-folders end in `/`),
/// up to `concurrency` folders at once. Returns the full path of every
/// secret, unsorted. The walk of [`Kv2::walk`], for callers that list their
/// own way (counting or retrying their calls).
pub async fn walk_kv_tree<E, F, Fut>(
    root: String,
    concurrency: usize,
    list: F,
) -> std::result::Result<Vec<String>, E>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<Vec<String>, E>>,
{
    let mut secrets = Vec::new();
    let mut folders = vec![root];
    while !folders.is_empty() {
        let listed: Vec<(String, Vec<String>)> = stream::iter(folders.drain(..))
            .map(|folder| {
                let keys = list(folder.clone());
                async move { keys.await.map(|keys| (folder, keys)) }
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        for (parent, keys) in listed {
            for key in keys {
                let full = format!("{parent}{key}");
                if key.ends_with('/') {
                    folders.push(full);
                } else {
                    secrets.push(full);
                }
            }
        }
    }
    Ok(secrets)
}

/// A KV folder path as Vault's LIST takes it: no leading slash, one
/// trailing slash (`"app"`, `"/app/"` → `"app/"`), and `""` for the root.
pub fn kv_folder(path: &str) -> String {
    let p = path.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

impl Kv2<'_> {
    fn url(&self, kind: &str, path: &str) -> String {
        format!("{}/{kind}/{}", self.mount, path.trim_start_matches('/'))
    }

    /// Reads the latest version; `None` when the secret does not exist or its
    /// latest version is deleted or destroyed.
    pub async fn read(&self, path: &str) -> Result<Option<KvSecret>> {
        self.read_at(path, None).await
    }

    /// Reads version `version`; `None` when it does not exist or is deleted
    /// or destroyed.
    pub async fn read_version(&self, path: &str, version: u64) -> Result<Option<KvSecret>> {
        self.read_at(path, Some(version)).await
    }

    async fn read_at(&self, path: &str, version: Option<u64>) -> Result<Option<KvSecret>> {
        let mut request = self.client.request(Method::GET, &self.url("data", path));
        if let Some(v) = version {
            request = request.query("version", v);
        }
        let Some(response) = request.send_optional().await? else {
            return Ok(None);
        };
        let read: ReadData = response.data()?;
        Ok(read.data.map(|data| KvSecret {
            data,
            metadata: read.metadata,
        }))
    }

    /// Writes a new version; with `cas`, only if the current version is `cas`
    /// (0 = only if the secret does not exist). Returns the new version's metadata.
    pub async fn write(
        &self,
        path: &str,
        data: &serde_json::Map<String, serde_json::Value>,
        cas: Option<u64>,
    ) -> Result<KvVersion> {
        let mut body = json!({ "data": data });
        if let Some(cas) = cas {
            body["options"] = json!({ "cas": cas });
        }
        self.client
            .request(Method::POST, &self.url("data", path))
            .json(&body)
            .send()
            .await?
            .data()
    }

    /// Reads the metadata; `None` when the secret does not exist.
    pub async fn read_metadata(&self, path: &str) -> Result<Option<KvMetadata>> {
        self.client
            .request(Method::GET, &self.url("metadata", path))
            .data_optional()
            .await
    }

    /// Sets the custom metadata of a secret.
    pub async fn write_custom_metadata(
        &self,
        path: &str,
        custom_metadata: &HashMap<String, String>,
    ) -> Result<()> {
        self.client
            .request(Method::POST, &self.url("metadata", path))
            .json(&json!({ "custom_metadata": custom_metadata }))
            .send()
            .await?;
        Ok(())
    }

    /// Lists one folder (`""` for the mount's root): keys of secrets and of
    /// sub-folders (ending in `/`). A missing folder lists as empty.
    pub async fn list(&self, folder_path: &str) -> Result<Vec<String>> {
        let path = self.url("metadata", &kv_folder(folder_path));
        self.client.list_request(&path).keys().await
    }

    /// Every secret below `prefix` (recursively), as full paths relative to
    /// the mount, sorted. Lists up to 8 folders at once.
    pub async fn walk(&self, prefix: &str) -> Result<Vec<String>> {
        let mut secrets = walk_kv_tree(kv_folder(prefix), WALK_CONCURRENCY, |folder| async move {
            self.list(&folder).await
        })
        .await?;
        secrets.sort();
        Ok(secrets)
    }

    /// OpenBao's `LIST <mount>/detailed-metadata/<folder>`: every key of one
    /// folder with its metadata, in ONE call. Vault does not have this
    /// endpoint (it answers 404 or 405); fall back to [`Kv2::list`] and
    /// [`Kv2::read_metadata`] there. A missing folder lists as empty.
    pub async fn list_detailed(&self, folder_path: &str) -> Result<Vec<DetailedEntry>> {
        let path = self.url("detailed-metadata", &kv_folder(folder_path));
        let Some(response) = self.client.list_request(&path).send_optional().await? else {
            return Ok(Vec::new());
        };
        let DetailedKeys { keys, mut key_info } = response.data()?;
        Ok(keys
            .into_iter()
            .map(|key| {
                let metadata = if key.ends_with('/') {
                    None
                } else {
                    key_info.remove(&key)
                };
                DetailedEntry { key, metadata }
            })
            .collect())
    }

    /// Soft-deletes the latest version.
    pub async fn delete_latest(&self, path: &str) -> Result<()> {
        self.client
            .request(Method::DELETE, &self.url("data", path))
            .send()
            .await?;
        Ok(())
    }

    /// Soft-deletes the given versions.
    pub async fn delete_versions(&self, path: &str, versions: &[u64]) -> Result<()> {
        self.versions_op(Method::POST, "delete", path, versions)
            .await
    }

    /// Permanently destroys the given versions.
    pub async fn destroy_versions(&self, path: &str, versions: &[u64]) -> Result<()> {
        self.versions_op(Method::PUT, "destroy", path, versions)
            .await
    }

    async fn versions_op(
        &self,
        method: Method,
        kind: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<()> {
        self.client
            .request(method, &self.url(kind, path))
            .json(&json!({ "versions": versions }))
            .send()
            .await?;
        Ok(())
    }

    /// Deletes the secret with all its versions and metadata.
    pub async fn delete_metadata(&self, path: &str) -> Result<()> {
        self.client
            .request(Method::DELETE, &self.url("metadata", path))
            .send()
            .await?;
        Ok(())
    }
}
