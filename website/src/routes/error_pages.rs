//! Error answers as the visitor sees them: a localized HTML page, or JSON under `/api/`.
//!
//! `AppError` decides the status and tags the response; two layers render the tag.
//! [`inside_session`] sits inside the session layer, so its pages show who is signed in: the
//! handlers' refusals, CSRF, 404, 405 and 413. [`outside_session`] sits outside it and holds the
//! request's time limit: it renders the timeout and a panic, without the signed-in header. Which
//! layer renders each refusal is pinned by `tests/api/error_stack.rs`.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Json, Router};
use futures_util::FutureExt;
use minijinja::context;
use tower_http::limit::RequestBodyLimitLayer;
use tower_sessions::Session;

use super::accounts::login_url;
use crate::auth::session::current_user;
use crate::domain::ReturnPath;
use crate::error::{AppError, ErrorTag};
use crate::i18n::Lang;
use crate::settings::RequestSettings;
use crate::state::AppState;
use crate::templates::{Pages, return_path};

/// Forms here are small; a megabyte-sized body is never legitimate.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The error pages inside the session layer, with the body limit whose 413 they render.
pub fn inside_session(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(
            ErrorPages::of(state),
            render_inside_session,
        ))
}

/// The error pages outside the session layer, with the request's time limit
/// (`REQUEST_TIMEOUT_SECS`) and the panic catcher.
pub fn outside_session(
    routes: Router<AppState>,
    state: &AppState,
    request_timeout: Duration,
) -> Router<AppState> {
    let outside = Outside {
        pages: ErrorPages::of(state),
        request_timeout,
    };
    routes.layer(from_fn_with_state(outside, render_outside_session))
}

#[derive(Clone)]
struct ErrorPages {
    pages: Pages,
    settings: RequestSettings,
}

#[derive(Clone)]
struct Outside {
    pages: ErrorPages,
    request_timeout: Duration,
}

/// The facts of the request an error answer depends on, taken before it goes in.
struct RequestFacts {
    is_api: bool,
    current_path: String,
    lang: Lang,
    /// The session, inside the session layer: the page then shows who is signed in.
    session: Option<Session>,
}

impl RequestFacts {
    fn of(request: &Request) -> Self {
        Self {
            is_api: request.uri().path().starts_with("/api/"),
            current_path: return_path(request.method(), request.uri()),
            lang: Lang::from_headers(request.headers()),
            session: request.extensions().get::<Session>().cloned(),
        }
    }
}

/// Which layer rendered an answer, for the tests that pin it.
#[cfg(feature = "test-support")]
pub const RENDERED_BY: &str = "x-rendered-by";

async fn render_inside_session(
    State(pages): State<ErrorPages>,
    request: Request,
    next: Next,
) -> Response {
    let facts = RequestFacts::of(&request);
    let response = next.run(request).await;
    // The router's own refusals carry no tag: they get one here, so they are rendered like the
    // rest.
    let response = match response.status() {
        _ if response.extensions().get::<ErrorTag>().is_some() => response,
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed.into_response(),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::BodyTooLarge.into_response(),
        _ => response,
    };
    pages.answer(&facts, response, "inside-session").await
}

async fn render_outside_session(
    State(outside): State<Outside>,
    request: Request,
    next: Next,
) -> Response {
    let facts = RequestFacts::of(&request);
    let handled = AssertUnwindSafe(next.run(request)).catch_unwind();
    let response = match tokio::time::timeout(outside.request_timeout, handled).await {
        Ok(Ok(response)) => response,
        Ok(Err(panic)) => AppError::Internal(anyhow::anyhow!(
            "the request's handling panicked: {}",
            panic_message(panic.as_ref())
        ))
        .into_response(),
        // Dropped where it stands: a write it had already sent to MongoDB may still happen.
        Err(_) => AppError::Timeout.into_response(),
    };
    outside
        .pages
        .answer(&facts, response, "outside-session")
        .await
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

impl ErrorPages {
    fn of(state: &AppState) -> Self {
        Self {
            pages: state.pages.clone(),
            settings: state.settings.clone(),
        }
    }

    /// `response` itself, unless [`AppError`] tagged it: then its page, JSON or redirect, keeping
    /// the `Retry-After` of a 429 or 503.
    async fn answer(
        &self,
        facts: &RequestFacts,
        response: Response,
        layer: &'static str,
    ) -> Response {
        let Some(tag) = response.extensions().get::<ErrorTag>().cloned() else {
            return response;
        };
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let mut rendered = self.render(facts, &tag, response.status()).await;
        if let Some(wait) = retry_after {
            rendered.headers_mut().insert(header::RETRY_AFTER, wait);
        }
        #[cfg(feature = "test-support")]
        rendered
            .headers_mut()
            .insert(RENDERED_BY, axum::http::HeaderValue::from_static(layer));
        #[cfg(not(feature = "test-support"))]
        let _ = layer;
        rendered
    }

    async fn render(&self, facts: &RequestFacts, tag: &ErrorTag, status: StatusCode) -> Response {
        let message = self.pages.i18n().text(facts.lang, &tag.message_key);
        if facts.is_api {
            let body = serde_json::json!({ "error": tag.code, "message": message });
            return (status, Json(body)).into_response();
        }
        if tag.code == AppError::Unauthenticated.code() {
            // The page itself for a GET, home for a form post (which a link cannot repeat).
            let next = ReturnPath::or_home(Some(&facts.current_path));
            return Redirect::to(&login_url(&next)).into_response();
        }
        // Best effort: an error page must not fail because the session cannot be read.
        let user = match &facts.session {
            Some(session) => current_user(session, self.settings.session_max_age)
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let heading = self.pages.i18n().text(facts.lang, heading_key(status));
        match self.pages.render_page(
            facts.lang,
            user.as_ref(),
            &facts.current_path,
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
}

fn heading_key(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 405 | 413 | 422 => "error_heading_400",
        403 => "error_heading_403",
        404 => "error_heading_404",
        429 => "error_heading_429",
        503 => "error_heading_503",
        500..=599 => "error_heading_500",
        _ => "error_title",
    }
}

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
}
