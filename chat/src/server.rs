//! The accept loop (the mini-redis shape): a cap on open connections, back-off on accept errors,
//! a handshake deadline, and a graceful shutdown that closes every client with 1001.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Limits};
use crate::handshake::{Admitted, Check, Gate};
use crate::metrics::{Handshake, Metrics};
use crate::notice::NoticeDesk;
use crate::rooms::RoomRegistry;
use contract::{NoticeVerifier, TicketVerifier};

pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// Allocated whole for the connection's life: tungstenite's 128 KiB default would cost that much
/// per client, while clients send small frames (a longer one takes several reads).
const READ_BUFFER_BYTES: usize = 1024;
const REDIS_START_WAIT: Duration = Duration::from_secs(3);
/// Clients at the cap being answered 503 at the same time; more are closed without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 1024;
const FULL_GRACE: Duration = Duration::from_millis(200);
const RETRY_WHEN_FULL: u64 = 5;
/// Accept errors are mostly running out of file descriptors, which a pause lets recover.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Built separately from running so tests can keep a handle on its rooms.
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shared: Arc<Shared>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use REDIS_URL: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("cannot serve metrics on CHAT_METRICS_ADDR {addr}: {reason}")]
    Metrics { addr: SocketAddr, reason: String },
}

struct Shared {
    gate: Gate,
    notices: NoticeDesk,
    registry: RoomRegistry,
    limits: Limits,
    websocket: WebSocketConfig,
    metrics: Metrics,
}

impl Server {
    /// With `REDIS_URL` this starts tasks, so it must be called within a Tokio runtime.
    pub fn new(listener: TcpListener, config: Config) -> Result<Self, StartError> {
        let metrics_error = |reason: String| StartError::Metrics {
            addr: config
                .metrics_addr
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            reason,
        };
        let metrics = Metrics::new(config.metrics_addr.is_some())
            .map_err(|error| metrics_error(error.to_string()))?;
        let metrics_listener = config
            .metrics_addr
            .map(crate::metrics::bind)
            .transpose()
            .map_err(|error| metrics_error(error.to_string()))?;
        let limits = config.limits;
        let registry = match &config.redis_url {
            None => RoomRegistry::counted(&limits, metrics.clone()),
            Some(url) => RoomRegistry::shared_through(&limits, url, metrics.clone())?,
        };
        let shared = Shared {
            gate: Gate::new(
                TicketVerifier::new(&config.jwt_secret),
                config.allowed_origins,
                limits.max_sockets_per_person,
            ),
            notices: NoticeDesk::new(NoticeVerifier::new(&config.jwt_secret), registry.clone()),
            registry,
            websocket: websocket_config(&limits),
            limits,
            metrics,
        };
        Ok(Self {
            listener,
            metrics_listener,
            shared: Arc::new(shared),
        })
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn metrics(&self) -> Metrics {
        self.shared.metrics.clone()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn registry(&self) -> RoomRegistry {
        self.shared.registry.clone()
    }

    /// Accepts clients until `shutdown` completes, then closes every connection with 1001.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let stopping = CancellationToken::new();
        let tracker = TaskTracker::new();
        if let Some(listener) = self.metrics_listener.take() {
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics at /metrics");
            let registry = self.shared.registry.clone();
            tokio::spawn(crate::metrics::serve(
                listener,
                self.shared.metrics.clone(),
                move |metrics| metrics.observe_registry(registry.room_count(), registry.redis_up()),
                stopping.clone(),
            ));
        }
        let slots = Arc::new(Semaphore::new(self.shared.limits.max_connections));
        tracing::info!(addr = ?self.local_addr().ok(), "chat listening");
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(10);
        let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                    continue;
                }
            };
            let shared = self.shared.clone();
            let stopping = stopping.clone();
            if let Ok(permit) = slots.clone().try_acquire_owned() {
                tracker.spawn(async move {
                    handle(tcp, peer, &shared, stopping).await;
                    drop(permit);
                });
                continue;
            }
            // A 503 within FULL_GRACE lets nginx pass the handshake to another replica with room,
            // instead of waiting in the backlog. The grace covers a connection just ending.
            let Ok(refusing) = refusals.clone().try_acquire_owned() else {
                shared.metrics.handshake(Handshake::Full);
                continue;
            };
            let slots = slots.clone();
            tracker.spawn(async move {
                match tokio::time::timeout(FULL_GRACE, slots.acquire_owned()).await {
                    Ok(Ok(permit)) => {
                        drop(refusing);
                        handle(tcp, peer, &shared, stopping).await;
                        drop(permit);
                    }
                    _ => {
                        shared.metrics.handshake(Handshake::Full);
                        tracing::debug!(%peer, "at the connection cap: answered 503");
                        crate::upgrade::refuse_full(tcp, RETRY_WHEN_FULL).await;
                    }
                }
            });
        }
        tracing::info!(
            open = tracker.len(),
            "shutting down: closing every connection"
        );
        drop(self.listener);
        self.shared.registry.close();
        // With Redis: the other replicas hear at once that this one's people left.
        self.shared.registry.leave_cluster().await;
        stopping.cancel();
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = tracker.len(),
                "shutdown deadline passed with connections open"
            );
        }
        tracing::info!("chat stopped");
    }
}

/// With Redis, waits a moment for it first, so rooms are shared from the first connection on.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let server = Server::new(listener, config)?;
    let registry = server.registry();
    if registry.redis_up().is_some()
        && tokio::time::timeout(REDIS_START_WAIT, registry.wait_for_redis())
            .await
            .is_err()
    {
        tracing::warn!("Redis did not answer at start: serving degraded until it does");
    }
    server.run(shutdown).await;
    Ok(())
}

async fn handle(tcp: TcpStream, peer: SocketAddr, shared: &Shared, stopping: CancellationToken) {
    // Chat events are small and latency matters more than packet count.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let mut admitted = None;
    let check = Check {
        gate: &shared.gate,
        notices: &shared.notices,
        peer,
        admitted: &mut admitted,
        redis_up: shared.registry.redis_up(),
        metrics: &shared.metrics,
    };
    // Boxed: the handshake's state (request buffers, the answer's) lives on the heap while it
    // runs and is freed after, instead of sizing every connection's task for its whole life.
    let handshake = Box::pin(crate::upgrade::accept(tcp, check, shared.websocket));
    // The handshake has no timeout of its own: without one a half-sent request holds a slot.
    let socket = tokio::select! {
        () = stopping.cancelled() => return,
        result = tokio::time::timeout(shared.limits.handshake_timeout, handshake) => match result {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "handshake failed");
                return;
            }
            Err(_elapsed) => {
                tracing::info!(%peer, "handshake timed out");
                shared.metrics.handshake(Handshake::Timeout);
                return;
            }
        },
    };
    let Some(Admitted { claims, slot }) = admitted else {
        return;
    };
    crate::connection::serve(
        socket,
        claims,
        peer,
        shared.registry.clone(),
        &shared.limits,
        &shared.metrics,
        stopping,
    )
    .await;
    drop(slot);
}

fn websocket_config(limits: &Limits) -> WebSocketConfig {
    // tungstenite only reads (socket.rs): what it would write itself goes nowhere at once, so it
    // buffers nothing.
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_frame_size(Some(limits.max_frame_bytes))
        .max_message_size(Some(limits.max_frame_bytes))
}
