//! Test network harness: two network namespaces joined by a userspace "wire"
//! that injects one-way delay, random loss and an optional rate limit.
//!
//! ```text
//!   netns A (server side)                                netns B (client side)
//!   cnv0 10.213.N.1 peer .2  <--tun fd-->  forwarder  <--tun fd-->  cnv0 10.213.N.2 peer .1
//!                                 (delay, loss, rate; one thread per direction)
//! ```
//!
//! netem (`tc qdisc ... netem`) is not available on every kernel, so the
//! impairment is done in this process: each namespace gets a TUN device, and
//! a forwarder thread per direction reads IP packets from one TUN fd, decides
//! whether to drop them (xorshift PRNG), stamps a due time
//! (`arrival + serialisation at rate + delay`) and writes them to the other
//! TUN fd when due.  Due times are monotonic per direction, so the queue is a
//! FIFO ordered by due time; the thread sleeps in `ppoll()` until the head is
//! due or a new packet arrives (hrtimer precision, well under 1 ms). The
//! forwarders run SCHED_FIFO by default so the delay holds under CPU load.
//!
//! Each TUN device is created by a thread that has already `setns()`-ed into
//! its namespace (a TUN device is born in its opener's namespace), which is
//! equivalent to creating it in the root namespace and moving it with
//! `ip link set ... netns`, but never leaves a device behind in the root
//! namespace if the process dies half-way.
//!
//! Usage from an integration test (`mod support;` + `tests/support/mod.rs`):
//!
//! ```ignore
//! use support::netem::{Link, skip_or_fail};
//! let link = match Link::builder().delay(Duration::from_millis(50)).build() {
//!     Ok(link) => link,
//!     Err(e) => return skip_or_fail(e),
//! };
//! let listener = link.bind_a(0);                 // std TcpListener living in netns A
//! let addr = listener.local_addr().unwrap();
//! let client = link.connect_b(addr);             // std TcpStream living in netns B
//! // A socket belongs to the namespace it was *created* in, whichever thread
//! // uses it later: `set_nonblocking(true)` + `tokio::net::TcpListener::from_std`
//! // works, and so does `link.in_ns_b(tokio::net::TcpSocket::new_v4)?` followed
//! // by `.connect(addr).await` on any runtime.
//! ```
//!
//! Timing-sensitive tests in one binary should hold [`serial()`] so that a
//! bulk transfer in a parallel test does not add jitter on a 2-core machine.
//!
//! Requires root (CAP_NET_ADMIN + CAP_SYS_ADMIN), `/dev/net/tun` and the
//! `ip` binary (iproute2).  Everything is torn down on `Drop` (also during a
//! panic unwind); namespaces left by killed runs are removed by
//! [`cleanup_stale`], which `build()` calls automatically.
#![allow(unsafe_code)]
#![allow(dead_code)]
#![allow(unreachable_pub)]

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Prefix of every namespace this harness creates (`cnv-<pid>-<n>-a|b`).
pub const NS_PREFIX: &str = "cnv-";
/// Name of the TUN device inside each namespace.
pub const TUN_NAME: &str = "cnv0";
/// MTU of the TUN devices.
pub const MTU: usize = 1500;
/// Default per-direction queue bound (packets); beyond it packets are dropped
/// and counted in [`DirStats::overflow`].
pub const DEFAULT_QUEUE_LIMIT: usize = 10_000;
/// Timeout for every external command (`ip`, `ss`).
const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a forwarder sleeps before re-checking the shutdown flag.
const POLL_MAX: Duration = Duration::from_millis(50);
/// Packets read per wake-up before flushing due packets again.
const READ_BATCH: usize = 256;
/// Timeout used by the `connect_*` conveniences.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

static LINK_COUNTER: AtomicUsize = AtomicUsize::new(0);
/// Serialises `ip netns add/del` inside this process (concurrent first-time
/// creation of the `/run/netns` mount point is racy in iproute2).
static NETNS_LOCK: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------
// Errors and prerequisites
// ---------------------------------------------------------------------------

