//! The one clock of the workspace: every library and binary reads time
//! here (`clippy.toml` forbids `Instant::now` and `SystemTime::now`
//! elsewhere), so tests can move it.
//!
//! - [`now`] is monotonic and is tokio's clock: a test started with
//!   `#[tokio::test(start_paused = true)]` moves it with
//!   `tokio::time::advance`, and TTLs, backoffs and refresh-ahead schedules
//!   follow without sleeping.
//! - [`wall`] is the wall clock, for what Vault and AWS express as dates
//!   (token and credential expiry, lease ends, deadlines). [`shifted`] runs
//!   a future with it moved ahead, as after a Lambda freeze or a clock jump,
//!   without touching the process's clock or other tests.

use std::future::Future;
use std::time::{Duration, SystemTime};

tokio::task_local! {
    static WALL_SHIFT: Duration;
}

/// The monotonic clock (tokio's: paused and advanced in tests).
#[allow(clippy::disallowed_methods)] // the one place it is read
pub fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// The wall clock, moved ahead inside [`shifted`].
#[allow(clippy::disallowed_methods)] // the one place it is read
pub fn wall() -> SystemTime {
    let real = SystemTime::now();
    WALL_SHIFT.try_with(|shift| real + *shift).unwrap_or(real)
}

/// Runs `future` with [`wall`] `shift` ahead (within this task; tasks it
/// spawns see the real clock). For tests of expiry: "ten minutes later".
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use vault_client::clock;
/// let later = clock::shifted(Duration::from_secs(600), async { clock::wall() }).await;
/// assert!(later >= clock::wall() + Duration::from_secs(599));
/// # }
/// ```
pub async fn shifted<F: Future>(shift: Duration, future: F) -> F::Output {
    let outer = WALL_SHIFT.try_with(|s| *s).unwrap_or_default();
    WALL_SHIFT.scope(outer + shift, future).await
}
