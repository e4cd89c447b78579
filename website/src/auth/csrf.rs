//! Cross-site request forgery defences.
//!
//! Two layers (see website/README.md for the reasoning):
//! 1. [`require_same_origin`], a middleware on every non-GET request: a browser always sends
//!    `Origin` (or at least `Referer`) with a cross-site POST, so when either is present it must
//!    name this very host. Requests with neither come from non-browser clients, which cannot be
//!    driven by another site, and pass to layer 2.
//! 2. A per-session random token: every logged-in form carries it in a hidden `csrf_token` field
//!    and the ticket API in the `X-CSRF-Token` header ([`CurrentUser::verify_csrf`]). The login and
//!    register forms have no session yet and rely on layer 1.
//!
//! [`CurrentUser::verify_csrf`]: super::session::CurrentUser::verify_csrf

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use crate::error::AppError;
use crate::settings::Settings;

/// The header the chat page sends its token in.
pub const HEADER: &str = "x-csrf-token";

/// 32 random bytes, hex-encoded.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time independent of where the strings differ.
pub fn tokens_match(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The `host[:port]` part of an origin or URL such as `https://chat.example:8080/path`.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Whether the request's `Origin` (else `Referer`) names the host the request was sent to; true
/// when it carries neither (not a browser).
pub fn same_origin(headers: &HeaderMap, trust_proxy_headers: bool) -> bool {
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    let Some(source) = source else {
        return true;
    };
    let Ok(source) = source.to_str() else {
        return false;
    };
    // Behind a trusted proxy the host the browser used may arrive as X-Forwarded-Host.
    let forwarded = trust_proxy_headers
        .then(|| headers.get("x-forwarded-host"))
        .flatten();
    let Some(Ok(host)) = forwarded
        .or_else(|| headers.get(header::HOST))
        .map(|h| h.to_str())
    else {
        return false;
    };
    authority_of(source).is_some_and(|authority| authority.eq_ignore_ascii_case(host.trim()))
}

/// Refuses state-changing requests whose `Origin`/`Referer` is another site (403).
pub async fn require_same_origin(
    State(settings): State<Settings>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && !same_origin(request.headers(), settings.trust_proxy_headers) {
        tracing::warn!(method = %request.method(), "cross-origin request refused");
        return AppError::CsrfRejected.into_response();
    }
    next.run(request).await
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
            assert_eq!(same_origin(&headers(&pairs), false), expected, "{why}");
        }
    }

    #[test]
    fn forwarded_host_counts_only_behind_a_trusted_proxy() {
        let h = headers(&[
            ("host", "website:8000"),
            ("x-forwarded-host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
        ]);
        assert!(same_origin(&h, true));
        assert!(!same_origin(&h, false));
    }

    #[test]
    fn tokens_are_random_and_compared_exactly() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token());
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &a[..63]));
        assert!(!tokens_match("", &a));
    }
}
