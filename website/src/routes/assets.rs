//! `/static/{file}`: the embedded CSS, JavaScript and icon; `/favicon.ico`: the icon.

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;
use crate::templates::{FAVICON, Pages};

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

/// `/favicon.ico`, where browsers look for an icon when a page names none (a PDF, a JSON answer):
/// the SVG icon itself, which browsers take whatever the URL's extension. Cached for a day, as
/// this URL carries no version.
pub async fn favicon(State(pages): State<Pages>) -> Result<Response, AppError> {
    let icon = pages.asset(FAVICON).ok_or(AppError::PageNotFound)?;
    Ok((
        [
            (CONTENT_TYPE, icon.content_type),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        icon.body,
    )
        .into_response())
}
