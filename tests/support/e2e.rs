//! Helpers shared by the end-to-end tests over a [`Link`](super::netem::Link).

use super::netem::{Link, TUN_NAME};

/// Makes every ACK that namespace B sends to the server immediate: `ip route change …
/// quickack 1` on B's route to A, the per-destination switch of Linux's delayed ACKs.
///
/// Why: the server's smoothed RTT is estimated from the client's ACKs, and a client that
/// delays its ACK of a response (40 ms and more, once Linux sees the connection as
/// interactive) adds that delay to the sample whenever nothing else carries the ACK
/// sooner (a pause between requests). Tests that compare smoothed RTT with the injected
/// delay switch that off; `min_rtt` is exact either way. Applies to connections made
/// after the call.
pub fn client_quickack(link: &Link) {
    let server = link.server_addr().to_string();
    let client = link.client_addr().to_string();
    let out = std::process::Command::new("ip")
        .args(["-n", link.ns_b_name(), "route", "change", &server])
        .args(["dev", TUN_NAME, "proto", "kernel", "scope", "link"])
        .args(["src", &client, "quickack", "1"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ip route");
    assert!(
        out.status.success(),
        "ip route change … quickack 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
