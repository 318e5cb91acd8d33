//! Configuration of a `TcpInfoListener`.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tracing::Level;

use super::TcpInfoListener;
use super::observer::ConnectionObserver;
use crate::tcpinfo::SnapshotOptions;

/// The tick interval when none is set.
pub(crate) const DEFAULT_TICK: Duration = Duration::from_secs(10);

/// What every connection of one listener shares.
pub(crate) struct Config {
    pub(crate) tick: Option<Duration>,
    pub(crate) tick_level: Level,
    pub(crate) options: SnapshotOptions,
    pub(crate) observers: Vec<Arc<dyn ConnectionObserver>>,
    pub(crate) spans: bool,
    pub(crate) retain: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick: Some(DEFAULT_TICK),
            tick_level: Level::DEBUG,
            options: SnapshotOptions::NONE,
            observers: crate::telemetry::default_connection_observers(),
            spans: true,
            retain: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("tick", &self.tick)
            .field("tick_level", &self.tick_level)
            .field("snapshot_options", &self.options)
            .field("observers", &self.observers.len())
            .field("connection_spans", &self.spans)
            .field("retain_snapshots", &self.retain)
            .finish()
    }
}

/// Builds a [`TcpInfoListener`]: `TcpInfoListener::builder().tick(…).bind(addr).await`.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::time::Duration;
/// let listener = conniver::TcpInfoListener::builder()
///     .tick(Some(Duration::from_secs(30)))
///     .tick_level(tracing::Level::TRACE)
///     .bind("0.0.0.0:3000")
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Debug, Default)]
pub struct TcpInfoListenerBuilder {
    config: Config,
}

impl TcpInfoListenerBuilder {
    /// A builder with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// How often every open connection is sampled (`tcp.tick` events,
    /// [`ConnectionObserver::on_tick`]). One task per listener does all the sampling,
    /// spread evenly over the interval. `None` (or a zero duration) turns ticks off.
    ///
    /// Defaults to `Some(10 s)`.
    pub fn tick(mut self, every: Option<Duration>) -> Self {
        self.config.tick = every.filter(|d| !d.is_zero());
        self
    }

    /// The level of the `tcp.tick` and `tcp.close` events.
    ///
    /// Defaults to [`Level::DEBUG`].
    pub fn tick_level(mut self, level: Level) -> Self {
        self.config.tick_level = level;
        self
    }

    /// Extra reads for every snapshot the listener takes (ticks, close,
    /// [`Connection::snapshot`](crate::Connection::snapshot)). The accept snapshot always
    /// also reads the congestion-control name, once, for
    /// [`Connection::congestion_control`](crate::Connection::congestion_control).
    ///
    /// Defaults to [`SnapshotOptions::NONE`].
    pub fn snapshot_options(mut self, options: SnapshotOptions) -> Self {
        self.config.options = options;
        self
    }

    /// Adds an observer of every connection's accept, ticks and close. May be called
    /// several times; observers are called in the order they were added, after the
    /// built-in ones.
    ///
    /// Defaults to the built-in observers only: `TcpMetrics::global()` (feature `otel`)
    /// and the shared default [`SlowClientPolicy`](crate::SlowClientPolicy) (see
    /// [`telemetry`](crate::telemetry)).
    pub fn observer(mut self, observer: impl ConnectionObserver) -> Self {
        self.config.observers.push(Arc::new(observer));
        self
    }

    /// Removes the built-in observers (metrics, slow-client warnings), and any added so
    /// far; observers added afterwards are kept. Spans are controlled separately with
    /// [`connection_spans`](Self::connection_spans).
    pub fn without_default_observers(mut self) -> Self {
        self.config.observers.clear();
        self
    }

    /// Whether to create the `tcp.connection` root span for each connection and emit the
    /// `tcp.tick`/`tcp.close` events in it. Observers are called either way.
    ///
    /// Defaults to `true`.
    pub fn connection_spans(mut self, on: bool) -> Self {
        self.config.spans = on;
        self
    }

    /// Whether each open connection keeps its accept snapshot and its most recent one, for
    /// [`Connection::accept_info`](crate::Connection::accept_info) and
    /// [`Connection::latest`](crate::Connection::latest). That is one [`Info`] (about
    /// 1 KiB) per open connection; without it a tracked connection costs about 400 bytes
    /// (see `docs/accept-loop.md`). The close snapshot is kept either way, and RTT
    /// statistics, spans and observers are unaffected, and
    /// [`Connection::snapshot`](crate::Connection::snapshot) always reads fresh.
    ///
    /// Defaults to `false`, so that tracking stays under 512 bytes per connection.
    ///
    /// [`Info`]: crate::Info
    pub fn retain_snapshots(mut self, on: bool) -> Self {
        self.config.retain = on;
        self
    }

    /// Binds a new listener to `addr`.
    ///
    /// # Errors
    /// Those of [`TcpListener::bind`].
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<TcpInfoListener> {
        Ok(self.build(TcpListener::bind(addr).await?))
    }

    /// Wraps an existing tokio listener.
    pub fn build(self, listener: TcpListener) -> TcpInfoListener {
        TcpInfoListener::with_config(listener, self.config)
    }

    /// Wraps an existing std listener (switched to non-blocking mode). Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// Those of [`TcpListener::from_std`].
    pub fn build_std(self, listener: std::net::TcpListener) -> io::Result<TcpInfoListener> {
        listener.set_nonblocking(true)?;
        Ok(self.build(TcpListener::from_std(listener)?))
    }
}
