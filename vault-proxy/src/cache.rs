//! The response cache: successful GETs, bounded in entries and bytes.
//!
//! Rules (docs/proxy.md states them for users):
//!
//! - **Read your writes.** Every write through the proxy (any method but
//!   GET, HEAD, LIST and OPTIONS) bumps the generation of its *scope* before
//!   its response is returned; an entry read from Vault under an older
//!   generation of a related scope is never served again. A scope is the
//!   namespace plus the first path segment (the mount, for single-segment
//!   mounts), so a write to `secret/data/app/db` drops every cached read under
//!   `secret/` of that namespace (data, metadata, any `?version=`, lists);
//!   writes under `sys/`, `auth/` and `identity/` (policies, mounts, tokens)
//!   drop the whole namespace, descendants included. Namespaces given in
//!   `X-Vault-Namespace` and as a path prefix name the same scope.
//! - **Bounded staleness.** An entry is served at most
//!   `min(max_staleness, default_ttl, lease)` after the proxy sent the read to
//!   Vault. Once three quarters of that have passed, the first hit starts one
//!   background re-read (single-flight) while hits keep getting the cached
//!   value; leased responses (a `lease_id`, or `auth`) are never re-read ahead,
//!   so a refresh never creates a lease.
//! - **Leases.** A response with a `lease_id` (a dynamic secret) lives as long
//!   as its lease, not capped by the default TTL or the staleness bound (the
//!   secret does not change underneath; a new read would only create another
//!   lease): while it is cached its lease is renewed at 50-70 % of its
//!   duration, so later callers get the same credentials. Renewal stops when
//!   the entry is evicted; a refused renewal drops the entry. A lease read
//!   with an older token than the proxy's current one is never served (Vault
//!   revokes a lease with the token that created it).
//! - Wrapped responses, errors and bodies over the size limit are never stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::{HeaderMap, Method, StatusCode};
use moka::Expiry;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use tokio::time::Instant;

use crate::config::CacheConfig;
use crate::metrics::{Event, Metrics};

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

impl Key {
    /// The scope this read belongs to.
    fn scope(&self) -> String {
        let path = self.path_and_query.split('?').next().unwrap_or_default();
        read_scope(self.namespace.as_deref(), path)
    }
}

/// Which limit ends an entry's life (for the eviction metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `VAULT_DEFAULT_CACHE_TTL` or the lease.
    Ttl,
    /// `VAULT_CACHE_MAX_STALENESS`.
    Bound,
}

/// What became of a lease renewal ([`Leases::renew`]).
#[derive(Debug)]
pub(crate) enum Renewal {
    /// Vault renewed the lease for `granted`.
    Renewed { granted: Duration, renewable: bool },
    /// The proxy's token is no longer the one that read the lease (or there
    /// is none any more): the lease dies with the old token.
    TokenChanged,
    /// Vault refused: the lease is gone (revoked, expired).
    Refused(String),
    /// No answer; worth trying again.
    Failed(String),
}

/// Renews the leases of cached responses with the proxy's token.
pub(crate) trait Leases: Send + Sync {
    /// Renews `lease_id` by `increment` if the proxy's token is still of
    /// `generation` (the one that read the lease).
    fn renew(
        &self,
        lease_id: &str,
        increment: Duration,
        generation: u64,
    ) -> BoxFuture<'static, Renewal>;
}

/// A response read from Vault for the cache.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// Generation of the token the read was sent with.
    pub(crate) generation: u64,
}

/// Why a read for the cache got no response from Vault.
#[derive(Debug)]
pub(crate) struct FetchError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

/// One read from Vault, started when first polled.
pub(crate) type Fetch = BoxFuture<'static, Result<Fetched, FetchError>>;

/// A response from Vault, stored or (`ttl` zero) only handed to the callers
/// that waited for it.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// When the proxy sent the read to Vault: the value is at least this recent.
    fetched: Instant,
    /// The same by the wall clock, which also runs while a Lambda is frozen.
    fetched_wall: SystemTime,
    /// How long after `fetched` it may be served, in milliseconds (zero:
    /// never stored); a lease renewal moves it.
    ttl_ms: AtomicU64,
    limit: Limit,
    /// Age from which a hit starts a background re-read (`None`: leased, never).
    refresh_after: Option<Duration>,
    /// A re-read was started for this entry.
    refreshing: AtomicBool,
    /// The generation of its scope when the read was sent.
    scope: Generation,
    /// Generation of the token the read was sent with.
    generation: u64,
    /// The lease of a dynamic secret.
    lease: Option<Lease>,
}

/// The lease of a cached response.
#[derive(Debug)]
struct Lease {
    id: String,
    renewable: bool,
    /// Asked for on renewal (the lease's first duration).
    increment: Duration,
}

impl Cached {
    /// Time since the proxy sent the read to Vault, by the longer of the
    /// monotonic clock and the wall clock (a frozen Lambda process).
    pub(crate) fn age(&self) -> Duration {
        let wall = vault_client::clock::wall()
            .duration_since(self.fetched_wall)
            .unwrap_or_default();
        self.fetched.elapsed().max(wall)
    }

