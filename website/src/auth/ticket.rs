//! Chat tickets for the signed-in user: the contract's issuer (`contract::ticket`) within a
//! per-person budget that every website replica shares through MongoDB (`db::ticket_grants`), so
//! N replicas give a person no more tickets than one.
//!
//! The budget: at most `burst` tickets in any `burst × (60 s / per_minute)` (20 in 20 s by
//! default): a burst at once, then `per_minute` a minute sustained. A grant is recorded first and
//! the person's grants counted after; over the budget it is taken back and refused, so two
//! replicas racing at the limit may both refuse, never both grant.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use contract::Secret;
use mongodb::bson::oid::ObjectId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::Db;
use crate::error::AppError;
use crate::metrics::Metrics;

pub use contract::ticket::LIFETIME;

/// How often one person may ask for tickets. The chat page asks once per page open and once after
/// each socket that was open (a chat restart costs each tab one ticket): even a dozen tabs
/// reconnecting after a restart stay well inside it, while a script asking in a loop is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketRate {
    pub per_minute: NonZeroU32,
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

impl TicketRate {
    /// How long a grant counts: the time `burst` tickets take at the sustained rate.
    fn window(self) -> Duration {
        Duration::from_secs(60) * self.burst.get() / self.per_minute.get()
    }
}

/// Ticket requests a replica serves at once; more wait up to [`ADMISSION_WAIT`]. After a chat
/// restart every open page asks within a second: without a bound they all queue for the database
/// connections and all time out together (chat/bench/storm.sh); with it, those admitted finish in
/// time and the rest are told at once to come back (503, `Retry-After: 1`), which the page does.
const IN_FLIGHT: usize = 32;
const ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// A place among the ticket requests a replica serves at once ([`IN_FLIGHT`]). The
/// handler's first extractor, so a request turned away has not read its session from MongoDB.
pub struct Admitted {
    _place: OwnedSemaphorePermit,
}

impl<S> FromRequestParts<S> for Admitted
where
    S: Send + Sync,
    TicketDesk: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(_parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let place = TicketDesk::from_ref(state).admission.admit().await?;
        Ok(Self { _place: place })
    }
}

/// Issues the tickets the chat service accepts, within each person's budget. Cheap to clone.
#[derive(Clone)]
pub struct TicketDesk {
    issuer: contract::TicketIssuer,
    db: Db,
    rate: TicketRate,
    metrics: Metrics,
    admission: Admission,
}

/// At most a number of requests at once, the others waiting a while for a place, then refused.
#[derive(Clone)]
struct Admission {
    places: Arc<Semaphore>,
    wait: Duration,
}

impl Admission {
    fn new(places: usize, wait: Duration) -> Self {
        Self {
            places: Arc::new(Semaphore::new(places)),
            wait,
        }
    }

    async fn admit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        match tokio::time::timeout(self.wait, self.places.clone().acquire_owned()).await {
            Ok(Ok(place)) => Ok(place),
            _ => Err(AppError::Busy),
        }
    }
}

impl TicketDesk {
    pub fn new(secret: &Secret, db: Db, rate: TicketRate, metrics: Metrics) -> Self {
        Self {
            issuer: contract::TicketIssuer::new(secret),
            db,
            rate,
            metrics,
            admission: Admission::new(IN_FLIGHT, ADMISSION_WAIT),
        }
    }

    /// [`AppError::TooManyTickets`] when the person is over the budget.
    pub async fn issue(
        &self,
        user_id: ObjectId,
        email: &str,
        room_title: &str,
        room_id: ObjectId,
    ) -> Result<String, AppError> {
        let burst = u64::from(self.rate.burst.get());
        let grant = self
            .db
            .insert_ticket_grant(user_id, self.rate.window())
            .await?;
        if self.db.count_ticket_grants(user_id, burst + 1).await? > burst {
            self.db.delete_ticket_grant(grant).await?;
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

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_places_waits_for_one_then_is_told_busy() {
        let admission = Admission::new(2, Duration::from_secs(1));
        let first = admission.admit().await.unwrap();
        let _second = admission.admit().await.unwrap();

        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(first); // a place frees up within the wait: the waiting request gets it
        let _third = waiting
            .await
            .unwrap()
            .expect("admitted once a place was free");

        let turned_away = admission.admit().await;
        assert!(matches!(turned_away, Err(AppError::Busy)));
    }

    #[test]
    fn a_grant_counts_for_the_time_the_burst_takes_at_the_sustained_rate() {
        assert_eq!(TicketRate::default().window(), Duration::from_secs(20));
        let slow = TicketRate {
            per_minute: NonZeroU32::new(6).unwrap(),
            burst: NonZeroU32::new(3).unwrap(),
        };
        assert_eq!(slow.window(), Duration::from_secs(30));
    }
}
