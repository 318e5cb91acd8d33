//! The only `unsafe` in the crate: one thin syscall shim per OS, each reading byte
//! buffers from a borrowed socket handle and handing them to the pure decoders.
//!
//! Every shim exposes the same `snapshot(SocketDescriptor, SnapshotOptions)`.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::snapshot;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use unsupported::snapshot;

pub(crate) mod revocable;
