//! [`RequestSettings`](crate::settings::RequestSettings): the few settings handlers and extractors
//! consult per request, copied from `Config` at startup.
//!
//! Apart from the state (`state.rs`) so that the layers which read them (auth's extractors, the
//! CSRF layer) need not import the state, which is built from those very layers.

use std::time::Duration;

use axum::http::HeaderMap;

#[derive(Debug, Clone)]
pub struct RequestSettings {
    pub trust_proxy_headers: bool,
    pub session_max_age: Duration,
    pub cookie_secure: bool,
}

impl RequestSettings {
    /// A header set by the proxy in front (nginx), read only when `TRUST_PROXY_HEADERS` says it is
    /// there to overwrite whatever the client sent.
    pub fn trusted_header<'h>(&self, headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
        self.trust_proxy_headers
            .then(|| headers.get(name))
            .flatten()
            .and_then(|value| value.to_str().ok())
    }
}
