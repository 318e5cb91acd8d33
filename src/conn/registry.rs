//! The live connections of one listener.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;

use super::Connection;

/// Open connections by id (ids grow with accept order, so the sampler can walk the map
/// with a cursor while accepts and closes go on).
///
/// Owned (`Arc`) by the listener and by every open `TrackedStream`; the sampler and the
/// public [`Connections`] view hold a `Weak`. Hence it is dropped, and the sampler stops,
/// once the listener and all its streams are gone.
pub(crate) struct Registry {
    live: Mutex<BTreeMap<u64, Connection>>,
    next_id: AtomicU64,
    /// Woken when the last open connection closes.
    emptied: Notify,
    sampler_started: AtomicBool,
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        Arc::new(Registry {
            live: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            emptied: Notify::new(),
            sampler_started: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Connection>> {
        // No code panics while holding this lock; ignore poisoning.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of the next accepted connection.
    pub(crate) fn allocate_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Ids below this have been handed out.
    pub(crate) fn id_horizon(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// `true` the first time only: the caller starts the sampler.
    pub(crate) fn claim_sampler(&self) -> bool {
        !self.sampler_started.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn insert(&self, conn: Connection) {
        self.lock().insert(conn.id(), conn);
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut live = self.lock();
        let removed = live.remove(&id);
        let empty = live.is_empty();
        drop(live);
        // The removed handle may be the last one; drop it outside the lock.
        drop(removed);
        if empty {
            self.emptied.notify_waiters();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Appends to `out` up to `max` open connections with `from <= id < below`, in id
    /// order; returns the cursor to continue from. The lock is held only to clone the
    /// handles, never during a socket read.
    pub(crate) fn batch(
        &self,
        from: u64,
        below: u64,
        max: usize,
        out: &mut Vec<Connection>,
    ) -> u64 {
        if from >= below {
            return below;
        }
        let live = self.lock();
        let mut next = below;
        for (&id, conn) in live.range(from..below) {
            if out.len() >= max {
                next = id;
                break;
            }
            out.push(conn.clone());
        }
        next
    }

    fn all(&self) -> Vec<Connection> {
        self.lock().values().cloned().collect()
    }
}

/// A view of the open connections of a [`TcpInfoListener`](crate::TcpInfoListener),
/// from [`TcpInfoListener::connections`](crate::TcpInfoListener::connections).
///
/// It does not keep anything alive: once the listener and all its streams are dropped it
/// reports no connections.
#[derive(Clone)]
pub struct Connections {
    registry: Weak<Registry>,
}

impl Connections {
    pub(crate) fn new(registry: &Arc<Registry>) -> Self {
        Connections {
            registry: Arc::downgrade(registry),
        }
    }

    /// How many accepted connections are still open.
    pub fn len(&self) -> usize {
        self.registry.upgrade().map_or(0, |r| r.len())
    }

    /// Whether no accepted connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open connections, in accept order.
    pub fn list(&self) -> Vec<Connection> {
        self.registry.upgrade().map_or_else(Vec::new, |r| r.all())
    }

    /// Resolves once no accepted connection is open, i.e. every close snapshot has been
    /// taken and reported. Immediately if none is open now.
    ///
    /// Useful after `axum::serve(..).with_graceful_shutdown(..)` on a multi-threaded
    /// runtime: axum's serve future can complete a moment before the last connection
    /// task has dropped its stream (hyper-util's `GracefulShutdown::shutdown` does not
    /// have this gap, and neither does a current-thread runtime).
    pub async fn all_closed(&self) {
        loop {
            let Some(registry) = self.registry.upgrade() else {
                return;
            };
            let emptied = registry.emptied.notified();
            let mut emptied = std::pin::pin!(emptied);
            emptied.as_mut().enable();
            if registry.len() == 0 {
                return;
            }
            // Holding `registry` while waiting is fine: the last stream's close removes
            // its entry, which wakes us.
            emptied.await;
        }
    }
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.len())
            .finish()
    }
}
