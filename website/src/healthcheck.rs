//! `website healthcheck`: GET /healthz on the local server and exit 0 (healthy) or 1.
//!
//! The runtime image is distroless (no curl), so the binary probes itself with a plain
//! HTTP/1.0 request over TCP; only `WEBSITE_ADDR` is read, for the port.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(3);

pub async fn run() -> ExitCode {
    let addr = std::env::var("WEBSITE_ADDR").unwrap_or_else(|_| "0.0.0.0:8000".into());
    let port = match addr.parse::<SocketAddr>() {
        Ok(addr) => addr.port(),
        Err(error) => {
            eprintln!("healthcheck: WEBSITE_ADDR {addr:?} is invalid: {error}");
            return ExitCode::FAILURE;
        }
    };
    match tokio::time::timeout(TIMEOUT, probe(port)).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("healthcheck: /healthz did not answer 200");
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("healthcheck: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("healthcheck: no answer within {TIMEOUT:?}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `GET /healthz` on 127.0.0.1:`port` answers 200.
pub async fn probe(port: u16) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut head = [0u8; 32];
    let mut read = 0;
    // "HTTP/1.1 200" is 12 bytes; read until we have them or the server closes.
    while read < 12 {
        let n = stream.read(&mut head[read..]).await?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    Ok(status_line.starts_with("HTTP/1.") && status_line.get(9..12) == Some("200"))
}
