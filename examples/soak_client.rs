//! The client of `benches/soak.sh`: holds many keep-alive HTTP/1.1 connections to one
//! server, each sending a GET every few seconds, for a bounded time; then closes them
//! all and prints what went wrong, if anything.
//!
//! ```text
//! cargo run --release --example soak_client -- --addr 127.0.0.1:3000 \
//!     --connections 10000 --idle 15 --duration 60 --interval 5
//! ```
//!
//! Phases, each announced on stdout with a line `PHASE <name> <seconds since start>` (the
//! script samples the server at each): `connect` (open every connection, paced at
//! `--rate` per second, default 2000, 0 = as fast as possible; at most `--concurrency`
//! handshakes at a time), `idle` (`--idle` seconds with no requests: only
//! the server's periodic ticks run), `active` (`--duration` seconds; connection *i*
//! first sends at `i / connections × interval`, then every `--interval` seconds, so the
//! load is even), `close` (every connection closed by the client), `done`.
//!
//! Counted as errors: failed or timed-out connects, requests that fail or time out
//! (`--timeout`, default 10 s), any status but 200, connections that the server closed
//! early. The last line is `RESULT key=value…`; the exit status is 1 when any error
//! was counted.
//!
//! The process needs one file descriptor per connection: raise `ulimit -n` first.
//! Loopback or a lab network only: this is a load generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::sync::{Semaphore, watch};

mod load_support;
use load_support::FirstErrors;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Args {
    addr: SocketAddr,
    connections: usize,
    concurrency: usize,
    rate: f64,
    idle: Duration,
    duration: Duration,
    interval: Duration,
    timeout: Duration,
    path: String,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        addr: "127.0.0.1:3000".parse()?,
        connections: 10_000,
        concurrency: 256,
        rate: 2000.0,
        idle: Duration::from_secs(15),
        duration: Duration::from_secs(60),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        path: "/".to_owned(),
    };
    let secs = |v: String| -> Result<Duration, Error> { Ok(Duration::from_secs_f64(v.parse()?)) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--addr" => a.addr = value.parse()?,
            "--connections" => a.connections = value.parse()?,
            "--concurrency" => a.concurrency = value.parse::<usize>()?.max(1),
            "--rate" => a.rate = value.parse()?,
            "--idle" => a.idle = secs(value)?,
            "--duration" => a.duration = secs(value)?,
            "--interval" => a.interval = secs(value)?,
            "--timeout" => a.timeout = secs(value)?,
            "--path" => a.path = value,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    load_support::loopback_only(a.addr, "SOAK_ALLOW_NON_LOOPBACK")?;
    if a.interval.is_zero() {
        return Err("--interval must be > 0".into());
    }
    Ok(a)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Idle,
    Active(Instant),
    Close,
}

#[derive(Debug, Default)]
struct Stats {
    connected: AtomicU64,
    connect_errors: AtomicU64,
    requests: AtomicU64,
    ok: AtomicU64,
    non_200: AtomicU64,
    request_errors: AtomicU64,
    timeouts: AtomicU64,
    closed_early: AtomicU64,
}

impl Stats {
    fn errors(&self) -> u64 {
        [
            &self.connect_errors,
            &self.non_200,
            &self.request_errors,
            &self.timeouts,
            &self.closed_early,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

fn phase(start: Instant, name: &str) {
    println!("PHASE {name} {:.3}", start.elapsed().as_secs_f64());
}

fn main() -> Result<(), Error> {
    let args = args()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<(), Error> {
    let start = Instant::now();
    let stats = Arc::new(Stats::default());
    let first_errors = Arc::new(FirstErrors::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let connect_permits = Arc::new(Semaphore::new(args.concurrency));
    let args = Arc::new(args);

    phase(start, "connect");
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        tasks.push(tokio::spawn(connection(
            i,
            Arc::clone(&args),
            Arc::clone(&stats),
            Arc::clone(&first_errors),
            Arc::clone(&connect_permits),
            start,
            phase_rx.clone(),
        )));
    }
    drop(phase_rx);
    // Wait until every connect has finished or failed (each is bounded by --timeout).
    let settled =
        || stats.connected.load(Ordering::Relaxed) + stats.connect_errors.load(Ordering::Relaxed);
    while settled() < args.connections as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "connected={} connect_errors={} in {:.2} s",
        stats.connected.load(Ordering::Relaxed),
        stats.connect_errors.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );

    phase(start, "idle");
    phase_tx.send_replace(Phase::Idle);
    tokio::time::sleep(args.idle).await;

    phase(start, "active");
    phase_tx.send_replace(Phase::Active(Instant::now()));
    tokio::time::sleep(args.duration).await;

    phase(start, "close");
    phase_tx.send_replace(Phase::Close);
    let mut latencies = Vec::new();
    let mut slow = Vec::new();
    let deadline = args.timeout + Duration::from_secs(5);
    for task in tasks {
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok((l, s))) => {
                latencies.extend(l);
                slow.extend(s);
            }
            Ok(Err(e)) => first_errors.push(format!("task: {e}")),
            Err(_) => first_errors.push("a connection did not close in time"),
        }
    }
    phase(start, "done");

    latencies.sort_unstable();
    let pct = |p: f64| -> u32 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() - 1) as f64 * p).round() as usize;
        latencies[i]
    };
    for e in first_errors.all() {
        println!("error: {e}");
    }
    // When the slow requests happened: count per second of the active phase.
    slow.sort_unstable();
    let mut by_second = std::collections::BTreeMap::<u32, (u32, u32)>::new();
    for (at_ms, us) in &slow {
        let e = by_second.entry(at_ms / 1000).or_default();
        e.0 += 1;
        e.1 = e.1.max(*us);
    }
    if !by_second.is_empty() {
        let list: Vec<String> = by_second
            .iter()
            .map(|(s, (n, max))| format!("{s}s:{n}(max {} ms)", max / 1000))
            .collect();
        println!(
            "slow requests (> {} ms) by second of the active phase: {}",
            SLOW.as_millis(),
            list.join(" ")
        );
    }
    let s = &stats;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "RESULT connections={} connected={} connect_errors={} requests={} ok={} non_200={} \
         request_errors={} timeouts={} closed_early={} p50_us={} p99_us={} max_us={} \
         slow={} elapsed_s={:.1}",
        args.connections,
        load(&s.connected),
        load(&s.connect_errors),
        load(&s.requests),
        load(&s.ok),
        load(&s.non_200),
        load(&s.request_errors),
        load(&s.timeouts),
        load(&s.closed_early),
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0),
        slow.len(),
        start.elapsed().as_secs_f64()
    );
    if s.errors() > 0 || load(&s.connected) != args.connections as u64 {
        std::process::exit(1);
    }
    Ok(())
}

