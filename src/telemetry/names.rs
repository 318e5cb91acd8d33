//! Every metric name, unit, attribute key and bucket boundary the crate uses, in one
//! place.
//!
//! OpenTelemetry names use dots (`tcp.connection.rtt`); the Prometheus exporter turns the
//! dots into underscores, appends the unit (`s` → `_seconds`, `By` → `_bytes`, `1` →
//! `_ratio`; annotations in braces such as `{segment}` add nothing) and `_total` to
//! counters. The Prometheus name of each instrument is given in its documentation, and
//! [`ALL`] lists them all.
//!
//! Names are chosen so that the Prometheus name does not repeat its unit: the bytes sent
//! over a connection are `tcp.connection.sent` (unit `By`) →
//! `tcp_connection_sent_bytes`, the fraction of segments retransmitted is
//! `tcp.connection.retransmit` (unit `1`) → `tcp_connection_retransmit_ratio`.
//!
//! There is no stable OpenTelemetry semantic convention for TCP yet; the attributes
//! follow the `network.*`/`server.*` conventions where one exists.

/// The instrumentation scope (meter name) of every instrument: `otel_scope_name` in
/// Prometheus.
pub const SCOPE: &str = "conniver";

// ---------------------------------------------------------------------------------------
// Units (UCUM, as OpenTelemetry wants them).

/// Seconds.
pub const UNIT_SECONDS: &str = "s";
/// Bytes.
pub const UNIT_BYTES: &str = "By";
/// A dimensionless ratio in `[0, 1]`.
pub const UNIT_RATIO: &str = "1";
/// Connections (an annotation: no Prometheus suffix).
pub const UNIT_CONNECTIONS: &str = "{connection}";
/// TCP segments (an annotation: no Prometheus suffix).
pub const UNIT_SEGMENTS: &str = "{segment}";
/// Slow-client warnings (an annotation: no Prometheus suffix).
pub const UNIT_WARNINGS: &str = "{warning}";

// ---------------------------------------------------------------------------------------
// Connection instruments (recorded by `TcpMetrics` as a `ConnectionObserver`).

/// Counter: connections accepted. Prometheus `tcp_connection_opened_total`.
pub const CONNECTION_OPENED: &str = "tcp.connection.opened";
/// Counter: connections closed, with attribute [`ATTR_CLOSE_STATE`]. Prometheus
/// `tcp_connection_closed_total`.
pub const CONNECTION_CLOSED: &str = "tcp.connection.closed";
/// UpDownCounter: connections open now. Prometheus `tcp_connection_active` (a gauge).
pub const CONNECTION_ACTIVE: &str = "tcp.connection.active";
/// Histogram, seconds: from accept to close. Prometheus `tcp_connection_duration_seconds`.
pub const CONNECTION_DURATION: &str = "tcp.connection.duration";
/// Histogram, seconds: the kernel's smoothed RTT, sampled at accept, at every tick and at
/// close. Prometheus `tcp_connection_rtt_seconds`.
pub const CONNECTION_RTT: &str = "tcp.connection.rtt";
/// Histogram, seconds: the connection's minimum RTT, once at close. Prometheus
/// `tcp_connection_min_rtt_seconds`.
pub const CONNECTION_MIN_RTT: &str = "tcp.connection.min_rtt";
/// Histogram, bytes: bytes sent over the connection (retransmissions included), once at
/// close. Prometheus `tcp_connection_sent_bytes`.
pub const CONNECTION_SENT: &str = "tcp.connection.sent";
/// Histogram, bytes: bytes received over the connection, once at close. Prometheus
/// `tcp_connection_received_bytes`.
pub const CONNECTION_RECEIVED: &str = "tcp.connection.received";
/// Histogram, segments: segments retransmitted over the connection, once at close.
/// Prometheus `tcp_connection_retransmits`.
pub const CONNECTION_RETRANSMITS: &str = "tcp.connection.retransmits";
/// Histogram, ratio: retransmitted / sent segments of the connection, once at close
/// (connections that sent nothing are not recorded). Prometheus
/// `tcp_connection_retransmit_ratio`.
pub const CONNECTION_RETRANSMIT: &str = "tcp.connection.retransmit";
/// Histogram, segments: the congestion window, sampled at every tick and at close.
/// Prometheus `tcp_connection_cwnd`.
pub const CONNECTION_CWND: &str = "tcp.connection.cwnd";

