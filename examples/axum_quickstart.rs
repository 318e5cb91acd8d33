//! The quickstart: an axum server whose logs show every request's TCP numbers, with a
//! Prometheus `/metrics` endpoint and slow-client warnings. No external service needed.
//!
//! ```text
//! cargo run --example axum_quickstart                 # http://127.0.0.1:3000
//! curl http://127.0.0.1:3000/                         # a tcp.request log line
//! curl -o /dev/null http://127.0.0.1:3000/big         # 8 MiB: bytes and delivery rate
//! curl --limit-rate 50k -o /dev/null http://127.0.0.1:3000/big   # a slow reader: WARN
//! curl http://127.0.0.1:3000/metrics                  # tcp_connection_* and tcp_request_*
//! ```
//!
//! Options: `--addr HOST:PORT` (default `127.0.0.1:3000`), `--tick SECONDS` (periodic
//! connection snapshots, default 10; 0 = off). Logs go to stderr; `RUST_LOG` filters
//! them (default `info`, `RUST_LOG=conniver=debug` adds the periodic `tcp.tick` events).

#[cfg(not(all(feature = "axum", feature = "prometheus")))]
fn main() {
    eprintln!("this example needs the `axum` and `prometheus` features (on by default)");
}

#[cfg(all(feature = "axum", feature = "prometheus"))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use conniver::telemetry::prometheus::PrometheusMetrics;
    use conniver::{Connection, TcpInfoLayer, TcpInfoListener};
    use tracing_subscriber::EnvFilter;

    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let mut addr = "127.0.0.1:3000".to_owned();
    let mut tick = Some(Duration::from_secs(10));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--addr" => addr = value,
            "--tick" => {
                let secs: f64 = value.parse()?;
                tick = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    // The Prometheus exporter becomes the global OpenTelemetry meter provider, which the
    // listener's and the layer's default metrics record into. Install it first.
    let metrics = PrometheusMetrics::install()?;

    let listener = TcpInfoListener::builder()
        .tick(tick)
        .bind(addr.as_str())
        .await?;
    let app = Router::new()
        .route("/", get(|| async { "hello from conniver\n" }))
        .route(
            "/big",
            get(|| async { Body::from(vec![b'x'; 8 * 1024 * 1024]) }),
        )
        .route("/metrics", metrics.route())
        .layer(TcpInfoLayer::new());

    tracing::info!(
        "listening on http://{} — try /, /big, /metrics",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<Connection>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
