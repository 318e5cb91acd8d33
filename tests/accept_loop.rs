//! The accept loop on real loopback sockets: accept → ticks → close, per connection and
//! in order; graceful shutdown (axum and hyper-util) reports every close before the
//! server future completes; the same under TLS; a stress test of thousands of
//! connections against a 1 ms sampler. The `tracing` output is tested in
//! `accept_loop_tracing.rs`, in its own process.
#![cfg(target_os = "linux")]

mod support {
    pub(crate) mod tls;
    pub(crate) mod wait;
}

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conniver::conn::WithConnection;
use conniver::{
    Connection, ConnectionObserver, ConnectionSummary, Info, TcpInfoListener, TcpState,
};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::tls::tls_configs;
use support::wait::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------
// A recording observer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Accept,
    Tick,
    Close,
}

#[derive(Debug, Clone)]
struct Event {
    kind: Kind,
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    info: Option<Info>,
    summary: Option<ConnectionSummary>,
}

/// Records every callback in one list; the list order is the order of the calls.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    fn push(
        &self,
        kind: Kind,
        conn: &Connection,
        info: Option<&Info>,
        s: Option<&ConnectionSummary>,
    ) {
        self.events.lock().unwrap().push(Event {
            kind,
            id: conn.id(),
            peer: conn.peer_addr(),
            local: conn.local_addr(),
            info: info.copied(),
            summary: s.copied(),
        });
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    fn count(&self, kind: Kind) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    /// Events per connection id, each list in call order.
    fn by_connection(&self) -> BTreeMap<u64, Vec<Event>> {
        let mut map: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
        for e in self.events() {
            map.entry(e.id).or_default().push(e);
        }
        map
    }

    fn ticks_of(&self, id: u64) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.id == id && e.kind == Kind::Tick)
            .count()
    }
}

impl ConnectionObserver for Recorder {
    fn on_accept(&self, conn: &Connection, info: Option<&Info>) {
        self.push(Kind::Accept, conn, info, None);
    }
    fn on_tick(&self, conn: &Connection, info: &Info) {
        self.push(Kind::Tick, conn, Some(info), None);
    }
    fn on_close(&self, conn: &Connection, info: Option<&Info>, summary: &ConnectionSummary) {
        assert!(conn.is_closed(), "on_close before the handle is revoked");
        self.push(Kind::Close, conn, info, Some(summary));
    }
}

/// Asserts accept first, close last, exactly one of each, only ticks between; returns the
/// number of ticks.
fn assert_lifecycle(id: u64, events: &[Event]) -> usize {
    let kinds: Vec<Kind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds.first(),
        Some(&Kind::Accept),
        "connection {id}: {kinds:?}"
    );
    assert_eq!(
        kinds.last(),
        Some(&Kind::Close),
        "connection {id}: {kinds:?}"
    );
    let middle = &kinds[1..kinds.len() - 1];
    assert!(
        middle.iter().all(|k| *k == Kind::Tick),
        "connection {id}: one accept, ticks, one close expected, got {kinds:?}"
    );
    middle.len()
}

