//! The built-in `tracing` output of the accept loop: one root span per connection, an
//! event per tick, an event and span fields at close. All of it is here.
//!
//! # Field convention (shared with the HTTP layer: use the same names and units)
//! - Names are `tcp.<snake_case>`; one name means one thing everywhere (span fields,
//!   events, request spans).
//! - Counts and sizes are `i64` (`tcp.bytes_sent`, `tcp.total_retrans`), saturating at
//!   `i64::MAX`: `tracing-opentelemetry` exports `u64` as strings.
//! - Round-trip-like times are `i64` **microseconds**, suffix `_us` (`tcp.rtt_us`,
//!   `tcp.min_rtt_us`): the kernel's own resolution, exact in an integer.
//! - Long durations are `f64` **seconds**, suffix `_s` (`tcp.duration_s`).
//! - Rates are `i64` bytes per second, suffix `_bytes_per_s`.
//! - States and names are strings: `tcp.state` / `tcp.close_state` (`"ESTABLISHED"`),
//!   `tcp.congestion_control` (`"cubic"`).
//! - The connection is `tcp.conn_id` (`i64`, [`Connection::id`]); addresses are
//!   `tcp.peer` and `tcp.local` (`"192.0.2.1:51234"`).
//! - A value the platform does not provide is left out, never recorded as `0`.
//!
//! # What is emitted
//! - Span `tcp.connection` (level INFO, `parent: None`: a root span, so a trace viewer
//!   does not draw a 10-minute trace; request spans link to it with `follows_from`).
//!   Fields at accept: `tcp.conn_id`, `tcp.peer`, `tcp.local`, `tcp.congestion_control`,
//!   `tcp.accept_rtt_us`. Recorded at close: `tcp.duration_s`, `tcp.requests`,
//!   `tcp.requests_measured` (those `TcpInfoLayer` measured), `tcp.bytes_sent`,
//!   `tcp.bytes_received`, `tcp.bytes_acked`, `tcp.bytes_retrans`, `tcp.segs_out`,
//!   `tcp.segs_in`, `tcp.total_retrans`, `tcp.min_rtt_us`, `tcp.mean_rtt_us`,
//!   `tcp.close_state`.
//! - Event `tcp.tick` (level from `tick_level`, parent the connection span): `tcp.state`,
//!   `tcp.rtt_us`, `tcp.rtt_var_us`, `tcp.min_rtt_us`, `tcp.cwnd_segs`, `tcp.unacked`,
//!   `tcp.total_retrans`, `tcp.bytes_sent`, `tcp.bytes_received`, `tcp.bytes_acked`,
//!   `tcp.notsent_bytes`, `tcp.delivery_rate_bytes_per_s`.
//! - Event `tcp.close` (same level, same parent): the summary fields above.
//!
//! The span stays open while any [`Connection`] clone holds it (for example a request
//! still in flight); its close fields are recorded when the stream is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::field::Empty;
use tracing::{Level, Span};

use super::{Connection, ConnectionSummary};
use crate::tcpinfo::Info;
use crate::tcpinfo::linux::CongestionControl;

/// `u64` → `i64`, saturating (span fields are `i64`, see the module docs).
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A duration as `i64` microseconds, saturating.
pub(crate) fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The root span of a new connection.
pub(crate) fn connection_span(
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    congestion_control: Option<&CongestionControl>,
    accept: Option<&Info>,
) -> Span {
    tracing::info_span!(
        parent: None,
        "tcp.connection",
        tcp.conn_id = i64_of(id),
        tcp.peer = %peer,
        tcp.local = %local,
        tcp.congestion_control = congestion_control.map(CongestionControl::as_str),
        tcp.accept_rtt_us = accept.and_then(|i| i.rtt).map(us),
        tcp.duration_s = Empty,
        tcp.requests = Empty,
        tcp.requests_measured = Empty,
        tcp.bytes_sent = Empty,
        tcp.bytes_received = Empty,
        tcp.bytes_acked = Empty,
        tcp.bytes_retrans = Empty,
        tcp.segs_out = Empty,
        tcp.segs_in = Empty,
        tcp.total_retrans = Empty,
        tcp.min_rtt_us = Empty,
        tcp.mean_rtt_us = Empty,
        tcp.close_state = Empty,
    )
}

