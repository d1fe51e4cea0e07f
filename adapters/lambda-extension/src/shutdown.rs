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
            let budget = budget(e.deadline_ms, vault_client::clock::wall());
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

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_extension::{InvokeEvent, ShutdownEvent};

    const NOW_MS: u64 = 1_700_000_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW_MS)
    }

    #[test]
    fn the_budget_leaves_time_to_exit_and_stays_within_its_bounds() {
        let ms = Duration::from_millis;
        for (left_ms, budget_ms) in [
            (2000, 1500), // Lambda's usual 2 s: capped
            (1000, 700),  // the time left less 300 ms
            (400, 100),   // never less than 100 ms
            (0, 100),
        ] {
            assert_eq!(
                budget(NOW_MS + left_ms, now()),
                ms(budget_ms),
                "{left_ms} ms left"
            );
        }
        // A deadline already past (or a clock ahead of it) still gets the minimum.
        assert_eq!(budget(NOW_MS - 5000, now()), MIN_BUDGET);
        assert_eq!(budget(0, now()), MIN_BUDGET);
    }

    #[tokio::test]
    async fn shutdown_cancels_and_ends_the_run_other_events_do_not() {
        let shutdown = Shutdown::default();
        let invoke = LambdaEvent {
            next: NextEvent::Invoke(InvokeEvent {
                deadline_ms: NOW_MS,
                request_id: "r".into(),
                invoked_function_arn: "arn".into(),
                tracing: Default::default(),
            }),
        };
        shutdown.handle(invoke).await.unwrap();
        assert!(!shutdown.cancel.is_cancelled());
        let event = LambdaEvent {
            next: NextEvent::Shutdown(ShutdownEvent {
                shutdown_reason: "spindown".into(),
                deadline_ms: NOW_MS,
            }),
        };
        shutdown.clone().handle(event).await.unwrap();
        assert!(shutdown.cancel.is_cancelled());
        // Handled before anyone waits: the run loop still ends.
        tokio::time::timeout(Duration::from_secs(5), shutdown.done())
            .await
            .unwrap();
    }
}
