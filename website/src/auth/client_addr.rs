//! The client's IP address, for login throttling.
//!
//! Behind nginx every request comes from the proxy, so the real address is in `X-Real-IP`, which
//! nginx overwrites (a client cannot forge it through nginx). Without a proxy the header is
//! client-controlled, so it is only believed when `TRUST_PROXY_HEADERS` is set.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::settings::RequestSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    RequestSettings: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let settings = RequestSettings::from_ref(state);
        let from_proxy = settings
            .trusted_header(&parts.headers, "x-real-ip")
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(from_proxy.or(peer)))
    }
}
