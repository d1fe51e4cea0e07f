//! The [`Source`] trait and [`VaultKvSource`], Vault / OpenBao KV v2.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use vault_client::{KvMetadata, Method, SecretMap, VaultAuth, VaultClient};

use crate::calls::ApiCalls;
use crate::error::{ConfigError, Error, Result};
use crate::model::{SourceEntry, SourceScope, SourceSnapshot, value_digest};

/// Where secrets come from.
///
/// # Contract
/// - `snapshot` lists the current version of every secret in scope whose
///   current version is live (not deleted, not destroyed), without reading
///   any value; it fails as a whole when any listing fails (a partial
///   listing must never look like deleted secrets).
/// - `read` returns the value AT `entry.version`, `None` when that version
///   was deleted or destroyed since the snapshot.
/// - Each call to a backend is counted in `calls`.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Source: Send + Sync {
    /// Lists the current versions.
    async fn snapshot(&self, calls: &ApiCalls) -> Result<SourceSnapshot>;
    /// Reads one secret at the snapshot's version.
    async fn read(&self, entry: &SourceEntry, calls: &ApiCalls) -> Result<Option<SecretMap>>;
    /// The current versions of exactly `paths` (`(mount, path)` pairs),
    /// those outside the scopes left out; a path that is gone or whose
    /// current version is deleted is absent. The snapshot's `scopes` are the
    /// source's scopes. The default takes a full snapshot and filters it.
    async fn snapshot_paths(
        &self,
        paths: &[(String, String)],
        calls: &ApiCalls,
    ) -> Result<SourceSnapshot> {
        let mut snap = self.snapshot(calls).await?;
        snap.entries
            .retain(|e| paths.iter().any(|(m, p)| *m == e.mount && *p == e.path));
        Ok(snap)
    }
}

/// Call kinds counted by [`VaultKvSource`].
pub mod kinds {
    /// One LIST (`detailed-metadata` or `metadata`) of a folder.
    pub const VAULT_LIST: &str = "vault.list";
    /// One metadata read (fallback when `detailed-metadata` is missing).
    pub const VAULT_READ_METADATA: &str = "vault.read_metadata";
    /// One secret value read.
    pub const VAULT_READ: &str = "vault.read";
    /// One login.
    pub const VAULT_LOGIN: &str = "vault.login";
    /// One read of a mount's description (KV version 1 or 2), once per
    /// mount and process.
    pub const VAULT_READ_MOUNT: &str = "vault.read_mount";
}

/// KV v2 secrets under one or more mounts and folders, recursively.
///
/// On OpenBao the snapshot costs one `LIST <mount>/detailed-metadata/<folder>`
/// per folder. Where that endpoint is missing (HashiCorp Vault answers 404 or
/// 405) it falls back to `LIST <mount>/metadata/<folder>` plus one metadata
/// read per secret, `metadata_concurrency` at a time.
///
/// With an auth method, it logs in on first use and again once when Vault
/// answers 403 (an expired or revoked token).
pub struct VaultKvSource {
    base: VaultClient,
    auth: Option<Arc<dyn VaultAuth>>,
    authed: Mutex<Option<VaultClient>>,
    scopes: Vec<SourceScope>,
    list_concurrency: usize,
    metadata_concurrency: usize,
    detailed: bool,
    kv_versions: Mutex<HashMap<String, u8>>,
}

impl std::fmt::Debug for VaultKvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKvSource")
            .field("client", &self.base)
            .field("auth", &self.auth.as_ref().map(|a| a.method()))
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Builds a [`VaultKvSource`].
#[derive(Clone)]
pub struct VaultKvSourceBuilder {
    client: VaultClient,
    auth: Option<Arc<dyn VaultAuth>>,
    scopes: Vec<SourceScope>,
    list_concurrency: usize,
    metadata_concurrency: usize,
    detailed: bool,
}

impl VaultKvSource {
    /// A builder; `client` is used with its own token unless an auth method
    /// is set.
    pub fn builder(client: VaultClient) -> VaultKvSourceBuilder {
        VaultKvSourceBuilder {
            client,
            auth: None,
            scopes: Vec::new(),
            list_concurrency: 8,
            metadata_concurrency: 16,
            detailed: true,
        }
    }

    /// The scopes.
    pub fn scopes(&self) -> &[SourceScope] {
        &self.scopes
    }

