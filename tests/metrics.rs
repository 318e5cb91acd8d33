//! Metrics end to end on loopback: a real `TcpInfoListener` + `TcpInfoLayer` server, a
//! real HTTP client, `/metrics` fetched with a real GET and parsed by a strict
//! Prometheus text-format parser; the OpenTelemetry units and bucket boundaries through
//! the SDK's in-memory exporter; the global meter provider installed after the listener
//! was built.
#![cfg(all(target_os = "linux", feature = "prometheus", feature = "axum"))]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use conniver::telemetry::TcpMetrics;
use conniver::telemetry::names;
use conniver::telemetry::prometheus::PrometheusMetrics;
use conniver::{Connection, TcpInfoLayer, TcpInfoListener};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

const BIG: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// A strict parser of the Prometheus text exposition format 0.0.4.

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: Option<String>,
    samples: Vec<Sample>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y"}` → map; the rest of the line after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_name(name, false) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("duplicate label {name}"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The family a sample name belongs to, given the declared families.
fn family_of<'a>(name: &'a str, families: &BTreeMap<String, Family>) -> Option<&'a str> {
    if families.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && families.get(base).is_some_and(|f| f.kind == "histogram")
        {
            return Some(base);
        }
    }
    None
}

fn parse_exposition(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), help) => {
                    if !is_name(name, true) {
                        return Err(err("bad name".into()));
                    }
                    let f = families.entry(name.to_owned()).or_default();
                    if f.help.replace(help.unwrap_or("").to_owned()).is_some() {
                        return Err(err("second HELP".into()));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err(format!("bad type {kind}")));
                    }
                    let f = families.entry(name.to_owned()).or_default();
                    if !f.kind.is_empty() || !f.samples.is_empty() {
                        return Err(err("TYPE after samples or twice".into()));
                    }
                    f.kind = kind.to_owned();
                }
                _ => {} // other comments are allowed
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value =
            parse_value(fields.next().ok_or_else(|| err("no value".into()))?).map_err(err)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing text".into()));
        }
        if !seen.insert((name.to_owned(), labels.clone())) {
            return Err(err("duplicate sample".into()));
        }
        let family = family_of(name, &families)
            .ok_or_else(|| err("sample without a TYPE".into()))?
            .to_owned();
        families.get_mut(&family).unwrap().samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    // Histograms: per label set, buckets ascending and cumulative, +Inf == _count.
    for (name, f) in &families {
        if f.kind != "histogram" {
            continue;
        }
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in f.samples.iter().filter(|s| s.name.ends_with("_bucket")) {
            let mut labels = s.labels.clone();
            let le = labels
                .remove("le")
                .ok_or(format!("{name}: bucket without le"))?;
            series
                .entry(labels)
                .or_default()
                .push((parse_value(&le)?, s.value));
        }
        for (labels, buckets) in &series {
            if !buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            {
                return Err(format!(
                    "{name}{labels:?}: buckets not ascending/cumulative"
                ));
            }
            let inf = buckets.last().filter(|b| b.0.is_infinite());
            let count = f
                .samples
                .iter()
                .find(|s| s.name == format!("{name}_count") && &s.labels == labels);
            match (inf, count) {
                (Some(inf), Some(count)) if inf.1 == count.value => {}
                _ => return Err(format!("{name}{labels:?}: +Inf bucket != _count")),
            }
        }
    }
    Ok(families)
}

