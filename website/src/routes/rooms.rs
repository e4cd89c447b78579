//! Creating and deleting my rooms (the list itself is the home page).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::csrf::CsrfForm;
use crate::auth::session::CurrentUser;
use crate::chat_notice::ChatNotice;
use crate::db::Db;
use crate::db::rooms::Deleted;
use crate::domain::RoomTitle;
use crate::error::AppError;
use crate::templates::View;

use super::{home, parse_room_id};

#[derive(Deserialize)]
pub struct NewRoom {
    #[serde(default)]
    title: String,
}

pub async fn create_room(
    user: CurrentUser,
    view: View,
    State(db): State<Db>,
    CsrfForm(form): CsrfForm<NewRoom>,
) -> Result<Response, AppError> {
    match RoomTitle::parse(&form.title) {
        Ok(title) => {
            db.insert_room(&title, user.id, user.email.as_str()).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(invalid) => {
            let error = AppError::from(invalid);
            let message = view.text(&error.message_key());
            home::my_rooms(
                &view,
                &db,
                &user,
                error.status(),
                Some(message),
                &form.title,
            )
            .await
        }
    }
}

/// Deletes one of my rooms, then tells the chat so the people inside learn it at once (bounded by
/// `CHAT_NOTICE_TIMEOUT_MS`; the deletion stands whatever the chat answers).
pub async fn delete_room(
    user: CurrentUser,
    Path(room_id): Path<String>,
    State(db): State<Db>,
    State(chat): State<ChatNotice>,
    CsrfForm(()): CsrfForm<()>,
) -> Result<Response, AppError> {
    let room_id = parse_room_id(&room_id)?;
    match db.delete_room_owned_by(room_id, user.id).await? {
        Deleted::Yes => {
            chat.room_deleted(&room_id.to_hex()).await;
            Ok(Redirect::to("/").into_response())
        }
        Deleted::NotFound => Err(AppError::RoomNotFound),
        Deleted::NotOwner => Err(AppError::NotYourRoom),
    }
}
