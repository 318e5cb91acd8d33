//! OpenTelemetry instruments: `TcpMetrics`, recording every connection and request.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider, UpDownCounter};
use opentelemetry::{InstrumentationScope, KeyValue, StringValue, Value};

use super::names;
use crate::conn::{Connection, ConnectionObserver, ConnectionSummary};
use crate::layer::{RequestObserver, RequestSummary};
use crate::tcpinfo::Info;
use crate::tcpinfo::linux::CongestionControl;

/// Every instrument, created once per meter.
pub(crate) struct Instruments {
    opened: Counter<u64>,
    closed: Counter<u64>,
    active: UpDownCounter<i64>,
    duration: Histogram<f64>,
    rtt: Histogram<f64>,
    min_rtt: Histogram<f64>,
    sent: Histogram<u64>,
    received: Histogram<u64>,
    retransmits: Histogram<u64>,
    retransmit: Histogram<f64>,
    cwnd: Histogram<u64>,
    request_rtt: Histogram<f64>,
    request_retransmits: Histogram<u64>,
    request_rwnd_limited: Histogram<f64>,
    pub(crate) slow_client_warnings: Counter<u64>,
}

impl Instruments {
    pub(crate) fn new(meter: &Meter) -> Self {
        use names::*;
        let f64_hist = |name: &'static str, unit: &'static str, desc: &'static str, b: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit(unit)
                .with_description(desc)
                .with_boundaries(b.to_vec())
                .build()
        };
        let u64_hist = |name: &'static str, unit: &'static str, desc: &'static str, b: &[f64]| {
            meter
                .u64_histogram(name)
                .with_unit(unit)
                .with_description(desc)
                .with_boundaries(b.to_vec())
                .build()
        };
        Instruments {
            opened: meter
                .u64_counter(CONNECTION_OPENED)
                .with_unit(UNIT_CONNECTIONS)
                .with_description("TCP connections accepted.")
                .build(),
            closed: meter
                .u64_counter(CONNECTION_CLOSED)
                .with_unit(UNIT_CONNECTIONS)
                .with_description("TCP connections closed, by TCP state at close.")
                .build(),
            active: meter
                .i64_up_down_counter(CONNECTION_ACTIVE)
                .with_unit(UNIT_CONNECTIONS)
                .with_description("TCP connections open now.")
                .build(),
            duration: f64_hist(
                CONNECTION_DURATION,
                UNIT_SECONDS,
                "Lifetime of a TCP connection, from accept to close.",
                DURATION_BOUNDARIES,
            ),
            rtt: f64_hist(
                CONNECTION_RTT,
                UNIT_SECONDS,
                "Smoothed round-trip time of open connections, sampled at accept, every tick and close.",
                RTT_BOUNDARIES,
            ),
            min_rtt: f64_hist(
                CONNECTION_MIN_RTT,
                UNIT_SECONDS,
                "Minimum round-trip time of a connection, at close.",
                RTT_BOUNDARIES,
            ),
            sent: u64_hist(
                CONNECTION_SENT,
                UNIT_BYTES,
                "Bytes sent over a connection, retransmissions included, at close.",
                BYTES_BOUNDARIES,
            ),
            received: u64_hist(
                CONNECTION_RECEIVED,
                UNIT_BYTES,
                "Bytes received over a connection, at close.",
                BYTES_BOUNDARIES,
            ),
            retransmits: u64_hist(
                CONNECTION_RETRANSMITS,
                UNIT_SEGMENTS,
                "Segments retransmitted over a connection, at close.",
                RETRANSMITS_BOUNDARIES,
            ),
            retransmit: f64_hist(
                CONNECTION_RETRANSMIT,
                UNIT_RATIO,
                "Retransmitted / sent segments of a connection, at close.",
                RATIO_BOUNDARIES,
            ),
            cwnd: u64_hist(
                CONNECTION_CWND,
                UNIT_SEGMENTS,
                "Congestion window of open connections, sampled every tick and at close.",
                CWND_BOUNDARIES,
            ),
            request_rtt: f64_hist(
                REQUEST_RTT,
                UNIT_SECONDS,
                "Smoothed round-trip time of the connection at the end of each request's response.",
                RTT_BOUNDARIES,
            ),
            request_retransmits: u64_hist(
                REQUEST_RETRANSMITS,
                UNIT_SEGMENTS,
                "Segments retransmitted on the connection while a request was in flight.",
                RETRANSMITS_BOUNDARIES,
            ),
            request_rwnd_limited: f64_hist(
                REQUEST_RWND_LIMITED,
                UNIT_RATIO,
                "Fraction of a request's time during which sending was limited by the client's receive window.",
                RATIO_BOUNDARIES,
            ),
            slow_client_warnings: meter
                .u64_counter(SLOW_CLIENT_WARNINGS)
                .with_unit(UNIT_WARNINGS)
                .with_description("Slow-client findings, by reason (counted even when the log line is rate-limited).")
                .build(),
        }
    }
}