#[test]
fn the_parser_is_strict() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"q\"} 3\n";
    let f = parse_exposition(ok).unwrap();
    assert_eq!(f["a_total"].samples[0].labels["x"], "1\"q");
    for bad in [
        "a_total 3\n",                  // no TYPE
        "# TYPE a counter\na{x=1} 3\n", // unquoted
        "# TYPE a counter\na 3\na 4\n", // duplicate
        "# TYPE a counter\na three\n",  // value
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n", // +Inf != count
    ] {
        assert!(parse_exposition(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

impl Family {
    /// Samples named `name` whose labels include `with`.
    fn select<'a>(
        &'a self,
        name: &'a str,
        with: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.select(name, with).map(|s| s.value).sum()
    }
}

/// GET `path` on a new connection; the status, `Content-Type` and body.
async fn get_once(addr: SocketAddr, path: &str) -> (u16, String, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(
            http::Request::get(path)
                .header(http::header::HOST, addr.to_string())
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    drop(sender);
    conn.await.unwrap().unwrap();
    (status, content_type, body)
}

/// One keep-alive connection: GET `/` then `/big`; the body bytes received.
async fn two_requests(addr: SocketAddr) -> usize {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let mut bytes = 0;
    for path in ["/", "/big"] {
        sender.ready().await.unwrap();
        let response = sender
            .send_request(
                http::Request::get(path)
                    .header(http::header::HOST, addr.to_string())
                    .body(Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        bytes += response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len();
    }
    drop(sender);
    conn.await.unwrap().unwrap();
    bytes
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/big", get(|| async { vec![b'x'; BIG] }))
}

/// Serves `app` on a tracked listener; the address and a view of its connections.
async fn serve_tracked(
    builder: conniver::TcpInfoListenerBuilder,
    app: Router,
) -> (SocketAddr, conniver::conn::Connections) {
    let listener = builder.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = listener.connections();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<Connection>(),
        )
        .await
        .unwrap();
    });
    (addr, connections)
}

/// Retries `f` every 20 ms until it gives a value (5 s at most).
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(mut f: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_closed(connections: &conniver::conn::Connections) {
    tokio::time::timeout(Duration::from_secs(10), connections.all_closed())
        .await
        .expect("connections did not close");
}

// ---------------------------------------------------------------------------------------

/// Three keep-alive connections with two requests each, closed; then `/metrics` (served
/// by a separate, untracked server, so scraping does not open a tracked connection)
/// parses strictly and holds exactly those connections and requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_connections_and_requests() {
    let metrics = PrometheusMetrics::builder().global(false).build().unwrap();
    let tcp = metrics.tcp_metrics();
    let (addr, connections) = serve_tracked(
        TcpInfoListener::builder()
            .tick(Some(Duration::from_millis(20)))
            .observer(tcp.clone()),
        app().layer(TcpInfoLayer::new().observer(tcp.clone())),
    )
    .await;

    let scrape = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scrape_addr = scrape.local_addr().unwrap();
    let scrape_app = Router::new().route("/metrics", metrics.route());
    tokio::spawn(async move { axum::serve(scrape, scrape_app).await.unwrap() });

    // While a connection is open, `active` is 1.
    {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, _, body) = get_once(scrape_addr, "/metrics").await;
        let f = parse_exposition(std::str::from_utf8(&body).unwrap()).unwrap();
        assert_eq!(f["tcp_connection_active"].kind, "gauge");
        assert_eq!(
            f["tcp_connection_active"].sum("tcp_connection_active", &[]),
            1.0
        );
        drop(stream);
        wait_closed(&connections).await;
    }

    let mut received = 0;
    for _ in 0..3 {
        received += two_requests(addr).await;
    }
    assert_eq!(received, 3 * (BIG + "hello".len()));
    wait_closed(&connections).await;

    // A request is reported once its response has left the socket, which may be a
    // moment after the connection closed: scrape until all six are in.
    let port = addr.port().to_string();
    let ours = [("server_port", port.as_str()), ("network_type", "ipv4")];
    let (f, text) = eventually(|| async {
        let (status, content_type, body) = get_once(scrape_addr, "/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "text/plain; version=0.0.4");
        let text = String::from_utf8(body.to_vec()).unwrap();
        let f = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let requests = f
            .get("tcp_request_rtt_seconds")
            .map_or(0.0, |h| h.sum("tcp_request_rtt_seconds_count", &ours));
        (requests == 6.0).then_some((f, text))
    })
    .await;
    let text = text.as_str();

    // Every instrument but the slow-client counter (nothing was slow) is there, with
    // the declared type, HELP and (histograms) boundaries.
    for m in names::ALL
        .iter()
        .filter(|m| m.otel != names::SLOW_CLIENT_WARNINGS)
    {
        let family = f
            .get(m.prometheus)
            .unwrap_or_else(|| panic!("{} missing:\n{text}", m.prometheus));
        let kind = match m.kind {
            "updowncounter" => "gauge",
            k => k,
        };
        assert_eq!(family.kind, kind, "{}", m.prometheus);
        assert!(family.help.as_deref().is_some_and(|h| !h.is_empty()));
        for s in &family.samples {
            assert_eq!(s.labels["server_port"], port, "{s:?}");
            assert_eq!(s.labels["network_type"], "ipv4", "{s:?}");
            assert!(s.labels.contains_key("tcp_congestion_control"), "{s:?}");
            assert!(!s.labels.contains_key("network_peer_address"), "{s:?}");
        }
        if m.kind == "histogram" {
            let bucket = format!("{}_bucket", m.prometheus);
            let les: Vec<f64> = family
                .select(&bucket, &ours)
                .map(|s| parse_value(&s.labels["le"]).unwrap())
                .filter(|le| le.is_finite())
                .collect();
            assert_eq!(les, m.boundaries, "{}", m.prometheus);
        }
    }

    // Four connections (one idle, three with two requests each), all closed; one time
    // series per instrument whatever the number of clients.
    let opened = &f["tcp_connection_opened_total"];
    assert_eq!(opened.samples.len(), 1, "{:?}", opened.samples);
    assert_eq!(opened.sum("tcp_connection_opened_total", &ours), 4.0);
    assert_eq!(
        f["tcp_connection_closed_total"].sum("tcp_connection_closed_total", &ours),
        4.0
    );
    assert_eq!(
        f["tcp_connection_active"].sum("tcp_connection_active", &ours),
        0.0
    );

    let count = |name: &str| f[name].sum(&format!("{name}_count"), &ours);
    let sum = |name: &str| f[name].sum(&format!("{name}_sum"), &ours);
    assert_eq!(count("tcp_connection_duration_seconds"), 4.0);
    assert_eq!(count("tcp_connection_min_rtt_seconds"), 4.0);
    assert_eq!(count("tcp_connection_sent_bytes"), 4.0);
    assert_eq!(count("tcp_connection_received_bytes"), 4.0);
    assert_eq!(count("tcp_connection_retransmits"), 4.0);
    assert_eq!(count("tcp_request_rtt_seconds"), 6.0);
    assert_eq!(count("tcp_request_retransmits"), 6.0);
    assert_eq!(count("tcp_request_rwnd_limited_ratio"), 6.0);
    // Accept and close of each connection at least (plus ticks).
    assert!(count("tcp_connection_rtt_seconds") >= 8.0);
    assert!(count("tcp_connection_cwnd") >= 4.0);

    // Loopback: RTTs of tens of microseconds, well under 10 ms.
    for name in [
        "tcp_connection_rtt_seconds",
        "tcp_connection_min_rtt_seconds",
        "tcp_request_rtt_seconds",
    ] {
        let mean = sum(name) / count(name);
        assert!(mean > 0.0 && mean < 0.01, "{name} mean {mean}");
    }
    // Bytes: at least the bodies the client read (headers and retransmits on top).
    let sent = sum("tcp_connection_sent_bytes");
    assert!(sent >= received as f64, "{sent} < {received}");
    assert!(sent < received as f64 * 1.5, "{sent} vs {received}");
    // Six request heads of a few dozen bytes.
    assert!(sum("tcp_connection_received_bytes") >= 6.0 * 30.0);
    let duration = sum("tcp_connection_duration_seconds");
    assert!(duration > 0.05 && duration < 30.0, "{duration}");
    let ratio_sum = sum("tcp_request_rwnd_limited_ratio");
    assert!((0.0..=6.0).contains(&ratio_sum));
    // The scope label the exporter adds.
    assert!(
        opened.samples[0]
            .labels
            .get("otel_scope_name")
            .map(String::as_str)
            == Some(names::SCOPE)
    );
}

/// Units and explicit boundaries as OpenTelemetry sees them (before any exporter
/// renaming), and the opt-in peer address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_units_boundaries_and_peer_address() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let tcp = TcpMetrics::new(&provider.meter(names::SCOPE)).with_peer_address(true);
    let (addr, connections) = serve_tracked(
        TcpInfoListener::builder().observer(tcp.clone()),
        app().layer(TcpInfoLayer::new().observer(tcp)),
    )
    .await;
    two_requests(addr).await;
    wait_closed(&connections).await;
    // Until both requests are reported (a response is reported once it left the
    // socket, possibly after the close).
    let last = eventually(|| async {
        provider.force_flush().unwrap();
        let last = exporter.get_finished_metrics().unwrap().pop()?;
        let requests: u64 = last
            .scope_metrics()
            .flat_map(|sm| sm.metrics())
            .filter(|m| m.name() == names::REQUEST_RTT)
            .map(|m| match m.data() {
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    h.data_points().map(|p| p.count()).sum()
                }
                _ => 0,
            })
            .sum();
        (requests == 2).then_some(last)
    })
    .await;
    let mut seen = BTreeSet::new();
    for rm in [&last] {
        for sm in rm.scope_metrics() {
            assert_eq!(sm.scope().name(), names::SCOPE);
            for metric in sm.metrics() {
                let declared = names::ALL
                    .iter()
                    .find(|m| m.otel == metric.name())
                    .unwrap_or_else(|| panic!("undeclared {}", metric.name()));
                assert_eq!(metric.unit(), declared.unit, "{}", metric.name());
                assert!(!metric.description().is_empty());
                seen.insert(metric.name().to_owned());
                let attrs: Vec<Vec<(String, String)>> = match metric.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => h
                        .data_points()
                        .map(|p| {
                            assert_eq!(p.bounds().collect::<Vec<_>>(), declared.boundaries);
                            p.attributes()
                                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                                .collect()
                        })
                        .collect(),
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => h
                        .data_points()
                        .map(|p| {
                            assert_eq!(p.bounds().collect::<Vec<_>>(), declared.boundaries);
                            p.attributes()
                                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                                .collect()
                        })
                        .collect(),
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        assert!(s.is_monotonic());
                        assert_eq!(declared.kind, "counter");
                        s.data_points()
                            .map(|p| {
                                p.attributes()
                                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                                    .collect()
                            })
                            .collect()
                    }
                    AggregatedMetrics::I64(MetricData::Sum(s)) => {
                        assert!(!s.is_monotonic());
                        assert_eq!(declared.kind, "updowncounter");
                        s.data_points()
                            .map(|p| {
                                p.attributes()
                                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                                    .collect()
                            })
                            .collect()
                    }
                    other => panic!("{}: unexpected data {other:?}", metric.name()),
                };
                for a in attrs {
                    assert!(
                        a.contains(&(names::ATTR_PEER_ADDRESS.into(), "127.0.0.1".into())),
                        "{a:?}"
                    );
                    assert!(a.contains(&(names::ATTR_SERVER_PORT.into(), addr.port().to_string())));
                    assert!(a.contains(&(names::ATTR_NETWORK_TYPE.into(), "ipv4".into())));
                }
            }
        }
    }
    let expected: BTreeSet<String> = names::ALL
        .iter()
        .filter(|m| m.otel != names::SLOW_CLIENT_WARNINGS)
        .map(|m| m.otel.to_owned())
        .collect();
    assert_eq!(seen, expected);
}

