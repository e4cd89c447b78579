//! `/search?q=`: rooms whose title contains the text.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use crate::auth::session::CurrentUser;
use crate::db::Db;
use crate::domain::SearchQuery;
use crate::error::AppError;
use crate::templates::View;

use super::RoomView;

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
}

pub async fn search_rooms(
    user: CurrentUser,
    view: View,
    State(db): State<Db>,
    Query(params): Query<SearchParams>,
) -> Result<Response, AppError> {
    let Some(q) = params.q else {
        // Just the form.
        return Ok(view
            .render(Some(&user), "search.html", context! { q => "" })?
            .into_response());
    };
    match SearchQuery::parse(&q) {
        Ok(query) => {
            let results: Vec<RoomView> = db
                .search_rooms(&query)
                .await?
                .into_iter()
                .map(RoomView::from)
                .collect();
            let html = view.render(Some(&user), "search.html", context! { q, results })?;
            Ok((StatusCode::OK, html).into_response())
        }
        Err(invalid) => {
            let error = AppError::from(invalid);
            let html = view.render(
                Some(&user),
                "search.html",
                context! { q, error => view.text(&error.message_key()) },
            )?;
            Ok((error.status(), html).into_response())
        }
    }
}
