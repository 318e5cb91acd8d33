//! The names of every per-request field, in one place, and the code that records them.
//!
//! Units follow the crate's field convention (see the `conn` module docs): counts and
//! sizes `i64`, round-trip-like times `i64` microseconds (`_us`), long durations `f64`
//! seconds (`_s`), rates `_bytes_per_s`; a value the platform lacks is not recorded.

use std::time::Duration;

use tracing::{Level, Span};

use super::request::{BodyOutcome, TcpDelta};
use crate::conn::span::{i64_of, us};
use crate::tcpinfo::Info;

/// `i64`: [`Connection::id`](crate::Connection::id), shared with the `tcp.connection`
/// span.
pub const CONN_ID: &str = "tcp.conn_id";
/// `i64` µs: smoothed RTT at request start (`tcpi_rtt`).
pub const RTT_US: &str = "tcp.rtt_us";
/// `i64` µs: RTT variance at request start (`tcpi_rttvar`).
pub const RTT_VAR_US: &str = "tcp.rtt_var_us";
/// `i64` µs: the connection's minimum RTT so far, at request start (`tcpi_min_rtt`).
pub const MIN_RTT_US: &str = "tcp.min_rtt_us";
/// `i64` segments: congestion window at request start (`tcpi_snd_cwnd`).
pub const CWND_SEGS: &str = "tcp.cwnd_segs";
/// `i64`: this is the n-th request on its connection (1 for the first).
pub const REQUESTS_ON_CONN: &str = "tcp.requests_on_conn";
/// `i64`: other requests in flight on the same connection when this one started
/// (HTTP/2 streams; 0 on HTTP/1.1).
pub const CONCURRENT: &str = "tcp.concurrent";
/// `i64` segments retransmitted during the request (`tcpi_total_retrans` delta).
pub const DELTA_RETRANS_SEGS: &str = "tcp.delta.retrans_segs";
/// `i64` segments sent during the request (`tcpi_segs_out` delta).
pub const DELTA_SEGS_OUT: &str = "tcp.delta.segs_out";
/// `i64` segments received during the request (`tcpi_segs_in` delta).
pub const DELTA_SEGS_IN: &str = "tcp.delta.segs_in";
/// `i64` bytes sent, retransmissions included (`tcpi_bytes_sent` delta, Linux 4.19+).
pub const DELTA_BYTES_SENT: &str = "tcp.delta.bytes_sent";
/// `i64` bytes the peer acknowledged (`tcpi_bytes_acked` delta).
pub const DELTA_BYTES_ACKED: &str = "tcp.delta.bytes_acked";
/// `i64` bytes received (`tcpi_bytes_received` delta).
pub const DELTA_BYTES_RECEIVED: &str = "tcp.delta.bytes_received";
/// `i64` bytes retransmitted (`tcpi_bytes_retrans` delta, Linux 4.19+).
pub const DELTA_BYTES_RETRANS: &str = "tcp.delta.bytes_retrans";
/// `i64` µs the sender was limited by the peer's receive window (`tcpi_rwnd_limited`
/// delta): a slow reader.
pub const DELTA_RWND_LIMITED_US: &str = "tcp.delta.rwnd_limited_us";
/// `i64` µs the sender was limited by our send buffer (`tcpi_sndbuf_limited` delta).
pub const DELTA_SNDBUF_LIMITED_US: &str = "tcp.delta.sndbuf_limited_us";
/// `i64` bytes/s: the kernel's latest delivery-rate estimate at the end snapshot
/// (`tcpi_delivery_rate`).
pub const DELIVERY_RATE_BYTES_PER_S: &str = "tcp.delivery_rate_bytes_per_s";
/// `i64` µs: smoothed RTT at the end snapshot.
pub const END_RTT_US: &str = "tcp.end_rtt_us";
/// `str`: how the response ended, [`BodyOutcome::as_str`] (`"completed"`,
/// `"service_error"`, `"body_error"`, `"cancelled"`).
pub const OUTCOME: &str = "tcp.outcome";
/// `f64` seconds from the request reaching the layer to the end snapshot.
pub const ELAPSED_S: &str = "tcp.elapsed_s";

