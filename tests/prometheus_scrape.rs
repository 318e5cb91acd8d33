//! A real Prometheus server (the Debian `prometheus` package) scraping the quickstart
//! example's `/metrics` across a link with 50 ms of delay each way, then every PromQL
//! expression of the Grafana dashboard run against it.
//!
//! ```text
//!   namespace A                                   namespace B
//!   axum_quickstart --addr 0.0.0.0:3000 --tick 1  prometheus (127.0.0.1:9090, scrapes every 1 s)
//!          ^                                      this test's clients, and its API queries
//!          +------------- 100 ms RTT link --------------+
//! ```
//!
//! The quickstart binary is the one `cargo test` builds next to the test binaries
//! (`target/<profile>/examples/axum_quickstart`); `cargo test --test prometheus_scrape`
//! alone does not build examples, so run `cargo build --example axum_quickstart` first
//! in that case (the test fails with that message when the binary is missing or older
//! than the sources).
//!
//! Needs root (namespaces) and `/usr/bin/prometheus`; skips without them, fails
//! instead under `CI=true`.
#![cfg(target_os = "linux")]

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::e2e::client_quickack;
use support::http;
use support::netem::{Link, serial, skip_or_fail};

/// The whole test, setup to teardown, stays under this.
const BUDGET: Duration = Duration::from_secs(50);
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Port of the quickstart in namespace A.
const APP_PORT: u16 = 3000;
/// Prometheus's port on namespace B's loopback.
const PROM_PORT: u16 = 9090;
const JOB: &str = "conniver";
/// Injected RTT (50 ms each way).
const RTT: f64 = 0.100;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Skips (prints why and returns `true`) or, under `CI=true`, fails.
fn skip(why: &str) -> bool {
    assert!(!ci(), "prerequisite missing under CI=true: {why}");
    eprintln!("skipped: {why}");
    true
}

// ---------------------------------------------------------------------------------------
// Processes and files that clean up after themselves.

/// A child process, killed and reaped on drop.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Runs `args` inside namespace `ns` (`ip netns exec` execs the program, so the
    /// child's pid is the program's), stdout and stderr to `log`.
    fn spawn_in(ns: &str, name: &'static str, args: &[&str], log: PathBuf) -> Proc {
        let out = fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc { name, child, log }
    }

    /// Panics with the end of the log if the process has exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                tail(&self.log, 40)
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}):\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "conniver-prometheus-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The quickstart example binary that `cargo test` built for this profile, checked to be
/// newer than every source file it was built from (cargo's dep-info file next to it).
fn quickstart_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/prometheus_scrape-… → target/<profile>/examples/
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("examples").join("axum_quickstart"))
        .ok_or("no target directory")?;
    let how = "build it with `cargo build --example axum_quickstart` (plain `cargo test` \
               builds examples; `cargo test --test prometheus_scrape` does not)";
    let built = fs::metadata(&bin)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}; {how}", bin.display()))?;
    // `<bin>: <source> <source> …`, spaces in paths escaped as `\ `.
    let dep_info = fs::read_to_string(bin.with_extension("d")).unwrap_or_default();
    let sources = dep_info
        .split_once(": ")
        .map_or("", |(_, deps)| deps)
        .replace("\\ ", "\u{0}");
    for source in sources.split_whitespace() {
        let source = source.replace('\u{0}', " ");
        let Ok(modified) = fs::metadata(&source).and_then(|m| m.modified()) else {
            continue;
        };
        if modified > built {
            return Err(format!("{} is older than {source}: {how}", bin.display()));
        }
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------------------
// Talking to the servers from namespace B.

/// `GET path` to `addr` from namespace B.
fn get_b(link: &Link, addr: SocketAddr, path: &str) -> std::io::Result<http::Response> {
    link.in_ns_b(|| http::get(addr, path, IO_TIMEOUT))
}

/// Runs an instant PromQL query (at the server's now); returns `data.result`.
fn query(link: &Link, promql: &str) -> Vec<Value> {
    let prom = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), PROM_PORT);
    let path = format!("/api/v1/query?query={}", http::percent_encode(promql));
    let response = get_b(link, prom, &path).unwrap_or_else(|e| panic!("query {promql}: {e}"));
    let json: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("query {promql}: {e}: {}", response.text()));
    assert_eq!(json["status"], "success", "{promql}: {json}");
    json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{promql}: no result array: {json}"))
}

/// The sample value of one instant-vector element.
fn value(sample: &Value) -> f64 {
    let v = sample["value"][1].as_str().expect("value string");
    match v {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().expect("float"),
    }
}

/// The single value of `promql` (panics unless exactly one series).
fn scalar(link: &Link, promql: &str) -> f64 {
    let result = query(link, promql);
    assert_eq!(result.len(), 1, "{promql}: {result:?}");
    value(&result[0])
}

