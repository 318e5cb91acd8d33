//! `TcpInfoLayer`: the configuration, and the `tower::Layer` that applies it.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tracing::Level;

use super::RequestObserver;
use super::service::TcpInfoService;

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
}

impl Config {
    /// Whether the `nth` request of a connection (1 for the first) is measured.
    #[inline]
    pub(crate) fn measures(&self, nth: u64) -> bool {
        nth.saturating_sub(1)
            .is_multiple_of(u64::from(self.sample_one_in.get()))
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

    /// Measures one request in `n` on each connection: the 1st, the `n + 1`-th, the
    /// `2n + 1`-th… A request that is not measured is served exactly as without the
    /// layer: no socket read, no fields, no `tcp.request` event, no observer call (so
    /// the per-request metrics, such as the request-time RTT histogram, count measured
    /// requests only). Connection-level telemetry (accept, ticks, close, the
    /// `tcp.connection` span and metrics) is not affected. `0` counts as `1`. On HTTP/2,
    /// `tcp.concurrent` then counts only the *measured* requests in flight.
    ///
    /// For services whose requests are so cheap that measuring each shows in their CPU
    /// profile (a hello-world answers in ~15 µs of CPU; measuring one costs a few µs):
    /// with `n = 8`, an axum hello-world on keep-alive kept 93 % of its plain throughput
    /// instead of 73 % (`docs/performance.md`), while every connection's first request,
    /// and so every short-lived connection, stays measured.
    ///
    /// Defaults to `1`: every request is measured.
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
            .finish()
    }
}

impl<S> tower_layer::Layer<S> for TcpInfoLayer {
    type Service = TcpInfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TcpInfoService::new(inner, Arc::clone(&self.config))
    }
}