// ---------------------------------------------------------------------------------------
// Request instruments (recorded by `TcpMetrics` as a `RequestObserver`).

/// Histogram, seconds: the smoothed RTT when the response ended (or, without that
/// snapshot, when the request started), once per request. Prometheus
/// `tcp_request_rtt_seconds`.
pub const REQUEST_RTT: &str = "tcp.request.rtt";
/// Histogram, segments: segments retransmitted while the request was in flight, once
/// per request. Prometheus `tcp_request_retransmits`.
pub const REQUEST_RETRANSMITS: &str = "tcp.request.retransmits";
/// Histogram, ratio: the fraction of the request's time (start to end of the response
/// body) during which sending was limited by the client's receive window — a slow
/// reader. Prometheus `tcp_request_rwnd_limited_ratio`.
pub const REQUEST_RWND_LIMITED: &str = "tcp.request.rwnd_limited";

// ---------------------------------------------------------------------------------------
// Slow-client policy.

/// Counter: slow-client findings, one per reason per offending request or connection,
/// counted even when the log line is rate-limited away; attribute [`ATTR_REASON`].
/// Prometheus `tcp_slow_client_warnings_total`.
pub const SLOW_CLIENT_WARNINGS: &str = "tcp.slow_client.warnings";

// ---------------------------------------------------------------------------------------
// Attributes.

/// `"ipv4"` or `"ipv6"` (of the peer; IPv4-mapped IPv6 addresses count as `"ipv4"`).
/// Prometheus label `network_type`.
pub const ATTR_NETWORK_TYPE: &str = "network.type";
/// The local (listening) port. Prometheus label `server_port`.
pub const ATTR_SERVER_PORT: &str = "server.port";
/// The congestion-control algorithm (`"cubic"`, `"bbr"`…), when the platform reports it.
/// Prometheus label `tcp_congestion_control`.
pub const ATTR_CONGESTION_CONTROL: &str = "tcp.congestion_control";
/// The peer's IP address, **only** when enabled with `TcpMetrics::with_peer_address`:
/// one time series per client address. Prometheus label `network_peer_address`.
pub const ATTR_PEER_ADDRESS: &str = "network.peer.address";
/// The TCP state when the connection closed (`"ESTABLISHED"`: we closed first;
/// `"CLOSE_WAIT"`: the peer did), on [`CONNECTION_CLOSED`] only. Prometheus label
/// `tcp_close_state`.
pub const ATTR_CLOSE_STATE: &str = "tcp.close_state";
/// Why a client was found slow (see `SlowReason`), on [`SLOW_CLIENT_WARNINGS`] only.
pub const ATTR_REASON: &str = "reason";

// ---------------------------------------------------------------------------------------
// Bucket boundaries.

/// Round-trip times, seconds: 100 µs … 10 s (datacenter to satellite).
pub const RTT_BOUNDARIES: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

/// Connection lifetimes, seconds: 1 ms … 1 h.
pub const DURATION_BOUNDARIES: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Bytes per connection: 0, then 1 KiB × 4ⁿ up to 4 GiB.
pub const BYTES_BOUNDARIES: &[f64] = &[
    0.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

/// Retransmitted segments per connection or request: 0, 1, 2, 5 … 10 000.
pub const RETRANSMITS_BOUNDARIES: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 10000.0,
];

/// Ratios: 0, 0.1 %, 0.5 %, 1 %, 2 %, 5 %, 10 %, 20 %, 30 %, 50 %, 75 %, 100 %.
pub const RATIO_BOUNDARIES: &[f64] = &[
    0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0,
];

/// Congestion window, segments: 1 … 10 000 (10 is Linux's initial window).
pub const CWND_BOUNDARIES: &[f64] = &[
    1.0, 2.0, 4.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0, 10000.0,
];

// ---------------------------------------------------------------------------------------

/// One instrument: its names, unit, kind and boundaries.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MetricName {
    /// OpenTelemetry name.
    pub otel: &'static str,
    /// Name in the Prometheus exposition (for histograms, the `_bucket`/`_sum`/`_count`
    /// base).
    pub prometheus: &'static str,
    /// UCUM unit.
    pub unit: &'static str,
    /// `"counter"`, `"updowncounter"` or `"histogram"`.
    pub kind: &'static str,
    /// Explicit bucket boundaries of a histogram (empty otherwise).
    pub boundaries: &'static [f64],
}

