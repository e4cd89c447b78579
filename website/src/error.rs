//! The one error type of the website and the one place errors become responses.
//!
//! Handlers return `Result<_, AppError>`. [`AppError::into_response`] only decides the status and
//! tags the response with the error; [`render_error_pages`] (a middleware, because rendering needs
//! the templates and the visitor's language) turns tagged responses into a localized HTML page, or a
//! JSON body under `/api/`. Forms handle their own user errors by re-rendering themselves with
//! [`AppError::message_key`] and [`AppError::status`], so the status of each error is decided here only.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

use tower_sessions::Session;

use crate::auth::session::current_user;
use crate::db::DbError;
use crate::domain::ValidationError;
use crate::i18n::Lang;
use crate::state::Settings;
use crate::templates::{Pages, return_path};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins")]
    TooManyAttempts,
    #[error("room not found")]
    RoomNotFound,
    #[error("user no longer exists")]
    UserNotFound,
    #[error("room belongs to someone else")]
    NotYourRoom,
    #[error("not logged in")]
    Unauthenticated,
    #[error("CSRF check failed")]
    CsrfRejected,
    #[error("page not found")]
    PageNotFound,
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(invalid) => match invalid {
                ValidationError::InvalidEmail
                | ValidationError::PasswordTooShort
                | ValidationError::PasswordTooLong
                | ValidationError::InvalidRoomTitle
                | ValidationError::RoomTitleInvalidCharacters => StatusCode::UNPROCESSABLE_ENTITY,
                ValidationError::QueryTooShort
                | ValidationError::QueryTooLong
                | ValidationError::QueryInvalidCharacters => StatusCode::BAD_REQUEST,
            },
            Self::InvalidCredentials | Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::RoomNotFound | Self::UserNotFound | Self::PageNotFound => StatusCode::NOT_FOUND,
            Self::NotYourRoom | Self::CsrfRejected => StatusCode::FORBIDDEN,
            Self::Database(failure) => match failure {
                DbError::EmailTaken => StatusCode::CONFLICT,
                DbError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                DbError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable snake_case code: the JSON `error` field and, prefixed, the catalogue key.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(invalid) => match invalid {
                ValidationError::InvalidEmail => "invalid_email",
                ValidationError::PasswordTooShort => "password_too_short",
                ValidationError::PasswordTooLong => "password_too_long",
                ValidationError::InvalidRoomTitle => "invalid_room_title",
                ValidationError::RoomTitleInvalidCharacters => "room_title_invalid_characters",
                ValidationError::QueryTooShort => "query_too_short",
                ValidationError::QueryTooLong => "query_too_long",
                ValidationError::QueryInvalidCharacters => "query_invalid_characters",
            },
            Self::InvalidCredentials => "invalid_credentials",
            Self::TooManyAttempts => "too_many_attempts",
            Self::RoomNotFound => "room_not_found",
            Self::UserNotFound => "user_not_found",
            Self::NotYourRoom => "not_your_room",
            Self::Unauthenticated => "unauthenticated",
            Self::CsrfRejected => "csrf",
            Self::PageNotFound => "page_not_found",
            Self::Database(failure) => match failure {
                DbError::EmailTaken => "email_taken",
                DbError::Unavailable(_) => "db_unavailable",
                DbError::Failed(_) => "internal",
            },
            Self::Internal(_) => "internal",
        }
    }

    /// The catalogue key of the message shown to the user.
    pub fn message_key(&self) -> String {
        format!("error_{}", self.code())
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<minijinja::Error> for AppError {
    fn from(error: minijinja::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// The error as carried from `into_response` to [`render_error_pages`].
#[derive(Debug, Clone)]
struct ErrorTag {
    code: &'static str,
    message_key: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // Logged once, here, inside the request span; the user gets an opaque message.
            tracing::error!(error = ?self, "request failed");
        }
        let tag = ErrorTag {
            code: self.code(),
            message_key: self.message_key(),
        };
        (status, axum::Extension(tag)).into_response()
    }
}

/// Renders every response tagged by [`AppError`]: JSON under `/api/`, otherwise an HTML page in
/// the visitor's language (with the signed-in header when there is a user). A logged-out visitor
/// on a page that needs login is sent to `/login`.
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
    let status = response.status();
    let message = pages.i18n().text(lang, &tag.message_key);
    if is_api {
        let body = serde_json::json!({ "error": tag.code, "message": message });
        return (status, Json(body)).into_response();
    }
    if tag.code == AppError::Unauthenticated.code() {
        return Redirect::to("/login").into_response();
    }
    // Best effort: an error page must not fail because the session cannot be read.
    let user = match &session {
        Some(session) => current_user(session, settings.session_max_age)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match pages.render_page(
        lang,
        user.as_ref(),
        &current_path,
        "error.html",
        context! { status => status.as_u16(), message },
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

/// The fallback route.
pub async fn page_not_found() -> AppError {
    AppError::PageNotFound
}
