//! `TrackedStream`: the accepted stream, whose `Drop` takes the close snapshot.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Connection;
use super::registry::Registry;

/// A connection accepted by a [`TcpInfoListener`](crate::TcpInfoListener).
///
/// Reads and writes go straight to the inner [`TcpStream`] (every `AsyncRead` /
/// `AsyncWrite` method is forwarded, vectored writes included), so it works anywhere a
/// `TcpStream` does: hyper, axum, tokio-rustls.
///
/// Dropping it takes the close snapshot **while the socket is still open**, reports it
/// (span fields, `tcp.close` event, [`ConnectionObserver::on_close`]), removes the
/// connection from the listener's registry, and only then closes the socket. There is no
/// `into_inner`/`get_mut`: the socket must not close anywhere else, or the sampler could
/// not be sure which socket a descriptor number means.
///
/// [`ConnectionObserver::on_close`]: crate::ConnectionObserver::on_close
pub struct TrackedStream {
    inner: TcpStream,
    conn: Connection,
    registry: Arc<Registry>,
}

impl TrackedStream {
    pub(crate) fn new(inner: TcpStream, conn: Connection, registry: Arc<Registry>) -> Self {
        TrackedStream {
            inner,
            conn,
            registry,
        }
    }

    /// The connection's handle (clone it to keep it past the stream).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The peer's address (recorded at accept; no syscall).
    pub fn peer_addr(&self) -> SocketAddr {
        self.conn.peer_addr()
    }

    /// Our address on this connection (recorded at accept; no syscall).
    pub fn local_addr(&self) -> SocketAddr {
        self.conn.local_addr()
    }

    /// The inner stream, for socket options (`set_nodelay`, `set_ttl`…).
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        // Runs before the fields are dropped, so `inner` (the socket) is still open here.
        self.conn.close();
        self.registry.remove(self.conn.id());
    }
}

impl fmt::Debug for TrackedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedStream")
            .field("inner", &self.inner)
            .field("connection", &self.conn)
            .finish()
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        if flushed.is_ready() {
            // Everything the server wrote is in the kernel now: responses that ended
            // before this flush get their end snapshot (see `TcpInfoLayer`).
            this.conn.flushed();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(any(unix, target_os = "wasi"))]
impl std::os::fd::AsFd for TrackedStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for TrackedStream {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.inner.as_socket()
    }
}
