//! `snapshot()` allocates nothing on the heap: a counting global allocator sees zero
//! allocations across many calls (the first call, which reads `uname` once, excluded).
//! It counts only the test's own thread: libtest's main thread allocates when it blocks
//! waiting for the test, sometimes while the test is counting (4 "allocations" in about
//! one run in two when the binary was run in a loop).
#![cfg(target_os = "linux")]
#![allow(unsafe_code)] // the counting allocator only

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    // Const-initialized, no destructor: reading it never allocates, even in the allocator.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Whether this thread is counting.
fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn set_counting(on: bool) {
    COUNTING.with(|c| c.set(on));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn snapshot_does_not_allocate() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    // Warm-up: caches the kernel release.
    let warm = conniver::snapshot(&server).unwrap();
    assert!(warm.rtt.is_some());

    set_counting(true);
    let mut rtt_sum = 0u128;
    for _ in 0..1000 {
        let info = conniver::snapshot(&server).unwrap();
        rtt_sum += info.rtt.unwrap().as_nanos();
        let info = conniver::snapshot(&client).unwrap();
        rtt_sum += info.rtt.unwrap().as_nanos();
    }
    set_counting(false);
    assert!(rtt_sum > 0);
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "snapshot() allocated"
    );

    // The counter works: an allocation while counting is seen.
    set_counting(true);
    let v = std::hint::black_box(vec![1u8; 64]);
    set_counting(false);
    drop(v);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) >= 1);
}