/// Traffic from namespace B: small requests on fresh connections, one `/big` read to
/// its end, and one slow reader (16 KiB receive buffer) that stops reading `/big` for
/// 1.5 s and then goes away, which the default slow-client policy flags.
/// Returns the number of connections made.
fn traffic(link: &Link, app: SocketAddr) -> u64 {
    std::thread::scope(|s| {
        let slow = s.spawn(|| {
            let stream = link.in_ns_b(|| -> std::io::Result<TcpStream> {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
                socket.set_recv_buffer_size(16 * 1024)?;
                socket.connect_timeout(&app.into(), IO_TIMEOUT)?;
                Ok(socket.into())
            });
            let mut stream = stream.expect("slow client connect");
            write!(stream, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
            let mut head = [0u8; 1024];
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let n = stream.read(&mut head).expect("slow client read");
            assert!(
                head[..n].starts_with(b"HTTP/1.1 200"),
                "slow client got {n} bytes"
            );
            std::thread::sleep(Duration::from_millis(1500));
        });
        let t = Instant::now();
        for _ in 0..3 {
            let r = get_b(link, app, "/").expect("GET /");
            assert_eq!(r.status, 200, "{}", r.head);
        }
        let small = t.elapsed();
        let r = get_b(link, app, "/big").expect("GET /big");
        assert_eq!((r.status, r.body.len()), (200, 8 << 20), "{}", r.head);
        println!(
            "3 × GET / took {:.0} ms, GET /big (8 MiB) {:.0} ms",
            small.as_secs_f64() * 1e3,
            (t.elapsed() - small).as_secs_f64() * 1e3
        );
        slow.join().expect("slow client");
    });
    5
}

/// Waits until Prometheus has scraped the app `n` more times (its `up` sample is
/// stamped with the scrape's time).
fn wait_scrapes(link: &Link, n: u32, deadline: Instant) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let q = format!("timestamp(up{{job=\"{JOB}\"}})");
    let mut seen = 0;
    let mut last = since;
    while seen < n {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape in time"
        );
        std::thread::sleep(Duration::from_millis(200));
        if let Some(t) = query(link, &q).first().map(value)
            && t > last
        {
            seen += 1;
            last = t;
        }
    }
}

// ---------------------------------------------------------------------------------------

