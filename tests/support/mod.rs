//! Shared helpers for integration tests (`mod support;`).
#![allow(dead_code)]
#![allow(unreachable_pub)]

pub mod netem;
