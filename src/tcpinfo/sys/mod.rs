//! The only `unsafe` in the crate: one thin syscall shim per OS, each reading byte
//! buffers from a borrowed socket handle and handing them to the pure decoders; and the
//! coarse clock read of the HTTP layer's cap on measured requests (`clock`).
//!
//! Every shim exposes the same `snapshot(SocketDescriptor, SnapshotOptions)`. Targets
//! without a backend (NetBSD, OpenBSD, illumos, WASI, …) use `unsupported`, which builds
//! and returns `Error::Unsupported`.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::snapshot;

#[cfg(target_vendor = "apple")]
mod macos;
#[cfg(target_vendor = "apple")]
pub(crate) use macos::snapshot;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
pub(crate) use freebsd::snapshot;

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
))]
mod unix;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::snapshot;

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    windows
)))]
mod unsupported;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    windows
)))]
pub(crate) use unsupported::snapshot;

pub(crate) mod clock;
pub(crate) mod revocable;
