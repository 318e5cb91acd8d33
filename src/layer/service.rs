//! `TcpInfoService`: finds the request's connection, takes the start snapshot, picks the
//! span; and `Tracked`, one request between its start and its end report.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tracing::Span;
use tracing::span::Entered;

use super::fields::{self, EndValues, StartValues};
use super::future::ResponseFuture;
use super::layer::Config;
use super::request::{BodyOutcome, RequestSummary, TcpDelta};
use crate::conn::Connection;
use crate::conn::FlushWork;
use crate::tcpinfo::Info;

/// The service made by [`TcpInfoLayer`](crate::TcpInfoLayer): serves every request with
/// the inner service and reports its connection's TCP numbers (see the
/// [module docs](crate::layer)).
///
/// `poll_ready` and errors are the inner service's, unchanged; a failed TCP read never
/// fails a request.
#[derive(Clone)]
pub struct TcpInfoService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> TcpInfoService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        TcpInfoService { inner, config }
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

impl<S: std::fmt::Debug> std::fmt::Debug for TcpInfoService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpInfoService")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for TcpInfoService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = http::Response<super::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let Some(conn) = connection_of(&req) else {
            warn_missing_connection(&self.config);
            return ResponseFuture::new(self.inner.call(req), None);
        };
        let nth = conn.count_request();
        if !self.config.measures(nth, conn) {
            if req.version() < http::Version::HTTP_2 {
                // This request means the previous response has been read in full: a
                // response still waiting ends now, with a fresh read.
                conn.flushed();
            }
            return ResponseFuture::new(self.inner.call(req), None);
        }
        let tracked = Tracked::begin(conn.clone(), &self.config, &req, nth);
        let inner = {
            let _entered = tracked.enter();
            self.inner.call(req)
        };
        ResponseFuture::new(inner, Some(tracked))
    }
}

/// The request's connection: axum's `ConnectInfo<Connection>`, else the `Connection`
/// extension (hyper-util with `WithConnection`). axum's first: it is the common case, and
/// each lookup that misses costs a hash-table probe per request.
fn connection_of<B>(req: &http::Request<B>) -> Option<&Connection> {
    let ext = req.extensions();
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(conn)) =
        ext.get::<axum::extract::ConnectInfo<Connection>>()
    {
        return Some(conn);
    }
    ext.get::<Connection>()
}

/// Logs, once per layer, that requests arrive without a `Connection`.
fn warn_missing_connection(config: &Config) {
    if config.warned.load(Ordering::Relaxed) || config.warned.swap(true, Ordering::Relaxed) {
        return;
    }
    #[cfg(feature = "axum")]
    const HOW: &str = "with axum, serve a conniver::TcpInfoListener with \
        `app.into_make_service_with_connect_info::<conniver::Connection>()`; with a \
        hyper-util loop, accept from a conniver::TcpInfoListener and wrap each \
        connection's service in conniver::conn::WithConnection";
    #[cfg(not(feature = "axum"))]
    const HOW: &str = "accept from a conniver::TcpInfoListener and wrap each \
        connection's service in conniver::conn::WithConnection";
    tracing::warn!(
        target: "conniver::layer",
        "TcpInfoLayer: request without a conniver::Connection in its extensions, so no \
         TCP fields are recorded (requests are still served; this is logged once). \
         To fix: {HOW}"
    );
}

/// Whether an HTTP/1 message with these headers ends its connection: a `close` token
/// in `Connection`, or HTTP/1.0 without `keep-alive`.
fn closes_after(version: http::Version, headers: &http::HeaderMap) -> bool {
    let has = |token: &str| {
        headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if version <= http::Version::HTTP_10 {
        !has("keep-alive")
    } else {
        has("close")
    }
}

/// The longest a completed response's report waits for the socket to send it all.
const MAX_DRAIN: Duration = Duration::from_secs(60);
/// The shortest interval between two reads of a draining socket.
const MIN_POLL: Duration = Duration::from_millis(1);
/// The longest interval between two reads of a draining socket.
const MAX_POLL: Duration = Duration::from_millis(200);

/// A completed response still going out, reported by whichever comes first: the
/// [`drain`] task, or (HTTP/1) the next request or the close.
type Slot = Arc<Mutex<Option<Box<Tracked>>>>;

/// HTTP/1: re-checks a draining response at the connection's next flush, and ends it
/// when the next request starts ([`Connection::settle`] with that request's start
/// snapshot: the client has read the whole response) or the connection closes.
fn check_on_flush(slot: Slot, conn: Connection) {
    conn.clone()
        .after_flush(Box::new(move |end: Option<&Info>| {
            let guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(tracked) = guard.as_ref() else {
                return;
            };
            let next_request = conn.requests() > tracked.nth;
            if next_request || conn.is_closed() || !tracked.going_out(end, false) {
                report_from(guard, end);
            } else {
                drop(guard);
                check_on_flush(slot, conn);
            }
        }));
}

/// Polls the socket while the response is [going out](Tracked::going_out), until it
/// has left, the connection closes, [`MAX_DRAIN`] passes, or someone else reported it;
/// then reports. Polls start at about one RTT and back off to [`MAX_POLL`].
async fn drain(slot: Slot, conn: Connection, mut end: Option<Info>) {
    let deadline = Instant::now() + MAX_DRAIN;
    let rtt = end.as_ref().and_then(|i| i.rtt).unwrap_or_default();
    let mut wait = rtt.clamp(MIN_POLL, MAX_POLL);
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_POLL);
        let before = end.as_ref().and_then(|i| i.bytes_sent);
        end = end_snapshot(&conn);
        let progressing = end.as_ref().and_then(|i| i.bytes_sent) != before;
        let guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tracked) = guard.as_ref() else {
            return;
        };
        let done = !tracked.going_out(end.as_ref(), progressing)
            || conn.is_closed()
            || Instant::now() >= deadline;
        if done {
            return report_from(guard, end.as_ref());
        }
    }
}

