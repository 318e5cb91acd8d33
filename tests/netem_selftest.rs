//! Self-test of the netns + TUN impairment harness (`tests/support/netem.rs`).
//!
//! Every figure is checked against an oracle outside the harness: wall-clock
//! time seen by the application, and the kernel's own TCP state as reported by
//! `ss -tin` (iproute2) or `ip netns list`.
//!
//! Run: `cargo test --test netem_selftest -- --nocapture --test-threads=1`
//! (needs root; skips otherwise unless `CI=true`).

#![cfg(target_os = "linux")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::netem::{
    Link, LinkBuilder, cleanup_stale, list_netns, parse_ss_retrans_total, parse_ss_rtt_ms, serial,
    skip_or_fail,
};

const IO_TIMEOUT: Duration = Duration::from_secs(20);

fn build(builder: LinkBuilder) -> Option<Link> {
    match builder.build() {
        Ok(link) => Some(link),
        Err(e) => {
            skip_or_fail(e);
            None
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn assert_within(what: &str, got: f64, want: f64, tolerance: f64) {
    let lo = want * (1.0 - tolerance);
    let hi = want * (1.0 + tolerance);
    assert!(
        (lo..=hi).contains(&got),
        "{what}: {got:.2} not within ±{:.0}% of {want}",
        tolerance * 100.0
    );
}

/// Deterministic payload so the receiver can verify content, not just length.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 13)) as u8
}

/// Pushes `total` bytes from namespace A to namespace B over a fresh
/// connection. Returns (elapsed from connect to last byte received, ss output
/// on the sender taken after the receiver acked everything).
fn transfer_a_to_b(link: &Link, total: usize) -> (Duration, String) {
    let listener = link.bind_a(0);
    let addr = listener.local_addr().expect("local_addr");
    let client_ip = link.client_addr().to_string();
    thread::scope(|s| {
        let server = s.spawn(move || {
            let (mut sock, peer) = listener.accept().expect("accept");
            sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
            let chunk: Vec<u8> = (0..total).map(pattern).collect();
            sock.write_all(&chunk).expect("server write");
            let mut ack = [0u8; 1];
            sock.read_exact(&mut ack).expect("receiver ack");
            let dst = format!("{client_ip}:{}", peer.port());
            let ss = link.ss_a(&["dst", &dst]).expect("ss in ns a");
            drop(sock);
            ss
        });

        let start = Instant::now();
        let mut sock = link.connect_b(addr);
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while got < total {
            let n = sock.read(&mut buf).expect("client read");
            assert!(n > 0, "EOF after {got} of {total} bytes");
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, pattern(got + k), "corrupt byte at {}", got + k);
            }
            got += n;
        }
        let elapsed = start.elapsed();
        sock.write_all(&[1]).expect("ack");
        let ss = server.join().expect("server thread");
        // Server closed; drain to EOF so both sides finish cleanly.
        let _ = sock.read(&mut buf);
        (elapsed, ss)
    })
}

#[test]
fn delay_shows_up_as_rtt_in_app_and_kernel() {
    let _serial = serial();
    let Some(link) = build(Link::builder().delay(Duration::from_millis(50))) else {
        return;
    };
    println!("{link:?}");
    let injected_rtt = 100.0;

    let listener = link.bind_a(0);
    let addr = listener.local_addr().unwrap();
    let echo = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b) {
                Ok(0) => break,
                Ok(_) => s.write_all(&b).expect("echo write"),
                Err(e) => panic!("echo read: {e}"),
            }
        }
    });

    let t0 = Instant::now();
    let mut c = link.connect_b(addr);
    let connect_ms = ms(t0.elapsed());
    c.set_nodelay(true).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();

    let mut rtts = Vec::new();
    for i in 0..10u8 {
        let t = Instant::now();
        c.write_all(&[i]).unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        rtts.push(ms(t.elapsed()));
        assert_eq!(b[0], i);
    }
    let med = median(rtts.clone());
    println!("connect() took {connect_ms:.1} ms vs injected RTT {injected_rtt} ms");
    println!("rtt measured {med:.1} ms vs injected {injected_rtt} ms (samples {rtts:.1?})");

    let server_ip = link.server_addr().to_string();
    let ss = link.ss_b(&["dst", &server_ip]).expect("ss in ns b");
    println!("ss -tin (ns b):\n{}", ss.trim_end());
    let (srtt, rttvar) = parse_ss_rtt_ms(&ss).expect("rtt:X/Y in ss output");
    println!("kernel srtt {srtt:.1} ms (rttvar {rttvar:.1}) vs injected {injected_rtt} ms");

    assert_within("connect() duration (ms)", connect_ms, injected_rtt, 0.10);
    assert_within("median app RTT (ms)", med, injected_rtt, 0.10);
    assert_within("ss srtt (ms)", srtt, injected_rtt, 0.10);

    let stats = link.stats();
    println!("{stats:?}");
    assert!(
        stats.a_to_b.forwarded >= 11 && stats.b_to_a.forwarded >= 12,
        "{stats:?}"
    );
    assert_eq!(stats.dropped(), 0);

    drop(c);
    echo.join().expect("echo thread");
}

