//! The slow-client policy end to end on loopback: an axum server with `TcpInfoListener`
//! and `TcpInfoLayer` (default observers), a client that stops reading a large
//! response, a fast client beside it, and a burst of offending requests against the
//! rate limiter.
#![cfg(all(target_os = "linux", feature = "prometheus", feature = "axum"))]

mod support {
    pub(crate) mod capture;
    pub(crate) mod chunks;
}

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use conniver::telemetry::prometheus::PrometheusMetrics;
use conniver::telemetry::{SLOW_CLIENT_TARGET, SlowClientPolicy};
use conniver::{Connection, TcpInfoLayer, TcpInfoListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::capture::{self, Captured};
use support::chunks::Chunks;

// ---------------------------------------------------------------------------------------
// Captured slow-client events (one global subscriber for the whole test binary).

struct Setup {
    capture: &'static Captured,
    metrics: PrometheusMetrics,
}

/// The capturing subscriber and the global meter provider (which the default observers
/// record into), installed once for all tests of this file.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| Setup {
        capture: capture::global(SLOW_CLIENT_TARGET),
        metrics: PrometheusMetrics::install().unwrap(),
    })
}

/// The value of the `tcp_slow_client_warnings_total` series with these labels (0 if
/// absent), from the exposition text.
fn warnings(text: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("tcp_slow_client_warnings_total{"))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The server.

const BIG: usize = 16 << 20;
const SMALL: usize = 1 << 20;

fn app() -> Router {
    Router::new()
        .route(
            "/big",
            get(|| async { axum::body::Body::new(Chunks { left: BIG }) }),
        )
        .route(
            "/small",
            get(|| async { axum::body::Body::new(Chunks { left: SMALL }) }),
        )
        .route("/burst", get(|| async { "ok" }))
}

async fn serve(layer: TcpInfoLayer) -> SocketAddr {
    let listener = TcpInfoListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app()
                .layer(layer)
                .into_make_service_with_connect_info::<Connection>(),
        )
        .await
        .unwrap();
    });
    addr
}

// ---------------------------------------------------------------------------------------
// Clients: HTTP/1.1 by hand, to control exactly when the response is read.

/// Connects with a receive buffer of `rcvbuf` bytes (small = the window closes fast).
async fn connect(addr: SocketAddr, rcvbuf: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n).unwrap();
    }
    socket.connect(addr).await.unwrap()
}

async fn send_get(stream: &mut TcpStream, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
}

/// Reads one response to its end (`content-length` framing); returns the body size.
/// `stall` pauses reading once, after the first bytes.
async fn read_response(stream: &mut TcpStream, stall: Duration) -> usize {
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let body_len;
    let mut have;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed in the head");
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = std::str::from_utf8(&head[..end])
                .unwrap()
                .to_ascii_lowercase();
            assert!(text.starts_with("http/1.1 200"), "{text}");
            body_len = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap())
                .expect("content-length");
            have = head.len() - end - 4;
            break;
        }
    }
    tokio::time::sleep(stall).await;
    while have < body_len {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed in the body");
        have += n;
    }
    assert_eq!(have, body_len);
    have
}

// ---------------------------------------------------------------------------------------