/// Why a [`Link`] could not be created.
#[derive(Debug)]
pub enum LinkError {
    /// Not running as root (or missing CAP_NET_ADMIN / CAP_SYS_ADMIN).
    NotRoot,
    /// `/dev/net/tun` is missing or cannot be opened.
    NoTun,
    /// The `ip` binary (iproute2) is not available.
    NoIpTool,
    /// A setup step failed (message includes the command and its stderr).
    Setup(String),
    /// An I/O error.
    Io(io::Error),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::NotRoot => {
                f.write_str("not root (needs euid 0 with CAP_NET_ADMIN and CAP_SYS_ADMIN)")
            }
            LinkError::NoTun => f.write_str("/dev/net/tun is missing or cannot be opened"),
            LinkError::NoIpTool => f.write_str("the `ip` binary (iproute2) is not available"),
            LinkError::Setup(msg) => write!(f, "link setup failed: {msg}"),
            LinkError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Io(e)
    }
}

impl LinkError {
    /// True for the "environment can't do this" variants (as opposed to a
    /// harness failure).
    pub fn is_missing_prerequisite(&self) -> bool {
        matches!(
            self,
            LinkError::NotRoot | LinkError::NoTun | LinkError::NoIpTool
        )
    }
}

/// Checks the prerequisites: root with CAP_NET_ADMIN + CAP_SYS_ADMIN,
/// `/dev/net/tun`, and the `ip` binary.
pub fn require() -> Result<(), LinkError> {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(LinkError::NotRoot);
    }
    // Root inside a container may lack the capabilities netns/TUN need.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
        if let Some(caps) = cap_eff {
            const CAP_NET_ADMIN: u32 = 12;
            const CAP_SYS_ADMIN: u32 = 21;
            if caps & (1 << CAP_NET_ADMIN) == 0 || caps & (1 << CAP_SYS_ADMIN) == 0 {
                return Err(LinkError::NotRoot);
            }
        }
    }
    if OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_err()
    {
        return Err(LinkError::NoTun);
    }
    match Command::new("ip")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err(LinkError::NoIpTool),
    }
}

/// Handles a [`Link`] setup error in a test.
///
/// Missing prerequisites (not root, no `/dev/net/tun`, no `ip`): if the env
/// var `CI` is `true` (or `1`) this panics — under CI a missing prerequisite is
/// a failure; otherwise it prints `skipped: needs root and /dev/net/tun` and
/// returns so the test passes trivially.  Any other error (the harness itself
/// failed) always panics.
///
/// Typical use: `Err(e) => return skip_or_fail(e)`.
pub fn skip_or_fail(err: LinkError) {
    let ci = std::env::var("CI")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false);
    if !err.is_missing_prerequisite() {
        panic!("netem harness: {err}");
    }
    if ci {
        panic!("netem harness: prerequisite missing under CI (CI=true): {err}");
    }
    eprintln!("skipped: needs root and /dev/net/tun (and iproute2 `ip`): {err}");
}

// ---------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------

/// Configures a [`Link`]. All impairments apply to each direction
/// independently.
#[derive(Debug, Clone)]
pub struct LinkBuilder {
    delay: Duration,
    loss: f64,
    rate: Option<u64>,
    queue_limit: usize,
    seed: Option<u64>,
    congestion_control: Option<String>,
    realtime: bool,
}

impl Default for LinkBuilder {
    fn default() -> Self {
        LinkBuilder {
            delay: Duration::ZERO,
            loss: 0.0,
            rate: None,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            seed: None,
            congestion_control: None,
            realtime: true,
        }
    }
}

