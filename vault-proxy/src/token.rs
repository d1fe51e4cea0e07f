//! The token manager: one Vault token for the whole process, logged in
//! through any [`VaultAuth`], renewed in the background, replaced when it is
//! refused, and checked against the wall clock on every use (Lambda freezes
//! the process between invocations; timers do not fire while frozen).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vault_client::{AuthInfo, VaultAuth, VaultClient, error_chain};

use crate::config::TokenConfig;
use crate::metrics::{Event, Metrics};

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The login failed (the message says why; no secret in it).
    #[error("cannot log in to vault ({method}): {message}")]
    Login {
        /// The login method.
        method: &'static str,
        /// The error, rendered with its causes.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
        /// The login's own error, kept for `source()` (its text is already
        /// in `message`).
        #[source]
        source: Option<Arc<vault_client::Error>>,
    },
    /// No login finished within the configured wait.
    #[error("no vault token within {0:?}: the login is still in progress or vault is slow")]
    Timeout(Duration),
    /// The manager was shut down.
    #[error("the token manager is shut down")]
    Shutdown,
}

impl TokenError {
    /// Whether waiting may help: `false` for a login refused for good (a
    /// missing role_id file, a refused secret_id, an unknown role) and after
    /// shutdown; `true` for an unreachable, slow or overloaded Vault.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Login { retryable, .. } => *retryable,
            Self::Timeout(_) => true,
            Self::Shutdown => false,
        }
    }
}

/// A token the manager holds. `Debug` shows the accessor only.
pub struct Token {
    secret: SecretString,
    header: HeaderValue,
    accessor: String,
    generation: u64,
    renewable: bool,
    /// TTL at login (the renewal increment); `None` = does not expire.
    base_ttl: Option<Duration>,
    /// When the current TTL started (login or last renewal).
    since_mono: Instant,
    expires_wall: Option<SystemTime>,
    expires_mono: Option<Instant>,
    /// Vault granted less than asked: the token is at its max TTL.
    capped: bool,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("accessor", &self.accessor)
            .field("generation", &self.generation)
            .field("renewable", &self.renewable)
            .field("base_ttl", &self.base_ttl)
            .field("capped", &self.capped)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The token. Do not log it.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// The token as an `X-Vault-Token` header value (marked sensitive).
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// The accessor (safe to log).
    pub fn accessor(&self) -> &str {
        &self.accessor
    }

    /// Increases with every login.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Time left by the wall clock; `None` for a token that does not expire.
    pub fn remaining(&self) -> Option<Duration> {
        self.expires_wall.map(|e| {
            e.duration_since(vault_client::clock::wall())
                .unwrap_or_default()
        })
    }

    /// How long before expiry the token counts as expired: the grace
    /// period, but never more than a quarter of its TTL.
    fn margin(&self, grace: Duration) -> Duration {
        self.base_ttl
            .map_or(Duration::ZERO, |ttl| grace.min(ttl / 4))
    }

    /// Usable now by both clocks: the wall clock catches a frozen or
    /// restored process, the monotonic one paused test time.
    fn is_fresh(&self, grace: Duration) -> bool {
        let margin = self.margin(grace);
        let wall_ok = self
            .expires_wall
            .is_none_or(|e| vault_client::clock::wall() + margin < e);
        let mono_ok = self
            .expires_mono
            .is_none_or(|e| vault_client::clock::now() + margin < e);
        wall_ok && mono_ok
    }
}

/// What the background task does next for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Renew at this time.
    Renew(Instant),
    /// Log in again at this time.
    Login(Instant),
    /// Nothing: the token does not expire.
    Idle,
}

/// The schedule for `token`: renewable tokens are renewed after 50-70 % of
/// their TTL (jitter spreads many instances); tokens that cannot be renewed
/// (or reached their max TTL) are replaced at expiry minus the margin.
pub(crate) fn plan(token: &Token, grace: Duration, jitter: f64) -> Plan {
    let (Some(ttl), Some(expires)) = (token.base_ttl, token.expires_mono) else {
        return Plan::Idle;
    };
    let relogin_at = expires - token.margin(grace);
    if !token.renewable || token.capped {
        return Plan::Login(relogin_at);
    }
    let fraction = 0.5 + 0.2 * jitter.clamp(0.0, 1.0);
    let left = expires.saturating_duration_since(token.since_mono);
    let renew_at = token.since_mono + left.min(ttl).mul_f64(fraction);
    Plan::Renew(renew_at.min(relogin_at))
}