    /// How long after the read it may be served.
    pub(crate) fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Acquire))
    }

    fn set_ttl(&self, ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.ttl_ms.store(ms, Ordering::Release);
    }

    /// The generation of the token that read it, for a leased response.
    pub(crate) fn lease_generation(&self) -> Option<u64> {
        self.lease.as_ref().map(|_| self.generation)
    }
}

/// A scope's write counter and the value it had when a read was sent.
#[derive(Debug, Clone)]
struct Generation {
    counter: Arc<AtomicU64>,
    seen: u64,
}

impl Generation {
    fn current(&self) -> bool {
        self.counter.load(Ordering::SeqCst) == self.seen
    }
}

/// The write counters of the scopes the cache has read from.
#[derive(Default)]
struct Scopes {
    counters: HashMap<String, Arc<AtomicU64>>,
}

/// Most scopes tracked; past it every entry is dropped and counting restarts.
const MAX_SCOPES: usize = 4096;

impl Scopes {
    fn generation(&mut self, scope: String) -> Generation {
        if self.counters.len() >= MAX_SCOPES && !self.counters.contains_key(&scope) {
            self.bump("");
            self.counters.clear();
        }
        let counter = Arc::clone(self.counters.entry(scope).or_default());
        let seen = counter.load(Ordering::SeqCst);
        Generation { counter, seen }
    }

    /// Bumps every scope that `scope` contains or that contains `scope`.
    fn bump(&mut self, scope: &str) {
        for (name, counter) in &self.counters {
            if related(name, scope) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Whether one scope contains the other (by whole segments; `""` contains all).
fn related(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.is_empty()
        || long == short
        || (long.starts_with(short) && long.as_bytes().get(short.len()) == Some(&b'/'))
}

/// A read for the cache on its way to Vault; callers that come later join
/// it while no write could have changed its answer.
struct Flight {
    id: u64,
    scope: Generation,
    result: Shared<BoxFuture<'static, Outcome>>,
}

type Outcome = Result<Arc<Cached>, Arc<FetchError>>;

struct PerEntryTtl;

impl Expiry<Key, Arc<Cached>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<Cached>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl().saturating_sub(value.age()))
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        value: &Arc<Cached>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        // Also after a lease renewal put the entry back.
        Some(value.ttl().saturating_sub(value.age()))
    }
}

struct Inner {
    store: moka::future::Cache<Key, Arc<Cached>>,
    scopes: Mutex<Scopes>,
    flights: Mutex<HashMap<Key, Flight>>,
    next_flight: AtomicU64,
    metrics: Arc<Metrics>,
    /// Renews the leases of cached responses (`None`: not renewed).
    leases: Option<Arc<dyn Leases>>,
}

