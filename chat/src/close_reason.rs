//! Why a connection ended: the close code and reason the client gets, and the label the metrics
//! count it under (chat/README.md, "Close codes").

use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Utf8Bytes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    /// The socket failed or was reset; nobody is left to tell.
    Gone,
    ShuttingDown,
    ProtocolError,
    InvalidUtf8,
    KeptAbusing,
    TooBig,
    Idle,
    RoomDeleted,
    TooSlow,
}

impl CloseReason {
    /// Every reason, in declaration order (the metrics index their counters by it).
    pub const ALL: [Self; 10] = [
        Self::ClientClosed,
        Self::Gone,
        Self::ShuttingDown,
        Self::ProtocolError,
        Self::InvalidUtf8,
        Self::KeptAbusing,
        Self::TooBig,
        Self::Idle,
        Self::RoomDeleted,
        Self::TooSlow,
    ];

    /// The `reason` label of `webchat_chat_disconnects_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::Gone => "gone",
            Self::ShuttingDown => "shutdown",
            Self::ProtocolError => "protocol_error",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::KeptAbusing => "policy",
            Self::TooBig => "too_big",
            Self::Idle => "idle",
            Self::RoomDeleted => "room_deleted",
            Self::TooSlow => "slow_consumer",
        }
    }

    pub(crate) fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::ClientClosed | Self::Gone => return None,
            Self::ShuttingDown => (CloseCode::Away, "server shutting down"),
            Self::ProtocolError => (CloseCode::Protocol, "protocol error"),
            Self::InvalidUtf8 => (CloseCode::Invalid, "text frames must be UTF-8"),
            Self::KeptAbusing => (CloseCode::Policy, "too many refused frames"),
            Self::TooBig => (CloseCode::Size, "frame too big"),
            Self::Idle => (CloseCode::Library(4000), "idle timeout"),
            Self::RoomDeleted => (CloseCode::Library(4004), "room deleted"),
            Self::TooSlow => (CloseCode::Library(4008), "too slow"),
        };
        Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })
    }

    pub(crate) fn from_error(error: &WsError) -> Self {
        match error {
            WsError::Capacity(_) => Self::TooBig,
            WsError::Utf8(_) => Self::InvalidUtf8,
            WsError::Protocol(_) => Self::ProtocolError,
            _ => Self::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_close_reason_has_a_documented_code() {
        let codes: Vec<u16> = [
            CloseReason::ShuttingDown,
            CloseReason::ProtocolError,
            CloseReason::InvalidUtf8,
            CloseReason::KeptAbusing,
            CloseReason::TooBig,
            CloseReason::Idle,
            CloseReason::RoomDeleted,
            CloseReason::TooSlow,
        ]
        .into_iter()
        .map(|r| r.close_frame().map(|f| u16::from(f.code)).unwrap())
        .collect();
        assert_eq!(codes, [1001, 1002, 1007, 1008, 1009, 4000, 4004, 4008]);
        assert!(CloseReason::Gone.close_frame().is_none());
    }
}
