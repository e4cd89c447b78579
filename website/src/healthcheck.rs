//! `website healthcheck`: `GET /healthz` on the local server must answer 200 (the shared probe,
//! `contract::healthcheck`, on the port of `WEBSITE_ADDR`).

use std::process::ExitCode;

use contract::healthcheck::{Head, Probe, Verdict};

use crate::config::DEFAULT_ADDR;

const PROBE: Probe = Probe {
    addr_var: "WEBSITE_ADDR",
    default_addr: DEFAULT_ADDR,
    request: "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n",
    judge,
};

fn judge(head: &Head) -> Verdict {
    match head.status {
        200 => Verdict::Healthy,
        status => Verdict::Unhealthy(format!("/healthz answered {status}, not 200")),
    }
}

pub fn run() -> ExitCode {
    PROBE.run()
}

/// Whether the server on 127.0.0.1:`port` passes the probe.
pub async fn probe(port: u16) -> std::io::Result<bool> {
    let verdict = tokio::task::spawn_blocking(move || PROBE.check(port))
        .await
        .map_err(std::io::Error::other)?;
    Ok(verdict == Verdict::Healthy)
}
