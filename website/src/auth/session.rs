//! The signed-in user, kept in a tower-sessions session, and the store every replica shares.
//!
//! Anonymous visitors get no session at all: nothing is written until [`sign_in`]. A session ends
//! when unused for `SESSION_IDLE_MINUTES` (the record's expiry date, moved on by [`CurrentUser`] at
//! most once a minute) or `SESSION_MAX_HOURS` after login, however active.
//!
//! Sessions live in MongoDB ([`MongoSessionStore`]) with `MokaStore` as a small cache in front
//! ([`Store`]), trusted for at most [`CACHE_TTL`]. When MongoDB is unavailable a session call is
//! [`crate::db::DbError::Unavailable`] (503): nobody is treated as signed out, no session ends.

use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use mongodb::bson::oid::ObjectId;
use rand::RngCore;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::{CachingSessionStore, Session, SessionStore, session_store};
use tower_sessions_moka_store::MokaStore;

use super::session_store::MongoSessionStore;
use crate::db::Db;
use crate::db::sessions::{SessionUser, USER_KEY};
use crate::domain::Email;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::settings::RequestSettings;

/// Touching the session on every request would rewrite it constantly; once a minute keeps the
/// idle timeout accurate to a minute.
const TOUCH_EVERY_SECS: i64 = 60;

/// How long a replica uses its cached copy of a session before reading MongoDB again: the bound
/// on how long a session ended through another replica still works here (under 5 s).
pub const CACHE_TTL: Duration = Duration::from_secs(4);

const MAX_CACHED_SESSIONS: u64 = 100_000;

pub type Store = CachingSessionStore<ShortLived<MokaStore>, MongoSessionStore>;

pub fn store(db: &Db, metrics: Metrics) -> Store {
    let cache = ShortLived {
        cache: MokaStore::new(Some(MAX_CACHED_SESSIONS)),
        metrics,
    };
    CachingSessionStore::new(cache, MongoSessionStore::new(db.clone()))
}

/// A cache that keeps each record at most [`CACHE_TTL`]: `MokaStore` keeps a record until the
/// record's own expiry date, so it is handed a copy whose expiry date is no later than that.
#[derive(Clone)]
pub struct ShortLived<Cache> {
    cache: Cache,
    metrics: Metrics,
}

impl<Cache: std::fmt::Debug> std::fmt::Debug for ShortLived<Cache> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShortLived").field(&self.cache).finish()
    }
}

fn short_lived(record: &Record) -> Record {
    let mut copy = record.clone();
    copy.expiry_date = copy.expiry_date.min(OffsetDateTime::now_utc() + CACHE_TTL);
    copy
}

#[async_trait]
impl<Cache: SessionStore> SessionStore for ShortLived<Cache> {
    /// MongoDB has just given this record its id (replacing a taken one); the cache only mirrors
    /// that, so it saves rather than draws an id of its own.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.cache.save(&short_lived(record)).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.cache.save(&short_lived(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let found = self.cache.load(id).await?;
        self.metrics.session_cache_lookup(found.is_some());
        Ok(found)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.cache.delete(id).await
    }
}

/// The logged-in user of this request. As an extractor it refuses anonymous requests with
/// [`AppError::Unauthenticated`] (a redirect to `/login` for pages, 401 under `/api/`).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: ObjectId,
    pub email: Email,
    pub csrf_token: String,
}

fn new_csrf_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Starts an authenticated session under a fresh id, so an id planted before login
/// (session fixation) is worthless afterwards.
pub async fn sign_in(session: &Session, id: ObjectId, email: &Email) -> Result<(), AppError> {
    // Without a cookie there is nothing to retire: the record gets a fresh id when it is created.
    if session.id().is_some() {
        session.cycle_id().await?;
    }
    let now = now();
    let user = SessionUser {
        user_id: id,
        email: email.as_str().to_owned(),
        csrf_token: new_csrf_token(),
        signed_in_at: now,
        last_seen_at: now,
    };
    session.insert(USER_KEY, user).await?;
    // Stored now rather than only by the session layer after the answer: if MongoDB refuses, the
    // visitor gets this request's 503 page instead of the layer's bare 500, and no cookie.
    session.save().await?;
    Ok(())
}

pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}

pub async fn current_user(
    session: &Session,
    max_age: Duration,
) -> Result<Option<CurrentUser>, AppError> {
    let stored = session.get::<SessionUser>(USER_KEY).await?;
    let Some(mut stored) = stored else {
        return Ok(None);
    };
    let now = now();
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(stored.signed_in_at) > max_age {
        sign_out(session).await?;
        return Ok(None);
    }
    if now - stored.last_seen_at >= TOUCH_EVERY_SECS {
        // The session layer saves it after the answer, which moves the idle expiry on.
        stored.last_seen_at = now;
        session.insert(USER_KEY, &stored).await?;
    }
    Ok(Some(CurrentUser {
        id: stored.user_id,
        email: Email::from_trusted(stored.email),
        csrf_token: stored.csrf_token,
    }))
}

async fn from_parts<S>(parts: &mut Parts, state: &S) -> Result<Option<CurrentUser>, AppError>
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
{
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, why)| AppError::Internal(anyhow::anyhow!("session layer missing: {why}")))?;
    current_user(&session, RequestSettings::from_ref(state).session_max_age).await
}

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        from_parts(parts, state)
            .await?
            .ok_or(AppError::Unauthenticated)
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        from_parts(parts, state).await
    }
}

#[cfg(test)]
mod tests {
    use super::new_csrf_token;

    #[test]
    fn csrf_tokens_are_256_random_bits_in_hex() {
        let token = new_csrf_token();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        assert_ne!(token, new_csrf_token());
    }
}
