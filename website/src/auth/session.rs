//! The signed-in user, kept in the tower-sessions session.
//!
//! Anonymous visitors get no session at all: nothing is written until [`sign_in`]. A session ends
//! when unused for `SESSION_IDLE_MINUTES` (the store's inactivity expiry, refreshed by
//! [`CurrentUser`] at most once a minute) or `SESSION_MAX_HOURS` after login, however active.

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use mongodb::bson::oid::ObjectId;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;

use crate::domain::Email;
use crate::error::AppError;
use crate::settings::Settings;

const USER_KEY: &str = "user";
/// Touching the session on every request would rewrite it constantly; once a minute keeps the
/// idle timeout accurate to a minute.
const TOUCH_EVERY_SECS: i64 = 60;

/// What the session stores about its user.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionUser {
    user_id: ObjectId,
    email: String,
    csrf_token: String,
    signed_in_at: i64,
    last_seen_at: i64,
}

/// The logged-in user of this request. As an extractor it refuses anonymous requests with
/// [`AppError::Unauthenticated`] (a redirect to `/login` for pages, 401 under `/api/`).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: ObjectId,
    pub email: Email,
    pub csrf_token: String,
}

/// The session's CSRF token (see [`super::csrf`]): 32 random bytes, hex-encoded.
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
    session.cycle_id().await?;
    let now = now();
    let user = SessionUser {
        user_id: id,
        email: email.as_str().to_owned(),
        csrf_token: new_csrf_token(),
        signed_in_at: now,
        last_seen_at: now,
    };
    session.insert(USER_KEY, user).await?;
    Ok(())
}

/// Deletes the session from the store and expires the cookie.
pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}

/// The user of this session, if any and not past the absolute age limit.
pub async fn current_user(
    session: &Session,
    max_age: Duration,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(mut stored) = session.get::<SessionUser>(USER_KEY).await? else {
        return Ok(None);
    };
    let now = now();
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(stored.signed_in_at) > max_age {
        session.flush().await?;
        return Ok(None);
    }
    if now - stored.last_seen_at >= TOUCH_EVERY_SECS {
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
    Settings: FromRef<S>,
{
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, why)| AppError::Internal(anyhow::anyhow!("session layer missing: {why}")))?;
    current_user(&session, Settings::from_ref(state).session_max_age).await
}

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    Settings: FromRef<S>,
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
    Settings: FromRef<S>,
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