/// Where instruments come from: the global meter provider (followed when the user
/// replaces it) or one fixed meter.
#[derive(Clone)]
pub(crate) enum Source {
    Global,
    Fixed(Arc<Instruments>),
}

type GlobalProvider = Arc<dyn MeterProvider + Send + Sync>;

/// The instruments of the global provider they were created from. Holding the provider
/// keeps its address from being reused, so a pointer comparison tells whether the global
/// provider changed.
static GLOBAL: RwLock<Option<(GlobalProvider, Arc<Instruments>)>> = RwLock::new(None);

/// The `conniver` instrumentation scope, with the crate version.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(names::SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

fn global_instruments() -> Arc<Instruments> {
    let provider = opentelemetry::global::meter_provider();
    if let Some((p, inst)) = &*GLOBAL.read().unwrap_or_else(PoisonError::into_inner)
        && Arc::ptr_eq(p, &provider)
    {
        return Arc::clone(inst);
    }
    // A new global provider (or the first use): instruments for it. Two threads racing
    // here both create them; the SDK hands both the same underlying aggregators.
    let inst = Arc::new(Instruments::new(&provider.meter_with_scope(scope())));
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Some((provider, Arc::clone(&inst)));
    inst
}

impl Source {
    pub(crate) fn fixed(meter: &Meter) -> Self {
        Source::Fixed(Arc::new(Instruments::new(meter)))
    }

