//! Chat tickets for the signed-in user: the shared contract's issuer (`contract::ticket`), with
//! the website's error type.

use contract::Secret;
use mongodb::bson::oid::ObjectId;

use crate::error::AppError;

pub use contract::ticket::LIFETIME;

/// Issues the tickets the chat service accepts. Built once from `JWT_SECRET`; cheap to clone.
#[derive(Clone)]
pub struct TicketIssuer(contract::TicketIssuer);

impl TicketIssuer {
    pub fn new(secret: &Secret) -> Self {
        Self(contract::TicketIssuer::new(secret))
    }

    /// A ticket that lets `email` into the room `room_id` titled `room_title`.
    pub fn issue(
        &self,
        email: &str,
        room_title: &str,
        room_id: ObjectId,
    ) -> Result<String, AppError> {
        self.0
            .issue(email, room_title, &room_id.to_hex())
            .map_err(|e| AppError::Internal(e.into()))
    }
}