/// The defaults record into the global meter provider even when it is installed after
/// the listener and the layer were built (OpenTelemetry's own global meters would stay
/// no-op). The only test in this file that touches the global provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_provider_installed_after_the_listener() {
    let (addr, connections) =
        serve_tracked(TcpInfoListener::builder(), app().layer(TcpInfoLayer::new())).await;
    // One connection before the install: recorded by the no-op provider.
    two_requests(addr).await;
    wait_closed(&connections).await;

    let metrics = PrometheusMetrics::install().unwrap();
    two_requests(addr).await;
    wait_closed(&connections).await;

    let port = addr.port().to_string();
    let ours = [("server_port", port.as_str())];
    let f = eventually(|| async {
        let f = parse_exposition(&metrics.render()).unwrap();
        let requests = f
            .get("tcp_request_rtt_seconds")
            .map_or(0.0, |h| h.sum("tcp_request_rtt_seconds_count", &ours));
        (requests >= 2.0).then_some(f)
    })
    .await;
    assert_eq!(
        f["tcp_connection_opened_total"].sum("tcp_connection_opened_total", &ours),
        1.0
    );
    assert_eq!(
        f["tcp_connection_closed_total"].sum("tcp_connection_closed_total", &ours),
        1.0
    );
    assert_eq!(
        f["tcp_request_rtt_seconds"].sum("tcp_request_rtt_seconds_count", &ours),
        2.0
    );
}

