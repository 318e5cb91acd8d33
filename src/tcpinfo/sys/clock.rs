//! A cheap monotonic clock for `TcpInfoLayer`'s cap on measured requests, read on every
//! request: `CLOCK_MONOTONIC_COARSE` on Linux (the time of the last timer tick, 1–4 ms
//! resolution, ~7 ns a read against ~35 ns for `Instant::now` on a VM), `Instant`
//! elsewhere. Only differences between two readings mean anything.

/// Nanoseconds on a monotonic clock with a resolution of a few milliseconds at worst.
#[inline]
pub(crate) fn coarse_now_ns() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call;
        // the clock id is a constant the kernel has had since 2.6.32.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        if rc == 0 {
            let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
            let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
            return secs.saturating_mul(1_000_000_000).saturating_add(nanos);
        }
    }
    fallback_now_ns()
}

/// `Instant`, counted from the first reading in the process.
fn fallback_now_ns() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static BASE: OnceLock<Instant> = OnceLock::new();
    let since = BASE.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(since).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn coarse_clock_is_monotonic_and_follows_real_time() {
        let start = Instant::now();
        let first = coarse_now_ns();
        let mut last = first;
        while start.elapsed() < Duration::from_millis(60) {
            let now = coarse_now_ns();
            assert!(now >= last, "went back: {last} -> {now}");
            last = now;
            std::thread::sleep(Duration::from_millis(5));
        }
        let real = start.elapsed().as_nanos() as u64;
        let seen = last - first;
        // Within the clock's resolution (at most ~10 ms on any kernel config).
        assert!(
            seen + 12_000_000 >= real && seen <= real + 12_000_000,
            "coarse clock moved {seen} ns in {real} ns"
        );
        assert!(fallback_now_ns() <= fallback_now_ns());
    }
}