impl LinkBuilder {
    /// One-way delay added to every packet in each direction (RTT = 2×).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Per-packet drop probability in `0.0..=1.0`, each direction.
    pub fn loss(mut self, loss: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&loss),
            "loss must be within 0..=1, got {loss}"
        );
        self.loss = loss;
        self
    }

    /// Rate limit in bytes/second (IP packet bytes), each direction; `None`
    /// means unlimited.
    pub fn rate(mut self, bytes_per_sec: Option<u64>) -> Self {
        assert!(bytes_per_sec != Some(0), "rate must be > 0");
        self.rate = bytes_per_sec;
        self
    }

    /// Per-direction queue bound in packets (default [`DEFAULT_QUEUE_LIMIT`]).
    pub fn queue_limit(mut self, packets: usize) -> Self {
        self.queue_limit = packets.max(1);
        self
    }

    /// Fixes the loss PRNG seed (default: derived from the clock, or from the
    /// env var `CNV_NETEM_SEED` if set). The seed in use is in [`Link::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets `net.ipv4.tcp_congestion_control` in both namespaces (e.g.
    /// `"cubic"`, `"reno"`, `"bbr"`; must be in
    /// `/proc/sys/net/ipv4/tcp_available_congestion_control`). By default new
    /// namespaces inherit the host's default, which differs between machines
    /// (BBR ignores random loss, CUBIC/Reno back off).
    ///
    /// The kernel only lets a non-initial namespace default to an algorithm
    /// listed in the host's `net.ipv4.tcp_allowed_congestion_control`
    /// (otherwise `build()` fails with EPERM); any available algorithm can
    /// still be chosen per socket with `setsockopt(TCP_CONGESTION)` as root.
    pub fn congestion_control(mut self, algorithm: &str) -> Self {
        self.congestion_control = Some(algorithm.to_owned());
        self
    }

    /// Runs the forwarder threads as SCHED_FIFO (priority 10) so that the
    /// delay stays accurate when the test saturates the CPUs. On by default;
    /// best effort (a refusal is reported once on stderr, then ignored).
    /// The forwarders block in `ppoll()` whenever no packet is due, so they
    /// only take CPU in proportion to the traffic.
    pub fn realtime(mut self, on: bool) -> Self {
        self.realtime = on;
        self
    }

    /// Creates the namespaces, TUN devices and forwarder threads.
    pub fn build(self) -> Result<Link, LinkError> {
        Link::build(self)
    }
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

/// Counters of one direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirStats {
    /// Packets read from the source TUN.
    pub received: u64,
    /// Packets written to the destination TUN.
    pub forwarded: u64,
    /// Bytes (IP packets) written to the destination TUN.
    pub forwarded_bytes: u64,
    /// Packets dropped by the random loss.
    pub dropped: u64,
    /// Packets dropped because the queue was full.
    pub overflow: u64,
    /// Writes to the destination TUN that failed.
    pub write_errors: u64,
}

/// Counters of both directions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// Namespace A → namespace B (server → client).
    pub a_to_b: DirStats,
    /// Namespace B → namespace A (client → server).
    pub b_to_a: DirStats,
}

