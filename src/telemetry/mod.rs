//! Emission: OpenTelemetry metrics, the Prometheus endpoint and the slow-client policy.
//! Everything that names a metric lives under this module.

use std::sync::Arc;

use crate::layer::RequestObserver;

/// The request observers a `TcpInfoLayer::new()` starts with.
pub(crate) fn default_request_observers() -> Vec<Arc<dyn RequestObserver>> {
    Vec::new()
}
