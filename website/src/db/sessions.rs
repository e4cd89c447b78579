//! The `sessions` collection (the tower-sessions store on it is `auth::session_store`). A session
//! holds one value, the signed-in [`SessionUser`] under [`USER_KEY`]; any other key is refused, so
//! what a session holds changes only with `db/schema.json`. The `_id` is the SHA-256 of the
//! session id, so the collection alone opens no session. An expired record is never loaded, even
//! before the TTL index removes it.

use std::collections::HashMap;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, doc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;

use super::error::is_duplicate_key;
use super::{Db, DbError};

pub const COLLECTION: &str = "sessions";

/// The session data key of the signed-in user, the one key a stored session holds.
pub const USER_KEY: &str = "user";

/// What a session holds about its user, under [`USER_KEY`]. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub user_id: ObjectId,
    pub email: String,
    pub csrf_token: String,
    pub signed_in_at: i64,
    pub last_seen_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: ObjectId,
    pub email: String,
    pub csrf_token: String,
    /// When the user signed in: a session record is created then, under a fresh id.
    pub created_at: DateTime,
    pub last_seen_at: DateTime,
    /// The end of the idle timeout. The TTL index removes the record after it.
    pub expires_at: DateTime,
}

pub fn stored_id(id: &Id) -> String {
    format!("{:x}", Sha256::digest(id.to_string().as_bytes()))
}

fn date_of_seconds(seconds: i64) -> DateTime {
    DateTime::from_millis(seconds.saturating_mul(1000))
}

fn seconds_of_date(date: DateTime) -> i64 {
    date.timestamp_millis().div_euclid(1000)
}

fn date_of_time(time: OffsetDateTime) -> DateTime {
    let millis = time.unix_timestamp_nanos() / 1_000_000;
    DateTime::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}

fn time_of_date(date: DateTime) -> OffsetDateTime {
    let nanos = i128::from(date.timestamp_millis()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl SessionDoc {
    pub fn from_record(record: &Record) -> Result<Self, session_store::Error> {
        let refuse = |why: String| session_store::Error::Encode(why);
        if let Some(other) = record.data.keys().find(|key| *key != USER_KEY) {
            return Err(refuse(format!(
                "a stored session holds only {USER_KEY:?}, not {other:?} (db/schema.json)"
            )));
        }
        let user = record
            .data
            .get(USER_KEY)
            .ok_or_else(|| refuse("a session without a signed-in user is not stored".into()))?;
        let user: SessionUser =
            serde_json::from_value(user.clone()).map_err(|e| refuse(e.to_string()))?;
        Ok(Self {
            id: stored_id(&record.id),
            user_id: user.user_id,
            email: user.email,
            csrf_token: user.csrf_token,
            created_at: date_of_seconds(user.signed_in_at),
            last_seen_at: date_of_seconds(user.last_seen_at),
            expires_at: date_of_time(record.expiry_date),
        })
    }

    pub fn into_record(self, id: Id) -> Result<Record, session_store::Error> {
        let user = SessionUser {
            user_id: self.user_id,
            email: self.email,
            csrf_token: self.csrf_token,
            signed_in_at: seconds_of_date(self.created_at),
            last_seen_at: seconds_of_date(self.last_seen_at),
        };
        let user =
            serde_json::to_value(user).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Record {
            id,
            data: HashMap::from([(USER_KEY.to_owned(), user)]),
            expiry_date: time_of_date(self.expires_at),
        })
    }
}

impl Db {
    /// Stores a new session; `false` when its id is taken already (nothing is overwritten).
    pub async fn insert_session(&self, session: &SessionDoc) -> Result<bool, DbError> {
        self.bounded(async {
            match self.sessions.insert_one(session).await {
                Ok(_) => Ok(true),
                Err(e) if is_duplicate_key(&e) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    pub async fn find_live_session(&self, id: &str) -> Result<Option<SessionDoc>, DbError> {
        let live = doc! { "_id": id, "expires_at": { "$gt": DateTime::now() } };
        self.bounded(self.sessions.find_one(live)).await
    }

    /// Replaces a stored session that is still live. One that has ended meanwhile (logged out
    /// through another replica, expired) stays ended: a save never brings a session back.
    pub async fn update_live_session(&self, session: &SessionDoc) -> Result<(), DbError> {
        let live = doc! { "_id": &session.id, "expires_at": { "$gt": DateTime::now() } };
        self.bounded(self.sessions.replace_one(live, session))
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id: &str) -> Result<(), DbError> {
        self.bounded(self.sessions.delete_one(doc! { "_id": id }))
            .await?;
        Ok(())
    }

    /// Ends every session of a user, on every replica (each one's cache lets go within seconds).
    #[cfg(feature = "test-support")]
    pub async fn delete_sessions_of(&self, user_id: ObjectId) -> Result<u64, DbError> {
        let of_user = self.object_id_is("user_id", user_id);
        let result = self.bounded(self.sessions.delete_many(of_user)).await?;
        Ok(result.deleted_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> SessionUser {
        SessionUser {
            user_id: ObjectId::new(),
            email: "a@x.io".into(),
            csrf_token: "ab".repeat(32),
            signed_in_at: 1_700_000_000,
            last_seen_at: 1_700_000_060,
        }
    }

    fn record_of(data: HashMap<String, serde_json::Value>) -> Record {
        Record {
            id: Id::default(),
            data,
            expiry_date: OffsetDateTime::from_unix_timestamp(1_700_003_600).unwrap(),
        }
    }

    #[test]
    fn a_record_becomes_readable_fields_and_comes_back_the_same() {
        let user = user();
        let record = record_of(HashMap::from([(
            USER_KEY.to_owned(),
            serde_json::to_value(&user).unwrap(),
        )]));

        let stored = SessionDoc::from_record(&record).unwrap();

        assert_eq!(stored.user_id, user.user_id);
        assert_eq!(stored.email, "a@x.io");
        assert_eq!(stored.created_at.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(stored.last_seen_at.timestamp_millis(), 1_700_000_060_000);
        assert_eq!(stored.expires_at.timestamp_millis(), 1_700_003_600_000);
        assert_eq!(stored.id, stored_id(&record.id));
        let back = stored.into_record(record.id).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn the_stored_id_is_a_hash_not_the_cookie_value() {
        let id = Id::default();
        let stored = stored_id(&id);
        assert_eq!(stored.len(), 64);
        assert!(stored.bytes().all(|b| b.is_ascii_hexdigit()), "{stored}");
        assert!(!stored.contains(&id.to_string()));
        assert_eq!(stored, stored_id(&id), "the same id, the same hash");
        assert_ne!(stored, stored_id(&Id::default()));
    }

    #[test]
    fn records_without_a_user_or_with_other_keys_are_refused() {
        let value = serde_json::to_value(user()).unwrap();
        let cases = [
            (HashMap::new(), "no user"),
            (
                HashMap::from([("flash".to_owned(), serde_json::json!("hi"))]),
                "another key only",
            ),
            (
                HashMap::from([
                    (USER_KEY.to_owned(), value),
                    ("flash".to_owned(), serde_json::json!("hi")),
                ]),
                "another key besides the user",
            ),
            (
                HashMap::from([(USER_KEY.to_owned(), serde_json::json!({"user_id": 1}))]),
                "a malformed user",
            ),
        ];
        for (data, why) in cases {
            assert!(
                matches!(
                    SessionDoc::from_record(&record_of(data)),
                    Err(session_store::Error::Encode(_))
                ),
                "{why} was accepted"
            );
        }
    }
}
