//! Emission: OpenTelemetry metrics, the Prometheus endpoint and the slow-client policy.
//! Everything that names a metric lives under this module ([`names`]).
//!
//! - [`TcpMetrics`] (feature `otel`): the `tcp.connection.*` and `tcp.request.*`
//!   instruments, recorded at accept, every tick, close and the end of every request.
//! - [`prometheus::PrometheusMetrics`] (feature `prometheus`): an SDK meter provider with
//!   the Prometheus exporter and a ready `/metrics` route.
//! - [`SlowClientPolicy`]: one rate-limited `WARN` per request or connection slowed down
//!   by the client or its network, and the `tcp.slow_client.warnings` counter.
//!
//! # Defaults
//! Every [`TcpInfoListener`](crate::TcpInfoListener) and `TcpInfoLayer` starts with
//! [`TcpMetrics::global()`] (feature `otel`) and one process-wide default
//! [`SlowClientPolicy`]. [`TcpMetrics::global()`] records into OpenTelemetry's global
//! meter provider — a no-op until the application installs one (for example with
//! [`prometheus::PrometheusMetrics::install`] or an OTLP exporter), so metrics cost next
//! to nothing until wanted.
//!
//! The meaning and unit of every metric, cardinality advice and how to look at RTT in
//! Jaeger and Grafana: `docs/metrics.md` in the repository.

use std::sync::Arc;

use crate::conn::ConnectionObserver;
use crate::layer::RequestObserver;

#[cfg(feature = "otel")]
mod metrics;
pub mod names;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod slow_client;

#[cfg(feature = "otel")]
pub use metrics::TcpMetrics;
pub use slow_client::{
    DEFAULT_LOG_BURST, DEFAULT_LOG_PER_SECOND, DEFAULT_MIN_ELAPSED, DEFAULT_MIN_SEGMENTS,
    DEFAULT_NOTSENT_ABOVE, DEFAULT_RETRANSMIT_RATIO_ABOVE, DEFAULT_RTT_ABOVE,
    DEFAULT_RWND_LIMITED_ABOVE, SlowClientPolicy, SlowReason, TARGET as SLOW_CLIENT_TARGET,
};

/// The connection observers a `TcpInfoListener` starts with: [`TcpMetrics::global()`]
/// (feature `otel`) and the shared default [`SlowClientPolicy`].
pub(crate) fn default_connection_observers() -> Vec<Arc<dyn ConnectionObserver>> {
    vec![
        #[cfg(feature = "otel")]
        Arc::new(TcpMetrics::global()),
        Arc::new(slow_client::shared_default()),
    ]
}

/// The request observers a `TcpInfoLayer::new()` starts with: [`TcpMetrics::global()`]
/// (feature `otel`) and the shared default [`SlowClientPolicy`].
pub(crate) fn default_request_observers() -> Vec<Arc<dyn RequestObserver>> {
    vec![
        #[cfg(feature = "otel")]
        Arc::new(TcpMetrics::global()),
        Arc::new(slow_client::shared_default()),
    ]
}
