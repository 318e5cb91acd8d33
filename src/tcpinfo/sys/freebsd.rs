//! FreeBSD: `getsockopt(IPPROTO_TCP, TCP_INFO)`, plus `TCP_CONGESTION` on request.
//!
//! `libc::tcp_info` is the FreeBSD 12 layout, so the bytes go to the offset-based
//! decoder, together with `kern.osreldate`: newer fields sit in what older kernels return
//! as zero padding, and only the release tells them apart.

use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

use super::unix::getsockopt_bytes;
use crate::error::Result;
use crate::tcpinfo::freebsd::{FREEBSD_MAX_LEN, FreeBsdTcpInfo};
use crate::tcpinfo::linux::CongestionControl;
use crate::tcpinfo::{Info, SnapshotOptions};

/// `TCP_INFO` (`<netinet/tcp.h>`).
const TCP_INFO: libc::c_int = 32;
/// `TCP_CONGESTION` (`<netinet/tcp.h>`): the algorithm's name, `TCP_CA_NAME_MAX` = 16.
const TCP_CONGESTION: libc::c_int = 64;

/// The running kernel's `kern.osreldate` (`__FreeBSD_version`), read once and cached.
pub(crate) fn osreldate() -> Option<u32> {
    static OSRELDATE: OnceLock<Option<u32>> = OnceLock::new();
    *OSRELDATE.get_or_init(|| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>();
        // SAFETY: the name is a NUL-terminated C string; `value` is a writable c_int and
        // `len` holds its size, which the kernel will not exceed; no new value is set.
        let rc = unsafe {
            libc::sysctlbyname(
                c"kern.osreldate".as_ptr(),
                (&raw mut value).cast::<libc::c_void>(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        if rc != 0 || len != std::mem::size_of::<libc::c_int>() {
            return None;
        }
        u32::try_from(value).ok()
    })
}

pub(crate) fn snapshot(fd: BorrowedFd<'_>, options: SnapshotOptions) -> Result<Info> {
    let mut buf = [0u8; FREEBSD_MAX_LEN];
    let len = getsockopt_bytes(fd, libc::IPPROTO_TCP, TCP_INFO, &mut buf)?;
    let raw = FreeBsdTcpInfo::decode(buf.get(..len).unwrap_or_default(), osreldate())?;
    let mut info = raw.to_info();
    if options.congestion_control || options.cc_info {
        let mut name = [0u8; 16];
        info.congestion_control =
            getsockopt_bytes(fd, libc::IPPROTO_TCP, TCP_CONGESTION, &mut name)
                .ok()
                .and_then(|n| CongestionControl::decode(name.get(..n)?));
    }
    Ok(info)
}
