//! An axum server whose connection and request spans and `tcp.*` metrics go over OTLP
//! (gRPC) to an OpenTelemetry Collector, Jaeger, Tempo, …
//!
//! ```text
//! # Jaeger all-in-one: UI on :16686, OTLP/gRPC on :4317 (traces; metrics are ignored)
//! docker run --rm -p 16686:16686 -p 4317:4317 jaegertracing/jaeger:latest
//!
//! cargo run --example otlp                     # serve http://127.0.0.1:3000 until Ctrl-C
//! cargo run --example otlp -- --requests 20    # serve, send itself 20 requests, flush, exit
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 cargo run --example otlp
//! ```
//!
//! The protocol is OTLP over gRPC; the endpoint comes from `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (default `http://localhost:4317`), the service name from `OTEL_SERVICE_NAME` (default
//! `conniver-example`), the metric export interval from `OTEL_METRIC_EXPORT_INTERVAL`
//! (milliseconds; 5000 here unless set). Options: `--addr HOST:PORT` (default
//! `127.0.0.1:3000`), `--requests N`.
//!
//! Routes: `/` (a short answer), `/big` (4 MiB: the delta fields become interesting),
//! `/slow` (the handler sleeps 200 ms: a slow request whose TCP numbers are fine).
//!
//! In Jaeger, find service `conniver-example`: every request is a trace (`tcp.request`
//! span with `tcp.rtt_us`, `tcp.delta.*`…) whose span links to its connection's own
//! `tcp.connection` trace (accept to close, with the `tcp.tick` and `tcp.close` events).

#[cfg(not(all(feature = "axum", feature = "otel")))]
fn main() {
    eprintln!("this example needs the `axum` and `otel` features (on by default)");
}

#[cfg(all(feature = "axum", feature = "otel"))]
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A multi-threaded runtime: the OTLP exporters' background threads hand their
    // requests to tonic tasks on this runtime, which must keep running meanwhile.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(otlp::main())
}

#[cfg(all(feature = "axum", feature = "otel"))]
mod otlp {
    use std::net::SocketAddr;
    use std::time::Duration;

    use axum::Router;
    use axum::routing::get;
    use conniver::{Connection, TcpInfoLayer, TcpInfoListener};
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig as _};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    type Error = Box<dyn std::error::Error + Send + Sync>;

    struct Args {
        addr: SocketAddr,
        requests: Option<usize>,
    }

    fn args() -> Result<Args, Error> {
        let mut args = Args {
            addr: "127.0.0.1:3000".parse()?,
            requests: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--addr" => args.addr = value()?.parse()?,
                "--requests" => args.requests = Some(value()?.parse()?),
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        Ok(args)
    }

    pub(crate) async fn main() -> Result<(), Error> {
        let args = args()?;

        // --- OpenTelemetry: traces and metrics over OTLP/gRPC -----------------------
        let service =
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "conniver-example".to_owned());
        let resource = Resource::builder().with_service_name(service).build();
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .unwrap_or_else(|_| "http://localhost:4317".to_owned());
        let span_exporter = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(span_exporter)
            .build();
        let metric_exporter = MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        let mut reader = PeriodicReader::builder(metric_exporter);
        if std::env::var_os("OTEL_METRIC_EXPORT_INTERVAL").is_none() {
            reader = reader.with_interval(Duration::from_secs(5));
        }
        let meter_provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(reader.build())
            .build();
        // Before the listener and the layer exist (they record into the global
        // provider by default).
        opentelemetry::global::set_meter_provider(meter_provider.clone());
        opentelemetry::global::set_tracer_provider(tracer_provider.clone());

        // --- tracing: logs to stderr (RUST_LOG, default info), spans to OpenTelemetry
        // (always info, and debug for conniver: the tcp.tick/tcp.close span events) ---
        let logs = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(logs),
            )
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer_provider.tracer("conniver-example"))
                    .with_filter(EnvFilter::new("info,conniver=debug")),
            )
            .init();

        // --- the server ---------------------------------------------------------------
        let listener = TcpInfoListener::builder()
            .tick(Some(Duration::from_secs(1)))
            .bind(args.addr)
            .await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/", get(|| async { "hello\n" }))
            .route("/big", get(|| async { vec![b'x'; 4 << 20] }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "slow handler\n"
                }),
            )
            .layer(TcpInfoLayer::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<Connection>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
        );
        tracing::info!(%addr, %endpoint, "serving; spans and metrics go to the OTLP endpoint");

        match args.requests {
            Some(n) => drive(addr, n).await?,
            None => {
                tokio::signal::ctrl_c().await?;
            }
        }
        let _ = stop.send(());
        server.await??;

        // --- flush: the last spans (connection spans end at close) and metrics -------
        tracing::info!("flushing telemetry");
        let (traces, metrics) = tokio::task::spawn_blocking(move || {
            (tracer_provider.shutdown(), meter_provider.shutdown())
        })
        .await?;
        traces?;
        metrics?;
        Ok(())
    }

    /// `n` GET requests to the server, five per keep-alive connection, cycling through
    /// the routes.
    async fn drive(addr: SocketAddr, n: usize) -> Result<(), Error> {
        let paths = ["/", "/big", "/", "/slow", "/"];
        let mut done = 0;
        while done < n {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let conn = tokio::spawn(conn);
            for path in paths.iter().take(n - done) {
                let request = http::Request::get(*path)
                    .header(http::header::HOST, addr.to_string())
                    .body(Empty::<Bytes>::new())?;
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                tracing::info!(path, %status, bytes = body.len(), "client: response");
                done += 1;
            }
            drop(sender);
            conn.await??;
        }
        Ok(())
    }
}
