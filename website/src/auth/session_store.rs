//! [`MongoSessionStore`], tower-sessions' store on the `sessions` collection. tower-sessions
//! carries a store's error as text, so the store also notes each failed query's [`DbError`] for
//! the request ([`noting_failures`]): a failed session call becomes its `AppError` (503 when
//! MongoDB is unavailable), MongoDB is not waited for twice in a request, and the session layer's
//! bare 500 after a failed save becomes the same typed answer.

use std::cell::RefCell;

use async_trait::async_trait;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::session::{self, Id, Record};
use tower_sessions::{SessionStore, session_store};

use crate::db::sessions::stored_id;
use crate::db::{Db, DbError, SessionDoc};
use crate::error::{AppError, ErrorTag};

/// A new session id that is taken already is replaced this many times before `create` gives up.
/// Ids are 128 random bits, so even one collision means something is wrong.
const CREATE_ATTEMPTS: usize = 4;

tokio::task_local! {
    static FAILED_QUERY: RefCell<Option<DbError>>;
}

pub async fn noting_failures(request: Request, next: Next) -> Response {
    FAILED_QUERY
        .scope(RefCell::new(None), async move {
            let response = next.run(request).await;
            // The session layer gives up on a failed save (the idle refresh after the answer)
            // with an empty 500, leaving the cookie alone: answer for the failure instead. Every
            // other answer is tagged or rendered, and has a content type.
            let from_session_layer = response.status() == StatusCode::INTERNAL_SERVER_ERROR
                && response.extensions().get::<ErrorTag>().is_none()
                && !response.headers().contains_key(header::CONTENT_TYPE);
            if !from_session_layer {
                return response;
            }
            match noted_failure() {
                Some(failure) => AppError::Database(failure).into_response(),
                None => response,
            }
        })
        .await
}

fn noted_failure() -> Option<DbError> {
    FAILED_QUERY
        .try_with(|noted| noted.borrow().clone())
        .ok()
        .flatten()
}

/// A failed session call: the noted failure of its query, else (a record that does not encode) a
/// bug.
impl From<session::Error> for AppError {
    fn from(error: session::Error) -> Self {
        match noted_failure() {
            Some(failure) => Self::Database(failure),
            None => Self::Internal(error.into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MongoSessionStore {
    db: Db,
}

impl MongoSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Runs `query` unless this request found MongoDB unavailable already; notes its failure.
    async fn run<T>(
        &self,
        query: impl Future<Output = Result<T, DbError>>,
    ) -> session_store::Result<T> {
        if let Some(unavailable @ DbError::Unavailable(_)) = noted_failure() {
            return Err(backend(&unavailable));
        }
        query.await.map_err(|failure| {
            let error = backend(&failure);
            let _ = FAILED_QUERY.try_with(|noted| *noted.borrow_mut() = Some(failure));
            error
        })
    }
}

/// The store on its own, for the integration tests.
#[cfg(feature = "test-support")]
impl Db {
    pub fn session_store(&self) -> MongoSessionStore {
        MongoSessionStore::new(self.clone())
    }
}

/// The text tower-sessions logs; nothing reads it back.
fn backend(failure: &DbError) -> session_store::Error {
    session_store::Error::Backend(failure.to_string())
}

#[async_trait]
impl SessionStore for MongoSessionStore {
    /// Inserts under a fresh id; an id that is taken is replaced, never overwritten.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        for _ in 0..CREATE_ATTEMPTS {
            let session = SessionDoc::from_record(record)?;
            if self.run(self.db.insert_session(&session)).await? {
                return Ok(());
            }
            tracing::warn!("a new session id was taken already; drawing another");
            record.id = Id::default();
        }
        Err(session_store::Error::Backend(format!(
            "no free session id in {CREATE_ATTEMPTS} attempts"
        )))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let session = SessionDoc::from_record(record)?;
        self.run(self.db.update_live_session(&session)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self.run(self.db.find_live_session(&stored_id(id))).await? {
            Some(session) => session.into_record(*id).map(Some),
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.run(self.db.delete_session(&stored_id(id))).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::db::Unavailable;

    fn unavailable() -> DbError {
        DbError::Unavailable(Unavailable::NoAnswerWithin(Duration::from_secs(1)))
    }

    fn failed_call() -> session::Error {
        session::Error::Store(backend(&unavailable()))
    }

    #[tokio::test]
    async fn a_failed_call_is_the_noted_failure_and_nothing_else() {
        let outside = AppError::from(failed_call());
        assert!(matches!(outside, AppError::Internal(_)), "{outside:?}");

        FAILED_QUERY
            .scope(RefCell::new(None), async {
                let nothing_noted = AppError::from(failed_call());
                assert!(matches!(nothing_noted, AppError::Internal(_)));
                FAILED_QUERY.with(|noted| *noted.borrow_mut() = Some(unavailable()));
                let noted = AppError::from(failed_call());
                assert!(
                    matches!(noted, AppError::Database(DbError::Unavailable(_))),
                    "{noted:?}"
                );
            })
            .await;
    }
}
