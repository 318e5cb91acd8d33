//! Reading and decoding a socket's TCP state.
//!
//! - [`snapshot`] / [`snapshot_with`]: one syscall into a stack buffer → [`Info`].
//! - [`linux`]: pure decoders for Linux `tcp_info`, `TCP_CONGESTION`, `TCP_CC_INFO`,
//!   `SO_MEMINFO`, compiled on every target.
//! - [`darwin`], [`windows`], [`freebsd`]: pure decoders for macOS
//!   `tcp_connection_info`, Windows `TCP_INFO_v0/v1/v2` and FreeBSD `tcp_info`, also
//!   compiled (and tested) on every target.

mod bytes;
pub mod darwin;
#[cfg(test)]
mod fixture;
pub mod freebsd;
mod info;
pub mod linux;
mod socket;
#[allow(unsafe_code)]
mod sys;
pub mod windows;

pub use info::{Info, OptionName, SysInfo, TcpOptions, TcpState};
pub use socket::{AsSocketDescriptor, SocketDescriptor};
pub(crate) use sys::clock::coarse_now_ns;
pub(crate) use sys::revocable::RevocableSocket;

use crate::error::Result;

/// Extra, separately paid-for reads that [`snapshot_with`] can add to an [`Info`].
///
/// Each costs one more syscall, so the default (`SnapshotOptions::default()`, what
/// [`snapshot`] uses) asks for none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotOptions {
    /// Read the congestion-control name (`TCP_CONGESTION`, Linux). Defaults to `false`.
    pub congestion_control: bool,
    /// Read the algorithm's state (`TCP_CC_INFO`, Linux; implies the name). Defaults to
    /// `false`.
    pub cc_info: bool,
    /// Read socket memory accounting (`SO_MEMINFO`, Linux). Defaults to `false`.
    pub mem_info: bool,
}

impl SnapshotOptions {
    /// Every extra read this platform supports.
    pub const ALL: SnapshotOptions = SnapshotOptions {
        congestion_control: true,
        cc_info: true,
        mem_info: true,
    };

    /// No extra reads (the default).
    pub const NONE: SnapshotOptions = SnapshotOptions {
        congestion_control: false,
        cc_info: false,
        mem_info: false,
    };

    /// Also read the congestion-control name.
    #[must_use]
    pub fn congestion_control(mut self, on: bool) -> Self {
        self.congestion_control = on;
        self
    }

    /// Also read the congestion-control algorithm's state.
    #[must_use]
    pub fn cc_info(mut self, on: bool) -> Self {
        self.cc_info = on;
        self
    }

    /// Also read socket memory accounting.
    #[must_use]
    pub fn mem_info(mut self, on: bool) -> Self {
        self.mem_info = on;
        self
    }
}

/// Reads the kernel's TCP state of `socket` (a connected stream or a listener).
///
/// One `getsockopt` (`WSAIoctl` on Windows) into a stack buffer; no heap allocation.
/// Works with `std`, `tokio` and `socket2` TCP sockets, or anything implementing `AsFd`
/// (`AsSocket` on Windows).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let stream = std::net::TcpStream::connect(listener.local_addr()?)?;
/// # #[cfg(target_os = "linux")] {
/// let info = conniver::snapshot(&stream)?;
/// assert_eq!(info.state, Some(conniver::TcpState::Established));
/// println!("rtt {:?}, cwnd {:?} segments", info.rtt, info.cwnd_segs);
/// # }
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::NotTcp`](crate::Error::NotTcp) for UDP or Unix sockets,
/// [`Error::NotSocket`](crate::Error::NotSocket) for pipes and files,
/// [`Error::BadDescriptor`](crate::Error::BadDescriptor) for a closed descriptor,
/// [`Error::Unsupported`](crate::Error::Unsupported) on platforms without a backend,
/// [`Error::Truncated`](crate::Error::Truncated) if the kernel returned too little.
pub fn snapshot<S: AsSocketDescriptor + ?Sized>(socket: &S) -> Result<Info> {
    sys::snapshot(socket.as_socket_descriptor(), SnapshotOptions::NONE)
}

/// [`snapshot`] plus the extra reads selected in `options`.
///
/// An extra read that the platform or socket cannot answer leaves its field `None`; only
/// a failure of the main read is an error.
pub fn snapshot_with<S: AsSocketDescriptor + ?Sized>(
    socket: &S,
    options: SnapshotOptions,
) -> Result<Info> {
    sys::snapshot(socket.as_socket_descriptor(), options)
}
