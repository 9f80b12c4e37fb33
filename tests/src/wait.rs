//! Waiting for what other tasks and processes do in their own time.

use std::{future::Future, time::Duration};

/// How often [`poll_until`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Runs `probe` until `done` accepts its answer or `timeout` has passed;
/// returns the last answer either way, for the caller to assert on (so a
/// timeout fails with what was seen rather than a bare "timed out").
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answer = probe().await;
        if done(&answer) || tokio::time::Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
