//! The chat ticket: a short-lived HS256 JWT the website issues and the chat service verifies.
//!
//! The verifier refuses another algorithm, a missing claim or one of the wrong type, a lifetime
//! longer than `LIFETIME` and a ticket from the future; a claim the contract does not require
//! is still checked when present (RFC 8725, 3.10), so an `nbf` in the future is refused.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub const ISSUER: &str = "website";
pub const AUDIENCE: &str = "chat";
/// How long a ticket lives (`exp - iat`), and the longest lifetime the verifier accepts.
pub const LIFETIME: Duration = Duration::from_secs(60);
/// Clock difference tolerated between the two services. Kept to a few seconds: jsonwebtoken's
/// default of 60 s would double the life of a 60-second ticket.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// The claims of a ticket. All are required and typed, so a ticket with a missing claim or a
/// claim of the wrong type does not deserialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's normalized (lower-case) email.
    pub email: String,
    pub room: String,
    /// The room's ObjectId as 24 hex characters: rooms are keyed by it, titles need not be unique.
    pub room_id: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

impl Claims {
    pub fn new(email: &str, room: &str, room_id: &str) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        Self {
            email: email.to_owned(),
            room: room.to_owned(),
            room_id: room_id.to_owned(),
            iat: now,
            exp: now + LIFETIME.as_secs(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        }
    }
}

/// A ticket could not be signed (it cannot happen with HS256 and these claims).
#[derive(Debug, thiserror::Error)]
#[error("signing a ticket: {0}")]
pub struct SigningError(#[from] jsonwebtoken::errors::Error);

/// Issues tickets: the website's side. Built once from the secret; cheap to clone.
#[derive(Clone)]
pub struct TicketIssuer {
    key: EncodingKey,
}

impl TicketIssuer {
    pub fn new(secret: &Secret) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.expose()),
        }
    }

    pub fn issue(
        &self,
        email: &str,
        room_title: &str,
        room_id: &str,
    ) -> Result<String, SigningError> {
        self.sign(&Claims::new(email, room_title, room_id))
    }

    fn sign(&self, claims: &Claims) -> Result<String, SigningError> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.key,
        )?)
    }
}

/// Why a ticket was refused. For the log (never the ticket itself); clients only see 401.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("ticket expired")]
    Expired,
    #[error("ticket signature does not match")]
    BadSignature,
    #[error("ticket algorithm is not HS256")]
    WrongAlgorithm,
    #[error("ticket issuer or audience is wrong")]
    WrongParty,
    #[error("ticket issued in the future")]
    IssuedInTheFuture,
    #[error("ticket not valid yet (nbf in the future)")]
    NotYetValid,
    #[error("ticket lifetime exceeds {} s", LIFETIME.as_secs())]
    LifetimeTooLong,
    #[error("ticket room_id is not 24 hex characters")]
    BadRoomId,
    #[error("ticket email is empty")]
    EmptyEmail,
    #[error("ticket is malformed or lacks a claim: {0}")]
    Malformed(jsonwebtoken::errors::Error),
}

/// Verifies tickets: the chat service's side. Built once from the secret; cheap to share.
pub struct TicketVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TicketVerifier {
    pub fn new(secret: &Secret) -> Self {
        Self {
            key: DecodingKey::from_secret(secret.expose()),
            validation: validation(AUDIENCE),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TicketError> {
        let claims: Claims = decode(token, &self.key, &self.validation)?;
        check_times(claims.iat, claims.exp)?;
        if !is_room_id(&claims.room_id) {
            return Err(TicketError::BadRoomId);
        }
        if claims.email.trim().is_empty() {
            return Err(TicketError::EmptyEmail);
        }
        Ok(claims)
    }
}

pub(crate) fn validation(audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY.as_secs();
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<T, TicketError> {
    jsonwebtoken::decode::<T>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TicketError::Expired,
            ErrorKind::ImmatureSignature => TicketError::NotYetValid,
            ErrorKind::InvalidSignature => TicketError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TicketError::WrongAlgorithm
            }
            ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TicketError::WrongParty,
            _ => TicketError::Malformed(e),
        })
}

/// The checks jsonwebtoken leaves to us: not issued in the future, not living longer than
/// [`LIFETIME`].
pub(crate) fn check_times(iat: u64, exp: u64) -> Result<(), TicketError> {
    let now = jsonwebtoken::get_current_timestamp();
    if iat > now + LEEWAY.as_secs() {
        return Err(TicketError::IssuedInTheFuture);
    }
    if exp.saturating_sub(iat) > LIFETIME.as_secs() {
        return Err(TicketError::LifetimeTooLong);
    }
    Ok(())
}

/// A room id as both services write it: an ObjectId's 24 hex characters.
pub fn is_room_id(room_id: &str) -> bool {
    room_id.len() == 24 && room_id.bytes().all(|b| b.is_ascii_hexdigit())
}