    pub(crate) fn get(&self) -> Arc<Instruments> {
        match self {
            Source::Global => global_instruments(),
            Source::Fixed(inst) => Arc::clone(inst),
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Global => f.write_str("Global"),
            Source::Fixed(_) => f.write_str("Fixed"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Attributes.

/// At most five attributes, on the stack: recording allocates nothing unless the peer
/// address is enabled.
pub(crate) struct Attrs {
    kv: [KeyValue; 5],
    len: usize,
}

impl Attrs {
    /// `network.type`, `server.port`, `tcp.congestion_control` (when known) and, if
    /// `peer_address`, `network.peer.address`.
    pub(crate) fn of(conn: &Connection, peer_address: bool) -> Attrs {
        let mut a = Attrs {
            kv: std::array::from_fn(|_| KeyValue::new(names::ATTR_NETWORK_TYPE, false)),
            len: 0,
        };
        let peer = conn.peer_addr().ip().to_canonical();
        a.push(KeyValue::new(
            names::ATTR_NETWORK_TYPE,
            if peer.is_ipv4() { "ipv4" } else { "ipv6" },
        ));
        a.push(KeyValue::new(
            names::ATTR_SERVER_PORT,
            i64::from(conn.local_addr().port()),
        ));
        if let Some(cc) = conn.congestion_control() {
            a.push(KeyValue::new(names::ATTR_CONGESTION_CONTROL, cc_value(&cc)));
        }
        if peer_address {
            a.push(KeyValue::new(names::ATTR_PEER_ADDRESS, peer.to_string()));
        }
        a
    }

    pub(crate) fn push(&mut self, kv: KeyValue) {
        if let Some(slot) = self.kv.get_mut(self.len) {
            *slot = kv;
            self.len += 1;
        }
    }

    pub(crate) fn as_slice(&self) -> &[KeyValue] {
        self.kv.get(..self.len).unwrap_or_default()
    }
}

/// The congestion-control name as an attribute value without allocating: the usual
/// names are static; others are interned once (at most 32 of them, then `"other"`, so
/// the attribute stays low-cardinality whatever the kernel loads).
fn cc_value(cc: &CongestionControl) -> Value {
    const KNOWN: &[&str] = &[
        "cubic",
        "reno",
        "bbr",
        "bbr2",
        "bbr3",
        "dctcp",
        "vegas",
        "westwood",
        "htcp",
        "illinois",
        "bic",
        "hybla",
        "highspeed",
        "scalable",
        "yeah",
        "lp",
        "veno",
        "nv",
        "cdg",
        "newreno",
        "prague",
    ];
    static INTERNED: Mutex<Vec<Arc<str>>> = Mutex::new(Vec::new());
    let name = cc.as_str();
    if let Some(known) = KNOWN.iter().find(|k| **k == name) {
        return Value::from(*known);
    }
    let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = interned.iter().find(|s| &***s == name) {
        return Value::String(StringValue::from(Arc::clone(s)));
    }
    if interned.len() >= 32 {
        return Value::from("other");
    }
    let s: Arc<str> = Arc::from(name);
    interned.push(Arc::clone(&s));
    Value::String(StringValue::from(s))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

// ---------------------------------------------------------------------------------------

/// OpenTelemetry metrics for every connection and request: the `tcp.connection.*` and
/// `tcp.request.*` instruments of [`names`].
///
/// Register it on a listener with
/// [`TcpInfoListenerBuilder::observer`](crate::TcpInfoListenerBuilder::observer) (as a
/// [`ConnectionObserver`]) and on the HTTP layer (as a [`RequestObserver`]). Every
/// `TcpInfoListener` and `TcpInfoLayer` already records into
/// [`TcpMetrics::global()`] by default, so an application that installs a global meter
/// provider needs nothing else; build one with [`TcpMetrics::new`] to record into a
/// meter of your own instead.
///
/// | instrument | recorded |
/// |---|---|
/// | `tcp.connection.opened`, `.active` (+1) | at accept |
/// | `tcp.connection.rtt` | at accept, every tick, at close |
/// | `tcp.connection.cwnd` | every tick, at close |
/// | `tcp.connection.closed`, `.active` (−1), `.duration`, `.min_rtt`, `.sent`, `.received`, `.retransmits`, `.retransmit` | at close |
/// | `tcp.request.rtt`, `.retransmits`, `.rwnd_limited` | at the end of each request |
///
/// Attributes: `network.type`, `server.port`, `tcp.congestion_control`, plus
/// `tcp.close_state` on `tcp.connection.closed` — a few time series per listening port.
/// The peer address is left out unless enabled with
/// [`with_peer_address`](Self::with_peer_address).
///
/// Recording allocates nothing (attributes are built on the stack from the connection),
/// except the peer-address string when enabled.
#[derive(Clone, Debug)]
pub struct TcpMetrics {
    source: Source,
    peer_address: bool,
}

impl TcpMetrics {
    /// Records through the global meter provider
    /// ([`opentelemetry::global::meter_provider`]), meter `"conniver"`.
    ///
    /// Until the application installs a provider this records into OpenTelemetry's no-op
    /// provider. The global provider is looked up at every measurement, so one installed
    /// later (even after the listener was built) is picked up; only a connection accepted
    /// before the switch reports its `tcp.connection.active` +1 to the old provider and
    /// its −1 to the new one. Install the provider before binding listeners.
    pub fn global() -> Self {
        TcpMetrics {
            source: Source::Global,
            peer_address: false,
        }
    }

    /// Records through `meter` (for example
    /// `provider.meter_with_scope(...)` of an SDK provider that is not the global one).
    /// The instruments are created now.
    pub fn new(meter: &Meter) -> Self {
        TcpMetrics {
            source: Source::fixed(meter),
            peer_address: false,
        }
    }

    /// Adds the attribute `network.peer.address` (the client's IP) to every
    /// measurement.
    ///
    /// **Cardinality risk:** one time series per client address and instrument, kept
    /// for the life of the process by cumulative exporters such as Prometheus. Anyone
    /// who can open connections can grow your metrics memory and your metrics bill. Use
    /// only with a known, small set of clients (for example service-to-service); the
    /// peer address is on every span anyway.
    ///
    /// Defaults to `false`.
    pub fn with_peer_address(mut self, on: bool) -> Self {
        self.peer_address = on;
        self
    }

    fn attrs(&self, conn: &Connection) -> Attrs {
        Attrs::of(conn, self.peer_address)
    }
}

impl Default for TcpMetrics {
    /// [`TcpMetrics::global()`].
    fn default() -> Self {
        TcpMetrics::global()
    }
}

impl ConnectionObserver for TcpMetrics {
    fn on_accept(&self, conn: &Connection, info: Option<&Info>) {
        let inst = self.source.get();
        let attrs = self.attrs(conn);
        let a = attrs.as_slice();
        inst.opened.add(1, a);
        inst.active.add(1, a);
        if let Some(rtt) = info.and_then(|i| i.rtt) {
            inst.rtt.record(secs(rtt), a);
        }
    }

    fn on_tick(&self, conn: &Connection, info: &Info) {
        let inst = self.source.get();
        let attrs = self.attrs(conn);
        let a = attrs.as_slice();
        if let Some(rtt) = info.rtt {
            inst.rtt.record(secs(rtt), a);
        }
        if let Some(cwnd) = info.cwnd_segs {
            inst.cwnd.record(u64::from(cwnd), a);
        }
    }

    fn on_close(&self, conn: &Connection, info: Option<&Info>, s: &ConnectionSummary) {
        let inst = self.source.get();
        let mut attrs = self.attrs(conn);
        let a = attrs.as_slice();
        inst.active.add(-1, a);
        inst.duration.record(secs(s.duration), a);
        if let Some(info) = info {
            if let Some(rtt) = info.rtt {
                inst.rtt.record(secs(rtt), a);
            }
            if let Some(cwnd) = info.cwnd_segs {
                inst.cwnd.record(u64::from(cwnd), a);
            }
        }
        if let Some(min_rtt) = s.min_rtt {
            inst.min_rtt.record(secs(min_rtt), a);
        }
        if let Some(sent) = s.bytes_sent {
            inst.sent.record(sent, a);
        }
        if let Some(received) = s.bytes_received {
            inst.received.record(received, a);
        }
        if let Some(retrans) = s.total_retrans {
            inst.retransmits.record(u64::from(retrans), a);
            if let Some(out) = s.segs_out.filter(|&n| n > 0) {
                let ratio = (f64::from(retrans) / f64::from(out)).min(1.0);
                inst.retransmit.record(ratio, a);
            }
        }
        if let Some(state) = s.close_state {
            attrs.push(KeyValue::new(names::ATTR_CLOSE_STATE, state.as_str()));
        }
        inst.closed.add(1, attrs.as_slice());
    }
}

impl RequestObserver for TcpMetrics {
    fn on_request_end(&self, r: &RequestSummary, _span: &tracing::Span) {
        let inst = self.source.get();
        let attrs = self.attrs(&r.connection);
        let a = attrs.as_slice();
        let rtt = r
            .end
            .as_ref()
            .and_then(|i| i.rtt)
            .or(r.start.as_ref().and_then(|i| i.rtt));
        if let Some(rtt) = rtt {
            inst.request_rtt.record(secs(rtt), a);
        }
        if let Some(retrans) = r.delta.retrans_segs {
            inst.request_retransmits.record(u64::from(retrans), a);
        }
        if let Some(limited) = r.delta.rwnd_limited
            && !r.elapsed.is_zero()
        {
            let ratio = (secs(limited) / secs(r.elapsed)).min(1.0);
            inst.request_rwnd_limited.record(ratio, a);
        }
    }
}
