//! The chat ticket: a short-lived HS256 JWT the website issues and this service verifies.
//!
//! The contract (chat/README.md, "The ticket"): claims `email`, `room`, `room_id` (24 hex chars), `iat`, `exp`,
//! `iss = "website"`, `aud = "chat"`; lifetime 60 s. Anything else is refused: another
//! algorithm, a missing claim, a claim of the wrong type, a lifetime longer than the contract's.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// `iss` of every ticket.
pub const ISSUER: &str = "website";
/// `aud` of every ticket.
pub const AUDIENCE: &str = "chat";
/// The longest lifetime (`exp - iat`) the contract allows.
pub const MAX_LIFETIME_SECS: u64 = 60;
/// Clock difference tolerated between the website and the chat service. Kept to a few seconds:
/// the crate's default of 60 s would double the life of a 60-second ticket.
pub const LEEWAY_SECS: u64 = 5;

/// The claims of a ticket. All are required and typed, so a ticket with a missing claim or a
/// claim of the wrong type does not deserialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's normalized email.
    pub email: String,
    /// The room title, shown to clients.
    pub room: String,
    /// The room's ObjectId (24 hex chars): rooms are keyed by it.
    pub room_id: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
}

impl Claims {
    /// Claims for a ticket issued now with the contract's full lifetime.
    pub fn new(email: &str, room: &str, room_id: &str) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        Self {
            email: email.to_owned(),
            room: room.to_owned(),
            room_id: room_id.to_owned(),
            iat: now,
            exp: now + MAX_LIFETIME_SECS,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        }
    }

    /// Signs the claims. The website issues the real tickets; this serves the load generator and
    /// the tests, which need valid ones.
    pub fn sign(&self, secret: &Secret) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            self,
            &EncodingKey::from_secret(secret.expose()),
        )
    }
}

/// Why a ticket was refused. Logged (never the ticket itself); clients only see 401.
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
    #[error("ticket lifetime exceeds {MAX_LIFETIME_SECS} s")]
    LifetimeTooLong,
    #[error("ticket room_id is not 24 hex characters")]
    BadRoomId,
    #[error("ticket email is empty")]
    EmptyEmail,
    #[error("ticket is malformed or lacks a claim: {0}")]
    Malformed(jsonwebtoken::errors::Error),
}

/// Verifies tickets with the shared secret. Built once; cheap to share.
pub struct TicketVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TicketVerifier {
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        Self {
            key: DecodingKey::from_secret(secret.expose()),
            validation,
        }
    }

    /// Checks signature, algorithm, expiry, issuer, audience, claim types and the lifetime.
    pub fn verify(&self, token: &str) -> Result<Claims, TicketError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TicketError::Expired,
                ErrorKind::InvalidSignature => TicketError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TicketError::WrongAlgorithm
                }
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TicketError::WrongParty,
                _ => TicketError::Malformed(e),
            })?
            .claims;
        let now = jsonwebtoken::get_current_timestamp();
        if claims.iat > now + LEEWAY_SECS {
            return Err(TicketError::IssuedInTheFuture);
        }
        if claims.exp.saturating_sub(claims.iat) > MAX_LIFETIME_SECS {
            return Err(TicketError::LifetimeTooLong);
        }
        if claims.room_id.len() != 24 || !claims.room_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TicketError::BadRoomId);
        }
        if claims.email.trim().is_empty() {
            return Err(TicketError::EmptyEmail);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const ROOM_ID: &str = "65f1c0ffee0123456789abcd";

    fn secret() -> Secret {
        Secret::new("test-secret-test-secret-test-secret!").unwrap()
    }

    fn claims_json() -> Value {
        serde_json::to_value(Claims::new("ann@example.org", "Rust", ROOM_ID)).unwrap()
    }

    fn sign_json(claims: &Value, alg: Algorithm) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret().expose()),
        )
        .unwrap()
    }

    fn verify(token: &str) -> Result<Claims, TicketError> {
        TicketVerifier::new(&secret()).verify(token)
    }

    #[test]
    fn a_ticket_of_the_contract_is_accepted() {
        let claims = Claims::new("ann@example.org", "Rust", ROOM_ID);
        let token = claims.sign(&secret()).unwrap();
        assert_eq!(verify(&token).unwrap(), claims);
    }

    #[test]
    fn a_ticket_signed_with_another_secret_is_refused() {
        let other = Secret::new("another-secret-another-secret-abc").unwrap();
        let token = Claims::new("ann@example.org", "Rust", ROOM_ID)
            .sign(&other)
            .unwrap();
        assert!(matches!(verify(&token), Err(TicketError::BadSignature)));
    }

    #[test]
    fn an_unsigned_alg_none_ticket_is_refused() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64.encode(claims_json().to_string());
        assert!(verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn other_hmac_algorithms_are_refused() {
        let token = sign_json(&claims_json(), Algorithm::HS512);
        assert!(matches!(verify(&token), Err(TicketError::WrongAlgorithm)));
    }

    #[test]
    fn tickets_breaking_a_claim_rule_are_refused() {
        let now = jsonwebtoken::get_current_timestamp();
        type Breakage = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Breakage)> = vec![
            (
                "expired",
                Box::new(move |c| {
                    c["iat"] = json!(now - 120);
                    c["exp"] = json!(now - 60);
                }),
            ),
            ("wrong audience", Box::new(|c| c["aud"] = json!("website"))),
            ("wrong issuer", Box::new(|c| c["iss"] = json!("someone"))),
            (
                "lifetime over 60 s",
                Box::new(move |c| c["exp"] = json!(now + 3600)),
            ),
            (
                "issued in the future",
                Box::new(move |c| {
                    c["iat"] = json!(now + 30);
                    c["exp"] = json!(now + 60);
                }),
            ),
            (
                "iat as a string",
                Box::new(move |c| c["iat"] = json!(now.to_string())),
            ),
            ("email as a number", Box::new(|c| c["email"] = json!(42))),
            ("aud as a list", Box::new(|c| c["aud"] = json!(["chat"]))),
            (
                "room_id not hex",
                Box::new(|c| c["room_id"] = json!("not-an-object-id-at-all!")),
            ),
            ("empty email", Box::new(|c| c["email"] = json!(""))),
        ];
        for (what, break_it) in cases {
            let mut claims = claims_json();
            break_it(&mut claims);
            let token = sign_json(&claims, Algorithm::HS256);
            assert!(verify(&token).is_err(), "a ticket with {what} was accepted");
        }
    }

    #[test]
    fn every_claim_is_required() {
        for claim in ["email", "room", "room_id", "iat", "exp", "iss", "aud"] {
            let mut claims = claims_json();
            claims.as_object_mut().unwrap().remove(claim);
            let token = sign_json(&claims, Algorithm::HS256);
            assert!(
                verify(&token).is_err(),
                "a ticket without {claim} was accepted"
            );
        }
    }

    #[test]
    fn a_ticket_expired_within_the_leeway_still_passes() {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = claims_json();
        claims["iat"] = json!(now - 62);
        claims["exp"] = json!(now - 2);
        assert!(verify(&sign_json(&claims, Algorithm::HS256)).is_ok());
    }
}
