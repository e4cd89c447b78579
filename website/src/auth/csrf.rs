//! Cross-site request forgery defences, in two layers (website/README.md has the reasoning):
//! 1. [`require_same_origin`] on every non-GET request: a browser always sends `Origin` (or
//!    `Referer`) with a cross-site POST, so when either is present it must name this host.
//!    Requests with neither come from non-browser clients, which another site cannot drive.
//! 2. The session's random token: logged-in forms are read through [`CsrfForm`] and the ticket
//!    API takes [`CsrfHeader`], so a new form cannot forget the check. Login and register have no
//!    session yet and rely on layer 1.

use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{
    FromRef, FromRequest, FromRequestParts, OptionalFromRequest, OptionalFromRequestParts, Request,
    State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::settings::RequestSettings;

use super::session::CurrentUser;

const HEADER: &str = "x-csrf-token";

/// Compares in time independent of where the strings differ.
fn tokens_match(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn scheme_and_authority(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end]))
}

/// Whether the request's `Origin` (else `Referer`) is the site itself; true when it carries
/// neither. The site's scheme is `https` under `COOKIE_SECURE` (its session cookie would not reach
/// plain HTTP), else the trusted proxy's `X-Forwarded-Proto`, else `http`.
pub fn same_origin(headers: &HeaderMap, settings: &RequestSettings) -> bool {
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    let Some(source) = source else {
        return true;
    };
    let Ok(source) = source.to_str() else {
        return false;
    };
    let trusted = |name: &str| settings.trusted_header(headers, name);
    // Behind a trusted proxy the host the browser used may arrive as X-Forwarded-Host.
    let Some(Ok(host)) = trusted("x-forwarded-host")
        .map(Ok)
        .or_else(|| headers.get(header::HOST).map(|h| h.to_str()))
    else {
        return false;
    };
    let site_scheme = if settings.cookie_secure {
        "https"
    } else {
        trusted("x-forwarded-proto").map_or("http", str::trim)
    };
    scheme_and_authority(source).is_some_and(|(scheme, authority)| {
        scheme.eq_ignore_ascii_case(site_scheme) && authority.eq_ignore_ascii_case(host.trim())
    })
}

pub async fn require_same_origin(
    State(settings): State<RequestSettings>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && !same_origin(request.headers(), &settings) {
        tracing::warn!(method = %request.method(), "cross-origin request refused");
        return AppError::CsrfRejected.into_response();
    }
    next.run(request).await
}

fn verify(user: &CurrentUser, presented: Option<&str>) -> Result<(), AppError> {
    match presented {
        Some(token) if tokens_match(token, &user.csrf_token) => Ok(()),
        _ => Err(AppError::CsrfRejected),
    }
}

/// A signed-in user's form with the session's token in its hidden `csrf_token` field; its other
/// fields are `T`. As `Option<CsrfForm<T>>`, an anonymous visitor's form is `None` (no session, so
/// no token to check). `T` is read through `#[serde(flatten)]`, which hands its fields over as
/// text: give it string fields, not numbers.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct WithToken<T> {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(flatten)]
    fields: T,
}

impl<T> WithToken<T> {
    #[expect(
        clippy::disallowed_types,
        reason = "the one place a signed-in user's form is parsed"
    )]
    async fn read<S: Send + Sync>(
        parts: Parts,
        body: Body,
        state: &S,
    ) -> Result<Self, FormRejection>
    where
        T: DeserializeOwned,
    {
        let request = Request::from_parts(parts, body);
        let axum::Form(form) = axum::Form::from_request(request, state).await?;
        Ok(form)
    }

    fn checked_for(self, user: &CurrentUser) -> Result<CsrfForm<T>, AppError> {
        verify(user, self.csrf_token.as_deref())?;
        Ok(CsrfForm(self.fields))
    }
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let user = <CurrentUser as FromRequestParts<S>>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = WithToken::read(parts, body, state)
            .await
            .map_err(IntoResponse::into_response)?;
        form.checked_for(&user).map_err(IntoResponse::into_response)
    }
}

impl<S, T> OptionalFromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let user =
            <CurrentUser as OptionalFromRequestParts<S>>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        // The form is read even without a user, so a malformed one is refused the same either way.
        let form = WithToken::read(parts, body, state)
            .await
            .map_err(IntoResponse::into_response)?;
        user.map(|user| form.checked_for(&user))
            .transpose()
            .map_err(IntoResponse::into_response)
    }
}

/// Proof that the `X-CSRF-Token` header holds the signed-in user's token: the ticket API's
/// counterpart of [`CsrfForm`].
#[derive(Debug)]
pub struct CsrfHeader;