/// Takes the response out of its slot and reports it, outside the slot's lock.
fn report_from(mut slot: MutexGuard<'_, Option<Box<Tracked>>>, end: Option<&Info>) {
    let tracked = slot.take();
    drop(slot);
    if let Some(tracked) = tracked {
        tracked.report(end, BodyOutcome::Completed);
    }
}

/// A fresh snapshot, or the close snapshot if the connection has closed meanwhile.
fn end_snapshot(conn: &Connection) -> Option<Info> {
    match conn.snapshot() {
        Ok(info) => Some(info),
        Err(_) if conn.is_closed() => conn.latest(),
        Err(_) => None,
    }
}

/// A completed response waiting for the connection's next flush (or its close).
impl FlushWork for Tracked {
    fn run(self: Box<Self>, end: Option<&Info>) {
        self.after_flush(end);
    }
}

/// One request on a tracked connection, from the start snapshot to its report. Dropped
/// only through [`finish`](Self::finish), which reports exactly once.
pub(crate) struct Tracked {
    conn: Connection,
    config: Arc<Config>,
    span: Span,
    /// Whether `span` is the layer's own (entered while the request is polled) rather
    /// than the caller's current span (already entered by the caller).
    own: bool,
    started: Instant,
    /// Boxed: an `Info` is about 1 KiB, and `Tracked` moves from the service to the
    /// future, the body and the flush queue.
    start: Option<Box<Info>>,
    start_values: StartValues,
    concurrent: u32,
    /// This is the n-th request on its connection.
    nth: u64,
    /// Body bytes handed to the server so far.
    body_bytes: u64,
    /// A `HEAD` request: the server sends no body, whatever the response holds.
    head: bool,
    /// HTTP/1.x: requests on the connection are sequential.
    http1: bool,
    /// HTTP/1.x: the connection closes after this response (`Connection: close`, or
    /// HTTP/1.0 without keep-alive).
    last: bool,
    /// Method and path, kept only when there are observers to hand them to.
    request: Option<(http::Method, Arc<str>)>,
}

impl Tracked {
    /// The start: counts the request, reads the socket, picks and fills the span.
    // Not inlined: it keeps the unmeasured path of `call` small (its frame was 2.4 KiB).
    #[inline(never)]
    fn begin<B>(
        conn: Connection,
        config: &Arc<Config>,
        req: &http::Request<B>,
        nth: u64,
    ) -> Box<Self> {
        let started = Instant::now();
        let concurrent = conn.begin_request();
        let http1 = req.version() < http::Version::HTTP_2;
        // HTTP/1: the previous request's end snapshot is this one's start (one read
        // per request instead of two; see "When the snapshots are taken").
        let start = (http1 && concurrent == 0)
            .then(|| conn.take_boundary(nth))
            .flatten()
            .or_else(|| conn.snapshot().ok().map(Box::new));
        if http1 {
            // A response of this connection still draining is complete now.
            conn.settle(start.as_deref());
        }
        let conn_span = conn.span().id();

        let current = Span::current();
        let use_current = !config.own_span && !current.is_disabled() && current.id() != conn_span;
        let (span, own) = if use_current {
            (current, false)
        } else {
            let path = req.uri().path();
            (fields::own_span(config.level, req.method(), path), true)
        };
        span.follows_from(conn_span);
        let start_values = StartValues::new(conn.id(), start.as_deref(), nth, concurrent);
        start_values.record(&span);

        let request = (!config.observers.is_empty())
            .then(|| (req.method().clone(), Arc::from(req.uri().path())));
        Box::new(Tracked {
            conn,
            config: Arc::clone(config),
            span,
            own,
            started,
            start,
            start_values,
            concurrent,
            nth,
            body_bytes: 0,
            head: req.method() == http::Method::HEAD,
            http1,
            last: http1 && closes_after(req.version(), req.headers()),
            request,
        })
    }

