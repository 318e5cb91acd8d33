//! Linux: `getsockopt(IPPROTO_TCP, TCP_INFO)` and friends.

use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

use super::unix::getsockopt_bytes;
use crate::error::Result;
use crate::tcpinfo::linux::{CcInfo, CongestionControl, KernelRelease, LinuxTcpInfoBytes, MemInfo};
use crate::tcpinfo::{Info, SnapshotOptions};

/// `SO_MEMINFO` (not exported by every libc target).
const SO_MEMINFO: libc::c_int = 55;
/// `TCP_CC_INFO`.
const TCP_CC_INFO: libc::c_int = 26;

/// The running kernel's release, read once (`uname`) and cached.
#[inline] // inlined with `snapshot`: after the first call, one load and a compare
pub(crate) fn kernel_release() -> Option<KernelRelease> {
    static RELEASE: OnceLock<Option<KernelRelease>> = OnceLock::new();
    *RELEASE.get_or_init(uname_release)
}

/// `uname -r`, parsed.
#[cold]
fn uname_release() -> Option<KernelRelease> {
    let mut uts = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `uts` points to a writable `utsname`; uname fills it and NUL-terminates
    // each field.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: zero-initialized and filled by a successful uname.
    let uts = unsafe { uts.assume_init() };
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    KernelRelease::parse(std::str::from_utf8(&bytes).ok()?)
}

// Inlined into `crate::snapshot`'s callers, so that the common case writes the `Info`
// straight into the caller's variable: a returned ~850-byte `Info` is otherwise copied
// once more on the way out, a tenth of the user-space cost.
#[inline]
pub(crate) fn snapshot(fd: BorrowedFd<'_>, options: SnapshotOptions) -> Result<Info> {
    let mut raw = LinuxTcpInfoBytes::zeroed(kernel_release());
    read_tcp_info(fd, &mut raw)?;
    if options == SnapshotOptions::NONE {
        Ok(raw.to_info())
    } else {
        Ok(with_extras(fd, &raw, options))
    }
}

/// `getsockopt(TCP_INFO)` into `raw`, in place.
fn read_tcp_info(fd: BorrowedFd<'_>, raw: &mut LinuxTcpInfoBytes) -> Result<()> {
    let len = getsockopt_bytes(fd, libc::IPPROTO_TCP, libc::TCP_INFO, raw.buf_mut())?;
    raw.set_len(len)
}

/// `raw.to_info()` plus the extra reads `options` asks for.
#[inline(never)]
fn with_extras(fd: BorrowedFd<'_>, raw: &LinuxTcpInfoBytes, options: SnapshotOptions) -> Info {
    let mut info = raw.to_info();
    if options.congestion_control || options.cc_info {
        let mut name = [0u8; 16];
        info.congestion_control =
            getsockopt_bytes(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, &mut name)
                .ok()
                .and_then(|n| CongestionControl::decode(name.get(..n)?));
    }
    if options.cc_info
        && let Some(cc) = info.congestion_control
    {
        let mut cc_buf = [0u8; 64];
        info.cc_info = getsockopt_bytes(fd, libc::IPPROTO_TCP, TCP_CC_INFO, &mut cc_buf)
            .ok()
            .and_then(|n| CcInfo::decode(cc.as_str(), cc_buf.get(..n)?));
    }
    if options.mem_info {
        let mut mem = [0u8; MemInfo::LEN];
        info.mem_info = getsockopt_bytes(fd, libc::SOL_SOCKET, SO_MEMINFO, &mut mem)
            .ok()
            .and_then(|n| MemInfo::decode(mem.get(..n)?));
    }
    info
}
