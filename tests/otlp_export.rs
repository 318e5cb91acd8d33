//! `examples/otlp.rs` against a real OTLP/gRPC receiver: the generated `TraceService` and
//! `MetricsService` servers of `opentelemetry-proto`, on tonic, on loopback. The example
//! runs as its own process (`--requests 10`: two keep-alive connections of five requests,
//! then it flushes and exits), exactly as a user runs it, and the test checks what
//! arrived on the wire:
//!
//! - the `tcp.connection` root spans with their accept and close attributes, typed as the
//!   field convention says (`i64` ids, counts and µs; `f64` seconds);
//! - ten `tcp.request` spans, each a root of its own trace with `tcp.rtt_us` as an
//!   integer and one link whose trace and span ids are those of its connection's span;
//! - the metrics: `tcp.connection.opened` (a monotonic sum), `tcp.connection.rtt` and
//!   `tcp.request.rtt` (histograms in seconds with the crate's bucket boundaries).
//!
//! The example binary is (re)built with `cargo build --example otlp` and the features
//! this test was built with, so `cargo test --test otlp_export` never runs a stale one.
#![cfg(all(
    feature = "axum",
    feature = "otel",
    any(
        target_os = "linux",
        target_os = "macos",
        target_os = "windows",
        target_os = "freebsd"
    )
))]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conniver::telemetry::names;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use opentelemetry_proto::tonic::metrics::v1::{HistogramDataPoint, Metric};
use opentelemetry_proto::tonic::trace::v1::Span;

/// Requests the example sends itself.
const REQUESTS: usize = 10;
/// The longest the example may run (build excluded).
const DEADLINE: Duration = Duration::from_secs(60);
const SERVICE_NAME: &str = "conniver-otlp-export-test";

// ---------------------------------------------------------------------------------------
// The receiver.

/// Every export request received, in arrival order.
#[derive(Debug, Default, Clone)]
struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

// ---------------------------------------------------------------------------------------
// The example binary.

/// `cargo build --example otlp` into the target directory this test runs from, with this
/// test's features and profile (so it is the same build `cargo test` makes of the
/// examples, and up to date); returns the binary's path.
fn build_example() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/otlp_export-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in <target>/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("otlp{}", std::env::consts::EXE_SUFFIX));

    let mut features = Vec::new();
    if cfg!(feature = "axum") {
        features.push("axum");
    }
    if cfg!(feature = "otel") {
        features.push("otel");
    }
    if cfg!(feature = "prometheus") {
        features.push("prometheus");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--example",
        "otlp",
        "--no-default-features",
    ])
    .args(["--features", &features.join(",")])
    .arg("--manifest-path")
    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    // `debug` is the `dev` (and `test`) profile's directory; others are named after theirs.
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
    }
    // A plain `<target>/<profile>` layout (no `--target <triple>` level): build into it.
    if let Some(target_dir) = profile_dir.parent()
        && target_dir.join("CACHEDIR.TAG").exists()
    {
        cmd.arg("--target-dir").arg(target_dir);
    }
    let out = cmd.output().expect("run cargo build --example otlp");
    if !out.status.success() {
        // Built by `cargo test` already (its examples), maybe under another layout.
        assert!(
            binary.exists(),
            "cargo build --example otlp failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "cargo build --example otlp failed, using the existing {}:\n{}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(binary.exists(), "no example binary at {}", binary.display());
    binary
}

// ---------------------------------------------------------------------------------------
// Reading the protobuf.

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

#[track_caller]
fn int(span: &Span, key: &str) -> i64 {
    match attr(&span.attributes, key) {
        Some(Value::IntValue(v)) => *v,
        other => panic!("{}: {key} is {other:?}, want an int", span.name),
    }
}

#[track_caller]
fn double(span: &Span, key: &str) -> f64 {
    match attr(&span.attributes, key) {
        Some(Value::DoubleValue(v)) => *v,
        other => panic!("{}: {key} is {other:?}, want a double", span.name),
    }
}

#[track_caller]
fn string<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(&span.attributes, key) {
        Some(Value::StringValue(v)) => v,
        other => panic!("{}: {key} is {other:?}, want a string", span.name),
    }
}

