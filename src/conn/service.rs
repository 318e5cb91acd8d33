//! `WithConnection`: puts the `Connection` into every request of a hand-written
//! hyper-util loop.

use std::task::{Context, Poll};

use super::Connection;

/// Wraps the service of one connection so that every request carries that
/// [`Connection`] in its extensions (`req.extensions().get::<Connection>()`), where
/// `TcpInfoLayer` looks for it.
///
/// It is both a `tower::Service` and a `hyper::service::Service`, so it goes on either
/// side of `hyper_util::service::TowerToHyperService`:
///
/// ```no_run
/// # async fn run(listener: conniver::TcpInfoListener) -> std::io::Result<()> {
/// use hyper_util::rt::{TokioExecutor, TokioIo};
/// use hyper_util::server::conn::auto::Builder;
/// use hyper_util::service::TowerToHyperService;
/// # let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
/// let (stream, _peer) = listener.accept().await?;
/// let service = conniver::conn::WithConnection::new(stream.connection().clone(), app);
/// tokio::spawn(async move {
///     Builder::new(TokioExecutor::new())
///         .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
///         .await
/// });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WithConnection<S> {
    conn: Connection,
    inner: S,
}

impl<S> WithConnection<S> {
    /// Wraps `inner` for the connection `conn`.
    pub fn new(conn: Connection, inner: S) -> Self {
        WithConnection { conn, inner }
    }

    /// The connection whose requests this serves.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for WithConnection<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.conn.clone());
        self.inner.call(req)
    }
}

impl<S, B> hyper::service::Service<http::Request<B>> for WithConnection<S>
where
    S: hyper::service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.conn.clone());
        self.inner.call(req)
    }
}
