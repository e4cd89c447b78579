//! Error answers as the visitor sees them: a localized HTML page, or JSON under `/api/`.
//!
//! `AppError` decides the status and tags the response; [`render_error_pages`], a middleware
//! outside the handlers, renders what the tag says in the visitor's language, with the signed-in
//! header when the session has a user.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use tower_sessions::Session;

use super::accounts::login_url;
use crate::auth::session::current_user;
use crate::domain::ReturnPath;
use crate::error::{AppError, ErrorTag};
use crate::i18n::Lang;
use crate::settings::Settings;
use crate::templates::{Pages, return_path};

/// Renders every response tagged by [`AppError`]: JSON under `/api/`, otherwise an HTML page in
/// the visitor's language (with the signed-in header when there is a user). A logged-out visitor
/// on a page that needs login is sent to `/login`, which brings them back to that page.
pub async fn render_error_pages(
    State(pages): State<Pages>,
    State(settings): State<Settings>,
    lang: Lang,
    request: Request,
    next: Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let current_path = return_path(request.method(), request.uri());
    let session = request.extensions().get::<Session>().cloned();
    let response = next.run(request).await;
    let Some(tag) = response.extensions().get::<ErrorTag>().cloned() else {
        return response;
    };
    // A 429 or 503 says when to come back; the page that replaces the tagged answer keeps it.
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let mut rendered = render_tagged(
        &pages,
        &settings,
        lang,
        &tag,
        response.status(),
        is_api,
        &current_path,
        session.as_ref(),
    )
    .await;
    if let Some(wait) = retry_after {
        rendered.headers_mut().insert(header::RETRY_AFTER, wait);
    }
    rendered
}

/// The answer for one tagged error: JSON, a redirect to the login form, or the error page.
#[allow(clippy::too_many_arguments)]
async fn render_tagged(
    pages: &Pages,
    settings: &Settings,
    lang: Lang,
    tag: &ErrorTag,
    status: StatusCode,
    is_api: bool,
    current_path: &str,
    session: Option<&Session>,
) -> Response {
    let message = pages.i18n().text(lang, &tag.message_key);
    if is_api {
        let body = serde_json::json!({ "error": tag.code, "message": message });
        return (status, Json(body)).into_response();
    }
    if tag.code == AppError::Unauthenticated.code() {
        // `current_path` is the page itself for a GET, and home for a form post (which a link
        // cannot repeat).
        let next = ReturnPath::or_home(Some(current_path));
        return Redirect::to(&login_url(&next)).into_response();
    }
    // Best effort: an error page must not fail because the session cannot be read.
    let user = match session {
        Some(session) => current_user(session, settings.session_max_age)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let heading = pages.i18n().text(lang, heading_key(status));
    match pages.render_page(
        lang,
        user.as_ref(),
        current_path,
        "error.html",
        context! { status => status.as_u16(), heading, message },
    ) {
        Ok(html) => (status, html).into_response(),
        Err(error) => {
            tracing::error!(?error, "rendering the error page failed");
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message.to_owned(),
            )
                .into_response()
        }
    }
}

/// The catalogue key of an error page's heading: what happened, in a few words, by status.
fn heading_key(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "error_heading_400",
        403 => "error_heading_403",
        404 => "error_heading_404",
        429 => "error_heading_429",
        503 => "error_heading_503",
        500..=599 => "error_heading_500",
        _ => "error_title",
    }
}

/// tower-http's `TimeoutLayer` answers a request that ran out of time with a bare 408, a status
/// nothing else here answers. This turns it into [`AppError::Timeout`], so its status is decided
/// where every other one is, it is logged, and the visitor gets a page (or JSON) saying what
/// happened.
pub async fn explain_timeout(response: Response) -> Response {
    let from_timeout_layer = response.status() == StatusCode::REQUEST_TIMEOUT
        && response.extensions().get::<ErrorTag>().is_none();
    if from_timeout_layer {
        return AppError::Timeout.into_response();
    }
    response
}

/// The fallback route.
pub async fn page_not_found() -> AppError {
    AppError::PageNotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<h1>` of the error page for `status` in `lang`.
    fn error_page_heading(lang: Lang, status: StatusCode) -> String {
        let pages = Pages::load().unwrap();
        let heading = pages.i18n().text(lang, heading_key(status));
        let html = pages
            .render_page(
                lang,
                None,
                "/",
                "error.html",
                context! { status => status.as_u16(), heading, message => "m" },
            )
            .unwrap()
            .0;
        let open = r#"<h1 data-testid="error-heading">"#;
        let start = html.find(open).expect("the heading") + open.len();
        let end = start + html[start..].find("</h1>").expect("the h1 ends");
        html[start..end].to_owned()
    }

    #[test]
    fn each_error_page_says_what_happened_in_its_heading() {
        let cases = [
            (StatusCode::FORBIDDEN, "No access", "Нет доступа"),
            (StatusCode::NOT_FOUND, "Not found", "Не найдено"),
            (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Слишком много запросов",
            ),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Временно недоступно",
            ),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Что-то пошло не так",
            ),
        ];
        for (status, english, russian) in cases {
            assert_eq!(error_page_heading(Lang::En, status), english, "{status}");
            assert_eq!(error_page_heading(Lang::Ru, status), russian, "{status}");
        }
    }

    fn tag_code(response: &Response) -> Option<&'static str> {
        response.extensions().get::<ErrorTag>().map(|tag| tag.code)
    }

    #[tokio::test]
    async fn the_timeout_layers_bare_408_becomes_the_timeout_error() {
        let explained = explain_timeout(StatusCode::REQUEST_TIMEOUT.into_response()).await;
        assert_eq!(explained.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(tag_code(&explained), Some("timeout"));

        let other = explain_timeout(AppError::PageNotFound.into_response()).await;
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        assert_eq!(tag_code(&other), Some("page_not_found"));
        let fine = explain_timeout(StatusCode::OK.into_response()).await;
        assert_eq!((fine.status(), tag_code(&fine)), (StatusCode::OK, None));
    }
}