/// The last export of metric `name` (temporality is cumulative: the last one has it all).
fn last_metric(exports: &[ExportMetricsServiceRequest], name: &str) -> Metric {
    let mut found = None;
    for export in exports {
        for rm in &export.resource_metrics {
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref().map_or("", |s| s.name.as_str());
                for m in &sm.metrics {
                    if m.name == name {
                        assert_eq!(scope, names::SCOPE, "{name}: instrumentation scope");
                        found = Some(m.clone());
                    }
                }
            }
        }
    }
    found.unwrap_or_else(|| panic!("metric {name} never exported"))
}

/// The data points of a histogram metric, after checking its unit and boundaries.
#[track_caller]
fn histogram(m: &Metric, unit: &str, bounds: &[f64]) -> Vec<HistogramDataPoint> {
    assert_eq!(m.unit, unit, "{}: unit", m.name);
    let Some(Data::Histogram(h)) = &m.data else {
        panic!("{}: not a histogram: {:?}", m.name, m.data);
    };
    assert!(!h.data_points.is_empty(), "{}: no data points", m.name);
    for p in &h.data_points {
        assert_eq!(p.explicit_bounds, bounds, "{}: bucket boundaries", m.name);
        assert_eq!(p.bucket_counts.len(), bounds.len() + 1, "{}", m.name);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count, "{}", m.name);
    }
    h.data_points.clone()
}

/// The integer total of a sum metric over its data points.
#[track_caller]
fn sum_total(m: &Metric, monotonic: bool) -> i64 {
    let Some(Data::Sum(s)) = &m.data else {
        panic!("{}: not a sum: {:?}", m.name, m.data);
    };
    assert_eq!(s.is_monotonic, monotonic, "{}: monotonic", m.name);
    s.data_points
        .iter()
        .map(|p| match p.value {
            Some(number_data_point::Value::AsInt(v)) => v,
            ref other => panic!("{}: value {other:?}, want an int", m.name),
        })
        .sum()
}

// ---------------------------------------------------------------------------------------

