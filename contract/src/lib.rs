//! The contract between the website and the chat service, written once: the ticket the website
//! issues and the chat verifies, the room-deleted notice between them, and the settings both read.
//! This crate does no I/O of its own besides reading the environment, waiting for the stop signal
//! and the `healthcheck` command's one request.

/// Settings from the environment: one rule for empty values, errors that name the variable.
pub mod env;
/// The `healthcheck` command of both services.
pub mod healthcheck;
/// The room-deleted notice: its token and its path.
pub mod notice;
/// `JWT_SECRET`, the shared HS256 key.
pub mod secret;
/// The signal that stops either service.
pub mod shutdown;
/// The chat ticket: issuing and verifying.
pub mod ticket;

pub use env::{ConfigError, Env};
pub use notice::{NoticeError, NoticeIssuer, NoticeVerifier};
pub use secret::{MIN_SECRET_BYTES, Redacted, Secret};
pub use ticket::{Claims, TicketError, TicketIssuer, TicketVerifier};
