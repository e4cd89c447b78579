//! What travels through Redis, and under which names. Pure: nothing here talks to Redis.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::protocol::Frame;

const CHANNEL_PREFIX: &str = "chat:room:";
/// Every replica listens here, members in the room or not: it must turn away the tickets still
/// out for a deleted room.
pub const DELETED_CHANNEL: &str = "chat:rooms-deleted";
/// Emails cannot contain it.
const FIELD_SEPARATOR: char = '\u{1f}';

const TAG_MESSAGE: u8 = b'm';
const TAG_PRESENCE: u8 = b'p';

/// Writes one replica's part of a room's presence hash and publishes it, atomically, so the hash
/// and the channel never disagree. `KEYS[1]`: the hash. `ARGV`: channel, payload, hash TTL (ms),
/// the replica's field prefix, mode (`all` first drops the replica's fields), email / tabs pairs.
const WRITE_PRESENCE: &str = r"
local key, prefix = KEYS[1], ARGV[4]
if ARGV[5] == 'all' then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, #prefix) == prefix then redis.call('HDEL', key, field) end
  end
end
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '0' then
    redis.call('HDEL', key, prefix .. ARGV[i])
  else
    redis.call('HSET', key, prefix .. ARGV[i], ARGV[i + 1])
  end
end
if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[3]) end
return redis.call('PUBLISH', ARGV[1], ARGV[2])
";

pub fn channel(room_id: &str) -> String {
    format!("{CHANNEL_PREFIX}{room_id}")
}

pub fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix(CHANNEL_PREFIX)
}

pub fn presence_key(room_id: &str) -> String {
    format!("chat:room:{room_id}:presence")
}

pub fn replica_key(replica: &str) -> String {
    format!("chat:replica:{replica}")
}

pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WireOp {
    Tabs {
        replica: String,
        user: String,
        tabs: usize,
    },
    /// `replica` holds exactly these people, nobody else.
    All {
        replica: String,
        people: Vec<(String, usize)>,
    },
}

#[derive(Debug, PartialEq)]
pub enum Payload {
    Message(Frame),
    Presence(WireOp),
}

/// A receiving replica hands the same bytes to all its members without parsing anything.
pub fn message_payload(frame: &Frame) -> Bytes {
    let mut payload = Vec::with_capacity(frame.len() + 1);
    payload.push(TAG_MESSAGE);
    payload.extend_from_slice(frame.as_bytes());
    Bytes::from(payload)
}

pub fn parse_payload(payload: &Bytes) -> Result<Payload, String> {
    match payload.first() {
        Some(&TAG_MESSAGE) => Utf8Bytes::try_from(payload.slice(1..))
            .map(Payload::Message)
            .map_err(|error| format!("a room channel carried a bad message: {error}")),
        Some(&TAG_PRESENCE) => serde_json::from_slice(&payload[1..])
            .map(Payload::Presence)
            .map_err(|error| format!("a room channel carried bad presence: {error}")),
        _ => Err("a room channel carried an unknown payload".to_owned()),
    }
}

pub fn presence_args(replica: &str, room_id: &str, op: &WireOp, ttl: Duration) -> Vec<String> {
    let mut payload = String::from(char::from(TAG_PRESENCE));
    // A small struct of strings and numbers cannot fail to serialize.
    payload.push_str(&serde_json::to_string(op).unwrap_or_default());
    let mut args = vec![
        WRITE_PRESENCE.to_owned(),
        "1".to_owned(),
        presence_key(room_id),
        channel(room_id),
        payload,
        millis(ttl).to_string(),
        format!("{replica}{FIELD_SEPARATOR}"),
    ];
    match op {
        WireOp::Tabs { user, tabs, .. } => {
            args.extend(["one".to_owned(), user.clone(), tabs.to_string()]);
        }
        WireOp::All { people, .. } => {
            args.push("all".into());
            for (user, tabs) in people {
                args.extend([user.clone(), tabs.to_string()]);
            }
        }
    }
    args
}

/// (replica, email, tabs).
pub fn parse_presence_field<'a>(field: &'a str, tabs: &str) -> Option<(&'a str, &'a str, usize)> {
    let (replica, user) = field.split_once(FIELD_SEPARATOR)?;
    Some((replica, user, tabs.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_travels_as_its_own_json_bytes_after_a_tag() {
        let frame = Frame::from(r#"{"type":"message","text":"привет"}"#);
        let payload = message_payload(&frame);
        assert_eq!(payload[0], b'm');
        assert_eq!(parse_payload(&payload), Ok(Payload::Message(frame)));
    }

    #[test]
    fn a_presence_write_announces_what_it_wrote() {
        let op = WireOp::Tabs {
            replica: "r1".into(),
            user: "ann@x.org".into(),
            tabs: 2,
        };
        let args = presence_args(
            "r1",
            "65f1c0ffee0123456789abcd",
            &op,
            Duration::from_secs(60),
        );

        assert_eq!(
            args[1..4],
            [
                "1",
                "chat:room:65f1c0ffee0123456789abcd:presence",
                "chat:room:65f1c0ffee0123456789abcd"
            ]
        );
        assert_eq!(args[5], "60000");
        assert_eq!(args[6], "r1\u{1f}");
        assert_eq!(args[7..], ["one", "ann@x.org", "2"]);
        let announced = Bytes::from(args[4].clone().into_bytes());
        assert_eq!(parse_payload(&announced), Ok(Payload::Presence(op)));
    }

    #[test]
    fn a_whole_part_replaces_the_replicas_fields() {
        let op = WireOp::All {
            replica: "r1".into(),
            people: vec![("ann@x.org".into(), 1), ("bob@x.org".into(), 3)],
        };
        let args = presence_args(
            "r1",
            "65f1c0ffee0123456789abcd",
            &op,
            Duration::from_secs(60),
        );
        assert_eq!(args[7..], ["all", "ann@x.org", "1", "bob@x.org", "3"]);
    }

    #[test]
    fn fields_and_channels_are_read_back() {
        assert_eq!(
            parse_presence_field("r1\u{1f}ann@x.org", "2"),
            Some(("r1", "ann@x.org", 2))
        );
        assert_eq!(parse_presence_field("no separator", "2"), None);
        assert_eq!(parse_presence_field("r1\u{1f}ann@x.org", "many"), None);
        assert_eq!(room_of_channel(&channel("abc")), Some("abc"));
        assert_eq!(room_of_channel(DELETED_CHANNEL), None);
        assert!(parse_payload(&Bytes::from_static(b"x")).is_err());
    }
}