// Multi-threaded: the receiver must answer while the test waits for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_example_exports_connection_and_request_spans_and_metrics() {
    let binary = tokio::task::spawn_blocking(build_example).await.unwrap();

    // --- the receiver ---------------------------------------------------------------
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .add_service(MetricsServiceServer::new(received.clone()))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    // --- the example, as its own process ----------------------------------------------
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&binary);
    cmd.args(["--addr", "127.0.0.1:0", "--requests", &REQUESTS.to_string()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_SERVICE_NAME", SERVICE_NAME)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Settings that would send the telemetry elsewhere or nowhere.
    for var in [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_METRIC_EXPORT_INTERVAL",
    ] {
        cmd.env_remove(var);
    }
    let child = cmd.spawn().expect("start examples/otlp");
    let out = match tokio::time::timeout(DEADLINE, child.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        // `kill_on_drop`: the child died with the dropped future.
        Err(_) => panic!("examples/otlp did not exit within {DEADLINE:?}"),
    };
    eprintln!(
        "examples/otlp exited ({}) after {:.1} s",
        out.status,
        started.elapsed().as_secs_f64()
    );
    let _log = LogOnPanic(String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "examples/otlp failed: {}", out.status);

    let _ = stop.send(());
    receiver.await.unwrap().unwrap();
    let traces = std::mem::take(&mut *received.traces.lock().unwrap());
    let metrics = std::mem::take(&mut *received.metrics.lock().unwrap());
    eprintln!(
        "received {} trace export(s), {} metric export(s)",
        traces.len(),
        metrics.len()
    );

    // --- spans ----------------------------------------------------------------------
    let mut spans = Vec::new();
    for export in &traces {
        for rs in &export.resource_spans {
            let resource = rs.resource.as_ref().expect("resource");
            assert_eq!(
                attr(&resource.attributes, "service.name"),
                Some(&Value::StringValue(SERVICE_NAME.into())),
                "resource service.name"
            );
            for ss in &rs.scope_spans {
                spans.extend(ss.spans.iter().cloned());
            }
        }
    }
    let connections: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "tcp.connection")
        .collect();
    let requests: Vec<&Span> = spans.iter().filter(|s| s.name == "tcp.request").collect();
    eprintln!(
        "{} spans: {} tcp.connection, {} tcp.request",
        spans.len(),
        connections.len(),
        requests.len()
    );
    assert!(!connections.is_empty(), "no tcp.connection span");
    assert_eq!(requests.len(), REQUESTS, "one tcp.request span per request");

    let mut locals = BTreeSet::new();
    let mut by_ids = BTreeMap::new();
    let mut requests_counted = 0;
    for c in &connections {
        assert_eq!(c.trace_id.len(), 16, "trace id");
        assert_eq!(c.span_id.len(), 8, "span id");
        assert!(c.parent_span_id.is_empty(), "tcp.connection is a root span");
        let id = int(c, "tcp.conn_id");
        let peer: SocketAddr = string(c, "tcp.peer")
            .parse()
            .expect("tcp.peer is an address");
        assert!(peer.ip().is_loopback(), "peer {peer}");
        let local: SocketAddr = string(c, "tcp.local")
            .parse()
            .expect("tcp.local is an address");
        locals.insert(local);
        let duration = double(c, "tcp.duration_s");
        assert!(
            duration > 0.0 && duration < DEADLINE.as_secs_f64(),
            "tcp.duration_s {duration}"
        );
        let n = int(c, "tcp.requests");
        assert!(n > 0, "tcp.requests {n}");
        requests_counted += n;
        if cfg!(target_os = "linux") {
            assert!(int(c, "tcp.accept_rtt_us") > 0, "tcp.accept_rtt_us");
            assert!(int(c, "tcp.bytes_sent") > 0, "tcp.bytes_sent");
            assert!(int(c, "tcp.bytes_received") > 0, "tcp.bytes_received");
            assert!(int(c, "tcp.min_rtt_us") > 0, "tcp.min_rtt_us");
            assert!(int(c, "tcp.segs_out") > 0, "tcp.segs_out");
            assert!(int(c, "tcp.total_retrans") >= 0, "tcp.total_retrans");
            assert!(!string(c, "tcp.close_state").is_empty(), "tcp.close_state");
        }
        // Events recorded on the connection span (conniver=debug reaches the exporter).
        assert!(
            c.events.iter().any(|e| e.name == "tcp.close"),
            "tcp.close event on the connection span: {:?}",
            c.events.iter().map(|e| &e.name).collect::<Vec<_>>()
        );
        let previous = by_ids.insert((c.trace_id.clone(), c.span_id.clone()), (id, *c));
        assert!(previous.is_none(), "two connection spans with the same ids");
    }
    assert_eq!(locals.len(), 1, "one server address: {locals:?}");
    assert_eq!(
        requests_counted,
        i64::try_from(REQUESTS).unwrap(),
        "tcp.requests over the connections"
    );
    assert_eq!(
        connections
            .iter()
            .map(|c| int(c, "tcp.conn_id"))
            .collect::<BTreeSet<_>>()
            .len(),
        connections.len(),
        "distinct tcp.conn_id"
    );

    let mut linked = BTreeSet::new();
    let mut nth_per_conn: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in &requests {
        assert!(r.parent_span_id.is_empty(), "tcp.request is a root span");
        // The design's point: an integer, so backends can aggregate it.
        let rtt = int(r, "tcp.rtt_us");
        assert!(rtt >= 0, "tcp.rtt_us {rtt}");
        if cfg!(target_os = "linux") {
            assert!(rtt > 0, "tcp.rtt_us {rtt} on loopback");
            int(r, "tcp.end_rtt_us");
            int(r, "tcp.delta.segs_out");
            int(r, "tcp.delta.bytes_acked");
        }
        let elapsed = double(r, "tcp.elapsed_s");
        assert!(elapsed >= 0.0, "tcp.elapsed_s {elapsed}");
        assert_eq!(string(r, "tcp.outcome"), "completed");
        assert_eq!(string(r, "http.request.method"), "GET");
        let path = string(r, "url.path");
        assert!(["/", "/big", "/slow"].contains(&path), "url.path {path}");

        assert_eq!(
            r.links.len(),
            1,
            "one link, to the connection span: {:?}",
            r.links
        );
        let link = &r.links[0];
        let Some((conn_id, conn)) = by_ids.get(&(link.trace_id.clone(), link.span_id.clone()))
        else {
            panic!(
                "the link of request span {} points at no tcp.connection span",
                hex(&r.span_id)
            );
        };
        assert_ne!(r.trace_id, conn.trace_id, "a request is its own trace");
        assert_eq!(
            int(r, "tcp.conn_id"),
            *conn_id,
            "tcp.conn_id of the linked connection"
        );
        // The request lies within its connection's lifetime.
        assert!(r.start_time_unix_nano >= conn.start_time_unix_nano);
        assert!(r.end_time_unix_nano <= conn.end_time_unix_nano);
        linked.insert(*conn_id);
        nth_per_conn
            .entry(*conn_id)
            .or_default()
            .push(int(r, "tcp.requests_on_conn"));
    }
    assert_eq!(
        linked.len(),
        connections.len(),
        "every connection has requests linked to it"
    );
    for (conn_id, mut nth) in nth_per_conn {
        nth.sort_unstable();
        let want: Vec<i64> = (1..=i64::try_from(nth.len()).unwrap()).collect();
        assert_eq!(nth, want, "tcp.requests_on_conn on connection {conn_id}");
    }

    // --- metrics --------------------------------------------------------------------
    let connections_n = i64::try_from(connections.len()).unwrap();
    let opened = last_metric(&metrics, names::CONNECTION_OPENED);
    assert_eq!(opened.unit, names::UNIT_CONNECTIONS);
    assert_eq!(
        sum_total(&opened, true),
        connections_n,
        "{}",
        names::CONNECTION_OPENED
    );
    let closed = last_metric(&metrics, names::CONNECTION_CLOSED);
    assert_eq!(
        sum_total(&closed, true),
        connections_n,
        "{}",
        names::CONNECTION_CLOSED
    );
    let active = last_metric(&metrics, names::CONNECTION_ACTIVE);
    assert_eq!(
        sum_total(&active, false),
        0,
        "{} after every close",
        names::CONNECTION_ACTIVE
    );

    let conn_rtt = histogram(
        &last_metric(&metrics, names::CONNECTION_RTT),
        names::UNIT_SECONDS,
        names::RTT_BOUNDARIES,
    );
    let count: u64 = conn_rtt.iter().map(|p| p.count).sum();
    assert!(count > 0, "{} count {count}", names::CONNECTION_RTT);

    let request_rtt = histogram(
        &last_metric(&metrics, names::REQUEST_RTT),
        names::UNIT_SECONDS,
        names::RTT_BOUNDARIES,
    );
    let count: u64 = request_rtt.iter().map(|p| p.count).sum();
    assert!(
        count >= REQUESTS as u64,
        "{} count {count}",
        names::REQUEST_RTT
    );
    for p in &request_rtt {
        let sum = p.sum.expect("histogram sum");
        // Loopback: well under the 100 µs … 10 s range's top, and not negative.
        assert!(
            sum >= 0.0 && sum < count as f64,
            "{} sum {sum}",
            names::REQUEST_RTT
        );
    }

    let duration = histogram(
        &last_metric(&metrics, names::CONNECTION_DURATION),
        names::UNIT_SECONDS,
        names::DURATION_BOUNDARIES,
    );
    let count: u64 = duration.iter().map(|p| p.count).sum();
    assert_eq!(
        count,
        connections.len() as u64,
        "{}",
        names::CONNECTION_DURATION
    );
}

/// Prints the example's log if the test fails after it ran.
struct LogOnPanic(String);

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- examples/otlp log ---\n{}--- end of log ---", self.0);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
