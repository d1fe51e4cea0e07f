//! `SHUTDOWN`: the proxy and the secret files' maintenance stop, the token is
//! revoked within a budget that fits the deadline Lambda gives, and the
//! extension exits.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_extension::{LambdaEvent, NextEvent};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vault_proxy::TokenManager;

/// Kept free before the SHUTDOWN deadline for the process to exit.
const EXIT_MARGIN: Duration = Duration::from_millis(300);
/// The revocation always gets at least this, even past the deadline.
const MIN_BUDGET: Duration = Duration::from_millis(100);
/// And never more than this.
const MAX_BUDGET: Duration = Duration::from_millis(1500);

/// What `SHUTDOWN` acts on, shared by the events processor and the run loop.
#[derive(Clone, Default)]
pub(crate) struct Shutdown {
    /// Stops the proxy's listener and the secret files' maintenance.
    pub(crate) cancel: CancellationToken,
    managed: Arc<OnceLock<TokenManager>>,
    done: Arc<Notify>,
}

impl Shutdown {
    /// The token manager to shut down (revoking its token) on `SHUTDOWN`.
    pub(crate) fn manage(&self, tokens: TokenManager) {
        let _ = self.managed.set(tokens);
    }

    /// The events processor: on `SHUTDOWN`, cancels, revokes the token within
    /// [`budget`] and then lets [`Shutdown::done`] return; other events do
    /// nothing.
    pub(crate) async fn handle(&self, event: LambdaEvent) -> Result<(), lambda_extension::Error> {
        if let NextEvent::Shutdown(e) = event.next {
            let budget = budget(e.deadline_ms, SystemTime::now());
            tracing::info!(reason = %e.shutdown_reason, budget_ms = budget.as_millis() as u64, "shutting down");
            self.cancel.cancel();
            if let Some(tokens) = self.managed.get() {
                tokens.shutdown(budget).await;
            }
            self.done.notify_one();
        }
        Ok(())
    }

    /// Returns once `SHUTDOWN` has been handled.
    pub(crate) async fn done(&self) {
        self.done.notified().await;
    }
}

/// The time given to revoking the token at `now` when Lambda's deadline is
/// `deadline_ms` (milliseconds since the epoch): the time left less
/// [`EXIT_MARGIN`], within [`MIN_BUDGET`]..=[`MAX_BUDGET`].
fn budget(deadline_ms: u64, now: SystemTime) -> Duration {
    time_left(deadline_ms, now)
        .saturating_sub(EXIT_MARGIN)
        .clamp(MIN_BUDGET, MAX_BUDGET)
}

fn time_left(deadline_ms: u64, now: SystemTime) -> Duration {
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Duration::from_millis(deadline_ms.saturating_sub(now))
}
