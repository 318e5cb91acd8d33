//! What to do when `accept` fails: the server must never die of it.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// First delay after a resource-exhaustion error.
const FIRST_DELAY: Duration = Duration::from_millis(5);
/// Longest delay between retries.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// At most one ERROR line per this interval during an error storm.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// Consecutive "skip" errors retried at once before they are backed off too (an error
/// that repeats without end is not about one connection).
const MAX_SKIPS: u32 = 16;

/// How an `accept` error is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// About one incoming connection (it was reset or aborted before we took it): retry
    /// at once.
    Skip,
    /// The process or system ran out of something (descriptors, buffers, memory) that
    /// closing connections will free: log, wait, retry.
    Exhausted,
    /// The listener itself is unusable (closed, not a socket, invalid).
    Fatal,
}

impl AcceptError {
    pub(crate) fn classify(e: &io::Error) -> AcceptError {
        #[cfg(unix)]
        if let Some(code) = e.raw_os_error() {
            match code {
                libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EPROTO
                | libc::EPERM
                | libc::EINTR
                | libc::EAGAIN
                | libc::ETIMEDOUT
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENOPROTOOPT => return AcceptError::Skip,
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    return AcceptError::Exhausted;
                }
                libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT => {
                    return AcceptError::Fatal;
                }
                _ => {}
            }
        }
        #[cfg(windows)]
        if let Some(code) = e.raw_os_error() {
            use windows_sys::Win32::Networking::WinSock::{
                WSAEINVAL, WSAEMFILE, WSAENOBUFS, WSAENOTSOCK,
            };
            match code {
                WSAEMFILE | WSAENOBUFS => return AcceptError::Exhausted,
                WSAENOTSOCK | WSAEINVAL => return AcceptError::Fatal,
                _ => {}
            }
        }
        match e.kind() {
            io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut => AcceptError::Skip,
            io::ErrorKind::InvalidInput => AcceptError::Fatal,
            // Unknown: assume it passes. Waiting is safe; dying is not.
            _ => AcceptError::Exhausted,
        }
    }
}

/// The retry state of one `accept` call (it starts afresh after each success).
#[derive(Debug)]
pub(crate) struct Backoff {
    delay: Duration,
    skips: u32,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff {
            delay: FIRST_DELAY,
            skips: 0,
            last_log: None,
            suppressed: 0,
        }
    }

    /// Logs `e` (rate-limited) and waits as `kind` requires.
    pub(crate) async fn after(&mut self, e: &io::Error, kind: AcceptError) {
        if let Some(delay) = self.step(e, kind) {
            tokio::time::sleep(delay).await;
        }
    }

    /// Logs `e` (rate-limited) and returns how long to wait before the next try.
    fn step(&mut self, e: &io::Error, kind: AcceptError) -> Option<Duration> {
        if kind == AcceptError::Skip && self.skips < MAX_SKIPS {
            self.skips += 1;
            tracing::debug!(error = %e, "accept: connection failed before it was accepted; skipped");
            return None;
        }
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
        {
            tracing::error!(
                error = %e,
                retry_in_ms = i64::try_from(self.delay.as_millis()).unwrap_or(i64::MAX),
                suppressed = i64::try_from(self.suppressed).unwrap_or(i64::MAX),
                "accept failed; retrying (the server keeps running)"
            );
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Some(delay)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = |code| io::Error::from_raw_os_error(code);
        assert_eq!(
            AcceptError::classify(&e(libc::ECONNABORTED)),
            AcceptError::Skip
        );
        assert_eq!(AcceptError::classify(&e(libc::EPERM)), AcceptError::Skip);
        assert_eq!(
            AcceptError::classify(&e(libc::EMFILE)),
            AcceptError::Exhausted
        );
        assert_eq!(
            AcceptError::classify(&e(libc::ENFILE)),
            AcceptError::Exhausted
        );
        assert_eq!(
            AcceptError::classify(&e(libc::ENOBUFS)),
            AcceptError::Exhausted
        );
        assert_eq!(AcceptError::classify(&e(libc::EBADF)), AcceptError::Fatal);
        assert_eq!(
            AcceptError::classify(&io::Error::other("?")),
            AcceptError::Exhausted
        );
    }

    #[test]
    fn delays_double_up_to_a_second() {
        let mut b = Backoff::new();
        let err = io::Error::from_raw_os_error(libc::EMFILE);
        let waits: Vec<_> = (0..10)
            .map(|_| b.step(&err, AcceptError::Exhausted).unwrap().as_millis())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    }

    #[test]
    fn endless_skips_are_backed_off_too() {
        let mut b = Backoff::new();
        let err = io::Error::from_raw_os_error(libc::ECONNABORTED);
        for _ in 0..MAX_SKIPS {
            assert_eq!(b.step(&err, AcceptError::Skip), None);
        }
        assert_eq!(b.step(&err, AcceptError::Skip), Some(FIRST_DELAY));
    }
}
