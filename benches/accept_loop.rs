//! Costs of the accept loop (issue 3), as figures rather than a criterion report:
//!
//! 1. **Memory per tracked connection**: heap bytes held per accepted connection with
//!    `TcpInfoListener` minus the same with a plain `tokio::net::TcpListener` (the same
//!    client sockets on both sides), counted by a global allocator wrapper. Target:
//!    < 512 bytes.
//! 2. **Sampler CPU**: process CPU time (`getrusage`) over a measurement window with
//!    10,000 idle connections and a 1 s tick, minus the same with ticks off. Target:
//!    < 5 % of one core.
//!
//! `cargo bench --bench accept_loop` (release build). The client sockets live in a child
//! process (this binary in client mode), so they cost this process neither descriptors,
//! heap nor CPU; each side raises `RLIMIT_NOFILE` as far as it needs. `ACCEPT_LOOP_WINDOW_S` sets the CPU window
//! (default 10 s); `ACCEPT_LOOP_CONNS` the connection count (default 10,000).
#![allow(unsafe_code, missing_docs)] // the counting allocator and getrusage/setrlimit

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` unchanged, only counting sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (we forward both).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr`/`layout` came from us, hence from `System`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> i64 {
    LIVE.load(Ordering::SeqCst)
}

fn raise_nofile(to: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur >= to {
        return;
    }
    lim.rlim_cur = to;
    lim.rlim_max = lim.rlim_max.max(to);
    // SAFETY: `lim` is a valid rlimit; raising the hard limit needs CAP_SYS_RESOURCE and
    // fails harmlessly otherwise (reported).
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        eprintln!(
            "setrlimit(RLIMIT_NOFILE, {to}): {}",
            std::io::Error::last_os_error()
        );
    }
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Opens `n` connections to `addr` from a child process (this binary in client mode), so
/// that the client sockets use neither this process's descriptors nor its heap or CPU.
/// The connections stay open until the returned child's stdin is closed.
fn spawn_clients(addr: std::net::SocketAddr, n: usize) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .env(CLIENT_ENV, format!("{addr} {n}"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

const CLIENT_ENV: &str = "ACCEPT_LOOP_CLIENT";

/// Client mode: connect, then hold every connection until stdin closes.
fn client_main(spec: &str) {
    let (addr, n) = spec.split_once(' ').unwrap();
    let n: usize = n.parse().unwrap();
    raise_nofile(n as u64 + 100);
    let held: Vec<_> = (0..n)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    drop(held);
}

fn finish(mut child: std::process::Child) {
    drop(child.stdin.take());
    child.wait().unwrap();
}

/// Heap bytes per connection held by `n` accepted streams of a plain tokio listener.
async fn plain_bytes_per_conn(n: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let child = spawn_clients(listener.local_addr().unwrap(), n);
    let mut held = Vec::with_capacity(n);
    let before = live();
    for _ in 0..n {
        held.push(listener.accept().await.unwrap().0);
    }
    let after = live();
    drop(held);
    finish(child);
    // Heap per connection, plus the stream itself wherever it is kept.
    (after - before) as f64 / n as f64 + std::mem::size_of::<TcpStream>() as f64
}

/// The same with `TcpInfoListener` (default configuration but `retain_snapshots`, no
/// tracing subscriber).
async fn tracked_bytes_per_conn(n: usize, retain: bool) -> (f64, usize) {
    let listener = conniver::TcpInfoListener::builder()
        .retain_snapshots(retain)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let child = spawn_clients(listener.local_addr().unwrap(), n + 1);
    // Warm-up: the first accept starts the sampler task and lazily initialised state.
    let warm = listener.accept().await.unwrap();
    let mut held = Vec::with_capacity(n);
    let before = live();
    for _ in 0..n {
        held.push(listener.accept().await.unwrap().0);
    }
    let after = live();
    drop((held, warm));
    finish(child);
    let size = std::mem::size_of::<conniver::TrackedStream>();
    ((after - before) as f64 / n as f64 + size as f64, size)
}

/// CPU % of one core over `window` with `n` idle tracked connections.
async fn cpu_percent(n: usize, tick: Option<Duration>, window: Duration, defaults: bool) -> f64 {
    let mut builder = conniver::TcpInfoListener::builder().tick(tick);
    if !defaults {
        builder = builder.without_default_observers();
    }
    let listener = builder.bind("127.0.0.1:0").await.unwrap();
    let child = spawn_clients(listener.local_addr().unwrap(), n);
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(listener.accept().await.unwrap().0);
    }
    // Let the first tick pass and things settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    tokio::time::sleep(window).await;
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    drop((held, listener));
    finish(child);
    100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
}

fn main() {
    if let Ok(spec) = std::env::var(CLIENT_ENV) {
        return client_main(&spec);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us with no argument:
    // only do the (slow) measurement when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let conns: usize = std::env::var("ACCEPT_LOOP_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let window = Duration::from_secs(
        std::env::var("ACCEPT_LOOP_WINDOW_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    raise_nofile(conns as u64 + 1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n = 2_000;
        let plain = plain_bytes_per_conn(n).await;
        let (tracked, size) = tracked_bytes_per_conn(n, true).await;
        let (lean, _) = tracked_bytes_per_conn(n, false).await;
        println!(
            "memory: plain tokio {plain:.0} B/conn; TcpInfoListener {tracked:.0} B/conn \
             (TrackedStream itself {size} B): overhead {:.0} B per tracked connection, \
             {:.0} B with retain_snapshots(false) (target < 512; one retained Info is {} B)",
            tracked - plain,
            lean - plain,
            std::mem::size_of::<conniver::Info>()
        );

        let second = Some(Duration::from_secs(1));
        let idle = cpu_percent(conns, None, window, true).await;
        let ticking = cpu_percent(conns, second, window, true).await;
        let bare = cpu_percent(conns, second, window, false).await;
        println!(
            "sampler CPU: {conns} idle connections, 1 s tick: {ticking:.2} % of one core \
             (ticks off: {idle:.2} %), sampler share {:.2} % (target < 5); \
             without the built-in metrics/slow-client observers: {bare:.2} %",
            ticking - idle
        );
    });
}
