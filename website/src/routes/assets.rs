//! `/static/{file}`: the embedded CSS and JavaScript.

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;
use crate::templates::Pages;

#[derive(Deserialize)]
pub struct Version {
    v: Option<String>,
}

pub async fn serve_static(
    State(pages): State<Pages>,
    Path(file): Path<String>,
    Query(version): Query<Version>,
) -> Result<Response, AppError> {
    let asset = pages.asset(&file).ok_or(AppError::PageNotFound)?;
    // Pages link `?v=<content hash>`: that URL never changes content, so it may be cached for a
    // year. Any other URL of the file must be revalidated.
    let cache = if version.v.as_deref() == Some(asset.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok((
        [(CONTENT_TYPE, asset.content_type), (CACHE_CONTROL, cache)],
        asset.body,
    )
        .into_response())
}
