//! Hooks into a connection's life: accept, periodic tick, close.

use std::sync::Arc;
use std::time::Duration;

use super::Connection;
use crate::tcpinfo::{Info, TcpState};

/// Callbacks for the life of every connection a [`TcpInfoListener`](crate::TcpInfoListener)
/// accepts. Register with
/// [`TcpInfoListenerBuilder::observer`](crate::TcpInfoListenerBuilder::observer); every
/// method has an empty default.
///
/// # When the callbacks are called
/// - [`on_accept`](Self::on_accept): once, inside `accept`, before the stream is handed
///   to the server and before the connection can be sampled.
/// - [`on_tick`](Self::on_tick): from the listener's sampler task, once per tick interval
///   per open connection (never after `on_close`).
/// - [`on_close`](Self::on_close): once, from the `Drop` of the
///   [`TrackedStream`](crate::TrackedStream), after the close snapshot and while the
///   socket is still open (so it precedes the end of a graceful shutdown).
///
/// For one connection the calls never overlap and come in that order. Different
/// connections are reported concurrently from different threads.
///
/// Callbacks run on the accept path, the sampler task or a connection task: keep them
/// short and non-blocking, and don't panic. They may call any [`Connection`] method,
/// including [`Connection::snapshot`].
pub trait ConnectionObserver: Send + Sync + 'static {
    /// A connection was accepted; `info` is the accept snapshot (`None` if it failed or
    /// the platform has no TCP info).
    fn on_accept(&self, conn: &Connection, info: Option<&Info>) {
        let _ = (conn, info);
    }

    /// A periodic snapshot of an open connection.
    fn on_tick(&self, conn: &Connection, info: &Info) {
        let _ = (conn, info);
    }

    /// The connection's stream was dropped; `info` is the close snapshot, taken just
    /// before the socket closed (`None` if it failed). `summary` condenses the
    /// connection's life.
    fn on_close(&self, conn: &Connection, info: Option<&Info>, summary: &ConnectionSummary) {
        let _ = (conn, info, summary);
    }
}

impl<T: ConnectionObserver + ?Sized> ConnectionObserver for Arc<T> {
    fn on_accept(&self, conn: &Connection, info: Option<&Info>) {
        (**self).on_accept(conn, info);
    }

    fn on_tick(&self, conn: &Connection, info: &Info) {
        (**self).on_tick(conn, info);
    }

    fn on_close(&self, conn: &Connection, info: Option<&Info>, summary: &ConnectionSummary) {
        (**self).on_close(conn, info, summary);
    }
}

/// A connection's life in a few numbers, handed to
/// [`ConnectionObserver::on_close`] and recorded on the `tcp.connection` span.
///
/// Counters come from the close snapshot (or, if that failed, the most recent one);
/// `None` where the platform or kernel does not provide them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ConnectionSummary {
    /// From accept to close.
    pub duration: Duration,
    /// Requests served (counted by `TcpInfoLayer` through
    /// [`Connection::record_request`]).
    pub requests: u64,
    /// Of those, the requests `TcpInfoLayer` measured (all of them unless it samples:
    /// see `TcpInfoLayer::max_measured_per_second`).
    pub requests_measured: u64,
    /// Periodic snapshots taken.
    pub ticks: u64,
    /// Bytes sent, retransmissions included.
    pub bytes_sent: Option<u64>,
    /// Bytes received.
    pub bytes_received: Option<u64>,
    /// Bytes acknowledged by the peer.
    pub bytes_acked: Option<u64>,
    /// Bytes retransmitted.
    pub bytes_retrans: Option<u64>,
    /// Segments sent.
    pub segs_out: Option<u32>,
    /// Segments received.
    pub segs_in: Option<u32>,
    /// Segments retransmitted over the connection's life.
    pub total_retrans: Option<u32>,
    /// The smallest RTT the kernel saw (its `min_rtt`), or else the smallest smoothed RTT
    /// among the snapshots taken.
    pub min_rtt: Option<Duration>,
    /// Mean of the smoothed RTT over all snapshots taken (accept, ticks, requests,
    /// close).
    pub mean_rtt: Option<Duration>,
    /// How many snapshots `mean_rtt` averages.
    pub rtt_samples: u32,
    /// TCP state at close (for example `ESTABLISHED` when we close first, `CLOSE_WAIT`
    /// when the peer did).
    pub close_state: Option<TcpState>,
}
