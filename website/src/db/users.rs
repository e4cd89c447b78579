//! The `users` collection: accounts.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, doc};
use serde::{Deserialize, Serialize};

use crate::domain::Email;

use super::error::is_duplicate_key;
use super::{Db, DbError};

pub const COLLECTION: &str = "users";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime,
}

impl UserDoc {
    pub fn email(&self) -> Email {
        Email::from_trusted(self.email.clone())
    }
}

impl Db {
    /// Creates an account; the unique index on `email` turns a second registration of the same
    /// address into [`DbError::EmailTaken`], race-free.
    pub async fn insert_user(
        &self,
        email: &Email,
        password_hash: String,
    ) -> Result<UserDoc, DbError> {
        let user = UserDoc {
            id: ObjectId::new(),
            email: email.as_str().to_owned(),
            password_hash,
            created_at: DateTime::now(),
        };
        match self.users.insert_one(&user).await {
            Ok(_) => Ok(user),
            Err(e) if is_duplicate_key(&e) => Err(DbError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn find_user_by_email(&self, email: &Email) -> Result<Option<UserDoc>, DbError> {
        Ok(self
            .users
            .find_one(doc! { "email": email.as_str() })
            .await?)
    }

    pub async fn find_user_by_id(&self, id: ObjectId) -> Result<Option<UserDoc>, DbError> {
        Ok(self.users.find_one(doc! { "_id": id }).await?)
    }
}
