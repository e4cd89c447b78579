//! The room-deleted notice, the one request the website makes to the chat:
//! `POST /internal/rooms/{room_id}/deleted` with a bearer HS256 JWT of its own audience
//! (`NOTICE_AUDIENCE`: a ticket is never a notice, nor a notice a ticket), accepted only for the
//! room in the path. nginx never forwards the path (the chat's README says how).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::ticket::{self, ISSUER, SigningError, TicketError};

pub const NOTICE_AUDIENCE: &str = "chat.room_deleted";
/// How long a notice lives: it is sent at once, so it only has to cover clock differences.
pub const NOTICE_LIFETIME: Duration = Duration::from_secs(60);
pub fn notice_path(room_id: &str) -> String {
    format!("{NOTICE_PATH_PREFIX}{room_id}{NOTICE_PATH_SUFFIX}")
}
/// The chat's internal paths start with this; nginx answers them itself (404).
pub const INTERNAL_PREFIX: &str = "/internal/";
const NOTICE_PATH_PREFIX: &str = "/internal/rooms/";
const NOTICE_PATH_SUFFIX: &str = "/deleted";

pub fn room_in_notice_path(path: &str) -> Option<&str> {
    path.strip_prefix(NOTICE_PATH_PREFIX)?
        .strip_suffix(NOTICE_PATH_SUFFIX)
        .filter(|room_id| ticket::is_room_id(room_id))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeClaims {
    pub room_id: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

/// Why a notice was refused (for the log; the website only sees 401).
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Token(#[from] TicketError),
    #[error("the notice is for another room")]
    OtherRoom,
}

/// Signs notices: the website's side.
#[derive(Clone)]
pub struct NoticeIssuer {
    key: EncodingKey,
}

impl NoticeIssuer {
    pub fn new(secret: &Secret) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.expose()),
        }
    }

    pub fn issue(&self, room_id: &str) -> Result<String, SigningError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = NoticeClaims {
            room_id: room_id.to_owned(),
            iat: now,
            exp: now + NOTICE_LIFETIME.as_secs(),
            iss: ISSUER.to_owned(),
            aud: NOTICE_AUDIENCE.to_owned(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.key,
        )?)
    }
}

/// Checks notices: the chat's side.
pub struct NoticeVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl NoticeVerifier {
    pub fn new(secret: &Secret) -> Self {
        Self {
            key: DecodingKey::from_secret(secret.expose()),
            validation: ticket::validation(NOTICE_AUDIENCE),
        }
    }

    /// Also refuses a notice for another room than `room_id`, the one in the request's path.
    pub fn verify(&self, token: &str, room_id: &str) -> Result<NoticeClaims, NoticeError> {
        let claims: NoticeClaims = ticket::decode(token, &self.key, &self.validation)?;
        ticket::check_times(claims.iat, claims.exp)?;
        if claims.room_id != room_id {
            return Err(NoticeError::OtherRoom);
        }
        Ok(claims)
    }
}