    async fn client(&self, calls: &ApiCalls, fresh: bool) -> Result<VaultClient> {
        let Some(auth) = &self.auth else {
            return Ok(self.base.clone());
        };
        if !fresh
            && let Ok(guard) = self.authed.lock()
            && let Some(c) = guard.as_ref()
        {
            return Ok(c.clone());
        }
        calls.add(kinds::VAULT_LOGIN);
        let info = auth.login(&self.base).await?;
        let client = self.base.with_token(info.client_token);
        if let Ok(mut guard) = self.authed.lock() {
            *guard = Some(client.clone());
        }
        Ok(client)
    }

    /// Runs `f` with a logged-in client; logs in again once on 403.
    async fn call<T, F, Fut>(&self, calls: &ApiCalls, f: F) -> Result<T>
    where
        F: Fn(VaultClient) -> Fut,
        Fut: Future<Output = vault_client::Result<T>>,
    {
        let client = self.client(calls, false).await?;
        match f(client).await {
            Err(e) if e.is_permission_denied() && self.auth.is_some() => {
                let client = self.client(calls, true).await?;
                Ok(f(client).await?)
            }
            other => Ok(other?),
        }
    }

    async fn list_detailed(
        &self,
        calls: &ApiCalls,
        mount: &str,
        folder: &str,
    ) -> Result<Option<Vec<vault_client::DetailedEntry>>> {
        calls.add(kinds::VAULT_LIST);
        let r = self
            .call(calls, |c| async move {
                c.kv2(mount).list_detailed(folder).await
            })
            .await;
        match r {
            Ok(entries) => Ok(Some(entries)),
            Err(Error::Vault(e)) if e.status() == Some(405) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_plain(&self, calls: &ApiCalls, mount: &str, folder: &str) -> Result<Vec<String>> {
        calls.add(kinds::VAULT_LIST);
        self.call(calls, |c| async move { c.kv2(mount).list(folder).await })
            .await
    }

    async fn snapshot_scope(
        &self,
        calls: &ApiCalls,
        scope: &SourceScope,
        out: &mut SourceSnapshot,
    ) -> Result<()> {
        let mount = scope.mount.as_str();
        let root = vault_client::kv_folder(&scope.prefix);
        if self.kv_version(calls, mount).await? == 1 {
            return self.walk_v1(calls, mount, root, out).await;
        }
        if !self.detailed {
            return self.walk_fallback(calls, mount, root, out).await;
        }
        // Probe the root: tells whether detailed-metadata exists here.
        let detailed = match self.list_detailed(calls, mount, &root).await? {
            Some(entries) if entries.is_empty() => {
                // Empty, or an endpoint Vault does not have (404): a plain LIST tells.
                if self.list_plain(calls, mount, &root).await?.is_empty() {
                    return Ok(());
                }
                tracing::info!(
                    mount,
                    "detailed-metadata is not available: falling back to metadata reads"
                );
                None
            }
            other => other,
        };
        match detailed {
            Some(first) => self.walk_detailed(calls, mount, root, first, out).await,
            None => self.walk_fallback(calls, mount, root, out).await,
        }
    }

    async fn walk_detailed(
        &self,
        calls: &ApiCalls,
        mount: &str,
        root: String,
        first: Vec<vault_client::DetailedEntry>,
        out: &mut SourceSnapshot,
    ) -> Result<()> {
        let mut pending = vec![(root, first)];
        loop {
            let mut folders = Vec::new();
            for (parent, entries) in pending.drain(..) {
                for e in entries {
                    let full = format!("{parent}{}", e.key);
                    if e.is_folder() {
                        folders.push(full);
                    } else if let Some(meta) = e.metadata {
                        push_live(out, mount, full, &meta);
                    }
                }
            }
            if folders.is_empty() {
                return Ok(());
            }
            pending = stream::iter(folders)
                .map(|f| async move {
                    match self.list_detailed(calls, mount, &f).await? {
                        Some(entries) => Ok((f, entries)),
                        None => Err(Error::Config(ConfigError::invalid(
                            "detailed-metadata",
                            "the endpoint on every folder",
                            format!("got {:?}", format!("405 for {mount}/{f}")),
                        ))),
                    }
                })
                .buffer_unordered(self.list_concurrency)
                .try_collect()
                .await?;
        }
    }

    async fn walk_fallback(
        &self,
        calls: &ApiCalls,
        mount: &str,
        root: String,
        out: &mut SourceSnapshot,
    ) -> Result<()> {
        let secrets =
            vault_client::walk_kv_tree(root, self.list_concurrency, |folder| async move {
                self.list_plain(calls, mount, &folder).await
            })
            .await?;
        let metas: Vec<(String, Option<KvMetadata>)> = stream::iter(secrets)
            .map(|path| async move {
                calls.add(kinds::VAULT_READ_METADATA);
                let p = path.as_str();
                let m = self
                    .call(
                        calls,
                        |c| async move { c.kv2(mount).read_metadata(p).await },
                    )
                    .await?;
                Ok::<_, Error>((path, m))
            })
            .buffer_unordered(self.metadata_concurrency)
            .try_collect()
            .await?;
        for (path, meta) in metas {
            if let Some(meta) = meta {
                push_live(out, mount, path, &meta);
            }
        }
        Ok(())
    }
}

impl VaultKvSource {
    /// The KV version of `mount` (`sys/internal/ui/mounts/<mount>`, what the
    /// Vault CLI's `kv` commands read), once per mount; 2 when Vault does
    /// not say (no such mount, or no permission to read its description).
    async fn kv_version(&self, calls: &ApiCalls, mount: &str) -> Result<u8> {
        if let Ok(cache) = self.kv_versions.lock()
            && let Some(v) = cache.get(mount)
        {
            return Ok(*v);
        }
        #[derive(serde::Deserialize)]
        struct MountInfo {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            options: Option<HashMap<String, serde_json::Value>>,
        }
        calls.add(kinds::VAULT_READ_MOUNT);
        let path = format!("sys/internal/ui/mounts/{mount}");
        let info = self
            .call(calls, |c| {
                let path = path.clone();
                async move {
                    c.request(Method::GET, &path)
                        .data_optional::<MountInfo>()
                        .await
                }
            })
            .await;
        let version = match info {
            Ok(Some(info)) => {
                let declared = info
                    .options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    });
                match declared.as_deref() {
                    Some("1") => 1,
                    Some(_) => 2,
                    None if info.kind == "kv" || info.kind == "generic" => 1,
                    None => 2,
                }
            }
            Ok(None) => 2,
            Err(Error::Vault(e)) if e.is_permission_denied() => {
                tracing::info!(
                    mount,
                    "cannot read the mount's description: assuming KV version 2"
                );
                2
            }
            Err(e) => return Err(e),
        };
        if let Ok(mut cache) = self.kv_versions.lock() {
            cache.insert(mount.to_owned(), version);
        }
        Ok(version)
    }