struct Failure {
    at: Instant,
    consecutive: u32,
    error: TokenError,
}

struct Inner {
    client: VaultClient,
    auth: Arc<dyn VaultAuth>,
    config: TokenConfig,
    metrics: Arc<Metrics>,
    current: ArcSwapOption<Token>,
    generation: AtomicU64,
    login_lock: tokio::sync::Mutex<()>,
    failure: std::sync::Mutex<Option<Failure>>,
    changed: watch::Sender<u64>,
    /// Counts failed logins (wakes [`TokenManager::wait_ready`]).
    failed: watch::Sender<u64>,
    cancel: CancellationToken,
}

/// Holds the process's Vault token. Cheap to clone (shared state).
///
/// Readers ([`TokenManager::token`]) never take a lock when the token is
/// fresh: it is published through an `ArcSwap`. Logins are single-flight:
/// concurrent callers that find the token stale wait for one login.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("method", &self.inner.auth.method())
            .field("current", &self.inner.current.load_full())
            .finish()
    }
}

impl TokenManager {
    /// A manager that logs in through `auth` at `client`'s address. Nothing
    /// happens until [`TokenManager::start`] or the first [`TokenManager::token`].
    pub fn new(
        client: VaultClient,
        auth: Arc<dyn VaultAuth>,
        config: TokenConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: client.without_token(),
                auth,
                config,
                metrics,
                current: ArcSwapOption::empty(),
                generation: AtomicU64::new(0),
                login_lock: tokio::sync::Mutex::new(()),
                failure: std::sync::Mutex::new(None),
                changed: watch::channel(0).0,
                failed: watch::channel(0).0,
                cancel: CancellationToken::new(),
            }),
        }
    }

    /// The client (without a token) the manager logs in with.
    pub fn client(&self) -> &VaultClient {
        &self.inner.client
    }

    /// The metrics the manager counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Starts the background task: the first login at once, then renewals
    /// and new logins until [`TokenManager::shutdown`].
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.maintain().await })
    }

    /// A receiver notified on every login and renewal; its value is the
    /// generation of the latest login (0 before the first).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// The token as it is now, fresh or not, without waiting.
    pub fn current(&self) -> Option<Arc<Token>> {
        self.inner.current.load_full()
    }

    /// A usable token: the current one when fresh (no lock, no await), else
    /// after a login (shared with concurrent callers), waiting at most the
    /// configured `login_wait`.
    pub async fn token(&self) -> Result<Arc<Token>, TokenError> {
        if let Some(t) = self.inner.current.load_full()
            && t.is_fresh(self.inner.config.grace)
        {
            return Ok(t);
        }
        let seen = self.inner.current.load().as_ref().map(|t| t.generation);
        self.login_bounded(seen).await
    }

    /// Logs in again unless a login newer than `stale` (the generation of
    /// the token found bad) already happened.
    pub async fn relogin(&self, stale: u64) -> Result<Arc<Token>, TokenError> {
        self.login_bounded(Some(stale)).await
    }

    /// After Vault answered 403 to a request made with `token`: checks the
    /// token (`lookup-self`). When Vault refuses it too, logs in again and
    /// returns the new token; when the token is fine (the 403 came from a
    /// policy), returns `None` so the 403 is passed on.
    pub async fn recover_from_403(&self, token: &Token) -> Result<Option<Arc<Token>>, TokenError> {
        if let Some(cur) = self.current()
            && cur.generation > token.generation
        {
            return Ok(Some(cur));
        }
        let check = self
            .inner
            .client
            .with_token(token.secret.clone())
            .request(http::Method::GET, "auth/token/lookup-self")
            .no_retry()
            .send()
            .await;
        match check {
            Err(e) if e.is_permission_denied() => {
                tracing::info!(accessor = %token.accessor, "vault refused the token; logging in again");
                self.relogin(token.generation).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Revokes the current token (best effort) and logs in again.
    pub async fn revoke_and_relogin(&self) -> Result<Arc<Token>, TokenError> {
        let old = self.current();
        let fresh = self
            .relogin(old.as_ref().map_or(0, |t| t.generation))
            .await?;
        if let Some(old) = old.filter(|o| o.generation != fresh.generation) {
            self.revoke(&old).await;
        }
        Ok(fresh)
    }

    /// Stops the background task and, when configured, revokes the token
    /// (bounded by `deadline`).
    pub async fn shutdown(&self, deadline: Duration) {
        self.inner.cancel.cancel();
        if !self.inner.config.revoke_on_shutdown {
            return;
        }
        if let Some(token) = self.inner.current.swap(None)
            && tokio::time::timeout(deadline, self.revoke(&token))
                .await
                .is_err()
        {
            tracing::warn!(accessor = %token.accessor, "token revocation did not finish before the shutdown deadline");
        }
    }

    async fn revoke(&self, token: &Token) {
        let result = self
            .inner
            .client
            .with_token(token.secret.clone())
            .request(http::Method::POST, "auth/token/revoke-self")
            .no_retry()
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!(accessor = %token.accessor, "revoked the vault token"),
            Err(e) => {
                tracing::warn!(accessor = %token.accessor, error = %e, "cannot revoke the vault token")
            }
        }
    }

    async fn login_bounded(&self, stale: Option<u64>) -> Result<Arc<Token>, TokenError> {
        let wait = self.inner.config.login_wait;
        match tokio::time::timeout(wait, self.login_single_flight(stale, false)).await {
            Ok(r) => r,
            Err(_) => Err(TokenError::Timeout(wait)),
        }
    }

    /// One login at a time. `stale` is the generation the caller found bad
    /// (`None`: it found no token). `background` logins ignore the request
    /// throttle (they do their own backoff).
    async fn login_single_flight(
        &self,
        stale: Option<u64>,
        background: bool,
    ) -> Result<Arc<Token>, TokenError> {
        if self.inner.cancel.is_cancelled() {
            return Err(TokenError::Shutdown);
        }
        let _guard = self.inner.login_lock.lock().await;
        if let Some(cur) = self.inner.current.load_full()
            && Some(cur.generation) != stale
            && cur.is_fresh(self.inner.config.grace)
        {
            return Ok(cur);
        }
        if !background && let Some(error) = self.throttled() {
            return Err(error);
        }
        let started = vault_client::clock::now();
        match self.inner.auth.login(&self.inner.client).await {
            Ok(auth) => {
                self.inner.metrics.inc(Event::Login);
                if let Ok(mut f) = self.inner.failure.lock() {
                    *f = None;
                }
                let token = self.publish_login(auth, started)?;
                tracing::info!(
                    method = self.inner.auth.method(),
                    accessor = %token.accessor,
                    ttl_s = token.base_ttl.map(|d| d.as_secs()),
                    renewable = token.renewable,
                    "logged in to vault"
                );
                Ok(token)
            }
            Err(e) => {
                self.inner.metrics.inc(Event::LoginFailure);
                let error = TokenError::Login {
                    method: self.inner.auth.method(),
                    message: error_chain(&e),
                    retryable: e.is_retryable(),
                    source: Some(Arc::new(e)),
                };
                tracing::warn!(error = %error, "vault login failed");
                if let Ok(mut f) = self.inner.failure.lock() {
                    let consecutive = f.as_ref().map_or(0, |f| f.consecutive) + 1;
                    *f = Some(Failure {
                        at: vault_client::clock::now(),
                        consecutive,
                        error: error.clone(),
                    });
                }
                self.inner.failed.send_modify(|n| *n += 1);
                Err(error)
            }
        }
    }

    /// The last login error while within its (short) request throttle window.
    fn throttled(&self) -> Option<TokenError> {
        let f = self.inner.failure.lock().ok()?;
        let f = f.as_ref()?;
        let window = self.backoff(f.consecutive).min(Duration::from_secs(1));
        (f.at.elapsed() < window).then(|| f.error.clone())
    }

    /// Exponential backoff with equal jitter after `consecutive` failures.
    fn backoff(&self, consecutive: u32) -> Duration {
        let c = &self.inner.config;
        let exp = c
            .min_backoff
            .saturating_mul(2u32.saturating_pow(consecutive.saturating_sub(1).min(16)))
            .min(c.max_backoff);
        exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
    }

    fn publish_login(&self, auth: AuthInfo, started: Instant) -> Result<Arc<Token>, TokenError> {
        let mut header =
            HeaderValue::from_str(auth.client_token.expose_secret()).map_err(|_| {
                TokenError::Login {
                    method: self.inner.auth.method(),
                    message: "vault returned a token that is not a valid header value".into(),
                    retryable: false,
                    source: None,
                }
            })?;
        header.set_sensitive(true);
        let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let ttl = auth.ttl();
        // The TTL counts from when Vault issued it: measure from before the call.
        let wall_start = vault_client::clock::wall() - started.elapsed();
        let token = Arc::new(Token {
            secret: auth.client_token,
            header,
            accessor: auth.accessor,
            generation,
            renewable: auth.renewable,
            base_ttl: ttl,
            since_mono: started,
            expires_wall: ttl.map(|t| wall_start + t),
            expires_mono: ttl.map(|t| started + t),
            capped: false,
        });
        self.inner.current.store(Some(Arc::clone(&token)));
        self.inner.changed.send_modify(|g| *g = generation);
        Ok(token)
    }

    /// Renews `token`; `Ok(false)` when Vault refused (a new login is due).
    async fn renew(&self, token: &Arc<Token>) -> Result<bool, vault_client::Error> {
        let Some(ttl) = token.base_ttl else {
            return Ok(true);
        };
        let started = vault_client::clock::now();
        let result = self
            .inner
            .client
            .with_token(token.secret.clone())
            .renew_self(Some(ttl))
            .await;
        match result {
            Ok(auth) => {
                self.inner.metrics.inc(Event::Renewal);
                let granted = Duration::from_secs(auth.lease_duration);
                // Vault grants less than asked once the max TTL is near.
                let capped = granted + Duration::from_secs(1) < ttl || !auth.renewable;
                let wall_start = vault_client::clock::wall() - started.elapsed();
                let renewed = Arc::new(Token {
                    secret: token.secret.clone(),
                    header: token.header.clone(),
                    accessor: token.accessor.clone(),
                    generation: token.generation,
                    renewable: auth.renewable,
                    base_ttl: token.base_ttl,
                    since_mono: started,
                    expires_wall: Some(wall_start + granted),
                    expires_mono: Some(started + granted),
                    capped,
                });
                // Only replace the token that was renewed (a login may have won meanwhile).
                let prev = self.inner.current.compare_and_swap(token, Some(renewed));
                if prev.as_ref().is_some_and(|p| Arc::ptr_eq(p, token)) {
                    self.inner.changed.send_modify(|_| {});
                }
                tracing::debug!(accessor = %token.accessor, granted_s = granted.as_secs(), capped, "renewed the vault token");
                Ok(true)
            }
            Err(e) if matches!(e.status(), Some(400 | 403)) => {
                self.inner.metrics.inc(Event::RenewalFailure);
                tracing::info!(accessor = %token.accessor, error = %e, "vault refused to renew the token; logging in again");
                Ok(false)
            }
            Err(e) => {
                self.inner.metrics.inc(Event::RenewalFailure);
                Err(e)
            }
        }
    }

    /// The background task.
    async fn maintain(&self) {
        let mut changed = self.inner.changed.subscribe();
        let grace = self.inner.config.grace;
        let mut failures: u32 = 0;
        loop {
            changed.borrow_and_update();
            let current = self.inner.current.load_full();
            let plan = match &current {
                None => Plan::Login(vault_client::clock::now()),
                Some(t) => plan(t, grace, fastrand::f64()),
            };
            let at = match plan {
                Plan::Renew(at) | Plan::Login(at) => Some(at),
                Plan::Idle => None,
            };
            tokio::select! {
                () = self.inner.cancel.cancelled() => return,
                r = changed.changed() => {
                    if r.is_err() { return; }
                    continue;
                }
                () = sleep_until_opt(at) => {}
            }
            let outcome = match (plan, &current) {
                (Plan::Renew(_), Some(t)) => match self.renew(t).await {
                    Ok(true) => Ok(()),
                    Ok(false) => self
                        .login_single_flight(Some(t.generation), true)
                        .await
                        .map(drop)
                        .map_err(drop),
                    Err(e) if !t.is_fresh(grace) => {
                        tracing::warn!(error = %e, "cannot renew the vault token and it is about to expire; logging in again");
                        self.login_single_flight(Some(t.generation), true)
                            .await
                            .map(drop)
                            .map_err(drop)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the vault token; retrying");
                        Err(())
                    }
                },
                (_, t) => self
                    .login_single_flight(t.as_ref().map(|t| t.generation), true)
                    .await
                    .map(drop)
                    .map_err(drop),
            };
            match outcome {
                Ok(()) => failures = 0,
                Err(()) => {
                    failures = failures.saturating_add(1);
                    let delay = self.backoff(failures);
                    tokio::select! {
                        () = self.inner.cancel.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Waits until a token is published or `timeout` passes; returns at
    /// once with the error of a login that failed for good (see
    /// [`TokenError::is_retryable`]), so that a Lambda init reports it
    /// instead of timing out.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Arc<Token>, TokenError> {
        let mut changed = self.inner.changed.subscribe();
        let mut failed = self.inner.failed.subscribe();
        let wait = async {
            loop {
                if let Some(t) = self.current() {
                    return Ok(t);
                }
                if let Some(e) = self.last_error()
                    && !e.is_retryable()
                {
                    return Err(e);
                }
                tokio::select! {
                    r = changed.changed() => if r.is_err() {
                        return Err(TokenError::Shutdown);
                    },
                    r = failed.changed() => if r.is_err() {
                        return Err(TokenError::Shutdown);
                    },
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(self.last_error().unwrap_or(TokenError::Timeout(timeout))),
        }
    }

    /// The error of the last failed login, if the last login failed.
    pub fn last_error(&self) -> Option<TokenError> {
        self.inner
            .failure
            .lock()
            .ok()?
            .as_ref()
            .map(|f| f.error.clone())
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use vault_client::{ClientConfig, MockVaultAuth};

    fn client() -> VaultClient {
        VaultClient::new(ClientConfig::new("http://127.0.0.1:1").unwrap()).unwrap()
    }

    fn auth(ttl: u64, renewable: bool) -> AuthInfo {
        let mut a = AuthInfo::from_token(SecretString::from(format!(
            "hvs.token-{}",
            fastrand::u32(..)
        )));
        a.lease_duration = ttl;
        a.renewable = renewable;
        a.accessor = "acc".into();
        a
    }

    fn manager(mock: MockVaultAuth, grace: Duration) -> TokenManager {
        TokenManager::new(
            client(),
            Arc::new(mock),
            TokenConfig {
                grace,
                ..TokenConfig::default()
            },
            Arc::new(Metrics::new()),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn plan_renews_within_the_ttl_and_relogs_in_for_capped_tokens() {
        let mut mock = MockVaultAuth::new();
        mock.expect_method().return_const("mock");
        mock.expect_login().returning(|_| Ok(auth(100, true)));
        let m = manager(mock, Duration::from_secs(10));
        let t = m.token().await.unwrap();
        let start = t.since_mono;
        match plan(&t, Duration::from_secs(10), 0.0) {
            Plan::Renew(at) => assert_eq!(at - start, Duration::from_secs(50)),
            other => panic!("{other:?}"),
        }
        match plan(&t, Duration::from_secs(10), 1.0) {
            Plan::Renew(at) => assert_eq!(at - start, Duration::from_secs(70)),
            other => panic!("{other:?}"),
        }
        // Grace is capped at a quarter of the TTL.
        match plan(&t, Duration::from_secs(60), 1.0) {
            Plan::Renew(at) => assert_eq!(at - start, Duration::from_secs(70)),
            other => panic!("{other:?}"),
        }
        let capped = Token {
            secret: t.secret.clone(),
            header: t.header.clone(),
            accessor: String::new(),
            generation: 1,
            renewable: true,
            base_ttl: Some(Duration::from_secs(100)),
            since_mono: start,
            expires_wall: None,
            expires_mono: Some(start + Duration::from_secs(30)),
            capped: true,
        };
        assert_eq!(
            plan(&capped, Duration::from_secs(10), 0.5),
            Plan::Login(start + Duration::from_secs(20))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn non_renewable_tokens_are_replaced_before_they_expire() {
        let logins = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&logins);
        let mut mock = MockVaultAuth::new();
        mock.expect_method().return_const("mock");
        mock.expect_login().returning(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(auth(60, false))
        });
        let m = manager(mock, Duration::from_secs(10));
        let task = m.start();
        let first = m.wait_ready(Duration::from_secs(1)).await.unwrap();
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        // Due at 60 - min(10, 15) = 50 s.
        tokio::time::sleep(Duration::from_secs(49)).await;
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(logins.load(Ordering::SeqCst), 2);
        let second = m.token().await.unwrap();
        assert!(second.generation() > first.generation());
        assert_eq!(m.metrics().get(Event::Login), 2);
        m.shutdown(Duration::from_millis(10)).await;
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_login() {
        let logins = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&logins);
        let mut mock = MockVaultAuth::new();
        mock.expect_method().return_const("mock");
        mock.expect_login().returning(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(auth(3600, true))
        });
        let m = manager(mock, Duration::from_secs(10));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move { m.token().await.unwrap().generation() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 1);
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        // A stale generation forces one new login; an old one does not.
        assert_eq!(m.relogin(1).await.unwrap().generation(), 2);
        assert_eq!(m.relogin(1).await.unwrap().generation(), 2);
        assert_eq!(logins.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_logins_back_off_and_requests_see_the_error() {
        let logins = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&logins);
        let mut mock = MockVaultAuth::new();
        mock.expect_method().return_const("mock");
        mock.expect_login().returning(move |_| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n < 4 {
                // A 503 under the login error: worth retrying.
                let sealed = vault_client::Error::Api {
                    status: 503,
                    method: "POST".into(),
                    path: "/v1/auth/mock/login".into(),
                    errors: vec!["Vault is sealed".into()],
                };
                Err(vault_client::Error::auth(
                    "mock",
                    "vault is down",
                    Some(Box::new(sealed)),
                ))
            } else {
                Ok(auth(3600, true))
            }
        });
        let m = manager(mock, Duration::from_secs(10));
        let err = m.token().await.unwrap_err();
        assert!(err.to_string().contains("vault is down"), "{err}");
        // Within the throttle window a request gets the same error without a login.
        let again = m.token().await.unwrap_err();
        assert!(again.to_string().contains("vault is down"), "{again}");
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        let task = m.start();
        // Backoff: ~0.2, 0.4, 0.8 s (with jitter) then success.
        let t = m.wait_ready(Duration::from_secs(5)).await.unwrap();
        assert_eq!(logins.load(Ordering::SeqCst), 5);
        assert!(t.generation() >= 1);
        assert_eq!(m.metrics().get(Event::LoginFailure), 4);
        m.shutdown(Duration::from_millis(10)).await;
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_login_error_ends_the_wait_at_once() {
        let mut mock = MockVaultAuth::new();
        mock.expect_method().return_const("mock");
        mock.expect_login().returning(|_| {
            Err(vault_client::Error::auth(
                "mock",
                "cannot read the role_id file /missing",
                None,
            ))
        });
        let m = manager(mock, Duration::from_secs(10));
        let task = m.start();
        let started = vault_client::clock::now();
        let err = m.wait_ready(Duration::from_secs(10)).await.unwrap_err();
        // Paused time: the virtual clock only moves while the wait sleeps.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited {:?} for a permanent error",
            started.elapsed()
        );
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains("role_id file"), "{err}");
        // The login's error is kept as the source, not only as text, and
        // rendering the chain does not repeat it.
        let source = std::error::Error::source(&err).expect("the login error is the source");
        assert!(source.to_string().contains("role_id file"), "{source}");
        assert_eq!(vault_client::error_chain(&err), err.to_string());
        m.shutdown(Duration::from_millis(10)).await;
        task.await.unwrap();
    }

    #[test]
    fn debug_hides_the_token() {
        let token = Token {
            secret: SecretString::from("hvs.topsecret"),
            header: HeaderValue::from_static("hvs.topsecret"),
            accessor: "acc1".into(),
            generation: 1,
            renewable: true,
            base_ttl: None,
            since_mono: vault_client::clock::now(),
            expires_wall: None,
            expires_mono: None,
            capped: false,
        };
        let text = format!("{token:?}");
        assert!(
            !text.contains("topsecret") && text.contains("acc1"),
            "{text}"
        );
        let expired = Token {
            expires_wall: Some(vault_client::clock::wall() - Duration::from_secs(1)),
            base_ttl: Some(Duration::from_secs(60)),
            ..token
        };
        assert!(
            !expired.is_fresh(Duration::from_secs(1)),
            "the wall clock says it expired"
        );
    }
}
