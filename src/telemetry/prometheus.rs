//! A ready `/metrics` endpoint: the OpenTelemetry SDK with the Prometheus exporter.

use std::fmt;
use std::sync::Arc;

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::metrics::{Instrument, SdkMeterProvider, Stream};
use prometheus::{Encoder as _, Registry, TextEncoder};

use super::TcpMetrics;
use super::metrics::scope;

/// The `Content-Type` of [`PrometheusMetrics::render`]: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Prometheus exposition of the crate's metrics (and of anything else recorded through
/// the same meter provider): an OpenTelemetry SDK [`SdkMeterProvider`] whose reader is
/// the `opentelemetry-prometheus` exporter, on a [`prometheus::Registry`].
///
/// [`install`](Self::install) makes that provider the global one, so every
/// `TcpInfoListener` and `TcpInfoLayer` (which record into the global provider by
/// default) show up on `/metrics` with no other configuration:
///
/// ```no_run
/// # #[cfg(feature = "axum")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Router, routing::get};
/// use conniver::telemetry::prometheus::PrometheusMetrics;
///
/// let metrics = PrometheusMetrics::install()?;
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .route("/metrics", metrics.route());
/// let listener = conniver::TcpInfoListener::bind("0.0.0.0:3000").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
///
/// Without axum, [`render`](Self::render) gives the text and [`response`](Self::response)
/// a complete `http::Response` for a hyper service. Metric names: see
/// [`names`](super::names).
///
/// Cloning is cheap (the registry and the provider are shared).
#[derive(Clone)]
pub struct PrometheusMetrics {
    registry: Registry,
    provider: SdkMeterProvider,
}

impl fmt::Debug for PrometheusMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusMetrics")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// Configures a [`PrometheusMetrics`]; from [`PrometheusMetrics::builder`].
#[must_use]
pub struct PrometheusMetricsBuilder {
    registry: Option<Registry>,
    exporter: Option<opentelemetry_prometheus::ExporterBuilder>,
    resource: Option<Resource>,
    views: Vec<View>,
    global: bool,
}

type View = Arc<dyn Fn(&Instrument) -> Option<Stream> + Send + Sync>;

impl fmt::Debug for PrometheusMetricsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusMetricsBuilder")
            .field("exporter", &self.exporter)
            .field("resource", &self.resource)
            .field("views", &self.views.len())
            .field("global", &self.global)
            .finish_non_exhaustive()
    }
}

impl PrometheusMetricsBuilder {
    /// Registers the exporter in this registry (for example one that already holds
    /// other collectors) instead of a new one.
    ///
    /// Defaults to a new, empty registry.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Starts from this exporter configuration (namespace, `without_target_info`,
    /// `without_scope_info`…). A registry given with [`registry`](Self::registry) wins
    /// over one set here.
    ///
    /// Defaults to `opentelemetry_prometheus::exporter()`: unit suffixes, `_total` on
    /// counters, `otel_scope_name` labels and a `target_info` metric.
    pub fn exporter(mut self, exporter: opentelemetry_prometheus::ExporterBuilder) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// The resource of the meter provider (`service.name`…), exposed as `target_info`.
    ///
    /// Defaults to the SDK's default resource (from `OTEL_SERVICE_NAME` and
    /// `OTEL_RESOURCE_ATTRIBUTES`).
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Adds an SDK view (see `SdkMeterProviderBuilder::with_view`): for example other
    /// bucket boundaries for one instrument, or dropping one.
    ///
    /// ```
    /// use conniver::telemetry::{names, prometheus::PrometheusMetrics};
    /// use opentelemetry_sdk::metrics::{Aggregation, Instrument, Stream};
    ///
    /// let metrics = PrometheusMetrics::builder()
    ///     .global(false)
    ///     .view(|i: &Instrument| {
    ///         (i.name() == names::CONNECTION_RTT).then(|| {
    ///             Stream::builder()
    ///                 .with_aggregation(Aggregation::ExplicitBucketHistogram {
    ///                     boundaries: vec![0.01, 0.05, 0.1, 0.5],
    ///                     record_min_max: false,
    ///                 })
    ///                 .build()
    ///                 .ok()
    ///         })?
    ///     })
    ///     .view(|i: &Instrument| {
    ///         (i.name() == names::CONNECTION_CWND)
    ///             .then(|| Stream::builder().with_aggregation(Aggregation::Drop).build().ok())?
    ///     })
    ///     .build()?;
    /// # let _ = metrics;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Defaults to none: the boundaries of [`names`](super::names).
    pub fn view<T>(mut self, view: T) -> Self
    where
        T: Fn(&Instrument) -> Option<Stream> + Send + Sync + 'static,
    {
        self.views.push(Arc::new(view));
        self
    }