    /// KV version 1: no versions, so every value is read and its digest is
    /// the version id (`metadata_concurrency` reads at once).
    async fn walk_v1(
        &self,
        calls: &ApiCalls,
        mount: &str,
        root: String,
        out: &mut SourceSnapshot,
    ) -> Result<()> {
        let secrets =
            vault_client::walk_kv_tree(root, self.list_concurrency, |folder| async move {
                calls.add(kinds::VAULT_LIST);
                let path = format!("{mount}/{folder}");
                self.call(calls, |c| {
                    let path = path.clone();
                    async move { c.list_request(&path).keys().await }
                })
                .await
            })
            .await?;
        let read: Vec<Option<SourceEntry>> = stream::iter(secrets)
            .map(|path| async move {
                let value = self.read_v1(calls, mount, &path).await?;
                Ok::<_, Error>(value.map(|v| SourceEntry {
                    mount: mount.to_owned(),
                    path,
                    version: 0,
                    version_id: value_digest(&v),
                }))
            })
            .buffer_unordered(self.metadata_concurrency)
            .try_collect()
            .await?;
        out.entries.extend(read.into_iter().flatten());
        Ok(())
    }

    async fn read_v1(
        &self,
        calls: &ApiCalls,
        mount: &str,
        path: &str,
    ) -> Result<Option<SecretMap>> {
        calls.add(kinds::VAULT_READ);
        let full = format!("{mount}/{path}");
        self.call(calls, |c| {
            let full = full.clone();
            async move {
                c.request(Method::GET, &full)
                    .data_optional::<SecretMap>()
                    .await
            }
        })
        .await
    }
}

fn push_live(out: &mut SourceSnapshot, mount: &str, path: String, meta: &KvMetadata) {
    if meta.current_is_live() {
        out.entries.push(SourceEntry {
            mount: mount.to_owned(),
            path,
            version: meta.current_version,
            version_id: meta
                .versions
                .get(&meta.current_version)
                .map(|v| v.created_time.clone())
                .unwrap_or_default(),
        });
    } else {
        out.skipped_deleted += 1;
    }
}

#[async_trait]
impl Source for VaultKvSource {
    async fn snapshot(&self, calls: &ApiCalls) -> Result<SourceSnapshot> {
        let mut out = SourceSnapshot {
            scopes: self.scopes.clone(),
            ..SourceSnapshot::default()
        };
        for scope in &self.scopes {
            self.snapshot_scope(calls, scope, &mut out).await?;
        }
        out.entries.sort();
        out.entries.dedup();
        Ok(out)
    }

