//! The accept loop's `tracing` output: one root span per connection with the agreed
//! field names and types, tick and close events inside it.
//!
//! In its own test binary because it installs a thread-local subscriber: `tracing`
//! caches each call site's interest process-wide, and a call site first hit by another
//! test's thread (with no subscriber) while this one runs can be cached as "never",
//! which made this test flaky inside `accept_loop.rs`.
#![cfg(target_os = "linux")]

use std::time::Duration;

use conniver::TcpInfoListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TICK: Duration = Duration::from_millis(20);

/// Polls `cond` every 5 ms for up to 20 s (a liveness bound, not a timing assertion).
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

mod capture {
    use std::collections::HashMap;
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    /// A recorded field value, keeping its type.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum Value {
        I64(i64),
        U64(u64),
        F64(f64),
        Bool(bool),
        Str(String),
    }

    #[derive(Default)]
    struct Fields(HashMap<String, Value>);

    impl Visit for Fields {
        fn record_i64(&mut self, f: &Field, v: i64) {
            self.0.insert(f.name().into(), Value::I64(v));
        }
        fn record_u64(&mut self, f: &Field, v: u64) {
            self.0.insert(f.name().into(), Value::U64(v));
        }
        fn record_f64(&mut self, f: &Field, v: f64) {
            self.0.insert(f.name().into(), Value::F64(v));
        }
        fn record_bool(&mut self, f: &Field, v: bool) {
            self.0.insert(f.name().into(), Value::Bool(v));
        }
        fn record_str(&mut self, f: &Field, v: &str) {
            self.0.insert(f.name().into(), Value::Str(v.into()));
        }
        fn record_debug(&mut self, f: &Field, v: &dyn Debug) {
            self.0.insert(f.name().into(), Value::Str(format!("{v:?}")));
        }
    }

    #[derive(Debug, Clone)]
    pub(crate) struct SpanRec {
        pub(crate) name: String,
        pub(crate) is_root: bool,
        pub(crate) fields: HashMap<String, Value>,
    }

    #[derive(Debug, Clone)]
    pub(crate) struct EventRec {
        pub(crate) name: String,
        pub(crate) parent: Option<u64>,
        pub(crate) fields: HashMap<String, Value>,
    }

    #[derive(Default, Clone)]
    pub(crate) struct Captured {
        pub(crate) spans: Arc<Mutex<HashMap<u64, SpanRec>>>,
        pub(crate) events: Arc<Mutex<Vec<EventRec>>>,
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Captured {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            self.spans.lock().unwrap().insert(
                id.into_u64(),
                SpanRec {
                    name: attrs.metadata().name().into(),
                    is_root: attrs.is_root(),
                    fields: fields.0,
                },
            );
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
            let mut fields = Fields::default();
            values.record(&mut fields);
            if let Some(span) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
                span.fields.extend(fields.0);
            }
        }

        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            self.events.lock().unwrap().push(EventRec {
                name: event.metadata().name().into(),
                parent: event.parent().map(Id::into_u64),
                fields: fields.0,
            });
        }
    }
}

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
            .filter(|e| e.name == "tcp.tick" && e.parent == Some(span_id))
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
        assert_eq!(t.parent, Some(span_id));
        assert!(matches!(t.fields["tcp.rtt_us"], Value::I64(_)));
        assert_eq!(t.fields["tcp.bytes_received"], Value::I64(5));
        assert!(t.fields.values().all(|v| !matches!(v, Value::U64(_))));
    }
    let closes: Vec<_> = events.iter().filter(|e| e.name == "tcp.close").collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].parent, Some(span_id));
    assert!(matches!(closes[0].fields["tcp.duration_s"], Value::F64(_)));
}
