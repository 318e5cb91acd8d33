//! `Connection`: the cheap, shareable handle of one accepted connection.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tracing::Span;

use super::builder::Config;
use super::observer::ConnectionSummary;
use super::span;
use crate::error::{Error, Result};
use crate::tcpinfo::linux::CongestionControl;
use crate::tcpinfo::{Info, RevocableSocket};

/// One connection accepted by a [`TcpInfoListener`](crate::TcpInfoListener), from accept
/// to close: its identity, its snapshots and its `tcp.connection` span.
///
/// Cloning is an `Arc` bump. The handle outlives the socket: after the
/// [`TrackedStream`](crate::TrackedStream) is dropped, [`is_closed`](Self::is_closed) is
/// `true`, [`latest`](Self::latest) is the close snapshot and
/// [`snapshot`](Self::snapshot) returns [`Error::Closed`].
///
/// # Where to find it
/// - From the stream: [`TrackedStream::connection`](crate::TrackedStream::connection).
/// - In axum, with `into_make_service_with_connect_info::<Connection>()`: the request
///   extension `axum::extract::ConnectInfo<Connection>`.
/// - In a hyper-util loop wrapped with [`WithConnection`](crate::conn::WithConnection):
///   the request extension `Connection` itself.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Shared>,
}

// `repr(C)`, hot fields first: what every request touches sits next to the `Arc`'s
// counts, in the cache line that cloning the handle (axum's `ConnectInfo`, per request)
// has just loaded; with dozens of connections sharing a core, a miss on a field of its
// own showed up as ~60 ns per request in profiles.
#[repr(C)]
struct Shared {
    // Hot: touched on every request and flush.
    requests: AtomicU64,
    /// `TcpInfoLayer`'s per-connection cap on measured requests (`layer::budget`).
    measure_budget: AtomicU64,
    /// `true` while `after_flush.waiting` may be non-empty: the flush path's only cost
    /// otherwise.
    flush_pending: AtomicBool,
    /// Requests between `begin_request` and `end_request` (the HTTP layer's count).
    in_flight: AtomicU32,
    /// Requests `TcpInfoLayer` measured (read the socket for).
    measured: AtomicU64,
    // Cold: accept, measured requests, ticks, close.
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    accepted_at: Instant,
    accepted_at_system: SystemTime,
    congestion_control: Option<CongestionControl>,
    span: Span,
    config: Arc<Config>,
    /// The socket, readable until the stream's `Drop` revokes it.
    socket: RevocableSocket,
    /// Held while a tick or the close is being taken and reported, so that reports of
    /// one connection never overlap and no tick is reported after the close. `true` once
    /// closed. Lock order: `emit` → `socket` → `state`.
    emit: Mutex<bool>,
    state: Mutex<Stored>,
    after_flush: Mutex<FlushQueue>,
    /// HTTP/1 (`TcpInfoLayer`): the end snapshot of request n, the start of request
    /// n + 1. Dropped at each tick so that idle connections stay small.
    boundary: Mutex<Option<(u64, Box<Info>)>>,
}

/// Work run once with the end snapshot (`None` if it failed): a closure, or a boxed
/// value that implements it (the HTTP layer's request, boxed once for its whole life).
pub(crate) trait FlushWork: Send {
    /// Runs the work.
    fn run(self: Box<Self>, end: Option<&Info>);
}

impl<F: FnOnce(Option<&Info>) + Send> FlushWork for F {
    fn run(self: Box<Self>, end: Option<&Info>) {
        (*self)(end);
    }
}

/// Queued [`FlushWork`].
pub(crate) type OnFlush = Box<dyn FlushWork>;

/// Work waiting for the stream's next completed flush (the HTTP layer's end-of-response
/// reports, which must see the response's last bytes in the kernel) or for the close.
#[derive(Default)]
struct FlushQueue {
    /// Set at close, after which callbacks run at once with the close snapshot.
    closed: bool,
    waiting: VecDeque<OnFlush>,
    /// Callbacks for the close snapshot only ([`Connection::at_close`]).
    at_close: Vec<OnFlush>,
}

/// What a connection remembers of its snapshots.
#[derive(Default)]
struct Stored {
    /// The accept snapshot. Shared with `latest` until the first newer snapshot.
    accept: Option<Arc<Info>>,
    latest: Option<Arc<Info>>,
    ticks: u64,
    rtt_sum_us: u64,
    rtt_samples: u32,
    min_srtt: Option<Duration>,
}