/// Every field the layer records, in recording order: the first
/// [`START_FIELDS`]`.len()` at request start, the rest at the end snapshot.
pub const ALL: &[&str] = &[
    CONN_ID,
    RTT_US,
    RTT_VAR_US,
    MIN_RTT_US,
    CWND_SEGS,
    REQUESTS_ON_CONN,
    CONCURRENT,
    DELTA_RETRANS_SEGS,
    DELTA_SEGS_OUT,
    DELTA_SEGS_IN,
    DELTA_BYTES_SENT,
    DELTA_BYTES_ACKED,
    DELTA_BYTES_RECEIVED,
    DELTA_BYTES_RETRANS,
    DELTA_RWND_LIMITED_US,
    DELTA_SNDBUF_LIMITED_US,
    DELIVERY_RATE_BYTES_PER_S,
    END_RTT_US,
    OUTCOME,
    ELAPSED_S,
];

/// The fields recorded when the request reaches the layer.
pub const START_FIELDS: &[&str] = &[
    CONN_ID,
    RTT_US,
    RTT_VAR_US,
    MIN_RTT_US,
    CWND_SEGS,
    REQUESTS_ON_CONN,
    CONCURRENT,
];

/// Name of the layer's own span and of the per-request event.
pub const REQUEST: &str = "tcp.request";

/// Creates a span that declares every `tcp.*` field of
/// [`TcpInfoLayer`](crate::TcpInfoLayer) (as `Empty`), followed by your own fields.
///
/// `tracing` records only the fields a span declared when it was created. The layer
/// records its fields on the *current* span (for example `tower_http`'s `TraceLayer`
/// span), so make that span with this macro to get them as span attributes (in an
/// OpenTelemetry exporter, for instance). The same values are always also in the
/// `tcp.request` event, whatever the span declares.
///
/// Same arguments as [`tracing::span!`] with a constant level and a name, then your
/// fields (at most 12: `tracing` allows 32 per span, the layer declares 20).
///
/// ```
/// use tracing::Level;
/// let request = http::Request::new(());
/// let span = conniver::request_span!(
///     Level::INFO,
///     "request",
///     method = %request.method(),
///     uri = %request.uri(),
/// );
/// # let _ = span;
/// ```
///
/// With `tower_http::trace::TraceLayer` (put `TcpInfoLayer` *inside* it, so that the
/// trace span is current when `TcpInfoLayer` sees the request):
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::{Router, body::Body, routing::get};
/// use http::Request;
/// use tower_http::trace::TraceLayer;
/// use tracing::Level;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(conniver::TcpInfoLayer::new())
///     .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
///         conniver::request_span!(Level::INFO, "request", method = %req.method(), uri = %req.uri())
///     }));
/// # }
/// ```
#[macro_export]
macro_rules! request_span {
    ($level:expr, $name:expr $(,)?) => {
        $crate::request_span!($level, $name,)
    };
    ($level:expr, $name:expr, $($fields:tt)*) => {
        $crate::layer::__tracing::span!(
            $level,
            $name,
            { $crate::layer::fields::CONN_ID } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::RTT_US } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::RTT_VAR_US } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::MIN_RTT_US } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::CWND_SEGS } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::REQUESTS_ON_CONN } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::CONCURRENT } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_RETRANS_SEGS } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_SEGS_OUT } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_SEGS_IN } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_BYTES_SENT } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_BYTES_ACKED } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_BYTES_RECEIVED } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_BYTES_RETRANS } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_RWND_LIMITED_US } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELTA_SNDBUF_LIMITED_US } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::DELIVERY_RATE_BYTES_PER_S } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::END_RTT_US } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::OUTCOME } = $crate::layer::__tracing::field::Empty,
            { $crate::layer::fields::ELAPSED_S } = $crate::layer::__tracing::field::Empty,
            $($fields)*
        )
    };
}