const TICK: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------
// Plain accept loop.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_ticks_close_once_each_and_in_order() {
    const N: usize = 8;
    const MIN_TICKS: usize = 3;
    let recorder = Arc::new(Recorder::default());
    let listener = TcpInfoListener::builder()
        .tick(Some(TICK))
        .retain_snapshots(true)
        .observer(Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open = listener.connections();

    let server = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        for _ in 0..N {
            let (mut stream, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, stream.peer_addr());
            assert_eq!(stream.local_addr(), addr);
            tasks.spawn(async move {
                let conn = stream.connection().clone();
                assert!(
                    conn.snapshot().is_ok(),
                    "on-demand snapshot of an open stream"
                );
                let mut received = Vec::new();
                stream.read_to_end(&mut received).await.unwrap();
                drop(stream);
                (conn, received.len())
            });
        }
        (tasks.join_all().await, listener)
    });

    // Client i sends 100 + i bytes, so every close snapshot is recognisable.
    let mut clients = Vec::new();
    let mut sent = HashMap::new();
    for i in 0..N {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&vec![b'x'; 100 + i]).await.unwrap();
        sent.insert(c.local_addr().unwrap(), 100 + i);
        clients.push(c);
    }
    wait_until("every connection has ticked a few times", || {
        let all = recorder.by_connection();
        all.len() == N && all.keys().all(|&id| recorder.ticks_of(id) >= MIN_TICKS)
    })
    .await;
    drop(clients);
    let (served, _listener) = server.await.unwrap();

    let by_conn = recorder.by_connection();
    assert_eq!(by_conn.len(), N);
    assert_eq!(
        by_conn.keys().copied().collect::<Vec<_>>(),
        (1..=N as u64).collect::<Vec<_>>()
    );
    for (id, events) in &by_conn {
        let ticks = assert_lifecycle(*id, events);
        assert!(
            events
                .iter()
                .all(|e| e.local == addr && e.peer == events[0].peer)
        );
        assert!(ticks >= MIN_TICKS, "connection {id}: {ticks} ticks");
        let accept = events[0].info.expect("accept snapshot");
        assert_eq!(accept.state, Some(TcpState::Established));
        assert!(
            accept.congestion_control.is_some(),
            "accept reads the cc name"
        );
        let close = events.last().unwrap();
        // Linux counts the peer's FIN as one received byte (it advances rcv_nxt).
        let expected = sent[&close.peer] as u64 + 1;
        let close_info = close.info.expect("close snapshot");
        assert_eq!(close_info.bytes_received, Some(expected), "connection {id}");
        // The client closed first: we are in CLOSE_WAIT when the stream is dropped.
        assert_eq!(close_info.state, Some(TcpState::CloseWait));
        let summary = close.summary.unwrap();
        assert_eq!(summary.bytes_received, Some(expected));
        assert_eq!(summary.close_state, Some(TcpState::CloseWait));
        assert_eq!(summary.ticks, ticks as u64);
        assert!(
            summary.rtt_samples as usize >= ticks + 2,
            "accept + ticks + close"
        );
        assert!(summary.mean_rtt.is_some() && summary.min_rtt.is_some());
    }
    for (conn, received) in served {
        assert_eq!(received, sent[&conn.peer_addr()]);
        assert!(conn.is_closed());
        assert!(matches!(conn.snapshot(), Err(conniver::Error::Closed)));
        assert_eq!(
            conn.latest().unwrap().bytes_received,
            Some(received as u64 + 1)
        );
        assert_eq!(
            conn.accept_info().unwrap().state,
            Some(TcpState::Established)
        );
        assert!(conn.congestion_control().is_some());
    }
    assert!(
        open.is_empty(),
        "registry empty once every stream is dropped"
    );
}

#[tokio::test]
async fn ticks_off_means_accept_and_close_only() {
    let recorder = Arc::new(Recorder::default());
    let listener = TcpInfoListener::builder()
        .tick(None)
        .observer(Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(stream);
    drop(client);
    let kinds: Vec<Kind> = recorder.events().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Kind::Accept, Kind::Close]);
}

