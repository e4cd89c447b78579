//! `/rooms/{room_id}`: the chat page of any existing room.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::auth::session::CurrentUser;
use crate::db::Db;
use crate::error::AppError;
use crate::templates::View;

use super::{RoomView, parse_room_id};

pub async fn chat_page(
    user: CurrentUser,
    view: View,
    Path(room_id): Path<String>,
    State(db): State<Db>,
) -> Result<Response, AppError> {
    let room_id = parse_room_id(&room_id)?;
    let room = db.find_room(room_id).await?.ok_or(AppError::RoomNotFound)?;
    let room = RoomView::from(room);
    // Everything the script needs, as JSON data (CSP forbids inline scripts, not data blocks).
    let chat_config = serde_json::json!({
        "room_id": room.id,
        "ticket_url": format!("/api/rooms/{}/ticket", room.id),
        "csrf_token": user.csrf_token,
        "me": user.email.as_str(),
        "lang": view.lang().code(),
        "texts": view.chat_texts(),
    });
    let html = view.render(Some(&user), "chat.html", context! { room, chat_config })?;
    Ok(html.into_response())
}