/// The cache. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ResponseCache {
    pub(crate) config: CacheConfig,
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a request carries no body (no `Transfer-Encoding`, no or a zero
/// `Content-Length`).
pub(crate) fn body_is_empty(headers: &HeaderMap) -> bool {
    !headers.contains_key(http::header::TRANSFER_ENCODING)
        && headers
            .get(http::header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0")
}

impl ResponseCache {
    /// The cache policy's one question: is this request answered from (and
    /// stored in) the cache? Only a GET without a body that does not ask for
    /// a wrapped response, when the cache is on by default or the caller
    /// asks for it (`X-Vault-Cache-Control: cache|recache`; `nocache` never).
    pub(crate) fn serves(
        &self,
        parts: &http::request::Parts,
        control: Option<CacheControl>,
    ) -> bool {
        let cacheable = parts.method == Method::GET
            && !parts.headers.contains_key("x-vault-wrap-ttl")
            && body_is_empty(&parts.headers);
        cacheable
            && match control {
                Some(CacheControl::NoCache) => false,
                Some(CacheControl::Cache | CacheControl::Recache) => true,
                None => self.config.enabled_by_default,
            }
    }

    /// Every entry weighs its size, but at least `max_bytes / max_entries`,
    /// so the one weight bound limits both the bytes and the entry count.
    pub(crate) fn new(
        config: CacheConfig,
        metrics: Arc<Metrics>,
        leases: Option<Arc<dyn Leases>>,
    ) -> Self {
        let floor = (config.max_bytes / config.max_entries.max(1)).max(1);
        let listener_metrics = Arc::clone(&metrics);
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
            .eviction_listener(move |_key, value: Arc<Cached>, cause| {
                // Explicit removals are counted where they happen.
                let event = match cause {
                    RemovalCause::Expired | RemovalCause::Size if !value.scope.current() => {
                        Event::CacheEvictionWrite
                    }
                    RemovalCause::Expired if value.limit == Limit::Bound => {
                        Event::CacheEvictionBound
                    }
                    RemovalCause::Expired => Event::CacheEvictionTtl,
                    RemovalCause::Size => Event::CacheEvictionSize,
                    RemovalCause::Explicit | RemovalCause::Replaced => return,
                };
                listener_metrics.inc(event);
            })
            .build();
        Self {
            config,
            inner: Arc::new(Inner {
                store,
                scopes: Mutex::default(),
                flights: Mutex::default(),
                next_flight: AtomicU64::new(0),
                metrics,
                leases,
            }),
        }
    }

    /// A live entry for `key`, and whether the caller should start the
    /// background re-read ([`ResponseCache::refresh`]) for it.
    pub(crate) async fn lookup(&self, key: &Key) -> Option<(Arc<Cached>, bool)> {
        let entry = self.inner.store.get(key).await?;
        let age = entry.age();
        if !entry.scope.current() {
            self.drop_entry(key, &entry, Event::CacheEvictionWrite)
                .await;
            return None;
        }
        if age >= entry.ttl() {
            let cause = match entry.limit {
                Limit::Ttl => Event::CacheEvictionTtl,
                Limit::Bound => Event::CacheEvictionBound,
            };
            self.drop_entry(key, &entry, cause).await;
            return None;
        }
        let refresh = match entry.refresh_after {
            Some(after) if age >= after => {
                self.inner.metrics.inc(Event::CacheStaleServe);
                !entry.refreshing.swap(true, Ordering::AcqRel)
            }
            _ => false,
        };
        Some((entry, refresh))
    }

    /// Drops a leased `entry` read with an older token than the proxy's
    /// current one (Vault revokes the lease with that token).
    pub(crate) async fn drop_outdated_lease(&self, key: &Key, entry: &Arc<Cached>) {
        self.drop_entry(key, entry, Event::CacheEvictionToken).await;
    }

    /// Removes `entry` if it is still the one stored under `key`.
    async fn drop_entry(&self, key: &Key, entry: &Arc<Cached>, cause: Event) {
        let result = self
            .inner
            .store
            .entry_by_ref(key)
            .and_compute_with(|current| {
                std::future::ready(match current {
                    Some(c) if Arc::ptr_eq(c.value(), entry) => Op::Remove,
                    _ => Op::Nop,
                })
            })
            .await;
        if matches!(result, moka::ops::compute::CompResult::Removed(_)) {
            self.inner.metrics.inc(cause);
        }
    }

    /// The response for a missed `key`: joins a read already on its way when
    /// no write since it was sent could have changed the answer, else sends
    /// `fetch`. The result is stored when cacheable.
    pub(crate) async fn fill(&self, key: &Key, fetch: Fetch) -> Outcome {
        let result = {
            let mut flights = lock(&self.inner.flights);
            match flights.get(key) {
                Some(f) if f.scope.current() => f.result.clone(),
                _ => self.start(&mut flights, key, fetch),
            }
        };
        result.await
    }

    /// Sends `fetch` now (`X-Vault-Cache-Control: recache`); later misses join it.
    pub(crate) async fn recache(&self, key: &Key, fetch: Fetch) -> Outcome {
        let result = {
            let mut flights = lock(&self.inner.flights);
            self.start(&mut flights, key, fetch)
        };
        result.await
    }

    /// Re-reads `key` in the background unless a read of it is on its way.
    pub(crate) fn refresh(&self, key: &Key, fetch: Fetch) {
        let mut flights = lock(&self.inner.flights);
        if flights.get(key).is_some_and(|f| f.scope.current()) {
            return;
        }
        self.inner.metrics.inc(Event::CacheRefreshAhead);
        drop(self.start(&mut flights, key, fetch));
    }

    /// Spawns the read (it finishes even when every caller went away) and
    /// registers it as the flight for `key`.
    fn start(
        &self,
        flights: &mut HashMap<Key, Flight>,
        key: &Key,
        fetch: Fetch,
    ) -> Shared<BoxFuture<'static, Outcome>> {
        let scope = lock(&self.inner.scopes).generation(key.scope());
        let id = self.inner.next_flight.fetch_add(1, Ordering::Relaxed);
        let fetched = (vault_client::clock::now(), vault_client::clock::wall());
        let this = self.clone();
        let (task_key, task_scope) = (key.clone(), scope.clone());
        let task = tokio::spawn(async move {
            let outcome = match fetch.await {
                Ok(f) => Ok(Arc::new(this.entry(f, fetched, task_scope))),
                Err(e) => Err(Arc::new(e)),
            };
            match &outcome {
                // A write since the read was sent may have changed the answer:
                // hand it to the callers that waited, store nothing.
                Ok(entry) if !entry.scope.current() => {}
                Ok(entry) if !entry.ttl().is_zero() => {
                    this.inner
                        .store
                        .insert(task_key.clone(), Arc::clone(entry))
                        .await;
                    if let (Some(leases), Some(lease)) = (&this.inner.leases, &entry.lease)
                        && lease.renewable
                    {
                        let renewer = this.clone();
                        let weak = Arc::downgrade(entry);
                        let (key, leases) = (task_key.clone(), Arc::clone(leases));
                        tokio::spawn(async move { renewer.keep_renewed(key, weak, leases).await });
                    }
                }
                // Vault now answers with something that may not be stored
                // (an error, a wrapped response): the stored answer is outdated.
                Ok(_) => this.inner.store.invalidate(&task_key).await,
                Err(_) => {}
            }
            let mut flights = lock(&this.inner.flights);
            if flights.get(&task_key).is_some_and(|f| f.id == id) {
                flights.remove(&task_key);
            }
            outcome
        });
        let result = async move {
            task.await.unwrap_or_else(|e| {
                Err(Arc::new(FetchError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: format!("vault-aws proxy: the read for the cache failed: {e}"),
                }))
            })
        }
        .boxed()
        .shared();
        flights.insert(
            key.clone(),
            Flight {
                id,
                scope,
                result: result.clone(),
            },
        );
        result
    }

    /// The entry for a response (ttl zero: not to be stored).
    fn entry(&self, f: Fetched, fetched: (Instant, SystemTime), scope: Generation) -> Cached {
        let rules = if f.status.is_success() {
            self.rules_for(&f.body)
        } else {
            None
        };
        let (ttl, limit, refresh_after, lease) = match rules {
            // A dynamic secret: as long as its lease (renewed while cached).
            Some(Rules {
                ttl,
                lease: Some(lease),
                ..
            }) => (ttl, Limit::Ttl, None, Some(lease)),
            Some(Rules { ttl, leased, .. }) if ttl > self.config.max_staleness => (
                self.config.max_staleness,
                Limit::Bound,
                (!leased).then_some(self.config.max_staleness / 4 * 3),
                None,
            ),
            Some(Rules { ttl, leased, .. }) => {
                (ttl, Limit::Ttl, (!leased).then_some(ttl / 4 * 3), None)
            }
            None => (Duration::ZERO, Limit::Ttl, None, None),
        };
        let entry = Cached {
            status: f.status,
            headers: f.headers,
            body: f.body,
            fetched: fetched.0,
            fetched_wall: fetched.1,
            ttl_ms: AtomicU64::new(0),
            limit,
            refresh_after,
            refreshing: AtomicBool::new(false),
            scope,
            generation: f.generation,
            lease,
        };
        entry.set_ttl(ttl);
        entry
    }

    /// Renews the lease of the entry under `key` at 50-70 % of its duration
    /// while it is cached; stops when it is evicted or replaced, when Vault
    /// refuses (the entry is dropped), when the token that read it was
    /// replaced (dropped: the lease dies with that token) and when the lease
    /// reaches its max TTL (the entry then ends with the lease).
    async fn keep_renewed(self, key: Key, entry: Weak<Cached>, leases: Arc<dyn Leases>) {
        let Some(first) = entry.upgrade() else {
            return;
        };
        let mut since = first.fetched;
        drop(first);
        let mut failures: u32 = 0;
        loop {
            let (at, id, increment, generation) = {
                let Some(e) = entry.upgrade() else {
                    return;
                };
                let Some(lease) = e.lease.as_ref() else {
                    return;
                };
                let expires = e.fetched + e.ttl();
                let at = if failures == 0 {
                    let fraction = 0.5 + 0.2 * fastrand::f64();
                    since + expires.saturating_duration_since(since).mul_f64(fraction)
                } else {
                    // Retried before the lease ends, but at most every 250 ms.
                    let backoff = Duration::from_millis(250 << failures.min(7));
                    let left = expires.saturating_duration_since(vault_client::clock::now());
                    vault_client::clock::now()
                        + backoff.min(left / 2).max(Duration::from_millis(250))
                };
                (at, lease.id.clone(), lease.increment, e.generation)
            };
            // Holds no reference while asleep: an evicted entry is freed.
            tokio::time::sleep_until(at).await;
            let Some(e) = entry.upgrade() else {
                return;
            };
            if e.age() >= e.ttl() || !self.still_stored(&key, &e, false).await {
                return;
            }
            let started = vault_client::clock::now();
            match leases.renew(&id, increment, generation).await {
                Renewal::Renewed { granted, renewable } => {
                    self.inner.metrics.inc(Event::LeaseRenewal);
                    e.set_ttl(started.saturating_duration_since(e.fetched) + granted);
                    // Put back, so that the store's expiry follows the lease.
                    if !self.still_stored(&key, &e, true).await {
                        return;
                    }
                    tracing::debug!(lease_id = %id, granted_s = granted.as_secs(), "renewed the lease of a cached response");
                    since = started;
                    failures = 0;
                    if !renewable || granted + Duration::from_secs(1) < increment {
                        // At its max TTL: the entry ends with the lease.
                        return;
                    }
                }
                Renewal::TokenChanged => {
                    self.drop_entry(&key, &e, Event::CacheEvictionToken).await;
                    return;
                }
                Renewal::Refused(message) => {
                    self.inner.metrics.inc(Event::LeaseRenewalFailure);
                    tracing::info!(lease_id = %id, error = %message, "vault refused to renew the lease of a cached response; dropping it");
                    self.drop_entry(&key, &e, Event::CacheEvictionTtl).await;
                    return;
                }
                Renewal::Failed(message) => {
                    self.inner.metrics.inc(Event::LeaseRenewalFailure);
                    tracing::warn!(lease_id = %id, error = %message, "cannot renew the lease of a cached response; retrying");
                    failures = failures.saturating_add(1);
                }
            }
        }
    }

    /// Whether `entry` is still the one stored under `key`; `put_back`
    /// stores it again (its expiry is computed anew).
    async fn still_stored(&self, key: &Key, entry: &Arc<Cached>, put_back: bool) -> bool {
        let result = self
            .inner
            .store
            .entry_by_ref(key)
            .and_compute_with(|current| {
                std::future::ready(match current {
                    Some(c) if Arc::ptr_eq(c.value(), entry) && put_back => {
                        Op::Put(Arc::clone(entry))
                    }
                    _ => Op::Nop,
                })
            })
            .await;
        match result {
            moka::ops::compute::CompResult::ReplacedWith(_) => true,
            moka::ops::compute::CompResult::Unchanged(c) => Arc::ptr_eq(c.value(), entry),
            _ => false,
        }
    }

    /// Called when a write through the proxy got `status` from Vault (`None`:
    /// no answer, it may have been applied): unless Vault refused it (4xx),
    /// no entry its scope relates to is served again.
    pub(crate) fn written(
        &self,
        method: &Method,
        path: &str,
        namespace: Option<&[u8]>,
        status: Option<StatusCode>,
    ) {
        if !is_write(method) || status.is_some_and(|s| s.is_client_error()) {
            return;
        }
        let path = path.strip_prefix("/v1/").unwrap_or(path);
        lock(&self.inner.scopes).bump(&write_scope(namespace, path));
    }

    /// How long a 2xx response with `body` may be served from the cache:
    /// the default TTL, shortened to the lease (`lease_duration`, or the
    /// token's for `auth` responses); `None` when it must not be cached
    /// (wrapped, zero TTL, too large, not JSON from Vault).
    #[cfg(test)]
    pub(crate) fn ttl_for(&self, body: &[u8]) -> Option<Duration> {
        self.rules_for(body).map(|r| r.ttl)
    }

    fn rules_for(&self, body: &[u8]) -> Option<Rules> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(default)]
            lease_duration: u64,
            #[serde(default)]
            lease_id: String,
            #[serde(default)]
            renewable: bool,
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
        if !envelope.lease_id.is_empty() && envelope.auth.is_none() {
            // A dynamic secret lives as long as its lease.
            let ttl = Duration::from_secs(envelope.lease_duration);
            return (!ttl.is_zero()).then_some(Rules {
                ttl,
                leased: true,
                lease: Some(Lease {
                    id: envelope.lease_id,
                    renewable: envelope.renewable,
                    increment: ttl,
                }),
            });
        }
        let mut ttl = self.config.default_ttl;
        if envelope.lease_duration > 0 || !envelope.lease_id.is_empty() {
            ttl = ttl.min(Duration::from_secs(envelope.lease_duration));
        }
        let leased = !envelope.lease_id.is_empty() || envelope.auth.is_some();
        if let Some(auth) = envelope.auth {
            ttl = ttl.min(Duration::from_secs(auth.lease_duration));
        }
        (!ttl.is_zero()).then_some(Rules {
            ttl,
            leased,
            lease: None,
        })
    }
}

