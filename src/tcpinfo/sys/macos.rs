//! macOS / iOS (xnu): `getsockopt(IPPROTO_TCP, TCP_CONNECTION_INFO)`.
//!
//! `libc::tcp_connection_info` has the wrong layout (176 bytes instead of 112), so the
//! kernel's bytes go to the offset-based decoder instead.

use std::os::fd::BorrowedFd;

use super::unix::getsockopt_bytes;
use crate::error::Result;
use crate::tcpinfo::darwin::{DARWIN_MAX_LEN, DarwinTcpConnectionInfo};
use crate::tcpinfo::{Info, SnapshotOptions};

/// `TCP_CONNECTION_INFO` (`<netinet/tcp.h>`).
const TCP_CONNECTION_INFO: libc::c_int = 0x106;

pub(crate) fn snapshot(fd: BorrowedFd<'_>, _options: SnapshotOptions) -> Result<Info> {
    let mut buf = [0u8; DARWIN_MAX_LEN];
    let len = getsockopt_bytes(fd, libc::IPPROTO_TCP, TCP_CONNECTION_INFO, &mut buf)?;
    // Decide by the length the kernel reported: 104 bytes before macOS 10.12.4.
    let raw = DarwinTcpConnectionInfo::decode(buf.get(..len).unwrap_or_default())?;
    Ok(raw.to_info())
}
