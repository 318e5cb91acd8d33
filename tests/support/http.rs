//! A minimal blocking HTTP/1.0 client on std `TcpStream` (no extra crates), for tests
//! that talk to external servers (Prometheus's API, the quickstart example) and for
//! streams created inside a network namespace.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response read to EOF.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Status line and headers, as received.
    pub head: String,
    /// The body (HTTP/1.0: everything after the head).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` to `addr` over a new connection, HTTP/1.0 (the server closes after the
/// response), every read and write bounded by `timeout`.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<Response> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    get_on(stream, &addr.to_string(), path, timeout)
}

/// `GET path` on an already connected stream (for example one made in a namespace).
pub fn get_on(
    mut stream: TcpStream,
    host: &str,
    path: &str,
    timeout: Duration,
) -> io::Result<Response> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> io::Result<Response> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    Ok(Response {
        status,
        head,
        body: raw[end + 4..].to_vec(),
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for query values).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
