//! An axum hello-world, plain or instrumented with conniver, for load comparisons
//! (`benches/http_pair.sh` runs two side by side on one CPU under `wrk`;
//! `benches/http_load.sh` and `benches/latency.sh` run them in turn).
//!
//! ```text
//! cargo run --release --example hello_bench -- --mode plain --port 3001
//! cargo run --release --example hello_bench -- --mode instrumented --port 3002
//! ```
//!
//! - `plain`: `tokio::net::TcpListener` + `axum::serve`, nothing else.
//! - `instrumented`: what the README's quick start does — `TcpInfoListener` (accept,
//!   tick and close snapshots, the `tcp.connection` span), `TcpInfoLayer::new()` with its
//!   default observers (OpenTelemetry instruments on the global meter provider, the
//!   slow-client policy) and its default cap of measured requests per connection, and
//!   `into_make_service_with_connect_info::<Connection>()`.
//! - `every`: like `instrumented`, measuring every request
//!   (`TcpInfoLayer::measure_every_request()`).
//! - `listener`: `TcpInfoListener` alone, no layer (the connection-level cost).
//! - `layer-bare`: like `every`, without the default observers (the layer's own cost
//!   per request on top of `listener`).
//! - `sampled`: like `every`, measuring one request in 8 of each connection
//!   (`TcpInfoLayer::sample_one_in(8)`).
//! - `trace-layer`: `plain` with tower-http's `TraceLayer` and no conniver at all: what
//!   adding the most common tower layer costs an axum hello-world, for reference (axum
//!   clones a layered route and boxes a wrapped response body on every request).
//! - `noop-layer`: `plain` with the identity layer (`tower::layer::layer_fn(|s| s)`)
//!   added with `Router::layer`: what axum's per-route layering costs by itself.
//! - `wrap-only`: `plain` with a layer that only wraps the response body in a type of
//!   its own and does nothing else (tower-http's `MapResponseBodyLayer`): the floor
//!   under any layer that must see a response body end, as `TcpInfoLayer` and
//!   `TraceLayer` do.
//!
//! Both log with the same `fmt` subscriber at `RUST_LOG` (default `warn`, as in
//! production; `RUST_LOG=info` adds the per-request `tcp.request` line to the
//! instrumented server, which then measures the cost of logging as well).

use axum::Router;
use axum::routing::get;
use conniver::{Connection, TcpInfoLayer, TcpInfoListener};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Instrumented,
    Every,
    Listener,
    LayerBare,
    Sampled,
    TraceLayer,
    WrapOnly,
    NoopLayer,
}

/// `wrap-only`'s response body: the handler's, behind a type of its own (which is what
/// makes axum box it), with nothing added.
struct Wrapped<B>(B);

impl<B: http_body::Body + Unpin> http_body::Body for Wrapped<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: hello_bench --mode plain|instrumented|every|listener|layer-bare|sampled|\
         trace-layer|noop-layer|wrap-only \
         [--port PORT] [--max-measured-per-second N (instrumented)]"
    );
    std::process::exit(2)
}

fn args() -> (Mode, u16, Option<u32>) {
    let mut mode = None;
    let mut port = 3000;
    let mut max_measured = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--mode", Some(m)) => {
                mode = Some(match m.as_str() {
                    "plain" => Mode::Plain,
                    "instrumented" => Mode::Instrumented,
                    "every" => Mode::Every,
                    "listener" => Mode::Listener,
                    "layer-bare" => Mode::LayerBare,
                    "sampled" => Mode::Sampled,
                    "trace-layer" => Mode::TraceLayer,
                    "wrap-only" => Mode::WrapOnly,
                    "noop-layer" => Mode::NoopLayer,
                    _ => usage(),
                })
            }
            ("--port", Some(p)) => port = p.parse().unwrap_or_else(|_| usage()),
            ("--max-measured-per-second", Some(n)) => {
                max_measured = Some(n.parse().unwrap_or_else(|_| usage()))
            }
            _ => usage(),
        }
    }
    (mode.unwrap_or_else(|| usage()), port, max_measured)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (mode, port, max_measured) = args();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    let addr = ("127.0.0.1", port);
    // Whether conniver's listener serves it (`true`), and the router with its layer.
    let (tracked, app) = match mode {
        Mode::Plain => (false, app),
        Mode::TraceLayer => (
            false,
            app.layer(tower_http::trace::TraceLayer::new_for_http()),
        ),
        Mode::NoopLayer => (false, app.layer(tower::layer::layer_fn(|s| s))),
        Mode::WrapOnly => (
            false,
            app.layer(tower_http::map_response_body::MapResponseBodyLayer::new(
                Wrapped,
            )),
        ),
        Mode::Instrumented => (
            true,
            app.layer(match max_measured {
                Some(n) => TcpInfoLayer::new().max_measured_per_second(n),
                None => TcpInfoLayer::new(),
            }),
        ),
        Mode::Every => (true, app.layer(TcpInfoLayer::new().measure_every_request())),
        Mode::Listener => (true, app),
        Mode::LayerBare => (
            true,
            app.layer(
                TcpInfoLayer::new()
                    .measure_every_request()
                    .without_default_observers(),
            ),
        ),
        Mode::Sampled => (
            true,
            app.layer(TcpInfoLayer::new().measure_every_request().sample_one_in(8)),
        ),
    };
    if !tracked {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        return axum::serve(listener, app).await;
    }
    let listener = TcpInfoListener::bind(addr).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<Connection>(),
    )
    .await
}
