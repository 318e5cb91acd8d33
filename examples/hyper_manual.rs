//! A hand-written hyper-util server (HTTP/1.1 and HTTP/2 on one port) on a
//! `TcpInfoListener`, TLS optional, graceful shutdown on Ctrl-C.
//!
//! ```text
//! cargo run --example hyper_manual                 # plain HTTP on 127.0.0.1:3000
//! cargo run --example hyper_manual -- --tls        # HTTPS with a generated self-signed cert
//! cargo run --example hyper_manual -- --addr 0.0.0.0:8080
//! RUST_LOG=info cargo run --example hyper_manual   # without the tick events
//! ```
//!
//! Every connection gets a `tcp.connection` span (printed when it closes, with its
//! totals), a `tcp.tick` event every 5 s while open and a `tcp.close` event. Each
//! response shows what the kernel knows about the connection it travels on.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use conniver::conn::WithConnection;
use conniver::{Connection, TcpInfoListener};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Answers with the connection's id, address and current TCP state.
async fn hello(req: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let conn = req
        .extensions()
        .get::<Connection>()
        .expect("WithConnection puts the Connection into every request");
    conn.record_request();
    let mut body = format!(
        "{:?} {} — connection {} from {}, request {} on it\n",
        req.version(),
        req.uri(),
        conn.id(),
        conn.peer_addr(),
        conn.requests(),
    );
    match conn.snapshot() {
        Ok(info) => {
            body += &format!(
                "state {}, rtt {:?}, cwnd {:?} segments, {} bytes received, congestion control {}\n",
                info.state.map_or("?", |s| s.as_str()),
                info.rtt.unwrap_or_default(),
                info.cwnd_segs.unwrap_or_default(),
                info.bytes_received.unwrap_or_default(),
                conn.congestion_control()
                    .map_or_else(|| "?".to_string(), |cc| cc.to_string()),
            )
        }
        Err(e) => body += &format!("no TCP info: {e}\n"),
    }
    Ok(http::Response::new(Full::new(Bytes::from(body))))
}

/// A self-signed certificate for `localhost` and 127.0.0.1, with ALPN for h2 and h1.
fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor, Box<dyn std::error::Error>> {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,conniver=debug".into()),
        )
        // Print each connection span when it closes, with its close fields.
        .with_span_events(FmtSpan::CLOSE)
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let tls = args.iter().any(|a| a == "--tls");
    let addr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1))
        .map_or("127.0.0.1:3000", String::as_str)
        .to_string();

    let listener = TcpInfoListener::builder()
        .tick(Some(Duration::from_secs(5)))
        .bind(&addr)
        .await?;
    let local = listener.local_addr()?;
    let acceptor = if tls { Some(tls_acceptor()?) } else { None };
    let scheme = if tls { "https" } else { "http" };
    let insecure = if tls { "-k " } else { "" };
    println!("listening on {scheme}://{local}");
    println!("try: curl {insecure}{scheme}://{local}/hello");
    println!(
        "     curl {insecure}--http2{} {scheme}://{local}/hello",
        if tls { "" } else { "-prior-knowledge" }
    );
    println!("Ctrl-C to stop (open connections are closed gracefully)");

    let builder = Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = accepted?;
                let service = WithConnection::new(
                    stream.connection().clone(),
                    hyper::service::service_fn(hello),
                );
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let result = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                let conn = builder.serve_connection(TokioIo::new(tls), service);
                                watcher.watch(conn.into_owned()).await
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut ctrl_c => {
                println!();
                tracing::info!("shutting down: no new connections, finishing open ones");
                break;
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; exiting anyway");
        }
    }
    Ok(())
}
