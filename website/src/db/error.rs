//! What a query can come to besides its answer, in the database's own terms.

use std::time::Duration;

use mongodb::error::{Error, ErrorKind, WriteFailure};

/// A failed query. The web layer's `AppError` decides what the visitor sees (status and message).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// The unique index on `users.email` refused a second account for the address.
    #[error("email already registered")]
    EmailTaken,
    /// The server cannot be reached now: worth trying again later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Unavailable),
    #[error(transparent)]
    Failed(Error),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// The driver could not reach a server (selection, connection, DNS).
    #[error(transparent)]
    Unreachable(Error),
    /// A server took the query and did not answer within `MONGODB_TIMEOUT_SECS`.
    #[error("MongoDB did not answer within {0:?}")]
    NoAnswerWithin(Duration),
}

impl From<Error> for DbError {
    fn from(error: Error) -> Self {
        match *error.kind {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. } => Self::Unavailable(Unavailable::Unreachable(error)),
            _ => Self::Failed(error),
        }
    }
}

pub(super) fn is_duplicate_key(error: &Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}
