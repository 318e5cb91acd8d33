//! # conniver
//!
//! The kernel's view of every TCP connection — RTT, retransmits, congestion window,
//! windows, pacing and delivery rates, time limited by a slow reader — for tokio, hyper
//! and axum servers.
//!
//! Without any server, [`snapshot`] reads one socket:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let stream = std::net::TcpStream::connect(listener.local_addr()?)?;
//! match conniver::snapshot(&stream) {
//!     Ok(info) => println!("{}", serde_json::to_string(&info)?),
//!     Err(conniver::Error::Unsupported { os }) => println!("no TCP info on {os}"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(()) }
//! ```

pub mod conn;
pub mod error;
pub mod layer;
pub mod tcpinfo;
pub mod telemetry;

pub use conn::{
    Connection, ConnectionObserver, ConnectionSummary, TcpInfoListener, TcpInfoListenerBuilder,
    TrackedStream,
};
pub use error::{Error, Result};
pub use layer::{BodyOutcome, RequestObserver, RequestSummary, TcpDelta, TcpInfoLayer};
pub use tcpinfo::{Info, SnapshotOptions, TcpState, snapshot, snapshot_with};
pub use telemetry::SlowClientPolicy;
#[cfg(feature = "otel")]
pub use telemetry::TcpMetrics;

// The README's Rust examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
