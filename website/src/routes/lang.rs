//! `GET /lang/{code}?next=/path`: remember the chosen language in a cookie and go back (`next`
//! by the rules of `ReturnPath`: anything else goes home).

use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::cookie::{Cookie, SameSite};

use crate::domain::ReturnPath;
use crate::error::AppError;
use crate::i18n::{LANG_COOKIE, Lang};
use crate::settings::RequestSettings;

const ONE_YEAR: time::Duration = time::Duration::days(365);

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

pub async fn switch_language(
    Path(code): Path<String>,
    Query(query): Query<Next>,
    State(settings): State<RequestSettings>,
) -> Result<Response, AppError> {
    let lang = Lang::from_code(&code).ok_or(AppError::PageNotFound)?;
    let cookie = Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .max_age(ONE_YEAR)
        .same_site(SameSite::Lax)
        .http_only(true)
        .secure(settings.cookie_secure)
        .build();
    let target = ReturnPath::or_home(query.next.as_deref());
    Ok((
        [(SET_COOKIE, cookie.to_string())],
        Redirect::to(target.as_str()),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use crate::domain::ReturnPath;

    fn local_path(next: Option<&str>) -> String {
        ReturnPath::or_home(next).as_str().to_owned()
    }

    #[test]
    fn only_local_paths_of_at_most_512_bytes_are_followed() {
        let long = format!("/{}", "a".repeat(4000));
        let cases = [
            (Some("/search?q=abcdef"), "/search?q=abcdef"),
            (Some("/"), "/"),
            (Some("//evil.example"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("evil"), "/"),
            (Some("/a\r\nSet-Cookie: x=1"), "/"),
            (Some(&long), "/"),
            (None, "/"),
        ];
        for (next, expected) in cases {
            assert_eq!(local_path(next), expected, "{next:?}");
        }
    }
}