impl LinkStats {
    /// Random-loss drops over both directions.
    pub fn dropped(&self) -> u64 {
        self.a_to_b.dropped + self.b_to_a.dropped
    }
    /// Forwarded packets over both directions.
    pub fn forwarded(&self) -> u64 {
        self.a_to_b.forwarded + self.b_to_a.forwarded
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    forwarded_bytes: AtomicU64,
    dropped: AtomicU64,
    overflow: AtomicU64,
    write_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DirStats {
        DirStats {
            received: self.received.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            forwarded_bytes: self.forwarded_bytes.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            overflow: self.overflow.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }
}

// ---------------------------------------------------------------------------
// Link
// ---------------------------------------------------------------------------

/// Two network namespaces joined by an impaired point-to-point link.
///
/// Namespace A holds [`Link::server_addr`], namespace B [`Link::client_addr`].
/// Dropping it stops the forwarders, closes the TUN fds and deletes both
/// namespaces.
pub struct Link {
    // Field order matters for Drop: threads are joined in `drop()`, then the
    // TUN fds close (destroying the devices), then the namespaces go.
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// Dropping this end wakes the forwarders' poll() at once (EOF/HUP on the
    /// peer end), so shutdown does not wait for the poll timeout.
    wake: Option<UnixStream>,
    tun_a: Arc<OwnedFd>,
    tun_b: Arc<OwnedFd>,
    ns_a: NetNs,
    ns_b: NetNs,
    addr_a: Ipv4Addr,
    addr_b: Ipv4Addr,
    a_to_b: Arc<Counters>,
    b_to_a: Arc<Counters>,
    delay: Duration,
    loss: f64,
    rate: Option<u64>,
    seed: u64,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("ns_a", &self.ns_a.name)
            .field("ns_b", &self.ns_b.name)
            .field("addr_a", &self.addr_a)
            .field("addr_b", &self.addr_b)
            .field("delay", &self.delay)
            .field("loss", &self.loss)
            .field("rate", &self.rate)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A builder with no impairment (zero delay, no loss, unlimited rate).
    pub fn builder() -> LinkBuilder {
        LinkBuilder::default()
    }

    /// Checks the prerequisites (see [`require`]).
    pub fn require() -> Result<(), LinkError> {
        require()
    }

    fn build(cfg: LinkBuilder) -> Result<Link, LinkError> {
        require()?;
        let _ = cleanup_stale();

        let n = LINK_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name_a = format!("{NS_PREFIX}{pid}-{n}-a");
        let name_b = format!("{NS_PREFIX}{pid}-{n}-b");
        // Each namespace is isolated, so addresses never clash across links;
        // the third octet just makes them easy to tell apart in traces.
        let octet = (n % 250) as u8 + 1;
        let addr_a = Ipv4Addr::new(10, 213, octet, 1);
        let addr_b = Ipv4Addr::new(10, 213, octet, 2);

        // Guards delete the namespaces again if a later step fails.
        let ns_a = NetNs::create(&name_a)?;
        let ns_b = NetNs::create(&name_b)?;

        // Open the TUN devices from threads living in the target namespaces:
        // a TUN device is created in the network namespace of the opener, so
        // nothing is ever left in the root namespace.
        let tun_a = Arc::new(run_in_ns(&name_a, || open_tun(TUN_NAME))??);
        let tun_b = Arc::new(run_in_ns(&name_b, || open_tun(TUN_NAME))??);

        configure_ns(&name_a, addr_a, addr_b)?;
        configure_ns(&name_b, addr_b, addr_a)?;
        if let Some(cc) = &cfg.congestion_control {
            for ns in [&name_a, &name_b] {
                // /proc/sys/net is resolved against the calling thread's netns.
                run_in_ns(ns, || {
                    std::fs::write("/proc/sys/net/ipv4/tcp_congestion_control", cc)
                })?
                .map_err(|e| {
                    LinkError::Setup(format!(
                        "set tcp_congestion_control={cc} in {ns}: {e} (a netns may only \
                         default to algorithms in the host's \
                         net.ipv4.tcp_allowed_congestion_control)"
                    ))
                })?;
            }
        }

        let seed = cfg.seed.unwrap_or_else(default_seed);
        let stop = Arc::new(AtomicBool::new(false));
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        let wake_rx = Arc::new(wake_rx);
        let a_to_b = Arc::new(Counters::default());
        let b_to_a = Arc::new(Counters::default());

        let mut link = Link {
            threads: Vec::new(),
            stop: stop.clone(),
            wake: Some(wake_tx),
            tun_a: tun_a.clone(),
            tun_b: tun_b.clone(),
            ns_a,
            ns_b,
            addr_a,
            addr_b,
            a_to_b: a_to_b.clone(),
            b_to_a: b_to_a.clone(),
            delay: cfg.delay,
            loss: cfg.loss,
            rate: cfg.rate,
            seed,
        };

        let dirs = [
            ("netem-a2b", tun_a.clone(), tun_b.clone(), a_to_b, seed),
            (
                "netem-b2a",
                tun_b,
                tun_a,
                b_to_a,
                seed ^ 0x9E37_79B9_7F4A_7C15,
            ),
        ];
        for (name, src, dst, counters, seed) in dirs {
            let fwd = Forwarder {
                src,
                dst,
                counters,
                stop: stop.clone(),
                wake: wake_rx.clone(),
                delay: cfg.delay,
                loss: cfg.loss,
                rate: cfg.rate,
                queue_limit: cfg.queue_limit,
                realtime: cfg.realtime,
                rng: XorShift::new(seed),
            };
            // On failure `link` is dropped, which stops the thread(s) already
            // started and deletes the namespaces.
            let handle = std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || fwd.run())?;
            link.threads.push(handle);
        }
        Ok(link)
    }

    /// Address of the TUN device in namespace A (the "server" side).
    pub fn server_addr(&self) -> IpAddr {
        IpAddr::V4(self.addr_a)
    }

    /// Address of the TUN device in namespace B (the "client" side).
    pub fn client_addr(&self) -> IpAddr {
        IpAddr::V4(self.addr_b)
    }

    /// Name of namespace A (usable with `ip netns exec NAME ...`).
    pub fn ns_a_name(&self) -> &str {
        &self.ns_a.name
    }

    /// Name of namespace B.
    pub fn ns_b_name(&self) -> &str {
        &self.ns_b.name
    }

    /// Configured one-way delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Configured loss probability.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// Configured rate limit (bytes/s).
    pub fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// Seed of the loss PRNG (direction B→A uses a derived seed).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Snapshot of the forwarder counters.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            a_to_b: self.a_to_b.snapshot(),
            b_to_a: self.b_to_a.snapshot(),
        }
    }

    /// Runs `f` on a fresh thread that has joined namespace A and returns its
    /// result (a panic in `f` is propagated).  Sockets created in `f` stay in
    /// namespace A whichever thread later uses them.
    pub fn in_ns_a<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        run_in_ns(&self.ns_a.name, f)
            .unwrap_or_else(|e| panic!("entering netns {}: {e}", self.ns_a.name))
    }

    /// Like [`Link::in_ns_a`], for namespace B.
    pub fn in_ns_b<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        run_in_ns(&self.ns_b.name, f)
            .unwrap_or_else(|e| panic!("entering netns {}: {e}", self.ns_b.name))
    }

    /// A blocking `TcpListener` on `server_addr():port` in namespace A
    /// (`port` 0 = ephemeral; see `local_addr()`). Panics on failure.
    pub fn bind_a(&self, port: u16) -> TcpListener {
        let addr = SocketAddr::new(self.server_addr(), port);
        self.in_ns_a(|| TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("bind {addr} in {}: {e}", self.ns_a.name))
    }

    /// A blocking `TcpListener` on `client_addr():port` in namespace B.
    pub fn bind_b(&self, port: u16) -> TcpListener {
        let addr = SocketAddr::new(self.client_addr(), port);
        self.in_ns_b(|| TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("bind {addr} in {}: {e}", self.ns_b.name))
    }

    /// Connects from namespace B to `addr` (15 s timeout). Panics on failure.
    pub fn connect_b(&self, addr: SocketAddr) -> TcpStream {
        self.try_connect_b(addr)
            .unwrap_or_else(|e| panic!("connect to {addr} from {}: {e}", self.ns_b.name))
    }

    /// Connects from namespace B to `addr` (15 s timeout).
    pub fn try_connect_b(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.in_ns_b(|| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT))
    }

    /// Connects from namespace A to `addr` (15 s timeout). Panics on failure.
    pub fn connect_a(&self, addr: SocketAddr) -> TcpStream {
        self.in_ns_a(|| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT))
            .unwrap_or_else(|e| panic!("connect to {addr} from {}: {e}", self.ns_a.name))
    }

    /// `ss -tin <filter...>` run in namespace A; returns stdout.
    pub fn ss_a(&self, filter: &[&str]) -> Result<String, LinkError> {
        ss_tin(&self.ns_a.name, filter)
    }

    /// `ss -tin <filter...>` run in namespace B; returns stdout.
    pub fn ss_b(&self, filter: &[&str]) -> Result<String, LinkError> {
        ss_tin(&self.ns_b.name, filter)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(self.wake.take());
        for handle in self.threads.drain(..) {
            // A panicking forwarder must not turn into a double panic here.
            let _ = handle.join();
        }
        // Remaining fields drop in declaration order: TUN fds (devices are
        // destroyed on close), then the NetNs guards run `ip netns del`.
    }
}

