//! The `chat` binary: `chat` serves; `chat healthcheck` probes a running server.

use std::net::SocketAddr;
use std::process::ExitCode;

use chat::Config;
use tokio::net::{TcpListener, TcpSocket};

mod healthcheck;
mod scheduling;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return healthcheck::run();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The Redis client's own warnings repeat ours, which say an outage once.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fred=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match start() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("chat cannot start: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    config.jwt_secret.warn_if_public_example();
    scheduling::batch();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = listen(config.addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on CHAT_ADDR {}: {e}", config.addr))?;
    Ok(chat::run(listener, config, contract::shutdown::signal()).await?)
}

/// Connections the kernel may hold waiting for `accept` (capped by `net.core.somaxconn`). A
/// restart brings a whole room back within a second; with tokio's default of 1024, the SYNs
/// beyond it are dropped and resent only a second later.
const LISTEN_BACKLOG: u32 = 8192;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
