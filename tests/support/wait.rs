//! Waiting for something the server reports asynchronously.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

/// Polls `cond` every 5 ms for up to 20 s (a liveness bound, not a timing assertion).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}
