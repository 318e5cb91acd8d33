//! `TcpInfoLayer`: per-request TCP attribution for tower/axum/hyper services — "is this
//! request slow because of my code or because of the client's network?"
//!
//! For every request it measures on a tracked [`Connection`](crate::Connection) (by
//! default every request of a connection that sends up to 32 per second: see
//! [Which requests are measured](#which-requests-are-measured)), the layer reads the
//! socket when the request reaches it and again when the response has been written,
//! and reports the connection's state and what changed in between:
//!
//! - as fields of the request's span: the *current* span (for example the one
//!   `tower_http`'s `TraceLayer` makes, so the two compose), or the layer's own
//!   `tcp.request` span when there is no current span or with
//!   [`TcpInfoLayer::own_span`];
//! - as one `tcp.request` event (level [`TcpInfoLayer::event_level`], INFO by default)
//!   whose parent is that span, carrying every field: visible in plain logs, and as a
//!   span event in a trace viewer, whatever fields the span declared;
//! - to every [`RequestObserver`] (metrics, slow-client policy) as a [`RequestSummary`].
//!
//! The request's span is linked to the connection's root `tcp.connection` span with
//! `follows_from`.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn run() -> std::io::Result<()> {
//! use axum::{Router, routing::get};
//! use conniver::{Connection, TcpInfoLayer, TcpInfoListener};
//!
//! let listener = TcpInfoListener::bind("0.0.0.0:3000").await?;
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(TcpInfoLayer::new());
//! axum::serve(listener, app.into_make_service_with_connect_info::<Connection>()).await?;
//! # Ok(()) }
//! ```
//!
//! The connection comes from the request's extensions: `Connection` itself (a hyper-util
//! loop with [`WithConnection`](crate::conn::WithConnection)), else axum's
//! `ConnectInfo<Connection>`. A request without one is served unchanged, and the layer
//! logs one WARN saying how to fix the setup.
//!
//! # Fields
//! Names follow the crate's field convention (`i64` counts and bytes, `_us` `i64`
//! microseconds, `_s` `f64` seconds, `_bytes_per_s`; a value the platform lacks is not
//! recorded). The names are constants in [`fields`].
//!
//! | field | when | meaning |
//! |---|---|---|
//! | `tcp.conn_id` | start | [`Connection::id`](crate::Connection::id), as on the `tcp.connection` span |
//! | `tcp.rtt_us`, `tcp.rtt_var_us` | start | smoothed RTT and its variance |
//! | `tcp.min_rtt_us` | start | lowest RTT seen on the connection: the path's floor |
//! | `tcp.cwnd_segs` | start | congestion window |
//! | `tcp.requests_on_conn` | start | this is the n-th request on the connection |
//! | `tcp.concurrent` | start | other requests in flight on the connection (HTTP/2) |
//! | `tcp.delta.retrans_segs` | end | segments retransmitted during the request |
//! | `tcp.delta.segs_out`, `tcp.delta.segs_in` | end | segments sent / received |
//! | `tcp.delta.bytes_sent` | end | bytes sent, retransmissions included (Linux 4.19+) |
//! | `tcp.delta.bytes_acked` | end | bytes the client acknowledged |
//! | `tcp.delta.bytes_received` | end | bytes received |
//! | `tcp.delta.bytes_retrans` | end | bytes retransmitted (Linux 4.19+) |
//! | `tcp.delta.rwnd_limited_us` | end | time the client's receive window held us back (slow reader) |
//! | `tcp.delta.sndbuf_limited_us` | end | time our send buffer held us back |
//! | `tcp.delivery_rate_bytes_per_s` | end | the kernel's latest delivery-rate estimate |
//! | `tcp.end_rtt_us` | end | smoothed RTT at the end |
//! | `tcp.outcome` | end | `completed`, `service_error`, `body_error`, `cancelled` |
//! | `tcp.elapsed_s` | end | from the request reaching the layer to the end snapshot |
//!
//! The layer's own span also has `http.request.method` and `url.path`.
//!
//! `tracing` only records fields that a span declared when it was created. The layer's
//! own span declares all of them; to get them on a span you make yourself (such as
//! `TraceLayer`'s, through `make_span_with`), create it with [`request_span!`](crate::request_span). Put
//! `TcpInfoLayer` *inside* `TraceLayer` (in axum, `.layer(TcpInfoLayer::new())` before
//! `.layer(TraceLayer::…)`) so that the trace span is current when the request reaches
//! it. The `tcp.request` event carries the fields either way.
//!
//! # When the snapshots are taken
//! - **Start**, on HTTP/1.1 keep-alive: the previous request's end snapshot on the same
//!   connection. Requests on one HTTP/1.1 connection are sequential, so each request's
//!   deltas run from where the previous one's ended: they **tile the connection** (their
//!   sums equal the connection's totals), the request's own head counts in
//!   `tcp.delta.bytes_received`, and a request costs one socket read instead of two.
//!   Between the two, the connection only received this request and the
//!   acknowledgements of the previous response's last flight (see below); the
//!   start-of-request RTT and congestion window are the values at that end snapshot,
//!   which an idle connection does not change (the kernel updates them when data
//!   moves). The shared snapshot is dropped at the connection's next tick if no request
//!   came, so an idle connection holds none.
//! - **Start**, otherwise (the first request of a connection, HTTP/2, after a tick or
//!   after a request that was not measured):
//!   a fresh read when the request reaches the layer, i.e. after its head was received
//!   and parsed; the head is then not in `tcp.delta.bytes_received`, nor whatever of its
//!   body had arrived already.
//! - **End**, for a response sent to its end: once the kernel has *sent* all of it.
//!   1. At the connection's first flush after the body's last frame: the server (hyper)
//!      has then handed the whole response to the kernel. The body's own end comes
//!      *before* that (hyper asks for the next frame while it still holds earlier ones in
//!      its write buffer), which is why the layer waits for the flush.
//!   2. If the socket still holds unsent bytes then (`notsent_bytes > 0`: a slow reader,
//!      a small receive window, a congested path; or, on HTTP/2, fewer bytes than the
//!      body's have been sent and the count still grows), the layer reads the socket
//!      again every RTT or so (1 ms to 200 ms) until they have left, for at most 60 s.
//!      On HTTP/1 the next request on the connection ends it earlier (its start snapshot
//!      is then this request's end: the client has read the whole response), and so
//!      does the connection's close (the close snapshot). The event and the observers
//!      come then, possibly after the next request's.
//! - **End**, for the last response of an HTTP/1 connection (`Connection: close` from
//!   either side, or HTTP/1.0 without keep-alive): the connection's close snapshot,
//!   which the listener takes right after the server has written the response and shut
//!   the connection down, before the socket closes. One read serves both; the end state
//!   is then `FIN_WAIT1` or later rather than `ESTABLISHED`. A response still in the
//!   socket at the close is reported with the close snapshot either way (see above).
//! - **End**, otherwise: at once, when the inner service returns an error
//!   (`service_error`), the body yields an error (`body_error`), or the response future
//!   or body is dropped before its end (`cancelled`: client gone, timeout, shutdown).
//!
//! So the deltas cover the time the response took to leave the server, slow readers
//! included (`tcp.delta.rwnd_limited_us`), but not the last round trip: the end snapshot
//! measures what the kernel has *sent*, not what the client has *acknowledged*, so
//! `tcp.delta.bytes_acked` can be smaller than `tcp.delta.bytes_sent` by the last flight.
//! Those acknowledgements, and any retransmission of that flight, come after this
//! request's end snapshot: on HTTP/1.1 keep-alive they count in the next request's
//! deltas (whose `bytes_acked` can then exceed its own `bytes_sent`); after a connection's
//! last request, only in the connection's totals. `tcp.delta.bytes_sent` includes the
//! response head, HTTP framing, TLS records under TLS, and retransmissions
//! (`tcp.delta.bytes_retrans`).
//!
//! # HTTP/1.1 and HTTP/2
//! On HTTP/1.1, requests on a keep-alive connection are sequential: each request's deltas
//! are its own exchange (its head and body in, response head and body out), plus the
//! tail of the previous response's acknowledgements (see above).
//!
//! On HTTP/2, streams of one connection run at the same time. The deltas of a request
//! cover **everything the connection did while that request was in flight**: its own
//! frames, its neighbours' and the connection's control frames. `tcp.concurrent` says how
//! many other requests were in flight when it started (0 means the deltas are its own, as
//! far as the overlap at its start goes). Don't sum deltas over the requests of one HTTP/2
//! connection; use the connection's own totals (`tcp.close`) for that. HTTP/2 writes a
//! response frame by frame after its body ended (at most 16 KiB each, as flow control
//! allows); the layer waits while the connection's sent bytes grow and are still fewer
//! than the body's, which a neighbour's traffic can cut short.
//!
//! # Which requests are measured
//! Measuring a request costs a few microseconds of CPU (below). Next to a handler that
//! does real work that is noise, but a hello-world answered in ~15 µs over hot
//! keep-alive connections lost a quarter of its throughput to it. So by default the
//! layer measures at most [32 requests per second on each
//! connection](TcpInfoLayer::max_measured_per_second), in bursts of up to 32:
//!
//! - the connections of ordinary clients (browsers, API clients, anything sending fewer
//!   than 32 requests a second, or a burst of up to 32 after a pause) have **every
//!   request measured**, and every connection's first request is;
//! - a busier connection (a load balancer's or a proxy's, a load generator's) has 32 of
//!   its requests measured per second, spread over them; the others are served exactly
//!   as without the layer (no read, no fields, no event, no observer call).
//!
//! The connection's own telemetry (accept, ticks, close) is unaffected, and its close
//! says how many of its requests were measured (`tcp.requests_measured` next to
//! `tcp.requests`). The per-request metrics count measured requests only.
//! [`TcpInfoLayer::measure_every_request`] lifts the cap;
//! [`TcpInfoLayer::sample_one_in`] measures a fixed share instead. On a server with
//! thousands of connections each just under the cap and hello-world-cheap requests,
//! the cap does not bound the cost: lower it there.
//!
//! # Cost
//! Per measured request: one `getsockopt(TCP_INFO)` on HTTP/1.1 keep-alive when the
//! previous request was measured too, and for a connection's last response; two
//! otherwise (about 1 µs each on a Linux VM, see `benches/snapshot.rs`); a few atomic
//! operations and the connection's own locks; the request's state, boxed once (it is
//! what waits for the flush), and one boxed snapshot (the start, then the next
//! request's); the span (if a subscriber wants it) and the event. `RequestSummary`s (with a copy of the path) are built only when
//! there are observers. A response that is still leaving the socket at its flush costs
//! one task and a socket read per poll. A request the layer does not measure costs a
//! clock read and a few atomic operations (~0.1 µs). Measured figures:
//! `docs/performance.md`.
//!
//! [`Connection`]: crate::Connection

mod body;
mod budget;
pub mod fields;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod request;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::{DEFAULT_MAX_MEASURED_PER_SECOND, TcpInfoLayer};
pub use request::{BodyOutcome, RequestObserver, RequestSummary, TcpDelta};
pub use service::TcpInfoService;

/// `tracing`, for [`request_span!`](crate::request_span) in crates that don't depend on
/// it directly.
#[doc(hidden)]
pub use tracing as __tracing;
