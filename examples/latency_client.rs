//! The client of `benches/latency.sh`: offers a fixed rate of HTTP/1.1 GETs to one
//! server (open loop) and reports the latency of each request measured from the time it
//! was *meant* to be sent, so a stalled server is charged for every request that had to
//! wait behind the stall (no coordinated omission).
//!
//! ```text
//! cargo run --release --example latency_client -- --addr 127.0.0.1:3000 \
//!     --connections 32 --rate 20000 --duration 10 --warmup 2
//! ```
//!
//! Each of `--connections` keep-alive connections (default 32) sends one request every
//! `connections / rate` seconds (`--rate` is the total, default 10000 req/s); connection
//! *i* is shifted by `i / rate`, so the requests of all connections are evenly spaced. A
//! request whose time comes while the previous one on its connection is still out waits
//! for it and is sent at once after; its latency still counts from its scheduled time.
//! With `--close`, each request opens its own connection and sends `Connection: close`
//! (the latency then includes the TCP handshake); `--connections` is then the number of
//! such requests that can be out at once.
//!
//! `--addr` may be given several times: the client then loads every server at once, each
//! with `--connections` connections at `--rate`, their requests interleaved on one
//! schedule, and prints one `RESULT` line per server (with `addr=`). Two servers sharing a
//! CPU and measured this way see the same client, the same machine and the same moments
//! (`benches/latency_pair.sh`).
//!
//! Requests scheduled in the first `--warmup` seconds (default 2) are sent but not
//! recorded; those of the next `--duration` seconds (default 10) are. The latency of a
//! request ends when its whole response body has arrived. Requests still unsent
//! `--timeout` seconds (default 5) after the end of the schedule are counted as missed:
//! the server could not keep up with the rate.
//!
//! Tokio's timers fire on whole milliseconds, too coarse for requests that take tens of
//! microseconds, so each connection sleeps until about 2 ms before its slot and then
//! spins (`yield_now`) to it: the client keeps one CPU busy (`--threads`, default 1, is
//! the number of runtime threads). The second-to-last line, `client send_lag_us …`, says
//! how late requests actually left against their schedule: the client's own delay plus
//! any wait for the previous response on the same connection. Well below saturation it
//! should be a few µs; when it is close to the latency, requests spend their time queued
//! on this side, either because the server fell behind (latency ≈ lag, both growing) or
//! because the client did not get its CPU.
//!
//! Counted as errors: failed or timed-out connects and requests, any status but 200,
//! missed requests. The last line (one per server) is
//! `RESULT addr=… rate_offered=… rate_achieved=… p50_us=… p90_us=… p99_us=… p999_us=… max_us=…
//! errors=…`; the exit status is 1 when any error was counted.
//!
//! Loopback or a lab network only: this is a load generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

mod load_support;
use load_support::FirstErrors;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Args {
    /// The servers, each loaded with `connections` at `rate`.
    addrs: Vec<SocketAddr>,
    connections: usize,
    rate: f64,
    duration: Duration,
    warmup: Duration,
    timeout: Duration,
    threads: usize,
    close: bool,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        addrs: Vec::new(),
        connections: 32,
        rate: 10_000.0,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        threads: 1,
        close: false,
    };
    let secs = |v: String| -> Result<Duration, Error> { Ok(Duration::from_secs_f64(v.parse()?)) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--close" {
            a.close = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--addr" => a.addrs.push(value.parse()?),
            "--connections" => a.connections = value.parse()?,
            "--rate" => a.rate = value.parse()?,
            "--duration" => a.duration = secs(value)?,
            "--warmup" => a.warmup = secs(value)?,
            "--timeout" => a.timeout = secs(value)?,
            "--threads" => a.threads = value.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.addrs.is_empty() {
        a.addrs.push("127.0.0.1:3000".parse()?);
    }
    for addr in &a.addrs {
        load_support::loopback_only(*addr, "LATENCY_ALLOW_NON_LOOPBACK")?;
    }
    if !(a.rate > 0.0 && a.rate.is_finite()) || a.connections == 0 || a.threads == 0 {
        return Err("--rate, --connections and --threads must be > 0".into());
    }
    if a.duration.is_zero() {
        return Err("--duration must be > 0".into());
    }
    Ok(a)
}