#[test]
fn one_way_delay_is_accurate() {
    let _serial = serial();
    let delay = Duration::from_millis(50);
    let Some(link) = build(Link::builder().delay(delay)) else {
        return;
    };
    let rx = link
        .in_ns_a(|| UdpSocket::bind((link.server_addr(), 0)))
        .expect("udp bind a");
    let tx = link
        .in_ns_b(|| UdpSocket::bind((link.client_addr(), 0)))
        .expect("udp bind b");
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let dst: SocketAddr = rx.local_addr().unwrap();

    const N: usize = 40;
    let (sent_tx, sent_rx) = mpsc::channel::<(u32, Instant)>();
    let sender = thread::spawn(move || {
        for i in 0..N as u32 {
            let t = Instant::now();
            tx.send_to(&i.to_be_bytes(), dst).expect("udp send");
            sent_tx.send((i, t)).unwrap();
            thread::sleep(Duration::from_millis(3));
        }
    });
    let mut recv_at = vec![None; N];
    let mut buf = [0u8; 16];
    for _ in 0..N {
        let (n, _) = rx.recv_from(&mut buf).expect("udp recv");
        let now = Instant::now();
        assert_eq!(n, 4);
        let i = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        recv_at[i] = Some(now);
    }
    sender.join().unwrap();
    let mut one_way = Vec::new();
    for (i, sent) in sent_rx.iter() {
        let got = recv_at[i as usize].expect("datagram received");
        one_way.push(ms(got - sent));
    }
    let min = one_way.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = one_way.iter().cloned().fold(0.0, f64::max);
    let med = median(one_way);
    println!(
        "one-way delay measured median {med:.3} ms (min {min:.3}, max {max:.3}) vs injected {} ms",
        ms(delay)
    );
    // The forwarder stamps due = arrival + delay, so nothing can be early.
    assert!(min >= ms(delay), "datagram arrived early: {min:.3} ms");
    assert!(
        med <= ms(delay) + 1.0,
        "median one-way {med:.3} ms is > delay + 1 ms"
    );
}

fn lossy_transfer(congestion_control: Option<&str>, total: usize) {
    let _serial = serial();
    let mut builder = Link::builder().delay(Duration::from_millis(5)).loss(0.05);
    if let Some(cc) = congestion_control {
        builder = builder.congestion_control(cc);
    }
    let Some(link) = build(builder) else {
        return;
    };
    println!("{link:?}");
    let cc = support::netem::ns_exec(
        link.ns_a_name(),
        &["cat", "/proc/sys/net/ipv4/tcp_congestion_control"],
    )
    .unwrap();
    let cc = cc.trim();
    if let Some(want) = congestion_control {
        assert_eq!(cc, want, "congestion control in ns a");
    }
    let (elapsed, ss) = transfer_a_to_b(&link, total);
    let stats = link.stats();
    println!(
        "[{cc}] {} KiB over 5 ms/5% loss took {:.2} s ({:.0} KB/s); {stats:?}",
        total / 1024,
        elapsed.as_secs_f64(),
        total as f64 / 1e3 / elapsed.as_secs_f64()
    );
    println!("ss -tin (sender, ns a):\n{}", ss.trim_end());
    let retrans = parse_ss_retrans_total(&ss).expect("TCP_INFO in ss output");
    let observed_loss = stats.a_to_b.dropped as f64 / stats.a_to_b.received as f64;
    println!(
        "[{cc}] dropped a->b {} / {} ({:.1}%), b->a {} / {}; kernel retrans total {retrans}",
        stats.a_to_b.dropped,
        stats.a_to_b.received,
        observed_loss * 100.0,
        stats.b_to_a.dropped,
        stats.b_to_a.received
    );
    assert!(
        stats.a_to_b.dropped > 0,
        "no data packet was dropped: {stats:?}"
    );
    assert!(retrans > 0, "sender shows no retransmissions:\n{ss}");
    // The loss rate itself, against the configured probability (binomial;
    // 1500..3000 packets: 2.5%..8% is beyond ±4.4 sigma).
    assert!(
        (0.025..0.08).contains(&observed_loss),
        "loss {observed_loss}"
    );
    // Every dropped data packet must have been retransmitted at least once.
    assert!(
        retrans >= stats.a_to_b.dropped / 2,
        "retrans {retrans} vs {stats:?}"
    );
}

#[test]
fn loss_is_recovered_by_tcp_and_seen_as_retransmits() {
    lossy_transfer(None, 4 * 1024 * 1024);
}

#[test]
fn loss_is_recovered_by_reno_too() {
    // Reno backs off on every loss, unlike BBR (a common host default). Reno
    // is used rather than CUBIC because a netns may only default to an
    // algorithm in the host's tcp_allowed_congestion_control, which always
    // includes reno.
    // Reno at 5% loss and 10 ms RTT manages ~0.5 MB/s; 2 MiB keeps it short.
    lossy_transfer(Some("reno"), 2 * 1024 * 1024);
}