    /// Whether to install the provider as OpenTelemetry's global meter provider, which
    /// the defaults of `TcpInfoListener` and `TcpInfoLayer` record into. With `false`,
    /// register [`PrometheusMetrics::tcp_metrics`] on the listener and the layer
    /// yourself.
    ///
    /// Defaults to `true`.
    pub fn global(mut self, global: bool) -> Self {
        self.global = global;
        self
    }

    /// Builds the exporter and the provider (and installs it, see
    /// [`global`](Self::global)).
    ///
    /// # Errors
    /// When the exporter cannot register in the registry (for example a registry that
    /// already holds an OpenTelemetry exporter).
    pub fn build(self) -> Result<PrometheusMetrics, OTelSdkError> {
        let registry = self.registry.unwrap_or_default();
        let exporter = self
            .exporter
            .unwrap_or_else(opentelemetry_prometheus::exporter)
            .with_registry(registry.clone())
            .build()?;
        let mut provider = SdkMeterProvider::builder().with_reader(exporter);
        if let Some(resource) = self.resource {
            provider = provider.with_resource(resource);
        }
        for view in self.views {
            provider = provider.with_view(move |i: &Instrument| view(i));
        }
        let provider = provider.build();
        if self.global {
            opentelemetry::global::set_meter_provider(provider.clone());
        }
        Ok(PrometheusMetrics { registry, provider })
    }
}

impl PrometheusMetrics {
    /// A new registry and provider, installed as the global meter provider: the
    /// one-line setup. Same as `PrometheusMetrics::builder().build()`.
    ///
    /// # Errors
    /// See [`PrometheusMetricsBuilder::build`].
    pub fn install() -> Result<Self, OTelSdkError> {
        Self::builder().build()
    }

    /// A builder, to use an existing registry, a resource or not to install globally.
    pub fn builder() -> PrometheusMetricsBuilder {
        PrometheusMetricsBuilder {
            registry: None,
            exporter: None,
            resource: None,
            views: Vec::new(),
            global: true,
        }
    }

    /// The registry the exporter is registered in (add your own collectors to it).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The meter provider: record your own instruments through it to have them on the
    /// same page.
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.provider
    }

    /// The `conniver` meter of this provider.
    pub fn meter(&self) -> Meter {
        self.provider.meter_with_scope(scope())
    }

    /// [`TcpMetrics`] recording into this provider (whether or not it is the global
    /// one).
    pub fn tcp_metrics(&self) -> TcpMetrics {
        TcpMetrics::new(&self.meter())
    }

    /// The current values in Prometheus text format 0.0.4 (serve with
    /// [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(target: "conniver::telemetry", error = %e, "encoding /metrics failed");
        }
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// A `200 OK` response with [`render`](Self::render) and its `Content-Type`, for a
    /// hand-written hyper service.
    pub fn response(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.render());
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(CONTENT_TYPE),
        );
        response
    }

    /// An axum `GET` route serving [`response`](Self::response):
    /// `.route("/metrics", metrics.route())`.
    #[cfg(feature = "axum")]
    pub fn route<S>(&self) -> axum::routing::MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let metrics = self.clone();
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { metrics.response() }
        })
    }
}
