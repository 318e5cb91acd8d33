//! `ss -tin` (iproute2) as an outside oracle: the kernel's own tool reading the same
//! `tcp_info` over netlink.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::process::Command;

/// One socket as `ss -tin` prints it: the header columns and the `key:value` pairs.
#[derive(Debug, Default)]
pub struct SsSocket {
    pub state: String,
    pub recv_q: u64,
    pub send_q: u64,
    pub fields: HashMap<String, String>,
    pub flags: Vec<String>,
}

impl SsSocket {
    /// A numeric field, e.g. `cwnd`, `bytes_acked`.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.fields.get(key)?.parse().ok()
    }
    /// The two halves of `rtt:a/b` or `retrans:a/b`.
    pub fn pair(&self, key: &str) -> Option<(f64, f64)> {
        let (a, b) = self.fields.get(key)?.split_once('/')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
}

/// Whether the `ss` binary is present. Under `CI=true` its absence is a failure.
pub fn available() -> bool {
    let ok = Command::new("ss")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("`ss` (iproute2) is required under CI=true");
    }
    if !ok {
        eprintln!("skipped: `ss` (iproute2) not installed");
    }
    ok
}

/// Runs `ss -tinH [-l] <filter>` (optionally inside `netns`) and parses each socket.
pub fn query(listening: bool, filter: &str, netns: Option<&str>) -> Vec<SsSocket> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ss"]);
            c
        }
        None => Command::new("ss"),
    };
    cmd.arg(if listening { "-tlinH" } else { "-tinH" });
    cmd.arg(filter);
    let out = cmd.output().expect("run ss");
    assert!(
        out.status.success(),
        "ss failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `ss -tinH` output: a header line per socket (state, queues, addresses) and
/// an indented line of details.
pub fn parse(text: &str) -> Vec<SsSocket> {
    let mut sockets: Vec<SsSocket> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            sockets.push(SsSocket {
                state: cols.first().unwrap_or(&"").to_string(),
                recv_q: cols.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
                send_q: cols.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                ..Default::default()
            });
            continue;
        }
        let Some(sock) = sockets.last_mut() else {
            continue;
        };
        let mut tokens = line.split_whitespace().peekable();
        while let Some(tok) = tokens.next() {
            match tok.split_once(':') {
                Some((k, v)) if !v.is_empty() => {
                    sock.fields.insert(k.to_string(), v.to_string());
                }
                // "send 1.2Gbps", "pacing_rate 2.4Gbps", "delivery_rate 3Gbps"
                _ if matches!(tok, "send" | "pacing_rate" | "delivery_rate") => {
                    if let Some(v) = tokens.next() {
                        sock.fields.insert(tok.to_string(), v.to_string());
                    }
                }
                _ => sock.flags.push(tok.to_string()),
            }
        }
    }
    sockets
}

/// Parses an `ss` rate such as `1.2Gbps` into bits per second.
pub fn rate_bps(v: &str) -> Option<f64> {
    let v = v.strip_suffix("bps")?;
    let (num, mult) = match v.chars().last()? {
        'K' => (&v[..v.len() - 1], 1e3),
        'M' => (&v[..v.len() - 1], 1e6),
        'G' => (&v[..v.len() - 1], 1e9),
        'T' => (&v[..v.len() - 1], 1e12),
        _ => (v, 1.0),
    };
    Some(num.parse::<f64>().ok()? * mult)
}
