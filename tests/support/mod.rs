//! Shared helpers for integration tests (`mod support;`).
#![allow(dead_code)]
#![allow(unreachable_pub)]

pub mod capture;
pub mod chunks;
#[cfg(target_os = "linux")]
pub mod e2e;
pub mod http;
#[cfg(target_os = "linux")]
pub mod netem;
pub mod tls;
pub mod wait;