/// The values known when the request reaches the layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StartValues {
    conn_id: i64,
    rtt_us: Option<i64>,
    rtt_var_us: Option<i64>,
    min_rtt_us: Option<i64>,
    cwnd_segs: Option<i64>,
    requests_on_conn: i64,
    concurrent: i64,
}

impl StartValues {
    pub(crate) fn new(conn_id: u64, start: Option<&Info>, nth: u64, concurrent: u32) -> Self {
        StartValues {
            conn_id: i64_of(conn_id),
            rtt_us: start.and_then(|i| i.rtt).map(us),
            rtt_var_us: start.and_then(|i| i.rtt_var).map(us),
            min_rtt_us: start.and_then(|i| i.min_rtt).map(us),
            cwnd_segs: start.and_then(|i| i.cwnd_segs).map(i64::from),
            requests_on_conn: i64_of(nth),
            concurrent: i64::from(concurrent),
        }
    }

    /// Records the start fields on `span` (ignored for fields it did not declare).
    pub(crate) fn record(&self, span: &Span) {
        span.record(CONN_ID, self.conn_id);
        span.record(RTT_US, self.rtt_us);
        span.record(RTT_VAR_US, self.rtt_var_us);
        span.record(MIN_RTT_US, self.min_rtt_us);
        span.record(CWND_SEGS, self.cwnd_segs);
        span.record(REQUESTS_ON_CONN, self.requests_on_conn);
        span.record(CONCURRENT, self.concurrent);
    }
}

/// The values known at the end snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndValues {
    retrans_segs: Option<i64>,
    segs_out: Option<i64>,
    segs_in: Option<i64>,
    bytes_sent: Option<i64>,
    bytes_acked: Option<i64>,
    bytes_received: Option<i64>,
    bytes_retrans: Option<i64>,
    rwnd_limited_us: Option<i64>,
    sndbuf_limited_us: Option<i64>,
    delivery_rate: Option<i64>,
    end_rtt_us: Option<i64>,
    outcome: &'static str,
    elapsed_s: f64,
}

impl EndValues {
    pub(crate) fn new(
        delta: &TcpDelta,
        end: Option<&Info>,
        outcome: BodyOutcome,
        elapsed: Duration,
    ) -> Self {
        EndValues {
            retrans_segs: delta.retrans_segs.map(i64::from),
            segs_out: delta.segs_out.map(i64::from),
            segs_in: delta.segs_in.map(i64::from),
            bytes_sent: delta.bytes_sent.map(i64_of),
            bytes_acked: delta.bytes_acked.map(i64_of),
            bytes_received: delta.bytes_received.map(i64_of),
            bytes_retrans: delta.bytes_retrans.map(i64_of),
            rwnd_limited_us: delta.rwnd_limited.map(us),
            sndbuf_limited_us: delta.sndbuf_limited.map(us),
            delivery_rate: end.and_then(|i| i.delivery_rate).map(i64_of),
            end_rtt_us: end.and_then(|i| i.rtt).map(us),
            outcome: outcome.as_str(),
            elapsed_s: elapsed.as_secs_f64(),
        }
    }

    /// Records the end fields on `span` (ignored for fields it did not declare).
    pub(crate) fn record(&self, span: &Span) {
        span.record(DELTA_RETRANS_SEGS, self.retrans_segs);
        span.record(DELTA_SEGS_OUT, self.segs_out);
        span.record(DELTA_SEGS_IN, self.segs_in);
        span.record(DELTA_BYTES_SENT, self.bytes_sent);
        span.record(DELTA_BYTES_ACKED, self.bytes_acked);
        span.record(DELTA_BYTES_RECEIVED, self.bytes_received);
        span.record(DELTA_BYTES_RETRANS, self.bytes_retrans);
        span.record(DELTA_RWND_LIMITED_US, self.rwnd_limited_us);
        span.record(DELTA_SNDBUF_LIMITED_US, self.sndbuf_limited_us);
        span.record(DELIVERY_RATE_BYTES_PER_S, self.delivery_rate);
        span.record(END_RTT_US, self.end_rtt_us);
        span.record(OUTCOME, self.outcome);
        span.record(ELAPSED_S, self.elapsed_s);
    }
}