#[derive(Debug, Default)]
struct Stats {
    connect_errors: AtomicU64,
    non_200: AtomicU64,
    request_errors: AtomicU64,
    timeouts: AtomicU64,
    missed: AtomicU64,
}

impl Stats {
    fn errors(&self) -> u64 {
        [
            &self.connect_errors,
            &self.non_200,
            &self.request_errors,
            &self.timeouts,
            &self.missed,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// What the connections share.
#[derive(Debug)]
struct Shared {
    args: Args,
    /// Per server (index into `args.addrs`): its `Host` header and its error counts.
    hosts: Vec<String>,
    stats: Vec<Stats>,
    first_errors: FirstErrors,
}

/// Per connection: latencies and send lags of the recorded requests, in µs, and when the
/// last recorded one completed.
#[derive(Debug, Default)]
struct Recorded {
    latencies: Vec<u32>,
    lags: Vec<u32>,
    last_done: Option<Instant>,
}

fn main() -> Result<(), Error> {
    let args = args()?;
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Error> {
    let shared = Arc::new(Shared {
        hosts: args.addrs.iter().map(ToString::to_string).collect(),
        stats: args.addrs.iter().map(|_| Stats::default()).collect(),
        args,
        first_errors: FirstErrors::default(),
    });
    let args = &shared.args;
    let servers = args.addrs.len();

    // Keep-alive: open every connection before the schedule starts. Connection `i` goes
    // to server `i % servers`.
    let mut senders = Vec::with_capacity(args.connections * servers);
    for i in 0..args.connections * servers {
        senders.push(if args.close {
            None
        } else {
            Some(connect(&shared, i % servers).await?)
        });
    }

    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, sender)| {
            tokio::spawn(connection(
                i,
                sender,
                Arc::clone(&shared),
                start,
                measure_from,
                end,
            ))
        })
        .collect();

    let mut per_server: Vec<Recorded> = (0..servers).map(|_| Recorded::default()).collect();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(r) => {
                let into = &mut per_server[i % servers];
                into.latencies.extend(r.latencies);
                into.lags.extend(r.lags);
                into.last_done = into.last_done.max(r.last_done);
            }
            Err(e) => shared.first_errors.push(format!("task: {e}")),
        }
    }

