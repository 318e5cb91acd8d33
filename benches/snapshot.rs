//! `snapshot()` against a raw `libc::getsockopt(TCP_INFO)` of the same socket, in the
//! same run (target: ≤ 1.10× the raw call). The ratio is printed at the end.
#![allow(unsafe_code, missing_docs)] // the raw baseline is a bare syscall

use std::hint::black_box;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

#[cfg(target_os = "linux")]
fn raw_getsockopt(fd: std::os::fd::RawFd, buf: &mut [u8; 280]) -> u32 {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `fd` is an open socket for the whole benchmark; `buf` is writable for `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    len
}

#[cfg(target_os = "linux")]
fn bench(c: &mut Criterion) {
    use std::os::fd::AsRawFd;
    let (server, _client) = pair();
    let fd = server.as_raw_fd();
    let mut group = c.benchmark_group("tcp_info");
    group.bench_function("raw_getsockopt", |b| {
        let mut buf = [0u8; 280];
        b.iter(|| black_box(raw_getsockopt(black_box(fd), &mut buf)))
    });
    group.bench_function("conniver_snapshot", |b| {
        b.iter(|| black_box(conniver::snapshot(black_box(&server)).unwrap()))
    });
    // The user-space part alone: normalize a real 6.18 record into an `Info` (what
    // `snapshot()` does after the syscall, where the kernel writes the record in place).
    let mut real = [0u8; 280];
    let len = raw_getsockopt(fd, &mut real) as usize;
    let release = conniver::tcpinfo::linux::KernelRelease::new(6, 18, 0);
    let record = conniver::tcpinfo::linux::LinuxTcpInfoBytes::new(&real[..len], Some(release));
    let record = record.unwrap();
    group.bench_function("to_info_only", |b| {
        b.iter(|| black_box(black_box(&record).to_info()))
    });
    group.finish();

    // Same-run ratio over interleaved rounds (criterion's own estimates are in its report).
    let measure = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..20_000 {
            f();
        }
        start.elapsed()
    };
    let (mut raw, mut ours) = (Duration::ZERO, Duration::ZERO);
    let mut buf = [0u8; 280];
    for _ in 0..10 {
        raw += measure(&mut || {
            black_box(raw_getsockopt(fd, &mut buf));
        });
        ours += measure(&mut || {
            // By reference: the result stays where `snapshot()` wrote it (as a caller
            // reading its fields would use it), instead of timing one more ~870-byte
            // copy into `black_box`'s argument, which the raw call's `u32` does not pay.
            let info = conniver::snapshot(&server);
            black_box(&info);
        });
    }
    println!(
        "snapshot/raw ratio: {:.3} (raw {:.0} ns, snapshot {:.0} ns per call)",
        ours.as_secs_f64() / raw.as_secs_f64(),
        raw.as_nanos() as f64 / 200_000.0,
        ours.as_nanos() as f64 / 200_000.0
    );
}

#[cfg(not(target_os = "linux"))]
fn bench(_c: &mut Criterion) {}

criterion_group!(benches, bench);
criterion_main!(benches);
