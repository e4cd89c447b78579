//! The website's notice that a room was deleted: `POST /internal/rooms/{room_id}/deleted`
//! (chat/README.md, "Room deleted"). nginx never forwards `/internal/`, so only something inside
//! the deployment can send it. Refusals are logged at warn: a forged notice is worth reading.

use std::net::SocketAddr;

use http::{Method, Request, StatusCode};
use tokio_tungstenite::tungstenite::handshake::server::ErrorResponse;

use contract::notice::room_in_notice_path;
use contract::{NoticeError, NoticeVerifier};

use crate::plain_http::{bearer_from_authorization, plain_text_response};
use crate::rooms::RoomRegistry;

pub struct NoticeDesk {
    verifier: NoticeVerifier,
    registry: RoomRegistry,
}

#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("no such internal path")]
    NotFound,
    #[error("method is not POST")]
    WrongMethod,
    #[error("no notice in Authorization")]
    NoNotice,
    #[error(transparent)]
    BadNotice(#[from] NoticeError),
}

impl NoticeDesk {
    pub fn new(verifier: NoticeVerifier, registry: RoomRegistry) -> Self {
        Self { verifier, registry }
    }

    pub fn answer(&self, request: &Request<()>, peer: SocketAddr) -> ErrorResponse {
        let path = request.uri().path();
        match self.check(request) {
            Ok(room_id) => {
                let told = self.registry.delete_room(room_id);
                tracing::info!(%peer, room_id, told, "room deleted: its members were told");
                plain_text_response(
                    StatusCode::ACCEPTED,
                    "accepted: the room's members are told\n",
                )
            }
            Err(refusal) => {
                tracing::warn!(%peer, path, reason = %refusal, "room-deleted notice refused");
                let (status, body) = match refusal {
                    Refusal::NotFound => (StatusCode::NOT_FOUND, "not found\n"),
                    Refusal::WrongMethod => (StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
                    Refusal::NoNotice | Refusal::BadNotice(_) => (
                        StatusCode::UNAUTHORIZED,
                        "unauthorized: a valid notice is required\n",
                    ),
                };
                plain_text_response(status, body)
            }
        }
    }

    fn check<'r>(&self, request: &'r Request<()>) -> Result<&'r str, Refusal> {
        let room_id = room_in_notice_path(request.uri().path()).ok_or(Refusal::NotFound)?;
        if request.method() != Method::POST {
            return Err(Refusal::WrongMethod);
        }
        let token = bearer_from_authorization(request.headers()).ok_or(Refusal::NoNotice)?;
        self.verifier.verify(token, room_id)?;
        Ok(room_id)
    }
}
