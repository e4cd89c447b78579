//! `db/schema.json`, the single source of truth for collection validators and indexes.
//!
//! The website reads the index definitions from it at startup; the validators are applied by the
//! database's init script (the app user cannot `collMod`). The tests create their databases with
//! the same validators and also check stored documents against them.

use std::collections::BTreeMap;
use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::Document;
use mongodb::options::IndexOptions;
use serde::Deserialize;

pub const SCHEMA_JSON: &str = include_str!("../../../db/schema.json");

#[derive(Debug, Deserialize)]
pub struct Schema {
    pub database: String,
    pub collections: BTreeMap<String, CollectionSpec>,
}

#[derive(Debug, Deserialize)]
pub struct CollectionSpec {
    /// Kept as JSON: the tests' validator checker reads it.
    pub validator: serde_json::Value,
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
}

#[derive(Debug, Deserialize)]
pub struct IndexSpec {
    pub name: String,
    /// Deserialized straight into a BSON document, which keeps the key order of the file:
    /// a compound index's field order is part of its meaning.
    pub key: Document,
    #[serde(default)]
    pub unique: Option<bool>,
    #[serde(default)]
    pub default_language: Option<String>,
    /// A TTL index: MongoDB removes a document this long after the date in its (single) key field.
    #[serde(default, rename = "expireAfterSeconds")]
    pub expire_after_seconds: Option<u64>,
}

impl Schema {
    pub fn embedded() -> Result<Self, serde_json::Error> {
        serde_json::from_str(SCHEMA_JSON)
    }
}

impl IndexSpec {
    pub fn is_text(&self) -> bool {
        self.key.values().any(|v| v.as_str() == Some("text"))
    }
}

impl CollectionSpec {
    pub fn index_models(&self) -> Vec<IndexModel> {
        self.indexes
            .iter()
            .map(|index| {
                let options = IndexOptions::builder()
                    .name(index.name.clone())
                    .unique(index.unique)
                    .default_language(index.default_language.clone())
                    .expire_after(index.expire_after_seconds.map(Duration::from_secs))
                    .build();
                IndexModel::builder()
                    .keys(index.key.clone())
                    .options(options)
                    .build()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schema_defines_the_contract_indexes() {
        let schema = Schema::embedded().unwrap();
        assert_eq!(schema.database, "webchat");
        let users = &schema.collections["users"];
        assert!(
            users
                .indexes
                .iter()
                .any(|i| i.name == "email_unique" && i.unique == Some(true))
        );
        let rooms = &schema.collections["rooms"];
        let text = rooms
            .indexes
            .iter()
            .find(|i| i.name == "title_text")
            .unwrap();
        assert_eq!(text.key.get_str("title").unwrap(), "text");
        let owner = rooms
            .indexes
            .iter()
            .find(|i| i.name == "owner_created")
            .unwrap();
        let order: Vec<&str> = owner.key.keys().map(String::as_str).collect();
        assert_eq!(
            order,
            ["owner_id", "created_at"],
            "compound key order is kept"
        );
        assert_eq!(rooms.index_models().len(), 2);
    }

    #[test]
    fn sessions_and_login_failures_expire_by_a_ttl_index_on_their_expiry_date() {
        let schema = Schema::embedded().unwrap();
        for name in ["sessions", "login_failures"] {
            let spec = &schema.collections[name];
            let ttl: Vec<&IndexSpec> = spec
                .indexes
                .iter()
                .filter(|i| i.expire_after_seconds.is_some())
                .collect();
            assert_eq!(ttl.len(), 1, "{name}: one TTL index");
            assert_eq!(ttl[0].expire_after_seconds, Some(0), "{name}");
            let fields: Vec<&str> = ttl[0].key.keys().map(String::as_str).collect();
            assert_eq!(
                fields,
                ["expires_at"],
                "{name}: TTL on the expiry date alone"
            );
            let model = &spec.index_models()[spec
                .indexes
                .iter()
                .position(|i| i.name == ttl[0].name)
                .unwrap()];
            assert_eq!(
                model.options.as_ref().and_then(|o| o.expire_after),
                Some(Duration::ZERO),
                "{name}: the option reaches the driver"
            );
        }
    }
}
