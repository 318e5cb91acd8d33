//! `TcpInfoLayer` with a real server and client on loopback: the fields on the request
//! span and in the `tcp.request` event, separate deltas for keep-alive requests checked
//! against the client's own socket, HTTP/2 streams, composition with `TraceLayer`, the
//! missing-connection warning, cancellation, service and body errors, observers.
#![cfg(target_os = "linux")]

mod support {
    pub(crate) mod capture;
    pub(crate) mod tls;
    pub(crate) mod wait;
}

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use conniver::conn::WithConnection;
use conniver::layer::fields;
use conniver::{
    BodyOutcome, Connection, RequestObserver, RequestSummary, TcpInfoLayer, TcpInfoListener,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tracing::Level;

use support::capture::{self, Captured, Value};
use support::tls::tls_configs;
use support::wait::wait_until;

// ---------------------------------------------------------------------------------------
// Capture: the shared recording layer (`tests/support/capture.rs`), fed per thread.

/// Captures what this thread reports, at `max` and below, until the guard drops.
///
/// One global subscriber serves every test; it hands each span and event to the
/// capture of the thread that emits it (tests run on current-thread runtimes, so the
/// server, its tasks and the client all report on the test's thread). Per-thread
/// `set_default` subscribers would race on `tracing`'s process-wide callsite interest
/// cache: a callsite first hit by a thread without a subscriber is cached as "never" for
/// everyone.
fn capture(max: Level) -> (Captured, CaptureGuard) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(ByThread);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    let captured = Captured::default();
    SINK.with(|sink| *sink.borrow_mut() = Some((captured.clone(), max)));
    (captured, CaptureGuard)
}

thread_local! {
    static SINK: std::cell::RefCell<Option<(Captured, Level)>> =
        const { std::cell::RefCell::new(None) };
}

/// Stops this thread's capture.
struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|sink| sink.borrow_mut().take());
    }
}

/// The global layer: forwards to the emitting thread's [`Captured`], if any.
struct ByThread;

fn with_sink(f: impl FnOnce(&Captured)) {
    SINK.with(|sink| {
        if let Some((captured, _)) = &*sink.borrow() {
            f(captured);
        }
    });
}

impl<S> tracing_subscriber::Layer<S> for ByThread
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Ask `enabled` every time: the answer depends on the thread.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        SINK.with(|sink| {
            sink.borrow().as_ref().is_some_and(|(_, max)| {
                tracing_subscriber::filter::LevelFilter::from_level(*max) >= *metadata.level()
            })
        })
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        with_sink(|c| tracing_subscriber::Layer::<S>::on_new_span(c, attrs, id, ctx));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        with_sink(|c| tracing_subscriber::Layer::<S>::on_record(c, id, values, ctx));
    }

    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        with_sink(|c| tracing_subscriber::Layer::<S>::on_follows_from(c, span, follows, ctx));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        with_sink(|c| tracing_subscriber::Layer::<S>::on_event(c, event, ctx));
    }
}

/// Records every summary handed to it.
#[derive(Default, Clone)]
struct Summaries(Arc<Mutex<Vec<Summary>>>);

/// A summary and the id of the span it came with.
type Summary = (RequestSummary, Option<u64>);

impl RequestObserver for Summaries {
    fn on_request_end(&self, request: &RequestSummary, span: &tracing::Span) {
        let span = span.id().map(|id| id.into_u64());
        self.0.lock().unwrap().push((request.clone(), span));
    }
}

impl Summaries {
    fn all(&self) -> Vec<Summary> {
        self.0.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------
// Servers.

/// A body of `n` bytes in 16 KiB chunks, length unknown (chunked on HTTP/1.1), with a
/// pause before each chunk after the first `fast` bytes.
struct Chunks {
    left: usize,
    fast: usize,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Chunks {
    fn new(n: usize, fast: usize) -> Self {
        Chunks {
            left: n,
            fast,
            sleep: None,
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if self.fast == 0 {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(2))));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        let n = self.left.min(16 * 1024);
        self.left -= n;
        self.fast = self.fast.saturating_sub(n);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; n])))))
    }
}

/// A body that fails after one chunk.
struct Failing(bool);

impl http_body::Body for Failing {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(Some(Err(io::Error::other("body broke"))))
        } else {
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first")))))
        }
    }
}

fn router() -> Router {
    Router::new()
        .route(
            "/bytes/{n}",
            get(|Path(n): Path<usize>| async move { vec![b'x'; n] }),
        )
        .route(
            "/chunks/{n}",
            get(|Path(n): Path<usize>| async move { axum::body::Body::new(Chunks::new(n, n)) }),
        )
        .route(
            "/slow/{n}",
            get(|Path(n): Path<usize>| async move { axum::body::Body::new(Chunks::new(n, 0)) }),
        )
        .route(
            "/failing",
            get(|| async { axum::body::Body::new(Failing(false)) }),
        )
        .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/closing/{n}",
            get(|Path(n): Path<usize>| async move {
                ([(http::header::CONNECTION, "close")], vec![b'x'; n])
            }),
        )
        .route(
            "/not-modified",
            get(|| async { (StatusCode::NOT_MODIFIED, "a body hyper does not send") }),
        )
}