const fn m(
    otel: &'static str,
    prometheus: &'static str,
    unit: &'static str,
    kind: &'static str,
    boundaries: &'static [f64],
) -> MetricName {
    MetricName {
        otel,
        prometheus,
        unit,
        kind,
        boundaries,
    }
}

/// Every instrument the crate creates.
pub const ALL: &[MetricName] = &[
    m(
        CONNECTION_OPENED,
        "tcp_connection_opened_total",
        UNIT_CONNECTIONS,
        "counter",
        &[],
    ),
    m(
        CONNECTION_CLOSED,
        "tcp_connection_closed_total",
        UNIT_CONNECTIONS,
        "counter",
        &[],
    ),
    m(
        CONNECTION_ACTIVE,
        "tcp_connection_active",
        UNIT_CONNECTIONS,
        "updowncounter",
        &[],
    ),
    m(
        CONNECTION_DURATION,
        "tcp_connection_duration_seconds",
        UNIT_SECONDS,
        "histogram",
        DURATION_BOUNDARIES,
    ),
    m(
        CONNECTION_RTT,
        "tcp_connection_rtt_seconds",
        UNIT_SECONDS,
        "histogram",
        RTT_BOUNDARIES,
    ),
    m(
        CONNECTION_MIN_RTT,
        "tcp_connection_min_rtt_seconds",
        UNIT_SECONDS,
        "histogram",
        RTT_BOUNDARIES,
    ),
    m(
        CONNECTION_SENT,
        "tcp_connection_sent_bytes",
        UNIT_BYTES,
        "histogram",
        BYTES_BOUNDARIES,
    ),
    m(
        CONNECTION_RECEIVED,
        "tcp_connection_received_bytes",
        UNIT_BYTES,
        "histogram",
        BYTES_BOUNDARIES,
    ),
    m(
        CONNECTION_RETRANSMITS,
        "tcp_connection_retransmits",
        UNIT_SEGMENTS,
        "histogram",
        RETRANSMITS_BOUNDARIES,
    ),
    m(
        CONNECTION_RETRANSMIT,
        "tcp_connection_retransmit_ratio",
        UNIT_RATIO,
        "histogram",
        RATIO_BOUNDARIES,
    ),
    m(
        CONNECTION_CWND,
        "tcp_connection_cwnd",
        UNIT_SEGMENTS,
        "histogram",
        CWND_BOUNDARIES,
    ),
    m(
        REQUEST_RTT,
        "tcp_request_rtt_seconds",
        UNIT_SECONDS,
        "histogram",
        RTT_BOUNDARIES,
    ),
    m(
        REQUEST_RETRANSMITS,
        "tcp_request_retransmits",
        UNIT_SEGMENTS,
        "histogram",
        RETRANSMITS_BOUNDARIES,
    ),
    m(
        REQUEST_RWND_LIMITED,
        "tcp_request_rwnd_limited_ratio",
        UNIT_RATIO,
        "histogram",
        RATIO_BOUNDARIES,
    ),
    m(
        SLOW_CLIENT_WARNINGS,
        "tcp_slow_client_warnings_total",
        UNIT_WARNINGS,
        "counter",
        &[],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_strictly_increase() {
        for b in [
            RTT_BOUNDARIES,
            DURATION_BOUNDARIES,
            BYTES_BOUNDARIES,
            RETRANSMITS_BOUNDARIES,
            RATIO_BOUNDARIES,
            CWND_BOUNDARIES,
        ] {
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        }
    }

    /// The Prometheus names follow from the OTel names by the exporter's rules.
    #[test]
    fn prometheus_names_follow_the_exporter_rules() {
        for n in ALL {
            let base = n.otel.replace('.', "_");
            let suffix = match n.unit {
                UNIT_SECONDS => "_seconds",
                UNIT_BYTES => "_bytes",
                UNIT_RATIO => "_ratio",
                _ => "",
            };
            let total = if n.kind == "counter" { "_total" } else { "" };
            assert_eq!(n.prometheus, format!("{base}{suffix}{total}"), "{}", n.otel);
            assert_eq!(
                n.kind == "histogram",
                !n.boundaries.is_empty(),
                "{}",
                n.otel
            );
        }
    }
}
