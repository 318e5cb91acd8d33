//! `SlowClientPolicy`: one WARN per slow request or connection, rate-limited, counted.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::Span;

#[cfg(feature = "otel")]
use super::metrics::{Attrs, Source};
#[cfg(feature = "otel")]
use super::names;
use crate::conn::span::us;
use crate::conn::{Connection, ConnectionObserver, ConnectionSummary};
use crate::layer::{RequestObserver, RequestSummary};
use crate::tcpinfo::Info;

/// The `tracing` target of slow-client warnings: filter them with
/// `RUST_LOG=conniver::slow_client=warn` (or turn them off with `=off`).
pub const TARGET: &str = "conniver::slow_client";

/// Default [`SlowClientPolicy::rtt_above`]: 250 ms.
pub const DEFAULT_RTT_ABOVE: Duration = Duration::from_millis(250);
/// Default [`SlowClientPolicy::retransmit_ratio_above`]: 5 %.
pub const DEFAULT_RETRANSMIT_RATIO_ABOVE: f64 = 0.05;
/// Default [`SlowClientPolicy::min_segments`]: 20 segments.
pub const DEFAULT_MIN_SEGMENTS: u32 = 20;
/// Default [`SlowClientPolicy::rwnd_limited_above`]: 30 % of the request's time.
pub const DEFAULT_RWND_LIMITED_ABOVE: f64 = 0.30;
/// Default [`SlowClientPolicy::min_elapsed`]: 100 ms.
pub const DEFAULT_MIN_ELAPSED: Duration = Duration::from_millis(100);
/// Default [`SlowClientPolicy::notsent_above`]: off. A large unsent backlog is the
/// normal state of any bulk download the network, not the server, paces (Linux lets
/// it grow to the send buffer, up to 4 MiB by default), so it does not tell a slow
/// client from a fast one by itself; the receive-window check does.
pub const DEFAULT_NOTSENT_ABOVE: Option<u32> = None;
/// Default [`SlowClientPolicy::log_rate`]: 10 warnings per second…
pub const DEFAULT_LOG_PER_SECOND: u32 = 10;
/// …with bursts of 20.
pub const DEFAULT_LOG_BURST: u32 = 20;

/// Why a client was found slow: the `reason` of the warning and of the
/// `tcp.slow_client.warnings` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlowReason {
    /// Sending was limited by the client's receive window for too large a share of the
    /// request: the client reads slowly (or not at all). `"rwnd_limited"`.
    RwndLimited,
    /// Too many bytes written by the server wait in the socket, not yet sent: the client
    /// or its path cannot keep up (tick checks only; off by default).
    /// `"notsent_backlog"`.
    NotsentBacklog,
    /// Too large a share of segments was retransmitted: a lossy path. `"retransmits"`.
    Retransmits,
    /// The smoothed round-trip time is too high: a far or congested client. `"rtt"`.
    Rtt,
}

impl SlowReason {
    /// Every reason, in the order they are listed in a warning.
    pub const ALL: [SlowReason; 4] = [
        SlowReason::RwndLimited,
        SlowReason::NotsentBacklog,
        SlowReason::Retransmits,
        SlowReason::Rtt,
    ];

    /// `"rwnd_limited"`, `"notsent_backlog"`, `"retransmits"`, `"rtt"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SlowReason::RwndLimited => "rwnd_limited",
            SlowReason::NotsentBacklog => "notsent_backlog",
            SlowReason::Retransmits => "retransmits",
            SlowReason::Rtt => "rtt",
        }
    }

    fn bit(self) -> u8 {
        match self {
            SlowReason::RwndLimited => 1,
            SlowReason::NotsentBacklog => 2,
            SlowReason::Retransmits => 4,
            SlowReason::Rtt => 8,
        }
    }
}

