//! API call counting and per-API rate limits.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Counts API calls by kind (`vault.list`, `vault.read`,
/// `secretsmanager.ListSecrets`, ...). Counted in our code, one per logical
/// call; the SDK's own retries of a call are not counted again.
#[derive(Debug, Default)]
pub struct ApiCalls {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl ApiCalls {
    /// No calls yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one call of `kind`.
    pub fn add(&self, kind: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(kind.to_owned()).or_default() += 1;
        }
    }

    /// Calls of `kind` so far.
    pub fn get(&self, kind: &str) -> u64 {
        self.counts
            .lock()
            .map(|c| c.get(kind).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Every count, by kind.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// A rate limit: at most `per_second` calls start per second, spaced evenly
/// (no bursts). The lock is never held across an `.await`.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` calls per second (0 = unlimited).
    pub fn new(per_second: u32) -> Self {
        let interval = if per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(1.0 / f64::from(per_second))
        };
        Self {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        if self.interval.is_zero() {
            return;
        }
        let now = vault_client::clock::now();
        let slot = match self.next.lock() {
            Ok(mut next) => {
                let slot = next.map_or(now, |n| n.max(now));
                *next = Some(slot + self.interval);
                slot
            }
            Err(_) => now,
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }
}

/// One [`RateLimiter`] per API operation name, created on first use.
#[derive(Debug)]
pub struct RateLimits {
    default_tps: u32,
    overrides: BTreeMap<&'static str, u32>,
    limiters: Mutex<BTreeMap<&'static str, std::sync::Arc<RateLimiter>>>,
}

impl RateLimits {
    /// `default_tps` for every operation unless `overrides` names it.
    pub fn new(default_tps: u32, overrides: &[(&'static str, u32)]) -> Self {
        Self {
            default_tps,
            overrides: overrides.iter().copied().collect(),
            limiters: Mutex::new(BTreeMap::new()),
        }
    }

    /// Waits for a slot of `operation`.
    pub async fn acquire(&self, operation: &'static str) {
        let limiter = match self.limiters.lock() {
            Ok(mut l) => l
                .entry(operation)
                .or_insert_with(|| {
                    std::sync::Arc::new(RateLimiter::new(
                        self.overrides
                            .get(operation)
                            .copied()
                            .unwrap_or(self.default_tps),
                    ))
                })
                .clone(),
            Err(_) => return,
        };
        limiter.acquire().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind() {
        let c = ApiCalls::new();
        c.add("vault.list");
        c.add("vault.list");
        c.add("secretsmanager.ListSecrets");
        assert_eq!(c.get("vault.list"), 2);
        assert_eq!(c.get("vault.read"), 0);
        assert_eq!(c.snapshot().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_calls_evenly() {
        let l = RateLimiter::new(10);
        let start = vault_client::clock::now();
        for _ in 0..11 {
            l.acquire().await;
        }
        // 11 calls at 10/s: the last starts 1 s after the first.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        let unlimited = RateLimiter::new(0);
        let start = vault_client::clock::now();
        for _ in 0..100 {
            unlimited.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn limits_are_per_operation() {
        let l = RateLimits::new(2, &[("ListSecrets", 4)]);
        let start = vault_client::clock::now();
        for _ in 0..5 {
            l.acquire("ListSecrets").await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        let start = vault_client::clock::now();
        for _ in 0..3 {
            l.acquire("PutSecretValue").await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
