//! The one task per listener that takes the periodic snapshots.
//!
//! Each tick interval is cut into up to [`MAX_SLOTS`] slots of at least [`MIN_SLOT`];
//! the connections open at the start of the tick are read in id order, an equal share per
//! slot, so a 10,000-connection server does ~100 reads every 10 ms instead of 10,000 at
//! once. The registry lock is held only to clone a slot's handles; each read then takes
//! that connection's own lock (see `Connection::tick`), which is what makes it race-free
//! against the stream closing.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::registry::Registry;

/// Most slots per tick.
const MAX_SLOTS: u32 = 100;
/// Shortest slot: below this, waking up costs more than it spreads.
const MIN_SLOT: Duration = Duration::from_millis(10);

/// Starts the sampler of `registry` unless it runs already or ticks are off. Does
/// nothing outside a tokio runtime.
pub(crate) fn ensure_started(registry: &Arc<Registry>, tick: Option<Duration>) {
    let Some(tick) = tick else { return };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if registry.claim_sampler() {
        runtime.spawn(run(Arc::downgrade(registry), tick));
    }
}

fn slots(tick: Duration) -> u32 {
    let n = tick.as_nanos() / MIN_SLOT.as_nanos();
    u32::try_from(n).unwrap_or(MAX_SLOTS).clamp(1, MAX_SLOTS)
}

async fn run(registry: Weak<Registry>, tick: Duration) {
    let slots = slots(tick);
    let slot_len = tick / slots;
    let mut batch = Vec::new();
    let mut tick_start = Instant::now() + tick;
    loop {
        sleep_until(tick_start).await;
        let Some(live) = registry.upgrade() else {
            return;
        };
        // This tick covers the connections accepted before it started.
        let below = live.id_horizon();
        let per_slot = live.len().div_ceil(slots as usize).max(1);
        drop(live);

        let mut cursor = 0;
        for slot in 1..=slots {
            let max = if slot == slots { usize::MAX } else { per_slot };
            {
                let Some(live) = registry.upgrade() else {
                    return;
                };
                cursor = live.batch(cursor, below, max, &mut batch);
            }
            for conn in batch.drain(..) {
                conn.tick();
            }
            if cursor >= below {
                break;
            }
            sleep_until(tick_start + slot_len * slot).await;
        }

        tick_start += tick;
        // Fell more than a tick behind (a stalled runtime): skip, don't burst.
        let now = Instant::now();
        if tick_start < now {
            tick_start = now + tick;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_long_ticks_only() {
        assert_eq!(slots(Duration::from_millis(1)), 1);
        assert_eq!(slots(Duration::from_millis(20)), 2);
        assert_eq!(slots(Duration::from_secs(1)), 100);
        assert_eq!(slots(Duration::from_secs(10)), 100);
        assert_eq!(slots(Duration::from_secs(u64::MAX)), 100);
    }
}