/// Serves `app` with axum on a `TcpInfoListener`, the way the README says.
async fn serve_axum(app: Router) -> SocketAddr {
    let listener = TcpInfoListener::builder()
        .tick(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<Connection>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// `router()` with `layer` served by [`serve_axum`], the layer's default observers
/// replaced by a recorder of its summaries.
async fn serve_recorded(layer: TcpInfoLayer) -> (SocketAddr, Summaries) {
    let summaries = Summaries::default();
    let app = router().layer(
        layer
            .without_default_observers()
            .observer(summaries.clone()),
    );
    (serve_axum(app).await, summaries)
}

type HandlerResult = Result<Response<Full<Bytes>>, io::Error>;

/// The hyper-util handler: `/bytes/n`, `/fail` (service error), `/together/n` (waits
/// until `barrier` has every caller, so that requests overlap).
async fn handler(req: Request<Incoming>, barrier: Arc<tokio::sync::Barrier>) -> HandlerResult {
    let path = req.uri().path().to_owned();
    if path == "/fail" {
        return Err(io::Error::other("service failed"));
    }
    if let Some(n) = path.strip_prefix("/together/") {
        barrier.wait().await;
        return Ok(Response::new(Full::from(vec![b'y'; n.parse().unwrap()])));
    }
    let n: usize = path.strip_prefix("/bytes/").unwrap().parse().unwrap();
    Ok(Response::new(Full::from(vec![b'x'; n])))
}

/// A hand-written hyper-util accept loop (HTTP/1.1 and HTTP/2 with `auto::Builder`),
/// each connection's service wrapped in `WithConnection`.
async fn serve_hyper_util(layer: TcpInfoLayer, together: usize) -> SocketAddr {
    let listener = TcpInfoListener::builder()
        .tick(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(together));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let barrier = barrier.clone();
            let app = tower::ServiceBuilder::new()
                .layer(layer.clone())
                .service_fn(move |req| handler(req, barrier.clone()));
            let service = WithConnection::new(stream.connection().clone(), app);
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

/// The hyper-util loop with TLS (tokio-rustls) between the tracked stream and hyper.
async fn serve_tls(layer: TcpInfoLayer, config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpInfoListener::builder()
        .tick(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let conn = stream.connection().clone();
            let acceptor = acceptor.clone();
            let app = tower::ServiceBuilder::new()
                .layer(layer.clone())
                .service_fn(|req| handler(req, Arc::new(tokio::sync::Barrier::new(1))));
            tokio::spawn(async move {
                let tls = acceptor.accept(stream).await.unwrap();
                let service = WithConnection::new(conn, app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------
// Clients.

/// An HTTP/1.1 keep-alive client on one connection, with a duplicate of its socket to
/// read the client's own TCP counters (the outside oracle).
struct H1Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    oracle: std::net::TcpStream,
    task: tokio::task::JoinHandle<()>,
    /// Unique bytes the client's socket sent during the last request (its head).
    last_sent: u64,
}

fn connect_std(addr: SocketAddr) -> (tokio::net::TcpStream, std::net::TcpStream) {
    let std = std::net::TcpStream::connect(addr).unwrap();
    std.set_nonblocking(true).unwrap();
    let oracle = std.try_clone().unwrap();
    (tokio::net::TcpStream::from_std(std).unwrap(), oracle)
}

impl H1Client {
    async fn connect(addr: SocketAddr) -> Self {
        let (tcp, oracle) = connect_std(addr);
        Self::handshake(TokioIo::new(tcp), oracle).await
    }

    /// The same over TLS (the oracle still reads the TCP socket under it).
    async fn connect_tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Self {
        let (tcp, oracle) = connect_std(addr);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        Self::handshake(TokioIo::new(tls), oracle).await
    }

    async fn handshake<T>(io: T, oracle: std::net::TcpStream) -> Self
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        H1Client {
            sender,
            oracle,
            task,
            last_sent: 0,
        }
    }

    fn request(path: &str) -> Request<Empty<Bytes>> {
        Request::get(path)
            .header("host", "localhost")
            .body(Empty::new())
            .unwrap()
    }

    /// GET `path`, the whole body; with the client's `bytes_received` delta over it.
    async fn get(&mut self, path: &str) -> (StatusCode, usize, u64) {
        self.send(Self::request(path)).await
    }

    /// HEAD `path`, like [`get`](Self::get).
    async fn head(&mut self, path: &str) -> (StatusCode, usize, u64) {
        let mut req = Self::request(path);
        *req.method_mut() = http::Method::HEAD;
        self.send(req).await
    }

    async fn send(&mut self, req: Request<Empty<Bytes>>) -> (StatusCode, usize, u64) {
        let before = conniver::snapshot(&self.oracle).unwrap();
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(req).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let after = conniver::snapshot(&self.oracle).unwrap();
        let unique_sent = |i: conniver::Info| i.bytes_sent.unwrap() - i.bytes_retrans.unwrap();
        self.last_sent = unique_sent(after) - unique_sent(before);
        let received = after.bytes_received.unwrap() - before.bytes_received.unwrap();
        (status, body.len(), received)
    }
}

fn field(e: &capture::EventRec, name: &str) -> i64 {
    e.fields
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing in {:?}", e.fields))
        .i64()
}

/// Bytes sent during the request less those retransmitted: what the client received.
fn unique_sent(e: &capture::EventRec) -> u64 {
    (field(e, fields::DELTA_BYTES_SENT) - field(e, fields::DELTA_BYTES_RETRANS)) as u64
}

/// The start and end fields every completed request must carry, with sane values.
fn assert_request_fields(e: &capture::EventRec) {
    assert!(field(e, fields::CONN_ID) > 0);
    assert!(field(e, fields::RTT_US) > 0, "{:?}", e.fields);
    assert!(field(e, fields::RTT_VAR_US) >= 0);
    assert!(field(e, fields::MIN_RTT_US) > 0);
    assert!(field(e, fields::CWND_SEGS) > 0);
    assert!(field(e, fields::REQUESTS_ON_CONN) >= 1);
    assert!(field(e, fields::CONCURRENT) >= 0);
    for delta in [
        fields::DELTA_RETRANS_SEGS,
        fields::DELTA_SEGS_OUT,
        fields::DELTA_SEGS_IN,
        fields::DELTA_BYTES_SENT,
        fields::DELTA_BYTES_ACKED,
        fields::DELTA_BYTES_RECEIVED,
        fields::DELTA_BYTES_RETRANS,
        fields::DELTA_RWND_LIMITED_US,
        fields::DELTA_SNDBUF_LIMITED_US,
    ] {
        assert!(field(e, delta) >= 0, "{delta}");
    }
    assert!(field(e, fields::END_RTT_US) > 0);
    assert!(field(e, fields::DELIVERY_RATE_BYTES_PER_S) >= 0);
    assert!(matches!(e.fields[fields::ELAPSED_S], Value::F64(s) if s > 0.0));
    assert!(
        e.fields.values().all(|v| !matches!(v, Value::U64(_))),
        "no u64 fields: {:?}",
        e.fields
    );
}

// ---------------------------------------------------------------------------------------
// Tests.

/// Two requests on one HTTP/1.1 keep-alive connection (axum + `TcpInfoListener`): same
/// connection id, request numbers 1 and 2, and each its own `bytes_sent` delta (100 KB
/// and 300 KB responses), equal to what the client's socket says it received.
#[tokio::test(flavor = "current_thread")]
async fn keep_alive_requests_share_the_connection_and_have_their_own_deltas() {
    let (captured, _guard) = capture(Level::TRACE);
    let summaries = Summaries::default();
    let app = router().layer(TcpInfoLayer::new().observer(summaries.clone()));
    let addr = serve_axum(app).await;

    let mut client = H1Client::connect(addr).await;
    let sizes = [100_000usize, 300_000];
    let (mut client_received, mut client_sent) = (Vec::new(), Vec::new());
    for n in sizes {
        let (status, len, received) = client.get(&format!("/bytes/{n}")).await;
        assert_eq!((status, len), (StatusCode::OK, n));
        client_received.push(received);
        client_sent.push(client.last_sent);
    }
    wait_until("two tcp.request events", || {
        captured.events_named("tcp.request").len() == 2
    })
    .await;

    let events = captured.requests();
    let conn_id = field(&events[0], fields::CONN_ID);
    for (i, (e, n)) in events.iter().zip(sizes).enumerate() {
        assert_request_fields(e);
        assert_eq!(e.level, Level::INFO);
        assert_eq!(field(e, fields::CONN_ID), conn_id, "same connection");
        assert_eq!(field(e, fields::REQUESTS_ON_CONN), i as i64 + 1);
        assert_eq!(field(e, fields::CONCURRENT), 0);
        assert_eq!(e.fields[fields::OUTCOME].str(), "completed");
        // Bytes sent count retransmissions too; a loaded loopback does retransmit (tail
        // loss probes while the client task waits for the CPU).
        let unique = field(e, fields::DELTA_BYTES_SENT) - field(e, fields::DELTA_BYTES_RETRANS);
        assert!(
            (n as i64..=n as i64 + 2048).contains(&unique),
            "request {i}: {unique} bytes sent for a {n}-byte body: {:?}",
            e.fields
        );
        // The oracle: the client's own socket received exactly what the server's socket
        // sent during the request.
        assert_eq!(
            unique as u64, client_received[i],
            "request {i}: {:?}",
            e.fields
        );
        // Acked trails sent by what was in flight at the end snapshot; on keep-alive
        // those acknowledgements count in the next request, whose start is this
        // request's end snapshot.
        let acked = field(e, fields::DELTA_BYTES_ACKED);
        let in_flight_before = match i {
            0 => 0,
            _ => {
                let prev = &events[i - 1];
                field(prev, fields::DELTA_BYTES_SENT)
                    - field(prev, fields::DELTA_BYTES_RETRANS)
                    - field(prev, fields::DELTA_BYTES_ACKED)
            }
        };
        assert!(
            acked <= unique + in_flight_before + 1,
            "request {i}: acked {acked}, sent {unique}, in flight before {in_flight_before}"
        );
        let received = field(e, fields::DELTA_BYTES_RECEIVED);
        if i == 0 {
            // The first request's start snapshot comes after its head arrived.
            assert!(received < 200, "{received}");
        } else {
            // Later ones start at the previous request's end: their own head counts,
            // exactly what the client's socket sent for it.
            assert_eq!(
                received as u64, client_sent[i],
                "request {i}: {:?}",
                e.fields
            );
        }
    }

    // No current span: the layer made its own, declaring every field, linked to the
    // connection's root span.
    let conn_span = captured
        .spans_named("tcp.connection")
        .into_iter()
        .find(|s| s.fields[fields::CONN_ID].i64() == conn_id)
        .expect("connection span");
    let request_spans = captured.spans_named("tcp.request");
    assert_eq!(request_spans.len(), 2);
    for (e, n) in events.iter().zip(sizes) {
        let span = captured.span(e.parent.expect("the event has the request span as parent"));
        assert_eq!(span.name, "tcp.request");
        assert_eq!(span.fields["http.request.method"].str(), "GET");
        assert_eq!(span.fields["url.path"].str(), format!("/bytes/{n}"));
        for name in fields::ALL {
            assert!(span.declared.iter().any(|d| d == name), "{name} declared");
            assert_eq!(
                span.fields.get(*name),
                e.fields.get(*name),
                "{name}: span and event agree"
            );
        }
        assert_eq!(span.follows_from.len(), 1);
        let linked = captured.span(span.follows_from[0]);
        assert_eq!(linked.name, "tcp.connection");
        assert_eq!(
            linked.fields[fields::CONN_ID],
            conn_span.fields[fields::CONN_ID]
        );
    }

    // The observer saw the same numbers, with the same span.
    let mut summaries = summaries.all();
    summaries.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    assert_eq!(summaries.len(), 2);
    for ((s, span), e) in summaries.iter().zip(&events) {
        assert_eq!(s.connection.id() as i64, conn_id);
        assert_eq!(s.outcome, BodyOutcome::Completed);
        assert_eq!(s.method, http::Method::GET);
        assert_eq!(
            s.delta.bytes_sent.map(|b| b as i64),
            Some(field(e, fields::DELTA_BYTES_SENT))
        );
        assert_eq!(
            s.start.and_then(|i| i.rtt).map(|d| d.as_micros() as i64),
            Some(field(e, fields::RTT_US))
        );
        assert!(s.end.is_some());
        assert_eq!(*span, e.parent);
        assert_eq!(s.connection.in_flight(), 0);
    }
    assert_eq!(&*summaries[1].0.path, "/bytes/300000");
    assert_eq!(summaries[1].0.connection.requests(), 2);
    client.task.abort();
}

/// The same on a multi-threaded runtime (server, client and end reports on different
/// workers), through an observer: five keep-alive requests, each delta its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_deltas_on_a_multi_threaded_runtime() {
    let summaries = Summaries::default();
    let app = router().layer(TcpInfoLayer::new().observer(summaries.clone()));
    let addr = serve_axum(app).await;
    let mut client = H1Client::connect(addr).await;
    let sizes = [1usize, 70_000, 1_000_000, 5, 250_000];
    let mut client_received = Vec::new();
    for n in sizes {
        let (status, len, received) = client.get(&format!("/bytes/{n}")).await;
        assert_eq!((status, len), (StatusCode::OK, n));
        client_received.push(received);
    }
    wait_until("five summaries", || summaries.all().len() == 5).await;
    let mut all = summaries.all();
    all.sort_by_key(|(s, _)| {
        s.path
            .trim_start_matches("/bytes/")
            .parse::<usize>()
            .unwrap()
    });
    let mut by_size: Vec<_> = sizes.iter().copied().zip(client_received).collect();
    by_size.sort_unstable();
    for ((s, _), (n, received)) in all.iter().zip(by_size) {
        assert_eq!(s.outcome, BodyOutcome::Completed);
        let unique = s.delta.bytes_sent.unwrap() - s.delta.bytes_retrans.unwrap();
        assert_eq!(unique, received, "{n}: {s:?}");
        assert!(
            (n as u64..n as u64 + 2048).contains(&unique),
            "{n}: {unique}"
        );
    }
    client.task.abort();
}

/// The last response of an HTTP/1 connection (`Connection: close` from the client, or
/// from the server) is reported with the close snapshot, which the server takes right
/// after writing it: the deltas are still the response's bytes (the client socket's
/// count), and the end state shows the close (the server sent its FIN).
#[tokio::test(flavor = "current_thread")]
async fn last_response_of_a_connection_ends_with_the_close_snapshot() {
    let (addr, summaries) = serve_recorded(TcpInfoLayer::new()).await;
    // Client-side close, then server-side close after a keep-alive request.
    let mut a = H1Client::connect(addr).await;
    let mut req = H1Client::request("/bytes/50000");
    req.headers_mut()
        .insert(http::header::CONNECTION, "close".parse().unwrap());
    let (status, len, a_received) = a.send(req).await;
    assert_eq!((status, len), (StatusCode::OK, 50_000));
    let mut b = H1Client::connect(addr).await;
    let (_, _, b_first) = b.get("/bytes/1000").await;
    let (status, len, b_last) = b.get("/closing/30000").await;
    assert_eq!((status, len), (StatusCode::OK, 30_000));
    wait_until("three summaries", || summaries.all().len() == 3).await;

    let all = summaries.all();
    let find = |path: &str| {
        all.iter()
            .map(|(s, _)| s)
            .find(|s| &*s.path == path)
            .unwrap_or_else(|| panic!("{path} reported"))
    };
    for (path, received, closing) in [
        ("/bytes/50000", a_received, true),
        ("/bytes/1000", b_first, false),
        ("/closing/30000", b_last, true),
    ] {
        let s = find(path);
        assert_eq!(s.outcome, BodyOutcome::Completed, "{path}");
        let unique = s.delta.bytes_sent.unwrap() - s.delta.bytes_retrans.unwrap();
        // The client's count includes the server's FIN (one sequence number) when it
        // arrived before the client read its counter.
        let fin = u64::from(closing && received == unique + 1);
        assert_eq!(unique + fin, received, "{path}: {s:?}");
        let end_state = s.end.and_then(|i| i.state).expect("end state");
        if closing {
            assert!(s.connection.is_closed(), "{path}");
            assert_ne!(end_state, conniver::TcpState::Established, "{path}: {s:?}");
        } else {
            assert_eq!(end_state, conniver::TcpState::Established, "{path}");
        }
    }
    a.task.abort();
    b.task.abort();
}

/// `sample_one_in(3)`: of seven keep-alive requests, the 1st, 4th and 7th are measured
/// (fields, event, observer); the others are served untouched. A measured request after
/// unmeasured ones starts with a fresh read, so its deltas are still its own response.
#[tokio::test(flavor = "current_thread")]
async fn sample_one_in_measures_every_nth_request_of_a_connection() {
    let (captured, _guard) = capture(Level::TRACE);
    let (addr, summaries) = serve_recorded(TcpInfoLayer::new().sample_one_in(3)).await;
    let mut client = H1Client::connect(addr).await;
    let sizes = [1000usize, 2000, 3000, 40_000, 5000, 6000, 70_000];
    let mut client_received = Vec::new();
    for n in sizes {
        let (status, len, received) = client.get(&format!("/bytes/{n}")).await;
        assert_eq!((status, len), (StatusCode::OK, n));
        client_received.push(received);
    }
    // One more connection: its first request is measured whatever the others did.
    let mut other = H1Client::connect(addr).await;
    assert_eq!(other.get("/bytes/10").await.1, 10);
    wait_until("four summaries", || summaries.all().len() == 4).await;

    let mut events = captured.requests();
    events.sort_by_key(|e| {
        (
            field(e, fields::CONN_ID),
            field(e, fields::REQUESTS_ON_CONN),
        )
    });
    let numbers: Vec<i64> = events
        .iter()
        .map(|e| field(e, fields::REQUESTS_ON_CONN))
        .collect();
    assert_eq!(numbers, [1, 4, 7, 1], "{events:?}");
    for e in &events[..3] {
        let nth = field(e, fields::REQUESTS_ON_CONN) as usize;
        assert_request_fields(e);
        assert_eq!(
            unique_sent(e),
            client_received[nth - 1],
            "request {nth}: {:?}",
            e.fields
        );
        // A fresh start snapshot: the head had arrived already.
        assert!(
            field(e, fields::DELTA_BYTES_RECEIVED) < 200,
            "{:?}",
            e.fields
        );
    }
    // The connection still counts every request.
    let all = summaries.all();
    let conn = all
        .iter()
        .map(|(s, _)| &s.connection)
        .find(|c| c.id() as i64 == field(&events[0], fields::CONN_ID))
        .unwrap();
    assert_eq!(conn.requests(), 7);
    assert_eq!(conn.in_flight(), 0);
    client.task.abort();
    other.task.abort();
}

/// `max_measured_per_second(5)`: a connection sending requests back to back has its
/// first five measured (the burst), then about five per second; after an idle second,
/// a full bucket again. Measured requests after unmeasured ones still have their own
/// deltas, and the close reports both counts. `measure_every_request()` lifts the cap.
#[tokio::test(flavor = "current_thread")]
async fn max_measured_per_second_caps_a_busy_connection() {
    let (captured, _guard) = capture(Level::TRACE);
    let (addr, summaries) = serve_recorded(TcpInfoLayer::new().max_measured_per_second(5)).await;
    let mut client = H1Client::connect(addr).await;
    let started = std::time::Instant::now();
    let mut client_received = Vec::new();
    for i in 0..60 {
        let n = 1000 + i;
        let (status, len, received) = client.get(&format!("/bytes/{n}")).await;
        assert_eq!((status, len), (StatusCode::OK, n));
        client_received.push(received);
    }
    let busy = started.elapsed();
    // What the bucket allows: 5 at once, then 5 per second (+1 for rounding).
    let allowed = 5 + (busy.as_secs_f64() * 5.0).floor() as usize + 1;
    let measured = summaries.all().len();
    assert!(
        (5..=allowed.min(59)).contains(&measured),
        "{measured} measured in {busy:?}"
    );
    // Idle for more than a second: the next three are all measured.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 60..63 {
        let n = 1000 + i;
        let (_, _, received) = client.get(&format!("/bytes/{n}")).await;
        client_received.push(received);
    }
    wait_until("three more summaries", || {
        summaries.all().len() == measured + 3
    })
    .await;
    let events = captured.requests();
    assert_eq!(events.len(), measured + 3);
    let mut numbers: Vec<i64> = events
        .iter()
        .map(|e| field(e, fields::REQUESTS_ON_CONN))
        .collect();
    numbers.sort_unstable();
    assert_eq!(&numbers[..5], [1, 2, 3, 4, 5], "the burst");
    assert_eq!(&numbers[measured..], [61, 62, 63], "after the idle second");
    for e in &events {
        assert_request_fields(e);
        let nth = field(e, fields::REQUESTS_ON_CONN) as usize;
        assert_eq!(
            unique_sent(e),
            client_received[nth - 1],
            "request {nth}: {:?}",
            e.fields
        );
    }
    let conn = summaries.all()[0].0.connection.clone();
    assert_eq!(conn.requests(), 63);
    assert_eq!(conn.requests_measured(), (measured + 3) as u64);

    // The close reports both counts.
    drop(client.sender);
    client.task.await.unwrap();
    wait_until("the close", || {
        !captured.events_named("tcp.close").is_empty()
    })
    .await;
    let close = &captured.events_named("tcp.close")[0];
    assert_eq!(field(close, "tcp.requests"), 63);
    assert_eq!(field(close, "tcp.requests_measured"), (measured + 3) as i64);

    // No cap: all 60 of another busy connection are measured.
    let (addr, every) = serve_recorded(
        TcpInfoLayer::new()
            .max_measured_per_second(5)
            .measure_every_request(),
    )
    .await;
    let mut client = H1Client::connect(addr).await;
    for _ in 0..60 {
        assert_eq!(client.get("/bytes/10").await.1, 10);
    }
    wait_until("sixty summaries", || every.all().len() == 60).await;
    client.task.abort();
}

/// Under TLS the response's bytes still reach the kernel at the flush (tokio-rustls
/// flushes the tracked stream last): keep-alive deltas equal what the client's TCP
/// socket received, TLS records included.
#[tokio::test(flavor = "current_thread")]
async fn tls_keep_alive_deltas() {
    let (captured, _guard) = capture(Level::TRACE);
    let (server_cfg, client_cfg) = tls_configs();
    let addr = serve_tls(TcpInfoLayer::new(), server_cfg).await;
    let mut client = H1Client::connect_tls(addr, client_cfg).await;
    // The first exchange also carries the end of the TLS handshake (session tickets
    // written after the client's window opened): leave it out of the comparison.
    client.get("/bytes/1").await;
    let sizes = [100_000usize, 300_000];
    let mut client_received = Vec::new();
    for n in sizes {
        let (status, len, received) = client.get(&format!("/bytes/{n}")).await;
        assert_eq!((status, len), (StatusCode::OK, n));
        client_received.push(received);
    }
    wait_until("three tcp.request events", || {
        captured.events_named("tcp.request").len() == 3
    })
    .await;
    let events = captured.requests();
    for ((e, n), received) in events[1..].iter().zip(sizes).zip(client_received) {
        assert_request_fields(e);
        assert_eq!(e.fields[fields::OUTCOME].str(), "completed");
        let unique = unique_sent(e);
        assert_eq!(unique, received, "{n}: {:?}", e.fields);
        // Body, head, and about 22 bytes of TLS framing per 16 KiB record.
        assert!(
            (n as u64..n as u64 + n as u64 / 200 + 2048).contains(&unique),
            "{n}: {unique}"
        );
    }
    client.task.abort();
}

/// A slow reader: a 2 MB response to a client with a small receive buffer that reads
/// 16 KiB every 5 ms. Hyper hands the response to the kernel long before the client has
/// it; the request ends only once the socket has sent it all, so its deltas hold the
/// time the client's window held the server back, and all the bytes.
#[tokio::test(flavor = "current_thread")]
async fn slow_reader_is_measured_until_the_response_has_left() {
    use std::io::{Read, Write};
    let (captured, _guard) = capture(Level::TRACE);
    let addr = serve_axum(router().layer(TcpInfoLayer::new())).await;
    const N: usize = 2_000_000;
    let client = std::thread::spawn(move || {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(&addr.into()).unwrap();
        let mut stream = std::net::TcpStream::from(socket);
        write!(stream, "GET /bytes/{N} HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
        let started = std::time::Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = 0;
        while got < N {
            got += stream.read(&mut buf).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        (started.elapsed(), stream)
    });
    wait_until("the tcp.request event", || {
        !captured.events_named("tcp.request").is_empty()
    })
    .await;
    let (took, _stream) = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    let e = &captured.requests()[0];
    assert_request_fields(e);
    assert_eq!(e.fields[fields::OUTCOME].str(), "completed");
    let unique = unique_sent(e) as usize;
    assert!((N..N + 2048).contains(&unique), "{unique}: {:?}", e.fields);
    assert!(
        field(e, fields::DELTA_RWND_LIMITED_US) > 100_000,
        "{:?}",
        e.fields
    );
    let Value::F64(elapsed) = e.fields[fields::ELAPSED_S] else {
        panic!("elapsed")
    };
    // The report came when the last bytes left, not when hyper wrote them: most of the
    // client's reading time is inside the request.
    assert!(
        elapsed > took.as_secs_f64() / 2.0,
        "{elapsed} s of {took:?}"
    );
}

/// HTTP/2 with two streams in flight at once on one connection (hyper-util loop with
/// `WithConnection`): both reported, same connection, one sees the other in flight.
#[tokio::test(flavor = "current_thread")]
async fn http2_concurrent_streams_on_one_connection() {
    let (captured, _guard) = capture(Level::TRACE);
    let summaries = Summaries::default();
    let addr = serve_hyper_util(TcpInfoLayer::new().observer(summaries.clone()), 2).await;

    let (tcp, _oracle) = connect_std(addr);
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let get = |n: usize| {
        let mut sender = sender.clone();
        async move {
            let req = Request::get(format!("http://localhost/together/{n}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(req).await.unwrap();
            assert_eq!(response.version(), http::Version::HTTP_2);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            body.len()
        }
    };
    let (a, b) = tokio::join!(get(20_000), get(30_000));
    assert_eq!((a, b), (20_000, 30_000));
    wait_until("two tcp.request events", || {
        captured.events_named("tcp.request").len() == 2
    })
    .await;

    let events = captured.requests();
    for e in &events {
        assert_request_fields(e);
        assert_eq!(e.fields[fields::OUTCOME].str(), "completed");
        // Each delta covers at least its own body (and may include its neighbour's).
        let path = captured.span(e.parent.unwrap()).fields["url.path"].clone();
        let n: i64 = path
            .str()
            .strip_prefix("/together/")
            .unwrap()
            .parse()
            .unwrap();
        let sent = field(e, fields::DELTA_BYTES_SENT);
        assert!(sent >= n, "{path:?}: {sent} bytes sent");
        assert!(sent <= 50_000 + 2048, "{path:?}: {sent} bytes sent");
    }
    assert_eq!(
        field(&events[0], fields::CONN_ID),
        field(&events[1], fields::CONN_ID)
    );
    let mut numbers: Vec<i64> = events
        .iter()
        .map(|e| field(e, fields::REQUESTS_ON_CONN))
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2]);
    let concurrent: Vec<i64> = events
        .iter()
        .map(|e| field(e, fields::CONCURRENT))
        .collect();
    assert!(
        concurrent.contains(&1),
        "one stream saw the other: {concurrent:?}"
    );
    let summaries = summaries.all();
    assert_eq!(summaries.len(), 2);
    assert!(summaries.iter().any(|(s, _)| s.concurrent == 1));
    assert_eq!(summaries[0].0.connection.in_flight(), 0);
    task.abort();
}

/// The same hyper-util loop speaks HTTP/1.1 too, and the service's error passes through
/// unchanged while the request is reported as `service_error`.
#[tokio::test(flavor = "current_thread")]
async fn service_error_passes_through_and_is_reported() {
    let (captured, _guard) = capture(Level::TRACE);
    let summaries = Summaries::default();
    let addr = serve_hyper_util(TcpInfoLayer::new().observer(summaries.clone()), 1).await;

    let mut client = H1Client::connect(addr).await;
    let (status, len, _) = client.get("/bytes/1000").await;
    assert_eq!((status, len), (StatusCode::OK, 1000));
    client.sender.ready().await.unwrap();
    // hyper answers a service error by closing the connection without a response.
    let failed = client.sender.send_request(H1Client::request("/fail")).await;
    assert!(failed.is_err(), "{failed:?}");
    wait_until("two tcp.request events", || {
        captured.events_named("tcp.request").len() == 2
    })
    .await;
    let events = captured.requests();
    assert_eq!(events[0].fields[fields::OUTCOME].str(), "completed");
    assert_eq!(events[1].fields[fields::OUTCOME].str(), "service_error");
    assert_eq!(field(&events[1], fields::REQUESTS_ON_CONN), 2);
    assert!(field(&events[1], fields::RTT_US) > 0);
    let summaries = summaries.all();
    assert_eq!(summaries[1].0.outcome, BodyOutcome::ServiceError);
    client.task.abort();
}

/// The client goes away in the middle of a large, slow response: `cancelled`, with the
/// bytes that did go out.
#[tokio::test(flavor = "current_thread")]
async fn client_gone_mid_body_is_cancelled() {
    let (captured, _guard) = capture(Level::TRACE);
    let summaries = Summaries::default();
    let app = router().layer(TcpInfoLayer::new().observer(summaries.clone()));
    let addr = serve_axum(app).await;

    let mut client = H1Client::connect(addr).await;
    client.sender.ready().await.unwrap();
    let response = client
        .sender
        .send_request(H1Client::request("/slow/100000000"))
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut got = 0;
    while got < 64 * 1024 {
        let frame = body.frame().await.unwrap().unwrap();
        got += frame.into_data().map(|d| d.len()).unwrap_or(0);
    }
    drop(body);
    drop(client.sender);
    client.task.abort();
    drop(client.oracle);

    wait_until("the tcp.request event", || {
        !captured.events_named("tcp.request").is_empty()
    })
    .await;
    let events = captured.requests();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].fields[fields::OUTCOME].str(), "cancelled");
    assert!(field(&events[0], fields::DELTA_BYTES_SENT) >= 64 * 1024);
    assert!(field(&events[0], fields::DELTA_BYTES_SENT) < 100_000_000);
    assert_eq!(summaries.all()[0].0.outcome, BodyOutcome::Cancelled);
}

/// A body that fails part way is reported as `body_error`; chunked (unknown-length) and
/// empty bodies complete with their bytes counted.
#[tokio::test(flavor = "current_thread")]
async fn body_error_chunked_and_empty_bodies() {
    let (captured, _guard) = capture(Level::TRACE);
    let app = router().layer(TcpInfoLayer::new());
    let addr = serve_axum(app).await;

    let mut client = H1Client::connect(addr).await;
    let (status, len, chunked_received) = client.get("/chunks/200000").await;
    assert_eq!((status, len), (StatusCode::OK, 200_000));
    let (status, len, empty_received) = client.get("/empty").await;
    assert_eq!((status, len), (StatusCode::NO_CONTENT, 0));
    let (status, len, head_received) = client.head("/bytes/1000").await;
    assert_eq!((status, len), (StatusCode::OK, 0));
    let (status, len, not_modified_received) = client.get("/not-modified").await;
    assert_eq!((status, len), (StatusCode::NOT_MODIFIED, 0));
    client.sender.ready().await.unwrap();
    // hyper aborts the connection: the client sees an error, in the head or the body.
    match client
        .sender
        .send_request(H1Client::request("/failing"))
        .await
    {
        Ok(response) => assert!(response.into_body().collect().await.is_err()),
        Err(e) => assert!(e.is_incomplete_message(), "{e:?}"),
    }
    wait_until("five tcp.request events", || {
        captured.events_named("tcp.request").len() == 5
    })
    .await;
    let events = captured.requests();
    let outcomes: Vec<&str> = events
        .iter()
        .map(|e| e.fields[fields::OUTCOME].str())
        .collect();
    assert_eq!(
        outcomes,
        [
            "completed",
            "completed",
            "completed",
            "completed",
            "body_error"
        ]
    );
    // 304: the head only, though the handler returned a body.
    assert_eq!(unique_sent(&events[3]), not_modified_received);
    assert!((1..200).contains(&not_modified_received));
    // HEAD: a response head with `content-length: 1000` and no body.
    assert_eq!(unique_sent(&events[2]), head_received);
    assert!((1..1000).contains(&head_received), "{head_received}");
    // Chunked: body plus chunk framing, exactly what the client received.
    assert_eq!(
        unique_sent(&events[0]),
        chunked_received,
        "{:?}",
        events[0].fields
    );
    assert!(chunked_received > 200_000);
    // Empty body: the response head alone, written after the body "ended".
    assert_eq!(unique_sent(&events[1]), empty_received);
    assert!(empty_received > 0);
    client.task.abort();
}

/// Composition with `tower_http::trace::TraceLayer`: the fields land on the trace span
/// made with `request_span!`, the event is its child, and no extra span is made.
#[tokio::test(flavor = "current_thread")]
async fn fields_go_on_the_trace_layer_span() {
    let (captured, _guard) = capture(Level::TRACE);
    let app = router().layer(TcpInfoLayer::new()).layer(
        tower_http::trace::TraceLayer::new_for_http().make_span_with(
            |req: &Request<axum::body::Body>| {
                conniver::request_span!(Level::INFO, "request", uri = %req.uri())
            },
        ),
    );
    let addr = serve_axum(app).await;
    let mut client = H1Client::connect(addr).await;
    let (_, _, received) = client.get("/bytes/5000").await;
    wait_until("the tcp.request event", || {
        !captured.events_named("tcp.request").is_empty()
    })
    .await;

    assert!(
        captured.spans_named("tcp.request").is_empty(),
        "no own span"
    );
    let event = &captured.events_named("tcp.request")[0];
    assert_request_fields(event);
    let span = captured.span(event.parent.unwrap());
    assert_eq!(span.name, "request");
    assert_eq!(span.fields["uri"].str(), "/bytes/5000");
    for name in fields::ALL {
        assert_eq!(span.fields.get(*name), event.fields.get(*name), "{name}");
    }
    assert_eq!(unique_sent(event), received);
    assert_eq!(captured.span(span.follows_from[0]).name, "tcp.connection");
    // TraceLayer's own events still fire in its span.
    assert!(
        captured
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.target.starts_with("tower_http") && e.parent == event.parent)
    );
    client.task.abort();
}

/// A current span that did not declare the fields (TraceLayer's default span): the span
/// gets none of them, the event still carries all; `own_span(true)` makes a child span
/// that has them.
#[tokio::test(flavor = "current_thread")]
async fn undeclared_current_span_and_own_span() {
    let (captured, _guard) = capture(Level::TRACE);
    let trace = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(Level::INFO));
    let plain = router().layer(TcpInfoLayer::new()).layer(trace.clone());
    let own = router()
        .layer(TcpInfoLayer::new().own_span(true))
        .layer(trace);
    for (app, own_span) in [(plain, false), (own, true)] {
        let before = captured.events_named("tcp.request").len();
        let addr = serve_axum(app).await;
        let mut client = H1Client::connect(addr).await;
        client.get("/bytes/10").await;
        wait_until("the tcp.request event", || {
            captured.events_named("tcp.request").len() == before + 1
        })
        .await;
        let event = captured.events_named("tcp.request").pop().unwrap();
        assert_request_fields(&event);
        let span = captured.span(event.parent.unwrap());
        if own_span {
            assert_eq!(span.name, "tcp.request");
            assert_eq!(captured.span(span.parent.unwrap()).name, "request");
            assert!(span.fields.contains_key(fields::DELTA_BYTES_SENT));
        } else {
            assert_eq!(span.name, "request");
            assert!(!span.fields.keys().any(|k| k.starts_with("tcp.")));
        }
        client.task.abort();
    }
}

/// `event_level(DEBUG)` under an INFO subscriber: no event, no own span, but observers
/// still get every request.
#[tokio::test(flavor = "current_thread")]
async fn lower_event_level_is_filtered_but_observers_run() {
    let (captured, _guard) = capture(Level::INFO);
    let summaries = Summaries::default();
    let app = router().layer(
        TcpInfoLayer::new()
            .event_level(Level::DEBUG)
            .observer(summaries.clone()),
    );
    let addr = serve_axum(app).await;
    let mut client = H1Client::connect(addr).await;
    client.get("/bytes/10").await;
    client.get("/bytes/10").await;
    wait_until("two summaries", || summaries.all().len() == 2).await;
    assert!(captured.events_named("tcp.request").is_empty());
    assert!(captured.spans_named("tcp.request").is_empty());
    assert!(
        summaries
            .all()
            .iter()
            .all(|(s, span)| s.delta.bytes_sent.is_some() && span.is_none())
    );
    client.task.abort();
}

/// A plain tokio listener (no `TcpInfoListener`): requests are served, and one WARN
/// explains how to fix it, however many requests come.
#[tokio::test(flavor = "current_thread")]
async fn missing_connection_warns_once_and_serves() {
    let (captured, _guard) = capture(Level::TRACE);
    let summaries = Summaries::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router().layer(TcpInfoLayer::new().observer(summaries.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    for _ in 0..2 {
        let mut client = H1Client::connect(addr).await;
        for _ in 0..2 {
            let (status, len, _) = client.get("/bytes/100").await;
            assert_eq!((status, len), (StatusCode::OK, 100));
        }
        client.task.abort();
    }
    let warnings: Vec<_> = captured
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.level == Level::WARN)
        .cloned()
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].target, "conniver::layer");
    let message = warnings[0].fields["message"].str();
    assert!(message.contains("TcpInfoListener"), "{message}");
    assert!(
        message.contains("into_make_service_with_connect_info"),
        "{message}"
    );
    assert!(captured.events_named("tcp.request").is_empty());
    assert!(summaries.all().is_empty());
}

/// `Infallible` is what axum services return; make sure a plain tower stack with the
/// layer is `Clone + Send` and its future `Send` (what axum and hyper-util require).
#[test]
fn service_and_future_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let svc = tower::ServiceBuilder::new()
        .layer(TcpInfoLayer::new())
        .service_fn(|_req: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("x")))
        });
    let mut svc = svc.clone();
    assert_send(&svc);
    let fut = tower::Service::call(&mut svc, Request::new(Empty::new()));
    assert_send(&fut);
}
