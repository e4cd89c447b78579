//! The `login_failures` collection: one document per failed login and key (the account, the client
//! address), shared by every website replica and kept across restarts, for the login throttle.
//!
//! A failure counts until its `expires_at`; expired ones are never counted, even before the TTL
//! index on `expires_at` removes them. Documents are only ever inserted and deleted, never updated.

use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, doc};
use serde::{Deserialize, Serialize};

use super::{Db, DbError};

pub const COLLECTION: &str = "login_failures";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginFailureDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// What the failure counts against: `account:<email> address:<ip>`, `account:<email>
    /// device:<id>` or `address:<ip>` (`auth::throttle`).
    pub key: String,
    pub at: DateTime,
    pub expires_at: DateTime,
}

impl Db {
    pub async fn insert_login_failures(
        &self,
        keys: &[String],
        window: Duration,
    ) -> Result<(), DbError> {
        let at = DateTime::now();
        let expires_at = at.saturating_add_duration(window);
        let failures: Vec<LoginFailureDoc> = keys
            .iter()
            .map(|key| LoginFailureDoc {
                id: ObjectId::new(),
                key: key.clone(),
                at,
                expires_at,
            })
            .collect();
        if failures.is_empty() {
            return Ok(());
        }
        self.bounded(self.login_failures.insert_many(failures))
            .await?;
        Ok(())
    }

    /// How many failures against `key` still count, stopping at `up_to` (more makes no difference).
    pub async fn count_login_failures(&self, key: &str, up_to: u64) -> Result<u64, DbError> {
        let counting = doc! { "key": key, "expires_at": { "$gt": DateTime::now() } };
        self.bounded(self.login_failures.count_documents(counting).limit(up_to))
            .await
    }

    pub async fn count_login_failures_starting_with(
        &self,
        prefix: &str,
        up_to: u64,
    ) -> Result<u64, DbError> {
        let pattern = format!("^{}", escape_regex(prefix));
        let counting = doc! {
            "key": { "$regex": pattern },
            "expires_at": { "$gt": DateTime::now() },
        };
        self.bounded(self.login_failures.count_documents(counting).limit(up_to))
            .await
    }

    pub async fn delete_login_failures(&self, key: &str) -> Result<(), DbError> {
        self.bounded(self.login_failures.delete_many(doc! { "key": key }))
            .await?;
        Ok(())
    }
}

/// `text` as a regular expression that matches it literally: every character but letters, digits
/// and non-ASCII ones escaped (an email may hold `.`, `+`, `*`...).
fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
