//! What one HTTP request did on the wire: the TCP counters between the request's start
//! and the end of its response body, handed to every [`RequestObserver`].

use std::sync::Arc;
use std::time::Duration;

use crate::conn::Connection;
use crate::tcpinfo::Info;

/// How a response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyOutcome {
    /// The body was sent to its end.
    Completed,
    /// The inner service returned an error instead of a response.
    ServiceError,
    /// The body yielded an error part way.
    BodyError,
    /// The body (or the response future) was dropped before its end: client went away,
    /// connection reset, timeout, server shutdown.
    Cancelled,
}

impl BodyOutcome {
    /// `"completed"`, `"service_error"`, `"body_error"`, `"cancelled"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BodyOutcome::Completed => "completed",
            BodyOutcome::ServiceError => "service_error",
            BodyOutcome::BodyError => "body_error",
            BodyOutcome::Cancelled => "cancelled",
        }
    }
}

/// Change of the connection's TCP counters over one request (end − start).
///
/// Kernel counters only grow, but 32-bit ones wrap: differences are taken with
/// `wrapping_sub`. `None` where either snapshot lacks the field.
///
/// On HTTP/2 several requests share one connection at once: each request's delta then
/// covers everything the connection did while that request was in flight, including
/// its neighbours' traffic. On HTTP/1.1 keep-alive, requests are sequential and the
/// deltas are the request's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpDelta {
    /// Segments retransmitted during the request (`total_retrans`).
    pub retrans_segs: Option<u32>,
    /// Bytes retransmitted (Linux 4.19+).
    pub bytes_retrans: Option<u64>,
    /// Bytes sent, retransmissions included (Linux 4.19+).
    pub bytes_sent: Option<u64>,
    /// Bytes the peer acknowledged.
    pub bytes_acked: Option<u64>,
    /// Bytes received.
    pub bytes_received: Option<u64>,
    /// Segments sent.
    pub segs_out: Option<u32>,
    /// Segments received.
    pub segs_in: Option<u32>,
    /// Time the sender was limited by the peer's receive window (slow reader).
    pub rwnd_limited: Option<Duration>,
    /// Time the sender was limited by our send buffer.
    pub sndbuf_limited: Option<Duration>,
    /// Time spent sending data.
    pub busy_time: Option<Duration>,
}

impl TcpDelta {
    /// `end − start`, field by field.
    pub fn between(start: &Info, end: &Info) -> Self {
        fn d32(a: Option<u32>, b: Option<u32>) -> Option<u32> {
            Some(b?.wrapping_sub(a?))
        }
        fn d64(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            Some(b?.wrapping_sub(a?))
        }
        fn dd(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
            Some(b?.saturating_sub(a?))
        }
        TcpDelta {
            retrans_segs: d32(start.total_retrans, end.total_retrans),
            bytes_retrans: d64(start.bytes_retrans, end.bytes_retrans),
            bytes_sent: d64(start.bytes_sent, end.bytes_sent),
            bytes_acked: d64(start.bytes_acked, end.bytes_acked),
            bytes_received: d64(start.bytes_received, end.bytes_received),
            segs_out: d32(start.segs_out, end.segs_out),
            segs_in: d32(start.segs_in, end.segs_in),
            rwnd_limited: dd(start.rwnd_limited, end.rwnd_limited),
            sndbuf_limited: dd(start.sndbuf_limited, end.sndbuf_limited),
            busy_time: dd(start.busy_time, end.busy_time),
        }
    }

    /// Retransmitted / sent segments during the request, `None` without both or when
    /// nothing was sent.
    pub fn retransmit_ratio(&self) -> Option<f64> {
        let (sent, retrans) = (self.segs_out?, self.retrans_segs?);
        (sent > 0).then(|| f64::from(retrans) / f64::from(sent))
    }
}

/// One finished request, as seen by TCP: handed to [`RequestObserver::on_request_end`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestSummary {
    /// The connection the request arrived on.
    pub connection: Connection,
    /// The request's start snapshot: on HTTP/1.1 keep-alive the previous request's end
    /// snapshot, else a read when the request reached the layer (`None` if it failed).
    /// See [when the snapshots are taken](crate::layer#when-the-snapshots-are-taken).
    pub start: Option<Info>,
    /// Snapshot when the response had left the socket, or at the error or cancellation;
    /// the close snapshot if the connection closed first (`None` if it failed). See
    /// [when the snapshots are taken](crate::layer#when-the-snapshots-are-taken).
    pub end: Option<Info>,
    /// `end − start` (all `None` without both snapshots).
    pub delta: TcpDelta,
    /// From the request reaching the layer to the end snapshot.
    pub elapsed: Duration,
    /// How the body ended.
    pub outcome: BodyOutcome,
    /// Requests in flight on the same connection when this one started (HTTP/2
    /// multiplexing; 0 for HTTP/1.1). Deltas of concurrent requests overlap.
    pub concurrent: u32,
    /// HTTP method.
    pub method: http::Method,
    /// Request path (no query string).
    pub path: Arc<str>,
}

/// Called at the end of every request that [`TcpInfoLayer`](crate::TcpInfoLayer)
/// measured on a tracked connection (all of them unless
/// [`sample_one_in`](crate::TcpInfoLayer::sample_one_in) says otherwise), once, after
/// the end snapshot. Runs inline on the connection's
/// task (in its write path, or in a small task polling a socket that is still sending
/// the response): keep it short, non-blocking, and don't panic. `span` is the request's
/// span (the current span at request start, or the layer's own).
pub trait RequestObserver: Send + Sync + 'static {
    /// A request's response body ended (or was cancelled).
    fn on_request_end(&self, request: &RequestSummary, span: &tracing::Span);
}

impl<T: RequestObserver + ?Sized> RequestObserver for Arc<T> {
    fn on_request_end(&self, request: &RequestSummary, span: &tracing::Span) {
        (**self).on_request_end(request, span);
    }
}