#[tokio::test]
async fn without_retained_snapshots_only_the_close_snapshot_is_kept() {
    let recorder = Arc::new(Recorder::default());
    let listener = TcpInfoListener::builder()
        .tick(Some(TICK))
        .retain_snapshots(false)
        .observer(Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (mut stream, _) = listener.accept().await.unwrap();
    let conn = stream.connection().clone();
    client.write_all(b"abc").await.unwrap();
    let mut buf = [0u8; 3];
    stream.read_exact(&mut buf).await.unwrap();
    assert!(conn.snapshot().is_ok());
    wait_until("a tick", || recorder.count(Kind::Tick) >= 1).await;
    assert!(conn.accept_info().is_none() && conn.latest().is_none());
    // Observers still see every snapshot.
    assert!(recorder.events()[0].info.is_some());
    drop(stream);
    assert_eq!(conn.latest().unwrap().bytes_received, Some(3));
    let summary = recorder.events().last().unwrap().summary.unwrap();
    assert!(summary.rtt_samples >= 3 && summary.mean_rtt.is_some());
}

// ---------------------------------------------------------------------------------------
// Graceful shutdown.

/// Opens `n` HTTP/1.1 keep-alive connections, makes one request on each, and keeps the
/// connections open (idle) until the server closes them. Returns the response bodies.
/// Client halves kept alive by the caller.
type KeepAlive = (
    Vec<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>,
    JoinSet<()>,
);

async fn keep_alive_clients(addr: SocketAddr, n: usize) -> (Vec<String>, KeepAlive) {
    let mut bodies = Vec::new();
    let mut senders = Vec::new();
    let mut conns = JoinSet::new();
    for _ in 0..n {
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        conns.spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::get("/")
            .header("host", "test")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert!(res.status().is_success());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        bodies.push(String::from_utf8(body.to_vec()).unwrap());
        // Keep `sender` alive: the connection stays open and idle.
        senders.push(sender);
    }
    (bodies, (senders, conns))
}

#[tokio::test] // current-thread: serve's completion strictly follows every stream drop
async fn axum_graceful_shutdown_reports_every_close_first() {
    const N: usize = 5;
    let recorder = Arc::new(Recorder::default());
    let listener = TcpInfoListener::builder()
        .tick(Some(TICK))
        .observer(Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open = listener.connections();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(
            |axum::extract::ConnectInfo(conn): axum::extract::ConnectInfo<Connection>| async move {
                conn.record_request();
                format!("{} {}", conn.id(), conn.peer_addr())
            },
        ),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<Connection>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });

    let (bodies, _clients) = keep_alive_clients(addr, N).await;
    assert_eq!(open.len(), N);
    let by_conn = recorder.by_connection();
    for body in &bodies {
        let (id, peer) = body.split_once(' ').unwrap();
        let id: u64 = id.parse().unwrap();
        assert_eq!(
            by_conn[&id][0].peer.to_string(),
            peer,
            "ConnectInfo<Connection> is the right one"
        );
    }
    assert_eq!(recorder.count(Kind::Close), 0);

    stop_tx.send(()).unwrap();
    server.await.unwrap();
    // No waiting: serve() has returned, so every close must be there.
    assert_eq!(recorder.count(Kind::Accept), N);
    assert_eq!(
        recorder.count(Kind::Close),
        N,
        "a close snapshot per connection"
    );
    for (id, events) in recorder.by_connection() {
        assert_lifecycle(id, &events);
        let close = events.last().unwrap();
        assert!(
            close.info.is_some(),
            "close snapshot taken while the fd was open"
        );
        assert_eq!(close.summary.unwrap().requests, 1);
    }
    assert!(open.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_graceful_shutdown_multi_thread_with_all_closed() {
    const N: usize = 5;
    let recorder = Arc::new(Recorder::default());
    let listener = TcpInfoListener::builder()
        .tick(Some(TICK))
        .observer(Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open = listener.connections();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<Connection>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    let (_bodies, _clients) = keep_alive_clients(addr, N).await;
    stop_tx.send(()).unwrap();
    server.await.unwrap();
    // On a multi-threaded runtime axum's serve may return a moment before the last
    // connection task drops its stream; `all_closed` closes that gap.
    open.all_closed().await;
    assert_eq!(recorder.count(Kind::Accept), N);
    assert_eq!(recorder.count(Kind::Close), N);
    for (id, events) in recorder.by_connection() {
        assert_lifecycle(id, &events);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_util_graceful_shutdown_reports_every_close_first() {
    const N: usize = 5;
    let recorder = Arc::new(Recorder::default());
    let listener = TcpInfoListener::builder()
        .tick(Some(TICK))
        .observer(Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open = listener.connections();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();

    let server = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _peer) = accepted.unwrap();
                    let service = WithConnection::new(
                        stream.connection().clone(),
                        hyper::service::service_fn(|req: http::Request<Incoming>| async move {
                            let conn = req.extensions().get::<Connection>().expect("Connection in extensions");
                            conn.record_request();
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(conn.id().to_string()))))
                        }),
                    );
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let watched = graceful.watch(conn);
                    tokio::spawn(async move { let _ = watched.await; });
                }
                _ = &mut stop_rx => break,
            }
        }
        drop(listener);
        graceful.shutdown().await;
    });

    let (bodies, _clients) = keep_alive_clients(addr, N).await;
    let mut ids: Vec<u64> = bodies.iter().map(|b| b.parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=N as u64).collect::<Vec<_>>());
    stop_tx.send(()).unwrap();
    server.await.unwrap();
    // `GracefulShutdown::shutdown` resolves after the watched futures (which own the
    // streams) are dropped: every close is already reported, on any runtime.
    assert_eq!(recorder.count(Kind::Close), N);
    for (id, events) in recorder.by_connection() {
        assert_lifecycle(id, &events);
        assert_eq!(events.last().unwrap().summary.unwrap().requests, 1);
    }
    assert!(open.is_empty());
}