    for e in shared.first_errors.all() {
        println!("error: {e}");
    }
    let mut errors = 0;
    for (server, mut r) in per_server.into_iter().enumerate() {
        let addr = args.addrs[server];
        let s = &shared.stats[server];
        errors += s.errors();
        r.latencies.sort_unstable();
        r.lags.sort_unstable();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        if s.errors() > 0 {
            println!(
                "errors addr={addr}: connect={} request={} timeout={} non_200={} missed={}",
                load(&s.connect_errors),
                load(&s.request_errors),
                load(&s.timeouts),
                load(&s.non_200),
                load(&s.missed),
            );
        }
        // Requests drained after the end of the schedule stretch the time they took.
        let last_done = r.last_done.unwrap_or(end).max(end);
        let elapsed = last_done.duration_since(measure_from).as_secs_f64();
        let (latencies, lags) = (&r.latencies, &r.lags);
        println!(
            "client addr={addr} send_lag_us p50={} p99={} p999={} max={} requests={}",
            pct(lags, 0.5),
            pct(lags, 0.99),
            pct(lags, 0.999),
            lags.last().copied().unwrap_or(0),
            latencies.len(),
        );
        println!(
            "RESULT addr={addr} rate_offered={:.0} rate_achieved={:.0} p50_us={} p90_us={} \
             p99_us={} p999_us={} max_us={} errors={}",
            args.rate,
            latencies.len() as f64 / elapsed,
            pct(latencies, 0.5),
            pct(latencies, 0.9),
            pct(latencies, 0.99),
            pct(latencies, 0.999),
            latencies.last().copied().unwrap_or(0),
            s.errors(),
        );
    }
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// The nearest-rank percentile of sorted values; 0 when there are none.
fn pct(sorted: &[u32], p: f64) -> u32 {
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// A new HTTP/1.1 connection to server `server`; its driver runs in its own task and
/// ends with it.
async fn connect(shared: &Shared, server: usize) -> Result<SendRequest<Empty<Bytes>>, Error> {
    let connected = tokio::time::timeout(shared.args.timeout, async {
        let stream = tokio::net::TcpStream::connect(shared.args.addrs[server]).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok::<_, Error>(sender)
    })
    .await;
    match connected {
        Ok(Ok(sender)) => Ok(sender),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("timed out".into()),
    }
}

/// Waits until `t` to within a few µs: tokio's timer (1 ms resolution) for most of the
/// way, then yielding to the runtime until the time has come.
async fn wait_until(t: Instant) {
    const SPIN: Duration = Duration::from_millis(2);
    if let Some(coarse) = t.checked_sub(SPIN)
        && coarse > Instant::now()
    {
        tokio::time::sleep_until(coarse.into()).await;
    }
    while Instant::now() < t {
        tokio::task::yield_now().await;
    }
}

/// Connection `i`'s schedule: a request to server `i % servers` every
/// `connections / rate` seconds from `start + i / (servers × rate)`, until `end`.
async fn connection(
    i: usize,
    mut sender: Option<SendRequest<Empty<Bytes>>>,
    shared: Arc<Shared>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Recorded {
    let args = &shared.args;
    let servers = args.addrs.len();
    let server = i % servers;
    let stats = &shared.stats[server];
    let period = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let hard_end = end + args.timeout;
    let mut recorded = Recorded::default();
    let mut slot = start + Duration::from_secs_f64(i as f64 / (servers as f64 * args.rate));
    while slot < end {
        wait_until(slot).await;
        let sent = Instant::now();
        if sent >= hard_end {
            // Behind schedule past the drain time: these requests are never sent.
            let left = (end - slot).as_secs_f64() / period.as_secs_f64();
            stats
                .missed
                .fetch_add(left.ceil() as u64, Ordering::Relaxed);
            shared
                .first_errors
                .push("missed requests: the server did not keep up with the rate");
            break;
        }
        let this_slot = slot;
        slot += period;

        let mut request =
            http::Request::get("/").header(http::header::HOST, shared.hosts[server].as_str());
        if args.close {
            request = request.header(http::header::CONNECTION, "close");
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        // With --close every request connects; otherwise only after a failed request.
        let s = match &mut sender {
            Some(s) => s,
            None => match connect(&shared, server).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                    shared.first_errors.push(format!("connect: {e}"));
                    continue;
                }
            },
        };
        let outcome = tokio::time::timeout(args.timeout, async {
            s.ready().await?;
            let response = s.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, Error>(status)
        })
        .await;
        let done = Instant::now();
        if args.close {
            // The server closes the connection after the response.
            sender = None;
        }
        match outcome {
            Ok(Ok(http::StatusCode::OK)) => {
                if this_slot >= measure_from {
                    recorded.latencies.push(micros(done - this_slot));
                    recorded.lags.push(micros(sent - this_slot));
                    recorded.last_done = Some(done);
                }
            }
            Ok(Ok(status)) => {
                stats.non_200.fetch_add(1, Ordering::Relaxed);
                shared.first_errors.push(format!("status {status}"));
            }
            Ok(Err(e)) => {
                stats.request_errors.fetch_add(1, Ordering::Relaxed);
                shared.first_errors.push(format!("request: {e}"));
                sender = None;
            }
            Err(_) => {
                stats.timeouts.fetch_add(1, Ordering::Relaxed);
                shared.first_errors.push("request timed out");
                sender = None;
            }
        }
    }
    recorded
}
