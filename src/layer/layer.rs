//! `TcpInfoLayer`: the configuration, and the `tower::Layer` that applies it.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tracing::Level;

use super::RequestObserver;
use super::budget::Budget;
use super::service::TcpInfoService;
use crate::Connection;

/// The default of [`TcpInfoLayer::max_measured_per_second`].
pub const DEFAULT_MAX_MEASURED_PER_SECOND: u32 = 32;

/// Per-request TCP attribution for a tower/axum/hyper service: RTT and congestion window
/// at request start, and what the connection did while the request was served
/// (retransmits, bytes, time limited by the peer's receive window…), on the request's
/// span, in a `tcp.request` event and to every [`RequestObserver`].
///
/// Needs the request's [`Connection`](crate::Connection): serve with a
/// [`TcpInfoListener`](crate::TcpInfoListener) and
/// `into_make_service_with_connect_info::<Connection>()` (axum), or wrap each
/// connection's service in [`WithConnection`](crate::conn::WithConnection) (hyper-util).
/// Without it, requests are served unchanged and one WARN says how to fix it.
///
/// ```no_run
/// # #[cfg(feature = "axum")]
/// # async fn run() -> std::io::Result<()> {
/// use axum::{Router, routing::get};
/// use conniver::{Connection, TcpInfoLayer, TcpInfoListener};
///
/// let listener = TcpInfoListener::bind("0.0.0.0:3000").await?;
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(TcpInfoLayer::new());
/// axum::serve(listener, app.into_make_service_with_connect_info::<Connection>()).await?;
/// # Ok(()) }
/// ```
///
/// See the [module docs](crate::layer) for the fields, when the snapshots are taken and
/// what the deltas mean on HTTP/1.1 and HTTP/2.
///
/// Cloning is cheap (an `Arc`); clones share the configuration and the "missing
/// connection" warning, which is logged once per layer.
#[derive(Clone)]
#[must_use]
pub struct TcpInfoLayer {
    pub(crate) config: Arc<Config>,
}

/// What every request of one layer shares.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) observers: Vec<Arc<dyn RequestObserver>>,
    /// How many of `observers`, at the front, are the crate's defaults.
    defaults: usize,
    pub(crate) level: Level,
    pub(crate) own_span: bool,
    /// Set once the "no `Connection`" warning has been logged.
    pub(crate) warned: Arc<AtomicBool>,
    /// Measure requests 1, 1 + n, 1 + 2n… of each connection.
    sample_one_in: NonZeroU32,
    /// At most this many measured requests per second on each connection.
    budget: Option<Budget>,
}

impl Config {
    /// Whether `sample_one_in` picks the `nth` request of a connection (1 for the first).
    #[inline]
    fn sampled(&self, nth: u64) -> bool {
        nth.saturating_sub(1)
            .is_multiple_of(u64::from(self.sample_one_in.get()))
    }

    /// Whether the request after the `nth` of `conn` would be measured if it came now
    /// (spends nothing): HTTP/1 keeps a request's end snapshot as the next one's start
    /// only then, so that a busy connection sampled by the cap does not hold one.
    pub(crate) fn may_measure_next(&self, nth: u64, conn: &Connection) -> bool {
        self.sampled(nth.saturating_add(1))
            && self.budget.is_none_or(|budget| {
                let (state, now_ns) = conn.measure_budget();
                budget.would_admit(state, now_ns)
            })
    }

    /// Whether the `nth` request of `conn` (1 for the first) is measured.
    #[inline]
    pub(crate) fn measures(&self, nth: u64, conn: &Connection) -> bool {
        self.sampled(nth)
            && self.budget.is_none_or(|budget| {
                let (state, now_ns) = conn.measure_budget();
                budget.admit(state, now_ns)
            })
    }
}

