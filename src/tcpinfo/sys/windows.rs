//! Windows: `WSAIoctl(SIO_TCP_INFO)`, asking for `TCP_INFO_v2`, then v1, then v0.
//!
//! `windows-sys` has no `TCP_INFO_v2` and declares `TimestampsEnabled` as a Rust `bool`,
//! so the output is a byte buffer for the offset-based decoder.

use std::io;
use std::os::windows::io::{AsRawSocket, BorrowedSocket};
use std::sync::atomic::{AtomicU32, Ordering};

use windows_sys::Win32::Networking::WinSock::{
    AF_INET, AF_INET6, SIO_TCP_INFO, SO_TYPE, SOCK_STREAM, SOCKADDR_STORAGE, SOCKET, SOCKET_ERROR,
    SOL_SOCKET, WSAEINVAL, WSAEMSGSIZE, WSAEOPNOTSUPP, WSAGetLastError, WSAIoctl, getsockname,
    getsockopt,
};

use crate::error::{Error, Result};
use crate::tcpinfo::windows::{WINDOWS_MAX_VERSION, WINDOWS_V2_LEN, WindowsTcpInfo};
use crate::tcpinfo::{Info, SnapshotOptions};

/// The newest `TCP_INFO` version this system answered, so later calls skip the probing.
static VERSION: AtomicU32 = AtomicU32::new(WINDOWS_MAX_VERSION);

/// One synchronous `WSAIoctl(SIO_TCP_INFO)` for structure `version` into `buf`; returns
/// the number of bytes written.
fn tcp_info(socket: BorrowedSocket<'_>, version: u32, buf: &mut [u8]) -> io::Result<usize> {
    let mut returned: u32 = 0;
    let out_len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: `socket` is a live socket borrowed for this call. The input is the 4-byte
    // `version`, valid for reads; the output is `buf`, valid for writes of `out_len`
    // bytes, and `returned` is a writable u32. With no OVERLAPPED and no completion
    // routine the call completes synchronously, so nothing is used after it returns.
    let rc = unsafe {
        WSAIoctl(
            socket.as_raw_socket() as SOCKET,
            SIO_TCP_INFO,
            (&raw const version).cast(),
            4,
            buf.as_mut_ptr().cast(),
            out_len,
            &mut returned,
            std::ptr::null_mut(),
            None,
        )
    };
    if rc == SOCKET_ERROR {
        // SAFETY: reads the calling thread's last Winsock error; no preconditions.
        let code = unsafe { WSAGetLastError() };
        return Err(io::Error::from_raw_os_error(code));
    }
    Ok(usize::try_from(returned)
        .unwrap_or(usize::MAX)
        .min(buf.len()))
}

/// Whether an error for `version` may just mean "this Windows predates that version".
fn try_older(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == WSAEINVAL || c == WSAEMSGSIZE || c == WSAEOPNOTSUPP)
}

/// Whether `socket` is a TCP socket (a stream socket over IPv4 or IPv6); `None` when
/// Winsock will not say.
fn is_tcp(socket: BorrowedSocket<'_>) -> Option<bool> {
    let raw = socket.as_raw_socket() as SOCKET;
    let mut ty: i32 = 0;
    let mut ty_len = std::mem::size_of::<i32>() as i32;
    // SAFETY: `socket` is live for this call; `ty` is a writable i32 and `ty_len` holds its
    // size, which Winsock does not exceed when it writes the option.
    let rc = unsafe { getsockopt(raw, SOL_SOCKET, SO_TYPE, (&raw mut ty).cast(), &mut ty_len) };
    if rc == SOCKET_ERROR {
        return None;
    }
    if ty != SOCK_STREAM {
        return Some(false);
    }
    let mut addr = SOCKADDR_STORAGE::default();
    let mut addr_len = std::mem::size_of::<SOCKADDR_STORAGE>() as i32;
    // SAFETY: `socket` is live for this call; `addr` is a writable SOCKADDR_STORAGE (large
    // and aligned enough for any address) and `addr_len` holds its size.
    let rc = unsafe { getsockname(raw, (&raw mut addr).cast(), &mut addr_len) };
    if rc == SOCKET_ERROR {
        return None;
    }
    Some(addr.ss_family == AF_INET || addr.ss_family == AF_INET6)
}

pub(crate) fn snapshot(socket: BorrowedSocket<'_>, _options: SnapshotOptions) -> Result<Info> {
    let mut buf = [0u8; WINDOWS_V2_LEN];
    let mut version = VERSION.load(Ordering::Relaxed).min(WINDOWS_MAX_VERSION);
    loop {
        match tcp_info(socket, version, &mut buf) {
            Ok(len) => {
                VERSION.store(version, Ordering::Relaxed);
                let raw = WindowsTcpInfo::decode(buf.get(..len).unwrap_or_default(), version)?;
                return Ok(raw.to_info());
            }
            Err(e) if version > 0 && try_older(&e) => version -= 1,
            Err(e) if try_older(&e) => return Err(classify(socket, e)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Names a failure of even `TCP_INFO_v0` by looking at the socket: not TCP → `NotTcp`;
/// TCP, but the ioctl is unknown (`WSAEOPNOTSUPP`: Windows before 10 1703, or Wine,
/// which does not implement `SIO_TCP_INFO`) → `Unsupported`; otherwise the OS error.
fn classify(socket: BorrowedSocket<'_>, e: io::Error) -> Error {
    match is_tcp(socket) {
        Some(false) => Error::NotTcp,
        Some(true) if e.raw_os_error() == Some(WSAEOPNOTSUPP) => Error::unsupported(),
        Some(true) => Error::Io(e),
        None => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream, UdpSocket};

    use crate::error::Error;
    use crate::tcpinfo::{SysInfo, TcpState};

    /// `.ci/wine-test.sh` sets this: Wine runs the shim but does not implement
    /// `SIO_TCP_INFO`, so there the expected answer is `Unsupported`, not a record.
    fn under_wine() -> bool {
        std::env::var_os("CONNIVER_UNDER_WINE").is_some()
    }

    /// A real loopback connection: the probe finds a version and the decoder maps it.
    #[test]
    fn loopback_connection_is_established_with_an_mss() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        for stream in [&client, &server] {
            let info = match crate::snapshot(stream) {
                Err(Error::Unsupported { os: "windows" }) if under_wine() => {
                    eprintln!("Wine has no SIO_TCP_INFO: state/mss not checked");
                    return;
                }
                result => result.unwrap(),
            };
            assert_eq!(info.state, Some(TcpState::Established));
            assert!(info.tx_mss.is_some_and(|mss| mss > 0), "{info:?}");
            let SysInfo::Windows(raw) = info.sys() else {
                panic!("not a Windows record: {info:?}");
            };
            assert!(raw.version <= 2);
        }
    }

    #[test]
    fn a_udp_socket_is_not_tcp() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(matches!(crate::snapshot(&udp), Err(Error::NotTcp)));
    }
}
