//! Accept error storm: with `RLIMIT_NOFILE` lowered so that `accept` fails with `EMFILE`,
//! the listener logs, backs off and keeps going, and serves again once descriptors free
//! up. Lowering the limit affects the whole process, so this file holds one test and
//! runs as its own binary.
#![cfg(target_os = "linux")]
#![allow(unsafe_code)] // getrlimit/setrlimit, each call with a SAFETY comment

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conniver::TcpInfoListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; getrlimit only writes into it.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0);
    lim
}

fn set_nofile_soft(soft: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: nofile().rlim_max,
    };
    // SAFETY: `lim` is a valid rlimit; lowering or restoring the soft limit below the hard
    // limit needs no privilege and touches no memory of ours.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// The soft limit under which exactly `free` descriptor numbers are unused. The limit
/// bounds the *numbers* of new descriptors (the lowest free one is taken); descriptors
/// already open above it stay usable.
fn limit_leaving(free: u64) -> u64 {
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    let mut unused = 0;
    let mut n = 0;
    while unused < free {
        if !open.contains(&n) {
            unused += 1;
        }
        n += 1;
    }
    n
}

/// Counts ERROR events from the accept loop (to see the storm was real and logged).
#[derive(Clone, Default)]
struct ErrorCount(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorCount {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR
            && event.metadata().target().starts_with("conniver")
        {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emfile_storm_is_survived_and_serving_resumes() {
    use tracing_subscriber::layer::SubscriberExt;
    let errors = ErrorCount::default();
    let subscriber = tracing_subscriber::registry().with(errors.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    const CLIENTS: usize = 40;
    const HEADROOM: u64 = 8;
    let original = nofile();

    let listener = TcpInfoListener::builder()
        .tick(Some(Duration::from_millis(10)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open = listener.connections();

    // Clients first: their handshakes complete in the kernel's accept queue, and their
    // own descriptors exist before the limit drops.
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }

    // Leave room for only a few accepted sockets.
    set_nofile_soft(limit_leaving(HEADROOM));

    // The server holds every accepted stream until told to let go.
    let held = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let server = {
        let held = Arc::clone(&held);
        let accepted = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                // Never an error: EMFILE is retried inside `accept`.
                let (mut stream, _) = listener.accept().await.expect("accept must not fail");
                let n = accepted.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= CLIENTS {
                    held.lock().unwrap().push(stream);
                } else {
                    // After the storm: serve an echo to prove the server is alive.
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4];
                        stream.read_exact(&mut buf).await.unwrap();
                        stream.write_all(&buf).await.unwrap();
                    });
                }
            }
        })
    };

    // Accepts stop at the limit; the loop keeps hitting EMFILE and backing off.
    let stuck_at = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let a = accepted.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        if accepted.load(Ordering::SeqCst) == a {
            break a;
        }
    };
    assert!(
        stuck_at < CLIENTS,
        "the limit must stop accepts ({stuck_at} accepted)"
    );
    assert!(
        !server.is_finished(),
        "the accept loop is alive during the storm"
    );
    let logged = errors.0.load(Ordering::Relaxed);
    assert!(logged >= 1, "EMFILE is logged at ERROR");
    // Rate-limited: about one line a second, not one per failed accept.
    assert!(logged <= 5, "{logged} ERROR lines in well under 5 s");

    // Free descriptors: drop what the server held; pending connections get accepted.
    held.lock().unwrap().clear();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while accepted.load(Ordering::SeqCst) < CLIENTS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "accepts did not resume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Keep freeing: only a few fit under the limit at a time.
        held.lock().unwrap().clear();
    }
    held.lock().unwrap().clear();
    drop(clients);
    set_nofile_soft(original.rlim_cur);

    // And it serves new connections.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    assert!(!server.is_finished());
    drop(c);
    server.abort();
    let _ = server.await;
    open.all_closed().await;
    assert!(open.is_empty());
}
