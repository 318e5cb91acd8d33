//! A recording `tracing` layer for the integration tests: spans (declared and recorded
//! fields, parent, follows_from) and events (target, level, parent, fields), each field
//! with its type kept, optionally only those of one target.
//!
//! Use it through `mod support;` (`support::capture`), or, in a test that needs nothing
//! else from `tests/support/`, through `mod support { pub(crate) mod capture; }`.
//! How it is installed (thread-local, global, forwarded per thread) is the test's own
//! business; [`global`] is the plain process-wide one.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// A recorded field value, keeping its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// A `&str`, or anything recorded with `Debug` (as `{:?}` renders it).
    Str(String),
}

impl Value {
    pub fn i64(&self) -> i64 {
        match self {
            Value::I64(v) => *v,
            other => panic!("expected i64, got {other:?}"),
        }
    }

    pub fn str(&self) -> &str {
        match self {
            Value::Str(v) => v,
            other => panic!("expected str, got {other:?}"),
        }
    }

    /// The value as text, as a visitor that keeps only `record_str` and `record_debug`
    /// renders it: a string as it is, anything else as `{:?}`.
    pub fn text(&self) -> String {
        match self {
            Value::I64(v) => format!("{v:?}"),
            Value::U64(v) => format!("{v:?}"),
            Value::F64(v) => format!("{v:?}"),
            Value::Bool(v) => format!("{v:?}"),
            Value::Str(v) => v.clone(),
        }
    }
}

/// Field name to value.
pub type Fields = HashMap<String, Value>;

/// Field name to value as text ([`Value::text`]), ordered by name.
pub type TextFields = BTreeMap<String, String>;

#[derive(Default)]
struct Visitor(Fields);

impl Visit for Visitor {
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
pub struct SpanRec {
    pub name: String,
    pub target: String,
    /// The explicit parent, or else the current span when the span was created.
    pub parent: Option<u64>,
    /// Created with an explicit `parent: None`.
    pub is_root: bool,
    /// Every field the span declared, recorded or not.
    pub declared: Vec<String>,
    /// The fields recorded at creation and since.
    pub fields: Fields,
    pub follows_from: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct EventRec {
    pub name: String,
    pub target: String,
    pub level: Level,
    /// The explicit parent, or else the current span.
    pub parent: Option<u64>,
    /// The explicit parent only (`None` for a contextual event).
    pub explicit_parent: Option<u64>,
    pub fields: Fields,
}

impl EventRec {
    /// The fields as text, and the level as `level` (over any field of that name).
    pub fn text(&self) -> TextFields {
        let mut text: TextFields = self
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.text()))
            .collect();
        text.insert("level".into(), self.level.to_string());
        text
    }
}

/// The layer, and what it recorded: clone it to keep a handle on the records.
#[derive(Default, Clone)]
pub struct Captured {
    pub spans: Arc<Mutex<HashMap<u64, SpanRec>>>,
    pub events: Arc<Mutex<Vec<EventRec>>>,
    /// Record only spans and events of this target (everything if `None`).
    target: Option<&'static str>,
}

impl Captured {
    /// Records only the spans and events whose target is `target` (all others stay
    /// enabled, just unrecorded).
    pub fn for_target(target: &'static str) -> Self {
        Self {
            target: Some(target),
            ..Self::default()
        }
    }

    /// What `record` records, if `target` is one to record.
    fn record(&self, target: &str, record: impl FnOnce(&mut Visitor)) -> Option<Fields> {
        self.target.is_none_or(|t| t == target).then(|| {
            let mut v = Visitor::default();
            record(&mut v);
            v.0
        })
    }

    pub fn events_named(&self, name: &str) -> Vec<EventRec> {
        let events = self.events.lock().unwrap();
        events.iter().filter(|e| e.name == name).cloned().collect()
    }

    /// The `tcp.request` events in request order (reports may come out of order: a
    /// response that drains slowly is reported later).
    pub fn requests(&self) -> Vec<EventRec> {
        let mut events = self.events_named("tcp.request");
        events.sort_by_key(|e| {
            let n = |k: &str| e.fields.get(k).map(Value::i64);
            (n("tcp.conn_id"), n("tcp.requests_on_conn"))
        });
        events
    }

    /// The events whose field `key` reads `value` as text, as text ([`EventRec::text`]),
    /// in the order emitted.
    pub fn matching(&self, key: &str, value: &str) -> Vec<TextFields> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .map(EventRec::text)
            .filter(|e| e.get(key).map(String::as_str) == Some(value))
            .collect()
    }

    pub fn span(&self, id: u64) -> SpanRec {
        self.spans.lock().unwrap()[&id].clone()
    }

    pub fn spans_named(&self, name: &str) -> Vec<SpanRec> {
        let spans = self.spans.lock().unwrap();
        spans.values().filter(|s| s.name == name).cloned().collect()
    }
}

/// The process-wide capture of `target`'s spans and events, installed as the global
/// default subscriber on first use (one per test binary, for one target).
pub fn global(target: &'static str) -> &'static Captured {
    static GLOBAL: OnceLock<Captured> = OnceLock::new();
    let captured = GLOBAL.get_or_init(|| {
        let captured = Captured::for_target(target);
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(captured.clone()),
        )
        .expect("global subscriber");
        captured
    });
    assert_eq!(
        captured.target,
        Some(target),
        "one global capture, one target"
    );
    captured
}

/// The explicit parent, or else, for a contextual span or event, the current span.
fn parent<S: Subscriber + for<'a> LookupSpan<'a>>(
    contextual: bool,
    explicit: Option<&Id>,
    ctx: &Context<'_, S>,
) -> Option<u64> {
    if contextual {
        ctx.current_span().id().map(Id::into_u64)
    } else {
        explicit.map(Id::into_u64)
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        let Some(fields) = self.record(metadata.target(), |v| attrs.record(v)) else {
            return;
        };
        let parent = parent(attrs.is_contextual(), attrs.parent(), &ctx);
        let declared = metadata
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        self.spans.lock().unwrap().insert(
            id.into_u64(),
            SpanRec {
                name: metadata.name().into(),
                target: metadata.target().into(),
                parent,
                is_root: attrs.is_root(),
                declared,
                fields,
                follows_from: Vec::new(),
            },
        );
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut v = Visitor::default();
        values.record(&mut v);
        if let Some(span) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            span.fields.extend(v.0);
        }
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, _ctx: Context<'_, S>) {
        if let Some(s) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            s.follows_from.push(follows.into_u64());
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let Some(fields) = self.record(metadata.target(), |v| event.record(v)) else {
            return;
        };
        let parent = parent(event.is_contextual(), event.parent(), &ctx);
        let explicit_parent = event.parent().map(Id::into_u64);
        self.events.lock().unwrap().push(EventRec {
            name: metadata.name().into(),
            target: metadata.target().into(),
            level: *metadata.level(),
            parent,
            explicit_parent,
            fields,
        });
    }
}