/// A client that stops reading a 16 MiB response for 1.5 s gets exactly one WARN
/// from the default policy, with reason `rwnd_limited` and the figures behind it, and
/// the counter counts it; a fast client on the same server at the same time does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_warns_once_and_a_fast_one_does_not() {
    let setup = setup();
    let addr = serve(TcpInfoLayer::new()).await;
    let stall = Duration::from_millis(1500);

    let slow = tokio::spawn(async move {
        let mut stream = connect(addr, Some(16 * 1024)).await;
        let peer = stream.local_addr().unwrap();
        send_get(&mut stream, "/big").await;
        let started = Instant::now();
        assert_eq!(read_response(&mut stream, stall).await, BIG);
        (peer, started.elapsed())
    });
    let fast = tokio::spawn(async move {
        let mut stream = connect(addr, None).await;
        let peer = stream.local_addr().unwrap();
        for _ in 0..3 {
            send_get(&mut stream, "/small").await;
            assert_eq!(read_response(&mut stream, Duration::ZERO).await, SMALL);
        }
        peer
    });
    let (slow_peer, slow_elapsed) = slow.await.unwrap();
    let fast_peer = fast.await.unwrap();
    assert!(slow_elapsed >= stall);

    let slow_peer = slow_peer.to_string();
    eventually(|| async {
        let found = !setup.capture.matching("tcp.peer", &slow_peer).is_empty();
        found.then_some(())
    })
    .await;
    // Late duplicates would show up within the drain/poll interval of the layer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = setup.capture.matching("tcp.peer", &slow_peer);
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e["level"], "WARN");
    assert_eq!(e["message"], "slow client");
    assert_eq!(e["source"], "request");
    assert_eq!(e["http.request.method"], "GET");
    assert_eq!(e["url.path"], "/big");
    assert!(
        e["reason"].split(',').any(|r| r == "rwnd_limited"),
        "{e:#?}"
    );
    let limited_us: i64 = e["tcp.delta.rwnd_limited_us"].parse().unwrap();
    let elapsed_s: f64 = e["tcp.elapsed_s"].parse().unwrap();
    let ratio: f64 = e["tcp.rwnd_limited_ratio"].parse().unwrap();
    assert!(limited_us >= 1_000_000, "{e:#?}");
    assert!(elapsed_s >= stall.as_secs_f64() - 0.05, "{e:#?}");
    assert!(ratio > 0.3 && ratio <= 1.0, "{e:#?}");
    assert!(
        (ratio - limited_us as f64 / 1e6 / elapsed_s).abs() < 1e-6,
        "{e:#?}"
    );
    assert!(e.contains_key("suppressed"));
    if std::env::var_os("CONNIVER_TEST_PRINT").is_some() {
        eprintln!("{e:#?}");
    }

    assert!(
        setup
            .capture
            .matching("tcp.peer", &fast_peer.to_string())
            .is_empty(),
        "the fast client was flagged"
    );

    let port = addr.port().to_string();
    let text = setup.metrics.render();
    assert_eq!(
        warnings(&text, &[("reason", "rwnd_limited"), ("server_port", &port)]),
        1.0,
        "{text}"
    );
}

/// 100 offending requests at once: at most the burst is logged, the counter counts
/// all 100, and the next line logged reports how many were suppressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_rate_limited_but_counted() {
    let setup = setup();
    let own = PrometheusMetrics::builder().global(false).build().unwrap();
    const BURST: u32 = 5;
    // Every request offends (any RTT is above 1 ns); one line per second after the
    // burst.
    let policy = SlowClientPolicy::new()
        .rtt_above(Some(Duration::from_nanos(1)))
        .log_rate(1, BURST)
        .meter(&own.meter());
    let addr = serve(
        TcpInfoLayer::new()
            .without_default_observers()
            .observer(policy),
    )
    .await;

    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(tokio::spawn(async move {
            let mut stream = connect(addr, None).await;
            for _ in 0..10 {
                send_get(&mut stream, "/burst").await;
                read_response(&mut stream, Duration::ZERO).await;
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let port = addr.port().to_string();
    let counted = |own: &PrometheusMetrics| {
        warnings(&own.render(), &[("reason", "rtt"), ("server_port", &port)])
    };
    eventually(|| async { (counted(&own) == 100.0).then_some(()) }).await;
    let burst_secs = started.elapsed().as_secs_f64();

    let logged = setup.capture.matching("url.path", "/burst");
    let allowed = BURST as usize + burst_secs.ceil() as usize;
    assert!(
        !logged.is_empty() && logged.len() <= allowed,
        "{} logged in {burst_secs:.2} s",
        logged.len()
    );
    assert!(logged.iter().all(|e| e["reason"] == "rtt"));

    // A second later a token is back: the next line says how many were dropped.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut stream = connect(addr, None).await;
    send_get(&mut stream, "/burst").await;
    read_response(&mut stream, Duration::ZERO).await;
    eventually(|| async { (counted(&own) == 101.0).then_some(()) }).await;
    let all = setup.capture.matching("url.path", "/burst");
    assert_eq!(all.len(), logged.len() + 1, "{all:#?}");
    let last = all.last().unwrap();
    assert_eq!(
        last["suppressed"],
        (100 - logged.len()).to_string(),
        "{last:#?}"
    );
}
