//! `TcpInfoLayer`: per-request TCP attribution for tower/axum/hyper services.

mod request;

pub use request::{BodyOutcome, RequestObserver, RequestSummary, TcpDelta};
