//! The contract between the website and the chat service, written once.
//!
//! The website issues a short-lived signed ticket and the chat service verifies it with the same
//! secret; the one request between them, the room-deleted notice, is signed the same way.
//! Everything both sides must agree on for that to work lives here, and nothing else does. This
//! crate does no I/O of its own besides reading the environment, waiting for the stop signal and
//! the `healthcheck` command's one request.

/// Reading settings from the environment: one rule for empty values and errors that name the
/// variable.
pub mod env;
/// `website healthcheck` and `chat healthcheck`: one probe, judged by each service.
pub mod healthcheck;
/// The room-deleted notice the website sends the chat: its token and its path.
pub mod notice;
/// `JWT_SECRET`: the HS256 key shared by both services, with its one length rule.
pub mod secret;
/// The signal that stops either service.
pub mod shutdown;
/// The chat ticket: claims, issuer, audience, lifetime; issuing and verifying.
pub mod ticket;

pub use env::{ConfigError, Env};
pub use notice::{NoticeError, NoticeIssuer, NoticeVerifier};
pub use secret::{MIN_SECRET_BYTES, Redacted, Secret};
pub use ticket::{Claims, TicketError, TicketIssuer, TicketVerifier};
