//! The device cookie: a browser that has logged in to an account carries a signed note of it, so
//! the login throttle can tell the owner's devices from everyone else (OWASP's "device cookies").
//!
//! The value is a random id and an HMAC-SHA256 of the account's email and that id, keyed from
//! `JWT_SECRET`: it names no account, and it is a known device only for the account it was set at.

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tower_sessions::cookie::{Cookie, SameSite};

use super::client_addr::ClientAddr;
use crate::i18n::cookie_value;
use crate::settings::RequestSettings;

pub const DEVICE_COOKIE: &str = "device";

const ONE_YEAR: time::Duration = time::Duration::days(365);

/// A browser that has logged in to the account it is logging in to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    /// The cookie's random id, in hex: what the device's failures count against.
    pub id: String,
}

/// Who is logging in, before the email is known to be theirs: the client's address and the
/// device cookie it sent, if any (checked against the account by [`DeviceCookies::known`]).
#[derive(Debug, Clone)]
pub struct LoginClient {
    pub addr: Option<IpAddr>,
    pub headers: HeaderMap,
}

impl<S> FromRequestParts<S> for LoginClient
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        Ok(Self {
            addr,
            headers: parts.headers.clone(),
        })
    }
}

#[derive(Clone)]
pub struct DeviceCookies {
    key: [u8; 32],
    secure: bool,
}

impl DeviceCookies {
    /// Keyed from `secret` for this purpose only: a device cookie is never a ticket's signature.
    pub fn new(secret: &contract::Secret, secure: bool) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"webchat device cookie\0");
        hasher.update(secret.expose());
        Self {
            key: hasher.finalize().into(),
            secure,
        }
    }

    fn signature(&self, email: &str, id: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(email.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The request's device, when its cookie was set at a login to `email`.
    pub fn known(&self, headers: &HeaderMap, email: &str) -> Option<KnownDevice> {
        let value = cookie_value(headers, DEVICE_COOKIE)?;
        let (id, signature) = value.split_once('.')?;
        let expected = self.signature(email, id);
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), signature.as_bytes()).into();
        matches.then(|| KnownDevice { id: id.to_owned() })
    }

    /// The cookie that makes this browser a known device of `email` (keeping its id if it was one).
    pub fn cookie(&self, email: &str, known: Option<&KnownDevice>) -> Cookie<'static> {
        let id = known.map_or_else(new_id, |device| device.id.clone());
        let value = format!("{id}.{}", self.signature(email, &id));
        Cookie::build((DEVICE_COOKIE, value))
            .path("/")
            .max_age(ONE_YEAR)
            .same_site(SameSite::Lax)
            .http_only(true)
            .secure(self.secure)
            .build()
    }
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use axum::http::header::COOKIE;

    use super::*;

    fn cookies() -> DeviceCookies {
        DeviceCookies::new(
            &contract::Secret::new("a test secret of at least thirty-two bytes").unwrap(),
            false,
        )
    }

    fn sending(cookie: &Cookie<'_>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let pair = format!("{}={}", cookie.name(), cookie.value());
        headers.insert(COOKIE, pair.parse().unwrap());
        headers
    }

    #[test]
    fn a_device_is_known_only_to_the_account_it_logged_in_to() {
        let cookies = cookies();
        let cookie = cookies.cookie("ann@x.io", None);
        let headers = sending(&cookie);

        let known = cookies.known(&headers, "ann@x.io").expect("known to ann");
        assert!(cookies.known(&headers, "bob@x.io").is_none(), "not to bob");
        assert_eq!(
            cookies.cookie("ann@x.io", Some(&known)).value(),
            cookie.value()
        );

        let forged = Cookie::new(DEVICE_COOKIE, format!("{}.{}", known.id, "0".repeat(64)));
        assert!(
            cookies.known(&sending(&forged), "ann@x.io").is_none(),
            "forged"
        );
        assert!(
            cookies.known(&HeaderMap::new(), "ann@x.io").is_none(),
            "none"
        );
    }
}
