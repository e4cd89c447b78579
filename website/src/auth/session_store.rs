//! An in-memory, bounded session store on `moka`, for tower-sessions 0.15.
//!
//! This is the store of `tower-sessions-moka-store`, whose newest release (0.15.0) still builds
//! on tower-sessions-core 0.14 and so does not implement 0.15's `SessionStore`. Entries expire at
//! the session's own expiry date (idle timeout), and the cache holds at most `max_sessions`
//! records, evicting the least recently used beyond that, so memory stays bounded.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;

#[derive(Debug, Clone)]
pub struct MokaStore {
    cache: Cache<Id, Record>,
}

impl MokaStore {
    pub fn new(max_sessions: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_sessions)
                .expire_after(UntilExpiryDate)
                .build(),
        }
    }
}

#[async_trait]
impl SessionStore for MokaStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh random id colliding is astronomically unlikely; still, never overwrite.
        while self.cache.contains_key(&record.id) {
            record.id = Id::default();
        }
        self.cache.insert(record.id, record.clone()).await;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.cache.insert(record.id, record.clone()).await;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        // Expired entries are gone from the cache, so whatever is found is live.
        Ok(self.cache.get(id).await)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.cache.invalidate(id).await;
        Ok(())
    }
}

/// Each record lives until its `expiry_date`, recomputed whenever it is saved again.
struct UntilExpiryDate;

fn time_left(record: &Record) -> Duration {
    let left = record.expiry_date - OffsetDateTime::now_utc();
    if left.is_positive() {
        left.unsigned_abs()
    } else {
        Duration::ZERO
    }
}

impl Expiry<Id, Record> for UntilExpiryDate {
    fn expire_after_create(&self, _: &Id, record: &Record, _: Instant) -> Option<Duration> {
        Some(time_left(record))
    }

    fn expire_after_update(
        &self,
        _: &Id,
        record: &Record,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(time_left(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn record(expires_in: time::Duration) -> Record {
        Record {
            id: Id::default(),
            data: HashMap::new(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn records_round_trip_and_can_be_deleted() {
        let store = MokaStore::new(10);
        let mut rec = record(time::Duration::minutes(5));
        store.create(&mut rec).await.unwrap();
        assert_eq!(
            store.load(&rec.id).await.unwrap().map(|r| r.id),
            Some(rec.id)
        );
        store.delete(&rec.id).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_expired_record_is_not_loaded() {
        let store = MokaStore::new(10);
        let mut rec = record(time::Duration::seconds(-1));
        store.create(&mut rec).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());
    }
}