impl fmt::Display for SlowReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one check found, with the figures behind it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Findings {
    reasons: u8,
    /// A request's findings (else a tick's): names the figures.
    request: bool,
    /// Smoothed RTT at request start, or at the tick.
    rtt: Option<Duration>,
    /// Smoothed RTT at the end of the request.
    end_rtt: Option<Duration>,
    /// Over the request (delta) or the connection's life (tick).
    retrans_segs: Option<u32>,
    segs_out: Option<u32>,
    retransmit_ratio: Option<f64>,
    rwnd_limited: Option<Duration>,
    /// Time spent sending over the connection's life (ticks).
    busy_time: Option<Duration>,
    rwnd_limited_ratio: Option<f64>,
    notsent_bytes: Option<u32>,
    elapsed: Option<Duration>,
}

impl Findings {
    fn add(&mut self, reason: SlowReason) {
        self.reasons |= reason.bit();
    }

    pub(crate) fn reasons(&self) -> impl Iterator<Item = SlowReason> + '_ {
        SlowReason::ALL
            .into_iter()
            .filter(|r| self.reasons & r.bit() != 0)
    }

    fn is_empty(&self) -> bool {
        self.reasons == 0
    }

    /// `"rwnd_limited,notsent_backlog"`.
    fn reason_list(&self) -> String {
        let mut s = String::new();
        for r in self.reasons() {
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(r.as_str());
        }
        s
    }
}

/// Token bucket for the log lines, and how many were dropped since the last one.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

#[derive(Debug)]
struct State {
    bucket: Mutex<Bucket>,
    /// Reasons already reported by ticks, per open connection (by its address pair,
    /// unique among open connections whatever listener accepted them).
    warned: Mutex<HashMap<(SocketAddr, SocketAddr), u8>>,
}

