//! The `getsockopt` wrapper shared by the Unix shims (Linux, macOS, FreeBSD).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Copies the socket option `(level, name)` into `buf`; returns the length the kernel
/// wrote (it copies `min(buf.len(), its size)` bytes).
pub(crate) fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: `fd` is a live descriptor borrowed for this call; `buf` is valid for writes
    // of `len` bytes and the kernel writes at most `len` bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(len).unwrap_or(usize::MAX).min(buf.len()))
}
