//! Prometheus text metrics: lock-free counters and one latency histogram.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters of the proxy, the token manager and the secret files.
///
/// Cheap to update from any task (relaxed atomics); rendered in the
/// Prometheus text format by [`Metrics::render`].
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    responses: [AtomicU64; 5],
    rejected: AtomicU64,
    upstream_failures: AtomicU64,
    retries_after_403: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    cache_evictions_write: AtomicU64,
    cache_evictions_ttl: AtomicU64,
    cache_evictions_bound: AtomicU64,
    cache_evictions_size: AtomicU64,
    cache_evictions_token: AtomicU64,
    cache_refreshes_ahead: AtomicU64,
    cache_stale_serves: AtomicU64,
    logins: AtomicU64,
    login_failures: AtomicU64,
    renewals: AtomicU64,
    renewal_failures: AtomicU64,
    lease_renewals: AtomicU64,
    lease_renewal_failures: AtomicU64,
    file_writes: AtomicU64,
    file_failures: AtomicU64,
    upstream_buckets: [AtomicU64; BUCKETS.len()],
    upstream_count: AtomicU64,
    upstream_sum_micros: AtomicU64,
}

/// Something the metrics count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A request reached the proxy.
    Request,
    /// The SSRF guard or the path check refused a request.
    Rejected,
    /// Vault could not be reached for a proxied request.
    UpstreamFailure,
    /// A request was retried after a 403 and a new login.
    RetryAfter403,
    /// A cached response was served.
    CacheHit,
    /// A cacheable request went to Vault.
    CacheMiss,
    /// A cache entry was dropped because a write through the proxy may have
    /// changed it.
    CacheEvictionWrite,
    /// A cache entry reached `VAULT_DEFAULT_CACHE_TTL` or its lease.
    CacheEvictionTtl,
    /// A cache entry reached `VAULT_CACHE_MAX_STALENESS`.
    CacheEvictionBound,
    /// A cache entry made room for others (entry or byte bound).
    CacheEvictionSize,
    /// A cached lease was dropped: it was read with a token the proxy has
    /// replaced since (Vault revokes the lease with that token).
    CacheEvictionToken,
    /// A hot cache entry was re-read in the background before its end.
    CacheRefreshAhead,
    /// A hit was served while its entry was due for a re-read.
    CacheStaleServe,
    /// A login succeeded.
    Login,
    /// A login failed.
    LoginFailure,
    /// The token was renewed.
    Renewal,
    /// A token renewal failed.
    RenewalFailure,
    /// A secret's lease was renewed.
    LeaseRenewal,
    /// A secret's lease renewal failed.
    LeaseRenewalFailure,
    /// A secret file was written.
    FileWrite,
    /// A secret file could not be read from Vault or written.
    FileFailure,
}

impl Metrics {
    /// Fresh, zeroed metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one `event`.
    pub fn inc(&self, event: Event) {
        self.counter(event).fetch_add(1, Ordering::Relaxed);
    }