    /// The response's head: `Connection: close` there makes this the connection's last
    /// response too.
    pub(crate) fn response_head(&mut self, headers: &http::HeaderMap) {
        self.last |= self.http1 && closes_after(http::Version::HTTP_11, headers);
    }

    /// Counts `n` body bytes handed to the server.
    pub(crate) fn count_body(&mut self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.body_bytes = self.body_bytes.saturating_add(n);
    }

    /// Body bytes handed to the server so far.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Whether this answers a `HEAD` request (no body goes out).
    pub(crate) fn is_head(&self) -> bool {
        self.head
    }

    /// Enters the layer's own span (the current span is entered already).
    pub(crate) fn enter(&self) -> Option<Entered<'_>> {
        self.own.then(|| self.span.enter())
    }

    /// The end. A completed response is reported once the kernel has sent all of it:
    /// after the connection's next flush (when the server has handed its last bytes to
    /// the kernel) and, if some are still queued in the socket then, once they have left
    /// it. Anything else is reported at once.
    pub(crate) fn finish(self: Box<Self>, outcome: BodyOutcome) {
        self.conn.end_request();
        if outcome == BodyOutcome::Completed && self.last {
            // The server closes the connection once this response is out: the close
            // snapshot (taken before the socket closes) is the end snapshot, which
            // saves a read. A response still in the socket then is reported the same
            // way as one still draining when the connection closes.
            // (At the close, `FlushWork::run` finds the connection closed and reports.)
            let conn = self.conn.clone();
            conn.at_close(self);
        } else if outcome == BodyOutcome::Completed {
            let conn = self.conn.clone();
            conn.after_flush(self);
        } else {
            let end = end_snapshot(&self.conn);
            self.report(end.as_ref(), outcome);
        }
    }

    /// The flush after a completed response: report now if the response has left the
    /// socket, else let it [drain](drain).
    fn after_flush(self: Box<Self>, end: Option<&Info>) {
        // HTTP/1 servers write the whole response before this flush; HTTP/2 may still
        // hold frames of it.
        let progressing = !self.http1;
        if self.conn.is_closed() || !self.going_out(end, progressing) {
            return self.report(end, BodyOutcome::Completed);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.report(end, BodyOutcome::Completed);
        };
        let conn = self.conn.clone();
        let http1 = self.http1;
        let slot: Slot = Arc::new(Mutex::new(Some(self)));
        if http1 {
            check_on_flush(Arc::clone(&slot), conn.clone());
        }
        drop(runtime.spawn(drain(slot, conn, end.copied())));
    }

    /// Whether the response is still going out at `end`: bytes wait in the socket's
    /// send queue (a slow reader, a small receive window, a congested path), or fewer
    /// bytes than the body's have been sent and the count is still growing (HTTP/2
    /// writes a response frame by frame after its body ended).
    fn going_out(&self, end: Option<&Info>, progressing: bool) -> bool {
        let Some(end) = end else { return false };
        let queued = end.notsent_bytes.is_some_and(|n| n > 0);
        let sent = self
            .start
            .as_ref()
            .and_then(|start| Some(end.bytes_sent?.wrapping_sub(start.bytes_sent?)));
        let short = sent.is_some_and(|sent| sent < self.body_bytes);
        queued || (short && progressing)
    }

    /// Records the end fields, emits the event, calls the observers; on HTTP/1 keeps
    /// the end snapshot as the next request's start.
    fn report(mut self: Box<Self>, end: Option<&Info>, outcome: BodyOutcome) {
        let elapsed = self.started.elapsed();
        let delta = match (&self.start, end) {
            (Some(start), Some(end)) => TcpDelta::between(start, end),
            _ => TcpDelta::default(),
        };
        let end_values = EndValues::new(&delta, end, outcome, elapsed);
        end_values.record(&self.span);
        fields::emit(
            self.config.level,
            &self.span,
            &self.start_values,
            &end_values,
        );
        let start = self.start.take();
        let summary_start = self.request.is_some().then(|| start.as_deref().copied());
        if self.http1
            && let Some(end) = end
            && !self.conn.is_closed()
            && self.config.may_measure_next(self.nth, &self.conn)
        {
            // Reuse the start's allocation for the boundary.
            let boundary = match start {
                Some(mut boxed) => {
                    *boxed = *end;
                    boxed
                }
                None => Box::new(*end),
            };
            self.conn.keep_boundary(self.nth, boundary);
        }
        let Some((method, path)) = self.request else {
            return;
        };
        let summary = RequestSummary {
            connection: self.conn,
            start: summary_start.flatten(),
            end: end.copied(),
            delta,
            elapsed,
            outcome,
            concurrent: self.concurrent,
            method,
            path,
        };
        for observer in &self.config.observers {
            observer.on_request_end(&summary, &self.span);
        }
    }
}
