//! `TcpInfoListener`: a `tokio::net::TcpListener` whose every connection is tracked.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use super::backoff::{AcceptError, Backoff};
use super::builder::{Config, TcpInfoListenerBuilder};
use super::registry::{Connections, Registry};
use super::{Connection, TrackedStream, sampler};
use crate::tcpinfo::RevocableSocket;

/// A TCP listener that follows every accepted connection from accept to close.
///
/// On accept it takes a snapshot, creates the connection's `tcp.connection` span and
/// its [`Connection`] handle, and hands out a [`TrackedStream`]; one sampler task per
/// listener takes periodic snapshots of all open connections; the stream's `Drop` takes
/// the close snapshot. Observers ([`ConnectionObserver`](crate::ConnectionObserver)) see
/// all three.
///
/// Use it with `axum::serve` (it implements `axum::serve::Listener`) or with a
/// hand-written hyper-util loop through [`accept`](Self::accept).
///
/// ```no_run
/// # #[cfg(feature = "axum")]
/// # async fn run() -> std::io::Result<()> {
/// use axum::{Router, routing::get};
/// let listener = conniver::TcpInfoListener::bind("0.0.0.0:3000").await?;
/// let app = Router::new().route("/", get(|| async { "hi" }));
/// axum::serve(listener, app.into_make_service_with_connect_info::<conniver::Connection>())
///     .await?;
/// # Ok(()) }
/// ```
///
/// In handlers, take `axum::extract::ConnectInfo<Connection>` and call
/// [`Connection::peer_addr`]: axum implements `Connected` for `SocketAddr` only with its
/// own listener types, and the orphan rule keeps conniver from adding
/// `ConnectInfo<SocketAddr>` for this one.
///
/// # Accept errors
/// Errors about one incoming connection (`ECONNABORTED`, `ECONNRESET`, `EPROTO`,
/// `EPERM`, …) are skipped at once. Resource exhaustion (`EMFILE`, `ENFILE`, `ENOBUFS`,
/// `ENOMEM`) is logged at ERROR, at most once a second, and retried after 5 ms, 10 ms,
/// … up to 1 s between tries, until connections close and free descriptors. The server
/// never stops because of them.
pub struct TcpInfoListener {
    inner: TcpListener,
    /// The bound address when it names one IP: then every accepted connection's local
    /// address, known without a `getsockname` per accept.
    bound: Option<SocketAddr>,
    registry: Arc<Registry>,
    config: Arc<Config>,
}

impl TcpInfoListener {
    /// Binds to `addr` with the default configuration (10 s ticks, spans on).
    ///
    /// # Errors
    /// Those of [`TcpListener::bind`].
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        TcpInfoListenerBuilder::new().bind(addr).await
    }

    /// A builder to configure ticks, observers and spans.
    pub fn builder() -> TcpInfoListenerBuilder {
        TcpInfoListenerBuilder::new()
    }

    /// Wraps an existing tokio listener with the default configuration.
    pub fn from_tokio(listener: TcpListener) -> Self {
        TcpInfoListenerBuilder::new().build(listener)
    }

    pub(crate) fn with_config(listener: TcpListener, config: Config) -> Self {
        let bound = listener
            .local_addr()
            .ok()
            .filter(|a| !a.ip().is_unspecified());
        TcpInfoListener {
            inner: listener,
            bound,
            registry: Registry::new(),
            config: Arc::new(config),
        }
    }

    /// Accepts the next connection.
    ///
    /// Errors about one connection are skipped and resource exhaustion (`EMFILE`…) is
    /// retried with back-off, as described on the type; such errors are never returned.
    ///
    /// # Errors
    /// Only when the listening socket itself is broken (`EBADF`, `EINVAL`, `ENOTSOCK`).
    pub async fn accept(&self) -> io::Result<(TrackedStream, SocketAddr)> {
        let mut backoff = Backoff::new();
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => return Ok((self.track(stream, peer), peer)),
                Err(e) => match AcceptError::classify(&e) {
                    AcceptError::Fatal => return Err(e),
                    kind => backoff.after(&e, kind).await,
                },
            }
        }
    }

    /// Like [`accept`](Self::accept), but even a broken listener is only logged and
    /// retried (axum's `Listener::accept` cannot fail).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    async fn accept_forever(&self) -> (TrackedStream, SocketAddr) {
        let mut backoff = Backoff::new();
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => return (self.track(stream, peer), peer),
                Err(e) => {
                    let kind = match AcceptError::classify(&e) {
                        AcceptError::Fatal => AcceptError::Exhausted,
                        kind => kind,
                    };
                    backoff.after(&e, kind).await;
                }
            }
        }
    }

    fn track(&self, stream: TcpStream, peer: SocketAddr) -> TrackedStream {
        let local = match self.bound {
            Some(bound) => bound,
            // Bound to 0.0.0.0 or [::]: the connection's own address says which IP.
            None => stream
                .local_addr()
                .or_else(|_| self.inner.local_addr())
                .unwrap_or(peer),
        };
        let id = self.registry.allocate_id();
        // Contract of `RevocableSocket`: `TrackedStream::drop` revokes before `stream`
        // closes, and `TrackedStream` never lets the stream go out otherwise.
        let socket = RevocableSocket::new(&stream);
        let (conn, accept) =
            Connection::accepted(id, peer, local, socket, Arc::clone(&self.config));
        // Report the accept before the sampler can see the connection: accept < ticks.
        conn.report_accept(accept.as_ref());
        self.registry.insert(conn.clone());
        sampler::ensure_started(&self.registry, self.config.tick);
        TrackedStream::new(stream, conn, Arc::clone(&self.registry))
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    /// Those of [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// A view of the open connections (count, list, wait until all closed).
    pub fn connections(&self) -> Connections {
        Connections::new(&self.registry)
    }

    /// The wrapped tokio listener.
    pub fn get_ref(&self) -> &TcpListener {
        &self.inner
    }
}

impl From<TcpListener> for TcpInfoListener {
    fn from(listener: TcpListener) -> Self {
        TcpInfoListener::from_tokio(listener)
    }
}

impl fmt::Debug for TcpInfoListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpInfoListener")
            .field("local_addr", &self.inner.local_addr().ok())
            .field("open", &self.registry.len())
            .field("config", &self.config)
            .finish()
    }
}

#[cfg(feature = "axum")]
impl axum::serve::Listener for TcpInfoListener {
    type Io = TrackedStream;
    type Addr = SocketAddr;

    fn accept(&mut self) -> impl Future<Output = (Self::Io, Self::Addr)> + Send {
        self.accept_forever()
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local address comes from the listener when it names one IP, and from the
    /// connection itself behind a wildcard bind: never `0.0.0.0`.
    #[tokio::test]
    async fn local_address_of_specific_and_wildcard_binds() {
        for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
            let listener = TcpInfoListener::builder()
                .tick(None)
                .bind(bind)
                .await
                .unwrap();
            let port = listener.local_addr().unwrap().port();
            let client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (stream, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            assert_eq!(stream.local_addr(), client.peer_addr().unwrap(), "{bind}");
            assert_eq!(
                stream.connection().local_addr(),
                stream.get_ref().local_addr().unwrap()
            );
        }
    }
}
