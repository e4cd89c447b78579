//! The wire format: JSON text frames, `type`-tagged, as chat/README.md ("Events") documents them.
//! Fields beyond the contract are additive: clients ignore what they do not know.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::Limits;

/// Cloning it shares the bytes, it does not copy them.
pub type Frame = Utf8Bytes;

/// Enough for a line like "Anna, Boris and 37 others joined", and small whatever the crowd.
pub const SUMMARY_NAMES: usize = 10;

/// What a client sends, its text borrowed from the frame where no escape had to be undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent<'a> {
    Message { text: Cow<'a, str> },
}

/// The two fields a client's frame is read for; serde skips the rest without keeping them,
/// where an internally tagged enum would first buffer every field to find `type`.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Welcome {
        room: String,
        room_id: String,
        you: String,
        members: Vec<String>,
        limits: AnnouncedLimits,
    },
    Joined {
        user: String,
        online: usize,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        first: bool,
    },
    Message {
        user: String,
        text: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Left {
        user: String,
        online: usize,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        last: bool,
    },
    /// Instead of one `joined` / `left` per connection when presence changes come in a burst.
    Presence {
        joined: Vec<String>,
        joined_count: usize,
        left: Vec<String>,
        left_count: usize,
        online: usize,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    RoomDeleted {
        room_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncedLimits {
    pub max_text_chars: usize,
    pub max_frame_bytes: usize,
    pub messages_per_second: u32,
    pub messages_burst: u32,
}

impl From<&Limits> for AnnouncedLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            max_text_chars: limits.max_text_chars,
            max_frame_bytes: limits.max_frame_bytes,
            messages_per_second: limits.messages_per_second,
            messages_burst: limits.messages_burst,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    UnknownType,
    InvalidEvent,
    EmptyText,
    TextTooLong,
    RateLimited,
    BinaryNotSupported,
}

impl ServerEvent {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }

    pub fn to_frame(&self) -> Frame {
        serde_json::to_string(self)
            .expect("server events hold only strings, numbers, bools and UTC timestamps")
            .into()
    }
}

/// The time a server event carries: UTC, to the microsecond. A browser's `Date` keeps the
/// milliseconds; the replicas' broker lag (`rooms/redis/tasks.rs`) is read from it too, and needs
/// more. The nanoseconds would only make every frame 3 bytes longer.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond())
        .expect("the microsecond of a valid time is valid")
}

/// Tells apart the ways a frame can be wrong, so the client learns which.
pub fn parse_client_event(frame: &str) -> Result<ClientEvent<'_>, ServerEvent> {
    match serde_json::from_str(frame) {
        Ok(Incoming {
            kind,
            text: Some(text),
        }) if kind == "message" => Ok(ClientEvent::Message { text }),
        _ => Err(classify_invalid(frame)),
    }
}