impl<S> FromRequestParts<S> for CsrfHeader
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        let presented = parts.headers.get(HEADER).and_then(|v| v.to_str().ok());
        verify(&user, presented)?;
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn origin_must_name_the_requested_host() {
        let cases = [
            (
                vec![
                    ("host", "localhost:8080"),
                    ("origin", "http://localhost:8080"),
                ],
                true,
                "same origin",
            ),
            (
                vec![
                    ("host", "LOCALHOST:8080"),
                    ("origin", "http://localhost:8080"),
                ],
                true,
                "case-insensitive host",
            ),
            (
                vec![
                    ("host", "localhost:8080"),
                    ("origin", "http://evil.example"),
                ],
                false,
                "foreign origin",
            ),
            (
                vec![
                    ("host", "localhost:8080"),
                    ("origin", "http://localhost:9999"),
                ],
                false,
                "other port",
            ),
            (
                vec![("host", "localhost:8080"), ("origin", "null")],
                false,
                "opaque origin",
            ),
            (
                vec![
                    ("host", "localhost:8080"),
                    ("origin", "http://localhost:8080.evil.example"),
                ],
                false,
                "suffix trick",
            ),
            (
                vec![
                    ("host", "localhost:8080"),
                    ("referer", "http://localhost:8080/login?x=1"),
                ],
                true,
                "same-origin referer",
            ),
            (
                vec![
                    ("host", "localhost:8080"),
                    ("referer", "https://evil.example/localhost:8080"),
                ],
                false,
                "foreign referer",
            ),
            (vec![("host", "localhost:8080")], true, "no browser headers"),
            (
                vec![("origin", "http://localhost:8080")],
                false,
                "no host to compare with",
            ),
        ];
        for (pairs, expected, why) in cases {
            assert_eq!(
                same_origin(&headers(&pairs), &settings(false, false)),
                expected,
                "{why}"
            );
        }
    }

    fn settings(trust_proxy_headers: bool, cookie_secure: bool) -> RequestSettings {
        RequestSettings {
            trust_proxy_headers,
            session_max_age: std::time::Duration::from_secs(3600),
            cookie_secure,
        }
    }

    #[test]
    fn forwarded_host_counts_only_behind_a_trusted_proxy() {
        let h = headers(&[
            ("host", "website:8000"),
            ("x-forwarded-host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
        ]);
        assert!(same_origin(&h, &settings(true, false)));
        assert!(!same_origin(&h, &settings(false, false)));
    }

    #[test]
    fn the_origin_must_have_the_sites_scheme() {
        let https_origin = [
            ("host", "localhost:8080"),
            ("origin", "https://localhost:8080"),
        ];
        assert!(
            !same_origin(&headers(&https_origin), &settings(false, false)),
            "https on a plain HTTP site"
        );
        assert!(
            same_origin(&headers(&https_origin), &settings(false, true)),
            "COOKIE_SECURE: the site is served over HTTPS"
        );
        let behind_tls = [
            ("host", "chat.example"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://chat.example"),
        ];
        assert!(same_origin(&headers(&behind_tls), &settings(true, false)));
        assert!(!same_origin(&headers(&behind_tls), &settings(false, false)));
        let plain = [
            ("host", "chat.example"),
            ("x-forwarded-proto", "http"),
            ("origin", "https://chat.example"),
        ];
        assert!(!same_origin(&headers(&plain), &settings(true, false)));
    }

    #[test]
    fn tokens_are_compared_exactly() {
        let a = "0123456789abcdef".repeat(4);
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &a[..63]));
        assert!(!tokens_match(&a.replace('f', "e"), &a));
        assert!(!tokens_match("", &a));
    }

    async fn read_form<T: DeserializeOwned>(body: &'static str) -> Option<WithToken<T>> {
        let request = Request::builder()
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let (parts, body) = request.into_parts();
        WithToken::read(parts, body, &()).await.ok()
    }

    #[derive(Deserialize)]
    struct Titled {
        #[serde(default)]
        title: String,
    }

    #[tokio::test]
    async fn the_token_is_read_beside_the_forms_own_fields() {
        let form = read_form::<Titled>("title=Caf%C3%A9&csrf_token=abc")
            .await
            .unwrap();
        assert_eq!(form.csrf_token.as_deref(), Some("abc"));
        assert_eq!(form.fields.title, "Café");

        let form = read_form::<Titled>("title=no+token").await.unwrap();
        assert_eq!(form.csrf_token, None);
        assert_eq!(form.fields.title, "no token");

        let form = read_form::<()>("csrf_token=abc").await.unwrap();
        assert_eq!(
            form.csrf_token.as_deref(),
            Some("abc"),
            "a form of nothing but the token"
        );
        assert!(
            read_form::<()>("").await.is_some(),
            "an empty form is read (and refused later)"
        );
    }
}
