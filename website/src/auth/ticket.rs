//! Chat tickets for the signed-in user: the shared contract's issuer (`contract::ticket`), at a
//! bounded rate per person.

use std::num::NonZeroU32;

use contract::Secret;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mongodb::bson::oid::ObjectId;

use crate::error::AppError;
use crate::metrics::Metrics;

pub use contract::ticket::LIFETIME;

/// How often one person may ask for tickets. The chat page asks once per page open and once per
/// reconnect, with a backoff that starts at 0.5–1 s and doubles: even a dozen tabs reconnecting
/// after a restart stay well inside it, while a script asking in a loop is stopped at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketRate {
    /// Sustained tickets per minute.
    pub per_minute: NonZeroU32,
    /// Tickets that may be asked for at once, above the sustained rate.
    pub burst: NonZeroU32,
}

impl Default for TicketRate {
    fn default() -> Self {
        Self {
            per_minute: NonZeroU32::new(60).expect("not zero"),
            burst: NonZeroU32::new(20).expect("not zero"),
        }
    }
}

/// How often the limiter forgets the people whose budget is whole again, so that it holds only
/// those who asked recently. Off the requests' path: a sweep scans every entry.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Issues the tickets the chat service accepts. Built once from `JWT_SECRET`; cheap to clone.
#[derive(Clone)]
pub struct TicketIssuer {
    issuer: contract::TicketIssuer,
    rate: std::sync::Arc<DefaultKeyedRateLimiter<ObjectId>>,
    /// Tickets issued and refused.
    metrics: Metrics,
}

impl TicketIssuer {
    pub fn new(secret: &Secret, rate: TicketRate, metrics: Metrics) -> Self {
        let quota = Quota::per_minute(rate.per_minute).allow_burst(rate.burst);
        Self {
            issuer: contract::TicketIssuer::new(secret),
            rate: std::sync::Arc::new(RateLimiter::keyed(quota)),
            metrics,
        }
    }

    /// Starts forgetting, every [`SWEEP_EVERY`], the people whose budget is whole again; the task
    /// ends with the issuer.
    pub fn spawn_sweeper(&self) {
        let rate = std::sync::Arc::downgrade(&self.rate);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(rate) = rate.upgrade() else {
                    return;
                };
                rate.retain_recent();
            }
        });
    }

    /// A ticket that lets `email` (the user `user_id`) into the room `room_id` titled
    /// `room_title`; [`AppError::TooManyTickets`] when that person asks too often.
    pub fn issue(
        &self,
        user_id: ObjectId,
        email: &str,
        room_title: &str,
        room_id: ObjectId,
    ) -> Result<String, AppError> {
        if self.rate.check_key(&user_id).is_err() {
            self.metrics.ticket_refused();
            return Err(AppError::TooManyTickets);
        }
        let ticket = self
            .issuer
            .issue(email, room_title, &room_id.to_hex())
            .map_err(|e| AppError::Internal(e.into()))?;
        self.metrics.ticket_issued();
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(per_minute: u32, burst: u32) -> TicketIssuer {
        let secret = Secret::new("a test secret of at least thirty-two bytes").unwrap();
        let rate = TicketRate {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        };
        TicketIssuer::new(&secret, rate, Metrics::new(false).unwrap())
    }

    #[test]
    fn one_person_gets_the_burst_then_is_refused_and_others_are_not() {
        let issuer = issuer(1, 3);
        let (ann, bob, room) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
        for _ in 0..3 {
            assert!(issuer.issue(ann, "ann@x.io", "Room", room).is_ok());
        }
        assert!(matches!(
            issuer.issue(ann, "ann@x.io", "Room", room),
            Err(AppError::TooManyTickets)
        ));
        assert!(issuer.issue(bob, "bob@x.io", "Room", room).is_ok());
    }
}
