//! `POST /api/rooms/{room_id}/ticket`: a chat ticket for the signed-in user (JSON).

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use tower_sessions::Session;

use crate::auth::csrf::CsrfHeader;
use crate::auth::session::{self, CurrentUser};
use crate::auth::ticket::{Admitted, LIFETIME, TicketDesk};
use crate::db::Db;
use crate::error::AppError;

use super::parse_room_id;

/// Where the chat service listens, behind the same nginx origin.
const WS_PATH: &str = "/ws";

#[derive(Debug, Serialize)]
pub struct TicketResponse {
    token: String,
    expires_in: u64,
    ws_path: &'static str,
}

pub async fn issue_ticket(
    _admitted: Admitted,
    user: CurrentUser,
    session: Session,
    Path(room_id): Path<String>,
    State(db): State<Db>,
    State(tickets): State<TicketDesk>,
    _csrf: CsrfHeader,
) -> Result<Json<TicketResponse>, AppError> {
    let room_id = parse_room_id(&room_id)?;
    // Both at once: after a chat restart every open page asks within the same second.
    let (account, room) = tokio::try_join!(db.find_user_by_id(user.id), db.find_room(room_id))?;
    let Some(account) = account else {
        // The account was removed while this session lived on: end the session too.
        session::sign_out(&session).await?;
        return Err(AppError::UserNotFound);
    };
    let room = room.ok_or(AppError::RoomNotFound)?;
    let token = tickets
        .issue(account.id, &account.email, &room.title, room.id)
        .await?;
    Ok(Json(TicketResponse {
        token,
        expires_in: LIFETIME.as_secs(),
        ws_path: WS_PATH,
    }))
}
