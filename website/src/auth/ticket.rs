//! Chat tickets: the short-lived HS256 JWT the chat service accepts (chat/README.md, "The ticket").

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Secret;
use crate::error::AppError;

pub const ISSUER: &str = "website";
pub const AUDIENCE: &str = "chat";
/// A ticket only opens a connection, so it may live just long enough to be used.
pub const LIFETIME: Duration = Duration::from_secs(60);

/// The claims, exactly as the contract names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub email: String,
    /// The room's title.
    pub room: String,
    /// The room's ObjectId as 24 hex characters.
    pub room_id: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

#[derive(Clone)]
pub struct TicketIssuer {
    key: EncodingKey,
}

impl TicketIssuer {
    pub fn new(secret: &Secret) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.expose().as_bytes()),
        }
    }

    pub fn issue(
        &self,
        email: &str,
        room_title: &str,
        room_id: ObjectId,
    ) -> Result<String, AppError> {
        let iat = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            email: email.to_owned(),
            room: room_title.to_owned(),
            room_id: room_id.to_hex(),
            iat,
            exp: iat + LIFETIME.as_secs() as i64,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("signing a ticket: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn validation() -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        v
    }

    #[test]
    fn a_ticket_carries_every_claim_of_the_contract() {
        let room_id = ObjectId::new();
        let token = TicketIssuer::new(&Secret::new(SECRET))
            .issue("a@x.io", "Планирование", room_id)
            .unwrap();
        let decoded = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation(),
        )
        .unwrap();
        assert_eq!(decoded.header.alg, Algorithm::HS256);
        let claims = decoded.claims;
        assert_eq!(claims.email, "a@x.io");
        assert_eq!(claims.room, "Планирование");
        assert_eq!(claims.room_id, room_id.to_hex());
        assert_eq!(claims.room_id.len(), 24);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            ("website", "chat")
        );
        assert_eq!(claims.exp - claims.iat, 60);
        assert!((claims.iat - OffsetDateTime::now_utc().unix_timestamp()).abs() <= 5);
    }

    #[test]
    fn a_ticket_signed_with_another_secret_is_rejected() {
        let token = TicketIssuer::new(&Secret::new("another secret of at least 32 bytes!"))
            .issue("a@x.io", "room", ObjectId::new())
            .unwrap();
        let result = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation(),
        );
        assert!(result.is_err());
    }
}