/// `tracing::event!` at a level chosen at run time: the macro needs a constant level, so
/// this expands it once per level.
macro_rules! event_at {
    ($level:expr, name: $name:literal, parent: $parent:expr, $($fields:tt)*) => {
        match $level {
            Level::ERROR => tracing::event!(name: $name, parent: $parent, Level::ERROR, $($fields)*),
            Level::WARN => tracing::event!(name: $name, parent: $parent, Level::WARN, $($fields)*),
            Level::INFO => tracing::event!(name: $name, parent: $parent, Level::INFO, $($fields)*),
            Level::DEBUG => tracing::event!(name: $name, parent: $parent, Level::DEBUG, $($fields)*),
            _ => tracing::event!(name: $name, parent: $parent, Level::TRACE, $($fields)*),
        }
    };
}

/// The `tcp.tick` event of one periodic snapshot.
pub(crate) fn tick(conn: &Connection, info: &Info, level: Level) {
    let span = conn.span();
    if span.is_none() {
        return;
    }
    event_at!(
            level,
            name: "tcp.tick",
            parent: span,
            tcp.conn_id = i64_of(conn.id()),
            tcp.state = info.state.map(|s| s.as_str()),
            tcp.rtt_us = info.rtt.map(us),
            tcp.rtt_var_us = info.rtt_var.map(us),
            tcp.min_rtt_us = info.min_rtt.map(us),
            tcp.cwnd_segs = info.cwnd_segs.map(i64::from),
            tcp.unacked = info.unacked.map(i64::from),
            tcp.total_retrans = info.total_retrans.map(i64::from),
            tcp.bytes_sent = info.bytes_sent.map(i64_of),
            tcp.bytes_received = info.bytes_received.map(i64_of),
            tcp.bytes_acked = info.bytes_acked.map(i64_of),
            tcp.notsent_bytes = info.notsent_bytes.map(i64::from),
            tcp.delivery_rate_bytes_per_s = info.delivery_rate.map(i64_of),
            "tcp.tick"
    );
}

/// Records the close fields on the span and emits the `tcp.close` event.
pub(crate) fn close(conn: &Connection, s: &ConnectionSummary, level: Level) {
    let span = conn.span();
    if span.is_none() {
        return;
    }
    let duration_s = s.duration.as_secs_f64();
    let requests = i64_of(s.requests);
    let requests_measured = i64_of(s.requests_measured);
    let bytes_sent = s.bytes_sent.map(i64_of);
    let bytes_received = s.bytes_received.map(i64_of);
    let bytes_acked = s.bytes_acked.map(i64_of);
    let bytes_retrans = s.bytes_retrans.map(i64_of);
    let segs_out = s.segs_out.map(i64::from);
    let segs_in = s.segs_in.map(i64::from);
    let total_retrans = s.total_retrans.map(i64::from);
    let min_rtt_us = s.min_rtt.map(us);
    let mean_rtt_us = s.mean_rtt.map(us);
    let close_state = s.close_state.map(|st| st.as_str());

    span.record("tcp.duration_s", duration_s);
    span.record("tcp.requests", requests);
    span.record("tcp.requests_measured", requests_measured);
    span.record("tcp.bytes_sent", bytes_sent);
    span.record("tcp.bytes_received", bytes_received);
    span.record("tcp.bytes_acked", bytes_acked);
    span.record("tcp.bytes_retrans", bytes_retrans);
    span.record("tcp.segs_out", segs_out);
    span.record("tcp.segs_in", segs_in);
    span.record("tcp.total_retrans", total_retrans);
    span.record("tcp.min_rtt_us", min_rtt_us);
    span.record("tcp.mean_rtt_us", mean_rtt_us);
    span.record("tcp.close_state", close_state);

    event_at!(
            level,
            name: "tcp.close",
            parent: span,
            tcp.conn_id = i64_of(conn.id()),
            tcp.duration_s = duration_s,
            tcp.requests = requests,
            tcp.requests_measured = requests_measured,
            tcp.bytes_sent = bytes_sent,
            tcp.bytes_received = bytes_received,
            tcp.bytes_acked = bytes_acked,
            tcp.bytes_retrans = bytes_retrans,
            tcp.segs_out = segs_out,
            tcp.segs_in = segs_in,
            tcp.total_retrans = total_retrans,
            tcp.min_rtt_us = min_rtt_us,
            tcp.mean_rtt_us = mean_rtt_us,
            tcp.close_state = close_state,
            "tcp.close"
    );
}