/// Only called for a frame that did not parse, so the second look costs nothing on the hot path.
fn classify_invalid(text: &str) -> ServerEvent {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text) else {
        return ServerEvent::error(ErrorCode::InvalidJson, "frames must be JSON objects");
    };
    match fields.get("type").and_then(|t| t.as_str()) {
        Some("message") => ServerEvent::error(
            ErrorCode::InvalidEvent,
            r#"a message is {"type":"message","text":"..."}"#,
        ),
        _ => ServerEvent::error(
            ErrorCode::UnknownType,
            "the only event a client sends is \"message\"",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_client_message_parses_and_ignores_extra_fields() {
        assert_eq!(
            parse_client_event(r#"{"type":"message","text":"hi","client_id":7}"#).unwrap(),
            ClientEvent::Message { text: "hi".into() }
        );
    }

    #[test]
    fn a_client_message_keeps_its_escapes_undone_and_its_fields_in_any_order() {
        assert_eq!(
            parse_client_event(r#"{"text":"say \"hi\"\n","type":"message"}"#).unwrap(),
            ClientEvent::Message {
                text: "say \"hi\"\n".into()
            }
        );
    }

    #[test]
    fn server_times_are_whole_microseconds() {
        let at = now();
        assert_eq!(at.nanosecond() % 1_000, 0);
        assert!(OffsetDateTime::now_utc() - at < time::Duration::seconds(1));
        let stamp = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let fraction = stamp
            .trim_end_matches('Z')
            .rsplit_once('.')
            .map_or("", |(_, f)| f);
        assert!(fraction.len() <= 6, "{stamp}");
    }

    #[test]
    fn bad_client_frames_get_the_matching_error_code() {
        let cases = [
            ("not json", ErrorCode::InvalidJson),
            ("[1,2]", ErrorCode::InvalidJson),
            (r#"{"text":"no type"}"#, ErrorCode::UnknownType),
            (r#"{"type":"shout","text":"hi"}"#, ErrorCode::UnknownType),
            (r#"{"type":"message"}"#, ErrorCode::InvalidEvent),
            (r#"{"type":"message","text":5}"#, ErrorCode::InvalidEvent),
        ];
        for (frame, expected) in cases {
            match parse_client_event(frame) {
                Err(ServerEvent::Error { code, .. }) => assert_eq!(code, expected, "for {frame}"),
                other => panic!("{frame} gave {other:?}"),
            }
        }
    }

    #[test]
    fn server_events_have_the_contract_shape() {
        let at = datetime!(2026-03-01 12:00:00 UTC);
        let message = ServerEvent::Message {
            user: "ann@example.org".into(),
            text: "hi".into(),
            at,
        };
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::json!({
                "type": "message", "user": "ann@example.org", "text": "hi",
                "at": "2026-03-01T12:00:00Z"
            })
        );
        let left = ServerEvent::Left {
            user: "ann@example.org".into(),
            online: 0,
            at,
            last: true,
        };
        assert_eq!(
            serde_json::to_value(&left).unwrap(),
            serde_json::json!({
                "type": "left", "user": "ann@example.org", "online": 0,
                "at": "2026-03-01T12:00:00Z", "last": true
            })
        );
        let presence = ServerEvent::Presence {
            joined: vec!["ann@example.org".into(), "bob@example.org".into()],
            joined_count: 39,
            left: vec![],
            left_count: 0,
            online: 40,
            at,
        };
        assert_eq!(
            serde_json::to_value(&presence).unwrap(),
            serde_json::json!({"type":"presence","joined":["ann@example.org","bob@example.org"],
                "joined_count":39,"left":[],"left_count":0,"online":40,"at":"2026-03-01T12:00:00Z"})
        );
        let error = ServerEvent::error(ErrorCode::RateLimited, "slow down");
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            serde_json::json!({"type":"error","code":"rate_limited","message":"slow down"})
        );
    }

    #[test]
    fn every_server_event_round_trips_through_its_frame() {
        let at = datetime!(2026-03-01 12:00:00.5 UTC);
        let events = [
            ServerEvent::Welcome {
                room: "Rust".into(),
                room_id: "65f1c0ffee0123456789abcd".into(),
                you: "ann@example.org".into(),
                members: vec!["ann@example.org".into()],
                limits: AnnouncedLimits::from(&Limits::default()),
            },
            ServerEvent::Joined {
                user: "a@b.c".into(),
                online: 2,
                at,
                first: true,
            },
            ServerEvent::Message {
                user: "a@b.c".into(),
                text: "<b>\"hi\"</b>".into(),
                at,
            },
            ServerEvent::Left {
                user: "a@b.c".into(),
                online: 1,
                at,
                last: false,
            },
            ServerEvent::Presence {
                joined: vec!["a@b.c".into()],
                joined_count: 12,
                left: vec!["d@e.f".into()],
                left_count: 1,
                online: 30,
                at,
            },
            ServerEvent::error(ErrorCode::TextTooLong, "too long"),
        ];
        for event in events {
            let frame = event.to_frame();
            let back: ServerEvent = serde_json::from_str(frame.as_str()).unwrap();
            assert_eq!(back, event);
        }
    }
}
