//! The one error type of the website and the one place its errors get a status.
//!
//! [`AppError`](crate::error::AppError)'s `into_response` only decides the status and tags the
//! response with an [`ErrorTag`](crate::error::ErrorTag); `routes::error_pages` turns
//! tagged responses into a localized page, or JSON under `/api/` (rendering needs the templates,
//! the language and the session). Forms that re-render themselves use
//! [`AppError::message_key`](crate::error::AppError::message_key) and
//! [`AppError::status`](crate::error::AppError::status).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::db::DbError;
use crate::domain::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins")]
    TooManyAttempts,
    #[error("too many chat tickets asked for")]
    TooManyTickets,
    /// Too many ticket requests at once on this replica (a reconnect storm): refused at once, so
    /// those it takes finish well within the database's timeout instead of all waiting past it.
    #[error("too many ticket requests at once")]
    Busy,
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
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    BodyTooLarge,
    /// The request ran longer than `REQUEST_TIMEOUT_SECS` (`routes::error_pages::outside_session`).
    #[error("request took too long")]
    Timeout,
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
                | ValidationError::PasswordTooCommon
                | ValidationError::RoomTitleBlank
                | ValidationError::InvalidRoomTitle
                | ValidationError::RoomTitleInvalidCharacters
                | ValidationError::RoomTitleInvisible => StatusCode::UNPROCESSABLE_ENTITY,
                ValidationError::QueryTooShort
                | ValidationError::QueryTooLong
                | ValidationError::QueryInvalidCharacters => StatusCode::BAD_REQUEST,
            },
            Self::InvalidCredentials | Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts | Self::TooManyTickets => StatusCode::TOO_MANY_REQUESTS,
            Self::RoomNotFound | Self::UserNotFound | Self::PageNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotYourRoom | Self::CsrfRejected => StatusCode::FORBIDDEN,
            Self::Database(failure) => match failure {
                DbError::EmailTaken => StatusCode::CONFLICT,
                DbError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                DbError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            // Not 408: that says the client was slow to send, and browsers may resend on their own.
            Self::Timeout | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
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
                ValidationError::PasswordTooCommon => "password_too_common",
                ValidationError::RoomTitleBlank => "room_title_blank",
                ValidationError::InvalidRoomTitle => "invalid_room_title",
                ValidationError::RoomTitleInvalidCharacters => "room_title_invalid_characters",
                ValidationError::RoomTitleInvisible => "room_title_invisible",
                ValidationError::QueryTooShort => "query_too_short",
                ValidationError::QueryTooLong => "query_too_long",
                ValidationError::QueryInvalidCharacters => "query_invalid_characters",
            },
            Self::InvalidCredentials => "invalid_credentials",
            Self::TooManyAttempts => "too_many_attempts",
            Self::TooManyTickets => "too_many_tickets",
            Self::RoomNotFound => "room_not_found",
            Self::UserNotFound => "user_not_found",
            Self::NotYourRoom => "not_your_room",
            Self::Unauthenticated => "unauthenticated",
            Self::CsrfRejected => "csrf",
            Self::PageNotFound => "page_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTooLarge => "body_too_large",
            Self::Database(failure) => match failure {
                DbError::EmailTaken => "email_taken",
                DbError::Unavailable(_) => "db_unavailable",
                DbError::Failed(_) => "internal",
            },
            Self::Timeout => "timeout",
            Self::Busy => "busy",
            Self::Internal(_) => "internal",
        }
    }

    pub fn message_key(&self) -> String {
        format!("error_{}", self.code())
    }

    /// When to come back, for the `Retry-After` header every 429 and 503 carries: a hint, not a
    /// promise (a throttled login waits until its oldest failure ages out of the window).
    pub fn retry_after(&self) -> Option<Duration> {
        let seconds = match (self, self.status()) {
            (Self::TooManyTickets, _) => 5,
            (Self::Busy, _) => 1,
            (_, StatusCode::TOO_MANY_REQUESTS) => 60,
            (_, StatusCode::SERVICE_UNAVAILABLE) => 5,
            _ => return None,
        };
        Some(Duration::from_secs(seconds))
    }

    /// `body` with this error's status and, for a 429 or 503, its `Retry-After`: how a form that
    /// shows its own errors answers, and how every other error is tagged for its page.
    pub fn respond_with(&self, body: impl IntoResponse) -> Response {
        let mut response = (self.status(), body).into_response();
        if let Some(wait) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        }
        response
    }
}

impl From<minijinja::Error> for AppError {
    fn from(error: minijinja::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// The error as carried from `into_response` to the error-page renderer of the web layer.
#[derive(Debug, Clone)]
pub struct ErrorTag {
    pub code: &'static str,
    pub message_key: String,
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
        self.respond_with(axum::Extension(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Unavailable;

    #[test]
    fn every_429_and_503_says_when_to_come_back() {
        let unavailable = DbError::Unavailable(Unavailable::NoAnswerWithin(Duration::from_secs(1)));
        for error in [
            AppError::TooManyAttempts,
            AppError::TooManyTickets,
            AppError::Timeout,
            AppError::Database(unavailable),
        ] {
            let response = error.respond_with(());
            assert!(matches!(response.status().as_u16(), 429 | 503), "{error:?}");
            assert!(
                response.headers().contains_key(header::RETRY_AFTER),
                "{error:?}"
            );
        }
        let not_found = AppError::RoomNotFound.respond_with(());
        assert!(!not_found.headers().contains_key(header::RETRY_AFTER));
    }
}