impl State {
    fn new(burst: u32) -> Arc<State> {
        Arc::new(State {
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                last: Instant::now(),
                suppressed: 0,
            }),
            warned: Mutex::new(HashMap::new()),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Flags slow clients: one `WARN` event per offending request, and one per offending
/// connection and reason from the periodic ticks, with the peer, the reason and the
/// figures; a counter `tcp.slow_client.warnings{reason}` counts every finding.
///
/// "Slow" means the client or its network, not the handler, is why a response takes
/// long:
///
/// | reason | per request (end of the response body) | per connection (every tick) | default |
/// |---|---|---|---|
/// | `rwnd_limited` | time limited by the client's receive window / request time, when the request took at least [`min_elapsed`](Self::min_elapsed) | the same / time spent sending, over the connection's life, once that is at least `min_elapsed` | > 30 %, ≥ 100 ms |
/// | `notsent_backlog` | — | bytes written but not yet sent, now | off |
/// | `retransmits` | retransmitted / sent segments during the request, when at least [`min_segments`](Self::min_segments) were sent | the same over the connection's life | > 5 %, ≥ 20 segments |
/// | `rtt` | smoothed RTT at the end of the response (else at its start) | smoothed RTT now | > 250 ms |
///
/// Each threshold is a builder method; `None` turns a check off. A request with
/// several findings gives one event whose `reason` lists them all
/// (`"rwnd_limited,notsent_backlog"`); a connection's ticks warn once per reason for
/// the connection's life.
///
/// # The event
/// Level `WARN`, target [`TARGET`] (`conniver::slow_client`), name `tcp.slow_client`,
/// parent the request span (or the connection span for tick findings), message
/// `"slow client"`. Fields (units as in the crate's span convention; a figure the
/// platform lacks is left out):
/// `reason`, `source` (`"request"` or `"tick"`), `tcp.conn_id`, `tcp.peer`,
/// `http.request.method` and `url.path` (requests), `tcp.elapsed_s` (requests),
/// `tcp.rtt_us` (at request start, or at the tick), `tcp.end_rtt_us` (at the end of the
/// request), `tcp.delta.retrans_segs` and `tcp.delta.segs_out` (during the request) or
/// `tcp.total_retrans` and `tcp.segs_out` (over the connection, ticks),
/// `tcp.retransmit_ratio`, `tcp.delta.rwnd_limited_us` (requests) or
/// `tcp.rwnd_limited_us` and `tcp.busy_time_us` (ticks), `tcp.rwnd_limited_ratio`,
/// `tcp.notsent_bytes` (ticks), `suppressed`. The names and units are those of the
/// `tcp.request` event and the `tcp.tick` event.
///
/// # Rate limiting
/// Log lines go through a token bucket ([`log_rate`](Self::log_rate), default 10 per
/// second, bursts of 20) so that a flood of bad clients cannot flood the logs. A
/// finding that finds the bucket empty is not logged (the counter still counts it);
/// the next line that is logged carries `suppressed = N`, the number dropped since the
/// previous line. Clones of a policy share the bucket.
///
/// # Where it runs
/// Every `TcpInfoListener` and `TcpInfoLayer` already use one process-wide default
/// policy (shared, so one bucket). Register your own with
/// [`TcpInfoListenerBuilder::observer`](crate::TcpInfoListenerBuilder::observer) (tick
/// checks) and on the layer (request checks); use the same value (or clones) for both.
///
/// ```
/// use std::time::Duration;
/// use conniver::telemetry::SlowClientPolicy;
///
/// let policy = SlowClientPolicy::new()
///     .rtt_above(Some(Duration::from_millis(400)))
///     .rwnd_limited_above(Some(0.5))
///     .notsent_above(None)
///     .log_rate(5, 10);
/// # let _ = policy;
/// ```
#[derive(Clone)]
#[must_use]
pub struct SlowClientPolicy {
    rtt_above: Option<Duration>,
    retransmit_ratio_above: Option<f64>,
    min_segments: u32,
    rwnd_limited_above: Option<f64>,
    min_elapsed: Duration,
    notsent_above: Option<u32>,
    per_second: u32,
    burst: u32,
    state: Arc<State>,
    #[cfg(feature = "otel")]
    source: Source,
}

impl Default for SlowClientPolicy {
    fn default() -> Self {
        SlowClientPolicy {
            rtt_above: Some(DEFAULT_RTT_ABOVE),
            retransmit_ratio_above: Some(DEFAULT_RETRANSMIT_RATIO_ABOVE),
            min_segments: DEFAULT_MIN_SEGMENTS,
            rwnd_limited_above: Some(DEFAULT_RWND_LIMITED_ABOVE),
            min_elapsed: DEFAULT_MIN_ELAPSED,
            notsent_above: DEFAULT_NOTSENT_ABOVE,
            per_second: DEFAULT_LOG_PER_SECOND,
            burst: DEFAULT_LOG_BURST,
            state: State::new(DEFAULT_LOG_BURST),
            #[cfg(feature = "otel")]
            source: Source::Global,
        }
    }
}

impl fmt::Debug for SlowClientPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlowClientPolicy")
            .field("rtt_above", &self.rtt_above)
            .field("retransmit_ratio_above", &self.retransmit_ratio_above)
            .field("min_segments", &self.min_segments)
            .field("rwnd_limited_above", &self.rwnd_limited_above)
            .field("min_elapsed", &self.min_elapsed)
            .field("notsent_above", &self.notsent_above)
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl SlowClientPolicy {
    /// A policy with every default (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Flag a smoothed RTT above this. Defaults to `Some(250 ms)`.
    pub fn rtt_above(mut self, rtt: Option<Duration>) -> Self {
        self.rtt_above = rtt;
        self
    }

    /// Flag a retransmitted / sent segment ratio above this (`0.05` = 5 %). Defaults to
    /// `Some(0.05)`.
    pub fn retransmit_ratio_above(mut self, ratio: Option<f64>) -> Self {
        self.retransmit_ratio_above = ratio;
        self
    }

    /// The retransmit ratio is only judged once at least this many segments were sent
    /// (one lost segment of a 3-segment response is not a trend). Defaults to 20.
    pub fn min_segments(mut self, segments: u32) -> Self {
        self.min_segments = segments;
        self
    }

    /// Flag a request during which sending was limited by the client's receive window
    /// for more than this share of the request's time (`0.3` = 30 %). Defaults to
    /// `Some(0.3)`.
    pub fn rwnd_limited_above(mut self, ratio: Option<f64>) -> Self {
        self.rwnd_limited_above = ratio;
        self
    }

    /// The receive-window share is only judged for requests that took at least this
    /// long (start to end of the response body). Defaults to 100 ms.
    pub fn min_elapsed(mut self, elapsed: Duration) -> Self {
        self.min_elapsed = elapsed;
        self
    }

    /// Flag more than this many bytes written but not yet sent (Linux
    /// `tcpi_notsent_bytes`) when a tick samples an open connection. Only ticks check
    /// it: at the end of a response the backlog is just how far the server wrote ahead.
    /// Defaults to `None` (see [`DEFAULT_NOTSENT_ABOVE`] for why).
    pub fn notsent_above(mut self, bytes: Option<u32>) -> Self {
        self.notsent_above = bytes;
        self
    }

    /// At most `per_second` log lines per second on average, `burst` at once; the
    /// counter counts every finding regardless. `burst = 0` turns the log lines off.
    /// Gives the policy a new bucket (clones made before keep the old one). Defaults to
    /// 10 per second, bursts of 20.
    pub fn log_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.per_second = per_second;
        self.burst = burst;
        self.state = State::new(burst);
        self
    }

    /// Counts `tcp.slow_client.warnings` with this meter instead of the global meter
    /// provider.
    #[cfg(feature = "otel")]
    pub fn meter(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.source = Source::fixed(meter);
        self
    }

    /// The checks of one finished request.
    pub(crate) fn check_request(&self, r: &RequestSummary) -> Findings {
        let end = r.end.as_ref();
        let mut f = Findings {
            request: true,
            elapsed: Some(r.elapsed),
            rtt: r.start.as_ref().and_then(|i| i.rtt),
            end_rtt: end.and_then(|i| i.rtt),
            ..Findings::default()
        };
        if let (Some(limit), Some(rtt)) = (self.rtt_above, f.end_rtt.or(f.rtt))
            && rtt > limit
        {
            f.add(SlowReason::Rtt);
        }
        f.retrans_segs = r.delta.retrans_segs;
        f.segs_out = r.delta.segs_out;
        f.retransmit_ratio = r.delta.retransmit_ratio();
        if let (Some(limit), Some(ratio), Some(out)) =
            (self.retransmit_ratio_above, f.retransmit_ratio, f.segs_out)
            && out >= self.min_segments
            && ratio > limit
        {
            f.add(SlowReason::Retransmits);
        }
        f.rwnd_limited = r.delta.rwnd_limited;
        if let Some(limited) = f.rwnd_limited
            && !r.elapsed.is_zero()
        {
            let ratio = (limited.as_secs_f64() / r.elapsed.as_secs_f64()).min(1.0);
            f.rwnd_limited_ratio = Some(ratio);
            if let Some(limit) = self.rwnd_limited_above
                && r.elapsed >= self.min_elapsed
                && ratio > limit
            {
                f.add(SlowReason::RwndLimited);
            }
        }
        f
    }

    /// The checks of one periodic snapshot of an open connection.
    pub(crate) fn check_tick(&self, info: &Info) -> Findings {
        let mut f = Findings {
            rtt: info.rtt,
            retrans_segs: info.total_retrans,
            segs_out: info.segs_out,
            notsent_bytes: info.notsent_bytes,
            rwnd_limited: info.rwnd_limited,
            busy_time: info.busy_time,
            ..Findings::default()
        };
        if let (Some(limited), Some(busy)) = (f.rwnd_limited, f.busy_time)
            && !busy.is_zero()
        {
            let ratio = (limited.as_secs_f64() / busy.as_secs_f64()).min(1.0);
            f.rwnd_limited_ratio = Some(ratio);
            if let Some(limit) = self.rwnd_limited_above
                && busy >= self.min_elapsed
                && ratio > limit
            {
                f.add(SlowReason::RwndLimited);
            }
        }
        // Before any data has moved either way, the RTT estimate rests on the handshake
        // alone, where the server's own accept-queue overflow (a retransmitted SYN-ACK)
        // shows as a ~1 s RTT: that says nothing about the client, so it is not reported.
        let handshake_only = info.data_segs_out == Some(0) && info.data_segs_in == Some(0);
        if let (Some(limit), Some(rtt)) = (self.rtt_above, f.rtt)
            && rtt > limit
            && !handshake_only
        {
            f.add(SlowReason::Rtt);
        }
        if let (Some(retrans), Some(out)) = (f.retrans_segs, f.segs_out)
            && out > 0
        {
            let ratio = (f64::from(retrans) / f64::from(out)).min(1.0);
            f.retransmit_ratio = Some(ratio);
            if let Some(limit) = self.retransmit_ratio_above
                && out >= self.min_segments
                && ratio > limit
            {
                f.add(SlowReason::Retransmits);
            }
        }
        if let (Some(limit), Some(n)) = (self.notsent_above, f.notsent_bytes)
            && n > limit
        {
            f.add(SlowReason::NotsentBacklog);
        }
        f
    }

    /// Takes a token; `Some(suppressed since the last line)` if the line may be logged.
    fn admit(&self) -> Option<u64> {
        let mut b = lock(&self.state.bucket);
        let now = Instant::now();
        let refill = now.duration_since(b.last).as_secs_f64() * f64::from(self.per_second);
        b.tokens = (b.tokens + refill).min(f64::from(self.burst));
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.suppressed))
        } else {
            b.suppressed = b.suppressed.saturating_add(1);
            None
        }
    }

    /// Counts the findings and, if the bucket allows, logs them.
    fn report(
        &self,
        conn: &Connection,
        parent: &Span,
        f: &Findings,
        request: Option<&RequestSummary>,
    ) {
        #[cfg(feature = "otel")]
        {
            let inst = self.source.get();
            for reason in f.reasons() {
                let mut attrs = Attrs::of(conn, false);
                attrs.push(opentelemetry::KeyValue::new(
                    names::ATTR_REASON,
                    reason.as_str(),
                ));
                inst.slow_client_warnings.add(1, attrs.as_slice());
            }
        }
        if !tracing::enabled!(target: TARGET, tracing::Level::WARN) {
            return;
        }
        let Some(suppressed) = self.admit() else {
            return;
        };
        let reason = f.reason_list();
        tracing::warn!(
            name: "tcp.slow_client",
            target: TARGET,
            parent: parent,
            reason = reason.as_str(),
            source = if request.is_some() { "request" } else { "tick" },
            tcp.conn_id = i64::try_from(conn.id()).unwrap_or(i64::MAX),
            tcp.peer = %conn.peer_addr(),
            http.request.method = request.map(|r| r.method.as_str()),
            url.path = request.map(|r| &*r.path),
            tcp.elapsed_s = f.elapsed.map(|d| d.as_secs_f64()),
            tcp.rtt_us = f.rtt.map(us),
            tcp.end_rtt_us = f.end_rtt.map(us),
            tcp.delta.retrans_segs = f.retrans_segs.filter(|_| f.request).map(i64::from),
            tcp.delta.segs_out = f.segs_out.filter(|_| f.request).map(i64::from),
            tcp.total_retrans = f.retrans_segs.filter(|_| !f.request).map(i64::from),
            tcp.segs_out = f.segs_out.filter(|_| !f.request).map(i64::from),
            tcp.retransmit_ratio = f.retransmit_ratio,
            tcp.delta.rwnd_limited_us = f.rwnd_limited.filter(|_| f.request).map(us),
            tcp.rwnd_limited_us = f.rwnd_limited.filter(|_| !f.request).map(us),
            tcp.busy_time_us = f.busy_time.map(us),
            tcp.rwnd_limited_ratio = f.rwnd_limited_ratio,
            tcp.notsent_bytes = f.notsent_bytes.map(i64::from),
            suppressed = i64::try_from(suppressed).unwrap_or(i64::MAX),
            "slow client"
        );
    }

    fn key(conn: &Connection) -> (SocketAddr, SocketAddr) {
        (conn.local_addr(), conn.peer_addr())
    }
}