/// The layer's own span, at `level`, declaring every field.
pub(crate) fn own_span(level: Level, method: &http::Method, path: &str) -> Span {
    macro_rules! at {
        ($lvl:expr) => {
            crate::request_span!($lvl, REQUEST, http.request.method = %method, url.path = path)
        };
    }
    match level {
        Level::ERROR => at!(Level::ERROR),
        Level::WARN => at!(Level::WARN),
        Level::INFO => at!(Level::INFO),
        Level::DEBUG => at!(Level::DEBUG),
        _ => at!(Level::TRACE),
    }
}

/// Emits the `tcp.request` event, child of `span`, with every field.
pub(crate) fn emit(level: Level, span: &Span, s: &StartValues, e: &EndValues) {
    macro_rules! at {
        ($lvl:expr) => {
            tracing::event!(
                name: "tcp.request",
                target: "conniver::layer",
                parent: span,
                $lvl,
                { CONN_ID } = s.conn_id,
                { RTT_US } = s.rtt_us,
                { RTT_VAR_US } = s.rtt_var_us,
                { MIN_RTT_US } = s.min_rtt_us,
                { CWND_SEGS } = s.cwnd_segs,
                { REQUESTS_ON_CONN } = s.requests_on_conn,
                { CONCURRENT } = s.concurrent,
                { DELTA_RETRANS_SEGS } = e.retrans_segs,
                { DELTA_SEGS_OUT } = e.segs_out,
                { DELTA_SEGS_IN } = e.segs_in,
                { DELTA_BYTES_SENT } = e.bytes_sent,
                { DELTA_BYTES_ACKED } = e.bytes_acked,
                { DELTA_BYTES_RECEIVED } = e.bytes_received,
                { DELTA_BYTES_RETRANS } = e.bytes_retrans,
                { DELTA_RWND_LIMITED_US } = e.rwnd_limited_us,
                { DELTA_SNDBUF_LIMITED_US } = e.sndbuf_limited_us,
                { DELIVERY_RATE_BYTES_PER_S } = e.delivery_rate,
                { END_RTT_US } = e.end_rtt_us,
                { OUTCOME } = e.outcome,
                { ELAPSED_S } = e.elapsed_s,
                "tcp.request"
            )
        };
    }
    match level {
        Level::ERROR => at!(Level::ERROR),
        Level::WARN => at!(Level::WARN),
        Level::INFO => at!(Level::INFO),
        Level::DEBUG => at!(Level::DEBUG),
        _ => at!(Level::TRACE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_fields_are_the_head_of_all_and_names_are_unique() {
        assert_eq!(&ALL[..START_FIELDS.len()], START_FIELDS);
        let mut names = ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "duplicate field name");
        assert!(ALL.iter().all(|n| n.starts_with("tcp.")));
    }

    #[test]
    fn request_span_declares_every_field_in_order() {
        // A span has metadata only when some subscriber enabled it.
        let dispatch = tracing::Dispatch::new(tracing_subscriber_stub::Enabled);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = crate::request_span!(Level::INFO, "x", extra = 1,);
            let meta = span.metadata().expect("enabled");
            let names: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
            assert_eq!(&names[..ALL.len()], ALL);
            assert_eq!(names[ALL.len()..], ["extra"]);
            let own = own_span(Level::DEBUG, &http::Method::GET, "/p");
            let names: Vec<&str> = own
                .metadata()
                .expect("enabled")
                .fields()
                .iter()
                .map(|f| f.name())
                .collect();
            assert_eq!(&names[..ALL.len()], ALL);
            assert_eq!(names[ALL.len()..], ["http.request.method", "url.path"]);
        });
    }

    /// A subscriber that enables everything and records nothing.
    mod tracing_subscriber_stub {
        use tracing::span::{Attributes, Id, Record};
        use tracing::{Event, Metadata, Subscriber};

        pub(super) struct Enabled;

        impl Subscriber for Enabled {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, _: &Event<'_>) {}
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
    }
}