// ---------------------------------------------------------------------------------------
// TLS on top of the tracked stream.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_accept_ticks_close() {
    const N: usize = 3;
    let (server_cfg, client_cfg) = tls_configs();
    let recorder = Arc::new(Recorder::default());
    let listener = TcpInfoListener::builder()
        .tick(Some(TICK))
        .observer(Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open = listener.connections();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_cfg);

    let server = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        for _ in 0..N {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tasks.spawn(async move {
                let mut tls = acceptor.accept(stream).await.unwrap();
                let conn = tls.get_ref().0.connection().clone();
                let mut line = [0u8; 5];
                tls.read_exact(&mut line).await.unwrap();
                tls.write_all(b"pong!").await.unwrap();
                tls.flush().await.unwrap();
                // Wait for the client's close_notify / EOF, then drop (close snapshot).
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest).await;
                drop(tls);
                conn
            });
        }
        tasks.join_all().await
    });

    let connector = tokio_rustls::TlsConnector::from(client_cfg);
    let mut clients = Vec::new();
    for _ in 0..N {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(b"ping!").await.unwrap();
        let mut reply = [0u8; 5];
        tls.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"pong!");
        clients.push(tls);
    }
    wait_until("every TLS connection has ticked twice", || {
        let all = recorder.by_connection();
        all.len() == N && all.keys().all(|&id| recorder.ticks_of(id) >= 2)
    })
    .await;
    for mut c in clients {
        c.shutdown().await.unwrap();
    }
    let conns = server.await.unwrap();
    assert_eq!(conns.len(), N);
    for (id, events) in recorder.by_connection() {
        assert!(assert_lifecycle(id, &events) >= 2);
        let close = events
            .last()
            .unwrap()
            .info
            .expect("close snapshot under TLS");
        // ClientHello, Finished, "ping!" and close_notify, at least a few hundred bytes.
        assert!(close.bytes_received.unwrap() > 200, "{close:?}");
        assert!(close.bytes_sent.unwrap() > 200);
    }
    assert!(conns.iter().all(Connection::is_closed));
    assert!(open.is_empty());
}

// ---------------------------------------------------------------------------------------
// Stress: thousands of short connections against a 1 ms sampler.

/// The number of bytes a client with local port `port` sends: even, and distinct for
/// ports that differ by less than 1500, so two connections open at the same time almost
/// never share it. See `stress_*` for why this makes misattribution visible.
fn payload_len(port: u16) -> usize {
    2 * (1 + usize::from(port) % 1500)
}

/// Checks every sample against the connection it was attributed to.
#[derive(Default)]
struct Attribution {
    ticks: AtomicU64,
    checked: AtomicU64,
    zero: AtomicU64,
    seen_payload: Mutex<std::collections::HashSet<u64>>,
    wrong: Mutex<Vec<String>>,
    accepts: AtomicU64,
    closes: AtomicU64,
    closed_ids: Mutex<Vec<u64>>,
    registry_mismatch: AtomicBool,
}