/// The process-wide default policy, shared by every listener and layer that use the
/// defaults (so they share one log bucket).
pub(crate) fn shared_default() -> SlowClientPolicy {
    static DEFAULT: std::sync::OnceLock<SlowClientPolicy> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(SlowClientPolicy::default).clone()
}

impl RequestObserver for SlowClientPolicy {
    fn on_request_end(&self, request: &RequestSummary, span: &Span) {
        let f = self.check_request(request);
        if !f.is_empty() {
            self.report(&request.connection, span, &f, Some(request));
        }
    }
}

impl ConnectionObserver for SlowClientPolicy {
    fn on_tick(&self, conn: &Connection, info: &Info) {
        let mut f = self.check_tick(info);
        if f.is_empty() {
            return;
        }
        {
            let mut warned = lock(&self.state.warned);
            let seen = warned.entry(Self::key(conn)).or_insert(0);
            let new = f.reasons & !*seen;
            *seen |= f.reasons;
            f.reasons = new;
        }
        if !f.is_empty() {
            self.report(conn, conn.span(), &f, None);
        }
    }

    fn on_close(&self, conn: &Connection, _info: Option<&Info>, _summary: &ConnectionSummary) {
        let mut warned = lock(&self.state.warned);
        if !warned.is_empty() {
            warned.remove(&Self::key(conn));
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;
    use crate::TcpInfoListener;
    use crate::conn::TrackedStream;
    use crate::layer::{BodyOutcome, TcpDelta};

    /// Fields of one captured event, as strings.
    type Fields = BTreeMap<String, String>;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Fields>>>);

    struct Visitor<'a>(&'a mut Fields);

