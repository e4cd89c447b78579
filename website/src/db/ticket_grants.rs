//! The `ticket_grants` collection: one document per chat ticket given, shared by every website
//! replica, for the per-person ticket budget (`auth::ticket`). Like `login_failures`: a grant
//! counts until its `expires_at`, documents are only inserted and deleted, a TTL index removes
//! the old ones.

use std::time::Duration;

use futures_util::TryStreamExt;

use mongodb::bson::DateTime;
use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

use super::{Db, DbError};

pub const COLLECTION: &str = "ticket_grants";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketGrantDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub at: DateTime,
    pub expires_at: DateTime,
}

impl Db {
    /// Records a grant to `user_id` that counts for `window`; its id, to take it back.
    pub async fn insert_ticket_grant(
        &self,
        user_id: ObjectId,
        window: Duration,
    ) -> Result<ObjectId, DbError> {
        let at = DateTime::now();
        let grant = TicketGrantDoc {
            id: ObjectId::new(),
            user_id,
            at,
            expires_at: at.saturating_add_duration(window),
        };
        self.bounded(self.ticket_grants.insert_one(&grant)).await?;
        Ok(grant.id)
    }

    /// How many grants to `user_id` still count, stopping at `up_to`. Read as at most `up_to` ids
    /// rather than with `count_documents`: the stand-in's count matches nothing on an ObjectId
    /// field (`object_id_filter`), and `up_to` is small.
    pub async fn count_ticket_grants(&self, user_id: ObjectId, up_to: u64) -> Result<u64, DbError> {
        let mut counting = self.object_id_is("user_id", user_id);
        counting.insert("expires_at", doc! { "$gt": DateTime::now() });
        let limit = i64::try_from(up_to).unwrap_or(i64::MAX);
        let grants = self
            .ticket_grants
            .clone_with_type::<mongodb::bson::Document>();
        let ids = grants
            .find(counting)
            .projection(doc! { "_id": 1 })
            .limit(limit);
        let found = self
            .bounded(async { ids.await?.try_collect::<Vec<_>>().await })
            .await?;
        Ok(found.len() as u64)
    }

    pub async fn delete_ticket_grant(&self, id: ObjectId) -> Result<(), DbError> {
        self.bounded(self.ticket_grants.delete_one(doc! { "_id": id }))
            .await?;
        Ok(())
    }
}