impl Attribution {
    fn check(&self, what: &str, conn: &Connection, info: &Info, complete: bool) {
        let expected = payload_len(conn.peer_addr().port()) as u64;
        let mut seen = self.seen_payload.lock().unwrap();
        match info.bytes_received {
            // The payload is sent before the accept, but could in rare cases still be in
            // flight; nothing to compare then (counted, to see the check has teeth). Once
            // a sample showed the payload, 0 is wrong: it is, for example, a reused fd
            // number that now belongs to a client socket of this test.
            Some(0) if !complete && !seen.contains(&conn.id()) => {
                self.zero.fetch_add(1, Ordering::Relaxed);
            }
            // The payload, plus 1 once the client's FIN arrived (Linux counts it).
            Some(n) if n == expected || n == expected + 1 => {
                seen.insert(conn.id());
                self.checked.fetch_add(1, Ordering::Relaxed);
            }
            other => self.wrong.lock().unwrap().push(format!(
                "{what} of connection {} (peer {}): bytes_received {other:?}, its client sent {expected}",
                conn.id(),
                conn.peer_addr()
            )),
        }
        if info.state == Some(TcpState::Listen) {
            self.wrong
                .lock()
                .unwrap()
                .push(format!("{what} of {} read a listener", conn.id()));
        }
    }
}

impl ConnectionObserver for Attribution {
    fn on_accept(&self, conn: &Connection, info: Option<&Info>) {
        self.accepts.fetch_add(1, Ordering::Relaxed);
        match info {
            Some(info) => self.check("accept", conn, info, false),
            None => self
                .wrong
                .lock()
                .unwrap()
                .push(format!("no accept snapshot for {}", conn.id())),
        }
    }
    fn on_tick(&self, conn: &Connection, info: &Info) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        self.check("tick", conn, info, false);
        // A slow observer: widens the window between the sampler taking a batch of
        // handles and reading the last of them, in which other connections close and
        // their fd numbers are reused by new accepts.
        let until = std::time::Instant::now() + Duration::from_micros(50);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
    }
    fn on_close(&self, conn: &Connection, info: Option<&Info>, _s: &ConnectionSummary) {
        self.closes.fetch_add(1, Ordering::Relaxed);
        self.closed_ids.lock().unwrap().push(conn.id());
        match info {
            Some(info) => self.check("close", conn, info, true),
            None => self
                .wrong
                .lock()
                .unwrap()
                .push(format!("no close snapshot for {}", conn.id())),
        }
    }
}

