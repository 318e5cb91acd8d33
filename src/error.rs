//! The crate's error type.

use std::fmt;
use std::io;

/// What can go wrong when reading a socket's TCP state.
///
/// Every failure of [`snapshot`](crate::snapshot) maps to one of these variants; none of
/// them is ever turned into a zero-filled [`Info`](crate::Info).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The descriptor is a socket, but not a TCP one (UDP, Unix domain, raw…).
    NotTcp,
    /// The descriptor is not a socket at all (a pipe, a file…).
    NotSocket,
    /// The descriptor is closed or invalid (`EBADF`).
    BadDescriptor,
    /// The kernel returned fewer bytes than the oldest layout it could have (for example
    /// fewer than 92 bytes of Linux `struct tcp_info`). The buffer cannot be trusted.
    Truncated {
        /// Bytes the kernel (or the caller of a decoder) provided.
        len: usize,
        /// Bytes the oldest supported layout needs.
        min: usize,
    },
    /// This platform offers no TCP connection information that conniver can read.
    Unsupported {
        /// The target OS (`std::env::consts::OS`).
        os: &'static str,
    },
    /// The connection is closed: its [`TrackedStream`](crate::TrackedStream) was dropped
    /// (after its close snapshot), so there is no socket left to read. Returned by
    /// [`Connection::snapshot`](crate::Connection::snapshot); never a descriptor number
    /// that might now belong to another connection.
    Closed,
    /// Any other operating-system error, kept as the source.
    Io(io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error for "this target OS has no backend".
    // Only the `unsupported` shim calls it, which targets with a backend do not build.
    #[allow(dead_code)]
    pub(crate) fn unsupported() -> Self {
        Error::Unsupported {
            os: std::env::consts::OS,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotTcp => f.write_str("socket is not a TCP socket"),
            Error::NotSocket => f.write_str("descriptor is not a socket"),
            Error::BadDescriptor => f.write_str("descriptor is closed or invalid"),
            Error::Truncated { len, min } => write!(
                f,
                "TCP info truncated: got {len} bytes, the oldest layout needs {min}"
            ),
            Error::Unsupported { os } => {
                write!(f, "reading TCP connection info is not supported on {os}")
            }
            Error::Closed => f.write_str("connection is closed"),
            Error::Io(e) => write!(f, "reading TCP connection info failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    /// Classifies the errno of a failed `getsockopt`/`WSAIoctl`.
    fn from(e: io::Error) -> Self {
        #[cfg(unix)]
        {
            match e.raw_os_error() {
                Some(libc::EBADF) => return Error::BadDescriptor,
                Some(libc::ENOTSOCK) => return Error::NotSocket,
                Some(libc::ENOPROTOOPT) | Some(libc::EOPNOTSUPP) => return Error::NotTcp,
                _ => {}
            }
        }
        #[cfg(windows)]
        {
            use windows_sys::Win32::Networking::WinSock::{WSAENOTSOCK, WSAEOPNOTSUPP};
            match e.raw_os_error() {
                Some(code) if code == WSAENOTSOCK => return Error::NotSocket,
                Some(code) if code == WSAEOPNOTSUPP => return Error::NotTcp,
                _ => {}
            }
        }
        Error::Io(e)
    }
}
