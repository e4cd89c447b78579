//! `/`: the invitation for visitors; my rooms, the create form and search for users.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::auth::session::CurrentUser;
use crate::db::Db;
use crate::error::AppError;
use crate::templates::View;

use super::RoomView;

pub async fn home(
    view: View,
    user: Option<CurrentUser>,
    State(db): State<Db>,
) -> Result<Response, AppError> {
    match user {
        None => Ok(view.render(None, "home.html", context! {})?.into_response()),
        Some(user) => my_rooms(&view, &db, &user, StatusCode::OK, None, "").await,
    }
}

/// The signed-in home page; `error` and `title` re-show a refused create form.
pub async fn my_rooms(
    view: &View,
    db: &Db,
    user: &CurrentUser,
    status: StatusCode,
    error: Option<String>,
    title: &str,
) -> Result<Response, AppError> {
    let rooms: Vec<RoomView> = db
        .list_rooms_owned_by(user.id)
        .await?
        .into_iter()
        .map(RoomView::from)
        .collect();
    let html = view.render(Some(user), "home.html", context! { rooms, error, title })?;
    Ok((status, html).into_response())
}
