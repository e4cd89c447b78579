//! The `rooms` collection: chat rooms and their owners.

use std::collections::HashSet;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, doc};
use serde::{Deserialize, Serialize};

use crate::domain::{RoomTitle, SearchQuery};

use super::{Db, DbError};

pub const COLLECTION: &str = "rooms";
/// A search answers with at most this many rooms, newest first.
pub const SEARCH_LIMIT: usize = 100;
/// "My rooms" shows at most this many; nobody scrolls further.
pub const LIST_LIMIT: i64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub title: String,
    pub owner_id: ObjectId,
    pub owner_email: String,
    pub created_at: DateTime,
}

/// What a delete by a given user came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Deleted {
    Yes,
    NotFound,
    NotOwner,
}

impl Db {
    pub async fn insert_room(
        &self,
        title: &RoomTitle,
        owner_id: ObjectId,
        owner_email: &str,
    ) -> Result<RoomDoc, DbError> {
        let room = RoomDoc {
            id: ObjectId::new(),
            title: title.as_str().to_owned(),
            owner_id,
            owner_email: owner_email.to_owned(),
            created_at: DateTime::now(),
        };
        self.rooms.insert_one(&room).await?;
        Ok(room)
    }

    pub async fn find_room(&self, id: ObjectId) -> Result<Option<RoomDoc>, DbError> {
        Ok(self.rooms.find_one(doc! { "_id": id }).await?)
    }

    /// The owner's rooms, newest first (served by the `owner_created` index).
    pub async fn list_rooms_owned_by(&self, owner_id: ObjectId) -> Result<Vec<RoomDoc>, DbError> {
        let cursor = self
            .rooms
            .find(self.object_id_is("owner_id", owner_id))
            .sort(doc! { "created_at": -1, "_id": -1 })
            .limit(LIST_LIMIT)
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// Deletes the room only if `owner_id` owns it: the filter itself carries the ownership
    /// check, so there is no window between checking and deleting.
    pub async fn delete_room_owned_by(
        &self,
        id: ObjectId,
        owner_id: ObjectId,
    ) -> Result<Deleted, DbError> {
        let mut owned = doc! { "_id": id };
        owned.extend(self.object_id_is("owner_id", owner_id));
        let result = self.rooms.delete_one(owned).await?;
        if result.deleted_count == 1 {
            return Ok(Deleted::Yes);
        }
        Ok(match self.find_room(id).await? {
            Some(_) => Deleted::NotOwner,
            None => Deleted::NotFound,
        })
    }

    /// Every room whose title contains `query`, case-insensitively, newest first. Two queries,
    /// merged: the text index finds word matches; a case-insensitive regex of the escaped query
    /// finds any substring (it scans titles: fine at this size, bounded by the 100-character
    /// query). The text index stems and drops non-words (`(a+)+$` is the word `a` to it), so its
    /// answers are kept only when the title does contain the query.
    pub async fn search_rooms(&self, query: &SearchQuery) -> Result<Vec<RoomDoc>, DbError> {
        let limit = SEARCH_LIMIT as i64;
        let mut rooms: Vec<RoomDoc> = Vec::new();

        if let Some(phrase) = text_phrase(query.as_str()) {
            let cursor = self
                .rooms
                .find(doc! { "$text": { "$search": phrase } })
                .sort(doc! { "created_at": -1 })
                .limit(limit)
                .await?;
            let word_matches: Vec<RoomDoc> = cursor.try_collect().await?;
            rooms.extend(
                word_matches
                    .into_iter()
                    .filter(|room| contains_ignoring_case(&room.title, query.as_str())),
            );
        }

        // `i` folds case with Unicode rules: MongoDB's PCRE runs in UTF mode by default, so
        // "ланиро" finds "Планирование" and "ПРИВЕТ" finds "привет мир".
        let cursor = self
            .rooms
            .find(doc! {
                "title": { "$regex": escape_regex(query.as_str()), "$options": "i" }
            })
            .sort(doc! { "created_at": -1 })
            .limit(limit)
            .await?;
        rooms.extend(cursor.try_collect::<Vec<_>>().await?);

        let mut seen = HashSet::new();
        rooms.retain(|room| seen.insert(room.id));
        rooms.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        rooms.truncate(SEARCH_LIMIT);
        Ok(rooms)
    }
}

/// Containment with Unicode lower-casing, as the regex query's `i` option compares.
fn contains_ignoring_case(text: &str, part: &str) -> bool {
    text.to_lowercase().contains(&part.to_lowercase())
}

/// The query as one `$text` phrase. Quotes and backslashes would end or escape the phrase, so
/// they are dropped here (the regex query still matches them literally).
fn text_phrase(query: &str) -> Option<String> {
    let words: String = query.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
    let words = words.trim();
    (!words.is_empty()).then(|| format!("\"{words}\""))
}

/// Escapes every ASCII punctuation character, so the input matches itself and nothing else (in
/// PCRE letters, digits and non-ASCII characters are literal already and must not be escaped).
pub fn escape_regex(input: &str) -> String {
    let mut escaped = String::with_capacity(input.len() * 2);
    for c in input.chars() {
        if c.is_ascii_punctuation() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_regex_metacharacter_is_escaped() {
        assert_eq!(
            escape_regex(".*+?()[]{}|^$\\"),
            r"\.\*\+\?\(\)\[\]\{\}\|\^\$\\"
        );
        assert_eq!(escape_regex("Привет мир 42"), "Привет мир 42");
        assert_eq!(escape_regex("a-b/c#d"), r"a\-b\/c\#d");
    }

    #[test]
    fn containment_ignores_case_in_any_script() {
        assert!(contains_ignoring_case("Планирование спринта", "ПЛАНИР"));
        assert!(contains_ignoring_case("A Room 24", "room 2"));
        assert!(!contains_ignoring_case("A room 24", "(a+)+$"));
    }

    #[test]
    fn the_text_phrase_cannot_break_out_of_its_quotes() {
        assert_eq!(
            text_phrase("hello world").as_deref(),
            Some("\"hello world\"")
        );
        assert_eq!(
            text_phrase("say \"hi\" now").as_deref(),
            Some("\"say hi now\"")
        );
        assert_eq!(text_phrase("\"\"\\\\\"\""), None);
    }
}
