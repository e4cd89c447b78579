//! The few settings handlers and extractors consult per request, copied from `Config` at startup.
//!
//! Apart from the state (`state.rs`) so that the layers which read them (auth's extractors, the
//! CSRF layer) need not import the state, which is built from those very layers.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub trust_proxy_headers: bool,
    pub session_max_age: Duration,
    pub cookie_secure: bool,
}
