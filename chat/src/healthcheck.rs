//! `chat healthcheck`: a WebSocket handshake without a ticket on `/ws` must be refused with 401,
//! proof that the server is up and checking tickets. Redis `down` is degraded and still healthy:
//! the replica serves its own members, and restarts cannot fix an outage (chat/README.md).

use std::process::ExitCode;

use chat::config::DEFAULT_ADDR;
use chat::handshake::REDIS_HEADER;
use contract::healthcheck::{Head, Probe, Verdict};

const PROBE: Probe = Probe {
    addr_var: "CHAT_ADDR",
    default_addr: DEFAULT_ADDR,
    request: "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    judge,
};

fn judge(head: &Head) -> Verdict {
    match (head.status, head.header(REDIS_HEADER)) {
        (401, Some("down")) => Verdict::Degraded(
            "Redis unreachable, this replica's rooms are its own until it is back".into(),
        ),
        (401, _) => Verdict::Healthy,
        (status, _) => Verdict::Unhealthy(format!("a handshake without a ticket got {status}")),
    }
}

pub fn run() -> ExitCode {
    PROBE.run()
}