struct Rules {
    ttl: Duration,
    /// A lease or a token: re-reading it would create another.
    leased: bool,
    /// The lease of a dynamic secret (a `lease_id`, no `auth`).
    lease: Option<Lease>,
}

/// Methods that can change what Vault answers (LIST and GET are reads).
pub(crate) fn is_write(method: &Method) -> bool {
    !matches!(
        method.as_str(),
        "GET" | "HEAD" | "OPTIONS" | "LIST" | "list"
    )
}

/// The path's segments, as Vault resolves them: percent-decoded, empty ones
/// dropped, lower-cased (two names that differ only in case share a scope:
/// more eviction, never less). `None` when a segment is `.` or `..`.
fn segments(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for raw in s.split('/').filter(|p| !p.is_empty()) {
        let seg = percent_decode(raw).to_ascii_lowercase();
        if seg == "." || seg == ".." {
            return None;
        }
        if !seg.is_empty() {
            out.push(seg);
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn namespace_segments(namespace: Option<&[u8]>) -> Option<Vec<String>> {
    segments(&String::from_utf8_lossy(namespace.unwrap_or_default()))
}

/// The scope of a read: namespace segments plus the path's first segment
/// (`""`, related to every scope, when the path has `.` or `..`).
pub(crate) fn read_scope(namespace: Option<&[u8]>, path: &str) -> String {
    let path = path.strip_prefix("/v1/").unwrap_or(path);
    match (namespace_segments(namespace), segments(path)) {
        (Some(mut ns), Some(p)) => {
            ns.extend(p.into_iter().take(1));
            ns.join("/")
        }
        _ => String::new(),
    }
}

/// The scope a write can change: like a read's, but the whole namespace for
/// `sys/`, `auth/` and `identity/` (policies, mounts, leases, tokens), except
/// for the calls known not to change what a read returns.
pub(crate) fn write_scope(namespace: Option<&[u8]>, path: &str) -> String {
    let (Some(mut ns), Some(p)) = (namespace_segments(namespace), segments(path)) else {
        return String::new();
    };
    let rest: Vec<&str> = p.iter().map(String::as_str).collect();
    let narrow = match rest.as_slice() {
        ["sys", "wrapping" | "tools", ..]
        | [
            "sys",
            "capabilities" | "capabilities-self" | "capabilities-accessor",
        ]
        | ["sys", "leases", "renew" | "lookup", ..]
        | ["sys", "renew", ..]
        | [
            "auth",
            "token",
            "lookup" | "lookup-self" | "lookup-accessor",
            ..,
        ]
        | [
            "auth",
            "token",
            "renew" | "renew-self" | "renew-accessor",
            ..,
        ]
        | ["auth", "token", "create" | "create-orphan", ..]
        | ["auth", _, "login", ..] => true,
        ["sys" | "auth" | "identity", ..] => false,
        _ => true,
    };
    if narrow {
        ns.extend(p.into_iter().take(1));
    }
    ns.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> ResponseCache {
        cache_with(Duration::from_secs(60)).0
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

    fn cache_with(max_staleness: Duration) -> (ResponseCache, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let c = ResponseCache::new(
            CacheConfig {
                default_ttl: Duration::from_secs(60),
                max_staleness,
                ..CacheConfig::default()
            },
            Arc::clone(&metrics),
            None,
        );
        (c, metrics)
    }

    fn key(path: &str, namespace: Option<&str>) -> Key {
        Key {
            path_and_query: path.to_owned(),
            namespace: namespace.map(|n| n.as_bytes().to_vec()),
        }
    }

    /// A fake Vault: answers every read with `body`, counting reads.
    #[derive(Clone, Default)]
    struct Vault {
        body: Arc<Mutex<String>>,
        reads: Arc<AtomicU64>,
    }

    impl Vault {
        fn set(&self, body: &str) {
            *lock(&self.body) = body.to_owned();
        }
        fn reads(&self) -> u64 {
            self.reads.load(Ordering::SeqCst)
        }
        fn fetch(&self) -> Fetch {
            let v = self.clone();
            Box::pin(async move {
                v.reads.fetch_add(1, Ordering::SeqCst);
                let body = lock(&v.body).clone();
                Ok(Fetched {
                    status: StatusCode::OK,
                    headers: HeaderMap::new(),
                    body: Bytes::from(body),
                    generation: 1,
                })
            })
        }
    }

    fn body_of(outcome: &Outcome) -> String {
        String::from_utf8_lossy(&outcome.as_ref().unwrap().body).into_owned()
    }

    async fn hit(c: &ResponseCache, k: &Key) -> Option<String> {
        c.lookup(k)
            .await
            .map(|(e, _)| String::from_utf8_lossy(&e.body).into_owned())
    }

    #[test]
    fn scopes_relate_writes_to_the_reads_they_change() {
        let w = |ns: Option<&str>, path: &str| write_scope(ns.map(str::as_bytes), path);
        let r = |ns: Option<&str>, path: &str| read_scope(ns.map(str::as_bytes), path);
        let kv = w(None, "secret/data/app/db");
        for read in [
            "/v1/secret/data/app/db",
            "/v1/secret/metadata/app/db",
            "/v1/secret/metadata/app/",
            "/v1/secret/metadata",
            "/v1//Secret/subkeys/app/db",
            "/v1/%73ecret/data/app/db",
        ] {
            assert!(related(&kv, &r(None, read)), "{read}");
        }
        assert!(!related(&kv, &r(None, "/v1/kv1/app/db")));
        assert!(!related(&kv, &r(Some("team"), "/v1/secret/data/app/db")));
        // A namespace in the header or as a path prefix is the same scope.
        let team = w(Some("team/"), "secret/data/app/db");
        assert!(related(&team, &r(None, "/v1/team/secret/data/app/db")));
        assert!(related(&team, &r(Some("team"), "/v1/secret/metadata/app/")));
        assert!(!related(&team, &r(Some("team"), "/v1/kv1/x")));
        let prefixed = w(None, "team/secret/data/app/db");
        assert!(related(
            &prefixed,
            &r(Some("team"), "/v1/secret/data/app/db")
        ));
        assert!(related(&prefixed, &r(Some("team"), "/v1/child/secret/x")));
        assert!(!related(&prefixed, &r(None, "/v1/secret/data/app/db")));
        // Policies, mounts, identity: the whole namespace and its children.
        let policy = w(None, "sys/policies/acl/app");
        assert!(related(&policy, &r(None, "/v1/secret/data/app/db")));
        assert!(related(&policy, &r(Some("team"), "/v1/kv1/x")));
        assert!(related(&w(None, "identity/group"), &r(None, "/v1/kv1/x")));
        let team_policy = w(Some("team"), "sys/policies/acl/app");
        assert!(related(&team_policy, &r(Some("team"), "/v1/secret/data/x")));
        assert!(related(&team_policy, &r(None, "/v1/team/kv1/x")));
        assert!(!related(&team_policy, &r(None, "/v1/secret/data/x")));
        // Calls that change no read stay in their own scope.
        for path in [
            "sys/wrapping/unwrap",
            "sys/leases/renew",
            "auth/approle/login",
            "auth/token/renew-self",
        ] {
            assert!(
                !related(&w(None, path), &r(None, "/v1/secret/data/x")),
                "{path}"
            );
        }
        // Dot segments: Vault may resolve them anywhere, so everything goes.
        assert_eq!(w(None, "secret/../sys/policies/acl/x"), "");
        assert!(related(&r(None, "/v1/a/%2e%2e/b"), &w(None, "kv1/x")));
    }

    #[test]
    fn writes_are_methods_that_change_state() {
        for m in ["POST", "PUT", "PATCH", "DELETE"] {
            assert!(is_write(&Method::from_bytes(m.as_bytes()).unwrap()), "{m}");
        }
        for m in ["GET", "HEAD", "OPTIONS", "LIST"] {
            assert!(!is_write(&Method::from_bytes(m.as_bytes()).unwrap()), "{m}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_through_the_proxy_is_read_at_once() {
        let (c, metrics) = cache_with(Duration::from_secs(60));
        let vault = Vault::default();
        let db = key("/v1/secret/data/app/db?version=2", None);
        let other = key("/v1/kv1/app", None);
        vault.set(r#"{"data":{"password":"p1"}}"#);
        assert!(body_of(&c.fill(&db, vault.fetch()).await).contains("p1"));
        c.fill(&other, vault.fetch()).await.unwrap();
        assert!(hit(&c, &db).await.unwrap().contains("p1"));

        vault.set(r#"{"data":{"password":"p2"}}"#);
        // Refused by Vault: nothing changed, the entry stays.
        c.written(
            &Method::POST,
            "/v1/secret/data/app/db",
            None,
            Some(StatusCode::FORBIDDEN),
        );
        assert!(hit(&c, &db).await.unwrap().contains("p1"));
        c.written(
            &Method::POST,
            "/v1/secret/data/app/db",
            None,
            Some(StatusCode::OK),
        );
        assert_eq!(hit(&c, &db).await, None, "the write evicted the read");
        assert_eq!(metrics.get(Event::CacheEvictionWrite), 1);
        assert!(body_of(&c.fill(&db, vault.fetch()).await).contains("p2"));
        assert!(
            hit(&c, &other).await.is_some(),
            "another mount stays cached"
        );
        // No answer (timeout): the write may have been applied.
        c.written(&Method::DELETE, "/v1/secret/metadata/app/db", None, None);
        assert_eq!(hit(&c, &db).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_sent_before_a_write_is_not_stored_or_joined() {
        let (c, _) = cache_with(Duration::from_secs(60));
        let vault = Vault::default();
        vault.set(r#"{"data":{"password":"old"}}"#);
        let k = key("/v1/secret/data/app", None);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let slow = {
            let fetch = vault.fetch();
            // Vault reads the old value; its answer is slow to arrive.
            Box::pin(async move {
                let answer = fetch.await;
                let _ = released.await;
                answer
            })
        };
        let c2 = c.clone();
        let k2 = k.clone();
        let before = tokio::spawn(async move { c2.fill(&k2, slow).await });
        while vault.reads() == 0 {
            tokio::task::yield_now().await;
        }
        // The write lands while the read is on its way, and a new read comes.
        vault.set(r#"{"data":{"password":"new"}}"#);
        c.written(
            &Method::PUT,
            "/v1/secret/data/app",
            None,
            Some(StatusCode::NO_CONTENT),
        );
        let after = c.fill(&k, vault.fetch()).await;
        assert!(
            body_of(&after).contains("new"),
            "did not join the older read"
        );
        release.send(()).unwrap();
        assert!(body_of(&before.await.unwrap()).contains("old"));
        tokio::task::yield_now().await;
        assert!(
            hit(&c, &k).await.unwrap().contains("new"),
            "the older answer did not replace the newer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hot_entries_refresh_ahead_and_none_outlives_the_bound() {
        let (c, metrics) = cache_with(Duration::from_secs(4));
        let vault = Vault::default();
        let k = key("/v1/secret/data/app", None);
        vault.set(r#"{"data":{"v":1}}"#);
        c.fill(&k, vault.fetch()).await.unwrap();
        // Written elsewhere: the cache does not know.
        vault.set(r#"{"data":{"v":2}}"#);
        tokio::time::advance(Duration::from_secs(2)).await;
        let (e, refresh) = c.lookup(&k).await.unwrap();
        assert!(!refresh);
        assert!(e.body.ends_with(b"1}}"));
        // Three quarters of the bound: the first hit asks for one re-read,
        // every hit is still served from the cache.
        tokio::time::advance(Duration::from_millis(1100)).await;
        let (e, refresh) = c.lookup(&k).await.unwrap();
        assert!(refresh && e.body.ends_with(b"1}}"));
        let (_, again) = c.lookup(&k).await.unwrap();
        assert!(!again, "one re-read");
        c.refresh(&k, vault.fetch());
        c.refresh(&k, vault.fetch());
        assert_eq!(metrics.get(Event::CacheRefreshAhead), 1, "single flight");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(vault.reads(), 2);
        assert!(hit(&c, &k).await.unwrap().contains("\"v\":2"));
        assert_eq!(metrics.get(Event::CacheStaleServe), 2);

        // Not hit again: it ends at the bound, counted as such.
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(hit(&c, &k).await, None);
        assert_eq!(metrics.get(Event::CacheEvictionBound), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn leased_and_wrapped_responses_keep_their_rules() {
        let (c, metrics) = cache_with(Duration::from_secs(60));
        let vault = Vault::default();
        let k = key("/v1/database/creds/app", None);
        vault.set(r#"{"lease_id":"database/creds/app/abc","lease_duration":8,"data":{}}"#);
        c.fill(&k, vault.fetch()).await.unwrap();
        tokio::time::advance(Duration::from_secs(7)).await;
        let (_, refresh) = c.lookup(&k).await.unwrap();
        assert!(!refresh, "a leased response is never re-read ahead");
        assert_eq!(metrics.get(Event::CacheStaleServe), 0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(hit(&c, &k).await, None, "not past its lease");
        assert_eq!(metrics.get(Event::CacheEvictionTtl), 1);

        let w = key("/v1/secret/data/wrapped", None);
        vault.set(r#"{"wrap_info":{"token":"hvs.w","ttl":60}}"#);
        c.fill(&w, vault.fetch()).await.unwrap();
        assert_eq!(hit(&c, &w).await, None, "never stored");
        assert_eq!(vault.reads(), 2);
    }

    /// Renews every lease for `granted`, or answers `TokenChanged` once
    /// `changed` is set.
    #[derive(Clone, Default)]
    struct FakeLeases {
        renewals: Arc<AtomicU64>,
        changed: Arc<AtomicBool>,
    }

    impl Leases for FakeLeases {
        fn renew(
            &self,
            _id: &str,
            increment: Duration,
            generation: u64,
        ) -> BoxFuture<'static, Renewal> {
            assert_eq!(generation, 1);
            let this = self.clone();
            Box::pin(async move {
                if this.changed.load(Ordering::SeqCst) {
                    return Renewal::TokenChanged;
                }
                this.renewals.fetch_add(1, Ordering::SeqCst);
                Renewal::Renewed {
                    granted: increment,
                    renewable: true,
                }
            })
        }
    }

    fn leased_cache(staleness: Duration) -> (ResponseCache, Arc<Metrics>, FakeLeases) {
        let metrics = Arc::new(Metrics::new());
        let leases = FakeLeases::default();
        let c = ResponseCache::new(
            CacheConfig {
                default_ttl: Duration::from_secs(5),
                max_staleness: staleness,
                ..CacheConfig::default()
            },
            Arc::clone(&metrics),
            Some(Arc::new(leases.clone())),
        );
        (c, metrics, leases)
    }

    async fn sleep(secs: u64) {
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn cached_leases_are_renewed_until_evicted() {
        // Shorter default TTL and bound than the lease: neither applies.
        let (c, metrics, leases) = leased_cache(Duration::from_secs(3));
        let vault = Vault::default();
        let k = key("/v1/database/creds/app", None);
        vault.set(r#"{"lease_id":"database/creds/app/a","lease_duration":10,"renewable":true,"data":{"username":"u1"}}"#);
        c.fill(&k, vault.fetch()).await.unwrap();
        // Three lease durations: still the same entry, renewed meanwhile.
        sleep(31).await;
        let (e, refresh) = c.lookup(&k).await.unwrap();
        assert!(!refresh && e.body.ends_with(br#""u1"}}"#));
        assert!(leases.renewals.load(Ordering::SeqCst) >= 3);
        assert_eq!(
            metrics.get(Event::LeaseRenewal),
            leases.renewals.load(Ordering::SeqCst)
        );
        assert_eq!(vault.reads(), 1);
        // Evicted: renewal stops.
        c.inner.store.invalidate(&k).await;
        drop(e);
        let before = leases.renewals.load(Ordering::SeqCst);
        sleep(40).await;
        assert!(leases.renewals.load(Ordering::SeqCst) <= before + 1);
        let after = leases.renewals.load(Ordering::SeqCst);
        sleep(40).await;
        assert_eq!(
            leases.renewals.load(Ordering::SeqCst),
            after,
            "no renewal after eviction"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_of_a_replaced_token_is_dropped_at_its_next_renewal() {
        let (c, metrics, leases) = leased_cache(Duration::from_secs(60));
        let vault = Vault::default();
        let k = key("/v1/database/creds/app", None);
        vault.set(
            r#"{"lease_id":"database/creds/app/a","lease_duration":10,"renewable":true,"data":{}}"#,
        );
        let e = c.fill(&k, vault.fetch()).await.unwrap();
        assert_eq!(e.lease_generation(), Some(1));
        leases.changed.store(true, Ordering::SeqCst);
        sleep(8).await;
        assert_eq!(hit(&c, &k).await, None);
        assert_eq!(metrics.get(Event::CacheEvictionToken), 1);
        assert_eq!(leases.renewals.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn bounded_in_entries() {
        let (c, _) = {
            let metrics = Arc::new(Metrics::new());
            let c = ResponseCache::new(
                CacheConfig {
                    max_entries: 3,
                    max_bytes: 3000,
                    ..CacheConfig::default()
                },
                Arc::clone(&metrics),
                None,
            );
            (c, metrics)
        };
        let vault = Vault::default();
        vault.set("{}");
        for i in 0..20 {
            c.fill(&key(&format!("/v1/k{i}"), None), vault.fetch())
                .await
                .unwrap();
        }
        c.inner.store.run_pending_tasks().await;
        let n = c.inner.store.entry_count();
        assert!(n <= 3, "{n}");
    }
}
