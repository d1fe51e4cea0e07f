//! The response cache: successful GETs, bounded in entries and bytes, each
//! entry living at most the default TTL and never past its lease.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use moka::Expiry;

use crate::config::CacheConfig;

/// What `X-Vault-Cache-Control` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheControl {
    /// Use the cache (also when it is not on by default).
    Cache,
    /// Fetch from Vault and replace the cached entry.
    Recache,
    /// Bypass the cache.
    NoCache,
}

impl CacheControl {
    /// Parses the header value; `Err` names the accepted values.
    pub(crate) fn parse(value: &[u8]) -> Result<Self, String> {
        let v = std::str::from_utf8(value).unwrap_or_default().trim();
        if v.eq_ignore_ascii_case("cache") {
            Ok(Self::Cache)
        } else if v.eq_ignore_ascii_case("recache") {
            Ok(Self::Recache)
        } else if v.eq_ignore_ascii_case("nocache") {
            Ok(Self::NoCache)
        } else {
            Err(format!(
                "X-Vault-Cache-Control must be cache, recache or nocache, got {v:?}"
            ))
        }
    }
}

/// The cache key: what selects a response besides the token (all callers
/// share the proxy's token). Tracing headers are not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) path_and_query: String,
    pub(crate) namespace: Option<Vec<u8>>,
}

/// A stored response.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) stored: Instant,
    pub(crate) ttl: Duration,
}

impl Cached {
    /// Whether the entry may still be served (belt and braces over moka's expiry).
    pub(crate) fn is_live(&self) -> bool {
        self.stored.elapsed() < self.ttl
    }
}

struct PerEntryTtl;

impl Expiry<Key, Arc<Cached>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<Cached>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        value: &Arc<Cached>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The cache. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ResponseCache {
    pub(crate) store: moka::future::Cache<Key, Arc<Cached>>,
    pub(crate) config: CacheConfig,
}

impl ResponseCache {
    /// Every entry weighs its size, but at least `max_bytes / max_entries`,
    /// so the one weight bound limits both the bytes and the entry count.
    pub(crate) fn new(config: CacheConfig) -> Self {
        let floor = (config.max_bytes / config.max_entries.max(1)).max(1);
        let store = moka::future::Cache::builder()
            .max_capacity(config.max_bytes.max(1))
            .weigher(move |key: &Key, value: &Arc<Cached>| {
                let size = (key.path_and_query.len()
                    + value.body.len()
                    + value
                        .headers
                        .iter()
                        .map(|(k, v)| k.as_str().len() + v.len())
                        .sum::<usize>()) as u64;
                u32::try_from(size.max(floor)).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        Self { store, config }
    }

    /// How long a 2xx response with `body` may be served from the cache:
    /// the default TTL, shortened to the lease (`lease_duration`, or the
    /// token's for `auth` responses); `None` when it must not be cached
    /// (wrapped, zero TTL, too large, not JSON from Vault).
    pub(crate) fn ttl_for(&self, body: &[u8]) -> Option<Duration> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(default)]
            lease_duration: u64,
            #[serde(default)]
            lease_id: String,
            #[serde(default)]
            wrap_info: Option<serde::de::IgnoredAny>,
            #[serde(default)]
            auth: Option<AuthLease>,
        }
        #[derive(serde::Deserialize)]
        struct AuthLease {
            #[serde(default)]
            lease_duration: u64,
        }
        if body.len() > self.config.max_entry_bytes {
            return None;
        }
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        if envelope.wrap_info.is_some() {
            return None;
        }
        let mut ttl = self.config.default_ttl;
        if envelope.lease_duration > 0 || !envelope.lease_id.is_empty() {
            ttl = ttl.min(Duration::from_secs(envelope.lease_duration));
        }
        if let Some(auth) = envelope.auth {
            ttl = ttl.min(Duration::from_secs(auth.lease_duration));
        }
        (!ttl.is_zero()).then_some(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> ResponseCache {
        ResponseCache::new(CacheConfig {
            default_ttl: Duration::from_secs(60),
            ..CacheConfig::default()
        })
    }

    #[test]
    fn leases_bound_the_ttl() {
        let c = cache();
        assert_eq!(
            c.ttl_for(br#"{"data":{"a":1},"lease_duration":0}"#),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            c.ttl_for(br#"{"lease_id":"database/creds/x/1","lease_duration":5,"data":{}}"#),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            c.ttl_for(br#"{"lease_duration":600}"#),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            c.ttl_for(br#"{"auth":{"lease_duration":7}}"#),
            Some(Duration::from_secs(7))
        );
        assert_eq!(c.ttl_for(br#"{"lease_id":"x","lease_duration":0}"#), None);
        assert_eq!(c.ttl_for(br#"{"wrap_info":{"token":"t"}}"#), None);
        assert_eq!(c.ttl_for(b"<html>"), None);
    }

    #[test]
    fn cache_control_values() {
        assert_eq!(CacheControl::parse(b"Cache"), Ok(CacheControl::Cache));
        assert_eq!(CacheControl::parse(b"recache"), Ok(CacheControl::Recache));
        assert_eq!(CacheControl::parse(b"NOCACHE"), Ok(CacheControl::NoCache));
        assert!(
            CacheControl::parse(b"maybe")
                .unwrap_err()
                .contains("cache, recache or nocache")
        );
    }

    #[tokio::test]
    async fn bounded_in_entries() {
        let c = ResponseCache::new(CacheConfig {
            max_entries: 3,
            max_bytes: 3000,
            ..CacheConfig::default()
        });
        for i in 0..20 {
            c.store
                .insert(
                    Key {
                        path_and_query: format!("/v1/k{i}"),
                        namespace: None,
                    },
                    Arc::new(Cached {
                        status: StatusCode::OK,
                        headers: HeaderMap::new(),
                        body: Bytes::from_static(b"{}"),
                        stored: Instant::now(),
                        ttl: Duration::from_secs(60),
                    }),
                )
                .await;
        }
        c.store.run_pending_tasks().await;
        assert!(c.store.entry_count() <= 3, "{}", c.store.entry_count());
    }
}
