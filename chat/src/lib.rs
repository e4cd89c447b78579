//! The chat service: WebSocket rooms on bare tokio-tungstenite, opened with a JWT ticket in a
//! handshake header. It keeps nothing but open rooms and who is in them.

/// Why a connection ended: close codes and their metric labels.
mod close_reason;
/// Settings from the environment.
pub mod config;
/// One client: reader, writer, limits, close codes.
pub mod connection;
/// A server's WebSocket frames as bytes: heads, and a room's event encoded once.
mod framing;
/// The HTTP handshake: path, origin, ticket.
pub mod handshake;
/// What the chat counts, and `/metrics` on a listener of its own.
pub mod metrics;
/// The website's notice that a room was deleted.
mod notice;
/// Open sockets per person, with a cap.
pub mod per_person;
/// Plain HTTP answers and the bearer token, before any upgrade.
mod plain_http;
/// The JSON events on the wire.
pub mod protocol;
/// Rooms and fan-out, across replicas through Redis (`REDIS_URL`).
pub mod rooms;
/// The server: accept loop, connection cap, graceful shutdown.
mod server;
/// An accepted WebSocket's two halves: tungstenite reads, the writer writes.
mod socket;
/// Locking that survives a panic elsewhere.
mod sync;
/// The HTTP request a connection opens with: `101` and a WebSocket, or a plain status.
mod upgrade;
/// A connection's writer: its queue to the socket, in batches.
mod writer;

pub use config::{Config, Limits};
pub use rooms::redis::{HEARTBEAT, REPLICA_TTL};
pub use server::{SHUTDOWN_DEADLINE, Server, StartError, run};