/// Every metric the Grafana dashboard queries is one the crate exports, with a suffix
/// that fits its type; every label it groups or filters by is one the crate (or
/// Prometheus) sets.
#[test]
fn dashboard_queries_exported_names() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/conniver-grafana.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard, &mut exprs);
    assert!(exprs.len() > 15, "{exprs:?}");
    let labels: BTreeSet<&str> = [
        "le",
        "instance",
        "reason",
        "server_port",
        "tcp_close_state",
        "tcp_congestion_control",
    ]
    .into();
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let tokens = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|t| !t.is_empty());
        for token in tokens {
            if token.starts_with("tcp_") && !labels.contains(token) {
                let ok = names::ALL.iter().any(|m| match m.kind {
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| token == format!("{}{s}", m.prometheus)),
                    _ => token == m.prometheus,
                });
                assert!(ok, "{token} in {expr:?} is not an exported series");
                used.insert(token.to_owned());
            }
        }
        // Labels inside `by (...)` and `{...}` selectors.
        for part in expr.split("by (").skip(1) {
            for label in part.split(')').next().unwrap().split(',') {
                assert!(labels.contains(label.trim()), "label {label:?} in {expr:?}");
            }
        }
        for part in expr.split('{').skip(1) {
            for matcher in part.split('}').next().unwrap().split(',') {
                let label = matcher.split(['=', '!']).next().unwrap().trim();
                assert!(labels.contains(label), "label {label:?} in {expr:?}");
            }
        }
    }
    // The dashboard covers every instrument.
    for m in names::ALL {
        assert!(
            used.iter().any(|u| u.starts_with(m.prometheus)),
            "{} is on no panel",
            m.prometheus
        );
    }
}

