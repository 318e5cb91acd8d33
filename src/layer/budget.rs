//! The per-connection cap on measured requests
//! ([`TcpInfoLayer::max_measured_per_second`](crate::TcpInfoLayer::max_measured_per_second)):
//! a token bucket of `n` tokens refilled at `n` per second, kept as one atomic per
//! connection (the generic cell rate algorithm: the state is the time at which the
//! bucket would be full again).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// At most `n` measured requests per second on each connection, in bursts of up to `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// One token's worth of time.
    interval_ns: u64,
    /// How far ahead of now the "full again" time may run: `n − 1` tokens.
    tolerance_ns: u64,
}

impl Budget {
    pub(crate) fn per_second(n: NonZeroU32) -> Budget {
        let n = u64::from(n.get());
        let interval_ns = (NANOS_PER_SEC / n).max(1);
        Budget {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(n - 1),
        }
    }

    /// The cap, in measured requests per second.
    pub(crate) fn per_second_value(&self) -> u64 {
        NANOS_PER_SEC / self.interval_ns
    }

    /// Whether a request arriving at `now_ns` (on a monotonic clock) may be measured;
    /// if so, spends one token. `state` starts at 0 (a full bucket).
    #[inline]
    pub(crate) fn admit(&self, state: &AtomicU64, now_ns: u64) -> bool {
        // Uncontended in practice (one connection's requests start on its own task);
        // the loop only makes concurrent HTTP/2 starts exact.
        state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |full_at| {
                (full_at <= now_ns.saturating_add(self.tolerance_ns))
                    .then(|| full_at.max(now_ns).saturating_add(self.interval_ns))
            })
            .is_ok()
    }

    /// Whether a request arriving at `now_ns` (on a monotonic clock) would be
    /// measured, without spending anything.
    #[inline]
    pub(crate) fn would_admit(&self, state: &AtomicU64, now_ns: u64) -> bool {
        state.load(Ordering::Relaxed) <= now_ns.saturating_add(self.tolerance_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(n: u32) -> Budget {
        Budget::per_second(NonZeroU32::new(n).unwrap())
    }

    /// How many of `count` requests arriving every `every_ns` from `start_ns` are admitted.
    fn admitted(b: &Budget, state: &AtomicU64, start_ns: u64, every_ns: u64, count: u64) -> u64 {
        (0..count)
            .filter(|i| b.admit(state, start_ns + i * every_ns))
            .count() as u64
    }

    #[test]
    fn a_burst_of_n_then_n_per_second() {
        let b = budget(32);
        let state = AtomicU64::new(0);
        // 1,000 requests at the same instant: the bucket's 32.
        assert_eq!(admitted(&b, &state, 0, 0, 1_000), 32);
        // Then 10 s of one request every 100 µs (100,000 requests): 32 per second.
        let n = admitted(&b, &state, 0, 100_000, 100_000);
        assert!((319..=321).contains(&n), "{n}");
    }

    #[test]
    fn a_connection_below_the_cap_is_measured_in_full() {
        let b = budget(32);
        let state = AtomicU64::new(0);
        // 31 requests per second for 10 s.
        assert_eq!(admitted(&b, &state, 0, NANOS_PER_SEC / 31, 310), 310);
    }

    #[test]
    fn an_idle_spell_refills_the_bucket_but_no_more() {
        let b = budget(4);
        let state = AtomicU64::new(0);
        assert_eq!(admitted(&b, &state, 0, 0, 10), 4);
        // An hour later: a full bucket again, not an hour's worth of tokens.
        assert_eq!(admitted(&b, &state, 3_600 * NANOS_PER_SEC, 0, 10), 4);
    }

    #[test]
    fn would_admit_agrees_with_admit_and_spends_nothing() {
        let b = budget(3);
        let state = AtomicU64::new(0);
        let third = NANOS_PER_SEC / 3;
        for now in [0, 0, 0, 0, 1, third, third, NANOS_PER_SEC] {
            let peek = b.would_admit(&state, now);
            assert_eq!(b.would_admit(&state, now), peek, "peeking spends nothing");
            assert_eq!(b.admit(&state, now), peek, "at {now} ns");
        }
    }

    #[test]
    fn one_per_second_and_extremes() {
        let b = budget(1);
        let state = AtomicU64::new(0);
        assert!(b.admit(&state, 0));
        assert!(!b.admit(&state, NANOS_PER_SEC - 1));
        assert!(b.admit(&state, NANOS_PER_SEC));
        assert_eq!(b.per_second_value(), 1);
        // A cap above a billion per second admits everything it can time.
        let b = budget(u32::MAX);
        let state = AtomicU64::new(0);
        assert!(b.admit(&state, 0));
        assert!(b.admit(&state, 0));
        // Near the end of time: saturates, never wraps around to "full".
        let b = budget(2);
        let state = AtomicU64::new(u64::MAX);
        assert!(!b.admit(&state, 0));
    }
}
