//! The chat's events as the load clients tell them apart: by their `type`, parsed (serde), so
//! neither field order nor new fields change what is counted. Only `type` and `text` are read:
//! the fields a client skips cost it no allocation, so the generator's cost per frame, which
//! counts in the latency it measures, does not grow with what else an event carries. Pinned by a
//! fixture of the chat's own frames (`fixtures/events.jsonl`).

use std::borrow::Cow;

use serde::Deserialize;

/// One server event, as far as the load generator cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Message {
        text: Cow<'a, str>,
    },
    Joined,
    Left,
    /// A coalesced summary of many joins and leaves.
    Presence,
    Error,
    /// `welcome`, `room_deleted` and anything newer: not counted.
    Other,
}

/// The two fields the generator reads; serde skips the rest without keeping them.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// The event in `frame`, or `None` when it is not a JSON object with a known shape.
    pub fn parse(frame: &'a str) -> Option<Self> {
        let Fields { kind, text } = serde_json::from_str(frame).ok()?;
        Some(match &*kind {
            "message" => Event::Message { text: text? },
            "joined" => Event::Joined,
            "left" => Event::Left,
            "presence" => Event::Presence,
            "error" => Event::Error,
            _ => Event::Other,
        })
    }
}

/// A load message's text: `lg:<due>:<measured 0|1>:<sent>:<padding>`, `due` and `sent` in µs since
/// the run's start: when the message was scheduled, and when its sender got to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadText {
    pub due_micros: u64,
    pub measured: bool,
    pub sent_micros: u64,
}

impl LoadText {
    pub fn format(self, padding: &str) -> String {
        format!(
            "lg:{}:{}:{}:{padding}",
            self.due_micros,
            u8::from(self.measured),
            self.sent_micros
        )
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix("lg:")?.splitn(4, ':');
        let due_micros = parts.next()?.parse().ok()?;
        let measured = match parts.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        let sent_micros = parts.next()?.parse().ok()?;
        Some(Self {
            due_micros,
            measured,
            sent_micros,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of the fixture: the chat's frames, some with their fields in another order or
    /// with fields added, and what each must be read as.
    #[test]
    fn the_chats_frames_are_told_apart_by_type_whatever_their_field_order() {
        let fixture = include_str!("../tests/fixtures/events.jsonl");
        let mut seen = 0;
        for line in fixture.lines().filter(|l| !l.trim().is_empty()) {
            let (expected, frame) = line.split_once(' ').expect("<kind> <frame>");
            let kind = match Event::parse(frame) {
                Some(Event::Message { text }) => match LoadText::parse(&text) {
                    Some(load) if load.measured => "measured",
                    Some(_) => "warmup",
                    None => "message",
                },
                Some(Event::Joined) => "joined",
                Some(Event::Left) => "left",
                Some(Event::Presence) => "presence",
                Some(Event::Error) => "error",
                Some(Event::Other) => "other",
                None => "unreadable",
            };
            assert_eq!(kind, expected, "{frame}");
            seen += 1;
        }
        assert!(seen >= 12, "the fixture has {seen} frames");
    }

    #[test]
    fn a_load_text_round_trips() {
        let load = LoadText {
            due_micros: 1_500_000,
            measured: true,
            sent_micros: 1_500_700,
        };
        assert_eq!(LoadText::parse(&load.format("xx")), Some(load));
        assert_eq!(LoadText::parse("hello"), None);
        assert_eq!(LoadText::parse("lg:12:2:13:"), None);
        assert_eq!(LoadText::parse("lg:12:1:"), None);
    }
}