    fn counter(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::Request => &self.requests,
            Event::Rejected => &self.rejected,
            Event::UpstreamFailure => &self.upstream_failures,
            Event::RetryAfter403 => &self.retries_after_403,
            Event::CacheHit => &self.cache_hits,
            Event::CacheMiss => &self.cache_misses,
            Event::CacheEvictionWrite => &self.cache_evictions_write,
            Event::CacheEvictionTtl => &self.cache_evictions_ttl,
            Event::CacheEvictionBound => &self.cache_evictions_bound,
            Event::CacheEvictionSize => &self.cache_evictions_size,
            Event::CacheEvictionToken => &self.cache_evictions_token,
            Event::CacheRefreshAhead => &self.cache_refreshes_ahead,
            Event::CacheStaleServe => &self.cache_stale_serves,
            Event::Login => &self.logins,
            Event::LoginFailure => &self.login_failures,
            Event::Renewal => &self.renewals,
            Event::RenewalFailure => &self.renewal_failures,
            Event::LeaseRenewal => &self.lease_renewals,
            Event::LeaseRenewalFailure => &self.lease_renewal_failures,
            Event::FileWrite => &self.file_writes,
            Event::FileFailure => &self.file_failures,
        }
    }

    /// How many times `event` was counted.
    pub fn get(&self, event: Event) -> u64 {
        self.counter(event).load(Ordering::Relaxed)
    }

    /// Counts a response the proxy sent, by status class.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time Vault took to answer one forwarded request.
    pub fn upstream_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.upstream_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.upstream_count.fetch_add(1, Ordering::Relaxed);
        self.upstream_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Number of upstream requests recorded by [`Metrics::upstream_latency`].
    pub fn upstream_requests(&self) -> u64 {
        self.upstream_count.load(Ordering::Relaxed)
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, Event); 14] = [
            (
                "vault_proxy_requests_total",
                "Requests received",
                Event::Request,
            ),
            (
                "vault_proxy_rejected_total",
                "Requests refused by the SSRF guard or the path check",
                Event::Rejected,
            ),
            (
                "vault_proxy_upstream_failures_total",
                "Forwarded requests that got no answer from vault",
                Event::UpstreamFailure,
            ),
            (
                "vault_proxy_retries_after_403_total",
                "Requests retried after a 403 and a new login",
                Event::RetryAfter403,
            ),
            (
                "vault_proxy_cache_hits_total",
                "Responses served from the cache",
                Event::CacheHit,
            ),
            (
                "vault_proxy_cache_misses_total",
                "Cacheable requests sent to vault",
                Event::CacheMiss,
            ),
            (
                "vault_proxy_logins_total",
                "Successful logins",
                Event::Login,
            ),
            (
                "vault_proxy_login_failures_total",
                "Failed logins",
                Event::LoginFailure,
            ),
            (
                "vault_proxy_token_renewals_total",
                "Token renewals",
                Event::Renewal,
            ),
            (
                "vault_proxy_token_renewal_failures_total",
                "Failed token renewals",
                Event::RenewalFailure,
            ),
            (
                "vault_proxy_lease_renewals_total",
                "Secret lease renewals",
                Event::LeaseRenewal,
            ),
            (
                "vault_proxy_lease_renewal_failures_total",
                "Failed secret lease renewals",
                Event::LeaseRenewalFailure,
            ),
            (
                "vault_proxy_secret_file_writes_total",
                "Secret files written",
                Event::FileWrite,
            ),
            (
                "vault_proxy_secret_file_failures_total",
                "Secret files that could not be refreshed",
                Event::FileFailure,
            ),
        ];
        for (name, help, event) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}.\n# TYPE {name} counter\n{name} {}",
                self.get(event)
            );
        }
        let cache: [(&str, &str, Event); 2] = [
            (
                "vault_proxy_cache_refreshes_ahead_total",
                "Cache entries re-read in the background before their end",
                Event::CacheRefreshAhead,
            ),
            (
                "vault_proxy_cache_stale_serves_total",
                "Cache hits served while their entry was being re-read",
                Event::CacheStaleServe,
            ),
        ];
        for (name, help, event) in cache {
            let _ = writeln!(
                out,
                "# HELP {name} {help}.\n# TYPE {name} counter\n{name} {}",
                self.get(event)
            );
        }
        let name = "vault_proxy_cache_evictions_total";
        let _ = writeln!(
            out,
            "# HELP {name} Cache entries dropped, by cause: write (a write through the proxy may have changed it), ttl (VAULT_DEFAULT_CACHE_TTL or the lease), bound (VAULT_CACHE_MAX_STALENESS), size (room for others), token (a lease read with a token since replaced).\n# TYPE {name} counter"
        );
        for (cause, event) in [
            ("write", Event::CacheEvictionWrite),
            ("ttl", Event::CacheEvictionTtl),
            ("bound", Event::CacheEvictionBound),
            ("size", Event::CacheEvictionSize),
            ("token", Event::CacheEvictionToken),
        ] {
            let _ = writeln!(out, "{name}{{cause=\"{cause}\"}} {}", self.get(event));
        }
        let _ = writeln!(
            out,
            "# HELP vault_proxy_responses_total Responses sent, by status class.\n# TYPE vault_proxy_responses_total counter"
        );
        for (i, counter) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "vault_proxy_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                counter.load(Ordering::Relaxed)
            );
        }
        let name = "vault_proxy_upstream_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time vault took to answer a forwarded request.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.upstream_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.upstream_count.load(Ordering::Relaxed);
        let sum = self.upstream_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::new();
        m.inc(Event::Request);
        m.inc(Event::Request);
        m.inc(Event::CacheHit);
        m.inc(Event::CacheEvictionWrite);
        m.inc(Event::CacheRefreshAhead);
        m.response(200);
        m.response(503);
        m.upstream_latency(Duration::from_micros(700));
        m.upstream_latency(Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains("vault_proxy_requests_total 2\n"), "{text}");
        assert!(text.contains("vault_proxy_cache_hits_total 1\n"), "{text}");
        assert!(
            text.contains("vault_proxy_cache_evictions_total{cause=\"write\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("vault_proxy_cache_evictions_total{cause=\"bound\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("vault_proxy_cache_refreshes_ahead_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("vault_proxy_cache_stale_serves_total 0\n"),
            "{text}"
        );
        assert!(
            text.contains("vault_proxy_responses_total{class=\"5xx\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("_bucket{le=\"0.0005\"} 0\n"), "{text}");
        assert!(text.contains("_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("_bucket{le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(
            text.contains("vault_proxy_upstream_duration_seconds_count 2\n"),
            "{text}"
        );
    }
}
