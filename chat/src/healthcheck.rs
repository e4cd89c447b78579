//! `chat healthcheck`: for a distroless image without curl. A WebSocket handshake without a
//! ticket on 127.0.0.1:<port of CHAT_ADDR>/ws must be refused with HTTP 401 — proof that the
//! server is up and checking tickets. Exit 0 on 401, 1 otherwise.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn probe() -> ExitCode {
    let port = std::env::var("CHAT_ADDR")
        .ok()
        .and_then(|addr| addr.parse::<SocketAddr>().ok())
        .map_or(9000, |addr| addr.port());
    match status_line(port) {
        Ok(line) if line.split_whitespace().nth(1) == Some("401") => ExitCode::SUCCESS,
        Ok(line) => {
            eprintln!("healthcheck: unexpected answer {line:?}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("healthcheck: {error}");
            ExitCode::FAILURE
        }
    }
}

fn status_line(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}
