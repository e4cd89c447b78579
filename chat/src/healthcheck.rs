//! `chat healthcheck`: for a distroless image without curl. A WebSocket handshake without a
//! ticket on 127.0.0.1:<port of CHAT_ADDR>/ws must be refused with HTTP 401 — proof that the
//! server is up and checking tickets. Exit 0 on 401, 1 otherwise.
//!
//! With `REDIS_URL` the 401 also says whether the replica shares its rooms through Redis right now
//! (`chat-redis: up` / `down`). Down is reported on stderr as degraded, and the exit stays 0: the
//! replica still serves the members connected to it, and failing every replica's check at once
//! during a Redis outage would only make the orchestrator (or `scripts/stack`, which waits on this
//! check when starting and during rolling restarts) hold back or restart healthy processes.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);
/// The header `chat` sets on that 401 (`handshake::REDIS_HEADER`; the binary does not link the
/// handshake module).
const REDIS_HEADER: &str = "chat-redis";

pub fn probe() -> ExitCode {
    let port = std::env::var("CHAT_ADDR")
        .ok()
        .and_then(|addr| addr.parse::<SocketAddr>().ok())
        .map_or(9000, |addr| addr.port());
    match answer(port) {
        Ok((line, redis)) if line.split_whitespace().nth(1) == Some("401") => {
            if redis.as_deref() == Some("down") {
                eprintln!(
                    "healthcheck: degraded: Redis unreachable, this replica's rooms are its own \
                     until it is back"
                );
            }
            ExitCode::SUCCESS
        }
        Ok((line, _)) => {
            eprintln!("healthcheck: unexpected answer {line:?}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("healthcheck: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The status line, and the value of the Redis header if there is one.
fn answer(port: u16) -> std::io::Result<(String, Option<String>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut redis = None;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && !line.trim().is_empty() {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case(REDIS_HEADER)
        {
            redis = Some(value.trim().to_owned());
        }
        line.clear();
    }
    Ok((status.trim_end().to_owned(), redis))
}