    impl Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if event.metadata().target() == TARGET {
                let mut fields = Fields::new();
                event.record(&mut Visitor(&mut fields));
                fields.insert("level".into(), event.metadata().level().to_string());
                lock(&self.0).push(fields);
            }
        }
    }

    impl Capture {
        fn events(&self) -> Vec<Fields> {
            lock(&self.0).clone()
        }
    }

    /// A tracked server-side stream and its client, the client with a small receive
    /// buffer.
    async fn pair(
        rcvbuf: Option<usize>,
    ) -> (TcpInfoListener, TrackedStream, tokio::net::TcpStream) {
        let listener = TcpInfoListener::builder()
            .tick(None)
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(n) = rcvbuf {
            socket
                .set_recv_buffer_size(u32::try_from(n).unwrap())
                .unwrap();
        }
        let (client, accepted) = tokio::join!(socket.connect(addr), listener.accept());
        (listener, accepted.unwrap().0, client.unwrap())
    }

    fn summary(conn: &Connection, start: Info, end: Info, elapsed: Duration) -> RequestSummary {
        RequestSummary {
            connection: conn.clone(),
            start: Some(start),
            end: Some(end),
            delta: TcpDelta::between(&start, &end),
            elapsed,
            outcome: BodyOutcome::Completed,
            concurrent: 0,
            method: http::Method::GET,
            path: Arc::from("/big"),
        }
    }

    /// Writes `total` bytes to the server side while the client sleeps `stall` before
    /// reading everything; returns the request-like summary of the write.
    async fn transfer(rcvbuf: Option<usize>, total: usize, stall: Duration) -> RequestSummary {
        let (_l, mut server, mut client) = pair(rcvbuf).await;
        let conn = server.connection().clone();
        let reader = tokio::spawn(async move {
            tokio::time::sleep(stall).await;
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0;
            while n < total {
                n += client.read(&mut buf).await.unwrap();
            }
        });
        let start_at = Instant::now();
        let start = conn.snapshot().unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            server.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        server.flush().await.unwrap();
        reader.await.unwrap();
        let end = conn.snapshot().unwrap();
        summary(&conn, start, end, start_at.elapsed())
    }

    #[tokio::test]
    async fn stalled_reader_is_rwnd_limited() {
        let r = transfer(Some(4096), 8 << 20, Duration::from_millis(500)).await;
        let policy = SlowClientPolicy::new().notsent_above(None);
        let f = policy.check_request(&r);
        assert!(
            f.reasons().any(|r| r == SlowReason::RwndLimited),
            "{f:?} {:?}",
            r.delta
        );
        let ratio = f.rwnd_limited_ratio.unwrap();
        assert!(ratio > 0.3 && ratio <= 1.0, "{ratio}");
        assert!(
            f.rwnd_limited.unwrap() >= Duration::from_millis(200),
            "{f:?}"
        );
        // The same request with the check off, or a high bar, is fine.
        let off = SlowClientPolicy::new()
            .notsent_above(None)
            .rwnd_limited_above(None);
        assert!(off.check_request(&r).is_empty());
        let short = SlowClientPolicy::new()
            .notsent_above(None)
            .min_elapsed(Duration::from_secs(60));
        assert!(short.check_request(&r).is_empty());
    }

    #[tokio::test]
    async fn fast_reader_is_fine() {
        let r = transfer(None, 8 << 20, Duration::ZERO).await;
        let f = SlowClientPolicy::new().check_request(&r);
        assert!(f.is_empty(), "{f:?} {:?}", r.delta);
        assert!(r.delta.bytes_acked.unwrap() >= 8 << 20);
    }

    #[tokio::test]
    async fn rtt_retransmits_and_backlog_thresholds() {
        let (_l, server, _client) = pair(None).await;
        let conn = server.connection().clone();
        let start = conn.snapshot().unwrap();
        let mut end = start;
        end.rtt = Some(Duration::from_millis(300));
        end.notsent_bytes = Some(2 << 20);
        end.segs_out = start.segs_out.map(|n| n + 100);
        end.total_retrans = start.total_retrans.map(|n| n + 10);
        let r = summary(&conn, start, end, Duration::from_millis(50));
        let all: Vec<_> = SlowClientPolicy::new()
            .check_request(&r)
            .reasons()
            .collect();
        // A backlog at the end of a response is no finding (only ticks check it).
        assert_eq!(all, [SlowReason::Retransmits, SlowReason::Rtt]);
        let f = SlowClientPolicy::new()
            .notsent_above(Some(1024))
            .check_request(&r);
        assert_eq!(f.reason_list(), "retransmits,rtt");
        assert_eq!(f.retransmit_ratio, Some(0.1));
        // Each threshold moves or disables its check.
        let p = SlowClientPolicy::new()
            .rtt_above(Some(Duration::from_millis(400)))
            .notsent_above(None)
            .min_segments(101);
        assert!(p.check_request(&r).is_empty());
        let p = SlowClientPolicy::new()
            .rtt_above(None)
            .notsent_above(Some(4 << 20))
            .retransmit_ratio_above(Some(0.2));
        assert!(p.check_request(&r).is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tick_rtt_of_a_handshake_only_connection_is_not_blamed_on_the_client() {
        let (_l, server, _client) = pair(None).await;
        let idle = server.connection().snapshot().unwrap();
        assert_eq!((idle.data_segs_out, idle.data_segs_in), (Some(0), Some(0)));
        let policy = SlowClientPolicy::new();
        // A SYN-ACK retransmit (accept-queue overflow) leaves a ~1 s handshake RTT.
        let mut handshake = idle;
        handshake.rtt = Some(Duration::from_millis(1020));
        assert!(policy.check_tick(&handshake).is_empty());
        // Once data has moved, the same RTT is the client's path and is reported.
        let mut talking = handshake;
        talking.data_segs_in = Some(1);
        let f = policy.check_tick(&talking);
        assert!(
            f.reasons().any(|r| r == SlowReason::Rtt),
            "{:?}",
            f.reasons().collect::<Vec<_>>()
        );
    }

    #[test]
    fn bucket_limits_and_reports_suppressed() {
        let p = SlowClientPolicy::new().log_rate(0, 3);
        assert_eq!(p.admit(), Some(0));
        assert_eq!(p.admit(), Some(0));
        assert_eq!(p.admit(), Some(0));
        for _ in 0..10 {
            assert_eq!(p.admit(), None);
        }
        // A clone shares the bucket.
        assert_eq!(p.clone().admit(), None);
        let p = p.log_rate(1000, 1);
        assert_eq!(p.admit(), Some(0));
        assert_eq!(p.admit(), None);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(p.admit(), Some(1));
        let off = SlowClientPolicy::new().log_rate(100, 0);
        assert_eq!(off.admit(), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn events_are_rate_limited_and_ticks_warn_once_per_reason() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        let _guard = tracing::subscriber::set_default(subscriber);

        let (_l, server, _client) = pair(None).await;
        let conn = server.connection().clone();
        let start = conn.snapshot().unwrap();
        let mut end = start;
        end.rtt = Some(Duration::from_millis(300));
        let r = summary(&conn, start, end, Duration::from_millis(10));

        let policy = SlowClientPolicy::new().log_rate(1000, 2);
        for _ in 0..5 {
            policy.on_request_end(&r, &Span::none());
        }
        let events = capture.events();
        assert_eq!(events.len(), 2, "{events:?}");
        let e = &events[0];
        assert_eq!(e["level"], "WARN");
        assert_eq!(e["reason"], "rtt");
        assert_eq!(e["source"], "request");
        assert_eq!(e["tcp.end_rtt_us"], "300000");
        assert_eq!(e["tcp.rtt_us"], us(start.rtt.unwrap()).to_string());
        assert_eq!(e["tcp.peer"], conn.peer_addr().to_string());
        assert_eq!(e["http.request.method"], "GET");
        assert_eq!(e["url.path"], "/big");
        assert_eq!(e["suppressed"], "0");
        assert_eq!(e["message"], "slow client");
        std::thread::sleep(Duration::from_millis(5));
        policy.on_request_end(&r, &Span::none());
        let events = capture.events();
        assert_eq!(events.len(), 3);
        assert_eq!(events[2]["suppressed"], "3");

        // Ticks: once per connection and reason.
        let policy = SlowClientPolicy::new().notsent_above(Some(1 << 20));
        let mut tick = conn.snapshot().unwrap();
        tick.rtt = Some(Duration::from_secs(1));
        // As if a request had arrived: a handshake-only RTT is not reported.
        tick.data_segs_in = Some(1);
        policy.on_tick(&conn, &tick);
        policy.on_tick(&conn, &tick);
        tick.notsent_bytes = Some(4 << 20);
        policy.on_tick(&conn, &tick);
        let events = capture.events();
        assert_eq!(events.len(), 5, "{events:?}");
        assert_eq!(events[3]["reason"], "rtt");
        assert_eq!(events[3]["source"], "tick");
        assert_eq!(events[4]["reason"], "notsent_backlog");
        assert_eq!(events[4]["tcp.notsent_bytes"], "4194304");
        // A connection mostly held back by the client's window while sending.
        tick.busy_time = Some(Duration::from_secs(2));
        tick.rwnd_limited = Some(Duration::from_secs(1));
        policy.on_tick(&conn, &tick);
        let events = capture.events();
        assert_eq!(events.len(), 6, "{events:?}");
        assert_eq!(events[5]["reason"], "rwnd_limited");
        assert_eq!(events[5]["tcp.rwnd_limited_us"], "1000000");
        assert_eq!(events[5]["tcp.busy_time_us"], "2000000");
        assert_eq!(events[5]["tcp.rwnd_limited_ratio"], "0.5");
        assert!(!events[5].contains_key("tcp.delta.rwnd_limited_us"));
        // After close the memory is gone.
        let closed = ConnectionSummary {
            duration: Duration::from_secs(1),
            requests: 0,
            requests_measured: 0,
            ticks: 3,
            bytes_sent: None,
            bytes_received: None,
            bytes_acked: None,
            bytes_retrans: None,
            segs_out: None,
            segs_in: None,
            total_retrans: None,
            min_rtt: None,
            mean_rtt: None,
            rtt_samples: 0,
            close_state: None,
        };
        policy.on_close(&conn, None, &closed);
        assert!(lock(&policy.state.warned).is_empty());
        drop(server);
    }
}