/// A request slower than this is listed with its time.
const SLOW: Duration = Duration::from_millis(100);

/// Latencies in µs; (ms since the active phase began, µs) of the slow ones.
type Latencies = (Vec<u32>, Vec<(u32, u32)>);

/// One connection's life: connect, wait, send a request every interval, close.
async fn connection(
    i: usize,
    args: Arc<Args>,
    stats: Arc<Stats>,
    first_errors: Arc<FirstErrors>,
    permits: Arc<Semaphore>,
    ramp_start: Instant,
    mut phase: watch::Receiver<Phase>,
) -> Latencies {
    let mut latencies = Vec::new();
    let mut slow = Vec::new();
    // Paced ramp: connection i starts no earlier than i / rate seconds in.
    if args.rate > 0.0 {
        let not_before = Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(tokio::time::Instant::from_std(ramp_start + not_before)).await;
    }
    let permit = permits.acquire().await;
    let connected = tokio::time::timeout(args.timeout, async {
        let stream = tokio::net::TcpStream::connect(args.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        Ok::<_, Error>((sender, tokio::spawn(conn)))
    })
    .await;
    let (mut sender, mut conn) = match connected {
        Ok(Ok(c)) => {
            stats.connected.fetch_add(1, Ordering::Relaxed);
            c
        }
        Ok(Err(e)) => {
            stats.connect_errors.fetch_add(1, Ordering::Relaxed);
            first_errors.push(format!("connect: {e}"));
            return (latencies, slow);
        }
        Err(_) => {
            stats.connect_errors.fetch_add(1, Ordering::Relaxed);
            first_errors.push("connect: timed out");
            return (latencies, slow);
        }
    };
    drop(permit);

    // Wait for the active phase (or the end).
    let active_start = loop {
        match *phase.borrow_and_update() {
            Phase::Active(at) => break Some(at),
            Phase::Close => break None,
            Phase::Connect | Phase::Idle => {}
        }
        tokio::select! {
            changed = phase.changed() => if changed.is_err() { break None },
            // The server closing an idle connection is an error.
            _ = &mut conn => {
                stats.closed_early.fetch_add(1, Ordering::Relaxed);
                first_errors.push("server closed an idle connection");
                return (latencies, slow);
            }
        }
    };

    if let Some(active_start) = active_start {
        let offset = args.interval.mul_f64(i as f64 / args.connections as f64);
        let mut next = tokio::time::Instant::from_std(active_start + offset);
        let host = args.addr.to_string();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                changed = phase.changed() => {
                    if changed.is_err() || *phase.borrow() == Phase::Close { break }
                    continue;
                }
            }
            // The timer and the close may be ready together: closing wins.
            if *phase.borrow() == Phase::Close {
                break;
            }
            next += args.interval;
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let request = http::Request::get(args.path.as_str())
                .header(http::header::HOST, host.as_str())
                .body(Empty::<Bytes>::new())
                .expect("a valid request");
            let outcome = tokio::time::timeout(args.timeout, async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<_, Error>(status)
            })
            .await;
            match outcome {
                Ok(Ok(http::StatusCode::OK)) => {
                    stats.ok.fetch_add(1, Ordering::Relaxed);
                    let took = sent.elapsed();
                    let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
                    latencies.push(us);
                    if took > SLOW {
                        let at = sent.duration_since(active_start).as_millis();
                        slow.push((u32::try_from(at).unwrap_or(u32::MAX), us));
                    }
                }
                Ok(Ok(status)) => {
                    stats.non_200.fetch_add(1, Ordering::Relaxed);
                    first_errors.push(format!("status {status}"));
                }
                Ok(Err(e)) => {
                    stats.request_errors.fetch_add(1, Ordering::Relaxed);
                    first_errors.push(format!("request: {e}"));
                    return (latencies, slow);
                }
                Err(_) => {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    first_errors.push("request timed out");
                    return (latencies, slow);
                }
            }
        }
    }

    // Close: dropping the sender ends the connection task, which closes the socket.
    drop(sender);
    match tokio::time::timeout(args.timeout, conn).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => first_errors.push(format!("close: {e}")),
        Ok(Err(e)) => first_errors.push(format!("close: {e}")),
        Err(_) => first_errors.push("close: timed out"),
    }
    (latencies, slow)
}