/// Serialises timing-sensitive tests within one test binary.
///
/// Links are independent, but on a small machine a bulk transfer through one
/// link (plus the test's own CPU work) steals CPU from the forwarder and the
/// application threads of another, adding tens of ms of jitter to RTT
/// measurements. Hold the guard for the whole test, declared *before* the
/// `Link` so it is released after the link is torn down:
///
/// ```ignore
/// let _serial = netem::serial();
/// let link = Link::builder().delay(Duration::from_millis(50)).build()?;
/// ```
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    // A test that panicked while holding it must not fail the others.
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Namespaces and commands
// ---------------------------------------------------------------------------

/// A named network namespace, deleted on drop.
#[derive(Debug)]
struct NetNs {
    name: String,
}

impl NetNs {
    fn create(name: &str) -> Result<NetNs, LinkError> {
        let _guard = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        run_cmd("ip", &["netns", "add", name])?;
        Ok(NetNs {
            name: name.to_owned(),
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = delete_netns(&self.name) {
            eprintln!("netem harness: could not delete netns {}: {e}", self.name);
        }
    }
}

fn delete_netns(name: &str) -> Result<(), LinkError> {
    let _guard = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    run_cmd("ip", &["netns", "del", name]).map(drop)
}

fn configure_ns(ns: &str, local: Ipv4Addr, peer: Ipv4Addr) -> Result<(), LinkError> {
    let mtu = MTU.to_string();
    let local = local.to_string();
    let peer = format!("{peer}/32");
    run_cmd("ip", &["-n", ns, "link", "set", "dev", "lo", "up"])?;
    // addrgenmode none: no IPv6 link-local address, hence no DAD/RS/MLD
    // chatter on the link that would pollute the packet counters.
    run_cmd(
        "ip",
        &[
            "-n",
            ns,
            "link",
            "set",
            "dev",
            TUN_NAME,
            "mtu",
            &mtu,
            "txqueuelen",
            "10000",
            "addrgenmode",
            "none",
        ],
    )?;
    run_cmd(
        "ip",
        &[
            "-n", ns, "addr", "add", &local, "peer", &peer, "dev", TUN_NAME,
        ],
    )?;
    run_cmd("ip", &["-n", ns, "link", "set", "dev", TUN_NAME, "up"])?;
    Ok(())
}

/// Runs `f` on a fresh thread that joined the named network namespace
/// (`/run/netns/NAME`) and returns its result; panics in `f` propagate.
pub fn run_in_ns<F, R>(ns: &str, f: F) -> Result<R, LinkError>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| LinkError::Setup(format!("open {path}: {e}")))?;
    std::thread::scope(|s| {
        let handle = s.spawn(move || -> Result<R, LinkError> {
            // SAFETY: `file` is an open descriptor of a network namespace
            // file that outlives the call; setns() only changes the namespace
            // of this (freshly spawned, scoped) thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                return Err(LinkError::Setup(format!("setns({path}): {e}")));
            }
            drop(file);
            Ok(f())
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `ip netns exec NS args...` and returns stdout (10 s timeout).
pub fn ns_exec(ns: &str, args: &[&str]) -> Result<String, LinkError> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run_cmd("ip", &full)
}

/// `ip netns exec NS ss -tin <filter...>`; returns stdout.
pub fn ss_tin(ns: &str, filter: &[&str]) -> Result<String, LinkError> {
    let mut args = vec!["ss", "-tin"];
    args.extend_from_slice(filter);
    ns_exec(ns, &args)
}

/// Names listed by `ip netns list`.
pub fn list_netns() -> Result<Vec<String>, LinkError> {
    let out = run_cmd("ip", &["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Deletes `cnv-<pid>-*` namespaces whose process no longer exists (left by
/// crashed or killed runs). Returns how many were removed.
pub fn cleanup_stale() -> Result<usize, LinkError> {
    let mut removed = 0;
    for name in list_netns()? {
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match delete_netns(&name) {
            Ok(()) => removed += 1,
            // Another thread/process may have removed it in the meantime.
            Err(_) if !std::path::Path::new(&format!("/run/netns/{name}")).exists() => {}
            Err(e) => eprintln!("netem harness: could not delete stale netns {name}: {e}"),
        }
    }
    Ok(removed)
}

/// Runs a command with a timeout; returns stdout, or `Setup` with stderr.
fn run_cmd(program: &str, args: &[&str]) -> Result<String, LinkError> {
    let describe = || format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound && program == "ip" {
                LinkError::NoIpTool
            } else {
                LinkError::Setup(format!("spawn `{}`: {e}", describe()))
            }
        })?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LinkError::Setup(format!(
                "`{}` timed out after {CMD_TIMEOUT:?}",
                describe()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(LinkError::Setup(format!(
            "`{}` failed ({status}): {}",
            describe(),
            String::from_utf8_lossy(&err).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

// ---------------------------------------------------------------------------
// `ss -tin` parsing
// ---------------------------------------------------------------------------

/// Parses the first `rtt:X/Y` (smoothed RTT / RTT variance, ms) in `ss -i`
/// output.
pub fn parse_ss_rtt_ms(ss: &str) -> Option<(f64, f64)> {
    let v = ss.split_whitespace().find_map(|t| t.strip_prefix("rtt:"))?;
    let (srtt, var) = v.split_once('/')?;
    Some((srtt.parse().ok()?, var.parse().ok()?))
}

/// Parses the first `retrans:a/b` in `ss -i` output and returns `b` (total
/// retransmissions). `ss` omits the field when both are zero, so a missing
/// field yields `Some(0)` if the output holds a TCP_INFO line, else `None`.
pub fn parse_ss_retrans_total(ss: &str) -> Option<u64> {
    match ss
        .split_whitespace()
        .find_map(|t| t.strip_prefix("retrans:"))
    {
        Some(v) => v.split_once('/')?.1.parse().ok(),
        None if ss.contains("rtt:") => Some(0),
        None => None,
    }
}

// ---------------------------------------------------------------------------
// TUN
// ---------------------------------------------------------------------------

/// `struct ifreq` as far as TUNSETIFF needs it: name + flags, padded to the
/// kernel's 40-byte size.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 24],
}

/// Opens `/dev/net/tun` and creates a TUN device (IFF_TUN | IFF_NO_PI,
/// non-blocking fd) in the calling thread's network namespace.
fn open_tun(name: &str) -> Result<OwnedFd, LinkError> {
    assert!(name.len() < libc::IFNAMSIZ);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(|_| LinkError::NoTun)?;
    let fd = OwnedFd::from(file);
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 24],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads (and writes back) a `struct ifreq`; `req` is a
    // properly initialised repr(C) value at least as large as ifreq, with the
    // name and flags at the kernel's offsets, and it outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(LinkError::Setup(format!("ioctl(TUNSETIFF, {name}): {e}")));
    }
    Ok(fd)
}

// ---------------------------------------------------------------------------
// Forwarder
// ---------------------------------------------------------------------------

/// xorshift64* PRNG (no extra crate needed).
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn default_seed() -> u64 {
    if let Some(seed) = std::env::var("CNV_NETEM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = LINK_COUNTER.load(Ordering::Relaxed) as u64;
    nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

struct Forwarder {
    src: Arc<OwnedFd>,
    dst: Arc<OwnedFd>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    wake: Arc<UnixStream>,
    delay: Duration,
    loss: f64,
    rate: Option<u64>,
    queue_limit: usize,
    realtime: bool,
    rng: XorShift,
}

impl Forwarder {
    fn run(mut self) {
        if self.realtime
            && let Err(e) = set_realtime()
        {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!("netem forwarder: SCHED_FIFO refused ({e}); using normal priority");
            }
        }
        // Due times are non-decreasing (arrival is monotonic, delay constant,
        // rate pacing monotonic), so a FIFO is a queue ordered by due time.
        let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
        let mut buf = vec![0u8; 65_536];
        let mut link_free_at = Instant::now();
        let src = self.src.as_raw_fd();
        let dst = self.dst.as_raw_fd();
        let wake = self.wake.as_raw_fd();

        while !self.stop.load(Ordering::Relaxed) {
            // 1. Transmit everything that is due.
            let now = Instant::now();
            while queue.front().is_some_and(|(due, _)| *due <= now) {
                let (_, pkt) = queue.pop_front().expect("non-empty");
                match write_fd(dst, &pkt) {
                    Ok(_) => {
                        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                        self.counters
                            .forwarded_bytes
                            .fetch_add(pkt.len() as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }

            // 2. Sleep until the head is due, a packet arrives, shutdown is
            //    signalled, or POLL_MAX passes.
            let timeout = queue.front().map_or(POLL_MAX, |(due, _)| {
                due.saturating_duration_since(now).min(POLL_MAX)
            });
            match poll_readable(src, wake, timeout) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("netem forwarder: poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }

            // 3. Ingest a batch of packets.
            for _ in 0..READ_BATCH {
                let n = match read_fd(src, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let arrived = Instant::now();
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                if self.loss > 0.0 && self.rng.next_f64() < self.loss {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if queue.len() >= self.queue_limit {
                    self.counters.overflow.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut due = arrived;
                if let Some(rate) = self.rate {
                    // Serialise onto a link of `rate` bytes/s, then propagate.
                    let start = link_free_at.max(arrived);
                    link_free_at = start + Duration::from_secs_f64(n as f64 / rate as f64);
                    due = link_free_at;
                }
                queue.push_back((due + self.delay, buf[..n].to_vec()));
            }
        }
    }
}

/// Switches the calling thread to SCHED_FIFO (low RT priority).
fn set_realtime() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: pid 0 means the calling thread; `param` is a valid sched_param
    // that outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` (nanosecond resolution) for `fd` to be readable or
/// for any event on `wake`; returns whether `fd` is readable.
fn poll_readable(fd: RawFd, wake: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `pfds` is an array of `pfds.len()` valid pollfds and `ts` a
    // valid timespec, both living across the call; a null sigmask means
    // "leave the signal mask unchanged".
    let rc = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc > 0 && pfds[0].revents & libc::POLLIN != 0)
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration
    // of the call; `fd` is an open TUN fd kept alive by the forwarder's Arc.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn write_fd(fd: RawFd, pkt: &[u8]) -> io::Result<usize> {
    // SAFETY: `pkt` is valid for reads of `pkt.len()` bytes for the duration
    // of the call; `fd` is an open TUN fd kept alive by the forwarder's Arc.
    let n = unsafe { libc::write(fd, pkt.as_ptr().cast(), pkt.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
