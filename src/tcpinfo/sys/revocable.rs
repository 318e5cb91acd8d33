//! A socket handle that a background sampler can read without ever touching a closed or
//! reused descriptor.
//!
//! The problem: a sampler that remembers a raw fd number and calls `getsockopt` on it
//! later may race with the owner closing the socket. The number is then free, the next
//! `accept` gets it, and the sampler reads *another* connection's state and attributes it
//! to the old one (the seed library's bug).
//!
//! The fix: the raw handle lives behind a mutex together with a "still open" marker
//! (`Some`). Every read takes the lock and borrows the handle only while it is `Some`.
//! The owner calls [`RevocableSocket::revoke_with`] before the socket closes; that takes
//! the same lock, runs a last read and sets `None`. After it returns no reader can borrow
//! the handle again, and a reader that started earlier has finished (it held the lock).

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::tcpinfo::{AsSocketDescriptor, Info, SnapshotOptions, SocketDescriptor};

#[cfg(any(unix, target_os = "wasi"))]
type Raw = std::os::fd::RawFd;
#[cfg(windows)]
type Raw = std::os::windows::io::RawSocket;
/// No OS handle exists on this target; nothing is ever stored.
#[cfg(not(any(unix, windows, target_os = "wasi")))]
type Raw = std::convert::Infallible;

/// A borrowed socket handle that can be revoked before the socket closes.
///
/// # Contract
/// Whoever creates a `RevocableSocket` for a socket must call [`revoke_with`] (or
/// [`revoke`]) **before** that socket's handle is closed, and must not let the handle be
/// closed by anyone else in between. `TrackedStream` owns the socket and does this in its
/// `Drop` (which runs before its fields, hence before the fd closes). This type is
/// `pub(crate)` so that no code outside the crate can break the contract.
///
/// [`revoke_with`]: RevocableSocket::revoke_with
/// [`revoke`]: RevocableSocket::revoke
pub(crate) struct RevocableSocket {
    raw: Mutex<Option<Raw>>,
}

impl std::fmt::Debug for RevocableSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocableSocket")
            .field("revoked", &self.is_revoked())
            .finish()
    }
}

impl RevocableSocket {
    /// Remembers the handle of `socket`. See the type's contract: the caller must revoke
    /// before the socket closes.
    pub(crate) fn new<S: AsSocketDescriptor + ?Sized>(socket: &S) -> Self {
        RevocableSocket {
            raw: Mutex::new(raw_of(socket.as_socket_descriptor())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Raw>> {
        // Nothing panics while the lock is held except a caller's closure; the stored
        // value is still consistent then, so poisoning is ignored.
        self.raw.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the socket's TCP state; [`Error::Closed`] once revoked.
    pub(crate) fn snapshot(&self, options: SnapshotOptions) -> Result<Info> {
        self.snapshot_and(options, |_| ())
    }

    /// [`snapshot`](Self::snapshot), and on success runs `store` on the result before
    /// the lock is released, so that nothing read earlier can be stored after a later
    /// [`revoke_with`](Self::revoke_with).
    #[inline]
    pub(crate) fn snapshot_and(
        &self,
        options: SnapshotOptions,
        store: impl FnOnce(&Info),
    ) -> Result<Info> {
        // Straight-line code: the ~850-byte `Info` is built in the caller's slot instead
        // of being moved through an `Option<Result<_>>`. `store` must be short:
        // `revoke_with`, and so the owner's `Drop`, waits for the lock.
        let guard = self.lock();
        let Some(raw) = *guard else {
            return Err(Error::Closed);
        };
        let info = super::snapshot(borrow(&guard, raw), options)?;
        store(&info);
        Ok(info)
    }

    /// The close snapshot: reads the socket one last time and revokes the handle under
    /// one lock acquisition. `None` if already revoked.
    pub(crate) fn revoke_with_snapshot(&self, options: SnapshotOptions) -> Option<Result<Info>> {
        self.revoke_with(|socket| super::snapshot(socket, options))
    }

    /// Runs `f` one last time on the still-open socket, then revokes the handle, all
    /// under one lock acquisition. `None` (and `f` is not called) if already revoked.
    pub(crate) fn revoke_with<R>(&self, f: impl FnOnce(SocketDescriptor<'_>) -> R) -> Option<R> {
        let mut guard = self.lock();
        let raw = (*guard)?;
        let out = f(borrow(&guard, raw));
        *guard = None;
        Some(out)
    }

    /// Revokes the handle without a last read.
    #[allow(dead_code)]
    pub(crate) fn revoke(&self) {
        *self.lock() = None;
    }

    /// Whether [`revoke_with`](Self::revoke_with) or [`revoke`](Self::revoke) has run.
    pub(crate) fn is_revoked(&self) -> bool {
        self.lock().is_none()
    }
}

#[cfg(any(unix, target_os = "wasi"))]
fn raw_of(socket: SocketDescriptor<'_>) -> Option<Raw> {
    use std::os::fd::AsRawFd;
    Some(socket.as_raw_fd())
}

#[cfg(windows)]
fn raw_of(socket: SocketDescriptor<'_>) -> Option<Raw> {
    use std::os::windows::io::AsRawSocket;
    Some(socket.as_raw_socket())
}

#[cfg(not(any(unix, windows, target_os = "wasi")))]
fn raw_of(_socket: SocketDescriptor<'_>) -> Option<Raw> {
    None
}

/// Borrows `raw` for as long as the lock guard that found it `Some` is held.
#[cfg(any(unix, target_os = "wasi"))]
fn borrow<'a>(_guard: &'a MutexGuard<'_, Option<Raw>>, raw: Raw) -> SocketDescriptor<'a> {
    // SAFETY: `raw` was read from the `Some` behind the lock that `_guard` holds, and the
    // returned borrow cannot outlive `_guard`. Per the type's contract the owner revokes
    // (sets `None` under this same lock) before the descriptor is closed, so while the
    // lock is held with `Some` the descriptor is open and refers to the original socket:
    // it cannot have been closed, let alone reused by another connection.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) }
}

/// Borrows `raw` for as long as the lock guard that found it `Some` is held.
#[cfg(windows)]
fn borrow<'a>(_guard: &'a MutexGuard<'_, Option<Raw>>, raw: Raw) -> SocketDescriptor<'a> {
    // SAFETY: as on Unix: `raw` comes from the `Some` behind the held lock and the owner
    // revokes under this lock before closing the socket, so the handle is open and is the
    // original socket for the lifetime of the borrow.
    unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(raw) }
}

#[cfg(not(any(unix, windows, target_os = "wasi")))]
fn borrow<'a>(_guard: &'a MutexGuard<'_, Option<Raw>>, raw: Raw) -> SocketDescriptor<'a> {
    match raw {}
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn reads_until_revoked_then_reports_closed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let handle = RevocableSocket::new(&server);

        assert!(handle.snapshot(SnapshotOptions::NONE).is_ok());
        let last = handle.revoke_with(|fd| super::super::snapshot(fd, SnapshotOptions::NONE));
        assert!(matches!(last, Some(Ok(_))));
        assert!(handle.is_revoked());
        drop(server);
        // The fd number is free now; a new socket may get it. The handle must not read it.
        let _reuse = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(matches!(
            handle.snapshot(SnapshotOptions::NONE),
            Err(Error::Closed)
        ));
        assert!(handle.revoke_with(|_| ()).is_none());
        drop(client);
    }
}