    async fn read(&self, entry: &SourceEntry, calls: &ApiCalls) -> Result<Option<SecretMap>> {
        if entry.version == 0 {
            return self.read_v1(calls, &entry.mount, &entry.path).await;
        }
        calls.add(kinds::VAULT_READ);
        let (mount, path, version) = (entry.mount.as_str(), entry.path.as_str(), entry.version);
        let secret = self
            .call(calls, |c| async move {
                c.kv2(mount).read_version(path, version).await
            })
            .await?;
        Ok(secret.map(|s| s.data))
    }

    /// One metadata read per KV v2 path (one value read per KV v1 path, the
    /// only way to know its version): never a LIST, never another secret.
    async fn snapshot_paths(
        &self,
        paths: &[(String, String)],
        calls: &ApiCalls,
    ) -> Result<SourceSnapshot> {
        let mut out = SourceSnapshot {
            scopes: self.scopes.clone(),
            ..SourceSnapshot::default()
        };
        let wanted: Vec<(String, String)> = paths
            .iter()
            .filter(|(m, p)| self.scopes.iter().any(|s| s.contains(m, p)))
            .cloned()
            .collect();
        let found: Vec<(Option<SourceEntry>, bool)> = stream::iter(wanted)
            .map(|(mount, path): (String, String)| async move {
                let (mount, path) = (mount.as_str(), path.as_str());
                if self.kv_version(calls, mount).await? == 1 {
                    let value = self.read_v1(calls, mount, path).await?;
                    return Ok::<_, Error>((
                        value.map(|v| SourceEntry {
                            mount: mount.to_owned(),
                            path: path.to_owned(),
                            version: 0,
                            version_id: value_digest(&v),
                        }),
                        false,
                    ));
                }
                calls.add(kinds::VAULT_READ_METADATA);
                let meta = self
                    .call(
                        calls,
                        |c| async move { c.kv2(mount).read_metadata(path).await },
                    )
                    .await?;
                let mut one = SourceSnapshot::default();
                if let Some(meta) = meta {
                    push_live(&mut one, mount, path.to_owned(), &meta);
                }
                Ok((one.entries.pop(), one.skipped_deleted > 0))
            })
            .buffer_unordered(self.metadata_concurrency)
            .try_collect()
            .await?;
        for (entry, skipped) in found {
            out.entries.extend(entry);
            out.skipped_deleted += u64::from(skipped);
        }
        out.entries.sort();
        out.entries.dedup();
        Ok(out)
    }
}

impl VaultKvSourceBuilder {
    /// Adds a scope (a mount and a folder below it, `""` for all).
    pub fn scope(mut self, scope: SourceScope) -> Self {
        self.scopes.push(scope);
        self
    }

    /// Adds several scopes.
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = SourceScope>) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// Logs in with `auth` instead of using the client's token.
    pub fn auth(mut self, auth: Arc<dyn VaultAuth>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Folders listed at once (default 8).
    pub fn list_concurrency(mut self, n: usize) -> Self {
        self.list_concurrency = n;
        self
    }

    /// Metadata reads at once in the fallback (default 16).
    pub fn metadata_concurrency(mut self, n: usize) -> Self {
        self.metadata_concurrency = n;
        self
    }

    /// Whether to use OpenBao's `detailed-metadata` listing (default true;
    /// `false` always reads metadata per secret, as on HashiCorp Vault).
    pub fn detailed_metadata(mut self, on: bool) -> Self {
        self.detailed = on;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<VaultKvSource, ConfigError> {
        if self.scopes.is_empty() {
            return Err(ConfigError::invalid(
                "REPLICATE_SOURCES",
                "at least one `mount` or `mount/folder`",
                format!("got {:?}", ""),
            ));
        }
        if self.list_concurrency == 0 || self.metadata_concurrency == 0 {
            return Err(ConfigError::invalid(
                "concurrency",
                "at least 1",
                format!("got {:?}", "0"),
            ));
        }
        if self.auth.is_none() && !self.client.has_token() {
            return Err(ConfigError::invalid(
                "VAULT_TOKEN",
                "a client with a token, or an auth method",
                format!("got {:?}", "none"),
            ));
        }
        Ok(VaultKvSource {
            base: self.client,
            auth: self.auth,
            authed: Mutex::new(None),
            scopes: self.scopes,
            list_concurrency: self.list_concurrency,
            metadata_concurrency: self.metadata_concurrency,
            detailed: self.detailed,
            kv_versions: Mutex::new(HashMap::new()),
        })
    }
}
