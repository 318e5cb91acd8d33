//! What [`snapshot`](crate::snapshot) accepts: anything that lends out its OS socket
//! handle (`AsFd` on Unix and WASI, `AsSocket` on Windows), never a raw number.

/// The borrowed OS handle of a socket on this platform.
#[cfg(any(unix, target_os = "wasi"))]
pub type SocketDescriptor<'a> = std::os::fd::BorrowedFd<'a>;
/// The borrowed OS handle of a socket on this platform.
#[cfg(windows)]
pub type SocketDescriptor<'a> = std::os::windows::io::BorrowedSocket<'a>;
/// The borrowed OS handle of a socket on this platform (none exists here).
#[cfg(not(any(unix, windows, target_os = "wasi")))]
pub type SocketDescriptor<'a> = std::marker::PhantomData<&'a ()>;

/// A socket whose handle conniver can borrow for one read.
///
/// Implemented for every `AsFd` type on Unix (`std`/`tokio`/`socket2` streams and
/// listeners, `BorrowedFd`, `OwnedFd`…) and every `AsSocket` type on Windows.
pub trait AsSocketDescriptor {
    /// Borrows the OS handle for the duration of a read.
    fn as_socket_descriptor(&self) -> SocketDescriptor<'_>;
}

#[cfg(any(unix, target_os = "wasi"))]
impl<T: std::os::fd::AsFd + ?Sized> AsSocketDescriptor for T {
    fn as_socket_descriptor(&self) -> SocketDescriptor<'_> {
        self.as_fd()
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket + ?Sized> AsSocketDescriptor for T {
    fn as_socket_descriptor(&self) -> SocketDescriptor<'_> {
        self.as_socket()
    }
}