impl TcpInfoLayer {
    /// A layer with the default configuration: the crate's default observers
    /// (telemetry), `tcp.request` events at INFO, fields on the current span.
    pub fn new() -> Self {
        let observers = crate::telemetry::default_request_observers();
        TcpInfoLayer {
            config: Arc::new(Config {
                defaults: observers.len(),
                observers,
                level: Level::INFO,
                own_span: false,
                warned: Arc::new(AtomicBool::new(false)),
                sample_one_in: NonZeroU32::MIN,
                budget: NonZeroU32::new(DEFAULT_MAX_MEASURED_PER_SECOND).map(Budget::per_second),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Adds an observer called at the end of every request (with the
    /// [`RequestSummary`](crate::RequestSummary) and the request's span). May be called
    /// several times; observers run in the order they were added, after the default ones.
    ///
    /// Defaults to the crate's default observers only (see
    /// [`without_default_observers`](Self::without_default_observers)).
    pub fn observer(mut self, observer: impl RequestObserver) -> Self {
        self.config_mut().observers.push(Arc::new(observer));
        self
    }

    /// Removes the crate's default observers (the telemetry ones) added by
    /// [`new`](Self::new), keeping those added with [`observer`](Self::observer) since.
    ///
    /// Defaults to keeping them.
    pub fn without_default_observers(mut self) -> Self {
        let config = self.config_mut();
        let defaults = std::mem::take(&mut config.defaults);
        config.observers.drain(..defaults);
        self
    }

    /// The level of the per-request `tcp.request` event, and of the layer's own
    /// `tcp.request` span when it makes one. Use [`Level::DEBUG`] to keep the fields on
    /// spans and in observers but out of INFO logs.
    ///
    /// Defaults to [`Level::INFO`], so that an ordinary `fmt` subscriber shows every
    /// request's TCP numbers.
    pub fn event_level(mut self, level: Level) -> Self {
        self.config_mut().level = level;
        self
    }

    /// Whether to always create the layer's own `tcp.request` span (a child of the
    /// current span, declaring every field) instead of recording on the current span.
    ///
    /// Defaults to `false`: the fields go on the current span (for example
    /// `tower_http`'s `TraceLayer` span) when there is one, and the layer makes its own
    /// span only when there is none.
    pub fn own_span(mut self, on: bool) -> Self {
        self.config_mut().own_span = on;
        self
    }

    /// Measures at most `n` requests per second on each connection, in bursts of up to
    /// `n`: a connection that sends fewer has every request measured; a busier one (a
    /// load balancer's or a proxy's, a load generator's) has `n` per second measured,
    /// spread over its requests. `0` removes the cap.
    ///
    /// A request that is not measured is served exactly as without the layer: no socket
    /// read, no fields, no `tcp.request` event, no observer call (so the per-request
    /// metrics, such as the request-time RTT histogram, count measured requests only).
    /// Connection-level telemetry (accept, ticks, close, the `tcp.connection` span and
    /// metrics) is not affected, and the close reports both counts (`tcp.requests`,
    /// `tcp.requests_measured`; [`Connection::requests_measured`]). On HTTP/2,
    /// `tcp.concurrent` then counts only the *measured* requests in flight.
    ///
    /// Why a cap: measuring a request costs a socket read and some bookkeeping, a few
    /// microseconds of CPU. Next to a handler doing real work that is noise; next to a
    /// hello-world served at ~15 µs per request over hot keep-alive connections it was
    /// a quarter of the throughput (`docs/performance.md`). The cap bounds that cost per
    /// connection while the connections of ordinary clients (browsers, API clients: a
    /// few requests per second, bursts of a page's worth) stay measured in full.
    ///
    /// Defaults to [`DEFAULT_MAX_MEASURED_PER_SECOND`] (32).
    pub fn max_measured_per_second(mut self, n: u32) -> Self {
        self.config_mut().budget = NonZeroU32::new(n).map(Budget::per_second);
        self
    }

    /// Measures every request of every connection: no cap
    /// ([`max_measured_per_second(0)`](Self::max_measured_per_second)) and no sampling
    /// ([`sample_one_in(1)`](Self::sample_one_in)). For tests, audits and services whose
    /// requests cost far more than a socket read.
    pub fn measure_every_request(mut self) -> Self {
        let config = self.config_mut();
        config.budget = None;
        config.sample_one_in = NonZeroU32::MIN;
        self
    }

    /// Measures one request in `n` on each connection: the 1st, the `n + 1`-th, the
    /// `2n + 1`-th… (within the [`max_measured_per_second`](Self::max_measured_per_second)
    /// cap, which still applies). A request that is not measured is served untouched, as
    /// described there. `0` counts as `1`.
    ///
    /// Where the cap is the better bound on cost (it adapts to each connection's rate),
    /// this is the predictable one: exactly one request in `n`, whatever the rate.
    ///
    /// Defaults to `1`: every request within the cap.
    pub fn sample_one_in(mut self, n: u32) -> Self {
        self.config_mut().sample_one_in = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        self
    }
}

impl Default for TcpInfoLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TcpInfoLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpInfoLayer")
            .field("observers", &self.observers.len())
            .field("event_level", &self.level)
            .field("own_span", &self.own_span)
            .field("sample_one_in", &self.sample_one_in)
            .field(
                "max_measured_per_second",
                &self.budget.map_or(0, |b| b.per_second_value()),
            )
            .finish()
    }
}

impl<S> tower_layer::Layer<S> for TcpInfoLayer {
    type Service = TcpInfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TcpInfoService::new(inner, Arc::clone(&self.config))
    }
}
