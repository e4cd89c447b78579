//! A server's WebSocket frames as bytes (RFC 6455 §5.2): a whole message (FIN set), never masked.
//! With no mask, a frame's head depends only on its opcode and length, so a room encodes an
//! event once and every member's writer sends the same bytes: with one send(2) when the event is
//! all it has to write.

use bytes::{Buf, Bytes};
use serde::Serialize;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::protocol::Frame;

/// A head's length at most: two bytes, and eight more for the longest payload length.
const MAX_HEAD: usize = 10;

/// A frame's head: opcode and payload length.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    bytes: [u8; MAX_HEAD],
    len: u8,
}

impl Head {
    /// No head at all: for bytes that already begin with theirs.
    pub const NONE: Self = Self {
        bytes: [0; MAX_HEAD],
        len: 0,
    };

    pub fn new(opcode: OpCode, payload_len: usize) -> Self {
        let mut bytes = [0; MAX_HEAD];
        bytes[0] = 0x80 | u8::from(opcode);
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A text frame whole, head and payload, as every member of a room receives it. Cloning it
/// shares the bytes.
#[derive(Debug, Clone)]
pub struct TextFrame(Bytes);

impl TextFrame {
    /// A frame around JSON already encoded: an event that came through Redis.
    pub fn new(frame: &Frame) -> Self {
        Self::written(MAX_HEAD + frame.len(), |wire| {
            wire.extend_from_slice(frame.as_bytes())
        })
    }

    /// An event written as JSON straight into its frame.
    pub fn encode(event: &impl Serialize) -> Self {
        Self::written(256, |wire| {
            serde_json::to_writer(wire, event)
                .expect("server events hold only strings, numbers, bools and UTC timestamps")
        })
    }

    /// The payload `write` appends, after room for the longest head; its head is then put just
    /// before it, so the payload is written once and never moved.
    fn written(capacity: usize, write: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut wire = Vec::with_capacity(capacity);
        wire.extend_from_slice(&[0; MAX_HEAD]);
        write(&mut wire);
        let head = Head::new(OpCode::Data(Data::Text), wire.len() - MAX_HEAD);
        let start = MAX_HEAD - head.as_bytes().len();
        wire[start..MAX_HEAD].copy_from_slice(head.as_bytes());
        let mut bytes = Bytes::from(wire);
        bytes.advance(start);
        Self(bytes)
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The length of the event's JSON, without the head.
    pub fn payload_len(&self) -> usize {
        self.0.len() - self.head_len()
    }

    fn head_len(&self) -> usize {
        match self.0[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }

    /// The event's JSON, without the head.
    #[cfg(test)]
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.0[self.head_len()..]).expect("a text frame holds UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Control;

    use super::*;

    #[test]
    fn heads_are_the_ones_tungstenite_would_write() {
        for length in [0, 1, 125, 126, 65_535, 65_536, 80_000] {
            for opcode in [
                OpCode::Data(Data::Text),
                OpCode::Control(Control::Ping),
                OpCode::Control(Control::Pong),
                OpCode::Control(Control::Close),
            ] {
                let mut expected = Vec::new();
                let header = FrameHeader {
                    opcode,
                    ..FrameHeader::default()
                };
                header.format(length as u64, &mut expected).unwrap();
                assert_eq!(Head::new(opcode, length).as_bytes(), &expected[..]);
            }
        }
    }

    #[test]
    fn a_text_frame_is_its_head_then_its_payload() {
        let frame = TextFrame::new(&Frame::from("hi"));
        assert_eq!(&frame.0[..], b"\x81\x02hi");
        assert_eq!(frame.text(), "hi");
    }

    #[test]
    fn an_encoded_event_is_the_frame_of_its_json_whatever_its_length() {
        for length in [0, 100, 200, 70_000] {
            let event = serde_json::json!({ "type": "message", "text": "x".repeat(length) });
            let encoded = TextFrame::encode(&event);
            let json = Frame::from(serde_json::to_string(&event).unwrap());
            assert_eq!(encoded.0, TextFrame::new(&json).0, "for {length}");
            assert_eq!(encoded.payload_len(), json.len());
        }
    }

    #[test]
    fn longer_text_frames_keep_their_text_after_longer_heads() {
        for (length, marker) in [(200, 126), (70_000, 127)] {
            let text = "x".repeat(length);
            let frame = TextFrame::new(&Frame::from(text.clone()));
            assert_eq!(&frame.0[..2], [0x81, marker]);
            assert_eq!(frame.text(), text);
        }
    }
}