/// Why this detects a sample read from the wrong socket: each client sends a payload
/// whose length is a function of its own port, and the server reads it completely before
/// it drops the stream. Clients connect and send in rounds, and the server accepts a
/// round only once all its payloads are sent, so from the accept snapshot on, the
/// kernel's `bytes_received` of a socket is exactly that length (one write ≤ 3000 bytes
/// is one loopback segment), or that length + 1 once the client's FIN arrived (Linux
/// counts the FIN). A snapshot that read a *different* socket — a closed fd number
/// reused by a later accept — would carry the other client's length, which differs
/// unless both ports are equal modulo 1500 (even lengths keep "+1 for FIN" from
/// colliding with a neighbour). Rounds overlap: round n is accepted while round n-1 is
/// closing, so fd numbers are reused constantly while the 1 ms sampler runs.
/// `Connection::peer_addr` is the registry entry's peer, so a mismatch also means "the
/// sample does not belong to this entry".
///
/// The race is real but narrow, so the observer below is deliberately slow (50 µs per
/// tick) to widen the window between the sampler taking a batch of handles and reading
/// them. Checked by mutation: with the revocation and the closed check removed from
/// `Connection`, about half the runs of this test report misattributed samples (reads of
/// reused fds now belonging to another server or client socket). The deterministic
/// counterpart is `a_closed_handle_never_reads_the_socket_that_reuses_its_fd`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_no_sample_is_misattributed_and_nothing_leaks() {
    const ROUNDS: usize = 30;
    const PER_ROUND: usize = 100;
    const TOTAL: usize = ROUNDS * PER_ROUND;
    let probe = Arc::new(Attribution::default());
    let listener = TcpInfoListener::builder()
        .tick(Some(Duration::from_millis(1)))
        .observer(Arc::clone(&probe))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open = listener.connections();
    let (go_tx, mut go_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();

    let server_probe = Arc::clone(&probe);
    let server = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        while let Some(round) = go_rx.recv().await {
            for _ in 0..round {
                let (mut stream, peer) = listener.accept().await.unwrap();
                if stream.connection().peer_addr() != peer {
                    server_probe
                        .registry_mismatch
                        .store(true, Ordering::Relaxed);
                }
                tasks.spawn(async move {
                    let mut buf = vec![0u8; payload_len(peer.port())];
                    stream.read_exact(&mut buf).await.unwrap();
                    stream.write_all(b"k").await.unwrap();
                    // Hold until the client closes, so closes interleave with accepts.
                    let mut rest = [0u8; 1];
                    let n = stream.read(&mut rest).await.unwrap();
                    assert_eq!(n, 0);
                });
                // Reap finished handlers as we go (a panic in one surfaces here).
                while let Some(done) = tasks.try_join_next() {
                    done.unwrap();
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        listener
    });

    let mut clients = JoinSet::new();
    for round in 0..ROUNDS {
        let mut batch = Vec::with_capacity(PER_ROUND);
        for _ in 0..PER_ROUND {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let port = c.local_addr().unwrap().port();
            c.write_all(&vec![b'p'; payload_len(port)]).await.unwrap();
            batch.push(c);
        }
        go_tx.send(PER_ROUND).unwrap();
        for (i, mut c) in batch.into_iter().enumerate() {
            clients.spawn(async move {
                let mut ack = [0u8; 1];
                c.read_exact(&mut ack).await.unwrap();
                // Vary lifetimes so closes, accepts and ticks interleave differently.
                match (i + round) % 4 {
                    0 => tokio::time::sleep(Duration::from_millis(3)).await,
                    1 => tokio::time::sleep(Duration::from_millis(1)).await,
                    _ => tokio::task::yield_now().await,
                }
                drop(c);
            });
        }
    }
    drop(go_tx);
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let listener = server.await.unwrap();

    let wrong = probe.wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "{} misattributed samples, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(!probe.registry_mismatch.load(Ordering::Relaxed));
    assert_eq!(probe.accepts.load(Ordering::Relaxed), TOTAL as u64);
    assert_eq!(probe.closes.load(Ordering::Relaxed), TOTAL as u64);
    let mut ids = probe.closed_ids.lock().unwrap().clone();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), TOTAL, "exactly one close per connection");
    let ticks = probe.ticks.load(Ordering::Relaxed);
    let checked = probe.checked.load(Ordering::Relaxed);
    let zero = probe.zero.load(Ordering::Relaxed);
    eprintln!("stress: {ticks} tick samples; {checked} samples checked, {zero} before the payload");
    assert!(ticks > 0, "the sampler ran during the test");
    assert!(
        checked >= 2 * TOTAL as u64,
        "accept and close of each connection checked"
    );
    assert!(open.is_empty(), "registry empty at the end: {}", open.len());
    assert!(open.list().is_empty());
    drop(listener);
}

/// The fd-reuse hazard made deterministic: the kernel gives a new socket the lowest free
/// descriptor number, so the next accept after a close reuses the closed stream's number.
/// A raw-fd sampler would now read the new connection and call it the old one.
#[tokio::test]
async fn a_closed_handle_never_reads_the_socket_that_reuses_its_fd() {
    use std::os::fd::{AsFd, AsRawFd};
    let listener = TcpInfoListener::builder()
        .tick(None)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let _a_client = TcpStream::connect(addr).await.unwrap();
    let (a, _) = listener.accept().await.unwrap();
    let a_fd = a.as_fd().as_raw_fd();
    let a_conn = a.connection().clone();
    drop(a);

    // Open connections until the number is in use again: by one of ours, normally, or
    // by a socket of a test running in parallel (the hazard is the same).
    let in_use = || std::path::Path::new(&format!("/proc/self/fd/{a_fd}")).exists();
    let mut open = Vec::new();
    while !in_use() && open.len() < 200 {
        let client = TcpStream::connect(addr).await.unwrap();
        let (b, _) = listener.accept().await.unwrap();
        open.push((client, b));
    }
    assert!(in_use(), "fd {a_fd} was not reused");
    if let Some((_, b)) = open.iter().find(|(_, b)| b.as_fd().as_raw_fd() == a_fd) {
        assert!(b.connection().snapshot().is_ok());
        assert_ne!(a_conn.id(), b.connection().id());
    }
    assert!(a_conn.is_closed());
    assert!(matches!(a_conn.snapshot(), Err(conniver::Error::Closed)));
}
