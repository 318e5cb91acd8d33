//! Following every connection of a server from accept to close (layer 4).
//!
//! - [`TcpInfoListener`] wraps a `tokio::net::TcpListener`: snapshot on accept, accept
//!   errors retried with back-off, `axum::serve::Listener`.
//! - [`TrackedStream`] is the accepted stream; its `Drop` takes the close snapshot while
//!   the socket is still open.
//! - [`Connection`] is the cheap handle of one connection (id, addresses, snapshots,
//!   span, request count) that requests carry in their extensions.
//! - One sampler task per listener takes periodic snapshots of every open connection,
//!   spread over the tick interval, never reading a closed or reused descriptor.
//! - [`ConnectionObserver`] hooks accept, tick and close; the built-in `tracing` output
//!   (root span `tcp.connection`, events `tcp.tick` and `tcp.close`) is described in the
//!   `span` module's source, including the field naming convention.
//!
//! # When snapshots are taken
//! | when | by | reported as |
//! |---|---|---|
//! | accept | `accept` | span fields, [`ConnectionObserver::on_accept`] |
//! | every `tick` (default 10 s) | the sampler task | `tcp.tick` event, [`ConnectionObserver::on_tick`] |
//! | on demand | [`Connection::snapshot`] (the HTTP layer, per request) | stored as [`Connection::latest`] |
//! | close | `TrackedStream`'s `Drop` | span fields, `tcp.close` event, [`ConnectionObserver::on_close`] |

mod backoff;
mod builder;
mod connection;
mod listener;
mod observer;
mod registry;
mod sampler;
mod service;
pub(crate) mod span;
mod stream;

pub use builder::TcpInfoListenerBuilder;
pub use connection::Connection;
pub(crate) use connection::FlushWork;
pub use listener::TcpInfoListener;
pub use observer::{ConnectionObserver, ConnectionSummary};
pub use registry::Connections;
pub use service::WithConnection;
pub use stream::TrackedStream;
