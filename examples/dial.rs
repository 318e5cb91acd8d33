//! Dial a TCP address and print the connection's kernel state as the seed library's JSON.
//!
//! ```text
//! cargo run --example dial -- example.org:80   # any reachable HOST:PORT
//! cargo run --example dial                     # offline: dials a listener it starts on loopback
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use conniver::{SnapshotOptions, snapshot_with};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::args().nth(1);
    let (stream, _server) = match target {
        Some(addr) => (TcpStream::connect(addr.as_str())?, None),
        None => {
            // Offline mode: a loopback echo of 64 KiB so the counters have something in them.
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let server = std::thread::spawn(move || -> std::io::Result<()> {
                let (mut conn, _) = listener.accept()?;
                let mut buf = vec![0u8; 64 * 1024];
                conn.read_exact(&mut buf)?;
                conn.write_all(&buf)?;
                // Stay open until the client is done, so it snapshots an ESTABLISHED socket.
                conn.read_to_end(&mut Vec::new())?;
                Ok(())
            });
            let mut stream = TcpStream::connect(addr)?;
            let payload = vec![42u8; 64 * 1024];
            stream.write_all(&payload)?;
            let mut back = vec![0u8; payload.len()];
            stream.read_exact(&mut back)?;
            (stream, Some(server))
        }
    };
    // Give the ACKs a moment so rtt and cwnd reflect the exchange.
    std::thread::sleep(Duration::from_millis(50));

    let info = snapshot_with(&stream, SnapshotOptions::ALL)?;
    let json = serde_json::to_string_pretty(&info)?;
    std::io::stdout().write_all(json.as_bytes())?;
    std::io::stdout().write_all(b"\n")?;
    Ok(())
}