#[test]
fn rate_limit_paces_the_transfer() {
    let _serial = serial();
    let rate = 200_000u64;
    let Some(link) = build(
        Link::builder()
            .delay(Duration::from_millis(1))
            .rate(Some(rate)),
    ) else {
        return;
    };
    let total = 400_000usize;
    let (elapsed, _ss) = transfer_a_to_b(&link, total);
    let secs = elapsed.as_secs_f64();
    let stats = link.stats();
    println!(
        "{total} B at {rate} B/s took {secs:.2} s (ideal {:.2} s incl. headers: {} wire bytes); {stats:?}",
        stats.a_to_b.forwarded_bytes as f64 / rate as f64,
        stats.a_to_b.forwarded_bytes,
    );
    assert!(secs >= 1.6, "rate limit not applied: {secs:.2} s");
    assert!(
        secs <= 4.0,
        "far slower than the configured rate: {secs:.2} s"
    );
    assert_eq!(stats.a_to_b.overflow, 0);
}

#[test]
fn namespaces_are_removed_on_drop_and_on_panic() {
    let _serial = serial();
    let Some(link) = build(Link::builder()) else {
        return;
    };
    let (a, b) = (link.ns_a_name().to_owned(), link.ns_b_name().to_owned());
    let listed = list_netns().unwrap();
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");
    let addrs = support::netem::ns_exec(&a, &["ip", "-4", "addr", "show", "dev", "cnv0"]).unwrap();
    assert!(addrs.contains(&link.server_addr().to_string()), "{addrs}");

    let t = Instant::now();
    drop(link);
    let teardown = t.elapsed();
    println!("teardown took {:.1} ms", ms(teardown));
    assert!(
        teardown < Duration::from_secs(2),
        "slow teardown: {teardown:?}"
    );
    let listed = list_netns().unwrap();
    assert!(
        !listed.contains(&a) && !listed.contains(&b),
        "still there: {listed:?}"
    );

    // Drop also runs during a panic unwind.
    let names = std::sync::Mutex::new(Vec::new());
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let link = Link::builder().build().expect("second link");
        names
            .lock()
            .unwrap()
            .extend([link.ns_a_name().to_owned(), link.ns_b_name().to_owned()]);
        panic!("intentional panic: checking that Link cleans up on unwind");
    }));
    assert!(res.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    let listed = list_netns().unwrap();
    assert!(
        names.iter().all(|n| !listed.contains(n)),
        "{names:?} still in {listed:?}"
    );
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_pids() {
    let _serial = serial();
    if let Err(e) = Link::require() {
        return skip_or_fail(e);
    }
    // A pid that certainly existed and is now gone: a child we reaped.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = child.id();
    child.wait().unwrap();
    let stale = format!("cnv-{dead_pid}-0-a");
    let mine = format!("cnv-{}-999999-a", std::process::id());
    for n in [&stale, &mine] {
        std::process::Command::new("ip")
            .args(["netns", "add", n])
            .status()
            .unwrap();
    }
    let removed = cleanup_stale().unwrap();
    let listed = list_netns().unwrap();
    // Remove ours by hand (it belongs to a live pid, so it must have survived).
    let mine_survived = listed.contains(&mine);
    std::process::Command::new("ip")
        .args(["netns", "del", &mine])
        .status()
        .unwrap();
    // `removed` may be 0 when tests run in parallel: every `build()` also
    // calls cleanup_stale() and may have got there first.
    println!("cleanup_stale() removed {removed} namespace(s)");
    assert!(!listed.contains(&stale), "{stale} not removed: {listed:?}");
    assert!(mine_survived, "namespace of a live pid was removed");
}

#[test]
fn tokio_sockets_keep_their_namespace() {
    let _serial = serial();
    let Some(link) = build(Link::builder().delay(Duration::from_millis(20))) else {
        return;
    };
    // A socket belongs to the namespace it was *created* in; after that it
    // can be registered with a runtime and driven from any thread.
    let std_listener = link.bind_a(0);
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let client_socket = link
        .in_ns_b(tokio::net::TcpSocket::new_v4)
        .expect("socket in ns b");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (connect_ms, rtt_ms) = rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut b = [0u8; 1];
            while s.read(&mut b).await.unwrap() == 1 {
                s.write_all(&b).await.unwrap();
            }
        });
        let t = Instant::now();
        let mut c = tokio::time::timeout(IO_TIMEOUT, client_socket.connect(addr))
            .await
            .expect("connect timeout")
            .expect("connect");
        let connect_ms = ms(t.elapsed());
        c.set_nodelay(true).unwrap();
        let mut rtts = Vec::new();
        for i in 0..5u8 {
            let t = Instant::now();
            c.write_all(&[i]).await.unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0], i);
            rtts.push(ms(t.elapsed()));
        }
        drop(c);
        server.await.unwrap();
        (connect_ms, median(rtts))
    });
    println!("tokio: connect {connect_ms:.1} ms, rtt {rtt_ms:.1} ms vs injected 40 ms");
    assert_within("tokio connect (ms)", connect_ms, 40.0, 0.10);
    assert_within("tokio median RTT (ms)", rtt_ms, 40.0, 0.10);
}
