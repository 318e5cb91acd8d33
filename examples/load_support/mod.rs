//! What the load-generating examples (`soak_client`, `latency_client`) share. Not an
//! example itself: each includes it with `mod load_support;`.

use std::net::SocketAddr;
use std::sync::Mutex;

/// Refuses a target outside loopback unless the environment variable `allow` is set:
/// these clients generate load and must not be pointed at someone else's host by mistake.
pub(crate) fn loopback_only(addr: SocketAddr, allow: &str) -> Result<(), String> {
    if addr.ip().is_loopback() || std::env::var_os(allow).is_some() {
        return Ok(());
    }
    Err(format!(
        "{addr} is not a loopback address (set {allow}=1 for a lab network)"
    ))
}

/// The first few error messages, for the report.
#[derive(Debug, Default)]
pub(crate) struct FirstErrors(Mutex<Vec<String>>);

impl FirstErrors {
    /// Keeps `e` if fewer than five are kept.
    pub(crate) fn push(&self, e: impl std::fmt::Display) {
        let mut v = self.0.lock().unwrap();
        if v.len() < 5 {
            v.push(e.to_string());
        }
    }

    /// The kept messages.
    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}
