//! The accept loop's `tracing` output: one root span per connection with the agreed
//! field names and types, tick and close events inside it.
//!
//! In its own test binary because it installs a thread-local subscriber: `tracing`
//! caches each call site's interest process-wide, and a call site first hit by another
//! test's thread (with no subscriber) while this one runs can be cached as "never",
//! which made this test flaky inside `accept_loop.rs`.
#![cfg(target_os = "linux")]

mod support {
    pub(crate) mod capture;
    pub(crate) mod wait;
}

use std::time::Duration;

use conniver::TcpInfoListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::capture;
use support::wait::wait_until;

const TICK: Duration = Duration::from_millis(20);

#[tokio::test] // current-thread: the thread-local subscriber sees the sampler too
async fn connection_span_and_events_follow_the_field_convention() {
    use capture::Value;
    use tracing_subscriber::layer::SubscriberExt;

    let captured = capture::Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(captured.clone())
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let _guard = tracing::subscriber::set_default(subscriber);

    let listener = TcpInfoListener::builder()
        .tick(Some(TICK))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (mut stream, _) = listener.accept().await.unwrap();
    let conn = stream.connection().clone();
    client.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.unwrap();
    let span_id = conn.span().id().expect("span enabled").into_u64();
    wait_until("two tick events", || {
        captured
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.name == "tcp.tick" && e.explicit_parent == Some(span_id))
            .count()
            >= 2
    })
    .await;
    drop(stream);
    drop(client);

    let spans = captured.spans.lock().unwrap().clone();
    let conn_spans: Vec<_> = spans
        .values()
        .filter(|s| s.name == "tcp.connection")
        .collect();
    assert_eq!(conn_spans.len(), 1);
    let span = &spans[&span_id];
    assert!(span.is_root, "the connection span is a root span");
    let f = &span.fields;
    assert_eq!(f["tcp.conn_id"], Value::I64(conn.id() as i64));
    assert_eq!(f["tcp.peer"], Value::Str(conn.peer_addr().to_string()));
    assert_eq!(f["tcp.local"], Value::Str(conn.local_addr().to_string()));
    assert!(matches!(f["tcp.congestion_control"], Value::Str(_)));
    assert!(matches!(f["tcp.accept_rtt_us"], Value::I64(_)));
    // Close fields, recorded on the span.
    assert!(matches!(f["tcp.duration_s"], Value::F64(d) if d > 0.0));
    assert_eq!(f["tcp.bytes_received"], Value::I64(5));
    assert!(matches!(f["tcp.segs_in"], Value::I64(_)));
    assert!(matches!(f["tcp.min_rtt_us"], Value::I64(_)));
    assert!(matches!(f["tcp.mean_rtt_us"], Value::I64(_)));
    // We drop the stream before the client closes: the socket is still ESTABLISHED.
    assert_eq!(f["tcp.close_state"], Value::Str("ESTABLISHED".into()));
    assert!(
        f.values().all(|v| !matches!(v, Value::U64(_))),
        "no u64 fields: {f:?}"
    );

    let events = captured.events.lock().unwrap().clone();
    let ticks: Vec<_> = events.iter().filter(|e| e.name == "tcp.tick").collect();
    assert!(ticks.len() >= 2);
    for t in &ticks {
        assert_eq!(t.explicit_parent, Some(span_id));
        assert!(matches!(t.fields["tcp.rtt_us"], Value::I64(_)));
        assert_eq!(t.fields["tcp.bytes_received"], Value::I64(5));
        assert!(t.fields.values().all(|v| !matches!(v, Value::U64(_))));
    }
    let closes: Vec<_> = events.iter().filter(|e| e.name == "tcp.close").collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].explicit_parent, Some(span_id));
    assert!(matches!(closes[0].fields["tcp.duration_s"], Value::F64(_)));
}