/// Every panel query of `dashboards/conniver-grafana.json`, with Grafana's variables
/// replaced by concrete values, returns data from a real Prometheus scraping the
/// quickstart across a 100 ms RTT link; the RTT figures match the injected delay.
#[test]
fn prometheus_scrapes_quickstart_and_dashboard_queries_return_data() {
    let started = Instant::now();
    let deadline = started + BUDGET;
    let _serial = serial();
    if let Err(e) = Link::require() {
        return skip_or_fail(e);
    }
    if !Path::new(PROMETHEUS).exists()
        && skip(&format!(
            "{PROMETHEUS} missing (apt-get install prometheus)"
        ))
    {
        return;
    }
    let quickstart = quickstart_binary().unwrap_or_else(|e| panic!("quickstart example: {e}"));

    let link = match Link::builder().delay(Duration::from_millis(50)).build() {
        Ok(link) => link,
        Err(e) => return skip_or_fail(e),
    };
    // Immediate ACKs from namespace B (Prometheus and the test's clients), so that the
    // server's smoothed RTT is the path's (see tests/e2e_network.rs, RTT tests).
    client_quickack(&link);
    let tmp = TempDir::new();
    let app = SocketAddr::new(link.server_addr(), APP_PORT);

    let app_addr = format!("0.0.0.0:{APP_PORT}");
    let mut server = Proc::spawn_in(
        link.ns_a_name(),
        "axum_quickstart",
        &[
            quickstart.to_str().unwrap(),
            "--addr",
            &app_addr,
            "--tick",
            "1",
        ],
        tmp.0.join("quickstart.log"),
    );
    let config = tmp.0.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{app}']\n"
        ),
    )
    .unwrap();
    let data = tmp.0.join("data");
    let listen = format!("127.0.0.1:{PROM_PORT}");
    let mut prometheus = Proc::spawn_in(
        link.ns_b_name(),
        "prometheus",
        &[
            PROMETHEUS,
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", data.display()),
            &format!("--web.listen-address={listen}"),
        ],
        tmp.0.join("prometheus.log"),
    );

    // Both up: the app answers across the link, Prometheus says it is ready.
    let prom = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), PROM_PORT);
    loop {
        server.check_alive();
        prometheus.check_alive();
        assert!(Instant::now() < deadline, "servers did not come up");
        let app_up = get_b(&link, app, "/").is_ok_and(|r| r.status == 200);
        let prom_up = get_b(&link, prom, "/-/ready").is_ok_and(|r| r.status == 200);
        if app_up && prom_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("servers up after {:.1} s", started.elapsed().as_secs_f64());

    // Two rounds of traffic with scrapes in between, so that every counter and
    // histogram has increased between two scrapes and rate() sees it.
    let mut connections = 1; // the readiness probe that succeeded
    let phase = Instant::now();
    wait_scrapes(&link, 1, deadline);
    println!("first scrape after {:.1} s", phase.elapsed().as_secs_f64());
    connections += traffic(&link, app);
    let phase = Instant::now();
    wait_scrapes(&link, 2, deadline);
    println!("2 scrapes after {:.1} s", phase.elapsed().as_secs_f64());
    connections += traffic(&link, app);
    wait_scrapes(&link, 3, deadline);
    server.check_alive();
    prometheus.check_alive();
    println!(
        "traffic done and scraped after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The basics.
    let up = scalar(&link, &format!("up{{job=\"{JOB}\"}}"));
    assert_eq!(up, 1.0, "target down");
    let scrapes = scalar(&link, &format!("count_over_time(up{{job=\"{JOB}\"}}[1m])"));
    let opened = scalar(
        &link,
        &format!("sum(tcp_connection_opened_total{{server_port=\"{APP_PORT}\"}})"),
    );
    println!(
        "up 1, {scrapes} scrapes, tcp_connection_opened_total {opened} (this test made \
         {connections} connections, Prometheus at least 1)"
    );
    assert!(scrapes >= 3.0);
    assert!(opened >= (connections + 1) as f64, "{opened}");

    // RTT in seconds, as exported. The means (`_sum / _count`) are exact; a quantile
    // of a histogram is only as precise as its bucket (0.1 .. 0.15 here), so the
    // dashboard's p50 is only checked to fall in the buckets around the injected RTT.
    let mean = |metric: &str| {
        scalar(
            &link,
            &format!("sum({metric}_sum{{job=\"{JOB}\"}}) / sum({metric}_count{{job=\"{JOB}\"}})"),
        )
    };
    let conn_rtt = mean("tcp_connection_rtt_seconds");
    let min_rtt = mean("tcp_connection_min_rtt_seconds");
    let request_rtt = mean("tcp_request_rtt_seconds");
    println!(
        "rtt measured {:.1} ms (tcp_connection_rtt_seconds mean), min_rtt {:.1} ms, request \
         rtt {:.1} ms vs injected 100 ms",
        conn_rtt * 1e3,
        min_rtt * 1e3,
        request_rtt * 1e3
    );
    for (what, v, tolerance) in [
        ("tcp_connection_rtt_seconds mean", conn_rtt, 0.10),
        ("tcp_connection_min_rtt_seconds mean", min_rtt, 0.10),
        // At the end of a response: /big's includes the queue its burst built.
        ("tcp_request_rtt_seconds mean", request_rtt, 0.20),
    ] {
        assert!(
            (v - RTT).abs() <= RTT * tolerance,
            "{what}: {v} s not within ±{:.0} % of {RTT} s",
            tolerance * 100.0
        );
    }

    // Every panel of the dashboard.
    let dashboard: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/conniver-grafana.json"),
        )
        .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut panels = Vec::new();
    collect_targets(&dashboard["panels"], &mut panels);
    assert!(panels.len() >= 20, "{} queries", panels.len());
    let instance = app.to_string();
    for (title, expr) in &panels {
        let promql = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", &regex_escape(&instance))
            .replace("$port", &APP_PORT.to_string());
        let result = query(&link, &promql);
        let values: Vec<String> = result
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                format!("{{{labels}}} {:.4}", value(s))
            })
            .collect();
        println!("[{title}] {promql}\n    = {}", values.join("; "));
        assert!(!result.is_empty(), "[{title}] no data: {promql}");
        for s in &result {
            let v = value(s);
            assert!(v.is_finite() && v >= 0.0, "[{title}] {v}: {promql}");
        }
        if expr.contains("tcp_connection_rtt_seconds_bucket")
            && expr.starts_with("histogram_quantile(0.5")
        {
            let p50 = value(&result[0]);
            assert!((0.075..=0.15).contains(&p50), "RTT p50 {p50}");
            println!(
                "    (RTT p50 {:.1} ms: the bucket 100..150 ms, interpolated)",
                p50 * 1e3
            );
        }
    }
    // A few panels must show activity, not just zeros.
    let nonzero = [
        "sum(rate(tcp_connection_opened_total[1m]))",
        "sum by (reason) (rate(tcp_slow_client_warnings_total{reason=\"rwnd_limited\"}[1m]))",
        "sum(rate(tcp_connection_sent_bytes_sum[1m]))",
    ];
    for q in nonzero {
        let v = scalar(&link, q);
        println!("{q} = {v:.4}");
        assert!(v > 0.0, "{q} = {v}");
    }

    drop(prometheus);
    drop(server);
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Collects `(panel title, expr)` of every target, rows included.
fn collect_targets(panels: &Value, out: &mut Vec<(String, String)>) {
    for panel in panels.as_array().into_iter().flatten() {
        collect_targets(&panel["panels"], out);
        let title = panel["title"].as_str().unwrap_or("").to_owned();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((title.clone(), expr.to_owned()));
            }
        }
    }
}

/// Escapes regex metacharacters (for `instance=~"$instance"`).
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push_str(r"\\");
        }
        out.push(c);
    }
    out
}