/// A view given to the builder replaces the instruments' own boundaries, or drops an
/// instrument.
#[test]
fn views_replace_boundaries_and_drop_instruments() {
    use opentelemetry_sdk::metrics::{Aggregation, Instrument, Stream};
    let metrics = PrometheusMetrics::builder()
        .global(false)
        .view(|i: &Instrument| {
            (i.name() == names::CONNECTION_RTT).then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::ExplicitBucketHistogram {
                        boundaries: vec![0.01, 0.05],
                        record_min_max: false,
                    })
                    .build()
                    .ok()
            })?
        })
        .view(|i: &Instrument| {
            (i.name() == names::CONNECTION_CWND).then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::Drop)
                    .build()
                    .ok()
            })?
        })
        .build()
        .unwrap();
    let meter = metrics.meter();
    meter
        .f64_histogram(names::CONNECTION_RTT)
        .with_unit(names::UNIT_SECONDS)
        .with_boundaries(names::RTT_BOUNDARIES.to_vec())
        .build()
        .record(0.02, &[]);
    meter
        .u64_histogram(names::CONNECTION_CWND)
        .with_boundaries(names::CWND_BOUNDARIES.to_vec())
        .build()
        .record(10, &[]);
    let f = parse_exposition(&metrics.render()).unwrap();
    let les: Vec<String> = f["tcp_connection_rtt_seconds"]
        .select("tcp_connection_rtt_seconds_bucket", &[])
        .map(|s| s.labels["le"].clone())
        .collect();
    assert_eq!(les, ["0.01", "0.05", "+Inf"]);
    assert!(!f.contains_key("tcp_connection_cwnd"));
}
