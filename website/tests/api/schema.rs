//! Stored documents against `db/schema.json`'s validators.
//!
//! The MongoDB stand-in does not enforce `$jsonSchema`, so this checker does, for the subset of
//! JSON Schema the file uses; it refuses keywords it does not know, so the schema cannot outgrow
//! the check unnoticed.

use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use regex::Regex;
use serde_json::Value;
use website::db::schema::Schema;

use crate::helpers::{TestApp, create_validated_collections, mongodb_uri, test_config};

/// Every way `value` breaks `schema`, as readable paths; empty when it conforms.
fn violations(schema: &Value, value: &Bson) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

fn check(schema: &Value, value: &Bson, path: &str, errors: &mut Vec<String>) {
    let Some(rules) = schema.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            "title" | "description" => {}
            "bsonType" => {
                let expected = rule.as_str().unwrap_or_default();
                let ok = match expected {
                    "object" => matches!(value, Bson::Document(_)),
                    "string" => matches!(value, Bson::String(_)),
                    "objectId" => matches!(value, Bson::ObjectId(_)),
                    "date" => matches!(value, Bson::DateTime(_)),
                    other => {
                        errors.push(format!("{path}: unsupported bsonType {other}"));
                        true
                    }
                };
                if !ok {
                    errors.push(format!(
                        "{path}: expected {expected}, found {:?}",
                        value.element_type()
                    ));
                }
            }
            "required" => {
                if let Bson::Document(doc) = value {
                    for field in rule
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !doc.contains_key(field) {
                            errors.push(format!("{path}: missing required {field}"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if rule == &Value::Bool(false)
                    && let Bson::Document(doc) = value
                {
                    let allowed = rules.get("properties").and_then(Value::as_object);
                    for key in doc.keys() {
                        if !allowed.is_some_and(|p| p.contains_key(key)) {
                            errors.push(format!("{path}: unexpected field {key}"));
                        }
                    }
                }
            }
            "properties" => {
                if let (Bson::Document(doc), Some(properties)) = (value, rule.as_object()) {
                    for (name, sub) in properties {
                        if let Some(field) = doc.get(name) {
                            check(sub, field, &format!("{path}.{name}"), errors);
                        }
                    }
                }
            }
            "pattern" => {
                if let Bson::String(s) = value {
                    let re = Regex::new(rule.as_str().unwrap_or_default()).expect("schema pattern");
                    if !re.is_match(s) {
                        errors.push(format!("{path}: {s:?} does not match {re}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Bson::String(s) = value {
                    // MongoDB counts code points, as does chars().
                    let len = s.chars().count() as u64;
                    let bound = rule.as_u64().unwrap_or_default();
                    let ok = if keyword == "minLength" {
                        len >= bound
                    } else {
                        len <= bound
                    };
                    if !ok {
                        errors.push(format!("{path}: length {len} breaks {keyword} {bound}"));
                    }
                }
            }
            other => errors.push(format!("{path}: unsupported keyword {other}")),
        }
    }
}

fn validator(collection: &str) -> Value {
    let schema = Schema::embedded().unwrap();
    schema.collections[collection].validator["$jsonSchema"].clone()
}

fn valid_user() -> Document {
    doc! {
        "_id": ObjectId::new(),
        "email": "a@x.io",
        "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "created_at": mongodb::bson::DateTime::now(),
    }
}

fn valid_room() -> Document {
    doc! {
        "_id": ObjectId::new(),
        "title": "Планирование",
        "owner_id": ObjectId::new(),
        "owner_email": "a@x.io",
        "created_at": mongodb::bson::DateTime::now(),
    }
}

fn valid_session() -> Document {
    doc! {
        "_id": "0f".repeat(32),
        "user_id": ObjectId::new(),
        "email": "a@x.io",
        "csrf_token": "ab".repeat(32),
        "created_at": mongodb::bson::DateTime::now(),
        "last_seen_at": mongodb::bson::DateTime::now(),
        "expires_at": mongodb::bson::DateTime::now(),
    }
}

fn valid_login_failure() -> Document {
    doc! {
        "_id": ObjectId::new(),
        "key": "address:203.0.113.7",
        "at": mongodb::bson::DateTime::now(),
        "expires_at": mongodb::bson::DateTime::now(),
    }
}

/// `document` with `field` set to `value` (or removed, for `None`).
fn changed(mut document: Document, field: &str, value: Option<Bson>) -> Document {
    match value {
        Some(value) => document.insert(field, value),
        None => document.remove(field),
    };
    document
}

#[test]
fn sessions_and_login_failures_are_checked_like_the_other_collections() {
    for (collection, document) in [
        ("sessions", valid_session()),
        ("login_failures", valid_login_failure()),
    ] {
        let errors = violations(&validator(collection), &Bson::Document(document));
        assert_eq!(errors, Vec::<String>::new(), "{collection}");
    }

    let as_text = |text: &str| Some(Bson::String(text.into()));
    assert_all_refused(
        "sessions",
        valid_session,
        &[
            (as_text("cookie-value"), "_id", "the raw id, not its hash"),
            (as_text("ab"), "csrf_token", "a short token"),
            (as_text("A@X.io"), "email", "an upper-case email"),
            (as_text("tomorrow"), "expires_at", "a date as text"),
            (as_text("someone"), "user_id", "a user id as text"),
            (None, "user_id", "no user"),
            (Some(Bson::Boolean(true)), "admin", "an extra field"),
        ],
    );
    assert_all_refused(
        "login_failures",
        valid_login_failure,
        &[
            (as_text("user:a@x.io"), "key", "an unknown kind of key"),
            (as_text("soon"), "expires_at", "a date as text"),
            (None, "at", "no time"),
        ],
    );
}

/// Each case — `valid()` with one field changed (or removed, for `None`) — breaks the validator
/// of `collection`.
fn assert_all_refused(
    collection: &str,
    valid: fn() -> Document,
    cases: &[(Option<Bson>, &str, &str)],
) {
    let schema = validator(collection);
    for (value, field, why) in cases {
        let document = changed(valid(), field, value.clone());
        assert!(
            !violations(&schema, &Bson::Document(document)).is_empty(),
            "{collection}: {why} accepted"
        );
    }
}

#[test]
fn the_checker_accepts_good_documents_and_rejects_bad_ones() {
    let users = validator("users");
    let rooms = validator("rooms");
    assert_eq!(
        violations(&users, &Bson::Document(valid_user())),
        Vec::<String>::new()
    );
    assert_eq!(
        violations(&rooms, &Bson::Document(valid_room())),
        Vec::<String>::new()
    );

    let bad_users: Vec<(Document, &str)> = vec![
        (
            {
                let mut d = valid_user();
                d.remove("password_hash");
                d
            },
            "missing field",
        ),
        (
            {
                let mut d = valid_user();
                d.insert("admin", true);
                d
            },
            "extra field",
        ),
        (
            {
                let mut d = valid_user();
                d.insert("email", "A@X.io");
                d
            },
            "upper-case email",
        ),
        (
            {
                let mut d = valid_user();
                d.insert("email", "no-at-sign");
                d
            },
            "no @",
        ),
        (
            {
                let mut d = valid_user();
                d.insert("password_hash", "plaintext");
                d
            },
            "not argon2id",
        ),
        (
            {
                let mut d = valid_user();
                d.insert("created_at", "yesterday");
                d
            },
            "date as string",
        ),
        (
            {
                let mut d = valid_user();
                d.insert("_id", "abc");
                d
            },
            "id as string",
        ),
    ];
    for (doc, why) in bad_users {
        assert!(
            !violations(&users, &Bson::Document(doc)).is_empty(),
            "users: {why} accepted"
        );
    }
    let bad_rooms: Vec<(Document, &str)> = vec![
        (
            {
                let mut d = valid_room();
                d.insert("title", "");
                d
            },
            "empty title",
        ),
        (
            {
                let mut d = valid_room();
                d.insert("title", "ж".repeat(101));
                d
            },
            "101 characters",
        ),
        (
            {
                let mut d = valid_room();
                d.insert("owner_id", "someone");
                d
            },
            "owner id as string",
        ),
        (
            {
                let mut d = valid_room();
                d.remove("owner_email");
                d
            },
            "missing owner email",
        ),
    ];
    for (doc, why) in bad_rooms {
        assert!(
            !violations(&rooms, &Bson::Document(doc)).is_empty(),
            "rooms: {why} accepted"
        );
    }
    assert!(!violations(&rooms, &Bson::String("not a document".into())).is_empty());
}

#[tokio::test]
async fn every_document_the_website_writes_matches_the_schema() {
    let app = TestApp::spawn().await;
    let ann = app.signed_up_browser("Ann@Example.org").await;
    let bob = app.signed_up_browser("bob@example.org").await;
    ann.created_room("Планирование").await;
    ann.created_room(&"ж".repeat(100)).await;
    bob.created_room(r#"<b>"quoted" & marked</b>"#).await;
    // Two sessions (Ann's, Bob's) and two failures (the account's and the address's).
    let failed = app
        .new_browser()
        .login("bob@example.org", "wrong password")
        .await;
    assert_eq!(failed.status(), reqwest::StatusCode::UNAUTHORIZED);

    for (collection, expected) in [
        ("users", 2),
        ("rooms", 3),
        ("sessions", 2),
        ("login_failures", 2),
    ] {
        let schema = validator(collection);
        let documents: Vec<Document> = match collection {
            "users" => app.db.users().clone_with_type::<Document>(),
            "rooms" => app.db.rooms().clone_with_type::<Document>(),
            "sessions" => app.db.sessions().clone_with_type::<Document>(),
            _ => app.db.login_failures().clone_with_type::<Document>(),
        }
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
        assert_eq!(documents.len(), expected, "{collection}");
        for document in documents {
            let errors = violations(&schema, &Bson::Document(document.clone()));
            assert!(
                errors.is_empty(),
                "{collection}: {document} breaks the schema: {errors:?}"
            );
        }
    }
}

#[tokio::test]
async fn ensuring_the_indexes_again_is_harmless() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("idx@example.org").await;
    me.created_room("indexed").await;

    // Startup ensured them once already; a restart does it again.
    app.db
        .ensure_indexes()
        .await
        .expect("creating existing indexes is a no-op");

    assert_eq!(me.my_rooms().await.len(), 1);
}

#[tokio::test]
async fn test_databases_get_the_schema_validators_before_the_application_starts() {
    // The stand-in keeps no collection options, so what is checked is what is asked of the server.
    let mut options = ClientOptions::parse(mongodb_uri()).await.unwrap();
    let creates = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&creates);
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event
            && started.command_name == "create"
        {
            seen.lock().unwrap().push(started.command);
        }
    }));
    let client = mongodb::Client::with_options(options).unwrap();
    let database = client.database(&test_config().mongodb_db);

    create_validated_collections(&database).await;
    database.drop().await.unwrap();

    let creates = creates.lock().unwrap();
    let schema = Schema::embedded().unwrap();
    assert_eq!(creates.len(), schema.collections.len());
    for (name, spec) in &schema.collections {
        let create = creates
            .iter()
            .find(|c| c.get_str("create") == Ok(name))
            .unwrap_or_else(|| panic!("{name} is created"));
        let expected = mongodb::bson::to_document(&spec.validator).unwrap();
        assert_eq!(create.get_document("validator"), Ok(&expected), "{name}");
        assert_eq!(create.get_str("validationLevel"), Ok("strict"), "{name}");
        assert_eq!(create.get_str("validationAction"), Ok("error"), "{name}");
    }
}