impl Stored {
    /// Takes `info` into the RTT statistics and, if `keep`, stores it as `latest`.
    fn record(&mut self, info: &Info, keep: bool) {
        if keep {
            // Reuse the allocation once it is no longer shared with `accept`.
            if let Some(slot) = self.latest.as_mut().and_then(Arc::get_mut) {
                *slot = *info;
            } else {
                self.latest = Some(Arc::new(*info));
            }
        }
        if let Some(rtt) = info.rtt {
            self.rtt_sum_us = self
                .rtt_sum_us
                .saturating_add(u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
            self.rtt_samples = self.rtt_samples.saturating_add(1);
            self.min_srtt = Some(self.min_srtt.map_or(rtt, |m| m.min(rtt)));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only means an observer panicked; the data is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Connection {
    /// Creates the handle at accept: takes the accept snapshot (with the
    /// congestion-control name, returned too) and creates the span. Does not report
    /// anything yet.
    pub(crate) fn accepted(
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        socket: RevocableSocket,
        config: Arc<Config>,
    ) -> (Connection, Option<Info>) {
        let accepted_at = Instant::now();
        let accepted_at_system = SystemTime::now();
        let mut state = Stored::default();
        let accept = socket
            .snapshot(config.options.congestion_control(true))
            .ok();
        if let Some(info) = &accept {
            state.record(info, config.retain);
            state.accept = state.latest.clone();
        }
        let congestion_control = accept.as_ref().and_then(|i| i.congestion_control);
        let span = if config.spans {
            span::connection_span(
                id,
                peer,
                local,
                congestion_control.as_ref(),
                accept.as_ref(),
            )
        } else {
            Span::none()
        };
        let conn = Connection {
            inner: Arc::new(Shared {
                requests: AtomicU64::new(0),
                measure_budget: AtomicU64::new(0),
                flush_pending: AtomicBool::new(false),
                in_flight: AtomicU32::new(0),
                measured: AtomicU64::new(0),
                id,
                peer,
                local,
                accepted_at,
                accepted_at_system,
                congestion_control,
                span,
                config,
                socket,
                emit: Mutex::new(false),
                state: Mutex::new(state),
                after_flush: Mutex::default(),
                boundary: Mutex::new(None),
            }),
        };
        (conn, accept)
    }

    /// Reports the accept to the observers (before the connection is registered for
    /// ticks).
    pub(crate) fn report_accept(&self, accept: Option<&Info>) {
        let s = &*self.inner;
        let _emit = lock(&s.emit);
        for observer in s.config.observers.iter() {
            observer.on_accept(self, accept);
        }
    }

    /// One periodic snapshot, reported; nothing if closed or if the read fails.
    pub(crate) fn tick(&self) {
        let s = &*self.inner;
        let closed = lock(&s.emit);
        if *closed {
            return;
        }
        // A request boundary unused for a tick is dropped: an idle keep-alive
        // connection then holds no `Info`.
        drop(lock(&s.boundary).take());
        let Ok(info) = s.socket.snapshot_and(s.config.options, |info| {
            let mut state = lock(&s.state);
            state.record(info, s.config.retain);
            state.ticks = state.ticks.saturating_add(1);
        }) else {
            return;
        };
        if s.config.spans {
            span::tick(self, &info, s.config.tick_level);
        }
        for observer in s.config.observers.iter() {
            observer.on_tick(self, &info);
        }
        drop(closed);
    }

    /// The close: last snapshot and revocation under the socket lock, then the report.
    /// Called once by `TrackedStream::drop`, before the socket closes; later calls do
    /// nothing.
    pub(crate) fn close(&self) {
        let s = &*self.inner;
        let mut closed = lock(&s.emit);
        if *closed {
            return;
        }
        let info = s
            .socket
            .revoke_with_snapshot(s.config.options)
            .and_then(Result::ok);
        *closed = true;
        if let Some(info) = &info {
            // The close snapshot is always kept: it is what `latest` means afterwards.
            lock(&s.state).record(info, true);
        }
        // Responses still waiting for a flush end with the close snapshot, before the
        // connection's own close is reported.
        let at_close = {
            let mut queue = lock(&s.after_flush);
            queue.closed = true;
            std::mem::take(&mut queue.at_close)
        };
        self.run_after_flush(info.as_ref());
        for f in at_close {
            f.run(info.as_ref());
        }
        let summary = self.summary(info.as_ref());
        if s.config.spans {
            span::close(self, &summary, s.config.tick_level);
        }
        for observer in s.config.observers.iter() {
            observer.on_close(self, info.as_ref(), &summary);
        }
        drop(closed);
    }

    fn summary(&self, close: Option<&Info>) -> ConnectionSummary {
        let s = &*self.inner;
        let state = lock(&s.state);
        let last = close.or(state.latest.as_deref());
        let mean_rtt = state
            .rtt_sum_us
            .checked_div(u64::from(state.rtt_samples))
            .map(Duration::from_micros);
        ConnectionSummary {
            duration: s.accepted_at.elapsed(),
            requests: s.requests.load(Ordering::Relaxed),
            requests_measured: s.measured.load(Ordering::Relaxed),
            ticks: state.ticks,
            bytes_sent: last.and_then(|i| i.bytes_sent),
            bytes_received: last.and_then(|i| i.bytes_received),
            bytes_acked: last.and_then(|i| i.bytes_acked),
            bytes_retrans: last.and_then(|i| i.bytes_retrans),
            segs_out: last.and_then(|i| i.segs_out),
            segs_in: last.and_then(|i| i.segs_in),
            total_retrans: last.and_then(|i| i.total_retrans),
            min_rtt: last.and_then(|i| i.min_rtt).or(state.min_srtt),
            mean_rtt,
            rtt_samples: state.rtt_samples,
            close_state: close.and_then(|i| i.state),
        }
    }

    /// Unique among the connections of one listener: 1, 2, 3… in accept order.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// Our address on this connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// When the connection was accepted (monotonic clock).
    pub fn accepted_at(&self) -> Instant {
        self.inner.accepted_at
    }

    /// When the connection was accepted (wall clock).
    pub fn accepted_at_system(&self) -> SystemTime {
        self.inner.accepted_at_system
    }

    /// The snapshot taken at accept (it includes the congestion-control name); `None` if
    /// it failed, the platform has no TCP info, or the listener was not built with
    /// [`retain_snapshots(true)`](crate::TcpInfoListenerBuilder::retain_snapshots) (the
    /// default keeps none, to stay small).
    pub fn accept_info(&self) -> Option<Info> {
        lock(&self.inner.state).accept.as_deref().copied()
    }

    /// The most recent snapshot: accept, tick, [`snapshot`](Self::snapshot) (for example
    /// at a request) or close, whichever came last, when the listener was built with
    /// [`retain_snapshots(true)`](crate::TcpInfoListenerBuilder::retain_snapshots). By
    /// default only the close snapshot is kept (`None` while the connection is open).
    pub fn latest(&self) -> Option<Info> {
        lock(&self.inner.state).latest.as_deref().copied()
    }

    /// Reads the socket now and stores the result as [`latest`](Self::latest).
    ///
    /// Race-free: the read holds the connection's lock, which the stream's `Drop` takes
    /// to revoke the socket before it closes, so this never reads a closed descriptor or
    /// one reused by another connection.
    ///
    /// # Errors
    /// [`Error::Closed`] once the stream has been dropped; otherwise the errors of
    /// [`snapshot`](crate::snapshot).
    pub fn snapshot(&self) -> Result<Info, Error> {
        let s = &*self.inner;
        s.socket.snapshot_and(s.config.options, |info| {
            lock(&s.state).record(info, s.config.retain);
        })
    }

    /// Whether the stream has been dropped (and the close snapshot taken).
    pub fn is_closed(&self) -> bool {
        self.inner.socket.is_revoked()
    }

    /// The `tcp.connection` root span ([`Span::none`] when connection spans are off).
    pub fn span(&self) -> &Span {
        &self.inner.span
    }

    /// The congestion-control algorithm (`"cubic"`, `"bbr"`…), read once at accept.
    pub fn congestion_control(&self) -> Option<CongestionControl> {
        self.inner.congestion_control
    }

    /// Requests served on this connection so far (as counted by `TcpInfoLayer`).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Counts one request. Called by `TcpInfoLayer` when a request starts; call it
    /// yourself only if you serve requests without that layer.
    pub fn record_request(&self) {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests on this connection that `TcpInfoLayer` has seen start and not yet end
    /// (more than one only with HTTP/2 multiplexing).
    pub fn in_flight(&self) -> u32 {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// A request starts (`TcpInfoLayer`): counts it; returns its number on the
    /// connection (1 for the first).
    pub(crate) fn count_request(&self) -> u64 {
        let s = &*self.inner;
        s.requests.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }

    /// Requests on this connection that `TcpInfoLayer` measured (read the socket for and
    /// reported); fewer than [`requests`](Self::requests) when it samples (see
    /// `TcpInfoLayer::max_measured_per_second`).
    pub fn requests_measured(&self) -> u64 {
        self.inner.measured.load(Ordering::Relaxed)
    }

    /// The state of `TcpInfoLayer`'s cap on measured requests, and the time now on its
    /// clock (a coarse monotonic clock in nanoseconds, read on every request).
    pub(crate) fn measure_budget(&self) -> (&AtomicU64, u64) {
        (&self.inner.measure_budget, crate::tcpinfo::coarse_now_ns())
    }

    /// A counted request will be measured (`TcpInfoLayer`): returns how many others are
    /// in flight. Balanced by [`end_request`](Self::end_request).
    pub(crate) fn begin_request(&self) -> u32 {
        self.inner.measured.fetch_add(1, Ordering::Relaxed);
        self.inner.in_flight.fetch_add(1, Ordering::Relaxed)
    }

    /// A request started with [`begin_request`](Self::begin_request) ends.
    pub(crate) fn end_request(&self) {
        // Never below zero, even if calls were unbalanced.
        let _ = self
            .inner
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// HTTP/1 (`TcpInfoLayer`): keeps `end`, the end snapshot of request `nth`, as the
    /// start of the next request — unless that request has begun already or the
    /// connection has closed.
    pub(crate) fn keep_boundary(&self, nth: u64, end: Box<Info>) {
        let s = &*self.inner;
        let mut slot = lock(&s.boundary);
        // Under the slot's lock: `take_boundary` of a request that began meanwhile
        // either ran before (and found nothing) or sees the newer count here.
        if s.requests.load(Ordering::Relaxed) == nth && !self.is_closed() {
            *slot = Some((nth, end));
        }
    }

    /// The end snapshot of request `nth − 1`, kept by
    /// [`keep_boundary`](Self::keep_boundary), if no tick has dropped it since.
    pub(crate) fn take_boundary(&self, nth: u64) -> Option<Box<Info>> {
        let mut slot = lock(&self.inner.boundary);
        match slot.take() {
            Some((n, info)) if n.checked_add(1) == Some(nth) => Some(info),
            _ => None,
        }
    }

    /// Runs `f` with a fresh snapshot after the stream's next completed flush (one
    /// snapshot serves every callback waiting then), or with the close snapshot if the
    /// connection closes first (at once if it is closed already).
    pub(crate) fn after_flush(&self, f: OnFlush) {
        self.enqueue(f, false);
    }

    /// Runs `f` with the close snapshot when the connection closes (at once with it if
    /// it is closed already). For the last response on an HTTP/1 connection
    /// (`Connection: close`), which the close follows at once: one read serves both.
    pub(crate) fn at_close(&self, f: OnFlush) {
        self.enqueue(f, true);
    }

    /// Queues `f` for the next flush, or for the close only (`close_only`); runs it at
    /// once with the close snapshot if the connection is closed already.
    fn enqueue(&self, f: OnFlush, close_only: bool) {
        let s = &*self.inner;
        let mut queue = lock(&s.after_flush);
        if queue.closed {
            drop(queue);
            f.run(self.latest().as_ref());
        } else if close_only {
            queue.at_close.push(f);
        } else {
            queue.waiting.push_back(f);
            s.flush_pending.store(true, Ordering::Release);
        }
    }

    /// Runs what [`after_flush`](Self::after_flush) queued with a fresh snapshot, read
    /// only if something waits (one atomic load otherwise). Called when the stream's
    /// `poll_flush` completes, and by the HTTP layer for an HTTP/1 request it does not
    /// measure (that request means the previous response has been read in full).
    pub(crate) fn flushed(&self) {
        if !self.inner.flush_pending.load(Ordering::Acquire) {
            return;
        }
        let info = self.snapshot().ok();
        self.run_after_flush(info.as_ref());
    }

    /// Runs what [`after_flush`](Self::after_flush) queued now, with `info`, if anything
    /// waits (one atomic load otherwise). The HTTP layer calls it with the start snapshot
    /// of an HTTP/1 request: on HTTP/1 the next request means the previous response is
    /// complete.
    pub(crate) fn settle(&self, info: Option<&Info>) {
        if self.inner.flush_pending.load(Ordering::Acquire) {
            self.run_after_flush(info);
        }
    }

    /// Runs the callbacks queued so far with `info`, one at a time and outside the
    /// queue's lock. Callbacks they queue wait for the next run.
    fn run_after_flush(&self, info: Option<&Info>) {
        let s = &*self.inner;
        let mut batch = lock(&s.after_flush).waiting.len();
        while batch > 0 {
            batch -= 1;
            let next = {
                let mut queue = lock(&s.after_flush);
                let next = queue.waiting.pop_front();
                if queue.waiting.is_empty() {
                    s.flush_pending.store(false, Ordering::Release);
                }
                next
            };
            match next {
                Some(f) => f.run(info),
                None => return,
            }
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .field("local", &self.inner.local)
            .field("closed", &self.is_closed())
            .field("requests", &self.requests())
            .field("requests_measured", &self.requests_measured())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "axum")]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, super::TcpInfoListener>>
    for Connection
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, super::TcpInfoListener>) -> Self {
        stream.io().connection().clone()
    }
}
