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

/// How long shutdown waits for connections to finish their closing handshakes.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// Read buffer per connection, allocated whole for its life. Clients send small frames (a longer
/// one is read in several reads); tungstenite's 128 KiB default would cost that much per client.
const READ_BUFFER_BYTES: usize = 1024;
/// Outgoing bytes buffered before tungstenite writes to the socket (a flush writes sooner). The
/// buffer keeps its largest size for the connection's life, so it is kept small: a batch of events
/// goes out in a few writes rather than one (chat/README.md, "Against the ceiling").
const WRITE_BUFFER_BYTES: usize = 2048;
/// How long a replica waits for Redis before it starts serving without it.
const REDIS_START_WAIT: Duration = Duration::from_secs(3);
/// Clients at the cap being answered 503 at the same time; more are closed without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 1024;
/// How long a client at the cap waits for a slot to free before it is answered 503.
const FULL_GRACE: Duration = Duration::from_millis(200);
/// `Retry-After` of the 503 at the cap, in seconds.
const RETRY_WHEN_FULL: u64 = 5;
/// Longest pause after an accept error (e.g. out of file descriptors).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A chat server bound to a listener, ready to run. Built separately from running so tests can
/// keep a handle on its rooms.
pub struct Server {
    listener: TcpListener,
    /// `CHAT_METRICS_ADDR`'s listener, when on.
    metrics_listener: Option<TcpListener>,
    shared: Arc<Shared>,
}

/// Why a server could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use REDIS_URL: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("cannot serve metrics on CHAT_METRICS_ADDR {addr}: {reason}")]
    Metrics { addr: SocketAddr, reason: String },
}

/// What every connection task reads.
struct Shared {
    gate: Gate,
    notices: NoticeDesk,
    registry: RoomRegistry,
    limits: Limits,
    websocket: WebSocketConfig,
    metrics: Metrics,
}

impl Server {
    /// A server on `listener`. With `REDIS_URL` (`config.redis_url`) its rooms are shared with the
    /// other replicas through Redis; that starts tasks, so it must be called within a Tokio
    /// runtime. With `CHAT_METRICS_ADDR` (`config.metrics_addr`) it binds that address for
    /// `/metrics`. Fails on a Redis URL the client cannot use or a metrics address it cannot bind.
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

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The server's metric handles (tests read what they counted with [`Metrics::render`]).
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics.clone()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The live room registry (read-only use: e.g. [`RoomRegistry::room_count`]).
    pub fn registry(&self) -> RoomRegistry {
        self.shared.registry.clone()
    }

    /// Accepts clients until `shutdown` completes, then closes every connection with 1001 and
    /// waits for them, at most [`SHUTDOWN_DEADLINE`].
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
        // Clients turned away at the cap, being answered at once; beyond these they are dropped.
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
            // At the cap the client hears "full, try again" within FULL_GRACE (503), so nginx can
            // pass the handshake to another replica that has room, instead of waiting in the
            // backlog until its connect timeout. The grace covers a connection just ending.
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

/// Runs a chat server on `listener` until `shutdown` completes. With Redis, waits a moment for
/// it first (rooms are shared from the first connection on), and starts degraded without it.
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

/// One accepted socket: the handshake under its deadline, then the connection.
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
    // The person's place is given back only once the connection is over.
    drop(slot);
}

fn websocket_config(limits: &Limits) -> WebSocketConfig {
    // No cap on the write buffer (`max_write_buffer_size`): a `welcome` lists every member, so it
    // grows with the room past any fixed size, and a cap below it would drop every newcomer of a
    // big room. The buffer stays small anyway: once a write would block, the writer's next
    // `feed` waits for a flush, so it holds at most WRITE_BUFFER_BYTES plus one event.
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_frame_size(Some(limits.max_frame_bytes))
        .max_message_size(Some(limits.max_frame_bytes))
}
